//! A repository's administration: the Settings tab (description, user/team/robot permissions,
//! visibility, deletion) and the "Who has access" tab (every account's effective role and the
//! rules that give it, also as CSV). Admins only; each door checks that itself.

use super::{Page, csv_field, field, link};
use crate::AppState;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use berth_core::auth::{AccountKind, GranteeKind, Role};
use berth_core::content::{Content, RepositoryView};
use berth_core::{AccessReason, Caller, EffectivePermissions, Error};
use maud::{Markup, html};
use std::collections::HashMap;

fn kind_name(k: GranteeKind) -> &'static str {
    match k {
        GranteeKind::Team => "team",
        GranteeKind::Robot => "robot",
        _ => "user",
    }
}

fn role_select(id: &str, current: Role) -> Markup {
    html! {
        select id=(id) name="role" {
            @for r in Role::ALL {
                option value=(r.as_str()) selected[*r == current] { (r.as_str()) }
            }
        }
    }
}

pub async fn settings_tab(
    st: &AppState,
    page: &Page,
    repo: &str,
    view: &RepositoryView,
) -> berth_core::Result<Markup> {
    let actor = page
        .actor
        .as_ref()
        .ok_or_else(|| Error::Unauthenticated("sign in to change a repository".into()))?;
    let perms = st.auth.repo_permissions(actor, repo).await?;
    let r = &view.repository;
    let base = format!("/repository/{repo}/settings");
    let csrf = html! { input type="hidden" name="csrf" value=(page.csrf); };
    Ok(html! {
        section #settings {
            h2 #permissions-heading { "User, robot and team permissions" }
            @if perms.is_empty() {
                p.empty { "Nobody has a permission on this repository of their own; see " a href=(link(&format!("/repository/{repo}"), &[("tab", "access")])) { "who has access" } " for the rules that apply." }
            } @else {
                table.list aria-labelledby="permissions-heading" {
                    thead { tr { th scope="col" { "Name" } th scope="col" { "Kind" } th scope="col" { "Role" } th scope="col" { "Remove" } } }
                    tbody {
                        @for (i, p) in perms.iter().enumerate() {
                            @let kind = kind_name(p.grantee_kind);
                            tr {
                                th scope="row" { (p.grantee) }
                                td { (kind) }
                                td {
                                    form.inline method="post" action={ (base) "/permission" } {
                                        (csrf)
                                        input type="hidden" name="name" value=(p.grantee);
                                        input type="hidden" name="kind" value=(kind);
                                        label.visually-hidden for={ "perm-role-" (i) } { "Role of " (p.grantee) }
                                        (role_select(&format!("perm-role-{i}"), p.role))
                                        button type="submit" { "Change role of " (p.grantee) }
                                    }
                                }
                                td {
                                    form.inline method="post" action={ (base) "/permission/delete" } {
                                        (csrf)
                                        input type="hidden" name="name" value=(p.grantee);
                                        input type="hidden" name="kind" value=(kind);
                                        button.danger type="submit" { "Remove " (p.grantee) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            h3 { "Add a permission" }
            form.stack method="post" action={ (base) "/permission" } {
                (csrf)
                label for="perm-kind" { "Kind" }
                select #perm-kind name="kind" {
                    option value="user" { "User" }
                    option value="robot" { "Robot account" }
                    option value="team" { "Team (of " (r.namespace) ")" }
                }
                label for="perm-name" { "Name" }
                input #perm-name name="name" required aria-describedby="perm-name-hint";
                small #perm-name-hint.muted { "A user's name, a robot's full name (" (r.namespace) "+name) or a team's name." }
                label for="perm-role" { "Role" }
                (role_select("perm-role", Role::Read))
                button.primary type="submit" { "Add permission" }
            }

            h2 { "Description" }
            form.stack method="post" action={ (base) "/description" } {
                (csrf)
                label for="description" { "Description (Markdown)" }
                textarea #description name="description" rows="6" { (r.description.as_deref().unwrap_or("")) }
                button type="submit" { "Save description" }
            }

            h2 { "Visibility" }
            p {
                "This repository is " strong { @if r.is_public() { "public" } @else { "private" } } ". "
                @if r.is_public() { "Anyone who can reach the registry may pull it." } @else { "Only accounts with a permission may pull it." }
            }
            form.inline method="post" action={ (base) "/visibility" } {
                (csrf)
                input type="hidden" name="visibility" value=(if r.is_public() { "private" } else { "public" });
                button type="submit" { @if r.is_public() { "Make private" } @else { "Make public" } }
            }

            h2 { "Delete this repository" }
            p { "Deletes every tag and its history; its blobs are freed by the next garbage collection. This cannot be undone from the time machine." }
            form.stack method="post" action={ (base) "/delete" } {
                (csrf)
                label for="confirm-delete" { "Type " strong { (repo) } " to confirm" }
                input #confirm-delete name="confirm" required autocomplete="off";
                button.danger type="submit" { "Delete repository" }
            }
        }
    })
}

/// Whether an effective role allows pulling, pushing, administering.
fn can(role: Role, need: Role) -> Markup {
    if role >= need {
        html! { span.yes { "yes" } }
    } else {
        html! { span.muted { "no" } }
    }
}

pub async fn access_tab(st: &AppState, page: &Page, repo: &str) -> berth_core::Result<Markup> {
    let actor = page
        .actor
        .as_ref()
        .ok_or_else(|| Error::Unauthenticated("sign in to see who has access".into()))?;
    let e = st.auth.effective_permissions(actor, repo).await?;
    Ok(html! {
        section #access {
            p {
                "Every user and robot that may use " strong { (repo) } ", with its highest role and each rule that gives it. "
                a href=(link(&format!("/repository/{repo}"), &[("tab", "access"), ("format", "csv")])) download { "Download as CSV" }
            }
            @if e.public {
                p.notice role="status" {
                    "Public: " @if e.anonymous { "anyone, signed in or not," } @else { "every signed-in account" } " may pull."
                }
            }
            table.list #effective {
                caption { "Effective permissions of " (repo) }
                thead { tr {
                    th scope="col" { "Account" } th scope="col" { "Kind" } th scope="col" { "Role" }
                    th scope="col" { "Pull" } th scope="col" { "Push" } th scope="col" { "Admin" } th scope="col" { "Why" }
                } }
                tbody {
                    @for a in &e.accounts {
                        tr {
                            th scope="row" { (a.account) }
                            td { (kind_of(a.kind)) }
                            td { (a.role.as_str()) }
                            td { (can(a.role, Role::Read)) }
                            td { (can(a.role, Role::Write)) }
                            td { (can(a.role, Role::Admin)) }
                            td { ul.plain { @for r in &a.reasons { li { (r) } } } }
                        }
                    }
                }
            }
        }
    })
}

fn kind_of(k: AccountKind) -> &'static str {
    match k {
        AccountKind::Robot => "robot",
        AccountKind::Org => "organization",
        _ => "user",
    }
}

/// The effective permissions as CSV: one line per account and reason.
pub fn access_csv(e: &EffectivePermissions) -> Response {
    let mut out = String::from("account,kind,role,pull,push,admin,reason\n");
    let yn = |b: bool| if b { "yes" } else { "no" };
    let mut line = |account: &str, kind: &str, role: Role, reason: &str| {
        out.push_str(&format!(
            "{},{},{},{},{},{},{}\n",
            csv_field(account),
            kind,
            role.as_str(),
            yn(role >= Role::Read),
            yn(role >= Role::Write),
            yn(role >= Role::Admin),
            csv_field(reason)
        ));
    };
    if e.public {
        let who = if e.anonymous {
            "(anyone)"
        } else {
            "(signed in)"
        };
        line(who, "everyone", Role::Read, "the repository is public");
    }
    for a in &e.accounts {
        let reasons: Vec<String> = a.reasons.iter().map(AccessReason::to_string).collect();
        if reasons.is_empty() || e.public && a.role == Role::Read {
            line(
                &a.account,
                kind_of(a.kind),
                a.role,
                "the repository is public",
            );
        }
        for r in &reasons {
            line(&a.account, kind_of(a.kind), a.role, r);
        }
    }
    let file = format!(
        "attachment; filename=\"{}-access.csv\"",
        e.repo.replace(['/', '"'], "_")
    );
    let mut resp = (StatusCode::OK, out).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&file) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// The Settings tab's form actions (`/repository/{repo}/settings/{what}`).
pub const ACTIONS: [&str; 5] = [
    "permission/delete",
    "permission",
    "description",
    "visibility",
    "delete",
];

/// `POST /repository/{repo}/settings/{what}`: the Settings tab's forms, through the same doors
/// as `/api/v1`; then back to the tab (or to the list after a deletion).
pub async fn action(
    st: &AppState,
    page: &Page,
    repo: &str,
    what: &str,
    f: &HashMap<String, String>,
) -> Response {
    let Some(actor) = page.actor.as_ref() else {
        return page.error(Error::Unauthenticated(
            "sign in first: your session may have ended".into(),
        ));
    };
    let name = field(f, "name").unwrap_or("");
    let team = field(f, "kind") == Some("team");
    let back = link(&format!("/repository/{repo}"), &[("tab", "settings")]);
    let done = match what {
        "permission" => st
            .auth
            .set_permission(actor, repo, name, team, field(f, "role").unwrap_or("read"))
            .await
            .map(|_| back),
        "permission/delete" => st
            .auth
            .delete_permission(actor, repo, name, team)
            .await
            .map(|_| back),
        "description" => st
            .auth
            .set_description(
                actor,
                repo,
                f.get("description").map(String::as_str).unwrap_or(""),
            )
            .await
            .map(|_| back),
        "visibility" => st
            .auth
            .set_visibility(actor, repo, field(f, "visibility").unwrap_or(""))
            .await
            .map(|_| back),
        "delete" if field(f, "confirm") != Some(repo) => Err(Error::invalid(format!(
            "type the repository's name, {repo}, to confirm its deletion"
        ))),
        "delete" => Content::new(&st.registry, &st.auth)
            .delete_repository(Caller::new(actor, page.ip.as_deref()), repo)
            .await
            .map(|_| "/repository".to_string()),
        _ => Err(Error::not_found("no such action")),
    };
    page.after(done)
}
