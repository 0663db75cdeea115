//! CPU group norm / layer norm kernels (see the module doc of `norm` for the numerics).

use crate::Float;
use crate::parallel;
use crate::reduce::simd::{BLOCK, LANES, hsum, moments, split_mean};

/// `y[j] = ((x[j] − hi) − lo)·a[j] + b[j]`, with `a`/`b` per element (`Some`) or scalar.
#[inline(always)]
fn normalize_row<T: Float>(
    x: &[T],
    y: &mut [T],
    hi: T,
    lo: T,
    a: T,
    gamma: Option<&[T]>,
    beta: Option<&[T]>,
) {
    match (gamma, beta) {
        (Some(g), Some(b)) => {
            for (((yv, &xv), &gv), &bv) in y.iter_mut().zip(x).zip(g).zip(b) {
                *yv = ((xv - hi) - lo) * (a * gv) + bv;
            }
        }
        (Some(g), None) => {
            for ((yv, &xv), &gv) in y.iter_mut().zip(x).zip(g) {
                *yv = ((xv - hi) - lo) * (a * gv);
            }
        }
        (None, Some(b)) => {
            for ((yv, &xv), &bv) in y.iter_mut().zip(x).zip(b) {
                *yv = ((xv - hi) - lo) * a + bv;
            }
        }
        (None, None) => {
            for (yv, &xv) in y.iter_mut().zip(x) {
                *yv = ((xv - hi) - lo) * a;
            }
        }
    }
}

/// `(mean, rstd)` in f64 from a group's moments; an empty group gives (0, 1/sqrt(eps)).
fn stats(m: crate::reduce::simd::Moments, eps: f64) -> (f64, f64) {
    let var = if m.n > 0.0 { m.m2 / m.n } else { 0.0 };
    (m.mean, 1.0 / (var + eps).sqrt())
}

/// Tasks per thread for the per-group / per-row parallel loops.
fn per_task(items: usize) -> usize {
    items.div_ceil(4 * parallel::num_threads()).max(1)
}

/// The group-norm forward skeleton shared by the plain and the fused op: per (sample, group) the
/// statistics (`moments`, saved to `mean`/`rstd`), then `epilogue(sample, channel, rstd, hi, lo, x, y)`
/// writes each channel's `spatial` outputs from its inputs (`μ = hi + lo`). `work` is the parallel
/// cost estimate per element.
#[allow(clippy::too_many_arguments)]
fn group_forward<T: Float>(
    c: usize,
    spatial: usize,
    groups: usize,
    eps: T,
    x: &[T],
    y: &mut [T],
    mean: &mut [T],
    rstd: &mut [T],
    work: usize,
    epilogue: impl Fn(usize, usize, f64, T, T, &[T], &mut [T]) + Sync + Send,
) {
    let cpg = c / groups;
    let gs = cpg * spatial;
    let eps = eps.to_f64();
    if gs == 0 {
        mean.fill(T::ZERO);
        rstd.fill(T::from_f64(1.0 / eps.sqrt()));
        return;
    }
    let mut tasks: Vec<((&mut [T], &mut T), &mut T)> =
        y.chunks_mut(gs).zip(mean.iter_mut()).zip(rstd.iter_mut()).collect();
    let gpt = per_task(tasks.len());
    parallel::par_chunks_mut(&mut tasks, gpt, x.len() * work, |ti, ts| {
        for (k, ((yg, mo), ro)) in ts.iter_mut().enumerate() {
            let gi = ti * gpt + k;
            let (s, g) = (gi / groups, gi % groups);
            let xg = &x[gi * gs..(gi + 1) * gs];
            let (mu, r) = stats(moments(xg), eps);
            **mo = T::from_f64(mu);
            **ro = T::from_f64(r);
            let (hi, lo) = split_mean::<T>(mu);
            for ci in 0..cpg {
                let sl = ci * spatial..(ci + 1) * spatial;
                epilogue(s, g * cpg + ci, r, hi, lo, &xg[sl.clone()], &mut yg[sl]);
            }
        }
    });
}

