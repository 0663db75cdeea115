//! Scalar math: the error function and the per-element definitions of every unary op and its
//! derivative, generic over [`Float`].

use super::{BinaryOp, CmpOp, UnaryOp};
use crate::Float;
use std::f64::consts::{FRAC_2_SQRT_PI, PI};

/// 1/√π.
const FRAC_1_SQRT_PI: f64 = 0.5641895835477562869480794515607725858;

/// erf for `0 <= a < 2.5`: `erf(a) = 2/√π · e^{-a²} · Σ_{n≥0} 2ⁿ a^{2n+1} / (2n+1)!!`.
/// Every term is positive, so there is no cancellation; ~50 terms at the top of the range.
fn erf_series(a: f64) -> f64 {
    let a2 = a * a;
    let mut term = a;
    let mut sum = a;
    let mut k = 1.0f64;
    loop {
        k += 2.0;
        term *= 2.0 * a2 / k;
        sum += term;
        if term <= sum * 1e-17 {
            break;
        }
    }
    FRAC_2_SQRT_PI * (-a2).exp() * sum
}

/// erfc for `a >= 2.5` by the continued fraction (Abramowitz & Stegun 7.1.14)
/// `√π e^{a²} erfc(a) = 1/(a + (1/2)/(a + 1/(a + (3/2)/(a + …))))`, evaluated with modified Lentz.
fn erfc_cf(a: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let mut f = a;
    let mut c = a;
    let mut d = 0.0f64;
    for k in 1..2000 {
        let ak = k as f64 * 0.5;
        d = a + ak * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = a + ak / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        let delta = c * d;
        f *= delta;
        if (delta - 1.0).abs() < 1e-16 {
            break;
        }
    }
    FRAC_1_SQRT_PI * (-a * a).exp() / f
}

/// The error function `erf(x) = 2/√π ∫₀ˣ e^{-t²} dt`, to about 1e-15 relative.
///
/// |x| < 2.5: the positive-term series `2/√π e^{-x²} Σ 2ⁿ x^{2n+1}/(2n+1)!!`; 2.5 ≤ |x| < 6:
/// `1 - erfc(|x|)` with erfc from its continued fraction; |x| ≥ 6: ±1 (erfc(6) ≈ 2e-17).
/// Odd (`erf(-x) = -erf(x)`, `erf(-0) = -0`), `erf(±∞) = ±1`, `erf(NaN) = NaN`.
pub fn erf(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    let a = x.abs();
    let r = if a < 2.5 {
        erf_series(a)
    } else if a < 6.0 {
        1.0 - erfc_cf(a)
    } else {
        1.0
    };
    r.copysign(x)
}

#[inline(always)]
fn c<T: Float>(v: f64) -> T {
    T::from_f64(v)
}

#[inline(always)]
pub(crate) fn sigmoid<T: Float>(x: T) -> T {
    T::ONE / (T::ONE + (-x).exp())
}

#[inline(always)]
pub(crate) fn erf_t<T: Float>(x: T) -> T {
    T::from_f64(erf(x.to_f64()))
}

const SQRT_2_OVER_PI: f64 = 0.7978845608028654;
const GELU_C: f64 = 0.044715;

/// `op(x)`; see [`UnaryOp`] for the definitions.
#[inline(always)]
pub(crate) fn unary_scalar<T: Float>(op: UnaryOp, x: T) -> T {
    match op {
        UnaryOp::Neg => -x,
        UnaryOp::Abs => x.abs(),
        UnaryOp::Exp => x.exp(),
        UnaryOp::Log => x.ln(),
        UnaryOp::Sqrt => x.sqrt(),
        UnaryOp::Rsqrt => T::ONE / x.sqrt(),
        UnaryOp::Sqr => x * x,
        UnaryOp::Recip => T::ONE / x,
        UnaryOp::Tanh => x.tanh(),
        UnaryOp::Sigmoid => sigmoid(x),
        UnaryOp::Silu => x * sigmoid(x),
        UnaryOp::Gelu => c::<T>(0.5) * x * (T::ONE + erf_t(x * c(std::f64::consts::FRAC_1_SQRT_2))),
        UnaryOp::GeluTanh => {
            let u = c::<T>(SQRT_2_OVER_PI) * (x + c::<T>(GELU_C) * x * x * x);
            c::<T>(0.5) * x * (T::ONE + u.tanh())
        }
        UnaryOp::Relu => relu(x),
        UnaryOp::Sin => T::from_f64(x.to_f64().sin()),
        UnaryOp::Cos => T::from_f64(x.to_f64().cos()),
        UnaryOp::Erf => erf_t(x),
        UnaryOp::Sign => sign(x),
        UnaryOp::Powf(e) => x.powf(c(e)),
        UnaryOp::Affine { mul, add } => x * c(mul) + c(add),
        UnaryOp::Clamp { min, max } => clamp(x, c(min), c(max)),
    }
}

/// `max(x, 0)`, NaN propagates.
#[inline(always)]
pub(crate) fn relu<T: Float>(x: T) -> T {
    if x <= T::ZERO { T::ZERO } else { x }
}

