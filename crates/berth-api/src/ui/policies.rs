//! Immutability and auto-prune policies of a repository or an organization, each form with a
//! live preview ("protects N of M tags", "deletes N tags, frees X") computed by the core from
//! the unsaved settings: as you type with htmx, or with the Preview button without JavaScript.
//! Doors: `policies::Policies` (list, create, delete, `immutability_preview`, `prune_preview`).

use super::{Page, field, see_other, size};
use crate::AppState;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use berth_core::policies::{AutoPruneFields, ImmutabilityFields, Level, Policies};
use berth_core::{AutoPrunePolicy, Caller, Error, ImmutabilityPolicy};
use maud::{Markup, html};
use std::collections::HashMap;

fn immutability_fields(q: impl Fn(&str) -> Option<String>) -> ImmutabilityFields {
    ImmutabilityFields {
        tag_pattern: q("pattern"),
        tag_pattern_matches: Some(q("matches").as_deref() != Some("false")),
    }
}

fn prune_fields(q: impl Fn(&str) -> Option<String>) -> AutoPruneFields {
    AutoPruneFields {
        method: q("method"),
        value: q("value").map(serde_json::Value::from).unwrap_or_default(),
        tag_pattern: q("pattern"),
        tag_pattern_matches: Some(q("matches").as_deref() != Some("false")),
    }
}

async fn immutability_preview(st: &AppState, page: &Page, at: &Level<'_>) -> Markup {
    let Some(actor) = page.actor.as_ref() else {
        return html! {};
    };
    if page.q("pattern").is_none() {
        return html! { p.muted { "Type a pattern to see which tags it protects." } };
    }
    let fields = immutability_fields(|k| page.q(k).map(str::to_string));
    match Policies::new(&st.registry, &st.auth)
        .immutability_preview(actor, at, fields)
        .await
    {
        Ok(p) => html! {
            p { "Protects " strong { (p.protected) } " of " (p.live) " live tags now"
                @if !p.sample.is_empty() { ": " @for (i, t) in p.sample.iter().enumerate() { @if i > 0 { ", " } code { (t) } } @if p.protected > p.sample.len() as i64 { " …" } }
                "." }
        },
        Err(e) => html! { p.error { (crate::error::Problem::from(e).message) } },
    }
}

async fn prune_preview(st: &AppState, page: &Page, at: &Level<'_>) -> Markup {
    let Some(actor) = page.actor.as_ref() else {
        return html! {};
    };
    if page.q("method").is_none() || page.q("value").is_none() {
        return html! { p.muted { "Choose a method and a value to see what it would delete." } };
    }
    let fields = prune_fields(|k| page.q(k).map(str::to_string));
    match Policies::new(&st.registry, &st.auth)
        .prune_preview(actor, at, fields)
        .await
    {
        Ok(plan) => html! {
            p {
                "Would delete " strong { (plan.tags.len()) } " " @if plan.tags.len() == 1 { "tag" } @else { "tags" } " now, freeing " strong { (size(plan.bytes_freed)) }
                " once they leave the time-machine window"
                @if !plan.tags.is_empty() { ": " @for (i, t) in plan.tags.iter().take(20).enumerate() { @if i > 0 { ", " } code { (t.repository) ":" (t.tag) } } @if plan.tags.len() > 20 { " …" } }
                ". Immutable tags are never pruned."
            }
        },
        Err(e) => html! { p.error { (crate::error::Problem::from(e).message) } },
    }
}

/// A `?preview=immutability|autoprune` request from htmx: only the preview's text.
pub async fn fragment(st: &AppState, page: &Page, at: &Level<'_>) -> Option<Response> {
    if !page.fragment {
        return None;
    }
    let m = match page.q("preview")? {
        "immutability" => immutability_preview(st, page, at).await,
        "autoprune" => prune_preview(st, page, at).await,
        _ => return None,
    };
    let mut r = (StatusCode::OK, Html(m.into_string())).into_response();
    r.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Some(r)
}

