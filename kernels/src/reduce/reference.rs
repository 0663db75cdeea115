//! Naive f64 oracle for the reductions, written from the definitions (gather every reduced element of
//! each output, then apply the textbook formula).

use super::ReduceOp;
use crate::StridedLayout;

/// Elements of each output, in row-major output order, gathered through `layout` (as f64).
pub fn gather(src: &[f64], layout: &StridedLayout, axes: &[usize]) -> Vec<Vec<f64>> {
    let rank = layout.rank();
    let kept: Vec<usize> = (0..rank).filter(|d| !axes.contains(d)).collect();
    let nout: usize = kept.iter().map(|&d| layout.shape[d]).product();
    let mut out = vec![Vec::new(); nout];
    let total: usize = layout.shape.iter().product();
    for flat in 0..total {
        // unravel the full index
        let mut idx = vec![0; rank];
        let mut r = flat;
        for d in (0..rank).rev() {
            idx[d] = r % layout.shape[d];
            r /= layout.shape[d];
        }
        let off = layout.offset + idx.iter().zip(&layout.strides).map(|(i, s)| i * s).sum::<usize>();
        let mut o = 0;
        for &d in &kept {
            o = o * layout.shape[d] + idx[d];
        }
        out[o].push(src[off]);
    }
    out
}

pub fn reduce(op: ReduceOp, src: &[f64], layout: &StridedLayout, axes: &[usize]) -> Vec<f64> {
    gather(src, layout, axes)
        .iter()
        .map(|v| {
            let n = v.len() as f64;
            match op {
                ReduceOp::Sum => v.iter().sum(),
                ReduceOp::Mean => {
                    if v.is_empty() {
                        f64::NAN
                    } else {
                        v.iter().sum::<f64>() / n
                    }
                }
                ReduceOp::Max | ReduceOp::Min => {
                    if v.is_empty() || v.iter().any(|x| x.is_nan()) {
                        f64::NAN
                    } else if op == ReduceOp::Max {
                        v.iter().cloned().fold(f64::NEG_INFINITY, f64::max)
                    } else {
                        v.iter().cloned().fold(f64::INFINITY, f64::min)
                    }
                }
                ReduceOp::Var { correction } => {
                    if v.len() <= correction {
                        f64::NAN
                    } else {
                        let mean = v.iter().sum::<f64>() / n;
                        v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - correction as f64)
                    }
                }
            }
        })
        .collect()
}

/// Σ|x| of each output (scales the absolute tolerance of sums).
pub fn abs_sums(src: &[f64], layout: &StridedLayout, axes: &[usize]) -> Vec<f64> {
    gather(src, layout, axes).iter().map(|v| v.iter().map(|x| x.abs()).sum()).collect()
}

pub fn arg_reduce(is_max: bool, src: &[f64], layout: &StridedLayout, axis: usize) -> Vec<i64> {
    let rank = layout.rank();
    // move `axis` last so each gathered line is in axis order
    let mut perm: Vec<usize> = (0..rank).filter(|&d| d != axis).collect();
    perm.push(axis);
    let pl = StridedLayout::new(
        perm.iter().map(|&d| layout.shape[d]).collect(),
        perm.iter().map(|&d| layout.strides[d]).collect(),
        layout.offset,
    );
    gather(src, &pl, &[rank - 1])
        .iter()
        .map(|v| {
            if v.is_empty() {
                return -1;
            }
            if let Some(i) = v.iter().position(|x| x.is_nan()) {
                return i as i64;
            }
            let mut best = 0;
            for i in 1..v.len() {
                if (is_max && v[i] > v[best]) || (!is_max && v[i] < v[best]) {
                    best = i;
                }
            }
            best as i64
        })
        .collect()
}
