//! Optimizers, schedules, clipping and EMA against hand-written f64 references of PyTorch's
//! algorithms.
//!
//! Tolerance for f32 optimizer steps vs the f64 reference: relative 1e-6 (+ abs 1e-8 for elements
//! near zero). Each step rounds the parameter a few times (decay multiply, subtraction) at ≈ 6e-8
//! relative each, and the update itself (≈ lr·O(1)) carries a few ulps of relative error from the
//! moment arithmetic, so after ≤ 5 steps the f32 result stays within ≈ 5e-7 of the exact value; a
//! wrong rule (missing bias correction, coupled instead of decoupled decay, eps inside the root)
//! moves the parameters by ≥ 1e-5 with the settings used here.

use autograd::{Reduction, Var};
use kernels::testing::{TestRng, Tolerance, assert_close};
use nn::optim::{AdamW, AdamWConfig, Ema, LrSchedule, Optimizer, Sgd, SgdConfig, clip_grad_norm, grad_norm};
use nn::{Init, Linear, Module, Param};
use tensor::{DType, Tensor};

/// `assert_close` on f64 slices (array literals included).
#[track_caller]
fn close(what: &str, actual: &[f64], expected: &[f64], tol: Tolerance) {
    assert_close(what, actual, expected, tol);
}

const STEP_TOL: Tolerance = Tolerance::new(1e-6, 1e-8);

/// Two loose parameters, named `a` and `b`.
struct Two {
    a: Param,
    b: Param,
}
nn::impl_module!(Two { params: [a, b], children: [] });

fn f32_values(rng: &mut TestRng, n: usize, scale: f64) -> Vec<f32> {
    (0..n).map(|_| (rng.uniform() * scale) as f32).collect()
}

fn tensor(v: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_vec(v.to_vec(), shape).unwrap()
}

fn two(rng: &mut TestRng) -> Two {
    Two {
        a: Param::new(tensor(&f32_values(rng, 12, 1.0), &[3, 4])),
        b: Param::new(tensor(&f32_values(rng, 5, 1.0), &[5])),
    }
}

fn to_f64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

/// PyTorch's AdamW for one element sequence, in f64.
struct AdamRef {
    p: Vec<f64>,
    m: Vec<f64>,
    v: Vec<f64>,
    t: i32,
}

impl AdamRef {
    fn new(p: Vec<f64>) -> Self {
        let n = p.len();
        Self { p, m: vec![0.0; n], v: vec![0.0; n], t: 0 }
    }
    fn step(&mut self, g: &[f64], c: &AdamWConfig) {
        self.t += 1;
        let (b1, b2) = c.betas;
        for (((p, m), v), &g) in self.p.iter_mut().zip(&mut self.m).zip(&mut self.v).zip(g) {
            *p -= c.lr * c.weight_decay * *p;
            *m = b1 * *m + (1.0 - b1) * g;
            *v = b2 * *v + (1.0 - b2) * g * g;
            let m_hat = *m / (1.0 - b1.powi(self.t));
            let v_hat = *v / (1.0 - b2.powi(self.t));
            *p -= c.lr * m_hat / (v_hat.sqrt() + c.eps);
        }
    }
}

/// Runs 5 AdamW steps on `Two` (b gets a gradient only on steps 1, 3, 5) against the reference.
fn check_adamw(cfg: AdamWConfig, grad_scale: f64) {
    let mut rng = TestRng::new(7);
    let mut model = two(&mut rng);
    let mut ra = AdamRef::new(model.a.value().to_vec_f64());
    let mut rb = AdamRef::new(model.b.value().to_vec_f64());
    let mut opt = AdamW::new(cfg).unwrap();
    for step in 1..=5 {
        let ga = f32_values(&mut rng, 12, grad_scale);
        let gb = f32_values(&mut rng, 5, grad_scale);
        model.a.var().set_grad(Some(tensor(&ga, &[3, 4])));
        ra.step(&to_f64(&ga), &cfg);
        if step % 2 == 1 {
            model.b.var().set_grad(Some(tensor(&gb, &[5])));
            rb.step(&to_f64(&gb), &cfg);
        } else {
            model.b.zero_grad();
        }
        opt.step(&mut model).unwrap();
        close(&format!("AdamW a after step {step}"), &model.a.value().to_vec_f64(), &ra.p, STEP_TOL);
        close(&format!("AdamW b after step {step}"), &model.b.value().to_vec_f64(), &rb.p, STEP_TOL);
    }
    assert_eq!((opt.step_count("a"), opt.step_count("b")), (5, 3));
    let st = opt.state();
    close("exp_avg.a", &st.tensor("exp_avg.a").unwrap().to_vec_f64(), &ra.m, STEP_TOL);
    close("exp_avg_sq.b", &st.tensor("exp_avg_sq.b").unwrap().to_vec_f64(), &rb.v, STEP_TOL);
    assert_eq!(st.scalar("step.b"), Some(3.0));
}

