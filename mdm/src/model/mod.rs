//! The MDM network: [`Mdm`] wraps the outermost [`UNet`] level (a NestedUNet when it has inner
//! levels) with its config, checks the forward inputs and runs the text path at the innermost level.

pub mod embedding;
pub mod plan;
pub mod resnet;
pub mod unet;

use crate::config::ModelConfig;
use crate::error::input_err;
use crate::{Micros, Result};
use autograd::{Var, scope};
use nn::{Init, Module, Param};
use tensor::{DType, Tensor};
pub use unet::{CondState, UNet};

/// Conditioning of one forward pass.
#[derive(Clone, Copy, Debug)]
pub enum Conditioning<'a> {
    /// Text tokens [B, L, d_lm] (already multiplied by the mask) and the token mask u8 [B, L].
    Text { tokens: &'a Var, mask: Option<&'a Tensor> },
    /// Extension: class labels i64 [B] in `0..=num_classes` (`num_classes` = null class).
    Class { labels: &'a Tensor },
}

/// A built MDM model.
#[derive(Clone, Debug)]
pub struct Mdm {
    pub config: ModelConfig,
    pub unet: UNet,
}

impl Module for Mdm {
    fn visit(&self, prefix: &str, f: &mut dyn FnMut(&str, &Param)) {
        self.unet.visit(prefix, f)
    }
    fn visit_mut(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        self.unet.visit_mut(prefix, f)
    }
    fn set_training(&mut self, training: bool) {
        self.unet.set_training(training)
    }
}

impl Mdm {
    /// Validates `config` and builds the model in f32 with parameters drawn from `seed`.
    pub fn new(config: &ModelConfig, seed: u64) -> Result<Self> {
        Self::with_init(config, &mut Init::new(seed))
    }

    /// Builds with an explicit initialiser (its dtype is the model dtype).
    pub fn with_init(config: &ModelConfig, init: &mut Init) -> Result<Self> {
        config.validate()?;
        let mut seed = init.seed ^ 0xD809_0C7A_5EED;
        let unet = UNet::new(init, config, &config.unet, &mut seed)?;
        Ok(Self { config: config.clone(), unet })
    }

    /// Number of image inputs/outputs (nesting levels).
    pub fn num_resolutions(&self) -> usize {
        self.unet.depth() + 1
    }

    /// Parameter dtype.
    pub fn dtype(&self) -> DType {
        self.unet.dtype()
    }

    /// The null class label (class conditioning).
    pub fn null_class(&self) -> i64 {
        self.config.num_classes as i64
    }

    fn check_images(&self, images: &[Var]) -> Result<usize> {
        let levels = self.config.levels();
        if images.len() != levels.len() {
            return Err(input_err(
                "images",
                format!("{} images given, the model has {} resolutions", images.len(), levels.len()),
            ));
        }
        let s0 = images[0].shape();
        if s0.len() != 4 {
            return Err(input_err("images[0]", format!("shape {s0:?} is not [B, C, H, W]")));
        }
        let b = s0[0];
        let (mut h, mut w) = (s0[2], s0[3]);
        for (k, (img, level)) in images.iter().zip(&levels).enumerate() {
            let s = img.shape();
            let c = self.config.image_channels;
            if s != [b, c, h, w] {
                return Err(input_err(
                    format!("images[{k}]"),
                    format!("shape {s:?}, expected {:?}", [b, c, h, w]),
                ));
            }
            if img.dtype() != self.dtype() {
                return Err(input_err(
                    format!("images[{k}]"),
                    format!("dtype {} but the model is {}", img.dtype(), self.dtype()),
                ));
            }
            let f = 1usize << (level.num_levels() - 1);
            if !h.is_multiple_of(f) || !w.is_multiple_of(f) || h == 0 || w == 0 {
                return Err(input_err(
                    format!("images[{k}]"),
                    format!("{h}×{w} is not a positive multiple of {f} ({} levels)", level.num_levels()),
                ));
            }
            (h, w) = (h / f, w / f);
        }
        Ok(b)
    }

