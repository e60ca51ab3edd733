//! The client of one upstream: its base URL, its credentials and what it asked for, and the one
//! request path every operation takes (authentication answered here, the wire in transport).

use crate::auth::{self, Scheme, TokenAnswer, TokenCache};
use crate::error::{Error, body_message, from_reqwest, truncate};
use crate::transport::{Req, Transport, shown};
use crate::{Credentials, Ping, Settings, Upstream};
use bytes::{Bytes, BytesMut};
use reqwest::header::{CONTENT_LENGTH, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use reqwest::{Method, Response, StatusCode};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Instant, SystemTime};
use url::Url;

/// The largest error body read for its message, and the largest token answer.
const ERROR_BODY_MAX: usize = 64 * 1024;
const TOKEN_BODY_MAX: usize = 1024 * 1024;

/// A client of one upstream registry; cheap to clone (shared state inside).
#[derive(Clone)]
pub struct RegistryClient {
    inner: Arc<Inner>,
}

struct Inner {
    transport: Transport,
    registry: String,
    base: Url,
    docker_hub: bool,
    credentials: Option<Credentials>,
    scheme: Mutex<Scheme>,
    tokens: Mutex<TokenCache>,
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

    fn same_origin(&self, url: &Url) -> bool {
        url.origin() == self.inner.base.origin()
    }

