//! Batched matrix multiplication on the device: `gemm_{f32,f64,bf16,f16}(a, b, c, args)` of
//! `kernels/src/gemm/gemm.cu` (contract in `kernels/src/gemm/cuda.rs`): `C_z = alpha·A_z·B_z +
//! beta·C_z` over strided operands, f16/bf16 on tensor cores with f32 accumulation, rounded once.
//! The argument struct and the launch shape come from `kernels::gemm::cuda`.

use super::{float_suffix, storage};
use crate::cuda::{CudaStorage, KArg, has_kernel};
use crate::{Error, Result, Tensor};
use kernels::gemm::cuda::{GemmArgs, try_launch_dims};

/// `a` [.., m, k] and `b` [.., k, n] with their batch dims folded into one batch stride each
/// (`a_bs`, `b_bs`; 0 broadcasts); returns the contiguous [batch.., m, n] product.
pub(crate) fn gemm(
    a: &Tensor,
    a_bs: usize,
    b: &Tensor,
    b_bs: usize,
    [nb, m, k, n]: [usize; 4],
    out_shape: &[usize],
) -> Result<Tensor> {
    let op = "matmul";
    let dt = float_suffix(op, a.dtype())?;
    let name = format!("gemm_{dt}");
    if !has_kernel(&name) {
        return Err(Error::NotImplementedOnDevice { op, device: a.device() });
    }
    let (as_, dev) = storage(op, a)?;
    let (bs, _) = storage(op, b)?;
    let (ra, rb) = (a.rank(), b.rank());
    // C is the fresh contiguous output: offset 0, row stride n, batch stride m·n (never 0 when
    // there is work, so the batch is spread over grid.z).
    let args = GemmArgs::new(
        nb,
        m,
        n,
        k,
        1.0,
        (a.offset(), a.strides()[ra - 2], a.strides()[ra - 1], a_bs),
        (b.offset(), b.strides()[rb - 2], b.strides()[rb - 1], b_bs),
        0.0,
        (0, n, 1, m * n),
    );
    let dims = try_launch_dims(&args, dt).map_err(|e| {
        Error::invalid(op, format!("[{m} x {k}] @ [{k} x {n}] exceeds the GPU grid limits: {e}"))
    })?;
    let c = CudaStorage::alloc(&dev, a.dtype(), nb * m * n)?;
    if let Some(dims) = dims {
        dev.launch(
            &name,
            dims,
            &[KArg::Ptr(as_.ptr()), KArg::Ptr(bs.ptr()), KArg::Ptr(c.ptr()), KArg::Gemm(args)],
        )?;
    }
    Ok(Tensor::from_cuda(c, out_shape))
}
