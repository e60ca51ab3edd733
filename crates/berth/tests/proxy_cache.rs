//! Pull-through cache organizations against a real upstream started here: CNCF Distribution
//! (htpasswd Basic auth) behind a fault-injecting proxy, and a second `berth` (token auth).
//! Shows Quay's API (proxycache, validateproxycache), the first pull of a layer streaming to
//! the client before the upstream finished sending it, a second pull served locally, two
//! concurrent first pulls fetching a blob once, cached tags served (with a Warning) while the
//! upstream is down, answers 429 or 500, an index pulled by tag later pulled by digest with its
//! children while the upstream is gone, and pushes refused.

mod common;

use common::client::{Client, sha};
use common::images::{Layout, Rng, require_tool, run};
use common::upstream::{Distribution, FaultProxy, Mode, UP_PASSWORD, UP_USER};
use common::{ADMIN_PASSWORD, ADMIN_USER, Berth};
use serde_json::{Value, json};
use std::io::Read;
use std::process::Command;
use std::time::Instant;

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const ACCEPT: &str =
    "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json";

fn admin() -> String {
    format!("{ADMIN_USER}:{ADMIN_PASSWORD}")
}

/// `skopeo copy` (with `--all` for indexes) from Berth into a fresh OCI layout.
fn skopeo_pull(b: &Berth, reference: &str, dir: &std::path::Path) -> std::process::Output {
    Command::new(require_tool("skopeo"))
        .args(["copy", "--all", "--src-tls-verify=false", "--src-creds"])
        .arg(admin())
        .arg(format!("docker://{}/{reference}", b.host))
        .arg(format!("oci:{}:x", dir.display()))
        .output()
        .expect("skopeo")
}

fn pulled(b: &Berth, reference: &str, dir: &std::path::Path) {
    let out = skopeo_pull(b, reference, dir);
    assert!(
        out.status.success(),
        "skopeo pull {reference}: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        b.log()
    );
}

fn manifest(c: &Client, path: &str) -> reqwest::blocking::Response {
    c.req("GET", &format!("/v2/{path}"))
        .header("Accept", ACCEPT)
        .send()
        .expect("manifest GET")
}

