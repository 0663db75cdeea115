//! Sampling (spec §5): DDPM-ancestral or DDIM(η) on the resampled timestep grid, every resolution
//! updated with its own shifted γ from one network call per step, x̂₀ thresholding and
//! classifier-free guidance in v-space with one doubled-batch call.
//!
//! Noise comes from the Philox stream at `seed`: the starting noise of each resolution (high → low)
//! and then, step by step, each resolution's step noise, from consecutive stream ranges starting at
//! offset 0, so a (model, seed, config) triple always gives the same images.
//!
//! Deviations from ml-mdm: the grid is always the resampled one (with `steps` = N it equals ml-mdm's
//! full N-step loop); every resolution is returned (ml-mdm returns the top one); the unconditional
//! CFG branch of class conditioning is the null class (an extension); the negative prompt is given
//! as tokens (a batch of 1 is broadcast) and both halves are zero-padded (mask 0) to the same
//! length; `guidance` has no effect with [`SampleCondition::Unconditional`]; DDIM η must lie in
//! [0, 1] (larger η makes ml-mdm take the square root of a negative number).

mod step;

pub use step::{StepOutput, dynamic_threshold, step, threshold, timestep_grid};

use crate::diffusion::Diffusion;
use crate::error::input_err;
use crate::model::{Conditioning, Mdm};
use crate::{Micros, Result};
use autograd::Var;
use serde::{Deserialize, Serialize};
use tensor::{DType, Tensor};

/// Thresholding of x̂₀ (§5.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Threshold {
    /// No thresholding.
    None,
    /// Clamp to [−1, 1] (ml-mdm's config default).
    Clip,
    /// Imagen dynamic thresholding (quantile 0.995, s ∈ [1, 100]).
    Dynamic,
    /// DeepFloyd dynamic thresholding (quantile 0.95, s ∈ [1, 1.5]).
    DynamicIf,
}

/// The update rule.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SamplerKind {
    /// Ancestral DDPM.
    Ddpm,
    /// DDIM with noise scale η ∈ [0, 1] (η = 0 deterministic).
    Ddim { eta: f64 },
}

/// Sampling settings.
#[derive(Clone, Debug)]
pub struct SamplerConfig {
    /// Number of steps n (1..=N) of the grid [`timestep_grid`].
    pub steps: usize,
    /// Update rule.
    pub kind: SamplerKind,
    /// x̂₀ thresholding.
    pub threshold: Threshold,
    /// Classifier-free guidance weight w (1 = off).
    pub guidance: f64,
    /// Seed of the Philox noise stream.
    pub seed: u64,
    /// Record x̂₀ of every resolution at every step.
    pub keep_trajectory: bool,
}

/// The condition of a sampling batch.
// One value per sampling call: the size difference of the variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum SampleCondition {
    /// No conditioning.
    Unconditional,
    /// Class labels (one per sample); the CFG branch uses the null class.
    Class(Vec<i64>),
    /// Text tokens [B, L, d] (already masked) with an optional u8 mask [B, L]; the CFG branch uses
    /// the negative prompt tokens [B or 1, L', d] and mask.
    Text { tokens: Tensor, mask: Option<Tensor>, negative_tokens: Tensor, negative_mask: Option<Tensor> },
}

/// Sampled images.
#[derive(Clone, Debug)]
pub struct SampleOutput {
    /// Final images high → low, each [B, C, h, w] clipped to [−1, 1].
    pub images: Vec<Tensor>,
    /// Per step, the thresholded x̂₀ of every resolution (empty unless `keep_trajectory`).
    pub trajectory: Vec<Vec<Tensor>>,
}

/// Image side of every resolution of `model` for a top side `image_size`, high → low.
pub fn resolution_sizes(model: &Mdm, image_size: usize) -> Result<Vec<usize>> {
    let mut sizes = vec![image_size];
    for level in model.config.levels() {
        let f = 1usize << (level.num_levels() - 1);
        let s = sizes[sizes.len() - 1];
        if s == 0 || !s.is_multiple_of(f) {
            return Err(input_err("image_size", format!("{image_size}: side {s} is not a multiple of {f}")));
        }
        if level.inner.is_some() {
            sizes.push(s / f);
        }
    }
    Ok(sizes)
}

