//! Organizations: the caller's list with a create form (`/organization`), an organization
//! (`/organization/{org}?tab=repos|teams|robots`), a team (`/organization/{org}/teams/{team}`)
//! and a robot's credentials (`/organization/{org}/robots/{robot}`).

use super::{Crumb, Page, field, link, post_button, see_other, size, url_encode};
use crate::AppState;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine;
use berth_core::Error;
use berth_core::auth::Actor;
use berth_core::auth::apps::AppFields;
use berth_core::auth::views::{Listing, LogScope, TeamSync};
use berth_core::policies::Level;
use berth_core::quotas::{NamespaceQuota, QuotaPath, Quotas};
use maud::{Markup, html};
use std::collections::BTreeSet;
use std::sync::Arc;

fn need_actor(page: &Page) -> Result<&Actor, Error> {
    page.actor
        .as_ref()
        .ok_or_else(|| Error::Unauthenticated("sign in to see organizations".into()))
}

pub async fn list(State(st): State<Arc<AppState>>, req: Request) -> Response {
    let page = Page::of(&st, &req).await;
    let actor = match need_actor(&page) {
        Ok(a) => a,
        Err(e) => return page.error(e),
    };
    let orgs: BTreeSet<String> = match st.auth.memberships(actor.id).await {
        Ok(m) => m.into_iter().map(|(org, _)| org).collect(),
        Err(e) => return page.error(e),
    };
    page.render(
        StatusCode::OK,
        "Organizations",
        &[Crumb::new("Organizations", "/organization")],
        html! {
            h1 { "Organizations" }
            @if orgs.is_empty() {
                p.empty { "You are not in any organization yet." }
            } @else {
                ul.plain {
                    @for o in &orgs { li { a href={ "/organization/" (o) } { (o) } } }
                }
            }
            h2 { "Create an organization" }
            (create_org_form(&page, None))
        },
    )
}

fn create_org_form(page: &Page, name: Option<&str>) -> Markup {
    html! {
        form.stack method="post" action="/organization" {
            input type="hidden" name="csrf" value=(page.csrf);
            label for="org-name" { "Name" }
            input #org-name name="name" required pattern="[a-z0-9][a-z0-9_.-]{1,254}" value=[name]
                aria-describedby="org-name-hint";
            small #org-name-hint.muted { "Lowercase letters, digits, '.', '_' and '-'; it becomes the namespace of its repositories." }
            label for="org-email" { "Email (optional)" }
            input #org-email name="email" type="email";
            button.primary type="submit" { "Create organization" }
        }
    }
}

