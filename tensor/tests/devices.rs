//! Ops run once per compiled-in device (`tensor::testing::devices()`: the CPU, plus `cuda:0` when the
//! build has the `cuda` feature and a GPU opens). GPU results are compared with the CPU result of the
//! same op on the same inputs. Without a GPU only the CPU part runs, plus the checks that asking for a
//! GPU is a typed error.
//!
//! Tolerances (GPU vs CPU): f64 1e-12 relative (both compute in f64, the libm and CUDA math functions
//! differ by an ulp or two); f32 `Tolerance::F32` (CUDA's expf/tanhf/erff are within 2 ulp, the CPU
//! kernels use their own vectorised approximations); f16/bf16: both round an f32 result, which may
//! differ by one unit in the last place of the half type, so `Tolerance::F16` / `Tolerance::BF16`.

mod common;
use common::device_check as check;
use common::seq;
use tensor::testing::devices;
use tensor::{BinaryOp, CmpOp, DType, Device, Error, Tensor, Tolerance, UnaryOp};

fn tol(dtype: DType) -> Tolerance {
    match dtype {
        DType::F64 => Tolerance::new(1e-12, 1e-13),
        DType::F32 => Tolerance::F32,
        DType::F16 => Tolerance::F16,
        DType::BF16 => Tolerance::BF16,
        _ => Tolerance::new(0.0, 0.0),
    }
}

/// A [4, 3] view with a column stride and an offset: rows of a transposed, narrowed tensor.
fn strided_view(dtype: DType) -> Tensor {
    seq(&[5, 4]).to_dtype(dtype).unwrap().narrow(0, 1, 3).unwrap().t().unwrap()
}

const UNARY: [UnaryOp; 21] = [
    UnaryOp::Neg,
    UnaryOp::Abs,
    UnaryOp::Exp,
    UnaryOp::Log,
    UnaryOp::Sqrt,
    UnaryOp::Rsqrt,
    UnaryOp::Sqr,
    UnaryOp::Recip,
    UnaryOp::Tanh,
    UnaryOp::Sigmoid,
    UnaryOp::Silu,
    UnaryOp::Gelu,
    UnaryOp::GeluTanh,
    UnaryOp::Relu,
    UnaryOp::Sin,
    UnaryOp::Cos,
    UnaryOp::Erf,
    UnaryOp::Sign,
    UnaryOp::Powf(1.5),
    UnaryOp::Affine { mul: -2.0, add: 0.5 },
    UnaryOp::Clamp { min: -1.0, max: 2.5 },
];

#[test]
fn unary_ops_on_strided_inputs_match_the_cpu_on_every_device() {
    for dev in devices() {
        for dtype in [DType::F32, DType::F64, DType::F16, DType::BF16] {
            let x = strided_view(dtype);
            assert!(!x.is_contiguous());
            let xd = x.to_device(dev).unwrap();
            assert_eq!(xd.device(), dev);
            for op in UNARY {
                // log/sqrt/pow of negative values are NaN on both sides; compare on |x| + 0.1 too.
                let want = x.unary(op).unwrap();
                let got = xd.unary(op).unwrap();
                assert_eq!(got.device(), dev);
                check(&format!("{op:?} {dtype} on {dev}"), &got, &want, tol(dtype));
                let pos = x.abs().unwrap().add_scalar(0.1).unwrap();
                let want = pos.unary(op).unwrap();
                let got = pos.to_device(dev).unwrap().unary(op).unwrap();
                check(&format!("{op:?} {dtype} on {dev} (positive)"), &got, &want, tol(dtype));
            }
        }
    }
}

#[test]
fn unary_backward_matches_the_cpu_on_every_device() {
    for dev in devices() {
        for dtype in [DType::F32, DType::F64] {
            let x = strided_view(dtype).abs().unwrap().add_scalar(0.2).unwrap();
            let dy = seq(&[4, 3]).affine(0.3, 0.1).unwrap().to_dtype(dtype).unwrap();
            let (xd, dyd) = (x.to_device(dev).unwrap(), dy.to_device(dev).unwrap());
            for op in UNARY {
                let want = x.unary_backward(op, &dy).unwrap();
                let got = xd.unary_backward(op, &dyd).unwrap();
                check(&format!("d{op:?} {dtype} on {dev}"), &got, &want, tol(dtype));
            }
        }
    }
}

