//! Browser sign-in: the OpenID Connect redirect endpoints (`/oauth2/{service}/start` and
//! `/oauth2/{service}/callback`, Quay's callback path), the session cookie, and how `/api/v1`
//! recognises a browser by it. The JSON endpoints (`/api/v1/signin`, `/signout`,
//! `/externallogin/{service}`) are in `rest/session.rs` and use the helpers here.
//!
//! CSRF: the session cookie is `SameSite=Lax`, and a state-changing `/api/v1` call that
//! authenticates by it must also carry `X-Requested-With: XMLHttpRequest` (Quay's
//! `BROWSER_API_CALLS_XHR_ONLY`): a cross-site page cannot add that header without a CORS
//! preflight, which Berth never grants.

use crate::AppState;
use crate::rest::RestError;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use berth_core::auth::Actor;
use berth_core::auth::oidc::{Callback, PENDING_LOGIN_S, STATE_COOKIE};
use berth_core::auth::session::{SESSION_COOKIE, cookie_value};
use std::collections::HashMap;
use std::sync::Arc;

/// The value of a cookie sent with the request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    cookie_value(
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok()),
        name,
    )
}

fn set_cookie(st: &AppState, name: &str, value: &str, path: &str, max_age: i64) -> HeaderValue {
    let secure = if st.auth.config.session_cookie_secure {
        "; Secure"
    } else {
        ""
    };
    // Lax, not Strict: the provider's redirect back to the callback is a cross-site top-level
    // navigation, and the state cookie must come with it.
    let v =
        format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}");
    // Signed values are base64url and dots: always a valid header value.
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static("berth_invalid=1"))
}

/// `Set-Cookie` for a new session of `account_id`.
pub fn session_cookie(st: &AppState, account_id: i64) -> HeaderValue {
    let value = st.auth.sessions.issue(account_id);
    set_cookie(
        st,
        SESSION_COOKIE,
        &value,
        "/",
        st.auth.sessions.lifetime_s(),
    )
}

/// `Set-Cookie` that removes the session cookie.
pub fn clear_session_cookie(st: &AppState) -> HeaderValue {
    set_cookie(st, SESSION_COOKIE, "", "/", 0)
}

/// `Set-Cookie` for a sign-in in progress; only the callback path ever receives it.
pub fn state_cookie(st: &AppState, value: &str) -> HeaderValue {
    set_cookie(st, STATE_COOKIE, value, "/oauth2/", PENDING_LOGIN_S)
}

fn clear_state_cookie(st: &AppState) -> HeaderValue {
    set_cookie(st, STATE_COOKIE, "", "/oauth2/", 0)
}

/// Whether the request says it is a script's (XHR/fetch) call, which cross-site forms cannot.
pub fn is_xhr(headers: &HeaderMap) -> bool {
    headers
        .get("x-requested-with")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("XMLHttpRequest"))
}

/// The signed-in account of a request without an `Authorization` header: a genuine, unexpired
/// session cookie of an enabled, unlocked user. Anything less is anonymous (a stale cookie must
/// not break public pages). A state-changing call by session needs [`is_xhr`].
pub async fn session_actor(
    st: &AppState,
    headers: &HeaderMap,
    method: &Method,
) -> Result<Option<Actor>, RestError> {
    let Some(s) = cookie(headers, SESSION_COOKIE).and_then(|c| st.auth.sessions.check(c)) else {
        return Ok(None);
    };
    let Some(row) = st.auth.account_by_id(s.uid).await? else {
        return Ok(None);
    };
    // A session is not a password attempt: failed guesses elsewhere do not end it.
    if row.kind != berth_core::auth::AccountKind::User || !row.enabled {
        return Ok(None);
    }
    let safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe && !is_xhr(headers) {
        return Err(RestError::new(
            403,
            "a browser session may change things only from scripts: send X-Requested-With: XMLHttpRequest (or use an API token)",
        ));
    }
    Ok(Some(st.auth.actor(&row, "session")))
}

/// This registry's callback URL for a provider.
pub fn callback_url(st: &AppState, headers: &HeaderMap, service: &str) -> String {
    format!(
        "{}/oauth2/{service}/callback",
        crate::auth::base_url(st, headers)
    )
}

fn query(req: &Request) -> HashMap<String, String> {
    form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

/// A sign-in failure shown to a person: plain text, and the pending state cleared.
fn failure(st: &AppState, e: berth_core::Error) -> Response {
    let e = RestError::from(e);
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("Sign-in failed: {}\n", e.message),
    )
        .into_response();
    resp.headers_mut()
        .append(header::SET_COOKIE, clear_state_cookie(st));
    resp
}

fn redirect(to: &str) -> Response {
    let mut resp = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// `GET /oauth2/{service}/start?redirect=/path`: sends the browser to the provider.
pub async fn start(
    State(st): State<Arc<AppState>>,
    Path(service): Path<String>,
    req: Request,
) -> Response {
    let q = query(&req);
    let cb = callback_url(&st, req.headers(), &service);
    match st
        .auth
        .oidc_start(&service, &cb, q.get("redirect").map(String::as_str))
        .await
    {
        Ok(s) => {
            let mut resp = redirect(&s.auth_url);
            resp.headers_mut()
                .append(header::SET_COOKIE, state_cookie(&st, &s.state_cookie));
            resp
        }
        Err(e) => failure(&st, e),
    }
}

/// `GET /oauth2/{service}/callback?code=…&state=…`: where the provider sends the browser back.
pub async fn callback(
    State(st): State<Arc<AppState>>,
    Path(service): Path<String>,
    req: Request,
) -> Response {
    let ip = crate::auth::client_ip(&req);
    let q = query(&req);
    let get = |k: &str| q.get(k).map(String::as_str);
    let cb = Callback {
        code: get("code"),
        state: get("state"),
        error: get("error"),
        error_description: get("error_description"),
    };
    let pending = cookie(req.headers(), STATE_COOKIE);
    match st
        .auth
        .oidc_finish(&service, pending, &cb, ip.as_deref())
        .await
    {
        Ok(login) => {
            let mut resp = redirect(&login.after);
            let h = resp.headers_mut();
            h.append(header::SET_COOKIE, session_cookie(&st, login.actor.id));
            h.append(header::SET_COOKIE, clear_state_cookie(&st));
            resp
        }
        Err(e) => failure(&st, e),
    }
}