    fn scheme(&self) -> MutexGuard<'_, Scheme> {
        self.inner
            .scheme
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn tokens(&self) -> MutexGuard<'_, TokenCache> {
        self.inner
            .tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends a request to the registry, answering its authentication challenge once. `scope` is
    /// the token scope the request needs (`repository:<repo>:pull`, `registry:catalog:*`). A URL
    /// outside the registry's origin (a Link to another host) gets no credentials.
    pub(crate) async fn send(
        &self,
        method: Method,
        url: Url,
        accept: Option<&str>,
        scope: Option<&str>,
        small: bool,
    ) -> Result<Sent, Error> {
        let own = self.same_origin(&url);
        let deadline = small.then_some(self.settings().read_timeout);
        let key = scope.unwrap_or("");
        let mut authorization = if own {
            self.up_front(scope).await?
        } else {
            None
        };
        let mut sent_basic = matches!(*self.scheme(), Scheme::Basic) && authorization.is_some();
        let mut answered = false;
        loop {
            let req = Req {
                method: method.clone(),
                url: url.clone(),
                accept,
                authorization: authorization.clone(),
                deadline,
            };
            let resp = self.inner.transport.send(&req).await?;
            let authenticated = authorization.is_some() && self.inner.credentials.is_some();
            if resp.status() != StatusCode::UNAUTHORIZED || answered || !own {
                return Ok(Sent {
                    resp,
                    authenticated,
                });
            }
            answered = true;
            let challenges: Vec<_> = resp
                .headers()
                .get_all(WWW_AUTHENTICATE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(auth::parse_challenges)
                .collect();
            match auth::choose(&challenges) {
                Some((Scheme::Bearer { realm, service }, challenge_scope)) => {
                    self.tokens().forget(key);
                    *self.scheme() = Scheme::Bearer {
                        realm: realm.clone(),
                        service: service.clone(),
                    };
                    let token_scope = challenge_scope.as_deref().or(scope);
                    authorization = Some(
                        self.fetch_token(&realm, service.as_deref(), token_scope, key)
                            .await?,
                    );
                }
                Some((Scheme::Basic, _)) if !sent_basic => {
                    let Some(creds) = &self.inner.credentials else {
                        return Ok(Sent {
                            resp,
                            authenticated,
                        });
                    };
                    *self.scheme() = Scheme::Basic;
                    authorization = auth::basic(creds);
                    sent_basic = true;
                }
                _ => {
                    return Ok(Sent {
                        resp,
                        authenticated,
                    });
                }
            }
        }
    }

    /// The Authorization to send before being asked, from what the registry asked last time.
    async fn up_front(&self, scope: Option<&str>) -> Result<Option<HeaderValue>, Error> {
        let known = self.scheme().clone();
        match known {
            Scheme::Unknown => Ok(None),
            Scheme::Basic => Ok(self.inner.credentials.as_ref().and_then(auth::basic)),
            Scheme::Bearer { realm, service } => {
                let key = scope.unwrap_or("");
                let cached = self.tokens().get(key, Instant::now());
                match cached {
                    Some(t) => Ok(auth::bearer(&t)),
                    None => self
                        .fetch_token(&realm, service.as_deref(), scope, key)
                        .await
                        .map(Some),
                }
            }
        }
    }

    /// A Bearer token from `realm` for `scope`, with the credentials if any; cached under `key`.
    async fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: Option<&str>,
        key: &str,
    ) -> Result<HeaderValue, Error> {
        let mut url = Url::parse(realm).map_err(|_| {
            Error::Invalid(format!(
                "the token realm {:?} is not a URL",
                truncate(realm, 200)
            ))
        })?;
        let creds = self.inner.credentials.as_ref();
        if creds.is_some() && self.inner.base.scheme() == "https" && url.scheme() != "https" {
            return Err(Error::Invalid(format!(
                "the token realm {} is not https; credentials are sent over https only",
                shown(&url)
            )));
        }
        // Credentials written into the realm URL itself are never used.
        let _ = url.set_username("");
        let _ = url.set_password(None);
        url.set_fragment(None);
        if service.is_some() || scope.is_some() {
            let mut q = url.query_pairs_mut();
            if let Some(s) = service {
                q.append_pair("service", s);
            }
            if let Some(s) = scope {
                q.append_pair("scope", s);
            }
        }
        let what = format!("token endpoint {}", shown(&url));
        let resp = self
            .inner
            .transport
            .send(&Req {
                method: Method::GET,
                url,
                accept: Some("application/json"),
                authorization: creds.and_then(auth::basic),
                deadline: Some(self.settings().read_timeout),
            })
            .await?;
        match resp.status() {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                return Err(Error::Unauthorized(if creds.is_some() {
                    format!("the {what} refused the credentials")
                } else {
                    format!("the {what} refused anonymous access; configure credentials")
                }));
            }
            s if !s.is_success() => return Err(self.fail(resp, &what, false).await),
            _ => {}
        }
        let body = read_capped(resp, TOKEN_BODY_MAX, &what).await?;
        let (token, ttl) = serde_json::from_slice::<TokenAnswer>(&body)
            .ok()
            .and_then(TokenAnswer::into_parts)
            .ok_or_else(|| Error::Invalid(format!("the {what} answered no token")))?;
        let header = auth::bearer(&token).ok_or_else(|| {
            Error::Invalid(format!(
                "the {what} answered a token that is not a header value"
            ))
        })?;
        self.tokens().put(key, token, ttl, Instant::now());
        Ok(header)
    }

    /// An unexpected answer as an [`Error`]; `what` names what was asked for.
    pub(crate) async fn fail(&self, resp: Response, what: &str, authenticated: bool) -> Error {
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| crate::headers::retry_after(v, SystemTime::now()));
        let body = tokio::time::timeout(
            self.settings().read_timeout,
            read_capped(resp, ERROR_BODY_MAX, what),
        )
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
        let msg = body_message(&body);
        let detail = if msg.is_empty() {
            what.to_string()
        } else {
            format!("{what}: {msg}")
        };
        match status.as_u16() {
            401 if authenticated => Error::Unauthorized(format!(
                "{} refused the credentials ({detail})",
                self.inner.registry
            )),
            401 if self.inner.credentials.is_some() => Error::Unauthorized(format!(
                "{} asked for authentication it offers no supported scheme for ({detail})",
                self.inner.registry
            )),
            401 => Error::Unauthorized(format!(
                "{} requires credentials and none are configured ({detail})",
                self.inner.registry
            )),
            403 => Error::Denied(detail),
            404 => Error::NotFound(detail),
            429 => Error::RateLimited { retry_after },
            s => Error::Status {
                status: s,
                message: detail,
            },
        }
    }
}

/// A response's body, refused beyond `cap` bytes.
pub(crate) async fn read_capped(
    mut resp: Response,
    cap: usize,
    what: &str,
) -> Result<Bytes, Error> {
    let too_large = || Error::Invalid(format!("{what} is larger than {cap} bytes"));
    let declared = resp
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > cap as u64) {
        return Err(too_large());
    }
    let mut buf = BytesMut::with_capacity(declared.map_or(0, |n| n as usize).min(cap));
    while let Some(chunk) = resp.chunk().await.map_err(|e| from_reqwest(what, e))? {
        if buf.len() + chunk.len() > cap {
            return Err(too_large());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
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
