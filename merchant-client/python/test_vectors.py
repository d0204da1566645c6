"""The scheme's published vectors (testdata/vectors.properties) and callback verification."""

import os
import unittest

import pay_merchant as pm

HERE = os.path.dirname(os.path.abspath(__file__))


def load_vectors():
    vectors = {}
    with open(os.path.join(HERE, "..", "testdata", "vectors.properties"), encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                key, _, value = line.partition("=")
                vectors[key.strip()] = value
    return vectors


V = load_vectors()


class Vectors(unittest.TestCase):
    def test_request_signature(self):
        body = V["request.body"].encode()
        text = pm.canonical(V["request.method"], V["request.path"], V["request.query"],
                            int(V["request.timestamp"]), V["request.nonce"], body, V["request.salt"])
        self.assertIn("\n" + V["request.canonical_query"] + "\n", text)
        self.assertIn(V["request.body_sha256"], text)
        self.assertEqual(
            pm.sign_request(V["request.method"], V["request.path"], V["request.query"],
                            int(V["request.timestamp"]), V["request.nonce"], body,
                            V["request.secret"], V["request.salt"]),
            V["request.signature"])

    def test_callback_and_rotation(self):
        body, ts = V["callback.body"].encode(), int(V["callback.timestamp"])
        old, new = V["callback.secret"], V["rotation.new_secret"]
        self.assertEqual(pm.callback_v1(old, ts, body), V["callback.v1"])
        self.assertEqual(f"t={ts},v1={pm.callback_v1(new, ts, body)},v1={pm.callback_v1(old, ts, body)}",
                         V["rotation.header"])
        single = f"t={ts},v1={V['callback.v1']}"
        pm.CallbackVerifier(old).verify(single, body, now=ts + 10)
        pm.CallbackVerifier(new).verify(V["rotation.header"], body, now=ts)
        pm.CallbackVerifier(old).verify(V["rotation.header"], body, now=ts)
        pm.CallbackVerifier("other", old).verify(single, body, now=ts)

    def test_refusals(self):
        body, ts = V["callback.body"].encode(), int(V["callback.timestamp"])
        single = f"t={ts},v1={V['callback.v1']}"
        verifier = pm.CallbackVerifier(V["callback.secret"])
        for header, data, now in [
            (single, b'{"id":"evt_2"}', ts),
            (single, body, ts + 301),
            (f"t={ts}", body, ts),
            ("", body, ts),
            ("garbage", body, ts),
        ]:
            with self.assertRaises(pm.CallbackRefused):
                verifier.verify(header, data, now=now)
        with self.assertRaises(pm.CallbackRefused):
            pm.CallbackVerifier("whsec_other").verify(single, body, now=ts)

    def test_secrets_never_print(self):
        shown = repr(pm.MerchantClient("app", "the-secret", "the-salt")) + repr(pm.CallbackVerifier("s3cret"))
        for secret in ["the-secret", "the-salt", "s3cret"]:
            self.assertNotIn(secret, shown)


if __name__ == "__main__":
    unittest.main()
