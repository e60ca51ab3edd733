//! Helpers shared by the conformance tests: a thin HTTP client around one `Berth` server, digest
//! and encoding helpers, manifest builders and push helpers.
#![allow(dead_code)]

use crate::common::Berth;
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use sha2::{Digest, Sha256, Sha512};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
pub const EMPTY_DIGEST: &str =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
pub const DOCKER_V2: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const DOCKER_V1: &str = "application/vnd.docker.distribution.manifest.v1+json";
pub const DOCKER_V1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";
pub const HELM_CONFIG: &str = "application/vnd.cncf.helm.config.v1+json";
pub const HELM_CHART: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";

/// One running server plus a client configured the way the tests need it.
pub struct Reg {
    pub berth: Berth,
    /// With `TEST_CLUSTER=1`, a second instance on the same database and storage: requests then
    /// alternate between the two, so every multi-request flow of the suite (an upload's POST,
    /// PATCHes and PUT; a push and its pull) is split across instances.
    pub peer: Option<Berth>,
    turn: std::sync::atomic::AtomicUsize,
    pub http: reqwest::Client,
}

/// A fully read response.
pub struct Resp {
    pub method: String,
    pub url: String,
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .default_headers(crate::common::admin_headers())
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("build reqwest client")
}

impl Reg {
    /// Starts a fresh server. Blob GETs are streamed through Berth even on object storage
    /// (`FEATURE_PROXY_STORAGE`), so that every header asserted here is Berth's own; redirects to
    /// presigned storage URLs are exercised by the real-client tests.
    pub fn start() -> Reg {
        let berth = Berth::start_with_env(&[("BERTH_FEATURE_PROXY_STORAGE", "true")]);
        let peer =
            (std::env::var("TEST_CLUSTER").as_deref() == Ok("1")).then(|| berth.start_sibling());
        Reg {
            berth,
            peer,
            turn: std::sync::atomic::AtomicUsize::new(0),
            http: client(),
        }
    }

    /// Kills the server (SIGKILL), starts it again on the same data directory and port, and
    /// drops pooled connections to the old process.
    pub fn restart(&mut self) {
        self.berth.restart();
        self.http = client();
    }

    /// An absolute URL for a path (`/v2/...`) or an already absolute URL.
    pub fn url(&self, path_or_url: &str) -> String {
        if path_or_url.starts_with("http://") || path_or_url.starts_with("https://") {
            path_or_url.to_string()
        } else {
            match &self.peer {
                Some(peer)
                    if self.turn.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 2 == 1 =>
                {
                    peer.url(path_or_url)
                }
                _ => self.berth.url(path_or_url),
            }
        }
    }

    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Resp {
        let m = Method::from_bytes(method.as_bytes()).expect("method");
        let url = self.url(path);
        let mut req = self.http.request(m, &url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.body(b);
        }
        let r = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {url}: request failed: {e:?}"));
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let body = r
            .bytes()
            .await
            .unwrap_or_else(|e| panic!("{method} {url}: reading body failed: {e:?}"))
            .to_vec();
        Resp {
            method: method.to_string(),
            url,
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send("GET", path, &[], None).await
    }

    pub async fn head(&self, path: &str) -> Resp {
        self.send("HEAD", path, &[], None).await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.send("DELETE", path, &[], None).await
    }

    pub async fn post(&self, path: &str) -> Resp {
        self.send("POST", path, &[], None).await
    }

    /// `GET path` with a `Range` header.
    pub async fn get_range(&self, path: &str, range: &str) -> Resp {
        self.send("GET", path, &[("Range", range)], None).await
    }

    /// Starts an upload session; asserts 202 and returns the Location header.
    pub async fn start_upload(&self, repo: &str) -> String {
        let r = self.post(&format!("/v2/{repo}/blobs/uploads/")).await;
        r.expect_status(202);
        r.h("location").to_string()
    }

    /// `PATCH location` with a chunk and an optional `Content-Range`.
    pub async fn patch_chunk(&self, location: &str, data: &[u8], range: Option<&str>) -> Resp {
        let mut headers = vec![("Content-Type", "application/octet-stream")];
        if let Some(r) = range {
            headers.push(("Content-Range", r));
        }
        self.send("PATCH", location, &headers, Some(data.to_vec()))
            .await
    }

    /// `PUT location?digest=d` with an optional final chunk.
    pub async fn finish_upload(&self, location: &str, digest: &str, data: &[u8]) -> Resp {
        let url = with_query(location, &format!("digest={digest}"));
        let mut headers = vec![];
        if !data.is_empty() {
            headers.push(("Content-Type", "application/octet-stream"));
        }
        self.send("PUT", &url, &headers, Some(data.to_vec())).await
    }

    /// Pushes a blob with POST + PUT; asserts 201 and returns the sha256 digest.
    pub async fn push_blob(&self, repo: &str, data: &[u8]) -> String {
        let d = sha256(data);
        let loc = self.start_upload(repo).await;
        let r = self.finish_upload(&loc, &d, data).await;
        r.expect_status(201);
        assert_eq!(r.h("docker-content-digest"), d, "push_blob digest header");
        d
    }

    /// Pushes a blob with a single `POST ?digest=` request; returns the response.
    pub async fn push_blob_monolithic(&self, repo: &str, digest: &str, data: &[u8]) -> Resp {
        self.send(
            "POST",
            &format!("/v2/{repo}/blobs/uploads/?digest={digest}"),
            &[("Content-Type", "application/octet-stream")],
            Some(data.to_vec()),
        )
        .await
    }

    /// `PUT /v2/<repo>/manifests/<reference>` with the given Content-Type; returns the response.
    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        body: &[u8],
    ) -> Resp {
        self.send(
            "PUT",
            &format!("/v2/{repo}/manifests/{reference}"),
            &[("Content-Type", media_type)],
            Some(body.to_vec()),
        )
        .await
    }

