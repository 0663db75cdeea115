//! Layers: dotted names, PyTorch default init, forward against naive loops, gradients against
//! finite differences, freezing, dropout, configuration errors.

use autograd::{GradcheckOptions, Var, gradcheck};
use kernels::testing::{TestRng, Tolerance, assert_close};
use nn::{
    Conv2d, Downsample, Dropout, Embedding, GroupNorm, Init, LayerNorm, Linear, Module, Param, Upsample,
};
use tensor::{Conv2dOptions, DType, Tensor};

struct Block {
    norm1: GroupNorm,
    conv1: Conv2d,
    lin: Linear,
    ln: LayerNorm,
    emb: Embedding,
    drop: Dropout,
    down: Downsample,
    up: Upsample,
}
nn::impl_module!(Block { params: [], children: [norm1, conv1, lin, ln, emb, drop, down, up] });

struct Net {
    scale: Param,
    block: Block,
    heads: Vec<Linear>,
    extra: Option<Linear>,
}
nn::impl_module!(Net { params: [scale], children: [block, heads], optional: [extra] });

fn net(init: &mut Init) -> Net {
    Net {
        scale: Param::new(init.ones(&[1])),
        block: Block {
            norm1: GroupNorm::new(init, 2, 4).unwrap(),
            conv1: Conv2d::same3x3(init, 4, 8),
            lin: Linear::new(init, 8, 3, false),
            ln: LayerNorm::new(init, 3),
            emb: Embedding::new(init, 10, 3).unwrap(),
            drop: Dropout::new(0.1, 0).unwrap(),
            down: Downsample::new(init, 8),
            up: Upsample::new(init, 8),
        },
        heads: vec![Linear::new(init, 3, 2, true), Linear::zeros(init, 2, 1, true)],
        extra: None,
    }
}

#[test]
fn dotted_names_and_shapes() {
    let mut n = net(&mut Init::new(0));
    let got: Vec<(String, Vec<usize>)> =
        n.named_params().into_iter().map(|(k, p)| (k, p.value().shape().to_vec())).collect();
    let expected: Vec<(&str, Vec<usize>)> = vec![
        ("scale", vec![1]),
        ("block.norm1.weight", vec![4]),
        ("block.norm1.bias", vec![4]),
        ("block.conv1.weight", vec![8, 4, 3, 3]),
        ("block.conv1.bias", vec![8]),
        ("block.lin.weight", vec![3, 8]),
        ("block.ln.weight", vec![3]),
        ("block.ln.bias", vec![3]),
        ("block.emb.weight", vec![10, 3]),
        ("block.down.weight", vec![8, 8, 3, 3]),
        ("block.down.bias", vec![8]),
        ("block.up.weight", vec![8, 8, 3, 3]),
        ("block.up.bias", vec![8]),
        ("heads.0.weight", vec![2, 3]),
        ("heads.0.bias", vec![2]),
        ("heads.1.weight", vec![1, 2]),
        ("heads.1.bias", vec![1]),
    ];
    let expected: Vec<(String, Vec<usize>)> = expected.into_iter().map(|(k, s)| (k.to_string(), s)).collect();
    assert_eq!(got, expected);
    let total: usize = expected.iter().map(|(_, s)| s.iter().product::<usize>()).sum();
    assert_eq!(n.num_params(), total);

    n.extra = Some(Linear::new(&mut Init::new(1), 2, 2, false));
    assert_eq!(n.named_params().last().unwrap().0, "extra.weight");
    n.set_training(false);
    assert!(!n.block.drop.training, "set_training did not reach the dropout");
}

/// Every value within ±bound, and mean / mean square those of U(−bound, bound) within 5σ of the
/// sample statistics (σ_mean = bound/√(3n), σ_meansq = bound²·√(4/(45n))).
fn check_uniform(what: &str, t: &Tensor, bound: f64) {
    let v = t.to_vec_f64();
    let n = v.len() as f64;
    let max = v.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    assert!(max <= bound * (1.0 + 1e-6), "{what}: |x| = {max} > bound {bound}");
    let mean = v.iter().sum::<f64>() / n;
    let mean_sq = v.iter().map(|x| x * x).sum::<f64>() / n;
    assert!(mean.abs() < 5.0 * bound / (3.0 * n).sqrt(), "{what}: mean {mean} (bound {bound}, n {n})");
    let sigma_sq = bound * bound * (4.0 / (45.0 * n)).sqrt();
    assert!(
        (mean_sq - bound * bound / 3.0).abs() < 5.0 * sigma_sq,
        "{what}: mean square {mean_sq} vs {} (n {n})",
        bound * bound / 3.0
    );
}

