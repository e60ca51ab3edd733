//! Tags through the API and the time machine: history, moves, restores within the namespace's
//! window, per-tag expiry, and the chore that moves expired tags into history.

use crate::auth::{AuditEntry, Who};
use crate::caller::record_in;
use crate::error::Missing;
use crate::model::{self, TagFilter};
use crate::{Error, Registry, Result};
use berth_db::{AuditRow, now_ms};
use berth_oci::{Digest, RepoName, Tag};

/// Which live tags a bulk action is about.
#[derive(Debug, Clone, Copy)]
pub enum TagSelection<'a> {
    /// These names (those not live are left out).
    Names(&'a [String]),
    /// Every live tag the match takes (all of them with the default match).
    Matching(TagMatch<'a>),
}

/// Which live tags a listing or a bulk selection takes: every condition given must hold.
#[derive(Debug, Default, Clone, Copy)]
pub struct TagMatch<'a> {
    /// The name contains this text.
    pub contains: Option<&'a str>,
    /// The name matches this regular expression (Rust `regex` syntax, unanchored; linear
    /// time whatever the pattern).
    pub regex: Option<&'a str>,
    /// The manifest has a label with this key (and, if given, this value).
    pub label: Option<(&'a str, Option<&'a str>)>,
}

impl<'a> TagMatch<'a> {
    pub(crate) fn db(&self) -> berth_db::LiveTagFilter<'a> {
        berth_db::LiveTagFilter {
            contains: self.contains.filter(|c| !c.is_empty()),
            label: self.label.filter(|l| !l.0.is_empty()),
        }
    }

    /// The compiled name pattern, if one is given; a clear error if it is not one.
    pub(crate) fn regex(&self) -> Result<Option<regex::Regex>> {
        self.regex
            .filter(|r| !r.is_empty())
            .map(|r| {
                regex::RegexBuilder::new(r)
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|e| Error::invalid(format!("{r:?} is not a regular expression: {e}")))
            })
            .transpose()
    }
}

/// Orders two tag names as versions: `v1.10` after `v1.9`, `1.0.0` after `1.0.0-rc.1`, and any
/// name that starts with a digit (after an optional `v`) after every name that does not;
/// `Equal` for two names that are not versions (callers then order by name).
pub fn version_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering::{Equal, Greater, Less};
    fn version(s: &str) -> Option<&str> {
        let t = s.strip_prefix(['v', 'V']).unwrap_or(s);
        t.starts_with(|c: char| c.is_ascii_digit()).then_some(t)
    }
    /// Runs of digits and of anything else.
    fn runs(s: &str) -> impl Iterator<Item = &str> {
        let mut rest = s;
        std::iter::from_fn(move || {
            let first = rest.chars().next()?;
            let digit = first.is_ascii_digit();
            let end = rest
                .find(|c: char| c.is_ascii_digit() != digit)
                .unwrap_or(rest.len());
            let (run, tail) = rest.split_at(end);
            rest = tail;
            Some(run)
        })
    }
    fn is_num(r: &str) -> bool {
        r.starts_with(|c: char| c.is_ascii_digit())
    }
    let (a, b) = match (version(a), version(b)) {
        (Some(a), Some(b)) => (a, b),
        (Some(_), None) => return Greater,
        (None, Some(_)) => return Less,
        (None, None) => return Equal,
    };
    let (mut ra, mut rb) = (runs(a), runs(b));
    loop {
        let ord = match (ra.next(), rb.next()) {
            (None, None) => return Equal,
            // `1.0` before `1.0.1`, but a pre-release (`1.0-rc1`) before its release.
            (None, Some(r)) => return if r.starts_with('-') { Greater } else { Less },
            (Some(r), None) => return if r.starts_with('-') { Less } else { Greater },
            (Some(x), Some(y)) => match (is_num(x), is_num(y)) {
                (true, true) => {
                    let (x, y) = (x.trim_start_matches('0'), y.trim_start_matches('0'));
                    x.len().cmp(&y.len()).then_with(|| x.cmp(y))
                }
                (true, false) => Greater,
                (false, true) => Less,
                (false, false) => x.cmp(y),
            },
        };
        if ord != Equal {
            return ord;
        }
    }
}

