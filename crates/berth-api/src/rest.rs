//! `/api/v1`: the REST API. For now, the operator view of blob placement across storage
//! locations (geo-replication).

use crate::AppState;
use crate::error::ApiError;
use axum::Json;
use axum::extract::{Path, State};
use berth_oci::{Digest, ErrorCode};
use std::sync::Arc;

/// `GET /api/v1/superuser/blobs/{digest}/placements`: where a blob's copies are, and which
/// configured locations do not hold it yet.
pub async fn blob_placements(
    State(st): State<Arc<AppState>>,
    Path(digest): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let digest: Digest = digest
        .parse()
        .map_err(|e: berth_oci::digest::DigestError| {
            ApiError::new(ErrorCode::DigestInvalid, e.0)
        })?;
    let reg = &st.registry;
    let placed = reg
        .db
        .placements(&digest.to_string())
        .await
        .map_err(|e| ApiError::from(berth_core::Error::from(e)))?;
    if placed.is_empty() {
        return Err(ApiError::new(
            ErrorCode::BlobUnknown,
            format!("no storage location holds {digest}"),
        ));
    }
    let missing: Vec<&String> = reg
        .locations
        .names()
        .iter()
        .filter(|n| !placed.iter().any(|(l, _)| l == *n))
        .collect();
    Ok(Json(serde_json::json!({
        "digest": digest.to_string(),
        "locations": placed.iter().map(|(l, at)| serde_json::json!({"location": l, "since": at})).collect::<Vec<_>>(),
        "missing": missing,
        "preferred": reg.locations.preferred(),
    })))
}