#[test]
fn adamw_matches_f64_reference_with_weight_decay() {
    // lr·wd = 5e-3 makes decoupled vs coupled decay and decay order visible far above 1e-6.
    check_adamw(AdamWConfig { lr: 0.05, betas: (0.9, 0.999), eps: 1e-8, weight_decay: 0.1 }, 1.0);
}

#[test]
fn adamw_matches_f64_reference_where_eps_matters() {
    // Gradients ≈ 1e-3 with eps 1e-3: √v̂ + eps vs √(v̂ + eps) differ by O(1) in the update.
    check_adamw(AdamWConfig { lr: 0.01, betas: (0.8, 0.99), eps: 1e-3, weight_decay: 0.0 }, 1e-3);
}

#[test]
fn adamw_defaults_are_pytorchs() {
    let c = AdamWConfig::default();
    assert_eq!((c.lr, c.betas, c.eps, c.weight_decay), (1e-3, (0.9, 0.999), 1e-8, 1e-2));
    for bad in [
        AdamWConfig { lr: -1.0, ..c },
        AdamWConfig { betas: (1.0, 0.999), ..c },
        AdamWConfig { eps: f64::NAN, ..c },
        AdamWConfig { weight_decay: -0.1, ..c },
    ] {
        assert!(matches!(AdamW::new(bad), Err(nn::Error::Config(_))), "{bad:?} accepted");
    }
}

/// PyTorch's SGD in f64.
fn sgd_ref(p: &mut [f64], buf: &mut Option<Vec<f64>>, g: &[f64], c: &SgdConfig) {
    let d: Vec<f64> = g.iter().zip(p.iter()).map(|(g, p)| g + c.weight_decay * p).collect();
    let b = match buf.take() {
        None => d.clone(),
        Some(b) => b.iter().zip(&d).map(|(b, d)| c.momentum * b + (1.0 - c.dampening) * d).collect(),
    };
    for i in 0..p.len() {
        let step = if c.nesterov { d[i] + c.momentum * b[i] } else { b[i] };
        p[i] -= c.lr * step;
    }
    *buf = Some(b);
}

#[test]
fn sgd_momentum_and_nesterov_match_f64_reference() {
    let base = SgdConfig { lr: 0.1, momentum: 0.9, dampening: 0.0, weight_decay: 0.01, nesterov: false };
    for cfg in [base, SgdConfig { nesterov: true, ..base }, SgdConfig { dampening: 0.3, ..base }] {
        let mut rng = TestRng::new(11);
        let mut model = two(&mut rng);
        let mut pa = model.a.value().to_vec_f64();
        let mut buf = None;
        let mut opt = Sgd::new(cfg).unwrap();
        for step in 1..=4 {
            let ga = f32_values(&mut rng, 12, 1.0);
            model.a.var().set_grad(Some(tensor(&ga, &[3, 4])));
            sgd_ref(&mut pa, &mut buf, &to_f64(&ga), &cfg);
            opt.step(&mut model).unwrap();
            close(&format!("SGD {cfg:?} step {step}"), &model.a.value().to_vec_f64(), &pa, STEP_TOL);
        }
        let st = opt.state();
        // The buffer sums O(1) f32 gradients, so an element that cancels to ≈ 1e-2 carries an absolute
        // error of a few ulps of O(1) (≈ 1e-7), not a relative one.
        let buf_tol = Tolerance::new(1e-6, 1e-7);
        close(
            "momentum_buffer.a",
            &st.tensor("momentum_buffer.a").unwrap().to_vec_f64(),
            &buf.unwrap(),
            buf_tol,
        );
        assert!(st.tensor("momentum_buffer.b").is_none(), "b never had a gradient");
    }
    let bad = SgdConfig { nesterov: true, momentum: 0.0, ..base };
    let e = Sgd::new(bad).unwrap_err().to_string();
    assert!(e.contains("nesterov"), "{e}");
}

