//! Concurrent writers and a crash restart: the protocol answers must stay the same.

use crate::util::*;
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_uploads_of_the_same_blob_all_succeed() {
    let reg = Arc::new(Reg::start());
    let repo = repo("conc-blob");
    let data = Arc::new(unique_bytes("same content for everyone").repeat(1000));
    let d = sha256(&data);
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (reg, repo, data, d) = (reg.clone(), repo.clone(), data.clone(), d.clone());
        tasks.push(tokio::spawn(async move {
            if i % 2 == 0 {
                let r = reg.push_blob_monolithic(&repo, &d, &data).await;
                r.expect_status(201);
                assert_eq!(r.h("docker-content-digest"), d);
            } else {
                let loc = reg.start_upload(&repo).await;
                let half = data.len() / 2;
                let r = reg
                    .patch_chunk(&loc, &data[..half], Some(&format!("0-{}", half - 1)))
                    .await;
                r.expect_status(202);
                let loc = r.h("location").to_string();
                let r = reg.finish_upload(&loc, &d, &data[half..]).await;
                r.expect_status(201);
                assert_eq!(r.h("docker-content-digest"), d);
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let r = reg.get(&format!("/v2/{repo}/blobs/{d}")).await;
    r.expect_status(200);
    assert!(r.body == *data, "blob content after concurrent uploads");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_pushes_to_distinct_repositories() {
    let reg = Arc::new(Reg::start());
    let names: Vec<String> = (0..8).map(|i| format!("conc/repo{i}")).collect();
    let mut tasks = Vec::new();
    for name in names.clone() {
        let reg = reg.clone();
        tasks.push(tokio::spawn(async move {
            let img = reg.push_image(&name, "v1").await;
            reg.expect_manifest(&name, "v1", OCI_MANIFEST, &img.manifest, &img.digest)
                .await;
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let r = reg.get("/v2/_catalog").await;
    r.expect_status(200);
    assert_eq!(strings(&r.json()["repositories"]), names);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_manifest_puts_to_one_tag_leave_one_winner() {
    let reg = Arc::new(Reg::start());
    let repo = repo("conc-tag");
    // Prepare distinct manifests first, then race them onto one tag.
    let mut bodies = Vec::new();
    for _ in 0..8 {
        let img = reg.push_image(&repo, "prep").await;
        bodies.push(img.manifest);
    }
    let mut tasks = Vec::new();
    for body in bodies.clone() {
        let (reg, repo) = (reg.clone(), repo.clone());
        tasks.push(tokio::spawn(async move {
            reg.push_manifest(&repo, "race", OCI_MANIFEST, &body).await
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let r = reg.get(&format!("/v2/{repo}/manifests/race")).await;
    r.expect_status(200);
    assert!(
        bodies.contains(&r.body),
        "the tag must point at one of the raced manifests"
    );
    assert_eq!(r.h("docker-content-digest"), sha256(&r.body));
    assert_eq!(reg.tags(&repo).await, vec!["prep", "race"]);
}

#[tokio::test]
async fn pushed_content_survives_a_crash_restart() {
    let mut reg = Reg::start();
    let repo = repo("restart");
    let img = reg.push_image(&repo, "v1").await;
    let layer = reg
        .get(&format!("/v2/{repo}/blobs/{}", img.layer_digest))
        .await;
    layer.expect_status(200);

    reg.restart();

    reg.expect_manifest(&repo, "v1", OCI_MANIFEST, &img.manifest, &img.digest)
        .await;
    let r = reg
        .get(&format!("/v2/{repo}/blobs/{}", img.layer_digest))
        .await;
    r.expect_status(200);
    assert_eq!(r.body, layer.body);
    assert_eq!(reg.tags(&repo).await, vec!["v1"]);
    let r = reg.get("/v2/_catalog").await;
    assert_eq!(strings(&r.json()["repositories"]), vec![repo.clone()]);
}
