//! Optimizers (AdamW, SGD with momentum), learning-rate schedules, global-norm gradient clipping
//! and an exponential moving average of the parameters, all with PyTorch semantics.
//!
//! An [`Optimizer`] steps a whole [`Module`]: it visits the parameters by dotted name, skips frozen
//! ones and ones without a gradient, and keeps its per-parameter state keyed by that name, so the
//! state can be exported ([`Optimizer::state`]) into a training checkpoint and restored exactly
//! ([`Optimizer::load_state`]). Updates are plain tensor ops (no graph is recorded) written back
//! with [`crate::Param::set_value`]; state tensors have the parameter's dtype (f32 for f32
//! parameters, as in PyTorch).
//!
//! A training step in ml-mdm's order:
//! `loss.backward()` → [`clip_grad_norm`] → `opt.set_lr(schedule.lr_at(step))` → `opt.step(model)`
//! → `ema.update(model)` → `model.zero_grad()`.

mod adamw;
mod clip;
mod ema;
mod schedule;
mod sgd;

pub use adamw::{AdamW, AdamWConfig};
pub use clip::{clip_grad_norm, grad_norm};
pub use ema::Ema;
pub use schedule::LrSchedule;
pub use sgd::{Sgd, SgdConfig};

use crate::{Error, Module, Result};
use tensor::Tensor;

/// Exportable state of an optimizer or EMA: named tensors plus named scalars. Names are
/// `<kind>.<dotted param name>`, e.g. `exp_avg.conv_in.weight`, `step.conv_in.weight`.
#[derive(Clone, Debug, Default)]
pub struct OptimState {
    /// Named state tensors (moments, momentum buffers, EMA shadows).
    pub tensors: Vec<(String, Tensor)>,
    /// Named scalar fields (per-parameter step counts, update counters).
    pub scalars: Vec<(String, f64)>,
}

impl OptimState {
    /// The tensor called `name`, if present.
    pub fn tensor(&self, name: &str) -> Option<&Tensor> {
        self.tensors.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }
    /// The scalar called `name`, if present.
    pub fn scalar(&self, name: &str) -> Option<f64> {
        self.scalars.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }
}

/// A first-order optimizer over the parameters of a [`Module`].
pub trait Optimizer {
    /// Applies one update to every trainable parameter that has a gradient. Frozen parameters and
    /// parameters without a gradient are left untouched (and their state is not advanced). Nothing
    /// is changed when an error is returned.
    fn step(&mut self, model: &mut dyn Module) -> Result<()>;
    /// The learning rate used by the next [`Optimizer::step`].
    fn lr(&self) -> f64;
    /// Sets the learning rate (from an [`LrSchedule`]); rejects negative or non-finite values.
    fn set_lr(&mut self, lr: f64) -> Result<()>;
    /// The per-parameter state, for a checkpoint.
    fn state(&self) -> OptimState;
    /// Replaces the whole state with one exported by [`Optimizer::state`]. Tensors are checked
    /// against the parameters at the next step (shape must match; dtype is converted to the
    /// parameter's, as PyTorch's `load_state_dict` does).
    fn load_state(&mut self, state: &OptimState) -> Result<()>;
}

/// A parameter's gradient, checked against its value.
pub(crate) struct Trainable {
    pub name: String,
    pub value: Tensor,
    pub grad: Tensor,
}

/// Collects every unfrozen parameter that has a gradient, checking that the gradient has the
/// parameter's shape (converting its dtype if it differs).
pub(crate) fn trainable(model: &dyn Module, who: &str) -> Result<Vec<Trainable>> {
    let mut out = vec![];
    let mut err = None;
    model.visit("", &mut |name, p| {
        if err.is_some() || p.is_frozen() {
            return;
        }
        let Some(g) = p.grad() else { return };
        if g.shape() != p.value().shape() {
            err = Some(Error::Config(format!(
                "{who}: gradient of `{name}` has shape {:?}, the parameter {:?}",
                g.shape(),
                p.value().shape()
            )));
            return;
        }
        let g = if g.dtype() == p.value().dtype() { Ok(g) } else { g.to_dtype(p.value().dtype()) };
        match g {
            Ok(grad) => out.push(Trainable { name: name.to_string(), value: p.value().clone(), grad }),
            Err(e) => err = Some(e.into()),
        }
    });
    match err {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// Writes new values by name (values computed beforehand, so a failed step changes nothing).
pub(crate) fn write_values(model: &mut dyn Module, mut values: Vec<(String, Tensor)>) -> Result<()> {
    values.sort_by(|a, b| a.0.cmp(&b.0));
    let mut err = None;
    model.visit_mut("", &mut |name, p| {
        if err.is_some() {
            return;
        }
        if let Ok(i) = values.binary_search_by(|(n, _)| n.as_str().cmp(name)) {
            let t = std::mem::replace(&mut values[i].1, Tensor::zeros(&[], tensor::DType::F32));
            if let Err(e) = p.set_value(t) {
                err = Some(e.into());
            }
        }
    });
    err.map_or(Ok(()), Err)
}

/// State tensor `t` (loaded or kept) made ready for parameter `name`: shape checked, dtype matched.
pub(crate) fn match_param(who: &str, what: &str, name: &str, t: &Tensor, value: &Tensor) -> Result<Tensor> {
    if t.shape() != value.shape() {
        return Err(Error::Config(format!(
            "{who}: state `{what}.{name}` has shape {:?}, the parameter {:?}",
            t.shape(),
            value.shape()
        )));
    }
    Ok(if t.dtype() == value.dtype() { t.clone() } else { t.to_dtype(value.dtype())? })
}

/// Rejects a negative or non-finite hyper-parameter, naming it.
pub(crate) fn check_non_negative(who: &str, field: &str, v: f64) -> Result<()> {
    if !v.is_finite() || v < 0.0 {
        return Err(Error::Config(format!("{who}: {field} = {v} must be finite and >= 0")));
    }
    Ok(())
}

/// Splits a state key `<kind>.<param>` into its kind and parameter name.
pub(crate) fn split_key<'a>(
    who: &str,
    key: &'a str,
    kinds: &[&'static str],
) -> Result<(&'static str, &'a str)> {
    for &k in kinds {
        if let Some(rest) = key.strip_prefix(k).and_then(|r| r.strip_prefix('.'))
            && !rest.is_empty()
        {
            return Ok((k, rest));
        }
    }
    Err(Error::Config(format!(
        "{who}: unknown state entry `{key}` (expected one of {kinds:?} followed by `.<param>`)"
    )))
}
