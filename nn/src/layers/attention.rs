//! ml-mdm's spatial `SelfAttention` block (MDM spec §3.1): GroupNorm(32) → 1×1 qkv conv → 8
//! channel-split heads → self-attention over the H·W tokens, plus optional cross-attention of the
//! same queries on conditioning tokens (summed with the self-attention result; both run as one
//! [`Var::dual_attention`] node) → zero-init 1×1 projection → residual, then an optional residual
//! FFN.
//!
//! Parameter names follow ml-mdm's state dict: `norm`, `qkv`, `norm_cond`, `kv_cond`, `proj_out`,
//! `ffn.0` (GroupNorm), `ffn.1` (1×1 conv C→4C), `ffn.3` (zero-init 1×1 conv 4C→C).
//!
//! Scaling: ml-mdm multiplies q and k each by `(C/8)^(-1/4)` before the dot product. Here the
//! unscaled q and k go to [`Var::attention`] with `scale = 1/√(C/8)`, which is the same number
//! (`(q·s)ᵀ(k·s) = s²·qᵀk`) up to rounding, and saves two elementwise passes.

use crate::{Conv2d, GroupNorm, Init, LayerNorm, Linear, Module, Param, Result, join};
use autograd::{Var, scope};
use tensor::{Conv2dOptions, Tensor};

/// GroupNorm groups of the attention and FFN norms (hard-coded to 32 in ml-mdm).
pub const ATTENTION_GROUPS: usize = 32;
/// Heads of the spatial attention block (ml-mdm's default `num_heads`).
pub const ATTENTION_HEADS: usize = 8;

/// The residual FFN of an attention block: `x + ffn.3(GELU(ffn.1(ffn.0(x))))`.
#[derive(Clone, Debug)]
pub struct AttentionFfn {
    /// `ffn.0`: GroupNorm(32, C).
    pub norm: GroupNorm,
    /// `ffn.1`: 1×1 conv C → 4C.
    pub fc1: Conv2d,
    /// `ffn.3`: zero-init 1×1 conv 4C → C (index 2 is the parameter-free GELU).
    pub fc2: Conv2d,
}

impl AttentionFfn {
    /// Builds the FFN for `channels` (a multiple of 32).
    pub fn new(init: &mut Init, channels: usize) -> Result<Self> {
        Ok(Self {
            norm: GroupNorm::new(init, ATTENTION_GROUPS, channels)?,
            fc1: Conv2d::pointwise(init, channels, 4 * channels),
            fc2: Conv2d::zeros(init, 4 * channels, channels, 1, Conv2dOptions::default(), true),
        })
    }

    /// The residual branch only (without adding `x`).
    pub fn branch(&self, x: &Var) -> Result<Var> {
        let h = {
            let _s = scope("0");
            self.norm.forward(x)?
        };
        let h = {
            let _s = scope("1");
            self.fc1.forward(&h)?
        };
        let h = {
            let _s = scope("2");
            h.gelu()?
        };
        let _s = scope("3");
        self.fc2.forward(&h)
    }
}

impl Module for AttentionFfn {
    fn visit(&self, prefix: &str, f: &mut dyn FnMut(&str, &Param)) {
        self.norm.visit(&join(prefix, "0"), f);
        self.fc1.visit(&join(prefix, "1"), f);
        self.fc2.visit(&join(prefix, "3"), f);
    }
    fn visit_mut(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        self.norm.visit_mut(&join(prefix, "0"), f);
        self.fc1.visit_mut(&join(prefix, "1"), f);
        self.fc2.visit_mut(&join(prefix, "3"), f);
    }
}

/// ml-mdm's `SelfAttention` with optional cross-attention and FFN.
#[derive(Clone, Debug)]
pub struct SelfAttention {
    pub norm: GroupNorm,
    pub qkv: Conv2d,
    /// LayerNorm over the conditioning width (cross-attention only).
    pub norm_cond: Option<LayerNorm>,
    /// Linear d_c → 2C: first C outputs are keys, next C values (cross-attention only).
    pub kv_cond: Option<Linear>,
    pub proj_out: Conv2d,
    pub ffn: Option<AttentionFfn>,
    pub channels: usize,
    pub heads: usize,
}

impl Module for SelfAttention {
    // PyTorch registration order: norm, qkv, norm_cond, kv_cond, proj_out, ffn.
    fn visit(&self, prefix: &str, f: &mut dyn FnMut(&str, &Param)) {
        self.norm.visit(&join(prefix, "norm"), f);
        self.qkv.visit(&join(prefix, "qkv"), f);
        self.norm_cond.visit(&join(prefix, "norm_cond"), f);
        self.kv_cond.visit(&join(prefix, "kv_cond"), f);
        self.proj_out.visit(&join(prefix, "proj_out"), f);
        self.ffn.visit(&join(prefix, "ffn"), f);
    }
    fn visit_mut(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        self.norm.visit_mut(&join(prefix, "norm"), f);
        self.qkv.visit_mut(&join(prefix, "qkv"), f);
        self.norm_cond.visit_mut(&join(prefix, "norm_cond"), f);
        self.kv_cond.visit_mut(&join(prefix, "kv_cond"), f);
        self.proj_out.visit_mut(&join(prefix, "proj_out"), f);
        self.ffn.visit_mut(&join(prefix, "ffn"), f);
    }
}

