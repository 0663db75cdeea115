//! `philox.cu` through the host emulator against the CPU fills: every element bit for bit (the
//! emulator uses the host libm, like the CPU; on a GPU the normal fills carry the tolerance stated
//! in `rng/cuda.rs`), offsets that are not block-aligned, the offset near `u64::MAX` whose global
//! indices pass 2⁶⁴, sizes 0 and 1, split fills, and the Random123 known answers.

use super::*;
use crate::cuda_abi::LaunchDims;
use crate::emu::{self, CPtr, Ptr};

unsafe extern "C" {
    fn philox_uniform_f32(out: *mut f32, n: i64, seed: u64, offset: u64, low: f32, high: f32);
    fn philox_uniform_f64(out: *mut f64, n: i64, seed: u64, offset: u64, low: f64, high: f64);
    fn philox_normal_f32(out: *mut f32, n: i64, seed: u64, offset: u64, mean: f32, std: f32);
    fn philox_normal_f64(out: *mut f64, n: i64, seed: u64, offset: u64, mean: f64, std: f64);
    fn philox_raw_u32(ctr: *const u32, key: *const u32, out: *mut u32, items: i64);
}

/// At most 3 blocks of 64 threads: the kernels are grid-stride loops.
fn few(items: usize) -> LaunchDims {
    LaunchDims::linear(items, 64, 3)
}

#[derive(Clone, Copy, Debug)]
enum Fill {
    Uniform,
    Normal,
}

fn gpu_f32(kind: Fill, n: usize, seed: u64, offset: u64, a: f32, b: f32, dims: LaunchDims) -> Vec<f32> {
    let mut out = vec![f32::NAN; n + 1];
    let p = Ptr::of(&mut out);
    // SAFETY: out holds n (+1 sentinel) elements.
    emu::launch(dims, || unsafe {
        match kind {
            Fill::Uniform => philox_uniform_f32(p.get(), n as i64, seed, offset, a, b),
            Fill::Normal => philox_normal_f32(p.get(), n as i64, seed, offset, a, b),
        }
    })
    .unwrap();
    assert!(out[n].is_nan(), "wrote past n");
    out.truncate(n);
    out
}

fn gpu_f64(kind: Fill, n: usize, seed: u64, offset: u64, a: f64, b: f64, dims: LaunchDims) -> Vec<f64> {
    let mut out = vec![f64::NAN; n + 1];
    let p = Ptr::of(&mut out);
    // SAFETY: out holds n (+1 sentinel) elements.
    emu::launch(dims, || unsafe {
        match kind {
            Fill::Uniform => philox_uniform_f64(p.get(), n as i64, seed, offset, a, b),
            Fill::Normal => philox_normal_f64(p.get(), n as i64, seed, offset, a, b),
        }
    })
    .unwrap();
    assert!(out[n].is_nan(), "wrote past n");
    out.truncate(n);
    out
}

