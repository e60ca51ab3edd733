//! Manifest push, pull and delete; tags; referrers.

use crate::auth::Who;
use crate::caller::record_in;
use crate::content::Manifest;
use crate::error::{Malformed, Missing};
use crate::{Error, Registry, Result};
use berth_db::{ManifestRow, NewManifest, PutManifestError, RefRow};
use berth_oci::manifest::{ParsedManifest, parse_manifest};
use berth_oci::{Digest, Reference, RepoName, Tag};

/// What a stored manifest requires the repository to hold already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Completeness {
    /// Every blob and child manifest (a push).
    Full,
    /// Every blob; an index's children may be absent (`FEATURE_SPARSE_INDEX`, a mirror's
    /// architecture filter).
    SparseIndex,
    /// Nothing: a pull-through cache's manifest, whose blobs are fetched when pulled.
    Placeholders,
}

/// What a successful manifest PUT reports.
#[derive(Debug, Clone)]
pub struct ManifestPut {
    pub digest: Digest,
    pub subject: Option<Digest>,
    /// The tags now pointing at the manifest, in the order given.
    pub tags: Vec<Tag>,
}

/// One entry of the referrers answer.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Referrer {
    pub media_type: String,
    pub digest: String,
    pub size: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<serde_json::Value>,
}

fn refs_of(p: &ParsedManifest) -> Vec<RefRow> {
    let row = |kind: &'static str, d: &berth_oci::Descriptor| RefRow {
        kind,
        digest: d.digest.to_string(),
        size: d.size,
        media_type: d.media_type.clone(),
    };
    let mut refs = Vec::new();
    refs.extend(p.config.iter().map(|d| row("config", d)));
    refs.extend(p.layers.iter().map(|d| row("layer", d)));
    refs.extend(p.manifests.iter().map(|d| row("manifest", d)));
    refs.extend(p.subject.iter().map(|d| row("subject", d)));
    refs
}

fn manifest_unknown(repo: &RepoName, reference: &Reference) -> Error {
    Error::missing(
        Missing::Manifest,
        format!("manifest {reference} is not in repository {repo}"),
    )
}

