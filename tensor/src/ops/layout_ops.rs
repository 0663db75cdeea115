//! Data-movement ops: concat, nearest upsample, average pool, index-select, where / masked-fill.

use super::{FloatElem, dispatch_float};
use crate::storage::CpuStorage;
use crate::{DType, Error, Result, Tensor};
use kernels::layout::{self, Pool2dParams};
use kernels::pool::PooledVec;

/// Applies `$body` with `$v` bound to the typed storage slice of `$t`, for every dtype, and wraps
/// the resulting `PooledVec` back into storage of the same dtype.
macro_rules! any_dtype {
    ($t:expr, |$v:ident| $body:expr) => {
        match $t.cpu() {
            CpuStorage::F32($v) => CpuStorage::F32($body),
            CpuStorage::F64($v) => CpuStorage::F64($body),
            CpuStorage::F16($v) => CpuStorage::F16($body),
            CpuStorage::BF16($v) => CpuStorage::BF16($body),
            CpuStorage::I64($v) => CpuStorage::I64($body),
            CpuStorage::U8($v) => CpuStorage::U8($body),
        }
    };
}

fn up_fwd<T: FloatElem>(x: &Tensor, oh: usize, ow: usize) -> Tensor {
    let s = x.shape();
    let (nc, h, w) = (s[0] * s[1], s[2], s[3]);
    let mut y = PooledVec::<T>::zeros(nc * oh * ow);
    layout::upsample_nearest2d(nc, h, w, oh, ow, x.contiguous_data::<T>(), &mut y);
    Tensor::from_pooled(y, &[s[0], s[1], oh, ow])
}

fn up_bwd<T: FloatElem>(dy: &Tensor, in_shape: &[usize]) -> Tensor {
    let (nc, h, w) = (in_shape[0] * in_shape[1], in_shape[2], in_shape[3]);
    let (oh, ow) = (dy.shape()[2], dy.shape()[3]);
    let mut dx = PooledVec::<T>::zeros(nc * h * w);
    layout::upsample_nearest2d_backward(nc, h, w, oh, ow, dy.contiguous_data::<T>(), &mut dx);
    Tensor::from_pooled(dx, in_shape)
}

fn pool_fwd<T: FloatElem>(p: &Pool2dParams, x: &Tensor, n: usize, c: usize) -> Tensor {
    let mut y = PooledVec::<T>::zeros(p.nc * p.out_h() * p.out_w());
    layout::avg_pool2d(p, x.contiguous_data::<T>(), &mut y);
    Tensor::from_pooled(y, &[n, c, p.out_h(), p.out_w()])
}

fn pool_bwd<T: FloatElem>(p: &Pool2dParams, dy: &Tensor, in_shape: &[usize]) -> Tensor {
    let mut dx = PooledVec::<T>::zeros(p.nc * p.h * p.w);
    layout::avg_pool2d_backward(p, dy.contiguous_data::<T>(), &mut dx);
    Tensor::from_pooled(dx, in_shape)
}

fn isel_bwd<T: FloatElem>(
    dy: &Tensor,
    idx: &[i64],
    shape: &[usize],
    d: usize,
) -> std::result::Result<Tensor, usize> {
    let (o, n, i) = (shape[..d].iter().product(), shape[d], shape[d + 1..].iter().product());
    let mut dx = PooledVec::<T>::zeros(kernels::strided::numel(shape));
    layout::index_select_backward(o, n, i, dy.contiguous_data::<T>(), idx, &mut dx)?;
    Ok(Tensor::from_pooled(dx, shape))
}

fn check_nchw(op: &'static str, t: &Tensor) -> Result<()> {
    if t.rank() != 4 {
        return Err(Error::RankMismatch {
            op,
            expected: "4 ([N, C, H, W])".into(),
            shape: t.shape().to_vec(),
        });
    }
    Ok(())
}