    /// Pushes a manifest, asserts 201 and the digest/location headers, returns the digest.
    pub async fn push_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        body: &[u8],
    ) -> String {
        let r = self.put_manifest(repo, reference, media_type, body).await;
        r.expect_status(201);
        let d = sha256(body);
        assert_eq!(r.h("docker-content-digest"), d, "manifest digest header");
        assert_eq!(r.h("location"), format!("/v2/{}/manifests/{d}", full(repo)));
        d
    }

    /// Pushes a fresh config blob and one fresh layer blob and an OCI image manifest referencing
    /// them under `reference`.
    pub async fn push_image(&self, repo: &str, reference: &str) -> Image {
        let config = unique_bytes("config");
        let layer = unique_bytes("layer");
        let config_digest = self.push_blob(repo, &config).await;
        let layer_digest = self.push_blob(repo, &layer).await;
        let manifest = image_manifest(
            OCI_MANIFEST,
            &desc(OCI_CONFIG, &config_digest, config.len()),
            &[desc(OCI_LAYER, &layer_digest, layer.len())],
        );
        let digest = self
            .push_manifest(repo, reference, OCI_MANIFEST, &manifest)
            .await;
        Image {
            manifest,
            digest,
            config_digest,
            layer_digest,
        }
    }

    /// Asserts that GET and HEAD of a manifest answer 200 with the exact bytes, media type and
    /// digest.
    pub async fn expect_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        body: &[u8],
        digest: &str,
    ) {
        let path = format!("/v2/{repo}/manifests/{reference}");
        let r = self.get(&path).await;
        r.expect_status(200);
        assert_eq!(r.h("content-type"), media_type, "GET {path} content-type");
        assert_eq!(r.h("docker-content-digest"), digest, "GET {path} digest");
        assert_eq!(r.h("content-length"), body.len().to_string());
        assert!(
            r.body == body,
            "GET {path}: bytes differ from what was pushed"
        );
        let r = self.head(&path).await;
        r.expect_status(200);
        assert_eq!(r.h("content-type"), media_type, "HEAD {path} content-type");
        assert_eq!(r.h("docker-content-digest"), digest, "HEAD {path} digest");
        assert_eq!(r.h("content-length"), body.len().to_string());
        r.expect_empty_body();
    }

    /// The `tags` array of `GET /v2/<repo>/tags/list`, asserting 200.
    pub async fn tags(&self, repo: &str) -> Vec<String> {
        let r = self.get(&format!("/v2/{repo}/tags/list")).await;
        r.expect_status(200);
        let v = r.json();
        assert_eq!(v["name"], full(repo).as_str(), "tags/list name");
        strings(&v["tags"])
    }
}

impl Drop for Reg {
    /// When a test fails, show what the server logged (its data directory is deleted next).
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- berth server log ({}) ----\n{}",
                self.berth.base,
                self.berth.log()
            );
        }
    }
}

pub struct Image {
    pub manifest: Vec<u8>,
    pub digest: String,
    pub config_digest: String,
    pub layer_digest: String,
}

impl Image {
    pub fn descriptor(&self) -> Value {
        desc(OCI_MANIFEST, &self.digest, self.manifest.len())
    }
}

impl Resp {
    fn ctx(&self) -> String {
        format!(
            "{} {} -> {} {:?} body={}",
            self.method,
            self.url,
            self.status,
            self.headers,
            String::from_utf8_lossy(&self.body[..self.body.len().min(2000)])
        )
    }

