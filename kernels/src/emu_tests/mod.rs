//! Self-tests of the host emulator (`cuda/emu`): the tiny kernels of `emu_selftest.cu` pin down the
//! CUDA semantics the family kernels rely on — shuffles (xor/down/up/indexed, widths < 32, doubles),
//! votes, `__syncthreads` ordering across warps, early `return` before barriers, atomics under
//! contention, 2-d/3-d indices, dynamic shared memory (0xFF-filled, private per block), partial last
//! warps, exited lanes in later shuffles, and the launch shapes `emu::launch` refuses; and the
//! shared-memory race check (`emu::launch_checked`): it flags deliberately racy kernels and passes
//! the fixed ones and the real family kernels that use shared memory.

use crate::cuda_abi::LaunchDims;
use crate::emu::{self, CPtr, EmuError, Ptr};

unsafe extern "C" {
    fn emutest_shfl_xor(input: *const i32, out: *mut i32, mask: i32, width: i32);
    fn emutest_shfl_down(input: *const i32, out: *mut i32, delta: i32, width: i32);
    fn emutest_shfl_up(input: *const i32, out: *mut i32, delta: i32, width: i32);
    fn emutest_shfl_idx(input: *const i32, src: *const i32, out: *mut i32, width: i32);
    fn emutest_shfl_double(input: *const f64, out: *mut f64);
    fn emutest_votes(pred: *const i32, ballot: *mut u32, any: *mut i32, all: *mut i32);
    fn emutest_sync_neighbour(out: *mut i32, rounds: i32);
    fn emutest_early_exit(out: *mut i32);
    fn emutest_atomic(ci: *mut i32, cf: *mut f32, cd: *mut f64, cu: *mut u64);
    fn emutest_indices(out: *mut i32);
    fn emutest_dyn_shared(before: *mut u32, after: *mut u32, words: i32);
    fn emutest_partial_warp(input: *const i32, sum: *mut i32, live: *mut u32);
    fn emutest_exited_lanes(out: *mut i32);
    fn emutest_nop(out: *mut i32);
    fn emutest_racy(out: *mut i32, mode: i32);
}

fn dims(grid: (u32, u32, u32), block: (u32, u32, u32), shared: u32) -> LaunchDims {
    LaunchDims { grid, block, shared_mem_bytes: shared }
}

fn block1(n: u32) -> LaunchDims {
    dims((1, 1, 1), (n, 1, 1), 0)
}

/// CUDA's shuffle source lane for `lane` (None: the caller keeps its own value).
fn seg(lane: i32, width: i32) -> i32 {
    lane & !(width - 1)
}

#[test]
fn shfl_xor_down_up_match_cuda_semantics_for_every_width() {
    let n = 64usize;
    let input: Vec<i32> = (0..n as i32).map(|t| t * 10 + 1).collect();
    for width in [2, 4, 8, 16, 32] {
        for m in [1, 2, 5, 16, 31] {
            let mut out = vec![0i32; n];
            let (i, o) = (CPtr::of(&input), Ptr::of(&mut out));
            // SAFETY: in/out hold one i32 per thread of the block.
            emu::launch(block1(n as u32), || unsafe { emutest_shfl_xor(i.get(), o.get(), m, width) })
                .unwrap();
            for t in 0..n as i32 {
                let lane = t % 32;
                let src = lane ^ m;
                // Past the end of the caller's segment the caller keeps its own value; earlier
                // segments are readable (PTX shfl.bfly: pval = j <= maxLane).
                let src = if src > seg(lane, width) + width - 1 { lane } else { src };
                assert_eq!(out[t as usize], input[(t - lane + src) as usize], "xor w{width} m{m} t{t}");
            }
        }
        for delta in [1, 3, 8, 17] {
            let mut out = vec![0i32; n];
            let (i, o) = (CPtr::of(&input), Ptr::of(&mut out));
            // SAFETY: as above.
            emu::launch(block1(n as u32), || unsafe { emutest_shfl_down(i.get(), o.get(), delta, width) })
                .unwrap();
            for t in 0..n as i32 {
                let lane = t % 32;
                let src = if lane + delta >= seg(lane, width) + width { lane } else { lane + delta };
                assert_eq!(out[t as usize], input[(t - lane + src) as usize], "down w{width} d{delta} t{t}");
            }
            let mut out = vec![0i32; n];
            let (i, o) = (CPtr::of(&input), Ptr::of(&mut out));
            // SAFETY: as above.
            emu::launch(block1(n as u32), || unsafe { emutest_shfl_up(i.get(), o.get(), delta, width) })
                .unwrap();
            for t in 0..n as i32 {
                let lane = t % 32;
                let src = if lane - delta < seg(lane, width) { lane } else { lane - delta };
                assert_eq!(out[t as usize], input[(t - lane + src) as usize], "up w{width} d{delta} t{t}");
            }
        }
    }
}

