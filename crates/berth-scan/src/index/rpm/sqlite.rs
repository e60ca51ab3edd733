//! rpm's SQLite backend: `Packages(hnum INTEGER PRIMARY KEY, blob BLOB)`, one header blob a
//! row. The database is a spooled copy (its `-wal` beside it when the layer had one), opened
//! read-only.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use crate::index::{Limits, Package};

/// The packages of a spooled `rpmdb.sqlite`; `None` when SQLite cannot read it.
pub(crate) fn packages(db: &Path, limits: &Limits) -> Option<Vec<Package>> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(db, flags).ok()?;
    let mut stmt = conn.prepare("SELECT blob FROM Packages").ok()?;
    let mut rows = stmt.query([]).ok()?;
    let mut blobs: Vec<Vec<u8>> = Vec::new();
    while let Ok(Some(row)) = rows.next() {
        if let Ok(blob) = row.get::<_, Vec<u8>>(0) {
            blobs.push(blob);
        }
        if blobs.len() as u64 >= limits.max_entries {
            break;
        }
    }
    Some(super::packages(blobs.iter().map(Vec::as_slice), limits))
}
