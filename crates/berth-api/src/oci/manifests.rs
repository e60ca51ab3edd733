//! Manifest HEAD/GET (with Accept negotiation), PUT and DELETE.

use super::{ApiResult, Caller, header_str};
use crate::AppState;
use crate::error::ApiError;
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use berth_oci::{ErrorCode, Reference, RepoName, Tag, media};

/// Media types the client accepts; empty means anything.
fn accepted(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(media::essence)
        .filter(|t| !t.is_empty())
        .collect()
}

fn accepts(list: &[String], media_type: &str) -> bool {
    list.is_empty()
        || list
            .iter()
            .any(|t| t == media_type || t == "*/*" || t == "application/*")
}

pub async fn get(
    st: &AppState,
    caller: &Caller,
    repo: &RepoName,
    reference: &Reference,
    headers: &HeaderMap,
    head: bool,
) -> ApiResult {
    let accept = accepted(headers);
    let who = caller.who();
    // In a pull-through cache organization the manifest is brought up to date from the
    // upstream first (or served stale when the upstream cannot answer).
    let proxied = st
        .registry
        .proxy_manifest(Some(&who), repo, reference)
        .await?;
    let reference = proxied.as_ref().map(|p| &p.serve).unwrap_or(reference);
    let row = st
        .registry
        .manifest_pull((!head).then_some(&who), repo, reference, &|media_type| {
            accepts(&accept, media_type)
        })
        .await?;
    let len = row.content.len();
    let mut resp = Response::builder().status(StatusCode::OK);
    if let Some(berth_core::proxy::Freshness::Stale(why)) = proxied.map(|p| p.freshness) {
        // RFC 7234's "Response is Stale", with why (the upstream could not answer).
        let why: String = why
            .chars()
            .filter(|c| c.is_ascii_graphic() || *c == ' ')
            .filter(|c| *c != '"')
            .take(200)
            .collect();
        resp = resp.header(
            header::WARNING,
            format!("110 berth \"Response is Stale: {why}\""),
        );
    }
    let resp = resp
        .header(header::CONTENT_TYPE, &row.media_type)
        .header(header::CONTENT_LENGTH, len)
        .header("Docker-Content-Digest", row.digest.to_string())
        .header(header::ETAG, format!("\"{}\"", row.digest));
    let body = if head {
        Body::empty()
    } else {
        Body::from(row.content)
    };
    resp.body(body).map_err(|e| {
        tracing::error!(error = %e, "building a manifest response failed");
        ApiError::new(ErrorCode::Internal, "internal error")
    })
}

/// The `?tag=` parameters of a manifest PUT (distribution-spec: a push by digest may name tags).
fn tag_params(query: Option<&str>) -> Result<Vec<Tag>, ApiError> {
    let mut tags = Vec::new();
    for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if k == "tag" {
            let t: Tag = v.parse().map_err(|e: berth_oci::name::NameError| {
                ApiError::new(ErrorCode::TagInvalid, format!("tag parameter: {}", e.0))
            })?;
            tags.push(t);
        }
    }
    Ok(tags)
}

pub async fn put(
    st: &AppState,
    caller: &Caller,
    repo: &RepoName,
    reference: &Reference,
    query: Option<&str>,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult {
    let reg = &st.registry;
    let extra_tags = tag_params(query)?;
    super::ensure_repo(st, caller, repo).await?;
    let limit = reg.config.max_manifest_bytes;
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(
            ErrorCode::SizeInvalid,
            format!("manifest is larger than the {limit}-byte limit"),
        )
        .status(413)
    })?;
    let ct = header_str(headers, header::CONTENT_TYPE);
    let put = reg
        .manifest_put(
            &caller.who(),
            repo,
            reference,
            &extra_tags,
            ct,
            bytes.to_vec(),
        )
        .await?;
    let mut resp = (
        StatusCode::CREATED,
        [
            (
                header::LOCATION,
                format!("/v2/{repo}/manifests/{}", put.digest),
            ),
            (
                header::HeaderName::from_static("docker-content-digest"),
                put.digest.to_string(),
            ),
            (header::CONTENT_LENGTH, "0".to_string()),
        ],
    )
        .into_response();
    if let Some(subject) = put.subject
        && let Ok(v) = subject.to_string().parse()
    {
        resp.headers_mut().insert("OCI-Subject", v);
    }
    // One OCI-Tag per tag the push applied through `?tag=`, so a client can tell the registry
    // honoured them.
    if !extra_tags.is_empty() {
        for t in &put.tags {
            if let Ok(v) = t.as_str().parse() {
                resp.headers_mut().append("OCI-Tag", v);
            }
        }
    }
    Ok(resp)
}

pub async fn delete(
    st: &AppState,
    caller: &Caller,
    repo: &RepoName,
    reference: &Reference,
) -> ApiResult {
    st.registry
        .manifest_delete(&caller.who(), repo, reference)
        .await?;
    Ok((StatusCode::ACCEPTED, [(header::CONTENT_LENGTH, "0")]).into_response())
}
