//! The superuser panel (`/superuser?tab=users|organizations|logs|storage`): users (create,
//! disable and enable, unlock, delete), organizations (delete), the registry-wide log, storage
//! and garbage collection with "run now", and service health. Each door checks that the
//! caller is a superuser.

use super::{Crumb, Page, ago, field, iso, link, size, url_encode};
use crate::AppState;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use berth_core::auth::accounts::UserChanges;
use berth_core::auth::views::LogScope;
use berth_core::auth::{AccountKind, Actor};
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
        _ => accounts(st, page, actor, AccountKind::User).await?,
    };
    let tabs = [
        ("users", "Users"),
        ("organizations", "Organizations"),
        ("logs", "Logs"),
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
    let button = |path: String, label: String, danger: bool| {
        html! {
            form.inline method="post" action=(path) {
                (csrf)
                @if danger { button.danger type="submit" { (label) } } @else { button type="submit" { (label) } }
            }
        }
    };
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
                                    (button(format!("{base}/delete"), format!("Delete {}", a.name), true))
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
        form.inline method="post" action="/superuser/gc" {
            input type="hidden" name="csrf" value=(page.csrf);
            button type="submit" { "Run garbage collection now" }
        }
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
        ["organizations", name, "delete"] => st
            .auth
            .delete_org(actor, name)
            .await
            .map(|_| link("/superuser", &[("tab", "organizations")])),
        ["gc"] => st
            .registry
            .collect_now(Caller::new(actor, page.ip.as_deref()))
            .await
            .map(|_| link("/superuser", &[("tab", "storage")])),
        _ => Err(Error::not_found("no such action")),
    };
    page.after(done)
}
