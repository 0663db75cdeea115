//! `gpu_bench [--json] [--device N]` (feature `cuda`): times our GPU kernels through the tensor API
//! with CUDA events (warm-up first, median of repeats), the same ops at the same shapes as
//! `scripts/gpu_torch_bench.py` (PyTorch) so that `scripts/gpu_table.py` can put them side by side.
//!
//! Output: a header line `{"device", "compute_capability", "driver"}`, one line per case
//! `{"op", "shape", "dtype", "ms", "flops", "bytes"}` (JSON with `--json`, a table otherwise), then
//! the registers, static shared memory and local (spill) memory of every kernel the runtime
//! launches, as compiled by this driver for this GPU, so a kernel engineer can read occupancy.
//!
//! Traffic (`bytes`) counts the minimum: each input read once, each output written once.

use std::process::ExitCode;
use tensor::cuda::{CudaDevice, device, runtime_kernels};
use tensor::{Conv2dOptions, DType, Device, Result, Tensor};

/// One timed case: name, shape, dtype, flops, minimum bytes, and the op to run.
struct Case {
    op: &'static str,
    shape: Vec<usize>,
    dtype: &'static str,
    flops: f64,
    bytes: f64,
    run: Box<dyn Fn() -> Result<()>>,
}

fn case(
    op: &'static str,
    shape: &[usize],
    dtype: &'static str,
    flops: f64,
    bytes: f64,
    run: impl Fn() -> Result<()> + 'static,
) -> Case {
    Case { op, shape: shape.to_vec(), dtype, flops, bytes, run: Box::new(run) }
}

fn randn(shape: &[usize], seed: u64, dev: Device) -> Result<Tensor> {
    Tensor::randn_on(shape, 0.0, 1.0, seed, 0, DType::F32, dev)
}

