//! Manifest push and pull for every supported kind, byte-for-byte storage, tags and deletes.

use crate::util::*;
use serde_json::json;

#[tokio::test]
async fn oci_image_manifest_push_and_pull_by_tag_and_digest() {
    let reg = Reg::start();
    let repo = repo("oci");
    let img = reg.push_image(&repo, "v1").await;
    assert_eq!(img.digest, sha256(&img.manifest));
    reg.expect_manifest(&repo, "v1", OCI_MANIFEST, &img.manifest, &img.digest)
        .await;
    reg.expect_manifest(&repo, &img.digest, OCI_MANIFEST, &img.manifest, &img.digest)
        .await;
    assert_eq!(reg.tags(&repo).await, vec!["v1"]);
}

#[tokio::test]
async fn manifest_is_stored_byte_for_byte() {
    let reg = Reg::start();
    let repo = repo("bytes");
    let config = unique_bytes("cfg");
    let layer = unique_bytes("layer");
    let cd = reg.push_blob(&repo, &config).await;
    let ld = reg.push_blob(&repo, &layer).await;
    // Unusual key order, whitespace, escapes, unknown fields and a trailing newline.
    let body = format!(
        "{{\n\t\"layers\" : [ {{\"size\":{}, \"digest\":\"{ld}\",\"mediaType\":\"{OCI_LAYER}\"}} ],\
         \r\n  \"config\":{{\"digest\":\"{cd}\",\"mediaType\":\"{OCI_CONFIG}\",\"size\":{}}},\
         \"schemaVersion\":2,   \"mediaType\":\"{OCI_MANIFEST}\",\
         \"annotations\":{{\"note\":\"caf\\u00e9 \u{2603} \\\"quoted\\\"\"}},\"x-unknown\":[1,2.50,null]}}\n",
        layer.len(),
        config.len()
    )
    .into_bytes();
    let d = reg.push_manifest(&repo, "odd", OCI_MANIFEST, &body).await;
    reg.expect_manifest(&repo, "odd", OCI_MANIFEST, &body, &d)
        .await;
    reg.expect_manifest(&repo, &d, OCI_MANIFEST, &body, &d)
        .await;
}

#[tokio::test]
async fn manifest_push_by_digest_is_untagged() {
    let reg = Reg::start();
    let repo = repo("bydigest");
    reg.push_image(&repo, "keep").await;
    let config = unique_bytes("cfg");
    let layer = unique_bytes("layer");
    let cd = reg.push_blob(&repo, &config).await;
    let ld = reg.push_blob(&repo, &layer).await;
    let body = image_manifest(
        OCI_MANIFEST,
        &desc(OCI_CONFIG, &cd, config.len()),
        &[desc(OCI_LAYER, &ld, layer.len())],
    );
    let d = sha256(&body);
    let got = reg.push_manifest(&repo, &d, OCI_MANIFEST, &body).await;
    assert_eq!(got, d);
    reg.expect_manifest(&repo, &d, OCI_MANIFEST, &body, &d)
        .await;
    assert_eq!(reg.tags(&repo).await, vec!["keep"]);
}

#[tokio::test]
async fn manifest_push_by_digest_with_tag_parameters_tags_it() {
    let reg = Reg::start();
    let repo = repo("tagparam");
    let config = unique_bytes("cfg");
    let layer = unique_bytes("layer");
    let cd = reg.push_blob(&repo, &config).await;
    let ld = reg.push_blob(&repo, &layer).await;
    let body = image_manifest(
        OCI_MANIFEST,
        &desc(OCI_CONFIG, &cd, config.len()),
        &[desc(OCI_LAYER, &ld, layer.len())],
    );
    let d = sha256(&body);
    let r = reg
        .put_manifest(
            &repo,
            &format!("{d}?tag=1.2.3&tag=1.2&tag=latest&tag=1.2"),
            OCI_MANIFEST,
            &body,
        )
        .await;
    r.expect_status(201);
    assert_eq!(r.h("docker-content-digest"), d);
    let announced: Vec<String> = r
        .headers
        .get_all("oci-tag")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_string())
        .collect();
    assert_eq!(announced, ["1.2.3", "1.2", "latest"], "one OCI-Tag per tag");
    let mut tags = reg.tags(&repo).await;
    tags.sort();
    assert_eq!(tags, ["1.2", "1.2.3", "latest"]);
    for t in ["1.2.3", "1.2", "latest"] {
        reg.expect_manifest(&repo, t, OCI_MANIFEST, &body, &d).await;
    }

    // A bad tag refuses the whole push: nothing is tagged.
    let other = image_manifest(OCI_MANIFEST, &desc(OCI_CONFIG, &cd, config.len()), &[]);
    let od = sha256(&other);
    let r = reg
        .put_manifest(
            &repo,
            &format!("{od}?tag=ok&tag=-bad"),
            OCI_MANIFEST,
            &other,
        )
        .await;
    r.expect_error(400, "TAG_INVALID");
    assert!(!reg.tags(&repo).await.contains(&"ok".to_string()));

    // Without parameters a push by digest stays untagged and announces nothing.
    let r = reg.put_manifest(&repo, &od, OCI_MANIFEST, &other).await;
    r.expect_status(201);
    assert!(r.header("oci-tag").is_none());
}

