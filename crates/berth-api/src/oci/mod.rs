//! The `/v2` registry API. One dispatcher recognises the route from the path (repository names
//! may contain any number of `/`), validates names, references and digests, and hands over to the
//! handler for the route and method.

mod blobs;
mod lists;
mod manifests;
mod uploads;

use crate::{AppState, error::ApiError};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, Uri, header};
use axum::response::{IntoResponse, Response};
use berth_core::ByteStream;
use berth_core::auth::{CallerKind, Claims};
use berth_oci::path::{V2Route, parse_v2_path};
use berth_oci::{Digest, ErrorCode, Reference, RepoName};
use futures::TryStreamExt;
use std::collections::HashMap;
use std::sync::Arc;

pub type ApiResult = Result<Response, ApiError>;

pub const API_VERSION: &str = "Docker-Distribution-API-Version";

/// The caller of a `/v2` request, from its verified registry token.
pub struct Caller {
    pub claims: Claims,
    pub ip: Option<String>,
}

impl Caller {
    /// The account for the audit log: (name, kind), `None` when anonymous.
    pub fn performer(&self) -> Option<(String, String)> {
        (self.claims.context.kind != CallerKind::Anonymous && !self.claims.sub.is_empty()).then(
            || {
                (
                    self.claims.sub.clone(),
                    self.claims.context.kind.as_str().to_string(),
                )
            },
        )
    }

    /// The caller as the audit log records it.
    pub fn who(&self) -> berth_core::auth::Who {
        berth_core::auth::Who {
            performer: self.performer(),
            ip: self.ip.clone(),
        }
    }
}

/// The request path with a one-component repository name mapped to its full name, and a name
/// outside every namespace mapped into the mirror cache organization (`PROXY_CACHE_MIRROR_ORG`).
async fn with_full_name(st: &AppState, uri: Uri) -> Result<Uri, ApiError> {
    let name = match parse_v2_path(uri.path()).and_then(|r| r.repo_name()) {
        Some(name) => name.to_string(),
        None => return Ok(uri),
    };
    let full = if name.contains('/') {
        name.clone()
    } else {
        st.full_name(&name)
            .map_err(|m| ApiError::new(ErrorCode::NameInvalid, m))?
    };
    let full = st.registry.mirror_name(&full).await?;
    if full == name {
        return Ok(uri);
    }
    let rest = uri.path()["/v2/".len() + name.len()..].to_string();
    let pq = match uri.query() {
        Some(q) => format!("/v2/{full}{rest}?{q}"),
        None => format!("/v2/{full}{rest}"),
    };
    pq.parse().map_err(|_| {
        ApiError::new(
            ErrorCode::NameInvalid,
            format!("{name:?}: not a usable repository name"),
        )
    })
}

pub async fn dispatch(State(st): State<Arc<AppState>>, req: Request) -> Response {
    let ip = crate::auth::client_ip(&req);
    let (parts, body) = req.into_parts();
    let (method, headers) = (parts.method, parts.headers);
    let head = method == Method::HEAD;
    let uri = match with_full_name(&st, parts.uri).await {
        Ok(u) => u,
        Err(e) => {
            let mut resp = e.for_head(head).into_response();
            resp.headers_mut()
                .insert(API_VERSION, HeaderValue::from_static("registry/2.0"));
            return resp;
        }
    };
    let result = match authorize(&st, &method, &uri, &headers, ip).await {
        Ok(caller) => match write_refusal(&st, &method, &uri) {
            Some(e) => Err(e),
            None => route(&st, &caller, &method, &uri, &headers, body).await,
        },
        Err(e) => Err(e),
    };
    let mut resp = match result {
        Ok(r) => r,
        Err(e) => refusal_with_challenge(&st, &method, &uri, &headers, e)
            .for_head(head)
            .into_response(),
    };
    resp.headers_mut()
        .insert(API_VERSION, HeaderValue::from_static("registry/2.0"));
    resp
}

/// A refusal (403: a quota, an immutable tag) carries a challenge too: clients that answer a 403
/// by fetching a new token (oras) otherwise stop at "cannot authenticate" and never show the
/// message. The new token changes nothing, the refusal comes again, and its message is shown.
fn refusal_with_challenge(
    st: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    e: ApiError,
) -> ApiError {
    if e.status != 403 || e.headers.iter().any(|(h, _)| h == header::WWW_AUTHENTICATE) {
        return e;
    }
    let scope = parse_v2_path(uri.path())
        .and_then(|r| r.repo_name())
        .map(|name| repo_scope(name, needed_action(method)));
    let c = crate::auth::challenge(st, headers, scope.as_deref(), None);
    e.header(header::WWW_AUTHENTICATE, c)
}

