//! Health endpoints, Prometheus metrics and the request-tracking middleware.

use crate::AppState;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use berth_oci::path::{V2Route, parse_v2_path};
use std::sync::Arc;
use std::time::Instant;

fn registry_state(st: &AppState) -> &'static str {
    if st.readonly { "readonly" } else { "normal" }
}

/// Liveness: the process answers. `registry_state` is `readonly` under `REGISTRY_STATE: readonly`.
pub async fn health_instance(State(st): State<Arc<AppState>>) -> impl IntoResponse {
    axum::Json(serde_json::json!({
        "status": "ok",
        "registry_state": registry_state(&st),
        "pushes_disabled": st.disable_pushes,
    }))
}

/// Readiness: a database query and a storage write/read/delete both succeed.
pub async fn health_endtoend(State(st): State<Arc<AppState>>) -> impl IntoResponse {
    let (db, storage) = (
        st.registry.check_database().await,
        st.registry.check_storage().await,
    );
    let ok = db.is_ok() && storage.is_ok();
    let body = serde_json::json!({
        "status": if ok { "ok" } else { "failing" },
        "registry_state": registry_state(&st),
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

/// `# HELP` for every metric Berth records (the exporter prints HELP only for described metrics).
pub fn describe_metrics() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "berth_http_requests_total",
        "HTTP requests answered, by route, method and status"
    );
    describe_histogram!(
        "berth_http_request_duration_seconds",
        metrics::Unit::Seconds,
        "Time to answer an HTTP request, by route and method"
    );
    describe_counter!(
        "berth_bytes_received_total",
        metrics::Unit::Bytes,
        "Blob bytes received in uploads"
    );
    describe_counter!(
        "berth_bytes_sent_total",
        metrics::Unit::Bytes,
        "Response body bytes sent"
    );
    describe_gauge!(
        "berth_uploads_in_flight",
        "Upload requests being received now (this instance)"
    );
    describe_gauge!(
        "berth_upload_sessions",
        "Upload sessions open in the database (all instances)"
    );
    describe_gauge!("berth_blobs", "Blobs stored");
    describe_gauge!(
        "berth_blob_storage_bytes",
        metrics::Unit::Bytes,
        "Bytes of blobs stored, each blob once"
    );
    describe_gauge!("berth_blob_placements", "Blobs held per storage location");
    describe_gauge!(
        "berth_scan_layers",
        "Layers in the scanner's index, by state"
    );
    describe_gauge!(
        "berth_vuln_records",
        "Vulnerability records imported, over every source"
    );
    describe_gauge!(
        "berth_vuln_source_records",
        "Vulnerability records per source"
    );
    describe_gauge!(
        "berth_vuln_source_age_seconds",
        "Seconds since each vulnerability source was last imported (data freshness)"
    );
    describe_gauge!(
        "berth_vuln_source_failing",
        "1 while a source's last import failed"
    );
    describe_gauge!(
        "berth_scan_manifests_vulnerable",
        "Matched image manifests by their worst vulnerability severity (None: none found)"
    );
    describe_gauge!("berth_scan_manifests", "Image manifests by scan status");
    describe_counter!(
        "berth_scan_layers_indexed_total",
        "Layers indexed by this instance, by outcome"
    );
    describe_counter!(
        "berth_scan_indexed_bytes_total",
        "Uncompressed layer bytes this instance indexed"
    );
    metrics::describe_histogram!("berth_scan_index_seconds", "Time to index one layer");
    describe_counter!(
        "berth_scan_policy_refusals_total",
        "Pulls and pushes refused by security policies"
    );
    describe_counter!(
        "berth_mirror_syncs_total",
        "Repository mirror syncs finished, by outcome (success, failed, cancelled)"
    );
    metrics::describe_histogram!(
        "berth_mirror_sync_seconds",
        "Time one repository mirror sync took"
    );
    describe_counter!(
        "berth_mirror_bytes_total",
        "Bytes of blobs copied from upstream registries by mirror syncs"
    );
    describe_counter!(
        "berth_proxy_cache_requests_total",
        "Pulls through cache organizations, by upstream and result (hit, miss, stale, blob_miss)"
    );
    describe_counter!(
        "berth_proxy_cache_bytes_total",
        "Bytes of blobs fetched from upstreams and stored by cache organizations"
    );
    describe_counter!(
        "berth_proxy_cache_evictions_total",
        "Cached tags evicted (least recently pulled first) to keep a cache organization under its quota"
    );
    describe_counter!(
        "berth_password_checks_total",
        "Password logins checked, by how: hashed (argon2id) or remembered (the same credentials verified within LOGIN_CACHE_SECONDS, re-checked against the account)"
    );
    describe_counter!(
        "berth_upstream_errors_total",
        "Errors answered by (or reaching) upstream registries, by upstream and HTTP status (none: no answer)"
    );
    describe_counter!(
        "berth_blob_reads_from_other_location_total",
        "Blob reads served from a location other than the preferred one"
    );
    describe_counter!(
        "berth_replicated_bytes_total",
        metrics::Unit::Bytes,
        "Bytes copied between storage locations by replication"
    );
    describe_gauge!(
        "berth_jobs",
        "Jobs in the queue, by kind and state (all instances)"
    );
    describe_counter!("berth_jobs_completed_total", "Jobs this instance completed");
    describe_counter!(
        "berth_jobs_failed_total",
        "Job attempts that failed on this instance"
    );
    describe_counter!("berth_gc_runs_total", "Garbage-collection passes run");
    describe_counter!(
        "berth_gc_manifests_deleted_total",
        "Manifests deleted by garbage collection"
    );
    describe_counter!(
        "berth_gc_blobs_deleted_total",
        "Blobs deleted by garbage collection"
    );
    describe_counter!(
        "berth_gc_bytes_freed_total",
        metrics::Unit::Bytes,
        "Bytes freed by garbage collection"
    );
    describe_counter!(
        "berth_gc_tags_purged_total",
        "Tag history rows past the time-machine window purged"
    );
    describe_counter!(
        "berth_gc_links_removed_total",
        "Repository-to-blob links removed by garbage collection"
    );
    describe_counter!(
        "berth_gc_repositories_deleted_total",
        "Deleted repositories whose contents were collected"
    );
    describe_counter!(
        "berth_gc_orphan_blobs_total",
        "Stored objects no row knew of (left by a crash), collected"
    );
    describe_counter!(
        "berth_gc_uploads_removed_total",
        "Abandoned upload sessions removed"
    );
    describe_gauge!(
        "berth_gc_last_run_timestamp_seconds",
        metrics::Unit::Seconds,
        "When a garbage-collection pass last ran on any instance (Unix time)"
    );
    describe_gauge!(
        "berth_gc_blob_queue_depth",
        "Blobs waiting for the blob sweep"
    );
    describe_gauge!(
        "berth_namespace_storage_bytes",
        metrics::Unit::Bytes,
        "Storage a namespace uses, each blob once"
    );
    describe_gauge!(
        "berth_namespace_quota_bytes",
        metrics::Unit::Bytes,
        "A namespace's quota limit"
    );
    describe_counter!("berth_quota_rejections_total", "Pushes refused by a quota");
    describe_counter!(
        "berth_notification_deliveries_total",
        "Notification delivery attempts, by method and outcome (delivered, retried, failed)"
    );
    describe_gauge!(
        "berth_notification_deliveries_pending",
        "Notification deliveries waiting to be sent or retried"
    );
    describe_gauge!(
        "berth_notifications_disabled",
        "Notifications disabled by consecutive failed deliveries"
    );
    describe_counter!(
        "berth_notifications_disabled_total",
        "Times consecutive failed deliveries disabled a notification"
    );
    describe_counter!(
        "berth_autoprune_tags_deleted_total",
        "Tags deleted by auto-prune policies"
    );
}

/// `/metrics` on the registry's own listener: superusers only (the figures name namespaces and
/// show the registry's size). With `METRICS_LISTEN_ADDRESS` it is served there instead.
pub async fn metrics_guarded(State(st): State<Arc<AppState>>, req: Request) -> Response {
    if !st.metrics_here {
        return crate::rest::RestError::new(
            404,
            "metrics are served on METRICS_LISTEN_ADDRESS, not on this listener",
        )
        .into_response();
    }
    let ip = crate::auth::client_ip(&req);
    match crate::rest::api_caller(&st, req.headers(), req.method(), ip.as_deref()).await {
        Ok(Some(a)) if a.superuser => metrics(State(st)).await,
        Ok(Some(_)) => crate::rest::RestError::new(
            403,
            "metrics are for superusers (or serve them on their own address with METRICS_LISTEN_ADDRESS)",
        )
        .into_response(),
        Ok(None) => {
            let mut resp = crate::rest::RestError::new(
                401,
                "metrics need a superuser's credentials (Basic or an API token), or METRICS_LISTEN_ADDRESS",
            )
            .into_response();
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Basic realm=\"berth-metrics\""),
            );
            resp
        }
        Err(e) => e.into_response(),
    }
}

