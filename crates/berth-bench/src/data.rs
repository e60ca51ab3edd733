//! Test data: a large blob generated on the fly from a repeated random buffer, and small
//! images whose layers are unique random bytes.

use bytes::Bytes;
use rand::{Rng, RngCore};
use serde_json::json;
use sha2::{Digest, Sha256};

/// Size of the random pattern the large blob repeats (a multiple of [`CHUNK`]).
const PATTERN: usize = 16 << 20;
/// Largest body frame handed to the connection.
const CHUNK: usize = 1 << 20;

/// Recipe for a large blob: a unique 64-byte salt followed by a random pattern repeated
/// up to `size` bytes. Cheap to clone; nothing of size `size` is ever materialised.
#[derive(Clone)]
pub struct BigBlob {
    salt: Bytes,
    pattern: Bytes,
    size: u64,
    pub digest: String,
}

impl BigBlob {
    pub fn generate(size: u64) -> Self {
        let mut rng = rand::rng();
        let mut salt = vec![0u8; 64];
        rng.fill_bytes(&mut salt);
        let mut pattern = vec![0u8; PATTERN];
        rng.fill_bytes(&mut pattern);
        let mut blob = BigBlob {
            salt: Bytes::from(salt),
            pattern: Bytes::from(pattern),
            size,
            digest: String::new(),
        };
        let mut hasher = Sha256::new();
        let mut stream = blob.stream();
        while let Some(chunk) = stream.next_chunk() {
            hasher.update(&chunk);
        }
        blob.digest = format!("sha256:{}", hex::encode(hasher.finalize()));
        blob
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn stream(&self) -> BlobStream {
        self.range(0, self.size)
    }

    /// The bytes `start..start + len` of the blob (clamped to its size), as zero-copy slices.
    pub fn range(&self, start: u64, len: u64) -> BlobStream {
        let end = start.saturating_add(len).min(self.size);
        let start = start.min(end);
        let salt_len = self.salt.len() as u64;
        // Both bounds are at most the salt's length here, so they fit in usize.
        let salt = self
            .salt
            .slice(start.min(salt_len) as usize..end.min(salt_len) as usize);
        let pattern_start = start.max(salt_len) - salt_len;
        let pos = (pattern_start % self.pattern.len() as u64) as usize;
        BlobStream {
            salt: Some(salt),
            pattern: self.pattern.clone(),
            pos,
            remaining: end.saturating_sub(start.max(salt_len)),
        }
    }
}

/// Iterator over the chunks of a [`BigBlob`]; every chunk is a zero-copy slice.
pub struct BlobStream {
    salt: Option<Bytes>,
    pattern: Bytes,
    pos: usize,
    remaining: u64,
}

impl BlobStream {
    pub fn remaining(&self) -> u64 {
        self.salt.as_ref().map_or(0, |s| s.len() as u64) + self.remaining
    }

    pub fn next_chunk(&mut self) -> Option<Bytes> {
        if let Some(salt) = self.salt.take().filter(|s| !s.is_empty()) {
            return Some(salt);
        }
        if self.remaining == 0 {
            return None;
        }
        let n = (self.pattern.len() - self.pos)
            .min(CHUNK)
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let chunk = self.pattern.slice(self.pos..self.pos + n);
        self.pos = (self.pos + n) % self.pattern.len();
        self.remaining -= n as u64;
        Some(chunk)
    }
}

pub fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

pub struct Blob {
    pub digest: String,
    pub data: Bytes,
}

impl Blob {
    fn new(data: Vec<u8>) -> Self {
        Blob {
            digest: sha256_digest(&data),
            data: Bytes::from(data),
        }
    }
}

/// A small image: config blob, layers and the OCI image manifest referencing them.
pub struct SmallImage {
    pub repo: String,
    pub tag: String,
    /// Config first, then the layers.
    pub blobs: Vec<Blob>,
    pub manifest: Bytes,
}

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
     application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.docker.distribution.manifest.list.v2+json";

impl SmallImage {
    /// An image with `layers` layers of `min..=max` random bytes each.
    pub fn generate(repo: String, tag: String, layers: usize, min: usize, max: usize) -> Self {
        let mut rng = rand::rng();
        let layer_blobs: Vec<Blob> = (0..layers)
            .map(|_| {
                let mut data = vec![0u8; rng.random_range(min..=max)];
                rng.fill_bytes(&mut data);
                Blob::new(data)
            })
            .collect();
        let config = json!({
            "architecture": "amd64",
            "os": "linux",
            "config": { "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"] },
            "rootfs": {
                "type": "layers",
                "diff_ids": layer_blobs.iter().map(|b| b.digest.as_str()).collect::<Vec<_>>(),
            },
            "history": [{ "created_by": format!("berth-bench {repo}:{tag}") }],
        });
        let config = Blob::new(config.to_string().into_bytes());
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config.digest,
                "size": config.data.len(),
            },
            "layers": layer_blobs.iter().map(|b| json!({
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": b.digest,
                "size": b.data.len(),
            })).collect::<Vec<_>>(),
        });
        let mut blobs = vec![config];
        blobs.extend(layer_blobs);
        SmallImage {
            repo,
            tag,
            blobs,
            manifest: Bytes::from(manifest.to_string().into_bytes()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_concatenate_to_the_blob() {
        let blob = BigBlob::generate((PATTERN as u64) * 2 + 100);
        let collect = |mut s: BlobStream| {
            let mut v = Vec::new();
            while let Some(c) = s.next_chunk() {
                v.extend_from_slice(&c);
            }
            v
        };
        let whole = collect(blob.stream());
        assert_eq!(whole.len() as u64, blob.size());
        let mut parts = Vec::new();
        let step = 5 << 20;
        let mut at = 0;
        while at < blob.size() {
            let r = blob.range(at, step);
            assert_eq!(r.remaining(), step.min(blob.size() - at));
            parts.extend(collect(r));
            at += step;
        }
        assert!(parts == whole);
        assert_eq!(collect(blob.range(10, 20)), whole[10..30].to_vec());
    }
}
