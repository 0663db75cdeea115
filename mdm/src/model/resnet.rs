//! ml-mdm's `ResNet` (spec §3.1) and `ResNetBlock` (one resolution level of an encoder or decoder).

use super::plan::{BlockPlan, Resample};
use crate::Result;
use autograd::{Var, scope};
use nn::{Conv2d, Downsample, Dropout, GroupNorm, Init, Linear, Module, Param, SelfAttention, Upsample};
use tensor::{Conv2dOptions, Tensor};

/// `out = skip(x) + conv2(Dropout(SiLU(GN(conv1(SiLU(GN(x))))·(1 + a) + b)))` with
/// `(a, b) = time_layer(SiLU(temb))` (first `out` rows scale a, next shift b); conv2 zero-init;
/// `skip` = 1×1 `conv3` when in ≠ out.
#[derive(Clone, Debug)]
pub struct ResNet {
    pub norm1: GroupNorm,
    pub conv1: Conv2d,
    pub time_layer: Linear,
    pub norm2: GroupNorm,
    pub dropout: Dropout,
    pub conv2: Conv2d,
    pub conv3: Option<Conv2d>,
}

nn::impl_module!(ResNet {
    params: [],
    children: [norm1, conv1, time_layer, norm2, dropout, conv2],
    optional: [conv3]
});

impl ResNet {
    /// in → out channels, GroupNorm `groups`, time width `d_t`, dropout `p` (seeded by `seed`).
    pub fn new(
        init: &mut Init,
        in_ch: usize,
        out_ch: usize,
        groups: usize,
        d_t: usize,
        p: f64,
        seed: u64,
    ) -> Result<Self> {
        Ok(Self {
            norm1: GroupNorm::new(init, groups, in_ch)?,
            conv1: Conv2d::same3x3(init, in_ch, out_ch),
            time_layer: Linear::new(init, d_t, 2 * out_ch, true),
            norm2: GroupNorm::new(init, groups, out_ch)?,
            dropout: Dropout::new(p, seed)?,
            conv2: Conv2d::zeros(
                init,
                out_ch,
                out_ch,
                3,
                Conv2dOptions { padding: [1, 1], ..Default::default() },
                true,
            ),
            conv3: (in_ch != out_ch).then(|| Conv2d::pointwise(init, in_ch, out_ch)),
        })
    }

    /// Output channels.
    pub fn out_ch(&self) -> usize {
        self.conv1.weight.value().shape()[0]
    }

    /// `x` [B, in, H, W], `temb` [B, D_t] → [B, out, H, W]. Both `GN → SiLU` and
    /// `GN → ·(1 + a) + b → SiLU` run as the fused [`Var::group_norm_silu`] (one read of the
    /// activation for the statistics and one for the output, no saved intermediates); equal to
    /// [`ResNet::forward_composed`] to rounding.
    pub fn forward(&self, x: &Var, temb: &Var) -> Result<Var> {
        self.forward_with(x, temb, true)
    }

    /// The same block with the epilogues composed from primitive ops (`group_norm`, `mul`, `add`,
    /// `silu`): the reference the fused [`ResNet::forward`] is tested against.
    pub fn forward_composed(&self, x: &Var, temb: &Var) -> Result<Var> {
        self.forward_with(x, temb, false)
    }

    fn forward_with(&self, x: &Var, temb: &Var, fused: bool) -> Result<Var> {
        let out = self.out_ch();
        let b = x.shape()[0];
        let gn_silu = |n: &GroupNorm, x: &Var, ss: Option<(&Var, &Var)>| -> Result<Var> {
            let (g, be) = (Some(n.weight.var()), Some(n.bias.var()));
            if fused {
                return Ok(x.group_norm_silu(n.groups, g, be, ss, n.eps)?);
            }
            let h = n.forward(x)?;
            let h = match ss {
                Some((a, sh)) => h.mul(&a.add_scalar(1.0)?)?.add(sh)?,
                None => h,
            };
            Ok(h.silu()?)
        };
        let h = {
            let _s = scope("norm1");
            gn_silu(&self.norm1, x, None)?
        };
        let h = {
            let _s = scope("conv1");
            self.conv1.forward(&h)?
        };
        let t = {
            let _s = scope("time_layer");
            self.time_layer.forward(&temb.silu()?)?
        };
        let a = t.narrow(1, 0, out)?.reshape(&[b, out, 1, 1])?;
        let sh = t.narrow(1, out, out)?.reshape(&[b, out, 1, 1])?;
        let h = {
            let _s = scope("norm2");
            gn_silu(&self.norm2, &h, Some((&a, &sh)))?
        };
        let h = {
            let _s = scope("dropout");
            self.dropout.forward(&h)?
        };
        let h = {
            let _s = scope("conv2");
            self.conv2.forward(&h)?
        };
        let skip = match &self.conv3 {
            Some(c) => {
                let _s = scope("conv3");
                c.forward(x)?
            }
            None => x.clone(),
        };
        Ok(skip.add(&h)?)
    }
}

