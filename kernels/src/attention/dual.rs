//! The MDM attention block's pattern (spec §3.1): one set of queries attends to two key/value sets
//! with **two separate softmaxes** and the two results are added,
//!
//! `out = softmax(s·Q·K1ᵀ, mask1)·V1 + softmax(s·Q·K2ᵀ, mask2)·V2`
//!
//! (branch 1 = self-attention over the image tokens, branch 2 = cross-attention over the text
//! tokens). The CPU version here runs the flash kernel once per branch (it is also the oracle of the
//! fused CUDA kernels in `dual.cu`); the GPU fuses both branches into one kernel per pass.
//!
//! ## Buffers (contiguous, row-major; `bh = batch·heads`)
//! * `q [bh, lq, d]`, `k1 [bh, l1, d]`, `v1 [bh, l1, dv]`, `k2 [bh, l2, d]`, `v2 [bh, l2, dv]`;
//! * key-padding masks `mask1 [batch, l1]`, `mask2 [batch, l2]` (bytes, nonzero = keep), optional;
//! * outputs `out [bh, lq, dv]` (the sum), the **branch outputs** `out1`, `out2 [bh, lq, dv]` and
//!   the log-sum-exps `lse1`, `lse2 [bh, lq]`.
//!
//! ## Saved state for the backward: both branch outputs
//! `dO` is shared by the branches, but the softmax backward of branch `b` needs
//! `D_b = rowsum(dO ∘ O_b)` with that branch's *own* output `O_b`. `out` alone does not give it, and
//! `O2 = out − O1` would cancel catastrophically when the branches nearly cancel, so the forward
//! writes `out1` and `out2` (plus `out` for the caller) and the backward takes `out1`, `out2`,
//! `lse1`, `lse2`. Per branch, the backward is exactly the single-attention backward with
//! `(k_b, v_b, mask_b, out_b, lse_b)` and the shared `dO`; `dq` is the sum of both branches' dq.
//!
//! A branch whose keys are all masked for a query row (or whose length is 0) contributes 0 to that
//! row's output and gradients, and its `lse_b` is `-inf` (the single-attention convention).

use super::{AttentionShape, attention_backward, attention_forward};
use crate::Float;

/// Sizes of one dual-attention call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DualAttentionShape {
    pub batch: usize,
    pub heads: usize,
    /// Query length.
    pub lq: usize,
    /// Key/value length of branch 1 (self).
    pub l1: usize,
    /// Key/value length of branch 2 (cross).
    pub l2: usize,
    /// Query/key head dimension.
    pub d: usize,
    /// Value head dimension.
    pub dv: usize,
}

impl DualAttentionShape {
    /// The single-attention shape of branch `b` (1 or 2).
    pub fn branch(&self, b: usize) -> AttentionShape {
        let lk = if b == 1 { self.l1 } else { self.l2 };
        AttentionShape { batch: self.batch, heads: self.heads, lq: self.lq, lk, d: self.d, dv: self.dv }
    }

    /// Element counts of (out, lse): `bh·lq·dv`, `bh·lq`.
    pub fn out_lens(&self) -> (usize, usize) {
        let bh = self.batch * self.heads;
        (bh * self.lq * self.dv, bh * self.lq)
    }
}

/// The inputs of one dual-attention call (see the module docs for the layouts).
#[derive(Clone, Copy, Debug)]
pub struct DualInputs<'a, T> {
    pub q: &'a [T],
    pub k1: &'a [T],
    pub v1: &'a [T],
    pub mask1: Option<&'a [u8]>,
    pub k2: &'a [T],
    pub v2: &'a [T],
    pub mask2: Option<&'a [u8]>,
}

/// The forward's state the backward needs: both branch outputs and log-sum-exps.
#[derive(Clone, Copy, Debug)]
pub struct DualSaved<'a, T> {
    pub out1: &'a [T],
    pub out2: &'a [T],
    pub lse1: &'a [T],
    pub lse2: &'a [T],
}

/// Mutable gradient buffers: `dq [bh, lq, d]`, `dk_b [bh, l_b, d]`, `dv_b [bh, l_b, dv]`.
#[derive(Debug)]
pub struct DualGradsMut<'a, T> {
    pub dq: &'a mut [T],
    pub dk1: &'a mut [T],
    pub dv1: &'a mut [T],
    pub dk2: &'a mut [T],
    pub dv2: &'a mut [T],
}

/// Forward: overwrites `out` (= `out1 + out2`), `out1`, `out2`, `lse1`, `lse2`. Panics (like the
/// single-attention kernel) on buffer lengths that disagree with `s`.
#[allow(clippy::too_many_arguments)]
pub fn dual_attention_forward<T: Float>(
    s: &DualAttentionShape,
    x: &DualInputs<'_, T>,
    scale: T,
    out: &mut [T],
    out1: &mut [T],
    out2: &mut [T],
    lse1: &mut [T],
    lse2: &mut [T],
) {
    let (lo, _) = s.out_lens();
    assert!(
        out.len() == lo,
        "dual attention: buffer `out` has length {}, expected {lo} for {s:?}",
        out.len()
    );
    attention_forward(&s.branch(1), x.q, x.k1, x.v1, x.mask1, scale, out1, lse1);
    attention_forward(&s.branch(2), x.q, x.k2, x.v2, x.mask2, scale, out2, lse2);
    for ((o, &a), &b) in out.iter_mut().zip(out1.iter()).zip(out2.iter()) {
        *o = a + b;
    }
}

