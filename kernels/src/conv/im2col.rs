//! im2col / col2im for one image and one channel group, plus the valid-range helper shared with the
//! direct kernels.
//!
//! The column matrix of a group is `col [cpg·kh·kw, oh·ow]`, row `(c·kh + ki)·kw + kj`, column
//! `oh·ow_len + ow`, holding `x[c, oh·sh + ki·dh − ph, ow·sw + kj·dw − pw]` (0 outside the input).

use super::Conv2dParams;
use crate::Float;

/// Half-open range `[lo, hi)` of output indices `o < out_len` whose input index `o·s + off` lies in
/// `[0, in_len)` (with `off = k·d − pad`, possibly negative). Empty ranges come back as `lo == hi`.
#[inline]
pub(super) fn valid_range(off: isize, s: usize, in_len: usize, out_len: usize) -> (usize, usize) {
    let s = s as isize;
    let lo = if off >= 0 { 0 } else { (-off + s - 1) / s };
    let room = in_len as isize - off; // need o·s < room
    let hi = if room <= 0 { 0 } else { (room + s - 1) / s };
    let hi = (hi as usize).min(out_len);
    let lo = (lo as usize).min(hi);
    (lo, hi)
}

/// Per kernel tap `(ki, kj)`: offsets `ki·dh − ph`, `kj·dw − pw` and the valid output ranges.
#[derive(Clone, Copy)]
pub(super) struct Tap {
    pub off_h: isize,
    pub off_w: isize,
    pub oh: (usize, usize),
    pub ow: (usize, usize),
}

impl Tap {
    #[inline]
    pub(super) fn new(p: &Conv2dParams, ki: usize, kj: usize) -> Self {
        let off_h = (ki * p.dilation[0]) as isize - p.padding[0] as isize;
        let off_w = (kj * p.dilation[1]) as isize - p.padding[1] as isize;
        Self {
            off_h,
            off_w,
            oh: valid_range(off_h, p.stride[0], p.h, p.out_h()),
            ow: valid_range(off_w, p.stride[1], p.w, p.out_w()),
        }
    }

    /// Input row index for output row `oh` (which must lie in `self.oh`).
    #[inline]
    pub(super) fn ih(&self, p: &Conv2dParams, oh: usize) -> usize {
        (oh as isize * p.stride[0] as isize + self.off_h) as usize
    }

    /// Input column of output column `ow` (which must lie in `self.ow`).
    #[inline]
    pub(super) fn iw(&self, p: &Conv2dParams, ow: usize) -> usize {
        (ow as isize * p.stride[1] as isize + self.off_w) as usize
    }
}

/// Fills `col [cpg·kh·kw, oh·ow]` (every element written) from `x` = the `cpg` input planes of one
/// group of one image (`[cpg, h, w]`).
pub(super) fn im2col<T: Float>(p: &Conv2dParams, x: &[T], col: &mut [T]) {
    let (oh_len, ow_len) = (p.out_h(), p.out_w());
    let pix = oh_len * ow_len;
    let hw = p.h * p.w;
    let cpg = p.cpg();
    assert!(x.len() >= cpg * hw && col.len() >= cpg * p.kh * p.kw * pix, "im2col: buffers too short");
    if pix == 0 {
        return;
    }
    let mut rows = col.chunks_exact_mut(pix);
    for c in 0..cpg {
        let plane = &x[c * hw..(c + 1) * hw];
        for ki in 0..p.kh {
            for kj in 0..p.kw {
                let row = rows.next().expect("im2col: col has cpg*kh*kw rows");
                let t = Tap::new(p, ki, kj);
                let (lo, hi) = t.ow;
                for (oh, seg) in row.chunks_exact_mut(ow_len).enumerate().take(oh_len) {
                    if oh < t.oh.0 || oh >= t.oh.1 || lo == hi {
                        seg.fill(T::ZERO);
                        continue;
                    }
                    let src = &plane[t.ih(p, oh) * p.w..][..p.w];
                    seg[..lo].fill(T::ZERO);
                    seg[hi..].fill(T::ZERO);
                    if p.stride[1] == 1 {
                        let a = t.iw(p, lo);
                        seg[lo..hi].copy_from_slice(&src[a..a + (hi - lo)]);
                    } else {
                        for (ow, v) in seg[lo..hi].iter_mut().enumerate() {
                            *v = src[t.iw(p, lo + ow)];
                        }
                    }
                }
            }
        }
    }
}

/// Scatter-adds `col [cpg·kh·kw, oh·ow]` into `dx` = the `cpg` input planes of one group of one image
/// (`[cpg, h, w]`, accumulated: the caller zeroes it first).
pub(super) fn col2im<T: Float>(p: &Conv2dParams, col: &[T], dx: &mut [T]) {
    let (oh_len, ow_len) = (p.out_h(), p.out_w());
    let pix = oh_len * ow_len;
    let hw = p.h * p.w;
    let cpg = p.cpg();
    assert!(dx.len() >= cpg * hw && col.len() >= cpg * p.kh * p.kw * pix, "col2im: buffers too short");
    if pix == 0 {
        return;
    }
    let mut rows = col.chunks_exact(pix);
    for c in 0..cpg {
        let plane = &mut dx[c * hw..(c + 1) * hw];
        for ki in 0..p.kh {
            for kj in 0..p.kw {
                let row = rows.next().expect("col2im: col has cpg*kh*kw rows");
                let t = Tap::new(p, ki, kj);
                let (lo, hi) = t.ow;
                if lo == hi {
                    continue;
                }
                for oh in t.oh.0..t.oh.1 {
                    let seg = &row[oh * ow_len..][..ow_len];
                    let dst = &mut plane[t.ih(p, oh) * p.w..][..p.w];
                    if p.stride[1] == 1 {
                        let a = t.iw(p, lo);
                        for (d, &v) in dst[a..a + (hi - lo)].iter_mut().zip(&seg[lo..hi]) {
                            *d += v;
                        }
                    } else {
                        for (ow, &v) in seg[lo..hi].iter().enumerate() {
                            dst[t.iw(p, lo + ow)] += v;
                        }
                    }
                }
            }
        }
    }
}
