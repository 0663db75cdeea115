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
    /// Checks that this device can hold tensors in this build and on this machine.
    pub fn ensure_available(self) -> crate::Result<()> {
        match self {
            Device::Cpu => Ok(()),
            Device::Cuda(i) => Err(crate::Error::DeviceUnavailable {
                device: self,
                reason: if cfg!(feature = "cuda") {
                    format!("the CUDA backend (issue 6) cannot open GPU {i} yet")
                } else {
                    "this build has no CUDA support: rebuild with `--features cuda`".to_string()
                },
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
