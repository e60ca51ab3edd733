//! The client of one upstream: its base URL (after the docker.io mapping), its credentials,
//! what it asked for, and ping; the request path is in request.rs, the wire in transport.rs.

use crate::auth::{Scheme, TokenCache};
use crate::error::{Error, truncate};
use crate::transport::{Req, Transport};
use crate::{Credentials, Ping, Settings, Upstream};
use reqwest::{Method, Response, StatusCode};
use std::sync::{Arc, Mutex};
use url::Url;

/// A client of one upstream registry; cheap to clone (shared state inside).
#[derive(Clone)]
pub struct RegistryClient {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub transport: Transport,
    pub registry: String,
    pub base: Url,
    docker_hub: bool,
    pub credentials: Option<Credentials>,
    /// What the registry asked for last, so later requests authenticate up front.
    pub scheme: Mutex<Scheme>,
    pub tokens: Mutex<TokenCache>,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient")
            .field("base", &self.inner.base.as_str())
            .finish_non_exhaustive()
    }
}

/// A response and whether the configured credentials went with it.
pub(crate) struct Sent {
    pub resp: Response,
    pub authenticated: bool,
}

/// `host[:port]` as given, checked, lowercased, with Docker Hub's aliases mapped to the host
/// that serves its API.
pub(crate) fn normalize_registry(registry: &str) -> Result<String, Error> {
    let r = registry.trim().trim_end_matches('/').to_ascii_lowercase();
    let bad = || {
        Error::Invalid(format!(
            "upstream registry {:?} must be host[:port]",
            truncate(registry, 100)
        ))
    };
    let (host, port) = if let Some(rest) = r.strip_prefix('[') {
        let (ip, after) = rest.split_once(']').ok_or_else(bad)?;
        ip.parse::<std::net::Ipv6Addr>().map_err(|_| bad())?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or_else(bad)?),
        };
        (&r[..ip.len() + 2], port)
    } else {
        match r.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (r.as_str(), None),
        }
    };
    let host_ok = host.starts_with('[')
        || (!host.is_empty()
            && host.len() <= 253
            && host.split('.').all(|l| {
                !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            }));
    if !host_ok {
        return Err(bad());
    }
    if let Some(p) = port
        && (p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) || p.parse::<u16>().is_err())
    {
        return Err(bad());
    }
    Ok(match r.as_str() {
        "docker.io" | "index.docker.io" => "registry-1.docker.io".to_string(),
        _ => r,
    })
}

impl RegistryClient {
    pub fn new(
        guard: berth_net::Guard,
        upstream: Upstream,
        settings: Settings,
    ) -> Result<RegistryClient, Error> {
        let registry = normalize_registry(&upstream.registry)?;
        let scheme = if upstream.insecure { "http" } else { "https" };
        let base = Url::parse(&format!("{scheme}://{registry}/"))
            .map_err(|e| Error::Invalid(format!("upstream registry {registry:?}: {e}")))?;
        guard.check_syntax(base.as_str())?;
        Ok(RegistryClient {
            inner: Arc::new(Inner {
                transport: Transport::new(guard, settings)?,
                docker_hub: registry == "registry-1.docker.io",
                registry,
                base,
                credentials: upstream.credentials,
                scheme: Mutex::new(Scheme::Unknown),
                tokens: Mutex::new(TokenCache::default()),
            }),
        })
    }

    /// The `host[:port]` actually contacted (after the docker.io mapping).
    pub fn registry(&self) -> &str {
        &self.inner.registry
    }

    /// `GET /v2/`: whether the registry answers, and whether it took the credentials.
    pub async fn ping(&self) -> Result<Ping, Error> {
        let url = self.url("/v2/")?;
        let what = format!("{} API root", self.inner.registry);
        if self.inner.credentials.is_none() {
            let resp = self
                .inner
                .transport
                .send(&Req {
                    method: Method::GET,
                    url,
                    accept: None,
                    authorization: None,
                    deadline: Some(self.settings().read_timeout),
                })
                .await?;
            return match resp.status() {
                s if s.is_success() || s == StatusCode::UNAUTHORIZED => Ok(Ping::Anonymous),
                _ => Err(self.fail(resp, &what, false).await),
            };
        }
        let sent = self.send(Method::GET, url, None, None, true).await?;
        if sent.resp.status().is_success() {
            Ok(if sent.authenticated {
                Ping::Authenticated
            } else {
                Ping::Anonymous
            })
        } else {
            Err(self.fail(sent.resp, &what, sent.authenticated).await)
        }
    }

