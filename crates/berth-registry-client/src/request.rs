//! The one request path every operation takes: the registry's authentication challenge
//! answered (Basic, or a Bearer token from the realm), credentials kept to the registry's origin
//! and its realm, and unexpected answers turned into [`Error`]s.

use crate::auth::{self, Scheme, TokenAnswer, TokenCache};
use crate::client::{RegistryClient, Sent};
use crate::error::{Error, body_message, from_reqwest, truncate};
use crate::transport::{Req, shown};
use bytes::{Bytes, BytesMut};
use reqwest::header::{CONTENT_LENGTH, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use reqwest::{Method, Response, StatusCode};
use std::sync::{MutexGuard, PoisonError};
use std::time::{Instant, SystemTime};
use url::Url;

/// The largest error body read for its message, and the largest token answer.
const ERROR_BODY_MAX: usize = 64 * 1024;
const TOKEN_BODY_MAX: usize = 1024 * 1024;

impl RegistryClient {
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
                "{} asked for authentication in a scheme this client does not support ({detail})",
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