pub async fn create(State(st): State<Arc<AppState>>, req: Request) -> Response {
    let page = Page::of(&st, &req).await;
    let (f, actor) = match super::signed_in_form(&st, &page, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let name = field(&f, "name").unwrap_or("");
    match st.auth.create_org(actor, name, field(&f, "email")).await {
        Ok(o) => see_other(&format!("/organization/{}", o.name), &[]),
        Err(e) => page.error(e),
    }
}

/// `/organization/{org}` and its sub-pages.
pub async fn organization(
    State(st): State<Arc<AppState>>,
    Path(path): Path<String>,
    req: Request,
) -> Response {
    let page = Page::of(&st, &req).await;
    let parts: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let r = match parts.as_slice() {
        [org] => org_page(&st, &page, org).await,
        [org, "teams", team] => team_page(&st, &page, org, team).await,
        [org, "robots", robot] => robot_page(&st, &page, org, robot).await,
        [org, "applications", client_id] => application_page(&st, &page, org, client_id).await,
        [org, "notification", uuid] => {
            let at = berth_core::notify::Scope::Organization(org);
            Ok(super::notifications::page_of(&st, &page, &at, uuid, None).await)
        }
        _ => Err(Error::not_found("no such page")),
    };
    r.unwrap_or_else(|e| page.error(e))
}

fn org_crumbs(org: &str) -> Vec<Crumb> {
    vec![
        Crumb::new("Organizations", "/organization"),
        Crumb::new(org, format!("/organization/{org}")),
    ]
}

/// Whether organization mirrors are on (they need repository mirroring too).
fn org_mirroring(st: &AppState) -> bool {
    let m = &st.registry.config.mirror;
    m.enabled && m.org_enabled
}

async fn org_page(st: &AppState, page: &Page, org: &str) -> Result<Response, Error> {
    let actor = need_actor(page)?;
    let view = st.auth.organization(actor, org).await?;
    let admin = view.role.admin;
    let tab = match page.q("tab") {
        Some("teams") => "teams",
        Some("robots") if admin => "robots",
        Some("logs") if admin => "logs",
        Some("policies") if admin => "policies",
        Some("settings") if admin => "settings",
        Some("applications") if admin => "applications",
        Some("cache") if admin && st.registry.config.proxy.enabled => "cache",
        Some("mirror") if admin && org_mirroring(st) => "mirror",
        _ => "repos",
    };
    if tab == "policies"
        && let Some(r) = super::policies::fragment(st, page, &Level::Organization(org)).await
    {
        return Ok(r);
    }
    if tab == "logs"
        && let Some(r) = super::logs::export(st, page, LogScope::Organization(org)).await
    {
        return Ok(r);
    }
    let body = match tab {
        "applications" => applications(st, page, actor, org).await?,
        "cache" => super::cache::section(st, page, org).await?,
        "mirror" => super::org_mirror::section(st, page, org).await?,
        "settings" => org_settings(st, page, actor, org, view.org.email.as_deref()).await?,
        "policies" => {
            let base = format!("/organization/{org}");
            super::policies::section(
                st,
                page,
                &Level::Organization(org),
                &base,
                &format!("{base}/policies"),
            )
            .await?
        }
        "logs" => {
            let base = format!("/organization/{org}");
            super::logs::section(
                st,
                page,
                LogScope::Organization(org),
                &base,
                &[("tab", "logs")],
            )
            .await?
        }
        "teams" => html! {
            table.list {
                caption.visually-hidden { "Teams" }
                thead { tr { th scope="col" { "Team" } th scope="col" { "Role" } th scope="col" { "Members" } th scope="col" { "Repositories" } th scope="col" { "Synced with" } } }
                tbody {
                    @for t in &view.teams {
                        tr {
                            th scope="row" { a href={ "/organization/" (org) "/teams/" (url_encode(&t.name)) } { (t.name) } }
                            td { (t.role) }
                            td { (t.member_count) }
                            td { (t.repo_count) }
                            td { @if let (Some(s), Some(g)) = (&t.sync_service, &t.sync_group) { (s) ": " (g) } @else { span.muted { "—" } } }
                        }
                    }
                }
            }
            @if admin {
                h2 { "Create a team" }
                form.stack method="post" action={ "/organization/" (org) "/teams" } {
                    input type="hidden" name="csrf" value=(page.csrf);
                    label for="team-name" { "Name" }
                    input #team-name name="name" required;
                    label for="team-role" { "Role" }
                    select #team-role name="role" {
                        option value="member" { "Member: reads what the team is given" }
                        option value="creator" { "Creator: also creates repositories" }
                        option value="admin" { "Admin: administers the organization" }
                    }
                    label for="team-description" { "Description (optional)" }
                    input #team-description name="description";
                    button.primary type="submit" { "Create team" }
                }
            }
        },
        "robots" => {
            let robots = st.auth.robots_in(actor, org, false).await?;
            html! {
                @if robots.is_empty() {
                    p.empty { "No robot accounts yet. A robot pushes and pulls for CI with a token instead of a person's password." }
                } @else {
                    table.list {
                        caption.visually-hidden { "Robot accounts" }
                        thead { tr { th scope="col" { "Robot" } th scope="col" { "Description" } th scope="col" { "Created" } } }
                        tbody {
                            @for (r, _) in &robots {
                                tr {
                                    th scope="row" { a href={ "/organization/" (org) "/robots/" (url_encode(r.name.split_once('+').map(|x| x.1).unwrap_or(&r.name))) } { (r.name) } }
                                    td.muted { (r.description.as_deref().unwrap_or("")) }
                                    td { (super::ago(r.created_at)) }
                                }
                            }
                        }
                    }
                }
                h2 { "Create a robot account" }
                form.stack method="post" action={ "/organization/" (org) "/robots" } {
                    input type="hidden" name="csrf" value=(page.csrf);
                    label for="robot-name" { "Name (after " (org) "+)" }
                    input #robot-name name="name" required pattern="[a-z][a-z0-9_]{1,254}";
                    label for="robot-description" { "Description (optional)" }
                    input #robot-description name="description";
                    button.primary type="submit" { "Create robot account" }
                }
            }
        }
        _ => {
            let listing = Listing {
                namespace: Some(org),
                public: true,
                everything: false,
                contains: page.q("filter"),
                ..Listing::default()
            };
            let repos = st
                .auth
                .readable_repos(Some(actor), &listing, page.q("after"), 51)
                .await?;
            let next = (repos.len() > 50).then(|| repos[49].name.clone());
            let quota = Quotas::new(&st.registry, &st.auth)
                .list(actor, &QuotaPath::Namespace(org))
                .await
                .ok()
                .and_then(|q| q.into_iter().next());
            html! {
                @if let Some(q) = &quota { (quota_bar(q)) }
                @if repos.is_empty() {
                    p.empty { "No repositories yet. Push one with " code { "podman push " (page.host) "/" (org) "/NAME:TAG" } "." }
                } @else {
                    ul.plain {
                        @for r in repos.iter().take(50) {
                            li { a href={ "/repository/" (r.name) } { (r.name) } " " (if r.is_public() { "public" } else { "private" }) }
                        }
                    }
                }
                nav.pager aria-label="Pages" {
                    @if let Some(n) = &next { a href=(link(&format!("/organization/{org}"), &[("after", n)])) rel="next" { "Next page" } }
                }
            }
        }
    };
    let mut tabs = vec![("repos", "Repositories"), ("teams", "Teams")];
    if admin {
        tabs.push(("robots", "Robot accounts"));
        tabs.push(("logs", "Logs"));
        tabs.push(("policies", "Policies"));
        tabs.push(("applications", "Applications"));
        if st.registry.config.proxy.enabled {
            tabs.push(("cache", "Cache"));
        }
        if org_mirroring(st) {
            tabs.push(("mirror", "Mirror"));
        }
        tabs.push(("settings", "Settings"));
    }
    Ok(page.render(
        StatusCode::OK,
        org,
        &org_crumbs(org),
        html! {
            h1 { (org) @if admin { " " span.badge { "admin" } } }
            (super::tabs(&format!("/organization/{org}"), "Organization", &tabs, tab))
            (body)
        },
    ))
}