/// The cases of `scripts/gpu_torch_bench.py`, in its order.
fn cases(dev: Device) -> Result<Vec<Case>> {
    let n = 1usize << 26;
    let nf = n as f64;
    let mut v = vec![];
    let x = randn(&[n], 1, dev)?;
    let y = randn(&[n], 2, dev)?;
    {
        let x = x.clone();
        v.push(case("copy", &[n], "f32", 0.0, 8.0 * nf, move || x.deep_clone().map(drop)));
    }
    {
        let x = x.clone();
        v.push(case("gelu", &[n], "f32", 0.0, 8.0 * nf, move || x.gelu().map(drop)));
    }
    v.push(case("add", &[n], "f32", 0.0, 12.0 * nf, move || x.add(&y).map(drop)));
    let m = 8192usize;
    let mm = (m * m) as f64;
    let xt = randn(&[m, m], 3, dev)?;
    v.push(case("add_transposed", &[m, m], "f32", 0.0, 12.0 * mm, move || {
        xt.transpose(0, 1)?.add(&xt).map(drop)
    }));
    let r = randn(&[m, m], 4, dev)?;
    v.push(case("sum_rows", &[m, m], "f32", 0.0, 4.0 * mm, move || r.sum(&[1], false).map(drop)));
    let (rows, cols) = (65536usize, 1024usize);
    let rc = (rows * cols) as f64;
    let s = randn(&[rows, cols], 5, dev)?;
    v.push(case("softmax", &[rows, cols], "f32", 0.0, 8.0 * rc, move || s.softmax(-1).map(drop)));
    let ln = randn(&[rows, cols], 6, dev)?;
    let w = Tensor::full_on(&[cols], 1.0, DType::F32, dev)?;
    v.push(case("layer_norm", &[rows, cols], "f32", 0.0, 8.0 * rc, move || {
        ln.layer_norm(Some(&w), Some(&w), 1e-5).map(drop)
    }));
    let k = 4096usize;
    for (dt, name) in [(DType::F32, "f32"), (DType::BF16, "bf16")] {
        let a = randn(&[k, k], 7, dev)?.to_dtype(dt)?;
        let b = randn(&[k, k], 8, dev)?.to_dtype(dt)?;
        let flops = 2.0 * (k as f64).powi(3);
        v.push(case("matmul", &[k, k, k], name, flops, 0.0, move || a.matmul(&b).map(drop)));
    }
    // conv 3×3, pad 1: x [8, 256, 64, 64], w [256, 256, 3, 3]; shape = [n, c_in, h, w, c_out, kh, kw].
    // Each pass costs the forward's 2·n·c_out·oh·ow·c_in·kh·kw flops.
    let (cn, cc, chw) = (8usize, 256usize, 64usize);
    let cshape = [cn, cc, chw, chw, cc, 3, 3];
    let cflops = 2.0 * (cn * cc * chw * chw * cc * 9) as f64;
    let copts = Conv2dOptions { padding: [1, 1], ..Conv2dOptions::default() };
    for (dt, name) in [(DType::F32, "f32"), (DType::BF16, "bf16")] {
        let x = randn(&[cn, cc, chw, chw], 10, dev)?.to_dtype(dt)?;
        let w = randn(&[cc, cc, 3, 3], 11, dev)?.to_dtype(dt)?;
        let dy = randn(&[cn, cc, chw, chw], 12, dev)?.to_dtype(dt)?;
        {
            let (x, w) = (x.clone(), w.clone());
            v.push(case("conv2d_fwd", &cshape, name, cflops, 0.0, move || {
                x.conv2d(&w, None, &copts).map(drop)
            }));
        }
        {
            let (w, dy, xs) = (w.clone(), dy.clone(), x.shape().to_vec());
            v.push(case("conv2d_dgrad", &cshape, name, cflops, 0.0, move || {
                Tensor::conv2d_backward_input(&xs, &w, &dy, &copts).map(drop)
            }));
        }
        let ws = w.shape().to_vec();
        v.push(case("conv2d_wgrad", &cshape, name, cflops, 0.0, move || {
            Tensor::conv2d_backward_weight(&x, &ws, &dy, &copts).map(drop)
        }));
    }
    v.push(case("randn", &[n], "f32", 0.0, 4.0 * nf, move || {
        Tensor::randn_on(&[n], 0.0, 1.0, 9, 0, DType::F32, dev).map(drop)
    }));
    attention_cases(&mut v, dev)?;
    gn_silu_cases(&mut v, dev)?;
    Ok(v)
}

/// Flash attention, bf16, B 8 × 8 heads × L 1024 × d 64 (PyTorch: `scaled_dot_product_attention`).
/// FLOPs: forward 2 matmuls (`4·B·H·L²·d`), backward 5 (`10·B·H·L²·d`, FlashAttention's count: S
/// recomputed, dP, dV, dQ, dK).
fn attention_cases(v: &mut Vec<Case>, dev: Device) -> Result<()> {
    let (b, h, l, d) = (8usize, 8usize, 1024usize, 64usize);
    let shape = [b, h, l, d];
    let unit = (b * h * l * l * d) as f64;
    let mk = |seed| randn(&shape, seed, dev).and_then(|t| t.to_dtype(DType::BF16));
    let (q, k, vv, dout) = (mk(11)?, mk(12)?, mk(13)?, mk(14)?);
    let scale = 1.0 / (d as f64).sqrt();
    {
        let (q, k, vv) = (q.clone(), k.clone(), vv.clone());
        v.push(case("attention_fwd", &shape, "bf16", 4.0 * unit, 0.0, move || {
            Tensor::attention(&q, &k, &vv, None, scale).map(drop)
        }));
    }
    v.push(case("attention_fwd_bwd", &shape, "bf16", 14.0 * unit, 0.0, move || {
        let o = Tensor::attention(&q, &k, &vv, None, scale)?;
        Tensor::attention_backward(&q, &k, &vv, None, scale, &o, &dout).map(drop)
    }));
    Ok(())
}