/// -1, 0 or 1; NaN propagates.
#[inline(always)]
pub(crate) fn sign<T: Float>(x: T) -> T {
    if x > T::ZERO {
        T::ONE
    } else if x < T::ZERO {
        -T::ONE
    } else if x == T::ZERO {
        T::ZERO
    } else {
        x
    }
}

/// Clamp to `[lo, hi]`, NaN propagates.
#[inline(always)]
pub(crate) fn clamp<T: Float>(x: T, lo: T, hi: T) -> T {
    if x < lo {
        lo
    } else if x > hi {
        hi
    } else {
        x
    }
}

/// `dy · op'(x)`; see [`UnaryOp`] for the conventions at kinks. Ops whose derivative is exactly zero
/// at `x` give exactly 0 (even for a non-finite `dy`), like PyTorch's masked backward kernels.
#[inline(always)]
pub(crate) fn unary_grad<T: Float>(op: UnaryOp, x: T, dy: T) -> T {
    match op {
        UnaryOp::Neg => -dy,
        UnaryOp::Abs => {
            if x > T::ZERO {
                dy
            } else if x < T::ZERO {
                -dy
            } else if x == T::ZERO {
                T::ZERO
            } else {
                x
            }
        }
        UnaryOp::Exp => dy * x.exp(),
        UnaryOp::Log => dy / x,
        UnaryOp::Sqrt => dy * c::<T>(0.5) / x.sqrt(),
        UnaryOp::Rsqrt => dy * c::<T>(-0.5) / (x * x.sqrt()),
        UnaryOp::Sqr => dy * c::<T>(2.0) * x,
        UnaryOp::Recip => -dy / (x * x),
        UnaryOp::Tanh => {
            let t = x.tanh();
            dy * (T::ONE - t * t)
        }
        UnaryOp::Sigmoid => {
            let s = sigmoid(x);
            dy * s * (T::ONE - s)
        }
        UnaryOp::Silu => {
            let s = sigmoid(x);
            dy * s * (T::ONE + x * (T::ONE - s))
        }
        UnaryOp::Gelu => {
            let xf = x.to_f64();
            let cdf = 0.5 * (1.0 + erf(xf * std::f64::consts::FRAC_1_SQRT_2));
            let pdf = (-0.5 * xf * xf).exp() / (2.0 * PI).sqrt();
            dy * T::from_f64(cdf + xf * pdf)
        }
        UnaryOp::GeluTanh => {
            let k = c::<T>(SQRT_2_OVER_PI);
            let cc = c::<T>(GELU_C);
            let t = (k * (x + cc * x * x * x)).tanh();
            let half = c::<T>(0.5);
            dy * (half * (T::ONE + t) + half * x * (T::ONE - t * t) * k * (T::ONE + c::<T>(3.0) * cc * x * x))
        }
        UnaryOp::Relu => {
            if x > T::ZERO {
                dy
            } else if x.is_nan() {
                x
            } else {
                T::ZERO
            }
        }
        UnaryOp::Sin => dy * T::from_f64(x.to_f64().cos()),
        UnaryOp::Cos => -dy * T::from_f64(x.to_f64().sin()),
        UnaryOp::Erf => {
            let xf = x.to_f64();
            dy * T::from_f64(FRAC_2_SQRT_PI * (-xf * xf).exp())
        }
        UnaryOp::Sign => T::ZERO,
        UnaryOp::Powf(e) => {
            if e == 0.0 {
                T::ZERO
            } else {
                dy * c::<T>(e) * x.powf(c(e - 1.0))
            }
        }
        UnaryOp::Affine { mul, .. } => dy * c(mul),
        UnaryOp::Clamp { min, max } => {
            if x >= c(min) && x <= c(max) {
                dy
            } else if x.is_nan() {
                x
            } else {
                T::ZERO
            }
        }
    }
}

/// `a op b`; see [`BinaryOp`].
#[inline(always)]
pub(crate) fn binary_scalar<T: Float>(op: BinaryOp, a: T, b: T) -> T {
    match op {
        BinaryOp::Add => a + b,
        BinaryOp::Sub => a - b,
        BinaryOp::Mul => a * b,
        BinaryOp::Div => a / b,
        BinaryOp::Pow => a.powf(b),
        BinaryOp::Maximum => maximum(a, b),
        BinaryOp::Minimum => minimum(a, b),
    }
}

/// NaN-propagating maximum (like `torch.maximum`).
#[inline(always)]
pub(crate) fn maximum<T: Float>(a: T, b: T) -> T {
    // a wins when larger or NaN; otherwise b (b >= a, or b is NaN).
    if a > b || a.is_nan() { a } else { b }
}

/// NaN-propagating minimum (like `torch.minimum`).
#[inline(always)]
pub(crate) fn minimum<T: Float>(a: T, b: T) -> T {
    if a < b || a.is_nan() { a } else { b }
}

#[inline(always)]
pub(crate) fn compare_scalar<T: Float>(op: CmpOp, a: T, b: T) -> u8 {
    (match op {
        CmpOp::Eq => a == b,
        CmpOp::Ne => a != b,
        CmpOp::Lt => a < b,
        CmpOp::Le => a <= b,
        CmpOp::Gt => a > b,
        CmpOp::Ge => a >= b,
    }) as u8
}
