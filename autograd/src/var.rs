//! `Var`: a tensor plus its place in the graph.

use crate::context::{current_label, is_anomaly_enabled, is_grad_enabled};
use crate::node::{BackwardOp, GradFn, Hook, Meta, VarId, anomaly};
use crate::{Phase, Result};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use tensor::Tensor;

/// A differentiable variable: a value plus the graph metadata that records how it was made.
///
/// Clones share the metadata (id, gradient, hooks). Leaves are made with [`Var::leaf`] (requires a
/// gradient) or [`Var::constant`]; every op on variables returns a new `Var` whose node names the
/// op and the current [`crate::scope`] label. The graph holds only the tensors each op saved for its
/// backward, never the intermediate values themselves.
#[derive(Clone)]
pub struct Var {
    value: Tensor,
    pub(crate) meta: Arc<Meta>,
}

impl Var {
    /// A leaf that requires a gradient (a parameter or an input under study).
    pub fn leaf(value: Tensor) -> Self {
        let meta = Arc::new(Meta::new(&value, true, None));
        Self { value, meta }
    }

    /// A leaf that does not require a gradient.
    pub fn constant(value: Tensor) -> Self {
        let meta = Arc::new(Meta::new(&value, false, None));
        Self { value, meta }
    }

    /// Records the output of an op. Called by every op in `ops/`: checks anomalies, then prunes the
    /// node (returns a constant, dropping `op` and its saved tensors) when recording is off or no
    /// input requires a gradient.
    pub fn from_op(value: Tensor, inputs: &[&Var], op: impl BackwardOp + 'static) -> Result<Var> {
        if crate::registry::lookup(op.name()).is_none() {
            return Err(crate::Error::NoBackwardRule {
                op: op.name().to_string(),
                label: current_label(),
                reason: "the op is not in autograd::registry::OPS".into(),
            });
        }
        let label = current_label();
        if is_anomaly_enabled() {
            anomaly(op.name(), label.clone(), Phase::Forward, &value)?;
        }
        if !is_grad_enabled() || !inputs.iter().any(|v| v.requires_grad()) {
            return Ok(Var::constant(value));
        }
        let saved_bytes = op.saved_bytes();
        let grad_fn = GradFn {
            op_name: op.name(),
            label,
            inputs: Mutex::new(inputs.iter().map(|v| v.meta.clone()).collect()),
            op: Mutex::new(Some(Box::new(op))),
            saved_bytes,
            freed: std::sync::atomic::AtomicBool::new(false),
        };
        let meta = Arc::new(Meta::new(&value, true, Some(grad_fn)));
        Ok(Var { value, meta })
    }

    /// The value.
    pub fn value(&self) -> &Tensor {
        &self.value
    }

    /// Replaces the value of a leaf (an optimizer step). The graph identity and gradient stay.
    pub fn set_value(&mut self, value: Tensor) -> Result<()> {
        if value.shape() != self.value.shape() || value.dtype() != self.value.dtype() {
            return Err(tensor::Error::ShapeMismatch {
                op: "set_value",
                lhs: self.value.shape().to_vec(),
                rhs: value.shape().to_vec(),
            }
            .into());
        }
        self.value = value;
        Ok(())
    }

    pub fn id(&self) -> VarId {
        self.meta.id
    }

    pub fn shape(&self) -> &[usize] {
        self.value.shape()
    }

    pub fn dtype(&self) -> tensor::DType {
        self.value.dtype()
    }

    pub fn requires_grad(&self) -> bool {
        self.meta.requires_grad
    }

    pub fn is_leaf(&self) -> bool {
        self.meta.grad_fn.is_none()
    }

    /// Registry name of the op that made this variable (`"leaf"` for leaves).
    pub fn op_name(&self) -> &'static str {
        self.meta.op_name()
    }

    /// The node's label (its scope path, or one set with [`Var::set_label`]).
    pub fn label(&self) -> Option<String> {
        self.meta.label()
    }

    /// Sets the label shown in errors and graph exports.
    pub fn set_label(&self, label: impl Into<String>) {
        if let Ok(mut l) = self.meta.label.lock() {
            *l = Some(label.into());
        }
    }

    /// Builder form of [`Var::set_label`].
    pub fn with_label(self, label: impl Into<String>) -> Self {
        self.set_label(label);
        self
    }

    /// The same value cut from the graph (a constant leaf).
    pub fn detach(&self) -> Var {
        Var::constant(self.value.clone())
    }

    /// The accumulated gradient (leaves requiring grad, or non-leaves after [`Var::retain_grad`]).
    pub fn grad(&self) -> Option<Tensor> {
        self.meta.grad.lock().ok().and_then(|g| g.clone())
    }

    /// Clears the accumulated gradient.
    pub fn zero_grad(&self) {
        if let Ok(mut g) = self.meta.grad.lock() {
            *g = None;
        }
    }

    /// Replaces the accumulated gradient (e.g. after clipping).
    pub fn set_grad(&self, g: Option<Tensor>) {
        if let Ok(mut s) = self.meta.grad.lock() {
            *s = g;
        }
    }

    /// Keeps this non-leaf's gradient in [`Var::grad`] during `backward`.
    pub fn retain_grad(&self) {
        self.meta.retain_grad.store(true, Ordering::Relaxed);
    }

    /// Adds a hook on the gradient arriving here (after all contributions are summed, before it
    /// flows further back). Return `Some(g)` to replace the gradient.
    pub fn register_hook(&self, hook: impl Fn(&Tensor) -> Option<Tensor> + Send + Sync + 'static) {
        if let Ok(mut h) = self.meta.hooks.lock() {
            h.push(Box::new(hook) as Hook);
        }
    }

    /// Bytes saved for backward by this variable's own node.
    pub fn saved_bytes(&self) -> usize {
        self.meta.grad_fn.as_ref().map_or(0, |g| g.saved_bytes)
    }
}

impl std::fmt::Debug for Var {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Var {{ id: {}, op: {}, label: {:?}, shape: {:?}, dtype: {}, requires_grad: {} }}",
            self.id(),
            self.op_name(),
            self.label(),
            self.shape(),
            self.dtype(),
            self.requires_grad()
        )
    }
}