#[test]
fn broadcast_binary_and_compare_match_the_cpu_on_every_device() {
    let ops = [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Pow,
        BinaryOp::Maximum,
        BinaryOp::Minimum,
    ];
    let cmps = [CmpOp::Eq, CmpOp::Ne, CmpOp::Lt, CmpOp::Le, CmpOp::Gt, CmpOp::Ge];
    for dev in devices() {
        for dtype in [DType::F32, DType::F64, DType::F16, DType::BF16] {
            // [4, 3] strided against [3] and against [4, 1].
            let a = strided_view(dtype).abs().unwrap();
            let b_row = seq(&[3]).affine(0.2, 0.1).unwrap().to_dtype(dtype).unwrap();
            let b_col = seq(&[4, 1]).to_dtype(dtype).unwrap();
            let ad = a.to_device(dev).unwrap();
            for b in [&b_row, &b_col] {
                let bd = b.to_device(dev).unwrap();
                for op in ops {
                    let want = a.binary(op, b).unwrap();
                    let got = ad.binary(op, &bd).unwrap();
                    check(&format!("{op:?} {dtype} {:?} on {dev}", b.shape()), &got, &want, tol(dtype));
                }
                for op in cmps {
                    let want = a.compare(op, b).unwrap();
                    let got = ad.compare(op, &bd).unwrap();
                    assert_eq!(got.dtype(), DType::U8);
                    check(&format!("{op:?} {dtype} on {dev}"), &got, &want, Tolerance::new(0.0, 0.0));
                }
            }
        }
    }
}

#[test]
fn transfers_round_trip_every_dtype_and_layout() {
    for dev in devices() {
        for dtype in DType::ALL {
            let base = seq(&[3, 4, 5]).affine(3.0, 20.0).unwrap().to_dtype(dtype).unwrap();
            let views = [
                base.clone(),
                base.permute(&[2, 0, 1]).unwrap(),
                base.narrow(1, 1, 2).unwrap(),
                base.select(2, 3).unwrap(),
                base.narrow(0, 1, 1).unwrap().expand(&[4, 4, 5]).unwrap(),
                base.narrow(2, 0, 0).unwrap(),
            ];
            for (k, v) in views.iter().enumerate() {
                let d = v.to_device(dev).unwrap();
                assert_eq!((d.device(), d.dtype(), d.shape()), (dev, dtype, v.shape()));
                let back = d.to_cpu().unwrap();
                assert!(back.device().is_cpu());
                assert_eq!(back.to_vec_f64(), v.to_vec_f64(), "view {k} {dtype} via {dev}");
                // A view taken on the device comes back right too.
                let dv = d.transpose(0, 1).unwrap();
                assert_eq!(
                    dv.to_vec_f64(),
                    v.transpose(0, 1).unwrap().to_vec_f64(),
                    "view {k} {dtype} transposed on {dev}"
                );
                assert_eq!(d.to_vec::<f64>().unwrap(), v.to_vec::<f64>().unwrap());
                if v.numel() > 0 {
                    let idx: Vec<usize> = v.shape().iter().map(|&n| n - 1).collect();
                    assert_eq!(d.get(&idx).unwrap(), v.get(&idx).unwrap());
                }
            }
        }
    }
}

#[test]
fn contiguous_on_the_device_copies_views_exactly() {
    for dev in devices() {
        for dtype in [DType::F32, DType::F64, DType::F16, DType::BF16] {
            let mut v = seq(&[4, 6]).to_vec_f64();
            v[3] = f64::NAN;
            v[5] = -0.0;
            let x = Tensor::from_vec(v, &[4, 6]).unwrap().to_dtype(dtype).unwrap();
            let d = x.to_device(dev).unwrap().t().unwrap();
            let c = d.contiguous().unwrap();
            assert!(c.is_contiguous());
            assert_eq!(c.device(), dev);
            let want = x.t().unwrap().to_vec_f64();
            let got = c.to_vec_f64();
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()),
                    "{g} vs {w} ({dtype} on {dev})"
                );
            }
            let dc = c.deep_clone().unwrap();
            assert!(!dc.same_storage(&c));
            assert_eq!(dc.device(), dev);
        }
    }
}

