//! GEMM: `C = alpha * A·B + beta * C` over strided matrices.
//!
//! Layout: every operand is a strided view, element (i, j) at `data[offset + i*rs + j*cs]`, so
//! transposed or sliced operands need no copy (packing reads them strided). C may be strided too.
//!
//! Implementation (BLIS-style, see `cpu.rs`): loops over column blocks of B (`nc`) and depth blocks
//! (`kc`); each `kc×nc` block of B is packed into a 64-byte aligned pooled buffer (it stays in L2),
//! then every `mr`-row strip of A is packed (it stays in L1) and swept across the packed B block by a
//! register-tiled micro-kernel (`simd.rs`): AVX-512 14×32, AVX2+FMA 6×16, or a portable 4×16 / 4×8
//! (f64) kernel, picked once at run time with `is_x86_feature_detected!`. Edge tiles are zero-padded in
//! the packed buffers and stored with masks (AVX-512) or through a small tile buffer.
//!
//! Threads: large problems split the row strips of A (and, when there are few, the column panels of
//! B) over `kernels::parallel`; every task shares the packed B block. Problems below
//! [`PARALLEL_MIN_MNK`] multiply-adds run on the calling thread. `gemm_batched` runs small matrices in
//! parallel over the batch instead.
//!
//! f32 takes the SIMD path; f64 (gradient checks) runs the same blocked driver with the portable
//! kernel (dispatch by `TypeId` inside the generic entry points). Accumulation is in the element
//! type, over `k` terms, in blocked order: f32 results differ from an f64 reference by about
//! `√k · ε_f32` relative (the tests use `Tolerance::F32.for_reduction(k)`).
//!
//! Performance: see `cargo run --release -p benches --bin roofline` and the `gemm` criterion bench.
//! The AVX-512 micro-kernel alone (operands in L1) runs at ~85–95 % of the measured FMA peak.

mod cpu;
#[cfg(any(feature = "cuda", feature = "emu"))]
pub mod cuda;
#[cfg(all(test, feature = "emu"))]
mod cuda_tests;
#[cfg(test)]
mod reference;
mod simd;
#[cfg(test)]
mod tests;

use crate::Float;
use crate::parallel;
use cpu::{Kernel, Raw, RawMut};
use std::any::TypeId;

pub use simd::f32_kernel_name;

/// Problems with `m*n*k` below this (128³) run single-threaded: on the 2-core development machine a
/// second thread did not pay for the fork below roughly this size (measured at 32³…192³, noisy).
pub const PARALLEL_MIN_MNK: usize = 1 << 21;

/// Read-only strided matrix view: element (i, j) is `data[offset + i*rs + j*cs]`.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a, T> {
    pub data: &'a [T],
    pub offset: usize,
    pub rs: usize,
    pub cs: usize,
}

/// Mutable strided matrix view: element (i, j) is `data[offset + i*rs + j*cs]`.
#[derive(Debug)]
pub struct MatMut<'a, T> {
    pub data: &'a mut [T],
    pub offset: usize,
    pub rs: usize,
    pub cs: usize,
}

/// `C (m×n) = alpha * A (m×k) · B (k×n) + beta * C`.
///
/// A is read at `(i, p)`, B at `(p, j)`, C at `(i, j)` through their offsets and strides (any
/// strides, including transposed views). C is overwritten when `beta == 0` (NaNs already in C are
/// ignored, as in BLAS), otherwise scaled by `beta` and accumulated into. `k == 0` gives
/// `C = beta*C`; `m == 0` or `n == 0` touches nothing. Panics if a buffer is too short for its view.
/// If C's strides make two (i, j) alias one element the result is computed serially, in order.
#[allow(clippy::too_many_arguments)]
pub fn gemm<T: Float>(
    m: usize,
    n: usize,
    k: usize,
    alpha: T,
    a: MatRef<T>,
    b: MatRef<T>,
    beta: T,
    c: MatMut<T>,
) {
    gemm_batched(1, m, n, k, alpha, a, 0, b, 0, beta, c, 0);
}

