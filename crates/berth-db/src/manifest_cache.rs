//! Recently read live manifests, on SQLite only. Without it a manifest GET is a query through
//! sqlx's SQLite worker thread (two thread hand-offs), about half of the server's CPU per request
//! under a pull storm (docs/perf/).
//!
//! Why it cannot serve something stale, even with several processes on one SQLite file: every
//! lookup first asks SQLite for the file's `data_version` through a connection of its own that
//! never writes. SQLite changes that number whenever any other connection — this process's pool,
//! another instance, an administrator's `sqlite3` — has committed anything to the file since the
//! last time this connection asked, and it is cheap (a look at the WAL index in shared memory, no
//! thread hand-off). An entry answers only while the number is the one it was read under; the
//! number is taken before the query, so a row read across a commit is stored under the older
//! number and never answers. A tag's entry also ends when the tag expires (`expires_at`), as the
//! query itself would.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::manifests::ManifestRow;

/// Manifests larger than this are not kept (most are a few KiB; the limit is 4 MiB).
const MAX_MANIFEST_BYTES: usize = 64 << 10;
/// Most bytes of manifests kept; past it the cache starts again empty.
const MAX_BYTES: usize = 8 << 20;

struct Entry {
    row: ManifestRow,
    version: i64,
    until_ms: Option<i64>,
}

pub(crate) struct ManifestCache {
    /// The connection that reads `data_version`; it runs nothing else.
    probe: Mutex<rusqlite::Connection>,
    entries: Mutex<(HashMap<String, Entry>, usize)>,
    /// Lookups answered here (tests read it).
    hits: AtomicU64,
}

/// The key of a lookup: repository, then `:tag` or `@digest`.
pub(crate) fn key(repo: &str, sep: char, reference: &str) -> String {
    let mut k = String::with_capacity(repo.len() + 1 + reference.len());
    k.push_str(repo);
    k.push(sep);
    k.push_str(reference);
    k
}

impl ManifestCache {
    /// A cache for the SQLite file at `path`, or `None` when it cannot have one (an in-memory
    /// database, or the file cannot be opened a second time).
    pub(crate) fn open(path: &Path) -> Option<ManifestCache> {
        if path.as_os_str().is_empty() || path == Path::new(":memory:") || !path.is_file() {
            return None;
        }
        let probe = rusqlite::Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| tracing::warn!("manifest cache off: cannot open {}: {e}", path.display()))
        .ok()?;
        probe.busy_timeout(std::time::Duration::from_secs(1)).ok()?;
        let cache = ManifestCache {
            probe: Mutex::new(probe),
            entries: Mutex::default(),
            hits: AtomicU64::new(0),
        };
        cache.version()?;
        Some(cache)
    }

    /// The file's current data version: take it before the query. `None` (the probe failed)
    /// means: do not use the cache for this lookup.
    pub(crate) fn version(&self) -> Option<i64> {
        let probe = self.probe.lock().ok()?;
        probe
            .pragma_query_value(None, "data_version", |r| r.get(0))
            .ok()
    }

    pub(crate) fn get(&self, key: &str, version: i64, now_ms: i64) -> Option<ManifestRow> {
        let entries = self.entries.lock().ok()?;
        let e = entries.0.get(key)?;
        let hit = e.version == version && e.until_ms.is_none_or(|u| now_ms < u);
        if hit {
            self.hits.fetch_add(1, Ordering::Relaxed);
        }
        hit.then(|| e.row.clone())
    }

    #[cfg(test)]
    pub(crate) fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// Keeps `row`, read under `version`, until `expires_at` (a tag's expiry) at the latest.
    pub(crate) fn put(
        &self,
        key: String,
        row: &ManifestRow,
        version: i64,
        expires_at: Option<i64>,
    ) {
        let size = row.content.len() + key.len();
        if row.content.len() > MAX_MANIFEST_BYTES {
            return;
        }
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        let (map, bytes) = &mut *entries;
        if *bytes + size > MAX_BYTES {
            map.clear();
            *bytes = 0;
        }
        let entry = Entry {
            row: row.clone(),
            version,
            until_ms: expires_at,
        };
        if let Some(old) = map.insert(key, entry) {
            *bytes = bytes.saturating_sub(old.row.content.len());
        }
        *bytes += size;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(d: &str) -> ManifestRow {
        ManifestRow {
            repo_id: 1,
            digest: d.into(),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            content: b"{}".to_vec(),
        }
    }

    #[test]
    fn an_entry_answers_only_under_its_version_before_its_tag_expires() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.db");
        let writer = rusqlite::Connection::open(&path).expect("open");
        writer
            .execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (x INTEGER)")
            .expect("create");
        let c = ManifestCache::open(&path).expect("cache");
        let v = c.version().expect("version");
        assert_eq!(c.version(), Some(v), "no commit, same version");
        c.put(key("a/b", ':', "t"), &row("d1"), v, None);
        assert_eq!(
            c.get("a/b:t", v, 1_000).map(|r| r.digest),
            Some("d1".into())
        );
        // Another connection commits: the version moves and the entry stops answering.
        writer
            .execute("INSERT INTO t VALUES (1)", [])
            .expect("insert");
        let v2 = c.version().expect("version");
        assert_ne!(v, v2);
        assert!(c.get("a/b:t", v2, 1_000).is_none());
        // A tag that expires ends its entry then.
        c.put(key("a/b", ':', "x"), &row("d2"), v2, Some(1_100));
        assert!(c.get("a/b:x", v2, 1_050).is_some());
        assert!(c.get("a/b:x", v2, 1_100).is_none());
        // Large manifests are not kept.
        let mut big = row("d3");
        big.content = vec![b' '; MAX_MANIFEST_BYTES + 1];
        c.put(key("a/b", '@', "d3"), &big, v2, None);
        assert!(c.get("a/b@d3", v2, 1_001).is_none());
        // No cache for an in-memory database or a missing file.
        assert!(ManifestCache::open(Path::new(":memory:")).is_none());
        assert!(ManifestCache::open(&dir.path().join("none.db")).is_none());
    }
}