fn pad_tokens(
    t: &Tensor,
    mask: Option<&Tensor>,
    b: usize,
    len: usize,
    name: &str,
) -> Result<(Tensor, Tensor)> {
    let sh = t.shape();
    if sh.len() != 3 || (sh[0] != b && sh[0] != 1) || sh[1] > len {
        return Err(input_err(name, format!("shape {sh:?}, expected [{b} or 1, L, d]")));
    }
    let m = match mask {
        Some(m) if m.shape() == [sh[0], sh[1]] => m.to_dtype(DType::U8)?,
        Some(m) => {
            return Err(input_err(
                format!("{name} mask"),
                format!("shape {:?}, expected [{}, {}]", m.shape(), sh[0], sh[1]),
            ));
        }
        None => Tensor::ones(&[sh[0], sh[1]], DType::U8),
    };
    let (t, m) = if sh[0] == 1 && b > 1 {
        (t.expand(&[b, sh[1], sh[2]])?.contiguous()?, m.expand(&[b, sh[1]])?.contiguous()?)
    } else {
        (t.clone(), m)
    };
    if sh[1] == len {
        return Ok((t, m));
    }
    let tz = Tensor::zeros(&[b, len - sh[1], sh[2]], t.dtype());
    let mz = Tensor::zeros(&[b, len - sh[1]], DType::U8);
    Ok((Tensor::cat(&[&t, &tz], 1)?, Tensor::cat(&[&m, &mz], 1)?))
}

/// The network's condition for one call: tokens/labels (doubled when `doubled`) and mask.
enum CondInput {
    None,
    Class(Tensor),
    Text(Var, Option<Tensor>),
}

fn cond_input(cond: &SampleCondition, model: &Mdm, b: usize, doubled: bool) -> Result<CondInput> {
    Ok(match cond {
        SampleCondition::Unconditional => CondInput::None,
        SampleCondition::Class(labels) => {
            if labels.len() != b {
                return Err(input_err("labels", format!("{} labels for a batch of {b}", labels.len())));
            }
            let mut l = Vec::with_capacity(2 * b);
            if doubled {
                l.extend(std::iter::repeat_n(model.null_class(), b));
            }
            l.extend_from_slice(labels);
            let n = l.len();
            CondInput::Class(Tensor::from_vec(l, &[n])?)
        }
        SampleCondition::Text { tokens, mask, negative_tokens, negative_mask } => {
            let sh = tokens.shape();
            if sh.len() != 3 || sh[0] != b {
                return Err(input_err("tokens", format!("shape {sh:?}, expected [{b}, L, d]")));
            }
            if !doubled {
                return Ok(CondInput::Text(Var::constant(tokens.clone()), mask.clone()));
            }
            let len = sh[1].max(negative_tokens.shape().get(1).copied().unwrap_or(0));
            let (nt, nm) = pad_tokens(negative_tokens, negative_mask.as_ref(), b, len, "negative_tokens")?;
            let (ct, cm) = pad_tokens(tokens, mask.as_ref(), b, len, "tokens")?;
            let t = Tensor::cat(&[&nt, &ct.to_dtype(nt.dtype())?], 0)?;
            CondInput::Text(Var::constant(t), Some(Tensor::cat(&[&nm, &cm], 0)?))
        }
    })
}

