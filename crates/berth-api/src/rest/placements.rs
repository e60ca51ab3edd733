//! Where a blob's copies are across storage locations (geo-replication), for operators.

use super::{Ctx, Reply, RestError, Route, route};
use crate::AppState;
use berth_oci::Digest;
use serde::Serialize;
use std::sync::Arc;
use utoipa::ToSchema;

pub fn routes() -> Vec<Route> {
    vec![route!(GET "/api/v1/superuser/blobs/{digest}/placements",
        "Storage locations holding a blob, and configured locations still missing it", "super:user",
        blob_placements() -> Reply<Placements>)]
}

#[derive(Serialize, ToSchema)]
pub struct Placements {
    pub digest: String,
    pub locations: Vec<Placement>,
    /// Configured locations that do not hold it yet.
    pub missing: Vec<String>,
    /// The location reads go to first.
    pub preferred: String,
}

#[derive(Serialize, ToSchema)]
pub struct Placement {
    pub location: String,
    /// When the copy was recorded (Unix milliseconds).
    pub since: i64,
}

/// `GET /api/v1/superuser/blobs/{digest}/placements`: where a blob's copies are, and which
/// configured locations do not hold it yet.
async fn blob_placements(st: Arc<AppState>, ctx: Ctx) -> Result<Reply<Placements>, RestError> {
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
    let missing = reg
        .locations
        .names()
        .iter()
        .filter(|n| !placed.iter().any(|(l, _)| l == *n))
        .cloned()
        .collect();
    Ok(Reply::new(Placements {
        digest: digest.to_string(),
        locations: placed
            .into_iter()
            .map(|(location, since)| Placement { location, since })
            .collect(),
        missing,
        preferred: reg.locations.preferred().to_string(),
    }))
}
