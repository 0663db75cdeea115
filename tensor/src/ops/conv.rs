//! 2-d convolution (NCHW) forward and its input, weight and bias gradients. On CUDA tensors the
//! implicit-GEMM kernels run (`crate::cuda::ops::conv`); the bias gradient is a reduce-family sum.

use super::{FloatElem, dispatch_float};
use crate::{Error, Result, Tensor};
use kernels::conv::{self, Conv2dParams};
use kernels::pool::PooledVec;

/// Stride, padding, dilation and groups of a 2-d convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dOptions {
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
    pub groups: usize,
}

impl Default for Conv2dOptions {
    fn default() -> Self {
        Self { stride: [1, 1], padding: [0, 0], dilation: [1, 1], groups: 1 }
    }
}

fn params(op: &'static str, x: &[usize], w: &[usize], o: &Conv2dOptions) -> Result<Conv2dParams> {
    if x.len() != 4 {
        return Err(Error::RankMismatch { op, expected: "4 (input [N, C, H, W])".into(), shape: x.to_vec() });
    }
    if w.len() != 4 {
        return Err(Error::RankMismatch {
            op,
            expected: "4 (weight [C_out, C_in/groups, kH, kW])".into(),
            shape: w.to_vec(),
        });
    }
    if o.groups == 0 || !x[1].is_multiple_of(o.groups) || w[1] * o.groups != x[1] {
        return Err(Error::invalid(
            op,
            format!(
                "input {x:?} and weight {w:?} do not match groups = {} (need C_in = weight.shape[1] · groups)",
                o.groups
            ),
        ));
    }
    let p = Conv2dParams {
        n: x[0],
        c_in: x[1],
        h: x[2],
        w: x[3],
        c_out: w[0],
        kh: w[2],
        kw: w[3],
        stride: o.stride,
        padding: o.padding,
        dilation: o.dilation,
        groups: o.groups,
    };
    p.validate().map_err(|m| Error::invalid(op, format!("input {x:?}, weight {w:?}: {m}")))?;
    Ok(p)
}

