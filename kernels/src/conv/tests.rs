//! Conv tests: every algorithm against the naive f64 reference over a grid of parameters and a
//! proptest, the adjoint identities, and `validate` / length checks.

use super::reference as r;
use super::*;
use crate::testing::{TestRng, Tolerance, assert_close};
use proptest::prelude::*;

#[allow(clippy::too_many_arguments)]
fn params(
    n: usize,
    c_in: usize,
    c_out: usize,
    hw: [usize; 2],
    k: [usize; 2],
    stride: usize,
    pad: usize,
    dil: usize,
    groups: usize,
) -> Conv2dParams {
    Conv2dParams {
        n,
        c_in,
        h: hw[0],
        w: hw[1],
        c_out,
        kh: k[0],
        kw: k[1],
        stride: [stride, stride],
        padding: [pad, pad],
        dilation: [dil, dil],
        groups,
    }
}

/// Converts test data between the kernel type and f64.
trait Elem: Float {
    fn cast(v: &[f64]) -> Vec<Self>;
    fn back(v: &[Self]) -> Vec<f64>;
    /// Tolerance vs the f64 reference for a reduction of `len` terms of size ≲ 1.
    fn tol(len: usize) -> Tolerance;
}
impl Elem for f32 {
    fn cast(v: &[f64]) -> Vec<f32> {
        v.iter().map(|&x| x as f32).collect()
    }
    fn back(v: &[f32]) -> Vec<f64> {
        v.iter().map(|&x| x as f64).collect()
    }
    // Inputs are rounded to f32 *before* the reference sees them, so only accumulation rounding is
    // measured: ≤ √len · ε growth per output, covered by F32 (1e-4 rel, 1e-5 abs) grown by √len; the
    // abs part matters for outputs near 0 from cancellation of O(1) terms.
    fn tol(len: usize) -> Tolerance {
        Tolerance::F32.for_reduction(len)
    }
}
impl Elem for f64 {
    fn cast(v: &[f64]) -> Vec<f64> {
        v.to_vec()
    }
    fn back(v: &[f64]) -> Vec<f64> {
        v.to_vec()
    }
    // Same data, different summation order: a few ulps per term, F64 (1e-10 rel, 1e-12 abs) grown by √len.
    fn tol(len: usize) -> Tolerance {
        Tolerance::F64.for_reduction(len)
    }
}

const ALGOS: [Conv2dAlgo; 3] = [Conv2dAlgo::Auto, Conv2dAlgo::Im2colGemm, Conv2dAlgo::Direct];

/// Runs forward (with and without bias), both gradients and the bias gradient with every algorithm and
/// compares each with the reference. Outputs start as NaN, so anything not overwritten fails.
fn check_case<T: Elem>(p: &Conv2dParams, seed: u64) {
    p.validate().unwrap();
    let mut rng = TestRng::new(seed);
    let x = T::cast(&rng.vec_f64(p.x_len()));
    let w = T::cast(&rng.vec_f64(p.w_len()));
    let b = T::cast(&rng.vec_f64(p.c_out));
    let dy = T::cast(&rng.vec_f64(p.y_len()));
    let (xd, wd, bd, dyd) = (T::back(&x), T::back(&w), T::back(&b), T::back(&dy));

    let y_ref = r::conv2d_forward(p, &xd, &wd, Some(&bd));
    let y0_ref = r::conv2d_forward(p, &xd, &wd, None);
    let dx_ref = r::conv2d_backward_input(p, &wd, &dyd);
    let dw_ref = r::conv2d_backward_weight(p, &xd, &dyd);
    let db_ref = r::conv2d_backward_bias(p, &dyd);

    let k_fwd = p.cpg() * p.kh * p.kw + 1;
    let k_dx = p.opg() * p.kh * p.kw;
    let k_dw = p.n * p.out_h() * p.out_w();
    let nan = T::from_f64(f64::NAN);
    for algo in ALGOS {
        let what = |op: &str| format!("{op} {} {algo:?} {p:?}", T::NAME);
        let mut y = vec![nan; p.y_len()];
        conv2d_forward_with(algo, p, &x, &w, Some(&b), &mut y);
        assert_close(&what("forward+bias"), &T::back(&y), &y_ref, T::tol(k_fwd));
        let mut y = vec![nan; p.y_len()];
        conv2d_forward_with(algo, p, &x, &w, None, &mut y);
        assert_close(&what("forward"), &T::back(&y), &y0_ref, T::tol(k_fwd));
        let mut dx = vec![nan; p.x_len()];
        conv2d_backward_input_with(algo, p, &w, &dy, &mut dx);
        assert_close(&what("backward_input"), &T::back(&dx), &dx_ref, T::tol(k_dx));
        let mut dw = vec![nan; p.w_len()];
        conv2d_backward_weight_with(algo, p, &x, &dy, &mut dw);
        assert_close(&what("backward_weight"), &T::back(&dw), &dw_ref, T::tol(k_dw));
    }
    let mut db = vec![nan; p.c_out];
    conv2d_backward_bias(p, &dy, &mut db);
    assert_close(&format!("backward_bias {p:?}"), &T::back(&db), &db_ref, T::tol(k_dw));
}

