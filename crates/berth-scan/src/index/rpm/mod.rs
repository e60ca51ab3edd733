//! rpm databases. Three backends store the same thing, one RPM header blob per installed
//! package: SQLite (`rpmdb.sqlite`, table `Packages(hnum, blob)`), Berkeley DB hash
//! (`Packages`) and NDB (`Packages.db`). Each reader only finds the blobs; `header` reads them.
//! Every offset is bounds-checked: a corrupt database yields `None` or fewer packages, never a
//! panic.

pub(super) mod bdb;
mod header;
pub(super) mod ndb;
pub(super) mod sqlite;

use super::{Limits, Package};

/// Packages of the header blobs, skipping unreadable ones and `gpg-pubkey` pseudo-packages.
fn packages<'a>(blobs: impl Iterator<Item = &'a [u8]>, limits: &Limits) -> Vec<Package> {
    let max = usize::try_from(limits.max_entries).unwrap_or(usize::MAX);
    blobs.take(max).filter_map(header::package).collect()
}
