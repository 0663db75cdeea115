//! Op dispatch: each file validates its inputs (typed errors naming the op and shapes), widens
//! f16/bf16 to f32, calls the `kernels` function for f32 or f64, and rounds the result back.

pub mod attention;
pub mod binary;
pub mod conv;
pub mod dual_attention;
pub mod layout_ops;
pub mod matmul;
pub mod norm;
pub mod optim;
pub mod random;
pub mod reduce;
pub mod softmax;
pub mod unary;

use crate::storage::CpuStorage;
use crate::{DType, Error, Result, Tensor, WithDType};
use kernels::pool::{Poolable, PooledVec};

/// The element types the CPU kernels compute in (f32, f64).
pub trait FloatElem: kernels::Float + WithDType + Poolable {
    fn wrap(v: PooledVec<Self>) -> CpuStorage;
}
impl FloatElem for f32 {
    fn wrap(v: PooledVec<Self>) -> CpuStorage {
        CpuStorage::F32(v)
    }
}
impl FloatElem for f64 {
    fn wrap(v: PooledVec<Self>) -> CpuStorage {
        CpuStorage::F64(v)
    }
}

/// Calls `$f::<f32>` or `$f::<f64>` according to the storage dtype of `$t` (already a compute dtype).
macro_rules! dispatch_float {
    ($t:expr, $f:ident ( $($arg:expr),* $(,)? )) => {
        match $t.dtype() {
            $crate::DType::F32 => $f::<f32>($($arg),*),
            $crate::DType::F64 => $f::<f64>($($arg),*),
            other => unreachable!("dispatch_float on {other}: inputs are widened by float_input first"),
        }
    };
}
pub(crate) use dispatch_float;

impl Tensor {
    /// The whole storage as a typed slice (index it through `layout()`).
    pub(crate) fn data<T: WithDType>(&self) -> &[T] {
        T::slice(self.cpu()).expect("dtype checked by the caller")
    }

    /// The input an f32/f64 kernel computes on: itself for f32/f64, widened to f32 for f16/bf16,
    /// an error naming the op for integer dtypes.
    pub(crate) fn float_input(&self, op: &'static str) -> Result<Tensor> {
        match self.dtype() {
            DType::F32 | DType::F64 => Ok(self.clone()),
            DType::F16 | DType::BF16 => self.to_dtype(DType::F32),
            d => {
                Err(Error::UnsupportedDType { op, dtype: d, expected: "a float dtype (f32, f64, f16, bf16)" })
            }
        }
    }

    /// Rounds a computed result back to the caller's dtype (f16/bf16 inputs).
    pub(crate) fn cast_back(self, dtype: DType) -> Result<Tensor> {
        if self.dtype() == dtype || !dtype.is_float() { Ok(self) } else { self.to_dtype(dtype) }
    }

    /// A contiguous tensor from a computed buffer.
    pub(crate) fn from_pooled<T: FloatElem>(v: PooledVec<T>, shape: &[usize]) -> Tensor {
        Tensor::from_cpu(T::wrap(v), shape)
    }

    /// Contiguous data slice of a tensor known to be contiguous (offset applied).
    pub(crate) fn contiguous_data<T: WithDType>(&self) -> &[T] {
        debug_assert!(self.is_contiguous());
        &self.data::<T>()[self.offset()..self.offset() + self.numel()]
    }
}
