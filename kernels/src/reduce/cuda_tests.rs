//! `reduce.cu` through the host emulator against the CPU `reduce` / `arg_reduce` kernels, on
//! permuted, stepped, offset views with the reduced axes anywhere (moved last by
//! `cuda::permuted_arg`, as the runtime does), n_red ∈ {0, 1, 31, 32, 33, 1000+}, n_out 1 and many.
//!
//! Tolerances. The kernels accumulate in f64 and round once, so the expectation is the CPU kernel run
//! in f64 on the same (widened) input values, rounded to the dtype: f64 within 1e-12 relative (both
//! are f64 sums in different orders), f32 within 1.2e-7 relative (one rounding, plus 1e-12 absolute
//! for the f64 sum), f16/bf16 within one unit of the dtype (f64 → f32 → 16-bit double rounding can
//! differ from a direct rounding by one unit). Max/min/arg are exact. The f32 results are also held
//! to the CPU f32 kernel within its own (√n-grown) tolerance.

use super::cuda::{self, permuted_arg};
use super::*;
use crate::cuda_abi::StridedArg;
use crate::elementwise::tests_support::random_view;
use crate::emu::{self, CPtr, Ptr};
use crate::testing::{TestRng, Tolerance, assert_close};
use half::{bf16, f16};

type RedFn<S> = unsafe extern "C" fn(*const S, StridedArg, *mut S, i64, i64);
type VarFn<S> = unsafe extern "C" fn(*const S, StridedArg, *mut S, i64, i64, i64);
type ArgFn<S> = unsafe extern "C" fn(*const S, StridedArg, *mut i64, i64, i64);

unsafe extern "C" {
    fn reduce_sum_f32(x: *const f32, xl: StridedArg, y: *mut f32, n_out: i64, n_red: i64);
    fn reduce_mean_f32(x: *const f32, xl: StridedArg, y: *mut f32, n_out: i64, n_red: i64);
    fn reduce_max_f32(x: *const f32, xl: StridedArg, y: *mut f32, n_out: i64, n_red: i64);
    fn reduce_min_f32(x: *const f32, xl: StridedArg, y: *mut f32, n_out: i64, n_red: i64);
    fn reduce_var_f32(x: *const f32, xl: StridedArg, y: *mut f32, n_out: i64, n_red: i64, corr: i64);
    fn reduce_argmax_f32(x: *const f32, xl: StridedArg, y: *mut i64, n_out: i64, n_red: i64);
    fn reduce_argmin_f32(x: *const f32, xl: StridedArg, y: *mut i64, n_out: i64, n_red: i64);
    fn reduce_sum_f64(x: *const f64, xl: StridedArg, y: *mut f64, n_out: i64, n_red: i64);
    fn reduce_mean_f64(x: *const f64, xl: StridedArg, y: *mut f64, n_out: i64, n_red: i64);
    fn reduce_max_f64(x: *const f64, xl: StridedArg, y: *mut f64, n_out: i64, n_red: i64);
    fn reduce_min_f64(x: *const f64, xl: StridedArg, y: *mut f64, n_out: i64, n_red: i64);
    fn reduce_var_f64(x: *const f64, xl: StridedArg, y: *mut f64, n_out: i64, n_red: i64, corr: i64);
    fn reduce_argmax_f64(x: *const f64, xl: StridedArg, y: *mut i64, n_out: i64, n_red: i64);
    fn reduce_argmin_f64(x: *const f64, xl: StridedArg, y: *mut i64, n_out: i64, n_red: i64);
    fn reduce_sum_f16(x: *const u16, xl: StridedArg, y: *mut u16, n_out: i64, n_red: i64);
    fn reduce_mean_f16(x: *const u16, xl: StridedArg, y: *mut u16, n_out: i64, n_red: i64);
    fn reduce_max_f16(x: *const u16, xl: StridedArg, y: *mut u16, n_out: i64, n_red: i64);
    fn reduce_min_f16(x: *const u16, xl: StridedArg, y: *mut u16, n_out: i64, n_red: i64);
    fn reduce_var_f16(x: *const u16, xl: StridedArg, y: *mut u16, n_out: i64, n_red: i64, corr: i64);
    fn reduce_argmax_f16(x: *const u16, xl: StridedArg, y: *mut i64, n_out: i64, n_red: i64);
    fn reduce_argmin_f16(x: *const u16, xl: StridedArg, y: *mut i64, n_out: i64, n_red: i64);
    fn reduce_sum_bf16(x: *const u16, xl: StridedArg, y: *mut u16, n_out: i64, n_red: i64);
    fn reduce_mean_bf16(x: *const u16, xl: StridedArg, y: *mut u16, n_out: i64, n_red: i64);
    fn reduce_max_bf16(x: *const u16, xl: StridedArg, y: *mut u16, n_out: i64, n_red: i64);
    fn reduce_min_bf16(x: *const u16, xl: StridedArg, y: *mut u16, n_out: i64, n_red: i64);
    fn reduce_var_bf16(x: *const u16, xl: StridedArg, y: *mut u16, n_out: i64, n_red: i64, corr: i64);
    fn reduce_argmax_bf16(x: *const u16, xl: StridedArg, y: *mut i64, n_out: i64, n_red: i64);
    fn reduce_argmin_bf16(x: *const u16, xl: StridedArg, y: *mut i64, n_out: i64, n_red: i64);
    fn reduce_split_partial_f32(
        x: *const f32,
        xl: StridedArg,
        n_out: i64,
        n_red: i64,
        chunk: i64,
        chunks: i64,
        op: i32,
        partial: *mut f64,
    );
    fn reduce_split_finish_f32(
        p: *const f64,
        n_out: i64,
        chunks: i64,
        op: i32,
        corr: i64,
        y: *mut f32,
        yi: *mut i64,
    );
    fn reduce_split_partial_f64(
        x: *const f64,
        xl: StridedArg,
        n_out: i64,
        n_red: i64,
        chunk: i64,
        chunks: i64,
        op: i32,
        partial: *mut f64,
    );
    fn reduce_split_finish_f64(
        p: *const f64,
        n_out: i64,
        chunks: i64,
        op: i32,
        corr: i64,
        y: *mut f64,
        yi: *mut i64,
    );
    fn reduce_split_partial_bf16(
        x: *const u16,
        xl: StridedArg,
        n_out: i64,
        n_red: i64,
        chunk: i64,
        chunks: i64,
        op: i32,
        partial: *mut f64,
    );
    fn reduce_split_finish_bf16(
        p: *const f64,
        n_out: i64,
        chunks: i64,
        op: i32,
        corr: i64,
        y: *mut u16,
        yi: *mut i64,
    );
}

