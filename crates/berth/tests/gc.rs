//! Online garbage collection against a real `berth` process, on whatever backend the harness
//! selects (SQLite + filesystem, PostgreSQL + filesystem, PostgreSQL + S3): the time machine
//! keeps what it can restore and the collector frees it once the window has passed; repository
//! deletion frees what only that repository held; abandoned uploads are removed; and a torture
//! run — many clients pushing images that share layers, moving and deleting tags and manifests,
//! pulling, while the collector runs every second with a zero-second window on some
//! repositories — ends with every tag pulling completely and storage holding exactly the blobs
//! reachable from tags and history. Storage is checked directly, not through Berth.

mod common;

use common::Berth;
use common::client::{Client, Image, block_on, set, sha, stored};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[test]
fn time_machine_keeps_what_it_can_restore_and_gc_frees_it_after_the_window() {
    let b = Berth::start_with_env(&[
        ("BERTH_FEATURE_GARBAGE_COLLECTION", "false"),
        ("BERTH_PUSH_TEMP_TAG_EXPIRATION_SEC", "0"),
        ("BERTH_BLOB_UPLOAD_STALE_AFTER_S", "2"),
        ("BERTH_TAG_EXPIRATION_OPTIONS", "[0s, 3s, 2w]"),
    ]);
    let c = Client::new(&b);
    c.org("tm", 3);
    let repo = "tm/app";
    let shared = b"shared base layer".repeat(100);
    let a = c.image(repo, "v1", "a", &[&shared, b"layer of a"]);
    let bb = c.image(repo, "v1", "b", &[&shared, b"layer of b"]);
    let keep = c.image(repo, "keep", "c", &[&shared, b"layer of c"]);
    assert_eq!(c.delete(repo, "v1"), 202);
    // An upload session left behind.
    let r = c
        .req("POST", &format!("/v2/{repo}/blobs/uploads/"))
        .send()
        .expect("start upload");
    assert_eq!(r.status().as_u16(), 202);
    let session = r.headers()["location"]
        .to_str()
        .expect("location")
        .to_string();
    let session = session
        .strip_prefix(&b.base)
        .unwrap_or(&session)
        .to_string();
    let r = c
        .req("PATCH", &session)
        .header("Content-Type", "application/octet-stream")
        .body(b"abandoned bytes".to_vec())
        .send()
        .expect("patch");
    assert_eq!(r.status().as_u16(), 202);

    let all: BTreeSet<String> = a
        .blobs
        .iter()
        .chain(&bb.blobs)
        .chain(&keep.blobs)
        .cloned()
        .collect();
    // Inside the window nothing of a or b is collected, and both restore.
    let report = c.gc();
    assert_eq!(report["manifests_deleted"], 0, "{report}");
    assert_eq!(report["blobs_deleted"], 0, "{report}");
    assert_eq!(stored(&b, &all), all);
    for img in [&a, &bb] {
        let (s, v) = c.api(
            "POST",
            &format!("/api/v1/repository/{repo}/tag/v1/restore"),
            Some(json!({"manifest_digest": img.digest})),
        );
        assert_eq!(s, 200, "{v}");
        assert_eq!(c.pull(repo, "v1"), Ok(img.digest.clone()));
    }
    assert_eq!(c.delete(repo, "v1"), 202);

    // After the window: a and b, and the blobs only they held, are freed.
    std::thread::sleep(Duration::from_millis(3500));
    let report = c.gc();
    assert_eq!(report["manifests_deleted"], 2, "{report}");
    assert_eq!(report["blobs_deleted"], 4, "{report}");
    assert_eq!(report["uploads_removed"], 1, "{report}");
    let freed = [&a.blobs[0], &a.blobs[2], &bb.blobs[0], &bb.blobs[2]];
    assert_eq!(
        report["bytes_freed"].as_i64(),
        Some(
            (serde_json::to_vec(
                &json!({"architecture": "amd64", "os": "linux", "config": {"Labels": {"salt": "a"}},
                "rootfs": {"type": "layers", "diff_ids": []}})
            )
            .expect("json")
            .len()
                * 2
                + b"layer of a".len()
                + b"layer of b".len()) as i64
        ),
        "{report}"
    );
    assert_eq!(stored(&b, &all), &all - &set(freed));
    assert_eq!(c.pull(repo, "keep"), Ok(keep.digest.clone()));
    let (s, _) = c.api(
        "POST",
        &format!("/api/v1/repository/{repo}/tag/v1/restore"),
        Some(json!({"manifest_digest": a.digest})),
    );
    assert_eq!(s, 404, "outside the window nothing is restorable");
    assert!(c.pull(repo, &a.digest).is_err());
    let r = c
        .req("PATCH", &session)
        .body(b"more".to_vec())
        .send()
        .expect("patch");
    assert_eq!(r.status().as_u16(), 404, "the abandoned session is gone");

    // A second pass finds nothing; the totals and the metrics add up.
    let again = c.gc();
    assert_eq!(
        (
            again["manifests_deleted"].as_i64(),
            again["blobs_deleted"].as_i64()
        ),
        (Some(0), Some(0)),
        "{again}"
    );
    let (s, status) = c.api("GET", "/api/v1/superuser/gc", None);
    assert_eq!(s, 200);
    assert_eq!(status["totals"]["blobs_deleted"], 4, "{status}");
    assert_eq!(status["totals"]["manifests_deleted"], 2, "{status}");
    assert_eq!(status["blob_queue_depth"], 0, "{status}");
    let metrics = c.metrics();
    assert!(
        metrics.contains("berth_gc_blobs_deleted_total 4"),
        "{metrics}"
    );
}

