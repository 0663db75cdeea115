//! CPU reduction kernels: planning (coalescing), the row / column / general paths, parallel split.

use super::ReduceOp;
use super::simd::{self, BLOCK, Moments};
use crate::parallel;
use crate::strided::{coalesce, contiguous_strides};
use crate::{Float, StridedLayout};
use std::cmp::Reverse;

/// Width of the accumulator row in the column path (elements of the kept contiguous dim per task).
const COL_WIDTH: usize = 256;
/// Column path: reduced rows accumulated in `T` before the partial sums are flushed to f64.
const COL_FLUSH: usize = 64;
/// With fewer outputs than this, a large reduction is split into parts reduced in parallel.
const SPLIT_OUTPUTS: usize = 4;
/// Minimum reduction length for that split.
const SPLIT_MIN: usize = 1 << 16;
/// Number of parts of that split (fixed, so results do not depend on the thread count).
const SPLIT_PARTS: usize = 64;

/// Mergeable partial state of one output. Sum/Mean: `a = Σx`; Max/Min: `a` = extreme (NaN sticky);
/// Var: `a` = mean, `b` = M2. `n` = number of elements seen.
#[derive(Clone, Copy, Debug)]
struct Part {
    n: f64,
    a: f64,
    b: f64,
}

fn empty_part(op: ReduceOp) -> Part {
    let a = match op {
        ReduceOp::Max => f64::NEG_INFINITY,
        ReduceOp::Min => f64::INFINITY,
        _ => 0.0,
    };
    Part { n: 0.0, a, b: 0.0 }
}

fn merge(op: ReduceOp, p: Part, q: Part) -> Part {
    let n = p.n + q.n;
    match op {
        ReduceOp::Sum | ReduceOp::Mean => Part { n, a: p.a + q.a, b: 0.0 },
        ReduceOp::Max => Part { n, a: simd::max_nan(p.a, q.a), b: 0.0 },
        ReduceOp::Min => Part { n, a: simd::min_nan(p.a, q.a), b: 0.0 },
        ReduceOp::Var { .. } => {
            let m = Moments { n: p.n, mean: p.a, m2: p.b }.merge(Moments { n: q.n, mean: q.a, m2: q.b });
            Part { n: m.n, a: m.mean, b: m.m2 }
        }
    }
}

/// Value of an empty reduction (see the module doc).
fn empty_value<T: Float>(op: ReduceOp) -> T {
    match op {
        ReduceOp::Sum => T::ZERO,
        _ => T::from_f64(f64::NAN),
    }
}

fn finish<T: Float>(op: ReduceOp, p: Part) -> T {
    match op {
        ReduceOp::Sum | ReduceOp::Max | ReduceOp::Min => T::from_f64(p.a),
        ReduceOp::Mean => T::from_f64(p.a / p.n),
        ReduceOp::Var { correction } => var_value(p.n, p.b, correction),
    }
}

fn var_value<T: Float>(n: f64, m2: f64, correction: usize) -> T {
    if n <= correction as f64 { T::from_f64(f64::NAN) } else { T::from_f64(m2 / (n - correction as f64)) }
}

/// Partial state of a contiguous run.
fn contig_part<T: Float>(op: ReduceOp, x: &[T]) -> Part {
    let n = x.len() as f64;
    match op {
        ReduceOp::Sum | ReduceOp::Mean => Part { n, a: simd::sum_f64(x), b: 0.0 },
        ReduceOp::Max => Part { n, a: simd::max_contig(x).to_f64(), b: 0.0 },
        ReduceOp::Min => Part { n, a: simd::min_contig(x).to_f64(), b: 0.0 },
        ReduceOp::Var { .. } => {
            let m = simd::moments(x);
            Part { n: m.n, a: m.mean, b: m.m2 }
        }
    }
}

/// Partial state of a run of `len` elements at `off`, `off + s`, ... (gathered into a stack block when
/// `s != 1`, then reduced with the contiguous kernels).
fn run_part<T: Float>(op: ReduceOp, src: &[T], off: usize, len: usize, s: usize) -> Part {
    if s == 1 {
        return contig_part(op, &src[off..off + len]);
    }
    let mut buf = [T::ZERO; BLOCK];
    let mut p = empty_part(op);
    let mut start = 0;
    while start < len {
        let m = (len - start).min(BLOCK);
        for (k, b) in buf[..m].iter_mut().enumerate() {
            *b = src[off + (start + k) * s];
        }
        p = merge(op, p, contig_part(op, &buf[..m]));
        start += m;
    }
    p
}

