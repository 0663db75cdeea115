//! Model configuration (TOML, via serde) with validation that names the offending field.
//!
//! A [`ModelConfig`] holds the text/class conditioning widths and the outermost [`UNetConfig`];
//! a nested (Matryoshka) model puts the next-lower resolution level in `inner`, recursively
//! (spec §3.3, §3.5). Lists are per resolution level (index 0 = highest resolution of that level)
//! and must have exactly one entry per level (ml-mdm's single-value broadcast is not accepted, so a
//! missing entry cannot go unnoticed).

use crate::error::ConfigError;
use serde::{Deserialize, Serialize};
use std::path::Path;

fn default_image_channels() -> usize {
    3
}
fn default_groups() -> usize {
    32
}

/// The whole model: image channels, text/class conditioning, and the outermost UNet level.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Channels of every input/output image (3).
    #[serde(default = "default_image_channels")]
    pub image_channels: usize,
    /// Width d_lm of the conditioning tokens (the text encoder's output); 0 = unconditional.
    #[serde(default)]
    pub conditioning_feature_dim: usize,
    /// Extension (not in ml-mdm): number of class labels. > 0 adds `class_emb` (a table of
    /// `num_classes + 1` rows of width d_lm; the last row is the null class) at the innermost
    /// level; a label becomes a one-token sequence [B, 1, d_lm] used like text.
    #[serde(default)]
    pub num_classes: usize,
    /// The outermost (highest-resolution) level.
    pub unet: UNetConfig,
}

/// One micro-conditioning input (ml-mdm's `micro_conditioning = "key:default"`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MicroCondition {
    pub key: String,
    pub default: f64,
}

/// One UNet level (ml-mdm's `UNetConfig` / `NestedUNetConfig`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UNetConfig {
    /// Channels ch_i per resolution (multiples of `num_groups_norm`; of 32 where attention runs).
    pub resolution_channels: Vec<usize>,
    /// ResNets per resolution in the encoder (the decoder has one more).
    pub num_resnets_per_resolution: Vec<usize>,
    /// Resolution indices with attention (+ cross-attention when conditioned).
    #[serde(default)]
    pub attention_levels: Vec<usize>,
    /// Attention blocks after each ResNet, per resolution (read only at `attention_levels`).
    #[serde(default)]
    pub num_attention_layers: Vec<usize>,
    /// Time-embedding width D_t (default 4·ch_0); equal across nested levels, a multiple of 8.
    #[serde(default)]
    pub temporal_dim: Option<usize>,
    /// GroupNorm groups of the ResNets and the output head.
    #[serde(default = "default_groups")]
    pub num_groups_norm: usize,
    /// ResNet dropout probability.
    #[serde(default)]
    pub dropout: f64,
    /// Residual FFN after each attention block.
    #[serde(default)]
    pub use_attention_ffn: bool,
    /// Default: true for nested levels (must stay true there), false for the innermost.
    #[serde(default)]
    pub skip_mid_blocks: Option<bool>,
    /// Default: true for nested levels (must stay true there), false for the innermost.
    #[serde(default)]
    pub skip_cond_emb: Option<bool>,
    /// Nested levels only: when false (the default) the level's input image is divided by its
    /// per-sample unbiased std over (C, H, W).
    #[serde(default)]
    pub skip_normalization: Option<bool>,
    /// Innermost only: project the text tokens to this width first (0 = no projection).
    #[serde(default)]
    pub conditioning_feature_proj_dim: usize,
    /// Innermost only: pass the token mask to cross-attention (default true, as ml-mdm; the
    /// released models use false).
    #[serde(default)]
    pub masked_cross_attention: Option<bool>,
    /// Extra 1-D transformer blocks on the text (must be 0: not supported).
    #[serde(default)]
    pub num_lm_head_layers: usize,
    /// Micro-conditioning inputs; each adds its own embedding MLP (`cond_layers.<key>`).
    #[serde(default)]
    pub micro_conditioning: Vec<MicroCondition>,
    /// The next-lower resolution level (makes this level a NestedUNet).
    #[serde(default)]
    pub inner: Option<Box<UNetConfig>>,
}

