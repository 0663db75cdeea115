//! Graph nodes: the metadata every variable carries, and the backward function of non-leaves.

use crate::{Error, Result};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tensor::{DType, Tensor};

/// Unique id of a variable in the graph.
pub type VarId = u64;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

pub(crate) fn next_id() -> VarId {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// A hook on the gradient arriving at a variable: return `Some(g)` to replace it, `None` to keep it.
pub type Hook = Box<dyn Fn(&Tensor) -> Option<Tensor> + Send + Sync>;

/// What the backward pass of one op needs: its rule and the tensors it saved.
///
/// `backward` receives the gradient of the op's output and returns one entry per input: the gradient
/// (same shape and dtype as that input) or `None` when `needs[i]` is false or the input has no
/// gradient (e.g. integer indices). Implementations live beside their forward in `ops/`.
pub trait BackwardOp: Send + Sync {
    /// Registry name of the op (see [`crate::registry`]).
    fn name(&self) -> &'static str;
    /// Computes input gradients from the output gradient.
    fn backward(&self, grad_out: &Tensor, needs: &[bool]) -> Result<Vec<Option<Tensor>>>;
    /// Bytes of the tensors this op keeps alive for backward.
    fn saved_bytes(&self) -> usize {
        0
    }
}

/// Bytes held by a tensor's elements (for the audit's "bytes saved").
pub fn tensor_bytes(t: &Tensor) -> usize {
    t.numel() * t.dtype().size_in_bytes()
}

/// The backward function of a non-leaf variable.
pub struct GradFn {
    pub(crate) op_name: &'static str,
    pub(crate) label: Option<String>,
    /// Inputs' metadata; emptied after a backward that does not retain the graph.
    pub(crate) inputs: Mutex<Vec<Arc<Meta>>>,
    /// The rule and its saved tensors; taken (freed) after a backward that does not retain the graph.
    pub(crate) op: Mutex<Option<Box<dyn BackwardOp>>>,
    pub(crate) saved_bytes: usize,
    /// Set when a backward without `retain_graph` released this node.
    pub(crate) freed: AtomicBool,
}

/// Graph metadata shared by all clones of a variable.
pub struct Meta {
    pub(crate) id: VarId,
    pub(crate) requires_grad: bool,
    pub(crate) grad_fn: Option<GradFn>,
    pub(crate) shape: Vec<usize>,
    pub(crate) dtype: DType,
    /// Accumulated gradient (leaves that require grad, and non-leaves with `retain_grad`).
    pub(crate) grad: Mutex<Option<Tensor>>,
    pub(crate) retain_grad: AtomicBool,
    pub(crate) hooks: Mutex<Vec<Hook>>,
    pub(crate) label: Mutex<Option<String>>,
}

impl Meta {
    pub(crate) fn new(t: &Tensor, requires_grad: bool, grad_fn: Option<GradFn>) -> Self {
        let label = grad_fn.as_ref().and_then(|g| g.label.clone());
        Self {
            id: next_id(),
            requires_grad,
            grad_fn,
            shape: t.shape().to_vec(),
            dtype: t.dtype(),
            grad: Mutex::new(None),
            retain_grad: AtomicBool::new(false),
            hooks: Mutex::new(Vec::new()),
            label: Mutex::new(label),
        }
    }

    pub(crate) fn op_name(&self) -> &'static str {
        self.grad_fn.as_ref().map_or("leaf", |g| g.op_name)
    }

    pub(crate) fn label(&self) -> Option<String> {
        self.label.lock().ok().and_then(|l| l.clone())
    }

    pub(crate) fn inputs(&self) -> Vec<Arc<Meta>> {
        self.grad_fn
            .as_ref()
            .map(|g| g.inputs.lock().map(|v| v.clone()).unwrap_or_default())
            .unwrap_or_default()
    }
}

/// First non-finite element of a float tensor, as (flat index, value).
pub(crate) fn first_non_finite(t: &Tensor) -> Option<(usize, f64)> {
    if !t.dtype().is_float() {
        return None;
    }
    t.to_vec_f64().into_iter().enumerate().find(|(_, v)| !v.is_finite())
}

pub(crate) fn anomaly(op: &str, label: Option<String>, phase: crate::Phase, t: &Tensor) -> Result<()> {
    if let Some((index, value)) = first_non_finite(t) {
        return Err(Error::Anomaly {
            op: op.to_string(),
            label,
            phase,
            index,
            value,
            shape: t.shape().to_vec(),
        });
    }
    Ok(())
}
