//! 2-d convolution layer, and the strided-conv downsample / nearest-upsample + conv blocks.

use crate::{Init, Param, Result};
use autograd::Var;
use tensor::Conv2dOptions;

#[derive(Clone, Debug)]
pub struct Conv2d {
    pub weight: Param,
    pub bias: Option<Param>,
    pub opts: Conv2dOptions,
}

impl Conv2d {
    /// Square kernel `k`, PyTorch default init (fan_in = in/groups · k²).
    pub fn new(init: &mut Init, c_in: usize, c_out: usize, k: usize, opts: Conv2dOptions, bias: bool) -> Self {
        let fan_in = c_in / opts.groups.max(1) * k * k;
        let weight = Param::new(init.kaiming_uniform(&[c_out, c_in / opts.groups.max(1), k, k], fan_in));
        let bias = bias.then(|| Param::new(init.bias(c_out, fan_in)));
        Self { weight, bias, opts }
    }

    /// Weight and bias zero (ml-mdm's `zero_module`).
    pub fn zeros(init: &mut Init, c_in: usize, c_out: usize, k: usize, opts: Conv2dOptions, bias: bool) -> Self {
        Self {
            weight: Param::new(init.zeros(&[c_out, c_in / opts.groups.max(1), k, k])),
            bias: bias.then(|| Param::new(init.zeros(&[c_out]))),
            opts,
        }
    }

    /// 3×3, stride 1, padding 1.
    pub fn same3x3(init: &mut Init, c_in: usize, c_out: usize) -> Self {
        Self::new(init, c_in, c_out, 3, Conv2dOptions { padding: [1, 1], ..Default::default() }, true)
    }

    /// 1×1.
    pub fn pointwise(init: &mut Init, c_in: usize, c_out: usize) -> Self {
        Self::new(init, c_in, c_out, 1, Conv2dOptions::default(), true)
    }

    pub fn forward(&self, x: &Var) -> Result<Var> {
        Ok(x.conv2d(self.weight.var(), self.bias.as_ref().map(|b| b.var()), &self.opts)?)
    }
}

crate::impl_module!(Conv2d { params: [weight], children: [], optional: [bias] });

/// Strided 3×3 conv (stride 2, padding 1): halves H and W. Its parameters sit directly under the
/// block's name (`resample.weight`), as in ml-mdm.
#[derive(Clone, Debug)]
pub struct Downsample {
    pub conv: Conv2d,
}

impl Downsample {
    pub fn new(init: &mut Init, c: usize) -> Self {
        Self { conv: Conv2d::new(init, c, c, 3, Conv2dOptions { stride: [2, 2], padding: [1, 1], ..Default::default() }, true) }
    }
    pub fn forward(&self, x: &Var) -> Result<Var> {
        self.conv.forward(x)
    }
}

impl crate::Module for Downsample {
    fn visit(&self, prefix: &str, f: &mut dyn FnMut(&str, &Param)) {
        self.conv.visit(prefix, f)
    }
    fn visit_mut(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        self.conv.visit_mut(prefix, f)
    }
}

/// Nearest ×2 upsample then 3×3 conv (parameters directly under the block's name).
#[derive(Clone, Debug)]
pub struct Upsample {
    pub conv: Conv2d,
}

impl Upsample {
    pub fn new(init: &mut Init, c: usize) -> Self {
        Self { conv: Conv2d::same3x3(init, c, c) }
    }
    pub fn forward(&self, x: &Var) -> Result<Var> {
        let s = x.shape();
        let up = x.upsample_nearest2d(s[2] * 2, s[3] * 2)?;
        self.conv.forward(&up)
    }
}

impl crate::Module for Upsample {
    fn visit(&self, prefix: &str, f: &mut dyn FnMut(&str, &Param)) {
        self.conv.visit(prefix, f)
    }
    fn visit_mut(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        self.conv.visit_mut(prefix, f)
    }
}
