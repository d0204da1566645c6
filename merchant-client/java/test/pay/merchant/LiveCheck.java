package pay.merchant;

import com.sun.net.httpserver.HttpServer;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Against a running pay-platform (demo mode; PLATFORM_URL, ADMIN_TOKEN): register, create a
 * payment with the Java client, pay it at the sandbox cashier, receive its callback and verify
 * it, refund part of it; a forged callback is refused.
 */
public final class LiveCheck {
    static String field(String json, String name) {
        Matcher m = Pattern.compile("\"" + name + "\"\\s*:\\s*\"([^\"]*)\"").matcher(json);
        if (!m.find()) {
            throw new IllegalStateException("no " + name + " in " + json);
        }
        return m.group(1);
    }

    static void fail(String why) {
        System.err.println("java live check: " + why);
        System.exit(1);
    }

    public static void main(String[] args) throws Exception {
        String platform = System.getenv().getOrDefault("PLATFORM_URL", "http://127.0.0.1:8090");
        String admin = System.getenv("ADMIN_TOKEN");
        BlockingQueue<String[]> received = new ArrayBlockingQueue<>(16);
        HttpServer server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        server.createContext("/pay-callback", exchange -> {
            try (InputStream in = exchange.getRequestBody()) {
                String body = new String(in.readAllBytes(), StandardCharsets.UTF_8);
                received.add(new String[] {exchange.getRequestHeaders().getFirst("X-Pay-Signature"), body});
            }
            exchange.sendResponseHeaders(200, -1);
            exchange.close();
        });
        server.start();
        try {
            String notify = "http://127.0.0.1:" + server.getAddress().getPort() + "/pay-callback";
            HttpClient http = HttpClient.newHttpClient();
            String code = "91350100M" + String.format("%08d", System.nanoTime() % 100_000_000L);
            HttpResponse<String> reg = http.send(HttpRequest.newBuilder(URI.create(platform + "/admin/merchants"))
                    .header("Authorization", "Bearer " + admin)
                    .header("Content-Type", "application/json")
                    .POST(HttpRequest.BodyPublishers.ofString("{\"name\":\"Java Shop\",\"credit_code\":\""
                            + CreditCode.withCheckDigit(code) + "\",\"notify_url\":\"" + notify + "\"}"))
                    .build(), HttpResponse.BodyHandlers.ofString());
            if (reg.statusCode() != 201 && reg.statusCode() != 200) {
                fail("registration: " + reg.statusCode() + " " + reg.body());
            }
            String appId = field(reg.body(), "app_id");
            String secret = field(reg.body(), "secret");
            MerchantClient client = MerchantClient.builder(appId, secret, field(reg.body(), "salt"))
                    .baseUrl(platform).build();

            MerchantClient.Response created = client.createPayment(
                    "{\"out_trade_no\":\"java-1\",\"amount\":1250,\"subject\":\"Java cola\",\"method\":\"sandbox\"}");
            if (!created.ok()) {
                fail("create: " + created);
            }
            String token = field(created.body, "payment_token");
            http.send(HttpRequest.newBuilder(URI.create(platform + "/cashier/" + token + "/sandbox-pay"))
                    .POST(HttpRequest.BodyPublishers.noBody()).build(), HttpResponse.BodyHandlers.ofString());
            String[] callback = received.poll(30, TimeUnit.SECONDS);
            if (callback == null) {
                fail("no callback within 30 s");
            }
            new CallbackVerifier(secret).verify(callback[0], callback[1].getBytes(StandardCharsets.UTF_8));
            if (!field(callback[1], "type").equals("payment.succeeded") || !callback[1].contains("\"java-1\"")) {
                fail("unexpected callback " + callback[1]);
            }
            System.out.println("java: callback " + field(callback[1], "type") + " verified");
            try {
                new CallbackVerifier(secret).verify(callback[0], callback[1].replace("1250", "1").getBytes(StandardCharsets.UTF_8));
                fail("a forged callback was accepted");
            } catch (CallbackVerifier.Refused expected) {
                System.out.println("java: a forged callback refused (" + expected.getMessage() + ")");
            }
            MerchantClient.Response paid = client.getPayment("java-1");
            if (!field(paid.body, "status").equals("PAID")) {
                fail("payment: " + paid);
            }
            MerchantClient.Response refund = client.createRefund(
                    "{\"out_trade_no\":\"java-1\",\"out_refund_no\":\"java-1-r\",\"amount\":250}");
            if (!refund.ok()) {
                fail("refund: " + refund);
            }
            MerchantClient.Response unsigned = MerchantClient.builder(appId, "not-the-secret", "x")
                    .baseUrl(platform).build().getPayment("java-1");
            if (unsigned.status != 401) {
                fail("a wrong secret was answered " + unsigned);
            }
            System.out.println("java live check: ok");
        } finally {
            server.stop(0);
        }
    }
}
