//! `/v2/`, health and metrics endpoints, repository-name rules and unsupported methods.

use crate::util::*;

#[tokio::test]
async fn base_endpoint_is_200_with_empty_object_and_version_header() {
    let reg = Reg::start();
    let r = reg.get("/v2/").await;
    r.expect_status(200);
    assert_eq!(r.h("docker-distribution-api-version"), "registry/2.0");
    assert_eq!(r.json(), serde_json::json!({}));
}

#[tokio::test]
async fn health_instance_is_ok() {
    let reg = Reg::start();
    reg.get("/health/instance").await.expect_status(200);
}

#[tokio::test]
async fn health_endtoend_is_ok() {
    let reg = Reg::start();
    reg.get("/health/endtoend").await.expect_status(200);
}

#[tokio::test]
async fn metrics_expose_http_request_counter() {
    let reg = Reg::start();
    // Both requests go to the same instance, also when the suite alternates between two.
    reg.get(&reg.berth.url("/v2/")).await.expect_status(200);
    let r = reg.get(&reg.berth.url("/metrics")).await;
    r.expect_status(200);
    assert!(
        r.h("content-type").starts_with("text/plain"),
        "metrics content-type {}",
        r.h("content-type")
    );
    let text = String::from_utf8(r.body.clone()).expect("utf-8 metrics");
    assert!(
        text.lines()
            .any(|l| l.starts_with("berth_http_requests_total")),
        "no berth_http_requests_total sample in:\n{text}"
    );
}

#[tokio::test]
async fn unknown_methods_on_known_routes_are_unsupported() {
    let reg = Reg::start();
    let repo = repo("unsup");
    let img = reg.push_image(&repo, "v1").await;
    let cases = [
        ("PATCH", format!("/v2/{repo}/manifests/v1")),
        ("POST", format!("/v2/{repo}/manifests/v1")),
        ("POST", format!("/v2/{repo}/tags/list")),
        ("PUT", format!("/v2/{repo}/tags/list")),
        ("DELETE", format!("/v2/{repo}/tags/list")),
        ("PUT", format!("/v2/{repo}/blobs/{}", img.layer_digest)),
        ("PATCH", format!("/v2/{repo}/blobs/{}", img.layer_digest)),
        ("POST", format!("/v2/{repo}/referrers/{}", img.digest)),
        ("DELETE", "/v2/_catalog".to_string()),
    ];
    for (method, path) in cases {
        let r = reg.send(method, &path, &[], Some(b"x".to_vec())).await;
        r.expect_error(405, "UNSUPPORTED");
    }
    // The rejected requests changed nothing.
    let r = reg.get(&format!("/v2/{repo}/manifests/v1")).await;
    r.expect_status(200);
    assert_eq!(r.body, img.manifest);
}

#[tokio::test]
async fn invalid_repository_names_are_name_invalid() {
    let reg = Reg::start();
    let long = "a".repeat(256);
    let invalid = [
        "Upper",
        "upper/Case",
        "-leading",
        "trailing-",
        "_leading",
        "trailing_",
        "double..dot",
        "triple___under",
        "dot_.mix",
        "a/-b",
        "a/b.",
        "a-_b",
        "a_-b",
        "a.-b",
        "a__.b",
        "a/",
        "/a",
        "sp%20ace",
        "colon:name",
        long.as_str(),
    ];
    for name in invalid {
        let r = reg.get(&format!("/v2/{name}/tags/list")).await;
        r.expect_error(400, "NAME_INVALID");
        let r = reg.post(&format!("/v2/{name}/blobs/uploads/")).await;
        r.expect_error(400, "NAME_INVALID");
        let r = reg.put_manifest(name, "latest", OCI_MANIFEST, b"{}").await;
        r.expect_error(400, "NAME_INVALID");
    }
}

#[tokio::test]
async fn empty_path_component_is_name_invalid() {
    let reg = Reg::start();
    let r = reg.post("/v2/a//b/blobs/uploads/").await;
    r.expect_error(400, "NAME_INVALID");
}

#[tokio::test]
async fn valid_names_for_missing_repositories_are_name_unknown() {
    let reg = Reg::start();
    for name in [
        "a",
        "a__b",
        "a--b",
        "a---b",
        "a.b",
        "a_b",
        "0x/1y",
        "a-b.c_d__e/f",
        "a-----b",
        "a__b.c_d",
        "one/two/three/four/five",
    ] {
        let r = reg.get(&format!("/v2/{name}/tags/list")).await;
        r.expect_error(404, "NAME_UNKNOWN");
    }
}

#[tokio::test]
async fn name_of_255_chars_is_accepted_and_256_rejected() {
    let reg = Reg::start();
    // Components joined by '/', 255 characters in all.
    let name255 = format!("{}/{}", "a".repeat(127), "b".repeat(127));
    assert_eq!(name255.len(), 255);
    let img = reg.push_image(&name255, "v1").await;
    let r = reg.get(&format!("/v2/{name255}/manifests/v1")).await;
    r.expect_status(200);
    assert_eq!(r.body, img.manifest);
    assert_eq!(reg.tags(&name255).await, vec!["v1"]);

    let name256 = format!("{name255}c");
    let r = reg.post(&format!("/v2/{name256}/blobs/uploads/")).await;
    r.expect_error(400, "NAME_INVALID");
    let r = reg
        .put_manifest(&name256, "v1", OCI_MANIFEST, &img.manifest)
        .await;
    r.expect_error(400, "NAME_INVALID");
}

