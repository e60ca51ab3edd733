//! Repository notifications through Quay's API: list, create, get, delete, reset the failure
//! count, send a test; and Berth's delivery log with redelivery.

use super::{Created, Ctx, Done, EmptyObject, Reply, RestError, Route, done, route};
use crate::AppState;
use berth_core::Caller;
use berth_core::notify::{NewNotificationSpec, Notification, Notifications, Scope};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;
use utoipa::ToSchema;

type Res<T> = Result<T, RestError>;

pub fn routes() -> Vec<Route> {
    vec![
        route!(GET "/api/v1/repository/{repository}/notification/", "A repository's notifications", "repo:admin",
            list() -> Reply<NotificationList>),
        route!(POST "/api/v1/repository/{repository}/notification/", "Create a notification: an event, a method (webhook or slack) and its config; the answer carries the webhook signing secret, shown this once", "repo:admin",
            create(NewNotification) -> Created<NotificationView>),
        route!(GET "/api/v1/repository/{repository}/notification/{uuid}", "One notification", "repo:admin",
            get() -> Reply<NotificationView>),
        route!(DELETE "/api/v1/repository/{repository}/notification/{uuid}", "Delete a notification", "repo:admin",
            delete() -> Done),
        route!(POST "/api/v1/repository/{repository}/notification/{uuid}", "Reset a notification's failure count (re-enabling it if failures disabled it)", "repo:admin",
            reset() -> Done),
        route!(POST "/api/v1/repository/{repository}/notification/{uuid}/test", "Send the event's sample payload through the notification", "repo:admin",
            test() -> Reply<EmptyObject>),
        route!(GET "/api/v1/repository/{repository}/notification/{uuid}/deliveries", "The notification's last 100 delivery attempts, newest first (Berth)", "repo:admin",
            attempts() -> Reply<AttemptList>),
        route!(POST "/api/v1/repository/{repository}/notification/{uuid}/deliveries/{delivery}/redeliver", "Send a past delivery again, with its event id (Berth)", "repo:admin",
            redeliver() -> Reply<EmptyObject>),
        route!(GET "/api/v1/repository/{repository}/authorizedemail/{email}", "Whether an address may receive the repository's email notifications", "repo:admin",
            authorized_email() -> Reply<AuthorizedEmailView>),
        route!(POST "/api/v1/repository/{repository}/authorizedemail/{email}", "Mail the address a link that authorizes it for the repository's email notifications", "repo:admin",
            authorize_email() -> Reply<AuthorizedEmailView>),
        // Namespace notifications: quota events of an organization or of the caller's namespace.
        route!(GET "/api/v1/organization/{orgname}/notifications", "An organization's quota notifications (FEATURE_QUOTA_NOTIFICATIONS)", "org:admin",
            list() -> Reply<NotificationList>),
        route!(POST "/api/v1/organization/{orgname}/notifications", "Create a quota notification (quota_warning or quota_error) for an organization", "org:admin",
            create(NewNotification) -> Created<NotificationView>),
        route!(GET "/api/v1/organization/{orgname}/notifications/{uuid}", "One quota notification", "org:admin",
            get() -> Reply<NotificationView>),
        route!(DELETE "/api/v1/organization/{orgname}/notifications/{uuid}", "Delete a quota notification", "org:admin",
            delete() -> Done),
        route!(POST "/api/v1/organization/{orgname}/notifications/{uuid}", "Reset a quota notification's failure count", "org:admin",
            reset() -> Done),
        route!(POST "/api/v1/organization/{orgname}/notifications/{uuid}/test", "Send the event's sample payload", "org:admin",
            test() -> Reply<EmptyObject>),
        route!(GET "/api/v1/organization/{orgname}/notifications/{uuid}/deliveries", "The quota notification's last 100 delivery attempts (Berth)", "org:admin",
            attempts() -> Reply<AttemptList>),
        route!(GET "/api/v1/user/namespacenotifications", "The calling user's quota notifications", "user:admin",
            list() -> Reply<NotificationList>),
        route!(POST "/api/v1/user/namespacenotifications", "Create a quota notification for the calling user's namespace", "user:admin",
            create(NewNotification) -> Created<NotificationView>),
        route!(GET "/api/v1/user/namespacenotifications/{uuid}", "One quota notification", "user:admin",
            get() -> Reply<NotificationView>),
        route!(DELETE "/api/v1/user/namespacenotifications/{uuid}", "Delete a quota notification", "user:admin",
            delete() -> Done),
        route!(POST "/api/v1/user/namespacenotifications/{uuid}", "Reset a quota notification's failure count", "user:admin",
            reset() -> Done),
        route!(POST "/api/v1/user/namespacenotifications/{uuid}/test", "Send the event's sample payload", "user:admin",
            test() -> Reply<EmptyObject>),
        route!(GET "/api/v1/user/notifications", "The calling user's in-app notifications, newest first", "user:admin",
            my_list() -> Reply<UserNotificationList>, query &["page", "limit"]),
        route!(GET "/api/v1/user/notifications/{uuid}", "One in-app notification", "user:admin",
            my_get() -> Reply<UserNotificationView>),
        route!(PUT "/api/v1/user/notifications/{uuid}", "Dismiss an in-app notification (dismissed: true) or restore it", "user:admin",
            my_dismiss(Dismiss) -> Reply<UserNotificationView>),
        route!(GET "/api/v1/user/namespacenotifications/{uuid}/deliveries", "The quota notification's last 100 delivery attempts (Berth)", "user:admin",
            attempts() -> Reply<AttemptList>),
    ]
}