#[test]
fn pytorch_default_init_bounds_and_uniformity() {
    let mut init = Init::new(123);
    let lin = Linear::new(&mut init, 256, 128, true);
    check_uniform("Linear.weight", lin.weight.value(), 1.0 / 16.0);
    check_uniform("Linear.bias", lin.bias.as_ref().unwrap().value(), 1.0 / 16.0);

    let conv = Conv2d::new(&mut init, 16, 32, 3, Conv2dOptions::default(), true);
    let b = 1.0 / 144f64.sqrt(); // fan_in = 16·3·3
    check_uniform("Conv2d.weight", conv.weight.value(), b);
    check_uniform("Conv2d.bias", conv.bias.as_ref().unwrap().value(), b);
    let grouped = Conv2d::new(&mut init, 16, 32, 3, Conv2dOptions { groups: 4, ..Default::default() }, false);
    assert_eq!(grouped.weight.value().shape(), [32, 4, 3, 3]);
    check_uniform("grouped Conv2d.weight", grouped.weight.value(), 1.0 / 36f64.sqrt());
    let down = Downsample::new(&mut init, 16);
    check_uniform("Downsample.weight", down.conv.weight.value(), b);
    let up = Upsample::new(&mut init, 16);
    check_uniform("Upsample.weight", up.conv.weight.value(), b);
    // Consecutive draws are distinct streams.
    assert_ne!(down.conv.weight.value().to_vec_f64(), up.conv.weight.value().to_vec_f64());

    // Embedding: N(0, 1); mean within 5/√n, variance within 5·√(2/n).
    let emb = Embedding::new(&mut init, 100, 16).unwrap();
    let v = emb.weight.value().to_vec_f64();
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    assert!(mean.abs() < 5.0 / n.sqrt() && (var - 1.0).abs() < 5.0 * (2.0 / n).sqrt(), "{mean} {var}");

    let gn = GroupNorm::new(&mut init, 4, 8).unwrap();
    let ln = LayerNorm::new(&mut init, 8);
    for (w, b) in [(&gn.weight, &gn.bias), (&ln.weight, &ln.bias)] {
        assert_eq!(w.value().to_vec_f64(), vec![1.0; 8]);
        assert_eq!(b.value().to_vec_f64(), vec![0.0; 8]);
    }

    // Same seed → same model, bit for bit.
    let again = Linear::new(&mut Init::new(123), 256, 128, true);
    assert_eq!(again.weight.value().to_vec_f64(), lin.weight.value().to_vec_f64());
}

#[test]
fn zero_init_variants_are_zero() {
    let mut init = Init::new(5);
    let lin = Linear::zeros(&mut init, 7, 3, true);
    let conv = Conv2d::zeros(&mut init, 4, 6, 3, Conv2dOptions::default(), true);
    for (name, p) in lin.named_params().into_iter().chain(conv.named_params()) {
        assert!(p.value().to_vec_f64().iter().all(|&x| x == 0.0), "{name} is not zero");
    }
    assert_eq!(conv.weight.value().shape(), [6, 4, 3, 3]);
}

fn randn_like(rng: &mut TestRng, shape: &[usize], dtype: DType) -> Tensor {
    let n = shape.iter().product();
    Tensor::from_vec(rng.vec_f64(n), shape).unwrap().to_dtype(dtype).unwrap()
}

