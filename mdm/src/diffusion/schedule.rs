//! Discrete noise schedules γ[0..=N] (spec §2.3) and the resolution-dependent SNR shift (§2.4).
//!
//! γ is the signal variance ᾱ: index 0 is clean (γ = 1), index N the noisiest. The shift is applied
//! in logSNR space (logSNR_s = logSNR − p·ln s), so the shifted logSNR is exact and γ is recovered
//! with a sigmoid; ml-mdm computes the same quantity as 1/(1 + 1/(SNR/s^p)).

use serde::{Deserialize, Serialize};

/// The schedule family (ml-mdm `schedule_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleKind {
    /// iDDPM "squaredcos_cap_v2" (β clipped at 0.999); used by all released configs.
    Deepfloyd,
    /// ml-mdm `COSINE`: logSNR = −2 ln tan(a·t + b) between logSNR 5 and −5, γ[0] = 1 prepended.
    Cosine,
    /// Linear β from 1e−4 to 0.02 (ml-mdm's dataclass default).
    Ddpm,
}

/// A schedule of N + 1 signal variances γ[k] with their logSNR values.
#[derive(Clone, Debug, PartialEq)]
pub struct Schedule {
    gammas: Vec<f64>,
    log_snrs: Vec<f64>,
}

fn log_snr_of(g: f64) -> f64 {
    if g >= 1.0 { f64::INFINITY } else { g.ln() - (1.0 - g).ln() }
}

fn sigmoid(x: f64) -> f64 {
    if x == f64::INFINITY {
        1.0
    } else if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// numpy `linspace(a, b, n)` (the last value is exactly `b`).
fn linspace(a: f64, b: f64, n: usize) -> Vec<f64> {
    match n {
        0 => vec![],
        1 => vec![a],
        _ => (0..n).map(|i| if i == n - 1 { b } else { a + (b - a) * i as f64 / (n - 1) as f64 }).collect(),
    }
}

fn cumprod_from_betas(betas: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut g = vec![1.0];
    let mut acc = 1.0;
    for b in betas {
        acc *= 1.0 - b;
        g.push(acc);
    }
    g
}

impl Schedule {
    /// The base (unshifted) schedule of `kind` with `n` steps (n + 1 entries; `n` ≥ 1).
    pub fn new(kind: ScheduleKind, n: usize) -> Self {
        let gammas = match kind {
            ScheduleKind::Deepfloyd => {
                let abar = |s: f64| ((s + 0.008) / 1.008 * std::f64::consts::FRAC_PI_2).cos().powi(2);
                let nf = n as f64;
                cumprod_from_betas(
                    (0..n).map(|i| (1.0 - abar((i + 1) as f64 / nf) / abar(i as f64 / nf)).min(0.999)),
                )
            }
            ScheduleKind::Cosine => {
                let (lmin, lmax) = (-5.0f64, 5.0f64);
                let b = (-lmax / 2.0).exp().atan();
                let a = (-lmin / 2.0).exp().atan() - b;
                let mut g = vec![1.0];
                g.extend(linspace(0.0, 1.0, n).into_iter().map(|t| sigmoid(-2.0 * (a * t + b).tan().ln())));
                g
            }
            ScheduleKind::Ddpm => cumprod_from_betas(linspace(1e-4, 0.02, n).into_iter()),
        };
        let log_snrs = gammas.iter().map(|&g| log_snr_of(g)).collect();
        Self { gammas, log_snrs }
    }

    /// γ[k] (k in 0..=N; panics beyond N like slice indexing).
    pub fn gamma(&self, k: usize) -> f64 {
        self.gammas[k]
    }

    /// logSNR[k] = ln(γ/(1−γ)) (+∞ at k = 0).
    pub fn log_snr(&self, k: usize) -> f64 {
        self.log_snrs[k]
    }

    /// All γ values.
    pub fn gammas(&self) -> &[f64] {
        &self.gammas
    }

    /// The schedule with SNR divided by `scale^power` (§2.4); `scale` ≤ 1 leaves it unchanged, as in
    /// ml-mdm's `get_schedule_shifted`.
    pub fn shifted(&self, scale: f64, power: f64) -> Schedule {
        if scale.partial_cmp(&1.0) != Some(std::cmp::Ordering::Greater) {
            return self.clone();
        }
        let d = power * scale.ln();
        let log_snrs: Vec<f64> = self.log_snrs.iter().map(|&l| l - d).collect();
        let gammas = log_snrs.iter().map(|&l| sigmoid(l)).collect();
        Schedule { gammas, log_snrs }
    }

    /// Number of entries, N + 1.
    pub fn len(&self) -> usize {
        self.gammas.len()
    }

    /// Never true for a built schedule (there is always γ[0]).
    pub fn is_empty(&self) -> bool {
        self.gammas.is_empty()
    }

    /// ml-mdm's VDM loss weight for the model time input t (index t + 1 of its weight table):
    /// SNR(γ[k−1])/SNR(γ[k]) − 1 with k = max(t + 1, 2) (the first two entries duplicate the third).
    /// Invariant under the SNR shift. Needs N ≥ 2 (returns 0 for shorter schedules).
    pub fn vdm_weight(&self, t: usize) -> f64 {
        if self.len() < 3 {
            return 0.0;
        }
        let k = (t + 1).max(2).min(self.len() - 1);
        (self.log_snrs[k - 1] - self.log_snrs[k]).exp() - 1.0
    }
}
