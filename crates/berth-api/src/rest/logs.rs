//! The audit log through the API: by repository, user, organization or (superusers) everything;
//! filtered by time range (`starttime`/`endtime`: Quay's MM/DD/YYYY, RFC 3339 or Unix seconds),
//! `performer` and `kind`; newest first, paged with `next_page`; `format=jsonl` exports the whole
//! range as JSON lines.

use super::views::{Avatar, Entity};
use super::{Ctx, Reply, RestError, Route, route};
use crate::AppState;
use axum::response::IntoResponse;
use berth_core::auth::views::LogScope;
use berth_core::{AuditQuery, AuditRecord};
use serde::Serialize;
use std::sync::Arc;
use utoipa::ToSchema;

type Res<T> = Result<T, RestError>;

const Q: &[&str] = &[
    "starttime",
    "endtime",
    "performer",
    "kind",
    "next_page",
    "limit",
    "format",
];

pub fn routes() -> Vec<Route> {
    vec![
        route!(GET "/api/v1/repository/{repository}/logs", "Audit log of a repository", "repo:admin",
            repo_logs() -> Reply<LogPage>, query Q),
        route!(GET "/api/v1/user/logs", "Audit log of the calling user's namespace and actions", "user:admin",
            user_logs() -> Reply<LogPage>, query Q),
        route!(GET "/api/v1/organization/{orgname}/logs", "Audit log of an organization", "org:admin",
            org_logs() -> Reply<LogPage>, query Q),
        route!(GET "/api/v1/superuser/logs", "The whole audit log", "super:user",
            all_logs() -> Reply<LogPage>, query Q),
        route!(GET "/api/v1/repository/{repository}/aggregatelogs", "Entries per day and kind of a repository's audit log", "repo:admin",
            repo_counts() -> Reply<Aggregated>, query AQ),
        route!(GET "/api/v1/user/aggregatelogs", "Entries per day and kind of the calling user's audit log", "user:admin",
            user_counts() -> Reply<Aggregated>, query AQ),
        route!(GET "/api/v1/organization/{orgname}/aggregatelogs", "Entries per day and kind of an organization's audit log", "org:admin",
            org_counts() -> Reply<Aggregated>, query AQ),
        route!(GET "/api/v1/superuser/aggregatelogs", "Entries per day and kind of the whole audit log", "super:user",
            all_counts() -> Reply<Aggregated>, query AQ),
    ]
}

const AQ: &[&str] = &["starttime", "endtime", "performer", "kind"];

/// Quay's aggregated logs: how many entries of each kind each day of the range has.
#[derive(Serialize, ToSchema)]
pub struct Aggregated {
    pub aggregated: Vec<AggregatedCount>,
}

#[derive(Serialize, ToSchema)]
pub struct AggregatedCount {
    pub kind: String,
    pub count: i64,
    /// HTTP date of the day (UTC midnight).
    pub datetime: String,
}