#[test]
fn deleting_a_repository_frees_what_only_it_held() {
    let b = Berth::start_with_env(&[("BERTH_PUSH_TEMP_TAG_EXPIRATION_SEC", "0")]);
    let c = Client::new(&b);
    let shared = b"layer both repositories use".repeat(50);
    let one = c.image("admin/one", "v1", "one", &[&shared, b"only in one"]);
    assert!(c.mount("admin/two", "admin/one", &one.blobs[1]));
    let two = c.image("admin/two", "v1", "two", &[&shared, b"only in two"]);
    let (s, v) = c.api("DELETE", "/api/v1/repository/admin/one", None);
    assert_eq!(s, 204, "{v}");
    let r = c
        .req("GET", "/v2/admin/one/tags/list")
        .send()
        .expect("tags");
    assert_eq!(
        r.status().as_u16(),
        404,
        "a deleted repository is gone at once"
    );
    let (_, cat) = c.api("GET", "/v2/_catalog", None);
    assert_eq!(cat["repositories"], json!(["admin/two"]), "{cat}");
    // The name is free at once.
    let again = c.image("admin/one", "v2", "again", &[b"new content"]);
    let only_one = set([&one.blobs[0], &one.blobs[2]]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !stored(&b, &only_one).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the deletion job did not free {only_one:?}; log: {}",
            b.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(c.pull("admin/two", "v1"), Ok(two.digest.clone()));
    assert_eq!(c.pull("admin/one", "v2"), Ok(again.digest.clone()));
    assert!(c.pull("admin/one", "v1").is_err());
    let (_, status) = c.api("GET", "/api/v1/superuser/gc", None);
    assert_eq!(status["totals"]["repos_deleted"], 1, "{status}");
    let (_, logs) = c.api("GET", "/api/v1/superuser/logs?kind=delete_repo", None);
    assert!(logs.to_string().contains("admin/one"), "{logs}");

    // Deleting an organization deletes its repositories and frees what only they held; the
    // name can be used again at once.
    c.org("gone", 0);
    let g = c.image("gone/app", "v1", "gone", &[&shared, b"only in gone"]);
    let (s, v) = c.api("DELETE", "/api/v1/organization/gone", None);
    assert_eq!(s, 204, "{v}");
    let only_gone = set([&g.blobs[0], &g.blobs[2]]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !stored(&b, &only_gone).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the organization's blobs were not freed"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        stored(&b, &set([&g.blobs[1]])).len(),
        1,
        "the shared layer stays"
    );
    c.org("gone", 0);
    let again = c.image("gone/app", "v1", "gone again", &[b"new"]);
    assert_eq!(c.pull("gone/app", "v1"), Ok(again.digest.clone()));
}

/// What a torture client did to one repository.
#[derive(Default, Clone)]
struct RepoModel {
    /// Every manifest pushed.
    images: BTreeMap<String, Image>,
    /// Live tags.
    tags: BTreeMap<String, String>,
    /// Manifests some tag pointed at, at some time.
    ever_tagged: BTreeSet<String>,
}

impl RepoModel {
    /// Manifests kept: from `roots`, following index children.
    fn closure(&self, roots: impl IntoIterator<Item = String>) -> BTreeSet<String> {
        let mut keep = BTreeSet::new();
        let mut todo: Vec<String> = roots.into_iter().collect();
        while let Some(d) = todo.pop() {
            if keep.insert(d.clone())
                && let Some(img) = self.images.get(&d)
            {
                todo.extend(img.children.iter().cloned());
            }
        }
        keep
    }
}

/// A tiny deterministic generator (xorshift), so a failing run can be repeated.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn gc_torture_concurrent_pushes_moves_deletes_and_pulls() {
    const CLIENTS: usize = 6;
    const MAX_STEPS: usize = 150;
    const RUN: Duration = Duration::from_secs(25);
    let mut b = Berth::start_with_env(&[
        ("BERTH_GARBAGE_COLLECTION_FREQUENCY", "1"),
        ("BERTH_GC_FULL_SWEEP_S", "2"),
        ("BERTH_PUSH_TEMP_TAG_EXPIRATION_SEC", "3"),
        ("BERTH_BLOB_UPLOAD_STALE_AFTER_S", "30"),
    ]);
    let c = Client::new(&b);
    c.org("fast", 0);
    c.org("slow", 14 * 86_400);
    let bases: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..4)
            .map(|i| {
                let mut r = Rng(0x9e37_79b9 + i);
                (0..(2048 + 4096 * i as usize))
                    .map(|_| r.next() as u8)
                    .collect()
            })
            .collect(),
    );
    let deadline = Instant::now() + RUN;
    let workers: Vec<_> = (0..CLIENTS)
        .map(|id| {
            let c = c.clone();
            let bases = bases.clone();
            std::thread::spawn(move || {
                let mut rng = Rng(0x1234_5678 + id as u64 * 7919);
                let repos = [format!("fast/r{}", id % 3), format!("slow/r{}", id % 3)];
                let mut models: BTreeMap<String, RepoModel> = BTreeMap::new();
                let mut uploaded: BTreeSet<String> = BTreeSet::new();
                let mut pulls = 0;
                for step in 0..MAX_STEPS {
                    if Instant::now() > deadline {
                        break;
                    }
                    let which = rng.below(2) as usize;
                    let repo = &repos[which];
                    let action = rng.below(10);
                    // A base layer the other repository's live images use, to mount from there.
                    let from = &repos[1 - which];
                    let donor = models.get(from).and_then(|fm| {
                        let kept = fm.closure(fm.tags.values().cloned());
                        kept.iter()
                            .filter_map(|d| fm.images.get(d))
                            .flat_map(|i| i.blobs.iter())
                            .find_map(|d| bases.iter().find(|l| sha(l) == *d).cloned())
                    });
                    let m = models.entry(repo.clone()).or_default();
                    let tag = format!("c{id}-t{}", rng.below(3));
                    let salt = format!("{id}-{step}");
                    let base = &bases[rng.below(bases.len() as u64) as usize];
                    let own = format!("unique layer {salt}").into_bytes();
                    match action {
                        0..=4 => {
                            let img = c.image(repo, &tag, &salt, &[base, &own]);
                            uploaded.extend(img.blobs.iter().cloned());
                            m.tags.insert(tag, img.digest.clone());
                            m.ever_tagged.insert(img.digest.clone());
                            m.images.insert(img.digest.clone(), img);
                        }
                        5 => {
                            let x = c.image(repo, "", &format!("{salt}x"), &[base]);
                            let y = c.image(repo, "", &format!("{salt}y"), &[&own]);
                            let idx = c.index(repo, &tag, &[&x, &y]);
                            for i in [&x, &y] {
                                uploaded.extend(i.blobs.iter().cloned());
                            }
                            m.tags.insert(tag, idx.digest.clone());
                            m.ever_tagged.insert(idx.digest.clone());
                            for i in [x, y, idx] {
                                m.images.insert(i.digest.clone(), i);
                            }
                        }
                        6 => {
                            // Delete a tag of this client's.
                            if let Some(t) = m.tags.keys().next().cloned() {
                                assert_eq!(c.delete(repo, &t), 202, "delete {repo}:{t}");
                                m.tags.remove(&t);
                            }
                        }
                        7 => {
                            // Delete a tagged manifest by digest: its tags end with it.
                            if let Some(d) = m.tags.values().last().cloned() {
                                assert_eq!(c.delete(repo, &d), 202, "delete {repo}@{d}");
                                m.tags.retain(|_, v| *v != d);
                            }
                        }
                        8 => {
                            // Mount a layer from the other repository, then use it.
                            if let Some(layer) = donor
                                && c.mount(repo, from, &sha(&layer))
                            {
                                let img = c.image(repo, &tag, &salt, &[&layer]);
                                uploaded.extend(img.blobs.iter().cloned());
                                m.tags.insert(tag, img.digest.clone());
                                m.ever_tagged.insert(img.digest.clone());
                                m.images.insert(img.digest.clone(), img);
                            }
                        }
                        _ => {
                            // Pull one of this client's live tags, completely.
                            if let Some((t, d)) = m.tags.iter().next() {
                                assert_eq!(c.pull(repo, t), Ok(d.clone()), "pull during GC");
                                pulls += 1;
                            }
                        }
                    }
                }
                (models, uploaded, pulls)
            })
        })
        .collect();
    let mut models: BTreeMap<String, RepoModel> = BTreeMap::new();
    let mut uploaded = BTreeSet::new();
    let mut pulls = 0;
    for w in workers {
        let (m, u, p) = w.join().expect("a torture client failed");
        for (repo, rm) in m {
            let e = models.entry(repo).or_default();
            e.images.extend(rm.images);
            e.tags.extend(rm.tags);
            e.ever_tagged.extend(rm.ever_tagged);
        }
        uploaded.extend(u);
        pulls += p;
    }
    let pushed: usize = models.values().map(|m| m.images.len()).sum();
    eprintln!(
        "torture: {pushed} manifests, {} blobs, {pulls} pulls",
        uploaded.len()
    );
    assert!(pushed > 20, "the run did too little to mean anything");

    // Quiesce: restart without the grace period and collect until nothing is left.
    b.kill9();
    let b2 = b.start_sibling_with(
        &[],
        &[
            ("BERTH_PUSH_TEMP_TAG_EXPIRATION_SEC", "0"),
            ("BERTH_FEATURE_GARBAGE_COLLECTION", "false"),
        ],
    );
    let c = Client::new(&b2);
    let first = c.gc();
    let second = c.gc();
    assert_eq!(second["manifests_deleted"], 0, "{first} then {second}");
    assert_eq!(second["blobs_deleted"], 0, "{first} then {second}");

    // Every live tag pulls completely with the right digest.
    let mut reachable = BTreeSet::new();
    for (repo, m) in &models {
        for (t, d) in &m.tags {
            assert_eq!(c.pull(repo, t), Ok(d.clone()), "{repo}:{t} after GC");
        }
        // Zero-second window: live tags only. Two weeks: everything ever tagged.
        let roots: Vec<String> = if repo.starts_with("fast/") {
            m.tags.values().cloned().collect()
        } else {
            m.ever_tagged.iter().cloned().collect()
        };
        for d in m.closure(roots) {
            if let Some(img) = m.images.get(&d) {
                reachable.extend(img.blobs.iter().cloned());
            }
        }
    }
    // Storage holds exactly the reachable blobs: nothing missing, nothing leaked.
    let held = stored(&b2, &uploaded);
    let missing: Vec<_> = reachable.difference(&held).collect();
    let leaked: Vec<_> = held.difference(&reachable).collect();
    assert!(
        missing.is_empty() && leaked.is_empty(),
        "missing {missing:?}, leaked {leaked:?}; first pass {first}"
    );
    eprintln!(
        "torture: {} blobs reachable, {} freed; final pass {first}",
        reachable.len(),
        uploaded.len() - reachable.len()
    );
}

