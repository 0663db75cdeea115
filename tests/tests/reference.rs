//! Reference outputs from an independent framework (JAX on the CPU, float32), for every op in
//! `autograd::registry::OPS`: forward output and every input gradient for a seeded output gradient,
//! at two cases per op (`a`: contiguous, often broadcasting; `b`: the first input is a
//! non-contiguous view). The fixtures are committed in `tests/fixtures/ops.safetensors` and
//! regenerated with `python3 tests/reference/generate.py` (see `tests/reference/README.md`); this
//! test needs no Python. The op parameters in `apply` mirror `generate.py`'s case tables.
//!
//! Tolerances (f32 against an f32 reference computed by XLA): see [`tolerance`].

use autograd::registry::OPS;
use autograd::{Reduction, Var};
use kernels::testing::Tolerance;
use nn::checkpoint::SafeTensors;
use std::path::PathBuf;
use tensor::{Conv2dOptions, DType, Tensor};

/// Path of a committed fixture file.
fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name)
}

/// Reduction length inside an op's forward or backward (sets the √n growth of the f32 tolerance).
fn reduction_len(op: &str) -> usize {
    match op {
        "matmul" | "attention" | "sum" | "mean" | "var" | "layer_norm" | "softmax" | "log_softmax"
        | "mse_loss" => 24,
        "conv2d" | "group_norm" => 72,
        _ => 1,
    }
}

/// The tolerance of one compared tensor, with the reason.
///
/// - Pure data movement (views, cat, index_select, where, masked_fill, upsample, relu, clamp,
///   neg, abs, maximum, minimum) forward: exact — no arithmetic, any difference is a semantic one.
/// - `to_dtype` forward and backward: exact — both sides round to nearest, ties to even.
/// - Everything else: `Tolerance::F32` (rel 1e-4, abs 1e-5: a few f32 ulps from a different
///   summation order and different exp/log/erf/tanh implementations), grown by √n for an op that
///   sums n terms (`reduction_len`).
fn tolerance(op: &str, tensor: &str) -> Tolerance {
    let exact_fwd = matches!(
        op,
        "reshape"
            | "permute"
            | "narrow"
            | "expand"
            | "cat"
            | "index_select"
            | "where"
            | "masked_fill"
            | "upsample_nearest2d"
            | "relu"
            | "clamp"
            | "neg"
            | "abs"
            | "maximum"
            | "minimum"
    );
    if op == "to_dtype" || (exact_fwd && tensor == "out") {
        return Tolerance::new(0.0, 0.0);
    }
    Tolerance::F32.for_reduction(reduction_len(op))
}

/// One `{op}.{case}` entry of the fixture file.
struct Case<'a> {
    st: &'a SafeTensors,
    op: &'static str,
    case: &'static str,
}

impl Case<'_> {
    fn name(&self, t: &str) -> String {
        format!("{}.{}.{}", self.op, self.case, t)
    }
    fn has(&self, t: &str) -> bool {
        self.st.info(&self.name(t)).is_some()
    }
    fn get(&self, t: &str) -> Result<Tensor, String> {
        self.st.get(&self.name(t)).map_err(|e| format!("ops.safetensors: {}: {e}", self.name(t)))
    }
    /// Differentiable inputs; case `b`'s first input is the transpose of the stored `in0_t`.
    fn inputs(&self) -> Result<Vec<Var>, String> {
        let mut v = Vec::new();
        if self.case == "b" {
            let t = self.get("in0_t")?;
            let view = t.transpose(-2, -1).map_err(|e| format!("{}: {e}", self.name("in0_t")))?;
            if view.is_contiguous() {
                return Err(format!("{}: case b needs a non-contiguous input", self.name("in0_t")));
            }
            v.push(Var::leaf(view));
        } else {
            v.push(Var::leaf(self.get("in0")?));
        }
        let mut i = 1;
        while self.has(&format!("in{i}")) {
            v.push(Var::leaf(self.get(&format!("in{i}"))?));
            i += 1;
        }
        Ok(v)
    }
    fn aux(&self) -> Result<Vec<Tensor>, String> {
        let mut v = Vec::new();
        while self.has(&format!("aux{}", v.len())) {
            v.push(self.get(&format!("aux{}", v.len()))?);
        }
        Ok(v)
    }
}