impl Tensor {
    /// Concatenates tensors of equal rank, dtype and shape (except along `dim`).
    pub fn cat(tensors: &[&Tensor], dim: isize) -> Result<Tensor> {
        let first = tensors.first().ok_or_else(|| Error::invalid("cat", "no tensors given"))?;
        let d = first.resolve_dim("cat", dim)?;
        let mut out_shape = first.shape().to_vec();
        out_shape[d] = 0;
        for t in tensors {
            first.check_same("cat", t)?;
            let compatible = t.rank() == first.rank()
                && t.shape().iter().zip(first.shape()).enumerate().all(|(i, (a, b))| i == d || a == b);
            if !compatible {
                return Err(Error::ShapeMismatch {
                    op: "cat",
                    lhs: first.shape().to_vec(),
                    rhs: t.shape().to_vec(),
                });
            }
            out_shape[d] += t.shape()[d];
        }
        #[cfg(feature = "cuda")]
        if !first.device().is_cpu() {
            return crate::cuda::ops::layout::cat(tensors, d, &out_shape);
        }
        let n = kernels::strided::numel(&out_shape);
        macro_rules! go {
            ($variant:ident, $ty:ty) => {{
                let ins: Vec<(&[$ty], &kernels::StridedLayout)> = tensors
                    .iter()
                    .map(|t| match t.cpu() {
                        CpuStorage::$variant(v) => (&v[..], t.layout()),
                        _ => unreachable!("dtypes checked"),
                    })
                    .collect();
                let mut out = PooledVec::<$ty>::zeros(n);
                layout::concat(&ins, d, &mut out);
                CpuStorage::$variant(out)
            }};
        }
        let s = match first.dtype() {
            DType::F32 => go!(F32, f32),
            DType::F64 => go!(F64, f64),
            DType::F16 => go!(F16, u16),
            DType::BF16 => go!(BF16, u16),
            DType::I64 => go!(I64, i64),
            DType::U8 => go!(U8, u8),
        };
        Ok(Tensor::from_cpu(s, &out_shape))
    }

    /// Nearest-neighbour upsampling of [N, C, H, W] to [N, C, oh, ow] (PyTorch `mode='nearest'`).
    pub fn upsample_nearest2d(&self, oh: usize, ow: usize) -> Result<Tensor> {
        check_nchw("upsample_nearest2d", self)?;
        if (oh == 0 || ow == 0) && self.numel() > 0 {
            return Err(Error::invalid(
                "upsample_nearest2d",
                format!("output size {oh}x{ow} for input {:?}", self.shape()),
            ));
        }
        #[cfg(feature = "cuda")]
        if !self.device().is_cpu() {
            return crate::cuda::ops::layout::upsample_nearest2d(self, oh, ow);
        }
        let x = self.float_input("upsample_nearest2d")?.contiguous()?;
        dispatch_float!(x, up_fwd(&x, oh, ow)).cast_back(self.dtype())
    }

    /// Gradient of [`Tensor::upsample_nearest2d`]: sums `dy` into the source pixels.
    pub fn upsample_nearest2d_backward(dy: &Tensor, input_shape: &[usize]) -> Result<Tensor> {
        check_nchw("upsample_nearest2d_backward", dy)?;
        if input_shape.len() != 4 || input_shape[..2] != dy.shape()[..2] {
            return Err(Error::ShapeMismatch {
                op: "upsample_nearest2d_backward",
                lhs: dy.shape().to_vec(),
                rhs: input_shape.to_vec(),
            });
        }
        #[cfg(feature = "cuda")]
        if !dy.device().is_cpu() {
            return crate::cuda::ops::layout::upsample_nearest2d_backward(dy, input_shape);
        }
        let g = dy.float_input("upsample_nearest2d_backward")?.contiguous()?;
        dispatch_float!(g, up_bwd(&g, input_shape)).cast_back(dy.dtype())
    }

    fn pool_params(
        op: &'static str,
        shape: &[usize],
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
        count_include_pad: bool,
    ) -> Result<Pool2dParams> {
        let p = Pool2dParams {
            nc: shape[0] * shape[1],
            h: shape[2],
            w: shape[3],
            kernel,
            stride,
            padding,
            count_include_pad,
        };
        p.validate().map_err(|m| Error::invalid(op, format!("input {shape:?}: {m}")))?;
        Ok(p)
    }

