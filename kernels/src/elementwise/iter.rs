//! Joint iteration over several strided layouts that share one shape: the engine under every
//! elementwise and layout kernel of this crate.
//!
//! The layouts are coalesced together ([`crate::strided::coalesce`]), then a logical (row-major)
//! flat range is walked as *runs* along the innermost coalesced dimension: each run has fixed
//! per-layout strides, so kernels write their innermost loop with constant strides (stride 1 gives
//! plain slices the compiler vectorises, stride 0 a scalar broadcast).

use crate::parallel;
use crate::strided::{StridedLayout, coalesce};

/// `N` layouts of one shape, coalesced together.
#[derive(Clone, Debug)]
pub(crate) struct Joint<const N: usize> {
    shape: Vec<usize>,
    strides: [Vec<usize>; N],
    offsets: [usize; N],
    numel: usize,
}

impl<const N: usize> Joint<N> {
    /// Coalesces `layouts` (all must have the same shape). `None` when the shape has a zero
    /// dimension (nothing to iterate).
    pub(crate) fn new(layouts: [&StridedLayout; N]) -> Option<Self> {
        let shape = &layouts[0].shape;
        for l in &layouts {
            assert_eq!(&l.shape, shape, "joint iteration: layouts of different shapes");
            assert_eq!(l.strides.len(), l.shape.len(), "joint iteration: rank of strides != rank of shape");
        }
        let strides_in: [&[usize]; N] = std::array::from_fn(|j| layouts[j].strides.as_slice());
        let (cshape, cstrides) = coalesce(&[shape], &strides_in)?;
        let mut it = cstrides.into_iter();
        let strides: [Vec<usize>; N] = std::array::from_fn(|_| it.next().unwrap());
        let offsets = std::array::from_fn(|j| layouts[j].offset);
        let numel = cshape.iter().product();
        Some(Self { shape: cshape, strides, offsets, numel })
    }

    /// Strides of the innermost coalesced dimension, per layout (constant within a run).
    pub(crate) fn inner_strides(&self) -> [usize; N] {
        let r = self.shape.len() - 1;
        std::array::from_fn(|j| self.strides[j][r])
    }

    /// Calls `f(offsets, run_len)` for consecutive runs covering the logical flat range
    /// `start..start + len` (row-major order); `offsets[j]` is the buffer offset of the run's first
    /// element in layout `j`, the run advances by [`Self::inner_strides`].
    pub(crate) fn for_each_run(&self, start: usize, len: usize, mut f: impl FnMut([usize; N], usize)) {
        debug_assert!(start + len <= self.numel);
        if len == 0 {
            return;
        }
        let rank = self.shape.len();
        let mut idx = vec![0usize; rank];
        let mut rem = start;
        for d in (0..rank).rev() {
            idx[d] = rem % self.shape[d];
            rem /= self.shape[d];
        }
        let mut off = self.offsets;
        for (j, o) in off.iter_mut().enumerate() {
            *o += idx.iter().zip(&self.strides[j]).map(|(&i, &s)| i * s).sum::<usize>();
        }
        let inner = self.shape[rank - 1];
        let mut left = len;
        loop {
            let run = (inner - idx[rank - 1]).min(left);
            f(off, run);
            left -= run;
            if left == 0 {
                return;
            }
            // The run ended at the end of the innermost dimension: rewind it, carry outward.
            for (j, o) in off.iter_mut().enumerate() {
                *o -= idx[rank - 1] * self.strides[j][rank - 1];
            }
            idx[rank - 1] = 0;
            let mut d = rank - 1;
            loop {
                // left > 0 guarantees an outer dimension still has room.
                d -= 1;
                idx[d] += 1;
                for (j, o) in off.iter_mut().enumerate() {
                    *o += self.strides[j][d];
                }
                if idx[d] < self.shape[d] {
                    break;
                }
                for (j, o) in off.iter_mut().enumerate() {
                    *o -= self.strides[j][d] * self.shape[d];
                }
                idx[d] = 0;
            }
        }
    }
}

/// Chunk length (in elements) for splitting `n` elements across threads: a few chunks per thread,
/// at least 16 Ki elements (so forks pay for themselves), a multiple of 64.
pub(crate) fn chunk_len(n: usize) -> usize {
    let t = parallel::num_threads().max(1);
    let c = n.div_ceil(4 * t).max(1 << 14);
    c.div_ceil(64) * 64
}

/// Fills contiguous `dst` (logical element `i` at `dst[i]`) in parallel chunks: calls
/// `f(start, dst_chunk)` where `dst_chunk` holds logical elements `start..start + dst_chunk.len()`.
/// `cost` is a rough scalar-op count per element.
pub(crate) fn par_fill<U: Send>(dst: &mut [U], cost: usize, f: impl Fn(usize, &mut [U]) + Sync + Send) {
    let n = dst.len();
    if n == 0 {
        return;
    }
    let chunk = chunk_len(n);
    parallel::par_chunks_mut(dst, chunk, n.saturating_mul(cost), |ci, c| f(ci * chunk, c));
}
