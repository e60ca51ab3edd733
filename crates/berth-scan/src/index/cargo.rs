//! `Cargo.lock`: `[[package]]` tables with `name`, `version` and `source`; only packages from
//! a registry are reported (path and git dependencies have no advisories to match).

use super::{Kind, Package};

pub(super) fn parse_lock(text: &str) -> Vec<Package> {
    let mut out = Vec::new();
    let mut cur: Option<Entry> = None;
    for line in text.lines().map(str::trim).chain(std::iter::once("[end]")) {
        if line.starts_with('[') {
            if let Some(p) = cur.take().and_then(Entry::package) {
                out.push(p);
            }
            if line == "[[package]]" {
                cur = Some(Entry::default());
            }
            continue;
        }
        let (Some(entry), Some((key, value))) = (cur.as_mut(), line.split_once('=')) else {
            continue;
        };
        let value = value.trim();
        let Some(value) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) else {
            continue;
        };
        match key.trim() {
            "name" => entry.name = Some(value.to_owned()),
            "version" => entry.version = Some(value.to_owned()),
            "source" => entry.source = Some(value.to_owned()),
            _ => {}
        }
    }
    out
}

#[derive(Default)]
struct Entry {
    name: Option<String>,
    version: Option<String>,
    source: Option<String>,
}

impl Entry {
    fn package(self) -> Option<Package> {
        let source = self.source?;
        if !(source.starts_with("registry+") || source.starts_with("sparse+")) {
            return None;
        }
        Some(Package::new(Kind::Cargo, self.name?, self.version?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_packages_only() {
        let lock = "version = 4\n\n[[package]]\nname = \"app\"\nversion = \"0.1.0\"\n\
            dependencies = [\n \"time\",\n]\n\n[[package]]\nname = \"time\"\nversion = \"0.1.43\"\n\
            source = \"registry+https://github.com/rust-lang/crates.io-index\"\nchecksum = \"ab\"\n\n\
            [[package]]\nname = \"g\"\nversion = \"1.0.0\"\nsource = \"git+https://x/g#abc\"\n\n\
            [metadata]\n";
        let p = parse_lock(lock);
        assert_eq!(p.len(), 1);
        assert_eq!(
            (p[0].name.as_str(), p[0].version.as_str()),
            ("time", "0.1.43")
        );
    }
}