/// One guided network call: v-predictions high → low for inputs `z` at model time `time`.
fn predict(
    model: &Mdm,
    z: &[Tensor],
    time: f64,
    cond: &CondInput,
    guidance: f64,
    doubled: bool,
) -> Result<Vec<Tensor>> {
    let b = z[0].shape()[0];
    let nb = if doubled { 2 * b } else { b };
    let inputs: Vec<Var> = z
        .iter()
        .map(|x| Ok(Var::constant(if doubled { Tensor::cat(&[x, x], 0)? } else { x.clone() })))
        .collect::<Result<_>>()?;
    let times = Tensor::full(&[nb], time, DType::F32);
    let c = match cond {
        CondInput::None => None,
        CondInput::Class(labels) => Some(Conditioning::Class { labels }),
        CondInput::Text(tokens, mask) => Some(Conditioning::Text { tokens, mask: mask.as_ref() }),
    };
    let micros = Micros::new();
    let out = autograd::no_grad(|| model.forward(&inputs, &times, c, &micros))?;
    out.iter()
        .map(|p| {
            let p = p.value();
            if !doubled {
                return Ok(p.clone());
            }
            let u = p.narrow(0, 0, b)?;
            let c = p.narrow(0, b, b)?;
            Ok(u.add(&c.sub(&u)?.mul_scalar(guidance)?)?)
        })
        .collect()
}

fn check_config(cfg: &SamplerConfig, diffusion: &Diffusion, batch: usize) -> Result<()> {
    let n = diffusion.num_steps();
    if cfg.steps == 0 || cfg.steps > n {
        return Err(input_err("steps", format!("{} is not in [1, {n}]", cfg.steps)));
    }
    if let SamplerKind::Ddim { eta } = cfg.kind
        && !(0.0..=1.0).contains(&eta)
    {
        return Err(input_err("eta", format!("{eta} is not in [0, 1]")));
    }
    if !cfg.guidance.is_finite() {
        return Err(input_err("guidance", format!("{} is not finite", cfg.guidance)));
    }
    if batch == 0 {
        return Err(input_err("batch", "must be at least 1"));
    }
    Ok(())
}

/// Samples `batch` images of side `image_size` (top resolution) and all lower resolutions.
pub fn sample(
    model: &Mdm,
    diffusion: &Diffusion,
    cond: &SampleCondition,
    batch: usize,
    image_size: usize,
    cfg: &SamplerConfig,
) -> Result<SampleOutput> {
    check_config(cfg, diffusion, batch)?;
    let sizes = resolution_sizes(model, image_size)?;
    let scales: Vec<usize> = sizes.iter().map(|s| image_size / s).collect();
    if scales != diffusion.scales() {
        return Err(input_err(
            "diffusion.scales",
            format!(
                "{:?} do not match the model's {scales:?} at image size {image_size}",
                diffusion.scales()
            ),
        ));
    }
    let doubled = cfg.guidance != 1.0 && !matches!(cond, SampleCondition::Unconditional);
    let cond_in = cond_input(cond, model, batch, doubled)?;
    let ch = model.config.image_channels;
    let dtype = model.dtype();
    let mut offset = 0u64;
    let mut draw = |shape: &[usize]| -> Result<Tensor> {
        let t = Tensor::randn(shape, 0.0, 1.0, cfg.seed, offset, dtype)?;
        offset += t.numel() as u64;
        Ok(t)
    };
    let mut z: Vec<Tensor> = sizes.iter().map(|&s| draw(&[batch, ch, s, s])).collect::<Result<_>>()?;
    let grid = timestep_grid(diffusion.num_steps(), cfg.steps);
    let mut trajectory = vec![];
    for w in grid.windows(2) {
        let (t, s) = (w[0], w[1]);
        let preds = predict(model, &z, t as f64 - 1.0, &cond_in, cfg.guidance, doubled)?;
        let mut x0s = Vec::with_capacity(z.len());
        for (r, (zr, v)) in z.iter_mut().zip(&preds).enumerate() {
            let sched = diffusion.schedule(r);
            let noise = if s != 0 { Some(draw(zr.shape())?) } else { None };
            let out = step(zr, v, sched.gamma(t), sched.gamma(s), cfg.kind, cfg.threshold, noise.as_ref())?;
            *zr = out.z;
            x0s.push(out.x0);
        }
        if cfg.keep_trajectory {
            trajectory.push(x0s);
        }
    }
    let images = z.iter().map(|x| Ok(x.clamp(-1.0, 1.0)?)).collect::<Result<_>>()?;
    Ok(SampleOutput { images, trajectory })
}
