//! bf16 autocast: which ops compute in bf16 and which in f32, gradients reaching f32 leaves in f32,
//! scoping (nesting, disable, guard drop, bad dtype), nothing changing outside a scope, and a small
//! conv → group norm → attention → layer norm → linear model whose autocast loss and gradients are
//! compared with f32 and f64 runs under stated bf16 tolerances.

mod common;

use autograd::{AutocastGuard, Error, Reduction, Var, autocast, autocast_disabled, autocast_dtype};
use common::uni;
use tensor::{Conv2dOptions, DType, Tensor};

const BF: DType = DType::BF16;
const F32: DType = DType::F32;

fn t32(shape: &[usize], seed: u64) -> Tensor {
    uni(shape, seed, -1.0, 1.0).to_dtype(F32).unwrap()
}
fn leaf(shape: &[usize], seed: u64) -> Var {
    Var::leaf(t32(shape, seed))
}
fn cst(shape: &[usize], seed: u64) -> Var {
    Var::constant(t32(shape, seed))
}

#[test]
fn lower_precision_ops_give_bf16_outputs() {
    let x = cst(&[2, 3, 5, 5], 1);
    let w = leaf(&[4, 3, 3, 3], 2);
    let b = leaf(&[4], 3);
    let a = cst(&[3, 4], 4);
    let m = leaf(&[4, 6], 5);
    let q = cst(&[1, 2, 5, 4], 6);
    let lw = leaf(&[6, 4], 7);
    let lb = leaf(&[6], 8);
    autocast(BF, || -> autograd::Result<()> {
        let opts = Conv2dOptions { padding: [1, 1], ..Default::default() };
        assert_eq!(x.conv2d(&w, Some(&b), &opts)?.dtype(), BF);
        assert_eq!(x.conv2d(&w, None, &opts)?.dtype(), BF);
        assert_eq!(a.matmul(&m)?.dtype(), BF);
        assert_eq!(a.linear(&lw, Some(&lb))?.dtype(), BF, "linear casts its bias too");
        assert_eq!(a.linear(&lw, None)?.dtype(), BF);
        assert_eq!(Var::attention(&q, &q, &q, None, 0.5)?.dtype(), BF);
        assert_eq!(Var::dual_attention(&q, &q, &q, None, &q, &q, None, 0.5)?.dtype(), BF);
        // activations and views keep the dtype they get
        let y = a.matmul(&m)?;
        assert_eq!(y.silu()?.dtype(), BF);
        assert_eq!(y.transpose(0, 1)?.dtype(), BF);
        Ok(())
    })
    .unwrap();
}

#[test]
fn f32_ops_upcast_half_inputs() {
    let xb = Var::constant(t32(&[2, 4, 3, 3], 11).to_dtype(BF).unwrap());
    let rows = Var::constant(t32(&[3, 8], 12).to_dtype(BF).unwrap());
    let pos = Var::constant(uni(&[3, 8], 13, 0.5, 2.0).to_dtype(BF).unwrap());
    let g = leaf(&[4], 14);
    let tgt = cst(&[3, 8], 15);
    autocast(BF, || -> autograd::Result<()> {
        assert_eq!(xb.group_norm(2, Some(&g), Some(&g), 1e-5)?.dtype(), F32);
        assert_eq!(xb.group_norm(2, None, None, 1e-5)?.dtype(), F32);
        let ss = Var::constant(t32(&[2, 4], 16).to_dtype(BF).unwrap());
        let fused = xb.group_norm_silu(2, Some(&g), Some(&g), Some((&ss, &ss)), 1e-5)?;
        assert_eq!(fused.dtype(), F32, "fused GN + modulation + SiLU, bf16 modulation");
        assert_eq!(rows.layer_norm(None, None, 1e-5)?.dtype(), F32);
        assert_eq!(rows.softmax(-1)?.dtype(), F32);
        assert_eq!(rows.log_softmax(-1)?.dtype(), F32);
        assert_eq!(rows.mse_loss(&tgt, Reduction::Mean)?.dtype(), F32, "bf16 pred vs f32 target");
        assert_eq!(rows.mse_loss(&rows, Reduction::None)?.dtype(), F32);
        for r in [rows.sum_all()?, rows.mean(&[1], false)?, rows.var(&[1], 1, false)?, rows.max(&[1], false)?]
        {
            assert_eq!(r.dtype(), F32);
        }
        for u in [pos.exp()?, pos.log()?, pos.rsqrt()?, pos.recip()?, pos.powf(1.5)?, pos.pow(&pos)?] {
            assert_eq!(u.dtype(), F32);
        }
        // mixed elementwise promotes to f32 (outside a scope it is an error, see below)
        assert_eq!(rows.add(&tgt)?.dtype(), F32);
        assert_eq!(tgt.mul(&rows)?.dtype(), F32);
        assert_eq!(Var::cat(&[&rows, &tgt], 0)?.dtype(), F32);
        let c = Tensor::from_vec(vec![1u8, 0, 1], &[3, 1]).unwrap();
        assert_eq!(Var::where_cond(&c, &rows, &tgt)?.dtype(), F32);
        // same dtypes stay as they are
        assert_eq!(rows.add(&rows)?.dtype(), BF);
        Ok(())
    })
    .unwrap();
}

