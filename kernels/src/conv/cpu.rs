//! im2col + GEMM paths (and the no-copy 1×1 path). One GEMM per (image, group); images in parallel.

use super::Conv2dParams;
use super::direct::sum;
use super::im2col::{col2im, im2col};
use super::scratch::Scratch;
use crate::Float;
use crate::gemm::{MatMut, MatRef, gemm};
use crate::parallel::{num_threads, par_chunks_mut};

fn mat<T>(data: &[T], offset: usize, rs: usize, cs: usize) -> MatRef<'_, T> {
    MatRef { data, offset, rs, cs }
}

/// `C = A·B (+ C if accumulate)` skipping empty products (`k == 0` gives `C = 0` or leaves `C`).
#[allow(clippy::too_many_arguments)]
fn gemm_into<T: Float>(
    m: usize,
    n: usize,
    k: usize,
    a: MatRef<T>,
    b: MatRef<T>,
    accumulate: bool,
    c: MatMut<T>,
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                for j in 0..n {
                    c.data[c.offset + i * c.rs + j * c.cs] = T::ZERO;
                }
            }
        }
        return;
    }
    let beta = if accumulate { T::ONE } else { T::ZERO };
    gemm(m, n, k, T::ONE, a, b, beta, c);
}

pub(super) fn forward<T: Float>(p: &Conv2dParams, x: &[T], w: &[T], bias: Option<&[T]>, y: &mut [T]) {
    let pix = p.out_h() * p.out_w();
    let img_y = p.c_out * pix;
    if img_y == 0 || p.n == 0 {
        return;
    }
    let img_x = p.c_in * p.h * p.w;
    par_chunks_mut(y, img_y, p.flops(), |ni, yi| {
        forward_image(p, &x[ni * img_x..(ni + 1) * img_x], w, yi);
        if let Some(b) = bias {
            for (row, &bv) in yi.chunks_exact_mut(pix).zip(b) {
                row.iter_mut().for_each(|v| *v += bv);
            }
        }
    });
}

fn forward_image<T: Float>(p: &Conv2dParams, xi: &[T], w: &[T], yi: &mut [T]) {
    let pix = p.out_h() * p.out_w();
    let hw = p.h * p.w;
    let (cpg, opg) = (p.cpg(), p.opg());
    let k = cpg * p.kh * p.kw;
    if p.is_pointwise() {
        for g in 0..p.groups {
            let c = MatMut { data: &mut *yi, offset: g * opg * pix, rs: pix, cs: 1 };
            gemm_into(opg, pix, k, mat(w, g * opg * k, k, 1), mat(xi, g * cpg * hw, hw, 1), false, c);
        }
        return;
    }
    let mut col = Scratch::<T>::zeros(k * pix);
    let col = col.as_mut_slice();
    for g in 0..p.groups {
        im2col(p, &xi[g * cpg * hw..(g + 1) * cpg * hw], col);
        let c = MatMut { data: &mut *yi, offset: g * opg * pix, rs: pix, cs: 1 };
        gemm_into(opg, pix, k, mat(w, g * opg * k, k, 1), mat(col, 0, pix, 1), false, c);
    }
}

