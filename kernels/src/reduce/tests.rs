use super::reference;
use super::*;
use crate::testing::{TestRng, Tolerance, assert_close};
use proptest::prelude::*;

const OPS: [ReduceOp; 7] = [
    ReduceOp::Sum,
    ReduceOp::Mean,
    ReduceOp::Max,
    ReduceOp::Min,
    ReduceOp::Var { correction: 0 },
    ReduceOp::Var { correction: 1 },
    ReduceOp::Var { correction: 3 },
];

/// A layout of logical `shape` over a buffer: dims permuted in memory by `perm`, each physical dim padded
/// by `pad` (slicing: gaps between rows, an offset), and dims in `bcast` given stride 0.
fn make_layout(shape: &[usize], perm: &[usize], pad: &[usize], bcast: &[bool]) -> StridedLayout {
    let rank = shape.len();
    let phys: Vec<usize> = (0..rank).map(|i| shape[perm[i]] + pad[i]).collect();
    let ps = crate::strided::contiguous_strides(&phys);
    let mut strides = vec![0; rank];
    let mut offset = 0;
    for i in 0..rank {
        strides[perm[i]] = if bcast[perm[i]] { 0 } else { ps[i] };
        offset += pad[i].min(1) * ps[i]; // start one element in along padded dims
    }
    StridedLayout::new(shape.to_vec(), strides, offset)
}

/// Tolerance for `op` on f32 (`f64 = false`) or f64 inputs, given the largest Σ|x| of an output.
fn tol(op: ReduceOp, is_f64: bool, max_abs_sum: f64) -> Tolerance {
    // eps of the element type
    let eps = if is_f64 { f64::EPSILON } else { f32::EPSILON as f64 };
    match op {
        // exact: max/min select an input element
        ReduceOp::Max | ReduceOp::Min => Tolerance::new(0.0, 0.0),
        // Each accumulator sees at most 64 sequential T adds (column path flush; row path: 256/16 = 16)
        // before going to f64: worst case 64·eps·Σ|x| absolute, plus the final rounding to T (eps rel).
        ReduceOp::Sum | ReduceOp::Mean => Tolerance::new(2.0 * eps, 64.0 * eps * max_abs_sum.max(1.0)),
        // M2 is a sum of squares of deviations: same 64·eps growth, relative to the result; abs floor for
        // results that are ~0 (constant lines, broadcast dims).
        ReduceOp::Var { .. } => Tolerance::new(128.0 * eps, 64.0 * eps),
    }
}

fn check_reduce_f32(op: ReduceOp, layout: &StridedLayout, axes: &[usize], src: &[f32]) {
    let src64: Vec<f64> = src.iter().map(|&v| v as f64).collect();
    let want = reference::reduce(op, &src64, layout, axes);
    let mut got = vec![0.0f32; want.len()];
    reduce(op, src, layout, axes, &mut got);
    let mas = reference::abs_sums(&src64, layout, axes).into_iter().fold(0.0, f64::max);
    let what = format!("reduce f32 {op:?} layout {layout:?} axes {axes:?}");
    assert_close(&what, &got, &want, tol(op, false, mas));
}

fn check_reduce_f64(op: ReduceOp, layout: &StridedLayout, axes: &[usize], src: &[f64]) {
    let want = reference::reduce(op, src, layout, axes);
    let mut got = vec![0.0f64; want.len()];
    reduce(op, src, layout, axes, &mut got);
    let mas = reference::abs_sums(src, layout, axes).into_iter().fold(0.0, f64::max);
    let what = format!("reduce f64 {op:?} layout {layout:?} axes {axes:?}");
    assert_close(&what, &got, &want, tol(op, true, mas));
}

fn check_arg(layout: &StridedLayout, axis: usize, src: &[f32]) {
    let src64: Vec<f64> = src.iter().map(|&v| v as f64).collect();
    for is_max in [true, false] {
        let want = reference::arg_reduce(is_max, &src64, layout, axis);
        let mut got = vec![7i64; want.len()];
        let op = if is_max { ReduceOp::Max } else { ReduceOp::Min };
        arg_reduce(op, src, layout, axis, &mut got);
        assert_eq!(got, want, "arg_reduce {op:?} layout {layout:?} axis {axis}");
    }
}

/// Inputs with many ties (values on a coarse grid) so the first-index rule of arg_reduce is exercised.
fn input(rng: &mut TestRng, n: usize, ties: bool) -> Vec<f32> {
    (0..n).map(|_| if ties { (rng.uniform() * 3.0).round() as f32 } else { rng.uniform() as f32 }).collect()
}

