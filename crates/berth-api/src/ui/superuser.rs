//! The superuser panel (`/superuser?tab=users|organizations|logs|quotas|storage`): users
//! (create, disable and enable, unlock, set a password, delete), organizations (take ownership,
//! delete), the registry-wide log, every namespace's quota (set, change, remove), storage and
//! garbage collection with "run now", and service health. Each door checks that the caller is
//! a superuser.

use super::{Crumb, Page, ago, field, iso, link, post_button, size, url_encode};
use crate::AppState;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use berth_core::auth::accounts::UserChanges;
use berth_core::auth::views::LogScope;
use berth_core::auth::{AccountKind, Actor};
use berth_core::quotas::{QuotaPath, QuotaSize, Quotas};
use berth_core::{Caller, Error};
use maud::{Markup, html};
use std::sync::Arc;

const PAGE: i64 = 50;

fn need_superuser(page: &Page) -> Result<&Actor, Error> {
    let a = page
        .actor
        .as_ref()
        .ok_or_else(|| Error::Unauthenticated("sign in as a superuser".into()))?;
    if !a.superuser {
        return Err(Error::denied(
            "this page is for superusers (SUPER_USERS in the configuration)",
        ));
    }
    Ok(a)
}

pub async fn panel(State(st): State<Arc<AppState>>, req: Request) -> Response {
    let page = Page::of(&st, &req).await;
    match panel_inner(&st, &page).await {
        Ok(r) => r,
        Err(e) => page.error(e),
    }
}

async fn panel_inner(st: &AppState, page: &Page) -> Result<Response, Error> {
    let actor = need_superuser(page)?;
    let tab = match page.q("tab") {
        Some("organizations") => "organizations",
        Some("logs") => "logs",
        Some("storage") => "storage",
        Some("quotas") => "quotas",
        _ => "users",
    };
    if tab == "logs"
        && let Some(r) = super::logs::export(st, page, LogScope::Everything).await
    {
        return Ok(r);
    }
    let body = match tab {
        "organizations" => accounts(st, page, actor, AccountKind::Org).await?,
        "logs" => {
            super::logs::section(
                st,
                page,
                LogScope::Everything,
                "/superuser",
                &[("tab", "logs")],
            )
            .await?
        }
        "storage" => storage(st, page, actor).await?,
        "quotas" => quotas(st, page, actor).await?,
        _ => accounts(st, page, actor, AccountKind::User).await?,
    };
    let tabs = [
        ("users", "Users"),
        ("organizations", "Organizations"),
        ("logs", "Logs"),
        ("quotas", "Quotas"),
        ("storage", "Storage and health"),
    ];
    Ok(page.render(
        StatusCode::OK,
        "Superuser",
        &[Crumb::new("Superuser", "/superuser")],
        html! {
            h1 { "Superuser panel" }
            (super::tabs("/superuser", "Superuser", &tabs, tab))
            (body)
        },
    ))
}

async fn accounts(
    st: &AppState,
    page: &Page,
    actor: &Actor,
    kind: AccountKind,
) -> Result<Markup, Error> {
    let rows = st
        .auth
        .list_accounts(actor, kind, page.q("after").unwrap_or(""), PAGE + 1)
        .await?;
    let more = rows.len() as i64 > PAGE;
    let rows = &rows[..rows.len().min(PAGE as usize)];
    let users = kind == AccountKind::User;
    let tab = if users { "users" } else { "organizations" };
    let csrf = html! { input type="hidden" name="csrf" value=(page.csrf); };
    let button =
        |path: String, label: String, danger: bool| post_button(page, &path, &label, &[], danger);
    Ok(html! {
        @if rows.is_empty() {
            p.empty { "None." }
        } @else {
            table.list {
                caption.visually-hidden { @if users { "Users" } @else { "Organizations" } }
                thead { tr {
                    th scope="col" { "Name" } th scope="col" { "Email" } th scope="col" { "Created" }
                    @if users { th scope="col" { "State" } }
                    th scope="col" { "Actions" }
                } }
                tbody {
                    @for a in rows {
                        @let base = format!("/superuser/{}/{}", if users { "users" } else { "organizations" }, url_encode(&a.name));
                        tr {
                            th scope="row" {
                                a href=(if users { format!("/user/{}", a.name) } else { format!("/organization/{}", a.name) }) { (a.name) }
                                @if a.superuser { " " span.badge { "superuser" } }
                            }
                            td { (a.email.as_deref().unwrap_or("")) }
                            td { time datetime=(iso(a.created_at)) { (ago(a.created_at)) } }
                            @if users {
                                td {
                                    @if !a.enabled { span.badge { "disabled" } " " }
                                    @if a.failed_logins > 0 { span.muted { (a.failed_logins) " failed logins" } }
                                    @if a.enabled && a.failed_logins == 0 { span.muted { "active" } }
                                }
                            }
                            td {
                                @if users && a.id != actor.id {
                                    @if a.enabled {
                                        (button(format!("{base}/disable"), format!("Disable {}", a.name), false))
                                    } @else {
                                        (button(format!("{base}/enable"), format!("Enable {}", a.name), false))
                                    }
                                    @if a.failed_logins > 0 {
                                        " " (button(format!("{base}/unlock"), format!("Unlock {}", a.name), false))
                                    }
                                    " " (button(format!("{base}/delete"), format!("Delete {}", a.name), true))
                                    form.inline method="post" action={ (base) "/password" } {
                                        (csrf)
                                        label.visually-hidden for={ "pw-" (a.name) } { "New password for " (a.name) }
                                        " " input id={ "pw-" (a.name) } type="password" name="password" minlength="8" required autocomplete="new-password" placeholder="new password";
                                        button type="submit" { "Set password of " (a.name) }
                                    }
                                } @else if !users {
                                    (button(format!("{base}/takeownership"), format!("Take ownership of {}", a.name), false))
                                    " " (button(format!("{base}/delete"), format!("Delete {}", a.name), true))
                                } @else {
                                    span.muted { "you" }
                                }
                            }
                        }
                    }
                }
            }
        }
        nav.pager aria-label="Pages" {
            @if page.q("after").is_some() { a href=(link("/superuser", &[("tab", tab)])) { "First page" } }
            @if let Some(last) = rows.last().filter(|_| more) {
                a href=(link("/superuser", &[("tab", tab), ("after", &last.name)])) rel="next" { "Next page" }
            }
        }
        @if users {
            h2 { "Create a user" }
            form.stack method="post" action="/superuser/users" {
                (csrf)
                label for="new-username" { "Username" }
                input #new-username name="username" required autocomplete="off";
                label for="new-email" { "Email (optional)" }
                input #new-email name="email" type="email" autocomplete="off";
                label for="new-password" { "Password" }
                input #new-password name="password" type="password" minlength="8" required autocomplete="new-password";
                label { input type="checkbox" name="superuser" value="true"; " Superuser" }
                button.primary type="submit" { "Create user" }
            }
        }
    })
}

