//! Health endpoints, Prometheus metrics and the request-tracking middleware.

use crate::AppState;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use berth_oci::path::{V2Route, parse_v2_path};
use std::sync::Arc;
use std::time::Instant;

/// Liveness: the process answers.
pub async fn health_instance() -> impl IntoResponse {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"status":"ok"}"#,
    )
}

/// Readiness: a database query and a storage write/read/delete both succeed.
pub async fn health_endtoend(State(st): State<Arc<AppState>>) -> impl IntoResponse {
    let (db, storage) = (
        st.registry.db.health().await,
        st.registry.store.health().await,
    );
    let ok = db.is_ok() && storage.is_ok();
    let body = serde_json::json!({
        "status": if ok { "ok" } else { "failing" },
        "services": {
            "database": db.as_ref().map(|_| "ok".to_string()).unwrap_or_else(|e| e.to_string()),
            "storage": storage.as_ref().map(|_| "ok".to_string()).unwrap_or_else(|e| e.to_string()),
        }
    });
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body))
}

/// Prometheus text exposition. Storage totals are read from the database at scrape time.
pub async fn metrics(State(st): State<Arc<AppState>>) -> Response {
    let Some(handle) = &st.metrics else {
        return (StatusCode::NOT_FOUND, "metrics are disabled").into_response();
    };
    if let Ok((count, bytes)) = st.registry.db.blob_totals().await {
        metrics::gauge!("berth_blobs").set(count as f64);
        metrics::gauge!("berth_blob_storage_bytes").set(bytes as f64);
    }
    if let Ok(n) = st.registry.db.uploads_in_progress().await {
        metrics::gauge!("berth_upload_sessions").set(n as f64);
    }
    if let Ok(counts) = st.registry.db.job_counts().await {
        for (kind, state, n) in counts {
            metrics::gauge!("berth_jobs", "kind" => kind, "state" => state).set(n as f64);
        }
    }
    // Garbage collection across every instance: when a pass last ran anywhere, and what waits.
    if let Ok((totals, queue)) = st.registry.gc_status().await {
        metrics::gauge!("berth_gc_blob_queue_depth").set(queue as f64);
        if let Some(at) = totals.last_run_at {
            metrics::gauge!("berth_gc_last_run_timestamp_seconds").set(at as f64 / 1000.0);
        }
    }
    if let Ok(counts) = st.registry.db.placement_counts().await {
        for (location, n) in counts {
            metrics::gauge!("berth_blob_placements", "location" => location).set(n as f64);
        }
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle.render(),
    )
        .into_response()
}

/// A low-cardinality route label for metrics.
fn route_label(path: &str) -> &'static str {
    match parse_v2_path(path) {
        Some(V2Route::Base) => "v2",
        Some(V2Route::Catalog) => "catalog",
        Some(V2Route::Tags { .. }) => "tags",
        Some(V2Route::Manifest { .. }) => "manifest",
        Some(V2Route::Blob { .. }) => "blob",
        Some(V2Route::UploadStart { .. }) | Some(V2Route::Upload { .. }) => "upload",
        Some(V2Route::Referrers { .. }) => "referrers",
        None if path.starts_with("/health") => "health",
        None if path == "/metrics" => "metrics",
        None => "other",
    }
}

/// Counts requests by route, method and status, times them, and counts bytes sent.
pub async fn track(req: Request, next: Next) -> Response {
    let route = route_label(req.uri().path());
    let method = req.method().as_str().to_owned();
    let start = Instant::now();
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    metrics::counter!("berth_http_requests_total", "route" => route, "method" => method.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("berth_http_request_duration_seconds", "route" => route, "method" => method.clone())
        .record(start.elapsed().as_secs_f64());
    // HEAD answers carry the Content-Length of a body they do not send.
    if method == "HEAD" {
        return resp;
    }
    if let Some(len) = resp
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        metrics::counter!("berth_bytes_sent_total").increment(len);
    }
    resp
}
