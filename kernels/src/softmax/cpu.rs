//! CPU softmax kernels: contiguous-row fast path (`inner == 1`) and the column-vector path.

use super::simd::{self, exp_sub_inplace, exp_sub_store, max_of, multiversion, sum_of};
use crate::Float;
use crate::parallel::{num_threads, par_chunks_mut};

/// Work estimate per element (max, exp, sum, scale), for the parallel threshold.
const WORK_PER_ELEM: usize = 8;

/// Rows (of `n` elements) per parallel task: about four tasks per thread.
fn rows_per_task(rows: usize) -> usize {
    rows.div_ceil(4 * num_threads()).max(1)
}

#[inline(always)]
fn forward_row<T: Float, const LOG: bool>(x: &[T], y: &mut [T]) {
    let m = max_of(x);
    if LOG {
        let s = exp_sub_store(x, m, y);
        let ls = s.ln();
        for (o, &v) in y.iter_mut().zip(x) {
            *o = (v - m) - ls;
        }
    } else {
        let s = exp_sub_store(x, m, y);
        let inv = T::ONE / s;
        for o in y.iter_mut() {
            *o *= inv;
        }
    }
}

#[inline(always)]
fn forward_rows_body<T: Float, const LOG: bool>(n: usize, x: &[T], y: &mut [T]) {
    for (xr, yr) in x.chunks_exact(n).zip(y.chunks_exact_mut(n)) {
        forward_row::<T, LOG>(xr, yr);
    }
}
#[inline(always)]
fn forward_rows_soft<T: Float>(n: usize, x: &[T], y: &mut [T]) {
    forward_rows_body::<T, false>(n, x, y)
}
#[inline(always)]
fn forward_rows_log<T: Float>(n: usize, x: &[T], y: &mut [T]) {
    forward_rows_body::<T, true>(n, x, y)
}
multiversion!(fn forward_rows_soft_mv<T>(n: usize, x: &[T], y: &mut [T]) => forward_rows_soft);
multiversion!(fn forward_rows_log_mv<T>(n: usize, x: &[T], y: &mut [T]) => forward_rows_log);

/// One `[n, inner]` slab: column-wise max, exp, sum, normalise. `m`, `s`: scratch of `inner`.
#[inline(always)]
fn forward_slab<T: Float, const LOG: bool>(inner: usize, x: &[T], y: &mut [T]) {
    let mut m = vec![T::NEG_INFINITY; inner];
    let mut s = vec![T::ZERO; inner];
    for xr in x.chunks_exact(inner) {
        for (a, &v) in m.iter_mut().zip(xr) {
            *a = a.max(v);
        }
    }
    for (xr, yr) in x.chunks_exact(inner).zip(y.chunks_exact_mut(inner)) {
        for j in 0..inner {
            let e = simd::exp_t(xr[j] - m[j]);
            yr[j] = e;
            s[j] += e;
        }
    }
    if LOG {
        for (xr, yr) in x.chunks_exact(inner).zip(y.chunks_exact_mut(inner)) {
            for j in 0..inner {
                yr[j] = (xr[j] - m[j]) - s[j].ln();
            }
        }
    } else {
        for v in s.iter_mut() {
            *v = T::ONE / *v;
        }
        for yr in y.chunks_exact_mut(inner) {
            for j in 0..inner {
                yr[j] *= s[j];
            }
        }
    }
}
#[inline(always)]
fn forward_slabs_body<T: Float, const LOG: bool>(n: usize, inner: usize, x: &[T], y: &mut [T]) {
    let slab = n * inner;
    for (xs, ys) in x.chunks_exact(slab).zip(y.chunks_exact_mut(slab)) {
        forward_slab::<T, LOG>(inner, xs, ys);
    }
}
#[inline(always)]
fn forward_slabs_soft<T: Float>(n: usize, inner: usize, x: &[T], y: &mut [T]) {
    forward_slabs_body::<T, false>(n, inner, x, y)
}
#[inline(always)]
fn forward_slabs_log<T: Float>(n: usize, inner: usize, x: &[T], y: &mut [T]) {
    forward_slabs_body::<T, true>(n, inner, x, y)
}
multiversion!(fn forward_slabs_soft_mv<T>(n: usize, inner: usize, x: &[T], y: &mut [T]) => forward_slabs_soft);
multiversion!(fn forward_slabs_log_mv<T>(n: usize, inner: usize, x: &[T], y: &mut [T]) => forward_slabs_log);

pub(super) fn forward<T: Float, const LOG: bool>(outer: usize, n: usize, inner: usize, x: &[T], y: &mut [T]) {
    let total = outer * n * inner;
    if total == 0 {
        return;
    }
    let work = total * WORK_PER_ELEM;
    if inner == 1 {
        let rows = outer;
        let chunk = rows_per_task(rows) * n;
        par_chunks_mut(y, chunk, work, |ci, yc| {
            let xc = &x[ci * chunk..ci * chunk + yc.len()];
            if LOG { forward_rows_log_mv(n, xc, yc) } else { forward_rows_soft_mv(n, xc, yc) }
        });
    } else {
        let slab = n * inner;
        let chunk = rows_per_task(outer) * slab;
        par_chunks_mut(y, chunk, work, |ci, yc| {
            let xc = &x[ci * chunk..ci * chunk + yc.len()];
            if LOG { forward_slabs_log_mv(n, inner, xc, yc) } else { forward_slabs_soft_mv(n, inner, xc, yc) }
        });
    }
}

