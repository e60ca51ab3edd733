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
    /// A blob `Range` outside the blob (HTTP 416).
    RangeInvalid,
    /// Not an OCI code: a server-side failure, answered 500 without internal detail.
    Internal,
    /// Not an OCI code: the backing database or storage is unavailable, answered 503.
    Unavailable,
}

/// The one table: (wire code, HTTP status, message) for every code. A `match`, so the compiler
/// proves every code has exactly one row.
const fn row(code: ErrorCode) -> (&'static str, u16, &'static str) {
    use ErrorCode::*;
    match code {
        BlobUnknown => ("BLOB_UNKNOWN", 404, "blob unknown to registry"),
        BlobUploadInvalid => ("BLOB_UPLOAD_INVALID", 400, "blob upload invalid"),
        BlobUploadUnknown => (
            "BLOB_UPLOAD_UNKNOWN",
            404,
            "blob upload unknown to registry",
        ),
        DigestInvalid => (
            "DIGEST_INVALID",
            400,
            "provided digest did not match uploaded content",
        ),
        ManifestBlobUnknown => (
            "MANIFEST_BLOB_UNKNOWN",
            400,
            "manifest references a manifest or blob unknown to this repository",
        ),
        ManifestInvalid => ("MANIFEST_INVALID", 400, "manifest invalid"),
        ManifestUnknown => ("MANIFEST_UNKNOWN", 404, "manifest unknown"),
        NameInvalid => ("NAME_INVALID", 400, "invalid repository name"),
        NameUnknown => ("NAME_UNKNOWN", 404, "repository name not known to registry"),
        SizeInvalid => (
            "SIZE_INVALID",
            400,
            "provided length did not match content length",
        ),
        TagInvalid => ("TAG_INVALID", 400, "manifest tag did not match URI"),
        Unauthorized => ("UNAUTHORIZED", 401, "authentication required"),
        Denied => ("DENIED", 403, "requested access to the resource is denied"),
        Unsupported => ("UNSUPPORTED", 405, "the operation is unsupported"),
        TooManyRequests => ("TOOMANYREQUESTS", 429, "too many requests"),
        PaginationNumberInvalid => (
            "PAGINATION_NUMBER_INVALID",
            400,
            "invalid number of results requested",
        ),
        Internal => ("INTERNAL_ERROR", 500, "internal server error"),
        Unavailable => (
            "UNAVAILABLE",
            503,
            "service temporarily unavailable, retry later",
        ),
        RangeInvalid => ("RANGE_INVALID", 416, "requested range not satisfiable"),
    }
}

/// Every code, for iteration.
pub const ALL: &[ErrorCode] = &[
    ErrorCode::BlobUnknown,
    ErrorCode::BlobUploadInvalid,
    ErrorCode::BlobUploadUnknown,
    ErrorCode::DigestInvalid,
    ErrorCode::ManifestBlobUnknown,
    ErrorCode::ManifestInvalid,
    ErrorCode::ManifestUnknown,
    ErrorCode::NameInvalid,
    ErrorCode::NameUnknown,
    ErrorCode::SizeInvalid,
    ErrorCode::TagInvalid,
    ErrorCode::Unauthorized,
    ErrorCode::Denied,
    ErrorCode::Unsupported,
    ErrorCode::TooManyRequests,
    ErrorCode::PaginationNumberInvalid,
    ErrorCode::Internal,
    ErrorCode::Unavailable,
    ErrorCode::RangeInvalid,
];

impl ErrorCode {
    /// The wire code, e.g. `BLOB_UNKNOWN`.
    pub fn as_str(self) -> &'static str {
        row(self).0
    }
    /// The HTTP status this code is answered with by default.
    pub fn status(self) -> u16 {
        row(self).1
    }
    /// The default human message.
    pub fn message(self) -> &'static str {
        row(self).2
    }
    pub fn all() -> impl Iterator<Item = ErrorCode> {
        ALL.iter().copied()
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
    fn wire_codes_are_unique_and_all_listed() {
        let codes: std::collections::HashSet<_> = ErrorCode::all().map(ErrorCode::as_str).collect();
        assert_eq!(codes.len(), ALL.len());
        assert!(ErrorCode::all().any(|c| c == ErrorCode::RangeInvalid));
        assert_eq!(ErrorCode::RangeInvalid.status(), 416);
        assert_eq!(ErrorCode::BlobUnknown.status(), 404);
        assert_eq!(ErrorCode::Internal.status(), 500);
        assert_eq!(ErrorCode::Unavailable.as_str(), "UNAVAILABLE");
    }
}
