//! What `berth config validate` checks beyond the configuration itself: that the directories
//! and files `serve` will use exist and can be written or read, and that addresses resolve.

use super::{Config, ConfigError, StorageLocation, parent_dir};
use std::path::{Path, PathBuf};

pub fn environment(c: &Config) -> Vec<ConfigError> {
    let mut out = Vec::new();
    let mut addresses = vec![("LISTEN_ADDRESS", c.listen.as_str())];
    if let Some(m) = &c.metrics_listen {
        addresses.push(("METRICS_LISTEN_ADDRESS", m.as_str()));
    }
    for (key, addr) in addresses {
        if let Err(msg) = resolves(addr) {
            out.push(ConfigError::new(key, msg));
        }
    }
    if let Some(db) = c.sqlite_path() {
        let (key, dir) = if c.database_in_data_dir() {
            ("DATA_DIR", c.data_dir.clone())
        } else {
            ("DB_URI", parent_dir(&db))
        };
        let created = c.database_in_data_dir();
        if let Err(msg) = writable_dir(&dir, created) {
            out.push(ConfigError::new(
                key,
                format!("the SQLite database {}: {msg}", db.display()),
            ));
        } else if db.exists()
            && let Err(e) = std::fs::OpenOptions::new().append(true).open(&db)
        {
            out.push(ConfigError::new(
                key,
                format!(
                    "the SQLite database {} cannot be written: {e}",
                    db.display()
                ),
            ));
        }
    }
    for (name, loc) in &c.storage {
        if let StorageLocation::Local { path, .. } = loc
            && let Err(msg) = writable_dir(path, true)
        {
            let key = if c.storage_defaulted {
                "DATA_DIR"
            } else {
                "DISTRIBUTED_STORAGE_CONFIG"
            };
            out.push(ConfigError::new(
                key,
                format!("storage location {name:?} at {}: {msg}", path.display()),
            ));
        }
    }
    for (key, file) in [
        ("TLS_CERT_FILE", &c.tls_cert_file),
        ("TLS_KEY_FILE", &c.tls_key_file),
    ] {
        if let Some(f) = file
            && let Err(e) = std::fs::File::open(f)
        {
            out.push(ConfigError::new(
                key,
                format!("cannot read {}: {e}", f.display()),
            ));
        }
    }
    out
}

/// Resolves `host:port` the way binding the listener will.
fn resolves(addr: &str) -> Result<(), String> {
    use std::net::ToSocketAddrs;
    match addr.to_socket_addrs().map(|mut a| a.next()) {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(format!("{addr:?} resolves to no address")),
        Err(e) => Err(format!("cannot resolve {addr:?}: {e}")),
    }
}

/// `dir` can hold new files: it is a writable directory, or (when Berth creates it) its nearest
/// existing ancestor is.
fn writable_dir(dir: &Path, created: bool) -> Result<(), String> {
    if dir.is_dir() {
        return probe(dir);
    }
    if dir.exists() {
        return Err(format!("{} is not a directory", dir.display()));
    }
    if !created {
        return Err(format!("directory {} does not exist", dir.display()));
    }
    let mut ancestor: PathBuf = dir.to_path_buf();
    while !ancestor.is_dir() {
        ancestor = match ancestor.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
    }
    probe(&ancestor).map_err(|e| format!("{} cannot be created: {e}", dir.display()))
}

/// Creates and removes a file: the only test of writability that holds for every user (root
/// included) and every file system (read-only mounts included).
fn probe(dir: &Path) -> Result<(), String> {
    let path = dir.join(format!(".berth-write-test-{}", std::process::id()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&path);
            Ok(())
        }
        Err(e) => Err(format!("{} is not writable: {e}", dir.display())),
    }
}
