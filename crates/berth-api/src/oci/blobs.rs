//! Blob HEAD/GET (with single byte ranges) and DELETE.

use super::{ApiResult, header_str};
use crate::{AppState, error::ApiError};
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use berth_oci::range::{RangeOutcome, parse_range};
use berth_oci::{Digest, ErrorCode, RepoName};

pub async fn get(
    st: &AppState,
    repo: &RepoName,
    digest: &Digest,
    headers: &HeaderMap,
    head: bool,
) -> ApiResult {
    let reg = &st.registry;
    // A blob of a pull-through cache organization that is not stored yet: its size from the
    // manifest that references it for a HEAD; for a GET, its bytes as they arrive upstream
    // (stored at the same time, verified before anyone else sees them).
    if head && let Some(size) = reg.proxy_blob_size(repo, digest).await? {
        return blob_response(StatusCode::OK, size, digest)
            .body(Body::empty())
            .map_err(internal);
    }
    if !head
        && let berth_core::proxy::ProxyBlob::Streaming { size, stream } =
            reg.proxy_blob(repo, digest).await?
    {
        return blob_response(StatusCode::OK, size, digest)
            .body(Body::from_stream(stream))
            .map_err(internal);
    }
    let size = reg.blob_size(repo, digest).await?;
    let range = match header_str(headers, header::RANGE) {
        Some(h) => parse_range(h, size),
        None => RangeOutcome::Full,
    };
    let base = |status: StatusCode, len: u64| blob_response(status, len, digest);
    match range {
        RangeOutcome::Unsatisfiable => Err(ApiError::new(
            ErrorCode::RangeInvalid,
            format!("range is outside the blob of {size} bytes"),
        )
        .header(header::CONTENT_RANGE, format!("bytes */{size}"))),
        RangeOutcome::Full => {
            if head {
                return base(StatusCode::OK, size)
                    .body(Body::empty())
                    .map_err(internal);
            }
            if st.redirect_blobs
                && let Some(url) = reg.blob_redirect_url(digest).await?
            {
                return Ok(
                    (StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, url)]).into_response()
                );
            }
            let stream = reg.blob_stream(digest, None).await?;
            base(StatusCode::OK, size)
                .body(Body::from_stream(stream))
                .map_err(internal)
        }
        RangeOutcome::Partial(r) => {
            let resp = base(StatusCode::PARTIAL_CONTENT, r.len()).header(
                header::CONTENT_RANGE,
                format!("bytes {}-{}/{size}", r.start, r.end),
            );
            if head {
                return resp.body(Body::empty()).map_err(internal);
            }
            let stream = reg.blob_stream(digest, Some((r.start, r.end))).await?;
            resp.body(Body::from_stream(stream)).map_err(internal)
        }
    }
}

fn blob_response(status: StatusCode, len: u64, digest: &Digest) -> axum::http::response::Builder {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CONTENT_LENGTH, len)
        .header(header::ACCEPT_RANGES, "bytes")
        .header("Docker-Content-Digest", digest.to_string())
        .header(header::ETAG, format!("\"{digest}\""))
        .header(header::CACHE_CONTROL, "max-age=31536000")
}

fn internal(e: axum::http::Error) -> ApiError {
    tracing::error!(error = %e, "building a blob response failed");
    ApiError::new(ErrorCode::Internal, "internal error")
}

pub async fn delete(
    st: &AppState,
    caller: &super::Caller,
    repo: &RepoName,
    digest: &Digest,
) -> ApiResult {
    st.registry.blob_delete(&caller.who(), repo, digest).await?;
    Ok((StatusCode::ACCEPTED, [(header::CONTENT_LENGTH, "0")]).into_response())
}
