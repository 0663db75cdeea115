//! ISA dispatch and the vectorisable helpers shared by the softmax and attention kernels.
//!
//! The crate is compiled for the baseline x86-64 target (SSE2), so the hot loops are written as plain
//! generic `#[inline(always)]` bodies and instantiated a second time inside `#[target_feature]`
//! wrappers (AVX-512 or AVX2+FMA), selected at run time by [`isa`]. `f32` additionally gets a
//! polynomial `exp` ([`exp_f32`]) that vectorises; `f64` always uses the libm `exp`.
//!
//! Without FMA hardware (non-AVX2 x86), `mul_add` falls back to libm `fma`: correct but slow.

use crate::Float;
use std::any::TypeId;
use std::sync::OnceLock;

/// Instruction-set level the multiversioned kernels run at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Isa {
    Avx512,
    Avx2,
    Scalar,
}

/// The best supported [`Isa`] on this machine (detected once).
pub(crate) fn isa() -> Isa {
    static ISA: OnceLock<Isa> = OnceLock::new();
    *ISA.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            if std::env::var("MATRYOSHKA_NO_SIMD").is_ok() {
                return Isa::Scalar;
            }
            if is_x86_feature_detected!("avx512f")
                && is_x86_feature_detected!("avx512vl")
                && is_x86_feature_detected!("avx2")
                && is_x86_feature_detected!("fma")
            {
                return Isa::Avx512;
            }
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                return Isa::Avx2;
            }
        }
        Isa::Scalar
    })
}

/// Defines `$vis fn $name<T: Float>(args)` that calls the `#[inline(always)]` generic `$body` compiled
/// for the best ISA available at run time.
macro_rules! multiversion {
    ($(#[$m:meta])* $vis:vis fn $name:ident<$T:ident>($($a:ident : $ty:ty),* $(,)?) => $body:ident) => {
        $(#[$m])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name<$T: $crate::Float>($($a: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn v512<$T: $crate::Float>($($a: $ty),*) {
                    $body::<$T>($($a),*)
                }
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn v256<$T: $crate::Float>($($a: $ty),*) {
                    $body::<$T>($($a),*)
                }
                match $crate::softmax::simd::isa() {
                    $crate::softmax::simd::Isa::Avx512 => {
                        // SAFETY: isa() returned Avx512 only after detecting avx512f/vl, avx2 and fma.
                        return unsafe { v512::<$T>($($a),*) };
                    }
                    $crate::softmax::simd::Isa::Avx2 => {
                        // SAFETY: isa() returned Avx2 only after detecting avx2 and fma.
                        return unsafe { v256::<$T>($($a),*) };
                    }
                    $crate::softmax::simd::Isa::Scalar => {}
                }
            }
            $body::<$T>($($a),*)
        }
    };
}
pub(crate) use multiversion;

/// Lanes of the independent accumulators used by the reductions (breaks the dependency chain so the
/// loop vectorises without reassociating a single sum).
pub(crate) const LANES: usize = 16;

#[inline(always)]
pub(crate) fn is_f32<T: Float>() -> bool {
    TypeId::of::<T>() == TypeId::of::<f32>()
}

/// Views `&mut [T]` as `&mut [f32]` when `T` is `f32`.
#[inline(always)]
pub(crate) fn as_f32_mut<T: Float>(s: &mut [T]) -> Option<&mut [f32]> {
    if is_f32::<T>() {
        // SAFETY: T is f32 (same TypeId), so the slice has the same layout and length.
        Some(unsafe { &mut *(s as *mut [T] as *mut [f32]) })
    } else {
        None
    }
}

/// Views `&[T]` as `&[f32]` when `T` is `f32`.
#[inline(always)]
pub(crate) fn as_f32<T: Float>(s: &[T]) -> Option<&[f32]> {
    if is_f32::<T>() {
        // SAFETY: T is f32 (same TypeId), so the slice has the same layout and length.
        Some(unsafe { &*(s as *const [T] as *const [f32]) })
    } else {
        None
    }
}

/// Branch-free `exp` for f32 (Cephes polynomial, ≤ 2 ulp on the normal range), vectorisable.
/// Results below the smallest normal flush to 0 (`x < -87.33`); `-inf → 0`, `+inf`/large → `inf`,
/// NaN → NaN.
#[inline(always)]
pub(crate) fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const C1: f32 = 0.693_359_4;
    const C2: f32 = -2.121_944_4e-4;
    const MAGIC: f32 = 12_582_912.0; // 1.5 * 2^23: adding it rounds to an integer in the low bits
    let xc = if x < -88.0 {
        -88.0
    } else if x > 89.0 {
        89.0
    } else {
        x
    };
    let t = xc * LOG2E + MAGIC;
    let n = t - MAGIC;
    let bits = t.to_bits().wrapping_sub(MAGIC.to_bits()) as i32; // = n as i32
    let r = n.mul_add(-C1, xc);
    let r = n.mul_add(-C2, r);
    let mut p = 1.987_569_1e-4_f32;
    p = p.mul_add(r, 1.398_199_9e-3);
    p = p.mul_add(r, 8.333_452e-3);
    p = p.mul_add(r, 4.166_579_6e-2);
    p = p.mul_add(r, 1.666_666_5e-1);
    p = p.mul_add(r, 5.000_000_1e-1);
    let y = (p * r).mul_add(r, r) + 1.0;
    // 2^n as two factors so that n = 128 (x just below ln(f32::MAX)) does not overflow the exponent.
    let n1 = bits >> 1;
    let n2 = bits - n1;
    let s1 = f32::from_bits(((n1 + 127) as u32) << 23);
    let s2 = f32::from_bits(((n2 + 127) as u32) << 23);
    let v = y * s1 * s2;
    if x < -87.336_54 {
        0.0
    } else if x > 88.722_83 {
        f32::INFINITY
    } else {
        v
    }
}

