//! The multi-resolution diffusion process (spec §2): noise schedules, the average-pooled pyramid,
//! the forward (noising) process with one shared t per sample, and the ε-space loss of
//! v-predictions with ml-mdm's resolution weights, double loss, mixed ratio and VDM weights.
//!
//! Random numbers come from the counter-based Philox stream (`Tensor::rand_uniform`/`randn`) at a
//! caller-given (seed, offset): [`Diffusion::noise`] draws the B times from
//! `[offset, offset + B)` and then the ε of each resolution, high → low, from consecutive ranges
//! (see [`Diffusion::stream_len`]).
//!
//! Deviations from ml-mdm:
//! * `cond_drop_prob` (default 0.1) exists so classifier-free guidance has a trained null branch;
//!   ml-mdm never drops the condition (spec §5.4, §12.5). It is only carried here; the trainer
//!   applies it.
//! * `schedule_shifted = false` means unshifted schedules; ml-mdm's alternative signal-rescaling
//!   mechanism (§2.4 item 2) is not implemented.
//! * `multi_res_weights` and `mixed_ratio` are real config fields (ml-mdm's YAMLs mis-place them so
//!   they are ignored there, §12.1); the defaults (empty) give the effective released behaviour.
//! * ε̂ is computed as √(1−γ)·z + √γ·v̂ instead of via x̂₀ and a division (same value, §2.6).
//! * `use_vdm_loss_weights` defaults to false (the released configs' value, not the dataclass's).
//! * Only the ε loss target with v-prediction (the released configs' choice) is supported.

mod param;
mod schedule;

pub use param::{
    eps_from_v, eps_from_v_var, eps_from_x0, per_sample, v_from_eps_x0, x0_from_eps, x0_from_v, z_from_x0_eps,
};
pub use schedule::{Schedule, ScheduleKind};

use crate::error::{ConfigError, input_err};
use crate::{Error, Result};
use autograd::Var;
use serde::{Deserialize, Serialize};
use tensor::{DType, Tensor};

/// Diffusion settings (TOML table `[diffusion]` of the training config).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiffusionConfig {
    /// Base schedule family (§2.3).
    pub schedule: ScheduleKind,
    /// Number of diffusion steps N (γ has N + 1 entries).
    pub num_steps: usize,
    /// Shift each resolution's SNR by its size relative to the lowest resolution (§2.4).
    pub schedule_shifted: bool,
    /// Exponent p of the shift: logSNR_s = logSNR − p·ln s.
    pub shift_power: f64,
    /// Every resolution contributes to the loss; if false only the top one (§2.7).
    pub use_double_loss: bool,
    /// Loss weight per resolution, high → low; empty = all 1.
    pub multi_res_weights: Vec<f64>,
    /// Mixed-resolution batch ratios, high → low; empty = full batch at every resolution.
    pub mixed_ratio: Vec<f64>,
    /// Per-sample VDM weights SNR(t−1)/SNR(t) − 1 with a weighted batch mean.
    pub use_vdm_loss_weights: bool,
    /// Probability of replacing the condition by the null condition in training (extension).
    pub cond_drop_prob: f64,
}

impl Default for DiffusionConfig {
    fn default() -> Self {
        Self {
            schedule: ScheduleKind::Deepfloyd,
            num_steps: 1000,
            schedule_shifted: true,
            shift_power: 1.0,
            use_double_loss: true,
            multi_res_weights: vec![],
            mixed_ratio: vec![],
            use_vdm_loss_weights: false,
            cond_drop_prob: 0.1,
        }
    }
}

fn invalid(field: &str, msg: impl Into<String>) -> Error {
    Error::Config(ConfigError::invalid(format!("diffusion.{field}"), msg))
}

fn check_list(field: &str, v: &[f64], n: usize, positive: bool) -> Result<()> {
    if !v.is_empty() && v.len() != n {
        return Err(invalid(field, format!("{} entries, the model has {n} resolutions", v.len())));
    }
    for (i, &x) in v.iter().enumerate() {
        if !x.is_finite() || x < 0.0 || (positive && x == 0.0) {
            let need = if positive { "finite and > 0" } else { "finite and >= 0" };
            return Err(invalid(&format!("{field}[{i}]"), format!("{x} is not {need}")));
        }
    }
    Ok(())
}

