//! The CUDA side of softmax (`softmax.cu`): kernel names, argument lists and launch shapes, shared by
//! the GPU runtime and the emulator tests.
//!
//! # Calling convention
//! The runtime permutes the softmax axis last (a view). Forward kernels read the input through a
//! [`crate::cuda_abi::StridedArg`] of logical shape `[rows..., n]` and write a **contiguous** `[rows, n]`
//! output (so the result has the permuted shape; the runtime permutes it back). Backward kernels
//! take contiguous `y`, `dy` (`[rows, n]`, the forward output and its gradient) and write contiguous
//! `dx`.
//!
//! # Kernels (`<dtype>` ∈ `f32`, `f64`, `f16`, `bf16`; `T` the storage type, 16-bit = raw `u16` bits)
//! | kernel | arguments (in order) |
//! |---|---|
//! | `softmax_fwd_<dtype>` | `x: *const T, xl: StridedArg, y: *mut T, rows: i64, n: i64` |
//! | `log_softmax_fwd_<dtype>` | same |
//! | `softmax_bwd_<dtype>` | `y: *const T, dy: *const T, dx: *mut T, rows: i64, n: i64` |
//! | `log_softmax_bwd_<dtype>` | same |
//!
//! Semantics as [`super::softmax_forward`] & co. with `inner = 1`: max subtracted before `exp`; a row
//! with NaN or +inf, or only -inf, is NaN everywhere; -inf in a finite row gives 0 (log: -inf).
//! Backward: softmax `dx = y·(dy − Σ dy·y)`, log-softmax `dx = dy − exp(y)·Σ dy`.
//! `rows == 0` or `n == 0`: launch nothing.
//!
//! # Numerics
//! Computed in f32 for f32/f16/bf16 (f64 for f64): an online (max, Σexp) pass with per-thread
//! rescaling merged over the team, then a writing pass (the input is read twice). Sums of `exp` are of
//! terms in [0, 1]; f32 results agree with the CPU to ~1e-6 relative (different `exp`, different
//! summation order).
//!
//! # Launch
//! [`launch_dims`]: 256 threads per block; one warp per row for `n ≤ 1024` (8 rows per block), else
//! one block per row; grid capped at 65535 with a grid stride over rows. Correct for any grid and any
//! block of a multiple of 32 threads; no dynamic shared memory.

use crate::cuda_abi::LaunchDims;

/// The launch for `rows` rows of length `n` (same shape rule as the reductions).
pub fn launch_dims(rows: usize, n: usize) -> LaunchDims {
    crate::reduce::cuda::launch_dims(rows, n)
}

/// The kernel name: `softmax_fwd_<dtype>`, `log_softmax_fwd_<dtype>`, `softmax_bwd_<dtype>` or
/// `log_softmax_bwd_<dtype>` (`dtype` one of `"f32"`, `"f64"`, `"f16"`, `"bf16"`).
pub fn kernel_name(log: bool, backward: bool, dtype: &str) -> String {
    format!("{}softmax_{}_{dtype}", if log { "log_" } else { "" }, if backward { "bwd" } else { "fwd" })
}
