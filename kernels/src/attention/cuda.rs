//! The CUDA side of the attention family (`attention.cu`): the argument struct and launch shapes
//! shared by the GPU runtime and the emulator tests.
//!
//! # Semantics
//!
//! Exactly those of [`super::attention_forward`] / [`super::attention_backward`] (the CPU flash kernel
//! is the oracle of `cuda_tests.rs`): contiguous row-major `q [bh, lq, d]`, `k [bh, lk, d]`,
//! `v [bh, lk, dv]`, `out [bh, lq, dv]`, `lse [bh, lq]` with `bh = batch·heads` (head `h` belongs to
//! batch element `h / heads`), an optional key-padding mask `[batch, lk]` of bytes (nonzero = keep),
//! `S = scale·q·kᵀ`, `lse = ln Σ exp(S)` over the unmasked keys, and fully masked rows (or `lk == 0`)
//! giving `out = 0`, `lse = -inf` and zero gradients. Every output element is overwritten.
//!
//! **Limits:** `d ≤ 128` and `dv ≤ 128` ([`DMAX`]; [`supported`] says whether a shape can run — the
//! runtime, `tensor/src/cuda/ops/attention.rs`, reports `Error::NotImplementedOnDeviceFor`
//! otherwise). f32, bf16 and f16; the 16-bit forward runs on tensor cores, the 16-bit backward on
//! the SIMT kernels (f32 math).
//!
//! # Kernels
//!
//! Every kernel takes its pointers first and [`AttnArgs`] (by value) last. `key_mask` is read only
//! when `args.has_mask != 0` (then it must hold `batch·lk` bytes); otherwise any pointer (e.g. `q`)
//! may be passed. No dynamic shared memory; 1-d blocks of a fixed size; 1-d grids.
//!
//! | kernel | arguments | launch | does |
//! |---|---|---|---|
//! | `flash_attn_fwd_f32` | `(q: *const f32, k: *const f32, v: *const f32, key_mask: *const u8, out: *mut f32, lse: *mut f32, args)` | [`launch_dims_fwd`]: grid `bh·⌈lq/64⌉`, 128 threads, 48 KB static shared | `out`, `lse` |
//! | `flash_attn_bwd_pre_f32` | `(out: *const f32, dout: *const f32, dd: *mut f32, args)` | [`launch_dims_bwd_pre`]: 256 threads (8 rows per block, grid-stride) | `dd[bh·lq] = rowsum(dout∘out)` (f32 scratch) |
//! | `flash_attn_bwd_dq_f32` | `(q, k, v: *const f32, key_mask: *const u8, lse, dd, dout: *const f32, dq: *mut f32, args)` | [`launch_dims_bwd_dq`]: grid `bh·⌈lq/32⌉`, 64 threads, 48 KB static shared | `dq` |
//! | `flash_attn_bwd_dkdv_f32` | `(q, k, v: *const f32, key_mask: *const u8, lse, dd, dout: *const f32, dk: *mut f32, dv: *mut f32, args)` | [`launch_dims_bwd_dkdv`]: grid `bh·⌈lk/16⌉`, 64 threads, 48 KB static shared | `dk`, `dv` |
//! | `flash_attn_fwd_bf16` | `(q, k, v: *const u16 (bf16 bits), key_mask: *const u8, out: *mut u16 (bf16), lse: *mut f32, args)` | [`launch_dims_fwd_tc`]: grid `bh·⌈lq/64⌉`, 128 threads, 34 KB static shared | `out` (rounded once from f32), `lse` (f32) |
//! | `flash_attn_fwd_f16` | the same with f16 bits | [`launch_dims_fwd_tc`] | the same |
//! | `flash_attn_bwd_{pre,dq,dkdv}_{bf16,f16}` | as the `_f32` kernels with `*const u16` / `*mut u16` (16-bit bits) for `q, k, v, out, dout, dq, dk, dv`; `lse`, `dd` stay f32 | as the `_f32` kernels | the same, f32 math, gradients rounded once |
//!
//! The 16-bit forward needs sm_80+ (`mma.sync.aligned.m16n8k16.row.col.f32.{bf16,f16}`); its `lse`
//! is f32, as the backward kernels of every dtype expect.
//!
//! Backward = `flash_attn_bwd_pre_<dtype>`, then `flash_attn_bwd_dq_<dtype>` and
//! `flash_attn_bwd_dkdv_<dtype>` (independent of each other; both read `dd`, an f32 scratch of
//! `bh·lq`). `lse` and `out` are the forward's outputs. A launch
//! whose `launch_dims_*` is `None` has nothing to do *and nothing to write* — except: with `lq == 0`
//! the dK/dV kernel still runs (it writes zeros), and with `lk == 0` the dQ kernel still runs (zeros).
//!
//! # Design (FlashAttention-2 scheme; performance not measured yet: no GPU in this session)
//!
//! * Forward: block = (head, 64 query rows), 128 threads = 16 row groups of 8 lanes, 4 query rows
//!   per group; the Q tile (64×d) stays in shared memory, 32-key K then V tiles are streamed through
//!   one shared buffer (Q 32 KB + K/V 16 KB = 48 KB at d = dv = 128). Each thread computes 4×4 scores
//!   (keys `lane%8 + 8j`), the row max is reduced over the 8 lanes by shuffles, the running max `m`
//!   and per-lane partial sums `l` (f32) rescale the 4×16 output accumulators by `exp(m_old - m_new)`,
//!   and `P·V` broadcasts P by shuffles within the row group.
//! * Backward is deterministic (no atomics): a separate dQ kernel (block = 32 query rows, streams
//!   16-key tiles, recomputes P and dS) and a dK/dV kernel (block = 16 keys, both accumulators in
//!   registers, streams 32-query tiles). Each recomputes `S = Q·Kᵀ` and `dP = dout·Vᵀ`: ~1.5× the
//!   FLOPs of the atomic single-kernel variant, in exchange for bitwise-reproducible gradients.
//! * Tensor-core forward (bf16/f16): block = (head, 64 query rows), 4 warps of 16 rows; per 32-key
//!   tile, S = 4 n-tiles of `mma.m16n8k16` over ⌈d/16⌉ k-steps (fragments read from shared tiles of
//!   136-half rows, conflict-free), online softmax on the f32 accumulators (row statistics over the 4
//!   lanes of a quad), P rounded to the input dtype and reused in registers as the A fragments of
//!   `O += P·V` (FlashAttention-2 register reuse). Head dims are zero-padded to multiples of 16.
//! * Registers (ptxas -v, CUDA 13.0; no spills anywhere): `fwd_f32` 147 (sm_80) / 144 (sm_90) with
//!   `__launch_bounds__(128, 1)` (with `(128)` alone ptxas capped sm_90 at 128 and spilled 40 bytes);
//!   `bwd_dq_f32` 159 / 159 (154 / 156 before its key loop moved to `cuda/attn_simt.cuh`);
//!   `bwd_dkdv_f32` 254 / 255 (two 2×16 accumulator sets; 64 threads per block: ~16 K registers,
//!   so registers and the 48 KB of shared memory both allow 4 blocks per SM);
//!   `bwd_pre_f32` 29 / 30; `fwd_{bf16,f16}` 138 / 137; the 16-bit backward kernels within ±7 of
//!   their f32 twins (`bwd_dq_bf16` 161 / 155, `bwd_dkdv_*` 254 / 255).
//! * Known gaps: no tensor-core backward (the 16-bit backward is the SIMT f32 code on 16-bit loads);
//!   SIMT tiles are unpadded with a per-lane rotation of the dot-product walk instead of vector
//!   loads; 64-thread backward blocks; no double-buffered cp.async of the next tile; the tensor-core
//!   forward builds V's B fragments from 16-bit shared loads instead of `ldmatrix.trans`.

