//! `wechat-sandbox`: a local emulator of WeChat Pay v2, WeChat MP and the Alipay gateway.
//!
//! `cargo run -p examples --bin wechat-sandbox -- --listen 127.0.0.1:9100`

use std::time::Duration;

use alipay::PrivateKey as AlipayPrivateKey;
use clap::Parser;
use examples::sandbox::config::{AlipayApp, Merchant, MpApp};
use examples::sandbox::tls::GatewayPki;
use examples::sandbox::{SandboxConfig, Serving, spawn_serving};
use examples::serve::HttpLimits;
use examples::shutdown_signal;

/// A local WeChat Pay v2 / WeChat MP / Alipay emulator with real signatures and notifications.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "SANDBOX_LISTEN", default_value = "127.0.0.1:9100")]
    listen: String,
    /// The sandbox's public base URL (links it hands out); default `http://LISTEN`.
    #[arg(long, env = "SANDBOX_PUBLIC_URL")]
    public_url: Option<String>,
    /// A WeChat Pay merchant `APP_ID,MCH_ID,API_KEY` (repeatable; `;`-separated in the
    /// environment). Without any, a demo merchant is created and printed.
    #[arg(long = "merchant", env = "SANDBOX_MERCHANTS", value_delimiter = ';')]
    merchants: Vec<String>,
    /// A WeChat MP app `APP_ID,APP_SECRET,TOKEN[,ENCODING_AES_KEY[,CALLBACK_URL]]` (repeatable;
    /// `;`-separated in the environment). Without any, a demo app is created and printed.
    #[arg(long = "mp-app", env = "SANDBOX_MP_APPS", value_delimiter = ';')]
    mp_apps: Vec<String>,
    /// An Alipay app `APP_ID,PATH_TO_APP_PUBLIC_KEY_PEM` (repeatable; `;`-separated in the
    /// environment). Without any, a demo app is created and its private key printed.
    #[arg(
        long = "alipay-app",
        env = "SANDBOX_ALIPAY_APPS",
        value_delimiter = ';'
    )]
    alipay_apps: Vec<String>,
    /// The gateway's own Alipay private key (PEM); generated at start when absent.
    #[arg(long, env = "SANDBOX_ALIPAY_KEY")]
    alipay_key: Option<String>,
    /// Where to write the gateway's Alipay public key (PEM), for clients to verify with.
    #[arg(long, env = "SANDBOX_ALIPAY_PUBLIC_KEY_OUT")]
    alipay_public_key_out: Option<String>,
    /// Divides notification retry intervals (e.g. 1000 turns WeChat's 15 s into 15 ms).
    #[arg(long, env = "SANDBOX_TIME_SCALE", default_value_t = 1.0)]
    time_scale: f64,
    /// Seconds (scaled) after which refunds complete by themselves; 0: only through
    /// `POST /sandbox/refund-complete`.
    #[arg(long, env = "SANDBOX_REFUND_DELAY_SECS", default_value_t = 5)]
    refund_delay_secs: u64,
    /// Keep orders and refunds in this SQLite file across restarts.
    #[arg(long, env = "SANDBOX_DB")]
    db: Option<String>,
    /// Serve HTTPS as WeChat's gateway does: a CA, the gateway's certificate and a merchant
    /// certificate are made at start and written here (`ca.pem` for clients' `SSL_CERT_FILE`,
    /// `apiclient_cert.p12` with the first merchant's id as password, `apiclient_cert.pem`,
    /// `apiclient_key.pem`); `/secapi/*` then requires that merchant certificate.
    #[arg(long, env = "SANDBOX_TLS_DIR")]
    tls_dir: Option<std::path::PathBuf>,
    /// Timeouts and size limits of HTTP requests.
    #[command(flatten)]
    http: HttpLimits,
}

fn fail(msg: impl std::fmt::Display) -> ! {
    eprintln!("wechat-sandbox: {msg}");
    std::process::exit(2)
}

