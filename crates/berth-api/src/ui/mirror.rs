//! A repository's Mirroring tab: its mirror's settings (a form for creating and changing
//! them), its state, sync now and cancel, and the last runs with their logs — through the same
//! core doors as `/api/v1/repository/{repo}/mirror`.

use super::{Page, ago, field, iso, link, post_button, size};
use crate::AppState;
use axum::response::Response;
use berth_core::mirror::{MirrorSettings, Mirrors, RegistryConfig, RepoState};
use maud::{Markup, html};
use std::collections::HashMap;

fn door(st: &AppState) -> Mirrors<'_> {
    Mirrors::new(&st.registry, &st.auth)
}

/// The Mirroring tab.
pub async fn section(st: &AppState, page: &Page, repo: &str) -> berth_core::Result<Markup> {
    let Some(actor) = page.actor.as_ref() else {
        return Err(berth_core::Error::Unauthenticated("sign in first".into()));
    };
    let mirror = match door(st).get(actor, repo).await {
        Ok(m) => Some(m),
        Err(e) if e.is_not_found() => None,
        Err(e) => return Err(e),
    };
    let runs = door(st).runs(actor, repo, 10).await?;
    let state = st
        .registry
        .repo_state(repo)
        .await?
        .unwrap_or(RepoState::Normal);
    let base = format!("/repository/{repo}/mirror");
    let v =
        |f: fn(&berth_core::mirror::Mirror) -> String| mirror.as_ref().map(f).unwrap_or_default();
    Ok(html! {
        section #mirroring aria-labelledby="mirroring-heading" {
            h2 #mirroring-heading { "Mirroring" }
            p { "State: " strong { (state.as_str()) } " "
                @match state {
                    RepoState::Mirror => span.muted { "— only the mirror's robot writes content." },
                    RepoState::OrgMirror => span.muted { "— mirrored by the organization's mirror; only its robot writes content." },
                    RepoState::ReadOnly => span.muted { "— nobody writes content." },
                    RepoState::Normal => span.muted { "— writers push as usual." },
                }
            }
            form.inline method="post" action={ (base) "/state" } {
                input type="hidden" name="csrf" value=(page.csrf);
                label for="m-state" { "Change the state to " }
                select #m-state name="state" {
                    @for s in [RepoState::Normal, RepoState::ReadOnly, RepoState::Mirror] {
                        option value=(s.as_str()) selected[s == state] { (s.as_str()) }
                    }
                }
                " " button type="submit" { "Change state" }
            }
            @if let Some(m) = &mirror {
                h3 { "Status" }
                dl.facts {
                    dt { "Upstream" } dd { code { (m.external_reference) } }
                    dt { "Sync status" } dd { strong { (m.sync_status.as_str()) } }
                    dt { "Next sync" } dd { @if let Some(at) = m.sync_start_at { time datetime=(iso(at)) { (iso(at)) } } @else { "none (sync now to restart)" } }
                    dt { "Retries left" } dd { (m.sync_retries_remaining) }
                    dt { "Robot" } dd { code { (m.robot_username) } }
                }
                (post_button(page, &format!("{base}/sync-now"), "Sync now", &[], false))
                " "
                (post_button(page, &format!("{base}/sync-cancel"), "Cancel sync", &[], true))
                h3 { "Last runs" }
                @if runs.is_empty() {
                    p.empty { "No sync has run yet." }
                } @else {
                    table.list {
                        caption.visually-hidden { "Sync runs" }
                        thead { tr { th scope="col" { "Started" } th scope="col" { "Outcome" } th scope="col" { "Copied" } th scope="col" { "Unchanged" } th scope="col" { "Removed" } th scope="col" { "Failed" } th scope="col" { "Bytes" } } }
                        tbody {
                            @for r in &runs {
                                tr {
                                    th scope="row" { time datetime=(iso(r.started_at)) { (ago(r.started_at)) } }
                                    td { (r.outcome) }
                                    td { (r.counts.tags_copied) }
                                    td { (r.counts.tags_unchanged) }
                                    td { (r.counts.tags_removed) }
                                    td { (r.counts.tags_failed) }
                                    td { (size(r.counts.bytes_copied)) }
                                }
                            }
                        }
                    }
                    @for (i, r) in runs.iter().enumerate().take(3) {
                        details open[i == 0] {
                            summary { "Log of the run started " (iso(r.started_at)) " (" (r.outcome) ")" }
                            pre.log { @for l in &r.log { (l) "\n" } }
                        }
                    }
                }
            }
            h3 { @if mirror.is_some() { "Change the mirror" } @else { "Mirror another registry's repository here" } }
            form.stack method="post" action={ (base) "/save" } {
                input type="hidden" name="csrf" value=(page.csrf);
                label for="m-ref" { "Upstream repository (host[:port]/path, no scheme)" }
                input #m-ref name="external_reference" required placeholder="quay.io/prometheus/node-exporter" value=(v(|m| m.external_reference.clone()));
                label for="m-globs" { "Tags to mirror (comma-separated globs: *, ?, [..])" }
                input #m-globs name="tags" required placeholder="latest, v1.*" value=(v(|m| m.tag_globs.join(", ")));
                label for="m-robot" { "Robot that writes the mirror (namespace+name; it is given write)" }
                input #m-robot name="robot" required value=(v(|m| m.robot_username.clone()));
                label for="m-interval" { "Seconds between syncs" }
                input #m-interval name="interval" type="number" min="0" value=(mirror.as_ref().map(|m| m.sync_interval_s).unwrap_or(86400));
                label for="m-user" { "Upstream username (optional)" }
                input #m-user name="username" autocomplete="off" value=(v(|m| m.username.clone().unwrap_or_default()));
                label for="m-password" { "Upstream password (never shown again; leave empty to keep it)" }
                input #m-password name="password" type="password" autocomplete="new-password";
                label for="m-archs" { "Architectures of an index to copy (comma-separated; empty: all)" }
                input #m-archs name="archs" placeholder="amd64, arm64" value=(v(|m| m.architecture_filter.join(", ")));
                label { input name="verify_tls" type="checkbox" value="true" checked[mirror.as_ref().is_none_or(|m| m.registry_config.verify_tls)]; " Verify the upstream's TLS certificate" }
                label { input name="enabled" type="checkbox" value="true" checked[mirror.as_ref().is_none_or(|m| m.is_enabled)]; " Sync on schedule" }
                button.primary type="submit" { @if mirror.is_some() { "Save mirror" } @else { "Create mirror" } }
            }
        }
    })
}

