#!/usr/bin/env python3
"""Reference fixtures for the op registry, computed by JAX on the CPU in float32.

Run from the repository root:  python3 tests/reference/generate.py
(needs `pip install jax jaxlib numpy ml_dtypes`; see tests/reference/README.md).

For every op in autograd::registry::OPS and two cases (`a`: contiguous inputs, often with
broadcasting; `b`: the first input is used as a non-contiguous view), it writes into
tests/fixtures/ops.safetensors, for `{op}.{case}`:
  in{i}      the i-th differentiable input (case b: `in0_t` holds in0 with its last two dims
             swapped, contiguous; the Rust side transposes it back, getting a strided view)
  aux{i}     non-differentiable inputs (u8 masks / conditions, i64 indices)
  out        forward output
  gout       the seeded output gradient
  grad{i}    the gradient of `sum(out * gout)` with respect to in{i}
The op parameters (dims, eps, strides, ...) are written down twice: in the case tables below (UNARY, BINARY, REDUCE, case_other) and in
tests/tests/reference.rs; keep them in sync.

It also writes the model-level fixtures of blocks.py: resnet, attention, temb, adamw and schedule
.safetensors (see README.md).
"""
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

import blocks
import sampler
from refops import (attention, avg_pool2d, away, conv2d, group_norm, layer_norm, mse, pos, rng_for,
                    unif, upsample_nearest, write_safetensors)

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "fixtures")


# ---- the cases ---------------------------------------------------------------------------------
# Each case: (fn(*inputs, *aux) -> out, [differentiable inputs], [aux inputs]).

def unary(fn, gen=unif):
    return lambda r, shp: (fn, [gen(r, shp)], [])


U_SHAPES = {"a": (3, 5), "b": (4, 6)}

UNARY = {
    "neg": unary(lambda x: -x),
    "abs": unary(jnp.abs, away),
    "exp": unary(jnp.exp),
    "log": unary(jnp.log, pos),
    "sqrt": unary(jnp.sqrt, pos),
    "rsqrt": unary(lax.rsqrt, pos),
    "sqr": unary(lambda x: x * x),
    "recip": unary(lambda x: 1.0 / x, lambda r, s: away(r, s, 0.3, 2.0)),
    "tanh": unary(jnp.tanh),
    "sigmoid": unary(jax.nn.sigmoid),
    "silu": unary(jax.nn.silu),
    "gelu": unary(lambda x: jax.nn.gelu(x, approximate=False), lambda r, s: unif(r, s, -4, 4)),
    "gelu_tanh": unary(lambda x: jax.nn.gelu(x, approximate=True), lambda r, s: unif(r, s, -4, 4)),
    "relu": unary(jax.nn.relu, away),
    "sin": unary(jnp.sin, lambda r, s: unif(r, s, -4, 4)),
    "cos": unary(jnp.cos, lambda r, s: unif(r, s, -4, 4)),
    "erf": unary(lax.erf),
    "powf": unary(lambda x: x ** 2.5, pos),
    "affine": unary(lambda x: x * 1.5 + (-0.25)),
    "clamp": unary(lambda x: jnp.clip(x, -0.5, 0.5),
                   lambda r, s: np.where(np.abs(np.abs(away(r, s)) - 0.5) < 0.05, 0.3, away(r, s))
                   .astype(np.float32)),
}


def binary(fn, gen_a=unif, gen_b=unif):
    def make(r, case):
        if case == "a":
            return fn, [gen_a(r, (2, 3, 4)), gen_b(r, (1, 4))], []
        return fn, [gen_a(r, (4, 5)), gen_b(r, (4, 5))], []
    return make


BINARY = {
    "add": binary(jnp.add),
    "sub": binary(jnp.subtract),
    "mul": binary(jnp.multiply),
    "div": binary(jnp.divide, unif, lambda r, s: away(r, s, 0.3, 2.0)),
    "pow": binary(jnp.power, pos, lambda r, s: unif(r, s, -1.5, 1.5)),
    "maximum": binary(jnp.maximum),
    "minimum": binary(jnp.minimum),
}


