//! An organization's Mirror tab: its organization mirror (create, sync now, cancel, delete),
//! the last discovery and the repositories it found with their sync status, through the same
//! core doors as `/api/v1/organization/{org}/mirror`.

use super::{Page, field, iso, link, post_button};
use crate::AppState;
use axum::response::Response;
use berth_core::mirror::{Mirrors, OrgMirrorSettings, OrgRegistryType};
use maud::{Markup, html};
use std::collections::HashMap;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn door(st: &AppState) -> Mirrors<'_> {
    Mirrors::new(&st.registry, &st.auth)
}

/// The Mirror tab, for the organization's administrators.
pub async fn section(st: &AppState, page: &Page, org: &str) -> berth_core::Result<Markup> {
    let Some(actor) = page.actor.as_ref() else {
        return Err(berth_core::Error::Unauthenticated("sign in first".into()));
    };
    let mirror = match door(st).org_get(actor, org).await {
        Ok(m) => Some(m),
        Err(e) if e.is_not_found() => None,
        Err(e) => return Err(e),
    };
    let base = format!("/organization/{org}/mirror");
    let repos = match &mirror {
        Some(_) => Some(door(st).org_repositories(actor, org, 1, 100).await?),
        None => None,
    };
    Ok(html! {
        section #org-mirror aria-labelledby="org-mirror-heading" {
            h2 #org-mirror-heading { "Organization mirror" }
            @match (&mirror, &repos) {
                (Some(m), Some(p)) => {
                    dl.facts {
                        dt { "Upstream" } dd { code { (m.registry_url) "/" (m.external_namespace) } " (" (m.registry_type) ")" }
                        dt { "Repository filters" } dd { @if m.repository_filters.is_empty() { "every repository" } @else { code { (m.repository_filters.join(", ")) } } }
                        dt { "Robot" } dd { code { (m.robot_username) } }
                        dt { "New repositories are" } dd { (m.visibility) }
                        dt { "Status" } dd { strong { (m.sync_status.as_str()) } @if !m.is_enabled { " (disabled)" } }
                        dt { "Next discovery" } dd { @if let Some(at) = m.sync_start_at { time datetime=(iso(at)) { (iso(at)) } } @else { "none (sync now to restart)" } }
                        dt { "Last discovery" } dd { (m.last_message.as_deref().unwrap_or("not yet")) }
                    }
                    (post_button(page, &format!("{base}/sync"), "Discover and sync now", &[], false))
                    " "
                    (post_button(page, &format!("{base}/cancel"), "Cancel", &[], false))
                    " "
                    (post_button(page, &format!("{base}/delete"), "End the mirror (repositories stay)", &[], true))
                    h3 { "Repositories found (" (p.total) ")" }
                    table.list {
                        caption.visually-hidden { "Repositories the discovery found" }
                        thead { tr { th scope="col" { "Name" } th scope="col" { "Sync status" } th scope="col" { "Last synced" } th scope="col" { "Note" } } }
                        tbody {
                            @for r in &p.repositories {
                                tr {
                                    td { @if let Some(full) = &r.repository { a href={ "/repository/" (full) "?tab=mirroring" } { (r.name) } } @else { (r.name) } }
                                    td { (r.sync_status) }
                                    td { @if let Some(at) = r.last_sync_at { time datetime=(iso(at)) { (iso(at)) } } @else { "—" } }
                                    td { (r.status_message.as_deref().unwrap_or("")) }
                                }
                            }
                        }
                    }
                }
                _ => {
                    p { "Mirror every repository of a namespace on another registry into this organization: each one found (and matching the filters) gets a repository here that follows all its tags." }
                    form.stack method="post" action={ (base) "/create" } {
                        input type="hidden" name="csrf" value=(page.csrf);
                        label for="om-type" { "Upstream kind" }
                        select #om-type name="external_registry_type" {
                            option value="quay" { "Quay (or Berth): its API lists the namespace" }
                            option value="harbor" { "Harbor: its API lists the project" }
                            option value="oci" { "Any registry: /v2/_catalog" }
                        }
                        label for="om-url" { "Upstream URL (https://host[:port])" }
                        input #om-url name="external_registry_url" required placeholder="https://quay.io";
                        label for="om-ns" { "Upstream namespace (organization or project)" }
                        input #om-ns name="external_namespace" required;
                        label for="om-filters" { "Repository filters, comma-separated globs (empty: every repository)" }
                        input #om-filters name="repository_filters" placeholder="app-*, tools/*";
                        label for="om-robot" { "Robot that writes the mirrored content (" (org) "+name)" }
                        input #om-robot name="robot_username" required placeholder={ (org) "+mirror" };
                        label for="om-vis" { "New repositories are" }
                        select #om-vis name="visibility" { option value="private" { "private" } option value="public" { "public" } }
                        label for="om-int" { "Seconds between discoveries and syncs (at least 60)" }
                        input #om-int name="sync_interval" type="number" min="60" value="86400";
                        label for="om-user" { "Username (optional)" }
                        input #om-user name="username" autocomplete="off";
                        label for="om-pw" { "Password or token (never shown again)" }
                        input #om-pw name="password" type="password" autocomplete="new-password";
                        button.primary type="submit" { "Mirror this namespace" }
                    }
                }
            }
        }
    })
}

/// `POST /organization/{org}/mirror/{create|sync|cancel|delete}`.
pub async fn action(
    st: &AppState,
    page: &Page,
    org: &str,
    verb: &str,
    f: &HashMap<String, String>,
) -> Response {
    let Some(actor) = page.actor.as_ref() else {
        return page.error(berth_core::Error::Unauthenticated("sign in first".into()));
    };
    let caller = berth_core::Caller::new(actor, page.ip.as_deref());
    let back = link(&format!("/organization/{org}"), &[("tab", "mirror")]);
    let done = match verb {
        "create" => {
            let settings = (|| -> berth_core::Result<OrgMirrorSettings> {
                Ok(OrgMirrorSettings {
                    registry_type: Some(OrgRegistryType::parse(
                        field(f, "external_registry_type").unwrap_or("quay"),
                    )?),
                    registry_url: field(f, "external_registry_url").map(str::to_string),
                    external_namespace: field(f, "external_namespace").map(str::to_string),
                    repository_filters: Some(
                        field(f, "repository_filters")
                            .unwrap_or("")
                            .split(',')
                            .map(str::trim)
                            .filter(|g| !g.is_empty())
                            .map(str::to_string)
                            .collect(),
                    ),
                    robot_username: field(f, "robot_username").map(str::to_string),
                    visibility: Some(
                        field(f, "visibility")
                            .unwrap_or("private")
                            .parse()
                            .map_err(|_| {
                                berth_core::Error::invalid("visibility: public or private")
                            })?,
                    ),
                    sync_interval_s: Some(
                        field(f, "sync_interval")
                            .and_then(|i| i.parse().ok())
                            .unwrap_or(86_400),
                    ),
                    sync_start_at: Some(now_ms()),
                    username: field(f, "username").map(|u| Some(u.to_string())),
                    password: field(f, "password").map(|p| Some(p.to_string())),
                    ..OrgMirrorSettings::default()
                })
            })();
            match settings {
                Ok(s) => door(st).org_create(caller, org, &s).await,
                Err(e) => Err(e),
            }
        }
        "sync" => door(st).org_sync_now(caller, org).await,
        "cancel" => door(st).org_cancel(caller, org).await,
        "delete" => door(st).org_delete(caller, org).await,
        _ => Err(berth_core::Error::not_found("no such action")),
    };
    page.after(done.map(|_| back))
}