use super::AttentionShape;
use crate::cuda_abi::LaunchDims;

/// Largest head dimension (`d` and `dv`) the kernels accept.
pub const DMAX: usize = 128;
/// Query rows per forward block.
pub const FWD_BQ: usize = 64;
/// Threads per forward block.
pub const FWD_THREADS: u32 = 128;
/// Query rows per block of the tensor-core forward.
pub const TC_BQ: usize = 64;
/// Threads per block of the tensor-core forward (4 warps, 16 query rows each).
pub const TC_THREADS: u32 = 128;
/// Query rows per dQ block.
pub const DQ_BQ: usize = 32;
/// Threads per dQ block.
pub const DQ_THREADS: u32 = 64;
/// Keys per dK/dV block.
pub const KV_BK: usize = 16;
/// Threads per dK/dV block.
pub const KV_THREADS: u32 = 64;
/// Threads per block of `flash_attn_bwd_pre_f32` (one warp per row).
pub const PRE_THREADS: u32 = 256;
/// Grid cap of `flash_attn_bwd_pre_f32` (it loops over the remaining rows).
const PRE_MAX_BLOCKS: u32 = 65535;

/// The by-value argument of every attention kernel (`struct AttnArgs` in `attention.cu`; keep in
/// sync). `has_mask`: 0 = no key mask (the `key_mask` pointer is not read).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AttnArgs {
    pub batch: i64,
    pub heads: i64,
    pub lq: i64,
    pub lk: i64,
    pub d: i64,
    pub dv: i64,
    pub has_mask: i64,
    pub scale: f64,
}

