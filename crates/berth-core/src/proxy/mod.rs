//! Pull-through cache organizations (Quay's proxy cache). A pull of `cacheorg/<path>` is
//! answered from the upstream registry (`upstream_registry`, `host[/namespace]`) and kept:
//! the manifest is checked upstream on every pull by tag and stored when it changed, blobs are
//! streamed to the client while they are stored (`pull.rs`), and when the upstream cannot
//! answer the cached copy is served, stale. Nobody pushes or deletes there.
//!
//! The configuration use cases are on [`ProxyCaches`]; the read path is
//! [`Registry::proxy_manifest`] and [`Registry::proxy_blob`], which the `/v2` handlers call
//! before reading as usual.

mod evict;
mod pull;

pub use pull::{Freshness, ProxyBlob, ProxyServe};

use crate::auth::{Actor, Auth};
use crate::caller::Caller;
use crate::{Error, Registry, Result};
use berth_db::ProxyCacheRow;
use berth_registry_client::{Credentials, Ping, RegistryClient, Settings};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Settings of pull-through caching.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// `FEATURE_PROXY_CACHE` (Berth: on; Quay: off).
    pub enabled: bool,
    /// `PROXY_CACHE_SERVE_STALE` (Berth): when the upstream is unreachable, times out, answers
    /// 429 or 5xx, or refuses the credentials, a cached tag is served (expired or not).
    pub serve_stale: bool,
    /// How long a manifest check upstream may take before the cached copy is served.
    pub check_timeout: Duration,
    /// `PROXY_CACHE_MIRROR_ORG` (Berth): the cache organization that serves names whose first
    /// component is no namespace here (`/v2/library/alpine/...` as `<org>/library/alpine`),
    /// so Berth can be podman's or containerd's registry mirror for its upstream.
    pub mirror_org: Option<String>,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            enabled: true,
            serve_stale: true,
            check_timeout: Duration::from_secs(10),
            mirror_org: None,
        }
    }
}

/// Quay's default `expiration_s`.
pub const DEFAULT_EXPIRATION_S: i64 = 86_400;

/// How long the list of cache organizations is trusted before it is read again.
const TARGETS_TTL: Duration = Duration::from_secs(5);

/// A cache organization's settings as given to create it.
#[derive(Debug, Clone, Default)]
pub struct ProxyCacheSpec {
    pub upstream_registry: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub expiration_s: Option<i64>,
    pub insecure: bool,
    /// Berth: further upstreams, tried in order when the ones before cannot answer.
    pub fallbacks: Vec<FallbackSpec>,
}

/// One further upstream of a cache organization, as given.
#[derive(Debug, Clone, Default)]
pub struct FallbackSpec {
    pub upstream_registry: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub insecure: bool,
}

/// A further upstream as stored (its password sealed).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct StoredFallback {
    upstream_registry: String,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password_sealed: Option<String>,
    #[serde(default)]
    insecure: bool,
}

fn stored_fallbacks(row: &ProxyCacheRow) -> Vec<StoredFallback> {
    serde_json::from_str(&row.fallbacks).unwrap_or_default()
}

/// At most this many further upstreams.
pub const MAX_FALLBACKS: usize = 4;

/// A cache organization's settings as shown (never its password): Quay's answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyCacheView {
    pub upstream_registry: String,
    pub expiration_s: Option<i64>,
    pub insecure: bool,
    /// Berth: the further upstreams (`host[/namespace]`, insecure), in order.
    pub fallbacks: Vec<(String, bool)>,
}

/// What validating an upstream found: Quay's `Valid` (credentials accepted) or `Anonymous`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    Valid,
    Anonymous,
}

