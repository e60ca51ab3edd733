//! Browser sign-in through the API, as Quay's UI does it: password sign-in and sign-out (a
//! session cookie), and the authorization URL of an external (OIDC) login service.

use super::{Ctx, R, RestError, Route, route};
use crate::AppState;
use crate::web_login::{clear_session_cookie, is_xhr, session_cookie, state_cookie};
use axum::http::header;
use axum::response::IntoResponse;
use berth_core::auth::login::LoginContext;
use std::sync::Arc;

pub fn routes() -> Vec<Route> {
    vec![
        route!(POST "/api/v1/signin", "Sign in with a password: sets the session cookie (needs X-Requested-With: XMLHttpRequest)", "anonymous",
            body &["*username", "*password"], signin),
        route!(POST "/api/v1/signout", "Sign out: clears the session cookie", "anonymous", signout),
        route!(POST "/api/v1/externallogin/{service_id}", "The URL to send a browser to for signing in with an external (OIDC) service", "anonymous",
            body &["*kind", "redirect"], external_login),
    ]
}

fn require_xhr(ctx: &Ctx) -> Result<(), RestError> {
    // A cross-site form could otherwise sign a browser in to the attacker's account (login CSRF).
    if is_xhr(&ctx.headers) {
        Ok(())
    } else {
        Err(RestError::new(
            403,
            "browser sign-in calls must send X-Requested-With: XMLHttpRequest",
        ))
    }
}

fn with_cookie(body: serde_json::Value, cookie: header::HeaderValue) -> R {
    let mut resp = axum::Json(body).into_response();
    resp.headers_mut().append(header::SET_COOKIE, cookie);
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    Ok(resp)
}

async fn signin(st: Arc<AppState>, ctx: Ctx) -> R {
    require_xhr(&ctx)?;
    let username = ctx.required("username")?;
    let password = ctx.required("password")?;
    let lc = LoginContext {
        ip: ctx.ip.as_deref(),
        channel: "ui",
    };
    match st.auth.login(username, password, &lc).await? {
        // Only a password opens a session: a token (`$app`, `$oauthtoken`, a robot's) is a
        // narrower credential and must not turn into a full browser session.
        Ok(a) if a.via == "password" && a.kind == berth_core::auth::AccountKind::User => {
            with_cookie(
                serde_json::json!({"success": true}),
                session_cookie(&st, a.id),
            )
        }
        Ok(_) => Err(RestError::new(
            403,
            "sign in with a user's password; tokens are for registry clients and the API",
        )),
        Err(e) => Err(e.into_error(username).into()),
    }
}

async fn signout(st: Arc<AppState>, ctx: Ctx) -> R {
    require_xhr(&ctx)?;
    with_cookie(
        serde_json::json!({"success": true}),
        clear_session_cookie(&st),
    )
}

async fn external_login(st: Arc<AppState>, ctx: Ctx) -> R {
    let service = ctx.p("service_id");
    match ctx.required("kind")? {
        "login" => {}
        other => {
            return Err(RestError::bad(format!(
                "kind {other:?} is not supported; use \"login\""
            )));
        }
    }
    let cb = crate::web_login::callback_url(&st, &ctx.headers, service);
    let s = st
        .auth
        .oidc_start(service, &cb, ctx.field("redirect"))
        .await?;
    with_cookie(
        serde_json::json!({"auth_url": s.auth_url}),
        state_cookie(&st, &s.state_cookie),
    )
}
