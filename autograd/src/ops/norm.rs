//! Group norm and layer norm with optional affine; fused backward from the kernels using the saved
//! mean and 1/std. Under [`crate::autocast`] half inputs are cast to f32 first (f32 output).

use crate::autocast::upper;
use crate::node::BackwardOp;
use crate::{Result, Var};
use tensor::{NormOutput, Tensor};

enum Kind {
    Group(usize),
    Layer,
}

struct Norm {
    kind: Kind,
    x: Tensor,
    gamma: Option<Tensor>,
    has_beta: bool,
    saved: NormOutput,
}

impl BackwardOp for Norm {
    fn name(&self) -> &'static str {
        match self.kind {
            Kind::Group(_) => "group_norm",
            Kind::Layer => "layer_norm",
        }
    }
    fn backward(&self, g: &Tensor, needs: &[bool]) -> Result<Vec<Option<Tensor>>> {
        let affine = self.gamma.is_some() || self.has_beta;
        let r = match self.kind {
            Kind::Group(groups) => {
                self.x.group_norm_backward(groups, self.gamma.as_ref(), &self.saved, g, affine)?
            }
            Kind::Layer => self.x.layer_norm_backward(self.gamma.as_ref(), &self.saved, g, affine)?,
        };
        let mut out = vec![needs[0].then_some(r.dx)];
        if self.gamma.is_some() {
            out.push(r.dgamma);
        }
        if self.has_beta {
            out.push(r.dbeta);
        }
        Ok(out)
    }
    fn saved_bytes(&self) -> usize {
        super::bytes(&[&self.x, &self.saved.mean, &self.saved.rstd])
            + self.gamma.as_ref().map_or(0, crate::node::tensor_bytes)
    }
}

fn record(x: &Var, kind: Kind, gamma: Option<&Var>, beta: Option<&Var>, saved: NormOutput) -> Result<Var> {
    let y = saved.y.clone();
    let op = Norm {
        kind,
        x: x.value().clone(),
        gamma: gamma.map(|g| g.value().clone()),
        has_beta: beta.is_some(),
        saved,
    };
    let mut inputs = vec![x];
    inputs.extend(gamma);
    inputs.extend(beta);
    Var::from_op(y, &inputs, op)
}

impl Var {
    /// Group normalisation over `groups` channel groups of `self` [N, C, *], with optional affine.
    pub fn group_norm(
        &self,
        groups: usize,
        gamma: Option<&Var>,
        beta: Option<&Var>,
        eps: f64,
    ) -> Result<Var> {
        let (x, gamma, beta) = (upper(self)?, gamma.map(upper).transpose()?, beta.map(upper).transpose()?);
        let (gamma, beta) = (gamma.as_ref(), beta.as_ref());
        let s = x.value().group_norm(groups, gamma.map(|g| g.value()), beta.map(|b| b.value()), eps)?;
        record(&x, Kind::Group(groups), gamma, beta, s)
    }
    /// Layer normalisation over the last dimension, with optional affine.
    pub fn layer_norm(&self, gamma: Option<&Var>, beta: Option<&Var>, eps: f64) -> Result<Var> {
        let (x, gamma, beta) = (upper(self)?, gamma.map(upper).transpose()?, beta.map(upper).transpose()?);
        let (gamma, beta) = (gamma.as_ref(), beta.as_ref());
        let s = x.value().layer_norm(gamma.map(|g| g.value()), beta.map(|b| b.value()), eps)?;
        record(&x, Kind::Layer, gamma, beta, s)
    }
}
