//! API v3 cryptography: signing a request, verifying a response, and the notification path
//! (verify the headers' signature over the body, then decrypt the `resource`).
//!
//! Targets (issue 18, 2-core machine, beside `openssl speed rsa2048` in the same run): signing
//! ≥ 80 % of OpenSSL's RSA-2048 signs/s; notification verify + decrypt ≥ 70 % of its verifies/s.
//! Run: `cargo bench -p wechat-pay --bench v3_crypto` and `openssl speed -seconds 3 rsa2048`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use wechat_pay::v3::{
    ApiV3Key, MerchantKey, RequestSignature, WechatPayKey, WechatPaySignature, aead,
};

const MERCHANT: &str = include_str!("../testdata/v3/merchant_private_key.pem");
const WECHATPAY_PRIVATE: &str = include_str!("../testdata/v3/wechatpay_private_key.pem");
const WECHATPAY_PUBLIC: &str = include_str!("../testdata/v3/wechatpay_public_key.pem");
const KEY_ID: &str = "PUB_KEY_ID_0114232134912410000000000000";

fn bench(c: &mut Criterion) {
    let merchant = MerchantKey::from_pem(MERCHANT).unwrap();
    let body = r#"{"appid":"wxd678efh567hg6787","mchid":"1230000109","description":"Image形象店-深圳腾大-QQ公仔","out_trade_no":"1217752501201407033233368018","notify_url":"https://www.weixin.qq.com/wxpay/pay.php","amount":{"total":100,"currency":"CNY"},"payer":{"openid":"oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}}"#;
    let mut group = c.benchmark_group("v3");
    group.throughput(Throughput::Elements(1));
    group.bench_function("sign_request", |b| {
        b.iter(|| {
            RequestSignature::sign(
                &merchant,
                "1230000109",
                "1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C",
                "POST",
                "/v3/pay/transactions/jsapi",
                black_box(body),
                1554208460,
                "593BEC0C930BF1AFEB40B4A08C8FB242",
            )
        })
    });

    // A notification as WeChat sends it: encrypted resource, signed body.
    let wechat = MerchantKey::from_pem(WECHATPAY_PRIVATE).unwrap();
    let public = WechatPayKey::from_pem(KEY_ID, WECHATPAY_PUBLIC).unwrap();
    let api_key = ApiV3Key::new("0123456789abcdefghijABCDEFGHIJ01").unwrap();
    let resource = include_str!("../testdata/v3/resource_plaintext.json");
    let ciphertext = aead::encrypt(&api_key, resource, "fdasflkja484", "transaction").unwrap();
    let notification = format!(
        r#"{{"id":"EV-2018022511223320873","create_time":"2015-05-20T13:29:35+08:00","resource_type":"encrypt-resource","event_type":"TRANSACTION.SUCCESS","summary":"支付成功","resource":{{"original_type":"transaction","algorithm":"AEAD_AES_256_GCM","ciphertext":"{ciphertext}","associated_data":"transaction","nonce":"fdasflkja484"}}}}"#
    );
    let timestamp = 1554209980;
    let nonce = "c5ac7061fccab6bf3e254dcf98995b8c";
    let mut message = format!("{timestamp}\n{nonce}\n").into_bytes();
    message.extend_from_slice(notification.as_bytes());
    message.push(b'\n');
    let signature = WechatPaySignature {
        serial: KEY_ID.to_owned(),
        timestamp,
        nonce: nonce.to_owned(),
        signature: wechat.sign(&message),
    };
    let find = |serial: &str| (serial == KEY_ID).then_some(&public);
    group.bench_function("verify_response", |b| {
        b.iter(|| {
            signature
                .verify(black_box(notification.as_bytes()), timestamp, find)
                .unwrap()
        })
    });
    group.bench_function("notification_verify_and_decrypt", |b| {
        b.iter(|| {
            signature
                .verify(black_box(notification.as_bytes()), timestamp, find)
                .unwrap();
            let v: serde_json::Value = serde_json::from_str(&notification).unwrap();
            let r = &v["resource"];
            aead::decrypt(
                &api_key,
                r["algorithm"].as_str().unwrap(),
                r["ciphertext"].as_str().unwrap(),
                r["nonce"].as_str().unwrap(),
                r["associated_data"].as_str().unwrap(),
            )
            .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
