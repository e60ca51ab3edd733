//! The registry error codes of the OCI Distribution Spec and Docker Registry API v2, each defined
//! once with its HTTP status and message, so that code and status can never drift apart.

/// One registry error code. `status()` and `message()` come from the single table below.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    BlobUnknown,
    BlobUploadInvalid,
    BlobUploadUnknown,
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestUnknown,
    NameInvalid,
    NameUnknown,
    SizeInvalid,
    TagInvalid,
    Unauthorized,
    Denied,
    Unsupported,
    TooManyRequests,
    /// Distribution's code for a bad `n` pagination parameter.
    PaginationNumberInvalid,
    /// Not an OCI code: a server-side failure, answered 500 without internal detail.
    Internal,
    /// Not an OCI code: the backing database or storage is unavailable, answered 503.
    Unavailable,
}

/// (code, code string, HTTP status, message) — the one table.
const TABLE: &[(ErrorCode, &str, u16, &str)] = &[
    (
        ErrorCode::BlobUnknown,
        "BLOB_UNKNOWN",
        404,
        "blob unknown to registry",
    ),
    (
        ErrorCode::BlobUploadInvalid,
        "BLOB_UPLOAD_INVALID",
        400,
        "blob upload invalid",
    ),
    (
        ErrorCode::BlobUploadUnknown,
        "BLOB_UPLOAD_UNKNOWN",
        404,
        "blob upload unknown to registry",
    ),
    (
        ErrorCode::DigestInvalid,
        "DIGEST_INVALID",
        400,
        "provided digest did not match uploaded content",
    ),
    (
        ErrorCode::ManifestBlobUnknown,
        "MANIFEST_BLOB_UNKNOWN",
        400,
        "manifest references a manifest or blob unknown to this repository",
    ),
    (
        ErrorCode::ManifestInvalid,
        "MANIFEST_INVALID",
        400,
        "manifest invalid",
    ),
    (
        ErrorCode::ManifestUnknown,
        "MANIFEST_UNKNOWN",
        404,
        "manifest unknown",
    ),
    (
        ErrorCode::NameInvalid,
        "NAME_INVALID",
        400,
        "invalid repository name",
    ),
    (
        ErrorCode::NameUnknown,
        "NAME_UNKNOWN",
        404,
        "repository name not known to registry",
    ),
    (
        ErrorCode::SizeInvalid,
        "SIZE_INVALID",
        400,
        "provided length did not match content length",
    ),
    (
        ErrorCode::TagInvalid,
        "TAG_INVALID",
        400,
        "manifest tag did not match URI",
    ),
    (
        ErrorCode::Unauthorized,
        "UNAUTHORIZED",
        401,
        "authentication required",
    ),
    (
        ErrorCode::Denied,
        "DENIED",
        403,
        "requested access to the resource is denied",
    ),
    (
        ErrorCode::Unsupported,
        "UNSUPPORTED",
        405,
        "the operation is unsupported",
    ),
    (
        ErrorCode::TooManyRequests,
        "TOOMANYREQUESTS",
        429,
        "too many requests",
    ),
    (
        ErrorCode::PaginationNumberInvalid,
        "PAGINATION_NUMBER_INVALID",
        400,
        "invalid number of results requested",
    ),
    (
        ErrorCode::Internal,
        "INTERNAL_ERROR",
        500,
        "internal server error",
    ),
    (
        ErrorCode::Unavailable,
        "UNAVAILABLE",
        503,
        "service temporarily unavailable, retry later",
    ),
];

impl ErrorCode {
    fn row(self) -> &'static (ErrorCode, &'static str, u16, &'static str) {
        TABLE.iter().find(|r| r.0 == self).unwrap_or(&(
            ErrorCode::Internal,
            "INTERNAL_ERROR",
            500,
            "internal server error",
        ))
    }
    /// The wire code, e.g. `BLOB_UNKNOWN`.
    pub fn as_str(self) -> &'static str {
        self.row().1
    }
    /// The HTTP status this code is answered with by default.
    pub fn status(self) -> u16 {
        self.row().2
    }
    /// The default human message.
    pub fn message(self) -> &'static str {
        self.row().3
    }
    pub fn all() -> impl Iterator<Item = ErrorCode> {
        TABLE.iter().map(|r| r.0)
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn every_code_has_exactly_one_row() {
        for c in ErrorCode::all() {
            assert_eq!(TABLE.iter().filter(|r| r.0 == c).count(), 1, "{c:?}");
        }
        assert_eq!(ErrorCode::BlobUnknown.status(), 404);
        assert_eq!(ErrorCode::Internal.status(), 500);
        assert_eq!(ErrorCode::Unavailable.as_str(), "UNAVAILABLE");
    }
}
