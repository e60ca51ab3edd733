//! Whether a package version falls in an OSV record's `affected` entry: its `ranges`
//! (`ECOSYSTEM` and `SEMVER`, with `introduced`, `fixed`, `last_affected` and `limit` events)
//! and its `versions` list, each version compared in the package's own order. `GIT` ranges
//! name commits, not versions, and never match an installed package.

use crate::{Scheme, compare};
use std::cmp::Ordering;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum RangeKind {
    /// Versions in the ecosystem's own order.
    Ecosystem,
    /// Semantic versions (Go's with their `v` dropped).
    Semver,
    /// Commits.
    Git,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// From this version on (`0`: from the first).
    Introduced(String),
    /// Up to, not including, this version.
    Fixed(String),
    /// Up to and including this version.
    LastAffected(String),
    /// Nothing at or above this version is affected by the range (`*`: no limit).
    Limit(String),
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Range {
    pub kind: RangeKind,
    pub events: Vec<Event>,
}

/// One `affected` entry of a record, for one package.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Affected {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ranges: Vec<Range>,
    /// Versions named one by one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<String>,
}

impl Affected {
    /// The version that fixes `version` (ordered by `scheme`): the lowest `fixed` event above
    /// it (`FixedBy` in reports); `None` when no fix is known.
    pub fn fixed_after(&self, scheme: Scheme, version: &str) -> Option<&str> {
        self.ranges
            .iter()
            .filter(|r| r.kind != RangeKind::Git)
            .flat_map(|r| {
                let s = if r.kind == RangeKind::Semver && scheme != Scheme::Go {
                    Scheme::Semver
                } else {
                    scheme
                };
                r.events.iter().map(move |e| (s, e))
            })
            .filter_map(|(s, e)| match e {
                Event::Fixed(v) if compare(s, v, version) == Some(Ordering::Greater) => {
                    Some((s, v.as_str()))
                }
                _ => None,
            })
            .min_by(|(s, a), (_, b)| compare(*s, a, b).unwrap_or(Ordering::Equal))
            .map(|(_, v)| v)
    }
}

/// Whether `version` of a package ordered by `scheme` is affected.
pub fn is_affected(scheme: Scheme, version: &str, a: &Affected) -> bool {
    a.versions
        .iter()
        .any(|v| v == version || compare(scheme, v, version) == Some(Ordering::Equal))
        || a.ranges.iter().any(|r| in_range(scheme, version, r))
}

