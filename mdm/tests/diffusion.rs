//! Diffusion process tests: schedules against the spec tables (§2.3), the SNR shift (§2.4),
//! v/ε/x̂₀ conversions (§2.6), the pyramid (§2.2), noising (§2.5) and the loss (§2.7) against hand
//! computations.

use autograd::Var;
use kernels::testing::TestRng;
use mdm::Error;
use mdm::diffusion::*;
use tensor::{DType, Tensor};

fn rand64(rng: &mut TestRng, shape: &[usize]) -> Tensor {
    let n = shape.iter().product();
    Tensor::from_vec(rng.vec_f64(n), shape).unwrap()
}

/// The spec's DEEPFLOYD table (N = 1000); γ is compared to half a unit of the last digit shown
/// (the table is rounded). logSNR gets 0.006 instead of 0.005: the table's 10.10 at k = 1 is
/// 10.09499 double-rounded (via 10.095).
#[test]
fn deepfloyd_matches_spec_table() {
    let s = Schedule::new(ScheduleKind::Deepfloyd, 1000);
    assert_eq!(s.len(), 1001);
    assert_eq!(s.gamma(0), 1.0);
    // (k, γ, γ tolerance, logSNR)
    let table = [
        (1, 0.99996, 5e-6, 10.10),
        (10, 0.99937, 5e-6, 7.37),
        (100, 0.9721, 5e-5, 3.55),
        (250, 0.8470, 5e-5, 1.71),
        (500, 0.4938, 5e-5, -0.02),
        (750, 0.1443, 5e-5, -1.78),
        (900, 0.0241, 5e-5, -3.70),
        (990, 2.43e-4, 5e-7, -8.32),
        (997, 2.19e-5, 5e-8, -10.73),
        (999, 2.43e-6, 5e-9, -12.93),
        (1000, 2.43e-9, 5e-12, -19.84),
    ];
    for (k, g, tol, l) in table {
        assert!((s.gamma(k) - g).abs() <= tol, "γ[{k}] = {} vs {g}", s.gamma(k));
        assert!((s.log_snr(k) - l).abs() <= 0.006, "logSNR[{k}] = {} vs {l}", s.log_snr(k));
    }
    // β_N is clipped at 0.999: γ[1000] = γ[999]·0.001.
    assert!((s.gamma(1000) / s.gamma(999) - 0.001).abs() < 1e-12);
}

#[test]
fn cosine_schedule_endpoints_and_monotone() {
    let n = 1000;
    let s = Schedule::new(ScheduleKind::Cosine, n);
    assert_eq!(s.len(), n + 1);
    assert_eq!(s.gamma(0), 1.0);
    let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
    assert!((s.gamma(1) - sig(5.0)).abs() < 1e-12, "{}", s.gamma(1));
    assert!((s.gamma(n) - sig(-5.0)).abs() < 1e-12, "{}", s.gamma(n));
    assert!((s.log_snr(1) - 5.0).abs() < 1e-9 && (s.log_snr(n) + 5.0).abs() < 1e-9);
    // logSNR is −2 ln tan(a t + b) at t = (k−1)/(N−1): check the midpoint (t = 1/2 is not on the
    // grid for even N−1, so compare k = 1 + (N−1)/3 exactly by the formula).
    let b = (-2.5f64).exp().atan();
    let a = 2.5f64.exp().atan() - b;
    let t = 333.0 / 999.0;
    assert!((s.log_snr(334) - (-2.0 * (a * t + b).tan().ln())).abs() < 1e-9);
    assert!((1..=n).all(|k| s.gamma(k) < s.gamma(k - 1)));
}

#[test]
fn ddpm_schedule_is_linear_beta_cumprod() {
    let n = 1000;
    let s = Schedule::new(ScheduleKind::Ddpm, n);
    assert_eq!(s.len(), n + 1);
    for k in [1, 2, 500, 999, 1000] {
        let beta = 1e-4 + (0.02 - 1e-4) * (k - 1) as f64 / (n - 1) as f64;
        let ratio = s.gamma(k) / s.gamma(k - 1);
        assert!((ratio - (1.0 - beta)).abs() < 1e-12, "k = {k}: {ratio} vs {}", 1.0 - beta);
    }
}

