use super::*;
use crate::StridedLayout;
use crate::elementwise::broadcast_layout;
use crate::testing::{TestRng, Tolerance, assert_close};
use proptest::prelude::*;
use reference::{multi_indices, offset_of};

/// Random strided view of `shape` (permuted, stepped, offset) — same generator as elementwise.
fn view(rng: &mut TestRng, shape: &[usize]) -> StridedLayout {
    crate::elementwise::tests_support::random_view(rng, shape)
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn arb_shape() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(
        prop_oneof![3 => 1usize..6, 1 => Just(0usize), 1 => Just(1usize), 1 => 6usize..10],
        0..5,
    )
}

#[test]
fn copy_strided_large_transpose_parallel() {
    let (r, c) = (517, 389);
    let mut rng = TestRng::new(1);
    let src = rng.vec_f32(r * c);
    let ls = StridedLayout::new(vec![c, r], vec![1, c], 0); // transpose of [r, c]
    let ld = StridedLayout::contiguous(&[c, r]);
    let mut dst = vec![0f32; r * c];
    copy_strided(&src, &ls, &mut dst, &ld);
    for i in 0..c {
        for j in 0..r {
            assert_eq!(dst[i * r + j], src[j * c + i]);
        }
    }
    // strided destination (transpose into), contiguous source
    let mut back = vec![0f32; r * c];
    copy_strided(&dst, &ld, &mut back, &ls);
    assert_eq!(back, src);
    // contiguous -> contiguous at offsets, large
    let mut big = vec![0f32; r * c + 5];
    copy_strided(
        &src,
        &StridedLayout::contiguous(&[r * c]),
        &mut big,
        &StridedLayout::new(vec![r * c], vec![1], 5),
    );
    assert_eq!(&big[5..], &src[..]);
    assert_eq!(&big[..5], &[0.0; 5]);
}

#[test]
fn copy_strided_leaves_gaps_untouched_and_overlapping_dst_last_wins() {
    let src = [1.0, 2.0, 3.0, 4.0];
    let mut dst = [9.0; 9];
    copy_strided(
        &src,
        &StridedLayout::contiguous(&[2, 2]),
        &mut dst,
        &StridedLayout::new(vec![2, 2], vec![4, 2], 1),
    );
    assert_eq!(dst, [9.0, 1.0, 9.0, 2.0, 9.0, 3.0, 9.0, 4.0, 9.0]);
    let mut d = [0.0; 2];
    copy_strided(
        &src,
        &StridedLayout::contiguous(&[2, 2]),
        &mut d,
        &StridedLayout::new(vec![2, 2], vec![0, 1], 0),
    );
    assert_eq!(d, [3.0, 4.0]);
}

#[test]
fn injectivity_test() {
    use super::copy::is_injective;
    assert!(is_injective(&StridedLayout::contiguous(&[3, 4])));
    assert!(is_injective(&StridedLayout::new(vec![3, 4], vec![1, 3], 0)));
    assert!(!is_injective(&StridedLayout::new(vec![3, 1], vec![0, 0], 0)));
    assert!(is_injective(&StridedLayout::new(vec![1, 5], vec![0, 2], 0)));
    assert!(!is_injective(&StridedLayout::new(vec![3, 4], vec![2, 1], 0))); // overlapping rows
}

#[test]
fn upsample_examples() {
    // 2x: each pixel repeated
    let x = [1.0, 2.0, 3.0, 4.0];
    let mut y = [0.0; 16];
    upsample_nearest2d(1, 2, 2, 4, 4, &x, &mut y);
    assert_eq!(y, [1.0, 1.0, 2.0, 2.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0, 3.0, 3.0, 4.0, 4.0]);
    // 14 -> 20 along w: exact floor(o*14/20); o = 10 reads 7
    let x: Vec<f64> = (0..14).map(|v| v as f64).collect();
    let mut y = vec![0.0; 20];
    upsample_nearest2d(1, 1, 14, 1, 20, &x, &mut y);
    assert_eq!(y[10], 7.0);
}

