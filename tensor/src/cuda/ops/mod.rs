//! The GPU paths of the tensor ops, one file per kernel family. Each validates what the op file in
//! `tensor/src/ops` has not (dtype support of the kernel), allocates the output from the caching pool
//! and launches the kernel with the arguments documented in the family's `kernels/src/<family>/cuda.rs`.

pub(crate) mod elementwise;
pub(crate) mod layout;
pub(crate) mod matmul;
pub(crate) mod norm;
pub(crate) mod random;
pub(crate) mod reduce;
pub(crate) mod transfer;

use super::{CudaDevice, CudaStorage};
use crate::{DType, Error, Result, Tensor};
use kernels::cuda_abi::StridedArg;
use std::sync::Arc;

/// The kernel-name suffix of a float dtype (`unary_f32`, `binary_bf16`, …).
pub(crate) fn float_suffix(op: &'static str, dtype: DType) -> Result<&'static str> {
    match dtype {
        DType::F32 => Ok("f32"),
        DType::F64 => Ok("f64"),
        DType::F16 => Ok("f16"),
        DType::BF16 => Ok("bf16"),
        d => Err(Error::UnsupportedDType { op, dtype: d, expected: "a float dtype (f32, f64, f16, bf16)" }),
    }
}

/// The strided kernel argument of a tensor's layout.
pub(crate) fn strided(op: &'static str, t: &Tensor) -> Result<StridedArg> {
    StridedArg::from_layout(t.layout()).map_err(|e| {
        Error::invalid(
            op,
            format!(
                "layout with shape {:?} and strides {:?} needs more than {} dimensions on the GPU even \
                 after merging (make it contiguous first)",
                e.shape,
                e.strides,
                kernels::cuda_abi::MAX_DIMS
            ),
        )
    })
}

/// The device storage and device of a GPU tensor.
pub(crate) fn storage<'a>(op: &'static str, t: &'a Tensor) -> Result<(&'a CudaStorage, Arc<CudaDevice>)> {
    let s = t.cuda_storage(op)?;
    Ok((s, s.cuda_device().clone()))
}

/// Checks that every tensor is on the device of the first (ops check this before dispatching; this
/// guards the GPU paths that take extra tensors).
pub(crate) fn same_device(op: &'static str, ts: &[&Tensor]) -> Result<()> {
    if let Some(first) = ts.first() {
        for t in &ts[1..] {
            if t.device() != first.device() {
                return Err(Error::DeviceMismatch { op, lhs: first.device(), rhs: t.device() });
            }
        }
    }
    Ok(())
}
