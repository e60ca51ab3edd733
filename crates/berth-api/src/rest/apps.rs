//! Organizations' OAuth applications and the API tokens minted for them (Quay's paths).

use super::views::Avatar;
use super::{Created, Ctx, Done, NonEmpty, Reply, RestError, Route, done, route, secs};
use crate::AppState;
use berth_core::auth::apps::AppFields;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;

type Res<T> = Result<T, RestError>;

pub fn routes() -> Vec<Route> {
    vec![
        route!(GET "/api/v1/organization/{orgname}/applications", "An organization's OAuth applications", "org:admin",
            list() -> Reply<OAuthApps>),
        route!(POST "/api/v1/organization/{orgname}/applications", "Create an OAuth application (client id and secret)", "org:admin",
            create(AppBody) -> Created<OAuthApp>),
        route!(GET "/api/v1/organization/{orgname}/applications/{client_id}", "One OAuth application", "org:admin",
            get() -> Reply<OAuthApp>),
        route!(PUT "/api/v1/organization/{orgname}/applications/{client_id}", "Change an OAuth application", "org:admin",
            update(AppBody) -> Reply<OAuthApp>),
        route!(DELETE "/api/v1/organization/{orgname}/applications/{client_id}", "Delete an OAuth application and its tokens", "org:admin",
            delete() -> Done),
        route!(POST "/api/v1/organization/{orgname}/applications/{client_id}/resetclientsecret", "Give an OAuth application a new client secret", "org:admin",
            reset_secret() -> Reply<OAuthApp>),
        route!(GET "/api/v1/organization/{orgname}/applications/{client_id}/tokens", "API tokens minted for an application", "org:admin",
            list_tokens() -> Reply<AppApiTokens>),
        route!(POST "/api/v1/organization/{orgname}/applications/{client_id}/tokens", "Mint an API token for an application; it acts for the caller within its scope, and is shown once", "org:admin",
            mint(Mint) -> Created<AppApiToken>),
        route!(DELETE "/api/v1/organization/{orgname}/applications/{client_id}/tokens/{token_uuid}", "Revoke an application's API token", "org:admin",
            revoke() -> Done),
    ]
}

/// An OAuth application's fields, to create or change it.
#[derive(Deserialize, ToSchema)]
pub struct AppBody {
    pub name: NonEmpty,
    pub redirect_uri: Option<String>,
    pub application_uri: Option<String>,
    pub description: Option<String>,
    pub avatar_email: Option<String>,
}

impl AppBody {
    fn fields(&self) -> AppFields<'_> {
        AppFields {
            name: &self.name,
            description: self.description.as_deref(),
            application_uri: self.application_uri.as_deref(),
            redirect_uri: self.redirect_uri.as_deref(),
            avatar_email: self.avatar_email.as_deref(),
        }
    }
}