/// Calls `f(offset)` for every multi-index of `shape` (row-major), offsets from `base` with `strides`.
fn for_each_index(shape: &[usize], strides: &[usize], base: usize, f: &mut impl FnMut(usize)) {
    match shape.split_first() {
        None => f(base),
        Some((&n, rest)) => {
            for i in 0..n {
                for_each_index(rest, &strides[1..], base + i * strides[0], f);
            }
        }
    }
}

/// Offset of row-major flat index `i` of `shape` under `strides`.
fn unravel(mut i: usize, shape: &[usize], strides: &[usize]) -> usize {
    let mut off = 0;
    for d in (0..shape.len()).rev() {
        off += (i % shape[d]) * strides[d];
        i /= shape[d];
    }
    off
}

/// Whole reduction of one output starting at `off` (all of `rshape`, innermost dim last).
fn seg_part<T: Float>(op: ReduceOp, src: &[T], off: usize, rshape: &[usize], rstr: &[usize]) -> Part {
    let r = rshape.len();
    let (len, s) = (rshape[r - 1], rstr[r - 1]);
    let mut p = empty_part(op);
    for_each_index(&rshape[..r - 1], &rstr[..r - 1], off, &mut |o| {
        p = merge(op, p, run_part(op, src, o, len, s))
    });
    p
}

/// Coalesced description of a reduction.
struct Plan<'a> {
    base: usize,
    /// kept dims (coalesced jointly with the contiguous dst) and their src strides
    kshape: &'a [usize],
    kstr: &'a [usize],
    /// reduced dims, broadcast dims first then by decreasing stride, coalesced
    rshape: &'a [usize],
    rstr: &'a [usize],
}

pub(super) fn reduce<T: Float>(
    op: ReduceOp,
    src: &[T],
    layout: &StridedLayout,
    axes: &[usize],
    dst: &mut [T],
) {
    if dst.is_empty() {
        return;
    }
    let (mut ks, mut kt, mut rd) = (vec![], vec![], vec![]);
    for d in 0..layout.rank() {
        if axes.contains(&d) {
            rd.push((layout.shape[d], layout.strides[d]));
        } else {
            ks.push(layout.shape[d]);
            kt.push(layout.strides[d]);
        }
    }
    if rd.iter().any(|&(n, _)| n == 0) {
        dst.fill(empty_value(op));
        return;
    }
    let kd = contiguous_strides(&ks);
    let (kshape, kstrs) = coalesce(&[&ks], &[&kt, &kd]).expect("non-empty kept shape");
    rd.retain(|&(n, _)| n > 1);
    // stable sort: broadcast (stride 0) dims outermost, then decreasing stride, so the innermost reduced
    // dim has the smallest non-zero stride.
    rd.sort_by_key(|&(_, s)| Reverse(if s == 0 { usize::MAX } else { s }));
    let (rs, rt): (Vec<usize>, Vec<usize>) = rd.into_iter().unzip();
    let (rshape, rstrs) = coalesce(&[&rs], &[&rt]).expect("non-empty reduced shape");
    let plan =
        Plan { base: layout.offset, kshape: &kshape, kstr: &kstrs[0], rshape: &rshape, rstr: &rstrs[0] };

    let row = *plan.rstr.last().unwrap() == 1 && *plan.rshape.last().unwrap() > 1;
    let col = !row && *plan.kstr.last().unwrap() == 1 && *plan.kshape.last().unwrap() >= 8;
    if col { reduce_columns(op, src, &plan, dst) } else { reduce_outputs(op, src, &plan, dst) }
}