#[allow(clippy::too_many_arguments)]
pub(super) fn group_norm_forward<T: Float>(
    c: usize,
    spatial: usize,
    groups: usize,
    eps: T,
    x: &[T],
    gamma: Option<&[T]>,
    beta: Option<&[T]>,
    y: &mut [T],
    mean: &mut [T],
    rstd: &mut [T],
) {
    group_forward(c, spatial, groups, eps, x, y, mean, rstd, 4, |_, ch, r, hi, lo, xs, ys| {
        let a = T::from_f64(r * gamma.map_or(1.0, |gm| gm[ch].to_f64()));
        let b = beta.map_or(T::ZERO, |bt| bt[ch]);
        for (yv, &xv) in ys.iter_mut().zip(xs) {
            *yv = ((xv - hi) - lo) * a + b;
        }
    });
}

/// `(Σ g·dy, Σ g·dy·(x − hi), Σ (x − hi))` over equal-length slices (`g` = 1 when `None`); `T` lanes
/// within `BLOCK`s, f64 across blocks.
fn grad_sums<T: Float>(x: &[T], dy: &[T], g: Option<&[T]>, hi: T) -> (f64, f64, f64) {
    let (mut sa, mut sb, mut sd) = (0.0f64, 0.0f64, 0.0f64);
    for start in (0..x.len()).step_by(BLOCK) {
        let end = (start + BLOCK).min(x.len());
        let (xb, db) = (&x[start..end], &dy[start..end]);
        let mut a = [T::ZERO; LANES];
        let mut b = [T::ZERO; LANES];
        let mut d = [T::ZERO; LANES];
        let full = xb.len() / LANES * LANES;
        match g {
            Some(g) => {
                let gb = &g[start..end];
                for i in (0..full).step_by(LANES) {
                    for k in 0..LANES {
                        let dv = xb[i + k] - hi;
                        let gd = gb[i + k] * db[i + k];
                        a[k] += gd;
                        b[k] += gd * dv;
                        d[k] += dv;
                    }
                }
                for i in full..xb.len() {
                    let dv = xb[i] - hi;
                    let gd = gb[i] * db[i];
                    a[0] += gd;
                    b[0] += gd * dv;
                    d[0] += dv;
                }
            }
            None => {
                for i in (0..full).step_by(LANES) {
                    for k in 0..LANES {
                        let dv = xb[i + k] - hi;
                        a[k] += db[i + k];
                        b[k] += db[i + k] * dv;
                        d[k] += dv;
                    }
                }
                for i in full..xb.len() {
                    let dv = xb[i] - hi;
                    a[0] += db[i];
                    b[0] += db[i] * dv;
                    d[0] += dv;
                }
            }
        }
        sa += hsum(a).to_f64();
        sb += hsum(b).to_f64();
        sd += hsum(d).to_f64();
    }
    (sa, sb, sd)
}

