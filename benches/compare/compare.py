#!/usr/bin/env python3
"""Times the rows of `cargo run --release -p benches --bin roofline` in JAX (XLA on the CPU) with
2 threads, and writes a JSON file that the roofline program reads with `--compare FILE` to print
ours/reference per row.

    python3 benches/compare/compare.py benches/compare/jax.json
    cargo run --release -p benches --bin roofline -- --compare benches/compare/jax.json

Needs `pip install jax jaxlib`. Same timing rule as benches::roofline::time_case: one warm-up
(which also compiles), then runs until ~1 s or 25 runs (at least 3); the median. Each row is one
jitted function of the same op and shape; the inputs are f32 uniform random. Row names and shapes
must equal the roofline program's (they are the join key).
"""
import os
import sys

THREADS = 2
os.environ.setdefault(
    "XLA_FLAGS",
    f"--xla_cpu_multi_thread_eigen=true intra_op_parallelism_threads={THREADS}",
)
if hasattr(os, "sched_setaffinity"):
    cpus = sorted(os.sched_getaffinity(0))[:THREADS]
    os.sched_setaffinity(0, cpus)

import json  # noqa: E402
import time  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax import lax  # noqa: E402

jax.config.update("jax_platforms", "cpu")
HI = lax.Precision.HIGHEST


def rnd(shape, seed):
    return jnp.asarray(np.random.default_rng(seed).uniform(-1, 1, size=shape).astype(np.float32))


def time_fn(fn, *args, budget=1.0):
    jax.block_until_ready(fn(*args))
    t = []
    start = time.perf_counter()
    while len(t) < 3 or (len(t) < 25 and time.perf_counter() - start < budget):
        s = time.perf_counter()
        jax.block_until_ready(fn(*args))
        t.append(time.perf_counter() - s)
    t.sort()
    return t[len(t) // 2]


def conv(x, w):
    return lax.conv_general_dilated(x, w, (1, 1), [(1, 1), (1, 1)],
                                    dimension_numbers=("NCHW", "OIHW", "NCHW"), precision=HI)


def group_norm(x, g, b, groups):
    n, c = x.shape[:2]
    xr = x.reshape(n, groups, -1)
    m = xr.mean(-1, keepdims=True)
    v = ((xr - m) ** 2).mean(-1, keepdims=True)
    y = ((xr - m) * lax.rsqrt(v + 1e-5)).reshape(x.shape)
    return y * g[None, :, None, None] + b[None, :, None, None]


def attention(q, k, v):
    s = jnp.einsum("bhqd,bhkd->bhqk", q, k, precision=HI) / np.sqrt(q.shape[-1])
    return jnp.einsum("bhqk,bhkd->bhqd", jax.nn.softmax(s, -1), v, precision=HI)


def rows():
    out = []
    for m, n, k, ta in [(1024, 1024, 1024, False), (4096, 256, 256, False), (1024, 1024, 1024, True),
                        (256, 256, 256, False)]:
        a, b = rnd((k, m) if ta else (m, k), 1), rnd((k, n), 2)
        f = jax.jit((lambda a, b: jnp.matmul(a.T, b, precision=HI)) if ta
                    else (lambda a, b: jnp.matmul(a, b, precision=HI)))
        out.append(("gemm f32 (A^T)" if ta else "gemm f32", f"{m}x{n}x{k}", f, (a, b)))
    n, c, hw = 8, 128, 32
    x, w, dy = rnd((n, c, hw, hw), 3), rnd((c, c, 3, 3), 4), rnd((n, c, hw, hw), 5)
    shape = f"N{n} C{c}->{c} {hw}x{hw}"
    out.append(("conv3x3 fwd", shape, jax.jit(conv), (x, w)))
    out.append(("conv3x3 bwd-input", shape,
                jax.jit(lambda w, dy: jax.vjp(lambda x: conv(x, w), x)[1](dy)[0]), (w, dy)))
    out.append(("conv3x3 bwd-weight", shape,
                jax.jit(lambda x, dy: jax.vjp(lambda w: conv(x, w), w)[1](dy)[0]), (x, dy)))
    g, b = rnd((c,), 8), rnd((c,), 9)
    out.append(("group_norm fwd+bwd", f"({n},{c},{hw},{hw}) G32",
                jax.jit(lambda x, g, b, dy: jax.vjp(lambda x, g, b: group_norm(x, g, b, 32), x, g, b)[1](dy)),
                (x, g, b, dy)))
    B, H, L, D = 8, 4, 256, 64
    q, k, v, do = (rnd((B, H, L, D), s) for s in (10, 11, 12, 13))
    out.append(("attention fwd+bwd", f"B{B} H{H} L{L} d{D}",
                jax.jit(lambda q, k, v, do: jax.vjp(attention, q, k, v)[1](do)), (q, k, v, do)))
    N = 1 << 24
    a, b2 = rnd((N,), 14), rnd((N,), 15)
    out.append(("add", "16M f32", jax.jit(jnp.add), (a, b2)))
    out.append(("silu", "16M f32", jax.jit(jax.nn.silu), (a,)))
    out.append(("gelu (erf)", "16M f32", jax.jit(lambda x: jax.nn.gelu(x, approximate=False)), (a,)))
    side = 4096
    out.append(("copy transposed", f"{side}x{side} f32",
                jax.jit(lambda x: x.reshape(side, side).T.copy()), (a,)))
    rows_, cols = 4096, N // 4096
    out.append(("softmax (rows)", f"{rows_}x{cols} f32",
                jax.jit(lambda x: jax.nn.softmax(x.reshape(rows_, cols), -1)), (a,)))
    out.append(("sum last axis", f"{rows_}x{cols} f32",
                jax.jit(lambda x: x.reshape(rows_, cols).sum(-1)), (a,)))
    key = jax.random.PRNGKey(7)
    out.append(("fill_normal", "16M f32", jax.jit(lambda k: jax.random.normal(k, (N,))), (key,)))
    return out


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "benches/compare/jax.json"
    res = []
    for name, shape, fn, args in rows():
        secs = time_fn(fn, *args)
        print(f"{name:<22} {shape:<22} {secs * 1e3:9.3f}ms", flush=True)
        res.append({"op": name, "shape": shape, "secs": secs})
    doc = {"framework": f"jax {jax.__version__} (XLA CPU)", "threads": THREADS, "rows": res}
    with open(path, "w") as f:
        # One row per line: the roofline program's reader relies on it.
        f.write("{\"framework\": " + json.dumps(doc["framework"]) + ", \"threads\": " + str(THREADS)
                + ", \"rows\": [\n")
        f.write(",\n".join(json.dumps(r) for r in res))
        f.write("\n]}\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