    /// Average pooling of [N, C, H, W] (floor output size; `count_include_pad` as in PyTorch).
    pub fn avg_pool2d(
        &self,
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
        count_include_pad: bool,
    ) -> Result<Tensor> {
        check_nchw("avg_pool2d", self)?;
        let p = Self::pool_params("avg_pool2d", self.shape(), kernel, stride, padding, count_include_pad)?;
        let (n, c) = (self.shape()[0], self.shape()[1]);
        #[cfg(feature = "cuda")]
        if !self.device().is_cpu() {
            return crate::cuda::ops::layout::avg_pool2d(self, &p, n, c);
        }
        let x = self.float_input("avg_pool2d")?.contiguous()?;
        dispatch_float!(x, pool_fwd(&p, &x, n, c)).cast_back(self.dtype())
    }

    /// Gradient of [`Tensor::avg_pool2d`].
    pub fn avg_pool2d_backward(
        dy: &Tensor,
        input_shape: &[usize],
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
        count_include_pad: bool,
    ) -> Result<Tensor> {
        check_nchw("avg_pool2d_backward", dy)?;
        if input_shape.len() != 4 {
            return Err(Error::RankMismatch {
                op: "avg_pool2d_backward",
                expected: "4".into(),
                shape: input_shape.to_vec(),
            });
        }
        let p = Self::pool_params(
            "avg_pool2d_backward",
            input_shape,
            kernel,
            stride,
            padding,
            count_include_pad,
        )?;
        let want = [input_shape[0], input_shape[1], p.out_h(), p.out_w()];
        if dy.shape() != want {
            return Err(Error::ShapeMismatch {
                op: "avg_pool2d_backward",
                lhs: dy.shape().to_vec(),
                rhs: want.to_vec(),
            });
        }
        #[cfg(feature = "cuda")]
        if !dy.device().is_cpu() {
            return crate::cuda::ops::layout::avg_pool2d_backward(dy, &p, input_shape);
        }
        let g = dy.float_input("avg_pool2d_backward")?.contiguous()?;
        dispatch_float!(g, pool_bwd(&p, &g, input_shape)).cast_back(dy.dtype())
    }

    fn index_check(op: &'static str, idx: &Tensor) -> Result<()> {
        if idx.dtype() != DType::I64 || idx.rank() != 1 {
            return Err(Error::invalid(
                op,
                format!("indices must be a 1-d i64 tensor, got {} {:?}", idx.dtype(), idx.shape()),
            ));
        }
        Ok(())
    }

    fn index_list(op: &'static str, idx: &Tensor) -> Result<Vec<i64>> {
        Self::index_check(op, idx)?;
        idx.to_vec::<i64>()
    }

    /// Rows of `self` along `dim` picked by the 1-d i64 `indices` (negative indices count from the end).
    pub fn index_select(&self, dim: isize, indices: &Tensor) -> Result<Tensor> {
        let d = self.resolve_dim("index_select", dim)?;
        if self.device() != indices.device() {
            return Err(Error::DeviceMismatch {
                op: "index_select",
                lhs: self.device(),
                rhs: indices.device(),
            });
        }
        #[cfg(feature = "cuda")]
        if !self.device().is_cpu() {
            Self::index_check("index_select", indices)?;
            return crate::cuda::ops::layout::index_select(self, d, indices);
        }
        let idx = Self::index_list("index_select", indices)?;
        let x = self.contiguous()?;
        let s = x.shape();
        let (o, n, i) = (s[..d].iter().product::<usize>(), s[d], s[d + 1..].iter().product::<usize>());
        let mut out_shape = s.to_vec();
        out_shape[d] = idx.len();
        let len = o * idx.len() * i;
        let mut bad = None;
        let st = any_dtype!(x, |v| {
            let mut out = PooledVec::zeros(len);
            if let Err(p) =
                layout::index_select(o, n, i, &v[x.offset()..x.offset() + x.numel()], &idx, &mut out)
            {
                bad = Some(p);
            }
            out
        });
        if let Some(p) = bad {
            return Err(Error::IndexOutOfRange { op: "index_select", index: idx[p], dim: d, size: n });
        }
        Ok(Tensor::from_cpu(st, &out_shape))
    }

