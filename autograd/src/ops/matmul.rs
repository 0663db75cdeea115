//! Matrix multiplication (batched, broadcasting). `dA = dC·Bᵀ`, `dB = Aᵀ·dC`, each summed back over
//! broadcast batch dims. Rank-1 operands are reshaped to matrices first (recorded as `reshape`), so
//! the rule only sees rank ≥ 2. Under [`crate::autocast`] the operands are cast to the half dtype
//! first (recorded `to_dtype` nodes).

use super::sum_to_shape;
use crate::autocast::lower;
use crate::node::BackwardOp;
use crate::{Result, Var};
use tensor::Tensor;

struct Matmul {
    a: Tensor,
    b: Tensor,
}

impl BackwardOp for Matmul {
    fn name(&self) -> &'static str {
        "matmul"
    }
    fn backward(&self, g: &Tensor, needs: &[bool]) -> Result<Vec<Option<Tensor>>> {
        let ga = needs[0]
            .then(|| -> Result<Tensor> { sum_to_shape(&g.matmul(&self.b.t()?)?, self.a.shape()) })
            .transpose()?;
        let gb = needs[1]
            .then(|| -> Result<Tensor> { sum_to_shape(&self.a.t()?.matmul(g)?, self.b.shape()) })
            .transpose()?;
        Ok(vec![ga, gb])
    }
    fn saved_bytes(&self) -> usize {
        super::bytes(&[&self.a, &self.b])
    }
}

impl Var {
    /// `self @ other` with `torch.matmul` semantics.
    /// Under [`crate::autocast`] both operands are cast to the half dtype (output in it).
    pub fn matmul(&self, other: &Var) -> Result<Var> {
        let (a, b) = (lower(self)?, lower(other)?);
        let a = if self.value().rank() == 1 { a.unsqueeze(0)? } else { a };
        let b = if other.value().rank() == 1 { b.unsqueeze(-1)? } else { b };
        let y = a.value().matmul(b.value())?;
        let mut out = Var::from_op(y, &[&a, &b], Matmul { a: a.value().clone(), b: b.value().clone() })?;
        if self.value().rank() == 1 {
            out = out.squeeze(-2)?;
        }
        if other.value().rank() == 1 {
            out = out.squeeze(-1)?;
        }
        Ok(out)
    }

    /// `self · weightᵀ + bias` (`torch.nn.functional.linear`): `self` [.., in], `weight`
    /// [out, in], `bias` [out]. Under [`crate::autocast`] all three are cast to the half dtype, so
    /// the output stays in it.
    pub fn linear(&self, weight: &Var, bias: Option<&Var>) -> Result<Var> {
        let y = self.matmul(&lower(weight)?.transpose(0, 1)?)?;
        match bias {
            Some(b) => y.add(&lower(b)?),
            None => Ok(y),
        }
    }
}