#[test]
fn shfl_idx_wraps_the_source_within_the_segment() {
    let n = 64usize;
    let input: Vec<i32> = (0..n as i32).map(|t| 1000 + t).collect();
    let src: Vec<i32> = (0..n as i32).map(|t| (t * 7 + 3) % 40).collect();
    for width in [1, 4, 8, 16, 32] {
        let mut out = vec![0i32; n];
        let (i, s, o) = (CPtr::of(&input), CPtr::of(&src), Ptr::of(&mut out));
        // SAFETY: buffers hold one i32 per thread.
        emu::launch(block1(n as u32), || unsafe { emutest_shfl_idx(i.get(), s.get(), o.get(), width) })
            .unwrap();
        for t in 0..n as i32 {
            let lane = t % 32;
            let from = seg(lane, width) + (src[t as usize] % width);
            assert_eq!(out[t as usize], input[(t - lane + from) as usize], "idx w{width} t{t}");
        }
    }
    // 64-bit values move whole.
    let d: Vec<f64> =
        (0..32).map(|t| f64::from_bits(0x4000_0000_0000_0001 + t as u64 * 0x1_0000_0001)).collect();
    let mut out = vec![0f64; 32];
    let (i, o) = (CPtr::of(&d), Ptr::of(&mut out));
    // SAFETY: one f64 per thread.
    emu::launch(block1(32), || unsafe { emutest_shfl_double(i.get(), o.get()) }).unwrap();
    for t in 0..32 {
        assert_eq!(out[t].to_bits(), d[t ^ 1].to_bits());
    }
}

#[test]
fn ballot_any_all_cover_the_warp_only() {
    // Three warps: all true, mixed, all false except one lane; plus a partial 4th warp (100 threads).
    let n = 100usize;
    let pred: Vec<i32> = (0..n)
        .map(|t| match t / 32 {
            0 => 1,
            1 => (t % 3 == 0) as i32 * 5,
            2 => (t == 70) as i32,
            _ => 1,
        })
        .collect();
    let (mut b, mut an, mut al) = (vec![0u32; n], vec![0i32; n], vec![0i32; n]);
    let (p, bo, ao, lo) = (CPtr::of(&pred), Ptr::of(&mut b), Ptr::of(&mut an), Ptr::of(&mut al));
    // SAFETY: one element per thread in every buffer.
    emu::launch(block1(n as u32), || unsafe { emutest_votes(p.get(), bo.get(), ao.get(), lo.get()) })
        .unwrap();
    for t in 0..n {
        let w = t / 32;
        let lanes = (n - w * 32).min(32);
        let mut want = 0u32;
        for l in 0..lanes {
            if pred[w * 32 + l] != 0 {
                want |= 1 << l;
            }
        }
        assert_eq!(b[t], want, "ballot t{t}");
        assert_eq!(an[t], (want != 0) as i32, "any t{t}");
        // __all_sync over the partial warp: its 4 live lanes are all true.
        assert_eq!(al[t], (want.count_ones() as usize == lanes) as i32, "all t{t}");
    }
}

#[test]
fn syncthreads_orders_shared_memory_across_warps() {
    for n in [32u32, 96, 256] {
        let rounds = 5;
        let mut out = vec![0i32; n as usize];
        let o = Ptr::of(&mut out);
        // SAFETY: one i32 per thread.
        emu::launch(block1(n), || unsafe { emutest_sync_neighbour(o.get(), rounds) }).unwrap();
        // Reference: v_t ← 3·v_{t+1} + r, all threads at once, each round.
        let mut v: Vec<i32> = (0..n as i32).collect();
        for r in 0..rounds {
            let s: Vec<i32> = v.iter().map(|&x| x * 3 + r).collect();
            v = (0..n as usize).map(|t| s[(t + 1) % n as usize]).collect();
        }
        assert_eq!(out, v, "n = {n}");
    }
}

