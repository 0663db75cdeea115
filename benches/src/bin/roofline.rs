//! `cargo run --release -p benches --bin roofline [--json] [--compare FILE]`
//!
//! Measures this machine's limits (FMA peak, copy bandwidth; see `benches::machine`), then times
//! each kernel case and prints op, shape, time, GFLOP/s, GB/s and % of the roofline limit.
//! To add rows, push more `Case`s in `cases()`.
//!
//! `--compare FILE`: the reference timings written by `benches/compare/compare.py` (JAX on the CPU,
//! 2 threads; one `{"op": .., "shape": .., "secs": ..}` row per line); prints ours/reference per row
//! (below 1: we are faster).

use benches::machine;
use benches::random_f32;
use benches::roofline::{Case, print_table, time_case, to_json};
use kernels::attention::{self, AttentionShape};
use kernels::conv::{self, Conv2dParams};
use kernels::elementwise::{self, BinaryOp, UnaryOp};
use kernels::gemm::{MatMut, MatRef, gemm};
use kernels::reduce::{self, ReduceOp};
use kernels::{StridedLayout, layout, norm, rng, softmax};

/// `C (m×n) = A·B`, f32; `ta`: A given transposed (stored k×m, read through strides).
fn gemm_case(m: usize, n: usize, k: usize, ta: bool) -> Case {
    let a = random_f32(m * k, 1);
    let b = random_f32(k * n, 2);
    let mut c = vec![0f32; m * n];
    let (rs, cs) = if ta { (1, m) } else { (k, 1) };
    let name = if ta { "gemm f32 (A^T)" } else { "gemm f32" };
    let flops = 2.0 * (m * n * k) as f64;
    let bytes = 4.0 * (m * k + k * n + m * n) as f64;
    Case::new(name, &format!("{m}x{n}x{k}"), flops, bytes, move || {
        gemm(
            m,
            n,
            k,
            1.0,
            MatRef { data: &a, offset: 0, rs, cs },
            MatRef { data: &b, offset: 0, rs: n, cs: 1 },
            0.0,
            MatMut { data: &mut c, offset: 0, rs: n, cs: 1 },
        );
    })
}

/// conv2d 3×3 pad 1 forward / input-grad / weight-grad, NCHW f32.
fn conv_case(which: &'static str, n: usize, c: usize, hw: usize) -> Case {
    let p = Conv2dParams {
        n,
        c_in: c,
        h: hw,
        w: hw,
        c_out: c,
        kh: 3,
        kw: 3,
        stride: [1, 1],
        padding: [1, 1],
        dilation: [1, 1],
        groups: 1,
    };
    let x = random_f32(p.x_len(), 3);
    let w = random_f32(p.w_len(), 4);
    let dy = random_f32(p.y_len(), 5);
    let mut out = vec![0f32; p.x_len().max(p.y_len()).max(p.w_len())];
    let bytes = 4.0 * (p.x_len() + p.w_len() + p.y_len()) as f64;
    let name = match which {
        "fwd" => "conv3x3 fwd",
        "dx" => "conv3x3 bwd-input",
        _ => "conv3x3 bwd-weight",
    };
    Case::new(name, &format!("N{n} C{c}->{c} {hw}x{hw}"), p.flops() as f64, bytes, move || match which {
        "fwd" => conv::conv2d_forward(&p, &x, &w, None, &mut out[..p.y_len()]),
        "dx" => conv::conv2d_backward_input(&p, &w, &dy, &mut out[..p.x_len()]),
        _ => conv::conv2d_backward_weight(&p, &x, &dy, &mut out[..p.w_len()]),
    })
}

/// Group norm forward + backward (affine), f32: reads x (twice), dy, writes y and dx.
fn group_norm_case(n: usize, c: usize, hw: usize, groups: usize) -> Case {
    let sp = hw * hw;
    let len = n * c * sp;
    let x = random_f32(len, 6);
    let dy = random_f32(len, 7);
    let g = random_f32(c, 8);
    let b = random_f32(c, 9);
    let (mut y, mut dx) = (vec![0f32; len], vec![0f32; len]);
    let (mut mean, mut rstd) = (vec![0f32; n * groups], vec![0f32; n * groups]);
    let (mut dg, mut db) = (vec![0f32; c], vec![0f32; c]);
    // forward: read x, write y; backward: read x, dy, write dx  → 5 passes over the tensor
    let bytes = 4.0 * 5.0 * len as f64;
    Case::new(
        "group_norm fwd+bwd",
        &format!("({n},{c},{hw},{hw}) G{groups}"),
        10.0 * len as f64,
        bytes,
        move || {
            norm::group_norm_forward(
                n,
                c,
                sp,
                groups,
                1e-5,
                &x,
                Some(&g),
                Some(&b),
                &mut y,
                &mut mean,
                &mut rstd,
            );
            norm::group_norm_backward(
                n,
                c,
                sp,
                groups,
                &x,
                Some(&g),
                &mean,
                &rstd,
                &dy,
                &mut dx,
                Some(&mut dg),
                Some(&mut db),
            );
        },
    )
}

