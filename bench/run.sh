#!/usr/bin/env bash
# Warden benchmark: single-core scoring throughput on 1 KB documents and on short texts,
# training time and peak memory, next to alt-profanity-check on the same texts in the
# same run. Prints one markdown table (also saved to target/bench/report.md).
#
#   bench/run.sh [--model DIR] [--quick] [--skip-train] [--docs N] [--runs N]
#
#   --model DIR    model directory to score with (default: the model embedded in the
#                  binary, i.e. models/default/; when the binary has none, the model
#                  trained by this run's training measurement, or one trained for it)
#   --quick        2,000 texts per set and one training run (smoke test)
#   --skip-train   do not measure `warden train`
#   --docs N       texts per set (default 20,000)
#   --runs N       timed runs per measurement after one warm-up (default 3)
#
# Environment: WARDEN_DATA (default ../shared/data), WARDEN_BENCH_DIR (scratch, default
# target/bench), WARDEN_BENCH_VENV (peer virtualenv, default target/bench-venv).
# Inputs are derived from the shared data into the scratch directory at run time; nothing
# is written into the repository outside target/.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

MODEL=""
QUICK=0
SKIP_TRAIN=0
DOCS=""
RUNS=3
PEER_VERSION="1.9.1"
PEER_BATCH=0  # texts per predict_prob call; 0 = the whole list in one call

usage() { sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; }
while [[ $# -gt 0 ]]; do
    case "$1" in
        --model) MODEL=$(cd "$2" && pwd); shift 2 ;;
        --quick) QUICK=1; shift ;;
        --skip-train) SKIP_TRAIN=1; shift ;;
        --docs) DOCS=$2; shift 2 ;;
        --runs) RUNS=$2; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "bench/run.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
done
if [[ -z "$DOCS" ]]; then
    if [[ $QUICK == 1 ]]; then DOCS=2000; else DOCS=20000; fi
fi
TRAIN_RUNS=$RUNS
[[ $QUICK == 1 ]] && TRAIN_RUNS=1

DATA_ROOT=${WARDEN_DATA:-$ROOT/../shared/data}
SCRATCH=${WARDEN_BENCH_DIR:-$ROOT/target/bench}
VENV=${WARDEN_BENCH_VENV:-$ROOT/target/bench-venv}
WARDEN=$ROOT/target/release/warden
RESULTS=$SCRATCH/results.txt
META=$SCRATCH/meta.tsv
LOG=$SCRATCH/log
mkdir -p "$SCRATCH/data" "$LOG"
: > "$RESULTS"
: > "$META"
unset WARDEN_MODEL  # the default model must be the embedded one, not the caller's
export WARDEN_TIER=fast  # this benchmark measures the fast tier (bench/encoder.sh the encoder)

say() { echo "bench: $*" >&2; }
meta() { printf '%s\t%s\n' "$1" "$2" >> "$META"; }
PY=$(command -v python3 || true)
[[ -n "$PY" ]] || { echo "bench/run.sh: python3 is required" >&2; exit 1; }

# Who else is using the CPU (a benchmark on a shared machine must say so).
busy_procs() {
    command -v top >/dev/null || return 0
    top -b -n 2 -d 1 -w 200 2>/dev/null \
        | awk '/^top -/{n++} n==2 && $1 ~ /^[0-9]+$/ && $9+0 >= 20 && $12 != "top" {printf "%s%s (%s%% CPU)", sep, $12, $9; sep=", "}'
}

meta date "$(date -u '+%Y-%m-%d %H:%M UTC')"
meta cpu "$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo 2>/dev/null || echo unknown)"
meta cores "$(nproc)"
meta mem "$(awk '/^MemTotal/{printf "%.0f GB", $2/1048576}' /proc/meminfo 2>/dev/null || echo '?')"
meta kernel "$(uname -sr)"
meta load_before "$(cut -d' ' -f1-3 /proc/loadavg)"
BUSY_BEFORE=$(busy_procs)
meta rev "$(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- crates 2>/dev/null || echo ' (+ uncommitted changes)')"
meta rustc "$(rustc --version)"
meta protocol "one untimed warm-up pass, then the best (and median) of $RUNS timed passes; single-threaded (RAYON_NUM_THREADS=1, OMP/OPENBLAS/MKL_NUM_THREADS=1); per core = per scoring thread"