impl DiffusionConfig {
    /// Checks the values for a model with `num_resolutions` resolutions; errors name the field
    /// (`diffusion.<field>`).
    pub fn validate(&self, num_resolutions: usize) -> Result<()> {
        if num_resolutions == 0 {
            return Err(invalid("resolutions", "at least one resolution is needed"));
        }
        if self.num_steps < 2 {
            return Err(invalid("num_steps", format!("{} < 2", self.num_steps)));
        }
        if !self.shift_power.is_finite() || self.shift_power < 0.0 {
            return Err(invalid("shift_power", format!("{} is not finite and >= 0", self.shift_power)));
        }
        check_list("multi_res_weights", &self.multi_res_weights, num_resolutions, false)?;
        if !self.multi_res_weights.is_empty() && !self.use_double_loss {
            return Err(invalid("multi_res_weights", "needs use_double_loss = true (as in ml-mdm)"));
        }
        check_list("mixed_ratio", &self.mixed_ratio, num_resolutions, true)?;
        if !(0.0..=1.0).contains(&self.cond_drop_prob) {
            return Err(invalid("cond_drop_prob", format!("{} is not in [0, 1]", self.cond_drop_prob)));
        }
        Ok(())
    }
}

/// A noised multi-resolution batch (§2.5).
#[derive(Clone, Debug)]
pub struct NoisedBatch {
    /// Noisy inputs z_r, high → low.
    pub z: Vec<Tensor>,
    /// The noise ε_r, high → low.
    pub eps: Vec<Tensor>,
    /// Per-sample time index t ∈ [0, N−1] (the noise level is γ[t + 1]).
    pub t: Vec<usize>,
    /// The model time input: t as f32 [B] (§2.8).
    pub times: Tensor,
    /// γ_r[t_b + 1] of each resolution's (shifted) schedule, `[r][b]`.
    pub gammas: Vec<Vec<f64>>,
}

/// The diffusion process of one model: the config and one (shifted) schedule per resolution.
#[derive(Clone, Debug)]
pub struct Diffusion {
    config: DiffusionConfig,
    scales: Vec<usize>,
    base: Schedule,
    schedules: Vec<Schedule>,
}

impl Diffusion {
    /// `scales`: per resolution (high → low) the downsampling factor relative to the top, e.g.
    /// `[1, 2]` for 32²/16². Resolution r is shifted by s = scales[last]/scales[r] (the lowest
    /// resolution is unshifted).
    pub fn new(cfg: DiffusionConfig, scales: &[usize]) -> Result<Self> {
        cfg.validate(scales.len())?;
        if scales[0] != 1 {
            return Err(invalid("scales[0]", format!("{} (the top resolution has scale 1)", scales[0])));
        }
        for i in 1..scales.len() {
            if scales[i] <= scales[i - 1] || !scales[i].is_multiple_of(scales[i - 1]) {
                return Err(invalid(
                    &format!("scales[{i}]"),
                    format!("{} is not a multiple > scales[{}] = {}", scales[i], i - 1, scales[i - 1]),
                ));
            }
        }
        let base = Schedule::new(cfg.schedule, cfg.num_steps);
        let low = *scales.last().unwrap_or(&1) as f64;
        let schedules = scales
            .iter()
            .map(|&s| {
                if cfg.schedule_shifted {
                    base.shifted(low / s as f64, cfg.shift_power)
                } else {
                    base.clone()
                }
            })
            .collect();
        Ok(Self { config: cfg, scales: scales.to_vec(), base, schedules })
    }

    /// The configuration.
    pub fn config(&self) -> &DiffusionConfig {
        &self.config
    }

    /// Number of resolutions.
    pub fn num_resolutions(&self) -> usize {
        self.scales.len()
    }

    /// N.
    pub fn num_steps(&self) -> usize {
        self.config.num_steps
    }

    /// Downsampling factors relative to the top, high → low.
    pub fn scales(&self) -> &[usize] {
        &self.scales
    }

    /// The unshifted base schedule.
    pub fn base_schedule(&self) -> &Schedule {
        &self.base
    }

    /// The (shifted) schedule of resolution `r` (0 = top).
    pub fn schedule(&self, r: usize) -> &Schedule {
        &self.schedules[r]
    }