/// One dtype's kernels plus its storage conversions and tolerance.
struct Dt<S> {
    name: &'static str,
    sum: RedFn<S>,
    mean: RedFn<S>,
    max: RedFn<S>,
    min: RedFn<S>,
    var: VarFn<S>,
    argmax: ArgFn<S>,
    argmin: ArgFn<S>,
    enc: fn(f64) -> S,
    dec: fn(S) -> f64,
    tol: Tolerance,
}

fn f32_dt() -> Dt<f32> {
    Dt {
        name: "f32",
        sum: reduce_sum_f32,
        mean: reduce_mean_f32,
        max: reduce_max_f32,
        min: reduce_min_f32,
        var: reduce_var_f32,
        argmax: reduce_argmax_f32,
        argmin: reduce_argmin_f32,
        enc: |v| v as f32,
        dec: |s| s as f64,
        tol: Tolerance::new(1.2e-7, 1e-12),
    }
}
fn f64_dt() -> Dt<f64> {
    Dt {
        name: "f64",
        sum: reduce_sum_f64,
        mean: reduce_mean_f64,
        max: reduce_max_f64,
        min: reduce_min_f64,
        var: reduce_var_f64,
        argmax: reduce_argmax_f64,
        argmin: reduce_argmin_f64,
        enc: |v| v,
        dec: |s| s,
        tol: Tolerance::new(1e-12, 1e-13),
    }
}
fn f16_dt() -> Dt<u16> {
    Dt {
        name: "f16",
        sum: reduce_sum_f16,
        mean: reduce_mean_f16,
        max: reduce_max_f16,
        min: reduce_min_f16,
        var: reduce_var_f16,
        argmax: reduce_argmax_f16,
        argmin: reduce_argmin_f16,
        enc: |v| f16::from_f64(v).to_bits(),
        dec: |s| f16::from_bits(s).to_f64(),
        tol: Tolerance::new(1e-3, 1e-7),
    }
}
fn bf16_dt() -> Dt<u16> {
    Dt {
        name: "bf16",
        sum: reduce_sum_bf16,
        mean: reduce_mean_bf16,
        max: reduce_max_bf16,
        min: reduce_min_bf16,
        var: reduce_var_bf16,
        argmax: reduce_argmax_bf16,
        argmin: reduce_argmin_bf16,
        enc: |v| bf16::from_f64(v).to_bits(),
        dec: |s| bf16::from_bits(s).to_f64(),
        tol: Tolerance::new(8e-3, 1e-30),
    }
}

