//! `/api/v1`: the REST API, with Quay's paths, verbs and JSON fields. Every route is one row of
//! [`routes`]: the router and the OpenAPI document (`/api/v1/discovery`) are both built from that
//! table, so no endpoint can exist undocumented.
//!
//! Callers authenticate with `Authorization: Bearer <API token>` (scoped) or Basic credentials
//! (a user's password or app-specific token: everything the user may do), or a browser's session
//! cookie (see `web_login.rs`; state changes then need `X-Requested-With`). Errors are JSON:
//! `{"status", "error_message", "error_type", "title", "detail"}`.
//!
//! Bodies are types (`body.rs`): a route names its request type, parsed before the handler runs,
//! and its answer type, and the document's schemas come from those types (`openapi.rs`).

mod apps;
mod autoprune;
mod body;
mod entities;
mod immutability;
mod labels;
pub(crate) mod logs;
pub(crate) mod mirror;
mod notifications;
mod openapi;
pub(crate) mod org_mirror;
mod orgs;
mod placements;
mod policies;
pub(crate) mod proxycache;
mod quotas;
mod repos;
mod robots;
pub(crate) mod secscan;
mod session;
#[cfg(test)]
mod snapshots;
mod superuser;
mod tags;
mod tokens;
mod users;
mod views;

pub use body::{Answer, Created, Done, EmptyObject, NonEmpty, Reply, Schemas, Success, done};

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

/// Quay's error body. `message` and `is_readonly` are there only when a read-only registry refused
/// a change, as Quay's are.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    pub status: u16,
    pub error_message: String,
    pub error_type: String,
    pub title: String,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_readonly: Option<bool>,
}

impl RestError {
    /// The JSON body this error is answered with.
    pub fn body(&self) -> ErrorBody {
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
        ErrorBody {
            status: self.status,
            error_message: self.message.clone(),
            error_type: kind.into(),
            title: title.into(),
            detail: self.message.clone(),
            message: self.readonly.then(|| self.message.clone()),
            is_readonly: self.readonly.then_some(true),
        }
    }
}

impl IntoResponse for RestError {
    fn into_response(self) -> Response {
        let body = self.body();
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
    /// The JSON body, `Null` when empty. Typed routes receive it parsed instead ([`Ctx::take_body`]);
    /// only the routes still on string schemas read it here.
    pub body: serde_json::Value,
    /// The request headers (for handlers that set or read cookies, or build URLs).
    pub headers: axum::http::HeaderMap,
}

impl Ctx {
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
    /// The body parsed into the route's request type (a 400 naming the field if it does not fit).
    pub fn take_body<T: serde::de::DeserializeOwned + utoipa::ToSchema>(
        &mut self,
    ) -> Result<T, RestError> {
        body::parse(std::mem::take(&mut self.body))
    }
    pub fn q_bool(&self, k: &str, default: bool) -> bool {
        match self.q(k) {
            Some("true" | "1" | "True") => true,
            Some("false" | "0" | "False") => false,
            _ => default,
        }
    }
}

type Handler = fn(Arc<AppState>, Ctx) -> Pin<Box<dyn Future<Output = R> + Send>>;

/// One endpoint: its method and path (OpenAPI syntax), what it does, what it requires, and what
/// its bodies are.
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub summary: &'static str,
    /// Who may call it, in the words of the API token scopes.
    pub scope: &'static str,
    pub query: &'static [&'static str],
    pub doc: Doc,
    pub handler: Handler,
}

/// A schema of a route's body, registering the named types it uses.
pub type SchemaFn = fn(&mut Schemas) -> serde_json::Value;

/// What the document says about a route's bodies: from the types the handler takes and answers.
pub struct Doc {
    pub request: Option<SchemaFn>,
    pub status: fn() -> u16,
    pub response: fn(&mut Schemas) -> Option<serde_json::Value>,
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

/// A row of the route table. Typed (every new route):
///
/// ```text
/// route!(PUT "/api/v1/organization/{orgname}/team/{teamname}", "summary", "org:admin",
///     put_team(TeamBody) -> Reply<TeamCreated>),          // body parsed, then the handler
/// route!(GET "/api/v1/repository", "summary", "repo:read",
///     list_repos() -> Reply<RepoList>, query &["namespace"]),   // no body
/// ```
///
/// The handler is `async fn(Arc<AppState>, Ctx[, Body]) -> Result<Answer, RestError>`; its answer
/// type is checked against the one the row names, which the document describes.
macro_rules! route {
    ($method:ident $path:literal, $summary:literal, $scope:literal,
        $h:ident ( $req:ty ) -> $out:ty $(, query $query:expr)?) => {
        $crate::rest::Route {
            method: axum::http::Method::$method,
            path: $path,
            summary: $summary,
            scope: $scope,
            query: route!(@query $($query)?),
            doc: $crate::rest::Doc {
                request: Some(|s| s.of::<$req>()),
                status: <$out as $crate::rest::Answer>::status,
                response: <$out as $crate::rest::Answer>::schema,
            },
            handler: |st, mut ctx| {
                Box::pin(async move {
                    let body: $req = match ctx.take_body() {
                        Ok(b) => b,
                        // An anonymous caller of a route that needs one hears 401 first, as
                        // when the handler looked at the body itself.
                        Err(e) if $scope != "anonymous" && ctx.caller.is_none() => {
                            return Err(ctx.actor().err().unwrap_or(e))
                        }
                        Err(e) => return Err(e),
                    };
                    let out: Result<$out, $crate::rest::RestError> = $h(st, ctx, body).await;
                    out.map($crate::rest::Answer::into_response)
                })
            },
        }
    };
    ($method:ident $path:literal, $summary:literal, $scope:literal,
        $h:ident () -> $out:ty $(, query $query:expr)?) => {
        $crate::rest::Route {
            method: axum::http::Method::$method,
            path: $path,
            summary: $summary,
            scope: $scope,
            query: route!(@query $($query)?),
            doc: $crate::rest::Doc {
                request: None,
                status: <$out as $crate::rest::Answer>::status,
                response: <$out as $crate::rest::Answer>::schema,
            },
            handler: |st, ctx| {
                Box::pin(async move {
                    let out: Result<$out, $crate::rest::RestError> = $h(st, ctx).await;
                    out.map($crate::rest::Answer::into_response)
                })
            },
        }
    };
    (@query) => { &[] };
    (@query $query:expr) => { $query };
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
    v.extend(secscan::routes());
    v.extend(mirror::routes());
    v.extend(org_mirror::routes());
    v.extend(proxycache::routes());
    v.extend(autoprune::routes());
    v.extend(immutability::routes());
    v.extend(notifications::routes());
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

/// Milliseconds → seconds (`null` in JSON when absent).
pub fn secs(ms: Option<i64>) -> Option<i64> {
    ms.map(|m| m / 1000)
}
