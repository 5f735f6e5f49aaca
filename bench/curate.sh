#!/usr/bin/env bash
# Curation throughput on the shared Wikipedia sample, end to end (gzip decompression, JSON
# parsing, rules, chunking, fast tier, writing kept/removed/attributes/errors, stats):
# one thread, so every figure is per core. Peers measured in the same run:
#   gzip -dc            decompression alone (the floor any reader pays)
#   rules only          the policy with the classifier switched off (reading, rules, writing)
#   fast tier           the default policy (the figure the 20 MB/s/core target is about)
#   cascade (optional)  fast tier + the encoder on the uncertain band, when CASCADE=DIR
#                       names a cascade model directory and its encoder is fetched
# Usage: bench/curate.sh [WIKI_FILES] [WORK_DIR]   (default 40 files)
set -euo pipefail
cd "$(dirname "$0")/.."
FILES=${1:-40}
WORK=${2:-$(mktemp -d)}
BIN=target/release/warden
cargo build --release -q -p warden-cli
mkdir -p "$WORK"
if [ ! -d "$WORK/corpus-dir" ]; then
  python3 scripts/make_curate_corpus.py --out "$WORK/corpus-dir" --wiki-files "$FILES" --big-line-mb 1 --warden "$BIN" > "$WORK/corpus.log"
fi
IN="$WORK/corpus-dir/corpus/wiki-*.jsonl.gz"
DISK=$(cat $IN | wc -c)
TEXT=$(python3 - "$WORK/corpus-dir/corpus" <<'PY'
import gzip, json, glob, sys
print(sum(len(json.loads(l)["text"].encode()) for f in glob.glob(sys.argv[1] + "/wiki-*.jsonl.gz") for l in gzip.open(f, "rt")))
PY
)
DOCS=$(zcat $IN | wc -l)
export OMP_NUM_THREADS=1 RAYON_NUM_THREADS=1
cat > "$WORK/rules-only.toml" <<'TOML'
format_version = 1
name = "rules-only"
[classifier]
enabled = false
TOML
secs() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['timings']['seconds'])" "$1/manifest.json"; }
run() { # name, extra args
  local name=$1; shift
  rm -rf "$WORK/run-$name"
  "$BIN" curate --threads 1 --input "$IN" --output "$WORK/run-$name" "$@" 2>/dev/null
  secs "$WORK/run-$name"
}
T0=$(date +%s.%N); zcat $IN > /dev/null; T1=$(date +%s.%N)
GZ=$(python3 -c "print($T1 - $T0)")
RULES=$(run rules --policy "$WORK/rules-only.toml")
FAST=$(run fast)
CASC=""
if [ -n "${CASCADE:-}" ]; then CASC=$(run cascade --model "$CASCADE"); fi
python3 - "$GZ" "$RULES" "$FAST" "${CASC:-}" "$DOCS" "$TEXT" "$DISK" "$FILES" <<'PY'
import sys, platform, os
gz, rules, fast, casc = [float(x) if x else None for x in sys.argv[1:5]]
docs, text, disk, files = int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7]), sys.argv[8]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
print(f"machine: {cpu}, {os.cpu_count()} cores; one thread per run")
print(f"corpus: {files} Wikipedia files, {docs} documents, {text/1e6:.1f} MB of text, {disk/1e6:.1f} MB gzip on disk\n")
print("| run | seconds | docs/s per core | MB/s of text per core | MB/s on disk per core | time vs fast tier |")
print("| --- | ---: | ---: | ---: | ---: | ---: |")
for name, s in [("gzip -dc (peer: decompression only)", gz), ("rules only (classifier off)", rules), ("fast tier (default policy)", fast), ("cascade (fast + encoder on the band)", casc)]:
    if s is None:
        continue
    print(f"| {name} | {s:.2f} | {docs/s:,.0f} | {text/1e6/s:.1f} | {disk/1e6/s:.1f} | {s/fast:.2f}x |")
print(f"\ntarget: >= 20 MB/s of text per core through the fast tier: {'met' if text/1e6/fast >= 20 else 'NOT met'} ({text/1e6/fast:.1f})")
PY