fn fwd<T: FloatElem>(p: &Conv2dParams, x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Tensor {
    let mut y = PooledVec::<T>::zeros(p.y_len());
    conv::conv2d_forward(
        p,
        x.contiguous_data::<T>(),
        w.contiguous_data::<T>(),
        b.map(|b| b.contiguous_data::<T>()),
        &mut y,
    );
    Tensor::from_pooled(y, &[p.n, p.c_out, p.out_h(), p.out_w()])
}

fn bwd_input<T: FloatElem>(p: &Conv2dParams, w: &Tensor, dy: &Tensor) -> Tensor {
    let mut dx = PooledVec::<T>::zeros(p.x_len());
    conv::conv2d_backward_input(p, w.contiguous_data::<T>(), dy.contiguous_data::<T>(), &mut dx);
    Tensor::from_pooled(dx, &[p.n, p.c_in, p.h, p.w])
}

fn bwd_weight<T: FloatElem>(p: &Conv2dParams, x: &Tensor, dy: &Tensor) -> Tensor {
    let mut dw = PooledVec::<T>::zeros(p.w_len());
    conv::conv2d_backward_weight(p, x.contiguous_data::<T>(), dy.contiguous_data::<T>(), &mut dw);
    Tensor::from_pooled(dw, &[p.c_out, p.c_in / p.groups, p.kh, p.kw])
}

fn bwd_bias<T: FloatElem>(p: &Conv2dParams, dy: &Tensor) -> Tensor {
    let mut db = PooledVec::<T>::zeros(p.c_out);
    conv::conv2d_backward_bias(p, dy.contiguous_data::<T>(), &mut db);
    Tensor::from_pooled(db, &[p.c_out])
}

fn prep(t: &Tensor, op: &'static str) -> Result<Tensor> {
    t.require_cpu(op)?;
    t.float_input(op)?.contiguous()
}

impl Tensor {
    /// 2-d convolution: `self` [N, C_in, H, W], `weight` [C_out, C_in/groups, kH, kW], optional
    /// `bias` [C_out] → [N, C_out, H_out, W_out].
    pub fn conv2d(&self, weight: &Tensor, bias: Option<&Tensor>, o: &Conv2dOptions) -> Result<Tensor> {
        let op = "conv2d";
        self.check_same(op, weight)?;
        let p = params(op, self.shape(), weight.shape(), o)?;
        if let Some(b) = bias {
            self.check_same(op, b)?;
            if b.shape() != [p.c_out] {
                return Err(Error::ShapeMismatch {
                    op: "conv2d bias",
                    lhs: b.shape().to_vec(),
                    rhs: vec![p.c_out],
                });
            }
        }
        #[cfg(feature = "cuda")]
        if !self.device().is_cpu() {
            return crate::cuda::ops::conv::forward(&p, self, weight, bias);
        }
        let (x, w) = (prep(self, op)?, prep(weight, op)?);
        let b = bias.map(|b| prep(b, op)).transpose()?;
        dispatch_float!(x, fwd(&p, &x, &w, b.as_ref())).cast_back(self.dtype())
    }

    /// Gradient of `conv2d` with respect to its input, given the weight and the output gradient.
    pub fn conv2d_backward_input(
        input_shape: &[usize],
        weight: &Tensor,
        dy: &Tensor,
        o: &Conv2dOptions,
    ) -> Result<Tensor> {
        let op = "conv2d_backward_input";
        weight.check_same(op, dy)?;
        let p = params(op, input_shape, weight.shape(), o)?;
        check_dy(op, &p, dy)?;
        #[cfg(feature = "cuda")]
        if !dy.device().is_cpu() {
            return crate::cuda::ops::conv::backward_input(&p, weight, dy);
        }
        let (w, g) = (prep(weight, op)?, prep(dy, op)?);
        dispatch_float!(w, bwd_input(&p, &w, &g)).cast_back(dy.dtype())
    }

    /// Gradient of `conv2d` with respect to its weight, given the input and the output gradient.
    pub fn conv2d_backward_weight(
        input: &Tensor,
        weight_shape: &[usize],
        dy: &Tensor,
        o: &Conv2dOptions,
    ) -> Result<Tensor> {
        let op = "conv2d_backward_weight";
        input.check_same(op, dy)?;
        let p = params(op, input.shape(), weight_shape, o)?;
        check_dy(op, &p, dy)?;
        #[cfg(feature = "cuda")]
        if !dy.device().is_cpu() {
            return crate::cuda::ops::conv::backward_weight(&p, input, dy);
        }
        let (x, g) = (prep(input, op)?, prep(dy, op)?);
        dispatch_float!(x, bwd_weight(&p, &x, &g)).cast_back(dy.dtype())
    }

    /// Gradient of `conv2d` with respect to its bias: `dy` summed over N, H_out, W_out.
    pub fn conv2d_backward_bias(dy: &Tensor) -> Result<Tensor> {
        let op = "conv2d_backward_bias";
        if dy.rank() != 4 {
            return Err(Error::RankMismatch { op, expected: "4".into(), shape: dy.shape().to_vec() });
        }
        #[cfg(feature = "cuda")]
        if !dy.device().is_cpu() {
            // The reduce family's deterministic sum over (n, oh, ow) (f32 accumulation for 16-bit).
            crate::cuda::ops::float_suffix(op, dy.dtype())?;
            return dy.sum(&[0, 2, 3], false);
        }
        dy.require_cpu(op)?;
        let s = dy.shape();
        let p = Conv2dParams {
            n: s[0],
            c_in: 1,
            h: s[2],
            w: s[3],
            c_out: s[1],
            kh: 1,
            kw: 1,
            stride: [1, 1],
            padding: [0, 0],
            dilation: [1, 1],
            groups: 1,
        };
        let g = prep(dy, op)?;
        dispatch_float!(g, bwd_bias(&p, &g)).cast_back(dy.dtype())
    }
}

fn check_dy(op: &'static str, p: &Conv2dParams, dy: &Tensor) -> Result<()> {
    let want = [p.n, p.c_out, p.out_h(), p.out_w()];
    if dy.shape() != want {
        return Err(Error::ShapeMismatch { op, lhs: dy.shape().to_vec(), rhs: want.to_vec() });
    }
    Ok(())
}
