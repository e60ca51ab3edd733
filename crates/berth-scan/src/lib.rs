//! Berth's built-in vulnerability scanner, first part: how each ecosystem orders its versions,
//! and whether a version falls in an OSV record's affected ranges. Everything that decides
//! "is this package vulnerable" goes through [`compare`] and [`osv::is_affected`], so each
//! ecosystem's order is written once and tested against that ecosystem's own tool
//! (`tests/version_order.rs` replays tables made with dpkg, rpm, Python `packaging`, Maven and
//! apk-tools' cases).

pub mod apk;
pub mod index;
pub mod matcher;
pub mod osv;
pub mod sbom;
pub mod vulndb;

use std::cmp::Ordering;

/// A version ordering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Debian and Ubuntu (`dpkg --compare-versions`).
    Dpkg,
    /// RPM distributions: `[epoch:]version[-release]` by rpm's own `rpmvercmp`.
    Rpm,
    /// Alpine (apk-tools).
    Apk,
    /// Semantic Versioning 2.0 (npm, crates.io, OSV `SEMVER` ranges).
    Semver,
    /// Go modules: semver with a leading `v` (and Go's `+incompatible`).
    Go,
    /// Python (PEP 440).
    Pep440,
    /// Maven's `ComparableVersion`.
    Maven,
}

impl Scheme {
    /// The ordering of an OSV ecosystem name (`Debian:12`, `Alpine:v3.19`, `AlmaLinux:9`,
    /// `PyPI`, …); `None` for ecosystems Berth has no ordering for.
    pub fn of_ecosystem(ecosystem: &str) -> Option<Scheme> {
        let base = ecosystem.split(':').next().unwrap_or(ecosystem);
        Some(match base {
            "Debian" | "Ubuntu" => Scheme::Dpkg,
            "Alpine" => Scheme::Apk,
            "AlmaLinux" | "Rocky Linux" | "Red Hat" | "openSUSE" | "SUSE" | "Mageia"
            | "openEuler" | "Photon OS" | "Azure Linux" | "CBL-Mariner" | "Oracle Linux" => {
                Scheme::Rpm
            }
            "PyPI" => Scheme::Pep440,
            "npm" | "crates.io" | "NuGet" | "Hex" | "Pub" => Scheme::Semver,
            "Go" => Scheme::Go,
            "Maven" => Scheme::Maven,
            _ => return None,
        })
    }
}

/// `a` against `b` in `scheme`; `None` when either is not a version of that scheme.
pub fn compare(scheme: Scheme, a: &str, b: &str) -> Option<Ordering> {
    let (a, b) = (a.trim(), b.trim());
    match scheme {
        Scheme::Dpkg => {
            let a: debversion::Version = a.parse().ok()?;
            let b: debversion::Version = b.parse().ok()?;
            Some(a.cmp(&b))
        }
        Scheme::Rpm => Some(rpm_evr(a).cmp(&rpm_evr(b))),
        Scheme::Apk => apk::compare(a, b),
        Scheme::Semver => Some(semver(a)?.cmp(&semver(b)?)),
        Scheme::Go => Some(go(a)?.cmp(&go(b)?)),
        Scheme::Pep440 => {
            let a: pep440_rs::Version = a.parse().ok()?;
            let b: pep440_rs::Version = b.parse().ok()?;
            Some(a.cmp(&b))
        }
        Scheme::Maven => {
            if a.is_empty() || b.is_empty() {
                return None;
            }
            let a = mvn_version::ComparableVersion::new(a);
            let b = mvn_version::ComparableVersion::new(b);
            Some(a.cmp(&b))
        }
    }
}

/// An RPM `[epoch:]version[-release]`: the release follows the *last* dash, as rpm splits it
/// (the `rpm-version` crate's own parser splits at the first).
fn rpm_evr(s: &str) -> rpm_version::Evr<'_> {
    let (epoch, vr) = match s.split_once(':') {
        Some((e, vr)) if !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit()) => (e, vr),
        _ => ("", s),
    };
    let (version, release) = vr.rsplit_once('-').unwrap_or((vr, ""));
    rpm_version::Evr::new(epoch, version, release)
}

fn semver(s: &str) -> Option<semver::Version> {
    semver::Version::parse(s).ok()
}

/// Go's module versions: `v1.2.3`, pseudo-versions, `+incompatible`; the toolchain's
/// `go1.21.5` too (as OSV's Go stdlib records write it, `1.21.5`).
fn go(s: &str) -> Option<semver::Version> {
    let s = s.strip_prefix("go").unwrap_or(s);
    let s = s.strip_prefix('v').unwrap_or(s);
    let s = s.strip_suffix("+incompatible").unwrap_or(s);
    semver::Version::parse(s).ok().or_else(|| {
        // Go toolchains name `1.21` (no patch) and `1.21rc2`.
        let (core, pre) = match s.find(|c: char| c.is_ascii_alphabetic()) {
            Some(i) => (&s[..i], Some(&s[i..])),
            None => (s, None),
        };
        let mut parts: Vec<&str> = core.split('.').collect();
        while parts.len() < 3 {
            parts.push("0");
        }
        let text = match pre {
            Some(p) => format!("{}-{p}", parts.join(".")),
            None => parts.join("."),
        };
        semver::Version::parse(&text).ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering::{Equal, Greater, Less};

    #[test]
    fn ecosystems_name_their_ordering() {
        assert_eq!(Scheme::of_ecosystem("Debian:12"), Some(Scheme::Dpkg));
        assert_eq!(Scheme::of_ecosystem("Ubuntu:22.04:LTS"), Some(Scheme::Dpkg));
        assert_eq!(Scheme::of_ecosystem("Alpine:v3.19"), Some(Scheme::Apk));
        assert_eq!(Scheme::of_ecosystem("Rocky Linux:9"), Some(Scheme::Rpm));
        assert_eq!(Scheme::of_ecosystem("crates.io"), Some(Scheme::Semver));
        assert_eq!(Scheme::of_ecosystem("Bitnami"), None);
    }

    #[test]
    fn go_versions_and_toolchains() {
        assert_eq!(compare(Scheme::Go, "v1.2.3", "1.2.10"), Some(Less));
        assert_eq!(compare(Scheme::Go, "go1.21.5", "1.21.4"), Some(Greater));
        assert_eq!(compare(Scheme::Go, "1.21", "1.21.0"), Some(Equal));
        assert_eq!(compare(Scheme::Go, "1.21rc2", "1.21.0"), Some(Less));
        assert_eq!(
            compare(Scheme::Go, "v2.0.0+incompatible", "v1.9.0"),
            Some(Greater)
        );
        assert_eq!(compare(Scheme::Go, "latest", "1.0.0"), None);
    }

    #[test]
    fn rpm_splits_the_release_at_the_last_dash() {
        assert_eq!(
            compare(Scheme::Rpm, "1:1.0-1", "2.0-1"),
            Some(Greater),
            "epoch first"
        );
        assert_eq!(compare(Scheme::Rpm, "1.0-1.el9", "1.0-2.el9"), Some(Less));
    }
}
