//! The training loop.

use super::checkpoint::{CheckpointInfo, pack_optim, read_checkpoint};
use super::metrics::{MetricsLog, Rate, Record, progress_line};
use super::phases::{grow_into, inner_prefix};
use super::sample::{default_request, draw, sampler_config, text_encoder};
use super::{Result, TrainError, io_err};
use crate::data::{Dataset, make_batch};
use crate::diffusion::Diffusion;
use crate::diffusion::NoisedBatch;
use crate::image_io::save_grid;
use crate::run_config::{Precision, RunConfig};
use crate::{Conditioning, Mdm, Micros};
use autograd::Var;
use nn::Module;
use nn::checkpoint::{TrainingCheckpoint, load_state_dict, state_dict};
use nn::optim::{AdamW, AdamWConfig, Ema, LrSchedule, OptimState, Optimizer, clip_grad_norm, grad_norm};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use tensor::{DType, Tensor};

/// Key mixed into the seed of the class/caption dropout stream (the noise uses the plain seed).
const DROP_KEY: u64 = 0xC1A5_5D80_9000_0001;

/// Philox elements reserved for the noise of one micro-batch.
const NOISE_WINDOW: u64 = 1 << 32;

/// How to run (everything not in the [`RunConfig`]).
#[derive(Clone, Debug, Default)]
pub struct TrainOptions {
    /// Output folder (checkpoint, metrics, samples).
    pub out_dir: PathBuf,
    /// Continue from `OUT/checkpoint.safetensors`.
    pub resume: bool,
    /// Initialise the inner levels from a checkpoint of a smaller (fewer-level) model.
    pub init_from: Option<PathBuf>,
    /// Wrap every step in autograd anomaly mode.
    pub detect_anomaly: bool,
    /// Print the progress line on stderr.
    pub progress: bool,
    /// Write sample grids (every `sample_every` steps and `final.png`).
    pub samples: bool,
    /// Set (e.g. by Ctrl-C) to checkpoint at the end of the current step and return.
    pub stop: Option<Arc<AtomicBool>>,
    /// Stop (with a checkpoint) once this many steps are done, as an interruption would.
    pub stop_after: Option<u64>,
    /// Test hook: the losses of these steps are replaced by NaN.
    pub nan_at: Vec<u64>,
}

/// What a run did.
#[derive(Clone, Debug, Default)]
pub struct TrainReport {
    /// (step, loss) of every step run by this call (NaN for skipped steps).
    pub losses: Vec<(u64, f64)>,
    /// The per-resolution losses of those steps, high → low.
    pub per_resolution: Vec<Vec<f64>>,
    /// Steps skipped for a non-finite loss (whole run, including before a resume).
    pub nan_skipped: u64,
    /// Steps done.
    pub step: u64,
    /// Active levels at the end.
    pub levels: usize,
    /// Optimizer steps per second of this call.
    pub steps_per_s: f64,
    /// Stopped early (Ctrl-C / `stop_after`).
    pub interrupted: bool,
    /// The checkpoint written last.
    pub checkpoint: PathBuf,
}

/// Model, EMA and optimizer of the current phase.
struct State {
    levels: usize,
    model: Mdm,
    ema: Ema,
    opt: AdamW,
    diffusion: Diffusion,
    size: usize,
}

fn adamw(cfg: &RunConfig) -> Result<AdamW> {
    Ok(AdamW::new(AdamWConfig {
        lr: cfg.train.lr,
        weight_decay: cfg.train.weight_decay,
        ..AdamWConfig::default()
    })?)
}

/// The learning rate of the update with index `step`: linear warmup, then constant (ml-mdm), or,
/// with `train.min_lr`, half a cosine from `lr` down to `min_lr` at `train.steps` (over the whole
/// run, phases included).
pub fn lr_at(cfg: &RunConfig, step: u64) -> f64 {
    let t = &cfg.train;
    match t.min_lr {
        None => LrSchedule::WarmupConstant { lr: t.lr, warmup_steps: t.warmup_steps }.lr_at(step),
        Some(min_lr) => {
            LrSchedule::WarmupCosine { lr: t.lr, min_lr, warmup_steps: t.warmup_steps, total_steps: t.steps }
                .lr_at(step)
        }
    }
}

