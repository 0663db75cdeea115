use super::reference::{binary_f64, compare_f64, gather, unary_f64};
use super::*;
use crate::testing::{TestRng, Tolerance, assert_close};
use proptest::prelude::*;

const ALL_UNARY: [UnaryOp; 21] = [
    UnaryOp::Neg,
    UnaryOp::Abs,
    UnaryOp::Exp,
    UnaryOp::Log,
    UnaryOp::Sqrt,
    UnaryOp::Rsqrt,
    UnaryOp::Sqr,
    UnaryOp::Recip,
    UnaryOp::Tanh,
    UnaryOp::Sigmoid,
    UnaryOp::Silu,
    UnaryOp::Gelu,
    UnaryOp::GeluTanh,
    UnaryOp::Relu,
    UnaryOp::Sin,
    UnaryOp::Cos,
    UnaryOp::Erf,
    UnaryOp::Sign,
    UnaryOp::Powf(1.7),
    UnaryOp::Affine { mul: -1.5, add: 0.25 },
    UnaryOp::Clamp { min: -0.5, max: 0.75 },
];

const ALL_BINARY: [BinaryOp; 7] = [
    BinaryOp::Add,
    BinaryOp::Sub,
    BinaryOp::Mul,
    BinaryOp::Div,
    BinaryOp::Pow,
    BinaryOp::Maximum,
    BinaryOp::Minimum,
];
const ALL_CMP: [CmpOp; 6] = [CmpOp::Eq, CmpOp::Ne, CmpOp::Lt, CmpOp::Le, CmpOp::Gt, CmpOp::Ge];

/// Ops defined only for positive inputs get inputs mapped into [0.1, 3.1].
fn needs_positive(op: UnaryOp) -> bool {
    matches!(op, UnaryOp::Log | UnaryOp::Sqrt | UnaryOp::Rsqrt | UnaryOp::Powf(_))
}

/// Random input values in [-3, 3] (or [0.1, 3.1] for positive-domain ops).
fn inputs(rng: &mut TestRng, n: usize, positive: bool) -> Vec<f64> {
    (0..n).map(|_| if positive { rng.uniform().abs() * 3.0 + 0.1 } else { rng.uniform() * 3.0 }).collect()
}

/// A random strided view of shape `shape` into a parent buffer: every dimension gets a step (1 or
/// 2), a start inside some padding, and the dimensions are permuted relative to the parent's
/// memory order. Returns the layout (whose `required_len` is the buffer length to allocate).
pub(crate) fn random_view(rng: &mut TestRng, shape: &[usize]) -> StridedLayout {
    let r = shape.len();
    // permutation: view dim i lives at parent dim perm[i]
    let mut perm: Vec<usize> = (0..r).collect();
    for i in (1..r).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        perm.swap(i, j);
    }
    let mut parent = vec![0usize; r];
    let mut step = vec![1usize; r];
    let mut start = vec![0usize; r];
    for i in 0..r {
        step[i] = 1 + (rng.next_u64() % 2) as usize;
        let pad = (rng.next_u64() % 3) as usize;
        start[i] = (rng.next_u64() % (pad as u64 + 1)) as usize;
        parent[perm[i]] = if shape[i] == 0 { pad + 1 } else { (shape[i] - 1) * step[i] + 1 + pad };
    }
    let pstrides = crate::strided::contiguous_strides(&parent);
    let strides = (0..r).map(|i| pstrides[perm[i]] * step[i]).collect();
    let offset = (0..r).map(|i| start[i] * pstrides[perm[i]]).sum::<usize>() + (rng.next_u64() % 3) as usize;
    StridedLayout::new(shape.to_vec(), strides, offset)
}

fn buffer_for(rng: &mut TestRng, l: &StridedLayout, positive: bool) -> Vec<f64> {
    inputs(rng, l.required_len().max(1) + 2, positive)
}

fn to_t<T: Float>(v: &[f64]) -> Vec<T> {
    v.iter().map(|&x| T::from_f64(x)).collect()
}

