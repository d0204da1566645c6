"""Against a running pay-platform (demo mode; PLATFORM_URL, ADMIN_TOKEN): register, create a
payment with the Python client, pay it at the sandbox cashier, receive its callback and verify
it, refund part of it; a forged callback and a wrong secret are refused."""

import http.server
import json
import os
import queue
import sys
import threading
import time
import urllib.request

import pay_merchant as pm

CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]


def credit_code():
    """A fresh unified social credit code (GB 32100-2015 check character)."""
    first = "91350100M" + f"{time.time_ns() % 100_000_000:08d}"
    total = sum(CHARS.index(c) * w for c, w in zip(first, WEIGHTS))
    return first + CHARS[(31 - total % 31) % 31]


def fail(why):
    print(f"python live check: {why}", file=sys.stderr)
    sys.exit(1)


def main():
    platform = os.environ.get("PLATFORM_URL", "http://127.0.0.1:8090")
    received = queue.Queue()

    class Receive(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            received.put((self.headers.get("X-Pay-Signature", ""), body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receive)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        notify = f"http://127.0.0.1:{server.server_address[1]}/pay-callback"
        req = urllib.request.Request(
            platform + "/admin/merchants",
            data=json.dumps({"name": "Python Shop", "credit_code": credit_code(),
                             "notify_url": notify}).encode(),
            headers={"Authorization": "Bearer " + os.environ["ADMIN_TOKEN"],
                     "Content-Type": "application/json"},
            method="POST")
        with urllib.request.urlopen(req, timeout=10) as resp:
            reg = json.loads(resp.read())
        client = pm.MerchantClient(reg["app_id"], reg["secret"], reg["salt"], base_url=platform)

        created = client.create_payment({"out_trade_no": "py-1", "amount": 1250,
                                         "subject": "Python cola", "method": "sandbox"})
        urllib.request.urlopen(urllib.request.Request(
            f"{platform}/cashier/{created['payment_token']}/sandbox-pay", data=b"", method="POST"),
            timeout=10).read()
        try:
            signature, body = received.get(timeout=30)
        except queue.Empty:
            fail("no callback within 30 s")
        pm.CallbackVerifier(reg["secret"]).verify(signature, body)
        event = json.loads(body)
        if event["type"] != "payment.succeeded" or event["data"]["out_trade_no"] != "py-1":
            fail(f"unexpected callback {event}")
        print(f"python: callback {event['type']} verified")
        try:
            pm.CallbackVerifier(reg["secret"]).verify(signature, body.replace(b"1250", b"1"))
            fail("a forged callback was accepted")
        except pm.CallbackRefused as e:
            print(f"python: a forged callback refused ({e})")
        if client.get_payment("py-1")["status"] != "PAID":
            fail("the payment is not PAID")
        refund = client.create_refund({"out_trade_no": "py-1", "out_refund_no": "py-1-r", "amount": 250})
        print(f"python: refund {refund['out_refund_no']} {refund['status']}")
        try:
            pm.MerchantClient(reg["app_id"], "not-the-secret", "x", base_url=platform).get_payment("py-1")
            fail("a wrong secret was answered")
        except pm.ApiError as e:
            if e.status != 401:
                fail(f"a wrong secret got {e}")
        print("python live check: ok")
    finally:
        server.shutdown()


if __name__ == "__main__":
    main()
