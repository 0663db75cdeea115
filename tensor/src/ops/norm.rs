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
