#!/usr/bin/env bash
# Points third-party clients (Python `wechatpy` for WeChat Pay API v2, `wechatpayv3` for API v3
# and `python-alipay-sdk` for Alipay in both modes, pinned, from PyPI; Alipay's official Node
# `alipay-sdk`, pinned, from npm, for content encryption and certificate mode) at freshly started
# `wechat-sandbox` binaries and runs wechatpy_check.py, wechatpayv3_check.py, alipay_check.py
# and alipay-node/check.mjs (its dependencies locked in alipay-node/package-lock.json). Called by
# .ci/run.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${WECHATPY_VENV:-$root/target/wechatpy-venv}"

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check wechatpy==1.8.18 wechatpayv3==2.0.4 cryptography==46.0.3 \
  python-alipay-sdk==3.4.0 pycryptodomex==3.24.2 pyOpenSSL==25.3.0

cargo build --quiet -p wechat-sandbox --bin wechat-sandbox
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$root/target/debug/wechat-sandbox" --listen "127.0.0.1:$port" \
  --merchant "wx2421b1c4370ec43b,10000100,192006250b4c09247ec02edce69f6a2d" \
  --time-scale 1000 --refund-delay-secs 0 > "$root/target/wechat-sandbox-third-party.log" 2>&1 &
pid=$!
pid3=
pida=
trap 'kill $pid $pid3 $pida 2>/dev/null || true' EXIT
wait_port() {
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return
    sleep 0.1
  done
}
wait_port "$port"
"$venv/bin/python" "$here/wechatpy_check.py" "http://127.0.0.1:$port"

# API v3: the merchant's keys are the v3 test vectors' (wechat-pay/testdata/v3); every
# notification comes with a signature probe, which the SDK must refuse.
keys="$root/wechat-pay/testdata/v3"
mch=1900009191 app=wxd678efh567hg6787 serial=1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C sub=1900000109
v3key=0123456789abcdefghijABCDEFGHIJ01
port3=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$root/target/debug/wechat-sandbox" --listen "127.0.0.1:$port3" \
  --merchant-v3 "$mch,$app,$serial,$keys/merchant_public_key.pem,$v3key" \
  --sub-merchant "$mch,$sub" \
  --sign-probe-rate 1 --time-scale 1000 --refund-delay-secs 0 \
  > "$root/target/wechat-sandbox-third-party-v3.log" 2>&1 &
pid3=$!
wait_port "$port3"
"$venv/bin/python" "$here/wechatpayv3_check.py" "http://127.0.0.1:$port3" \
  "$mch" "$app" "$serial" "$keys/merchant_private_key.pem" "$v3key" "$sub"

# Alipay: one app in public-key mode, one in certificate mode (its certificates issued by the
# sandbox and fetched from its control API); the app key is the alipay crate's test key.
ali="$root/alipay/testdata"
aes=AAECAwQFBgcICQoLDA0ODw==
porta=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$root/target/debug/wechat-sandbox" --listen "127.0.0.1:$porta" \
  --alipay-app "2021000000000051,$ali/app_public_key.pem" \
  --alipay-app "2021000000000052,$ali/app_public_key.pem,,cert" \
  --alipay-app "2021000000000053,$ali/app_public_key.pem,,key,$aes" \
  --time-scale 1000 > "$root/target/wechat-sandbox-third-party-alipay.log" 2>&1 &
pida=$!
wait_port "$porta"
"$venv/bin/python" "$here/alipay_check.py" "http://127.0.0.1:$porta" \
  2021000000000051 2021000000000052 "$ali/app_private_key.pem"

# Alipay's official Node SDK: content encryption (the AES app) and certificate mode.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi
node_dir="$root/target/alipay-node-check"
mkdir -p "$node_dir"
cp "$here/alipay-node/package.json" "$here/alipay-node/package-lock.json" "$here/alipay-node/check.mjs" "$node_dir/"
(cd "$node_dir" && npm ci --silent --no-audit --no-fund)
node "$node_dir/check.mjs" "http://127.0.0.1:$porta" \
  2021000000000053 "$aes" 2021000000000052 "$ali/app_private_key.pem"
