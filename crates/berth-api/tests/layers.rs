//! The layer rule, checked on the source: berth-api speaks HTTP and calls core use cases; it
//! never reaches the database. It does not depend on berth-db, never names it, and never reads
//! a `db` handle of the core (which keeps its handles crate-private).

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn crate_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(|p| p.join(name))
        .unwrap_or_default()
}

/// Lines of `file` that break a rule, as `path:line: text`.
fn offending(file: &Path, bad: &dyn Fn(&str) -> bool) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim_start().starts_with("//") && bad(l))
        .map(|(i, l)| format!("{}:{}: {}", file.display(), i + 1, l.trim()))
        .collect()
}

#[test]
fn the_api_never_reaches_the_database() {
    let mut files = Vec::new();
    rust_files(&crate_dir("berth-api").join("src"), &mut files);
    assert!(files.len() > 10, "berth-api sources not found");
    let reaches_db = |l: &str| {
        let t = l.trim();
        l.contains("berth_db")
            || l.contains(".db.")
            || l.contains(".db)")
            || l.contains(".db;")
            || t == ".db"
            || l.contains("berth_core::Db")
            || l.contains("DbError")
    };
    let found: Vec<String> = files
        .iter()
        .flat_map(|f| offending(f, &reaches_db))
        .collect();
    assert!(
        found.is_empty(),
        "berth-api must call a core method instead of the database:\n{}",
        found.join("\n")
    );
    let manifest =
        std::fs::read_to_string(crate_dir("berth-api").join("Cargo.toml")).unwrap_or_default();
    assert!(
        !manifest.contains("berth-db"),
        "berth-api must not depend on berth-db"
    );
}

#[test]
fn the_core_keeps_its_database_handles_to_itself() {
    let mut files = Vec::new();
    rust_files(&crate_dir("berth-core").join("src"), &mut files);
    assert!(files.len() > 10, "berth-core sources not found");
    let public_db = |l: &str| {
        let t = l.trim();
        t.starts_with("pub db:") || t.starts_with("pub db :")
    };
    let found: Vec<String> = files
        .iter()
        .flat_map(|f| offending(f, &public_db))
        .collect();
    assert!(
        found.is_empty(),
        "a core service exposes its database handle; keep it pub(crate) and add a use case:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_core_answers_its_own_types_not_rows() {
    // The core's public face names no row type of berth-db: its doors answer `model` types.
    let lib = std::fs::read_to_string(crate_dir("berth-core").join("src/lib.rs"))
        .expect("berth-core lib.rs");
    let mut public_uses = String::new();
    let mut inside = false;
    for line in lib.lines() {
        let t = line.trim();
        if inside || t.starts_with("pub use berth_db::") {
            inside = !t.ends_with(';');
            public_uses.push_str(t);
        }
    }
    let rows: Vec<&str> = public_uses
        .split(|c: char| !c.is_alphanumeric() && c != '_')
        .filter(|w| w.ends_with("Row"))
        .collect();
    assert!(
        rows.is_empty(),
        "berth-core re-exports berth-db rows {rows:?}; answer a type of berth-core's model instead"
    );
    let mut api = Vec::new();
    rust_files(&crate_dir("berth-api").join("src"), &mut api);
    let names_row = |l: &str| {
        l.split(|c: char| !c.is_alphanumeric() && c != '_')
            .any(|w| w.len() > 3 && w.ends_with("Row") && w.starts_with(char::is_uppercase))
    };
    let found: Vec<String> = api.iter().flat_map(|f| offending(f, &names_row)).collect();
    assert!(
        found.is_empty(),
        "berth-api names a row type:\n{}",
        found.join("\n")
    );
}
