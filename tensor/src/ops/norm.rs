//! Group norm and layer norm with optional affine, forward (saving mean and 1/std) and backward.

use super::{FloatElem, dispatch_float};
use crate::{Error, Result, Tensor};
use kernels::norm;
use kernels::pool::PooledVec;

/// A normalisation's output plus the statistics saved for backward.
#[derive(Clone)]
pub struct NormOutput {
    pub y: Tensor,
    /// Per-(sample, group) or per-row mean.
    pub mean: Tensor,
    /// Per-(sample, group) or per-row `1 / sqrt(var + eps)`.
    pub rstd: Tensor,
}

/// Gradients of a normalisation.
#[derive(Clone)]
pub struct NormGrads {
    pub dx: Tensor,
    pub dgamma: Option<Tensor>,
    pub dbeta: Option<Tensor>,
}

fn affine_check(op: &'static str, t: Option<&Tensor>, x: &Tensor, len: usize) -> Result<Option<Tensor>> {
    match t {
        None => Ok(None),
        Some(t) => {
            x.check_same(op, t)?;
            if t.shape() != [len] {
                return Err(Error::ShapeMismatch { op, lhs: t.shape().to_vec(), rhs: vec![len] });
            }
            Ok(Some(t.float_input(op)?.contiguous()?))
        }
    }
}

fn gn_fwd<T: FloatElem>(
    dims: [usize; 4],
    eps: f64,
    x: &Tensor,
    g: Option<&Tensor>,
    b: Option<&Tensor>,
) -> NormOutput {
    let [n, c, sp, groups] = dims;
    let mut y = PooledVec::<T>::zeros(x.numel());
    let mut mean = PooledVec::<T>::zeros(n * groups);
    let mut rstd = PooledVec::<T>::zeros(n * groups);
    norm::group_norm_forward(
        n,
        c,
        sp,
        groups,
        T::from_f64(eps),
        x.contiguous_data::<T>(),
        g.map(|g| g.contiguous_data::<T>()),
        b.map(|b| b.contiguous_data::<T>()),
        &mut y,
        &mut mean,
        &mut rstd,
    );
    NormOutput {
        y: Tensor::from_pooled(y, x.shape()),
        mean: Tensor::from_pooled(mean, &[n, groups]),
        rstd: Tensor::from_pooled(rstd, &[n, groups]),
    }
}

fn gn_bwd<T: FloatElem>(
    dims: [usize; 4],
    x: &Tensor,
    g: Option<&Tensor>,
    s: &NormOutput,
    dy: &Tensor,
    affine: bool,
) -> NormGrads {
    let [n, c, sp, groups] = dims;
    let mut dx = PooledVec::<T>::zeros(x.numel());
    let mut dg = PooledVec::<T>::zeros(c);
    let mut db = PooledVec::<T>::zeros(c);
    norm::group_norm_backward(
        n,
        c,
        sp,
        groups,
        x.contiguous_data::<T>(),
        g.map(|g| g.contiguous_data::<T>()),
        s.mean.contiguous_data::<T>(),
        s.rstd.contiguous_data::<T>(),
        dy.contiguous_data::<T>(),
        &mut dx,
        if affine { Some(&mut dg) } else { None },
        if affine { Some(&mut db) } else { None },
    );
    NormGrads {
        dx: Tensor::from_pooled(dx, x.shape()),
        dgamma: affine.then(|| Tensor::from_pooled(dg, &[c])),
        dbeta: affine.then(|| Tensor::from_pooled(db, &[c])),
    }
}

fn ln_fwd<T: FloatElem>(
    rows: usize,
    cols: usize,
    eps: f64,
    x: &Tensor,
    g: Option<&Tensor>,
    b: Option<&Tensor>,
) -> NormOutput {
    let mut y = PooledVec::<T>::zeros(x.numel());
    let mut mean = PooledVec::<T>::zeros(rows);
    let mut rstd = PooledVec::<T>::zeros(rows);
    norm::layer_norm_forward(
        rows,
        cols,
        T::from_f64(eps),
        x.contiguous_data::<T>(),
        g.map(|g| g.contiguous_data::<T>()),
        b.map(|b| b.contiguous_data::<T>()),
        &mut y,
        &mut mean,
        &mut rstd,
    );
    let stat_shape = &x.shape()[..x.rank() - 1];
    NormOutput {
        y: Tensor::from_pooled(y, x.shape()),
        mean: Tensor::from_pooled(mean, stat_shape),
        rstd: Tensor::from_pooled(rstd, stat_shape),
    }
}

