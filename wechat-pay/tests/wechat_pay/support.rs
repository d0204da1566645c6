//! Shared fixtures: the documented test merchant, a matcher that checks a request's signature
//! and fields, and the reply-path contract every endpoint runs.

use std::fmt::Debug;

use wechat_pay::api::Request;
use wechat_pay::test_util::TestSigner;
use wechat_pay::{ApiKey, Client, ErrCode, Error, Params, SignType, SignatureError};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

pub const APP_ID: &str = "wx2421b1c4370ec43b";
pub const MCH_ID: &str = "10000100";
pub const KEY: &str = "192006250b4c09247ec02edce69f6a2d";

pub fn key() -> ApiKey {
    ApiKey::new(KEY)
}

pub fn signer() -> TestSigner {
    TestSigner::new(APP_ID, MCH_ID, key())
}

pub fn client(server: &MockServer) -> Client {
    client_with(server, SignType::Md5)
}

pub fn client_with(server: &MockServer, sign_type: SignType) -> Client {
    Client::builder(APP_ID, MCH_ID, key())
        .base_url(server.uri())
        .sign_type(sign_type)
        .build()
        .expect("client builds")
}

pub fn xml(body: impl Into<String>) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(body.into(), "text/xml")
}

/// Matches a request whose body is a flat XML message signed with `key` / `sign_type` that
/// carries `fields` with these exact values (and the merchant envelope).
pub struct SignedRequest {
    pub key: ApiKey,
    pub sign_type: SignType,
    pub fields: Vec<(String, String)>,
    pub envelope: bool,
}

impl SignedRequest {
    pub fn merchant(sign_type: SignType, fields: &[(&str, &str)]) -> Self {
        SignedRequest {
            key: key(),
            sign_type,
            fields: fields
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            envelope: true,
        }
    }
}

impl wiremock::Match for SignedRequest {
    fn matches(&self, request: &wiremock::Request) -> bool {
        let Ok(p) = Params::from_xml(&request.body) else {
            return false;
        };
        let content_type_ok = request
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/xml"));
        let envelope_ok = !self.envelope
            || (p.get("appid") == Some(APP_ID)
                && p.get("sign_type") == Some(self.sign_type.as_str()));
        content_type_ok
            && envelope_ok
            && p.get("mch_id") == Some(MCH_ID)
            && p.get("nonce_str").is_some_and(|n| n.len() == 32)
            && p.verify(&self.key, self.sign_type).is_ok()
            && self
                .fields
                .iter()
                .all(|(k, v)| p.get(k) == Some(v.as_str()))
    }
}

/// Runs one endpoint through every reply path and returns the decoded success response.
///
/// The mock only answers requests that carry `fields` and a valid signature; anything else gets
/// wiremock's 404, which fails the success path.
pub async fn contract<R>(
    request: &R,
    url_path: &str,
    fields: &[(&str, &str)],
    success: Params,
) -> R::Response
where
    R: Request,
    R::Response: Debug,
{
    for sign_type in [SignType::Md5, SignType::HmacSha256] {
        let server = MockServer::start().await;
        let client = client_with(&server, sign_type);
        let signer = signer().with_sign_type(sign_type);
        let matcher = || SignedRequest::merchant(sign_type, fields);

        // A reply with a valid signature.
        Mock::given(method("POST"))
            .and(path(url_path))
            .and(matcher())
            .respond_with(xml(signer.reply(success.clone())))
            .expect(1)
            .mount(&server)
            .await;
        client
            .execute(request)
            .await
            .unwrap_or_else(|e| panic!("{url_path} ({sign_type}) should succeed: {e}"));
        server.reset().await;

        // return_code=FAIL: the request was refused.
        Mock::given(method("POST"))
            .and(path(url_path))
            .and(matcher())
            .respond_with(xml("<xml><return_code><![CDATA[FAIL]]></return_code>\
                 <return_msg><![CDATA[签名错误]]></return_msg></xml>"))
            .mount(&server)
            .await;
        match client.execute(request).await {
            Err(Error::Protocol { return_msg }) => assert_eq!(return_msg, "签名错误"),
            other => panic!("{url_path}: expected a protocol error, got {other:?}"),
        }
        server.reset().await;

        // result_code=FAIL: processed, failed; the code is kept.
        Mock::given(method("POST"))
            .and(path(url_path))
            .and(matcher())
            .respond_with(xml(signer.business_failure("PARAM_ERROR", "参数错误")))
            .mount(&server)
            .await;
        match client.execute(request).await {
            Err(Error::Business {
                err_code,
                err_code_des,
            }) => {
                assert_eq!(err_code, ErrCode::ParamError);
                assert_eq!(err_code_des, "参数错误");
            }
            other => panic!("{url_path}: expected a business error, got {other:?}"),
        }
        server.reset().await;

        // A reply signed with another key is forged.
        let forger = TestSigner::new(APP_ID, MCH_ID, ApiKey::new("not-the-merchant-key"))
            .with_sign_type(sign_type);
        Mock::given(method("POST"))
            .and(path(url_path))
            .respond_with(xml(forger.reply(success.clone())))
            .mount(&server)
            .await;
        match client.execute(request).await {
            Err(Error::Signature(SignatureError::Mismatch)) => {}
            other => panic!("{url_path}: a forged reply must be rejected, got {other:?}"),
        }
        server.reset().await;

        // A reply with a field changed after signing.
        let mut tampered = Params::from_xml(signer.reply(success.clone()).as_bytes()).unwrap();
        tampered.insert("nonce_str", "tampered");
        Mock::given(method("POST"))
            .and(path(url_path))
            .respond_with(xml(tampered.to_xml()))
            .mount(&server)
            .await;
        assert!(
            matches!(
                client.execute(request).await,
                Err(Error::Signature(SignatureError::Mismatch))
            ),
            "{url_path}: a tampered reply must be rejected"
        );
        server.reset().await;

        // A reply without `sign` is not trusted.
        let mut unsigned = Params::from_xml(signer.reply(success.clone()).as_bytes()).unwrap();
        unsigned.remove("sign");
        Mock::given(method("POST"))
            .and(path(url_path))
            .respond_with(xml(unsigned.to_xml()))
            .mount(&server)
            .await;
        assert!(
            matches!(
                client.execute(request).await,
                Err(Error::Signature(SignatureError::Missing))
            ),
            "{url_path}: an unsigned reply must be rejected"
        );
    }

    // Finally the decoded success response, for the caller's own assertions.
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(url_path))
        .and(SignedRequest::merchant(SignType::Md5, fields))
        .respond_with(xml(signer().reply(success)))
        .mount(&server)
        .await;
    client(&server)
        .execute(request)
        .await
        .expect("success reply decodes")
}

pub fn params(fields: &[(&str, &str)]) -> Params {
    fields.iter().copied().collect()
}