#[test]
fn frozen_params_and_params_without_grad_are_untouched() {
    let mut init = Init::new(3);
    let mut lin = Linear::new(&mut init, 4, 3, true);
    lin.weight.freeze();
    let x = Var::constant(Tensor::ones(&[2, 4], DType::F32));
    lin.forward(&x).unwrap().sum_all().unwrap().backward().unwrap();
    assert!(lin.weight.grad().is_none(), "a frozen weight got a gradient");
    assert!(lin.bias.as_ref().unwrap().grad().is_some());
    // Even a gradient set by hand on a frozen parameter is ignored.
    lin.weight.var().set_grad(Some(Tensor::ones(&[3, 4], DType::F32)));
    let (w0, b0) = (lin.weight.value().to_vec_f64(), lin.bias.as_ref().unwrap().value().to_vec_f64());
    let mut opt = AdamW::new(AdamWConfig { lr: 0.1, ..Default::default() }).unwrap();
    opt.step(&mut lin).unwrap();
    assert_eq!(lin.weight.value().to_vec_f64(), w0, "frozen weight changed");
    assert_ne!(lin.bias.as_ref().unwrap().value().to_vec_f64(), b0, "bias did not move");
    assert!(opt.state().tensor("exp_avg.weight").is_none());

    // No gradient at all: nothing changes, no state (even with weight decay, as PyTorch).
    let mut rng = TestRng::new(5);
    let mut m = two(&mut rng);
    let before = m.a.value().to_vec_f64();
    m.b.var().set_grad(Some(Tensor::ones(&[5], DType::F32)));
    let mut sgd =
        Sgd::new(SgdConfig { lr: 0.1, momentum: 0.5, weight_decay: 0.1, ..Default::default() }).unwrap();
    sgd.step(&mut m).unwrap();
    opt.step(&mut m).unwrap();
    assert_eq!(m.a.value().to_vec_f64(), before);
    assert_eq!(opt.step_count("a"), 0);
    assert_eq!(opt.step_count("b"), 1);
}

#[test]
fn gradient_of_wrong_shape_is_a_named_error_and_changes_nothing() {
    let mut rng = TestRng::new(9);
    let mut m = two(&mut rng);
    let (a0, b0) = (m.a.value().to_vec_f64(), m.b.value().to_vec_f64());
    m.a.var().set_grad(Some(Tensor::ones(&[3, 4], DType::F32)));
    m.b.var().set_grad(Some(Tensor::ones(&[4], DType::F32)));
    let e = AdamW::new(AdamWConfig::default()).unwrap().step(&mut m).unwrap_err().to_string();
    assert!(e.contains("`b`") && e.contains("[4]") && e.contains("[5]"), "{e}");
    assert_eq!((m.a.value().to_vec_f64(), m.b.value().to_vec_f64()), (a0, b0));
}

