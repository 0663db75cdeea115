//! Attention on every compiled device (`tensor::testing::devices()`), compared with the CPU's flash
//! kernel on the same inputs: forward (`out`, `lse`) and the three gradients, self-attention at
//! lengths 17 and 65 (partial 64-row / 32-key tiles), cross-attention (`Lq ≠ Lk`, `Dv ≠ D`), a key
//! mask with one fully masked batch element, and strided (permuted) inputs. Without a GPU only the
//! CPU runs (and the checks are trivially equal); on a GPU these are the runtime's proof.
//!
//! Tolerances (GPU vs CPU):
//! - f32: both accumulate in f32 in different orders (64-query / 32-key tiles against the CPU's
//!   blocks), so `Tolerance::F32` widened for a reduction over `Lk` terms.
//! - f16 / bf16 forward: the tensor-core kernel rounds `P` to the input dtype before `P·V` (the CPU
//!   keeps P in f32), so `out` may differ by a few units of the half type's last place: the half
//!   tolerance widened for `Lk` terms; `lse` is f32 on both (statistics in f32): `Tolerance::F32`
//!   widened likewise.
//! - gradients: both devices get the CPU's saved `out`/`lse` (the backward is compared on its own,
//!   f32 math from 16-bit loads on both), so the tolerance is that of one rounding of an f32 sum of
//!   `Lq`/`Lk` terms. The GPU backward from its own forward is also checked, a little looser.

mod common;
use common::device_check as check;
use common::rnd;
use tensor::testing::devices;
use tensor::{AttentionOutput, DType, Device, Error, Tensor, Tolerance};

fn tol(dtype: DType, terms: usize) -> Tolerance {
    match dtype {
        DType::F32 => Tolerance::F32.for_reduction(terms),
        DType::F16 => Tolerance::F16.for_reduction(terms),
        DType::BF16 => Tolerance::BF16.for_reduction(terms),
        _ => Tolerance::new(1e-12, 1e-13),
    }
}

struct Case {
    name: &'static str,
    /// batch, heads, lq, lk, d, dv
    shape: [usize; 6],
    mask: Option<Vec<u8>>,
    /// q given as a permuted view of a [B, Lq, H, D] tensor.
    strided: bool,
}

fn cases() -> Vec<Case> {
    let mut mask = vec![1u8; 2 * 65];
    for (j, m) in mask.iter_mut().enumerate().take(65) {
        *m = u8::from(j % 3 != 1); // batch 0: every third key masked
    }
    for m in &mut mask[65..] {
        *m = 0; // batch 1: every key masked (out = 0, lse = -inf, zero gradients)
    }
    vec![
        Case { name: "self L17", shape: [2, 2, 17, 17, 32, 32], mask: None, strided: false },
        Case { name: "self L65 strided", shape: [2, 2, 65, 65, 64, 64], mask: None, strided: true },
        Case {
            name: "cross 17x65 dv48 masked",
            shape: [2, 2, 17, 65, 32, 48],
            mask: Some(mask),
            strided: false,
        },
    ]
}

struct Inputs {
    q: Tensor,
    k: Tensor,
    v: Tensor,
    dout: Tensor,
    mask: Option<Tensor>,
    scale: f64,
}

fn inputs(c: &Case, dtype: DType, seed: u64) -> Inputs {
    let [b, h, lq, lk, d, dv] = c.shape;
    let q = if c.strided {
        rnd(&[b, lq, h, d], seed).permute(&[0, 2, 1, 3]).unwrap()
    } else {
        rnd(&[b, h, lq, d], seed)
    };
    let cast = |t: Tensor| t.to_dtype(dtype).unwrap();
    Inputs {
        q: cast(q),
        k: cast(rnd(&[b, h, lk, d], seed + 1)),
        v: cast(rnd(&[b, h, lk, dv], seed + 2)),
        dout: cast(rnd(&[b, h, lq, dv], seed + 3)),
        mask: c.mask.clone().map(|m| Tensor::from_vec(m, &[b, lk]).unwrap()),
        scale: 1.0 / (d as f64).sqrt(),
    }
}

