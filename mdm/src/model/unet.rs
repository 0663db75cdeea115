//! One UNet level (spec §3.2) and its nesting (NestedUNet, spec §3.3): a level with an inner level
//! replaces its middle blocks by `in_adapter` → inner UNet → `out_adapter`.

use super::embedding::{EmbeddingMlp, MicroCondLayer};
use super::plan::plan_level;
use super::resnet::ResNetBlock;
use crate::config::{ModelConfig, UNetConfig};
use crate::error::input_err;
use crate::{Micros, Result};
use autograd::{Var, scope};
use nn::{Conv2d, Embedding, GroupNorm, Init, Linear, Module, Param, join};
use tensor::{Conv2dOptions, DType, Tensor};

/// Conditioning after the text path of the innermost level: the pooled embedding added to every
/// level's temb, the tokens seen by cross-attention and the cross-attention mask.
#[derive(Clone, Debug, Default)]
pub struct CondState {
    pub cond_emb: Option<Var>,
    pub tokens: Option<Var>,
    pub mask: Option<Tensor>,
}

/// A UNet level; `inner_unet` (with `in_adapter`/`out_adapter`) makes it a NestedUNet.
#[derive(Clone, Debug)]
pub struct UNet {
    pub temb_layer1: Linear,
    pub temb_layer2: Linear,
    pub cond_emb: Option<Linear>,
    pub cond_layers: Vec<MicroCondLayer>,
    pub conv_in: Conv2d,
    pub down_blocks: Vec<ResNetBlock>,
    pub mid_blocks: Vec<ResNetBlock>,
    pub up_blocks: Vec<ResNetBlock>,
    pub norm_out: GroupNorm,
    pub conv_out: Conv2d,
    pub lm_proj: Option<Linear>,
    /// Extension: class-label table (`num_classes + 1` rows, last = null class).
    pub class_emb: Option<Embedding>,
    pub inner_unet: Option<Box<UNet>>,
    pub in_adapter: Option<Conv2d>,
    pub out_adapter: Option<Conv2d>,
    /// Number of resolutions of this level.
    pub num_levels: usize,
    /// Divide the input by its per-sample std (nested levels without skip_normalization).
    pub normalize_input: bool,
    /// Pass the token mask to cross-attention (innermost).
    pub masked_cross_attention: bool,
}

fn zero_conv3x3(init: &mut Init, c_in: usize, c_out: usize) -> Conv2d {
    Conv2d::zeros(init, c_in, c_out, 3, Conv2dOptions { padding: [1, 1], ..Default::default() }, true)
}

impl UNet {
    /// Builds the level `c` of model `m` (recursively its inner levels); `innermost` levels own
    /// the text path. `seed` advances per ResNet for the dropout streams.
    pub fn new(init: &mut Init, m: &ModelConfig, c: &UNetConfig, seed: &mut u64) -> Result<Self> {
        let innermost = c.inner.is_none();
        let d_t = c.temporal_dim();
        let d_c = m.cond_dim();
        let img = m.image_channels;
        let tm = EmbeddingMlp::new(init, d_t, false);
        let cond_emb =
            (innermost && c.uses_cond_emb() && d_c > 0).then(|| Linear::new(init, d_c, d_t, false));
        let cond_layers = c
            .micro_conditioning
            .iter()
            .map(|mc| MicroCondLayer {
                key: mc.key.clone(),
                default: mc.default,
                mlp: EmbeddingMlp::new(init, d_t, true),
            })
            .collect();
        let ch0 = c.resolution_channels[0];
        let conv_in = Conv2d::same3x3(init, img, ch0);
        let plan = plan_level(c, d_c);
        let g = c.num_groups_norm;
        let mut blocks = |ps: &[super::plan::BlockPlan]| -> Result<Vec<ResNetBlock>> {
            ps.iter().map(|p| ResNetBlock::new(init, p, g, d_t, c.dropout, seed)).collect()
        };
        let down_blocks = blocks(&plan.down)?;
        let mid_blocks = blocks(&plan.mid)?;
        let up_blocks = blocks(&plan.up)?;
        let norm_out = GroupNorm::new(init, g, ch0)?;
        let conv_out = zero_conv3x3(init, ch0, img);
        let (mut lm_proj, mut class_emb) = (None, None);
        if innermost {
            if c.conditioning_feature_proj_dim > 0 && m.conditioning_feature_dim > 0 {
                lm_proj = Some(Linear::new(
                    init,
                    m.conditioning_feature_dim,
                    c.conditioning_feature_proj_dim,
                    true,
                ));
            }
            if m.num_classes > 0 {
                class_emb = Some(Embedding::new(init, m.num_classes + 1, m.conditioning_feature_dim)?);
            }
        }
        let (mut inner_unet, mut in_adapter, mut out_adapter) = (None, None, None);
        if let Some(ic) = &c.inner {
            let inner = UNet::new(init, m, ic, seed)?;
            let last = c.resolution_channels[c.num_levels() - 1];
            let i0 = ic.resolution_channels[0];
            in_adapter = Some(zero_conv3x3(init, last, i0));
            out_adapter = Some(zero_conv3x3(init, i0, last));
            inner_unet = Some(Box::new(inner));
        }
        Ok(Self {
            temb_layer1: tm.layer1,
            temb_layer2: tm.layer2,
            cond_emb,
            cond_layers,
            conv_in,
            down_blocks,
            mid_blocks,
            up_blocks,
            norm_out,
            conv_out,
            lm_proj,
            class_emb,
            inner_unet,
            in_adapter,
            out_adapter,
            num_levels: c.num_levels(),
            normalize_input: c.normalizes_input(),
            masked_cross_attention: c.masks_cross_attention(),
        })
    }

