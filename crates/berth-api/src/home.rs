//! `GET /`: what a person who opens the registry's address in a browser needs until the web UI
//! exists: which registry this is, how to log in and push, and where the API and health live.

use crate::AppState;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// Escapes text for HTML.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub async fn home(State(st): State<Arc<AppState>>, req: Request) -> Response {
    let base = crate::auth::base_url(&st, req.headers());
    let host = base
        .split_once("://")
        .map(|(_, h)| h.to_string())
        .unwrap_or_else(|| base.clone());
    let tls_flag = if base.starts_with("http://") {
        " --tls-verify=false"
    } else {
        ""
    };
    let first_user = if st.user_initialize {
        "<p>No account yet? Create the first one with <code>POST /api/v1/user/initialize</code> \
         (<code>{\"username\", \"password\", \"email\"}</code>).</p>"
    } else {
        ""
    };
    let state = if st.readonly {
        "<p><strong>This registry is read-only</strong> (<code>REGISTRY_STATE: readonly</code>): \
         pulls work, pushes and changes are refused.</p>"
    } else {
        ""
    };
    let host = esc(&host);
    let body = format!(
        r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Berth registry {host}</title>
<style>
:root {{ color-scheme: light dark; font-family: system-ui, sans-serif; }}
body {{ max-width: 46rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.5; }}
pre {{ padding: .75rem; overflow-x: auto; border: 1px solid #8884; border-radius: 6px; }}
</style></head>
<body>
<h1>Berth container registry</h1>
<p>This is <strong>{host}</strong>, an OCI and Docker registry (Berth {version}).</p>
{state}
<h2>Log in and push</h2>
<pre>podman login{tls_flag} {host}
podman push{tls_flag} IMAGE {host}/NAMESPACE/NAME:TAG
podman pull{tls_flag} {host}/NAMESPACE/NAME:TAG</pre>
{first_user}
<h2>API and operations</h2>
<ul>
<li><a href="/api/v1/discovery">/api/v1/discovery</a>: the REST API (OpenAPI document)</li>
<li><a href="/v2/">/v2/</a>: the registry API</li>
<li><a href="/health/instance">/health/instance</a> and <a href="/health/endtoend">/health/endtoend</a>: health</li>
</ul>
</body>
</html>
"#,
        version = env!("CARGO_PKG_VERSION"),
    );
    let mut resp = body.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    resp
}