#[test]
fn zeros_full_item_and_display_on_every_device() {
    for dev in devices() {
        let z = Tensor::zeros_on(&[2, 3], DType::F32, dev).unwrap();
        assert_eq!(z.device(), dev);
        assert_eq!(z.to_vec_f64(), vec![0.0; 6]);
        let f = Tensor::full_on(&[3], 2.5, DType::BF16, dev).unwrap();
        assert_eq!(f.to_vec_f64(), vec![2.5; 3]);
        let s = Tensor::scalar(7.0f64).to_device(dev).unwrap();
        assert_eq!(s.item().unwrap(), 7.0);
        let shown = format!("{}", Tensor::from_vec(vec![1.0f32, 2.0], &[2]).unwrap().to_device(dev).unwrap());
        assert!(shown.starts_with("tensor([1.0000, 2.0000]"), "{shown}");
        if !dev.is_cpu() {
            assert!(shown.contains(&format!("device={dev}")), "{shown}");
        }
    }
}

#[test]
fn asking_for_a_missing_gpu_is_a_typed_error() {
    let have_gpu = devices().len() > 1;
    let t = Tensor::from_vec(vec![1.0f32, 2.0], &[2]).unwrap();
    // An ordinal that no machine has is always unavailable, in every build.
    for r in [
        Device::Cuda(977).ensure_available().map(|_| ()),
        t.to_device(Device::Cuda(977)).map(|_| ()),
        Tensor::zeros_on(&[2], DType::F32, Device::Cuda(977)).map(|_| ()),
    ] {
        match r {
            Err(Error::DeviceUnavailable { device, reason }) => {
                assert_eq!(device, Device::Cuda(977));
                assert!(!reason.is_empty());
            }
            other => panic!("expected DeviceUnavailable, got {other:?}"),
        }
    }
    if have_gpu {
        return;
    }
    // No GPU here (or no cuda feature): cuda:0 is refused with the reason, never a panic.
    for r in [
        Device::Cuda(0).ensure_available().map(|_| ()),
        t.to_device(Device::Cuda(0)).map(|_| ()),
        t.reshape(&[2, 1]).unwrap().t().unwrap().to_device(Device::Cuda(0)).map(|_| ()),
        Tensor::full_on(&[2], 1.0, DType::F64, Device::Cuda(0)).map(|_| ()),
    ] {
        let Err(Error::DeviceUnavailable { device, reason }) = r else {
            panic!("expected DeviceUnavailable, got {r:?}")
        };
        assert_eq!(device, Device::Cuda(0));
        if cfg!(feature = "cuda") {
            // The reason says what is missing: the driver library, or the GPU.
            assert!(
                reason.contains("libcuda")
                    || reason.contains("device(s) are visible")
                    || reason.contains("cuInit"),
                "{reason}"
            );
        } else {
            assert!(reason.contains("--features cuda"), "{reason}");
        }
        let msg = Error::DeviceUnavailable { device, reason }.to_string();
        assert!(msg.starts_with("device cuda:0 is unavailable"), "{msg}");
    }
}

#[test]
fn gpu_ops_without_a_kernel_and_mixed_devices_are_typed_errors() {
    for dev in devices().into_iter().filter(|d| !d.is_cpu()) {
        let a = seq(&[2, 3]).to_dtype(DType::F32).unwrap();
        let ad = a.to_device(dev).unwrap();
        // Mixed devices.
        for r in [a.add(&ad), ad.mul(&a), ad.lt(&a)] {
            assert!(matches!(r, Err(Error::DeviceMismatch { .. })), "{r:?}");
        }
        // A kernel op with its operands on two devices (conv2d runs on the GPU since issue 7:
        // tests/devices_conv.rs) is a typed error, whichever operand is the odd one out.
        let w = seq(&[1, 2, 3, 3]).to_dtype(DType::F32).unwrap();
        let x = seq(&[1, 2, 5, 5]).to_dtype(DType::F32).unwrap().to_device(dev).unwrap();
        let r = x.conv2d(&w, None, &tensor::Conv2dOptions::default());
        assert!(matches!(r, Err(Error::DeviceMismatch { op: "conv2d", .. })), "{r:?}");
        let (wd, b) = (w.to_device(dev).unwrap(), Tensor::zeros(&[1], DType::F32));
        let r = x.conv2d(&wd, Some(&b), &tensor::Conv2dOptions::default());
        assert!(matches!(r, Err(Error::DeviceMismatch { op: "conv2d", .. })), "{r:?}");
        // Attention has no f64 kernels (f32/f16/bf16 run: tests/devices_attention.rs).
        let q = seq(&[1, 1, 4, 8]).to_device(dev).unwrap();
        let r = Tensor::attention(&q, &q, &q, None, 0.5);
        assert!(
            matches!(r, Err(Error::NotImplementedOnDevice { op: "attention", .. })),
            "{:?}",
            r.map(|o| o.out)
        );
        // Storage access is an error, not a panic.
        assert!(ad.storage().cpu().is_err());
    }
}