/// Applies `op` with the parameters `generate.py` used for `case`.
fn apply(op: &str, case: &str, x: &[Var], aux: &[Tensor]) -> autograd::Result<Var> {
    let a = case == "a";
    let x0 = &x[0];
    let conv = |stride: usize, groups: usize| Conv2dOptions {
        stride: [stride, stride],
        padding: [1, 1],
        dilation: [1, 1],
        groups,
    };
    match op {
        "neg" => x0.neg(),
        "abs" => x0.abs(),
        "exp" => x0.exp(),
        "log" => x0.log(),
        "sqrt" => x0.sqrt(),
        "rsqrt" => x0.rsqrt(),
        "sqr" => x0.sqr(),
        "recip" => x0.recip(),
        "tanh" => x0.tanh(),
        "sigmoid" => x0.sigmoid(),
        "silu" => x0.silu(),
        "gelu" => x0.gelu(),
        "gelu_tanh" => x0.gelu_tanh(),
        "relu" => x0.relu(),
        "sin" => x0.sin(),
        "cos" => x0.cos(),
        "erf" => x0.erf(),
        "powf" => x0.powf(2.5),
        "affine" => x0.affine(1.5, -0.25),
        "clamp" => x0.clamp(-0.5, 0.5),
        "add" => x0.add(&x[1]),
        "sub" => x0.sub(&x[1]),
        "mul" => x0.mul(&x[1]),
        "div" => x0.div(&x[1]),
        "pow" => x0.pow(&x[1]),
        "maximum" => x0.maximum(&x[1]),
        "minimum" => x0.minimum(&x[1]),
        "sum" | "mean" | "max" | "min" | "var" => {
            let (dims, keep): (&[isize], bool) = if a { (&[1], false) } else { (&[-1], true) };
            match op {
                "sum" => x0.sum(dims, keep),
                "mean" => x0.mean(dims, keep),
                "max" => x0.max(dims, keep),
                "min" => x0.min(dims, keep),
                _ => x0.var(dims, 1, keep),
            }
        }
        "matmul" => x0.matmul(&x[1]),
        "conv2d" => x0.conv2d(&x[1], Some(&x[2]), &if a { conv(1, 1) } else { conv(2, 2) }),
        "group_norm" => {
            let (g, eps) = if a { (3, 1e-5) } else { (2, 1e-6) };
            x0.group_norm(g, Some(&x[1]), Some(&x[2]), eps)
        }
        "group_norm_silu" => {
            if a {
                x0.group_norm_silu(3, Some(&x[1]), Some(&x[2]), Some((&x[3], &x[4])), 1e-5)
            } else {
                x0.group_norm_silu(2, Some(&x[1]), Some(&x[2]), None, 1e-6)
            }
        }
        "dual_attention" => {
            if a {
                Var::dual_attention(x0, &x[1], &x[2], None, &x[3], &x[4], Some(&aux[0]), 0.5)
            } else {
                Var::dual_attention(x0, &x[1], &x[2], Some(&aux[0]), &x[3], &x[4], None, 0.3)
            }
        }
        "layer_norm" => x0.layer_norm(Some(&x[1]), Some(&x[2]), if a { 1e-5 } else { 1e-6 }),
        "softmax" => x0.softmax(if a { 1 } else { -1 }),
        "log_softmax" => x0.log_softmax(if a { 1 } else { -1 }),
        "attention" => {
            if a {
                Var::attention(x0, &x[1], &x[2], Some(&aux[0]), 0.5)
            } else {
                Var::attention(x0, &x[1], &x[2], None, 0.3)
            }
        }
        "reshape" => x0.reshape(if a { &[3, 4] } else { &[2, 12] }),
        "permute" => x0.permute(if a { &[2, 0, 1] } else { &[1, 0] }),
        "narrow" => {
            if a {
                x0.narrow(0, 1, 3)
            } else {
                x0.narrow(1, 2, 3)
            }
        }
        "expand" => x0.expand(if a { &[3, 4] } else { &[2, 3, 4] }),
        "cat" => Var::cat(&[x0, &x[1]], if a { 0 } else { 1 }),
        "index_select" => x0.index_select(if a { 0 } else { 1 }, &aux[0]),
        "to_dtype" => x0.to_dtype(if a { DType::BF16 } else { DType::F16 }),
        "upsample_nearest2d" => {
            if a {
                x0.upsample_nearest2d(6, 6)
            } else {
                x0.upsample_nearest2d(5, 7)
            }
        }
        "avg_pool2d" => x0.avg_pool2d([3, 3], [2, 2], [1, 1], a),
        "where" => Var::where_cond(&aux[0], x0, &x[1]),
        "masked_fill" => x0.masked_fill(&aux[0], -1.5),
        "mse_loss" => x0.mse_loss(&x[1], if a { Reduction::Mean } else { Reduction::Sum }),
        other => panic!("reference.rs has no case for registry op `{other}`: add it here and in generate.py"),
    }
}

