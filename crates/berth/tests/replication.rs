//! Geo-replication across two storage locations (Quay's FEATURE_STORAGE_REPLICATION): a push
//! through an instance preferring location 1 lands there, a replication job copies it to
//! location 2, an instance preferring location 2 serves it from there, and a server killed while
//! jobs are queued or running loses none of them.

mod common;

use common::Berth;
use sha2::{Digest as _, Sha256};
use std::path::Path;
use std::time::{Duration, Instant};

fn sha(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

fn blob_file(root: &Path, data: &[u8]) -> std::path::PathBuf {
    let hex = hex::encode(Sha256::digest(data));
    root.join("blobs/sha256").join(&hex[..2]).join(hex)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .default_headers(common::admin_headers())
        .no_proxy()
        .build()
        .expect("client")
}

async fn push(c: &reqwest::Client, base: &str, repo: &str, data: &[u8]) {
    let r = c
        .post(format!(
            "{base}/v2/{repo}/blobs/uploads/?digest={}",
            sha(data)
        ))
        .body(data.to_vec())
        .send()
        .await
        .expect("push");
    assert_eq!(r.status(), 201);
}

async fn placements(c: &reqwest::Client, base: &str, data: &[u8]) -> serde_json::Value {
    c.get(format!(
        "{base}/api/v1/superuser/blobs/{}/placements",
        sha(data)
    ))
    .send()
    .await
    .expect("placements")
    .json()
    .await
    .expect("json")
}

/// Waits (bounded) until every blob is recorded in both locations.
async fn wait_replicated(c: &reqwest::Client, base: &str, blobs: &[Vec<u8>]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    for b in blobs {
        loop {
            let p = placements(c, base, b).await;
            let n = p["locations"].as_array().map_or(0, Vec::len);
            if n == 2 {
                assert_eq!(p["missing"], serde_json::json!([]));
                break;
            }
            assert!(
                Instant::now() < deadline,
                "blob {} not replicated in time: {p}",
                sha(b)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn config(loc1: &Path, loc2: &Path) -> String {
    format!(
        "{{loc1: [LocalStorage, {{storage_path: '{}'}}], loc2: [LocalStorage, {{storage_path: '{}'}}]}}",
        loc1.display(),
        loc2.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blobs_replicate_to_every_location_and_are_served_from_the_preferred_one() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (loc1, loc2) = (tmp.path().join("loc1"), tmp.path().join("loc2"));
    let storage = config(&loc1, &loc2);
    let envs = [
        ("BERTH_DISTRIBUTED_STORAGE_CONFIG", storage.as_str()),
        ("BERTH_DISTRIBUTED_STORAGE_PREFERENCE", "[loc1]"),
        ("BERTH_FEATURE_STORAGE_REPLICATION", "true"),
        ("BERTH_JOB_LEASE_SECONDS", "2"),
    ];
    let a = Berth::start_with_env(&envs);
    let c = client();
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
    push(&c, &a.base, "geo/app", &data).await;
    assert!(
        blob_file(&loc1, &data).exists(),
        "pushed bytes land in the preferred location"
    );
    wait_replicated(&c, &a.base, std::slice::from_ref(&data)).await;
    assert_eq!(
        std::fs::read(blob_file(&loc2, &data)).expect("copy in loc2"),
        data
    );

    // An instance preferring loc2 serves the blob from there, even once loc1 has lost it.
    let b = a.start_sibling_with(
        &[],
        &[("BERTH_DISTRIBUTED_STORAGE_PREFERENCE", "[loc2, loc1]")],
    );
    std::fs::remove_file(blob_file(&loc1, &data)).expect("remove from loc1");
    let r = c
        .get(format!("{}/v2/geo/app/blobs/{}", b.base, sha(&data)))
        .send()
        .await
        .expect("get via b");
    assert_eq!(r.status(), 200);
    assert!(r.bytes().await.expect("body").as_ref() == data.as_slice());

    // A blob placed only in loc2 (pushed through b) is read by a from loc2: the preferred
    // location does not hold it, the next one in order does.
    let only2: Vec<u8> = b"pushed through the loc2 instance".to_vec();
    let c2 = b.start_sibling_with(
        &["--no-workers"],
        &[("BERTH_DISTRIBUTED_STORAGE_PREFERENCE", "[loc2, loc1]")],
    );
    drop(b);
    push(&c, &c2.base, "geo/app", &only2).await;
    let p = placements(&c, &a.base, &only2).await;
    let holders: Vec<&str> = p["locations"]
        .as_array()
        .map(|l| l.iter().filter_map(|x| x["location"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        holders.contains(&"loc2"),
        "pushed through a loc2 instance, placed in loc2: {p}"
    );
    let r = c
        .get(format!("{}/v2/geo/app/blobs/{}", a.base, sha(&only2)))
        .send()
        .await
        .expect("get via a");
    // Whether or not replication has reached loc1 yet, a serves it: from loc1 if it is there,
    // else from loc2, the next location in its order.
    assert_eq!(r.status(), 200, "a reads a blob placed only in loc2 ({p})");
    assert_eq!(r.bytes().await.expect("body").as_ref(), only2.as_slice());

    let metrics = c
        .get(format!("{}/metrics", a.base))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("berth_blob_placements{location=\"loc2\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("berth_jobs{"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_loses_no_replication_job() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (loc1, loc2) = (tmp.path().join("loc1"), tmp.path().join("loc2"));
    let storage = config(&loc1, &loc2);
    let envs = [
        ("BERTH_DISTRIBUTED_STORAGE_CONFIG", storage.as_str()),
        ("BERTH_DISTRIBUTED_STORAGE_PREFERENCE", "[loc1]"),
        ("BERTH_FEATURE_STORAGE_REPLICATION", "true"),
        ("BERTH_JOB_LEASE_SECONDS", "2"),
    ];
    // Workers on: kill while replication jobs are queued and running.
    let mut a = Berth::start_with_env(&envs);
    let c = client();
    let blobs: Vec<Vec<u8>> = (0..24u32)
        .map(|k| {
            (0..(1 << 20))
                .map(|i: u32| (i.wrapping_mul(k + 3) >> 3) as u8)
                .collect()
        })
        .collect();
    for b in &blobs {
        push(&c, &a.base, "geo/killed", b).await;
    }
    a.kill9();
    let not_yet = blobs
        .iter()
        .filter(|b| !blob_file(&loc2, b).exists())
        .count();
    eprintln!(
        "{not_yet} of {} blobs not yet in loc2 when the server was killed",
        blobs.len()
    );
    a.restart();
    wait_replicated(&c, &a.base, &blobs).await;
    for b in &blobs {
        assert!(
            std::fs::read(blob_file(&loc2, b)).expect("copy") == *b,
            "replica is the blob"
        );
    }

    // Workers off: jobs wait in the queue across a kill, then a `berth worker` process runs them.
    let mut q = Berth::start_with(&["--no-workers"], &envs);
    let late: Vec<Vec<u8>> = (0..5u8).map(|k| vec![k; 4096]).collect();
    for b in &late {
        push(&c, &q.base, "geo/queued", b).await;
    }
    let metrics = c
        .get(format!("{}/metrics", q.base))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("berth_jobs{kind=\"replicate_blob\",state=\"queued\"} 5"),
        "{metrics}"
    );
    q.kill9();
    assert!(late.iter().all(|b| !blob_file(&loc2, b).exists()));
    let mut worker = std::process::Command::new(common::berth_bin())
        .arg("worker")
        .arg("--data-dir")
        .arg(&q.data_dir)
        .envs(q.envs().iter().cloned())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("berth worker");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !late.iter().all(|b| blob_file(&loc2, b).exists()) {
        assert!(
            Instant::now() < deadline,
            "berth worker did not replicate the queued blobs"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = worker.kill();
    let _ = worker.wait();
}