/// Pushes an image under `name` through the chunked and the monolithic path and reads everything
/// back through every read endpoint.
async fn round_trip(reg: &Reg, name: &str) {
    let loc = reg.start_upload(name).await;
    assert!(
        loc.starts_with(&format!("/v2/{}/blobs/uploads/", full(name))),
        "upload location {loc} for {name}"
    );
    let layer = unique_bytes(name);
    let r = reg
        .patch_chunk(&loc, &layer, Some(&format!("0-{}", layer.len() - 1)))
        .await;
    r.expect_status(202);
    let loc = r.h("location").to_string();
    let layer_digest = sha256(&layer);
    reg.finish_upload(&loc, &layer_digest, &[])
        .await
        .expect_status(201);
    let config = unique_bytes("cfg");
    let config_digest = sha256(&config);
    reg.push_blob_monolithic(name, &config_digest, &config)
        .await
        .expect_status(201);
    let manifest = image_manifest(
        OCI_MANIFEST,
        &desc(OCI_CONFIG, &config_digest, config.len()),
        &[desc(OCI_LAYER, &layer_digest, layer.len())],
    );
    let digest = reg.push_manifest(name, "t1", OCI_MANIFEST, &manifest).await;

    for reference in ["t1", digest.as_str()] {
        let r = reg.get(&format!("/v2/{name}/manifests/{reference}")).await;
        r.expect_status(200);
        assert_eq!(r.body, manifest, "manifest of {name}");
        reg.head(&format!("/v2/{name}/manifests/{reference}"))
            .await
            .expect_status(200);
    }
    let r = reg.get(&format!("/v2/{name}/blobs/{layer_digest}")).await;
    r.expect_status(200);
    assert_eq!(r.body, layer);
    reg.head(&format!("/v2/{name}/blobs/{config_digest}"))
        .await
        .expect_status(200);
    assert_eq!(reg.tags(name).await, vec!["t1"]);
    let r = reg.get(&format!("/v2/{name}/referrers/{digest}")).await;
    r.expect_status(200);
    assert_eq!(r.json()["manifests"], serde_json::json!([]));
}

#[tokio::test]
async fn names_with_one_two_and_many_components_work() {
    let reg = Reg::start();
    let names = [
        "single",
        "two/parts",
        "one/two/three/four",
        "a/b/c/d/e/f/g/h",
        "org.example/team_x/app-1",
    ];
    for name in names {
        round_trip(&reg, name).await;
    }
    let r = reg.get("/v2/_catalog").await;
    r.expect_status(200);
    let mut expected: Vec<String> = names.iter().map(|s| full(s)).collect();
    expected.sort();
    assert_eq!(strings(&r.json()["repositories"]), expected);
}

#[tokio::test]
async fn names_containing_route_keywords_work() {
    let reg = Reg::start();
    let names = [
        "a/blobs/b",
        "x/manifests/y",
        "uploads/blobs/manifests",
        "blobs/uploads",
        "manifests",
        "lib/tags/list",
        "v2/referrers/x",
        "blobs",
    ];
    for name in names {
        round_trip(&reg, name).await;
    }
    let r = reg.get("/v2/_catalog").await;
    r.expect_status(200);
    let mut expected: Vec<String> = names.iter().map(|s| full(s)).collect();
    expected.sort();
    assert_eq!(strings(&r.json()["repositories"]), expected);
    // A repository is not visible under a prefix or suffix of its name.
    let r = reg.get("/v2/a/tags/list").await;
    r.expect_error(404, "NAME_UNKNOWN");
    let r = reg.get("/v2/blobs/b/tags/list").await;
    r.expect_error(404, "NAME_UNKNOWN");
}

#[tokio::test]
async fn a_one_component_name_is_the_library_repository_in_v2_and_the_api() {
    let reg = Reg::start();
    let img = reg.push_image("plainonly", "1").await;
    // The same repository by both names, on /v2 and on /api/v1.
    for name in ["plainonly", "library/plainonly"] {
        let r = reg.get(&format!("/v2/{name}/manifests/1")).await;
        r.expect_status(200);
        assert_eq!(r.body, img.manifest);
        let r = reg.get(&format!("/api/v1/repository/{name}")).await;
        r.expect_status(200);
        let v = r.json();
        assert_eq!(
            (v["namespace"].as_str(), v["name"].as_str()),
            (Some("library"), Some("plainonly")),
            "{v}"
        );
    }
    let r = reg.get("/v2/_catalog").await;
    assert!(strings(&r.json()["repositories"]).contains(&"library/plainonly".to_string()));
    // A mount's `from=` names the source the same way.
    let dst = repo("mount-from-library");
    let r = reg
        .post(&format!(
            "/v2/{dst}/blobs/uploads/?mount={}&from=plainonly",
            img.layer_digest
        ))
        .await;
    r.expect_status(201);
}