def reduce(fn):
    def make(r, case):
        if case == "a":
            return (lambda x: fn(x, (1,), False)), [unif(r, (2, 3, 4))], []
        return (lambda x: fn(x, (-1,), True)), [unif(r, (4, 6))], []
    return make


REDUCE = {
    "sum": reduce(lambda x, d, k: x.sum(d, keepdims=k)),
    "mean": reduce(lambda x, d, k: x.mean(d, keepdims=k)),
    "max": reduce(lambda x, d, k: x.max(d, keepdims=k)),
    "min": reduce(lambda x, d, k: x.min(d, keepdims=k)),
    "var": reduce(lambda x, d, k: x.var(d, keepdims=k, ddof=1)),
}

mm = lambda a, b: jnp.matmul(a, b, precision=lax.Precision.HIGHEST)


def case_other(op, r, case):
    a = case == "a"
    if op == "matmul":
        if a:
            return mm, [unif(r, (3, 4)), unif(r, (4, 5))], []
        return mm, [unif(r, (2, 3, 4)), unif(r, (2, 4, 5))], []
    if op == "conv2d":
        if a:
            return (lambda x, w, b: conv2d(x, w, b, (1, 1), (1, 1), 1)), \
                [unif(r, (2, 3, 6, 6)), unif(r, (4, 3, 3, 3), -0.5, 0.5), unif(r, (4,))], []
        return (lambda x, w, b: conv2d(x, w, b, (2, 2), (1, 1), 2)), \
            [unif(r, (1, 4, 7, 6)), unif(r, (4, 2, 3, 3), -0.5, 0.5), unif(r, (4,))], []
    if op == "group_norm":
        if a:
            return (lambda x, g, b: group_norm(x, g, b, 3, 1e-5)), \
                [unif(r, (2, 6, 3, 3)), unif(r, (6,)), unif(r, (6,))], []
        return (lambda x, g, b: group_norm(x, g, b, 2, 1e-6)), \
            [unif(r, (2, 4, 5)), unif(r, (4,)), unif(r, (4,))], []
    if op == "layer_norm":
        if a:
            return (lambda x, g, b: layer_norm(x, g, b, 1e-5)), \
                [unif(r, (3, 8)), unif(r, (8,)), unif(r, (8,))], []
        return (lambda x, g, b: layer_norm(x, g, b, 1e-6)), \
            [unif(r, (4, 6)), unif(r, (6,)), unif(r, (6,))], []
    if op in ("softmax", "log_softmax"):
        f = jax.nn.softmax if op == "softmax" else jax.nn.log_softmax
        if a:
            return (lambda x: f(x, axis=1)), [unif(r, (2, 3, 5), -6, 6)], []
        return (lambda x: f(x, axis=-1)), [unif(r, (4, 6), -6, 6)], []
    if op == "attention":
        if a:
            mask = np.array([[1, 1, 1, 0, 0]], dtype=np.uint8)
            return (lambda q, k, v, m: attention(q, k, v, m, 0.5)), \
                [unif(r, (1, 2, 3, 4)), unif(r, (1, 2, 5, 4)), unif(r, (1, 2, 5, 3))], [mask]
        return (lambda q, k, v: attention(q, k, v, None, 0.3)), \
            [unif(r, (2, 1, 4, 4)), unif(r, (2, 1, 4, 4)), unif(r, (2, 1, 4, 4))], []
    if op == "group_norm_silu":
        # The ResNet block's fused epilogue: SiLU(GN(x)·(1 + scale) + shift), scale/shift [N, C].
        if a:
            def f(x, g, b, sc, sh):
                y = group_norm(x, g, b, 3, 1e-5)
                return jax.nn.silu(y * (1.0 + sc[:, :, None, None]) + sh[:, :, None, None])
            return f, [unif(r, (2, 6, 3, 3)), unif(r, (6,)), unif(r, (6,)), unif(r, (2, 6)),
                       unif(r, (2, 6))], []
        return (lambda x, g, b: jax.nn.silu(group_norm(x, g, b, 2, 1e-6))), \
            [unif(r, (2, 4, 5)), unif(r, (4,)), unif(r, (4,))], []
    if op == "dual_attention":
        # MDM's self + cross pattern: two softmaxes over the same queries, outputs summed.
        if a:
            mask2 = np.array([[1, 0, 1]], dtype=np.uint8)
            return (lambda q, k1, v1, k2, v2, m2: attention(q, k1, v1, None, 0.5)
                    + attention(q, k2, v2, m2, 0.5)), \
                [unif(r, (1, 2, 3, 4)), unif(r, (1, 2, 5, 4)), unif(r, (1, 2, 5, 3)),
                 unif(r, (1, 2, 3, 4)), unif(r, (1, 2, 3, 3))], [mask2]
        mask1 = np.array([[1, 1, 0, 1], [1, 1, 1, 1]], dtype=np.uint8)
        return (lambda q, k1, v1, k2, v2, m1: attention(q, k1, v1, m1, 0.3)
                + attention(q, k2, v2, None, 0.3)), \
            [unif(r, (2, 1, 4, 4)), unif(r, (2, 1, 4, 4)), unif(r, (2, 1, 4, 4)),
             unif(r, (2, 1, 2, 4)), unif(r, (2, 1, 2, 4))], [mask1]
    if op == "reshape":
        if a:
            return (lambda x: x.reshape(3, 4)), [unif(r, (2, 6))], []
        return (lambda x: x.reshape(2, 12)), [unif(r, (4, 6))], []
    if op == "permute":
        if a:
            return (lambda x: x.transpose(2, 0, 1)), [unif(r, (2, 3, 4))], []
        return (lambda x: x.transpose(1, 0)), [unif(r, (4, 6))], []
    if op == "narrow":
        if a:
            return (lambda x: x[1:4]), [unif(r, (5, 4))], []
        return (lambda x: x[:, 2:5]), [unif(r, (4, 6))], []
    if op == "expand":
        if a:
            return (lambda x: jnp.broadcast_to(x, (3, 4))), [unif(r, (3, 1))], []
        return (lambda x: jnp.broadcast_to(x, (2, 3, 4))), [unif(r, (3, 4))], []
    if op == "cat":
        if a:
            return (lambda x, y: jnp.concatenate([x, y], 0)), [unif(r, (2, 3)), unif(r, (4, 3))], []
        return (lambda x, y: jnp.concatenate([x, y], 1)), [unif(r, (3, 4)), unif(r, (3, 2))], []
    if op == "index_select":
        if a:
            idx = np.array([4, 0, 4, 2], dtype=np.int64)
            return (lambda x, i: jnp.take(x, i, axis=0)), [unif(r, (5, 3))], [idx]
        idx = np.array([5, 1, 1], dtype=np.int64)
        return (lambda x, i: jnp.take(x, i, axis=1)), [unif(r, (4, 6))], [idx]
    if op == "to_dtype":
        if a:
            return (lambda x: x.astype(jnp.bfloat16)), [unif(r, (3, 5))], []
        return (lambda x: x.astype(jnp.float16)), [unif(r, (4, 6))], []
    if op == "upsample_nearest2d":
        if a:
            return (lambda x: upsample_nearest(x, 6, 6)), [unif(r, (1, 2, 3, 3))], []
        return (lambda x: upsample_nearest(x, 5, 7)), [unif(r, (1, 2, 3, 4))], []
    if op == "avg_pool2d":
        if a:
            return (lambda x: avg_pool2d(x, (3, 3), (2, 2), (1, 1), True)), [unif(r, (1, 2, 5, 5))], []
        return (lambda x: avg_pool2d(x, (3, 3), (2, 2), (1, 1), False)), [unif(r, (1, 2, 6, 5))], []
    if op == "where":
        if a:
            c = (r.uniform(size=(3, 4)) < 0.5).astype(np.uint8)
            return (lambda x, y, c: jnp.where(c != 0, x, y)), [unif(r, (3, 4)), unif(r, (1, 4))], [c]
        c = (r.uniform(size=(4, 5)) < 0.5).astype(np.uint8)
        return (lambda x, y, c: jnp.where(c != 0, x, y)), [unif(r, (4, 5)), unif(r, (4, 5))], [c]
    if op == "masked_fill":
        if a:
            m = (r.uniform(size=(3, 4)) < 0.5).astype(np.uint8)
            return (lambda x, m: jnp.where(m != 0, -1.5, x)), [unif(r, (3, 4))], [m]
        m = (r.uniform(size=(1, 6)) < 0.5).astype(np.uint8)
        return (lambda x, m: jnp.where(m != 0, -1.5, x)), [unif(r, (4, 6))], [m]
    if op == "mse_loss":
        if a:
            return (lambda x, y: mse(x, y, "mean")), [unif(r, (3, 4)), unif(r, (3, 4))], []
        return (lambda x, y: mse(x, y, "sum")), [unif(r, (4, 6)), unif(r, (4, 6))], []
    raise KeyError(op)