#[test]
fn avg_pool_validate_names_fields() {
    let p = Pool2dParams {
        nc: 1,
        h: 5,
        w: 5,
        kernel: [3, 3],
        stride: [2, 2],
        padding: [1, 1],
        count_include_pad: true,
    };
    assert!(p.validate().is_ok());
    assert_eq!((p.out_h(), p.out_w()), (3, 3));
    assert!(Pool2dParams { kernel: [0, 3], ..p }.validate().unwrap_err().contains("kernel[0]"));
    assert!(Pool2dParams { stride: [2, 0], ..p }.validate().unwrap_err().contains("stride[1]"));
    assert!(Pool2dParams { padding: [2, 1], ..p }.validate().unwrap_err().contains("padding[0]"));
    assert!(
        Pool2dParams { h: 1, kernel: [4, 3], padding: [1, 1], ..p }.validate().unwrap_err().contains("empty")
    );
}

#[test]
fn avg_pool_known_values() {
    // 3x3 input, k=2, s=1, p=1, include_pad: corner window has 1 real pixel over 4
    let x: Vec<f64> = (1..=9).map(|v| v as f64).collect();
    let p = Pool2dParams {
        nc: 1,
        h: 3,
        w: 3,
        kernel: [2, 2],
        stride: [1, 1],
        padding: [1, 1],
        count_include_pad: true,
    };
    let mut y = vec![0.0; 16];
    avg_pool2d(&p, &x, &mut y);
    assert_eq!(y[0], 0.25);
    assert_eq!(y[5], (1.0 + 2.0 + 4.0 + 5.0) / 4.0);
    let p2 = Pool2dParams { count_include_pad: false, ..p };
    avg_pool2d(&p2, &x, &mut y);
    assert_eq!(y[0], 1.0);
    assert_eq!(y[1], 1.5);
}