    /// Nesting depth below this level (0 for a plain UNet).
    pub fn depth(&self) -> usize {
        self.inner_unet.as_ref().map_or(0, |u| 1 + u.depth())
    }

    /// The innermost level.
    pub fn innermost(&self) -> &UNet {
        self.inner_unet.as_ref().map_or(self, |u| u.innermost())
    }

    /// Parameter dtype.
    pub fn dtype(&self) -> DType {
        self.conv_in.weight.value().dtype()
    }

    /// Text path of the innermost level (spec §3.4): `tokens` [B, L, d_lm] (already multiplied
    /// by the mask), `mask` u8 [B, L] (1 = real token; every row needs one).
    pub fn forward_conditioning(&self, tokens: &Var, mask: Option<&Tensor>) -> Result<CondState> {
        let c = match &self.lm_proj {
            Some(p) => {
                let _s = scope("lm_proj");
                p.forward(tokens)?
            }
            None => tokens.clone(),
        };
        let pooled = match mask {
            Some(m) => {
                let mf = Var::constant(m.to_dtype(c.dtype())?);
                let num = mf.unsqueeze(-1)?.mul(&c)?.sum(&[1], false)?;
                num.div(&mf.sum(&[1], true)?)?
            }
            None => c.mean(&[1], false)?,
        };
        let cond_emb = match &self.cond_emb {
            Some(l) => {
                let _s = scope("cond_emb");
                Some(l.forward(&pooled)?)
            }
            None => None,
        };
        let mask = if self.masked_cross_attention { mask.cloned() } else { None };
        Ok(CondState { cond_emb, tokens: Some(c), mask })
    }

    /// Class labels (i64 [B], `num_classes` = null class) → a one-token sequence [B, 1, d_lm].
    pub fn class_tokens(&self, labels: &Tensor) -> Result<Var> {
        let e = self
            .class_emb
            .as_ref()
            .ok_or_else(|| input_err("conditioning", "the model has no class embedding (num_classes = 0)"))?;
        let _s = scope("class_emb");
        Ok(e.forward(&labels.reshape(&[labels.numel(), 1])?)?)
    }

    /// Time embedding of this level: temb(t) + pooled text + Σ micro.
    fn time_embedding(&self, times: &Tensor, cond: &CondState, micros: &Micros) -> Result<Var> {
        let mlp = EmbeddingMlp { layer1: self.temb_layer1.clone(), layer2: self.temb_layer2.clone() };
        let mut temb = mlp.forward(times, ["temb_layer1", "temb_layer2"])?;
        if let Some(e) = &cond.cond_emb {
            temb = temb.add(e)?;
        }
        for layer in &self.cond_layers {
            temb = temb.add(&layer.forward(micros.get(&layer.key), times.numel())?)?;
        }
        Ok(temb)
    }

