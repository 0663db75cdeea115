//! Gradient audit tools: graph export (text and Graphviz DOT) and per-term gradient attribution.
//! Hooks live on [`crate::Var::register_hook`]; anomaly mode in [`crate::context`].

pub mod attribution;
pub mod graph;
