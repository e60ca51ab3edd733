//! The layer indexer: what one layer (a tar stream) contains that a vulnerability matcher needs,
//! read front to back once with bounded memory, and the image those layers make together.
//!
//! A layer is indexed once per digest ([`index_layer`], stored as JSON); an image is the
//! [`merge`] of its layers' indexes under OCI whiteout rules, so a base layer shared by many
//! images is read once. Parsers are plain functions over bytes, one module per source:
//! `osrelease`, `dpkg`, `apkdb`, `rpm` (SQLite, Berkeley DB hash and NDB databases), `python`,
//! `npm`, `cargo` (Cargo.lock), `binary` (Go build info and cargo-auditable sections), `java`
//! (jars, nested ones too) and `gem`. `walk` owns the limits and the dispatch, `tarstream` the tar
//! format with every header's memory bounded.

mod apkdb;
mod binary;
mod cargo;
mod dpkg;
mod gem;
mod gobin;
mod java;
mod merge;
mod npm;
mod osrelease;
mod paths;
mod python;
mod rpm;
mod tarstream;
mod walk;

use serde::{Deserialize, Serialize};

/// How a layer's tar stream is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// The compression of a layer media type; `None` for layers not to be indexed: foreign and
/// non-distributable layers (their bytes are not in the registry), configs and other artifacts.
pub fn compression_of(media_type: &str) -> Option<Compression> {
    let media_type = media_type.split(';').next().unwrap_or(media_type).trim();
    match media_type {
        "application/vnd.oci.image.layer.v1.tar"
        | "application/vnd.docker.image.rootfs.diff.tar" => Some(Compression::None),
        "application/vnd.oci.image.layer.v1.tar+gzip"
        | "application/vnd.docker.image.rootfs.diff.tar.gzip" => Some(Compression::Gzip),
        "application/vnd.oci.image.layer.v1.tar+zstd"
        | "application/vnd.docker.image.rootfs.diff.tar.zstd" => Some(Compression::Zstd),
        _ => None,
    }
}

/// Bounds on what one layer may cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Uncompressed tar bytes read; exceeding it is [`IndexError::TooLarge`].
    pub max_layer_bytes: Option<u64>,
    /// Any single file (or jar entry, or decompressed section) read into memory or copied to a
    /// temporary file; larger ones are skipped, which is not an error.
    pub max_file_bytes: u64,
    /// Tar entries in a layer ([`IndexError::TooLarge`] beyond it), and entries looked at in one
    /// jar or rows in one rpm database (the rest are skipped).
    pub max_entries: u64,
    /// How deep jars nested in jars are opened.
    pub max_nesting: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_layer_bytes: None,
            max_file_bytes: 256 << 20,
            max_entries: 1_000_000,
            max_nesting: 8,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// The layer is over a limit of [`Limits`] (`limit` is that limit's value).
    #[error("layer exceeds the indexing limit of {limit}")]
    TooLarge { limit: u64 },
    /// Not a readable tar stream: truncated or bad compression, a bad tar header, absurd sizes.
    #[error("corrupt layer: {0}")]
    Corrupt(String),
    /// Reading the layer's bytes failed.
    #[error("reading the layer: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads one layer (a tar stream, compressed as given) front to back once, with bounded memory.
pub fn index_layer(
    r: impl std::io::Read,
    c: Compression,
    limits: &Limits,
) -> Result<LayerIndex, IndexError> {
    walk::index_layer(r, c, limits)
}

/// The image's content after applying every layer in order (bottom first) with OCI whiteout
/// rules: a later layer's file at the same [`Found::path`] replaces the earlier one's packages
/// (a jar's nested jars go with it); a whiteout of that path or of any ancestor directory
/// removes them; an opaque directory hides all earlier `Found` under it. The OS is
/// `etc/os-release` (following a recorded symlink relative to its directory) else
/// `usr/lib/os-release`.
pub fn merge(layers: &[(String, LayerIndex)]) -> Image {
    merge::merge(layers)
}

/// What one layer holds. Paths are normalized: no leading `./` or `/`, no `.` or `..`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct LayerIndex {
    /// `etc/os-release` and `usr/lib/os-release` regular files, parsed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub os_release: Vec<(String, OsRelease)>,
    /// Symlinks at the os-release paths: path -> target as written.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub symlinks: Vec<(String, String)>,
    /// Package sources found in this layer.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub found: Vec<Found>,
    /// Paths whited out by `.wh.NAME` entries (the path they hide).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<String>,
    /// Directories holding `.wh..wh..opq`: earlier layers' content under them is hidden.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub opaque: Vec<String>,
    /// Tar entries seen.
    pub entries: u64,
    /// Uncompressed bytes read.
    pub bytes: u64,
}

/// The fields of an os-release file a matcher needs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct OsRelease {
    /// `ID`, lowercase; `linux` when absent (os-release(5)).
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_codename: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pretty_name: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub id_like: Vec<String>,
}

/// Packages read from one file.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Found {
    /// The file they were read from: a database, METADATA, package.json, a binary, a jar
    /// (a nested jar is `outer.jar!/inner.jar`).
    pub path: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<Package>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Package {
    pub kind: Kind,
    pub name: String,
    /// As the ecosystem writes it: dpkg/rpm with their epoch (`1:2.3-4`), Go with its `v`.
    pub version: String,
    /// The source package (dpkg `Source:`, apk origin, rpm SOURCERPM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
}

impl Package {
    fn new(kind: Kind, name: impl Into<String>, version: impl Into<String>) -> Package {
        Package {
            kind,
            name: name.into(),
            version: version.into(),
            source_name: None,
            source_version: None,
            arch: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Dpkg,
    Apk,
    Rpm,
    Python,
    Npm,
    Cargo,
    Go,
    GoStdlib,
    Maven,
    Gem,
}

/// An image's content: its OS and every package still visible after all layers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Image {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<OsRelease>,
    #[serde(default)]
    pub packages: Vec<Installed>,
}

/// A package of the image, with where it is and which layer brought it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Installed {
    pub package: Package,
    /// The [`Found::path`] it was read from.
    pub path: String,
    /// Digest of the layer where this same (kind, name, version) at this path first appeared,
    /// in the unbroken run of layers that kept it.
    pub added_by: String,
}