/// Prefix of the parameters frozen at `step` (the inherited levels of a `freeze_inner` phase).
fn frozen_prefix(cfg: &RunConfig, step: u64) -> Option<String> {
    let (i, p) = cfg.phase_at(step)?;
    (p.freeze_inner && i > 0).then(|| inner_prefix(p.levels - cfg.train.phases[i - 1].levels))
}

fn apply_freeze(model: &mut Mdm, prefix: Option<&str>) {
    model.visit_mut("", &mut |n, p| match prefix {
        Some(pre) if !pre.is_empty() && n.starts_with(pre) => p.freeze(),
        _ => p.unfreeze(),
    });
}

impl State {
    fn new(cfg: &RunConfig, levels: usize, model: Mdm, ema_model: &Mdm) -> Result<Self> {
        Ok(Self {
            levels,
            ema: Ema::new(ema_model, cfg.train.ema_decay)?.with_ramp(cfg.train.ema_ramp),
            model,
            opt: adamw(cfg)?,
            diffusion: Diffusion::new(cfg.diffusion_for(levels), &cfg.scales_for(levels))?,
            size: cfg.image_size_for(levels),
        })
    }

    /// A fresh model with the given levels.
    fn fresh(cfg: &RunConfig, levels: usize) -> Result<Self> {
        let model = Mdm::new(&cfg.model_for(levels), cfg.train.seed)?;
        Self::new(cfg, levels, model.clone_deep()?, &model)
    }

    /// The model grown to `levels`, inner weights (and EMA) from `small` (a `small_levels` model).
    fn grown(
        cfg: &RunConfig,
        levels: usize,
        small: &[(String, Tensor)],
        small_ema: &[(String, Tensor)],
        small_levels: usize,
        what: &str,
    ) -> Result<Self> {
        let mut model = Mdm::new(&cfg.model_for(levels), cfg.train.seed)?;
        grow_into(&mut model, levels, small, small_levels, what)?;
        let mut ema_model = Mdm::new(&cfg.model_for(levels), cfg.train.seed)?;
        grow_into(&mut ema_model, levels, small_ema, small_levels, what)?;
        Self::new(cfg, levels, model, &ema_model)
    }

    fn ema_model(&self, cfg: &RunConfig) -> Result<Mdm> {
        let mut m = Mdm::new(&cfg.model_for(self.levels), cfg.train.seed)?;
        self.ema.copy_to(&mut m)?;
        m.set_training(false);
        Ok(m)
    }
}

/// Deep copy of a model (parameters share nothing with the original).
trait CloneDeep: Sized {
    fn clone_deep(&self) -> Result<Self>;
}
impl CloneDeep for Mdm {
    fn clone_deep(&self) -> Result<Self> {
        let mut m = Mdm::new(&self.config, 0)?;
        load_state_dict(&mut m, &state_dict(self), true)?;
        Ok(m)
    }
}