#[test]
fn gradients_reach_f32_leaves_in_f32() {
    let x = cst(&[2, 3, 4, 4], 21);
    let w = leaf(&[5, 3, 3, 3], 22);
    let b = leaf(&[5], 23);
    let lw = leaf(&[2, 5], 24);
    let loss = autocast(BF, || -> autograd::Result<Var> {
        let h = x.conv2d(&w, Some(&b), &Conv2dOptions::default())?; // [2, 5, 2, 2] bf16
        let h = h.permute(&[0, 2, 3, 1])?.linear(&lw, None)?; // [2, 2, 2, 2] bf16
        h.sqr()?.mean_all()
    })
    .unwrap();
    assert_eq!(loss.dtype(), F32);
    loss.backward().unwrap();
    for (name, p) in [("conv weight", &w), ("conv bias", &b), ("linear weight", &lw)] {
        let g = p.grad().unwrap_or_else(|| panic!("{name} got no gradient"));
        assert_eq!(g.dtype(), F32, "{name}");
        assert_eq!(g.shape(), p.shape(), "{name}");
        assert!(g.to_vec_f64().iter().any(|v| *v != 0.0), "{name}: all-zero gradient");
    }
    // the weights themselves were not touched
    assert_eq!(w.dtype(), F32);
}

#[test]
fn scopes_nest_disable_and_restore() {
    let a = cst(&[2, 3], 31);
    let m = cst(&[3, 2], 32);
    assert_eq!(autocast_dtype(), None);
    autocast(BF, || -> autograd::Result<()> {
        assert_eq!(autocast_dtype(), Some(BF));
        autocast_disabled(|| -> autograd::Result<()> {
            assert_eq!(autocast_dtype(), None);
            assert_eq!(a.matmul(&m)?.dtype(), F32, "disabled inside an enabled scope");
            // re-enabled inside the disabled region
            autocast(BF, || {
                assert_eq!(a.matmul(&m)?.dtype(), BF);
                Ok::<_, Error>(())
            })?;
            assert_eq!(autocast_dtype(), None);
            Ok(())
        })?;
        {
            let _g = AutocastGuard::new(DType::F16)?;
            assert_eq!(a.matmul(&m)?.dtype(), DType::F16, "the innermost scope's dtype wins");
        }
        assert_eq!(autocast_dtype(), Some(BF), "the guard's drop restores the outer scope");
        assert_eq!(a.matmul(&m)?.dtype(), BF);
        Ok(())
    })
    .unwrap();
    assert_eq!(autocast_dtype(), None);
    // an error inside the closure still leaves the scope
    let r: autograd::Result<()> = autocast(BF, || Err(Error::NoGradPath));
    assert!(r.is_err());
    assert_eq!(autocast_dtype(), None);
    // only half dtypes autocast
    for d in [F32, DType::F64, DType::I64] {
        let e = autocast(d, || Ok::<_, Error>(())).unwrap_err();
        assert!(matches!(e, Error::Autocast { dtype } if dtype == d), "{e}");
        assert!(e.to_string().contains("bf16"), "{e}");
    }
    assert_eq!(autocast_dtype(), None);
    // the scope is per thread
    autocast(BF, || {
        std::thread::spawn(|| assert_eq!(autocast_dtype(), None)).join().unwrap();
        Ok::<_, Error>(())
    })
    .unwrap();
}