#[test]
fn a_cache_organization_streams_serves_locally_and_serves_stale() {
    let Some(up) = Distribution::start() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    // Upstream content: library/app:solo (one 3 MiB layer) and library/app:multi (an index of
    // two platforms), pushed by skopeo from a layout.
    let dir = tmp.path().join("layout");
    let mut l = Layout::create(&dir);
    let mut rng = Rng::new();
    let solo = l.image(&mut rng, "amd64", &[3 << 20]);
    l.tag(OCI_MANIFEST, &solo.manifest, "solo");
    let a = l.image(&mut rng, "amd64", &[200_000]);
    let b64 = l.image(&mut rng, "arm64", &[200_000]);
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": a.digest, "size": a.manifest.len(), "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": OCI_MANIFEST, "digest": b64.digest, "size": b64.manifest.len(), "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
        ],
    }))
    .expect("json");
    l.put_blob(&index);
    l.tag(OCI_INDEX, &index, "multi");
    let index_digest = sha(&index);
    for t in ["solo", "multi"] {
        run(Command::new(require_tool("skopeo"))
            .args(["copy", "--all", "--dest-tls-verify=false", "--dest-creds"])
            .arg(format!("{UP_USER}:{UP_PASSWORD}"))
            .arg(format!("oci:{}:{t}", dir.display()))
            .arg(format!("docker://{}/library/app:{t}", up.host)));
    }
    let proxy = FaultProxy::start(&up.host);

    let b = Berth::start_with_env(&[
        ("BERTH_SSRF_ALLOWED_HOSTS", "[\"127.0.0.1\"]"),
        ("BERTH_SECURITY_SCANNER_INDEXING_INTERVAL", "1"),
    ]);
    let c = Client::new(&b);
    let (s, v) = c.api(
        "POST",
        "/api/v1/organization/",
        Some(json!({"name": "cache"})),
    );
    assert!(s == 201 || s == 200, "{s} {v}");
    // Quay's answers, field for field.
    let (s, v) = c.api("GET", "/api/v1/organization/cache/proxycache", None);
    assert_eq!(
        (s, v.clone()),
        (
            200,
            json!({"upstream_registry": "", "expiration_s": "", "insecure": ""})
        ),
        "{v}"
    );
    let body = |pw: &str| {
        json!({"upstream_registry": proxy.host, "upstream_registry_username": UP_USER,
               "upstream_registry_password": pw, "insecure": true, "expiration_s": 3600})
    };
    let (s, v) = c.api(
        "POST",
        "/api/v1/organization/cache/validateproxycache",
        Some(body("wrong")),
    );
    assert_eq!(s, 400, "{v}");
    let (s, v) = c.api(
        "POST",
        "/api/v1/organization/cache/validateproxycache",
        Some(body(UP_PASSWORD)),
    );
    assert_eq!((s, v.clone()), (202, json!("Valid")), "{v}");
    let (s, v) = c.api(
        "POST",
        "/api/v1/organization/cache/proxycache",
        Some(body(UP_PASSWORD)),
    );
    assert_eq!((s, v.clone()), (201, json!("Created")), "{v}");
    let (s, _) = c.api(
        "POST",
        "/api/v1/organization/cache/proxycache",
        Some(body(UP_PASSWORD)),
    );
    assert_eq!(s, 400, "a second configuration");
    let (s, v) = c.api("GET", "/api/v1/organization/cache/proxycache", None);
    assert_eq!(s, 200);
    assert_eq!(
        v,
        json!({"upstream_registry": proxy.host, "expiration_s": 3600, "insecure": true})
    );

    // First pull of solo: the manifest comes from upstream; its 3 MiB layer streams to the
    // client while the upstream (throttled to 1 MiB/s) is still sending it.
    let r = manifest(&c, "cache/library/app/manifests/solo");
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["docker-content-digest"]
            .to_str()
            .expect("digest"),
        solo.digest
    );
    assert!(r.headers().get("warning").is_none());
    proxy.throttle_blobs(Some(1 << 20));
    let layer = &solo.layers[0];
    let asked = Instant::now();
    let mut resp = c
        .req("GET", &format!("/v2/cache/library/app/blobs/{layer}"))
        .send()
        .expect("blob GET");
    assert_eq!(resp.status(), 200);
    let mut first = [0u8; 4096];
    let n = resp.read(&mut first).expect("first bytes");
    let first_at = Instant::now();
    assert!(n > 0);
    let mut all = first[..n].to_vec();
    resp.read_to_end(&mut all).expect("rest");
    proxy.throttle_blobs(None);
    assert_eq!(sha(&all), *layer, "the streamed bytes are the layer");
    let upstream_done = proxy
        .first_event(&format!("end GET /v2/library/app/blobs/{layer}"))
        .expect("the upstream sent the layer");
    assert!(
        first_at < upstream_done,
        "first byte after {:?}, upstream finished after {:?}",
        first_at - asked,
        upstream_done - asked
    );
    eprintln!(
        "first byte after {:?}; upstream finished sending after {:?}",
        first_at - asked,
        upstream_done - asked
    );

    // Two concurrent first pulls of one blob (the config) fetch it from upstream once.
    let config = &solo.config_digest;
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                let r = c
                    .req("GET", &format!("/v2/cache/library/app/blobs/{config}"))
                    .send()
                    .expect("config GET");
                assert_eq!(r.status(), 200);
                assert_eq!(sha(&r.bytes().expect("body")), *config);
            });
        }
    });
    assert_eq!(proxy.count(&format!("/blobs/{config}"), "GET"), 1);

    // A whole pull through skopeo; a second one asks the upstream for no blob.
    pulled(&b, "cache/library/app:solo", &tmp.path().join("p1"));
    let blob_gets = proxy.count("/blobs/", "GET");
    pulled(&b, "cache/library/app:solo", &tmp.path().join("p2"));
    assert_eq!(
        proxy.count("/blobs/", "GET"),
        blob_gets,
        "second pull served locally"
    );
    // Once its layers are stored, the cached image is indexed like a pushed one.
    let deadline = Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (_, v) = c.api(
            "GET",
            &format!(
                "/api/v1/repository/cache/library/app/manifest/{}/security",
                solo.digest
            ),
            None,
        );
        if v["status"] == "scanned" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the cached image was never indexed: {v}"
        );
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    // The index by tag, all platforms.
    pulled(&b, "cache/library/app:multi", &tmp.path().join("p3"));

    // Pushes are refused.
    let out = Command::new(require_tool("skopeo"))
        .args(["copy", "--dest-tls-verify=false", "--dest-creds"])
        .arg(admin())
        .arg(format!("oci:{}:solo", dir.display()))
        .arg(format!("docker://{}/cache/library/app:mine", b.host))
        .output()
        .expect("skopeo");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("pull-through cache"), "{err}");

    // The upstream down, answering 429, answering 500: cached tags still pull, with a Warning.
    for (i, mode) in [
        Mode::Down,
        Mode::TooMany { retry_after_s: 1 },
        Mode::Status(500),
    ]
    .into_iter()
    .enumerate()
    {
        proxy.set_mode(mode);
        let r = manifest(&c, "cache/library/app/manifests/solo");
        assert_eq!(r.status(), 200, "{mode:?}");
        let warning = r.headers()["warning"]
            .to_str()
            .expect("warning")
            .to_string();
        assert!(warning.starts_with("110 "), "{warning}");
        pulled(
            &b,
            "cache/library/app:solo",
            &tmp.path().join(format!("stale{i}")),
        );
        // Not cached: a clear 503, not a hang or a 500.
        let r = manifest(&c, "cache/library/app/manifests/never");
        assert_eq!(r.status(), 503, "{mode:?}");
    }
    // With the upstream gone, the index pulled by tag is pulled by digest, children included.
    proxy.set_mode(Mode::Down);
    pulled(
        &b,
        &format!("cache/library/app@{index_digest}"),
        &tmp.path().join("p4"),
    );
    let r = manifest(&c, &format!("cache/library/app/manifests/{}", b64.digest));
    assert_eq!(r.status(), 200, "a child by digest");
    proxy.set_mode(Mode::Pass);

    let m = c.metrics();
    assert!(m.contains("berth_proxy_cache_requests_total"), "{m}");
    assert!(m.contains("result=\"stale\""), "{m}");
}

