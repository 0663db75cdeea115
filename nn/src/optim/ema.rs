//! Exponential moving average of the parameters (ml-mdm's `ModelEma`).

use super::OptimState;
use crate::{Error, Module, Result};
use std::collections::HashMap;
use tensor::Tensor;

/// A shadow copy of every parameter (frozen ones included: ml-mdm averages the whole state_dict),
/// updated after each optimizer step with shadow ← d·shadow + (1 − d)·param, where d = `decay`
/// once `warmup_steps` updates have been made and 0 before (a plain copy), as ml-mdm's
/// `ModelEma.update`. ml-mdm: decay 0.9999, warmup 0.
///
/// State: one tensor per parameter under its own dotted name (so the tensors are the EMA model's
/// state_dict) plus the scalar `counter`.
#[derive(Clone, Debug)]
pub struct Ema {
    /// Weight of the old shadow value in each update (ml-mdm: 0.9999).
    pub decay: f64,
    /// Number of initial updates that copy the parameters (ml-mdm: 0).
    pub warmup_steps: u64,
    counter: u64,
    shadow: Vec<(String, Tensor)>,
    index: HashMap<String, usize>,
}

impl Ema {
    /// Starts the average at the model's current parameter values.
    pub fn new(model: &dyn Module, decay: f64) -> Result<Self> {
        if !(0.0..=1.0).contains(&decay) {
            return Err(Error::Config(format!("Ema: decay = {decay} must be in [0, 1]")));
        }
        let shadow: Vec<(String, Tensor)> =
            model.named_params().into_iter().map(|(n, p)| (n, p.value().clone())).collect();
        let index = shadow.iter().enumerate().map(|(i, (n, _))| (n.clone(), i)).collect();
        Ok(Self { decay, warmup_steps: 0, counter: 0, shadow, index })
    }

    /// Sets the number of initial updates that copy the parameters instead of averaging.
    pub fn with_warmup(mut self, warmup_steps: u64) -> Self {
        self.warmup_steps = warmup_steps;
        self
    }

    /// The averaged values by dotted parameter name, in the model's order.
    pub fn shadow(&self) -> &[(String, Tensor)] {
        &self.shadow
    }

    /// The number of updates made so far.
    pub fn counter(&self) -> u64 {
        self.counter
    }

    /// The shadow tensor for `name` after checking it fits `value`.
    fn slot(&self, name: &str, value: &Tensor) -> Result<usize> {
        let i = *self
            .index
            .get(name)
            .ok_or_else(|| Error::Config(format!("Ema: parameter `{name}` has no shadow value")))?;
        let s = &self.shadow[i].1;
        if s.shape() != value.shape() || s.dtype() != value.dtype() {
            return Err(Error::Config(format!(
                "Ema: shadow of `{name}` is {:?} {}, the parameter {:?} {}",
                s.shape(),
                s.dtype(),
                value.shape(),
                value.dtype()
            )));
        }
        Ok(i)
    }

    /// One averaging step over every parameter of `model`. Nothing changes on error (a parameter
    /// without a shadow, or of another shape or dtype).
    pub fn update(&mut self, model: &dyn Module) -> Result<()> {
        let d = if self.counter >= self.warmup_steps { self.decay } else { 0.0 };
        let mut new = Vec::new();
        for (name, p) in model.named_params() {
            let i = self.slot(&name, p.value())?;
            let s = self.shadow[i].1.mul_scalar(d)?.add(&p.value().mul_scalar(1.0 - d)?)?;
            new.push((i, s));
        }
        for (i, s) in new {
            self.shadow[i].1 = s;
        }
        self.counter += 1;
        Ok(())
    }

    /// Writes the averaged values into `model` (every parameter must have a shadow value).
    pub fn copy_to(&self, model: &mut dyn Module) -> Result<()> {
        let mut slots = Vec::new();
        for (name, p) in model.named_params() {
            slots.push(self.slot(&name, p.value())?);
        }
        let mut k = 0;
        let mut err = None;
        model.visit_mut("", &mut |_, p| {
            if err.is_none()
                && let Err(e) = p.set_value(self.shadow[slots[k]].1.clone())
            {
                err = Some(e);
            }
            k += 1;
        });
        err.map_or(Ok(()), |e| Err(e.into()))
    }

    /// The shadow tensors (by parameter name) and the scalar `counter`.
    pub fn state(&self) -> OptimState {
        OptimState { tensors: self.shadow.clone(), scalars: vec![("counter".into(), self.counter as f64)] }
    }

    /// Replaces the shadow values and the counter with an exported [`Ema::state`].
    pub fn load_state(&mut self, state: &OptimState) -> Result<()> {
        let mut counter = None;
        for (key, v) in &state.scalars {
            if key != "counter" {
                return Err(Error::Config(format!("Ema: unknown scalar state entry `{key}`")));
            }
            if !(v.is_finite() && *v >= 0.0 && v.fract() == 0.0) {
                return Err(Error::Config(format!("Ema: counter = {v} is not a count")));
            }
            counter = Some(*v as u64);
        }
        let counter = counter.ok_or_else(|| Error::Config("Ema: state has no `counter`".into()))?;
        let mut index = HashMap::new();
        for (i, (n, _)) in state.tensors.iter().enumerate() {
            if index.insert(n.clone(), i).is_some() {
                return Err(Error::Config(format!("Ema: state entry `{n}` appears twice")));
            }
        }
        self.shadow = state.tensors.clone();
        self.index = index;
        self.counter = counter;
        Ok(())
    }
}
