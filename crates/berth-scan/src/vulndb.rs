//! Vulnerability data in the OSV format: reading records (osv.dev's per-ecosystem `all.zip`, a
//! directory of `<ID>.json` files, or one file) into [`Advisory`] values ready to store, and
//! the severity each carries, computed from its CVSS vector or taken from its own label.
//!
//! Reading is lenient where OSV data differs between producers (fields absent, unknown range
//! types, `database_specific` shapes) and strict where a wrong answer would follow (a record
//! with no id or no `modified` time is refused, with its file named).

use crate::osv::{Affected, Event, Range, RangeKind};
use serde::Deserialize;
use std::io::Read;
use std::path::Path;

/// One record's file is refused above this size (osv.dev's largest records are ~1 MB).
pub const MAX_RECORD_BYTES: u64 = 16 << 20;

/// Severity levels, in Quay's order and names.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Severity {
    Unknown,
    Negligible,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 6] = [
        Severity::Unknown,
        Severity::Negligible,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Unknown => "Unknown",
            Severity::Negligible => "Negligible",
            Severity::Low => "Low",
            Severity::Medium => "Medium",
            Severity::High => "High",
            Severity::Critical => "Critical",
        }
    }

    /// A level by name, any case; also the labels feeds use (`MODERATE`, Debian's
    /// `unimportant`, Red Hat's `important`).
    pub fn parse(label: &str) -> Option<Severity> {
        Some(match label.trim().to_ascii_lowercase().as_str() {
            "unknown" | "none" | "" => Severity::Unknown,
            "negligible" | "unimportant" => Severity::Negligible,
            "low" => Severity::Low,
            "medium" | "moderate" => Severity::Medium,
            "high" | "important" => Severity::High,
            "critical" => Severity::Critical,
            _ => return None,
        })
    }

    /// A CVSS base score's level, as Quay maps it: (0, 4) Low, [4, 7) Medium, [7, 9) High,
    /// [9, 10] Critical (Quay's own code answers Unknown for exactly 10.0, a slip Berth does not
    /// repeat), 0 or no score Unknown.
    pub fn of_score(score: f64) -> Severity {
        if score.is_nan() || score <= 0.0 {
            Severity::Unknown
        } else if score < 4.0 {
            Severity::Low
        } else if score < 7.0 {
            Severity::Medium
        } else if score < 9.0 {
            Severity::High
        } else {
            Severity::Critical
        }
    }
}

/// One affected package of an advisory.
#[derive(Debug, Clone, PartialEq)]
pub struct AffectedPackage {
    /// As OSV writes it: `PyPI`, `Debian:12`, `AlmaLinux:9`, …
    pub ecosystem: String,
    /// The package as its ecosystem names it; PyPI names PEP 503-normalized.
    pub name: String,
    pub affected: Affected,
}

/// A record ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct Advisory {
    pub id: String,
    /// `modified`, ms since the epoch.
    pub modified: i64,
    pub withdrawn: bool,
    pub summary: String,
    pub details: String,
    pub severity: Severity,
    /// The CVSS base score the severity came from, and its vector.
    pub score: Option<f64>,
    pub vector: String,
    /// Aliases and related ids (the CVE names of ALSA and DSA records are in `related`).
    pub aliases: Vec<String>,
    /// Reference URLs, the record's own advisory first.
    pub links: Vec<String>,
    pub affected: Vec<AffectedPackage>,
}

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{path}: {reason}")]
    Record { path: String, reason: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a zip archive of OSV records: {reason}")]
    Archive { path: String, reason: String },
}

