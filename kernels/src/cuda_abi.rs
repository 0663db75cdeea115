//! What the CUDA kernels (`*.cu`, beside their CPU twins) take as arguments, shared by the GPU
//! runtime in `tensor` and the host emulator used by the tests, so that both launch a kernel the same
//! way. Mirrors `kernels/cuda/common.cuh`; keep the two in sync.

use crate::StridedLayout;

/// Most dimensions a strided kernel argument carries (`MT_MAX_DIMS`). Layouts with more dimensions
/// are first merged ([`StridedArg::from_layout`] merges dimensions that are contiguous with each
/// other), and refused if they still need more.
pub const MAX_DIMS: usize = 8;

/// A strided view passed to a kernel by value (`struct StridedArg` in `common.cuh`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StridedArg {
    pub ndim: i32,
    /// Non-zero: row-major contiguous, so element `i` is at `offset + i`.
    pub contiguous: i32,
    pub offset: i64,
    pub shape: [i64; MAX_DIMS],
    pub strides: [i64; MAX_DIMS],
}

/// A layout with more than [`MAX_DIMS`] dimensions that cannot be merged down to that many.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TooManyDims {
    pub shape: Vec<usize>,
    pub strides: Vec<usize>,
}

impl StridedArg {
    /// The kernel argument for `layout`: size-1 dimensions dropped and dimensions that are
    /// contiguous with their neighbour merged (the element order is unchanged).
    pub fn from_layout(layout: &StridedLayout) -> Result<Self, TooManyDims> {
        let mut dims: Vec<(usize, usize)> = Vec::with_capacity(layout.rank());
        for (&n, &s) in layout.shape.iter().zip(&layout.strides) {
            if n == 1 {
                continue;
            }
            match dims.last_mut() {
                Some((pn, ps)) if *ps == s * n => {
                    *pn *= n;
                    *ps = s;
                }
                _ => dims.push((n, s)),
            }
        }
        if dims.len() > MAX_DIMS {
            return Err(TooManyDims { shape: layout.shape.clone(), strides: layout.strides.clone() });
        }
        let mut arg = StridedArg {
            ndim: dims.len() as i32,
            contiguous: i32::from(dims.len() <= 1 && dims.first().is_none_or(|d| d.1 == 1)),
            offset: layout.offset as i64,
            shape: [1; MAX_DIMS],
            strides: [0; MAX_DIMS],
        };
        if layout.numel() == 0 {
            arg.contiguous = 1;
        }
        for (k, (n, s)) in dims.into_iter().enumerate() {
            arg.shape[k] = n as i64;
            arg.strides[k] = s as i64;
        }
        Ok(arg)
    }

    /// Storage offset of the `linear`-th element (row-major), as the kernels compute it.
    pub fn offset_of(&self, mut linear: i64) -> i64 {
        if self.contiguous != 0 {
            return self.offset + linear;
        }
        let mut off = self.offset;
        for d in (0..self.ndim as usize).rev() {
            off += (linear % self.shape[d]) * self.strides[d];
            linear /= self.shape[d];
        }
        off
    }
}

/// Grid and block shape plus dynamic shared memory of one launch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LaunchDims {
    pub grid: (u32, u32, u32),
    pub block: (u32, u32, u32),
    pub shared_mem_bytes: u32,
}

impl LaunchDims {
    /// A 1-d grid of `threads`-wide blocks covering `n` items with one thread each, capped at
    /// `max_blocks` (the kernels loop with a grid stride over the rest).
    pub fn linear(n: usize, threads: u32, max_blocks: u32) -> Self {
        let blocks = n.div_ceil(threads as usize).clamp(1, max_blocks as usize) as u32;
        LaunchDims { grid: (blocks, 1, 1), block: (threads, 1, 1), shared_mem_bytes: 0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strided_arg_merges_and_indexes_like_the_layout() {
        // A permuted, offset view: (4, 3, 2) with strides (1, 8, 3) (not mergeable: strides (8, 4)
        // would be, since 8 = 4·2 makes the last two dims one of 6 elements with stride 4).
        let l = StridedLayout::new(vec![4, 3, 2], vec![1, 8, 3], 5);
        let a = StridedArg::from_layout(&l).unwrap();
        assert_eq!(a.ndim, 3);
        assert_eq!(a.contiguous, 0);
        let mut lin = 0;
        for i in 0..4 {
            for j in 0..3 {
                for k in 0..2 {
                    assert_eq!(a.offset_of(lin), (5 + i + 8 * j + 3 * k) as i64);
                    lin += 1;
                }
            }
        }
        // (3, 2) with strides (8, 4) merges into 6 elements of stride 4, indexed the same.
        let m = StridedArg::from_layout(&StridedLayout::new(vec![4, 3, 2], vec![1, 8, 4], 5)).unwrap();
        assert_eq!((m.ndim, m.shape[1], m.strides[1]), (2, 6, 4));
        assert_eq!(m.offset_of(2 * 6 + 5), 5 + 2 + 8 * 2 + 4);
        // A contiguous 3-d layout with an offset merges to one contiguous dimension.
        let c = StridedArg::from_layout(&StridedLayout::new(vec![2, 3, 4], vec![12, 4, 1], 7)).unwrap();
        assert_eq!((c.ndim, c.contiguous, c.offset), (1, 1, 7));
        // A broadcast (stride 0) dimension stays.
        let b = StridedArg::from_layout(&StridedLayout::new(vec![3, 4], vec![0, 1], 0)).unwrap();
        assert_eq!((b.ndim, b.contiguous), (2, 0));
        assert_eq!(b.offset_of(5), 1);
        // Nine unmergeable dims are refused.
        let shape = vec![2; 9];
        let strides: Vec<usize> = (0..9).map(|k| 1 << (2 * k)).collect();
        assert!(StridedArg::from_layout(&StridedLayout::new(shape, strides, 0)).is_err());
    }
}
