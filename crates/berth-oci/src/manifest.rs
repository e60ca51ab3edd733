//! Manifest parsing and shape validation for every manifest kind Berth stores: OCI image manifest
//! and index, Docker schema2 manifest and manifest list, Docker schema1 (signed and unsigned), and
//! artifacts. Bytes are never re-serialised: the digest is of the exact bytes received (for signed
//! schema1, of the JWS payload, as Docker clients compute it).

use crate::digest::{Algorithm, Digest};
use crate::media;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// Largest manifest accepted on PUT.
pub const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestKind {
    OciManifest,
    OciIndex,
    DockerManifest,
    DockerList,
    Schema1,
}

impl ManifestKind {
    pub fn is_index(self) -> bool {
        matches!(self, ManifestKind::OciIndex | ManifestKind::DockerList)
    }
}

/// A content descriptor as it appears in manifests and in the referrers answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
}

impl Descriptor {
    /// Foreign (non-distributable) layers live elsewhere and need not exist in the registry.
    pub fn is_foreign(&self) -> bool {
        self.media_type.contains("foreign") || self.media_type.contains("nondistributable")
    }
}

/// A manifest that passed shape validation, with what the registry must know about it.
#[derive(Debug, Clone)]
pub struct ParsedManifest {
    pub kind: ManifestKind,
    pub media_type: String,
    pub digest: Digest,
    pub artifact_type: Option<String>,
    pub config: Option<Descriptor>,
    /// Blobs the manifest references (image layers; for schema1 its fsLayers).
    pub layers: Vec<Descriptor>,
    /// Child manifests of an index.
    pub manifests: Vec<Descriptor>,
    pub subject: Option<Descriptor>,
    pub annotations: Option<BTreeMap<String, String>>,
}

