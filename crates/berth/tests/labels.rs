//! Labels on manifests and expiry by label, against a real `berth`: labels of the image config
//! are recorded at push; labels are added, read, filtered and deleted through Quay's API; tag
//! listings filter by label; `quay.expires-after` gives the pushed tag an expiry (but not an
//! immutable tag); bad keys, media types and JSON values are refused with 400.

mod common;

use common::Berth;
use common::client::{Client, MT, sha};
use serde_json::{Value, json};
use std::time::Duration;

/// Pushes an image whose config carries `labels`; returns the manifest digest.
fn labelled(c: &Client, repo: &str, tag: &str, labels: Value) -> String {
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux", "config": {"Labels": labels},
        "rootfs": {"type": "layers", "diff_ids": []},
    }))
    .expect("json");
    let cd = c.blob(repo, &config);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": MT,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": config.len()},
        "layers": [],
    }))
    .expect("json");
    let (s, body) = c.put_manifest(repo, tag, MT, &manifest);
    assert_eq!(s, 201, "{body}");
    sha(&manifest)
}

fn tag_names(c: &Client, repo: &str, query: &str) -> Vec<String> {
    let (s, v) = c.api(
        "GET",
        &format!("/api/v1/repository/{repo}/tag/?onlyActiveTags=true{query}"),
        None,
    );
    assert_eq!(s, 200, "{v}");
    let mut names: Vec<String> = v["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .filter_map(|t| t["name"].as_str().map(String::from))
        .collect();
    names.sort();
    names
}

#[test]
fn labels_from_config_and_api_filters_and_expiry_by_label() {
    let b = Berth::start();
    let c = Client::new(&b);
    let repo = "admin/lab";
    let one = labelled(
        &c,
        repo,
        "v1",
        json!({"team": "a", "org.opencontainers.image.source": "https://example.com/a"}),
    );
    labelled(&c, repo, "v2", json!({"team": "b"}));
    let base = format!("/api/v1/repository/{repo}/manifest/{one}");

    // Config labels are there, marked as coming from the manifest; `filter` is a key prefix.
    let (s, v) = c.api("GET", &format!("{base}/labels"), None);
    assert_eq!(s, 200, "{v}");
    let labels = v["labels"].as_array().expect("labels");
    assert_eq!(labels.len(), 2, "{v}");
    assert!(labels.iter().all(|l| l["source_type"] == "manifest"), "{v}");
    let (_, v) = c.api("GET", &format!("{base}/labels?filter=org."), None);
    assert_eq!(v["labels"][0]["value"], "https://example.com/a", "{v}");
    assert_eq!(v["labels"].as_array().map(Vec::len), Some(1));

    // Added through the API, read back by id, and used to filter tag listings.
    let (s, added) = c.api(
        "POST",
        &format!("{base}/labels"),
        Some(json!({"key": "approved", "value": "yes", "media_type": "text/plain"})),
    );
    assert_eq!(s, 201, "{added}");
    // Quay's body: the label under "label".
    let added = added["label"].clone();
    assert_eq!(added["source_type"], "api", "{added}");
    let id = added["id"].as_str().expect("id").to_string();
    let (s, got) = c.api("GET", &format!("{base}/labels/{id}"), None);
    assert_eq!((s, got["key"].clone()), (200, json!("approved")), "{got}");
    assert_eq!(tag_names(&c, repo, "&label=approved"), vec!["v1"]);
    assert_eq!(tag_names(&c, repo, "&label=team=b"), vec!["v2"]);
    assert_eq!(tag_names(&c, repo, "&label=team"), vec!["v1", "v2"]);
    assert!(tag_names(&c, repo, "&label=team=c").is_empty());

    // Refusals.
    for (body, why) in [
        (json!({"key": "bad key!", "value": "x"}), "key"),
        (
            json!({"key": "k", "value": "{not json", "media_type": "application/json"}),
            "json",
        ),
        (
            json!({"key": "k", "value": "x", "media_type": "image/png"}),
            "media type",
        ),
    ] {
        let (s, v) = c.api("POST", &format!("{base}/labels"), Some(body));
        assert_eq!(s, 400, "{why}: {v}");
    }
    let (s, _) = c.api(
        "POST",
        &format!("/api/v1/repository/{repo}/manifest/{}/labels", sha(b"none")),
        Some(json!({"key": "k", "value": "v"})),
    );
    assert_eq!(s, 404, "no such manifest");

    // Deleted, then gone.
    let (s, _) = c.api("DELETE", &format!("{base}/labels/{id}"), None);
    assert_eq!(s, 204);
    let (s, _) = c.api("GET", &format!("{base}/labels/{id}"), None);
    assert_eq!(s, 404);
    assert!(tag_names(&c, repo, "&label=approved").is_empty());

    // The manifest itself.
    let (s, m) = c.api("GET", &base, None);
    assert_eq!(s, 200, "{m}");
    assert_eq!(m["digest"], one.as_str());
    assert_eq!(m["is_manifest_list"], false);
    assert_eq!(
        m["config_media_type"],
        "application/vnd.oci.image.config.v1+json"
    );

    // quay.expires-after: the pushed tag gets an expiry and disappears once it passes.
    labelled(&c, repo, "short", json!({"quay.expires-after": "2s"}));
    let (_, v) = c.api(
        "GET",
        &format!("/api/v1/repository/{repo}/tag/?specificTag=short"),
        None,
    );
    assert!(v["tags"][0]["expiration"].is_string(), "{v}");
    assert!(c.pull(repo, "short").is_ok());
    std::thread::sleep(Duration::from_millis(2500));
    assert!(c.pull(repo, "short").is_err(), "expired by its label");
    assert_eq!(tag_names(&c, repo, ""), vec!["v1", "v2"]);

    // An immutable tag takes no expiry from a label.
    let (s, v) = c.api(
        "POST",
        &format!("/api/v1/repository/{repo}/immutabilitypolicy/"),
        Some(json!({"tagPattern": "^rel-.*"})),
    );
    assert_eq!(s, 201, "{v}");
    labelled(&c, repo, "rel-1", json!({"quay.expires-after": "1s"}));
    let (_, v) = c.api(
        "GET",
        &format!("/api/v1/repository/{repo}/tag/?specificTag=rel-1"),
        None,
    );
    assert!(v["tags"][0].get("expiration").is_none(), "{v}");
}
