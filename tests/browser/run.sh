#!/usr/bin/env bash
# The browser tests: start `vending-server` as the README runs it (embedded defaults, a fresh
# SQLite file), log the demo seller in (its password is in the banner), buy on the buyer page in
# headless Chromium and check the seller dashboard (buy.mjs), bind the seller's WeChat and log in
# by scanning (wechat_login.mjs); then, on a server whose demo
# merchant speaks WeChat Pay API v3, handle a payer's complaint from the dashboard
# (complaint.mjs). Called by .ci/run, which installs Debian's chromium if it is missing.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

(cd "$here" && npm ci --no-audit --no-fund --silent)

cargo build --quiet -p examples --bin vending-server
work="$(mktemp -d)"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"' EXIT

# start NAME [VAR=VALUE…]: a vending-server on a free port with a fresh SQLite file (its log in
# target/vending-server-NAME.log); sets $port and $password (the demo seller's, from the banner).
start() {
  local name="$1"; shift
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  log="$root/target/vending-server-$name.log"
  mkdir -p "$work/$name"
  (cd "$work/$name" && env LISTEN="127.0.0.1:$port" SIM_LATENCY_MS=300 "$@" "$root/target/debug/vending-server") > "$log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 150); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.2
  done
  password=""
  for _ in $(seq 1 100); do
    password=$(sed -n 's|^ *seller login: *demo / \([^ ]*\).*|\1|p' "$log" | head -1)
    [ -n "$password" ] && break
    sleep 0.1
  done
  [ -n "$password" ] || { echo "no demo seller password in the banner" >&2; cat "$log" >&2; exit 1; }
}

# check NAME SCRIPT: runs the script against the server started last; its log on failure.
check() {
  local emulator
  emulator=$(sed -n 's|^ *sandbox page: *\([^ ]*\)/sandbox .*|\1|p' "$log" | head -1)
  if ! (cd "$here" && EMULATOR_URL="$emulator" SCREENSHOTS="$root/target/browser" SELLER_LOGIN=demo SELLER_PASSWORD="$password" node "$2" "http://127.0.0.1:$port"); then
    echo "--- vending-server ($1) log" >&2
    tail -50 "$log" >&2
    exit 1
  fi
}

# As the README runs it: buy, watch the dashboard, refund.
start browser
check browser buy.mjs
# The seller binds WeChat from the dashboard and logs in on another computer by scanning.
check browser wechat_login.mjs
# A merchant on WeChat Pay API v3: a payer's complaint answered, refunded and completed.
start complaints DEMO_WECHAT_API=v3
check complaints complaint.mjs
