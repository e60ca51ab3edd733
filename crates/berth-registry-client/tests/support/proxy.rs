//! A reverse proxy in front of a real registry that can be switched to misbehave: 429s with
//! Retry-After, 5xx answers, blob redirects, a corrupted or stalled blob body, and tag lists cut
//! into pages (Distribution 2.8 ignores `?n=` on tags/list; it pages only the catalog); and it
//! can demand Bearer tokens from its own `/token` endpoint, the Docker token flow in front of a
//! registry without auth. It runs on its own thread and runtime so that it outlives each test's
//! runtime.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Debug, Clone)]
pub enum Fault {
    None,
    /// The next `remaining` requests answer 429 with this Retry-After.
    TooMany {
        remaining: u32,
        retry_after: String,
    },
    /// The next `remaining` requests answer `status`.
    Status {
        status: u16,
        remaining: u32,
    },
    /// Blob GETs answer 307 to `base` + the same path and query.
    RedirectBlobs {
        base: String,
    },
    /// Blob bodies arrive with one byte changed.
    CorruptBlobs,
    /// Blob bodies stop after half their bytes, the connection left open.
    StallBlobs,
    /// Tag lists come in pages of `n`, linked alternately by relative and absolute URLs.
    PageTags {
        n: usize,
    },
}

/// One request the proxy saw.
#[derive(Debug, Clone)]
pub struct Hit {
    pub method: String,
    pub path: String,
    pub authorization: bool,
}

/// One request to the `/token` endpoint.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub service: Option<String>,
    pub scope: Option<String>,
    /// Basic credentials came and were [`super::USER`]/[`super::PASSWORD`].
    pub credentials_ok: bool,
    pub credentials_sent: bool,
}

/// The token flow's state: tokens live `ttl` seconds as the answer says; the proxy accepts those
/// it issued until revoked.
#[derive(Default)]
struct Bearer {
    ttl: u64,
    issued: u32,
    valid: std::collections::HashSet<String>,
    requests: Vec<TokenRequest>,
}

struct Shared {
    upstream: String,
    own: String,
    fault: Mutex<Fault>,
    hits: Mutex<Vec<Hit>>,
    bearer: Mutex<Option<Bearer>>,
    client: reqwest::Client,
}

pub struct FaultProxy {
    pub addr: String,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl FaultProxy {
    /// A proxy to the registry at `upstream` (`host:port`, plain http).
    pub fn start(upstream: &str) -> FaultProxy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr: SocketAddr = listener.local_addr().expect("addr");
        let shared = Arc::new(Shared {
            upstream: format!("http://{upstream}"),
            own: format!("http://{addr}"),
            fault: Mutex::new(Fault::None),
            hits: Mutex::new(Vec::new()),
            bearer: Mutex::new(None),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .build()
                .expect("client"),
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let app = axum::Router::new()
            .fallback(forward)
            .with_state(shared.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                tokio::select! {
                    _ = axum::serve(listener, app) => {}
                    _ = stopped => {}
                }
            });
        });
        FaultProxy {
            addr: addr.to_string(),
            shared,
            stop: Some(stop),
        }
    }

    pub fn set(&self, fault: Fault) {
        *lock(&self.shared.fault) = fault;
    }

    pub fn hits(&self) -> Vec<Hit> {
        lock(&self.shared.hits).clone()
    }

    /// Requests whose path contains `part`.
    pub fn count(&self, part: &str) -> usize {
        self.hits().iter().filter(|h| h.path.contains(part)).count()
    }

    /// Demands a Bearer token from `/token` (which wants the test credentials) on every `/v2/`
    /// request; tokens say they expire in `ttl` seconds.
    pub fn require_bearer(&self, ttl: u64) {
        *lock(&self.shared.bearer) = Some(Bearer {
            ttl,
            ..Bearer::default()
        });
    }

    /// Invalidates every token issued so far, as a token endpoint's key rotation would.
    pub fn revoke_tokens(&self) {
        if let Some(b) = lock(&self.shared.bearer).as_mut() {
            b.valid.clear();
        }
    }

    pub fn token_requests(&self) -> Vec<TokenRequest> {
        lock(&self.shared.bearer)
            .as_ref()
            .map(|b| b.requests.clone())
            .unwrap_or_default()
    }

    pub fn clear(&self) {
        lock(&self.shared.hits).clear();
    }
}

