//! The GPU paths of the tensor ops, one file per kernel family. Each validates what the op file in
//! `tensor/src/ops` has not (dtype support of the kernel), allocates the output from the caching pool
//! and launches the kernel with the arguments documented in the family's `kernels/src/<family>/cuda.rs`.

pub(crate) mod attention;
pub(crate) mod conv;
pub(crate) mod dual_attention;
pub(crate) mod elementwise;
pub(crate) mod layout;
pub(crate) mod matmul;
pub(crate) mod norm;
pub(crate) mod optim;
pub(crate) mod random;
pub(crate) mod reduce;
pub(crate) mod transfer;

use super::{CudaDevice, CudaStorage};
use crate::{DType, Error, Result, Tensor};
use kernels::cuda_abi::{StridedArg, TooManyDims};
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
    StridedArg::from_layout(t.layout()).map_err(|e| too_many_dims(op, e))
}

/// The error for a layout that [`StridedArg::from_layout`] cannot merge down to `MAX_DIMS`.
pub(crate) fn too_many_dims(op: &'static str, e: TooManyDims) -> Error {
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

/// Every kernel name the GPU paths of the tensor ops may launch (for checking a build's PTX).
pub fn runtime_kernels() -> Vec<String> {
    const F: [&str; 4] = ["f32", "f64", "f16", "bf16"];
    const ALL: [&str; 6] = kernels::layout::cuda::DTYPES;
    let mut v: Vec<String> = vec![];
    let per = |v: &mut Vec<String>, bases: &[&str], dts: &[&str]| {
        for b in bases {
            for d in dts {
                v.push(format!("{b}_{d}"));
            }
        }
    };
    per(&mut v, &["unary", "unary_backward", "binary", "compare"], &F);
    v.extend((0..4).map(|k| format!("layout_copy_b{}", 1 << k)));
    per(&mut v, &["fill", "index_select_fwd", "where"], &ALL);
    for a in ALL {
        for b in ALL {
            if a != b {
                v.push(format!("cast_{a}_{b}"));
            }
        }
    }
    per(
        &mut v,
        &[
            "upsample_nearest_fwd",
            "upsample_nearest_bwd",
            "avg_pool2d_fwd",
            "avg_pool2d_bwd",
            "index_select_bwd_gather",
            "gemm",
            "reduce_sum",
            "reduce_mean",
            "reduce_max",
            "reduce_min",
            "reduce_var",
            "reduce_argmax",
            "reduce_argmin",
            "reduce_split_partial",
            "reduce_split_finish",
            "softmax_fwd",
            "log_softmax_fwd",
            "softmax_bwd",
            "log_softmax_bwd",
            "layer_norm_fwd",
            "layer_norm_bwd",
            "layer_norm_bwd_params",
            "group_norm_fwd",
            "group_norm_bwd",
            "group_norm_bwd_params",
            "norm_bwd_params_finish",
        ],
        &F,
    );
    per(
        &mut v,
        &["conv2d_fwd", "conv2d_dgrad", "conv2d_wgrad", "conv2d_wgrad_split", "conv2d_wgrad_finish"],
        &F,
    );
    per(
        &mut v,
        &["flash_attn_fwd", "flash_attn_bwd_pre", "flash_attn_bwd_dq", "flash_attn_bwd_dkdv"],
        &["f32", "f16", "bf16"],
    );
    per(&mut v, &["group_norm_silu_fwd", "group_norm_silu_bwd"], &F);
    per(&mut v, &["index_select_bwd"], &["f32", "f64"]);
    v.extend(["index_select_bwd_count", "index_select_bwd_scan", "index_select_bwd_fill"].map(String::from));
    per(&mut v, &["philox_uniform", "philox_normal", "adamw_step"], &["f32", "f64"]);
    v.extend(kernels::attention::dual_cuda::kernel_names());
    v
}

#[cfg(test)]
mod tests {
    use crate::cuda::has_kernel;

    /// Lists the kernels the runtime knows but this build's PTX lacks (their ops return
    /// `NotImplementedOnDevice`); the elementwise family must be complete.
    #[test]
    fn the_runtime_kernels_present_in_this_build() {
        let all = super::runtime_kernels();
        let missing: Vec<&String> = all.iter().filter(|k| !has_kernel(k)).collect();
        eprintln!(
            "{} of {} runtime kernels in this build; missing: {missing:?}",
            all.len() - missing.len(),
            all.len()
        );
        assert!(
            missing
                .iter()
                .all(|k| !k.starts_with("unary") && !k.starts_with("binary") && !k.starts_with("compare"))
        );
    }

    /// Every kernel the runtime may launch is embedded in this build's PTX.
    #[test]
    fn every_runtime_kernel_is_in_this_build() {
        let missing: Vec<String> = super::runtime_kernels().into_iter().filter(|k| !has_kernel(k)).collect();
        assert!(missing.is_empty(), "missing kernels: {missing:?}");
    }
}