const OPS: [ReduceOp; 6] = [
    ReduceOp::Sum,
    ReduceOp::Mean,
    ReduceOp::Max,
    ReduceOp::Min,
    ReduceOp::Var { correction: 0 },
    ReduceOp::Var { correction: 1 },
];

/// Runs a value reduction kernel; returns the outputs widened to f64.
fn run_value<S: Copy + Default>(
    dt: &Dt<S>,
    op: ReduceOp,
    x: &[S],
    arg: StridedArg,
    n_out: usize,
    n_red: usize,
) -> Vec<f64> {
    let mut y = vec![S::default(); n_out];
    if n_out > 0 {
        let (xp, yp) = (CPtr::of(x), Ptr::of(&mut y));
        let dims = cuda::launch_dims(n_out, n_red);
        let (no, nr) = (n_out as i64, n_red as i64);
        // SAFETY: x covers the strided argument, y holds n_out elements.
        emu::launch(dims, || unsafe {
            match op {
                ReduceOp::Sum => (dt.sum)(xp.get(), arg, yp.get(), no, nr),
                ReduceOp::Mean => (dt.mean)(xp.get(), arg, yp.get(), no, nr),
                ReduceOp::Max => (dt.max)(xp.get(), arg, yp.get(), no, nr),
                ReduceOp::Min => (dt.min)(xp.get(), arg, yp.get(), no, nr),
                ReduceOp::Var { correction } => (dt.var)(xp.get(), arg, yp.get(), no, nr, correction as i64),
            }
        })
        .unwrap();
    }
    y.iter().map(|&v| (dt.dec)(v)).collect()
}

fn run_arg<S: Copy>(dt: &Dt<S>, max: bool, x: &[S], arg: StridedArg, n_out: usize, n_red: usize) -> Vec<i64> {
    let mut y = vec![-7i64; n_out];
    let (xp, yp) = (CPtr::of(x), Ptr::of(&mut y));
    let k = if max { dt.argmax } else { dt.argmin };
    // SAFETY: x covers the strided argument, y holds n_out elements.
    emu::launch(cuda::launch_dims(n_out, n_red), || unsafe {
        k(xp.get(), arg, yp.get(), n_out as i64, n_red as i64)
    })
    .unwrap();
    y
}

/// Checks every op of `dt` on `src` (f64 master values) viewed through `l`, reducing `axes`.
fn check_dtype<S: Copy + Default>(dt: &Dt<S>, src: &[f64], l: &StridedLayout, axes: &[usize]) {
    let x: Vec<S> = src.iter().map(|&v| (dt.enc)(v)).collect();
    let wide: Vec<f64> = x.iter().map(|&v| (dt.dec)(v)).collect();
    let (arg, n_out, n_red) = permuted_arg(l, axes).unwrap();
    for op in OPS {
        let mut want = vec![0f64; n_out];
        reduce(op, &wide, l, axes, &mut want);
        let want: Vec<f64> = want.iter().map(|&v| (dt.dec)((dt.enc)(v))).collect();
        let got = run_value(dt, op, &x, arg, n_out, n_red);
        let tol = if matches!(op, ReduceOp::Max | ReduceOp::Min) { Tolerance::new(0.0, 0.0) } else { dt.tol };
        assert_close(&format!("reduce {} {op:?} {:?} axes {axes:?}", dt.name, l.shape), &got, &want, tol);
    }
}

fn check_args<S: Copy + Default>(dt: &Dt<S>, src: &[f64], l: &StridedLayout, axis: usize) {
    let x: Vec<S> = src.iter().map(|&v| (dt.enc)(v)).collect();
    let wide: Vec<f64> = x.iter().map(|&v| (dt.dec)(v)).collect();
    let (arg, n_out, n_red) = permuted_arg(l, &[axis]).unwrap();
    for max in [true, false] {
        let mut want = vec![0i64; n_out];
        arg_reduce(if max { ReduceOp::Max } else { ReduceOp::Min }, &wide, l, axis, &mut want);
        let got = run_arg(dt, max, &x, arg, n_out, n_red);
        assert_eq!(got, want, "arg{} {} {:?} axis {axis}", if max { "max" } else { "min" }, dt.name, l.shape);
    }
}

