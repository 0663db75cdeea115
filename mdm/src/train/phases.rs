//! Growing a model by one or more outer levels: the `k`-level model's parameter names are the full
//! model's names without the `inner_unet.` prefixes of the levels around it, so a smaller model's
//! weights load into the inner part of a bigger one by prefixing each name (spec §4.2,
//! ml-mdm's `initialize_inner_with_pretrained`).

use super::{Result, TrainError};
use nn::Module;
use nn::checkpoint::load_state_dict;

/// `inner_unet.` repeated `extra` times.
pub fn inner_prefix(extra: usize) -> String {
    "inner_unet.".repeat(extra)
}

/// Loads `small` (a `small_levels`-level model's state dict) into the inner part of `big` (a
/// model with `big_levels` levels). Every small key must exist in `big` with the same shape and
/// dtype, else the error lists them all and nothing is changed. `what` names the source in errors.
pub fn grow_into(
    big: &mut dyn Module,
    big_levels: usize,
    small: &[(String, tensor::Tensor)],
    small_levels: usize,
    what: &str,
) -> Result<()> {
    if small_levels > big_levels {
        return Err(TrainError::Checkpoint {
            path: what.into(),
            msg: format!("has {small_levels} levels, more than the {big_levels} of the model to initialise"),
        });
    }
    let prefix = inner_prefix(big_levels - small_levels);
    let renamed: Vec<(String, tensor::Tensor)> =
        small.iter().map(|(n, t)| (format!("{prefix}{n}"), t.clone())).collect();
    // Check before loading so a bad checkpoint leaves the model untouched.
    let have: std::collections::BTreeMap<String, (Vec<usize>, tensor::DType)> = big
        .named_params()
        .into_iter()
        .map(|(n, p)| (n, (p.value().shape().to_vec(), p.value().dtype())))
        .collect();
    let mut problems = vec![];
    for (n, t) in &renamed {
        match have.get(n) {
            None => problems.push(format!("`{n}` does not exist in the bigger model")),
            Some((s, d)) if s != t.shape() || *d != t.dtype() => problems.push(format!(
                "`{n}` is {:?} {} in the checkpoint but {s:?} {d} in the model",
                t.shape(),
                t.dtype()
            )),
            _ => {}
        }
    }
    let inner_count = have.keys().filter(|n| n.starts_with(&prefix)).count();
    if problems.is_empty() && inner_count != renamed.len() {
        problems.push(format!(
            "the model's inner part has {inner_count} parameters, the checkpoint {}",
            renamed.len()
        ));
    }
    if !problems.is_empty() {
        return Err(TrainError::Checkpoint {
            path: what.into(),
            msg: format!("cannot initialise the inner levels: {}", problems.join("; ")),
        });
    }
    load_state_dict(big, &renamed, false)?;
    Ok(())
}