fn error_body(code: &str, message: &str) -> String {
    serde_json::json!({"errors": [{"code": code, "message": message}]}).to_string()
}

async fn forward(State(s): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let is_blob = parts.uri.path().contains("/blobs/") && parts.method == axum::http::Method::GET;
    let is_tags = parts.uri.path().ends_with("/tags/list");
    lock(&s.hits).push(Hit {
        method: parts.method.to_string(),
        path: path.clone(),
        authorization: parts.headers.contains_key("authorization"),
    });
    if let Some(answer) = bearer(&s, &parts) {
        return answer;
    }
    let fault = {
        let mut f = lock(&s.fault);
        match &mut *f {
            Fault::TooMany {
                remaining,
                retry_after,
            } if *remaining > 0 => {
                *remaining -= 1;
                let ra = retry_after.clone();
                return (
                    StatusCode::TOO_MANY_REQUESTS,
                    [
                        ("retry-after", ra),
                        ("content-type", "application/json".into()),
                    ],
                    error_body("TOOMANYREQUESTS", "slow down"),
                )
                    .into_response();
            }
            Fault::Status { status, remaining } if *remaining > 0 => {
                *remaining -= 1;
                let code = StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_GATEWAY);
                return (code, error_body("UNAVAILABLE", "try later")).into_response();
            }
            Fault::RedirectBlobs { base } if is_blob => {
                return (
                    StatusCode::TEMPORARY_REDIRECT,
                    [("location", format!("{base}{path}"))],
                )
                    .into_response();
            }
            other => other.clone(),
        }
    };
    let body = axum::body::to_bytes(body, 64 << 20)
        .await
        .unwrap_or_default();
    let mut up = s
        .client
        .request(parts.method.clone(), format!("{}{path}", s.upstream))
        .body(body);
    for (name, value) in &parts.headers {
        if name != "host" && name != "content-length" {
            up = up.header(name, value);
        }
    }
    let resp = match up.send().await {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    let status = resp.status();
    let mut headers = HeaderMap::new();
    for (name, value) in resp.headers() {
        if !matches!(name.as_str(), "transfer-encoding" | "connection") {
            headers.append(name, value.clone());
        }
    }
    let ok = status == StatusCode::OK;
    match fault {
        Fault::CorruptBlobs if is_blob && ok => {
            let mut bytes = resp.bytes().await.unwrap_or_default().to_vec();
            let mid = bytes.len() / 2;
            if let Some(b) = bytes.get_mut(mid) {
                *b ^= 0x01;
            }
            (status, headers, bytes).into_response()
        }
        Fault::StallBlobs if is_blob && ok => {
            let bytes = resp.bytes().await.unwrap_or_default();
            let half = bytes.slice(..bytes.len() / 2);
            let first = futures::stream::once(async move { Ok::<_, std::io::Error>(half) });
            let body =
                Body::from_stream(futures::StreamExt::chain(first, futures::stream::pending()));
            (status, headers, body).into_response()
        }
        Fault::PageTags { n } if is_tags && ok => page_tags(&s, &parts.uri, resp, n).await,
        _ => (status, headers, Body::from_stream(resp.bytes_stream())).into_response(),
    }
}

