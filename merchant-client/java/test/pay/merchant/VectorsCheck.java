package pay.merchant;

import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.Properties;

/** The scheme's published vectors ({@code testdata/vectors.properties}, the first argument). */
public final class VectorsCheck {
    private static int failures = 0;

    private static void expect(String what, Object got, Object want) {
        if (!got.equals(want)) {
            System.err.println("FAIL " + what + ": got " + got + ", want " + want);
            failures++;
        } else {
            System.out.println("ok   " + what);
        }
    }

    private static void refused(String what, CallbackVerifier v, String header, byte[] body, long now) {
        try {
            v.verify(header, body, now);
            System.err.println("FAIL " + what + ": accepted");
            failures++;
        } catch (CallbackVerifier.Refused e) {
            System.out.println("ok   " + what + " (" + e.getMessage() + ")");
        }
    }

    public static void main(String[] args) throws IOException {
        Properties v = new Properties();
        try (InputStream in = new FileInputStream(args[0])) {
            v.load(new java.io.InputStreamReader(in, StandardCharsets.UTF_8));
        }
        byte[] body = v.getProperty("request.body").getBytes(StandardCharsets.UTF_8);
        long ts = Long.parseLong(v.getProperty("request.timestamp"));
        expect("canonical query", Signing.canonicalQuery(v.getProperty("request.query")),
                v.getProperty("request.canonical_query"));
        expect("body sha256", Signing.sha256Hex(body), v.getProperty("request.body_sha256"));
        expect("request signature",
                Signing.signRequest(v.getProperty("request.method"), v.getProperty("request.path"),
                        v.getProperty("request.query"), ts, v.getProperty("request.nonce"), body,
                        v.getProperty("request.secret"), v.getProperty("request.salt")),
                v.getProperty("request.signature"));

        byte[] cb = v.getProperty("callback.body").getBytes(StandardCharsets.UTF_8);
        long cts = Long.parseLong(v.getProperty("callback.timestamp"));
        String secret = v.getProperty("callback.secret");
        expect("callback v1", Signing.callbackV1(secret, cts, cb), v.getProperty("callback.v1"));
        String rotation = v.getProperty("rotation.header");
        String newSecret = v.getProperty("rotation.new_secret");
        expect("rotation header",
                "t=" + cts + ",v1=" + Signing.callbackV1(newSecret, cts, cb) + ",v1=" + Signing.callbackV1(secret, cts, cb),
                rotation);

        // Verification: either secret of a rotation, within the tolerance; nothing else.
        String single = "t=" + cts + ",v1=" + v.getProperty("callback.v1");
        try {
            new CallbackVerifier(secret).verify(single, cb, cts + 10);
            new CallbackVerifier(newSecret).verify(rotation, cb, cts);
            new CallbackVerifier(secret).verify(rotation, cb, cts);
            new CallbackVerifier("other").alsoAccept(secret).verify(single, cb, cts);
            System.out.println("ok   callbacks verified (one secret, a rotation, a previous secret)");
        } catch (CallbackVerifier.Refused e) {
            System.err.println("FAIL a valid callback refused: " + e.getMessage());
            failures++;
        }
        CallbackVerifier verifier = new CallbackVerifier(secret);
        refused("a tampered body", verifier, single, "{\"id\":\"evt_2\"}".getBytes(StandardCharsets.UTF_8), cts);
        refused("a stale timestamp", verifier, single, cb, cts + 301);
        refused("another secret", new CallbackVerifier("whsec_other"), single, cb, cts);
        refused("no v1", verifier, "t=" + cts, cb, cts);
        refused("no header", verifier, "", cb, cts);
        String shown = MerchantClient.builder("app", "the-secret", "the-salt").build().toString();
        expect("toString hides the secret", shown.contains("the-secret") || shown.contains("the-salt"), false);
        if (failures > 0) {
            System.exit(1);
        }
        System.out.println("java vectors: ok");
    }
}
