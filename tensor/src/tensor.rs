//! The `Tensor` type: shared storage + strided layout.

use crate::storage::{CpuStorage, Storage};
use crate::{DType, Device, Error, Result, WithDType};
use kernels::StridedLayout;
use kernels::pool::PooledVec;
use std::sync::Arc;

/// An n-dimensional array: a shared, immutable [`Storage`] plus a [`StridedLayout`] (shape, strides in
/// elements, offset). Cloning a tensor or taking a view (reshape when possible, permute, narrow,
/// expand, squeeze/unsqueeze) shares the storage; ops read any layout and write fresh contiguous
/// storage. Storage is never mutated through a shared handle: in-place updates copy on write.
#[derive(Clone)]
pub struct Tensor {
    storage: Arc<Storage>,
    layout: StridedLayout,
}

impl Tensor {
    /// Wraps a CPU buffer with a layout, checking that the layout stays inside the buffer.
    pub fn from_storage(storage: CpuStorage, layout: StridedLayout) -> Result<Self> {
        if layout.required_len() > storage.len() {
            return Err(Error::invalid(
                "from_storage",
                format!(
                    "layout {:?} (strides {:?}, offset {}) needs {} elements but the storage holds {}",
                    layout.shape,
                    layout.strides,
                    layout.offset,
                    layout.required_len(),
                    storage.len()
                ),
            ));
        }
        Ok(Self { storage: Arc::new(Storage::new_cpu(storage)), layout })
    }

    /// A contiguous tensor over a fresh CPU buffer whose length equals the shape's element count.
    pub(crate) fn from_cpu(s: CpuStorage, shape: &[usize]) -> Self {
        debug_assert_eq!(s.len(), kernels::strided::numel(shape));
        Self { storage: Arc::new(Storage::new_cpu(s)), layout: StridedLayout::contiguous(shape) }
    }

    /// A contiguous tensor over a fresh device buffer whose length equals the shape's element count.
    #[cfg(feature = "cuda")]
    pub(crate) fn from_cuda(s: crate::cuda::CudaStorage, shape: &[usize]) -> Self {
        debug_assert_eq!(s.len(), kernels::strided::numel(shape));
        Self { storage: Arc::new(Storage::new_cuda(s)), layout: StridedLayout::contiguous(shape) }
    }

    /// A view sharing this tensor's storage with another layout (bounds already established).
    pub(crate) fn with_layout(&self, layout: StridedLayout) -> Self {
        debug_assert!(layout.required_len() <= self.storage.len());
        Self { storage: self.storage.clone(), layout }
    }

    /// Builds a tensor from a vector and a shape.
    pub fn from_vec<T: WithDType>(data: Vec<T>, shape: &[usize]) -> Result<Self> {
        let expected = kernels::strided::numel(shape);
        if data.len() != expected {
            return Err(Error::ElementCount {
                op: "from_vec",
                shape: shape.to_vec(),
                expected,
                len: data.len(),
            });
        }
        Ok(Self::from_cpu(T::into_storage(data), shape))
    }

    /// Builds a tensor by copying a slice.
    pub fn from_slice<T: WithDType>(data: &[T], shape: &[usize]) -> Result<Self> {
        Self::from_vec(data.to_vec(), shape)
    }

    /// A rank-0 tensor.
    pub fn scalar<T: WithDType>(v: T) -> Self {
        Self::from_cpu(T::into_storage(vec![v]), &[])
    }

    pub fn zeros(shape: &[usize], dtype: DType) -> Self {
        Self::from_cpu(CpuStorage::zeros(dtype, kernels::strided::numel(shape)), shape)
    }

    pub fn ones(shape: &[usize], dtype: DType) -> Self {
        Self::full(shape, 1.0, dtype)
    }

    /// Every element `v` (rounded to the dtype).
    pub fn full(shape: &[usize], v: f64, dtype: DType) -> Self {
        Self::from_cpu(CpuStorage::full(dtype, kernels::strided::numel(shape), v), shape)
    }

    /// A zero-filled tensor on `device`.
    pub fn zeros_on(shape: &[usize], dtype: DType, device: Device) -> Result<Self> {
        match device {
            Device::Cpu => Ok(Self::zeros(shape, dtype)),
            Device::Cuda(_) => {
                device.ensure_available()?;
                #[cfg(feature = "cuda")]
                {
                    crate::cuda::ops::layout::zeros(shape, dtype, device)
                }
                #[cfg(not(feature = "cuda"))]
                unreachable!("ensure_available refuses CUDA devices without the cuda feature")
            }
        }
    }

