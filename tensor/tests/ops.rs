//! Tensor-level op dispatch against naive references on strided, broadcast and half-precision inputs.
//! (The kernels' own numerics are property-tested in `kernels`; these tests check the dispatch:
//! layouts, broadcasting, dtype widening and result shapes.)

mod common;
use common::{flat, indices, rnd, seq};
use proptest::prelude::*;
use tensor::{Conv2dOptions, DType, Tensor, Tolerance};

fn close(what: &str, a: &Tensor, b: &[f64], tol: Tolerance) {
    kernels::testing::assert_close(what, &a.to_vec_f64(), b, tol);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn broadcast_binary_on_transposed_inputs(r in 1usize..4, c in 1usize..5, bc in any::<bool>()) {
        // a: [c, r] transposed to [r, c]; b: [c] or [r, 1]
        let a = seq(&[c, r]).transpose(0, 1).unwrap();
        let b = if bc { seq(&[c]).affine(0.5, 3.0).unwrap() } else { seq(&[r, 1]).affine(-1.0, 7.0).unwrap() };
        let av = a.to_vec_f64();
        let bv = b.to_vec_f64();
        let out = a.mul(&b).unwrap().add(&b).unwrap();
        prop_assert_eq!(out.shape(), &[r, c]);
        let want: Vec<f64> = indices(&[r, c]).iter().map(|i| {
            let x = av[flat(&[r, c], i)];
            let y = if bc { bv[i[1]] } else { bv[i[0]] };
            x * y + y
        }).collect();
        close("mul+add", &out, &want, Tolerance::F64);
        let lt = a.lt(&b).unwrap();
        prop_assert_eq!(lt.dtype(), DType::U8);
        let lv = lt.to_vec_f64();
        for (k, i) in indices(&[r, c]).iter().enumerate() {
            let y = if bc { bv[i[1]] } else { bv[i[0]] };
            prop_assert_eq!(lv[k] == 1.0, av[flat(&[r, c], i)] < y);
        }
    }

    #[test]
    fn reductions_over_axis_subsets(shape in prop::collection::vec(1usize..4, 1..4), mask in 0u8..16) {
        let t = seq(&shape).permute(&(0..shape.len()).rev().collect::<Vec<_>>()).unwrap();
        let s = t.shape().to_vec();
        let axes: Vec<isize> = (0..s.len()).filter(|d| mask >> d & 1 == 1).map(|d| d as isize).collect();
        let all: Vec<usize> = if axes.is_empty() { (0..s.len()).collect() } else { axes.iter().map(|&a| a as usize).collect() };
        let vals = t.to_vec_f64();
        let keep: Vec<usize> = (0..s.len()).map(|d| if all.contains(&d) { 1 } else { s[d] }).collect();
        let mut sums = vec![0.0; keep.iter().product()];
        let mut maxs = vec![f64::NEG_INFINITY; sums.len()];
        for (k, i) in indices(&s).iter().enumerate() {
            let o: Vec<usize> = i.iter().enumerate().map(|(d, &x)| if all.contains(&d) { 0 } else { x }).collect();
            sums[flat(&keep, &o)] += vals[k];
            maxs[flat(&keep, &o)] = maxs[flat(&keep, &o)].max(vals[k]);
        }
        let sum = t.sum(&axes, true).unwrap();
        prop_assert_eq!(sum.shape(), &keep[..]);
        close("sum", &sum, &sums, Tolerance::F64);
        close("max", &t.max(&axes, true).unwrap(), &maxs, Tolerance::F64);
        let cnt: usize = all.iter().map(|&d| s[d]).product();
        let means: Vec<f64> = sums.iter().map(|x| x / cnt as f64).collect();
        close("mean", &t.mean(&axes, true).unwrap(), &means, Tolerance::F64);
    }

    #[test]
    fn batched_matmul_with_broadcast_and_transpose(b in 1usize..3, m in 1usize..6, k in 1usize..6, n in 1usize..6) {
        let a = seq(&[b, k, m]).transpose(1, 2).unwrap(); // [b, m, k], strided
        let w = seq(&[n, k]).t().unwrap(); // [k, n] transposed, broadcast over batch
        let out = a.matmul(&w).unwrap();
        prop_assert_eq!(out.shape(), &[b, m, n]);
        let (av, wv) = (a.to_vec_f64(), w.to_vec_f64());
        let mut want = vec![0.0; b * m * n];
        for bi in 0..b { for i in 0..m { for j in 0..n { for p in 0..k {
            want[(bi * m + i) * n + j] += av[(bi * m + i) * k + p] * wv[p * n + j];
        }}}}
        close("matmul", &out, &want, Tolerance::F64.for_reduction(k));
    }
}

