//! Naive f64 oracle for group norm and layer norm, written from the definitions: two-pass mean and
//! biased variance per group, `x̂ = (x − μ)/sqrt(var + eps)`, and the textbook backward
//! `dx = rstd·(g·dy − mean(g·dy) − x̂·mean(g·dy·x̂))`.

// index loops mirror the formulas
#![allow(clippy::needless_range_loop)]

/// Normalises `m` consecutive elements per "group" (`ngroups` of them); returns (x̂, mean, rstd).
fn normalize(x: &[f64], ngroups: usize, m: usize, eps: f64) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let mut xhat = vec![0.0; x.len()];
    let (mut means, mut rstds) = (vec![0.0; ngroups], vec![0.0; ngroups]);
    for gi in 0..ngroups {
        let v = &x[gi * m..(gi + 1) * m];
        let mean = if m > 0 { v.iter().sum::<f64>() / m as f64 } else { 0.0 };
        let var = if m > 0 { v.iter().map(|a| (a - mean) * (a - mean)).sum::<f64>() / m as f64 } else { 0.0 };
        let rstd = 1.0 / (var + eps).sqrt();
        for (o, a) in xhat[gi * m..(gi + 1) * m].iter_mut().zip(v) {
            *o = (a - mean) * rstd;
        }
        means[gi] = mean;
        rstds[gi] = rstd;
    }
    (xhat, means, rstds)
}

/// Group norm forward: (y, mean, rstd). `gamma`/`beta` per channel.
#[allow(clippy::too_many_arguments)]
pub fn group_norm_forward(
    n: usize,
    c: usize,
    spatial: usize,
    groups: usize,
    eps: f64,
    x: &[f64],
    gamma: Option<&[f64]>,
    beta: Option<&[f64]>,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (xhat, mean, rstd) = normalize(x, n * groups, c / groups * spatial, eps);
    let mut y = xhat;
    for (i, v) in y.iter_mut().enumerate() {
        let ch = (i / spatial.max(1)) % c;
        *v = *v * gamma.map_or(1.0, |g| g[ch]) + beta.map_or(0.0, |b| b[ch]);
    }
    (y, mean, rstd)
}

/// Group norm backward from the definition: (dx, dgamma, dbeta). Recomputes the statistics from `x`.
#[allow(clippy::too_many_arguments)]
pub fn group_norm_backward(
    n: usize,
    c: usize,
    spatial: usize,
    groups: usize,
    eps: f64,
    x: &[f64],
    gamma: Option<&[f64]>,
    dy: &[f64],
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let m = c / groups * spatial;
    let (xhat, _, rstd) = normalize(x, n * groups, m, eps);
    let ch_of = |i: usize| (i / spatial.max(1)) % c;
    let g = |i: usize| gamma.map_or(1.0, |g| g[ch_of(i)]);
    let mut dx = vec![0.0; x.len()];
    let (mut dgamma, mut dbeta) = (vec![0.0; c], vec![0.0; c]);
    for gi in 0..n * groups {
        let idx = gi * m..(gi + 1) * m;
        let mf = m as f64;
        let mean_gdy: f64 = idx.clone().map(|i| g(i) * dy[i]).sum::<f64>() / mf;
        let mean_gdy_xhat: f64 = idx.clone().map(|i| g(i) * dy[i] * xhat[i]).sum::<f64>() / mf;
        for i in idx {
            dx[i] = rstd[gi] * (g(i) * dy[i] - mean_gdy - xhat[i] * mean_gdy_xhat);
        }
    }
    for i in 0..x.len() {
        dgamma[ch_of(i)] += dy[i] * xhat[i];
        dbeta[ch_of(i)] += dy[i];
    }
    (dx, dgamma, dbeta)
}

/// Layer norm forward: (y, mean, rstd).
pub fn layer_norm_forward(
    rows: usize,
    cols: usize,
    eps: f64,
    x: &[f64],
    gamma: Option<&[f64]>,
    beta: Option<&[f64]>,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (xhat, mean, rstd) = normalize(x, rows, cols, eps);
    let mut y = xhat;
    for (i, v) in y.iter_mut().enumerate() {
        let j = i % cols.max(1);
        *v = *v * gamma.map_or(1.0, |g| g[j]) + beta.map_or(0.0, |b| b[j]);
    }
    (y, mean, rstd)
}