/// Row / general path: every output reduces its own runs; outputs split across threads, or, for a few
/// large outputs, the reduction split into `SPLIT_PARTS` parts along the outermost reduced dim.
fn reduce_outputs<T: Float>(op: ReduceOp, src: &[T], plan: &Plan, dst: &mut [T]) {
    let nout = dst.len();
    let count: usize = plan.rshape.iter().product();
    let (rshape, rstr) = (plan.rshape, plan.rstr);
    if nout < SPLIT_OUTPUTS && count >= SPLIT_MIN && rshape[0] >= 2 {
        let parts = rshape[0].min(SPLIT_PARTS);
        for (i, d) in dst.iter_mut().enumerate() {
            let off = plan.base + unravel(i, plan.kshape, plan.kstr);
            let mut ps = vec![empty_part(op); parts];
            parallel::par_chunks_mut(&mut ps, 1, count, |p, slot| {
                let (lo, hi) = (p * rshape[0] / parts, (p + 1) * rshape[0] / parts);
                let mut sh = rshape.to_vec();
                sh[0] = hi - lo;
                slot[0] = seg_part(op, src, off + lo * rstr[0], &sh, rstr);
            });
            *d = finish(op, ps.into_iter().fold(empty_part(op), |a, b| merge(op, a, b)));
        }
        return;
    }
    let chunk = nout.div_ceil(8 * parallel::num_threads()).max(1);
    parallel::par_chunks_mut(dst, chunk, nout.saturating_mul(count), |ci, out| {
        for (k, d) in out.iter_mut().enumerate() {
            let off = plan.base + unravel(ci * chunk + k, plan.kshape, plan.kstr);
            *d = finish(op, seg_part(op, src, off, rshape, rstr));
        }
    });
}

/// Column path: the innermost kept dim is contiguous in src; every reduced row (offset from the
/// reduced odometer) is folded into a row of accumulators, vectorised over that dim.
fn reduce_columns<T: Float>(op: ReduceOp, src: &[T], plan: &Plan, dst: &mut [T]) {
    let k = plan.kshape.len();
    let w = plan.kshape[k - 1];
    let per_run = w.div_ceil(COL_WIDTH);
    let count: usize = plan.rshape.iter().product();
    let work = dst.len().saturating_mul(count);
    let mut tasks: Vec<&mut [T]> = dst.chunks_mut(w).flat_map(|r| r.chunks_mut(COL_WIDTH)).collect();
    parallel::par_chunks_mut(&mut tasks, 1, work, |t, task| {
        let (run, col0) = (t / per_run, (t % per_run) * COL_WIDTH);
        let off = plan.base + unravel(run, &plan.kshape[..k - 1], &plan.kstr[..k - 1]) + col0;
        column_block(op, src, off, &mut *task[0], plan.rshape, plan.rstr);
    });
}

/// Sums `src[o + j]` over every reduced offset `o` (from `off`) into `out64[j]`, `T` lanes flushed to f64
/// every `COL_FLUSH` rows. With `shift`, accumulates `Σ(x − shift[j])` into `out64` and `Σ(x − shift[j])²`
/// into `q64`.
fn column_sums<T: Float>(
    src: &[T],
    off: usize,
    rshape: &[usize],
    rstr: &[usize],
    out64: &mut [f64],
    shift: Option<(&[T], &mut [f64])>,
) {
    let cw = out64.len();
    let mut acc = [T::ZERO; COL_WIDTH];
    let mut accq = [T::ZERO; COL_WIDTH];
    let (acc, accq) = (&mut acc[..cw], &mut accq[..cw]);
    let mut rows = 0;
    let (shift, mut q64) = match shift {
        Some((s, q)) => (Some(s), Some(q)),
        None => (None, None),
    };
    let flush = |acc: &mut [T], accq: &mut [T], out64: &mut [f64], q64: &mut Option<&mut [f64]>| {
        for (o, a) in out64.iter_mut().zip(acc.iter_mut()) {
            *o += a.to_f64();
            *a = T::ZERO;
        }
        if let Some(q64) = q64 {
            for (o, a) in q64.iter_mut().zip(accq.iter_mut()) {
                *o += a.to_f64();
                *a = T::ZERO;
            }
        }
    };
    for_each_index(rshape, rstr, off, &mut |o| {
        let row = &src[o..o + cw];
        match shift {
            None => simd::add_row(acc, row),
            Some(s) => simd::dev_row(acc, accq, row, s),
        }
        rows += 1;
        if rows == COL_FLUSH {
            flush(acc, accq, out64, &mut q64);
            rows = 0;
        }
    });
    flush(acc, accq, out64, &mut q64);
}

