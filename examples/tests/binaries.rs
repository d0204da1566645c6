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
    /// What it printed up to a moment after it listened.
    banner: Vec<String>,
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
    let mut banner = Vec::new();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Started::Exited(status.code(), std::fs::read_to_string(&stderr).unwrap());
        }
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => {
                let listening = line.contains("listening on");
                first_line.get_or_insert(line.clone());
                banner.push(line);
                if listening {
                    // The rest of the banner follows at once.
                    while let Ok(more) = rx.recv_timeout(Duration::from_millis(300)) {
                        banner.push(more);
                    }
                    return Started::Serving(Server {
                        child,
                        url: format!("http://127.0.0.1:{port}"),
                        first_line: first_line.unwrap_or_default(),
                        banner,
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

const APP_ID: &str = "wxbinarytest00001";
const MP_SECRET: &str = "binary-test-mp-secret";

/// A gateway emulator with one merchant whose app is also an Official Account, over HTTPS
/// (client certificates from `pki`'s CA) when `pki` is given.
async fn gateway(pki: Option<&GatewayPki>) -> Sandbox {
    // Refunds complete when the test says so (the builder's default).
    let builder = Sandbox::builder()
        .merchant(
            APP_ID,
            "1900000001",
            wechat_pay::ApiKey::new("binarytestapikey0123456789abcdef"),
        )
        .mp_app(wechat_sandbox::MpApp::new(
            APP_ID,
            wechat_mp::Secret::new(MP_SECRET),
            wechat_mp::Secret::new("binary-mp-token"),
        ));
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

/// [`wechat_env`] with the Official Account (buyers log in with it) and a database in a fresh
/// directory, where the operator's commands added a seller owning the demo machines.
fn live_vending_env(g: &Sandbox) -> Vec<(&'static str, String)> {
    let db = scratch("vending-db").join("vending.db");
    let mut env = wechat_env(g);
    env.push(("WECHAT_APP_SECRET", MP_SECRET.into()));
    env.push(("WECHAT_MP_BASE_URL", g.base_url().to_owned()));
    env.push((
        "DATABASE_URL",
        format!("sqlite://{}?mode=rwc", db.display()),
    ));
    let (ok, out, err) = operator(
        &env,
        &["seller", "add", "operator", "--password-stdin"],
        "operator-password-1\n",
    );
    assert!(ok && out.contains("seller operator added"), "{out}{err}");
    let (ok, _, err) = operator(&env, &["seller", "add", "x", "--password-stdin"], "short\n");
    assert!(!ok && err.contains("login"), "{err}");
    for machine in ["VM0001", "VM0002", "VM0003"] {
        let (ok, out, err) = operator(&env, &["machine", "assign", machine, "operator"], "");
        assert!(ok, "{out}{err}");
    }
    let (ok, out, _) = operator(&env, &["machine", "list"], "");
    assert!(
        ok && out.lines().filter(|l| l.contains("\toperator\t")).count() == 3,
        "{out}"
    );
    env
}

/// Runs an operator's command (`vending-server seller add …`) with `env` and `stdin`: whether it
/// succeeded, its stdout and its stderr.
fn operator(env: &[(&str, String)], args: &[&str], stdin: &str) -> (bool, String, String) {
    use std::io::Write;
    let mut child = Command::new(VENDING)
        .args(args)
        .current_dir(scratch("operator"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A buyer's session through the Official Account's web login, as a browser goes through it.
async fn official_login(
    server: &Server,
    gateway_http: &reqwest::Client,
    g: &Sandbox,
    open_id: &str,
) -> String {
    let c = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let start = c
        .get(format!("{}/api/oauth/start?return_url=/", server.url))
        .send()
        .await
        .unwrap();
    assert!(start.status().is_redirection(), "{}", start.status());
    let binding = cookie_of(&start, "vending_oauth");
    let location = start.headers()["location"].to_str().unwrap().to_owned();
    let state = location
        .split(['?', '&', '#'])
        .find_map(|kv| kv.strip_prefix("state="))
        .unwrap()
        .to_owned();
    let (status, code) = call(
        gateway_http,
        "POST",
        &format!("{}/sandbox/oauth-code", g.base_url()),
        Some(json!({"app_id": APP_ID, "open_id": open_id})),
    )
    .await;
    assert_eq!(status, 200, "{code}");
    let back = c
        .get(format!(
            "{}/api/oauth/callback?code={}&state={state}",
            server.url,
            code["code"].as_str().unwrap()
        ))
        .header("cookie", format!("vending_oauth={binding}"))
        .send()
        .await
        .unwrap();
    assert!(back.status().is_redirection(), "{}", back.status());
    cookie_of(&back, "vending_buyer")
}

fn cookie_of(resp: &reqwest::Response, name: &str) -> String {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            v.split(';')
                .next()?
                .strip_prefix(&format!("{name}="))
                .map(str::to_owned)
        })
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| panic!("no {name} cookie"))
}

fn http(ca_pem: Option<&str>) -> reqwest::Client {
    let mut b = reqwest::Client::builder();
    if let Some(ca) = ca_pem {
        b = b.tls_certs_merge(reqwest::Certificate::from_pem_bundle(ca.as_bytes()).unwrap());
    }
    b.build().unwrap()
}

async fn call(c: &reqwest::Client, method: &str, url: &str, body: Option<Value>) -> (u16, Value) {
    call_as(c, None, method, url, body).await
}

/// [`call`] with a bearer token.
async fn call_as(
    c: &reqwest::Client,
    token: Option<&str>,
    method: &str,
    url: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = c.request(method.parse().unwrap(), url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
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

async fn wait_for_status(
    c: &reqwest::Client,
    token: &str,
    server: &Server,
    order_no: &str,
    status: &str,
) {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let (_, order) = call_as(
            c,
            Some(token),
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
    // No session, no order; a demo buyer's session buys with test money.
    let order_body = json!({"inner_code": "VM0001", "sku_id": 1, "channel": "sandbox"});
    let orders = format!("{}/api/orders", server.url);
    let (status, _) = call(&c, "POST", &orders, Some(order_body.clone())).await;
    assert_eq!(status, 401);
    let (status, login) = call(&c, "POST", &format!("{}/api/demo-login", server.url), None).await;
    assert_eq!(status, 200, "{login}");
    let token = login["token"].as_str().unwrap();
    let (status, order) = call_as(&c, Some(token), "POST", &orders, Some(order_body)).await;
    assert_eq!(status, 201, "{order}");
    let no = order["order_no"].as_str().unwrap();
    let (status, _) = call_as(
        &c,
        Some(token),
        "POST",
        &format!("{}/api/orders/{no}/sandbox-pay", server.url),
        None,
    )
    .await;
    assert_eq!(status, 200);

    // The banner gives the demo seller's password for this run; it opens the dashboard.
    let password = server
        .banner
        .iter()
        .find_map(|l| l.trim().strip_prefix("seller login:"))
        .and_then(|l| l.trim().strip_prefix("demo / "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no seller login in {:?}", server.banner))
        .to_owned();
    let (status, _) = call(
        &c,
        "POST",
        &format!("{}/api/seller/login", server.url),
        Some(json!({"login": "demo", "password": password})),
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
    // Without a way for buyers to log in, a live server could sell nothing: refused.
    let mut no_login = wechat_env(&g);
    no_login.push(("SIMULATE_MACHINES", "true".into()));
    let e = refused(VENDING, &no_login);
    assert!(e.contains("WECHAT_APP_SECRET"), "{e}");

    let mut env = live_vending_env(&g);
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
    assert_eq!(channels["web_login"], true);
    // No demo buyers, no demo seller: a buyer logs in with WeChat, the operator's seller with
    // the password it was given.
    let (status, _) = call(&c, "POST", &format!("{}/api/demo-login", server.url), None).await;
    assert_eq!(status, 404);
    let buyer = official_login(&server, &c, &g, "oBinaryBuyer").await;
    let (status, _) = call(
        &c,
        "POST",
        &format!("{}/api/seller/login", server.url),
        Some(json!({"login": "operator", "password": "operator-password-1"})),
    )
    .await;
    assert_eq!(status, 200);
    for (asked, code) in [
        (json!({"method": "sandbox"}), "METHOD_INVALID"),
        (json!({"channel": "sandbox"}), "CHANNEL_UNAVAILABLE"),
        (json!({"channel": "alipay"}), "CHANNEL_UNAVAILABLE"),
    ] {
        let mut body = json!({"inner_code": "VM0001", "sku_id": 1});
        body.as_object_mut()
            .unwrap()
            .extend(asked.as_object().unwrap().clone());
        let (status, answer) = call_as(
            &c,
            Some(&buyer),
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

    let mut env = live_vending_env(&g);
    env.push(("SIMULATE_MACHINES", "true".into()));
    env.push(("SIM_FAIL_RATE", "1".into()));
    env.push(("SIM_LATENCY_MS", "10".into()));
    env.push(("SSL_CERT_FILE", files.ca.display().to_string()));
    let e = refused(VENDING, &env);
    assert!(e.contains("WECHAT_CERT_P12"), "{e}");

    env.push(("WECHAT_CERT_P12", files.merchant_p12.display().to_string()));
    let server = serving(VENDING, &env);
    let c = http(None);
    let gateway_http = http(Some(&pki.ca_pem));
    let buyer = official_login(&server, &gateway_http, &g, "oMutualTlsBuyer").await;
    let (status, order) = call_as(
        &c,
        Some(&buyer),
        "POST",
        &format!("{}/api/orders", server.url),
        Some(json!({"inner_code": "VM0001", "sku_id": 1, "channel": "wechat", "method": "wechat_native"})),
    )
    .await;
    assert_eq!(status, 201, "{order}");
    let no = order["order_no"].as_str().unwrap().to_owned();
    let (status, paid) = call(
        &gateway_http,
        "POST",
        &format!("{}/sandbox/pay", g.base_url()),
        Some(json!({"out_trade_no": no})),
    )
    .await;
    assert_eq!(status, 200, "{paid}");
    // Paid, the machine fails, the money goes back: the refund crossed mutual TLS.
    wait_for_status(&c, &buyer, &server, &no, "VEND_FAILED").await;
    let (status, done) = call(
        &gateway_http,
        "POST",
        &format!("{}/sandbox/refund-complete", g.base_url()),
        Some(json!({"out_refund_no": format!("R{no}")})),
    )
    .await;
    assert_eq!(status, 200, "{done}");
    wait_for_status(&c, &buyer, &server, &no, "REFUNDED").await;
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
            &merchant_client::CreatePayment::new("bin-1", merchant_client::Fen::new(100), "Cola")
                .method("sandbox"),
        )
        .await
        .unwrap_err();
    assert_eq!(refused_sandbox.code(), Some("METHOD_INVALID"));
    let created = client
        .create_payment(&merchant_client::CreatePayment::new(
            "bin-1",
            merchant_client::Fen::new(100),
            "Cola",
        ))
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
