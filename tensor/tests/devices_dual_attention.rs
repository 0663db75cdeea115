//! Dual attention (`Tensor::dual_attention` and its backward) run once per compiled-in device
//! (`tensor::testing::devices()`), each GPU result compared with the CPU result on the same inputs;
//! on the CPU the op is also compared with two single attentions summed. Without a GPU only the CPU
//! part runs; a GPU build without the kernels skips with the reason.
//!
//! Tolerances (GPU vs CPU): f32 `Tolerance::F32` grown by √n for the longest reduction (both sides
//! accumulate in f32 in different orders; CUDA `expf` vs the CPU's polynomial exp); f16/bf16
//! `Tolerance::F16`/`BF16` likewise (both round f32 results to the half type; the GPU's
//! `out = round(round(out1) + out2)` adds at most one more half-ulp). CPU vs two single attentions:
//! 1e-12 (f64: the same flash kernels, only the final sum differs).

mod common;
use common::on_device as on;
use common::seq;
use tensor::testing::devices;
use tensor::{DType, Error, Tensor, Tolerance};

fn tol(dtype: DType) -> Tolerance {
    match dtype {
        DType::F64 => Tolerance::new(1e-12, 1e-13),
        DType::F32 => Tolerance::F32,
        DType::F16 => Tolerance::F16,
        _ => Tolerance::BF16,
    }
}

fn check(what: &str, got: &Tensor, want: &Tensor, t: Tolerance) {
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    let g = got.to_cpu().unwrap().to_dtype(DType::F64).unwrap();
    let w = want.to_dtype(DType::F64).unwrap();
    kernels::testing::assert_close(what, &g.to_vec_f64(), &w.to_vec_f64(), t);
}

/// [B, H, L, D] with values in about ±1·amp, as a non-contiguous view (permuted from [B, L, H, D]).
fn heads(b: usize, h: usize, l: usize, d: usize, amp: f64, shift: f64) -> Tensor {
    seq(&[b, l, h, d]).affine(amp / 5.0, shift).unwrap().permute(&[0, 2, 1, 3]).unwrap()
}

#[test]
fn dual_attention_matches_the_cpu_on_every_device() {
    // B 2, H 2, Lq 19, L1 19 (self), L2 7 (cross, batch 1 partly masked, batch 0 fully masked), D 16.
    let (b, h, lq, l2, d) = (2, 2, 19, 7, 16);
    let q0 = heads(b, h, lq, d, 1.5, 0.1);
    let k10 = heads(b, h, lq, d, 1.0, -0.2);
    let v10 = heads(b, h, lq, d, 1.0, 0.3);
    let k20 = heads(b, h, l2, d, 1.0, 0.05);
    let v20 = heads(b, h, l2, d, 1.0, -0.1);
    let m2 = Tensor::from_vec(vec![0u8, 0, 0, 0, 0, 0, 0, 1, 0, 1, 1, 1, 0, 1], &[b, l2]).unwrap();
    let dy0 = seq(&[b, h, lq, d]).affine(0.1, 0.0).unwrap();
    let scale = 0.25;
    for dev in devices() {
        for dtype in [DType::F32, DType::F64, DType::F16, DType::BF16] {
            let c = |t: &Tensor| t.to_dtype(dtype).unwrap();
            let (q, k1, v1, k2, v2, dy) = (c(&q0), c(&k10), c(&v10), c(&k20), c(&v20), c(&dy0));
            let want = Tensor::dual_attention(&q, &k1, &v1, None, &k2, &v2, Some(&m2), scale).unwrap();
            let wg =
                Tensor::dual_attention_backward(&q, &k1, &v1, None, &k2, &v2, Some(&m2), scale, &want, &dy)
                    .unwrap();
            if dev.is_cpu() && dtype == DType::F64 {
                // Two single attentions, summed.
                let a = Tensor::attention(&q, &k1, &v1, None, scale).unwrap();
                let bb = Tensor::attention(&q, &k2, &v2, Some(&m2), scale).unwrap();
                let t = tol(dtype);
                check("out vs two attentions", &want.out, &a.out.add(&bb.out).unwrap(), t);
                let ga = Tensor::attention_backward(&q, &k1, &v1, None, scale, &a, &dy).unwrap();
                let gb = Tensor::attention_backward(&q, &k2, &v2, Some(&m2), scale, &bb, &dy).unwrap();
                check("dq vs two attentions", &wg.dq, &ga.dq.add(&gb.dq).unwrap(), t);
                check("dk1", &wg.dk1, &ga.dk, t);
                check("dv2", &wg.dv2, &gb.dv, t);
                continue;
            }
            if dev.is_cpu() {
                continue;
            }
            let g = |t: &Tensor| t.to_device(dev).unwrap();
            let md = g(&m2);
            let what = format!("dual_attention {dtype} on {dev}");
            let Some(got) = on(
                &what,
                dev,
                Tensor::dual_attention(&g(&q), &g(&k1), &g(&v1), None, &g(&k2), &g(&v2), Some(&md), scale),
            ) else {
                continue;
            };
            let t = tol(dtype).for_reduction(lq);
            for (n, x, y) in [
                ("out", &got.out, &want.out),
                ("out1", &got.out1, &want.out1),
                ("out2", &got.out2, &want.out2),
            ] {
                assert_eq!(x.dtype(), dtype, "{what} {n} dtype");
                check(&format!("{what} {n}"), x, y, t);
            }
            check(&format!("{what} lse1"), &got.lse1, &want.lse1, t);
            check(&format!("{what} lse2"), &got.lse2, &want.lse2, t);
            let gg = Tensor::dual_attention_backward(
                &g(&q),
                &g(&k1),
                &g(&v1),
                None,
                &g(&k2),
                &g(&v2),
                Some(&md),
                scale,
                &got,
                &g(&dy),
            )
            .unwrap();
            for (n, x, y) in [
                ("dq", &gg.dq, &wg.dq),
                ("dk1", &gg.dk1, &wg.dk1),
                ("dv1", &gg.dv1, &wg.dv1),
                ("dk2", &gg.dk2, &wg.dk2),
                ("dv2", &gg.dv2, &wg.dv2),
            ] {
                assert_eq!(x.device(), dev);
                check(&format!("{what} {n}"), x, y, t);
            }
        }
    }
}

#[test]
fn dual_attention_rejects_bad_inputs_with_typed_errors() {
    let q = seq(&[1, 2, 3, 4]);
    let k = seq(&[1, 2, 5, 4]);
    let v = seq(&[1, 2, 5, 3]);
    let bad_v = seq(&[1, 2, 5, 2]); // Dv differs between the branches
    let r = Tensor::dual_attention(&q, &k, &v, None, &k, &bad_v, None, 0.5);
    assert!(matches!(r, Err(Error::ShapeMismatch { .. })), "{:?}", r.map(|o| o.out));
    let m = Tensor::from_vec(vec![1u8; 4], &[1, 4]).unwrap(); // wrong length
    let r = Tensor::dual_attention(&q, &k, &v, None, &k, &v, Some(&m), 0.5);
    assert!(matches!(r, Err(Error::ShapeMismatch { .. })), "{:?}", r.map(|o| o.out));
    let r = Tensor::dual_attention(&q, &k, &v, None, &k.reshape(&[2, 5, 4]).unwrap(), &v, None, 0.5);
    assert!(matches!(r, Err(Error::RankMismatch { .. })), "{:?}", r.map(|o| o.out));
}
