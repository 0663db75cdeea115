//! Contiguous-slice building blocks shared by the reductions and the norms.
//!
//! Every loop keeps `LANES` independent accumulators in `T` so LLVM turns it into packed vector code
//! (the lane arrays map onto SIMD registers), and long inputs are cut into `BLOCK`-element blocks whose
//! partial results are combined in `f64`.
//!
//! Accuracy decision (sums): f32 lane accumulation inside a block of 256 elements (16 adds per lane,
//! worst-case relative error ≈ 16·ε ≈ 2e-6, typically √16·ε), blocks combined in f64 (error of the
//! combination negligible). This is as accurate as pairwise summation with a 16-wide base case and costs
//! nothing measurable: the f64 add happens once per 256 elements, the inner loop stays pure f32 SIMD.
//!
//! Moments (mean / variance) use *blocked shifted two-pass + Chan merge*: each block is summed once to
//! get a shift (the block's f32 mean), then re-read from L1 to accumulate `Σ(x−shift)` and `Σ(x−shift)²`,
//! giving the block's exact-up-to-rounding mean and M2 (the `Σ(x−shift)` term corrects for the shift not
//! being the exact mean). Blocks are merged with Chan et al.'s parallel formula in f64. Memory traffic is
//! one pass over the data (the second pass hits L1), and there is no catastrophic cancellation: with
//! `x = 1e4 + noise` the differences `x − shift` are exact (Sterbenz) and the squares are noise-sized.
//! Welford per element would need a division per element; the naive `E[x²] − E[x]²` loses everything at
//! large offsets.

use crate::Float;

/// Independent accumulators per loop (one AVX-512 register of f32, two AVX2 registers).
pub(crate) const LANES: usize = 16;
/// Elements per block whose partial result is flushed to f64.
pub(crate) const BLOCK: usize = 256;

#[inline(always)]
pub(crate) fn hsum<T: Float>(acc: [T; LANES]) -> T {
    // tree order: 8 + 4 + 2 + 1 adds, keeps the error growth logarithmic
    let mut a = acc;
    let mut w = LANES / 2;
    while w > 0 {
        for k in 0..w {
            a[k] = a[k] + a[k + w];
        }
        w /= 2;
    }
    a[0]
}

/// Sum of a short slice in `T` with lane accumulators (callers keep `x.len()` ≤ a few `BLOCK`s).
#[inline(always)]
pub(crate) fn sum_lanes<T: Float>(x: &[T]) -> T {
    let mut acc = [T::ZERO; LANES];
    let mut it = x.chunks_exact(LANES);
    for c in &mut it {
        for k in 0..LANES {
            acc[k] += c[k];
        }
    }
    let mut tail = T::ZERO;
    for &v in it.remainder() {
        tail += v;
    }
    hsum(acc) + tail
}

/// Sum of a contiguous slice of any length: `T` lanes within blocks, blocks added in f64.
pub(crate) fn sum_f64<T: Float>(x: &[T]) -> f64 {
    x.chunks(BLOCK).map(|b| sum_lanes(b).to_f64()).sum()
}

/// `(Σ dy, Σ dy·((x − hi) − lo))` over equal-length slices, `T` lanes per block, f64 across blocks.
/// `hi + lo` is a double-`T` representation of the mean (see [`split_mean`]).
pub(crate) fn dy_sums<T: Float>(x: &[T], dy: &[T], hi: T, lo: T) -> (f64, f64) {
    assert_eq!(x.len(), dy.len());
    let (mut s_dy, mut s_dyx) = (0.0f64, 0.0f64);
    for (xb, db) in x.chunks(BLOCK).zip(dy.chunks(BLOCK)) {
        let mut a = [T::ZERO; LANES];
        let mut b = [T::ZERO; LANES];
        let mut xi = xb.chunks_exact(LANES);
        let mut di = db.chunks_exact(LANES);
        for (xc, dc) in (&mut xi).zip(&mut di) {
            for k in 0..LANES {
                let d = (xc[k] - hi) - lo;
                a[k] += dc[k];
                b[k] += dc[k] * d;
            }
        }
        let (mut ta, mut tb) = (T::ZERO, T::ZERO);
        for (&xv, &dv) in xi.remainder().iter().zip(di.remainder()) {
            ta += dv;
            tb += dv * ((xv - hi) - lo);
        }
        s_dy += (hsum(a) + ta).to_f64();
        s_dyx += (hsum(b) + tb).to_f64();
    }
    (s_dy, s_dyx)
}

/// Splits an f64 mean into `hi + lo` in `T` so that `(x − hi) − lo` is accurate to `T` rounding of the
/// result even when `x ≈ mean` is large (the `x − hi` step is exact by Sterbenz when x is near hi).
#[inline]
pub(crate) fn split_mean<T: Float>(mean: f64) -> (T, T) {
    let hi = T::from_f64(mean);
    let lo = T::from_f64(mean - hi.to_f64());
    (hi, lo)
}

/// Count, mean and M2 (= Σ(x − mean)²) of a set of values, in f64; merges with Chan's formula.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Moments {
    pub n: f64,
    pub mean: f64,
    pub m2: f64,
}

impl Moments {
    pub const EMPTY: Self = Self { n: 0.0, mean: 0.0, m2: 0.0 };