/// Fused group norm (affine) + SiLU forward, N 8 × C 256 × 64², 32 groups, f32 and bf16 (PyTorch:
/// `silu(group_norm(x))`). Bytes: x read once, y written once (the kernel reads x twice: the
/// second read of a 64 KiB–128 KiB group may come from L2); `gpu_table.py` also reports the rate as a
/// % of the measured `copy` bandwidth.
fn gn_silu_cases(v: &mut Vec<Case>, dev: Device) -> Result<()> {
    let (n, c, hw, groups) = (8usize, 256usize, 64usize, 32usize);
    let shape = [n, c, hw, hw];
    let numel = (n * c * hw * hw) as f64;
    for (dt, name, size) in [(DType::F32, "f32", 4.0), (DType::BF16, "bf16", 2.0)] {
        let x = randn(&shape, 21, dev)?.to_dtype(dt)?;
        let g = Tensor::full_on(&[c], 1.0, dt, dev)?;
        let be = Tensor::full_on(&[c], 0.0, dt, dev)?;
        v.push(case("group_norm_silu", &shape, name, 0.0, 2.0 * size * numel, move || {
            x.group_norm_silu(groups, Some(&g), Some(&be), None, 1e-5).map(drop)
        }));
    }
    Ok(())
}

/// Median GPU time in ms of `reps` runs after `warmup` runs.
fn time_case(gpu: &CudaDevice, c: &Case, warmup: usize, reps: usize) -> Result<f64> {
    // One NVTX range per case (shown by `nsys profile` when libnvToolsExt is found; else a no-op).
    let shape = c.shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("x");
    let _range = tensor::cuda::nvtx::range(format!("{} {shape} {}", c.op, c.dtype));
    for _ in 0..warmup {
        (c.run)()?;
    }
    gpu.synchronize()?;
    let mut t = vec![];
    for _ in 0..reps {
        t.push(gpu.time_ms(|| (c.run)())? as f64);
    }
    t.sort_by(|a, b| a.total_cmp(b));
    Ok(t[t.len() / 2])
}