/// Batched GEMM: matrix `i` of A starts at `a.offset + i * a_bs` (likewise B, C), and
/// `C_i = alpha * A_i·B_i + beta * C_i` for `i in 0..batch`, with the same semantics as [`gemm`].
/// A batch stride of 0 broadcasts that operand over the batch (for C this means the batch members
/// are applied one after another to the same matrix, in order).
#[allow(clippy::too_many_arguments)]
pub fn gemm_batched<T: Float>(
    batch: usize,
    m: usize,
    n: usize,
    k: usize,
    alpha: T,
    a: MatRef<T>,
    a_bs: usize,
    b: MatRef<T>,
    b_bs: usize,
    beta: T,
    c: MatMut<T>,
    c_bs: usize,
) {
    if TypeId::of::<T>() == TypeId::of::<f32>() {
        let k32 = simd::best_f32();
        gemm_typed::<f32>(
            k32,
            batch,
            m,
            n,
            k,
            cast_scalar(alpha),
            cast_ref(a),
            a_bs,
            cast_ref(b),
            b_bs,
            cast_scalar(beta),
            cast_mut(c),
            c_bs,
        );
    } else if TypeId::of::<T>() == TypeId::of::<f64>() {
        gemm_typed::<f64>(
            &simd::F64_GENERIC,
            batch,
            m,
            n,
            k,
            cast_scalar(alpha),
            cast_ref(a),
            a_bs,
            cast_ref(b),
            b_bs,
            cast_scalar(beta),
            cast_mut(c),
            c_bs,
        );
    } else {
        unreachable!("kernels::Float is implemented only for f32 and f64");
    }
}

fn cast_scalar<T: 'static + Copy, U: 'static + Copy>(x: T) -> U {
    assert_eq!(TypeId::of::<T>(), TypeId::of::<U>());
    // SAFETY: T and U are the same type (checked above), so this is an identity copy.
    unsafe { std::mem::transmute_copy::<T, U>(&x) }
}

fn cast_ref<'a, T: 'static, U: 'static>(a: MatRef<'a, T>) -> MatRef<'a, U> {
    assert_eq!(TypeId::of::<T>(), TypeId::of::<U>());
    // SAFETY: T and U are the same type (checked above): same size, alignment and validity; the
    // new slice covers exactly the same memory with the same lifetime.
    let data = unsafe { std::slice::from_raw_parts(a.data.as_ptr() as *const U, a.data.len()) };
    MatRef { data, offset: a.offset, rs: a.rs, cs: a.cs }
}

fn cast_mut<'a, T: 'static, U: 'static>(c: MatMut<'a, T>) -> MatMut<'a, U> {
    assert_eq!(TypeId::of::<T>(), TypeId::of::<U>());
    let len = c.data.len();
    // SAFETY: T and U are the same type (checked above); the unique borrow `c.data` is moved into
    // the new slice, which covers the same memory for the same lifetime.
    let data = unsafe { std::slice::from_raw_parts_mut(c.data.as_mut_ptr() as *mut U, len) };
    MatMut { data, offset: c.offset, rs: c.rs, cs: c.cs }
}

/// Largest element index (relative to `offset`) touched by a `rows×cols` view, `None` if empty.
fn span(rows: usize, cols: usize, rs: usize, cs: usize) -> Option<usize> {
    if rows == 0 || cols == 0 {
        return None;
    }
    let s =
        (rows - 1).checked_mul(rs).and_then(|x| (cols - 1).checked_mul(cs).and_then(|y| x.checked_add(y)));
    Some(s.expect("gemm: strided view extent overflows usize"))
}

#[allow(clippy::too_many_arguments)]
fn check_len(
    name: &str,
    len: usize,
    offset: usize,
    batch: usize,
    bs: usize,
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
) {
    if batch == 0 {
        return;
    }
    let Some(s) = span(rows, cols, rs, cs) else { return };
    let last = (batch - 1)
        .checked_mul(bs)
        .and_then(|x| x.checked_add(s))
        .and_then(|x| x.checked_add(offset))
        .expect("gemm: strided view extent overflows usize");
    assert!(
        last < len,
        "gemm: buffer {name} has {len} elements but its view ({batch} × {rows}×{cols}, offset {offset}, \
         strides rs={rs} cs={cs}, batch stride {bs}) reaches index {last}"
    );
}

