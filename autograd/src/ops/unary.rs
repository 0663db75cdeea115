//! Unary elementwise ops. Backward: `dx = dy · f'(x)` with `f'` from the kernels
//! (`Tensor::unary_backward`), evaluated at the saved input.

use crate::autocast::upper;
use crate::node::BackwardOp;
use crate::{Result, Var};
use tensor::{Tensor, UnaryOp};

struct Unary {
    name: &'static str,
    op: UnaryOp,
    x: Tensor,
}

impl BackwardOp for Unary {
    fn name(&self) -> &'static str {
        self.name
    }
    fn backward(&self, g: &Tensor, _needs: &[bool]) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(self.x.unary_backward(self.op, g)?)])
    }
    fn saved_bytes(&self) -> usize {
        super::bytes(&[&self.x])
    }
}

impl Var {
    /// Applies a unary op; `name` is its registry name.
    /// Under [`crate::autocast`], `exp`, `log`, `rsqrt`, `recip` and `powf` cast a half input to
    /// f32 first (PyTorch's fp32 list); the others keep the input's dtype.
    pub fn unary(&self, name: &'static str, op: UnaryOp) -> Result<Var> {
        let f32_op =
            matches!(op, UnaryOp::Exp | UnaryOp::Log | UnaryOp::Rsqrt | UnaryOp::Recip | UnaryOp::Powf(_));
        let x = if f32_op { upper(self)? } else { self.clone() };
        let y = x.value().unary(op)?;
        Var::from_op(y, &[&x], Unary { name, op, x: x.value().clone() })
    }
    pub fn neg(&self) -> Result<Var> {
        self.unary("neg", UnaryOp::Neg)
    }
    pub fn abs(&self) -> Result<Var> {
        self.unary("abs", UnaryOp::Abs)
    }
    pub fn exp(&self) -> Result<Var> {
        self.unary("exp", UnaryOp::Exp)
    }
    pub fn log(&self) -> Result<Var> {
        self.unary("log", UnaryOp::Log)
    }
    pub fn sqrt(&self) -> Result<Var> {
        self.unary("sqrt", UnaryOp::Sqrt)
    }
    pub fn rsqrt(&self) -> Result<Var> {
        self.unary("rsqrt", UnaryOp::Rsqrt)
    }
    pub fn sqr(&self) -> Result<Var> {
        self.unary("sqr", UnaryOp::Sqr)
    }
    pub fn recip(&self) -> Result<Var> {
        self.unary("recip", UnaryOp::Recip)
    }
    pub fn tanh(&self) -> Result<Var> {
        self.unary("tanh", UnaryOp::Tanh)
    }
    pub fn sigmoid(&self) -> Result<Var> {
        self.unary("sigmoid", UnaryOp::Sigmoid)
    }
    pub fn silu(&self) -> Result<Var> {
        self.unary("silu", UnaryOp::Silu)
    }
    /// Exact (erf) GELU.
    pub fn gelu(&self) -> Result<Var> {
        self.unary("gelu", UnaryOp::Gelu)
    }
    pub fn gelu_tanh(&self) -> Result<Var> {
        self.unary("gelu_tanh", UnaryOp::GeluTanh)
    }
    pub fn relu(&self) -> Result<Var> {
        self.unary("relu", UnaryOp::Relu)
    }
    pub fn sin(&self) -> Result<Var> {
        self.unary("sin", UnaryOp::Sin)
    }
    pub fn cos(&self) -> Result<Var> {
        self.unary("cos", UnaryOp::Cos)
    }
    pub fn erf(&self) -> Result<Var> {
        self.unary("erf", UnaryOp::Erf)
    }
    pub fn powf(&self, e: f64) -> Result<Var> {
        self.unary("powf", UnaryOp::Powf(e))
    }
    /// `x · mul + add`.
    pub fn affine(&self, mul: f64, add: f64) -> Result<Var> {
        self.unary("affine", UnaryOp::Affine { mul, add })
    }
    pub fn add_scalar(&self, v: f64) -> Result<Var> {
        self.affine(1.0, v)
    }
    pub fn mul_scalar(&self, v: f64) -> Result<Var> {
        self.affine(v, 0.0)
    }
    pub fn clamp(&self, min: f64, max: f64) -> Result<Var> {
        if min > max || min.is_nan() || max.is_nan() {
            return Err(tensor::Error::InvalidArgument {
                op: "clamp",
                msg: format!("min {min} > max {max} or NaN bound"),
            }
            .into());
        }
        self.unary("clamp", UnaryOp::Clamp { min, max })
    }
}