/// Trains `cfg` on `data`, writing into `opts.out_dir`. `config_text` is stored verbatim in the
/// checkpoint (what `mdm sample` rebuilds the model from).
pub fn train(
    cfg: &RunConfig,
    config_text: &str,
    data: &dyn Dataset,
    opts: &TrainOptions,
) -> Result<TrainReport> {
    cfg.validate()?;
    let out = &opts.out_dir;
    std::fs::create_dir_all(out.join("samples")).map_err(|e| io_err(out, e))?;
    let ckpt_path = out.join("checkpoint.safetensors");
    if !opts.resume && ckpt_path.exists() {
        // never overwrite a trained checkpoint by accident
        return Err(TrainError::Checkpoint {
            path: ckpt_path.display().to_string(),
            msg: "a checkpoint of an earlier run is already there: pass --resume to continue it, or \
                  --out to train into another folder (delete the folder to start over)"
                .into(),
        });
    }
    let t = &cfg.train;
    let (mut state, mut step, mut nan_streak, mut nan_total) = if opts.resume {
        let info = read_checkpoint(&ckpt_path)?;
        (resume_state(cfg, &info, &ckpt_path)?, info.ckpt.step, info.nan_streak, info.nan_total)
    } else if let Some(init) = &opts.init_from {
        let info = read_checkpoint(init)?;
        let levels = cfg.levels_at(0);
        if info.levels >= levels {
            return Err(TrainError::Checkpoint {
                path: init.display().to_string(),
                msg: format!(
                    "--init-from needs a smaller model: it has {} levels, the first phase trains {levels}",
                    info.levels
                ),
            });
        }
        let ema = info.ckpt.ema.clone().unwrap_or_else(|| info.ckpt.model.clone());
        let what = init.display().to_string();
        let mut state = State::grown(cfg, levels, &info.ckpt.model, &ema, info.levels, &what)?;
        // The loaded inner levels count as averaged for as long as the checkpoint's EMA was; the
        // new levels start their warmup / ramp (this run's update counter starts at 0).
        let ages = ema_state(&info, ema.clone()).map(|s| inherited_ages(&s)).unwrap_or_default();
        let prefix = inner_prefix(levels - info.levels);
        state.ema.inherit_ages(&ages, 0, &prefix)?;
        (state, 0, 0, 0)
    } else {
        (State::fresh(cfg, cfg.levels_at(0))?, 0, 0, 0)
    };
    apply_freeze(&mut state.model, frozen_prefix(cfg, step).as_deref());
    let mut log = MetricsLog::open(&out.join("metrics.jsonl"), opts.resume)?;
    let mut report = TrainReport { checkpoint: ckpt_path.clone(), ..Default::default() };
    let started = Instant::now();
    let first = step;
    let mut rate = Rate::new(step);
    let mut captions_seen: Vec<String> = vec![];
    while step < t.steps {
        let levels = cfg.levels_at(step);
        if levels != state.levels {
            let small = state_dict(&state.model);
            let small_ema = state.ema.shadow().to_vec();
            let (old_ema, old_levels) = (state.ema.clone(), state.levels);
            state = State::grown(cfg, levels, &small, &small_ema, state.levels, "the previous phase")?;
            // The inherited levels keep their EMA age; the added level's warmup / ramp starts now.
            state.ema.inherit(&old_ema, &inner_prefix(levels - old_levels))?;
            apply_freeze(&mut state.model, frozen_prefix(cfg, step).as_deref());
        }
        let lr = lr_at(cfg, step);
        state.opt.set_lr(lr)?;
        let mut body = || one_step(cfg, &mut state, data, step, opts, &mut captions_seen);
        let (loss, per) = if opts.detect_anomaly { autograd::detect_anomaly(body) } else { body() }?;
        let mut gnorm = f64::NAN;
        let finite = loss.is_finite() && {
            gnorm = if t.grad_clip > 0.0 {
                clip_grad_norm(&state.model, t.grad_clip)?
            } else {
                grad_norm(&state.model)
            };
            gnorm.is_finite()
        };
        if finite {
            state.opt.step(&mut state.model)?;
            state.ema.update(&state.model)?;
            nan_streak = 0;
        } else {
            nan_streak += 1;
            nan_total += 1;
        }
        state.model.zero_grad();
        step += 1;
        report.losses.push((step - 1, if finite { loss } else { f64::NAN }));
        report.per_resolution.push(per.clone());
        if nan_streak >= t.max_nan_steps {
            return Err(TrainError::NonFinite { count: nan_streak, step: step - 1, total: nan_total });
        }
        rate.tick();
        if opts.progress {
            eprint!("\r{}\x1b[K", progress_line(step, t.steps, rate.recent(), loss, &per));
        }
        if step % t.log_every == 0 || step == t.steps {
            log.write(&Record {
                step,
                loss,
                per_resolution: &per,
                grad_norm: gnorm,
                lr,
                steps_per_s: rate.interval(step),
                elapsed_s: rate.elapsed(),
                levels: state.levels,
                nan_skipped: nan_total,
            })?;
        }
        let stop =
            opts.stop.as_ref().is_some_and(|f| f.load(Ordering::SeqCst)) || opts.stop_after == Some(step);
        if stop || (t.checkpoint_every > 0 && step % t.checkpoint_every == 0) || step == t.steps {
            save(cfg, config_text, &state, step, nan_streak, nan_total, &ckpt_path)?;
        }
        if opts.samples && t.sample_every > 0 && step % t.sample_every == 0 && step < t.steps {
            write_grid(cfg, &state, &captions_seen, &out.join(format!("samples/step_{step:06}.png")))?;
        }
        if stop {
            report.interrupted = true;
            break;
        }
    }
    if opts.progress {
        eprintln!();
    }
    if opts.samples && !report.interrupted {
        write_grid(cfg, &state, &captions_seen, &out.join("samples/final.png"))?;
    }
    report.step = step;
    report.levels = state.levels;
    report.nan_skipped = nan_total;
    report.steps_per_s = (step - first) as f64 / started.elapsed().as_secs_f64().max(1e-9);
    Ok(report)
}

