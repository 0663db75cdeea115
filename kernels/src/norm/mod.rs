//! Group norm and layer norm, forward and backward, with optional per-channel / per-column affine.
//!
//! Statistics: blocked shifted two-pass moments merged with Chan's formula in f64
//! (`reduce::simd::moments`): each 256-element block is read from memory once (its second read hits
//! L1), so the forward reads `x` from memory once for the statistics, re-reads it from cache (a group
//! of (8,128,32,32)/32 is 16 KiB) to normalise, and writes `y` once. Chosen over Welford (a division per
//! element) and over one-pass `E[x²] − E[x]²` (destroyed by cancellation when `|mean| ≫ std`, e.g.
//! `x = 1e4 + noise`). The variance is the biased one (divide by the group size), `eps` is added to it,
//! `rstd = 1/sqrt(var + eps)` (computed in f64), like PyTorch.
//!
//! Large offsets: the mean is kept as `hi + lo` in `T` so `(x − hi) − lo` is accurate; the backward
//! recomputes the exact mean's low part from `x` (`Σ(x − mean_saved)/M`, fused into its first pass), so
//! the f32-rounded saved mean costs no accuracy either.
//!
//! Backward (`M` = elements per group / row, `x̂ = (x − μ)·rstd`, `g` = gamma or 1):
//! `dx = rstd·(g·dy − mean(g·dy) − x̂·mean(g·dy·x̂))`, `dgamma = Σ dy·x̂`, `dbeta = Σ dy`, computed from
//! per-channel sums `Σdy`, `Σdy·(x − μ)` (one pass over x, dy, in `T` lanes flushed to f64 every 256
//! elements) and a second pass writing dx. Parallel over (n, group) / blocks of rows; the split depends
//! only on the shapes, so results do not depend on the thread count.
//!
//! Fused ResNet epilogue ([`group_norm_silu_forward`] / [`group_norm_silu_backward`]):
//! `SiLU(GN(x)·(1 + a) + b)` with per-(sample, channel) `a`, `b`, the same statistics, and one output
//! pass (`z = (x − μ)·k + c0` with `k`, `c0` folded per channel). Its backward writes `dz` into `dx`,
//! sums `Σdz`, `Σdz·(x − μ)` per channel (giving `da`, `db`, and the group-norm terms of `dh = dz·(1 + a)`)
//! and overwrites `dx` in a last pass. Oracle: the composed f64 chain in `reference.rs`.

mod cpu;
#[cfg(any(feature = "cuda", feature = "emu"))]
pub mod cuda;
#[cfg(all(test, feature = "emu"))]
mod cuda_tests;
#[cfg(test)]
pub(crate) mod reference;
#[cfg(test)]
mod tests;

use crate::Float;

fn check_affine<T>(what: &str, name: &str, v: Option<&[T]>, len: usize) {
    if let Some(v) = v {
        check_lens(what, &[(name, v.len(), len)]);
    }
}

/// Asserts each `(buffer, length, expected)`; the message names the op and the buffer.
fn check_lens(what: &str, bufs: &[(&str, usize, usize)]) {
    for &(name, len, want) in bufs {
        assert_eq!(len, want, "{what}: {name} has {len} elements, expected {want}");
    }
}

/// The checks every group-norm entry makes: `groups` divides `c`, then each `[n, c, spatial]` buffer
/// in `data` and each `[n·groups]` statistic in `stats` has its length.
///
/// Panics on a violation, like the rest of this crate's slice-level API: these functions sit below
/// the typed-error layer. The user-facing entries (`tensor::Tensor::group_norm`,
/// `group_norm_silu` and their backwards) check `c % groups` (returning `Error::InvalidArgument`) and
/// size every buffer from the shapes before calling here, so the asserts cannot fire from user input.
fn check_gn(
    what: &str,
    [n, c, spatial, groups]: [usize; 4],
    data: &[(&str, usize)],
    stats: &[(&str, usize)],
) {
    assert!(groups > 0 && c.is_multiple_of(groups), "{what}: groups {groups} must divide c {c}");
    let (len, st) = (n * c * spatial, n * groups);
    for &(name, l) in data {
        check_lens(what, &[(name, l, len)]);
    }
    for &(name, l) in stats {
        check_lens(what, &[(name, l, st)]);
    }
}

