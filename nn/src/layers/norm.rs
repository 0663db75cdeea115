//! GroupNorm and LayerNorm with affine parameters (weight = 1, bias = 0 at init, as PyTorch).

use crate::{Init, Param, Result};
use autograd::Var;

#[derive(Clone, Debug)]
pub struct GroupNorm {
    pub weight: Param,
    pub bias: Param,
    pub groups: usize,
    pub eps: f64,
}

impl GroupNorm {
    /// Errors (naming the numbers) when `channels` is not a multiple of `groups`.
    pub fn new(init: &mut Init, groups: usize, channels: usize) -> Result<Self> {
        if groups == 0 || channels % groups != 0 {
            return Err(crate::Error::Config(format!("GroupNorm: {channels} channels are not divisible into {groups} groups")));
        }
        Ok(Self { weight: Param::new(init.ones(&[channels])), bias: Param::new(init.zeros(&[channels])), groups, eps: 1e-5 })
    }
    pub fn forward(&self, x: &Var) -> Result<Var> {
        Ok(x.group_norm(self.groups, Some(self.weight.var()), Some(self.bias.var()), self.eps)?)
    }
}

crate::impl_module!(GroupNorm { params: [weight, bias], children: [] });

#[derive(Clone, Debug)]
pub struct LayerNorm {
    pub weight: Param,
    pub bias: Param,
    pub eps: f64,
}

impl LayerNorm {
    pub fn new(init: &mut Init, dim: usize) -> Self {
        Self { weight: Param::new(init.ones(&[dim])), bias: Param::new(init.zeros(&[dim])), eps: 1e-5 }
    }
    pub fn forward(&self, x: &Var) -> Result<Var> {
        Ok(x.layer_norm(Some(self.weight.var()), Some(self.bias.var()), self.eps)?)
    }
}

crate::impl_module!(LayerNorm { params: [weight, bias], children: [] });
