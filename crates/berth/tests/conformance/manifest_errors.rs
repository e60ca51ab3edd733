//! Manifest validation: malformed bodies, missing blobs and children, size limit, digest and tag
//! syntax.

use crate::util::*;
use serde_json::json;

/// Pushes a config and a layer; returns their descriptors.
async fn blobs(reg: &Reg, repo: &str) -> (serde_json::Value, serde_json::Value) {
    let config = unique_bytes("cfg");
    let layer = unique_bytes("layer");
    let cd = reg.push_blob(repo, &config).await;
    let ld = reg.push_blob(repo, &layer).await;
    (
        desc(OCI_CONFIG, &cd, config.len()),
        desc(OCI_LAYER, &ld, layer.len()),
    )
}

/// Asserts that nothing got tagged by a refused push.
async fn expect_not_tagged(reg: &Reg, repo: &str, tag: &str) {
    let r = reg.get(&format!("/v2/{repo}/manifests/{tag}")).await;
    r.expect_error_any(404, &["MANIFEST_UNKNOWN", "NAME_UNKNOWN"]);
}

#[tokio::test]
async fn invalid_json_is_manifest_invalid() {
    let reg = Reg::start();
    let repo = repo("badjson");
    blobs(&reg, &repo).await;
    for body in [
        &b"not json"[..],
        b"",
        b"{",
        b"[]",
        b"null",
        b"{\"schemaVersion\":2,}",
    ] {
        let r = reg.put_manifest(&repo, "bad", OCI_MANIFEST, body).await;
        r.expect_error(400, "MANIFEST_INVALID");
    }
    expect_not_tagged(&reg, &repo, "bad").await;
}

#[tokio::test]
async fn wrongly_shaped_manifests_are_manifest_invalid() {
    let reg = Reg::start();
    let repo = repo("shape");
    let (config, layer) = blobs(&reg, &repo).await;
    let cases = [
        // config is not a descriptor
        json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": "nope", "layers": [layer]}),
        // config missing
        json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": [layer]}),
        // layers is not an array
        json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": {}}),
        // wrong schema version
        json!({"schemaVersion": 3, "mediaType": OCI_MANIFEST, "config": config, "layers": [layer]}),
        // descriptor with a negative size
        json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
               "config": {"mediaType": OCI_CONFIG, "digest": config["digest"], "size": -1},
               "layers": [layer]}),
    ];
    for body in cases {
        let bytes = serde_json::to_vec(&body).expect("json");
        let r = reg.put_manifest(&repo, "bad", OCI_MANIFEST, &bytes).await;
        r.expect_error(400, "MANIFEST_INVALID");
    }
    // A descriptor with a malformed digest: the body is invalid (or its digest is).
    let bytes = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": "sha256:zz", "size": 2},
        "layers": [layer]}))
    .expect("json");
    let r = reg.put_manifest(&repo, "bad", OCI_MANIFEST, &bytes).await;
    r.expect_error_any(400, &["MANIFEST_INVALID", "DIGEST_INVALID"]);
    // An index whose manifests field is not an array.
    let bytes = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": "x"
    }))
    .expect("json");
    let r = reg.put_manifest(&repo, "bad", OCI_INDEX, &bytes).await;
    r.expect_error(400, "MANIFEST_INVALID");
    expect_not_tagged(&reg, &repo, "bad").await;
}

#[tokio::test]
async fn content_type_disagreeing_with_media_type_is_manifest_invalid() {
    let reg = Reg::start();
    let repo = repo("ctmismatch");
    let (config, layer) = blobs(&reg, &repo).await;
    let oci = image_manifest(OCI_MANIFEST, &config, &[layer]);
    for ct in [DOCKER_V2, OCI_INDEX, DOCKER_LIST] {
        let r = reg.put_manifest(&repo, "bad", ct, &oci).await;
        r.expect_error(400, "MANIFEST_INVALID");
    }
    let img = reg.push_image(&repo, "child").await;
    let index = index_manifest(OCI_INDEX, &[img.descriptor()]);
    let r = reg.put_manifest(&repo, "bad", OCI_MANIFEST, &index).await;
    r.expect_error(400, "MANIFEST_INVALID");
    expect_not_tagged(&reg, &repo, "bad").await;
}

