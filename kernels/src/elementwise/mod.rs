//! Elementwise kernels: unary ops (and their derivatives), broadcasting binary ops and comparisons,
//! over strided inputs with a contiguous output.
//!
//! Buffers: every input is a flat slice read through a [`StridedLayout`] (any strides, stride 0 =
//! broadcast); every output is a contiguous row-major buffer of exactly `numel(shape)` elements and
//! is overwritten. Inputs and the output are coalesced jointly, split into parallel chunks for large
//! outputs, and walked with fixed inner strides (contiguous inputs become one vectorisable loop,
//! broadcast scalars are hoisted). Generic over [`Float`]; `f32` and `f64` run the same code.
//!
//! Numerics: each op is its textbook definition evaluated in `T` (see [`UnaryOp`]); `sin` and `cos`
//! are evaluated in f64 and rounded to `T`. For `f64`, `erf` is [`erf`] (~1e-15) and `exp` is libm.
//! For `f32` (the fast path): `erf` (so `Erf` and exact `Gelu`) uses a table-driven piecewise
//! polynomial with absolute error ≤ 1e-7, and `exp` (so `Exp`, `Sigmoid`, `Silu`) a branch-free
//! polynomial within 2 ulp that auto-vectorises. Backward kernels evaluate `erf`/`exp` the accurate
//! way. NaN inputs propagate through every op (including `Relu`, `Clamp`, `Sign`, `Maximum`,
//! `Minimum`).

pub(crate) mod cpu;
#[cfg(any(feature = "cuda", feature = "emu"))]
pub mod cuda;
#[cfg(all(test, feature = "emu"))]
mod cuda_tests;
pub(crate) mod iter;
pub(crate) mod math;
pub mod reference;
#[cfg(test)]
mod tests;
/// Test helpers shared with the layout tests.
#[cfg(test)]
pub(crate) mod tests_support {
    pub(crate) use super::tests::random_view;
}

use crate::{Float, StridedLayout};
pub use math::erf;

/// A unary elementwise op. `x` is the input element.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum UnaryOp {
    /// `-x`
    Neg,
    /// `|x|`
    Abs,
    /// `eˣ`
    Exp,
    /// natural log `ln x` (NaN for x < 0, -∞ at 0)
    Log,
    /// `√x`
    Sqrt,
    /// `1/√x`
    Rsqrt,
    /// `x²`
    Sqr,
    /// `1/x`
    Recip,
    /// `tanh x`
    Tanh,
    /// `1/(1+e⁻ˣ)`
    Sigmoid,
    /// `x·sigmoid(x)`
    Silu,
    /// exact GELU `x/2·(1 + erf(x/√2))`
    Gelu,
    /// tanh-approximated GELU `x/2·(1 + tanh(√(2/π)(x + 0.044715x³)))`
    GeluTanh,
    /// `max(x, 0)` (NaN propagates)
    Relu,
    /// `sin x`
    Sin,
    /// `cos x`
    Cos,
    /// the error function, see [`erf`]
    Erf,
    /// -1, 0 or 1 (NaN propagates)
    Sign,
    /// `x^e` (`powf`)
    Powf(f64),
    /// `x·mul + add` (two roundings, not fused)
    Affine { mul: f64, add: f64 },
    /// `min(max(x, min), max)` (NaN propagates)
    Clamp { min: f64, max: f64 },
}

/// A binary elementwise op on `(a, b)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BinaryOp {
    /// `a + b`
    Add,
    /// `a - b`
    Sub,
    /// `a · b`
    Mul,
    /// `a / b` (IEEE: ±∞ or NaN on division by zero)
    Div,
    /// `a^b` (`powf`)
    Pow,
    /// larger of the two; NaN if either is NaN (like `torch.maximum`)
    Maximum,
    /// smaller of the two; NaN if either is NaN (like `torch.minimum`)
    Minimum,
}

/// A comparison; IEEE semantics (every comparison with NaN is false except `Ne`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    /// `a == b`
    Eq,
    /// `a != b`
    Ne,
    /// `a < b`
    Lt,
    /// `a <= b`
    Le,
    /// `a > b`
    Gt,
    /// `a >= b`
    Ge,
}