OTHER = ["matmul", "conv2d", "group_norm", "group_norm_silu", "layer_norm", "softmax", "log_softmax",
         "attention", "dual_attention",
         "reshape", "permute", "narrow", "expand", "cat", "index_select", "to_dtype",
         "upsample_nearest2d", "avg_pool2d", "where", "masked_fill", "mse_loss"]


def make_case(op, case):
    r = rng_for(f"{op}.{case}")
    if op in UNARY:
        return UNARY[op](r, U_SHAPES[case])
    if op in BINARY:
        return BINARY[op](r, case)
    if op in REDUCE:
        return REDUCE[op](r, case)
    return case_other(op, r, case)


def op_fixtures():
    out = {}
    for op in list(UNARY) + list(BINARY) + list(REDUCE) + OTHER:
        for case in ("a", "b"):
            fn, ins, aux = make_case(op, case)
            key = f"{op}.{case}"
            r = rng_for(key + ".gout")
            y, vjp = jax.vjp(lambda *xs: fn(*xs, *aux), *[jnp.asarray(x) for x in ins])
            gout = r.uniform(-1.0, 1.0, size=y.shape).astype(np.float32).astype(y.dtype)
            grads = vjp(jnp.asarray(gout))
            for i, x in enumerate(ins):
                if case == "b" and i == 0:
                    assert x.ndim >= 2, key
                    out[f"{key}.in0_t"] = np.swapaxes(x, -1, -2).copy()
                else:
                    out[f"{key}.in{i}"] = x
                out[f"{key}.grad{i}"] = np.asarray(grads[i])
            for i, a in enumerate(aux):
                out[f"{key}.aux{i}"] = a
            out[f"{key}.out"] = np.asarray(y)
            out[f"{key}.gout"] = np.asarray(gout)
    return out


def main():
    os.makedirs(FIXTURES, exist_ok=True)
    meta = {"generator": "tests/reference/generate.py", "framework": f"jax {jax.__version__}",
            "dtype": "float32"}
    files = {
        "ops": op_fixtures(),
        "resnet": blocks.resnet_fixture(rng_for("resnet")),
        "attention": blocks.attention_fixture(rng_for("attention")),
        "temb": blocks.temb_fixture(rng_for("temb")),
        "adamw": blocks.adamw_fixture(rng_for("adamw")),
        "schedule": blocks.schedule_fixture(),
        "sampler": sampler.sampler_fixture(rng_for("sampler")),
    }
    for name, t in files.items():
        path = os.path.join(FIXTURES, f"{name}.safetensors")
        m = dict(meta)
        if name == "adamw":
            m.update({k: repr(v) for k, v in blocks.ADAMW.items()})
        write_safetensors(path, t, m)
        print(f"{os.path.relpath(path)}: {len(t)} tensors, {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    sys.exit(main())
