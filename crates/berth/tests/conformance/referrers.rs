//! The referrers API (`GET /v2/<name>/referrers/<digest>`) and the `OCI-Subject` header.

use crate::util::*;
use serde_json::{Value, json};

const SIG: &str = "application/vnd.example.signature.v1";
const SBOM: &str = "application/vnd.example.sbom.v1";
const CUSTOM_CONFIG: &str = "application/vnd.example.custom.config.v1+json";
const BUNDLE: &str = "application/vnd.example.bundle.v1";

/// Pushes the empty config and a fresh layer; returns the layer descriptor.
async fn artifact_layer(reg: &Reg, repo: &str) -> Value {
    reg.push_blob(repo, b"{}").await;
    let data = unique_bytes("artifact");
    let d = reg.push_blob(repo, &data).await;
    desc("application/octet-stream", &d, data.len())
}

/// Pushes an artifact by digest with the given subject; returns (digest, size).
async fn push_artifact(
    reg: &Reg,
    repo: &str,
    artifact_type: &str,
    subject: &Value,
    annotations: Option<&Value>,
) -> (String, usize) {
    let layer = artifact_layer(reg, repo).await;
    let body = artifact_manifest(artifact_type, &layer, Some(subject), annotations);
    let d = sha256(&body);
    let r = reg.put_manifest(repo, &d, OCI_MANIFEST, &body).await;
    r.expect_status(201);
    assert_eq!(r.h("docker-content-digest"), d);
    assert_eq!(
        r.h("oci-subject"),
        subject["digest"].as_str().expect("subject digest")
    );
    (d, body.len())
}

/// GET referrers, asserting the envelope; returns the descriptors sorted by digest.
async fn referrers(reg: &Reg, repo: &str, digest: &str, query: &str) -> (Resp, Vec<Value>) {
    let r = reg
        .get(&format!("/v2/{repo}/referrers/{digest}{query}"))
        .await;
    r.expect_status(200);
    assert_eq!(r.h("content-type"), OCI_INDEX);
    let v = r.json();
    assert_eq!(v["schemaVersion"], 2);
    assert_eq!(v["mediaType"], OCI_INDEX);
    let mut list = v["manifests"]
        .as_array()
        .unwrap_or_else(|| panic!("manifests must be an array: {v}"))
        .clone();
    list.sort_by(|a, b| a["digest"].as_str().cmp(&b["digest"].as_str()));
    (r, list)
}

fn find<'a>(list: &'a [Value], digest: &str) -> &'a Value {
    list.iter()
        .find(|d| d["digest"] == digest)
        .unwrap_or_else(|| panic!("{digest} not among referrers {list:?}"))
}

fn expect_desc(
    d: &Value,
    media_type: &str,
    size: usize,
    artifact_type: &str,
    annotations: Option<&Value>,
) {
    assert_eq!(d["mediaType"], media_type, "{d}");
    assert_eq!(d["size"], size, "{d}");
    assert_eq!(d["artifactType"], artifact_type, "{d}");
    match annotations {
        Some(a) => assert_eq!(&d["annotations"], a, "{d}"),
        None => assert!(
            d["annotations"].is_null() || d["annotations"] == json!({}),
            "no annotations expected: {d}"
        ),
    }
}

#[tokio::test]
async fn referrers_of_subject_without_referrers_is_an_empty_index() {
    let reg = Reg::start();
    let repo = repo("noref");
    let img = reg.push_image(&repo, "v1").await;
    for digest in [img.digest.clone(), sha256(&unique_bytes("never"))] {
        let (r, list) = referrers(&reg, &repo, &digest, "").await;
        assert!(list.is_empty(), "{}", String::from_utf8_lossy(&r.body));
    }
}

