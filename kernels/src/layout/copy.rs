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
    let joint = Joint::new([src_layout, dst_layout]).expect("non-empty");
    let [ss, ds] = joint.inner_strides();
    if !is_injective(dst_layout) || n < parallel::MIN_PARALLEL_WORK {
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
