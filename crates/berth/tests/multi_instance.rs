//! Several instances behave as one registry: two `berth` processes on one database and one blob
//! store (SQLite file and directory by default; PostgreSQL and S3 in the test script's other
//! passes). An upload begun on one is continued and finished on the other, tags moved on one are
//! seen on the other at once, and concurrent pushes of the same layers through both succeed.

mod common;

use common::Berth;
use sha2::{Digest as _, Sha256};

fn sha(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .default_headers(common::admin_headers())
        .no_proxy()
        .build()
        .expect("client")
}

fn manifest(config: &[u8], layers: &[&[u8]]) -> Vec<u8> {
    let layers: Vec<String> = layers
        .iter()
        .map(|l| {
            format!(
                r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{}","size":{}}}"#,
                sha(l),
                l.len()
            )
        })
        .collect();
    format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},"layers":[{}]}}"#,
        sha(config),
        config.len(),
        layers.join(",")
    )
    .into_bytes()
}

async fn push_blob(c: &reqwest::Client, base: &str, repo: &str, data: &[u8]) {
    let r = c
        .post(format!(
            "{base}/v2/{repo}/blobs/uploads/?digest={}",
            sha(data)
        ))
        .body(data.to_vec())
        .send()
        .await
        .expect("push");
    assert_eq!(r.status(), 201, "monolithic push through {base}");
}

async fn put_manifest(c: &reqwest::Client, base: &str, repo: &str, tag: &str, body: &[u8]) -> u16 {
    c.put(format!("{base}/v2/{repo}/manifests/{tag}"))
        .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        .body(body.to_vec())
        .send()
        .await
        .expect("put manifest")
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_act_as_one_registry() {
    let a = Berth::start();
    let b = a.start_sibling();
    let c = client();
    let repo = "multi/app";

    // An upload begun on A, continued on B, finished on A.
    let layer: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let r = c
        .post(format!("{}/v2/{repo}/blobs/uploads/", a.base))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 202);
    let loc = r.headers()["location"]
        .to_str()
        .expect("location")
        .to_string();
    let r = c
        .patch(format!("{}{loc}", a.base))
        .header("Content-Range", "0-99999")
        .header("Content-Type", "application/octet-stream")
        .body(layer[..100_000].to_vec())
        .send()
        .await
        .expect("patch on A");
    assert_eq!(r.status(), 202);
    let r = c
        .get(format!("{}{loc}", b.base))
        .send()
        .await
        .expect("status on B");
    assert_eq!(r.status(), 204, "B sees the session begun on A");
    assert_eq!(r.headers()["range"], "0-99999");
    let r = c
        .patch(format!("{}{loc}", b.base))
        .header("Content-Range", "100000-199999")
        .header("Content-Type", "application/octet-stream")
        .body(layer[100_000..200_000].to_vec())
        .send()
        .await
        .expect("patch on B");
    assert_eq!(r.status(), 202, "B continues the session");
    let r = c
        .put(format!("{}{loc}?digest={}", a.base, sha(&layer)))
        .body(layer[200_000..].to_vec())
        .send()
        .await
        .expect("put on A");
    assert_eq!(r.status(), 201, "A finishes it");
    let got = c
        .get(format!("{}/v2/{repo}/blobs/{}", b.base, sha(&layer)))
        .send()
        .await
        .expect("get on B")
        .bytes()
        .await
        .expect("body");
    assert!(
        got.as_ref() == layer.as_slice(),
        "the blob reads back whole through B"
    );

    // A tag moved on A is seen on B at once (no cache in between).
    let config1 = br#"{"architecture":"amd64","os":"linux","v":1}"#.to_vec();
    let config2 = br#"{"architecture":"amd64","os":"linux","v":2}"#.to_vec();
    push_blob(&c, &a.base, repo, &config1).await;
    push_blob(&c, &b.base, repo, &config2).await;
    let m1 = manifest(&config1, &[&layer]);
    let m2 = manifest(&config2, &[&layer]);
    for (via, m) in [(&a, &m1), (&b, &m2), (&a, &m1), (&b, &m2)] {
        assert_eq!(put_manifest(&c, &via.base, repo, "latest", m).await, 201);
        for seen_by in [&a, &b] {
            let r = c
                .get(format!("{}/v2/{repo}/manifests/latest", seen_by.base))
                .header("Accept", "application/vnd.oci.image.manifest.v1+json")
                .send()
                .await
                .expect("get");
            assert_eq!(
                r.headers()["docker-content-digest"].to_str().ok(),
                Some(sha(m).as_str())
            );
        }
    }

    // Concurrent pushes of the same layers through both instances.
    let shared: Vec<Vec<u8>> = (0..3u8).map(|k| vec![k; 50_000 + k as usize]).collect();
    let mut tasks = Vec::new();
    for i in 0..16 {
        let base = if i % 2 == 0 {
            a.base.clone()
        } else {
            b.base.clone()
        };
        let shared = shared.clone();
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            let config = format!(r#"{{"architecture":"amd64","os":"linux","i":{i}}}"#).into_bytes();
            for l in &shared {
                push_blob(&c, &base, "multi/shared", l).await;
            }
            push_blob(&c, &base, "multi/shared", &config).await;
            let refs: Vec<&[u8]> = shared.iter().map(Vec::as_slice).collect();
            let m = manifest(&config, &refs);
            assert_eq!(
                put_manifest(&c, &base, "multi/shared", &format!("t{i}"), &m).await,
                201
            );
            assert_eq!(
                put_manifest(&c, &base, "multi/shared", "race", &m).await,
                201
            );
            sha(&m)
        }));
    }
    let mut digests = Vec::new();
    for t in tasks {
        digests.push(t.await.expect("push task"));
    }
    let tags: serde_json::Value = c
        .get(format!("{}/v2/multi/shared/tags/list", b.base))
        .send()
        .await
        .expect("tags")
        .json()
        .await
        .expect("json");
    assert_eq!(tags["tags"].as_array().map(Vec::len), Some(17), "{tags}");
    let race = c
        .get(format!("{}/v2/multi/shared/manifests/race", a.base))
        .send()
        .await
        .expect("get race");
    let winner = race.headers()["docker-content-digest"]
        .to_str()
        .expect("digest")
        .to_string();
    assert!(
        digests.contains(&winner),
        "the raced tag points at one of the pushed manifests"
    );
}
