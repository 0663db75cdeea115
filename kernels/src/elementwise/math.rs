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
///
/// The f32 kernels use a faster table-driven approximation (absolute error ≤ 1e-7) built from
/// this function; see the module docs.
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
    T::ONE / (T::ONE + exp_t(-x))
}

/// `eˣ` in `T`: f32 uses [`exp_f32`] (branch-free, vectorises), f64 the libm `exp`.
#[inline(always)]
pub(crate) fn exp_t<T: Float>(x: T) -> T {
    if std::mem::size_of::<T>() == 4 { T::from_f64(exp_f32(x.to_f64() as f32) as f64) } else { x.exp() }
}

/// Branch-free f32 `eˣ`, within 2 ulp of the correctly rounded value for normal results (tested):
/// `x = n·ln2 + r`, `|r| ≤ ln2/2`, `eʳ` by its degree-7 Taylor polynomial (truncation < 5e-9
/// relative), scaled by `2ⁿ` in two factors so that subnormal results and overflow to +∞ come out
/// right. `exp(-∞) = 0`, `exp(+∞) = +∞`, NaN propagates. Plain arithmetic and selects only, so the
/// loops that call it auto-vectorise.
#[inline(always)]
pub(crate) fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split so that n·LN2_HI is exact for |n| < 2^9.
    const LN2_HI: f32 = f32::from_bits(0x3f31_7200); // 0.693145751953125
    const LN2_LO: f32 = f32::from_bits(0x35bf_be8e); // ln 2 - LN2_HI ≈ 1.4286068e-6
    // 1.5·2^23: adding and subtracting it rounds to the nearest integer.
    const ROUND: f32 = 12_582_912.0;
    let xc = x.clamp(-104.0, 89.0); // NaN passes through
    // The magic add leaves n (|n| ≤ 151) in the low mantissa bits of `big`: integer ops only, so
    // the loop vectorises (a float→int cast would not on baseline x86-64).
    let big = xc * LOG2E + ROUND;
    let n = big - ROUND;
    let r = (xc - n * LN2_HI) - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    // n in [-150, 128]; for NaN input the bits are garbage but p is NaN, so the result is NaN.
    let ni = big.to_bits().wrapping_sub(ROUND.to_bits()) as i32;
    let h = ni >> 1;
    let s1 = f32::from_bits((h.wrapping_add(127) as u32) << 23);
    let s2 = f32::from_bits((ni.wrapping_sub(h).wrapping_add(127) as u32) << 23);
    p * s1 * s2
}

/// erf in `T`: f64 goes through [`erf`]; f32 through [`erf_fast_f32`].
#[inline(always)]
pub(crate) fn erf_t<T: Float>(x: T) -> T {
    if std::mem::size_of::<T>() == 4 {
        T::from_f64(erf_fast_f32(x.to_f64() as f32) as f64)
    } else {
        T::from_f64(erf(x.to_f64()))
    }
}

/// Piecewise polynomial erf for the f32 path, built once from [`erf`] by interpolation at
/// Chebyshev nodes. `small`: `erf(x) = x·P(x²)` on |x| < 0.5 (degree 6 in x², keeps relative
/// accuracy near 0); `mid[k]`: degree-4 polynomial in `t ∈ [-1, 1]` on `[0.5 + k/8, 0.5 + (k+1)/8)`;
/// `|x| >= 4`: ±1 (1 - erf(4) = 1.5e-8 is below half an f32 ulp of 1).
struct ErfTable {
    small: [f64; 7],
    mid: Vec<[f64; 5]>,
}

const ERF_MID_LO: f64 = 0.5;
const ERF_MID_INV_W: f64 = 8.0;
const ERF_MID_N: usize = 28; // (4.0 - 0.5) * 8