    pub(crate) fn settings(&self) -> &Settings {
        self.inner.transport.settings()
    }

    /// `repo` checked as a repository name (so it cannot add path segments or a query), with
    /// Docker Hub's implicit `library/` for official images.
    pub(crate) fn repo_path(&self, repo: &str) -> Result<String, Error> {
        let name: berth_oci::RepoName = repo
            .parse()
            .map_err(|e| Error::Invalid(format!("repository {:?}: {e}", truncate(repo, 100))))?;
        Ok(if self.inner.docker_hub && !name.as_str().contains('/') {
            format!("library/{name}")
        } else {
            name.to_string()
        })
    }

    /// The registry's URL for an absolute path built from checked parts.
    pub(crate) fn url(&self, path_and_query: &str) -> Result<Url, Error> {
        self.inner
            .base
            .join(path_and_query)
            .map_err(|e| Error::Invalid(format!("{path_and_query}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_names_map_to_its_api_host() {
        for r in ["docker.io", "index.docker.io", "Docker.IO", " docker.io/ "] {
            assert_eq!(
                normalize_registry(r).ok().as_deref(),
                Some("registry-1.docker.io"),
                "{r}"
            );
        }
        for (r, want) in [
            ("quay.io", "quay.io"),
            ("ghcr.io", "ghcr.io"),
            ("127.0.0.1:5000", "127.0.0.1:5000"),
            ("Registry.Example:443", "registry.example:443"),
            ("[::1]:5000", "[::1]:5000"),
            ("[::1]", "[::1]"),
            ("docker.io:443", "docker.io:443"),
        ] {
            assert_eq!(normalize_registry(r).ok().as_deref(), Some(want), "{r}");
        }
        for r in [
            "",
            "https://quay.io",
            "quay.io/v2",
            "user@quay.io",
            "quay.io:",
            "quay.io:99999",
            "quay.io:80a",
            "quay.io?x",
            "[::1",
            "[nope]:1",
            "a..b",
        ] {
            assert!(normalize_registry(r).is_err(), "{r}");
        }
    }

    /// Callers spawn these futures on a multi-threaded runtime and stream blobs into bodies.
    #[test]
    fn futures_and_streams_are_send() {
        fn send<T: Send>(_: &T) {}
        fn send_sync<T: Send + Sync>() {}
        let c = RegistryClient::new(
            berth_net::Guard::default(),
            Upstream {
                registry: "quay.io".into(),
                insecure: false,
                credentials: None,
            },
            Settings::default(),
        )
        .expect("client");
        let d = berth_oci::Digest::sha256_of(b"");
        send(&c.ping());
        send(&c.list_tags("a"));
        send(&c.catalog());
        send(&c.head_manifest("a", "b"));
        send(&c.get_manifest("a", "b"));
        send(&c.get_blob("a", &d, None));
        send_sync::<crate::BlobStream>();
        send_sync::<RegistryClient>();
        send_sync::<Error>();
    }

    #[test]
    fn docker_hub_official_images_get_library_and_names_are_checked() {
        let hub = RegistryClient::new(
            berth_net::Guard::default(),
            Upstream {
                registry: "docker.io".into(),
                insecure: false,
                credentials: None,
            },
            Settings::default(),
        )
        .expect("client");
        assert_eq!(hub.registry(), "registry-1.docker.io");
        assert_eq!(
            hub.repo_path("alpine").ok().as_deref(),
            Some("library/alpine")
        );
        assert_eq!(
            hub.repo_path("bitnami/redis").ok().as_deref(),
            Some("bitnami/redis")
        );
        for bad in [
            "../x",
            "a/../../b",
            "a?x=1",
            "A",
            "a//b",
            "a#b",
            "a%2fb",
            "",
        ] {
            assert!(hub.repo_path(bad).is_err(), "{bad}");
        }
        let quay = RegistryClient::new(
            berth_net::Guard::default(),
            Upstream {
                registry: "quay.io".into(),
                insecure: true,
                credentials: None,
            },
            Settings::default(),
        )
        .expect("client");
        assert_eq!(quay.repo_path("alpine").ok().as_deref(), Some("alpine"));
        assert_eq!(
            quay.url("/v2/").map(|u| u.to_string()).ok().as_deref(),
            Some("http://quay.io/v2/")
        );
    }
}
