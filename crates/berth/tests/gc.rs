//! Online garbage collection against a real `berth` process, on whatever backend the harness
//! selects (SQLite + filesystem, PostgreSQL + filesystem, PostgreSQL + S3): the time machine
//! keeps what it can restore and the collector frees it once the window has passed; repository
//! deletion frees what only that repository held; abandoned uploads are removed; and a torture
//! run — many clients pushing images that share layers, moving and deleting tags and manifests,
//! pulling, while the collector runs every second with a zero-second window on some
//! repositories — ends with every tag pulling completely and storage holding exactly the blobs
//! reachable from tags and history. Storage is checked directly, not through Berth.

mod common;

use common::{ADMIN_PASSWORD, ADMIN_USER, Berth};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

const MT: &str = "application/vnd.oci.image.manifest.v1+json";
const IT: &str = "application/vnd.oci.image.index.v1+json";

fn sha(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

#[derive(Clone)]
struct Client {
    http: reqwest::blocking::Client,
    base: String,
}

/// An image as pushed: its manifest bytes and the blobs (config first) it references.
#[derive(Clone, Debug)]
struct Image {
    digest: String,
    blobs: Vec<String>,
    /// Children, for an index.
    children: Vec<String>,
    size: usize,
}

impl Client {
    fn new(b: &Berth) -> Client {
        Client {
            http: reqwest::blocking::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("client"),
            base: b.base.clone(),
        }
    }

    fn req(&self, method: &str, path: &str) -> reqwest::blocking::RequestBuilder {
        self.http
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).expect("method"),
                format!("{}{path}", self.base),
            )
            .basic_auth(ADMIN_USER, Some(ADMIN_PASSWORD))
    }

    fn api(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut r = self.req(method, path);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r.send().expect("send");
        let s = r.status().as_u16();
        (s, r.json().unwrap_or(Value::Null))
    }

    /// Uploads a blob unless the repository already has it (HEAD first, as clients do).
    fn blob(&self, repo: &str, data: &[u8]) -> String {
        let d = sha(data);
        let head = self
            .req("HEAD", &format!("/v2/{repo}/blobs/{d}"))
            .send()
            .expect("head");
        if head.status().as_u16() == 200 {
            return d;
        }
        let r = self
            .req("POST", &format!("/v2/{repo}/blobs/uploads/?digest={d}"))
            .body(data.to_vec())
            .send()
            .expect("blob");
        assert_eq!(r.status().as_u16(), 201, "upload {d} to {repo}");
        d
    }

    /// Mounts a blob from another repository; true if mounted (201).
    fn mount(&self, repo: &str, from: &str, digest: &str) -> bool {
        let r = self
            .req(
                "POST",
                &format!("/v2/{repo}/blobs/uploads/?mount={digest}&from={from}"),
            )
            .send()
            .expect("mount");
        if r.status().as_u16() == 202
            && let Some(loc) = r.headers().get("location").and_then(|l| l.to_str().ok())
        {
            // Not mountable: the session the registry opened instead is cancelled.
            let path = loc.strip_prefix(&self.base).unwrap_or(loc).to_string();
            let _ = self.req("DELETE", &path).send();
        }
        r.status().as_u16() == 201
    }

    fn put_manifest(&self, repo: &str, reference: &str, mt: &str, body: &[u8]) -> (u16, String) {
        let r = self
            .req("PUT", &format!("/v2/{repo}/manifests/{reference}"))
            .header("Content-Type", mt)
            .body(body.to_vec())
            .send()
            .expect("manifest");
        (r.status().as_u16(), r.text().unwrap_or_default())
    }

    /// Pushes an image of a fresh config and `layers` (uploaded unless present).
    fn image(&self, repo: &str, reference: &str, salt: &str, layers: &[&[u8]]) -> Image {
        let config = serde_json::to_vec(&json!({
            "architecture": "amd64", "os": "linux", "config": {"Labels": {"salt": salt}},
            "rootfs": {"type": "layers", "diff_ids": []},
        }))
        .expect("json");
        let mut blobs = vec![self.blob(repo, &config)];
        let mut descs = Vec::new();
        for l in layers {
            let d = self.blob(repo, l);
            descs.push(json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": l.len()}));
            blobs.push(d);
        }
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": MT,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": blobs[0], "size": config.len()},
            "layers": descs,
        }))
        .expect("json");
        // An empty reference pushes by digest (an index's child).
        let reference = if reference.is_empty() {
            sha(&manifest)
        } else {
            reference.to_string()
        };
        let (s, body) = self.put_manifest(repo, &reference, MT, &manifest);
        assert_eq!(s, 201, "push {repo}:{reference}: {body}");
        Image {
            digest: sha(&manifest),
            blobs,
            children: Vec::new(),
            size: manifest.len(),
        }
    }

    /// Pushes an index over `children` (already in the repository).
    fn index(&self, repo: &str, tag: &str, children: &[&Image]) -> Image {
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": IT,
            "manifests": children.iter().enumerate().map(|(i, c)| json!({
                "mediaType": MT, "digest": c.digest, "size": c.size,
                "platform": {"architecture": format!("arch{i}"), "os": "linux"},
            })).collect::<Vec<_>>(),
        }))
        .expect("json");
        let (s, body) = self.put_manifest(repo, tag, IT, &manifest);
        assert_eq!(s, 201, "push index {repo}:{tag}: {body}");
        Image {
            digest: sha(&manifest),
            blobs: Vec::new(),
            children: children.iter().map(|c| c.digest.clone()).collect(),
            size: manifest.len(),
        }
    }

    fn delete(&self, repo: &str, reference: &str) -> u16 {
        self.req("DELETE", &format!("/v2/{repo}/manifests/{reference}"))
            .send()
            .expect("delete")
            .status()
            .as_u16()
    }

    /// Pulls `reference` completely: the manifest (and an index's children) and every blob,
    /// each checked against its digest. Returns the manifest digest.
    fn pull(&self, repo: &str, reference: &str) -> Result<String, String> {
        let r = self
            .req("GET", &format!("/v2/{repo}/manifests/{reference}"))
            .header("Accept", format!("{MT}, {IT}"))
            .send()
            .map_err(|e| e.to_string())?;
        if r.status().as_u16() != 200 {
            return Err(format!("{repo}:{reference}: manifest {}", r.status()));
        }
        let body = r.bytes().map_err(|e| e.to_string())?;
        let m: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        if let Some(children) = m["manifests"].as_array() {
            for c in children {
                let d = c["digest"].as_str().unwrap_or("");
                let got = self.pull(repo, d)?;
                if got != d {
                    return Err(format!("{repo}@{d} served {got}"));
                }
            }
        }
        let mut blobs: Vec<&str> = m["config"]["digest"].as_str().into_iter().collect();
        if let Some(layers) = m["layers"].as_array() {
            blobs.extend(layers.iter().filter_map(|l| l["digest"].as_str()));
        }
        for d in blobs {
            let r = self
                .req("GET", &format!("/v2/{repo}/blobs/{d}"))
                .send()
                .map_err(|e| e.to_string())?;
            if r.status().as_u16() != 200 {
                return Err(format!("{repo}: blob {d}: {}", r.status()));
            }
            let got = sha(&r.bytes().map_err(|e| e.to_string())?);
            if got != d {
                return Err(format!("{repo}: blob {d} has digest {got}"));
            }
        }
        Ok(sha(&body))
    }

    fn gc(&self) -> Value {
        let (s, v) = self.api("POST", "/api/v1/superuser/gc", None);
        assert_eq!(s, 200, "{v}");
        v
    }

    fn org(&self, name: &str, window_s: i64) {
        let (s, v) = self.api(
            "POST",
            "/api/v1/organization/",
            Some(json!({"name": name, "email": format!("{name}@example.com")})),
        );
        assert_eq!(s, 201, "{v}");
        let (s, v) = self.api(
            "PUT",
            &format!("/api/v1/organization/{name}"),
            Some(json!({"tag_expiration_s": window_s})),
        );
        assert_eq!(s, 200, "{v}");
    }
}

/// Which of `digests` the server's storage holds, read from storage itself.
fn stored(b: &Berth, digests: &BTreeSet<String>) -> BTreeSet<String> {
    let store = b.blob_store();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut out = BTreeSet::new();
        for d in digests {
            let digest: berth_oci::Digest = d.parse().expect("digest");
            if store.stat(&digest).await.expect("stat").is_some() {
                out.insert(d.clone());
            }
        }
        out
    })
}

fn set<'a>(items: impl IntoIterator<Item = &'a String>) -> BTreeSet<String> {
    items.into_iter().cloned().collect()
}

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
    let metrics = c
        .req("GET", "/metrics")
        .send()
        .expect("metrics")
        .text()
        .expect("text");
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
