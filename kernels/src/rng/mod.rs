//! Counter-based random streams: Philox4x32-10 uniform and normal fills.
//!
//! # The stream (normative, so that a CUDA kernel can reproduce it element by element)
//!
//! * **Key.** `seed: u64` gives `key = [seed as u32, (seed >> 32) as u32]` (low word first).
//! * **Global index.** Element `i` of `out` has global index `g = offset + i`, computed as a 128-bit
//!   integer (no wrap-around). Filling `out[..k]` at `offset` and `out[k..]` at `offset + k` gives
//!   exactly the same values as one fill of `out` at `offset`.
//! * **Block.** A block index `b` (128-bit) is the counter `[b as u32, (b >> 32) as u32,
//!   (b >> 64) as u32, (b >> 96) as u32]` (low word first); its 4 output lanes are
//!   `x = philox4x32_10(counter, key)`.
//! * **f32 uniform** (`T = f32`): one lane per element; `b = g / 4`, lane `l = g % 4`,
//!   `u = (x[l] >> 8) · 2⁻²⁴ ∈ [0, 1)`.
//! * **f64 uniform** (`T = f64`): two lanes per element; `b = g / 2`, `j = g % 2`,
//!   `u = ((x[2j] as u64) << 21 | (x[2j+1] >> 11)) · 2⁻⁵³ ∈ [0, 1)` (53 random bits).
//! * `fill_uniform` stores `low + (high - low) · u`, computed in `T` (rounding can give exactly `high`
//!   when `high - low` is not a power of two times a representable step; values are in
//!   `[low, high]`).
//! * **Normal, f32**: `b = g / 4`, `l = g % 4`; the element belongs to the lane pair `p = l / 2`,
//!   `u1 = ((x[2p] >> 8) + 1) · 2⁻²⁴ ∈ (0, 1]`, `u2 = (x[2p+1] >> 8) · 2⁻²⁴ ∈ [0, 1)`;
//!   `r = √(-2 ln u1)`, `θ = 2π u2`; element = `r cos θ` for even `l`, `r sin θ` for odd `l`.
//! * **Normal, f64**: `b = g / 2`, `j = g % 2`; `u1 = (k1 + 1) · 2⁻⁵³ ∈ (0, 1]` with
//!   `k1 = (x[0] as u64) << 21 | x[1] >> 11`, `u2 = k2 · 2⁻⁵³ ∈ [0, 1)` with
//!   `k2 = (x[2] as u64) << 21 | x[3] >> 11`; element = `r cos θ` for `j = 0`, `r sin θ` for `j = 1`.
//! * Box–Muller is evaluated in f64 (`ln`, `sqrt`, `sin`/`cos`) and rounded to `T`; then
//!   `mean + std · z` in `T`. A CUDA kernel doing the same in double precision matches to the last
//!   bit of f32 except in rare double-rounding ties (libm `sin`/`cos`/`ln` may differ by 1 ulp of f64).
//!
//! Filling is parallel over chunks for large outputs; by construction the result does not depend on
//! the thread count or the split.

#[cfg(any(feature = "cuda", feature = "emu"))]
pub mod cuda;
#[cfg(all(test, feature = "emu"))]
mod cuda_tests;
mod philox;
pub mod reference;
#[cfg(test)]
mod tests;

pub use philox::philox4x32_10;

use crate::{Float, parallel};

/// The Philox key for a seed: `[low 32 bits, high 32 bits]`.
#[inline]
pub fn key_from_seed(seed: u64) -> [u32; 2] {
    [seed as u32, (seed >> 32) as u32]
}

/// The 128-bit counter for block index `b`, low word first.
#[inline]
pub fn counter_for_block(b: u128) -> [u32; 4] {
    [b as u32, (b >> 32) as u32, (b >> 64) as u32, (b >> 96) as u32]
}

const TWO_M24: f64 = 1.0 / (1u64 << 24) as f64;
const TWO_M53: f64 = 1.0 / (1u64 << 53) as f64;

