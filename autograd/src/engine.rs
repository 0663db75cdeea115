//! The backward pass: topological walk from the output, one `BackwardOp` call per node, gradient
//! accumulation, hooks, anomaly checks, pruning and freeing.

use crate::context::is_anomaly_enabled;
use crate::node::{Meta, VarId, anomaly};
use crate::{Error, Phase, Result, Var};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tensor::Tensor;

/// Gradients returned by [`grad`] and [`Var::backward_collect`], keyed by variable.
#[derive(Default, Clone)]
pub struct Gradients {
    map: HashMap<VarId, Tensor>,
}

impl Gradients {
    /// The gradient of the output with respect to `v`, if `v` was asked for and reached.
    pub fn get(&self, v: &Var) -> Option<&Tensor> {
        self.map.get(&v.id())
    }
    pub fn get_id(&self, id: VarId) -> Option<&Tensor> {
        self.map.get(&id)
    }
    pub fn len(&self) -> usize {
        self.map.len()
    }
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// Nodes reachable from `root`, inputs before the nodes that use them.
pub(crate) fn topo_order(root: &Arc<Meta>) -> Vec<Arc<Meta>> {
    let mut order = Vec::new();
    let mut seen = HashSet::new();
    // iterative DFS: (node, inputs expanded?)
    let mut stack = vec![(root.clone(), false)];
    while let Some((m, expanded)) = stack.pop() {
        if expanded {
            order.push(m);
            continue;
        }
        if !seen.insert(m.id) {
            continue;
        }
        stack.push((m.clone(), true));
        for i in m.inputs() {
            if !seen.contains(&i.id) {
                stack.push((i, false));
            }
        }
    }
    order
}

pub(crate) struct Run<'a> {
    /// Return the gradients of these ids.
    pub targets: &'a HashSet<VarId>,
    /// Accumulate into `.grad()` of leaves that require grad (and of `retain_grad` non-leaves).
    pub accumulate: bool,
    pub retain_graph: bool,
}

pub(crate) fn run(root: &Var, grad_root: Tensor, cfg: Run<'_>) -> Result<Gradients> {
    if !root.requires_grad() {
        return Err(Error::NoGradPath);
    }
    if grad_root.shape() != root.shape() || grad_root.dtype() != root.dtype() {
        return Err(Error::GradShape {
            op: root.op_name().to_string(),
            label: root.label(),
            input: 0,
            expected: root.shape().to_vec(),
            got: grad_root.shape().to_vec(),
        });
    }
    let order = topo_order(&root.meta);
    if let Some(m) =
        order.iter().find(|m| m.grad_fn.as_ref().is_some_and(|g| g.freed.load(Ordering::Relaxed)))
    {
        return Err(Error::GraphFreed { op: m.op_name().to_string(), label: m.label() });
    }
    // which nodes lead to something that wants a gradient (pruning)
    let mut leads: HashMap<VarId, bool> = HashMap::with_capacity(order.len());
    for m in &order {
        let wanted = cfg.targets.contains(&m.id)
            || (cfg.accumulate
                && m.requires_grad
                && (m.grad_fn.is_none() || m.retain_grad.load(Ordering::Relaxed)))
            || m.hooks.lock().map(|h| !h.is_empty()).unwrap_or(false);
        let via_inputs = m.inputs().iter().any(|i| leads.get(&i.id).copied().unwrap_or(false));
        leads.insert(m.id, m.requires_grad && (wanted || via_inputs));
    }
    let anomaly_on = is_anomaly_enabled();
    let mut grads: HashMap<VarId, Tensor> = HashMap::new();
    grads.insert(root.meta.id, grad_root);
    let mut out = Gradients::default();
    for m in order.iter().rev() {
        if !leads[&m.id] {
            continue;
        }
        let Some(mut g) = grads.remove(&m.id) else { continue };
        if let Ok(hooks) = m.hooks.lock() {
            for h in hooks.iter() {
                if let Some(r) = h(&g) {
                    if r.shape() != g.shape() || r.dtype() != g.dtype() {
                        return Err(Error::Backward {
                            op: m.op_name().to_string(),
                            label: m.label(),
                            msg: format!(
                                "a hook replaced a gradient of shape {:?} by one of shape {:?}",
                                g.shape(),
                                r.shape()
                            ),
                        });
                    }
                    g = r;
                }
            }
        }
        if cfg.targets.contains(&m.id) {
            out.map.insert(m.id, g.clone());
        }
        if cfg.accumulate && (m.grad_fn.is_none() || m.retain_grad.load(Ordering::Relaxed)) {
            let mut slot = m.grad.lock().map_err(|_| poisoned(m))?;
            *slot = Some(match slot.take() {
                Some(prev) => prev.add(&g)?,
                None => g.clone(),
            });
        }
        let Some(gf) = &m.grad_fn else { continue };
        let inputs = gf.inputs.lock().map_err(|_| poisoned(m))?.clone();
        let needs: Vec<bool> = inputs.iter().map(|i| leads.get(&i.id).copied().unwrap_or(false)).collect();
        if !needs.iter().any(|&n| n) {
            continue;
        }
        let input_grads = {
            let op_slot = gf.op.lock().map_err(|_| poisoned(m))?;
            let op = op_slot
                .as_ref()
                .ok_or_else(|| Error::GraphFreed { op: gf.op_name.to_string(), label: m.label() })?;
            op.backward(&g, &needs).map_err(|e| with_node(e, m))?
        };
        if input_grads.len() != inputs.len() {
            return Err(Error::Backward {
                op: gf.op_name.to_string(),
                label: m.label(),
                msg: format!("rule returned {} gradients for {} inputs", input_grads.len(), inputs.len()),
            });
        }
        for (k, (inp, ig)) in inputs.iter().zip(input_grads).enumerate() {
            let Some(ig) = ig else { continue };
            if !needs[k] {
                continue;
            }
            if ig.shape() != inp.shape.as_slice() || ig.dtype() != inp.dtype {
                return Err(Error::GradShape {
                    op: gf.op_name.to_string(),
                    label: m.label(),
                    input: k,
                    expected: inp.shape.clone(),
                    got: ig.shape().to_vec(),
                });
            }
            if anomaly_on {
                anomaly(gf.op_name, m.label(), Phase::Backward, &ig)?;
            }
            let e = grads.remove(&inp.id);
            grads.insert(
                inp.id,
                match e {
                    Some(prev) => prev.add(&ig)?,
                    None => ig,
                },
            );
        }
        if !cfg.retain_graph {
            gf.freed.store(true, Ordering::Relaxed);
            if let Ok(mut op) = gf.op.lock() {
                *op = None;
            }
            if let Ok(mut i) = gf.inputs.lock() {
                i.clear();
            }
        }
    }
    Ok(out)
}