#[allow(clippy::too_many_arguments)]
pub(super) fn group_norm_backward<T: Float>(
    n: usize,
    c: usize,
    spatial: usize,
    groups: usize,
    x: &[T],
    gamma: Option<&[T]>,
    mean: &[T],
    rstd: &[T],
    dy: &[T],
    dx: &mut [T],
    dgamma: Option<&mut [T]>,
    dbeta: Option<&mut [T]>,
) {
    let cpg = c / groups;
    let gs = cpg * spatial;
    // per (sample, channel): Σdy and Σdy·(x − μ) with μ the exact group mean
    let mut s_dy = vec![0.0f64; n * c];
    let mut s_dyx = vec![0.0f64; n * c];
    if gs > 0 {
        #[allow(clippy::type_complexity)]
        let mut tasks: Vec<((&mut [T], &mut [f64]), &mut [f64])> =
            dx.chunks_mut(gs).zip(s_dy.chunks_mut(cpg)).zip(s_dyx.chunks_mut(cpg)).collect();
        let gpt = per_task(tasks.len());
        parallel::par_chunks_mut(&mut tasks, gpt, x.len() * 6, |ti, ts| {
            for (k, ((dxg, sdy), sdyx)) in ts.iter_mut().enumerate() {
                let gi = ti * gpt + k;
                let g = gi % groups;
                let (xg, dyg) = (&x[gi * gs..(gi + 1) * gs], &dy[gi * gs..(gi + 1) * gs]);
                let hi = mean[gi];
                let r = rstd[gi].to_f64();
                let m = gs as f64;
                // pass 1: per-channel sums around the saved mean `hi`, and the low part of the exact mean
                let mut sd = 0.0;
                for ci in 0..cpg {
                    let sl = ci * spatial..(ci + 1) * spatial;
                    let (a, b, d) = grad_sums(&xg[sl.clone()], &dyg[sl], None, hi);
                    sdy[ci] = a;
                    sdyx[ci] = b;
                    sd += d;
                }
                let lo = sd / m; // exact mean = hi + lo
                let (mut big_a, mut big_b) = (0.0, 0.0);
                for ci in 0..cpg {
                    sdyx[ci] -= lo * sdy[ci]; // Σ dy·(x − hi − lo)
                    let gm = gamma.map_or(1.0, |gm| gm[g * cpg + ci].to_f64());
                    big_a += gm * sdyx[ci];
                    big_b += gm * sdy[ci];
                }
                let c2 = T::from_f64(-big_a * r * r * r / m);
                let c3 = T::from_f64(-big_b * r / m);
                let lo_t = T::from_f64(lo);
                // pass 2: dx = gamma·rstd·dy + c2·(x − μ) + c3
                for ci in 0..cpg {
                    let k1 = T::from_f64(r * gamma.map_or(1.0, |gm| gm[g * cpg + ci].to_f64()));
                    let sl = ci * spatial..(ci + 1) * spatial;
                    for ((o, &xv), &dv) in dxg[sl.clone()].iter_mut().zip(&xg[sl.clone()]).zip(&dyg[sl]) {
                        *o = k1 * dv + c2 * ((xv - hi) - lo_t) + c3;
                    }
                }
            }
        });
    }
    if let Some(dg) = dgamma {
        for (ch, o) in dg.iter_mut().enumerate() {
            let g = ch / cpg;
            *o = T::from_f64((0..n).map(|i| s_dyx[i * c + ch] * rstd[i * groups + g].to_f64()).sum());
        }
    }
    if let Some(db) = dbeta {
        for (ch, o) in db.iter_mut().enumerate() {
            *o = T::from_f64((0..n).map(|i| s_dy[i * c + ch]).sum());
        }
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) fn layer_norm_forward<T: Float>(
    rows: usize,
    cols: usize,
    eps: T,
    x: &[T],
    gamma: Option<&[T]>,
    beta: Option<&[T]>,
    y: &mut [T],
    mean: &mut [T],
    rstd: &mut [T],
) {
    let eps = eps.to_f64();
    if cols == 0 {
        mean.fill(T::ZERO);
        rstd.fill(T::from_f64(1.0 / eps.sqrt()));
        return;
    }
    let mut tasks: Vec<((&mut [T], &mut T), &mut T)> =
        y.chunks_mut(cols).zip(mean.iter_mut()).zip(rstd.iter_mut()).collect();
    let rpt = per_task(rows);
    parallel::par_chunks_mut(&mut tasks, rpt, x.len() * 4, |ti, ts| {
        for (k, ((yr, mo), ro)) in ts.iter_mut().enumerate() {
            let row = ti * rpt + k;
            let xr = &x[row * cols..(row + 1) * cols];
            let (mu, r) = stats(moments(xr), eps);
            **mo = T::from_f64(mu);
            **ro = T::from_f64(r);
            let (hi, lo) = split_mean::<T>(mu);
            normalize_row(xr, yr, hi, lo, T::from_f64(r), gamma, beta);
        }
    });
}

/// Rows per task of the layer norm backward: fixed by the shape (not the thread count) so the dgamma /
/// dbeta partial sums combine in the same order on every machine.
const LN_BWD_TASKS: usize = 32;

#[allow(clippy::too_many_arguments)]
pub(super) fn layer_norm_backward<T: Float>(
    rows: usize,
    cols: usize,
    x: &[T],
    gamma: Option<&[T]>,
    mean: &[T],
    rstd: &[T],
    dy: &[T],
    dx: &mut [T],
    dgamma: Option<&mut [T]>,
    dbeta: Option<&mut [T]>,
) {
    if cols == 0 || rows == 0 {
        if let Some(d) = dgamma {
            d.fill(T::ZERO);
        }
        if let Some(d) = dbeta {
            d.fill(T::ZERO);
        }
        return;
    }
    let rpt = rows.div_ceil(LN_BWD_TASKS);
    let ntasks = rows.div_ceil(rpt);
    let want_params = dgamma.is_some() || dbeta.is_some();
    // per task: partial dgamma (Σ dy·x̂) then partial dbeta (Σ dy), f64
    let mut partial = vec![0.0f64; if want_params { ntasks * 2 * cols } else { 0 }];
    let pchunk = if want_params { 2 * cols } else { 0 };
    let mut tasks: Vec<(&mut [T], &mut [f64])> = if want_params {
        dx.chunks_mut(rpt * cols).zip(partial.chunks_mut(pchunk)).collect()
    } else {
        dx.chunks_mut(rpt * cols).map(|d| (d, &mut [][..])).collect()
    };
    let m = cols as f64;
    parallel::par_chunks_mut(&mut tasks, 1, x.len() * 8, |ti, ts| {
        let (dxt, part) = &mut ts[0];
        let (pg, pb) = part.split_at_mut(part.len() / 2);
        for (k, dxr) in dxt.chunks_mut(cols).enumerate() {
            let row = ti * rpt + k;
            let (xr, dyr) = (&x[row * cols..(row + 1) * cols], &dy[row * cols..(row + 1) * cols]);
            let hi = mean[row];
            let r = rstd[row].to_f64();
            let (sa, sb, sd) = grad_sums(xr, dyr, gamma, hi);
            let lo = sd / m;
            let big_a = sb - lo * sa; // Σ g·dy·(x − μ)
            let c2 = T::from_f64(-big_a * r * r * r / m);
            let c3 = T::from_f64(-sa * r / m);
            let (lo_t, rt) = (T::from_f64(lo), T::from_f64(r));
            match gamma {
                Some(g) => {
                    for (((o, &xv), &dv), &gv) in dxr.iter_mut().zip(xr).zip(dyr).zip(g) {
                        *o = (rt * gv) * dv + c2 * ((xv - hi) - lo_t) + c3;
                    }
                }
                None => {
                    for ((o, &xv), &dv) in dxr.iter_mut().zip(xr).zip(dyr) {
                        *o = rt * dv + c2 * ((xv - hi) - lo_t) + c3;
                    }
                }
            }
            if !pg.is_empty() {
                for (((pgj, pbj), &xv), &dv) in pg.iter_mut().zip(pb.iter_mut()).zip(xr).zip(dyr) {
                    let xhat = ((xv - hi) - lo_t) * rt;
                    *pgj += (dv * xhat).to_f64();
                    *pbj += dv.to_f64();
                }
            }
        }
    });
    if let Some(dg) = dgamma {
        for (j, o) in dg.iter_mut().enumerate() {
            *o = T::from_f64((0..ntasks).map(|t| partial[t * pchunk + j]).sum());
        }
    }
    if let Some(db) = dbeta {
        for (j, o) in db.iter_mut().enumerate() {
            *o = T::from_f64((0..ntasks).map(|t| partial[t * pchunk + cols + j]).sum());
        }
    }
}

/// The affine and modulation inputs of the fused group norm + SiLU (`None` = 1 for gamma, 0 else).
#[derive(Clone, Copy)]
pub(super) struct GnSiluParams<'a, T> {
    pub gamma: Option<&'a [T]>,
    pub beta: Option<&'a [T]>,
    pub scale: Option<&'a [T]>,
    pub shift: Option<&'a [T]>,
}

