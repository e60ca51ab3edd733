//! `/api/v1`: the REST API, with Quay's paths, verbs and JSON fields. Every route is one row of
//! [`routes`]: the router and the OpenAPI document (`/api/v1/discovery`) are both built from that
//! table, so no endpoint can exist undocumented.
//!
//! Callers authenticate with `Authorization: Bearer <API token>` (scoped) or Basic credentials
//! (a user's password or app-specific token: everything the user may do), or a browser's session
//! cookie (see `web_login.rs`; state changes then need `X-Requested-With`). Errors are JSON:
//! `{"status", "error_message", "error_type", "title", "detail"}`.

mod apps;
mod autoprune;
mod entities;
mod immutability;
mod labels;
mod logs;
mod openapi;
mod orgs;
mod placements;
mod policies;
mod quotas;
mod repos;
mod robots;
mod session;
mod superuser;
mod tags;
mod tokens;
mod users;

use crate::AppState;
use crate::auth::{Credentials, credentials};
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use berth_core::auth::Actor;
use berth_core::auth::login::LoginContext;
use berth_oci::RepoName;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// An error answer of the REST API.
#[derive(Debug)]
pub struct RestError {
    pub status: u16,
    pub message: String,
    pub retry_after: Option<i64>,
    /// The methods the path takes, for a 405's `Allow`.
    pub allow: Option<String>,
    /// Refused because the registry is read-only: the body says so as Quay's does.
    pub readonly: bool,
}

impl RestError {
    pub fn new(status: u16, message: impl Into<String>) -> RestError {
        RestError {
            status,
            message: message.into(),
            retry_after: None,
            allow: None,
            readonly: false,
        }
    }
    pub fn bad(message: impl Into<String>) -> RestError {
        RestError::new(400, message)
    }
}

impl From<crate::error::Problem> for RestError {
    fn from(p: crate::error::Problem) -> RestError {
        RestError {
            retry_after: p.retry_after,
            ..RestError::new(p.status, p.message)
        }
    }
}

impl From<berth_core::Error> for RestError {
    fn from(e: berth_core::Error) -> RestError {
        crate::error::Problem::from(e).into()
    }
}

impl IntoResponse for RestError {
    fn into_response(self) -> Response {
        let (title, kind) = match self.status {
            400 => ("invalid_request", "invalid_request"),
            401 => ("unauthorized", "invalid_token"),
            403 => ("forbidden", "insufficient_scope"),
            404 => ("not_found", "not_found"),
            405 => ("method_not_allowed", "method_not_allowed"),
            409 => ("conflict", "conflict"),
            413 => ("payload_too_large", "payload_too_large"),
            429 => ("too_many_requests", "too_many_requests"),
            503 => ("unavailable", "unavailable"),
            _ => ("internal_error", "internal_error"),
        };
        let mut body = serde_json::json!({
            "status": self.status,
            "error_message": self.message,
            "error_type": kind,
            "title": title,
            "detail": self.message,
        });
        if self.readonly {
            body["message"] = self.message.clone().into();
            body["is_readonly"] = true.into();
        }
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = (status, axum::Json(body)).into_response();
        if self.status == 401 {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"berth-api\""),
            );
        }
        if let Some(s) = self.retry_after
            && let Ok(v) = header::HeaderValue::from_str(&s.to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        if let Some(a) = &self.allow
            && let Ok(v) = header::HeaderValue::from_str(a)
        {
            resp.headers_mut().insert(header::ALLOW, v);
        }
        resp
    }
}

pub type R = Result<Response, RestError>;

/// Everything a REST handler receives.
pub struct Ctx {
    pub caller: Option<Actor>,
    pub ip: Option<String>,
    /// Path parameters, by the names in the route's path (`repository` for repository routes).
    pub params: HashMap<String, String>,
    pub query: HashMap<String, String>,
    /// The JSON body, `Null` when empty.
    pub body: serde_json::Value,
    /// The request headers (for handlers that set or read cookies, or build URLs).
    pub headers: axum::http::HeaderMap,
}

impl Ctx {
    /// An audit entry of `kind`, performed by the caller from its address.
    /// The caller as the audit log records it.
    pub fn who(&self) -> berth_core::auth::Who {
        berth_core::auth::Who::new(self.caller.as_ref(), self.ip.as_deref())
    }

    pub fn audit(&self, kind: &str) -> berth_core::auth::AuditEntry {
        berth_core::auth::AuditEntry::new(kind)
            .by(self.caller.as_ref())
            .ip(self.ip.as_deref())
    }