fn ln_bwd<T: FloatElem>(
    rows: usize,
    cols: usize,
    x: &Tensor,
    g: Option<&Tensor>,
    s: &NormOutput,
    dy: &Tensor,
    affine: bool,
) -> NormGrads {
    let mut dx = PooledVec::<T>::zeros(x.numel());
    let mut dg = PooledVec::<T>::zeros(cols);
    let mut db = PooledVec::<T>::zeros(cols);
    norm::layer_norm_backward(
        rows,
        cols,
        x.contiguous_data::<T>(),
        g.map(|g| g.contiguous_data::<T>()),
        s.mean.contiguous_data::<T>(),
        s.rstd.contiguous_data::<T>(),
        dy.contiguous_data::<T>(),
        &mut dx,
        if affine { Some(&mut dg) } else { None },
        if affine { Some(&mut db) } else { None },
    );
    NormGrads {
        dx: Tensor::from_pooled(dx, x.shape()),
        dgamma: affine.then(|| Tensor::from_pooled(dg, &[cols])),
        dbeta: affine.then(|| Tensor::from_pooled(db, &[cols])),
    }
}

/// Gradients of [`Tensor::group_norm_silu`].
#[derive(Clone)]
pub struct GroupNormSiluGrads {
    pub dx: Tensor,
    /// `[C]`, when `affine`.
    pub dgamma: Option<Tensor>,
    pub dbeta: Option<Tensor>,
    /// Shaped like the given scale / shift, when modulated.
    pub dscale: Option<Tensor>,
    pub dshift: Option<Tensor>,
}

/// The contiguous compute-dtype scale or shift of `x` [N, C, *]: `N·C` elements shaped `[N, C]`
/// followed by any number of 1s (e.g. `[N, C, 1, 1]`).
fn modulation_check(op: &'static str, t: &Tensor, x: &Tensor, n: usize, c: usize) -> Result<Tensor> {
    modulation_shape(op, t, x, n, c)?;
    t.float_input(op)?.contiguous()
}

/// Checks a scale / shift against `x` [N, C, *]: same device and dtype, `[N, C]` or `[N, C, 1, …]`.
fn modulation_shape(op: &'static str, t: &Tensor, x: &Tensor, n: usize, c: usize) -> Result<()> {
    x.check_same(op, t)?;
    let sh = t.shape();
    if sh.len() < 2 || sh[0] != n || sh[1] != c || sh[2..].iter().any(|&d| d != 1) {
        return Err(Error::ShapeMismatch { op, lhs: sh.to_vec(), rhs: vec![n, c] });
    }
    Ok(())
}

/// Affine and modulation inputs of the fused op (contiguous, compute dtype).
struct GnSiluIn {
    g: Option<Tensor>,
    b: Option<Tensor>,
    a: Option<Tensor>,
    s: Option<Tensor>,
}

fn opt_data<T: FloatElem>(t: &Option<Tensor>) -> Option<&[T]> {
    t.as_ref().map(|t| t.contiguous_data::<T>())
}

fn gn_silu_fwd<T: FloatElem>(dims: [usize; 4], eps: f64, x: &Tensor, p: &GnSiluIn) -> NormOutput {
    let [n, c, sp, groups] = dims;
    let mut y = PooledVec::<T>::zeros(x.numel());
    let mut mean = PooledVec::<T>::zeros(n * groups);
    let mut rstd = PooledVec::<T>::zeros(n * groups);
    let d = opt_data::<T>;
    norm::group_norm_silu_forward(
        n,
        c,
        sp,
        groups,
        T::from_f64(eps),
        x.contiguous_data::<T>(),
        d(&p.g),
        d(&p.b),
        d(&p.a),
        d(&p.s),
        &mut y,
        &mut mean,
        &mut rstd,
    );
    NormOutput {
        y: Tensor::from_pooled(y, x.shape()),
        mean: Tensor::from_pooled(mean, &[n, groups]),
        rstd: Tensor::from_pooled(rstd, &[n, groups]),
    }
}

