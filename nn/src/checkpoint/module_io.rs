//! Module ↔ checkpoint by parameter name: `state_dict`, `save_module`, `load_into` with a report of
//! missing, unexpected and mismatched keys.

use super::reader::SafeTensors;
use super::writer;
use crate::{Error, Module, Result};
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use tensor::{DType, Tensor};

/// Every parameter of a module with its dotted name, in definition order (values share storage with
/// the parameters; nothing is copied).
pub fn state_dict(module: &dyn Module) -> Vec<(String, Tensor)> {
    let mut out = Vec::new();
    module.visit("", &mut |n, p| out.push((n.to_string(), p.value().clone())));
    out
}

/// Saves a module's parameters (atomically, see [`save`](super::save)).
pub fn save_module(
    path: impl AsRef<Path>,
    module: &dyn Module,
    metadata: &BTreeMap<String, String>,
) -> Result<()> {
    writer::save(path, &state_dict(module), metadata)
}

/// A key whose shape or dtype differs between the module and the checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyMismatch {
    /// The parameter's dotted name.
    pub name: String,
    /// Shape of the module's parameter.
    pub module_shape: Vec<usize>,
    /// Dtype of the module's parameter.
    pub module_dtype: DType,
    /// Shape stored in the checkpoint.
    pub file_shape: Vec<usize>,
    /// Dtype stored in the checkpoint.
    pub file_dtype: DType,
}

impl fmt::Display for KeyMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}`: module {:?} {}, checkpoint {:?} {}",
            self.name, self.module_shape, self.module_dtype, self.file_shape, self.file_dtype
        )
    }
}

/// What a load did. Names are sorted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Parameters set from the checkpoint.
    pub loaded: Vec<String>,
    /// Module parameters the checkpoint lacks (left as they were).
    pub missing: Vec<String>,
    /// Checkpoint tensors no parameter is named for (ignored).
    pub unexpected: Vec<String>,
    /// Keys in both whose shape or dtype differ (left as they were).
    pub mismatched: Vec<KeyMismatch>,
}

impl LoadReport {
    /// True when every parameter was loaded and every tensor used.
    pub fn is_clean(&self) -> bool {
        self.missing.is_empty() && self.unexpected.is_empty() && self.mismatched.is_empty()
    }
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let q = |v: &[String]| v.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ");
        let mut parts = vec![format!("{} loaded", self.loaded.len())];
        if !self.missing.is_empty() {
            parts.push(format!("{} missing: {}", self.missing.len(), q(&self.missing)));
        }
        if !self.unexpected.is_empty() {
            parts.push(format!("{} unexpected: {}", self.unexpected.len(), q(&self.unexpected)));
        }
        if !self.mismatched.is_empty() {
            let m: Vec<String> = self.mismatched.iter().map(|m| m.to_string()).collect();
            parts.push(format!("{} mismatched: {}", m.len(), m.join("; ")));
        }
        f.write_str(&parts.join("; "))
    }
}

/// Sets a module's parameters from a checkpoint by name. With `strict`, any missing, unexpected or
/// mismatched key is an error listing all of them, and no parameter is changed; without it the
/// matching parameters are loaded and the rest reported.
pub fn load_into(module: &mut dyn Module, st: &SafeTensors, strict: bool) -> Result<LoadReport> {
    load_into_prefixed(module, st, "", strict)
}

/// [`load_into`] restricted to the checkpoint tensors whose names start with `prefix` (stripped before
/// matching), e.g. `"ema."` in a training checkpoint.
pub fn load_into_prefixed(
    module: &mut dyn Module,
    st: &SafeTensors,
    prefix: &str,
    strict: bool,
) -> Result<LoadReport> {
    let available: BTreeMap<String, (DType, Vec<usize>)> = st
        .names()
        .into_iter()
        .filter_map(|n| {
            let key = n.strip_prefix(prefix)?;
            st.info(n).map(|i| (key.to_string(), (i.dtype, i.shape.clone())))
        })
        .collect();
    let path = st.path().display().to_string();
    load_with(module, &available, strict, &path, |k| st.get(&format!("{prefix}{k}")))
}

/// [`load_into`] from tensors in memory (e.g. [`TrainingCheckpoint::model`](super::TrainingCheckpoint)).
pub fn load_state_dict(
    module: &mut dyn Module,
    tensors: &[(String, Tensor)],
    strict: bool,
) -> Result<LoadReport> {
    let mut by_name = BTreeMap::new();
    for (n, t) in tensors {
        if by_name.insert(n.clone(), t).is_some() {
            return Err(Error::Checkpoint {
                path: "<state dict>".into(),
                msg: format!("tensor `{n}` appears twice"),
            });
        }
    }
    let available = by_name.iter().map(|(n, t)| (n.clone(), (t.dtype(), t.shape().to_vec()))).collect();
    load_with(module, &available, strict, "<state dict>", |k| Ok(by_name[k].clone()))
}

fn load_with(
    module: &mut dyn Module,
    available: &BTreeMap<String, (DType, Vec<usize>)>,
    strict: bool,
    path: &str,
    mut fetch: impl FnMut(&str) -> Result<Tensor>,
) -> Result<LoadReport> {
    let mut report = LoadReport::default();
    let mut wanted = BTreeMap::new();
    module.visit("", &mut |n, p| {
        wanted.insert(n.to_string(), (p.value().dtype(), p.value().shape().to_vec()));
    });
    for (name, (dtype, shape)) in &wanted {
        match available.get(name) {
            None => report.missing.push(name.clone()),
            Some((fd, fs)) if fd != dtype || fs != shape => report.mismatched.push(KeyMismatch {
                name: name.clone(),
                module_shape: shape.clone(),
                module_dtype: *dtype,
                file_shape: fs.clone(),
                file_dtype: *fd,
            }),
            Some(_) => report.loaded.push(name.clone()),
        }
    }
    report.unexpected = available.keys().filter(|k| !wanted.contains_key(*k)).cloned().collect();
    if strict && !report.is_clean() {
        return Err(Error::Checkpoint {
            path: path.to_string(),
            msg: format!("strict load failed: {report}"),
        });
    }
    // Materialise everything before touching the module, so a read error leaves it unchanged.
    let mut values = BTreeMap::new();
    for name in &report.loaded {
        values.insert(name.clone(), fetch(name)?);
    }
    let mut set_err = None;
    module.visit_mut("", &mut |n, p| {
        if let Some(t) = values.remove(n)
            && let Err(e) = p.set_value(t)
        {
            set_err.get_or_insert(e);
        }
    });
    match set_err {
        Some(e) => Err(e.into()),
        None => Ok(report),
    }
}
