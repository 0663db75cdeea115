//! # autograd
//!
//! Reverse-mode automatic differentiation over `tensor` ops, built for auditing every gradient path.
//!
//! - [`Var`]: a tensor plus graph metadata. Ops on vars (`ops/`, one module per family with forward
//!   and backward side by side) record a node holding only what the backward rule saved.
//! - [`Var::backward`] accumulates into leaves' [`Var::grad`]; [`grad`] returns gradients of any
//!   nodes (leaves or intermediate) without accumulating. Saved tensors are freed as each node's
//!   backward runs (unless `retain_graph`); nodes that reach no variable needing a gradient are
//!   pruned at record time and skipped at backward time.
//! - [`registry`]: the single list of differentiable ops.
//! - Audit: labels from [`scope`], [`audit::graph`] text/DOT export with saved bytes per node,
//!   [`Var::register_hook`], anomaly mode ([`detect_anomaly`]), per-term attribution
//!   ([`audit::attribution::attribute`]).
//! - [`autocast`]: bf16 mixed precision scopes (`torch.autocast`), casts recorded as graph nodes.
//! - [`gradcheck`]: f64 central differences against the analytic gradient.

pub mod audit;
pub mod autocast;
pub mod context;
mod engine;
mod error;
pub mod gradcheck;
pub mod node;
pub mod ops;
pub mod registry;
mod var;

pub use autocast::{AutocastGuard, autocast, autocast_disabled, autocast_dtype, is_autocast_enabled};
pub use context::{
    AnomalyGuard, NoGradGuard, current_label, detect_anomaly, is_anomaly_enabled, is_grad_enabled, no_grad,
    scope,
};
pub use engine::{Gradients, grad};
pub use error::{Error, Phase, Result};
pub use gradcheck::{GradcheckOptions, GradcheckReport, gradcheck};
pub use node::{BackwardOp, VarId};
pub use ops::loss::Reduction;
pub use var::Var;
