use super::reference::{normal_f32_rule, normal_f64_rule, uniform_f32_rule, uniform_f64_rule};
use super::*;
use proptest::prelude::*;

#[test]
fn philox_known_answers() {
    // Random123 kat_vectors, philox4x32_10.
    assert_eq!(philox4x32_10([0; 4], [0; 2]), [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]);
    assert_eq!(philox4x32_10([u32::MAX; 4], [u32::MAX; 2]), [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]);
    assert_eq!(
        philox4x32_10([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0]),
        [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]
    );
}

#[test]
fn key_and_counter_encoding() {
    assert_eq!(key_from_seed(0x0123_4567_89ab_cdef), [0x89ab_cdef, 0x0123_4567]);
    assert_eq!(counter_for_block((5u128 << 96) | (7u128 << 32) | 9), [9, 7, 0, 5]);
}

#[test]
fn fills_match_elementwise_definition() {
    let seed = 0xDEAD_BEEF_1234_5678;
    for offset in [0u64, 1, 3, 6, u64::MAX - 5] {
        let n = 23;
        let mut a = vec![0f32; n];
        fill_uniform(seed, offset, 0.0f32, 1.0, &mut a);
        let mut b = vec![0f64; n];
        fill_uniform(seed, offset, 0.0f64, 1.0, &mut b);
        let mut c = vec![0f32; n];
        fill_normal(seed, offset, 0.0f32, 1.0, &mut c);
        let mut d = vec![0f64; n];
        fill_normal(seed, offset, 0.0f64, 1.0, &mut d);
        for i in 0..n {
            let g = offset as u128 + i as u128;
            assert_eq!(a[i], uniform_f32_rule(seed, g) as f32, "uniform f32 at {g}");
            assert_eq!(b[i], uniform_f64_rule(seed, g), "uniform f64 at {g}");
            assert_eq!(c[i], normal_f32_rule(seed, g) as f32, "normal f32 at {g}");
            assert_eq!(d[i], normal_f64_rule(seed, g), "normal f64 at {g}");
        }
    }
}

#[test]
fn split_fill_equals_one_fill_large_parallel() {
    // above the parallel threshold, split at a point that is not a block boundary
    let n = 200_003;
    let k = 77_777;
    for seed in [0u64, 42] {
        let mut one = vec![0f32; n];
        fill_normal(seed, 10, 1.0f32, 2.0, &mut one);
        let mut two = vec![0f32; n];
        let (lo, hi) = two.split_at_mut(k);
        fill_normal(seed, 10, 1.0f32, 2.0, lo);
        fill_normal(seed, 10 + k as u64, 1.0f32, 2.0, hi);
        assert_eq!(one, two);
        let mut one = vec![0f64; n];
        fill_uniform(seed, 3, -1.0f64, 1.0, &mut one);
        let mut two = vec![0f64; n];
        let (lo, hi) = two.split_at_mut(k);
        fill_uniform(seed, 3, -1.0f64, 1.0, lo);
        fill_uniform(seed, 3 + k as u64, -1.0f64, 1.0, hi);
        assert_eq!(one, two);
        // deterministic and seed-dependent
        let mut again = vec![0f64; n];
        fill_uniform(seed, 3, -1.0f64, 1.0, &mut again);
        assert_eq!(one, again);
        let mut other = vec![0f64; n];
        fill_uniform(seed + 1, 3, -1.0f64, 1.0, &mut other);
        assert_ne!(one, other);
    }
}

fn moments(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    (m, v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n)
}

#[test]
fn normal_moments_within_5_sigma() {
    let n = 1_000_000;
    // mean of n N(0,1): sd 1/√n; sample variance: sd √(2/n). 5σ bounds, for both types.
    let (bm, bv) = (5.0 / (n as f64).sqrt(), 5.0 * (2.0 / n as f64).sqrt());
    let mut a = vec![0f32; n];
    fill_normal(7, 0, 0.0f32, 1.0, &mut a);
    let (m, v) = moments(&a.iter().map(|&x| x as f64).collect::<Vec<_>>());
    assert!(m.abs() < bm && (v - 1.0).abs() < bv, "f32 normal mean {m} var {v}");
    let mut b = vec![0f64; n];
    fill_normal(8, 123, 3.0f64, 0.5, &mut b);
    let (m, v) = moments(&b);
    assert!((m - 3.0).abs() < 0.5 * bm && (v - 0.25).abs() < 0.25 * bv, "f64 normal mean {m} var {v}");
    // all finite (u1 in (0, 1] keeps ln away from 0)
    assert!(a.iter().all(|x| x.is_finite()) && b.iter().all(|x| x.is_finite()));
}

#[test]
fn uniform_range_and_moments() {
    let n = 1_000_000;
    let mut a = vec![0f32; n];
    fill_uniform(9, 0, -2.0f32, 3.0, &mut a);
    assert!(a.iter().all(|&x| (-2.0..=3.0).contains(&x)));
    let (m, v) = moments(&a.iter().map(|&x| x as f64).collect::<Vec<_>>());
    // U(-2, 3): mean 0.5, var 25/12; sd of mean √(var/n), of variance ≈ √((μ4 - σ⁴)/n) = √(0.8·σ⁴/n)
    let var = 25.0 / 12.0;
    assert!((m - 0.5).abs() < 5.0 * (var / n as f64).sqrt(), "mean {m}");
    assert!((v - var).abs() < 5.0 * (0.8 * var * var / n as f64).sqrt(), "var {v}");
    let mut b = vec![0f64; 4096];
    fill_uniform(9, 0, 0.0f64, 1.0, &mut b);
    assert!(b.iter().all(|&x| (0.0..1.0).contains(&x)));
    // f64 uses 53 bits: some values are not representable with 24 bits
    assert!(b.iter().any(|&x| (x * 16_777_216.0).fract() != 0.0));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    #[test]
    fn prop_split_anywhere(seed in any::<u64>(), offset in 0u64..1000, n in 0usize..300, k in 0usize..300) {
        let k = k.min(n);
        let mut one = vec![0f32; n];
        fill_normal(seed, offset, 0.0f32, 1.0, &mut one);
        let mut two = vec![0f32; n];
        let (lo, hi) = two.split_at_mut(k);
        fill_normal(seed, offset, 0.0f32, 1.0, lo);
        fill_normal(seed, offset + k as u64, 0.0f32, 1.0, hi);
        prop_assert_eq!(one, two);
        let mut one = vec![0f64; n];
        fill_normal(seed, offset, 0.0f64, 1.0, &mut one);
        let mut two = vec![0f64; n];
        let (lo, hi) = two.split_at_mut(k);
        fill_normal(seed, offset, 0.0f64, 1.0, lo);
        fill_normal(seed, offset + k as u64, 0.0f64, 1.0, hi);
        prop_assert_eq!(one, two);
    }
}