fn column_block<T: Float>(
    op: ReduceOp,
    src: &[T],
    off: usize,
    out: &mut [T],
    rshape: &[usize],
    rstr: &[usize],
) {
    let cw = out.len();
    let count: usize = rshape.iter().product();
    let nf = count as f64;
    match op {
        ReduceOp::Sum | ReduceOp::Mean => {
            let mut s64 = [0.0f64; COL_WIDTH];
            column_sums(src, off, rshape, rstr, &mut s64[..cw], None);
            let scale = if op == ReduceOp::Mean { 1.0 / nf } else { 1.0 };
            for (o, s) in out.iter_mut().zip(&s64) {
                *o = T::from_f64(s * scale);
            }
        }
        ReduceOp::Max | ReduceOp::Min => {
            let init = if op == ReduceOp::Max { T::NEG_INFINITY } else { T::INFINITY };
            let mut acc = [init; COL_WIDTH];
            let acc = &mut acc[..cw];
            for_each_index(rshape, rstr, off, &mut |o| {
                let row = &src[o..o + cw];
                if op == ReduceOp::Max { simd::max_row(acc, row) } else { simd::min_row(acc, row) }
            });
            out.copy_from_slice(acc);
        }
        ReduceOp::Var { correction } => {
            // pass 1: mean (the shift); pass 2: Σ(x − shift) and Σ(x − shift)², M2 = q − d²/n, which is
            // exact regardless of how the shift was rounded to T.
            let mut s64 = [0.0f64; COL_WIDTH];
            column_sums(src, off, rshape, rstr, &mut s64[..cw], None);
            let mut shift = [T::ZERO; COL_WIDTH];
            for (sh, s) in shift.iter_mut().zip(&s64[..cw]) {
                *sh = T::from_f64(s / nf);
            }
            let mut d64 = [0.0f64; COL_WIDTH];
            let mut q64 = [0.0f64; COL_WIDTH];
            column_sums(src, off, rshape, rstr, &mut d64[..cw], Some((&shift[..cw], &mut q64[..cw])));
            for j in 0..cw {
                let m2 = q64[j] - d64[j] * d64[j] / nf;
                let m2 = if m2.is_nan() { m2 } else { m2.max(0.0) };
                out[j] = var_value(nf, m2, correction);
            }
        }
    }
}

pub(super) fn arg_reduce<T: Float>(
    is_max: bool,
    src: &[T],
    layout: &StridedLayout,
    axis: usize,
    dst: &mut [i64],
) {
    if dst.is_empty() {
        return;
    }
    let (len, s) = (layout.shape[axis], layout.strides[axis]);
    if len == 0 {
        dst.fill(-1);
        return;
    }
    let ks: Vec<usize> = (0..layout.rank()).filter(|&d| d != axis).map(|d| layout.shape[d]).collect();
    let kt: Vec<usize> = (0..layout.rank()).filter(|&d| d != axis).map(|d| layout.strides[d]).collect();
    let kd = contiguous_strides(&ks);
    let (kshape, kstrs) = coalesce(&[&ks], &[&kt, &kd]).expect("non-empty kept shape");
    let nout = dst.len();
    let chunk = nout.div_ceil(8 * parallel::num_threads()).max(1);
    parallel::par_chunks_mut(dst, chunk, nout.saturating_mul(len), |ci, out| {
        for (k, d) in out.iter_mut().enumerate() {
            let off = layout.offset + unravel(ci * chunk + k, &kshape, &kstrs[0]);
            *d = arg_line(is_max, src, off, len, s) as i64;
        }
    });
}

/// Index of the first extreme of `src[off + i*s]`, `i < len` (first NaN wins).
fn arg_line<T: Float>(is_max: bool, src: &[T], off: usize, len: usize, s: usize) -> usize {
    let mut best = src[off];
    if best.is_nan() {
        return 0;
    }
    let mut idx = 0;
    for i in 1..len {
        let v = src[off + i * s];
        if v.is_nan() {
            return i;
        }
        if (is_max && v > best) || (!is_max && v < best) {
            best = v;
            idx = i;
        }
    }
    idx
}
