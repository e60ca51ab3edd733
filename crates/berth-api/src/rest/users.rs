//! Users: the caller's own account, sign-up, Quay's first-user bootstrap, public user info.

use super::{Ctx, R, RestError, Route, avatar, created, json, no_content, route};
use crate::AppState;
use berth_core::auth::accounts::UserChanges;
use std::sync::Arc;

pub fn routes() -> Vec<Route> {
    vec![
        route!(GET "/api/v1/user/", "The calling user, its organizations and settings", "user:read", get_user),
        route!(PUT "/api/v1/user/", "Change the calling user's password, email or tag expiration", "user:admin",
            body &["password", "email", "tag_expiration_s:integer"], update_user),
        route!(POST "/api/v1/user/", "Sign up (FEATURE_USER_CREATION)", "anonymous",
            body &["*username", "*password", "email"], create_user),
        route!(DELETE "/api/v1/user/", "Delete the calling user; its repositories go with it and are collected in the background", "user:admin", delete_user),
        route!(POST "/api/v1/user/initialize", "Create the first user of an empty registry (FEATURE_USER_INITIALIZE)", "anonymous",
            body &["*username", "*password", "email", "access_token:boolean"], initialize),
        route!(GET "/api/v1/users/{username}", "Public information about a user", "anonymous", public_user),
    ]
}

/// Quay's user view.
pub async fn user_view(
    st: &AppState,
    row: &berth_core::auth::Actor,
) -> Result<serde_json::Value, RestError> {
    let acct = st
        .auth
        .account_by_id(row.id)
        .await?
        .ok_or_else(|| RestError::new(404, "the account no longer exists"))?;
    let mut orgs: Vec<serde_json::Value> = Vec::new();
    let mut seen = std::collections::HashMap::<String, (bool, bool)>::new();
    for (org, team) in st.auth.memberships(acct.id).await? {
        let e = seen.entry(org).or_default();
        e.0 |= team.role == "admin";
        e.1 |= team.role == "admin" || team.role == "creator";
    }
    let mut names: Vec<_> = seen.into_iter().collect();
    names.sort();
    for (org, (admin, creator)) in names {
        orgs.push(serde_json::json!({
            "name": org, "avatar": avatar(&org, "org"), "is_org_admin": admin,
            "can_create_repo": creator, "public": false, "preferred_namespace": false,
        }));
    }
    let logins: Vec<serde_json::Value> = st
        .auth
        .external_logins(acct.id)
        .await?
        .into_iter()
        .map(|(service, subject, meta)| {
            serde_json::json!({
                "service": service, "service_identifier": subject,
                "metadata": serde_json::from_str::<serde_json::Value>(&meta).unwrap_or_default(),
            })
        })
        .collect();
    Ok(serde_json::json!({
        "anonymous": false,
        "username": acct.name,
        "email": acct.email,
        "verified": true,
        "avatar": avatar(&acct.name, "user"),
        "organizations": orgs,
        "logins": logins,
        "can_create_repo": true,
        "preferred_namespace": false,
        "tag_expiration_s": acct.tag_expiration_s,
        "is_me": true,
        "super_user": st.auth.is_superuser(&acct),
        "enabled": acct.enabled,
        "has_password_set": acct.password_hash.is_some(),
        "failed_logins": acct.failed_logins,
    }))
}

async fn get_user(st: Arc<AppState>, ctx: Ctx) -> R {
    let a = ctx.actor()?;
    if a.kind != berth_core::auth::AccountKind::User || !a.has_scope("user:read") {
        return Err(RestError::new(
            403,
            "this credential cannot read a user account (needs user:read)",
        ));
    }
    json(user_view(&st, a).await?)
}

async fn update_user(st: Arc<AppState>, ctx: Ctx) -> R {
    let a = ctx.actor()?;
    let changes = UserChanges {
        password: ctx.field("password"),
        email: ctx.field("email"),
        tag_expiration_s: ctx.body.get("tag_expiration_s").and_then(|v| v.as_i64()),
        ..UserChanges::default()
    };
    st.auth.update_user(a, &a.name, &changes).await?;
    json(user_view(&st, a).await?)
}

async fn create_user(st: Arc<AppState>, ctx: Ctx) -> R {
    if !st.auth.config.user_creation {
        return Err(RestError::new(
            403,
            "self-service sign-up is disabled (FEATURE_USER_CREATION); ask a superuser",
        ));
    }
    let row = st
        .auth
        .create_user(
            ctx.caller.as_ref(),
            ctx.required("username")?,
            Some(ctx.required("password")?),
            ctx.field("email"),
            false,
        )
        .await?;
    created(
        serde_json::json!({"username": row.name, "email": row.email, "awaiting_verification": false}),
    )
}

async fn delete_user(st: Arc<AppState>, ctx: Ctx) -> R {
    let a = ctx.actor()?;
    st.auth.delete_namespace_account(a, &a.name.clone()).await?;
    no_content()
}

/// Quay's bootstrap: with `FEATURE_USER_INITIALIZE`, the first user of an empty database, as a
/// superuser, optionally with an API token carrying every scope.
async fn initialize(st: Arc<AppState>, ctx: Ctx) -> R {
    if !st.user_initialize {
        return Err(RestError::new(
            404,
            "user initialization is disabled: set FEATURE_USER_INITIALIZE: true",
        ));
    }
    if st.auth.has_users().await? {
        return Err(RestError::bad(
            "cannot initialize: the registry already has users",
        ));
    }
    let username = ctx.required("username")?;
    let row = st
        .auth
        .create_user(
            None,
            username,
            Some(ctx.required("password")?),
            ctx.field("email"),
            true,
        )
        .await?;
    let mut out = serde_json::json!({
        // As for users a superuser creates: the password that logs in (Berth has no separate
        // encrypted form), never the stored hash.
        "username": row.name, "email": row.email, "encrypted_password": ctx.required("password")?,
    });
    if ctx.body.get("access_token").and_then(|v| v.as_bool()) == Some(true) {
        let actor = st.auth.actor(&row, "password");
        let scopes: Vec<String> = berth_core::auth::API_SCOPES
            .iter()
            .map(|s| s.to_string())
            .collect();
        let t = st
            .auth
            .create_api_token(&actor, "initialize", &scopes, None)
            .await?;
        out["access_token"] = t.token.into();
    }
    json(out)
}

async fn public_user(st: Arc<AppState>, ctx: Ctx) -> R {
    let name = ctx.p("username");
    let row = st.auth.user(name).await?;
    let mut v = serde_json::json!({"username": row.name, "avatar": avatar(&row.name, "user")});
    if ctx.caller.as_ref().is_some_and(|c| c.superuser) {
        v["super_user"] = st.auth.is_superuser(&row).into();
    }
    json(v)
}
