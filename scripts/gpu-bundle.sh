#!/usr/bin/env bash
# Builds, on this (GPU-less) machine, everything the GPU machine needs to verify the CUDA backend —
# it has a driver, PyTorch and Python but no Rust toolchain — into one folder (default gpu-bundle/,
# git-ignored, under 60 MB):
#   bin.tar.gz     tests/*: the CUDA-enabled test binaries of `tensor` (their device loops run every op
#                  on the GPU and compare with the CPU reference); gpu_bench: our kernels timed with
#                  CUDA events (JSON lines). Compressed because every binary embeds all the PTX
#                  (text, ~9 MB, compresses about 10x); gpu-check.sh unpacks it.
#   gpu_torch_bench.py, gpu_table.py, gpu-check.sh   the same ops in PyTorch, and the table
# Then copy the folder over (or carry it with the device tool) and run `gpu-bundle/gpu-check.sh` there.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-gpu-bundle}"
: "${NVCC:=$PWD/.cuda-toolchain/nvidia/cu13/bin/nvcc}"
[ -x "$NVCC" ] || eval "$(./scripts/install-cuda-toolchain.sh)"
export NVCC
target="${CARGO_TARGET_DIR:-$PWD/target}"
rm -rf "$out" && mkdir -p "$out"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/tests"

features="tensor/cuda benches/cuda"
cargo test --release --no-run -p tensor -p benches --features "$features" --message-format=json \
  > "$target/gpu-bundle-tests.json"
python3 - "$target/gpu-bundle-tests.json" "$stage/tests" <<'PY'
import json, shutil, sys, os
seen = set()
for line in open(sys.argv[1]):
    m = json.loads(line)
    exe = m.get("executable") if m.get("reason") == "compiler-artifact" else None
    if exe and m.get("profile", {}).get("test") and exe not in seen:
        seen.add(exe)
        name = f'{m["target"]["name"]}-{m["package_id"].split("#")[0].rsplit("/", 1)[-1]}'
        shutil.copy(exe, os.path.join(sys.argv[2], name))
print(f"{len(seen)} test binaries", file=sys.stderr)
PY
cargo build --release -p benches --bin gpu_bench --features cuda
cp "$target/release/gpu_bench" "$stage/"
# Line tables are enough to read a backtrace; drop the rest to stay small.
strip --strip-debug "$stage"/tests/* "$stage/gpu_bench" 2>/dev/null || true
tar -C "$stage" -czf "$out/bin.tar.gz" tests gpu_bench
cp scripts/gpu-check.sh scripts/gpu_torch_bench.py scripts/gpu_table.py "$out/"
du -sh "$out"
size=$(du -sm "$out" | cut -f1)
[ "$size" -lt 60 ] || { echo "gpu-bundle: $size MB, over the 60 MB limit" >&2; exit 1; }