/// Group norm forward.
///
/// `x`, `y`: contiguous `[n, c, spatial]`; `groups` divides `c`; each group of `c/groups` channels of one
/// sample is normalised with its own mean and biased variance (`eps` added to the variance), then
/// `y = x̂·gamma[ch] + beta[ch]` when the affine parameters are given (`gamma`, `beta`: `[c]`; a missing one
/// means 1 / 0). `y` is overwritten. `mean`, `rstd`: `[n * groups]`, overwritten with each group's mean
/// and `1/sqrt(var + eps)` (saved for the backward). An empty group (`spatial == 0`) gets mean 0 and
/// rstd `1/sqrt(eps)`.
#[allow(clippy::too_many_arguments)]
pub fn group_norm_forward<T: Float>(
    n: usize,
    c: usize,
    spatial: usize,
    groups: usize,
    eps: T,
    x: &[T],
    gamma: Option<&[T]>,
    beta: Option<&[T]>,
    y: &mut [T],
    mean: &mut [T],
    rstd: &mut [T],
) {
    const W: &str = "group_norm_forward";
    check_gn(
        W,
        [n, c, spatial, groups],
        &[("x", x.len()), ("y", y.len())],
        &[("mean", mean.len()), ("rstd", rstd.len())],
    );
    check_affine(W, "gamma", gamma, c);
    check_affine(W, "beta", beta, c);
    cpu::group_norm_forward(c, spatial, groups, eps, x, gamma, beta, y, mean, rstd);
}

/// Group norm backward.
///
/// Inputs as in [`group_norm_forward`] (`x`, `dy`: `[n, c, spatial]`; `mean`, `rstd`: `[n * groups]` from
/// the forward; `gamma`: `[c]` or `None` for 1). `dx` (`[n, c, spatial]`) is overwritten; `dgamma`,
/// `dbeta` (`[c]`) are overwritten when given (not accumulated).
#[allow(clippy::too_many_arguments)]
pub fn group_norm_backward<T: Float>(
    n: usize,
    c: usize,
    spatial: usize,
    groups: usize,
    x: &[T],
    gamma: Option<&[T]>,
    mean: &[T],
    rstd: &[T],
    dy: &[T],
    dx: &mut [T],
    dgamma: Option<&mut [T]>,
    dbeta: Option<&mut [T]>,
) {
    const W: &str = "group_norm_backward";
    let data = [("x", x.len()), ("dy", dy.len()), ("dx", dx.len())];
    check_gn(W, [n, c, spatial, groups], &data, &[("mean", mean.len()), ("rstd", rstd.len())]);
    check_affine(W, "gamma", gamma, c);
    check_affine(W, "dgamma", dgamma.as_deref(), c);
    check_affine(W, "dbeta", dbeta.as_deref(), c);
    cpu::group_norm_backward(n, c, spatial, groups, x, gamma, mean, rstd, dy, dx, dgamma, dbeta);
}

/// Fused group norm + timestep modulation + SiLU forward (the ResNet block's epilogue):
///
/// `y = SiLU(GN(x; gamma, beta, groups, eps)·(1 + scale[s, ch]) + shift[s, ch])`, `SiLU(z) = z·σ(z)`.
///
/// Shapes as in [`group_norm_forward`] (`x`, `y`: contiguous `[n, c, spatial]`, `gamma`, `beta`: `[c]`
/// or `None` for 1 / 0, `mean`, `rstd`: `[n * groups]`, overwritten with the same saved statistics as
/// the plain group norm). `scale`, `shift`: `[n, c]` (one value per sample and channel, e.g. from the
/// timestep embedding) or `None` for 0 — with both `None` this is `SiLU(GN(x))`. Bitwise it is not the
/// composed chain: the per-(sample, channel) factors are folded, `z = (x − μ)·(rstd·γ·(1 + a)) +
/// (β·(1 + a) + b)`, so results agree with it to rounding.
///
/// # Panics
/// When `groups` does not divide `c` or a buffer's length disagrees with the shapes (see `check_gn`:
/// the checked entry `tensor::Tensor::group_norm_silu` returns a typed error for those first).
#[allow(clippy::too_many_arguments)]
pub fn group_norm_silu_forward<T: Float>(
    n: usize,
    c: usize,
    spatial: usize,
    groups: usize,
    eps: T,
    x: &[T],
    gamma: Option<&[T]>,
    beta: Option<&[T]>,
    scale: Option<&[T]>,
    shift: Option<&[T]>,
    y: &mut [T],
    mean: &mut [T],
    rstd: &mut [T],
) {
    const W: &str = "group_norm_silu_forward";
    check_gn(
        W,
        [n, c, spatial, groups],
        &[("x", x.len()), ("y", y.len())],
        &[("mean", mean.len()), ("rstd", rstd.len())],
    );
    check_affine(W, "gamma", gamma, c);
    check_affine(W, "beta", beta, c);
    check_affine(W, "scale", scale, n * c);
    check_affine(W, "shift", shift, n * c);
    let p = cpu::GnSiluParams { gamma, beta, scale, shift };
    cpu::group_norm_silu_forward(c, spatial, groups, eps, x, p, y, mean, rstd);
}

/// Gradients written by [`group_norm_silu_backward`]; each is overwritten when given (not accumulated).
/// `dgamma`, `dbeta`: `[c]`; `dscale`, `dshift`: `[n, c]` (the gradient at the given `scale`/`shift`,
/// also when those are `None`, i.e. 0).
#[derive(Debug, Default)]
pub struct GnSiluGrads<'a, T> {
    pub dgamma: Option<&'a mut [T]>,
    pub dbeta: Option<&'a mut [T]>,
    pub dscale: Option<&'a mut [T]>,
    pub dshift: Option<&'a mut [T]>,
}

