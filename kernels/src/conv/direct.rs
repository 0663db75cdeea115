//! Direct convolution: for each kernel tap, one vectorised pass over whole output rows
//! (`y_row[lo..hi] += w · x_row[..]`), no scratch. Chosen for tiny channel groups (depthwise) where
//! im2col + GEMM degenerates into a matrix-vector product; see the measurements in `mod.rs`.

use super::Conv2dParams;
use super::im2col::Tap;
use crate::Float;
use crate::parallel::par_chunks_mut;

/// `Σ a[i]·b[i]` with 8 independent accumulators (vectorises; also a shorter rounding chain).
#[inline]
pub(super) fn dot<T: Float>(a: &[T], b: &[T]) -> T {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [T::ZERO; 8];
    let mut ca = a.chunks_exact(8);
    let mut cb = b.chunks_exact(8);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    let mut tail = T::ZERO;
    for (&x, &y) in ca.remainder().iter().zip(cb.remainder()) {
        tail += x * y;
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

/// `Σ a[i]` with 8 independent accumulators.
#[inline]
pub(super) fn sum<T: Float>(a: &[T]) -> T {
    let mut acc = [T::ZERO; 8];
    let mut ca = a.chunks_exact(8);
    for x in &mut ca {
        for l in 0..8 {
            acc[l] += x[l];
        }
    }
    let tail = ca.remainder().iter().fold(T::ZERO, |s, &v| s + v);
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

/// One output plane `y[n, co]` per task.
pub(super) fn forward<T: Float>(p: &Conv2dParams, x: &[T], w: &[T], bias: Option<&[T]>, y: &mut [T]) {
    let (oh_len, ow_len) = (p.out_h(), p.out_w());
    let pix = oh_len * ow_len;
    if pix == 0 || y.is_empty() {
        return;
    }
    let (hw, cpg, opg, kk) = (p.h * p.w, p.cpg(), p.opg(), p.kh * p.kw);
    let sw = p.stride[1];
    par_chunks_mut(y, pix, p.flops(), |plane_idx, yp| {
        let (ni, co) = (plane_idx / p.c_out, plane_idx % p.c_out);
        let g = co / opg;
        yp.fill(bias.map_or(T::ZERO, |b| b[co]));
        for ci in 0..cpg {
            let xp = &x[(ni * p.c_in + g * cpg + ci) * hw..][..hw];
            let wk = &w[(co * cpg + ci) * kk..][..kk];
            for ki in 0..p.kh {
                for kj in 0..p.kw {
                    let wv = wk[ki * p.kw + kj];
                    let t = Tap::new(p, ki, kj);
                    let (lo, hi) = t.ow;
                    if lo == hi {
                        continue;
                    }
                    for oh in t.oh.0..t.oh.1 {
                        let yr = &mut yp[oh * ow_len + lo..oh * ow_len + hi];
                        let xr = &xp[t.ih(p, oh) * p.w..][..p.w];
                        let a = t.iw(p, lo);
                        if sw == 1 {
                            for (yv, &xv) in yr.iter_mut().zip(&xr[a..a + (hi - lo)]) {
                                *yv += wv * xv;
                            }
                        } else {
                            for (i, yv) in yr.iter_mut().enumerate() {
                                *yv += wv * xr[a + i * sw];
                            }
                        }
                    }
                }
            }
        }
    });
}

/// One input-gradient plane `dx[n, ci]` per task (gathers from the `opg` output channels of its group).
pub(super) fn backward_input<T: Float>(p: &Conv2dParams, w: &[T], dy: &[T], dx: &mut [T]) {
    let hw = p.h * p.w;
    if hw == 0 || dx.is_empty() {
        return;
    }
    let (oh_len, ow_len) = (p.out_h(), p.out_w());
    let pix = oh_len * ow_len;
    let (cpg, opg, kk) = (p.cpg(), p.opg(), p.kh * p.kw);
    let sw = p.stride[1];
    par_chunks_mut(dx, hw, p.flops(), |plane_idx, dxp| {
        let (ni, ci) = (plane_idx / p.c_in, plane_idx % p.c_in);
        let (g, cl) = (ci / cpg, ci % cpg);
        dxp.fill(T::ZERO);
        for co in g * opg..(g + 1) * opg {
            let dyp = &dy[(ni * p.c_out + co) * pix..][..pix];
            let wk = &w[(co * cpg + cl) * kk..][..kk];
            for ki in 0..p.kh {
                for kj in 0..p.kw {
                    let wv = wk[ki * p.kw + kj];
                    let t = Tap::new(p, ki, kj);
                    let (lo, hi) = t.ow;
                    if lo == hi {
                        continue;
                    }
                    for oh in t.oh.0..t.oh.1 {
                        let dyr = &dyp[oh * ow_len + lo..oh * ow_len + hi];
                        let dxr = &mut dxp[t.ih(p, oh) * p.w..][..p.w];
                        let a = t.iw(p, lo);
                        if sw == 1 {
                            for (d, &g) in dxr[a..a + (hi - lo)].iter_mut().zip(dyr) {
                                *d += wv * g;
                            }
                        } else {
                            for (i, &g) in dyr.iter().enumerate() {
                                dxr[a + i * sw] += wv * g;
                            }
                        }
                    }
                }
            }
        }
    });
}

/// One output channel's weights `dw[co]` per task (reduces over all images and pixels).
pub(super) fn backward_weight<T: Float>(p: &Conv2dParams, x: &[T], dy: &[T], dw: &mut [T]) {
    let (cpg, opg, kk) = (p.cpg(), p.opg(), p.kh * p.kw);
    let per_co = cpg * kk;
    if per_co == 0 || dw.is_empty() {
        return;
    }
    let (oh_len, ow_len) = (p.out_h(), p.out_w());
    let pix = oh_len * ow_len;
    let hw = p.h * p.w;
    let sw = p.stride[1];
    par_chunks_mut(dw, per_co, p.flops(), |co, dwc| {
        let g = co / opg;
        for ci in 0..cpg {
            for ki in 0..p.kh {
                for kj in 0..p.kw {
                    let t = Tap::new(p, ki, kj);
                    let (lo, hi) = t.ow;
                    let mut acc = T::ZERO;
                    if lo < hi {
                        for ni in 0..p.n {
                            let dyp = &dy[(ni * p.c_out + co) * pix..][..pix];
                            let xp = &x[(ni * p.c_in + g * cpg + ci) * hw..][..hw];
                            for oh in t.oh.0..t.oh.1 {
                                let dyr = &dyp[oh * ow_len + lo..oh * ow_len + hi];
                                let xr = &xp[t.ih(p, oh) * p.w..][..p.w];
                                let a = t.iw(p, lo);
                                if sw == 1 {
                                    acc += dot(dyr, &xr[a..a + (hi - lo)]);
                                } else {
                                    for (i, &g) in dyr.iter().enumerate() {
                                        acc += g * xr[a + i * sw];
                                    }
                                }
                            }
                        }
                    }
                    dwc[(ci * p.kh + ki) * p.kw + kj] = acc;
                }
            }
        }
    });
}