/// How much of its quota a namespace uses, as a meter.
fn quota_bar(q: &NamespaceQuota) -> Markup {
    let pct = if q.limit_bytes > 0 {
        (q.usage_bytes as f64 * 100.0 / q.limit_bytes as f64).min(999.0)
    } else {
        0.0
    };
    html! {
        div.quota {
            label for="quota-meter" {
                "Storage: " strong { (size(q.usage_bytes)) } " of " (size(q.limit_bytes))
                " (" (format!("{pct:.0}")) " %)" @if q.is_default { " — the registry's default quota" }
            }
            meter #quota-meter min="0" max=(q.limit_bytes) value=(q.usage_bytes.min(q.limit_bytes)) high=(q.limit_bytes * 8 / 10) optimum="0" {
                (format!("{pct:.0} %"))
            }
        }
    }
}

/// An organization's settings: email and time-machine window, default permissions, quota.
async fn org_settings(
    st: &AppState,
    page: &Page,
    actor: &Actor,
    org: &str,
    email: Option<&str>,
) -> Result<Markup, Error> {
    let perms = st.auth.default_permissions(actor, org).await?;
    let window = st.auth.namespace_tag_window(org).await?;
    let options = st.auth.config.tag_expiration_options.clone();
    let quota = Quotas::new(&st.registry, &st.auth)
        .list(actor, &QuotaPath::Namespace(org))
        .await?
        .into_iter()
        .next();
    // Quota notifications, when FEATURE_QUOTA_NOTIFICATIONS is on.
    let notes = if st.registry.config.notify.quota_notifications {
        Some(
            super::notifications::section(st, page, &berth_core::notify::Scope::Organization(org))
                .await?,
        )
    } else {
        None
    };
    let base = format!("/organization/{org}/settings");
    let csrf = html! { input type="hidden" name="csrf" value=(page.csrf); };
    let who = |w: &Option<(String, berth_core::auth::GranteeKind)>| match w {
        Some((n, k)) => format!("{n} ({})", k.as_str()),
        None => "anyone".to_string(),
    };
    Ok(html! {
        section #org-settings {
            h2 { "Organization" }
            form.stack method="post" action={ (base) "/general" } {
                (csrf)
                label for="org-email-edit" { "Email" }
                input #org-email-edit name="email" type="email" value=[email];
                label for="org-window" { "Time-machine window (how long deleted tags stay restorable)" }
                select #org-window name="tag_expiration_s" {
                    @for o in &options {
                        option value=(o) selected[window.unwrap_or(st.registry.config.gc.default_window_s) == *o] {
                            @if *o == 0 { "none: deleted tags go at once" } @else {
                                (humantime::format_duration(std::time::Duration::from_secs((*o).max(0) as u64)))
                            }
                        }
                    }
                }
                button type="submit" { "Save" }
            }

            h2 #defaults-heading { "Default permissions" }
            p.muted { "Given to every repository created in " (org) " (by the creator named, or anyone)." }
            @if perms.is_empty() {
                p.empty { "None." }
            } @else {
                table.list aria-labelledby="defaults-heading" {
                    thead { tr { th scope="col" { "When created by" } th scope="col" { "Give" } th scope="col" { "Role" } th scope="col" { "Remove" } } }
                    tbody {
                        @for p in &perms {
                            tr {
                                td { (who(&p.activating)) }
                                th scope="row" { (who(&p.delegate)) }
                                td { (p.perm.role.as_str()) }
                                td {
                                    form.inline method="post" action={ (base) "/defaults/" (p.perm.uuid) "/delete" } {
                                        (csrf)
                                        button.danger type="submit" { "Remove default for " (who(&p.delegate)) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            form.stack method="post" action={ (base) "/defaults" } {
                (csrf)
                label for="default-kind" { "Give to a" }
                select #default-kind name="kind" {
                    option value="team" { "team" }
                    option value="user" { "user or robot" }
                }
                label for="default-name" { "Its name" }
                input #default-name name="name" required;
                label for="default-role" { "Role" }
                select #default-role name="role" {
                    option value="read" { "read" } option value="write" { "write" } option value="admin" { "admin" }
                }
                label for="default-creator" { "Only when this user creates the repository (optional)" }
                input #default-creator name="creator";
                button.primary type="submit" { "Add default permission" }
            }

            h2 { "Quota" }
            @if let Some(q) = &quota {
                (quota_bar(q))
                ul.plain {
                    @for l in &q.limits { li { (l.kind.as_str()) " at " (l.percent) " %" } }
                }
            } @else {
                p.empty { "No quota: " (org) " may use any amount of storage. A superuser sets one through the API (" code { "POST /api/v1/organization/" (org) "/quota" } ")." }
            }
            @if let Some(n) = notes { (n) }
        }
    })
}

/// An organization's OAuth applications: the list with a create form.
async fn applications(
    st: &AppState,
    page: &Page,
    actor: &Actor,
    org: &str,
) -> Result<Markup, Error> {
    let apps = st.auth.oauth_apps(actor, org).await?;
    Ok(html! {
        @if apps.is_empty() {
            p.empty { "No OAuth applications. An application lets another service act on " (org) "'s behalf through the API with a token it is given." }
        } @else {
            table.list {
                caption.visually-hidden { "OAuth applications" }
                thead { tr { th scope="col" { "Application" } th scope="col" { "Client ID" } th scope="col" { "Redirect URI" } th scope="col" { "Created" } } }
                tbody {
                    @for a in &apps {
                        tr {
                            th scope="row" { a href={ "/organization/" (org) "/applications/" (url_encode(&a.client_id)) } { (a.name) } }
                            td { code { (a.client_id) } }
                            td { (a.redirect_uri) }
                            td { (super::ago(a.created_at)) }
                        }
                    }
                }
            }
        }
        h2 { "Create an application" }
        form.stack method="post" action={ "/organization/" (org) "/applications" } {
            input type="hidden" name="csrf" value=(page.csrf);
            label for="app-name" { "Name" }
            input #app-name name="name" required;
            label for="app-uri" { "Application URI (optional)" }
            input #app-uri name="application_uri" type="url";
            label for="app-redirect" { "Redirect URI (optional)" }
            input #app-redirect name="redirect_uri" type="url";
            label for="app-description" { "Description (optional)" }
            input #app-description name="description";
            button.primary type="submit" { "Create application" }
        }
    })
}

/// One OAuth application: its client ID and secret (for the organization's administrators,
/// as Quay shows them), and deletion.
async fn application_page(
    st: &AppState,
    page: &Page,
    org: &str,
    client_id: &str,
) -> Result<Response, Error> {
    let actor = need_actor(page)?;
    let app = st.auth.oauth_app(actor, org, client_id).await?;
    let mut crumbs = org_crumbs(org);
    crumbs.push(Crumb::new(
        "Applications",
        link(&format!("/organization/{org}"), &[("tab", "applications")]),
    ));
    crumbs.push(Crumb::new(app.name.clone(), ""));
    Ok(page.render(
        StatusCode::OK,
        &app.name,
        &crumbs,
        html! {
            h1 { "Application " (app.name) }
            @if !app.description.is_empty() { p.muted { (app.description) } }
            dl.facts {
                dt { "Client ID" } dd { code { (app.client_id) } " " button.copy type="button" data-copy=(app.client_id) hidden { "Copy client ID" } }
                dt { "Client secret" } dd {
                    @if app.client_secret.is_empty() {
                        span.error { "cannot be read (the database secret changed): delete the application and create another" }
                    } @else {
                        code #app-secret { (app.client_secret) } " " button.copy type="button" data-copy=(app.client_secret) hidden { "Copy client secret" }
                    }
                }
                dt { "Application URI" } dd { (app.application_uri) }
                dt { "Redirect URI" } dd { (app.redirect_uri) }
                dt { "Created" } dd { (super::ago(app.created_at)) }
            }
            (post_button(page, &format!("/organization/{org}/applications/{}/delete", url_encode(&app.client_id)), "Delete application", &[], true))
        },
    ))
}

async fn team_page(st: &AppState, page: &Page, org: &str, team: &str) -> Result<Response, Error> {
    let actor = need_actor(page)?;
    let t = st.auth.team_members(actor, org, team).await?;
    let mut crumbs = org_crumbs(org);
    crumbs.push(Crumb::new(
        "Teams",
        link(&format!("/organization/{org}"), &[("tab", "teams")]),
    ));
    crumbs.push(Crumb::new(team, ""));
    Ok(page.render(
        StatusCode::OK,
        &format!("{org} / {team}"),
        &crumbs,
        html! {
            h1 { "Team " (team) }
            p { "Role in " (org) ": " strong { (t.team.role) } "." @if !t.team.description.is_empty() { " " (t.team.description) } }
            @if let (Some(svc), Some(group)) = (&t.team.sync_service, &t.team.sync_group) {
                p.notice { "Members follow the " (svc) " group " code { (group) } ": they are added and removed at each member's login, not here." }
            }
            h2 { "Members" }
            @if t.members.is_empty() {
                p.empty { "No members." }
            } @else {
                ul.plain {
                    @for m in &t.members {
                        li {
                            (m.name) @if m.kind == berth_core::auth::AccountKind::Robot { " " span.badge { "robot" } }
                            @if t.can_edit && t.team.sync_service.is_none() {
                                " " (post_button(page, &format!("/organization/{org}/teams/{}/members/{}/delete", url_encode(team), url_encode(&m.name)), &format!("Remove {}", m.name), &[], true))
                            }
                        }
                    }
                }
            }
            @if t.can_edit && t.team.sync_service.is_none() {
                form.stack method="post" action={ "/organization/" (org) "/teams/" (url_encode(team)) "/members" } {
                    input type="hidden" name="csrf" value=(page.csrf);
                    label for="member-name" { "Add a user or a robot (" (org) "+name)" }
                    input #member-name name="member" required;
                    button.primary type="submit" { "Add member" }
                }
            }
            @if t.can_edit {
                h2 { "Settings" }
                form.stack method="post" action={ "/organization/" (org) "/teams" } {
                    input type="hidden" name="csrf" value=(page.csrf);
                    input type="hidden" name="name" value=(team);
                    label for="team-role" { "Role" }
                    select #team-role name="role" {
                        @for r in ["member", "creator", "admin"] {
                            option value=(r) selected[t.team.role.to_string() == r] { (r) }
                        }
                    }
                    label for="team-description" { "Description" }
                    input #team-description name="description" value=(t.team.description);
                    button type="submit" { "Save team" }
                }
                @if actor.superuser && (st.auth.config.ldap.is_some() || !st.auth.config.oidc.is_empty()) {
                    h2 { "Directory sync" }
                    @if t.team.sync_service.is_some() {
                        (post_button(page, &format!("/organization/{org}/teams/{}/sync/off", url_encode(team)), "Stop syncing", &[], false))
                    } @else {
                        form.stack method="post" action={ "/organization/" (org) "/teams/" (url_encode(team)) "/sync" } {
                            input type="hidden" name="csrf" value=(page.csrf);
                            @if st.auth.config.ldap.is_some() {
                                label for="sync-group-dn" { "LDAP group DN (relative to LDAP_BASE_DN, or absolute)" }
                                input #sync-group-dn name="group_dn";
                            }
                            @if !st.auth.config.oidc.is_empty() {
                                label for="sync-group-name" { "or an OIDC groups-claim value" }
                                input #sync-group-name name="group_name";
                            }
                            button type="submit" { "Sync members from the directory" }
                        }
                    }
                }
                @if team != berth_core::auth::accounts::OWNERS_TEAM {
                    h2 { "Delete" }
                    (post_button(page, &format!("/organization/{org}/teams/{}/delete", url_encode(team)), &format!("Delete team {team}"), &[], true))
                }
            }
        },
    ))
}

/// The ways to use a robot's credentials: `podman login`, `docker login`, an `auth.json` and a
/// Kubernetes pull secret.
async fn robot_page(st: &AppState, page: &Page, org: &str, short: &str) -> Result<Response, Error> {
    let actor = need_actor(page)?;
    let (robot, token) = st.auth.robot(actor, org, short).await?;
    let perms = st.auth.account_permissions(&robot).await?;
    let host = &page.host;
    let tls = if page.plain_http {
        " --tls-verify=false"
    } else {
        ""
    };
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{}:{token}", robot.name));
    let auth_json = serde_json::to_string_pretty(&serde_json::json!({
        "auths": { host.as_str(): { "auth": auth } }
    }))
    .unwrap_or_default();
    let secret_name = format!("{}-pull-secret", robot.name.replace(['+', '_'], "-"));
    let k8s = format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {secret_name}\ntype: kubernetes.io/dockerconfigjson\ndata:\n  .dockerconfigjson: {}\n",
        base64::engine::general_purpose::STANDARD.encode(auth_json.as_bytes())
    );
    let podman = format!("podman login{tls} -u '{}' -p '{token}' {host}", robot.name);
    let docker = format!("docker login -u '{}' -p '{token}' {host}", robot.name);
    let mut crumbs = org_crumbs(org);
    crumbs.push(Crumb::new(
        "Robot accounts",
        link(&format!("/organization/{org}"), &[("tab", "robots")]),
    ));
    crumbs.push(Crumb::new(robot.name.clone(), ""));
    Ok(page.render(
        StatusCode::OK,
        &robot.name,
        &crumbs,
        html! {
            h1 { "Robot account " (robot.name) }
            @if let Some(d) = &robot.description { p.muted { (d) } }
            p.notice { "This page shows the robot's token: anyone who has it can act as the robot. Regenerate it from the API if it leaks." }
            h2 { "Token" }
            p { code #robot-token { (token) } " " button.copy type="button" data-copy=(token) hidden { "Copy token" } }
            h2 { "Log in" }
            dl.commands {
                dt { "podman" } dd { code tabindex="0" { (podman) } button.copy type="button" data-copy=(podman) hidden { "Copy" } }
                dt { "docker" } dd { code tabindex="0" { (docker) } button.copy type="button" data-copy=(docker) hidden { "Copy" } }
            }
            h2 { "auth.json" }
            p.muted { "For " code { "podman --authfile" } ", " code { "skopeo --authfile" } " or " code { "~/.docker/config.json" } "." }
            pre.cmd tabindex="0" { (auth_json) }
            h2 { "Kubernetes pull secret" }
            p.muted { "Save as " code { "secret.yml" } ", " code { "kubectl apply -f secret.yml" } ", and name it in " code { "imagePullSecrets" } "." }
            pre.cmd tabindex="0" { (k8s) }
            h2 #robot-perms { "Repository permissions" }
            @if perms.is_empty() {
                p.empty { "This robot has no permission on any repository yet." }
            } @else {
                table.list aria-labelledby="robot-perms" {
                    thead { tr { th scope="col" { "Repository" } th scope="col" { "Role" } } }
                    tbody { @for p in &perms { tr { th scope="row" { a href={ "/repository/" (p.repo) } { (p.repo) } } td { (p.role.as_str()) } } } }
                }
            }
            form.stack method="post" action={ "/organization/" (org) "/robots/" (url_encode(short)) "/permission" } {
                input type="hidden" name="csrf" value=(page.csrf);
                label for="robot-perm-repo" { "Repository (" (org) "/NAME)" }
                input #robot-perm-repo name="repository" required;
                label for="robot-perm-role" { "Role" }
                select #robot-perm-role name="role" {
                    option value="read" { "read" } option value="write" { "write" } option value="admin" { "admin" }
                }
                button type="submit" { "Give permission" }
            }
            h2 { "Regenerate the token" }
            p { "The current token stops working at once; clients logged in with it must log in again." }
            (post_button(page, &format!("/organization/{org}/robots/{}/regenerate", url_encode(short)), "Regenerate token", &[], true))
        },
    ))
}

/// `POST /organization/{org}/teams`, `…/robots` and `…/teams/{team}/members`.
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
    if let Some((org, what)) = path.split_once("/policies/") {
        let back = link(&format!("/organization/{org}"), &[("tab", "policies")]);
        let at = Level::Organization(org);
        if let Some(r) = super::policies::action(&st, &page, &at, what, &f, &back).await {
            return r;
        }
    }
    let parts: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    if let [org, "cache", verb] = parts.as_slice() {
        return super::cache::action(&st, &page, org, verb, &f).await;
    }
    if let [org, "mirror", verb] = parts.as_slice() {
        return super::org_mirror::action(&st, &page, org, verb, &f).await;
    }
    if let [org, first, ..] = parts.as_slice()
        && (*first == "notifications" || *first == "notification")
    {
        let at = berth_core::notify::Scope::Organization(org);
        let rest = &path[org.len() + 1..];
        return super::notifications::action(&st, &page, &at, rest.trim_end_matches('/'), &f).await;
    }
    let settings = |org: &str| link(&format!("/organization/{org}"), &[("tab", "settings")]);
    let done = match parts.as_slice() {
        [org, "settings", "general"] => {
            let window = match field(&f, "tag_expiration_s").map(str::parse::<i64>) {
                Some(Ok(s)) => Ok(Some(s)),
                Some(Err(_)) => Err(Error::invalid("the window is a number of seconds")),
                None => Ok(None),
            };
            match window {
                Ok(w) => st
                    .auth
                    .update_org(actor, org, field(&f, "email"), w)
                    .await
                    .map(|_| settings(org)),
                Err(e) => Err(e),
            }
        }
        [org, "settings", "defaults"] => st
            .auth
            .create_default_perm(
                actor,
                org,
                field(&f, "creator"),
                field(&f, "name").unwrap_or(""),
                field(&f, "kind") == Some("team"),
                field(&f, "role").unwrap_or("read"),
            )
            .await
            .map(|_| settings(org)),
        [org, "settings", "defaults", uuid, "delete"] => st
            .auth
            .delete_default_perm(actor, org, uuid)
            .await
            .map(|_| settings(org)),
        [org, "teams"] => {
            let name = field(&f, "name").unwrap_or("");
            st.auth
                .set_team(
                    actor,
                    org,
                    name,
                    field(&f, "role").unwrap_or("member"),
                    field(&f, "description"),
                )
                .await
                .map(|_| format!("/organization/{org}/teams/{}", url_encode(name)))
        }
        [org, "robots"] => {
            let name = field(&f, "name").unwrap_or("");
            st.auth
                .create_robot(actor, org, name, field(&f, "description"), None)
                .await
                .map(|_| format!("/organization/{org}/robots/{}", url_encode(name)))
        }
        [org, "applications"] => st
            .auth
            .create_oauth_app(
                actor,
                org,
                &AppFields {
                    name: field(&f, "name").unwrap_or(""),
                    description: field(&f, "description"),
                    application_uri: field(&f, "application_uri"),
                    redirect_uri: field(&f, "redirect_uri"),
                    avatar_email: None,
                },
            )
            .await
            .map(|a| {
                format!(
                    "/organization/{org}/applications/{}",
                    url_encode(&a.client_id)
                )
            }),
        [org, "applications", client_id, "delete"] => st
            .auth
            .delete_oauth_app(actor, org, client_id)
            .await
            .map(|_| link(&format!("/organization/{org}"), &[("tab", "applications")])),
        [org, "robots", robot, "regenerate"] => st
            .auth
            .regenerate_robot(actor, org, robot)
            .await
            .map(|_| format!("/organization/{org}/robots/{}", url_encode(robot))),
        [org, "robots", robot, "permission"] => st
            .auth
            .set_permission(
                actor,
                &match field(&f, "repository").unwrap_or("") {
                    r if r.contains('/') => r.to_string(),
                    r => format!("{org}/{r}"),
                },
                &format!("{org}+{robot}"),
                false,
                field(&f, "role").unwrap_or("read"),
            )
            .await
            .map(|_| format!("/organization/{org}/robots/{}", url_encode(robot))),
        [org, "teams", team, "members"] => st
            .auth
            .add_team_member(actor, org, team, field(&f, "member").unwrap_or(""))
            .await
            .map(|_| format!("/organization/{org}/teams/{}", url_encode(team))),
        [org, "teams", team, "members", member, "delete"] => st
            .auth
            .remove_team_member(actor, org, team, member)
            .await
            .map(|_| format!("/organization/{org}/teams/{}", url_encode(team))),
        [org, "teams", team, "delete"] => st
            .auth
            .delete_team(actor, org, team)
            .await
            .map(|_| link(&format!("/organization/{org}"), &[("tab", "teams")])),
        [org, "teams", team, "sync"] => {
            let sync = match (field(&f, "group_dn"), field(&f, "group_name")) {
                (Some(dn), _) => Ok(TeamSync::Ldap { group_dn: dn }),
                (None, Some(g)) => Ok(TeamSync::Oidc {
                    service: None,
                    group: g,
                }),
                (None, None) => Err(Error::invalid(
                    "give the LDAP group DN or the OIDC group to sync from",
                )),
            };
            match sync {
                Ok(sync) => st
                    .auth
                    .set_team_sync(actor, org, team, sync)
                    .await
                    .map(|_| format!("/organization/{org}/teams/{}", url_encode(team))),
                Err(e) => Err(e),
            }
        }
        [org, "teams", team, "sync", "off"] => st
            .auth
            .set_team_sync(actor, org, team, TeamSync::Off)
            .await
            .map(|_| format!("/organization/{org}/teams/{}", url_encode(team))),
        _ => Err(Error::not_found("no such action")),
    };
    page.after(done)
}
