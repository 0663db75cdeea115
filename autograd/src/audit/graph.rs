//! Export of the backward graph: one entry per node with op, family, label, shape, dtype and the
//! bytes it saved for backward.

use crate::engine::topo_order;
use crate::registry::lookup;
use crate::{Var, node::VarId};
use std::fmt::Write;

/// One node of the exported graph.
#[derive(Clone, Debug, PartialEq)]
pub struct GraphNode {
    pub id: VarId,
    pub op: &'static str,
    pub family: &'static str,
    pub label: Option<String>,
    pub shape: Vec<usize>,
    pub dtype: tensor::DType,
    pub requires_grad: bool,
    pub saved_bytes: usize,
    pub inputs: Vec<VarId>,
}

/// The nodes reachable from `root`, inputs first.
pub fn nodes(root: &Var) -> Vec<GraphNode> {
    topo_order(&root.meta)
        .iter()
        .map(|m| {
            let op = m.op_name();
            GraphNode {
                id: m.id,
                op,
                family: lookup(op).map_or("leaf", |o| o.family),
                label: m.label(),
                shape: m.shape.clone(),
                dtype: m.dtype,
                requires_grad: m.requires_grad,
                saved_bytes: m.grad_fn.as_ref().map_or(0, |g| g.saved_bytes),
                inputs: m.inputs().iter().map(|i| i.id).collect(),
            }
        })
        .collect()
}

/// A line per node: `#id op [label] shape dtype saved=… <- inputs`, inputs first, then totals.
pub fn to_text(root: &Var) -> String {
    let ns = nodes(root);
    let mut s = String::new();
    let mut total = 0;
    for n in &ns {
        total += n.saved_bytes;
        let _ = writeln!(
            s,
            "#{} {}{} {:?} {} saved={}B{}{}",
            n.id,
            n.op,
            n.label.as_ref().map(|l| format!(" [{l}]")).unwrap_or_default(),
            n.shape,
            n.dtype,
            n.saved_bytes,
            if n.requires_grad { "" } else { " (no grad)" },
            if n.inputs.is_empty() {
                String::new()
            } else {
                format!(" <- {}", n.inputs.iter().map(|i| format!("#{i}")).collect::<Vec<_>>().join(", "))
            }
        );
    }
    let _ = writeln!(s, "{} nodes, {} bytes saved for backward", ns.len(), total);
    s
}

/// Graphviz DOT of the graph (edges point from input to output, like the forward data flow).
pub fn to_dot(root: &Var) -> String {
    let ns = nodes(root);
    let mut s =
        String::from("digraph backward {\n  rankdir=TB;\n  node [shape=box, fontname=\"monospace\"];\n");
    for n in &ns {
        let label = format!(
            "{}{}\\n{:?} {}\\nsaved {} B",
            n.op,
            n.label.as_ref().map(|l| format!("\\n{}", l.replace('"', "'"))).unwrap_or_default(),
            n.shape,
            n.dtype,
            n.saved_bytes
        );
        let style = if n.op == "leaf" {
            if n.requires_grad { ", style=filled, fillcolor=lightblue" } else { ", style=dashed" }
        } else {
            ""
        };
        let _ = writeln!(s, "  n{} [label=\"{}\"{}];", n.id, label, style);
    }
    for n in &ns {
        for i in &n.inputs {
            let _ = writeln!(s, "  n{} -> n{};", i, n.id);
        }
    }
    s.push_str("}\n");
    s
}
