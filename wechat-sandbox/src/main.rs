//! `wechat-sandbox`: a local emulator of WeChat Pay v2, WeChat MP and the Alipay gateway.
//!
//! `cargo run -p wechat-sandbox -- --listen 127.0.0.1:9100`

use std::time::Duration;

use alipay::PrivateKey as AlipayPrivateKey;
use clap::Parser;
use wechat_sandbox::config::{AlipayApp, ConfigError, Merchant, MpApp};
use wechat_sandbox::server::{HttpLimits, shutdown_signal};
use wechat_sandbox::tls::GatewayPki;
use wechat_sandbox::{Sandbox, SandboxBuilder};

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
    /// An Alipay app `APP_ID,PATH_TO_APP_PUBLIC_KEY_PEM[,SELLER_ID[,MODE[,AES_KEY]]]`
    /// (repeatable; `;`-separated in the environment; the seller id defaults to one derived from
    /// the app id; MODE `cert`: certificate mode, its certificates at
    /// `GET /sandbox/alipay/certs/{app_id}`; AES_KEY: content encryption with that key). Without any, a demo app is created and its private key printed.
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
    /// A WeChat Pay API v3 merchant
    /// `MCH_ID,APP_ID,MERCHANT_SERIAL,MERCHANT_PUBLIC_KEY_PEM_PATH,API_V3_KEY` (repeatable;
    /// `;`-separated in the environment).
    #[arg(
        long = "merchant-v3",
        env = "SANDBOX_MERCHANTS_V3",
        value_delimiter = ';'
    )]
    merchants_v3: Vec<String>,
    /// A sub-merchant of a v3 merchant acting as a service provider, `SP_MCH_ID,SUB_MCH_ID`
    /// (repeatable; `;`-separated in the environment): partner orders for it are accepted.
    #[arg(
        long = "sub-merchant",
        env = "SANDBOX_SUB_MERCHANTS",
        value_delimiter = ';'
    )]
    sub_merchants: Vec<String>,
    /// The sandbox's own WeChat Pay (v3) private key (PEM) as `PUB_KEY_ID,PATH`; generated at
    /// start when absent.
    #[arg(long, env = "SANDBOX_WECHATPAY_KEY")]
    wechatpay_key: Option<String>,
    /// Where to write the WeChat Pay public key (PEM) v3 clients verify with (its id is printed
    /// and served at `/sandbox/wechatpay-public-key`).
    #[arg(long, env = "SANDBOX_WECHATPAY_PUBLIC_KEY_OUT")]
    wechatpay_public_key_out: Option<String>,
    /// Divides notification retry intervals (e.g. 1000 turns WeChat's 15 s into 15 ms).
    #[arg(long, env = "SANDBOX_TIME_SCALE", default_value_t = 1.0)]
    time_scale: f64,
    /// Seconds (scaled) after which refunds complete by themselves; 0: only through
    /// `POST /sandbox/refund-complete`.
    #[arg(long, env = "SANDBOX_REFUND_DELAY_SECS", default_value_t = 5)]
    refund_delay_secs: u64,
    /// The share (0 to 1) of v3 notifications preceded by a signature probe: a copy signed with
    /// a deliberately wrong signature (`WECHATPAY/SIGNTEST/…`), which the app must refuse.
    #[arg(long, env = "SANDBOX_SIGN_PROBE_RATE", default_value_t = 0.0)]
    sign_probe_rate: f64,
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

/// Parses every `spec`, or exits saying which is wrong.
fn parsed<T>(specs: &[String], parse: fn(&str) -> Result<T, ConfigError>) -> Vec<T> {
    specs
        .iter()
        .map(|s| parse(s))
        .collect::<Result<Vec<_>, _>>()
        .unwrap_or_else(|e| fail(e))
}

fn fail(msg: impl std::fmt::Display) -> ! {
    eprintln!("wechat-sandbox: {msg}");
    std::process::exit(2)
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,tower_http=warn".into()),
        )
        .init();
    let args = Args::parse();
    let merchants: Vec<Merchant> = parsed(&args.merchants, Merchant::parse);
    let mut builder = configured(&args, &merchants);
    let mut https_files = None;
    if let Some(dir) = &args.tls_dir {
        // The certificate's name is the first merchant's id (the demo one's when none is given).
        let mch_id = merchants
            .first()
            .map_or("1900000109", |m| m.mch_id.as_str())
            .to_owned();
        let host = args.listen.rsplit_once(':').map_or("127.0.0.1", |(h, _)| h);
        let pki = GatewayPki::generate(&mch_id, &[host]).unwrap_or_else(|e| fail(e));
        https_files = Some((
            pki.write_to(dir, &mch_id).unwrap_or_else(|e| fail(e)),
            mch_id,
        ));
        builder = builder.tls(pki.acceptor().unwrap_or_else(|e| fail(e)));
    }
    let sandbox = builder.start().await.unwrap_or_else(|e| fail(e));
    write_public_keys(&args, &sandbox);
    if let Some((files, mch_id)) = &https_files {
        println!(
            "  https: CA {} (SSL_CERT_FILE), merchant certificate {} (password {mch_id})",
            files.ca.display(),
            files.merchant_p12.display()
        );
    }
    print_credentials(&args, &sandbox);

    shutdown_signal().await;
    println!("wechat-sandbox: shutting down");
    sandbox.shutdown().await;
}

