//! Block forwards against independent references: the attention block with explicit per-head
//! loops (q and k each pre-scaled by (C/8)^(-1/4) as in ml-mdm, −∞ on masked keys), the ResNet's
//! scale/shift order, and the sinusoidal time features.

mod common;

use autograd::Var;
use kernels::testing::{TestRng, Tolerance, assert_close};
use mdm::model::embedding::sinusoidal_features;
use mdm::model::resnet::ResNet;
use nn::{Init, SelfAttention};
use tensor::{Conv2dOptions, DType, Tensor};

fn v(t: &Tensor) -> Vec<f64> {
    t.to_vec_f64()
}

#[test]
fn attention_block_matches_per_head_reference() {
    let (b, c, h, w, l, dc) = (2, 32, 3, 2, 4, 8);
    let t = h * w;
    let mut a = SelfAttention::new(&mut Init::with_dtype(1, DType::F64), c, dc, true).unwrap();
    let mut rng = TestRng::new(2);
    common::perturb(&mut a, &mut rng, 0.2);
    let x = common::rand(&mut rng, &[b, c, h, w], DType::F64);
    let cond = common::rand(&mut rng, &[b, l, dc], DType::F64);
    let mask = Tensor::from_vec(vec![1u8, 0, 1, 0, 1, 1, 1, 1], &[b, l]).unwrap();
    let got = a.forward(&Var::constant(x.clone()), Some(&Var::constant(cond.clone())), Some(&mask)).unwrap();

    // reference with plain tensor ops + explicit loops
    let pw = |w: &nn::Conv2d, x: &Tensor| {
        x.conv2d(w.weight.value(), w.bias.as_ref().map(|b| b.value()), &Conv2dOptions::default()).unwrap()
    };
    let n = x.group_norm(32, Some(a.norm.weight.value()), Some(a.norm.bias.value()), 1e-5).unwrap().y;
    let qkv = v(&pw(&a.qkv, &n)); // [b, 3c, t]
    let ln = a.norm_cond.as_ref().unwrap();
    let cn = cond.layer_norm(Some(ln.weight.value()), Some(ln.bias.value()), 1e-5).unwrap().y;
    let kvl = a.kv_cond.as_ref().unwrap();
    let kv = v(&cn
        .matmul(&kvl.weight.value().t().unwrap())
        .unwrap()
        .add(kvl.bias.as_ref().unwrap().value())
        .unwrap()); // [b, l, 2c]
    let m = v(&mask);
    let heads = 8;
    let hd = c / heads;
    let s = (hd as f64).powf(-0.25);
    let mut att = vec![0.0; b * c * t];
    for bi in 0..b {
        for hh in 0..heads {
            for ti in 0..t {
                let q = |ch: usize| qkv[(bi * 3 * c + hh * hd + ch) * t + ti] * s;
                // self-attention
                let sk = |si: usize, ch: usize| qkv[(bi * 3 * c + c + hh * hd + ch) * t + si] * s;
                let sv = |si: usize, ch: usize| qkv[(bi * 3 * c + 2 * c + hh * hd + ch) * t + si];
                let sc: Vec<f64> = (0..t).map(|si| (0..hd).map(|ch| q(ch) * sk(si, ch)).sum()).collect();
                let mx = sc.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = sc.iter().map(|z| (z - mx).exp()).collect();
                let z: f64 = e.iter().sum();
                // cross-attention on the unmasked tokens
                let ck = |li: usize, ch: usize| kv[(bi * l + li) * 2 * c + hh * hd + ch] * s;
                let cv = |li: usize, ch: usize| kv[(bi * l + li) * 2 * c + c + hh * hd + ch];
                let cs: Vec<f64> = (0..l)
                    .map(|li| {
                        if m[bi * l + li] == 0.0 {
                            f64::NEG_INFINITY
                        } else {
                            (0..hd).map(|ch| q(ch) * ck(li, ch)).sum()
                        }
                    })
                    .collect();
                let cmx = cs.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let ce: Vec<f64> = cs.iter().map(|z| (z - cmx).exp()).collect();
                let cz: f64 = ce.iter().sum();
                for ch in 0..hd {
                    let sa: f64 = (0..t).map(|si| e[si] / z * sv(si, ch)).sum();
                    let ca: f64 = (0..l).map(|li| ce[li] / cz * cv(li, ch)).sum();
                    att[(bi * c + hh * hd + ch) * t + ti] = sa + ca;
                }
            }
        }
    }
    let att = Tensor::from_vec(att, &[b, c, h, w]).unwrap();
    let out = x.add(&pw(&a.proj_out, &att)).unwrap();
    let f = a.ffn.as_ref().unwrap();
    let fnorm = out.group_norm(32, Some(f.norm.weight.value()), Some(f.norm.bias.value()), 1e-5).unwrap().y;
    let expect = out.add(&pw(&f.fc2, &pw(&f.fc1, &fnorm).gelu().unwrap())).unwrap();
    // f64 both ways, different summation order and the equivalent 1/√d scaling: F64 tolerance
    assert_close("attention block", &v(got.value()), &v(&expect), Tolerance::F64.for_reduction(c * t));
}