#[tokio::test]
async fn missing_layer_or_config_is_manifest_blob_unknown() {
    let reg = Reg::start();
    let repo = repo("noblob");
    let (config, layer) = blobs(&reg, &repo).await;
    let ghost = unique_bytes("ghost");
    let ghost_layer = desc(OCI_LAYER, &sha256(&ghost), ghost.len());
    let ghost_config = desc(OCI_CONFIG, &sha256(&ghost), ghost.len());

    let body = image_manifest(OCI_MANIFEST, &config, &[layer.clone(), ghost_layer]);
    let r = reg.put_manifest(&repo, "bad", OCI_MANIFEST, &body).await;
    r.expect_error(400, "MANIFEST_BLOB_UNKNOWN");

    let body = image_manifest(OCI_MANIFEST, &ghost_config, std::slice::from_ref(&layer));
    let r = reg.put_manifest(&repo, "bad", OCI_MANIFEST, &body).await;
    r.expect_error(400, "MANIFEST_BLOB_UNKNOWN");

    // Same for Docker schema2.
    let mut dconfig = config.clone();
    dconfig["mediaType"] = json!(DOCKER_CONFIG);
    let dghost = desc(DOCKER_LAYER, &sha256(&ghost), ghost.len());
    let body = image_manifest(DOCKER_V2, &dconfig, &[dghost]);
    let r = reg.put_manifest(&repo, "bad", DOCKER_V2, &body).await;
    r.expect_error(400, "MANIFEST_BLOB_UNKNOWN");
    expect_not_tagged(&reg, &repo, "bad").await;
}

#[tokio::test]
async fn blob_only_in_another_repository_is_manifest_blob_unknown() {
    let reg = Reg::start();
    let a = repo("mbu-a");
    let b = repo("mbu-b");
    let (config_a, layer_a) = blobs(&reg, &a).await;
    let (config_b, _) = blobs(&reg, &b).await;
    let body = image_manifest(OCI_MANIFEST, &config_b, &[layer_a]);
    let r = reg.put_manifest(&b, "bad", OCI_MANIFEST, &body).await;
    r.expect_error(400, "MANIFEST_BLOB_UNKNOWN");
    expect_not_tagged(&reg, &b, "bad").await;
    // The config that exists in a but not in b.
    let (_, layer_b) = blobs(&reg, &b).await;
    let body = image_manifest(OCI_MANIFEST, &config_a, &[layer_b]);
    let r = reg.put_manifest(&b, "bad", OCI_MANIFEST, &body).await;
    r.expect_error(400, "MANIFEST_BLOB_UNKNOWN");
}

#[tokio::test]
async fn index_with_missing_child_is_manifest_blob_unknown() {
    let reg = Reg::start();
    let a = repo("idx-a");
    let b = repo("idx-b");
    let in_a = reg.push_image(&a, "v1").await;
    let in_b = reg.push_image(&b, "v1").await;
    let ghost = desc(OCI_MANIFEST, &sha256(&unique_bytes("ghost")), 123);

    let body = index_manifest(OCI_INDEX, &[in_b.descriptor(), ghost]);
    let r = reg.put_manifest(&b, "bad", OCI_INDEX, &body).await;
    r.expect_error(400, "MANIFEST_BLOB_UNKNOWN");

    // A child that only exists in another repository.
    let body = index_manifest(OCI_INDEX, &[in_b.descriptor(), in_a.descriptor()]);
    let r = reg.put_manifest(&b, "bad", OCI_INDEX, &body).await;
    r.expect_error(400, "MANIFEST_BLOB_UNKNOWN");

    // Docker manifest list likewise.
    let body = index_manifest(DOCKER_LIST, &[in_a.descriptor()]);
    let r = reg.put_manifest(&b, "bad", DOCKER_LIST, &body).await;
    r.expect_error(400, "MANIFEST_BLOB_UNKNOWN");
    expect_not_tagged(&reg, &b, "bad").await;

    // A child that is a blob (not a manifest) in this repository is not a manifest either.
    let body = index_manifest(OCI_INDEX, &[desc(OCI_MANIFEST, &in_b.layer_digest, 10)]);
    let r = reg.put_manifest(&b, "bad", OCI_INDEX, &body).await;
    r.expect_error(400, "MANIFEST_BLOB_UNKNOWN");
}

