//! Naive f64 oracles written directly from each op's definition (explicit multi-index loops,
//! nothing shared with the kernels' iteration or window-clipping code).

use crate::StridedLayout;

/// Offset of multi-index `idx` in `l`: `offset + Σ idx[d]·stride[d]`.
pub fn offset_of(l: &StridedLayout, idx: &[usize]) -> usize {
    l.offset + idx.iter().zip(&l.strides).map(|(i, s)| i * s).sum::<usize>()
}

/// All multi-indices of `shape`, row-major.
pub fn multi_indices(shape: &[usize]) -> Vec<Vec<usize>> {
    let mut out = vec![vec![]];
    for &d in shape {
        let mut next = Vec::with_capacity(out.len() * d);
        for p in &out {
            for i in 0..d {
                let mut q = p.clone();
                q.push(i);
                next.push(q);
            }
        }
        out = next;
    }
    out
}

/// Concat along `axis` into a row-major vector.
pub fn concat(inputs: &[(&[f64], &StridedLayout)], axis: usize) -> Vec<f64> {
    let mut shape = inputs[0].1.shape.clone();
    shape[axis] = inputs.iter().map(|(_, l)| l.shape[axis]).sum();
    multi_indices(&shape)
        .into_iter()
        .map(|mut idx| {
            let mut k = 0;
            while idx[axis] >= inputs[k].1.shape[axis] {
                idx[axis] -= inputs[k].1.shape[axis];
                k += 1;
            }
            inputs[k].0[offset_of(inputs[k].1, &idx)]
        })
        .collect()
}

/// Nearest resize `[nc, h, w]` → `[nc, oh, ow]` with source index `floor(o·in/out)` computed in
/// f64 (exact for the small sizes used in tests).
pub fn upsample_nearest2d(nc: usize, h: usize, w: usize, oh: usize, ow: usize, x: &[f64]) -> Vec<f64> {
    let mut y = Vec::new();
    for c in 0..nc {
        for oy in 0..oh {
            for ox in 0..ow {
                let sy = ((oy as f64) * (h as f64) / (oh as f64)).floor() as usize;
                let sx = ((ox as f64) * (w as f64) / (ow as f64)).floor() as usize;
                y.push(x[(c * h + sy) * w + sx]);
            }
        }
    }
    y
}

/// Average pool by explicit taps over the zero-padded input. `count_include_pad`: the divisor counts
/// taps inside the padded input `[-p, h+p)`, else only taps inside `[0, h)`.
#[allow(clippy::too_many_arguments)]
pub fn avg_pool2d(
    nc: usize,
    h: usize,
    w: usize,
    k: [usize; 2],
    s: [usize; 2],
    p: [usize; 2],
    include_pad: bool,
    x: &[f64],
) -> Vec<f64> {
    let oh = (h + 2 * p[0] - k[0]) / s[0] + 1;
    let ow = (w + 2 * p[1] - k[1]) / s[1] + 1;
    let mut y = Vec::new();
    for c in 0..nc {
        for oy in 0..oh {
            for ox in 0..ow {
                let (mut sum, mut count_pad, mut count_real) = (0.0, 0usize, 0usize);
                for ky in 0..k[0] {
                    for kx in 0..k[1] {
                        let iy = (oy * s[0] + ky) as isize - p[0] as isize;
                        let ix = (ox * s[1] + kx) as isize - p[1] as isize;
                        let in_padded = iy < (h + p[0]) as isize && ix < (w + p[1]) as isize;
                        if in_padded {
                            count_pad += 1;
                        }
                        if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w {
                            count_real += 1;
                            sum += x[(c * h + iy as usize) * w + ix as usize];
                        }
                    }
                }
                y.push(sum / if include_pad { count_pad } else { count_real } as f64);
            }
        }
    }
    y
}

/// Index-select with negative wrap-around; `None` if any index is out of `-n..n`.
pub fn index_select(outer: usize, n: usize, inner: usize, src: &[f64], idx: &[i64]) -> Option<Vec<f64>> {
    let mut out = Vec::new();
    for o in 0..outer {
        for &i in idx {
            let r = if i < 0 { i + n as i64 } else { i };
            if r < 0 || r >= n as i64 {
                return None;
            }
            for k in 0..inner {
                out.push(src[(o * n + r as usize) * inner + k]);
            }
        }
    }
    Some(out)
}