/// One page of the real tag list: tags after `last`, at most `n`, and a Link to the next page.
async fn page_tags(
    s: &Shared,
    uri: &axum::http::Uri,
    resp: reqwest::Response,
    n: usize,
) -> Response {
    #[derive(serde::Deserialize)]
    struct List {
        name: String,
        tags: Vec<String>,
    }
    let Ok(mut list) = resp.json::<List>().await else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    list.tags.sort();
    let last = uri.query().and_then(|q| {
        q.split('&')
            .find_map(|kv| kv.strip_prefix("last="))
            .map(str::to_string)
    });
    let start = match &last {
        Some(l) => list.tags.partition_point(|t| t <= l),
        None => 0,
    };
    let page: Vec<String> = list.tags.iter().skip(start).take(n).cloned().collect();
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    if start + page.len() < list.tags.len()
        && let Some(end) = page.last()
    {
        let rel = format!("/v2/{}/tags/list?n={n}&last={end}", list.name);
        // Every other page links by absolute URL, as some registries do.
        let link = if (start / n.max(1)).is_multiple_of(2) {
            format!("<{rel}>; rel=\"next\"")
        } else {
            format!("<{}{rel}>; rel=\"next\"", s.own)
        };
        if let Ok(v) = HeaderValue::from_str(&link) {
            headers.insert("link", v);
        }
    }
    let body = serde_json::json!({"name": list.name, "tags": page}).to_string();
    (StatusCode::OK, headers, body).into_response()
}

/// The token endpoint and the Bearer check, when the proxy demands tokens; `None` lets the
/// request through.
fn bearer(s: &Shared, parts: &axum::http::request::Parts) -> Option<Response> {
    use base64::Engine as _;
    let mut guard = lock(&s.bearer);
    let b = guard.as_mut()?;
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let path = parts.uri.path();
    if path == "/token" {
        let query: Vec<(String, String)> =
            url::form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
                .into_owned()
                .collect();
        let q = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let basic = header("authorization").and_then(|h| {
            let b64 = h.strip_prefix("Basic ")?.to_string();
            base64::engine::general_purpose::STANDARD.decode(b64).ok()
        });
        let credentials_ok =
            basic.as_deref() == Some(format!("{}:{}", super::USER, super::PASSWORD).as_bytes());
        b.requests.push(TokenRequest {
            service: q("service"),
            scope: q("scope"),
            credentials_ok,
            credentials_sent: basic.is_some(),
        });
        if !credentials_ok {
            return Some(
                (
                    StatusCode::UNAUTHORIZED,
                    error_body("UNAUTHORIZED", "bad credentials"),
                )
                    .into_response(),
            );
        }
        b.issued += 1;
        let token = format!("token-{}", b.issued);
        b.valid.insert(token.clone());
        // Every other answer names the token `access_token`, as OAuth2 endpoints do.
        let field = if b.issued % 2 == 0 {
            "access_token"
        } else {
            "token"
        };
        let body = serde_json::json!({ field: token, "expires_in": b.ttl }).to_string();
        return Some(
            (StatusCode::OK, [("content-type", "application/json")], body).into_response(),
        );
    }
    if !path.starts_with("/v2") {
        return None;
    }
    let sent = header("authorization").and_then(|h| h.strip_prefix("Bearer ").map(str::to_string));
    if sent.is_some_and(|t| b.valid.contains(&t)) {
        return None;
    }
    // Manifests and blobs name their scope in the challenge; tag lists, the catalog and the API
    // root leave it to the client.
    let scope = ["/manifests/", "/blobs/"].iter().find_map(|m| {
        let name = path.strip_prefix("/v2/")?.split_once(m)?.0;
        Some(format!(",scope=\"repository:{name}:pull\""))
    });
    let challenge = format!(
        "Bearer realm=\"{}/token\",service=\"berth-test\"{}",
        s.own,
        scope.unwrap_or_default()
    );
    Some(
        (
            StatusCode::UNAUTHORIZED,
            [("www-authenticate", challenge)],
            error_body("UNAUTHORIZED", "token required"),
        )
            .into_response(),
    )
}
