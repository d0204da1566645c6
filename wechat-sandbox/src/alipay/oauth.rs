//! Buyer login: `alipay.system.oauth.token` exchanges a one-time auth code — minted for a user
//! through the control API (`POST /sandbox/alipay/auth-code`, [`crate::Sandbox::alipay_auth_code`]),
//! as the Alipay Mini Program's `my.getAuthCode` or the web authorization page would hand it to
//! the app — for the user's id, open id and an access token (a refresh token renews it);
//! `alipay.user.info.share` reads the user's profile with the token. A code works once, for its
//! own app; a token only for its own app and until it expires.

use serde_json::json;

use super::{AliReply, AliRequest, missing};
use crate::state::{hex32, now};
use crate::{SandboxState, lock};

/// How long an access token lasts (seconds).
const TOKEN_SECONDS: i64 = 1_296_000;

/// Who a code, an access token or a refresh token stands for.
#[derive(Debug, Clone)]
pub(crate) struct AliGrant {
    pub app_id: String,
    pub user_id: String,
    pub expires_at: i64,
}

/// The open id of `user_id` for `app_id`: stable, different per app.
pub(crate) fn open_id(app_id: &str, user_id: &str) -> String {
    use md5::{Digest, Md5};
    let digest = Md5::digest(format!("open:{app_id}:{user_id}").as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("074a{hex}")
}

/// A one-time code for `user_id` of `app_id`.
pub(crate) fn mint(state: &SandboxState, app_id: &str, user_id: &str) -> String {
    let code = hex32();
    lock(&state.alipay).auth_codes.insert(
        code.clone(),
        AliGrant {
            app_id: app_id.to_owned(),
            user_id: user_id.to_owned(),
            expires_at: now() + 300,
        },
    );
    code
}

fn code_invalid() -> AliReply {
    AliReply::Fail(
        "40002",
        "Invalid Arguments",
        "isv.code-invalid",
        "授权码code无效".into(),
    )
}

/// `alipay.system.oauth.token`.
pub(super) fn token(state: &SandboxState, req: &AliRequest) -> Result<AliReply, AliReply> {
    let param = |k: &str| req.params.get(k).filter(|v| !v.is_empty());
    let grant_type = param("grant_type").ok_or_else(|| missing("grant_type"))?;
    let mut ali = lock(&state.alipay);
    let grant = match grant_type.as_str() {
        "authorization_code" => {
            let code = param("code").ok_or_else(|| missing("code"))?;
            ali.auth_codes.remove(code)
        }
        "refresh_token" => {
            let token = param("refresh_token").ok_or_else(|| missing("refresh_token"))?;
            ali.refresh_tokens.remove(token)
        }
        _ => {
            return Err(super::invalid(
                "isv.grant-type-invalid",
                "grant_type 只支持 authorization_code 与 refresh_token",
            ));
        }
    }
    .filter(|g| g.app_id == req.app_id && g.expires_at > now())
    .ok_or_else(code_invalid)?;
    let (access, refresh) = (hex32(), hex32());
    let issued = |seconds: i64| AliGrant {
        expires_at: now() + seconds,
        ..grant.clone()
    };
    ali.access_tokens
        .insert(access.clone(), issued(TOKEN_SECONDS));
    ali.refresh_tokens
        .insert(refresh.clone(), issued(2 * TOKEN_SECONDS));
    Ok(AliReply::Ok(json!({
        "user_id": grant.user_id,
        "open_id": open_id(&grant.app_id, &grant.user_id),
        "access_token": access,
        "expires_in": TOKEN_SECONDS,
        "refresh_token": refresh,
        "re_expires_in": 2 * TOKEN_SECONDS,
        "auth_start": crate::state::dashed_time(now()),
    })))
}

/// `alipay.user.info.share`.
pub(super) fn user_info(state: &SandboxState, req: &AliRequest) -> Result<AliReply, AliReply> {
    let token = req
        .params
        .get("auth_token")
        .filter(|v| !v.is_empty())
        .ok_or_else(|| missing("auth_token"))?;
    let ali = lock(&state.alipay);
    let grant = ali
        .access_tokens
        .get(token)
        .filter(|g| g.app_id == req.app_id && g.expires_at > now())
        .ok_or_else(|| {
            AliReply::Fail(
                "20001",
                "Insufficient Token Permissions",
                "aop.invalid-auth-token",
                "无效的访问令牌".into(),
            )
        })?;
    Ok(AliReply::Ok(json!({
        "user_id": grant.user_id,
        "open_id": open_id(&grant.app_id, &grant.user_id),
        "nick_name": format!("沙箱买家{}", &grant.user_id[grant.user_id.len().saturating_sub(4)..]),
        "avatar": "https://tfs.alipayobjects.com/images/partner/sandbox-avatar.png",
    })))
}
