package pay.merchant;

import java.io.IOException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;

/**
 * The pay platform's open API for Java merchants: plain JDK (11+), no dependency, usable as is
 * from Spring Boot. Every request is signed ({@link Signing}); POSTs that create something carry
 * an {@code Idempotency-Key} so a retry is answered with the first answer. Bodies are JSON text:
 * build and read them with the JSON library the application already has.
 *
 * <pre>
 * MerchantClient client = MerchantClient.builder(appId, secret, salt).baseUrl("https://pay.example.com").build();
 * MerchantClient.Response created = client.createPayment(
 *     "{\"out_trade_no\":\"A1\",\"amount\":350,\"subject\":\"Cola\",\"method\":\"wechat_native\"}");
 * </pre>
 */
public final class MerchantClient {
    private final String appId;
    private final String secret;
    private final String salt;
    private final String baseUrl;
    private final HttpClient http;
    private final Duration timeout;

    private MerchantClient(Builder b) {
        this.appId = b.appId;
        this.secret = b.secret;
        this.salt = b.salt;
        this.baseUrl = b.baseUrl.replaceAll("/+$", "");
        this.timeout = b.timeout;
        this.http = HttpClient.newBuilder().connectTimeout(b.timeout).build();
    }

    /** A client of merchant {@code appId} with its secret and salt. */
    public static Builder builder(String appId, String secret, String salt) {
        return new Builder(appId, secret, salt);
    }

    /** The client's settings. */
    public static final class Builder {
        private final String appId;
        private final String secret;
        private final String salt;
        private String baseUrl = "http://127.0.0.1:8090";
        private Duration timeout = Duration.ofSeconds(10);

        private Builder(String appId, String secret, String salt) {
            this.appId = appId;
            this.secret = secret;
            this.salt = salt;
        }

        /** The platform. */
        public Builder baseUrl(String url) {
            this.baseUrl = url;
            return this;
        }

        /** Each request's time limit. */
        public Builder timeout(Duration timeout) {
            this.timeout = timeout;
            return this;
        }

        /** The client. */
        public MerchantClient build() {
            return new MerchantClient(this);
        }
    }

    /** An answer: the HTTP status and the JSON body. */
    public static final class Response {
        /** The HTTP status. */
        public final int status;
        /** The body (JSON: the resource, or {@code {code, message}}). */
        public final String body;

        Response(int status, String body) {
            this.status = status;
            this.body = body;
        }

        /** Whether the platform did it (2xx). */
        public boolean ok() {
            return status >= 200 && status < 300;
        }

        @Override
        public String toString() {
            return status + " " + body;
        }
    }

    /** Never shows the secret or the salt. */
    @Override
    public String toString() {
        return "MerchantClient{appId=" + appId + ", baseUrl=" + baseUrl + ", secret=<redacted>}";
    }

    /**
     * A signed request: {@code pathAndQuery} as sent ({@code /v1/payments/A1}), {@code body} JSON
     * or {@code null}, {@code idempotencyKey} or {@code null}.
     */
    public Response request(String method, String pathAndQuery, String body, String idempotencyKey)
            throws IOException, InterruptedException {
        byte[] bytes = body == null ? new byte[0] : body.getBytes(StandardCharsets.UTF_8);
        int q = pathAndQuery.indexOf('?');
        String path = q < 0 ? pathAndQuery : pathAndQuery.substring(0, q);
        String query = q < 0 ? null : pathAndQuery.substring(q + 1);
        long timestamp = System.currentTimeMillis() / 1000;
        String nonce = Signing.nonce();
        HttpRequest.Builder req = HttpRequest.newBuilder(URI.create(baseUrl + pathAndQuery))
                .timeout(timeout)
                .header("X-App-Id", appId)
                .header("X-Timestamp", Long.toString(timestamp))
                .header("X-Nonce", nonce)
                .header("X-Signature", Signing.signRequest(method, path, query, timestamp, nonce, bytes, secret, salt));
        if (idempotencyKey != null) {
            req.header("Idempotency-Key", idempotencyKey);
        }
        if (bytes.length > 0) {
            req.header("Content-Type", "application/json");
            req.method(method, HttpRequest.BodyPublishers.ofByteArray(bytes));
        } else {
            req.method(method, HttpRequest.BodyPublishers.noBody());
        }
        HttpResponse<String> resp = http.send(req.build(), HttpResponse.BodyHandlers.ofString(StandardCharsets.UTF_8));
        return new Response(resp.statusCode(), resp.body());
    }

    private static String segment(String s) {
        return URLEncoder.encode(s, StandardCharsets.UTF_8).replace("+", "%20");
    }

    /** {@code POST /v1/payments} with a fresh idempotency key. */
    public Response createPayment(String json) throws IOException, InterruptedException {
        return request("POST", "/v1/payments", json, Signing.nonce());
    }

    /** {@code GET /v1/payments/{outTradeNo}}. */
    public Response getPayment(String outTradeNo) throws IOException, InterruptedException {
        return request("GET", "/v1/payments/" + segment(outTradeNo), null, null);
    }

    /** {@code POST /v1/payments/{outTradeNo}/close}. */
    public Response closePayment(String outTradeNo) throws IOException, InterruptedException {
        return request("POST", "/v1/payments/" + segment(outTradeNo) + "/close", null, Signing.nonce());
    }

    /** {@code POST /v1/refunds} (idempotent by its {@code out_refund_no}). */
    public Response createRefund(String json) throws IOException, InterruptedException {
        return request("POST", "/v1/refunds", json, Signing.nonce());
    }

    /** {@code GET /v1/refunds/{outRefundNo}}. */
    public Response getRefund(String outRefundNo) throws IOException, InterruptedException {
        return request("GET", "/v1/refunds/" + segment(outRefundNo), null, null);
    }
}
