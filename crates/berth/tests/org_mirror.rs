//! Organization mirroring against real upstreams started here on 127.0.0.1: a second `berth`
//! listed through Quay's API (`/api/v1/repository?namespace=`, Basic credentials), and CNCF
//! Distribution (htpasswd) listed through `/v2/_catalog`. Shows discovery with repository
//! filters, every discovered repository mirrored with the upstream's digests, Quay's field
//! shapes and statuses, writes refused in ORG_MIRROR state, a repository gone upstream left in
//! place (SKIP) while a new one is added, cancel, and delete returning repositories to NORMAL.

mod common;

use common::client::Client;
use common::upstream::{Distribution, UP_PASSWORD, UP_USER};
use common::{ADMIN_PASSWORD, ADMIN_USER, Berth};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

fn env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("BERTH_SSRF_ALLOWED_HOSTS", "[\"127.0.0.1\"]"),
        ("BERTH_REPO_MIRROR_INTERVAL", "1"),
        ("BERTH_ORG_MIRROR_INTERVAL", "1"),
        ("BERTH_REPO_MIRROR_LEASE", "4s"),
    ]
}

fn now_date() -> String {
    let s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_secs(s)).to_string()
}

/// Creates organization `org` and its robot `org+sync`.
fn org_and_robot(c: &Client, org: &str) {
    let (s, v) = c.api("POST", "/api/v1/organization/", Some(json!({"name": org})));
    assert!(s == 201 || s == 200, "{s} {v}");
    let (s, v) = c.api(
        "PUT",
        &format!("/api/v1/organization/{org}/robots/sync"),
        Some(json!({})),
    );
    assert!(s == 200 || s == 201, "{s} {v}");
}

fn repositories(c: &Client, org: &str) -> Value {
    let (s, v) = c.api(
        "GET",
        &format!("/api/v1/organization/{org}/mirror/repositories"),
        None,
    );
    assert_eq!(s, 200, "{v}");
    v
}

/// Waits until discovery lists exactly `names` (DISCOVERED ones) and each has synced.
fn wait_synced(c: &Client, org: &str, names: &[&str], limit: Duration) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let v = repositories(c, org);
        let rows = v["repositories"].as_array().cloned().unwrap_or_default();
        let live: Vec<&Value> = rows.iter().filter(|r| r["sync_status"] != "SKIP").collect();
        let mut got: Vec<&str> = live.iter().filter_map(|r| r["name"].as_str()).collect();
        got.sort();
        if got == names
            && live
                .iter()
                .all(|r| r["sync_status"] == "SUCCESS" && r["last_sync_date"].is_string())
        {
            return v;
        }
        let (_, m) = c.api("GET", &format!("/api/v1/organization/{org}/mirror"), None);
        assert!(
            Instant::now() < deadline,
            "{names:?} not all synced within {limit:?}: {v:#}\nmirror: {m:#}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn digest(c: &Client, repo: &str, tag: &str) -> Option<String> {
    let r = c
        .req("HEAD", &format!("/v2/{repo}/manifests/{tag}"))
        .header("Accept", OCI_MANIFEST)
        .send()
        .expect("HEAD");
    (r.status() == 200).then(|| {
        r.headers()["docker-content-digest"]
            .to_str()
            .expect("digest")
            .to_string()
    })
}

