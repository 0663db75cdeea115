//! Data movement on the device: strided copy (contiguous, deep_clone, concat), dtype casts, fill,
//! nearest upsample, average pool, index_select and where: the kernels of
//! `kernels/src/layout/layout.cu` with the argument lists of `kernels/src/layout/cuda.rs`.
//!
//! Kernels are looked up by name, so a build whose kernels crate lacks one of them returns
//! [`Error::NotImplementedOnDevice`] for that op (checked with [`has_kernel`] before anything is
//! allocated) instead of running it elsewhere.

use super::{float_suffix, same_device, storage, strided};
use crate::cuda::{CudaStorage, KArg, has_kernel};
use crate::{DType, Device, Error, Result, Tensor};
use kernels::StridedLayout;
use kernels::cuda_abi::StridedArg;
use kernels::elementwise::UnaryOp;
use kernels::layout::Pool2dParams;
use kernels::layout::cuda::{
    INDEX_OK, cast_kernel, concat_dst_layouts, copy_kernel, index_result, index_select_count,
    launch_dims as dims, pool2d_args, scan_dims,
};

/// [`Error::NotImplementedOnDevice`] unless this build embeds kernel `name`.
fn need(op: &'static str, name: &str, device: Device) -> Result<()> {
    if has_kernel(name) { Ok(()) } else { Err(Error::NotImplementedOnDevice { op, device }) }
}

/// Whether a strided copy of this dtype can run on the GPU in this build.
pub(crate) fn can_copy_on_device(dtype: DType) -> bool {
    has_kernel(copy_kernel(dtype.size_in_bytes())) || dtype.is_float()
}

/// `layout_copy_b{N}(src, sl, dst, dl, n)`: element `i` of `x` (row-major) to element `i` of `dst`
/// seen through `dl` (same shape as `x`).
fn copy_into(x: &Tensor, dst: &CudaStorage, dl: &StridedLayout) -> Result<()> {
    let (xs, dev) = storage("copy", x)?;
    let n = x.numel();
    if n == 0 {
        return Ok(());
    }
    let dl = StridedArg::from_layout(dl)
        .map_err(|_| Error::invalid("copy", format!("destination layout {dl:?} has too many dimensions")))?;
    dev.launch(
        copy_kernel(x.dtype().size_in_bytes()),
        dims(n),
        &[
            KArg::Ptr(xs.ptr()),
            KArg::Strided(strided("copy", x)?),
            KArg::Ptr(dst.ptr()),
            KArg::Strided(dl),
            KArg::I64(n as i64),
        ],
    )
}

/// A contiguous copy of any layout into fresh storage, on the tensor's device.
pub(crate) fn contiguous(x: &Tensor) -> Result<Tensor> {
    let (_, dev) = storage("contiguous", x)?;
    let n = x.numel();
    if has_kernel(copy_kernel(x.dtype().size_in_bytes())) {
        let y = CudaStorage::alloc(&dev, x.dtype(), n)?;
        copy_into(x, &y, &StridedLayout::contiguous(x.shape()))?;
        return Ok(Tensor::from_cuda(y, x.shape()));
    }
    if !x.dtype().is_float() {
        return Err(Error::NotImplementedOnDevice {
            op: "contiguous (strided copy of i64/u8)",
            device: x.device(),
        });
    }
    // Without the layout family's copy kernel: `unary` with clamp(-inf, inf) is an exact strided copy
    // for every float dtype (it returns x unchanged, NaN and -0.0 included; f16/bf16 round-trip
    // exactly through f32).
    let dt = float_suffix("contiguous", x.dtype())?;
    let (xs, _) = storage("contiguous", x)?;
    let y = CudaStorage::alloc(&dev, x.dtype(), n)?;
    if n > 0 {
        let (code, p0, p1) = UnaryOp::Clamp { min: f64::NEG_INFINITY, max: f64::INFINITY }.cuda_code();
        dev.launch(
            &format!("unary_{dt}"),
            kernels::elementwise::cuda::launch_dims(n),
            &[
                KArg::Ptr(xs.ptr()),
                KArg::Strided(strided("contiguous", x)?),
                KArg::Ptr(y.ptr()),
                KArg::I64(n as i64),
                KArg::I32(code),
                KArg::F64(p0),
                KArg::F64(p1),
            ],
        )?;
    }
    Ok(Tensor::from_cuda(y, x.shape()))
}

