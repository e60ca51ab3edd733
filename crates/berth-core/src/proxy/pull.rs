//! The pull path of a cache organization. A manifest pulled by tag is checked upstream (a
//! HEAD): the same digest confirms the cached copy (its tag's expiry moves on), another one is
//! fetched, verified and stored — an index with its child manifests, so the index stays
//! pullable by digest, children included, when the upstream is gone. A blob not cached yet is
//! fetched once: its bytes go to the client as they arrive and, at the same time, into an
//! upload that is verified before the blob becomes visible; a second first pull waits for it.
//! An upstream that cannot answer (unreachable, timing out, 429, 5xx, refusing the
//! credentials) leaves the cached copy served, stale.

use super::{Target, Upstream};
use crate::auth::Who;
use crate::{Error, Registry, Result};
use berth_oci::manifest::parse_manifest;
use berth_oci::{Digest, Reference, RepoName};
use berth_storage::ByteStream;
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use std::sync::Arc;

/// How current a cached manifest is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Freshness {
    /// The upstream confirmed it (or it was just fetched), or the reference is a digest.
    Fresh,
    /// The upstream could not answer; this is the cached copy.
    Stale(String),
}

/// What the `/v2` handler should serve for a manifest of a cache organization.
#[derive(Debug, Clone)]
pub struct ProxyServe {
    pub freshness: Freshness,
    /// The reference to read locally (a digest, for a tag that expired but is still cached).
    pub serve: Reference,
}

/// A blob of a cache organization.
pub enum ProxyBlob {
    /// It is (now) stored: read it as usual.
    Local,
    /// It is being fetched: these are its bytes as they arrive.
    Streaming { size: u64, stream: ByteStream },
}

fn upstream_unavailable(e: &berth_registry_client::Error) -> bool {
    e.is_unavailable()
        || matches!(
            e,
            berth_registry_client::Error::Unauthorized(_) | berth_registry_client::Error::Denied(_)
        )
}

fn count(upstream: &str, result: &'static str) {
    metrics::counter!("berth_proxy_cache_requests_total", "upstream" => upstream.to_string(), "result" => result)
        .increment(1);
}

impl Upstream {
    /// The upstream repository of local repository `repo` (`cacheorg/<rest>`).
    fn upstream_repo(&self, repo: &RepoName) -> String {
        let rest = repo
            .as_str()
            .split_once('/')
            .map(|(_, r)| r)
            .unwrap_or(repo.as_str());
        let path = match &self.namespace_prefix {
            Some(p) => format!("{p}/{rest}"),
            None => rest.to_string(),
        };
        // Docker Hub's official images live under library/.
        if self.docker_hub && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        }
    }
}

impl Registry {
    fn counted(&self, repo: &RepoName, upstream: &str, result: &'static str) {
        count(upstream, result);
        self.proxies.tally(repo.namespace(), |f| match result {
            "hit" => f.hits += 1,
            "miss" => f.misses += 1,
            "stale" => f.stale += 1,
            _ => f.blob_fetches += 1,
        });
    }

