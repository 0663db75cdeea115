//! The CUDA side of dual attention (`dual.cu`): the MDM block's self + cross pattern
//! `out = softmax(s·Q·K1ᵀ, mask1)·V1 + softmax(s·Q·K2ᵀ, mask2)·V2` in fused kernels. Argument struct,
//! launch shapes and the argument table shared by the GPU runtime and the emulator tests.
//!
//! # Semantics
//!
//! Those of [`super::dual_attention_forward`] / [`super::dual_attention_backward`] (two single
//! attentions summed; the CPU flash kernel is the oracle of `dual_cuda_tests.rs`): contiguous
//! `q [bh, lq, d]`, `k1 [bh, l1, d]`, `v1 [bh, l1, dv]`, `k2 [bh, l2, d]`, `v2 [bh, l2, dv]`,
//! optional key masks `mask1 [batch, l1]`, `mask2 [batch, l2]` (bytes, nonzero = keep), outputs
//! `out`, `out1`, `out2 [bh, lq, dv]` and `lse1`, `lse2 [bh, lq]` (f32 for every dtype). A branch
//! fully masked for a row (or of length 0) gives that branch `out_b = 0`, `lse_b = -inf` and no
//! gradient. Limits: `d, dv ≤ 128` ([`super::cuda::DMAX`], checked by [`supported`]).
//!
//! # Kernels
//!
//! Pointers first, [`DualAttnArgs`] by value last; `mask_b` is read only when `has_mask_b != 0`
//! (otherwise any pointer may be passed). 1-d grids and blocks, no dynamic shared memory. `<dt>` is
//! `f32`, `bf16` or `f16` (16-bit kernels take `*const u16`/`*mut u16` bits for every tensor buffer
//! except `lse*`, `dd*`, which stay f32; math in f32).
//!
//! | kernel | arguments | launch | does |
//! |---|---|---|---|
//! | `dual_attn_fwd_<dt>` | `(q, k1, v1: *const T, mask1: *const u8, k2, v2: *const T, mask2: *const u8, out, out1, out2: *mut T, lse1, lse2: *mut f32, args)` | [`launch_dims_fwd`]: grid `bh·⌈lq/64⌉`, 128 threads, 48 KB static shared | `out1`, `out2`, `out = out1 + out2`, `lse1`, `lse2` |
//! | `dual_attn_bwd_pre_<dt>` | `(out1, out2, dout: *const T, dd1, dd2: *mut f32, args)` | [`launch_dims_bwd_pre`]: 256 threads, one warp per row | `dd_b[bh·lq] = rowsum(dout∘out_b)` (f32 scratch) |
//! | `dual_attn_bwd_dq_<dt>` | `(q, k1, v1: *const T, mask1: *const u8, k2, v2: *const T, mask2: *const u8, lse1, lse2, dd1, dd2: *const f32, dout: *const T, dq: *mut T, args)` | [`launch_dims_bwd_dq`]: grid `bh·⌈lq/32⌉`, 64 threads, 48 KB static shared | `dq` (both branches) |
//! | `flash_attn_bwd_dkdv_<dt>` (attention.cu), once per branch | `(q, k_b, v_b, mask_b, lse_b, dd_b, dout, dk_b, dv_b, DualAttnArgs::branch(b))` | [`super::cuda::launch_dims_bwd_dkdv`] of that [`AttnArgs`] | `dk_b`, `dv_b` |
//!
//! Backward order: `dual_attn_bwd_pre`, then `dual_attn_bwd_dq` and the two dK/dV launches (all
//! independent of each other). A `None` launch shape means nothing to do and nothing to write —
//! with `lq == 0` the dK/dV kernels still run (they write zeros), with `l1 == l2 == 0` the dQ
//! kernel still runs (zeros).
//!
//! # Design
//!
//! * **Saved state**: `dout` is shared but `D_b = rowsum(dout∘O_b)` needs each branch's own output,
//!   so the forward writes both branch outputs (`out1`, `out2`) besides their sum; reconstructing
//!   `O2 = out − O1` would lose accuracy when the branches cancel.
//! * **Forward**: one read of the Q tile (global → shared) serves both branches; the branches are
//!   streamed one after the other on one register accumulator with two running (max, sum) pairs
//!   (one per branch, in sequence), each normalised at its own end. Keeping both accumulators live
//!   at once would double the 64 accumulator registers per thread (the f32 single forward already
//!   uses ~145) and spill. `out = out1 + out2` re-reads `out1` as written by the same thread.
//! * **dQ**: one read of the Q and dout tiles; both branches' key tiles stream into one dq
//!   accumulator (the two contributions are summed in registers, written once).
//! * **dK/dV** reuse the single-attention dK/dV kernel per branch: its formulas
//!   (`dV_b = P_bᵀ·dout`, `dK_b = scale·dS_bᵀ·Q` with `dS_b = P_b∘(dP_b − D_b)`) are exactly the dual
//!   attention's, given `lse_b` and `D_b`.
//! * The tile loops are shared with attention.cu through `cuda/attn_simt.cuh`
//!   (`attn_fwd_stream`, `attn_fwd_finish`, `attn_dq_stream`).
//! * 16-bit: SIMT kernels on 16-bit storage with f32 math (no tensor-core dual forward yet);
//!   `out = round(round(out1) + out2)`.
//! * Registers (ptxas -v, CUDA 13.0): see docs/cuda.md.

