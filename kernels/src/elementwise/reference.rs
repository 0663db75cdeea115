//! Naive f64 oracles for the tests: each op's definition evaluated in f64, and strided gathers
//! computed directly from the layout definition `offset + Σ index[d]·stride[d]` (independent of the
//! coalescing iterator the kernels use).

use super::{BinaryOp, CmpOp, UnaryOp, erf};
use crate::StridedLayout;

/// Buffer offsets of every element of `l`, row-major, by explicit multi-index enumeration.
pub fn offsets(l: &StridedLayout) -> Vec<usize> {
    let n: usize = l.shape.iter().product();
    let mut out = Vec::with_capacity(n);
    for flat in 0..n {
        let mut rem = flat;
        let mut off = l.offset;
        for d in (0..l.shape.len()).rev() {
            off += (rem % l.shape[d]) * l.strides[d];
            rem /= l.shape[d];
        }
        out.push(off);
    }
    out
}

/// The elements of `src` seen through `l`, row-major, widened to f64.
pub fn gather<T: crate::Float>(src: &[T], l: &StridedLayout) -> Vec<f64> {
    offsets(l).into_iter().map(|o| src[o].to_f64()).collect()
}

/// `op(x)` in f64.
pub fn unary_f64(op: UnaryOp, x: f64) -> f64 {
    match op {
        UnaryOp::Neg => -x,
        UnaryOp::Abs => x.abs(),
        UnaryOp::Exp => x.exp(),
        UnaryOp::Log => x.ln(),
        UnaryOp::Sqrt => x.sqrt(),
        UnaryOp::Rsqrt => 1.0 / x.sqrt(),
        UnaryOp::Sqr => x * x,
        UnaryOp::Recip => 1.0 / x,
        UnaryOp::Tanh => x.tanh(),
        UnaryOp::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        UnaryOp::Silu => x / (1.0 + (-x).exp()),
        UnaryOp::Gelu => 0.5 * x * (1.0 + erf(x / 2f64.sqrt())),
        UnaryOp::GeluTanh => {
            0.5 * x * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x.powi(3))).tanh())
        }
        UnaryOp::Relu => {
            if x.is_nan() {
                x
            } else {
                x.max(0.0)
            }
        }
        UnaryOp::Sin => x.sin(),
        UnaryOp::Cos => x.cos(),
        UnaryOp::Erf => erf(x),
        UnaryOp::Sign => {
            if x.is_nan() {
                x
            } else if x == 0.0 {
                0.0
            } else {
                x.signum()
            }
        }
        UnaryOp::Powf(e) => x.powf(e),
        UnaryOp::Affine { mul, add } => x * mul + add,
        UnaryOp::Clamp { min, max } => {
            if x.is_nan() {
                x
            } else {
                x.max(min).min(max)
            }
        }
    }
}

/// `a op b` in f64 (NaN-propagating maximum/minimum).
pub fn binary_f64(op: BinaryOp, a: f64, b: f64) -> f64 {
    match op {
        BinaryOp::Add => a + b,
        BinaryOp::Sub => a - b,
        BinaryOp::Mul => a * b,
        BinaryOp::Div => a / b,
        BinaryOp::Pow => a.powf(b),
        BinaryOp::Maximum => {
            if a.is_nan() || b.is_nan() {
                f64::NAN
            } else {
                a.max(b)
            }
        }
        BinaryOp::Minimum => {
            if a.is_nan() || b.is_nan() {
                f64::NAN
            } else {
                a.min(b)
            }
        }
    }
}

/// `a op b` as 0/1.
pub fn compare_f64(op: CmpOp, a: f64, b: f64) -> u8 {
    let r = match op {
        CmpOp::Eq => a == b,
        CmpOp::Ne => a != b,
        CmpOp::Lt => a < b,
        CmpOp::Le => a <= b,
        CmpOp::Gt => a > b,
        CmpOp::Ge => a >= b,
    };
    u8::from(r)
}
