//! Sampling from a run: the grids written during training and `mdm sample` from a checkpoint.

use super::checkpoint::read_checkpoint;
use super::{Result, TrainError};
use crate::Mdm;
use crate::diffusion::Diffusion;
use crate::run_config::{RunConfig, SampleDefaults, SamplerName, ThresholdName};
use crate::sampler::{SampleCondition, SampleOutput, SamplerConfig, SamplerKind, Threshold, sample};
use crate::text::HashTextEncoder;
use nn::Module as _;
use nn::checkpoint::load_state_dict;
use std::path::Path;

/// Token slots of the hashing text encoder used for text-conditioned runs.
pub const TEXT_MAX_LEN: usize = 16;

/// The text encoder of a text-conditioned model.
pub fn text_encoder(model: &Mdm) -> HashTextEncoder {
    HashTextEncoder { dim: model.config.conditioning_feature_dim, max_len: TEXT_MAX_LEN }
}

/// What to draw.
#[derive(Clone, Debug)]
pub enum Request {
    /// One class label per image.
    Classes(Vec<i64>),
    /// The same prompt for every image.
    Prompt(String),
    /// No conditioning.
    Unconditional,
}

/// The sampler settings from the `[sample]` defaults.
pub fn sampler_config(d: &SampleDefaults, seed: u64, keep_trajectory: bool) -> SamplerConfig {
    SamplerConfig {
        steps: d.steps,
        kind: match d.sampler {
            SamplerName::Ddpm => SamplerKind::Ddpm,
            SamplerName::Ddim => SamplerKind::Ddim { eta: d.eta },
        },
        threshold: match d.threshold {
            ThresholdName::None => Threshold::None,
            ThresholdName::Clip => Threshold::Clip,
            ThresholdName::Dynamic => Threshold::Dynamic,
            ThresholdName::DynamicIf => Threshold::DynamicIf,
        },
        guidance: d.guidance,
        seed,
        keep_trajectory,
    }
}

/// The sampler condition for `request` with `batch` images (class lists are cycled to `batch`).
pub fn condition(model: &Mdm, request: &Request, batch: usize) -> Result<SampleCondition> {
    let cfg = &model.config;
    match request {
        Request::Classes(c) => {
            if cfg.num_classes == 0 {
                return Err(bad_request("the model is not class-conditional (num_classes = 0)"));
            }
            if let Some(&k) = c.iter().find(|&&k| k < 0 || k as usize >= cfg.num_classes) {
                return Err(bad_request(&format!("class {k} is not in 0..{}", cfg.num_classes)));
            }
            if c.is_empty() {
                return Err(bad_request("no class given"));
            }
            Ok(SampleCondition::Class((0..batch).map(|i| c[i % c.len()]).collect()))
        }
        Request::Prompt(p) => {
            if cfg.conditioning_feature_dim == 0 || cfg.num_classes > 0 {
                return Err(bad_request("the model is not text-conditional"));
            }
            let enc = text_encoder(model);
            let (tokens, mask) = enc.encode(&vec![p.clone(); batch])?;
            let (negative_tokens, negative_mask) = enc.encode(&vec![String::new(); batch])?;
            Ok(SampleCondition::Text {
                tokens,
                mask: Some(mask),
                negative_tokens,
                negative_mask: Some(negative_mask),
            })
        }
        Request::Unconditional => {
            if cfg.conditioning_feature_dim > 0 {
                return Err(bad_request(
                    "the model is conditional: give a class (--class) or a prompt (--prompt)",
                ));
            }
            Ok(SampleCondition::Unconditional)
        }
    }
}

fn bad_request(msg: &str) -> TrainError {
    TrainError::Config(crate::ConfigError::Invalid { field: "sample request".into(), msg: msg.into() })
}

/// The default grid request of a run: classes 0, 1, … cycled; the first captions of the data for
/// a text model; unconditional otherwise.
pub fn default_request(model: &Mdm, captions: &[String]) -> Request {
    let cfg = &model.config;
    if cfg.num_classes > 0 {
        Request::Classes((0..cfg.num_classes as i64).collect())
    } else if cfg.conditioning_feature_dim > 0 {
        Request::Prompt(captions.first().cloned().unwrap_or_default())
    } else {
        Request::Unconditional
    }
}

/// A model (EMA weights when stored) ready for sampling from a checkpoint.
pub struct Loaded {
    pub config: RunConfig,
    pub model: Mdm,
    pub diffusion: Diffusion,
    pub levels: usize,
    pub image_size: usize,
    pub step: u64,
}

/// Loads a checkpoint written by `mdm train` (its stored config, its active levels, EMA weights).
pub fn load(path: &Path) -> Result<Loaded> {
    let info = read_checkpoint(path)?;
    let config = RunConfig::from_toml_str(&info.ckpt.config, &format!("{} (stored config)", path.display()))?;
    let levels = info.levels;
    if levels > config.num_levels() {
        return Err(TrainError::Checkpoint {
            path: path.display().to_string(),
            msg: format!("{levels} active levels but the stored config has {}", config.num_levels()),
        });
    }
    let mut model = Mdm::new(&config.model_for(levels), config.train.seed)?;
    let weights = info.ckpt.ema.as_ref().unwrap_or(&info.ckpt.model);
    load_state_dict(&mut model, weights, true)?;
    model.set_training(false);
    let diffusion = Diffusion::new(config.diffusion_for(levels), &config.scales_for(levels))?;
    let image_size = config.image_size_for(levels);
    Ok(Loaded { config, model, diffusion, levels, image_size, step: info.ckpt.step })
}

/// Draws `batch` images.
pub fn draw(
    model: &Mdm,
    diffusion: &Diffusion,
    request: &Request,
    batch: usize,
    image_size: usize,
    cfg: &SamplerConfig,
) -> Result<SampleOutput> {
    let cond = condition(model, request, batch)?;
    Ok(sample(model, diffusion, &cond, batch, image_size, cfg)?)
}