#[test]
fn index_select_errors_and_negative() {
    let src: Vec<f64> = (0..12).map(|v| v as f64).collect(); // [2, 3, 2]
    let mut dst = vec![0.0; 2 * 2 * 2];
    assert_eq!(index_select(2, 3, 2, &src, &[-1, 0], &mut dst), Ok(()));
    assert_eq!(dst, [4.0, 5.0, 0.0, 1.0, 10.0, 11.0, 6.0, 7.0]);
    let mut dst2 = vec![-1.0; 2 * 3 * 2];
    assert_eq!(index_select(2, 3, 2, &src, &[0, 3, -4], &mut dst2), Err(1));
    assert!(dst2.iter().all(|&v| v == -1.0), "nothing written on error");
    assert_eq!(index_select(2, 3, 2, &src, &[0, -4], &mut dst), Err(1));
    let mut ds = vec![7.0; 12];
    assert_eq!(index_select_backward(2, 3, 2, &dst2, &[2, 2, -3], &mut ds), Ok(()));
    assert_eq!(&ds[..6], &[-1.0, -1.0, 0.0, 0.0, -2.0, -2.0]);
    assert_eq!(index_select_backward(2, 3, 2, &dst2, &[2, 5, 0], &mut ds), Err(1));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn prop_copy_strided(shape in arb_shape(), seed in any::<u64>()) {
        let mut rng = TestRng::new(seed);
        let ls = view(&mut rng, &shape);
        let ld = view(&mut rng, &shape);
        let src = rng.vec_f64(ls.required_len() + 1);
        let init = rng.vec_f64(ld.required_len() + 2);
        let mut dst = init.clone();
        copy_strided(&src, &ls, &mut dst, &ld);
        let mut want = init.clone();
        for idx in multi_indices(&shape) {
            want[offset_of(&ld, &idx)] = src[offset_of(&ls, &idx)];
        }
        prop_assert_eq!(dst, want);
    }

    #[test]
    fn prop_concat(shape in prop::collection::vec(0usize..5, 1..4), seed in any::<u64>(), axis_pick in any::<usize>(), sizes in prop::collection::vec(0usize..4, 1..4)) {
        let mut rng = TestRng::new(seed);
        let axis = axis_pick % shape.len();
        let layouts: Vec<StridedLayout> = sizes.iter().map(|&s| { let mut sh = shape.clone(); sh[axis] = s; view(&mut rng, &sh) }).collect();
        let bufs: Vec<Vec<f64>> = layouts.iter().map(|l| rng.vec_f64(l.required_len() + 1)).collect();
        let inputs: Vec<(&[f64], &StridedLayout)> = bufs.iter().map(|b| b.as_slice()).zip(layouts.iter()).collect();
        let want = reference::concat(&inputs, axis);
        let mut dst = vec![f64::NAN; want.len()];
        concat(&inputs, axis, &mut dst);
        prop_assert_eq!(dst, want);
    }

    #[test]
    fn prop_where(shape in arb_shape(), seed in any::<u64>(), mc in any::<u8>(), ma in any::<u8>()) {
        let mut rng = TestRng::new(seed);
        let sc: Vec<usize> = shape.iter().enumerate().map(|(i, &d)| if mc >> i & 1 == 1 { 1 } else { d }).collect();
        let sa: Vec<usize> = shape.iter().enumerate().map(|(i, &d)| if ma >> i & 1 == 1 { 1 } else { d }).collect();
        let (vc, va, vb) = (view(&mut rng, &sc), view(&mut rng, &sa), view(&mut rng, &shape));
        let cond: Vec<u8> = (0..vc.required_len() + 1).map(|_| (rng.next_u64() % 3) as u8).collect();
        let a = rng.vec_f32(va.required_len() + 1);
        let b = rng.vec_f32(vb.required_len() + 1);
        let (lc, la) = (broadcast_layout(&vc, &shape).unwrap(), broadcast_layout(&va, &shape).unwrap());
        let mut dst = vec![f32::NAN; shape.iter().product()];
        where_select(&cond, &lc, &a, &la, &b, &vb, &mut dst);
        let want: Vec<f32> = multi_indices(&shape).iter().map(|i| if cond[offset_of(&lc, i)] != 0 { a[offset_of(&la, i)] } else { b[offset_of(&vb, i)] }).collect();
        prop_assert_eq!(dst, want);
    }

    #[test]
    fn prop_upsample_and_adjoint(nc in 0usize..3, h in 1usize..7, w in 1usize..7, oh in 0usize..15, ow in 0usize..15, seed in any::<u64>()) {
        let mut rng = TestRng::new(seed);
        let x = rng.vec_f64(nc * h * w);
        let mut y = vec![f64::NAN; nc * oh * ow];
        upsample_nearest2d(nc, h, w, oh, ow, &x, &mut y);
        prop_assert_eq!(&y, &reference::upsample_nearest2d(nc, h, w, oh, ow, &x));
        let dy = rng.vec_f64(nc * oh * ow);
        let mut dx = vec![f64::NAN; nc * h * w];
        upsample_nearest2d_backward(nc, h, w, oh, ow, &dy, &mut dx);
        // ⟨f(x), dy⟩ = ⟨x, f*(dy)⟩: sums of ≤ a few hundred O(1) products, 1e-12 covers rounding.
        assert_close("upsample adjoint", &[dot(&y, &dy)][..], &[dot(&x, &dx)][..], Tolerance::new(1e-12, 1e-12));
    }

    #[test]
    fn prop_avg_pool_and_adjoint(nc in 1usize..3, h in 1usize..9, w in 1usize..9, kh in 1usize..4, kw in 1usize..4, sh in 1usize..4, sw in 1usize..4, php in 0usize..2, pwp in 0usize..2, inc in any::<bool>(), seed in any::<u64>()) {
        let p = Pool2dParams { nc, h, w, kernel: [kh, kw], stride: [sh, sw], padding: [php.min(kh / 2), pwp.min(kw / 2)], count_include_pad: inc };
        prop_assume!(p.validate().is_ok());
        let mut rng = TestRng::new(seed);
        let x = rng.vec_f64(nc * h * w);
        let mut y = vec![f64::NAN; nc * p.out_h() * p.out_w()];
        avg_pool2d(&p, &x, &mut y);
        let want = reference::avg_pool2d(nc, h, w, p.kernel, p.stride, p.padding, inc, &x);
        // f64 sums of ≤ 9 terms in the same order then one division: a few ulps.
        assert_close("avg_pool2d f64", &y, &want, Tolerance::new(1e-14, 1e-15));
        let xf: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        let mut yf = vec![0f32; y.len()];
        avg_pool2d(&p, &xf, &mut yf);
        let wantf = reference::avg_pool2d(nc, h, w, p.kernel, p.stride, p.padding, inc, &xf.iter().map(|&v| v as f64).collect::<Vec<_>>());
        // f32: ≤ 9 additions and a division, ~10 ε = 1.2e-6 relative to the sum of |x| ≤ 1.
        assert_close("avg_pool2d f32", &yf, &wantf, Tolerance::new(2e-6, 2e-6));
        let dy = rng.vec_f64(y.len());
        let mut dx = vec![f64::NAN; x.len()];
        avg_pool2d_backward(&p, &dy, &mut dx);
        assert_close("avg_pool2d adjoint", &[dot(&y, &dy)][..], &[dot(&x, &dx)][..], Tolerance::new(1e-12, 1e-12));
    }

    #[test]
    fn prop_index_select_and_adjoint(outer in 0usize..4, n in 1usize..6, inner in 0usize..5, idx in prop::collection::vec(-7i64..7, 0..8), seed in any::<u64>()) {
        let mut rng = TestRng::new(seed);
        let src = rng.vec_f64(outer * n * inner);
        let mut dst = vec![f64::NAN; outer * idx.len() * inner];
        let r = index_select(outer, n, inner, &src, &idx, &mut dst);
        let first_bad = idx.iter().position(|&i| i < -(n as i64) || i >= n as i64);
        match first_bad {
            Some(pos) => prop_assert_eq!(r, Err(pos)),
            None => {
                prop_assert_eq!(r, Ok(()));
                let want = reference::index_select(outer, n, inner, &src, &idx).unwrap();
                prop_assert_eq!(&dst, &want);
                let dy = rng.vec_f64(dst.len());
                let mut ds = vec![f64::NAN; src.len()];
                prop_assert_eq!(index_select_backward(outer, n, inner, &dy, &idx, &mut ds), Ok(()));
                assert_close("index_select adjoint", &[dot(&dst, &dy)][..], &[dot(&src, &ds)][..], Tolerance::new(1e-12, 1e-12));
            }
        }
    }
}

#[test]
fn copy_strided_batched_transpose_tiles_with_ragged_edges() {
    // [3, 50, 41] view of a [3, 41, 50] buffer (last two dims swapped), plus an offset; the
    // destination is a stepped view. Exercises the tiled path with outer dims and partial tiles.
    let mut rng = TestRng::new(5);
    let src = rng.vec_f64(3 * 41 * 50 + 3);
    let ls = StridedLayout::new(vec![3, 50, 41], vec![2050, 1, 50], 3);
    let ld = StridedLayout::new(vec![3, 50, 41], vec![50 * 41 * 2, 41 * 2, 2], 1);
    let mut dst = vec![-7.0; ld.required_len() + 1];
    let init = dst.clone();
    copy_strided(&src, &ls, &mut dst, &ld);
    let mut want = init;
    for idx in multi_indices(&ls.shape) {
        want[offset_of(&ld, &idx)] = src[offset_of(&ls, &idx)];
    }
    assert_eq!(dst, want);
}
