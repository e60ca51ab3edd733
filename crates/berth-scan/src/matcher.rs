//! Which vulnerability records can name an installed package: the OSV ecosystem and package
//! name a package is looked up by, and the version and order it is compared in. OS packages are
//! looked up by their *source* package within their distribution release (`Debian:12`,
//! `Ubuntu:22.04:LTS`, `Alpine:v3.19`), as those feeds key their records; RPM distributions'
//! feeds (AlmaLinux, Rocky) name binary packages, and are looked up so.

use crate::Scheme;
use crate::index::{Kind, OsRelease, Package};

/// How to look a package up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// OSV ecosystems to look in, most specific first.
    pub ecosystems: Vec<String>,
    /// The package's name there.
    pub name: String,
    /// The version to compare.
    pub version: String,
    pub scheme: Scheme,
}

/// `8.10` → `8`; `3.19.1` → `3.19` (with `keep` parts).
fn release(version: &str, keep: usize) -> String {
    version.split('.').take(keep).collect::<Vec<_>>().join(".")
}

/// The ecosystems an OS package of `kind` on `os` belongs to; empty when Berth knows no feed
/// for that distribution.
pub fn os_ecosystems(os: Option<&OsRelease>, kind: Kind) -> Vec<String> {
    let Some(os) = os else {
        return Vec::new();
    };
    let version = os.version_id.as_deref().unwrap_or("");
    let id = os.id.as_str();
    match (kind, id) {
        (Kind::Dpkg, "debian") => {
            if version.is_empty() {
                // Testing and unstable carry no VERSION_ID.
                vec!["Debian".into()]
            } else {
                vec![format!("Debian:{}", release(version, 1)), "Debian".into()]
            }
        }
        (Kind::Dpkg, "ubuntu") => {
            let mut v = Vec::new();
            let lts = os.pretty_name.as_deref().is_some_and(|p| p.contains("LTS"));
            if lts {
                v.push(format!("Ubuntu:{version}:LTS"));
                v.push(format!("Ubuntu:Pro:{version}:LTS"));
            }
            v.push(format!("Ubuntu:{version}"));
            v
        }
        (Kind::Apk, "alpine") => vec![format!("Alpine:v{}", release(version, 2)), "Alpine".into()],
        (Kind::Apk, "wolfi") => vec!["Wolfi".into()],
        (Kind::Apk, "chainguard") => vec!["Chainguard".into()],
        (Kind::Rpm, "almalinux") => vec![format!("AlmaLinux:{}", release(version, 1))],
        (Kind::Rpm, "rocky") => vec![format!("Rocky Linux:{}", release(version, 1))],
        (Kind::Rpm, "mariner") => vec![
            format!("CBL-Mariner:{}", release(version, 2)),
            format!("Azure Linux:{}", release(version, 2)),
        ],
        (Kind::Rpm, "azurelinux") => vec![format!("Azure Linux:{}", release(version, 2))],
        (Kind::Rpm, "opensuse-leap" | "opensuse-tumbleweed" | "sles" | "sle-micro") => os
            .pretty_name
            .iter()
            .map(|p| {
                if id.starts_with("opensuse") {
                    format!("openSUSE:{p}")
                } else {
                    format!("SUSE:{p}")
                }
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// How `p` (installed on `os`) is looked up; `None` when no feed can name it.
pub fn target(os: Option<&OsRelease>, p: &Package) -> Option<Target> {
    let lang = |eco: &str, scheme: Scheme, name: String| Target {
        ecosystems: vec![eco.to_string()],
        name,
        version: p.version.clone(),
        scheme,
    };
    Some(match p.kind {
        Kind::Dpkg | Kind::Apk => {
            let ecosystems = os_ecosystems(os, p.kind);
            if ecosystems.is_empty() {
                return None;
            }
            Target {
                ecosystems,
                name: p.source_name.clone().unwrap_or_else(|| p.name.clone()),
                // Debian's binary NMUs (`+b1`) are not in the feed's source versions.
                version: if p.kind == Kind::Dpkg {
                    p.source_version
                        .clone()
                        .unwrap_or_else(|| p.version.clone())
                } else {
                    p.version.clone()
                },
                scheme: if p.kind == Kind::Dpkg {
                    Scheme::Dpkg
                } else {
                    Scheme::Apk
                },
            }
        }
        Kind::Rpm => {
            let ecosystems = os_ecosystems(os, p.kind);
            if ecosystems.is_empty() {
                return None;
            }
            Target {
                ecosystems,
                name: p.name.clone(),
                version: p.version.clone(),
                scheme: Scheme::Rpm,
            }
        }
        Kind::Python => lang(
            "PyPI",
            Scheme::Pep440,
            crate::vulndb::normalize_pypi(&p.name),
        ),
        Kind::Npm => lang("npm", Scheme::Semver, p.name.clone()),
        Kind::Cargo => lang("crates.io", Scheme::Semver, p.name.clone()),
        Kind::Go => lang("Go", Scheme::Go, p.name.clone()),
        Kind::GoStdlib => lang("Go", Scheme::Go, "stdlib".into()),
        Kind::Maven => lang("Maven", Scheme::Maven, p.name.clone()),
        Kind::Gem => lang("RubyGems", Scheme::Semver, p.name.clone()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(id: &str, version: &str, pretty: &str) -> OsRelease {
        OsRelease {
            id: id.into(),
            version_id: Some(version.into()),
            pretty_name: Some(pretty.into()),
            ..OsRelease::default()
        }
    }

    fn pkg(kind: Kind, name: &str, version: &str, source: Option<(&str, &str)>) -> Package {
        Package {
            kind,
            name: name.into(),
            version: version.into(),
            source_name: source.map(|s| s.0.to_string()),
            source_version: source.map(|s| s.1.to_string()),
            arch: None,
        }
    }

    #[test]
    fn os_packages_by_source_within_their_release() {
        let deb = os("debian", "12", "Debian GNU/Linux 12 (bookworm)");
        let t = target(
            Some(&deb),
            &pkg(
                Kind::Dpkg,
                "bash",
                "5.2.15-2+b13",
                Some(("bash", "5.2.15-2")),
            ),
        )
        .expect("target");
        assert_eq!(t.ecosystems[0], "Debian:12");
        assert_eq!(t.version, "5.2.15-2");
        let alpine = os("alpine", "3.11.5", "Alpine Linux v3.11");
        let t = target(
            Some(&alpine),
            &pkg(
                Kind::Apk,
                "libcrypto1.1",
                "1.1.1d-r3",
                Some(("openssl", "1.1.1d-r3")),
            ),
        )
        .expect("target");
        assert_eq!(t.ecosystems, vec!["Alpine:v3.11", "Alpine"]);
        assert_eq!(t.name, "openssl");
        let ubuntu = os("ubuntu", "22.04", "Ubuntu 22.04.4 LTS");
        assert_eq!(
            os_ecosystems(Some(&ubuntu), Kind::Dpkg)[0],
            "Ubuntu:22.04:LTS"
        );
        let alma = os("almalinux", "9.4", "AlmaLinux 9.4");
        let t = target(
            Some(&alma),
            &pkg(Kind::Rpm, "openssl-libs", "1:3.0.7-27.el9", None),
        )
        .expect("target");
        assert_eq!(t.ecosystems, vec!["AlmaLinux:9"]);
        assert!(target(None, &pkg(Kind::Dpkg, "bash", "5", None)).is_none());
    }

    #[test]
    fn language_packages_by_their_registry() {
        let t = target(None, &pkg(Kind::Python, "Requests", "2.30.0", None)).expect("t");
        assert_eq!(
            (t.ecosystems[0].as_str(), t.name.as_str()),
            ("PyPI", "requests")
        );
        let t = target(None, &pkg(Kind::GoStdlib, "stdlib", "1.21.3", None)).expect("t");
        assert_eq!(t.name, "stdlib");
    }
}
