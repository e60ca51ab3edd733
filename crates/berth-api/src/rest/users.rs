//! Users: the caller's own account, sign-up, Quay's first-user bootstrap, public user info.

use super::views::Avatar;
use super::{Created, Ctx, Done, NonEmpty, Reply, RestError, Route, done, route};
use crate::AppState;
use berth_core::auth::TeamRole;
use berth_core::auth::accounts::UserChanges;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;

type Res<T> = Result<T, RestError>;

pub fn routes() -> Vec<Route> {
    vec![
        route!(GET "/api/v1/user/", "The calling user, its organizations and settings", "user:read",
            get_user() -> Reply<User>),
        route!(PUT "/api/v1/user/", "Change the calling user's password, email or tag expiration", "user:admin",
            update_user(UserChange) -> Reply<User>),
        route!(POST "/api/v1/user/", "Sign up (FEATURE_USER_CREATION)", "anonymous",
            create_user(SignUp) -> Created<SignedUp>),
        route!(DELETE "/api/v1/user/", "Delete the calling user; its repositories go with it and are collected in the background", "user:admin",
            delete_user() -> Done),
        route!(POST "/api/v1/user/initialize", "Create the first user of an empty registry (FEATURE_USER_INITIALIZE)", "anonymous",
            initialize(Initialize) -> Reply<Initialized>),
        route!(GET "/api/v1/users/{username}", "Public information about a user", "anonymous",
            public_user() -> Reply<PublicUser>),
    ]
}

#[derive(Deserialize, ToSchema)]
pub struct UserChange {
    pub password: Option<String>,
    pub email: Option<String>,
    /// The time machine's window for the user's repositories, in seconds.
    pub tag_expiration_s: Option<i64>,
}