fn values(rng: &mut TestRng, n: usize) -> Vec<f64> {
    (0..n).map(|_| rng.uniform() * 3.0 + 0.5).collect()
}

/// (shape, reduced axes): n_red 1, 31, 32, 33, 0, non-trailing axes, n_out 1, many rows.
const CASES: &[(&[usize], &[usize])] = &[
    (&[5, 1], &[1]),
    (&[4, 31], &[1]),
    (&[32, 3], &[0]),
    (&[3, 11, 3], &[0, 2]),
    (&[2, 33], &[1]),
    (&[4, 0], &[1]),
    (&[70], &[0]),
    (&[90, 5], &[1]),
    (&[3, 4, 5], &[0, 1, 2]),
];

#[test]
fn f32_and_f64_reductions_match_the_cpu_on_strided_views() {
    let mut rng = TestRng::new(301);
    for &(shape, axes) in CASES {
        let l = random_view(&mut rng, shape);
        let src = values(&mut rng, l.required_len().max(1));
        check_dtype(&f32_dt(), &src, &l, axes);
        check_dtype(&f64_dt(), &src, &l, axes);
    }
}

#[test]
fn long_rows_use_the_block_path() {
    let mut rng = TestRng::new(302);
    // n_red 1100 (one block per row), 2000 over two axes, n_out = 1 with n_red = 2500.
    for (shape, axes) in [(&[3usize, 1100][..], &[1usize][..]), (&[2, 40, 50], &[1, 2]), (&[2500], &[0])] {
        let l = random_view(&mut rng, shape);
        let src = values(&mut rng, l.required_len());
        check_dtype(&f32_dt(), &src, &l, axes);
        check_dtype(&f64_dt(), &src, &l, axes);
        check_args(&f32_dt(), &src, &l, axes[axes.len() - 1]);
    }
}

#[test]
fn f32_sums_hold_the_cpu_f32_kernel_tolerance_too() {
    let mut rng = TestRng::new(303);
    let l = random_view(&mut rng, &[6, 1500]);
    let src: Vec<f32> = values(&mut rng, l.required_len()).iter().map(|&v| v as f32).collect();
    let (arg, n_out, n_red) = permuted_arg(&l, &[1]).unwrap();
    let mut want = vec![0f32; n_out];
    reduce(ReduceOp::Sum, &src, &l, &[1], &mut want);
    let got = run_value(&f32_dt(), ReduceOp::Sum, &src, arg, n_out, n_red);
    assert_close("reduce_sum_f32 vs cpu f32", &got, &want, Tolerance::F32.for_reduction(n_red));
}

#[test]
fn sixteen_bit_reductions_round_once_from_f64() {
    let mut rng = TestRng::new(304);
    for &(shape, axes) in &[(&[4usize, 33][..], &[1usize][..]), (&[5, 3, 7], &[0, 2]), (&[2, 1030], &[1])] {
        let l = random_view(&mut rng, shape);
        let src = values(&mut rng, l.required_len());
        check_dtype(&f16_dt(), &src, &l, axes);
        check_dtype(&bf16_dt(), &src, &l, axes);
        check_args(&f16_dt(), &src, &l, axes[axes.len() - 1]);
        check_args(&bf16_dt(), &src, &l, axes[axes.len() - 1]);
    }
}

#[test]
fn arg_reductions_take_the_first_extreme_and_the_first_nan() {
    let mut rng = TestRng::new(305);
    for &(shape, axis) in
        &[(&[6usize, 40][..], 1usize), (&[33, 5], 0), (&[3, 7, 32], 1), (&[4, 1], 1), (&[2, 0], 1)]
    {
        let l = random_view(&mut rng, shape);
        // Few distinct values: many ties.
        let mut src: Vec<f64> = (0..l.required_len()).map(|_| (rng.uniform() * 3.0).round()).collect();
        check_args(&f32_dt(), &src, &l, axis);
        check_args(&f64_dt(), &src, &l, axis);
        // Sprinkle NaNs (several per buffer, so some rows hold two).
        for _ in 0..src.len() / 10 + 1 {
            let i = (rng.next_u64() % src.len().max(1) as u64) as usize;
            if let Some(v) = src.get_mut(i) {
                *v = f64::NAN;
            }
        }
        check_args(&f32_dt(), &src, &l, axis);
        check_args(&f64_dt(), &src, &l, axis);
    }
}

