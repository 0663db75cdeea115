//! Nearest upsample, average pool, where and masked fill.

use super::sum_to_shape;
use crate::autocast::promote;
use crate::node::BackwardOp;
use crate::{Result, Var};
use tensor::Tensor;

struct Upsample {
    shape: Vec<usize>,
}
impl BackwardOp for Upsample {
    fn name(&self) -> &'static str {
        "upsample_nearest2d"
    }
    fn backward(&self, g: &Tensor, _n: &[bool]) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(Tensor::upsample_nearest2d_backward(g, &self.shape)?)])
    }
}

struct AvgPool {
    shape: Vec<usize>,
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
    count_include_pad: bool,
}
impl BackwardOp for AvgPool {
    fn name(&self) -> &'static str {
        "avg_pool2d"
    }
    fn backward(&self, g: &Tensor, _n: &[bool]) -> Result<Vec<Option<Tensor>>> {
        let dx = Tensor::avg_pool2d_backward(
            g,
            &self.shape,
            self.kernel,
            self.stride,
            self.padding,
            self.count_include_pad,
        )?;
        Ok(vec![Some(dx)])
    }
}

struct Where {
    cond: Tensor,
    a_shape: Vec<usize>,
    b_shape: Vec<usize>,
}
impl BackwardOp for Where {
    fn name(&self) -> &'static str {
        "where"
    }
    fn backward(&self, g: &Tensor, needs: &[bool]) -> Result<Vec<Option<Tensor>>> {
        let z = Tensor::zeros_on(&[], g.dtype(), g.device())?;
        let ga = needs[0]
            .then(|| -> Result<Tensor> {
                sum_to_shape(&Tensor::where_cond(&self.cond, g, &z)?, &self.a_shape)
            })
            .transpose()?;
        let gb = needs[1]
            .then(|| -> Result<Tensor> {
                sum_to_shape(&Tensor::where_cond(&self.cond, &z, g)?, &self.b_shape)
            })
            .transpose()?;
        Ok(vec![ga, gb])
    }
    fn saved_bytes(&self) -> usize {
        crate::node::tensor_bytes(&self.cond)
    }
}

struct MaskedFill {
    mask: Tensor,
}
impl BackwardOp for MaskedFill {
    fn name(&self) -> &'static str {
        "masked_fill"
    }
    fn backward(&self, g: &Tensor, _n: &[bool]) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(g.masked_fill(&self.mask, 0.0)?)])
    }
    fn saved_bytes(&self) -> usize {
        crate::node::tensor_bytes(&self.mask)
    }
}

impl Var {
    /// Nearest upsampling of [N, C, H, W] to [N, C, oh, ow].
    pub fn upsample_nearest2d(&self, oh: usize, ow: usize) -> Result<Var> {
        let y = self.value().upsample_nearest2d(oh, ow)?;
        Var::from_op(y, &[self], Upsample { shape: self.shape().to_vec() })
    }
    /// Average pooling of [N, C, H, W].
    pub fn avg_pool2d(
        &self,
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
        count_include_pad: bool,
    ) -> Result<Var> {
        let y = self.value().avg_pool2d(kernel, stride, padding, count_include_pad)?;
        Var::from_op(
            y,
            &[self],
            AvgPool { shape: self.shape().to_vec(), kernel, stride, padding, count_include_pad },
        )
    }
    /// `cond ? a : b` with broadcasting; `cond` is a constant u8 tensor.
    /// Under [`crate::autocast`], mixed float dtypes of `a` and `b` are promoted to the wider one.
    pub fn where_cond(cond: &Tensor, a: &Var, b: &Var) -> Result<Var> {
        let ab = promote(&[a, b])?;
        let (a, b) = (&ab[0], &ab[1]);
        let y = Tensor::where_cond(cond, a.value(), b.value())?;
        let op = Where { cond: cond.clone(), a_shape: a.shape().to_vec(), b_shape: b.shape().to_vec() };
        Var::from_op(y, &[a, b], op)
    }
    /// `self` with `value` where the constant u8 `mask` is nonzero.
    pub fn masked_fill(&self, mask: &Tensor, value: f64) -> Result<Var> {
        let y = self.value().masked_fill(mask, value)?;
        Var::from_op(y, &[self], MaskedFill { mask: mask.clone() })
    }
}
