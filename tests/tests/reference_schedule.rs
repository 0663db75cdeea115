//! The noise schedules (mdm-spec §2.3) and their resolution shift (§2.4) against
//! `tests/fixtures/schedule.safetensors`, computed in float64 numpy by
//! `tests/reference/blocks.py` in ml-mdm's own formulation: γ = cumprod(1 − β) and the shift
//! γ_s = 1 / (1 + (1 − γ)/γ · s^p), where ours shifts logSNR and applies a sigmoid.
//!
//! Tolerance: f64 on both sides, different but well-conditioned formulas: `Tolerance::F64`
//! (rel 1e-10, abs 1e-12) on γ, and on logSNR except at γ = 1 (+∞ on both sides, compared exactly).

use kernels::testing::Tolerance;
use mdm::diffusion::{Schedule, ScheduleKind};
use nn::checkpoint::SafeTensors;
use std::path::PathBuf;

fn open() -> SafeTensors {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures").join("schedule.safetensors");
    SafeTensors::open(&path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
}

/// Compares a schedule's γ and logSNR with the fixture tensor `name`.
fn check(st: &SafeTensors, name: &str, s: &Schedule) -> Result<(), String> {
    let expected = st.get(name).map_err(|e| format!("schedule.safetensors: {name}: {e}"))?.to_vec_f64();
    let tol = Tolerance::F64;
    tol.check(s.gammas(), &expected).map_err(|m| format!("schedule.safetensors: {name} (gamma): {m}"))?;
    let ours: Vec<f64> = (0..s.len()).map(|k| s.log_snr(k)).collect();
    let reference: Vec<f64> =
        expected.iter().map(|&g| if g >= 1.0 { f64::INFINITY } else { (g / (1.0 - g)).ln() }).collect();
    tol.check(&ours, &reference).map_err(|m| format!("schedule.safetensors: {name} (logSNR): {m}"))
}

#[test]
fn schedules_and_shifts_match_reference() {
    let st = open();
    let mut errs = Vec::new();
    let mut checked = 0;
    for (kind, label) in [
        (ScheduleKind::Deepfloyd, "deepfloyd"),
        (ScheduleKind::Cosine, "cosine"),
        (ScheduleKind::Ddpm, "ddpm"),
    ] {
        for n in [32usize, 1000] {
            let base = Schedule::new(kind, n);
            errs.extend(check(&st, &format!("{label}.{n}"), &base).err());
            checked += 1;
            if kind == ScheduleKind::Deepfloyd {
                for (s, p) in [(4.0, 1.0), (4.0, 2.0), (16.0, 2.0)] {
                    let name = format!("{label}.{n}.shift{s}_p{p}");
                    errs.extend(check(&st, &name, &base.shifted(s, p)).err());
                    checked += 1;
                }
            }
        }
    }
    assert!(errs.is_empty(), "{} mismatches:\n{}", errs.len(), errs.join("\n"));
    assert_eq!(checked, st.len(), "every tensor of schedule.safetensors is checked");
}
