//! WeChat's web authorization page (`open.weixin.qq.com/connect/oauth2/authorize`), played in a
//! browser: the person says which WeChat user they are (an openid) and allows; the page sends
//! them back to `redirect_uri?code=…&state=…` with a code minted as `/sandbox/oauth-code` mints
//! one. Tests mint codes directly; this page is for people trying a server in demo mode (a
//! buyer's login, a seller's QR-code login).

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Form, Json};
use html_escape::encode_quoted_attribute as esc;
use serde::Deserialize;
use serde_json::json;

use crate::SandboxState;
use crate::control::{CodeKind, CodeRequest, mint_code};

/// The authorize request.
#[derive(Debug, Deserialize)]
pub(super) struct Authorize {
    appid: String,
    redirect_uri: String,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    state: String,
    /// The WeChat user the person plays (the form's answer).
    #[serde(default)]
    open_id: Option<String>,
}

/// `GET`: the page.
pub(super) async fn page(Query(q): Query<Authorize>) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>WeChat authorization (sandbox)</title></head>\
         <body style=\"font-family:sans-serif;margin:2rem\"><h1>WeChat (sandbox)</h1>\
         <p>App <b>{app}</b> asks who you are.</p>\
         <form method=\"post\" action=\"/connect/oauth2/authorize\">\
         <input type=\"hidden\" name=\"appid\" value=\"{app}\">\
         <input type=\"hidden\" name=\"redirect_uri\" value=\"{redirect}\">\
         <input type=\"hidden\" name=\"scope\" value=\"{scope}\">\
         <input type=\"hidden\" name=\"state\" value=\"{state}\">\
         <label>Your openid <input id=\"open_id\" name=\"open_id\" value=\"oSandboxUser0001\"></label>\
         <button id=\"allow\" type=\"submit\">Allow</button></form></body></html>",
        app = esc(&q.appid),
        redirect = esc(&q.redirect_uri),
        scope = esc(q.scope.as_deref().unwrap_or("snsapi_base")),
        state = esc(&q.state),
    ))
}

/// `POST`: allowed, back to the app with a code.
pub(super) async fn allow(
    State(state): State<Arc<SandboxState>>,
    Form(f): Form<Authorize>,
) -> Response {
    let mut back = match reqwest::Url::parse(&f.redirect_uri) {
        Ok(u) => u,
        Err(e) => {
            return (
                axum::http::StatusCode::BAD_REQUEST,
                Json(json!({"errcode": 10003, "errmsg": format!("redirect_uri: {e}")})),
            )
                .into_response();
        }
    };
    let request = CodeRequest {
        app_id: f.appid,
        open_id: f.open_id.unwrap_or_default().trim().to_owned(),
        scope: f.scope,
    };
    match mint_code(&state, &request, CodeKind::OAuth) {
        Ok(code) => {
            back.query_pairs_mut()
                .append_pair("code", &code)
                .append_pair("state", &f.state);
            Redirect::to(back.as_str()).into_response()
        }
        Err(e) => e.into_response(),
    }
}
