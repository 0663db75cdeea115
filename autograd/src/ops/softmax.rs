//! Softmax and log-softmax; backward from the saved output.

use crate::autocast::upper;
use crate::node::BackwardOp;
use crate::{Result, Var};
use tensor::Tensor;

struct Softmax {
    log: bool,
    dim: isize,
    y: Tensor,
}

impl BackwardOp for Softmax {
    fn name(&self) -> &'static str {
        if self.log { "log_softmax" } else { "softmax" }
    }
    fn backward(&self, g: &Tensor, _needs: &[bool]) -> Result<Vec<Option<Tensor>>> {
        let dx = if self.log {
            Tensor::log_softmax_backward(&self.y, g, self.dim)?
        } else {
            Tensor::softmax_backward(&self.y, g, self.dim)?
        };
        Ok(vec![Some(dx)])
    }
    fn saved_bytes(&self) -> usize {
        crate::node::tensor_bytes(&self.y)
    }
}

impl Var {
    /// Under [`crate::autocast`] a half input is cast to f32 first (f32 output).
    pub fn softmax(&self, dim: isize) -> Result<Var> {
        let x = upper(self)?;
        let y = x.value().softmax(dim)?;
        Var::from_op(y.clone(), &[&x], Softmax { log: false, dim, y })
    }
    /// Under [`crate::autocast`] a half input is cast to f32 first (f32 output).
    pub fn log_softmax(&self, dim: isize) -> Result<Var> {
        let x = upper(self)?;
        let y = x.value().log_softmax(dim)?;
        Var::from_op(y.clone(), &[&x], Softmax { log: true, dim, y })
    }
}