/// Coefficients (constant first) of the degree-`D-1` polynomial in `t ∈ [-1, 1]` interpolating `f`
/// at the Chebyshev nodes (Vandermonde solve with partial pivoting; D ≤ 7 is well conditioned).
fn cheb_interp<const D: usize>(f: impl Fn(f64) -> f64) -> [f64; D] {
    let mut a = [[0.0f64; D]; D];
    let mut y = [0.0f64; D];
    for k in 0..D {
        let t = (PI * (k as f64 + 0.5) / D as f64).cos();
        let mut p = 1.0;
        for v in a[k].iter_mut() {
            *v = p;
            p *= t;
        }
        y[k] = f(t);
    }
    for col in 0..D {
        let piv = (col..D).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs())).unwrap();
        a.swap(col, piv);
        y.swap(col, piv);
        for r in col + 1..D {
            let m = a[r][col] / a[col][col];
            let pivot_row = a[col];
            for (v, &pv) in a[r][col..].iter_mut().zip(&pivot_row[col..]) {
                *v -= m * pv;
            }
            y[r] -= m * y[col];
        }
    }
    let mut c = [0.0f64; D];
    for r in (0..D).rev() {
        let s: f64 = (r + 1..D).map(|j| a[r][j] * c[j]).sum();
        c[r] = (y[r] - s) / a[r][r];
    }
    c
}

fn erf_table() -> &'static ErfTable {
    static TABLE: std::sync::OnceLock<ErfTable> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        // x² = s ∈ [0, 0.25], s = 0.125·(1 + t); g(s) = erf(√s)/√s (nodes avoid s = 0).
        let g = cheb_interp::<7>(|t| {
            let x = (0.125 * (1.0 + t)).sqrt();
            erf(x) / x
        });
        // re-express in s: P(s) = Σ c_j t^j with t = 8s - 1
        let mut small = [0.0f64; 7];
        for (j, &cj) in g.iter().enumerate() {
            // (8s - 1)^j expanded by the binomial theorem
            let mut binom = 1.0f64;
            for (i, si) in small.iter_mut().enumerate().take(j + 1) {
                // term C(j, i) (8s)^i (-1)^(j-i)
                let sign = if (j - i) % 2 == 0 { 1.0 } else { -1.0 };
                *si += cj * binom * 8f64.powi(i as i32) * sign;
                binom = binom * (j - i) as f64 / (i + 1) as f64;
            }
        }
        let mid = (0..ERF_MID_N)
            .map(|k| {
                let center = ERF_MID_LO + (k as f64 + 0.5) / ERF_MID_INV_W;
                cheb_interp::<5>(|t| erf(center + t * 0.5 / ERF_MID_INV_W))
            })
            .collect();
        ErfTable { small, mid }
    })
}

/// Fast erf for the f32 path: absolute error ≤ 1e-7 on all of ℝ (table-driven piecewise
/// polynomials evaluated in f64, then rounded to f32; relative error ≤ 1e-6 near 0). Odd;
/// NaN propagates.
#[inline]
pub(crate) fn erf_fast_f32(x: f32) -> f32 {
    let a = (x as f64).abs();
    let r = if a < ERF_MID_LO {
        let t = erf_table();
        let s = a * a;
        let p = &t.small;
        a * (p[0] + s * (p[1] + s * (p[2] + s * (p[3] + s * (p[4] + s * (p[5] + s * p[6]))))))
    } else if a < 4.0 {
        let t = erf_table();
        let u = (a - ERF_MID_LO) * ERF_MID_INV_W;
        let k = (u as usize).min(ERF_MID_N - 1);
        let tt = 2.0 * (u - k as f64) - 1.0;
        let c = &t.mid[k];
        c[0] + tt * (c[1] + tt * (c[2] + tt * (c[3] + tt * c[4])))
    } else if a.is_nan() {
        return x;
    } else {
        1.0
    };
    (r as f32).copysign(x)
}

const SQRT_2_OVER_PI: f64 = 0.7978845608028654;
const GELU_C: f64 = 0.044715;

/// `op(x)`; see [`UnaryOp`] for the definitions.
#[inline(always)]
pub(crate) fn unary_scalar<T: Float>(op: UnaryOp, x: T) -> T {
    match op {
        UnaryOp::Neg => -x,
        UnaryOp::Abs => x.abs(),
        UnaryOp::Exp => exp_t(x),
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
