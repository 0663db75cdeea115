//! Learning-rate schedules.

use super::check_non_negative;
use crate::{Error, Result};

/// A learning rate as a function of the optimizer step. `step` is the number of updates already
/// applied (0 for the first update), which is PyTorch's `LambdaLR.last_epoch` when the scheduler is
/// stepped once after every optimizer step, as ml-mdm does.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LrSchedule {
    /// `lr` at every step.
    Constant { lr: f64 },
    /// ml-mdm's LambdaLR: `lr · max(1, step) / warmup_steps` for `step < warmup_steps`, then `lr`
    /// (no decay). ml-mdm configs: lr 5e-5, warmup 10 000.
    WarmupConstant { lr: f64, warmup_steps: u64 },
    /// The same warmup, then half a cosine from `lr` at `warmup_steps` down to `min_lr` at
    /// `total_steps` (and `min_lr` after).
    WarmupCosine { lr: f64, min_lr: f64, warmup_steps: u64, total_steps: u64 },
}

impl LrSchedule {
    /// Checks the schedule: rates finite and ≥ 0, `min_lr ≤ lr`, `total_steps > warmup_steps`.
    pub fn validate(&self) -> Result<()> {
        match *self {
            LrSchedule::Constant { lr } | LrSchedule::WarmupConstant { lr, .. } => {
                check_non_negative("LrSchedule", "lr", lr)
            }
            LrSchedule::WarmupCosine { lr, min_lr, warmup_steps, total_steps } => {
                check_non_negative("LrSchedule", "lr", lr)?;
                check_non_negative("LrSchedule", "min_lr", min_lr)?;
                if min_lr > lr {
                    return Err(Error::Config(format!("LrSchedule: min_lr = {min_lr} exceeds lr = {lr}")));
                }
                if total_steps <= warmup_steps {
                    return Err(Error::Config(format!(
                        "LrSchedule: total_steps = {total_steps} must exceed warmup_steps = {warmup_steps}"
                    )));
                }
                Ok(())
            }
        }
    }

    /// The learning rate for the update with index `step` (0-based).
    pub fn lr_at(&self, step: u64) -> f64 {
        let warmup =
            |lr: f64, w: u64| -> Option<f64> { (step < w).then(|| lr * step.max(1) as f64 / w as f64) };
        match *self {
            LrSchedule::Constant { lr } => lr,
            LrSchedule::WarmupConstant { lr, warmup_steps } => warmup(lr, warmup_steps).unwrap_or(lr),
            LrSchedule::WarmupCosine { lr, min_lr, warmup_steps, total_steps } => warmup(lr, warmup_steps)
                .unwrap_or_else(|| {
                    let span = total_steps.saturating_sub(warmup_steps).max(1) as f64;
                    let progress = ((step - warmup_steps) as f64 / span).min(1.0);
                    min_lr + (lr - min_lr) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
                }),
        }
    }
}
