//! The `/v2/...` path grammar. Repository names may have any number of components, including
//! ones spelled `blobs`, `manifests` or `uploads`, so routes are recognised from the right.

/// A recognised `/v2` route; names and references are returned raw, to be validated by the caller
/// so that a bad name can be answered with `NAME_INVALID` rather than 404.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum V2Route<'a> {
    Base,
    Catalog,
    Tags { name: &'a str },
    Manifest { name: &'a str, reference: &'a str },
    Blob { name: &'a str, digest: &'a str },
    UploadStart { name: &'a str },
    Upload { name: &'a str, id: &'a str },
    Referrers { name: &'a str, digest: &'a str },
}

impl<'a> V2Route<'a> {
    /// The repository the route names (raw, as in the path), if it names one.
    pub fn repo_name(&self) -> Option<&'a str> {
        match self {
            V2Route::Base | V2Route::Catalog => None,
            V2Route::Tags { name }
            | V2Route::Manifest { name, .. }
            | V2Route::Blob { name, .. }
            | V2Route::UploadStart { name }
            | V2Route::Upload { name, .. }
            | V2Route::Referrers { name, .. } => Some(name),
        }
    }
}

/// Splits `s` at its last `/`: (before, after).
fn pop(s: &str) -> Option<(&str, &str)> {
    s.rsplit_once('/')
}

/// Recognises a request path (without query). `None` means no `/v2` route matches.
pub fn parse_v2_path(path: &str) -> Option<V2Route<'_>> {
    let rest = path.strip_prefix("/v2")?;
    if rest.is_empty() || rest == "/" {
        return Some(V2Route::Base);
    }
    let rest = rest.strip_prefix('/')?;
    if rest == "_catalog" {
        return Some(V2Route::Catalog);
    }
    if let Some(name) = rest.strip_suffix("/tags/list") {
        return non_empty(name).map(|name| V2Route::Tags { name });
    }
    if let Some(name) = rest
        .strip_suffix("/blobs/uploads/")
        .or_else(|| rest.strip_suffix("/blobs/uploads"))
    {
        return non_empty(name).map(|name| V2Route::UploadStart { name });
    }
    let (head, last) = pop(rest)?;
    let (name, kind) = pop(head)?;
    if last.is_empty() {
        return None;
    }
    match kind {
        "manifests" => non_empty(name).map(|name| V2Route::Manifest {
            name,
            reference: last,
        }),
        "referrers" => non_empty(name).map(|name| V2Route::Referrers { name, digest: last }),
        "blobs" => non_empty(name).map(|name| V2Route::Blob { name, digest: last }),
        "uploads" => {
            let name = name.strip_suffix("/blobs")?;
            non_empty(name).map(|name| V2Route::Upload { name, id: last })
        }
        _ => None,
    }
}

fn non_empty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use V2Route::*;
    use proptest::prelude::*;

    #[test]
    fn routes() {
        assert_eq!(parse_v2_path("/v2/"), Some(Base));
        assert_eq!(parse_v2_path("/v2"), Some(Base));
        assert_eq!(parse_v2_path("/v2/_catalog"), Some(Catalog));
        assert_eq!(
            parse_v2_path("/v2/a/b/tags/list"),
            Some(Tags { name: "a/b" })
        );
        assert_eq!(
            parse_v2_path("/v2/a/manifests/latest"),
            Some(Manifest {
                name: "a",
                reference: "latest"
            })
        );
        assert_eq!(
            parse_v2_path("/v2/a/blobs/b/blobs/uploads/"),
            Some(UploadStart { name: "a/blobs/b" })
        );
        assert_eq!(
            parse_v2_path("/v2/a/blobs/uploads/123"),
            Some(Upload {
                name: "a",
                id: "123"
            })
        );
        assert_eq!(
            parse_v2_path("/v2/a/manifests/blobs/sha256:00"),
            Some(Blob {
                name: "a/manifests",
                digest: "sha256:00"
            })
        );
        assert_eq!(
            parse_v2_path("/v2/x/y/referrers/sha256:00"),
            Some(Referrers {
                name: "x/y",
                digest: "sha256:00"
            })
        );
        assert_eq!(parse_v2_path("/v2/a/other/x"), None);
        assert_eq!(parse_v2_path("/v2/blobs/x"), None);
        assert_eq!(parse_v2_path("/v3/"), None);
    }

    proptest! {
        #[test]
        fn never_panics(s in "(/v2)?[a-z/_:.]{0,40}") {
            let _ = parse_v2_path(&s);
        }
        #[test]
        fn round_trips(name in "[a-z0-9]{1,6}(/(blobs|manifests|uploads|[a-z0-9]{1,6})){0,4}", tag in "[a-zA-Z0-9_][a-zA-Z0-9._-]{0,20}") {
            let p = format!("/v2/{name}/manifests/{tag}");
            prop_assert_eq!(parse_v2_path(&p), Some(Manifest { name: &name, reference: &tag }));
            let p = format!("/v2/{name}/blobs/uploads/{tag}");
            prop_assert_eq!(parse_v2_path(&p), Some(Upload { name: &name, id: &tag }));
            let p = format!("/v2/{name}/tags/list");
            prop_assert_eq!(parse_v2_path(&p), Some(Tags { name: &name }));
        }
    }
}