/// Backward: overwrites every buffer of `g`. `dout [bh, lq, dv]` is the gradient of `out`.
pub fn dual_attention_backward<T: Float>(
    s: &DualAttentionShape,
    x: &DualInputs<'_, T>,
    scale: T,
    saved: &DualSaved<'_, T>,
    dout: &[T],
    g: DualGradsMut<'_, T>,
) {
    let mut dq2 = vec![T::ZERO; g.dq.len()];
    let (s1, s2) = (s.branch(1), s.branch(2));
    attention_backward(
        &s1, x.q, x.k1, x.v1, x.mask1, scale, saved.out1, saved.lse1, dout, g.dq, g.dk1, g.dv1,
    );
    attention_backward(
        &s2, x.q, x.k2, x.v2, x.mask2, scale, saved.out2, saved.lse2, dout, &mut dq2, g.dk2, g.dv2,
    );
    for (a, b) in g.dq.iter_mut().zip(dq2) {
        *a += b;
    }
}

#[cfg(test)]
mod tests {
    use super::super::reference;
    use super::*;
    use crate::testing::{TestRng, Tolerance, assert_close};

    /// The dual forward/backward in f64 vs two independent f64 reference attentions summed.
    #[test]
    fn matches_two_reference_attentions() {
        let s = DualAttentionShape { batch: 2, heads: 2, lq: 17, l1: 17, l2: 5, d: 8, dv: 6 };
        let mut r = TestRng::new(3);
        let bh = 4;
        let q: Vec<f64> = (0..bh * 17 * 8).map(|_| 3.0 * r.uniform()).collect();
        let (k1, v1) = (r.vec_f64(bh * 17 * 8), r.vec_f64(bh * 17 * 6));
        let (k2, v2) = (r.vec_f64(bh * 5 * 8), r.vec_f64(bh * 5 * 6));
        let m2: Vec<u8> = vec![0, 0, 0, 0, 0, 1, 0, 1, 1, 0]; // batch 0's cross branch fully masked
        let dout = r.vec_f64(bh * 17 * 6);
        let x = DualInputs { q: &q, k1: &k1, v1: &v1, mask1: None, k2: &k2, v2: &v2, mask2: Some(&m2) };
        let (lo, ll) = s.out_lens();
        let (mut o, mut o1, mut o2, mut l1, mut l2) =
            (vec![0.0; lo], vec![0.0; lo], vec![0.0; lo], vec![0.0; ll], vec![0.0; ll]);
        dual_attention_forward(&s, &x, 0.3, &mut o, &mut o1, &mut o2, &mut l1, &mut l2);
        let (ro1, rl1) = reference::forward(&s.branch(1), &q, &k1, &v1, None, 0.3);
        let (ro2, rl2) = reference::forward(&s.branch(2), &q, &k2, &v2, Some(&m2), 0.3);
        let sum: Vec<f64> = ro1.iter().zip(&ro2).map(|(a, b)| a + b).collect();
        let tol = Tolerance::F64.for_reduction(17);
        assert_close("out", &o, &sum, tol);
        assert_close("lse1", &l1, &rl1, tol);
        assert_close("lse2", &l2, &rl2, tol);
        assert!(l2[..2 * 17].iter().all(|&x| x == f64::NEG_INFINITY));
        assert!(o2[..2 * 17 * 6].iter().all(|&x| x == 0.0));
        let (mut dq, mut dk1, mut dv1) = (vec![0.0; q.len()], vec![0.0; k1.len()], vec![0.0; v1.len()]);
        let (mut dk2, mut dv2) = (vec![0.0; k2.len()], vec![0.0; v2.len()]);
        let saved = DualSaved { out1: &o1, out2: &o2, lse1: &l1, lse2: &l2 };
        let g = DualGradsMut { dq: &mut dq, dk1: &mut dk1, dv1: &mut dv1, dk2: &mut dk2, dv2: &mut dv2 };
        dual_attention_backward(&s, &x, 0.3, &saved, &dout, g);
        let (rq1, rk1, rv1) = reference::backward(&s.branch(1), &q, &k1, &v1, None, 0.3, &dout);
        let (rq2, rk2, rv2) = reference::backward(&s.branch(2), &q, &k2, &v2, Some(&m2), 0.3, &dout);
        let rq: Vec<f64> = rq1.iter().zip(&rq2).map(|(a, b)| a + b).collect();
        assert_close("dq", &dq, &rq, tol);
        assert_close("dk1", &dk1, &rk1, tol);
        assert_close("dv1", &dv1, &rv1, tol);
        assert_close("dk2", &dk2, &rk2, tol);
        assert_close("dv2", &dv2, &rv2, tol);
    }
}