#[test]
fn outside_a_scope_nothing_changes() {
    let a = cst(&[4, 5], 41);
    let m = leaf(&[5, 3], 42);
    let y = a.matmul(&m).unwrap();
    assert_eq!(y.dtype(), F32);
    assert_eq!(y.value().to_vec_f64(), a.value().matmul(m.value()).unwrap().to_vec_f64());
    assert_eq!(y.op_name(), "matmul", "no cast node in front");
    let h = Var::constant(t32(&[4, 5], 43).to_dtype(BF).unwrap());
    assert_eq!(h.sum_all().unwrap().dtype(), BF, "reductions keep bf16 outside a scope");
    assert!(matches!(h.add(&a).unwrap_err(), Error::Tensor(tensor::Error::DTypeMismatch { .. })));
    // f64 is never cast, even inside a scope
    let d = Var::constant(uni(&[4, 5], 44, -1.0, 1.0));
    let dm = Var::constant(uni(&[5, 3], 45, -1.0, 1.0));
    let r = autocast(BF, || d.matmul(&dm)).unwrap();
    assert_eq!(r.dtype(), DType::F64);
}

/// Parameters of the small model, in one dtype.
struct Params {
    w1: Var,
    b1: Var,
    gn: Var,
    gb: Var,
    w2: Var,
    lg: Var,
    lw: Var,
    lb: Var,
}

