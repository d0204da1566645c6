//! The MP API endpoints.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{ApiError, TOKEN_LIFETIME, check_app, check_token, err, issue_token, ok, rotate_token};
use crate::state::{MintedCode, MpUser, QrTicket, SentMessage, WebToken, hex32, key, now};
use crate::{SandboxState, lock};

type Q = Query<HashMap<String, String>>;

fn q<'a>(query: &'a HashMap<String, String>, name: &str) -> &'a str {
    query.get(name).map(String::as_str).unwrap_or_default()
}

fn json_body(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice::<Value>(body)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| err(47001, "data format error"))
}

/// `GET /cgi-bin/token`.
pub(super) async fn token(
    State(state): State<Arc<SandboxState>>,
    Query(query): Q,
) -> Result<Response, ApiError> {
    if q(&query, "grant_type") != "client_credential" {
        return Err(err(40002, "invalid grant_type"));
    }
    let app_id = q(&query, "appid");
    check_app(&state, app_id, q(&query, "secret"))?;
    let token = rotate_token(&mut lock(&state.mp), app_id);
    Ok(Json(json!({"access_token": token, "expires_in": TOKEN_LIFETIME})).into_response())
}

/// `POST /cgi-bin/stable_token`: the current stable token while valid; `force_refresh`
/// replaces it (and the old one stops working at once).
pub(super) async fn stable_token(
    State(state): State<Arc<SandboxState>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body = json_body(&body)?;
    if body["grant_type"] != "client_credential" {
        return Err(err(40002, "invalid grant_type"));
    }
    let app_id = body["appid"].as_str().unwrap_or_default();
    check_app(&state, app_id, body["secret"].as_str().unwrap_or_default())?;
    let force = body["force_refresh"].as_bool().unwrap_or(false);
    let mut mp = lock(&state.mp);
    let current = mp
        .stable_token
        .get(app_id)
        .and_then(|t| mp.tokens.get(t).map(|i| (t.clone(), i.expires_at)))
        .filter(|(_, exp)| *exp > now());
    let (token, expires_at) = match current {
        Some(c) if !force => c,
        previous => {
            if let Some((old, _)) = previous {
                mp.tokens.remove(&old);
            }
            let t = issue_token(&mut mp, app_id);
            mp.stable_token.insert(app_id.to_owned(), t.clone());
            (t, now() + TOKEN_LIFETIME)
        }
    };
    Ok(Json(json!({"access_token": token, "expires_in": expires_at - now()})).into_response())
}

fn take_code(
    codes: &mut HashMap<String, MintedCode>,
    used: &mut HashSet<String>,
    app_id: &str,
    code: &str,
) -> Result<MintedCode, ApiError> {
    if used.contains(code) {
        return Err(err(40163, "code been used"));
    }
    let minted = codes
        .remove(code)
        .ok_or_else(|| err(40029, "invalid code"))?;
    used.insert(code.to_owned());
    if minted.app_id != app_id || minted.issued_at + 300 < now() {
        return Err(err(40029, "invalid code"));
    }
    Ok(minted)
}

fn web_token_json(t: &WebToken, access: &str, refresh: &str) -> Value {
    json!({
        "access_token": access,
        "expires_in": TOKEN_LIFETIME,
        "refresh_token": refresh,
        "openid": t.open_id,
        "scope": t.scope,
    })
}

/// `GET /sns/oauth2/access_token`.
pub(super) async fn oauth_access_token(
    State(state): State<Arc<SandboxState>>,
    Query(query): Q,
) -> Result<Response, ApiError> {
    if q(&query, "grant_type") != "authorization_code" {
        return Err(err(40002, "invalid grant_type"));
    }
    let app_id = q(&query, "appid");
    check_app(&state, app_id, q(&query, "secret"))?;
    let mut mp = lock(&state.mp);
    let mp = &mut *mp;
    let minted = take_code(
        &mut mp.oauth_codes,
        &mut mp.used_codes,
        app_id,
        q(&query, "code"),
    )?;
    let t = WebToken {
        app_id: app_id.to_owned(),
        open_id: minted.open_id,
        scope: minted.scope,
        expires_at: now() + TOKEN_LIFETIME,
    };
    let (access, refresh) = (hex32(), hex32());
    mp.web_tokens.insert(access.clone(), t.clone());
    mp.refresh_tokens.insert(refresh.clone(), t.clone());
    Ok(Json(web_token_json(&t, &access, &refresh)).into_response())
}

/// `GET /sns/oauth2/refresh_token`.
pub(super) async fn oauth_refresh_token(
    State(state): State<Arc<SandboxState>>,
    Query(query): Q,
) -> Result<Response, ApiError> {
    let mut mp = lock(&state.mp);
    let Some(t) = mp
        .refresh_tokens
        .get(q(&query, "refresh_token"))
        .filter(|t| t.app_id == q(&query, "appid"))
        .cloned()
    else {
        return Err(err(40030, "invalid refresh_token"));
    };
    let access = hex32();
    let mut fresh = t.clone();
    fresh.expires_at = now() + TOKEN_LIFETIME;
    mp.web_tokens.insert(access.clone(), fresh.clone());
    Ok(Json(web_token_json(&fresh, &access, q(&query, "refresh_token"))).into_response())
}

