//! A user's page (`/user/{name}`, Quay's address): their repositories for anyone who may see
//! them, and for the user themself the account settings (`?tab=settings`: email, password,
//! app-specific tokens with the `podman login` line that uses one).

use super::{Crumb, Page, ago, field, iso, link, url_encode};
use crate::AppState;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use berth_core::Error;
use berth_core::auth::Actor;
use berth_core::auth::accounts::UserChanges;
use berth_core::auth::views::{Listing, LogScope};
use maud::{Markup, html};
use std::sync::Arc;

fn crumbs(name: &str) -> Vec<Crumb> {
    vec![Crumb::new(name, format!("/user/{name}"))]
}

/// The signed-in caller, if the page is theirs.
fn own<'p>(page: &'p Page, name: &str) -> Option<&'p Actor> {
    page.actor.as_ref().filter(|a| a.name == name)
}

/// `/user/{name}` and `/user/{name}/tokens/{uuid}`.
pub async fn user(
    State(st): State<Arc<AppState>>,
    Path(path): Path<String>,
    req: Request,
) -> Response {
    let page = Page::of(&st, &req).await;
    let parts: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let r = match parts.as_slice() {
        [name] => user_page(&st, &page, name).await,
        [name, "tokens", uuid] => token_page(&st, &page, name, uuid).await,
        _ => Err(Error::not_found("no such page")),
    };
    r.unwrap_or_else(|e| page.error(e))
}

async fn user_page(st: &AppState, page: &Page, name: &str) -> Result<Response, Error> {
    let me = own(page, name);
    let tab = match page.q("tab") {
        Some("settings") if me.is_some() => "settings",
        Some("logs") if me.is_some() => "logs",
        Some("notifications") if me.is_some() => "notifications",
        _ => "repos",
    };
    if tab == "logs"
        && let Some(r) = super::logs::export(st, page, LogScope::User).await
    {
        return Ok(r);
    }
    let body = match (tab, me) {
        ("settings", Some(actor)) => settings(st, page, actor).await?,
        ("notifications", Some(_)) => super::notifications::inbox(st, page, name).await?,
        ("logs", Some(_)) => {
            let base = format!("/user/{name}");
            super::logs::section(st, page, LogScope::User, &base, &[("tab", "logs")]).await?
        }
        _ => repos(st, page, name).await?,
    };
    let mut tabs = vec![("repos", "Repositories")];
    if me.is_some() {
        tabs.push(("notifications", "Notifications"));
        tabs.push(("logs", "Logs"));
        tabs.push(("settings", "Account settings"));
    }
    Ok(page.render(
        StatusCode::OK,
        name,
        &crumbs(name),
        html! {
            h1 { (name) }
            (super::tabs(&format!("/user/{name}"), "User", &tabs, tab))
            (body)
        },
    ))
}

async fn repos(st: &AppState, page: &Page, name: &str) -> Result<Markup, Error> {
    let listing = Listing {
        namespace: Some(name),
        public: true,
        everything: false,
        contains: None,
        ..Listing::default()
    };
    let repos = st
        .auth
        .readable_repos(page.actor.as_ref(), &listing, page.q("after"), 51)
        .await?;
    let next = (repos.len() > 50).then(|| repos[49].name.clone());
    Ok(html! {
        @if repos.is_empty() {
            p.empty { "No repositories you may see." }
        } @else {
            ul.plain {
                @for r in repos.iter().take(50) {
                    li { a href={ "/repository/" (r.name) } { (r.name) } " " (if r.is_public() { "public" } else { "private" }) }
                }
            }
        }
        nav.pager aria-label="Pages" {
            @if let Some(n) = &next { a href=(link(&format!("/user/{name}"), &[("after", n)])) rel="next" { "Next page" } }
        }
    })
}