#[inline(always)]
fn bits53(hi: u32, lo: u32) -> u64 {
    ((hi as u64) << 21) | (lo >> 11) as u64
}

fn is_f64<T: Float>() -> bool {
    std::mem::size_of::<T>() == 8
}

/// Runs `f(block, lanes_out)` per block so each Philox call is shared by the elements of its
/// block; `per` = elements per block. Parallel over chunks of `out`.
fn fill_blocks<T: Float>(
    seed: u64,
    offset: u64,
    out: &mut [T],
    per: u128,
    cost: usize,
    f: impl Fn([u32; 4]) -> [T; 4] + Sync + Send,
) {
    let key = key_from_seed(seed);
    let n = out.len();
    let chunk = crate::elementwise::iter::chunk_len(n);
    parallel::par_chunks_mut(out, chunk, n.saturating_mul(cost), |ci, c| {
        // One 128-bit division per chunk; then walk blocks and lanes.
        let g0 = offset as u128 + (ci * chunk) as u128;
        let mut b = g0 / per;
        let mut lane = (g0 % per) as usize;
        let mut rest = c;
        while !rest.is_empty() {
            let vals = f(philox4x32_10(counter_for_block(b), key));
            let take = (per as usize - lane).min(rest.len());
            let (head, tail) = rest.split_at_mut(take);
            head.copy_from_slice(&vals[lane..lane + take]);
            rest = tail;
            b += 1;
            lane = 0;
        }
    });
}

/// Fills `out` (overwritten) with uniform values in `[low, high]` (see the module docs for the
/// exact stream: element `i` is stream element `offset + i` of `seed`).
pub fn fill_uniform<T: Float>(seed: u64, offset: u64, low: T, high: T, out: &mut [T]) {
    let span = high - low;
    if is_f64::<T>() {
        fill_blocks(seed, offset, out, 2, 8, |x| {
            let u0 = T::from_f64(bits53(x[0], x[1]) as f64 * TWO_M53);
            let u1 = T::from_f64(bits53(x[2], x[3]) as f64 * TWO_M53);
            [low + span * u0, low + span * u1, T::ZERO, T::ZERO]
        });
    } else {
        fill_blocks(seed, offset, out, 4, 8, |x| {
            x.map(|v| low + span * T::from_f64((v >> 8) as f64 * TWO_M24))
        });
    }
}

#[inline(always)]
fn box_muller(u1: f64, u2: f64) -> (f64, f64) {
    let r = (-2.0 * u1.ln()).sqrt();
    let (s, c) = (2.0 * std::f64::consts::PI * u2).sin_cos();
    (r * c, r * s)
}

/// Fills `out` (overwritten) with normal values `mean + std · z`, `z ~ N(0, 1)` by Box–Muller on
/// Philox lanes (see the module docs for the exact stream).
pub fn fill_normal<T: Float>(seed: u64, offset: u64, mean: T, std: T, out: &mut [T]) {
    let m = |z: f64| mean + std * T::from_f64(z);
    if is_f64::<T>() {
        fill_blocks(seed, offset, out, 2, 40, |x| {
            let u1 = (bits53(x[0], x[1]) + 1) as f64 * TWO_M53;
            let u2 = bits53(x[2], x[3]) as f64 * TWO_M53;
            let (a, b) = box_muller(u1, u2);
            [m(a), m(b), T::ZERO, T::ZERO]
        });
    } else {
        fill_blocks(seed, offset, out, 4, 40, |x| {
            let (a, b) = box_muller(((x[0] >> 8) + 1) as f64 * TWO_M24, (x[1] >> 8) as f64 * TWO_M24);
            let (c, d) = box_muller(((x[2] >> 8) + 1) as f64 * TWO_M24, (x[3] >> 8) as f64 * TWO_M24);
            [m(a), m(b), m(c), m(d)]
        });
    }
}
