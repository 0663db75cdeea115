//! Metrics as JSON lines (`OUT/metrics.jsonl`) and the in-place progress line on stderr.

use super::{Result, io_err};
use std::io::Write;
use std::path::{Path, PathBuf};

/// One metrics record.
pub(crate) struct Record<'a> {
    pub step: u64,
    pub loss: f64,
    pub per_resolution: &'a [f64],
    pub grad_norm: f64,
    pub lr: f64,
    pub steps_per_s: f64,
    pub levels: usize,
    pub nan_skipped: u64,
}

/// Appends records to a JSON-lines file.
pub(crate) struct MetricsLog {
    path: PathBuf,
    file: std::fs::File,
}

impl MetricsLog {
    pub fn open(path: &Path, append: bool) -> Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(append)
            .truncate(!append)
            .open(path)
            .map_err(|e| io_err(path, e))?;
        Ok(Self { path: path.to_path_buf(), file })
    }

    pub fn write(&mut self, r: &Record<'_>) -> Result<()> {
        let finite =
            |x: f64| if x.is_finite() { serde_json::json!(x) } else { serde_json::json!(x.to_string()) };
        let v = serde_json::json!({
            "step": r.step,
            "loss": finite(r.loss),
            "loss_per_resolution": r.per_resolution.iter().map(|&x| finite(x)).collect::<Vec<_>>(),
            "grad_norm": finite(r.grad_norm),
            "lr": r.lr,
            "steps_per_s": r.steps_per_s,
            "levels": r.levels,
            "nan_skipped": r.nan_skipped,
        });
        writeln!(self.file, "{v}").map_err(|e| io_err(&self.path, e))
    }
}

/// The progress line: `step 120/600 | 3.1 steps/s | loss 0.0812 [0.071 0.093] | ETA 2m35s`.
pub(crate) fn progress_line(step: u64, total: u64, sps: f64, loss: f64, per: &[f64]) -> String {
    let per: Vec<String> = per.iter().map(|x| format!("{x:.4}")).collect();
    let eta = if sps > 0.0 { (total.saturating_sub(step)) as f64 / sps } else { f64::NAN };
    let eta = if eta.is_finite() {
        format!("{}m{:02}s", (eta / 60.0) as u64, (eta % 60.0) as u64)
    } else {
        "?".into()
    };
    format!("step {step}/{total} | {sps:.2} steps/s | loss {loss:.4} [{}] | ETA {eta}", per.join(" "))
}