/// Flash attention forward + backward, f32.
fn attention_case(b: usize, h: usize, l: usize, d: usize) -> Case {
    let s = AttentionShape { batch: b, heads: h, lq: l, lk: l, d, dv: d };
    let n = b * h * l * d;
    let (q, k, v, dout) = (random_f32(n, 10), random_f32(n, 11), random_f32(n, 12), random_f32(n, 13));
    let (mut o, mut lse) = (vec![0f32; n], vec![0f32; b * h * l]);
    let (mut dq, mut dk, mut dv) = (vec![0f32; n], vec![0f32; n], vec![0f32; n]);
    let scale = 1.0 / (d as f32).sqrt();
    // forward 4·B·H·L²·d (QKᵀ and PV), backward 2.5× that (recompute S, dV, dP, dQ, dK)
    let flops = 3.5 * 4.0 * (b * h * l * l * d) as f64;
    let bytes = 4.0 * 9.0 * n as f64;
    Case::new("attention fwd+bwd", &format!("B{b} H{h} L{l} d{d}"), flops, bytes, move || {
        attention::attention_forward(&s, &q, &k, &v, None, scale, &mut o, &mut lse);
        attention::attention_backward(
            &s, &q, &k, &v, None, scale, &o, &lse, &dout, &mut dq, &mut dk, &mut dv,
        );
    })
}

/// Elementwise and memory-movement rows (bandwidth bound).
fn memory_cases() -> Vec<Case> {
    let n = 1 << 24;
    let shape = [n];
    let l = StridedLayout::contiguous(&shape);
    let (a, b) = (random_f32(n, 14), random_f32(n, 15));
    let mut out = vec![0f32; n];
    let add = {
        let (a, b, l) = (a.clone(), b.clone(), l.clone());
        let mut out = out.clone();
        Case::new("add", "16M f32", n as f64, 12.0 * n as f64, move || {
            elementwise::binary(BinaryOp::Add, &a, &l, &b, &l, &mut out)
        })
    };
    let silu = {
        let (a, l) = (a.clone(), l.clone());
        let mut out = out.clone();
        Case::new("silu", "16M f32", 4.0 * n as f64, 8.0 * n as f64, move || {
            elementwise::unary(UnaryOp::Silu, &a, &l, &mut out)
        })
    };
    let gelu = {
        let (a, l) = (a.clone(), l.clone());
        let mut out = out.clone();
        Case::new("gelu (erf)", "16M f32", 20.0 * n as f64, 8.0 * n as f64, move || {
            elementwise::unary(UnaryOp::Gelu, &a, &l, &mut out)
        })
    };
    let side = 4096;
    let t = StridedLayout::new(vec![side, side], vec![1, side], 0);
    let dst = StridedLayout::contiguous(&[side, side]);
    let transpose = {
        let a = a.clone();
        let mut out = out.clone();
        Case::new("copy transposed", "4096x4096 f32", 0.0, 8.0 * n as f64, move || {
            layout::copy_strided(&a, &t, &mut out, &dst)
        })
    };
    let rows = 4096;
    let cols = n / rows;
    let sm = {
        let a = a.clone();
        let mut out = out.clone();
        Case::new(
            "softmax (rows)",
            &format!("{rows}x{cols} f32"),
            5.0 * n as f64,
            8.0 * n as f64,
            move || softmax::softmax_forward(rows, cols, 1, &a, &mut out),
        )
    };
    let red = {
        let l2 = StridedLayout::contiguous(&[rows, cols]);
        let mut o = vec![0f32; rows];
        Case::new("sum last axis", &format!("{rows}x{cols} f32"), n as f64, 4.0 * n as f64, move || {
            reduce::reduce(ReduceOp::Sum, &a, &l2, &[1], &mut o)
        })
    };
    let rng = Case::new("fill_normal", "16M f32", 0.0, 4.0 * n as f64, move || {
        rng::fill_normal(7, 0, 0.0, 1.0, &mut out)
    });
    vec![add, silu, gelu, transpose, sm, red, rng]
}

