#!/usr/bin/env bash
# Browser end-to-end test of the annotation UI: prepare a labeling store with the `warden`
# CLI (import samples, add annotators ann and ben, create a batch, assign it), serve it with
# `warden label serve`, and drive it in headless Chromium with Selenium
# (scripts/annotate_e2e.py, in a throwaway virtualenv). Traffic stays on 127.0.0.1; the
# browser uses the system chromium and chromedriver (Debian: `chromium chromium-driver`),
# so Selenium Manager never downloads anything.
#
# Usage: scripts/annotate_e2e.sh [--demo] [WARDEN_BIN]   (default: target/release/warden)
#   --demo   prepare and serve the store with the warden-annotate `demo` example instead
#            of the CLI (same users, samples and assignments), e.g. to test the UI alone.
# Environment: ANNOTATE_E2E_VENV=DIR reuses (or creates) a virtualenv there instead of a
# throwaway one; WARDEN_E2E_PORT picks the port.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=cli
if [ "${1:-}" = "--demo" ]; then MODE=demo; shift; fi
BIN=${1:-target/release/warden}
SELENIUM_VERSION=4.43.0

for tool in /usr/bin/chromium /usr/bin/chromedriver python3 curl; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool not found (apt-get install chromium chromium-driver python3-venv curl)"; exit 1; }
done

WORK=$(mktemp -d)
PORT=${WARDEN_E2E_PORT:-$((20000 + RANDOM % 20000))}
URL="http://127.0.0.1:$PORT"
DB="$WORK/labels.sqlite"
export WARDEN_PASSWORD="e2e-pass-$RANDOM-$RANDOM"
cleanup() {
  if [ -n "${PID:-}" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; [ -f "$WORK/server.log" ] && tail -20 "$WORK/server.log"; exit 1; }

# Samples alternate between ann and ben (one annotator per sample, round robin). Ann's first
# one carries markup that must be shown as text; ben's carry a marker that must never reach
# ann's page.
cat >"$WORK/samples.jsonl" <<'JSONL'
{"id": "e2e-1", "text": "Markup stays text: <img src=x onerror=\"window.__xss = 1\"> <b>not bold</b> & more", "meta": {"lang": "en"}}
{"id": "e2e-2", "text": "BEN-ONLY-7f3a: this text belongs to ben's queue", "meta": {"lang": "en"}}
{"id": "e2e-3", "text": "The documentary showed archival footage of the battle.", "meta": {"lang": "en"}}
{"id": "e2e-4", "text": "BEN-ONLY-9c1e: another of ben's samples", "meta": {"lang": "en"}}
JSONL

if [ "$MODE" = cli ]; then
  [ -x "$BIN" ] || cargo build --release -p warden-cli
  "$BIN" label --help >/dev/null 2>&1 || fail "$BIN has no \`label\` command (try --demo)"
  "$BIN" label import --db "$DB" "$WORK/samples.jsonl" --source e2e || fail "label import"
  "$BIN" label user add --db "$DB" ann --role annotator || fail "label user add ann"
  "$BIN" label user add --db "$DB" ben --role annotator || fail "label user add ben"
  "$BIN" label batch create --db "$DB" --name e2e --unbatched 4 || fail "label batch create"
  "$BIN" label assign --db "$DB" --batch e2e --users ann,ben --per-sample 1 || fail "label assign"
  "$BIN" label serve --db "$DB" --addr "127.0.0.1:$PORT" >"$WORK/server.log" 2>&1 &
  PID=$!
else
  cargo build --release -p warden-annotate --example demo
  target/release/examples/demo --db "$DB" --addr "127.0.0.1:$PORT" --jsonl "$WORK/samples.jsonl" >"$WORK/server.log" 2>&1 &
  PID=$!
fi

for _ in $(seq 1 100); do
  curl -sf "$URL/" >/dev/null 2>&1 && break
  kill -0 "$PID" 2>/dev/null || fail "the server exited"
  sleep 0.1
done
curl -sf "$URL/" >/dev/null || fail "the server did not come up on $URL"
echo "ok: server up on $URL ($MODE)"

VENV=${ANNOTATE_E2E_VENV:-$WORK/venv}
if [ ! -x "$VENV/bin/python" ]; then python3 -m venv "$VENV" >/dev/null; fi
"$VENV/bin/python" -c "import selenium, sys; sys.exit(selenium.__version__ != '$SELENIUM_VERSION')" 2>/dev/null ||
  "$VENV/bin/pip" install -q --disable-pip-version-check "selenium==$SELENIUM_VERSION" >/dev/null
# Never let Selenium Manager reach the network: the driver and browser are given explicitly.
export SE_OFFLINE=true
"$VENV/bin/python" scripts/annotate_e2e.py --url "$URL" --db "$DB"