#[test]
fn max_min_propagate_nan_and_empty_rows_follow_the_cpu() {
    let mut rng = TestRng::new(306);
    let l = random_view(&mut rng, &[8, 45]);
    let mut src = values(&mut rng, l.required_len());
    for i in (0..src.len()).step_by(97) {
        src[i] = f64::NAN;
    }
    src[1] = f64::INFINITY;
    src[2] = f64::NEG_INFINITY;
    check_dtype(&f32_dt(), &src, &l, &[1]);
    check_dtype(&f64_dt(), &src, &l, &[1]);
    // Var with count ≤ correction is NaN; n_red = 1 with correction 1.
    let l1 = random_view(&mut rng, &[5, 1]);
    let s1 = values(&mut rng, l1.required_len());
    let (arg, n_out, n_red) = permuted_arg(&l1, &[1]).unwrap();
    let got = run_value(&f64_dt(), ReduceOp::Var { correction: 1 }, &s1, arg, n_out, n_red);
    assert!(got.iter().all(|v| v.is_nan()));
}

#[test]
fn the_kernels_do_not_depend_on_the_grid() {
    // Fewer blocks than rows (grid stride) and 64-thread blocks give the same results.
    let mut rng = TestRng::new(307);
    let l = random_view(&mut rng, &[50, 37]);
    let src: Vec<f64> = values(&mut rng, l.required_len());
    let (arg, n_out, n_red) = permuted_arg(&l, &[1]).unwrap();
    let full = run_value(&f64_dt(), ReduceOp::Var { correction: 1 }, &src, arg, n_out, n_red);
    for dims in [
        crate::cuda_abi::LaunchDims { grid: (2, 1, 1), block: (64, 1, 1), shared_mem_bytes: 0 },
        crate::cuda_abi::LaunchDims { grid: (1, 1, 1), block: (32, 1, 1), shared_mem_bytes: 0 },
    ] {
        let mut y = vec![0f64; n_out];
        let (xp, yp) = (CPtr::of(&src), Ptr::of(&mut y));
        // SAFETY: as in run_value.
        emu::launch(dims, || unsafe {
            reduce_var_f64(xp.get(), arg, yp.get(), n_out as i64, n_red as i64, 1)
        })
        .unwrap();
        assert_eq!(y, full, "{dims:?}");
    }
}

#[test]
fn variance_survives_a_large_offset() {
    // x = 1e8 + U(-3.5, 3.5) in f64 (and 1e4 + … in f32): no cancellation loss.
    let mut rng = TestRng::new(308);
    let l = random_view(&mut rng, &[3, 200]);
    let src: Vec<f64> = (0..l.required_len()).map(|_| 1e8 + rng.uniform() * 3.5).collect();
    check_dtype(&f64_dt(), &src, &l, &[1]);
    let src: Vec<f64> = (0..l.required_len()).map(|_| 1e4 + rng.uniform() * 3.5).collect();
    check_dtype(&f32_dt(), &src, &l, &[1]);
}

#[test]
fn block_path_passes_the_shared_memory_race_check() {
    let mut rng = TestRng::new(309);
    let l = random_view(&mut rng, &[3, 1100]);
    let src: Vec<f32> = values(&mut rng, l.required_len()).iter().map(|&v| v as f32).collect();
    let (arg, n_out, n_red) = permuted_arg(&l, &[1]).unwrap();
    let dims = cuda::launch_dims(n_out, n_red);
    let (mut y, mut idx) = (vec![0f32; n_out], vec![0i64; n_out]);
    let (xp, yp, ip) = (CPtr::of(&src), Ptr::of(&mut y), Ptr::of(&mut idx));
    let (no, nr) = (n_out as i64, n_red as i64);
    // SAFETY: x covers the strided argument, y and idx hold n_out elements.
    let races =
        emu::launch_checked(dims, || unsafe { reduce_var_f32(xp.get(), arg, yp.get(), no, nr, 1) }).unwrap();
    assert!(races.is_empty(), "{races:?}");
    // SAFETY: as above.
    let races =
        emu::launch_checked(dims, || unsafe { reduce_argmax_f32(xp.get(), arg, ip.get(), no, nr) }).unwrap();
    assert!(races.is_empty(), "{races:?}");
    // SAFETY: as above.
    let races =
        emu::launch_checked(dims, || unsafe { reduce_max_f32(xp.get(), arg, yp.get(), no, nr) }).unwrap();
    assert!(races.is_empty(), "{races:?}");
}

