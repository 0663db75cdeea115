//! Layer norm and group norm on the device: the kernels of `kernels/src/norm/norm.cu` (argument
//! lists, workspaces and launches in `kernels/src/norm/cuda.rs`). Statistics are computed in f64 and
//! returned, like the CPU's, in the compute dtype (f32 for f16/bf16 inputs); parameter gradients are
//! a deterministic two-stage reduction (f64 partial sums per row chunk, then per column).

use super::{float_suffix, storage};
use crate::cuda::{CudaStorage, KArg, has_kernel};
use crate::ops::norm::{NormGrads, NormOutput};
use crate::{Error, Result, Tensor};
use kernels::cuda_abi::LaunchDims;
use kernels::norm::cuda::{LnParamsPlan, finish_launch, gn_silu_launch, gn_silu_workspace_len, rows_launch};

/// Validates `gamma`/`beta` (same device and dtype as `x`, shape `[len]`) and makes them contiguous.
fn affine(op: &'static str, t: Option<&Tensor>, x: &Tensor, len: usize) -> Result<Option<Tensor>> {
    match t {
        None => Ok(None),
        Some(t) => {
            x.check_same(op, t)?;
            if t.shape() != [len] {
                return Err(Error::ShapeMismatch { op, lhs: t.shape().to_vec(), rhs: vec![len] });
            }
            Ok(Some(t.contiguous()?))
        }
    }
}

/// Device address of a contiguous tensor's first element, or null.
fn ptr(op: &'static str, t: Option<&Tensor>) -> Result<u64> {
    match t {
        None => Ok(0),
        Some(t) => Ok(storage(op, t)?.0.ptr_at(t.offset())),
    }
}

fn need(op: &'static str, names: &[&str], x: &Tensor) -> Result<()> {
    if names.iter().all(|n| has_kernel(n)) {
        Ok(())
    } else {
        Err(Error::NotImplementedOnDevice { op, device: x.device() })
    }
}

/// The forward of either norm. `rows`/`row_len` describe the statistics rows, `tail` the kernel's
/// size arguments after the six pointers, `stat_shape` the shape of mean/rstd.
#[allow(clippy::too_many_arguments)]
fn forward(
    op: &'static str,
    kernel: &str,
    x: &Tensor,
    g: Option<&Tensor>,
    b: Option<&Tensor>,
    eps: f64,
    [rows, row_len]: [usize; 2],
    tail: &[i64],
    stat_shape: &[usize],
) -> Result<NormOutput> {
    let x = x.contiguous()?;
    let (xs, dev) = storage(op, &x)?;
    let y = CudaStorage::alloc(&dev, x.dtype(), x.numel())?;
    let mean = CudaStorage::alloc(&dev, x.dtype(), rows)?;
    let rstd = CudaStorage::alloc(&dev, x.dtype(), rows)?;
    if rows > 0 {
        let mut args = vec![
            KArg::Ptr(xs.ptr_at(x.offset())),
            KArg::Ptr(ptr(op, g)?),
            KArg::Ptr(ptr(op, b)?),
            KArg::Ptr(y.ptr()),
            KArg::Ptr(mean.ptr()),
            KArg::Ptr(rstd.ptr()),
        ];
        args.extend(tail.iter().map(|&v| KArg::I64(v)));
        args.push(KArg::F64(eps));
        dev.launch(kernel, rows_launch(rows, row_len), &args)?;
    }
    let cd = x.dtype().compute_dtype();
    Ok(NormOutput {
        y: Tensor::from_cuda(y, x.shape()),
        mean: Tensor::from_cuda(mean, stat_shape).to_dtype(cd)?,
        rstd: Tensor::from_cuda(rstd, stat_shape).to_dtype(cd)?,
    })
}

/// The backward of either norm: the dx kernel (writing the re-centred means to an f64 workspace),
/// then, when `affine`, the two parameter-gradient stages.
struct Backward<'a> {
    op: &'static str,
    dx_kernel: String,
    params_kernel: String,
    finish_kernel: String,
    /// (rows, row length) of the dx kernel.
    rows: [usize; 2],
    /// Size arguments of the dx and stage-1 kernels.
    tail: Vec<i64>,
    /// Stage 1: extra size arguments, launch and number of parts; `cols` of dgamma/dbeta;
    /// `workspace` f64 elements of `partial` (`2·parts·cols`).
    params_tail: Vec<i64>,
    params_dims: LaunchDims,
    parts: usize,
    cols: usize,
    workspace: usize,
    x: &'a Tensor,
    gamma: Option<&'a Tensor>,
    saved: &'a NormOutput,
    dy: &'a Tensor,
    affine: bool,
}