/// `GET /sns/userinfo`.
pub(super) async fn oauth_userinfo(
    State(state): State<Arc<SandboxState>>,
    Query(query): Q,
) -> Result<Response, ApiError> {
    let mp = lock(&state.mp);
    let Some(t) = mp.web_tokens.get(q(&query, "access_token")) else {
        return Err(err(
            40001,
            "invalid credential, access_token is invalid or not latest",
        ));
    };
    if t.expires_at <= now() {
        return Err(err(42001, "access_token expired"));
    }
    if t.open_id != q(&query, "openid") {
        return Err(err(40003, "invalid openid"));
    }
    if !t.scope.contains("snsapi_userinfo") {
        return Err(err(48001, "api unauthorized"));
    }
    Ok(Json(json!({
        "openid": t.open_id,
        "nickname": format!("sandbox-{}", &t.open_id.chars().rev().take(6).collect::<String>()),
        "sex": 0, "province": "", "city": "", "country": "",
        "headimgurl": "", "privilege": [],
    }))
    .into_response())
}

/// `GET /sns/jscode2session`.
pub(super) async fn jscode2session(
    State(state): State<Arc<SandboxState>>,
    Query(query): Q,
) -> Result<Response, ApiError> {
    if q(&query, "grant_type") != "authorization_code" {
        return Err(err(40002, "invalid grant_type"));
    }
    let app_id = q(&query, "appid");
    check_app(&state, app_id, q(&query, "secret"))?;
    let mut mp = lock(&state.mp);
    let mp = &mut *mp;
    let minted = take_code(
        &mut mp.js_codes,
        &mut mp.used_codes,
        app_id,
        q(&query, "js_code"),
    )?;
    let Some(key_bytes) = crate::state::random_bytes(16) else {
        return Err(err(-1, "system error: no session key"));
    };
    use base64::Engine as _;
    Ok(Json(json!({
        "openid": minted.open_id,
        "session_key": base64::engine::general_purpose::STANDARD.encode(key_bytes),
    }))
    .into_response())
}

fn record(state: &SandboxState, app_id: &str, kind: &str, body: &Value) -> i64 {
    let mut mp = lock(&state.mp);
    mp.msg_seq += 1;
    let msgid = 200_000_000 + mp.msg_seq;
    mp.messages.push(SentMessage {
        msgid,
        app_id: app_id.to_owned(),
        kind: kind.to_owned(),
        touser: body["touser"].as_str().unwrap_or_default().to_owned(),
        body: body.clone(),
    });
    msgid
}

/// Authenticated JSON POST: the app id and the body.
fn authed(
    state: &SandboxState,
    query: &HashMap<String, String>,
    body: &[u8],
) -> Result<(String, Value), ApiError> {
    let app_id = check_token(state, query.get("access_token").map(String::as_str))?;
    Ok((app_id, json_body(body)?))
}

/// `POST /cgi-bin/message/template/send`.
pub(super) async fn template_send(
    State(state): State<Arc<SandboxState>>,
    Query(query): Q,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (app_id, body) = authed(&state, &query, &body)?;
    if body["touser"].as_str().unwrap_or_default().is_empty() {
        return Err(err(40003, "invalid openid"));
    }
    if body["template_id"].as_str().unwrap_or_default().is_empty() {
        return Err(err(40037, "invalid template_id"));
    }
    // `client_msg_id`: one message per user and id, as WeChat (its first msgid again).
    if let Some(id) = body["client_msg_id"].as_str().filter(|s| !s.is_empty()) {
        let mp = lock(&state.mp);
        let earlier = mp.messages.iter().find(|m| {
            m.kind == "template"
                && m.app_id == app_id
                && m.touser == body["touser"].as_str().unwrap_or_default()
                && m.body["client_msg_id"] == id
        });
        if let Some(m) = earlier {
            return Ok(ok(json!({"msgid": m.msgid})));
        }
    }
    let msgid = record(&state, &app_id, "template", &body);
    Ok(ok(json!({"msgid": msgid})))
}

/// `POST /cgi-bin/message/subscribe/send`.
pub(super) async fn subscribe_send(
    State(state): State<Arc<SandboxState>>,
    Query(query): Q,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (app_id, body) = authed(&state, &query, &body)?;
    if body["touser"].as_str().unwrap_or_default().is_empty() {
        return Err(err(40003, "invalid openid"));
    }
    if body["template_id"].as_str().unwrap_or_default().is_empty() {
        return Err(err(40037, "invalid template_id"));
    }
    if !body["data"].is_object() {
        return Err(err(47003, "argument invalid! data is empty"));
    }
    record(&state, &app_id, "subscribe", &body);
    Ok(ok(json!({})))
}

