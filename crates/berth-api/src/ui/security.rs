//! The scanner in the web UI: the severity bar of tag lists, a manifest's Security tab
//! (vulnerabilities, filtered by severity, fix and package) and Packages tab (everything the
//! indexer found, with the layer that added it, and SBOM downloads), and `/security/search`:
//! which images a vulnerability affects or a package is in. Every figure comes from the same
//! core doors as the API (`Content::security`, `Content::find_images`, stored matches).

use super::{Crumb, Page, link, url_encode};
use crate::AppState;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use berth_core::content::Content;
use berth_core::scan::{ScanStatus, ScanSummary, VulnSeverity as Severity};
use maud::{Markup, html};
use std::sync::Arc;

/// The CSS class of a severity.
fn class(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "sev sev-critical",
        Severity::High => "sev sev-high",
        Severity::Medium => "sev sev-medium",
        Severity::Low => "sev sev-low",
        Severity::Negligible | Severity::Unknown => "sev sev-unknown",
    }
}

/// A tag list's Security cell: a bar of counts by severity, linking to the Security tab.
pub fn cell(repo: &str, digest: &str, s: Option<&ScanSummary>) -> Markup {
    let href = format!("/repository/{repo}/manifest/{digest}?tab=security");
    html! {
        @match s {
            None => { span.muted { "not scanned" } }
            Some(s) if s.status == ScanStatus::Queued => { span.muted { "queued" } }
            Some(s) if s.status == ScanStatus::Failed => { a.muted href=(href) { "failed" } }
            Some(s) if s.status == ScanStatus::ManifestLayerTooLarge => { span.muted title="a layer is over SECURITY_SCANNER_V4_INDEX_MAX_LAYER_SIZE" { "too large" } }
            Some(s) if s.status == ScanStatus::Unsupported => { span.muted { "n/a" } }
            Some(s) => {
                @let counts = s.counts();
                @if counts.is_empty() {
                    a.sev-none href=(href) { "none found" }
                } @else {
                    a.sevbar href=(href) aria-label={ (s.vulns.len()) @if s.vulns.len() == 1 { " vulnerability" } @else { " vulnerabilities" } ", worst " (s.worst().unwrap_or(Severity::Unknown).as_str()) } {
                        @for sev in Severity::ALL.iter().rev() {
                            @if let Some(n) = counts.get(sev) {
                                span class=(class(*sev)) title={ (n) " " (sev.as_str()) } { (n) " " (sev.as_str()) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A manifest page's tabs.
pub fn tabs(repo: &str, digest: &str, current: &str) -> Markup {
    let base = format!("/repository/{repo}/manifest/{digest}");
    html! {
        nav.tabs aria-label="Manifest" {
            @for (tab, label) in [("", "Overview"), ("security", "Security"), ("packages", "Packages")] {
                @let href = if tab.is_empty() { base.clone() } else { format!("{base}?tab={tab}") };
                a href=(href) class=[(current == tab).then_some("current")] aria-current=[(current == tab).then_some("page")] { (label) }
            }
        }
    }
}

/// The Security or Packages tab of a manifest.
pub async fn tab(
    st: &AppState,
    page: &Page,
    repo: &str,
    digest: &berth_oci::Digest,
    which: &str,
) -> berth_core::Result<Markup> {
    let report = Content::new(&st.registry, &st.auth)
        .security(page.actor.as_ref(), repo, digest)
        .await?;
    let status = html! {
        @if report.status != ScanStatus::Scanned {
            p.notice role="status" {
                @match report.status {
                    ScanStatus::Queued => { "Its layers are being indexed; reload in a moment." }
                    ScanStatus::Failed => { "A layer could not be indexed." }
                    ScanStatus::ManifestLayerTooLarge => { "A layer is larger than SECURITY_SCANNER_V4_INDEX_MAX_LAYER_SIZE and was not indexed." }
                    _ => { "This manifest holds no image layers to scan." }
                }
            }
        }
        @for n in &report.notes { p.notice { (n) } }
        @if let Some(os) = &report.os {
            p { "Operating system: " strong { (os.pretty_name.clone().unwrap_or_else(|| format!("{} {}", os.id, os.version_id.clone().unwrap_or_default()))) } }
        }
    };
    let base = format!("/repository/{repo}/manifest/{digest}");
    if which == "packages" {
        let api = format!("/api/v1/repository/{repo}/manifest/{digest}/sbom");
        return Ok(html! {
            (status)
            p { "Download the SBOM: " a href=(api) download { "SPDX 2.3 (JSON)" } " · " a href={ (api) "?format=cyclonedx-json" } download { "CycloneDX 1.5 (JSON)" } }
            p.count role="status" { (report.features.len()) " packages" }
            @if !report.features.is_empty() {
                table.list {
                    caption.visually-hidden { "Packages found in the image" }
                    thead { tr { th scope="col" { "Package" } th scope="col" { "Version" } th scope="col" { "Kind" } th scope="col" { "Matched in" } th scope="col" { "Found in" } th scope="col" { "Added by layer" } th scope="col" { "Vulnerabilities" } } }
                    tbody {
                        @for f in &report.features {
                            tr {
                                th scope="row" { (f.package.name) @if let Some(s) = &f.package.source_name { @if *s != f.package.name { " " span.muted { "(source " (s) ")" } } } }
                                td { code { (f.package.version) } }
                                td { (serde_json::to_value(f.package.kind).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()) }
                                td { @match &f.ecosystem { Some(e) if f.data => { (e) }, Some(e) => { (e) " " span.muted { "(no data)" } }, None => { span.muted { "no feed" } } } }
                                td.muted { code { (f.path) } }
                                td { code title=(f.added_by) { (f.added_by.chars().take(19).collect::<String>()) } }
                                td { @if f.vulnerabilities.is_empty() { span.muted { "—" } } @else { a href={ (base) "?tab=security&package=" (url_encode(&f.package.name)) } { (f.vulnerabilities.len()) } } }
                            }
                        }
                    }
                }
            }
        });
    }
    // Security: one row per (package, vulnerability), filtered.
    let min = page
        .q("severity")
        .and_then(Severity::parse)
        .unwrap_or(Severity::Unknown);
    let fixable = page.q("fixable") == Some("1");
    let package = page.q("package").map(str::trim).filter(|p| !p.is_empty());
    let mut rows = Vec::new();
    for f in &report.features {
        if package.is_some_and(|p| !f.package.name.contains(p)) {
            continue;
        }
        for v in &f.vulnerabilities {
            if v.severity < min || (fixable && v.fixed_by.is_none()) {
                continue;
            }
            rows.push((f, v));
        }
    }
    rows.sort_by(|a, b| {
        b.1.severity
            .cmp(&a.1.severity)
            .then_with(|| a.1.id.cmp(&b.1.id))
    });
    let total: usize = report
        .features
        .iter()
        .map(|f| f.vulnerabilities.len())
        .sum();
    Ok(html! {
        (status)
        form.filters method="get" action=(base) {
            input type="hidden" name="tab" value="security";
            div {
                label for="sev-min" { "Severity at least" }
                select #sev-min name="severity" {
                    @for s in Severity::ALL {
                        option value=(s.as_str()) selected[s == min] { (s.as_str()) }
                    }
                }
            }
            div {
                label for="sev-pkg" { "Package contains" }
                input #sev-pkg type="search" name="package" value=[package];
            }
            div.check {
                input #sev-fix type="checkbox" name="fixable" value="1" checked[fixable];
                label for="sev-fix" { "Only with a fix" }
            }
            button type="submit" { "Apply" }
        }
        p.count role="status" { (rows.len()) " of " (total) " vulnerabilities" }
        @if rows.is_empty() {
            p.empty { @if total == 0 && report.status == ScanStatus::Scanned { "No known vulnerabilities in the data Berth has." } @else { "Nothing matches the filters." } }
        } @else {
            table.list {
                caption.visually-hidden { "Vulnerabilities of the image" }
                thead { tr { th scope="col" { "Severity" } th scope="col" { "Vulnerability" } th scope="col" { "Package" } th scope="col" { "Installed" } th scope="col" { "Fixed in" } th scope="col" { "Summary" } } }
                tbody {
                    @for (f, v) in &rows {
                        tr {
                            td { span class=(class(v.severity)) { (v.severity.as_str()) } @if let Some(s) = v.score { " " span.muted { (format!("{s:.1}")) } } }
                            th scope="row" {
                                @match v.links.first() { Some(l) => { a href=(l) rel="noopener noreferrer" { (v.id) } }, None => { (v.id) } }
                                @for a in v.aliases.iter().filter(|a| a.starts_with("CVE-")).take(3) { br; a.muted href=(link("/security/search", &[("vulnerability", a)])) { (a) } }
                            }
                            td { (f.package.name) }
                            td { code { (f.package.version) } }
                            td { @match &v.fixed_by { Some(x) => { code { (x) } }, None => { span.muted { "no fix" } } } }
                            td { (v.summary) }
                        }
                    }
                }
            }
        }
    })
}

/// `/security/search?vulnerability=…` or `?package=…[&version=…]`.
pub async fn search_page(State(st): State<Arc<AppState>>, req: Request) -> Response {
    let page = Page::of(&st, &req).await;
    let vuln = page
        .q("vulnerability")
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let pkg = page.q("package").map(str::trim).filter(|s| !s.is_empty());
    let version = page.q("version").map(str::trim).filter(|s| !s.is_empty());
    let found = match (vuln, pkg) {
        (None, None) => None,
        (v, p) => {
            let p = if v.is_some() {
                None
            } else {
                p.map(|p| (p, version))
            };
            match Content::new(&st.registry, &st.auth)
                .find_images(page.actor.as_ref(), v, p, 200)
                .await
            {
                Ok(f) => Some(f),
                Err(e) => return page.error(e),
            }
        }
    };
    page.render(
        StatusCode::OK,
        "Vulnerability search",
        &[Crumb::new("Vulnerability search", "/security/search")],
        html! {
            h1 { "Which images…" }
            form.filters method="get" action="/security/search" {
                div {
                    label for="vs-vuln" { "are affected by (CVE-…, GHSA-…, any advisory id)" }
                    input #vs-vuln type="search" name="vulnerability" value=[vuln] spellcheck="false";
                }
                div {
                    label for="vs-pkg" { "or contain the package" }
                    input #vs-pkg type="search" name="package" value=[pkg] spellcheck="false";
                }
                div {
                    label for="vs-ver" { "at version (optional)" }
                    input #vs-ver type="search" name="version" value=[version] spellcheck="false";
                }
                button type="submit" { "Search" }
            }
            @if let Some((hits, more)) = &found {
                p.count role="status" { (hits.len()) @if *more { "+" } " images" }
                @if hits.is_empty() {
                    p.empty { "No image you may see." }
                } @else {
                    table.list {
                        caption.visually-hidden { "Images found" }
                        thead { tr { th scope="col" { "Repository" } th scope="col" { "Tags" } th scope="col" { "Manifest" } th scope="col" { @if vuln.is_some() { "Severity / packages" } @else { "Package" } } } }
                        tbody {
                            @for h in hits {
                                tr {
                                    th scope="row" { a href={ "/repository/" (h.repository) } { (h.repository) } }
                                    td { @if h.tags.is_empty() { span.muted { "untagged" } } @for (i, t) in h.tags.iter().enumerate() { @if i > 0 { ", " } a href={ "/repository/" (h.repository) "/tag/" (url_encode(t)) } { (t) } } }
                                    td { a href={ "/repository/" (h.repository) "/manifest/" (h.digest) "?tab=security" } { code { (h.digest.chars().take(19).collect::<String>()) } } }
                                    td {
                                        @if let Some(v) = &h.vulnerability {
                                            span class=(class(v.severity)) { (v.severity.as_str()) } " " (v.packages.join(", "))
                                        }
                                        @for p in &h.packages { code { (p.name) " " (p.version) } " " }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}