/// Bytes a crash left behind — a blob written but never recorded, an upload object without a
/// session — are found in storage by a full pass and removed; recorded blobs are untouched.
#[test]
fn bytes_no_row_knows_are_collected() {
    let b = Berth::start_with_env(&[
        ("BERTH_FEATURE_GARBAGE_COLLECTION", "false"),
        ("BERTH_PUSH_TEMP_TAG_EXPIRATION_SEC", "0"),
        ("BERTH_BLOB_UPLOAD_STALE_AFTER_S", "0"),
    ]);
    let c = Client::new(&b);
    let kept = c.image("admin/keep", "v1", "kept", &[b"a recorded layer"]);
    let orphan = b"bytes a crashed push published but never recorded".to_vec();
    let od = sha(&orphan);
    let store = b.blob_store();
    block_on(async {
        use futures::StreamExt;
        for (id, commit) in [("crashed-push", true), ("crashed-single-post", false)] {
            store.upload_begin(id).await.expect("begin");
            let body = futures::stream::iter([Ok(bytes::Bytes::from(orphan.clone()))]).boxed();
            store.upload_append(id, 0, body).await.expect("append");
            if commit {
                store
                    .upload_commit(id, orphan.len() as u64, &od.parse().expect("digest"))
                    .await
                    .expect("commit");
            }
        }
    });
    assert_eq!(stored(&b, &set([&od])).len(), 1);
    let report = c.gc();
    assert_eq!(report["orphan_blobs"], 1, "{report}");
    assert_eq!(report["blobs_deleted"], 1, "{report}");
    assert_eq!(report["uploads_removed"], 1, "{report}");
    assert!(stored(&b, &set([&od])).is_empty());
    let inv = block_on(store.inventory()).expect("inventory");
    assert!(inv.uploads.is_empty(), "{:?}", inv.uploads);
    assert_eq!(c.pull("admin/keep", "v1"), Ok(kept.digest.clone()));
    assert_eq!(stored(&b, &set(&kept.blobs)).len(), kept.blobs.len());
}