impl Registry {
    /// Validates and stores a manifest, tagging it with `reference` when that is a tag and with
    /// every tag of `extra_tags` (the `?tag=` parameters of a push by digest), all in one
    /// transaction: either every tag points at the manifest or none moved.
    pub async fn manifest_put(
        &self,
        who: &Who,
        repo: &RepoName,
        reference: &Reference,
        extra_tags: &[Tag],
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Result<ManifestPut> {
        let completeness = if self.config.mirror.sparse_index {
            Completeness::SparseIndex
        } else {
            Completeness::Full
        };
        self.manifest_put_as(
            who,
            repo,
            reference,
            extra_tags,
            content_type,
            body,
            completeness,
        )
        .await
    }

    /// [`Registry::manifest_put`], with what the repository must already hold.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn manifest_put_as(
        &self,
        who: &Who,
        repo: &RepoName,
        reference: &Reference,
        extra_tags: &[Tag],
        content_type: Option<&str>,
        body: Vec<u8>,
        completeness: Completeness,
    ) -> Result<ManifestPut> {
        let mut tags: Vec<Tag> = Vec::new();
        if let Reference::Tag(t) = reference {
            tags.push(t.clone());
        }
        for t in extra_tags {
            if !tags.contains(t) {
                tags.push(t.clone());
            }
        }
        if body.len() > self.config.max_manifest_bytes {
            return Err(Error::TooLarge(format!(
                "manifest is {} bytes; the limit is {}",
                body.len(),
                self.config.max_manifest_bytes
            )));
        }
        let parsed = parse_manifest(content_type, &body)
            .map_err(|e| Error::malformed(Malformed::Manifest, e.0))?;
        if let Reference::Digest(d) = reference {
            let matches = if d.algorithm() == parsed.digest.algorithm() {
                *d == parsed.digest
            } else {
                *d == Digest::of(d.algorithm(), &body)
            };
            if !matches {
                return Err(Error::malformed(
                    Malformed::Digest,
                    format!("manifest digest is {}, not {d}", parsed.digest),
                ));
            }
        }
        let labels = self.config_labels(&parsed).await;
        let expires_after = labels
            .iter()
            .find(|(k, _)| k == crate::labels::EXPIRES_AFTER)
            .and_then(|(_, v)| crate::labels::parse_duration_s(v))
            .filter(|s| *s > 0);
        let tag_expires_at = match expires_after {
            Some(s) if !tags.is_empty() => {
                // An immutable tag keeps no expiry.
                let mut immutable = false;
                if !self.config.immutable_tags_can_expire
                    && let Some(id) = self.db.repo_id(repo.as_str()).await?
                {
                    for t in &tags {
                        immutable |= self.tag_is_immutable(repo, id, t.as_str()).await?;
                    }
                }
                (!immutable).then(|| berth_db::now_ms().saturating_add(s.saturating_mul(1000)))
            }
            _ => None,
        };
        let new = NewManifest {
            labels: labels
                .into_iter()
                .map(|(k, v)| (uuid::Uuid::new_v4().to_string(), k, v))
                .collect(),
            tag_expires_at,
            digest: match reference {
                Reference::Digest(d) => d.to_string(),
                Reference::Tag(_) => parsed.digest.to_string(),
            },
            media_type: parsed.media_type.clone(),
            artifact_type: parsed.effective_artifact_type(),
            config_digest: parsed.config.as_ref().map(|c| c.digest.to_string()),
            subject_digest: parsed.subject.as_ref().map(|s| s.digest.to_string()),
            annotations: parsed
                .annotations
                .as_ref()
                .and_then(|a| serde_json::to_string(a).ok()),
            refs: refs_of(&parsed),
            required_blobs: if completeness == Completeness::Placeholders {
                Vec::new()
            } else {
                parsed.required_blobs().map(|d| d.to_string()).collect()
            },
            required_manifests: if completeness == Completeness::Full {
                parsed
                    .manifests
                    .iter()
                    .map(|d| d.digest.to_string())
                    .collect()
            } else {
                Vec::new()
            },
            content: body,
        };
        if let Some(id) = self.db.repo_id(repo.as_str()).await? {
            for t in &tags {
                self.check_tag_change(repo, id, t.as_str(), Some(&new.digest))
                    .await?;
            }
        }
        self.push_gate(who, repo, &parsed).await?;
        let tag_names: Vec<&str> = tags.iter().map(Tag::as_str).collect();
        let quota = self.quota_to_check(repo.namespace()).await?;
        let mut w = self.db.write().await?;
        let repo_id = self
            .db
            .ensure_repo(&mut w, repo.as_str(), repo.namespace())
            .await?;
        let mut warnings = Vec::new();
        if let Some(q) = &quota {
            let blobs: Vec<String> = new
                .refs
                .iter()
                .filter(|r| r.kind == "config" || r.kind == "layer")
                .map(|r| r.digest.clone())
                .collect();
            match self.quota_gate(&mut w, repo, q, &blobs).await? {
                crate::quotas::QuotaOutcome::Allow(events) => warnings = events,
                crate::quotas::QuotaOutcome::Refuse(error, event) => {
                    drop(w);
                    let data = crate::quotas::quota_event_data(&event.metadata);
                    self.db.insert_audit(&[*event]).await?;
                    self.notify_namespace(repo.namespace(), "quota_error", data)
                        .await;
                    return Err(error);
                }
            }
        }
        let before = match self
            .db
            .put_manifest(&mut w, repo_id, &new, &tag_names)
            .await
        {
            Ok(before) => before,
            Err(PutManifestError::Missing { blobs, manifests }) => {
                let mut what = Vec::new();
                if !blobs.is_empty() {
                    what.push(format!("blobs {}", blobs.join(", ")));
                }
                if !manifests.is_empty() {
                    what.push(format!("manifests {}", manifests.join(", ")));
                }
                return Err(Error::malformed(
                    Malformed::References,
                    format!("push these to {repo} first: {}", what.join("; ")),
                ));
            }
            Err(PutManifestError::Db(e)) => return Err(e.into()),
        };
        // Recorded with the push: `push_repo`, and `create_tag` / `move_tag` for each tag the
        // push created or moved (one that already pointed here is not a change).
        let digest = &new.digest;
        let mut entries = vec![who.entry("push_repo").repo(repo.as_str()).meta(
            serde_json::json!({"reference": reference.to_string(), "manifest_digest": digest}),
        )];
        for (t, old) in tags.iter().zip(before) {
            entries.push(match old {
                None => who.entry("create_tag").meta(
                    serde_json::json!({"tag": t.as_str(), "manifest_digest": digest}),
                ),
                Some(old) if old != *digest => who.entry("move_tag").meta(serde_json::json!({
                    "tag": t.as_str(), "manifest_digest": digest, "original_manifest_digest": old,
                })),
                Some(_) => continue,
            }.repo(repo.as_str()));
        }
        let rows: Vec<_> = entries.into_iter().map(|e| e.row()).collect();
        self.db.insert_audit_in(&mut w, &rows).await?;
        for warning in &warnings {
            let data = crate::quotas::quota_event_data(&warning.metadata);
            self.notify_namespace_in(&mut w, repo.namespace(), "quota_warning", data)
                .await?;
        }
        // One repo_push event per pushed tag, in the push's transaction (a push by digest
        // updates no tag and fires none, as in Quay).
        for t in &tags {
            self.notify_in(
                &mut w,
                repo_id,
                repo.as_str(),
                "repo_push",
                serde_json::json!({"updated_tags": [t.as_str()]}),
            )
            .await?;
        }
        // A cache's manifest has no blobs yet: it is indexed once they are stored.
        if completeness != Completeness::Placeholders {
            self.queue_scans_in(&mut w, &parsed).await?;
        }
        w.commit().await?;
        if !warnings.is_empty() {
            self.db.insert_audit(&warnings).await?;
        }
        let digest = match reference {
            Reference::Digest(d) => d.clone(),
            Reference::Tag(_) => parsed.digest,
        };
        Ok(ManifestPut {
            digest,
            subject: parsed.subject.map(|s| s.digest),
            tags,
        })
    }