/// The live tags of a selection: those a deletion ends, and those immutability keeps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BulkTags {
    pub deletable: Vec<String>,
    pub protected: Vec<String>,
    /// What ending the deletable ones frees once they leave the time-machine window.
    pub bytes_freed: i64,
}

fn tag_name(tag: &str) -> Result<Tag> {
    tag.parse().map_err(|e: berth_oci::name::NameError| {
        Error::invalid(format!("invalid tag {tag:?}: {}", e.0))
    })
}

fn immutable_error(repo: &RepoName, tag: &str, what: &str) -> Error {
    Error::denied(format!(
        "tag {repo}:{tag} is immutable and cannot be {what}; push under a new tag, or ask a repository administrator to lift its immutability"
    ))
}

/// Whether any of `policies` makes tag `name` immutable.
pub(crate) fn policy_protects(policies: &[berth_db::ImmutabilityPolicyRow], name: &str) -> bool {
    policies
        .iter()
        .any(|p| regex::Regex::new(&p.pattern).is_ok_and(|re| re.is_match(name) == p.matches))
}

impl Registry {
    /// Whether a tag is immutable: flagged so, or matched by a policy of its namespace or
    /// repository.
    pub async fn tag_is_immutable(&self, repo: &RepoName, repo_id: i64, tag: &str) -> Result<bool> {
        if self.db.tag_flagged_immutable(repo_id, tag).await? {
            return Ok(true);
        }
        let policies = self
            .db
            .immutability_policies_for(repo.namespace(), repo.as_str())
            .await?;
        Ok(policy_protects(&policies, tag))
    }

    /// Refuses to move (to `new_digest`) or delete (`None`) an immutable live tag.
    pub async fn check_tag_change(
        &self,
        repo: &RepoName,
        repo_id: i64,
        tag: &str,
        new_digest: Option<&str>,
    ) -> Result<()> {
        let Some((current, _)) = self.db.live_tag(repo_id, tag).await? else {
            return Ok(());
        };
        if new_digest == Some(current.as_str()) {
            return Ok(());
        }
        if self.tag_is_immutable(repo, repo_id, tag).await? {
            return Err(immutable_error(
                repo,
                tag,
                if new_digest.is_some() {
                    "moved"
                } else {
                    "deleted"
                },
            ));
        }
        Ok(())
    }

    /// Refuses to delete a manifest that an immutable tag points at.
    pub async fn check_manifest_delete(&self, repo: &RepoName, digest: &str) -> Result<()> {
        let Some(id) = self.db.repo_id(repo.as_str()).await? else {
            return Ok(());
        };
        for tag in self.db.live_tags_on(id, digest).await? {
            if self.tag_is_immutable(repo, id, &tag).await? {
                return Err(immutable_error(repo, &tag, "deleted with its manifest"));
            }
        }
        Ok(())
    }

    /// Flags a live tag immutable, or lifts the flag.
    pub(crate) async fn tag_set_immutable(
        &self,
        who: &Who,
        repo: &RepoName,
        tag: &str,
        immutable: bool,
    ) -> Result<()> {
        let id = self.repo_id_of(repo).await?;
        if !self.db.set_tag_immutable(id, tag, immutable).await? {
            return Err(Error::not_found(format!("{repo} has no tag {tag}")));
        }
        if immutable && !self.config.immutable_tags_can_expire {
            self.db.clear_tag_expiry(id, &[tag.to_string()]).await?;
        }
        self.audit
            .record(
                who.entry("change_tag_immutability")
                    .repo(repo.as_str())
                    .meta(serde_json::json!({"tag": tag, "immutable": immutable})),
            )
            .await;
        Ok(())
    }

