//! Element-by-element oracle of the documented stream (one Philox call per element, no block
//! sharing, no chunking), for the tests and for anyone porting the stream to another device.

use super::{counter_for_block, key_from_seed, philox4x32_10};

/// Uniform `u ∈ [0, 1)` of global element `g` under the f32 rule.
pub fn uniform_f32_rule(seed: u64, g: u128) -> f64 {
    let x = philox4x32_10(counter_for_block(g / 4), key_from_seed(seed));
    (x[(g % 4) as usize] >> 8) as f64 / 16_777_216.0
}

/// Uniform `u ∈ [0, 1)` of global element `g` under the f64 rule.
pub fn uniform_f64_rule(seed: u64, g: u128) -> f64 {
    let x = philox4x32_10(counter_for_block(g / 2), key_from_seed(seed));
    let j = 2 * (g % 2) as usize;
    let k = ((x[j] as u64) << 21) | (x[j + 1] >> 11) as u64;
    k as f64 / 9_007_199_254_740_992.0
}

/// Standard normal of global element `g` under the f32 rule (in f64, before rounding).
pub fn normal_f32_rule(seed: u64, g: u128) -> f64 {
    let x = philox4x32_10(counter_for_block(g / 4), key_from_seed(seed));
    let l = (g % 4) as usize;
    let p = l / 2;
    let u1 = ((x[2 * p] >> 8) as f64 + 1.0) / 16_777_216.0;
    let u2 = (x[2 * p + 1] >> 8) as f64 / 16_777_216.0;
    let r = (-2.0 * u1.ln()).sqrt();
    let t = 2.0 * std::f64::consts::PI * u2;
    if l.is_multiple_of(2) { r * t.cos() } else { r * t.sin() }
}

/// Standard normal of global element `g` under the f64 rule.
pub fn normal_f64_rule(seed: u64, g: u128) -> f64 {
    let x = philox4x32_10(counter_for_block(g / 2), key_from_seed(seed));
    let k1 = ((x[0] as u64) << 21) | (x[1] >> 11) as u64;
    let k2 = ((x[2] as u64) << 21) | (x[3] >> 11) as u64;
    let u1 = (k1 as f64 + 1.0) / 9_007_199_254_740_992.0;
    let u2 = k2 as f64 / 9_007_199_254_740_992.0;
    let r = (-2.0 * u1.ln()).sqrt();
    let t = 2.0 * std::f64::consts::PI * u2;
    if g.is_multiple_of(2) { r * t.cos() } else { r * t.sin() }
}
