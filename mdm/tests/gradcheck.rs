//! Gradient checks in f64: one ResNet and one attention block (self + cross with a key mask +
//! FFN) through `autograd::gradcheck` over every input and parameter element, and a tiny nested
//! UNet on one sampled element of every parameter tensor. Zero-initialised layers are perturbed
//! first so that every gradient is non-trivial.

mod common;

use autograd::{GradcheckOptions, Var, gradcheck};
use kernels::testing::{TestRng, Tolerance, assert_close};
use mdm::model::resnet::ResNet;
use mdm::{Conditioning, Mdm, Micros, ModelConfig};
use nn::{Init, Module, Param, SelfAttention};
use tensor::{DType, Tensor};

/// Parameter values of `m`, in visiting order.
fn param_values<M: Module>(m: &M) -> Vec<Tensor> {
    m.named_params().into_iter().map(|(_, p)| p.value().clone()).collect()
}

/// A copy of `m` whose parameters are the given variables (so gradcheck sees them as inputs).
fn with_params<M: Module + Clone>(m: &M, vars: &[Var]) -> M {
    let mut c = m.clone();
    let mut i = 0;
    c.visit_mut("", &mut |_, p| {
        *p = Param::from_var(vars[i].clone());
        i += 1;
    });
    c
}

#[test]
fn resnet_block_gradcheck() {
    // in 8 → out 16 (so the 1×1 skip conv3 is exercised), 4 groups, D_t 16, batch 2, 4×4
    let mut init = Init::with_dtype(1, DType::F64);
    let mut r = ResNet::new(&mut init, 8, 16, 4, 16, 0.0, 0).unwrap();
    let mut rng = TestRng::new(2);
    common::perturb(&mut r, &mut rng, 0.1);
    let mut inputs =
        vec![common::rand(&mut rng, &[2, 8, 4, 4], DType::F64), common::rand(&mut rng, &[2, 16], DType::F64)];
    inputs.extend(param_values(&r));
    let rep = gradcheck(
        |xs| with_params(&r, &xs[2..]).forward(&xs[0], &xs[1]).map_err(to_ag),
        &inputs,
        GradcheckOptions::default(),
    )
    .unwrap();
    assert_eq!(rep.checked, inputs.iter().map(|t| t.numel()).sum::<usize>());
}

#[test]
fn attention_block_gradcheck_self_cross_masked_ffn() {
    // C 32 (8 heads of 4), d_c 8, 3 conditioning tokens with the last masked in sample 0.
    // Every element of x, c and every parameter is checked except the two large FFN conv weights
    // (8 192 elements, kept as constants to keep the test fast; their gradients are covered by
    // the sampled tiny-UNet check below, whose attention has an FFN).
    let mut init = Init::with_dtype(3, DType::F64);
    let mut a = SelfAttention::new(&mut init, 32, 8, true).unwrap();
    let mut rng = TestRng::new(4);
    common::perturb(&mut a, &mut rng, 0.1);
    let mask = Tensor::from_vec(vec![1u8, 1, 0, 1, 1, 1], &[2, 3]).unwrap();
    let skip = |n: &str| n == "ffn.1.weight" || n == "ffn.3.weight";
    let params = a.named_params();
    let mut inputs = vec![
        common::rand(&mut rng, &[2, 32, 3, 3], DType::F64),
        common::rand(&mut rng, &[2, 3, 8], DType::F64),
    ];
    inputs.extend(params.iter().filter(|(n, _)| !skip(n)).map(|(_, p)| p.value().clone()));
    let rep = gradcheck(
        |xs| {
            let mut it = xs[2..].iter();
            let vars: Vec<Var> = params
                .iter()
                .map(
                    |(n, p)| {
                        if skip(n) { Var::constant(p.value().clone()) } else { it.next().unwrap().clone() }
                    },
                )
                .collect();
            with_params(&a, &vars).forward(&xs[0], Some(&xs[1]), Some(&mask)).map_err(to_nn)
        },
        &inputs,
        GradcheckOptions::default(),
    )
    .unwrap();
    assert_eq!(rep.checked, inputs.iter().map(|t| t.numel()).sum::<usize>());
    assert!(rep.checked > 5_000);
}

