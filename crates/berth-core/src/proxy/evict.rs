//! Quotas in cache organizations: before a blob is fetched into a cache organization that
//! would then pass its reject threshold, the least recently pulled tags are evicted (tag,
//! history and the manifests only they held, at once — the upstream still has them) until the
//! blob fits, so pulls keep working instead of failing. Only what the evicted tag alone held
//! goes (a pull may be storing other manifests of the repository now), and the tags whose images
//! hold the blob being fetched stay.

use crate::auth::Who;
use crate::manifests::Completeness;
use crate::{Error, Registry, Result};
use berth_oci::manifest::parse_manifest;
use berth_oci::{Digest, Reference, RepoName};

/// At most this many tags are evicted to make room for one blob.
const MAX_EVICTIONS: usize = 100;

/// How many times a cached manifest is stored before its quota refusal stands.
const MAX_PUT_ATTEMPTS: usize = 3;

impl Registry {
    /// Evicts least recently pulled tags of `repo`'s cache organization until `incoming` more
    /// bytes, and what referencing the stored blobs `blobs` adds, fit under its reject
    /// threshold (or nothing more can go). Tags whose images hold `digest` stay. Answers how
    /// many tags were evicted.
    pub(crate) async fn make_room_in_cache(
        &self,
        repo: &RepoName,
        digest: &Digest,
        incoming: u64,
        blobs: &[String],
    ) -> Result<usize> {
        let ns = repo.namespace();
        let Some(quota) = self.quota_to_check(ns).await? else {
            return Ok(0);
        };
        let Some(reject) = self.reject_bytes(&quota) else {
            return Ok(0);
        };
        let incoming = i64::try_from(incoming).unwrap_or(i64::MAX);
        if incoming > reject {
            // Larger than the whole quota: evicting everything would not help.
            return Ok(0);
        }
        let who = Who {
            performer: None,
            ip: None,
        };
        let mut evicted = 0;
        while evicted < MAX_EVICTIONS {
            let usage = self.db.namespace_usage(ns).await?;
            let adding = if blobs.is_empty() {
                0
            } else {
                self.db.bytes_added(ns, blobs).await?
            };
            if usage.saturating_add(incoming).saturating_add(adding) <= reject {
                break;
            }
            let Some((repo_id, name, tag)) = self
                .db
                .cache_eviction_candidate(ns, &digest.to_string())
                .await?
            else {
                break;
            };
            let mut w = self.db.write().await?;
            let facts = self.db.repo_gc_facts(&mut w, repo_id).await?;
            let victim = self.db.live_tag_digest_in(&mut w, repo_id, &tag).await?;
            self.db.delete_tag_everywhere(&mut w, repo_id, &tag).await?;
            // What only that tag held: its manifest and an index's children that no other tag
            // (live or in the window) or kept manifest holds. Nothing else in the repository is
            // touched (a pull may be storing manifests there now).
            let mut facts = facts;
            facts
                .tags
                .retain(|(d, end, _)| !(end.is_none() && Some(d) == victim.as_ref()));
            let now = berth_db::now_ms();
            let (keep, _) = crate::gc::reachable(&facts, now, 0, 0);
            let victim_ids: Vec<i64> = facts
                .manifests
                .iter()
                .filter(|m| Some(&m.digest) == victim.as_ref())
                .map(|m| m.id)
                .collect();
            let closure: Vec<&str> = facts
                .children
                .iter()
                .filter(|(parent, _)| victim_ids.contains(parent))
                .map(|(_, c)| c.as_str())
                .chain(victim.as_deref())
                .collect();
            let doomed: Vec<i64> = facts
                .manifests
                .iter()
                .zip(&keep)
                .filter(|(m, k)| !**k && closure.contains(&m.digest.as_str()))
                .map(|(m, _)| m.id)
                .collect();
            self.db.gc_delete_manifests(&mut w, &doomed).await?;
            // The blobs they held go with the next sweep of the repository.
            self.db.set_next_gc(&mut w, repo_id, Some(now)).await?;
            crate::caller::record_in(
                &self.db,
                &mut w,
                who.entry("delete_tag").repo(&name).meta(serde_json::json!({
                    "tag": tag, "evicted": true,
                    "reason": "the cache organization's quota needed room for a pull",
                    "usage_bytes": usage, "limit_bytes": reject,
                })),
            )
            .await?;
            w.commit().await?;
            metrics::counter!("berth_proxy_cache_evictions_total").increment(1);
            tracing::info!(repo = %name, %tag, usage, limit = reject, "evicted a cached tag to make room");
            evicted += 1;
        }
        Ok(evicted)
    }

    /// Makes room, as [`Registry::make_room_in_cache`], for storing manifest `bytes` in `repo`
    /// (the stored blobs it references count; its other blobs are made room for when fetched).
    /// Answers how many tags were evicted (0 when the manifest does not parse or eviction failed,
    /// which is logged: the quota check of the push itself still decides).
    async fn make_room_for_manifest(
        &self,
        repo: &RepoName,
        media_type: &str,
        bytes: &[u8],
    ) -> usize {
        let Ok(parsed) = parse_manifest(Some(media_type), bytes) else {
            return 0;
        };
        let blobs: Vec<String> = parsed.required_blobs().map(|d| d.to_string()).collect();
        let Some(first) = parsed.required_blobs().next() else {
            return 0;
        };
        match self.make_room_in_cache(repo, first, 0, &blobs).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(repo = %repo, error = %e, "cannot evict cached tags to make room");
                0
            }
        }
    }

    /// Stores a manifest fetched upstream into cache repository `repo` under `reference`,
    /// making room for it first. Room is made outside the push's transaction, so a blob another
    /// pull was storing meanwhile can still take the namespace over its quota; a refusal then
    /// makes room again and retries, as long as that evicted something (at most
    /// [`MAX_PUT_ATTEMPTS`] tries).
    pub(crate) async fn put_cached_manifest(
        &self,
        who: &Who,
        repo: &RepoName,
        reference: &Reference,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<()> {
        self.make_room_for_manifest(repo, media_type, bytes).await;
        let mut attempt = 1;
        loop {
            let put = self
                .manifest_put_as(
                    who,
                    repo,
                    reference,
                    &[],
                    Some(media_type),
                    bytes.to_vec(),
                    Completeness::Placeholders,
                )
                .await;
            match put {
                Ok(_) => return Ok(()),
                Err(Error::Denied(detail))
                    if attempt < MAX_PUT_ATTEMPTS
                        && self.make_room_for_manifest(repo, media_type, bytes).await > 0 =>
                {
                    tracing::info!(repo = %repo, %detail, "made more room in the cache after a refused store");
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }
}