#[test]
fn matmul_vectors_and_errors() {
    let a = seq(&[3]);
    let m = seq(&[3, 2]);
    assert_eq!(a.matmul(&m).unwrap().shape(), &[2]);
    assert_eq!(m.t().unwrap().matmul(&a).unwrap().shape(), &[2]);
    assert_eq!(a.matmul(&a).unwrap().shape(), &[] as &[usize]);
    assert!(matches!(m.matmul(&m), Err(tensor::Error::ShapeMismatch { op: "matmul", .. })));
    let f = m.to_dtype(DType::F32).unwrap();
    assert!(matches!(f.matmul(&m), Err(tensor::Error::DTypeMismatch { .. })));
}

#[test]
fn conv2d_matches_direct_loops_on_strided_input() {
    let x = rnd(&[2, 3, 5, 6], 1).permute(&[0, 1, 3, 2]).unwrap(); // [2,3,6,5] non-contiguous
    let w = rnd(&[4, 3, 3, 3], 2);
    let b = rnd(&[4], 3);
    let o = Conv2dOptions { stride: [2, 1], padding: [1, 1], dilation: [1, 1], groups: 1 };
    let y = x.conv2d(&w, Some(&b), &o).unwrap();
    let (xs, xv, wv, bv) = (x.shape().to_vec(), x.to_vec_f64(), w.to_vec_f64(), b.to_vec_f64());
    let (oh, ow) = ((xs[2] + 2 - 3) / 2 + 1, (xs[3] + 2 - 3) + 1);
    assert_eq!(y.shape(), &[2, 4, oh, ow]);
    let mut want = vec![];
    for n in 0..2 {
        for co in 0..4 {
            for i in 0..oh {
                for j in 0..ow {
                    let mut acc = bv[co];
                    for ci in 0..3 {
                        for p in 0..3 {
                            for q in 0..3 {
                                let (yy, xx) = ((i * 2 + p) as isize - 1, (j + q) as isize - 1);
                                if yy >= 0 && xx >= 0 && (yy as usize) < xs[2] && (xx as usize) < xs[3] {
                                    acc += xv[flat(&xs, &[n, ci, yy as usize, xx as usize])]
                                        * wv[((co * 3 + ci) * 3 + p) * 3 + q];
                                }
                            }
                        }
                    }
                    want.push(acc);
                }
            }
        }
    }
    close("conv2d", &y, &want, Tolerance::F32.for_reduction(27));
    let bad = Conv2dOptions { groups: 2, ..o };
    assert!(matches!(x.conv2d(&w, None, &bad), Err(tensor::Error::InvalidArgument { op: "conv2d", .. })));
}

