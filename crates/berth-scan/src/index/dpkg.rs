//! dpkg's status database (`var/lib/dpkg/status`, and distroless `status.d/*`): deb822
//! stanzas. Installed packages only; `Source: name (version)` gives the source package, which
//! is what Debian's and Ubuntu's advisories are keyed by.

use super::{Kind, Package};

pub(super) fn parse(text: &str) -> Vec<Package> {
    stanzas(text).filter_map(|s| package(&s)).collect()
}

/// Each stanza's fields, continuation lines dropped (no field read here spans lines).
fn stanzas(text: &str) -> impl Iterator<Item = Vec<(&str, &str)>> {
    text.split("\n\n").filter_map(|block| {
        let fields: Vec<(&str, &str)> = block
            .lines()
            .filter(|l| !l.starts_with([' ', '\t']))
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim(), v.trim()))
            .collect();
        (!fields.is_empty()).then_some(fields)
    })
}

fn package(fields: &[(&str, &str)]) -> Option<Package> {
    let get = |key: &str| {
        fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| *v)
    };
    // A stanza without Status (distroless status.d files may omit it) counts as installed.
    if let Some(status) = get("Status") {
        let words: Vec<&str> = status.split_whitespace().collect();
        if !words.contains(&"ok") || !words.contains(&"installed") {
            return None;
        }
    }
    let name = get("Package").filter(|n| !n.is_empty())?;
    let version = get("Version").filter(|v| !v.is_empty())?;
    let mut p = Package::new(Kind::Dpkg, name, version);
    p.arch = get("Architecture").map(str::to_owned);
    let (source, source_version) = match get("Source").filter(|s| !s.is_empty()) {
        Some(source) => match source.split_once('(') {
            Some((n, v)) => (n.trim(), v.trim_end_matches(')').trim()),
            None => (source, version),
        },
        None => (name, version),
    };
    p.source_name = Some(source.to_owned());
    p.source_version = Some(source_version.to_owned());
    Some(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Package: bash\nEssential: yes\nStatus: install ok installed\n\
Priority: required\nArchitecture: amd64\nSource: bash (5.2.15-2)\nVersion: 5.2.15-2+b13\n\
Description: GNU Bourne Again SHell\n Bash is an sh-compatible command language interpreter\n\n\
Package: libssl3\nStatus: install ok installed\nArchitecture: amd64\nSource: openssl\n\
Version: 3.0.17-1~deb12u2\n\n\
Package: gone\nStatus: deinstall ok config-files\nVersion: 1.0\n\n\
Package: tzdata\nStatus: install ok installed\nArchitecture: all\nVersion: 2025b-0+deb12u1\n";

    #[test]
    fn parses_status() {
        let p = parse(STATUS);
        assert_eq!(p.len(), 3);
        assert_eq!(p[0].name, "bash");
        assert_eq!(p[0].version, "5.2.15-2+b13");
        assert_eq!(p[0].source_name.as_deref(), Some("bash"));
        assert_eq!(p[0].source_version.as_deref(), Some("5.2.15-2"));
        assert_eq!(p[0].arch.as_deref(), Some("amd64"));
        assert_eq!(p[1].source_name.as_deref(), Some("openssl"));
        assert_eq!(p[1].source_version.as_deref(), Some("3.0.17-1~deb12u2"));
        assert_eq!(p[2].source_name.as_deref(), Some("tzdata"));
    }

    #[test]
    fn distroless_stanza_without_status() {
        let p = parse("Package: base-files\nVersion: 12.4+deb12u1\nArchitecture: amd64\n");
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].version, "12.4+deb12u1");
    }
}
