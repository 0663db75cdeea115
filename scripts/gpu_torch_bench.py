#!/usr/bin/env python3
"""PyTorch side of scripts/gpu-check.sh: times the same ops, at the same shapes, as our `gpu_bench`
binary, on the same card in the same run, and prints one JSON object per line:
{"op", "shape", "dtype", "ms", "flops", "bytes"}. CUDA events, warm-up first, median of repeats.
The op names and shapes must match benches/src/bin/gpu_bench.rs (CASES there)."""
import json
import sys

import torch


def timed(fn, reps=50, warmup=5):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    times.sort()
    return times[len(times) // 2]


DT = {"f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16}


def cases():
    dev = "cuda"
    g = torch.Generator(device=dev).manual_seed(0)

    def rnd(*shape, dt="f32"):
        return torch.randn(*shape, generator=g, device=dev, dtype=DT[dt])

    n = 1 << 26  # 64 Mi elements
    x = rnd(n)
    y = rnd(n)
    yield "copy", [n], "f32", lambda: x.clone(), 0, 8 * n
    yield "gelu", [n], "f32", lambda: torch.nn.functional.gelu(x), 0, 8 * n
    yield "add", [n], "f32", lambda: x + y, 0, 12 * n
    xt = rnd(8192, 8192)
    yield "add_transposed", [8192, 8192], "f32", lambda: xt.t() + xt, 0, 12 * 8192 * 8192
    r = rnd(8192, 8192)
    yield "sum_rows", [8192, 8192], "f32", lambda: r.sum(dim=1), 0, 4 * 8192 * 8192
    s = rnd(65536, 1024)
    yield "softmax", [65536, 1024], "f32", lambda: torch.softmax(s, dim=-1), 0, 8 * 65536 * 1024
    ln = rnd(65536, 1024)
    w = torch.ones(1024, device=dev)
    yield "layer_norm", [65536, 1024], "f32", lambda: torch.nn.functional.layer_norm(ln, (1024,), w, w), 0, 8 * 65536 * 1024
    for dt in ("f32", "bf16"):
        a = rnd(4096, 4096, dt=dt)
        b = rnd(4096, 4096, dt=dt)
        yield "matmul", [4096, 4096, 4096], dt, lambda a=a, b=b: a @ b, 2 * 4096**3, 0
    u = torch.empty(n, device=dev)
    yield "randn", [n], "f32", lambda: u.normal_(generator=g), 0, 4 * n
    # attention: bf16, B8 x 8 heads x L1024 x d64; fwd 4·BHL²d FLOPs, bwd 10·BHL²d (as gpu_bench)
    b, h, l, d = 8, 8, 1024, 64
    q, k, v, do = (rnd(b, h, l, d, dt="bf16") for _ in range(4))
    unit = b * h * l * l * d
    sdpa = torch.nn.functional.scaled_dot_product_attention
    yield "attention_fwd", [b, h, l, d], "bf16", lambda: sdpa(q, k, v), 4 * unit, 0
    qg, kg, vg = (t.clone().requires_grad_(True) for t in (q, k, v))

    def fwd_bwd():
        o = sdpa(qg, kg, vg)
        torch.autograd.grad(o, (qg, kg, vg), do)

    yield "attention_fwd_bwd", [b, h, l, d], "bf16", fwd_bwd, 14 * unit, 0
    # fused group norm + SiLU: N8 x C256 x 64², 32 groups; bytes = x read once + y written once
    n_, c_, hw = 8, 256, 64
    for dt, size in (("f32", 4), ("bf16", 2)):
        xg = rnd(n_, c_, hw, hw, dt=dt)
        gw = torch.ones(c_, device=dev, dtype=DT[dt])
        gb = torch.zeros(c_, device=dev, dtype=DT[dt])
        fn = lambda xg=xg, gw=gw, gb=gb: torch.nn.functional.silu(torch.nn.functional.group_norm(xg, 32, gw, gb, 1e-5))
        yield "group_norm_silu", [n_, c_, hw, hw], dt, fn, 0, 2 * size * n_ * c_ * hw * hw


def main():
    if not torch.cuda.is_available():
        print("torch: no CUDA device", file=sys.stderr)
        sys.exit(1)
    print(json.dumps({"device": torch.cuda.get_device_name(0), "torch": torch.__version__}), flush=True)
    for op, shape, dt, fn, flops, nbytes in cases():
        ms = timed(fn)
        print(json.dumps({"op": op, "shape": shape, "dtype": dt, "ms": ms, "flops": flops, "bytes": nbytes}), flush=True)


if __name__ == "__main__":
    main()