fn poisoned(m: &Meta) -> Error {
    Error::Backward {
        op: m.op_name().to_string(),
        label: m.label(),
        msg: "a lock was poisoned by a panic".into(),
    }
}

/// Tensor errors raised inside a rule get the node's op and label attached.
fn with_node(e: Error, m: &Meta) -> Error {
    match e {
        Error::Tensor(t) => {
            Error::Backward { op: m.op_name().to_string(), label: m.label(), msg: t.to_string() }
        }
        other => other,
    }
}

impl Var {
    /// Backpropagates from this one-element output (gradient 1), accumulating into the `.grad()` of
    /// every leaf that requires grad, then frees the graph's saved tensors.
    pub fn backward(&self) -> Result<()> {
        if self.value().numel() != 1 {
            return Err(Error::NotScalar { shape: self.shape().to_vec() });
        }
        self.backward_with(&self.value().ones_like(), false)
    }

    /// Backpropagates a given output gradient; `retain_graph` keeps saved tensors for another pass.
    pub fn backward_with(&self, grad_out: &Tensor, retain_graph: bool) -> Result<()> {
        let none = HashSet::new();
        run(self, grad_out.clone(), Run { targets: &none, accumulate: true, retain_graph }).map(|_| ())
    }
}

/// Gradients of `output` (with output gradient `grad_out`, or 1 for a one-element output) with
/// respect to any variables — leaves or intermediate nodes — without touching `.grad()`.
pub fn grad(
    output: &Var,
    grad_out: Option<&Tensor>,
    wrt: &[&Var],
    retain_graph: bool,
) -> Result<Vec<Option<Tensor>>> {
    let g = match grad_out {
        Some(g) => g.clone(),
        None => {
            if output.value().numel() != 1 {
                return Err(Error::NotScalar { shape: output.shape().to_vec() });
            }
            output.value().ones_like()
        }
    };
    let targets: HashSet<VarId> = wrt.iter().map(|v| v.id()).collect();
    let r = run(output, g, Run { targets: &targets, accumulate: false, retain_graph })?;
    Ok(wrt.iter().map(|v| r.get(v).cloned()).collect())
}
