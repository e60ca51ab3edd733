//! Paginated listings (tags, catalog) and the referrers index.

use super::{ApiResult, Query};
use crate::error::ApiError;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use berth_core::Registry;
use berth_core::auth::views::Listing;
use berth_oci::{Digest, ErrorCode, RepoName, media};

/// Upper bound of one page, whatever `n` asks for.
const MAX_PAGE: i64 = 10_000;

/// `n` and `last` from the query.
fn page(q: &Query) -> Result<(i64, Option<&str>), ApiError> {
    let n = match q.get("n") {
        None | Some("") => MAX_PAGE,
        Some(s) => s
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::PaginationNumberInvalid,
                    format!("n={s:?} must be a non-negative integer"),
                )
            })?
            .min(MAX_PAGE),
    };
    Ok((n, q.get("last").filter(|l| !l.is_empty())))
}

/// A JSON page with an RFC 5988 `Link` to the next page when one more item exists.
fn paged(
    path: &str,
    key: &str,
    name: Option<&RepoName>,
    mut items: Vec<String>,
    n: i64,
) -> Response {
    let more = items.len() as i64 > n;
    items.truncate(usize::try_from(n).unwrap_or(0));
    let mut body = serde_json::json!({ key: items });
    if let Some(name) = name {
        body["name"] = serde_json::Value::String(name.to_string());
    }
    let mut resp = (StatusCode::OK, axum::Json(body)).into_response();
    if more && let Some(last) = items.last() {
        let last: String = form_urlencoded::byte_serialize(last.as_bytes()).collect();
        if let Ok(v) = format!("<{path}?last={last}&n={n}>; rel=\"next\"").parse() {
            resp.headers_mut().insert(header::LINK, v);
        }
    }
    resp
}

pub async fn tags(reg: &Registry, repo: &RepoName, q: &Query) -> ApiResult {
    let (n, last) = page(q)?;
    let items = reg.tags(repo, last, n + 1).await?;
    Ok(paged(
        &format!("/v2/{repo}/tags/list"),
        "tags",
        Some(repo),
        items,
        n,
    ))
}

/// The catalog lists only the repositories the caller may see.
pub async fn catalog(st: &crate::AppState, caller: &super::Caller, q: &Query) -> ApiResult {
    let (n, last) = page(q)?;
    let actor = st.auth.token_actor(&caller.claims);
    let listing = Listing {
        public: true,
        everything: true,
        ..Listing::default()
    };
    let items: Vec<String> = st
        .auth
        .readable_repos(actor.as_ref(), &listing, last, n + 1)
        .await?
        .into_iter()
        .map(|r| r.name)
        .collect();
    Ok(paged("/v2/_catalog", "repositories", None, items, n))
}

pub async fn referrers(reg: &Registry, repo: &RepoName, subject: &Digest, q: &Query) -> ApiResult {
    let filter = q.get("artifactType").filter(|s| !s.is_empty());
    let list = reg.referrers(repo, subject, filter).await?;
    let body = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_INDEX,
        "manifests": list,
    });
    let mut resp = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, media::OCI_INDEX)],
        body.to_string(),
    )
        .into_response();
    if filter.is_some() {
        resp.headers_mut().insert(
            "OCI-Filters-Applied",
            header::HeaderValue::from_static("artifactType"),
        );
    }
    Ok(resp)
}
