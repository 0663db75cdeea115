//! Zero-copy views: reshape/view, permute, transpose, narrow, select, expand, squeeze, unsqueeze.
//! Each returns a tensor sharing the storage; only `reshape` of a non-viewable layout copies.

use crate::tensor::resolve_dim;
use crate::{Error, Result, Tensor};
use kernels::StridedLayout;
use kernels::strided::{contiguous_strides, numel};

/// Strides that let `new_shape` address the same elements as (`shape`, `strides`) in row-major
/// order, or `None` when that needs a copy (PyTorch's `computeStride` rule).
pub fn view_strides(shape: &[usize], strides: &[usize], new_shape: &[usize]) -> Option<Vec<usize>> {
    if numel(shape) != numel(new_shape) {
        return None;
    }
    if numel(shape) == 0 || shape.is_empty() {
        return Some(contiguous_strides(new_shape));
    }
    let mut new_strides = vec![0usize; new_shape.len()];
    let mut view_d = new_shape.len() as isize - 1;
    let mut chunk_base_stride = *strides.last().unwrap();
    let mut tensor_numel = 1usize;
    let mut view_numel = 1usize;
    for tensor_d in (0..shape.len()).rev() {
        tensor_numel *= shape[tensor_d];
        let chunk_ends = tensor_d == 0
            || (shape[tensor_d - 1] != 1 && strides[tensor_d - 1] != tensor_numel * chunk_base_stride);
        if chunk_ends {
            while view_d >= 0 && (view_numel < tensor_numel || new_shape[view_d as usize] == 1) {
                new_strides[view_d as usize] = view_numel * chunk_base_stride;
                view_numel *= new_shape[view_d as usize];
                view_d -= 1;
            }
            if view_numel != tensor_numel {
                return None;
            }
            if tensor_d > 0 {
                chunk_base_stride = strides[tensor_d - 1];
                tensor_numel = 1;
                view_numel = 1;
            }
        }
    }
    if view_d != -1 {
        return None;
    }
    Some(new_strides)
}

/// Resolves one `-1` entry of a requested shape from the element count.
fn infer_shape(op: &'static str, numel_: usize, shape: &[isize]) -> Result<Vec<usize>> {
    let holes = shape.iter().filter(|&&d| d == -1).count();
    if holes > 1 || shape.iter().any(|&d| d < -1) {
        return Err(Error::invalid(
            op,
            format!("shape {shape:?}: at most one -1 and no other negative size"),
        ));
    }
    let known: usize = shape.iter().filter(|&&d| d >= 0).map(|&d| d as usize).product();
    let mut out: Vec<usize> = shape.iter().map(|&d| d.max(0) as usize).collect();
    if holes == 1 {
        if known == 0 || !numel_.is_multiple_of(known) {
            return Err(Error::invalid(op, format!("cannot infer -1 in {shape:?} for {numel_} elements")));
        }
        let i = shape.iter().position(|&d| d == -1).unwrap();
        out[i] = numel_ / known;
    }
    Ok(out)
}

impl Tensor {
    /// Same elements with a new shape, sharing storage; errors when the layout does not allow it.
    pub fn view(&self, shape: &[usize]) -> Result<Tensor> {
        if numel(shape) != self.numel() {
            return Err(Error::ElementCount {
                op: "view",
                shape: shape.to_vec(),
                expected: numel(shape),
                len: self.numel(),
            });
        }
        match view_strides(self.shape(), self.strides(), shape) {
            Some(strides) => Ok(self.with_layout(StridedLayout::new(shape.to_vec(), strides, self.offset()))),
            None => Err(Error::NotViewable {
                op: "view",
                shape: self.shape().to_vec(),
                strides: self.strides().to_vec(),
                target: shape.to_vec(),
            }),
        }
    }

    /// Same elements with a new shape: a view when the layout allows, else a contiguous copy.
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor> {
        if numel(shape) != self.numel() {
            return Err(Error::ElementCount {
                op: "reshape",
                shape: shape.to_vec(),
                expected: numel(shape),
                len: self.numel(),
            });
        }
        match self.view(shape) {
            Ok(t) => Ok(t),
            Err(_) => self.contiguous()?.view(shape),
        }
    }

    /// `reshape` with at most one `-1` entry inferred from the element count.
    pub fn reshape_infer(&self, shape: &[isize]) -> Result<Tensor> {
        let s = infer_shape("reshape", self.numel(), shape)?;
        self.reshape(&s)
    }

    /// Collapses dims `start..=end` into one.
    pub fn flatten(&self, start: isize, end: isize) -> Result<Tensor> {
        if self.rank() == 0 {
            return self.reshape(&[1]);
        }
        let s = self.resolve_dim("flatten", start)?;
        let e = self.resolve_dim("flatten", end)?;
        if s > e {
            return Err(Error::invalid("flatten", format!("start dim {start} after end dim {end}")));
        }
        let mut shape = self.shape()[..s].to_vec();
        shape.push(self.shape()[s..=e].iter().product());
        shape.extend_from_slice(&self.shape()[e + 1..]);
        self.reshape(&shape)
    }

    /// Reorders dimensions: output dim `i` is input dim `perm[i]`.
    pub fn permute(&self, perm: &[usize]) -> Result<Tensor> {
        let r = self.rank();
        let mut seen = vec![false; r];
        if perm.len() != r || perm.iter().any(|&p| p >= r || std::mem::replace(&mut seen[p], true)) {
            return Err(Error::invalid(
                "permute",
                format!("{perm:?} is not a permutation of 0..{r} (shape {:?})", self.shape()),
            ));
        }
        let shape = perm.iter().map(|&p| self.shape()[p]).collect();
        let strides = perm.iter().map(|&p| self.strides()[p]).collect();
        Ok(self.with_layout(StridedLayout::new(shape, strides, self.offset())))
    }