# 1. Build.
say "building (cargo build --release -p warden-cli; bench binary)"
cargo build --release -p warden-cli >&2
cargo bench -p warden-fast --bench throughput --no-run >&2

# 2. Inputs, derived from the shared data at run time.
say "preparing $DOCS texts per set from $DATA_ROOT into $SCRATCH/data"
"$PY" bench/prepare.py "$DATA_ROOT" "$SCRATCH/data" "$DOCS"
read -r KB_DOCS KB_BYTES < "$SCRATCH/data/kb.stats"
read -r SH_DOCS SH_BYTES < "$SCRATCH/data/short.stats"
meta texts "1 KB docs: $KB_DOCS consecutive 1000-byte chunks (cut back to a UTF-8 boundary) of wikipedia-en-sample document bodies, mean $((KB_BYTES / KB_DOCS)) B; short texts: the first $SH_DOCS tweets of davidson-hate-offensive, mean $((SH_BYTES / SH_DOCS)) B"

# 3. The peer, in its own virtualenv.
if ! "$VENV/bin/python" -c "import profanity_check, importlib.metadata as m; assert m.version('alt-profanity-check') == '$PEER_VERSION'" 2>/dev/null; then
    say "installing alt-profanity-check==$PEER_VERSION into $VENV (log: $LOG/pip.log)"
    rm -rf "$VENV"
    "$PY" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --upgrade pip > "$LOG/pip.log" 2>&1
    "$VENV/bin/python" -m pip install "alt-profanity-check==$PEER_VERSION" >> "$LOG/pip.log" 2>&1
fi
meta peer "alt-profanity-check $("$VENV/bin/python" -c "import importlib.metadata as m; print(m.version('alt-profanity-check') + ', scikit-learn ' + m.version('scikit-learn'))"), $("$VENV/bin/python" --version)"
if [[ $PEER_BATCH == 0 ]]; then meta peer_batch "called once on the whole list"; else meta peer_batch "called $PEER_BATCH texts at a time"; fi

# 4. Which model.
CLI_MODEL=()
if [[ -n "$MODEL" ]]; then
    MODEL_DIR=$MODEL
    CLI_MODEL=(--model "$MODEL_DIR")
    MODEL_ORIGIN="$MODEL_DIR"
elif "$WARDEN" score x > /dev/null 2>&1 && [[ -f models/default/manifest.json ]]; then
    MODEL_DIR=$ROOT/models/default
    MODEL_ORIGIN="embedded default (models/default)"
else
    MODEL_DIR=$SCRATCH/train-model
    CLI_MODEL=(--model "$MODEL_DIR")
    MODEL_ORIGIN="none embedded in the binary; trained by this run with default settings ($MODEL_DIR)"
    NEED_MODEL=1
fi

# A model with a static-embedding probe reads its encoder's token embeddings.
if [[ -f "$MODEL_DIR/static-probe.bin" && -z "${WARDEN_ENCODER:-}" ]]; then
    IFS=$'\t' read -r ENC_DIR ENC_STATE < <("$WARDEN" model path)
    [[ $ENC_STATE == fetched ]] || "$WARDEN" model fetch > /dev/null
    export WARDEN_ENCODER=$ENC_DIR
fi
# Training is timed with the same recipe: the default model's is `--static-probe all`.
TRAIN_ARGS=()
if [[ -f "$MODEL_DIR/static-probe.bin" ]]; then
    meta static_probe "static-embedding probe on, table from $WARDEN_ENCODER"
    TRAIN_ARGS=(--static-probe all)
fi