#[test]
fn schedules_at_chosen_steps() {
    let c = LrSchedule::Constant { lr: 3e-4 };
    assert_eq!((c.lr_at(0), c.lr_at(1_000_000)), (3e-4, 3e-4));

    // ml-mdm: LambdaLR factor max(1, step) / warmup, constant afterwards.
    let w = LrSchedule::WarmupConstant { lr: 5e-5, warmup_steps: 10_000 };
    w.validate().unwrap();
    let tol = Tolerance::new(1e-14, 0.0);
    close("warmup step 0", &[w.lr_at(0)], &[5e-5 / 10_000.0], tol);
    close("warmup step 1", &[w.lr_at(1)], &[5e-5 / 10_000.0], tol);
    close("warmup step 5000", &[w.lr_at(5_000)], &[2.5e-5], tol);
    close("warmup step 9999", &[w.lr_at(9_999)], &[5e-5 * 0.9999], tol);
    assert_eq!((w.lr_at(10_000), w.lr_at(999_999)), (5e-5, 5e-5));

    let cos = LrSchedule::WarmupCosine { lr: 1e-3, min_lr: 1e-5, warmup_steps: 100, total_steps: 1100 };
    cos.validate().unwrap();
    close("cosine warmup", &[cos.lr_at(50)], &[5e-4], tol);
    close("cosine start", &[cos.lr_at(100)], &[1e-3], tol);
    close("cosine midpoint", &[cos.lr_at(600)], &[(1e-3 + 1e-5) / 2.0], tol);
    // a quarter of the way: min + (lr−min)·(1 + cos(π/4))/2
    let q = 1e-5 + (1e-3 - 1e-5) * (1.0 + std::f64::consts::FRAC_1_SQRT_2) / 2.0;
    close("cosine quarter", &[cos.lr_at(350)], &[q], tol);
    close("cosine end", &[cos.lr_at(1100), cos.lr_at(5000)], &[1e-5, 1e-5], tol);

    let bad = LrSchedule::WarmupCosine { lr: 1e-3, min_lr: 1e-5, warmup_steps: 100, total_steps: 100 };
    let e = bad.validate().unwrap_err().to_string();
    assert!(e.contains("total_steps = 100") && e.contains("warmup_steps = 100"), "{e}");
}

#[test]
fn clipping_scales_to_max_norm_and_leaves_small_grads_alone() {
    let mut rng = TestRng::new(21);
    let m = two(&mut rng);
    let ga = f32_values(&mut rng, 12, 3.0);
    let gb = f32_values(&mut rng, 5, 3.0);
    let expected: f64 = to_f64(&ga).iter().chain(&to_f64(&gb)).map(|x| x * x).sum::<f64>().sqrt();
    m.a.var().set_grad(Some(tensor(&ga, &[3, 4])));
    m.b.var().set_grad(Some(tensor(&gb, &[5])));
    assert!(expected > 3.0, "test needs a norm above max_norm, got {expected}");

    // Below the norm: untouched, the norm is still reported.
    let total = clip_grad_norm(&m, 100.0).unwrap();
    close("norm", &[total], &[expected], Tolerance::new(1e-12, 0.0));
    assert_eq!(m.a.grad().unwrap().to_vec_f64(), to_f64(&ga));

    // Above: scaled by max/(total + 1e-6); the new norm is 2.0 up to that 1e-6 and f32 rounding
    // (relative ≈ 1e-7), and every element keeps its ratio to the others.
    let total = clip_grad_norm(&m, 2.0).unwrap();
    close("norm before clipping", &[total], &[expected], Tolerance::new(1e-12, 0.0));
    close("clipped norm", &[grad_norm(&m)], &[2.0], Tolerance::new(1e-6, 0.0));
    let scaled: Vec<f64> = to_f64(&ga).iter().map(|g| g * 2.0 / (expected + 1e-6)).collect();
    close("clipped a", &m.a.grad().unwrap().to_vec_f64(), &scaled, Tolerance::new(1e-6, 1e-9));

    assert!(clip_grad_norm(&m, 0.0).is_err());
    assert!(clip_grad_norm(&m, f64::NAN).is_err());
}