impl Backward<'_> {
    fn run(self) -> Result<NormGrads> {
        let op = self.op;
        let x = self.x.contiguous()?;
        let dy = self.dy.contiguous()?;
        let mean = self.saved.mean.to_dtype(x.dtype())?.contiguous()?;
        let rstd = self.saved.rstd.to_dtype(x.dtype())?.contiguous()?;
        crate::cuda::ops::same_device(op, &[&x, &dy, &mean, &rstd])?;
        let (xs, dev) = storage(op, &x)?;
        let (ds, _) = storage(op, &dy)?;
        let (ms, _) = storage(op, &mean)?;
        let (rs, _) = storage(op, &rstd)?;
        let [rows, row_len] = self.rows;
        let dx = CudaStorage::alloc(&dev, x.dtype(), x.numel())?;
        let mean_exact = dev.alloc(rows.max(1) * 8)?;
        let (xp, dyp, mp, rp) = (
            xs.ptr_at(x.offset()),
            ds.ptr_at(dy.offset()),
            ms.ptr_at(mean.offset()),
            rs.ptr_at(rstd.offset()),
        );
        if rows > 0 {
            let mut args = vec![
                KArg::Ptr(xp),
                KArg::Ptr(ptr(op, self.gamma)?),
                KArg::Ptr(mp),
                KArg::Ptr(rp),
                KArg::Ptr(dyp),
                KArg::Ptr(dx.ptr()),
                KArg::Ptr(if self.affine { mean_exact.ptr() } else { 0 }),
            ];
            args.extend(self.tail.iter().map(|&v| KArg::I64(v)));
            dev.launch(&self.dx_kernel, rows_launch(rows, row_len), &args)?;
        }
        let dx = Tensor::from_cuda(dx, x.shape());
        if !self.affine {
            return Ok(NormGrads { dx, dgamma: None, dbeta: None });
        }
        let cols = self.cols;
        let dg = CudaStorage::zeros(&dev, x.dtype(), cols)?;
        let db = CudaStorage::zeros(&dev, x.dtype(), cols)?;
        if rows > 0 && cols > 0 {
            let partial = dev.alloc(self.workspace * std::mem::size_of::<f64>())?;
            let mut args = vec![
                KArg::Ptr(xp),
                KArg::Ptr(mean_exact.ptr()),
                KArg::Ptr(rp),
                KArg::Ptr(dyp),
                KArg::Ptr(partial.ptr()),
            ];
            args.extend(self.params_tail.iter().map(|&v| KArg::I64(v)));
            dev.launch(&self.params_kernel, self.params_dims, &args)?;
            dev.launch(
                &self.finish_kernel,
                finish_launch(cols),
                &[
                    KArg::Ptr(partial.ptr()),
                    KArg::I64(self.parts as i64),
                    KArg::I64(cols as i64),
                    KArg::Ptr(dg.ptr()),
                    KArg::Ptr(db.ptr()),
                ],
            )?;
        }
        Ok(NormGrads {
            dx,
            dgamma: Some(Tensor::from_cuda(dg, &[cols])),
            dbeta: Some(Tensor::from_cuda(db, &[cols])),
        })
    }
}

/// `layer_norm_fwd_<dt>(x, gamma, beta, y, mean, rstd, rows, cols, eps)`.
pub(crate) fn layer_norm(
    x: &Tensor,
    gamma: Option<&Tensor>,
    beta: Option<&Tensor>,
    eps: f64,
    rows: usize,
    cols: usize,
) -> Result<NormOutput> {
    let op = "layer_norm";
    let dt = float_suffix(op, x.dtype())?;
    let kernel = format!("layer_norm_fwd_{dt}");
    need(op, &[&kernel], x)?;
    let (g, b) = (affine(op, gamma, x, cols)?, affine(op, beta, x, cols)?);
    let stat_shape = &x.shape()[..x.rank() - 1];
    forward(
        op,
        &kernel,
        x,
        g.as_ref(),
        b.as_ref(),
        eps,
        [rows, cols],
        &[rows as i64, cols as i64],
        stat_shape,
    )
}