    /// Average-pooled pyramid of clean images x [B, C, H, W], high → low (x itself first).
    pub fn pyramid(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        let sh = x.shape();
        if sh.len() != 4 {
            return Err(input_err("x", format!("shape {sh:?} is not [B, C, H, W]")));
        }
        self.scales
            .iter()
            .map(|&s| {
                if s == 1 {
                    return Ok(x.clone());
                }
                if !sh[2].is_multiple_of(s) || !sh[3].is_multiple_of(s) {
                    return Err(input_err("x", format!("{}×{} is not divisible by scale {s}", sh[2], sh[3])));
                }
                Ok(x.avg_pool2d([s, s], [s, s], [0, 0], true)?)
            })
            .collect()
    }

    fn check_x0(&self, x0: &[Tensor]) -> Result<usize> {
        if x0.len() != self.num_resolutions() {
            return Err(input_err(
                "x0",
                format!("{} images, the diffusion has {} resolutions", x0.len(), self.num_resolutions()),
            ));
        }
        let b = x0[0].shape().first().copied().unwrap_or(0);
        for (r, x) in x0.iter().enumerate() {
            if x.rank() != 4 || x.shape()[0] != b || b == 0 {
                return Err(input_err(
                    format!("x0[{r}]"),
                    format!("shape {:?}, expected [{b}, C, H, W]", x.shape()),
                ));
            }
        }
        Ok(b)
    }

    /// Philox stream elements [`Diffusion::noise`] uses for `x0` (B times + every ε).
    pub fn stream_len(&self, x0: &[Tensor]) -> u64 {
        let b = x0.first().and_then(|x| x.shape().first().copied()).unwrap_or(0);
        (b + x0.iter().map(|x| x.numel()).sum::<usize>()) as u64
    }

    /// Forward process (§2.5): one shared t ~ U{0, …, N−1} per sample drawn at (seed, offset),
    /// then [`Diffusion::noise_at`] at (seed, offset + B).
    pub fn noise(&self, x0: &[Tensor], seed: u64, offset: u64) -> Result<NoisedBatch> {
        let b = self.check_x0(x0)?;
        let n = self.num_steps();
        let u = Tensor::rand_uniform(&[b], 0.0, n as f64, seed, offset, DType::F64)?.to_vec_f64();
        let t: Vec<usize> = u.iter().map(|&v| (v.floor().max(0.0) as usize).min(n - 1)).collect();
        self.noise_at(x0, &t, seed, offset + b as u64)
    }

    /// Forward process with given per-sample t ∈ [0, N−1]; ε_r is drawn (in x0_r's dtype) at
    /// (seed, offset + Σ_{q<r} numel(x0_q)).
    pub fn noise_at(&self, x0: &[Tensor], t: &[usize], seed: u64, offset: u64) -> Result<NoisedBatch> {
        let b = self.check_x0(x0)?;
        if t.len() != b {
            return Err(input_err("t", format!("{} values for a batch of {b}", t.len())));
        }
        if let Some(&bad) = t.iter().find(|&&v| v >= self.num_steps()) {
            return Err(input_err("t", format!("{bad} is not in [0, {}]", self.num_steps() - 1)));
        }
        let mut off = offset;
        let (mut z, mut eps, mut gammas) = (vec![], vec![], vec![]);
        for (r, x) in x0.iter().enumerate() {
            let e = Tensor::randn(x.shape(), 0.0, 1.0, seed, off, x.dtype())?;
            off += x.numel() as u64;
            let g: Vec<f64> = t.iter().map(|&ti| self.schedules[r].gamma(ti + 1)).collect();
            z.push(z_from_x0_eps(x, &e, &g)?);
            eps.push(e);
            gammas.push(g);
        }
        let times = Tensor::from_vec(t.iter().map(|&v| v as f32).collect::<Vec<_>>(), &[b])?;
        Ok(NoisedBatch { z, eps, t: t.to_vec(), times, gammas })
    }