/// `exp` of one element: the polynomial for f32, libm for everything else.
#[inline(always)]
pub(crate) fn exp_t<T: Float>(x: T) -> T {
    if is_f32::<T>() { T::from_f64(exp_f32(x.to_f64() as f32) as f64) } else { x.exp() }
}

/// Largest element (NaNs ignored, `-inf` for an empty slice).
#[inline(always)]
pub(crate) fn max_of<T: Float>(x: &[T]) -> T {
    let mut acc = [T::NEG_INFINITY; LANES];
    let mut it = x.chunks_exact(LANES);
    for c in &mut it {
        for l in 0..LANES {
            acc[l] = acc[l].max(c[l]);
        }
    }
    let mut m = T::NEG_INFINITY;
    for &v in it.remainder() {
        m = m.max(v);
    }
    for a in acc {
        m = m.max(a);
    }
    m
}

/// Sum with [`LANES`] independent accumulators.
#[inline(always)]
pub(crate) fn sum_of<T: Float>(x: &[T]) -> T {
    let mut acc = [T::ZERO; LANES];
    let mut it = x.chunks_exact(LANES);
    for c in &mut it {
        for l in 0..LANES {
            acc[l] += c[l];
        }
    }
    let mut s = T::ZERO;
    for &v in it.remainder() {
        s += v;
    }
    for a in acc {
        s += a;
    }
    s
}

/// `Σ a·b` with [`LANES`] independent accumulators.
#[inline(always)]
pub(crate) fn dot<T: Float>(a: &[T], b: &[T]) -> T {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [T::ZERO; LANES];
    let mut ia = a.chunks_exact(LANES);
    let mut ib = b.chunks_exact(LANES);
    for (ca, cb) in (&mut ia).zip(&mut ib) {
        for l in 0..LANES {
            acc[l] = ca[l].mul_add(cb[l], acc[l]);
        }
    }
    let mut s = T::ZERO;
    for (&x, &y) in ia.remainder().iter().zip(ib.remainder()) {
        s = x.mul_add(y, s);
    }
    for v in acc {
        s += v;
    }
    s
}

/// `y[i] = exp(x[i] - m)`; returns `Σ y`.
#[inline(always)]
pub(crate) fn exp_sub_store<T: Float>(x: &[T], m: T, y: &mut [T]) -> T {
    let n = x.len().min(y.len());
    let (x, y) = (&x[..n], &mut y[..n]);
    if let (Some(xf), Some(yf)) = (as_f32(x), as_f32_mut(&mut *y)) {
        let mf = m.to_f64() as f32;
        for (o, &v) in yf.iter_mut().zip(xf) {
            *o = exp_f32(v - mf);
        }
    } else {
        for (o, &v) in y.iter_mut().zip(x) {
            *o = (v - m).exp();
        }
    }
    sum_of(y)
}

/// In place `x[i] = exp(x[i] - m)`.
#[inline(always)]
pub(crate) fn exp_sub_inplace<T: Float>(x: &mut [T], m: T) {
    if let Some(xf) = as_f32_mut(&mut *x) {
        let mf = m.to_f64() as f32;
        for v in xf.iter_mut() {
            *v = exp_f32(*v - mf);
        }
    } else {
        for v in x.iter_mut() {
            *v = (*v - m).exp();
        }
    }
}

/// `y += a · x` (lengths must match).
#[inline(always)]
pub(crate) fn axpy<T: Float>(a: T, x: &[T], y: &mut [T]) {
    let n = x.len().min(y.len());
    for (o, &v) in y[..n].iter_mut().zip(&x[..n]) {
        *o = a.mul_add(v, *o);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_f32_matches_libm_within_2ulp() {
        let mut x = -87.3f32;
        let mut worst = 0.0f64;
        while x < 88.7 {
            let e = (x as f64).exp();
            let a = exp_f32(x) as f64;
            let ulp = (e as f32).abs() * f32::EPSILON;
            worst = worst.max((a - e).abs() / ulp as f64);
            x += 0.0137;
        }
        // Cephes expf is ~1 ulp; allow 2 for the final scaling rounding.
        assert!(worst <= 2.0, "worst error {worst} ulp");
        assert_eq!(exp_f32(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_f32(-1000.0), 0.0);
        assert_eq!(exp_f32(0.0), 1.0);
        assert_eq!(exp_f32(f32::INFINITY), f32::INFINITY);
        assert!(exp_f32(f32::NAN).is_nan());
    }
}