    /// Every element `v` (rounded to the dtype), on `device`.
    pub fn full_on(shape: &[usize], v: f64, dtype: DType, device: Device) -> Result<Self> {
        match device {
            Device::Cpu => Ok(Self::full(shape, v, dtype)),
            Device::Cuda(_) => {
                device.ensure_available()?;
                #[cfg(feature = "cuda")]
                {
                    crate::cuda::ops::layout::full(shape, v, dtype, device)
                }
                #[cfg(not(feature = "cuda"))]
                unreachable!("ensure_available refuses CUDA devices without the cuda feature")
            }
        }
    }

    /// Zeros of this tensor's shape and dtype, on its device. (Infallible for compatibility: should
    /// allocating on the GPU fail, the result is on the CPU and the next op that mixes it with GPU
    /// tensors returns [`Error::DeviceMismatch`]; use [`Tensor::zeros_on`] to see the error.)
    pub fn zeros_like(&self) -> Self {
        Self::zeros_on(self.shape(), self.dtype(), self.device())
            .unwrap_or_else(|_| Self::zeros(self.shape(), self.dtype()))
    }

    /// Ones of this tensor's shape and dtype, on its device (see [`Tensor::zeros_like`] on failure).
    pub fn ones_like(&self) -> Self {
        Self::full_on(self.shape(), 1.0, self.dtype(), self.device())
            .unwrap_or_else(|_| Self::ones(self.shape(), self.dtype()))
    }

    /// `[start, start + step, …)` below `end`, as a 1-d tensor.
    pub fn arange(start: f64, end: f64, step: f64, dtype: DType) -> Result<Self> {
        if step == 0.0 || !step.is_finite() || !start.is_finite() || !end.is_finite() {
            return Err(Error::invalid("arange", format!("start {start}, end {end}, step {step}")));
        }
        let n = ((end - start) / step).ceil().max(0.0) as usize;
        let v: Vec<f64> = (0..n).map(|i| start + i as f64 * step).collect();
        Tensor::from_vec(v, &[n])?.to_dtype(dtype)
    }

    // ----- accessors -----

    pub fn shape(&self) -> &[usize] {
        &self.layout.shape
    }

    pub fn strides(&self) -> &[usize] {
        &self.layout.strides
    }

    pub fn offset(&self) -> usize {
        self.layout.offset
    }

    pub fn layout(&self) -> &StridedLayout {
        &self.layout
    }

    pub fn rank(&self) -> usize {
        self.layout.rank()
    }

    pub fn numel(&self) -> usize {
        self.layout.numel()
    }

    pub fn dtype(&self) -> DType {
        self.storage.dtype()
    }

    pub fn device(&self) -> Device {
        self.storage.device()
    }

    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// True when two tensors share one buffer.
    pub fn same_storage(&self, other: &Tensor) -> bool {
        Arc::ptr_eq(&self.storage, &other.storage)
    }

    /// Number of live handles (tensors and views) on this tensor's storage.
    pub fn storage_refcount(&self) -> usize {
        Arc::strong_count(&self.storage)
    }

    /// The CPU buffer. Internal: every public op checks the device first (dispatching to the GPU path
    /// or returning [`Error::NotImplementedOnDevice`]) before it reaches CPU code.
    pub(crate) fn cpu(&self) -> &CpuStorage {
        match self.storage.as_ref() {
            Storage::Cpu(s) => s,
            #[cfg(feature = "cuda")]
            Storage::Cuda(_) => {
                unreachable!("CPU code reached with a {} tensor: the op must check the device", self.device())
            }
        }
    }

    /// The device buffer of a GPU tensor.
    #[cfg(feature = "cuda")]
    pub(crate) fn cuda_storage(&self, op: &'static str) -> Result<&crate::cuda::CudaStorage> {
        self.storage.cuda().ok_or(Error::DeviceMismatch { op, lhs: self.device(), rhs: Device::Cuda(0) })
    }

    /// [`Error::NotImplementedOnDevice`] unless the tensor is on the CPU (for ops with no GPU kernel).
    pub(crate) fn require_cpu(&self, op: &'static str) -> Result<()> {
        if self.device().is_cpu() {
            Ok(())
        } else {
            Err(Error::NotImplementedOnDevice { op, device: self.device() })
        }
    }

    pub fn is_contiguous(&self) -> bool {
        self.layout.is_contiguous()
    }

    /// Size of dimension `d` (negative counts from the end).
    pub fn dim(&self, d: isize) -> Result<usize> {
        Ok(self.shape()[self.resolve_dim("dim", d)?])
    }

    /// Maps a possibly negative dimension to an index below the rank.
    pub fn resolve_dim(&self, op: &'static str, d: isize) -> Result<usize> {
        resolve_dim(op, d, self.rank())
    }

    // ----- element access -----

    /// All elements in row-major order, converted to `T`'s dtype if needed.
    pub fn to_vec<T: WithDType>(&self) -> Result<Vec<T>> {
        if !self.device().is_cpu() {
            return self.to_cpu()?.to_vec();
        }
        let t = if self.dtype() == T::DTYPE { self.clone() } else { self.to_dtype(T::DTYPE)? };
        let t = t.contiguous()?;
        let s = T::slice(t.cpu()).expect("dtype checked above");
        Ok(s[t.offset()..t.offset() + t.numel()].to_vec())
    }

