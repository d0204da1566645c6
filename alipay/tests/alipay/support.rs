//! Fixtures: the test app and gateway keys, a matcher that checks a request's RSA2 signature and
//! fields, and the answer-path contract every method runs.

use std::collections::BTreeMap;
use std::fmt::Debug;

use alipay::test_util::TestGateway;
use alipay::{Client, Error, PrivateKey, PublicKey, Request, SignatureError, SubCode, sign};
use serde_json::{Value, json};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

pub const APP_ID: &str = "2021000000000042";
pub const SELLER_ID: &str = "2088000000000042";

pub fn app_key() -> PrivateKey {
    PrivateKey::from_pem(include_str!("../../testdata/app_private_key.pem")).unwrap()
}

pub fn app_public_key() -> PublicKey {
    PublicKey::from_pem(include_str!("../../testdata/app_public_key.pem")).unwrap()
}

pub fn gateway_key() -> PrivateKey {
    PrivateKey::from_pem(include_str!("../../testdata/gateway_private_key.pem")).unwrap()
}

pub fn gateway() -> TestGateway {
    TestGateway::new(gateway_key())
}

pub fn client(server: &MockServer) -> Client {
    Client::builder(APP_ID, app_key(), gateway_key().public_key())
        .base_url(server.uri())
        .seller_id(SELLER_ID)
        .build()
        .unwrap()
}

/// Matches a form request for `method`, signed with the app key, whose `biz_content` holds
/// `biz` (those fields, those values) and whose top level holds `top`.
pub struct SignedCall {
    pub method: &'static str,
    pub biz: Value,
    pub top: Vec<(&'static str, String)>,
}

impl wiremock::Match for SignedCall {
    fn matches(&self, request: &wiremock::Request) -> bool {
        let Ok(form) = serde_urlencoded::from_bytes::<BTreeMap<String, String>>(&request.body)
        else {
            return false;
        };
        let content = sign::canonical(
            form.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            sign::REQUEST_EXCLUDES,
        );
        let signed = form
            .get("sign")
            .is_some_and(|s| app_public_key().verify(&content, s).is_ok());
        let biz: Value = form
            .get("biz_content")
            .and_then(|b| serde_json::from_str(b).ok())
            .unwrap_or(Value::Null);
        let biz_ok = self
            .biz
            .as_object()
            .unwrap()
            .iter()
            .all(|(k, v)| biz.get(k) == Some(v));
        signed
            && biz_ok
            && form.get("method").map(String::as_str) == Some(self.method)
            && form.get("app_id").map(String::as_str) == Some(APP_ID)
            && form.get("sign_type").map(String::as_str) == Some("RSA2")
            && form.get("charset").map(String::as_str) == Some("utf-8")
            && self
                .top
                .iter()
                .all(|(k, v)| form.get(*k).map(String::as_str) == Some(v.as_str()))
    }
}

fn answer(body: String) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(body, "application/json;charset=utf-8")
}

/// Runs `request` through every answer path:
/// - a correctly signed success, checked by `check`, for a request matching `call`;
/// - the same answer with one character changed, unsigned, and signed with another key:
///   signature errors;
/// - a signed refusal: a gateway error with the sub_code;
/// - HTTP 502 and an answer without the method's object: transport and decode errors.
pub async fn contract<R, F>(request: R, call: SignedCall, success: Value, check: F)
where
    R: Request,
    R::Response: Debug,
    F: Fn(R::Response),
{
    let method = call.method;
    let signed = gateway().response(method, &success).unwrap();

    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::method("POST"))
        .and(call)
        .respond_with(answer(signed.clone()))
        .expect(1)
        .mount(&server)
        .await;
    check(client(&server).execute(&request).await.unwrap());
    drop(server);

    // Any change to the signed text, even one that keeps the JSON equal.
    let tampered = signed.replacen("\"code\":", "\"code\" :", 1);
    assert_ne!(tampered, signed);
    let unsigned = format!(r#"{{"{}_response":{success}}}"#, method.replace('.', "_"));
    let stranger = TestGateway::new(app_key())
        .response(method, &success)
        .unwrap();
    for (what, body, expected) in [
        ("tampered", tampered, SignatureError::Mismatch),
        ("unsigned", unsigned, SignatureError::Missing),
        ("signed by another key", stranger, SignatureError::Mismatch),
    ] {
        let server = MockServer::start().await;
        Mock::given(method_post())
            .respond_with(answer(body))
            .mount(&server)
            .await;
        match client(&server).execute(&request).await {
            Err(Error::Signature(e)) => assert_eq!(e, expected, "{method} {what}"),
            other => panic!("{method} {what}: {other:?}"),
        }
    }

    let refusal = gateway()
        .response(
            method,
            &json!({"code": "40004", "msg": "Business Failed", "sub_code": "ACQ.SYSTEM_ERROR",
                    "sub_msg": "系统错误"}),
        )
        .unwrap();
    let server = MockServer::start().await;
    Mock::given(method_post())
        .respond_with(answer(refusal))
        .mount(&server)
        .await;
    match client(&server).execute(&request).await {
        Err(e @ Error::Gateway { .. }) => {
            assert!(e.is_retryable(), "{method}: {e}");
            assert_eq!(e.sub_code(), Some(&SubCode::SystemError));
        }
        other => panic!("{method} refusal: {other:?}"),
    }

    let server = MockServer::start().await;
    Mock::given(method_post())
        .respond_with(ResponseTemplate::new(502))
        .mount(&server)
        .await;
    assert!(matches!(
        client(&server).execute(&request).await,
        Err(Error::Transport(_))
    ));
    let server = MockServer::start().await;
    Mock::given(method_post())
        .respond_with(answer(r#"{"something_else":{}}"#.into()))
        .mount(&server)
        .await;
    assert!(matches!(
        client(&server).execute(&request).await,
        Err(Error::Decode { .. })
    ));
}

fn method_post() -> wiremock::matchers::MethodExactMatcher {
    method("POST")
}
