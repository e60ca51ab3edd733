//! Superuser endpoints: users (create, change, disable, delete, unlock), organizations, signing
//! keys.

use super::{Ctx, R, RestError, Route, avatar, created, json, no_content, route, secs};
use crate::AppState;
use berth_core::auth::accounts::UserChanges;
use berth_core::auth::{AccountKind, Actor};
use std::sync::Arc;

pub fn routes() -> Vec<Route> {
    vec![
        route!(GET "/api/v1/superuser/users/", "Every user", "super:user", query &["disabled", "limit", "next_page"], list_users),
        route!(POST "/api/v1/superuser/users/", "Create a user; a password is generated unless given", "super:user",
            body &["*username", "email", "password", "superuser:boolean"], create_user),
        route!(GET "/api/v1/superuser/users/{username}", "One user", "super:user", get_user),
        route!(PUT "/api/v1/superuser/users/{username}", "Change a user's password, email, enabled or superuser flag", "super:user",
            body &["password", "email", "enabled:boolean", "superuser:boolean"], update_user),
        route!(DELETE "/api/v1/superuser/users/{username}", "Delete a user; its repositories go with it and are collected in the background", "super:user", delete_user),
        route!(POST "/api/v1/superuser/users/{username}/resetlogin", "Clear a user's failed logins and unlock it (Berth)", "super:user", reset_login),
        route!(GET "/api/v1/superuser/organizations/", "Every organization", "super:user", query &["limit", "next_page"], list_orgs),
        route!(GET "/api/v1/superuser/keys", "Keys that sign registry tokens", "super:user", list_keys),
        route!(GET "/api/v1/superuser/gc", "Garbage collection: totals of every pass, the blob queue's depth and the settings (Berth)", "super:user", gc_status),
        route!(POST "/api/v1/superuser/gc", "Run a garbage-collection pass now over every repository and answer what it collected (Berth)", "super:user", gc_run),
        route!(POST "/api/v1/superuser/keys", "Rotate: create a new signing key (older keys verify until they expire)", "super:user", rotate_key),
        route!(DELETE "/api/v1/superuser/keys/{kid}", "Delete a signing key: tokens it signed stop working", "super:user", delete_key),
    ]
}

/// The caller, if a superuser with the `super:user` scope.
pub fn require(ctx: &Ctx) -> Result<&Actor, RestError> {
    let a = ctx.actor()?;
    if !a.superuser || !a.has_scope("super:user") {
        return Err(RestError::new(
            403,
            "only superusers may do this (SUPER_USERS, or `berth admin create-user --superuser`)",
        ));
    }
    Ok(a)
}

fn user_view(st: &AppState, r: &berth_core::AccountRow) -> serde_json::Value {
    serde_json::json!({
        "username": r.name, "email": r.email, "verified": true, "enabled": r.enabled,
        "super_user": st.auth.is_superuser(r), "avatar": avatar(&r.name, "user"),
        "failed_logins": r.failed_logins,
        "created": secs(Some(r.created_at)), "last_accessed": secs(r.last_accessed),
    })
}

/// One user as a superuser sees it, with the sources locked out of its password logins
/// (`locked` is true when any is).
async fn user_detail(
    st: &AppState,
    r: &berth_core::AccountRow,
) -> Result<serde_json::Value, RestError> {
    let locked = st.auth.locked_sources(r).await?;
    let mut v = user_view(st, r);
    v["locked"] = (!locked.is_empty()).into();
    v["locked_sources"] = locked.into();
    Ok(v)
}