    /// The authenticated caller, or 401.
    pub fn actor(&self) -> Result<&Actor, RestError> {
        self.caller.as_ref().ok_or_else(|| {
            RestError::new(
                401,
                "authentication required: send Authorization: Bearer <API token>, or Basic credentials",
            )
        })
    }
    pub fn p(&self, k: &str) -> &str {
        self.params.get(k).map(String::as_str).unwrap_or("")
    }
    pub fn q(&self, k: &str) -> Option<&str> {
        self.query.get(k).map(String::as_str)
    }
    pub fn field(&self, k: &str) -> Option<&str> {
        self.body.get(k).and_then(|v| v.as_str())
    }
    pub fn required(&self, k: &str) -> Result<&str, RestError> {
        self.field(k)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| RestError::bad(format!("field {k:?} is required (a string)")))
    }
    pub fn q_bool(&self, k: &str, default: bool) -> bool {
        match self.q(k) {
            Some("true" | "1" | "True") => true,
            Some("false" | "0" | "False") => false,
            _ => default,
        }
    }
}

pub fn json(v: serde_json::Value) -> R {
    Ok(axum::Json(v).into_response())
}

pub fn created(v: serde_json::Value) -> R {
    Ok((StatusCode::CREATED, axum::Json(v)).into_response())
}

pub fn no_content() -> R {
    Ok(StatusCode::NO_CONTENT.into_response())
}

type Handler = fn(Arc<AppState>, Ctx) -> Pin<Box<dyn Future<Output = R> + Send>>;

/// One endpoint: its method and path (OpenAPI syntax), what it does, what it requires, and the
/// fields its JSON body takes (`*name` = required).
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub summary: &'static str,
    /// Who may call it, in the words of the API token scopes.
    pub scope: &'static str,
    pub body: &'static [&'static str],
    pub query: &'static [&'static str],
    pub handler: Handler,
}

impl Route {
    /// Writes a read-only registry still takes: signing in and out (they change no content).
    fn readonly_ok(&self) -> bool {
        matches!(
            self.path,
            "/api/v1/signin" | "/api/v1/signout" | "/api/v1/externallogin/{service_id}"
        )
    }
}

macro_rules! route {
    ($method:ident $path:literal, $summary:literal, $scope:literal, body $body:expr, query $query:expr, $h:path) => {
        Route {
            method: axum::http::Method::$method,
            path: $path,
            summary: $summary,
            scope: $scope,
            body: $body,
            query: $query,
            handler: |st, ctx| Box::pin($h(st, ctx)),
        }
    };
    ($method:ident $path:literal, $summary:literal, $scope:literal, $h:path) => {
        route!($method $path, $summary, $scope, body &[], query &[], $h)
    };
    ($method:ident $path:literal, $summary:literal, $scope:literal, body $body:expr, $h:path) => {
        route!($method $path, $summary, $scope, body $body, query &[], $h)
    };
    ($method:ident $path:literal, $summary:literal, $scope:literal, query $query:expr, $h:path) => {
        route!($method $path, $summary, $scope, body &[], query $query, $h)
    };
}
pub(crate) use route;

/// Every `/api/v1` endpoint.
pub fn routes() -> Vec<Route> {
    let mut v = Vec::new();
    v.extend(users::routes());
    v.extend(orgs::routes());
    v.extend(robots::routes());
    v.extend(repos::routes());
    v.extend(tokens::routes());
    v.extend(apps::routes());
    v.extend(entities::routes());
    v.extend(logs::routes());
    v.extend(tags::routes());
    v.extend(quotas::routes());
    v.extend(labels::routes());
    v.extend(autoprune::routes());
    v.extend(immutability::routes());
    v.extend(superuser::routes());
    v.extend(placements::routes());
    v.extend(session::routes());
    v.extend(openapi::routes());
    v
}

const REPO_PREFIX: &str = "/api/v1/repository/{repository}";

/// The axum router for the table. Repository routes share one wildcard, because repository names
/// contain `/`: the path's tail is matched against each route's suffix, longest first.
pub fn router() -> Router<Arc<AppState>> {
    let table: Arc<Vec<Route>> = Arc::new(routes());
    let mut r = Router::new();
    let mut plain: Vec<&'static str> = table
        .iter()
        .filter(|x| !x.path.starts_with(REPO_PREFIX))
        .map(|x| x.path)
        .collect();
    plain.sort_unstable();
    plain.dedup();
    for path in plain {
        let t = table.clone();
        r = r.route(
            path,
            axum::routing::any(move |st: State<Arc<AppState>>, req: Request| {
                let t = t.clone();
                async move { serve_plain(t, path, st, req).await }
            }),
        );
    }
    let t = table.clone();
    r = r.route(
        "/api/v1/repository/{*rest}",
        axum::routing::any(move |st: State<Arc<AppState>>, req: Request| {
            let t = t.clone();
            async move { serve_repo(t, st, req).await }
        }),
    );
    r.route("/api/v1", axum::routing::any(unknown_endpoint))
        .route("/api/v1/", axum::routing::any(unknown_endpoint))
        .route("/api/v1/{*rest}", axum::routing::any(unknown_endpoint))
}

