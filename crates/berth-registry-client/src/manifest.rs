//! Manifests: HEAD for identity, GET for the bytes, both verified against the digests the
//! reference and the registry state.

use crate::client::RegistryClient;
use crate::error::Error;
use crate::request::read_capped;
use crate::{Manifest, ManifestInfo};
use berth_oci::media;
use berth_oci::{Digest, Reference};
use bytes::Bytes;
use reqwest::Method;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderMap};
use std::sync::LazyLock;

/// Every manifest type Berth stores, in one Accept header.
static ACCEPT: LazyLock<String> = LazyLock::new(|| media::MANIFEST_TYPES.join(", "));

const DOCKER_CONTENT_DIGEST: &str = "docker-content-digest";

/// Content types that say nothing about which manifest a body is.
fn is_generic(essence: &str) -> bool {
    matches!(
        essence,
        "" | "application/json" | "text/plain" | "application/octet-stream"
    )
}

fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(media::essence)
        .unwrap_or_default()
}

fn header_digest(headers: &HeaderMap) -> Result<Option<Digest>, Error> {
    let Some(v) = headers.get(DOCKER_CONTENT_DIGEST) else {
        return Ok(None);
    };
    v.to_str()
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .map(Some)
        .ok_or_else(|| Error::Invalid("the Docker-Content-Digest header is not a digest".into()))
}

/// The media type a manifest's JSON states, else the one its shape implies.
fn media_type_of(bytes: &[u8]) -> Result<String, Error> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Shape {
        #[serde(default)]
        media_type: Option<String>,
        #[serde(default)]
        schema_version: Option<u64>,
        #[serde(default)]
        manifests: Option<serde_json::Value>,
        #[serde(default)]
        signatures: Option<serde_json::Value>,
    }
    let s: Shape = serde_json::from_slice(bytes)
        .map_err(|e| Error::Invalid(format!("the manifest is not JSON: {e}")))?;
    Ok(match s {
        Shape {
            media_type: Some(m),
            ..
        } if !m.is_empty() => media::essence(&m),
        Shape {
            schema_version: Some(1),
            signatures,
            ..
        } => if signatures.is_some() {
            media::DOCKER_SCHEMA1_SIGNED
        } else {
            media::DOCKER_SCHEMA1
        }
        .to_string(),
        Shape {
            manifests: Some(_), ..
        } => media::OCI_INDEX.to_string(),
        _ => media::OCI_MANIFEST.to_string(),
    })
}

fn mismatch(expected: &Digest, actual: &Digest) -> Error {
    Error::DigestMismatch {
        expected: expected.to_string(),
        actual: actual.to_string(),
    }
}

/// Checks `bytes` against the reference's digest and the registry's Docker-Content-Digest, each
/// computed with its own algorithm; answers the manifest's digest.
fn verify(reference: &Reference, stated: Option<&Digest>, bytes: &[u8]) -> Result<Digest, Error> {
    let mut digest = Digest::sha256_of(bytes);
    if let Reference::Digest(want) = reference {
        let actual = Digest::of(want.algorithm(), bytes);
        if actual != *want {
            return Err(mismatch(want, &actual));
        }
        digest = actual;
    }
    if let Some(want) = stated {
        let actual = Digest::of(want.algorithm(), bytes);
        if actual != *want {
            return Err(mismatch(want, &actual));
        }
    }
    Ok(digest)
}

impl RegistryClient {
    fn manifest_target(&self, repo: &str, reference: &str) -> Result<(String, Reference), Error> {
        let repo = self.repo_path(repo)?;
        let reference: Reference = reference.parse().map_err(|e| {
            Error::Invalid(format!(
                "reference {:?}: {e}",
                crate::error::truncate(reference, 100)
            ))
        })?;
        Ok((repo, reference))
    }