#[test]
fn attention_matches_naive_with_mask() {
    let (b, h, lq, lk, d) = (2, 2, 5, 7, 3);
    let q = rnd(&[b, h, lq, d], 4);
    let k = rnd(&[b, h, lk, d], 5);
    let v = rnd(&[b, h, lk, d], 6);
    let mask =
        Tensor::from_vec((0..b * lk).map(|i| u8::from(i % 3 != 1)).collect::<Vec<u8>>(), &[b, lk]).unwrap();
    let scale = 1.0 / (d as f64).sqrt();
    let o = Tensor::attention(&q, &k, &v, Some(&mask), scale).unwrap();
    let (qv, kv, vv, mv) = (q.to_vec_f64(), k.to_vec_f64(), v.to_vec_f64(), mask.to_vec_f64());
    let mut want = vec![];
    for bi in 0..b {
        for hi in 0..h {
            for i in 0..lq {
                let base_q = ((bi * h + hi) * lq + i) * d;
                let s: Vec<f64> = (0..lk)
                    .map(|j| {
                        if mv[bi * lk + j] == 0.0 {
                            return f64::NEG_INFINITY;
                        }
                        let base_k = ((bi * h + hi) * lk + j) * d;
                        scale * (0..d).map(|c| qv[base_q + c] * kv[base_k + c]).sum::<f64>()
                    })
                    .collect();
                let mx = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let z: f64 = s.iter().map(|x| (x - mx).exp()).sum();
                for c in 0..d {
                    want.push(
                        (0..lk)
                            .map(|j| (s[j] - mx).exp() / z * vv[((bi * h + hi) * lk + j) * d + c])
                            .sum::<f64>(),
                    );
                }
            }
        }
    }
    close("attention", &o.out, &want, Tolerance::F32.for_reduction(lk));
    assert_eq!(o.lse.shape(), &[b, h, lq]);
    let g = Tensor::attention_backward(&q, &k, &v, Some(&mask), scale, &o, &o.out.ones_like()).unwrap();
    assert_eq!(g.dk.shape(), k.shape());
    let bad_mask = Tensor::zeros(&[b, lk + 1], DType::U8);
    assert!(Tensor::attention(&q, &k, &v, Some(&bad_mask), scale).is_err());
}

#[test]
fn norms_softmax_and_half_precision() {
    let x = rnd(&[2, 4, 3, 3], 7);
    let g = rnd(&[4], 8);
    let b = rnd(&[4], 9);
    let o = x.group_norm(2, Some(&g), Some(&b), 1e-5).unwrap();
    // reference: normalise each (n, group) block
    let xv = x.to_vec_f64();
    let (gv, bv) = (g.to_vec_f64(), b.to_vec_f64());
    let mut want = vec![0.0; xv.len()];
    for n in 0..2 {
        for grp in 0..2 {
            let idx: Vec<usize> =
                (0..2).flat_map(|c| (0..9).map(move |s| (n * 4 + grp * 2 + c) * 9 + s)).collect();
            let m = idx.iter().map(|&i| xv[i]).sum::<f64>() / 18.0;
            let var = idx.iter().map(|&i| (xv[i] - m).powi(2)).sum::<f64>() / 18.0;
            for &i in &idx {
                let c = (i / 9) % 4;
                want[i] = (xv[i] - m) / (var + 1e-5).sqrt() * gv[c] + bv[c];
            }
        }
    }
    close("group_norm", &o.y, &want, Tolerance::new(1e-4, 1e-5));
    let grads = x.group_norm_backward(2, Some(&g), &o, &o.y.ones_like(), true).unwrap();
    assert_eq!(grads.dgamma.unwrap().shape(), &[4]);

    let sm = x.softmax(1).unwrap();
    let sums = sm.sum(&[1], false).unwrap();
    close("softmax sums to 1", &sums, &[1.0; 18], Tolerance::new(1e-6, 1e-6));

    // f16 and bf16 are computed in f32 and rounded back
    for dt in [DType::F16, DType::BF16] {
        let xh = x.to_dtype(dt).unwrap();
        let yh = xh.silu().unwrap();
        assert_eq!(yh.dtype(), dt);
        let want: Vec<f64> = xh.to_vec_f64().iter().map(|&v| v / (1.0 + (-v).exp())).collect();
        close("half silu", &yh, &want, if dt == DType::F16 { Tolerance::F16 } else { Tolerance::BF16 });
        assert_eq!(xh.layer_norm(None, None, 1e-5).unwrap().y.dtype(), dt);
    }
}