/// The sandbox the command line describes (merchants, apps, keys, timing, limits).
fn configured(args: &Args, merchants: &[Merchant]) -> SandboxBuilder {
    let mut builder = Sandbox::builder()
        .listen(args.listen.clone())
        .time_scale(args.time_scale)
        .refund_delay(
            (args.refund_delay_secs > 0).then(|| Duration::from_secs(args.refund_delay_secs)),
        )
        .sign_probe_rate(args.sign_probe_rate)
        .limits(args.http.clone());
    for m in merchants {
        builder = builder.merchant(m.app_id.clone(), m.mch_id.clone(), m.api_key.clone());
    }
    for a in parsed(&args.mp_apps, MpApp::parse) {
        builder = builder.mp_app(a);
    }
    for mut m in parsed(&args.merchants_v3, wechat_sandbox::MerchantV3::parse) {
        for spec in &args.sub_merchants {
            let (sp, sub) = spec
                .split_once(',')
                .unwrap_or_else(|| fail("--sub-merchant expects SP_MCH_ID,SUB_MCH_ID"));
            if sp.trim() == m.mch_id {
                m = m.with_sub_merchant(sub.trim());
            }
        }
        builder = builder.merchant_v3(m);
    }
    if let Some(spec) = &args.wechatpay_key {
        let (id, path) = spec
            .split_once(',')
            .unwrap_or_else(|| fail("--wechatpay-key expects PUB_KEY_ID,PATH"));
        let pem = std::fs::read_to_string(path).unwrap_or_else(|e| fail(format!("{path}: {e}")));
        let key = wechat_pay::v3::MerchantKey::from_pem(&pem)
            .unwrap_or_else(|e| fail(format!("{path}: {e}")));
        builder = builder.wechatpay_key(key, id);
    }
    for a in parsed(&args.alipay_apps, AlipayApp::parse) {
        builder = builder.alipay_app_config(a);
    }
    if let Some(url) = &args.public_url {
        builder = builder.public_url(url.clone());
    }
    if let Some(path) = &args.db {
        builder = builder.db(path.clone());
    }
    if let Some(path) = &args.alipay_key {
        let pem = std::fs::read_to_string(path).unwrap_or_else(|e| fail(format!("{path}: {e}")));
        builder = builder.alipay_key(
            AlipayPrivateKey::from_pem(&pem).unwrap_or_else(|e| fail(format!("{path}: {e}"))),
        );
    }
    builder
}

/// Writes the gateway's public keys where the command line asks, for clients to load.
fn write_public_keys(args: &Args, sandbox: &Sandbox) {
    if let Some(path) = &args.alipay_public_key_out {
        let pem = sandbox
            .alipay_public_key()
            .to_pem()
            .unwrap_or_else(|e| fail(e));
        std::fs::write(path, pem).unwrap_or_else(|e| fail(format!("{path}: {e}")));
    }
    if let Some(path) = &args.wechatpay_public_key_out {
        std::fs::write(path, sandbox.wechatpay_public_key().1)
            .unwrap_or_else(|e| fail(format!("{path}: {e}")));
    }
    println!(
        "  wechat pay v3 public key id: {} (GET /sandbox/wechatpay-public-key)",
        sandbox.wechatpay_public_key().0
    );
}

/// Where the sandbox listens and, for what the command line did not give, the demo
/// credentials a client needs (sandbox credentials: printing them is the point).
fn print_credentials(args: &Args, sandbox: &Sandbox) {
    let config = sandbox.config();
    println!("wechat-sandbox listening on {}", sandbox.base_url());
    println!("  control page:  {}/sandbox", sandbox.base_url());
    if args.merchants.is_empty() {
        let m = &config.merchants[0];
        println!(
            "  demo merchant: appid={} mch_id={} api_key={}",
            m.app_id,
            m.mch_id,
            m.api_key.expose()
        );
    }
    if args.mp_apps.is_empty() {
        let a = &config.mp_apps[0];
        println!(
            "  demo mp app:   appid={} secret={} token={}",
            a.app_id,
            a.app_secret.expose(),
            a.token.expose()
        );
    }
    if let Some(key) = sandbox.demo_alipay_app_key() {
        println!(
            "  demo alipay app: app_id={}; its private key:",
            config.alipay_apps[0].app_id
        );
        println!("{}", key.to_pem().unwrap_or_default());
    }
    println!(
        "  alipay gateway public key: {}/sandbox/alipay-public-key",
        sandbox.base_url()
    );
}