    /// A manifest's digest, media type and size, by HEAD; a registry that states no digest,
    /// type or length is asked for the manifest itself.
    pub async fn head_manifest(&self, repo: &str, reference: &str) -> Result<ManifestInfo, Error> {
        let (path, r) = self.manifest_target(repo, reference)?;
        let url = self.url(&format!("/v2/{path}/manifests/{r}"))?;
        let scope = format!("repository:{path}:pull");
        let what = format!("manifest {path}:{r}");
        let sent = self
            .send(Method::HEAD, url, Some(&ACCEPT), Some(&scope), true)
            .await?;
        if !sent.resp.status().is_success() {
            return Err(self.fail(sent.resp, &what, sent.authenticated).await);
        }
        let headers = sent.resp.headers();
        let digest = header_digest(headers)?;
        if let (Reference::Digest(want), Some(got)) = (&r, &digest)
            && want != got
        {
            return Err(mismatch(want, got));
        }
        let media_type = content_type(headers);
        let size = headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        match (digest, size) {
            (Some(digest), Some(size)) if !is_generic(&media_type) => Ok(ManifestInfo {
                digest,
                media_type,
                size,
            }),
            _ => {
                let m = self.get_manifest(repo, reference).await?;
                Ok(ManifestInfo {
                    digest: m.digest,
                    media_type: m.media_type,
                    size: m.bytes.len() as u64,
                })
            }
        }
    }

    /// A manifest's bytes (at most 4 MiB), media type and digest (sha256 of the bytes, or the
    /// reference's digest when it is one), verified against the reference and the registry's
    /// Docker-Content-Digest.
    pub async fn get_manifest(&self, repo: &str, reference: &str) -> Result<Manifest, Error> {
        let (path, r) = self.manifest_target(repo, reference)?;
        let url = self.url(&format!("/v2/{path}/manifests/{r}"))?;
        let scope = format!("repository:{path}:pull");
        let what = format!("manifest {path}:{r}");
        let sent = self
            .send(Method::GET, url, Some(&ACCEPT), Some(&scope), true)
            .await?;
        if !sent.resp.status().is_success() {
            return Err(self.fail(sent.resp, &what, sent.authenticated).await);
        }
        let headers = sent.resp.headers();
        let stated = header_digest(headers)?;
        let mut media_type = content_type(headers);
        let bytes: Bytes =
            read_capped(sent.resp, berth_oci::manifest::MAX_MANIFEST_BYTES, &what).await?;
        let digest = verify(&r, stated.as_ref(), &bytes)?;
        if is_generic(&media_type) {
            media_type = media_type_of(&bytes)?;
        }
        Ok(Manifest {
            bytes,
            media_type,
            digest,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_type_comes_from_the_json_when_the_header_is_generic() {
        let t = |s: &str| media_type_of(s.as_bytes()).ok();
        assert_eq!(
            t(r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json"}"#).as_deref(),
            Some(media::DOCKER_MANIFEST)
        );
        assert_eq!(
            t(r#"{"schemaVersion":2,"manifests":[]}"#).as_deref(),
            Some(media::OCI_INDEX)
        );
        assert_eq!(
            t(r#"{"schemaVersion":2,"layers":[]}"#).as_deref(),
            Some(media::OCI_MANIFEST)
        );
        assert_eq!(
            t(r#"{"schemaVersion":1,"signatures":[]}"#).as_deref(),
            Some(media::DOCKER_SCHEMA1_SIGNED)
        );
        assert!(t("not json").is_none());
        assert!(is_generic("application/json") && !is_generic(media::OCI_INDEX));
    }

    #[test]
    fn bytes_must_match_the_reference_and_the_stated_digest() {
        let body = b"{}";
        let d256 = Digest::sha256_of(body);
        let d512 = Digest::of(berth_oci::Algorithm::Sha512, body);
        let tag: Reference = "latest".parse().expect("tag");
        assert_eq!(verify(&tag, None, body).ok(), Some(d256.clone()));
        assert_eq!(verify(&tag, Some(&d512), body).ok(), Some(d256.clone()));
        let by512 = Reference::Digest(d512.clone());
        assert_eq!(verify(&by512, Some(&d256), body).ok(), Some(d512));
        let other = Digest::sha256_of(b"[]");
        assert!(matches!(
            verify(&Reference::Digest(other.clone()), None, body),
            Err(Error::DigestMismatch { .. })
        ));
        assert!(matches!(
            verify(&tag, Some(&other), body),
            Err(Error::DigestMismatch { .. })
        ));
    }
}
