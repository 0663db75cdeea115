//! Broadcasting binary ops. Each input's gradient is computed at the broadcast shape and summed back
//! to the input's own shape ([`super::sum_to_shape`]).

use super::sum_to_shape;
use crate::autocast::{promote, upper};
use crate::node::BackwardOp;
use crate::{Result, Var};
use tensor::{BinaryOp, Tensor};

struct Binary {
    op: BinaryOp,
    a: Tensor,
    b: Tensor,
    /// Saved output (pow needs it).
    out: Option<Tensor>,
}

fn name_of(op: BinaryOp) -> &'static str {
    match op {
        BinaryOp::Add => "add",
        BinaryOp::Sub => "sub",
        BinaryOp::Mul => "mul",
        BinaryOp::Div => "div",
        BinaryOp::Pow => "pow",
        BinaryOp::Maximum => "maximum",
        BinaryOp::Minimum => "minimum",
    }
}

impl BackwardOp for Binary {
    fn name(&self) -> &'static str {
        name_of(self.op)
    }

    fn backward(&self, g: &Tensor, needs: &[bool]) -> Result<Vec<Option<Tensor>>> {
        let (a, b) = (&self.a, &self.b);
        let (ga, gb): (Option<Tensor>, Option<Tensor>) = match self.op {
            BinaryOp::Add => (Some(g.clone()), Some(g.clone())),
            BinaryOp::Sub => (Some(g.clone()), needs[1].then(|| g.neg()).transpose()?),
            BinaryOp::Mul => {
                (needs[0].then(|| g.mul(b)).transpose()?, needs[1].then(|| g.mul(a)).transpose()?)
            }
            BinaryOp::Div => (
                needs[0].then(|| g.div(b)).transpose()?,
                // d(a/b)/db = -a / b²
                needs[1].then(|| g.mul(a)?.div(&b.sqr()?)?.neg()).transpose()?,
            ),
            BinaryOp::Pow => {
                let out = self.out.as_ref().expect("pow saves its output");
                (
                    // b · a^(b-1) · g
                    needs[0].then(|| g.mul(b)?.mul(&a.pow(&b.add_scalar(-1.0)?)?)).transpose()?,
                    // a^b · ln a · g
                    needs[1].then(|| g.mul(out)?.mul(&a.log()?)).transpose()?,
                )
            }
            BinaryOp::Maximum | BinaryOp::Minimum => {
                // the winner takes the gradient; ties split it evenly (as PyTorch)
                let (wa, wb) =
                    if self.op == BinaryOp::Maximum { (a.gt(b)?, b.gt(a)?) } else { (a.lt(b)?, b.lt(a)?) };
                let tie = a.eq(b)?;
                let dt = g.dtype();
                let half = tie.to_dtype(dt)?.mul_scalar(0.5)?;
                let sa = wa.to_dtype(dt)?.add(&half)?;
                let sb = wb.to_dtype(dt)?.add(&half)?;
                (needs[0].then(|| g.mul(&sa)).transpose()?, needs[1].then(|| g.mul(&sb)).transpose()?)
            }
        };
        Ok(vec![
            ga.filter(|_| needs[0]).map(|t| sum_to_shape(&t, a.shape())).transpose()?,
            gb.filter(|_| needs[1]).map(|t| sum_to_shape(&t, b.shape())).transpose()?,
        ])
    }

    fn saved_bytes(&self) -> usize {
        let mut n = 0;
        if !matches!(self.op, BinaryOp::Add | BinaryOp::Sub) {
            n += super::bytes(&[&self.a, &self.b]);
        }
        n + self.out.as_ref().map_or(0, crate::node::tensor_bytes)
    }
}

impl Var {
    /// Applies a broadcasting binary op.
    /// Under [`crate::autocast`], mixed float dtypes are promoted to the wider one, and `pow` casts
    /// half inputs to f32; outside a scope mixed dtypes are a `DTypeMismatch`.
    pub fn binary(&self, op: BinaryOp, other: &Var) -> Result<Var> {
        let (a, b) =
            if op == BinaryOp::Pow { (upper(self)?, upper(other)?) } else { (self.clone(), other.clone()) };
        let ab = promote(&[&a, &b])?;
        let (a, b) = (&ab[0], &ab[1]);
        let y = a.value().binary(op, b.value())?;
        let out = (op == BinaryOp::Pow).then(|| y.clone());
        Var::from_op(y, &[a, b], Binary { op, a: a.value().clone(), b: b.value().clone(), out })
    }
    pub fn add(&self, o: &Var) -> Result<Var> {
        self.binary(BinaryOp::Add, o)
    }
    pub fn sub(&self, o: &Var) -> Result<Var> {
        self.binary(BinaryOp::Sub, o)
    }
    pub fn mul(&self, o: &Var) -> Result<Var> {
        self.binary(BinaryOp::Mul, o)
    }
    pub fn div(&self, o: &Var) -> Result<Var> {
        self.binary(BinaryOp::Div, o)
    }
    pub fn pow(&self, o: &Var) -> Result<Var> {
        self.binary(BinaryOp::Pow, o)
    }
    pub fn maximum(&self, o: &Var) -> Result<Var> {
        self.binary(BinaryOp::Maximum, o)
    }
    pub fn minimum(&self, o: &Var) -> Result<Var> {
        self.binary(BinaryOp::Minimum, o)
    }
}
