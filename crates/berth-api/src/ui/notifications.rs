//! Notifications in the UI: the link mailed to confirm an address for a repository's email
//! notifications (`/authrepoemail?code=…`, Quay's address).

use super::{Crumb, Page};
use crate::AppState;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use berth_core::notify::Notifications;
use maud::html;
use std::sync::Arc;

/// `GET /authrepoemail?code=…`: the code is the capability; no session is needed.
pub async fn confirm_email(State(st): State<Arc<AppState>>, req: Request) -> Response {
    let page = Page::of(&st, &req).await;
    let code = page.q("code").unwrap_or("").to_string();
    match Notifications::new(&st.registry, &st.auth)
        .confirm_email(&code)
        .await
    {
        Ok((repo, email)) => page.render(
            StatusCode::OK,
            "Email confirmed",
            &[Crumb::new("Email confirmed", "")],
            html! {
                h1 { "Email confirmed" }
                p { strong { (email) } " may now receive the notifications of " a href={ "/repository/" (repo) } { (repo) } "." }
            },
        ),
        Err(e) => page.error(e),
    }
}

use super::{ago, field, iso, link, post_button, url_encode};
use berth_core::notify::{Created, NewNotificationSpec, Notification, Scope, events};
use maud::Markup;
use std::collections::HashMap;

/// Where a scope's notification pages live.
fn base(at: &Scope<'_>) -> String {
    match at {
        Scope::Repository(r) => format!("/repository/{r}"),
        Scope::Organization(o) => format!("/organization/{o}"),
        Scope::OwnNamespace => String::new(),
    }
}

/// Where a method sends: its URL, address or in-app target.
fn target(n: &Notification) -> String {
    let c = &n.config;
    c["url"]
        .as_str()
        .or(c["email"].as_str())
        .map(str::to_string)
        .unwrap_or_else(|| {
            format!(
                "{} {}",
                c["target"]["kind"].as_str().unwrap_or(""),
                c["target"]["name"].as_str().unwrap_or("")
            )
        })
}

fn state(n: &Notification) -> Markup {
    html! {
        @if let Some(at) = n.disabled_at {
            span.badge.error { "disabled" } " " span.muted { "since " time datetime=(iso(at)) { (ago(at)) } " after " (n.number_of_failures) " failed deliveries" }
        } @else if n.number_of_failures > 0 {
            span.muted { (n.number_of_failures) " failed deliveries in a row" }
        } @else {
            span.muted { "ok" }
        }
    }
}