/// Prometheus text exposition. Storage totals are read from the database at scrape time.
pub async fn metrics(State(st): State<Arc<AppState>>) -> Response {
    let Some(handle) = &st.metrics else {
        return (StatusCode::NOT_FOUND, "metrics are disabled").into_response();
    };
    let usage = st.registry.usage().await;
    if let (Some(count), Some(bytes)) = (usage.blobs, usage.blob_bytes) {
        metrics::gauge!("berth_blobs").set(count as f64);
        metrics::gauge!("berth_blob_storage_bytes").set(bytes as f64);
    }
    if let Some(n) = usage.upload_sessions {
        metrics::gauge!("berth_upload_sessions").set(n as f64);
    }
    for (kind, state, n) in usage.jobs {
        metrics::gauge!("berth_jobs", "kind" => kind, "state" => state).set(n as f64);
    }
    // Garbage collection across every instance: when a pass last ran anywhere, and what waits.
    if let Ok((totals, queue)) = st.registry.gc_status().await {
        metrics::gauge!("berth_gc_blob_queue_depth").set(queue as f64);
        if let Some(at) = totals.last_run_at {
            metrics::gauge!("berth_gc_last_run_timestamp_seconds").set(at as f64 / 1000.0);
        }
    }
    // The scanner: layers by index state, data per source, manifests by worst severity.
    if let Ok(sc) = st.registry.scanner_state().await {
        for (state, n) in sc.layers {
            metrics::gauge!("berth_scan_layers", "state" => state).set(n as f64);
        }
        metrics::gauge!("berth_vuln_records").set(sc.records as f64);
        let now = berth_core::now_ms();
        for s in sc.sources {
            let source = s.source;
            metrics::gauge!("berth_vuln_source_records", "source" => source.clone())
                .set(s.records as f64);
            if s.imported_at > 0 {
                metrics::gauge!("berth_vuln_source_age_seconds", "source" => source.clone())
                    .set((now - s.imported_at) as f64 / 1000.0);
            }
            metrics::gauge!("berth_vuln_source_failing", "source" => source)
                .set(if s.last_error.is_some() { 1.0 } else { 0.0 });
        }
    }
    if let Ok((worst, statuses)) = st.registry.scan_totals().await {
        for (severity, n) in worst {
            metrics::gauge!("berth_scan_manifests_vulnerable", "worst" => severity).set(n as f64);
        }
        for (status, n) in statuses {
            metrics::gauge!("berth_scan_manifests", "status" => status).set(n as f64);
        }
    }
    for (location, n) in usage.placements {
        metrics::gauge!("berth_blob_placements", "location" => location).set(n as f64);
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
