//! Vulnerability scanning: whether layers are indexed, where vulnerability data comes from and
//! how often, and the bounds of indexing. Quay's keys where Quay has one (it scans through a
//! Clair service; Berth scans in its own process, so Clair's endpoint and key have no effect).

use super::super::values::{
    as_bool, as_string, as_string_list, duration, err, positive, positive_i64,
};
use super::*;

pub static KEYS: &[KeyDef] = &[
    quay(
        "FEATURE_SECURITY_SCANNER",
        B,
        "index every pushed layer and serve vulnerability reports (Berth default true: the scanner is built in; Quay's false)",
        |c, k, v, _| {
            c.scan.enabled = as_bool(k, v)?;
            Ok(())
        },
    )
    .default_is("true"),
    quay(
        "SECURITY_SCANNER_V4_INDEXING",
        B,
        "this instance runs the scanner's chores: importing vulnerability data and queueing layers no push queued (false: leave them to other instances; queued index jobs still run on any worker)",
        |c, k, v, _| {
            c.scan.indexing = as_bool(k, v)?;
            Ok(())
        },
    )
    .default_is("true"),
    berth(
        "SECURITY_SCANNER_OSV_SOURCES",
        L,
        "vulnerability data in the OSV format: paths, file:// or https:// URLs of osv.dev `<ECOSYSTEM>/all.zip` files or directories of OSV JSON records, imported at start and every SECURITY_SCANNER_UPDATE_INTERVAL (URLs pass the outbound guard: SSRF_ALLOWED_HOSTS)",
        |c, k, v, _| {
            c.scan.sources = as_string_list(k, v)?
                .into_iter()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
            Ok(())
        },
    )
    .default_is("[]"),
    berth(
        "SECURITY_SCANNER_UPDATE_INTERVAL",
        S,
        "how often the sources are imported again (default 6h); only records modified since are written",
        |c, k, v, _| {
            c.scan.update_interval = std::time::Duration::from_secs(
                u64::try_from(duration(k, v)?.max(60)).unwrap_or(60),
            );
            Ok(())
        },
    )
    .default_is(r#""6h""#),
    quay(
        "SECURITY_SCANNER_INDEXING_INTERVAL",
        N,
        "seconds between looks for layers to index that no push queued: pushed while scanning was off, failed with retries left, or indexed by an older Berth (default 30)",
        |c, k, v, _| {
            c.scan.indexing_interval = std::time::Duration::from_secs(positive(k, v)?);
            Ok(())
        },
    )
    .default_is("30"),
    quay(
        "SECURITY_SCANNER_V4_REINDEX_THRESHOLD",
        N,
        "seconds before a layer indexed by an older indexer version is indexed again (default 300)",
        |c, k, v, _| {
            c.scan.reindex_threshold = std::time::Duration::from_secs(positive(k, v)?);
            Ok(())
        },
    )
    .default_is("300"),
    quay(
        "SECURITY_SCANNER_V4_INDEX_MAX_LAYER_SIZE",
        SZ,
        "layers larger than this (uncompressed, in Quay's size format: 8G, 500M) are not indexed; their manifests report manifest_layer_too_large (default: no limit)",
        |c, k, v, _| {
            if v.is_null() {
                c.scan.max_layer_bytes = None;
                return Ok(());
            }
            let s = as_string(k, v)?;
            match berth_core::parse_size(&s).and_then(|n| u64::try_from(n).ok()) {
                Some(n) if n > 0 => {
                    c.scan.max_layer_bytes = Some(n);
                    Ok(())
                }
                _ => err(k, format!("{s:?} is not a size such as 8G or 500M")),
            }
        },
    )
    .default_is("null"),
    quay(
        "SECURITY_SCANNER_MAX_SCAN_RETRIES",
        I,
        "attempts at indexing a layer that fails before its manifests report failed (default 5)",
        |c, k, v, _| {
            c.scan.max_retries = positive_i64(k, v)?;
            Ok(())
        },
    )
    .default_is("5"),
    quay(
        "FEATURE_SECURITY_NOTIFICATIONS",
        B,
        "vulnerability_found notifications when new data makes a stored image vulnerable",
        |c, k, v, _| {
            c.scan.notifications = as_bool(k, v)?;
            Ok(())
        },
    )
    .default_is("false"),
    quay(
        "NOTIFICATION_MIN_SEVERITY_ON_NEW_INDEX",
        S,
        "lowest severity (Low, Medium, High, Critical) a newly indexed image's vulnerabilities must reach to be notified (default High)",
        |c, k, v, _| {
            let s = as_string(k, v)?;
            c.scan.min_severity_on_new_index = berth_core::scan::VulnSeverity::parse(&s)
                .ok_or_else(|| ConfigError::new(k, format!("{s:?} is not Low, Medium, High or Critical")))?;
            Ok(())
        },
    )
    .default_is(r#""High""#),
];
