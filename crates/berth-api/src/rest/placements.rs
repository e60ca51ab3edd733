//! Where a blob's copies are across storage locations (geo-replication), for operators.

use super::{Ctx, R, RestError, Route, json, route};
use crate::AppState;
use berth_oci::Digest;
use std::sync::Arc;

pub fn routes() -> Vec<Route> {
    vec![route!(GET "/api/v1/superuser/blobs/{digest}/placements",
        "Storage locations holding a blob, and configured locations still missing it", "super:user", blob_placements)]
}

/// `GET /api/v1/superuser/blobs/{digest}/placements`: where a blob's copies are, and which
/// configured locations do not hold it yet.
async fn blob_placements(st: Arc<AppState>, ctx: Ctx) -> R {
    super::superuser::require(&ctx)?;
    let digest: Digest = ctx
        .p("digest")
        .parse()
        .map_err(|e: berth_oci::digest::DigestError| RestError::bad(e.0))?;
    let reg = &st.registry;
    let placed = reg.placements(&digest).await?;
    if placed.is_empty() {
        return Err(RestError::new(
            404,
            format!("no storage location holds {digest}"),
        ));
    }
    let missing: Vec<&String> = reg
        .locations
        .names()
        .iter()
        .filter(|n| !placed.iter().any(|(l, _)| l == *n))
        .collect();
    json(serde_json::json!({
        "digest": digest.to_string(),
        "locations": placed.iter().map(|(l, at)| serde_json::json!({"location": l, "since": at})).collect::<Vec<_>>(),
        "missing": missing,
        "preferred": reg.locations.preferred(),
    }))
}