#[test]
fn cat_index_select_where_upsample_pool() {
    let a = seq(&[2, 3]);
    let b = seq(&[2, 1]).affine(1.0, 100.0).unwrap();
    let c = Tensor::cat(&[&a, &b, &a.narrow(1, 1, 2).unwrap()], 1).unwrap();
    assert_eq!(c.shape(), &[2, 6]);
    let (av, bv, cv) = (a.to_vec_f64(), b.to_vec_f64(), c.to_vec_f64());
    assert_eq!(cv[0..3], av[0..3]);
    assert_eq!(cv[3], bv[0]);
    assert_eq!(cv[4..6], av[1..3]);
    assert!(Tensor::cat(&[&a, &seq(&[3, 1])], 1).is_err());

    let idx = Tensor::from_vec(vec![2i64, 0, 2, -1], &[4]).unwrap();
    let s = a.index_select(1, &idx).unwrap();
    assert_eq!(s.shape(), &[2, 4]);
    let sv = s.to_vec_f64();
    assert_eq!(sv[0], av[2]);
    assert_eq!(sv[1], av[0]);
    assert_eq!(sv[3], av[2]);
    let back = Tensor::index_select_backward(&s.ones_like(), 1, &idx, &[2, 3]).unwrap();
    assert_eq!(back.to_vec_f64(), vec![1.0, 0.0, 3.0, 1.0, 0.0, 3.0]);
    let oob = Tensor::from_vec(vec![3i64], &[1]).unwrap();
    assert!(matches!(
        a.index_select(1, &oob),
        Err(tensor::Error::IndexOutOfRange { index: 3, dim: 1, size: 3, .. })
    ));

    let mask = a.gt(&Tensor::full(&[], 0.0, DType::F64)).unwrap();
    let m = a.masked_fill(&mask, -1.0).unwrap();
    for (x, y) in av.iter().zip(m.to_vec_f64()) {
        assert_eq!(y, if *x > 0.0 { -1.0 } else { *x });
    }

    let img = seq(&[1, 2, 3, 4]);
    let up = img.upsample_nearest2d(6, 8).unwrap();
    assert_eq!(up.get(&[0, 1, 5, 7]).unwrap(), img.get(&[0, 1, 2, 3]).unwrap());
    let pooled = up.avg_pool2d([2, 2], [2, 2], [0, 0], true).unwrap();
    close("pool(upsample(x)) = x", &pooled, &img.to_vec_f64(), Tolerance::F64);
    let r1 = Tensor::randn(&[1000], 0.0, 1.0, 42, 0, DType::F32).unwrap();
    let r2 = Tensor::randn(&[1000], 0.0, 1.0, 42, 0, DType::F32).unwrap();
    assert_eq!(r1.to_vec_f64(), r2.to_vec_f64());
}

#[test]
fn dtype_conversion_and_display() {
    let t = Tensor::from_vec(vec![1.5f32, -2.25, 3.0, 1e-6], &[2, 2]).unwrap();
    assert_eq!(
        t.to_dtype(DType::F64).unwrap().to_vec::<f64>().unwrap(),
        vec![1.5, -2.25, 3.0, 1e-6f32 as f64]
    );
    assert_eq!(t.to_dtype(DType::I64).unwrap().to_vec::<i64>().unwrap(), vec![1, -2, 3, 0]);
    assert_eq!(t.to_dtype(DType::BF16).unwrap().to_vec::<f32>().unwrap()[0..3], [1.5, -2.25, 3.0]);
    let s = format!("{t}");
    assert!(s.contains("1.5000") && s.contains("dtype=f32") && s.contains("1.0000e-6"), "{s}");
    let big = Tensor::zeros(&[100, 100], DType::F32);
    let s = format!("{big}");
    assert!(s.contains("...") && s.len() < 2000, "{s}");
    let d = format!("{:?}", t.t().unwrap());
    assert!(d.contains("strides: [1, 2]") && d.contains("contiguous: false"), "{d}");
    assert!(matches!(Tensor::from_vec(vec![1.0f32; 3], &[2, 2]), Err(tensor::Error::ElementCount { .. })));
    if tensor::testing::gpu_devices().is_empty() {
        assert!(matches!(t.to_device(tensor::Device::Cuda(0)), Err(tensor::Error::DeviceUnavailable { .. })));
    }
    assert!(matches!(t.to_dtype(DType::I64).unwrap().exp(), Err(tensor::Error::UnsupportedDType { .. })));
}

