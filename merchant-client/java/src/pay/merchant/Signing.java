package pay.merchant;

import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * The pay platform's open-API signing scheme (specified in the merchant-client crate's
 * {@code signing} module; test vectors in {@code testdata/vectors.properties}).
 *
 * <pre>
 * canonical   = METHOD \n PATH \n sorted(QUERY pairs) joined by & \n TIMESTAMP \n NONCE \n
 *               hex(SHA-256(BODY)) \n SALT
 * X-Signature = hex(HMAC-SHA256(SECRET, canonical))
 * callbacks:    X-Pay-Signature: t=TIMESTAMP,v1=hex(HMAC-SHA256(SECRET, TIMESTAMP + "." + BODY))[,v1=…]
 * </pre>
 */
public final class Signing {
    private static final SecureRandom RANDOM = new SecureRandom();
    private static final char[] HEX = "0123456789abcdef".toCharArray();

    private Signing() {}

    /** Lower-case hex. */
    public static String hex(byte[] bytes) {
        char[] out = new char[bytes.length * 2];
        for (int i = 0; i < bytes.length; i++) {
            out[2 * i] = HEX[(bytes[i] >> 4) & 15];
            out[2 * i + 1] = HEX[bytes[i] & 15];
        }
        return new String(out);
    }

    /** SHA-256 of {@code data}, in hex. */
    public static String sha256Hex(byte[] data) {
        try {
            return hex(MessageDigest.getInstance("SHA-256").digest(data));
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("SHA-256 is missing from this JDK", e);
        }
    }

    /** HMAC-SHA256 of {@code data} keyed with {@code secret}. */
    public static byte[] hmac(String secret, byte[] data) {
        try {
            Mac mac = Mac.getInstance("HmacSHA256");
            mac.init(new SecretKeySpec(secret.getBytes(StandardCharsets.UTF_8), "HmacSHA256"));
            return mac.doFinal(data);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("HmacSHA256 is missing from this JDK", e);
        }
    }

    /** The raw query's {@code k=v} pairs sorted by byte order, joined by {@code &}. */
    public static String canonicalQuery(String query) {
        if (query == null || query.isEmpty()) {
            return "";
        }
        List<String> pairs = new ArrayList<>();
        for (String pair : query.split("&")) {
            if (!pair.isEmpty()) {
                pairs.add(pair);
            }
        }
        byte[][] raw = new byte[pairs.size()][];
        for (int i = 0; i < raw.length; i++) {
            raw[i] = pairs.get(i).getBytes(StandardCharsets.UTF_8);
        }
        Arrays.sort(raw, Arrays::compareUnsigned);
        StringBuilder out = new StringBuilder();
        for (byte[] pair : raw) {
            if (out.length() > 0) {
                out.append('&');
            }
            out.append(new String(pair, StandardCharsets.UTF_8));
        }
        return out.toString();
    }

    /** The canonical string of a request. */
    public static String canonical(
            String method, String path, String query, long timestamp, String nonce, byte[] body, String salt) {
        return method.toUpperCase(java.util.Locale.ROOT) + "\n" + path + "\n" + canonicalQuery(query) + "\n"
                + timestamp + "\n" + nonce + "\n" + sha256Hex(body) + "\n" + salt;
    }

    /** The {@code X-Signature} of a request. */
    public static String signRequest(
            String method, String path, String query, long timestamp, String nonce, byte[] body,
            String secret, String salt) {
        String canonical = canonical(method, path, query, timestamp, nonce, body, salt);
        return hex(hmac(secret, canonical.getBytes(StandardCharsets.UTF_8)));
    }

    /** The {@code v1} of a callback body sent at {@code timestamp}. */
    public static String callbackV1(String secret, long timestamp, byte[] body) {
        byte[] prefix = (timestamp + ".").getBytes(StandardCharsets.UTF_8);
        byte[] data = new byte[prefix.length + body.length];
        System.arraycopy(prefix, 0, data, 0, prefix.length);
        System.arraycopy(body, 0, data, prefix.length, body.length);
        return hex(hmac(secret, data));
    }

    /** A fresh nonce: 32 random hex characters. */
    public static String nonce() {
        byte[] bytes = new byte[16];
        RANDOM.nextBytes(bytes);
        return hex(bytes);
    }
}