/// Naive convolution in f64 (PyTorch semantics, square kernel).
fn naive_conv(x: &Tensor, w: &Tensor, b: Option<&Tensor>, o: &Conv2dOptions) -> (Vec<f64>, Vec<usize>) {
    let (xs, ws) = (x.shape(), w.shape());
    let (n, c, h, wd) = (xs[0], xs[1], xs[2], xs[3]);
    let (co, cg, k) = (ws[0], ws[1], ws[2]);
    let (s, p, d, g) = (o.stride[0], o.padding[0], o.dilation[0], o.groups);
    let oh = (h + 2 * p - d * (k - 1) - 1) / s + 1;
    let ow = (wd + 2 * p - d * (k - 1) - 1) / s + 1;
    let (xv, wv) = (x.to_vec_f64(), w.to_vec_f64());
    let bv = b.map(|b| b.to_vec_f64());
    let mut out = vec![0.0; n * co * oh * ow];
    for ni in 0..n {
        for oc in 0..co {
            let grp = oc / (co / g);
            for i in 0..oh {
                for j in 0..ow {
                    let mut acc = bv.as_ref().map_or(0.0, |b| b[oc]);
                    for ci in 0..cg {
                        let cin = grp * cg + ci;
                        for ki in 0..k {
                            for kj in 0..k {
                                let (y, xx) = (
                                    (i * s + ki * d) as isize - p as isize,
                                    (j * s + kj * d) as isize - p as isize,
                                );
                                if y < 0 || xx < 0 || y >= h as isize || xx >= wd as isize {
                                    continue;
                                }
                                acc += wv[((oc * cg + ci) * k + ki) * k + kj]
                                    * xv[((ni * c + cin) * h + y as usize) * wd + xx as usize];
                            }
                        }
                    }
                    out[((ni * co + oc) * oh + i) * ow + j] = acc;
                }
            }
        }
    }
    (out, vec![n, co, oh, ow])
}

#[test]
fn linear_and_conv_forward_match_naive_loops() {
    let mut rng = TestRng::new(3);
    let mut init = Init::new(9);
    // f32 sums of ≤ 36 products of O(1) values: relative error ≲ 36·6e-8.
    let tol = Tolerance::new(1e-5, 1e-5);

    let lin = Linear::new(&mut init, 5, 4, true);
    let x = randn_like(&mut rng, &[2, 3, 5], DType::F32);
    let y = lin.forward(&Var::constant(x.clone())).unwrap();
    assert_eq!(y.shape(), [2, 3, 4]);
    let (xv, wv, bv) =
        (x.to_vec_f64(), lin.weight.value().to_vec_f64(), lin.bias.as_ref().unwrap().value().to_vec_f64());
    let expected: Vec<f64> = (0..6)
        .flat_map(|r| {
            let (xv, wv, bv) = (&xv, &wv, &bv);
            (0..4).map(move |o| bv[o] + (0..5).map(|i| xv[r * 5 + i] * wv[o * 5 + i]).sum::<f64>())
        })
        .collect();
    assert_close("Linear forward", &y.value().to_vec_f64(), &expected, tol);

    for opts in [
        Conv2dOptions { stride: [2, 2], padding: [1, 1], ..Default::default() },
        Conv2dOptions { padding: [2, 2], dilation: [2, 2], groups: 2, ..Default::default() },
    ] {
        let conv = Conv2d::new(&mut init, 4, 6, 3, opts, true);
        let x = randn_like(&mut rng, &[2, 4, 7, 6], DType::F32);
        let y = conv.forward(&Var::constant(x.clone())).unwrap();
        let (e, shape) = naive_conv(&x, conv.weight.value(), conv.bias.as_ref().map(|b| b.value()), &opts);
        assert_eq!(y.shape(), shape.as_slice(), "{opts:?}");
        assert_close(&format!("Conv2d forward {opts:?}"), &y.value().to_vec_f64(), &e, tol);
    }

    // Downsample halves; Upsample = nearest ×2 then a 3×3 same conv.
    let down = Downsample::new(&mut init, 3);
    assert_eq!(
        down.forward(&Var::constant(randn_like(&mut rng, &[1, 3, 8, 8], DType::F32))).unwrap().shape(),
        [1, 3, 4, 4]
    );
    let up = Upsample::new(&mut init, 3);
    let x = randn_like(&mut rng, &[1, 3, 3, 3], DType::F32);
    let y = up.forward(&Var::constant(x.clone())).unwrap();
    let xv = x.to_vec_f64();
    let rep: Vec<f32> =
        (0..3 * 36).map(|i| xv[(i / 36) * 9 + ((i % 36) / 6 / 2) * 3 + (i % 6) / 2] as f32).collect();
    let rep = Tensor::from_vec(rep, &[1, 3, 6, 6]).unwrap();
    let (e, shape) =
        naive_conv(&rep, up.conv.weight.value(), up.conv.bias.as_ref().map(|b| b.value()), &up.conv.opts);
    assert_eq!(y.shape(), shape.as_slice());
    assert_close("Upsample forward", &y.value().to_vec_f64(), &e, tol);
}

