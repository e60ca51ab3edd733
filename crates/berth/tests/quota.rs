//! Namespace quotas against a real `berth`: usage counts a layer shared by two repositories once;
//! a push over the reject threshold is refused with `DENIED`, records `quota_error`, and leaves
//! nothing behind once collected; crossing the warning threshold records `quota_warning`; usage
//! returns to the exact figure after deletes and garbage collection; quota editing is for
//! superusers, reading for members; per-repository and per-tag usage and the metrics agree.

mod common;

use common::Berth;
use common::client::{Client, set, stored};
use serde_json::{Value, json};

fn config_len(salt: &str) -> usize {
    serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux", "config": {"Labels": {"salt": salt}},
        "rootfs": {"type": "layers", "diff_ids": []},
    }))
    .expect("json")
    .len()
}

fn usage(c: &Client, org: &str) -> i64 {
    let (s, v) = c.api("GET", &format!("/api/v1/organization/{org}/quota"), None);
    assert_eq!(s, 200, "{v}");
    v[0]["usage_bytes"].as_i64().expect("usage_bytes")
}

fn logs(c: &Client, org: &str, kind: &str) -> Vec<Value> {
    let (s, v) = c.api(
        "GET",
        &format!("/api/v1/organization/{org}/logs?kind={kind}"),
        None,
    );
    assert_eq!(s, 200, "{v}");
    v["logs"].as_array().cloned().unwrap_or_default()
}

