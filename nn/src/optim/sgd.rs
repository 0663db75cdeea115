//! SGD with momentum, with the semantics of `torch.optim.SGD` (`maximize = False`).

use super::{OptimState, Optimizer, check_non_negative, match_param, split_key, trainable, write_values};
use crate::{Error, Module, Result};
use std::collections::BTreeMap;
use tensor::Tensor;

/// Hyper-parameters of [`Sgd`]. `Default` gives PyTorch's defaults (lr 1e-3, no momentum, no
/// dampening, no weight decay, no Nesterov).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdConfig {
    /// Learning rate (overwritten by [`Optimizer::set_lr`]).
    pub lr: f64,
    /// Momentum factor μ (0 = plain SGD, no buffer).
    pub momentum: f64,
    /// Dampening of the gradient added to the buffer (not applied on the first step).
    pub dampening: f64,
    /// L2 penalty added to the gradient: d = g + weight_decay·p.
    pub weight_decay: f64,
    /// Nesterov momentum: step along d + μ·buf instead of buf.
    pub nesterov: bool,
}

impl Default for SgdConfig {
    fn default() -> Self {
        Self { lr: 1e-3, momentum: 0.0, dampening: 0.0, weight_decay: 0.0, nesterov: false }
    }
}

impl SgdConfig {
    /// PyTorch's checks: every value ≥ 0; Nesterov needs momentum > 0 and dampening 0.
    pub fn validate(&self) -> Result<()> {
        check_non_negative("SGD", "lr", self.lr)?;
        check_non_negative("SGD", "momentum", self.momentum)?;
        check_non_negative("SGD", "dampening", self.dampening)?;
        check_non_negative("SGD", "weight_decay", self.weight_decay)?;
        if self.nesterov && (self.momentum <= 0.0 || self.dampening != 0.0) {
            return Err(Error::Config(format!(
                "SGD: nesterov needs momentum > 0 and dampening = 0 (momentum = {}, dampening = {})",
                self.momentum, self.dampening
            )));
        }
        Ok(())
    }
}

/// SGD. With d = g + wd·p: if momentum μ > 0, buf ← d on a parameter's first step, else
/// buf ← μ·buf + (1 − dampening)·d, and d ← d + μ·buf (Nesterov) or d ← buf; then p ← p − lr·d.
///
/// State names: `momentum_buffer.<param>` (only when momentum > 0).
#[derive(Clone, Debug)]
pub struct Sgd {
    cfg: SgdConfig,
    buffers: BTreeMap<String, Tensor>,
}

impl Sgd {
    /// Checks the configuration (see [`SgdConfig::validate`]).
    pub fn new(cfg: SgdConfig) -> Result<Self> {
        cfg.validate()?;
        Ok(Self { cfg, buffers: BTreeMap::new() })
    }

    /// The hyper-parameters (the learning rate is the one set last).
    pub fn config(&self) -> &SgdConfig {
        &self.cfg
    }

    /// One parameter's update: returns (new value, new momentum buffer).
    fn update(&self, value: &Tensor, grad: &Tensor, name: &str) -> Result<(Tensor, Option<Tensor>)> {
        let SgdConfig { lr, momentum, dampening, weight_decay, nesterov } = self.cfg;
        let mut d = grad.clone();
        if weight_decay != 0.0 {
            d = d.add(&value.mul_scalar(weight_decay)?)?;
        }
        let mut buf = None;
        if momentum != 0.0 {
            let b = match self.buffers.get(name) {
                Some(prev) => match_param("SGD", "momentum_buffer", name, prev, value)?
                    .mul_scalar(momentum)?
                    .add(&d.mul_scalar(1.0 - dampening)?)?,
                None => d.clone(),
            };
            d = if nesterov { d.add(&b.mul_scalar(momentum)?)? } else { b.clone() };
            buf = Some(b);
        }
        Ok((value.sub(&d.mul_scalar(lr)?)?, buf))
    }
}

impl Optimizer for Sgd {
    fn step(&mut self, model: &mut dyn Module) -> Result<()> {
        let params = trainable(model, "SGD")?;
        let mut values = Vec::with_capacity(params.len());
        let mut bufs = Vec::new();
        autograd::no_grad(|| -> Result<()> {
            for p in &params {
                let (v, b) = self.update(&p.value, &p.grad, &p.name)?;
                values.push((p.name.clone(), v));
                if let Some(b) = b {
                    bufs.push((p.name.clone(), b));
                }
            }
            Ok(())
        })?;
        write_values(model, values)?;
        self.buffers.extend(bufs);
        Ok(())
    }

    fn lr(&self) -> f64 {
        self.cfg.lr
    }

    fn set_lr(&mut self, lr: f64) -> Result<()> {
        check_non_negative("SGD", "lr", lr)?;
        self.cfg.lr = lr;
        Ok(())
    }

    fn state(&self) -> OptimState {
        OptimState {
            tensors: self.buffers.iter().map(|(n, t)| (format!("momentum_buffer.{n}"), t.clone())).collect(),
            scalars: vec![],
        }
    }

    fn load_state(&mut self, state: &OptimState) -> Result<()> {
        if let Some((key, _)) = state.scalars.first() {
            return Err(Error::Config(format!("SGD: unexpected scalar state entry `{key}`")));
        }
        let mut new = BTreeMap::new();
        for (key, t) in &state.tensors {
            let (_, name) = split_key("SGD", key, &["momentum_buffer"])?;
            if new.insert(name.to_string(), t.clone()).is_some() {
                return Err(Error::Config(format!("SGD: state entry `{key}` appears twice")));
            }
        }
        self.buffers = new;
        Ok(())
    }
}
