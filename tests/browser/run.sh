#!/usr/bin/env bash
# The browser test: starts `vending-server` as the README runs it (embedded defaults, a fresh
# SQLite file), then buys on the buyer page in headless Chromium and checks the seller
# dashboard (buy.mjs). Called by .ci/run, which installs Debian's chromium if it is missing.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

(cd "$here" && npm ci --no-audit --no-fund --silent)

cargo build --quiet -p examples --bin vending-server
work="$(mktemp -d)"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log="$root/target/vending-server-browser.log"
(cd "$work" && LISTEN="127.0.0.1:$port" SIM_LATENCY_MS=300 "$root/target/debug/vending-server") > "$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 150); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.2
done
if ! (cd "$here" && SCREENSHOTS="$root/target/browser" node buy.mjs "http://127.0.0.1:$port"); then
  echo "--- vending-server log" >&2
  tail -50 "$log" >&2
  exit 1
fi