    /// Which of `batch` samples get the null condition in training (probability
    /// `cond_drop_prob` each), from the Philox stream at (seed, offset) (`batch` elements).
    pub fn cond_drop_mask(&self, batch: usize, seed: u64, offset: u64) -> Result<Vec<bool>> {
        let p = self.config.cond_drop_prob;
        if p <= 0.0 || batch == 0 {
            return Ok(vec![false; batch]);
        }
        let u = Tensor::rand_uniform(&[batch], 0.0, 1.0, seed, offset, DType::F64)?;
        Ok(u.to_vec_f64().into_iter().map(|x| x < p).collect())
    }

    /// Per-resolution, per-sample loss factors: resolution weight × mixed-ratio mask / m_r ×
    /// batch weight (1/B, or the normalised VDM weight). `[r][b]`.
    pub fn loss_factors(&self, t: &[usize]) -> Vec<Vec<f64>> {
        let b = t.len();
        let nr = self.num_resolutions();
        let bw: Vec<f64> = if self.config.use_vdm_loss_weights {
            let w: Vec<f64> = t.iter().map(|&ti| self.base.vdm_weight(ti)).collect();
            let s: f64 = w.iter().sum();
            w.iter().map(|x| x / s).collect()
        } else {
            vec![1.0 / b as f64; b]
        };
        let m = self.mixed_fractions();
        (0..nr)
            .map(|r| {
                let w = if !self.config.use_double_loss {
                    if r == 0 { 1.0 } else { 0.0 }
                } else {
                    self.config.multi_res_weights.get(r).copied().unwrap_or(1.0)
                };
                let keep = (m[r] * b as f64).floor() as usize;
                (0..b).map(|i| if i < keep { w * bw[i] / m[r] } else { 0.0 }).collect()
            })
            .collect()
    }

    /// Cumulative mixed-ratio fractions m_r (all 1 when `mixed_ratio` is empty).
    pub fn mixed_fractions(&self) -> Vec<f64> {
        let nr = self.num_resolutions();
        let mr = &self.config.mixed_ratio;
        if mr.is_empty() {
            return vec![1.0; nr];
        }
        let total: f64 = mr.iter().sum();
        let mut acc = 0.0;
        mr.iter()
            .enumerate()
            .map(|(i, x)| {
                acc += x;
                if i + 1 == mr.len() { 1.0 } else { acc / total }
            })
            .collect()
    }

    /// ε-space loss of v-predictions `preds` (high → low, each like `batch.z`) (§2.6–2.7):
    /// Σ_r Σ_b factor[r][b]·mean_{C,H,W}(ε̂_r,b − ε_r,b)² with [`Diffusion::loss_factors`].
    /// Returns the scalar loss and, per resolution, the unweighted mean squared error over the
    /// samples that resolution uses (for logging).
    pub fn loss(&self, preds: &[Var], batch: &NoisedBatch) -> Result<(Var, Vec<f64>)> {
        let nr = self.num_resolutions();
        if preds.len() != nr || batch.z.len() != nr {
            return Err(input_err("preds", format!("{} predictions for {nr} resolutions", preds.len())));
        }
        let b = batch.t.len();
        let factors = self.loss_factors(&batch.t);
        let m = self.mixed_fractions();
        let mut total: Option<Var> = None;
        let mut logs = Vec::with_capacity(nr);
        for r in 0..nr {
            let p = &preds[r];
            if p.shape() != batch.z[r].shape() {
                return Err(input_err(
                    format!("preds[{r}]"),
                    format!("shape {:?}, expected {:?}", p.shape(), batch.z[r].shape()),
                ));
            }
            let eps_hat = eps_from_v_var(&batch.z[r], p, &batch.gammas[r])?;
            let target = Var::constant(batch.eps[r].to_dtype(p.dtype())?);
            let per = eps_hat.sub(&target)?.sqr()?.mean(&[1, 2, 3], false)?; // [B]
            let pv = per.value().to_vec_f64();
            let keep = ((m[r] * b as f64).floor() as usize).max(1).min(b);
            logs.push(pv[..keep].iter().sum::<f64>() / keep as f64);
            let f = Var::constant(Tensor::from_vec(factors[r].clone(), &[b])?.to_dtype(p.dtype())?);
            let lr = per.mul(&f)?.sum_all()?;
            total = Some(match total {
                None => lr,
                Some(acc) => acc.add(&lr)?,
            });
        }
        Ok((total.expect("at least one resolution"), logs))
    }
}
