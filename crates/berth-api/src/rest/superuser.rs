//! Superuser endpoints: users (create, change, disable, delete, unlock), organizations, signing
//! keys.

use super::views::Avatar;
use super::{Created, Ctx, Done, NonEmpty, Reply, RestError, Route, done, route, secs};
use crate::AppState;
use berth_core::auth::accounts::UserChanges;
use berth_core::auth::{AccountKind, Actor};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;
use utoipa::ToSchema;

type Res<T> = Result<T, RestError>;

pub fn routes() -> Vec<Route> {
    vec![
        route!(GET "/api/v1/superuser/users/", "Every user", "super:user",
            list_users() -> Reply<UserList>, query &["disabled", "limit", "next_page"]),
        route!(POST "/api/v1/superuser/users/", "Create a user; a password is generated unless given", "super:user",
            create_user(NewUser) -> Reply<CreatedUser>),
        route!(GET "/api/v1/superuser/users/{username}", "One user", "super:user",
            get_user() -> Reply<UserDetail>),
        route!(PUT "/api/v1/superuser/users/{username}", "Change a user's password, email, enabled or superuser flag", "super:user",
            update_user(UserUpdate) -> Reply<UserDetail>),
        route!(DELETE "/api/v1/superuser/users/{username}", "Delete a user; its repositories go with it and are collected in the background", "super:user",
            delete_user() -> Done),
        route!(POST "/api/v1/superuser/users/{username}/resetlogin", "Clear a user's failed logins and unlock it (Berth)", "super:user",
            reset_login() -> Reply<UserDetail>),
        route!(GET "/api/v1/superuser/organizations/", "Every organization", "super:user",
            list_orgs() -> Reply<OrgList>, query &["limit", "next_page"]),
        route!(POST "/api/v1/superuser/takeownership/{namespace}", "Join an organization's owners team (Quay's take ownership; user namespaces are refused)", "super:user",
            take_ownership() -> Reply<Owned>),
        route!(GET "/api/v1/superuser/keys", "Keys that sign registry tokens", "super:user",
            list_keys() -> Reply<Keys>),
        route!(GET "/api/v1/superuser/gc", "Garbage collection: totals of every pass, the blob queue's depth and the settings (Berth)", "super:user",
            gc_status() -> Reply<GcStatus>),
        route!(POST "/api/v1/superuser/gc", "Run a garbage-collection pass now over every repository and answer what it collected (Berth)", "super:user",
            gc_run() -> Reply<Value>),
        route!(POST "/api/v1/superuser/keys", "Rotate: create a new signing key (older keys verify until they expire)", "super:user",
            rotate_key() -> Created<KeyId>),
        route!(DELETE "/api/v1/superuser/keys/{kid}", "Delete a signing key: tokens it signed stop working", "super:user",
            delete_key() -> Done),
    ]
}

#[derive(Deserialize, ToSchema)]
pub struct NewUser {
    pub username: NonEmpty,
    pub email: Option<String>,
    /// Generated when absent.
    pub password: Option<String>,
    pub superuser: Option<bool>,
}

#[derive(Deserialize, ToSchema)]
pub struct UserUpdate {
    pub password: Option<String>,
    pub email: Option<String>,
    pub enabled: Option<bool>,
    pub superuser: Option<bool>,
}

/// A user as superusers see it.
#[derive(Serialize, ToSchema)]
#[schema(as = SuperuserUser)]
pub struct UserView {
    pub username: String,
    pub email: Option<String>,
    pub verified: bool,
    pub enabled: bool,
    pub super_user: bool,
    pub avatar: Avatar,
    pub failed_logins: i64,
    pub created: i64,
    pub last_accessed: Option<i64>,
}

impl UserView {
    fn new(st: &AppState, r: &berth_core::Account) -> UserView {
        UserView {
            username: r.name.clone(),
            email: r.email.clone(),
            verified: true,
            enabled: r.enabled,
            super_user: st.auth.is_superuser(r),
            avatar: Avatar::of(&r.name, "user"),
            failed_logins: r.failed_logins,
            created: r.created_at / 1000,
            last_accessed: secs(r.last_accessed),
        }
    }
}

