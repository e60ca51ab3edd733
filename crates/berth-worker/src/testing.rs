//! A registry over a fresh SQLite database and filesystem store, for unit tests.

use berth_core::{CoreConfig, Db, Locations, Registry};
use std::sync::Arc;

pub(crate) async fn registry() -> (tempfile::TempDir, Registry) {
    let dir = tempfile::tempdir().expect("tempdir");
    let uri = format!("sqlite://{}", dir.path().join("t.db").display());
    let db = Db::connect(&uri, 4).await.expect("connect");
    db.migrate().await.expect("migrate");
    let store = berth_storage::FsStore::open(dir.path().join("store"), false).expect("store");
    let locations = Locations::single("default", Arc::new(store));
    (dir, Registry::new(db, locations, CoreConfig::default()))
}
