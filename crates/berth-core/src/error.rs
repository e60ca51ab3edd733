//! The domain error of registry and account operations. Each variant says what went wrong in
//! the registry's own terms; none carries an HTTP status or a wire code. The API layer maps a
//! variant to an answer in exactly one function (`berth_api::error::Problem::from`), which both
//! `/v2` (OCI JSON) and `/api/v1` (Quay JSON) render.

use berth_db::DbError;
use berth_storage::StorageError;

/// What a lookup did not find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    Blob,
    Manifest,
    /// A repository (or, in the REST API, the namespace the path names).
    Repository,
    /// An upload session.
    Upload,
    /// Anything else the API names: an account, team, policy, token, endpoint …
    Other,
}

/// Which part of a request is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    Digest,
    Manifest,
    Name,
    Tag,
    /// A declared size that the bytes do not match.
    Size,
    /// An upload request that does not fit its session (a body that ended early, a race).
    Upload,
    /// A manifest names blobs or manifests the repository lacks.
    References,
    /// Any other field or parameter.
    Field,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The thing does not exist (or the caller may not learn that it does).
    #[error("{detail}")]
    NotFound { what: Missing, detail: String },
    /// The request is malformed or names something invalid.
    #[error("{detail}")]
    Invalid { what: Malformed, detail: String },
    /// What the request would create exists already.
    #[error("{0}")]
    AlreadyExists(String),
    /// The request clashes with the current state (other than by existing already).
    #[error("{0}")]
    Conflict(String),
    /// The caller is not known: no credential, or one that does not hold.
    #[error("{0}")]
    Unauthenticated(String),
    /// The caller is known but may not do this (a role, an immutable tag, a quota, a feature
    /// switched off).
    #[error("{0}")]
    Denied(String),
    /// A chunk does not start where the upload session ends; the client resumes from
    /// `resume_from`.
    #[error("{detail}")]
    OutOfOrder { resume_from: u64, detail: String },
    /// Content larger than the configured limit.
    #[error("{0}")]
    TooLarge(String),
    /// Too many recent attempts; retry after this many seconds.
    #[error("{detail}")]
    Throttled { retry_after_s: i64, detail: String },
    /// An operation this registry, or this configuration of it, does not offer.
    #[error("{0}")]
    Unsupported(String),
    /// The registry cannot do it now (read-only, a dependency down); retrying later may work.
    #[error("{0}")]
    Unavailable(String),
    /// A service the registry relies on for this request (an identity provider, an upstream
    /// registry) failed or answered wrongly.
    #[error("{0}")]
    Upstream(String),
    /// A bug, or data that should not exist (a corrupt row); logged, answered with a plain 500.
    #[error("internal error: {0}")]
    Internal(String),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn missing(what: Missing, detail: impl Into<String>) -> Error {
        Error::NotFound {
            what,
            detail: detail.into(),
        }
    }
    pub fn malformed(what: Malformed, detail: impl Into<String>) -> Error {
        Error::Invalid {
            what,
            detail: detail.into(),
        }
    }
    /// An invalid field or parameter.
    pub fn invalid(detail: impl Into<String>) -> Error {
        Error::malformed(Malformed::Field, detail)
    }
    pub fn not_found(detail: impl Into<String>) -> Error {
        Error::missing(Missing::Other, detail)
    }
    pub fn denied(detail: impl Into<String>) -> Error {
        Error::Denied(detail.into())
    }
    pub fn unauthenticated(detail: impl Into<String>) -> Error {
        Error::Unauthenticated(detail.into())
    }
    pub fn exists(detail: impl Into<String>) -> Error {
        Error::AlreadyExists(detail.into())
    }
    pub fn conflict(detail: impl Into<String>) -> Error {
        Error::Conflict(detail.into())
    }
    pub fn internal(detail: impl Into<String>) -> Error {
        Error::Internal(detail.into())
    }

    /// Whether this is a lookup that found nothing (of any kind).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }
    /// Whether this is an internal fault (a bug, a corrupt row, a database or storage failure)
    /// rather than a refusal the caller can act on.
    pub fn is_fault(&self) -> bool {
        matches!(self, Error::Internal(_) | Error::Db(_) | Error::Storage(_))
    }
    /// Whether this says the thing exists already.
    pub fn is_already_exists(&self) -> bool {
        matches!(self, Error::AlreadyExists(_))
    }
}
