//! Reductions. Backward broadcasts the output gradient back over the reduced axes.

use crate::autocast::upper;
use crate::node::BackwardOp;
use crate::{Result, Var};
use tensor::{ReduceOp, Tensor};

struct Reduce {
    op: ReduceOp,
    /// Reduced axes (resolved, sorted).
    axes: Vec<usize>,
    shape: Vec<usize>,
    /// The input, saved only where the rule needs its values (max, min, var).
    x: Option<Tensor>,
    /// Output with reduced dims kept (max/min need it to find the winners).
    out_keep: Option<Tensor>,
}

fn keep_shape(shape: &[usize], axes: &[usize]) -> Vec<usize> {
    shape.iter().enumerate().map(|(d, &n)| if axes.contains(&d) { 1 } else { n }).collect()
}

impl BackwardOp for Reduce {
    fn name(&self) -> &'static str {
        match self.op {
            ReduceOp::Sum => "sum",
            ReduceOp::Mean => "mean",
            ReduceOp::Max => "max",
            ReduceOp::Min => "min",
            ReduceOp::Var { .. } => "var",
        }
    }

    fn backward(&self, g: &Tensor, _needs: &[bool]) -> Result<Vec<Option<Tensor>>> {
        let shape = self.shape.as_slice();
        let gk = g.reshape(&keep_shape(shape, &self.axes))?;
        let count: usize = self.axes.iter().map(|&a| shape[a]).product();
        let dx = match self.op {
            ReduceOp::Sum => gk.expand(shape)?,
            ReduceOp::Mean => gk.mul_scalar(1.0 / count as f64)?.expand(shape)?,
            ReduceOp::Max | ReduceOp::Min => {
                // the gradient is shared evenly by all elements equal to the extremum
                let out = self.out_keep.as_ref().expect("max/min save their output");
                let x = self.x.as_ref().expect("max/min save their input");
                let mask = x.eq(out)?.to_dtype(g.dtype())?;
                let axes: Vec<isize> = self.axes.iter().map(|&a| a as isize).collect();
                let n = mask.sum(&axes, true)?;
                mask.mul(&gk.div(&n)?)?
            }
            ReduceOp::Var { correction } => {
                let axes: Vec<isize> = self.axes.iter().map(|&a| a as isize).collect();
                let x = self.x.as_ref().expect("var saves its input");
                let mean = x.mean(&axes, true)?;
                let denom = count as f64 - correction as f64;
                x.sub(&mean)?.mul_scalar(2.0 / denom)?.mul(&gk)?
            }
        };
        Ok(vec![Some(dx)])
    }

    fn saved_bytes(&self) -> usize {
        self.x.as_ref().map_or(0, crate::node::tensor_bytes)
            + self.out_keep.as_ref().map_or(0, crate::node::tensor_bytes)
    }
}

impl Var {
    /// Reduces over `dims` (empty = all), keeping them with size 1 when `keepdim`.
    /// Under [`crate::autocast`] a half input is cast to f32 first (f32 output).
    pub fn reduce(&self, op: ReduceOp, dims: &[isize], keepdim: bool) -> Result<Var> {
        let xv = upper(self)?;
        let x = xv.value();
        let mut axes: Vec<usize> = if dims.is_empty() {
            (0..x.rank()).collect()
        } else {
            dims.iter().map(|&d| x.resolve_dim("reduce", d)).collect::<tensor::Result<_>>()?
        };
        axes.sort_unstable();
        let y = x.reduce(op, dims, keepdim)?;
        let out_keep = matches!(op, ReduceOp::Max | ReduceOp::Min)
            .then(|| y.reshape(&keep_shape(x.shape(), &axes)))
            .transpose()?;
        let saved_x = (!matches!(op, ReduceOp::Sum | ReduceOp::Mean)).then(|| x.clone());
        Var::from_op(y, &[&xv], Reduce { op, axes, shape: x.shape().to_vec(), x: saved_x, out_keep })
    }
    pub fn sum(&self, dims: &[isize], keepdim: bool) -> Result<Var> {
        self.reduce(ReduceOp::Sum, dims, keepdim)
    }
    pub fn sum_all(&self) -> Result<Var> {
        self.reduce(ReduceOp::Sum, &[], false)
    }
    pub fn mean(&self, dims: &[isize], keepdim: bool) -> Result<Var> {
        self.reduce(ReduceOp::Mean, dims, keepdim)
    }
    pub fn mean_all(&self) -> Result<Var> {
        self.reduce(ReduceOp::Mean, &[], false)
    }
    pub fn max(&self, dims: &[isize], keepdim: bool) -> Result<Var> {
        self.reduce(ReduceOp::Max, dims, keepdim)
    }
    pub fn min(&self, dims: &[isize], keepdim: bool) -> Result<Var> {
        self.reduce(ReduceOp::Min, dims, keepdim)
    }
    pub fn var(&self, dims: &[isize], correction: usize, keepdim: bool) -> Result<Var> {
        self.reduce(ReduceOp::Var { correction }, dims, keepdim)
    }
}