    /// Row-major elements widened to f64 (any dtype; a GPU tensor is copied to the host). If that copy
    /// fails (a broken GPU context) every element is NaN: use [`Tensor::try_to_vec_f64`] to get the
    /// error.
    pub fn to_vec_f64(&self) -> Vec<f64> {
        self.try_to_vec_f64().unwrap_or_else(|_| vec![f64::NAN; self.numel()])
    }

    /// Row-major elements widened to f64, copying a GPU tensor to the host.
    pub fn try_to_vec_f64(&self) -> Result<Vec<f64>> {
        if !self.device().is_cpu() {
            return self.to_cpu()?.try_to_vec_f64();
        }
        let mut out = Vec::with_capacity(self.numel());
        let s = self.cpu();
        self.layout.for_each_offset(|o| out.push(s.get_f64(o)));
        Ok(out)
    }

    /// The single element of a one-element tensor, as f64.
    pub fn item(&self) -> Result<f64> {
        if self.numel() != 1 {
            return Err(Error::invalid(
                "item",
                format!("tensor of shape {:?} has {} elements, not 1", self.shape(), self.numel()),
            ));
        }
        if !self.device().is_cpu() {
            return self.to_cpu()?.item();
        }
        Ok(self.cpu().get_f64(self.layout.offset))
    }

    /// Element at a multi-index, as f64.
    pub fn get(&self, index: &[usize]) -> Result<f64> {
        if index.len() != self.rank() {
            return Err(Error::RankMismatch {
                op: "get",
                expected: index.len().to_string(),
                shape: self.shape().to_vec(),
            });
        }
        let mut off = self.layout.offset;
        for (d, (&i, (&n, &s))) in index.iter().zip(self.shape().iter().zip(self.strides())).enumerate() {
            if i >= n {
                return Err(Error::IndexOutOfRange { op: "get", index: i as i64, dim: d, size: n });
            }
            off += i * s;
        }
        if !self.device().is_cpu() {
            let one = StridedLayout::new(vec![], vec![], off);
            return self.with_layout(one).to_cpu()?.item();
        }
        Ok(self.cpu().get_f64(off))
    }

    // ----- copies and conversions -----

    /// A contiguous tensor with the same values: the same tensor if already contiguous at offset 0
    /// with an exactly sized buffer, otherwise a copy (on the tensor's device).
    pub fn contiguous(&self) -> Result<Tensor> {
        if self.is_contiguous() && (self.layout.offset == 0 && self.storage.len() == self.numel()) {
            return Ok(self.clone());
        }
        #[cfg(feature = "cuda")]
        if !self.device().is_cpu() {
            return crate::cuda::ops::layout::contiguous(self);
        }
        let shape = self.shape().to_vec();
        let dst = StridedLayout::contiguous(&shape);
        let n = self.numel();
        macro_rules! copy {
            ($v:expr, $variant:ident) => {{
                let mut out = PooledVec::zeros(n);
                kernels::layout::copy_strided(&$v[..], &self.layout, &mut out[..], &dst);
                CpuStorage::$variant(out)
            }};
        }
        let s = match self.cpu() {
            CpuStorage::F32(v) => copy!(v, F32),
            CpuStorage::F64(v) => copy!(v, F64),
            CpuStorage::F16(v) => copy!(v, F16),
            CpuStorage::BF16(v) => copy!(v, BF16),
            CpuStorage::I64(v) => copy!(v, I64),
            CpuStorage::U8(v) => copy!(v, U8),
        };
        Ok(Tensor::from_cpu(s, &shape))
    }

    /// A contiguous copy that never shares storage with `self`.
    pub fn deep_clone(&self) -> Result<Tensor> {
        let c = self.contiguous()?;
        if !c.same_storage(self) {
            return Ok(c);
        }
        #[cfg(feature = "cuda")]
        if !self.device().is_cpu() {
            return crate::cuda::ops::layout::copy(&c);
        }
        Ok(Tensor::from_cpu(c.cpu().clone(), c.shape()))
    }

