//! Composed attention: materialised scores with `gemm`, probabilities with `softmax`.

use super::AttentionShape;
use crate::Float;
use crate::gemm::{MatMut, MatRef, gemm_batched};
use crate::softmax::{softmax_backward, softmax_forward};

/// `P = softmax(scale·Q·Kᵀ masked)`, `[bh, lq, lk]`; rows whose keys are all masked are 0.
/// Also returns, per row, whether it is fully masked.
fn probabilities<T: Float>(
    sh: &AttentionShape,
    q: &[T],
    k: &[T],
    key_mask: Option<&[u8]>,
    scale: T,
) -> (Vec<T>, Vec<T>, Vec<bool>) {
    let bh = sh.batch * sh.heads;
    let (lq, lk, d) = (sh.lq, sh.lk, sh.d);
    let mut s = vec![T::ZERO; bh * lq * lk];
    gemm_batched(
        bh,
        lq,
        lk,
        d,
        scale,
        MatRef { data: q, offset: 0, rs: d, cs: 1 },
        lq * d,
        MatRef { data: k, offset: 0, rs: 1, cs: d },
        lk * d,
        T::ZERO,
        MatMut { data: &mut s, offset: 0, rs: lk, cs: 1 },
        lq * lk,
    );
    let mut dead = vec![lk == 0; bh];
    if let Some(mk) = key_mask {
        for h in 0..bh {
            let m = &mk[(h / sh.heads) * lk..(h / sh.heads + 1) * lk];
            dead[h] = m.iter().all(|&x| x == 0);
            for row in s[h * lq * lk..(h + 1) * lq * lk].chunks_exact_mut(lk.max(1)) {
                for (x, &keep) in row.iter_mut().zip(m) {
                    if keep == 0 {
                        *x = T::NEG_INFINITY;
                    }
                }
            }
        }
    }
    let mut p = vec![T::ZERO; s.len()];
    softmax_forward(bh * lq, lk, 1, &s, &mut p);
    for h in 0..bh {
        if dead[h] {
            p[h * lq * lk..(h + 1) * lq * lk].iter_mut().for_each(|x| *x = T::ZERO);
        }
    }
    (s, p, dead)
}

#[allow(clippy::too_many_arguments)]
pub(super) fn forward<T: Float>(
    sh: &AttentionShape,
    q: &[T],
    k: &[T],
    v: &[T],
    key_mask: Option<&[u8]>,
    scale: T,
    out: &mut [T],
    lse: &mut [T],
) {
    let bh = sh.batch * sh.heads;
    let (lq, lk, dv) = (sh.lq, sh.lk, sh.dv);
    let (s, p, dead) = probabilities(sh, q, k, key_mask, scale);
    gemm_batched(
        bh,
        lq,
        dv,
        lk,
        T::ONE,
        MatRef { data: &p, offset: 0, rs: lk, cs: 1 },
        lq * lk,
        MatRef { data: v, offset: 0, rs: dv, cs: 1 },
        lk * dv,
        T::ZERO,
        MatMut { data: out, offset: 0, rs: dv, cs: 1 },
        lq * dv,
    );
    for h in 0..bh {
        for i in 0..lq {
            let r = (h * lq + i) * lk;
            lse[h * lq + i] = if dead[h] {
                T::NEG_INFINITY
            } else {
                let row = &s[r..r + lk];
                let m = row.iter().fold(T::NEG_INFINITY, |a, &x| a.max(x));
                m + row.iter().fold(T::ZERO, |a, &x| a + (x - m).exp()).ln()
            };
        }
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) fn backward<T: Float>(
    sh: &AttentionShape,
    q: &[T],
    k: &[T],
    v: &[T],
    key_mask: Option<&[u8]>,
    scale: T,
    dout: &[T],
    dq: &mut [T],
    dk: &mut [T],
    dv: &mut [T],
) {
    let bh = sh.batch * sh.heads;
    let (lq, lk, d, dvn) = (sh.lq, sh.lk, sh.d, sh.dv);
    let (_, p, _) = probabilities(sh, q, k, key_mask, scale);
    // dV = Pᵀ·dout
    gemm_batched(
        bh,
        lk,
        dvn,
        lq,
        T::ONE,
        MatRef { data: &p, offset: 0, rs: 1, cs: lk },
        lq * lk,
        MatRef { data: dout, offset: 0, rs: dvn, cs: 1 },
        lq * dvn,
        T::ZERO,
        MatMut { data: dv, offset: 0, rs: dvn, cs: 1 },
        lk * dvn,
    );
    // dP = dout·Vᵀ
    let mut dp = vec![T::ZERO; p.len()];
    gemm_batched(
        bh,
        lq,
        lk,
        dvn,
        T::ONE,
        MatRef { data: dout, offset: 0, rs: dvn, cs: 1 },
        lq * dvn,
        MatRef { data: v, offset: 0, rs: 1, cs: dvn },
        lk * dvn,
        T::ZERO,
        MatMut { data: &mut dp, offset: 0, rs: lk, cs: 1 },
        lq * lk,
    );
    let mut ds = vec![T::ZERO; p.len()];
    softmax_backward(bh * lq, lk, 1, &p, &dp, &mut ds);
    // dQ = scale·dS·K
    gemm_batched(
        bh,
        lq,
        d,
        lk,
        scale,
        MatRef { data: &ds, offset: 0, rs: lk, cs: 1 },
        lq * lk,
        MatRef { data: k, offset: 0, rs: d, cs: 1 },
        lk * d,
        T::ZERO,
        MatMut { data: dq, offset: 0, rs: d, cs: 1 },
        lq * d,
    );
    // dK = scale·dSᵀ·Q
    gemm_batched(
        bh,
        lk,
        d,
        lq,
        scale,
        MatRef { data: &ds, offset: 0, rs: 1, cs: lk },
        lq * lk,
        MatRef { data: q, offset: 0, rs: d, cs: 1 },
        lq * d,
        T::ZERO,
        MatMut { data: dk, offset: 0, rs: d, cs: 1 },
        lk * d,
    );
}
