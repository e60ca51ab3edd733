//! A real CNCF Distribution (`docker-registry`) on 127.0.0.1 for each test, filled by skopeo from
//! an OCI layout written here, and a fault proxy (proxy.rs) to put in front of it.

#![allow(dead_code)]

pub mod proxy;

use berth_oci::Digest;
use berth_oci::media::{OCI_CONFIG, OCI_INDEX, OCI_MANIFEST};
use berth_registry_client::{Credentials, RegistryClient, Settings, Upstream};
use serde_json::json;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const USER: &str = "mirror";
pub const PASSWORD: &str = "s3cret-pass";
pub const REPO: &str = "team/app";
const LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";

/// The guard of these tests: loopback allowed, as `SSRF_ALLOWED_HOSTS=127.0.0.1` would.
pub fn guard() -> berth_net::Guard {
    berth_net::Guard::new(&["127.0.0.1".into()], &[])
}

/// Settings with short waits, so that fault tests stay quick.
pub fn settings() -> Settings {
    Settings {
        connect_timeout: Duration::from_secs(2),
        read_timeout: Duration::from_secs(5),
        max_retry_after: Duration::from_secs(5),
        ..Settings::default()
    }
}

pub fn creds() -> Option<Credentials> {
    Some(Credentials {
        username: USER.into(),
        password: PASSWORD.into(),
    })
}

pub fn client(addr: &str, credentials: Option<Credentials>, settings: Settings) -> RegistryClient {
    RegistryClient::new(
        guard(),
        Upstream {
            registry: addr.into(),
            insecure: true,
            credentials,
        },
        settings,
    )
    .expect("client")
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A running `docker-registry`, stopped on drop.
pub struct Distribution {
    child: Child,
    pub addr: String,
    pub auth: bool,
    _dir: tempfile::TempDir,
}

impl Drop for Distribution {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `docker-registry` and `skopeo` can run here; says why not otherwise.
pub fn tools_present() -> bool {
    for tool in ["docker-registry", "skopeo"] {
        let ok = Command::new(tool)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        if !ok {
            eprintln!(
                "skipping: {tool} is not on PATH (Debian packages docker-registry and skopeo)"
            );
            return false;
        }
    }
    true
}

impl Distribution {
    /// Starts a registry; with `auth`, behind an htpasswd file holding [`USER`]/[`PASSWORD`].
    pub fn start(auth: bool) -> Distribution {
        Distribution::start_with(auth, None)
    }

    /// [`Distribution::start`], serving https with `tls` (certificate and key PEM files).
    pub fn start_with(auth: bool, tls: Option<(&Path, &Path)>) -> Distribution {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let root = dir.path().join("data");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
            root.display()
        );
        if let Some((cert, key)) = tls {
            config.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                cert.display(),
                key.display()
            ));
        }
        if auth {
            let hash = bcrypt::hash_with_result(PASSWORD, 4)
                .expect("bcrypt")
                .format_for_version(bcrypt::Version::TwoA);
            let htpasswd = dir.path().join("htpasswd");
            std::fs::write(&htpasswd, format!("{USER}:{hash}\n")).expect("htpasswd");
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                htpasswd.display()
            ));
        }
        let cfg = dir.path().join("config.yml");
        std::fs::write(&cfg, config).expect("config");
        // Distribution logs every 404 at level error; its log stays in the temporary directory.
        let log = std::fs::File::create(dir.path().join("registry.log")).expect("log");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("docker-registry starts");
        let sock: SocketAddr = addr.parse().expect("addr");
        let started = Instant::now();
        while TcpStream::connect_timeout(&sock, Duration::from_millis(200)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "docker-registry did not listen on {addr}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Distribution {
            child,
            addr,
            auth,
            _dir: dir,
        }
    }

    /// Copies `tag` of the OCI layout at `layout` to `repo:tag` here with skopeo, every platform,
    /// digests preserved.
    pub fn push(&self, layout: &Path, tag: &str, repo: &str) {
        let mut cmd = Command::new("skopeo");
        cmd.args([
            "copy",
            "--quiet",
            "--all",
            "--preserve-digests",
            "--dest-tls-verify=false",
        ]);
        if self.auth {
            cmd.arg("--dest-creds").arg(format!("{USER}:{PASSWORD}"));
        }
        let out = cmd
            .arg(format!("oci:{}:{tag}", layout.display()))
            .arg(format!("docker://{}/{repo}:{tag}", self.addr))
            .output()
            .expect("skopeo runs");
        assert!(
            out.status.success(),
            "skopeo copy failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Tags `bytes` (a manifest already pushed under another name) as `repo:tag` with a plain
    /// PUT, the way any client does.
    pub async fn put_manifest(&self, repo: &str, tag: &str, bytes: &[u8], media_type: &str) {
        let mut req = reqwest::Client::new()
            .put(format!("http://{}/v2/{repo}/manifests/{tag}", self.addr))
            .header("content-type", media_type)
            .body(bytes.to_vec());
        if self.auth {
            req = req.basic_auth(USER, Some(PASSWORD));
        }
        let resp = req.send().await.expect("PUT manifest");
        assert!(resp.status().is_success(), "PUT {tag}: {}", resp.status());
    }
}

/// One blob of the layout.
#[derive(Clone)]
pub struct Blob {
    pub digest: Digest,
    pub bytes: Vec<u8>,
}

/// What the test layout holds: `v1` (one linux/amd64 image) and `multi` (an index of amd64 and
/// arm64 images).
pub struct Layout {
    pub dir: tempfile::TempDir,
    pub image: Blob,
    pub index: Blob,
    pub layers: Vec<Blob>,
    pub arm_image: Blob,
}

fn put_blob(dir: &Path, bytes: Vec<u8>) -> Blob {
    let digest = Digest::sha256_of(&bytes);
    let path = dir.join("blobs/sha256").join(digest.hex());
    std::fs::write(path, &bytes).expect("blob");
    Blob { digest, bytes }
}

fn descriptor(media_type: &str, b: &Blob) -> serde_json::Value {
    json!({"mediaType": media_type, "digest": b.digest.to_string(), "size": b.bytes.len()})
}

fn image(dir: &Path, arch: &str, layer_sizes: &[usize]) -> (Blob, Vec<Blob>) {
    let layers: Vec<Blob> = layer_sizes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let seed = format!("{arch} layer {i} ");
            let bytes = seed.bytes().cycle().take(*n).collect();
            put_blob(dir, bytes)
        })
        .collect();
    let config = json!({
        "architecture": arch,
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.digest.to_string()).collect::<Vec<_>>()},
    });
    let config = put_blob(dir, serde_json::to_vec(&config).expect("json"));
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, &config),
        "layers": layers.iter().map(|l| descriptor(LAYER_TAR, l)).collect::<Vec<_>>(),
    });
    let manifest = put_blob(dir, serde_json::to_vec_pretty(&manifest).expect("json"));
    (manifest, layers)
}

