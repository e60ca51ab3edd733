//! Deletes followed by re-pushes, mounts and references: deleted content must be gone for every
//! purpose, and pushing it again must bring it back exactly once.

use crate::util::*;
use serde_json::json;

#[tokio::test]
async fn manifest_deleted_by_digest_can_be_pushed_again() {
    let reg = Reg::start();
    let repo = repo("repush");
    let img = reg.push_image(&repo, "v1").await;
    reg.delete(&format!("/v2/{repo}/manifests/{}", img.digest))
        .await
        .expect_status(202);
    reg.get(&format!("/v2/{repo}/manifests/v1"))
        .await
        .expect_error(404, "MANIFEST_UNKNOWN");

    let d = reg
        .push_manifest(&repo, "v2", OCI_MANIFEST, &img.manifest)
        .await;
    assert_eq!(d, img.digest);
    reg.expect_manifest(&repo, "v2", OCI_MANIFEST, &img.manifest, &d)
        .await;
    reg.expect_manifest(&repo, &d, OCI_MANIFEST, &img.manifest, &d)
        .await;
    // The old tag is not resurrected by the re-push.
    reg.get(&format!("/v2/{repo}/manifests/v1"))
        .await
        .expect_error(404, "MANIFEST_UNKNOWN");
    assert_eq!(reg.tags(&repo).await, vec!["v2"]);
}

#[tokio::test]
async fn deleted_tag_can_be_recreated() {
    let reg = Reg::start();
    let repo = repo("retag");
    let img = reg.push_image(&repo, "v1").await;
    reg.delete(&format!("/v2/{repo}/manifests/v1"))
        .await
        .expect_status(202);
    reg.push_manifest(&repo, "v1", OCI_MANIFEST, &img.manifest)
        .await;
    reg.expect_manifest(&repo, "v1", OCI_MANIFEST, &img.manifest, &img.digest)
        .await;
    assert_eq!(reg.tags(&repo).await, vec!["v1"]);
}

#[tokio::test]
async fn re_pushed_referrer_is_listed_once() {
    let reg = Reg::start();
    let repo = repo("rerefer");
    let img = reg.push_image(&repo, "v1").await;
    reg.push_blob(&repo, b"{}").await;
    let data = unique_bytes("sig");
    let ld = reg.push_blob(&repo, &data).await;
    let body = artifact_manifest(
        "application/vnd.example.sig",
        &desc("application/octet-stream", &ld, data.len()),
        Some(&img.descriptor()),
        None,
    );
    let d = reg.push_manifest(&repo, "sig", OCI_MANIFEST, &body).await;
    reg.push_manifest(&repo, "sig-again", OCI_MANIFEST, &body)
        .await;
    let r = reg
        .get(&format!("/v2/{repo}/referrers/{}", img.digest))
        .await;
    r.expect_status(200);
    let list = r.json()["manifests"].as_array().expect("array").clone();
    assert_eq!(list.len(), 1, "one manifest, one entry: {list:?}");

    reg.delete(&format!("/v2/{repo}/manifests/{d}"))
        .await
        .expect_status(202);
    let r = reg
        .get(&format!("/v2/{repo}/referrers/{}", img.digest))
        .await;
    assert_eq!(r.json()["manifests"], json!([]));

    reg.push_manifest(&repo, &d, OCI_MANIFEST, &body).await;
    let r = reg
        .get(&format!("/v2/{repo}/referrers/{}", img.digest))
        .await;
    let list = r.json()["manifests"].as_array().expect("array").clone();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["digest"], d.as_str());
}

#[tokio::test]
async fn deleted_blob_cannot_be_mounted_from() {
    let reg = Reg::start();
    let a = repo("delmnt-a");
    let b = repo("delmnt-b");
    let data = unique_bytes("gone");
    let d = reg.push_blob(&a, &data).await;
    reg.push_blob(&a, &unique_bytes("keep a alive")).await;
    reg.delete(&format!("/v2/{a}/blobs/{d}"))
        .await
        .expect_status(202);
    let r = reg
        .post(&format!("/v2/{b}/blobs/uploads/?mount={d}&from={a}"))
        .await;
    r.expect_status(202);
    reg.head(&format!("/v2/{b}/blobs/{d}"))
        .await
        .expect_status(404);
}

#[tokio::test]
async fn manifest_referencing_a_deleted_blob_is_manifest_blob_unknown() {
    let reg = Reg::start();
    let repo = repo("delblobref");
    let config = unique_bytes("cfg");
    let layer = unique_bytes("layer");
    let cd = reg.push_blob(&repo, &config).await;
    let ld = reg.push_blob(&repo, &layer).await;
    reg.delete(&format!("/v2/{repo}/blobs/{ld}"))
        .await
        .expect_status(202);
    let body = image_manifest(
        OCI_MANIFEST,
        &desc(OCI_CONFIG, &cd, config.len()),
        &[desc(OCI_LAYER, &ld, layer.len())],
    );
    reg.put_manifest(&repo, "v1", OCI_MANIFEST, &body)
        .await
        .expect_error(400, "MANIFEST_BLOB_UNKNOWN");
    // Pushing the blob again makes the manifest acceptable.
    reg.push_blob(&repo, &layer).await;
    reg.push_manifest(&repo, "v1", OCI_MANIFEST, &body).await;
}

#[tokio::test]
async fn index_referencing_a_deleted_manifest_is_manifest_blob_unknown() {
    let reg = Reg::start();
    let repo = repo("delchild");
    let keep = reg.push_image(&repo, "keep").await;
    let gone = reg.push_image(&repo, "gone").await;
    reg.delete(&format!("/v2/{repo}/manifests/{}", gone.digest))
        .await
        .expect_status(202);
    let index = index_manifest(OCI_INDEX, &[keep.descriptor(), gone.descriptor()]);
    reg.put_manifest(&repo, "multi", OCI_INDEX, &index)
        .await
        .expect_error(400, "MANIFEST_BLOB_UNKNOWN");
    // An index over manifests that are present only by digest (untagged) is fine.
    reg.delete(&format!("/v2/{repo}/manifests/keep"))
        .await
        .expect_status(202);
    let index = index_manifest(OCI_INDEX, &[keep.descriptor()]);
    reg.push_manifest(&repo, "multi", OCI_INDEX, &index).await;
}

#[tokio::test]
async fn catalog_pagination_follows_links_over_nested_names() {
    let reg = Reg::start();
    let names = vec![
        "ns/a",
        "ns/a/b",
        "ns/a-b",
        "ns/a.b",
        "ns/a_b",
        "ns",
        "ns0",
        "other/x/y/z",
    ];
    for n in &names {
        reg.push_image(n, "v1").await;
    }
    let mut names: Vec<String> = names.iter().map(|n| full(n)).collect();
    names.sort();
    let mut seen = Vec::new();
    let mut next = Some("/v2/_catalog?n=3".to_string());
    let mut pages = 0;
    while let Some(url) = next {
        let r = reg.get(&url).await;
        r.expect_status(200);
        let page = strings(&r.json()["repositories"]);
        assert!(page.len() <= 3, "page larger than n: {page:?}");
        seen.extend(page);
        next = r.header("link").map(|v| {
            assert!(v.ends_with("; rel=\"next\""), "{v}");
            v[v.find('<').expect("<") + 1..v.find('>').expect(">")].to_string()
        });
        pages += 1;
        assert!(pages <= 10, "pagination does not end");
    }
    assert_eq!(seen, names);
    assert_eq!(pages, 3);
}
