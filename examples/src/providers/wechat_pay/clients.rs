//! WeChat Pay's clients: the live merchant's (its certificate and keys read from their files),
//! and demo mode's merchant on the emulator.

use aggregate_pay::channels::wechat::WechatApi;
use wechat_sandbox::{Sandbox, SandboxBuilder};

use super::{CertificateSource, V3Plan, WechatPayApi, WechatPayPlan};
use crate::providers::common::{ProviderConfigError, emulator_error, invalid, read};
use crate::settings::SecretSetting;

/// The merchant certificate, read.
fn certificate(
    source: &CertificateSource,
    mch_id: &str,
) -> Result<wechat_pay::ClientCertificate, ProviderConfigError> {
    match source {
        CertificateSource::Pkcs12 { path, password } => wechat_pay::ClientCertificate::from_pkcs12(
            &read("WECHAT_CERT_P12", path)?,
            password.as_ref().map_or(mch_id, SecretSetting::expose),
        )
        .map_err(|e| invalid("WECHAT_CERT_P12")(e.to_string())),
        CertificateSource::Pem { cert, key } => wechat_pay::ClientCertificate::from_pem(
            &read("WECHAT_CERT_PEM", cert)?,
            &read("WECHAT_KEY_PEM", key)?,
        )
        .map_err(|e| invalid("WECHAT_CERT_PEM")(e.to_string())),
    }
}

/// The API v3 client of a live merchant: its private key and the WeChat Pay public key read
/// from their files, or platform certificates downloaded on first use and every 12 hours — or
/// both, during WeChat's switch to the public key.
fn v3_client(
    mch_id: &str,
    base_url: &str,
    p: &V3Plan,
) -> Result<wechat_pay::v3::Client, ProviderConfigError> {
    let text = |name: &'static str, path: &str| {
        String::from_utf8(read(name, path)?)
            .map_err(|_| invalid(name)(format!("{path} is not a PEM file")))
    };
    let key = wechat_pay::v3::MerchantKey::from_pem(&text("WECHAT_PRIVATE_KEY", &p.private_key)?)
        .map_err(|e| invalid("WECHAT_PRIVATE_KEY")(e.to_string()))?;
    let api_v3_key = wechat_pay::v3::ApiV3Key::new(p.api_v3_key.expose())
        .map_err(|e| invalid("WECHAT_API_V3_KEY")(e.to_string()))?;
    let builder = wechat_pay::v3::Client::builder(mch_id, p.serial.clone(), key, api_v3_key)
        .base_url(base_url);
    let mut builder = match &p.public_key {
        Some((path, id)) => builder.wechat_pay_key(
            wechat_pay::v3::WechatPayKey::from_pem(
                id.clone(),
                &text("WECHAT_PAY_PUBLIC_KEY", path)?,
            )
            .map_err(|e| invalid("WECHAT_PAY_PUBLIC_KEY")(e.to_string()))?,
        ),
        None => builder,
    };
    if p.certificates {
        // Without a public key; or beside it while WeChat switches the merchant over.
        builder = builder.platform_certificates();
    }
    let client = builder
        .build()
        .map_err(|e| invalid("WeChat Pay")(e.to_string()))?;
    if p.certificates {
        client.spawn_certificate_refresh(std::time::Duration::from_secs(12 * 3600));
    }
    Ok(client)
}

/// The merchant's clients, one per app (`None` where the app is not set). One merchant: over
/// API v2 a client per app id (the certificate serves both), over API v3 one client for both.
pub(in crate::providers) fn connect(
    p: &WechatPayPlan,
) -> Result<(Option<WechatApi>, Option<WechatApi>), ProviderConfigError> {
    let v3 =
        p.v3.as_ref()
            .map(|v3| v3_client(&p.mch_id, &p.base_url, v3))
            .transpose()?;
    let for_app = |app_id: &Option<String>| -> Result<Option<WechatApi>, ProviderConfigError> {
        let Some(app_id) = app_id else {
            return Ok(None);
        };
        if let Some(client) = &v3 {
            return Ok(Some(WechatApi::v3(client.clone(), app_id.clone())));
        }
        let mut builder =
            wechat_pay::Client::builder(app_id.clone(), p.mch_id.clone(), p.api_key.clone())
                .base_url(p.base_url.clone())
                .sign_type(p.sign_type);
        if let Some(source) = &p.certificate {
            builder = builder.certificate(certificate(source, &p.mch_id)?);
        }
        builder
            .build()
            .map(|c| Some(WechatApi::V2(c)))
            .map_err(|e| invalid("WeChat Pay")(e.to_string()))
    };
    Ok((for_app(&p.app_id)?, for_app(&p.mini_app_id)?))
}

