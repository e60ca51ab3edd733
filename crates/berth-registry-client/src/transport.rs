//! Sending one request: every hop through the guard, redirects followed here (the guard's
//! clients follow none), retries after 429/502/503/504 and connect errors, and reqwest clients
//! cached per checked origin for a short while.

use crate::error::{Error, from_reqwest};
use crate::headers;
use crate::{ProxySettings, Settings};
use berth_net::{Checked, Guard};
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderValue, LOCATION, RETRY_AFTER};
use reqwest::{Method, Response, StatusCode};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};
use url::Url;

/// Redirect hops followed for one request.
const MAX_REDIRECTS: usize = 5;
/// How long a checked origin's addresses and client are reused before the guard checks again.
const RECHECK: Duration = Duration::from_secs(60);
/// First backoff between retries; doubled each time, capped at [`MAX_BACKOFF`].
const BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Origins whose clients are kept at once.
const MAX_CLIENTS: usize = 64;

/// One request to send.
pub(crate) struct Req<'a> {
    pub method: Method,
    pub url: Url,
    pub accept: Option<&'a str>,
    /// Sent to the request URL's origin only: dropped once a redirect leaves it.
    pub authorization: Option<HeaderValue>,
    /// A deadline for the whole exchange, body included (small requests); blobs have none and
    /// rely on the read timeout between bytes.
    pub deadline: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

fn origin(url: &Url) -> Option<Origin> {
    Some(Origin {
        scheme: url.scheme().to_string(),
        host: url
            .host_str()?
            .trim_matches(['[', ']'])
            .to_ascii_lowercase(),
        port: url.port_or_known_default()?,
    })
}

/// `url` for messages: no credentials, no query (where tokens and scopes travel).
pub(crate) fn shown(url: &Url) -> String {
    let host = url.host_str().unwrap_or("");
    match url.port() {
        Some(p) => format!("{}://{host}:{p}{}", url.scheme(), url.path()),
        None => format!("{}://{host}{}", url.scheme(), url.path()),
    }
}

struct Cached {
    addrs: Vec<SocketAddr>,
    client: reqwest::Client,
    checked: Instant,
}

pub(crate) struct Transport {
    guard: Guard,
    settings: Settings,
    roots: Vec<reqwest::Certificate>,
    proxies: Vec<reqwest::Proxy>,
    clients: Mutex<HashMap<Origin, Cached>>,
}

fn proxies(p: &ProxySettings) -> Result<Vec<reqwest::Proxy>, Error> {
    let no_proxy = p
        .no_proxy
        .as_deref()
        .and_then(reqwest::NoProxy::from_string);
    let mut out = Vec::new();
    // The proxy URLs may carry credentials: the messages name which setting is wrong only.
    if let Some(u) = p.http_proxy.as_deref().filter(|u| !u.trim().is_empty()) {
        let proxy = reqwest::Proxy::http(u.trim())
            .map_err(|_| Error::Invalid("the HTTP proxy setting is not a valid URL".into()))?;
        out.push(proxy.no_proxy(no_proxy.clone()));
    }
    if let Some(u) = p.https_proxy.as_deref().filter(|u| !u.trim().is_empty()) {
        let proxy = reqwest::Proxy::https(u.trim())
            .map_err(|_| Error::Invalid("the HTTPS proxy setting is not a valid URL".into()))?;
        out.push(proxy.no_proxy(no_proxy));
    }
    Ok(out)
}