/// The list and the create form of a repository's (or a namespace's) notifications.
pub async fn section(st: &AppState, page: &Page, at: &Scope<'_>) -> berth_core::Result<Markup> {
    let Some(actor) = page.actor.as_ref() else {
        return Err(berth_core::Error::Unauthenticated("sign in first".into()));
    };
    let all = Notifications::new(&st.registry, &st.auth)
        .list(actor, at)
        .await?;
    let base = base(at);
    let repo_events: Vec<&str> = events::EVENTS
        .iter()
        .copied()
        .filter(|e| matches!(at, Scope::Repository(_)) != events::NAMESPACE_EVENTS.contains(e))
        .collect();
    let mail = st.registry.config.notify.mail.is_some();
    Ok(html! {
        section #notifications aria-labelledby="notifications-heading" {
            h2 #notifications-heading { @if matches!(at, Scope::Repository(_)) { "Notifications" } @else { "Quota notifications" } }
            @if all.is_empty() {
                p.empty { "No notifications yet." }
            } @else {
                table.list {
                    caption.visually-hidden { "Notifications" }
                    thead { tr { th scope="col" { "Title" } th scope="col" { "Event" } th scope="col" { "Method" } th scope="col" { "To" } th scope="col" { "State" } } }
                    tbody {
                        @for n in &all {
                            tr {
                                th scope="row" { a href={ (base) "/notification/" (n.uuid) } { @if n.title.is_empty() { (n.event) " → " (n.method) } @else { (n.title) } } }
                                td { code { (n.event) } }
                                td { (n.method) }
                                td { code { (target(n)) } }
                                td { (state(n)) }
                            }
                        }
                    }
                }
            }
            h3 { "Create a notification" }
            form.stack method="post" action={ (base) "/notifications" } {
                input type="hidden" name="csrf" value=(page.csrf);
                label for="n-title" { "Title (optional)" }
                input #n-title name="title";
                label for="n-event" { "When" }
                select #n-event name="event" {
                    @for e in &repo_events { option value=(e) { (e) } }
                }
                label for="n-method" { "How" }
                select #n-method name="method" {
                    option value="webhook" { "webhook (POST JSON)" }
                    option value="slack" { "Slack incoming webhook" }
                    @if mail { option value="email" { "email" } }
                    option value="quay_notification" { "in Berth (a user, an organization's admins or a team)" }
                }
                label for="n-url" { "URL (webhook, Slack)" }
                input #n-url name="url" type="url" placeholder="https://ci.example.com/hooks/registry";
                @if mail {
                    label for="n-email" { "Email address (email; a repository's address must be confirmed first)" }
                    input #n-email name="email" type="email";
                }
                label for="n-target-kind" { "In-app target" }
                select #n-target-kind name="target_kind" {
                    option value="user" { "user" } option value="org" { "organization's admins" } option value="team" { "team" }
                }
                label for="n-target-name" { "In-app target's name" }
                input #n-target-name name="target_name";
                label for="n-days" { "Days before expiry (repo_image_expiry)" }
                input #n-days name="days" type="number" min="1" value="7";
                label for="n-level" { "Lowest severity (vulnerability_found)" }
                select #n-level name="level" {
                    option value="" { "any" }
                    @for (i, p) in events::PRIORITIES.iter().enumerate() { option value=(i) { (p) } }
                }
                label for="n-ref" { "Branch or tag (build events: a regular expression on the ref)" }
                input #n-ref name="ref_regex" placeholder="refs/heads/main";
                label for="n-template" { "Body template (webhook, optional): JSON with ${path} from the event" }
                textarea #n-template name="template" rows="3" {}
                label for="n-format" { "Body format (webhook)" }
                select #n-format name="format" {
                    option value="" { "Quay's event data" } option value="cloudevents" { "CloudEvents 1.0" }
                }
                label for="n-header-name" { "Extra header (webhook, optional): name" }
                input #n-header-name name="header_name" placeholder="Authorization";
                label for="n-header-value" { "Extra header's value (never shown again)" }
                input #n-header-value name="header_value" type="password" autocomplete="off";
                button.primary type="submit" { "Create notification" }
            }
        }
    })
}

/// The form's fields as Quay's request.
fn spec(f: &HashMap<String, String>) -> NewNotificationSpec {
    let method = field(f, "method").unwrap_or("webhook").to_string();
    let mut config = serde_json::json!({});
    match method.as_str() {
        "email" => config["email"] = field(f, "email").unwrap_or("").into(),
        "quay_notification" => {
            config["target"] = serde_json::json!({
                "kind": field(f, "target_kind").unwrap_or("user"),
                "name": field(f, "target_name").unwrap_or(""),
            })
        }
        _ => {
            config["url"] = field(f, "url").unwrap_or("").into();
            if let Some(t) = field(f, "template") {
                config["template"] = t.into();
            }
            if let Some(fm) = field(f, "format") {
                config["format"] = fm.into();
            }
            if let (Some(k), Some(v)) = (field(f, "header_name"), field(f, "header_value")) {
                config["headers"] = serde_json::json!({ k: v });
            }
        }
    }
    let event = field(f, "event").unwrap_or("repo_push").to_string();
    let mut event_config = serde_json::json!({});
    match event.as_str() {
        "repo_image_expiry" => {
            event_config["days"] = field(f, "days")
                .and_then(|d| d.parse::<i64>().ok())
                .unwrap_or(0)
                .into()
        }
        "vulnerability_found" => {
            if let Some(l) = field(f, "level").and_then(|l| l.parse::<i64>().ok()) {
                event_config["level"] = l.into();
            }
        }
        e if e.starts_with("build_") => {
            if let Some(r) = field(f, "ref_regex") {
                event_config["ref-regex"] = r.into();
            }
        }
        _ => {}
    }
    NewNotificationSpec {
        event,
        method,
        config,
        event_config,
        title: field(f, "title").map(str::to_string),
    }
}