// f64 kernels vs the f64 reference: same definitions evaluated in a different association order
// (e.g. x·sigmoid(x) vs x/(1+e⁻ˣ)), a few ulps; 1e-13 relative leaves room for ~500 ulps.
const TOL_F64: Tolerance = Tolerance::new(1e-13, 1e-15);
// f32 kernels vs f64 reference on the same (f32-representable) inputs: each op is a handful of f32
// roundings (ε = 6e-8), plus exp/tanh amplification; 1e-5 relative and 1e-6 absolute is ~100 ulps.
const TOL_F32: Tolerance = Tolerance::new(1e-5, 1e-6);

fn check_unary<T: Float>(op: UnaryOp, l: &StridedLayout, rng: &mut TestRng, tol: Tolerance) {
    let src: Vec<T> = to_t(&buffer_for(rng, l, needs_positive(op)));
    let mut dst = vec![T::from_f64(f64::NAN); l.numel()];
    unary(op, &src, l, &mut dst);
    let want: Vec<f64> = gather(&src, l).into_iter().map(|x| unary_f64(op, x)).collect();
    assert_close(
        &format!("{op:?} {} layout {l:?}", T::NAME),
        &dst.iter().map(|v| v.to_f64()).collect::<Vec<_>>(),
        &want,
        tol,
    );
}

#[test]
fn erf_known_values() {
    // Values from a correctly-rounded libm (CPython math.erf / math.erfc).
    let table = [
        (0.1, 0.1124629160182849),
        (0.5, 0.5204998778130465),
        (1.0, 0.8427007929497149),
        (1.5, 0.9661051464753108),
        (2.0, 0.9953222650189527),
        (2.5, 0.999593047982555),
        (3.0, 0.9999779095030014),
        (3.5, 0.9999992569016276),
        (4.0, 0.9999999845827421),
        (5.0, 0.9999999999984626),
        (6.0, 1.0),
    ];
    // ~1e-15 relative is the accuracy target (a few ulps).
    for (x, e) in table {
        let tol = Tolerance::new(2e-15, 0.0);
        assert_close(&format!("erf({x})"), &[erf(x)][..], &[e][..], tol);
        assert_close(&format!("erf(-{x})"), &[erf(-x)][..], &[-e][..], tol);
    }
    // erfc accuracy in the continued-fraction range shows through 1 - erf only at ~1e-16 absolute.
    let erfc = [(3.0, 2.2090496998585438e-05), (4.0, 1.541725790028002e-08), (5.0, 1.5374597944280351e-12)];
    for (x, e) in erfc {
        assert_close(&format!("1-erf({x})"), &[1.0 - erf(x)][..], &[e][..], Tolerance::new(0.0, 3e-16));
    }
    assert_eq!(erf(0.0), 0.0);
    assert!(erf(-0.0).is_sign_negative());
    assert_eq!(erf(f64::INFINITY), 1.0);
    assert_eq!(erf(f64::NEG_INFINITY), -1.0);
    assert!(erf(f64::NAN).is_nan());
    // tiny x: erf(x) ≈ 2x/√π
    assert_close(
        "erf(1e-10)",
        &[erf(1e-10)][..],
        &[1e-10 * std::f64::consts::FRAC_2_SQRT_PI][..],
        Tolerance::new(1e-15, 0.0),
    );
}

#[test]
fn erf_odd_monotone_and_continuous_at_branch() {
    let mut prev = -1.0;
    for i in -700..=700 {
        let x = i as f64 * 0.01;
        let v = erf(x);
        assert_eq!(v, -erf(-x), "odd symmetry at {x}");
        assert!(v >= prev, "monotone at {x}");
        prev = v;
    }
    // the series / continued-fraction switch at 2.5 must agree on both sides
    let (lo, hi) = (erf(2.5 - 1e-12), erf(2.5));
    assert!((hi - lo).abs() < 1e-14, "{lo} vs {hi}");
}

