//! AdamW with the semantics of `torch.optim.AdamW` (single-tensor path, `amsgrad = False`,
//! `maximize = False`).

use super::{OptimState, Optimizer, check_non_negative, match_param, split_key, trainable, write_values};
use crate::{Error, Module, Result};
use kernels::optim::{AdamWHyper, AdamWScalars};
use std::collections::BTreeMap;
use tensor::{DType, Tensor};

/// Hyper-parameters of [`AdamW`]. `Default` gives PyTorch's defaults (lr 1e-3, betas (0.9, 0.999),
/// eps 1e-8, weight decay 1e-2); ml-mdm uses weight decay 0 (which makes AdamW identical to Adam).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamWConfig {
    /// Learning rate (overwritten by [`Optimizer::set_lr`]).
    pub lr: f64,
    /// Decay rates (β₁, β₂) of the first and second moment estimates.
    pub betas: (f64, f64),
    /// Added to √v̂ in the denominator.
    pub eps: f64,
    /// Decoupled weight decay: p ← p·(1 − lr·weight_decay) before the Adam update.
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        Self { lr: 1e-3, betas: (0.9, 0.999), eps: 1e-8, weight_decay: 1e-2 }
    }
}

impl AdamWConfig {
    /// PyTorch's checks: lr, eps, weight decay ≥ 0 and each beta in [0, 1).
    pub fn validate(&self) -> Result<()> {
        check_non_negative("AdamW", "lr", self.lr)?;
        check_non_negative("AdamW", "eps", self.eps)?;
        check_non_negative("AdamW", "weight_decay", self.weight_decay)?;
        for (field, b) in [("betas.0", self.betas.0), ("betas.1", self.betas.1)] {
            if !(0.0..1.0).contains(&b) {
                return Err(Error::Config(format!("AdamW: {field} = {b} must be in [0, 1)")));
            }
        }
        Ok(())
    }
}

/// Per-parameter state: the step count and the two moment estimates.
#[derive(Clone, Debug)]
struct Moments {
    step: u64,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
}

/// AdamW. For a parameter p with gradient g at its t-th step (t counts only steps where p had a
/// gradient, as PyTorch's per-parameter `step`):
/// p ← p·(1 − lr·wd); m ← β₁m + (1−β₁)g; v ← β₂v + (1−β₂)g²;
/// p ← p − (lr / (1−β₁ᵗ)) · m / (√v / √(1−β₂ᵗ) + eps).
///
/// State names: `exp_avg.<param>`, `exp_avg_sq.<param>` (tensors), `step.<param>` (scalar).
#[derive(Clone, Debug)]
pub struct AdamW {
    cfg: AdamWConfig,
    state: BTreeMap<String, Moments>,
}

impl AdamW {
    /// Checks the configuration (see [`AdamWConfig::validate`]).
    pub fn new(cfg: AdamWConfig) -> Result<Self> {
        cfg.validate()?;
        Ok(Self { cfg, state: BTreeMap::new() })
    }

    /// The hyper-parameters (the learning rate is the one set last).
    pub fn config(&self) -> &AdamWConfig {
        &self.cfg
    }

    /// The number of updates applied to parameter `name` so far (0 if never updated).
    pub fn step_count(&self, name: &str) -> u64 {
        self.state.get(name).map_or(0, |s| s.step)
    }

    /// One parameter's update: returns (new value, new state).
    fn update(
        &self,
        value: &Tensor,
        grad: &Tensor,
        prev: Option<&Moments>,
        name: &str,
    ) -> Result<(Tensor, Moments)> {
        let AdamWConfig { lr, betas: (b1, b2), eps, weight_decay } = self.cfg;
        let (step, m, v) = match prev {
            Some(s) => (
                s.step + 1,
                match_param("AdamW", "exp_avg", name, &s.exp_avg, value)?,
                match_param("AdamW", "exp_avg_sq", name, &s.exp_avg_sq, value)?,
            ),
            None => (1, value.zeros_like(), value.zeros_like()),
        };
        if matches!(value.dtype(), DType::F32 | DType::F64) && grad.dtype() == value.dtype() {
            // One fused pass (bit-identical to the op sequence below; on a GPU one kernel launch).
            let h = AdamWHyper { lr, beta1: b1, beta2: b2, eps, weight_decay };
            let u = Tensor::adamw_step(value, grad, &m, &v, &AdamWScalars::new(&h, step))?;
            return Ok((u.param, Moments { step, exp_avg: u.exp_avg, exp_avg_sq: u.exp_avg_sq }));
        }
        let (p, m, v) = Self::composed(value, grad, m, v, &self.cfg, step)?;
        Ok((p, Moments { step, exp_avg: m, exp_avg_sq: v }))
    }

    /// The update as a sequence of tensor ops (PyTorch's single-tensor AdamW): used for f16/bf16
    /// parameters, and the oracle of the fused step.
    fn composed(
        value: &Tensor,
        grad: &Tensor,
        m: Tensor,
        v: Tensor,
        cfg: &AdamWConfig,
        step: u64,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        let AdamWConfig { lr, betas: (b1, b2), eps, weight_decay } = *cfg;
        // Decoupled weight decay first (PyTorch: param.mul_(1 - lr * weight_decay)).
        let p = if weight_decay != 0.0 { value.mul_scalar(1.0 - lr * weight_decay)? } else { value.clone() };
        let m = m.mul_scalar(b1)?.add(&grad.mul_scalar(1.0 - b1)?)?;
        let v = v.mul_scalar(b2)?.add(&grad.sqr()?.mul_scalar(1.0 - b2)?)?;
        let t = step as f64;
        let bias_correction1 = 1.0 - b1.powf(t);
        let bias_correction2_sqrt = (1.0 - b2.powf(t)).sqrt();
        let step_size = lr / bias_correction1;
        let denom = v.sqrt()?.affine(1.0 / bias_correction2_sqrt, eps)?;
        let p = p.sub(&m.div(&denom)?.mul_scalar(step_size)?)?;
        Ok((p, m, v))
    }
}

