//! The CUDA runtime (feature `cuda`): devices, the caching allocator, device storage and the GPU
//! paths of the tensor ops. The allocator's bucketing logic (`pool`) is plain Rust and compiled in
//! every build so that it is tested without a GPU.

pub mod pool;

#[cfg(feature = "cuda")]
pub mod device;
#[cfg(feature = "cuda")]
pub mod nvtx;
#[cfg(feature = "cuda")]
pub(crate) mod ops;
#[cfg(feature = "cuda")]
mod storage;

#[cfg(feature = "cuda")]
pub use device::{CudaDevice, DeviceBuffer, KArg, KernelInfo, device, device_count, has_kernel};
#[cfg(feature = "cuda")]
pub use ops::runtime_kernels;
pub use pool::PoolStats;
#[cfg(feature = "cuda")]
pub use storage::CudaStorage;

/// Counters of the caching allocator of GPU `ordinal` (opening it if needed).
#[cfg(feature = "cuda")]
pub fn memory_stats(ordinal: usize) -> crate::Result<PoolStats> {
    Ok(device(ordinal)?.memory_stats())
}

/// Returns every cached, unused block of GPU `ordinal` to the driver.
#[cfg(feature = "cuda")]
pub fn empty_cache(ordinal: usize) -> crate::Result<()> {
    device(ordinal)?.empty_cache()
}