    /// Denoising pass (spec §3.2–3.3). `images` high → low (one per level from here down);
    /// `x_feat` is the feature map handed down by a parent level. Returns the predictions
    /// (high → low) and the final decoder features (before the output head).
    pub fn forward_denoising(
        &self,
        images: &[Var],
        times: &Tensor,
        cond: &CondState,
        micros: &Micros,
        x_feat: Option<&Var>,
    ) -> Result<(Vec<Var>, Var)> {
        let temb = self.time_embedding(times, cond, micros)?;
        let z = &images[0];
        let z = if self.normalize_input {
            let _s = scope("normalize_input");
            z.div(&z.var(&[1, 2, 3], 1, true)?.sqrt()?)?
        } else {
            z.clone()
        };
        let mut x = {
            let _s = scope("conv_in");
            self.conv_in.forward(&z)?
        };
        if let Some(f) = x_feat {
            x = x.add(f)?;
        }
        let (tokens, mask) = (cond.tokens.as_ref(), cond.mask.as_ref());
        let mut skips = vec![x.clone()];
        for (i, b) in self.down_blocks.iter().enumerate() {
            let _s = scope(format!("down_blocks.{i}"));
            let (y, acts) = b.forward(&x, &temb, None, tokens, mask)?;
            x = y;
            skips.extend(acts);
        }
        let mut lower = vec![];
        if let (Some(inner), Some(ia), Some(oa)) = (&self.inner_unet, &self.in_adapter, &self.out_adapter) {
            let f = {
                let _s = scope("in_adapter");
                ia.forward(&x)?
            };
            let (preds, feats) = {
                let _s = scope("inner_unet");
                inner.forward_denoising(&images[1..], times, cond, micros, Some(&f))?
            };
            let back = {
                let _s = scope("out_adapter");
                oa.forward(&feats)?
            };
            x = x.add(&back)?;
            lower = preds;
        } else {
            for (i, b) in self.mid_blocks.iter().enumerate() {
                let _s = scope(format!("mid_blocks.{i}"));
                x = b.forward(&x, &temb, None, tokens, mask)?.0;
            }
        }
        for (u, b) in self.up_blocks.iter().enumerate() {
            let _s = scope(format!("up_blocks.{u}"));
            x = b.forward(&x, &temb, Some(&mut skips), tokens, mask)?.0;
        }
        let out = {
            let h = {
                let _s = scope("norm_out");
                self.norm_out.forward(&x)?.silu()?
            };
            let _s = scope("conv_out");
            self.conv_out.forward(&h)?
        };
        let mut preds = vec![out];
        preds.extend(lower);
        Ok((preds, x))
    }
}

impl Module for UNet {
    // PyTorch registration order (UNet.__init__, then NestedUNet's inner_unet and adapters).
    fn visit(&self, prefix: &str, f: &mut dyn FnMut(&str, &Param)) {
        self.temb_layer1.visit(&join(prefix, "temb_layer1"), f);
        self.temb_layer2.visit(&join(prefix, "temb_layer2"), f);
        self.cond_emb.visit(&join(prefix, "cond_emb"), f);
        for l in &self.cond_layers {
            l.visit(&join(prefix, &format!("cond_layers.{}", l.key)), f);
        }
        self.conv_in.visit(&join(prefix, "conv_in"), f);
        self.down_blocks.visit(&join(prefix, "down_blocks"), f);
        self.mid_blocks.visit(&join(prefix, "mid_blocks"), f);
        self.up_blocks.visit(&join(prefix, "up_blocks"), f);
        self.norm_out.visit(&join(prefix, "norm_out"), f);
        self.conv_out.visit(&join(prefix, "conv_out"), f);
        self.lm_proj.visit(&join(prefix, "lm_proj"), f);
        self.class_emb.visit(&join(prefix, "class_emb"), f);
        if let Some(u) = &self.inner_unet {
            u.visit(&join(prefix, "inner_unet"), f);
        }
        self.in_adapter.visit(&join(prefix, "in_adapter"), f);
        self.out_adapter.visit(&join(prefix, "out_adapter"), f);
    }
    fn visit_mut(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        self.temb_layer1.visit_mut(&join(prefix, "temb_layer1"), f);
        self.temb_layer2.visit_mut(&join(prefix, "temb_layer2"), f);
        self.cond_emb.visit_mut(&join(prefix, "cond_emb"), f);
        for l in &mut self.cond_layers {
            l.visit_mut(&join(prefix, &format!("cond_layers.{}", l.key)), f);
        }
        self.conv_in.visit_mut(&join(prefix, "conv_in"), f);
        self.down_blocks.visit_mut(&join(prefix, "down_blocks"), f);
        self.mid_blocks.visit_mut(&join(prefix, "mid_blocks"), f);
        self.up_blocks.visit_mut(&join(prefix, "up_blocks"), f);
        self.norm_out.visit_mut(&join(prefix, "norm_out"), f);
        self.conv_out.visit_mut(&join(prefix, "conv_out"), f);
        self.lm_proj.visit_mut(&join(prefix, "lm_proj"), f);
        self.class_emb.visit_mut(&join(prefix, "class_emb"), f);
        if let Some(u) = &mut self.inner_unet {
            u.visit_mut(&join(prefix, "inner_unet"), f);
        }
        self.in_adapter.visit_mut(&join(prefix, "in_adapter"), f);
        self.out_adapter.visit_mut(&join(prefix, "out_adapter"), f);
    }
    fn set_training(&mut self, training: bool) {
        for b in self.down_blocks.iter_mut().chain(&mut self.mid_blocks).chain(&mut self.up_blocks) {
            b.set_training(training);
        }
        if let Some(u) = &mut self.inner_unet {
            u.set_training(training);
        }
    }
}