/// The grid from the spec: 3×3 / 1×1 / 5×3 kernels, stride 1–2, padding 0–2, dilation 1–2,
/// groups 1 / 2 / depthwise, n = 1 and 3, odd spatial sizes. Invalid combos (kernel too large) are skipped.
fn grid() -> Vec<Conv2dParams> {
    let mut out = Vec::new();
    for k in [[3, 3], [1, 1], [5, 3]] {
        for stride in [1, 2] {
            for pad in [0, 1, 2] {
                for dil in [1, 2] {
                    for (c_in, c_out, groups) in [(3, 5, 1), (4, 6, 2), (4, 4, 4), (2, 4, 2)] {
                        for (n, hw) in [(1, [7, 9]), (3, [5, 3])] {
                            let p = params(n, c_in, c_out, hw, k, stride, pad, dil, groups);
                            if p.validate().is_ok() {
                                out.push(p);
                            }
                        }
                    }
                }
            }
        }
    }
    out
}

#[test]
fn grid_f64() {
    let g = grid();
    assert!(g.len() > 250, "grid has {} cases", g.len());
    for (i, p) in g.iter().enumerate() {
        check_case::<f64>(p, i as u64);
    }
}

#[test]
fn grid_f32() {
    for (i, p) in grid().iter().enumerate() {
        check_case::<f32>(p, 1000 + i as u64);
    }
}

#[test]
fn single_channel_and_pointwise() {
    // c = 1 everywhere, 1×1 fast path with and without groups, odd sizes.
    for p in [
        params(1, 1, 1, [5, 7], [3, 3], 1, 1, 1, 1),
        params(3, 1, 1, [9, 5], [5, 3], 2, 2, 2, 1),
        params(2, 1, 3, [1, 1], [1, 1], 1, 0, 1, 1),
        params(3, 6, 4, [3, 5], [1, 1], 1, 0, 1, 2),
        params(2, 5, 7, [4, 3], [1, 1], 2, 0, 1, 1),
        params(1, 4, 4, [3, 3], [1, 1], 1, 1, 1, 4),
    ] {
        check_case::<f64>(&p, 7);
        check_case::<f32>(&p, 8);
    }
}

#[test]
fn larger_channels_and_uneven_strides() {
    // Channel counts on the GEMM path for Auto, and distinct per-axis hyper-parameters.
    let mut p = params(2, 12, 10, [11, 6], [3, 2], 1, 1, 1, 2);
    p.stride = [2, 1];
    p.padding = [0, 2];
    p.dilation = [1, 3];
    check_case::<f64>(&p, 11);
    check_case::<f32>(&p, 12);
    let p = params(3, 16, 24, [9, 9], [3, 3], 1, 1, 1, 1);
    check_case::<f32>(&p, 13);
}

#[test]
fn empty_dims() {
    // n = 0, c_out = 0, c_in = 0 and an all-padding input (h = w = 0): outputs must still be overwritten.
    for p in [
        params(0, 2, 3, [4, 4], [3, 3], 1, 1, 1, 1),
        params(2, 2, 0, [4, 4], [3, 3], 1, 1, 1, 1),
        params(2, 0, 3, [4, 4], [3, 3], 1, 1, 1, 1),
        params(2, 2, 3, [0, 0], [1, 1], 1, 1, 1, 1),
    ] {
        check_case::<f64>(&p, 3);
        check_case::<f32>(&p, 4);
    }
}

fn dot(a: &[f64], b: &[f64]) -> (f64, f64) {
    let s = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let m = a.iter().zip(b).map(|(x, y)| (x * y).abs()).sum();
    (s, m)
}

