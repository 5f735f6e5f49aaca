#!/usr/bin/env bash
# End-to-end check of `warden serve` as a user runs it: start the release binary on the
# embedded default model, call it with the official `openai` Python package (installed into
# a throwaway virtualenv) and with curl, send the abuse cases of issue 4, and check the
# server is still healthy after each. Traffic stays on 127.0.0.1.
#
# Usage: scripts/serve_smoke.sh [WARDEN_BIN]   (default: target/release/warden)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/release/warden}
[ -x "$BIN" ] || cargo build --release -p warden-cli
WORK=$(mktemp -d)
PORT=${WARDEN_SMOKE_PORT:-$((20000 + RANDOM % 20000))}
URL="http://127.0.0.1:$PORT"
cleanup() { [ -n "${PID:-}" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

WARDEN_TIER=fast "$BIN" serve --addr "127.0.0.1:$PORT" --policies policies --max-body-bytes 1048576 \
  --sample-store "$WORK/samples.sqlite" --log-format text 2>"$WORK/server.log" &
PID=$!
for _ in $(seq 1 100); do
  curl -sf "$URL/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -sf "$URL/readyz" >/dev/null || { echo "server did not become ready"; cat "$WORK/server.log"; exit 1; }

fail() { echo "FAIL: $*"; tail -20 "$WORK/server.log"; exit 1; }
# expect STATUS CODE -- curl args...: checks the status and the error code of the body.
expect() {
  local want=$1 code=$2; shift 3
  local out status
  out=$(curl -s -o "$WORK/body" -w '%{http_code}' "$@" || true)
  status=$out
  [ "$status" = "$want" ] || fail "$* -> HTTP $status, want $want: $(head -c 300 "$WORK/body")"
  if [ -n "$code" ]; then grep -q "\"code\":\"$code\"" "$WORK/body" || fail "$* -> body lacks code $code: $(head -c 300 "$WORK/body")"; fi
  curl -sf "$URL/healthz" >/dev/null || fail "server unhealthy after: $*"
  echo "ok: HTTP $status ${code:-} ($(echo "$*" | head -c 80))"
}
J=(-H 'content-type: application/json' -X POST "$URL/v1/moderations")

# The official client.
python3 -m venv "$WORK/venv" >/dev/null
"$WORK/venv/bin/pip" install -q --disable-pip-version-check 'openai>=1.0' >/dev/null
"$WORK/venv/bin/python" scripts/openai_client_check.py "$URL/v1"

# curl, and the abuse list.
expect 200 "" -- "${J[@]}" -d '{"input": "I will find you and hurt you"}'
expect 200 "" -- "${J[@]}" -H 'x-warden-policy: strict' -d '{"input": ["a", "b"]}'
grep -q '"policy":"strict"' "$WORK/body" || fail "policy not reported"
expect 400 invalid_json -- "${J[@]}" -d '{"input": '
expect 400 invalid_request -- "${J[@]}" -d '{"input": 42}'
expect 400 invalid_request -- "${J[@]}" -d '{"input": {"nested": true}}'
expect 400 empty_input -- "${J[@]}" -d '{"input": []}'
expect 400 invalid_request -- "${J[@]}" -d '{"input": ""}'
expect 400 invalid_request -- "${J[@]}" -d '{"input": ["ok", ""]}'
expect 400 unknown_policy -- "${J[@]}" -d '{"input": "x", "model": "nope"}'
printf '{"input": "bad \xff\xfe bytes"}' >"$WORK/badutf8.json"
expect 400 invalid_json -- "${J[@]}" --data-binary @"$WORK/badutf8.json"
head -c $((10 << 20)) /dev/zero | tr '\0' 'a' >"$WORK/10mb"
expect 413 body_too_large -- "${J[@]}" --data-binary @"$WORK/10mb"
python3 -c 'import json; print(json.dumps({"input": "x" * (5 << 20)}))' >"$WORK/5mb.json"
expect 413 body_too_large -- "${J[@]}" --data-binary @"$WORK/5mb.json"
python3 -c 'import json; print(json.dumps({"input": ["x"] * 100000}))' >"$WORK/100k.json"
expect 400 too_many_inputs -- "${J[@]}" --data-binary @"$WORK/100k.json"
# Slow loris: a partial body, then silence. The server answers 408 after its body timeout.
python3 - "$PORT" <<'PY' || fail "slow-loris body"
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b'POST /v1/moderations HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"input": ')
s.settimeout(30)
data = s.recv(4096)
assert data.startswith(b"HTTP/1.1 408"), data[:200]
print("ok: slow-loris body -> 408 body_timeout")
PY
curl -sf "$URL/healthz" >/dev/null || fail "server unhealthy after a slow-loris body"

curl -sf "$URL/metrics" | grep -q 'warden_requests_total' || fail "metrics"
curl -sf "$URL/v1/monitor" | grep -q '"series"' || fail "monitor"
kill -TERM "$PID"; wait "$PID" || true; PID=
grep -q "stopped" "$WORK/server.log" || fail "graceful shutdown did not complete"
n=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from samples').fetchone()[0])" "$WORK/samples.sqlite")
[ "$n" -ge 1 ] || fail "no sampled rows (flagged texts must be stored)"
echo "ok: $n sampled rows stored; graceful shutdown logged"
echo "serve smoke: all checks passed"