/// The op's result, or `None` (printing why) when this GPU build lacks the kernels.
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
fn attention_forward_and_gradients_match_the_cpu_on_every_device() {
    for dev in devices() {
        let g = |t: &Tensor| t.to_device(dev).unwrap();
        for dtype in [DType::F32, DType::BF16, DType::F16] {
            for (i, c) in cases().iter().enumerate() {
                let x = inputs(c, dtype, 100 + 10 * i as u64);
                let [_, _, lq, lk, _, _] = c.shape;
                let what = format!("{} {dtype} on {dev}", c.name);
                let m = x.mask.as_ref();
                let want = Tensor::attention(&x.q, &x.k, &x.v, m, x.scale).unwrap();
                assert_eq!(want.lse.dtype(), dtype.compute_dtype(), "lse is in the compute dtype");
                let md = m.map(g);
                let Some(got) =
                    on(&what, dev, Tensor::attention(&g(&x.q), &g(&x.k), &g(&x.v), md.as_ref(), x.scale))
                else {
                    continue;
                };
                check(&format!("{what} out"), &got.out, &want.out, tol(dtype, lk));
                check(&format!("{what} lse"), &got.lse, &want.lse, Tolerance::F32.for_reduction(lk));

                // Backward from the CPU's saved forward, on both devices.
                let wg = Tensor::attention_backward(&x.q, &x.k, &x.v, m, x.scale, &want, &x.dout).unwrap();
                let saved = AttentionOutput { out: g(&want.out), lse: g(&want.lse) };
                let gg = Tensor::attention_backward(
                    &g(&x.q),
                    &g(&x.k),
                    &g(&x.v),
                    md.as_ref(),
                    x.scale,
                    &saved,
                    &g(&x.dout),
                )
                .unwrap();
                check(&format!("{what} dq"), &gg.dq, &wg.dq, tol(dtype, lk));
                check(&format!("{what} dk"), &gg.dk, &wg.dk, tol(dtype, lq));
                check(&format!("{what} dv"), &gg.dv, &wg.dv, tol(dtype, lq));

                // And from the device's own forward (its out differs by the P rounding for 16-bit).
                let own = Tensor::attention_backward(
                    &g(&x.q),
                    &g(&x.k),
                    &g(&x.v),
                    md.as_ref(),
                    x.scale,
                    &got,
                    &g(&x.dout),
                )
                .unwrap();
                let loose = tol(dtype, 4 * lq.max(lk));
                check(&format!("{what} dq (own fwd)"), &own.dq, &wg.dq, loose);
                check(&format!("{what} dk (own fwd)"), &own.dk, &wg.dk, loose);
                check(&format!("{what} dv (own fwd)"), &own.dv, &wg.dv, loose);
                if c.mask.is_some() {
                    // Batch 1 is fully masked: zero output and gradients, lse = -inf.
                    let o = got.out.narrow(0, 1, 1).unwrap().to_cpu().unwrap().to_vec_f64();
                    assert!(o.iter().all(|&v| v == 0.0), "{what}: masked out");
                    let l = got.lse.narrow(0, 1, 1).unwrap().to_cpu().unwrap().to_vec_f64();
                    assert!(l.iter().all(|&v| v == f64::NEG_INFINITY), "{what}: masked lse");
                    let dk = gg.dk.narrow(0, 1, 1).unwrap().to_cpu().unwrap().to_vec_f64();
                    assert!(dk.iter().all(|&v| v == 0.0), "{what}: masked dk");
                }
            }
        }
    }
}

#[test]
fn gpu_attention_refuses_f64_and_wide_heads_with_typed_errors() {
    for dev in devices().into_iter().filter(|d| !d.is_cpu()) {
        let q = rnd(&[1, 1, 4, 8], 1).to_dtype(DType::F64).unwrap().to_device(dev).unwrap();
        let r = Tensor::attention(&q, &q, &q, None, 0.5);
        assert!(matches!(r, Err(Error::NotImplementedOnDevice { op: "attention", .. })), "{:?}", r.err());
        let q = rnd(&[1, 1, 4, 160], 2).to_device(dev).unwrap();
        match Tensor::attention(&q, &q, &q, None, 0.5) {
            Err(e @ Error::NotImplementedOnDeviceFor { op: "attention", .. }) => {
                let msg = e.to_string();
                assert!(msg.contains("d = 160") && msg.contains("128"), "{msg}");
            }
            r => panic!("expected NotImplementedOnDeviceFor, got {:?}", r.err()),
        }
        // A mask on another device is a typed error.
        let q = rnd(&[1, 1, 4, 8], 3).to_device(dev).unwrap();
        let m = Tensor::from_vec(vec![1u8; 4], &[1, 4]).unwrap();
        let r = Tensor::attention(&q, &q, &q, Some(&m), 0.5);
        assert!(matches!(r, Err(Error::DeviceMismatch { .. })), "{:?}", r.err());
    }
}

/// The CPU keeps the public contract the GPU has: `lse` in the compute dtype, and a backward that
/// accepts an `lse` rounded to the input dtype too.
#[test]
fn attention_lse_is_in_the_compute_dtype() {
    for dtype in [DType::F32, DType::F64, DType::F16, DType::BF16] {
        let q = rnd(&[1, 2, 5, 8], 7).to_dtype(dtype).unwrap();
        let o = Tensor::attention(&q, &q, &q, None, 0.3).unwrap();
        assert_eq!(o.out.dtype(), dtype);
        assert_eq!(o.lse.dtype(), dtype.compute_dtype());
        let rounded = AttentionOutput { out: o.out.clone(), lse: o.lse.to_dtype(dtype).unwrap() };
        let g = Tensor::attention_backward(&q, &q, &q, None, 0.3, &rounded, &q).unwrap();
        assert_eq!(g.dq.dtype(), dtype);
    }
}
