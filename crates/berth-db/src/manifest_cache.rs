//! Recently read live manifests, on SQLite only: a manifest GET is otherwise a query through
//! sqlx's SQLite worker thread (two thread hand-offs), which was about half of the server's CPU
//! per request under a pull storm (docs/perf/).
//!
//! Why it cannot serve something stale: on SQLite this process is the only writer of the
//! registry's content (SQLite is the single-instance configuration; several instances need
//! PostgreSQL, where there is no cache), and every write transaction bumps `generation` when it
//! commits (`WriteTx::commit`). An entry remembers the generation it was read under and only
//! answers while it is unchanged, so a push, a tag move, a deletion, a time-machine restore,
//! garbage collection — any commit at all — empties it for every later request. A reader that
//! raced a commit stored its row under the older generation, so that row never answers. Two more
//! bounds: an entry lives at most `TTL_MS` (a write by another process on the same file, such as
//! an administrator's `sqlite3` session, is seen within that), and a tag's entry ends when the
//! tag expires (`expires_at`), as the query itself would.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::manifests::ManifestRow;

/// Longest life of an entry, milliseconds.
const TTL_MS: i64 = 1_000;
/// Manifests larger than this are not kept (most are a few KiB; the limit is 4 MiB).
const MAX_MANIFEST_BYTES: usize = 64 << 10;
/// Most bytes of manifests kept; past it the cache starts again empty.
const MAX_BYTES: usize = 8 << 20;

struct Entry {
    row: ManifestRow,
    generation: u64,
    until_ms: i64,
}

#[derive(Default)]
pub(crate) struct ManifestCache {
    generation: AtomicU64,
    entries: Mutex<(HashMap<String, Entry>, usize)>,
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
    /// The generation to read under: take it before the query.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Every entry read before now stops answering. Called after each commit.
    pub(crate) fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    pub(crate) fn get(&self, key: &str, now_ms: i64) -> Option<ManifestRow> {
        let current = self.generation();
        let entries = self.entries.lock().ok()?;
        let e = entries.0.get(key)?;
        (e.generation == current && now_ms < e.until_ms).then(|| e.row.clone())
    }

    /// Keeps `row`, read under `generation`, until `expires_at` (a tag's expiry) at the latest.
    pub(crate) fn put(
        &self,
        key: String,
        row: &ManifestRow,
        generation: u64,
        now_ms: i64,
        expires_at: Option<i64>,
    ) {
        let size = row.content.len() + key.len();
        if row.content.len() > MAX_MANIFEST_BYTES || generation != self.generation() {
            return;
        }
        let until_ms = expires_at.map_or(now_ms + TTL_MS, |e| e.min(now_ms + TTL_MS));
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
            generation,
            until_ms,
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
    fn an_entry_answers_only_under_its_generation_before_its_end() {
        let c = ManifestCache::default();
        let g = c.generation();
        c.put(key("a/b", ':', "t"), &row("d1"), g, 1_000, None);
        assert_eq!(c.get("a/b:t", 1_500).map(|r| r.digest), Some("d1".into()));
        assert!(c.get("a/b:t", 2_000).is_none(), "past the TTL");
        // A commit: nothing read before it answers.
        c.put(key("a/b", ':', "t"), &row("d1"), g, 1_000, None);
        c.invalidate();
        assert!(c.get("a/b:t", 1_001).is_none());
        // A row read under the old generation and stored after the commit is refused.
        c.put(key("a/b", ':', "t"), &row("d0"), g, 1_002, None);
        assert!(c.get("a/b:t", 1_003).is_none());
        // A tag that expires ends its entry then.
        let g = c.generation();
        c.put(key("a/b", ':', "x"), &row("d2"), g, 1_000, Some(1_100));
        assert!(c.get("a/b:x", 1_050).is_some());
        assert!(c.get("a/b:x", 1_100).is_none());
        // Large manifests are not kept.
        let mut big = row("d3");
        big.content = vec![b' '; MAX_MANIFEST_BYTES + 1];
        c.put(key("a/b", '@', "d3"), &big, g, 1_000, None);
        assert!(c.get("a/b@d3", 1_001).is_none());
    }
}