/// A notification's page: what it does, its state, test/reset/delete, and the delivery log
/// with redelivery. With `created`, its signing secret, shown this once.
pub async fn page_of(
    st: &AppState,
    page: &Page,
    at: &Scope<'_>,
    uuid: &str,
    created: Option<&Created>,
) -> Response {
    let Some(actor) = page.actor.as_ref() else {
        return page.error(berth_core::Error::Unauthenticated("sign in first".into()));
    };
    let door = Notifications::new(&st.registry, &st.auth);
    let (n, log) = match (
        door.get(actor, at, uuid).await,
        door.attempts(actor, at, uuid).await,
    ) {
        (Ok(n), Ok(l)) => (n, l),
        (Err(e), _) | (_, Err(e)) => return page.error(e),
    };
    let base = base(at);
    let here = format!("{base}/notification/{uuid}");
    let (crumbs, back) = match at {
        Scope::Repository(r) => (
            vec![
                Crumb::new("Repositories", "/repository"),
                Crumb::new(r.to_string(), format!("/repository/{r}")),
                Crumb::new(
                    "Notifications",
                    link(&format!("/repository/{r}"), &[("tab", "notifications")]),
                ),
                Crumb::new(n.event.clone(), ""),
            ],
            link(&format!("/repository/{r}"), &[("tab", "notifications")]),
        ),
        _ => (
            vec![Crumb::new(n.event.clone(), "")],
            link(&base, &[("tab", "settings")]),
        ),
    };
    page.render(
        if created.is_some() { StatusCode::CREATED } else { StatusCode::OK },
        &format!("Notification {}", n.event),
        &crumbs,
        html! {
            h1 { @if n.title.is_empty() { (n.event) " → " (n.method) } @else { (n.title) } }
            @if let Some(c) = created {
                section.notice aria-labelledby="secret-heading" {
                    h2 #secret-heading { "Signing secret" }
                    p { "Each webhook delivery carries " code { "X-Berth-Signature-256: sha256=HMAC-SHA256(secret, body)" } ". Keep this secret now: it is not shown again." }
                    p { code #notification-secret { (c.secret) } " " button.copy type="button" data-copy=(c.secret) hidden { "Copy secret" } }
                }
            }
            dl.facts {
                dt { "Event" } dd { code { (n.event) } }
                dt { "Method" } dd { (n.method) }
                dt { "To" } dd { code { (target(&n)) } }
                dt { "Filter" } dd { code { (n.event_config.to_string()) } }
                dt { "State" } dd { (state(&n)) }
                dt { "Created" } dd { time datetime=(iso(n.created_at)) { (ago(n.created_at)) } }
            }
            p {
                (post_button(page, &format!("{here}/test"), "Send a test", &[], false)) " "
                @if n.number_of_failures > 0 || n.disabled_at.is_some() {
                    (post_button(page, &format!("{here}/reset"), "Reset failures and re-enable", &[], false)) " "
                }
                (post_button(page, &format!("{here}/delete"), "Delete notification", &[], true))
            }
            h2 { "Deliveries" }
            @if log.is_empty() {
                p.empty { "Nothing sent yet." }
            } @else {
                table.list {
                    caption { "The last " (log.len()) " attempts, newest first" }
                    thead { tr { th scope="col" { "When" } th scope="col" { "Event" } th scope="col" { "Outcome" } th scope="col" { "Time taken" } th scope="col" { "Actions" } } }
                    tbody {
                        @for a in &log {
                            tr {
                                td { time datetime=(iso(a.at)) { (ago(a.at)) } }
                                td { code title=(a.event_id) { (a.event) } }
                                td {
                                    @if let Some(s) = a.status { (s) " " }
                                    @if let Some(e) = &a.error { span.error { (e) } } @else { span.yes { "delivered" } }
                                }
                                td { (a.latency_ms) " ms" }
                                td { (post_button(page, &format!("{here}/redeliver"), "Redeliver", &[("delivery", &a.delivery_id.to_string())], false)) }
                            }
                        }
                    }
                }
            }
            p { a href=(back) { "All notifications" } }
        },
    )
}

/// `POST …/notifications` (create: answers the new notification's page with its secret) and
/// `POST …/notification/{uuid}/{test|reset|delete|redeliver}`.
pub async fn action(
    st: &AppState,
    page: &Page,
    at: &Scope<'_>,
    rest: &str,
    f: &HashMap<String, String>,
) -> Response {
    let Some(actor) = page.actor.as_ref() else {
        return page.error(berth_core::Error::Unauthenticated("sign in first".into()));
    };
    let caller = berth_core::Caller::new(actor, page.ip.as_deref());
    let door = Notifications::new(&st.registry, &st.auth);
    let base = base(at);
    if rest == "notifications" {
        return match door.create(caller, at, &spec(f)).await {
            Ok(c) => page_of(st, page, at, &c.notification.uuid.clone(), Some(&c)).await,
            Err(e) => page.error(e),
        };
    }
    let Some((uuid, verb)) = rest
        .strip_prefix("notification/")
        .and_then(|r| r.split_once('/'))
    else {
        return page.error(berth_core::Error::not_found("no such action"));
    };
    let here = format!("{base}/notification/{}", url_encode(uuid));
    let done = match verb {
        "test" => door.test(caller, at, uuid).await.map(|_| here),
        "reset" => door.reset(caller, at, uuid).await.map(|_| here),
        "redeliver" => match field(f, "delivery").and_then(|d| d.parse().ok()) {
            Some(d) => door.redeliver(caller, at, uuid, d).await.map(|_| here),
            None => Err(berth_core::Error::invalid("which delivery?")),
        },
        "delete" => door.delete(caller, at, uuid).await.map(|_| match at {
            Scope::Repository(r) => link(&format!("/repository/{r}"), &[("tab", "notifications")]),
            _ => link(&base, &[("tab", "settings")]),
        }),
        _ => Err(berth_core::Error::not_found("no such action")),
    };
    page.after(done)
}

/// The user's in-app notifications (`/user/NAME?tab=notifications`), with dismiss buttons.
pub async fn inbox(st: &AppState, page: &Page, me: &str) -> berth_core::Result<Markup> {
    let Some(actor) = page.actor.as_ref() else {
        return Err(berth_core::Error::Unauthenticated("sign in first".into()));
    };
    let n: i64 = page
        .q("page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(0)
        .max(0);
    let (all, more) = Notifications::new(&st.registry, &st.auth)
        .mine(actor, n, 50)
        .await?;
    Ok(html! {
        section aria-labelledby="inbox-heading" {
            h2 #inbox-heading { "Notifications" }
            @if all.is_empty() {
                p.empty { "Nothing here. Repository notifications sent “in Berth” and notices about your notifications arrive here." }
            } @else {
                ul.plain.inbox {
                    @for u in &all {
                        li.dismissed[u.dismissed] {
                            time datetime=(iso(u.created)) { (ago(u.created)) } " "
                            strong { (u.kind) } " "
                            @if let Some(r) = u.metadata["repository"].as_str() { a href={ "/repository/" (r) } { (r) } " " }
                            @if let Some(t) = u.metadata["updated_tags"].as_array() { span.muted { @for (i, t) in t.iter().enumerate() { @if i > 0 { ", " } (t.as_str().unwrap_or("")) } } " " }
                            @if u.kind == "notification_disabled" { span.error { "“" (u.metadata["title"].as_str().filter(|t| !t.is_empty()).unwrap_or(u.metadata["event"].as_str().unwrap_or(""))) "” was disabled after " (u.metadata["failures"]) " failed deliveries" } " " }
                            @if !u.dismissed {
                                (post_button(page, &format!("/user/{me}/notifications/{}/dismiss", u.id), "Dismiss", &[], false))
                            }
                        }
                    }
                }
            }
            nav.pager aria-label="Pages of notifications" {
                @if n > 0 { a href=(link(&format!("/user/{me}"), &[("tab", "notifications"), ("page", &(n - 1).to_string())])) rel="prev" { "Newer" } }
                @if more { a href=(link(&format!("/user/{me}"), &[("tab", "notifications"), ("page", &(n + 1).to_string())])) rel="next" { "Older" } }
            }
        }
    })
}
