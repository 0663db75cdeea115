//! Roofline table: each [`Case`] is timed (median after warm-up) and compared with the measured
//! limits: the bound time is `max(flops / FMA peak, bytes / copy bandwidth)` (all threads), and
//! "% of limit" is bound time / measured time.
//!
//! Adding a row: push a [`Case`] (name, shape, flops, bytes moved, closure) in the `roofline`
//! binary.

use crate::machine::Limits;
use std::time::Instant;

/// One row: an operation on one shape.
pub struct Case {
    pub name: String,
    pub shape: String,
    /// Floating-point operations of one run (a multiply-add counts 2).
    pub flops: f64,
    /// Minimum bytes one run must move to/from memory (inputs read once, outputs written once).
    pub bytes: f64,
    pub run: Box<dyn FnMut()>,
}

impl Case {
    pub fn new(name: &str, shape: &str, flops: f64, bytes: f64, run: impl FnMut() + 'static) -> Self {
        Self { name: name.into(), shape: shape.into(), flops, bytes, run: Box::new(run) }
    }
}

/// A timed row.
#[derive(Clone, Debug)]
pub struct Result {
    pub name: String,
    pub shape: String,
    pub secs: f64,
    pub gflops: f64,
    pub gbs: f64,
    pub pct_of_limit: f64,
    /// `"compute"` or `"memory"`: which limit bounds this case.
    pub bound: &'static str,
}

/// Times a case: one warm-up, then runs until ~`budget_s` seconds or 25 runs (at least 3); median.
pub fn time_case(case: &mut Case, lim: &Limits, budget_s: f64) -> Result {
    (case.run)();
    let mut t = Vec::new();
    let start = Instant::now();
    while t.len() < 3 || (t.len() < 25 && start.elapsed().as_secs_f64() < budget_s) {
        let s = Instant::now();
        (case.run)();
        t.push(s.elapsed().as_secs_f64());
    }
    t.sort_by(|a, b| a.total_cmp(b));
    let secs = t[t.len() / 2];
    let t_fma = case.flops / (lim.fma_gflops_all * 1e9);
    let t_mem = case.bytes / (lim.copy_gbs_all * 1e9);
    Result {
        name: case.name.clone(),
        shape: case.shape.clone(),
        secs,
        gflops: case.flops / secs / 1e9,
        gbs: case.bytes / secs / 1e9,
        pct_of_limit: 100.0 * t_fma.max(t_mem) / secs,
        bound: if t_fma >= t_mem { "compute" } else { "memory" },
    }
}

/// Human-readable table.
pub fn print_table(lim: &Limits, rows: &[Result]) {
    println!(
        "machine: {} threads, FMA ({}) {:.1} GFLOP/s per core, {:.1} GFLOP/s all; copy {:.1} GB/s 1 thread, {:.1} GB/s all",
        lim.threads, lim.isa, lim.fma_gflops_1t, lim.fma_gflops_all, lim.copy_gbs_1t, lim.copy_gbs_all
    );
    println!("(limits and rows are measured now; on a busy machine both vary, so % can exceed 100)");
    println!(
        "{:<22} {:<22} {:>11} {:>10} {:>9} {:>8} {:>8}",
        "op", "shape", "time", "GFLOP/s", "GB/s", "% limit", "bound"
    );
    for r in rows {
        println!(
            "{:<22} {:<22} {:>9.3}ms {:>10.1} {:>9.1} {:>7.1}% {:>8}",
            r.name,
            r.shape,
            r.secs * 1e3,
            r.gflops,
            r.gbs,
            r.pct_of_limit,
            r.bound
        );
    }
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Machine-readable output (one JSON object).
pub fn to_json(lim: &Limits, rows: &[Result]) -> String {
    let mut s = format!(
        "{{\"machine\":{{\"threads\":{},\"isa\":\"{}\",\"fma_gflops_1t\":{:.3},\"fma_gflops_all\":{:.3},\"copy_gbs_1t\":{:.3},\"copy_gbs_all\":{:.3}}},\"rows\":[",
        lim.threads, lim.isa, lim.fma_gflops_1t, lim.fma_gflops_all, lim.copy_gbs_1t, lim.copy_gbs_all
    );
    for (i, r) in rows.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s += &format!(
            "{{\"op\":\"{}\",\"shape\":\"{}\",\"secs\":{:e},\"gflops\":{:.3},\"gbs\":{:.3},\"pct_of_limit\":{:.2},\"bound\":\"{}\"}}",
            esc(&r.name),
            esc(&r.shape),
            r.secs,
            r.gflops,
            r.gbs,
            r.pct_of_limit,
            r.bound
        );
    }
    s + "]}"
}
