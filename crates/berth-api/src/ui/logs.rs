//! Usage logs, one section for every log a page shows (a repository's, an organization's, the
//! signed-in user's, the whole registry's): a date range and performer/kind filters in the URL,
//! a chart of actions per day drawn on the server (SVG), the entries newest first with a cursor,
//! and CSV or JSON-lines export of the range. The doors are `Auth::audit_log`,
//! `audit_counts` and `audit_export`, which check the caller's right to each log.

use super::{Page, csv_field, iso, link, parse_day};
use crate::AppState;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use berth_core::auth::views::{AuditCount, LogScope};
use berth_core::{AuditQuery, AuditRecord, Error};
use maud::{Markup, html};

const DAY_MS: i64 = 86_400_000;
/// Entries per page.
const PAGE: i64 = 50;
/// Longest range a chart draws.
const MAX_DAYS: i64 = 366;

fn day_of(ms: i64) -> String {
    iso(ms).chars().take(10).collect()
}

/// The query a log page's URL asks for: days `from..=to` (default the last seven), performer
/// and kind.
struct Range<'p> {
    from: i64,
    /// Exclusive: the start of the day after the last one shown.
    to: i64,
    performer: Option<&'p str>,
    kind: Option<&'p str>,
}

impl<'p> Range<'p> {
    fn of(page: &'p Page) -> Result<Range<'p>, Error> {
        let today = berth_core::now_ms().div_euclid(DAY_MS) * DAY_MS;
        let bad = |what: &str, v: &str| {
            Error::invalid(format!("{what} {v:?} is not a date (YYYY-MM-DD)"))
        };
        let to = match page.q("to") {
            Some(v) => parse_day(v).ok_or_else(|| bad("to", v))?,
            None => today,
        } + DAY_MS;
        let from = match page.q("from") {
            Some(v) => parse_day(v).ok_or_else(|| bad("from", v))?,
            None => to - 7 * DAY_MS,
        };
        if from >= to {
            return Err(Error::invalid("the range starts after it ends"));
        }
        Ok(Range {
            from,
            to,
            performer: page.q("performer"),
            kind: page.q("kind"),
        })
    }

    fn query(&self) -> AuditQuery<'p> {
        AuditQuery {
            performer: self.performer,
            kind: self.kind,
            from: self.from,
            to: self.to,
            ..AuditQuery::default()
        }
    }

    /// The URL of this range on `base` (whose own query is `fixed`), with `extra` parameters.
    fn link(&self, base: &str, fixed: &[(&str, &str)], extra: &[(&str, &str)]) -> String {
        let from = day_of(self.from);
        let to = day_of(self.to - DAY_MS);
        let mut p: Vec<(&str, &str)> = fixed.to_vec();
        p.extend([
            ("from", from.as_str()),
            ("to", to.as_str()),
            ("performer", self.performer.unwrap_or("")),
            ("kind", self.kind.unwrap_or("")),
        ]);
        p.extend_from_slice(extra);
        link(base, &p)
    }
}

/// `?format=csv|jsonl` on a log page: the export of the whole range (at most
/// `EXPORT_CAP` entries); `None` when the page is not asked for one.
pub async fn export(st: &AppState, page: &Page, scope: LogScope<'_>) -> Option<Response> {
    let format = page.q("format")?;
    Some(match export_inner(st, page, scope, format).await {
        Ok(r) => r,
        Err(e) => page.error(e),
    })
}

