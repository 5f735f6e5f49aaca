#!/usr/bin/env bash
# End-to-end check of `warden curate` on the shared Wikipedia sample mixed with toxic texts:
#   1. builds the test corpus (scripts/make_curate_corpus.py; outside the repository),
#   2. runs curate, verifies it, and scores it against the truth (scripts/curate_check.py),
#   3. runs it again, SIGKILLs it mid-run, resumes, and checks the outputs are byte-identical
#      to the clean run's (everything but manifest.json and .state/, which record timings),
#   4. runs it as 3 shards, merges them, verifies the merge, and checks the merged report
#      equals the unsharded one;
#   5. re-applies a stricter policy from the attributes sidecar (no rescoring) and checks
#      the outputs equal a full run with that policy.
# Usage: scripts/curate_e2e.sh [WORK_DIR] [WIKI_FILES]   (defaults: a temp dir, 20 files)
# Skips (exit 0) when ../shared/data is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${WARDEN_DATA:-../shared/data}
if [ ! -d "$DATA/wikipedia-en-sample" ]; then
  echo "curate_e2e: $DATA/wikipedia-en-sample not found; skipping"; exit 0
fi
WORK=${1:-$(mktemp -d)}
FILES=${2:-20}
BIN=target/release/warden
[ -x "$BIN" ] || cargo build --release -p warden-cli
mkdir -p "$WORK"
rm -rf "$WORK/corpus-dir" "$WORK"/run-*
python3 scripts/make_curate_corpus.py --out "$WORK/corpus-dir" --wiki-files "$FILES" --big-line-mb 50 --warden "$BIN" > "$WORK/corpus.log"
IN="$WORK/corpus-dir/corpus/*.jsonl.gz"

echo "== clean run"
"$BIN" curate --input "$IN" --output "$WORK/run-clean"
"$BIN" curate verify "$WORK/run-clean"
python3 scripts/curate_check.py "$WORK/run-clean" "$WORK/corpus-dir/truth.jsonl" --json "$WORK/check.json" > "$WORK/check.txt"
grep -E "^(TOXIC|CONTROLS|WIKI|MIXED|  redacted|OK|FAIL)" "$WORK/check.txt"

echo "== killed run, resumed"
"$BIN" curate --threads 1 --input "$IN" --output "$WORK/run-killed" &
PID=$!
# Kill once some files are complete but (most likely) not all.
for _ in $(seq 1 400); do
  n=$( (ls "$WORK/run-killed/.state" 2>/dev/null || true) | wc -l)
  [ "$n" -ge 3 ] && break
  sleep 0.05
done
kill -9 $PID 2>/dev/null || true
wait $PID 2>/dev/null || true
done_before=$( (ls "$WORK/run-killed/.state" 2>/dev/null || true) | wc -l)
total=$(ls $IN | wc -l)
echo "killed with $done_before of $total files complete"
if [ "$done_before" -ge "$total" ]; then echo "curate_e2e: the run finished before the kill; the resume check is vacuous" >&2; exit 1; fi
"$BIN" curate --input "$IN" --output "$WORK/run-killed"
"$BIN" curate verify "$WORK/run-killed"
diff -r -x manifest.json -x .state "$WORK/run-clean" "$WORK/run-killed"
echo "resumed outputs are byte-identical to the clean run's"

echo "== 3 shards, merged"
for i in 0 1 2; do
  "$BIN" curate --input "$IN" --output "$WORK/run-shard$i" --shard "$i/3" 2>/dev/null
done
"$BIN" curate merge --output "$WORK/run-merged" "$WORK"/run-shard0 "$WORK"/run-shard1 "$WORK"/run-shard2
"$BIN" curate verify "$WORK/run-merged"
cmp "$WORK/run-clean/report.md" "$WORK/run-merged/report.md"
cmp "$WORK/run-clean/stats.json" "$WORK/run-merged/stats.json"
echo "merged report equals the unsharded report"
echo "== another policy re-applied from the attributes (no rescoring) equals rescoring with it"
cat > "$WORK/strict.toml" <<'TOML'
format_version = 1
name = "strict-web"
[classifier]
default_threshold = 0.5
[decision]
redact = false
TOML
"$BIN" curate --input "$IN" --output "$WORK/run-reapplied" --policy "$WORK/strict.toml" --reapply-from "$WORK/run-clean"
"$BIN" curate --input "$IN" --output "$WORK/run-rescored" --policy "$WORK/strict.toml" 2>/dev/null
"$BIN" curate verify "$WORK/run-reapplied"
diff -r -x manifest.json -x .state -x run.json "$WORK/run-reapplied" "$WORK/run-rescored"
echo "re-applied outputs are byte-identical to rescored ones"
echo "curate_e2e: passed"
