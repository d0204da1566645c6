"""A third-party WeChat Pay v2 client (the Python `wechatpy` package), configured only with the
sandbox's base URL, creates, queries, closes and refunds orders and verifies the sandbox's
payment notification. Run by `run.sh` against a `wechat-sandbox` binary."""

import json
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer

from wechatpy.pay import WeChatPay

BASE = sys.argv[1].rstrip("/")
APP_ID, MCH_ID, API_KEY = "wx2421b1c4370ec43b", "10000100", "192006250b4c09247ec02edce69f6a2d"

received = []


class Notify(BaseHTTPRequestHandler):
    def do_POST(self):
        received.append(self.rfile.read(int(self.headers["Content-Length"])).decode())
        body = b"<xml><return_code><![CDATA[SUCCESS]]></return_code></xml>"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = HTTPServer(("127.0.0.1", 0), Notify)
threading.Thread(target=server.serve_forever, daemon=True).start()
notify_url = "http://127.0.0.1:%d/notify" % server.server_port


def control(path, payload):
    req = urllib.request.Request(BASE + path, json.dumps(payload).encode(), {"Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req))


def check(label, condition):
    if not condition:
        print("FAILED:", label)
        sys.exit(1)
    print("ok:", label)


for sandbox in (False, True):
    pay = WeChatPay(APP_ID, API_KEY, MCH_ID, sandbox=sandbox)
    pay.API_BASE_URL = BASE + "/"  # the only change from production
    suffix = "S" if sandbox else "P"

    created = pay.order.create("NATIVE", "Cola", 350, notify_url, client_ip="127.0.0.1",
                               out_trade_no="PY1" + suffix, product_id="sku-1")
    check("create (sandbox=%s)" % sandbox, created["code_url"].startswith("weixin://"))
    check("query NOTPAY", pay.order.query(out_trade_no="PY1" + suffix)["trade_state"] == "NOTPAY")

    before = len(received)
    control("/sandbox/pay", {"out_trade_no": "PY1" + suffix})
    for _ in range(200):
        if len(received) > before:
            break
        time.sleep(0.05)
    check("notification received", len(received) > before)
    result = pay.parse_payment_result(received[before])  # raises on a bad signature
    check("notification verified", result["out_trade_no"] == "PY1" + suffix and int(result["total_fee"]) == 350)
    check("query SUCCESS", pay.order.query(out_trade_no="PY1" + suffix)["trade_state"] == "SUCCESS")

    refund = pay.refund.apply(350, 100, "PYR1" + suffix, out_trade_no="PY1" + suffix)
    check("refund accepted", refund["result_code"] == "SUCCESS" and refund["refund_fee"] == "100")
    check("refund query", pay.refund.query(out_refund_no="PYR1" + suffix)["refund_status_0"] in ("PROCESSING", "SUCCESS"))

    pay.order.create("NATIVE", "Tea", 200, notify_url, client_ip="127.0.0.1",
                     out_trade_no="PY2" + suffix, product_id="sku-2")
    pay.order.close("PY2" + suffix)
    check("close", pay.order.query(out_trade_no="PY2" + suffix)["trade_state"] == "CLOSED")

print("wechatpy against the sandbox: all checks passed")