/// `POST /cgi-bin/message/custom/send`.
pub(super) async fn custom_send(
    State(state): State<Arc<SandboxState>>,
    Query(query): Q,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (app_id, body) = authed(&state, &query, &body)?;
    if body["touser"].as_str().unwrap_or_default().is_empty() {
        return Err(err(40003, "invalid openid"));
    }
    let msgtype = body["msgtype"].as_str().unwrap_or_default();
    if body[msgtype].is_null() {
        return Err(err(40008, "invalid message type"));
    }
    record(&state, &app_id, "custom", &body);
    Ok(ok(json!({})))
}

/// `POST /cgi-bin/qrcode/create`.
pub(super) async fn qrcode_create(
    State(state): State<Arc<SandboxState>>,
    Query(query): Q,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (app_id, body) = authed(&state, &query, &body)?;
    let action = body["action_name"].as_str().unwrap_or_default();
    let scene = &body["action_info"]["scene"];
    let scene = match action {
        "QR_SCENE" | "QR_LIMIT_SCENE" => scene["scene_id"].as_u64().map(|i| i.to_string()),
        "QR_STR_SCENE" | "QR_LIMIT_STR_SCENE" => scene["scene_str"].as_str().map(str::to_owned),
        _ => return Err(err(40097, "invalid args: action_name")),
    };
    let Some(scene) = scene.filter(|s| !s.is_empty() && s.chars().count() <= 64) else {
        return Err(err(40097, "invalid args: scene"));
    };
    let temporary = matches!(action, "QR_SCENE" | "QR_STR_SCENE");
    let expire = temporary.then(|| {
        body["expire_seconds"]
            .as_i64()
            .unwrap_or(60)
            .clamp(60, 2_592_000)
    });
    let ticket = format!("gQ{}", hex32());
    lock(&state.mp).tickets.insert(
        ticket.clone(),
        QrTicket {
            app_id,
            scene,
            expires_at: expire.map(|e| now() + e),
        },
    );
    let mut reply =
        json!({"ticket": ticket, "url": format!("http://weixin.qq.com/q/{}", &ticket[2..24])});
    if let Some(e) = expire {
        reply["expire_seconds"] = json!(e);
    }
    Ok(Json(reply).into_response())
}

/// `POST /cgi-bin/menu/create`.
pub(super) async fn menu_create(
    State(state): State<Arc<SandboxState>>,
    Query(query): Q,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (app_id, body) = authed(&state, &query, &body)?;
    let buttons = body["button"].as_array().map_or(0, Vec::len);
    if !(1..=3).contains(&buttons) {
        return Err(err(40016, "invalid button size"));
    }
    lock(&state.mp).menus.insert(app_id, body);
    Ok(ok(json!({})))
}

/// `GET /cgi-bin/menu/get`.
pub(super) async fn menu_get(
    State(state): State<Arc<SandboxState>>,
    Query(query): Q,
) -> Result<Response, ApiError> {
    let app_id = check_token(&state, query.get("access_token").map(String::as_str))?;
    match lock(&state.mp).menus.get(&app_id) {
        Some(menu) => Ok(Json(json!({"menu": menu})).into_response()),
        None => Err(err(46003, "menu no exist")),
    }
}

/// `GET /cgi-bin/menu/delete`.
pub(super) async fn menu_delete(
    State(state): State<Arc<SandboxState>>,
    Query(query): Q,
) -> Result<Response, ApiError> {
    let app_id = check_token(&state, query.get("access_token").map(String::as_str))?;
    lock(&state.mp).menus.remove(&app_id);
    Ok(ok(json!({})))
}

/// `GET /cgi-bin/user/info`.
pub(super) async fn user_info(
    State(state): State<Arc<SandboxState>>,
    Query(query): Q,
) -> Result<Response, ApiError> {
    let app_id = check_token(&state, query.get("access_token").map(String::as_str))?;
    let openid = q(&query, "openid");
    let mp = lock(&state.mp);
    let Some(user) = mp.users.get(&key(&app_id, openid)) else {
        return Err(err(40003, "invalid openid"));
    };
    let user: &MpUser = user;
    if !user.subscribed {
        return Ok(Json(json!({"subscribe": 0, "openid": openid})).into_response());
    }
    Ok(Json(json!({
        "subscribe": 1, "openid": openid, "language": "zh_CN",
        "subscribe_time": user.subscribe_time, "remark": "", "groupid": 0, "tagid_list": [],
        "subscribe_scene": if user.qr_scene_str.is_empty() { "ADD_SCENE_SEARCH" } else { "ADD_SCENE_QR_CODE" },
        "qr_scene": 0, "qr_scene_str": user.qr_scene_str,
    }))
    .into_response())
}
