//! Integration tests with real registry clients against a real Berth over plain http on
//! 127.0.0.1: skopeo (OCI image, multi-arch index, Docker schema 2), podman (push/pull through
//! its own store) and the `oras` Python library (artifacts with `subject`, the referrers API).
//!
//! The clients are installed by `./scripts/test.sh`; a missing client fails the test with a
//! message saying so. Images are built here from random bytes as OCI image layouts (tar layers,
//! gzip-compressed, with a real image config), so nothing is fetched from the network.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::Berth;
use serde_json::{Value, json};

use common::images::*;

/// One containers-auth.json for this test process, holding the test superuser's credentials for
/// every server started through [`start_logged_in`] (what `skopeo login` / `podman login` write).
fn auth_file() -> PathBuf {
    std::env::temp_dir().join(format!("berth-test-auth-{}.json", std::process::id()))
}

static AUTH_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Starts a server and records the superuser's login for it in [`auth_file`].
fn start_logged_in() -> Berth {
    use base64::Engine;
    let b = Berth::start();
    let _g = AUTH_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let path = auth_file();
    let mut v: Value = std::fs::read(&path)
        .ok()
        .and_then(|d| serde_json::from_slice(&d).ok())
        .unwrap_or_else(|| json!({"auths": {}}));
    let auth = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        common::ADMIN_USER,
        common::ADMIN_PASSWORD
    ));
    v["auths"][&b.host] = json!({ "auth": auth });
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec(&v).expect("json")).expect("write auth file");
    std::fs::rename(&tmp, &path).expect("publish auth file");
    b
}

fn skopeo() -> Command {
    let mut c = Command::new(require_tool("skopeo"));
    c.env("REGISTRY_AUTH_FILE", auth_file());
    // No dependence on the machine's /etc/containers/policy.json.
    c.arg("--insecure-policy");
    c
}

fn stdout_json(out: &Output) -> Value {
    parse(&out.stdout)
}

/// What `skopeo inspect --raw` prints: the manifest exactly as the registry serves it.
fn skopeo_raw(reference: &str) -> Vec<u8> {
    run(skopeo()
        .args(["inspect", "--tls-verify=false", "--raw"])
        .arg(reference))
    .stdout
}

/// Prints the server's log when the test fails, to tell a server bug from a test mistake.
struct LogOnFailure<'a>(&'a Berth);

impl Drop for LogOnFailure<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- berth log ({})\n{}", self.0.host, self.0.log());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Talking to the registry directly.

struct Resp {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("header value is text").to_string())
    }
}

fn http(method: &str, url: &str, headers: &[(&str, &str)]) -> Resp {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .default_headers(common::admin_headers())
            .build()
            .expect("client");
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = client.request(method.clone(), url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp
            .bytes()
            .await
            .unwrap_or_else(|e| panic!("{method} {url}: body: {e}"))
            .to_vec();
        Resp {
            status,
            headers,
            body,
        }
    })
}

fn describe(method: &str, url: &str, r: &Resp) -> String {
    format!(
        "{method} {url} -> {} {:?}\n{}",
        r.status,
        r.headers,
        String::from_utf8_lossy(&r.body[..r.body.len().min(2000)])
    )
}

/// GET a manifest; checks status 200 and that the body matches Docker-Content-Digest if sent.
fn get_manifest(b: &Berth, repo: &str, reference: &str, accept: &str) -> Resp {
    let url = b.url(&format!("/v2/{repo}/manifests/{reference}"));
    let r = http("GET", &url, &[("Accept", accept)]);
    assert_eq!(r.status, 200, "{}", describe("GET", &url, &r));
    if let Some(d) = r.header("docker-content-digest") {
        assert_eq!(
            d,
            sha256_digest(&r.body),
            "Docker-Content-Digest does not match the body: {}",
            describe("GET", &url, &r)
        );
    }
    if reference.starts_with("sha256:") {
        assert_eq!(
            sha256_digest(&r.body),
            reference,
            "manifest fetched by digest has other bytes: {}",
            describe("GET", &url, &r)
        );
    }
    r
}

/// GET a blob and check its bytes against the digest.
fn check_blob(b: &Berth, repo: &str, digest: &str) {
    let url = b.url(&format!("/v2/{repo}/blobs/{digest}"));
    let r = http("GET", &url, &[]);
    assert_eq!(r.status, 200, "{}", describe("GET", &url, &r));
    assert_eq!(
        sha256_digest(&r.body),
        digest,
        "blob bytes do not match their digest: GET {url} -> {} bytes",
        r.body.len()
    );
}

