//! Scaled dot-product attention: a blocked online-softmax ("flash") CPU kernel, forward and backward,
//! plus the composed GEMM + softmax implementation kept public as the reference the autograd layer and
//! tests compare against.
//!
//! ## Buffers (all contiguous, row-major)
//! * `q`: `[batch, heads, lq, d]`, `k`: `[batch, heads, lk, d]`, `v`: `[batch, heads, lk, dv]`
//! * `out`: `[batch, heads, lq, dv]`, `lse`: `[batch, heads, lq]`
//! * `key_mask`: optional `[batch, lk]` bytes, nonzero = the key may be attended (a key-padding mask
//!   shared by all heads and queries).
//!
//! `out_i = Σ_j softmax_j(scale · q_i·k_j, masked) v_j` and `lse_i = ln Σ_j exp(scale · q_i·k_j)` over
//! the unmasked keys.
//!
//! ## Fully masked rows
//! A query row whose keys are all masked (or `lk == 0`) gets **`out = 0` and `lse = -inf`**, and
//! contributes nothing to any gradient (its `dq` row is 0). PyTorch's SDPA gives NaN there; we choose
//! the NaN-free convention so that padded batch elements do not poison a training step. The composed
//! and reference implementations follow the same convention.
//!
//! ## Flash algorithm and memory
//! Forward: tasks are (batch·head, block of [`BQ`] = 64 query rows), run with `kernels::parallel`. Each
//! task streams over key tiles of [`BK`] = 64 keys, keeping a running row max `m`, running sum `l` and
//! the unnormalised output row; a tile's scores are rescaled by `exp(m_old - m_new)` when the max grows.
//! Backward recomputes the probabilities tile by tile from the saved `lse` (`P = exp(S - lse)`), with
//! `D_i = dout_i · out_i`, `dS = P ∘ (dP - D)`, `dq += scale·dS·K`, `dk += scale·dSᵀ·Q`, `dv += Pᵀ·dout`.
//! Backward tasks are (batch·head, group of key tiles): dk/dv rows belong to one task; dq is written
//! directly when batch·heads fills the threads, else each extra key group writes a private `lq×d`
//! partial that is summed afterwards (deterministic, no atomics).
//! Scratch never depends on `lq·lk`: O((d + dv)·BK + BQ·BK) per task plus those dq partials.
//!
//! Tile products are hand-written axpy loops (vectorised over the 64-key tile for `q·k`, over `dv`/`d`
//! for the `P·V`-like products), compiled for AVX-512 or AVX2+FMA at run time; f32 uses a polynomial
//! `exp` (≤ 2 ulp). f64 runs the same code (with libm `exp`) for gradient checks.
//!
//! ## Dual attention (`dual.rs`, `dual.cu`)
//! The MDM block's self + cross pattern, `softmax(s·Q·K1ᵀ)·V1 + softmax(s·Q·K2ᵀ, mask2)·V2`, as one
//! op: [`dual_attention_forward`] / [`dual_attention_backward`] (two flash calls on the CPU; one
//! fused kernel per pass on the GPU, see `dual_cuda.rs`).

mod composed;
#[cfg(any(feature = "cuda", feature = "emu"))]
pub mod cuda;
#[cfg(all(test, feature = "emu"))]
mod cuda_tests;
mod dual;
#[cfg(any(feature = "cuda", feature = "emu"))]
pub mod dual_cuda;
#[cfg(all(test, feature = "emu"))]
mod dual_cuda_tests;
mod flash;
pub mod reference;
#[cfg(test)]
mod tests;

use crate::Float;

pub use dual::{
    DualAttentionShape, DualGradsMut, DualInputs, DualSaved, dual_attention_backward, dual_attention_forward,
};
pub use flash::{BK, BQ};

/// Sizes of one attention call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttentionShape {
    pub batch: usize,
    pub heads: usize,
    /// Query length.
    pub lq: usize,
    /// Key/value length.
    pub lk: usize,
    /// Query/key head dimension.
    pub d: usize,
    /// Value head dimension.
    pub dv: usize,
}

impl AttentionShape {
    /// Element counts of (q, k, v, out, lse).
    pub fn lens(&self) -> (usize, usize, usize, usize, usize) {
        let bh = self.batch * self.heads;
        (
            bh * self.lq * self.d,
            bh * self.lk * self.d,
            bh * self.lk * self.dv,
            bh * self.lq * self.dv,
            bh * self.lq,
        )
    }

    fn check(&self, q: usize, k: usize, v: usize, mask: Option<usize>) {
        let (lq_, lk_, lv_, _, _) = self.lens();
        assert!(
            q == lq_,
            "attention: buffer `q` has length {q}, expected batch*heads*lq*d = {lq_} for {self:?}"
        );
        assert!(
            k == lk_,
            "attention: buffer `k` has length {k}, expected batch*heads*lk*d = {lk_} for {self:?}"
        );
        assert!(
            v == lv_,
            "attention: buffer `v` has length {v}, expected batch*heads*lk*dv = {lv_} for {self:?}"
        );
        if let Some(m) = mask {
            let want = self.batch * self.lk;
            assert!(
                m == want,
                "attention: buffer `key_mask` has length {m}, expected batch*lk = {want} for {self:?}"
            );
        }
    }

