//! Device storage: a buffer from the caching allocator holding `len` elements of one dtype (f16/bf16
//! as raw 16-bit patterns, like the CPU storage).

use super::device::{CudaDevice, DeviceBuffer};
use crate::storage::CpuStorage;
use crate::{DType, Device, Error, Result};
use kernels::pool::PooledVec;
use std::sync::Arc;

/// A flat device buffer of one dtype.
pub struct CudaStorage {
    buf: DeviceBuffer,
    dtype: DType,
    len: usize,
}

impl std::fmt::Debug for CudaStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CudaStorage({} x {} on {})", self.len, self.dtype, self.device())
    }
}

impl CudaStorage {
    /// Uninitialised storage (the caller's kernel writes every element).
    pub fn alloc(dev: &Arc<CudaDevice>, dtype: DType, len: usize) -> Result<Self> {
        Ok(Self { buf: dev.alloc(len * dtype.size_in_bytes())?, dtype, len })
    }

    /// Zero-filled storage (all-zero bits are 0 for every dtype).
    pub fn zeros(dev: &Arc<CudaDevice>, dtype: DType, len: usize) -> Result<Self> {
        Ok(Self { buf: dev.alloc_zeros(len * dtype.size_in_bytes())?, dtype, len })
    }

    /// Copies elements `[offset, offset + n)` of a CPU buffer to the device.
    pub fn from_cpu(dev: &Arc<CudaDevice>, s: &CpuStorage, offset: usize, n: usize) -> Result<Self> {
        let r = offset..offset + n;
        let buf = match s {
            CpuStorage::F32(v) => dev.htod(&v[r])?,
            CpuStorage::F64(v) => dev.htod(&v[r])?,
            CpuStorage::F16(v) | CpuStorage::BF16(v) => dev.htod(&v[r])?,
            CpuStorage::I64(v) => dev.htod(&v[r])?,
            CpuStorage::U8(v) => dev.htod(&v[r])?,
        };
        Ok(Self { buf, dtype: s.dtype(), len: n })
    }

    /// Copies elements `[offset, offset + n)` to a CPU buffer.
    pub fn to_cpu(&self, offset: usize, n: usize) -> Result<CpuStorage> {
        if offset + n > self.len {
            return Err(Error::invalid(
                "to_cpu",
                format!("elements {offset}..{} of a {}-element buffer", offset + n, self.len),
            ));
        }
        let dev = self.buf.device();
        Ok(match self.dtype {
            DType::F32 => CpuStorage::F32(PooledVec::from_vec(dev.dtoh::<f32>(&self.buf, offset, n)?)),
            DType::F64 => CpuStorage::F64(PooledVec::from_vec(dev.dtoh::<f64>(&self.buf, offset, n)?)),
            DType::F16 => CpuStorage::F16(PooledVec::from_vec(dev.dtoh::<u16>(&self.buf, offset, n)?)),
            DType::BF16 => CpuStorage::BF16(PooledVec::from_vec(dev.dtoh::<u16>(&self.buf, offset, n)?)),
            DType::I64 => CpuStorage::I64(PooledVec::from_vec(dev.dtoh::<i64>(&self.buf, offset, n)?)),
            DType::U8 => CpuStorage::U8(PooledVec::from_vec(dev.dtoh::<u8>(&self.buf, offset, n)?)),
        })
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn size_in_bytes(&self) -> usize {
        self.len * self.dtype.size_in_bytes()
    }
    pub fn device(&self) -> Device {
        self.buf.device().device()
    }
    pub fn cuda_device(&self) -> &Arc<CudaDevice> {
        self.buf.device()
    }
    /// The underlying pooled buffer.
    pub fn buffer(&self) -> &DeviceBuffer {
        &self.buf
    }
    /// Device address of element 0.
    pub fn ptr(&self) -> u64 {
        self.buf.ptr()
    }
    /// Device address of element `i`.
    pub fn ptr_at(&self, i: usize) -> u64 {
        self.buf.ptr() + (i * self.dtype.size_in_bytes()) as u64
    }
}
