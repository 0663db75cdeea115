//! Parameter count from the configuration alone (no tensors): the same plan as the builder, with
//! each layer's parameter formula.

use crate::config::{ModelConfig, UNetConfig};
use crate::model::plan::{BlockPlan, Resample, plan_level};

fn linear(i: usize, o: usize, bias: bool) -> usize {
    i * o + if bias { o } else { 0 }
}
fn conv(i: usize, o: usize, k: usize) -> usize {
    i * o * k * k + o
}
fn norm(c: usize) -> usize {
    2 * c
}

/// A ResNet in → out with time-embedding width `d_t`.
pub fn resnet_params(in_ch: usize, out_ch: usize, d_t: usize) -> usize {
    norm(in_ch)
        + conv(in_ch, out_ch, 3)
        + linear(d_t, 2 * out_ch, true)
        + norm(out_ch)
        + conv(out_ch, out_ch, 3)
        + if in_ch != out_ch { conv(in_ch, out_ch, 1) } else { 0 }
}

/// An attention block of `c` channels, cross-attention width `cond_dim` (0 = none), optional FFN.
pub fn attention_params(c: usize, cond_dim: usize, ffn: bool) -> usize {
    let cross = if cond_dim > 0 { norm(cond_dim) + linear(cond_dim, 2 * c, true) } else { 0 };
    let f = if ffn { norm(c) + conv(c, 4 * c, 1) + conv(4 * c, c, 1) } else { 0 };
    norm(c) + conv(c, 3 * c, 1) + cross + conv(c, c, 1) + f
}

fn block_params(b: &BlockPlan, d_t: usize) -> usize {
    let res: usize = b.resnets.iter().map(|r| resnet_params(r.in_ch, r.out_ch, d_t)).sum();
    let attn: usize =
        b.resnets.iter().map(|r| b.attn_per_resnet * attention_params(r.out_ch, b.cross_dim, b.ffn)).sum();
    let resample = match b.resample {
        Resample::None => 0,
        Resample::Down | Resample::Up => conv(b.out_ch(), b.out_ch(), 3),
    };
    res + attn + resample
}

fn level_params(m: &ModelConfig, c: &UNetConfig, innermost: bool) -> usize {
    let d_t = c.temporal_dim();
    let d_c = m.cond_dim();
    let ch0 = c.resolution_channels[0];
    let mlp = linear(d_t / 4, d_t, true) + linear(d_t, d_t, true);
    let mut n = mlp * (1 + c.micro_conditioning.len());
    if innermost && c.uses_cond_emb() && d_c > 0 {
        n += linear(d_c, d_t, false);
    }
    n += conv(m.image_channels, ch0, 3) + norm(ch0) + conv(ch0, m.image_channels, 3);
    let plan = plan_level(c, d_c);
    n += plan.down.iter().chain(&plan.mid).chain(&plan.up).map(|b| block_params(b, d_t)).sum::<usize>();
    if innermost {
        if c.conditioning_feature_proj_dim > 0 && m.conditioning_feature_dim > 0 {
            n += linear(m.conditioning_feature_dim, c.conditioning_feature_proj_dim, true);
        }
        if m.num_classes > 0 {
            n += (m.num_classes + 1) * m.conditioning_feature_dim;
        }
    }
    if let Some(inner) = &c.inner {
        let last = c.resolution_channels[c.num_levels() - 1];
        let inner0 = inner.resolution_channels[0];
        n += conv(last, inner0, 3) + conv(inner0, last, 3);
    }
    n
}

/// Total parameters of the model described by `config` (computed without building it).
pub fn count_params(config: &ModelConfig) -> usize {
    let levels = config.levels();
    levels.iter().enumerate().map(|(i, c)| level_params(config, c, i + 1 == levels.len())).sum()
}
