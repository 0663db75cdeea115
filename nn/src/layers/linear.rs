//! Linear layer: `y = x·Wᵀ + b`, W [out, in] as in PyTorch.

use crate::{Init, Param, Result};
use autograd::Var;

#[derive(Clone, Debug)]
pub struct Linear {
    pub weight: Param,
    pub bias: Option<Param>,
}

impl Linear {
    /// PyTorch default init (Kaiming-uniform a=√5, bias U(±1/√in)).
    pub fn new(init: &mut Init, in_features: usize, out_features: usize, bias: bool) -> Self {
        let weight = Param::new(init.kaiming_uniform(&[out_features, in_features], in_features));
        let bias = bias.then(|| Param::new(init.bias(out_features, in_features)));
        Self { weight, bias }
    }

    /// Weight and bias set to zero (ml-mdm's `zero_module`).
    pub fn zeros(init: &mut Init, in_features: usize, out_features: usize, bias: bool) -> Self {
        Self {
            weight: Param::new(init.zeros(&[out_features, in_features])),
            bias: bias.then(|| Param::new(init.zeros(&[out_features]))),
        }
    }

    pub fn in_features(&self) -> usize {
        self.weight.value().shape()[1]
    }
    pub fn out_features(&self) -> usize {
        self.weight.value().shape()[0]
    }

    /// x [..., in] → [..., out].
    pub fn forward(&self, x: &Var) -> Result<Var> {
        Ok(x.linear(self.weight.var(), self.bias.as_ref().map(|b| b.var()))?)
    }
}

crate::impl_module!(Linear { params: [weight], children: [], optional: [bias] });

impl crate::Module for Param {
    fn visit(&self, prefix: &str, f: &mut dyn FnMut(&str, &Param)) {
        f(prefix, self)
    }
    fn visit_mut(&mut self, prefix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        f(prefix, self)
    }
}
