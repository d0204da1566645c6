"""A third-party WeChat Pay API v3 client (Python `wechatpayv3`, from PyPI) against wechat-sandbox.

The SDK is configured only with the sandbox's base URL and keys: the merchant's private key,
certificate serial and API v3 key, and the sandbox's WeChat Pay public key and its id (from
GET /sandbox/wechatpay-public-key). It creates Native and JSAPI orders, queries, closes, refunds,
downloads a bill, and verifies + decrypts the sandbox's payment and refund notifications with its
own callback handling; the sandbox's signature probes must not pass it.

In service-provider mode (`partner_mode=True`) it does the same for a sub-merchant of the merchant:
a partner order, its query and notification naming both merchants, a refund, a close; a
sub-merchant that is not the provider's is refused; and profit sharing: the platform added as a
receiver, a sharing order and its query, a return.

usage: wechatpayv3_check.py BASE_URL MCH_ID APP_ID SERIAL PRIVATE_KEY_PATH API_V3_KEY SUB_MCH_ID
"""

import datetime
import gzip
import hashlib
import http.server
import json
import sys
import threading
import time
import urllib.request

from wechatpayv3 import WeChatPay, WeChatPayType

base, mchid, appid, serial, key_path, apiv3_key, sub_mchid = sys.argv[1:8]
private_key = open(key_path).read()


def control(path, body=None):
    req = urllib.request.Request(
        base + path,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="GET" if body is None else "POST",
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        text = r.read().decode()
        return json.loads(text) if text else None


# The notify URL: every delivery goes through the SDK's own callback handling.
events, refused = [], []


class Notify(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        headers = {k: v for k, v in self.headers.items()}
        try:
            result = wxpay.callback(headers, body)
        except Exception as e:  # a probe's signature is not even base64 to the SDK
            result = None
            print("callback refused:", type(e).__name__)
        if result is None:
            refused.append(headers.get("Wechatpay-Signature", ""))
            self.send_response(401)
        else:
            events.append(result)
            self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Notify)
threading.Thread(target=server.serve_forever, daemon=True).start()
notify_url = "http://127.0.0.1:%d/notify" % server.server_address[1]

public = control("/sandbox/wechatpay-public-key")


def client(key, partner_mode=False):
    c = WeChatPay(
        partner_mode=partner_mode,
        wechatpay_type=WeChatPayType.NATIVE,
        mchid=mchid,
        private_key=key,
        cert_serial_no=serial,
        appid=appid,
        apiv3_key=apiv3_key,
        notify_url=notify_url,
        public_key=public["public_key"],
        public_key_id=public["public_key_id"],
        timeout=(5, 10),
    )
    # The SDK has no gateway option: its gateway is this attribute.
    c._core._gate_way = base
    return c


wxpay = client(private_key)
stamp = str(int(time.time()))


def expect(what, code, want):
    if code != want:
        raise SystemExit("%s: HTTP %s, expected %s" % (what, code, want))


def wait_for(event_type, key, value):
    for _ in range(200):
        for e in events:
            if e["event_type"] == event_type and e["resource"].get(key) == value:
                return e["resource"]
        time.sleep(0.05)
    raise SystemExit("no %s notification for %s=%s (events: %s)" % (event_type, key, value, events))


# Native and JSAPI orders.
native_no = "PYV3N" + stamp
code, message = wxpay.pay(description="Cola", out_trade_no=native_no, amount={"total": 100})
expect("native order", code, 200)
assert json.loads(message)["code_url"].startswith("weixin://wxpay/bizpayurl"), message
jsapi_no = "PYV3J" + stamp
code, message = wxpay.pay(
    description="Tea", out_trade_no=jsapi_no, amount={"total": 50},
    payer={"openid": "o-python"}, pay_type=WeChatPayType.JSAPI,
)
expect("jsapi order", code, 200)
prepay_id = json.loads(message)["prepay_id"]
pay_sign = wxpay.sign([appid, stamp, "nonce" + stamp, "prepay_id=" + prepay_id])
assert pay_sign, "the SDK signs wx.requestPayment parameters"

# Query, close, query again.
code, message = wxpay.query(out_trade_no=jsapi_no)
expect("query", code, 200)
assert json.loads(message)["trade_state"] == "NOTPAY", message
code, _ = wxpay.close(out_trade_no=jsapi_no)
expect("close", code, 204)
code, message = wxpay.query(out_trade_no=jsapi_no)
assert json.loads(message)["trade_state"] == "CLOSED", message

# Paid at the sandbox: the payment notification, verified and decrypted by the SDK.
control("/sandbox/pay", {"out_trade_no": native_no})
paid = wait_for("TRANSACTION.SUCCESS", "out_trade_no", native_no)
assert paid["trade_state"] == "SUCCESS" and paid["amount"]["total"] == 100, paid
code, message = wxpay.query(transaction_id=paid["transaction_id"])
expect("query by transaction id", code, 200)

# A partial refund, completed at the sandbox: the refund notification.
refund_no = "PYV3R" + stamp
code, message = wxpay.refund(
    out_refund_no=refund_no, amount={"refund": 40, "total": 100, "currency": "CNY"},
    out_trade_no=native_no, reason="one can missing",
)
expect("refund", code, 200)
assert json.loads(message)["status"] == "PROCESSING", message
control("/sandbox/refund-complete", {"out_refund_no": refund_no})
refunded = wait_for("REFUND.SUCCESS", "out_refund_no", refund_no)
assert refunded["refund_status"] == "SUCCESS" and refunded["amount"]["refund"] == 40, refunded
code, message = wxpay.query_refund(out_refund_no=refund_no)
assert json.loads(message)["status"] == "SUCCESS", message

# Today's trade bill: the link, the file, its SHA-1, gunzipped.
today = datetime.datetime.now(datetime.timezone(datetime.timedelta(hours=8))).strftime("%Y-%m-%d")
code, message = wxpay.trade_bill(bill_date=today, bill_type="ALL", tar_type="GZIP")
expect("trade bill", code, 200)
link = json.loads(message)
code, content = wxpay.download_bill(link["download_url"])
expect("bill download", code, 200)
assert hashlib.sha1(content).hexdigest() == link["hash_value"], "the bill's SHA-1"
bill = gzip.decompress(content).decode()
assert native_no in bill and refund_no in bill, bill

# A request signed with another key is refused as WeChat refuses it.
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
).decode()
code, message = client(stranger).query(out_trade_no=native_no)
expect("a stranger's request", code, 401)
assert json.loads(message)["code"] == "SIGN_ERROR", message

