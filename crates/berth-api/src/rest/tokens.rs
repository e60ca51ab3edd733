//! App-specific tokens (passwords for registry clients) and API bearer tokens with scopes.

use super::{Ctx, R, RestError, Route, created, json, no_content, route, secs};
use crate::AppState;
use std::sync::Arc;

pub fn routes() -> Vec<Route> {
    vec![
        route!(GET "/api/v1/user/apptoken", "The calling user's app-specific tokens (without their secrets)", "user:admin",
            query &["expiring"], list_app),
        route!(POST "/api/v1/user/apptoken", "Create an app-specific token; its token_code is shown here", "user:admin",
            body &["*title"], create_app),
        route!(GET "/api/v1/user/apptoken/{token_uuid}", "One app-specific token, with its token_code", "user:admin", get_app),
        route!(DELETE "/api/v1/user/apptoken/{token_uuid}", "Revoke an app-specific token", "user:admin", delete_app),
        route!(GET "/api/v1/user/apitoken", "The calling user's API tokens (Berth)", "user:admin", list_api),
        route!(POST "/api/v1/user/apitoken", "Create an API bearer token with scopes (Berth); the token is shown once", "user:admin",
            body &["*name", "*scopes:array", "expires_in_s:integer"], create_api),
        route!(DELETE "/api/v1/user/apitoken/{token_uuid}", "Revoke an API token (Berth)", "user:admin", delete_api),
    ]
}

fn app_view(t: &berth_core::auth::accounts::AppToken, code: Option<&str>) -> serde_json::Value {
    let mut v = serde_json::json!({
        "uuid": t.uuid, "title": t.title,
        "last_accessed": secs(t.last_accessed), "created": secs(Some(t.created_at)),
        "expiration": secs(t.expires_at),
    });
    if let Some(c) = code {
        v["token_code"] = c.into();
    }
    v
}

fn user_actor(ctx: &Ctx) -> Result<&berth_core::auth::Actor, RestError> {
    let a = ctx.actor()?;
    if a.kind != berth_core::auth::AccountKind::User || !a.has_scope("user:admin") {
        return Err(RestError::new(
            403,
            "needs a user's credentials with the user:admin scope",
        ));
    }
    Ok(a)
}

async fn list_app(st: Arc<AppState>, ctx: Ctx) -> R {
    let a = user_actor(&ctx)?;
    let now = berth_core::now_ms();
    let expiring = ctx.q_bool("expiring", false);
    let tokens: Vec<_> = st
        .auth
        .app_tokens(a)
        .await?
        .into_iter()
        .filter(|t| {
            !expiring
                || t.expires_at
                    .is_some_and(|e| e > now && e - now < 7 * 86_400_000)
        })
        .map(|t| app_view(&t, None))
        .collect();
    json(serde_json::json!({"tokens": tokens, "only_expiring": expiring}))
}

async fn create_app(st: Arc<AppState>, ctx: Ctx) -> R {
    let a = user_actor(&ctx)?;
    let t = st.auth.create_app_token(a, ctx.required("title")?).await?;
    json(serde_json::json!({"token": app_view(&t.row, Some(&t.token))}))
}

async fn get_app(st: Arc<AppState>, ctx: Ctx) -> R {
    let a = user_actor(&ctx)?;
    let t = st.auth.app_token(a, ctx.p("token_uuid")).await?;
    let code = st.auth.sealer.open_string(&t.token_sealed);
    json(serde_json::json!({"token": app_view(&t, code.as_deref())}))
}

async fn delete_app(st: Arc<AppState>, ctx: Ctx) -> R {
    st.auth
        .delete_app_token(user_actor(&ctx)?, ctx.p("token_uuid"))
        .await?;
    no_content()
}

fn api_view(t: &berth_core::auth::accounts::ApiToken) -> serde_json::Value {
    serde_json::json!({
        "uuid": t.uuid, "name": t.name, "scope": t.scopes,
        "created": secs(Some(t.created_at)), "expires_at": secs(t.expires_at), "last_accessed": secs(t.last_accessed),
    })
}

async fn list_api(st: Arc<AppState>, ctx: Ctx) -> R {
    let a = user_actor(&ctx)?;
    let tokens: Vec<_> = st.auth.api_tokens(a).await?.iter().map(api_view).collect();
    json(serde_json::json!({"tokens": tokens}))
}

async fn create_api(st: Arc<AppState>, ctx: Ctx) -> R {
    let a = user_actor(&ctx)?;
    let scopes: Vec<String> = match ctx.body.get("scopes") {
        Some(serde_json::Value::Array(v)) => v
            .iter()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect(),
        Some(serde_json::Value::String(s)) => s.split_whitespace().map(str::to_string).collect(),
        _ => {
            return Err(RestError::bad(
                "field \"scopes\" is required: a list such as [\"repo:read\", \"user:read\"]",
            ));
        }
    };
    let expires = ctx.body.get("expires_in_s").and_then(|v| v.as_i64());
    if expires.is_some_and(|e| e < 1) {
        return Err(RestError::bad("expires_in_s must be at least 1"));
    }
    let t = st
        .auth
        .create_api_token(a, ctx.required("name")?, &scopes, expires)
        .await?;
    let mut v = api_view(&t.row);
    v["token"] = t.token.into();
    created(v)
}

async fn delete_api(st: Arc<AppState>, ctx: Ctx) -> R {
    st.auth
        .delete_api_token(user_actor(&ctx)?, ctx.p("token_uuid"))
        .await?;
    no_content()
}
