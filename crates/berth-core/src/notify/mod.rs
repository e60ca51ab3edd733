//! Notifications: Quay's repository notifications (an event, a method and its settings),
//! their delivery, and the use cases `/api/v1` serves.
//!
//! Delivery is an outbox. An event's deliveries are rows written in the transaction of the
//! change that caused it ([`Registry::notify_in`]), so a crash loses none and a rolled-back
//! change sends none; the same transaction queues a `deliver_notification` job per
//! notification. The job sends the notification's deliveries oldest first, one at a time (a
//! receiver sees one notification's events in order), retrying a failed one with exponential
//! backoff (`NOTIFICATION_RETRY_BASE`, doubling, at most an hour apart) until
//! `NOTIFICATION_RETRY_WINDOW` (a day) has passed since the event; then that delivery has
//! failed. `NOTIFICATION_MAX_FAILURES` (10) consecutive failed deliveries disable the
//! notification: that is recorded (`disable_repo_notification` in the repository's log), shown
//! in the API (`disabled_at`) and undone by the reset endpoint. A chore re-queues the job of every
//! notification whose next attempt is due. Deliveries are at least once: a worker that dies
//! after sending but before recording sends again after its lease, with the same event id.

pub mod events;
pub mod mail;
mod send;

use crate::auth::secret::Sealer;
use crate::auth::{Actor, Auth, Role};
use crate::caller::Caller;
use crate::jobs::{Job, JobContext, JobResult};
use crate::{Error, Registry, Result};
use berth_db::{NewNotification, NotificationRow, WriteTx};
use serde_json::{Value, json};

pub use send::Outcome;

/// How notifications are delivered (`NOTIFICATION_*`, `SSRF_ALLOWED_HOSTS`,
/// `WEBHOOK_HOSTNAME_BLACKLIST`), and what their payloads link to.
#[derive(Debug, Clone)]
pub struct NotifyConfig {
    /// `SERVER_HOSTNAME`: `docker_url` and `homepage` are built on it.
    pub server_hostname: String,
    /// `PREFERRED_URL_SCHEME`.
    pub scheme: String,
    /// Consecutive failed deliveries that disable a notification.
    pub max_failures: i64,
    /// The first retry's delay; each next one doubles, up to an hour.
    pub retry_base_ms: i64,
    /// How long after the event a delivery is retried.
    pub retry_window_ms: i64,
    /// `NOTIFICATION_SEND_TIMEOUT`, per attempt.
    pub send_timeout_ms: u64,
    pub ssrf_allowed_hosts: Vec<String>,
    pub webhook_hostname_blacklist: Vec<String>,
    /// `DATABASE_SECRET_KEY`: seals signing keys and custom headers (else the instance's).
    pub database_secret: Option<String>,
    /// `FEATURE_QUOTA_NOTIFICATIONS`: namespace notifications of quota events.
    pub quota_notifications: bool,
    /// `QUOTA_NOTIFICATION_COOLDOWN_SECONDS`: a namespace notification fires at most once per
    /// event in this long.
    pub quota_cooldown_ms: i64,
    /// SMTP, when `FEATURE_MAILING` is on and `MAIL_SERVER` set.
    pub mail: Option<mail::MailConfig>,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            server_hostname: "localhost:5000".into(),
            scheme: "http".into(),
            max_failures: 10,
            retry_base_ms: 30_000,
            retry_window_ms: 86_400_000,
            send_timeout_ms: 10_000,
            ssrf_allowed_hosts: Vec::new(),
            webhook_hostname_blacklist: Vec::new(),
            database_secret: None,
            quota_notifications: true,
            quota_cooldown_ms: 86_400_000,
            mail: None,
        }
    }
}

/// A notification as the API shows it (Quay's view, plus Berth's delivery state). Its secrets
/// (signing key, header values) are never shown after creation.
#[derive(Debug, Clone)]
pub struct Notification {
    pub uuid: String,
    pub title: String,
    pub event: String,
    pub method: String,
    /// The method's settings, custom header values left out (their names are kept).
    pub config: Value,
    pub event_config: Value,
    /// Consecutive failed deliveries.
    pub number_of_failures: i64,
    /// When the failure limit disabled it (ms), if it did.
    pub disabled_at: Option<i64>,
    pub created_at: i64,
}

/// A notification just created, with its signing key: the one time it is shown.
#[derive(Debug, Clone)]
pub struct Created {
    pub notification: Notification,
    pub secret: String,
}

/// What a caller asks for (Quay's `POST …/notification/` body).
#[derive(Debug, Clone, Default)]
pub struct NewNotificationSpec {
    pub event: String,
    pub method: String,
    pub config: Value,
    pub event_config: Value,
    pub title: Option<String>,
}

/// One attempt in a notification's delivery log.
#[derive(Debug, Clone)]
pub struct DeliveryAttempt {
    pub delivery_id: i64,
    pub event_id: String,
    pub event: String,
    pub at: i64,
    pub status: Option<i64>,
    pub error: Option<String>,
    pub latency_ms: i64,
}

/// The secrets of a notification, sealed together in its row.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
struct Secrets {
    signing_key: String,
    #[serde(default)]
    headers: Vec<(String, String)>,
}

