//! Blocked online-softmax ("flash") attention on the CPU, forward and backward.
//!
//! Scratch is per task and independent of the sequence lengths except for linear terms: a transposed
//! key (and, backward, value) tile of `d×BK` (`dv×BK`), a `BQ×BK` score tile, per-row running max and
//! sum, `BK×d` + `BK×dv` key-gradient accumulators, and (backward, only when `batch·heads` is too small
//! to occupy the threads) `G-1 ≤ 2·threads` partial `dq` buffers of `lq×d` per head. Nothing of size
//! `lq×lk` is ever allocated.

use super::AttentionShape;
use crate::Float;
use crate::parallel::{num_threads, par_for};
use crate::softmax::simd::{axpy, dot, exp_t, multiversion};

/// Query rows per forward task / tile.
pub const BQ: usize = 64;
/// Keys per tile.
pub const BK: usize = 64;

/// A raw pointer that tasks share to write disjoint ranges of one output buffer.
#[derive(Clone, Copy)]
struct SendPtr<T>(*mut T, usize);
// SAFETY: only used to hand disjoint sub-ranges of one `&mut [T]` to parallel tasks (see `range`).
unsafe impl<T: Send> Send for SendPtr<T> {}
// SAFETY: as above; no two tasks ever obtain overlapping ranges.
unsafe impl<T: Send> Sync for SendPtr<T> {}

impl<T> SendPtr<T> {
    fn new(s: &mut [T]) -> Self {
        Self(s.as_mut_ptr(), s.len())
    }
    /// # Safety
    /// `off + len` must be within the buffer (checked) and no other live slice may overlap the range.
    #[allow(clippy::mut_from_ref)]
    unsafe fn range(&self, off: usize, len: usize) -> &mut [T] {
        assert!(off + len <= self.1, "SendPtr range {off}+{len} out of {}", self.1);
        // SAFETY: in bounds (asserted above); exclusivity is the caller's contract.
        unsafe { std::slice::from_raw_parts_mut(self.0.add(off), len) }
    }
}

/// Copies keys `k0..k0+kn` (rows of `d`) transposed into `kt` (`d×BK`), zero-padding columns ≥ kn.
#[inline(always)]
fn transpose_tile<T: Float>(k: &[T], d: usize, k0: usize, kn: usize, kt: &mut [T]) {
    for (c, kr) in k[k0 * d..(k0 + kn) * d].chunks_exact(d.max(1)).enumerate().take(kn) {
        for (p, &x) in kr.iter().enumerate() {
            kt[p * BK + c] = x;
        }
    }
    if kn < BK {
        for p in 0..d {
            for x in &mut kt[p * BK + kn..(p + 1) * BK] {
                *x = T::ZERO;
            }
        }
    }
}

/// `acc[c] = Σ_p qr[p] · kt[p, c]` for the `BK` columns of the tile (axpy form: vectorises over c).
#[inline(always)]
fn score_row<T: Float>(qr: &[T], kt: &[T], acc: &mut [T; BK]) {
    *acc = [T::ZERO; BK];
    for (&a, kr) in qr.iter().zip(kt.chunks_exact(BK)) {
        for c in 0..BK {
            acc[c] = a.mul_add(kr[c], acc[c]);
        }
    }
}

/// `orow += Σ_c p[c] · rows[c, :]` with `rows` `p.len()×n` row-major: the output row is kept in
/// registers 32 columns at a time (one load per FMA instead of load + store).
#[inline(always)]
fn weighted_rows<T: Float>(p: &[T], rows: &[T], n: usize, orow: &mut [T]) {
    const W: usize = 32;
    let mut j0 = 0;
    while j0 + W <= n {
        let mut acc = [T::ZERO; W];
        acc.copy_from_slice(&orow[j0..j0 + W]);
        for (&pc, r) in p.iter().zip(rows.chunks_exact(n)) {
            let r = &r[j0..j0 + W];
            for l in 0..W {
                acc[l] = pc.mul_add(r[l], acc[l]);
            }
        }
        orow[j0..j0 + W].copy_from_slice(&acc);
        j0 += W;
    }
    if j0 < n {
        for (&pc, r) in p.iter().zip(rows.chunks_exact(n)) {
            axpy(pc, &r[j0..], &mut orow[j0..]);
        }
    }
}