impl<T: Float> GnSiluParams<'_, T> {
    /// `(γ, β, 1 + a, b)` of channel `ch` of sample `s` (`c` channels), in f64.
    #[inline]
    fn at(&self, s: usize, c: usize, ch: usize) -> (f64, f64, f64, f64) {
        let g = self.gamma.map_or(1.0, |v| v[ch].to_f64());
        let b = self.beta.map_or(0.0, |v| v[ch].to_f64());
        let sc = 1.0 + self.scale.map_or(0.0, |v| v[s * c + ch].to_f64());
        let sh = self.shift.map_or(0.0, |v| v[s * c + ch].to_f64());
        (g, b, sc, sh)
    }
}

/// `z·σ(z)` and `σ(z)`.
#[inline(always)]
fn silu_sig<T: Float>(z: T) -> (T, T) {
    let s = crate::elementwise::math::sigmoid(z);
    (z * s, s)
}

/// Fused `SiLU(GN(x)·(1 + a) + b)`: statistics as the plain group norm ([`group_forward`]), then
/// one pass `z = (x − μ)·k + c0` with `k = rstd·γ·(1 + a)`, `c0 = β·(1 + a) + b` per (sample, channel).
#[allow(clippy::too_many_arguments)]
pub(super) fn group_norm_silu_forward<T: Float>(
    c: usize,
    spatial: usize,
    groups: usize,
    eps: T,
    x: &[T],
    p: GnSiluParams<'_, T>,
    y: &mut [T],
    mean: &mut [T],
    rstd: &mut [T],
) {
    group_forward(c, spatial, groups, eps, x, y, mean, rstd, 12, |s, ch, r, hi, lo, xs, ys| {
        let (gm, bt, sc, sh) = p.at(s, c, ch);
        let kk = T::from_f64(r * gm * sc);
        let c0 = T::from_f64(bt * sc + sh);
        for (yv, &xv) in ys.iter_mut().zip(xs) {
            *yv = silu_sig(((xv - hi) - lo) * kk + c0).0;
        }
    });
}

