//! Broadcasting binary ops and comparisons.
//!
//! Decision: no implicit dtype promotion — both operands must have the same dtype (a
//! [`crate::Error::DTypeMismatch`] otherwise). Researchers auditing numerics want every cast visible.

use super::{FloatElem, dispatch_float};
use crate::storage::CpuStorage;
use crate::views::{broadcast_layout, broadcast_shape};
use crate::{Error, Result, Tensor};
use kernels::elementwise::{self, BinaryOp, CmpOp};
use kernels::pool::PooledVec;

fn binary_impl<T: FloatElem>(op: BinaryOp, a: &Tensor, b: &Tensor) -> Tensor {
    let mut out = PooledVec::<T>::zeros(a.numel());
    elementwise::binary(op, a.data::<T>(), a.layout(), b.data::<T>(), b.layout(), &mut out);
    Tensor::from_pooled(out, a.shape())
}

fn compare_impl<T: FloatElem>(op: CmpOp, a: &Tensor, b: &Tensor) -> Tensor {
    let mut out = PooledVec::<u8>::zeros(a.numel());
    elementwise::compare(op, a.data::<T>(), a.layout(), b.data::<T>(), b.layout(), &mut out);
    Tensor::from_cpu(CpuStorage::U8(out), a.shape())
}

impl Tensor {
    /// Both operands expanded to their common broadcast shape (views, no copy).
    pub fn broadcast_pair(&self, op: &'static str, other: &Tensor) -> Result<(Tensor, Tensor)> {
        let shape = broadcast_shape(self.shape(), other.shape()).ok_or_else(|| {
            Error::BroadcastIncompatible { op, lhs: self.shape().to_vec(), rhs: other.shape().to_vec() }
        })?;
        let a =
            self.with_layout(broadcast_layout(self.layout(), &shape).expect("shape is a broadcast of self"));
        let b = other
            .with_layout(broadcast_layout(other.layout(), &shape).expect("shape is a broadcast of other"));
        Ok((a, b))
    }

    /// Applies a binary op with numpy broadcasting.
    pub fn binary(&self, op: BinaryOp, other: &Tensor) -> Result<Tensor> {
        self.check_same("binary", other)?;
        let (a, b) = self.broadcast_pair("binary", other)?;
        #[cfg(feature = "cuda")]
        if !self.device().is_cpu() {
            return crate::cuda::ops::elementwise::binary(op, &a, &b);
        }
        let (a, b) = (a.float_input("binary")?, b.float_input("binary")?);
        dispatch_float!(a, binary_impl(op, &a, &b)).cast_back(self.dtype())
    }

    pub fn add(&self, o: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Add, o)
    }
    pub fn sub(&self, o: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Sub, o)
    }
    pub fn mul(&self, o: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Mul, o)
    }
    pub fn div(&self, o: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Div, o)
    }
    pub fn pow(&self, o: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Pow, o)
    }
    /// Elementwise maximum (NaN propagates, like `torch.maximum`).
    pub fn maximum(&self, o: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Maximum, o)
    }
    pub fn minimum(&self, o: &Tensor) -> Result<Tensor> {
        self.binary(BinaryOp::Minimum, o)
    }

    /// Elementwise comparison with broadcasting; a u8 tensor of 0/1.
    pub fn compare(&self, op: CmpOp, other: &Tensor) -> Result<Tensor> {
        self.check_same("compare", other)?;
        let (a, b) = self.broadcast_pair("compare", other)?;
        #[cfg(feature = "cuda")]
        if !self.device().is_cpu() {
            return crate::cuda::ops::elementwise::compare(op, &a, &b);
        }
        let (a, b) = (a.float_input("compare")?, b.float_input("compare")?);
        Ok(dispatch_float!(a, compare_impl(op, &a, &b)))
    }
    pub fn eq(&self, o: &Tensor) -> Result<Tensor> {
        self.compare(CmpOp::Eq, o)
    }
    pub fn ne(&self, o: &Tensor) -> Result<Tensor> {
        self.compare(CmpOp::Ne, o)
    }
    pub fn lt(&self, o: &Tensor) -> Result<Tensor> {
        self.compare(CmpOp::Lt, o)
    }
    pub fn le(&self, o: &Tensor) -> Result<Tensor> {
        self.compare(CmpOp::Le, o)
    }
    pub fn gt(&self, o: &Tensor) -> Result<Tensor> {
        self.compare(CmpOp::Gt, o)
    }
    pub fn ge(&self, o: &Tensor) -> Result<Tensor> {
        self.compare(CmpOp::Ge, o)
    }
}