    /// Brings `reference` of `repo` up to date from its cache organization's upstream, or
    /// answers `None` when `repo` is in no cache organization.
    pub async fn proxy_manifest(
        &self,
        who: Option<&Who>,
        repo: &RepoName,
        reference: &Reference,
    ) -> Result<Option<ProxyServe>> {
        let Some(t) = self.proxy_target(repo.namespace()).await? else {
            return Ok(None);
        };
        let fresh = |serve: Reference| ProxyServe {
            freshness: Freshness::Fresh,
            serve,
        };
        let system = Who {
            performer: None,
            ip: None,
        };
        let who = who.unwrap_or(&system);
        let primary = t.upstreams[0].client.registry().to_string();
        match reference {
            Reference::Digest(d) => {
                if self.manifest_get_quiet(repo, reference).await?.is_some() {
                    self.counted(repo, &primary, "hit");
                    return Ok(Some(fresh(reference.clone())));
                }
                // Content is addressed by digest: any upstream that has it will do.
                let mut last = None;
                for up in &t.upstreams {
                    let upstream = up.client.registry().to_string();
                    let up_repo = up.upstream_repo(repo);
                    match self
                        .upstream(up, up.client.get_manifest(&up_repo, &d.to_string()))
                        .await
                    {
                        Ok(m) => {
                            self.counted(repo, &upstream, "miss");
                            self.store_upstream_manifest(up, who, repo, &up_repo, None, &m)
                                .await?;
                            return Ok(Some(fresh(reference.clone())));
                        }
                        Err(e) => last = Some((upstream, e)),
                    }
                }
                let (upstream, e) =
                    last.ok_or_else(|| Error::internal("a cache without upstreams"))?;
                Err(self.cache_miss_error(&upstream, repo, reference, e))
            }
            Reference::Tag(tag) => {
                let repo_id = self.db.repo_id(repo.as_str()).await?;
                let live = match repo_id {
                    Some(id) => self.db.live_tag(id, tag.as_str()).await?,
                    None => None,
                };
                // The first upstream that answers decides; one that cannot answer hands over
                // to the next (failover).
                let mut failure = None;
                for up in &t.upstreams {
                    let upstream = up.client.registry().to_string();
                    let up_repo = up.upstream_repo(repo);
                    match self
                        .upstream(up, up.client.head_manifest(&up_repo, tag.as_str()))
                        .await
                    {
                        Ok(head) => {
                            if live.as_ref().map(|l| l.0.as_str())
                                == Some(head.digest.to_string().as_str())
                            {
                                self.counted(repo, &upstream, "hit");
                            } else {
                                self.counted(repo, &upstream, "miss");
                                let m = self
                                    .upstream(
                                        up,
                                        up.client.get_manifest(&up_repo, &head.digest.to_string()),
                                    )
                                    .await
                                    .map_err(|e| {
                                        self.cache_miss_error(&upstream, repo, reference, e)
                                    })?;
                                self.store_upstream_manifest(
                                    up,
                                    who,
                                    repo,
                                    &up_repo,
                                    Some(tag.as_str()),
                                    &m,
                                )
                                .await?;
                            }
                            self.confirm_tag(
                                &t,
                                repo_id,
                                repo,
                                tag.as_str(),
                                live.and_then(|l| l.1),
                            )
                            .await?;
                            return Ok(Some(fresh(reference.clone())));
                        }
                        Err(berth_registry_client::Error::NotFound(m)) => {
                            return Err(Error::missing(
                                crate::Missing::Manifest,
                                format!("{up_repo}:{tag} is not on {upstream}: {m}"),
                            ));
                        }
                        Err(e) if upstream_unavailable(&e) => {
                            tracing::debug!(repo = %repo, %upstream, error = %e, "upstream cannot answer; trying the next");
                            failure = Some((upstream, e));
                        }
                        Err(e) => return Err(Error::Upstream(format!("{upstream}: {e}"))),
                    }
                }
                let (upstream, e) =
                    failure.ok_or_else(|| Error::internal("a cache without upstreams"))?;
                if !self.config.proxy.serve_stale {
                    return Err(Error::Unavailable(format!(
                        "{repo}:{tag}: no upstream can answer ({upstream}: {e}) and PROXY_CACHE_SERVE_STALE is false; try again later"
                    )));
                }
                let stale = |serve: Reference| {
                    self.counted(repo, &upstream, "stale");
                    tracing::warn!(repo = %repo, %upstream, error = %e, "no upstream can answer; serving the cached copy");
                    ProxyServe {
                        freshness: Freshness::Stale(format!("{upstream}: {e}")),
                        serve,
                    }
                };
                if live.is_some() {
                    return Ok(Some(stale(reference.clone())));
                }
                let last = match repo_id {
                    Some(id) => self.db.last_tag_target(id, tag.as_str()).await?,
                    None => None,
                };
                match last.and_then(|d| d.parse::<Digest>().ok()) {
                    Some(d) => Ok(Some(stale(Reference::Digest(d)))),
                    None => Err(Error::Unavailable(format!(
                        "{repo}:{tag} is not cached and no upstream can answer ({upstream}: {e}); try again later"
                    ))),
                }
            }
        }
    }

    /// An upstream call within the check timeout, its failures counted.
    async fn upstream<T>(
        &self,
        t: &Upstream,
        call: impl Future<Output = std::result::Result<T, berth_registry_client::Error>>,
    ) -> std::result::Result<T, berth_registry_client::Error> {
        let r = match tokio::time::timeout(self.config.proxy.check_timeout, call).await {
            Ok(r) => r,
            Err(_) => Err(berth_registry_client::Error::Timeout(format!(
                "no answer within {:?}",
                self.config.proxy.check_timeout
            ))),
        };
        if let Err(e) = &r {
            crate::upstream::count_error(t.client.registry(), e);
        }
        r
    }

