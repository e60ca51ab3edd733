//! Ruby gems: `…/specifications/NAME-VERSION.gemspec`. The `s.name = "…"` / `s.version = "…"`
//! lines are preferred; the file name is the fallback (VERSION starts after the last `-`
//! followed by a digit).

use super::{Kind, Package};

pub(super) fn parse(file_name: &str, text: &str) -> Option<Package> {
    let (mut name, mut version) = (None, None);
    for line in text.lines() {
        let line = line.trim();
        let Some((lhs, rhs)) = line.split_once('=') else {
            continue;
        };
        let field = lhs.trim().rsplit_once('.').map(|(_, f)| f);
        let value = || quoted(rhs);
        match field {
            Some("name") if name.is_none() => name = value(),
            Some("version") if version.is_none() => version = value(),
            _ => {}
        }
    }
    if let (Some(name), Some(version)) = (name, version) {
        return Some(Package::new(Kind::Gem, name, version));
    }
    let stem = file_name.strip_suffix(".gemspec")?;
    let cut = stem
        .char_indices()
        .filter(|&(i, c)| {
            c == '-'
                && stem[i + 1..]
                    .chars()
                    .next()
                    .is_some_and(|d| d.is_ascii_digit())
        })
        .map(|(i, _)| i)
        .next_back()?;
    let (name, version) = (&stem[..cut], &stem[cut + 1..]);
    (!name.is_empty()).then(|| Package::new(Kind::Gem, name, version))
}

/// The first `"…"` or `'…'` string in `s`.
fn quoted(s: &str) -> Option<String> {
    let start = s.find(['"', '\''])?;
    let q = s[start..].chars().next()?;
    let rest = &s[start + 1..];
    let end = rest.find(q)?;
    let v = &rest[..end];
    (!v.is_empty()).then(|| v.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_content_then_file_name() {
        let spec = "Gem::Specification.new do |s|\n  s.name = \"rack\".freeze\n  \
                    s.version = \"2.2.22\".freeze\nend\n";
        let p = parse("x-1.gemspec", spec).expect("a gem");
        assert_eq!((p.name.as_str(), p.version.as_str()), ("rack", "2.2.22"));
        let p = parse("net-http-persistent-4.0.2.gemspec", "").expect("a gem");
        assert_eq!(
            (p.name.as_str(), p.version.as_str()),
            ("net-http-persistent", "4.0.2")
        );
        assert_eq!(parse("nodash.gemspec", ""), None);
    }
}
