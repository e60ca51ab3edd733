//! The outbound OCI/Docker registry client of repository mirroring and the pull-through cache:
//! ping, tag and catalog listing, manifests and verified blob streams from an upstream registry.
//! It depends only on berth-oci (names, digests, media types) and berth-net: every request, each
//! redirect hop and the token realm included, passes the `berth_net::Guard` first.

mod auth;
mod blob;
mod client;
mod error;
mod headers;
mod list;
mod manifest;
mod namespace;
mod request;
mod transport;

pub use blob::BlobStream;
pub use client::RegistryClient;
pub use error::Error;
pub use namespace::NamespaceApi;

use std::fmt;
use std::time::Duration;

/// How the client talks to upstreams; the same for every upstream of one Berth.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Verify upstream TLS certificates (default true).
    pub verify_tls: bool,
    /// A PEM bundle of root certificates added to the system's.
    pub extra_ca_pem: Option<Vec<u8>>,
    /// Outbound HTTP(S) proxies (default: none).
    pub proxy: ProxySettings,
    /// Default 5 s.
    pub connect_timeout: Duration,
    /// Default 30 s: the longest idle time between bytes, and the whole of a small request.
    pub read_timeout: Duration,
    /// Default 30 s: the longest Retry-After honoured by sleeping.
    pub max_retry_after: Duration,
    /// Default 2: extra attempts after a 429/502/503/504 or a connect error.
    pub retries: u32,
    /// Default `berth/<version>`.
    pub user_agent: String,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            verify_tls: true,
            extra_ca_pem: None,
            proxy: ProxySettings::default(),
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(30),
            retries: 2,
            user_agent: concat!("berth/", env!("CARGO_PKG_VERSION")).to_string(),
        }
    }
}

/// Outbound proxies, as `HTTP_PROXY`, `HTTPS_PROXY` and `NO_PROXY` would give them. With a
/// proxy the guard still checks the target host first.
#[derive(Clone, Default)]
pub struct ProxySettings {
    pub http_proxy: Option<String>,
    pub https_proxy: Option<String>,
    pub no_proxy: Option<String>,
}

/// A proxy URL without the credentials it may carry.
fn proxy_shown(u: &Option<String>) -> Option<String> {
    u.as_deref().map(|u| match url::Url::parse(u) {
        Ok(p) => format!(
            "{}://{}{}",
            p.scheme(),
            p.host_str().unwrap_or(""),
            p.port().map(|p| format!(":{p}")).unwrap_or_default()
        ),
        Err(_) => "<invalid>".to_string(),
    })
}

impl fmt::Debug for ProxySettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxySettings")
            .field("http_proxy", &proxy_shown(&self.http_proxy))
            .field("https_proxy", &proxy_shown(&self.https_proxy))
            .field("no_proxy", &self.no_proxy)
            .finish()
    }
}

/// A user name and password (or token) for an upstream.
#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// One upstream registry.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// `host[:port]`; `docker.io` and `index.docker.io` mean `registry-1.docker.io`.
    pub registry: String,
    /// Plain http instead of https.
    pub insecure: bool,
    pub credentials: Option<Credentials>,
}

/// What [`RegistryClient::ping`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ping {
    /// No credentials were needed, or none were given and the registry asked for them.
    Anonymous,
    /// The registry asked for credentials and accepted the configured ones.
    Authenticated,
}

/// A manifest's identity, as a HEAD tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestInfo {
    pub digest: berth_oci::Digest,
    pub media_type: String,
    pub size: u64,
}

/// A manifest's bytes, verified against its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub bytes: bytes::Bytes,
    pub media_type: String,
    pub digest: berth_oci::Digest,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let s = Settings {
            proxy: ProxySettings {
                http_proxy: Some("http://user:proxy-secret@proxy.example:3128".into()),
                https_proxy: Some("not a url".into()),
                no_proxy: Some("localhost".into()),
            },
            ..Settings::default()
        };
        let text = format!("{s:?}");
        assert!(
            !text.contains("proxy-secret") && text.contains("proxy.example:3128"),
            "{text}"
        );
        let u = Upstream {
            registry: "quay.io".into(),
            insecure: false,
            credentials: Some(Credentials {
                username: "robot".into(),
                password: "registry-secret".into(),
            }),
        };
        assert!(!format!("{u:?}").contains("registry-secret"));
        assert!(Settings::default().user_agent.starts_with("berth/"));
    }
}