#[tokio::main]
async fn main() {
    examples::init_tracing();
    let args = Args::parse();
    let public_url = args.public_url.clone().unwrap_or_else(|| {
        let scheme = if args.tls_dir.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", args.listen)
    });
    let (mut config, demo) = SandboxConfig::demo(&public_url).unwrap_or_else(|e| fail(e));
    let mut show_demo = Vec::new();
    if args.merchants.is_empty() {
        show_demo.push("merchant");
    } else {
        config.merchants = args
            .merchants
            .iter()
            .map(|s| Merchant::parse(s))
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| fail(e));
    }
    if args.mp_apps.is_empty() {
        show_demo.push("mp");
    } else {
        config.mp_apps = args
            .mp_apps
            .iter()
            .map(|s| MpApp::parse(s))
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| fail(e));
    }
    if args.alipay_apps.is_empty() {
        show_demo.push("alipay");
    } else {
        config.alipay_apps = args
            .alipay_apps
            .iter()
            .map(|s| AlipayApp::parse(s))
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| fail(e));
    }
    if let Some(path) = &args.alipay_key {
        let pem = std::fs::read_to_string(path).unwrap_or_else(|e| fail(format!("{path}: {e}")));
        config.alipay_key =
            AlipayPrivateKey::from_pem(&pem).unwrap_or_else(|e| fail(format!("{path}: {e}")));
    }
    if let Some(path) = &args.alipay_public_key_out {
        let pem = config
            .alipay_public_key()
            .to_pem()
            .unwrap_or_else(|e| fail(e));
        std::fs::write(path, pem).unwrap_or_else(|e| fail(format!("{path}: {e}")));
    }
    config.time_scale = args.time_scale;
    config.refund_delay =
        (args.refund_delay_secs > 0).then(|| Duration::from_secs(args.refund_delay_secs));

    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .unwrap_or_else(|e| fail(format!("cannot listen on {}: {e}", args.listen)));
    let tls = match &args.tls_dir {
        None => None,
        Some(dir) => {
            let mch_id = config.merchants[0].mch_id.clone();
            let host = args.listen.rsplit_once(':').map_or("127.0.0.1", |(h, _)| h);
            let pki = GatewayPki::generate(&mch_id, &[host]).unwrap_or_else(|e| fail(e));
            let files = pki.write_to(dir, &mch_id).unwrap_or_else(|e| fail(e));
            println!(
                "  https: CA {} (SSL_CERT_FILE), merchant certificate {} (password {mch_id})",
                files.ca.display(),
                files.merchant_p12.display()
            );
            Some(pki.acceptor().unwrap_or_else(|e| fail(e)))
        }
    };
    let serving = Serving {
        limits: args.http.clone(),
        tls,
    };
    let sandbox = spawn_serving(config.clone(), args.db.as_deref(), listener, serving)
        .await
        .unwrap_or_else(|e| fail(e));

    println!("wechat-sandbox listening on {}", sandbox.url);
    println!("  control page:  {}/sandbox", sandbox.url);
    // These are sandbox credentials, printed so that a client can be pointed at the sandbox.
    if show_demo.contains(&"merchant") {
        let m = &config.merchants[0];
        println!(
            "  demo merchant: appid={} mch_id={} api_key={}",
            m.app_id,
            m.mch_id,
            m.api_key.expose()
        );
    }
    if show_demo.contains(&"mp") {
        let a = &config.mp_apps[0];
        println!(
            "  demo mp app:   appid={} secret={} token={}",
            a.app_id,
            a.app_secret.expose(),
            a.token.expose()
        );
    }
    if show_demo.contains(&"alipay") {
        if let Some(key) = &demo.alipay_app_key {
            println!(
                "  demo alipay app: app_id={}; its private key:",
                config.alipay_apps[0].app_id
            );
            println!("{}", key.to_pem().unwrap_or_default());
        }
    }
    println!(
        "  alipay gateway public key: {}/sandbox/alipay-public-key",
        sandbox.url
    );

    shutdown_signal().await;
    println!("wechat-sandbox: shutting down");
    sandbox.shutdown().await;
}
