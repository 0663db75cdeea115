//! Numerically stable softmax and log-softmax, forward and backward, along one axis.
//!
//! Every function views its buffers as contiguous `[outer, n, inner]` (row-major) and works along the
//! middle axis of size `n`; any axis of a contiguous tensor maps to this by folding the dimensions
//! before it into `outer` and those after it into `inner`. Outputs are overwritten, never accumulated.
//!
//! * Stability: the maximum along the axis is subtracted before `exp`, so inputs of any finite
//!   magnitude (e.g. ±1e4) do not overflow.
//! * `inner == 1` (the usual "last axis" case) takes a fast path over contiguous rows: vectorised
//!   max/exp/sum (AVX-512 or AVX2+FMA chosen at run time, a polynomial `exp` for f32), parallel over
//!   rows. `inner > 1` works on `inner`-wide column vectors, parallel over `outer`.
//! * Special values follow PyTorch: a slice whose elements are all `-inf` gives **NaN** everywhere
//!   in that slice (softmax and log-softmax), as does a slice containing NaN or `+inf`. `-inf` entries
//!   in an otherwise finite slice give probability 0 (log-probability `-inf`).
//! * `n == 0` (or any zero size) is a no-op.

mod cpu;
#[cfg(any(feature = "cuda", feature = "emu"))]
pub mod cuda;
#[cfg(all(test, feature = "emu"))]
mod cuda_tests;
pub mod reference;
pub(crate) mod simd;
#[cfg(test)]
mod tests;

use crate::Float;

fn check_len(what: &str, len: usize, outer: usize, n: usize, inner: usize) {
    let want = outer.checked_mul(n).and_then(|v| v.checked_mul(inner)).expect("softmax: size overflow");
    assert!(
        len == want,
        "softmax: buffer `{what}` has length {len}, expected outer*n*inner = {outer}*{n}*{inner} = {want}"
    );
}

/// Softmax along the middle axis: `y[o, i, j] = exp(x[o,i,j] - m) / Σ_k exp(x[o,k,j] - m)`, with `m`
/// the maximum of the slice.
///
/// `x`, `y`: contiguous `[outer, n, inner]`. `y` is overwritten. All-`-inf` slices give NaN.
pub fn softmax_forward<T: Float>(outer: usize, n: usize, inner: usize, x: &[T], y: &mut [T]) {
    check_len("x", x.len(), outer, n, inner);
    check_len("y", y.len(), outer, n, inner);
    cpu::forward::<T, false>(outer, n, inner, x, y);
}

/// Softmax gradient: `dx = y ∘ (dy - Σ_axis dy ∘ y)`, from the forward output `y`.
///
/// `y`, `dy`, `dx`: contiguous `[outer, n, inner]`. `dx` is overwritten.
pub fn softmax_backward<T: Float>(outer: usize, n: usize, inner: usize, y: &[T], dy: &[T], dx: &mut [T]) {
    check_len("y", y.len(), outer, n, inner);
    check_len("dy", dy.len(), outer, n, inner);
    check_len("dx", dx.len(), outer, n, inner);
    cpu::backward::<T, false>(outer, n, inner, y, dy, dx);
}

/// Log-softmax along the middle axis: `y = (x - m) - ln Σ exp(x - m)`.
///
/// `x`, `y`: contiguous `[outer, n, inner]`. `y` is overwritten. All-`-inf` slices give NaN.
pub fn log_softmax_forward<T: Float>(outer: usize, n: usize, inner: usize, x: &[T], y: &mut [T]) {
    check_len("x", x.len(), outer, n, inner);
    check_len("y", y.len(), outer, n, inner);
    cpu::forward::<T, true>(outer, n, inner, x, y);
}

/// Log-softmax gradient: `dx = dy - exp(y) · Σ_axis dy`, from the forward output `y`.
///
/// `y`, `dy`, `dx`: contiguous `[outer, n, inner]`. `dx` is overwritten.
pub fn log_softmax_backward<T: Float>(outer: usize, n: usize, inner: usize, y: &[T], dy: &[T], dx: &mut [T]) {
    check_len("y", y.len(), outer, n, inner);
    check_len("dy", dy.len(), outer, n, inner);
    check_len("dx", dx.len(), outer, n, inner);
    cpu::backward::<T, true>(outer, n, inner, y, dy, dx);
}
