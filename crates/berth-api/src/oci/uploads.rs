//! Upload sessions: POST (plain, monolithic `?digest=`, cross-repository `?mount=&from=`), PATCH,
//! GET status, PUT to finish, DELETE to cancel.

use super::{ApiResult, Query, body_stream, content_length, header_str, parse_digest, repo};
use crate::error::ApiError;
use axum::body::{Body, HttpBody};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use berth_core::{LastChunk, Registry, UploadState};
use berth_oci::range::parse_content_range;
use berth_oci::{Digest, ErrorCode, RepoName};

fn session_response(status: StatusCode, repo: &RepoName, s: &UploadState) -> Response {
    let end = s.size.saturating_sub(1);
    (
        status,
        [
            (
                header::LOCATION,
                format!("/v2/{repo}/blobs/uploads/{}", s.id),
            ),
            (header::RANGE, format!("0-{end}")),
            (
                header::HeaderName::from_static("docker-upload-uuid"),
                s.id.clone(),
            ),
            (header::CONTENT_LENGTH, "0".to_string()),
        ],
    )
        .into_response()
}

fn created(repo: &RepoName, digest: &Digest) -> Response {
    (
        StatusCode::CREATED,
        [
            (header::LOCATION, format!("/v2/{repo}/blobs/{digest}")),
            (
                header::HeaderName::from_static("docker-content-digest"),
                digest.to_string(),
            ),
            (header::CONTENT_LENGTH, "0".to_string()),
        ],
    )
        .into_response()
}

pub async fn start(
    st: &crate::AppState,
    caller: &super::Caller,
    name: &RepoName,
    q: &Query,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult {
    let reg = &st.registry;
    if let (Some(mount), Some(from)) = (q.get("mount"), q.get("from")) {
        let digest = parse_digest(mount)?;
        // A one-component source is the library repository, as everywhere else.
        let from = repo(
            &st.full_name(from)
                .map_err(|m| ApiError::new(ErrorCode::NameInvalid, m))?,
        )?;
        // Mounting needs pull rights on the source; without them this is a plain upload.
        if caller.claims.allows(from.as_str(), "pull")
            && reg.blob_mount(&caller.who(), name, &from, &digest).await?
        {
            return Ok(created(name, &digest));
        }
        // Not mountable: fall back to a fresh upload session, as the spec allows.
    } else if let Some(d) = q.get("digest") {
        let digest = parse_digest(d)?;
        reg.upload_monolithic(name, &digest, content_length(headers)?, body_stream(body))
            .await?;
        return Ok(created(name, &digest));
    }
    let s = reg.upload_start(name).await?;
    Ok(session_response(StatusCode::ACCEPTED, name, &s))
}

pub async fn status(reg: &Registry, name: &RepoName, id: &str) -> ApiResult {
    let s = reg.upload_status(name, id).await?;
    Ok(session_response(StatusCode::NO_CONTENT, name, &s))
}

/// A chunk's declared placement: its start (from `Content-Range`) and length (from the range,
/// else `Content-Length`). The two must agree when both are sent.
fn chunk_placement(headers: &HeaderMap) -> Result<(Option<u64>, Option<u64>), ApiError> {
    let declared = content_length(headers)?;
    let Some(h) = header_str(headers, header::CONTENT_RANGE) else {
        return Ok((None, declared));
    };
    let r = parse_content_range(h).ok_or_else(|| {
        ApiError::new(
            ErrorCode::BlobUploadInvalid,
            format!("Content-Range {h:?} is not <start>-<end>"),
        )
        .status(416)
    })?;
    if let Some(len) = declared
        && len != r.len()
    {
        return Err(ApiError::new(
            ErrorCode::SizeInvalid,
            format!(
                "Content-Range covers {} bytes but Content-Length is {len}",
                r.len()
            ),
        ));
    }
    Ok((Some(r.start), Some(r.len())))
}

/// An error from appending to a session; an out-of-order chunk (416) also tells the client where
/// to resume, with the session's `Range` and `Location`.
fn append_error(name: &RepoName, id: &str, e: berth_core::Error) -> ApiError {
    let out_of_order = matches!(e, berth_core::Error::OutOfOrder { .. });
    let err = ApiError::from(e);
    if out_of_order {
        err.header(header::LOCATION, format!("/v2/{name}/blobs/uploads/{id}"))
    } else {
        err
    }
}

pub async fn patch(
    reg: &Registry,
    name: &RepoName,
    id: &str,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult {
    let (start, expected) = chunk_placement(headers)?;
    match reg
        .upload_append(name, id, start, expected, body_stream(body))
        .await
    {
        Ok(s) => Ok(session_response(StatusCode::ACCEPTED, name, &s)),
        Err(e) => Err(append_error(name, id, e)),
    }
}

pub async fn put(
    reg: &Registry,
    name: &RepoName,
    id: &str,
    q: &Query,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult {
    let digest = q
        .get("digest")
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::DigestInvalid,
                "PUT needs ?digest=<algorithm:hex> to finish an upload",
            )
        })
        .and_then(parse_digest)?;
    let (start, len) = chunk_placement(headers)?;
    // HTTP/2 bodies carry neither Content-Length nor Transfer-Encoding, so ask the body itself.
    let has_body = match len {
        Some(n) => n > 0,
        None => !body.is_end_stream(),
    };
    let chunk = has_body.then(|| LastChunk {
        start,
        len,
        body: body_stream(body),
    });
    match reg.upload_finish(name, id, &digest, chunk).await {
        Ok(()) => Ok(created(name, &digest)),
        Err(e) => Err(append_error(name, id, e)),
    }
}

pub async fn cancel(reg: &Registry, name: &RepoName, id: &str) -> ApiResult {
    reg.upload_cancel(name, id).await?;
    Ok((StatusCode::NO_CONTENT, [(header::CONTENT_LENGTH, "0")]).into_response())
}
