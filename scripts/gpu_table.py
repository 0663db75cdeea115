#!/usr/bin/env python3
"""Merges gpu_bench (ours) and gpu_torch_bench.py (PyTorch) JSON lines into one markdown table.
% of peak uses the card's datasheet peaks (dense tensor-core TFLOP/s by dtype, SIMT f32, HBM
bandwidth); the measured copy bandwidth of both sides is in the `copy` row."""
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


def rate(m):
    s = m["ms"] / 1e3
    if m.get("flops"):
        return m["flops"] / s / 1e12, "TFLOP/s"
    return m["bytes"] / s / 1e9, "GB/s"


def main():
    ohead, ours = load(sys.argv[1])
    thead, torch = load(sys.argv[2]) if len(sys.argv) > 2 else ({}, {})
    name = ohead.get("device") or thead.get("device") or "unknown"
    peak = next((v for k, v in PEAKS.items() if k in name), None)
    print(f"device: {name}; torch {thead.get('torch', 'n/a')}\n")
    print("| op | shape | dtype | ours ms | ours rate | % peak | torch ms | torch rate | ours/torch speed |")
    print("|---|---|---|---|---|---|---|---|---|")
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
            else:
                cells += ["-", "-", "-"]
        if t:
            r, unit = rate(t)
            cells += [f"{t['ms']:.3f}", f"{r:.1f} {unit}"]
        else:
            cells += ["-", "-"]
        cells.append(f"{t['ms'] / o['ms']:.2f}x" if (o and t) else "-")
        print("| " + " | ".join(cells) + " |")
    ks = ohead.get("kernels") or []
    if ks:
        print("\nKernel resources on this GPU (registers/thread, static shared bytes, local bytes/thread):\n")
        print("| kernel | regs | static smem | local (spill) |")
        print("|---|---|---|---|")
        for k in ks:
            print(f"| {k['kernel']} | {k['registers']} | {k['static_shared_bytes']} | {k['local_bytes']} |")


if __name__ == "__main__":
    main()
