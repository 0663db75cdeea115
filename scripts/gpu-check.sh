#!/usr/bin/env bash
# Runs on the GPU machine, from the folder scripts/gpu-bundle.sh made: the CUDA test binaries, then our
# kernel benchmarks and the same ops in PyTorch on the same card in the same run, then prints one
# table (op, shape, time, TFLOP/s or GB/s, % of the card's peak, PyTorch, ratio).
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="${OUT:-$here/results}"
mkdir -p "$work"
bin="$(mktemp -d)"
trap 'rm -rf "$bin"' EXIT
tar -C "$bin" -xzf "$here/bin.tar.gz"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv || true

echo "== tests (every op on the GPU against the CPU reference)"
fail=0
for t in "$bin"/tests/*; do
  if "$t" --test-threads=4 > "$work/$(basename "$t").log" 2>&1; then
    echo "  pass  $(basename "$t")  ($(grep -h '^test result' "$work/$(basename "$t").log" | tail -n 1))"
  else
    echo "  FAIL  $(basename "$t")  (log: $work/$(basename "$t").log)"
    grep -h -E '^(test .* FAILED|---- )' "$work/$(basename "$t").log" | head -n 20
    fail=1
  fi
done

echo "== benchmarks"
"$bin/gpu_bench" --json > "$work/ours.jsonl" || { echo "gpu_bench failed"; fail=1; }
python3 "$here/gpu_torch_bench.py" > "$work/torch.jsonl" || echo "(PyTorch comparison unavailable)"
python3 "$here/gpu_table.py" "$work/ours.jsonl" "$work/torch.jsonl" | tee "$work/table.md"
exit $fail