impl Registry {
    fn notify_config(&self) -> &NotifyConfig {
        &self.config.notify
    }

    pub(crate) async fn sealer(&self) -> Result<Sealer> {
        let secret = match &self.notify_config().database_secret {
            Some(s) => s.clone(),
            None => {
                self.db
                    .instance_secret("database_secret", &crate::auth::secret::random_token(48))
                    .await?
            }
        };
        Ok(Sealer::new(&secret))
    }

    /// The guard every outbound request passes.
    pub fn outbound_guard(&self) -> berth_net::Guard {
        let c = self.notify_config();
        berth_net::Guard::new(&c.ssrf_allowed_hosts, &c.webhook_hostname_blacklist)
    }

    /// Quay's base block of a repository event, with the event's own keys.
    pub fn repo_event_data(&self, repo: &str, extra: Value) -> Value {
        let c = self.notify_config();
        let (ns, name) = repo.split_once('/').unwrap_or((repo, ""));
        let mut data = json!({
            "repository": repo,
            "namespace": ns,
            "name": name,
            "docker_url": format!("{}/{repo}", c.server_hostname),
            "homepage": format!("{}://{}/repository/{repo}", c.scheme, c.server_hostname),
        });
        if let (Some(d), Value::Object(e)) = (data.as_object_mut(), extra) {
            d.extend(e);
        }
        data
    }

    /// Quay's block of a namespace event, with the event's own keys.
    pub fn namespace_event_data(&self, ns: &str, extra: Value) -> Value {
        let c = self.notify_config();
        let mut data = json!({
            "namespace": ns,
            "homepage": format!("{}://{}/organization/{ns}", c.scheme, c.server_hostname),
        });
        if let (Some(d), Value::Object(e)) = (data.as_object_mut(), extra) {
            d.extend(e);
        }
        data
    }

    /// Writes the deliveries of a quota event of `ns` inside `w`, each notification at most once
    /// per `QUOTA_NOTIFICATION_COOLDOWN_SECONDS`.
    pub(crate) async fn notify_namespace_in(
        &self,
        w: &mut WriteTx,
        ns: &str,
        event: &str,
        extra: Value,
    ) -> Result<usize> {
        let c = self.notify_config();
        if !c.quota_notifications {
            return Ok(0);
        }
        let found = self
            .db
            .notifications_for_event(w, None, Some(ns), event)
            .await?;
        if found.is_empty() {
            return Ok(0);
        }
        let data = self.namespace_event_data(ns, extra);
        let event_id = uuid::Uuid::new_v4().to_string();
        let payload = data.to_string();
        let since = berth_db::now_ms().saturating_sub(c.quota_cooldown_ms);
        let mut n = 0;
        for row in found {
            if self.db.delivered_since(w, row.id, event, since).await? {
                continue;
            }
            self.queue_delivery(w, row.id, &event_id, event, &payload)
                .await?;
            n += 1;
        }
        Ok(n)
    }

    /// [`Registry::notify_namespace_in`] in a transaction of its own (an event of a refusal,
    /// whose own change was rolled back). A failure is logged, never the caller's.
    pub(crate) async fn notify_namespace(&self, ns: &str, event: &str, extra: Value) {
        let run = async {
            let mut w = self.db.write().await?;
            self.notify_namespace_in(&mut w, ns, event, extra).await?;
            w.commit().await?;
            Ok::<_, Error>(())
        };
        if let Err(e) = run.await {
            tracing::warn!(namespace = ns, event, error = %e, "could not queue a namespace notification");
        }
    }

    /// Writes the deliveries of a repository event inside `w` (the transaction of the change
    /// that caused it): one per enabled notification of `event` on the repository whose filter
    /// it passes, each with its job queued. All share one event id.
    pub(crate) async fn notify_in(
        &self,
        w: &mut WriteTx,
        repo_id: i64,
        repo: &str,
        event: &str,
        extra: Value,
    ) -> Result<usize> {
        let found = self
            .db
            .notifications_for_event(w, Some(repo_id), None, event)
            .await?;
        if found.is_empty() {
            return Ok(0);
        }
        let data = self.repo_event_data(repo, extra);
        let event_id = uuid::Uuid::new_v4().to_string();
        let payload = data.to_string();
        let mut n = 0;
        for row in found {
            let filter: Value = serde_json::from_str(&row.event_config).unwrap_or(Value::Null);
            if !events::passes(event, &filter, &data) {
                continue;
            }
            self.queue_delivery(w, row.id, &event_id, event, &payload)
                .await?;
            n += 1;
        }
        Ok(n)
    }

    /// The one way a delivery enters the outbox: its row and its notification's job, inside
    /// `w` (events, tests, expiry notices and redeliveries all come here).
    async fn queue_delivery(
        &self,
        w: &mut WriteTx,
        notification_id: i64,
        event_id: &str,
        event: &str,
        payload: &str,
    ) -> Result<()> {
        self.db
            .add_delivery(w, notification_id, event_id, event, payload)
            .await?;
        crate::jobs::enqueue(
            &self.db,
            w,
            &DeliverNotification {
                id: notification_id,
            },
        )
        .await?;
        Ok(())
    }

