#!/usr/bin/env bash
# Encoder-tier benchmark: texts/s and achieved GFLOP/s of Warden's BERT forward and of
# candle-transformers' at 32, 128 and 256 tokens, next to this machine's single-precision
# matrix-multiply rate (numpy/OpenBLAS sgemm) measured in the same run, with the same
# thread count.
#
#   bench/encoder.sh [ENCODER_DIR]      (default: the fetched all-MiniLM-L6-v2)
#
# Environment: THREADS (default 2), WARDEN_BENCH_SECS (seconds per measurement, default 3),
# WARDEN_BENCH_VENV (a Python with numpy; default target/bench-venv, created if missing).
# ORT=1 adds ONNX Runtime on the same shapes and threads after the Rust bench
# (bench/ort_minilm.py, in ORT_VENV, default target/ort-venv, created if missing).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
THREADS=${THREADS:-2}
cargo build --release -q -p warden-cli
ENC=${1:-$(./target/release/warden model fetch)}
VENV=${WARDEN_BENCH_VENV:-target/bench-venv}
if ! "$VENV/bin/python" -c "import numpy" 2>/dev/null; then
  python3 -m venv "$VENV" && "$VENV/bin/pip" install -q numpy
fi
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), threads $THREADS"
OPENBLAS_NUM_THREADS=$THREADS OMP_NUM_THREADS=$THREADS "$VENV/bin/python" - <<'PY'
import numpy as np, time
rates = []
for n in (384, 1024):
    a = np.random.rand(n * 4, n).astype(np.float32); b = np.random.rand(n, n * 4).astype(np.float32)
    a @ b
    t = time.perf_counter(); k = 0
    while time.perf_counter() - t < 2.0:
        a @ b; k += 1
    dt = (time.perf_counter() - t) / k
    rates.append(2 * a.shape[0] * n * b.shape[1] / dt / 1e9)
print(f"sgemm (numpy {np.__version__}): {max(rates):.1f} GFLOP/s")
PY
if [ "${ORT:-0}" != 1 ]; then
  RAYON_NUM_THREADS=$THREADS WARDEN_BENCH_ENCODER="$ENC" cargo bench -q -p warden-encoder --bench encoder 2>/dev/null
  exit 0
fi
ORT_VENV=${ORT_VENV:-target/ort-venv}
if ! "$ORT_VENV/bin/python" -c "import onnx, onnxruntime, numpy, safetensors" 2>/dev/null; then
  python3 -m venv "$ORT_VENV" && "$ORT_VENV/bin/pip" install -q onnx onnxruntime numpy safetensors
fi
RUST_OUT=$(mktemp)
trap 'rm -f "$RUST_OUT"' EXIT
RAYON_NUM_THREADS=$THREADS WARDEN_BENCH_ENCODER="$ENC" cargo bench -q -p warden-encoder --bench encoder 2>/dev/null | tee "$RUST_OUT"
echo
THREADS=$THREADS OMP_NUM_THREADS=$THREADS "$ORT_VENV/bin/python" bench/ort_minilm.py "$ENC" --warden-table "$RUST_OUT"