impl UNetConfig {
    /// Number of resolutions of this level.
    pub fn num_levels(&self) -> usize {
        self.resolution_channels.len()
    }
    /// True when this level wraps an inner level.
    pub fn is_nested(&self) -> bool {
        self.inner.is_some()
    }
    /// D_t.
    pub fn temporal_dim(&self) -> usize {
        self.temporal_dim.unwrap_or(4 * self.resolution_channels.first().copied().unwrap_or(0))
    }
    /// Whether the middle blocks exist.
    pub fn has_mid_blocks(&self) -> bool {
        !self.skip_mid_blocks.unwrap_or(self.is_nested())
    }
    /// Whether `cond_emb` may exist at this level (innermost, not skipped).
    pub fn uses_cond_emb(&self) -> bool {
        !self.skip_cond_emb.unwrap_or(self.is_nested())
    }
    /// Whether the input is divided by its std (nested levels without `skip_normalization`).
    pub fn normalizes_input(&self) -> bool {
        self.is_nested() && !self.skip_normalization.unwrap_or(false)
    }
    /// Whether the token mask is used by cross-attention.
    pub fn masks_cross_attention(&self) -> bool {
        self.masked_cross_attention.unwrap_or(true)
    }
    /// Attention blocks per ResNet at resolution `i`.
    pub fn attention_layers_at(&self, i: usize) -> usize {
        if self.attention_levels.contains(&i) {
            self.num_attention_layers.get(i).copied().unwrap_or(0)
        } else {
            0
        }
    }
}

impl ModelConfig {
    /// Parses TOML (`source_name` names it in errors) and validates.
    pub fn from_toml_str(text: &str, source_name: &str) -> Result<Self, ConfigError> {
        let cfg: ModelConfig = toml::from_str(text)
            .map_err(|e| ConfigError::Parse { source_name: source_name.to_string(), msg: e.to_string() })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Reads, parses and validates a TOML file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let p = path.as_ref();
        let text = std::fs::read_to_string(p)
            .map_err(|e| ConfigError::Io { path: p.display().to_string(), msg: e.to_string() })?;
        Self::from_toml_str(&text, &p.display().to_string())
    }

    /// Serialises to TOML.
    pub fn to_toml(&self) -> Result<String, ConfigError> {
        toml::to_string(self)
            .map_err(|e| ConfigError::Parse { source_name: "to_toml".into(), msg: e.to_string() })
    }

    /// The levels, outermost first.
    pub fn levels(&self) -> Vec<&UNetConfig> {
        let mut out = vec![&self.unet];
        while let Some(inner) = &out[out.len() - 1].inner {
            out.push(inner);
        }
        out
    }

    /// The innermost (lowest-resolution, full) UNet.
    pub fn innermost(&self) -> &UNetConfig {
        let levels = self.levels();
        levels[levels.len() - 1]
    }

    /// Width d_c of the tokens seen by cross-attention and `cond_emb` (the projection width if
    /// any, else d_lm; 0 = unconditional).
    pub fn cond_dim(&self) -> usize {
        let p = self.innermost().conditioning_feature_proj_dim;
        if self.conditioning_feature_dim > 0 && p > 0 { p } else { self.conditioning_feature_dim }
    }

    /// Checks every constraint of the architecture; the error names the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.image_channels == 0 {
            return Err(ConfigError::invalid("image_channels", "must be > 0"));
        }
        if self.num_classes > 0 && self.conditioning_feature_dim == 0 {
            return Err(ConfigError::invalid(
                "num_classes",
                "class conditioning needs conditioning_feature_dim > 0 (the class embedding width)",
            ));
        }
        let levels = self.levels();
        let d_t = self.unet.temporal_dim();
        let mut path = "unet".to_string();
        for (depth, level) in levels.iter().enumerate() {
            let innermost = depth + 1 == levels.len();
            validate_level(level, &path, innermost, self.conditioning_feature_dim)?;
            if level.temporal_dim() != d_t {
                return Err(ConfigError::invalid(
                    format!("{path}.temporal_dim"),
                    format!(
                        "{} differs from the outermost level's {d_t}: every nested level adds the same pooled-text embedding to its time embedding, so all must match",
                        level.temporal_dim()
                    ),
                ));
            }
            path.push_str(".inner");
        }
        Ok(())
    }
}

