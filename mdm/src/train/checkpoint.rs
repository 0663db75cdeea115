//! The run's `TrainingCheckpoint`: model, EMA, AdamW state (tensors under `t.<name>`, per-parameter
//! scalars as 0-d f64 tensors under `s.<name>`), step, and `rng_state = [seed, step, levels,
//! nan_streak, nan_total]` (all streams are keyed by (seed, step), so these words are the RNG state).

use super::{Result, TrainError};
use nn::checkpoint::TrainingCheckpoint;
use nn::optim::OptimState;
use std::path::Path;
use tensor::Tensor;

/// A training checkpoint with its decoded run words.
#[derive(Clone, Debug)]
pub struct CheckpointInfo {
    /// The raw checkpoint.
    pub ckpt: TrainingCheckpoint,
    /// Seed of the run.
    pub seed: u64,
    /// Active levels of the stored model.
    pub levels: usize,
    /// Consecutive skipped steps at save time.
    pub nan_streak: u64,
    /// Skipped steps so far.
    pub nan_total: u64,
}

impl CheckpointInfo {
    /// The optimizer state stored in the checkpoint.
    pub fn optim_state(&self) -> OptimState {
        let mut st = OptimState::default();
        for (n, t) in &self.ckpt.optimizer {
            if let Some(k) = n.strip_prefix("t.") {
                st.tensors.push((k.to_string(), t.clone()));
            } else if let Some(k) = n.strip_prefix("s.") {
                st.scalars.push((k.to_string(), t.to_vec_f64().first().copied().unwrap_or(f64::NAN)));
            }
        }
        st
    }
}

/// Packs an optimizer state for [`TrainingCheckpoint::optimizer`].
pub(crate) fn pack_optim(st: &OptimState) -> Vec<(String, Tensor)> {
    let mut out: Vec<(String, Tensor)> =
        st.tensors.iter().map(|(n, t)| (format!("t.{n}"), t.clone())).collect();
    out.extend(st.scalars.iter().map(|(n, v)| (format!("s.{n}"), Tensor::scalar(*v))));
    out
}

/// Reads and decodes a checkpoint written by [`super::train`].
pub fn read_checkpoint(path: &Path) -> Result<CheckpointInfo> {
    let ckpt = TrainingCheckpoint::load(path)?;
    let err = |msg: String| TrainError::Checkpoint { path: path.display().to_string(), msg };
    if ckpt.rng_state.len() != 5 {
        return Err(err(format!(
            "rng state has {} words, expected 5 ([seed, step, levels, nan_streak, nan_total])",
            ckpt.rng_state.len()
        )));
    }
    if ckpt.rng_state[1] != ckpt.step {
        return Err(err(format!("rng state step {} differs from step {}", ckpt.rng_state[1], ckpt.step)));
    }
    let levels = ckpt.rng_state[2] as usize;
    if levels == 0 {
        return Err(err("rng state says 0 active levels".into()));
    }
    Ok(CheckpointInfo {
        seed: ckpt.rng_state[0],
        levels,
        nan_streak: ckpt.rng_state[3],
        nan_total: ckpt.rng_state[4],
        ckpt,
    })
}
