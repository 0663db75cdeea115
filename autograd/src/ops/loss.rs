//! Losses. `mse_loss` is fused: one node, `d pred = 2 (pred - target) / N · g` (mean reduction).

use crate::autocast::upper;
use crate::node::BackwardOp;
use crate::{Result, Var};
use tensor::Tensor;

/// How a loss reduces over elements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduction {
    Mean,
    Sum,
    None,
}

struct Mse {
    diff: Tensor,
    reduction: Reduction,
}

impl BackwardOp for Mse {
    fn name(&self) -> &'static str {
        "mse_loss"
    }
    fn backward(&self, g: &Tensor, needs: &[bool]) -> Result<Vec<Option<Tensor>>> {
        let scale = match self.reduction {
            Reduction::Mean => 2.0 / self.diff.numel().max(1) as f64,
            Reduction::Sum | Reduction::None => 2.0,
        };
        let d = self.diff.mul_scalar(scale)?.mul(g)?;
        let dt = needs[1].then(|| d.neg()).transpose()?;
        Ok(vec![needs[0].then_some(d), dt])
    }
    fn saved_bytes(&self) -> usize {
        crate::node::tensor_bytes(&self.diff)
    }
}

impl Var {
    /// `(self - target)²` reduced by `reduction` (shapes must match exactly, as a guard against
    /// accidental broadcasting).
    /// Under [`crate::autocast`] half inputs are cast to f32 first (f32 loss).
    pub fn mse_loss(&self, target: &Var, reduction: Reduction) -> Result<Var> {
        let (pred, target) = (&upper(self)?, &upper(target)?);
        if pred.shape() != target.shape() {
            return Err(tensor::Error::ShapeMismatch {
                op: "mse_loss",
                lhs: pred.shape().to_vec(),
                rhs: target.shape().to_vec(),
            }
            .into());
        }
        let diff = pred.value().sub(target.value())?;
        let sq = diff.sqr()?;
        let y = match reduction {
            Reduction::Mean => sq.mean_all()?,
            Reduction::Sum => sq.sum_all()?,
            Reduction::None => sq,
        };
        Var::from_op(y, &[pred, target], Mse { diff, reduction })
    }
}
