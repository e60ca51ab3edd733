//! Vulnerability reports through Quay's API (`repository/{repo}/manifest/{ref}/security`), in
//! the JSON Quay builds from Clair's reports, field for field; Berth adds `Berth` (the OS found,
//! notes on what the data cannot say, an index's platforms) beside Quay's fields.

use super::{Created, Ctx, Done, Reply, RestError, Route, done, route};
use crate::AppState;
use berth_core::content::Content;
use berth_core::scan::{Feature, SecurityReport};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::Arc;
use utoipa::ToSchema;

type Res<T> = Result<T, RestError>;

pub fn routes() -> Vec<Route> {
    vec![
        route!(GET "/api/v1/repository/{repository}/manifest/{manifestref}/security", "A manifest's vulnerability report: its packages (Features), each with the layer that added it and, with vulnerabilities=true, the vulnerabilities the imported data names for it", "repo:read",
            security() -> Reply<Security>, query &["vulnerabilities"]),
        route!(GET "/api/v1/repository/{repository}/manifest/{manifestref}/sbom", "A scanned manifest's software bill of materials: format=spdx-json (SPDX 2.3, the default) or cyclonedx-json (CycloneDX 1.5); 409 while its layers are not indexed", "repo:read",
            sbom() -> Reply<Sbom>, query &["format"]),
        route!(POST "/api/v1/repository/{repository}/manifest/{manifestref}/sbom", "Store the manifest's SBOM in the repository as an OCI artifact whose subject is the manifest (listed by the referrers API)", "repo:write",
            store_sbom() -> Created<StoredSbom>, query &["format"]),
        route!(GET "/api/v1/vulnerabilities", "Registry-wide: the images affected by a vulnerability (vulnerability=CVE-…, GHSA-…, any record id or alias) or holding a package (package=NAME[&version=V]), with the tags that carry each, among the repositories the caller may read", "repo:read",
            find() -> Reply<Found>, query &["vulnerability", "package", "version", "limit"]),
        route!(GET "/api/v1/organization/{orgname}/securitypolicy", "The organization's security policy (members may read it)", "org:admin",
            org_policy_get() -> Reply<Policy>),
        route!(PUT "/api/v1/organization/{orgname}/securitypolicy", "Set the organization's security policy: pulls (block_pull) or pushes (block_push) of images with vulnerabilities at or above min_severity are refused, fixable ones only with only_fixable, except the allowlist ids", "org:admin",
            org_policy_put(PolicyBody) -> Reply<Policy>),
        route!(DELETE "/api/v1/organization/{orgname}/securitypolicy", "Remove the organization's security policy", "org:admin",
            org_policy_delete() -> Done),
        route!(GET "/api/v1/user/securitypolicy", "The caller's own namespace's security policy", "user:read",
            user_policy_get() -> Reply<Policy>),
        route!(PUT "/api/v1/user/securitypolicy", "Set the caller's own namespace's security policy", "user:admin",
            user_policy_put(PolicyBody) -> Reply<Policy>),
        route!(DELETE "/api/v1/user/securitypolicy", "Remove the caller's own namespace's security policy", "user:admin",
            user_policy_delete() -> Done),
    ]
}

/// Quay's security answer.
#[derive(Serialize, ToSchema)]
pub struct Security {
    /// `queued`, `scanned`, `failed`, `unsupported` or `manifest_layer_too_large`.
    pub status: String,
    /// `{"Layer": {...}}` once scanned, else null.
    #[schema(value_type = Object)]
    pub data: Value,
    /// Berth's additions: the OS, notes, an index's platforms, the data's extent.
    #[serde(rename = "Berth")]
    #[schema(value_type = Object)]
    pub berth: Value,
}

fn truthy(v: Option<&str>) -> bool {
    matches!(
        v.map(|s| s.trim().to_ascii_lowercase()).as_deref(),
        Some("true" | "1" | "yes" | "on")
    )
}