fn gn_silu_bwd<T: FloatElem>(
    dims: [usize; 4],
    x: &Tensor,
    p: &GnSiluIn,
    saved: &NormOutput,
    dy: &Tensor,
    (affine, modulated): (bool, bool),
) -> GroupNormSiluGrads {
    let [n, c, sp, groups] = dims;
    let mut dx = PooledVec::<T>::zeros(x.numel());
    let (mut dg, mut db) = (PooledVec::<T>::zeros(c), PooledVec::<T>::zeros(c));
    let (mut da, mut ds) = (PooledVec::<T>::zeros(n * c), PooledVec::<T>::zeros(n * c));
    let d = opt_data::<T>;
    let grads = norm::GnSiluGrads {
        dgamma: affine.then_some(&mut dg[..]),
        dbeta: affine.then_some(&mut db[..]),
        dscale: modulated.then_some(&mut da[..]),
        dshift: modulated.then_some(&mut ds[..]),
    };
    norm::group_norm_silu_backward(
        n,
        c,
        sp,
        groups,
        x.contiguous_data::<T>(),
        d(&p.g),
        d(&p.b),
        d(&p.a),
        d(&p.s),
        saved.mean.contiguous_data::<T>(),
        saved.rstd.contiguous_data::<T>(),
        dy.contiguous_data::<T>(),
        &mut dx,
        grads,
    );
    let shape_of = |t: &Option<Tensor>| t.as_ref().map_or_else(|| vec![n, c], |t| t.shape().to_vec());
    let (sa, ss) = (shape_of(&p.a), shape_of(&p.s));
    GroupNormSiluGrads {
        dx: Tensor::from_pooled(dx, x.shape()),
        dgamma: affine.then(|| Tensor::from_pooled(dg, &[c])),
        dbeta: affine.then(|| Tensor::from_pooled(db, &[c])),
        dscale: modulated.then(|| Tensor::from_pooled(da, &sa)),
        dshift: modulated.then(|| Tensor::from_pooled(ds, &ss)),
    }
}

fn gn_dims(op: &'static str, x: &Tensor, groups: usize) -> Result<[usize; 4]> {
    if x.rank() < 2 {
        return Err(Error::RankMismatch {
            op,
            expected: ">= 2 ([N, C, ...])".into(),
            shape: x.shape().to_vec(),
        });
    }
    let (n, c) = (x.shape()[0], x.shape()[1]);
    if groups == 0 || c % groups != 0 {
        return Err(Error::invalid(
            op,
            format!("{c} channels (shape {:?}) are not divisible into {groups} groups", x.shape()),
        ));
    }
    Ok([n, c, x.shape()[2..].iter().product(), groups])
}

fn ln_dims(op: &'static str, x: &Tensor) -> Result<(usize, usize)> {
    if x.rank() < 1 {
        return Err(Error::RankMismatch { op, expected: ">= 1".into(), shape: x.shape().to_vec() });
    }
    let cols = x.shape()[x.rank() - 1];
    Ok((x.numel() / cols.max(1), cols))
}

impl Tensor {
    /// Group normalisation of `self` [N, C, *] over `groups` channel groups (biased variance, `eps`
    /// inside the square root, as PyTorch), then `· gamma[c] + beta[c]` when given.
    pub fn group_norm(
        &self,
        groups: usize,
        gamma: Option<&Tensor>,
        beta: Option<&Tensor>,
        eps: f64,
    ) -> Result<NormOutput> {
        let op = "group_norm";
        let dims = gn_dims(op, self, groups)?;
        #[cfg(feature = "cuda")]
        if !self.device().is_cpu() {
            return crate::cuda::ops::norm::group_norm(self, dims, gamma, beta, eps);
        }
        let (g, b) = (affine_check(op, gamma, self, dims[1])?, affine_check(op, beta, self, dims[1])?);
        let x = self.float_input(op)?.contiguous()?;
        let o = dispatch_float!(x, gn_fwd(dims, eps, &x, g.as_ref(), b.as_ref()));
        Ok(NormOutput { y: o.y.cast_back(self.dtype())?, mean: o.mean, rstd: o.rstd })
    }

