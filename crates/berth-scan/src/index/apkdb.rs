//! apk's installed database (`lib/apk/db/installed`): blank-line separated records of
//! `X:value` lines.

use super::{Kind, Package};

pub(super) fn parse(text: &str) -> Vec<Package> {
    let mut out = Vec::new();
    let mut cur = Record::default();
    for line in text.lines().chain(std::iter::once("")) {
        if line.trim().is_empty() {
            if let Some(p) = std::mem::take(&mut cur).package() {
                out.push(p);
            }
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = Some(value.trim().to_owned());
        match key {
            "P" => cur.name = value,
            "V" => cur.version = value,
            "A" => cur.arch = value,
            "o" => cur.origin = value,
            _ => {}
        }
    }
    out
}

#[derive(Default)]
struct Record {
    name: Option<String>,
    version: Option<String>,
    arch: Option<String>,
    origin: Option<String>,
}

impl Record {
    fn package(self) -> Option<Package> {
        let name = self.name.filter(|n| !n.is_empty())?;
        let version = self.version.filter(|v| !v.is_empty())?;
        let mut p = Package::new(Kind::Apk, name.clone(), version.clone());
        // The origin is built from the same APKBUILD, so it has the same version.
        p.source_name = Some(self.origin.filter(|o| !o.is_empty()).unwrap_or(name));
        p.source_version = Some(version);
        p.arch = self.arch;
        Some(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_records() {
        let db = "C:Q1abc=\nP:libcrypto1.1\nV:1.1.1d-r3\nA:x86_64\no:openssl\nR:libcrypto.so.1.1\n\n\
                  P:musl\nV:1.1.24-r2\nA:x86_64\no:musl\n";
        let p = parse(db);
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].name, "libcrypto1.1");
        assert_eq!(p[0].version, "1.1.1d-r3");
        assert_eq!(p[0].source_name.as_deref(), Some("openssl"));
        assert_eq!(p[1].arch.as_deref(), Some("x86_64"));
    }
}