impl ParsedManifest {
    /// Every blob digest that must exist in the repository for this manifest to be accepted.
    pub fn required_blobs(&self) -> impl Iterator<Item = &Digest> {
        self.config
            .iter()
            .chain(self.layers.iter())
            .filter(|d| !d.is_foreign())
            .map(|d| &d.digest)
    }
    /// The artifact type the referrers API reports: `artifactType`, else the config media type.
    pub fn effective_artifact_type(&self) -> Option<String> {
        self.artifact_type
            .clone()
            .or_else(|| self.config.as_ref().map(|c| c.media_type.clone()))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ManifestError(pub String);

fn invalid<T>(msg: impl Into<String>) -> Result<T, ManifestError> {
    Err(ManifestError(msg.into()))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    schema_version: Option<i64>,
    media_type: Option<String>,
    artifact_type: Option<String>,
    config: Option<Value>,
    layers: Option<Vec<Value>>,
    manifests: Option<Vec<Value>>,
    subject: Option<Value>,
    annotations: Option<BTreeMap<String, String>>,
    fs_layers: Option<Vec<Value>>,
    signatures: Option<Vec<Value>>,
}

fn descriptor(v: &Value, what: &str) -> Result<Descriptor, ManifestError> {
    serde_json::from_value::<Descriptor>(v.clone())
        .map_err(|e| ManifestError(format!("{what}: not a valid descriptor: {e}")))
        .and_then(|d| {
            if d.size < 0 {
                invalid(format!("{what}: size is negative"))
            } else if d.media_type.is_empty() {
                invalid(format!("{what}: mediaType is empty"))
            } else {
                Ok(d)
            }
        })
}

/// Parses and validates a manifest. `content_type` is the request's Content-Type, if any.
pub fn parse_manifest(
    content_type: Option<&str>,
    bytes: &[u8],
) -> Result<ParsedManifest, ManifestError> {
    let raw: Raw = serde_json::from_slice(bytes)
        .map_err(|e| ManifestError(format!("manifest is not a valid JSON object: {e}")))?;
    let header = content_type.map(media::essence).filter(|ct| {
        !ct.is_empty() && ct != "application/json" && ct != "application/octet-stream"
    });
    if raw.schema_version == Some(1) {
        return parse_schema1(raw, header, bytes);
    }
    if raw.schema_version != Some(2) {
        return invalid("schemaVersion must be 2 (or 1 for Docker schema1)");
    }
    let media_type = match (&raw.media_type, &header) {
        (Some(body), Some(h)) if body != h => {
            return invalid(format!(
                "Content-Type {h:?} does not match the manifest's mediaType {body:?}"
            ));
        }
        (Some(body), _) => body.clone(),
        (None, Some(h)) => h.clone(),
        (None, None) if raw.manifests.is_some() => media::OCI_INDEX.to_string(),
        (None, None) => media::OCI_MANIFEST.to_string(),
    };
    let kind = match media_type.as_str() {
        media::OCI_MANIFEST => ManifestKind::OciManifest,
        media::OCI_INDEX => ManifestKind::OciIndex,
        media::DOCKER_MANIFEST => ManifestKind::DockerManifest,
        media::DOCKER_LIST => ManifestKind::DockerList,
        other => return invalid(format!("unsupported manifest media type {other:?}")),
    };
    let subject = raw
        .subject
        .as_ref()
        .map(|s| descriptor(s, "subject"))
        .transpose()?;
    let mut parsed = ParsedManifest {
        kind,
        media_type,
        digest: Digest::of(Algorithm::Sha256, bytes),
        artifact_type: raw.artifact_type.clone(),
        config: None,
        layers: Vec::new(),
        manifests: Vec::new(),
        subject,
        annotations: raw.annotations.clone(),
    };
    if kind.is_index() {
        if raw.config.is_some() || raw.layers.is_some() {
            return invalid("an index must not have config or layers");
        }
        let Some(children) = &raw.manifests else {
            return invalid("an index needs a manifests array");
        };
        for (i, c) in children.iter().enumerate() {
            parsed
                .manifests
                .push(descriptor(c, &format!("manifests[{i}]"))?);
        }
    } else {
        if raw.manifests.is_some() {
            return invalid("an image manifest must not have a manifests array");
        }
        let Some(config) = &raw.config else {
            return invalid("an image manifest needs a config descriptor");
        };
        parsed.config = Some(descriptor(config, "config")?);
        let Some(layers) = &raw.layers else {
            return invalid("an image manifest needs a layers array");
        };
        for (i, l) in layers.iter().enumerate() {
            parsed.layers.push(descriptor(l, &format!("layers[{i}]"))?);
        }
        if kind == ManifestKind::DockerManifest && parsed.artifact_type.is_some() {
            return invalid("artifactType is only valid on OCI manifests");
        }
    }
    Ok(parsed)
}

fn parse_schema1(
    raw: Raw,
    header: Option<String>,
    bytes: &[u8],
) -> Result<ParsedManifest, ManifestError> {
    let signed = raw.signatures.as_ref().is_some_and(|s| !s.is_empty());
    let media_type = match header.as_deref() {
        Some(h @ (media::DOCKER_SCHEMA1 | media::DOCKER_SCHEMA1_SIGNED)) => h.to_string(),
        Some(h) => {
            return invalid(format!(
                "Content-Type {h:?} does not match a schemaVersion 1 manifest"
            ));
        }
        None if signed => media::DOCKER_SCHEMA1_SIGNED.to_string(),
        None => media::DOCKER_SCHEMA1.to_string(),
    };
    let Some(fs_layers) = &raw.fs_layers else {
        return invalid("a schema1 manifest needs fsLayers");
    };
    let mut layers = Vec::new();
    for (i, l) in fs_layers.iter().enumerate() {
        let sum = l
            .get("blobSum")
            .and_then(Value::as_str)
            .ok_or_else(|| ManifestError(format!("fsLayers[{i}] has no blobSum")))?;
        let digest: Digest = sum
            .parse()
            .map_err(|e| ManifestError(format!("fsLayers[{i}].blobSum: {e}")))?;
        layers.push(Descriptor {
            media_type: "application/vnd.docker.image.rootfs.diff.tar.gzip".into(),
            digest,
            size: 0,
            artifact_type: None,
            annotations: None,
            platform: None,
            urls: None,
        });
    }
    let digest = if signed {
        Digest::of(Algorithm::Sha256, &jws_payload(&raw, bytes)?)
    } else {
        Digest::of(Algorithm::Sha256, bytes)
    };
    Ok(ParsedManifest {
        kind: ManifestKind::Schema1,
        media_type,
        digest,
        artifact_type: None,
        config: None,
        layers,
        manifests: Vec::new(),
        subject: None,
        annotations: None,
    })
}

/// The signed payload of a pretty-printed JWS schema1 manifest: the first `formatLength` bytes
/// followed by the base64url-decoded `formatTail`, both taken from the first signature's header.
fn jws_payload(raw: &Raw, bytes: &[u8]) -> Result<Vec<u8>, ManifestError> {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let protected = raw
        .signatures
        .as_ref()
        .and_then(|s| s.first())
        .and_then(|s| s.get("protected"))
        .and_then(Value::as_str)
        .ok_or_else(|| ManifestError("signature has no protected header".into()))?;
    let header = b64
        .decode(protected.trim_end_matches('='))
        .map_err(|_| ManifestError("signature protected header is not base64url".into()))?;
    let header: Value = serde_json::from_slice(&header)
        .map_err(|_| ManifestError("signature protected header is not JSON".into()))?;
    let len = header
        .get("formatLength")
        .and_then(Value::as_u64)
        .and_then(|n| usize::try_from(n).ok())
        .filter(|&n| n <= bytes.len())
        .ok_or_else(|| ManifestError("signature formatLength is missing or too large".into()))?;
    let tail = header
        .get("formatTail")
        .and_then(Value::as_str)
        .ok_or_else(|| ManifestError("signature has no formatTail".into()))?;
    let tail = b64
        .decode(tail.trim_end_matches('='))
        .map_err(|_| ManifestError("signature formatTail is not base64url".into()))?;
    let mut payload = bytes[..len].to_vec();
    payload.extend_from_slice(&tail);
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const EMPTY: &str = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

    fn image(extra: &str) -> String {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","digest":"{EMPTY}","size":2}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{EMPTY}","size":2}}]{extra}}}"#,
            media::OCI_MANIFEST,
            media::OCI_CONFIG
        )
    }

    #[test]
    fn oci_image_and_artifact() {
        let m = image("");
        let p = parse_manifest(Some(media::OCI_MANIFEST), m.as_bytes()).expect("valid");
        assert_eq!(p.kind, ManifestKind::OciManifest);
        assert_eq!(p.digest, Digest::sha256_of(m.as_bytes()));
        assert_eq!(p.required_blobs().count(), 2);
        let a = image(&format!(
            r#","artifactType":"application/spdx+json","subject":{{"mediaType":"{}","digest":"{EMPTY}","size":2}}"#,
            media::OCI_MANIFEST
        ));
        let p = parse_manifest(None, a.as_bytes()).expect("valid");
        assert_eq!(
            p.effective_artifact_type().as_deref(),
            Some("application/spdx+json")
        );
        assert!(p.subject.is_some());
    }

    #[test]
    fn rejects_mismatch_and_bad_shapes() {
        let m = image("");
        assert!(parse_manifest(Some(media::DOCKER_MANIFEST), m.as_bytes()).is_err());
        assert!(parse_manifest(None, b"[]").is_err());
        assert!(parse_manifest(None, b"{\"schemaVersion\":3}").is_err());
        assert!(parse_manifest(Some(media::OCI_INDEX), b"{\"schemaVersion\":2}").is_err());
        let bad_digest = m.replace(EMPTY, "sha256:nothex");
        assert!(parse_manifest(None, bad_digest.as_bytes()).is_err());
    }

    #[test]
    fn signed_schema1_digest_is_of_payload() {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let payload = format!(
            "{{\n   \"schemaVersion\": 1,\n   \"name\": \"a\",\n   \"tag\": \"t\",\n   \"fsLayers\": [{{\"blobSum\": \"{EMPTY}\"}}],\n   \"history\": []\n}}"
        );
        let cut = payload.len() - 2; // before "\n}"
        let protected = b64.encode(format!(
            r#"{{"formatLength":{cut},"formatTail":"{}"}}"#,
            b64.encode(&payload[cut..])
        ));
        let signed = format!(
            "{},\n   \"signatures\": [{{\"header\": {{}}, \"signature\": \"x\", \"protected\": \"{protected}\"}}]\n}}",
            &payload[..cut]
        );
        let p =
            parse_manifest(Some(media::DOCKER_SCHEMA1_SIGNED), signed.as_bytes()).expect("valid");
        assert_eq!(p.digest, Digest::sha256_of(payload.as_bytes()));
        assert_eq!(p.layers.len(), 1);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512), ct in "[a-z./+-]{0,40}") {
            let _ = parse_manifest(Some(&ct), &bytes);
            let _ = parse_manifest(None, &bytes);
        }
        #[test]
        fn arbitrary_json_never_panics(s in r#"\{("[a-zA-Z]{1,12}":(1|2|"[a-z:0-9]{0,8}"|\[\]|\{\}|null),?){0,6}\}"#) {
            let _ = parse_manifest(None, s.as_bytes());
        }
        #[test]
        fn valid_manifests_round_trip(n in 0usize..5, annotation in "[a-z]{0,10}") {
            let layers: Vec<String> = (0..n).map(|_| format!(r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{EMPTY}","size":2}}"#)).collect();
            let m = format!(r#"{{"schemaVersion":2,"config":{{"mediaType":"{}","digest":"{EMPTY}","size":2}},"layers":[{}],"annotations":{{"a":"{annotation}"}}}}"#, media::OCI_CONFIG, layers.join(","));
            let p = parse_manifest(Some(media::OCI_MANIFEST), m.as_bytes()).expect("valid");
            prop_assert_eq!(p.layers.len(), n);
            prop_assert_eq!(p.digest, Digest::sha256_of(m.as_bytes()));
            prop_assert_eq!(p.annotations.and_then(|a| a.get("a").cloned()), Some(annotation));
        }
    }
}
