//! Errors of the autograd layer: tensor errors plus graph problems, each naming the node.

/// Which pass found a non-finite value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Forward,
    Backward,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Tensor(#[from] tensor::Error),

    #[error("backward through `{op}`{} is not supported: {reason}", label_suffix(.label))]
    NoBackwardRule { op: String, label: Option<String>, reason: String },

    #[error("anomaly mode: {phase:?} of `{op}`{} produced {value} at flat index {index} (shape {shape:?})", label_suffix(.label))]
    Anomaly { op: String, label: Option<String>, phase: Phase, index: usize, value: f64, shape: Vec<usize> },

    #[error("backward of `{op}`{}: gradient for input {input} has shape {got:?}, expected {expected:?}", label_suffix(.label))]
    GradShape { op: String, label: Option<String>, input: usize, expected: Vec<usize>, got: Vec<usize> },

    #[error("backward of `{op}`{}: {msg}", label_suffix(.label))]
    Backward { op: String, label: Option<String>, msg: String },

    #[error("backward of `{op}`{}: its saved tensors were freed by an earlier backward (pass retain_graph = true to backward twice)", label_suffix(.label))]
    GraphFreed { op: String, label: Option<String> },

    #[error("backward() without a gradient needs a one-element output, got shape {shape:?}")]
    NotScalar { shape: Vec<usize> },

    #[error("the output does not require grad (no input requires grad, or it was computed under no_grad)")]
    NoGradPath,

    #[error("autocast needs a half float dtype (bf16 or f16), got {dtype}")]
    Autocast { dtype: tensor::DType },

    #[error("gradcheck: {0}")]
    Gradcheck(String),
}

fn label_suffix(l: &Option<String>) -> String {
    l.as_ref().map(|l| format!(" at `{l}`")).unwrap_or_default()
}

pub type Result<T> = std::result::Result<T, Error>;