/// Where the upstream lives: its registry and the namespace prefix on it, if any.
pub fn split_upstream(upstream: &str) -> Result<(String, Option<String>)> {
    let bad = || {
        Error::invalid(format!(
            "upstream_registry {upstream:?} must be host[:port][/namespace], without a scheme (e.g. docker.io or quay.io/prometheus)"
        ))
    };
    let u = upstream.trim().trim_end_matches('/');
    if u.is_empty() || u.len() > 270 || u.contains("://") {
        return Err(bad());
    }
    let (host, ns) = match u.split_once('/') {
        Some((h, n)) => (h, Some(n)),
        None => (u, None),
    };
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    if !host_ok {
        return Err(bad());
    }
    if let Some(n) = ns
        && format!("{n}/x").parse::<berth_oci::RepoName>().is_err()
    {
        return Err(bad());
    }
    Ok((host.to_ascii_lowercase(), ns.map(str::to_string)))
}

/// One cache organization, ready to pull through: its upstreams in the order they are tried
/// (never empty: the first is `upstream_registry`), each client keeping its token cache.
pub(crate) struct Target {
    pub row: ProxyCacheRow,
    pub upstreams: Vec<Upstream>,
}

/// One upstream of a cache organization.
pub(crate) struct Upstream {
    pub namespace_prefix: Option<String>,
    pub client: RegistryClient,
    pub docker_hub: bool,
}

/// Cache organizations by name.
type Targets = HashMap<String, Arc<Target>>;

/// The cache organizations as last read, and the blobs being fetched now.
#[derive(Default)]
pub(crate) struct ProxyState {
    targets: Mutex<Option<(Instant, Targets)>>,
    /// One fetch per blob digest at a time in this process: a second first pull waits for it.
    pub(crate) inflight: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Whether a name is a namespace here, as last read (for the mirror organization's names).
    namespaces: Mutex<HashMap<String, (bool, Instant)>>,
    /// This process's figures per cache organization, since it started.
    figures: Mutex<HashMap<String, CacheFigures>>,
}

/// What one cache organization answered since this process started (the UI's figures; the
/// metrics carry the same per upstream).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheFigures {
    /// Pulls the cached copy answered, confirmed upstream.
    pub hits: u64,
    /// Manifests fetched from upstream.
    pub misses: u64,
    /// Pulls answered with the cached copy because the upstream could not answer.
    pub stale: u64,
    /// Blobs fetched from upstream.
    pub blob_fetches: u64,
}

impl ProxyState {
    pub(crate) fn tally(&self, namespace: &str, f: impl FnOnce(&mut CacheFigures)) {
        if let Ok(mut m) = self.figures.lock() {
            f(m.entry(namespace.to_string()).or_default());
        }
    }
}

fn same(a: &ProxyCacheRow, b: &ProxyCacheRow) -> bool {
    a.upstream_registry == b.upstream_registry
        && a.fallbacks == b.fallbacks
        && a.username == b.username
        && a.password_sealed == b.password_sealed
        && a.insecure == b.insecure
        && a.expiration_s == b.expiration_s
}

impl Registry {
    /// The cache organization `namespace`, if it is one (read at most every few seconds).
    pub(crate) async fn proxy_target(&self, namespace: &str) -> Result<Option<Arc<Target>>> {
        if !self.config.proxy.enabled {
            return Ok(None);
        }
        let fresh = self.proxies.targets.lock().ok().and_then(|g| {
            g.as_ref()
                .filter(|(at, _)| at.elapsed() < TARGETS_TTL)
                .map(|(_, m)| m.get(namespace).cloned())
        });
        if let Some(found) = fresh {
            return Ok(found);
        }
        let rows = self.db.proxy_caches().await?;
        let old: HashMap<String, Arc<Target>> = self
            .proxies
            .targets
            .lock()
            .ok()
            .and_then(|g| g.as_ref().map(|(_, m)| m.clone()))
            .unwrap_or_default();
        let mut map = HashMap::new();
        for row in rows {
            if let Some(t) = old.get(&row.namespace).filter(|t| same(&t.row, &row)) {
                map.insert(row.namespace.clone(), t.clone());
                continue;
            }
            match self.target_of(row.clone()).await {
                Ok(t) => {
                    map.insert(row.namespace.clone(), Arc::new(t));
                }
                Err(e) => {
                    tracing::warn!(namespace = %row.namespace, error = %e, "cannot use a pull-through cache's upstream")
                }
            }
        }
        let found = map.get(namespace).cloned();
        if let Ok(mut g) = self.proxies.targets.lock() {
            *g = Some((Instant::now(), map));
        }
        Ok(found)
    }

