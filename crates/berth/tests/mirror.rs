//! Repository mirroring against real upstreams started here on 127.0.0.1: CNCF Distribution
//! (`docker-registry`, htpasswd Basic auth) and a second `berth` (token auth), filled by skopeo
//! from OCI layouts written by the test. Shows glob selection with identical digests, a moved
//! tag following, a deleted tag leaving (restorable), an architecture filter's sparse index,
//! writes refused in MIRROR state, a SIGKILLed sync taken over and finished, cancel, and one
//! sync per trigger with two instances.

mod common;

use common::Berth;
use common::client::Client;
use common::images::{Layout, Rng, require_tool, run};
use common::upstream::{Distribution, UP_PASSWORD, UP_USER};
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// `skopeo copy --all` from layout `dir`'s `tag` to `dest` (docker://…).
fn skopeo_push(dir: &Path, tag: &str, dest: &str, creds: &str) {
    run(Command::new(require_tool("skopeo"))
        .args([
            "copy",
            "--all",
            "--dest-tls-verify=false",
            "--dest-creds",
            creds,
        ])
        .arg(format!("oci:{}:{tag}", dir.display()))
        .arg(dest));
}

/// Fills a layout with `tags`: each a two-platform index (amd64, arm64) when `multi`, else a
/// single image, every one with its own small layers.
fn layout_with(dir: &Path, tags: &[&str], multi: bool, layer: usize) -> Layout {
    let mut l = Layout::create(dir);
    let mut rng = Rng::new();
    for t in tags {
        if multi {
            let a = l.image(&mut rng, "amd64", &[layer, 1024]);
            let b = l.image(&mut rng, "arm64", &[layer, 1024]);
            let index = serde_json::to_vec(&json!({
                "schemaVersion": 2, "mediaType": OCI_INDEX,
                "manifests": [
                    {"mediaType": OCI_MANIFEST, "digest": a.digest, "size": a.manifest.len(), "platform": {"os": "linux", "architecture": "amd64"}},
                    {"mediaType": OCI_MANIFEST, "digest": b.digest, "size": b.manifest.len(), "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
                ],
            }))
            .expect("json");
            l.put_blob(&index);
            l.tag(OCI_INDEX, &index, t);
        } else {
            let a = l.image(&mut rng, "amd64", &[layer]);
            l.tag(OCI_MANIFEST, &a.manifest, t);
        }
    }
    l
}

fn mirror_env(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut v = vec![
        ("BERTH_SSRF_ALLOWED_HOSTS", "[\"127.0.0.1\"]"),
        ("BERTH_REPO_MIRROR_INTERVAL", "1"),
        ("BERTH_REPO_MIRROR_LEASE", "4s"),
    ];
    v.extend_from_slice(extra);
    v
}

/// Creates `admin/<name>` and robot `admin+<robot>`.
fn repo_and_robot(c: &Client, name: &str, robot: &str) {
    let (s, v) = c.api(
        "POST",
        "/api/v1/repository",
        Some(json!({"namespace": "admin", "repository": name, "visibility": "private", "description": "mirror"})),
    );
    assert_eq!(s, 201, "{v}");
    let (s, v) = c.api(
        "PUT",
        &format!("/api/v1/user/robots/{robot}"),
        Some(json!({})),
    );
    assert!(s == 200 || s == 201, "{s} {v}");
}

fn now_date() -> String {
    let s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    // YYYY-MM-DDTHH:MM:SSZ from the epoch (civil-from-days).
    let days = (s / 86400) as i64;
    let rem = s % 86400;
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn mirror(c: &Client, repo: &str) -> Value {
    let (s, v) = c.api("GET", &format!("/api/v1/repository/{repo}/mirror"), None);
    assert_eq!(s, 200, "{v}");
    v
}

/// Waits until the mirror's last run has finished with `outcome` after `runs_before` runs.
fn wait_run(c: &Client, repo: &str, runs_before: usize, outcome: &str, limit: Duration) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let (_, v) = c.api(
            "GET",
            &format!("/api/v1/repository/{repo}/mirror/runs"),
            None,
        );
        let runs = v["runs"].as_array().cloned().unwrap_or_default();
        let finished: Vec<&Value> = runs.iter().filter(|r| r["outcome"] != "running").collect();
        if runs.len() > runs_before
            && let Some(last) = runs.first()
            && last["outcome"] != "running"
        {
            assert_eq!(
                last["outcome"],
                outcome,
                "last run: {last:#}\nmirror: {:#}",
                mirror(c, repo)
            );
            return last.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no {outcome} run within {limit:?} (finished {}): {v:#}\nmirror: {:#}",
            finished.len(),
            mirror(c, repo)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn runs(c: &Client, repo: &str) -> Vec<Value> {
    let (_, v) = c.api(
        "GET",
        &format!("/api/v1/repository/{repo}/mirror/runs"),
        None,
    );
    v["runs"].as_array().cloned().unwrap_or_default()
}

fn local_digest(c: &Client, repo: &str, tag: &str) -> Option<String> {
    let r = c
        .req("HEAD", &format!("/v2/{repo}/manifests/{tag}"))
        .header("Accept", format!("{OCI_INDEX}, {OCI_MANIFEST}"))
        .send()
        .expect("HEAD");
    (r.status() == 200).then(|| {
        r.headers()["docker-content-digest"]
            .to_str()
            .expect("digest")
            .to_string()
    })
}

fn live_tags(c: &Client, repo: &str) -> Vec<String> {
    let r = c
        .req("GET", &format!("/v2/{repo}/tags/list"))
        .send()
        .expect("tags");
    let v: Value = r.json().expect("json");
    let mut t: Vec<String> = v["tags"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    t.sort();
    t
}

#[test]
fn mirrors_a_distribution_repository_exactly() {
    let Some(up) = Distribution::start() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let creds = format!("{UP_USER}:{UP_PASSWORD}");
    let layout = tmp.path().join("layout");
    layout_with(
        &layout,
        &["v1.0", "v1.1", "v2.0", "latest", "dev"],
        true,
        4096,
    );
    for t in ["v1.0", "v1.1", "v2.0", "latest", "dev"] {
        skopeo_push(
            &layout,
            t,
            &format!("docker://{}/library/app:{t}", up.host),
            &creds,
        );
    }
    let b = Berth::start_with_env(&mirror_env(&[]));
    let c = Client::new(&b);
    repo_and_robot(&c, "app", "mirror");
    let repo = "admin/app";
    let body = json!({
        "external_reference": format!("{}/library/app", up.host),
        "external_registry_username": UP_USER,
        "external_registry_password": UP_PASSWORD,
        "external_registry_config": {"verify_tls": false},
        "sync_interval": 3600,
        "sync_start_date": now_date(),
        "root_rule": {"rule_kind": "tag_glob_csv", "rule_value": ["v1.*", "latest"]},
        "robot_username": "admin+mirror",
        "skopeo_timeout_interval": 300,
    });
    let (s, v) = c.api(
        "POST",
        &format!("/api/v1/repository/{repo}/mirror"),
        Some(body.clone()),
    );
    assert_eq!(s, 201, "{v}");
    let (s, _) = c.api(
        "POST",
        &format!("/api/v1/repository/{repo}/mirror"),
        Some(body),
    );
    assert_eq!(s, 409, "a second mirror on one repository");
    let m = mirror(&c, repo);
    assert_eq!(m["mirror_type"], "PULL");
    assert_eq!(m["robot_username"], "admin+mirror");
    assert_eq!(m["external_registry_username"], UP_USER);
    assert!(
        m.get("external_registry_password").is_none(),
        "no password in {m}"
    );
    assert_eq!(
        m["root_rule"],
        json!({"rule_kind": "tag_glob_csv", "rule_value": ["v1.*", "latest"]})
    );

    let run1 = wait_run(&c, repo, 0, "success", Duration::from_secs(60));
    assert_eq!(run1["tags_copied"], 3, "{run1:#}");
    assert_eq!(live_tags(&c, repo), ["latest", "v1.0", "v1.1"]);
    for t in ["latest", "v1.0", "v1.1"] {
        assert_eq!(
            local_digest(&c, repo, t),
            up.digest("library/app", t),
            "{t}"
        );
    }
    assert_eq!(mirror(&c, repo)["sync_status"], "SUCCESS");

    // Writes by anyone but the robot are refused: the API with Quay's 503, /v2 with DENIED.
    let (s, v) = c.api(
        "DELETE",
        &format!("/api/v1/repository/{repo}/tag/latest"),
        None,
    );
    assert_eq!(s, 503, "{v}");
    assert!(v.to_string().contains("mirror"), "{v}");
    let push = Command::new(require_tool("skopeo"))
        .args(["copy", "--dest-tls-verify=false", "--dest-creds"])
        .arg(format!("{}:{}", common::ADMIN_USER, common::ADMIN_PASSWORD))
        .arg(format!("oci:{}:dev", layout.display()))
        .arg(format!("docker://{}/{repo}:mine", b.host))
        .output()
        .expect("skopeo");
    assert!(!push.status.success());
    let err = String::from_utf8_lossy(&push.stderr);
    assert!(err.contains("is a mirror"), "{err}");

    // Upstream: v1.1 moves, v1.0 is deleted. The next sync follows; v1.0 stays restorable.
    let old_v10 = up.digest("library/app", "v1.0").expect("v1.0");
    let moved = tmp.path().join("moved");
    layout_with(&moved, &["v1.1"], true, 2048);
    skopeo_push(
        &moved,
        "v1.1",
        &format!("docker://{}/library/app:v1.1", up.host),
        &creds,
    );
    up.delete("library/app", &old_v10);
    let before = runs(&c, repo).len();
    let (s, v) = c.api(
        "POST",
        &format!("/api/v1/repository/{repo}/mirror/sync-now"),
        None,
    );
    assert_eq!(s, 204, "{v}");
    let run2 = wait_run(&c, repo, before, "success", Duration::from_secs(60));
    assert_eq!(run2["tags_copied"], 1, "{run2:#}");
    assert_eq!(run2["tags_removed"], 1, "{run2:#}");
    assert_eq!(run2["tags_unchanged"], 1, "{run2:#}");
    assert_eq!(live_tags(&c, repo), ["latest", "v1.1"]);
    assert_eq!(
        local_digest(&c, repo, "v1.1"),
        up.digest("library/app", "v1.1")
    );
    let (_, h) = c.api(
        "GET",
        &format!("/api/v1/repository/{repo}/tag/?specificTag=v1.0"),
        None,
    );
    let ended = h["tags"].as_array().expect("history");
    assert!(
        ended
            .iter()
            .any(|t| t["manifest_digest"] == old_v10.as_str() && t["end_ts"].is_i64()),
        "v1.0 is in the time machine: {h:#}"
    );

    // An architecture filter: the index keeps its digest, only arm64's child is copied.
    let (s, v) = c.api(
        "PUT",
        &format!("/api/v1/repository/{repo}/mirror"),
        Some(json!({"architecture_filter": ["arm64"], "root_rule": {"rule_kind": "tag_glob_csv", "rule_value": ["v2.0"]}})),
    );
    assert_eq!(s, 201, "{v}");
    let before = runs(&c, repo).len();
    let (s, _) = c.api(
        "POST",
        &format!("/api/v1/repository/{repo}/mirror/sync-now"),
        None,
    );
    assert_eq!(s, 204);
    wait_run(&c, repo, before, "success", Duration::from_secs(60));
    assert_eq!(
        live_tags(&c, repo),
        ["v2.0"],
        "the globs now select v2.0 only"
    );
    let index_digest = up.digest("library/app", "v2.0").expect("v2.0");
    assert_eq!(
        local_digest(&c, repo, "v2.0").as_deref(),
        Some(index_digest.as_str())
    );
    let index: Value = c
        .req("GET", &format!("/v2/{repo}/manifests/v2.0"))
        .header("Accept", OCI_INDEX)
        .send()
        .expect("index")
        .json()
        .expect("json");
    for child in index["manifests"].as_array().expect("children") {
        let d = child["digest"].as_str().expect("digest");
        let arch = child["platform"]["architecture"].as_str().expect("arch");
        let present = local_digest(&c, repo, d).is_some();
        assert_eq!(
            present,
            arch == "arm64",
            "child {arch} {d} present: {present}"
        );
    }

    // Nothing runs now: cancel has nothing to cancel. The audit log has the sync events.
    let (s, _) = c.api(
        "POST",
        &format!("/api/v1/repository/{repo}/mirror/sync-cancel"),
        None,
    );
    assert_eq!(s, 404);
    let (_, logs) = c.api("GET", &format!("/api/v1/repository/{repo}/logs"), None);
    let kinds: Vec<&str> = logs["logs"]
        .as_array()
        .expect("logs")
        .iter()
        .filter_map(|l| l["kind"].as_str())
        .collect();
    for k in [
        "repo_mirror_enabled",
        "repo_mirror_sync_started",
        "repo_mirror_sync_success",
        "repo_mirror_sync_tag_success",
        "push_repo",
    ] {
        assert!(kinds.contains(&k), "{k} in {kinds:?}");
    }

    // Back to NORMAL: the administrator writes again.
    let (s, v) = c.api(
        "PUT",
        &format!("/api/v1/repository/{repo}/changestate"),
        Some(json!({"state": "NORMAL"})),
    );
    assert_eq!(s, 200, "{v}");
    let (s, v) = c.api(
        "DELETE",
        &format!("/api/v1/repository/{repo}/tag/v2.0"),
        None,
    );
    assert_eq!(s, 204, "{v}");
}

/// A berth upstream (token auth) with many tags, so that a sync takes long enough to kill.
#[test]
fn a_killed_sync_is_taken_over_cancel_stops_one_and_two_instances_sync_once() {
    let upstream = Berth::start();
    let upc = Client::new(&upstream);
    // Many small tags: each costs the sync a few round trips, so a sync lasts seconds.
    let tags: Vec<String> = (0..150).map(|i| format!("t{i:03}")).collect();
    for t in &tags {
        upc.image(
            "admin/src",
            t,
            t,
            &[format!("layer of {t}\n").repeat(2000).as_bytes()],
        );
    }
    let mut b = Berth::start_with_env(&mirror_env(&[]));
    let sibling = b.start_sibling();
    let c = Client::new(&b);
    repo_and_robot(&c, "copy", "sync");
    let repo = "admin/copy";
    let (s, v) = c.api(
        "POST",
        &format!("/api/v1/repository/{repo}/mirror"),
        Some(json!({
            "external_reference": format!("{}/admin/src", upstream.host),
            "external_registry_username": common::ADMIN_USER,
            "external_registry_password": common::ADMIN_PASSWORD,
            "external_registry_config": {"verify_tls": false},
            "sync_interval": 3600,
            "sync_start_date": now_date(),
            "root_rule": {"rule_kind": "tag_glob_csv", "rule_value": ["t*", "u*"]},
            "robot_username": "admin+sync",
        })),
    );
    assert_eq!(s, 201, "{v}");
    // Kill the instance whose worker holds the sync, once it has copied something.
    let deadline = Instant::now() + Duration::from_secs(60);
    let holder = loop {
        let r = runs(&c, repo);
        if let Some(run) = r.first()
            && run["outcome"] == "running"
            && run["tags_copied"].as_i64().unwrap_or(0) >= 1
        {
            break run["worker"].as_str().unwrap_or("").to_string();
        }
        assert!(Instant::now() < deadline, "no sync in progress: {r:?}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(!holder.is_empty());
    // Both instances run workers; kill both so the sync's process is surely gone, then start
    // one again: it takes the mirror over once the lease (4 s) lapses.
    drop(sibling);
    b.restart();
    let c = Client::new(&b);
    let done = wait_run(&c, repo, 1, "success", Duration::from_secs(120));
    let all = runs(&c, repo);
    assert!(
        all.iter().any(|r| r["outcome"] == "abandoned"),
        "the killed run is marked abandoned: {all:#?}"
    );
    assert_eq!(live_tags(&c, repo), tags);
    assert_eq!(mirror(&c, repo)["sync_status"], "SUCCESS");
    assert!(
        done["tags_unchanged"].as_i64().unwrap_or(0) >= 1,
        "tags copied before the kill are kept: {done:#}"
    );
    for t in &tags {
        assert_eq!(
            local_digest(&c, repo, t),
            local_digest(&upc, "admin/src", t),
            "{t}"
        );
    }

    // With two instances, a sync-now runs once. Then cancel one mid-way.
    let sibling = b.start_sibling();
    let before = runs(&c, repo).len();
    let (s, _) = c.api(
        "POST",
        &format!("/api/v1/repository/{repo}/mirror/sync-now"),
        None,
    );
    assert_eq!(s, 204);
    wait_run(&c, repo, before, "success", Duration::from_secs(60));
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        runs(&c, repo).len(),
        before + 1,
        "one run per sync-now: {:#?}",
        runs(&c, repo)
    );

    for i in 0..150 {
        let t = format!("u{i:03}");
        upc.image(
            "admin/src",
            &t,
            &t,
            &[format!("new layer {t}\n").repeat(2000).as_bytes()],
        );
    }
    let before = runs(&c, repo).len();
    let (s, _) = c.api(
        "POST",
        &format!("/api/v1/repository/{repo}/mirror/sync-now"),
        None,
    );
    assert_eq!(s, 204);
    let deadline = Instant::now() + Duration::from_secs(60);
    while mirror(&c, repo)["sync_status"] != "SYNCING" {
        assert!(Instant::now() < deadline, "no sync started");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (s, v) = c.api(
        "POST",
        &format!("/api/v1/repository/{repo}/mirror/sync-cancel"),
        None,
    );
    assert_eq!(s, 204, "{v}");
    let cancelled = wait_run(&c, repo, before, "cancelled", Duration::from_secs(30));
    let m = mirror(&c, repo);
    assert_eq!(m["sync_status"], "CANCEL");
    assert_eq!(m["sync_retries_remaining"], 0);
    assert!(
        cancelled["tags_copied"].as_i64().unwrap_or(0) < 150,
        "stopped before the end: {cancelled:#}"
    );
    // No further sync runs until sync-now.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(mirror(&c, repo)["sync_status"], "CANCEL");
    drop(sibling);
}

/// `REPO_MIRROR_ROLLBACK: true`: a sync in which a tag fails puts back the tags it changed.
#[test]
fn a_failed_sync_rolls_back_with_repo_mirror_rollback() {
    let Some(up) = Distribution::start() else {
        return;
    };
    let (a1, _) = up.push_image("library/rb", "a", &[b"a one".as_slice()]);
    let (b1, _) = up.push_image("library/rb", "b", &[b"b one".as_slice()]);
    let proxy = common::upstream::FaultProxy::start(&up.host);
    let b = Berth::start_with_env(&mirror_env(&[("BERTH_REPO_MIRROR_ROLLBACK", "true")]));
    let c = Client::new(&b);
    repo_and_robot(&c, "rb", "mirror");
    let repo = "admin/rb";
    let (s, v) = c.api(
        "POST",
        &format!("/api/v1/repository/{repo}/mirror"),
        Some(json!({
            "external_reference": format!("{}/library/rb", proxy.host),
            "external_registry_username": UP_USER,
            "external_registry_password": UP_PASSWORD,
            "external_registry_config": {"verify_tls": false},
            "sync_interval": 3600,
            "sync_start_date": now_date(),
            "root_rule": {"rule_kind": "tag_glob_csv", "rule_value": ["*"]},
            "robot_username": "admin+mirror",
        })),
    );
    assert_eq!(s, 201, "{v}");
    wait_run(&c, repo, 0, "success", Duration::from_secs(60));
    assert_eq!(local_digest(&c, repo, "a"), Some(a1.clone()));
    assert_eq!(local_digest(&c, repo, "b"), Some(b1.clone()));

    // Both move upstream; b's new layer cannot be fetched, so b fails after a was copied.
    let (a2, _) = up.push_image("library/rb", "a", &[b"a two".as_slice()]);
    let (_, b2_blobs) = up.push_image("library/rb", "b", &[b"b two".as_slice()]);
    proxy.set_mode_for(
        &format!("/blobs/{}", b2_blobs[1]),
        common::upstream::Mode::Status(500),
    );
    assert_ne!(a1, a2);
    let before = runs(&c, repo).len();
    let (s, _) = c.api(
        "POST",
        &format!("/api/v1/repository/{repo}/mirror/sync-now"),
        None,
    );
    assert_eq!(s, 204);
    let run = wait_run(&c, repo, before, "failed", Duration::from_secs(90));
    assert_eq!(run["tags_copied"], 1, "{run:#}");
    assert_eq!(run["tags_failed"], 1, "{run:#}");
    assert!(
        run["log"]
            .as_array()
            .expect("log")
            .iter()
            .any(|l| l.as_str() == Some("a: rolled back")),
        "{run:#}"
    );
    assert_eq!(local_digest(&c, repo, "a"), Some(a1), "a is put back");
    assert_eq!(local_digest(&c, repo, "b"), Some(b1), "b never moved");
}
