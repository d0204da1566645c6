"""The pay platform's open API for Python merchants: standard library only (3.8+).

Every request is signed (the scheme is specified in the merchant-client crate's ``signing``
module; test vectors in ``testdata/vectors.properties``); POSTs that create something carry an
``Idempotency-Key``, so a retry is answered with the first answer. Callbacks are verified with
:class:`CallbackVerifier` (several secrets during a rotation); dedupe them by the event's ``id``
and record an event handled only once handled.

    client = MerchantClient("app_…", secret, salt, base_url="https://pay.example.com")
    payment = client.create_payment({"out_trade_no": "A1", "amount": 350, "subject": "Cola",
                                     "method": "wechat_native"})
"""

import hashlib
import hmac
import json
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request

__all__ = ["ApiError", "CallbackRefused", "CallbackVerifier", "MerchantClient",
           "callback_v1", "canonical", "sign_request"]


def canonical(method, path, query, timestamp, nonce, body, salt):
    """The canonical string of a request (``body`` as bytes, ``query`` raw or None)."""
    pairs = sorted((p for p in (query or "").split("&") if p), key=lambda p: p.encode())
    return "\n".join([method.upper(), path, "&".join(pairs), str(timestamp), nonce,
                      hashlib.sha256(body).hexdigest(), salt])


def sign_request(method, path, query, timestamp, nonce, body, secret, salt):
    """The ``X-Signature`` of a request."""
    text = canonical(method, path, query, timestamp, nonce, body, salt)
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()


def callback_v1(secret, timestamp, body):
    """The ``v1`` of a callback ``body`` (bytes) sent at ``timestamp``."""
    return hmac.new(secret.encode(), str(timestamp).encode() + b"." + body,
                    hashlib.sha256).hexdigest()


class ApiError(Exception):
    """The platform refused: ``status``, its ``code`` and ``message``."""

    def __init__(self, status, code, message):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


class CallbackRefused(Exception):
    """A callback that is not the platform's (or is stale)."""


class CallbackVerifier:
    """Verifies ``X-Pay-Signature: t=…,v1=…[,v1=…]`` with any secret held, within a tolerance."""

    def __init__(self, secret, *previous, tolerance=300):
        self._secrets = [secret, *previous]
        self._tolerance = tolerance

    def __repr__(self):
        return f"CallbackVerifier(<{len(self._secrets)} secret(s)>)"

    def verify(self, header, body, now=None):
        """Raises :class:`CallbackRefused` unless ``header`` signs ``body`` (bytes)."""
        if not header:
            raise CallbackRefused("no X-Pay-Signature")
        timestamp, signatures = None, []
        for part in header.split(","):
            key, sep, value = part.partition("=")
            if not sep:
                raise CallbackRefused("malformed X-Pay-Signature")
            key, value = key.strip(), value.strip()
            if key == "t":
                try:
                    timestamp = int(value)
                except ValueError:
                    raise CallbackRefused("malformed timestamp") from None
            elif key == "v1":
                signatures.append(value.lower())
        if timestamp is None or not signatures:
            raise CallbackRefused("X-Pay-Signature needs t= and v1=")
        now = int(time.time()) if now is None else now
        if abs(now - timestamp) > self._tolerance:
            raise CallbackRefused(f"stale timestamp: {now - timestamp} s from the clock")
        ok = False
        for secret in self._secrets:
            expected = callback_v1(secret, timestamp, body)
            for received in signatures:
                ok |= hmac.compare_digest(expected, received)
        if not ok:
            raise CallbackRefused("the signature does not match")


class MerchantClient:
    """A merchant's signed open-API client. ``repr`` never shows the secret or the salt."""

    def __init__(self, app_id, secret, salt, base_url="http://127.0.0.1:8090", timeout=10):
        self.app_id = app_id
        self._secret, self._salt = secret, salt
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def __repr__(self):
        return f"MerchantClient(app_id={self.app_id!r}, base_url={self.base_url!r}, secret=<redacted>)"

    def request(self, method, path_and_query, body=None, idempotency_key=None):
        """A signed request; the decoded JSON answer, or :class:`ApiError`."""
        data = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        path, _, query = path_and_query.partition("?")
        timestamp, nonce = int(time.time()), secrets.token_hex(16)
        headers = {
            "X-App-Id": self.app_id,
            "X-Timestamp": str(timestamp),
            "X-Nonce": nonce,
            "X-Signature": sign_request(method, path, query or None, timestamp, nonce, data,
                                        self._secret, self._salt),
        }
        if data:
            headers["Content-Type"] = "application/json"
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        req = urllib.request.Request(self.base_url + path_and_query, data=data or None,
                                     headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                err = json.loads(raw)
                raise ApiError(e.code, err.get("code", "HTTP_ERROR"), err.get("message", "")) from None
            except ValueError:
                raise ApiError(e.code, "HTTP_ERROR", raw[:200].decode(errors="replace")) from None

    @staticmethod
    def _segment(s):
        return urllib.parse.quote(s, safe="")

    def create_payment(self, payment, idempotency_key=None):
        """``POST /v1/payments`` (a fresh idempotency key unless given)."""
        return self.request("POST", "/v1/payments", payment, idempotency_key or secrets.token_hex(16))

    def get_payment(self, out_trade_no):
        """``GET /v1/payments/{out_trade_no}``."""
        return self.request("GET", f"/v1/payments/{self._segment(out_trade_no)}")

    def close_payment(self, out_trade_no):
        """``POST /v1/payments/{out_trade_no}/close``."""
        return self.request("POST", f"/v1/payments/{self._segment(out_trade_no)}/close",
                            idempotency_key=secrets.token_hex(16))

    def create_refund(self, refund):
        """``POST /v1/refunds`` (idempotent by its ``out_refund_no``)."""
        return self.request("POST", "/v1/refunds", refund, secrets.token_hex(16))

    def get_refund(self, out_refund_no):
        """``GET /v1/refunds/{out_refund_no}``."""
        return self.request("GET", f"/v1/refunds/{self._segment(out_refund_no)}")
