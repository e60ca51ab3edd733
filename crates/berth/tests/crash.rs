//! Crash safety: a real `berth` process is killed with SIGKILL, many times, in the middle of
//! monolithic uploads, chunked uploads and manifest PUTs. After every restart:
//! * every blob and manifest whose push was answered 201 reads back with the right digest,
//! * anything else is either absent or complete (never a partial blob or manifest),
//! * every blob file in storage hashes to its name (commits are atomic),
//! * an interrupted upload session either resumes from its reported offset or is unknown.
//!
//! At the end, one garbage-collection pass with no grace period leaves storage holding exactly
//! the blobs live tags reference: nothing a killed push wrote is leaked.

mod common;

use common::Berth;
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const ROUNDS: usize = 12;
const WORKERS: usize = 4;

fn sha(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

/// Deterministic pseudo-random bytes (xorshift), so no blob repeats across rounds.
fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

#[derive(Default)]
struct Ledger {
    /// (repo, digest) -> content, for blobs answered 201.
    acked_blobs: HashMap<(String, String), Vec<u8>>,
    /// (repo, tag) -> manifest bytes, for manifests answered 201.
    acked_manifests: HashMap<(String, String), Vec<u8>>,
    /// Everything attempted: (repo, digest) -> content.
    attempted_blobs: HashMap<(String, String), Vec<u8>>,
    attempted_manifests: HashMap<(String, String), Vec<u8>>,
    /// Chunked sessions in flight: (repo, location, content).
    sessions: Vec<(String, String, Vec<u8>)>,
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .default_headers(common::admin_headers())
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

fn abs(base: &str, loc: &str) -> String {
    if loc.starts_with("http") {
        loc.to_string()
    } else {
        format!("{base}{loc}")
    }
}

/// One worker's stream of pushes until the server dies under it.
async fn worker(base: String, round: usize, w: usize, ledger: Arc<Mutex<Ledger>>) {
    let c = client();
    let repo = format!("crash/r{w}");
    for i in 0..1000u64 {
        let seed = (round as u64) << 32 | (w as u64) << 20 | i;
        let layer = bytes(seed, 64 * 1024 + (seed as usize % 7) * 300_000);
        let config =
            format!(r#"{{"architecture":"amd64","os":"linux","seed":{seed}}}"#).into_bytes();
        let (ld, cd) = (sha(&layer), sha(&config));
        {
            let mut l = ledger.lock().expect("ledger");
            l.attempted_blobs
                .insert((repo.clone(), ld.clone()), layer.clone());
            l.attempted_blobs
                .insert((repo.clone(), cd.clone()), config.clone());
        }
        // Layer: chunked upload in three PATCHes; config: monolithic.
        let Ok(r) = c
            .post(format!("{base}/v2/{repo}/blobs/uploads/"))
            .send()
            .await
        else {
            return;
        };
        let Some(loc) = r
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(|s| abs(&base, s))
        else {
            return;
        };
        ledger
            .lock()
            .expect("ledger")
            .sessions
            .push((repo.clone(), loc.clone(), layer.clone()));
        let third = layer.len() / 3;
        let mut loc = loc;
        for (start, end) in [(0, third), (third, 2 * third)] {
            let Ok(r) = c
                .patch(&loc)
                .header("Content-Type", "application/octet-stream")
                .header("Content-Range", format!("{}-{}", start, end - 1))
                .body(layer[start..end].to_vec())
                .send()
                .await
            else {
                return;
            };
            if r.status() != 202 {
                return;
            }
            if let Some(l) = r.headers().get("location").and_then(|v| v.to_str().ok()) {
                loc = abs(&base, l);
            }
        }
        let sep = if loc.contains('?') { '&' } else { '?' };
        let Ok(r) = c
            .put(format!("{loc}{sep}digest={ld}"))
            .body(layer[2 * third..].to_vec())
            .send()
            .await
        else {
            return;
        };
        if r.status() != 201 {
            return;
        }
        ledger
            .lock()
            .expect("ledger")
            .acked_blobs
            .insert((repo.clone(), ld.clone()), layer.clone());
        let Ok(r) = c
            .post(format!("{base}/v2/{repo}/blobs/uploads/?digest={cd}"))
            .body(config.clone())
            .send()
            .await
        else {
            return;
        };
        if r.status() != 201 {
            return;
        }
        ledger
            .lock()
            .expect("ledger")
            .acked_blobs
            .insert((repo.clone(), cd.clone()), config.clone());
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{cd}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{ld}","size":{}}}]}}"#,
            config.len(),
            layer.len()
        )
        .into_bytes();
        let tag = format!("t{round}-{i}");
        ledger
            .lock()
            .expect("ledger")
            .attempted_manifests
            .insert((repo.clone(), tag.clone()), manifest.clone());
        let Ok(r) = c
            .put(format!("{base}/v2/{repo}/manifests/{tag}"))
            .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
            .body(manifest.clone())
            .send()
            .await
        else {
            return;
        };
        if r.status() != 201 {
            return;
        }
        ledger
            .lock()
            .expect("ledger")
            .acked_manifests
            .insert((repo.clone(), tag), manifest);
    }
}

async fn get(c: &reqwest::Client, url: &str) -> (u16, Vec<u8>) {
    let r = c
        .get(url)
        .send()
        .await
        .expect("server answers after restart");
    let status = r.status().as_u16();
    (status, r.bytes().await.expect("body").to_vec())
}

/// Every committed blob file must hash to its own name.
fn check_storage_files(dir: &std::path::Path) {
    let root = dir.join("storage/blobs/sha256");
    let Ok(prefixes) = std::fs::read_dir(&root) else {
        return;
    };
    for p in prefixes.flatten() {
        for f in std::fs::read_dir(p.path())
            .expect("read prefix dir")
            .flatten()
        {
            let content = std::fs::read(f.path()).expect("read blob file");
            let name = f.file_name().to_string_lossy().to_string();
            assert_eq!(
                hex::encode(Sha256::digest(&content)),
                name,
                "partial or corrupt blob file {name}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_during_pushes_loses_nothing_acknowledged() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("data");
    let mut server = Berth::start_in(&dir, &[], &[]);
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let c = client();
    for round in 0..ROUNDS {
        let tasks: Vec<_> = (0..WORKERS)
            .map(|w| tokio::spawn(worker(server.base.clone(), round, w, ledger.clone())))
            .collect();
        // Let the load make progress (slow backends need longer), then kill at a different
        // point of the push stream each round.
        let before = ledger.lock().expect("ledger").acked_blobs.len();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while ledger.lock().expect("ledger").acked_blobs.len() <= before
            && std::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis((round as u64 * 37) % 300)).await;
        server.kill9();
        for t in tasks {
            let _ = t.await;
        }
        server.restart();
        if common::local_blob_storage() {
            check_storage_files(&dir);
        }

        // Snapshot the ledger: the workers are done, and no lock may be held across awaits.
        let l = {
            let g = ledger.lock().expect("ledger");
            Ledger {
                acked_blobs: g.acked_blobs.clone(),
                acked_manifests: g.acked_manifests.clone(),
                attempted_blobs: g.attempted_blobs.clone(),
                attempted_manifests: g.attempted_manifests.clone(),
                sessions: Vec::new(),
            }
        };
        for ((repo, digest), content) in &l.acked_blobs {
            let (status, body) =
                get(&c, &format!("{}/v2/{repo}/blobs/{digest}", server.base)).await;
            assert_eq!(
                status, 200,
                "acknowledged blob {digest} lost after crash in round {round}"
            );
            assert_eq!(&body, content, "acknowledged blob {digest} changed");
        }
        for ((repo, digest), content) in &l.attempted_blobs {
            let (status, body) =
                get(&c, &format!("{}/v2/{repo}/blobs/{digest}", server.base)).await;
            assert!(
                status == 200 || status == 404,
                "blob {digest}: unexpected {status}"
            );
            if status == 200 {
                assert_eq!(&body, content, "a visible blob must be complete: {digest}");
            }
        }
        for ((repo, tag), content) in &l.acked_manifests {
            let (status, body) =
                get(&c, &format!("{}/v2/{repo}/manifests/{tag}", server.base)).await;
            assert_eq!(
                status, 200,
                "acknowledged manifest {repo}:{tag} lost in round {round}"
            );
            assert_eq!(&body, content);
            let (status, _) = get(
                &c,
                &format!("{}/v2/{repo}/manifests/{}", server.base, sha(content)),
            )
            .await;
            assert_eq!(status, 200);
        }
        for ((repo, tag), content) in &l.attempted_manifests {
            let (status, body) =
                get(&c, &format!("{}/v2/{repo}/manifests/{tag}", server.base)).await;
            assert!(
                status == 200 || status == 404,
                "{repo}:{tag}: unexpected {status}"
            );
            if status == 200 {
                assert_eq!(&body, content, "a visible manifest must be complete");
            }
        }
    }

    // Interrupted sessions: each either resumes from the offset it reports, or is unknown.
    let sessions = std::mem::take(&mut ledger.lock().expect("ledger").sessions);
    let (mut resumed, mut unknown) = (0, 0);
    for (repo, loc, content) in sessions.iter().rev().take(24) {
        let r = c.get(loc).send().await.expect("status");
        match r.status().as_u16() {
            204 => {
                let range = r
                    .headers()
                    .get("range")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("0-0")
                    .to_string();
                let end: usize = range
                    .split('-')
                    .nth(1)
                    .and_then(|e| e.parse().ok())
                    .unwrap_or(0);
                let offset = if range == "0-0" { 0 } else { end + 1 };
                assert!(
                    offset <= content.len(),
                    "offset {offset} beyond the content"
                );
                let sep = if loc.contains('?') { '&' } else { '?' };
                let r = c
                    .put(format!("{loc}{sep}digest={}", sha(content)))
                    .body(content[offset..].to_vec())
                    .send()
                    .await
                    .expect("finish");
                if r.status() == 201 {
                    let (status, body) = get(
                        &c,
                        &format!("{}/v2/{repo}/blobs/{}", server.base, sha(content)),
                    )
                    .await;
                    assert_eq!(status, 200);
                    assert_eq!(
                        &body, content,
                        "a resumed upload must produce the original blob"
                    );
                    resumed += 1;
                } else {
                    // An offset of "0-0" is ambiguous between 0 and 1 byte; nothing else may fail.
                    assert_eq!(
                        range,
                        "0-0",
                        "resume from {offset} failed with {}",
                        r.status()
                    );
                }
            }
            404 => {
                let body: serde_json::Value = r.json().await.expect("error body");
                assert_eq!(body["errors"][0]["code"], "BLOB_UPLOAD_UNKNOWN");
                unknown += 1;
            }
            other => panic!("upload status answered {other}"),
        }
    }
    {
        let l = ledger.lock().expect("ledger");
        eprintln!(
            "crash test: {} blobs and {} manifests acknowledged; sessions resumed {resumed}, unknown {unknown}",
            l.acked_blobs.len(),
            l.acked_manifests.len()
        );
        assert!(
            !l.acked_manifests.is_empty(),
            "the load made no progress between kills"
        );
    }
    assert!(resumed + unknown > 0);

    // Nothing leaked: with no grace period and no upload age, one collection pass leaves storage
    // (read directly) holding exactly the blobs that live tags' manifests reference — the bytes
    // of pushes killed halfway are gone, recorded or not — and no upload object.
    server.kill9();
    let server = server.start_sibling_with(
        &[],
        &[
            ("BERTH_PUSH_TEMP_TAG_EXPIRATION_SEC", "0"),
            ("BERTH_BLOB_UPLOAD_STALE_AFTER_S", "0"),
            ("BERTH_FEATURE_GARBAGE_COLLECTION", "false"),
        ],
    );
    let r = c
        .post(format!("{}/api/v1/superuser/gc", server.base))
        .send()
        .await
        .expect("gc");
    assert_eq!(r.status().as_u16(), 200);
    let report: serde_json::Value = r.json().await.expect("report");
    let mut referenced = std::collections::BTreeSet::new();
    let (_, cat) = get(&c, &format!("{}/v2/_catalog?n=1000", server.base)).await;
    let cat: serde_json::Value = serde_json::from_slice(&cat).expect("catalog");
    for repo in cat["repositories"].as_array().expect("repositories") {
        let repo = repo.as_str().expect("name");
        let (_, tags) = get(&c, &format!("{}/v2/{repo}/tags/list?n=10000", server.base)).await;
        let tags: serde_json::Value = serde_json::from_slice(&tags).expect("tags");
        for t in tags["tags"].as_array().into_iter().flatten() {
            let t = t.as_str().expect("tag");
            let (status, m) = get(&c, &format!("{}/v2/{repo}/manifests/{t}", server.base)).await;
            assert_eq!(status, 200);
            let m: serde_json::Value = serde_json::from_slice(&m).expect("manifest");
            referenced.extend(m["config"]["digest"].as_str().map(String::from));
            for l in m["layers"].as_array().into_iter().flatten() {
                referenced.extend(l["digest"].as_str().map(String::from));
            }
        }
    }
    let inv = server.blob_store().inventory().await.expect("inventory");
    let stored: std::collections::BTreeSet<String> =
        inv.blobs.iter().map(|b| b.0.to_string()).collect();
    assert_eq!(
        stored, referenced,
        "storage after collection (left) differs from what live tags reference (right); pass: {report}"
    );
    assert!(
        inv.uploads.is_empty(),
        "upload objects left: {:?}",
        inv.uploads
    );
    eprintln!(
        "crash test: after collection {} blobs stored, exactly those referenced; pass {report}",
        stored.len()
    );
}