/// `layer_norm_bwd_<dt>` then `layer_norm_bwd_params_<dt>` / `norm_bwd_params_finish_<dt>`.
pub(crate) fn layer_norm_backward(
    x: &Tensor,
    gamma: Option<&Tensor>,
    saved: &NormOutput,
    dy: &Tensor,
    affine_: bool,
    rows: usize,
    cols: usize,
) -> Result<NormGrads> {
    let op = "layer_norm_backward";
    let dt = float_suffix(op, x.dtype())?;
    let k = [
        format!("layer_norm_bwd_{dt}"),
        format!("layer_norm_bwd_params_{dt}"),
        format!("norm_bwd_params_finish_{dt}"),
    ];
    need(op, &[&k[0], &k[1], &k[2]], x)?;
    x.check_same(op, dy)?;
    let g = affine(op, gamma, x, cols)?;
    let plan = LnParamsPlan::new(rows);
    let [dx_kernel, params_kernel, finish_kernel] = k;
    Backward {
        op,
        dx_kernel,
        params_kernel,
        finish_kernel,
        rows: [rows, cols],
        tail: vec![rows as i64, cols as i64],
        params_tail: vec![rows as i64, cols as i64, plan.rows_per_part as i64, plan.parts as i64],
        params_dims: plan.stage1(cols),
        parts: plan.parts,
        cols,
        workspace: plan.workspace_len(cols),
        x,
        gamma: g.as_ref(),
        saved,
        dy,
        affine: affine_,
    }
    .run()
}

/// `group_norm_fwd_<dt>(x, gamma, beta, y, mean, rstd, n, c, spatial, groups, eps)`.
pub(crate) fn group_norm(
    x: &Tensor,
    [n, c, sp, groups]: [usize; 4],
    gamma: Option<&Tensor>,
    beta: Option<&Tensor>,
    eps: f64,
) -> Result<NormOutput> {
    let op = "group_norm";
    let dt = float_suffix(op, x.dtype())?;
    let kernel = format!("group_norm_fwd_{dt}");
    need(op, &[&kernel], x)?;
    let (g, b) = (affine(op, gamma, x, c)?, affine(op, beta, x, c)?);
    let tail = [n, c, sp, groups].map(|v| v as i64);
    forward(op, &kernel, x, g.as_ref(), b.as_ref(), eps, [n * groups, c / groups * sp], &tail, &[n, groups])
}

/// `group_norm_bwd_<dt>` then `group_norm_bwd_params_<dt>` / `norm_bwd_params_finish_<dt>`.
pub(crate) fn group_norm_backward(
    x: &Tensor,
    [n, c, sp, groups]: [usize; 4],
    gamma: Option<&Tensor>,
    saved: &NormOutput,
    dy: &Tensor,
    affine_: bool,
) -> Result<NormGrads> {
    let op = "group_norm_backward";
    let dt = float_suffix(op, x.dtype())?;
    let k = [
        format!("group_norm_bwd_{dt}"),
        format!("group_norm_bwd_params_{dt}"),
        format!("norm_bwd_params_finish_{dt}"),
    ];
    need(op, &[&k[0], &k[1], &k[2]], x)?;
    x.check_same(op, dy)?;
    let g = affine(op, gamma, x, c)?;
    let tail = [n, c, sp, groups].map(|v| v as i64).to_vec();
    let [dx_kernel, params_kernel, finish_kernel] = k;
    Backward {
        op,
        dx_kernel,
        params_kernel,
        finish_kernel,
        rows: [n * groups, c / groups * sp],
        tail: tail.clone(),
        params_tail: tail,
        params_dims: rows_launch(n * c, sp),
        parts: n,
        cols: c,
        // `[2][n][c]` f64 (norm/cuda.rs: group norm parts = n, cols = c).
        workspace: 2 * n * c,
        x,
        gamma: g.as_ref(),
        saved,
        dy,
        affine: affine_,
    }
    .run()
}

