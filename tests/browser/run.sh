#!/usr/bin/env bash
# The browser test: starts `vending-server` as the README runs it (embedded defaults, a fresh
# SQLite file), then logs the demo seller in (its password is in the banner), buys on the buyer
# page in headless Chromium and checks the seller dashboard (buy.mjs). Called by .ci/run, which installs Debian's chromium if it is missing.
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
# The demo seller's password for this run, from the banner.
password=""
for _ in $(seq 1 100); do
  password=$(sed -n 's|^ *seller login: *demo / \([^ ]*\).*|\1|p' "$log" | head -1)
  [ -n "$password" ] && break
  sleep 0.1
done
[ -n "$password" ] || { echo "no demo seller password in the banner" >&2; cat "$log" >&2; exit 1; }
if ! (cd "$here" && SCREENSHOTS="$root/target/browser" SELLER_LOGIN=demo SELLER_PASSWORD="$password" node buy.mjs "http://127.0.0.1:$port"); then
  echo "--- vending-server log" >&2
  tail -50 "$log" >&2
  exit 1
fi