/// Rough scalar-op cost per element, for the parallel threshold.
fn unary_cost(op: UnaryOp) -> usize {
    match op {
        UnaryOp::Neg
        | UnaryOp::Abs
        | UnaryOp::Sqr
        | UnaryOp::Relu
        | UnaryOp::Sign
        | UnaryOp::Affine { .. }
        | UnaryOp::Clamp { .. } => 1,
        UnaryOp::Recip | UnaryOp::Sqrt | UnaryOp::Rsqrt => 4,
        UnaryOp::Gelu | UnaryOp::Erf => 60,
        _ => 20,
    }
}

/// Expands `$m!(variant)` with the op *written as a literal* in each arm, so that inside the
/// closures `$m` builds, the per-element `match` folds away at compile time and every op gets its
/// own tight (vectorisable) loop. (Capturing the op as a value would keep the `match` in the loop.)
macro_rules! dispatch_unary {
    ($op:expr, $m:ident) => {
        match $op {
            UnaryOp::Neg => $m!(UnaryOp::Neg),
            UnaryOp::Abs => $m!(UnaryOp::Abs),
            UnaryOp::Exp => $m!(UnaryOp::Exp),
            UnaryOp::Log => $m!(UnaryOp::Log),
            UnaryOp::Sqrt => $m!(UnaryOp::Sqrt),
            UnaryOp::Rsqrt => $m!(UnaryOp::Rsqrt),
            UnaryOp::Sqr => $m!(UnaryOp::Sqr),
            UnaryOp::Recip => $m!(UnaryOp::Recip),
            UnaryOp::Tanh => $m!(UnaryOp::Tanh),
            UnaryOp::Sigmoid => $m!(UnaryOp::Sigmoid),
            UnaryOp::Silu => $m!(UnaryOp::Silu),
            UnaryOp::Gelu => $m!(UnaryOp::Gelu),
            UnaryOp::GeluTanh => $m!(UnaryOp::GeluTanh),
            UnaryOp::Relu => $m!(UnaryOp::Relu),
            UnaryOp::Sin => $m!(UnaryOp::Sin),
            UnaryOp::Cos => $m!(UnaryOp::Cos),
            UnaryOp::Erf => $m!(UnaryOp::Erf),
            UnaryOp::Sign => $m!(UnaryOp::Sign),
            UnaryOp::Powf(e) => $m!(UnaryOp::Powf(e)),
            UnaryOp::Affine { mul, add } => $m!(UnaryOp::Affine { mul, add }),
            UnaryOp::Clamp { min, max } => $m!(UnaryOp::Clamp { min, max }),
        }
    };
}

macro_rules! dispatch_binary {
    ($op:expr, $m:ident) => {
        match $op {
            BinaryOp::Add => $m!(BinaryOp::Add),
            BinaryOp::Sub => $m!(BinaryOp::Sub),
            BinaryOp::Mul => $m!(BinaryOp::Mul),
            BinaryOp::Div => $m!(BinaryOp::Div),
            BinaryOp::Pow => $m!(BinaryOp::Pow),
            BinaryOp::Maximum => $m!(BinaryOp::Maximum),
            BinaryOp::Minimum => $m!(BinaryOp::Minimum),
        }
    };
}

/// `dst = op(src viewed through layout)`.
///
/// * `src`: any buffer with `src.len() >= layout.required_len()`.
/// * `dst`: contiguous row-major, `dst.len() == numel(layout.shape)`; overwritten.
pub fn unary<T: Float>(op: UnaryOp, src: &[T], layout: &StridedLayout, dst: &mut [T]) {
    cpu::check_input("unary: src", src.len(), layout);
    let cost = unary_cost(op);
    macro_rules! go {
        ($o:expr) => {
            cpu::map1(src, layout, dst, cost, move |x: T| math::unary_scalar($o, x))
        };
    }
    dispatch_unary!(op, go)
}

/// `dx = dy · op'(x)`, the backward of [`unary`] for autograd.
///
/// * `x`: the forward input, read through `layout`.
/// * `dy`, `dx`: contiguous row-major of shape `layout.shape`; `dx` is overwritten.
///
/// Conventions at kinks and flat parts (derivative there is exactly 0, even when `dy` is not
/// finite): `Sign` everywhere; `Relu` for `x <= 0`; `Abs` at `x == 0`; `Clamp` outside
/// `[min, max]` (inside *inclusive* of both bounds the derivative is 1); `Powf(0)` everywhere.
/// A NaN `x` gives NaN for `Abs`, `Relu`, `Clamp`.
pub fn unary_backward<T: Float>(op: UnaryOp, x: &[T], layout: &StridedLayout, dy: &[T], dx: &mut [T]) {
    cpu::check_input("unary_backward: x", x.len(), layout);
    let n = layout.numel();
    assert_eq!(dy.len(), n, "unary_backward: dy has {} elements, shape {:?} has {n}", dy.len(), layout.shape);
    let ldy = StridedLayout::contiguous(&layout.shape);
    let cost = unary_cost(op) + 2;
    macro_rules! go {
        ($o:expr) => {
            cpu::map2(x, layout, dy, &ldy, dx, cost, move |x: T, g: T| math::unary_grad($o, x, g))
        };
    }
    dispatch_unary!(op, go)
}