#[test]
fn resnet_applies_scale_then_shift_from_time_layer_halves() {
    let mut r = ResNet::new(&mut Init::with_dtype(3, DType::F64), 8, 8, 4, 16, 0.0, 0).unwrap();
    let mut rng = TestRng::new(4);
    common::perturb(&mut r, &mut rng, 0.2);
    let x = common::rand(&mut rng, &[2, 8, 3, 3], DType::F64);
    let temb = common::rand(&mut rng, &[2, 16], DType::F64);
    let got = r.forward(&Var::constant(x.clone()), &Var::constant(temb.clone())).unwrap();
    let same = Conv2dOptions { padding: [1, 1], ..Default::default() };
    let gn = |g: &nn::GroupNorm, x: &Tensor| {
        x.group_norm(4, Some(g.weight.value()), Some(g.bias.value()), 1e-5).unwrap().y
    };
    let h = gn(&r.norm1, &x)
        .silu()
        .unwrap()
        .conv2d(r.conv1.weight.value(), r.conv1.bias.as_ref().map(|b| b.value()), &same)
        .unwrap();
    let tl = temb.silu().unwrap().matmul(&r.time_layer.weight.value().t().unwrap()).unwrap();
    let tl = tl.add(r.time_layer.bias.as_ref().unwrap().value()).unwrap();
    let scale = tl.narrow(1, 0, 8).unwrap().reshape(&[2, 8, 1, 1]).unwrap();
    let shift = tl.narrow(1, 8, 8).unwrap().reshape(&[2, 8, 1, 1]).unwrap();
    let h =
        gn(&r.norm2, &h).mul(&scale.add_scalar(1.0).unwrap()).unwrap().add(&shift).unwrap().silu().unwrap();
    let h = h.conv2d(r.conv2.weight.value(), r.conv2.bias.as_ref().map(|b| b.value()), &same).unwrap();
    let expect = x.add(&h).unwrap();
    assert_close("resnet", &v(got.value()), &v(&expect), Tolerance::F64);
}

#[test]
fn sinusoidal_features_sin_block_first() {
    // D_t = 32: half = 4 frequencies f_i = 10000^(-i/4)
    let t = Tensor::from_vec(vec![0.0f64, 7.0], &[2]).unwrap();
    let e = sinusoidal_features(&t, 32, DType::F64).unwrap();
    assert_eq!(e.shape(), [2, 8]);
    let mut expect = vec![];
    for tv in [0.0f64, 7.0] {
        let f: Vec<f64> = (0..4).map(|i| 10000f64.powf(-(i as f64) / 4.0)).collect();
        expect.extend(f.iter().map(|f| (tv * f).sin()));
        expect.extend(f.iter().map(|f| (tv * f).cos()));
    }
    assert_close("sinusoid", &v(e.value()), &expect, Tolerance::new(1e-12, 1e-14));
}
