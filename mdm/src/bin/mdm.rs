//! `mdm`: train a Matryoshka diffusion model and sample images from it.
//!
//! ```text
//! mdm train --config configs/quickstart.toml            # writes runs/quickstart/
//! mdm sample --checkpoint runs/quickstart/checkpoint.safetensors --class 3 --out out.png
//! mdm info --checkpoint runs/quickstart/checkpoint.safetensors
//! ```

use clap::{Parser, Subcommand, ValueEnum};
use mdm::data::{DataConfig, open};
use mdm::image_io::{save_grid, save_strip};
use mdm::run_config::{RunConfig, SamplerName};
use mdm::train::sample::{Request, draw, load, sampler_config};
use mdm::train::{TrainOptions, read_checkpoint, train};
use nn::Module;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Matryoshka Diffusion Models: train nested multi-resolution diffusion models on the CPU and
/// sample from them.
#[derive(Parser)]
#[command(name = "mdm", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, ValueEnum)]
enum SamplerArg {
    Ddpm,
    Ddim,
}

#[derive(Subcommand)]
enum Cmd {
    /// Train (or resume / grow) a model from a run config (TOML).
    ///
    /// Writes OUT/checkpoint.safetensors (every train.checkpoint_every steps, at the end and on
    /// Ctrl-C), OUT/metrics.jsonl and OUT/samples/*.png.
    Train {
        /// The run config (TOML: [model], [diffusion], [data], [train], [sample]).
        #[arg(long)]
        config: PathBuf,
        /// Override the data source: `shapes[:SEED]`, `fashion-mnist[:DIR]` or `folder:DIR`.
        #[arg(long, value_name = "SPEC")]
        data: Option<String>,
        /// Output folder (default runs/<config file stem>).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Continue exactly from OUT/checkpoint.safetensors.
        #[arg(long, conflicts_with = "init_from")]
        resume: bool,
        /// Initialise the inner levels from a checkpoint of a smaller (fewer-level) model.
        #[arg(long, value_name = "CKPT")]
        init_from: Option<PathBuf>,
        /// Override train.steps.
        #[arg(long, value_name = "N")]
        steps: Option<u64>,
        /// Run every step in autograd anomaly mode (slow; names the op that made a NaN/Inf).
        #[arg(long)]
        detect_anomaly: bool,
        /// No progress line and no sample grids.
        #[arg(long)]
        quiet: bool,
    },
    /// Sample images from a training checkpoint (EMA weights) into a PNG grid, one column per
    /// resolution (high → low).
    Sample {
        /// Checkpoint written by `mdm train`.
        #[arg(long)]
        checkpoint: PathBuf,
        /// Class label (class-conditional models); repeat for several rows.
        #[arg(long, value_name = "K", conflicts_with = "prompt")]
        class: Vec<i64>,
        /// Text prompt (text-conditional models).
        #[arg(long, value_name = "TEXT")]
        prompt: Option<String>,
        /// Sampling steps (default: the config's [sample].steps).
        #[arg(long, value_name = "N")]
        steps: Option<usize>,
        /// Classifier-free guidance weight (1 = none).
        #[arg(long, value_name = "W")]
        guidance: Option<f64>,
        /// Sampler.
        #[arg(long, value_enum)]
        sampler: Option<SamplerArg>,
        /// DDIM η (0 = deterministic).
        #[arg(long, value_name = "E")]
        eta: Option<f64>,
        /// Noise seed.
        #[arg(long, value_name = "S", default_value_t = 0)]
        seed: u64,
        /// Images (rows).
        #[arg(long, value_name = "B", default_value_t = 8)]
        batch: usize,
        /// Also write the x̂₀ trajectory of the top resolution to FILE.trajectory.png.
        #[arg(long)]
        trajectory: bool,
        /// Output PNG.
        #[arg(long, value_name = "FILE.png")]
        out: PathBuf,
    },
    /// Print a checkpoint's config, step and parameter count.
    Info {
        /// Checkpoint written by `mdm train`.
        #[arg(long)]
        checkpoint: PathBuf,
    },
}

