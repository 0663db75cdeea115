//! Training: AdamW with a linear LR warmup, global-norm clipping, an EMA of the weights, gradient
//! accumulation, classifier-free-guidance label dropout, progressive (inner → outer) phases,
//! NaN/Inf step skipping, exact resume from `OUT/checkpoint.safetensors`, JSON-lines metrics and
//! sample grids (spec §4); `train.precision = "bf16"` runs the forward pass and the loss under bf16
//! autocast with f32 master weights, gradients, optimizer state and EMA (docs/mixed-precision.md).
//!
//! Determinism: every random draw is a counter-based Philox stream keyed by (seed, step, micro-batch),
//! the data order is a pure function of the step, so a resumed run reproduces an uninterrupted one
//! bit for bit.
//!
//! Deviations from ml-mdm:
//! - progressive phases run inside one run ([`crate::run_config::Phase`]); at a phase switch the
//!   optimizer state starts afresh for the grown model (ml-mdm starts a new run, which does the same)
//!   and the EMA of the inherited levels is carried over;
//! - a non-finite loss skips the whole update (ml-mdm's fp32 path still steps the optimizer with
//!   zeroed gradients, which moves the weights through Adam's moments); K in a row stop the run;
//! - text-conditioned runs use the hashing stand-in encoder ([`crate::text::HashTextEncoder`]), and
//!   a dropped caption becomes the empty caption;
//! - the LR schedule counts the global step (no reset at a phase switch, as ml-mdm codes none);
//! - `train.precision = "bf16"` is ml-mdm's `fp16: 1` (bf16 autocast) without its `GradScaler`:
//!   bf16 has f32's exponent range, so scaling the loss changes nothing but the overflow checks,
//!   which the NaN/Inf step skipping already does;
//! - optional cosine decay after the warmup (`train.min_lr`, [`lr_at`]) over the whole run, for
//!   short runs; ml-mdm keeps the rate constant.

mod checkpoint;
mod metrics;
mod phases;
mod run;
pub mod sample;

pub use checkpoint::{CheckpointInfo, read_checkpoint};
pub use phases::{grow_into, inner_prefix};
pub use run::{TrainOptions, TrainReport, lr_at, train};

use crate::error::ConfigError;

/// Errors of a training or sampling run.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Model(#[from] crate::Error),
    /// A file could not be read or written.
    #[error("{path}: {msg}")]
    Io { path: String, msg: String },
    /// A checkpoint does not fit the run.
    #[error("checkpoint {path}: {msg}")]
    Checkpoint { path: String, msg: String },
    /// K consecutive non-finite losses.
    #[error(
        "{count} consecutive non-finite losses (last at step {step}; {total} skipped in all): the run is stopped. Rerun with `--detect-anomaly` (autograd anomaly mode) to find the operation that produced the first NaN/Inf, and/or lower train.lr"
    )]
    NonFinite { count: u64, step: u64, total: u64 },
}

impl From<nn::Error> for TrainError {
    fn from(e: nn::Error) -> Self {
        TrainError::Model(crate::Error::Nn(e))
    }
}
impl From<tensor::Error> for TrainError {
    fn from(e: tensor::Error) -> Self {
        TrainError::Model(e.into())
    }
}
impl From<autograd::Error> for TrainError {
    fn from(e: autograd::Error) -> Self {
        TrainError::Model(e.into())
    }
}

/// Result of the training module.
pub type Result<T> = std::result::Result<T, TrainError>;

pub(crate) fn io_err(path: impl AsRef<std::path::Path>, e: impl std::fmt::Display) -> TrainError {
    TrainError::Io { path: path.as_ref().display().to_string(), msg: e.to_string() }
}
