//! Property test of the fused AdamW step (`Tensor::adamw_step`): over random shapes, strided views
//! (transposed, narrowed with an offset) and both supported dtypes, it equals **bit for bit** the
//! composed op sequence `nn::optim::AdamW` runs (the contract in `kernels::optim`: each op one
//! rounding in the dtype, scalars computed once in f64), for a step with and without weight decay
//! and at several step counts (bias corrections).

use kernels::optim::{AdamWHyper, AdamWScalars};
use proptest::prelude::*;
use tensor::{DType, Tensor};

/// The composed formula, op for op as `nn/src/optim/adamw.rs`.
fn composed(h: &AdamWHyper, step: u64, p: &Tensor, g: &Tensor, m: &Tensor, v: &Tensor) -> [Tensor; 3] {
    let (lr, b1, b2, eps, wd) = (h.lr, h.beta1, h.beta2, h.eps, h.weight_decay);
    let t = step as f64;
    let p = if wd != 0.0 { p.mul_scalar(1.0 - lr * wd).unwrap() } else { p.clone() };
    let m = m.mul_scalar(b1).unwrap().add(&g.mul_scalar(1.0 - b1).unwrap()).unwrap();
    let v = v.mul_scalar(b2).unwrap().add(&g.sqr().unwrap().mul_scalar(1.0 - b2).unwrap()).unwrap();
    let step_size = lr / (1.0 - b1.powf(t));
    let bc2 = (1.0 - b2.powf(t)).sqrt();
    let denom = v.sqrt().unwrap().affine(1.0 / bc2, eps).unwrap();
    let p = p.sub(&m.div(&denom).unwrap().mul_scalar(step_size).unwrap()).unwrap();
    [p, m, v]
}

/// A `[r, c]` tensor of the given dtype from `vals`, as a plain, transposed or narrowed view.
fn view(vals: &[f64], r: usize, c: usize, kind: u8, dtype: DType) -> Tensor {
    match kind {
        0 => Tensor::from_vec(vals[..r * c].to_vec(), &[r, c]).unwrap(),
        1 => Tensor::from_vec(vals[..r * c].to_vec(), &[c, r]).unwrap().t().unwrap(),
        _ => Tensor::from_vec(vals[..(r + 1) * (c + 2)].to_vec(), &[r + 1, c + 2])
            .unwrap()
            .narrow(0, 1, r)
            .unwrap()
            .narrow(1, 2, c)
            .unwrap(),
    }
    .to_dtype(dtype)
    .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn fused_adamw_equals_the_composed_formula_bit_for_bit(
        r in 1usize..6,
        c in 1usize..9,
        kinds in proptest::array::uniform4(0u8..3),
        f64_ in any::<bool>(),
        decay in any::<bool>(),
        step in prop_oneof![Just(1u64), 2u64..20, Just(1000u64)],
        vals in proptest::collection::vec(-2.0f64..2.0, 4 * 7 * 11),
    ) {
        let dtype = if f64_ { DType::F64 } else { DType::F32 };
        let n = (r + 1) * (c + 2);
        let chunk = |k: usize| &vals[k * n..(k + 1) * n];
        let p = view(chunk(0), r, c, kinds[0], dtype);
        let g = view(chunk(1), r, c, kinds[1], dtype);
        let m = view(chunk(2), r, c, kinds[2], dtype).affine(0.1, 0.0).unwrap();
        // v ≥ 0, as a second moment is
        let v = view(chunk(3), r, c, kinds[3], dtype).sqr().unwrap().affine(0.01, 0.0).unwrap();
        let h = AdamWHyper { lr: 3e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: if decay { 0.05 } else { 0.0 } };
        let fused = Tensor::adamw_step(&p, &g, &m, &v, &AdamWScalars::new(&h, step)).unwrap();
        let [cp, cm, cv] = composed(&h, step, &p, &g, &m, &v);
        for (name, a, b) in [("param", &fused.param, &cp), ("exp_avg", &fused.exp_avg, &cm), ("exp_avg_sq", &fused.exp_avg_sq, &cv)] {
            prop_assert_eq!(a.shape(), b.shape());
            prop_assert_eq!(a.dtype(), dtype);
            let (x, y) = (a.to_vec_f64(), b.to_vec_f64());
            for (i, (xv, yv)) in x.iter().zip(&y).enumerate() {
                prop_assert!(xv.to_bits() == yv.to_bits() || (*xv == 0.0 && *yv == 0.0),
                    "{} [{}] {:?} {}: fused {:e} != composed {:e}", name, i, kinds, dtype, xv, yv);
            }
        }
    }
}
