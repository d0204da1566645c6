//! The `wechat-sandbox` binary as a developer runs it: `--tls-dir` serves HTTPS as WeChat's
//! gateway does and writes what a client needs (the CA, the merchant certificate).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

#[tokio::test]
async fn tls_dir_serves_mutual_tls_with_its_own_ca() {
    let dir = std::env::temp_dir().join(format!("sandbox-tls-{}", std::process::id()));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_wechat-sandbox"))
        .env_clear()
        .env("SANDBOX_LISTEN", format!("127.0.0.1:{port}"))
        .env("SANDBOX_TLS_DIR", &dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let listening = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the sandbox did not say where it listens");
        if line.contains("listening on") {
            break line;
        }
    };
    let url = format!("https://127.0.0.1:{port}");
    assert!(listening.contains(&url), "{listening}");

    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    let ca = read("ca.pem");
    assert!(dir.join("apiclient_cert.p12").exists());
    let trusting = || {
        reqwest::Client::builder()
            .tls_certs_merge(reqwest::Certificate::from_pem_bundle(ca.as_bytes()).unwrap())
    };
    let anonymous = trusting().build().unwrap();
    let orders = anonymous
        .get(format!("{url}/sandbox/orders"))
        .send()
        .await
        .unwrap();
    assert_eq!(orders.status().as_u16(), 200);
    let refused = anonymous
        .post(format!("{url}/secapi/pay/refund"))
        .body("<xml></xml>")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 400);

    // With the merchant certificate it is WeChat's own answer (here: the body is no XML).
    let identity = format!(
        "{}{}",
        read("apiclient_key.pem"),
        read("apiclient_cert.pem")
    );
    let merchant = trusting()
        .identity(reqwest::Identity::from_pem(identity.as_bytes()).unwrap())
        .build()
        .unwrap();
    let answer = merchant
        .post(format!("{url}/secapi/pay/refund"))
        .body("not xml")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    assert!(
        answer
            .text()
            .await
            .unwrap()
            .contains("<return_code><![CDATA[FAIL]]>")
    );
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