/// Scales the raw scores and applies the tile-padding and key masks (`-inf`); returns the row max.
#[inline(always)]
fn finish_scores<T: Float>(acc: &mut [T; BK], scale: T, kn: usize, mask: Option<&[u8]>) -> T {
    for x in acc.iter_mut() {
        *x *= scale;
    }
    for x in &mut acc[kn..] {
        *x = T::NEG_INFINITY;
    }
    if let Some(mk) = mask {
        for (x, &keep) in acc.iter_mut().zip(mk) {
            if keep == 0 {
                *x = T::NEG_INFINITY;
            }
        }
    }
    crate::softmax::simd::max_of(&acc[..])
}

/// Forward for `rows` query rows of one (batch, head): `q` rows×d, `k` lk×d, `v` lk×dv, `mask` lk,
/// `out` rows×dv (overwritten), `lse` rows (overwritten).
#[inline(always)]
fn fwd_rows_body<T: Float>(
    sh: &AttentionShape,
    q: &[T],
    k: &[T],
    v: &[T],
    mask: Option<&[u8]>,
    scale: T,
    out: &mut [T],
    lse: &mut [T],
) {
    let (d, dv, lk) = (sh.d, sh.dv, sh.lk);
    let rows = lse.len();
    let mut kt = vec![T::ZERO; d * BK];
    let mut m = [T::NEG_INFINITY; BQ];
    let mut l = [T::ZERO; BQ];
    let mut acc = [T::ZERO; BK];
    out.iter_mut().for_each(|x| *x = T::ZERO);
    let mut k0 = 0;
    while k0 < lk {
        let kn = BK.min(lk - k0);
        let mblk = mask.map(|mk| &mk[k0..k0 + kn]);
        if mblk.is_some_and(|mk| mk.iter().all(|&x| x == 0)) {
            k0 += kn;
            continue;
        }
        transpose_tile(k, d, k0, kn, &mut kt);
        for r in 0..rows {
            score_row(&q[r * d..(r + 1) * d], &kt, &mut acc);
            let mb = finish_scores(&mut acc, scale, kn, mblk);
            let m_new = m[r].max(mb);
            if m_new == T::NEG_INFINITY {
                continue; // every key so far is masked
            }
            let alpha = exp_t(m[r] - m_new);
            crate::softmax::simd::exp_sub_inplace(&mut acc[..], m_new);
            let sum = crate::softmax::simd::sum_of(&acc[..]);
            l[r] = l[r].mul_add(alpha, sum);
            m[r] = m_new;
            let orow = &mut out[r * dv..(r + 1) * dv];
            if alpha != T::ONE {
                orow.iter_mut().for_each(|x| *x *= alpha);
            }
            weighted_rows(&acc[..kn], &v[k0 * dv..(k0 + kn) * dv], dv, orow);
        }
        k0 += kn;
    }
    for r in 0..rows {
        let orow = &mut out[r * dv..(r + 1) * dv];
        if l[r] == T::ZERO {
            // Fully masked row (or lk == 0): documented as out = 0, lse = -inf.
            orow.iter_mut().for_each(|x| *x = T::ZERO);
            lse[r] = T::NEG_INFINITY;
        } else {
            let inv = T::ONE / l[r];
            orow.iter_mut().for_each(|x| *x *= inv);
            lse[r] = m[r] + l[r].ln();
        }
    }
}
multiversion!(fn fwd_rows<T>(sh: &AttentionShape, q: &[T], k: &[T], v: &[T], mask: Option<&[u8]>, scale: T, out: &mut [T], lse: &mut [T]) => fwd_rows_body);

/// Flash forward over all (batch·head, query block) tasks.
#[allow(clippy::too_many_arguments)]
pub(crate) fn forward<T: Float>(
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
    let (lq, lk, d, dv) = (sh.lq, sh.lk, sh.d, sh.dv);
    if bh == 0 || lq == 0 {
        return;
    }
    let nqb = lq.div_ceil(BQ);
    let work = 2 * bh * lq * lk * (d + dv) + bh * lq * dv;
    let outp = SendPtr::new(out);
    let lsep = SendPtr::new(lse);
    par_for(bh * nqb, work, |t| {
        let (h, qb) = (t / nqb, t % nqb);
        let b = h / sh.heads;
        let r0 = qb * BQ;
        let rows = BQ.min(lq - r0);
        let qs = &q[(h * lq + r0) * d..(h * lq + r0 + rows) * d];
        let ks = &k[h * lk * d..(h + 1) * lk * d];
        let vs = &v[h * lk * dv..(h + 1) * lk * dv];
        let mk = key_mask.map(|m| &m[b * lk..(b + 1) * lk]);
        // SAFETY: task t alone owns rows r0..r0+rows of head h in `out` and `lse` (tasks partition
        // (head, query block)), and the ranges are bounds-checked by `range`.
        let (o, ls) = unsafe { (outp.range((h * lq + r0) * dv, rows * dv), lsep.range(h * lq + r0, rows)) };
        fwd_rows(sh, qs, ks, vs, mk, scale, o, ls);
    });
}