#[test]
fn gradients_are_adjoints_of_forward() {
    // ⟨conv(x, w), dy⟩ = ⟨x, dx(w, dy)⟩ = ⟨w, dw(x, dy)⟩ for the bias-free conv: an identity that
    // does not use the reference at all. f64; tolerance 1e-12 relative to Σ|terms| (summation order only).
    let mut cases = grid();
    cases.push(params(2, 12, 10, [11, 6], [3, 2], 2, 1, 2, 2));
    for (i, p) in cases.iter().enumerate().step_by(3) {
        let mut rng = TestRng::new(500 + i as u64);
        let x = rng.vec_f64(p.x_len());
        let w = rng.vec_f64(p.w_len());
        let dy = rng.vec_f64(p.y_len());
        for algo in [Conv2dAlgo::Im2colGemm, Conv2dAlgo::Direct] {
            let mut y = vec![0.0; p.y_len()];
            let mut dx = vec![0.0; p.x_len()];
            let mut dw = vec![0.0; p.w_len()];
            conv2d_forward_with(algo, p, &x, &w, None, &mut y);
            conv2d_backward_input_with(algo, p, &w, &dy, &mut dx);
            conv2d_backward_weight_with(algo, p, &x, &dy, &mut dw);
            let (a, ma) = dot(&y, &dy);
            let (b, mb) = dot(&x, &dx);
            let (c, mc) = dot(&w, &dw);
            let bound = 1e-12 * (ma + mb + mc).max(1.0);
            assert!((a - b).abs() <= bound, "{algo:?} {p:?}: <y,dy> = {a} vs <x,dx> = {b}");
            assert!((a - c).abs() <= bound, "{algo:?} {p:?}: <y,dy> = {a} vs <w,dw> = {c}");
        }
    }
}

#[test]
fn validate_names_the_field() {
    let ok = params(1, 4, 6, [5, 5], [3, 3], 1, 1, 1, 2);
    assert!(ok.validate().is_ok());
    let err = |f: &dyn Fn(&mut Conv2dParams)| {
        let mut p = ok;
        f(&mut p);
        p.validate().unwrap_err()
    };
    assert!(err(&|p| p.stride[1] = 0).contains("stride[1]"));
    assert!(err(&|p| p.dilation[0] = 0).contains("dilation[0]"));
    assert!(err(&|p| p.groups = 0).contains("groups"));
    assert!(err(&|p| p.kw = 0).contains("kw"));
    let e = err(&|p| p.groups = 3);
    assert!(e.contains("groups = 3") && e.contains("c_in = 4"), "{e}");
    let e = err(&|p| p.c_out = 5);
    assert!(e.contains("groups = 2") && e.contains("c_out = 5"), "{e}");
    let e = err(&|p| {
        p.padding = [0, 0];
        p.dilation = [3, 1];
    });
    assert!(e.contains("kh = 3") && e.contains("dilation[0] = 3") && e.contains("h = 5"), "{e}");
    let e = err(&|p| p.kw = 8);
    assert!(e.contains("kw = 8") && e.contains("w = 5"), "{e}");
    // A kernel that exactly fits is fine.
    let mut p = ok;
    p.padding = [0, 0];
    p.kh = 5;
    assert!(p.validate().is_ok());
    assert_eq!((p.out_h(), p.out_w()), (1, 3));
}

#[test]
fn sizes_and_flops() {
    let p = params(8, 128, 64, [32, 30], [3, 3], 2, 1, 1, 4);
    assert_eq!((p.out_h(), p.out_w()), (16, 15));
    assert_eq!(p.x_len(), 8 * 128 * 32 * 30);
    assert_eq!(p.w_len(), 64 * 32 * 9);
    assert_eq!(p.y_len(), 8 * 64 * 16 * 15);
    assert_eq!(p.flops(), 2 * 8 * 64 * 16 * 15 * 32 * 9);
}

#[test]
#[should_panic(expected = "buffer y has length 3")]
fn wrong_output_length_panics() {
    let p = params(1, 1, 1, [3, 3], [1, 1], 1, 0, 1, 1);
    let mut y = vec![0.0f32; 3];
    conv2d_forward(&p, &[0.0; 9], &[1.0], None, &mut y);
}

#[test]
#[should_panic(expected = "groups = 2 does not divide c_in = 3")]
fn invalid_params_panic() {
    let p = params(1, 3, 2, [3, 3], [1, 1], 1, 0, 1, 2);
    conv2d_backward_bias(&p, &[], &mut [0.0f64; 2]);
}

fn arb_params() -> impl Strategy<Value = Conv2dParams> {
    (
        (0usize..=3, 1usize..=3, 0usize..=3, 0usize..=3),
        (1usize..=8, 1usize..=8, 1usize..=4, 1usize..=4),
        ([1usize..=3, 1usize..=3], [0usize..=2, 0usize..=2], [1usize..=2, 1usize..=2]),
    )
        .prop_map(|((n, groups, cpg, opg), (h, w, kh, kw), (stride, padding, dilation))| Conv2dParams {
            n,
            c_in: cpg * groups,
            h,
            w,
            c_out: opg * groups,
            kh,
            kw,
            stride,
            padding,
            dilation,
            groups,
        })
        .prop_filter("kernel must fit", |p| p.validate().is_ok())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn random_params_match_reference(p in arb_params(), seed in 0u64..1000) {
        check_case::<f64>(&p, seed);
        check_case::<f32>(&p, seed + 1);
    }
}