/// Gradients of a layer, end to end, in f64:
/// - the input gradient through the layer's own `forward`, via `autograd::gradcheck`;
/// - every parameter gradient (what the optimizer consumes: `Param::grad` after `backward`)
///   against central differences computed by perturbing the parameter with `Param::set_value`,
///   with the same projection, step and tolerance as `gradcheck` (ε 1e-6, abs 1e-6 + rel 1e-5).
fn check_layer_grads<M: Module>(what: &str, m: &mut M, x: Tensor, fwd: impl Fn(&M, &Var) -> nn::Result<Var>) {
    let opts = GradcheckOptions::default();
    gradcheck(
        |xs| fwd(m, &xs[0]).map_err(|e| autograd::Error::Gradcheck(e.to_string())),
        std::slice::from_ref(&x),
        opts,
    )
    .unwrap_or_else(|e| panic!("{what} input gradient: {e}"));

    let xc = Var::constant(x);
    let y = fwd(m, &xc).unwrap();
    let r = Tensor::from_vec(TestRng::new(opts.seed).vec_f64(y.value().numel()), y.shape()).unwrap();
    let objective = |m: &M| -> f64 {
        let y = autograd::no_grad(|| fwd(m, &xc)).unwrap();
        y.value().to_vec_f64().iter().zip(r.to_vec_f64()).map(|(a, b)| a * b).sum()
    };
    m.zero_grad();
    y.mul(&Var::constant(r.clone())).unwrap().sum_all().unwrap().backward().unwrap();
    let mut checked = 0;
    for (name, p) in m.named_params() {
        let analytic = p.grad().unwrap_or_else(|| panic!("{what}: `{name}` got no gradient")).to_vec_f64();
        let base = p.value().to_vec_f64();
        let mut numeric = vec![0.0; base.len()];
        for j in 0..base.len() {
            let mut at = |delta: f64| {
                let mut v = base.clone();
                v[j] += delta;
                set_param(m, &name, Tensor::from_vec(v, p.value().shape()).unwrap());
                objective(m)
            };
            numeric[j] = (at(opts.eps) - at(-opts.eps)) / (2.0 * opts.eps);
            checked += 1;
        }
        set_param(m, &name, p.value().clone());
        assert_close(&format!("{what} d/d{name}"), &analytic, &numeric, Tolerance::new(opts.rtol, opts.atol));
    }
    assert!(checked > 0);
}

fn set_param<M: Module>(m: &mut M, name: &str, t: Tensor) {
    let mut t = Some(t);
    m.visit_mut("", &mut |n, p| {
        if n == name {
            p.set_value(t.take().unwrap()).unwrap();
        }
    });
    assert!(t.is_none(), "no parameter {name}");
}

#[test]
fn gradcheck_linear_conv_groupnorm_layernorm_f64() {
    let mut init = Init::with_dtype(17, DType::F64);
    let mut rng = TestRng::new(4);
    let mut lin = Linear::new(&mut init, 3, 2, true);
    check_layer_grads("Linear", &mut lin, randn_like(&mut rng, &[4, 3], DType::F64), |m, x| m.forward(x));

    let opts = Conv2dOptions { stride: [2, 2], padding: [1, 1], ..Default::default() };
    let mut conv = Conv2d::new(&mut init, 2, 3, 3, opts, true);
    check_layer_grads("Conv2d", &mut conv, randn_like(&mut rng, &[1, 2, 5, 5], DType::F64), |m, x| {
        m.forward(x)
    });

    // Norms with non-trivial affine parameters, so the input gradient goes through γ.
    let mut gn = GroupNorm::new(&mut init, 2, 4).unwrap();
    gn.weight.set_value(randn_like(&mut rng, &[4], DType::F64).add_scalar(1.5).unwrap()).unwrap();
    gn.bias.set_value(randn_like(&mut rng, &[4], DType::F64)).unwrap();
    check_layer_grads("GroupNorm", &mut gn, randn_like(&mut rng, &[2, 4, 3, 3], DType::F64), |m, x| {
        m.forward(x)
    });

    let mut ln = LayerNorm::new(&mut init, 5);
    ln.weight.set_value(randn_like(&mut rng, &[5], DType::F64).add_scalar(1.5).unwrap()).unwrap();
    ln.bias.set_value(randn_like(&mut rng, &[5], DType::F64)).unwrap();
    check_layer_grads("LayerNorm", &mut ln, randn_like(&mut rng, &[3, 5], DType::F64), |m, x| m.forward(x));
}