/// The op's result, or `None` (printing why) when the op has no kernel on this GPU build.
fn on<T>(what: &str, dev: Device, r: tensor::Result<T>) -> Option<T> {
    match r {
        Ok(t) => Some(t),
        Err(Error::NotImplementedOnDevice { .. }) if !dev.is_cpu() => {
            eprintln!("skipping {what} on {dev}: no kernel for it in this build");
            None
        }
        Err(e) => panic!("{what} on {dev}: {e}"),
    }
}

#[test]
fn layout_ops_match_the_cpu_on_every_device() {
    for dev in devices() {
        let g = |t: &Tensor| t.to_device(dev).unwrap();
        for dtype in [DType::F32, DType::F64, DType::F16, DType::BF16] {
            let t = tol(dtype);
            let a = seq(&[2, 3]).to_dtype(dtype).unwrap();
            let b = seq(&[2, 1]).affine(1.0, 100.0).unwrap().to_dtype(dtype).unwrap();
            let a_narrow = a.narrow(1, 1, 2).unwrap();
            let want = Tensor::cat(&[&a, &b, &a_narrow], 1).unwrap();
            if let Some(got) =
                on("cat", dev, Tensor::cat(&[&g(&a), &g(&b), &g(&a).narrow(1, 1, 2).unwrap()], 1))
            {
                check(&format!("cat {dtype} on {dev}"), &got, &want, t);
            }
            let want = Tensor::cat(&[&a.t().unwrap(), &a.t().unwrap()], 0).unwrap();
            if let Some(got) = on("cat", dev, Tensor::cat(&[&g(&a).t().unwrap(), &g(&a.t().unwrap())], 0)) {
                check(&format!("cat dim 0 {dtype} on {dev}"), &got, &want, t);
            }

            let img = seq(&[2, 2, 3, 4]).to_dtype(dtype).unwrap();
            let want = img.upsample_nearest2d(6, 9).unwrap();
            if let Some(got) = on("upsample", dev, g(&img).upsample_nearest2d(6, 9)) {
                check(&format!("upsample {dtype} on {dev}"), &got, &want, t);
                let dy = seq(&[2, 2, 6, 9]).to_dtype(dtype).unwrap();
                let want = Tensor::upsample_nearest2d_backward(&dy, img.shape()).unwrap();
                let got = Tensor::upsample_nearest2d_backward(&g(&dy), img.shape()).unwrap();
                check(&format!("upsample backward {dtype} on {dev}"), &got, &want, t);
            }
            for cip in [true, false] {
                let args = ([3, 2], [2, 2], [1, 1], cip);
                let want = img.avg_pool2d(args.0, args.1, args.2, args.3).unwrap();
                if let Some(got) = on("avg_pool2d", dev, g(&img).avg_pool2d(args.0, args.1, args.2, args.3)) {
                    check(&format!("avg_pool2d {dtype} cip={cip} on {dev}"), &got, &want, t);
                    let dy = seq(want.shape()).to_dtype(dtype).unwrap();
                    let want = Tensor::avg_pool2d_backward(&dy, img.shape(), args.0, args.1, args.2, args.3)
                        .unwrap();
                    let got =
                        Tensor::avg_pool2d_backward(&g(&dy), img.shape(), args.0, args.1, args.2, args.3)
                            .unwrap();
                    check(&format!("avg_pool2d backward {dtype} on {dev}"), &got, &want, t);
                }
            }

            let idx = Tensor::from_vec(vec![2i64, 0, 2, -1], &[4]).unwrap();
            let want = a.index_select(1, &idx).unwrap();
            if let Some(got) = on("index_select", dev, g(&a).index_select(1, &g(&idx))) {
                check(&format!("index_select {dtype} on {dev}"), &got, &want, t);
                let dy = seq(&[2, 4]).to_dtype(dtype).unwrap();
                let want = Tensor::index_select_backward(&dy, 1, &idx, &[2, 3]).unwrap();
                let got = Tensor::index_select_backward(&g(&dy), 1, &g(&idx), &[2, 3]).unwrap();
                // Duplicate indices are summed in another order on the GPU (atomics).
                check(&format!("index_select backward {dtype} on {dev}"), &got, &want, t.for_reduction(2));
                let oob = Tensor::from_vec(vec![0i64, 3], &[2]).unwrap();
                let r = g(&a).index_select(1, &g(&oob));
                assert!(
                    matches!(r, Err(Error::IndexOutOfRange { index: 3, dim: 1, size: 3, .. })),
                    "{dtype} on {dev}: {r:?}"
                );
            }

            let zero = Tensor::full(&[], 0.0, dtype);
            let mask = a.gt(&zero).unwrap();
            let want = a.masked_fill(&mask, -1.0).unwrap();
            if let Some(got) = on("masked_fill", dev, g(&a).masked_fill(&g(&mask), -1.0)) {
                check(&format!("masked_fill {dtype} on {dev}"), &got, &want, t);
            }
            let cond = Tensor::from_vec(vec![1u8, 0, 1], &[3]).unwrap();
            let want = Tensor::where_cond(&cond, &a, &b).unwrap();
            if let Some(got) = on("where", dev, Tensor::where_cond(&g(&cond), &g(&a), &g(&b))) {
                check(&format!("where {dtype} on {dev}"), &got, &want, t);
            }
        }
    }
}

