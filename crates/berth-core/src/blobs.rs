//! Blob reads and deletes through a repository.

use crate::auth::Who;
use crate::caller::record_in;
use crate::error::Missing;
use crate::{Error, Registry, Result};
use berth_oci::{Digest, RepoName};
use berth_storage::{ByteStream, StorageError};

fn unknown(repo: &RepoName, digest: &Digest) -> Error {
    Error::missing(
        Missing::Blob,
        format!("blob {digest} is not in repository {repo}"),
    )
}

impl Registry {
    /// The size of a blob readable through `repo`.
    pub async fn blob_size(&self, repo: &RepoName, digest: &Digest) -> Result<u64> {
        match self
            .db
            .blob_in_repo(repo.as_str(), &digest.to_string())
            .await?
        {
            Some((size, repo_id, linked_at)) => {
                let now = berth_db::now_ms();
                // A client that sees the blob may reference it without uploading it: restart
                // the link's grace period if half of it has passed, so the sweep keeps it.
                let half_grace = self.config.gc.grace_s.saturating_mul(500);
                if half_grace > 0
                    && linked_at < now.saturating_sub(half_grace)
                    && !self.db.refresh_link(repo_id, &digest.to_string()).await?
                {
                    return Err(unknown(repo, digest));
                }
                self.pulls.record(repo_id, now);
                Ok(u64::try_from(size).unwrap_or(0))
            }
            None => Err(unknown(repo, digest)),
        }
    }

    /// Streams a blob (or an inclusive range of it) readable through `repo`.
    pub async fn blob_stream(
        &self,
        digest: &Digest,
        range: Option<(u64, u64)>,
    ) -> Result<ByteStream> {
        match self.read_store(digest).await?.get(digest, range).await {
            Ok(s) => Ok(s),
            Err(StorageError::NotFound) => {
                tracing::error!(%digest, "blob is recorded in the database but missing from storage");
                Err(Error::missing(
                    Missing::Blob,
                    format!("blob {digest} is missing from storage"),
                ))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// A presigned URL for the blob in the location it would be read from, if that backend can
    /// make one.
    pub async fn blob_redirect_url(&self, digest: &Digest) -> Result<Option<String>> {
        Ok(self.read_store(digest).await?.presigned_url(digest).await?)
    }

    /// Unlinks a blob from a repository (audited as `delete_blob`). The bytes stay until garbage
    /// collection finds them unused.
    pub async fn blob_delete(&self, who: &Who, repo: &RepoName, digest: &Digest) -> Result<()> {
        let Some(repo_id) = self.db.repo_id(repo.as_str()).await? else {
            return Err(Error::missing(
                Missing::Blob,
                format!("repository {repo} has no blobs"),
            ));
        };
        let mut w = self.db.write().await?;
        let removed = self
            .db
            .unlink_blob(&mut w, repo_id, &digest.to_string())
            .await?;
        if removed {
            let entry = who
                .entry("delete_blob")
                .repo(repo.as_str())
                .meta(serde_json::json!({"digest": digest.to_string()}));
            record_in(&self.db, &mut w, entry).await?;
            w.commit().await?;
            Ok(())
        } else {
            Err(Error::missing(
                Missing::Blob,
                format!("blob {digest} is not in repository {repo}"),
            ))
        }
    }

    /// Links a blob already in repository `from` to `repo` (audited as `mount_blob`). False if
    /// `from` does not have it.
    pub async fn blob_mount(
        &self,
        who: &Who,
        repo: &RepoName,
        from: &RepoName,
        digest: &Digest,
    ) -> Result<bool> {
        let mut w = self.db.write().await?;
        let repo_id = self
            .db
            .ensure_repo(&mut w, repo.as_str(), repo.namespace())
            .await?;
        let mounted = self
            .db
            .mount_blob(&mut w, repo_id, from.as_str(), &digest.to_string())
            .await?;
        if mounted {
            let entry = who
                .entry("mount_blob")
                .repo(repo.as_str())
                .meta(serde_json::json!({
                    "digest": digest.to_string(), "source_repository": from.as_str(),
                }));
            record_in(&self.db, &mut w, entry).await?;
            w.commit().await?;
        }
        Ok(mounted)
    }
}
