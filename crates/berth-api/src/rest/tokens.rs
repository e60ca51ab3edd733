//! App-specific tokens (passwords for registry clients) and API bearer tokens with scopes.

use super::{Created, Ctx, Done, NonEmpty, Reply, RestError, Route, done, route, secs};
use crate::AppState;
use berth_core::{ApiToken, AppToken};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;

type Res<T> = Result<T, RestError>;

pub fn routes() -> Vec<Route> {
    vec![
        route!(GET "/api/v1/user/apptoken", "The calling user's app-specific tokens (without their secrets)", "user:admin",
            list_app() -> Reply<AppTokens>, query &["expiring"]),
        route!(POST "/api/v1/user/apptoken", "Create an app-specific token; its token_code is shown here", "user:admin",
            create_app(NewAppToken) -> Reply<AppTokenAnswer>),
        route!(GET "/api/v1/user/apptoken/{token_uuid}", "One app-specific token, with its token_code", "user:admin",
            get_app() -> Reply<AppTokenAnswer>),
        route!(DELETE "/api/v1/user/apptoken/{token_uuid}", "Revoke an app-specific token", "user:admin",
            delete_app() -> Done),
        route!(GET "/api/v1/user/apitoken", "The calling user's API tokens (Berth)", "user:admin",
            list_api() -> Reply<ApiTokens>),
        route!(POST "/api/v1/user/apitoken", "Create an API bearer token with scopes (Berth); the token is shown once", "user:admin",
            create_api(NewApiToken) -> Created<ApiTokenView>),
        route!(DELETE "/api/v1/user/apitoken/{token_uuid}", "Revoke an API token (Berth)", "user:admin",
            delete_api() -> Done),
    ]
}

#[derive(Deserialize, ToSchema)]
pub struct NewAppToken {
    pub title: NonEmpty,
}

#[derive(Deserialize, ToSchema)]
pub struct NewApiToken {
    pub name: NonEmpty,
    /// Such as `["repo:read", "user:read"]`, or the same space-separated.
    pub scopes: Scopes,
    /// Lifetime in seconds (at least 1); no expiry when absent.
    pub expires_in_s: Option<i64>,
}

/// A list of scopes, or one space-separated string of them.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
pub enum Scopes {
    List(Vec<String>),
    Text(String),
}

impl Scopes {
    fn into_vec(self) -> Vec<String> {
        match self {
            Scopes::List(v) => v,
            Scopes::Text(s) => s.split_whitespace().map(str::to_string).collect(),
        }
    }
}

/// An app-specific token; `token_code` (the secret) only where shown.
#[derive(Serialize, ToSchema)]
#[schema(as = AppSpecificToken)]
pub struct AppTokenView {
    pub uuid: String,
    pub title: String,
    pub last_accessed: Option<i64>,
    pub created: i64,
    pub expiration: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_code: Option<String>,
}

impl AppTokenView {
    pub fn new(t: &AppToken, code: Option<String>) -> AppTokenView {
        AppTokenView {
            uuid: t.uuid.clone(),
            title: t.title.clone(),
            last_accessed: secs(t.last_accessed),
            created: t.created_at / 1000,
            expiration: secs(t.expires_at),
            token_code: code,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct AppTokens {
    pub tokens: Vec<AppTokenView>,
    pub only_expiring: bool,
}

#[derive(Serialize, ToSchema)]
pub struct AppTokenAnswer {
    pub token: AppTokenView,
}

/// An API bearer token; `token` (the secret) only when created.
#[derive(Serialize, ToSchema)]
#[schema(as = ApiToken)]
pub struct ApiTokenView {
    pub uuid: String,
    pub name: String,
    /// Space-separated scopes.
    pub scope: String,
    pub created: i64,
    pub expires_at: Option<i64>,
    pub last_accessed: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

impl ApiTokenView {
    pub fn new(t: &ApiToken, token: Option<String>) -> ApiTokenView {
        ApiTokenView {
            uuid: t.uuid.clone(),
            name: t.name.clone(),
            scope: t.scopes.clone(),
            created: t.created_at / 1000,
            expires_at: secs(t.expires_at),
            last_accessed: secs(t.last_accessed),
            token,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ApiTokens {
    pub tokens: Vec<ApiTokenView>,
}

fn user_actor(ctx: &Ctx) -> Res<&berth_core::auth::Actor> {
    let a = ctx.actor()?;
    if a.kind != berth_core::auth::AccountKind::User || !a.has_scope("user:admin") {
        return Err(RestError::new(
            403,
            "needs a user's credentials with the user:admin scope",
        ));
    }
    Ok(a)
}

async fn list_app(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<AppTokens>> {
    let a = user_actor(&ctx)?;
    let now = berth_core::now_ms();
    let expiring = ctx.q_bool("expiring", false);
    let tokens = st
        .auth
        .app_tokens(a)
        .await?
        .into_iter()
        .filter(|t| {
            !expiring
                || t.expires_at
                    .is_some_and(|e| e > now && e - now < 7 * 86_400_000)
        })
        .map(|t| AppTokenView::new(&t, None))
        .collect();
    Ok(Reply::new(AppTokens {
        tokens,
        only_expiring: expiring,
    }))
}

async fn create_app(st: Arc<AppState>, ctx: Ctx, b: NewAppToken) -> Res<Reply<AppTokenAnswer>> {
    let a = user_actor(&ctx)?;
    let t = st.auth.create_app_token(a, &b.title).await?;
    Ok(Reply::new(AppTokenAnswer {
        token: AppTokenView::new(&t.row, Some(t.token)),
    }))
}

async fn get_app(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<AppTokenAnswer>> {
    let a = user_actor(&ctx)?;
    let (t, code) = st.auth.app_token(a, ctx.p("token_uuid")).await?;
    Ok(Reply::new(AppTokenAnswer {
        token: AppTokenView::new(&t, code),
    }))
}

async fn delete_app(st: Arc<AppState>, ctx: Ctx) -> Res<Done> {
    st.auth
        .delete_app_token(user_actor(&ctx)?, ctx.p("token_uuid"))
        .await?;
    done()
}

async fn list_api(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<ApiTokens>> {
    let a = user_actor(&ctx)?;
    let tokens = st
        .auth
        .api_tokens(a)
        .await?
        .iter()
        .map(|t| ApiTokenView::new(t, None))
        .collect();
    Ok(Reply::new(ApiTokens { tokens }))
}

async fn create_api(st: Arc<AppState>, ctx: Ctx, b: NewApiToken) -> Res<Created<ApiTokenView>> {
    let a = user_actor(&ctx)?;
    if b.expires_in_s.is_some_and(|e| e < 1) {
        return Err(RestError::bad("expires_in_s must be at least 1"));
    }
    let t = st
        .auth
        .create_api_token(a, &b.name, &b.scopes.into_vec(), b.expires_in_s)
        .await?;
    Ok(Reply::new(ApiTokenView::new(&t.row, Some(t.token))))
}

async fn delete_api(st: Arc<AppState>, ctx: Ctx) -> Res<Done> {
    st.auth
        .delete_api_token(user_actor(&ctx)?, ctx.p("token_uuid"))
        .await?;
    done()
}