fn cases() -> Vec<Case> {
    let mut v = vec![
        gemm_case(1024, 1024, 1024, false),
        gemm_case(4096, 256, 256, false),
        gemm_case(1024, 1024, 1024, true),
        gemm_case(256, 256, 256, false),
        conv_case("fwd", 8, 128, 32),
        conv_case("dx", 8, 128, 32),
        conv_case("dw", 8, 128, 32),
        group_norm_case(8, 128, 32, 32),
        attention_case(8, 4, 256, 64),
    ];
    v.extend(memory_cases());
    v
}

/// A string or number field of a one-line JSON object written by `compare.py`.
fn json_field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let rest = &line[line.find(&format!("\"{key}\": "))? + key.len() + 4..];
    match rest.strip_prefix('"') {
        Some(r) => r.find('"').map(|e| &r[..e]),
        None => rest.find([',', '}']).map(|e| rest[..e].trim()),
    }
}

/// Reference rows (op, shape, seconds) from a `compare.py` file.
fn read_reference(path: &str) -> Result<Vec<(String, String, f64)>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("--compare {path}: {e}"))?;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| l.contains("\"op\": ")) {
        let bad = |what: &str| format!("--compare {path}: line {}: {what}", i + 1);
        let op = json_field(line, "op").ok_or_else(|| bad("no `op` string"))?;
        let shape = json_field(line, "shape").ok_or_else(|| bad("no `shape` string"))?;
        let secs = json_field(line, "secs")
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v > 0.0)
            .ok_or_else(|| bad("`secs` is not a positive number"))?;
        rows.push((op.to_string(), shape.to_string(), secs));
    }
    if rows.is_empty() {
        return Err(format!("--compare {path}: no rows (expected compare.py's output)"));
    }
    Ok(rows)
}

/// Prints ours/reference for every row present in both.
fn print_ratios(rows: &[benches::roofline::Result], reference: &[(String, String, f64)], path: &str) {
    println!("\nours / reference ({path}; below 1 = we are faster)");
    println!("{:<22} {:<22} {:>11} {:>11} {:>9}", "op", "shape", "ours", "reference", "ratio");
    for r in rows {
        match reference.iter().find(|(op, shape, _)| *op == r.name && *shape == r.shape) {
            Some((_, _, secs)) => println!(
                "{:<22} {:<22} {:>9.3}ms {:>9.3}ms {:>9.2}",
                r.name,
                r.shape,
                r.secs * 1e3,
                secs * 1e3,
                r.secs / secs
            ),
            None => println!("{:<22} {:<22} {:>9.3}ms {:>11} {:>9}", r.name, r.shape, r.secs * 1e3, "-", "-"),
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let json = args.iter().any(|a| a == "--json");
    let compare = args.iter().position(|a| a == "--compare").map(|i| args.get(i + 1).cloned());
    let reference = match compare {
        None => None,
        Some(None) => {
            eprintln!("--compare needs a file (written by benches/compare/compare.py)");
            std::process::exit(2);
        }
        Some(Some(path)) => match read_reference(&path) {
            Ok(r) => Some((path, r)),
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(2);
            }
        },
    };
    let lim = machine::measure();
    if !json {
        eprintln!("gemm micro-kernel: {}", kernels::gemm::f32_kernel_name());
    }
    let rows: Vec<_> = cases().iter_mut().map(|c| time_case(c, &lim, 1.0)).collect();
    if json {
        println!("{}", to_json(&lim, &rows));
    } else {
        print_table(&lim, &rows);
        if let Some((path, reference)) = &reference {
            print_ratios(&rows, reference, path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::json_field;

    #[test]
    fn reads_compare_py_rows() {
        let line = r#"{"op": "gemm f32 (A^T)", "shape": "1024x1024x1024", "secs": 0.0133}, "#;
        assert_eq!(json_field(line, "op"), Some("gemm f32 (A^T)"));
        assert_eq!(json_field(line, "shape"), Some("1024x1024x1024"));
        assert_eq!(json_field(line, "secs"), Some("0.0133"));
        assert_eq!(json_field(line, "bound"), None);
    }
}
