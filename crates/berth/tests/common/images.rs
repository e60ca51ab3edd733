//! Building test images without a network: random bytes, tar and gzip writers, OCI image
//! layouts with real configs; and running the client tools the tests drive.
#![allow(dead_code)]

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const ACCEPT_ALL_MANIFESTS: &str = "application/vnd.oci.image.manifest.v1+json, \
     application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.docker.distribution.manifest.list.v2+json";
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

// ---------------------------------------------------------------------------------------------
// Small utilities: digests, random bytes, tar and gzip writers.

pub fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// splitmix64, seeded from a v4 UUID: random contents without another dependency.
pub struct Rng(pub u64);

impl Rng {
    pub fn new() -> Rng {
        Rng(uuid::Uuid::new_v4().as_u64_pair().0)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n + 8);
        while v.len() < n {
            v.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        v.truncate(n);
        v
    }

    pub fn word(&mut self) -> String {
        format!("{:016x}", self.next_u64())
    }
}

/// A ustar archive: `(path, contents)`; a path ending in `/` is a directory.
pub fn tar(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    pub fn field(h: &mut [u8], at: usize, len: usize, value: u64) {
        let s = format!("{:0width$o}\0", value, width = len - 1);
        h[at..at + len].copy_from_slice(s.as_bytes());
    }
    let mut out = Vec::new();
    for (path, data) in entries {
        assert!(path.len() < 100, "tar path too long: {path}");
        let dir = path.ends_with('/');
        let mut h = [0u8; 512];
        h[..path.len()].copy_from_slice(path.as_bytes());
        field(&mut h, 100, 8, if dir { 0o755 } else { 0o644 }); // mode
        field(&mut h, 108, 8, 0); // uid
        field(&mut h, 116, 8, 0); // gid
        field(&mut h, 124, 12, if dir { 0 } else { data.len() as u64 }); // size
        field(&mut h, 136, 12, 1_700_000_000); // mtime
        h[156] = if dir { b'5' } else { b'0' }; // typeflag
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[265..269].copy_from_slice(b"root");
        h[297..301].copy_from_slice(b"root");
        h[148..156].copy_from_slice(b"        ");
        let sum: u64 = h.iter().map(|&b| u64::from(b)).sum();
        let chk = format!("{sum:06o}\0 ");
        h[148..156].copy_from_slice(chk.as_bytes());
        out.extend_from_slice(&h);
        if !dir {
            out.extend_from_slice(data);
            out.resize(out.len().div_ceil(512) * 512, 0);
        }
    }
    out.resize(out.len() + 1024, 0);
    out
}