/// A page of the audit log (`format=jsonl`: every entry of the range, one [`LogEntry`] a line).
#[derive(Serialize, ToSchema)]
pub struct LogPage {
    /// HTTP date.
    pub start_time: String,
    /// HTTP date.
    pub end_time: String,
    pub logs: Vec<LogEntry>,
    /// Present when there may be more: pass it back as `next_page`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct LogEntry {
    pub id: i64,
    pub kind: String,
    /// What the entry is about, by kind.
    pub metadata: serde_json::Value,
    pub ip: Option<String>,
    /// HTTP date.
    pub datetime: String,
    pub timestamp_ms: i64,
    pub performer: Option<Entity>,
    pub namespace: Option<LogNamespace>,
    pub repository: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct LogNamespace {
    /// Always `namespace`.
    pub kind: String,
    pub name: String,
    pub avatar: Avatar,
}

impl LogEntry {
    pub fn new(r: &AuditRecord) -> LogEntry {
        LogEntry {
            id: r.id,
            kind: r.kind.clone(),
            metadata: serde_json::from_str(&r.metadata).unwrap_or_default(),
            ip: r.ip.clone(),
            datetime: crate::auth::http_date(r.at),
            timestamp_ms: r.at,
            performer: r
                .performer
                .as_ref()
                .map(|p| Entity::new(p, r.performer_kind.as_deref().unwrap_or("user"))),
            namespace: r.namespace.as_ref().map(|n| LogNamespace {
                kind: "namespace".into(),
                name: n.clone(),
                avatar: Avatar::of(n, "user"),
            }),
            repository: r.repository.clone(),
        }
    }
}

const DAY_MS: i64 = 86_400_000;

/// The most entries one export carries.
pub const EXPORT_CAP: usize = 100_000;

/// Milliseconds from MM/DD/YYYY (start of that day, UTC), RFC 3339, or Unix seconds.
fn parse_time(s: &str) -> Option<i64> {
    if let Ok(secs) = s.parse::<i64>() {
        return Some(secs.saturating_mul(1000));
    }
    let rfc = if let Some((m, rest)) = s.split_once('/') {
        let (d, y) = rest.split_once('/')?;
        let (m, d, y): (u32, u32, u32) = (m.parse().ok()?, d.parse().ok()?, y.parse().ok()?);
        format!("{y:04}-{m:02}-{d:02}T00:00:00Z")
    } else {
        s.to_string()
    };
    let t = humantime::parse_rfc3339_weak(&rfc).ok()?;
    let ms = t.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis();
    i64::try_from(ms).ok()
}

fn range(ctx: &Ctx) -> Res<(i64, i64)> {
    let now = berth_core::now_ms();
    let end = match ctx.q("endtime").filter(|s| !s.is_empty()) {
        // A bare date includes that whole day.
        Some(s) => parse_time(s)
            .map(|t| {
                if s.contains('/') {
                    t.saturating_add(DAY_MS)
                } else {
                    t
                }
            })
            .ok_or_else(|| {
                RestError::bad(format!(
                    "endtime {s:?}: use MM/DD/YYYY, RFC 3339 or Unix seconds"
                ))
            })?,
        None => now.saturating_add(1),
    };
    let start = match ctx.q("starttime").filter(|s| !s.is_empty()) {
        Some(s) => parse_time(s).ok_or_else(|| {
            RestError::bad(format!(
                "starttime {s:?}: use MM/DD/YYYY, RFC 3339 or Unix seconds"
            ))
        })?,
        None => end.saturating_sub(7 * DAY_MS),
    };
    if start > end {
        return Err(RestError::bad("starttime is after endtime"));
    }
    Ok((start, end))
}

async fn answer(st: &AppState, ctx: &Ctx, scope: LogScope<'_>) -> Res<Reply<LogPage>> {
    let actor = ctx.actor()?;
    let mut q = AuditQuery::default();
    let (from, to) = range(ctx)?;
    q.from = from;
    q.to = to;
    q.performer = ctx.q("performer").filter(|s| !s.is_empty());
    q.kind = ctx.q("kind").filter(|s| !s.is_empty());
    if ctx.q("format") == Some("jsonl") {
        // An export is bounded; narrow the time range for more.
        let (rows, _) = st.auth.audit_export(actor, scope, &q, EXPORT_CAP).await?;
        let mut out = String::new();
        for r in &rows {
            out.push_str(&serde_json::to_string(&LogEntry::new(r)).unwrap_or_default());
            out.push('\n');
        }
        return Ok(Reply::raw(
            (
                [(axum::http::header::CONTENT_TYPE, "application/x-ndjson")],
                out,
            )
                .into_response(),
        ));
    }
    q.limit = ctx
        .q("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(100)
        .clamp(1, 1000);
    q.before_id = match ctx.q("next_page").filter(|s| !s.is_empty()) {
        Some(s) => Some(
            s.parse::<i64>()
                .map_err(|_| RestError::bad("next_page is not a value this API returned"))?,
        ),
        None => None,
    };
    let rows = st.auth.audit_log(actor, scope, &q).await?;
    let more = rows.len() as i64 == q.limit;
    Ok(Reply::new(LogPage {
        start_time: crate::auth::http_date(from),
        end_time: crate::auth::http_date(to),
        logs: rows.iter().map(LogEntry::new).collect(),
        next_page: rows.last().filter(|_| more).map(|l| l.id.to_string()),
    }))
}

async fn counts(st: &AppState, ctx: &Ctx, scope: LogScope<'_>) -> Res<Reply<Aggregated>> {
    let actor = ctx.actor()?;
    let (from, to) = range(ctx)?;
    let q = AuditQuery {
        from,
        to,
        performer: ctx.q("performer").filter(|s| !s.is_empty()),
        kind: ctx.q("kind").filter(|s| !s.is_empty()),
        ..AuditQuery::default()
    };
    let rows = st.auth.audit_counts(actor, scope, &q).await?;
    Ok(Reply::new(Aggregated {
        aggregated: rows
            .into_iter()
            .map(|c| AggregatedCount {
                kind: c.kind,
                count: c.count,
                datetime: crate::auth::http_date(c.day),
            })
            .collect(),
    }))
}

async fn repo_counts(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<Aggregated>> {
    counts(&st, &ctx, LogScope::Repository(ctx.p("repository"))).await
}

async fn user_counts(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<Aggregated>> {
    counts(&st, &ctx, LogScope::User).await
}

async fn org_counts(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<Aggregated>> {
    counts(&st, &ctx, LogScope::Organization(ctx.p("orgname"))).await
}

async fn all_counts(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<Aggregated>> {
    counts(&st, &ctx, LogScope::Everything).await
}

async fn repo_logs(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<LogPage>> {
    answer(&st, &ctx, LogScope::Repository(ctx.p("repository"))).await
}

async fn user_logs(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<LogPage>> {
    answer(&st, &ctx, LogScope::User).await
}

async fn org_logs(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<LogPage>> {
    answer(&st, &ctx, LogScope::Organization(ctx.p("orgname"))).await
}

async fn all_logs(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<LogPage>> {
    answer(&st, &ctx, LogScope::Everything).await
}

#[cfg(test)]
mod tests {
    #[test]
    fn times() {
        assert_eq!(super::parse_time("01/02/1970"), Some(86_400_000));
        assert_eq!(super::parse_time("1970-01-02T00:00:00Z"), Some(86_400_000));
        assert_eq!(super::parse_time("86400"), Some(86_400_000));
        assert_eq!(super::parse_time("13/45/2020"), None);
        assert_eq!(super::parse_time("garbage"), None);
    }
}