    /// Queues the job of every notification whose next attempt is due (retries, and
    /// deliveries whose job was finishing as they were written).
    pub async fn schedule_deliveries(&self) -> Result<usize> {
        metrics::gauge!("berth_notification_deliveries_pending")
            .set(self.db.pending_deliveries().await? as f64);
        metrics::gauge!("berth_notifications_disabled")
            .set(self.db.disabled_notifications().await? as f64);
        let due = self.db.due_notifications(berth_db::now_ms()).await?;
        if due.is_empty() {
            // Every 2 s on an idle registry: no write transaction for nothing.
            return Ok(0);
        }
        let mut w = self.db.write().await?;
        for id in &due {
            crate::jobs::enqueue(&self.db, &mut w, &DeliverNotification { id: *id }).await?;
        }
        w.commit().await?;
        Ok(due.len())
    }

    /// Sends a notification's due deliveries, oldest first, until one must wait.
    pub(crate) async fn deliver_notification(&self, id: i64) -> Result<()> {
        let c = self.notify_config().clone();
        let Some(n) = self.db.notification_by_id(id).await? else {
            return Ok(());
        };
        if n.disabled_at.is_some() {
            return Ok(());
        }
        let secrets = self.secrets_of(&n).await?;
        while let Some(d) = self.db.delivery_head(id).await? {
            let now = berth_db::now_ms();
            if d.next_at > now {
                return Ok(());
            }
            let started = std::time::Instant::now();
            let (status, result) = match n.method.as_str() {
                "quay_notification" => (None, self.deliver_in_app(&n, &d).await),
                "email" => (None, self.deliver_email(&c, &n, &d).await),
                _ => send::deliver(self, &c, &n, &secrets, &d).await,
            };
            let out = Outcome::of(started, status, result);
            let attempt = berth_db::Attempt {
                status: out.status,
                error: out.error.as_deref(),
                latency_ms: out.latency_ms,
            };
            if out.ok {
                self.db.record_attempt(&d, &attempt, true, None).await?;
                metrics::counter!("berth_notification_deliveries_total", "method" => n.method.clone(), "outcome" => "delivered").increment(1);
                continue;
            }
            let backoff = c
                .retry_base_ms
                .max(1)
                .saturating_mul(1i64 << d.attempts.clamp(0, 20))
                .min(3_600_000);
            let retry_at = now.saturating_add(backoff);
            let retry =
                (retry_at <= d.created_at.saturating_add(c.retry_window_ms)).then_some(retry_at);
            let failures = self.db.record_attempt(&d, &attempt, false, retry).await?;
            let outcome = if retry.is_some() { "retried" } else { "failed" };
            metrics::counter!("berth_notification_deliveries_total", "method" => n.method.clone(), "outcome" => outcome).increment(1);
            if retry.is_some() {
                return Ok(());
            }
            if failures >= c.max_failures.max(1) && self.db.disable_notification(id).await? {
                self.notification_disabled(&n, failures).await?;
                return Ok(());
            }
        }
        Ok(())
    }

    /// An in-app delivery: a user notification (kind: the event, metadata: its data) for each
    /// user the target names (a team is one of the notification's organization).
    async fn deliver_in_app(
        &self,
        n: &NotificationRow,
        d: &berth_db::DeliveryRow,
    ) -> std::result::Result<(), String> {
        let config: Value = serde_json::from_str(&n.config).unwrap_or(Value::Null);
        let data: Value = serde_json::from_str(&d.payload).unwrap_or(Value::Null);
        let ns = data["namespace"].as_str().unwrap_or("").to_string();
        let kind = config["target"]["kind"].as_str().unwrap_or("user");
        let name = config["target"]["name"].as_str().unwrap_or("");
        let done = async {
            let accounts = self.db.target_accounts(kind, name, &ns).await?;
            let org = (kind != "user").then_some(ns.as_str());
            self.db
                .add_user_notifications(&accounts, &d.event, org, &d.payload)
                .await?;
            Ok::<(), Error>(())
        };
        done.await.map_err(|e| e.to_string())
    }