use super::DualAttentionShape;
use super::cuda::{self, AttnArgs, DMAX};
use crate::cuda_abi::LaunchDims;

/// The by-value argument of the dual kernels (`struct DualAttnArgs` in `dual.cu`; keep in sync).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DualAttnArgs {
    pub batch: i64,
    pub heads: i64,
    pub lq: i64,
    pub l1: i64,
    pub l2: i64,
    pub d: i64,
    pub dv: i64,
    pub has_mask1: i64,
    pub has_mask2: i64,
    pub scale: f64,
}

// SAFETY: `DualAttnArgs` is `repr(C)`, `Copy`, and holds only i64/f64 fields (no padding, no
// pointers); the kernels read it by value with the same layout (`struct DualAttnArgs` in dual.cu).
#[cfg(feature = "cuda")]
unsafe impl cudarc::driver::DeviceRepr for DualAttnArgs {}

/// Whether the CUDA kernels handle this shape (head dimensions ≤ [`DMAX`]).
pub fn supported(s: &DualAttentionShape) -> bool {
    s.d <= DMAX && s.dv <= DMAX
}

impl DualAttnArgs {
    /// Arguments for one call with shape `s`, which masks are given, and `scale` (applied in f32).
    pub fn new(s: &DualAttentionShape, has_mask1: bool, has_mask2: bool, scale: f64) -> Self {
        assert!(supported(s), "dual attention (CUDA): head dims d = {}, dv = {} exceed {DMAX}", s.d, s.dv);
        let i = |x: usize| i64::try_from(x).expect("dual attention: size exceeds i64");
        DualAttnArgs {
            batch: i(s.batch),
            heads: i(s.heads),
            lq: i(s.lq),
            l1: i(s.l1),
            l2: i(s.l2),
            d: i(s.d),
            dv: i(s.dv),
            has_mask1: i64::from(has_mask1),
            has_mask2: i64::from(has_mask2),
            scale,
        }
    }

    /// The single-attention arguments of branch `b` (1 or 2), for `flash_attn_bwd_dkdv_<dt>`.
    pub fn branch(&self, b: usize) -> AttnArgs {
        let (lk, has_mask) = if b == 1 { (self.l1, self.has_mask1) } else { (self.l2, self.has_mask2) };
        AttnArgs {
            batch: self.batch,
            heads: self.heads,
            lq: self.lq,
            lk,
            d: self.d,
            dv: self.dv,
            has_mask,
            scale: self.scale,
        }
    }
}

/// Launch shape of `dual_attn_fwd_<dt>` (`None`: no query rows, nothing to write).
pub fn launch_dims_fwd(a: &DualAttnArgs) -> Option<LaunchDims> {
    cuda::launch_dims_fwd(&a.branch(1))
}

/// Launch shape of `dual_attn_bwd_pre_<dt>` (`None`: no query rows).
pub fn launch_dims_bwd_pre(a: &DualAttnArgs) -> Option<LaunchDims> {
    cuda::launch_dims_bwd_pre(&a.branch(1))
}

/// Launch shape of `dual_attn_bwd_dq_<dt>` (`None`: no query rows, `dq` is empty).
pub fn launch_dims_bwd_dq(a: &DualAttnArgs) -> Option<LaunchDims> {
    cuda::launch_dims_bwd_dq(&a.branch(1))
}

/// Launch shape of branch `b`'s `flash_attn_bwd_dkdv_<dt>` (`None`: that branch has no keys).
pub fn launch_dims_bwd_dkdv(a: &DualAttnArgs, b: usize) -> Option<LaunchDims> {
    cuda::launch_dims_bwd_dkdv(&a.branch(b))
}

/// Every kernel name the dual-attention runtime path launches (for the runtime's kernel list).
pub fn kernel_names() -> Vec<String> {
    let mut v = vec![];
    for dt in ["f32", "bf16", "f16"] {
        for base in ["dual_attn_fwd", "dual_attn_bwd_pre", "dual_attn_bwd_dq", "flash_attn_bwd_dkdv"] {
            v.push(format!("{base}_{dt}"));
        }
    }
    v
}