#[tokio::test]
async fn referrers_list_every_manifest_with_that_subject() {
    let reg = Reg::start();
    let repo = repo("refs");
    let img = reg.push_image(&repo, "v1").await;
    let subject = img.descriptor();
    let other = reg.push_image(&repo, "v2").await;

    let ann = json!({"org.example.signer": "alice", "org.opencontainers.image.created": "2024"});
    let (sig, sig_size) = push_artifact(&reg, &repo, SIG, &subject, Some(&ann)).await;
    let (sbom, sbom_size) = push_artifact(&reg, &repo, SBOM, &subject, None).await;
    // Refers to the other image: must not show up.
    let (unrelated, _) = push_artifact(&reg, &repo, SIG, &other.descriptor(), None).await;

    // No artifactType: the config media type stands in.
    let cfg = unique_bytes("custom config");
    let cfg_d = reg.push_blob(&repo, &cfg).await;
    let layer = artifact_layer(&reg, &repo).await;
    let body = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": desc(CUSTOM_CONFIG, &cfg_d, cfg.len()),
        "layers": [layer],
        "subject": subject,
    }))
    .expect("json");
    let r = reg.put_manifest(&repo, "custom", OCI_MANIFEST, &body).await;
    r.expect_status(201);
    assert_eq!(r.h("oci-subject"), img.digest);
    let custom = sha256(&body);

    // An index can be a referrer too.
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "artifactType": BUNDLE,
        "manifests": [other.descriptor()],
        "subject": subject,
        "annotations": {"k": "v"},
    }))
    .expect("json");
    let r = reg.put_manifest(&repo, "bundle", OCI_INDEX, &index).await;
    r.expect_status(201);
    assert_eq!(r.h("oci-subject"), img.digest);
    let bundle = sha256(&index);

    let (r, list) = referrers(&reg, &repo, &img.digest, "").await;
    assert!(r.header("oci-filters-applied").is_none());
    let mut want = vec![sig.clone(), sbom.clone(), custom.clone(), bundle.clone()];
    want.sort();
    let got: Vec<&str> = list
        .iter()
        .map(|d| d["digest"].as_str().expect("digest"))
        .collect();
    assert_eq!(got, want);
    assert!(!got.contains(&unrelated.as_str()));
    expect_desc(find(&list, &sig), OCI_MANIFEST, sig_size, SIG, Some(&ann));
    expect_desc(find(&list, &sbom), OCI_MANIFEST, sbom_size, SBOM, None);
    expect_desc(
        find(&list, &custom),
        OCI_MANIFEST,
        body.len(),
        CUSTOM_CONFIG,
        None,
    );
    expect_desc(
        find(&list, &bundle),
        OCI_INDEX,
        index.len(),
        BUNDLE,
        Some(&json!({"k": "v"})),
    );

    let (_, list) = referrers(&reg, &repo, &other.digest, "").await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["digest"], unrelated.as_str());
}

#[tokio::test]
async fn referrers_filter_by_artifact_type() {
    let reg = Reg::start();
    let repo = repo("reffilter");
    let img = reg.push_image(&repo, "v1").await;
    let subject = img.descriptor();
    let (sig1, _) = push_artifact(&reg, &repo, SIG, &subject, None).await;
    let (sig2, _) = push_artifact(&reg, &repo, SIG, &subject, None).await;
    push_artifact(&reg, &repo, SBOM, &subject, None).await;

    let (r, list) = referrers(&reg, &repo, &img.digest, &format!("?artifactType={SIG}")).await;
    assert_eq!(r.h("oci-filters-applied"), "artifactType");
    let mut want = vec![sig1, sig2];
    want.sort();
    let got: Vec<&str> = list
        .iter()
        .map(|d| d["digest"].as_str().expect("digest"))
        .collect();
    assert_eq!(got, want);
    assert!(list.iter().all(|d| d["artifactType"] == SIG));

    let (r, list) = referrers(
        &reg,
        &repo,
        &img.digest,
        "?artifactType=application/vnd.example.none",
    )
    .await;
    assert_eq!(r.h("oci-filters-applied"), "artifactType");
    assert!(list.is_empty());

    let (_, list) = referrers(&reg, &repo, &img.digest, "").await;
    assert_eq!(list.len(), 3);
}

#[tokio::test]
async fn referrer_may_be_pushed_before_its_subject() {
    let reg = Reg::start();
    let repo = repo("refearly");
    // Prepare the subject's blobs and body, but do not push the manifest yet.
    let config = unique_bytes("cfg");
    let layer = unique_bytes("layer");
    let cd = reg.push_blob(&repo, &config).await;
    let ld = reg.push_blob(&repo, &layer).await;
    let subject_body = image_manifest(
        OCI_MANIFEST,
        &desc(OCI_CONFIG, &cd, config.len()),
        &[desc(OCI_LAYER, &ld, layer.len())],
    );
    let sd = sha256(&subject_body);
    let subject = desc(OCI_MANIFEST, &sd, subject_body.len());
    reg.get(&format!("/v2/{repo}/manifests/{sd}"))
        .await
        .expect_error(404, "MANIFEST_UNKNOWN");

    let (sig, _) = push_artifact(&reg, &repo, SIG, &subject, None).await;
    let (_, list) = referrers(&reg, &repo, &sd, "").await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["digest"], sig.as_str());

    reg.push_manifest(&repo, "v1", OCI_MANIFEST, &subject_body)
        .await;
    let (_, list) = referrers(&reg, &repo, &sd, "").await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["digest"], sig.as_str());
}