impl Transport {
    pub fn new(guard: Guard, settings: Settings) -> Result<Transport, Error> {
        let roots = match &settings.extra_ca_pem {
            Some(pem) => reqwest::Certificate::from_pem_bundle(pem).map_err(|e| {
                Error::Invalid(format!("the extra CA bundle is not PEM certificates: {e}"))
            })?,
            None => Vec::new(),
        };
        if settings.extra_ca_pem.is_some() && roots.is_empty() {
            return Err(Error::Invalid(
                "the extra CA bundle holds no certificate".into(),
            ));
        }
        HeaderValue::from_str(&settings.user_agent)
            .map_err(|_| Error::Invalid("the user agent is not a valid header value".into()))?;
        let proxies = proxies(&settings.proxy)?;
        Ok(Transport {
            guard,
            settings,
            roots,
            proxies,
            clients: Mutex::new(HashMap::new()),
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// A client for `url`'s origin. The deny list is checked on every call; resolution and the
    /// address check at most [`RECHECK`] apart, and a client is rebuilt when the addresses change.
    async fn client_for(&self, url: &Url) -> Result<reqwest::Client, Error> {
        self.guard.check_syntax(url.as_str())?;
        let key =
            origin(url).ok_or_else(|| Error::Invalid(format!("{} has no host", shown(url))))?;
        if let Some(c) = self.lock().get(&key)
            && c.checked.elapsed() < RECHECK
        {
            return Ok(c.client.clone());
        }
        let checked = self.guard.check(url.as_str()).await?;
        let mut clients = self.lock();
        if let Some(c) = clients.get_mut(&key)
            && c.addrs == checked.addrs
        {
            c.checked = Instant::now();
            return Ok(c.client.clone());
        }
        let client = self.build(&checked)?;
        if clients.len() >= MAX_CLIENTS {
            clients.retain(|_, c| c.checked.elapsed() < RECHECK);
            if clients.len() >= MAX_CLIENTS {
                clients.clear();
            }
        }
        clients.insert(
            key,
            Cached {
                addrs: checked.addrs,
                client: client.clone(),
                checked: Instant::now(),
            },
        );
        Ok(client)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Origin, Cached>> {
        // A panic elsewhere while holding the lock leaves a usable map.
        self.clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn build(&self, target: &Checked) -> Result<reqwest::Client, Error> {
        let s = &self.settings;
        let mut b = self
            .guard
            .builder(target, s.connect_timeout)
            .read_timeout(s.read_timeout)
            .user_agent(s.user_agent.clone())
            .tls_danger_accept_invalid_certs(!s.verify_tls)
            .tls_certs_merge(self.roots.iter().cloned());
        for p in &self.proxies {
            b = b.proxy(p.clone());
        }
        b.build()
            .map_err(|e| Error::Invalid(format!("cannot build an HTTP client: {e}")))
    }

    /// Sends `req`, following redirects, retrying what may pass. A 429 that remains (or whose
    /// Retry-After is longer than `max_retry_after`) is [`Error::RateLimited`]; any other status
    /// is the caller's to read.
    pub async fn send(&self, req: &Req<'_>) -> Result<Response, Error> {
        let s = &self.settings;
        let mut attempt: u32 = 0;
        loop {
            let backoff = BACKOFF
                .saturating_mul(2u32.saturating_pow(attempt))
                .min(MAX_BACKOFF);
            let (outcome, wait) = match self.follow(req).await {
                Ok(resp) => {
                    let status = resp.status();
                    let retry_after = resp
                        .headers()
                        .get(RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| headers::retry_after(v, SystemTime::now()));
                    match status {
                        StatusCode::TOO_MANY_REQUESTS => match retry_after {
                            Some(d) if d > s.max_retry_after => {
                                return Err(Error::RateLimited {
                                    retry_after: Some(d),
                                });
                            }
                            _ => (
                                Err(Error::RateLimited { retry_after }),
                                retry_after.unwrap_or(backoff),
                            ),
                        },
                        StatusCode::SERVICE_UNAVAILABLE => match retry_after {
                            Some(d) if d > s.max_retry_after => return Ok(resp),
                            _ => (Ok(resp), retry_after.unwrap_or(backoff)),
                        },
                        StatusCode::BAD_GATEWAY | StatusCode::GATEWAY_TIMEOUT => {
                            (Ok(resp), backoff)
                        }
                        _ => return Ok(resp),
                    }
                }
                Err(Failure::Connect(e)) => (Err(e), backoff),
                Err(Failure::Other(e)) => return Err(e),
            };
            if attempt >= s.retries {
                return outcome;
            }
            attempt += 1;
            tracing::debug!(
                url = %shown(&req.url),
                attempt,
                wait_ms = wait.as_millis() as u64,
                "retrying an upstream registry request"
            );
            drop(outcome);
            tokio::time::sleep(wait).await;
        }
    }

    /// One attempt: the request and its redirects, each hop checked by the guard.
    async fn follow(&self, req: &Req<'_>) -> Result<Response, Failure> {
        let mut url = req.url.clone();
        let mut method = req.method.clone();
        let start = origin(&url);
        let mut authorization = req.authorization.clone();
        for hop in 0..=MAX_REDIRECTS {
            let client = self.client_for(&url).await.map_err(Failure::Other)?;
            let mut rb = client.request(method.clone(), url.clone());
            if let Some(a) = req.accept {
                rb = rb.header(ACCEPT, a);
            }
            if let Some(a) = &authorization {
                rb = rb.header(AUTHORIZATION, a.clone());
            }
            if let Some(d) = req.deadline {
                rb = rb.timeout(d);
            }
            let resp = rb.send().await.map_err(|e| {
                let connect = e.is_connect();
                let err = from_reqwest(&shown(&url), e);
                if connect && matches!(err, Error::Unreachable(_)) {
                    Failure::Connect(err)
                } else {
                    Failure::Other(err)
                }
            })?;
            let status = resp.status();
            if !status.is_redirection() {
                return Ok(resp);
            }
            let Some(location) = resp.headers().get(LOCATION) else {
                return Ok(resp);
            };
            if hop == MAX_REDIRECTS {
                break;
            }
            let next = location
                .to_str()
                .ok()
                .and_then(|l| url.join(l).ok())
                .ok_or_else(|| {
                    Failure::Other(Error::Invalid(format!(
                        "{} redirected to an invalid Location",
                        shown(&url)
                    )))
                })?;
            tracing::debug!(from = %shown(&url), to = %shown(&next), "following a redirect");
            if origin(&next) != start {
                authorization = None;
            }
            if status == StatusCode::SEE_OTHER && method != Method::HEAD {
                method = Method::GET;
            }
            url = next;
        }
        Err(Failure::Other(Error::Invalid(format!(
            "{} redirected more than {MAX_REDIRECTS} times",
            shown(&req.url)
        ))))
    }
}

enum Failure {
    /// Connecting failed: worth another attempt.
    Connect(Error),
    Other(Error),
}
