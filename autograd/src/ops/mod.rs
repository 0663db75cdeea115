//! Differentiable ops, one module per family: each holds the `Var` methods (forward) and the
//! `BackwardOp` structs (saved tensors + derivative rule) side by side.

pub mod attention;
pub mod binary;
pub mod conv;
pub mod dual_attention;
pub mod loss;
pub mod matmul;
pub mod norm;
pub mod reduce;
pub mod softmax;
pub mod spatial;
pub mod unary;
pub mod views;

use crate::Result;
use tensor::Tensor;

/// Sums a broadcast gradient back to `shape` (over leading dims and dims that were size 1).
pub fn sum_to_shape(g: &Tensor, shape: &[usize]) -> Result<Tensor> {
    if g.shape() == shape {
        return Ok(g.clone());
    }
    let lead = g.rank() - shape.len();
    let mut axes: Vec<isize> = (0..lead as isize).collect();
    for (i, &s) in shape.iter().enumerate() {
        if s == 1 && g.shape()[lead + i] != 1 {
            axes.push((lead + i) as isize);
        }
    }
    let r = if axes.is_empty() { g.clone() } else { g.sum(&axes, true)? };
    Ok(r.reshape(shape)?)
}

/// Bytes of the given tensors.
pub(crate) fn bytes(ts: &[&Tensor]) -> usize {
    ts.iter().map(|t| crate::node::tensor_bytes(t)).sum()
}