#[tokio::test]
async fn manifest_accepts_accept_headers_for_its_type() {
    let reg = Reg::start();
    let repo = repo("accept");
    let img = reg.push_image(&repo, "v1").await;
    let accept = format!("{OCI_MANIFEST}, {OCI_INDEX}, {DOCKER_V2}, {DOCKER_LIST}");
    let r = reg
        .send(
            "GET",
            &format!("/v2/{repo}/manifests/v1"),
            &[("Accept", accept.as_str())],
            None,
        )
        .await;
    r.expect_status(200);
    assert_eq!(r.h("content-type"), OCI_MANIFEST);
    assert_eq!(r.body, img.manifest);
}

#[tokio::test]
async fn same_manifest_under_two_tags_and_repeated_push() {
    let reg = Reg::start();
    let repo = repo("twotags");
    let img = reg.push_image(&repo, "a").await;
    let d = reg
        .push_manifest(&repo, "b", OCI_MANIFEST, &img.manifest)
        .await;
    assert_eq!(d, img.digest);
    // Pushing the identical manifest again under the same tag is fine.
    reg.push_manifest(&repo, "a", OCI_MANIFEST, &img.manifest)
        .await;
    for t in ["a", "b"] {
        reg.expect_manifest(&repo, t, OCI_MANIFEST, &img.manifest, &d)
            .await;
    }
    assert_eq!(reg.tags(&repo).await, vec!["a", "b"]);
}

#[tokio::test]
async fn moving_a_tag_points_it_at_the_new_manifest() {
    let reg = Reg::start();
    let repo = repo("move");
    let first = reg.push_image(&repo, "latest").await;
    let second = reg.push_image(&repo, "latest").await;
    assert_ne!(first.digest, second.digest);
    reg.expect_manifest(
        &repo,
        "latest",
        OCI_MANIFEST,
        &second.manifest,
        &second.digest,
    )
    .await;
    // The old manifest is still there by digest.
    reg.expect_manifest(
        &repo,
        &first.digest,
        OCI_MANIFEST,
        &first.manifest,
        &first.digest,
    )
    .await;
    assert_eq!(reg.tags(&repo).await, vec!["latest"]);
}

#[tokio::test]
async fn oci_index_push_and_pull() {
    let reg = Reg::start();
    let repo = repo("index");
    let amd = reg.push_image(&repo, "amd64").await;
    let arm = reg.push_image(&repo, "arm64").await;
    let mut da = amd.descriptor();
    da["platform"] = json!({"architecture": "amd64", "os": "linux"});
    let mut db = arm.descriptor();
    db["platform"] = json!({"architecture": "arm64", "os": "linux", "variant": "v8"});
    let index = index_manifest(OCI_INDEX, &[da, db]);
    let d = reg.push_manifest(&repo, "multi", OCI_INDEX, &index).await;
    reg.expect_manifest(&repo, "multi", OCI_INDEX, &index, &d)
        .await;
    reg.expect_manifest(&repo, &d, OCI_INDEX, &index, &d).await;
    // An index of indexes, children referenced by digest only.
    let outer = index_manifest(OCI_INDEX, &[desc(OCI_INDEX, &d, index.len())]);
    let od = reg.push_manifest(&repo, "nested", OCI_INDEX, &outer).await;
    reg.expect_manifest(&repo, "nested", OCI_INDEX, &outer, &od)
        .await;
}

