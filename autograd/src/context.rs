//! Thread-local recording state: the no-grad switch, anomaly mode, and the label scope stack.

use std::cell::{Cell, RefCell};

thread_local! {
    static NO_GRAD: Cell<usize> = const { Cell::new(0) };
    static ANOMALY: Cell<usize> = const { Cell::new(0) };
    static SCOPE: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// True while ops are recorded (not inside `no_grad`).
pub fn is_grad_enabled() -> bool {
    NO_GRAD.with(|c| c.get() == 0)
}

/// True while anomaly mode is on.
pub fn is_anomaly_enabled() -> bool {
    ANOMALY.with(|c| c.get() > 0)
}

/// While alive, ops are not recorded (results are constants).
#[must_use = "the guard disables recording only while it lives"]
pub struct NoGradGuard(());

impl NoGradGuard {
    pub fn new() -> Self {
        NO_GRAD.with(|c| c.set(c.get() + 1));
        Self(())
    }
}

impl Default for NoGradGuard {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for NoGradGuard {
    fn drop(&mut self) {
        NO_GRAD.with(|c| c.set(c.get() - 1));
    }
}

/// Runs `f` without recording.
pub fn no_grad<R>(f: impl FnOnce() -> R) -> R {
    let _g = NoGradGuard::new();
    f()
}

/// While alive, every forward output and backward gradient is checked for NaN/Inf.
#[must_use = "anomaly mode is on only while the guard lives"]
pub struct AnomalyGuard(());

impl AnomalyGuard {
    pub fn new() -> Self {
        ANOMALY.with(|c| c.set(c.get() + 1));
        Self(())
    }
}

impl Default for AnomalyGuard {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for AnomalyGuard {
    fn drop(&mut self) {
        ANOMALY.with(|c| c.set(c.get() - 1));
    }
}

/// Runs `f` with anomaly mode on.
pub fn detect_anomaly<R>(f: impl FnOnce() -> R) -> R {
    let _g = AnomalyGuard::new();
    f()
}

/// While alive, nodes recorded on this thread carry this name (joined with enclosing scopes by
/// `.`) as their label, e.g. `inner_unet.down_blocks.1.attn.0`.
#[must_use = "the scope applies only while the guard lives"]
pub struct ScopeGuard(());

/// Enters a label scope.
pub fn scope(name: impl Into<String>) -> ScopeGuard {
    SCOPE.with(|s| s.borrow_mut().push(name.into()));
    ScopeGuard(())
}

impl Drop for ScopeGuard {
    fn drop(&mut self) {
        SCOPE.with(|s| {
            s.borrow_mut().pop();
        });
    }
}

/// The current dotted label, if inside any scope.
pub fn current_label() -> Option<String> {
    SCOPE.with(|s| {
        let s = s.borrow();
        if s.is_empty() { None } else { Some(s.join(".")) }
    })
}
