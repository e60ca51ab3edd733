//! The domain error of registry operations.

use berth_db::DbError;
use berth_oci::ErrorCode;
use berth_storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A registry error the client caused or must know about, with its OCI code.
    #[error("{code}: {detail}")]
    Registry {
        code: ErrorCode,
        /// HTTP status when it differs from the code's default (416 for out-of-order chunks, 413).
        status: Option<u16>,
        detail: String,
    },
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Error {
        Error::Registry {
            code,
            status: None,
            detail: detail.into(),
        }
    }
    pub fn with_status(code: ErrorCode, status: u16, detail: impl Into<String>) -> Error {
        Error::Registry {
            code,
            status: Some(status),
            detail: detail.into(),
        }
    }
}