#[test]
fn early_return_does_not_deadlock_barriers() {
    let n = 200usize;
    let mut out = vec![-1i32; n];
    let o = Ptr::of(&mut out);
    // SAFETY: one i32 per thread.
    emu::launch(block1(n as u32), || unsafe { emutest_early_exit(o.get()) }).unwrap();
    for (t, &got) in out.iter().enumerate() {
        if t.is_multiple_of(3) {
            assert_eq!(got, -1);
        } else {
            let mut j = (t + 1) % n;
            if j.is_multiple_of(3) {
                j = (j + 1) % n;
            }
            assert_eq!(got, j as i32 * 7, "t{t}");
        }
    }
}

#[test]
fn atomic_add_under_contention_loses_nothing() {
    let (mut ci, mut cf, mut cd, mut cu) = ([0i32], [0f32], [0f64], [0u64]);
    let (a, b, c, d) = (Ptr::of(&mut ci), Ptr::of(&mut cf), Ptr::of(&mut cd), Ptr::of(&mut cu));
    // 3 blocks × 256 threads, all on one address each.
    // SAFETY: each pointer is one element, only touched atomically.
    emu::launch(dims((3, 1, 1), (256, 1, 1), 0), || unsafe {
        emutest_atomic(a.get(), b.get(), c.get(), d.get())
    })
    .unwrap();
    assert_eq!(ci[0], 768);
    assert_eq!(cf[0], 384.0);
    assert_eq!(cd[0], 192.0);
    assert_eq!(cu[0], 768);
}