/// The EMA state of a checkpoint: `shadow` plus the `ema_counter` / `ema_age.<name>` scalars
/// (None without `ema_counter`).
fn ema_state(info: &CheckpointInfo, shadow: Vec<(String, Tensor)>) -> Option<OptimState> {
    let scalars: Vec<(String, f64)> = info
        .ckpt
        .optimizer
        .iter()
        .filter_map(|(n, t)| Some((n.strip_prefix("ema_")?.to_string(), t.to_vec_f64().first().copied()?)))
        .collect();
    scalars.iter().any(|(k, _)| k == "counter").then_some(OptimState { tensors: shadow, scalars })
}

/// The age of every parameter of an exported EMA state (`age.<name>`, else `counter`).
fn inherited_ages(st: &OptimState) -> Vec<(String, u64)> {
    let get = |k: &str| st.scalars.iter().find(|(n, _)| n == k).map(|(_, v)| *v as u64);
    let counter = get("counter").unwrap_or(0);
    st.tensors.iter().map(|(n, _)| (n.clone(), get(&format!("age.{n}")).unwrap_or(counter))).collect()
}

fn resume_state(cfg: &RunConfig, info: &CheckpointInfo, path: &Path) -> Result<State> {
    let err = |msg: String| TrainError::Checkpoint { path: path.display().to_string(), msg };
    if info.seed != cfg.train.seed {
        return Err(err(format!("was written with seed {}, the config has {}", info.seed, cfg.train.seed)));
    }
    if info.levels > cfg.num_levels() {
        return Err(err(format!("has {} levels, the config's model {}", info.levels, cfg.num_levels())));
    }
    let mut state = State::fresh(cfg, info.levels)?;
    load_state_dict(&mut state.model, &info.ckpt.model, true)?;
    let shadow = info.ckpt.ema.clone().ok_or_else(|| err("has no EMA weights".into()))?;
    let ema = ema_state(info, shadow).ok_or_else(|| err("has no `optim.ema_counter`".into()))?;
    state.ema.load_state(&ema)?;
    state.opt.load_state(&info.optim_state())?;
    Ok(state)
}

fn save(
    cfg: &RunConfig,
    config_text: &str,
    state: &State,
    step: u64,
    nan_streak: u64,
    nan_total: u64,
    path: &Path,
) -> Result<()> {
    let mut optimizer = pack_optim(&state.opt.state());
    // `ema_counter` and `ema_age.<name>` (the EMA's scalar state, see `Ema::state`).
    for (k, v) in state.ema.state().scalars {
        optimizer.push((format!("ema_{k}"), Tensor::scalar(v)));
    }
    let ck = TrainingCheckpoint {
        model: state_dict(&state.model),
        ema: Some(state.ema.shadow().to_vec()),
        optimizer,
        step,
        rng_state: vec![cfg.train.seed, step, state.levels as u64, nan_streak, nan_total],
        config: config_text.to_string(),
    };
    ck.save(path)?;
    Ok(())
}

fn write_grid(cfg: &RunConfig, state: &State, captions: &[String], path: &Path) -> Result<()> {
    let model = state.ema_model(cfg)?;
    let request = default_request(&model, captions);
    let batch = cfg.sample.grid_size;
    let sc = sampler_config(&cfg.sample, cfg.sample.seed, false);
    let out = autograd::no_grad(|| draw(&model, &state.diffusion, &request, batch, state.size, &sc))?;
    save_grid(path, &out.images).map_err(|e| io_err(path, e))
}

/// The model's predictions and the diffusion loss of one micro-batch. With `precision = bf16` both
/// run under [`autograd::autocast`]; the predictions (bf16 from the last convolution) are cast to
/// f32 before the loss, so the ε-space error and the loss weights are computed in f32 (as with
/// f32 training) and the cast's backward hands the network a bf16 gradient.
fn forward_loss(
    precision: Precision,
    state: &State,
    images: &[Var],
    nb: &NoisedBatch,
    cond: Option<Conditioning<'_>>,
) -> Result<(Var, Vec<f64>)> {
    let run = || -> Result<(Var, Vec<f64>)> {
        let preds = state.model.forward(images, &nb.times, cond, &Micros::new())?;
        let preds = preds
            .iter()
            .map(|p| if p.dtype() == DType::F32 { Ok(p.clone()) } else { p.to_dtype(DType::F32) })
            .collect::<autograd::Result<Vec<_>>>()?;
        Ok(state.diffusion.loss(&preds, nb)?)
    };
    match precision {
        Precision::F32 => run(),
        Precision::Bf16 => autograd::autocast(DType::BF16, run),
    }
}

