#!/usr/bin/env bash
# The merchant quick start (docs/pay-platform.md), as written: pay-platform with embedded defaults, then the
# merchant_quickstart example against it (register, pay, verified callback, refund).
set -euo pipefail
cd "$(dirname "$0")/../.."

cargo build -q -p examples --bin pay-platform --example merchant_quickstart

work="$(mktemp -d)"
port=18090
export ADMIN_TOKEN=dev-admin-token-change-me-0123456789
(cd "$work" && LISTEN="127.0.0.1:$port" exec "$OLDPWD/target/debug/pay-platform") >"$work/platform.log" 2>&1 &
platform=$!
trap 'kill $platform 2>/dev/null || true; wait $platform 2>/dev/null || true; rm -rf "$work"' EXIT

for _ in $(seq 1 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
  sleep 0.2
done

if ! PLATFORM_URL="http://127.0.0.1:$port" timeout 120 target/debug/examples/merchant_quickstart; then
  echo "merchant quick start failed; platform log:" >&2
  cat "$work/platform.log" >&2
  exit 1
fi
