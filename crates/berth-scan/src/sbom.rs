//! Software bills of materials of an image's packages: SPDX 2.3 JSON and CycloneDX 1.5 JSON,
//! each package with its package URL (purl), the file it was read from and the layer that added
//! it.

use crate::index::{Installed, Kind, OsRelease};
use serde_json::{Value, json};

/// What the document describes.
pub struct Subject<'a> {
    /// `repository@digest`.
    pub name: &'a str,
    pub digest: &'a str,
    /// A URL prefix unique to this registry (SPDX's `documentNamespace`).
    pub namespace: &'a str,
    /// RFC 3339, UTC.
    pub created: &'a str,
    /// A fresh UUID.
    pub serial: &'a str,
    pub tool_version: &'a str,
}

/// The purl of `p` on `os`, e.g. `pkg:pypi/requests@2.30.0`, `pkg:deb/debian/bash@5.2.15-2?distro=debian-12`.
pub fn purl(p: &Installed, os: Option<&OsRelease>) -> Option<String> {
    let pkg = &p.package;
    let distro = os.map(|o| format!("{}-{}", o.id, o.version_id.as_deref().unwrap_or("unknown")));
    let (ty, namespace, name): (&str, Option<String>, String) = match pkg.kind {
        Kind::Python => ("pypi", None, crate::vulndb::normalize_pypi(&pkg.name)),
        Kind::Npm => match pkg.name.split_once('/') {
            Some((scope, n)) if scope.starts_with('@') => {
                ("npm", Some(scope.to_string()), n.to_string())
            }
            _ => ("npm", None, pkg.name.clone()),
        },
        Kind::Cargo => ("cargo", None, pkg.name.clone()),
        Kind::Go | Kind::GoStdlib => match pkg.name.rsplit_once('/') {
            Some((ns, n)) => ("golang", Some(ns.to_string()), n.to_string()),
            None => ("golang", None, pkg.name.clone()),
        },
        Kind::Maven => match pkg.name.split_once(':') {
            Some((g, a)) => ("maven", Some(g.to_string()), a.to_string()),
            None => ("maven", None, pkg.name.clone()),
        },
        Kind::Gem => ("gem", None, pkg.name.clone()),
        Kind::Dpkg => ("deb", os.map(|o| o.id.clone()), pkg.name.clone()),
        Kind::Apk => ("apk", os.map(|o| o.id.clone()), pkg.name.clone()),
        Kind::Rpm => ("rpm", os.map(|o| o.id.clone()), pkg.name.clone()),
    };
    let mut u = packageurl::PackageUrl::new(ty, name.as_str()).ok()?;
    if let Some(ns) = &namespace {
        u.with_namespace(ns.as_str()).ok()?;
    }
    u.with_version(pkg.version.as_str()).ok()?;
    if matches!(pkg.kind, Kind::Dpkg | Kind::Apk | Kind::Rpm) {
        if let Some(a) = &pkg.arch {
            u.add_qualifier("arch", a.as_str()).ok()?;
        }
        if let Some(d) = &distro {
            u.add_qualifier("distro", d.as_str()).ok()?;
        }
    }
    Some(u.to_string())
}

fn spdx_id(i: usize) -> String {
    format!("SPDXRef-Package-{i}")
}