/// The policies section of the page at `base` (`tab=policies`), posting to `action_base`.
pub async fn section(
    st: &AppState,
    page: &Page,
    at: &Level<'_>,
    base: &str,
    action_base: &str,
) -> Result<Markup, Error> {
    let actor = page
        .actor
        .as_ref()
        .ok_or_else(|| Error::Unauthenticated("sign in to manage policies".into()))?;
    let policies = Policies::new(&st.registry, &st.auth);
    let imm: Vec<ImmutabilityPolicy> = policies.list(actor, at).await?;
    let prune: Vec<AutoPrunePolicy> = policies.list(actor, at).await?;
    let showing = page.q("preview");
    let imm_preview = if showing == Some("immutability") {
        immutability_preview(st, page, at).await
    } else {
        html! { p.muted { "Type a pattern to see which tags it protects." } }
    };
    let prune_preview_m = if showing == Some("autoprune") {
        prune_preview(st, page, at).await
    } else {
        html! { p.muted { "Choose a method and a value to see what it would delete." } }
    };
    let q = |k: &str| page.q(k).map(str::to_string);
    let csrf = html! { input type="hidden" name="csrf" value=(page.csrf); };
    Ok(html! {
        section #policies {
            h2 { "Immutability policies" }
            p.muted { "A tag an immutability policy matches cannot be moved, deleted or expired." }
            @if imm.is_empty() {
                p.empty { "None here." }
            } @else {
                table.list {
                    caption.visually-hidden { "Immutability policies" }
                    thead { tr { th scope="col" { "Pattern" } th scope="col" { "Protects" } th scope="col" { "Remove" } } }
                    tbody {
                        @for p in &imm {
                            tr {
                                th scope="row" { code { (p.pattern) } }
                                td { @if p.matches { "tags that match" } @else { "tags that do not match" } }
                                td {
                                    form.inline method="post" action={ (action_base) "/immutability/" (p.uuid) "/delete" } {
                                        (csrf)
                                        button.danger type="submit" { "Remove policy " (p.pattern) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            form.stack method="get" action=(base) hx-get=(base) hx-trigger="input changed delay:300ms, change" hx-target="#imm-preview" hx-push-url="false" {
                input type="hidden" name="tab" value="policies";
                input type="hidden" name="preview" value="immutability";
                label for="imm-pattern" { "Tag pattern (regular expression)" }
                input #imm-pattern name="pattern" value=[q("pattern").filter(|_| showing == Some("immutability"))] placeholder="^v[0-9]+\\.[0-9]+\\.[0-9]+$";
                label for="imm-matches" { "Protect" }
                select #imm-matches name="matches" {
                    option value="true" { "tags that match" }
                    option value="false" selected[showing == Some("immutability") && page.q("matches") == Some("false")] { "tags that do not match" }
                }
                div #imm-preview role="status" aria-live="polite" { (imm_preview) }
                div.row {
                    button type="submit" { "Preview" }
                    " "
                    button.primary type="submit" formmethod="post" formaction={ (action_base) "/immutability" } name="csrf" value=(page.csrf) { "Add immutability policy" }
                }
            }

            h2 { "Auto-prune policies" }
            p.muted { "Auto-prune deletes tags by count or age on a schedule; deleted tags stay restorable within the time-machine window." }
            @if prune.is_empty() {
                p.empty { "None here." }
            } @else {
                table.list {
                    caption.visually-hidden { "Auto-prune policies" }
                    thead { tr { th scope="col" { "Method" } th scope="col" { "Value" } th scope="col" { "Tags" } th scope="col" { "Remove" } } }
                    tbody {
                        @for p in &prune {
                            tr {
                                th scope="row" { (p.method.as_str()) }
                                td { (p.value) }
                                td { @if let Some(pat) = &p.pattern { @if p.matches { "matching " } @else { "not matching " } code { (pat) } } @else { "all" } }
                                td {
                                    form.inline method="post" action={ (action_base) "/autoprune/" (p.uuid) "/delete" } {
                                        (csrf)
                                        button.danger type="submit" { "Remove policy " (p.method.as_str()) " " (p.value) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            form.stack method="get" action=(base) hx-get=(base) hx-trigger="input changed delay:300ms, change" hx-target="#prune-preview" hx-push-url="false" {
                input type="hidden" name="tab" value="policies";
                input type="hidden" name="preview" value="autoprune";
                label for="prune-method" { "Method" }
                select #prune-method name="method" {
                    option value="number_of_tags" { "Keep the newest N tags" }
                    option value="creation_date" selected[showing == Some("autoprune") && page.q("method") == Some("creation_date")] { "Delete tags older than" }
                }
                label for="prune-value" { "Value (a count, or an age such as 30d or 2w)" }
                input #prune-value name="value" value=[q("value").filter(|_| showing == Some("autoprune"))] required;
                label for="prune-pattern" { "Only tags matching (optional regular expression)" }
                input #prune-pattern name="pattern" value=[q("pattern").filter(|_| showing == Some("autoprune"))];
                div #prune-preview role="status" aria-live="polite" { (prune_preview_m) }
                div.row {
                    button type="submit" { "Preview" }
                    " "
                    button.primary type="submit" formmethod="post" formaction={ (action_base) "/autoprune" } name="csrf" value=(page.csrf) { "Add auto-prune policy" }
                }
            }
        }
    })
}

/// `POST {action_base}/immutability`, `…/autoprune`, and `…/{kind}/{uuid}/delete`; `None` if
/// `what` is none of them.
pub async fn action(
    st: &AppState,
    page: &Page,
    at: &Level<'_>,
    what: &str,
    f: &HashMap<String, String>,
    back: &str,
) -> Option<Response> {
    let parts: Vec<&str> = what.split('/').collect();
    let Some(actor) = page.actor.as_ref() else {
        return Some(page.error(Error::Unauthenticated(
            "sign in first: your session may have ended".into(),
        )));
    };
    let caller = Caller::new(actor, page.ip.as_deref());
    let policies = Policies::new(&st.registry, &st.auth);
    let get = |k: &str| field(f, k).map(str::to_string);
    let done = match parts.as_slice() {
        ["immutability"] => policies
            .create::<ImmutabilityPolicy>(caller, at, immutability_fields(get))
            .await
            .map(|_| ()),
        ["autoprune"] => policies
            .create::<AutoPrunePolicy>(caller, at, prune_fields(get))
            .await
            .map(|_| ()),
        ["immutability", uuid, "delete"] => policies
            .delete::<ImmutabilityPolicy>(caller, at, uuid)
            .await
            .map(|_| ()),
        ["autoprune", uuid, "delete"] => policies
            .delete::<AutoPrunePolicy>(caller, at, uuid)
            .await
            .map(|_| ()),
        _ => return None,
    };
    Some(match done {
        Ok(()) => see_other(back, &[]),
        Err(e) => page.error(e),
    })
}