#[test]
fn shift_subtracts_p_ln_s_from_log_snr() {
    let base = Schedule::new(ScheduleKind::Deepfloyd, 1000);
    for (scale, p) in [(4.0f64, 1.0f64), (16.0, 2.0), (2.0, 1.5)] {
        let sh = base.shifted(scale, p);
        for k in 1..=1000 {
            assert_eq!(sh.log_snr(k), base.log_snr(k) - p * scale.ln(), "k = {k}");
            // ml-mdm's formula 1/(1 + (1−γ)/γ · s^p) as an independent reference.
            let g = base.gamma(k);
            let want = 1.0 / (1.0 + (1.0 - g) / g * scale.powf(p));
            assert!((sh.gamma(k) - want).abs() <= 1e-12 * want.max(1e-300) + 1e-300, "k = {k}");
        }
        assert_eq!(sh.gamma(0), 1.0);
    }
    assert_eq!(base.shifted(1.0, 2.0), base);
}

#[test]
fn diffusion_shifts_relative_to_lowest_resolution() {
    let cfg = DiffusionConfig { shift_power: 2.0, ..Default::default() };
    let d = Diffusion::new(cfg.clone(), &[1, 4, 16]).unwrap();
    assert_eq!(d.num_resolutions(), 3);
    let base = d.base_schedule();
    for k in [1, 500, 1000] {
        assert_eq!(d.schedule(2).log_snr(k), base.log_snr(k));
        assert_eq!(d.schedule(1).log_snr(k), base.log_snr(k) - 2.0 * 4f64.ln());
        assert_eq!(d.schedule(0).log_snr(k), base.log_snr(k) - 2.0 * 16f64.ln());
    }
    // 256² model of the spec: p = 1, top stream logSNR − ln 4 ≈ −1.386.
    let d = Diffusion::new(DiffusionConfig::default(), &[1, 4]).unwrap();
    assert!((d.schedule(0).log_snr(10) - d.schedule(1).log_snr(10) + 1.386).abs() < 1e-3);
    let off = Diffusion::new(DiffusionConfig { schedule_shifted: false, ..cfg }, &[1, 4]).unwrap();
    assert_eq!(off.schedule(0), off.schedule(1));
}

#[test]
fn conversions_round_trip() {
    let mut rng = TestRng::new(3);
    let shape = [3, 2, 4, 4];
    let x0 = rand64(&mut rng, &shape);
    let eps = rand64(&mut rng, &shape);
    let g = [0.999, 0.5, 0.02];
    let z = z_from_x0_eps(&x0, &eps, &g).unwrap();
    let v = v_from_eps_x0(&eps, &x0, &g).unwrap();
    let close = |a: &Tensor, b: &Tensor| {
        let (a, b) = (a.to_vec_f64(), b.to_vec_f64());
        let e = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
        assert!(e < 1e-12, "max error {e}");
    };
    close(&x0_from_v(&z, &v, &g).unwrap(), &x0);
    close(&eps_from_v(&z, &v, &g).unwrap(), &eps);
    close(&eps_from_x0(&z, &x0, &g).unwrap(), &eps);
    close(&x0_from_eps(&z, &eps, &g).unwrap(), &x0);
    // Spot check of the definition v = √γ ε − √(1−γ) x₀ at one element.
    let i = [1, 1, 2, 3];
    let want = 0.5f64.sqrt() * eps.get(&i).unwrap() - 0.5f64.sqrt() * x0.get(&i).unwrap();
    assert!((v.get(&i).unwrap() - want).abs() < 1e-15);
    let var = eps_from_v_var(&z, &Var::constant(v.clone()), &g).unwrap();
    close(var.value(), &eps);
    assert!(matches!(z_from_x0_eps(&x0, &eps, &[0.5]), Err(Error::Input { .. })));
}

#[test]
fn pyramid_is_average_pooling() {
    let mut rng = TestRng::new(5);
    let x = rand64(&mut rng, &[2, 3, 8, 8]);
    let d = Diffusion::new(DiffusionConfig::default(), &[1, 2, 4]).unwrap();
    let p = d.pyramid(&x).unwrap();
    assert_eq!(p.len(), 3);
    assert_eq!(p[0].to_vec_f64(), x.to_vec_f64());
    for (r, s) in [(1usize, 2usize), (2, 4)] {
        assert_eq!(p[r].shape(), &[2, 3, 8 / s, 8 / s]);
        for (b, c, i, j) in [(0, 0, 0, 0), (1, 2, 8 / s - 1, 0), (1, 1, 1, 8 / s - 1)] {
            let mut sum = 0.0;
            for di in 0..s {
                for dj in 0..s {
                    sum += x.get(&[b, c, i * s + di, j * s + dj]).unwrap();
                }
            }
            let got = p[r].get(&[b, c, i, j]).unwrap();
            assert!((got - sum / (s * s) as f64).abs() < 1e-14, "r {r} ({b},{c},{i},{j})");
        }
    }
    assert!(matches!(d.pyramid(&rand64(&mut rng, &[1, 3, 6, 6])), Err(Error::Input { .. })));
}

