//! Views and data movement: reshape (and squeeze/unsqueeze/flatten), permute (and transpose),
//! narrow, expand, cat, index_select, dtype casts.

use super::sum_to_shape;
use crate::autocast::promote;
use crate::node::BackwardOp;
use crate::{Result, Var};
use tensor::Tensor;

struct Reshape {
    shape: Vec<usize>,
}
impl BackwardOp for Reshape {
    fn name(&self) -> &'static str {
        "reshape"
    }
    fn backward(&self, g: &Tensor, _n: &[bool]) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(g.reshape(&self.shape)?)])
    }
}

struct Permute {
    inverse: Vec<usize>,
}
impl BackwardOp for Permute {
    fn name(&self) -> &'static str {
        "permute"
    }
    fn backward(&self, g: &Tensor, _n: &[bool]) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(g.permute(&self.inverse)?)])
    }
}

struct Narrow {
    shape: Vec<usize>,
    dim: usize,
    start: usize,
}
impl BackwardOp for Narrow {
    fn name(&self) -> &'static str {
        "narrow"
    }
    fn backward(&self, g: &Tensor, _n: &[bool]) -> Result<Vec<Option<Tensor>>> {
        // pad the gradient with zeros before and after along `dim`
        let (d, len) = (self.dim, g.shape()[self.dim]);
        let mut before = self.shape.clone();
        before[d] = self.start;
        let mut after = self.shape.clone();
        after[d] = self.shape[d] - self.start - len;
        let zb = Tensor::zeros_on(&before, g.dtype(), g.device())?;
        let za = Tensor::zeros_on(&after, g.dtype(), g.device())?;
        Ok(vec![Some(Tensor::cat(&[&zb, g, &za], d as isize)?)])
    }
}

struct Expand {
    shape: Vec<usize>,
}
impl BackwardOp for Expand {
    fn name(&self) -> &'static str {
        "expand"
    }
    fn backward(&self, g: &Tensor, _n: &[bool]) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(sum_to_shape(g, &self.shape)?)])
    }
}

struct Cat {
    dim: usize,
    sizes: Vec<usize>,
}
impl BackwardOp for Cat {
    fn name(&self) -> &'static str {
        "cat"
    }
    fn backward(&self, g: &Tensor, needs: &[bool]) -> Result<Vec<Option<Tensor>>> {
        let mut start = 0;
        let mut out = Vec::with_capacity(self.sizes.len());
        for (i, &n) in self.sizes.iter().enumerate() {
            out.push(needs[i].then(|| g.narrow(self.dim as isize, start, n)).transpose()?);
            start += n;
        }
        Ok(out)
    }
}

struct IndexSelect {
    dim: isize,
    indices: Tensor,
    shape: Vec<usize>,
}
impl BackwardOp for IndexSelect {
    fn name(&self) -> &'static str {
        "index_select"
    }
    fn backward(&self, g: &Tensor, _n: &[bool]) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(Tensor::index_select_backward(g, self.dim, &self.indices, &self.shape)?)])
    }
    fn saved_bytes(&self) -> usize {
        crate::node::tensor_bytes(&self.indices)
    }
}

struct ToDtype {
    dtype: tensor::DType,
}
impl BackwardOp for ToDtype {
    fn name(&self) -> &'static str {
        "to_dtype"
    }
    fn backward(&self, g: &Tensor, _n: &[bool]) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(g.to_dtype(self.dtype)?)])
    }
}

impl Var {
    fn reshaped(&self, y: Tensor) -> Result<Var> {
        Var::from_op(y, &[self], Reshape { shape: self.shape().to_vec() })
    }
    /// Same elements, new shape (a view when possible).
    pub fn reshape(&self, shape: &[usize]) -> Result<Var> {
        self.reshaped(self.value().reshape(shape)?)
    }
    pub fn squeeze(&self, dim: isize) -> Result<Var> {
        self.reshaped(self.value().squeeze(dim)?)
    }
    pub fn unsqueeze(&self, dim: isize) -> Result<Var> {
        self.reshaped(self.value().unsqueeze(dim)?)
    }
    pub fn flatten(&self, start: isize, end: isize) -> Result<Var> {
        self.reshaped(self.value().flatten(start, end)?)
    }
    /// Reorders dimensions.
    pub fn permute(&self, perm: &[usize]) -> Result<Var> {
        let y = self.value().permute(perm)?;
        let mut inverse = vec![0; perm.len()];
        for (i, &p) in perm.iter().enumerate() {
            inverse[p] = i;
        }
        Var::from_op(y, &[self], Permute { inverse })
    }
    pub fn transpose(&self, d0: isize, d1: isize) -> Result<Var> {
        let r = self.value().rank();
        let (a, b) = (tensor::resolve_dim("transpose", d0, r)?, tensor::resolve_dim("transpose", d1, r)?);
        let mut perm: Vec<usize> = (0..r).collect();
        perm.swap(a, b);
        self.permute(&perm)
    }
    /// Elements `start..start+len` along `dim`.
    pub fn narrow(&self, dim: isize, start: usize, len: usize) -> Result<Var> {
        let y = self.value().narrow(dim, start, len)?;
        let d = self.value().resolve_dim("narrow", dim)?;
        Var::from_op(y, &[self], Narrow { shape: self.shape().to_vec(), dim: d, start })
    }
    /// Broadcast view to `shape`.
    pub fn expand(&self, shape: &[usize]) -> Result<Var> {
        let y = self.value().expand(shape)?;
        Var::from_op(y, &[self], Expand { shape: self.shape().to_vec() })
    }
    /// Concatenation along `dim`.
    /// Under [`crate::autocast`], mixed float dtypes are promoted to the widest one.
    pub fn cat(vars: &[&Var], dim: isize) -> Result<Var> {
        let promoted = promote(vars)?;
        let vars: Vec<&Var> = promoted.iter().collect();
        let vars = vars.as_slice();
        let ts: Vec<&Tensor> = vars.iter().map(|v| v.value()).collect();
        let y = Tensor::cat(&ts, dim)?;
        let d = tensor::resolve_dim("cat", dim, y.rank())?;
        let sizes = vars.iter().map(|v| v.shape()[d]).collect();
        Var::from_op(y, vars, Cat { dim: d, sizes })
    }
    /// Rows along `dim` picked by 1-d i64 `indices` (a constant).
    pub fn index_select(&self, dim: isize, indices: &Tensor) -> Result<Var> {
        let y = self.value().index_select(dim, indices)?;
        Var::from_op(y, &[self], IndexSelect { dim, indices: indices.clone(), shape: self.shape().to_vec() })
    }
    /// Cast to another float dtype; the gradient is cast back.
    pub fn to_dtype(&self, dtype: tensor::DType) -> Result<Var> {
        let y = self.value().to_dtype(dtype)?;
        Var::from_op(y, &[self], ToDtype { dtype: self.dtype() })
    }
}