    /// Forgets the cache organizations read, so a change is seen at once on this instance.
    fn forget_proxy_targets(&self) {
        if let Ok(mut g) = self.proxies.targets.lock() {
            *g = None;
        }
    }

    async fn target_of(&self, row: ProxyCacheRow) -> Result<Target> {
        let mut all = vec![StoredFallback {
            upstream_registry: row.upstream_registry.clone(),
            username: row.username.clone(),
            password_sealed: row.password_sealed.clone(),
            insecure: row.insecure != 0,
        }];
        all.extend(stored_fallbacks(&row));
        let mut upstreams = Vec::with_capacity(all.len());
        for u in all {
            let (host, prefix) = split_upstream(&u.upstream_registry)?;
            let credentials = self
                .upstream_credentials(
                    u.username.clone(),
                    u.password_sealed.as_deref(),
                    "delete the cache configuration and create it again",
                )
                .await?;
            let client = self.cache_client(&host, u.insecure, credentials)?;
            let docker_hub = client.registry() == "registry-1.docker.io";
            upstreams.push(Upstream {
                namespace_prefix: prefix,
                client,
                docker_hub,
            });
        }
        Ok(Target { row, upstreams })
    }

    fn cache_client(
        &self,
        host: &str,
        insecure: bool,
        credentials: Option<Credentials>,
    ) -> Result<RegistryClient> {
        let settings = Settings {
            user_agent: format!("berth/{} (proxy cache)", env!("CARGO_PKG_VERSION")),
            ..Settings::default()
        };
        self.upstream_client(host, insecure, credentials, settings)
    }

    /// The name `name` is served as: itself, or — when a mirror organization is configured
    /// and `name`'s first component is no namespace here — `<mirror org>/<name>`.
    pub async fn mirror_name(&self, name: &str) -> Result<String> {
        let Some(org) = self
            .config
            .proxy
            .mirror_org
            .as_deref()
            .filter(|_| self.config.proxy.enabled)
        else {
            return Ok(name.to_string());
        };
        let first = name.split('/').next().unwrap_or(name);
        if first == org || self.namespace_exists(first).await? {
            return Ok(name.to_string());
        }
        Ok(format!("{org}/{name}"))
    }

    /// Whether an account (user or organization) owns namespace `ns`, read at most every few
    /// seconds per name.
    async fn namespace_exists(&self, ns: &str) -> Result<bool> {
        if let Ok(map) = self.proxies.namespaces.lock()
            && let Some((known, at)) = map.get(ns)
            && at.elapsed() < TARGETS_TTL
        {
            return Ok(*known);
        }
        let known = self
            .db
            .account_by_name(ns)
            .await?
            .is_some_and(|a| a.kind != berth_db::AccountKind::Robot);
        if let Ok(mut map) = self.proxies.namespaces.lock() {
            if map.len() > 10_000 {
                map.clear();
            }
            map.insert(ns.to_string(), (known, Instant::now()));
        }
        Ok(known)
    }

    /// This process's figures of cache organization `namespace` since it started.
    pub fn cache_figures(&self, namespace: &str) -> CacheFigures {
        self.proxies
            .figures
            .lock()
            .ok()
            .and_then(|m| m.get(namespace).copied())
            .unwrap_or_default()
    }

    /// Whether `namespace` is a pull-through cache organization.
    pub async fn is_proxy_cache(&self, namespace: &str) -> Result<bool> {
        Ok(self.proxy_target(namespace).await?.is_some())
    }
}

/// The configuration use cases of cache organizations.
pub struct ProxyCaches<'a> {
    registry: &'a Registry,
    auth: &'a Auth,
}