/// A copy into fresh storage (for `deep_clone` of an already contiguous tensor).
pub(crate) fn copy(x: &Tensor) -> Result<Tensor> {
    // `contiguous` always writes a fresh buffer on the device.
    contiguous(x)
}

/// `cast_<from>_<to>(src, sl, dst, n)`: bit-identical to the CPU's `to_dtype`.
pub(crate) fn to_dtype(x: &Tensor, dtype: DType) -> Result<Tensor> {
    if dtype == x.dtype() {
        return copy(x);
    }
    let name = cast_kernel(x.dtype().as_str(), dtype.as_str());
    need("to_dtype", &name, x.device())?;
    let (xs, dev) = storage("to_dtype", x)?;
    let n = x.numel();
    let y = CudaStorage::alloc(&dev, dtype, n)?;
    if n > 0 {
        dev.launch(
            &name,
            dims(n),
            &[
                KArg::Ptr(xs.ptr()),
                KArg::Strided(strided("to_dtype", x)?),
                KArg::Ptr(y.ptr()),
                KArg::I64(n as i64),
            ],
        )?;
    }
    Ok(Tensor::from_cuda(y, x.shape()))
}

/// A zero-filled tensor on GPU `device`.
pub(crate) fn zeros(shape: &[usize], dtype: DType, device: Device) -> Result<Tensor> {
    let Device::Cuda(i) = device else {
        return Ok(Tensor::zeros(shape, dtype));
    };
    let dev = crate::cuda::device(i)?;
    let s = CudaStorage::zeros(&dev, dtype, kernels::strided::numel(shape))?;
    Ok(Tensor::from_cuda(s, shape))
}

/// A tensor filled with `v` (rounded to the dtype as `Tensor::full` does) on GPU `device`:
/// `fill_<dt>(dst, n, value)`.
pub(crate) fn full(shape: &[usize], v: f64, dtype: DType, device: Device) -> Result<Tensor> {
    let Device::Cuda(i) = device else {
        return Ok(Tensor::full(shape, v, dtype));
    };
    if v.to_bits() == 0 {
        return zeros(shape, dtype, device);
    }
    let name = format!("fill_{}", dtype.as_str());
    if !has_kernel(&name) {
        // Without the fill kernel the constant is built on the host and copied over.
        return Tensor::full(shape, v, dtype).to_device(device);
    }
    let dev = crate::cuda::device(i)?;
    let n = kernels::strided::numel(shape);
    let y = CudaStorage::alloc(&dev, dtype, n)?;
    let value = match dtype {
        DType::F32 => KArg::F32(v as f32),
        DType::F64 => KArg::F64(v),
        DType::F16 => KArg::U16(half::f16::from_f64(v).to_bits()),
        DType::BF16 => KArg::U16(half::bf16::from_f64(v).to_bits()),
        DType::I64 => KArg::I64(v as i64),
        DType::U8 => KArg::U8(v as u8),
    };
    if n > 0 {
        dev.launch(&name, dims(n), &[KArg::Ptr(y.ptr()), KArg::I64(n as i64), value])?;
    }
    Ok(Tensor::from_cuda(y, shape))
}

/// Concatenation along `d` (inputs validated by the caller): one strided copy per input into its
/// slab of the contiguous output.
pub(crate) fn cat(tensors: &[&Tensor], d: usize, out_shape: &[usize]) -> Result<Tensor> {
    let first = tensors[0];
    need("cat", copy_kernel(first.dtype().size_in_bytes()), first.device())?;
    let (_, dev) = storage("cat", first)?;
    let y = CudaStorage::alloc(&dev, first.dtype(), kernels::strided::numel(out_shape))?;
    let shapes: Vec<&[usize]> = tensors.iter().map(|t| t.shape()).collect();
    for (t, dl) in tensors.iter().zip(concat_dst_layouts(&shapes, d)) {
        copy_into(t, &y, &dl)?;
    }
    Ok(Tensor::from_cuda(y, out_shape))
}

