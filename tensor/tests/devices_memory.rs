//! Device memory accounting: live-storage counts and the caching allocator's statistics.
//!
//! These counters are process-wide, so the tests live in their own test binary and take one lock:
//! run beside the other device tests (as `cargo test` runs a binary's tests on several threads)
//! their allocations would move the counters between the two reads. On the H200 that made both
//! checks fail in `devices.rs` under `--test-threads=4` and pass with one thread (2026-11-26).
//! Without a GPU the live-storage test runs on the CPU alone and the allocator test checks nothing.

mod common;
use std::sync::Mutex;
use tensor::testing::devices;
use tensor::{DType, Tensor};

static COUNTERS: Mutex<()> = Mutex::new(());

#[test]
fn live_storage_counts_device_buffers() {
    let _g = COUNTERS.lock().unwrap_or_else(|e| e.into_inner());
    for dev in devices() {
        let (c0, b0) = tensor::storage::live_storage();
        let t = Tensor::zeros_on(&[1000], DType::F64, dev).unwrap();
        let (c1, b1) = tensor::storage::live_storage();
        assert!(c1 == c0 + 1 && b1 >= b0 + 8000, "({c0}, {b0}) → ({c1}, {b1}) after one 8000-byte buffer");
        drop(t);
        assert_eq!(tensor::storage::live_storage(), (c0, b0), "dropping the buffer is counted");
    }
}

#[cfg(feature = "cuda")]
#[test]
fn the_caching_allocator_reuses_buffers_across_steps() {
    let _g = COUNTERS.lock().unwrap_or_else(|e| e.into_inner());
    for dev in tensor::testing::gpu_devices() {
        let tensor::Device::Cuda(i) = dev else { continue };
        let x = common::seq(&[64, 64]).to_dtype(tensor::DType::F32).unwrap().to_device(dev).unwrap();
        let step = || x.mul(&x).unwrap().add(&x).unwrap().exp().unwrap().sub(&x).unwrap();
        drop(step());
        let before = tensor::cuda::memory_stats(i).unwrap();
        for _ in 0..10 {
            drop(step());
        }
        let after = tensor::cuda::memory_stats(i).unwrap();
        assert_eq!(after.misses, before.misses, "a steady loop allocated fresh device memory: {after:?}");
        assert!(after.hits >= before.hits + 40, "{after:?}");
        tensor::cuda::empty_cache(i).unwrap();
        assert_eq!(tensor::cuda::memory_stats(i).unwrap().cached_bytes, 0);
    }
}