fn layout_strategy() -> impl Strategy<Value = (StridedLayout, Vec<usize>, u64)> {
    (0usize..=4)
        .prop_flat_map(|rank| {
            (
                prop::collection::vec(
                    prop_oneof![3 => 0usize..=6, 1 => Just(1usize), 1 => 15usize..=21],
                    rank,
                ),
                Just((0..rank).collect::<Vec<_>>()).prop_shuffle(),
                prop::collection::vec(prop_oneof![3 => Just(0usize), 1 => 1usize..=3], rank),
                prop::collection::vec(prop::bool::weighted(0.15), rank),
                prop::collection::vec(any::<bool>(), rank),
                any::<u64>(),
            )
        })
        .prop_map(|(shape, perm, pad, bcast, axmask, seed)| {
            let layout = make_layout(&shape, &perm, &pad, &bcast);
            let axes: Vec<usize> = (0..shape.len()).filter(|&d| axmask[d]).collect();
            (layout, axes, seed)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn prop_reduce_matches_reference((layout, axes, seed) in layout_strategy()) {
        let mut rng = TestRng::new(seed);
        let len = layout.required_len();
        let src = input(&mut rng, len, seed % 3 == 0);
        let src64 = rng.vec_f64(len);
        for op in OPS {
            check_reduce_f32(op, &layout, &axes, &src);
            check_reduce_f64(op, &layout, &axes, &src64);
        }
    }

    #[test]
    fn prop_arg_reduce_matches_reference((layout, _axes, seed) in layout_strategy()) {
        prop_assume!(layout.rank() > 0);
        let mut rng = TestRng::new(seed);
        let src = input(&mut rng, layout.required_len(), seed % 2 == 0);
        let axis = (seed as usize / 7) % layout.rank();
        check_arg(&layout, axis, &src);
    }
}

#[test]
fn awkward_fixed_layouts_all_ops() {
    let mut rng = TestRng::new(1);
    // (shape, perm, pad, bcast, axes): size-0 and size-1 dims, transposes, slices, broadcast
    let cases: Vec<(Vec<usize>, Vec<usize>, Vec<usize>, Vec<bool>, Vec<usize>)> = vec![
        (vec![], vec![], vec![], vec![], vec![]),
        (vec![5], vec![0], vec![0], vec![false], vec![]),
        (vec![5], vec![0], vec![2], vec![false], vec![0]),
        (vec![1, 1], vec![0, 1], vec![0, 0], vec![false, false], vec![0, 1]),
        (vec![3, 0, 4], vec![0, 1, 2], vec![0; 3], vec![false; 3], vec![1]),
        (vec![3, 0, 4], vec![0, 1, 2], vec![0; 3], vec![false; 3], vec![0, 2]),
        (vec![7, 33], vec![1, 0], vec![0, 0], vec![false, false], vec![0]),
        (vec![7, 33], vec![1, 0], vec![1, 2], vec![false, false], vec![1]),
        (vec![13, 9, 17], vec![2, 0, 1], vec![1, 0, 1], vec![false, true, false], vec![0, 2]),
        (vec![4, 1, 300], vec![0, 1, 2], vec![0, 0, 5], vec![false; 3], vec![0]),
        (vec![2, 600, 3], vec![0, 2, 1], vec![0; 3], vec![false; 3], vec![1]),
        (vec![601, 9], vec![0, 1], vec![0, 3], vec![false, false], vec![0]),
        (vec![6, 5], vec![0, 1], vec![0, 0], vec![true, false], vec![0]),
    ];
    for (shape, perm, pad, bcast, axes) in cases {
        let layout = make_layout(&shape, &perm, &pad, &bcast);
        let src = input(&mut rng, layout.required_len(), false);
        let src64 = rng.vec_f64(layout.required_len());
        for op in OPS {
            check_reduce_f32(op, &layout, &axes, &src);
            check_reduce_f64(op, &layout, &axes, &src64);
        }
        if !shape.is_empty() {
            for axis in 0..shape.len() {
                check_arg(&layout, axis, &src);
            }
        }
    }
}

#[test]
fn empty_reductions_follow_the_documented_values() {
    let layout = StridedLayout::contiguous(&[3, 0]);
    let src: [f32; 0] = [];
    let mut dst = [5.0f32; 3];
    reduce(ReduceOp::Sum, &src, &layout, &[1], &mut dst);
    assert_eq!(dst, [0.0; 3]);
    for op in [ReduceOp::Mean, ReduceOp::Max, ReduceOp::Min, ReduceOp::Var { correction: 0 }] {
        let mut dst = [5.0f32; 3];
        reduce(op, &src, &layout, &[1], &mut dst);
        assert!(dst.iter().all(|v| v.is_nan()), "{op:?} of empty gave {dst:?}");
    }
    // count == correction
    let l = StridedLayout::contiguous(&[2, 1]);
    let mut d = [0.0f32; 2];
    reduce(ReduceOp::Var { correction: 1 }, &[1.0f32, 2.0], &l, &[1], &mut d);
    assert!(d.iter().all(|v| v.is_nan()));
    let mut idx = [0i64; 3];
    arg_reduce(ReduceOp::Max, &src, &layout, 1, &mut idx);
    assert_eq!(idx, [-1; 3]);
}

#[test]
fn max_min_propagate_nan_on_row_and_column_paths() {
    let (r, c) = (37, 45);
    let mut rng = TestRng::new(9);
    let mut x = rng.vec_f32(r * c);
    x[3 * c + 17] = f32::NAN; // row 3, column 17
    x[20 * c + 40] = f32::NAN;
    let l = StridedLayout::contiguous(&[r, c]);
    for op in [ReduceOp::Max, ReduceOp::Min] {
        let mut rows = vec![0.0f32; r];
        reduce(op, &x, &l, &[1], &mut rows);
        let mut cols = vec![0.0f32; c];
        reduce(op, &x, &l, &[0], &mut cols);
        for (i, v) in rows.iter().enumerate() {
            assert_eq!(v.is_nan(), i == 3 || i == 20, "{op:?} row {i}: {v}");
        }
        for (j, v) in cols.iter().enumerate() {
            assert_eq!(v.is_nan(), j == 17 || j == 40, "{op:?} col {j}: {v}");
        }
        let mut a = vec![0i64; r];
        arg_reduce(op, &x, &l, 1, &mut a);
        assert_eq!((a[3], a[20]), (17, 40));
    }
}

#[test]
fn large_inputs_use_parallel_paths_and_match() {
    let mut rng = TestRng::new(3);
    // row path (outputs split), column path with a kept dim wider than one accumulator row, and a full
    // reduction split into parts.
    let x = rng.vec_f32(300 * 1000);
    let l = StridedLayout::contiguous(&[300, 1000]);
    for op in OPS {
        check_reduce_f32(op, &l, &[1], &x);
        check_reduce_f32(op, &l, &[0], &x);
        check_reduce_f32(op, &l, &[0, 1], &x);
    }
    let t = StridedLayout::new(vec![1000, 300], vec![1, 1000], 0); // transpose
    check_reduce_f32(ReduceOp::Sum, &t, &[0], &x);
    check_reduce_f32(ReduceOp::Var { correction: 1 }, &t, &[1], &x);
}

#[test]
fn f32_sums_are_accurate_beyond_naive_accumulation() {
    // 2^22 values in [0, 1): a naive sequential f32 sum is off by ~1e-3 relative here (the running sum
    // reaches 2^21, where one ulp is 0.25). The blocked f64 scheme must stay within 1e-6.
    let n = 1 << 22;
    let mut rng = TestRng::new(5);
    let x: Vec<f32> = (0..n).map(|_| (rng.uniform() * 0.5 + 0.5) as f32).collect();
    let exact: f64 = x.iter().map(|&v| v as f64).sum();
    let naive: f32 = x.iter().sum();
    let mut got = [0.0f32];
    reduce(ReduceOp::Sum, &x, &StridedLayout::contiguous(&[n]), &[0], &mut got);
    let rel = |v: f64| ((v - exact) / exact).abs();
    assert!(rel(got[0] as f64) < 1e-6, "blocked sum rel err {}", rel(got[0] as f64));
    assert!(rel(naive as f64) > 1e-5, "naive sum unexpectedly accurate: {}", rel(naive as f64));
    // column path: same values as [n/64, 64] reduced over axis 0
    let mut cols = vec![0.0f32; 64];
    reduce(ReduceOp::Sum, &x, &StridedLayout::contiguous(&[n / 64, 64]), &[0], &mut cols);
    let total: f64 = cols.iter().map(|&v| v as f64).sum();
    assert!(rel(total) < 1e-6, "column sums rel err {}", rel(total));
}

#[test]
fn variance_survives_large_offsets() {
    // x = 1e4 + noise of std ~0.06: E[x²] − E[x]² in f32 would lose every digit (1e8 vs 4e-3).
    let mut rng = TestRng::new(11);
    let (r, c) = (64, 700);
    let x: Vec<f32> = (0..r * c).map(|_| (1e4 + 0.1 * rng.uniform()) as f32).collect();
    let l = StridedLayout::contiguous(&[r, c]);
    for axes in [&[1usize][..], &[0], &[0, 1]] {
        let op = ReduceOp::Var { correction: 1 };
        let src64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        let want = reference::reduce(op, &src64, &l, axes);
        let mut got = vec![0.0f32; want.len()];
        reduce(op, &x, &l, axes, &mut got);
        // relative to the variance itself (~3e-3): deviations x − shift are exact, so only the
        // accumulation error of squares remains (≤ 64·eps relative).
        assert_close(&format!("var large offset axes {axes:?}"), &got, &want, Tolerance::new(1e-5, 0.0));
    }
}
