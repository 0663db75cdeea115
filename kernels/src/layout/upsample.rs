//! Nearest-neighbour 2-D upsampling (and downsampling) and its backward.

use crate::{Float, parallel};

/// Source index of output index `o` for an axis resized from `i` to `out`: `floor(o · i / out)`,
/// in exact integer arithmetic.
#[inline]
fn src_index(o: usize, i: usize, out: usize) -> usize {
    o * i / out
}

#[allow(clippy::too_many_arguments)]
#[track_caller]
fn check(nc: usize, h: usize, w: usize, oh: usize, ow: usize, xl: usize, yl: usize, xn: &str, yn: &str) {
    assert_eq!(xl, nc * h * w, "upsample_nearest2d: {xn} has {xl} elements, expected nc*h*w = {nc}*{h}*{w}");
    assert_eq!(
        yl,
        nc * oh * ow,
        "upsample_nearest2d: {yn} has {yl} elements, expected nc*oh*ow = {nc}*{oh}*{ow}"
    );
    assert!(
        nc * oh * ow == 0 || (h > 0 && w > 0),
        "upsample_nearest2d: empty input {h}x{w} for non-empty output {oh}x{ow}"
    );
}

/// Nearest resize of contiguous `x: [nc, h, w]` to contiguous `y: [nc, oh, ow]` (overwritten):
/// `y[c, oy, ox] = x[c, floor(oy·h/oh), floor(ox·w/ow)]`.
///
/// This is PyTorch's `mode='nearest'` rule with the ratio taken exactly (PyTorch multiplies by a
/// float32 scale, which can differ by one source row for some non-integer ratios, e.g. 14 → 20).
pub fn upsample_nearest2d<T: Copy + Send + Sync>(
    nc: usize,
    h: usize,
    w: usize,
    oh: usize,
    ow: usize,
    x: &[T],
    y: &mut [T],
) {
    check(nc, h, w, oh, ow, x.len(), y.len(), "x", "y");
    if y.is_empty() {
        return;
    }
    let sx: Vec<usize> = (0..ow).map(|o| src_index(o, w, ow)).collect();
    parallel::par_chunks_mut(y, ow, y.len(), |r, row| {
        let (c, oy) = (r / oh, r % oh);
        let src = &x[(c * h + src_index(oy, h, oh)) * w..][..w];
        for (v, &s) in row.iter_mut().zip(&sx) {
            *v = src[s];
        }
    });
}

/// Backward of [`upsample_nearest2d`]: `dx[c, iy, ix] = Σ dy[c, oy, ox]` over the output pixels
/// that read `(iy, ix)`. `dy: [nc, oh, ow]`, `dx: [nc, h, w]` contiguous; `dx` is overwritten.
pub fn upsample_nearest2d_backward<T: Float>(
    nc: usize,
    h: usize,
    w: usize,
    oh: usize,
    ow: usize,
    dy: &[T],
    dx: &mut [T],
) {
    check(nc, h, w, oh, ow, dx.len(), dy.len(), "dx", "dy");
    if dx.is_empty() {
        return;
    }
    let sx: Vec<usize> = (0..ow).map(|o| src_index(o, w, ow)).collect();
    parallel::par_chunks_mut(dx, h * w, nc * oh * ow, |c, plane| {
        plane.fill(T::ZERO);
        for oy in 0..oh {
            let row = &mut plane[src_index(oy, h, oh) * w..][..w];
            let g = &dy[(c * oh + oy) * ow..][..ow];
            for (&s, &v) in sx.iter().zip(g) {
                row[s] += v;
            }
        }
    });
}