#[test]
fn frozen_params_get_no_gradient_until_unfrozen() {
    let mut lin = Linear::new(&mut Init::new(2), 3, 2, true);
    let x = Var::constant(Tensor::ones(&[4, 3], DType::F32));
    lin.weight.freeze();
    assert!(lin.weight.is_frozen());
    lin.forward(&x).unwrap().sum_all().unwrap().backward().unwrap();
    assert!(lin.weight.grad().is_none());
    // d Σy / d bias = number of rows.
    assert_eq!(lin.bias.as_ref().unwrap().grad().unwrap().to_vec_f64(), vec![4.0, 4.0]);

    lin.zero_grad();
    lin.weight.unfreeze();
    lin.forward(&x).unwrap().sum_all().unwrap().backward().unwrap();
    assert_eq!(lin.weight.grad().unwrap().to_vec_f64(), vec![4.0; 6]);

    lin.zero_grad();
    lin.freeze();
    let y = lin.forward(&x).unwrap();
    assert!(!y.requires_grad(), "a fully frozen layer still records a graph");
    let w = lin.weight.value().to_vec_f64();
    lin.unfreeze();
    assert_eq!(lin.weight.value().to_vec_f64(), w, "freeze/unfreeze changed the value");
}

#[test]
fn dropout_train_vs_eval() {
    let p = 0.3;
    let mut d = Dropout::new(p, 77).unwrap();
    let n = 20_000;
    let x = Var::constant(Tensor::ones(&[n], DType::F32));
    let y1 = d.forward(&x).unwrap().value().to_vec_f64();
    let zeros = y1.iter().filter(|&&v| v == 0.0).count() as f64;
    // fraction dropped within 5σ, σ = √(p(1−p)/n) ≈ 3.2e-3
    let frac = zeros / n as f64;
    assert!((frac - p).abs() < 5.0 * (p * (1.0 - p) / n as f64).sqrt(), "dropped {frac}");
    let kept = 1.0 / (1.0 - p);
    let kept_vals: Vec<f64> = y1.iter().copied().filter(|&v| v != 0.0).collect();
    assert_close("kept scale", &kept_vals, &vec![kept; kept_vals.len()], Tolerance::new(1e-6, 0.0));
    let y2 = d.forward(&x).unwrap().value().to_vec_f64();
    assert_ne!(y1, y2, "two calls drew the same mask");

    d.set_training(false);
    let xr = Var::constant(randn_like(&mut TestRng::new(1), &[4, 5], DType::F32));
    assert_eq!(d.forward(&xr).unwrap().value().to_vec_f64(), xr.value().to_vec_f64());
    for bad in [1.0, -0.1, f64::NAN] {
        assert!(matches!(Dropout::new(bad, 0), Err(nn::Error::Config(_))), "p = {bad} accepted");
    }
}

#[test]
fn groupnorm_rejects_indivisible_channels() {
    let e = GroupNorm::new(&mut Init::new(0), 4, 10).unwrap_err();
    assert!(matches!(e, nn::Error::Config(_)), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains("10") && msg.contains('4'), "{msg}");
    assert!(GroupNorm::new(&mut Init::new(0), 0, 8).is_err());
}

#[test]
fn to_device_moves_every_parameter_or_names_the_one_it_could_not_move() {
    let mut m = net(&mut Init::new(5));
    let before: Vec<(String, Vec<f64>)> =
        m.named_params().into_iter().map(|(n, p)| (n, p.value().to_vec_f64())).collect();
    m.to_device(tensor::Device::Cpu).unwrap();
    let after: Vec<(String, Vec<f64>)> =
        m.named_params().into_iter().map(|(n, p)| (n, p.value().to_vec_f64())).collect();
    assert_eq!(before, after);
    // A GPU that cannot be opened (no `cuda` feature here, or no device) is a typed error naming
    // the first parameter; with a GPU the move succeeds.
    match m.to_device(tensor::Device::Cuda(7)) {
        Err(nn::Error::Param { name, .. }) => assert_eq!(name, before[0].0),
        Err(e) => panic!("expected a parameter error, got {e}"),
        Ok(()) => assert!(m.named_params().iter().all(|(_, p)| !p.value().device().is_cpu())),
    }
}
