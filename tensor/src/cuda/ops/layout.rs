//! Copies and dtype conversions on the device.

use super::{float_suffix, storage, strided};
use crate::cuda::{CudaStorage, KArg};
use crate::{DType, Error, Result, Tensor};
use kernels::elementwise::UnaryOp;
use kernels::elementwise::cuda::launch_dims;

/// Whether a strided copy of this dtype can run on the GPU in this build.
pub(crate) fn can_copy_on_device(dtype: DType) -> bool {
    dtype.is_float()
}

/// A contiguous copy of any layout, on the tensor's device.
pub(crate) fn contiguous(x: &Tensor) -> Result<Tensor> {
    if !can_copy_on_device(x.dtype()) {
        return Err(Error::NotImplementedOnDevice {
            op: "contiguous (strided copy of i64/u8)",
            device: x.device(),
        });
    }
    // Until the layout family's copy kernel lands: `unary` with clamp(-inf, inf) is an exact strided
    // copy for every float dtype (it returns x unchanged, NaN and -0.0 included; f16/bf16 round-trip
    // exactly through f32).
    let dt = float_suffix("contiguous", x.dtype())?;
    let (xs, dev) = storage("contiguous", x)?;
    let n = x.numel();
    let y = CudaStorage::alloc(&dev, x.dtype(), n)?;
    if n > 0 {
        let (code, p0, p1) = UnaryOp::Clamp { min: f64::NEG_INFINITY, max: f64::INFINITY }.cuda_code();
        dev.launch(
            &format!("unary_{dt}"),
            launch_dims(n),
            &[
                KArg::Ptr(xs.ptr()),
                KArg::Strided(strided("contiguous", x)?),
                KArg::Ptr(y.ptr()),
                KArg::I64(n as i64),
                KArg::I32(code),
                KArg::F64(p0),
                KArg::F64(p1),
            ],
        )?;
    }
    Ok(Tensor::from_cuda(y, x.shape()))
}

/// A copy into fresh storage (for `deep_clone` of an already contiguous tensor).
pub(crate) fn copy(x: &Tensor) -> Result<Tensor> {
    let v = x.expand(x.shape())?;
    // A fresh buffer through the strided copy (the layout is contiguous, so this is a flat copy).
    contiguous(&v)
}

/// Dtype conversion on the device.
pub(crate) fn to_dtype(x: &Tensor, dtype: DType) -> Result<Tensor> {
    let _ = dtype;
    Err(Error::NotImplementedOnDevice { op: "to_dtype", device: x.device() })
}

/// A zero-filled tensor on GPU `device`.
pub(crate) fn zeros(shape: &[usize], dtype: DType, device: crate::Device) -> Result<Tensor> {
    let crate::Device::Cuda(i) = device else {
        return Ok(Tensor::zeros(shape, dtype));
    };
    let dev = crate::cuda::device(i)?;
    let s = CudaStorage::zeros(&dev, dtype, kernels::strided::numel(shape))?;
    Ok(Tensor::from_cuda(s, shape))
}

/// A tensor filled with `v` on GPU `device`.
pub(crate) fn full(shape: &[usize], v: f64, dtype: DType, device: crate::Device) -> Result<Tensor> {
    if v == 0.0 && v.is_sign_positive() {
        return zeros(shape, dtype, device);
    }
    // Until the layout family's fill kernel lands: the constant is built on the host and copied.
    Tensor::full(shape, v, dtype).to_device(device)
}
