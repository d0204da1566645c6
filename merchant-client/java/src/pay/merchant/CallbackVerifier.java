package pay.merchant;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.List;

/**
 * Verifies the platform's callbacks ({@code X-Pay-Signature: t=…,v1=…[,v1=…]}): the timestamp
 * within the tolerance (300 s by default) and any {@code v1} made with any secret held (the
 * current one and, during a rotation, the previous one), compared in constant time. Deduping by
 * the event's {@code id} is the merchant's: record an event handled only once handled.
 */
public final class CallbackVerifier {
    private final List<String> secrets = new ArrayList<>();
    private long toleranceSeconds = 300;

    /** A verifier holding {@code secret}. */
    public CallbackVerifier(String secret) {
        secrets.add(secret);
    }

    /** Also accepts callbacks signed with {@code secret} (the previous one, during a rotation). */
    public CallbackVerifier alsoAccept(String secret) {
        secrets.add(secret);
        return this;
    }

    /** How far the callback's timestamp may be from the clock. */
    public CallbackVerifier tolerance(long seconds) {
        toleranceSeconds = seconds;
        return this;
    }

    /** Why a callback was refused. */
    public static final class Refused extends Exception {
        private static final long serialVersionUID = 1L;

        Refused(String why) {
            super(why);
        }
    }

    /** Verifies {@code header} over {@code body} now. */
    public void verify(String header, byte[] body) throws Refused {
        verify(header, body, System.currentTimeMillis() / 1000);
    }

    /** Verifies {@code header} over {@code body} as of {@code now} (Unix seconds). */
    public void verify(String header, byte[] body, long now) throws Refused {
        if (header == null || header.isEmpty()) {
            throw new Refused("no X-Pay-Signature");
        }
        Long timestamp = null;
        List<String> signatures = new ArrayList<>();
        for (String part : header.split(",")) {
            int eq = part.indexOf('=');
            if (eq < 0) {
                throw new Refused("malformed X-Pay-Signature");
            }
            String key = part.substring(0, eq).trim();
            String value = part.substring(eq + 1).trim();
            if (key.equals("t")) {
                try {
                    timestamp = Long.parseLong(value);
                } catch (NumberFormatException e) {
                    throw new Refused("malformed timestamp");
                }
            } else if (key.equals("v1")) {
                signatures.add(value.toLowerCase(java.util.Locale.ROOT));
            }
        }
        if (timestamp == null || signatures.isEmpty()) {
            throw new Refused("X-Pay-Signature needs t= and v1=");
        }
        if (Math.abs(now - timestamp) > toleranceSeconds) {
            throw new Refused("stale timestamp: " + (now - timestamp) + " s from the clock");
        }
        boolean ok = false;
        for (String secret : secrets) {
            byte[] expected = Signing.callbackV1(secret, timestamp, body).getBytes(StandardCharsets.US_ASCII);
            for (String received : signatures) {
                ok |= MessageDigest.isEqual(expected, received.getBytes(StandardCharsets.US_ASCII));
            }
        }
        if (!ok) {
            throw new Refused("the signature does not match");
        }
    }
}