#[inline(always)]
fn backward_row<T: Float, const LOG: bool>(y: &[T], dy: &[T], dx: &mut [T]) {
    if LOG {
        let s = sum_of(dy);
        dx.copy_from_slice(y);
        exp_sub_inplace(dx, T::ZERO);
        for (o, &g) in dx.iter_mut().zip(dy) {
            *o = g - *o * s;
        }
    } else {
        let d = simd::dot(dy, y);
        for ((o, &g), &p) in dx.iter_mut().zip(dy).zip(y) {
            *o = p * (g - d);
        }
    }
}
#[inline(always)]
fn backward_rows_body<T: Float, const LOG: bool>(n: usize, y: &[T], dy: &[T], dx: &mut [T]) {
    for ((yr, gr), dr) in y.chunks_exact(n).zip(dy.chunks_exact(n)).zip(dx.chunks_exact_mut(n)) {
        backward_row::<T, LOG>(yr, gr, dr);
    }
}
#[inline(always)]
fn backward_rows_soft<T: Float>(n: usize, y: &[T], dy: &[T], dx: &mut [T]) {
    backward_rows_body::<T, false>(n, y, dy, dx)
}
#[inline(always)]
fn backward_rows_log<T: Float>(n: usize, y: &[T], dy: &[T], dx: &mut [T]) {
    backward_rows_body::<T, true>(n, y, dy, dx)
}
multiversion!(fn backward_rows_soft_mv<T>(n: usize, y: &[T], dy: &[T], dx: &mut [T]) => backward_rows_soft);
multiversion!(fn backward_rows_log_mv<T>(n: usize, y: &[T], dy: &[T], dx: &mut [T]) => backward_rows_log);

/// One `[n, inner]` slab of the backward pass, column-wise.
#[inline(always)]
fn backward_slab<T: Float, const LOG: bool>(inner: usize, y: &[T], dy: &[T], dx: &mut [T]) {
    let mut s = vec![T::ZERO; inner];
    for (yr, gr) in y.chunks_exact(inner).zip(dy.chunks_exact(inner)) {
        for j in 0..inner {
            if LOG {
                s[j] += gr[j];
            } else {
                s[j] = gr[j].mul_add(yr[j], s[j]);
            }
        }
    }
    for ((yr, gr), dr) in y.chunks_exact(inner).zip(dy.chunks_exact(inner)).zip(dx.chunks_exact_mut(inner)) {
        for j in 0..inner {
            dr[j] = if LOG { gr[j] - simd::exp_t(yr[j]) * s[j] } else { yr[j] * (gr[j] - s[j]) };
        }
    }
}
#[inline(always)]
fn backward_slabs_body<T: Float, const LOG: bool>(n: usize, inner: usize, y: &[T], dy: &[T], dx: &mut [T]) {
    let slab = n * inner;
    for ((ys, gs), ds) in y.chunks_exact(slab).zip(dy.chunks_exact(slab)).zip(dx.chunks_exact_mut(slab)) {
        backward_slab::<T, LOG>(inner, ys, gs, ds);
    }
}
#[inline(always)]
fn backward_slabs_soft<T: Float>(n: usize, inner: usize, y: &[T], dy: &[T], dx: &mut [T]) {
    backward_slabs_body::<T, false>(n, inner, y, dy, dx)
}
#[inline(always)]
fn backward_slabs_log<T: Float>(n: usize, inner: usize, y: &[T], dy: &[T], dx: &mut [T]) {
    backward_slabs_body::<T, true>(n, inner, y, dy, dx)
}
multiversion!(fn backward_slabs_soft_mv<T>(n: usize, inner: usize, y: &[T], dy: &[T], dx: &mut [T]) => backward_slabs_soft);
multiversion!(fn backward_slabs_log_mv<T>(n: usize, inner: usize, y: &[T], dy: &[T], dx: &mut [T]) => backward_slabs_log);

pub(super) fn backward<T: Float, const LOG: bool>(
    outer: usize,
    n: usize,
    inner: usize,
    y: &[T],
    dy: &[T],
    dx: &mut [T],
) {
    let total = outer * n * inner;
    if total == 0 {
        return;
    }
    let work = total * WORK_PER_ELEM;
    let slab = n * inner;
    let chunk = rows_per_task(outer) * slab;
    par_chunks_mut(dx, chunk, work, |ci, dc| {
        let r = ci * chunk..ci * chunk + dc.len();
        let (yc, gc) = (&y[r.clone()], &dy[r]);
        match (inner == 1, LOG) {
            (true, false) => backward_rows_soft_mv(n, yc, gc, dc),
            (true, true) => backward_rows_log_mv(n, yc, gc, dc),
            (false, false) => backward_slabs_soft_mv(n, inner, yc, gc, dc),
            (false, true) => backward_slabs_log_mv(n, inner, yc, gc, dc),
        }
    });
}
