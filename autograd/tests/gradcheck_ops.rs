//! A finite-difference gradient check for every op in the registry, and a test that fails when an
//! op in `autograd::registry::OPS` has no entry here.
//!
//! Tolerance: gradcheck's default (abs 1e-6 + rel 1e-5 against f64 central differences with
//! ε = 1e-6; see `autograd::gradcheck`). Inputs stay away from kinks (abs, relu, clamp, max) and
//! poles (log, sqrt, recip at 0).

mod common;
use autograd::{GradcheckOptions, Reduction, Result, Var, gradcheck};
use common::{away, distinct, std, uni};
use tensor::{Conv2dOptions, DType, Tensor};

type BinFn = fn(&Var, &Var) -> Result<Var>;
type Case = (&'static str, Box<dyn Fn() -> Result<autograd::GradcheckReport>>);

fn check(
    f: impl Fn(&[Var]) -> Result<Var> + 'static,
    inputs: Vec<Tensor>,
) -> Result<autograd::GradcheckReport> {
    gradcheck(f, &inputs, GradcheckOptions::default())
}

fn unary(name: &'static str, f: fn(&Var) -> Result<Var>, x: Tensor) -> Case {
    (name, Box::new(move || check(move |v| f(&v[0]), vec![x.clone()])))
}

fn cases() -> Vec<Case> {
    let s = [3, 4];
    let mut c: Vec<Case> = vec![
        unary("neg", |x| x.neg(), std(&s, 1)),
        unary("abs", |x| x.abs(), away(&s, 2)),
        unary("exp", |x| x.exp(), std(&s, 3)),
        unary("log", |x| x.log(), uni(&s, 4, 0.3, 2.0)),
        unary("sqrt", |x| x.sqrt(), uni(&s, 5, 0.3, 2.0)),
        unary("rsqrt", |x| x.rsqrt(), uni(&s, 6, 0.3, 2.0)),
        unary("sqr", |x| x.sqr(), std(&s, 7)),
        unary("recip", |x| x.recip(), uni(&s, 8, 0.3, 2.0)),
        unary("tanh", |x| x.tanh(), std(&s, 9)),
        unary("sigmoid", |x| x.sigmoid(), std(&s, 10)),
        unary("silu", |x| x.silu(), uni(&s, 11, -3.0, 3.0)),
        unary("gelu", |x| x.gelu(), uni(&s, 12, -3.0, 3.0)),
        unary("gelu_tanh", |x| x.gelu_tanh(), uni(&s, 13, -3.0, 3.0)),
        unary("relu", |x| x.relu(), away(&s, 14)),
        unary("sin", |x| x.sin(), std(&s, 15)),
        unary("cos", |x| x.cos(), std(&s, 16)),
        unary("erf", |x| x.erf(), std(&s, 17)),
        unary("powf", |x| x.powf(2.5), uni(&s, 18, 0.3, 2.0)),
        unary("affine", |x| x.affine(-1.5, 0.25), std(&s, 19)),
        // clamp at ±0.5 with inputs in ±[0.2, 1.2) but none within 1e-3 of the bounds in practice
        unary("clamp", |x| x.clamp(-0.5, 0.5), away(&s, 20)),
    ];
    // binary ops with broadcasting: [3, 4] op [4] and [3, 1] op [3, 4]
    let bin: [(&'static str, BinFn); 7] = [
        ("add", |a, b| a.add(b)),
        ("sub", |a, b| a.sub(b)),
        ("mul", |a, b| a.mul(b)),
        ("div", |a, b| a.div(b)),
        ("pow", |a, b| a.pow(b)),
        ("maximum", |a, b| a.maximum(b)),
        ("minimum", |a, b| a.minimum(b)),
    ];
    for (name, f) in bin {
        let a = if name == "pow" { uni(&[3, 4], 21, 0.3, 2.0) } else { distinct(&[3, 4], 21) };
        let b = if name == "div" || name == "pow" {
            uni(&[4], 22, 0.5, 1.5)
        } else {
            distinct(&[4], 22).affine(1.0, 0.05).unwrap()
        };
        c.push((name, Box::new(move || check(move |v| f(&v[0], &v[1]), vec![a.clone(), b.clone()]))));
    }
    let x = distinct(&[2, 3, 4], 30);
    let xt = x.transpose(0, 2).unwrap(); // non-contiguous input [4, 3, 2]
    c.push((
        "sum",
        Box::new({
            let x = xt.clone();
            move || check(|v| v[0].sum(&[0, 2], false), vec![x.clone()])
        }),
    ));
    c.push((
        "mean",
        Box::new({
            let x = xt.clone();
            move || check(|v| v[0].mean(&[1], true), vec![x.clone()])
        }),
    ));
    c.push((
        "max",
        Box::new({
            let x = xt.clone();
            move || check(|v| v[0].max(&[0], false), vec![x.clone()])
        }),
    ));
    c.push((
        "min",
        Box::new({
            let x = xt.clone();
            move || check(|v| v[0].min(&[1, 2], false), vec![x.clone()])
        }),
    ));
    c.push((
        "var",
        Box::new({
            let x = xt.clone();
            move || check(|v| v[0].var(&[2], 1, false), vec![x.clone()])
        }),
    ));
    c.push((
        "matmul",
        Box::new(|| {
            // batched [2, 3, 4] @ transposed [5, 4]ᵀ broadcast over the batch
            check(|v| v[0].matmul(&v[1].transpose(0, 1)?), vec![std(&[2, 3, 4], 31), std(&[5, 4], 32)])
        }),
    ));
    c.push((
        "conv2d",
        Box::new(|| {
            let o = Conv2dOptions { stride: [2, 1], padding: [1, 0], dilation: [1, 2], groups: 2 };
            check(
                move |v| v[0].conv2d(&v[1], Some(&v[2]), &o),
                vec![std(&[2, 4, 5, 6], 33), std(&[6, 2, 3, 2], 34), std(&[6], 35)],
            )
        }),
    ));
    c.push((
        "group_norm",
        Box::new(|| {
            check(
                |v| v[0].group_norm(2, Some(&v[1]), Some(&v[2]), 1e-5),
                vec![std(&[2, 4, 3, 2], 36), std(&[4], 37), std(&[4], 38)],
            )
        }),
    ));
    c.push((
        "group_norm_silu",
        Box::new(|| {
            // Every input: x, gamma, beta, scale ([N, C, 1, 1]), shift ([N, C]); plus the unmodulated,
            // non-affine form (x only).
            check(
                |v| v[0].group_norm_silu(2, Some(&v[1]), Some(&v[2]), Some((&v[3], &v[4])), 1e-5),
                vec![
                    std(&[2, 4, 3, 2], 62),
                    std(&[4], 63),
                    std(&[4], 64),
                    std(&[2, 4, 1, 1], 65),
                    std(&[2, 4], 66),
                ],
            )?;
            check(|v| v[0].group_norm_silu(4, None, None, None, 1e-5), vec![std(&[2, 4, 3], 67)])
        }),
    ));
    c.push((
        "layer_norm",
        Box::new(|| {
            check(
                |v| v[0].layer_norm(Some(&v[1]), Some(&v[2]), 1e-5),
                vec![std(&[3, 5], 39), std(&[5], 40), std(&[5], 41)],
            )
        }),
    ));
    c.push(("softmax", Box::new(|| check(|v| v[0].softmax(1), vec![std(&[2, 5, 3], 42)]))));
    c.push(("log_softmax", Box::new(|| check(|v| v[0].log_softmax(-1), vec![std(&[3, 6], 43)]))));
    c.push((
        "attention",
        Box::new(|| {
            let mask = Tensor::from_vec(vec![1u8, 1, 0, 1, 1, 1, 1, 0, 1, 1], &[2, 5]).unwrap();
            check(
                move |v| Var::attention(&v[0], &v[1], &v[2], Some(&mask), 0.7),
                vec![std(&[2, 2, 3, 4], 44), std(&[2, 2, 5, 4], 45), std(&[2, 2, 5, 3], 46)],
            )
        }),
    ));
    c.push((
        "dual_attention",
        Box::new(|| {
            let m2 = Tensor::from_vec(vec![0u8, 0, 0, 1, 0, 1], &[2, 3]).unwrap();
            check(
                move |v| Var::dual_attention(&v[0], &v[1], &v[2], None, &v[3], &v[4], Some(&m2), 0.7),
                vec![
                    std(&[2, 2, 3, 4], 60),
                    std(&[2, 2, 5, 4], 61),
                    std(&[2, 2, 5, 3], 62),
                    std(&[2, 2, 3, 4], 63),
                    std(&[2, 2, 3, 3], 64),
                ],
            )
        }),
    ));
    c.push((
        "reshape",
        Box::new(|| {
            check(|v| v[0].reshape(&[6, 2])?.unsqueeze(0)?.squeeze(0), vec![std(&[3, 4], 47).t().unwrap()])
        }),
    ));
    c.push(("permute", Box::new(|| check(|v| v[0].permute(&[2, 0, 1]), vec![std(&[2, 3, 4], 48)]))));
    c.push(("narrow", Box::new(|| check(|v| v[0].narrow(1, 1, 2), vec![std(&[3, 4], 49)]))));
    c.push(("expand", Box::new(|| check(|v| v[0].expand(&[2, 3, 4]), vec![std(&[3, 1], 50)]))));
    c.push((
        "cat",
        Box::new(|| check(|v| Var::cat(&[&v[0], &v[1]], 1), vec![std(&[2, 3], 51), std(&[2, 2], 52)])),
    ));
    c.push((
        "index_select",
        Box::new(|| {
            let idx = Tensor::from_vec(vec![2i64, 0, 2, -1], &[4]).unwrap();
            check(move |v| v[0].index_select(0, &idx), vec![std(&[3, 2], 53)])
        }),
    ));
    c.push((
        "to_dtype",
        Box::new(|| {
            // f64 → f32 → f64 round trip: checked with a looser tolerance (f32 rounding of 1e-7 relative)
            gradcheck(
                |v| v[0].to_dtype(DType::F32)?.to_dtype(DType::F64),
                &[std(&[3], 54)],
                GradcheckOptions { eps: 1e-3, atol: 1e-3, rtol: 1e-3, ..Default::default() },
            )
        }),
    ));
    c.push((
        "upsample_nearest2d",
        Box::new(|| check(|v| v[0].upsample_nearest2d(5, 4), vec![std(&[1, 2, 2, 3], 55)])),
    ));
    c.push((
        "avg_pool2d",
        Box::new(|| check(|v| v[0].avg_pool2d([3, 2], [2, 1], [1, 0], false), vec![std(&[1, 2, 5, 4], 56)])),
    ));
    c.push((
        "where",
        Box::new(|| {
            let cond = Tensor::from_vec(vec![1u8, 0, 0, 1], &[4]).unwrap();
            check(move |v| Var::where_cond(&cond, &v[0], &v[1]), vec![std(&[3, 4], 57), std(&[4], 58)])
        }),
    ));
    c.push((
        "masked_fill",
        Box::new(|| {
            let mask = Tensor::from_vec(vec![1u8, 0, 1], &[3, 1]).unwrap();
            check(move |v| v[0].masked_fill(&mask, 2.0), vec![std(&[3, 2], 59)])
        }),
    ));
    c.push((
        "mse_loss",
        Box::new(|| {
            check(|v| v[0].mse_loss(&v[1], Reduction::Mean), vec![std(&[3, 4], 60), std(&[3, 4], 61)])
        }),
    ));
    c
}

#[test]
fn every_registry_op_has_a_gradcheck() {
    let names: Vec<&str> = cases().iter().map(|(n, _)| *n).collect();
    let missing: Vec<&str> =
        autograd::registry::OPS.iter().map(|o| o.name).filter(|n| !names.contains(n)).collect();
    assert!(missing.is_empty(), "ops without a gradcheck: {missing:?}");
    for n in &names {
        assert!(autograd::registry::lookup(n).is_some(), "gradcheck case `{n}` is not in the registry");
    }
}

#[test]
fn every_op_passes_gradcheck() {
    let mut failures = vec![];
    for (name, case) in cases() {
        match case() {
            Ok(r) => assert!(r.checked > 0, "{name}: nothing checked"),
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    assert!(failures.is_empty(), "gradcheck failures:\n{}", failures.join("\n"));
}

#[test]
fn gradcheck_catches_a_wrong_rule() {
    // A deliberately wrong rule: forward x², backward claims 3x.
    struct Wrong(Tensor);
    impl autograd::BackwardOp for Wrong {
        fn name(&self) -> &'static str {
            "sqr"
        }
        fn backward(&self, g: &Tensor, _n: &[bool]) -> Result<Vec<Option<Tensor>>> {
            Ok(vec![Some(g.mul(&self.0.mul_scalar(3.0)?)?)])
        }
    }
    let r = gradcheck(
        |v| Var::from_op(v[0].value().sqr()?, &[&v[0]], Wrong(v[0].value().clone())),
        &[std(&[4], 99)],
        GradcheckOptions::default(),
    );
    let msg = r.unwrap_err().to_string();
    assert!(msg.contains("analytic") && msg.contains("numeric"), "{msg}");
}
