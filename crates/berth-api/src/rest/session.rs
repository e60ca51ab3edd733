//! Browser sign-in through the API, as Quay's UI does it: password sign-in and sign-out (a
//! session cookie), and the authorization URL of an external (OIDC) login service.

use super::{Ctx, NonEmpty, Reply, RestError, Route, Success, route};
use crate::AppState;
use crate::web_login::{clear_session_cookie, is_xhr, session_cookie, state_cookie};
use axum::http::header;
use berth_core::auth::login::LoginContext;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;

type Res<T> = Result<T, RestError>;

pub fn routes() -> Vec<Route> {
    vec![
        route!(POST "/api/v1/signin", "Sign in with a password: sets the session cookie (needs X-Requested-With: XMLHttpRequest)", "anonymous",
            signin(SignIn) -> Reply<Success>),
        route!(POST "/api/v1/signout", "Sign out: clears the session cookie", "anonymous",
            signout() -> Reply<Success>),
        route!(POST "/api/v1/externallogin/{service_id}", "The URL to send a browser to for signing in with an external (OIDC) service", "anonymous",
            external_login(ExternalLogin) -> Reply<AuthUrl>),
    ]
}

#[derive(Deserialize, ToSchema)]
pub struct SignIn {
    pub username: NonEmpty,
    pub password: NonEmpty,
}

#[derive(Deserialize, ToSchema)]
#[schema(as = ExternalLoginRequest)]
pub struct ExternalLogin {
    /// Only `login`.
    pub kind: NonEmpty,
    /// Where to send the browser after signing in.
    pub redirect: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct AuthUrl {
    pub auth_url: String,
}

fn require_xhr(ctx: &Ctx) -> Res<()> {
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

fn with_cookie<T>(body: T, cookie: header::HeaderValue) -> Res<Reply<T>> {
    Ok(Reply::new(body).header(header::SET_COOKIE, cookie).header(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    ))
}

async fn signin(st: Arc<AppState>, ctx: Ctx, b: SignIn) -> Res<Reply<Success>> {
    require_xhr(&ctx)?;
    let (username, password) = (&*b.username, &*b.password);
    let lc = LoginContext {
        ip: ctx.ip.as_deref(),
        channel: "ui",
    };
    match st.auth.login(username, password, &lc).await? {
        // Only a password opens a session: a token (`$app`, `$oauthtoken`, a robot's) is a
        // narrower credential and must not turn into a full browser session.
        Ok(a) if a.via == "password" && a.kind == berth_core::auth::AccountKind::User => {
            with_cookie(Success::yes(), session_cookie(&st, a.id))
        }
        Ok(_) => Err(RestError::new(
            403,
            "sign in with a user's password; tokens are for registry clients and the API",
        )),
        Err(e) => Err(e.into_error(username).into()),
    }
}

async fn signout(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<Success>> {
    require_xhr(&ctx)?;
    with_cookie(Success::yes(), clear_session_cookie(&st))
}

async fn external_login(st: Arc<AppState>, ctx: Ctx, b: ExternalLogin) -> Res<Reply<AuthUrl>> {
    let service = ctx.p("service_id");
    match &*b.kind {
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
        .oidc_start(service, &cb, b.redirect.as_deref())
        .await?;
    with_cookie(
        AuthUrl {
            auth_url: s.auth_url,
        },
        state_cookie(&st, &s.state_cookie),
    )
}