fn validate_level(c: &UNetConfig, p: &str, innermost: bool, d_lm: usize) -> Result<(), ConfigError> {
    let f = |name: &str| format!("{p}.{name}");
    let l = c.num_levels();
    if l == 0 {
        return Err(ConfigError::invalid(f("resolution_channels"), "needs at least one level"));
    }
    if c.num_groups_norm == 0 {
        return Err(ConfigError::invalid(f("num_groups_norm"), "must be > 0"));
    }
    for (i, &ch) in c.resolution_channels.iter().enumerate() {
        if ch == 0 || !ch.is_multiple_of(c.num_groups_norm) {
            return Err(ConfigError::invalid(
                format!("{p}.resolution_channels[{i}]"),
                format!("{ch} is not a positive multiple of num_groups_norm = {}", c.num_groups_norm),
            ));
        }
    }
    if c.num_resnets_per_resolution.len() != l {
        return Err(ConfigError::invalid(
            f("num_resnets_per_resolution"),
            format!(
                "has {} entries but resolution_channels has {l} levels",
                c.num_resnets_per_resolution.len()
            ),
        ));
    }
    if let Some(i) = c.num_resnets_per_resolution.iter().position(|&n| n == 0) {
        return Err(ConfigError::invalid(format!("{p}.num_resnets_per_resolution[{i}]"), "must be >= 1"));
    }
    for (k, &a) in c.attention_levels.iter().enumerate() {
        if a >= l {
            return Err(ConfigError::invalid(
                format!("{p}.attention_levels[{k}]"),
                format!("level {a} does not exist ({l} levels)"),
            ));
        }
        if c.attention_levels[..k].contains(&a) {
            return Err(ConfigError::invalid(
                format!("{p}.attention_levels[{k}]"),
                format!("level {a} repeated"),
            ));
        }
    }
    if !(c.attention_levels.is_empty() && c.num_attention_layers.is_empty())
        && c.num_attention_layers.len() != l
    {
        return Err(ConfigError::invalid(
            f("num_attention_layers"),
            format!("has {} entries but resolution_channels has {l} levels", c.num_attention_layers.len()),
        ));
    }
    let attn_groups = nn::layers::attention::ATTENTION_GROUPS;
    for i in 0..l {
        let ch = c.resolution_channels[i];
        if c.attention_layers_at(i) > 0 && !ch.is_multiple_of(attn_groups) {
            return Err(ConfigError::invalid(
                format!("{p}.resolution_channels[{i}]"),
                format!(
                    "{ch} channels at an attention level must be a multiple of {attn_groups} (attention GroupNorm groups)"
                ),
            ));
        }
    }
    if let Some(d) = c.temporal_dim
        && (d == 0 || !d.is_multiple_of(8))
    {
        return Err(ConfigError::invalid(f("temporal_dim"), format!("{d} must be a positive multiple of 8")));
    }
    if !(0.0..1.0).contains(&c.dropout) {
        return Err(ConfigError::invalid(f("dropout"), format!("{} must be in [0, 1)", c.dropout)));
    }
    for (k, m) in c.micro_conditioning.iter().enumerate() {
        if m.key.is_empty() || m.key.contains('.') {
            return Err(ConfigError::invalid(
                format!("{p}.micro_conditioning[{k}].key"),
                format!("{:?} must be non-empty and contain no '.'", m.key),
            ));
        }
        if c.micro_conditioning[..k].iter().any(|o| o.key == m.key) {
            return Err(ConfigError::invalid(
                format!("{p}.micro_conditioning[{k}].key"),
                format!("{:?} repeated", m.key),
            ));
        }
        if !(m.default.is_finite() && m.default > 0.0) {
            return Err(ConfigError::invalid(
                format!("{p}.micro_conditioning[{k}].default"),
                format!("{} must be finite and > 0", m.default),
            ));
        }
    }
    if c.num_lm_head_layers != 0 {
        return Err(ConfigError::invalid(
            f("num_lm_head_layers"),
            "text-side transformer blocks are not supported (0 in every released config)",
        ));
    }
    if innermost {
        if c.has_mid_blocks() && !c.resolution_channels[l - 1].is_multiple_of(attn_groups) {
            return Err(ConfigError::invalid(
                format!("{p}.resolution_channels[{}]", l - 1),
                format!("the middle attention block needs a multiple of {attn_groups} channels"),
            ));
        }
        if c.skip_normalization.is_some() {
            return Err(ConfigError::invalid(
                f("skip_normalization"),
                "only nested levels normalise their input",
            ));
        }
        if c.conditioning_feature_proj_dim > 0 && d_lm == 0 {
            return Err(ConfigError::invalid(
                f("conditioning_feature_proj_dim"),
                "projection needs conditioning_feature_dim > 0",
            ));
        }
    } else {
        if c.skip_mid_blocks == Some(false) {
            return Err(ConfigError::invalid(
                f("skip_mid_blocks"),
                "a nested level runs its inner UNet instead of middle blocks; must be true",
            ));
        }
        if c.skip_cond_emb == Some(false) {
            return Err(ConfigError::invalid(
                f("skip_cond_emb"),
                "only the innermost level owns cond_emb; must be true",
            ));
        }
        if c.conditioning_feature_proj_dim != 0 {
            return Err(ConfigError::invalid(
                f("conditioning_feature_proj_dim"),
                "only the innermost level projects the text",
            ));
        }
        if c.masked_cross_attention.is_some() {
            return Err(ConfigError::invalid(f("masked_cross_attention"), "set it on the innermost level"));
        }
    }
    Ok(())
}