#[test]
fn unary_all_ops_contiguous_and_strided() {
    let mut rng = TestRng::new(1);
    let shapes: [&[usize]; 5] = [&[], &[1], &[17], &[3, 5, 7], &[2, 1, 4, 3]];
    for op in ALL_UNARY {
        for s in shapes {
            let c = StridedLayout::contiguous(s);
            check_unary::<f64>(op, &c, &mut rng, TOL_F64);
            check_unary::<f32>(op, &c, &mut rng, TOL_F32);
            let v = random_view(&mut rng, s);
            check_unary::<f64>(op, &v, &mut rng, TOL_F64);
            check_unary::<f32>(op, &v, &mut rng, TOL_F32);
        }
    }
}

#[test]
fn unary_special_values() {
    let x = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 0.0, -0.0, 50.0, -50.0, 1e-30];
    let l = StridedLayout::contiguous(&[x.len()]);
    for op in ALL_UNARY {
        let mut y = vec![0.0; x.len()];
        unary(op, &x, &l, &mut y);
        let want: Vec<f64> = x.iter().map(|&v| unary_f64(op, v)).collect();
        for i in 0..x.len() {
            let (a, b) = (y[i], want[i]);
            assert!(
                (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= 1e-13 * b.abs(),
                "{op:?}({}) = {a}, want {b}",
                x[i]
            );
        }
    }
}

#[test]
fn large_parallel_paths_match_reference() {
    let mut rng = TestRng::new(7);
    // contiguous, above the parallel threshold and not a multiple of the chunk
    let n = 300_007;
    let x = rng.vec_f32(n);
    let l = StridedLayout::contiguous(&[n]);
    let mut y = vec![0f32; n];
    unary(UnaryOp::Silu, &x, &l, &mut y);
    let want: Vec<f64> = x.iter().map(|&v| unary_f64(UnaryOp::Silu, v as f64)).collect();
    assert_close("silu 300007", &y, &want, TOL_F32);
    // transposed [613, 509] view of a [509, 613] buffer: strided path split across chunks
    let (r, c) = (613, 509);
    let src = rng.vec_f64(r * c);
    let lt = StridedLayout::new(vec![r, c], vec![1, r], 0);
    let mut y = vec![0f64; r * c];
    unary(UnaryOp::Neg, &src, &lt, &mut y);
    let want: Vec<f64> = gather(&src, &lt).into_iter().map(|v| -v).collect();
    assert_close("neg transposed", &y, &want, Tolerance::new(0.0, 0.0));
    // broadcast add [1000, 333] + [333], parallel
    let a = rng.vec_f32(1000 * 333);
    let b = rng.vec_f32(333);
    let la = StridedLayout::contiguous(&[1000, 333]);
    let lb = broadcast_layout(&StridedLayout::contiguous(&[333]), &[1000, 333]).unwrap();
    let mut y = vec![0f32; 1000 * 333];
    binary(BinaryOp::Add, &a, &la, &b, &lb, &mut y);
    let want: Vec<f64> = (0..1000 * 333).map(|i| a[i] as f64 + b[i % 333] as f64).collect();
    // one f32 rounding of the exact sum
    assert_close("broadcast add", &y, &want, Tolerance::new(6e-8, 0.0));
}

fn check_binary<T: Float>(
    op: BinaryOp,
    la: &StridedLayout,
    lb: &StridedLayout,
    rng: &mut TestRng,
    tol: Tolerance,
) {
    let pos = op == BinaryOp::Pow;
    let a: Vec<T> = to_t(&buffer_for(rng, la, pos));
    let b: Vec<T> = to_t(&buffer_for(rng, lb, false));
    let mut dst = vec![T::from_f64(f64::NAN); la.numel()];
    binary(op, &a, la, &b, lb, &mut dst);
    let want: Vec<f64> =
        gather(&a, la).into_iter().zip(gather(&b, lb)).map(|(x, y)| binary_f64(op, x, y)).collect();
    assert_close(
        &format!("{op:?} {} {la:?} {lb:?}", T::NAME),
        &dst.iter().map(|v| v.to_f64()).collect::<Vec<_>>(),
        &want,
        tol,
    );
    let mut cmp = vec![7u8; la.numel()];
    for cop in ALL_CMP {
        compare(cop, &a, la, &b, lb, &mut cmp);
        let want: Vec<u8> =
            gather(&a, la).into_iter().zip(gather(&b, lb)).map(|(x, y)| compare_f64(cop, x, y)).collect();
        assert_eq!(cmp, want, "{cop:?}");
    }
}