/// Fused group norm + modulation + SiLU backward.
///
/// Inputs as in [`group_norm_silu_forward`] (the same `gamma`, `beta`, `scale`, `shift`; `mean`,
/// `rstd` saved by it), `dy`: `[n, c, spatial]`. `dx` (`[n, c, spatial]`) is overwritten; the
/// parameter gradients in `grads` are overwritten when given. With `z` the SiLU input and `h` the
/// group-norm output: `dz = dy·σ(z)·(1 + z·(1 − σ(z)))`, `dshift = Σ_hw dz`, `dscale = Σ_hw dz·h`,
/// `dh = dz·(1 + scale)`, then the group norm backward of `dh` gives `dx`, `dgamma`, `dbeta`.
///
/// # Panics
/// As [`group_norm_silu_forward`] (checked entry: `tensor::Tensor::group_norm_silu_backward`).
#[allow(clippy::too_many_arguments)]
pub fn group_norm_silu_backward<T: Float>(
    n: usize,
    c: usize,
    spatial: usize,
    groups: usize,
    x: &[T],
    gamma: Option<&[T]>,
    beta: Option<&[T]>,
    scale: Option<&[T]>,
    shift: Option<&[T]>,
    mean: &[T],
    rstd: &[T],
    dy: &[T],
    dx: &mut [T],
    grads: GnSiluGrads<'_, T>,
) {
    const W: &str = "group_norm_silu_backward";
    let data = [("x", x.len()), ("dy", dy.len()), ("dx", dx.len())];
    check_gn(W, [n, c, spatial, groups], &data, &[("mean", mean.len()), ("rstd", rstd.len())]);
    check_affine(W, "gamma", gamma, c);
    check_affine(W, "beta", beta, c);
    check_affine(W, "scale", scale, n * c);
    check_affine(W, "shift", shift, n * c);
    check_affine(W, "dgamma", grads.dgamma.as_deref(), c);
    check_affine(W, "dbeta", grads.dbeta.as_deref(), c);
    check_affine(W, "dscale", grads.dscale.as_deref(), n * c);
    check_affine(W, "dshift", grads.dshift.as_deref(), n * c);
    let p = cpu::GnSiluParams { gamma, beta, scale, shift };
    cpu::group_norm_silu_backward(n, c, spatial, groups, x, p, mean, rstd, dy, dx, grads);
}

/// Layer norm forward: normalises each row of a contiguous `[rows, cols]` `x` (biased variance, `eps`
/// added to it), then `y = x̂·gamma[j] + beta[j]` (`gamma`, `beta`: `[cols]`, optional). `y` is
/// overwritten; `mean`, `rstd` (`[rows]`) are overwritten with each row's mean and `1/sqrt(var + eps)`.
#[allow(clippy::too_many_arguments)]
pub fn layer_norm_forward<T: Float>(
    rows: usize,
    cols: usize,
    eps: T,
    x: &[T],
    gamma: Option<&[T]>,
    beta: Option<&[T]>,
    y: &mut [T],
    mean: &mut [T],
    rstd: &mut [T],
) {
    const W: &str = "layer_norm_forward";
    let len = rows * cols;
    check_lens(
        W,
        &[("x", x.len(), len), ("y", y.len(), len), ("mean", mean.len(), rows), ("rstd", rstd.len(), rows)],
    );
    check_affine(W, "gamma", gamma, cols);
    check_affine(W, "beta", beta, cols);
    cpu::layer_norm_forward(rows, cols, eps, x, gamma, beta, y, mean, rstd);
}

/// Layer norm backward. `x`, `dy`: `[rows, cols]`; `mean`, `rstd`: `[rows]` from the forward; `gamma`:
/// `[cols]` or `None`. `dx` (`[rows, cols]`) is overwritten; `dgamma`, `dbeta` (`[cols]`) are overwritten
/// when given.
#[allow(clippy::too_many_arguments)]
pub fn layer_norm_backward<T: Float>(
    rows: usize,
    cols: usize,
    x: &[T],
    gamma: Option<&[T]>,
    mean: &[T],
    rstd: &[T],
    dy: &[T],
    dx: &mut [T],
    dgamma: Option<&mut [T]>,
    dbeta: Option<&mut [T]>,
) {
    const W: &str = "layer_norm_backward";
    let len = rows * cols;
    check_lens(W, &[("x", x.len(), len), ("dy", dy.len(), len), ("dx", dx.len(), len)]);
    check_lens(W, &[("mean", mean.len(), rows), ("rstd", rstd.len(), rows)]);
    check_affine(W, "gamma", gamma, cols);
    check_affine(W, "dgamma", dgamma.as_deref(), cols);
    check_affine(W, "dbeta", dbeta.as_deref(), cols);
    cpu::layer_norm_backward(rows, cols, x, gamma, mean, rstd, dy, dx, dgamma, dbeta);
}
