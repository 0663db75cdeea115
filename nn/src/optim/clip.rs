//! Global-norm gradient clipping (`torch.nn.utils.clip_grad_norm_`, L2 norm).

use crate::{Error, Module, Result};

/// The global L2 norm √(Σ‖g‖²) over every parameter gradient present (frozen parameters have
/// none). Accumulated in f64 (PyTorch accumulates in the gradient dtype; the difference is
/// rounding only).
pub fn grad_norm(model: &dyn Module) -> f64 {
    let mut sum_sq = 0.0f64;
    model.visit("", &mut |_, p| {
        if let Some(g) = p.grad() {
            sum_sq += g.to_vec_f64().iter().map(|x| x * x).sum::<f64>();
        }
    });
    sum_sq.sqrt()
}

/// Clips gradients in place to a global L2 norm of at most `max_norm` and returns the norm before
/// clipping. As PyTorch: coef = max_norm / (total + 1e-6); when coef < 1 every gradient is
/// multiplied by coef (so the clipped norm is max_norm·total/(total + 1e-6)); otherwise the
/// gradients are left alone. A non-finite total (NaN/Inf gradients) is returned without touching
/// the gradients, so the caller can skip the step (ml-mdm skips updates on a NaN loss).
pub fn clip_grad_norm(model: &dyn Module, max_norm: f64) -> Result<f64> {
    if !(max_norm.is_finite() && max_norm > 0.0) {
        return Err(Error::Config(format!("clip_grad_norm: max_norm = {max_norm} must be finite and > 0")));
    }
    let total = grad_norm(model);
    let coef = max_norm / (total + 1e-6);
    if !total.is_finite() || coef >= 1.0 {
        return Ok(total);
    }
    let mut err = None;
    model.visit("", &mut |_, p| {
        if err.is_some() {
            return;
        }
        if let Some(g) = p.grad() {
            match g.mul_scalar(coef) {
                Ok(s) => p.var().set_grad(Some(s)),
                Err(e) => err = Some(e),
            }
        }
    });
    match err {
        Some(e) => Err(e.into()),
        None => Ok(total),
    }
}
