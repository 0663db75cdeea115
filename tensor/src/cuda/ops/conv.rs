//! 2-d convolution on the device: the implicit-GEMM kernels `conv2d_{fwd,dgrad,wgrad}_<dtype>` of
//! `kernels/src/conv/conv.cu` (argument lists, launch shapes and size limits in
//! `kernels/src/conv/cuda.rs`): f32/f64 SIMT, f16/bf16 on tensor cores with f32 accumulation,
//! rounded once (the CPU computes 16-bit convs in f32 and rounds once too). Inputs are made
//! contiguous first. The bias gradient is the reduce family's sum over `(n, oh, ow)`.

use super::{float_suffix, storage};
use crate::cuda::{CudaStorage, KArg, has_kernel};
use crate::{DType, Error, Result, Tensor};
use kernels::conv::Conv2dParams;
use kernels::conv::cuda::{
    ConvArgs, ConvPass, kernel_name, launch_dims, wgrad_finish_launch_dims, wgrad_split_launch_dims,
    wgrad_splits,
};

/// Launches `pass` with the contiguous `inputs` (in the kernel's argument order), the optional bias
/// pointer (forward only), and a fresh output of `out_shape`.
fn launch(
    op: &'static str,
    pass: ConvPass,
    p: &Conv2dParams,
    inputs: [&Tensor; 2],
    bias: Option<&Tensor>,
    out_shape: &[usize],
) -> Result<Tensor> {
    let dtype = inputs[0].dtype();
    let dt = float_suffix(op, dtype)?;
    let name = kernel_name(pass, dt);
    if !has_kernel(&name) {
        return Err(Error::NotImplementedOnDevice { op, device: inputs[0].device() });
    }
    let dims = launch_dims(pass, p, dt).map_err(|e| Error::invalid(op, e))?;
    let a = inputs[0].contiguous()?;
    let b = inputs[1].contiguous()?;
    let bias = bias.map(|t| t.contiguous()).transpose()?;
    let (sa, dev) = storage(op, &a)?;
    let (sb, _) = storage(op, &b)?;
    let bias_ptr = match &bias {
        Some(t) => storage(op, t)?.0.ptr_at(t.offset()),
        None => 0,
    };
    let len: usize = out_shape.iter().product();
    let out = CudaStorage::alloc(&dev, dtype, len)?;
    if let Some(dims) = dims {
        let mut args = vec![KArg::Ptr(sa.ptr_at(a.offset())), KArg::Ptr(sb.ptr_at(b.offset()))];
        if pass == ConvPass::Forward {
            args.push(KArg::Ptr(bias_ptr));
        }
        args.push(KArg::Ptr(out.ptr()));
        args.push(KArg::Conv(ConvArgs::new(p)));
        dev.launch(&name, dims, &args)?;
    }
    Ok(Tensor::from_cuda(out, out_shape))
}

/// `y = conv2d(x, w) (+ bias)`; shapes and devices already checked by the caller.
pub(crate) fn forward(p: &Conv2dParams, x: &Tensor, w: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    launch("conv2d", ConvPass::Forward, p, [x, w], bias, &[p.n, p.c_out, p.out_h(), p.out_w()])
}

/// `dx` from the weight and the output gradient.
pub(crate) fn backward_input(p: &Conv2dParams, w: &Tensor, dy: &Tensor) -> Result<Tensor> {
    launch("conv2d_backward_input", ConvPass::InputGrad, p, [dy, w], None, &[p.n, p.c_in, p.h, p.w])
}

/// `dw` from the input and the output gradient: one kernel, or split-K (partial sums into an f32
/// / f64 workspace, then an ordered finishing sum) when the `dw` tiles alone would leave the GPU
/// idle (`kernels::conv::cuda::wgrad_splits`).
pub(crate) fn backward_weight(p: &Conv2dParams, x: &Tensor, dy: &Tensor) -> Result<Tensor> {
    let op = "conv2d_backward_weight";
    let shape = [p.c_out, p.c_in / p.groups, p.kh, p.kw];
    let dt = float_suffix(op, x.dtype())?;
    let splits = wgrad_splits(p, dt);
    let (split_name, finish_name) = (format!("conv2d_wgrad_split_{dt}"), format!("conv2d_wgrad_finish_{dt}"));
    if splits <= 1 || !has_kernel(&split_name) || !has_kernel(&finish_name) {
        return launch(op, ConvPass::WeightGrad, p, [x, dy], None, &shape);
    }
    let dims = wgrad_split_launch_dims(p, dt, splits).map_err(|e| Error::invalid(op, e))?;
    let (x, dy) = (x.contiguous()?, dy.contiguous()?);
    let (sx, dev) = storage(op, &x)?;
    let (sdy, _) = storage(op, &dy)?;
    let ws_dtype = if dt == "f64" { DType::F64 } else { DType::F32 };
    let ws = CudaStorage::alloc(&dev, ws_dtype, splits * p.w_len())?;
    let out = CudaStorage::alloc(&dev, x.dtype(), p.w_len())?;
    if let Some(dims) = dims {
        let (len, s) = (p.w_len() as i64, splits as i64);
        dev.launch(
            &split_name,
            dims,
            &[
                KArg::Ptr(sx.ptr_at(x.offset())),
                KArg::Ptr(sdy.ptr_at(dy.offset())),
                KArg::Ptr(ws.ptr()),
                KArg::Conv(ConvArgs::new(p)),
                KArg::I64(s),
            ],
        )?;
        dev.launch(
            &finish_name,
            wgrad_finish_launch_dims(p),
            &[KArg::Ptr(ws.ptr()), KArg::Ptr(out.ptr()), KArg::I64(len), KArg::I64(s)],
        )?;
    }
    Ok(Tensor::from_cuda(out, &shape))
}