#[tokio::test]
async fn deleted_referrer_disappears() {
    let reg = Reg::start();
    let repo = repo("refdel");
    let img = reg.push_image(&repo, "v1").await;
    let (sig, _) = push_artifact(&reg, &repo, SIG, &img.descriptor(), None).await;
    let (sbom, _) = push_artifact(&reg, &repo, SBOM, &img.descriptor(), None).await;
    reg.delete(&format!("/v2/{repo}/manifests/{sig}"))
        .await
        .expect_status(202);
    let (_, list) = referrers(&reg, &repo, &img.digest, "").await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["digest"], sbom.as_str());
}

#[tokio::test]
async fn referrers_are_scoped_to_the_repository() {
    let reg = Reg::start();
    let a = repo("refscope-a");
    let b = repo("refscope-b");
    let img = reg.push_image(&a, "v1").await;
    // Push the identical subject into b as well.
    reg.push_blob(&b, &unique_bytes("unused")).await;
    let r = reg
        .post(&format!(
            "/v2/{b}/blobs/uploads/?mount={}&from={a}",
            img.config_digest
        ))
        .await;
    r.expect_status(201);
    let r = reg
        .post(&format!(
            "/v2/{b}/blobs/uploads/?mount={}&from={a}",
            img.layer_digest
        ))
        .await;
    r.expect_status(201);
    reg.push_manifest(&b, "v1", OCI_MANIFEST, &img.manifest)
        .await;

    push_artifact(&reg, &a, SIG, &img.descriptor(), None).await;
    let (_, in_a) = referrers(&reg, &a, &img.digest, "").await;
    assert_eq!(in_a.len(), 1);
    let (_, in_b) = referrers(&reg, &b, &img.digest, "").await;
    assert!(
        in_b.is_empty(),
        "referrer leaked across repositories: {in_b:?}"
    );
}

#[tokio::test]
async fn referrers_with_malformed_digest_is_digest_invalid() {
    let reg = Reg::start();
    let repo = repo("refbad");
    reg.push_image(&repo, "v1").await;
    for bad in ["sha256:abc", "latest", "sha256:XYZ"] {
        reg.get(&format!("/v2/{repo}/referrers/{bad}"))
            .await
            .expect_error(400, "DIGEST_INVALID");
    }
}

#[tokio::test]
async fn manifest_without_subject_has_no_oci_subject_header() {
    let reg = Reg::start();
    let repo = repo("nosubj");
    let config = unique_bytes("cfg");
    let layer = unique_bytes("layer");
    let cd = reg.push_blob(&repo, &config).await;
    let ld = reg.push_blob(&repo, &layer).await;
    let body = image_manifest(
        OCI_MANIFEST,
        &desc(OCI_CONFIG, &cd, config.len()),
        &[desc(OCI_LAYER, &ld, layer.len())],
    );
    let r = reg.put_manifest(&repo, "v1", OCI_MANIFEST, &body).await;
    r.expect_status(201);
    assert!(r.header("oci-subject").is_none());
}

#[tokio::test]
async fn referrers_filter_matches_config_media_type_fallback() {
    let reg = Reg::start();
    let repo = repo("refcfg");
    let img = reg.push_image(&repo, "v1").await;
    push_artifact(&reg, &repo, SIG, &img.descriptor(), None).await;
    let cfg = unique_bytes("custom config");
    let cfg_d = reg.push_blob(&repo, &cfg).await;
    let layer = artifact_layer(&reg, &repo).await;
    let body = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": desc(CUSTOM_CONFIG, &cfg_d, cfg.len()),
        "layers": [layer],
        "subject": img.descriptor(),
    }))
    .expect("json");
    let d = reg
        .push_manifest(&repo, "custom", OCI_MANIFEST, &body)
        .await;
    let (r, list) = referrers(
        &reg,
        &repo,
        &img.digest,
        // `+` must be percent-encoded in a query string (it would mean a space).
        &format!("?artifactType={}", CUSTOM_CONFIG.replace('+', "%2B")),
    )
    .await;
    assert_eq!(r.h("oci-filters-applied"), "artifactType");
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["digest"], d.as_str());
    assert_eq!(list[0]["artifactType"], CUSTOM_CONFIG);
}
