//! The block structure of one UNet level (channel bookkeeping of spec §3.2), derived from the
//! config alone. The builder and the allocation-free parameter count both walk this plan.

use crate::config::UNetConfig;

/// Resampling at the end of a resolution block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resample {
    None,
    /// Stride-2 3×3 conv.
    Down,
    /// Nearest ×2 then 3×3 conv.
    Up,
}

/// One ResNet: input and output channels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResNetPlan {
    pub in_ch: usize,
    pub out_ch: usize,
}

/// One resolution block (ml-mdm's `ResNetBlock`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockPlan {
    pub resnets: Vec<ResNetPlan>,
    /// Attention blocks after each ResNet.
    pub attn_per_resnet: usize,
    /// Cross-attention width d_c of those blocks (0 = self-attention only).
    pub cross_dim: usize,
    pub ffn: bool,
    pub resample: Resample,
}

impl BlockPlan {
    /// Output channels of the block.
    pub fn out_ch(&self) -> usize {
        self.resnets.last().map_or(0, |r| r.out_ch)
    }
}

/// Blocks of one UNet level.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LevelPlan {
    pub down: Vec<BlockPlan>,
    /// The two middle blocks (ResNet + attention, then ResNet), if present.
    pub mid: Vec<BlockPlan>,
    /// Decoder blocks, lowest resolution first (`up_blocks.0`).
    pub up: Vec<BlockPlan>,
    /// Skip channels in production order (conv_in output first).
    pub skips: Vec<usize>,
}

/// Plans a level; `cond_dim` is d_c (cross-attention at attention levels when > 0).
pub fn plan_level(c: &UNetConfig, cond_dim: usize) -> LevelPlan {
    let ch = &c.resolution_channels;
    let l = ch.len();
    let mut channels = ch[0];
    let mut skips = vec![channels];
    let mut down = Vec::with_capacity(l);
    for (i, &ch_i) in ch.iter().enumerate() {
        let mut resnets = vec![];
        for _ in 0..c.num_resnets_per_resolution[i] {
            resnets.push(ResNetPlan { in_ch: channels, out_ch: ch_i });
            skips.push(ch_i);
            channels = ch_i;
        }
        if i != l - 1 {
            skips.push(ch_i);
        }
        let attn = c.attention_layers_at(i);
        down.push(BlockPlan {
            resnets,
            attn_per_resnet: attn,
            cross_dim: if c.attention_levels.contains(&i) { cond_dim } else { 0 },
            ffn: c.use_attention_ffn,
            resample: if i != l - 1 { Resample::Down } else { Resample::None },
        });
    }
    let produced = skips.clone();
    let mid = if c.has_mid_blocks() {
        let r = ResNetPlan { in_ch: channels, out_ch: channels };
        vec![
            BlockPlan {
                resnets: vec![r],
                attn_per_resnet: 1,
                cross_dim: cond_dim,
                ffn: c.use_attention_ffn,
                resample: Resample::None,
            },
            BlockPlan {
                resnets: vec![r],
                attn_per_resnet: 0,
                cross_dim: 0,
                ffn: false,
                resample: Resample::None,
            },
        ]
    } else {
        vec![]
    };
    let mut up = Vec::with_capacity(l);
    for i in (0..l).rev() {
        let mut resnets = vec![];
        for _ in 0..=c.num_resnets_per_resolution[i] {
            let skip = skips.pop().expect("one skip per decoder ResNet (checked by construction)");
            resnets.push(ResNetPlan { in_ch: channels + skip, out_ch: ch[i] });
            channels = ch[i];
        }
        up.push(BlockPlan {
            resnets,
            attn_per_resnet: c.attention_layers_at(i),
            cross_dim: if c.attention_levels.contains(&i) { cond_dim } else { 0 },
            ffn: c.use_attention_ffn,
            resample: if i != 0 { Resample::Up } else { Resample::None },
        });
    }
    LevelPlan { down, mid, up, skips: produced }
}