#[test]
fn an_organization_mirrors_a_berth_namespace_through_quays_api() {
    let upstream = Berth::start();
    let upc = Client::new(&upstream);
    let a1 = upc.image("admin/app-a", "v1", "a1", &[b"layer a1".as_slice()]);
    let a2 = upc.image("admin/app-a", "v2", "a2", &[b"layer a2".as_slice()]);
    let b1 = upc.image("admin/app-b", "latest", "b1", &[b"layer b1".as_slice()]);
    upc.image("admin/other", "latest", "o", &[b"layer o".as_slice()]);

    let b = Berth::start_with_env(&env());
    let c = Client::new(&b);
    org_and_robot(&c, "acme");
    let (s, v) = c.api("GET", "/api/v1/organization/acme/mirror", None);
    assert_eq!(s, 404, "no mirror yet: {v}");
    let body = json!({
        "external_registry_type": "quay",
        "external_registry_url": format!("http://{}", upstream.host),
        "external_namespace": "admin",
        "robot_username": "acme+sync",
        "visibility": "private",
        "sync_interval": 3600,
        "sync_start_date": now_date(),
        "external_registry_username": ADMIN_USER,
        "external_registry_password": ADMIN_PASSWORD,
        "repository_filters": ["app-*"],
    });
    // Quay's validation: the interval, the robot's organization, the type.
    for (field, bad) in [
        ("sync_interval", json!(30)),
        ("robot_username", json!("admin+nope")),
        ("external_registry_type", json!("gitlab")),
        ("external_registry_url", json!("quay.io")),
    ] {
        let mut b = body.clone();
        b[field] = bad;
        let (s, v) = c.api("POST", "/api/v1/organization/acme/mirror", Some(b));
        assert_eq!(s, 400, "{field}: {v}");
    }
    let (s, v) = c.api(
        "POST",
        "/api/v1/organization/acme/mirror",
        Some(body.clone()),
    );
    assert_eq!(s, 201, "{v}");
    let (s, _) = c.api("POST", "/api/v1/organization/acme/mirror", Some(body));
    assert_eq!(s, 400, "a second organization mirror");
    let (s, v) = c.api(
        "POST",
        "/api/v1/organization/acme/proxycache",
        Some(json!({"upstream_registry": "quay.io"})),
    );
    assert_eq!(s, 400, "a mirrored organization is no cache: {v}");

    let (s, m) = c.api("GET", "/api/v1/organization/acme/mirror", None);
    assert_eq!(s, 200, "{m}");
    assert_eq!(m["external_registry_type"], "quay");
    assert_eq!(m["external_namespace"], "admin");
    assert_eq!(m["robot_username"], "acme+sync");
    assert_eq!(m["visibility"], "private");
    assert_eq!(m["external_registry_username"], ADMIN_USER);
    assert_eq!(m["has_external_registry_password"], true);
    assert_eq!(m["repository_filters"], json!(["app-*"]));
    assert!(
        !m.to_string().contains(ADMIN_PASSWORD),
        "no password in {m}"
    );

    let (s, v) = c.api("POST", "/api/v1/organization/acme/mirror/verify", None);
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["success"], true, "{v}");

    let v = wait_synced(&c, "acme", &["app-a", "app-b"], Duration::from_secs(90));
    assert_eq!(v["total"], 2, "`other` is left out by the filters: {v:#}");
    assert_eq!(v["has_next"], false);
    assert!(
        v["repositories"]
            .as_array()
            .expect("rows")
            .iter()
            .any(|r| r["quay_repository"] == "acme/app-a"),
        "{v:#}"
    );
    assert_eq!(digest(&c, "acme/app-a", "v1"), Some(a1.digest.clone()));
    assert_eq!(digest(&c, "acme/app-a", "v2"), Some(a2.digest.clone()));
    assert_eq!(digest(&c, "acme/app-b", "latest"), Some(b1.digest.clone()));
    assert_eq!(digest(&c, "acme/other", "latest"), None);
    let (_, m) = c.api("GET", "/api/v1/organization/acme/mirror", None);
    assert_eq!(m["sync_status"], "SUCCESS", "{m:#}");

    // The repositories are the organization mirror's: nobody else writes, and their own mirror
    // and state are changed through the organization's.
    let (s, v) = c.api("DELETE", "/api/v1/repository/acme/app-a/tag/v1", None);
    assert_eq!(s, 503, "{v}");
    let (s, body) = c.put_manifest(
        "acme/app-a",
        "mine",
        OCI_MANIFEST,
        br#"{"schemaVersion":2}"#,
    );
    assert!(s == 401 || s == 403, "{s} {body}");
    let (s, v) = c.api(
        "PUT",
        "/api/v1/repository/acme/app-a/changestate",
        Some(json!({"state": "NORMAL"})),
    );
    assert_eq!(s, 400, "{v}");
    let (s, v) = c.api(
        "PUT",
        "/api/v1/repository/acme/app-a/mirror",
        Some(json!({"sync_interval": 60})),
    );
    assert_eq!(s, 400, "{v}");
    assert!(v.to_string().contains("organization"), "{v}");
    let (s, v) = c.api("GET", "/api/v1/repository/acme/app-a/mirror", None);
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["external_reference"],
        format!("{}/admin/app-a", upstream.host)
    );

    // Upstream: app-b goes, app-c comes, app-a's v1 moves. Sync now follows all three; app-b
    // stays here with its tags, marked SKIP.
    let (s, v) = upc.api("DELETE", "/api/v1/repository/admin/app-b", None);
    assert!(s == 204 || s == 200, "{s} {v}");
    let c1 = upc.image("admin/app-c", "v1", "c1", &[b"layer c1".as_slice()]);
    let a1b = upc.image("admin/app-a", "v1", "a1b", &[b"layer a1 moved".as_slice()]);
    let (s, v) = c.api("POST", "/api/v1/organization/acme/mirror/sync-now", None);
    assert_eq!(s, 204, "{v}");
    let deadline = Instant::now() + Duration::from_secs(90);
    while digest(&c, "acme/app-a", "v1").as_deref() != Some(a1b.digest.as_str()) {
        assert!(Instant::now() < deadline, "app-a:v1 did not follow");
        std::thread::sleep(Duration::from_millis(300));
    }
    let v = wait_synced(&c, "acme", &["app-a", "app-c"], Duration::from_secs(90));
    let gone = v["repositories"]
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r["name"] == "app-b")
        .cloned()
        .expect("app-b recorded");
    assert_eq!(gone["sync_status"], "SKIP", "{gone}");
    assert_eq!(digest(&c, "acme/app-b", "latest"), Some(b1.digest));
    assert_eq!(digest(&c, "acme/app-c", "v1"), Some(c1.digest));

    // Cancel: once (Quay's 400 the second time); sync-now restarts.
    let (s, _) = c.api("POST", "/api/v1/organization/acme/mirror/sync-cancel", None);
    assert_eq!(s, 204);
    let (s, v) = c.api("POST", "/api/v1/organization/acme/mirror/sync-cancel", None);
    assert_eq!(s, 400, "{v}");
    let (_, m) = c.api("GET", "/api/v1/organization/acme/mirror", None);
    assert_eq!(m["sync_status"], "CANCEL");

    // PUT changes settings (Quay answers 200); the audit log has the organization's events.
    let (s, v) = c.api(
        "PUT",
        "/api/v1/organization/acme/mirror",
        Some(json!({"sync_interval": 7200, "visibility": "public", "is_enabled": false})),
    );
    assert_eq!(s, 200, "{v}");
    let (_, m) = c.api("GET", "/api/v1/organization/acme/mirror", None);
    assert_eq!(m["sync_interval"], 7200);
    assert_eq!(m["is_enabled"], false);
    let (_, rm) = c.api("GET", "/api/v1/repository/acme/app-a/mirror", None);
    assert_eq!(
        rm["is_enabled"], false,
        "its repositories stop with it: {rm}"
    );
    let (_, logs) = c.api("GET", "/api/v1/organization/acme/logs", None);
    let kinds: Vec<&str> = logs["logs"]
        .as_array()
        .expect("logs")
        .iter()
        .filter_map(|l| l["kind"].as_str())
        .collect();
    for k in [
        "org_mirror_enabled",
        "org_mirror_sync_success",
        "org_mirror_sync_now_requested",
        "org_mirror_sync_cancelled",
        "org_mirror_config_changed",
    ] {
        assert!(kinds.contains(&k), "{k} in {kinds:?}");
    }

    // DELETE: the repositories stay, with their tags, and are writable again.
    let (s, v) = c.api("DELETE", "/api/v1/organization/acme/mirror", None);
    assert_eq!(s, 204, "{v}");
    let (s, _) = c.api("GET", "/api/v1/organization/acme/mirror", None);
    assert_eq!(s, 404);
    assert_eq!(digest(&c, "acme/app-a", "v2"), Some(a2.digest));
    let (s, v) = c.api("DELETE", "/api/v1/repository/acme/app-a/tag/v2", None);
    assert_eq!(s, 204, "{v}");
}