#[tokio::test]
async fn docker_schema2_and_manifest_list_push_and_pull() {
    let reg = Reg::start();
    let repo = repo("docker");
    let config = unique_bytes("{\"architecture\":\"amd64\"}");
    let layer = unique_bytes("layer");
    let cd = reg.push_blob(&repo, &config).await;
    let ld = reg.push_blob(&repo, &layer).await;
    let m = image_manifest(
        DOCKER_V2,
        &desc(DOCKER_CONFIG, &cd, config.len()),
        &[desc(DOCKER_LAYER, &ld, layer.len())],
    );
    let md = reg.push_manifest(&repo, "img", DOCKER_V2, &m).await;
    reg.expect_manifest(&repo, "img", DOCKER_V2, &m, &md).await;

    let mut child = desc(DOCKER_V2, &md, m.len());
    child["platform"] = json!({"architecture": "amd64", "os": "linux"});
    let list = index_manifest(DOCKER_LIST, &[child]);
    let ld2 = reg.push_manifest(&repo, "list", DOCKER_LIST, &list).await;
    reg.expect_manifest(&repo, "list", DOCKER_LIST, &list, &ld2)
        .await;
    reg.expect_manifest(&repo, &ld2, DOCKER_LIST, &list, &ld2)
        .await;
}

#[tokio::test]
async fn artifact_manifest_with_empty_config() {
    let reg = Reg::start();
    let repo = repo("artifact");
    assert_eq!(sha256(b"{}"), EMPTY_DIGEST);
    let empty = reg.push_blob(&repo, b"{}").await;
    assert_eq!(empty, EMPTY_DIGEST);
    let payload = unique_bytes("sbom");
    let pd = reg.push_blob(&repo, &payload).await;
    let body = artifact_manifest(
        "application/vnd.example.sbom.v1",
        &desc("application/spdx+json", &pd, payload.len()),
        None,
        Some(&json!({"org.opencontainers.image.created": "2024-01-01T00:00:00Z"})),
    );
    let d = reg.push_manifest(&repo, "sbom", OCI_MANIFEST, &body).await;
    reg.expect_manifest(&repo, "sbom", OCI_MANIFEST, &body, &d)
        .await;
    let r = reg.get(&format!("/v2/{repo}/blobs/{EMPTY_DIGEST}")).await;
    r.expect_status(200);
    assert_eq!(r.body, b"{}");
}

#[tokio::test]
async fn helm_chart_push_and_pull() {
    let reg = Reg::start();
    let repo = repo("charts/mychart");
    let config = br#"{"name":"mychart","version":"0.1.0","apiVersion":"v2"}"#.to_vec();
    let chart = [&[0x1fu8, 0x8b][..], &unique_bytes("fake tgz")].concat();
    let cd = reg.push_blob(&repo, &config).await;
    let chd = reg.push_blob(&repo, &chart).await;
    let body = image_manifest(
        OCI_MANIFEST,
        &desc(HELM_CONFIG, &cd, config.len()),
        &[desc(HELM_CHART, &chd, chart.len())],
    );
    let d = reg.push_manifest(&repo, "0.1.0", OCI_MANIFEST, &body).await;
    reg.expect_manifest(&repo, "0.1.0", OCI_MANIFEST, &body, &d)
        .await;
    let r = reg.get(&format!("/v2/{repo}/blobs/{chd}")).await;
    assert_eq!(r.body, chart);
}

#[tokio::test]
async fn oci_manifest_without_media_type_field_is_accepted() {
    let reg = Reg::start();
    let repo = repo("nomt");
    let config = unique_bytes("cfg");
    let layer = unique_bytes("layer");
    let cd = reg.push_blob(&repo, &config).await;
    let ld = reg.push_blob(&repo, &layer).await;
    let body = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "config": desc(OCI_CONFIG, &cd, config.len()),
        "layers": [desc(OCI_LAYER, &ld, layer.len())],
    }))
    .expect("json");
    let d = reg.push_manifest(&repo, "v1", OCI_MANIFEST, &body).await;
    reg.expect_manifest(&repo, "v1", OCI_MANIFEST, &body, &d)
        .await;
}

