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
    /// Steps per second over the interval since the previous record (a phase's own speed).
    pub steps_per_s: f64,
    /// Wall-clock seconds since this process started training (resets on `--resume`).
    pub elapsed_s: f64,
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
            "elapsed_s": r.elapsed_s,
            "levels": r.levels,
            "nan_skipped": r.nan_skipped,
        });
        writeln!(self.file, "{v}").map_err(|e| io_err(&self.path, e))
    }
}

/// Training speed, for the progress line and the metrics: the recent rate (an exponential average
/// of step times with weight 0.1, so a slower phase shows within a few dozen steps and the ETA
/// follows it), the rate over each logging interval, and the time since the start. A mean since the
/// start would hide that a two-level phase is slower than the inner-only one before it.
pub(crate) struct Rate {
    started: std::time::Instant,
    last: std::time::Instant,
    step_dt: Option<f64>,
    mark: (std::time::Instant, u64),
}

impl Rate {
    /// Starts timing at step `step`.
    pub fn new(step: u64) -> Self {
        let now = std::time::Instant::now();
        Self { started: now, last: now, step_dt: None, mark: (now, step) }
    }

    /// Records that one step has finished.
    pub fn tick(&mut self) {
        let now = std::time::Instant::now();
        let dt = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.step_dt = Some(self.step_dt.map_or(dt, |a| 0.9 * a + 0.1 * dt));
    }

    /// Steps per second of the recent steps (0 before the first).
    pub fn recent(&self) -> f64 {
        self.step_dt.map_or(0.0, |dt| 1.0 / dt.max(1e-9))
    }

    /// Steps per second since the previous call (or the start), ending at `step`.
    pub fn interval(&mut self, step: u64) -> f64 {
        let now = std::time::Instant::now();
        let (t, s) = self.mark;
        self.mark = (now, step);
        step.saturating_sub(s) as f64 / now.duration_since(t).as_secs_f64().max(1e-9)
    }

    /// Seconds since the start.
    pub fn elapsed(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_follows_the_recent_steps_and_counts_intervals() {
        let mut r = Rate::new(100);
        assert_eq!(r.recent(), 0.0, "no step yet");
        std::thread::sleep(std::time::Duration::from_millis(2));
        r.tick();
        let first = r.recent();
        assert!(first > 0.0 && first.is_finite());
        // The average moves a tenth of the way towards each new step time: after one step 20× as
        // long the step time grows by (20 − 1)·0.1, whatever the actual durations.
        r.step_dt = Some(0.01);
        r.last = std::time::Instant::now() - std::time::Duration::from_millis(200);
        r.tick();
        let dt = 1.0 / r.recent();
        assert!((0.028..0.05).contains(&dt), "{dt}");
        let sps = r.interval(110);
        assert!(sps > 0.0 && sps.is_finite(), "{sps}");
        assert!(r.interval(110) == 0.0, "no steps since the last interval");
        assert!(r.elapsed() >= 0.002, "the 2 ms slept before the first step");
    }

    #[test]
    fn progress_line_reports_the_eta_from_the_rate() {
        let l = progress_line(100, 700, 2.0, 0.05, &[0.03, 0.02]);
        assert_eq!(l, "step 100/700 | 2.00 steps/s | loss 0.0500 [0.0300 0.0200] | ETA 5m00s");
        assert!(progress_line(0, 10, 0.0, 1.0, &[1.0]).ends_with("ETA ?"));
    }
}