#[test]
fn dtype_conversions_match_the_cpu_bit_for_bit_on_every_device() {
    let vals = vec![1.5, -2.25, 3.0, 1e-6, 300.7, -1e20, f64::NAN, 65504.0, 0.1, -0.0, 255.5, 1e-40];
    for dev in devices() {
        for from in DType::ALL {
            let x = Tensor::from_vec(vals.clone(), &[3, 4]).unwrap().to_dtype(from).unwrap().t().unwrap();
            let xd = x.to_device(dev).unwrap();
            for to in DType::ALL {
                let want = x.to_dtype(to).unwrap();
                let Some(got) = on("to_dtype", dev, xd.to_dtype(to)) else { continue };
                assert_eq!((got.dtype(), got.device()), (to, dev));
                let (g, w) = (got.to_vec_f64(), want.to_vec_f64());
                for (k, (a, b)) in g.iter().zip(&w).enumerate() {
                    assert!(
                        a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
                        "{from}->{to} [{k}] on {dev}: {a} vs {b}"
                    );
                }
            }
        }
    }
}

#[test]
fn random_fills_match_the_cpu_stream_on_every_device() {
    for dev in devices() {
        for dtype in [DType::F32, DType::F64, DType::BF16] {
            for offset in [0u64, 3] {
                let want = Tensor::rand_uniform(&[7, 5], -1.0, 2.0, 42, offset, dtype).unwrap();
                if let Some(got) = on(
                    "rand_uniform",
                    dev,
                    Tensor::rand_uniform_on(&[7, 5], -1.0, 2.0, 42, offset, dtype, dev),
                ) {
                    assert_eq!(got.device(), dev);
                    // Bit-identical (integer Philox, exact scaling).
                    assert_eq!(
                        got.to_vec_f64(),
                        want.to_vec_f64(),
                        "uniform {dtype} offset {offset} on {dev}"
                    );
                }
                let want = Tensor::randn(&[7, 5], 0.5, 2.0, 7, offset, dtype).unwrap();
                if let Some(got) =
                    on("randn", dev, Tensor::randn_on(&[7, 5], 0.5, 2.0, 7, offset, dtype, dev))
                {
                    // CUDA log/sin/cos vs libm: a few ulp in f64, at most 1 ulp after rounding to f32.
                    let t = if dtype == DType::F64 { Tolerance::new(1e-14, 1e-14) } else { tol(dtype) };
                    check(&format!("randn {dtype} on {dev}"), &got, &want, t);
                }
            }
        }
    }
}