// SAFETY: `AttnArgs` is `repr(C)`, `Copy`, and holds only i64/f64 fields (no padding, no pointers);
// the kernels read it by value with the same layout (`struct AttnArgs` in attention.cu).
#[cfg(feature = "cuda")]
unsafe impl cudarc::driver::DeviceRepr for AttnArgs {}

/// Whether the CUDA kernels handle this shape (head dimensions ≤ [`DMAX`]).
pub fn supported(s: &AttentionShape) -> bool {
    s.d <= DMAX && s.dv <= DMAX
}

impl AttnArgs {
    /// Arguments for one call with shape `s`, a key mask or not, and `scale` (applied in f32).
    pub fn new(s: &AttentionShape, has_mask: bool, scale: f64) -> Self {
        assert!(supported(s), "attention (CUDA): head dims d = {}, dv = {} exceed {DMAX}", s.d, s.dv);
        let i = |x: usize| i64::try_from(x).expect("attention: size exceeds i64");
        AttnArgs {
            batch: i(s.batch),
            heads: i(s.heads),
            lq: i(s.lq),
            lk: i(s.lk),
            d: i(s.d),
            dv: i(s.dv),
            has_mask: i64::from(has_mask),
            scale,
        }
    }

    fn bh(&self) -> usize {
        (self.batch * self.heads) as usize
    }
}

fn tiles(a: &AttnArgs, len: i64, tile: usize, threads: u32) -> Option<LaunchDims> {
    let blocks = a.bh() * (len as usize).div_ceil(tile);
    if blocks == 0 {
        return None;
    }
    assert!(blocks <= i32::MAX as usize, "attention: {blocks} blocks exceed the grid");
    Some(LaunchDims { grid: (blocks as u32, 1, 1), block: (threads, 1, 1), shared_mem_bytes: 0 })
}

/// Launch shape of `flash_attn_fwd_f32` (`None`: no query rows, nothing to write).
pub fn launch_dims_fwd(a: &AttnArgs) -> Option<LaunchDims> {
    tiles(a, a.lq, FWD_BQ, FWD_THREADS)
}

/// Launch shape of the tensor-core forward `flash_attn_fwd_{bf16,f16}` (`None`: no query rows).
pub fn launch_dims_fwd_tc(a: &AttnArgs) -> Option<LaunchDims> {
    tiles(a, a.lq, TC_BQ, TC_THREADS)
}

/// Launch shape of `flash_attn_bwd_pre_f32` (`None`: no query rows).
pub fn launch_dims_bwd_pre(a: &AttnArgs) -> Option<LaunchDims> {
    let rows = a.bh() * a.lq as usize;
    if rows == 0 {
        return None;
    }
    let warps = (PRE_THREADS / 32) as usize;
    let mut dims = LaunchDims::linear(rows * 32, PRE_THREADS, PRE_MAX_BLOCKS);
    dims.grid.0 = dims.grid.0.min(rows.div_ceil(warps) as u32);
    Some(dims)
}

/// Launch shape of `flash_attn_bwd_dq_f32` (`None`: no query rows, `dq` is empty).
pub fn launch_dims_bwd_dq(a: &AttnArgs) -> Option<LaunchDims> {
    tiles(a, a.lq, DQ_BQ, DQ_THREADS)
}

/// Launch shape of `flash_attn_bwd_dkdv_f32` (`None`: no keys, `dk`/`dv` are empty).
pub fn launch_dims_bwd_dkdv(a: &AttnArgs) -> Option<LaunchDims> {
    tiles(a, a.lk, KV_BK, KV_THREADS)
}