pub(super) fn backward_input<T: Float>(p: &Conv2dParams, w: &[T], dy: &[T], dx: &mut [T]) {
    let hw = p.h * p.w;
    let img_x = p.c_in * hw;
    if img_x == 0 || p.n == 0 {
        return;
    }
    let pix = p.out_h() * p.out_w();
    let img_y = p.c_out * pix;
    let (cpg, opg) = (p.cpg(), p.opg());
    let k = cpg * p.kh * p.kw;
    par_chunks_mut(dx, img_x, p.flops(), |ni, dxi| {
        let dyi = &dy[ni * img_y..(ni + 1) * img_y];
        if p.is_pointwise() {
            for g in 0..p.groups {
                // dx[n, g] (cpg × hw) = w_gᵀ (cpg × opg) · dy[n, g] (opg × hw)
                let c = MatMut { data: &mut *dxi, offset: g * cpg * hw, rs: hw, cs: 1 };
                gemm_into(cpg, hw, opg, mat(w, g * opg * k, 1, k), mat(dyi, g * opg * pix, pix, 1), false, c);
            }
            return;
        }
        dxi.fill(T::ZERO);
        let mut col = Scratch::<T>::zeros(k * pix);
        let col = col.as_mut_slice();
        for g in 0..p.groups {
            // dcol (k × pix) = w_gᵀ (k × opg) · dy[n, g] (opg × pix)
            let c = MatMut { data: &mut *col, offset: 0, rs: pix, cs: 1 };
            gemm_into(k, pix, opg, mat(w, g * opg * k, 1, k), mat(dyi, g * opg * pix, pix, 1), false, c);
            col2im(p, col, &mut dxi[g * cpg * hw..(g + 1) * cpg * hw]);
        }
    });
}

pub(super) fn backward_weight<T: Float>(p: &Conv2dParams, x: &[T], dy: &[T], dw: &mut [T]) {
    let wl = p.w_len();
    if wl == 0 {
        return;
    }
    let tasks =
        if p.flops() < crate::parallel::MIN_PARALLEL_WORK { 1 } else { p.n.min(num_threads()).max(1) };
    if tasks <= 1 {
        weight_images(p, 0..p.n, x, dy, dw);
        return;
    }
    // One partial dw per task (each a large GEMM chain over its images), summed at the end.
    let mut parts = Scratch::<T>::zeros(tasks * wl);
    let parts = parts.as_mut_slice();
    par_chunks_mut(parts, wl, p.flops(), |t, part| {
        weight_images(p, t * p.n / tasks..(t + 1) * p.n / tasks, x, dy, part);
    });
    dw.copy_from_slice(&parts[..wl]);
    for part in parts.chunks_exact(wl).skip(1) {
        for (d, &v) in dw.iter_mut().zip(part) {
            *d += v;
        }
    }
}

/// `dw = Σ_{ni in imgs} Σ_g dy[ni, g] · col(x[ni, g])ᵀ` (overwritten).
fn weight_images<T: Float>(p: &Conv2dParams, imgs: std::ops::Range<usize>, x: &[T], dy: &[T], dw: &mut [T]) {
    let hw = p.h * p.w;
    let pix = p.out_h() * p.out_w();
    let (img_x, img_y) = (p.c_in * hw, p.c_out * pix);
    let (cpg, opg) = (p.cpg(), p.opg());
    let k = cpg * p.kh * p.kw;
    if imgs.is_empty() {
        dw.fill(T::ZERO);
        return;
    }
    let mut col = Scratch::<T>::zeros(if p.is_pointwise() { 0 } else { k * pix });
    let col = col.as_mut_slice();
    for (i, ni) in imgs.enumerate() {
        let xi = &x[ni * img_x..(ni + 1) * img_x];
        let dyi = &dy[ni * img_y..(ni + 1) * img_y];
        for g in 0..p.groups {
            // dw_g (opg × k) (+)= dy[n, g] (opg × pix) · colᵀ (pix × k)
            let b = if p.is_pointwise() {
                mat(xi, g * cpg * hw, 1, hw)
            } else {
                im2col(p, &xi[g * cpg * hw..(g + 1) * cpg * hw], col);
                mat(&*col, 0, 1, pix)
            };
            let c = MatMut { data: &mut *dw, offset: g * opg * k, rs: k, cs: 1 };
            gemm_into(opg, k, pix, mat(dyi, g * opg * pix, pix, 1), b, i > 0, c);
        }
    }
}

pub(super) fn backward_bias<T: Float>(p: &Conv2dParams, dy: &[T], db: &mut [T]) {
    let pix = p.out_h() * p.out_w();
    for (co, d) in db.iter_mut().enumerate() {
        let mut acc = T::ZERO;
        for ni in 0..p.n {
            acc += sum(&dy[(ni * p.c_out + co) * pix..][..pix]);
        }
        *d = acc;
    }
}
