//! The typed error every fallible tensor operation returns.

use crate::{DType, Device};

/// What went wrong, naming the op and the offending shapes, dtypes, devices or indices.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    #[error("{op}: shape mismatch between {lhs:?} and {rhs:?}")]
    ShapeMismatch { op: &'static str, lhs: Vec<usize>, rhs: Vec<usize> },

    #[error("{op}: shapes {lhs:?} and {rhs:?} cannot be broadcast together")]
    BroadcastIncompatible { op: &'static str, lhs: Vec<usize>, rhs: Vec<usize> },

    #[error("{op}: expected a tensor of rank {expected}, got shape {shape:?}")]
    RankMismatch { op: &'static str, expected: String, shape: Vec<usize> },

    #[error("{op}: dimension {dim} out of range for a tensor of rank {rank}")]
    DimOutOfRange { op: &'static str, dim: isize, rank: usize },

    #[error("{op}: index {index} out of range for dimension {dim} of size {size}")]
    IndexOutOfRange { op: &'static str, index: i64, dim: usize, size: usize },

    #[error("{op}: dtype mismatch between {lhs} and {rhs}")]
    DTypeMismatch { op: &'static str, lhs: DType, rhs: DType },

    #[error("{op}: dtype {dtype} is not supported (expected {expected})")]
    UnsupportedDType { op: &'static str, dtype: DType, expected: &'static str },

    #[error("{op}: tensors are on different devices ({lhs} and {rhs})")]
    DeviceMismatch { op: &'static str, lhs: Device, rhs: Device },

    #[error("device {device} is unavailable: {reason}")]
    DeviceUnavailable { device: Device, reason: String },

    #[error("{op}: {len} elements given for shape {shape:?} ({expected} elements)")]
    ElementCount { op: &'static str, shape: Vec<usize>, expected: usize, len: usize },

    #[error(
        "{op}: cannot view shape {shape:?} with strides {strides:?} as {target:?} without a copy (use reshape)"
    )]
    NotViewable { op: &'static str, shape: Vec<usize>, strides: Vec<usize>, target: Vec<usize> },

    #[error(
        "{op} is not implemented on {device} yet (no kernel for it in this build); move the tensors to the CPU with `to_cpu()` for this op"
    )]
    NotImplementedOnDevice { op: &'static str, device: Device },

    /// The device has the op's kernels but not for these arguments (e.g. attention head dims above
    /// the CUDA kernels' limit); `what` names the shape and the limit.
    #[error(
        "{op} is not implemented on {device} for {what}; move the tensors to the CPU with `to_cpu()` for this op"
    )]
    NotImplementedOnDeviceFor { op: &'static str, device: Device, what: String },

    #[error(
        "kernel `{kernel}` is not in this build's PTX (needed on {device}): the kernels crate has no such CUDA kernel"
    )]
    KernelNotFound { kernel: String, device: Device },

    #[error("launching kernel `{kernel}` on {device} with {shape} failed: {reason}")]
    KernelLaunch { kernel: String, device: Device, shape: String, reason: String },

    #[error("{device}: {what} failed: {reason}")]
    DeviceFailure { device: Device, what: String, reason: String },

    #[error("{op}: invalid argument: {msg}")]
    InvalidArgument { op: &'static str, msg: String },
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn invalid(op: &'static str, msg: impl Into<String>) -> Self {
        Error::InvalidArgument { op, msg: msg.into() }
    }
}