fn run(json: bool, ordinal: usize) -> Result<()> {
    let gpu = device(ordinal)?;
    let dev = Device::Cuda(ordinal);
    let name = gpu.context().name().unwrap_or_else(|_| "unknown".into());
    let cc = gpu.context().compute_capability().map(|(a, b)| format!("{a}.{b}")).unwrap_or_default();
    if json {
        println!("{{\"device\": {name:?}, \"compute_capability\": {cc:?}}}");
    } else {
        println!("device: {name} (compute capability {cc})\n");
        println!("{:<16} {:<18} {:<5} {:>10} {:>14}", "op", "shape", "dtype", "ms", "rate");
    }
    for c in cases(dev)? {
        let ms = time_case(&gpu, &c, 3, 20)?;
        let shape = c.shape.iter().map(|d| d.to_string()).collect::<Vec<_>>();
        if json {
            println!(
                "{{\"op\": {:?}, \"shape\": [{}], \"dtype\": {:?}, \"ms\": {ms}, \"flops\": {}, \"bytes\": {}}}",
                c.op,
                shape.join(", "),
                c.dtype,
                c.flops,
                c.bytes
            );
        } else {
            let rate = if c.flops > 0.0 {
                format!("{:.1} TFLOP/s", c.flops / ms / 1e9)
            } else {
                format!("{:.0} GB/s", c.bytes / ms / 1e6)
            };
            println!("{:<16} {:<18} {:<5} {ms:>10.3} {rate:>14}", c.op, shape.join("x"), c.dtype);
        }
    }
    s2_rows(&gpu, dev, json);
    // Resources of every kernel the runtime launches (occupancy inputs).
    if !json {
        println!(
            "\n{:<36} {:>5} {:>12} {:>11} {:>11}",
            "kernel", "regs", "static smem", "local B", "max block"
        );
    }
    for k in runtime_kernels() {
        match gpu.kernel_info(&k) {
            Ok(i) if json => println!(
                "{{\"kernel\": {k:?}, \"registers\": {}, \"static_shared_bytes\": {}, \"local_bytes\": {}, \"max_threads_per_block\": {}}}",
                i.registers, i.static_shared_bytes, i.local_bytes, i.max_threads_per_block
            ),
            Ok(i) => println!(
                "{k:<36} {:>5} {:>12} {:>11} {:>11}",
                i.registers, i.static_shared_bytes, i.local_bytes, i.max_threads_per_block
            ),
            Err(e) => eprintln!("{k}: {e}"),
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let json = args.iter().any(|a| a == "--json");
    let ordinal = match args.iter().position(|a| a == "--device") {
        Some(i) => match args.get(i + 1).and_then(|s| s.parse().ok()) {
            Some(o) => o,
            None => {
                eprintln!("gpu_bench: --device needs a GPU ordinal (0, 1, …)");
                return ExitCode::from(2);
            }
        },
        None => 0,
    };
    match run(json, ordinal) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gpu_bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Batch of the S2 train-step comparison.
const S2_BATCH: usize = 8;

/// `configs/s2.toml`, from the working directory (gpu-check.sh runs in the repository root) or
/// from the source tree this binary was built in.
fn s2_config() -> String {
    let here = "configs/s2.toml";
    if std::path::Path::new(here).exists() {
        return here.into();
    }
    format!("{}/../configs/s2.toml", env!("CARGO_MANIFEST_DIR"))
}

/// The "S2 train step vs the CPU": one training step of the S2 model (batch 8) timed on
/// the GPU (CUDA events, median of 5 after 2 warm-ups) and on the CPU (wall clock, median of 3
/// after 1), as rows `s2_train_step` / `s2_train_step_cpu` (no flops or bytes: compare the ms).
/// A failure (e.g. an op without a GPU path) is reported on stderr and the rest still runs.
fn s2_rows(gpu: &CudaDevice, dev: Device, json: bool) {
    let path = s2_config();
    let print = |op: &str, ms: f64| {
        if json {
            println!(
                "{{\"op\": {op:?}, \"shape\": [{S2_BATCH}], \"dtype\": \"f32\", \"ms\": {ms}, \"flops\": 0, \"bytes\": 0}}"
            );
        } else {
            println!("{op:<16} {:<18} {:<5} {ms:>10.3} {:>14}", format!("batch {S2_BATCH}"), "f32", "-");
        }
    };
    let gpu_ms = (|| -> std::result::Result<f64, String> {
        let _range = tensor::cuda::nvtx::range("s2_train_step");
        let mut s = benches::s2_step::S2Step::new(&path, S2_BATCH, dev)?;
        for _ in 0..2 {
            s.step()?;
        }
        gpu.synchronize().map_err(|e| e.to_string())?;
        let mut t = vec![];
        for _ in 0..5 {
            let mut r = Ok(0.0);
            let ms = gpu.time_ms(|| {
                r = s.step();
                Ok(())
            });
            r?;
            t.push(ms.map_err(|e| e.to_string())? as f64);
        }
        t.sort_by(|a, b| a.total_cmp(b));
        Ok(t[t.len() / 2])
    })();
    match gpu_ms {
        Ok(ms) => print("s2_train_step", ms),
        Err(e) => eprintln!("gpu_bench: s2_train_step on the GPU failed: {e}"),
    }
    let cpu_ms = (|| -> std::result::Result<f64, String> {
        let mut s = benches::s2_step::S2Step::new(&path, S2_BATCH, Device::Cpu)?;
        s.step()?;
        let mut t = vec![];
        for _ in 0..3 {
            let start = std::time::Instant::now();
            s.step()?;
            t.push(start.elapsed().as_secs_f64() * 1e3);
        }
        t.sort_by(|a, b| a.total_cmp(b));
        Ok(t[1])
    })();
    match cpu_ms {
        Ok(ms) => print("s2_train_step_cpu", ms),
        Err(e) => eprintln!("gpu_bench: s2_train_step on the CPU failed: {e}"),
    }
}
