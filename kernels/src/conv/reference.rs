//! Naive f64 oracle, written straight from the definition (no im2col, no shared helpers):
//!
//! `y[n, co, oh, ow] = b[co] + Σ_{ci < cpg, ki, kj} w[co, ci, ki, kj] · x[n, g·cpg + ci, ih, iw]`,
//! `g = co / opg`, `ih = oh·sh + ki·dh − ph`, `iw = ow·sw + kj·dw − pw`, terms outside the input are 0.
//! The gradients loop over the same seven indices and scatter / accumulate.

use super::Conv2dParams;

/// Calls `f(x_index, w_index, y_index)` for every in-bounds term of the seven-fold sum.
fn for_each_term(p: &Conv2dParams, mut f: impl FnMut(usize, usize, usize)) {
    let (oh_len, ow_len) = (p.out_h(), p.out_w());
    let cpg = p.c_in / p.groups;
    let opg = p.c_out / p.groups;
    for ni in 0..p.n {
        for co in 0..p.c_out {
            let g = co / opg;
            for oh in 0..oh_len {
                for ow in 0..ow_len {
                    let yi = ((ni * p.c_out + co) * oh_len + oh) * ow_len + ow;
                    for ci in 0..cpg {
                        for ki in 0..p.kh {
                            for kj in 0..p.kw {
                                let ih =
                                    (oh * p.stride[0] + ki * p.dilation[0]) as isize - p.padding[0] as isize;
                                let iw =
                                    (ow * p.stride[1] + kj * p.dilation[1]) as isize - p.padding[1] as isize;
                                if ih < 0 || iw < 0 || ih >= p.h as isize || iw >= p.w as isize {
                                    continue;
                                }
                                let xi =
                                    ((ni * p.c_in + g * cpg + ci) * p.h + ih as usize) * p.w + iw as usize;
                                let wi = ((co * cpg + ci) * p.kh + ki) * p.kw + kj;
                                f(xi, wi, yi);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Forward conv in f64 (`bias` optional). Returns `y` of length `p.y_len()`.
pub fn conv2d_forward(p: &Conv2dParams, x: &[f64], w: &[f64], bias: Option<&[f64]>) -> Vec<f64> {
    p.validate().expect("reference conv2d: invalid params");
    let pix = p.out_h() * p.out_w();
    let mut y = vec![0.0; p.y_len()];
    if let Some(b) = bias {
        for (i, v) in y.iter_mut().enumerate() {
            *v = b[(i / pix.max(1)) % p.c_out.max(1)];
        }
    }
    for_each_term(p, |xi, wi, yi| y[yi] += w[wi] * x[xi]);
    y
}

/// Input gradient in f64. Returns `dx` of length `p.x_len()`.
pub fn conv2d_backward_input(p: &Conv2dParams, w: &[f64], dy: &[f64]) -> Vec<f64> {
    p.validate().expect("reference conv2d: invalid params");
    let mut dx = vec![0.0; p.x_len()];
    for_each_term(p, |xi, wi, yi| dx[xi] += w[wi] * dy[yi]);
    dx
}

/// Weight gradient in f64. Returns `dw` of length `p.w_len()`.
pub fn conv2d_backward_weight(p: &Conv2dParams, x: &[f64], dy: &[f64]) -> Vec<f64> {
    p.validate().expect("reference conv2d: invalid params");
    let mut dw = vec![0.0; p.w_len()];
    for_each_term(p, |xi, wi, yi| dw[wi] += x[xi] * dy[yi]);
    dw
}

/// Bias gradient in f64. Returns `db` of length `p.c_out`.
pub fn conv2d_backward_bias(p: &Conv2dParams, dy: &[f64]) -> Vec<f64> {
    let pix = p.out_h() * p.out_w();
    let mut db = vec![0.0; p.c_out];
    for (i, &v) in dy.iter().enumerate() {
        db[(i / pix) % p.c_out] += v;
    }
    db
}
