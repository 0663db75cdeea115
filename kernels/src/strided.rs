//! Strided layouts over flat buffers: the one description of "which elements, in which order" that
//! every layout-agnostic kernel takes.
//!
//! Strides are in elements and non-negative (a broadcast dimension has stride 0). Decision: no negative
//! strides — no op we need (flip is not among them) requires them, and unsigned strides keep every
//! offset computation overflow-free and easy to bound-check.

/// Shape, per-dimension strides (in elements) and start offset into a flat buffer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StridedLayout {
    pub shape: Vec<usize>,
    pub strides: Vec<usize>,
    pub offset: usize,
}

/// Row-major (C-order) strides of a shape.
pub fn contiguous_strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![0; shape.len()];
    let mut acc = 1usize;
    for i in (0..shape.len()).rev() {
        strides[i] = acc;
        acc = acc.saturating_mul(shape[i].max(1));
    }
    strides
}

/// Number of elements of a shape (1 for a scalar, 0 if any dimension is 0).
pub fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

impl StridedLayout {
    /// A contiguous row-major layout starting at offset 0.
    pub fn contiguous(shape: &[usize]) -> Self {
        Self { shape: shape.to_vec(), strides: contiguous_strides(shape), offset: 0 }
    }

    /// Builds a layout; `shape` and `strides` must have equal length.
    pub fn new(shape: Vec<usize>, strides: Vec<usize>, offset: usize) -> Self {
        debug_assert_eq!(shape.len(), strides.len());
        Self { shape, strides, offset }
    }

    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    pub fn numel(&self) -> usize {
        numel(&self.shape)
    }

    /// True when the elements are laid out row-major without gaps (size-1 dims may have any stride;
    /// an empty layout is contiguous).
    pub fn is_contiguous(&self) -> bool {
        if self.numel() == 0 {
            return true;
        }
        let mut expected = 1usize;
        for i in (0..self.shape.len()).rev() {
            if self.shape[i] == 1 {
                continue;
            }
            if self.strides[i] != expected {
                return false;
            }
            expected *= self.shape[i];
        }
        true
    }

    /// Smallest buffer length that holds every addressed element (0 for an empty layout).
    pub fn required_len(&self) -> usize {
        if self.numel() == 0 {
            return 0;
        }
        self.offset + self.shape.iter().zip(&self.strides).map(|(&d, &s)| (d - 1) * s).sum::<usize>() + 1
    }

    /// Merges adjacent dimensions that are contiguous with each other and drops size-1 dims, so that
    /// iteration has as few, as long, loops as possible. Returns (shape, strides) of rank >= 1.
    pub fn coalesced(&self) -> (Vec<usize>, Vec<usize>) {
        coalesce(&[&self.shape], &[&self.strides])
            .map_or_else(|| (vec![0], vec![1]), |(shape, mut strides)| (shape, strides.remove(0)))
    }

    /// Calls `f(offset)` for every element in row-major logical order.
    pub fn for_each_offset(&self, mut f: impl FnMut(usize)) {
        let (shape, strides) = self.coalesced();
        if shape.contains(&0) {
            return;
        }
        let base = self.offset;
        let rank = shape.len();
        let inner = shape[rank - 1];
        let inner_stride = strides[rank - 1];
        let mut idx = vec![0usize; rank];
        let mut off = base;
        loop {
            let mut o = off;
            for _ in 0..inner {
                f(o);
                o += inner_stride;
            }
            // odometer increment over the outer dims
            let mut d = rank - 1;
            loop {
                if d == 0 {
                    return;
                }
                d -= 1;
                idx[d] += 1;
                off += strides[d];
                if idx[d] < shape[d] {
                    break;
                }
                off -= strides[d] * shape[d];
                idx[d] = 0;
            }
        }
    }
}

/// Joint coalescing of several layouts that share one shape (e.g. the inputs and output of a
/// broadcast binary op): dimensions `i` and `i+1` merge when, for every layout,
/// `stride[i] == stride[i+1] * shape[i+1]`. Size-1 dims are dropped. Returns `None` for a shape
/// with a zero dimension; otherwise (shape, per-layout strides), rank >= 1.
#[allow(clippy::type_complexity)]
pub fn coalesce(shapes: &[&[usize]], strides: &[&[usize]]) -> Option<(Vec<usize>, Vec<Vec<usize>>)> {
    let shape = shapes[0];
    if shape.contains(&0) {
        return None;
    }
    let n = strides.len();
    let mut out_shape: Vec<usize> = Vec::with_capacity(shape.len());
    let mut out_strides: Vec<Vec<usize>> = vec![Vec::with_capacity(shape.len()); n];
    for d in 0..shape.len() {
        if shape[d] == 1 {
            continue;
        }
        let can_merge = !out_shape.is_empty()
            && (0..n).all(|j| *out_strides[j].last().unwrap() == strides[j][d] * shape[d]);
        if can_merge {
            *out_shape.last_mut().unwrap() *= shape[d];
            for j in 0..n {
                *out_strides[j].last_mut().unwrap() = strides[j][d];
            }
        } else {
            out_shape.push(shape[d]);
            for j in 0..n {
                out_strides[j].push(strides[j][d]);
            }
        }
    }
    if out_shape.is_empty() {
        out_shape.push(1);
        for s in out_strides.iter_mut() {
            s.push(1);
        }
    }
    Some((out_shape, out_strides))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contiguous_layout_is_contiguous_and_iterates_in_order() {
        let l = StridedLayout::contiguous(&[2, 3, 4]);
        assert!(l.is_contiguous());
        let mut v = vec![];
        l.for_each_offset(|o| v.push(o));
        assert_eq!(v, (0..24).collect::<Vec<_>>());
        assert_eq!(l.required_len(), 24);
    }

    #[test]
    fn transposed_layout_iterates_column_major() {
        // a [3, 2] transpose of a contiguous [2, 3]
        let l = StridedLayout::new(vec![3, 2], vec![1, 3], 5);
        assert!(!l.is_contiguous());
        let mut v = vec![];
        l.for_each_offset(|o| v.push(o));
        assert_eq!(v, vec![5, 8, 6, 9, 7, 10]);
        assert_eq!(l.required_len(), 11);
    }

    #[test]
    fn broadcast_layout_repeats() {
        let l = StridedLayout::new(vec![2, 3], vec![0, 1], 0);
        let mut v = vec![];
        l.for_each_offset(|o| v.push(o));
        assert_eq!(v, vec![0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn empty_and_scalar() {
        let e = StridedLayout::contiguous(&[3, 0, 2]);
        let mut n = 0;
        e.for_each_offset(|_| n += 1);
        assert_eq!(n, 0);
        assert_eq!(e.required_len(), 0);
        let s = StridedLayout::contiguous(&[]);
        let mut v = vec![];
        s.for_each_offset(|o| v.push(o));
        assert_eq!(v, vec![0]);
    }
}