#[test]
fn batched_matmul_with_broadcast_and_transposes_matches_the_cpu_on_every_device() {
    for dev in devices() {
        for dtype in [DType::F32, DType::F64, DType::F16, DType::BF16] {
            for (b, m, k, n) in [(2, 5, 7, 3), (1, 1, 1, 1), (3, 130, 33, 129), (2, 4, 0, 3)] {
                // a: [b, m, k] as a transposed view; w: [k, n] transposed and broadcast over the batch.
                let a = seq(&[b, k, m]).to_dtype(dtype).unwrap().transpose(1, 2).unwrap();
                let w = seq(&[n, k]).affine(0.1, 0.0).unwrap().to_dtype(dtype).unwrap().t().unwrap();
                let want = a.matmul(&w).unwrap();
                let Some(got) =
                    on("matmul", dev, a.to_device(dev).unwrap().matmul(&w.to_device(dev).unwrap()))
                else {
                    continue;
                };
                // Summation order differs (tiles, FMA): the reduction tolerance over k.
                check(
                    &format!("matmul {dtype} {b}x{m}x{k}x{n} on {dev}"),
                    &got,
                    &want,
                    tol(dtype).for_reduction(k),
                );
            }
            // Vector operands lose their dimension as on the CPU.
            let v = seq(&[4]).to_dtype(dtype).unwrap();
            let mat = seq(&[4, 3]).to_dtype(dtype).unwrap();
            let want = v.matmul(&mat).unwrap();
            if let Some(got) =
                on("matmul", dev, v.to_device(dev).unwrap().matmul(&mat.to_device(dev).unwrap()))
            {
                check(&format!("vector @ matrix {dtype} on {dev}"), &got, &want, tol(dtype).for_reduction(4));
            }
        }
    }
}