# 5. Training time and peak memory (all cores, as a user would run it).
if [[ $SKIP_TRAIN == 0 ]]; then
    say "timing warden train ($TRAIN_RUNS run(s), log: $LOG/train.log)"
    "$PY" bench/timed.py --label "train all" --warmup 0 --runs "$TRAIN_RUNS" --log "$LOG/train.log" \
        -- "$WARDEN" train "${TRAIN_ARGS[@]}" --data-root "$DATA_ROOT" --out "$SCRATCH/train-model" >> "$RESULTS"
    meta train_threads "${RAYON_NUM_THREADS:-$(nproc)}"
elif [[ ${NEED_MODEL:-0} == 1 ]]; then
    say "no embedded model: training one (untimed) into $MODEL_DIR"
    "$WARDEN" train --data-root "$DATA_ROOT" --out "$MODEL_DIR" > "$LOG/train.log" 2>&1
fi
meta model "$(MODEL_DIR="$MODEL_DIR" "$PY" -c "import json, os; m = json.load(open(os.path.join(os.environ['MODEL_DIR'], 'manifest.json'))); print(m['name'], '/', m['features'])" 2>/dev/null || echo '?'), $MODEL_ORIGIN"

export RAYON_NUM_THREADS=1 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1

# 6. Warden in-process (crates/warden-fast/benches/throughput.rs).
say "warden in-process scoring (cargo bench -p warden-fast --bench throughput)"
WARDEN_BENCH_MODEL=$MODEL_DIR WARDEN_BENCH_RUNS=$RUNS \
WARDEN_BENCH_INPUTS="kb=$SCRATCH/data/kb.jsonl,short=$SCRATCH/data/short.jsonl" \
    cargo bench -q -p warden-fast --bench throughput 2> "$LOG/inprocess.log" | tee -a "$LOG/inprocess.log" | grep '^RESULT' >> "$RESULTS"

# 7. Warden CLI end-to-end: JSONL file on stdin, JSONL to a file.
for set in kb short; do
    if [[ $set == kb ]]; then n=$KB_DOCS; b=$KB_BYTES; else n=$SH_DOCS; b=$SH_BYTES; fi
    say "warden score end-to-end on $set"
    "$PY" bench/timed.py --label "cli $set" --docs "$n" --bytes "$b" --warmup 1 --runs "$RUNS" \
        --stdin "$SCRATCH/data/$set.jsonl" --stdout "$SCRATCH/cli-$set.out.jsonl" --expect-lines "$n" \
        --log "$LOG/cli.log" -- "$WARDEN" score "${CLI_MODEL[@]}" >> "$RESULTS"
done

# Fixed cost of one CLI call: process start, model load, one text.
say "warden score startup (one text)"
"$PY" bench/timed.py --label "startup warden" --docs 1 --bytes 1 --warmup 1 --runs "$RUNS" \
    --log "$LOG/cli.log" -- "$WARDEN" score "${CLI_MODEL[@]}" x >> "$RESULTS"

# 8. The peer on the same texts, and its own startup (interpreter, import, one text).
"$PY" bench/timed.py --label "startup peer" --docs 1 --bytes 1 --warmup 1 --runs "$RUNS" \
    --log "$LOG/peer.log" -- "$VENV/bin/python" -c "from profanity_check import predict_prob; predict_prob(['x'])" >> "$RESULTS"
say "alt-profanity-check on both sets"
"$VENV/bin/python" bench/peer.py "$RUNS" "$PEER_BATCH" \
    "kb=$SCRATCH/data/kb.jsonl" "short=$SCRATCH/data/short.jsonl" >> "$RESULTS"

meta load_after "$(cut -d' ' -f1-3 /proc/loadavg)"
BUSY_AFTER=$(busy_procs)
BUSY=""
[[ -n "$BUSY_BEFORE" ]] && BUSY="before: $BUSY_BEFORE"
[[ -n "$BUSY_AFTER" ]] && BUSY="${BUSY:+$BUSY; }after: $BUSY_AFTER"
meta busy "$BUSY"

"$PY" bench/report.py "$RESULTS" "$META" | tee "$SCRATCH/report.md"
