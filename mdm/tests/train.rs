//! Training-loop tests on a tiny 2-level model (16² outer around an 8² inner UNet, batch 4) and the
//! procedural shapes data: loss decrease, deterministic sampling, exact resume across a phase
//! switch, NaN skipping, config errors and the zero-init nesting property at a phase switch.

mod common;

use autograd::Var;
use common::tiny_run_config as config_text;
use mdm::data::{DataConfig, open};
use mdm::run_config::RunConfig;
use mdm::train::sample::{Request, draw, load, sampler_config};
use mdm::train::{TrainError, TrainOptions, grow_into, train};
use mdm::{Conditioning, Mdm, Micros};
use nn::Module;
use nn::checkpoint::state_dict;
use std::path::PathBuf;
use tensor::{DType, Tensor};

fn cfg(train_extra: &str, phases: &str) -> (RunConfig, String) {
    let text = config_text(train_extra, phases);
    (RunConfig::from_toml_str(&text, "test").expect("valid test config"), text)
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mdm-train-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn opts(out: PathBuf) -> TrainOptions {
    TrainOptions { out_dir: out, ..Default::default() }
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// 30 steps lower the loss of BOTH resolutions: the mean of the last 10 per-resolution losses is
/// below 0.8× the mean of the first 5 (the start is ~1 for an untrained v/ε predictor; the margin
/// leaves room for the noise of random timesteps). Also: sampling from the run is deterministic for
/// a fixed seed and differs for another seed, and the final grid exists.
#[test]
fn short_run_lowers_loss_and_samples_deterministically() {
    let (c, text) = cfg("", "");
    let data = open(&c.data).unwrap();
    let out = tmp("loss");
    let rep = train(&c, &text, data.as_ref(), &TrainOptions { samples: true, ..opts(out.clone()) }).unwrap();
    assert_eq!(rep.step, 30);
    assert_eq!(rep.nan_skipped, 0);
    for r in 0..2 {
        let per: Vec<f64> = rep.per_resolution.iter().map(|p| p[r]).collect();
        let (first, last) = (mean(&per[..5]), mean(&per[20..]));
        assert!(last < 0.8 * first, "resolution {r}: loss {first:.4} → {last:.4} did not fall");
    }
    assert!(out.join("samples/final.png").exists());
    assert!(out.join("metrics.jsonl").exists());
    let metrics = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().count(), 6, "log_every = 5 over 30 steps");

    let loaded = load(&out.join("checkpoint.safetensors")).unwrap();
    let req = Request::Classes(vec![1, 5]);
    let run = |seed| {
        let sc = sampler_config(&loaded.config.sample, seed, false);
        autograd::no_grad(|| draw(&loaded.model, &loaded.diffusion, &req, 2, loaded.image_size, &sc)).unwrap()
    };
    let (a, b, other) = (run(3), run(3), run(4));
    assert_eq!(a.images.len(), 2);
    assert_eq!(a.images[0].shape(), &[2, 3, 16, 16]);
    assert_eq!(a.images[1].shape(), &[2, 3, 8, 8]);
    for (x, y) in a.images.iter().zip(&b.images) {
        assert_eq!(x.to_vec_f64(), y.to_vec_f64(), "same seed must give the same images");
    }
    assert_ne!(a.images[0].to_vec_f64(), other.images[0].to_vec_f64(), "another seed must differ");
    let _ = std::fs::remove_dir_all(&out);
}

/// 12 steps straight vs 6 steps, checkpoint, resume, 6 more: identical per-step losses (bitwise:
/// every random draw is keyed by (seed, step) and the optimizer/EMA state is restored exactly).
/// The run crosses a phase switch (1 level for 4 steps, then 2) and uses 2 accumulated
/// micro-batches.
#[test]
fn resume_is_exact_across_a_phase_switch() {
    let phases = "[[train.phases]]\nsteps = 4\nlevels = 1\n[[train.phases]]\nsteps = 8\nlevels = 2\n";
    let (c, text) = cfg("grad_accumulation = 2", phases);
    let mut c = c;
    c.train.steps = 12;
    let data = open(&c.data).unwrap();
    let straight_dir = tmp("straight");
    let straight = train(&c, &text, data.as_ref(), &opts(straight_dir.clone())).unwrap();
    let out = tmp("resumed");
    let first =
        train(&c, &text, data.as_ref(), &TrainOptions { stop_after: Some(6), ..opts(out.clone()) }).unwrap();
    assert!(first.interrupted);
    assert_eq!(first.step, 6);
    // a fresh run into a folder that holds a checkpoint is refused (no silent overwrite)
    let again = train(&c, &text, data.as_ref(), &opts(out.clone()));
    let msg = match again {
        Ok(_) => panic!("overwriting a checkpoint must fail"),
        Err(e) => e.to_string(),
    };
    assert!(msg.contains("--resume") && msg.contains("checkpoint.safetensors"), "{msg}");
    let second =
        train(&c, &text, data.as_ref(), &TrainOptions { resume: true, ..opts(out.clone()) }).unwrap();
    assert_eq!(second.step, 12);
    assert_eq!(second.levels, 2);
    let resumed: Vec<(u64, f64)> = first.losses.iter().chain(&second.losses).copied().collect();
    assert_eq!(resumed.len(), 12);
    for ((sa, la), (sb, lb)) in straight.losses.iter().zip(&resumed) {
        assert_eq!(sa, sb);
        assert_eq!(la.to_bits(), lb.to_bits(), "step {sa}: {la} vs {lb}");
    }
    // The EMA (with its per-parameter ages) resumes exactly too: same shadow bits as the straight run.
    let read =
        |d: PathBuf| nn::checkpoint::TrainingCheckpoint::load(d.join("checkpoint.safetensors")).unwrap();
    let (ck_straight, ck_resumed) = (read(straight_dir.clone()), read(out.clone()));
    let (ea, eb) = (ck_straight.ema.unwrap(), ck_resumed.ema.unwrap());
    assert_eq!(ea.len(), eb.len());
    for ((na, ta), (nb, tb)) in ea.iter().zip(&eb) {
        assert_eq!(na, nb);
        assert_eq!(ta.to_vec_f64(), tb.to_vec_f64(), "EMA of `{na}` differs after resume");
    }
    // The level added at step 4 has its own EMA age (8 updates); the inner level's is the counter.
    let ages: Vec<(String, f64)> = ck_resumed
        .optimizer
        .iter()
        .filter_map(|(n, t)| Some((n.strip_prefix("ema_age.")?.to_string(), t.to_vec_f64()[0])))
        .collect();
    assert!(!ages.is_empty());
    assert!(ages.iter().all(|(n, a)| !n.starts_with("inner_unet.") && *a == 8.0), "{ages:?}");
    let n_outer = ea.iter().filter(|(n, _)| !n.starts_with("inner_unet.")).count();
    assert_eq!(ages.len(), n_outer, "every parameter of the added level has an age");
    let _ = std::fs::remove_dir_all(&out);
    let _ = std::fs::remove_dir_all(&straight_dir);
}

/// With the ramp (the default) the EMA of a level added by a phase follows its trained weights at
/// once; with `ema_ramp = false` (ml-mdm) and decay 0.999 it is still ~99 % its initial weights
/// after 6 updates. Measured on the added level's parameters: |ema − model| / |model − init|.
#[test]
fn the_ema_of_an_added_level_restarts_its_ramp() {
    let phases = "[[train.phases]]\nsteps = 3\nlevels = 1\n[[train.phases]]\nsteps = 6\nlevels = 2\n";
    let lag = |ramp: bool| {
        let (mut c, text) = cfg(&format!("ema_ramp = {ramp}"), phases);
        c.train.steps = 9;
        c.train.ema_decay = 0.999;
        let out = tmp(&format!("ramp-{ramp}"));
        let data = open(&c.data).unwrap();
        train(&c, &text, data.as_ref(), &opts(out.clone())).unwrap();
        let ck = nn::checkpoint::TrainingCheckpoint::load(out.join("checkpoint.safetensors")).unwrap();
        let init = state_dict(&Mdm::new(&c.model_for(2), c.train.seed).unwrap());
        let by_name = |v: Vec<(String, Tensor)>| v.into_iter().collect::<std::collections::BTreeMap<_, _>>();
        let (model, ema) = (by_name(ck.model), by_name(ck.ema.unwrap()));
        let (mut num, mut den) = (0.0, 0.0);
        for (n, i) in &init {
            if n.starts_with("inner_unet.") {
                continue;
            }
            let (m, e) = (&model[n], &ema[n]);
            for ((m, e), i) in m.to_vec_f64().iter().zip(e.to_vec_f64()).zip(i.to_vec_f64()) {
                num += (e - m).powi(2);
                den += (m - i).powi(2);
            }
        }
        let _ = std::fs::remove_dir_all(&out);
        (num / den).sqrt()
    };
    let (with, without) = (lag(true), lag(false));
    assert!(with < 0.5, "with the ramp the added level's EMA lags by {with:.3}");
    assert!(without > 0.9, "without the ramp (ml-mdm) it lags by {without:.3}");
}

/// Non-finite losses are skipped and counted; K = 3 in a row stop the run with the anomaly hint.
#[test]
fn nan_steps_are_skipped_then_stop_the_run() {
    let (mut c, text) = cfg("", "");
    c.train.steps = 8;
    let data = open(&c.data).unwrap();
    let rep =
        train(&c, &text, data.as_ref(), &TrainOptions { nan_at: vec![2, 3], ..opts(tmp("nan1")) }).unwrap();
    assert_eq!(rep.step, 8);
    assert_eq!(rep.nan_skipped, 2);
    assert!(rep.losses[2].1.is_nan() && rep.losses[3].1.is_nan());
    assert!(rep.losses[4].1.is_finite());

    // An absurd learning rate blows the weights up after the first update: every later loss is
    // non-finite and the third in a row stops the run.
    c.train.lr = 1e30;
    c.train.warmup_steps = 0;
    let err = train(&c, &text, data.as_ref(), &opts(tmp("nan2"))).unwrap_err();
    match &err {
        TrainError::NonFinite { count, .. } => assert_eq!(*count, 3),
        other => panic!("expected NonFinite, got {other}"),
    }
    assert!(err.to_string().contains("--detect-anomaly"), "{err}");
    let _ = std::fs::remove_dir_all(tmp("nan1"));
    let _ = std::fs::remove_dir_all(tmp("nan2"));
}

/// Malformed run configs name the field.
#[test]
fn malformed_configs_name_the_field() {
    let err = |extra: &str, phases: &str| {
        RunConfig::from_toml_str(&config_text(extra, phases), "bad.toml").unwrap_err().to_string()
    };
    let e = err("batch_szie = 3", "");
    assert!(e.contains("batch_szie") && e.contains("bad.toml"), "{e}");
    let e = err("", "[[train.phases]]\nsteps = 5\nlevels = 3\n");
    assert!(e.contains("train.phases[0].levels") && e.contains("1..=2"), "{e}");
    let e = err("", "[[train.phases]]\nsteps = 5\nlevels = 2\n[[train.phases]]\nsteps = 5\nlevels = 1\n");
    assert!(e.contains("train.phases[1].levels"), "{e}");
    let text = config_text("", "").replace("batch_size = 4", "batch_size = 0");
    let e = RunConfig::from_toml_str(&text, "bad.toml").unwrap_err().to_string();
    assert!(e.contains("train.batch_size"), "{e}");
    let text = config_text("", "").replace("image_size = 16", "image_size = 6");
    let e = RunConfig::from_toml_str(&text, "bad.toml").unwrap_err().to_string();
    assert!(e.contains("train.image_size"), "{e}");
}

/// `train.min_lr` switches to warmup + half-cosine decay over the whole run (across phases):
/// hand-computed rates (exact formula, 1e-12); constant after the warmup without it; a bad
/// `min_lr` is named.
#[test]
fn min_lr_gives_a_cosine_decay() {
    use mdm::train::lr_at;
    let (lr, min, pi) = (2e-3, 1e-4, std::f64::consts::PI);
    let cos = |progress: f64| min + (lr - min) * 0.5 * (1.0 + (pi * progress).cos());
    // Phases of 10 and 20 steps, warmup 3, 30 steps: one cosine over steps 3..30.
    let phases = "[[train.phases]]\nsteps = 10\nlevels = 1\n[[train.phases]]\nsteps = 20\nlevels = 2\n";
    let (c, _) = cfg("min_lr = 1e-4", phases);
    assert!((lr_at(&c, 0) - lr / 3.0).abs() < 1e-12);
    assert!((lr_at(&c, 3) - lr).abs() < 1e-12);
    assert!((lr_at(&c, 10) - cos(7.0 / 27.0)).abs() < 1e-12);
    assert!((lr_at(&c, 16) - cos(13.0 / 27.0)).abs() < 1e-12);
    assert!((lr_at(&c, 29) - cos(26.0 / 27.0)).abs() < 1e-12);
    assert!((lr_at(&c, 30) - min).abs() < 1e-12);
    // Without min_lr: constant after the warmup.
    let (c, _) = cfg("", phases);
    assert_eq!(lr_at(&c, 10), lr);
    assert_eq!(lr_at(&c, 29), lr);
    let long_warmup = config_text("min_lr = 1e-4", "").replace("warmup_steps = 3", "warmup_steps = 30");
    for text in [config_text("min_lr = 3e-3", ""), config_text("min_lr = -1.0", ""), long_warmup] {
        let e = RunConfig::from_toml_str(&text, "bad.toml").unwrap_err().to_string();
        assert!(e.contains("train.min_lr"), "{e}");
    }
}

/// Growing a trained-looking 1-level model by the outer level keeps its prediction: the new level's
/// zero-initialised adapters leave the inner output unchanged (exact up to f32 rounding, 1e-6).
/// Loading a mis-shaped inner checkpoint fails loudly and names the key.
#[test]
fn phase_switch_keeps_the_inner_prediction() {
    let (c, _) = cfg("", "");
    let mut small = Mdm::new(&c.model_for(1), 11).unwrap();
    // Perturb every weight (zero-initialised output heads included) so the prediction is not 0.
    let mut k = 0;
    small.visit_mut("", &mut |_, p| {
        let v = p.value();
        let noise = Tensor::randn(v.shape(), 0.0, 0.05, 99, k << 24, v.dtype()).unwrap();
        p.set_value(v.add(&noise).unwrap()).unwrap();
        k += 1;
    });
    let mut big = Mdm::new(&c.model_for(2), 12).unwrap();
    grow_into(&mut big, 2, &state_dict(&small), 1, "small").unwrap();
    let x16 = Tensor::randn(&[2, 3, 16, 16], 0.0, 1.0, 1, 0, DType::F32).unwrap();
    let x8 = Tensor::randn(&[2, 3, 8, 8], 0.0, 1.0, 1, 1, DType::F32).unwrap();
    let times = Tensor::from_vec(vec![100.0f32, 700.0], &[2]).unwrap();
    let labels = Tensor::from_vec(vec![3i64, 16], &[2]).unwrap();
    let cond = Some(Conditioning::Class { labels: &labels });
    let m = Micros::new();
    let p_small = small.forward(&[Var::constant(x8.clone())], &times, cond, &m).unwrap();
    let p_big = big.forward(&[Var::constant(x16), Var::constant(x8)], &times, cond, &m).unwrap();
    let (a, b) = (p_small[0].value().to_vec_f64(), p_big[1].value().to_vec_f64());
    assert!(a.iter().map(|x| x.abs()).fold(0.0, f64::max) > 1e-3, "the inner prediction is trivially 0");
    let diff = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
    assert!(diff <= 1e-6, "inner prediction changed by {diff}");

    // A mis-shaped key is refused.
    let mut bad = state_dict(&small);
    bad[0].1 = Tensor::zeros(&[1], DType::F32);
    let e = grow_into(&mut big, 2, &bad, 1, "bad.safetensors").unwrap_err().to_string();
    assert!(e.contains(&format!("inner_unet.{}", bad[0].0)) && e.contains("bad.safetensors"), "{e}");
}

/// The data spec of the CLI and the run config agree (shapes is the test source).
#[test]
fn data_config_is_shapes() {
    let (c, _) = cfg("", "");
    assert_eq!(c.data, DataConfig::Shapes { seed: 0 });
    assert_eq!(c.scales_for(2), vec![1, 2]);
    assert_eq!(c.image_size_for(1), 8);
}

/// The shipped presets parse and validate (2 levels, class-conditional, phases ending at all levels).
#[test]
fn presets_are_valid() {
    for name in ["quickstart", "fashion"] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../configs/{name}.toml"));
        let (c, _) = RunConfig::from_file(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(c.num_levels(), 2, "{name}");
        assert!(c.model.num_classes > 0, "{name}");
        assert_eq!(c.levels_at(c.train.steps - 1), 2, "{name}");
        assert_eq!(c.image_size_for(1), 16, "{name}");
    }
}

/// A text-conditioned model (no classes, d_lm > 0) trains on the shapes captions through the
/// hashing encoder and samples from a prompt.
#[test]
fn text_conditioned_run_trains_and_samples_from_a_prompt() {
    let text = config_text("", "").replace("num_classes = 16\n", "");
    let mut c = RunConfig::from_toml_str(&text, "text").unwrap();
    c.train.steps = 4;
    let data = open(&c.data).unwrap();
    let out = tmp("text");
    let rep = train(&c, &text, data.as_ref(), &opts(out.clone())).unwrap();
    assert!(rep.losses.iter().all(|l| l.1.is_finite()));
    let loaded = load(&out.join("checkpoint.safetensors")).unwrap();
    let sc = sampler_config(&loaded.config.sample, 0, false);
    let req = Request::Prompt("a red circle".into());
    let s = autograd::no_grad(|| draw(&loaded.model, &loaded.diffusion, &req, 2, 16, &sc)).unwrap();
    assert_eq!(s.images[0].shape(), &[2, 3, 16, 16]);
    assert!(s.images[0].to_vec_f64().iter().all(|x| x.is_finite()));
    // A class request on a text model is refused.
    let e = draw(&loaded.model, &loaded.diffusion, &Request::Classes(vec![1]), 1, 16, &sc).err().unwrap();
    assert!(e.to_string().contains("not class-conditional"), "{e}");
    let _ = std::fs::remove_dir_all(&out);
}

/// `--init-from`: a 1-level run's checkpoint initialises the inner level of a 2-level run (the
/// name mapping itself is checked in `phase_switch_keeps_the_inner_prediction`); a checkpoint that
/// is not smaller is refused.
#[test]
fn init_from_a_smaller_checkpoint() {
    let (mut small, text) = cfg("", "[[train.phases]]\nsteps = 3\nlevels = 1\n");
    small.train.steps = 3;
    let data = open(&small.data).unwrap();
    let a = tmp("init-a");
    train(&small, &text, data.as_ref(), &opts(a.clone())).unwrap();
    let ck = a.join("checkpoint.safetensors");
    let (mut big, big_text) = cfg("", "");
    big.train.steps = 2;
    let b = tmp("init-b");
    let rep = train(
        &big,
        &big_text,
        data.as_ref(),
        &TrainOptions { init_from: Some(ck.clone()), ..opts(b.clone()) },
    )
    .unwrap();
    assert_eq!((rep.step, rep.levels), (2, 2));
    // Growing again from the 2-level checkpoint is refused.
    let e = train(
        &big,
        &big_text,
        data.as_ref(),
        &TrainOptions { init_from: Some(b.join("checkpoint.safetensors")), ..opts(tmp("init-c")) },
    )
    .unwrap_err();
    assert!(e.to_string().contains("smaller model"), "{e}");
    for d in [a, b, tmp("init-c")] {
        let _ = std::fs::remove_dir_all(d);
    }
}