/// The fused GN + modulation + SiLU inputs on the device: `gamma`, `beta` (`[c]`), `scale`, `shift`
/// (`n·c` elements, `[N, C]` or `[N, C, 1, …]`), each contiguous with `x`'s device and dtype.
pub(crate) struct GnSiluDev {
    pub g: Option<Tensor>,
    pub b: Option<Tensor>,
    pub a: Option<Tensor>,
    pub s: Option<Tensor>,
}

impl GnSiluDev {
    fn new(
        op: &'static str,
        x: &Tensor,
        c: usize,
        gamma: Option<&Tensor>,
        beta: Option<&Tensor>,
        scale_shift: Option<(&Tensor, &Tensor)>,
    ) -> Result<Self> {
        let (a, s) = match scale_shift {
            Some((a, s)) => {
                x.check_same(op, a)?;
                x.check_same(op, s)?;
                (Some(a.contiguous()?), Some(s.contiguous()?))
            }
            None => (None, None),
        };
        Ok(Self { g: affine(op, gamma, x, c)?, b: affine(op, beta, x, c)?, a, s })
    }

    /// `gamma, beta, scale, shift` as kernel pointers (null when absent).
    fn ptrs(&self, op: &'static str) -> Result<[KArg; 4]> {
        Ok([
            KArg::Ptr(ptr(op, self.g.as_ref())?),
            KArg::Ptr(ptr(op, self.b.as_ref())?),
            KArg::Ptr(ptr(op, self.a.as_ref())?),
            KArg::Ptr(ptr(op, self.s.as_ref())?),
        ])
    }
}

/// `group_norm_silu_fwd_<dt>(x, gamma, beta, scale, shift, y, mean, rstd, n, c, spatial, groups,
/// eps)` (kernels/src/norm/gn_silu.cu). `mean`/`rstd` are returned in the compute dtype, as the
/// plain group norm's.
pub(crate) fn group_norm_silu(
    x: &Tensor,
    [n, c, sp, groups]: [usize; 4],
    gamma: Option<&Tensor>,
    beta: Option<&Tensor>,
    scale_shift: Option<(&Tensor, &Tensor)>,
    eps: f64,
) -> Result<NormOutput> {
    let op = "group_norm_silu";
    let dt = float_suffix(op, x.dtype())?;
    let kernel = format!("group_norm_silu_fwd_{dt}");
    need(op, &[&kernel], x)?;
    let p = GnSiluDev::new(op, x, c, gamma, beta, scale_shift)?;
    let x = x.contiguous()?;
    let (xs, dev) = storage(op, &x)?;
    let rows = n * groups;
    let y = CudaStorage::alloc(&dev, x.dtype(), x.numel())?;
    let mean = CudaStorage::alloc(&dev, x.dtype(), rows)?;
    let rstd = CudaStorage::alloc(&dev, x.dtype(), rows)?;
    if rows > 0 {
        let mut args = vec![KArg::Ptr(xs.ptr_at(x.offset()))];
        args.extend(p.ptrs(op)?);
        args.extend([KArg::Ptr(y.ptr()), KArg::Ptr(mean.ptr()), KArg::Ptr(rstd.ptr())]);
        args.extend([n, c, sp, groups].map(|v| KArg::I64(v as i64)));
        args.push(KArg::F64(eps));
        dev.launch(&kernel, gn_silu_launch(rows, c / groups * sp), &args)?;
    }
    let cd = x.dtype().compute_dtype();
    Ok(NormOutput {
        y: Tensor::from_cuda(y, x.shape()),
        mean: Tensor::from_cuda(mean, &[n, groups]).to_dtype(cd)?,
        rstd: Tensor::from_cuda(rstd, &[n, groups]).to_dtype(cd)?,
    })
}

