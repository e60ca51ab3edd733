//! Credentials on the wire: Basic and Bearer headers, the caller's address, and the registry
//! token endpoint `/v2/auth` (the Docker token protocol: Basic credentials and `scope`s in, an
//! ES256 JWT granting what the account may do out).

use crate::AppState;
use crate::error::ApiError;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use berth_core::auth::Actor;
use berth_core::auth::login::LoginContext;
use berth_oci::ErrorCode;
use std::net::SocketAddr;
use std::sync::Arc;

/// A request-internal header carrying the HTTP/2 `:authority` (set by [`remember_authority`]).
pub const AUTHORITY: &str = "x-berth-authority";

/// Copies an HTTP/2 request's `:authority` into the headers when there is no `Host`, so that
/// realms built from the request name the host the client used.
pub async fn remember_authority(mut req: Request, next: axum::middleware::Next) -> Response {
    req.headers_mut().remove(AUTHORITY);
    if !req.headers().contains_key(header::HOST)
        && let Some(a) = req.uri().authority().map(|a| a.to_string())
        && let Ok(v) = HeaderValue::from_str(&a)
    {
        req.headers_mut().insert(AUTHORITY, v);
    }
    next.run(req).await
}

pub enum Credentials {
    None,
    Basic(String, String),
    Bearer(String),
}

/// Reads the `Authorization` header. A malformed header is an error, not anonymity.
pub fn credentials(headers: &HeaderMap) -> Result<Credentials, &'static str> {
    let Some(v) = headers.get(header::AUTHORIZATION) else {
        return Ok(Credentials::None);
    };
    let v = v
        .to_str()
        .map_err(|_| "the Authorization header is not ASCII")?;
    let (scheme, rest) = v.split_once(' ').unwrap_or((v, ""));
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("basic") {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .map_err(|_| "Basic credentials are not base64")?;
        let s = String::from_utf8(raw).map_err(|_| "Basic credentials are not UTF-8")?;
        let (u, p) = s
            .split_once(':')
            .ok_or("Basic credentials lack the ':' between user and password")?;
        Ok(Credentials::Basic(u.to_string(), p.to_string()))
    } else if scheme.eq_ignore_ascii_case("bearer") && !rest.is_empty() {
        Ok(Credentials::Bearer(rest.to_string()))
    } else {
        Err("unsupported Authorization scheme: use Basic or Bearer")
    }
}

/// The peer address of the connection.
pub fn client_ip(req: &Request) -> Option<String> {
    req.extensions()
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
}

/// The externally visible base URL: `PREFERRED_URL_SCHEME://SERVER_HOSTNAME` when configured,
/// else the request's `Host`.
pub fn base_url(st: &AppState, headers: &HeaderMap) -> String {
    if let Some(b) = &st.public_url {
        return b.clone();
    }
    // HTTP/1.1 sends Host; HTTP/2 sends :authority, which hyper puts in the URI (see `host_of`).
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| headers.get(AUTHORITY).and_then(|h| h.to_str().ok()))
        .unwrap_or("localhost");
    format!("{}://{host}", st.scheme)
}

/// The `WWW-Authenticate` challenge pointing clients at `/v2/auth`.
pub fn challenge(
    st: &AppState,
    headers: &HeaderMap,
    scope: Option<&str>,
    error: Option<&str>,
) -> String {
    challenge_saying(st, headers, scope, error, None)
}

/// A challenge with an `error_description` (RFC 6750): what a client shows when the answer has
/// no body to read (a refused HEAD).
pub fn challenge_saying(
    st: &AppState,
    headers: &HeaderMap,
    scope: Option<&str>,
    error: Option<&str>,
    description: Option<&str>,
) -> String {
    let mut c = format!(
        "Bearer realm=\"{}/v2/auth\",service=\"{}\"",
        base_url(st, headers),
        st.auth.config.service
    );
    if let Some(s) = scope {
        c.push_str(&format!(",scope=\"{s}\""));
    }
    if let Some(e) = error {
        c.push_str(&format!(",error=\"{e}\""));
    }
    if let Some(d) = description {
        // A quoted-string: no quotes or backslashes inside, and header-safe characters only.
        let d: String = d
            .chars()
            .map(|ch| match ch {
                '"' | '\\' => '\'',
                c if c.is_ascii_graphic() || c == ' ' => c,
                _ => '?',
            })
            .collect();
        c.push_str(&format!(",error_description=\"{d}\""));
    }
    c
}

