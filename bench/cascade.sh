#!/usr/bin/env bash
# End-to-end throughput of the default model on mixed-length real texts: `warden score`
# on the moderation set's even half (web and forum text, 7 to 30,000+ characters), as a
# user runs it, process start and model loading included. Rows: the embedded fast tier
# (WARDEN_TIER=fast) and the embedded cascade (the default once the encoder is fetched),
# measured alternately in the same run. Prints a markdown table.
#
#   bench/cascade.sh [N_TEXTS]          (default 300; the first N of the file)
#
# Environment: RAYON_NUM_THREADS (default 2), RUNS (timed runs per tier, default 2),
# WARDEN_DATA (default ../shared/data).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
N=${1:-300}
export RAYON_NUM_THREADS=${RAYON_NUM_THREADS:-2}
DATA=${WARDEN_DATA:-$ROOT/../shared/data}
SRC=$DATA/openai-moderation/samples-even.jsonl.gz
[ -f "$SRC" ] || { echo "bench/cascade.sh: $SRC not found (set WARDEN_DATA)" >&2; exit 1; }
cargo build --release -q -p warden-cli
BIN=$ROOT/target/release/warden
"$BIN" model fetch >/dev/null
unset WARDEN_MODEL WARDEN_ENCODER
SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT
python3 - "$SRC" "$N" > "$SCRATCH/texts.jsonl" <<'PY'
import gzip, json, sys
n = int(sys.argv[2])
with gzip.open(sys.argv[1], "rt", encoding="utf-8") as f:
    for i, line in enumerate(f):
        if i >= n:
            break
        print(json.dumps({"text": json.loads(line)["prompt"]}))
PY
ROWS=$(wc -l < "$SCRATCH/texts.jsonl")
CHARS=$(python3 -c 'import json,sys; L=[len(json.loads(l)["text"]) for l in open(sys.argv[1])]; L.sort(); print(f"median {L[len(L)//2]}, mean {sum(L)//len(L)}, longest {L[-1]}")' "$SCRATCH/texts.jsonl")
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), RAYON_NUM_THREADS=$RAYON_NUM_THREADS"
echo "texts: $ROWS moderation-set prompts, characters $CHARS"
for round in $(seq "${RUNS:-2}"); do
  for tier in fast cascade; do
    WARDEN_TIER=$tier python3 bench/timed.py --label "$tier" --docs "$ROWS" --warmup 0 --runs 1 \
      --stdin "$SCRATCH/texts.jsonl" --stdout "$SCRATCH/out-$tier.jsonl" --expect-lines "$ROWS" \
      --log "$SCRATCH/log" -- "$BIN" score
  done
done | python3 -c '
import sys
best = {}
for line in sys.stdin:
    _, tier, docs, _, wall, _, rss = line.split()
    t = best.setdefault(tier, [float(wall), int(rss), int(docs)])
    t[0] = min(t[0], float(wall)); t[1] = max(t[1], int(rss))
print("| default tier | texts/s (best run) | seconds | peak RSS |")
print("|---|---:|---:|---:|")
for tier, (wall, rss, docs) in best.items():
    print(f"| {tier} | {docs / wall:,.0f} | {wall:.2f} | {rss / 1024:.0f} MB |")
f, c = best["fast"][0], best["cascade"][0]
print(f"\ncascade / fast time: {c / f:.0f}x (the fast row is mostly process start at this size; "
      "bench/run.sh measures the fast tier in bulk)")
'