type SplitPartial<S> = unsafe extern "C" fn(*const S, StridedArg, i64, i64, i64, i64, i32, *mut f64);
type SplitFinish<S> = unsafe extern "C" fn(*const f64, i64, i64, i32, i64, *mut S, *mut i64);

/// Runs the two split stages; returns (values widened, indices).
#[allow(clippy::too_many_arguments)]
fn run_split<S: Copy + Default>(
    k: (SplitPartial<S>, SplitFinish<S>),
    dec: fn(S) -> f64,
    plan: cuda::SplitPlan,
    op: ReduceOp,
    arg_op: bool,
    x: &[S],
    arg: StridedArg,
    n_red: usize,
) -> (Vec<f64>, Vec<i64>) {
    let mut partial = vec![f64::NAN; plan.workspace_len()];
    let (xp, pp) = (CPtr::of(x), Ptr::of(&mut partial));
    let code = cuda::split_op_code(op, arg_op);
    let (no, nr, ch, nch) = (plan.n_out as i64, n_red as i64, plan.chunk as i64, plan.chunks as i64);
    // SAFETY: x covers the strided argument; partial holds workspace_len f64.
    emu::launch(plan.stage1(), || unsafe { (k.0)(xp.get(), arg, no, nr, ch, nch, code, pp.get()) }).unwrap();
    let (mut y, mut yi) = (vec![S::default(); plan.n_out], vec![-7i64; plan.n_out]);
    let (pc, yp, ip) = (CPtr::of(&partial), Ptr::of(&mut y), Ptr::of(&mut yi));
    let corr = if let ReduceOp::Var { correction } = op { correction as i64 } else { 0 };
    // SAFETY: partial as above; y and yi hold n_out elements.
    emu::launch(plan.stage2(), || unsafe { (k.1)(pc.get(), no, nch, code, corr, yp.get(), ip.get()) })
        .unwrap();
    (y.iter().map(|&v| dec(v)).collect(), yi)
}

#[test]
fn split_rows_match_the_cpu() {
    let mut rng = TestRng::new(310);
    // (shape, reduced axis, chunk): one long row in 3 chunks (last partial), three strided rows.
    for &(shape, axis, chunk) in
        &[(&[5000usize][..], 0usize, 1700usize), (&[3, 2100], 1, 1000), (&[40, 3], 0, 16)]
    {
        let l = random_view(&mut rng, shape);
        let mut src = values(&mut rng, l.required_len());
        for round in 0..2 {
            if round == 1 {
                // ties and NaNs for the arg/max paths
                for v in src.iter_mut() {
                    *v = (*v * 2.0).round();
                }
                for i in (0..src.len()).step_by(611) {
                    src[i] = f64::NAN;
                }
            }
            let (arg, n_out, n_red) = permuted_arg(&l, &[axis]).unwrap();
            let plan = cuda::SplitPlan::with_chunk(n_out, n_red, chunk);
            assert!(plan.chunks > 1);
            let x32: Vec<f32> = src.iter().map(|&v| v as f32).collect();
            let w32: Vec<f64> = x32.iter().map(|&v| v as f64).collect();
            // Round 1 (ties, NaN) only matters for max/min/arg.
            let ops: &[ReduceOp] = if round == 0 { &OPS } else { &[ReduceOp::Max, ReduceOp::Min] };
            for &op in ops {
                let mut want = vec![0f64; n_out];
                reduce(op, &src, &l, &[axis], &mut want);
                let (got, _) = run_split(
                    (reduce_split_partial_f64, reduce_split_finish_f64),
                    |v| v,
                    plan,
                    op,
                    false,
                    &src,
                    arg,
                    n_red,
                );
                assert_close(
                    &format!("split f64 {op:?} {shape:?}"),
                    &got,
                    &want,
                    Tolerance::new(1e-12, 1e-12),
                );
                let mut want = vec![0f64; n_out];
                reduce(op, &w32, &l, &[axis], &mut want);
                let want: Vec<f64> = want.iter().map(|&v| v as f32 as f64).collect();
                let (got, _) = run_split(
                    (reduce_split_partial_f32, reduce_split_finish_f32),
                    |v| v as f64,
                    plan,
                    op,
                    false,
                    &x32,
                    arg,
                    n_red,
                );
                assert_close(
                    &format!("split f32 {op:?} {shape:?}"),
                    &got,
                    &want,
                    Tolerance::new(1.2e-7, 1e-12),
                );
            }
            for max in [true, false] {
                let op = if max { ReduceOp::Max } else { ReduceOp::Min };
                let mut want = vec![0i64; n_out];
                arg_reduce(op, &src, &l, axis, &mut want);
                let (_, got) = run_split(
                    (reduce_split_partial_f64, reduce_split_finish_f64),
                    |v| v,
                    plan,
                    op,
                    true,
                    &src,
                    arg,
                    n_red,
                );
                assert_eq!(got, want, "split arg{op:?} {shape:?}");
            }
        }
    }
}