/// The resampling layer of a block (parameters directly under `resample`).
#[derive(Clone, Debug)]
pub enum Resampler {
    Down(Downsample),
    Up(Upsample),
}

impl Module for Resampler {
    fn visit(&self, prefix: &str, f: &mut dyn FnMut(&str, &Param)) {
        match self {
            Resampler::Down(d) => d.visit(prefix, f),
            Resampler::Up(u) => u.visit(prefix, f),
        }
    }
    fn visit_mut(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        match self {
            Resampler::Down(d) => d.visit_mut(prefix, f),
            Resampler::Up(u) => u.visit_mut(prefix, f),
        }
    }
}

/// One resolution level: ResNets (each followed by `attn_per_resnet` attention blocks, stored
/// flat as `attn.{j·A+k}`), then an optional resample.
#[derive(Clone, Debug)]
pub struct ResNetBlock {
    pub resnets: Vec<ResNet>,
    pub attn: Vec<SelfAttention>,
    pub resample: Option<Resampler>,
    pub attn_per_resnet: usize,
}

nn::impl_module!(ResNetBlock { params: [], children: [resnets, attn], optional: [resample] });

impl ResNetBlock {
    /// Builds the block of `plan`; `seed` is advanced once per ResNet for its dropout stream.
    pub fn new(
        init: &mut Init,
        plan: &BlockPlan,
        groups: usize,
        d_t: usize,
        p: f64,
        seed: &mut u64,
    ) -> Result<Self> {
        let mut resnets = vec![];
        let mut attn = vec![];
        for r in &plan.resnets {
            *seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
            resnets.push(ResNet::new(init, r.in_ch, r.out_ch, groups, d_t, p, *seed)?);
            for _ in 0..plan.attn_per_resnet {
                attn.push(SelfAttention::new(init, r.out_ch, plan.cross_dim, plan.ffn)?);
            }
        }
        let c = plan.out_ch();
        let resample = match plan.resample {
            Resample::None => None,
            Resample::Down => Some(Resampler::Down(Downsample::new(init, c))),
            Resample::Up => Some(Resampler::Up(Upsample::new(init, c))),
        };
        Ok(Self { resnets, attn, resample, attn_per_resnet: plan.attn_per_resnet })
    }

    /// Runs the block. Decoder blocks pass `skips`: before each ResNet the last skip is popped and
    /// concatenated after the features (`[x, skip]` on channels). Returns the output and every
    /// ResNet(+attention) output plus the resample output (the encoder's skip activations).
    pub fn forward(
        &self,
        x: &Var,
        temb: &Var,
        mut skips: Option<&mut Vec<Var>>,
        cond: Option<&Var>,
        mask: Option<&Tensor>,
    ) -> Result<(Var, Vec<Var>)> {
        let mut x = x.clone();
        let mut acts = vec![];
        let a = self.attn_per_resnet;
        for (i, r) in self.resnets.iter().enumerate() {
            if let Some(s) = skips.as_deref_mut() {
                let skip = s
                    .pop()
                    .ok_or_else(|| crate::error::input_err("skips", "decoder ran out of skip activations"))?;
                x = Var::cat(&[&x, &skip], 1)?;
            }
            x = {
                let _s = scope(format!("resnets.{i}"));
                r.forward(&x, temb)?
            };
            for k in 0..a {
                let _s = scope(format!("attn.{}", i * a + k));
                x = self.attn[i * a + k].forward(&x, cond, mask)?;
            }
            acts.push(x.clone());
        }
        if let Some(rs) = &self.resample {
            let _s = scope("resample");
            x = match rs {
                Resampler::Down(d) => d.forward(&x)?,
                Resampler::Up(u) => u.forward(&x)?,
            };
            acts.push(x.clone());
        }
        Ok((x, acts))
    }
}