/// A second Berth as the upstream: Bearer token auth, and a tag moved upstream is followed.
#[test]
fn a_cache_of_a_token_auth_registry_follows_moved_tags() {
    let upstream = Berth::start();
    let upc = Client::new(&upstream);
    let first = upc.image("admin/src", "v1", "one", &[b"first layer".as_slice()]);
    let b = Berth::start_with_env(&[("BERTH_SSRF_ALLOWED_HOSTS", "[\"127.0.0.1\"]")]);
    let c = Client::new(&b);
    let (s, v) = c.api(
        "POST",
        "/api/v1/organization/",
        Some(json!({"name": "mirrorcache"})),
    );
    assert!(s == 201 || s == 200, "{s} {v}");
    let (s, v) = c.api(
        "POST",
        "/api/v1/organization/mirrorcache/proxycache",
        Some(json!({"upstream_registry": format!("{}/admin", upstream.host),
                    "upstream_registry_username": ADMIN_USER, "upstream_registry_password": ADMIN_PASSWORD,
                    "insecure": true})),
    );
    assert_eq!(s, 201, "{v}");
    // The upstream namespace is configured: local mirrorcache/src is upstream admin/src.
    let r = manifest(&c, "mirrorcache/src/manifests/v1");
    assert_eq!(r.status(), 200, "{}", b.log());
    assert_eq!(
        r.headers()["docker-content-digest"].to_str().expect("d"),
        first.digest
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    pulled(&b, "mirrorcache/src:v1", &tmp.path().join("a"));
    let second = upc.image("admin/src", "v1", "two", &[b"second layer".as_slice()]);
    let r = manifest(&c, "mirrorcache/src/manifests/v1");
    assert_eq!(
        r.headers()["docker-content-digest"].to_str().expect("d"),
        second.digest
    );
    pulled(&b, "mirrorcache/src:v1", &tmp.path().join("b"));
    // The cached repository was created on the first pull, and lists the tag.
    let (s, v): (u16, Value) = c.api(
        "GET",
        "/api/v1/repository/mirrorcache/src?includeTags=true",
        None,
    );
    assert_eq!(s, 200, "{v}");
}

/// podman configured with Berth as a docker.io mirror (`[[registry.mirror]]`) sends
/// `/v2/library/app/...`; with `PROXY_CACHE_MIRROR_ORG` the cache organization answers it, and
/// the first pull streams through it.
#[test]
fn podman_uses_berth_as_a_docker_io_mirror() {
    use base64::Engine;
    let Some(up) = Distribution::start_open() else {
        return;
    };
    let podman_bin = require_tool("podman");
    let layer = common::images::gzip(&common::images::tar(&[(
        "srv/hello.txt".to_string(),
        b"pulled through a Berth mirror\n".repeat(10_000),
    )]));
    let (digest, _) = up.push_image("library/app", "solo", &[&layer]);
    let b = Berth::start_with_env(&[
        ("BERTH_SSRF_ALLOWED_HOSTS", "[\"127.0.0.1\"]"),
        ("BERTH_PROXY_CACHE_MIRROR_ORG", "hub"),
    ]);
    let c = Client::new(&b);
    let (s, v) = c.api(
        "POST",
        "/api/v1/organization/",
        Some(json!({"name": "hub"})),
    );
    assert!(s == 201 || s == 200, "{s} {v}");
    let (s, v) = c.api(
        "POST",
        "/api/v1/organization/hub/proxycache",
        Some(json!({"upstream_registry": up.host, "insecure": true})),
    );
    assert_eq!(s, 201, "{v}");
    // The name without a namespace here is the mirror organization's.
    let r = manifest(&c, "library/app/manifests/solo");
    assert_eq!(r.status(), 200, "{}", b.log());
    assert_eq!(
        r.headers()["docker-content-digest"].to_str().expect("d"),
        digest
    );

    let tmp = tempfile::Builder::new()
        .prefix("berth-podman-mirror")
        .tempdir()
        .expect("tempdir");
    let conf = tmp.path().join("registries.conf");
    std::fs::write(
        &conf,
        format!(
            "unqualified-search-registries = []\n\n[[registry]]\nprefix = \"docker.io\"\nlocation = \"docker.io\"\n\n[[registry.mirror]]\nlocation = \"{}\"\ninsecure = true\n",
            b.host
        ),
    )
    .expect("registries.conf");
    let auth = tmp.path().join("auth.json");
    let basic = base64::engine::general_purpose::STANDARD.encode(admin());
    std::fs::write(
        &auth,
        json!({"auths": {&b.host: {"auth": basic}}}).to_string(),
    )
    .expect("auth");
    let policy = tmp.path().join("policy.json");
    std::fs::write(
        &policy,
        br#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
    )
    .expect("policy");
    for d in ["root", "runroot", "tmp"] {
        std::fs::create_dir_all(tmp.path().join(d)).expect("dirs");
    }
    let out = Command::new(podman_bin)
        .arg("--root")
        .arg(tmp.path().join("root"))
        .arg("--runroot")
        .arg(tmp.path().join("runroot"))
        .arg("--tmpdir")
        .arg(tmp.path().join("tmp"))
        .args([
            "--storage-driver",
            "vfs",
            "--cgroup-manager",
            "cgroupfs",
            "--events-backend",
            "file",
        ])
        .args(["pull", "--quiet"])
        .arg(format!("--signature-policy={}", policy.display()))
        .arg("docker.io/library/app:solo")
        .env("CONTAINERS_REGISTRIES_CONF", &conf)
        .env("REGISTRY_AUTH_FILE", &auth)
        .env("TMPDIR", tmp.path().join("tmp"))
        .output()
        .expect("podman");
    assert!(
        out.status.success(),
        "podman pull through the mirror: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        b.log()
    );
    let (s, v) = c.api("GET", "/api/v1/repository/hub/library/app", None);
    assert_eq!(s, 200, "the cached repository: {v}");
}

/// Several upstreams (Berth's `fallback_upstreams`): while the first cannot answer, the next
/// one serves first pulls — fresh, without a Warning — and when the first is back it answers
/// again.
#[test]
fn a_cache_fails_over_to_its_next_upstream() {
    let Some(up) = Distribution::start() else {
        return;
    };
    let (digest, _) = up.push_image("library/fo", "v1", &[b"failover layer".as_slice()]);
    let proxy = FaultProxy::start(&up.host);
    proxy.set_mode(Mode::Down);
    let b = Berth::start_with_env(&[("BERTH_SSRF_ALLOWED_HOSTS", "[\"127.0.0.1\"]")]);
    let c = Client::new(&b);
    let (s, v) = c.api("POST", "/api/v1/organization/", Some(json!({"name": "fo"})));
    assert!(s == 201 || s == 200, "{s} {v}");
    let up_body = |host: &str| {
        json!({"upstream_registry": host, "upstream_registry_username": UP_USER,
               "upstream_registry_password": UP_PASSWORD, "insecure": true})
    };
    let mut body = up_body(&proxy.host);
    body["fallback_upstreams"] = json!([up_body(&up.host)]);
    let (s, v) = c.api("POST", "/api/v1/organization/fo/proxycache", Some(body));
    assert_eq!((s, v.clone()), (201, json!("Created")), "{v}");
    let (_, v) = c.api("GET", "/api/v1/organization/fo/proxycache", None);
    assert_eq!(
        v["fallback_upstreams"],
        json!([{"upstream_registry": up.host, "insecure": true}]),
        "{v}"
    );
    assert!(!v.to_string().contains(UP_PASSWORD), "{v}");

    // The first upstream is down: the first pull comes from the second, fresh.
    let r = manifest(&c, "fo/library/fo/manifests/v1");
    assert_eq!(r.status(), 200, "{}", b.log());
    assert!(
        r.headers().get("warning").is_none(),
        "fresh from the fallback"
    );
    assert_eq!(
        r.headers()["docker-content-digest"].to_str().expect("d"),
        digest
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    pulled(&b, "fo/library/fo:v1", &tmp.path().join("a"));
    assert!(
        proxy.count("/v2/", "GET") + proxy.count("/v2/", "HEAD") > 0,
        "the first was tried"
    );

    // The first is back: it answers the next check.
    proxy.set_mode(Mode::Pass);
    let before = proxy.count("/manifests/v1", "HEAD");
    let r = manifest(&c, "fo/library/fo/manifests/v1");
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("warning").is_none());
    assert!(
        proxy.count("/manifests/v1", "HEAD") > before,
        "the first upstream answered again"
    );
}

/// A quota on a cache organization evicts the least recently pulled tags to make room for a
/// pull instead of failing it.
#[test]
fn a_cache_quota_evicts_the_least_recently_pulled_tags() {
    let Some(up) = Distribution::start() else {
        return;
    };
    for (i, t) in ["one", "two", "three"].iter().enumerate() {
        let layer = vec![u8::try_from(i + 1).expect("small"); 400_000];
        up.push_image("library/q", t, &[layer.as_slice()]);
    }
    let b = Berth::start_with_env(&[("BERTH_SSRF_ALLOWED_HOSTS", "[\"127.0.0.1\"]")]);
    let c = Client::new(&b);
    let (s, v) = c.api("POST", "/api/v1/organization/", Some(json!({"name": "qc"})));
    assert!(s == 201 || s == 200, "{s} {v}");
    let (s, v) = c.api(
        "POST",
        "/api/v1/organization/qc/proxycache",
        Some(
            json!({"upstream_registry": up.host, "upstream_registry_username": UP_USER,
                    "upstream_registry_password": UP_PASSWORD, "insecure": true}),
        ),
    );
    assert_eq!(s, 201, "{v}");
    let (s, v) = c.api(
        "POST",
        "/api/v1/organization/qc/quota",
        Some(json!({"limit_bytes": 1_000_000})),
    );
    assert_eq!(s, 201, "{v}");
    let (_, list) = c.api("GET", "/api/v1/organization/qc/quota", None);
    let qid = list[0]["id"].as_i64().expect("quota id");
    let (s, v) = c.api(
        "POST",
        &format!("/api/v1/organization/qc/quota/{qid}/limit"),
        Some(json!({"type": "Reject", "threshold_percent": 100})),
    );
    assert_eq!(s, 201, "{v}");
    let live = || -> Vec<String> {
        let (_, v) = c.api(
            "GET",
            "/api/v1/repository/qc/library/q/tag/?onlyActiveTags=true",
            None,
        );
        let mut t: Vec<String> = v["tags"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x["name"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        t.sort();
        t
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    pulled(&b, "qc/library/q:one", &tmp.path().join("1"));
    pulled(&b, "qc/library/q:two", &tmp.path().join("2"));
    assert_eq!(live(), ["one", "two"]);
    // A third 400 kB layer does not fit in 1 MB: "one", pulled least recently, makes room.
    pulled(&b, "qc/library/q:three", &tmp.path().join("3"));
    assert_eq!(live(), ["three", "two"], "{}", b.log());
    // Pulling "one" again fetches it anew, and evicts "two" now.
    pulled(&b, "qc/library/q:one", &tmp.path().join("1b"));
    assert_eq!(live(), ["one", "three"], "{}", b.log());
    let (_, logs) = c.api("GET", "/api/v1/repository/qc/library/q/logs", None);
    let evictions = logs["logs"]
        .as_array()
        .expect("logs")
        .iter()
        .filter(|l| l["kind"] == "delete_tag" && l["metadata"]["evicted"] == true)
        .count();
    assert_eq!(evictions, 2, "{logs:#}");
}