fn in_range(scheme: Scheme, version: &str, r: &Range) -> bool {
    let scheme = match (r.kind, scheme) {
        (RangeKind::Git, _) => return false,
        (RangeKind::Semver, Scheme::Go) => Scheme::Go,
        (RangeKind::Semver, _) => Scheme::Semver,
        (RangeKind::Ecosystem, s) => s,
    };
    // A version this order cannot read is not known to be affected.
    if compare(scheme, version, version).is_none() {
        return false;
    }
    let cmp = |a: &str, b: &str| compare(scheme, a, b);
    for e in &r.events {
        if let Event::Limit(l) = e
            && l != "*"
            && cmp(version, l) != Some(Ordering::Less)
        {
            return false;
        }
    }
    // The events in version order, `introduced: 0` first; an event whose version this order
    // cannot read is left out.
    let key = |e: &Event| -> Option<String> {
        match e {
            Event::Introduced(v) if v == "0" => None,
            Event::Introduced(v) | Event::Fixed(v) | Event::LastAffected(v) | Event::Limit(v) => {
                Some(v.clone())
            }
        }
    };
    let mut events: Vec<&Event> = r
        .events
        .iter()
        .filter(|e| !matches!(e, Event::Limit(_)))
        .filter(|e| key(e).is_none_or(|v| cmp(&v, &v).is_some()))
        .collect();
    events.sort_by(|a, b| match (key(a), key(b)) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(x), Some(y)) => cmp(&x, &y).unwrap_or(Ordering::Equal),
    });
    let mut affected = false;
    for e in events {
        match e {
            Event::Introduced(v) => {
                if v == "0" || cmp(version, v).is_some_and(Ordering::is_ge) {
                    affected = true;
                }
            }
            Event::Fixed(v) => {
                if cmp(version, v).is_some_and(Ordering::is_ge) {
                    affected = false;
                }
            }
            Event::LastAffected(v) => {
                if cmp(version, v) == Some(Ordering::Greater) {
                    affected = false;
                }
            }
            Event::Limit(_) => {}
        }
    }
    affected
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(kind: RangeKind, events: &[(&str, &str)]) -> Range {
        Range {
            kind,
            events: events
                .iter()
                .map(|(k, v)| {
                    let v = v.to_string();
                    match *k {
                        "introduced" => Event::Introduced(v),
                        "fixed" => Event::Fixed(v),
                        "last_affected" => Event::LastAffected(v),
                        _ => Event::Limit(v),
                    }
                })
                .collect(),
        }
    }

    fn affected(ranges: Vec<Range>) -> Affected {
        Affected {
            ranges,
            versions: Vec::new(),
        }
    }

    #[test]
    fn rustsec_2020_0071_its_many_semver_ranges() {
        // time: every 0.1 and 0.2 release before 0.2.23, as the record's SEMVER range says.
        let a = affected(vec![range(
            RangeKind::Semver,
            &[
                ("introduced", "0.0.0-0"),
                ("fixed", "0.2.0"),
                ("introduced", "0.2.1-0"),
                ("fixed", "0.2.1"),
                ("introduced", "0.2.7-0"),
                ("fixed", "0.2.23"),
            ],
        )]);
        assert!(is_affected(Scheme::Semver, "0.1.43", &a));
        assert!(!is_affected(Scheme::Semver, "0.2.0", &a));
        assert!(is_affected(Scheme::Semver, "0.2.10", &a));
        assert!(!is_affected(Scheme::Semver, "0.2.23", &a));
        assert!(!is_affected(Scheme::Semver, "0.3.36", &a));
    }

    #[test]
    fn pysec_2023_74_ecosystem_range_and_its_git_range() {
        let a = affected(vec![
            range(
                RangeKind::Git,
                &[("introduced", "0"), ("fixed", "74ea7cf7")],
            ),
            range(
                RangeKind::Ecosystem,
                &[("introduced", "2.3.0"), ("fixed", "2.31.0")],
            ),
        ]);
        assert!(is_affected(Scheme::Pep440, "2.30.0", &a));
        assert!(!is_affected(Scheme::Pep440, "2.31.0", &a));
        assert!(!is_affected(Scheme::Pep440, "2.2.1", &a));
        assert!(
            is_affected(Scheme::Pep440, "2.31.0rc1", &a),
            "a pre-release of the fix"
        );
    }

    #[test]
    fn go_stdlib_two_branches() {
        let a = affected(vec![range(
            RangeKind::Semver,
            &[
                ("introduced", "0"),
                ("fixed", "1.19.6"),
                ("introduced", "1.20.0-0"),
                ("fixed", "1.20.1"),
            ],
        )]);
        assert!(is_affected(Scheme::Go, "go1.19.5", &a));
        assert!(!is_affected(Scheme::Go, "go1.19.6", &a));
        assert!(is_affected(Scheme::Go, "go1.20", &a));
        assert!(!is_affected(Scheme::Go, "1.20.1", &a));
    }

    #[test]
    fn last_affected_limit_and_versions() {
        let last = affected(vec![range(
            RangeKind::Ecosystem,
            &[("introduced", "1.0-1"), ("last_affected", "1.4-2")],
        )]);
        assert!(is_affected(Scheme::Dpkg, "1.4-2", &last));
        assert!(!is_affected(Scheme::Dpkg, "1.4-3", &last));
        let limited = affected(vec![range(
            RangeKind::Ecosystem,
            &[("introduced", "0"), ("limit", "2.0")],
        )]);
        assert!(is_affected(Scheme::Maven, "1.9", &limited));
        assert!(!is_affected(Scheme::Maven, "2.0", &limited));
        let listed = Affected {
            ranges: Vec::new(),
            versions: vec!["4.17.20".into(), "4.17.19".into()],
        };
        assert!(is_affected(Scheme::Semver, "4.17.20", &listed));
        assert!(!is_affected(Scheme::Semver, "4.17.21", &listed));
        // An epoch in an rpm range (AlmaLinux writes them).
        let epoch = affected(vec![range(
            RangeKind::Ecosystem,
            &[("introduced", "0"), ("fixed", "1:3.0.7-16.el9")],
        )]);
        assert!(is_affected(Scheme::Rpm, "1:3.0.7-6.el9", &epoch));
        assert!(!is_affected(Scheme::Rpm, "1:3.0.7-16.el9", &epoch));
        assert!(!is_affected(Scheme::Rpm, "2:1.0-1.el9", &epoch));
        // A version the order cannot read is not reported.
        assert!(!is_affected(
            Scheme::Pep440,
            "not a version",
            &affected(vec![range(RangeKind::Ecosystem, &[("introduced", "0")])])
        ));
    }
}