/// `upsample_nearest_fwd_<dt>(x, y, nc, h, w, oh, ow)` over `nc·oh·ow`.
pub(crate) fn upsample_nearest2d(x: &Tensor, oh: usize, ow: usize) -> Result<Tensor> {
    let op = "upsample_nearest2d";
    let dt = float_suffix(op, x.dtype())?;
    let name = format!("upsample_nearest_fwd_{dt}");
    need(op, &name, x.device())?;
    let x = x.contiguous()?;
    let (xs, dev) = storage(op, &x)?;
    let s = x.shape();
    let (nc, h, w) = (s[0] * s[1], s[2], s[3]);
    let y = CudaStorage::alloc(&dev, x.dtype(), nc * oh * ow)?;
    if nc * oh * ow > 0 {
        let sizes = [nc, h, w, oh, ow].map(|v| KArg::I64(v as i64));
        let mut args = vec![KArg::Ptr(xs.ptr_at(x.offset())), KArg::Ptr(y.ptr())];
        args.extend(sizes);
        dev.launch(&name, dims(nc * oh * ow), &args)?;
    }
    Ok(Tensor::from_cuda(y, &[s[0], s[1], oh, ow]))
}

/// `upsample_nearest_bwd_<dt>(dy, dx, nc, h, w, oh, ow)` over `nc·h·w`.
pub(crate) fn upsample_nearest2d_backward(dy: &Tensor, in_shape: &[usize]) -> Result<Tensor> {
    let op = "upsample_nearest2d_backward";
    let dt = float_suffix(op, dy.dtype())?;
    let name = format!("upsample_nearest_bwd_{dt}");
    need(op, &name, dy.device())?;
    let dy = dy.contiguous()?;
    let (ds, dev) = storage(op, &dy)?;
    let (nc, h, w) = (in_shape[0] * in_shape[1], in_shape[2], in_shape[3]);
    let (oh, ow) = (dy.shape()[2], dy.shape()[3]);
    let dx = CudaStorage::alloc(&dev, dy.dtype(), nc * h * w)?;
    if nc * h * w > 0 {
        let mut args = vec![KArg::Ptr(ds.ptr_at(dy.offset())), KArg::Ptr(dx.ptr())];
        args.extend([nc, h, w, oh, ow].map(|v| KArg::I64(v as i64)));
        dev.launch(&name, dims(nc * h * w), &args)?;
    }
    Ok(Tensor::from_cuda(dx, in_shape))
}

/// The trailing `(nc, h, w, oh, ow, kh, kw, sh, sw, ph, pw: i64, count_include_pad: i32)` of the pool
/// kernels ([`pool2d_args`]).
fn pool_args(p: &Pool2dParams) -> Vec<KArg> {
    let (sizes, include_pad) = pool2d_args(p);
    let mut v: Vec<KArg> = sizes.map(KArg::I64).to_vec();
    v.push(KArg::I32(include_pad));
    v
}

/// `avg_pool2d_fwd_<dt>(x, y, …pool args)` over `nc·oh·ow`.
pub(crate) fn avg_pool2d(x: &Tensor, p: &Pool2dParams, n: usize, c: usize) -> Result<Tensor> {
    let op = "avg_pool2d";
    let dt = float_suffix(op, x.dtype())?;
    let name = format!("avg_pool2d_fwd_{dt}");
    need(op, &name, x.device())?;
    let x = x.contiguous()?;
    let (xs, dev) = storage(op, &x)?;
    let len = p.nc * p.out_h() * p.out_w();
    let y = CudaStorage::alloc(&dev, x.dtype(), len)?;
    if len > 0 {
        let mut args = vec![KArg::Ptr(xs.ptr_at(x.offset())), KArg::Ptr(y.ptr())];
        args.extend(pool_args(p));
        dev.launch(&name, dims(len), &args)?;
    }
    Ok(Tensor::from_cuda(y, &[n, c, p.out_h(), p.out_w()]))
}

/// `avg_pool2d_bwd_<dt>(dy, dx, …pool args)` over `nc·h·w`.
pub(crate) fn avg_pool2d_backward(dy: &Tensor, p: &Pool2dParams, in_shape: &[usize]) -> Result<Tensor> {
    let op = "avg_pool2d_backward";
    let dt = float_suffix(op, dy.dtype())?;
    let name = format!("avg_pool2d_bwd_{dt}");
    need(op, &name, dy.device())?;
    let dy = dy.contiguous()?;
    let (ds, dev) = storage(op, &dy)?;
    let len = p.nc * p.h * p.w;
    let dx = CudaStorage::alloc(&dev, dy.dtype(), len)?;
    if len > 0 {
        let mut args = vec![KArg::Ptr(ds.ptr_at(dy.offset())), KArg::Ptr(dx.ptr())];
        args.extend(pool_args(p));
        dev.launch(&name, dims(len), &args)?;
    }
    Ok(Tensor::from_cuda(dx, in_shape))
}