/// A write refused by the registry's state, as Quay refuses it: 405 DENIED when the registry is
/// read-only (`REGISTRY_STATE`) or pushes are disabled (`DISABLE_PUSHES`; deletes still work).
fn write_refusal(st: &AppState, method: &Method, uri: &Uri) -> Option<ApiError> {
    if matches!(*method, Method::GET | Method::HEAD) {
        return None;
    }
    if st.readonly {
        return Some(
            ApiError::new(ErrorCode::Denied, crate::READONLY_MESSAGE)
                .status(405)
                .facts(serde_json::json!({"is_readonly": true})),
        );
    }
    let push = matches!(
        parse_v2_path(uri.path()),
        Some(V2Route::UploadStart { .. } | V2Route::Upload { .. } | V2Route::Manifest { .. })
    ) && *method != Method::DELETE;
    (st.disable_pushes && push).then(|| {
        ApiError::new(
            ErrorCode::Denied,
            "Pushes to the registry are currently disabled (DISABLE_PUSHES). Please contact the administrator.",
        )
        .status(405)
    })
}

/// The registry action a request needs: pull to read, push to write, delete to delete.
fn needed_action(method: &Method) -> &'static str {
    match *method {
        Method::GET | Method::HEAD => "pull",
        Method::DELETE => "delete",
        _ => "push",
    }
}

/// The token scope a repository action needs: a push also reads (`pull,push`), as clients ask.
fn repo_scope(name: &str, action: &str) -> String {
    let wanted = if action == "push" {
        "pull,push"
    } else {
        action
    };
    format!("repository:{name}:{wanted}")
}