/// Backward for the keys `k0..k1` of one (batch, head). Overwrites `dk`, `dv_out` (rows k0..k1 of
/// this head: `(k1-k0)×d`, `(k1-k0)×dv`) and `dq` (`lq×d`, this group's contribution).
/// `dd`: the precomputed `D_i = dout_i · out_i` (length lq).
#[inline(always)]
fn bwd_keys_body<T: Float>(
    sh: &AttentionShape,
    q: &[T],
    k: &[T],
    v: &[T],
    mask: Option<&[u8]>,
    scale: T,
    lse: &[T],
    dout: &[T],
    dd: &[T],
    k0: usize,
    k1: usize,
    dq: &mut [T],
    dk: &mut [T],
    dv_out: &mut [T],
) {
    let (d, dvn, lq) = (sh.d, sh.dv, sh.lq);
    let mut kt = vec![T::ZERO; d * BK];
    let mut vt = vec![T::ZERO; dvn * BK];
    let mut p = [T::ZERO; BK];
    let mut dp = [T::ZERO; BK];
    dq.iter_mut().for_each(|x| *x = T::ZERO);
    dk.iter_mut().for_each(|x| *x = T::ZERO);
    dv_out.iter_mut().for_each(|x| *x = T::ZERO);
    let mut kb = k0;
    while kb < k1 {
        let kn = BK.min(k1 - kb);
        let mblk = mask.map(|mk| &mk[kb..kb + kn]);
        if mblk.is_some_and(|mk| mk.iter().all(|&x| x == 0)) {
            kb += kn;
            continue;
        }
        transpose_tile(k, d, kb, kn, &mut kt);
        transpose_tile(v, dvn, kb, kn, &mut vt);
        let dk_t = &mut dk[(kb - k0) * d..(kb - k0 + kn) * d];
        let dv_t = &mut dv_out[(kb - k0) * dvn..(kb - k0 + kn) * dvn];
        for r in 0..lq {
            let l = lse[r];
            if l == T::NEG_INFINITY {
                continue; // fully masked query row: out = 0 is constant, all its gradients are 0
            }
            let qr = &q[r * d..(r + 1) * d];
            let gr = &dout[r * dvn..(r + 1) * dvn];
            score_row(qr, &kt, &mut p);
            finish_scores(&mut p, scale, kn, mblk);
            crate::softmax::simd::exp_sub_inplace(&mut p[..], l);
            score_row(gr, &vt, &mut dp);
            let dr = dd[r];
            let dqr = &mut dq[r * d..(r + 1) * d];
            // dp becomes dS = scale · P ∘ (dP - D).
            for c in 0..BK {
                dp[c] = p[c] * (dp[c] - dr) * scale;
            }
            weighted_rows(&dp[..kn], &k[kb * d..(kb + kn) * d], d, dqr);
            for c in 0..kn {
                if p[c] == T::ZERO {
                    continue;
                }
                axpy(p[c], gr, &mut dv_t[c * dvn..(c + 1) * dvn]);
                axpy(dp[c], qr, &mut dk_t[c * d..(c + 1) * d]);
            }
        }
        kb += kn;
    }
}
multiversion!(fn bwd_keys<T>(sh: &AttentionShape, q: &[T], k: &[T], v: &[T], mask: Option<&[u8]>, scale: T, lse: &[T], dout: &[T], dd: &[T], k0: usize, k1: usize, dq: &mut [T], dk: &mut [T], dv_out: &mut [T]) => bwd_keys_body);

#[inline(always)]
fn rowdots_body<T: Float>(n: usize, a: &[T], b: &[T], out: &mut [T]) {
    for (i, o) in out.iter_mut().enumerate() {
        *o = dot(&a[i * n..(i + 1) * n], &b[i * n..(i + 1) * n]);
    }
}
multiversion!(fn rowdots<T>(n: usize, a: &[T], b: &[T], out: &mut [T]) => rowdots_body);