#[test]
fn group_norm_silu_matches_the_composed_ops() {
    // The fused CPU op against the tensor ops the ResNet block composes (GN, ·(1 + a), + b, SiLU)
    // and their backward chain; both f32 in different orders: 1e-4 relative / absolute (O(1) values,
    // rstd ≈ 1 for unit-variance inputs).
    let (n, c, groups) = (2, 6, 3);
    let x = rnd(&[n, c, 3, 5], 30);
    let dy = rnd(&[n, c, 3, 5], 35);
    let (g, b) = (rnd(&[c], 31), rnd(&[c], 32));
    let (a, sh) = (rnd(&[n, c, 1, 1], 33), rnd(&[n, c, 1, 1], 34));
    let t = Tolerance::new(1e-4, 1e-4);
    let gn = x.group_norm(groups, Some(&g), Some(&b), 1e-5).unwrap();
    let a1 = a.add_scalar(1.0).unwrap();
    let z = gn.y.mul(&a1).unwrap().add(&sh).unwrap();
    let fused = x.group_norm_silu(groups, Some(&g), Some(&b), Some((&a, &sh)), 1e-5).unwrap();
    close("fused y", &fused.y, &z.silu().unwrap().to_vec_f64(), t);
    close("fused mean", &fused.mean, &gn.mean.to_vec_f64(), t);
    let dz = z.unary_backward(tensor::UnaryOp::Silu, &dy).unwrap();
    let dh = dz.mul(&a1).unwrap();
    let want = x.group_norm_backward(groups, Some(&g), &gn, &dh, true).unwrap();
    let got =
        x.group_norm_silu_backward(groups, Some(&g), Some(&b), Some((&a, &sh)), &fused, &dy, true).unwrap();
    close("fused dx", &got.dx, &want.dx.to_vec_f64(), t);
    close("fused dgamma", got.dgamma.as_ref().unwrap(), &want.dgamma.unwrap().to_vec_f64(), t);
    close("fused dbeta", got.dbeta.as_ref().unwrap(), &want.dbeta.unwrap().to_vec_f64(), t);
    let (dscale, dshift) = (got.dscale.unwrap(), got.dshift.unwrap());
    assert_eq!(dscale.shape(), &[n, c, 1, 1]);
    close("fused dscale", &dscale, &dz.mul(&gn.y).unwrap().sum(&[2, 3], true).unwrap().to_vec_f64(), t);
    close("fused dshift", &dshift, &dz.sum(&[2, 3], true).unwrap().to_vec_f64(), t);

    // without modulation: GN then SiLU; no dscale/dshift; no dgamma/dbeta unless affine
    let plain = x.group_norm_silu(groups, Some(&g), Some(&b), None, 1e-5).unwrap();
    close("gn+silu y", &plain.y, &gn.y.silu().unwrap().to_vec_f64(), t);
    let pg = x.group_norm_silu_backward(groups, Some(&g), Some(&b), None, &plain, &dy, false).unwrap();
    assert!(pg.dscale.is_none() && pg.dshift.is_none() && pg.dgamma.is_none());

    // half precision is computed in f32 and rounded back; [N, C] modulation works too
    let xh = x.to_dtype(DType::BF16).unwrap();
    let a2 = a.reshape(&[n, c]).unwrap().to_dtype(DType::BF16).unwrap();
    let s2 = sh.reshape(&[n, c]).unwrap().to_dtype(DType::BF16).unwrap();
    assert_eq!(
        xh.group_norm_silu(groups, None, None, Some((&a2, &s2)), 1e-5).unwrap().y.dtype(),
        DType::BF16
    );

    // errors: modulation per channel only, groups not dividing C
    let bad = rnd(&[c], 36);
    assert!(x.group_norm_silu(groups, None, None, Some((&bad, &bad)), 1e-5).is_err());
    assert!(x.group_norm_silu(4, None, None, None, 1e-5).is_err());
}