    /// The live tags a bulk deletion of `selection` would end, and those it must keep
    /// (immutable by their flag or a policy), each by name.
    pub(crate) async fn tags_selected(
        &self,
        repo: &RepoName,
        selection: &TagSelection<'_>,
    ) -> Result<BulkTags> {
        let repo_id = self.repo_id_of(repo).await?;
        let m = match selection {
            TagSelection::Matching(m) => *m,
            TagSelection::Names(_) => TagMatch::default(),
        };
        let re = m.regex()?;
        let rules = self.immutability_rules(repo).await?;
        let mut out = BulkTags::default();
        let wanted: Option<std::collections::HashSet<&str>> = match selection {
            TagSelection::Names(n) => Some(n.iter().map(String::as_str).collect()),
            TagSelection::Matching(_) => None,
        };
        for k in self.db.live_tag_names(repo_id, &m.db()).await? {
            if wanted
                .as_ref()
                .is_some_and(|w| !w.contains(k.name.as_str()))
                || re.as_ref().is_some_and(|re| !re.is_match(&k.name))
            {
                continue;
            }
            if k.immutable || rules.protects(&k.name) {
                out.protected.push(k.name);
            } else {
                out.deletable.push(k.name);
            }
        }
        out.bytes_freed = self.freed_by_ending(repo_id, &out.deletable).await?;
        Ok(out)
    }

    /// The bytes garbage collection frees once the live tags `doomed` end and leave the
    /// time-machine window: the blobs only their manifests hold (the same reckoning as
    /// auto-prune's plan).
    pub(crate) async fn freed_by_ending(&self, repo_id: i64, doomed: &[String]) -> Result<i64> {
        let doomed: std::collections::HashSet<&str> = doomed.iter().map(String::as_str).collect();
        let live = self.db.live_tag_rows(repo_id).await?;
        let (gone, kept): (Vec<_>, Vec<_>) = live
            .iter()
            .partition(|(t, _, _)| doomed.contains(t.as_str()));
        let gone: Vec<&str> = gone.iter().map(|(_, d, _)| d.as_str()).collect();
        let kept: Vec<&str> = kept.iter().map(|(_, d, _)| d.as_str()).collect();
        Ok(crate::quotas::RepoGraph::load(self, repo_id)
            .await?
            .freed(&gone, &kept))
    }

    /// Ends `names` in one transaction with one `delete_tag` audit entry each (each stays
    /// restorable within the window, like a single deletion). Immutability is the caller's
    /// check ([`Registry::tags_selected`]); the count of tags ended.
    pub(crate) async fn tags_end(
        &self,
        who: &Who,
        repo: &RepoName,
        names: &[String],
    ) -> Result<u64> {
        let repo_id = self.repo_id_of(repo).await?;
        let mut w = self.db.write().await?;
        let ended = self.db.end_tags(&mut w, repo_id, names).await?;
        let rows: Vec<AuditRow> = names
            .iter()
            .map(|t| {
                who.entry("delete_tag")
                    .meta(serde_json::json!({"tag": t, "bulk": true}))
                    .repo(repo.as_str())
                    .row()
            })
            .collect();
        for chunk in rows.chunks(500) {
            self.db.insert_audit_in(&mut w, chunk).await?;
        }
        w.commit().await?;
        Ok(ended)
    }

    /// Removes `tag`'s past positions at `digest` from the time machine, recording one
    /// `permanently_delete_tag` entry; NotFound if it has none there.
    pub(crate) async fn tag_purge(
        &self,
        who: &Who,
        repo: &RepoName,
        tag: &str,
        digest: &str,
    ) -> Result<u64> {
        let t = tag_name(tag)?;
        let id = self.repo_id_of(repo).await?;
        let mut w = self.db.write().await?;
        let n = self
            .db
            .purge_tag_history(&mut w, id, t.as_str(), digest)
            .await?;
        if n == 0 {
            return Err(Error::not_found(format!(
                "{repo}:{tag} has no past position at {digest}; only positions in the time machine (deleted, moved or expired) can be deleted permanently"
            )));
        }
        record_in(
            &self.db,
            &mut w,
            who.entry("permanently_delete_tag")
                .repo(repo.as_str())
                .meta(serde_json::json!({"tag": tag, "manifest_digest": digest})),
        )
        .await?;
        w.commit().await?;
        Ok(n)
    }

