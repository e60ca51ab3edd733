//! Vulnerability reports through Quay's API (`repository/{repo}/manifest/{ref}/security`), in
//! the JSON Quay builds from Clair's reports, field for field; Berth adds `Berth` (the OS found,
//! notes on what the data cannot say, an index's platforms) beside Quay's fields.

use super::{Created, Ctx, Reply, RestError, Route, route};
use crate::AppState;
use berth_core::content::Content;
use berth_core::scan::{Feature, SecurityReport};
use berth_oci::Digest;
use serde::Serialize;
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
    let digest = manifest_digest(&ctx)?;
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

fn manifest_digest(ctx: &Ctx) -> Res<Digest> {
    let d = ctx.p("manifestref");
    d.parse::<Digest>()
        .map_err(|_| RestError::bad(format!("{d:?} is not a manifest digest (sha256:...)")))
}

async fn sbom(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<Sbom>> {
    let f = format(&ctx)?;
    let doc = Content::new(&st.registry, &st.auth)
        .sbom(
            ctx.caller.as_ref(),
            ctx.p("repository"),
            &manifest_digest(&ctx)?,
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
            &manifest_digest(&ctx)?,
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