async fn export_inner(
    st: &AppState,
    page: &Page,
    scope: LogScope<'_>,
    format: &str,
) -> Result<Response, Error> {
    let actor = page
        .actor
        .as_ref()
        .ok_or_else(|| Error::Unauthenticated("sign in to read logs".into()))?;
    let range = Range::of(page)?;
    let (kind, ext) = match format {
        "csv" => ("text/csv; charset=utf-8", "csv"),
        "jsonl" => ("application/x-ndjson", "jsonl"),
        _ => return Err(Error::invalid("export as csv or jsonl")),
    };
    let (rows, more) = st
        .auth
        .audit_export(actor, scope, &range.query(), crate::rest::logs::EXPORT_CAP)
        .await?;
    let mut out = String::new();
    if ext == "csv" {
        out.push_str("id,time,kind,performer,performer_kind,namespace,repository,ip,metadata\n");
        for r in &rows {
            let f = |v: &Option<String>| csv_field(v.as_deref().unwrap_or(""));
            out.push_str(&format!(
                "{},{},{},{},{},{},{},{},{}\n",
                r.id,
                iso(r.at),
                csv_field(&r.kind),
                f(&r.performer),
                f(&r.performer_kind),
                f(&r.namespace),
                f(&r.repository),
                f(&r.ip),
                csv_field(&r.metadata)
            ));
        }
    } else {
        for r in &rows {
            let entry = crate::rest::logs::LogEntry::new(r);
            out.push_str(&serde_json::to_string(&entry).unwrap_or_default());
            out.push('\n');
        }
    }
    let mut resp = (StatusCode::OK, out).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let name = format!(
        "attachment; filename=\"logs-{}-{}.{ext}\"",
        day_of(range.from),
        day_of(range.to - DAY_MS)
    );
    if let Ok(v) = HeaderValue::from_str(&name) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if more && let Ok(v) = HeaderValue::from_str(&format!("{}", crate::rest::logs::EXPORT_CAP)) {
        // The export stopped at its cap: narrow the range for the rest.
        h.insert("x-berth-truncated-at", v);
    }
    Ok(resp)
}