#[test]
fn reductions_and_softmax_match_the_cpu_on_every_device() {
    let ops = [
        tensor::ReduceOp::Sum,
        tensor::ReduceOp::Mean,
        tensor::ReduceOp::Max,
        tensor::ReduceOp::Min,
        tensor::ReduceOp::Var { correction: 1 },
        tensor::ReduceOp::Var { correction: 0 },
    ];
    for dev in devices() {
        for dtype in [DType::F32, DType::F64, DType::F16, DType::BF16] {
            // A permuted [3, 4, 5] view; long rows (2000) take the one-block-per-row path.
            let x = seq(&[4, 5, 3]).to_dtype(dtype).unwrap().permute(&[2, 0, 1]).unwrap();
            let long = seq(&[3, 2000]).to_dtype(dtype).unwrap();
            let (xd, ld) = (x.to_device(dev).unwrap(), long.to_device(dev).unwrap());
            for op in ops {
                for dims in [&[][..], &[0], &[1, 2], &[-1]] {
                    let want = x.reduce(op, dims, true).unwrap();
                    let Some(got) = on("reduce", dev, xd.reduce(op, dims, true)) else { continue };
                    // The GPU sums in f64 and rounds once; the CPU's f32 lanes round more often.
                    check(
                        &format!("{op:?} {dims:?} {dtype} on {dev}"),
                        &got,
                        &want,
                        tol(dtype).for_reduction(60),
                    );
                }
                let want = long.reduce(op, &[1], false).unwrap();
                if let Some(got) = on("reduce", dev, ld.reduce(op, &[1], false)) {
                    check(
                        &format!("{op:?} long rows {dtype} on {dev}"),
                        &got,
                        &want,
                        tol(dtype).for_reduction(2000),
                    );
                }
            }
            // Few rows of >= 16 Ki elements take the two-stage split path on the GPU
            // (kernels::reduce::cuda::SplitPlan): rows of 20000, and the whole tensor as one row.
            let few = seq(&[2, 20000]).affine(1e-3, -10.0).unwrap().sin().unwrap().to_dtype(dtype).unwrap();
            let fd = few.to_device(dev).unwrap();
            for op in ops {
                for dims in [&[1isize][..], &[]] {
                    let want = few.reduce(op, dims, false).unwrap();
                    if let Some(got) = on("reduce", dev, fd.reduce(op, dims, false)) {
                        check(
                            &format!("{op:?} split path {dims:?} {dtype} on {dev}"),
                            &got,
                            &want,
                            tol(dtype).for_reduction(40000),
                        );
                    }
                }
            }
            for d in [1isize, 0] {
                let want = few.argmax(d, false).unwrap();
                if let Some(got) = on("argmax", dev, fd.argmax(d, false)) {
                    assert_eq!(
                        got.to_vec::<i64>().unwrap(),
                        want.to_vec::<i64>().unwrap(),
                        "split argmax {dtype}"
                    );
                }
            }
            for d in [0isize, 2] {
                let want = x.argmax(d, false).unwrap();
                if let Some(got) = on("argmax", dev, xd.argmax(d, false)) {
                    assert_eq!(
                        got.to_vec::<i64>().unwrap(),
                        want.to_vec::<i64>().unwrap(),
                        "argmax {dtype} on {dev}"
                    );
                }
                let want = x.argmin(d, true).unwrap();
                if let Some(got) = on("argmin", dev, xd.argmin(d, true)) {
                    assert_eq!(got.shape(), want.shape());
                    assert_eq!(
                        got.to_vec::<i64>().unwrap(),
                        want.to_vec::<i64>().unwrap(),
                        "argmin {dtype} on {dev}"
                    );
                }
            }
            for log in [false, true] {
                for d in [0isize, 1, 2] {
                    let want = if log { x.log_softmax(d) } else { x.softmax(d) }.unwrap();
                    let got = if log { xd.log_softmax(d) } else { xd.softmax(d) };
                    let Some(got) = on("softmax", dev, got) else { continue };
                    assert!(got.is_contiguous());
                    check(&format!("softmax log={log} dim {d} {dtype} on {dev}"), &got, &want, tol(dtype));
                    let dy = seq(x.shape()).affine(0.1, 0.0).unwrap().to_dtype(dtype).unwrap();
                    let f = if log { Tensor::log_softmax_backward } else { Tensor::softmax_backward };
                    let want = f(&want, &dy, d).unwrap();
                    let got = f(&got, &dy.to_device(dev).unwrap(), d).unwrap();
                    check(
                        &format!("softmax backward log={log} dim {d} {dtype} on {dev}"),
                        &got,
                        &want,
                        tol(dtype).for_reduction(5),
                    );
                }
            }
        }
    }
}