type Res = Result<(), Box<dyn std::error::Error>>;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Train { config, data, out, resume, init_from, steps, detect_anomaly, quiet } => {
            cmd_train(&config, data, out, resume, init_from, steps, detect_anomaly, quiet)
        }
        Cmd::Sample {
            checkpoint,
            class,
            prompt,
            steps,
            guidance,
            sampler,
            eta,
            seed,
            batch,
            trajectory,
            out,
        } => cmd_sample(
            &checkpoint,
            class,
            prompt,
            steps,
            guidance,
            sampler,
            eta,
            seed,
            batch,
            trajectory,
            &out,
        ),
        Cmd::Info { checkpoint } => cmd_info(&checkpoint),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn cmd_train(
    config: &Path,
    data: Option<String>,
    out: Option<PathBuf>,
    resume: bool,
    init_from: Option<PathBuf>,
    steps: Option<u64>,
    detect_anomaly: bool,
    quiet: bool,
) -> Res {
    let (mut cfg, text) = RunConfig::from_file(config)?;
    if let Some(spec) = data {
        cfg.data = spec.parse::<DataConfig>()?;
    }
    if let Some(n) = steps {
        cfg.train.steps = n;
    }
    cfg.validate()?;
    let out = out.unwrap_or_else(|| {
        PathBuf::from("runs")
            .join(config.file_stem().map_or("run".into(), |s| s.to_string_lossy().to_string()))
    });
    let dataset = open(&cfg.data)?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("\ninterrupted: checkpointing at the end of this step (Ctrl-C again to abort)");
    })?;
    let params = mdm::Mdm::new(&cfg.model, cfg.train.seed)?.num_params();
    eprintln!(
        "training {} ({} parameters, {} levels) for {} steps into {}",
        config.display(),
        params,
        cfg.num_levels(),
        cfg.train.steps,
        out.display()
    );
    let opts = TrainOptions {
        out_dir: out.clone(),
        resume,
        init_from,
        detect_anomaly,
        progress: !quiet,
        samples: !quiet,
        stop: Some(stop),
        ..Default::default()
    };
    let t0 = std::time::Instant::now();
    let rep = train(&cfg, &text, dataset.as_ref(), &opts)?;
    let last = rep.losses.iter().rev().take(20).map(|l| l.1).filter(|l| l.is_finite()).collect::<Vec<_>>();
    let mean = last.iter().sum::<f64>() / last.len().max(1) as f64;
    eprintln!(
        "{} at step {} after {:.1}s ({:.2} steps/s); mean loss of the last {} steps {mean:.4}; {} skipped (non-finite); checkpoint {}",
        if rep.interrupted { "stopped" } else { "done" },
        rep.step,
        t0.elapsed().as_secs_f64(),
        rep.steps_per_s,
        last.len(),
        rep.nan_skipped,
        rep.checkpoint.display()
    );
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn cmd_sample(
    checkpoint: &Path,
    class: Vec<i64>,
    prompt: Option<String>,
    steps: Option<usize>,
    guidance: Option<f64>,
    sampler: Option<SamplerArg>,
    eta: Option<f64>,
    seed: u64,
    batch: usize,
    trajectory: bool,
    out: &Path,
) -> Res {
    if batch == 0 {
        return Err("--batch must be >= 1".into());
    }
    let loaded = load(checkpoint)?;
    let mut d = loaded.config.sample.clone();
    if let Some(s) = steps {
        d.steps = s;
    }
    if let Some(g) = guidance {
        d.guidance = g;
    }
    if let Some(s) = sampler {
        d.sampler = match s {
            SamplerArg::Ddpm => SamplerName::Ddpm,
            SamplerArg::Ddim => SamplerName::Ddim,
        };
    }
    if let Some(e) = eta {
        d.eta = e;
    }
    let request = match (class.is_empty(), prompt) {
        (false, _) => Request::Classes(class),
        (true, Some(p)) => Request::Prompt(p),
        (true, None) if loaded.model.config.num_classes > 0 => {
            Request::Classes((0..loaded.model.config.num_classes as i64).collect())
        }
        (true, None) => Request::Unconditional,
    };
    let sc = sampler_config(&d, seed, trajectory);
    let t0 = std::time::Instant::now();
    let res = autograd::no_grad(|| {
        draw(&loaded.model, &loaded.diffusion, &request, batch, loaded.image_size, &sc)
    })?;
    let dt = t0.elapsed().as_secs_f64();
    save_grid(out, &res.images)?;
    if trajectory {
        let mut frames: Vec<tensor::Tensor> = vec![];
        for r in &res.trajectory {
            if let Some(top) = r.first() {
                frames.push(top.select(0, 0)?.contiguous()?);
            }
        }
        let p = out.with_extension("trajectory.png");
        save_strip(&p, &frames)?;
        eprintln!("trajectory: {}", p.display());
    }
    eprintln!(
        "{batch} images ({} steps, {}²) in {dt:.1}s ({:.2} images/s) → {}",
        d.steps,
        loaded.image_size,
        batch as f64 / dt,
        out.display()
    );
    Ok(())
}

fn cmd_info(checkpoint: &Path) -> Res {
    let info = read_checkpoint(checkpoint)?;
    let params: usize = info.ckpt.model.iter().map(|(_, t)| t.numel()).sum();
    let text = format!(
        "checkpoint: {}\nstep: {}\nseed: {}\nactive levels: {}\nparameters: {params}\nEMA: {}\nnon-finite steps skipped: {}\n--- config ---\n{}\n",
        checkpoint.display(),
        info.ckpt.step,
        info.seed,
        info.levels,
        info.ckpt.ema.is_some(),
        info.nan_total,
        info.ckpt.config.trim_end()
    );
    // A closed pipe (`mdm info | head`) is not an error worth a panic.
    let _ = std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes());
    Ok(())
}