/// Compares `actual` with the fixture tensor `t` of `case`; an error names file, tensor, worst element.
fn compare(case: &Case, t: &str, actual: &Tensor) -> Result<(), String> {
    let expected = case.get(t)?;
    if actual.shape() != expected.shape() || actual.dtype() != expected.dtype() {
        return Err(format!(
            "ops.safetensors: {}: shape/dtype {:?} {:?}, reference {:?} {:?}",
            case.name(t),
            actual.shape(),
            actual.dtype(),
            expected.shape(),
            expected.dtype()
        ));
    }
    tolerance(case.op, t)
        .check(&actual.to_vec_f64(), &expected.to_vec_f64())
        .map_err(|m| format!("ops.safetensors: {}: {m}", case.name(t)))
}

/// Runs one case: forward, then gradients of every input for the stored output gradient.
fn run_case(case: &Case) -> Result<(), String> {
    let x = case.inputs()?;
    let aux = case.aux()?;
    let y = apply(case.op, case.case, &x, &aux).map_err(|e| format!("{}: forward: {e}", case.name("out")))?;
    compare(case, "out", y.value())?;
    let gout = case.get("gout")?;
    let wrt: Vec<&Var> = x.iter().collect();
    let grads = autograd::grad(&y, Some(&gout), &wrt, false)
        .map_err(|e| format!("{}: backward: {e}", case.name("gout")))?;
    let mut errs = Vec::new();
    for (i, g) in grads.iter().enumerate() {
        let name = format!("grad{i}");
        match g {
            Some(g) => {
                if let Err(e) = compare(case, &name, g) {
                    errs.push(e);
                }
            }
            None => errs.push(format!("ops.safetensors: {}: no gradient returned", case.name(&name))),
        }
    }
    if errs.is_empty() { Ok(()) } else { Err(errs.join("\n")) }
}

#[test]
fn every_registry_op_matches_the_reference() {
    let st = SafeTensors::open(fixture("ops.safetensors")).expect("open tests/fixtures/ops.safetensors");
    let mut failures = Vec::new();
    let mut checked = 0;
    for info in OPS {
        for case in ["a", "b"] {
            let c = Case { st: &st, op: info.name, case };
            if !c.has("out") {
                failures.push(format!(
                    "op `{}` has no fixture `{}` in ops.safetensors",
                    info.name,
                    c.name("out")
                ));
                continue;
            }
            match run_case(&c) {
                Ok(()) => checked += 1,
                Err(e) => failures.push(e),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} reference cases failed:\n{}",
        failures.len(),
        2 * OPS.len(),
        failures.join("\n")
    );
    assert_eq!(checked, 2 * OPS.len());
}

#[test]
fn fixture_holds_no_op_outside_the_registry() {
    let st = SafeTensors::open(fixture("ops.safetensors")).expect("open tests/fixtures/ops.safetensors");
    for name in st.names() {
        let op = name.split('.').next().unwrap_or_default();
        assert!(autograd::registry::lookup(op).is_some(), "fixture tensor `{name}` names no registry op");
    }
}