# Every signature probe the sandbox sent was refused by the SDK's verification.
probes = [n for n in control("/sandbox/notifications") if n["kind"] == "wechat.sign_probe"]
assert probes and all(not p["delivered"] for p in probes), probes
assert len(refused) >= len(probes), (refused, probes)
# Service-provider mode: the merchant as a provider, for its sub-merchant.
partner = client(private_key, partner_mode=True)
partner_no = "PYV3P" + stamp
code, message = partner.pay(
    description="Cola", out_trade_no=partner_no, amount={"total": 120}, sub_mchid=sub_mchid,
)
expect("partner order", code, 200)
assert json.loads(message)["code_url"].startswith("weixin://wxpay/bizpayurl"), message
code, message = partner.query(out_trade_no=partner_no, sub_mchid=sub_mchid)
expect("partner query", code, 200)
answer = json.loads(message)
assert answer["trade_state"] == "NOTPAY" and answer["sub_mchid"] == sub_mchid, answer
assert answer["sp_mchid"] == mchid and "mchid" not in answer, answer
code, message = partner.query(out_trade_no=partner_no, sub_mchid="1999999999")
expect("a sub-merchant not the provider's", code, 400)
assert json.loads(message)["code"] == "INVALID_REQUEST", message
code, _ = wxpay.query(out_trade_no=partner_no)
expect("the direct API on a partner order", code, 404)
control("/sandbox/pay", {"out_trade_no": partner_no})
paid = wait_for("TRANSACTION.SUCCESS", "out_trade_no", partner_no)
assert paid["sp_mchid"] == mchid and paid["sub_mchid"] == sub_mchid, paid
partner_refund = "PYV3PR" + stamp
code, message = partner.refund(
    out_refund_no=partner_refund, amount={"refund": 20, "total": 120, "currency": "CNY"},
    out_trade_no=partner_no, sub_mchid=sub_mchid,
)
expect("partner refund", code, 200)
assert json.loads(message)["status"] == "PROCESSING", message
unpaid_no = "PYV3PC" + stamp
code, _ = partner.pay(description="Tea", out_trade_no=unpaid_no, amount={"total": 80}, sub_mchid=sub_mchid)
expect("partner order to close", code, 200)
code, _ = partner.close(out_trade_no=unpaid_no, sub_mchid=sub_mchid)
expect("partner close", code, 204)
code, message = partner.query(out_trade_no=unpaid_no, sub_mchid=sub_mchid)
assert json.loads(message)["trade_state"] == "CLOSED", message

# Profit sharing for the sub-merchant: an order that freezes its money, the platform added as a
# receiver (its name encrypted by the SDK), a sharing and its query, a return.
shared_no = "PYV3S" + stamp
code, _ = partner.pay(
    description="Juice", out_trade_no=shared_no, amount={"total": 1000}, sub_mchid=sub_mchid,
    settle_info={"profit_sharing": True},
)
expect("partner order with profit sharing", code, 200)
control("/sandbox/pay", {"out_trade_no": shared_no})
paid = wait_for("TRANSACTION.SUCCESS", "out_trade_no", shared_no)
code, message = partner.profitsharing_add_receiver(
    account_type="MERCHANT_ID", account=mchid, relation_type="SERVICE_PROVIDER",
    name="示例平台有限公司", sub_mchid=sub_mchid,
)
expect("add receiver", code, 200)
code, message = partner.profitsharing_order(
    transaction_id=paid["transaction_id"], out_order_no="PYV3SO" + stamp,
    receivers=[{"type": "MERCHANT_ID", "account": mchid, "amount": 60, "description": "fee"}],
    unfreeze_unsplit=False, sub_mchid=sub_mchid,
)
expect("profit sharing order", code, 200)
order = json.loads(message)
assert order["state"] == "FINISHED" and order["receivers"][0]["result"] == "SUCCESS", order
code, message = partner.profitsharing_order_query(
    transaction_id=paid["transaction_id"], out_order_no="PYV3SO" + stamp, sub_mchid=sub_mchid,
)
expect("profit sharing query", code, 200)
assert json.loads(message)["order_id"] == order["order_id"], message
code, message = partner.profitsharing_return(
    out_return_no="PYV3SR" + stamp, return_mchid=mchid, amount=60, description="refund",
    out_order_no="PYV3SO" + stamp, sub_mchid=sub_mchid,
)
expect("profit sharing return", code, 200)
assert json.loads(message)["result"] == "SUCCESS", message
ledger = control("/sandbox/ledgers")[sub_mchid]
assert ledger["shared_out"] == 60 and ledger["returned_in"] == 60, ledger

print("wechatpayv3: native/jsapi orders, query, close, refund, bill, notifications and probes, "
      "and in service-provider mode orders, refunds and profit sharing: ok")