/// One optimizer step's forward/backward over the micro-batches; returns the mean loss and the
/// mean per-resolution losses (gradients accumulated, scaled by 1/accumulation). A non-finite loss
/// returns early without backward.
fn one_step(
    cfg: &RunConfig,
    state: &mut State,
    data: &dyn Dataset,
    step: u64,
    opts: &TrainOptions,
    captions_seen: &mut Vec<String>,
) -> Result<(f64, Vec<f64>)> {
    let t = &cfg.train;
    let accum = t.grad_accumulation as u64;
    let b = t.batch_size;
    let mut loss_sum = 0.0;
    let mut per_sum = vec![0.0; state.levels];
    let len = data.len();
    for micro in 0..accum {
        let stream = step * accum + micro;
        let start = stream * b as u64;
        let start = len.map_or(start, |n| start % n.max(1));
        let batch = make_batch(data, start, b, state.size)?;
        let x0s = state.diffusion.pyramid(&batch.images)?;
        // Element offsets: each (step, micro-batch) owns a disjoint 2³²-element window of the
        // Philox stream (`Diffusion::noise` offsets count elements, not batches).
        let need = state.diffusion.stream_len(&x0s);
        if need >= NOISE_WINDOW {
            return Err(TrainError::Config(crate::ConfigError::Invalid {
                field: "train.batch_size".into(),
                msg: format!(
                    "a batch needs {need} random numbers, more than the per-step window {NOISE_WINDOW}"
                ),
            }));
        }
        let nb = state.diffusion.noise(&x0s, t.seed, stream * NOISE_WINDOW)?;
        let images: Vec<Var> = nb.z.iter().map(|z| Var::constant(z.clone())).collect();
        let model_cfg = &state.model.config;
        // classifier-free-guidance dropout: which samples lose their condition this step
        let dropped = state.diffusion.cond_drop_mask(b, t.seed ^ DROP_KEY, stream * NOISE_WINDOW)?;
        let labels;
        let tokens;
        let mask;
        let cond = if model_cfg.num_classes > 0 {
            let l = batch.labels.as_ref().ok_or_else(|| {
                TrainError::Config(crate::ConfigError::Invalid {
                    field: "data".into(),
                    msg: "the model is class-conditional (num_classes > 0) but the data has no labels".into(),
                })
            })?;
            let null = state.model.null_class();
            let v: Vec<i64> =
                l.to_vec_f64().iter().zip(&dropped).map(|(&x, &d)| if d { null } else { x as i64 }).collect();
            labels = Tensor::from_vec(v, &[b])?;
            Some(Conditioning::Class { labels: &labels })
        } else if model_cfg.conditioning_feature_dim > 0 {
            let caps: Vec<String> = batch
                .captions
                .iter()
                .zip(&dropped)
                .map(|(c, &d)| if d { String::new() } else { c.clone() })
                .collect();
            if captions_seen.is_empty() {
                captions_seen.extend(batch.captions.iter().cloned());
            }
            let (tk, mk) = text_encoder(&state.model).encode(&caps)?;
            tokens = Var::constant(tk);
            mask = mk;
            Some(Conditioning::Text { tokens: &tokens, mask: Some(&mask) })
        } else {
            None
        };
        let (loss, per) = forward_loss(t.precision, state, &images, &nb, cond)?;
        let mut value = loss.value().item()?;
        if opts.nan_at.contains(&step) {
            value = f64::NAN;
        }
        if !value.is_finite() {
            return Ok((value, per));
        }
        loss.mul_scalar(1.0 / accum as f64)?.backward()?;
        loss_sum += value;
        for (s, p) in per_sum.iter_mut().zip(&per) {
            *s += p;
        }
    }
    let n = accum as f64;
    Ok((loss_sum / n, per_sum.iter().map(|s| s / n).collect()))
}
