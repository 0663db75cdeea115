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

/// The fused epilogues (`Var::group_norm_silu`) against the composed GN → ·(1 + a) + b → SiLU chain
/// the block used before, in f32, for a block with a 1×1 skip conv (in ≠ out): the output and the
/// gradients of the input, the time embedding and every parameter. Tolerance `Tolerance::F32`
/// widened for a 3×3 conv's reductions (the two paths round the normalised activation differently:
/// folded per-channel factors versus normalise-then-modulate, about 1 ulp of f32 each).
#[test]
fn resnet_fused_epilogue_equals_the_composed_path_in_f32() {
    let mut r = ResNet::new(&mut Init::with_dtype(5, DType::F32), 8, 16, 4, 12, 0.0, 0).unwrap();
    let mut rng = TestRng::new(6);
    common::perturb(&mut r, &mut rng, 0.3);
    let x0 = common::rand(&mut rng, &[2, 8, 5, 4], DType::F32);
    let t0 = common::rand(&mut rng, &[2, 12], DType::F32);
    let run = |composed: bool| {
        let (x, t) = (Var::leaf(x0.clone()), Var::leaf(t0.clone()));
        let y = if composed { r.forward_composed(&x, &t) } else { r.forward(&x, &t) }.unwrap();
        let mut wrt = vec![x.clone(), t.clone()];
        nn::Module::visit(&r, "", &mut |_, p| wrt.push(p.var().clone()));
        let refs: Vec<&Var> = wrt.iter().collect();
        let seed = Tensor::randn(y.shape(), 0.0, 1.0, 9, 0, DType::F32).unwrap();
        let g = autograd::grad(&y, Some(&seed), &refs, false).unwrap();
        (y.value().to_vec_f64(), g.into_iter().map(|g| g.unwrap().to_vec_f64()).collect::<Vec<_>>())
    };
    let (yf, gf) = run(false);
    let (yc, gc) = run(true);
    let tol = Tolerance::F32.for_reduction(8 * 9);
    assert_close("resnet fused vs composed", &yf, &yc, tol);
    assert_eq!(gf.len(), gc.len());
    for (i, (a, b)) in gf.iter().zip(&gc).enumerate() {
        assert_close(&format!("resnet grad {i}"), a, b, Tolerance::F32.for_reduction(2 * 16 * 20));
    }
}