/// Demo mode's merchant, made at start: one merchant with two apps (as every real vending
/// operator has), speaking API v2 (a random API key) or v3 (a key pair, a certificate serial and
/// an API v3 key).
pub(in crate::providers) struct DemoMerchant {
    mch_id: &'static str,
    api_key: wechat_pay::ApiKey,
    sign_type: wechat_pay::SignType,
    v3: Option<DemoV3>,
}

/// The demo merchant's API v3 credentials.
struct DemoV3 {
    key_pem: String,
    public_pem: String,
    serial: String,
    api_v3_key: String,
}

impl DemoMerchant {
    /// A merchant `mch_id` speaking `api`.
    pub(in crate::providers) fn new(
        mch_id: &'static str,
        api: WechatPayApi,
        sign_type: wechat_pay::SignType,
    ) -> Result<Self, ProviderConfigError> {
        let token = |n| crate::random::token(n).map_err(|e| emulator_error(&e));
        let v3 = match api {
            WechatPayApi::V2 => None,
            WechatPayApi::V3 => {
                let key =
                    wechat_pay::v3::MerchantKey::generate().map_err(|e| emulator_error(&e))?;
                Some(DemoV3 {
                    key_pem: key.export_pkcs8_pem().map_err(|e| emulator_error(&e))?,
                    public_pem: key.public_key_pem().map_err(|e| emulator_error(&e))?,
                    serial: token(20)?.to_ascii_uppercase(),
                    api_v3_key: token(16)?,
                })
            }
        };
        Ok(DemoMerchant {
            mch_id,
            api_key: wechat_pay::ApiKey::new(token(16)?),
            sign_type,
            v3,
        })
    }

    /// The emulator, told about the merchant and its `apps`.
    pub(in crate::providers) fn register(
        &self,
        mut builder: SandboxBuilder,
        apps: &[&str],
    ) -> Result<SandboxBuilder, ProviderConfigError> {
        for app in apps {
            builder = builder.merchant(*app, self.mch_id, self.api_key.clone());
            if let Some(v3) = &self.v3 {
                let mut merchant = wechat_sandbox::MerchantV3::new(
                    self.mch_id,
                    *app,
                    v3.serial.clone(),
                    &v3.public_pem,
                    &v3.api_v3_key,
                )
                .map_err(|e| emulator_error(&e))?;
                // A service provider too: the sub-merchants a platform in partner mode onboards.
                for sub in demo_sub_merchants() {
                    merchant = merchant.with_sub_merchant(sub);
                }
                builder = builder.merchant_v3(merchant);
            }
        }
        Ok(builder)
    }

    /// The merchant's client for `app_id` on the emulator (API v3: verifying with the
    /// emulator's WeChat Pay public key).
    pub(in crate::providers) fn client(
        &self,
        emulator: &Sandbox,
        app_id: &str,
    ) -> Result<WechatApi, ProviderConfigError> {
        let Some(v3) = &self.v3 else {
            return wechat_pay::Client::builder(app_id, self.mch_id, self.api_key.clone())
                .base_url(emulator.base_url())
                .sign_type(self.sign_type)
                .build()
                .map(WechatApi::V2)
                .map_err(|e| emulator_error(&e));
        };
        let (id, pem) = emulator.wechatpay_public_key();
        let client = wechat_pay::v3::Client::builder(
            self.mch_id,
            v3.serial.clone(),
            wechat_pay::v3::MerchantKey::from_pem(&v3.key_pem).map_err(|e| emulator_error(&e))?,
            wechat_pay::v3::ApiV3Key::new(&v3.api_v3_key).map_err(|e| emulator_error(&e))?,
        )
        .wechat_pay_key(
            wechat_pay::v3::WechatPayKey::from_pem(id, &pem).map_err(|e| emulator_error(&e))?,
        )
        .base_url(emulator.base_url())
        .build()
        .map_err(|e| emulator_error(&e))?;
        Ok(WechatApi::v3(client, app_id))
    }
}

/// The sub-merchant ids the demo merchant serves as a service provider (API v3):
/// `1900100001` … `1900100050`, as WeChat Pay would issue them at onboarding.
pub fn demo_sub_merchants() -> impl Iterator<Item = String> {
    (1..=50).map(|i| format!("19001000{i:02}"))
}