/// Matches `/a/{x}/b` against a concrete path, collecting parameters.
fn match_path(pattern: &str, path: &str) -> Option<HashMap<String, String>> {
    let ps: Vec<&str> = pattern.trim_end_matches('/').split('/').collect();
    let xs: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    if ps.len() != xs.len() {
        return None;
    }
    let mut out = HashMap::new();
    for (p, x) in ps.iter().zip(&xs) {
        if let Some(name) = p.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            if x.is_empty() {
                return None;
            }
            out.insert(name.to_string(), percent_decode(x));
        } else if p != x {
            return None;
        }
    }
    Some(out)
}

fn percent_decode(s: &str) -> String {
    form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// 405 with the methods the path does take.
fn method_not_allowed<'a>(m: &Method, allowed: impl Iterator<Item = &'a Method>) -> R {
    let mut methods: Vec<&str> = allowed.map(Method::as_str).collect();
    methods.sort_unstable();
    methods.dedup();
    let allow = methods.join(", ");
    Err(RestError {
        allow: Some(allow.clone()),
        ..RestError::new(
            405,
            format!("{m} is not supported on this path; it takes {allow}"),
        )
    })
}

/// Any `/api/v1` path no endpoint has: a JSON 404 that says so.
pub async fn unknown_endpoint(req: Request) -> Response {
    RestError::new(
        404,
        format!(
            "no API endpoint {} exists; the endpoints are listed in the OpenAPI document at /api/v1/discovery",
            req.uri().path()
        ),
    )
    .into_response()
}

async fn serve_plain(
    table: Arc<Vec<Route>>,
    path: &'static str,
    State(st): State<Arc<AppState>>,
    req: Request,
) -> Response {
    let Some(route) = table
        .iter()
        .find(|r| r.path == path && r.method == req.method())
    else {
        let allowed = table.iter().filter(|r| r.path == path).map(|r| &r.method);
        return method_not_allowed(req.method(), allowed).into_response_or_err();
    };
    let params = match_path(path, req.uri().path()).unwrap_or_default();
    run(route, st, params, req).await
}

async fn serve_repo(
    table: Arc<Vec<Route>>,
    State(st): State<Arc<AppState>>,
    req: Request,
) -> Response {
    let full = req.uri().path().to_string();
    let tail = full.trim_start_matches("/api/v1/repository/");
    let segs: Vec<&str> = tail.trim_end_matches('/').split('/').collect();
    let mut best: Option<(&Route, HashMap<String, String>, usize)> = None;
    let mut path_matched: Vec<&Method> = Vec::new();
    let mut refused: Option<String> = None;
    for r in table.iter().filter(|r| r.path.starts_with(REPO_PREFIX)) {
        let suffix = &r.path[REPO_PREFIX.len()..];
        let suffix_segs: Vec<&str> = suffix
            .trim_matches('/')
            .split('/')
            .filter(|s| !s.is_empty())
            .collect();
        if suffix_segs.len() >= segs.len() {
            continue;
        }
        let (name_segs, rest) = segs.split_at(segs.len() - suffix_segs.len());
        let Some(mut params) = match_path(&suffix_segs.join("/"), &rest.join("/")) else {
            continue;
        };
        let name = match st.full_name(&name_segs.join("/")) {
            Ok(n) => n,
            Err(m) => {
                refused.get_or_insert(m);
                continue;
            }
        };
        if name.parse::<RepoName>().is_err() {
            continue;
        }
        path_matched.push(&r.method);
        if r.method != req.method() {
            continue;
        }
        params.insert("repository".into(), name);
        if best.as_ref().is_none_or(|b| suffix_segs.len() > b.2) {
            best = Some((r, params, suffix_segs.len()));
        }
    }
    match best {
        Some((r, params, _)) => run(r, st, params, req).await,
        None if !path_matched.is_empty() => {
            method_not_allowed(req.method(), path_matched.into_iter()).into_response_or_err()
        }
        None if let Some(m) = refused => RestError::bad(m).into_response(),
        None => RestError::new(
            404,
            format!(
                "no API endpoint {full} exists; the endpoints are listed in the OpenAPI document at /api/v1/discovery"
            ),
        )
        .into_response(),
    }
}

trait OrErr {
    fn into_response_or_err(self) -> Response;
}
impl OrErr for R {
    fn into_response_or_err(self) -> Response {
        match self {
            Ok(r) => r,
            Err(e) => e.into_response(),
        }
    }
}
impl OrErr for Response {
    fn into_response_or_err(self) -> Response {
        self
    }
}

/// Largest JSON body accepted.
const MAX_BODY: usize = 1 << 20;