impl Params {
    fn new(dtype: DType) -> Self {
        let p = |shape: &[usize], seed, scale: f64| {
            Var::leaf(uni(shape, seed, -scale, scale).to_dtype(dtype).unwrap())
        };
        Self {
            w1: p(&[8, 3, 3, 3], 51, 0.4),
            b1: p(&[8], 52, 0.2),
            gn: Var::leaf(uni(&[8], 53, 0.8, 1.2).to_dtype(dtype).unwrap()),
            gb: p(&[8], 54, 0.1),
            w2: p(&[8, 8, 1, 1], 55, 0.5),
            lg: Var::leaf(uni(&[8], 56, 0.8, 1.2).to_dtype(dtype).unwrap()),
            lw: p(&[5, 8], 57, 0.5),
            lb: p(&[5], 58, 0.2),
        }
    }
    fn all(&self) -> [(&'static str, &Var); 8] {
        [
            ("w1", &self.w1),
            ("b1", &self.b1),
            ("gn", &self.gn),
            ("gb", &self.gb),
            ("w2", &self.w2),
            ("lg", &self.lg),
            ("lw", &self.lw),
            ("lb", &self.lb),
        ]
    }
}

/// conv 3×3 → group norm → silu → (+ conv 1×1) → 2-head self-attention (+ residual) → layer norm →
/// linear → MSE against a target + mean(softmax · u). Every autocast family and two mixed-dtype
/// residual adds are on the path.
fn small_model(p: &Params, x: &Var, target: &Var, u: &Var) -> autograd::Result<Var> {
    let (n, c, hw) = (2, 8, 36);
    let h = x.conv2d(&p.w1, Some(&p.b1), &Conv2dOptions { padding: [1, 1], ..Default::default() })?;
    let h = h.group_norm(4, Some(&p.gn), Some(&p.gb), 1e-5)?.silu()?; // f32 under autocast
    let h = h.add(&h.conv2d(&p.w2, None, &Conv2dOptions::default())?)?; // f32 + bf16 → f32
    let seq = h.reshape(&[n, c, hw])?.transpose(1, 2)?; // [2, 36, 8]
    let heads = seq.reshape(&[n, hw, 2, 4])?.permute(&[0, 2, 1, 3])?; // [2, 2, 36, 4]
    let a = Var::attention(&heads, &heads, &heads, None, 0.5)?;
    let a = a.permute(&[0, 2, 1, 3])?.reshape(&[n, hw, c])?;
    let r = seq.add(&a)?.layer_norm(Some(&p.lg), None, 1e-5)?;
    let y = r.linear(&p.lw, Some(&p.lb))?; // [2, 36, 5]
    let mse = y.mse_loss(target, Reduction::Mean)?;
    mse.add(&y.softmax(-1)?.mul(u)?.mean_all()?)
}

struct Run {
    loss: f64,
    grads: Vec<Vec<f64>>,
}

fn run(dtype: DType, autocast_on: bool) -> Run {
    let p = Params::new(dtype);
    let data = |shape: &[usize], seed| Var::constant(uni(shape, seed, -1.0, 1.0).to_dtype(dtype).unwrap());
    let (x, target, u) = (data(&[2, 3, 6, 6], 61), data(&[2, 36, 5], 62), data(&[2, 36, 5], 63));
    let loss = if autocast_on {
        autocast(BF, || small_model(&p, &x, &target, &u)).unwrap()
    } else {
        small_model(&p, &x, &target, &u).unwrap()
    };
    assert_eq!(loss.dtype(), dtype, "the loss is computed in the parameters' dtype");
    loss.backward().unwrap();
    let grads = p
        .all()
        .iter()
        .map(|(name, v)| {
            let g = v.grad().unwrap_or_else(|| panic!("{name}: no gradient"));
            assert_eq!(g.dtype(), dtype, "{name}: gradient dtype");
            g.to_vec_f64()
        })
        .collect();
    Run { loss: loss.value().item().unwrap(), grads }
}

/// ‖a − b‖₂ / ‖b‖₂.
fn rel_l2(a: &[f64], b: &[f64]) -> f64 {
    let num: f64 = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum();
    let den: f64 = b.iter().map(|y| y * y).sum();
    (num / den).sqrt()
}

/// Gradcheck-style comparison against an f64 run of the same model (the reference).
///
/// Tolerances: bf16 keeps 8 significant bits, unit roundoff u = 2⁻⁸ ≈ 3.9e-3. Each autocast op
/// rounds its inputs and its output to bf16 (relative error ≤ u each); the model chains 5 such ops
/// (two convs, attention, linear, plus the casts between them), and the errors of independent
/// roundings add roughly in quadrature, so the loss is expected within a few u and each parameter's
/// gradient (a product of the same chain, backward) within a few u. Measured: loss 1.0e-3 (0.27u),
/// gradients 1.9e-3 … 6.7e-3 (0.5u … 1.7u). Bounds: loss |Δ|/loss ≤ u (3.9e-3); gradient relative
/// L2 error ≤ 4u (1.6e-2) per parameter, about 2.3× the worst measured. The f32 run must be
/// within 1e-5 of f64 (sums of ~100 terms at f32's 6e-8; measured ≤ 3.7e-7), and the autocast run
/// must differ from f32 by more than 1e-4 (it really computed in bf16).
#[test]
fn autocast_loss_and_gradients_track_f32_within_bf16_tolerance() {
    let reference = run(DType::F64, false);
    let full = run(F32, false);
    let mixed = run(F32, true);
    let u = 2f64.powi(-8);
    let rel = |x: f64| (x - reference.loss).abs() / reference.loss.abs();
    assert!(rel(full.loss) < 1e-5, "f32 loss {} vs f64 {}", full.loss, reference.loss);
    assert!(
        rel(mixed.loss) < u,
        "autocast loss {} vs f64 {} (rel {:.2e})",
        mixed.loss,
        reference.loss,
        rel(mixed.loss)
    );
    let names = Params::new(F32).all().map(|(n, _)| n);
    let mut worst: f64 = 0.0;
    for (i, name) in names.iter().enumerate() {
        let e32 = rel_l2(&full.grads[i], &reference.grads[i]);
        let e16 = rel_l2(&mixed.grads[i], &reference.grads[i]);
        eprintln!("{name}: f32 {e32:.2e}, autocast {e16:.2e}");
        assert!(e32 < 1e-5, "{name}: f32 gradient rel L2 error {e32:.2e}");
        assert!(e16 < 4.0 * u, "{name}: autocast gradient rel L2 error {e16:.2e} > 4u");
        worst = worst.max(e16);
    }
    assert!(worst > 1e-4, "autocast gradients equal f32 ones ({worst:.2e}): nothing ran in bf16");
    eprintln!("loss rel error: f32 {:.2e}, autocast {:.2e}", rel(full.loss), rel(mixed.loss));
}
