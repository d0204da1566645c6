//! The binaries as an operator runs them (`vending-server`, `pay-platform`), against a gateway
//! emulator in this process: demo mode says so first and takes test money; live mode takes none,
//! offers only what is configured, refuses half a configuration at start-up, and refunds through
//! a gateway that requires the merchant certificate (trusted through `SSL_CERT_FILE`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wechat_sandbox::Sandbox;
use wechat_sandbox::tls::GatewayPki;

const ADMIN_TOKEN: &str = "binary-test-admin-token-0123456789abcdef";

fn scratch(name: &str) -> PathBuf {
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).unwrap();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let dir = std::env::temp_dir().join(format!("{name}-{hex}"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A valid unified social credit code.
fn credit_code() -> String {
    let first = "91350100M000100Y4";
    let check = examples::platform::routes::admin::credit_code_check_char(first).unwrap();
    format!("{first}{check}")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A server process; killed when dropped.
struct Server {
    child: Child,
    url: String,
    /// The first line it printed.
    first_line: String,
    stderr: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How a start ended: serving, or exited with its status and what it said on stderr.
enum Started {
    Serving(Server),
    Exited(Option<i32>, String),
}

/// Runs `bin` in a fresh directory with only `env` (nothing inherited but `PATH`) and waits
/// until it listens or exits.
fn start(bin: &str, env: &[(&str, String)]) -> Started {
    let dir = scratch("bin-test");
    let port = free_port();
    let stderr = dir.join("stderr.log");
    let mut child = Command::new(bin)
        .current_dir(&dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("LISTEN", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "warn")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        // Keeps reading to the end even when nobody listens any more: a closed pipe would make
        // the server's next line fail.
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut first_line = None;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Started::Exited(status.code(), std::fs::read_to_string(&stderr).unwrap());
        }
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => {
                let listening = line.contains("listening on");
                first_line.get_or_insert(line.clone());
                if listening {
                    return Started::Serving(Server {
                        child,
                        url: format!("http://127.0.0.1:{port}"),
                        first_line: first_line.unwrap_or_default(),
                        stderr,
                    });
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        assert!(
            Instant::now() < deadline,
            "{bin} neither listened nor exited"
        );
    }
}

fn serving(bin: &str, env: &[(&str, String)]) -> Server {
    match start(bin, env) {
        Started::Serving(s) => s,
        Started::Exited(code, stderr) => panic!("{bin} exited ({code:?}): {stderr}"),
    }
}

/// The start-up error of `bin` with `env`; fails if it started.
fn refused(bin: &str, env: &[(&str, String)]) -> String {
    match start(bin, env) {
        Started::Serving(s) => panic!("{bin} started with {env:?} ({})", s.first_line),
        Started::Exited(code, stderr) => {
            assert_eq!(code, Some(2), "{stderr}");
            stderr
        }
    }
}

const VENDING: &str = env!("CARGO_BIN_EXE_vending-server");
const PLATFORM: &str = env!("CARGO_BIN_EXE_pay-platform");

/// A gateway emulator with one random merchant, over HTTPS (client certificates from `pki`'s
/// CA) when `pki` is given.
async fn gateway(pki: Option<&GatewayPki>) -> Sandbox {
    // Refunds complete when the test says so (the builder's default).
    let builder = Sandbox::builder();
    match pki {
        Some(p) => builder.tls(p.acceptor().unwrap()),
        None => builder,
    }
    .start()
    .await
    .unwrap()
}

/// WeChat Pay credentials of the gateway's merchant, pointed at it.
fn wechat_env(g: &Sandbox) -> Vec<(&'static str, String)> {
    let m = &g.config().merchants[0];
    vec![
        ("WECHAT_APP_ID", m.app_id.clone()),
        ("WECHAT_MCH_ID", m.mch_id.clone()),
        ("WECHAT_API_KEY", m.api_key.expose().to_owned()),
        ("WECHAT_PAY_BASE_URL", g.base_url().to_owned()),
    ]
}

fn http(ca_pem: Option<&str>) -> reqwest::Client {
    let mut b = reqwest::Client::builder();
    if let Some(ca) = ca_pem {
        b = b.tls_certs_merge(reqwest::Certificate::from_pem_bundle(ca.as_bytes()).unwrap());
    }
    b.build().unwrap()
}

async fn call(c: &reqwest::Client, method: &str, url: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = c.request(method.parse().unwrap(), url);
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn wait_for_status(c: &reqwest::Client, server: &Server, order_no: &str, status: &str) {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let (_, order) = call(
            c,
            "GET",
            &format!("{}/api/orders/{order_no}", server.url),
            None,
        )
        .await;
        if order["status"] == status {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "order {order_no} is {} not {status}; server said: {}",
            order["status"],
            std::fs::read_to_string(&server.stderr).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn channel_ids(channels: &Value) -> Vec<String> {
    channels["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn vending_server_demo_says_so_first_and_takes_test_money() {
    let server = serving(VENDING, &[]);
    assert!(
        server.first_line.starts_with("DEMO MODE: test money only"),
        "{}",
        server.first_line
    );
    let c = http(None);
    let (_, channels) = call(&c, "GET", &format!("{}/api/channels", server.url), None).await;
    assert_eq!(
        channels_ids_sorted(&channels),
        ["alipay", "sandbox", "wechat", "wechat_mini"]
    );
    let (status, order) = call(
        &c,
        "POST",
        &format!("{}/api/orders", server.url),
        Some(json!({"inner_code": "VM0001", "sku_id": 1, "channel": "sandbox"})),
    )
    .await;
    assert_eq!(status, 201, "{order}");
    let no = order["order_no"].as_str().unwrap();
    let (status, _) = call(
        &c,
        "POST",
        &format!("{}/api/orders/{no}/sandbox-pay", server.url),
        None,
    )
    .await;
    assert_eq!(status, 200);
}

fn channels_ids_sorted(channels: &Value) -> Vec<String> {
    let mut ids = channel_ids(channels);
    ids.sort();
    ids
}

#[tokio::test]
async fn vending_server_live_takes_no_test_money_and_refuses_half_a_configuration() {
    let g = gateway(None).await;
    let mut env = wechat_env(&g);
    env.push(("SIMULATE_MACHINES", "true".into()));
    let server = serving(VENDING, &env);
    assert!(
        server.first_line.starts_with("LIVE MODE"),
        "{}",
        server.first_line
    );
    let c = http(None);
    let (_, channels) = call(&c, "GET", &format!("{}/api/channels", server.url), None).await;
    assert_eq!(channels["mode"], "live");
    assert_eq!(channel_ids(&channels), ["wechat"]);
    for (asked, code) in [
        (json!({"method": "sandbox"}), "METHOD_INVALID"),
        (json!({"channel": "sandbox"}), "CHANNEL_UNAVAILABLE"),
        (json!({"channel": "alipay"}), "CHANNEL_UNAVAILABLE"),
    ] {
        let mut body = json!({"inner_code": "VM0001", "sku_id": 1});
        body.as_object_mut()
            .unwrap()
            .extend(asked.as_object().unwrap().clone());
        let (status, answer) = call(
            &c,
            "POST",
            &format!("{}/api/orders", server.url),
            Some(body),
        )
        .await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (422, Some(code)),
            "{asked}: {answer}"
        );
    }
    let (status, _) = call(
        &c,
        "POST",
        &format!("{}/api/orders/V1/sandbox-pay", server.url),
        None,
    )
    .await;
    assert_eq!(status, 404);
    drop(server);

    let without = |name: &str| -> Vec<(&'static str, String)> {
        let mut e = env.clone();
        e.retain(|(k, _)| *k != name);
        e
    };
    assert!(refused(VENDING, &without("WECHAT_API_KEY")).contains("WECHAT_API_KEY"));
    assert!(refused(VENDING, &without("WECHAT_APP_ID")).contains("WECHAT_APP_ID"));
    assert!(refused(VENDING, &without("SIMULATE_MACHINES")).contains("MQTT_URL"));
    let mut half_alipay = env.clone();
    half_alipay.push(("ALIPAY_APP_ID", "2021000000000001".into()));
    assert!(refused(VENDING, &half_alipay).contains("ALIPAY_PUBLIC_KEY"));
    // WeChat's own https gateway without the merchant certificate: refunds would be impossible.
    let e = refused(VENDING, &without("WECHAT_PAY_BASE_URL"));
    assert!(
        e.contains("WECHAT_CERT_P12") && e.contains("WECHAT_CERT_PEM"),
        "{e}"
    );
    g.shutdown().await;
}

/// A failed vend is refunded end to end through a gateway that requires the merchant
/// certificate: the server trusts the gateway through `SSL_CERT_FILE` and presents
/// `apiclient_cert.p12`; without the certificate it does not start.
#[tokio::test]
async fn vending_server_refunds_through_a_mutual_tls_gateway() {
    let pki = GatewayPki::generate("merchant", &[]).unwrap();
    let g = gateway(Some(&pki)).await;
    assert!(g.base_url().starts_with("https://"));
    // The files as WeChat hands them out: the .p12's password is the merchant id.
    let mch_id = g.config().merchants[0].mch_id.clone();
    let files = pki.write_to(&scratch("mtls"), &mch_id).unwrap();

    let mut env = wechat_env(&g);
    env.push(("SIMULATE_MACHINES", "true".into()));
    env.push(("SIM_FAIL_RATE", "1".into()));
    env.push(("SIM_LATENCY_MS", "10".into()));
    env.push(("SSL_CERT_FILE", files.ca.display().to_string()));
    let e = refused(VENDING, &env);
    assert!(e.contains("WECHAT_CERT_P12"), "{e}");

    env.push(("WECHAT_CERT_P12", files.merchant_p12.display().to_string()));
    let server = serving(VENDING, &env);
    let c = http(None);
    let (status, order) = call(
        &c,
        "POST",
        &format!("{}/api/orders", server.url),
        Some(json!({"inner_code": "VM0001", "sku_id": 1, "channel": "wechat"})),
    )
    .await;
    assert_eq!(status, 201, "{order}");
    let no = order["order_no"].as_str().unwrap().to_owned();
    let gateway_http = http(Some(&pki.ca_pem));
    let (status, paid) = call(
        &gateway_http,
        "POST",
        &format!("{}/sandbox/pay", g.base_url()),
        Some(json!({"out_trade_no": no})),
    )
    .await;
    assert_eq!(status, 200, "{paid}");
    // Paid, the machine fails, the money goes back: the refund crossed mutual TLS.
    wait_for_status(&c, &server, &no, "VEND_FAILED").await;
    let (status, done) = call(
        &gateway_http,
        "POST",
        &format!("{}/sandbox/refund-complete", g.base_url()),
        Some(json!({"out_refund_no": format!("R{no}")})),
    )
    .await;
    assert_eq!(status, 200, "{done}");
    wait_for_status(&c, &server, &no, "REFUNDED").await;
    drop(server);
    g.shutdown().await;
}

#[tokio::test]
async fn pay_platform_admin_token_rules_and_modes() {
    for (token, said) in [
        ("", "ADMIN_TOKEN must be at least 32 characters (it has 0)"),
        (
            "dev-admin-token",
            "ADMIN_TOKEN must be at least 32 characters (it has 15)",
        ),
    ] {
        let e = refused(PLATFORM, &[("ADMIN_TOKEN", token.to_owned())]);
        assert!(e.contains(said), "{e}");
    }
    let demo = serving(PLATFORM, &[("ADMIN_TOKEN", ADMIN_TOKEN.to_owned())]);
    assert!(
        demo.first_line.starts_with("DEMO MODE: test money only"),
        "{}",
        demo.first_line
    );
    let c = http(None);
    for auth in ["", "Bearer ", "Bearer wrong"] {
        let status = c
            .get(format!("{}/admin/dead-letters", demo.url))
            .header("authorization", auth)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status.as_u16(), 401, "{auth:?}");
    }
    drop(demo);

    let g = gateway(None).await;
    let env = wechat_env(&g);
    assert!(refused(PLATFORM, &env).contains("live mode needs ADMIN_TOKEN"));
    let mut partial = env.clone();
    partial.retain(|(k, _)| *k != "WECHAT_MCH_ID");
    partial.push(("ADMIN_TOKEN", ADMIN_TOKEN.to_owned()));
    assert!(refused(PLATFORM, &partial).contains("WECHAT_MCH_ID"));

    let mut live_env = env.clone();
    live_env.push(("ADMIN_TOKEN", ADMIN_TOKEN.to_owned()));
    // The merchant stand-in is on this machine: staging says so.
    live_env.push(("CALLBACK_ALLOW_PRIVATE", "true".into()));
    let live = serving(PLATFORM, &live_env);
    assert!(
        live.first_line.starts_with("LIVE MODE"),
        "{}",
        live.first_line
    );
    let (status, merchant) = call(
        &c,
        "POST",
        &format!("{}/admin/merchants", live.url),
        Some(json!({"name": "Shop", "credit_code": credit_code(), "notify_url": "http://127.0.0.1:9/cb"})),
    )
    .await;
    // The admin call needs the token: without it 401, with it the merchant.
    assert_eq!(status, 401, "{merchant}");
    let registered = c
        .post(format!("{}/admin/merchants", live.url))
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", "application/json")
        .body(json!({"name": "Shop", "credit_code": credit_code(), "notify_url": "http://127.0.0.1:9/cb"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status().as_u16(), 201);
    let merchant: Value = serde_json::from_str(&registered.text().await.unwrap()).unwrap();
    let client = merchant_client::Client::builder(
        merchant["app_id"].as_str().unwrap(),
        merchant_client::Secret::new(merchant["secret"].as_str().unwrap()),
        merchant_client::Secret::new(merchant["salt"].as_str().unwrap()),
    )
    .base_url(live.url.clone())
    .build()
    .unwrap();
    let refused_sandbox = client
        .create_payment(
            &merchant_client::CreatePayment::new("bin-1", 100, "Cola").method("sandbox"),
        )
        .await
        .unwrap_err();
    assert_eq!(refused_sandbox.code(), Some("METHOD_INVALID"));
    let created = client
        .create_payment(&merchant_client::CreatePayment::new("bin-1", 100, "Cola"))
        .await
        .unwrap();
    let page = c
        .get(&created.cashier_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("WeChat Pay"), "{page}");
    assert!(!page.to_lowercase().contains("sandbox"), "{page}");
    let (status, _) = call(
        &c,
        "POST",
        &format!("{}/cashier/{}/sandbox-pay", live.url, created.payment_token),
        None,
    )
    .await;
    assert_eq!(status, 404);
    drop(live);
    g.shutdown().await;
}