    /// Gradients of [`Tensor::group_norm`]; `dgamma`/`dbeta` are returned when `affine`.
    pub fn group_norm_backward(
        &self,
        groups: usize,
        gamma: Option<&Tensor>,
        saved: &NormOutput,
        dy: &Tensor,
        affine: bool,
    ) -> Result<NormGrads> {
        let op = "group_norm_backward";
        self.check_same_shape(op, dy)?;
        let dims = gn_dims(op, self, groups)?;
        #[cfg(feature = "cuda")]
        if !self.device().is_cpu() {
            return crate::cuda::ops::norm::group_norm_backward(self, dims, gamma, saved, dy, affine);
        }
        let g = affine_check(op, gamma, self, dims[1])?;
        let (x, d, saved) = self.backward_inputs(op, dy, saved)?;
        let r = dispatch_float!(x, gn_bwd(dims, &x, g.as_ref(), &saved, &d, affine));
        cast_grads(r, self.dtype())
    }

    /// The ResNet block's fused epilogue `SiLU(GN(self)·(1 + scale) + shift)`: group norm as
    /// [`Tensor::group_norm`] (saving the same statistics), then, when `scale_shift` is given, the
    /// per-(sample, channel) modulation (`scale`, `shift`: `[N, C]` or `[N, C, 1, …]`), then SiLU.
    /// On a CUDA device it runs `group_norm_silu_fwd_<dtype>` (f32, f64, f16, bf16; one read of
    /// `self` for the statistics and one for the output).
    pub fn group_norm_silu(
        &self,
        groups: usize,
        gamma: Option<&Tensor>,
        beta: Option<&Tensor>,
        scale_shift: Option<(&Tensor, &Tensor)>,
        eps: f64,
    ) -> Result<NormOutput> {
        let op = "group_norm_silu";
        let dims = gn_dims(op, self, groups)?;
        #[cfg(feature = "cuda")]
        if !self.device().is_cpu() {
            self.check_scale_shift(op, dims, scale_shift)?;
            return crate::cuda::ops::norm::group_norm_silu(self, dims, gamma, beta, scale_shift, eps);
        }
        let p = self.gn_silu_inputs(op, dims, gamma, beta, scale_shift)?;
        let x = self.float_input(op)?.contiguous()?;
        let o = dispatch_float!(x, gn_silu_fwd(dims, eps, &x, &p));
        Ok(NormOutput { y: o.y.cast_back(self.dtype())?, mean: o.mean, rstd: o.rstd })
    }

    /// Gradients of [`Tensor::group_norm_silu`] (same `gamma`, `beta`, `scale_shift`; `saved` from
    /// it): `dx`, plus `dgamma`/`dbeta` when `affine` and `dscale`/`dshift` when `scale_shift` is given.
    #[allow(clippy::too_many_arguments)]
    pub fn group_norm_silu_backward(
        &self,
        groups: usize,
        gamma: Option<&Tensor>,
        beta: Option<&Tensor>,
        scale_shift: Option<(&Tensor, &Tensor)>,
        saved: &NormOutput,
        dy: &Tensor,
        affine: bool,
    ) -> Result<GroupNormSiluGrads> {
        let op = "group_norm_silu_backward";
        self.check_same_shape(op, dy)?;
        let dims = gn_dims(op, self, groups)?;
        #[cfg(feature = "cuda")]
        if !self.device().is_cpu() {
            self.check_scale_shift(op, dims, scale_shift)?;
            return crate::cuda::ops::norm::group_norm_silu_backward(
                self,
                dims,
                gamma,
                beta,
                scale_shift,
                saved,
                dy,
                affine,
            );
        }
        let p = self.gn_silu_inputs(op, dims, gamma, beta, scale_shift)?;
        let (x, d, saved) = self.backward_inputs(op, dy, saved)?;
        let flags = (affine, scale_shift.is_some());
        let r = dispatch_float!(x, gn_silu_bwd(dims, &x, &p, &saved, &d, flags));
        let dt = self.dtype();
        let cast = |t: Option<Tensor>| t.map(|t| t.cast_back(dt)).transpose();
        Ok(GroupNormSiluGrads {
            dx: r.dx.cast_back(dt)?,
            dgamma: cast(r.dgamma)?,
            dbeta: cast(r.dbeta)?,
            dscale: cast(r.dscale)?,
            dshift: cast(r.dshift)?,
        })
    }