#[test]
fn an_organization_mirrors_a_distribution_namespace_through_the_catalog() {
    let Some(up) = Distribution::start() else {
        return;
    };
    let (x, _) = up.push_image("team/x", "v1", &[b"layer x".as_slice()]);
    let (y, _) = up.push_image("team/tools/y", "latest", &[b"layer y".as_slice()]);
    up.push_image("elsewhere/z", "v1", &[b"layer z".as_slice()]);
    let b = Berth::start_with_env(&env());
    let c = Client::new(&b);
    org_and_robot(&c, "corp");
    let (s, v) = c.api(
        "POST",
        "/api/v1/organization/corp/mirror",
        Some(json!({
            "external_registry_type": "oci",
            "external_registry_url": format!("http://{}", up.host),
            "external_namespace": "team",
            "robot_username": "corp+sync",
            "visibility": "public",
            "sync_interval": 3600,
            "sync_start_date": now_date(),
            "external_registry_username": UP_USER,
            "external_registry_password": UP_PASSWORD,
            "external_registry_config": {"verify_tls": false},
        })),
    );
    assert_eq!(s, 201, "{v}");
    wait_synced(&c, "corp", &["tools/y", "x"], Duration::from_secs(90));
    assert_eq!(digest(&c, "corp/x", "v1"), Some(x));
    assert_eq!(digest(&c, "corp/tools/y", "latest"), Some(y));
    assert_eq!(digest(&c, "corp/z", "v1"), None);
    // The repositories were created public, as the mirror says.
    let r = reqwest::blocking::Client::new()
        .get(format!("{}/v2/corp/x/tags/list", b.base))
        .send()
        .expect("anonymous");
    assert_ne!(r.status(), 404, "corp/x exists");
    let (s, v) = c.api("GET", "/api/v1/repository/corp/x", None);
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["is_public"], true, "{v}");

    // Wrong credentials: verify says so, without changing anything.
    let (s, v) = c.api(
        "PUT",
        "/api/v1/organization/corp/mirror",
        Some(json!({"external_registry_password": "wrong"})),
    );
    assert_eq!(s, 200, "{v}");
    let (s, v) = c.api("POST", "/api/v1/organization/corp/mirror/verify", None);
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["success"], false, "{v}");
}