/// `group_norm_silu_bwd_<dt>(x, gamma, beta, scale, shift, mean, rstd, dy, dx, dscale, dshift,
/// partial, n, c, spatial, groups)`, then (when `affine`) `norm_bwd_params_finish_<dt>(partial,
/// n, c, dgamma, dbeta)`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn group_norm_silu_backward(
    x: &Tensor,
    [n, c, sp, groups]: [usize; 4],
    gamma: Option<&Tensor>,
    beta: Option<&Tensor>,
    scale_shift: Option<(&Tensor, &Tensor)>,
    saved: &NormOutput,
    dy: &Tensor,
    affine_: bool,
) -> Result<crate::ops::norm::GroupNormSiluGrads> {
    let op = "group_norm_silu_backward";
    let dt = float_suffix(op, x.dtype())?;
    let k = [format!("group_norm_silu_bwd_{dt}"), format!("norm_bwd_params_finish_{dt}")];
    need(op, &[&k[0], &k[1]], x)?;
    x.check_same(op, dy)?;
    let p = GnSiluDev::new(op, x, c, gamma, beta, scale_shift)?;
    let x = x.contiguous()?;
    let dy = dy.contiguous()?;
    let mean = saved.mean.to_dtype(x.dtype())?.contiguous()?;
    let rstd = saved.rstd.to_dtype(x.dtype())?.contiguous()?;
    crate::cuda::ops::same_device(op, &[&x, &dy, &mean, &rstd])?;
    let rows = n * groups;
    for (name, t) in [("mean", &mean), ("rstd", &rstd)] {
        if t.numel() != rows {
            return Err(Error::invalid(
                op,
                format!("saved {name} has shape {:?}, expected {rows} = n·groups elements", t.shape()),
            ));
        }
    }
    let (xs, dev) = storage(op, &x)?;
    let modulated = scale_shift.is_some();
    let dx = CudaStorage::alloc(&dev, x.dtype(), x.numel())?;
    let da = if modulated { Some(CudaStorage::alloc(&dev, x.dtype(), n * c)?) } else { None };
    let ds = if modulated { Some(CudaStorage::alloc(&dev, x.dtype(), n * c)?) } else { None };
    let partial = if affine_ {
        Some(dev.alloc(gn_silu_workspace_len(n, c).max(1) * std::mem::size_of::<f64>())?)
    } else {
        None
    };
    let part_ptr = partial.as_ref().map_or(0, |b| b.ptr());
    if rows > 0 {
        let mut args = vec![KArg::Ptr(xs.ptr_at(x.offset()))];
        args.extend(p.ptrs(op)?);
        args.extend([
            KArg::Ptr(ptr(op, Some(&mean))?),
            KArg::Ptr(ptr(op, Some(&rstd))?),
            KArg::Ptr(ptr(op, Some(&dy))?),
            KArg::Ptr(dx.ptr()),
            KArg::Ptr(da.as_ref().map_or(0, |t| t.ptr())),
            KArg::Ptr(ds.as_ref().map_or(0, |t| t.ptr())),
            KArg::Ptr(part_ptr),
        ]);
        args.extend([n, c, sp, groups].map(|v| KArg::I64(v as i64)));
        dev.launch(&k[0], gn_silu_launch(rows, c / groups * sp), &args)?;
    }
    let (mut dgamma, mut dbeta) = (None, None);
    if affine_ {
        let dg = CudaStorage::zeros(&dev, x.dtype(), c)?;
        let db = CudaStorage::zeros(&dev, x.dtype(), c)?;
        if c > 0 {
            // n = 0: parts = 0 zeroes dgamma/dbeta (norm/cuda.rs).
            dev.launch(
                &k[1],
                finish_launch(c),
                &[
                    KArg::Ptr(part_ptr),
                    KArg::I64(if rows > 0 { n as i64 } else { 0 }),
                    KArg::I64(c as i64),
                    KArg::Ptr(dg.ptr()),
                    KArg::Ptr(db.ptr()),
                ],
            )?;
        }
        dgamma = Some(Tensor::from_cuda(dg, &[c]));
        dbeta = Some(Tensor::from_cuda(db, &[c]));
    }
    let shaped = |st: Option<CudaStorage>, t: &Option<Tensor>| {
        st.map(|st| Tensor::from_cuda(st, t.as_ref().map_or(&[n, c][..], |t| t.shape())))
    };
    Ok(crate::ops::norm::GroupNormSiluGrads {
        dx: Tensor::from_cuda(dx, x.shape()),
        dgamma,
        dbeta,
        dscale: shaped(da, &p.a),
        dshift: shaped(ds, &p.s),
    })
}
