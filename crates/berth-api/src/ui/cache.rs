//! An organization's Cache tab: its pull-through cache settings (create, validate, delete —
//! Quay has no change: delete and create again) and this instance's figures since it started,
//! through the same core doors as `/api/v1/organization/{org}/proxycache`.

use super::{Page, field, link, post_button};
use crate::AppState;
use axum::response::Response;
use berth_core::proxy::{FallbackSpec, ProxyCacheSpec, ProxyCaches, Validity};
use maud::{Markup, html};
use std::collections::HashMap;

fn door(st: &AppState) -> ProxyCaches<'_> {
    ProxyCaches::new(&st.registry, &st.auth)
}

/// The Cache tab, for the organization's administrators.
pub async fn section(st: &AppState, page: &Page, org: &str) -> berth_core::Result<Markup> {
    let Some(actor) = page.actor.as_ref() else {
        return Err(berth_core::Error::Unauthenticated("sign in first".into()));
    };
    let view = door(st).get(actor, org).await?;
    let base = format!("/organization/{org}/cache");
    let f = st.registry.cache_figures(org);
    Ok(html! {
        section #cache aria-labelledby="cache-heading" {
            h2 #cache-heading { "Pull-through cache" }
            @if let Some(v) = page.q("validated") {
                p.notice role="status" { "Validated " code { (page.q("upstream").unwrap_or("")) } ": " strong { (v) }
                    @if v == "Valid" { " — the upstream accepted the credentials." } @else { " — the upstream answers without credentials." }
                    " Nothing was saved yet." }
            }
            @if view.upstream_registry.is_empty() {
                p { "This organization is no cache. As one, its members pull " code { (org) "/<path>" } " and Berth fetches " code { "<path>" } " from the upstream registry the first time, then serves it from here — also while the upstream is down." }
                form.stack method="post" action={ (base) "/create" } {
                    input type="hidden" name="csrf" value=(page.csrf);
                    label for="c-up" { "Upstream registry (host[:port][/namespace]; docker.io is Docker Hub)" }
                    input #c-up name="upstream_registry" required placeholder="docker.io" value=(page.q("upstream").unwrap_or(""));
                    label for="c-user" { "Username (optional)" }
                    input #c-user name="username" autocomplete="off";
                    label for="c-pw" { "Password or token (never shown again)" }
                    input #c-pw name="password" type="password" autocomplete="new-password";
                    label for="c-fb" { "Further upstreams, tried in order when the ones before cannot answer (one host[:port][/namespace] per line, without credentials; optional)" }
                    textarea #c-fb name="fallbacks" rows="2" placeholder="mirror.gcr.io" {}
                    label for="c-exp" { "Seconds a cached tag lives after its last confirmed pull (0: for ever)" }
                    input #c-exp name="expiration_s" type="number" min="0" value="86400";
                    label { input name="insecure" type="checkbox" value="true"; " Plain HTTP to the upstream" }
                    button type="submit" name="validate" value="true" { "Validate" }
                    " "
                    button.primary type="submit" { "Make this organization a cache" }
                }
            } @else {
                dl.facts {
                    dt { "Upstream" } dd { code { (view.upstream_registry) } @if view.insecure { " (plain HTTP)" } }
                    @if !view.fallbacks.is_empty() {
                        dt { "Further upstreams, in order" }
                        dd { @for (u, insecure) in &view.fallbacks { code { (u) } @if *insecure { " (plain HTTP)" } " " } }
                    }
                    dt { "Tag lifetime after a confirmed pull" } dd { @match view.expiration_s { Some(0) | None => "for ever", Some(s) => (format!("{s} s")) } }
                }
                h3 { "This instance since it started" }
                table.list {
                    caption.visually-hidden { "Cache figures" }
                    thead { tr { th scope="col" { "Hits" } th scope="col" { "Misses" } th scope="col" { "Served stale" } th scope="col" { "Blobs fetched" } } }
                    tbody { tr { td { (f.hits) } td { (f.misses) } td { (f.stale) } td { (f.blob_fetches) } } }
                }
                (post_button(page, &format!("{base}/delete"), "Stop being a cache (cached repositories stay)", &[], true))
            }
        }
    })
}

/// `POST /organization/{org}/cache/{create|delete}`.
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
    let back = link(&format!("/organization/{org}"), &[("tab", "cache")]);
    let spec = ProxyCacheSpec {
        upstream_registry: field(f, "upstream_registry").unwrap_or("").to_string(),
        username: field(f, "username").map(str::to_string),
        password: field(f, "password").map(str::to_string),
        expiration_s: field(f, "expiration_s").and_then(|e| e.parse().ok()),
        insecure: field(f, "insecure") == Some("true"),
        fallbacks: field(f, "fallbacks")
            .unwrap_or("")
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|l| FallbackSpec {
                upstream_registry: l.to_string(),
                insecure: field(f, "insecure") == Some("true"),
                ..FallbackSpec::default()
            })
            .collect(),
    };
    let done = match verb {
        "create" if field(f, "validate") == Some("true") => {
            let r = door(st).validate(actor, org, &spec).await;
            return page.after(r.map(|v| {
                let v = match v {
                    Validity::Valid => "Valid",
                    Validity::Anonymous => "Anonymous",
                };
                link(
                    &format!("/organization/{org}"),
                    &[
                        ("tab", "cache"),
                        ("validated", v),
                        ("upstream", &spec.upstream_registry),
                    ],
                )
            }));
        }
        "create" => door(st).create(caller, org, &spec).await,
        "delete" => door(st).delete(caller, org).await,
        _ => Err(berth_core::Error::not_found("no such action")),
    };
    page.after(done.map(|_| back))
}
