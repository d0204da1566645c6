#!/usr/bin/env bash
# Points a third-party WeChat Pay v2 client (Python `wechatpy`, from PyPI) at a freshly started
# `wechat-sandbox` binary and runs wechatpy_check.py. Called by .ci/run.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${WECHATPY_VENV:-$root/target/wechatpy-venv}"

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check wechatpy==1.8.18 cryptography

cargo build --quiet -p wechat-sandbox --bin wechat-sandbox
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$root/target/debug/wechat-sandbox" --listen "127.0.0.1:$port" \
  --merchant "wx2421b1c4370ec43b,10000100,192006250b4c09247ec02edce69f6a2d" \
  --time-scale 1000 --refund-delay-secs 0 > "$root/target/wechat-sandbox-third-party.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done
"$venv/bin/python" "$here/wechatpy_check.py" "http://127.0.0.1:$port"
