//! Manifest HEAD/GET (with Accept negotiation), PUT and DELETE.

use super::{ApiResult, header_str};
use crate::error::ApiError;
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use berth_core::Registry;
use berth_oci::manifest::parse_manifest;
use berth_oci::{ErrorCode, Reference, RepoName, media};

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
    reg: &Registry,
    repo: &RepoName,
    reference: &Reference,
    headers: &HeaderMap,
    head: bool,
) -> ApiResult {
    let mut row = reg.manifest_get(repo, reference).await?;
    let accept = accepted(headers);
    // A client that cannot read an index asked by tag: serve the linux/amd64 image of it, as
    // Distribution does, when the client accepts that image's type.
    if matches!(reference, Reference::Tag(_))
        && media::is_index(&row.media_type)
        && !accepts(&accept, &row.media_type)
        && let Ok(parsed) = parse_manifest(Some(&row.media_type), &row.content)
    {
        let child = parsed.manifests.iter().find(|d| {
            d.platform.as_ref().is_some_and(|p| {
                p.get("os").and_then(|v| v.as_str()) == Some("linux")
                    && p.get("architecture").and_then(|v| v.as_str()) == Some("amd64")
            }) && accepts(&accept, &d.media_type)
        });
        if let Some(child) = child {
            row = reg
                .manifest_get(repo, &Reference::Digest(child.digest.clone()))
                .await?;
        }
    }
    let len = row.content.len();
    let resp = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, &row.media_type)
        .header(header::CONTENT_LENGTH, len)
        .header("Docker-Content-Digest", &row.digest)
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

pub async fn put(
    reg: &Registry,
    repo: &RepoName,
    reference: &Reference,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult {
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
        .manifest_put(repo, reference, ct, bytes.to_vec())
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
    Ok(resp)
}

pub async fn delete(reg: &Registry, repo: &RepoName, reference: &Reference) -> ApiResult {
    reg.manifest_delete(repo, reference).await?;
    Ok((StatusCode::ACCEPTED, [(header::CONTENT_LENGTH, "0")]).into_response())
}