fn bits32(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}
fn bits64(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn fills_are_bit_identical_to_the_cpu_stream() {
    for seed in [0u64, 0xDEAD_BEEF_1234_5678, u64::MAX] {
        for offset in [0u64, 1, 2, 3, 6, 1 << 40, u64::MAX - 5, u64::MAX] {
            for n in [0usize, 1, 2, 5, 23, 1000] {
                for kind in [Fill::Uniform, Fill::Normal] {
                    let (a32, b32, a64, b64) = match kind {
                        Fill::Uniform => (-2.0f32, 3.0f32, -1.0f64, 0.7f64),
                        Fill::Normal => (0.5f32, 1.5f32, -3.0f64, 0.25f64),
                    };
                    let mut want32 = vec![0f32; n];
                    let mut want64 = vec![0f64; n];
                    match kind {
                        Fill::Uniform => {
                            fill_uniform(seed, offset, a32, b32, &mut want32);
                            fill_uniform(seed, offset, a64, b64, &mut want64);
                        }
                        Fill::Normal => {
                            fill_normal(seed, offset, a32, b32, &mut want32);
                            fill_normal(seed, offset, a64, b64, &mut want64);
                        }
                    }
                    let d32 = few(cuda::blocks(n, offset, 4));
                    let got32 = gpu_f32(kind, n, seed, offset, a32, b32, d32);
                    assert_eq!(
                        bits32(&got32),
                        bits32(&want32),
                        "{kind:?} f32 seed {seed:#x} offset {offset} n {n}"
                    );
                    let d64 = few(cuda::blocks(n, offset, 2));
                    let got64 = gpu_f64(kind, n, seed, offset, a64, b64, d64);
                    assert_eq!(
                        bits64(&got64),
                        bits64(&want64),
                        "{kind:?} f64 seed {seed:#x} offset {offset} n {n}"
                    );
                }
            }
        }
    }
}

#[test]
fn runtime_launch_shape_and_split_fills_give_the_same_stream() {
    let (seed, offset, n, k) = (42u64, 10u64, 3001usize, 1234usize);
    let one = gpu_f32(Fill::Normal, n, seed, offset, 0.0, 1.0, cuda::launch_dims(n, offset, 4));
    let lo = gpu_f32(Fill::Normal, k, seed, offset, 0.0, 1.0, few(cuda::blocks(k, offset, 4)));
    let off2 = offset + k as u64;
    let hi = gpu_f32(Fill::Normal, n - k, seed, off2, 0.0, 1.0, few(cuda::blocks(n - k, off2, 4)));
    assert_eq!(bits32(&one), bits32(&[lo, hi].concat()));
    let one = gpu_f64(Fill::Uniform, n, seed, offset, 0.0, 1.0, cuda::launch_dims(n, offset, 8));
    let mut want = vec![0f64; n];
    fill_uniform(seed, offset, 0.0, 1.0, &mut want);
    assert_eq!(bits64(&one), bits64(&want));
}

#[test]
fn raw_block_function_matches_random123_known_answers_and_the_cpu() {
    // Random123 kat_vectors, philox4x32_10, plus a few more counters checked against the CPU.
    let mut ctr = vec![0u32; 4];
    let mut key = vec![0u32; 2];
    let mut want = vec![0x6627e8d5u32, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8];
    ctr.extend([u32::MAX; 4]);
    key.extend([u32::MAX; 2]);
    want.extend([0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]);
    ctr.extend([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344]);
    key.extend([0xa4093822, 0x299f31d0]);
    want.extend([0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]);
    for j in 0..40u32 {
        let c = [j.wrapping_mul(0x9E37_79B9), j, !j, j << 7];
        let k = [j ^ 0x5555_5555, j.wrapping_mul(7)];
        ctr.extend(c);
        key.extend(k);
        want.extend(philox4x32_10(c, k));
    }
    let items = ctr.len() / 4;
    let mut out = vec![0u32; 4 * items];
    let (pc, pk, po) = (CPtr::of(&ctr), CPtr::of(&key), Ptr::of(&mut out));
    // SAFETY: ctr/out hold 4 words per item, key 2.
    emu::launch(few(items), || unsafe { philox_raw_u32(pc.get(), pk.get(), po.get(), items as i64) })
        .unwrap();
    assert_eq!(out, want);
}

/// The Philox block counts cover the offset's phase within a block (moved from the tensor runtime,
/// which now calls `cuda::launch_dims`).
#[test]
fn philox_block_counts_cover_the_offset_phase() {
    assert_eq!(cuda::blocks(0, 3, 4), 0);
    assert_eq!(cuda::blocks(1, 0, 4), 1);
    assert_eq!(cuda::blocks(4, 0, 4), 1);
    assert_eq!(cuda::blocks(4, 1, 4), 2);
    assert_eq!(cuda::blocks(5, 3, 2), 3);
    assert_eq!(cuda::launch_dims(5, 3, 8).grid.0, 1);
}