#[derive(Deserialize, ToSchema)]
pub struct SignUp {
    pub username: NonEmpty,
    pub password: NonEmpty,
    pub email: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct Initialize {
    pub username: NonEmpty,
    pub password: NonEmpty,
    pub email: Option<String>,
    /// Also answer an API token with every scope.
    pub access_token: Option<bool>,
}

/// The calling user, as Quay describes it.
#[derive(Serialize, ToSchema)]
pub struct User {
    pub anonymous: bool,
    pub username: String,
    pub email: Option<String>,
    pub verified: bool,
    pub avatar: Avatar,
    pub organizations: Vec<UserOrg>,
    pub logins: Vec<ExternalLogin>,
    pub can_create_repo: bool,
    pub preferred_namespace: bool,
    /// The user's own window; `null` when the default applies.
    pub tag_expiration_s: Option<i64>,
    pub is_me: bool,
    pub super_user: bool,
    pub enabled: bool,
    pub has_password_set: bool,
    pub failed_logins: i64,
}

/// An organization the user is in.
#[derive(Serialize, ToSchema)]
pub struct UserOrg {
    pub name: String,
    pub avatar: Avatar,
    pub is_org_admin: bool,
    pub can_create_repo: bool,
    pub public: bool,
    pub preferred_namespace: bool,
}

/// An external (OIDC) identity linked to the user.
#[derive(Serialize, ToSchema)]
pub struct ExternalLogin {
    pub service: String,
    pub service_identifier: String,
    pub metadata: serde_json::Value,
}

#[derive(Serialize, ToSchema)]
pub struct SignedUp {
    pub username: String,
    pub email: Option<String>,
    pub awaiting_verification: bool,
}

#[derive(Serialize, ToSchema)]
pub struct Initialized {
    pub username: String,
    pub email: Option<String>,
    /// The password that logs in (Berth has no separate encrypted form), never the stored hash.
    pub encrypted_password: String,
    /// With `access_token: true` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct PublicUser {
    pub username: String,
    pub avatar: Avatar,
    /// Shown to superusers only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub super_user: Option<bool>,
}

/// Quay's user view.
pub async fn user_view(st: &AppState, row: &berth_core::auth::Actor) -> Res<User> {
    let acct = st
        .auth
        .account_by_id(row.id)
        .await?
        .ok_or_else(|| RestError::new(404, "the account no longer exists"))?;
    let mut seen = std::collections::BTreeMap::<String, (bool, bool)>::new();
    for (org, team) in st.auth.memberships(acct.id).await? {
        let e = seen.entry(org).or_default();
        e.0 |= team.role == TeamRole::Admin;
        e.1 |= matches!(team.role, TeamRole::Admin | TeamRole::Creator);
    }
    let organizations = seen
        .into_iter()
        .map(|(org, (admin, creator))| UserOrg {
            avatar: Avatar::of(&org, "org"),
            name: org,
            is_org_admin: admin,
            can_create_repo: creator,
            public: false,
            preferred_namespace: false,
        })
        .collect();
    let logins = st
        .auth
        .external_logins(acct.id)
        .await?
        .into_iter()
        .map(|(service, subject, meta)| ExternalLogin {
            service,
            service_identifier: subject,
            metadata: serde_json::from_str(&meta).unwrap_or_default(),
        })
        .collect();
    Ok(User {
        anonymous: false,
        username: acct.name.clone(),
        email: acct.email.clone(),
        verified: true,
        avatar: Avatar::of(&acct.name, "user"),
        organizations,
        logins,
        can_create_repo: true,
        preferred_namespace: false,
        tag_expiration_s: acct.tag_expiration_s,
        is_me: true,
        super_user: st.auth.is_superuser(&acct),
        enabled: acct.enabled,
        has_password_set: acct.has_password,
        failed_logins: acct.failed_logins,
    })
}

async fn get_user(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<User>> {
    let a = ctx.actor()?;
    if a.kind != berth_core::auth::AccountKind::User || !a.has_scope("user:read") {
        return Err(RestError::new(
            403,
            "this credential cannot read a user account (needs user:read)",
        ));
    }
    Ok(Reply::new(user_view(&st, a).await?))
}

async fn update_user(st: Arc<AppState>, ctx: Ctx, b: UserChange) -> Res<Reply<User>> {
    let a = ctx.actor()?;
    let changes = UserChanges {
        password: b.password.as_deref(),
        email: b.email.as_deref(),
        tag_expiration_s: b.tag_expiration_s,
        ..UserChanges::default()
    };
    st.auth.update_user(a, &a.name, &changes).await?;
    Ok(Reply::new(user_view(&st, a).await?))
}

async fn create_user(st: Arc<AppState>, ctx: Ctx, b: SignUp) -> Res<Created<SignedUp>> {
    let row = st
        .auth
        .sign_up(
            ctx.caller.as_ref(),
            &b.username,
            &b.password,
            b.email.as_deref(),
        )
        .await?;
    Ok(Reply::new(SignedUp {
        username: row.name,
        email: row.email,
        awaiting_verification: false,
    }))
}

async fn delete_user(st: Arc<AppState>, ctx: Ctx) -> Res<Done> {
    let a = ctx.actor()?;
    st.auth.delete_namespace_account(a, &a.name.clone()).await?;
    done()
}

/// Quay's bootstrap: with `FEATURE_USER_INITIALIZE`, the first user of an empty database, as a
/// superuser, optionally with an API token carrying every scope.
async fn initialize(st: Arc<AppState>, _ctx: Ctx, b: Initialize) -> Res<Reply<Initialized>> {
    if !st.user_initialize {
        return Err(RestError::new(
            404,
            "user initialization is disabled: set FEATURE_USER_INITIALIZE: true",
        ));
    }
    let (row, access_token) = st
        .auth
        .initialize(
            &b.username,
            &b.password,
            b.email.as_deref(),
            b.access_token == Some(true),
        )
        .await?;
    Ok(Reply::new(Initialized {
        // As for users a superuser creates: the password that logs in, never the stored hash.
        username: row.name,
        email: row.email,
        encrypted_password: b.password.to_string(),
        access_token,
    }))
}

async fn public_user(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<PublicUser>> {
    let name = ctx.p("username");
    let row = st.auth.user(name).await?;
    let super_user = ctx
        .caller
        .as_ref()
        .is_some_and(|c| c.superuser)
        .then(|| st.auth.is_superuser(&row));
    Ok(Reply::new(PublicUser {
        avatar: Avatar::of(&row.name, "user"),
        username: row.name,
        super_user,
    }))
}
