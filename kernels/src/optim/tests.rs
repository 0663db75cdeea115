use super::*;
use crate::testing::{TestRng, Tolerance, assert_close};

/// The textbook AdamW in f64 (bias corrections written the usual way), several steps.
fn textbook(h: &AdamWHyper, steps: &[Vec<f64>], p0: &[f64]) -> Vec<f64> {
    let n = p0.len();
    let (mut p, mut m, mut v) = (p0.to_vec(), vec![0.0; n], vec![0.0; n]);
    for (k, g) in steps.iter().enumerate() {
        let t = (k + 1) as i32;
        for i in 0..n {
            p[i] *= 1.0 - h.lr * h.weight_decay;
            m[i] = h.beta1 * m[i] + (1.0 - h.beta1) * g[i];
            v[i] = h.beta2 * v[i] + (1.0 - h.beta2) * g[i] * g[i];
            let mhat = m[i] / (1.0 - h.beta1.powi(t));
            let vhat = v[i] / (1.0 - h.beta2.powi(t));
            p[i] -= h.lr * mhat / (vhat.sqrt() + h.eps);
        }
    }
    p
}

#[test]
fn reference_step_is_textbook_adamw() {
    let mut rng = TestRng::new(91);
    let n = 257;
    for wd in [0.0, 0.05] {
        let h = AdamWHyper { lr: 3e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: wd };
        let p0 = rng.vec_f64(n);
        let steps: Vec<Vec<f64>> = (0..7).map(|_| rng.vec_f64(n)).collect();
        let (mut p, mut m, mut v) = (p0.clone(), vec![0.0; n], vec![0.0; n]);
        for (k, g) in steps.iter().enumerate() {
            adamw_step(&AdamWScalars::new(&h, k as u64 + 1), &mut p, g, &mut m, &mut v);
        }
        // eps placement: (√v̂ + eps) vs the reference's √v·c + eps, identical up to rounding.
        assert_close("adamw f64 vs textbook", &p, &textbook(&h, &steps, &p0), Tolerance::new(1e-13, 1e-15));
    }
}

#[test]
fn first_step_moves_each_parameter_by_about_lr() {
    // At t = 1, m̂ = g and v̂ = g², so the update is lr·g/(|g| + eps) ≈ lr·sign(g).
    let h = AdamWHyper { lr: 1e-2, beta1: 0.9, beta2: 0.99, eps: 1e-8, weight_decay: 0.0 };
    let (mut p, g) = (vec![1.0f32, 1.0, 1.0], vec![0.5f32, -2.0, 0.0]);
    let (mut m, mut v) = (vec![0f32; 3], vec![0f32; 3]);
    adamw_step(&AdamWScalars::new(&h, 1), &mut p, &g, &mut m, &mut v);
    assert_close("p", &p, &vec![0.99f32, 1.01, 1.0], Tolerance::new(1e-6, 1e-6));
}