/// Every namespace's quota with its usage; set, change or remove one.
async fn quotas(st: &AppState, page: &Page, actor: &Actor) -> Result<Markup, Error> {
    let (rows, editable) = Quotas::new(&st.registry, &st.auth).all(actor).await?;
    let sys = st.registry.config.quota.system_reject_bytes;
    Ok(html! {
        @if !editable {
            p.notice { "Quotas are read-only here: set FEATURE_QUOTA_MANAGEMENT and FEATURE_EDIT_QUOTA to true to change them." }
        }
        @if sys > 0 {
            p { "Namespaces without a quota of their own get the registry's default, " strong { (size(sys)) } " (DEFAULT_SYSTEM_REJECT_QUOTA_BYTES)." }
        }
        @if rows.is_empty() {
            p.empty { "No namespace has a quota of its own." }
        } @else {
            table.list {
                caption.visually-hidden { "Quotas" }
                thead { tr {
                    th scope="col" { "Namespace" } th scope="col" { "Used" } th scope="col" { "Quota" }
                    th scope="col" { "Thresholds" }
                    @if editable { th scope="col" { "Actions" } }
                } }
                tbody {
                    @for (ns, q) in &rows {
                        @let id = q.id.unwrap_or_default().to_string();
                        @let base = format!("/superuser/quotas/{}/{id}", url_encode(ns));
                        tr {
                            th scope="row" { (ns) }
                            td {
                                meter min="0" max=(q.limit_bytes) value=(q.usage_bytes.min(q.limit_bytes)) high=(q.limit_bytes * 8 / 10) optimum="0" aria-label={ "Usage of " (ns) } {}
                                " " (size(q.usage_bytes))
                            }
                            td { (size(q.limit_bytes)) }
                            td { @for (i, l) in q.limits.iter().enumerate() { @if i > 0 { ", " } (l.kind) " at " (l.percent) " %" } }
                            @if editable {
                                td {
                                    form.inline method="post" action=(base) {
                                        input type="hidden" name="csrf" value=(page.csrf);
                                        label.visually-hidden for={ "quota-" (ns) } { "New quota of " (ns) }
                                        input id={ "quota-" (ns) } name="limit" required placeholder="10 GiB" size="8";
                                        " " button type="submit" { "Change quota of " (ns) }
                                    }
                                    " " (post_button(page, &format!("{base}/delete"), &format!("Remove quota of {ns}"), &[], true))
                                }
                            }
                        }
                    }
                }
            }
        }
        @if editable {
            h2 { "Set a quota" }
            form.stack method="post" action="/superuser/quotas" {
                input type="hidden" name="csrf" value=(page.csrf);
                label for="quota-namespace" { "Organization or user" }
                input #quota-namespace name="namespace" required autocomplete="off";
                label for="quota-limit" { "Quota (such as 500 MiB or 10 GiB)" }
                input #quota-limit name="limit" required;
                button.primary type="submit" { "Set quota" }
            }
        }
    })
}