    /// Chan et al. pairwise merge of two disjoint sets' moments.
    #[inline]
    pub fn merge(self, o: Self) -> Self {
        if o.n == 0.0 {
            return self;
        }
        if self.n == 0.0 {
            return o;
        }
        let n = self.n + o.n;
        let d = o.mean - self.mean;
        Self { n, mean: self.mean + d * (o.n / n), m2: self.m2 + o.m2 + d * d * (self.n * o.n / n) }
    }
}

/// Moments of one block (≤ a few `BLOCK`s, so it stays in L1 between the two reads).
#[inline(always)]
fn block_moments<T: Float>(x: &[T]) -> Moments {
    let len = x.len();
    if len == 0 {
        return Moments::EMPTY;
    }
    let shift = sum_lanes(x) / T::from_usize(len);
    let mut d = [T::ZERO; LANES];
    let mut q = [T::ZERO; LANES];
    let mut it = x.chunks_exact(LANES);
    for c in &mut it {
        for k in 0..LANES {
            let v = c[k] - shift;
            d[k] += v;
            q[k] += v * v;
        }
    }
    let (mut td, mut tq) = (T::ZERO, T::ZERO);
    for &v in it.remainder() {
        let v = v - shift;
        td += v;
        tq += v * v;
    }
    let d = (hsum(d) + td).to_f64();
    let q = (hsum(q) + tq).to_f64();
    let nf = len as f64;
    // q − d²/n ≥ 0 mathematically; clamp the rounding residue (NaN passes through `max` as the other arg,
    // so keep NaN explicitly).
    let m2 = q - d * d / nf;
    let m2 = if m2.is_nan() { m2 } else { m2.max(0.0) };
    Moments { n: nf, mean: shift.to_f64() + d / nf, m2 }
}

/// Moments of a contiguous slice of any length (see the module doc for the scheme).
pub(crate) fn moments<T: Float>(x: &[T]) -> Moments {
    let mut m = Moments::EMPTY;
    for b in x.chunks(BLOCK) {
        m = m.merge(block_moments(b));
    }
    m
}

/// NaN-propagating max of a contiguous slice (−∞ for an empty slice).
pub(crate) fn max_contig<T: Float>(x: &[T]) -> T {
    let mut acc = [T::NEG_INFINITY; LANES];
    let mut it = x.chunks_exact(LANES);
    for c in &mut it {
        for k in 0..LANES {
            acc[k] = max_nan(acc[k], c[k]);
        }
    }
    let mut m = T::NEG_INFINITY;
    for &v in it.remainder() {
        m = max_nan(m, v);
    }
    acc.iter().fold(m, |a, &b| max_nan(a, b))
}

/// NaN-propagating min of a contiguous slice (+∞ for an empty slice).
pub(crate) fn min_contig<T: Float>(x: &[T]) -> T {
    let mut acc = [T::INFINITY; LANES];
    let mut it = x.chunks_exact(LANES);
    for c in &mut it {
        for k in 0..LANES {
            acc[k] = min_nan(acc[k], c[k]);
        }
    }
    let mut m = T::INFINITY;
    for &v in it.remainder() {
        m = min_nan(m, v);
    }
    acc.iter().fold(m, |a, &b| min_nan(a, b))
}

/// `max` that returns NaN once either side is NaN (once `a` is NaN, `v > a` and `v != v` are false for
/// every `v`, so it stays NaN). Written as a compare + select so it vectorises.
#[inline(always)]
pub(crate) fn max_nan<T: Float>(a: T, v: T) -> T {
    #[allow(clippy::eq_op)]
    let v_nan = v != v;
    if v > a || v_nan { v } else { a }
}

/// `min` counterpart of [`max_nan`].
#[inline(always)]
pub(crate) fn min_nan<T: Float>(a: T, v: T) -> T {
    #[allow(clippy::eq_op)]
    let v_nan = v != v;
    if v < a || v_nan { v } else { a }
}

/// `acc[j] += row[j]`.
#[inline(always)]
pub(crate) fn add_row<T: Float>(acc: &mut [T], row: &[T]) {
    for (a, &r) in acc.iter_mut().zip(row) {
        *a += r;
    }
}

/// `acc[j] = max_nan(acc[j], row[j])`.
#[inline(always)]
pub(crate) fn max_row<T: Float>(acc: &mut [T], row: &[T]) {
    for (a, &r) in acc.iter_mut().zip(row) {
        *a = max_nan(*a, r);
    }
}

/// `acc[j] = min_nan(acc[j], row[j])`.
#[inline(always)]
pub(crate) fn min_row<T: Float>(acc: &mut [T], row: &[T]) {
    for (a, &r) in acc.iter_mut().zip(row) {
        *a = min_nan(*a, r);
    }
}

/// `v = row[j] − shift[j]; ad[j] += v; aq[j] += v²`.
#[inline(always)]
pub(crate) fn dev_row<T: Float>(ad: &mut [T], aq: &mut [T], row: &[T], shift: &[T]) {
    for (((d, q), &r), &s) in ad.iter_mut().zip(aq.iter_mut()).zip(row).zip(shift) {
        let v = r - s;
        *d += v;
        *q += v * v;
    }
}