/// SPDX 2.3, JSON.
pub fn spdx(s: &Subject<'_>, os: Option<&OsRelease>, packages: &[Installed]) -> Value {
    let mut pkgs = vec![json!({
        "name": s.name,
        "SPDXID": "SPDXRef-Image",
        "versionInfo": s.digest,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "primaryPackagePurpose": "CONTAINER",
        "checksums": s.digest.strip_prefix("sha256:").map(|h| vec![json!({"algorithm": "SHA256", "checksumValue": h})]).unwrap_or_default(),
    })];
    let mut rels = vec![json!({
        "spdxElementId": "SPDXRef-DOCUMENT",
        "relationshipType": "DESCRIBES",
        "relatedSpdxElement": "SPDXRef-Image",
    })];
    for (i, p) in packages.iter().enumerate() {
        let mut v = json!({
            "name": p.package.name,
            "SPDXID": spdx_id(i),
            "versionInfo": p.package.version,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "sourceInfo": format!("read from {} in layer {}", p.path, p.added_by),
        });
        if let Some(u) = purl(p, os) {
            v["externalRefs"] = json!([{
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": u,
            }]);
        }
        pkgs.push(v);
        rels.push(json!({
            "spdxElementId": "SPDXRef-Image",
            "relationshipType": "CONTAINS",
            "relatedSpdxElement": spdx_id(i),
        }));
    }
    json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": s.name,
        "documentNamespace": format!("{}/{}", s.namespace.trim_end_matches('/'), s.serial),
        "creationInfo": {
            "created": s.created,
            "creators": [format!("Tool: berth-{}", s.tool_version)],
        },
        "packages": pkgs,
        "relationships": rels,
    })
}

/// CycloneDX 1.5, JSON.
pub fn cyclonedx(s: &Subject<'_>, os: Option<&OsRelease>, packages: &[Installed]) -> Value {
    let mut components: Vec<Value> = Vec::new();
    if let Some(o) = os {
        components.push(json!({
            "type": "operating-system",
            "bom-ref": "os",
            "name": o.id,
            "version": o.version_id,
            "description": o.pretty_name,
        }));
    }
    for (i, p) in packages.iter().enumerate() {
        let mut c = json!({
            "type": "library",
            "bom-ref": format!("pkg-{i}"),
            "name": p.package.name,
            "version": p.package.version,
            "properties": [
                {"name": "berth:package:kind", "value": p.package.kind},
                {"name": "berth:path", "value": p.path},
                {"name": "berth:layer", "value": p.added_by},
            ],
        });
        if let Some(u) = purl(p, os) {
            c["purl"] = json!(u);
        }
        components.push(c);
    }
    json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": format!("urn:uuid:{}", s.serial),
        "version": 1,
        "metadata": {
            "timestamp": s.created,
            "tools": {"components": [{"type": "application", "name": "berth", "version": s.tool_version}]},
            "component": {
                "type": "container",
                "bom-ref": "image",
                "name": s.name,
                "version": s.digest,
            },
        },
        "components": components,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::Package;

    fn installed(kind: Kind, name: &str, version: &str) -> Installed {
        Installed {
            package: Package {
                kind,
                name: name.into(),
                version: version.into(),
                source_name: None,
                source_version: None,
                arch: Some("amd64".into()),
            },
            path: "p".into(),
            added_by: "sha256:l".into(),
        }
    }

    #[test]
    fn package_urls() {
        let deb = OsRelease {
            id: "debian".into(),
            version_id: Some("12".into()),
            ..OsRelease::default()
        };
        assert_eq!(
            purl(&installed(Kind::Python, "Foo_Bar", "1.0"), None).as_deref(),
            Some("pkg:pypi/foo-bar@1.0")
        );
        assert_eq!(
            purl(&installed(Kind::Npm, "@types/node", "20.1.0"), None).as_deref(),
            Some("pkg:npm/%40types/node@20.1.0")
        );
        assert_eq!(
            purl(&installed(Kind::Dpkg, "bash", "5.2.15-2+b13"), Some(&deb)).as_deref(),
            Some("pkg:deb/debian/bash@5.2.15-2%2Bb13?arch=amd64&distro=debian-12")
        );
        assert_eq!(
            purl(
                &installed(Kind::Maven, "org.apache.maven:maven-artifact", "3.8.7"),
                None
            )
            .as_deref(),
            Some("pkg:maven/org.apache.maven/maven-artifact@3.8.7")
        );
        assert_eq!(
            purl(&installed(Kind::Go, "golang.org/x/sys", "v0.1.0"), None).as_deref(),
            Some("pkg:golang/golang.org/x/sys@v0.1.0")
        );
    }
}
