//! Unary elementwise ops over any layout.

use super::{FloatElem, dispatch_float};
use crate::{Result, Tensor};
use kernels::elementwise::{self, UnaryOp};
use kernels::pool::PooledVec;

fn unary_impl<T: FloatElem>(op: UnaryOp, x: &Tensor) -> Tensor {
    let mut out = PooledVec::<T>::zeros(x.numel());
    elementwise::unary(op, x.data::<T>(), x.layout(), &mut out);
    Tensor::from_pooled(out, x.shape())
}

fn unary_backward_impl<T: FloatElem>(op: UnaryOp, x: &Tensor, dy: &Tensor) -> Tensor {
    let mut out = PooledVec::<T>::zeros(x.numel());
    elementwise::unary_backward(op, x.data::<T>(), x.layout(), dy.contiguous_data::<T>(), &mut out);
    Tensor::from_pooled(out, x.shape())
}

impl Tensor {
    /// Applies a unary op elementwise (any layout in, contiguous out).
    pub fn unary(&self, op: UnaryOp) -> Result<Tensor> {
        #[cfg(feature = "cuda")]
        if !self.device().is_cpu() {
            return crate::cuda::ops::elementwise::unary(self, op);
        }
        let x = self.float_input("unary")?;
        dispatch_float!(x, unary_impl(op, &x)).cast_back(self.dtype())
    }

    /// `dy * op'(self)`: the derivative of a unary op at `self`, for autograd.
    pub fn unary_backward(&self, op: UnaryOp, dy: &Tensor) -> Result<Tensor> {
        self.check_same("unary_backward", dy)?;
        self.check_same_shape("unary_backward", dy)?;
        #[cfg(feature = "cuda")]
        if !self.device().is_cpu() {
            return crate::cuda::ops::elementwise::unary_backward(self, op, dy);
        }
        let x = self.float_input("unary_backward")?;
        let g = dy.float_input("unary_backward")?.contiguous()?;
        dispatch_float!(x, unary_backward_impl(op, &x, &g)).cast_back(self.dtype())
    }

    pub fn neg(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Neg)
    }
    pub fn abs(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Abs)
    }
    pub fn exp(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Exp)
    }
    pub fn log(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Log)
    }
    pub fn sqrt(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Sqrt)
    }
    pub fn rsqrt(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Rsqrt)
    }
    pub fn sqr(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Sqr)
    }
    pub fn recip(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Recip)
    }
    pub fn tanh(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Tanh)
    }
    pub fn sigmoid(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Sigmoid)
    }
    pub fn silu(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Silu)
    }
    /// Exact GELU, `x · Φ(x)` with the error function (PyTorch's default `approximate='none'`).
    pub fn gelu(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Gelu)
    }
    /// Tanh-approximated GELU (PyTorch's `approximate='tanh'`).
    pub fn gelu_tanh(&self) -> Result<Tensor> {
        self.unary(UnaryOp::GeluTanh)
    }
    pub fn relu(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Relu)
    }
    pub fn sin(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Sin)
    }
    pub fn cos(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Cos)
    }
    pub fn erf(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Erf)
    }
    pub fn sign(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Sign)
    }
    /// `x^e` for a scalar exponent.
    pub fn powf(&self, e: f64) -> Result<Tensor> {
        self.unary(UnaryOp::Powf(e))
    }
    /// `x * mul + add`.
    pub fn affine(&self, mul: f64, add: f64) -> Result<Tensor> {
        self.unary(UnaryOp::Affine { mul, add })
    }
    pub fn add_scalar(&self, v: f64) -> Result<Tensor> {
        self.affine(1.0, v)
    }
    pub fn mul_scalar(&self, v: f64) -> Result<Tensor> {
        self.affine(v, 0.0)
    }
    pub fn clamp(&self, min: f64, max: f64) -> Result<Tensor> {
        if min > max || min.is_nan() || max.is_nan() {
            return Err(crate::Error::invalid("clamp", format!("min {min} > max {max} or NaN bound")));
        }
        self.unary(UnaryOp::Clamp { min, max })
    }
}
