//! Reductions over any set of axes.

use super::{FloatElem, dispatch_float};
use crate::storage::CpuStorage;
use crate::{Error, Result, Tensor};
use kernels::pool::PooledVec;
use kernels::reduce::{self, ReduceOp};

fn reduce_impl<T: FloatElem>(op: ReduceOp, x: &Tensor, axes: &[usize], out_shape: &[usize]) -> Tensor {
    let mut out = PooledVec::<T>::zeros(kernels::strided::numel(out_shape));
    reduce::reduce(op, x.data::<T>(), x.layout(), axes, &mut out);
    Tensor::from_pooled(out, out_shape)
}

fn arg_impl<T: FloatElem>(op: ReduceOp, x: &Tensor, axis: usize, out_shape: &[usize]) -> Tensor {
    let mut out = PooledVec::<i64>::zeros(kernels::strided::numel(out_shape));
    reduce::arg_reduce(op, x.data::<T>(), x.layout(), axis, &mut out);
    Tensor::from_cpu(CpuStorage::I64(out), out_shape)
}

impl Tensor {
    /// Sorted, unique axes from possibly negative dims (empty = all axes).
    fn reduce_axes(&self, op: &'static str, dims: &[isize]) -> Result<Vec<usize>> {
        if dims.is_empty() {
            return Ok((0..self.rank()).collect());
        }
        let mut axes = dims.iter().map(|&d| self.resolve_dim(op, d)).collect::<Result<Vec<_>>>()?;
        axes.sort_unstable();
        if axes.windows(2).any(|w| w[0] == w[1]) {
            return Err(Error::invalid(op, format!("repeated dimension in {dims:?}")));
        }
        Ok(axes)
    }

    /// Reduces over `dims` (empty = all). With `keepdim`, reduced dims stay with size 1.
    pub fn reduce(&self, op: ReduceOp, dims: &[isize], keepdim: bool) -> Result<Tensor> {
        let name = "reduce";
        let axes = self.reduce_axes(name, dims)?;
        let count: usize = axes.iter().map(|&a| self.shape()[a]).product();
        if count == 0 && matches!(op, ReduceOp::Max | ReduceOp::Min) {
            return Err(Error::invalid(
                "max/min",
                format!("reduction over an empty dimension of shape {:?}", self.shape()),
            ));
        }
        let out_shape: Vec<usize> =
            (0..self.rank()).filter(|d| !axes.contains(d)).map(|d| self.shape()[d]).collect();
        #[cfg(feature = "cuda")]
        if !self.device().is_cpu() {
            let r = crate::cuda::ops::reduce::reduce(self, op, &axes, false, &out_shape)?;
            return if keepdim { r.reshape(&keep_shape(self.shape(), &axes)) } else { Ok(r) };
        }
        let x = self.float_input(name)?;
        let r = dispatch_float!(x, reduce_impl(op, &x, &axes, &out_shape));
        let r = if keepdim { r.reshape(&keep_shape(self.shape(), &axes))? } else { r };
        r.cast_back(self.dtype())
    }

    pub fn sum(&self, dims: &[isize], keepdim: bool) -> Result<Tensor> {
        self.reduce(ReduceOp::Sum, dims, keepdim)
    }
    pub fn mean(&self, dims: &[isize], keepdim: bool) -> Result<Tensor> {
        self.reduce(ReduceOp::Mean, dims, keepdim)
    }
    pub fn max(&self, dims: &[isize], keepdim: bool) -> Result<Tensor> {
        self.reduce(ReduceOp::Max, dims, keepdim)
    }
    pub fn min(&self, dims: &[isize], keepdim: bool) -> Result<Tensor> {
        self.reduce(ReduceOp::Min, dims, keepdim)
    }
    /// Variance with Bessel-style `correction` (1 = unbiased, 0 = population), like `torch.var`.
    pub fn var(&self, dims: &[isize], correction: usize, keepdim: bool) -> Result<Tensor> {
        self.reduce(ReduceOp::Var { correction }, dims, keepdim)
    }
    /// Sum of all elements as a rank-0 tensor.
    pub fn sum_all(&self) -> Result<Tensor> {
        self.sum(&[], false)
    }
    pub fn mean_all(&self) -> Result<Tensor> {
        self.mean(&[], false)
    }

    /// Index of the first maximum along `dim` (i64).
    pub fn argmax(&self, dim: isize, keepdim: bool) -> Result<Tensor> {
        self.arg_reduce(ReduceOp::Max, dim, keepdim)
    }
    /// Index of the first minimum along `dim` (i64).
    pub fn argmin(&self, dim: isize, keepdim: bool) -> Result<Tensor> {
        self.arg_reduce(ReduceOp::Min, dim, keepdim)
    }

    fn arg_reduce(&self, op: ReduceOp, dim: isize, keepdim: bool) -> Result<Tensor> {
        let axis = self.resolve_dim("argmax/argmin", dim)?;
        if self.shape()[axis] == 0 {
            return Err(Error::invalid(
                "argmax/argmin",
                format!("empty dimension {axis} of shape {:?}", self.shape()),
            ));
        }
        let out_shape: Vec<usize> =
            (0..self.rank()).filter(|&d| d != axis).map(|d| self.shape()[d]).collect();
        #[cfg(feature = "cuda")]
        if !self.device().is_cpu() {
            let r = crate::cuda::ops::reduce::reduce(self, op, &[axis], true, &out_shape)?;
            return if keepdim { r.reshape(&keep_shape(self.shape(), &[axis])) } else { Ok(r) };
        }
        let x = self.float_input("argmax/argmin")?;
        let r = dispatch_float!(x, arg_impl(op, &x, axis, &out_shape));
        if keepdim { r.reshape(&keep_shape(self.shape(), &[axis])) } else { Ok(r) }
    }
}

fn keep_shape(shape: &[usize], axes: &[usize]) -> Vec<usize> {
    shape.iter().enumerate().map(|(d, &n)| if axes.contains(&d) { 1 } else { n }).collect()
}