pub fn crc32(data: &[u8]) -> u32 {
    let mut table = [0u32; 256];
    for (i, t) in table.iter_mut().enumerate() {
        let mut c = i as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
        *t = c;
    }
    let mut crc = !0u32;
    for &b in data {
        crc = table[((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

/// gzip with stored (uncompressed) deflate blocks: valid gzip for every reader, no codec needed.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    let mut chunks = data.chunks(65_535).peekable();
    if chunks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(chunk) = chunks.next() {
        out.push(u8::from(chunks.peek().is_none()));
        let len = chunk.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out.extend_from_slice(&crc32(data).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

pub fn descriptor(media_type: &str, data: &[u8]) -> Value {
    json!({ "mediaType": media_type, "digest": sha256_digest(data), "size": data.len() })
}

pub fn digests_of(list: &Value) -> Vec<String> {
    list.as_array()
        .expect("array of descriptors")
        .iter()
        .map(|d| d["digest"].as_str().expect("descriptor digest").to_string())
        .collect()
}

pub fn parse(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or_else(|e| {
        panic!(
            "invalid JSON ({e}): {}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(2000)])
        )
    })
}

// ---------------------------------------------------------------------------------------------
// OCI image layouts written from Rust, and read back after a client wrote one.

pub struct Layout {
    pub dir: PathBuf,
    pub refs: Vec<Value>,
}

/// An image built into a layout: what a registry and the clients must preserve.
pub struct Image {
    pub manifest: Vec<u8>,
    pub digest: String,
    pub config_digest: String,
    pub layers: Vec<String>,
    pub diff_ids: Vec<String>,
}

impl Layout {
    pub fn create(dir: &Path) -> Layout {
        std::fs::create_dir_all(dir.join("blobs/sha256")).expect("create layout dir");
        std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)
            .expect("write oci-layout");
        let l = Layout {
            dir: dir.to_path_buf(),
            refs: Vec::new(),
        };
        l.write_index();
        l
    }

    pub fn put_blob(&self, data: &[u8]) -> String {
        let digest = sha256_digest(data);
        let hex = digest.trim_start_matches("sha256:");
        std::fs::write(self.dir.join("blobs/sha256").join(hex), data).expect("write blob");
        digest
    }

    pub fn write_index(&self) {
        let index = json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": self.refs });
        std::fs::write(
            self.dir.join("index.json"),
            serde_json::to_vec(&index).expect("json"),
        )
        .expect("write index.json");
    }

    /// Name a manifest or index in index.json.
    pub fn tag(&mut self, media_type: &str, bytes: &[u8], tag: &str) {
        let mut d = descriptor(media_type, bytes);
        d["annotations"] = json!({ REF_NAME: tag });
        self.refs.push(d);
        self.write_index();
    }

    /// An image of `layer_sizes.len()` gzip tar layers of random files, for linux/`arch`.
    pub fn image(&self, rng: &mut Rng, arch: &str, layer_sizes: &[usize]) -> Image {
        let mut layer_descs = Vec::new();
        let mut layers = Vec::new();
        let mut diff_ids = Vec::new();
        let mut history = Vec::new();
        for (i, &size) in layer_sizes.iter().enumerate() {
            let dir = format!("layer{i}-{}/", rng.word());
            let tar = tar(&[
                (dir.clone(), Vec::new()),
                (format!("{dir}random.bin"), rng.bytes(size)),
                (
                    format!("{dir}hello.txt"),
                    format!("layer {i} of a Berth test image for {arch}\n").into_bytes(),
                ),
            ]);
            let gz = gzip(&tar);
            diff_ids.push(sha256_digest(&tar));
            layers.push(self.put_blob(&gz));
            layer_descs.push(descriptor(OCI_LAYER_GZIP, &gz));
            history.push(json!({
                "created": "2024-01-01T00:00:00Z",
                "created_by": format!("berth test layer {i}"),
            }));
        }
        let mut config = json!({
            "created": "2024-01-01T00:00:00Z",
            "architecture": arch,
            "os": "linux",
            "config": {
                "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                "Cmd": ["/bin/sh"],
                "Labels": { "org.example.nonce": rng.word() },
            },
            "rootfs": { "type": "layers", "diff_ids": diff_ids },
            "history": history,
        });
        if arch == "arm64" {
            config["variant"] = json!("v8");
        }
        let config = serde_json::to_vec(&config).expect("json");
        let config_digest = self.put_blob(&config);
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(OCI_CONFIG, &config),
            "layers": layer_descs,
            "annotations": { "org.opencontainers.image.description": "berth client test" },
        });
        let manifest = serde_json::to_vec(&manifest).expect("json");
        let digest = self.put_blob(&manifest);
        Image {
            manifest,
            digest,
            config_digest,
            layers,
            diff_ids,
        }
    }
}

/// A blob of a layout a client wrote, checked against its name.
pub fn layout_blob(dir: &Path, digest: &str) -> Vec<u8> {
    let hex = digest
        .strip_prefix("sha256:")
        .unwrap_or_else(|| panic!("not a sha256 digest: {digest}"));
    let path = dir.join("blobs/sha256").join(hex);
    let data = std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    assert_eq!(
        sha256_digest(&data),
        digest,
        "blob {} does not match its digest",
        path.display()
    );
    data
}

/// The descriptor named `tag` in a layout's index.json.
pub fn layout_ref(dir: &Path, tag: &str) -> Value {
    let index = parse(&std::fs::read(dir.join("index.json")).expect("read index.json"));
    index["manifests"]
        .as_array()
        .expect("index.json manifests")
        .iter()
        .find(|d| d["annotations"][REF_NAME] == tag)
        .unwrap_or_else(|| panic!("no {tag} in {}/index.json: {index}", dir.display()))
        .clone()
}

/// Check that a layout holds the image manifest `digest` with its config and layers; return it.
pub fn check_layout_image(dir: &Path, digest: &str) -> Value {
    let manifest = parse(&layout_blob(dir, digest));
    layout_blob(dir, manifest["config"]["digest"].as_str().expect("config"));
    for l in digests_of(&manifest["layers"]) {
        layout_blob(dir, &l);
    }
    manifest
}

// ---------------------------------------------------------------------------------------------
// Running clients.

/// Where `name` is on PATH, or a failure telling how to install the test clients.
pub fn require_tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{name}` is not installed (not on PATH): run ./scripts/test.sh, which installs \
                 the clients these tests drive (skopeo, podman, buildah, uidmap, and the oras \
                 Python package in target/test-venv)"
            )
        })
}

/// Run a command; on failure, panic with everything it printed.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    if !out.status.success() {
        panic!(
            "{cmd:?} failed with {}\n--- stdout\n{}\n--- stderr\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}