#[test]
fn maximum_minimum_nan_and_inf() {
    let nan = f64::NAN;
    let inf = f64::INFINITY;
    let a = [nan, 1.0, nan, inf, -inf, 0.0, -0.0, 2.0];
    let b = [1.0, nan, nan, 1.0, 1.0, -0.0, 0.0, -inf];
    let l = StridedLayout::contiguous(&[a.len()]);
    let mut mx = vec![0.0; a.len()];
    let mut mn = vec![0.0; a.len()];
    binary(BinaryOp::Maximum, &a, &l, &b, &l, &mut mx);
    binary(BinaryOp::Minimum, &a, &l, &b, &l, &mut mn);
    assert!(mx[0].is_nan() && mx[1].is_nan() && mx[2].is_nan());
    assert!(mn[0].is_nan() && mn[1].is_nan() && mn[2].is_nan());
    assert_eq!(&mx[3..], &[inf, 1.0, 0.0, 0.0, 2.0]);
    assert_eq!(&mn[3..], &[1.0, -inf, 0.0, 0.0, -inf]);
    // f32 too, through a broadcast scalar NaN
    let s = [f32::NAN];
    let ls = broadcast_layout(&StridedLayout::contiguous(&[]), &[4]).unwrap();
    let v = [1.0f32, -1.0, f32::INFINITY, 0.0];
    let mut out = [0f32; 4];
    binary(BinaryOp::Maximum, &v, &StridedLayout::contiguous(&[4]), &s, &ls, &mut out);
    assert!(out.iter().all(|x| x.is_nan()));
}

#[test]
fn broadcast_shape_and_layout_rules() {
    assert_eq!(broadcast_shape(&[4, 1, 3], &[5, 1]), Some(vec![4, 5, 3]));
    assert_eq!(broadcast_shape(&[], &[2, 3]), Some(vec![2, 3]));
    assert_eq!(broadcast_shape(&[0], &[1]), Some(vec![0]));
    assert_eq!(broadcast_shape(&[1], &[0]), Some(vec![0]));
    assert_eq!(broadcast_shape(&[2, 3], &[3, 3]), None);
    assert_eq!(broadcast_shape(&[0], &[2]), None);
    let l = StridedLayout::new(vec![3, 1], vec![5, 1], 2);
    let b = broadcast_layout(&l, &[2, 3, 4]).unwrap();
    assert_eq!(b, StridedLayout::new(vec![2, 3, 4], vec![0, 5, 0], 2));
    assert_eq!(broadcast_layout(&l, &[3]), None);
    assert_eq!(broadcast_layout(&l, &[2, 4]), None);
}

/// Points per op where the derivative exists and finite differences are well conditioned.
fn fd_points(op: UnaryOp) -> Vec<f64> {
    let base = [-2.3, -1.1, -0.37, 0.29, 0.8, 1.6, 2.7];
    match op {
        UnaryOp::Log | UnaryOp::Sqrt | UnaryOp::Rsqrt | UnaryOp::Powf(_) => vec![0.3, 0.7, 1.3, 2.9],
        UnaryOp::Recip => vec![-2.0, -0.6, 0.5, 1.7],
        _ => base.to_vec(),
    }
}