#[test]
fn two_and_three_d_indices() {
    for (grid, block) in [((3, 2, 1), (8, 4, 1)), ((2, 2, 3), (4, 3, 5)), ((1, 1, 2), (2, 2, 2))] {
        let threads = (block.0 * block.1 * block.2) as usize;
        let blocks = (grid.0 * grid.1 * grid.2) as usize;
        let mut out = vec![-1i32; 6 + 6 * threads * blocks];
        let o = Ptr(out[6..].as_mut_ptr());
        // SAFETY: 6 ints per thread after a 6-int header (written at out[-6..0]).
        emu::launch(dims(grid, block, 0), || unsafe { emutest_indices(o.get()) }).unwrap();
        assert_eq!(
            &out[..6],
            &[grid.0, grid.1, grid.2, block.0, block.1, block.2].map(|v| v as i32),
            "dims {grid:?} {block:?}"
        );
        let mut k = 6;
        for bz in 0..grid.2 {
            for by in 0..grid.1 {
                for bx in 0..grid.0 {
                    for tz in 0..block.2 {
                        for ty in 0..block.1 {
                            for tx in 0..block.0 {
                                let want = [tx, ty, tz, bx, by, bz].map(|v| v as i32);
                                assert_eq!(&out[k..k + 6], &want, "grid {grid:?} block {block:?}");
                                k += 6;
                            }
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn dynamic_shared_memory_is_nan_filled_and_private_per_block() {
    let words = 100usize;
    let blocks = 3usize;
    let (mut before, mut after) = (vec![0u32; words * blocks], vec![0u32; words * blocks]);
    let (b, a) = (Ptr::of(&mut before), Ptr::of(&mut after));
    // SAFETY: `words` u32 per block in both buffers; the launch asks for words·4 bytes of shared memory.
    emu::launch(dims((blocks as u32, 1, 1), (64, 1, 1), (words * 4) as u32), || unsafe {
        emutest_dyn_shared(b.get(), a.get(), words as i32)
    })
    .unwrap();
    assert!(before.iter().all(|&w| w == u32::MAX), "every block starts from 0xFF bytes");
    assert!(f32::from_bits(before[0]).is_nan());
    for blk in 0..blocks {
        for i in 0..words {
            assert_eq!(after[blk * words + i], blk as u32 * 1000 + ((i + 1) % words) as u32);
        }
    }
}

#[test]
fn blocks_with_a_partial_last_warp() {
    for n in [33usize, 50, 100, 255] {
        let input: Vec<i32> = (0..n as i32).map(|t| t * t % 97 + 1).collect();
        let warps = n.div_ceil(32);
        let (mut sum, mut live) = ([0i32], vec![0u32; warps]);
        let (i, s, l) = (CPtr::of(&input), Ptr::of(&mut sum), Ptr::of(&mut live));
        // SAFETY: one input per thread, one live mask per warp, one sum.
        emu::launch(block1(n as u32), || unsafe { emutest_partial_warp(i.get(), s.get(), l.get()) }).unwrap();
        assert_eq!(sum[0], input.iter().sum::<i32>(), "n = {n}");
        for (w, &m) in live.iter().enumerate() {
            let lanes = (n - w * 32).min(32) as u32;
            let want = if lanes == 32 { u32::MAX } else { (1u32 << lanes) - 1 };
            assert_eq!(m, want, "n = {n} warp {w}");
        }
    }
}

#[test]
fn exited_lanes_read_as_zero_in_later_shuffles() {
    let mut out = vec![-1i32; 32];
    let o = Ptr::of(&mut out);
    // SAFETY: one i32 per thread.
    emu::launch(block1(32), || unsafe { emutest_exited_lanes(o.get()) }).unwrap();
    for (t, &got) in out.iter().enumerate() {
        let want = if t % 2 == 0 { (t as i32 + 1 + 100) * 1000 } else { -1 };
        assert_eq!(got, want, "lane {t}");
    }
}

#[test]
fn invalid_launches_are_refused() {
    let mut out = [0i32];
    let o = Ptr::of(&mut out);
    // SAFETY: the kernel touches out[0] only.
    let run = |d: LaunchDims| emu::launch(d, || unsafe { emutest_nop(o.get()) });
    let bad_shapes = [
        dims((0, 1, 1), (32, 1, 1), 0),
        dims((1, 0, 1), (32, 1, 1), 0),
        dims((1, 1, 0), (32, 1, 1), 0),
        dims((1, 1, 1), (0, 1, 1), 0),
        dims((1, 1, 1), (1025, 1, 1), 0),
        dims((1, 1, 1), (32, 33, 1), 0),
        dims((1, 1, 1), (1, 1, 65), 0),
        dims((1, 65536, 1), (32, 1, 1), 0),
        dims((1, 1, 65536), (32, 1, 1), 0),
    ];
    for d in bad_shapes {
        assert_eq!(run(d), Err(EmuError::InvalidShape(d)));
    }
    let big = dims((1, 1, 1), (32, 1, 1), 227 * 1024 + 1);
    assert_eq!(run(big), Err(EmuError::TooMuchSharedMemory(big)));
    assert_eq!(out[0], 0, "refused launches run nothing");
    // The limits themselves are accepted.
    run(dims((1, 1, 1), (32, 1, 1), 227 * 1024)).unwrap();
    run(dims((2, 1, 1), (1024, 1, 1), 0)).unwrap();
    run(dims((1, 1, 1), (1, 1, 64), 0)).unwrap();
    assert_eq!(out[0], 3);
}

#[test]
fn race_check_flags_racy_kernels_and_passes_fixed_ones() {
    for (mode, racy, what) in [
        (0, true, "neighbour read without a barrier"),
        (1, true, "all threads write one slot"),
        (2, true, "warp exchange without __syncwarp"),
        (3, false, "neighbour read after __syncthreads"),
        (4, false, "warp exchange after __syncwarp"),
    ] {
        let mut out = vec![0i32; 64];
        let o = Ptr::of(&mut out);
        // SAFETY: one i32 per thread.
        let races = emu::launch_checked(block1(64), || unsafe { emutest_racy(o.get(), mode) }).unwrap();
        assert_eq!(!races.is_empty(), racy, "{what}: {races:?}");
    }
    // The self-test kernels that use shared memory are race-free.
    let mut out = vec![0i32; 256];
    let o = Ptr::of(&mut out);
    // SAFETY: one i32 per thread.
    let races = emu::launch_checked(block1(96), || unsafe { emutest_sync_neighbour(o.get(), 3) }).unwrap();
    assert!(races.is_empty(), "{races:?}");
    // SAFETY: as above.
    let races = emu::launch_checked(block1(200), || unsafe { emutest_early_exit(o.get()) }).unwrap();
    assert!(races.is_empty(), "{races:?}");
    let input: Vec<i32> = (0..100).collect();
    let (mut sum, mut live) = ([0i32], [0u32; 4]);
    let (i, s, l) = (CPtr::of(&input), Ptr::of(&mut sum), Ptr::of(&mut live));
    // SAFETY: one input per thread, a live mask per warp, one sum.
    let races =
        emu::launch_checked(block1(100), || unsafe { emutest_partial_warp(i.get(), s.get(), l.get()) })
            .unwrap();
    assert!(races.is_empty(), "{races:?}");
    // A plain launch records nothing (the check is per launch).
    // SAFETY: as above.
    emu::launch(block1(64), || unsafe { emutest_racy(o.get(), 0) }).unwrap();
}