    pub(crate) async fn repo_id_of(&self, repo: &RepoName) -> Result<i64> {
        self.db.repo_id(repo.as_str()).await?.ok_or_else(|| {
            Error::missing(Missing::Repository, format!("repository {repo} not found"))
        })
    }

    /// Tag rows, newest first (live and past), `limit` after skipping `offset`.
    pub(crate) async fn tag_history(
        &self,
        repo: &RepoName,
        filter: &TagFilter<'_>,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<model::Tag>> {
        let id = self.repo_id_of(repo).await?;
        model::Tag::from_rows(self.db.tag_history(id, &filter.db(), offset, limit).await?)
    }

    /// Points `tag` at a manifest of the repository (moving or creating it), with an expiry;
    /// audited as `move_tag` when it pointed elsewhere, else `create_tag`.
    pub(crate) async fn tag_point(
        &self,
        who: &Who,
        repo: &RepoName,
        tag: &str,
        digest: &str,
        expires_at: Option<i64>,
    ) -> Result<()> {
        self.point(repo, tag, digest, expires_at, &|before| match before {
            Some(old) if old != digest => who.entry("move_tag").meta(serde_json::json!({
                "tag": tag, "manifest_digest": digest, "original_manifest_digest": old,
            })),
            _ => who
                .entry("create_tag")
                .meta(serde_json::json!({"tag": tag, "manifest_digest": digest})),
        })
        .await
    }

    /// Points a tag and records the audit entry `entry` makes of its previous digest, in one
    /// transaction.
    async fn point(
        &self,
        repo: &RepoName,
        tag: &str,
        digest: &str,
        expires_at: Option<i64>,
        entry: &(dyn Fn(Option<&str>) -> AuditEntry + Sync),
    ) -> Result<()> {
        let tag = tag_name(tag)?;
        let digest: Digest = digest
            .parse()
            .map_err(|e: berth_oci::digest::DigestError| Error::invalid(e.0))?;
        let id = self.repo_id_of(repo).await?;
        self.check_tag_change(repo, id, tag.as_str(), Some(&digest.to_string()))
            .await?;
        let mut w = self.db.write().await?;
        let Some(before) = self
            .db
            .point_tag(&mut w, id, tag.as_str(), &digest.to_string(), expires_at)
            .await?
        else {
            return Err(Error::not_found(format!("{repo} has no manifest {digest}")));
        };
        record_in(
            &self.db,
            &mut w,
            entry(before.as_deref()).repo(repo.as_str()),
        )
        .await?;
        // A tag created, moved or restored through the API changes what it pulls as a push
        // would: its repo_push notifications fire (Quay fires none for these).
        if before.as_deref() != Some(digest.to_string().as_str()) {
            self.notify_in(
                &mut w,
                id,
                repo.as_str(),
                "repo_push",
                serde_json::json!({"updated_tags": [tag.as_str()]}),
            )
            .await?;
        }
        w.commit().await?;
        Ok(())
    }