/// Checks the request's registry token against what the route needs. No token, a bad token, or
/// one lacking the action: 401 with the challenge that tells the client which token to fetch.
async fn authorize(
    st: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    ip: Option<String>,
) -> Result<Caller, ApiError> {
    let route = parse_v2_path(uri.path());
    // A malformed name is NAME_INVALID for everyone: it names nothing that could be protected.
    if let Some(name) = route.as_ref().and_then(V2Route::repo_name) {
        repo(name)?;
    }
    // A cross-repository mount also reads the source repository: its challenge and its token
    // ask for both, so that a client following the challenge gets a token that can mount.
    let mount_from: Option<String> = match &route {
        Some(V2Route::UploadStart { .. }) => {
            let q = Query::parse(uri.query());
            q.get("mount")
                .and(q.get("from"))
                .and_then(|f| st.full_name(f).ok())
                .filter(|f| f.parse::<RepoName>().is_ok())
        }
        _ => None,
    };
    let (scope, repo_action): (Option<String>, Option<(&str, &str)>) =
        match (&route, route.as_ref().and_then(V2Route::repo_name)) {
            (Some(V2Route::Catalog), _) => (Some("registry:catalog:*".to_string()), None),
            (_, Some(name)) => {
                let action = needed_action(method);
                let mut scope = repo_scope(name, action);
                if let Some(from) = &mount_from {
                    scope.push_str(&format!(" repository:{from}:pull"));
                }
                (Some(scope), Some((name, action)))
            }
            _ => (None, None),
        };
    let deny = |detail: &str, error: Option<&str>| {
        ApiError::new(ErrorCode::Unauthorized, detail).header(
            header::WWW_AUTHENTICATE,
            crate::auth::challenge(st, headers, scope.as_deref(), error),
        )
    };
    let claims = match crate::auth::credentials(headers) {
        Ok(crate::auth::Credentials::Bearer(t)) => st
            .auth
            .keys
            .verify(&st.auth.config.service, &t)
            .await
            .map_err(|e| deny(&format!("{e}; get a new token"), Some("invalid_token")))?,
        // Basic credentials on each request (curl -u, simple clients): checked like a token
        // request for exactly this request's scope.
        Ok(crate::auth::Credentials::Basic(u, p)) => {
            let ctx = berth_core::auth::login::LoginContext {
                ip: ip.as_deref(),
                channel: "docker",
            };
            let actor = match st.auth.login_cached(&u, &p, &ctx).await? {
                Ok(a) => a,
                Err(e @ berth_core::auth::LoginError::Throttled { .. }) => {
                    return Err(e.into_error(&u).into());
                }
                Err(e) => return Err(deny(&e.message(&u), None).status(401)),
            };
            let scopes: Vec<String> = scope
                .iter()
                .flat_map(|s| s.split(' '))
                .map(str::to_string)
                .collect();
            let access = st.auth.grant(Some(&actor), &scopes).await?;
            Claims::for_actor(&actor, &st.auth.config.service, access)
        }
        Ok(crate::auth::Credentials::None) => {
            return Err(deny(
                "authentication required: log in first (podman login / skopeo login / oras login), or pull anonymously from a public repository",
                None,
            ));
        }
        Err(m) => return Err(deny(m, Some("invalid_request"))),
    };
    let allowed = match (&route, repo_action) {
        (Some(V2Route::Catalog), _) => claims.allows_catalog(),
        (_, Some((name, "delete"))) => claims.allows(name, "delete") || claims.allows(name, "push"),
        (_, Some((name, action))) => claims.allows(name, action),
        _ => true,
    };
    // A token that lacks the action. One that does not cover the resource at all (the login
    // token podman then uses for `podman search`) is answered as the Docker token spec and
    // Distribution answer it: 401 with `error="insufficient_scope"` and the scope needed, so the
    // client fetches that token. One issued for this repository that lacks a write action is
    // answered 403 DENIED with the same challenge: clients that keep their token after a 401 and
    // fetch a new one only after a 403 (oras) then ask for the wider scope, and a client whose
    // account truly lacks the right prints the message. Refused reads stay 401, whose challenge
    // carries the message as `error_description` for clients that read no body (a HEAD).
    if !allowed {
        let who = if claims.context.kind == CallerKind::Anonymous || claims.sub.is_empty() {
            "anonymous callers".to_string()
        } else {
            format!("account {:?}", claims.sub)
        };
        let what = match (&route, repo_action) {
            (Some(V2Route::Catalog), _) => "list the repositories (catalog)".to_string(),
            (_, Some((name, action))) => format!("{action} {name}"),
            _ => "do this".to_string(),
        };
        let write = !matches!(*method, Method::GET | Method::HEAD);
        // A write refused because of the repository's state says so (and what to do).
        let state = match (&route, repo_action) {
            (_, Some((name, _))) if write && claims.allows(name, "pull") => {
                st.registry.repo_state(name).await.ok().flatten()
            }
            _ => None,
        };
        let proxied = match (&route, repo_action) {
            (_, Some((name, _))) if write => {
                let ns = name.split('/').next().unwrap_or(name);
                st.registry.is_proxy_cache(ns).await.unwrap_or(false)
            }
            _ => false,
        };
        let mut detail = match state {
            _ if proxied => format!(
                "{} is in a pull-through cache organization: it holds what is pulled from its upstream, and nobody pushes or deletes there; push to another organization",
                repo_action.map(|r| r.0).unwrap_or("")
            ),
            Some(s) if s != berth_core::mirror::RepoState::Normal => {
                berth_core::mirror::state_refusal(repo_action.map(|r| r.0).unwrap_or(""), s)
            }
            _ => format!(
                "access denied: {who} may not {what} (the repository does not exist, or the account lacks the permission)"
            ),
        };
        if claims.context.kind == CallerKind::Anonymous {
            detail.push_str("; log in first (podman login / skopeo login / oras login)");
        }
        let covered = match (&route, repo_action) {
            (_, Some((name, _))) => claims.mentions(name),
            _ => false,
        };
        let mut e = ApiError::new(ErrorCode::Unauthorized, detail.clone()).header(
            header::WWW_AUTHENTICATE,
            crate::auth::challenge_saying(
                st,
                headers,
                scope.as_deref(),
                Some("insufficient_scope"),
                Some(&detail),
            ),
        );
        if covered && write && claims.context.kind != CallerKind::Anonymous {
            e.code = ErrorCode::Denied;
            e.status = 403;
        }
        return Err(e);
    }
    // A token for the destination that never asked about the mount's source: ask for both (a
    // token that asked and was refused the source falls back to a plain upload below).
    if let Some(from) = &mount_from
        && !claims.mentions(from)
    {
        return Err(deny(
            "a cross-repository mount needs a token that also covers the source repository",
            Some("insufficient_scope"),
        ));
    }
    Ok(Caller { claims, ip })
}

