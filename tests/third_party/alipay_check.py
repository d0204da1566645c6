"""A third-party Alipay client (the Python `python-alipay-sdk` package) in both of Alipay's modes
against the sandbox: `AliPay` (public-key mode) and `DCAliPay` (certificate mode, configured with
the certificates the sandbox issued). Each creates, queries, pays (through the control API),
verifies the payment notification, refunds, queries the refund and closes a trade; in certificate
mode the SDK's own SNs (computed with pyOpenSSL) must equal the sandbox's, and Alipay's
certificate downloads and verifies. A request signed with another key is refused. Run by
`run.sh` against a `wechat-sandbox` binary.

    alipay_check.py BASE_URL PUBLIC_KEY_APP_ID CERT_APP_ID APP_PRIVATE_KEY_PEM
"""

import base64
import json
import sys
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer

from alipay import AliPay, DCAliPay

BASE = sys.argv[1].rstrip("/")
PK_APP, CERT_APP = sys.argv[2], sys.argv[3]
APP_KEY = open(sys.argv[4]).read()

received = []


class Notify(BaseHTTPRequestHandler):
    def do_POST(self):
        received.append(self.rfile.read(int(self.headers["Content-Length"])).decode())
        body = b"success"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = HTTPServer(("127.0.0.1", 0), Notify)
threading.Thread(target=server.serve_forever, daemon=True).start()
notify_url = "http://127.0.0.1:%d/notify" % server.server_port


def get(path):
    return urllib.request.urlopen(BASE + path).read().decode()


def control(path, payload):
    req = urllib.request.Request(BASE + path, json.dumps(payload).encode(), {"Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req))


def check(label, condition):
    if not condition:
        print("FAILED:", label)
        sys.exit(1)
    print("ok:", label)


def run(mode, alipay):
    alipay._gateway = BASE + "/gateway.do"  # the only change from production
    no = "PYA-" + mode
    created = alipay.api_alipay_trade_precreate("Cola", no, "3.50", notify_url=notify_url)
    check(mode + ": precreate", created["code"] == "10000" and created["qr_code"].startswith("https://"))
    check(mode + ": query WAIT_BUYER_PAY",
          alipay.api_alipay_trade_query(out_trade_no=no)["trade_status"] == "WAIT_BUYER_PAY")

    before = len(received)
    control("/sandbox/pay", {"out_trade_no": no})
    for _ in range(200):
        if len(received) > before:
            break
        time.sleep(0.05)
    check(mode + ": notification received", len(received) > before)
    data = dict(urllib.parse.parse_qsl(received[before], keep_blank_values=True))
    signature = data.pop("sign")
    check(mode + ": notification verified", alipay.verify(data, signature))
    check(mode + ": notification amount", data["out_trade_no"] == no and data["total_amount"] == "3.50")
    data["total_amount"] = "0.01"
    check(mode + ": a changed notification is refused", not alipay.verify(data, signature))
    check(mode + ": query TRADE_SUCCESS",
          alipay.api_alipay_trade_query(out_trade_no=no)["trade_status"] == "TRADE_SUCCESS")

    refund = alipay.api_alipay_trade_refund("1.00", out_trade_no=no, out_request_no=no + "-R1")
    check(mode + ": refund", refund["code"] == "10000" and refund["refund_fee"] == "1.00")
    refunded = alipay.api_alipay_trade_fastpay_refund_query(no + "-R1", out_trade_no=no)
    check(mode + ": refund query", refunded["code"] == "10000" and refunded["refund_amount"] == "1.00")

    alipay.api_alipay_trade_precreate("Tea", no + "-2", "2.00")
    closed = alipay.api_alipay_trade_close(out_trade_no=no + "-2")
    check(mode + ": close", closed["code"] == "10000")
    check(mode + ": closed", alipay.api_alipay_trade_query(out_trade_no=no + "-2")["trade_status"] == "TRADE_CLOSED")


# Public-key mode.
alipay_public_key = get("/sandbox/alipay-public-key")
run("public-key", AliPay(appid=PK_APP, app_private_key_string=APP_KEY,
                         alipay_public_key_string=alipay_public_key))

# Certificate mode, with what the sandbox issued for the app.
certs = json.loads(get("/sandbox/alipay/certs/" + CERT_APP))
dc = DCAliPay(appid=CERT_APP, app_private_key_string=APP_KEY,
              app_public_key_cert_string=certs["app_cert"],
              alipay_public_key_cert_string=certs["alipay_cert"],
              alipay_root_cert_string=certs["root_cert"])
check("certificate: the SDK's app_cert_sn is the sandbox's", dc.app_cert_sn == certs["app_cert_sn"])
check("certificate: the SDK's alipay_root_cert_sn is the sandbox's (RSA roots only)",
      dc.alipay_root_cert_sn == certs["alipay_root_cert_sn"] and "_" not in dc.alipay_root_cert_sn)
run("certificate", dc)

# Alipay's certificate by SN, as the SDK asks for it, verified by the SDK.
url = dc._gateway + "?" + dc.api_alipay_open_app_alipaycert_download(certs["alipay_cert_sn"])
raw = urllib.request.urlopen(url).read().decode()
downloaded = dc._verify_and_return_sync_response(raw, "alipay_open_app_alipaycert_download_response")
check("certificate: download verified and is Alipay's certificate",
      base64.b64decode(downloaded["alipay_cert_content"]).decode() == certs["alipay_cert"])
check("certificate: the answer names the certificate", json.loads(raw)["alipay_cert_sn"] == certs["alipay_cert_sn"])

# The SDK in public-key mode with the certificate app's SNs missing: refused as Alipay does.
stranger = AliPay(appid=CERT_APP, app_private_key_string=APP_KEY, alipay_public_key_string=alipay_public_key)
stranger._gateway = BASE + "/gateway.do"
answer = stranger.api_alipay_trade_query(out_trade_no="PYA-certificate")
check("certificate: a request without app_cert_sn is refused", answer.get("sub_code") == "isv.missing-parameter")

print("python-alipay-sdk against the sandbox: all checks passed")
