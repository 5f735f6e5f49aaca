#!/usr/bin/env bash
# Load benchmark of `warden serve` from a second process, on loopback only.
#
#   [TIER=fast|cascade] bench/serve.sh [--model DIR] [--secs N] [--workers N] [--http-threads N]
#
# Starts the release server (the embedded fast tier unless TIER=cascade, the embedded
# default once the encoder is fetched, or --model), measures the
# saturating request rate closed-loop, then offers 0.5x, 1x, 2x and 4x that rate open-loop
# (latency counted from each request's scheduled send time) for one short text per request
# and for 32 texts per request. Prints requests/s, p50/p99/max latency of accepted requests,
# status counts (no 5xx expected) and the server's peak RSS.
#
# The peer, measured in the same run on the same texts: the same model scoring in-process
# (`warden score`, no HTTP), so the table shows what the service layer costs.
# Texts are 2,000 short tweets from ../shared/data/davidson-hate-offensive, written to a scratch
# directory under target/ (nothing is copied into the repository).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
MODEL=()
SECS=5
WORKERS=1
HTTP_THREADS=2
while [ $# -gt 0 ]; do
  case "$1" in
    --model) MODEL=(--model "$2"); shift 2 ;;
    --secs) SECS=$2; shift 2 ;;
    --workers) WORKERS=$2; shift 2 ;;
    --http-threads) HTTP_THREADS=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
DATA=${WARDEN_DATA:-../shared/data}
SCRATCH=target/bench/serve
mkdir -p "$SCRATCH"
cargo build --release -q -p warden-cli
cargo build --release -q -p warden-serve --example loadgen
BIN=target/release/warden
LOADGEN=target/release/examples/loadgen

python3 - "$DATA/davidson-hate-offensive/labeled_data.csv.gz" "$SCRATCH/texts.txt" <<'PY'
import csv, gzip, sys
rows = [r["tweet"].replace("\n", " ").strip() for r in csv.DictReader(gzip.open(sys.argv[1], "rt", encoding="utf-8"))]
short = [t for t in rows if 20 <= len(t) <= 200][:2000]
open(sys.argv[2], "w").write("\n".join(short) + "\n")
print(f"{len(short)} short texts, mean {sum(map(len, short)) / len(short):.0f} chars")
PY

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/{print $2}') GiB"

# Peer: in-process scoring of the same texts.
python3 -c "
import json, sys
for l in open('$SCRATCH/texts.txt'):
    print(json.dumps({'text': l.rstrip('\n')}))" >"$SCRATCH/texts.jsonl"
TIER=${TIER:-fast}
export WARDEN_TIER=$TIER
unset WARDEN_MODEL
# The fast tier needs five passes to outlast process start; the cascade one.
REPS=5; [ "$TIER" = fast ] || REPS=1
for _ in $(seq $REPS); do cat "$SCRATCH/texts.jsonl"; done >"$SCRATCH/texts5.jsonl"
N=$(wc -l <"$SCRATCH/texts5.jsonl")
echo "tier: $TIER"
T0=$(date +%s.%N)
CI=1 "$BIN" score "${MODEL[@]}" <"$SCRATCH/texts5.jsonl" >/dev/null
T1=$(date +%s.%N)
INPROC=$(python3 -c "print(f'{$N / ($T1 - $T0):.0f}')")
echo "in-process (warden score, same texts, includes process start): $INPROC texts/s"

PORT=$((30000 + RANDOM % 20000))
WARDEN_LOG=warn "$BIN" serve "${MODEL[@]}" --addr "127.0.0.1:$PORT" --workers "$WORKERS" \
  --http-threads "$HTTP_THREADS" ${QUEUE_TEXTS:+--queue-texts "$QUEUE_TEXTS"} 2>"$SCRATCH/server.log" &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
echo "server pid $PID, idle RSS $(awk '/VmRSS/{print int($2/1024)}' /proc/$PID/status) MB"
for BATCH in 1 32; do
  echo
  "$LOADGEN" --url "http://127.0.0.1:$PORT/v1/moderations" --texts "$SCRATCH/texts.txt" --batch "$BATCH" \
    --secs "$SECS" --pid "$PID" --concurrency 32
done
echo
grep -c '"level":"ERROR"' "$SCRATCH/server.log" | xargs echo "server error log lines:"
curl -s "http://127.0.0.1:$PORT/metrics" | grep -E '^warden_(batch_texts_(sum|count)|rejected_total)' || true