    /// An email delivery: to the notification's address (a namespace notification without one
    /// goes to the namespace's own email).
    async fn deliver_email(
        &self,
        c: &NotifyConfig,
        n: &NotificationRow,
        d: &berth_db::DeliveryRow,
    ) -> std::result::Result<(), String> {
        let Some(m) = &c.mail else {
            return Err("email is not set up (MAIL_SERVER)".into());
        };
        let config: Value = serde_json::from_str(&n.config).unwrap_or(Value::Null);
        let to = match (config["email"].as_str(), &n.namespace) {
            (Some(e), _) => e.to_string(),
            (None, Some(ns)) => self
                .db
                .account_email(ns)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("{ns} has no email address"))?,
            (None, None) => return Err("the notification has no address".into()),
        };
        let data: Value = serde_json::from_str(&d.payload).unwrap_or(Value::Null);
        let (text, html) = mail::bodies(&d.event, &data);
        let timeout = std::time::Duration::from_millis(c.send_timeout_ms.max(1));
        mail::send(
            m,
            timeout,
            &to,
            &events::summary(&d.event, &data),
            text,
            html,
        )
        .await
    }

    /// Tells of tags about to expire: for each repo_image_expiry notification, one event with
    /// the live tags of its repository that expire within its `days` and that it has not told
    /// about (each tag once per expiry it is given).
    pub async fn expiry_notices(&self) -> Result<usize> {
        let now = berth_db::now_ms();
        let mut sent = 0;
        for n in self
            .db
            .repo_notifications_of_event("repo_image_expiry")
            .await?
        {
            let days = serde_json::from_str::<Value>(&n.event_config)
                .ok()
                .and_then(|c| c["days"].as_i64())
                .unwrap_or(1)
                .clamp(1, 3650);
            let until = now.saturating_add(days.saturating_mul(86_400_000));
            let tags = self.db.expiring_unnoticed(&n, now, until).await?;
            let Some(repo) = (match (tags.is_empty(), n.repo_id) {
                (false, Some(id)) => self.db.repo_name(id).await?,
                _ => None,
            }) else {
                continue;
            };
            let data = self.repo_event_data(
                &repo,
                json!({
                    "tags": tags.iter().map(|t| t.0.as_str()).collect::<Vec<_>>(),
                    "expiring_in": format!("{days} days"),
                    "notification_uuid": n.uuid,
                }),
            );
            let mut w = self.db.write().await?;
            self.db.note_expiry_notices(&mut w, n.id, &tags).await?;
            self.queue_delivery(
                &mut w,
                n.id,
                &uuid::Uuid::new_v4().to_string(),
                "repo_image_expiry",
                &data.to_string(),
            )
            .await?;
            w.commit().await?;
            sent += 1;
        }
        Ok(sent)
    }

    /// Records that the failure limit disabled `n`, in the repository's log.
    async fn notification_disabled(&self, n: &NotificationRow, failures: i64) -> Result<()> {
        metrics::counter!("berth_notifications_disabled_total").increment(1);
        let repo = match n.repo_id {
            Some(id) => self.db.repo_name(id).await?,
            None => None,
        };
        let mut entry = crate::auth::AuditEntry::new("disable_repo_notification").meta(json!({
            "notification_uuid": n.uuid, "event": n.event, "method": n.method,
            "title": n.title, "failures": failures,
        }));
        if let Some(r) = &repo {
            entry = entry.repo(r);
        } else if let Some(ns) = &n.namespace {
            entry = entry.namespace(ns);
        }
        tracing::warn!(notification = %n.uuid, failures, "notification disabled after consecutive failed deliveries");
        self.audit.record(entry).await;
        // The administrators are told in the app, not only in the log.
        let (accounts, org) = match (&repo, n.repo_id) {
            (Some(r), Some(id)) => {
                let ns = r.split('/').next().unwrap_or(r);
                (
                    self.db.repo_admin_accounts(id, ns).await?,
                    Some(ns.to_string()),
                )
            }
            _ => {
                let ns = n.namespace.clone().unwrap_or_default();
                let mut a = self.db.target_accounts("org", &ns, &ns).await?;
                a.extend(self.db.target_accounts("user", &ns, &ns).await?);
                (a, Some(ns))
            }
        };
        let meta = json!({
            "notification_uuid": n.uuid, "title": n.title, "event": n.event, "method": n.method,
            "repository": repo, "failures": failures,
        });
        self.db
            .add_user_notifications(
                &accounts,
                "notification_disabled",
                org.as_deref(),
                &meta.to_string(),
            )
            .await?;
        Ok(())
    }

    async fn secrets_of(&self, n: &NotificationRow) -> Result<Secrets> {
        let sealer = self.sealer().await?;
        Ok(sealer
            .open_string(&n.secret)
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default())
    }
}

/// Sends one notification's due deliveries.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DeliverNotification {
    pub id: i64,
}

impl Job for DeliverNotification {
    const KIND: &'static str = "deliver_notification";
    fn dedup_key(&self) -> String {
        self.id.to_string()
    }
    async fn run(&self, ctx: &JobContext) -> JobResult {
        Ok(ctx.registry.deliver_notification(self.id).await?)
    }
}

fn view(n: &NotificationRow) -> Notification {
    Notification {
        uuid: n.uuid.clone(),
        title: n.title.clone(),
        event: n.event.clone(),
        method: n.method.clone(),
        config: serde_json::from_str(&n.config).unwrap_or(Value::Null),
        event_config: serde_json::from_str(&n.event_config).unwrap_or(json!({})),
        number_of_failures: n.failures,
        disabled_at: n.disabled_at,
        created_at: n.created_at,
    }
}

/// Where notifications hang: a repository, an organization, or the calling user's namespace.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    Repository(&'a str),
    Organization(&'a str),
    OwnNamespace,
}

impl Scope<'_> {
    fn name<'b>(&'b self, actor: &'b Actor) -> &'b str {
        match self {
            Scope::Repository(r) | Scope::Organization(r) => r,
            Scope::OwnNamespace => &actor.name,
        }
    }

    /// Quay's audit kinds: `add_repo_notification` and so on for a repository.
    fn kind(&self, verb: &str) -> String {
        match self {
            Scope::Repository(_) => format!("{verb}_repo_notification"),
            _ => format!("{verb}_namespace_notification"),
        }
    }

    fn entry(&self, e: crate::auth::AuditEntry) -> crate::auth::AuditEntry {
        match self {
            Scope::Repository(r) => e.repo(r),
            Scope::Organization(o) => e.namespace(o),
            Scope::OwnNamespace => e,
        }
    }
}