/// Runs an `index_select_{fwd,bwd}_*` kernel and maps its error word to `IndexOutOfRange`.
#[allow(clippy::too_many_arguments)]
fn index_launch(
    op: &'static str,
    name: &str,
    src: u64,
    idx: &Tensor,
    dst: u64,
    [outer, n, inner]: [usize; 3],
    dim: usize,
) -> Result<()> {
    let (is, dev) = storage(op, idx)?;
    let m = idx.numel();
    let err = dev.htod(&[INDEX_OK])?;
    let count = index_select_count(outer, inner, m);
    if count > 0 {
        dev.launch(
            name,
            dims(count),
            &[
                KArg::Ptr(src),
                KArg::Ptr(is.ptr_at(idx.offset())),
                KArg::Ptr(dst),
                KArg::I64(outer as i64),
                KArg::I64(n as i64),
                KArg::I64(inner as i64),
                KArg::I64(m as i64),
                KArg::Ptr(err.ptr()),
            ],
        )?;
    }
    if let Err(p) = index_result(dev.dtoh::<u64>(&err, 0, 1)?[0]) {
        let index = dev.dtoh::<i64>(is.buffer(), idx.offset() + p, 1).map(|v| v[0]).unwrap_or(-1);
        return Err(Error::IndexOutOfRange { op, index, dim, size: n });
    }
    Ok(())
}

/// `index_select_fwd_<dt>(src, idx, dst, outer, n, inner, m, err)`; `idx` a contiguous 1-d i64 tensor
/// on the same device.
pub(crate) fn index_select(x: &Tensor, d: usize, idx: &Tensor) -> Result<Tensor> {
    let op = "index_select";
    same_device(op, &[x, idx])?;
    let name = format!("index_select_fwd_{}", x.dtype().as_str());
    need(op, &name, x.device())?;
    let (x, idx) = (x.contiguous()?, idx.contiguous()?);
    let (xs, dev) = storage(op, &x)?;
    let s = x.shape();
    let (o, n, i) = (s[..d].iter().product::<usize>(), s[d], s[d + 1..].iter().product::<usize>());
    let mut out_shape = s.to_vec();
    out_shape[d] = idx.numel();
    let y = CudaStorage::alloc(&dev, x.dtype(), o * idx.numel() * i)?;
    index_launch(op, &name, xs.ptr_at(x.offset()), &idx, y.ptr(), [o, n, i], d)?;
    Ok(Tensor::from_cuda(y, &out_shape))
}

/// Gradient of `index_select`. Preferred: the deterministic four-launch path
/// (`index_select_bwd_count`, `_scan`, `_fill`, `_gather_<dt>`), bit-identical to the CPU for every
/// float dtype, when `n·m` is moderate; otherwise the atomic `index_select_bwd_<f32|f64>` into a
/// zeroed `dsrc` (16-bit gradients computed in f32 and rounded back, as on the CPU).
pub(crate) fn index_select_backward(dy: &Tensor, d: usize, idx: &Tensor, shape: &[usize]) -> Result<Tensor> {
    let op = "index_select_backward";
    same_device(op, &[dy, idx])?;
    let dt = float_suffix(op, dy.dtype())?;
    let (o, n, i) =
        (shape[..d].iter().product::<usize>(), shape[d], shape[d + 1..].iter().product::<usize>());
    let m = idx.numel();
    let gather = format!("index_select_bwd_gather_{dt}");
    let deterministic = ["index_select_bwd_count", "index_select_bwd_scan", "index_select_bwd_fill", &gather]
        .iter()
        .all(|k| has_kernel(k))
        && (n as u128) * (m as u128) <= 1_000_000_000
        && m < (1 << 31);
    if deterministic {
        return index_select_backward_deterministic(dy, d, idx, shape, [o, n, i], &gather);
    }
    let cdt = if dy.dtype().is_half() { DType::F32 } else { dy.dtype() };
    let name = format!("index_select_bwd_{}", cdt.as_str());
    need(op, &name, dy.device())?;
    let g = if cdt != dy.dtype() { to_dtype(dy, cdt)? } else { dy.contiguous()? };
    let idx = idx.contiguous()?;
    let (gs, dev) = storage(op, &g)?;
    let dx = CudaStorage::zeros(&dev, cdt, kernels::strided::numel(shape))?;
    index_launch(op, &name, gs.ptr_at(g.offset()), &idx, dx.ptr(), [o, n, i], d)?;
    let r = Tensor::from_cuda(dx, shape);
    if cdt != dy.dtype() { to_dtype(&r, dy.dtype()) } else { Ok(r) }
}