fn list(s: Option<&str>) -> Vec<String> {
    s.unwrap_or("")
        .split(',')
        .map(|x| x.trim().to_string())
        .filter(|x| !x.is_empty())
        .collect()
}

/// `POST /repository/{repo}/mirror/{save|sync-now|sync-cancel|state}`.
pub async fn action(
    st: &AppState,
    page: &Page,
    repo: &str,
    verb: &str,
    f: &HashMap<String, String>,
) -> Response {
    let Some(actor) = page.actor.as_ref() else {
        return page.error(berth_core::Error::Unauthenticated("sign in first".into()));
    };
    let caller = berth_core::Caller::new(actor, page.ip.as_deref());
    let back = link(&format!("/repository/{repo}"), &[("tab", "mirroring")]);
    let done = match verb {
        "sync-now" => door(st).sync_now(caller, repo).await,
        "sync-cancel" => door(st).cancel(caller, repo).await,
        "state" => match field(f, "state").map(str::parse::<RepoState>) {
            Some(Ok(s)) => door(st).change_state(caller, repo, s).await,
            _ => Err(berth_core::Error::invalid("which state?")),
        },
        "save" => {
            let exists = door(st).get(actor, repo).await.is_ok();
            let password = field(f, "password").map(str::to_string);
            let settings = MirrorSettings {
                is_enabled: Some(field(f, "enabled") == Some("true")),
                external_reference: field(f, "external_reference").map(str::to_string),
                username: Some(field(f, "username").map(str::to_string)),
                password: password.map(Some),
                registry_config: Some(RegistryConfig {
                    verify_tls: field(f, "verify_tls") == Some("true"),
                    ..RegistryConfig::default()
                }),
                sync_interval_s: field(f, "interval").and_then(|i| i.parse().ok()),
                sync_start_at: (!exists).then(berth_core::now_ms),
                tag_globs: Some(list(field(f, "tags"))),
                robot_username: field(f, "robot").map(str::to_string),
                timeout_s: None,
                architecture_filter: Some(list(field(f, "archs"))),
            };
            if exists {
                door(st).update(caller, repo, &settings).await
            } else {
                door(st).create(caller, repo, &settings).await
            }
        }
        _ => Err(berth_core::Error::not_found("no such action")),
    };
    page.after(done.map(|_| back))
}
