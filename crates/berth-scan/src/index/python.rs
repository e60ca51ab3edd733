//! Python distributions: the RFC 822 header of `*.dist-info/METADATA`, `*.egg-info/PKG-INFO`
//! and single-file `*.egg-info`.

use super::{Kind, Package};

pub(super) fn parse_metadata(text: &str) -> Option<Package> {
    let (mut name, mut version) = (None, None);
    for line in text.lines() {
        if line.trim().is_empty() {
            break; // the body (long description) follows the header
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        match key.trim().to_ascii_lowercase().as_str() {
            "name" if name.is_none() => name = Some(value.trim()),
            "version" if version.is_none() => version = Some(value.trim()),
            _ => {}
        }
    }
    let name = normalize(name.filter(|n| !n.is_empty())?);
    let version = version.filter(|v| !v.is_empty())?;
    Some(Package::new(Kind::Python, name, version))
}

/// PEP 503, as the vulnerability data's names are normalized.
pub(super) use crate::vulndb::normalize_pypi as normalize;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_metadata() {
        let p = parse_metadata(
            "Metadata-Version: 2.1\nName: Zope.Interface\nVersion: 6.0\n\nName: not-this\n",
        );
        let p = p.expect("a package");
        assert_eq!(p.name, "zope-interface");
        assert_eq!(p.version, "6.0");
        assert_eq!(parse_metadata("Metadata-Version: 2.1\nName: x\n"), None);
    }

    #[test]
    fn normalizes() {
        assert_eq!(normalize("Foo__Bar-.baz"), "foo-bar-baz");
        assert_eq!(normalize("requests"), "requests");
    }
}