/// Flash backward. Tasks are (batch·head, key group); each key group owns its rows of `dk`/`dv` and
/// writes its `dq` contribution either straight into `dq` (group 0) or into a partial buffer that is
/// summed afterwards (only when batch·head < 2·threads, so the partials are O(threads·lq·d)).
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward<T: Float>(
    sh: &AttentionShape,
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
    let bh = sh.batch * sh.heads;
    let (lq, lk, d, dvn) = (sh.lq, sh.lk, sh.d, sh.dv);
    if bh == 0 {
        return;
    }
    if lk == 0 || lq == 0 {
        dq.iter_mut().for_each(|x| *x = T::ZERO);
        dk.iter_mut().for_each(|x| *x = T::ZERO);
        dv.iter_mut().for_each(|x| *x = T::ZERO);
        return;
    }
    let work = 4 * bh * lq * lk * (d + dvn);
    // D_i = dout_i · out_i for every query row.
    let mut dd = vec![T::ZERO; bh * lq];
    {
        let ddp = SendPtr::new(&mut dd);
        par_for(bh, bh * lq * dvn * 2, |h| {
            // SAFETY: task h alone owns rows h*lq..(h+1)*lq of `dd`; bounds-checked by `range`.
            let o = unsafe { ddp.range(h * lq, lq) };
            let r = h * lq * dvn..(h + 1) * lq * dvn;
            rowdots(dvn, &dout[r.clone()], &out[r], o);
        });
    }
    let nkb = lk.div_ceil(BK);
    let threads = num_threads();
    let groups = if bh >= 2 * threads || work < crate::parallel::MIN_PARALLEL_WORK {
        1
    } else {
        (2 * threads).div_ceil(bh).min(nkb)
    };
    // Key blocks per group (groups cover whole blocks; the last may be shorter).
    let kbs_per_group = nkb.div_ceil(groups);
    let groups = nkb.div_ceil(kbs_per_group);
    let mut partial: Vec<T> = if groups > 1 { vec![T::ZERO; bh * (groups - 1) * lq * d] } else { Vec::new() };
    let dqp = SendPtr::new(dq);
    let dkp = SendPtr::new(dk);
    let dvp = SendPtr::new(dv);
    let partp = SendPtr::new(&mut partial);
    let ddr = &dd;
    par_for(bh * groups, work, |t| {
        let (h, g) = (t / groups, t % groups);
        let b = h / sh.heads;
        let k0 = g * kbs_per_group * BK;
        let k1 = ((g + 1) * kbs_per_group * BK).min(lk);
        // SAFETY: task (h, g) alone owns key rows k0..k1 of head h in dk/dv, and either head h's rows
        // of dq (g == 0) or partial slot (h, g-1); ranges are bounds-checked by `range`.
        let (dqs, dks, dvs) = unsafe {
            let dqs = if g == 0 {
                dqp.range(h * lq * d, lq * d)
            } else {
                partp.range((h * (groups - 1) + g - 1) * lq * d, lq * d)
            };
            (
                dqs,
                dkp.range((h * lk + k0) * d, (k1 - k0) * d),
                dvp.range((h * lk + k0) * dvn, (k1 - k0) * dvn),
            )
        };
        bwd_keys(
            sh,
            &q[h * lq * d..(h + 1) * lq * d],
            &k[h * lk * d..(h + 1) * lk * d],
            &v[h * lk * dvn..(h + 1) * lk * dvn],
            key_mask.map(|m| &m[b * lk..(b + 1) * lk]),
            scale,
            &lse[h * lq..(h + 1) * lq],
            &dout[h * lq * dvn..(h + 1) * lq * dvn],
            &ddr[h * lq..(h + 1) * lq],
            k0,
            k1,
            dqs,
            dks,
            dvs,
        );
    });
    if groups > 1 {
        let part = &partial;
        let dqp = SendPtr::new(dq);
        par_for(bh, bh * groups * lq * d, |h| {
            // SAFETY: task h alone owns head h's rows of dq; bounds-checked by `range`.
            let dqs = unsafe { dqp.range(h * lq * d, lq * d) };
            for g in 1..groups {
                let off = (h * (groups - 1) + g - 1) * lq * d;
                for (o, &x) in dqs.iter_mut().zip(&part[off..off + lq * d]) {
                    *o += x;
                }
            }
        });
    }
}
