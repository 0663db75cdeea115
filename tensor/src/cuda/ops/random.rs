//! Philox fills on the device: `philox_{uniform,normal}_{f32,f64}(out, n, seed, offset, a, b)` of
//! `kernels/src/rng/philox.cu` (argument lists in `kernels/src/rng/cuda.rs`). f16/bf16 are drawn in
//! f32 and rounded, as on the CPU.

use crate::cuda::{CudaStorage, KArg, has_kernel};
use crate::{DType, Device, Error, Result, Tensor};
use kernels::rng::cuda::launch_dims;

/// Uniform in `[a, b)` (`normal == false`) or normal with mean `a` and std `b`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn fill(
    normal: bool,
    shape: &[usize],
    a: f64,
    b: f64,
    seed: u64,
    offset: u64,
    dtype: DType,
    device: Device,
) -> Result<Tensor> {
    let op = if normal { "randn" } else { "rand_uniform" };
    let Device::Cuda(i) = device else {
        return Err(Error::invalid(op, "not a GPU device"));
    };
    let cd = dtype.compute_dtype();
    let name = format!("philox_{}_{}", if normal { "normal" } else { "uniform" }, cd.as_str());
    if !has_kernel(&name) {
        return Err(Error::NotImplementedOnDevice { op, device });
    }
    let dev = crate::cuda::device(i)?;
    let n = kernels::strided::numel(shape);
    let y = CudaStorage::alloc(&dev, cd, n)?;
    if n > 0 {
        let (pa, pb) = match cd {
            DType::F64 => (KArg::F64(a), KArg::F64(b)),
            _ => (KArg::F32(a as f32), KArg::F32(b as f32)),
        };
        dev.launch(
            &name,
            launch_dims(n, offset, cd.size_in_bytes()),
            &[KArg::Ptr(y.ptr()), KArg::I64(n as i64), KArg::U64(seed), KArg::U64(offset), pa, pb],
        )?;
    }
    let t = Tensor::from_cuda(y, shape);
    if cd != dtype { t.to_dtype(dtype) } else { Ok(t) }
}