async fn storage(st: &AppState, page: &Page, actor: &Actor) -> Result<Markup, Error> {
    let (totals, queue) = st.registry.gc_overview(actor).await?;
    let (db, store) = (
        st.registry.check_database().await,
        st.registry.check_storage().await,
    );
    let health = |r: &Result<(), berth_core::Error>| match r {
        Ok(()) => html! { span.yes { "ok" } },
        Err(e) => html! { span.error { (e.to_string()) } },
    };
    Ok(html! {
        h2 { "Service health" }
        dl.facts {
            dt { "Database" } dd { (health(&db)) }
            dt { "Storage" } dd { (health(&store)) }
            dt { "State" } dd { @if st.readonly { "read-only" } @else { "normal" } }
        }
        h2 { "Garbage collection" }
        dl.facts {
            dt { "Runs" } dd { (totals.runs) }
            dt { "Last run" } dd { @if let Some(t) = totals.last_run_at { time datetime=(iso(t)) { (ago(t)) } } @else { "never" } }
            dt { "Blobs waiting to be swept" } dd { (queue) }
            dt { "Bytes freed" } dd { (size(totals.bytes_freed)) }
            dt { "Blobs deleted" } dd { (totals.blobs_deleted) }
            dt { "Manifests deleted" } dd { (totals.manifests_deleted) }
            dt { "Expired tags purged" } dd { (totals.tags_purged) }
            dt { "Abandoned uploads removed" } dd { (totals.uploads_removed) }
        }
        (post_button(page, "/superuser/gc", "Run garbage collection now", &[], false))
        p.muted { "Collection runs online: pushes and pulls go on meanwhile. Only what no tag (or time-machine window) keeps is removed." }
    })
}

/// `POST /superuser/users`, `/superuser/users/{name}/{enable|disable|unlock|delete}`,
/// `/superuser/organizations/{name}/delete` and `/superuser/gc`.
pub async fn action(
    State(st): State<Arc<AppState>>,
    Path(path): Path<String>,
    req: Request,
) -> Response {
    let page = Page::of(&st, &req).await;
    let (f, actor) = match super::signed_in_form(&st, &page, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let parts: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let users = link("/superuser", &[("tab", "users")]);
    let quotas_tab = link("/superuser", &[("tab", "quotas")]);
    let caller = Caller::new(actor, page.ip.as_deref());
    let limit = |f: &std::collections::HashMap<String, String>| QuotaSize {
        limit_bytes: None,
        limit: field(f, "limit").map(str::to_string),
    };
    let changes = |enabled: bool| UserChanges {
        enabled: Some(enabled),
        ..UserChanges::default()
    };
    let done = match parts.as_slice() {
        ["users"] => st
            .auth
            .create_user_as(
                actor,
                field(&f, "username").unwrap_or(""),
                f.get("password").map(String::as_str).unwrap_or(""),
                field(&f, "email"),
                field(&f, "superuser") == Some("true"),
            )
            .await
            .map(|_| users),
        ["users", name, "disable"] => st
            .auth
            .update_user(actor, name, &changes(false))
            .await
            .map(|_| users),
        ["users", name, "enable"] => st
            .auth
            .update_user(actor, name, &changes(true))
            .await
            .map(|_| users),
        ["users", name, "password"] => st
            .auth
            .update_user(
                actor,
                name,
                &UserChanges {
                    password: f.get("password").map(String::as_str),
                    ..UserChanges::default()
                },
            )
            .await
            .map(|_| users),
        ["users", name, "unlock"] => st.auth.reset_login(Some(actor), name).await.map(|_| users),
        ["users", name, "delete"] => st.auth.delete_user(actor, name).await.map(|_| users),
        ["organizations", name, "takeownership"] => st
            .auth
            .take_ownership(actor, name)
            .await
            .map(|_| format!("/organization/{}", url_encode(name))),
        ["organizations", name, "delete"] => st
            .auth
            .delete_org(actor, name)
            .await
            .map(|_| link("/superuser", &[("tab", "organizations")])),
        ["quotas"] => {
            let ns = field(&f, "namespace").unwrap_or("");
            Quotas::new(&st.registry, &st.auth)
                .create(caller, &QuotaPath::Superuser(ns), &limit(&f))
                .await
                .map(|_| quotas_tab.clone())
        }
        ["quotas", ns, id] => Quotas::new(&st.registry, &st.auth)
            .update(caller, &QuotaPath::Superuser(ns), id, &limit(&f))
            .await
            .map(|_| quotas_tab.clone()),
        ["quotas", ns, id, "delete"] => Quotas::new(&st.registry, &st.auth)
            .delete(caller, &QuotaPath::Superuser(ns), id)
            .await
            .map(|_| quotas_tab.clone()),
        ["gc"] => st
            .registry
            .collect_now(caller)
            .await
            .map(|_| link("/superuser", &[("tab", "storage")])),
        _ => Err(Error::not_found("no such action")),
    };
    page.after(done)
}