fn to_ag(e: mdm::Error) -> autograd::Error {
    autograd::Error::Gradcheck(e.to_string())
}
fn to_nn(e: nn::Error) -> autograd::Error {
    match e {
        nn::Error::Autograd(a) => a,
        other => autograd::Error::Gradcheck(other.to_string()),
    }
}

const TINY: &str = r#"
conditioning_feature_dim = 8
[unet]
resolution_channels = [32, 32]
num_resnets_per_resolution = [1, 1]
temporal_dim = 32
micro_conditioning = [{ key = "scale", default = 8.0 }]
[unet.inner]
resolution_channels = [32]
num_resnets_per_resolution = [1]
attention_levels = [0]
num_attention_layers = [1]
temporal_dim = 32
use_attention_ffn = true
conditioning_feature_proj_dim = 8
masked_cross_attention = true
micro_conditioning = [{ key = "scale", default = 4.0 }]
"#;

#[test]
fn tiny_nested_unet_sampled_gradients() {
    // outer 8² level (input std-normalised) around a one-level 4² UNet with self+cross attention
    let cfg = ModelConfig::from_toml_str(TINY, "tiny").unwrap();
    let mut m = Mdm::with_init(&cfg, &mut Init::with_dtype(5, DType::F64)).unwrap();
    let mut rng = TestRng::new(6);
    common::perturb(&mut m, &mut rng, 0.1);
    let images = [
        Var::constant(common::rand(&mut rng, &[2, 3, 8, 8], DType::F64)),
        Var::constant(common::rand(&mut rng, &[2, 3, 4, 4], DType::F64)),
    ];
    let t = Tensor::from_vec(vec![3.0f64, 40.0], &[2]).unwrap();
    let mask = Tensor::from_vec(vec![1u8, 1, 0, 1, 1, 1], &[2, 3]).unwrap();
    let text = Var::constant(common::rand(&mut rng, &[2, 3, 8], DType::F64));
    let r: Vec<Tensor> = [&[2usize, 3, 8, 8][..], &[2, 3, 4, 4]]
        .iter()
        .map(|s| common::rand(&mut rng, s, DType::F64))
        .collect();
    // L = Σ_k Σ r_k ∘ pred_k
    let loss = |m: &Mdm| -> Var {
        let out = m
            .forward(
                &images,
                &t,
                Some(Conditioning::Text { tokens: &text, mask: Some(&mask) }),
                &Micros::new(),
            )
            .unwrap();
        let terms: Vec<Var> = out
            .iter()
            .zip(&r)
            .map(|(o, rk)| o.mul(&Var::constant(rk.clone())).unwrap().sum_all().unwrap())
            .collect();
        terms[0].add(&terms[1]).unwrap()
    };
    loss(&m).backward().unwrap();
    let names: Vec<String> = m.named_params().into_iter().map(|(n, _)| n).collect();
    let (mut analytic, mut numeric) = (vec![], vec![]);
    let eps = 1e-6;
    for (k, name) in names.iter().enumerate() {
        let p = m.named_params()[k].1.clone();
        let n = p.numel();
        let j = (rng.next_u64() as usize) % n;
        analytic.push(p.grad().map_or(0.0, |g| g.to_vec_f64()[j]));
        let base = p.value().clone();
        let eval = |m: &mut Mdm, d: f64| -> f64 {
            let mut v = base.to_vec_f64();
            v[j] += d;
            m.visit_mut("", &mut |nm, q| {
                if nm == name {
                    q.set_value(Tensor::from_vec(v.clone(), base.shape()).unwrap()).unwrap();
                }
            });
            autograd::no_grad(|| loss(m)).value().item().unwrap()
        };
        let (lp, lm) = (eval(&mut m, eps), eval(&mut m, -eps));
        eval(&mut m, 0.0);
        numeric.push((lp - lm) / (2.0 * eps));
    }
    assert_eq!(names.len(), analytic.len());
    // same bounds as autograd::gradcheck's default (f64 central differences, ε = 1e-6:
    // truncation ~1e-12, rounding ~1e-10·|L|): abs 1e-6 + rel 1e-5
    assert_close("sampled parameter gradients", &analytic, &numeric, Tolerance::new(1e-5, 1e-6));
    // the check has teeth: most sampled gradients are clearly non-zero
    assert!(analytic.iter().filter(|g| g.abs() > 1e-4).count() * 2 > analytic.len());
}