#[test]
fn split_rows_bf16_storage() {
    let mut rng = TestRng::new(311);
    let l = random_view(&mut rng, &[2, 3000]);
    let src = values(&mut rng, l.required_len());
    let dt = bf16_dt();
    let x: Vec<u16> = src.iter().map(|&v| (dt.enc)(v)).collect();
    let wide: Vec<f64> = x.iter().map(|&v| (dt.dec)(v)).collect();
    let (arg, n_out, n_red) = permuted_arg(&l, &[1]).unwrap();
    let plan = cuda::SplitPlan::with_chunk(n_out, n_red, 1000);
    let k = (reduce_split_partial_bf16 as SplitPartial<u16>, reduce_split_finish_bf16 as SplitFinish<u16>);
    let mut want = vec![0f64; n_out];
    reduce(ReduceOp::Sum, &wide, &l, &[1], &mut want);
    let want: Vec<f64> = want.iter().map(|&v| (dt.dec)((dt.enc)(v))).collect();
    let (got, _) = run_split(k, dt.dec, plan, ReduceOp::Sum, false, &x, arg, n_red);
    assert_close("split bf16 sum", &got, &want, dt.tol);
    let mut want = vec![0i64; n_out];
    arg_reduce(ReduceOp::Max, &wide, &l, 1, &mut want);
    let (_, got) = run_split(k, dt.dec, plan, ReduceOp::Max, true, &x, arg, n_red);
    assert_eq!(got, want);
}

#[test]
fn split_plans_only_for_few_long_rows() {
    assert_eq!(cuda::SplitPlan::new(1, 1000), None);
    assert_eq!(cuda::SplitPlan::new(1000, 1 << 20), None);
    let p = cuda::SplitPlan::new(1, 1 << 24).unwrap();
    assert!(p.chunks >= 500 && p.chunk >= 4096 && p.chunk * p.chunks >= 1 << 24, "{p:?}");
    let p = cuda::SplitPlan::new(4, 20_000).unwrap();
    assert_eq!((p.chunk, p.chunks), (4096, 5));
}

#[test]
fn split_stage1_passes_the_shared_memory_race_check() {
    let mut rng = TestRng::new(312);
    let l = random_view(&mut rng, &[2, 1500]);
    let src = values(&mut rng, l.required_len());
    let (arg, n_out, n_red) = permuted_arg(&l, &[1]).unwrap();
    let plan = cuda::SplitPlan::with_chunk(n_out, n_red, 800);
    let mut partial = vec![0f64; plan.workspace_len()];
    let (xp, pp) = (CPtr::of(&src), Ptr::of(&mut partial));
    let (no, nr, ch, nch) = (n_out as i64, n_red as i64, plan.chunk as i64, plan.chunks as i64);
    for op in [4, 5] {
        // SAFETY: x covers the strided argument; partial holds workspace_len f64.
        let races = emu::launch_checked(plan.stage1(), || unsafe {
            reduce_split_partial_f64(xp.get(), arg, no, nr, ch, nch, op, pp.get())
        })
        .unwrap();
        assert!(races.is_empty(), "op {op}: {races:?}");
    }
}
