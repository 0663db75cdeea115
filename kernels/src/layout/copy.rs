//! Strided copy and concat.

use crate::StridedLayout;
use crate::elementwise::iter::{Joint, chunk_len};
use crate::parallel;

/// A raw pointer that may cross threads; used only where each task writes a disjoint set of
/// elements (see the SAFETY comments at the use sites).
#[derive(Clone, Copy)]
struct SharedMut<T>(*mut T);
// SAFETY: the pointer is only dereferenced for disjoint elements from different threads.
unsafe impl<T: Send> Send for SharedMut<T> {}
// SAFETY: as above; no two threads touch the same element.
unsafe impl<T: Send> Sync for SharedMut<T> {}
impl<T> SharedMut<T> {
    fn get(self) -> *mut T {
        self.0
    }
}

/// True when no two elements of `l` share an offset (sufficient test: with the dims of size > 1
/// sorted by stride, each stride exceeds the extent spanned by the smaller ones).
pub(crate) fn is_injective(l: &StridedLayout) -> bool {
    let mut dims: Vec<(usize, usize)> =
        l.shape.iter().zip(&l.strides).filter(|(d, _)| **d > 1).map(|(&d, &s)| (s, d)).collect();
    dims.sort_unstable();
    let mut extent = 0usize; // max offset reached by the smaller dims
    for (s, d) in dims {
        if s <= extent || s == 0 {
            return false;
        }
        extent += (d - 1) * s;
    }
    true
}

/// Copies `src` (read through `src_layout`) into `dst` (written through `dst_layout`), element by
/// element in logical order; both layouts must have the same shape.
///
/// Only the elements addressed by `dst_layout` are written. If `dst_layout` addresses an element
/// twice (stride 0), the logically last source value wins (that case runs serially). Contiguous
/// pairs are a (parallel) memcpy; otherwise the layouts are coalesced and copied with fixed-stride
/// inner loops, in parallel for large copies.
pub fn copy_strided<T: Copy + Send + Sync>(
    src: &[T],
    src_layout: &StridedLayout,
    dst: &mut [T],
    dst_layout: &StridedLayout,
) {
    assert_eq!(
        src_layout.shape, dst_layout.shape,
        "copy_strided: src shape {:?} != dst shape {:?}",
        src_layout.shape, dst_layout.shape
    );
    assert!(
        src_layout.strides.len() == src_layout.rank() && dst_layout.strides.len() == dst_layout.rank(),
        "copy_strided: strides rank mismatch"
    );
    let (sn, dn) = (src_layout.required_len(), dst_layout.required_len());
    assert!(src.len() >= sn, "copy_strided: src has {} elements, layout needs {sn}", src.len());
    assert!(dst.len() >= dn, "copy_strided: dst has {} elements, layout needs {dn}", dst.len());
    let n = src_layout.numel();
    if n == 0 {
        return;
    }
    if src_layout.is_contiguous() && dst_layout.is_contiguous() {
        let s = &src[src_layout.offset..src_layout.offset + n];
        let d = &mut dst[dst_layout.offset..dst_layout.offset + n];
        let chunk = chunk_len(n);
        parallel::par_chunks_mut(d, chunk, n, |ci, c| {
            c.copy_from_slice(&s[ci * chunk..ci * chunk + c.len()])
        });
        return;
    }
    let injective = is_injective(dst_layout);
    if injective && try_tiled(src, src_layout, dst, dst_layout) {
        return;
    }
    let joint = Joint::new([src_layout, dst_layout]).expect("non-empty");
    let [ss, ds] = joint.inner_strides();
    if !injective || n < parallel::MIN_PARALLEL_WORK {
        joint.for_each_run(0, n, |[so, d0], run| {
            for k in 0..run {
                dst[d0 + k * ds] = src[so + k * ss];
            }
        });
        return;
    }
    let chunk = chunk_len(n);
    let p = SharedMut(dst.as_mut_ptr());
    parallel::par_for(n.div_ceil(chunk), n, |ci| {
        let start = ci * chunk;
        let len = chunk.min(n - start);
        joint.for_each_run(start, len, |[so, d0], run| {
            let base = p.get();
            for k in 0..run {
                let v = src[so + k * ss];
                // SAFETY: d0 + k*ds is an offset of dst_layout, hence < dst_layout.required_len()
                // <= dst.len() (asserted above); dst_layout is injective and the tasks cover
                // disjoint logical ranges, so no element is written by two tasks; `dst` is
                // exclusively borrowed for the whole call.
                unsafe { *base.add(d0 + k * ds) = v };
            }
        });
    });
}

/// Tile edge of the blocked transpose-like copy (a 32×32 tile of f32 is 4 KiB per side).
const TILE: usize = 32;

