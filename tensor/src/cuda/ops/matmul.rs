//! Batched matrix multiplication on the device: `gemm_{f32,f64,bf16,f16}(a, b, c, args)` of
//! `kernels/src/gemm/gemm.cu` (contract in `kernels/src/gemm/cuda.rs`): `C_z = alpha·A_z·B_z +
//! beta·C_z` over strided operands, f16/bf16 on tensor cores with f32 accumulation, rounded once.

use super::{float_suffix, storage};
use crate::cuda::{CudaStorage, KArg, has_kernel};
use crate::{DType, Error, Result, Tensor};
use kernels::cuda_abi::LaunchDims;

/// Threads per block of every GEMM kernel.
const THREADS: u32 = 256;
/// Block tiles (m, n) of `gemm_f32`, `gemm_f64` and the tensor-core (f16/bf16) kernels (mirrors
/// `F32_TILE`, `F64_TILE`, `TC_TILE` of gemm/cuda.rs; use its `launch_dims_*` once it is on main).
const F32_TILE: (usize, usize) = (128, 128);
const F64_TILE: (usize, usize) = (64, 64);
const TC_TILE: (usize, usize) = (128, 128);
const MAX_GRID_YZ: usize = 65535;

/// `struct GemmArgs` of gemm.cu passed by value: 16 i64 (m, n, k, batch, then offset, row stride,
/// column stride and batch stride of A, B and C) and 2 f64 (alpha, beta), as 18 8-byte words.
#[allow(clippy::too_many_arguments)]
fn gemm_args(
    [batch, m, n, k]: [usize; 4],
    a: [usize; 4],
    b: [usize; 4],
    c: [usize; 4],
    alpha: f64,
    beta: f64,
) -> [u64; 18] {
    let mut w = [0u64; 18];
    let ints = [m, n, k, batch, a[0], a[1], a[2], a[3], b[0], b[1], b[2], b[3], c[0], c[1], c[2], c[3]];
    for (slot, v) in w.iter_mut().zip(ints) {
        *slot = v as u64;
    }
    w[16] = alpha.to_bits();
    w[17] = beta.to_bits();
    w
}

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
    let c = CudaStorage::alloc(&dev, a.dtype(), nb * m * n)?;
    if nb * m * n == 0 {
        return Ok(Tensor::from_cuda(c, out_shape));
    }
    let (ra, rb) = (a.rank(), b.rank());
    let args = gemm_args(
        [nb, m, n, k],
        [a.offset(), a.strides()[ra - 2], a.strides()[ra - 1], a_bs],
        [b.offset(), b.strides()[rb - 2], b.strides()[rb - 1], b_bs],
        [0, n, 1, m * n],
        1.0,
        0.0,
    );
    let tile = match a.dtype() {
        DType::F32 => F32_TILE,
        DType::F64 => F64_TILE,
        _ => TC_TILE,
    };
    let (gx, gy) = (m.div_ceil(tile.0), n.div_ceil(tile.1));
    if gx > i32::MAX as usize || gy > MAX_GRID_YZ {
        return Err(Error::invalid(op, format!("[{m} x {k}] @ [{k} x {n}] exceeds the GPU grid limits")));
    }
    let dims = LaunchDims {
        grid: (gx as u32, gy as u32, nb.min(MAX_GRID_YZ) as u32),
        block: (THREADS, 1, 1),
        shared_mem_bytes: 0,
    };
    dev.launch(
        &name,
        dims,
        &[KArg::Ptr(as_.ptr()), KArg::Ptr(bs.ptr()), KArg::Ptr(c.ptr()), KArg::Words18(args)],
    )?;
    Ok(Tensor::from_cuda(c, out_shape))
}

#[cfg(test)]
mod tests {
    #[test]
    fn gemm_args_pack_like_the_c_struct() {
        let w = super::gemm_args([2, 3, 4, 5], [1, 5, 1, 15], [0, 1, 5, 0], [0, 4, 1, 12], 1.0, 0.0);
        assert_eq!(&w[..4], &[3, 4, 5, 2]);
        assert_eq!(&w[4..8], &[1, 5, 1, 15]);
        assert_eq!(&w[12..16], &[0, 4, 1, 12]);
        assert_eq!(f64::from_bits(w[16]), 1.0);
        assert_eq!(f64::from_bits(w[17]), 0.0);
    }
}
