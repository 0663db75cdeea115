//! The CUDA side of the optimizer family (`adamw.cu`, module name `"adamw"`).
//!
//! | kernel | arguments (in order) | launch over |
//! |---|---|---|
//! | `adamw_step_f32` | `param: *mut f32, grad: *const f32, exp_avg: *mut f32, exp_avg_sq: *mut f32, n: i64,` then [`scalar_args`] | `n` |
//! | `adamw_step_f64` | same with `f64` buffers | `n` |
//!
//! [`scalar_args`] gives, in order, `decay: f64, apply_decay: i32, beta1: f64, one_minus_beta1: f64,
//! beta2: f64, one_minus_beta2: f64, inv_bias_correction2_sqrt: f64, eps: f64, step_size: f64`
//! (the fields of [`super::AdamWScalars`], computed on the host per step; the kernel rounds them to
//! `T`). All four buffers are contiguous with `n` elements and updated in place (param, exp_avg,
//! exp_avg_sq; the moments start at zero before step 1). The result is bit-identical to
//! [`super::adamw_step`], the op sequence of `nn::optim::AdamW` (no FMA contraction: `rn.cuh`).
//! Parameters stored as f16/bf16 are not covered (keep f32 master weights). Launch with
//! [`launch_dims`]; `n = 0` is a no-op.

use super::AdamWScalars;
use crate::cuda_abi::LaunchDims;

/// Threads per block (grid-stride loop).
pub const THREADS: u32 = 256;
/// Most blocks launched (132 SMs × 8 resident blocks of 256 threads on an H100).
pub const MAX_BLOCKS: u32 = 132 * 8;

/// The launch for `n` parameters.
pub fn launch_dims(n: usize) -> LaunchDims {
    LaunchDims::linear(n, THREADS, MAX_BLOCKS)
}

/// The scalar arguments after `n`, in kernel order:
/// `(decay, apply_decay, beta1, one_minus_beta1, beta2, one_minus_beta2, inv_bias_correction2_sqrt, eps, step_size)`.
#[allow(clippy::type_complexity)]
pub fn scalar_args(s: &AdamWScalars) -> (f64, i32, f64, f64, f64, f64, f64, f64, f64) {
    (
        s.decay,
        i32::from(s.apply_decay),
        s.beta1,
        s.one_minus_beta1,
        s.beta2,
        s.one_minus_beta2,
        s.inv_bias_correction2_sqrt,
        s.eps,
        s.step_size,
    )
}
