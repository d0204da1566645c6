#!/usr/bin/env bash
# The merchant quick start (docs/pay-platform.md), as written: pay-platform with embedded defaults, then the
# merchant_quickstart example against it (register, pay, verified callback, refund); then the
# Java and Python merchant clients (merchant-client/java, merchant-client/python): the scheme's
# published vectors, and the same flow against the same platform.
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

# run NAME COMMAND…: the command against the platform; its log on failure.
run() {
  local name=$1; shift
  if ! PLATFORM_URL="http://127.0.0.1:$port" timeout 120 "$@"; then
    echo "$name failed; platform log:" >&2
    cat "$work/platform.log" >&2
    exit 1
  fi
}

run "merchant quick start" target/debug/examples/merchant_quickstart

# Java: plain JDK, no build tool.
java_out="$work/java-classes"
javac -Xlint:all -Werror -d "$java_out" $(find merchant-client/java -name '*.java')
run "java vectors" java -cp "$java_out" pay.merchant.VectorsCheck merchant-client/testdata/vectors.properties
run "java live check" java -cp "$java_out" pay.merchant.LiveCheck

# Python: the standard library only.
(cd merchant-client/python && python3 -m unittest -q test_vectors)
run "python live check" python3 merchant-client/python/live_check.py
