#!/usr/bin/env bash
# Builds the kernels crate with `--features cuda` (nvcc → PTX for compute_80, or $CUDA_COMPUTE_CAP)
# and assembles every PTX module with ptxas for sm_80 (A100) and sm_90 (H100/H200), so that a PTX
# the GPU driver would reject fails here, on a machine without a GPU. Needs the pinned toolchain:
#   eval "$(scripts/install-cuda-toolchain.sh)"
set -euo pipefail
cd "$(dirname "$0")/.."
: "${NVCC:=$PWD/.cuda-toolchain/nvidia/cu13/bin/nvcc}"
export NVCC
ptxas="$(dirname "$NVCC")/ptxas"
target="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build -p kernels --features cuda --message-format=json-render-diagnostics > "$target/check-ptx.json"
# The build script's OUT_DIR for this exact build, from cargo's own report.
out_dir=$(python3 -c '
import json, sys
for line in open(sys.argv[1]):
    m = json.loads(line)
    if m.get("reason") == "build-script-executed" and m["package_id"].split("#")[0].endswith("kernels"):
        print(m["out_dir"])
' "$target/check-ptx.json" | tail -n 1)
[ -n "$out_dir" ] || { echo "check-ptx: no kernels build-script output found" >&2; exit 1; }
n=0
for ptx in "$out_dir"/*.ptx; do
  for sm in sm_80 sm_90; do
    if ! "$ptxas" -arch="$sm" "$ptx" -o /dev/null; then
      echo "check-ptx: ptxas -arch=$sm rejected $ptx" >&2
      exit 1
    fi
  done
  printf '  %-16s %6d lines  %3d kernels  ok for sm_80, sm_90\n' "$(basename "$ptx")" "$(wc -l < "$ptx")" "$(grep -c '^.visible .entry' "$ptx")"
  n=$((n + 1))
done
[ "$n" -gt 0 ] || { echo "check-ptx: no PTX files in $out_dir" >&2; exit 1; }
echo "check-ptx: $n PTX modules assembled for sm_80 and sm_90"
