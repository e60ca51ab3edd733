//! What repository mirroring and pull-through caches share about upstream registries: their
//! sealed credentials, the client (through the outbound guard), and the count of their errors.

use crate::{Error, Registry, Result};
use berth_registry_client::{Credentials, RegistryClient, Settings, Upstream};

/// Counts an error an upstream answered (or the lack of an answer: status `none`).
pub(crate) fn count_error(upstream: &str, e: &berth_registry_client::Error) {
    let status = e
        .status()
        .map(|s| s.to_string())
        .unwrap_or_else(|| "none".into());
    metrics::counter!("berth_upstream_errors_total", "upstream" => upstream.to_string(), "status" => status)
        .increment(1);
}

impl Registry {
    /// `username` with its password unsealed; `fix` says how to set the password again when it
    /// cannot be unsealed.
    pub(crate) async fn upstream_credentials(
        &self,
        username: Option<String>,
        password_sealed: Option<&str>,
        fix: &str,
    ) -> Result<Option<Credentials>> {
        let password = match password_sealed {
            Some(s) => Some(self.sealer().await?.open_string(s).ok_or_else(|| {
                Error::Upstream(format!(
                    "an upstream password cannot be unsealed (DATABASE_SECRET_KEY changed?); {fix}"
                ))
            })?),
            None => None,
        };
        Ok(username.map(|username| Credentials {
            username,
            password: password.unwrap_or_default(),
        }))
    }

    /// A client of the registry at `host` (plain HTTP when `insecure`), every request through
    /// the outbound guard.
    pub(crate) fn upstream_client(
        &self,
        host: &str,
        insecure: bool,
        credentials: Option<Credentials>,
        settings: Settings,
    ) -> Result<RegistryClient> {
        RegistryClient::new(
            self.outbound_guard(),
            Upstream {
                registry: host.to_string(),
                insecure,
                credentials,
            },
            settings,
        )
        .map_err(|e| Error::invalid(format!("upstream {host}: {e}")))
    }
}