#[test]
fn unary_backward_matches_central_differences_f64() {
    let mut rng = TestRng::new(3);
    for op in ALL_UNARY {
        let x = fd_points(op);
        let n = x.len();
        let l = StridedLayout::contiguous(&[n]);
        let dy: Vec<f64> = (0..n).map(|_| rng.uniform() + 1.5).collect();
        let mut dx = vec![0.0; n];
        unary_backward(op, &x, &l, &dy, &mut dx);
        // central difference, h = 1e-5: truncation h²·f'''/6 ≲ 1e-10·|f'''|, rounding ε/h ≈ 1e-11
        let h = 1e-5;
        let want: Vec<f64> =
            (0..n).map(|i| dy[i] * (unary_f64(op, x[i] + h) - unary_f64(op, x[i] - h)) / (2.0 * h)).collect();
        assert_close(&format!("{op:?} backward vs FD"), &dx, &want, Tolerance::new(1e-7, 1e-8));
        // strided x (every other element of a reversed-order buffer) gives the same gradient
        let mut buf = vec![f64::NAN; 2 * n + 1];
        for i in 0..n {
            buf[1 + 2 * i] = x[i];
        }
        let ls = StridedLayout::new(vec![n], vec![2], 1);
        let mut dx2 = vec![0.0; n];
        unary_backward(op, &buf, &ls, &dy, &mut dx2);
        assert_eq!(dx, dx2, "{op:?} strided backward");
        // f32 path agrees with the f64 derivative (f32 rounding of the same formula)
        let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        let dy32: Vec<f32> = dy.iter().map(|&v| v as f32).collect();
        let mut dx32 = vec![0f32; n];
        unary_backward(op, &x32, &l, &dy32, &mut dx32);
        let x32d: Vec<f64> = x32.iter().map(|&v| v as f64).collect();
        let dy32d: Vec<f64> = dy32.iter().map(|&v| v as f64).collect();
        let mut want32 = vec![0.0; n];
        unary_backward(op, &x32d, &l, &dy32d, &mut want32);
        assert_close(&format!("{op:?} backward f32"), &dx32, &want32, TOL_F32);
    }
}

#[test]
fn unary_backward_kink_conventions() {
    let x = [0.0, -0.0, -0.5, 0.75, 1.0, -1.0];
    let dy = [f64::INFINITY, 2.0, 3.0, 4.0, 5.0, 6.0];
    let l = StridedLayout::contiguous(&[6]);
    let run = |op| {
        let mut dx = [9.0; 6];
        unary_backward(op, &x, &l, &dy, &mut dx);
        dx
    };
    assert_eq!(run(UnaryOp::Relu), [0.0, 0.0, 0.0, 4.0, 5.0, 0.0]);
    assert_eq!(run(UnaryOp::Abs), [0.0, 0.0, -3.0, 4.0, 5.0, -6.0]);
    assert_eq!(run(UnaryOp::Sign), [0.0; 6]);
    // Clamp: 1 inside [min, max] inclusive of both bounds, else 0
    assert_eq!(run(UnaryOp::Clamp { min: -0.5, max: 0.75 }), [f64::INFINITY, 2.0, 3.0, 4.0, 0.0, 0.0]);
    assert_eq!(run(UnaryOp::Powf(0.0)), [0.0; 6]);
}

