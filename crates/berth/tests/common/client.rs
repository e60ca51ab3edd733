//! A small registry client for tests that drive `/v2` and `/api/v1` directly: pushes images
//! (with indexes and mounts), pulls them completely with digest checks, and reads a server's
//! blob storage directly.

use super::{ADMIN_PASSWORD, ADMIN_USER, Berth};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use std::collections::BTreeSet;
use std::time::Duration;

pub const MT: &str = "application/vnd.oci.image.manifest.v1+json";
pub const IT: &str = "application/vnd.oci.image.index.v1+json";

pub fn sha(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

#[derive(Clone)]
pub struct Client {
    pub http: reqwest::blocking::Client,
    pub base: String,
}

/// An image as pushed: its manifest bytes and the blobs (config first) it references.
#[derive(Clone, Debug)]
pub struct Image {
    pub digest: String,
    pub blobs: Vec<String>,
    /// Children, for an index.
    pub children: Vec<String>,
    pub size: usize,
}

impl Client {
    pub fn new(b: &Berth) -> Client {
        Client {
            http: reqwest::blocking::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("client"),
            base: b.base.clone(),
        }
    }

    pub fn req(&self, method: &str, path: &str) -> reqwest::blocking::RequestBuilder {
        self.http
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).expect("method"),
                format!("{}{path}", self.base),
            )
            .basic_auth(ADMIN_USER, Some(ADMIN_PASSWORD))
    }

    pub fn api(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut r = self.req(method, path);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r.send().expect("send");
        let s = r.status().as_u16();
        (s, r.json().unwrap_or(Value::Null))
    }

    /// Uploads a blob unless the repository already has it (HEAD first, as clients do).
    pub fn blob(&self, repo: &str, data: &[u8]) -> String {
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
    pub fn mount(&self, repo: &str, from: &str, digest: &str) -> bool {
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

    pub fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        mt: &str,
        body: &[u8],
    ) -> (u16, String) {
        let r = self
            .req("PUT", &format!("/v2/{repo}/manifests/{reference}"))
            .header("Content-Type", mt)
            .body(body.to_vec())
            .send()
            .expect("manifest");
        (r.status().as_u16(), r.text().unwrap_or_default())
    }

    /// Pushes an image of a fresh config and `layers` (uploaded unless present).
    pub fn image(&self, repo: &str, reference: &str, salt: &str, layers: &[&[u8]]) -> Image {
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
    pub fn index(&self, repo: &str, tag: &str, children: &[&Image]) -> Image {
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

    pub fn delete(&self, repo: &str, reference: &str) -> u16 {
        self.req("DELETE", &format!("/v2/{repo}/manifests/{reference}"))
            .send()
            .expect("delete")
            .status()
            .as_u16()
    }

    /// Pulls `reference` completely: the manifest (and an index's children) and every blob,
    /// each checked against its digest. Returns the manifest digest.
    pub fn pull(&self, repo: &str, reference: &str) -> Result<String, String> {
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

    /// The Prometheus exposition text.
    pub fn metrics(&self) -> String {
        self.req("GET", "/metrics")
            .send()
            .expect("metrics")
            .text()
            .expect("text")
    }

    pub fn gc(&self) -> Value {
        let (s, v) = self.api("POST", "/api/v1/superuser/gc", None);
        assert_eq!(s, 200, "{v}");
        v
    }

    pub fn org(&self, name: &str, window_s: i64) {
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
pub fn stored(b: &Berth, digests: &BTreeSet<String>) -> BTreeSet<String> {
    let store = b.blob_store();
    block_on(async {
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

pub fn set<'a>(items: impl IntoIterator<Item = &'a String>) -> BTreeSet<String> {
    items.into_iter().cloned().collect()
}

/// Runs async code (the storage backends' API) from a blocking test.
pub fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}