#[test]
fn quotas_count_shared_layers_once_refuse_over_limit_and_follow_gc() {
    let b = Berth::start_with_env(&[
        ("BERTH_FEATURE_GARBAGE_COLLECTION", "false"),
        ("BERTH_PUSH_TEMP_TAG_EXPIRATION_SEC", "0"),
    ]);
    let c = Client::new(&b);
    c.org("q", 0);
    let shared = vec![7u8; 100_000];
    let a = vec![1u8; 50_000];
    let bl = vec![2u8; 50_000];
    let one = c.image("q/one", "v1", "one", &[&shared, &a]);
    let (s, v) = c.api("GET", "/api/v1/organization/q/quota", None);
    assert_eq!((s, v.clone()), (200, json!([])), "no quota yet");
    // A quota can be created by superusers only; members read it.
    let (s, v) = c.api(
        "POST",
        "/api/v1/organization/q/quota",
        Some(json!({"limit": "400 KB"})),
    );
    assert_eq!(s, 201, "{v}");
    let (s, _) = c.api(
        "POST",
        "/api/v1/organization/q/quota",
        Some(json!({"limit_bytes": 1})),
    );
    assert_eq!(s, 409, "one quota per namespace");
    let (_, list) = c.api("GET", "/api/v1/organization/q/quota", None);
    let qid = list[0]["id"].as_i64().expect("quota id");
    assert_eq!(list[0]["limit_bytes"], 400_000, "{list}");
    for (kind, pct) in [("Warning", 80), ("Reject", 100)] {
        let (s, v) = c.api(
            "POST",
            &format!("/api/v1/organization/q/quota/{qid}/limit"),
            Some(json!({"type": kind, "threshold_percent": pct})),
        );
        assert_eq!(s, 201, "{v}");
    }
    let (_, limits) = c.api(
        "GET",
        &format!("/api/v1/organization/q/quota/{qid}/limit"),
        None,
    );
    assert_eq!(limits.as_array().map(Vec::len), Some(2), "{limits}");

    let base = (config_len("one") + shared.len() + a.len()) as i64;
    assert_eq!(usage(&c, "q"), base);
    // The shared layer is counted once in the namespace.
    let two = c.image("q/two", "v1", "two", &[&shared, &bl]);
    let with_two = base + (config_len("two") + bl.len()) as i64;
    assert_eq!(usage(&c, "q"), with_two);

    // 250 kB more would pass 400 kB: refused, with DENIED and a message that says what to do.
    let big = vec![3u8; 250_000];
    let cfg = serde_json::to_vec(
        &json!({"architecture": "amd64", "os": "linux", "config": {"Labels": {"salt": "big"}},
        "rootfs": {"type": "layers", "diff_ids": []}}),
    )
    .expect("json");
    let cd = c.blob("q/three", &cfg);
    // The layer alone would pass the limit: refused while it uploads, not after.
    let bd = common::client::sha(&big);
    let r = c
        .req("POST", &format!("/v2/q/three/blobs/uploads/?digest={bd}"))
        .body(big.clone())
        .send()
        .expect("upload");
    let s = r.status().as_u16();
    let body = r.text().unwrap_or_default();
    assert_eq!(s, 403, "{body}");
    assert!(
        body.contains("DENIED") && body.contains("quota") && body.contains("delete tags"),
        "{body}"
    );
    assert!(c.pull("q/three", "v1").is_err(), "nothing was tagged");
    assert_eq!(usage(&c, "q"), with_two, "a refused push adds nothing");
    let errors = logs(&c, "q", "quota_error");
    assert_eq!(errors.len(), 1, "{errors:?}");
    // Its uploaded blobs are collected: nothing is left behind.
    c.gc();
    assert!(stored(&b, &set([&cd, &bd])).is_empty());

    // Crossing 80 % records a warning, and the push goes through.
    let warn_layer = vec![4u8; 130_000];
    let w = c.image("q/one", "v2", "warn", &[&warn_layer]);
    assert_eq!(logs(&c, "q", "quota_warning").len(), 1);
    let with_warn = with_two + (config_len("warn") + warn_layer.len()) as i64;
    assert_eq!(usage(&c, "q"), with_warn);

    // Per-repository and per-tag usage.
    let (s, u) = c.api("GET", "/api/v1/repository/q/one/usage", None);
    assert_eq!(s, 200, "{u}");
    assert_eq!(
        u["size_bytes"],
        (config_len("one") + shared.len() + a.len() + config_len("warn") + warn_layer.len()) as i64,
        "{u}"
    );
    // Deleting q/one would free all but the layer q/two shares.
    assert_eq!(
        u["exclusive_bytes"],
        (config_len("one") + a.len() + config_len("warn") + warn_layer.len()) as i64,
        "{u}"
    );
    let v1 = u["tags"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["name"] == "v1"))
        .cloned()
        .expect("tag v1");
    assert_eq!(v1["manifest_digest"], one.digest.as_str());
    assert_eq!(v1["exclusive_bytes"], (config_len("one") + a.len()) as i64);

    // Deleting q/two's tag frees its own bytes once collected (window 0); the shared layer stays.
    assert_eq!(c.delete("q/two", "v1"), 202);
    assert_eq!(
        usage(&c, "q"),
        with_two - with_two + with_warn,
        "kept until GC"
    );
    let report = c.gc();
    assert_eq!(report["manifests_deleted"], 1, "{report}");
    assert_eq!(
        usage(&c, "q"),
        with_warn - (config_len("two") + bl.len()) as i64
    );
    assert!(stored(&b, &set([&two.blobs[2]])).is_empty());
    assert_eq!(c.pull("q/one", "v2"), Ok(w.digest.clone()));
    let metrics = c.metrics();
    let line = format!(
        "berth_namespace_storage_bytes{{namespace=\"q\"}} {}",
        with_warn - (config_len("two") + bl.len()) as i64
    );
    assert!(metrics.contains(&line), "{line} not in {metrics}");

    // Raising the quota lets the refused push through; removing it lifts every check.
    let (s, v) = c.api(
        "PUT",
        &format!("/api/v1/organization/q/quota/{qid}"),
        Some(json!({"limit_bytes": 10_000_000})),
    );
    assert_eq!(s, 200, "{v}");
    c.image("q/three", "v1", "big", &[&big]);
    let (s, _) = c.api(
        "DELETE",
        &format!("/api/v1/organization/q/quota/{qid}"),
        None,
    );
    assert_eq!(s, 204);
    assert_eq!(
        c.api("GET", "/api/v1/organization/q/quota", None).1,
        json!([])
    );
}