/// A schema1 manifest body as libtrust formats it (three-space indentation, no signatures).
fn schema1_payload(repo: &str, tag: &str, layer: &str) -> String {
    format!(
        "{{\n   \"schemaVersion\": 1,\n   \"name\": \"{repo}\",\n   \"tag\": \"{tag}\",\n   \
         \"architecture\": \"amd64\",\n   \"fsLayers\": [\n      {{\n         \"blobSum\": \
         \"{layer}\"\n      }}\n   ],\n   \"history\": [\n      {{\n         \"v1Compatibility\": \
         \"{{\\\"id\\\":\\\"{}\\\",\\\"created\\\":\\\"2020-01-01T00:00:00Z\\\"}}\"\n      }}\n   \
         ]\n}}",
        hex(&uuid::Uuid::new_v4().into_bytes()).repeat(2)
    )
}

#[tokio::test]
async fn docker_schema1_unsigned_push_and_pull() {
    let reg = Reg::start();
    let repo = repo("schema1");
    let layer = unique_bytes("layer");
    let ld = reg.push_blob(&repo, &layer).await;
    let body = schema1_payload(&repo, "old", &ld).into_bytes();
    let d = reg.push_manifest(&repo, "old", DOCKER_V1, &body).await;
    reg.expect_manifest(&repo, "old", DOCKER_V1, &body, &d)
        .await;
    reg.expect_manifest(&repo, &d, DOCKER_V1, &body, &d).await;
}

#[tokio::test]
async fn docker_schema1_signed_digest_is_of_the_jws_payload() {
    let reg = Reg::start();
    let repo = repo("schema1s");
    let layer = unique_bytes("layer");
    let ld = reg.push_blob(&repo, &layer).await;
    let payload = schema1_payload(&repo, "signed", &ld);
    let format_length = payload.len() - 2;
    let format_tail = &payload[format_length..];
    assert_eq!(format_tail, "\n}");
    let protected = b64url(
        format!(
            "{{\"formatLength\":{format_length},\"formatTail\":\"{}\",\"time\":\"2020-01-01T00:00:00Z\"}}",
            b64url(format_tail.as_bytes())
        )
        .as_bytes(),
    );
    let signatures = format!(
        ",\n   \"signatures\": [\n      {{\n         \"header\": {{\n            \"jwk\": {{\n      \
         \"crv\": \"P-256\",\n               \"kid\": \"AAAA:BBBB:CCCC:DDDD:EEEE:FFFF:GGGG:HHHH:IIII:JJJJ:KKKK:LLLL\",\n      \
         \"kty\": \"EC\",\n               \"x\": \"{}\",\n               \"y\": \"{}\"\n            }},\n      \
         \"alg\": \"ES256\"\n         }},\n         \"signature\": \"{}\",\n         \"protected\": \"{protected}\"\n      }}\n   ]",
        b64url(&[1u8; 32]),
        b64url(&[2u8; 32]),
        b64url(&[3u8; 64]),
    );
    let body = format!("{}{signatures}{format_tail}", &payload[..format_length]).into_bytes();
    let want = sha256(payload.as_bytes());
    assert_ne!(want, sha256(&body));

    let r = reg
        .put_manifest(&repo, "signed", DOCKER_V1_SIGNED, &body)
        .await;
    r.expect_status(201);
    assert_eq!(r.h("docker-content-digest"), want);
    assert_eq!(r.h("location"), format!("/v2/{repo}/manifests/{want}"));
    reg.expect_manifest(&repo, "signed", DOCKER_V1_SIGNED, &body, &want)
        .await;
    reg.expect_manifest(&repo, &want, DOCKER_V1_SIGNED, &body, &want)
        .await;
    reg.get(&format!("/v2/{repo}/manifests/{}", sha256(&body)))
        .await
        .expect_error(404, "MANIFEST_UNKNOWN");
}

