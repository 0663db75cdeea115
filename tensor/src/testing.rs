//! Helpers for tests that run once per compiled-in device.

use crate::Device;

/// The devices tests should run on: the CPU, plus `cuda:0` when this build has the `cuda` feature and
/// a GPU can be opened. When it cannot, prints `skipping cuda: <reason>` (visible with
/// `--nocapture`) and returns only the CPU.
///
/// With `MATRYOSHKA_REQUIRE_GPU=1` (set by `scripts/gpu-check.sh`) a GPU that cannot be opened is a
/// test failure instead, so a verification run on a GPU machine cannot pass by skipping.
pub fn devices() -> Vec<Device> {
    let mut v = vec![Device::Cpu];
    match Device::Cuda(0).ensure_available() {
        Ok(()) => v.push(Device::Cuda(0)),
        Err(e) if std::env::var_os("MATRYOSHKA_REQUIRE_GPU").is_some_and(|s| s == "1") => {
            panic!("MATRYOSHKA_REQUIRE_GPU=1 but cuda:0 cannot be used: {e}")
        }
        Err(e) => eprintln!("skipping cuda: {e}"),
    }
    v
}

/// The GPU devices among [`devices`] (empty without a usable GPU).
pub fn gpu_devices() -> Vec<Device> {
    devices().into_iter().filter(|d| !d.is_cpu()).collect()
}