impl Optimizer for AdamW {
    fn step(&mut self, model: &mut dyn Module) -> Result<()> {
        let params = trainable(model, "AdamW")?;
        let mut values = Vec::with_capacity(params.len());
        let mut states = Vec::with_capacity(params.len());
        autograd::no_grad(|| -> Result<()> {
            for p in &params {
                let (v, s) = self.update(&p.value, &p.grad, self.state.get(&p.name), &p.name)?;
                values.push((p.name.clone(), v));
                states.push((p.name.clone(), s));
            }
            Ok(())
        })?;
        write_values(model, values)?;
        self.state.extend(states);
        Ok(())
    }

    fn lr(&self) -> f64 {
        self.cfg.lr
    }

    fn set_lr(&mut self, lr: f64) -> Result<()> {
        check_non_negative("AdamW", "lr", lr)?;
        self.cfg.lr = lr;
        Ok(())
    }

    fn state(&self) -> OptimState {
        let mut out = OptimState::default();
        for (name, s) in &self.state {
            out.tensors.push((format!("exp_avg.{name}"), s.exp_avg.clone()));
            out.tensors.push((format!("exp_avg_sq.{name}"), s.exp_avg_sq.clone()));
            out.scalars.push((format!("step.{name}"), s.step as f64));
        }
        out
    }

    fn load_state(&mut self, state: &OptimState) -> Result<()> {
        let mut avg = BTreeMap::new();
        let mut avg_sq = BTreeMap::new();
        let mut steps = BTreeMap::new();
        for (key, t) in &state.tensors {
            let (kind, name) = split_key("AdamW", key, &["exp_avg_sq", "exp_avg"])?;
            let slot = if kind == "exp_avg" { &mut avg } else { &mut avg_sq };
            if slot.insert(name.to_string(), t.clone()).is_some() {
                return Err(Error::Config(format!("AdamW: state entry `{key}` appears twice")));
            }
        }
        for (key, v) in &state.scalars {
            let (_, name) = split_key("AdamW", key, &["step"])?;
            if !(v.is_finite() && *v >= 1.0 && v.fract() == 0.0) {
                return Err(Error::Config(format!("AdamW: `{key}` = {v} is not a step count >= 1")));
            }
            steps.insert(name.to_string(), *v as u64);
        }
        let mut new = BTreeMap::new();
        for (name, step) in steps {
            let (Some(exp_avg), Some(exp_avg_sq)) = (avg.remove(&name), avg_sq.remove(&name)) else {
                return Err(Error::Config(format!(
                    "AdamW: `step.{name}` needs both `exp_avg.{name}` and `exp_avg_sq.{name}`"
                )));
            };
            if exp_avg.shape() != exp_avg_sq.shape() {
                return Err(Error::Config(format!(
                    "AdamW: `exp_avg.{name}` has shape {:?} but `exp_avg_sq.{name}` {:?}",
                    exp_avg.shape(),
                    exp_avg_sq.shape()
                )));
            }
            new.insert(name, Moments { step, exp_avg, exp_avg_sq });
        }
        if let Some(name) = avg.keys().chain(avg_sq.keys()).next() {
            return Err(Error::Config(format!("AdamW: state for `{name}` has no `step.{name}`")));
        }
        self.state = new;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fused step (used for f32/f64) and the composed op sequence (used for f16/bf16) agree bit
    /// for bit over several steps, with and without weight decay, in f32 and f64.
    #[test]
    fn fused_and_composed_updates_are_bit_identical() {
        for dtype in [DType::F32, DType::F64] {
            for weight_decay in [0.0, 0.1] {
                let cfg = AdamWConfig { lr: 0.03, betas: (0.85, 0.995), eps: 1e-6, weight_decay };
                let opt = AdamW::new(cfg).unwrap();
                let mut value =
                    Tensor::from_vec((0..10).map(|i| i as f64 * 0.37 - 1.5).collect::<Vec<_>>(), &[2, 5])
                        .unwrap()
                        .to_dtype(dtype)
                        .unwrap();
                let mut state: Option<Moments> = None;
                let (mut cv, mut cm, mut cs) = (value.clone(), value.zeros_like(), value.zeros_like());
                for step in 1..=5u64 {
                    let grad = Tensor::from_vec(
                        (0..10).map(|i| ((i * 7 + step as usize) as f64 * 0.9).sin()).collect::<Vec<_>>(),
                        &[2, 5],
                    )
                    .unwrap()
                    .to_dtype(dtype)
                    .unwrap();
                    let (p, s) = opt.update(&value, &grad, state.as_ref(), "w").unwrap();
                    (cv, cm, cs) = AdamW::composed(&cv, &grad, cm, cs, &cfg, step).unwrap();
                    let bits = |t: &Tensor| t.to_vec_f64().iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&p), bits(&cv), "param {dtype} wd {weight_decay} step {step}");
                    assert_eq!(bits(&s.exp_avg), bits(&cm), "exp_avg {dtype} step {step}");
                    assert_eq!(bits(&s.exp_avg_sq), bits(&cs), "exp_avg_sq {dtype} step {step}");
                    value = p;
                    state = Some(s);
                }
                assert_ne!(value.to_vec_f64()[0], -1.5, "the parameter moved");
            }
        }
    }
}
