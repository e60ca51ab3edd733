//! The `/v2` registry API. One dispatcher recognises the route from the path (repository names
//! may contain any number of `/`), validates names, references and digests, and hands over to the
//! handler for the route and method.

mod blobs;
mod lists;
mod manifests;
mod uploads;

use crate::{AppState, error::ApiError};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, Uri, header};
use axum::response::{IntoResponse, Response};
use berth_core::ByteStream;
use berth_oci::path::{V2Route, parse_v2_path};
use berth_oci::{Digest, ErrorCode, Reference, RepoName};
use futures::TryStreamExt;
use std::collections::HashMap;
use std::sync::Arc;

pub type ApiResult = Result<Response, ApiError>;

pub const API_VERSION: &str = "Docker-Distribution-API-Version";

pub async fn dispatch(
    State(st): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let head = method == Method::HEAD;
    let mut resp = match route(&st, &method, &uri, &headers, body).await {
        Ok(r) => r,
        Err(e) => e.for_head(head).into_response(),
    };
    resp.headers_mut()
        .insert(API_VERSION, HeaderValue::from_static("registry/2.0"));
    resp
}

async fn route(
    st: &AppState,
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
        (V2Route::Catalog, &M::GET) => lists::catalog(reg, &q).await,
        (V2Route::Tags { name }, &M::GET) => lists::tags(reg, &repo(name)?, &q).await,
        (V2Route::Referrers { name, digest }, &M::GET) => {
            lists::referrers(reg, &repo(name)?, &parse_digest(digest)?, &q).await
        }
        (V2Route::Manifest { name, reference }, m) => {
            let name = repo(name)?;
            let reference = parse_reference(reference)?;
            match *m {
                M::GET | M::HEAD => {
                    manifests::get(reg, &name, &reference, headers, *m == M::HEAD).await
                }
                M::PUT => manifests::put(reg, &name, &reference, headers, body).await,
                M::DELETE => manifests::delete(reg, &name, &reference).await,
                _ => Err(unsupported(m)),
            }
        }
        (V2Route::Blob { name, digest }, m) => {
            let name = repo(name)?;
            let digest = parse_digest(digest)?;
            match *m {
                M::GET | M::HEAD => blobs::get(st, &name, &digest, headers, *m == M::HEAD).await,
                M::DELETE => blobs::delete(reg, &name, &digest).await,
                _ => Err(unsupported(m)),
            }
        }
        (V2Route::UploadStart { name }, &M::POST) => {
            uploads::start(reg, &repo(name)?, &q, headers, body).await
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