    /// Converts to another dtype (a copy; the same tensor if the dtype already matches). Float → int
    /// truncates toward zero and saturates; NaN → 0.
    pub fn to_dtype(&self, dtype: DType) -> Result<Tensor> {
        if dtype == self.dtype() {
            return Ok(self.clone());
        }
        #[cfg(feature = "cuda")]
        if !self.device().is_cpu() {
            return crate::cuda::ops::layout::to_dtype(self, dtype);
        }
        let src = self.contiguous()?;
        let n = src.numel();
        let s = src.cpu();
        let o = src.offset();
        use half::{bf16, f16};
        let out = match (s, dtype) {
            (CpuStorage::F32(v), DType::F64) => {
                CpuStorage::F64(PooledVec::from_iter_exact(n, v[o..o + n].iter().map(|&x| x as f64)))
            }
            (CpuStorage::F64(v), DType::F32) => {
                CpuStorage::F32(PooledVec::from_iter_exact(n, v[o..o + n].iter().map(|&x| x as f32)))
            }
            (CpuStorage::F32(v), DType::F16) => CpuStorage::F16(PooledVec::from_iter_exact(
                n,
                v[o..o + n].iter().map(|&x| f16::from_f32(x).to_bits()),
            )),
            (CpuStorage::F32(v), DType::BF16) => CpuStorage::BF16(PooledVec::from_iter_exact(
                n,
                v[o..o + n].iter().map(|&x| bf16::from_f32(x).to_bits()),
            )),
            (CpuStorage::F16(v), DType::F32) => CpuStorage::F32(PooledVec::from_iter_exact(
                n,
                v[o..o + n].iter().map(|&x| f16::from_bits(x).to_f32()),
            )),
            (CpuStorage::BF16(v), DType::F32) => CpuStorage::F32(PooledVec::from_iter_exact(
                n,
                v[o..o + n].iter().map(|&x| bf16::from_bits(x).to_f32()),
            )),
            _ => {
                let vals = (0..n).map(|i| s.get_f64(o + i));
                match dtype {
                    DType::F32 => CpuStorage::F32(PooledVec::from_iter_exact(n, vals.map(|x| x as f32))),
                    DType::F64 => CpuStorage::F64(PooledVec::from_iter_exact(n, vals)),
                    DType::F16 => CpuStorage::F16(PooledVec::from_iter_exact(
                        n,
                        vals.map(|x| f16::from_f64(x).to_bits()),
                    )),
                    DType::BF16 => CpuStorage::BF16(PooledVec::from_iter_exact(
                        n,
                        vals.map(|x| bf16::from_f64(x).to_bits()),
                    )),
                    DType::I64 => CpuStorage::I64(PooledVec::from_iter_exact(n, vals.map(|x| x as i64))),
                    DType::U8 => CpuStorage::U8(PooledVec::from_iter_exact(n, vals.map(|x| x as u8))),
                }
            }
        };
        Ok(Tensor::from_cpu(out, src.shape()))
    }

    /// Copies the tensor to a device (the same tensor if it is already there). Any layout is accepted;
    /// the result is contiguous. Without the `cuda` feature, or without a usable GPU, asking for
    /// `Device::Cuda(i)` returns [`Error::DeviceUnavailable`] with the reason.
    pub fn to_device(&self, device: Device) -> Result<Tensor> {
        if device == self.device() {
            return Ok(self.clone());
        }
        device.ensure_available()?;
        #[cfg(feature = "cuda")]
        {
            crate::cuda::ops::transfer::to_device(self, device)
        }
        #[cfg(not(feature = "cuda"))]
        {
            // Only the CPU is available in this build and the tensor is already there.
            Ok(self.clone())
        }
    }

    /// Copies the tensor to host memory (the same tensor if it is already there).
    pub fn to_cpu(&self) -> Result<Tensor> {
        self.to_device(Device::Cpu)
    }

    /// Checks that two tensors live on the same device and have the same dtype.
    pub(crate) fn check_same(&self, op: &'static str, other: &Tensor) -> Result<()> {
        if self.device() != other.device() {
            return Err(Error::DeviceMismatch { op, lhs: self.device(), rhs: other.device() });
        }
        if self.dtype() != other.dtype() {
            return Err(Error::DTypeMismatch { op, lhs: self.dtype(), rhs: other.dtype() });
        }
        Ok(())
    }

    /// Checks that two tensors live on the same device.
    pub(crate) fn check_device(&self, op: &'static str, other: &Tensor) -> Result<()> {
        if self.device() != other.device() {
            return Err(Error::DeviceMismatch { op, lhs: self.device(), rhs: other.device() });
        }
        Ok(())
    }

    /// Checks that two tensors have identical shapes.
    pub(crate) fn check_same_shape(&self, op: &'static str, other: &Tensor) -> Result<()> {
        if self.shape() != other.shape() {
            return Err(Error::ShapeMismatch { op, lhs: self.shape().to_vec(), rhs: other.shape().to_vec() });
        }
        Ok(())
    }
}

/// Maps a possibly negative dimension to an index below `rank`.
pub fn resolve_dim(op: &'static str, d: isize, rank: usize) -> Result<usize> {
    let r = rank as isize;
    let i = if d < 0 { d + r } else { d };
    if i < 0 || i >= r {
        return Err(Error::DimOutOfRange { op, dim: d, rank });
    }
    Ok(i as usize)
}
