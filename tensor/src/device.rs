//! Where a tensor's storage lives.

use std::fmt;

/// A compute device. `Cuda(i)` is the i-th GPU; without the `cuda` feature (or without a GPU) asking
/// for it returns [`crate::Error::DeviceUnavailable`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Device {
    #[default]
    Cpu,
    Cuda(usize),
}

impl Device {
    /// Checks that this device can hold tensors in this build and on this machine: for `Cuda(i)` the
    /// build has the `cuda` feature, the NVIDIA driver is installed, GPU `i` exists and a context can
    /// be created on it (the GPU is opened here, once per process). Never panics.
    pub fn ensure_available(self) -> crate::Result<()> {
        match self {
            Device::Cpu => Ok(()),
            #[cfg(feature = "cuda")]
            Device::Cuda(i) => crate::cuda::device(i).map(|_| ()),
            #[cfg(not(feature = "cuda"))]
            Device::Cuda(_) => Err(crate::Error::DeviceUnavailable {
                device: self,
                reason: "this build has no CUDA support: rebuild with `--features cuda` \
                         (e.g. `cargo build --features tensor/cuda`)"
                    .to_string(),
            }),
        }
    }

    pub fn is_cpu(self) -> bool {
        matches!(self, Device::Cpu)
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            Device::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}