fn content_type(r: &Resp) -> String {
    r.header("content-type")
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_string()
}

// ---------------------------------------------------------------------------------------------
// skopeo

#[test]
fn skopeo_copies_an_oci_image_both_ways() {
    require_tool("skopeo");
    let b = start_logged_in();
    let _log = LogOnFailure(&b);
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("src");
    let mut layout = Layout::create(&src);
    let mut rng = Rng::new();
    let img = layout.image(&mut rng, "amd64", &[20_000, 300_000, 6_000_000, 700]);
    layout.tag(OCI_MANIFEST, &img.manifest, "v1");

    let remote = format!("docker://{}/ns/img:v1", b.host);
    run(skopeo()
        .args(["copy", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:v1", src.display()))
        .arg(&remote));

    // The registry serves exactly the manifest that was pushed, and every blob.
    let raw = skopeo_raw(&remote);
    assert_eq!(
        raw,
        img.manifest,
        "skopeo inspect --raw differs from the pushed manifest:\n{}",
        String::from_utf8_lossy(&raw)
    );
    let r = get_manifest(&b, "ns/img", "v1", ACCEPT_ALL_MANIFESTS);
    assert_eq!(r.body, img.manifest);
    assert_eq!(content_type(&r), OCI_MANIFEST);
    get_manifest(&b, "ns/img", &img.digest, OCI_MANIFEST);
    check_blob(&b, "ns/img", &img.config_digest);
    for l in &img.layers {
        check_blob(&b, "ns/img", l);
    }

    let info = stdout_json(&run(skopeo()
        .args(["inspect", "--tls-verify=false"])
        .arg(&remote)));
    assert_eq!(
        info["Digest"],
        img.digest.as_str(),
        "skopeo inspect: {info}"
    );
    assert_eq!(info["Architecture"], "amd64", "skopeo inspect: {info}");
    assert_eq!(info["Os"], "linux", "skopeo inspect: {info}");
    assert_eq!(info["Layers"], json!(img.layers), "skopeo inspect: {info}");

    let tags = stdout_json(&run(skopeo()
        .args(["list-tags", "--tls-verify=false"])
        .arg(format!("docker://{}/ns/img", b.host))));
    assert_eq!(tags["Tags"], json!(["v1"]), "skopeo list-tags: {tags}");

    // Pull it back into a fresh layout: same manifest digest, same config and layers.
    let out = tmp.path().join("out");
    run(skopeo()
        .args(["copy", "--src-tls-verify=false"])
        .arg(&remote)
        .arg(format!("oci:{}:v1", out.display())));
    let desc = layout_ref(&out, "v1");
    assert_eq!(desc["digest"], img.digest.as_str(), "pulled: {desc}");
    let manifest = check_layout_image(&out, &img.digest);
    assert_eq!(manifest["config"]["digest"], img.config_digest.as_str());
    assert_eq!(digests_of(&manifest["layers"]), img.layers);

    // Registry to registry, into another repository (skopeo may try a cross-repo mount).
    let other = format!("docker://{}/other/copy:v1", b.host);
    run(skopeo()
        .args(["copy", "--src-tls-verify=false", "--dest-tls-verify=false"])
        .arg(&remote)
        .arg(&other));
    assert_eq!(skopeo_raw(&other), img.manifest);
    for l in &img.layers {
        check_blob(&b, "other/copy", l);
    }

    // skopeo delete resolves the tag and deletes the manifest by digest: the tag goes with it,
    // the first repository keeps its copy.
    run(skopeo().args(["delete", "--tls-verify=false"]).arg(&other));
    for reference in ["v1", img.digest.as_str()] {
        let url = b.url(&format!("/v2/other/copy/manifests/{reference}"));
        let r = http("GET", &url, &[("Accept", ACCEPT_ALL_MANIFESTS)]);
        assert_eq!(
            r.status,
            404,
            "after skopeo delete: {}",
            describe("GET", &url, &r)
        );
    }
    assert_eq!(skopeo_raw(&remote), img.manifest);
}

/// A layout with one OCI index, tagged `multi`, of a linux/amd64 and a linux/arm64/v8 image.
fn multi_arch_layout(dir: &Path) -> (Image, Image, Vec<u8>) {
    let mut layout = Layout::create(dir);
    let mut rng = Rng::new();
    let amd = layout.image(&mut rng, "amd64", &[10_000, 200_000, 50_000]);
    let arm = layout.image(&mut rng, "arm64", &[12_000, 150_000, 80_000]);
    let mut amd_desc = descriptor(OCI_MANIFEST, &amd.manifest);
    amd_desc["platform"] = json!({ "architecture": "amd64", "os": "linux" });
    let mut arm_desc = descriptor(OCI_MANIFEST, &arm.manifest);
    arm_desc["platform"] = json!({ "architecture": "arm64", "os": "linux", "variant": "v8" });
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [amd_desc, arm_desc],
    }))
    .expect("json");
    layout.put_blob(&index);
    layout.tag(OCI_INDEX, &index, "multi");
    (amd, arm, index)
}

