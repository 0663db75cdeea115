//! Softmax and log-softmax along any dimension.

use super::{FloatElem, dispatch_float};
use crate::{Result, Tensor};
use kernels::pool::PooledVec;
use kernels::softmax;

/// (outer, n, inner) of a contiguous tensor split around dimension `d`.
fn split(t: &Tensor, d: usize) -> (usize, usize, usize) {
    let s = t.shape();
    (s[..d].iter().product(), s[d], s[d + 1..].iter().product())
}

fn fwd<T: FloatElem>(x: &Tensor, d: usize, log: bool) -> Tensor {
    let (o, n, i) = split(x, d);
    let mut y = PooledVec::<T>::zeros(x.numel());
    if log {
        softmax::log_softmax_forward(o, n, i, x.contiguous_data::<T>(), &mut y);
    } else {
        softmax::softmax_forward(o, n, i, x.contiguous_data::<T>(), &mut y);
    }
    Tensor::from_pooled(y, x.shape())
}

fn bwd<T: FloatElem>(y: &Tensor, dy: &Tensor, d: usize, log: bool) -> Tensor {
    let (o, n, i) = split(y, d);
    let mut dx = PooledVec::<T>::zeros(y.numel());
    if log {
        softmax::log_softmax_backward(o, n, i, y.contiguous_data::<T>(), dy.contiguous_data::<T>(), &mut dx);
    } else {
        softmax::softmax_backward(o, n, i, y.contiguous_data::<T>(), dy.contiguous_data::<T>(), &mut dx);
    }
    Tensor::from_pooled(dx, y.shape())
}

impl Tensor {
    fn softmax_any(&self, dim: isize, log: bool) -> Result<Tensor> {
        let d = self.resolve_dim("softmax", dim)?;
        #[cfg(feature = "cuda")]
        if !self.device().is_cpu() {
            return crate::cuda::ops::reduce::softmax(self, d, log);
        }
        let x = self.float_input("softmax")?.contiguous()?;
        dispatch_float!(x, fwd(&x, d, log)).cast_back(self.dtype())
    }

    fn softmax_any_backward(y: &Tensor, dy: &Tensor, dim: isize, log: bool) -> Result<Tensor> {
        y.check_same("softmax_backward", dy)?;
        y.check_same_shape("softmax_backward", dy)?;
        let d = y.resolve_dim("softmax_backward", dim)?;
        #[cfg(feature = "cuda")]
        if !y.device().is_cpu() {
            return crate::cuda::ops::reduce::softmax_backward(y, dy, d, log);
        }
        let yc = y.float_input("softmax_backward")?.contiguous()?;
        let g = dy.float_input("softmax_backward")?.contiguous()?;
        dispatch_float!(yc, bwd(&yc, &g, d, log)).cast_back(y.dtype())
    }

    /// Numerically stable softmax along `dim`.
    pub fn softmax(&self, dim: isize) -> Result<Tensor> {
        self.softmax_any(dim, false)
    }
    /// `log(softmax(x))` computed stably.
    pub fn log_softmax(&self, dim: isize) -> Result<Tensor> {
        self.softmax_any(dim, true)
    }
    /// Gradient of softmax given its output `y` and the output gradient `dy`.
    pub fn softmax_backward(y: &Tensor, dy: &Tensor, dim: isize) -> Result<Tensor> {
        Self::softmax_any_backward(y, dy, dim, false)
    }
    /// Gradient of log-softmax given its output `y` and the output gradient `dy`.
    pub fn log_softmax_backward(y: &Tensor, dy: &Tensor, dim: isize) -> Result<Tensor> {
        Self::softmax_any_backward(y, dy, dim, true)
    }
}