async fn list_users(st: Arc<AppState>, ctx: Ctx) -> R {
    let a = require(&ctx)?;
    let include_disabled = ctx.q_bool("disabled", true);
    let limit = ctx
        .q("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(100)
        .clamp(1, 1000);
    let rows = st
        .auth
        .list_accounts(
            a,
            AccountKind::User,
            ctx.q("next_page").unwrap_or(""),
            limit,
        )
        .await?;
    let mut v = serde_json::json!({
        "users": rows.iter().filter(|r| include_disabled || r.enabled).map(|r| user_view(&st, r)).collect::<Vec<_>>(),
    });
    if rows.len() as i64 == limit
        && let Some(last) = rows.last()
    {
        v["next_page"] = last.name.clone().into();
    }
    json(v)
}

async fn create_user(st: Arc<AppState>, ctx: Ctx) -> R {
    let a = require(&ctx)?;
    let generated = berth_core::auth::secret::random_token(24);
    let password = ctx.field("password").unwrap_or(&generated);
    let superuser = ctx
        .body
        .get("superuser")
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    let row = st
        .auth
        .create_user(
            Some(a),
            ctx.required("username")?,
            Some(password),
            ctx.field("email"),
            superuser,
        )
        .await?;
    // Quay's answer, field for field and with its 200. Quay's `encrypted_password` is a form of
    // the password that logs in where the plain one may not (FEATURE_REQUIRE_ENCRYPTED_BASIC_AUTH);
    // Berth has no such form, so it answers the password itself, which logs in everywhere. The
    // stored hash is never sent, and the password only in this one answer.
    json(serde_json::json!({
        "username": row.name, "email": row.email, "password": password,
        "encrypted_password": password,
    }))
}

async fn get_user(st: Arc<AppState>, ctx: Ctx) -> R {
    require(&ctx)?;
    let r = st.auth.user(ctx.p("username")).await?;
    json(user_detail(&st, &r).await?)
}

async fn update_user(st: Arc<AppState>, ctx: Ctx) -> R {
    let a = require(&ctx)?;
    let c = UserChanges {
        password: ctx.field("password"),
        email: ctx.field("email"),
        enabled: ctx.body.get("enabled").and_then(|v| v.as_bool()),
        superuser: ctx.body.get("superuser").and_then(|v| v.as_bool()),
        tag_expiration_s: None,
    };
    let r = st.auth.update_user(a, ctx.p("username"), &c).await?;
    json(user_detail(&st, &r).await?)
}

async fn delete_user(st: Arc<AppState>, ctx: Ctx) -> R {
    let a = require(&ctx)?;
    st.auth.user(ctx.p("username")).await?;
    st.auth
        .delete_namespace_account(a, ctx.p("username"))
        .await?;
    no_content()
}

async fn reset_login(st: Arc<AppState>, ctx: Ctx) -> R {
    let a = require(&ctx)?;
    st.auth.reset_login(Some(a), ctx.p("username")).await?;
    let r = st.auth.user(ctx.p("username")).await?;
    json(user_detail(&st, &r).await?)
}

async fn list_orgs(st: Arc<AppState>, ctx: Ctx) -> R {
    let a = require(&ctx)?;
    let limit = ctx
        .q("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(100)
        .clamp(1, 1000);
    let rows = st
        .auth
        .list_accounts(a, AccountKind::Org, ctx.q("next_page").unwrap_or(""), limit)
        .await?;
    let mut v = serde_json::json!({
        "organizations": rows.iter().map(|r| serde_json::json!({
            "name": r.name, "email": r.email, "avatar": avatar(&r.name, "org"),
        })).collect::<Vec<_>>(),
    });
    if rows.len() as i64 == limit
        && let Some(last) = rows.last()
    {
        v["next_page"] = last.name.clone().into();
    }
    json(v)
}

async fn gc_status(st: Arc<AppState>, ctx: Ctx) -> R {
    require(&ctx)?;
    let (totals, queue) = st.registry.gc_status().await?;
    let gc = &st.registry.config.gc;
    json(serde_json::json!({
        "totals": totals,
        "blob_queue_depth": queue,
        "last_run": secs(totals.last_run_at),
        "config": {
            "enabled": gc.enabled, "frequency_s": gc.interval_s, "grace_period_s": gc.grace_s,
            "default_window_s": gc.default_window_s, "upload_stale_after_s": gc.upload_stale_s,
            "clean_uploads": gc.clean_uploads, "full_sweep_s": gc.full_sweep_s,
        },
    }))
}

async fn gc_run(st: Arc<AppState>, ctx: Ctx) -> R {
    require(&ctx)?;
    let report = st.registry.gc_pass(true).await?;
    st.auth
        .audit
        .record(
            ctx.audit("gc_run")
                .meta(serde_json::to_value(&report).unwrap_or_default()),
        )
        .await;
    json(serde_json::to_value(&report).unwrap_or_default())
}

async fn list_keys(st: Arc<AppState>, ctx: Ctx) -> R {
    let keys = st.auth.service_keys(require(&ctx)?).await?;
    json(serde_json::json!({
        "keys": keys.iter().map(|k| serde_json::json!({
            "kid": k.kid, "service": k.service, "created_date": secs(Some(k.created_at)),
            "expiration_date": secs(Some(k.expires_at)), "jwk": {"kty": "EC", "crv": "P-256", "alg": "ES256", "point": k.public_key},
        })).collect::<Vec<_>>(),
    }))
}

async fn rotate_key(st: Arc<AppState>, ctx: Ctx) -> R {
    let kid = st.auth.rotate_service_key(require(&ctx)?).await?;
    created(serde_json::json!({"kid": kid}))
}

async fn delete_key(st: Arc<AppState>, ctx: Ctx) -> R {
    st.auth
        .delete_service_key(require(&ctx)?, ctx.p("kid"))
        .await?;
    no_content()
}