/// Blocked copy for transpose-like layouts: when, after coalescing, one layout's innermost stride
/// is large (> 16 elements, a cache line of f32) and another dimension `p` has a smaller stride for
/// that layout, dims `p` and the innermost are copied in `TILE × TILE` tiles so both sides reuse
/// their cache lines. Returns false (nothing done) when the pattern does not apply. Requires an
/// injective `dl` (it writes from several threads).
fn try_tiled<T: Copy + Send + Sync>(
    src: &[T],
    sl: &StridedLayout,
    dst: &mut [T],
    dl: &StridedLayout,
) -> bool {
    let Some((shape, strides)) = crate::strided::coalesce(&[&sl.shape], &[&sl.strides, &dl.strides]) else {
        return false;
    };
    let r = shape.len();
    if r < 2 {
        return false;
    }
    let (sst, dst_st) = (&strides[0], &strides[1]);
    let big = if sst[r - 1] >= dst_st[r - 1] { sst } else { dst_st };
    if big[r - 1] <= 16 {
        return false;
    }
    let p = (0..r - 1).min_by_key(|&d| big[d]).unwrap();
    if big[p] >= big[r - 1] {
        return false;
    }
    let (np, nl) = (shape[p], shape[r - 1]);
    let (sp, sli, dp, dli) = (sst[p], sst[r - 1], dst_st[p], dst_st[r - 1]);
    // Offsets of every element of the remaining (outer) dims, by a joint walk over them.
    let outer_dims: Vec<usize> = (0..r - 1).filter(|&d| d != p).collect();
    let lo = StridedLayout::new(
        outer_dims.iter().map(|&d| shape[d]).collect(),
        outer_dims.iter().map(|&d| sst[d]).collect(),
        sl.offset,
    );
    let ldo =
        StridedLayout::new(lo.shape.clone(), outer_dims.iter().map(|&d| dst_st[d]).collect(), dl.offset);
    let mut bases = Vec::with_capacity(lo.numel());
    let jo = Joint::new([&lo, &ldo]).expect("non-empty");
    let [so_s, do_s] = jo.inner_strides();
    jo.for_each_run(0, lo.numel(), |[so, d0], run| {
        for k in 0..run {
            bases.push((so + k * so_s, d0 + k * do_s));
        }
    });
    let nbi = np.div_ceil(TILE);
    let n = sl.numel();
    let ptr = SharedMut(dst.as_mut_ptr());
    parallel::par_for(bases.len() * nbi, n, |t| {
        let (so, d0) = bases[t / nbi];
        let i0 = (t % nbi) * TILE;
        let i1 = (i0 + TILE).min(np);
        let base = ptr.get();
        for j0 in (0..nl).step_by(TILE) {
            let j1 = (j0 + TILE).min(nl);
            for i in i0..i1 {
                let (si, di) = (so + i * sp, d0 + i * dp);
                for j in j0..j1 {
                    let v = src[si + j * sli];
                    // SAFETY: di + j*dli is the offset of one element of `dl` (same coalesced
                    // dims), so it is < dl.required_len() <= dst.len() (asserted by the caller);
                    // `dl` is injective and tasks cover disjoint (outer, tile-row) sets, so no
                    // element is written twice; `dst` is exclusively borrowed for the call.
                    unsafe { *base.add(di + j * dli) = v };
                }
            }
        }
    });
    true
}

/// Concatenates `inputs` along `axis` into contiguous `dst` (overwritten).
///
/// Each input is `(buffer, layout)`; all layouts have the same rank (`> axis`) and equal sizes
/// except along `axis`. `dst` is contiguous row-major with the input shape and
/// `shape[axis] = Σ inputs' shape[axis]`. Inputs may be empty along `axis`.
pub fn concat<T: Copy + Send + Sync>(inputs: &[(&[T], &StridedLayout)], axis: usize, dst: &mut [T]) {
    assert!(!inputs.is_empty(), "concat: no inputs");
    let first = &inputs[0].1.shape;
    let rank = first.len();
    assert!(axis < rank, "concat: axis {axis} out of range for rank {rank}");
    let mut out_shape = first.clone();
    out_shape[axis] = 0;
    for (i, (_, l)) in inputs.iter().enumerate() {
        assert_eq!(l.rank(), rank, "concat: input {i} has rank {}, expected {rank}", l.rank());
        for d in 0..rank {
            assert!(
                d == axis || l.shape[d] == first[d],
                "concat: input {i} shape {:?} differs from {:?} outside axis {axis}",
                l.shape,
                first
            );
        }
        out_shape[axis] += l.shape[axis];
    }
    let total: usize = out_shape.iter().product();
    assert_eq!(
        dst.len(),
        total,
        "concat: dst has {} elements, output shape {out_shape:?} has {total}",
        dst.len()
    );
    let out_strides = crate::strided::contiguous_strides(&out_shape);
    let mut pos = 0usize;
    for (buf, l) in inputs {
        let view = StridedLayout::new(l.shape.clone(), out_strides.clone(), pos * out_strides[axis]);
        copy_strided(buf, l, dst, &view);
        pos += l.shape[axis];
    }
}