#[derive(Deserialize, ToSchema)]
pub struct Mint {
    pub name: NonEmpty,
    /// Space-separated scopes.
    pub scope: NonEmpty,
    /// Lifetime in seconds (at least 1).
    pub expiration: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct OAuthApp {
    pub name: String,
    pub description: String,
    pub application_uri: String,
    pub client_id: String,
    pub client_secret: String,
    pub redirect_uri: String,
    pub avatar_email: Option<String>,
    pub avatar: Avatar,
}

impl OAuthApp {
    fn new(a: &berth_core::OAuthApp) -> OAuthApp {
        OAuthApp {
            name: a.name.clone(),
            description: a.description.clone(),
            application_uri: a.application_uri.clone(),
            client_id: a.client_id.clone(),
            client_secret: a.client_secret.clone(),
            redirect_uri: a.redirect_uri.clone(),
            avatar_email: a.avatar_email.clone(),
            avatar: Avatar::of(&a.name, "app"),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct OAuthApps {
    pub applications: Vec<OAuthApp>,
}

/// An API token minted for an application; `token` (the secret) only when minted.
#[derive(Serialize, ToSchema)]
pub struct AppApiToken {
    pub uuid: String,
    pub name: String,
    /// Space-separated scopes.
    pub scope: String,
    pub expires_at: Option<i64>,
    pub created: i64,
    pub created_by: Option<String>,
    pub last_accessed: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

impl AppApiToken {
    fn new(t: &berth_core::ApiToken, creator: Option<&str>) -> AppApiToken {
        AppApiToken {
            uuid: t.uuid.clone(),
            name: t.name.clone(),
            scope: t.scopes.clone(),
            expires_at: secs(t.expires_at),
            created: t.created_at / 1000,
            created_by: creator.map(str::to_string),
            last_accessed: secs(t.last_accessed),
            token: None,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct AppApiTokens {
    pub tokens: Vec<AppApiToken>,
}

async fn list(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<OAuthApps>> {
    let apps = st.auth.oauth_apps(ctx.actor()?, ctx.p("orgname")).await?;
    Ok(Reply::new(OAuthApps {
        applications: apps.iter().map(OAuthApp::new).collect(),
    }))
}

async fn create(st: Arc<AppState>, ctx: Ctx, b: AppBody) -> Res<Created<OAuthApp>> {
    let a = st
        .auth
        .create_oauth_app(ctx.actor()?, ctx.p("orgname"), &b.fields())
        .await?;
    Ok(Reply::new(OAuthApp::new(&a)))
}

async fn get(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<OAuthApp>> {
    let a = st
        .auth
        .oauth_app(ctx.actor()?, ctx.p("orgname"), ctx.p("client_id"))
        .await?;
    Ok(Reply::new(OAuthApp::new(&a)))
}

async fn update(st: Arc<AppState>, ctx: Ctx, b: AppBody) -> Res<Reply<OAuthApp>> {
    let a = st
        .auth
        .update_oauth_app(
            ctx.actor()?,
            ctx.p("orgname"),
            ctx.p("client_id"),
            &b.fields(),
            false,
        )
        .await?;
    Ok(Reply::new(OAuthApp::new(&a)))
}

async fn delete(st: Arc<AppState>, ctx: Ctx) -> Res<Done> {
    st.auth
        .delete_oauth_app(ctx.actor()?, ctx.p("orgname"), ctx.p("client_id"))
        .await?;
    done()
}

async fn reset_secret(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<OAuthApp>> {
    let a = st
        .auth
        .update_oauth_app(
            ctx.actor()?,
            ctx.p("orgname"),
            ctx.p("client_id"),
            &AppFields::default(),
            true,
        )
        .await?;
    Ok(Reply::new(OAuthApp::new(&a)))
}

async fn list_tokens(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<AppApiTokens>> {
    let tokens = st
        .auth
        .oauth_app_tokens(ctx.actor()?, ctx.p("orgname"), ctx.p("client_id"))
        .await?
        .iter()
        .map(|(t, creator)| AppApiToken::new(t, creator.as_deref()))
        .collect();
    Ok(Reply::new(AppApiTokens { tokens }))
}

async fn mint(st: Arc<AppState>, ctx: Ctx, b: Mint) -> Res<Created<AppApiToken>> {
    let a = ctx.actor()?;
    let scopes: Vec<String> = b.scope.split_whitespace().map(str::to_string).collect();
    if b.expiration.is_some_and(|e| e < 1) {
        return Err(RestError::bad("expiration must be at least 1 (seconds)"));
    }
    let t = st
        .auth
        .mint_app_token(
            a,
            ctx.p("orgname"),
            ctx.p("client_id"),
            &b.name,
            &scopes,
            b.expiration,
        )
        .await?;
    let mut v = AppApiToken::new(&t.row, Some(&a.name));
    v.token = Some(t.token);
    Ok(Reply::new(v))
}

async fn revoke(st: Arc<AppState>, ctx: Ctx) -> Res<Done> {
    st.auth
        .revoke_app_token(
            ctx.actor()?,
            ctx.p("orgname"),
            ctx.p("client_id"),
            ctx.p("token_uuid"),
        )
        .await?;
    done()
}
