//! Optimizer update kernels: the fused AdamW step.
//!
//! [`adamw_step`] is the CPU reference of the fused update and reproduces, element by element and
//! bit for bit, the sequence of tensor ops that `nn::optim::AdamW` runs (PyTorch `torch.optim.AdamW`
//! single-tensor semantics, `amsgrad = False`): with `t` the parameter's step count (from 1),
//!
//! ```text
//! p ← p·(1 − lr·wd)                      (skipped when wd = 0)
//! m ← β₁·m + (1 − β₁)·g
//! v ← β₂·v + (1 − β₂)·g²
//! p ← p − (lr / (1 − β₁ᵗ)) · m / (√v · (1 / √(1 − β₂ᵗ)) + eps)
//! ```
//!
//! The scalars are computed once per step in f64 ([`AdamWScalars::new`], as nn does) and rounded to
//! `T`; each tensor op of nn is one rounding in `T` (a scalar multiply is nn's `affine(s, 0)`, i.e.
//! `x·s + 0`, which only turns `-0` into `+0`). The CUDA kernel (`adamw.cu`, see [`cuda`]) takes the
//! same scalars and performs the same roundings without FMA contraction, so it is bit-identical.

#[cfg(any(feature = "cuda", feature = "emu"))]
pub mod cuda;
#[cfg(all(test, feature = "emu"))]
mod cuda_tests;
#[cfg(test)]
mod tests;

use crate::Float;

/// AdamW hyper-parameters (nn's `AdamWConfig`: `betas = (beta1, beta2)`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamWHyper {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

/// The per-step scalars of one AdamW update, in f64 as nn computes them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamWScalars {
    /// `1 − lr·weight_decay`.
    pub decay: f64,
    /// `weight_decay != 0` (nn skips the decay multiply otherwise).
    pub apply_decay: bool,
    pub beta1: f64,
    /// `1 − β₁`.
    pub one_minus_beta1: f64,
    pub beta2: f64,
    /// `1 − β₂`.
    pub one_minus_beta2: f64,
    /// `1 / √(1 − β₂ᵗ)`.
    pub inv_bias_correction2_sqrt: f64,
    pub eps: f64,
    /// `lr / (1 − β₁ᵗ)`.
    pub step_size: f64,
}

impl AdamWScalars {
    /// The scalars of step `step` (≥ 1: the parameter's update count including this one).
    pub fn new(h: &AdamWHyper, step: u64) -> Self {
        assert!(step >= 1, "adamw: step counts from 1");
        let t = step as f64;
        let bias_correction1 = 1.0 - h.beta1.powf(t);
        let bias_correction2_sqrt = (1.0 - h.beta2.powf(t)).sqrt();
        Self {
            decay: 1.0 - h.lr * h.weight_decay,
            apply_decay: h.weight_decay != 0.0,
            beta1: h.beta1,
            one_minus_beta1: 1.0 - h.beta1,
            beta2: h.beta2,
            one_minus_beta2: 1.0 - h.beta2,
            inv_bias_correction2_sqrt: 1.0 / bias_correction2_sqrt,
            eps: h.eps,
            step_size: h.lr / bias_correction1,
        }
    }
}

/// One fused AdamW update of `param`, `exp_avg` (m) and `exp_avg_sq` (v) in place from `grad`
/// (all the same length; m and v start at zero before step 1).
pub fn adamw_step<T: Float>(
    s: &AdamWScalars,
    param: &mut [T],
    grad: &[T],
    exp_avg: &mut [T],
    exp_avg_sq: &mut [T],
) {
    let n = param.len();
    assert!(
        grad.len() == n && exp_avg.len() == n && exp_avg_sq.len() == n,
        "adamw_step: param {n}, grad {}, exp_avg {}, exp_avg_sq {} elements",
        grad.len(),
        exp_avg.len(),
        exp_avg_sq.len()
    );
    let c = T::from_f64;
    let zero = T::ZERO;
    let (decay, b1, omb1, b2, omb2) =
        (c(s.decay), c(s.beta1), c(s.one_minus_beta1), c(s.beta2), c(s.one_minus_beta2));
    let (ibc2, eps, step) = (c(s.inv_bias_correction2_sqrt), c(s.eps), c(s.step_size));
    for i in 0..n {
        let g = grad[i];
        let p = if s.apply_decay { param[i] * decay + zero } else { param[i] };
        let m = (exp_avg[i] * b1 + zero) + (g * omb1 + zero);
        let v = (exp_avg_sq[i] * b2 + zero) + ((g * g) * omb2 + zero);
        let denom = v.sqrt() * ibc2 + eps;
        let update = (m / denom) * step + zero;
        param[i] = p - update;
        exp_avg[i] = m;
        exp_avg_sq[i] = v;
    }
}
