//! The tolerance type and the one approximate-equality check used by every numeric test.
//!
//! `|actual - expected| <= abs + rel * |expected|`, element by element. NaN equals NaN only when both
//! are NaN at the same index; infinities must match exactly. On failure the report names the worst
//! element (largest excess over its allowance): its flat index, both values, the error and the bound.

use std::fmt;

/// Relative + absolute tolerance.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerance {
    pub rel: f64,
    pub abs: f64,
}

impl Tolerance {
    pub const fn new(rel: f64, abs: f64) -> Self {
        Self { rel, abs }
    }
    /// Default for f64 results compared with an f64 reference computed in another order.
    pub const F64: Self = Self::new(1e-10, 1e-12);
    /// Default for f32 kernels compared with an f64 reference: a few ulps of accumulated rounding over
    /// reductions of length ≲ 10⁴ (√n·ε growth, ε = 1.2e-7).
    pub const F32: Self = Self::new(1e-4, 1e-5);
    /// bf16 keeps 8 mantissa bits (ε = 7.8e-3): two roundings (input, output) plus accumulation.
    pub const BF16: Self = Self::new(2e-2, 1e-2);
    /// f16 keeps 11 mantissa bits (ε = 9.8e-4).
    pub const F16: Self = Self::new(4e-3, 1e-3);

    /// Tolerance grown for a reduction of length `n` (error grows like √n for random-sign terms).
    pub fn for_reduction(self, n: usize) -> Self {
        let g = (n.max(1) as f64).sqrt().max(1.0);
        Self::new(self.rel * g, self.abs * g)
    }

    /// Compares element by element. `Ok(())` or a report on the worst element.
    pub fn check(&self, actual: &[f64], expected: &[f64]) -> Result<(), Mismatch> {
        if actual.len() != expected.len() {
            return Err(Mismatch {
                index: usize::MAX,
                actual: actual.len() as f64,
                expected: expected.len() as f64,
                bound: 0.0,
                tolerance: *self,
                count: 1,
                len: expected.len(),
            });
        }
        let mut worst: Option<(usize, f64)> = None;
        let mut count = 0usize;
        for (i, (&a, &e)) in actual.iter().zip(expected).enumerate() {
            let excess = if a.is_nan() || e.is_nan() {
                if a.is_nan() && e.is_nan() { 0.0 } else { f64::INFINITY }
            } else if a.is_infinite() || e.is_infinite() {
                if a == e { 0.0 } else { f64::INFINITY }
            } else {
                (a - e).abs() - (self.abs + self.rel * e.abs())
            };
            if excess > 0.0 {
                count += 1;
                if worst.is_none_or(|(_, w)| excess > w) {
                    worst = Some((i, excess));
                }
            }
        }
        match worst {
            None => Ok(()),
            Some((i, _)) => Err(Mismatch {
                index: i,
                actual: actual[i],
                expected: expected[i],
                bound: self.abs + self.rel * expected[i].abs(),
                tolerance: *self,
                count,
                len: expected.len(),
            }),
        }
    }
}

/// Report of a failed [`Tolerance::check`].
#[derive(Clone, Debug)]
pub struct Mismatch {
    /// Flat index of the worst element (`usize::MAX` for a length mismatch).
    pub index: usize,
    pub actual: f64,
    pub expected: f64,
    pub bound: f64,
    pub tolerance: Tolerance,
    /// How many elements were out of tolerance.
    pub count: usize,
    pub len: usize,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.index == usize::MAX {
            return write!(f, "length mismatch: actual {} vs expected {}", self.actual, self.expected);
        }
        write!(
            f,
            "{} of {} elements out of tolerance (rel {:e}, abs {:e}); worst at flat index {}: actual {:e}, expected {:e}, |diff| {:e} > bound {:e}",
            self.count,
            self.len,
            self.tolerance.rel,
            self.tolerance.abs,
            self.index,
            self.actual,
            self.expected,
            (self.actual - self.expected).abs(),
            self.bound
        )
    }
}

impl std::error::Error for Mismatch {}

/// Anything convertible to a flat list of f64 for comparison.
pub trait AsF64s {
    fn as_f64s(&self) -> Vec<f64>;
}
impl AsF64s for [f32] {
    fn as_f64s(&self) -> Vec<f64> {
        self.iter().map(|&x| x as f64).collect()
    }
}
impl AsF64s for [f64] {
    fn as_f64s(&self) -> Vec<f64> {
        self.to_vec()
    }
}
impl AsF64s for Vec<f32> {
    fn as_f64s(&self) -> Vec<f64> {
        self.as_slice().as_f64s()
    }
}
impl AsF64s for Vec<f64> {
    fn as_f64s(&self) -> Vec<f64> {
        self.clone()
    }
}