enum Owner {
    Repo(i64),
    Namespace(String),
}

impl Owner {
    fn owns(&self, n: &NotificationRow) -> bool {
        match self {
            Owner::Repo(id) => n.repo_id == Some(*id),
            Owner::Namespace(ns) => n.repo_id.is_none() && n.namespace.as_deref() == Some(ns),
        }
    }
    fn repo_id(&self) -> Option<i64> {
        match self {
            Owner::Repo(id) => Some(*id),
            Owner::Namespace(_) => None,
        }
    }
    fn namespace(&self) -> Option<&str> {
        match self {
            Owner::Repo(_) => None,
            Owner::Namespace(ns) => Some(ns),
        }
    }
}

/// The notification use cases. Cheap: make one per request.
#[derive(Clone, Copy)]
pub struct Notifications<'a> {
    registry: &'a Registry,
    auth: &'a Auth,
}

impl<'a> Notifications<'a> {
    pub fn new(registry: &'a Registry, auth: &'a Auth) -> Notifications<'a> {
        Notifications { registry, auth }
    }

    /// What the scope is, once its administrator is the caller: a repository's id, or a
    /// namespace's name.
    async fn admin(&self, actor: &Actor, at: &Scope<'_>) -> Result<Owner> {
        match at {
            Scope::Repository(repo) => Ok(Owner::Repo(
                self.auth
                    .repo_and_access(Some(actor), repo, Role::Admin)
                    .await?
                    .0
                    .id,
            )),
            Scope::Organization(org) => {
                self.quota_notifications_on()?;
                Ok(Owner::Namespace(
                    self.auth.org_admin(actor, org).await?.name,
                ))
            }
            Scope::OwnNamespace => {
                self.quota_notifications_on()?;
                if actor.kind != crate::auth::AccountKind::User || !actor.has_scope("user:admin") {
                    return Err(Error::denied(
                        "only a user (with user:admin) has namespace notifications of its own",
                    ));
                }
                Ok(Owner::Namespace(actor.name.clone()))
            }
        }
    }

    fn quota_notifications_on(&self) -> Result<()> {
        if self.registry.notify_config().quota_notifications {
            Ok(())
        } else {
            Err(Error::not_found(
                "namespace notifications are off; an administrator turns them on with FEATURE_QUOTA_NOTIFICATIONS: true",
            ))
        }
    }

    /// A notification of this scope (Quay looks the uuid up anywhere; Berth answers only for
    /// the repository or namespace in the path).
    async fn of_scope(&self, actor: &Actor, at: &Scope<'_>, uuid: &str) -> Result<NotificationRow> {
        let owner = self.admin(actor, at).await?;
        self.registry
            .db
            .notification(uuid)
            .await?
            .filter(|n| owner.owns(n))
            .ok_or_else(|| {
                Error::not_found(format!("{} has no notification {uuid}", at.name(actor)))
            })
    }

    pub async fn list(&self, actor: &Actor, at: &Scope<'_>) -> Result<Vec<Notification>> {
        let rows = match self.admin(actor, at).await? {
            Owner::Repo(id) => self.registry.db.notifications_of(Some(id), None).await?,
            Owner::Namespace(ns) => self.registry.db.notifications_of(None, Some(&ns)).await?,
        };
        Ok(rows.iter().map(view).collect())
    }

    pub async fn get(&self, actor: &Actor, at: &Scope<'_>, uuid: &str) -> Result<Notification> {
        Ok(view(&self.of_scope(actor, at, uuid).await?))
    }

    /// Creates a repository notification after checking the event, the method's settings
    /// (a webhook's or Slack's URL through the outbound guard, a template that parses) and the
    /// filter.
    pub async fn create(
        &self,
        caller: Caller<'_>,
        at: &Scope<'_>,
        spec: &NewNotificationSpec,
    ) -> Result<Created> {
        let owner = self.admin(caller.actor, at).await?;
        if !events::EVENTS.contains(&spec.event.as_str()) {
            return Err(Error::invalid(format!(
                "unknown event {:?}; one of {}",
                spec.event,
                events::EVENTS.join(", ")
            )));
        }
        let of_namespace = events::NAMESPACE_EVENTS.contains(&spec.event.as_str());
        match (&owner, of_namespace) {
            (Owner::Repo(_), true) => {
                return Err(Error::invalid(format!(
                    "{} is an event of a namespace: create it under the organization's or the user's notifications",
                    spec.event
                )));
            }
            (Owner::Namespace(_), false) => {
                return Err(Error::invalid(format!(
                    "a namespace notification is for quota_warning or quota_error; {} belongs on a repository",
                    spec.event
                )));
            }
            _ => {}
        }
        let (config, headers) = self.check_method(spec).await?;
        events::check_event_config(&spec.event, &spec.event_config).map_err(Error::invalid)?;
        if let (Owner::Repo(id), Some(email)) = (&owner, config["email"].as_str())
            && spec.method == "email"
            && self.registry.db.authorized_email(*id, email).await? != Some(true)
        {
            return Err(Error::invalid(format!(
                "{email} is not authorized for this repository's notifications: POST /api/v1/repository/{}/authorizedemail/{email}, then open the link mailed to it",
                at.name(caller.actor)
            )));
        }
        let signing_key = crate::auth::secret::random_token(32);
        let secrets = Secrets {
            signing_key: signing_key.clone(),
            headers,
        };
        let sealed = self.registry.sealer().await?.seal(
            serde_json::to_string(&secrets)
                .unwrap_or_default()
                .as_bytes(),
        );
        let uuid = uuid::Uuid::new_v4().to_string();
        let event_config = if spec.event_config.is_null() {
            json!({})
        } else {
            spec.event_config.clone()
        };
        let title = spec.title.clone().unwrap_or_default();
        let row = self
            .registry
            .db
            .create_notification(&NewNotification {
                uuid: &uuid,
                repo_id: owner.repo_id(),
                namespace: owner.namespace(),
                event: &spec.event,
                method: &spec.method,
                title: &title,
                config: &config.to_string(),
                event_config: &event_config.to_string(),
                secret: &sealed,
            })
            .await?;
        self.audit_change(caller, at, "add", &row).await;
        Ok(Created {
            notification: view(&row),
            secret: signing_key,
        })
    }

    /// The method's settings as stored (no secrets) and the custom headers to seal.
    async fn check_method(
        &self,
        spec: &NewNotificationSpec,
    ) -> Result<(Value, Vec<(String, String)>)> {
        if let Some(why) = events::unsupported_method(&spec.method) {
            return Err(Error::invalid(why));
        }
        if !events::METHODS.contains(&spec.method.as_str()) {
            return Err(Error::invalid(format!(
                "unknown method {:?}; one of {}",
                spec.method,
                events::METHODS.join(", ")
            )));
        }
        let c = &spec.config;
        if spec.method == "quay_notification" {
            let kind = c["target"]["kind"].as_str().unwrap_or("");
            let name = c["target"]["name"].as_str().unwrap_or("").trim();
            if !matches!(kind, "user" | "org" | "team") || name.is_empty() {
                return Err(Error::invalid(
                    "an in-app notification needs config.target {kind: user, org or team, name}",
                ));
            }
            return Ok((json!({"target": {"kind": kind, "name": name}}), Vec::new()));
        }
        if spec.method == "email" {
            if self.registry.notify_config().mail.is_none() {
                return Err(Error::invalid(
                    "email is not set up on this registry: an administrator sets MAIL_SERVER (and FEATURE_MAILING)",
                ));
            }
            let email = c["email"].as_str().unwrap_or("").trim();
            if !mail::valid_address(email) {
                return Err(Error::invalid(
                    "an email notification needs config.email, an address",
                ));
            }
            return Ok((json!({"email": email}), Vec::new()));
        }
        let url = c["url"].as_str().filter(|u| !u.is_empty()).ok_or_else(|| {
            Error::invalid(format!("a {} notification needs config.url", spec.method))
        })?;
        // Checked again at every send; a host that does not resolve yet is let through here.
        match self.registry.outbound_guard().check(url).await {
            Ok(_) | Err(berth_net::Refused::Unresolved { .. }) => {}
            Err(e) => return Err(Error::invalid(format!("config.url: {e}"))),
        }
        let mut stored = json!({"url": url});
        let mut headers = Vec::new();
        if spec.method == "webhook" {
            if let Some(t) = c.get("template").filter(|t| !t.is_null() && *t != "") {
                let text = match t {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                if serde_json::from_str::<Value>(&text).is_err() {
                    return Err(Error::invalid("config.template is not a JSON document"));
                }
                stored["template"] = Value::String(text);
            }
            match c["format"].as_str() {
                None | Some("" | "quay") => {}
                Some("cloudevents") => stored["format"] = json!("cloudevents"),
                Some(f) => {
                    return Err(Error::invalid(format!(
                        "config.format {f:?}: quay (the default) or cloudevents"
                    )));
                }
            }
            if let Some(h) = c.get("headers").and_then(Value::as_object) {
                let mut names = Vec::new();
                for (k, v) in h {
                    let Some(v) = v.as_str() else {
                        return Err(Error::invalid(format!(
                            "config.headers.{k} must be a string"
                        )));
                    };
                    let valid = reqwest::header::HeaderName::from_bytes(k.as_bytes()).is_ok()
                        && reqwest::header::HeaderValue::from_str(v).is_ok();
                    let reserved = k.eq_ignore_ascii_case("content-type")
                        || k.eq_ignore_ascii_case("host")
                        || k.to_ascii_lowercase().starts_with("x-berth-");
                    if !valid || reserved {
                        return Err(Error::invalid(format!(
                            "config.headers.{k} cannot be sent (not a valid header, or one Berth sets itself)"
                        )));
                    }
                    names.push(Value::String(k.clone()));
                    headers.push((k.clone(), v.to_string()));
                }
                stored["headers"] = Value::Array(names);
            }
        }
        Ok((stored, headers))
    }

    pub async fn delete(&self, caller: Caller<'_>, at: &Scope<'_>, uuid: &str) -> Result<()> {
        let n = self.of_scope(caller.actor, at, uuid).await?;
        self.registry.db.delete_notification(n.id).await?;
        self.audit_change(caller, at, "delete", &n).await;
        Ok(())
    }

    /// Clears the failure count and re-enables the notification (Quay's `POST …/{uuid}`).
    pub async fn reset(&self, caller: Caller<'_>, at: &Scope<'_>, uuid: &str) -> Result<()> {
        let n = self.of_scope(caller.actor, at, uuid).await?;
        self.registry.db.reset_notification(n.id).await?;
        self.audit_change(caller, at, "reset", &n).await;
        Ok(())
    }

    /// Quay's `{verb}_repo_notification` (or namespace) audit entry for `n`.
    async fn audit_change(
        &self,
        caller: Caller<'_>,
        at: &Scope<'_>,
        verb: &str,
        n: &NotificationRow,
    ) {
        self.auth
            .audit
            .record(
                at.entry(caller.audit(&at.kind(verb)))
                    .meta(json!({"notification_id": n.uuid, "event": n.event, "method": n.method})),
            )
            .await;
    }

    /// Queues Quay's sample payload of the notification's event, delivered as a real event
    /// would be (a disabled notification sends nothing).
    pub async fn test(&self, caller: Caller<'_>, at: &Scope<'_>, uuid: &str) -> Result<()> {
        let n = self.of_scope(caller.actor, at, uuid).await?;
        let filter: Value = serde_json::from_str(&n.event_config).unwrap_or(json!({}));
        let sample = events::sample(&n.event, &filter);
        let data = match (&n.repo_id, &n.namespace) {
            (Some(_), _) => self.registry.repo_event_data(at.name(caller.actor), sample),
            (None, ns) => self
                .registry
                .namespace_event_data(ns.as_deref().unwrap_or(""), sample),
        };
        self.enqueue(&n, &data).await
    }

    async fn enqueue(&self, n: &NotificationRow, data: &Value) -> Result<()> {
        let mut w = self.registry.db.write().await?;
        self.registry
            .queue_delivery(
                &mut w,
                n.id,
                &uuid::Uuid::new_v4().to_string(),
                &n.event,
                &data.to_string(),
            )
            .await?;
        Ok(w.commit().await?)
    }

    /// The notification's delivery log, newest first (the last 100 attempts).
    pub async fn attempts(
        &self,
        actor: &Actor,
        at: &Scope<'_>,
        uuid: &str,
    ) -> Result<Vec<DeliveryAttempt>> {
        let n = self.of_scope(actor, at, uuid).await?;
        Ok(self
            .registry
            .db
            .attempts(n.id, berth_db::ATTEMPTS_KEPT)
            .await?
            .into_iter()
            .map(|a| DeliveryAttempt {
                delivery_id: a.delivery_id,
                event_id: a.event_id,
                event: a.event,
                at: a.at,
                status: a.status,
                error: a.error,
                latency_ms: a.latency_ms,
            })
            .collect())
    }

    /// Sends a past delivery again, with its event id (receivers may drop what they have seen).
    pub async fn redeliver(
        &self,
        caller: Caller<'_>,
        at: &Scope<'_>,
        uuid: &str,
        delivery_id: i64,
    ) -> Result<()> {
        let n = self.of_scope(caller.actor, at, uuid).await?;
        let db = &self.registry.db;
        let d = db.delivery(n.id, delivery_id).await?.ok_or_else(|| {
            Error::not_found(format!("notification {uuid} has no delivery {delivery_id}"))
        })?;
        let mut w = db.write().await?;
        self.registry
            .queue_delivery(&mut w, n.id, &d.event_id, &d.event, &d.payload)
            .await?;
        Ok(w.commit().await?)
    }
}