/// The log section of a page at `base` (its own query parameters `fixed`, e.g. the tab).
pub async fn section(
    st: &AppState,
    page: &Page,
    scope: LogScope<'_>,
    base: &str,
    fixed: &[(&str, &str)],
) -> Result<Markup, Error> {
    let actor = page
        .actor
        .as_ref()
        .ok_or_else(|| Error::Unauthenticated("sign in to read logs".into()))?;
    let range = Range::of(page)?;
    let mut q = range.query();
    q.limit = PAGE + 1;
    q.before_id = match page.q("before") {
        Some(b) => Some(
            b.parse()
                .map_err(|_| Error::invalid("before is not a value this page gave"))?,
        ),
        None => None,
    };
    let rows = st.auth.audit_log(actor, scope, &q).await?;
    let counts = st.auth.audit_counts(actor, scope, &range.query()).await?;
    let more = rows.len() as i64 > PAGE;
    let rows = &rows[..rows.len().min(PAGE as usize)];
    let show_repo = !matches!(scope, LogScope::Repository(_));
    let total: i64 = counts.iter().map(|c| c.count).sum();
    Ok(html! {
        section #logs {
            form.filters method="get" action=(base) {
                @for (k, v) in fixed { input type="hidden" name=(k) value=(v); }
                div { label for="log-from" { "From" } input #log-from type="date" name="from" value=(day_of(range.from)); }
                div { label for="log-to" { "To" } input #log-to type="date" name="to" value=(day_of(range.to - DAY_MS)); }
                div { label for="log-performer" { "Performer" } input #log-performer name="performer" value=[range.performer]; }
                div { label for="log-kind" { "Kind" } input #log-kind name="kind" value=[range.kind] placeholder="e.g. push_repo"; }
                button type="submit" { "Show" }
            }
            (chart(&counts, range.from, range.to))
            p.count role="status" {
                (total) " " @if total == 1 { "entry" } @else { "entries" } " from " (day_of(range.from)) " to " (day_of(range.to - DAY_MS)) ". "
                "Export: "
                a href=(range.link(base, fixed, &[("format", "csv")])) download { "CSV" }
                " · "
                a href=(range.link(base, fixed, &[("format", "jsonl")])) download { "JSON lines" }
            }
            @if rows.is_empty() {
                p.empty { "No entries." }
            } @else {
                table.list {
                    caption.visually-hidden { "Log entries, newest first" }
                    thead { tr {
                        th scope="col" { "Time" } th scope="col" { "Kind" } th scope="col" { "Performer" }
                        @if show_repo { th scope="col" { "Repository" } }
                        th scope="col" { "Address" } th scope="col" { "Details" }
                    } }
                    tbody { @for r in rows { (row(r, show_repo)) } }
                }
            }
            nav.pager aria-label="Pages of log entries" {
                @if page.q("before").is_some() { a href=(range.link(base, fixed, &[])) { "Newest" } }
                @if let Some(last) = rows.last().filter(|_| more) {
                    a href=(range.link(base, fixed, &[("before", &last.id.to_string())])) rel="next" { "Older" }
                }
            }
        }
    })
}

fn row(r: &AuditRecord, show_repo: bool) -> Markup {
    let details = if r.metadata.len() > 200 {
        let cut = (0..=200)
            .rev()
            .find(|i| r.metadata.is_char_boundary(*i))
            .unwrap_or(0);
        format!("{}…", &r.metadata[..cut])
    } else {
        r.metadata.clone()
    };
    html! {
        tr {
            td { time datetime=(iso(r.at)) { (iso(r.at)) } }
            td { code { (r.kind) } }
            td { (r.performer.as_deref().unwrap_or("—")) }
            @if show_repo { td { @if let Some(repo) = &r.repository { a href={ "/repository/" (repo) } { (repo) } } } }
            td { (r.ip.as_deref().unwrap_or("")) }
            td.muted { code { (details) } }
        }
    }
}

/// Actions per day as bars, each with its per-kind breakdown in a tooltip; the same numbers
/// as a table for screen readers.
fn chart(counts: &[AuditCount], from: i64, to: i64) -> Markup {
    let days = ((to - from) / DAY_MS).clamp(1, MAX_DAYS);
    let start = to - days * DAY_MS;
    let mut per_day: Vec<(i64, Vec<(&str, i64)>)> = (0..days)
        .map(|i| (start + i * DAY_MS, Vec::new()))
        .collect();
    for c in counts {
        let i = (c.day - start).div_euclid(DAY_MS);
        if let Some((_, kinds)) = usize::try_from(i).ok().and_then(|i| per_day.get_mut(i)) {
            kinds.push((&c.kind, c.count));
        }
    }
    let totals: Vec<i64> = per_day
        .iter()
        .map(|(_, k)| k.iter().map(|(_, n)| n).sum())
        .collect();
    let max = totals.iter().copied().max().unwrap_or(0).max(1);
    let (w, h, pad) = (720.0_f64, 160.0_f64, 24.0_f64);
    let slot = w / days as f64;
    let bar = (slot * 0.7).max(1.0);
    html! {
        figure.chart {
            svg viewBox=(format!("0 0 {w} {}", h + pad)) role="img" aria-labelledby="chart-title" preserveAspectRatio="none" {
                title #chart-title { "Log entries per day, " (day_of(start)) " to " (day_of(to - DAY_MS)) "; the most in a day: " (max) }
                line x1="0" y1=(h) x2=(w) y2=(h) class="axis" {}
                @for (i, ((day, kinds), total)) in per_day.iter().zip(&totals).enumerate() {
                    @let bh = h * (*total as f64) / (max as f64);
                    @let x = i as f64 * slot + (slot - bar) / 2.0;
                    rect x=(format!("{x:.1}")) y=(format!("{:.1}", h - bh)) width=(format!("{bar:.1}")) height=(format!("{bh:.1}")) class="bar" {
                        title {
                            (day_of(*day)) ": " (total)
                            @for (k, n) in kinds { "\n" (k) ": " (n) }
                        }
                    }
                    @if days <= 14 || i % (days as usize / 7).max(1) == 0 {
                        text x=(format!("{:.1}", i as f64 * slot + slot / 2.0)) y=(h + pad - 6.0) text-anchor="middle" class="label" { (day_of(*day)[5..].to_string()) }
                    }
                }
            }
            figcaption.visually-hidden {
                table {
                    caption { "Entries per day" }
                    thead { tr { th scope="col" { "Day" } th scope="col" { "Entries" } } }
                    tbody { @for ((day, _), total) in per_day.iter().zip(&totals) { @if *total > 0 { tr { td { (day_of(*day)) } td { (total) } } } } }
                }
            }
        }
    }
}