    /// Sets or clears a live tag's expiry.
    pub(crate) async fn tag_set_expiry(
        &self,
        who: &Who,
        repo: &RepoName,
        tag: &str,
        expires_at: Option<i64>,
    ) -> Result<()> {
        let tag = tag_name(tag)?;
        let id = self.repo_id_of(repo).await?;
        if expires_at.is_some()
            && !self.config.immutable_tags_can_expire
            && self.tag_is_immutable(repo, id, tag.as_str()).await?
        {
            return Err(immutable_error(repo, tag.as_str(), "given an expiration"));
        }
        let mut w = self.db.write().await?;
        if !self
            .db
            .set_tag_expiry(&mut w, id, tag.as_str(), expires_at)
            .await?
        {
            return Err(Error::not_found(format!("{repo} has no tag {tag}")));
        }
        let entry = who.entry("change_tag_expiration").repo(repo.as_str()).meta(
            serde_json::json!({"tag": tag.as_str(), "expiration": expires_at.map(|e| e / 1000)}),
        );
        record_in(&self.db, &mut w, entry).await?;
        w.commit().await?;
        Ok(())
    }

    /// The live digest of a tag.
    pub async fn tag_current(&self, repo: &RepoName, tag: &str) -> Result<Option<String>> {
        let id = self.repo_id_of(repo).await?;
        Ok(self.db.live_tag(id, tag).await?.map(|t| t.0))
    }

    /// Restores `tag` to `digest` if the tag pointed there within its namespace's time-machine
    /// window (the window the collector keeps); otherwise 404.
    /// Audited as `revert_tag`.
    pub(crate) async fn tag_restore(
        &self,
        who: &Who,
        repo: &RepoName,
        tag: &str,
        digest: &str,
    ) -> Result<()> {
        let t = tag_name(tag)?;
        let id = self.repo_id_of(repo).await?;
        let window_ms = self.window_ms(repo.namespace()).await?;
        let since = now_ms().saturating_sub(window_ms);
        if !self
            .db
            .tag_pointed_since(id, t.as_str(), digest, since)
            .await?
        {
            return Err(Error::not_found(format!(
                "{repo}:{tag} did not point at {digest} within the time machine's window ({} s)",
                window_ms / 1000
            )));
        }
        self.point(repo, tag, digest, None, &|before| {
            who.entry("revert_tag").meta(serde_json::json!({
                "tag": tag, "manifest_digest": digest, "original_manifest_digest": before,
            }))
        })
        .await
    }

    /// Moves tags whose expiry has passed into history, recording a `repo_image_expiry` event for
    /// each (what notifications will read). Returns how many.
    pub async fn expire_tags(&self) -> Result<usize> {
        let expired = self.db.close_expired_tags(500).await?;
        let rows: Vec<AuditRow> = expired
            .iter()
            .map(|(repo, tag, digest, at)| AuditRow {
                at: *at,
                kind: "repo_image_expiry".into(),
                performer_kind: Some("system".into()),
                namespace: Some(repo.split('/').next().unwrap_or(repo).to_string()),
                repository: Some(repo.clone()),
                metadata: serde_json::json!({"tag": tag, "manifest_digest": digest, "expired_at": at / 1000}).to_string(),
                ..AuditRow::default()
            })
            .collect();
        self.db.insert_audit(&rows).await?;
        Ok(expired.len())
    }
}

#[cfg(test)]
mod version_tests {
    use super::version_cmp;
    use std::cmp::Ordering::{Equal, Greater, Less};

    #[test]
    fn versions_order_by_their_numbers_and_releases_after_their_pre_releases() {
        for (a, b) in [
            ("v1.10", "v1.9"),
            ("1.10.1", "1.10"),
            ("1.0.0", "1.0.0-rc.1"),
            ("1.0.0-rc.2", "1.0.0-rc.1"),
            ("1.0.1", "1.0.0-rc.1"),
            ("2", "1.99.99"),
            ("0010", "9"),
            ("3.12", "v3.11-alpine"),
            ("1", "latest"),
        ] {
            assert_eq!(version_cmp(a, b), Greater, "{a} > {b}");
            assert_eq!(version_cmp(b, a), Less, "{b} < {a}");
        }
        assert_eq!(version_cmp("v1.2", "1.2"), Equal);
        assert_eq!(version_cmp("latest", "dev"), Equal, "names, not versions");
    }
}
