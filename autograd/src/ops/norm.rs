//! Group norm and layer norm with optional affine; fused backward from the kernels using the saved
//! mean and 1/std.

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
        let s = self.value().group_norm(groups, gamma.map(|g| g.value()), beta.map(|b| b.value()), eps)?;
        record(self, Kind::Group(groups), gamma, beta, s)
    }
    /// Layer normalisation over the last dimension, with optional affine.
    pub fn layer_norm(&self, gamma: Option<&Var>, beta: Option<&Var>, eps: f64) -> Result<Var> {
        let s = self.value().layer_norm(gamma.map(|g| g.value()), beta.map(|b| b.value()), eps)?;
        record(self, Kind::Layer, gamma, beta, s)
    }
}

/// The fused ResNet epilogue `SiLU(GN(x)·(1 + scale) + shift)`: one forward kernel, one backward.
struct GroupNormSilu {
    groups: usize,
    x: Tensor,
    gamma: Option<Tensor>,
    beta: Option<Tensor>,
    scale_shift: Option<(Tensor, Tensor)>,
    saved: NormOutput,
}

impl BackwardOp for GroupNormSilu {
    fn name(&self) -> &'static str {
        "group_norm_silu"
    }
    fn backward(&self, g: &Tensor, needs: &[bool]) -> Result<Vec<Option<Tensor>>> {
        let affine = self.gamma.is_some() || self.beta.is_some();
        let ss = self.scale_shift.as_ref().map(|(a, b)| (a, b));
        let r = self.x.group_norm_silu_backward(
            self.groups,
            self.gamma.as_ref(),
            self.beta.as_ref(),
            ss,
            &self.saved,
            g,
            affine,
        )?;
        let mut out = vec![needs[0].then_some(r.dx)];
        if self.gamma.is_some() {
            out.push(r.dgamma);
        }
        if self.beta.is_some() {
            out.push(r.dbeta);
        }
        if self.scale_shift.is_some() {
            out.push(r.dscale);
            out.push(r.dshift);
        }
        Ok(out)
    }
    fn saved_bytes(&self) -> usize {
        let opt = |t: &Option<Tensor>| t.as_ref().map_or(0, crate::node::tensor_bytes);
        super::bytes(&[&self.x, &self.saved.mean, &self.saved.rstd])
            + opt(&self.gamma)
            + opt(&self.beta)
            + self.scale_shift.as_ref().map_or(0, |(a, b)| super::bytes(&[a, b]))
    }
}

impl Var {
    /// `SiLU(GN(self; gamma, beta)·(1 + scale) + shift)` for `self` [N, C, *] as one fused op (the
    /// ResNet block's epilogue; [`tensor::Tensor::group_norm_silu`]): group norm over `groups`
    /// channel groups with optional affine, then, when `scale_shift = Some((scale, shift))`
    /// (`[N, C]` or `[N, C, 1, …]`), the per-(sample, channel) modulation, then SiLU. Equal to the
    /// composed `group_norm → mul(1 + scale) → add(shift) → silu` to rounding; reads `self` once for
    /// the statistics and once for the output (and saves no intermediate activation).
    pub fn group_norm_silu(
        &self,
        groups: usize,
        gamma: Option<&Var>,
        beta: Option<&Var>,
        scale_shift: Option<(&Var, &Var)>,
        eps: f64,
    ) -> Result<Var> {
        let ss = scale_shift.map(|(a, b)| (a.value(), b.value()));
        let saved = self.value().group_norm_silu(
            groups,
            gamma.map(|g| g.value()),
            beta.map(|b| b.value()),
            ss,
            eps,
        )?;
        let y = saved.y.clone();
        let op = GroupNormSilu {
            groups,
            x: self.value().clone(),
            gamma: gamma.map(|g| g.value().clone()),
            beta: beta.map(|b| b.value().clone()),
            scale_shift: ss.map(|(a, b)| (a.clone(), b.clone())),
            saved,
        };
        let mut inputs = vec![self];
        inputs.extend(gamma);
        inputs.extend(beta);
        if let Some((a, b)) = scale_shift {
            inputs.extend([a, b]);
        }
        Var::from_op(y, &inputs, op)
    }
}