    /// Gradient of [`Tensor::index_select`]: `dy` scattered (added) back into a zero tensor of
    /// `input_shape`; repeated indices accumulate.
    pub fn index_select_backward(
        dy: &Tensor,
        dim: isize,
        indices: &Tensor,
        input_shape: &[usize],
    ) -> Result<Tensor> {
        let d = crate::tensor::resolve_dim("index_select_backward", dim, input_shape.len())?;
        Self::index_check("index_select_backward", indices)?;
        let mut want = input_shape.to_vec();
        want[d] = indices.numel();
        if dy.shape() != want {
            return Err(Error::ShapeMismatch {
                op: "index_select_backward",
                lhs: dy.shape().to_vec(),
                rhs: want,
            });
        }
        if dy.device() != indices.device() {
            return Err(Error::DeviceMismatch {
                op: "index_select_backward",
                lhs: dy.device(),
                rhs: indices.device(),
            });
        }
        #[cfg(feature = "cuda")]
        if !dy.device().is_cpu() {
            return crate::cuda::ops::layout::index_select_backward(dy, d, indices, input_shape);
        }
        let idx = Self::index_list("index_select_backward", indices)?;
        let g = dy.float_input("index_select_backward")?.contiguous()?;
        let r = dispatch_float!(g, isel_bwd(&g, &idx, input_shape, d));
        match r {
            Ok(t) => t.cast_back(dy.dtype()),
            Err(p) => Err(Error::IndexOutOfRange {
                op: "index_select_backward",
                index: idx[p],
                dim: d,
                size: input_shape[d],
            }),
        }
    }

    /// `cond ? a : b` elementwise with broadcasting; `cond` is u8 (nonzero = take `a`).
    pub fn where_cond(cond: &Tensor, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        if cond.dtype() != DType::U8 {
            return Err(Error::UnsupportedDType { op: "where", dtype: cond.dtype(), expected: "u8" });
        }
        a.check_same("where", b)?;
        if cond.device() != a.device() {
            return Err(Error::DeviceMismatch { op: "where", lhs: cond.device(), rhs: a.device() });
        }
        let shape = crate::views::broadcast_shape(cond.shape(), a.shape())
            .and_then(|s| crate::views::broadcast_shape(&s, b.shape()))
            .ok_or_else(|| Error::BroadcastIncompatible {
                op: "where",
                lhs: cond.shape().to_vec(),
                rhs: a.shape().to_vec(),
            })?;
        let (c, a, b) = (cond.expand(&shape)?, a.expand(&shape)?, b.expand(&shape)?);
        #[cfg(feature = "cuda")]
        if !a.device().is_cpu() {
            return crate::cuda::ops::layout::where_cond(&c, &a, &b);
        }
        let cd = match c.cpu() {
            CpuStorage::U8(v) => &v[..],
            _ => unreachable!(),
        };
        let n = kernels::strided::numel(&shape);
        macro_rules! go {
            ($variant:ident) => {{
                let (CpuStorage::$variant(va), CpuStorage::$variant(vb)) = (a.cpu(), b.cpu()) else {
                    unreachable!()
                };
                let mut out = PooledVec::zeros(n);
                layout::where_select(cd, c.layout(), &va[..], a.layout(), &vb[..], b.layout(), &mut out);
                CpuStorage::$variant(out)
            }};
        }
        let s = match a.dtype() {
            DType::F32 => go!(F32),
            DType::F64 => go!(F64),
            DType::F16 => go!(F16),
            DType::BF16 => go!(BF16),
            DType::I64 => go!(I64),
            DType::U8 => go!(U8),
        };
        Ok(Tensor::from_cpu(s, &shape))
    }

    /// `self` with `value` where `mask` (u8, broadcastable to `self`) is nonzero.
    pub fn masked_fill(&self, mask: &Tensor, value: f64) -> Result<Tensor> {
        let fill = Tensor::full_on(&[], value, self.dtype(), self.device())?;
        let r = Tensor::where_cond(mask, &fill, self)?;
        if r.shape() != self.shape() {
            return Err(Error::BroadcastIncompatible {
                op: "masked_fill",
                lhs: self.shape().to_vec(),
                rhs: mask.shape().to_vec(),
            });
        }
        Ok(r)
    }
}