#[test]
fn only_superusers_edit_quotas_and_a_system_default_applies_everywhere() {
    let b = Berth::start_with_env(&[("BERTH_DEFAULT_SYSTEM_REJECT_QUOTA_BYTES", "100000")]);
    let c = Client::new(&b);
    // A second, ordinary user with a namespace of its own.
    let (s, v) = c.api(
        "POST",
        "/api/v1/superuser/users/",
        Some(json!({"username": "carol", "email": "carol@example.com", "password": "carol-password-1"})),
    );
    assert_eq!(s, 200, "{v}");
    let carol = |method: &str, path: &str, body: Option<Value>| {
        let mut r = c
            .http
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).expect("method"),
                format!("{}{path}", c.base),
            )
            .basic_auth("carol", Some("carol-password-1"));
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r.send().expect("send");
        let s = r.status().as_u16();
        (s, r.json::<Value>().unwrap_or(Value::Null))
    };
    let (s, v) = carol(
        "POST",
        "/api/v1/superuser/users/carol/quota",
        Some(json!({"limit_bytes": 1})),
    );
    assert_eq!(s, 403, "{v}");
    // The system default shows as carol's quota, and refuses a push past it.
    let (s, v) = carol("GET", "/api/v1/user/quota", None);
    assert_eq!(s, 200, "{v}");
    assert_eq!(v[0]["default_config"], true, "{v}");
    assert_eq!(v[0]["limit_bytes"], 100_000, "{v}");
    let small = c.image("admin/ok", "v1", "small", &[&[5u8; 1000][..]]);
    assert!(!small.digest.is_empty());
    // A blob that alone passes the limit is refused while it uploads, before a byte is kept:
    // in one request (monolithic POST) and in chunks (PATCH with its length).
    let cfg_and_big = vec![6u8; 150_000];
    let d = common::client::sha(&cfg_and_big);
    let r = c
        .req("POST", &format!("/v2/admin/big/blobs/uploads/?digest={d}"))
        .body(cfg_and_big.clone())
        .send()
        .expect("monolithic");
    assert_eq!(r.status().as_u16(), 403);
    let body = r.text().unwrap_or_default();
    assert!(body.contains("DENIED") && body.contains("quota"), "{body}");
    let r = c
        .req("POST", "/v2/admin/big/blobs/uploads/")
        .send()
        .expect("post");
    assert_eq!(r.status().as_u16(), 202, "room is left: the upload starts");
    let loc = r
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .expect("location")
        .to_string();
    let r = c
        .req("PATCH", &loc)
        .header("Content-Type", "application/octet-stream")
        .body(cfg_and_big.clone())
        .send()
        .expect("patch");
    assert_eq!(r.status().as_u16(), 403, "{}", r.text().unwrap_or_default());
    let r = c
        .req("HEAD", &format!("/v2/admin/big/blobs/{d}"))
        .send()
        .expect("head");
    assert_eq!(
        r.status().as_u16(),
        404,
        "nothing of the refused blob is kept"
    );
    // Small blobs that together pass the limit get through the uploads; the manifest push,
    // which would reference them all, is refused.
    let halves = [vec![6u8; 75_000], vec![7u8; 75_000]];
    let layers: Vec<Value> = halves
        .iter()
        .map(|h| {
            json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": c.blob("admin/big", h), "size": h.len()})
        })
        .collect();
    let cfg = c.blob("admin/big", b"{}");
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": common::client::MT,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg, "size": 2},
        "layers": layers,
    }))
    .expect("json");
    let (s, body) = c.put_manifest("admin/big", "v1", common::client::MT, &manifest);
    assert_eq!(s, 403, "{body}");
    // A superuser gives carol a quota of her own with only a warning: the system default's
    // reject limit still applies to her.
    let (s, v) = c.api(
        "POST",
        "/api/v1/superuser/users/carol/quota",
        Some(json!({"limit": "1 GiB"})),
    );
    assert_eq!(s, 201, "{v}");
    let (_, v) = carol("GET", "/api/v1/user/quota", None);
    assert_eq!(v[0]["limit_bytes"], 1_073_741_824_i64, "{v}");
    assert_eq!(v[0]["default_config"], false, "{v}");
    let qid = v[0]["id"].as_i64().expect("quota id");
    // User namespaces take thresholds through the organization path, as in Quay.
    let (s, v) = c.api(
        "POST",
        &format!("/api/v1/organization/carol/quota/{qid}/limit"),
        Some(json!({"type": "Warning", "threshold_percent": 80})),
    );
    assert_eq!(s, 201, "{v}");
    let (s, v) = carol("GET", &format!("/api/v1/user/quota/{qid}/limit"), None);
    assert_eq!(s, 200, "{v}");
    assert_eq!(v[0]["type"], "Warning", "{v}");
    let carol_push = |data: &[u8]| {
        let d = common::client::sha(data);
        let r = c
            .http
            .post(format!("{}/v2/carol/app/blobs/uploads/?digest={d}", c.base))
            .basic_auth("carol", Some("carol-password-1"))
            .body(data.to_vec())
            .send()
            .expect("carol push");
        r.status().as_u16()
    };
    assert_eq!(
        carol_push(&[8u8; 150_000]),
        403,
        "warning-only quota: default reject holds"
    );
    // Her own Reject threshold replaces the default.
    let (s, v) = c.api(
        "POST",
        &format!("/api/v1/organization/carol/quota/{qid}/limit"),
        Some(json!({"type": "Reject", "threshold_percent": 100})),
    );
    assert_eq!(s, 201, "{v}");
    assert_eq!(
        carol_push(&[8u8; 150_000]),
        201,
        "her own 1 GiB reject limit applies"
    );
    let (s, v) = c.api(
        "POST",
        "/api/v1/superuser/users/carol/quota",
        Some(json!({"limit": "lots"})),
    );
    assert_eq!(s, 400, "{v}");
}
