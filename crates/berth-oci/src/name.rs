//! Repository names (`ns/path/repo`) and manifest references (a tag or a digest).

use crate::digest::Digest;
use std::fmt;
use std::str::FromStr;

/// Maximum length of a full repository name, as in the Distribution grammar.
pub const MAX_NAME_LEN: usize = 255;

/// A valid repository name: lowercase path components joined by `/`, each
/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`, at most 255 characters in all.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepoName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NameError(pub String);

/// Whether `c` is one path component of a repository name:
/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`.
pub fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !is_alnum(b[0]) || !is_alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: ".", "_", "__" or one or more "-".
        let start = i;
        match b[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < b.len() && b[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < b.len() && b[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
        if i == start || i >= b.len() || !is_alnum(b[i]) {
            return false;
        }
    }
    true
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

impl RepoName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The first path component: the namespace that owns the repository.
    pub fn namespace(&self) -> &str {
        self.0.split('/').next().unwrap_or(&self.0)
    }
}

impl FromStr for RepoName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(NameError("repository name is empty".into()));
        }
        if s.len() > MAX_NAME_LEN {
            return Err(NameError(format!(
                "repository name is {} characters long; the limit is {MAX_NAME_LEN}",
                s.len()
            )));
        }
        if let Some(bad) = s.split('/').find(|c| !valid_component(c)) {
            return Err(NameError(format!(
                "path component {bad:?} must be lowercase letters and digits, separated by '.', '_', '__' or '-'"
            )));
        }
        Ok(RepoName(s.to_string()))
    }
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A valid tag: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(String);

impl Tag {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Tag {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let b = s.as_bytes();
        let ok = !b.is_empty()
            && b.len() <= 128
            && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
            && b[1..]
                .iter()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'));
        if ok {
            Ok(Tag(s.to_string()))
        } else {
            Err(NameError(format!(
                "tag {s:?} must match [a-zA-Z0-9_][a-zA-Z0-9._-]{{0,127}}"
            )))
        }
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a manifest path names: a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Reference {
    Tag(Tag),
    Digest(Digest),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("{0}")]
    Tag(NameError),
    #[error("{0}")]
    Digest(crate::digest::DigestError),
}

impl FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.contains(':') {
            s.parse()
                .map(Reference::Digest)
                .map_err(ReferenceError::Digest)
        } else {
            s.parse().map(Reference::Tag).map_err(ReferenceError::Tag)
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Tag(t) => t.fmt(f),
            Reference::Digest(d) => d.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names() {
        for ok in [
            "a",
            "library/ubuntu",
            "a/b/c/d/e",
            "a-b--c.d_e__f",
            "x0/blobs/y",
        ] {
            assert!(ok.parse::<RepoName>().is_ok(), "{ok}");
        }
        for bad in [
            "", "A", "a//b", "/a", "a/", "a-", "-a", "a..b", "a___b", "a b", "a/.b",
        ] {
            assert!(bad.parse::<RepoName>().is_err(), "{bad}");
        }
        assert!("a".repeat(256).parse::<RepoName>().is_err());
        assert_eq!(
            "ns/x/y"
                .parse::<RepoName>()
                .map(|n| n.namespace().to_string()),
            Ok("ns".to_string())
        );
    }

    #[test]
    fn tags_and_refs() {
        assert!("latest".parse::<Tag>().is_ok());
        assert!("_x.Y-1".parse::<Tag>().is_ok());
        assert!(".x".parse::<Tag>().is_err());
        assert!("a".repeat(129).parse::<Tag>().is_err());
        assert!(matches!("v1".parse::<Reference>(), Ok(Reference::Tag(_))));
        assert!(matches!(
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
                .parse::<Reference>(),
            Ok(Reference::Digest(_))
        ));
        assert!("sha256:zz".parse::<Reference>().is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_never_panics(s in ".{0,300}") {
            let _ = s.parse::<RepoName>();
            let _ = s.parse::<Tag>();
            let _ = s.parse::<Reference>();
        }
        #[test]
        fn valid_names_round_trip(s in "[a-z0-9]{1,8}((\\.|_|__|-+)[a-z0-9]{1,8}){0,2}(/[a-z0-9]{1,8}((\\.|_|__|-+)[a-z0-9]{1,8}){0,2}){0,4}") {
            let n: RepoName = s.parse().expect("valid");
            prop_assert_eq!(n.to_string(), s);
        }
        #[test]
        fn valid_tags_round_trip(s in "[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}") {
            let r: Reference = s.parse().expect("valid");
            prop_assert_eq!(r.to_string(), s);
        }
    }
}