/// The four launches of the deterministic backward (layout/cuda.rs): count the readers of each
/// source row (and check the indices), scan them into `starts`, list the readers in `rows`, gather.
fn index_select_backward_deterministic(
    dy: &Tensor,
    d: usize,
    idx: &Tensor,
    shape: &[usize],
    [o, n, i]: [usize; 3],
    gather: &str,
) -> Result<Tensor> {
    let op = "index_select_backward";
    let (dy, idx) = (dy.contiguous()?, idx.contiguous()?);
    let (ds, dev) = storage(op, &dy)?;
    let (is, _) = storage(op, &idx)?;
    let m = idx.numel();
    let idx_ptr = is.ptr_at(idx.offset());
    let err = dev.htod(&[INDEX_OK])?;
    let starts = dev.alloc_zeros((n + 1) * 4)?;
    let rows = dev.alloc(m.max(1) * 4)?;
    let (n64, m64) = (KArg::I64(n as i64), KArg::I64(m as i64));
    dev.launch(
        "index_select_bwd_count",
        dims(n.max(m)),
        &[KArg::Ptr(idx_ptr), n64, m64, KArg::Ptr(starts.ptr()), KArg::Ptr(err.ptr())],
    )?;
    if let Err(p) = index_result(dev.dtoh::<u64>(&err, 0, 1)?[0]) {
        let index = dev.dtoh::<i64>(is.buffer(), idx.offset() + p, 1).map(|v| v[0]).unwrap_or(-1);
        return Err(Error::IndexOutOfRange { op, index, dim: d, size: n });
    }
    dev.launch("index_select_bwd_scan", scan_dims(), &[KArg::Ptr(starts.ptr()), n64])?;
    dev.launch(
        "index_select_bwd_fill",
        dims(n),
        &[KArg::Ptr(idx_ptr), n64, m64, KArg::Ptr(starts.ptr()), KArg::Ptr(rows.ptr())],
    )?;
    let len = o * n * i;
    let dx = CudaStorage::alloc(&dev, dy.dtype(), len)?;
    if len > 0 {
        dev.launch(
            gather,
            dims(len),
            &[
                KArg::Ptr(ds.ptr_at(dy.offset())),
                KArg::Ptr(starts.ptr()),
                KArg::Ptr(rows.ptr()),
                KArg::Ptr(dx.ptr()),
                KArg::I64(o as i64),
                n64,
                KArg::I64(i as i64),
                m64,
            ],
        )?;
    }
    Ok(Tensor::from_cuda(dx, shape))
}

/// `where_<dt>(cond, cl, a, al, b, bl, dst, n)` on views broadcast to one shape.
pub(crate) fn where_cond(c: &Tensor, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let op = "where";
    same_device(op, &[c, a, b])?;
    let name = format!("where_{}", a.dtype().as_str());
    need(op, &name, a.device())?;
    let (cs, dev) = storage(op, c)?;
    let (as_, _) = storage(op, a)?;
    let (bs, _) = storage(op, b)?;
    let n = a.numel();
    let y = CudaStorage::alloc(&dev, a.dtype(), n)?;
    if n > 0 {
        dev.launch(
            &name,
            dims(n),
            &[
                KArg::Ptr(cs.ptr()),
                KArg::Strided(strided(op, c)?),
                KArg::Ptr(as_.ptr()),
                KArg::Strided(strided(op, a)?),
                KArg::Ptr(bs.ptr()),
                KArg::Strided(strided(op, b)?),
                KArg::Ptr(y.ptr()),
                KArg::I64(n as i64),
            ],
        )?;
    }
    Ok(Tensor::from_cuda(y, a.shape()))
}