async fn route(
    st: &AppState,
    caller: &Caller,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult {
    let path = uri.path();
    let Some(r) = parse_v2_path(path) else {
        return Err(ApiError::new(
            ErrorCode::Unsupported,
            format!("no registry API route matches {path}"),
        )
        .status(404));
    };
    let q = Query::parse(uri.query());
    let reg = &st.registry;
    use Method as M;
    match (r, method) {
        (V2Route::Base, &M::GET | &M::HEAD) => Ok((
            [(header::CONTENT_TYPE, "application/json")],
            if method == M::HEAD { "" } else { "{}" },
        )
            .into_response()),
        (V2Route::Catalog, &M::GET) => lists::catalog(st, caller, &q).await,
        (V2Route::Tags { name }, &M::GET) => lists::tags(reg, &repo(name)?, &q).await,
        (V2Route::Referrers { name, digest }, &M::GET) => {
            lists::referrers(reg, &repo(name)?, &parse_digest(digest)?, &q).await
        }
        (V2Route::Manifest { name, reference }, m) => {
            let name = repo(name)?;
            let reference = parse_reference(reference)?;
            match *m {
                M::GET | M::HEAD => {
                    manifests::get(st, caller, &name, &reference, headers, *m == M::HEAD).await
                }
                M::PUT => {
                    manifests::put(st, caller, &name, &reference, uri.query(), headers, body).await
                }
                M::DELETE => manifests::delete(st, caller, &name, &reference).await,
                _ => Err(unsupported(m)),
            }
        }
        (V2Route::Blob { name, digest }, m) => {
            let name = repo(name)?;
            let digest = parse_digest(digest)?;
            match *m {
                M::GET | M::HEAD => blobs::get(st, &name, &digest, headers, *m == M::HEAD).await,
                M::DELETE => blobs::delete(st, caller, &name, &digest).await,
                _ => Err(unsupported(m)),
            }
        }
        (V2Route::UploadStart { name }, &M::POST) => {
            let name = repo(name)?;
            ensure_repo(st, caller, &name).await?;
            uploads::start(st, caller, &name, &q, headers, body).await
        }
        (V2Route::Upload { name, id }, m) => {
            let name = repo(name)?;
            match *m {
                M::GET => uploads::status(reg, &name, id).await,
                M::PATCH => uploads::patch(reg, &name, id, headers, body).await,
                M::PUT => uploads::put(reg, &name, id, &q, headers, body).await,
                M::DELETE => uploads::cancel(reg, &name, id).await,
                _ => Err(unsupported(m)),
            }
        }
        (_, m) => Err(unsupported(m)),
    }
}

/// Creates the repository on its first push, so that the creator's rights and the
/// organization's default permissions exist before any content does.
pub async fn ensure_repo(st: &AppState, caller: &Caller, name: &RepoName) -> Result<(), ApiError> {
    Ok(st
        .auth
        .repo_for_push(&caller.claims, name, caller.ip.as_deref())
        .await?)
}

fn unsupported(m: &Method) -> ApiError {
    ApiError::new(
        ErrorCode::Unsupported,
        format!("{m} is not supported on this route"),
    )
}

pub fn repo(name: &str) -> Result<RepoName, ApiError> {
    name.parse().map_err(|e: berth_oci::name::NameError| {
        ApiError::new(ErrorCode::NameInvalid, format!("{name:?}: {}", e.0))
    })
}

pub fn parse_digest(s: &str) -> Result<Digest, ApiError> {
    s.parse()
        .map_err(|e: berth_oci::digest::DigestError| ApiError::new(ErrorCode::DigestInvalid, e.0))
}

fn parse_reference(s: &str) -> Result<Reference, ApiError> {
    s.parse().map_err(|e| match e {
        berth_oci::name::ReferenceError::Tag(t) => ApiError::new(ErrorCode::TagInvalid, t.0),
        berth_oci::name::ReferenceError::Digest(d) => ApiError::new(ErrorCode::DigestInvalid, d.0),
    })
}

/// Decoded query parameters (first value wins).
pub struct Query(HashMap<String, String>);

impl Query {
    fn parse(q: Option<&str>) -> Query {
        let mut m = HashMap::new();
        for (k, v) in form_urlencoded::parse(q.unwrap_or("").as_bytes()) {
            m.entry(k.into_owned()).or_insert_with(|| v.into_owned());
        }
        Query(m)
    }
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str)
    }
}

/// The request body as a byte stream for the core.
pub fn body_stream(body: Body) -> ByteStream {
    Box::pin(body.into_data_stream().map_err(std::io::Error::other))
}

/// The declared Content-Length, if any.
pub fn content_length(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    match headers.get(header::CONTENT_LENGTH) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .map(Some)
            .ok_or_else(|| ApiError::new(ErrorCode::SizeInvalid, "Content-Length is not a number")),
    }
}

pub fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}