    pub fn expect_status(&self, status: u16) {
        assert_eq!(self.status, status, "unexpected status: {}", self.ctx());
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("ascii header"))
    }

    /// A header that must be present.
    pub fn h(&self, name: &str) -> &str {
        match self.header(name) {
            Some(v) => v,
            None => panic!("missing header {name}: {}", self.ctx()),
        }
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.ctx()))
    }

    /// The error codes in an error body.
    pub fn error_codes(&self) -> Vec<String> {
        let v = self.json();
        let errors = v["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("no errors array: {}", self.ctx()));
        assert!(!errors.is_empty(), "empty errors array: {}", self.ctx());
        errors
            .iter()
            .map(|e| {
                assert!(
                    e["message"].is_string(),
                    "error without message: {}",
                    self.ctx()
                );
                assert!(
                    e.get("detail").is_some(),
                    "error without detail: {}",
                    self.ctx()
                );
                e["code"]
                    .as_str()
                    .unwrap_or_else(|| panic!("error without code: {}", self.ctx()))
                    .to_string()
            })
            .collect()
    }

    /// The first error code.
    pub fn error_code(&self) -> String {
        self.error_codes().remove(0)
    }

    /// Asserts status and that the JSON error body carries `code`.
    pub fn expect_error(&self, status: u16, code: &str) {
        self.expect_error_any(status, &[code]);
    }

    /// Asserts status and that the JSON error body's first code is one of `codes`.
    pub fn expect_error_any(&self, status: u16, codes: &[&str]) {
        self.expect_status(status);
        let ct = self.header("content-type").unwrap_or("");
        assert!(
            ct.starts_with("application/json"),
            "error content-type {ct:?}: {}",
            self.ctx()
        );
        let code = self.error_code();
        assert!(
            codes.contains(&code.as_str()),
            "error code {code}, wanted one of {codes:?}: {}",
            self.ctx()
        );
    }

    pub fn expect_empty_body(&self) {
        assert!(self.body.is_empty(), "expected no body: {}", self.ctx());
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(data)))
}

pub fn sha512(data: &[u8]) -> String {
    format!("sha512:{}", hex(&Sha512::digest(data)))
}

/// Content that no other test (or call) produces.
pub fn unique_bytes(label: &str) -> Vec<u8> {
    format!("{label}-{}", uuid::Uuid::new_v4()).into_bytes()
}

/// The name the registry gives `name`: a one-component name is in the library namespace
/// (FEATURE_LIBRARY_SUPPORT, on by default as in Quay).
pub fn full(name: &str) -> String {
    if name.contains('/') {
        name.to_string()
    } else {
        format!("library/{name}")
    }
}

/// A repository name unique to one test, in the `conformance` namespace (a one-component name
/// would map to `library/…`, FEATURE_LIBRARY_SUPPORT).
pub fn repo(prefix: &str) -> String {
    format!(
        "conformance/{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

/// Appends a query parameter to a URL or path that may already carry a query.
pub fn with_query(location: &str, param: &str) -> String {
    if location.contains('?') {
        format!("{location}&{param}")
    } else {
        format!("{location}?{param}")
    }
}

/// The path of a location without its query.
pub fn path_of(location: &str) -> &str {
    location.split('?').next().unwrap_or(location)
}

pub fn desc(media_type: &str, digest: &str, size: usize) -> Value {
    json!({"mediaType": media_type, "digest": digest, "size": size})
}

pub fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| s.as_str().expect("string").to_string())
        .collect()
}

/// An image manifest (OCI or Docker schema2 depending on `media_type`).
pub fn image_manifest(media_type: &str, config: &Value, layers: &[Value]) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": config,
        "layers": layers,
    }))
    .expect("serialize")
}

/// An index / manifest list over the given descriptors.
pub fn index_manifest(media_type: &str, manifests: &[Value]) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": media_type,
        "manifests": manifests,
    }))
    .expect("serialize")
}

/// An OCI artifact manifest with the empty config, one layer, and an optional subject.
pub fn artifact_manifest(
    artifact_type: &str,
    layer: &Value,
    subject: Option<&Value>,
    annotations: Option<&Value>,
) -> Vec<u8> {
    let mut m = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": desc(OCI_EMPTY, EMPTY_DIGEST, 2),
        "layers": [layer],
    });
    if let Some(s) = subject {
        m["subject"] = s.clone();
    }
    if let Some(a) = annotations {
        m["annotations"] = a.clone();
    }
    serde_json::to_vec(&m).expect("serialize")
}

const B64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Unpadded base64url.
pub fn b64url(data: &[u8]) -> String {
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(char::from(B64URL[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// A raw HTTP/1.1 request over a fresh TCP connection (`Connection: close`). Returns status,
/// lower-cased headers and body. Used for chunked transfer encoding and for paths a URL library
/// would normalize.
pub async fn raw_request(
    host: &str,
    head: &str,
    body_chunks: &[&[u8]],
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut s = tokio::net::TcpStream::connect(host).await.expect("connect");
    s.write_all(head.as_bytes()).await.expect("write head");
    for c in body_chunks {
        s.write_all(format!("{:x}\r\n", c.len()).as_bytes())
            .await
            .expect("write");
        s.write_all(c).await.expect("write");
        s.write_all(b"\r\n").await.expect("write");
    }
    if !body_chunks.is_empty() {
        s.write_all(b"0\r\n\r\n").await.expect("write");
    }
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.expect("read");
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of response head");
    let head_text = String::from_utf8_lossy(&buf[..split]).to_string();
    let mut lines = head_text.split("\r\n");
    let status_line = lines.next().expect("status line");
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .expect("status code")
        .parse()
        .expect("numeric status");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, buf[split + 4..].to_vec())
}
