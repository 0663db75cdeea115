//! Exponential moving average of the parameters (ml-mdm's `ModelEma`), with an optional
//! per-parameter warmup ramp for models that grow during training.

use super::OptimState;
use crate::{Error, Module, Result};
use std::collections::HashMap;
use tensor::Tensor;

/// A shadow copy of every parameter (frozen ones included: ml-mdm averages the whole state_dict),
/// updated after each optimizer step with shadow ← d·shadow + (1 − d)·param.
///
/// The decay `d` of a parameter depends on its *age* `n`, the number of updates its shadow has
/// received so far:
/// * `n < warmup_steps`: d = 0 (a plain copy), as ml-mdm's `ModelEma.update`;
/// * otherwise `decay`, or with [`Ema::with_ramp`] `min(decay, (1 + n') / (10 + n'))` with
///   `n' = n − warmup_steps` (the ramp of TensorFlow's `ExponentialMovingAverage(num_updates)` and
///   timm's `ModelEmaV2` warmup).
///
/// Ages are per parameter so that a model grown by a progressive-training phase can keep the age of
/// the parameters it inherits ([`Ema::inherit`]) while the new outer level starts its own warmup or
/// ramp. Without that, the new level's average starts at its initial weights and, with decay
/// 0.998, still holds 20 % of them 800 updates later (measured in a Fashion-MNIST run: pure-noise
/// samples at the new resolution while the inner level was already good). ml-mdm: decay 0.9999,
/// warmup 0, no ramp; the ramp is our extension (`train.ema_ramp` in the MDM run config).
///
/// State: one tensor per parameter under its own dotted name (so the tensors are the EMA model's
/// state_dict), the scalar `counter` (updates made), and `age.<name>` for each parameter whose age
/// differs from `counter`.
#[derive(Clone, Debug)]
pub struct Ema {
    /// Weight of the old shadow value in each update (ml-mdm: 0.9999).
    pub decay: f64,
    /// Number of initial updates of each parameter that copy it (ml-mdm: 0).
    pub warmup_steps: u64,
    /// Whether the decay ramps up per parameter as `min(decay, (1 + n) / (10 + n))`.
    pub ramp: bool,
    counter: u64,
    shadow: Vec<(String, Tensor)>,
    ages: Vec<u64>,
    index: HashMap<String, usize>,
}

impl Ema {
    /// Starts the average at the model's current parameter values (every age 0).
    pub fn new(model: &dyn Module, decay: f64) -> Result<Self> {
        if !(0.0..=1.0).contains(&decay) {
            return Err(Error::Config(format!("Ema: decay = {decay} must be in [0, 1]")));
        }
        let shadow: Vec<(String, Tensor)> =
            model.named_params().into_iter().map(|(n, p)| (n, p.value().clone())).collect();
        let index = shadow.iter().enumerate().map(|(i, (n, _))| (n.clone(), i)).collect();
        let ages = vec![0; shadow.len()];
        Ok(Self { decay, warmup_steps: 0, ramp: false, counter: 0, shadow, ages, index })
    }

    /// Sets the number of initial updates (per parameter) that copy instead of averaging.
    pub fn with_warmup(mut self, warmup_steps: u64) -> Self {
        self.warmup_steps = warmup_steps;
        self
    }

    /// Turns the per-parameter decay ramp `min(decay, (1 + n) / (10 + n))` on or off.
    pub fn with_ramp(mut self, ramp: bool) -> Self {
        self.ramp = ramp;
        self
    }

    /// The decay applied to a parameter whose shadow has had `age` updates.
    pub fn decay_at(&self, age: u64) -> f64 {
        if age < self.warmup_steps {
            return 0.0;
        }
        let n = (age - self.warmup_steps) as f64;
        if self.ramp { self.decay.min((1.0 + n) / (10.0 + n)) } else { self.decay }
    }

    /// The averaged values by dotted parameter name, in the model's order.
    pub fn shadow(&self) -> &[(String, Tensor)] {
        &self.shadow
    }

    /// The number of updates made so far.
    pub fn counter(&self) -> u64 {
        self.counter
    }

