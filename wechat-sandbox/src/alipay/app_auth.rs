//! Third-party apps (第三方应用授权): a merchant authorizes a service provider's app — a code
//! minted through the control API (`POST /sandbox/alipay/app-auth-code`,
//! [`crate::Sandbox::alipay_app_auth_code`]), as Alipay's authorization page hands it back —
//! which `alipay.open.auth.token.app` exchanges (once, for that app) for the merchant's
//! `app_auth_token` and a refresh token; `alipay.open.auth.token.app.query` says whether a token
//! is valid. A request carrying `app_auth_token` acts for the merchant: its trades are the
//! merchant's (`seller_id` in notifications), seen only with the merchant's token; a token of
//! another app, or none that exists, is `aop.invalid-app-auth-token`.

use std::collections::BTreeMap;

use serde_json::json;

use super::{AliReply, AliRequest, missing};
use crate::state::{dashed_time, hex32, now};
use crate::{SandboxState, lock};

/// How long a merchant's token lasts (seconds): a year.
const TOKEN_SECONDS: i64 = 365 * 24 * 3600;

/// A merchant's authorization of a provider's app.
#[derive(Debug, Clone)]
pub(crate) struct AppAuth {
    /// The service provider's app.
    pub provider_app_id: String,
    /// The merchant's Alipay user id.
    pub merchant: String,
    pub expires_at: i64,
}

/// Codes, tokens and refresh tokens.
#[derive(Debug, Default)]
pub(crate) struct AppAuthBook {
    codes: BTreeMap<String, AppAuth>,
    tokens: BTreeMap<String, AppAuth>,
    refresh: BTreeMap<String, AppAuth>,
}

/// A code for `merchant` authorizing `provider_app_id`.
pub(crate) fn mint(state: &SandboxState, provider_app_id: &str, merchant: &str) -> String {
    let code = format!("P{}", hex32());
    lock(&state.alipay).app_auth.codes.insert(
        code.clone(),
        AppAuth {
            provider_app_id: provider_app_id.to_owned(),
            merchant: merchant.to_owned(),
            expires_at: now() + 600,
        },
    );
    code
}

fn invalid_token() -> AliReply {
    AliReply::Fail(
        "20001",
        "Insufficient Token Permissions",
        "aop.invalid-app-auth-token",
        "无效的应用授权令牌".into(),
    )
}

/// The merchant `token` stands for, when it is `app_id`'s and valid.
pub(crate) fn merchant_of(
    state: &SandboxState,
    app_id: &str,
    token: &str,
) -> Result<String, AliReply> {
    lock(&state.alipay)
        .app_auth
        .tokens
        .get(token)
        .filter(|a| a.provider_app_id == app_id && a.expires_at > now())
        .map(|a| a.merchant.clone())
        .ok_or_else(invalid_token)
}

/// `alipay.open.auth.token.app`.
pub(super) fn token(state: &SandboxState, req: &AliRequest) -> Result<AliReply, AliReply> {
    let biz = |k: &str| req.biz[k].as_str().filter(|v| !v.is_empty());
    let mut ali = lock(&state.alipay);
    let book = &mut ali.app_auth;
    let grant = match biz("grant_type").ok_or_else(|| missing("grant_type"))? {
        "authorization_code" => book
            .codes
            .remove(biz("code").ok_or_else(|| missing("code"))?),
        "refresh_token" => book
            .refresh
            .remove(biz("refresh_token").ok_or_else(|| missing("refresh_token"))?),
        _ => {
            return Err(super::invalid(
                "isv.grant-type-invalid",
                "grant_type 只支持 authorization_code 与 refresh_token",
            ));
        }
    }
    .filter(|g| g.provider_app_id == req.app_id && g.expires_at > now())
    .ok_or_else(|| {
        AliReply::Fail(
            "40002",
            "Invalid Arguments",
            "isv.code-invalid",
            "授权码code无效".into(),
        )
    })?;
    let (token, refresh) = (format!("2026{}", hex32()), format!("2026{}", hex32()));
    let lasting = |seconds: i64| AppAuth {
        expires_at: now() + seconds,
        ..grant.clone()
    };
    book.tokens.insert(token.clone(), lasting(TOKEN_SECONDS));
    book.refresh
        .insert(refresh.clone(), lasting(2 * TOKEN_SECONDS));
    Ok(AliReply::Ok(json!({
        "user_id": grant.merchant,
        "auth_app_id": grant.provider_app_id,
        "app_auth_token": token,
        "app_refresh_token": refresh,
        "expires_in": TOKEN_SECONDS,
        "re_expires_in": 2 * TOKEN_SECONDS,
    })))
}

/// `alipay.open.auth.token.app.query`.
pub(super) fn query(state: &SandboxState, req: &AliRequest) -> Result<AliReply, AliReply> {
    let token = req.biz["app_auth_token"]
        .as_str()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| missing("app_auth_token"))?;
    let ali = lock(&state.alipay);
    let found = ali
        .app_auth
        .tokens
        .get(token)
        .filter(|a| a.provider_app_id == req.app_id)
        .ok_or_else(invalid_token)?;
    let valid = found.expires_at > now();
    Ok(AliReply::Ok(json!({
        "user_id": found.merchant,
        "auth_app_id": found.provider_app_id,
        "status": if valid { "valid" } else { "invalid" },
        "auth_methods": ["alipay.trade.precreate", "alipay.trade.create", "alipay.trade.query",
                         "alipay.trade.refund", "alipay.trade.close", "alipay.trade.order.settle"],
        "auth_end": dashed_time(found.expires_at),
    })))
}