    fn conditioning(&self, cond: Option<Conditioning<'_>>, b: usize) -> Result<CondState> {
        let d_lm = self.config.conditioning_feature_dim;
        let inner = self.unet.innermost();
        let depth = self.unet.depth();
        let _s = (depth > 0).then(|| scope(vec!["inner_unet"; depth].join(".")));
        match (cond, d_lm) {
            (None, 0) => Ok(CondState::default()),
            (None, _) => Err(input_err(
                "conditioning",
                format!("the model is conditioned (d_lm = {d_lm}) but none was given"),
            )),
            (Some(_), 0) => {
                Err(input_err("conditioning", "the model is unconditional (conditioning_feature_dim = 0)"))
            }
            (Some(Conditioning::Text { tokens, mask }), _) => {
                let s = tokens.shape();
                if s.len() != 3 || s[0] != b || s[2] != d_lm {
                    return Err(input_err(
                        "conditioning.tokens",
                        format!("shape {s:?}, expected [{b}, L, {d_lm}]"),
                    ));
                }
                if let Some(m) = mask {
                    if m.dtype() != DType::U8 || m.shape() != [b, s[1]] {
                        return Err(input_err(
                            "conditioning.mask",
                            format!("{} {:?}, expected u8 [{b}, {}]", m.dtype(), m.shape(), s[1]),
                        ));
                    }
                    let v = m.to_vec_f64();
                    if let Some(row) = (0..b).find(|&i| v[i * s[1]..(i + 1) * s[1]].iter().all(|&x| x == 0.0))
                    {
                        return Err(input_err(
                            "conditioning.mask",
                            format!("row {row} has no real token (pooling would divide by zero)"),
                        ));
                    }
                }
                inner.forward_conditioning(tokens, mask)
            }
            (Some(Conditioning::Class { labels }), _) => {
                if labels.dtype() != DType::I64 || labels.shape() != [b] {
                    return Err(input_err(
                        "conditioning.labels",
                        format!("{} {:?}, expected i64 [{b}]", labels.dtype(), labels.shape()),
                    ));
                }
                let n = self.config.num_classes as f64;
                if let Some(bad) = labels.to_vec_f64().into_iter().find(|&l| !(0.0..=n).contains(&l)) {
                    return Err(input_err(
                        "conditioning.labels",
                        format!("label {bad} outside 0..={n} ({n} = null class)"),
                    ));
                }
                let tokens = inner.class_tokens(labels)?;
                inner.forward_conditioning(&tokens, None)
            }
        }
    }

    /// One network call: `images` high → low (one per resolution, same batch B), `times` [B]
    /// (the integer index t as float), optional conditioning and micro-conditioning values (key →
    /// [B]; missing keys use their defaults). Returns the predictions, high → low.
    pub fn forward(
        &self,
        images: &[Var],
        times: &Tensor,
        cond: Option<Conditioning<'_>>,
        micros: &Micros,
    ) -> Result<Vec<Var>> {
        let b = self.check_images(images)?;
        if times.shape() != [b] {
            return Err(input_err("times", format!("shape {:?}, expected [{b}]", times.shape())));
        }
        let keys: Vec<&str> = self
            .config
            .levels()
            .iter()
            .flat_map(|l| l.micro_conditioning.iter().map(|m| m.key.as_str()))
            .collect();
        for (k, v) in micros {
            if !keys.contains(&k.as_str()) {
                return Err(input_err(
                    format!("micros.{k}"),
                    format!("unknown key (the model has {keys:?})"),
                ));
            }
            if v.shape() != [b] {
                return Err(input_err(
                    format!("micros.{k}"),
                    format!("shape {:?}, expected [{b}]", v.shape()),
                ));
            }
        }
        let state = self.conditioning(cond, b)?;
        Ok(self.unet.forward_denoising(images, times, &state, micros, None)?.0)
    }
}
