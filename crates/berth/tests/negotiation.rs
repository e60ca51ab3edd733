//! Accept negotiation for clients that cannot read an index: asked by tag for an index with an
//! `Accept` that lists only image manifest types, Berth serves the linux/amd64 image (as
//! Distribution does); clients that accept indexes, or ask by digest, get the index itself.

mod common;

use common::Berth;
use sha2::{Digest as _, Sha256};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

fn sha(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

#[tokio::test]
async fn index_falls_back_to_the_linux_amd64_image_for_clients_that_cannot_read_it() {
    let server = Berth::start();
    let c = reqwest::Client::builder()
        .default_headers(common::admin_headers())
        .no_proxy()
        .build()
        .expect("client");
    let base = &server.base;
    let repo = "neg/app";
    let mut children = Vec::new();
    for arch in ["arm64", "amd64"] {
        let config = format!(r#"{{"architecture":"{arch}","os":"linux"}}"#).into_bytes();
        let layer = format!("layer for {arch}").into_bytes();
        for blob in [&config, &layer] {
            let r = c
                .post(format!(
                    "{base}/v2/{repo}/blobs/uploads/?digest={}",
                    sha(blob)
                ))
                .body(blob.clone())
                .send()
                .await
                .expect("push blob");
            assert_eq!(r.status(), 201);
        }
        let m = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{}","size":{}}}]}}"#,
            sha(&config),
            config.len(),
            sha(&layer),
            layer.len()
        );
        let r = c
            .put(format!("{base}/v2/{repo}/manifests/{}", sha(m.as_bytes())))
            .header("Content-Type", OCI_MANIFEST)
            .body(m.clone())
            .send()
            .await
            .expect("push manifest");
        assert_eq!(r.status(), 201);
        children.push(format!(
            r#"{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":{},"platform":{{"architecture":"{arch}","os":"linux"}}}}"#,
            sha(m.as_bytes()),
            m.len()
        ));
    }
    let amd64 = children[1].clone();
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{}]}}"#,
        children.join(",")
    );
    let r = c
        .put(format!("{base}/v2/{repo}/manifests/multi"))
        .header("Content-Type", OCI_INDEX)
        .body(index.clone())
        .send()
        .await
        .expect("push index");
    assert_eq!(r.status(), 201);
    let amd64_digest = amd64
        .split("\"digest\":\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("child digest")
        .to_string();

    let get = |accept: &'static str, reference: String| {
        let c = c.clone();
        let url = format!("{base}/v2/{repo}/manifests/{reference}");
        async move {
            let r = c
                .get(url)
                .header("Accept", accept)
                .send()
                .await
                .expect("get");
            assert_eq!(r.status(), 200);
            let ct = r.headers()["content-type"]
                .to_str()
                .expect("ct")
                .to_string();
            let digest = r.headers()["docker-content-digest"]
                .to_str()
                .expect("digest")
                .to_string();
            (ct, digest)
        }
    };
    // An index-unaware client gets the linux/amd64 image.
    let (ct, digest) = get(OCI_MANIFEST, "multi".into()).await;
    assert_eq!(
        (ct.as_str(), digest.as_str()),
        (OCI_MANIFEST, amd64_digest.as_str())
    );
    // Index-aware clients, wildcard clients and requests by digest get the index.
    let (ct, digest) = get(
        "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json",
        "multi".into(),
    )
    .await;
    assert_eq!((ct.as_str(), digest), (OCI_INDEX, sha(index.as_bytes())));
    let (ct, _) = get("*/*", "multi".into()).await;
    assert_eq!(ct, OCI_INDEX);
    let (ct, _) = get(OCI_MANIFEST, sha(index.as_bytes())).await;
    assert_eq!(ct, OCI_INDEX);
}
