//! The configuration of a training run (one TOML file): `[model]` ([`ModelConfig`]), `[diffusion]`
//! ([`DiffusionConfig`]), `[data]` ([`DataConfig`]), `[train]` ([`TrainConfig`], with the
//! progressive `[[train.phases]]`) and `[sample]` ([`SampleDefaults`]).
//!
//! Every table rejects unknown fields, and [`RunConfig::validate`] names the offending field
//! (`train.batch_size`, `train.phases[1].levels`, …) in a [`ConfigError::Invalid`].
//!
//! Progressive training (spec §4.2): ml-mdm has no phase scheduler (it chains separate runs with
//! `initialize_inner_with_pretrained`); here one run may list phases. Phase `i` covers the steps
//! `[start_i, start_i + steps_i)`; after the last phase's steps its level count stays in force.
//! `levels = k` trains the model truncated to its `k` innermost levels.

use crate::config::ModelConfig;
use crate::data::DataConfig;
use crate::diffusion::DiffusionConfig;
use crate::error::ConfigError;
use serde::{Deserialize, Serialize};
use std::path::Path;

fn d_grad_clip() -> f64 {
    2.0
}
fn d_ema() -> f64 {
    0.9999
}
fn d_true() -> bool {
    true
}
fn d_one() -> usize {
    1
}
fn d_log() -> u64 {
    10
}
fn d_nan() -> u64 {
    5
}
fn d_sample_steps() -> usize {
    50
}
fn d_guidance() -> f64 {
    1.0
}
fn d_grid() -> usize {
    8
}

/// A whole training run.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// The (full, all-levels) network.
    pub model: ModelConfig,
    /// Noise schedule, loss weighting, conditioning dropout.
    #[serde(default)]
    pub diffusion: DiffusionConfig,
    /// Training images.
    pub data: DataConfig,
    /// Optimisation and bookkeeping.
    pub train: TrainConfig,
    /// Sampling defaults for the grids written during training and for `mdm sample`.
    #[serde(default)]
    pub sample: SampleDefaults,
}

/// `[train]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Side of the outermost (full-model) images; each inner level halves it once per extra UNet
    /// resolution of the level around it.
    pub image_size: usize,
    /// Images per micro-batch.
    pub batch_size: usize,
    /// Optimizer steps of the run.
    pub steps: u64,
    /// Peak learning rate (AdamW).
    pub lr: f64,
    /// Linear warmup steps (ml-mdm's LambdaLR; constant afterwards unless `min_lr` is set).
    #[serde(default)]
    pub warmup_steps: u64,
    /// If set, after the warmup the rate follows half a cosine from `lr` down to `min_lr` at
    /// `steps`, across phases (an extension for short runs; ml-mdm keeps the rate constant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_lr: Option<f64>,
    /// AdamW decoupled weight decay.
    #[serde(default)]
    pub weight_decay: f64,
    /// Global L2 gradient-norm clip (0 = off).
    #[serde(default = "d_grad_clip")]
    pub grad_clip: f64,
    /// EMA decay of the parameters (0 = the EMA is the raw weights).
    #[serde(default = "d_ema")]
    pub ema_decay: f64,
    /// Ramp each parameter's EMA decay as `min(ema_decay, (1 + n) / (10 + n))` over its first
    /// updates, restarting for the parameters a phase adds (default on; ml-mdm has no ramp, so
    /// an outer level added by a phase starts its average at its initial weights: see
    /// `nn::optim::Ema`). `false` gives ml-mdm's plain decay.
    #[serde(default = "d_true")]
    pub ema_ramp: bool,
    /// Micro-batches per optimizer step.
    #[serde(default = "d_one")]
    pub grad_accumulation: usize,
    /// Seed of the initial weights and of every random stream (data order, noise, dropout).
    #[serde(default)]
    pub seed: u64,
    /// Write OUT/checkpoint.safetensors every N steps (0 = only at the end / on Ctrl-C).
    #[serde(default)]
    pub checkpoint_every: u64,
    /// Write a sample grid every N steps (0 = only the final grid).
    #[serde(default)]
    pub sample_every: u64,
    /// Append a metrics line every N steps.
    #[serde(default = "d_log")]
    pub log_every: u64,
    /// Consecutive non-finite losses that stop the run (K).
    #[serde(default = "d_nan")]
    pub max_nan_steps: u64,
    /// Progressive schedule; empty = every level from the start.
    #[serde(default)]
    pub phases: Vec<Phase>,
}

