//! The fused group norm + modulation + SiLU (`Tensor::group_norm_silu` and its backward) on every
//! compiled device, compared with the CPU's fused kernel on the same inputs: with and without
//! affine parameters and scale/shift (`[N, C]` and `[N, C, 1, 1]` shapes), a strided input, every
//! dtype. Without a GPU only the CPU runs.
//!
//! Tolerances (GPU vs CPU): statistics in f64 on both, the output computed in the compute type
//! (f32 for 16-bit storage) from folded per-channel factors on both, so one rounding apart plus the
//! f32 `expf` difference: `Tolerance::{F32, F16, BF16}` for `y`; the gradients are sums over a
//! group (`C/G·H·W` terms) or over the batch, so widened for that many terms; f64 1e-12.

mod common;
use common::device_check as check;
use common::on_device as on;
use common::seq;
use tensor::testing::devices;
use tensor::{DType, Error, Tensor, Tolerance};

fn tol(dtype: DType) -> Tolerance {
    match dtype {
        DType::F64 => Tolerance::new(1e-12, 1e-13),
        DType::F32 => Tolerance::F32,
        DType::F16 => Tolerance::F16,
        DType::BF16 => Tolerance::BF16,
        _ => Tolerance::new(0.0, 0.0),
    }
}

#[test]
fn group_norm_silu_matches_the_cpu_on_every_device() {
    let (n, c, h, w, groups) = (2, 8, 5, 3, 4);
    for dev in devices() {
        let g = |t: &Tensor| t.to_device(dev).unwrap();
        for dtype in [DType::F32, DType::F64, DType::F16, DType::BF16] {
            let cast = |t: Tensor| t.to_dtype(dtype).unwrap();
            // A strided [n, c, h, w] view: a permuted [n, h, w, c] tensor.
            let x = cast(seq(&[n, h, w, c]).affine(0.3, 0.5).unwrap()).permute(&[0, 3, 1, 2]).unwrap();
            let gamma = cast(seq(&[c]).affine(0.1, 1.0).unwrap());
            let beta = cast(seq(&[c]).affine(0.05, 0.1).unwrap());
            let scale = cast(seq(&[n, c]).affine(0.04, 0.0).unwrap());
            let shift = cast(seq(&[n, c, 1, 1]).affine(0.06, 0.0).unwrap());
            let dy = cast(seq(&[n, c, h, w]).affine(0.2, 0.1).unwrap());
            for (aff, modul) in [(false, false), (true, false), (false, true), (true, true)] {
                let what = format!("{dtype} aff={aff} mod={modul} on {dev}");
                let (ga, be) = if aff { (Some(&gamma), Some(&beta)) } else { (None, None) };
                let ss = modul.then_some((&scale, &shift));
                let want = x.group_norm_silu(groups, ga, be, ss, 1e-5).unwrap();
                let (gd, bd, sd, hd) = (g(&gamma), g(&beta), g(&scale), g(&shift));
                let (gad, bed) = if aff { (Some(&gd), Some(&bd)) } else { (None, None) };
                let ssd = modul.then_some((&sd, &hd));
                let Some(got) = on(&what, dev, g(&x).group_norm_silu(groups, gad, bed, ssd, 1e-5)) else {
                    continue;
                };
                let t = tol(dtype);
                check(&format!("y {what}"), &got.y, &want.y, t);
                check(&format!("mean {what}"), &got.mean, &want.mean, t.for_reduction(c / groups * h * w));
                check(&format!("rstd {what}"), &got.rstd, &want.rstd, t.for_reduction(c / groups * h * w));
                let wg = x.group_norm_silu_backward(groups, ga, be, ss, &want, &dy, aff).unwrap();
                let gg = g(&x).group_norm_silu_backward(groups, gad, bed, ssd, &got, &g(&dy), aff).unwrap();
                let tg = t.for_reduction(c / groups * h * w);
                check(&format!("dx {what}"), &gg.dx, &wg.dx, tg);
                assert_eq!(gg.dgamma.is_some(), aff, "{what}");
                assert_eq!(gg.dscale.is_some(), modul, "{what}");
                let tp = t.for_reduction(n * h * w);
                for (name, a, b) in [
                    ("dgamma", &gg.dgamma, &wg.dgamma),
                    ("dbeta", &gg.dbeta, &wg.dbeta),
                    ("dscale", &gg.dscale, &wg.dscale),
                    ("dshift", &gg.dshift, &wg.dshift),
                ] {
                    if let (Some(a), Some(b)) = (a, b) {
                        check(&format!("{name} {what}"), a, b, tp);
                    }
                }
                if modul {
                    assert_eq!(gg.dscale.as_ref().unwrap().shape(), &[n, c]);
                    assert_eq!(gg.dshift.as_ref().unwrap().shape(), &[n, c, 1, 1]);
                }
            }
        }
    }
}

#[test]
fn group_norm_silu_rejects_bad_groups_and_modulation_shapes_on_every_device() {
    for dev in devices() {
        let x = seq(&[2, 6, 3]).to_device(dev).unwrap();
        let r = x.group_norm_silu(4, None, None, None, 1e-5);
        assert!(matches!(r, Err(Error::InvalidArgument { .. })), "{dev}: {:?}", r.err());
        let bad = seq(&[2, 5]).to_device(dev).unwrap();
        let r = x.group_norm_silu(3, None, None, Some((&bad, &bad)), 1e-5);
        assert!(matches!(r, Err(Error::ShapeMismatch { .. })), "{dev}: {:?}", r.err());
    }
}
