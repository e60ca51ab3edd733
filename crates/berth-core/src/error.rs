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
    /// A request the REST API or an account operation refuses: 400 invalid, 401 unauthenticated,
    /// 403 forbidden, 404 not found, 409 conflict, 429 throttled.
    #[error("{message}")]
    Request { status: u16, message: String },
    /// A bug or an environment failure; logged, answered with a plain 500.
    #[error("internal error: {0}")]
    Internal(String),
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
    pub fn request(status: u16, message: impl Into<String>) -> Error {
        Error::Request {
            status,
            message: message.into(),
        }
    }
    pub fn invalid(message: impl Into<String>) -> Error {
        Error::request(400, message)
    }
    pub fn forbidden(message: impl Into<String>) -> Error {
        Error::request(403, message)
    }
    pub fn not_found(message: impl Into<String>) -> Error {
        Error::request(404, message)
    }
    pub fn conflict(message: impl Into<String>) -> Error {
        Error::request(409, message)
    }
    pub fn with_status(code: ErrorCode, status: u16, detail: impl Into<String>) -> Error {
        Error::Registry {
            code,
            status: Some(status),
            detail: detail.into(),
        }
    }
}