/// Quay's request: `eventConfig` in camelCase.
#[derive(Deserialize, ToSchema)]
#[allow(non_snake_case)]
pub struct NewNotification {
    /// `repo_push`, `repo_image_expiry`, `vulnerability_found`, `build_*`, `repo_mirror_sync_*`.
    pub event: Option<String>,
    /// `webhook` or `slack`.
    pub method: Option<String>,
    /// webhook: `url`, optional `template` (a JSON document with `${path}`), `format`
    /// (`quay` or `cloudevents`), `headers` (sent with each delivery, never shown again);
    /// slack: `url`.
    #[schema(value_type = Object)]
    pub config: Option<Value>,
    #[schema(value_type = Object)]
    pub eventConfig: Option<Value>,
    pub title: Option<String>,
}

/// Quay's view (`event_config` in snake case there), with Berth's delivery state.
#[derive(Serialize, ToSchema)]
pub struct NotificationView {
    pub uuid: String,
    pub title: String,
    pub event: String,
    pub method: String,
    #[schema(value_type = Object)]
    pub config: Value,
    #[schema(value_type = Object)]
    pub event_config: Value,
    pub number_of_failures: i64,
    /// Unix seconds when consecutive failed deliveries disabled it (Berth).
    pub disabled_at: Option<i64>,
    /// The HMAC-SHA256 key of the `X-Berth-Signature-256` header: in the creation's answer only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl NotificationView {
    fn of(n: Notification, secret: Option<String>) -> NotificationView {
        NotificationView {
            uuid: n.uuid,
            title: n.title,
            event: n.event,
            method: n.method,
            config: n.config,
            event_config: n.event_config,
            number_of_failures: n.number_of_failures,
            disabled_at: n.disabled_at.map(|t| t / 1000),
            secret,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct NotificationList {
    pub notifications: Vec<NotificationView>,
}

#[derive(Serialize, ToSchema)]
pub struct AttemptView {
    pub delivery_id: i64,
    pub event_id: String,
    pub event: String,
    /// Unix milliseconds.
    pub at: i64,
    /// The receiver's HTTP status, when it answered.
    pub status: Option<i64>,
    pub error: Option<String>,
    pub latency_ms: i64,
}

#[derive(Serialize, ToSchema)]
pub struct AttemptList {
    pub attempts: Vec<AttemptView>,
}

fn door(st: &AppState) -> Notifications<'_> {
    Notifications::new(&st.registry, &st.auth)
}

/// The path's scope: a repository, an organization, or the caller's namespace.
fn scope(ctx: &Ctx) -> Scope<'_> {
    match (ctx.p("repository"), ctx.p("orgname")) {
        ("", "") => Scope::OwnNamespace,
        ("", org) => Scope::Organization(org),
        (repo, _) => Scope::Repository(repo),
    }
}

fn caller(ctx: &Ctx) -> Res<Caller<'_>> {
    Ok(Caller::new(ctx.actor()?, ctx.ip.as_deref()))
}

