//! Talking to providers: discovery documents and key sets (cached per instance), the
//! `openidconnect` client for a provider, and the HTTP adapter that sends `openidconnect`'s
//! requests through the workspace's reqwest.

use super::OidcProvider;
use crate::{Error, Result};
use openidconnect::core::{CoreClient, CoreClientAuthMethod, CoreProviderMetadata};
use openidconnect::{AuthType, ClientId, ClientSecret, JsonWebKeySet, RedirectUrl};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long discovery documents and key sets are reused.
pub(super) const DISCOVERY_TTL: Duration = Duration::from_secs(300);
/// Largest response accepted from a provider.
const MAX_RESPONSE: usize = 1 << 20;

pub(super) struct ProviderState {
    pub(super) cfg: OidcProvider,
    cache: tokio::sync::Mutex<Option<(Instant, Arc<CoreProviderMetadata>)>>,
}

/// The configured providers and their cached metadata.
#[derive(Clone)]
pub struct Oidc {
    providers: Arc<Vec<ProviderState>>,
    /// Only when there are providers: building a client loads the system's TLS roots (code,
    /// certificates and heap that a registry without external login never needs).
    http: Option<reqwest::Client>,
}

impl Oidc {
    pub fn new(providers: &[OidcProvider]) -> Result<Oidc> {
        let http = if providers.is_empty() {
            None
        } else {
            Some(
                reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .connect_timeout(Duration::from_secs(5))
                    .timeout(Duration::from_secs(15))
                    .build()
                    .map_err(|e| {
                        Error::Internal(format!("cannot set up the OIDC HTTP client: {e}"))
                    })?,
            )
        };
        Ok(Oidc {
            providers: Arc::new(
                providers
                    .iter()
                    .map(|p| ProviderState {
                        cfg: p.clone(),
                        cache: tokio::sync::Mutex::new(None),
                    })
                    .collect(),
            ),
            http,
        })
    }

    /// The HTTP client for the providers (there is none without providers).
    pub(super) fn http(&self) -> Result<reqwest::Client> {
        self.http
            .clone()
            .ok_or_else(|| Error::not_found("no external login service is configured"))
    }

    pub(super) fn state(&self, id: &str) -> Result<&ProviderState> {
        self.providers
            .iter()
            .find(|p| p.cfg.id == id)
            .ok_or_else(|| Error::not_found(format!("no external login service {id:?}")))
    }

    /// The configured providers.
    pub fn providers(&self) -> impl Iterator<Item = &OidcProvider> {
        self.providers.iter().map(|p| &p.cfg)
    }

    /// Discovery document and key set, from the cache unless older than `max_age`.
    pub(super) async fn metadata(
        &self,
        p: &ProviderState,
        max_age: Duration,
    ) -> Result<Arc<CoreProviderMetadata>> {
        let mut cache = p.cache.lock().await;
        if let Some((at, m)) = cache.as_ref()
            && at.elapsed() < max_age
        {
            return Ok(m.clone());
        }
        let m = Arc::new(self.discover(&p.cfg).await?);
        *cache = Some((Instant::now(), m.clone()));
        Ok(m)
    }

    async fn discover(&self, cfg: &OidcProvider) -> Result<CoreProviderMetadata> {
        let unreachable = |what: &str, e: &dyn std::fmt::Display| {
            tracing::warn!(service = %cfg.id, error = %e, "OIDC {what} failed");
            Error::Upstream(format!(
                "the identity provider {:?} could not be reached ({what}: {e})",
                cfg.title
            ))
        };
        let url = format!(
            "{}/.well-known/openid-configuration",
            cfg.server.trim_end_matches('/')
        );
        let resp = self
            .http()?
            .get(&url)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| unreachable("discovery", &e))?;
        if !resp.status().is_success() {
            return Err(unreachable(
                "discovery",
                &format!("{url} answered {}", resp.status()),
            ));
        }
        let body = read_capped(resp)
            .await
            .map_err(|e| unreachable("discovery", &e))?;
        let mut meta: CoreProviderMetadata = serde_json::from_slice(&body)
            .map_err(|e| unreachable("discovery", &format!("{url}: {e}")))?;
        // Quay compares the configured server loosely (a trailing slash is common in configs);
        // the issuer tokens must carry is the discovery document's own, checked exactly.
        let expected = cfg.issuer.as_deref().unwrap_or(&cfg.server);
        if meta.issuer().as_str().trim_end_matches('/') != expected.trim_end_matches('/') {
            return Err(unreachable(
                "discovery",
                &format!(
                    "the document names issuer {:?}, not {expected:?}; set OIDC_ISSUER if that is intended",
                    meta.issuer().as_str()
                ),
            ));
        }
        let client = self.http()?;
        let http = |req| send(client.clone(), req);
        let jwks = JsonWebKeySet::fetch_async(meta.jwks_uri(), &http)
            .await
            .map_err(|e| unreachable("key set download", &e))?;
        meta = meta.set_jwks(jwks);
        Ok(meta)
    }

    pub(super) fn client(
        cfg: &OidcProvider,
        meta: &CoreProviderMetadata,
        redirect_uri: &str,
    ) -> Result<OidcClient> {
        let redirect = RedirectUrl::new(redirect_uri.to_string())
            .map_err(|e| Error::Internal(format!("callback URL {redirect_uri:?}: {e}")))?;
        let mut c = CoreClient::from_provider_metadata(
            meta.clone(),
            ClientId::new(cfg.client_id.clone()),
            cfg.client_secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(redirect);
        // HTTP Basic is the default; a provider that lists only client_secret_post gets that.
        if let Some(methods) = meta.token_endpoint_auth_methods_supported()
            && !methods.contains(&CoreClientAuthMethod::ClientSecretBasic)
            && methods.contains(&CoreClientAuthMethod::ClientSecretPost)
        {
            c = c.set_auth_type(AuthType::RequestBody);
        }
        Ok(c)
    }
}

pub(super) type OidcClient = CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

/// Failure to talk to a provider over HTTP.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error(transparent)]
    Reqwest(#[from] reqwest::Error),
    #[error("the response is larger than 1 MiB")]
    TooLarge,
    #[error("{0}")]
    Http(String),
}

pub(super) async fn read_capped(
    mut resp: reqwest::Response,
) -> std::result::Result<Vec<u8>, HttpError> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        if body.len() + chunk.len() > MAX_RESPONSE {
            return Err(HttpError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// `openidconnect`'s HTTP requests, sent through the workspace's reqwest.
pub(super) async fn send(
    http: reqwest::Client,
    req: openidconnect::HttpRequest,
) -> std::result::Result<openidconnect::HttpResponse, HttpError> {
    let req = reqwest::Request::try_from(req)?;
    let resp = http.execute(req).await?;
    let mut out = openidconnect::http::Response::builder().status(resp.status());
    for (k, v) in resp.headers() {
        out = out.header(k, v);
    }
    let body = read_capped(resp).await?;
    out.body(body).map_err(|e| HttpError::Http(e.to_string()))
}
