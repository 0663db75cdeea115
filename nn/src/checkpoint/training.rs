//! A training checkpoint (model, EMA, optimizer state, step, RNG state, config) as ONE safetensors
//! file: tensors under `model.`, `ema.`, `optim.`; scalars and config text in `__metadata__`.

use super::reader::SafeTensors;
use super::writer;
use crate::{Error, Result};
use std::collections::BTreeMap;
use std::path::Path;
use tensor::Tensor;

/// Version written to `format_version`; the loader accepts only this one.
pub const TRAINING_FORMAT_VERSION: u32 = 1;
/// Value of the `format` metadata field.
pub const TRAINING_FORMAT: &str = "matryoshka.training";

const MODEL: &str = "model.";
const EMA: &str = "ema.";
const OPTIM: &str = "optim.";

/// Everything needed to resume training. Tensor lists come back from [`TrainingCheckpoint::load`]
/// sorted by name (within each section); match them by name, not position.
#[derive(Clone, Debug)]
pub struct TrainingCheckpoint {
    /// Model parameters (`state_dict` names).
    pub model: Vec<(String, Tensor)>,
    /// EMA copy of the parameters, if kept.
    pub ema: Option<Vec<(String, Tensor)>>,
    /// Optimizer state tensors under names of the optimizer's choosing.
    pub optimizer: Vec<(String, Tensor)>,
    /// Optimizer steps taken.
    pub step: u64,
    /// The RNG state words (e.g. Philox seed and offset).
    pub rng_state: Vec<u64>,
    /// The run's configuration text (JSON or TOML), stored verbatim.
    pub config: String,
}

impl TrainingCheckpoint {
    /// The metadata this checkpoint writes: `format`, `format_version`, `step`, `rng` (a JSON array of
    /// integers), `ema` (`true`/`false`) and `config`.
    pub fn metadata(&self) -> BTreeMap<String, String> {
        let rng = serde_json::to_string(&self.rng_state).expect("a Vec<u64> always serialises");
        BTreeMap::from([
            ("format".to_string(), TRAINING_FORMAT.to_string()),
            ("format_version".to_string(), TRAINING_FORMAT_VERSION.to_string()),
            ("step".to_string(), self.step.to_string()),
            ("rng".to_string(), rng),
            ("ema".to_string(), self.ema.is_some().to_string()),
            ("config".to_string(), self.config.clone()),
        ])
    }

    /// Writes the checkpoint atomically (see [`save`](super::save)). A name repeated within a section is an
    /// error.
    pub fn save<'a>(&'a self, path: impl AsRef<Path>) -> Result<()> {
        let section = |prefix: &'static str, list: &'a [(String, Tensor)]| {
            list.iter().map(move |(n, t)| (format!("{prefix}{n}"), t))
        };
        let all: Vec<(String, &Tensor)> = section(MODEL, &self.model)
            .chain(self.ema.iter().flat_map(|e| section(EMA, e)))
            .chain(section(OPTIM, &self.optimizer))
            .collect();
        writer::save(path, &all, &self.metadata())
    }

    /// Opens, validates and reads a training checkpoint.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        Self::from_safetensors(&SafeTensors::open(path)?)
    }

    /// Reads a training checkpoint from an opened file. A missing or unparseable metadata field, an
    /// unsupported version, EMA tensors while `ema` is `false`, or a tensor under none of the
    /// prefixes is an [`Error::Checkpoint`] naming the field or tensor.
    pub fn from_safetensors(st: &SafeTensors) -> Result<Self> {
        let err = |msg: String| Error::Checkpoint { path: st.path().display().to_string(), msg };
        let meta = st.metadata();
        let field =
            |name: &str| meta.get(name).ok_or_else(|| err(format!("metadata field `{name}` is missing")));
        let bad = |name: &str, v: &str, why: &str| err(format!("metadata field `{name}`: `{v}` {why}"));

        let format = field("format")?;
        if format != TRAINING_FORMAT {
            return Err(bad("format", format, &format!("is not `{TRAINING_FORMAT}`")));
        }
        let v = field("format_version")?;
        let version: u32 = v.parse().map_err(|_| bad("format_version", v, "is not an integer"))?;
        if version != TRAINING_FORMAT_VERSION {
            return Err(bad(
                "format_version",
                v,
                &format!("is not supported (this build reads {TRAINING_FORMAT_VERSION})"),
            ));
        }
        let v = field("step")?;
        let step: u64 = v.parse().map_err(|_| bad("step", v, "is not a non-negative integer"))?;
        let v = field("rng")?;
        let rng_state: Vec<u64> = serde_json::from_str(v)
            .map_err(|_| bad("rng", v, "is not a JSON array of non-negative integers"))?;
        let v = field("ema")?;
        let has_ema = match v.as_str() {
            "true" => true,
            "false" => false,
            _ => return Err(bad("ema", v, "is not `true` or `false`")),
        };
        let config = field("config")?.clone();

        let (mut model, mut ema, mut optimizer) = (Vec::new(), Vec::new(), Vec::new());
        for name in st.names() {
            let (list, key) = if let Some(k) = name.strip_prefix(MODEL) {
                (&mut model, k)
            } else if let Some(k) = name.strip_prefix(EMA) {
                if !has_ema {
                    return Err(err(format!(
                        "tensor `{name}` is an EMA tensor but metadata field `ema` is false"
                    )));
                }
                (&mut ema, k)
            } else if let Some(k) = name.strip_prefix(OPTIM) {
                (&mut optimizer, k)
            } else {
                return Err(err(format!("tensor `{name}` is under none of `{MODEL}`, `{EMA}`, `{OPTIM}`")));
            };
            list.push((key.to_string(), st.get(name)?));
        }
        Ok(Self { model, ema: has_ema.then_some(ema), optimizer, step, rng_state, config })
    }
}
