//! Signing a 12-field unifiedorder map and parsing + verifying a 20-field payment notification.
//!
//! Targets on the 2-core CI machine: sign ≥ 1,000,000 ops/s; notification ≥ 300,000 ops/s.
//! Run: `cargo bench -p wechat-pay --bench sign_and_verify`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use wechat_pay::test_util::TestSigner;
use wechat_pay::{ApiKey, Fen, NotifySignType, Params, SignType, notify};

const KEY: &str = "192006250b4c09247ec02edce69f6a2d";

fn unified_order_params() -> Params {
    [
        ("appid", "wx2421b1c4370ec43b"),
        ("mch_id", "10000100"),
        ("nonce_str", "1add1a30ac87aa2db72f57a2375d8fec"),
        ("sign_type", "MD5"),
        ("body", "腾讯充值中心-QQ会员充值"),
        ("out_trade_no", "20240101000000000001"),
        ("total_fee", "350"),
        ("spbill_create_ip", "203.0.113.7"),
        ("notify_url", "https://shop.example/notify/wechat"),
        ("trade_type", "JSAPI"),
        ("openid", "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"),
        ("attach", "machine=M001"),
    ]
    .into_iter()
    .collect()
}

fn notification(sign_type: SignType) -> String {
    let signer = TestSigner::new("wx2421b1c4370ec43b", "10000100", ApiKey::new(KEY))
        .with_sign_type(sign_type);
    let mut p = signer.payment_notification_params("20240101000000000001", Fen::new(350));
    // Top up to 19 fields (20 with `sign`); HMAC notifications already carry `sign_type`.
    for (k, v) in [
        ("attach", "machine=M001"),
        ("device_info", "M001"),
        ("settlement_total_fee", "350"),
    ] {
        if p.len() < 19 {
            p.insert(k, v);
        }
    }
    assert_eq!(p.len() + 1, 20, "20 fields with sign");
    signer.sign(p)
}

fn sign(c: &mut Criterion) {
    let key = ApiKey::new(KEY);
    let params = unified_order_params();
    assert_eq!(params.len(), 12);
    let mut g = c.benchmark_group("sign_unifiedorder_12_fields");
    g.throughput(Throughput::Elements(1));
    for ty in [SignType::Md5, SignType::HmacSha256] {
        g.bench_function(ty.as_str(), |b| {
            b.iter(|| black_box(&params).signature(black_box(&key), ty))
        });
    }
    g.finish();
}

fn verify_notification(c: &mut Criterion) {
    let key = ApiKey::new(KEY);
    let mut g = c.benchmark_group("parse_verify_notification_20_fields");
    g.throughput(Throughput::Elements(1));
    for ty in [SignType::Md5, SignType::HmacSha256] {
        let body = notification(ty);
        notify::verify_payment_notification(body.as_bytes(), &key, NotifySignType::FromBody)
            .expect("the fixture verifies");
        g.bench_function(ty.as_str(), |b| {
            b.iter(|| {
                notify::verify_payment_notification(
                    black_box(body.as_bytes()),
                    &key,
                    NotifySignType::FromBody,
                )
            })
        });
    }
    g.finish();
}

criterion_group!(benches, sign, verify_notification);
criterion_main!(benches);