#[test]
#[allow(clippy::needless_range_loop)] // r indexes four parallel lists
fn noise_at_follows_forward_process() {
    let mut rng = TestRng::new(7);
    let d = Diffusion::new(DiffusionConfig::default(), &[1, 2]).unwrap();
    let x = rand64(&mut rng, &[3, 3, 4, 4]);
    let x0 = d.pyramid(&x).unwrap();
    let t = [0, 499, 999];
    let nb = d.noise_at(&x0, &t, 11, 100).unwrap();
    assert_eq!(nb.t, t);
    assert_eq!(nb.times.to_vec::<f32>().unwrap(), vec![0.0, 499.0, 999.0]);
    assert_eq!(nb.times.dtype(), DType::F32);
    let mut off = 100;
    for r in 0..2 {
        // ε_r is the documented stream range, independent per resolution.
        let want = Tensor::randn(x0[r].shape(), 0.0, 1.0, 11, off, DType::F64).unwrap();
        assert_eq!(nb.eps[r].to_vec_f64(), want.to_vec_f64());
        off += x0[r].numel() as u64;
        for (b, &tb) in t.iter().enumerate() {
            let g = d.schedule(r).gamma(tb + 1);
            assert_eq!(nb.gammas[r][b], g);
            let per = x0[r].numel() / 3;
            let (z, e, xv) = (nb.z[r].to_vec_f64(), nb.eps[r].to_vec_f64(), x0[r].to_vec_f64());
            for i in b * per..(b + 1) * per {
                let want = g.sqrt() * xv[i] + (1.0 - g).sqrt() * e[i];
                assert!((z[i] - want).abs() <= 1e-15 * (1.0 + want.abs()), "r {r} i {i}");
            }
        }
    }
    // The top resolution is shifted (lower γ) relative to the lowest.
    assert!(nb.gammas[0][1] < nb.gammas[1][1]);
    assert!(matches!(d.noise_at(&x0, &[0, 1, 1000], 1, 0), Err(Error::Input { .. })));
    assert!(matches!(d.noise_at(&x0[..1], &[0, 1, 2], 1, 0), Err(Error::Input { .. })));
}

#[test]
fn noise_draws_shared_uniform_times_deterministically() {
    let d = Diffusion::new(DiffusionConfig::default(), &[1, 2]).unwrap();
    let x = Tensor::zeros(&[2000, 1, 2, 2], DType::F32);
    let x0 = d.pyramid(&x).unwrap();
    let a = d.noise(&x0, 5, 0).unwrap();
    let b = d.noise(&x0, 5, 0).unwrap();
    assert_eq!(a.t, b.t);
    assert_eq!(a.z[0].to_vec_f64(), b.z[0].to_vec_f64());
    let c = d.noise(&x0, 5, d.stream_len(&x0)).unwrap();
    assert_ne!(a.t, c.t);
    assert!(a.t.iter().all(|&t| t < 1000));
    // Uniform on {0..999}: mean 499.5, sd of the mean ≈ 288.7/√2000 ≈ 6.5; allow 5 sd.
    let mean = a.t.iter().sum::<usize>() as f64 / a.t.len() as f64;
    assert!((mean - 499.5).abs() < 33.0, "mean t {mean}");
    assert!(a.t.iter().any(|&t| t < 10) && a.t.iter().any(|&t| t > 989));
    // x0 = 0 → z = √(1−γ) ε.
    let g = a.gammas[1][7];
    let (z, e) = (a.z[1].get(&[7, 0, 0, 0]).unwrap(), a.eps[1].get(&[7, 0, 0, 0]).unwrap());
    assert!((z - (1.0 - g).sqrt() * e).abs() < 1e-6);
}

/// Per-sample ε-space MSE of v-predictions, by hand.
fn hand_mse(z: &Tensor, v: &Tensor, eps: &Tensor, g: &[f64]) -> Vec<f64> {
    let b = g.len();
    let (z, v, e) = (z.to_vec_f64(), v.to_vec_f64(), eps.to_vec_f64());
    let per = z.len() / b;
    (0..b)
        .map(|i| {
            (i * per..(i + 1) * per)
                .map(|j| {
                    let eh = (1.0 - g[i]).sqrt() * z[j] + g[i].sqrt() * v[j];
                    (eh - e[j]).powi(2)
                })
                .sum::<f64>()
                / per as f64
        })
        .collect()
}

struct LossCase {
    d: Diffusion,
    nb: NoisedBatch,
    preds: Vec<Var>,
    mse: Vec<Vec<f64>>,
}