impl<'a> ProxyCaches<'a> {
    pub fn new(registry: &'a Registry, auth: &'a Auth) -> ProxyCaches<'a> {
        ProxyCaches { registry, auth }
    }

    fn feature(&self) -> Result<()> {
        if self.registry.config.proxy.enabled {
            Ok(())
        } else {
            Err(Error::not_found(
                "pull-through caching is off; an administrator turns it on with FEATURE_PROXY_CACHE: true",
            ))
        }
    }

    /// The organization's cache settings, for its members (all empty when it is no cache).
    pub async fn get(&self, actor: &Actor, org: &str) -> Result<ProxyCacheView> {
        self.feature()?;
        let row = self.auth.org(org).await?;
        if !actor.superuser && !self.auth.org_role(actor, &row).await?.member {
            return Err(Error::denied(format!(
                "only members of organization {org:?} see its cache settings"
            )));
        }
        Ok(match self.registry.db.proxy_cache(org).await? {
            Some(p) => ProxyCacheView {
                fallbacks: stored_fallbacks(&p)
                    .into_iter()
                    .map(|f| (f.upstream_registry, f.insecure))
                    .collect(),
                upstream_registry: p.upstream_registry,
                expiration_s: Some(p.expiration_s),
                insecure: p.insecure != 0,
            },
            None => ProxyCacheView::default(),
        })
    }

    fn check_spec(&self, spec: &ProxyCacheSpec) -> Result<(String, Option<String>)> {
        if spec.expiration_s.is_some_and(|e| e < 0) {
            return Err(Error::invalid(
                "expiration_s must be 0 (never) or more seconds",
            ));
        }
        if spec.fallbacks.len() > MAX_FALLBACKS {
            return Err(Error::invalid(format!(
                "fallback_upstreams: at most {MAX_FALLBACKS}"
            )));
        }
        for f in &spec.fallbacks {
            split_upstream(&f.upstream_registry)
                .map_err(|e| Error::invalid(format!("fallback_upstreams: {e}")))?;
        }
        split_upstream(&spec.upstream_registry)
    }

    /// Every upstream of `spec` passes the outbound guard.
    async fn check_hosts(&self, spec: &ProxyCacheSpec) -> Result<()> {
        let guard = self.registry.outbound_guard();
        for u in std::iter::once(spec.upstream_registry.as_str())
            .chain(spec.fallbacks.iter().map(|f| f.upstream_registry.as_str()))
        {
            let (host, _) = split_upstream(u)?;
            guard
                .check(&format!("https://{host}/v2/"))
                .await
                .map_err(|e| Error::invalid(format!("upstream {u}: {e}")))?;
        }
        Ok(())
    }

    /// Makes the organization a pull-through cache of `spec.upstream_registry`, for its
    /// administrators.
    pub async fn create(&self, caller: Caller<'_>, org: &str, spec: &ProxyCacheSpec) -> Result<()> {
        self.feature()?;
        self.auth.org_admin(caller.actor, org).await?;
        self.check_spec(spec)?;
        if self.registry.db.org_mirror(org).await?.is_some() {
            return Err(Error::invalid(format!(
                "organization {org} is mirrored (organization mirror); an organization is either a cache or a mirror"
            )));
        }
        self.check_hosts(spec).await?;
        let sealer = self.registry.sealer().await?;
        let seal = |p: &Option<String>| {
            p.as_deref()
                .filter(|p| !p.is_empty())
                .map(|p| sealer.seal(p.as_bytes()))
        };
        let sealed = seal(&spec.password);
        let fallbacks: Vec<StoredFallback> = spec
            .fallbacks
            .iter()
            .map(|f| StoredFallback {
                upstream_registry: f.upstream_registry.trim().to_string(),
                username: f.username.clone().filter(|u| !u.is_empty()),
                password_sealed: seal(&f.password),
                insecure: f.insecure,
            })
            .collect();
        let fallbacks =
            serde_json::to_string(&fallbacks).map_err(|e| Error::internal(e.to_string()))?;
        let row = ProxyCacheRow {
            namespace: org.to_string(),
            upstream_registry: spec.upstream_registry.trim().to_string(),
            username: spec.username.clone().filter(|u| !u.is_empty()),
            password_sealed: sealed,
            insecure: i64::from(spec.insecure),
            expiration_s: spec.expiration_s.unwrap_or(DEFAULT_EXPIRATION_S),
            created_at: 0,
            fallbacks,
        };
        let mut w = self.registry.db.write().await?;
        if !self
            .registry
            .db
            .immutability_policies_in(&mut w, org)
            .await?
            .is_empty()
        {
            return Err(Error::invalid(format!(
                "organization {org} has immutability policies; a cache must be able to move its tags (remove the policies first)"
            )));
        }
        if !self.registry.db.insert_proxy_cache(&mut w, &row).await? {
            return Err(Error::invalid(format!(
                "organization {org} is already a pull-through cache; delete its configuration to change it"
            )));
        }
        crate::caller::record_in(
            &self.registry.db,
            &mut w,
            caller
                .audit("create_proxy_cache_config")
                .meta(serde_json::json!({
                    "namespace": org, "upstream_registry": row.upstream_registry,
                    "expiration_s": row.expiration_s,
                })),
        )
        .await?;
        w.commit().await?;
        self.registry.forget_proxy_targets();
        Ok(())
    }

    /// Ends the organization's cache configuration, for its administrators.
    pub async fn delete(&self, caller: Caller<'_>, org: &str) -> Result<()> {
        self.feature()?;
        self.auth.org_admin(caller.actor, org).await?;
        let mut w = self.registry.db.write().await?;
        if !self.registry.db.delete_proxy_cache(&mut w, org).await? {
            return Err(Error::not_found(format!(
                "organization {org} is no pull-through cache"
            )));
        }
        crate::caller::record_in(
            &self.registry.db,
            &mut w,
            caller
                .audit("delete_proxy_cache_config")
                .meta(serde_json::json!({"namespace": org})),
        )
        .await?;
        w.commit().await?;
        self.registry.forget_proxy_targets();
        Ok(())
    }

    /// Tries `spec`'s upstream with its credentials (Quay's validateproxycache), for the
    /// organization's administrators.
    pub async fn validate(
        &self,
        actor: &Actor,
        org: &str,
        spec: &ProxyCacheSpec,
    ) -> Result<Validity> {
        self.feature()?;
        self.auth.org_admin(actor, org).await?;
        self.check_spec(spec)?;
        let primary = FallbackSpec {
            upstream_registry: spec.upstream_registry.clone(),
            username: spec.username.clone(),
            password: spec.password.clone(),
            insecure: spec.insecure,
        };
        // The answer is the first upstream's (Quay's); every further one must answer too.
        let mut first = None;
        for u in std::iter::once(&primary).chain(spec.fallbacks.iter()) {
            let (host, _) = split_upstream(&u.upstream_registry)?;
            let credentials = u
                .username
                .clone()
                .filter(|n| !n.is_empty())
                .map(|username| Credentials {
                    username,
                    password: u.password.clone().unwrap_or_default(),
                });
            let client = self.registry.cache_client(&host, u.insecure, credentials)?;
            let v = match client.ping().await {
                Ok(Ping::Authenticated) => Validity::Valid,
                Ok(Ping::Anonymous) => Validity::Anonymous,
                Err(e) => {
                    return Err(Error::invalid(format!(
                        "cannot use {}: {e}",
                        u.upstream_registry
                    )));
                }
            };
            first.get_or_insert(v);
        }
        Ok(first.unwrap_or(Validity::Anonymous))
    }
}

#[cfg(test)]
mod tests {
    use super::split_upstream;

    #[test]
    fn upstreams_are_a_host_and_an_optional_namespace() {
        assert_eq!(
            split_upstream("docker.io").ok(),
            Some(("docker.io".into(), None))
        );
        assert_eq!(
            split_upstream("Quay.io/prometheus/").ok(),
            Some(("quay.io".into(), Some("prometheus".into())))
        );
        assert_eq!(
            split_upstream("127.0.0.1:5000/a/b").ok(),
            Some(("127.0.0.1:5000".into(), Some("a/b".into())))
        );
        for bad in [
            "",
            "https://docker.io",
            "host name/x",
            "docker.io/UPPER",
            "a/../b",
        ] {
            assert!(split_upstream(bad).is_err(), "{bad:?}");
        }
    }
}
