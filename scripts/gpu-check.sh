#!/usr/bin/env bash
# Runs on the GPU machine, from the folder scripts/gpu-bundle.sh made: the CUDA test binaries, then our
# kernel benchmarks and the same ops in PyTorch on the same card in the same run, then prints one
# table (op, shape, time, TFLOP/s or GB/s, % of the card's peak, PyTorch, ratio).
# Results go to $OUT (or gpu-bundle/results): table.md, ours.jsonl, torch.jsonl and logs.tar.gz
# (one log per test binary), so that the device tool's eight-file limit is never in the way.
# GPU_CHECK_SANITIZE=1 adds a compute-sanitizer memcheck pass over the device tests at the end.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${OUT:-$here/results}"
mkdir -p "$out"
bin="$(mktemp -d)"
logs="$(mktemp -d)/logs"
mkdir -p "$logs"
trap 'tar -C "$(dirname "$logs")" -czf "$out/logs.tar.gz" logs; rm -rf "$bin" "$(dirname "$logs")"' EXIT
tar -C "$bin" -xzf "$here/bin.tar.gz"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv || true
t0=$SECONDS
stamp() { echo "   [$((SECONDS - t0)) s]"; }

echo "== tests (every op on the GPU against the CPU reference)"
fail=0
export MATRYOSHKA_REQUIRE_GPU=1   # a device test that cannot open cuda:0 fails instead of skipping
# The binaries run side by side (16 cores, one GPU): the device time is the scarce thing.
pids=()
for t in "$bin"/tests/*; do
  name="$(basename "$t")"
  ( timeout "${GPU_CHECK_TEST_TIMEOUT:-180}" "$t" --test-threads=4 > "$logs/$name.log" 2>&1
    echo $? > "$logs/$name.rc" ) &
  pids+=($!)
done
wait "${pids[@]}"
for t in "$bin"/tests/*; do
  name="$(basename "$t")"
  rc="$(cat "$logs/$name.rc")"
  if [ "$rc" = 0 ]; then
    echo "  pass  $name  ($(grep -h '^test result' "$logs/$name.log" | tail -n 1))"
  else
    echo "  FAIL  $name  (exit $rc; logs.tar.gz: logs/$name.log)"
    grep -h -E '^(test .* FAILED|---- )|panicked|assert|left|right' "$logs/$name.log" | head -n 40
    fail=1
  fi
done
stamp

echo "== benchmarks"
timeout "${GPU_CHECK_BENCH_TIMEOUT:-240}" "$bin/gpu_bench" --json > "$out/ours.jsonl" 2> "$logs/gpu_bench.err" \
  || { echo "gpu_bench failed (exit $?)"; fail=1; }
grep -v '^$' "$logs/gpu_bench.err" | tail -n 20   # its stderr: failed rows, or why it stopped
stamp
timeout "${GPU_CHECK_TORCH_TIMEOUT:-240}" python3 "$here/gpu_torch_bench.py" > "$out/torch.jsonl" 2> "$logs/torch.err" \
  || { echo "(PyTorch comparison unavailable)"; tail -n 5 "$logs/torch.err"; }
stamp

if [ "${GPU_CHECK_SANITIZE:-0}" = 1 ] && command -v compute-sanitizer > /dev/null; then
  echo "== compute-sanitizer memcheck (device tests)"
  pids=()
  for t in "$bin"/tests/devices* "$bin"/tests/benches-*; do
    name="$(basename "$t")"
    ( timeout "${GPU_CHECK_SANITIZE_TIMEOUT:-90}" compute-sanitizer --tool memcheck --error-exitcode 9 \
        "$t" --test-threads=1 > "$logs/$name.memcheck.log" 2>&1
      echo $? > "$logs/$name.memcheck.rc" ) &
    pids+=($!)
  done
  wait "${pids[@]}"
  for t in "$bin"/tests/devices* "$bin"/tests/benches-*; do
    name="$(basename "$t")"
    echo "  memcheck $name: exit $(cat "$logs/$name.memcheck.rc") ($(grep -h -E 'ERROR SUMMARY|test result' "$logs/$name.memcheck.log" | tail -n 2 | tr '\n' ' '))"
  done
  stamp
fi

echo "== table"
python3 "$here/gpu_table.py" "$out/ours.jsonl" "$out/torch.jsonl" | tee "$out/table.md"
exit $fail
