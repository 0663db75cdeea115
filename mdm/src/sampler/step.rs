//! The pieces of one sampling step (spec §5.1–5.3): the timestep grid, thresholding of x̂₀ and the
//! DDPM-ancestral / DDIM(η) update of one resolution.

use super::{SamplerKind, Threshold};
use crate::Result;
use crate::diffusion::x0_from_v;
use crate::error::input_err;
use tensor::Tensor;

/// The sampling grid (ml-mdm `set_timesteps`): round(k·(N+1)/(n+1)) for k = n, …, 0 with numpy's
/// round-half-even; consecutive entries (t, s) are the steps. `steps` = N gives N, N−1, …, 0.
pub fn timestep_grid(n_total: usize, steps: usize) -> Vec<usize> {
    let r = (n_total + 1) as f64 / (steps + 1) as f64;
    (0..=steps).rev().map(|k| (k as f64 * r).round_ties_even() as usize).collect()
}

/// torch.quantile's linear interpolation on sorted values.
fn quantile_sorted(v: &[f64], q: f64) -> f64 {
    let pos = q * (v.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(v.len() - 1);
    v[lo] + (pos - lo as f64) * (v[hi] - v[lo])
}

/// Per-sample dynamic threshold of x [B, …]: s = clamp(quantile_q(|x_b|), 1, max);
/// x_b ← clamp(x_b, −s, s)/s.
pub fn dynamic_threshold(x: &Tensor, q: f64, max: f64) -> Result<Tensor> {
    let sh = x.shape();
    if sh.is_empty() || x.numel() == 0 {
        return Err(input_err("x0", format!("shape {sh:?} has no samples")));
    }
    let b = sh[0];
    let per = x.numel() / b;
    let mut v = x.to_vec_f64();
    for row in v.chunks_mut(per) {
        let mut a: Vec<f64> = row.iter().map(|x| x.abs()).collect();
        a.sort_by(|p, q| p.total_cmp(q));
        let s = quantile_sorted(&a, q).clamp(1.0, max);
        for x in row.iter_mut() {
            *x = x.clamp(-s, s) / s;
        }
    }
    Ok(Tensor::from_vec(v, sh)?.to_dtype(x.dtype())?)
}

/// Applies the threshold function to x̂₀ (§5.3): clip to [−1, 1], Imagen dynamic (q 0.995,
/// s ≤ 100), DeepFloyd dynamic (q 0.95, s ≤ 1.5) or nothing.
pub fn threshold(x0: &Tensor, kind: Threshold) -> Result<Tensor> {
    match kind {
        Threshold::None => Ok(x0.clone()),
        Threshold::Clip => Ok(x0.clamp(-1.0, 1.0)?),
        Threshold::Dynamic => dynamic_threshold(x0, 0.995, 100.0),
        Threshold::DynamicIf => dynamic_threshold(x0, 0.95, 1.5),
    }
}

/// Result of one update of one resolution.
#[derive(Clone, Debug)]
pub struct StepOutput {
    /// The thresholded x̂₀.
    pub x0: Tensor,
    /// z_s.
    pub z: Tensor,
}

/// One update z_t → z_s of one resolution (§5.2) given the v-prediction `v`, g = γ_t, g' = γ_s
/// (g < g' ≤ 1) and the noise n (None = no noise, as at the last step, s = 0):
/// * DDPM: z_s = x̂₀·β·√g'/(1−g) + z_t·√α·(1−g')/(1−g) + √β̃·n;
/// * DDIM(η > 0): z_s = √g'·x̂₀ + √(1−g'−η²β̃)·ε̂ + η√β̃·n with ε̂ from the thresholded x̂₀;
/// * DDIM(0): z_s = √g'·x̂₀ + √(1−g')·ε̂ (noise ignored);
///
/// where α = g/g', β = 1 − α, β̃ = β(1−g')/(1−g) and x̂₀ = threshold(√g·z_t − √(1−g)·v).
pub fn step(
    z_t: &Tensor,
    v: &Tensor,
    g: f64,
    g_prev: f64,
    kind: SamplerKind,
    thr: Threshold,
    noise: Option<&Tensor>,
) -> Result<StepOutput> {
    if !(g > 0.0 && g < 1.0 && g < g_prev && g_prev <= 1.0) {
        return Err(input_err("gamma", format!("need 0 < g < g' ≤ 1, got g = {g}, g' = {g_prev}")));
    }
    let b = z_t.shape().first().copied().unwrap_or(0);
    let x0 = threshold(&x0_from_v(z_t, v, &vec![g; b])?, thr)?;
    let alpha = g / g_prev;
    let beta = 1.0 - alpha;
    let beta_tilde = beta * (1.0 - g_prev) / (1.0 - g);
    let (mean, noise_std) = match kind {
        SamplerKind::Ddpm => {
            let m = x0
                .mul_scalar(beta * g_prev.sqrt() / (1.0 - g))?
                .add(&z_t.mul_scalar(alpha.sqrt() * (1.0 - g_prev) / (1.0 - g))?)?;
            (m, beta_tilde.sqrt())
        }
        SamplerKind::Ddim { eta } => {
            let eps = z_t.sub(&x0.mul_scalar(g.sqrt())?)?.mul_scalar(1.0 / (1.0 - g).sqrt())?;
            let bt = eta * eta * beta_tilde;
            if eta > 0.0 {
                let c = (1.0 - g_prev - bt).max(0.0).sqrt();
                (x0.mul_scalar(g_prev.sqrt())?.add(&eps.mul_scalar(c)?)?, bt.sqrt())
            } else {
                (x0.mul_scalar(g_prev.sqrt())?.add(&eps.mul_scalar((1.0 - g_prev).sqrt())?)?, 0.0)
            }
        }
    };
    let z = match noise {
        Some(n) if noise_std > 0.0 => mean.add(&n.mul_scalar(noise_std)?)?,
        _ => mean,
    };
    Ok(StepOutput { x0, z })
}