#[tokio::test]
async fn delete_by_digest_removes_manifest_and_all_its_tags() {
    let reg = Reg::start();
    let repo = repo("deldigest");
    let img = reg.push_image(&repo, "one").await;
    reg.push_manifest(&repo, "two", OCI_MANIFEST, &img.manifest)
        .await;
    let other = reg.push_image(&repo, "other").await;
    let r = reg
        .delete(&format!("/v2/{repo}/manifests/{}", img.digest))
        .await;
    r.expect_status(202);
    for reference in ["one", "two", img.digest.as_str()] {
        reg.get(&format!("/v2/{repo}/manifests/{reference}"))
            .await
            .expect_error(404, "MANIFEST_UNKNOWN");
        let r = reg.head(&format!("/v2/{repo}/manifests/{reference}")).await;
        r.expect_status(404);
        r.expect_empty_body();
    }
    assert_eq!(reg.tags(&repo).await, vec!["other"]);
    reg.expect_manifest(&repo, "other", OCI_MANIFEST, &other.manifest, &other.digest)
        .await;
    // Deleting it again: unknown.
    reg.delete(&format!("/v2/{repo}/manifests/{}", img.digest))
        .await
        .expect_error(404, "MANIFEST_UNKNOWN");
}

#[tokio::test]
async fn delete_by_tag_removes_only_the_tag() {
    let reg = Reg::start();
    let repo = repo("deltag");
    let img = reg.push_image(&repo, "one").await;
    reg.push_manifest(&repo, "two", OCI_MANIFEST, &img.manifest)
        .await;
    reg.delete(&format!("/v2/{repo}/manifests/one"))
        .await
        .expect_status(202);
    reg.get(&format!("/v2/{repo}/manifests/one"))
        .await
        .expect_error(404, "MANIFEST_UNKNOWN");
    reg.expect_manifest(&repo, "two", OCI_MANIFEST, &img.manifest, &img.digest)
        .await;
    reg.expect_manifest(&repo, &img.digest, OCI_MANIFEST, &img.manifest, &img.digest)
        .await;
    assert_eq!(reg.tags(&repo).await, vec!["two"]);
    reg.delete(&format!("/v2/{repo}/manifests/one"))
        .await
        .expect_error(404, "MANIFEST_UNKNOWN");
}

#[tokio::test]
async fn deleting_the_last_tag_leaves_an_empty_tag_list() {
    let reg = Reg::start();
    let repo = repo("lasttag");
    let img = reg.push_image(&repo, "only").await;
    reg.delete(&format!("/v2/{repo}/manifests/only"))
        .await
        .expect_status(202);
    assert_eq!(reg.tags(&repo).await, Vec::<String>::new());
    reg.get(&format!("/v2/{repo}/manifests/{}", img.digest))
        .await
        .expect_status(200);
}

#[tokio::test]
async fn unknown_manifest_is_manifest_unknown() {
    let reg = Reg::start();
    let repo = repo("unknown");
    reg.push_image(&repo, "exists").await;
    let missing = sha256(&unique_bytes("missing"));
    for reference in ["nope", missing.as_str()] {
        let path = format!("/v2/{repo}/manifests/{reference}");
        reg.get(&path).await.expect_error(404, "MANIFEST_UNKNOWN");
        let r = reg.head(&path).await;
        r.expect_status(404);
        r.expect_empty_body();
        reg.delete(&path)
            .await
            .expect_error(404, "MANIFEST_UNKNOWN");
    }
}

#[tokio::test]
async fn manifest_in_missing_repository_is_404() {
    let reg = Reg::start();
    let repo = repo("ghost");
    reg.get(&format!("/v2/{repo}/manifests/latest"))
        .await
        .expect_error_any(404, &["NAME_UNKNOWN", "MANIFEST_UNKNOWN"]);
    let r = reg.head(&format!("/v2/{repo}/manifests/latest")).await;
    r.expect_status(404);
    r.expect_empty_body();
}

#[tokio::test]
async fn blob_digest_is_not_a_manifest() {
    let reg = Reg::start();
    let repo = repo("notmanifest");
    let img = reg.push_image(&repo, "v1").await;
    for d in [&img.config_digest, &img.layer_digest] {
        reg.get(&format!("/v2/{repo}/manifests/{d}"))
            .await
            .expect_error(404, "MANIFEST_UNKNOWN");
        reg.head(&format!("/v2/{repo}/manifests/{d}"))
            .await
            .expect_status(404);
    }
}