#[test]
fn skopeo_copies_a_multi_arch_index_with_all() {
    require_tool("skopeo");
    let b = start_logged_in();
    let _log = LogOnFailure(&b);
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("src");
    let (amd, arm, index) = multi_arch_layout(&src);
    let index_digest = sha256_digest(&index);

    let remote = format!("docker://{}/ns/multi:v1", b.host);
    run(skopeo()
        .args(["copy", "--all", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:multi", src.display()))
        .arg(&remote));

    assert_eq!(skopeo_raw(&remote), index, "index changed on the way");
    let r = get_manifest(&b, "ns/multi", "v1", ACCEPT_ALL_MANIFESTS);
    assert_eq!(content_type(&r), OCI_INDEX);
    assert_eq!(sha256_digest(&r.body), index_digest);
    for child in [&amd, &arm] {
        let r = get_manifest(&b, "ns/multi", &child.digest, ACCEPT_ALL_MANIFESTS);
        assert_eq!(r.body, child.manifest);
        assert_eq!(content_type(&r), OCI_MANIFEST);
        let raw = skopeo_raw(&format!("docker://{}/ns/multi@{}", b.host, child.digest));
        assert_eq!(raw, child.manifest);
        for l in &child.layers {
            check_blob(&b, "ns/multi", l);
        }
    }

    // Everything back into a fresh layout.
    let out = tmp.path().join("out");
    run(skopeo()
        .args(["copy", "--all", "--src-tls-verify=false"])
        .arg(&remote)
        .arg(format!("oci:{}:multi", out.display())));
    let desc = layout_ref(&out, "multi");
    assert_eq!(desc["digest"], index_digest.as_str(), "pulled: {desc}");
    let pulled = parse(&layout_blob(&out, &index_digest));
    assert_eq!(
        digests_of(&pulled["manifests"]),
        vec![amd.digest.clone(), arm.digest.clone()]
    );
    for child in [&amd, &arm] {
        let m = check_layout_image(&out, &child.digest);
        assert_eq!(digests_of(&m["layers"]), child.layers);
        assert_eq!(m["config"]["digest"], child.config_digest.as_str());
    }

    // Without --all, skopeo picks the platform's child from the index.
    let arm_out = tmp.path().join("arm");
    run(skopeo()
        .args(["--override-arch", "arm64", "--override-os", "linux"])
        .args(["copy", "--src-tls-verify=false"])
        .arg(&remote)
        .arg(format!("oci:{}:arm", arm_out.display())));
    let desc = layout_ref(&arm_out, "arm");
    assert_eq!(desc["digest"], arm.digest.as_str(), "arm64 pull: {desc}");
    check_layout_image(&arm_out, &arm.digest);
}

#[test]
fn skopeo_pushes_and_pulls_docker_schema2() {
    require_tool("skopeo");
    let b = start_logged_in();
    let _log = LogOnFailure(&b);
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("src");
    let mut layout = Layout::create(&src);
    let mut rng = Rng::new();
    let img = layout.image(&mut rng, "amd64", &[30_000, 100_000, 5_000]);
    layout.tag(OCI_MANIFEST, &img.manifest, "v1");

    let remote = format!("docker://{}/ns/docker2:v1", b.host);
    run(skopeo()
        .args(["copy", "--format", "v2s2", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:v1", src.display()))
        .arg(&remote));

    let raw = skopeo_raw(&remote);
    let m = parse(&raw);
    assert_eq!(m["schemaVersion"], 2, "{m}");
    assert_eq!(m["mediaType"], DOCKER_MANIFEST, "{m}");
    assert_eq!(m["config"]["mediaType"], DOCKER_CONFIG, "{m}");
    assert_eq!(digests_of(&m["layers"]), img.layers, "{m}");
    for l in m["layers"].as_array().expect("layers") {
        assert_eq!(l["mediaType"], DOCKER_LAYER_GZIP, "{m}");
    }
    let digest = sha256_digest(&raw);

    let r = get_manifest(&b, "ns/docker2", "v1", DOCKER_MANIFEST);
    assert_eq!(content_type(&r), DOCKER_MANIFEST, "{:?}", r.headers);
    assert_eq!(r.body, raw);
    let r = get_manifest(&b, "ns/docker2", &digest, ACCEPT_ALL_MANIFESTS);
    assert_eq!(content_type(&r), DOCKER_MANIFEST, "{:?}", r.headers);
    let url = b.url(&format!("/v2/ns/docker2/manifests/{digest}"));
    let head = http("HEAD", &url, &[("Accept", DOCKER_MANIFEST)]);
    assert_eq!(head.status, 200, "{}", describe("HEAD", &url, &head));
    check_blob(
        &b,
        "ns/docker2",
        m["config"]["digest"].as_str().expect("config"),
    );

    let info = stdout_json(&run(skopeo()
        .args(["inspect", "--tls-verify=false"])
        .arg(&remote)));
    assert_eq!(info["Digest"], digest.as_str(), "skopeo inspect: {info}");

    // dir: keeps the manifest as served and every blob under its hex digest.
    let out = tmp.path().join("dir");
    run(skopeo()
        .args(["copy", "--src-tls-verify=false"])
        .arg(&remote)
        .arg(format!("dir:{}", out.display())));
    assert_eq!(
        std::fs::read(out.join("manifest.json")).expect("manifest.json"),
        raw
    );
    let mut blobs = digests_of(&m["layers"]);
    blobs.push(m["config"]["digest"].as_str().expect("config").to_string());
    for d in blobs {
        let path = out.join(d.trim_start_matches("sha256:"));
        let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(sha256_digest(&data), d);
    }
}

#[test]
fn skopeo_pushes_a_docker_manifest_list() {
    require_tool("skopeo");
    let b = start_logged_in();
    let _log = LogOnFailure(&b);
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("src");
    let (amd, arm, _) = multi_arch_layout(&src);

    // --all --format v2s2 turns the OCI index into a Docker manifest list of schema 2 manifests.
    let remote = format!("docker://{}/ns/list:v1", b.host);
    run(skopeo()
        .args([
            "copy",
            "--all",
            "--format",
            "v2s2",
            "--dest-tls-verify=false",
        ])
        .arg(format!("oci:{}:multi", src.display()))
        .arg(&remote));
    let raw = skopeo_raw(&remote);
    let list = parse(&raw);
    assert_eq!(list["mediaType"], DOCKER_MANIFEST_LIST, "{list}");
    let r = get_manifest(&b, "ns/list", "v1", DOCKER_MANIFEST_LIST);
    assert_eq!(content_type(&r), DOCKER_MANIFEST_LIST, "{:?}", r.headers);
    assert_eq!(r.body, raw);
    let children = list["manifests"].as_array().expect("manifests");
    assert_eq!(children.len(), 2, "{list}");
    for (child, img, arch) in [(&children[0], &amd, "amd64"), (&children[1], &arm, "arm64")] {
        assert_eq!(child["mediaType"], DOCKER_MANIFEST, "{list}");
        assert_eq!(child["platform"]["architecture"], arch, "{list}");
        let digest = child["digest"].as_str().expect("digest");
        let r = get_manifest(&b, "ns/list", digest, ACCEPT_ALL_MANIFESTS);
        assert_eq!(content_type(&r), DOCKER_MANIFEST, "{:?}", r.headers);
        assert_eq!(child["size"], r.body.len(), "{list}");
        let m = parse(&r.body);
        assert_eq!(digests_of(&m["layers"]), img.layers, "{m}");
    }

    // A platform's image out of the list, into dir: (which keeps the manifest as served).
    let out = tmp.path().join("arm");
    run(skopeo()
        .args(["--override-arch", "arm64", "--override-os", "linux"])
        .args(["copy", "--src-tls-verify=false"])
        .arg(&remote)
        .arg(format!("dir:{}", out.display())));
    let pulled = std::fs::read(out.join("manifest.json")).expect("manifest.json");
    assert_eq!(
        json!(sha256_digest(&pulled)),
        children[1]["digest"],
        "arm64 child"
    );
}

// ---------------------------------------------------------------------------------------------
// podman

struct Podman {
    root: PathBuf,
    runroot: PathBuf,
    tmpdir: PathBuf,
    policy: PathBuf,
    bin: PathBuf,
}

impl Podman {
    fn new(dir: &Path) -> Podman {
        let p = Podman {
            root: dir.join("root"),
            runroot: dir.join("runroot"),
            tmpdir: dir.join("tmp"),
            policy: dir.join("policy.json"),
            bin: require_tool("podman"),
        };
        for d in [&p.root, &p.runroot, &p.tmpdir] {
            std::fs::create_dir_all(d).expect("podman dirs");
        }
        std::fs::write(
            &p.policy,
            br#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
        )
        .expect("policy.json");
        p
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--root")
            .arg(&self.root)
            .arg("--runroot")
            .arg(&self.runroot)
            .arg("--tmpdir")
            .arg(&self.tmpdir)
            .args([
                "--storage-driver",
                "vfs",
                "--cgroup-manager",
                "cgroupfs",
                "--events-backend",
                "file",
            ])
            .env("TMPDIR", &self.tmpdir)
            .env("REGISTRY_AUTH_FILE", auth_file());
        c
    }

    fn inspect(&self, image: &str) -> Value {
        let v = stdout_json(&run(self.cmd().args(["image", "inspect", image])));
        v.as_array()
            .and_then(|a| a.first())
            .cloned()
            .unwrap_or_else(|| panic!("podman image inspect {image}: {v}"))
    }
}

#[test]
fn podman_pushes_and_pulls_back() {
    require_tool("podman");
    let b = start_logged_in();
    let _log = LogOnFailure(&b);
    let mut rng = Rng::new();
    // podman names an image pulled from `oci:DIR` after DIR, so DIR must be lowercase.
    let tmp = tempfile::Builder::new()
        .prefix(&format!("berth-podman-{}", rng.word()))
        .rand_bytes(0)
        .tempdir()
        .expect("tempdir");
    let src = tmp.path().join("src");
    let mut layout = Layout::create(&src);
    let img = layout.image(&mut rng, "amd64", &[40_000, 250_000, 9_000]);
    layout.tag(OCI_MANIFEST, &img.manifest, "v1");
    let podman = Podman::new(&tmp.path().join("podman"));
    let policy = format!("--signature-policy={}", podman.policy.display());

    let pulled = run(podman
        .cmd()
        .args(["pull", "--quiet", &policy])
        .arg(format!("oci:{}:v1", src.display())));
    let id = String::from_utf8_lossy(&pulled.stdout).trim().to_string();
    let local = podman.inspect(&id);
    assert_eq!(
        format!("sha256:{}", local["Id"].as_str().expect("Id")),
        img.config_digest,
        "podman image inspect: {local}"
    );
    assert_eq!(local["RootFS"]["Layers"], json!(img.diff_ids), "{local}");

    // Push under a registry name, check what arrived, forget the image, pull it back.
    let target = format!("{}/ns/pod:v1", b.host);
    let digest_file = tmp.path().join("pushed.digest");
    run(podman.cmd().args(["tag", &id, &target]));
    run(podman
        .cmd()
        .args(["push", "--tls-verify=false", &policy, "--digestfile"])
        .arg(&digest_file)
        .arg(&target));
    let r = get_manifest(&b, "ns/pod", "v1", ACCEPT_ALL_MANIFESTS);
    let pushed_digest = sha256_digest(&r.body);
    let pushed_file = std::fs::read_to_string(&digest_file).expect("read digestfile");
    assert_eq!(pushed_file.trim(), pushed_digest, "podman --digestfile");
    let manifest = parse(&r.body);
    let config_digest = manifest["config"]["digest"]
        .as_str()
        .expect("config")
        .to_string();
    check_blob(&b, "ns/pod", &config_digest);
    let config = parse(
        &http(
            "GET",
            &b.url(&format!("/v2/ns/pod/blobs/{config_digest}")),
            &[],
        )
        .body,
    );
    assert_eq!(
        config["rootfs"]["diff_ids"],
        json!(img.diff_ids),
        "{config}"
    );
    let layers = digests_of(&manifest["layers"]);
    assert_eq!(layers.len(), img.layers.len(), "{manifest}");
    for l in &layers {
        check_blob(&b, "ns/pod", l);
    }

    run(podman.cmd().args(["rmi", "--all", "--force"]));
    let left = run(podman.cmd().args(["images", "--all", "--quiet"]));
    assert!(
        String::from_utf8_lossy(&left.stdout).trim().is_empty(),
        "images left after rmi --all: {}",
        String::from_utf8_lossy(&left.stdout)
    );

    run(podman
        .cmd()
        .args(["pull", "--quiet", "--tls-verify=false", &policy])
        .arg(&target));
    let back = podman.inspect(&target);
    assert_eq!(back["Digest"], pushed_digest.as_str(), "{back}");
    assert_eq!(back["RootFS"]["Layers"], json!(img.diff_ids), "{back}");
    assert_eq!(
        format!("sha256:{}", back["Id"].as_str().expect("Id")),
        config_digest,
        "{back}"
    );
    let repo_digest = format!("{}/ns/pod@{pushed_digest}", b.host);
    assert!(
        back["RepoDigests"]
            .as_array()
            .is_some_and(|a| a.iter().any(|d| d == repo_digest.as_str())),
        "{repo_digest} not in RepoDigests: {back}"
    );
}

// ---------------------------------------------------------------------------------------------
// oras (the Python library)

/// Drives the `oras` Python library; one JSON argument says what to do, one JSON line answers.
const ORAS_SCRIPT: &str = r#"
import dataclasses, hashlib, json, os, sys
import oras.client, oras.defaults, oras.oci, oras.provider

# Fail at once on a server error instead of oras' retries with growing back-off.
oras.provider.Registry.do_request = oras.provider.Registry.do_request.__wrapped__

a = json.loads(sys.argv[1])
os.chdir(a["work"])
host, repo = a["host"], a["repo"]
client = oras.client.OrasClient(hostname=host, insecure=True)
client.login(username=a["user"], password=a["password"], hostname=host,
             config_path=os.path.join(a["work"], "docker-config.json"))


def answer(r, **extra):
    print(json.dumps({
        "status": r.status_code,
        "headers": {k.lower(): v for k, v in r.headers.items()},
        "body": r.text[:2000],
        **extra,
    }))


def subject():
    s = a["subject"]
    return oras.oci.Subject(mediaType=s["mediaType"], digest=s["digest"], size=s["size"])


def ok(r):
    if r.status_code not in (200, 201, 202):
        raise SystemExit(f"{r.request.method} {r.request.url} -> {r.status_code} {r.headers} {r.text[:2000]}")


if a["cmd"] == "push-base":
    # An image: a real config and one uncompressed tar layer, pushed by tag.
    r = client.push(
        target=f"{host}/{repo}:base",
        files=["base.tar:application/vnd.oci.image.layer.v1.tar"],
        manifest_config="base-config.json:application/vnd.oci.image.config.v1+json",
        quiet=True,
    )
    answer(r)
elif a["cmd"] == "push-sbom":
    # Blob by blob, then a manifest with artifactType and subject, pushed by digest (no tag).
    container = client.get_container(f"{host}/{repo}:unused")
    with open("empty.json", "w") as f:
        f.write("{}")
    conf = {"mediaType": "application/vnd.oci.empty.v1+json",
            "digest": oras.defaults.blank_config_hash, "size": 2}
    ok(client.upload_blob("empty.json", container, conf))
    layer = oras.oci.NewLayer("sbom.spdx.json", media_type="application/spdx+json")
    layer["annotations"] = {oras.defaults.annotation_title: "sbom.spdx.json"}
    ok(client.upload_blob("sbom.spdx.json", container, layer))
    manifest = oras.oci.NewManifest()
    manifest["artifactType"] = "application/spdx+json"
    manifest["config"] = conf
    manifest["layers"] = [layer]
    manifest["subject"] = dataclasses.asdict(subject())
    manifest["annotations"] = {"org.opencontainers.image.created": "2024-01-01T00:00:00Z",
                               "org.example.sbom.format": "spdx"}
    # requests sends json.dumps(manifest) as it is: that is the digest the registry must see.
    body = json.dumps(manifest).encode()
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    r = client.upload_manifest(manifest, client.get_container(f"{host}/{repo}@{digest}"))
    answer(r, digest=digest, size=len(body))
elif a["cmd"] == "push-sig":
    # oras' own push: no artifactType (so the config mediaType stands in), chunked uploads.
    r = client.push(
        target=f"{host}/{repo}:sig",
        files=["sig.bin:application/vnd.example.signature.v1"],
        manifest_config="sig-config.json:application/vnd.example.signature.config.v1+json",
        manifest_annotations={"org.example.kind": "signature"},
        subject=subject(),
        do_chunked=True,
        chunk_size=4096,
        quiet=True,
    )
    answer(r)
elif a["cmd"] == "pull":
    files = client.pull(target=f"{host}/{repo}{a['ref']}", outdir=a["outdir"])
    print(json.dumps({"files": files}))
else:
    raise SystemExit("unknown cmd " + a["cmd"])
"#;

/// A Python interpreter that can `import oras`: `python3` on PATH (the venv's bin dir, as
/// ./scripts/test.sh arranges) or target/test-venv/bin/python of this workspace.
fn oras_python() -> PathBuf {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-venv/bin/python");
    let path = std::env::var_os("PATH").unwrap_or_default();
    let candidates = std::env::split_paths(&path)
        .map(|d| d.join("python3"))
        .filter(|p| p.is_file())
        .chain(std::iter::once(venv));
    for py in candidates {
        let works = Command::new(&py)
            .args(["-c", "import oras.client"])
            .output()
            .is_ok_and(|o| o.status.success());
        if works {
            return py;
        }
    }
    panic!(
        "no python3 with the `oras` package (looked on PATH and in target/test-venv): run \
         ./scripts/test.sh, which creates target/test-venv with oras installed"
    )
}

fn oras(py: &Path, script: &Path, args: Value) -> Value {
    let out = run(Command::new(py)
        .arg(script)
        .arg(serde_json::to_string(&args).expect("json")));
    let line = String::from_utf8_lossy(&out.stdout);
    let line = line.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| {
        panic!(
            "oras script printed no JSON ({e}) for {args}:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn referrers(b: &Berth, repo: &str, digest: &str, query: &str) -> (Resp, Value) {
    let url = b.url(&format!("/v2/{repo}/referrers/{digest}{query}"));
    let r = http("GET", &url, &[]);
    assert_eq!(r.status, 200, "{}", describe("GET", &url, &r));
    assert_eq!(content_type(&r), OCI_INDEX, "{}", describe("GET", &url, &r));
    let index = parse(&r.body);
    assert_eq!(index["schemaVersion"], 2, "{}", describe("GET", &url, &r));
    assert_eq!(
        index["mediaType"],
        OCI_INDEX,
        "{}",
        describe("GET", &url, &r)
    );
    assert!(
        index["manifests"].is_array(),
        "{}",
        describe("GET", &url, &r)
    );
    (r, index)
}

#[test]
fn oras_pushes_artifacts_with_subject_listed_by_referrers() {
    let py = oras_python();
    let b = start_logged_in();
    let _log = LogOnFailure(&b);
    let tmp = tempfile::tempdir().expect("tempdir");
    let work = tmp.path();
    let mut rng = Rng::new();
    let script = work.join("oras_client.py");
    std::fs::write(&script, ORAS_SCRIPT).expect("write script");
    let repo = "ns/art";
    let common = |cmd: &str| {
        json!({
            "cmd": cmd, "host": b.host, "repo": repo, "work": work,
            "user": common::ADMIN_USER, "password": common::ADMIN_PASSWORD,
        })
    };

    // The base image.
    let tar = tar(&[(format!("base-{}.txt", rng.word()), rng.bytes(10_000))]);
    std::fs::write(work.join("base.tar"), &tar).expect("write");
    let config = json!({
        "architecture": "amd64",
        "os": "linux",
        "rootfs": { "type": "layers", "diff_ids": [sha256_digest(&tar)] },
    });
    std::fs::write(
        work.join("base-config.json"),
        serde_json::to_vec(&config).expect("json"),
    )
    .expect("write");
    let r = oras(&py, &script, common("push-base"));
    assert_eq!(r["status"], 201, "push base: {r}");
    let base = get_manifest(&b, repo, "base", OCI_MANIFEST);
    let base_digest = sha256_digest(&base.body);
    let subject =
        json!({ "mediaType": OCI_MANIFEST, "digest": base_digest, "size": base.body.len() });

    // Nothing refers to it yet: an empty list, not an error.
    let (_, index) = referrers(&b, repo, &base_digest, "");
    assert_eq!(index["manifests"], json!([]), "{index}");

    // An SBOM with artifactType, pushed by digest.
    let sbom = serde_json::to_vec_pretty(&json!({
        "spdxVersion": "SPDX-2.3",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": format!("berth-test-{}", rng.word()),
        "packages": [{ "name": "busybox", "versionInfo": "1.36.1" }],
        "noise": hex::encode(rng.bytes(3_000)),
    }))
    .expect("json");
    std::fs::write(work.join("sbom.spdx.json"), &sbom).expect("write");
    let mut args = common("push-sbom");
    args["subject"] = subject.clone();
    let r = oras(&py, &script, args);
    assert_eq!(r["status"], 201, "push sbom by digest: {r}");
    let sbom_digest = r["digest"].as_str().expect("digest").to_string();
    assert_eq!(
        r["headers"]["oci-subject"],
        base_digest.as_str(),
        "a manifest with a subject must be answered with OCI-Subject: {r}"
    );
    let sbom_manifest = get_manifest(&b, repo, &sbom_digest, OCI_MANIFEST);
    assert_eq!(
        sbom_manifest.body.len() as u64,
        r["size"].as_u64().expect("size")
    );

    // A signature without artifactType (its config's mediaType stands in), uploaded in chunks.
    let sig = rng.bytes(10_000);
    std::fs::write(work.join("sig.bin"), &sig).expect("write");
    std::fs::write(
        work.join("sig-config.json"),
        br#"{"kind":"test signature"}"#,
    )
    .expect("write");
    let mut args = common("push-sig");
    args["subject"] = subject.clone();
    let r = oras(&py, &script, args);
    assert_eq!(r["status"], 201, "push sig: {r}");
    assert_eq!(r["headers"]["oci-subject"], base_digest.as_str(), "{r}");
    let sig_manifest = get_manifest(&b, repo, "sig", OCI_MANIFEST);
    let sig_digest = sha256_digest(&sig_manifest.body);

    // Both are listed, each with its artifactType and its manifest's annotations.
    let (_, index) = referrers(&b, repo, &base_digest, "");
    let listed = index["manifests"].as_array().expect("manifests");
    assert_eq!(listed.len(), 2, "{index}");
    let find = |d: &str| {
        listed
            .iter()
            .find(|m| m["digest"] == d)
            .unwrap_or_else(|| panic!("{d} not among the referrers: {index}"))
            .clone()
    };
    let s = find(&sbom_digest);
    assert_eq!(s["mediaType"], OCI_MANIFEST, "{s}");
    assert_eq!(s["artifactType"], "application/spdx+json", "{s}");
    assert_eq!(s["size"], sbom_manifest.body.len(), "{s}");
    assert_eq!(s["annotations"]["org.example.sbom.format"], "spdx", "{s}");
    let g = find(&sig_digest);
    assert_eq!(g["mediaType"], OCI_MANIFEST, "{g}");
    assert_eq!(
        g["artifactType"], "application/vnd.example.signature.config.v1+json",
        "{g}"
    );
    assert_eq!(g["size"], sig_manifest.body.len(), "{g}");
    assert_eq!(g["annotations"]["org.example.kind"], "signature", "{g}");

    // Filtering by artifactType.
    let (r, index) = referrers(
        &b,
        repo,
        &base_digest,
        "?artifactType=application/spdx%2Bjson",
    );
    assert_eq!(
        digests_of(&index["manifests"]),
        vec![sbom_digest.clone()],
        "{index}"
    );
    assert_eq!(
        r.header("oci-filters-applied").as_deref(),
        Some("artifactType"),
        "a filtered referrers answer must say OCI-Filters-Applied: artifactType; {:?}",
        r.headers
    );
    let (_, index) = referrers(
        &b,
        repo,
        &base_digest,
        "?artifactType=application/vnd.example.none",
    );
    assert_eq!(index["manifests"], json!([]), "{index}");

    // The referrers are per repository; another one knows nothing of them.
    let (_, index) = referrers(&b, "ns/elsewhere", &base_digest, "");
    assert_eq!(index["manifests"], json!([]), "{index}");

    // Pull the artifacts back with oras: the files come back byte for byte.
    for (reference, name, bytes) in [
        (format!("@{sbom_digest}"), "sbom.spdx.json", &sbom),
        (":sig".to_string(), "sig.bin", &sig),
    ] {
        let outdir = work.join(format!("pulled-{name}"));
        let mut args = common("pull");
        args["ref"] = json!(reference);
        args["outdir"] = json!(outdir);
        let r = oras(&py, &script, args);
        assert_eq!(r["files"], json!([outdir.join(name)]), "{r}");
        assert_eq!(
            &std::fs::read(outdir.join(name)).expect("pulled file"),
            bytes
        );
    }
}
