//! Host ↔ device copies of tensors of any layout.

use super::super::{CudaStorage, device};
use crate::{Device, Result, Tensor};
use kernels::StridedLayout;

/// Copies `t` to `to` (which differs from `t.device()` and has been checked to be available).
pub(crate) fn to_device(t: &Tensor, to: Device) -> Result<Tensor> {
    if t.numel() == 0 {
        return Tensor::zeros_on(t.shape(), t.dtype(), to);
    }
    match (t.device(), to) {
        (Device::Cpu, Device::Cuda(i)) => {
            let dev = device(i)?;
            // Made contiguous on the source device (the CPU) first.
            let c = t.contiguous()?;
            let s = CudaStorage::from_cpu(&dev, c.storage().cpu()?, c.offset(), c.numel())?;
            Ok(Tensor::from_cuda(s, t.shape()))
        }
        (Device::Cuda(_), Device::Cpu) => {
            let src = t.cuda_storage("to_cpu")?;
            if t.is_contiguous() {
                let s = src.to_cpu(t.offset(), t.numel())?;
                return Ok(Tensor::from_cpu(s, t.shape()));
            }
            if super::layout::can_copy_on_device(t.dtype()) {
                // Made contiguous on the source device (the GPU) first.
                let c = t.contiguous()?;
                let s = c.cuda_storage("to_cpu")?.to_cpu(c.offset(), c.numel())?;
                return Ok(Tensor::from_cpu(s, t.shape()));
            }
            // No GPU copy kernel for this dtype in this build: bring the span of storage the view
            // covers to the host and gather it there.
            let start = t.offset();
            let span = t.layout().required_len().saturating_sub(start);
            let host = src.to_cpu(start, span)?;
            let view = StridedLayout::new(t.shape().to_vec(), t.strides().to_vec(), 0);
            Tensor::from_storage(host, view)?.contiguous()
        }
        (Device::Cuda(_), Device::Cuda(_)) => t.to_cpu()?.to_device(to),
        (Device::Cpu, Device::Cpu) => Ok(t.clone()),
    }
}