#[test]
fn ema_math_warmup_copy_and_state() {
    let mut rng = TestRng::new(31);
    let mut m = two(&mut rng);
    m.b.freeze(); // EMA covers frozen parameters too (the whole state_dict)
    let mut ema = Ema::new(&m, 0.9).unwrap().with_warmup(1);
    let mut shadow_b = m.b.value().to_vec_f64();
    // Update 1 is within warmup: a plain copy.
    let nb = f32_values(&mut rng, 5, 1.0);
    m.b.set_value(tensor(&nb, &[5])).unwrap();
    ema.update(&m).unwrap();
    assert_eq!(ema.shadow()[1].1.to_vec_f64(), to_f64(&nb));
    shadow_b.clone_from(&to_f64(&nb));
    // Then shadow ← 0.9·shadow + 0.1·param.
    for _ in 0..3 {
        let nb = f32_values(&mut rng, 5, 1.0);
        m.b.set_value(tensor(&nb, &[5])).unwrap();
        ema.update(&m).unwrap();
        for (s, p) in shadow_b.iter_mut().zip(to_f64(&nb)) {
            *s = 0.9 * *s + 0.1 * p;
        }
    }
    let names: Vec<&str> = ema.shadow().iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    close("ema b", &ema.shadow()[1].1.to_vec_f64(), &shadow_b, STEP_TOL);
    assert_eq!(ema.counter(), 4);

    // State round trip, then copy into the model.
    let st = ema.state();
    let mut fresh = Ema::new(&m, 0.9).unwrap();
    fresh.load_state(&st).unwrap();
    assert_eq!(fresh.counter(), 4);
    fresh.copy_to(&mut m).unwrap();
    close("copied b", &m.b.value().to_vec_f64(), &shadow_b, STEP_TOL);

    let other = Two { a: Param::new(Tensor::zeros(&[2], DType::F32)), b: m.b.clone() };
    let e = ema.update(&other).unwrap_err().to_string();
    assert!(e.contains("`a`") && e.contains("[2]"), "{e}");
    assert!(Ema::new(&m, 1.5).is_err());
}

struct Inner {
    b: Param,
}
nn::impl_module!(Inner { params: [b], children: [] });

struct Grown {
    a: Param,
    inner: Inner,
}
nn::impl_module!(Grown { params: [a], children: [inner] });

#[test]
fn ema_ramp_is_per_parameter_and_restarts_for_the_parameters_a_growth_adds() {
    let mut rng = TestRng::new(37);
    // A one-parameter model trained for 5 updates with the ramp on.
    let small = Inner { b: Param::new(tensor(&f32_values(&mut rng, 3, 1.0), &[3])) };
    let mut prev = Ema::new(&small, 0.99).unwrap().with_ramp(true);
    // Hand-computed ramp: min(0.99, (1 + n) / (10 + n)) = 0.1, 2/11, 3/12, … and 0.99 once n ≥ 890.
    assert_eq!(prev.decay_at(0), 0.1);
    assert!((prev.decay_at(1) - 2.0 / 11.0).abs() < 1e-15);
    assert_eq!(prev.decay_at(890), 0.99);
    assert_eq!(prev.decay_at(10_000), 0.99);
    assert_eq!(prev.clone().with_ramp(false).decay_at(3), 0.99);
    assert_eq!(prev.clone().with_warmup(2).decay_at(1), 0.0);
    assert_eq!(prev.clone().with_warmup(2).decay_at(2), 0.1);
    for _ in 0..5 {
        prev.update(&small).unwrap();
    }
    // Grow: the old parameter becomes `inner.b`, a new `a` appears.
    let mut big = Grown {
        a: Param::new(tensor(&f32_values(&mut rng, 4, 1.0), &[4])),
        inner: Inner { b: Param::new(small.b.value().clone()) },
    };
    let mut ema = Ema::new(&big, 0.99).unwrap().with_ramp(true);
    ema.inherit(&prev, "inner.").unwrap();
    assert_eq!(ema.counter(), 5);
    assert_eq!(ema.ages(), [("a".to_string(), 0), ("inner.b".to_string(), 5)]);
    // One update: `a` (age 0) uses decay 0.1, `inner.b` (age 5) uses 6/15.
    let (old_a, old_b) = (ema.shadow()[0].1.to_vec_f64(), ema.shadow()[1].1.to_vec_f64());
    let na = f32_values(&mut rng, 4, 1.0);
    big.a.set_value(tensor(&na, &[4])).unwrap();
    ema.update(&big).unwrap();
    let want_a: Vec<f64> = old_a.iter().zip(to_f64(&na)).map(|(s, p)| 0.1 * s + 0.9 * p).collect();
    let pb = big.inner.b.value().to_vec_f64();
    let want_b: Vec<f64> = old_b.iter().zip(&pb).map(|(s, p)| 0.4 * s + 0.6 * p).collect();
    close("new parameter", &ema.shadow()[0].1.to_vec_f64(), &want_a, STEP_TOL);
    close("inherited parameter", &ema.shadow()[1].1.to_vec_f64(), &want_b, STEP_TOL);
    // Ages survive the state round trip; an unknown age entry is an error.
    let st = ema.state();
    assert!(st.scalars.iter().any(|(k, v)| k == "age.a" && *v == 1.0), "{:?}", st.scalars);
    let mut fresh = Ema::new(&big, 0.99).unwrap().with_ramp(true);
    fresh.load_state(&st).unwrap();
    assert_eq!(fresh.ages(), ema.ages());
    let mut bad = st.clone();
    bad.scalars.push(("age.nope".into(), 1.0));
    let e = fresh.load_state(&bad).unwrap_err().to_string();
    assert!(e.contains("age.nope"), "{e}");
    // Inheriting a name the bigger average lacks is an error that names it.
    let e = ema.inherit(&prev, "wrong.").unwrap_err().to_string();
    assert!(e.contains("wrong.b"), "{e}");
}