#[test]
fn layer_and_group_norm_match_the_cpu_on_every_device() {
    for dev in devices() {
        for dtype in [DType::F32, DType::F64, DType::F16, DType::BF16] {
            let g = |t: &Tensor| t.to_device(dev).unwrap();
            let t = tol(dtype).for_reduction(64);
            // Layer norm over the last dim of a strided [6, 40] view.
            let x = seq(&[40, 6]).to_dtype(dtype).unwrap().t().unwrap();
            let gamma = seq(&[40]).affine(0.1, 1.0).unwrap().to_dtype(dtype).unwrap();
            let beta = seq(&[40]).affine(0.05, 0.0).unwrap().to_dtype(dtype).unwrap();
            let dy = seq(&[6, 40]).affine(0.2, 0.1).unwrap().to_dtype(dtype).unwrap();
            for aff in [false, true] {
                let (ga, be) = if aff { (Some(&gamma), Some(&beta)) } else { (None, None) };
                let want = x.layer_norm(ga, be, 1e-5).unwrap();
                let (gd, bd) = (g(&gamma), g(&beta));
                let (gad, bed) = if aff { (Some(&gd), Some(&bd)) } else { (None, None) };
                let Some(got) = on("layer_norm", dev, g(&x).layer_norm(gad, bed, 1e-5)) else { continue };
                check(&format!("layer_norm y {dtype} aff={aff} on {dev}"), &got.y, &want.y, t);
                check(&format!("layer_norm mean {dtype} on {dev}"), &got.mean, &want.mean, t);
                check(&format!("layer_norm rstd {dtype} on {dev}"), &got.rstd, &want.rstd, t);
                let wg = x.layer_norm_backward(ga, &want, &dy, aff).unwrap();
                let gg = g(&x).layer_norm_backward(gad, &got, &g(&dy), aff).unwrap();
                check(&format!("layer_norm dx {dtype} aff={aff} on {dev}"), &gg.dx, &wg.dx, t);
                assert_eq!(gg.dgamma.is_some(), aff);
                if aff {
                    let tp = tol(dtype).for_reduction(6 * 64);
                    check(
                        &format!("layer_norm dgamma {dtype} on {dev}"),
                        gg.dgamma.as_ref().unwrap(),
                        wg.dgamma.as_ref().unwrap(),
                        tp,
                    );
                    check(
                        &format!("layer_norm dbeta {dtype} on {dev}"),
                        gg.dbeta.as_ref().unwrap(),
                        wg.dbeta.as_ref().unwrap(),
                        tp,
                    );
                }
            }
            // Group norm of [2, 6, 3, 5] in 3 groups.
            let x = seq(&[2, 6, 3, 5]).to_dtype(dtype).unwrap();
            let gamma = seq(&[6]).affine(0.1, 1.0).unwrap().to_dtype(dtype).unwrap();
            let beta = seq(&[6]).to_dtype(dtype).unwrap();
            let dy = seq(&[2, 6, 3, 5]).affine(0.3, 0.0).unwrap().to_dtype(dtype).unwrap();
            let want = x.group_norm(3, Some(&gamma), Some(&beta), 1e-5).unwrap();
            let Some(got) =
                on("group_norm", dev, g(&x).group_norm(3, Some(&g(&gamma)), Some(&g(&beta)), 1e-5))
            else {
                continue;
            };
            check(&format!("group_norm y {dtype} on {dev}"), &got.y, &want.y, t);
            let wg = x.group_norm_backward(3, Some(&gamma), &want, &dy, true).unwrap();
            let gg = g(&x).group_norm_backward(3, Some(&g(&gamma)), &got, &g(&dy), true).unwrap();
            check(&format!("group_norm dx {dtype} on {dev}"), &gg.dx, &wg.dx, t);
            let tp = tol(dtype).for_reduction(60);
            check(
                &format!("group_norm dgamma {dtype} on {dev}"),
                gg.dgamma.as_ref().unwrap(),
                wg.dgamma.as_ref().unwrap(),
                tp,
            );
            check(
                &format!("group_norm dbeta {dtype} on {dev}"),
                gg.dbeta.as_ref().unwrap(),
                wg.dbeta.as_ref().unwrap(),
                tp,
            );
        }
    }
}

#[test]
fn fused_adamw_matches_the_cpu_bit_for_bit_on_every_device() {
    use kernels::optim::{AdamWHyper, AdamWScalars};
    let h = AdamWHyper { lr: 0.02, beta1: 0.9, beta2: 0.99, eps: 1e-8, weight_decay: 0.05 };
    for dev in devices() {
        for dtype in [DType::F32, DType::F64] {
            // Strided views with offsets for every operand (the GPU path copies them contiguous).
            let p = strided_view(dtype);
            let g = strided_view(dtype).sin().unwrap();
            let m = strided_view(dtype).affine(0.01, 0.0).unwrap();
            let v = strided_view(dtype).sqr().unwrap().affine(0.001, 0.0).unwrap();
            for step in [1u64, 7] {
                let s = AdamWScalars::new(&h, step);
                let want = Tensor::adamw_step(&p, &g, &m, &v, &s).unwrap();
                let d = |t: &Tensor| t.to_device(dev).unwrap();
                if let Some(got) =
                    on("adamw_step", dev, Tensor::adamw_step(&d(&p), &d(&g), &d(&m), &d(&v), &s))
                {
                    for (what, a, b) in [
                        ("param", &got.param, &want.param),
                        ("exp_avg", &got.exp_avg, &want.exp_avg),
                        ("exp_avg_sq", &got.exp_avg_sq, &want.exp_avg_sq),
                    ] {
                        assert_eq!(a.device(), dev);
                        assert_eq!(
                            a.to_cpu().unwrap().to_vec_f64(),
                            b.to_vec_f64(),
                            "adamw {what} {dtype} step {step} on {dev}"
                        );
                    }
                }
            }
        }
    }
}