/// An in-app notification of the caller (Quay's user notification).
#[derive(Debug, Clone)]
pub struct UserNotification {
    pub id: String,
    pub organization: Option<String>,
    pub kind: String,
    pub created: i64,
    pub metadata: Value,
    pub dismissed: bool,
}

fn user_view(r: berth_db::UserNotificationRow) -> UserNotification {
    UserNotification {
        id: r.uuid,
        organization: r.organization,
        kind: r.kind,
        created: r.created_at,
        metadata: serde_json::from_str(&r.metadata).unwrap_or(Value::Null),
        dismissed: r.dismissed,
    }
}

impl Notifications<'_> {
    fn own(&self, actor: &Actor) -> Result<i64> {
        if actor.kind != crate::auth::AccountKind::User || !actor.has_scope("user:admin") {
            return Err(Error::denied(
                "only a user (with user:admin) has in-app notifications",
            ));
        }
        Ok(actor.id)
    }

    /// The caller's in-app notifications, newest first: page `page` (from 0) of `limit`, and
    /// whether more follow.
    pub async fn mine(
        &self,
        actor: &Actor,
        page: i64,
        limit: i64,
    ) -> Result<(Vec<UserNotification>, bool)> {
        let id = self.own(actor)?;
        let limit = limit.clamp(1, 100);
        let mut rows = self
            .registry
            .db
            .user_notifications(id, page.max(0).saturating_mul(limit), limit + 1)
            .await?;
        let more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        Ok((rows.into_iter().map(user_view).collect(), more))
    }

    /// How many of the caller's in-app notifications are not dismissed (the header's count).
    pub async fn unread(&self, actor: &Actor) -> Result<i64> {
        let id = self.own(actor)?;
        Ok(self.registry.db.unread_user_notifications(id).await?)
    }

    pub async fn my_notification(&self, actor: &Actor, uuid: &str) -> Result<UserNotification> {
        let id = self.own(actor)?;
        self.registry
            .db
            .user_notification(id, uuid)
            .await?
            .map(user_view)
            .ok_or_else(|| Error::not_found(format!("you have no notification {uuid}")))
    }

    /// Dismisses (or restores) one of the caller's in-app notifications.
    pub async fn dismiss(
        &self,
        actor: &Actor,
        uuid: &str,
        dismissed: bool,
    ) -> Result<UserNotification> {
        let id = self.own(actor)?;
        if !self
            .registry
            .db
            .dismiss_user_notification(id, uuid, dismissed)
            .await?
        {
            return Err(Error::not_found(format!("you have no notification {uuid}")));
        }
        self.my_notification(actor, uuid).await
    }
}

