#!/usr/bin/env python3
"""Compares the loss curves of two `mdm train` runs (f32 vs bf16, same config and seed, log_every = 1).

usage: scripts/precision_compare.py RUN_F32/metrics.jsonl RUN_BF16/metrics.jsonl [WINDOW]

Prints a markdown table of the per-resolution losses (trailing moving average over WINDOW = 50
steps) of both runs at every 50th step, the largest relative gap |bf16 - f32| / f32 of the moving
averages (per resolution, over steps where the resolution trains and a full window is available),
and the seconds per step of each run in each phase (from the cumulative `steps_per_s`).
"""
import json
import sys


def load(path):
    recs = [json.loads(line) for line in open(path) if line.strip()]
    return {r["step"]: r for r in recs}


def moving(recs, res, window):
    """step -> mean of per_resolution[res] over the last `window` steps that have it (None if short)."""
    out, buf = {}, []
    for s in sorted(recs):
        pr = recs[s]["loss_per_resolution"]
        # per_resolution is high -> low; index from the innermost so phases line up
        if res < len(pr):
            buf.append(pr[len(pr) - 1 - res])
        else:
            buf = []
        buf = buf[-window:]
        out[s] = sum(buf) / len(buf) if len(buf) == window else None
    return out


def elapsed(recs):
    return {s: s / r["steps_per_s"] for s, r in recs.items() if r["steps_per_s"] > 0}


def main():
    a, b = load(sys.argv[1]), load(sys.argv[2])
    window = int(sys.argv[3]) if len(sys.argv) > 3 else 50
    nres = max(len(r["loss_per_resolution"]) for r in a.values())
    names = ["inner (lowest res.)"] + [f"level +{k}" for k in range(1, nres)]
    ma = [moving(a, r, window) for r in range(nres)]
    mb = [moving(b, r, window) for r in range(nres)]
    head = "| step | " + " | ".join(f"{n} f32 | {n} bf16 | gap" for n in names) + " |"
    print(head)
    print("|" + "---|" * (1 + 3 * nres))
    for s in sorted(a):
        if s % 50 or s not in b:
            continue
        cells = []
        for r in range(nres):
            x, y = ma[r].get(s), mb[r].get(s)
            if x is None or y is None:
                cells += ["", "", ""]
            else:
                cells += [f"{x:.4f}", f"{y:.4f}", f"{(y - x) / x * 100:+.2f} %"]
        print(f"| {s} | " + " | ".join(cells) + " |")
    for r in range(nres):
        gaps = [
            (abs(mb[r][s] - ma[r][s]) / ma[r][s], s)
            for s in ma[r]
            if ma[r][s] is not None and mb[r].get(s) is not None
        ]
        if gaps:
            g, s = max(gaps)
            print(f"max relative gap of the {window}-step moving average, {names[r]}: {g * 100:.2f} % (step {s})")
    ea, eb = elapsed(a), elapsed(b)
    levels = {s: r["levels"] for s, r in a.items()}
    bounds = []
    for s in sorted(levels):
        if not bounds or levels[s] != bounds[-1][2]:
            bounds.append([s, s, levels[s]])
        bounds[-1][1] = s
    for lo, hi, lv in bounds:
        first = max((s for s in ea if s < lo), default=0)
        ta = (ea[hi] - (ea[first] if first else 0)) / (hi - first)
        tb = (eb[hi] - (eb[first] if first else 0)) / (hi - first)
        print(f"levels {lv} (steps {first}..{hi}): f32 {ta * 1000:.0f} ms/step, bf16 {tb * 1000:.0f} ms/step ({tb / ta:.2f}x)")


if __name__ == "__main__":
    main()