    fn cache_miss_error(
        &self,
        upstream: &str,
        repo: &RepoName,
        reference: &Reference,
        e: berth_registry_client::Error,
    ) -> Error {
        match e {
            berth_registry_client::Error::NotFound(m) => Error::missing(
                crate::Missing::Manifest,
                format!("{reference} is not on {upstream}: {m}"),
            ),
            e if upstream_unavailable(&e) => Error::Unavailable(format!(
                "{repo}@{reference} is not cached and the upstream cannot answer ({upstream}: {e}); try again later"
            )),
            e => Error::Upstream(format!("{upstream}: {e}")),
        }
    }

    /// Stores a manifest fetched upstream (verified by the client), tagged with `tag`; an
    /// index's child manifests are fetched and stored first.
    async fn store_upstream_manifest(
        &self,
        t: &Upstream,
        who: &Who,
        repo: &RepoName,
        up_repo: &str,
        tag: Option<&str>,
        m: &berth_registry_client::Manifest,
    ) -> Result<()> {
        if let Ok(parsed) = parse_manifest(Some(&m.media_type), &m.bytes) {
            for child in &parsed.manifests {
                let r = Reference::Digest(child.digest.clone());
                if self.manifest_get_quiet(repo, &r).await?.is_some() {
                    continue;
                }
                match self
                    .upstream(t, t.client.get_manifest(up_repo, &child.digest.to_string()))
                    .await
                {
                    Ok(c) => {
                        self.put_cached_manifest(who, repo, &r, &c.media_type, &c.bytes)
                            .await?;
                    }
                    Err(e) => {
                        tracing::warn!(repo = %repo, child = %child.digest, error = %e, "cannot cache an index's child manifest")
                    }
                }
            }
        }
        let reference = match tag {
            Some(t) => Reference::Tag(
                t.parse()
                    .map_err(|_| Error::invalid(format!("invalid tag {t:?}")))?,
            ),
            None => Reference::Digest(m.digest.clone()),
        };
        self.put_cached_manifest(who, repo, &reference, &m.media_type, &m.bytes)
            .await
    }

    /// A pull the upstream confirmed: the tag lives `expiration_s` more (written at most once
    /// a minute per tag).
    async fn confirm_tag(
        &self,
        t: &Target,
        repo_id: Option<i64>,
        repo: &RepoName,
        tag: &str,
        expires_at: Option<i64>,
    ) -> Result<()> {
        if t.row.expiration_s <= 0 {
            return Ok(());
        }
        let now = berth_db::now_ms();
        let until = now.saturating_add(t.row.expiration_s.saturating_mul(1000));
        if expires_at.is_some_and(|e| e > until - 60_000) {
            return Ok(());
        }
        // A repository created by this pull was not there when the caller looked.
        let id = match repo_id {
            Some(id) => id,
            None => match self.db.repo_id(repo.as_str()).await? {
                Some(id) => id,
                None => return Ok(()),
            },
        };
        let mut w = self.db.write().await?;
        self.db.set_tag_expiry(&mut w, id, tag, Some(until)).await?;
        w.commit().await?;
        Ok(())
    }

    /// The size of a blob a cached manifest of `repo` references but that is not stored yet
    /// (what a HEAD answers without fetching it); `None` when it is stored or unknown.
    pub async fn proxy_blob_size(&self, repo: &RepoName, digest: &Digest) -> Result<Option<u64>> {
        if self.proxy_target(repo.namespace()).await?.is_none() {
            return Ok(None);
        }
        self.uncached_blob_size(repo, digest).await
    }

    /// The size of a blob `repo`'s cached manifests reference and that is not stored yet.
    async fn uncached_blob_size(&self, repo: &RepoName, digest: &Digest) -> Result<Option<u64>> {
        if self
            .db
            .blob_in_repo(repo.as_str(), &digest.to_string())
            .await?
            .is_some()
        {
            return Ok(None);
        }
        Ok(self
            .db
            .referenced_blob_size(repo.as_str(), &digest.to_string())
            .await?
            .and_then(|s| u64::try_from(s).ok()))
    }

