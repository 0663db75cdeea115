//! Fused attention and group norm: forward values and all gradients equal those of the same
//! function composed from primitive ops (matmul + softmax + matmul; mean/var/rsqrt). In f64 both
//! paths are exact up to rounding in a different order, so the tolerance is 1e-9 relative.

mod common;
use autograd::{Var, grad};
use common::std;
use kernels::testing::{Tolerance, assert_close};
use tensor::Tensor;

const TOL: Tolerance = Tolerance::new(1e-9, 1e-11);

fn all_grads(out: &Var, wrt: &[&Var], seed: u64) -> Vec<Vec<f64>> {
    let r = std(out.shape(), seed);
    grad(out, Some(&r), wrt, false).unwrap().into_iter().map(|g| g.unwrap().to_vec_f64()).collect()
}

#[test]
fn attention_equals_composed_matmul_softmax_matmul() {
    for (b, h, lq, lk, d, dv, masked) in
        [(2, 2, 5, 7, 4, 3, true), (1, 3, 1, 9, 8, 8, false), (2, 1, 17, 17, 5, 6, true)]
    {
        let (q0, k0, v0) = (std(&[b, h, lq, d], 1), std(&[b, h, lk, d], 2), std(&[b, h, lk, dv], 3));
        let mask = Tensor::from_vec(
            (0..b * lk).map(|i| u8::from(!masked || i % 4 != 2)).collect::<Vec<u8>>(),
            &[b, lk],
        )
        .unwrap();
        let scale = 1.0 / (d as f64).sqrt();
        let (q, k, v) = (Var::leaf(q0.clone()), Var::leaf(k0.clone()), Var::leaf(v0.clone()));
        let fused = Var::attention(&q, &k, &v, Some(&mask), scale).unwrap();

        let (q2, k2, v2) = (Var::leaf(q0), Var::leaf(k0), Var::leaf(v0));
        let s = q2.matmul(&k2.transpose(-2, -1).unwrap()).unwrap().mul_scalar(scale).unwrap();
        // masked keys: [B, 1, 1, Lk] broadcast over heads and queries
        let drop = Tensor::from_vec(
            mask.to_vec_f64().iter().map(|&m| u8::from(m == 0.0)).collect::<Vec<u8>>(),
            &[b, lk],
        )
        .unwrap();
        let s = s.masked_fill(&drop.reshape(&[b, 1, 1, lk]).unwrap(), f64::NEG_INFINITY).unwrap();
        let composed = s.softmax(-1).unwrap().matmul(&v2).unwrap();

        assert_close("attention forward", &fused.value().to_vec_f64(), &composed.value().to_vec_f64(), TOL);
        let gf = all_grads(&fused, &[&q, &k, &v], 7);
        let gc = all_grads(&composed, &[&q2, &k2, &v2], 7);
        for (name, (a, c)) in ["dq", "dk", "dv"].iter().zip(gf.iter().zip(&gc)) {
            assert_close(&format!("attention {name} ({b},{h},{lq},{lk},{d},{dv})"), a, c, TOL);
        }
    }
}

#[test]
fn group_norm_equals_composed_mean_var_rsqrt() {
    for (n, c, hw, groups) in [(2, 6, [3, 2], 3), (1, 4, [1, 1], 4), (3, 8, [2, 5], 1)] {
        let x0 = std(&[n, c, hw[0], hw[1]], 11).affine(3.0, 0.5).unwrap();
        let (g0, b0) = (std(&[c], 12), std(&[c], 13));
        let (x, g, b) = (Var::leaf(x0.clone()), Var::leaf(g0.clone()), Var::leaf(b0.clone()));
        let fused = x.group_norm(groups, Some(&g), Some(&b), 1e-5).unwrap();

        let (x2, g2, b2) = (Var::leaf(x0), Var::leaf(g0), Var::leaf(b0));
        let xg = x2.reshape(&[n, groups, c / groups * hw[0] * hw[1]]).unwrap();
        let mean = xg.mean(&[-1], true).unwrap();
        let var = xg.var(&[-1], 0, true).unwrap();
        let xhat = xg.sub(&mean).unwrap().mul(&var.add_scalar(1e-5).unwrap().rsqrt().unwrap()).unwrap();
        let composed = xhat
            .reshape(&[n, c, hw[0], hw[1]])
            .unwrap()
            .mul(&g2.reshape(&[1, c, 1, 1]).unwrap())
            .unwrap()
            .add(&b2.reshape(&[1, c, 1, 1]).unwrap())
            .unwrap();

        assert_close("group_norm forward", &fused.value().to_vec_f64(), &composed.value().to_vec_f64(), TOL);
        let gf = all_grads(&fused, &[&x, &g, &b], 17);
        let gc = all_grads(&composed, &[&x2, &g2, &b2], 17);
        for (name, (a, cc)) in ["dx", "dgamma", "dbeta"].iter().zip(gf.iter().zip(&gc)) {
            assert_close(&format!("group_norm {name} ({n},{c},{hw:?},{groups})"), a, cc, TOL);
        }
    }
}

#[test]
fn group_norm_silu_equals_composed_group_norm_modulation_silu() {
    for (n, c, hw, groups, modulated) in
        [(2, 6, [3, 2], 3, true), (1, 4, [1, 1], 4, false), (3, 8, [2, 5], 2, true)]
    {
        let x0 = std(&[n, c, hw[0], hw[1]], 21).affine(2.0, 0.3).unwrap();
        let (g0, b0) = (std(&[c], 22), std(&[c], 23));
        let (a0, s0) = (std(&[n, c, 1, 1], 24).affine(0.5, 0.0).unwrap(), std(&[n, c, 1, 1], 25));
        let leaves = || [&x0, &g0, &b0, &a0, &s0].map(|t| Var::leaf(t.clone()));
        let [x, g, b, a, s] = leaves();
        let ss = modulated.then_some((&a, &s));
        let fused = x.group_norm_silu(groups, Some(&g), Some(&b), ss, 1e-5).unwrap();
        let [x2, g2, b2, a2, s2] = leaves();
        let h = x2.group_norm(groups, Some(&g2), Some(&b2), 1e-5).unwrap();
        let h = if modulated { h.mul(&a2.add_scalar(1.0).unwrap()).unwrap().add(&s2).unwrap() } else { h };
        let composed = h.silu().unwrap();
        let what = format!("group_norm_silu ({n},{c},{hw:?},{groups},{modulated})");
        assert_close(&what, &fused.value().to_vec_f64(), &composed.value().to_vec_f64(), TOL);
        let (wf, wc): (Vec<&Var>, Vec<&Var>) = if modulated {
            (vec![&x, &g, &b, &a, &s], vec![&x2, &g2, &b2, &a2, &s2])
        } else {
            (vec![&x, &g, &b], vec![&x2, &g2, &b2])
        };
        let gf = all_grads(&fused, &wf, 26);
        let gc = all_grads(&composed, &wc, 26);
        for (name, (p, q)) in ["dx", "dgamma", "dbeta", "dscale", "dshift"].iter().zip(gf.iter().zip(&gc)) {
            assert_close(&format!("{what} {name}"), p, q, TOL);
        }
    }
}
