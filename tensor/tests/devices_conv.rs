//! `conv2d` and its three gradients on every compiled-in device (`tensor::testing::devices()`: the
//! CPU, plus `cuda:0` when the build has `cuda` and a GPU opens), compared with the CPU result of the
//! same op on the same inputs, for f32, f64, f16 and bf16, over 3×3 pad 1, 1×1, stride 2, groups,
//! a dilated non-square kernel and a long weight-gradient reduction (split-K), with a
//! non-contiguous input.
//!
//! Tolerances (GPU vs CPU): f32 `Tolerance::F32` grown with the reduction length K (both accumulate
//! in f32, in different orders); f64 `Tolerance::F64` grown likewise; f16/bf16: both accumulate in
//! f32 and round once, so they may differ by one unit in the last place of the half type:
//! `Tolerance::F16` / `Tolerance::BF16`.

mod common;
use common::device_check as check;
use common::rnd;
use tensor::testing::devices;
use tensor::{Conv2dOptions, DType, Tensor, Tolerance};

fn tol(dtype: DType, k: usize) -> Tolerance {
    match dtype {
        DType::F64 => Tolerance::F64.for_reduction(k),
        DType::F32 => Tolerance::F32.for_reduction(k),
        DType::F16 => Tolerance::F16,
        _ => Tolerance::BF16,
    }
}

struct Case {
    name: &'static str,
    x: [usize; 4],
    w: [usize; 4],
    o: Conv2dOptions,
}

fn cases() -> Vec<Case> {
    let o = |stride, padding, dilation, groups| Conv2dOptions { stride, padding, dilation, groups };
    vec![
        Case { name: "3x3 pad 1", x: [2, 5, 6, 7], w: [7, 5, 3, 3], o: o([1, 1], [1, 1], [1, 1], 1) },
        Case { name: "1x1", x: [2, 20, 5, 7], w: [12, 20, 1, 1], o: o([1, 1], [0, 0], [1, 1], 1) },
        Case { name: "3x3 stride 2", x: [2, 4, 7, 9], w: [6, 4, 3, 3], o: o([2, 2], [1, 1], [1, 1], 1) },
        Case { name: "groups 2", x: [2, 8, 5, 7], w: [6, 4, 3, 3], o: o([1, 1], [1, 1], [1, 1], 2) },
        Case { name: "3x2 dilation 2", x: [1, 6, 7, 6], w: [6, 2, 3, 2], o: o([2, 1], [2, 1], [2, 2], 3) },
        // n·oh·ow = 544 ≥ 2 · 256: the weight gradient takes the split-K path on the GPU.
        Case { name: "split-K wgrad", x: [2, 4, 16, 17], w: [5, 4, 3, 3], o: o([1, 1], [1, 1], [1, 1], 1) },
    ]
}

#[test]
fn conv2d_and_gradients_match_the_cpu_on_every_device() {
    for dev in devices() {
        for dtype in [DType::F32, DType::F64, DType::F16, DType::BF16] {
            for (i, c) in cases().into_iter().enumerate() {
                let seed = 10 * i as u64;
                // A non-contiguous input: the transpose of a [N, C, W, H] tensor.
                let x = rnd(&[c.x[0], c.x[1], c.x[3], c.x[2]], seed)
                    .transpose(2, 3)
                    .unwrap()
                    .to_dtype(dtype)
                    .unwrap();
                let w = rnd(&c.w, seed + 1).to_dtype(dtype).unwrap();
                let b = rnd(&[c.w[0]], seed + 2).to_dtype(dtype).unwrap();
                let y = x.conv2d(&w, Some(&b), &c.o).unwrap();
                let dy = rnd(y.shape(), seed + 3).to_dtype(dtype).unwrap();
                let (xd, wd, bd, dyd) = (
                    x.to_device(dev).unwrap(),
                    w.to_device(dev).unwrap(),
                    b.to_device(dev).unwrap(),
                    dy.to_device(dev).unwrap(),
                );
                let what = |op: &str| format!("{op} {} {dtype} on {dev}", c.name);
                let k_fwd = c.w[1] * c.w[2] * c.w[3];
                let got = xd.conv2d(&wd, Some(&bd), &c.o).unwrap();
                assert_eq!(got.device(), dev);
                check(&what("conv2d"), &got, &y, tol(dtype, k_fwd));
                let got = xd.conv2d(&wd, None, &c.o).unwrap();
                check(&what("conv2d (no bias)"), &got, &x.conv2d(&w, None, &c.o).unwrap(), tol(dtype, k_fwd));
                let want = Tensor::conv2d_backward_input(x.shape(), &w, &dy, &c.o).unwrap();
                let got = Tensor::conv2d_backward_input(x.shape(), &wd, &dyd, &c.o).unwrap();
                check(&what("conv2d_backward_input"), &got, &want, tol(dtype, c.w[0] * c.w[2] * c.w[3]));
                let want = Tensor::conv2d_backward_weight(&x, w.shape(), &dy, &c.o).unwrap();
                let got = Tensor::conv2d_backward_weight(&xd, w.shape(), &dyd, &c.o).unwrap();
                check(&what("conv2d_backward_weight"), &got, &want, tol(dtype, dy.numel() / c.w[0]));
                let want = Tensor::conv2d_backward_bias(&dy).unwrap();
                let got = Tensor::conv2d_backward_bias(&dyd).unwrap();
                check(&what("conv2d_backward_bias"), &got, &want, tol(dtype, dy.numel() / c.w[0]));
            }
        }
    }
}

/// Shape errors are typed on every device (checked before any kernel is chosen).
#[test]
fn conv2d_shape_errors_on_every_device() {
    for dev in devices() {
        let x = rnd(&[1, 4, 5, 5], 1).to_device(dev).unwrap();
        let w = rnd(&[6, 3, 3, 3], 2).to_device(dev).unwrap();
        assert!(x.conv2d(&w, None, &Conv2dOptions::default()).is_err(), "channel mismatch on {dev}");
        let w = rnd(&[6, 4, 7, 7], 2).to_device(dev).unwrap();
        assert!(x.conv2d(&w, None, &Conv2dOptions::default()).is_err(), "kernel larger than input on {dev}");
    }
}