    /// The age (updates received) of each parameter's shadow, by name, in the model's order.
    pub fn ages(&self) -> Vec<(String, u64)> {
        self.shadow.iter().zip(&self.ages).map(|((n, _), a)| (n.clone(), *a)).collect()
    }

    /// Takes over the update counter of `prev` (the average of a smaller model) and the ages of its
    /// parameters, each renamed to `prefix + name` (the inner levels of a grown model). Parameters
    /// of `self` that `prev` does not have keep age 0, so their warmup / ramp starts now. Every
    /// renamed parameter must exist here; nothing changes on error.
    pub fn inherit(&mut self, prev: &Ema, prefix: &str) -> Result<()> {
        self.inherit_ages(&prev.ages(), prev.counter, prefix)
    }

    /// [`Ema::inherit`] from bare `(name, age)` pairs (e.g. read from a checkpoint) and a counter.
    pub fn inherit_ages(&mut self, ages: &[(String, u64)], counter: u64, prefix: &str) -> Result<()> {
        let mut set = Vec::with_capacity(ages.len());
        for (name, age) in ages {
            let full = format!("{prefix}{name}");
            let i = *self.index.get(&full).ok_or_else(|| {
                Error::Config(format!(
                    "Ema::inherit: `{full}` (from `{name}`) is not a parameter of this average"
                ))
            })?;
            set.push((i, *age));
        }
        for (i, a) in set {
            self.ages[i] = a;
        }
        self.counter = counter;
        Ok(())
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
        let mut new = Vec::new();
        for (name, p) in model.named_params() {
            let i = self.slot(&name, p.value())?;
            let d = self.decay_at(self.ages[i]);
            let s = self.shadow[i].1.mul_scalar(d)?.add(&p.value().mul_scalar(1.0 - d)?)?;
            new.push((i, s));
        }
        for (i, s) in new {
            self.shadow[i].1 = s;
            self.ages[i] += 1;
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

    /// The shadow tensors (by parameter name), the scalar `counter`, and `age.<name>` for every
    /// parameter whose age is not `counter`.
    pub fn state(&self) -> OptimState {
        let mut scalars = vec![("counter".into(), self.counter as f64)];
        for ((n, _), a) in self.shadow.iter().zip(&self.ages) {
            if *a != self.counter {
                scalars.push((format!("age.{n}"), *a as f64));
            }
        }
        OptimState { tensors: self.shadow.clone(), scalars }
    }

    /// Replaces the shadow values, the counter and the ages with an exported [`Ema::state`]
    /// (a parameter without an `age.` entry has age `counter`, as in states written before ages
    /// existed). Nothing changes on error.
    pub fn load_state(&mut self, state: &OptimState) -> Result<()> {
        let count = |key: &str, v: f64| {
            if v.is_finite() && v >= 0.0 && v.fract() == 0.0 {
                Ok(v as u64)
            } else {
                Err(Error::Config(format!("Ema: {key} = {v} is not a count")))
            }
        };
        let mut counter = None;
        let mut ages_by_name = HashMap::new();
        for (key, v) in &state.scalars {
            if key == "counter" {
                counter = Some(count(key, *v)?);
            } else if let Some(name) = key.strip_prefix("age.") {
                ages_by_name.insert(name.to_string(), count(key, *v)?);
            } else {
                return Err(Error::Config(format!("Ema: unknown scalar state entry `{key}`")));
            }
        }
        let counter = counter.ok_or_else(|| Error::Config("Ema: state has no `counter`".into()))?;
        let mut index = HashMap::new();
        for (i, (n, _)) in state.tensors.iter().enumerate() {
            if index.insert(n.clone(), i).is_some() {
                return Err(Error::Config(format!("Ema: state entry `{n}` appears twice")));
            }
        }
        if let Some(n) = ages_by_name.keys().find(|n| !index.contains_key(*n)) {
            return Err(Error::Config(format!("Ema: `age.{n}` names no shadow tensor of the state")));
        }
        self.ages =
            state.tensors.iter().map(|(n, _)| ages_by_name.get(n).copied().unwrap_or(counter)).collect();
        self.shadow = state.tensors.clone();
        self.index = index;
        self.counter = counter;
        Ok(())
    }
}