    /// A blob of a cache organization's repository: stored already, or fetched now — once per
    /// digest at a time in this process — streaming to the caller while it is stored.
    pub async fn proxy_blob(&self, repo: &RepoName, digest: &Digest) -> Result<ProxyBlob> {
        let Some(t) = self.proxy_target(repo.namespace()).await? else {
            return Ok(ProxyBlob::Local);
        };
        for _ in 0..2 {
            let Some(size) = self.uncached_blob_size(repo, digest).await? else {
                return Ok(ProxyBlob::Local);
            };
            let key = digest.to_string();
            let (lock, guard) = {
                let mut map = self
                    .proxies
                    .inflight
                    .lock()
                    .map_err(|_| Error::internal("proxy state lock poisoned"))?;
                match map.get(&key) {
                    Some(l) => (l.clone(), None),
                    None => {
                        let l = Arc::new(tokio::sync::Mutex::new(()));
                        // Held from before it is visible, so no waiter passes it early.
                        let g = l
                            .clone()
                            .try_lock_owned()
                            .map_err(|_| Error::internal("a new lock is taken"))?;
                        map.insert(key.clone(), l.clone());
                        (l, Some(g))
                    }
                }
            };
            let Some(guard) = guard else {
                // Another pull is fetching it: wait for it, then read it as stored (or fetch
                // it ourselves if that one failed).
                drop(lock.lock().await);
                continue;
            };
            let forget = {
                let reg = self.clone();
                let key = key.clone();
                move || {
                    if let Ok(mut map) = reg.proxies.inflight.lock() {
                        map.remove(&key);
                    }
                }
            };
            // A quota on the cache organization makes room for the blob rather than fail it.
            if let Err(e) = self.make_room_in_cache(repo, digest, size, &[]).await {
                tracing::warn!(repo = %repo, %digest, error = %e, "cannot evict cached tags to make room");
            }
            // Any upstream that has the digest will do, in order.
            let mut source = None;
            let mut failure = None;
            for up in &t.upstreams {
                let upstream = up.client.registry().to_string();
                let up_repo = up.upstream_repo(repo);
                match self
                    .upstream(up, up.client.get_blob(&up_repo, digest, Some(size)))
                    .await
                {
                    Ok(s) => {
                        self.counted(repo, &upstream, "blob_miss");
                        source = Some(s);
                        break;
                    }
                    Err(e) => failure = Some((upstream, e)),
                }
            }
            let Some(mut source) = source else {
                forget();
                drop(guard);
                let (upstream, e) =
                    failure.ok_or_else(|| Error::internal("a cache without upstreams"))?;
                return Err(if upstream_unavailable(&e) {
                    Error::Unavailable(format!(
                        "blob {digest} is not cached and no upstream can serve it ({upstream}: {e}); try again later"
                    ))
                } else {
                    Error::Upstream(format!("{upstream}: {e}"))
                });
            };
            let (mut to_store, store_rx) =
                futures::channel::mpsc::channel::<std::io::Result<Bytes>>(8);
            let (mut to_client, client_rx) =
                futures::channel::mpsc::channel::<std::io::Result<Bytes>>(8);
            let reg = self.clone();
            let repo_c = repo.clone();
            let digest_c = digest.clone();
            tokio::spawn(async move {
                let r = reg
                    .upload_monolithic(&repo_c, &digest_c, Some(size), store_rx.boxed())
                    .await;
                match r {
                    Ok(n) => metrics::counter!("berth_proxy_cache_bytes_total").increment(n),
                    Err(e) => {
                        tracing::warn!(repo = %repo_c, digest = %digest_c, error = %e, "a blob pulled through the cache was not stored")
                    }
                }
                forget();
                drop(guard);
            });
            tokio::spawn(async move {
                let mut client_gone = false;
                while let Some(item) = source.next().await {
                    match item {
                        Ok(b) => {
                            let _ = to_store.send(Ok(b.clone())).await;
                            if !client_gone && to_client.send(Ok(b)).await.is_err() {
                                // The client left; the blob is still stored for the next one.
                                client_gone = true;
                            }
                        }
                        Err(e) => {
                            let msg = e.to_string();
                            let _ = to_store.send(Err(std::io::Error::other(msg.clone()))).await;
                            let _ = to_client.send(Err(std::io::Error::other(msg))).await;
                            break;
                        }
                    }
                }
            });
            return Ok(ProxyBlob::Streaming {
                size,
                stream: client_rx.boxed(),
            });
        }
        Ok(ProxyBlob::Local)
    }
}