#[test]
fn optimizer_state_round_trip_gives_an_identical_next_step() {
    let cfg = AdamWConfig { lr: 0.02, weight_decay: 0.05, ..Default::default() };
    let mut rng = TestRng::new(41);
    let mut m = two(&mut rng);
    let mut opt = AdamW::new(cfg).unwrap();
    let mut sgd = Sgd::new(SgdConfig { lr: 0.05, momentum: 0.9, ..Default::default() }).unwrap();
    for k in 0..3 {
        m.a.var().set_grad(Some(tensor(&f32_values(&mut rng, 12, 1.0), &[3, 4])));
        if k != 1 {
            m.b.var().set_grad(Some(tensor(&f32_values(&mut rng, 5, 1.0), &[5])));
        } else {
            m.b.zero_grad();
        }
        opt.step(&mut m).unwrap();
        sgd.step(&mut m).unwrap();
    }
    let mut opt2 = AdamW::new(cfg).unwrap();
    opt2.load_state(&opt.state()).unwrap();
    let mut sgd2 = Sgd::new(*sgd.config()).unwrap();
    sgd2.load_state(&sgd.state()).unwrap();

    let mut m2 = Two { a: Param::new(m.a.value().clone()), b: Param::new(m.b.value().clone()) };
    let ga = tensor(&f32_values(&mut rng, 12, 1.0), &[3, 4]);
    let gb = tensor(&f32_values(&mut rng, 5, 1.0), &[5]);
    for model in [&m, &m2] {
        model.a.var().set_grad(Some(ga.clone()));
        model.b.var().set_grad(Some(gb.clone()));
    }
    opt.step(&mut m).unwrap();
    sgd.step(&mut m).unwrap();
    opt2.step(&mut m2).unwrap();
    sgd2.step(&mut m2).unwrap();
    assert_eq!(m.a.value().to_vec_f64(), m2.a.value().to_vec_f64());
    assert_eq!(m.b.value().to_vec_f64(), m2.b.value().to_vec_f64());
    // A fresh optimizer (no state) steps differently, so the restored state mattered.
    let copy = |m: &Two| Two { a: Param::new(m.a.value().clone()), b: Param::new(m.b.value().clone()) };
    let (mut m3, mut m4) = (copy(&m), copy(&m));
    m3.a.var().set_grad(Some(ga.clone()));
    m4.a.var().set_grad(Some(ga));
    AdamW::new(cfg).unwrap().step(&mut m3).unwrap();
    opt.clone().step(&mut m4).unwrap();
    assert_ne!(m3.a.value().to_vec_f64(), m4.a.value().to_vec_f64());

    // Malformed state is a named error.
    let mut st = opt.state();
    st.tensors.retain(|(n, _)| n != "exp_avg_sq.b");
    let e = AdamW::new(cfg).unwrap().load_state(&st).unwrap_err().to_string();
    assert!(e.contains("exp_avg_sq.b"), "{e}");
    let mut st = opt.state();
    st.tensors.push(("momentum.a".into(), Tensor::zeros(&[1], DType::F32)));
    let e = AdamW::new(cfg).unwrap().load_state(&st).unwrap_err().to_string();
    assert!(e.contains("momentum.a"), "{e}");
    // State of the wrong shape fails at the step, naming the parameter, and changes nothing.
    let mut st = opt.state();
    for (n, t) in st.tensors.iter_mut() {
        if n == "exp_avg.a" || n == "exp_avg_sq.a" {
            *t = Tensor::zeros(&[12], DType::F32);
        }
    }
    let mut bad = AdamW::new(cfg).unwrap();
    bad.load_state(&st).unwrap();
    let before = m.a.value().to_vec_f64();
    let e = bad.step(&mut m).unwrap_err().to_string();
    assert!(e.contains("exp_avg.a") && e.contains("[12]"), "{e}");
    assert_eq!(m.a.value().to_vec_f64(), before);
}