/// One `[[train.phases]]` entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    /// Steps of this phase.
    pub steps: u64,
    /// Active resolutions counted from the innermost (1 = the innermost UNet alone).
    pub levels: usize,
    /// Freeze the parameters inherited from the previous phase (ml-mdm's `freeze_inner_unet`).
    #[serde(default)]
    pub freeze_inner: bool,
}

/// Sampler family.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SamplerName {
    Ddpm,
    Ddim,
}

/// x̂₀ thresholding (spec §5.3).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThresholdName {
    None,
    Clip,
    Dynamic,
    DynamicIf,
}

/// `[sample]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SampleDefaults {
    /// Sampling steps.
    #[serde(default = "d_sample_steps")]
    pub steps: usize,
    /// `ddim` (default) or `ddpm`.
    #[serde(default = "d_sampler")]
    pub sampler: SamplerName,
    /// DDIM η (0 = deterministic).
    #[serde(default)]
    pub eta: f64,
    /// Classifier-free guidance weight (1 = none).
    #[serde(default = "d_guidance")]
    pub guidance: f64,
    /// Thresholding of x̂₀.
    #[serde(default = "d_threshold")]
    pub threshold: ThresholdName,
    /// Seed of the grids written during training.
    #[serde(default)]
    pub seed: u64,
    /// Images per grid.
    #[serde(default = "d_grid")]
    pub grid_size: usize,
}

fn d_sampler() -> SamplerName {
    SamplerName::Ddim
}
fn d_threshold() -> ThresholdName {
    ThresholdName::Clip
}

impl Default for SampleDefaults {
    fn default() -> Self {
        Self {
            steps: d_sample_steps(),
            sampler: d_sampler(),
            eta: 0.0,
            guidance: d_guidance(),
            threshold: d_threshold(),
            seed: 0,
            grid_size: d_grid(),
        }
    }
}

fn bad(field: &str, msg: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { field: field.to_string(), msg: msg.into() }
}