async fn list(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<NotificationList>> {
    let all = door(&st).list(ctx.actor()?, &scope(&ctx)).await?;
    Ok(Reply::new(NotificationList {
        notifications: all
            .into_iter()
            .map(|n| NotificationView::of(n, None))
            .collect(),
    }))
}

async fn create(st: Arc<AppState>, ctx: Ctx, b: NewNotification) -> Res<Created<NotificationView>> {
    let spec = NewNotificationSpec {
        event: b.event.unwrap_or_default(),
        method: b.method.unwrap_or_default(),
        config: b.config.unwrap_or(Value::Null),
        event_config: b.eventConfig.unwrap_or(Value::Null),
        title: b.title,
    };
    let c = door(&st).create(caller(&ctx)?, &scope(&ctx), &spec).await?;
    Ok(Reply::new(NotificationView::of(
        c.notification,
        Some(c.secret),
    )))
}

async fn get(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<NotificationView>> {
    let n = door(&st)
        .get(ctx.actor()?, &scope(&ctx), ctx.p("uuid"))
        .await?;
    Ok(Reply::new(NotificationView::of(n, None)))
}

async fn delete(st: Arc<AppState>, ctx: Ctx) -> Res<Done> {
    door(&st)
        .delete(caller(&ctx)?, &scope(&ctx), ctx.p("uuid"))
        .await?;
    done()
}

async fn reset(st: Arc<AppState>, ctx: Ctx) -> Res<Done> {
    door(&st)
        .reset(caller(&ctx)?, &scope(&ctx), ctx.p("uuid"))
        .await?;
    done()
}

async fn test(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<EmptyObject>> {
    door(&st)
        .test(caller(&ctx)?, &scope(&ctx), ctx.p("uuid"))
        .await?;
    Ok(Reply::new(EmptyObject {}))
}

async fn attempts(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<AttemptList>> {
    let a = door(&st)
        .attempts(ctx.actor()?, &scope(&ctx), ctx.p("uuid"))
        .await?;
    Ok(Reply::new(AttemptList {
        attempts: a
            .into_iter()
            .map(|a| AttemptView {
                delivery_id: a.delivery_id,
                event_id: a.event_id,
                event: a.event,
                at: a.at,
                status: a.status,
                error: a.error,
                latency_ms: a.latency_ms,
            })
            .collect(),
    }))
}

async fn redeliver(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<EmptyObject>> {
    let id: i64 = ctx
        .p("delivery")
        .parse()
        .map_err(|_| berth_core::Error::not_found("no such delivery"))?;
    door(&st)
        .redeliver(caller(&ctx)?, &scope(&ctx), ctx.p("uuid"), id)
        .await?;
    Ok(Reply::new(EmptyObject {}))
}

/// Quay's user notification.
#[derive(Serialize, ToSchema)]
pub struct UserNotificationView {
    pub id: String,
    pub organization: Option<String>,
    pub kind: String,
    /// RFC 2822 date, as Quay formats it.
    pub created: String,
    #[schema(value_type = Object)]
    pub metadata: Value,
    pub dismissed: bool,
}

impl UserNotificationView {
    fn of(n: berth_core::notify::UserNotification) -> UserNotificationView {
        UserNotificationView {
            id: n.id,
            organization: n.organization,
            kind: n.kind,
            created: crate::auth::http_date(n.created),
            metadata: n.metadata,
            dismissed: n.dismissed,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct UserNotificationList {
    pub notifications: Vec<UserNotificationView>,
    pub additional: bool,
}

#[derive(Deserialize, ToSchema)]
pub struct Dismiss {
    pub dismissed: bool,
}

async fn my_list(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<UserNotificationList>> {
    let page = ctx.q("page").and_then(|p| p.parse().ok()).unwrap_or(0);
    let limit = ctx.q("limit").and_then(|l| l.parse().ok()).unwrap_or(5);
    let (all, more) = door(&st).mine(ctx.actor()?, page, limit).await?;
    Ok(Reply::new(UserNotificationList {
        notifications: all.into_iter().map(UserNotificationView::of).collect(),
        additional: more,
    }))
}

async fn my_get(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<UserNotificationView>> {
    let n = door(&st)
        .my_notification(ctx.actor()?, ctx.p("uuid"))
        .await?;
    Ok(Reply::new(UserNotificationView::of(n)))
}

async fn my_dismiss(st: Arc<AppState>, ctx: Ctx, b: Dismiss) -> Res<Reply<UserNotificationView>> {
    let n = door(&st)
        .dismiss(ctx.actor()?, ctx.p("uuid"), b.dismissed)
        .await?;
    Ok(Reply::new(UserNotificationView::of(n)))
}

/// Quay's authorized email.
#[derive(Serialize, ToSchema)]
pub struct AuthorizedEmailView {
    pub email: String,
    pub repository: String,
    pub namespace: String,
    pub confirmed: bool,
}

impl AuthorizedEmailView {
    fn of(a: berth_core::notify::AuthorizedEmail) -> AuthorizedEmailView {
        AuthorizedEmailView {
            email: a.email,
            repository: a.repository,
            namespace: a.namespace,
            confirmed: a.confirmed,
        }
    }
}

async fn authorized_email(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<AuthorizedEmailView>> {
    let a = door(&st)
        .authorized_email(ctx.actor()?, ctx.p("repository"), ctx.p("email"))
        .await?;
    Ok(Reply::new(AuthorizedEmailView::of(a)))
}

async fn authorize_email(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<AuthorizedEmailView>> {
    let a = door(&st)
        .authorize_email(caller(&ctx)?, ctx.p("repository"), ctx.p("email"))
        .await?;
    Ok(Reply::new(AuthorizedEmailView::of(a)))
}