/// An address's authorization for a repository's email notifications (Quay's view).
#[derive(Debug, Clone)]
pub struct AuthorizedEmail {
    pub email: String,
    pub repository: String,
    pub namespace: String,
    pub confirmed: bool,
}

impl Notifications<'_> {
    fn authorized_view(repo: &str, email: &str, confirmed: bool) -> AuthorizedEmail {
        AuthorizedEmail {
            email: email.to_string(),
            repository: repo
                .split_once('/')
                .map(|(_, n)| n)
                .unwrap_or(repo)
                .to_string(),
            namespace: repo.split('/').next().unwrap_or(repo).to_string(),
            confirmed,
        }
    }

    /// Whether `email` may receive the repository's notifications; NotFound if never asked.
    pub async fn authorized_email(
        &self,
        actor: &Actor,
        repo: &str,
        email: &str,
    ) -> Result<AuthorizedEmail> {
        let Owner::Repo(id) = self.admin(actor, &Scope::Repository(repo)).await? else {
            return Err(Error::not_found("no such repository"));
        };
        match self.registry.db.authorized_email(id, email).await? {
            Some(c) => Ok(Self::authorized_view(repo, email, c)),
            None => Err(Error::not_found(format!(
                "{email} has not been asked to confirm notifications of {repo}"
            ))),
        }
    }

    /// Mails `email` a link that authorizes it for the repository's email notifications.
    pub async fn authorize_email(
        &self,
        caller: Caller<'_>,
        repo: &str,
        email: &str,
    ) -> Result<AuthorizedEmail> {
        let Owner::Repo(id) = self.admin(caller.actor, &Scope::Repository(repo)).await? else {
            return Err(Error::not_found("no such repository"));
        };
        let c = self.registry.notify_config();
        let Some(m) = &c.mail else {
            return Err(Error::invalid(
                "email is not set up on this registry: an administrator sets MAIL_SERVER (and FEATURE_MAILING)",
            ));
        };
        if !mail::valid_address(email) {
            return Err(Error::invalid(format!("{email:?} is not an email address")));
        }
        let code = crate::auth::secret::random_token(32);
        if !self
            .registry
            .db
            .request_email_authorization(id, email, &code)
            .await?
        {
            return Ok(Self::authorized_view(repo, email, true));
        }
        let link = format!(
            "{}://{}/authrepoemail?code={code}",
            c.scheme, c.server_hostname
        );
        let text = format!(
            "Someone asked that {email} receive the notifications of repository {repo}.\n\nTo allow it, open {link}\n\nIf you did not expect this, ignore this mail.\n"
        );
        let html = format!(
            "<!doctype html><html><body><p>Someone asked that {email} receive the notifications of repository <b>{repo}</b>.</p><p><a href=\"{link}\">Allow it</a></p><p>If you did not expect this, ignore this mail.</p></body></html>"
        );
        mail::send(
            m,
            std::time::Duration::from_millis(c.send_timeout_ms.max(1)),
            email,
            &format!("Confirm notifications of {repo}"),
            text,
            html,
        )
        .await
        .map_err(|e| Error::Unavailable(format!("the confirmation mail could not be sent: {e}")))?;
        self.auth
            .audit
            .record(
                caller
                    .audit("authorize_email")
                    .repo(repo)
                    .meta(json!({"email": email})),
            )
            .await;
        Ok(Self::authorized_view(repo, email, false))
    }

    /// The confirmation link's target: (repository, email) now authorized.
    pub async fn confirm_email(&self, code: &str) -> Result<(String, String)> {
        let Some((repo_id, email)) = self.registry.db.confirm_email_authorization(code).await?
        else {
            return Err(Error::not_found(
                "this confirmation link is not valid (or was replaced by a newer one)",
            ));
        };
        let repo = self
            .registry
            .db
            .repo_name(repo_id)
            .await?
            .unwrap_or_default();
        Ok((repo, email))
    }
}