    /// A live manifest by tag or digest, if there is one.
    async fn manifest_lookup(
        &self,
        repo: &RepoName,
        reference: &Reference,
    ) -> Result<Option<ManifestRow>> {
        Ok(match reference {
            Reference::Tag(t) => self.db.manifest_by_tag(repo.as_str(), t.as_str()).await?,
            Reference::Digest(d) => {
                self.db
                    .manifest_by_digest(repo.as_str(), &d.to_string())
                    .await?
            }
        })
    }

    /// Looks up a live manifest by tag or digest and records the pull.
    pub async fn manifest_get(
        &self,
        repo: &RepoName,
        reference: &Reference,
    ) -> Result<ManifestRow> {
        let row = self
            .manifest_lookup(repo, reference)
            .await?
            .ok_or_else(|| manifest_unknown(repo, reference))?;
        self.pulls.record(row.repo_id, berth_db::now_ms());
        Ok(row)
    }

    /// Serves a manifest to a client, counted as a pull. A client that cannot read an index
    /// (`accepts` says no to its type) and asks by tag gets the index's linux/amd64 image
    /// instead when it accepts that image's type, as Distribution does. With `who`, the pull is
    /// audited as `pull_repo` (buffered: a pull never waits for a write); HEAD passes `None`.
    pub async fn manifest_pull(
        &self,
        who: Option<&Who>,
        repo: &RepoName,
        reference: &Reference,
        accepts: &(dyn Fn(&str) -> bool + Sync),
    ) -> Result<Manifest> {
        let mut row = self.manifest_get(repo, reference).await?;
        if matches!(reference, Reference::Tag(_))
            && berth_oci::media::is_index(&row.media_type)
            && !accepts(&row.media_type)
            && let Ok(parsed) = parse_manifest(Some(&row.media_type), &row.content)
        {
            let child = parsed.manifests.iter().find(|d| {
                d.platform.as_ref().is_some_and(|p| {
                    p.get("os").and_then(|v| v.as_str()) == Some("linux")
                        && p.get("architecture").and_then(|v| v.as_str()) == Some("amd64")
                }) && accepts(&d.media_type)
            });
            if let Some(child) = child {
                row = self
                    .manifest_get(repo, &Reference::Digest(child.digest.clone()))
                    .await?;
            }
        }
        if who.is_some() {
            self.policy_gate(who, repo, &row.digest, crate::scan::Gate::Pull)
                .await?;
        }
        if let Some(who) = who {
            self.audit
                .record_later(
                    who.entry("pull_repo")
                        .repo(repo.as_str())
                        .meta(serde_json::json!({
                            "reference": reference.to_string(), "manifest_digest": row.digest,
                        })),
                );
        }
        Manifest::from_row(row)
    }

