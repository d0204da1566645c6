//! The WeChat MP API (`api.weixin.qq.com`): tokens with WeChat's invalidation rules, OAuth and
//! Mini Program codes minted through the control API, messages recorded instead of delivered,
//! QR tickets, menus and followers — and user events POSTed to the app's callback URL.

mod api;
mod authorize;
pub mod events;

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::config::MpApp;
use super::state::{IssuedToken, MpState, hex32, now};
use super::{SandboxState, lock};

/// Access tokens live two hours; a replaced `/cgi-bin/token` token keeps working five minutes.
pub const TOKEN_LIFETIME: i64 = 7200;
const GRACE: i64 = 300;

/// The routes.
pub fn routes(state: &Arc<SandboxState>) -> Router<Arc<SandboxState>> {
    Router::new()
        .route(
            "/connect/oauth2/authorize",
            get(authorize::page).post(authorize::allow),
        )
        .route("/cgi-bin/token", get(api::token))
        .route("/cgi-bin/stable_token", post(api::stable_token))
        .route("/sns/oauth2/access_token", get(api::oauth_access_token))
        .route("/sns/oauth2/refresh_token", get(api::oauth_refresh_token))
        .route("/sns/userinfo", get(api::oauth_userinfo))
        .route("/sns/jscode2session", get(api::jscode2session))
        .route("/cgi-bin/message/template/send", post(api::template_send))
        .route("/cgi-bin/message/subscribe/send", post(api::subscribe_send))
        .route("/cgi-bin/message/custom/send", post(api::custom_send))
        .route("/cgi-bin/qrcode/create", post(api::qrcode_create))
        .route("/cgi-bin/menu/create", post(api::menu_create))
        .route("/cgi-bin/menu/get", get(api::menu_get))
        .route("/cgi-bin/menu/delete", get(api::menu_delete))
        .route("/cgi-bin/user/info", get(api::user_info))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(state),
            faults,
        ))
}

/// Faults set through the control API (see [`crate::faults`]): the call answers WeChat's
/// `{"errcode", "errmsg"}` with the fault's code (a number, e.g. `45009`; `-1` otherwise), before
/// it is carried out.
async fn faults(
    axum::extract::State(state): axum::extract::State<Arc<SandboxState>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let path = request.uri().path();
    // The API is named by its path's last part (`send`) or, to tell them apart, the last two
    // (`template/send`).
    let mut parts = path.rsplit('/');
    let last = parts.next().unwrap_or_default();
    let two = format!("{}/{last}", parts.next().unwrap_or_default());
    let code = state
        .faults
        .take_api(&two, crate::faults::Stage::Before)
        .or_else(|| state.faults.take_api(last, crate::faults::Stage::Before));
    match code {
        Some(code) => Json(json!({
            "errcode": code.parse::<i64>().unwrap_or(-1),
            "errmsg": "sandbox fault",
        }))
        .into_response(),
        None => next.run(request).await,
    }
}

/// A WeChat error reply (`{"errcode": …, "errmsg": …}` with HTTP 200, as WeChat answers).
#[derive(Debug)]
pub(crate) struct ApiError {
    errcode: i64,
    errmsg: &'static str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        Json(json!({"errcode": self.errcode, "errmsg": self.errmsg})).into_response()
    }
}

/// A WeChat error.
pub(crate) fn err(errcode: i64, errmsg: &'static str) -> ApiError {
    ApiError { errcode, errmsg }
}

/// A success reply: `fields` plus `errcode: 0`.
pub(crate) fn ok(mut fields: Value) -> Response {
    if let Some(obj) = fields.as_object_mut() {
        obj.insert("errcode".into(), json!(0));
        obj.insert("errmsg".into(), json!("ok"));
    }
    Json(fields).into_response()
}

impl SandboxState {
    pub(crate) fn mp_app(&self, app_id: &str) -> Option<&MpApp> {
        self.config.mp_apps.iter().find(|a| a.app_id == app_id)
    }
}

/// Checks `appid` + `secret` as `/cgi-bin/token` does.
pub(crate) fn check_app<'a>(
    state: &'a SandboxState,
    app_id: &str,
    secret: &str,
) -> Result<&'a MpApp, ApiError> {
    let app = state
        .mp_app(app_id)
        .ok_or_else(|| err(40013, "invalid appid"))?;
    if app.app_secret.expose() != secret {
        return Err(err(40125, "invalid appsecret"));
    }
    Ok(app)
}

/// Issues a token for `app_id`.
pub(crate) fn issue_token(mp: &mut MpState, app_id: &str) -> String {
    let token = format!("SANDBOX_{}{}", hex32(), hex32());
    mp.tokens.insert(
        token.clone(),
        IssuedToken {
            app_id: app_id.to_owned(),
            expires_at: now() + TOKEN_LIFETIME,
        },
    );
    token
}

/// `/cgi-bin/token` semantics: a new token; the previous one keeps working for five minutes.
pub(crate) fn rotate_token(mp: &mut MpState, app_id: &str) -> String {
    if let Some(previous) = mp.latest_token.get(app_id).cloned() {
        if let Some(t) = mp.tokens.get_mut(&previous) {
            t.expires_at = t.expires_at.min(now() + GRACE);
        }
    }
    let token = issue_token(mp, app_id);
    mp.latest_token.insert(app_id.to_owned(), token.clone());
    token
}

/// Checks the `access_token` of an API call; returns the app id.
pub(crate) fn check_token(state: &SandboxState, token: Option<&str>) -> Result<String, ApiError> {
    let token = token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| err(41001, "access_token missing"))?;
    let mp = lock(&state.mp);
    let issued = mp.tokens.get(token).ok_or_else(|| {
        err(
            40001,
            "invalid credential, access_token is invalid or not latest",
        )
    })?;
    if issued.expires_at <= now() {
        return Err(err(42001, "access_token expired"));
    }
    Ok(issued.app_id.clone())
}