    fn check_out(&self, name: &str, len: usize, want: usize) {
        assert!(len == want, "attention: buffer `{name}` has length {len}, expected {want} for {self:?}");
    }

    /// Length checks shared by both forward entry points: inputs, mask, `out`, `lse`.
    fn check_forward(&self, q: usize, k: usize, v: usize, mask: Option<usize>, out: usize, lse: usize) {
        self.check(q, k, v, mask);
        let (_, _, _, lo, ll) = self.lens();
        self.check_out("out", out, lo);
        self.check_out("lse", lse, ll);
    }

    /// Length checks shared by both backward entry points: the forward's plus `dout`, `dq`, `dk`, `dv`.
    #[allow(clippy::too_many_arguments)]
    fn check_backward(
        &self,
        (q, k, v, mask): (usize, usize, usize, Option<usize>),
        out: usize,
        lse: usize,
        dout: usize,
        dq: usize,
        dk: usize,
        dv: usize,
    ) {
        self.check_forward(q, k, v, mask, out, lse);
        let (lq_, lk_, lv_, lo, _) = self.lens();
        self.check_out("dout", dout, lo);
        self.check_out("dq", dq, lq_);
        self.check_out("dk", dk, lk_);
        self.check_out("dv", dv, lv_);
    }
}

/// Flash attention forward. Overwrites `out` (`[batch, heads, lq, dv]`) and `lse` (`[batch, heads,
/// lq]`, the log-sum-exp of the scaled, masked scores, saved for the backward pass). `scale`
/// multiplies `q·k` (usually `1/sqrt(d)`). Fully masked rows: `out = 0`, `lse = -inf`.
#[allow(clippy::too_many_arguments)]
pub fn attention_forward<T: Float>(
    s: &AttentionShape,
    q: &[T],
    k: &[T],
    v: &[T],
    key_mask: Option<&[u8]>,
    scale: T,
    out: &mut [T],
    lse: &mut [T],
) {
    s.check_forward(q.len(), k.len(), v.len(), key_mask.map(|m| m.len()), out.len(), lse.len());
    flash::forward(s, q, k, v, key_mask, scale, out, lse);
}

/// Flash attention backward. Overwrites `dq` (`[batch, heads, lq, d]`), `dk` (`[batch, heads, lk,
/// d]`) and `dv` (`[batch, heads, lk, dv]`). Needs the forward's `out` and `lse`; recomputes the
/// probabilities tile by tile. `dout`: `[batch, heads, lq, dv]`.
#[allow(clippy::too_many_arguments)]
pub fn attention_backward<T: Float>(
    s: &AttentionShape,
    q: &[T],
    k: &[T],
    v: &[T],
    key_mask: Option<&[u8]>,
    scale: T,
    out: &[T],
    lse: &[T],
    dout: &[T],
    dq: &mut [T],
    dk: &mut [T],
    dv: &mut [T],
) {
    let inputs = (q.len(), k.len(), v.len(), key_mask.map(|m| m.len()));
    s.check_backward(inputs, out.len(), lse.len(), dout.len(), dq.len(), dk.len(), dv.len());
    flash::backward(s, q, k, v, key_mask, scale, out, lse, dout, dq, dk, dv);
}

/// Composed attention forward (the reference implementation): materialises `S = scale·Q·Kᵀ` (masked
/// to `-inf`) with [`crate::gemm`], `P = softmax(S)` with [`crate::softmax`], `O = P·V`. Same buffers,
/// outputs and fully-masked-row convention as [`attention_forward`]; allocates `batch·heads·lq·lk`.
#[allow(clippy::too_many_arguments)]
pub fn attention_composed_forward<T: Float>(
    s: &AttentionShape,
    q: &[T],
    k: &[T],
    v: &[T],
    key_mask: Option<&[u8]>,
    scale: T,
    out: &mut [T],
    lse: &mut [T],
) {
    s.check_forward(q.len(), k.len(), v.len(), key_mask.map(|m| m.len()), out.len(), lse.len());
    composed::forward(s, q, k, v, key_mask, scale, out, lse);
}

/// Composed attention backward: recomputes `P` as in [`attention_composed_forward`], then
/// `dV = Pᵀ·dout`, `dP = dout·Vᵀ`, `dS = softmax_backward(P, dP)`, `dQ = scale·dS·K`,
/// `dK = scale·dSᵀ·Q` with GEMMs. Overwrites `dq`, `dk`, `dv`. `out` and `lse` are checked for size
/// but not used (kept so the signature matches [`attention_backward`]).
#[allow(clippy::too_many_arguments)]
pub fn attention_composed_backward<T: Float>(
    s: &AttentionShape,
    q: &[T],
    k: &[T],
    v: &[T],
    key_mask: Option<&[u8]>,
    scale: T,
    out: &[T],
    lse: &[T],
    dout: &[T],
    dq: &mut [T],
    dk: &mut [T],
    dv: &mut [T],
) {
    let inputs = (q.len(), k.len(), v.len(), key_mask.map(|m| m.len()));
    s.check_backward(inputs, out.len(), lse.len(), dout.len(), dq.len(), dk.len(), dv.len());
    composed::backward(s, q, k, v, key_mask, scale, dout, dq, dk, dv);
}