/// `CVE-YYYY-NNNN…` names in `text`, sorted and unique (Quay takes them from the links).
fn cve_ids(texts: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for t in texts {
        let b = t.as_bytes();
        let mut i = 0;
        while let Some(pos) = t[i..].find("CVE-") {
            let start = i + pos;
            let mut j = start + 4;
            let year = b[j..].iter().take_while(|c| c.is_ascii_digit()).count();
            j += year;
            if year == 4 && b.get(j) == Some(&b'-') {
                let n = b[j + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
                if (4..=7).contains(&n) {
                    out.push(t[start..j + 1 + n].to_string());
                }
                j += 1 + n;
            }
            i = j.min(t.len());
        }
    }
    out.sort();
    out.dedup();
    out
}

fn feature_json(f: &Feature, os: &Value, with_vulns: bool) -> Value {
    let mut scores: Vec<f64> = Vec::new();
    let mut cves_from: Vec<String> = Vec::new();
    let mut vulns = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for v in &f.vulnerabilities {
        if !seen.insert(v.id.clone()) {
            continue;
        }
        if let Some(s) = v.score {
            scores.push(s);
        }
        // Quay's Link is Clair's links string: the advisory first, then the aliases' pages.
        let mut links = v.links.clone();
        for a in &v.aliases {
            if a.starts_with("CVE-") {
                let url = format!("https://nvd.nist.gov/vuln/detail/{a}");
                if !links.contains(&url) {
                    links.push(url);
                }
            }
        }
        cves_from.push(links.join(" "));
        cves_from.push(v.aliases.join(" "));
        cves_from.push(v.id.clone());
        let description = if v.details.is_empty() {
            v.summary.clone()
        } else {
            v.details.clone()
        };
        let nvd = match v.score {
            Some(s) if v.vector.starts_with("CVSS:3") => {
                json!({"CVSSv3": {"Vectors": v.vector, "Score": s}})
            }
            _ => json!({}),
        };
        vulns.push(json!({
            "Severity": v.severity.as_str(),
            "NamespaceName": v.ecosystem,
            "Link": links.join(" "),
            "FixedBy": v.fixed_by.clone().unwrap_or_default(),
            "Description": description,
            "Name": v.id,
            "Metadata": {
                "UpdatedBy": v.source,
                "RepoName": Value::Null,
                "RepoLink": Value::Null,
                "DistroName": os["Name"].clone(),
                "DistroVersion": os["Version"].clone(),
                "NVD": nvd,
            },
        }));
    }
    let cve_texts: Vec<&str> = cves_from.iter().map(String::as_str).collect();
    let mut out = json!({
        "Name": f.package.name,
        "VersionFormat": "",
        "NamespaceName": f.ecosystem.clone().unwrap_or_default(),
        "AddedBy": f.added_by,
        "Version": f.package.version,
        "BaseScores": scores,
        "CVEIds": cve_ids(&cve_texts),
    });
    if with_vulns {
        out["Vulnerabilities"] = Value::Array(vulns);
    }
    // Berth's additions to a feature.
    out["Kind"] = json!(f.package.kind);
    out["Path"] = json!(f.path);
    if let Some(s) = &f.package.source_name {
        out["SourceName"] = json!(s);
    }
    out["DataAvailable"] = json!(f.data);
    out
}

pub fn render(r: &SecurityReport, with_vulns: bool) -> Security {
    let os = match &r.os {
        Some(o) => json!({"Name": o.id, "Version": o.version_id, "PrettyName": o.pretty_name}),
        None => json!({"Name": Value::Null, "Version": Value::Null}),
    };
    let data = if r.status == berth_core::scan::ScanStatus::Scanned {
        json!({"Layer": {
            "Name": r.manifest,
            "ParentName": "",
            "NamespaceName": "",
            "IndexedByVersion": 4,
            "Features": r.features.iter().map(|f| feature_json(f, &os, with_vulns)).collect::<Vec<_>>(),
        }})
    } else {
        Value::Null
    };
    Security {
        status: r.status.as_str().to_string(),
        data,
        berth: json!({
            "OperatingSystem": r.os.as_ref().map(|_| os.clone()),
            "Notes": r.notes,
            "Platforms": r.platforms.iter().map(|(d, p, s)| json!({"digest": d, "platform": p, "status": s.as_str()})).collect::<Vec<_>>(),
            "VulnerabilityData": {"sources": r.sources, "records": r.records},
        }),
    }
}

async fn security(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<Security>> {
    let digest = super::labels::digest(&ctx)?;
    let report = Content::new(&st.registry, &st.auth)
        .security(ctx.caller.as_ref(), ctx.p("repository"), &digest)
        .await?;
    Ok(Reply::new(render(
        &report,
        truthy(ctx.q("vulnerabilities")),
    )))
}

/// An SBOM document (SPDX or CycloneDX JSON, as asked).
#[derive(Serialize, ToSchema)]
pub struct Sbom {
    /// `SPDX-2.3` (SPDX documents).
    #[serde(rename = "spdxVersion", skip_serializing_if = "Option::is_none")]
    pub spdx_version: Option<String>,
    /// `CycloneDX` (CycloneDX documents).
    #[serde(rename = "bomFormat", skip_serializing_if = "Option::is_none")]
    pub bom_format: Option<String>,
}

/// Where a stored SBOM went.
#[derive(Serialize, ToSchema)]
pub struct StoredSbom {
    /// The artifact manifest's digest.
    pub digest: String,
    /// `application/spdx+json` or `application/vnd.cyclonedx+json`.
    pub artifact_type: String,
}

fn format(ctx: &Ctx) -> Res<berth_core::scan::SbomFormat> {
    let f = ctx.q("format").unwrap_or("");
    berth_core::scan::SbomFormat::parse(f)
        .ok_or_else(|| RestError::bad(format!("format {f:?} is not spdx-json or cyclonedx-json")))
}

async fn sbom(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<Sbom>> {
    let f = format(&ctx)?;
    let doc = Content::new(&st.registry, &st.auth)
        .sbom(
            ctx.caller.as_ref(),
            ctx.p("repository"),
            &super::labels::digest(&ctx)?,
            f,
        )
        .await?;
    let body = serde_json::to_vec(&doc).map_err(|e| RestError::new(500, e.to_string()))?;
    let resp = axum::response::Response::builder()
        .header(axum::http::header::CONTENT_TYPE, f.media_type())
        .body(axum::body::Body::from(body))
        .map_err(|e| RestError::new(500, e.to_string()))?;
    Ok(Reply::raw(resp))
}

async fn store_sbom(st: Arc<AppState>, ctx: Ctx) -> Res<Created<StoredSbom>> {
    let f = format(&ctx)?;
    let actor = ctx.actor()?;
    let repo = ctx.p("repository");
    let d = Content::new(&st.registry, &st.auth)
        .store_sbom(
            berth_core::Caller::new(actor, ctx.ip.as_deref()),
            repo,
            &super::labels::digest(&ctx)?,
            f,
        )
        .await?;
    let mut reply = Reply::new(StoredSbom {
        digest: d.to_string(),
        artifact_type: f.media_type().to_string(),
    });
    if let Ok(v) = axum::http::HeaderValue::from_str(&format!("/v2/{repo}/manifests/{d}")) {
        reply = reply.header(axum::http::header::LOCATION, v);
    }
    Ok(reply)
}

/// A security policy as the API takes it.
#[derive(Deserialize, ToSchema)]
pub struct PolicyBody {
    /// Negligible, Low, Medium, High or Critical.
    pub min_severity: String,
    /// Refuse pulls (default true).
    pub block_pull: Option<bool>,
    /// Refuse pushes (default false); a push is then indexed before it is accepted.
    pub block_push: Option<bool>,
    /// Count only vulnerabilities with a known fix (default false).
    pub only_fixable: Option<bool>,
    /// Ids (CVE-…, GHSA-…, record ids) that never count.
    pub allowlist: Option<Vec<String>>,
}

/// A namespace's security policy.
#[derive(Serialize, ToSchema)]
pub struct Policy {
    pub namespace: String,
    pub min_severity: String,
    pub block_pull: bool,
    pub block_push: bool,
    pub only_fixable: bool,
    pub allowlist: Vec<String>,
    /// ms since the epoch.
    pub updated_at: i64,
}

impl Policy {
    fn new(ns: &str, p: &berth_core::scan::SecurityPolicy) -> Policy {
        Policy {
            namespace: ns.to_string(),
            min_severity: p.min_severity.as_str().to_string(),
            block_pull: p.block_pull,
            block_push: p.block_push,
            only_fixable: p.only_fixable,
            allowlist: p.allowlist.clone(),
            updated_at: p.updated_at,
        }
    }
}

fn policies(st: &AppState) -> berth_core::scan::SecurityPolicies<'_> {
    berth_core::scan::SecurityPolicies::new(&st.registry, &st.auth)
}

fn policy_of(b: &PolicyBody) -> Res<berth_core::scan::SecurityPolicy> {
    let min_severity = berth_core::scan::VulnSeverity::parse(&b.min_severity).ok_or_else(|| {
        RestError::bad(format!(
            "min_severity {:?} is not Negligible, Low, Medium, High or Critical",
            b.min_severity
        ))
    })?;
    Ok(berth_core::scan::SecurityPolicy {
        min_severity,
        block_pull: b.block_pull.unwrap_or(true),
        block_push: b.block_push.unwrap_or(false),
        only_fixable: b.only_fixable.unwrap_or(false),
        allowlist: b.allowlist.clone().unwrap_or_default(),
        updated_at: 0,
    })
}

async fn policy_get(st: &AppState, ctx: &Ctx, ns: &str) -> Res<Reply<Policy>> {
    match policies(st).get(ctx.actor()?, ns).await? {
        Some(p) => Ok(Reply::new(Policy::new(ns, &p))),
        None => Err(RestError::new(404, format!("{ns} has no security policy"))),
    }
}

async fn policy_put(st: &AppState, ctx: &Ctx, ns: &str, b: &PolicyBody) -> Res<Reply<Policy>> {
    let p = policy_of(b)?;
    let caller = berth_core::Caller::new(ctx.actor()?, ctx.ip.as_deref());
    let p = policies(st).set(caller, ns, &p).await?;
    Ok(Reply::new(Policy::new(ns, &p)))
}

async fn policy_delete(st: &AppState, ctx: &Ctx, ns: &str) -> Res<Done> {
    let caller = berth_core::Caller::new(ctx.actor()?, ctx.ip.as_deref());
    policies(st).delete(caller, ns).await?;
    done()
}

async fn org_policy_get(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<Policy>> {
    policy_get(&st, &ctx, ctx.p("orgname")).await
}
async fn org_policy_put(st: Arc<AppState>, ctx: Ctx, b: PolicyBody) -> Res<Reply<Policy>> {
    policy_put(&st, &ctx, ctx.p("orgname"), &b).await
}
async fn org_policy_delete(st: Arc<AppState>, ctx: Ctx) -> Res<Done> {
    policy_delete(&st, &ctx, ctx.p("orgname")).await
}
async fn user_policy_get(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<Policy>> {
    let me = ctx.actor()?.name.clone();
    policy_get(&st, &ctx, &me).await
}
async fn user_policy_put(st: Arc<AppState>, ctx: Ctx, b: PolicyBody) -> Res<Reply<Policy>> {
    let me = ctx.actor()?.name.clone();
    policy_put(&st, &ctx, &me, &b).await
}
async fn user_policy_delete(st: Arc<AppState>, ctx: Ctx) -> Res<Done> {
    let me = ctx.actor()?.name.clone();
    policy_delete(&st, &ctx, &me).await
}

/// The answer of a registry-wide search.
#[derive(Serialize, ToSchema)]
pub struct Found {
    pub results: Vec<FoundImage>,
    /// More matched than `limit` (default 100, at most 1000).
    pub truncated: bool,
}

#[derive(Serialize, ToSchema)]
pub struct FoundImage {
    pub repository: String,
    pub manifest_digest: String,
    /// Live tags on it; empty for an untagged manifest (e.g. an index's child).
    pub tags: Vec<String>,
    /// `{kind, name, version, ...}` of the package asked for.
    #[schema(value_type = Vec<Object>)]
    pub packages: Vec<Value>,
    /// For a vulnerability search: its id, severity, whether a fix is known, its aliases and
    /// the packages it was found in.
    #[schema(value_type = Object)]
    pub vulnerability: Value,
}

async fn find(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<Found>> {
    let limit = match ctx.q("limit") {
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| RestError::bad("limit is a number from 1 to 1000"))?,
        None => 100,
    };
    let package = ctx.q("package").map(|p| (p, ctx.q("version")));
    let (hits, truncated) = Content::new(&st.registry, &st.auth)
        .find_images(ctx.caller.as_ref(), ctx.q("vulnerability"), package, limit)
        .await?;
    Ok(Reply::new(Found {
        results: hits
            .into_iter()
            .map(|h| FoundImage {
                repository: h.repository,
                manifest_digest: h.digest,
                tags: h.tags,
                packages: h
                    .packages
                    .iter()
                    .map(|p| serde_json::to_value(p).unwrap_or_default())
                    .collect(),
                vulnerability: h
                    .vulnerability
                    .map(|v| {
                        json!({"id": v.id, "severity": v.severity.as_str(), "fixable": v.fixable,
                               "aliases": v.aliases, "packages": v.packages})
                    })
                    .unwrap_or(Value::Null),
            })
            .collect(),
        truncated,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cve_names_from_links() {
        assert_eq!(
            cve_ids(&[
                "https://nvd.nist.gov/vuln/detail/CVE-2023-32681 CVE-2020-26235",
                "CVE-123-1 CVE-2021-12345678 CVE-2023-32681"
            ]),
            vec!["CVE-2020-26235", "CVE-2023-32681"]
        );
    }
}
