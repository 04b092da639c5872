#!/usr/bin/env bash
# The GPU check: on a CUDA machine (cupy installed, no network needed), run the `gpu` tests,
# the fused-kernel bandwidth table and the GPU benchmarks (gpuad, the CuPy floor, and torch-cuda
# and jax-gpu where they import and see the device), and print a short table.  Writes logs and
# tables to $OUT (default benchmarks/results/gpu-latest).  A few minutes on an H100.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 GPUAD_BACKEND=cupy
OUT="${OUT:-benchmarks/results/gpu-latest}"
mkdir -p "$OUT"
{
  date -u +"%Y-%m-%d %H:%M UTC"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  python3 -c "import sys, cupy, numpy; print('python', sys.version.split()[0], '| cupy', cupy.__version__, '| numpy', numpy.__version__)"
} | tee "$OUT/device.txt"

# Kernels and benchmarks first, then the tests (compiling every kernel dominates their time):
# the limits below keep the whole script under 6 minutes on an H100.
echo "== fused backward kernels"
timeout 60 python3 benchmarks/gpu_kernels.py 2>&1 | tee "$OUT/kernels.md"

echo "== benchmarks"
GPUAD_BENCH_OUT="$OUT" GPUAD_BENCH_BUDGET="${GPUAD_BENCH_BUDGET:-0.5}" timeout 120 \
  python3 -m pytest benchmarks -m gpu --benchmark-enable -q -p no:cacheprovider \
  --benchmark-columns=median,min,max 2>&1 | tee "$OUT/bench.log" \
  | sed -n '/gpuad benchmarks/,/^$/p'

echo "== gpu tests (the CuPy-specific file first)"
timeout 170 python3 -m pytest tests/test_gpu.py tests -m gpu -q -p no:cacheprovider \
  -o addopts="" 2>&1 | tee "$OUT/gpu_tests.log" | tail -n 25
tests_rc=${PIPESTATUS[0]}
echo "gpu tests exit code: $tests_rc (124: stopped at the time limit)"
exit "$tests_rc"