/// Panics with the worst-element report when `actual` is not within `tol` of `expected`.
/// `what` names the quantity (e.g. `"gemm 17x33x5 C"`).
#[track_caller]
pub fn assert_close<A: AsF64s + ?Sized, E: AsF64s + ?Sized>(
    what: &str,
    actual: &A,
    expected: &E,
    tol: Tolerance,
) {
    if let Err(m) = tol.check(&actual.as_f64s(), &expected.as_f64s()) {
        panic!("{what}: {m}");
    }
}

/// A small deterministic generator for test inputs (SplitMix64), so kernel tests need no RNG crate.
#[derive(Clone, Debug)]
pub struct TestRng(u64);

impl TestRng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [-1, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }
    pub fn vec_f32(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.uniform() as f32).collect()
    }
    pub fn vec_f64(&mut self, n: usize) -> Vec<f64> {
        (0..n).map(|_| self.uniform()).collect()
    }
}

/// A storage dtype of the CUDA kernel tests (through the emulator): how a value rounds into it, how
/// 16-bit buffers are encoded, and the tolerance of a result accumulated in f32 over `k` terms
/// and rounded once into it (f32's reduction tolerance plus one rounding of the storage type:
/// 2⁻⁷ for bf16, 2⁻¹⁰ for f16). Only for this crate's tests (`half` is a dev-dependency).
#[cfg(test)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageDtype {
    F32,
    F64,
    Bf16,
    F16,
}

#[cfg(test)]
impl StorageDtype {
    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::F64 => "f64",
            Self::Bf16 => "bf16",
            Self::F16 => "f16",
        }
    }

    /// The value `x` takes in this dtype.
    pub fn round(self, x: f64) -> f64 {
        match self {
            Self::F32 => x as f32 as f64,
            Self::F64 => x,
            Self::Bf16 => half::bf16::from_f64(x).to_f64(),
            Self::F16 => half::f16::from_f64(x).to_f64(),
        }
    }

    /// Tolerance of a `k`-term reduction stored in this dtype (f64: accumulated in f64).
    pub fn reduction_tol(self, k: usize) -> Tolerance {
        let f32t = Tolerance::F32.for_reduction(k);
        match self {
            Self::F32 => f32t,
            Self::F64 => Tolerance::F64.for_reduction(k),
            Self::Bf16 => Tolerance::new(2f64.powi(-7) + f32t.rel, f32t.abs),
            Self::F16 => Tolerance::new(2f64.powi(-10) + f32t.rel, f32t.abs),
        }
    }

    /// The bits of `v` in this 16-bit dtype. Panics for f32/f64 (a test bug, not input).
    pub fn encode_half(self, v: &[f64]) -> Vec<u16> {
        match self {
            Self::Bf16 => v.iter().map(|&x| half::bf16::from_f64(x).to_bits()).collect(),
            Self::F16 => v.iter().map(|&x| half::f16::from_f64(x).to_bits()).collect(),
            _ => panic!("encode_half of {}", self.name()),
        }
    }

    /// The values of 16-bit buffer `v` in this dtype. Panics for f32/f64 (a test bug, not input).
    pub fn decode_half(self, v: &[u16]) -> Vec<f64> {
        match self {
            Self::Bf16 => v.iter().map(|&b| half::bf16::from_bits(b).to_f64()).collect(),
            Self::F16 => v.iter().map(|&b| half::f16::from_bits(b).to_f64()).collect(),
            _ => panic!("decode_half of {}", self.name()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_reports_worst_element() {
        let t = Tolerance::new(0.0, 0.1);
        let e = t.check(&[1.0, 2.0, 3.5, 4.2], &[1.0, 2.0, 3.0, 4.0]).unwrap_err();
        assert_eq!(e.index, 2);
        assert_eq!(e.count, 2);
        assert!(e.to_string().contains("flat index 2"));
        assert!(t.check(&[1.05], &[1.0]).is_ok());
    }

    #[test]
    fn nan_and_inf_rules() {
        let t = Tolerance::F32;
        assert!(t.check(&[f64::NAN], &[f64::NAN]).is_ok());
        assert!(t.check(&[1.0], &[f64::NAN]).is_err());
        assert!(t.check(&[f64::INFINITY], &[f64::INFINITY]).is_ok());
        assert!(t.check(&[f64::INFINITY], &[f64::NEG_INFINITY]).is_err());
        assert!(t.check(&[1.0], &[1.0, 2.0]).is_err());
    }

    #[test]
    fn storage_dtypes_round_and_encode() {
        use StorageDtype::*;
        let x = 1.0 + 2f64.powi(-9);
        assert_eq!(F64.round(x), x);
        assert_eq!(F32.round(x), x);
        assert_eq!(F16.round(x), x);
        assert_eq!(Bf16.round(x), 1.0);
        assert_eq!(Bf16.decode_half(&Bf16.encode_half(&[x, -3.0])), vec![1.0, -3.0]);
        assert_eq!(F16.decode_half(&F16.encode_half(&[x])), vec![x]);
        assert!(Bf16.reduction_tol(4).rel > F16.reduction_tol(4).rel);
        assert_eq!(F32.reduction_tol(4), Tolerance::F32.for_reduction(4));
    }
}
