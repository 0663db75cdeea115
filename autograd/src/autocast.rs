//! Automatic mixed precision (`torch.autocast` for bf16): a thread-local, nestable scope under which
//! the compute-heavy ops run in a half dtype while the numerically sensitive ones run in f32.
//!
//! Inside [`autocast`]`(DType::BF16, ..)` (or while an [`AutocastGuard`] lives):
//!
//! | ops | inputs | output |
//! |---|---|---|
//! | `matmul`, [`Var::linear`], `conv2d` (bias included), `attention` | f32/f16 → bf16 | bf16 |
//! | `group_norm`, `group_norm_silu` (modulation included), `layer_norm`, `softmax`, `log_softmax`, `mse_loss`, reductions (`sum`, `mean`, `var`, `max`, `min`), `exp`, `log`, `rsqrt`, `recip`, `powf`, `pow` | f16/bf16 → f32 | f32 |
//! | binary elementwise (`add`, `sub`, `mul`, `div`, `maximum`, `minimum`), `where_cond`, `cat` with mixed float dtypes | the narrower → the wider (f16/bf16 + f32 → f32, f16 + bf16 → f32, anything + f64 → f64) | the wider |
//! | everything else (activations, views, upsampling, …) | unchanged | the input's dtype |
//!
//! The lists follow PyTorch's CUDA autocast (`autocast_mode.cpp`: the "lower precision fp" list and
//! the "fp32" list), restricted to the ops this crate has. As there, the output of a
//! lower-precision op is in the half dtype (PyTorch returns bf16 from `matmul`/`linear`/`conv2d`
//! under `autocast(dtype=torch.bfloat16)`), f64 tensors are never cast, and every cast is an
//! ordinary differentiable [`Var::to_dtype`] node: an f32 parameter used by a bf16 matmul receives
//! its gradient in f32 (the cast's backward casts the bf16 gradient back), so optimizers keep f32
//! master weights and f32 moments. Outside any scope nothing changes: binary ops still refuse mixed
//! dtypes (`DTypeMismatch`), as the tensor layer does.
//!
//! Differences from PyTorch: casts are not cached within a scope (a weight used twice is cast twice;
//! PyTorch caches the cast of leaf weights until the outermost scope exits), and binary-op
//! promotion of mixed float dtypes happens only inside a scope (PyTorch promotes always).
//!
//! No loss scaling: bf16 has f32's exponent range (8 bits), so gradients do not underflow the way
//! f16 ones do; PyTorch likewise needs no `GradScaler` for bf16. f16 is accepted by the scope but
//! this crate has no gradient scaler, so f16 training may lose small gradients.
//!
//! Backward rules run on tensors, not through these casts: a gradient has the dtype of the value it
//! belongs to (bf16 for a bf16 activation, f32 for an f32 parameter).

use crate::{Error, Result, Var};
use std::cell::RefCell;
use tensor::DType;

thread_local! {
    /// The scope stack: `Some(dtype)` = autocast on, `None` = disabled inside an enclosing scope.
    static STACK: RefCell<Vec<Option<DType>>> = const { RefCell::new(Vec::new()) };
}

/// The half dtype of the innermost enabled scope on this thread, `None` outside any scope or inside
/// [`autocast_disabled`].
pub fn autocast_dtype() -> Option<DType> {
    STACK.with(|s| s.borrow().last().copied().flatten())
}

/// True inside an enabled autocast scope.
pub fn is_autocast_enabled() -> bool {
    autocast_dtype().is_some()
}

/// While alive, ops on this thread autocast (or, from [`AutocastGuard::disabled`], do not).
/// Guards nest; drop them in reverse order of creation (scoped use does this).
#[must_use = "autocast applies only while the guard lives"]
pub struct AutocastGuard(());

impl AutocastGuard {
    /// Enters an autocast scope computing in `dtype` (bf16, or f16); other dtypes are an error.
    pub fn new(dtype: DType) -> Result<Self> {
        if !dtype.is_half() {
            return Err(Error::Autocast { dtype });
        }
        STACK.with(|s| s.borrow_mut().push(Some(dtype)));
        Ok(Self(()))
    }

    /// Enters a scope where autocast is off (as `torch.autocast(enabled=False)` inside an enabled
    /// region): ops keep their inputs' dtypes.
    pub fn disabled() -> Self {
        STACK.with(|s| s.borrow_mut().push(None));
        Self(())
    }
}

impl Drop for AutocastGuard {
    fn drop(&mut self) {
        STACK.with(|s| {
            s.borrow_mut().pop();
        });
    }
}

/// Runs `f` under autocast to `dtype` (bf16 or f16). A dtype that is not a half float is an
/// [`Error::Autocast`] (converted into `f`'s error type) and `f` is not run.
///
/// ```
/// # use autograd::{Var, autocast};
/// # use tensor::{DType, Tensor};
/// let x = Var::constant(Tensor::ones(&[2, 3], DType::F32));
/// let w = Var::leaf(Tensor::ones(&[3, 4], DType::F32));
/// let y = autocast(DType::BF16, || x.matmul(&w))?;
/// assert_eq!(y.dtype(), DType::BF16);
/// # Ok::<(), autograd::Error>(())
/// ```
pub fn autocast<R, E: From<Error>>(
    dtype: DType,
    f: impl FnOnce() -> std::result::Result<R, E>,
) -> std::result::Result<R, E> {
    let _g = AutocastGuard::new(dtype)?;
    f()
}

/// Runs `f` with autocast off (inside an enabled scope, for a region that must stay in f32).
pub fn autocast_disabled<R>(f: impl FnOnce() -> R) -> R {
    let _g = AutocastGuard::disabled();
    f()
}

/// Input of a lower-precision op: float, non-f64 values cast to the scope's half dtype.
pub(crate) fn lower(v: &Var) -> Result<Var> {
    match autocast_dtype() {
        Some(d) if v.dtype().is_float() && v.dtype() != DType::F64 && v.dtype() != d => v.to_dtype(d),
        _ => Ok(v.clone()),
    }
}

/// Input of an f32 op: half values cast to f32.
pub(crate) fn upper(v: &Var) -> Result<Var> {
    if is_autocast_enabled() && v.dtype().is_half() { v.to_dtype(DType::F32) } else { Ok(v.clone()) }
}

/// Inputs of an elementwise op with mixed float dtypes: all cast to the widest (f64 if any, else
/// f32). Unchanged outside a scope, or when the dtypes agree or one is not a float.
pub(crate) fn promote(vars: &[&Var]) -> Result<Vec<Var>> {
    let same = vars.windows(2).all(|w| w[0].dtype() == w[1].dtype());
    if same || !is_autocast_enabled() || !vars.iter().all(|v| v.dtype().is_float()) {
        return Ok(vars.iter().map(|v| (*v).clone()).collect());
    }
    let wide = if vars.iter().any(|v| v.dtype() == DType::F64) { DType::F64 } else { DType::F32 };
    vars.iter().map(|v| if v.dtype() == wide { Ok((*v).clone()) } else { v.to_dtype(wide) }).collect()
}