#[test]
fn adamw_fits_a_linear_regression() {
    let mut rng = TestRng::new(51);
    let (n, d) = (64, 6);
    let x = f32_values(&mut rng, n * d, 1.0);
    let w_true = f32_values(&mut rng, d, 2.0);
    let y: Vec<f32> = (0..n).map(|i| (0..d).map(|j| x[i * d + j] * w_true[j]).sum::<f32>() + 0.5).collect();
    let x = Var::constant(tensor(&x, &[n, d]));
    let y = Var::constant(tensor(&y, &[n, 1]));
    let mut lin = Linear::new(&mut Init::new(1), d, 1, true);
    let mut opt = AdamW::new(AdamWConfig { lr: 0.05, weight_decay: 0.0, ..Default::default() }).unwrap();
    let mut losses = vec![];
    for _ in 0..200 {
        lin.zero_grad();
        let loss = lin.forward(&x).unwrap().mse_loss(&y, Reduction::Mean).unwrap();
        losses.push(loss.value().item().unwrap());
        loss.backward().unwrap();
        opt.step(&mut lin).unwrap();
    }
    let (first, last) = (losses[0], *losses.last().unwrap());
    assert!(last < 1e-3 * first, "loss {first} → {last}");
    assert!(
        losses.windows(2).take(20).all(|w| w[1] < w[0]),
        "loss did not fall in the first steps: {losses:?}"
    );
}

/// The fused AdamW update of the CUDA backend is specified by `kernels::optim::adamw_step` (its CPU
/// reference, bit-identical to the kernel in the emulator); it must reproduce this optimizer's
/// tensor-op sequence bit for bit, parameter and both moments, over several steps.
#[test]
fn adamw_is_bit_identical_to_the_fused_step_reference() {
    use kernels::optim::{AdamWHyper, AdamWScalars, adamw_step};
    for cfg in [
        AdamWConfig { lr: 0.05, betas: (0.9, 0.999), eps: 1e-8, weight_decay: 0.1 },
        AdamWConfig { lr: 0.01, betas: (0.8, 0.99), eps: 1e-3, weight_decay: 0.0 },
    ] {
        let mut rng = TestRng::new(11);
        let mut model = two(&mut rng);
        let mut p: Vec<f32> = model.a.value().to_vec_f64().iter().map(|&x| x as f32).collect();
        let (mut m, mut v) = (vec![0f32; 12], vec![0f32; 12]);
        let h = AdamWHyper {
            lr: cfg.lr,
            beta1: cfg.betas.0,
            beta2: cfg.betas.1,
            eps: cfg.eps,
            weight_decay: cfg.weight_decay,
        };
        let mut opt = AdamW::new(cfg).unwrap();
        for step in 1..=6u64 {
            let mut g = f32_values(&mut rng, 12, 1.0);
            g[(step as usize) % 12] = 0.0;
            model.a.var().set_grad(Some(tensor(&g, &[3, 4])));
            model.b.zero_grad();
            opt.step(&mut model).unwrap();
            adamw_step(&AdamWScalars::new(&h, step), &mut p, &g, &mut m, &mut v);
            let bits = |x: &[f64]| x.iter().map(|&x| (x as f32).to_bits()).collect::<Vec<_>>();
            let mine = |x: &[f32]| x.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            let st = opt.state();
            assert_eq!(bits(&model.a.value().to_vec_f64()), mine(&p), "param, step {step}, {cfg:?}");
            assert_eq!(bits(&st.tensor("exp_avg.a").unwrap().to_vec_f64()), mine(&m), "exp_avg, step {step}");
            assert_eq!(
                bits(&st.tensor("exp_avg_sq.a").unwrap().to_vec_f64()),
                mine(&v),
                "exp_avg_sq, step {step}"
            );
        }
    }
}