fn loss_case(cfg: DiffusionConfig, t: &[usize]) -> LossCase {
    let mut rng = TestRng::new(9);
    let d = Diffusion::new(cfg, &[1, 2]).unwrap();
    let x0 = d.pyramid(&rand64(&mut rng, &[4, 1, 2, 2])).unwrap();
    let nb = d.noise_at(&x0, t, 3, 0).unwrap();
    let preds: Vec<Var> = x0.iter().map(|x| Var::leaf(rand64(&mut rng, x.shape()))).collect();
    let mse = (0..2).map(|r| hand_mse(&nb.z[r], preds[r].value(), &nb.eps[r], &nb.gammas[r])).collect();
    LossCase { d, nb, preds, mse }
}

const T4: [usize; 4] = [0, 5, 500, 998];

fn close(a: f64, b: f64) {
    assert!((a - b).abs() < 1e-12 * (1.0 + b.abs()), "{a} vs {b}");
}

#[test]
fn loss_default_is_sum_of_resolution_means() {
    let c = loss_case(DiffusionConfig::default(), &T4);
    let (l, logs) = c.d.loss(&c.preds, &c.nb).unwrap();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    close(l.value().item().unwrap(), mean(&c.mse[0]) + mean(&c.mse[1]));
    close(logs[0], mean(&c.mse[0]));
    close(logs[1], mean(&c.mse[1]));
    // Gradient to the predictions: dL/dv = 2(ε̂ − ε)·√γ / (numel per sample · B).
    l.backward().unwrap();
    for r in 0..2 {
        let grad = c.preds[r].grad().expect("gradient reaches the prediction").to_vec_f64();
        let (z, v, e) = (c.nb.z[r].to_vec_f64(), c.preds[r].value().to_vec_f64(), c.nb.eps[r].to_vec_f64());
        let per = z.len() / 4;
        for (j, gj) in grad.iter().enumerate() {
            let g = c.nb.gammas[r][j / per];
            let eh = (1.0 - g).sqrt() * z[j] + g.sqrt() * v[j];
            close(*gj, 2.0 * (eh - e[j]) * g.sqrt() / (per * 4) as f64);
        }
    }
}

#[test]
fn loss_resolution_weights_and_single_loss() {
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let cfg = DiffusionConfig { multi_res_weights: vec![2.0, 0.5], ..Default::default() };
    let c = loss_case(cfg, &T4);
    let (l, _) = c.d.loss(&c.preds, &c.nb).unwrap();
    close(l.value().item().unwrap(), 2.0 * mean(&c.mse[0]) + 0.5 * mean(&c.mse[1]));

    let cfg = DiffusionConfig { use_double_loss: false, ..Default::default() };
    let c = loss_case(cfg, &T4);
    let (l, logs) = c.d.loss(&c.preds, &c.nb).unwrap();
    close(l.value().item().unwrap(), mean(&c.mse[0]));
    close(logs[1], mean(&c.mse[1]));
    l.backward().unwrap();
    // The low resolution stays in the graph with weight 0 (as in ml-mdm).
    let g1 = c.preds[1].grad().expect("connected").to_vec_f64();
    assert!(g1.iter().all(|&x| x == 0.0));
}

#[test]
fn loss_mixed_ratio_masks_and_rescales() {
    // "1:1" → m = [1/2, 1]: the top resolution uses the first ⌊B/2⌋ = 2 samples, divided by 1/2.
    let cfg = DiffusionConfig { mixed_ratio: vec![1.0, 1.0], ..Default::default() };
    let c = loss_case(cfg, &T4);
    assert_eq!(c.d.mixed_fractions(), vec![0.5, 1.0]);
    let (l, logs) = c.d.loss(&c.preds, &c.nb).unwrap();
    let top = (c.mse[0][0] + c.mse[0][1]) / 4.0 / 0.5;
    let low = c.mse[1].iter().sum::<f64>() / 4.0;
    close(l.value().item().unwrap(), top + low);
    close(logs[0], (c.mse[0][0] + c.mse[0][1]) / 2.0);
    // "2:1" → m = [2/3, 1], ⌊8/3⌋ = 2 samples.
    let d = Diffusion::new(DiffusionConfig { mixed_ratio: vec![2.0, 1.0], ..Default::default() }, &[1, 2])
        .unwrap();
    let f = d.loss_factors(&T4);
    assert_eq!(f[0][2], 0.0);
    close(f[0][1], 0.25 / (2.0 / 3.0));
}