    /// Shape / device / dtype checks of a fused op's `scale_shift`.
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    fn check_scale_shift(
        &self,
        op: &'static str,
        [n, c, _, _]: [usize; 4],
        scale_shift: Option<(&Tensor, &Tensor)>,
    ) -> Result<()> {
        if let Some((a, s)) = scale_shift {
            modulation_shape(op, a, self, n, c)?;
            modulation_shape(op, s, self, n, c)?;
        }
        Ok(())
    }

    fn gn_silu_inputs(
        &self,
        op: &'static str,
        dims: [usize; 4],
        gamma: Option<&Tensor>,
        beta: Option<&Tensor>,
        scale_shift: Option<(&Tensor, &Tensor)>,
    ) -> Result<GnSiluIn> {
        let [n, c, _, _] = dims;
        let (a, s) = match scale_shift {
            Some((a, s)) => {
                (Some(modulation_check(op, a, self, n, c)?), Some(modulation_check(op, s, self, n, c)?))
            }
            None => (None, None),
        };
        Ok(GnSiluIn { g: affine_check(op, gamma, self, c)?, b: affine_check(op, beta, self, c)?, a, s })
    }

    /// Layer normalisation over the last dimension, then `· gamma + beta` when given.
    pub fn layer_norm(&self, gamma: Option<&Tensor>, beta: Option<&Tensor>, eps: f64) -> Result<NormOutput> {
        let op = "layer_norm";
        let (rows, cols) = ln_dims(op, self)?;
        #[cfg(feature = "cuda")]
        if !self.device().is_cpu() {
            return crate::cuda::ops::norm::layer_norm(self, gamma, beta, eps, rows, cols);
        }
        let (g, b) = (affine_check(op, gamma, self, cols)?, affine_check(op, beta, self, cols)?);
        let x = self.float_input(op)?.contiguous()?;
        let o = dispatch_float!(x, ln_fwd(rows, cols, eps, &x, g.as_ref(), b.as_ref()));
        Ok(NormOutput { y: o.y.cast_back(self.dtype())?, mean: o.mean, rstd: o.rstd })
    }

    /// Gradients of [`Tensor::layer_norm`].
    pub fn layer_norm_backward(
        &self,
        gamma: Option<&Tensor>,
        saved: &NormOutput,
        dy: &Tensor,
        affine: bool,
    ) -> Result<NormGrads> {
        let op = "layer_norm_backward";
        self.check_same_shape(op, dy)?;
        let (rows, cols) = ln_dims(op, self)?;
        #[cfg(feature = "cuda")]
        if !self.device().is_cpu() {
            return crate::cuda::ops::norm::layer_norm_backward(self, gamma, saved, dy, affine, rows, cols);
        }
        let g = affine_check(op, gamma, self, cols)?;
        let (x, d, saved) = self.backward_inputs(op, dy, saved)?;
        let r = dispatch_float!(x, ln_bwd(rows, cols, &x, g.as_ref(), &saved, &d, affine));
        cast_grads(r, self.dtype())
    }
}

impl Tensor {
    /// The compute-dtype, contiguous `x` and `dy` of a norm backward, with the saved statistics in
    /// the same dtype.
    fn backward_inputs(
        &self,
        op: &'static str,
        dy: &Tensor,
        saved: &NormOutput,
    ) -> Result<(Tensor, Tensor, NormOutput)> {
        for t in [dy, &saved.mean, &saved.rstd] {
            self.check_device(op, t)?;
        }
        let x = self.float_input(op)?.contiguous()?;
        let d = dy.float_input(op)?.contiguous()?;
        let saved = NormOutput {
            y: saved.y.clone(),
            mean: saved.mean.to_dtype(x.dtype())?,
            rstd: saved.rstd.to_dtype(x.dtype())?,
        };
        Ok((x, d, saved))
    }
}

fn cast_grads(r: NormGrads, dtype: crate::DType) -> Result<NormGrads> {
    Ok(NormGrads {
        dx: r.dx.cast_back(dtype)?,
        dgamma: r.dgamma.map(|t| t.cast_back(dtype)).transpose()?,
        dbeta: r.dbeta.map(|t| t.cast_back(dtype)).transpose()?,
    })
}