/// Writes the OCI layout.
pub fn layout() -> Layout {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path();
    std::fs::create_dir_all(p.join("blobs/sha256")).expect("mkdir");
    std::fs::write(p.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).expect("oci-layout");
    // A layer large enough to arrive in several chunks, for the stall and corruption tests.
    let (amd, layers) = image(p, "amd64", &[300 * 1024, 4096]);
    let (arm, _) = image(p, "arm64", &[2048, 1024]);
    let index = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": amd.digest.to_string(), "size": amd.bytes.len(),
             "platform": {"architecture": "amd64", "os": "linux"}},
            {"mediaType": OCI_MANIFEST, "digest": arm.digest.to_string(), "size": arm.bytes.len(),
             "platform": {"architecture": "arm64", "os": "linux"}},
        ],
    });
    let index = put_blob(p, serde_json::to_vec(&index).expect("json"));
    let top = json!({
        "schemaVersion": 2,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": amd.digest.to_string(), "size": amd.bytes.len(),
             "annotations": {"org.opencontainers.image.ref.name": "v1"}},
            {"mediaType": OCI_INDEX, "digest": index.digest.to_string(), "size": index.bytes.len(),
             "annotations": {"org.opencontainers.image.ref.name": "multi"}},
        ],
    });
    std::fs::write(
        p.join("index.json"),
        serde_json::to_vec(&top).expect("json"),
    )
    .expect("index");
    Layout {
        dir,
        image: amd,
        index,
        layers,
        arm_image: arm,
    }
}

/// A registry holding `v1` and `multi` of [`layout`] in [`REPO`]; `None` (after saying why)
/// where the tools are missing.
pub fn filled(auth: bool) -> Option<(Distribution, Layout)> {
    if !tools_present() {
        return None;
    }
    let reg = Distribution::start(auth);
    let l = layout();
    reg.push(l.dir.path(), "v1", REPO);
    reg.push(l.dir.path(), "multi", REPO);
    Some((reg, l))
}

/// Collects a blob stream: the chunks delivered and the error it ended with, if any.
pub async fn drain(
    mut s: berth_registry_client::BlobStream,
) -> (Vec<u8>, Option<berth_registry_client::Error>) {
    use futures::StreamExt;
    let mut bytes = Vec::new();
    while let Some(item) = s.next().await {
        match item {
            Ok(b) => bytes.extend_from_slice(&b),
            Err(e) => {
                assert!(s.next().await.is_none(), "the error is the last item");
                return (bytes, Some(e));
            }
        }
    }
    (bytes, None)
}
