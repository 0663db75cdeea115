//! Tensor storage: a flat, shared buffer of one dtype on one device.
//!
//! CPU buffers come from the size-bucketed pool in `kernels::pool` so that large temporaries reuse
//! already-faulted-in pages. f16/bf16 are kept as their raw 16-bit patterns.

use crate::{DType, Device, WithDType};
use half::{bf16, f16};
use kernels::pool::PooledVec;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A flat CPU buffer of one dtype.
#[derive(Clone, Debug)]
pub enum CpuStorage {
    F32(PooledVec<f32>),
    F64(PooledVec<f64>),
    F16(PooledVec<u16>),
    BF16(PooledVec<u16>),
    I64(PooledVec<i64>),
    U8(PooledVec<u8>),
}

impl CpuStorage {
    pub fn dtype(&self) -> DType {
        match self {
            CpuStorage::F32(_) => DType::F32,
            CpuStorage::F64(_) => DType::F64,
            CpuStorage::F16(_) => DType::F16,
            CpuStorage::BF16(_) => DType::BF16,
            CpuStorage::I64(_) => DType::I64,
            CpuStorage::U8(_) => DType::U8,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            CpuStorage::F32(v) => v.len(),
            CpuStorage::F64(v) => v.len(),
            CpuStorage::F16(v) | CpuStorage::BF16(v) => v.len(),
            CpuStorage::I64(v) => v.len(),
            CpuStorage::U8(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A zero-filled buffer.
    pub fn zeros(dtype: DType, len: usize) -> Self {
        match dtype {
            DType::F32 => CpuStorage::F32(PooledVec::zeros(len)),
            DType::F64 => CpuStorage::F64(PooledVec::zeros(len)),
            DType::F16 => CpuStorage::F16(PooledVec::zeros(len)),
            DType::BF16 => CpuStorage::BF16(PooledVec::zeros(len)),
            DType::I64 => CpuStorage::I64(PooledVec::zeros(len)),
            DType::U8 => CpuStorage::U8(PooledVec::zeros(len)),
        }
    }

    /// A buffer filled with `v` (rounded to the dtype; saturating for integers).
    pub fn full(dtype: DType, len: usize, v: f64) -> Self {
        match dtype {
            DType::F32 => CpuStorage::F32(PooledVec::filled(len, v as f32)),
            DType::F64 => CpuStorage::F64(PooledVec::filled(len, v)),
            DType::F16 => CpuStorage::F16(PooledVec::filled(len, f16::from_f64(v).to_bits())),
            DType::BF16 => CpuStorage::BF16(PooledVec::filled(len, bf16::from_f64(v).to_bits())),
            DType::I64 => CpuStorage::I64(PooledVec::filled(len, v as i64)),
            DType::U8 => CpuStorage::U8(PooledVec::filled(len, v as u8)),
        }
    }

    /// Element `i` widened to f64.
    pub fn get_f64(&self, i: usize) -> f64 {
        match self {
            CpuStorage::F32(v) => v[i] as f64,
            CpuStorage::F64(v) => v[i],
            CpuStorage::F16(v) => f16::from_bits(v[i]).to_f64(),
            CpuStorage::BF16(v) => bf16::from_bits(v[i]).to_f64(),
            CpuStorage::I64(v) => v[i] as f64,
            CpuStorage::U8(v) => v[i] as f64,
        }
    }

    /// The elements as a typed slice, if the dtype matches.
    pub fn as_slice<T: WithDType>(&self) -> Option<&[T]> {
        T::slice(self)
    }

    /// Bytes held.
    pub fn size_in_bytes(&self) -> usize {
        self.len() * self.dtype().size_in_bytes()
    }
}

static LIVE_COUNT: AtomicUsize = AtomicUsize::new(0);
static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);

/// Number of live storages and the bytes they hold (all threads). Used by leak tests: a training
/// loop must not make these grow step over step.
pub fn live_storage() -> (usize, usize) {
    (LIVE_COUNT.load(Ordering::Relaxed), LIVE_BYTES.load(Ordering::Relaxed))
}

/// Storage on some device. Created through [`Storage::new_cpu`] / `Storage::new_cuda` so that live
/// storage is counted.
#[derive(Debug)]
pub enum Storage {
    Cpu(CpuStorage),
    #[cfg(feature = "cuda")]
    Cuda(crate::cuda::CudaStorage),
}

impl Drop for Storage {
    fn drop(&mut self) {
        LIVE_COUNT.fetch_sub(1, Ordering::Relaxed);
        LIVE_BYTES.fetch_sub(self.size_in_bytes(), Ordering::Relaxed);
    }
}

impl Storage {
    /// Wraps a CPU buffer (counted in [`live_storage`]).
    pub fn new_cpu(s: CpuStorage) -> Self {
        LIVE_COUNT.fetch_add(1, Ordering::Relaxed);
        LIVE_BYTES.fetch_add(s.size_in_bytes(), Ordering::Relaxed);
        Storage::Cpu(s)
    }
    /// Wraps a device buffer (counted in [`live_storage`]).
    #[cfg(feature = "cuda")]
    pub fn new_cuda(s: crate::cuda::CudaStorage) -> Self {
        LIVE_COUNT.fetch_add(1, Ordering::Relaxed);
        LIVE_BYTES.fetch_add(s.size_in_bytes(), Ordering::Relaxed);
        Storage::Cuda(s)
    }
    pub fn size_in_bytes(&self) -> usize {
        match self {
            Storage::Cpu(s) => s.size_in_bytes(),
            #[cfg(feature = "cuda")]
            Storage::Cuda(s) => s.size_in_bytes(),
        }
    }
    pub fn device(&self) -> Device {
        match self {
            Storage::Cpu(_) => Device::Cpu,
            #[cfg(feature = "cuda")]
            Storage::Cuda(s) => s.device(),
        }
    }
    pub fn dtype(&self) -> DType {
        match self {
            Storage::Cpu(s) => s.dtype(),
            #[cfg(feature = "cuda")]
            Storage::Cuda(s) => s.dtype(),
        }
    }
    pub fn len(&self) -> usize {
        match self {
            Storage::Cpu(s) => s.len(),
            #[cfg(feature = "cuda")]
            Storage::Cuda(s) => s.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The CPU buffer; [`crate::Error::NotImplementedOnDevice`] for device storage (copy the tensor
    /// to the host first with `Tensor::to_cpu`).
    pub fn cpu(&self) -> crate::Result<&CpuStorage> {
        match self {
            Storage::Cpu(s) => Ok(s),
            #[cfg(feature = "cuda")]
            Storage::Cuda(s) => {
                Err(crate::Error::NotImplementedOnDevice { op: "host access to storage", device: s.device() })
            }
        }
    }
    pub fn cpu_mut(&mut self) -> crate::Result<&mut CpuStorage> {
        match self {
            Storage::Cpu(s) => Ok(s),
            #[cfg(feature = "cuda")]
            Storage::Cuda(s) => {
                Err(crate::Error::NotImplementedOnDevice { op: "host access to storage", device: s.device() })
            }
        }
    }
    /// The device buffer, if this storage lives on a GPU.
    #[cfg(feature = "cuda")]
    pub fn cuda(&self) -> Option<&crate::cuda::CudaStorage> {
        match self {
            Storage::Cuda(s) => Some(s),
            Storage::Cpu(_) => None,
        }
    }
}