/// True when distinct (i, j) of a `rows×cols` view with these strides never share an element.
fn injective(rows: usize, cols: usize, rs: usize, cs: usize) -> bool {
    let (mut d0, mut d1) = ((rows, rs), (cols, cs));
    if d0.0 <= 1 {
        return d1.0 <= 1 || d1.1 > 0;
    }
    if d1.0 <= 1 {
        return d0.1 > 0;
    }
    if d0.1 > d1.1 {
        std::mem::swap(&mut d0, &mut d1);
    }
    // smaller stride d0: its whole extent must fit strictly below one step of the larger.
    d0.1 > 0 && (d0.0 - 1).saturating_mul(d0.1) < d1.1
}

/// Typed entry: validates, handles the degenerate cases, then runs the blocked driver with `kern`.
#[allow(clippy::too_many_arguments)]
fn gemm_typed<T: cpu::Scalar>(
    kern: &Kernel<T>,
    batch: usize,
    m: usize,
    n: usize,
    k: usize,
    alpha: T,
    a: MatRef<T>,
    a_bs: usize,
    b: MatRef<T>,
    b_bs: usize,
    beta: T,
    c: MatMut<T>,
    c_bs: usize,
) {
    check_len("C", c.data.len(), c.offset, batch, c_bs, m, n, c.rs, c.cs);
    if batch == 0 || m == 0 || n == 0 {
        return;
    }
    let c_inj = injective(m, n, c.rs, c.cs);
    let craw = RawMut { ptr: c.data.as_mut_ptr(), rs: c.rs, cs: c.cs };
    if k == 0 {
        // C = beta * C for each batch member (in order; C may be broadcast with c_bs == 0).
        for bi in 0..batch {
            for i in 0..m {
                for j in 0..n {
                    let idx = c.offset + bi * c_bs + i * c.rs + j * c.cs;
                    // SAFETY: idx <= offset + (batch-1)*c_bs + span(C) < c.data.len() (check_len).
                    unsafe {
                        let p = craw.ptr.add(idx);
                        *p = if beta == T::ZERO { T::ZERO } else { beta * *p };
                    }
                }
            }
        }
        return;
    }
    check_len("A", a.data.len(), a.offset, batch, a_bs, m, k, a.rs, a.cs);
    check_len("B", b.data.len(), b.offset, batch, b_bs, k, n, b.rs, b.cs);
    let mnk = m.saturating_mul(n).saturating_mul(k);
    let araw = Raw { ptr: a.data.as_ptr(), rs: a.rs, cs: a.cs };
    let braw = Raw { ptr: b.data.as_ptr(), rs: b.rs, cs: b.cs };
    let span_c = span(m, n, c.rs, c.cs).unwrap_or(0);
    let batch_parallel = batch >= 2
        && mnk < PARALLEL_MIN_MNK
        && c_inj
        && c_bs > span_c
        && batch.saturating_mul(mnk) >= PARALLEL_MIN_MNK / 4
        && parallel::num_threads() > 1;
    let one = |bi: usize, par: bool| {
        // SAFETY: check_len proved every element of A_bi, B_bi (m×k, k×n) and C_bi (m×n) lies inside
        // its buffer; C is uniquely borrowed and A/B are shared borrows, so they do not alias C.
        // With `par`, distinct C elements are written by distinct tasks only if C is injective.
        unsafe {
            cpu::gemm_blocked(
                kern,
                m,
                n,
                k,
                alpha,
                araw.at(a.offset + bi * a_bs),
                braw.at(b.offset + bi * b_bs),
                beta,
                craw.at(c.offset + bi * c_bs),
                par,
            )
        }
    };
    if batch_parallel {
        // Distinct batch members write disjoint C ranges (c_bs > span of one C): no races.
        parallel::par_for(batch, usize::MAX, |bi| one(bi, false));
    } else {
        let par = c_inj && mnk >= PARALLEL_MIN_MNK;
        for bi in 0..batch {
            one(bi, par);
        }
    }
}