/// `dst = a op b`.
///
/// `la` and `lb` are already broadcast to the output shape (stride 0 on broadcast dimensions) and
/// have the same shape (see [`broadcast_layout`]). `dst` is contiguous of that shape, overwritten.
pub fn binary<T: Float>(
    op: BinaryOp,
    a: &[T],
    la: &StridedLayout,
    b: &[T],
    lb: &StridedLayout,
    dst: &mut [T],
) {
    let cost = if op == BinaryOp::Pow { 20 } else { 1 };
    macro_rules! go {
        ($o:expr) => {
            cpu::map2(a, la, b, lb, dst, cost, move |x: T, y: T| math::binary_scalar($o, x, y))
        };
    }
    dispatch_binary!(op, go)
}

/// `dst = (a op b) as u8` (1 true, 0 false); layouts as in [`binary`], `dst` contiguous, overwritten.
pub fn compare<T: Float>(
    op: CmpOp,
    a: &[T],
    la: &StridedLayout,
    b: &[T],
    lb: &StridedLayout,
    dst: &mut [u8],
) {
    match op {
        CmpOp::Eq => cpu::map2(a, la, b, lb, dst, 1, |x: T, y: T| math::compare_scalar(CmpOp::Eq, x, y)),
        CmpOp::Ne => cpu::map2(a, la, b, lb, dst, 1, |x: T, y: T| math::compare_scalar(CmpOp::Ne, x, y)),
        CmpOp::Lt => cpu::map2(a, la, b, lb, dst, 1, |x: T, y: T| math::compare_scalar(CmpOp::Lt, x, y)),
        CmpOp::Le => cpu::map2(a, la, b, lb, dst, 1, |x: T, y: T| math::compare_scalar(CmpOp::Le, x, y)),
        CmpOp::Gt => cpu::map2(a, la, b, lb, dst, 1, |x: T, y: T| math::compare_scalar(CmpOp::Gt, x, y)),
        CmpOp::Ge => cpu::map2(a, la, b, lb, dst, 1, |x: T, y: T| math::compare_scalar(CmpOp::Ge, x, y)),
    }
}

/// The broadcast of two shapes under numpy rules (align trailing dimensions; each pair must be
/// equal or contain a 1, which stretches to the other — including to 0). `None` if incompatible.
pub fn broadcast_shape(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let r = a.len().max(b.len());
    let mut out = vec![0; r];
    for (i, o) in out.iter_mut().enumerate() {
        // dimension i of the output, counted from the left; the inputs are right-aligned.
        let da = if i + a.len() >= r { a[i + a.len() - r] } else { 1 };
        let db = if i + b.len() >= r { b[i + b.len() - r] } else { 1 };
        *o = if da == db || db == 1 {
            da
        } else if da == 1 {
            db
        } else {
            return None;
        };
    }
    Some(out)
}

/// `l` viewed with shape `shape` under numpy broadcasting: new leading dimensions and size-1
/// dimensions that stretch get stride 0, the others keep theirs; same offset. `None` if `l.shape`
/// does not broadcast to `shape` (higher rank, or a non-1 dimension that differs).
pub fn broadcast_layout(l: &StridedLayout, shape: &[usize]) -> Option<StridedLayout> {
    let r = shape.len();
    if l.rank() > r || l.strides.len() != l.rank() {
        return None;
    }
    let lead = r - l.rank();
    let mut strides = vec![0; r];
    for d in 0..l.rank() {
        let (ds, s) = (l.shape[d], l.strides[d]);
        strides[lead + d] = if ds == shape[lead + d] {
            s
        } else if ds == 1 {
            0
        } else {
            return None;
        };
    }
    Some(StridedLayout::new(shape.to_vec(), strides, l.offset))
}