/// `Σ (x − hi)` in `T` lanes within `BLOCK`s, f64 across blocks.
fn dev_sum<T: Float>(x: &[T], hi: T) -> f64 {
    let mut s = 0.0f64;
    for xb in x.chunks(BLOCK) {
        let mut a = [T::ZERO; LANES];
        let mut it = xb.chunks_exact(LANES);
        for ch in &mut it {
            for k in 0..LANES {
                a[k] += ch[k] - hi;
            }
        }
        for &v in it.remainder() {
            a[0] += v - hi;
        }
        s += hsum(a).to_f64();
    }
    s
}

/// Fused backward. Per (sample, group): pass 0 re-centres the saved mean (`lo = Σ(x − hi)/M`, as the
/// plain backward), pass 1 per channel writes `dz = dy·σ(z)·(1 + z·(1 − σ(z)))` into `dx` and sums
/// `Σdz`, `Σdz·(x − μ)` (`grad_sums` over `x`, `dz`), pass 2 overwrites `dx` with the group norm
/// backward of `dh = dz·(1 + a)`: `dx = k·dz + c2·(x − μ) + c3`, `k = rstd·γ·(1 + a)`.
#[allow(clippy::too_many_arguments)]
pub(super) fn group_norm_silu_backward<T: Float>(
    n: usize,
    c: usize,
    spatial: usize,
    groups: usize,
    x: &[T],
    p: GnSiluParams<'_, T>,
    mean: &[T],
    rstd: &[T],
    dy: &[T],
    dx: &mut [T],
    grads: super::GnSiluGrads<'_, T>,
) {
    let cpg = c / groups;
    let gs = cpg * spatial;
    // per (sample, channel): Σdz and Σdz·x̂ (x̂ with the exact group mean)
    let mut s_dz = vec![0.0f64; n * c];
    let mut s_dzh = vec![0.0f64; n * c];
    if gs > 0 {
        #[allow(clippy::type_complexity)]
        let mut tasks: Vec<((&mut [T], &mut [f64]), &mut [f64])> =
            dx.chunks_mut(gs).zip(s_dz.chunks_mut(cpg)).zip(s_dzh.chunks_mut(cpg)).collect();
        let gpt = per_task(tasks.len());
        parallel::par_chunks_mut(&mut tasks, gpt, x.len() * 20, |ti, ts| {
            for (k, ((dxg, sdz), sdzh)) in ts.iter_mut().enumerate() {
                let gi = ti * gpt + k;
                let (s, g) = (gi / groups, gi % groups);
                let (xg, dyg) = (&x[gi * gs..(gi + 1) * gs], &dy[gi * gs..(gi + 1) * gs]);
                let hi = mean[gi];
                let r = rstd[gi].to_f64();
                let m = gs as f64;
                let lo = dev_sum(xg, hi) / m; // exact mean = hi + lo
                let lo_t = T::from_f64(lo);
                let (mut big_a, mut big_b) = (0.0, 0.0);
                for ci in 0..cpg {
                    let (gm, bt, sc, sh) = p.at(s, c, g * cpg + ci);
                    let kk = T::from_f64(r * gm * sc);
                    let c0 = T::from_f64(bt * sc + sh);
                    let sl = ci * spatial..(ci + 1) * spatial;
                    let dzs = &mut dxg[sl.clone()];
                    for ((o, &xv), &dv) in dzs.iter_mut().zip(&xg[sl.clone()]).zip(&dyg[sl.clone()]) {
                        let z = ((xv - hi) - lo_t) * kk + c0;
                        let (_, sg) = silu_sig(z);
                        *o = dv * sg * (T::ONE + z * (T::ONE - sg));
                    }
                    let (a, b, _) = grad_sums(&xg[sl], dzs, None, hi);
                    let b = b - lo * a; // Σ dz·(x − μ)
                    sdz[ci] = a;
                    sdzh[ci] = b * r;
                    big_a += gm * sc * a;
                    big_b += gm * sc * b;
                }
                let c2 = T::from_f64(-big_b * r * r * r / m);
                let c3 = T::from_f64(-big_a * r / m);
                for ci in 0..cpg {
                    let (gm, _, sc, _) = p.at(s, c, g * cpg + ci);
                    let kk = T::from_f64(r * gm * sc);
                    let sl = ci * spatial..(ci + 1) * spatial;
                    for (o, &xv) in dxg[sl.clone()].iter_mut().zip(&xg[sl]) {
                        *o = kk * *o + c2 * ((xv - hi) - lo_t) + c3;
                    }
                }
            }
        });
    }
    let super::GnSiluGrads { dgamma, dbeta, dscale, dshift } = grads;
    let sc = |i: usize| 1.0 + p.scale.map_or(0.0, |v| v[i].to_f64());
    if let Some(dg) = dgamma {
        for (ch, o) in dg.iter_mut().enumerate() {
            *o = T::from_f64((0..n).map(|i| sc(i * c + ch) * s_dzh[i * c + ch]).sum());
        }
    }
    if let Some(db) = dbeta {
        for (ch, o) in db.iter_mut().enumerate() {
            *o = T::from_f64((0..n).map(|i| sc(i * c + ch) * s_dz[i * c + ch]).sum());
        }
    }
    if let Some(da) = dscale {
        for (i, o) in da.iter_mut().enumerate() {
            let (gm, bt, _, _) = p.at(i / c, c, i % c);
            *o = T::from_f64(gm * s_dzh[i] + bt * s_dz[i]);
        }
    }
    if let Some(db) = dshift {
        for (o, &v) in db.iter_mut().zip(&s_dz) {
            *o = T::from_f64(v);
        }
    }
}