impl SelfAttention {
    /// `channels` C (a multiple of 32 and of the 8 heads); `cond_dim` d_c > 0 enables
    /// cross-attention; `use_ffn` adds the residual FFN. Errors name the offending number.
    pub fn new(init: &mut Init, channels: usize, cond_dim: usize, use_ffn: bool) -> Result<Self> {
        if channels == 0 || !channels.is_multiple_of(ATTENTION_HEADS) {
            return Err(crate::Error::Config(format!(
                "SelfAttention: {channels} channels are not divisible into {ATTENTION_HEADS} heads"
            )));
        }
        let norm = GroupNorm::new(init, ATTENTION_GROUPS, channels)?;
        let qkv = Conv2d::pointwise(init, channels, 3 * channels);
        let (norm_cond, kv_cond) = if cond_dim > 0 {
            (Some(LayerNorm::new(init, cond_dim)), Some(Linear::new(init, cond_dim, 2 * channels, true)))
        } else {
            (None, None)
        };
        let proj_out = Conv2d::zeros(init, channels, channels, 1, Conv2dOptions::default(), true);
        let ffn = if use_ffn { Some(AttentionFfn::new(init, channels)?) } else { None };
        Ok(Self { norm, qkv, norm_cond, kv_cond, proj_out, ffn, channels, heads: ATTENTION_HEADS })
    }

    /// Conditioning width d_c (0 without cross-attention).
    pub fn cond_dim(&self) -> usize {
        self.norm_cond.as_ref().map_or(0, |n| n.weight.value().numel())
    }

    /// Head width C/8.
    pub fn head_dim(&self) -> usize {
        self.channels / self.heads
    }

    /// [B, C, T] (channel-split heads) → [B, heads, T, C/heads].
    fn split_heads(&self, x: &Var) -> Result<Var> {
        let (b, c, t) = (x.shape()[0], x.shape()[1], x.shape()[2]);
        Ok(x.reshape(&[b, self.heads, c / self.heads, t])?.permute(&[0, 1, 3, 2])?)
    }

    /// `x` [B, C, H, W]; `cond` [B, L, d_c] is required iff the block has cross-attention;
    /// `cond_mask` (u8 [B, L], nonzero = real token) masks the cross-attention keys.
    pub fn forward(&self, x: &Var, cond: Option<&Var>, cond_mask: Option<&Tensor>) -> Result<Var> {
        let s = x.shape().to_vec();
        if s.len() != 4 || s[1] != self.channels {
            return Err(tensor::Error::ShapeMismatch {
                op: "SelfAttention input x [B, C, H, W]",
                lhs: s,
                rhs: vec![0, self.channels, 0, 0],
            }
            .into());
        }
        let (b, c, t) = (s[0], s[1], s[2] * s[3]);
        let n = {
            let _s = scope("norm");
            self.norm.forward(x)?
        };
        let qkv = {
            let _s = scope("qkv");
            self.qkv.forward(&n)?
        };
        let qkv = qkv.reshape(&[b, 3 * c, t])?;
        let q = self.split_heads(&qkv.narrow(1, 0, c)?)?;
        let k = self.split_heads(&qkv.narrow(1, c, c)?)?;
        let v = self.split_heads(&qkv.narrow(1, 2 * c, c)?)?;
        let scale = 1.0 / (self.head_dim() as f64).sqrt();
        let h = if let (Some(norm_cond), Some(kv_cond)) = (&self.norm_cond, &self.kv_cond) {
            let cond = cond.ok_or_else(|| tensor::Error::InvalidArgument {
                op: "SelfAttention.forward",
                msg: format!(
                    "the block has cross-attention (d_c = {}) but no conditioning `cond` was given",
                    self.cond_dim()
                ),
            })?;
            let cs = cond.shape();
            if cs.len() != 3 || cs[0] != b || cs[2] != self.cond_dim() {
                return Err(tensor::Error::ShapeMismatch {
                    op: "SelfAttention cond [B, L, d_c]",
                    lhs: cs.to_vec(),
                    rhs: vec![b, cs.get(1).copied().unwrap_or(0), self.cond_dim()],
                }
                .into());
            }
            let cn = {
                let _s = scope("norm_cond");
                norm_cond.forward(cond)?
            };
            let kv = {
                let _s = scope("kv_cond");
                kv_cond.forward(&cn)?
            };
            // [B, L, 2C] → [B, 2C, L]: channels [0, C) keys, [C, 2C) values, heads split as in qkv.
            let kv = kv.transpose(1, 2)?;
            let kc = self.split_heads(&kv.narrow(1, 0, c)?)?;
            let vc = self.split_heads(&kv.narrow(1, c, c)?)?;
            // Self- and cross-attention of the same queries, two softmaxes, summed: one fused op.
            Var::dual_attention(&q, &k, &v, None, &kc, &vc, cond_mask, scale)?
        } else {
            Var::attention(&q, &k, &v, None, scale)?
        };
        // [B, heads, T, C/heads] → [B, C, H, W]
        let h = h.permute(&[0, 1, 3, 2])?.reshape(&[b, c, s[2], s[3]])?;
        let h = {
            let _s = scope("proj_out");
            self.proj_out.forward(&h)?
        };
        let out = x.add(&h)?;
        match &self.ffn {
            Some(ffn) => {
                let r = {
                    let _s = scope("ffn");
                    ffn.branch(&out)?
                };
                Ok(out.add(&r)?)
            }
            None => Ok(out),
        }
    }
}