async fn run(
    route: &Route,
    st: Arc<AppState>,
    params: HashMap<String, String>,
    req: Request,
) -> Response {
    let ip = crate::auth::client_ip(&req);
    let (parts, body) = req.into_parts();
    let query: HashMap<String, String> =
        form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    // Read-only (REGISTRY_STATE): every change refused as Quay refuses it, sign-in still allowed.
    if st.readonly && !matches!(parts.method, Method::GET | Method::HEAD) && !route.readonly_ok() {
        return RestError {
            readonly: true,
            ..RestError::new(503, crate::READONLY_MESSAGE)
        }
        .into_response();
    }
    let caller = match api_caller(&st, &parts.headers, &parts.method, ip.as_deref()).await {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let bytes = match axum::body::to_bytes(Body::new(body), MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return RestError::new(413, "the request body is larger than 1 MiB").into_response();
        }
    };
    let body = if bytes.iter().all(u8::is_ascii_whitespace) {
        serde_json::Value::Null
    } else {
        match serde_json::from_slice(&bytes) {
            Ok(v) => v,
            Err(e) => {
                return RestError::bad(format!("the body is not valid JSON: {e}")).into_response();
            }
        }
    };
    if !body.is_null() && !body.is_object() && !body.is_array() {
        return RestError::bad("the body must be a JSON object").into_response();
    }
    let ctx = Ctx {
        caller,
        ip,
        params,
        query,
        body,
        headers: parts.headers,
    };
    (route.handler)(st, ctx).await.into_response_or_err()
}

/// The caller of an API request: an API token's account (with its scopes), Basic credentials'
/// account, a browser session's account, or anonymous.
pub(crate) async fn api_caller(
    st: &AppState,
    headers: &axum::http::HeaderMap,
    method: &Method,
    ip: Option<&str>,
) -> Result<Option<Actor>, RestError> {
    match credentials(headers).map_err(|m| RestError::new(401, m))? {
        Credentials::None => crate::web_login::session_actor(st, headers, method).await,
        Credentials::Bearer(t) => match st.auth.api_token_actor(&t).await? {
            Some(a) => Ok(Some(a)),
            None => Err(RestError::new(
                401,
                "the API token is invalid, expired or revoked",
            )),
        },
        Credentials::Basic(u, p) => {
            let ctx = LoginContext { ip, channel: "api" };
            match st.auth.login(&u, &p, &ctx).await? {
                Ok(a) if a.kind == berth_core::auth::AccountKind::Robot => Err(RestError::new(
                    401,
                    "robot accounts cannot use the REST API; they log in to the registry only",
                )),
                // An app-specific token stands in for a password at the registry only: leaked from
                // a client's auth file, it must not change the account.
                Ok(a) if a.via == "app_token" => Err(RestError::new(
                    401,
                    "app-specific tokens log in to the registry only; for the API use your password, a session, or an API token (POST /api/v1/user/apitoken)",
                )),
                Ok(a) => Ok(Some(a)),
                Err(e) => Err(e.into_error(&u).into()),
            }
        }
    }
}

/// `{name, kind, is_robot, avatar}` as Quay describes an entity.
pub fn entity(name: &str, kind: &str) -> serde_json::Value {
    serde_json::json!({
        "name": name,
        "kind": if kind == "robot" { "user" } else { kind },
        "is_robot": kind == "robot",
        "avatar": avatar(name, kind),
    })
}

/// Quay's avatar object (a colour derived from the name; no external service).
pub fn avatar(name: &str, kind: &str) -> serde_json::Value {
    use sha2::Digest as _;
    let h = hex::encode(sha2::Sha256::digest(name.as_bytes()));
    const COLORS: [&str; 8] = [
        "#969696", "#aec7e8", "#ff7f0e", "#ffbb78", "#2ca02c", "#98df8a", "#d62728", "#ff9896",
    ];
    let idx = usize::from_str_radix(&h[..2], 16).unwrap_or(0) % COLORS.len();
    serde_json::json!({"name": name, "hash": h, "color": COLORS[idx], "kind": kind})
}

/// Quay's `{"permissions": [{"repository": {...}, "role"}]}` for one grantee's permissions.
pub fn permissions_view(perms: &[berth_core::PermRow]) -> serde_json::Value {
    serde_json::json!({
        "permissions": perms.iter().map(|p| serde_json::json!({
            "repository": {
                "name": p.repo.split_once('/').map(|x| x.1).unwrap_or(&p.repo),
                "full_name": p.repo,
                "is_public": p.repo_visibility == "public",
            },
            "role": p.role,
        })).collect::<Vec<_>>(),
    })
}

/// Milliseconds → seconds, or null.
pub fn secs(ms: Option<i64>) -> serde_json::Value {
    ms.map(|m| serde_json::Value::from(m / 1000))
        .unwrap_or(serde_json::Value::Null)
}
