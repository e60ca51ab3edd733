//! HTTP: the `/v2` registry API (`oci/`), the `/api/v1` REST API (`rest/`), the web UI (`ui/`),
//! browser sign-in and sessions (`web_login.rs`), health and metrics endpoints, and the one place
//! where domain errors become HTTP answers (`error.rs`: `Problem::from`, rendered as OCI JSON or
//! Quay JSON).
//!
//! Rule: a handler parses the request, calls `berth-core` and renders the answer. It writes no
//! audit record, runs no transaction and never touches the database (this crate does not depend
//! on `berth-db` and names no row type; `tests/layers.rs` fails if that changes). Access
//! decisions are inside the core's doors: account and policy use cases, and `/api/v1` content
//! (`berth_core::content::Content`: repositories, tags, labels, manifests). `/v2` handlers call
//! the `Registry` under the grants of the registry token the core issued.

mod auth;
mod drain;
mod error;
mod observe;
mod oci;
mod rest;
mod ui;
mod web_login;

pub use error::ApiError;

use axum::Router;
use axum::routing::{any, get};
use berth_core::Registry;
use metrics_exporter_prometheus::PrometheusHandle;
use std::sync::Arc;

/// Everything a handler needs.
#[derive(Clone)]
pub struct AppState {
    pub registry: Registry,
    pub metrics: Option<PrometheusHandle>,
    /// Redirect blob GETs to presigned storage URLs when the backend offers them.
    pub redirect_blobs: bool,
    pub auth: berth_core::auth::Auth,
    /// `PREFERRED_URL_SCHEME://SERVER_HOSTNAME` when configured: the base of token realms.
    pub public_url: Option<String>,
    /// The scheme this server answers on (http, https), for realms built from `Host`.
    pub scheme: &'static str,
    /// `FEATURE_USER_INITIALIZE`: `POST /api/v1/user/initialize` creates the first user.
    pub user_initialize: bool,
    /// `REGISTRY_STATE: readonly`: every write on `/v2` and `/api/v1` is refused, reads served.
    pub readonly: bool,
    /// `DISABLE_PUSHES`: pushes are refused on `/v2`; the API stays writable.
    pub disable_pushes: bool,
    /// `FEATURE_DIRECT_LOGIN: false`: no password sign-in for users (external providers only).
    pub direct_login: bool,
    /// Whether `/metrics` is served on this router (it is not when it has its own address).
    pub metrics_here: bool,
    /// `FEATURE_LIBRARY_SUPPORT`: the namespace one-component names map to (`LIBRARY_NAMESPACE`,
    /// Quay's `library`); `None` refuses such names.
    pub library: Option<String>,
}

impl AppState {
    /// The full name for a repository name as a client wrote it: a one-component name maps to
    /// the library namespace (`plainonly` → `library/plainonly`), or is refused without it.
    pub fn full_name(&self, name: &str) -> Result<String, String> {
        if name.contains('/') {
            return Ok(name.to_string());
        }
        match &self.library {
            Some(lib) => Ok(format!("{lib}/{name}")),
            None => Err(format!(
                "repository name {name:?} has no namespace: use NAMESPACE/{name} (one-component names map to a library namespace only with FEATURE_LIBRARY_SUPPORT)"
            )),
        }
    }
}

/// What Quay says when the registry is read-only; Berth says the same.
pub const READONLY_MESSAGE: &str = "System is currently read-only. Pulls will succeed but all write operations are currently suspended.";

/// `/metrics` alone, unauthenticated, for its own listener (`METRICS_LISTEN_ADDRESS`).
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(observe::metrics))
        .with_state(Arc::new(state))
}

pub use observe::describe_metrics;

/// The complete HTTP application.
pub fn router(state: AppState) -> Router {
    let state = Arc::new(state);
    Router::new()
        .route("/", get(ui::home))
        .route("/v2/auth", get(auth::token))
        .route("/v2", any(oci::dispatch))
        .route("/v2/", any(oci::dispatch))
        .route("/v2/{*rest}", any(oci::dispatch))
        .route("/health/instance", get(observe::health_instance))
        .route("/health/endtoend", get(observe::health_endtoend))
        .route("/metrics", get(observe::metrics_guarded))
        .route("/oauth2/{service}/start", get(web_login::start))
        .route("/oauth2/{service}/callback", get(web_login::callback))
        .merge(rest::router())
        .merge(ui::router())
        .layer(axum::middleware::from_fn(observe::track))
        .layer(axum::middleware::from_fn(auth::remember_authority))
        .layer(axum::middleware::from_fn(drain::keep_connection_usable))
        // Defence in depth: a bug that panics in a handler costs that request a 500, never the
        // connection or the process.
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            error::panic_response,
        ))
        .layer(
            tower_http::trace::TraceLayer::new_for_http()
                // One line per request is for debugging (RUST_LOG=debug); INFO keeps start, stop,
                // errors and what the audit log records.
                .make_span_with(
                    tower_http::trace::DefaultMakeSpan::new().level(tracing::Level::DEBUG),
                )
                .on_response(
                    tower_http::trace::DefaultOnResponse::new().level(tracing::Level::DEBUG),
                ),
        )
        .with_state(state)
}