fn login_error(
    st: &AppState,
    headers: &HeaderMap,
    user: &str,
    e: &berth_core::auth::LoginError,
) -> Response {
    let throttled = matches!(e, berth_core::auth::LoginError::Throttled { .. });
    let mut err = ApiError::from(e.clone().into_error(user));
    if !throttled {
        err = err.header(header::WWW_AUTHENTICATE, challenge(st, headers, None, None));
    }
    err.into_response()
}

/// A repository scope covers the name the request will reach: a one-component name's full name
/// (`library/x`), and a name outside every namespace its name in the mirror cache organization.
async fn library_scope(st: &AppState, scope: &str) -> String {
    if let Some(rest) = scope.strip_prefix("repository:")
        && let Some((name, actions)) = rest.rsplit_once(':')
    {
        let full = if name.contains('/') {
            Some(name.to_string())
        } else {
            st.full_name(name).ok()
        };
        if let Some(full) = full {
            let full = st.registry.mirror_name(&full).await.unwrap_or(full);
            return format!("repository:{full}:{actions}");
        }
    }
    scope.to_string()
}

/// `GET /v2/auth?service=…&scope=…&scope=…`: a registry token for the Basic credentials sent (or
/// an anonymous one), granting each requested scope only as far as the account may act.
pub async fn token(State(st): State<Arc<AppState>>, req: Request) -> Response {
    let ip = client_ip(&req);
    let headers = req.headers().clone();
    let mut scopes: Vec<String> = Vec::new();
    let mut account_param = None;
    for (k, v) in form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()) {
        match &*k {
            "scope" => {
                for s in v.split(' ').filter(|s| !s.is_empty()) {
                    scopes.push(library_scope(&st, s).await);
                }
            }
            "account" => account_param = Some(v.into_owned()),
            _ => {}
        }
    }
    // Each scope costs database queries; a real client asks for a handful.
    if scopes.len() > 64 {
        return ApiError::new(
            ErrorCode::Denied,
            "too many scopes in one token request (at most 64)",
        )
        .status(400)
        .into_response();
    }
    let actor: Option<Actor> = match credentials(&headers) {
        Err(m) => return ApiError::new(ErrorCode::Unauthorized, m).into_response(),
        Ok(Credentials::None) => None,
        Ok(Credentials::Bearer(_)) => {
            return ApiError::new(
                ErrorCode::Unauthorized,
                "send Basic credentials (user and password, app-specific token or robot token) to get a registry token",
            )
            .into_response();
        }
        Ok(Credentials::Basic(u, p)) => {
            let ctx = LoginContext {
                ip: ip.as_deref(),
                channel: "docker",
            };
            match st.auth.login(&u, &p, &ctx).await {
                Err(e) => return ApiError::from(e).into_response(),
                Ok(Err(e)) => return login_error(&st, &headers, &u, &e),
                Ok(Ok(a)) => Some(a),
            }
        }
    };
    if let (Some(a), Some(acct)) = (&actor, &account_param)
        && !acct.is_empty()
        && *acct != a.name
        && !a.name.starts_with('$')
    {
        tracing::debug!(account = %acct, actual = %a.name, "token request account differs from the credentials");
    }
    let issued = match st.auth.issue_registry_token(actor.as_ref(), &scopes).await {
        Ok(t) => t,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let body = serde_json::json!({
        "token": issued.token,
        "access_token": issued.token,
        "expires_in": issued.expires_in,
        "issued_at": rfc3339(issued.issued_at),
    });
    let mut resp = axum::Json(body).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// RFC 3339 UTC for a Unix time in seconds.
pub fn rfc3339(secs: i64) -> String {
    let t =
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(secs).unwrap_or(0));
    humantime::format_rfc3339_seconds(t).to_string()
}

/// An HTTP date (as Quay formats dates in API answers) for milliseconds since the epoch.
pub fn http_date(ms: i64) -> String {
    let t =
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    httpdate::fmt_http_date(t)
}