/// One user, with the sources locked out of its password logins.
#[derive(Serialize, ToSchema)]
pub struct UserDetail {
    #[serde(flatten)]
    pub user: UserView,
    /// Whether any source is locked out.
    pub locked: bool,
    pub locked_sources: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct UserList {
    pub users: Vec<UserView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page: Option<String>,
}

/// Quay's answer to creating a user, with its 200.
#[derive(Serialize, ToSchema)]
pub struct CreatedUser {
    pub username: String,
    pub email: Option<String>,
    pub password: String,
    /// The password itself: Berth has no separate encrypted form.
    pub encrypted_password: String,
}

#[derive(Serialize, ToSchema)]
pub struct OrgSummary {
    pub name: String,
    pub email: Option<String>,
    pub avatar: Avatar,
}

#[derive(Serialize, ToSchema)]
pub struct OrgList {
    pub organizations: Vec<OrgSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct GcStatus {
    /// Totals over every pass.
    pub totals: Value,
    pub blob_queue_depth: i64,
    pub last_run: Option<i64>,
    pub config: GcSettings,
}

#[derive(Serialize, ToSchema)]
pub struct GcSettings {
    pub enabled: bool,
    pub frequency_s: u64,
    pub grace_period_s: i64,
    pub default_window_s: i64,
    pub upload_stale_after_s: i64,
    pub clean_uploads: bool,
    pub full_sweep_s: u64,
}

#[derive(Serialize, ToSchema)]
pub struct Keys {
    pub keys: Vec<Key>,
}

/// A key that signs registry tokens.
#[derive(Serialize, ToSchema)]
#[schema(as = SigningKey)]
pub struct Key {
    pub kid: String,
    pub service: String,
    pub created_date: i64,
    pub expiration_date: i64,
    pub jwk: Jwk,
}

#[derive(Serialize, ToSchema)]
pub struct Jwk {
    pub kty: String,
    pub crv: String,
    pub alg: String,
    pub point: String,
}

#[derive(Serialize, ToSchema)]
pub struct KeyId {
    pub kid: String,
}

/// The caller, if a superuser with the `super:user` scope.
pub fn require(ctx: &Ctx) -> Res<&Actor> {
    let a = ctx.actor()?;
    berth_core::auth::authz::require_superuser(a)?;
    Ok(a)
}

/// One user as a superuser sees it, with the sources locked out of its password logins
/// (`locked` is true when any is).
async fn user_detail(st: &AppState, a: &Actor, username: &str) -> Res<UserDetail> {
    let s = st.auth.user_status(a, username).await?;
    Ok(UserDetail {
        user: UserView::new(st, &s.account),
        locked: !s.locked_sources.is_empty(),
        locked_sources: s.locked_sources,
    })
}

async fn list_users(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<UserList>> {
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
    let full = rows.len() as i64 == limit;
    Ok(Reply::new(UserList {
        users: rows
            .iter()
            .filter(|r| include_disabled || r.enabled)
            .map(|r| UserView::new(&st, r))
            .collect(),
        next_page: rows.last().filter(|_| full).map(|r| r.name.clone()),
    }))
}

async fn create_user(st: Arc<AppState>, ctx: Ctx, b: NewUser) -> Res<Reply<CreatedUser>> {
    let password = b
        .password
        .unwrap_or_else(|| berth_core::auth::secret::random_token(24));
    let row = st
        .auth
        .create_user_as(
            ctx.actor()?,
            &b.username,
            &password,
            b.email.as_deref(),
            b.superuser.unwrap_or(false),
        )
        .await?;
    // Quay's answer, field for field and with its 200. Quay's `encrypted_password` is a form of
    // the password that logs in where the plain one may not (FEATURE_REQUIRE_ENCRYPTED_BASIC_AUTH);
    // Berth has no such form, so it answers the password itself, which logs in everywhere. The
    // stored hash is never sent, and the password only in this one answer.
    Ok(Reply::new(CreatedUser {
        username: row.name,
        email: row.email,
        encrypted_password: password.clone(),
        password,
    }))
}

async fn get_user(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<UserDetail>> {
    Ok(Reply::new(
        user_detail(&st, ctx.actor()?, ctx.p("username")).await?,
    ))
}

async fn update_user(st: Arc<AppState>, ctx: Ctx, b: UserUpdate) -> Res<Reply<UserDetail>> {
    let a = require(&ctx)?;
    let c = UserChanges {
        password: b.password.as_deref(),
        email: b.email.as_deref(),
        enabled: b.enabled,
        superuser: b.superuser,
        tag_expiration_s: None,
    };
    let r = st.auth.update_user(a, ctx.p("username"), &c).await?;
    Ok(Reply::new(user_detail(&st, a, &r.name).await?))
}

async fn delete_user(st: Arc<AppState>, ctx: Ctx) -> Res<Done> {
    st.auth.delete_user(ctx.actor()?, ctx.p("username")).await?;
    done()
}

async fn reset_login(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<UserDetail>> {
    let a = require(&ctx)?;
    st.auth.reset_login(Some(a), ctx.p("username")).await?;
    Ok(Reply::new(user_detail(&st, a, ctx.p("username")).await?))
}

/// What `takeownership` answers: the namespace now owned.
#[derive(Serialize, ToSchema)]
pub struct Owned {
    pub namespace: String,
}

async fn take_ownership(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<Owned>> {
    let a = require(&ctx)?;
    let ns = ctx.p("namespace");
    st.auth.take_ownership(a, ns).await?;
    Ok(Reply::new(Owned {
        namespace: ns.to_string(),
    }))
}

async fn list_orgs(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<OrgList>> {
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
    let full = rows.len() as i64 == limit;
    Ok(Reply::new(OrgList {
        organizations: rows
            .iter()
            .map(|r| OrgSummary {
                name: r.name.clone(),
                email: r.email.clone(),
                avatar: Avatar::of(&r.name, "org"),
            })
            .collect(),
        next_page: rows.last().filter(|_| full).map(|r| r.name.clone()),
    }))
}

async fn gc_status(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<GcStatus>> {
    let (totals, queue) = st.registry.gc_overview(ctx.actor()?).await?;
    let gc = &st.registry.config.gc;
    Ok(Reply::new(GcStatus {
        last_run: secs(totals.last_run_at),
        totals: serde_json::to_value(&totals).unwrap_or_default(),
        blob_queue_depth: queue,
        config: GcSettings {
            enabled: gc.enabled,
            frequency_s: gc.interval_s,
            grace_period_s: gc.grace_s,
            default_window_s: gc.default_window_s,
            upload_stale_after_s: gc.upload_stale_s,
            clean_uploads: gc.clean_uploads,
            full_sweep_s: gc.full_sweep_s,
        },
    }))
}

async fn gc_run(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<Value>> {
    let caller = berth_core::Caller::new(ctx.actor()?, ctx.ip.as_deref());
    let report = st.registry.collect_now(caller).await?;
    Ok(Reply::new(
        serde_json::to_value(&report).unwrap_or_default(),
    ))
}

async fn list_keys(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<Keys>> {
    let keys = st.auth.service_keys(require(&ctx)?).await?;
    Ok(Reply::new(Keys {
        keys: keys
            .iter()
            .map(|k| Key {
                kid: k.kid.clone(),
                service: k.service.clone(),
                created_date: k.created_at / 1000,
                expiration_date: k.expires_at / 1000,
                jwk: Jwk {
                    kty: "EC".into(),
                    crv: "P-256".into(),
                    alg: "ES256".into(),
                    point: k.public_key.clone(),
                },
            })
            .collect(),
    }))
}

async fn rotate_key(st: Arc<AppState>, ctx: Ctx) -> Res<Created<KeyId>> {
    let kid = st.auth.rotate_service_key(require(&ctx)?).await?;
    Ok(Reply::new(KeyId { kid }))
}

async fn delete_key(st: Arc<AppState>, ctx: Ctx) -> Res<Done> {
    st.auth
        .delete_service_key(require(&ctx)?, ctx.p("kid"))
        .await?;
    done()
}