impl RunConfig {
    /// Parses TOML (`source_name` names it in errors) and validates.
    pub fn from_toml_str(text: &str, source_name: &str) -> Result<Self, ConfigError> {
        let cfg: RunConfig = toml::from_str(text)
            .map_err(|e| ConfigError::Parse { source_name: source_name.to_string(), msg: e.to_string() })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Reads, parses and validates a TOML file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<(Self, String), ConfigError> {
        let p = path.as_ref();
        let text = std::fs::read_to_string(p)
            .map_err(|e| ConfigError::Io { path: p.display().to_string(), msg: e.to_string() })?;
        Ok((Self::from_toml_str(&text, &p.display().to_string())?, text))
    }

    /// Number of resolutions of the full model.
    pub fn num_levels(&self) -> usize {
        self.model.levels().len()
    }

    /// Checks every field; the error names it.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.model.validate().map_err(|e| match e {
            ConfigError::Invalid { field, msg } => {
                ConfigError::Invalid { field: format!("model.{field}"), msg }
            }
            other => other,
        })?;
        self.diffusion.validate(self.num_levels()).map_err(|e| match e {
            crate::Error::Config(c) => c,
            other => bad("diffusion", other.to_string()),
        })?;
        let t = &self.train;
        if t.batch_size == 0 {
            return Err(bad("train.batch_size", "must be >= 1"));
        }
        if t.steps == 0 {
            return Err(bad("train.steps", "must be >= 1"));
        }
        if t.grad_accumulation == 0 {
            return Err(bad("train.grad_accumulation", "must be >= 1"));
        }
        if !(t.lr.is_finite() && t.lr >= 0.0) {
            return Err(bad("train.lr", format!("{} is not a finite rate >= 0", t.lr)));
        }
        if let Some(m) = t.min_lr {
            if !(m.is_finite() && m >= 0.0 && m <= t.lr) {
                return Err(bad("train.min_lr", format!("{m} is not a finite rate in [0, lr = {}]", t.lr)));
            }
            if t.steps <= t.warmup_steps {
                return Err(bad("train.min_lr", "needs train.steps > train.warmup_steps (a decay to run)"));
            }
        }
        if !(t.weight_decay.is_finite() && t.weight_decay >= 0.0) {
            return Err(bad("train.weight_decay", format!("{} is not finite and >= 0", t.weight_decay)));
        }
        if !(t.grad_clip.is_finite() && t.grad_clip >= 0.0) {
            return Err(bad("train.grad_clip", format!("{} is not finite and >= 0 (0 = off)", t.grad_clip)));
        }
        if !(0.0..=1.0).contains(&t.ema_decay) {
            return Err(bad("train.ema_decay", format!("{} is not in [0, 1]", t.ema_decay)));
        }
        if t.log_every == 0 {
            return Err(bad("train.log_every", "must be >= 1"));
        }
        if t.max_nan_steps == 0 {
            return Err(bad("train.max_nan_steps", "must be >= 1"));
        }
        let n = self.num_levels();
        let mut prev = 0;
        for (i, p) in t.phases.iter().enumerate() {
            if p.steps == 0 {
                return Err(bad(&format!("train.phases[{i}].steps"), "must be >= 1"));
            }
            if p.levels == 0 || p.levels > n {
                return Err(bad(
                    &format!("train.phases[{i}].levels"),
                    format!("{} is not in 1..={n} (the model has {n} resolutions)", p.levels),
                ));
            }
            if p.levels < prev {
                return Err(bad(
                    &format!("train.phases[{i}].levels"),
                    format!("{} is fewer than the previous phase's {prev} (levels can only grow)", p.levels),
                ));
            }
            if i == 0 && p.freeze_inner {
                return Err(bad("train.phases[0].freeze_inner", "the first phase has no inherited levels"));
            }
            prev = p.levels;
        }
        let mut size = t.image_size;
        for (k, level) in self.model.levels().iter().enumerate() {
            let f = 1usize << (level.num_levels() - 1);
            if size == 0 || !size.is_multiple_of(f) {
                return Err(bad(
                    "train.image_size",
                    format!(
                        "{} does not divide down through the levels (level {k} needs a multiple of {f}, has {size})",
                        t.image_size
                    ),
                ));
            }
            size /= f;
        }
        let s = &self.sample;
        if s.steps == 0 {
            return Err(bad("sample.steps", "must be >= 1"));
        }
        if s.grid_size == 0 {
            return Err(bad("sample.grid_size", "must be >= 1"));
        }
        if !(s.eta.is_finite() && s.eta >= 0.0) {
            return Err(bad("sample.eta", format!("{} is not finite and >= 0", s.eta)));
        }
        if !(s.guidance.is_finite() && s.guidance >= 0.0) {
            return Err(bad("sample.guidance", format!("{} is not finite and >= 0", s.guidance)));
        }
        Ok(())
    }

    /// Active level count at optimizer step `step` (0-based).
    pub fn levels_at(&self, step: u64) -> usize {
        self.phase_at(step).map_or(self.num_levels(), |(_, p)| p.levels)
    }

    /// The phase (index, entry) in force at `step`; `None` without phases.
    pub fn phase_at(&self, step: u64) -> Option<(usize, &Phase)> {
        let mut start = 0;
        for (i, p) in self.train.phases.iter().enumerate() {
            if step < start + p.steps {
                return Some((i, p));
            }
            start += p.steps;
        }
        self.train.phases.last().map(|p| (self.train.phases.len() - 1, p))
    }

    /// The model truncated to its `levels` innermost levels (`levels` in 1..=num_levels).
    pub fn model_for(&self, levels: usize) -> ModelConfig {
        let all = self.model.levels();
        let mut cfg = self.model.clone();
        cfg.unet = all[all.len() - levels.clamp(1, all.len())].clone();
        cfg
    }

    /// Side of the outermost image of the model truncated to `levels` levels.
    pub fn image_size_for(&self, levels: usize) -> usize {
        let all = self.model.levels();
        let drop = all.len() - levels.clamp(1, all.len());
        all[..drop].iter().fold(self.train.image_size, |s, l| s >> (l.num_levels() - 1))
    }

    /// Down-sampling factor of each resolution of the `levels`-level model relative to its
    /// outermost image, high → low (e.g. `[1, 2]`).
    pub fn scales_for(&self, levels: usize) -> Vec<usize> {
        let cfg = self.model_for(levels);
        let mut f = 1;
        let mut out = vec![];
        for l in cfg.levels() {
            out.push(f);
            f <<= l.num_levels() - 1;
        }
        out
    }

    /// The diffusion settings of the `levels`-level model: per-resolution lists keep their last
    /// `levels` entries (the innermost resolutions).
    pub fn diffusion_for(&self, levels: usize) -> DiffusionConfig {
        let mut d = self.diffusion.clone();
        let tail = |v: &mut Vec<f64>| {
            if v.len() > levels {
                *v = v[v.len() - levels..].to_vec();
            }
        };
        tail(&mut d.multi_res_weights);
        tail(&mut d.mixed_ratio);
        d
    }
}