#[test]
fn loss_vdm_weights() {
    let cfg = DiffusionConfig { use_vdm_loss_weights: true, ..Default::default() };
    let c = loss_case(cfg, &T4);
    let s = Schedule::new(ScheduleKind::Deepfloyd, 1000);
    // ml-mdm: g_last·(1−g)/((1−g_last)·g) − 1 at k = t + 1, with t = 0 using k = 2.
    let w: Vec<f64> = T4
        .iter()
        .map(|&t| {
            let k = (t + 1).max(2);
            let (gl, g) = (s.gamma(k - 1), s.gamma(k));
            gl * (1.0 - g) / ((1.0 - gl) * g) - 1.0
        })
        .collect();
    let ws: f64 = w.iter().sum();
    let want: f64 = (0..2).map(|r| (0..4).map(|b| w[b] * c.mse[r][b]).sum::<f64>() / ws).sum();
    let (l, _) = c.d.loss(&c.preds, &c.nb).unwrap();
    assert!(
        (l.value().item().unwrap() - want).abs() < 1e-9 * want.abs(),
        "{} vs {want}",
        l.value().item().unwrap()
    );
}

fn field_of(e: Error) -> String {
    match e {
        Error::Config(mdm::ConfigError::Invalid { field, .. }) => field,
        other => panic!("unexpected error {other}"),
    }
}

#[test]
fn config_validation_names_the_field() {
    let bad = |c: DiffusionConfig, n: usize| field_of(c.validate(n).unwrap_err());
    let d = DiffusionConfig::default;
    assert_eq!(bad(DiffusionConfig { num_steps: 1, ..d() }, 2), "diffusion.num_steps");
    assert_eq!(bad(DiffusionConfig { shift_power: f64::NAN, ..d() }, 2), "diffusion.shift_power");
    assert_eq!(
        bad(DiffusionConfig { multi_res_weights: vec![1.0], ..d() }, 2),
        "diffusion.multi_res_weights"
    );
    assert_eq!(
        bad(DiffusionConfig { multi_res_weights: vec![1.0, -1.0], ..d() }, 2),
        "diffusion.multi_res_weights[1]"
    );
    assert_eq!(
        bad(DiffusionConfig { multi_res_weights: vec![1.0, 1.0], use_double_loss: false, ..d() }, 2),
        "diffusion.multi_res_weights"
    );
    assert_eq!(bad(DiffusionConfig { mixed_ratio: vec![0.0, 1.0], ..d() }, 2), "diffusion.mixed_ratio[0]");
    assert_eq!(bad(DiffusionConfig { cond_drop_prob: 1.5, ..d() }, 2), "diffusion.cond_drop_prob");
    assert_eq!(field_of(Diffusion::new(d(), &[2, 4]).unwrap_err()), "diffusion.scales[0]");
    assert_eq!(field_of(Diffusion::new(d(), &[1, 3, 4]).unwrap_err()), "diffusion.scales[2]");
    d().validate(3).unwrap();
}

#[test]
fn config_toml_round_trip_and_unknown_fields() {
    #[derive(serde::Deserialize)]
    struct W {
        diffusion: DiffusionConfig,
    }
    let w: W = toml::from_str("[diffusion]\nschedule = \"cosine\"\nnum_steps = 32\n").unwrap();
    assert_eq!(w.diffusion.schedule, ScheduleKind::Cosine);
    assert_eq!(w.diffusion.num_steps, 32);
    assert!(w.diffusion.schedule_shifted && w.diffusion.use_double_loss);
    assert_eq!(w.diffusion.cond_drop_prob, 0.1);
    let e = toml::from_str::<W>("[diffusion]\nnum_step = 32\n").err().unwrap().to_string();
    assert!(e.contains("num_step"), "{e}");
}

#[test]
fn cond_drop_mask_has_the_configured_rate() {
    let mk = |p: f64| {
        Diffusion::new(DiffusionConfig { cond_drop_prob: p, ..Default::default() }, &[1, 2]).unwrap()
    };
    assert!(mk(0.0).cond_drop_mask(100, 1, 0).unwrap().iter().all(|&x| !x));
    assert!(mk(1.0).cond_drop_mask(100, 1, 0).unwrap().iter().all(|&x| x));
    let d = mk(0.1);
    let m = d.cond_drop_mask(10_000, 3, 0).unwrap();
    assert_eq!(m, d.cond_drop_mask(10_000, 3, 0).unwrap());
    // Binomial(10 000, 0.1): sd 30; allow 5 sd.
    let n = m.iter().filter(|&&x| x).count() as f64;
    assert!((n - 1000.0).abs() < 150.0, "{n} dropped");
}