#[tokio::test]
async fn manifest_over_4_mib_is_413_size_invalid() {
    let reg = Reg::start();
    let repo = repo("huge");
    let (config, layer) = blobs(&reg, &repo).await;
    let mut m = json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": [layer],
    });
    m["annotations"] = json!({"pad": "x".repeat(4 * 1024 * 1024)});
    let body = serde_json::to_vec(&m).expect("json");
    assert!(body.len() > 4 * 1024 * 1024);
    let r = reg.put_manifest(&repo, "huge", OCI_MANIFEST, &body).await;
    r.expect_error(413, "SIZE_INVALID");
    expect_not_tagged(&reg, &repo, "huge").await;
}

#[tokio::test]
async fn manifest_just_under_4_mib_is_accepted() {
    let reg = Reg::start();
    let repo = repo("big");
    let (config, layer) = blobs(&reg, &repo).await;
    let mut m = json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": [layer],
    });
    m["annotations"] = json!({"pad": ""});
    let overhead = serde_json::to_vec(&m).expect("json").len();
    m["annotations"] = json!({"pad": "x".repeat(4 * 1024 * 1024 - overhead)});
    let body = serde_json::to_vec(&m).expect("json");
    assert_eq!(body.len(), 4 * 1024 * 1024);
    let d = reg.push_manifest(&repo, "big", OCI_MANIFEST, &body).await;
    reg.expect_manifest(&repo, "big", OCI_MANIFEST, &body, &d)
        .await;
}

#[tokio::test]
async fn put_by_digest_not_matching_body_is_digest_invalid() {
    let reg = Reg::start();
    let repo = repo("putdig");
    let (config, layer) = blobs(&reg, &repo).await;
    let body = image_manifest(OCI_MANIFEST, &config, &[layer]);
    let wrong = sha256(b"something else");
    let r = reg.put_manifest(&repo, &wrong, OCI_MANIFEST, &body).await;
    r.expect_error(400, "DIGEST_INVALID");
    for d in [wrong, sha256(&body)] {
        reg.get(&format!("/v2/{repo}/manifests/{d}"))
            .await
            .expect_error(404, "MANIFEST_UNKNOWN");
    }
    // A malformed digest as reference.
    let r = reg
        .put_manifest(&repo, "sha256:abc", OCI_MANIFEST, &body)
        .await;
    r.expect_error(400, "DIGEST_INVALID");
}

#[tokio::test]
async fn malformed_digest_reference_on_read_is_digest_invalid() {
    let reg = Reg::start();
    let repo = repo("getdig");
    reg.push_image(&repo, "v1").await;
    let upper = format!("sha256:{}", "F".repeat(64));
    for bad in ["sha256:abc", upper.as_str()] {
        let path = format!("/v2/{repo}/manifests/{bad}");
        reg.get(&path).await.expect_error(400, "DIGEST_INVALID");
        reg.delete(&path).await.expect_error(400, "DIGEST_INVALID");
    }
}

#[tokio::test]
async fn invalid_tags_are_tag_invalid_on_put() {
    let reg = Reg::start();
    let repo = repo("badtag");
    let (config, layer) = blobs(&reg, &repo).await;
    let body = image_manifest(OCI_MANIFEST, &config, &[layer]);
    let long = "t".repeat(129);
    for tag in ["-dash", ".dot", "a+b", "sp%20ace", "ümlaut", long.as_str()] {
        let r = reg.put_manifest(&repo, tag, OCI_MANIFEST, &body).await;
        r.expect_error(400, "TAG_INVALID");
    }
    // The longest valid tag and the full character set.
    let max = format!("_{}", "A".repeat(127));
    for tag in [max.as_str(), "_", "v1.2.3-rc_1", "UPPER", "0"] {
        reg.push_manifest(&repo, tag, OCI_MANIFEST, &body).await;
    }
    let mut expected = vec![
        max.clone(),
        "_".to_string(),
        "v1.2.3-rc_1".to_string(),
        "UPPER".to_string(),
        "0".to_string(),
    ];
    expected.sort();
    assert_eq!(reg.tags(&repo).await, expected);
}

#[tokio::test]
async fn invalid_tag_on_get_is_tag_invalid() {
    let reg = Reg::start();
    let repo = repo("badtagget");
    reg.push_image(&repo, "v1").await;
    let long = "t".repeat(129);
    for tag in ["-dash", long.as_str()] {
        reg.get(&format!("/v2/{repo}/manifests/{tag}"))
            .await
            .expect_error(400, "TAG_INVALID");
    }
}