async fn settings(st: &AppState, page: &Page, actor: &Actor) -> Result<Markup, Error> {
    let me = st
        .auth
        .account_by_id(actor.id)
        .await?
        .ok_or_else(|| Error::Unauthenticated("your account no longer exists".into()))?;
    let tokens = st.auth.app_tokens(actor).await?;
    let orgs = st.auth.memberships(actor.id).await?;
    let base = format!("/user/{}", actor.name);
    let csrf = html! { input type="hidden" name="csrf" value=(page.csrf); };
    Ok(html! {
        section #settings {
            h2 { "Profile" }
            dl.facts {
                dt { "Username" } dd { (me.name) @if actor.superuser { " " span.badge { "superuser" } } }
                dt { "Email" } dd { (me.email.as_deref().unwrap_or("none")) }
                dt { "Created" } dd { time datetime=(iso(me.created_at)) { (ago(me.created_at)) } }
                dt { "Organizations" } dd {
                    @if orgs.is_empty() { span.muted { "none" } }
                    @for (i, (o, _)) in orgs.iter().enumerate() {
                        @if i > 0 { ", " }
                        a href={ "/organization/" (o) } { (o) }
                    }
                }
            }
            form.stack method="post" action={ (base) "/email" } {
                (csrf)
                label for="email" { "Email" }
                input #email type="email" name="email" value=[me.email.as_deref()] required;
                button type="submit" { "Change email" }
            }

            h2 { "Password" }
            @if me.has_password {
                form.stack method="post" action={ (base) "/password" } {
                    (csrf)
                    label for="current-password" { "Current password" }
                    input #current-password type="password" name="current" autocomplete="current-password" required;
                    label for="new-password" { "New password" }
                    input #new-password type="password" name="password" autocomplete="new-password" minlength="8" required aria-describedby="new-password-hint";
                    small #new-password-hint.muted { "At least 8 characters." }
                    label for="confirm-password" { "New password again" }
                    input #confirm-password type="password" name="confirm" autocomplete="new-password" minlength="8" required;
                    button type="submit" { "Change password" }
                }
            } @else {
                p { "This account signs in through LDAP or an OIDC provider: its password is changed there." }
            }

            h2 #tokens-heading { "App-specific tokens" }
            p.muted { "A token signs in clients (" code { "podman login" } ", CI) in place of your password, and can be revoked on its own." }
            @if tokens.is_empty() {
                p.empty { "No tokens yet." }
            } @else {
                table.list aria-labelledby="tokens-heading" {
                    thead { tr { th scope="col" { "Title" } th scope="col" { "Created" } th scope="col" { "Last used" } th scope="col" { "Expires" } th scope="col" { "Revoke" } } }
                    tbody {
                        @for t in &tokens {
                            tr {
                                th scope="row" { a href={ (base) "/tokens/" (url_encode(&t.uuid)) } { (t.title) } }
                                td { time datetime=(iso(t.created_at)) { (ago(t.created_at)) } }
                                td { @if let Some(l) = t.last_accessed { (ago(l)) } @else { span.muted { "never" } } }
                                td { @if let Some(e) = t.expires_at { time datetime=(iso(e)) { (iso(e)) } } @else { span.muted { "never" } } }
                                td {
                                    form.inline method="post" action={ (base) "/tokens/" (url_encode(&t.uuid)) "/revoke" } {
                                        (csrf)
                                        button.danger type="submit" { "Revoke " (t.title) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            form.stack method="post" action={ (base) "/tokens" } {
                (csrf)
                label for="token-title" { "Title of a new token" }
                input #token-title name="title" required maxlength="255";
                button.primary type="submit" { "Create token" }
            }
        }
    })
}

/// One app-specific token with its secret and the login line that uses it (Quay shows the
/// secret to its owner again).
async fn token_page(st: &AppState, page: &Page, name: &str, uuid: &str) -> Result<Response, Error> {
    let actor = own(page, name)
        .ok_or_else(|| Error::not_found("no such token: tokens are shown only to their owner"))?;
    let (t, secret) = st.auth.app_token(actor, uuid).await?;
    let tls = if page.plain_http {
        " --tls-verify=false"
    } else {
        ""
    };
    let mut crumbs = crumbs(name);
    crumbs.push(Crumb::new(
        "Account settings",
        link(&format!("/user/{name}"), &[("tab", "settings")]),
    ));
    crumbs.push(Crumb::new(t.title.clone(), ""));
    Ok(page.render(
        StatusCode::OK,
        &t.title,
        &crumbs,
        html! {
            h1 { "Token " (t.title) }
            @if let Some(secret) = secret {
                @let login = format!("podman login{tls} -u '{name}' -p '{secret}' {}", page.host);
                p.notice { "Anyone who has this token can act as you until it is revoked." }
                p { code #app-token { (secret) } " " button.copy type="button" data-copy=(secret) hidden { "Copy token" } }
                h2 { "Log in with it" }
                dl.commands {
                    dt { "podman" } dd { code tabindex="0" { (login) } button.copy type="button" data-copy=(login) hidden { "Copy" } }
                }
            } @else {
                p.error role="alert" { "This token can no longer be read (the database secret changed): revoke it and create another." }
            }
            p { "Created " (ago(t.created_at)) "." }
        },
    ))
}

/// `POST /user/{name}/email`, `…/password`, `…/tokens` and `…/tokens/{uuid}/revoke`: the
/// user's own settings only.
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
    let Some(name) = parts.first().copied().filter(|n| *n == actor.name) else {
        return page.error(Error::denied("you may change only your own account"));
    };
    let back = link(&format!("/user/{name}"), &[("tab", "settings")]);
    let done = match &parts[1..] {
        ["notifications", uuid, "dismiss"] => {
            berth_core::notify::Notifications::new(&st.registry, &st.auth)
                .dismiss(actor, uuid, true)
                .await
                .map(|_| link(&format!("/user/{name}"), &[("tab", "notifications")]))
        }
        ["email"] => st
            .auth
            .update_user(
                actor,
                name,
                &UserChanges {
                    email: field(&f, "email"),
                    ..UserChanges::default()
                },
            )
            .await
            .map(|_| back),
        ["password"] => {
            let new = f.get("password").map(String::as_str).unwrap_or("");
            if Some(new) != f.get("confirm").map(String::as_str) {
                Err(Error::invalid(
                    "the new password and its repetition differ: nothing was changed",
                ))
            } else {
                let current = f.get("current").map(String::as_str).unwrap_or("");
                st.auth
                    .change_own_password(actor, current, new, page.ip.as_deref())
                    .await
                    .map(|_| back)
            }
        }
        ["tokens"] => st
            .auth
            .create_app_token(actor, field(&f, "title").unwrap_or(""))
            .await
            .map(|t| format!("/user/{name}/tokens/{}", url_encode(&t.row.uuid))),
        ["tokens", uuid, "revoke"] => st.auth.delete_app_token(actor, uuid).await.map(|_| back),
        _ => Err(Error::not_found("no such action")),
    };
    page.after(done)
}
