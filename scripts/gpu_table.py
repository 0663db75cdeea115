#!/usr/bin/env python3
"""Merges gpu_bench (ours) and gpu_torch_bench.py (PyTorch) JSON lines into one markdown table.
% of peak uses the card's datasheet peaks (dense tensor-core TFLOP/s by dtype, SIMT f32, HBM
bandwidth); the measured copy bandwidth of both sides is in the `copy` row, and every GB/s row also
shows its rate as a % of our measured copy bandwidth (`% copy`). Rows with a target from the issue
list (attention ≥ 0.6x PyTorch's SDPA speed, fused GN+SiLU ≥ 70 % of the copy bandwidth) say whether
this run meets it."""
import json
import sys

PEAKS = {  # name fragment: (bf16/f16 TFLOP/s dense, f32 SIMT TFLOP/s, f64 TFLOP/s, HBM TB/s)
    "H200": (989.0, 66.9, 33.5, 4.8),
    "H100 PCIe": (756.0, 51.2, 25.6, 2.0),
    "H100": (989.0, 66.9, 33.5, 3.35),
    "A100": (312.0, 19.5, 9.7, 2.0),
}


def load(path):
    head, rows = {}, {}
    kernels = []
    try:
        for line in open(path):
            line = line.strip()
            if not line.startswith("{"):
                continue
            m = json.loads(line)
            if "op" in m:
                rows[(m["op"], tuple(m["shape"]), m["dtype"])] = m
            elif "kernel" in m:
                kernels.append(m)
            else:
                head.update(m)
    except FileNotFoundError:
        pass
    head["kernels"] = kernels
    return head, rows


# op: (what the target measures, threshold): "speed" = torch ms / ours ms, "copy" = ours / copy rate
TARGETS = {
    "attention_fwd": ("speed", 0.6),
    "attention_fwd_bwd": ("speed", 0.6),
    "group_norm_silu": ("copy", 0.70),
}


def rate(m):
    s = m["ms"] / 1e3
    if m.get("flops"):
        return m["flops"] / s / 1e12, "TFLOP/s"
    return m["bytes"] / s / 1e9, "GB/s"


def target(op, o, t, copy):
    """'ok (≥ x)' / 'MISSED (≥ x)' for rows with an issue target, '-' otherwise or without data."""
    if op not in TARGETS or not o:
        return "-"
    kind, want = TARGETS[op]
    if kind == "speed":
        if not t:
            return "-"
        got, label = t["ms"] / o["ms"], f"≥ {want}x torch"
    else:
        if not copy:
            return "-"
        got, label = rate(o)[0] / copy, f"≥ {100 * want:.0f} % copy"
    return f"{'ok' if got >= want else 'MISSED'} ({label})"


def main():
    ohead, ours = load(sys.argv[1])
    thead, torch = load(sys.argv[2]) if len(sys.argv) > 2 else ({}, {})
    name = ohead.get("device") or thead.get("device") or "unknown"
    peak = next((v for k, v in PEAKS.items() if k in name), None)
    print(f"device: {name}; torch {thead.get('torch', 'n/a')}\n")
    copy = next((rate(m)[0] for k, m in ours.items() if k[0] == "copy"), None)
    print("| op | shape | dtype | ours ms | ours rate | % peak | % copy | torch ms | torch rate | ours/torch speed | target |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for key in sorted(set(ours) | set(torch), key=lambda k: (k[0], k[2], k[1])):
        o, t = ours.get(key), torch.get(key)
        cells = [key[0], "x".join(map(str, key[1])), key[2]]
        for m in (o,):
            if m:
                r, unit = rate(m)
                pk = None
                if peak:
                    if unit == "GB/s":
                        pk = peak[3] * 1e3
                    else:
                        pk = {"bf16": peak[0], "f16": peak[0], "f32": peak[1], "f64": peak[2]}.get(key[2])
                cells += [f"{m['ms']:.3f}", f"{r:.1f} {unit}", f"{100 * r / pk:.0f} %" if pk else "-"]
                cells.append(f"{100 * r / copy:.0f} %" if (copy and unit == "GB/s") else "-")
            else:
                cells += ["-", "-", "-", "-"]
        if t:
            r, unit = rate(t)
            cells += [f"{t['ms']:.3f}", f"{r:.1f} {unit}"]
        else:
            cells += ["-", "-"]
        cells.append(f"{t['ms'] / o['ms']:.2f}x" if (o and t) else "-")
        cells.append(target(key[0], o, t, copy))
        print("| " + " | ".join(cells) + " |")
    g = next((m for k, m in ours.items() if k[0] == "s2_train_step"), None)
    c = next((m for k, m in ours.items() if k[0] == "s2_train_step_cpu"), None)
    if g and c:
        print(f"\nS2 train step (batch 8, f32): GPU {g['ms']:.1f} ms, CPU {c['ms']:.1f} ms: "
              f"{c['ms'] / g['ms']:.1f}x faster on the GPU")
    ks = ohead.get("kernels") or []
    if ks:
        print("\nKernel resources on this GPU (registers/thread, static shared bytes, local bytes/thread):\n")
        print("| kernel | regs | static smem | local (spill) |")
        print("|---|---|---|---|")
        for k in ks:
            print(f"| {k['kernel']} | {k['registers']} | {k['static_shared_bytes']} | {k['local_bytes']} |")


if __name__ == "__main__":
    main()