/// Layer norm backward from the definition: (dx, dgamma, dbeta).
pub fn layer_norm_backward(
    rows: usize,
    cols: usize,
    eps: f64,
    x: &[f64],
    gamma: Option<&[f64]>,
    dy: &[f64],
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (xhat, _, rstd) = normalize(x, rows, cols, eps);
    let g = |j: usize| gamma.map_or(1.0, |g| g[j]);
    let mut dx = vec![0.0; x.len()];
    let (mut dgamma, mut dbeta) = (vec![0.0; cols], vec![0.0; cols]);
    let mf = cols as f64;
    for r in 0..rows {
        let o = r * cols;
        let mean_gdy: f64 = (0..cols).map(|j| g(j) * dy[o + j]).sum::<f64>() / mf;
        let mean_gdy_xhat: f64 = (0..cols).map(|j| g(j) * dy[o + j] * xhat[o + j]).sum::<f64>() / mf;
        for j in 0..cols {
            dx[o + j] = rstd[r] * (g(j) * dy[o + j] - mean_gdy - xhat[o + j] * mean_gdy_xhat);
            dgamma[j] += dy[o + j] * xhat[o + j];
            dbeta[j] += dy[o + j];
        }
    }
    (dx, dgamma, dbeta)
}

/// Fused group norm + modulation + SiLU, as the composed chain: `h = GN(x)`, `z = h·(1 + a) + b`,
/// `y = z/(1 + e^{−z})`. `scale` (a), `shift` (b): `[n, c]` or `None` (0). Returns (y, mean, rstd).
#[allow(clippy::too_many_arguments)]
pub fn group_norm_silu_forward(
    n: usize,
    c: usize,
    spatial: usize,
    groups: usize,
    eps: f64,
    x: &[f64],
    gamma: Option<&[f64]>,
    beta: Option<&[f64]>,
    scale: Option<&[f64]>,
    shift: Option<&[f64]>,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (h, mean, rstd) = group_norm_forward(n, c, spatial, groups, eps, x, gamma, beta);
    let z = modulate(&h, spatial, scale, shift);
    (z.iter().map(|&z| z * sigmoid(z)).collect(), mean, rstd)
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// `z = h·(1 + a[s, ch]) + b[s, ch]` over `[n, c, spatial]`.
fn modulate(h: &[f64], spatial: usize, scale: Option<&[f64]>, shift: Option<&[f64]>) -> Vec<f64> {
    (0..h.len())
        .map(|i| {
            let sc = i / spatial.max(1); // sample·c + channel
            h[i] * (1.0 + scale.map_or(0.0, |a| a[sc])) + shift.map_or(0.0, |b| b[sc])
        })
        .collect()
}

/// Gradients of the fused op: dx, dgamma, dbeta (`[c]`), dscale, dshift (`[n, c]`).
#[derive(Debug)]
pub struct GnSiluGrads {
    pub dx: Vec<f64>,
    pub dgamma: Vec<f64>,
    pub dbeta: Vec<f64>,
    pub dscale: Vec<f64>,
    pub dshift: Vec<f64>,
}

/// Backward of [`group_norm_silu_forward`] through the composed chain: SiLU′(z) = σ(1 + z(1 − σ)),
/// `dshift = Σ_hw dz`, `dscale = Σ_hw dz·h`, `dh = dz·(1 + a)`, then [`group_norm_backward`] of `dh`.
#[allow(clippy::too_many_arguments)]
pub fn group_norm_silu_backward(
    n: usize,
    c: usize,
    spatial: usize,
    groups: usize,
    eps: f64,
    x: &[f64],
    gamma: Option<&[f64]>,
    beta: Option<&[f64]>,
    scale: Option<&[f64]>,
    shift: Option<&[f64]>,
    dy: &[f64],
) -> GnSiluGrads {
    let (h, _, _) = group_norm_forward(n, c, spatial, groups, eps, x, gamma, beta);
    let z = modulate(&h, spatial, scale, shift);
    let (mut dscale, mut dshift) = (vec![0.0; n * c], vec![0.0; n * c]);
    let mut dh = vec![0.0; x.len()];
    for i in 0..x.len() {
        let s = sigmoid(z[i]);
        let dz = dy[i] * s * (1.0 + z[i] * (1.0 - s));
        let sc = i / spatial.max(1);
        dshift[sc] += dz;
        dscale[sc] += dz * h[i];
        dh[i] = dz * (1.0 + scale.map_or(0.0, |a| a[sc]));
    }
    let (dx, dgamma, dbeta) = group_norm_backward(n, c, spatial, groups, eps, x, gamma, &dh);
    GnSiluGrads { dx, dgamma, dbeta, dscale, dshift }
}
