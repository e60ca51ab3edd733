//! npm: `node_modules/**/package.json`, and `package-lock.json` (lockfileVersion 2/3's
//! `packages` map, version 1's nested `dependencies`).

use serde::Deserialize;
use serde_json::Value;

use super::{Kind, Package};

#[derive(Deserialize)]
struct PackageJson {
    name: Option<String>,
    version: Option<String>,
}

/// A package.json that names a package; the many without name or version (`{"type":"module"}`
/// in a package's subdirectories) are not packages.
pub(super) fn parse_package_json(data: &[u8]) -> Option<Package> {
    let pj: PackageJson = serde_json::from_slice(data).ok()?;
    let name = pj.name.filter(|n| !n.is_empty())?;
    let version = pj.version.filter(|v| !v.is_empty())?;
    Some(Package::new(Kind::Npm, name, version))
}

/// `None` when it is not JSON.
pub(super) fn parse_lock(data: &[u8]) -> Option<Vec<Package>> {
    let lock: Value = serde_json::from_slice(data).ok()?;
    let mut out = Vec::new();
    if let Some(packages) = lock.get("packages").and_then(Value::as_object) {
        for (key, entry) in packages {
            // "" is the project itself; keys without node_modules/ are workspace members.
            let Some(idx) = key.rfind("node_modules/") else {
                continue;
            };
            if entry.get("link").and_then(Value::as_bool) == Some(true) {
                continue;
            }
            let name = entry
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or(&key[idx + "node_modules/".len()..]);
            if let Some(version) = entry.get("version").and_then(Value::as_str)
                && !name.is_empty()
                && !version.is_empty()
            {
                out.push(Package::new(Kind::Npm, name, version));
            }
        }
    } else if let Some(deps) = lock.get("dependencies") {
        v1(deps, 0, &mut out);
    }
    Some(out)
}

/// lockfileVersion 1: `dependencies: {name: {version, dependencies: {…}}}`.
fn v1(deps: &Value, depth: u32, out: &mut Vec<Package>) {
    let Some(deps) = deps.as_object() else {
        return;
    };
    if depth > 64 {
        return;
    }
    for (name, dep) in deps {
        if let Some(version) = dep.get("version").and_then(Value::as_str)
            // `file:` and git URLs are not registry versions
            && !version.contains(':')
        {
            out.push(Package::new(Kind::Npm, name.as_str(), version));
        }
        if let Some(nested) = dep.get("dependencies") {
            v1(nested, depth + 1, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_json() {
        let p = parse_package_json(br#"{"name":"lodash","version":"4.17.20","main":"x"}"#);
        assert_eq!(
            p.map(|p| (p.name, p.version)),
            Some(("lodash".into(), "4.17.20".into()))
        );
        assert_eq!(parse_package_json(br#"{"type":"module"}"#), None);
        assert_eq!(parse_package_json(b"not json"), None);
    }

    #[test]
    fn lock_v3_and_v1() {
        let v3 = br#"{"lockfileVersion":3,"packages":{
            "":{"name":"app","dependencies":{"lodash":"^4"}},
            "node_modules/lodash":{"version":"4.17.20"},
            "node_modules/a/node_modules/@s/b":{"version":"1.0.0"},
            "node_modules/mine":{"resolved":"packages/mine","link":true},
            "packages/mine":{"version":"0.0.1"}}}"#;
        let got: Vec<_> = parse_lock(v3)
            .unwrap_or_default()
            .into_iter()
            .map(|p| format!("{}@{}", p.name, p.version))
            .collect();
        assert_eq!(got, ["@s/b@1.0.0", "lodash@4.17.20"]);
        let v1 = br#"{"lockfileVersion":1,"dependencies":{"a":{"version":"1.0.0",
            "dependencies":{"b":{"version":"2.0.0"}}},"c":{"version":"file:../c"}}}"#;
        assert_eq!(parse_lock(v1).map(|p| p.len()), Some(2));
    }
}
