//! 2-d convolution: hand-written input, weight and bias gradients from the kernels.

use crate::autocast::lower;
use crate::node::BackwardOp;
use crate::{Result, Var};
use tensor::{Conv2dOptions, Tensor};

struct Conv2d {
    x: Tensor,
    w: Tensor,
    has_bias: bool,
    opts: Conv2dOptions,
}

impl BackwardOp for Conv2d {
    fn name(&self) -> &'static str {
        "conv2d"
    }
    fn backward(&self, g: &Tensor, needs: &[bool]) -> Result<Vec<Option<Tensor>>> {
        let dx = needs[0]
            .then(|| Tensor::conv2d_backward_input(self.x.shape(), &self.w, g, &self.opts))
            .transpose()?;
        let dw = needs[1]
            .then(|| Tensor::conv2d_backward_weight(&self.x, self.w.shape(), g, &self.opts))
            .transpose()?;
        let mut out = vec![dx, dw];
        if self.has_bias {
            out.push(needs[2].then(|| Tensor::conv2d_backward_bias(g)).transpose()?);
        }
        Ok(out)
    }
    fn saved_bytes(&self) -> usize {
        super::bytes(&[&self.x, &self.w])
    }
}

impl Var {
    /// 2-d convolution of `self` [N, C_in, H, W] with `weight` [C_out, C_in/groups, kH, kW].
    /// Under [`crate::autocast`] input, weight and bias are cast to the half dtype (output in it).
    pub fn conv2d(&self, weight: &Var, bias: Option<&Var>, opts: &Conv2dOptions) -> Result<Var> {
        let (x, weight) = (lower(self)?, lower(weight)?);
        let bias = bias.map(lower).transpose()?;
        let (bias, weight) = (bias.as_ref(), &weight);
        let y = x.value().conv2d(weight.value(), bias.map(|b| b.value()), opts)?;
        let op =
            Conv2d { x: x.value().clone(), w: weight.value().clone(), has_bias: bias.is_some(), opts: *opts };
        match bias {
            Some(b) => Var::from_op(y, &[&x, weight, b], op),
            None => Var::from_op(y, &[&x, weight], op),
        }
    }
}