    /// Swaps two dimensions.
    pub fn transpose(&self, d0: isize, d1: isize) -> Result<Tensor> {
        let a = self.resolve_dim("transpose", d0)?;
        let b = self.resolve_dim("transpose", d1)?;
        let mut perm: Vec<usize> = (0..self.rank()).collect();
        perm.swap(a, b);
        self.permute(&perm)
    }

    /// Transpose of the last two dimensions.
    pub fn t(&self) -> Result<Tensor> {
        if self.rank() < 2 {
            return Err(Error::RankMismatch {
                op: "t",
                expected: ">= 2".into(),
                shape: self.shape().to_vec(),
            });
        }
        self.transpose(-2, -1)
    }

    /// Elements `start..start+len` along `dim`.
    pub fn narrow(&self, dim: isize, start: usize, len: usize) -> Result<Tensor> {
        let d = self.resolve_dim("narrow", dim)?;
        let size = self.shape()[d];
        if start.checked_add(len).is_none_or(|e| e > size) {
            return Err(Error::invalid(
                "narrow",
                format!(
                    "range {start}..{} exceeds dimension {d} of size {size} (shape {:?})",
                    start.saturating_add(len),
                    self.shape()
                ),
            ));
        }
        let mut layout = self.layout().clone();
        layout.shape[d] = len;
        if len > 0 {
            layout.offset += start * layout.strides[d];
        }
        Ok(self.with_layout(layout))
    }

    /// The slice at `index` along `dim`, with that dimension removed.
    pub fn select(&self, dim: isize, index: usize) -> Result<Tensor> {
        let d = self.resolve_dim("select", dim)?;
        if index >= self.shape()[d] {
            return Err(Error::IndexOutOfRange {
                op: "select",
                index: index as i64,
                dim: d,
                size: self.shape()[d],
            });
        }
        self.narrow(d as isize, index, 1)?.squeeze(d as isize)
    }

    /// Splits into `n` pieces along `dim` (the last may be smaller), as views.
    pub fn chunk(&self, n: usize, dim: isize) -> Result<Vec<Tensor>> {
        let d = self.resolve_dim("chunk", dim)?;
        if n == 0 {
            return Err(Error::invalid("chunk", "number of chunks must be > 0"));
        }
        let size = self.shape()[d];
        let step = size.div_ceil(n).max(1);
        let mut out = vec![];
        let mut start = 0;
        while start < size {
            let len = step.min(size - start);
            out.push(self.narrow(d as isize, start, len)?);
            start += len;
        }
        Ok(out)
    }

    /// Broadcasts to `shape` (numpy rules) with stride 0 on expanded dims, sharing storage.
    pub fn expand(&self, shape: &[usize]) -> Result<Tensor> {
        match broadcast_layout(self.layout(), shape) {
            Some(l) => Ok(self.with_layout(l)),
            None => Err(Error::BroadcastIncompatible {
                op: "expand",
                lhs: self.shape().to_vec(),
                rhs: shape.to_vec(),
            }),
        }
    }

    /// Removes dimension `dim`, which must have size 1.
    pub fn squeeze(&self, dim: isize) -> Result<Tensor> {
        let d = self.resolve_dim("squeeze", dim)?;
        if self.shape()[d] != 1 {
            return Err(Error::invalid(
                "squeeze",
                format!("dimension {d} of shape {:?} has size {}, not 1", self.shape(), self.shape()[d]),
            ));
        }
        let mut l = self.layout().clone();
        l.shape.remove(d);
        l.strides.remove(d);
        Ok(self.with_layout(l))
    }

    /// Inserts a size-1 dimension at `dim` (`-1` appends).
    pub fn unsqueeze(&self, dim: isize) -> Result<Tensor> {
        let d = resolve_dim("unsqueeze", dim, self.rank() + 1)?;
        let mut l = self.layout().clone();
        let stride = if d < l.rank() { l.strides[d] * l.shape[d] } else { 1 };
        l.shape.insert(d, 1);
        l.strides.insert(d, stride);
        Ok(self.with_layout(l))
    }
}

/// Numpy broadcasting of two shapes, or `None` if incompatible.
pub fn broadcast_shape(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let r = a.len().max(b.len());
    let mut out = vec![0; r];
    for i in 0..r {
        let da = if i + a.len() >= r { a[i + a.len() - r] } else { 1 };
        let db = if i + b.len() >= r { b[i + b.len() - r] } else { 1 };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return None,
        };
    }
    Some(out)
}

/// A layout broadcast to `shape` (stride 0 on new and expanded dims), or `None` if incompatible.
pub fn broadcast_layout(l: &StridedLayout, shape: &[usize]) -> Option<StridedLayout> {
    if shape.len() < l.rank() {
        return None;
    }
    let lead = shape.len() - l.rank();
    let mut strides = vec![0; shape.len()];
    for i in 0..l.rank() {
        let (src, dst) = (l.shape[i], shape[lead + i]);
        strides[lead + i] = if src == dst {
            l.strides[i]
        } else if src == 1 {
            0
        } else {
            return None;
        };
    }
    Some(StridedLayout::new(shape.to_vec(), strides, l.offset))
}