fn arb_shape() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(
        prop_oneof![3 => 1usize..6, 1 => Just(0usize), 1 => Just(1usize), 1 => 6usize..12],
        0..5,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn prop_unary_strided(shape in arb_shape(), seed in any::<u64>(), k in 0usize..21) {
        let mut rng = TestRng::new(seed);
        let l = random_view(&mut rng, &shape);
        check_unary::<f32>(ALL_UNARY[k], &l, &mut rng, TOL_F32);
        check_unary::<f64>(ALL_UNARY[k], &l, &mut rng, TOL_F64);
    }

    #[test]
    fn prop_binary_broadcast(shape in arb_shape(), seed in any::<u64>(), k in 0usize..7, mask_a in any::<u8>(), mask_b in any::<u8>(), drop in 0usize..3) {
        let mut rng = TestRng::new(seed);
        // operand shapes: some dims squeezed to 1 (by mask), operand b possibly of lower rank
        let sa: Vec<usize> = shape.iter().enumerate().map(|(i, &d)| if mask_a >> i & 1 == 1 { 1 } else { d }).collect();
        let sb_full: Vec<usize> = shape.iter().enumerate().map(|(i, &d)| if mask_b >> i & 1 == 1 { 1 } else { d }).collect();
        let sb = sb_full[drop.min(sb_full.len())..].to_vec();
        let out = broadcast_shape(&sa, &sb).unwrap();
        let va = random_view(&mut rng, &sa);
        let vb = random_view(&mut rng, &sb);
        let la = broadcast_layout(&va, &out).unwrap();
        let lb = broadcast_layout(&vb, &out).unwrap();
        // f64 arithmetic ops are correctly rounded either way: only Pow goes through libm differences.
        check_binary::<f64>(ALL_BINARY[k], &la, &lb, &mut rng, TOL_F64);
        check_binary::<f32>(ALL_BINARY[k], &la, &lb, &mut rng, TOL_F32);
    }
}

#[test]
fn erf_fast_f32_within_1e7_absolute() {
    // dense grid over [-6, 6] plus tiny values; bound: 1e-7 absolute, and 1e-6 relative near 0
    // (result rounding alone is up to 6e-8 absolute near 1).
    let mut worst = 0.0f64;
    for i in -600_000..=600_000 {
        let x = i as f32 * 1e-5;
        let got = math::erf_fast_f32(x) as f64;
        let want = erf(x as f64);
        worst = worst.max((got - want).abs());
        if x != 0.0 && x.abs() < 0.5 {
            assert!(((got - want) / want).abs() < 1e-6, "erf_fast_f32({x}) = {got}, want {want}");
        }
    }
    assert!(worst <= 1e-7, "worst abs error {worst}");
    for x in [1e-30f32, 1e-10, -3e-8] {
        let (g, w) = (math::erf_fast_f32(x) as f64, erf(x as f64));
        assert!(((g - w) / w).abs() < 1e-6, "{x}: {g} vs {w}");
    }
    assert!(math::erf_fast_f32(f32::NAN).is_nan());
    assert_eq!(math::erf_fast_f32(f32::INFINITY), 1.0);
    assert_eq!(math::erf_fast_f32(f32::NEG_INFINITY), -1.0);
    assert!(math::erf_fast_f32(-0.0).is_sign_negative());
}

#[test]
fn exp_f32_accuracy_and_specials() {
    // Normal-range results within 2 ulp (2·2^-23 relative) of f64 exp; subnormal results within
    // 2 ulp of the smallest subnormal (absolute).
    let mut x = -104.0f32;
    while x < 89.0 {
        let got = math::exp_f32(x) as f64;
        let want = (x as f64).exp();
        if want >= f32::MIN_POSITIVE as f64 && want <= f32::MAX as f64 {
            assert!(((got - want) / want).abs() <= 2.0 * 1.2e-7, "exp_f32({x}) = {got}, want {want}");
        } else if want < f32::MIN_POSITIVE as f64 {
            assert!((got - want).abs() <= 2.0 * 1.5e-45, "exp_f32({x}) = {got}, want {want}");
        } else {
            assert!(got.is_infinite(), "exp_f32({x}) = {got}, want overflow");
        }
        x += 0.000731;
    }
    assert_eq!(math::exp_f32(0.0), 1.0);
    assert_eq!(math::exp_f32(f32::INFINITY), f32::INFINITY);
    assert_eq!(math::exp_f32(f32::NEG_INFINITY), 0.0);
    assert_eq!(math::exp_f32(-200.0), 0.0);
    assert_eq!(math::exp_f32(100.0), f32::INFINITY);
    assert!(math::exp_f32(f32::NAN).is_nan());
}
