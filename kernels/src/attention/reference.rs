//! Naive f64 attention oracle: explicit loops, one query row at a time, independent of both the flash
//! and the composed implementations. Same buffer layouts and fully-masked-row convention
//! (`out = 0`, `lse = -inf`, zero gradients) as [`super::attention_forward`].

use super::AttentionShape;

/// Probabilities of query row `i` of head `h` (`None` when all its keys are masked) and its lse.
fn row_probs(
    sh: &AttentionShape,
    q: &[f64],
    k: &[f64],
    mask: Option<&[u8]>,
    scale: f64,
    h: usize,
    i: usize,
) -> Option<(Vec<f64>, f64)> {
    let (lq, lk, d) = (sh.lq, sh.lk, sh.d);
    let b = h / sh.heads;
    let mut s = vec![f64::NEG_INFINITY; lk];
    for (j, sj) in s.iter_mut().enumerate() {
        if mask.is_some_and(|m| m[b * lk + j] == 0) {
            continue;
        }
        let mut acc = 0.0;
        for p in 0..d {
            acc += q[(h * lq + i) * d + p] * k[(h * lk + j) * d + p];
        }
        *sj = scale * acc;
    }
    let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    if m == f64::NEG_INFINITY {
        return None;
    }
    let z: f64 = s.iter().map(|&x| (x - m).exp()).sum();
    Some((s.iter().map(|&x| (x - m).exp() / z).collect(), m + z.ln()))
}

/// Forward: returns `(out, lse)`.
pub fn forward(
    sh: &AttentionShape,
    q: &[f64],
    k: &[f64],
    v: &[f64],
    mask: Option<&[u8]>,
    scale: f64,
) -> (Vec<f64>, Vec<f64>) {
    let (_, _, _, lo, ll) = sh.lens();
    let (lq, lk, dv) = (sh.lq, sh.lk, sh.dv);
    let mut out = vec![0.0; lo];
    let mut lse = vec![f64::NEG_INFINITY; ll];
    for h in 0..sh.batch * sh.heads {
        for i in 0..lq {
            if let Some((p, l)) = row_probs(sh, q, k, mask, scale, h, i) {
                lse[h * lq + i] = l;
                for (j, &pj) in p.iter().enumerate() {
                    for c in 0..dv {
                        out[(h * lq + i) * dv + c] += pj * v[(h * lk + j) * dv + c];
                    }
                }
            }
        }
    }
    (out, lse)
}

/// Backward, derived by hand: with `P_i = softmax(s_i)`, `dP_ij = dout_i·v_j`,
/// `dS_ij = P_ij (dP_ij - Σ_k P_ik dP_ik)`, `dq_i = scale Σ_j dS_ij k_j`, `dk_j = scale Σ_i dS_ij q_i`,
/// `dv_j = Σ_i P_ij dout_i`. Returns `(dq, dk, dv)`.
pub fn backward(
    sh: &AttentionShape,
    q: &[f64],
    k: &[f64],
    v: &[f64],
    mask: Option<&[u8]>,
    scale: f64,
    dout: &[f64],
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (lq_, lk_, lv_, _, _) = sh.lens();
    let (lq, lk, d, dvn) = (sh.lq, sh.lk, sh.d, sh.dv);
    let (mut dq, mut dk, mut dv) = (vec![0.0; lq_], vec![0.0; lk_], vec![0.0; lv_]);
    for h in 0..sh.batch * sh.heads {
        for i in 0..lq {
            let Some((p, _)) = row_probs(sh, q, k, mask, scale, h, i) else { continue };
            let g = &dout[(h * lq + i) * dvn..(h * lq + i + 1) * dvn];
            let dp: Vec<f64> =
                (0..lk).map(|j| (0..dvn).map(|c| g[c] * v[(h * lk + j) * dvn + c]).sum::<f64>()).collect();
            let pd: f64 = (0..lk).map(|j| p[j] * dp[j]).sum();
            for j in 0..lk {
                let ds = p[j] * (dp[j] - pd);
                for c in 0..dvn {
                    dv[(h * lk + j) * dvn + c] += p[j] * g[c];
                }
                for c in 0..d {
                    dq[(h * lq + i) * d + c] += scale * ds * k[(h * lk + j) * d + c];
                    dk[(h * lk + j) * d + c] += scale * ds * q[(h * lq + i) * d + c];
                }
            }
        }
    }
    (dq, dk, dv)
}
