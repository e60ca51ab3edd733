//! Organizations' OAuth applications and the API tokens minted for them (Quay's paths).

use super::{Ctx, R, RestError, Route, avatar, created, json, no_content, route, secs};
use crate::AppState;
use berth_core::auth::apps::AppFields;
use std::sync::Arc;

const APP_BODY: &[&str] = &[
    "*name",
    "redirect_uri",
    "application_uri",
    "description",
    "avatar_email",
];

pub fn routes() -> Vec<Route> {
    vec![
        route!(GET "/api/v1/organization/{orgname}/applications", "An organization's OAuth applications", "org:admin", list),
        route!(POST "/api/v1/organization/{orgname}/applications", "Create an OAuth application (client id and secret)", "org:admin",
            body APP_BODY, create),
        route!(GET "/api/v1/organization/{orgname}/applications/{client_id}", "One OAuth application", "org:admin", get),
        route!(PUT "/api/v1/organization/{orgname}/applications/{client_id}", "Change an OAuth application", "org:admin",
            body APP_BODY, update),
        route!(DELETE "/api/v1/organization/{orgname}/applications/{client_id}", "Delete an OAuth application and its tokens", "org:admin", delete),
        route!(POST "/api/v1/organization/{orgname}/applications/{client_id}/resetclientsecret", "Give an OAuth application a new client secret", "org:admin", reset_secret),
        route!(GET "/api/v1/organization/{orgname}/applications/{client_id}/tokens", "API tokens minted for an application", "org:admin", list_tokens),
        route!(POST "/api/v1/organization/{orgname}/applications/{client_id}/tokens", "Mint an API token for an application; it acts for the caller within its scope, and is shown once", "org:admin",
            body &["*name", "*scope", "expiration:integer"], mint),
        route!(DELETE "/api/v1/organization/{orgname}/applications/{client_id}/tokens/{token_uuid}", "Revoke an application's API token", "org:admin", revoke),
    ]
}

fn fields(ctx: &Ctx) -> Result<AppFields<'_>, RestError> {
    Ok(AppFields {
        name: ctx.required("name")?,
        description: ctx.field("description"),
        application_uri: ctx.field("application_uri"),
        redirect_uri: ctx.field("redirect_uri"),
        avatar_email: ctx.field("avatar_email"),
    })
}

fn view(st: &AppState, a: &berth_core::OAuthAppRow) -> serde_json::Value {
    serde_json::json!({
        "name": a.name, "description": a.description, "application_uri": a.application_uri,
        "client_id": a.client_id, "client_secret": st.auth.app_secret(a),
        "redirect_uri": a.redirect_uri, "avatar_email": a.avatar_email,
        "avatar": avatar(&a.name, "app"),
    })
}

async fn list(st: Arc<AppState>, ctx: Ctx) -> R {
    let apps = st.auth.oauth_apps(ctx.actor()?, ctx.p("orgname")).await?;
    json(serde_json::json!({"applications": apps.iter().map(|a| view(&st, a)).collect::<Vec<_>>()}))
}

async fn create(st: Arc<AppState>, ctx: Ctx) -> R {
    let a = st
        .auth
        .create_oauth_app(ctx.actor()?, ctx.p("orgname"), &fields(&ctx)?)
        .await?;
    created(view(&st, &a))
}

async fn get(st: Arc<AppState>, ctx: Ctx) -> R {
    let a = st
        .auth
        .oauth_app(ctx.actor()?, ctx.p("orgname"), ctx.p("client_id"))
        .await?;
    json(view(&st, &a))
}

async fn update(st: Arc<AppState>, ctx: Ctx) -> R {
    let a = st
        .auth
        .update_oauth_app(
            ctx.actor()?,
            ctx.p("orgname"),
            ctx.p("client_id"),
            &fields(&ctx)?,
            false,
        )
        .await?;
    json(view(&st, &a))
}

async fn delete(st: Arc<AppState>, ctx: Ctx) -> R {
    st.auth
        .delete_oauth_app(ctx.actor()?, ctx.p("orgname"), ctx.p("client_id"))
        .await?;
    no_content()
}

async fn reset_secret(st: Arc<AppState>, ctx: Ctx) -> R {
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
    json(view(&st, &a))
}

fn token_view(
    t: &berth_core::auth::accounts::ApiToken,
    creator: Option<&str>,
) -> serde_json::Value {
    serde_json::json!({
        "uuid": t.uuid, "name": t.name, "scope": t.scopes,
        "expires_at": secs(t.expires_at), "created": secs(Some(t.created_at)),
        "created_by": creator, "last_accessed": secs(t.last_accessed),
    })
}

async fn list_tokens(st: Arc<AppState>, ctx: Ctx) -> R {
    let out: Vec<serde_json::Value> = st
        .auth
        .oauth_app_tokens(ctx.actor()?, ctx.p("orgname"), ctx.p("client_id"))
        .await?
        .iter()
        .map(|(t, creator)| token_view(t, creator.as_deref()))
        .collect();
    json(serde_json::json!({"tokens": out}))
}

async fn mint(st: Arc<AppState>, ctx: Ctx) -> R {
    let a = ctx.actor()?;
    let scopes: Vec<String> = ctx
        .required("scope")?
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let expiration = ctx.body.get("expiration").and_then(|v| v.as_i64());
    if expiration.is_some_and(|e| e < 1) {
        return Err(RestError::bad("expiration must be at least 1 (seconds)"));
    }
    let t = st
        .auth
        .mint_app_token(
            a,
            ctx.p("orgname"),
            ctx.p("client_id"),
            ctx.required("name")?,
            &scopes,
            expiration,
        )
        .await?;
    let mut v = token_view(&t.row, Some(&a.name));
    v["token"] = t.token.into();
    created(v)
}

async fn revoke(st: Arc<AppState>, ctx: Ctx) -> R {
    st.auth
        .revoke_app_token(
            ctx.actor()?,
            ctx.p("orgname"),
            ctx.p("client_id"),
            ctx.p("token_uuid"),
        )
        .await?;
    no_content()
}