// The OSV JSON shape, as far as Berth reads it.
#[derive(Deserialize)]
struct RawRecord {
    id: String,
    modified: String,
    #[serde(default)]
    withdrawn: Option<String>,
    #[serde(default)]
    summary: Option<String>,
    #[serde(default)]
    details: Option<String>,
    #[serde(default)]
    aliases: Vec<String>,
    #[serde(default)]
    related: Vec<String>,
    #[serde(default)]
    severity: Vec<RawSeverity>,
    #[serde(default)]
    affected: Vec<RawAffected>,
    #[serde(default)]
    references: Vec<RawReference>,
    #[serde(default)]
    database_specific: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawSeverity {
    #[serde(rename = "type")]
    kind: String,
    score: String,
}

#[derive(Deserialize)]
struct RawAffected {
    #[serde(default)]
    package: Option<RawPackage>,
    #[serde(default)]
    ranges: Vec<RawRange>,
    #[serde(default)]
    versions: Vec<String>,
    #[serde(default)]
    severity: Vec<RawSeverity>,
    #[serde(default)]
    ecosystem_specific: Option<serde_json::Value>,
    #[serde(default)]
    database_specific: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawPackage {
    ecosystem: String,
    name: String,
}

#[derive(Deserialize)]
struct RawRange {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    events: Vec<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Deserialize)]
struct RawReference {
    #[serde(rename = "type", default)]
    kind: String,
    url: String,
}

/// PEP 503: lowercase, runs of `-`, `_` and `.` as one `-`.
pub fn normalize_pypi(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut sep = false;
    for c in name.trim().chars() {
        if matches!(c, '-' | '_' | '.') {
            sep = true;
        } else {
            if sep && !out.is_empty() {
                out.push('-');
            }
            sep = false;
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// The name an ecosystem's records and an index agree on.
pub fn package_key(ecosystem: &str, name: &str) -> String {
    if ecosystem == "PyPI" {
        normalize_pypi(name)
    } else {
        name.to_string()
    }
}

fn time_ms(text: &str) -> Option<i64> {
    let text = text.trim();
    let parsed = humantime::parse_rfc3339_weak(text.trim_end_matches('Z'))
        .or_else(|_| humantime::parse_rfc3339(text));
    match parsed {
        Ok(t) => {
            let d = t.duration_since(std::time::UNIX_EPOCH).ok()?;
            i64::try_from(d.as_millis()).ok()
        }
        // Times before 1970 (the Go database writes `0001-01-01T00:00:00Z` for "unknown"):
        // the start of the epoch, before any real modification.
        Err(_) => {
            let year: i32 = text.get(..4)?.parse().ok()?;
            (year < 1970 && text.get(4..5) == Some("-")).then_some(0)
        }
    }
}

/// The base score of a CVSS vector (v2, v3.x or v4).
pub fn cvss_score(vector: &str) -> Option<f64> {
    let v = vector.trim();
    let parsed = if v.starts_with("CVSS:") {
        v.parse::<cvss::Cvss>().ok()?
    } else {
        // CVSS v2 vectors carry no prefix.
        cvss::Cvss::CvssV20(v.parse::<cvss::v2::Vector>().ok()?)
    };
    let s = parsed.score();
    s.is_finite().then_some(s)
}

/// The label a record gives itself, where producers put one.
fn own_label(values: &[Option<&serde_json::Value>]) -> Option<Severity> {
    values.iter().flatten().find_map(|v| {
        let s = v.get("severity")?;
        s.as_str().and_then(Severity::parse)
    })
}

fn event(map: &serde_json::Map<String, serde_json::Value>) -> Option<Event> {
    let (k, v) = map.iter().next()?;
    let v = v.as_str()?.to_string();
    Some(match k.as_str() {
        "introduced" => Event::Introduced(v),
        "fixed" => Event::Fixed(v),
        "last_affected" => Event::LastAffected(v),
        "limit" => Event::Limit(v),
        _ => return None,
    })
}

/// Reads one OSV record. `path` names it in errors.
pub fn parse_record(bytes: &[u8], path: &str) -> Result<Advisory, DataError> {
    let err = |reason: String| DataError::Record {
        path: path.to_string(),
        reason,
    };
    let raw: RawRecord =
        serde_json::from_slice(bytes).map_err(|e| err(format!("not an OSV record: {e}")))?;
    if raw.id.trim().is_empty() {
        return Err(err("the record has no id".into()));
    }
    let modified = time_ms(&raw.modified)
        .ok_or_else(|| err(format!("`modified` is not a time: {:?}", raw.modified)))?;

    // Severity: a CVSS vector's base score (v3 first, as Quay reads NVD's v3 score, then v4 and
    // v2), else the record's own label, else Unknown.
    let mut vectors: Vec<&RawSeverity> = raw.severity.iter().collect();
    vectors.extend(raw.affected.iter().flat_map(|a| &a.severity));
    let rank = |k: &str| match k {
        "CVSS_V3" => 0,
        "CVSS_V4" => 1,
        "CVSS_V2" => 2,
        _ => 3,
    };
    vectors.sort_by_key(|s| rank(&s.kind));
    let scored = vectors
        .iter()
        .filter(|s| rank(&s.kind) < 3)
        .find_map(|s| cvss_score(&s.score).map(|score| (score, s.score.clone())));
    let labels: Vec<Option<&serde_json::Value>> = std::iter::once(raw.database_specific.as_ref())
        .chain(
            raw.affected
                .iter()
                .flat_map(|a| [a.database_specific.as_ref(), a.ecosystem_specific.as_ref()]),
        )
        .collect();
    let ubuntu = vectors
        .iter()
        .find(|s| s.kind == "Ubuntu")
        .and_then(|s| Severity::parse(&s.score));
    let (severity, score, vector) = match scored {
        Some((score, vector)) => (Severity::of_score(score), Some(score), vector),
        None => (
            ubuntu
                .or_else(|| own_label(&labels))
                .unwrap_or(Severity::Unknown),
            None,
            String::new(),
        ),
    };

    let mut affected = Vec::new();
    for a in &raw.affected {
        let Some(pkg) = &a.package else { continue };
        let ranges = a
            .ranges
            .iter()
            .filter_map(|r| {
                let kind = match r.kind.as_str() {
                    "ECOSYSTEM" => RangeKind::Ecosystem,
                    "SEMVER" => RangeKind::Semver,
                    // GIT ranges name commits: no installed package matches one.
                    _ => return None,
                };
                Some(Range {
                    kind,
                    events: r.events.iter().filter_map(event).collect(),
                })
            })
            .collect();
        affected.push(AffectedPackage {
            ecosystem: pkg.ecosystem.clone(),
            name: package_key(&pkg.ecosystem, &pkg.name),
            affected: Affected {
                ranges,
                versions: a.versions.clone(),
            },
        });
    }

    let mut aliases = raw.aliases.clone();
    for r in &raw.related {
        if !aliases.contains(r) {
            aliases.push(r.clone());
        }
    }
    let mut links: Vec<String> = raw
        .references
        .iter()
        .filter(|r| r.kind == "ADVISORY")
        .chain(raw.references.iter().filter(|r| r.kind != "ADVISORY"))
        .map(|r| r.url.clone())
        .collect();
    links.dedup();
    Ok(Advisory {
        id: raw.id.trim().to_string(),
        modified,
        withdrawn: raw.withdrawn.is_some_and(|w| !w.trim().is_empty()),
        summary: raw.summary.unwrap_or_default(),
        details: raw.details.unwrap_or_default(),
        severity,
        score,
        vector,
        aliases,
        links,
        affected,
    })
}

/// Reads every record of a source on disk — an `all.zip`, a directory of `*.json` (searched
/// recursively) or one `.json` file — handing each to `each` in turn (one in memory at a time).
/// A record that cannot be read is handed over as its error; the walk goes on.
pub fn read_source(
    path: &Path,
    each: &mut dyn FnMut(Result<Advisory, DataError>),
) -> Result<(), DataError> {
    let name = path.display().to_string();
    let io = |source: std::io::Error| DataError::Io {
        path: name.clone(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if meta.is_dir() {
        return read_dir(path, each);
    }
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut magic = [0u8; 4];
    let n = file.read(&mut magic).map_err(io)?;
    if n == 4 && magic == *b"PK\x03\x04" {
        return read_zip(path, each);
    }
    let bytes = read_bounded(path)?;
    each(parse_record(&bytes, &name));
    Ok(())
}

fn read_bounded(path: &Path) -> Result<Vec<u8>, DataError> {
    let name = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|source| DataError::Io {
        path: name.clone(),
        source,
    })?;
    let mut bytes = Vec::new();
    file.take(MAX_RECORD_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| DataError::Io {
            path: name.clone(),
            source,
        })?;
    if bytes.len() as u64 > MAX_RECORD_BYTES {
        return Err(DataError::Record {
            path: name,
            reason: format!("larger than {MAX_RECORD_BYTES} bytes"),
        });
    }
    Ok(bytes)
}

fn read_dir(
    dir: &Path,
    each: &mut dyn FnMut(Result<Advisory, DataError>),
) -> Result<(), DataError> {
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        let entries = std::fs::read_dir(&d).map_err(|source| DataError::Io {
            path: d.display().to_string(),
            source,
        })?;
        let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for p in paths {
            if p.is_dir() {
                pending.push(p);
            } else if p.extension().is_some_and(|e| e == "json") {
                match read_bounded(&p) {
                    Ok(bytes) => each(parse_record(&bytes, &p.display().to_string())),
                    Err(e) => each(Err(e)),
                }
            } else if p.extension().is_some_and(|e| e == "zip") {
                read_zip(&p, each)?;
            }
        }
    }
    Ok(())
}

fn read_zip(
    path: &Path,
    each: &mut dyn FnMut(Result<Advisory, DataError>),
) -> Result<(), DataError> {
    let name = path.display().to_string();
    let bad = |reason: String| DataError::Archive {
        path: name.clone(),
        reason,
    };
    let file = std::fs::File::open(path).map_err(|source| DataError::Io {
        path: name.clone(),
        source,
    })?;
    let mut zip =
        zip::ZipArchive::new(std::io::BufReader::new(file)).map_err(|e| bad(e.to_string()))?;
    for i in 0..zip.len() {
        let mut entry = match zip.by_index(i) {
            Ok(e) => e,
            Err(e) => {
                each(Err(bad(format!("entry {i}: {e}"))));
                continue;
            }
        };
        let inner = entry.name().map(|n| n.to_string()).unwrap_or_default();
        if !entry.is_file() || !inner.ends_with(".json") {
            continue;
        }
        let entry_name = format!("{name}!{inner}");
        let mut bytes = Vec::new();
        // Bounded by bytes read, not the size the entry declares.
        if let Err(e) = (&mut entry)
            .take(MAX_RECORD_BYTES + 1)
            .read_to_end(&mut bytes)
        {
            each(Err(DataError::Record {
                path: entry_name,
                reason: e.to_string(),
            }));
            continue;
        }
        if bytes.len() as u64 > MAX_RECORD_BYTES {
            each(Err(DataError::Record {
                path: entry_name,
                reason: format!("larger than {MAX_RECORD_BYTES} bytes"),
            }));
            continue;
        }
        each(parse_record(&bytes, &entry_name));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quay_levels_from_scores() {
        assert_eq!(Severity::of_score(0.0), Severity::Unknown);
        assert_eq!(Severity::of_score(3.9), Severity::Low);
        assert_eq!(Severity::of_score(4.0), Severity::Medium);
        assert_eq!(Severity::of_score(7.0), Severity::High);
        assert_eq!(Severity::of_score(9.0), Severity::Critical);
        assert_eq!(
            Severity::of_score(10.0),
            Severity::Critical,
            "not Quay's Unknown"
        );
        assert_eq!(Severity::parse("MODERATE"), Some(Severity::Medium));
    }

    #[test]
    fn cvss_vectors_give_base_scores() {
        assert_eq!(
            cvss_score("CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:U/C:H/I:H/A:H"),
            Some(7.2)
        );
        assert_eq!(
            cvss_score("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"),
            Some(9.8)
        );
        assert_eq!(cvss_score("AV:N/AC:L/Au:N/C:P/I:P/A:P"), Some(7.5));
        assert_eq!(cvss_score("nonsense"), None);
    }

    #[test]
    fn a_record_with_git_and_ecosystem_ranges() {
        let rec =
            br#"{"id":"PYSEC-X","modified":"2023-06-01T12:00:00.123Z","related":["CVE-2023-1"],
          "affected":[{"package":{"ecosystem":"PyPI","name":"Foo_Bar"},
            "ranges":[{"type":"GIT","repo":"r","events":[{"introduced":"0"},{"fixed":"abc"}]},
                      {"type":"ECOSYSTEM","events":[{"introduced":"1.0"},{"fixed":"1.5"}]}],
            "versions":["1.0","1.4"]}],
          "references":[{"type":"WEB","url":"https://w"},{"type":"ADVISORY","url":"https://a"}]}"#;
        let a = parse_record(rec, "x.json").expect("parses");
        assert_eq!(a.affected[0].name, "foo-bar");
        assert_eq!(a.affected[0].affected.ranges.len(), 1, "GIT range dropped");
        assert_eq!(a.aliases, vec!["CVE-2023-1"]);
        assert_eq!(a.links[0], "https://a");
        assert_eq!(a.severity, Severity::Unknown);
        assert_eq!(a.modified, 1_685_620_800_123);
        assert!(parse_record(br#"{"id":"X","modified":"yesterday"}"#, "y").is_err());
        let go = parse_record(br#"{"id":"GO-1","modified":"0001-01-01T00:00:00Z"}"#, "g")
            .expect("the Go database's unknown time");
        assert_eq!(go.modified, 0);
    }
}
