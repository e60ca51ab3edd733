//! Plain OCI data, no I/O: digests and hashers, repository names and references, media types,
//! manifest parsing and validation, the `/v2/...` path grammar, HTTP range grammar and the one table
//! of registry error codes. Every other crate depends on this one; it depends on no other Berth crate.

pub mod digest;
pub mod error;
pub mod manifest;
pub mod media;
pub mod name;
pub mod path;
pub mod range;

pub use digest::{Algorithm, Digest, Hasher};
pub use error::ErrorCode;
pub use manifest::{Descriptor, ManifestKind, ParsedManifest};
pub use name::{Reference, RepoName, Tag};
pub use path::V2Route;
