//! Labels on manifests: those of the image config, read at push, and those added through the API.
//! The config label `quay.expires-after` (`30m`, `12h`, `10d`, `2w`) gives the pushed tag an
//! expiry.

use crate::auth::Who;
use crate::{Error, Label, Registry, Result};
use berth_db::{LabelRow, LabelSource};
use berth_oci::manifest::ParsedManifest;
use berth_oci::{Digest, RepoName, media};
use futures::StreamExt;

/// Image configs larger than this are not read for labels.
const MAX_CONFIG_BYTES: u64 = 1 << 20;
/// The config label that sets a pushed tag's expiry.
pub const EXPIRES_AFTER: &str = "quay.expires-after";

/// Seconds in a duration written as Quay writes them: `30s`, `30m`, `12h`, `10d`, `2w`.
pub fn parse_duration_s(s: &str) -> Option<i64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = s.split_at(split);
    let n: i64 = n.parse().ok()?;
    let mul = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return None,
    };
    n.checked_mul(mul)
}

/// A label key as Berth accepts it through the API: 1–255 characters of letters, digits and
/// `. _ - /`.
fn valid_key(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 255
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/'))
}

impl Registry {
    /// The labels of a manifest's image config (`config.Labels`), sorted by key; empty when the
    /// manifest has no image config, or it cannot be read or parsed.
    pub(crate) async fn config_labels(&self, parsed: &ParsedManifest) -> Vec<(String, String)> {
        let Some(cfg) = &parsed.config else {
            return Vec::new();
        };
        if (cfg.media_type != media::OCI_CONFIG && cfg.media_type != media::DOCKER_CONFIG)
            || u64::try_from(cfg.size).map_or(true, |s| s > MAX_CONFIG_BYTES)
        {
            return Vec::new();
        }
        let Ok(store) = self.read_store(&cfg.digest).await else {
            return Vec::new();
        };
        let Ok(mut stream) = store.get(&cfg.digest, None).await else {
            return Vec::new();
        };
        let mut bytes = Vec::new();
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(c) if (bytes.len() + c.len()) as u64 <= MAX_CONFIG_BYTES => {
                    bytes.extend_from_slice(&c)
                }
                _ => return Vec::new(),
            }
        }
        if Digest::of(cfg.digest.algorithm(), &bytes) != cfg.digest {
            return Vec::new();
        }
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
            return Vec::new();
        };
        let mut out: Vec<(String, String)> = v["config"]["Labels"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        out
    }

    /// A manifest's labels whose key starts with `prefix`.
    pub(crate) async fn labels(
        &self,
        repo: &RepoName,
        digest: &str,
        prefix: &str,
    ) -> Result<Vec<Label>> {
        let id = self.repo_id_of(repo).await?;
        self.db
            .labels(id, digest, prefix)
            .await?
            .map(crate::model::all)
            .ok_or_else(|| Error::not_found(format!("{repo} has no manifest {digest}")))
    }

    pub(crate) async fn label(
        &self,
        repo: &RepoName,
        digest: &str,
        label_id: &str,
    ) -> Result<Label> {
        let id = self.repo_id_of(repo).await?;
        self.db
            .label(id, digest, label_id)
            .await?
            .map(Label::from)
            .ok_or_else(|| Error::not_found(format!("manifest {digest} has no label {label_id}")))
    }

    /// Adds a label through the API. `media_type` is `text/plain` or `application/json` (whose
    /// value must then be JSON).
    /// Adds a label to a manifest; audited as `manifest_label_add`.
    pub(crate) async fn add_label(
        &self,
        who: &Who,
        repo: &RepoName,
        digest: &str,
        key: &str,
        value: &str,
        media_type: Option<&str>,
    ) -> Result<Label> {
        if !valid_key(key) {
            return Err(Error::invalid(format!(
                "label key {key:?} is invalid: use 1-255 letters, digits, '.', '_', '-' or '/'"
            )));
        }
        let media_type = media_type.unwrap_or("text/plain");
        match media_type {
            "text/plain" => {}
            "application/json" => {
                if serde_json::from_str::<serde_json::Value>(value).is_err() {
                    return Err(Error::invalid(
                        "the value of an application/json label must be JSON",
                    ));
                }
            }
            other => {
                return Err(Error::invalid(format!(
                    "media_type must be text/plain or application/json, not {other:?}"
                )));
            }
        }
        if value.len() > 4096 {
            return Err(Error::invalid("a label value is at most 4096 bytes"));
        }
        let id = self.repo_id_of(repo).await?;
        let label = LabelRow {
            id: uuid::Uuid::new_v4().to_string(),
            key: key.to_string(),
            value: value.to_string(),
            media_type: media_type.to_string(),
            source_type: LabelSource::Api,
        };
        if !self.db.add_label(id, digest, &label).await? {
            return Err(Error::not_found(format!("{repo} has no manifest {digest}")));
        }
        let label = Label::from(label);
        self.audit_label(who, "manifest_label_add", repo, digest, &label)
            .await;
        Ok(label)
    }

    async fn audit_label(&self, who: &Who, kind: &str, repo: &RepoName, digest: &str, l: &Label) {
        self.audit
            .record(who.entry(kind).repo(repo.as_str()).meta(serde_json::json!({
                "id": l.id, "key": l.key, "value": l.value, "manifest_digest": digest,
            })))
            .await;
    }

    /// Removes a label from a manifest; audited as `manifest_label_delete`.
    pub(crate) async fn delete_label(
        &self,
        who: &Who,
        repo: &RepoName,
        digest: &str,
        label_id: &str,
    ) -> Result<()> {
        let label = self.label(repo, digest, label_id).await?;
        let id = self.repo_id_of(repo).await?;
        if !self.db.delete_label(id, digest, label_id).await? {
            return Err(Error::not_found(format!(
                "manifest {digest} has no label {label_id}"
            )));
        }
        self.audit_label(who, "manifest_label_delete", repo, digest, &label)
            .await;
        Ok(())
    }
}