    /// Reads a live manifest without counting a pull (an administrator's view of it).
    pub(crate) async fn manifest_read(
        &self,
        repo: &RepoName,
        reference: &Reference,
    ) -> Result<Manifest> {
        self.manifest_lookup(repo, reference)
            .await?
            .ok_or_else(|| manifest_unknown(repo, reference))
            .and_then(Manifest::from_row)
    }

    /// The digest a reference resolves to now, without counting a pull.
    pub async fn manifest_get_quiet(
        &self,
        repo: &RepoName,
        reference: &Reference,
    ) -> Result<Option<String>> {
        Ok(self
            .manifest_lookup(repo, reference)
            .await?
            .map(|r| r.digest))
    }

    /// Deletes by digest (the manifest and every tag on it) or by tag (only the tag); audited as
    /// `manifest_delete` or `delete_tag`.
    pub async fn manifest_delete(
        &self,
        who: &Who,
        repo: &RepoName,
        reference: &Reference,
    ) -> Result<()> {
        let Some(repo_id) = self.db.repo_id(repo.as_str()).await? else {
            return Err(manifest_unknown(repo, reference));
        };
        match reference {
            Reference::Tag(t) => {
                self.check_tag_change(repo, repo_id, t.as_str(), None)
                    .await?
            }
            Reference::Digest(d) => self.check_manifest_delete(repo, &d.to_string()).await?,
        }
        let mut w = self.db.write().await?;
        let found = match reference {
            Reference::Digest(d) => {
                self.db
                    .delete_manifest(&mut w, repo_id, &d.to_string())
                    .await?
            }
            Reference::Tag(t) => self.db.delete_tag(&mut w, repo_id, t.as_str()).await?,
        };
        if !found {
            return Err(manifest_unknown(repo, reference));
        }
        let entry = match reference {
            Reference::Tag(t) => who
                .entry("delete_tag")
                .meta(serde_json::json!({"tag": t.as_str()})),
            Reference::Digest(d) => who
                .entry("manifest_delete")
                .meta(serde_json::json!({"manifest_digest": d.to_string()})),
        };
        record_in(&self.db, &mut w, entry.repo(repo.as_str())).await?;
        w.commit().await?;
        Ok(())
    }

    /// A page of live tags; NAME_UNKNOWN when the repository does not exist.
    pub async fn tags(&self, repo: &RepoName, last: Option<&str>, n: i64) -> Result<Vec<String>> {
        let repo_id = self.db.repo_id(repo.as_str()).await?.ok_or_else(|| {
            Error::missing(
                Missing::Repository,
                format!("repository {repo} does not exist"),
            )
        })?;
        Ok(self.db.tags(repo_id, last, n).await?)
    }

    /// Manifests in `repo` whose subject is `subject`, optionally only of one artifact type.
    pub async fn referrers(
        &self,
        repo: &RepoName,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Referrer>> {
        let Some(repo_id) = self.db.repo_id(repo.as_str()).await? else {
            return Ok(Vec::new());
        };
        let rows = self.db.referrers(repo_id, &subject.to_string()).await?;
        Ok(rows
            .into_iter()
            .filter(|r| artifact_type.is_none() || r.artifact_type.as_deref() == artifact_type)
            .map(|r| Referrer {
                media_type: r.media_type,
                digest: r.digest,
                size: r.size,
                artifact_type: r.artifact_type,
                annotations: r.annotations.and_then(|a| serde_json::from_str(&a).ok()),
            })
            .collect())
    }
}
