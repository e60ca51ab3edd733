//! Which tar paths the indexer reads, and how they are normalized.

/// A path as the indexer records it: no leading `./` or `/`, no empty or `.` components, `..`
/// applied. `None` when `..` climbs above the root: such an entry would land outside the
/// image's filesystem and is ignored.
pub(super) fn normalize(raw: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

/// `target` of a symlink at `link`, resolved to a normalized path (relative targets against
/// the link's directory); `None` when it climbs above the root.
pub(super) fn resolve_link(link: &str, target: &str) -> Option<String> {
    if target.starts_with('/') {
        return normalize(target);
    }
    let dir = link.rsplit_once('/').map_or("", |(d, _)| d);
    normalize(&format!("{dir}/{target}"))
}

/// The last component and its directory (`""` at the root).
pub(super) fn split(path: &str) -> (&str, &str) {
    path.rsplit_once('/').unwrap_or(("", path))
}

/// What a regular file at a path is to the indexer, judged by its path alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Interest {
    OsRelease,
    DpkgStatus,
    Apk,
    RpmSqlite,
    RpmSqliteWal,
    RpmBdb,
    RpmNdb,
    PythonMetadata,
    PythonInstaller,
    NpmPackage,
    NpmLock,
    CargoLock,
    Jar,
    Gemspec,
}

const RPM_DIRS: [&str; 3] = ["var/lib/rpm", "usr/lib/sysimage/rpm", "usr/share/rpm"];

pub(super) fn classify(path: &str) -> Option<Interest> {
    use Interest::*;
    let (dir, name) = split(path);
    match path {
        "etc/os-release" | "usr/lib/os-release" => return Some(OsRelease),
        "var/lib/dpkg/status" => return Some(DpkgStatus),
        "lib/apk/db/installed" | "usr/lib/apk/db/installed" => return Some(Apk),
        _ => {}
    }
    if dir == "var/lib/dpkg/status.d" && !name.ends_with(".md5sums") && !name.starts_with('.') {
        return Some(DpkgStatus);
    }
    if RPM_DIRS.contains(&dir) {
        match name {
            "rpmdb.sqlite" => return Some(RpmSqlite),
            "rpmdb.sqlite-wal" => return Some(RpmSqliteWal),
            "Packages" => return Some(RpmBdb),
            "Packages.db" => return Some(RpmNdb),
            _ => {}
        }
    }
    let (_, parent) = split(dir);
    match name {
        "METADATA" if parent.ends_with(".dist-info") => return Some(PythonMetadata),
        "INSTALLER" if parent.ends_with(".dist-info") => return Some(PythonInstaller),
        "PKG-INFO" if parent.ends_with(".egg-info") || parent == "EGG-INFO" => {
            return Some(PythonMetadata);
        }
        "package.json" if dir.split('/').any(|c| c == "node_modules") => {
            return Some(NpmPackage);
        }
        "package-lock.json" => return Some(NpmLock),
        "Cargo.lock" => return Some(CargoLock),
        _ => {}
    }
    if name.ends_with(".egg-info") && name.len() > ".egg-info".len() {
        return Some(PythonMetadata);
    }
    if name.ends_with(".gemspec")
        && name.len() > ".gemspec".len()
        && dir.split('/').skip(1).any(|c| c == "specifications")
    {
        return Some(Gemspec);
    }
    if java_archive(name) {
        return Some(Jar);
    }
    None
}

/// Jar-like archives, by extension.
pub(super) fn java_archive(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    [".jar", ".war", ".ear", ".jpi", ".hpi"]
        .iter()
        .any(|ext| lower.len() > ext.len() && lower.ends_with(ext))
}

/// Whether a regular file may be an executable worth opening: an exec bit, or a `bin`/`sbin`
/// directory on its path.
pub(super) fn maybe_binary(path: &str, mode: u32) -> bool {
    mode & 0o111 != 0 || split(path).0.split('/').any(|c| c == "bin" || c == "sbin")
}

#[cfg(test)]
mod tests {
    use super::Interest::*;
    use super::*;

    #[test]
    fn normalizes_and_refuses_escapes() {
        assert_eq!(
            normalize("./etc/os-release").as_deref(),
            Some("etc/os-release")
        );
        assert_eq!(normalize("/usr//lib/./x").as_deref(), Some("usr/lib/x"));
        assert_eq!(normalize("a/../etc/passwd").as_deref(), Some("etc/passwd"));
        assert_eq!(normalize("../../etc/passwd"), None);
        assert_eq!(normalize("./").as_deref(), Some(""));
    }

    #[test]
    fn resolves_links() {
        assert_eq!(
            resolve_link("etc/os-release", "../usr/lib/os-release").as_deref(),
            Some("usr/lib/os-release")
        );
        assert_eq!(
            resolve_link("etc/os-release", "/usr/lib/os-release").as_deref(),
            Some("usr/lib/os-release")
        );
        assert_eq!(resolve_link("etc/os-release", "../../x"), None);
    }

    #[test]
    fn classifies() {
        let cases = [
            ("etc/os-release", Some(OsRelease)),
            ("var/lib/dpkg/status", Some(DpkgStatus)),
            ("var/lib/dpkg/status.d/base", Some(DpkgStatus)),
            ("var/lib/dpkg/status.d/base.md5sums", None),
            ("lib/apk/db/installed", Some(Apk)),
            ("var/lib/rpm/rpmdb.sqlite", Some(RpmSqlite)),
            ("usr/lib/sysimage/rpm/Packages.db", Some(RpmNdb)),
            ("var/lib/rpm/Packages", Some(RpmBdb)),
            (
                "usr/lib/python3/site-packages/a-1.dist-info/METADATA",
                Some(PythonMetadata),
            ),
            (
                "usr/lib/python3/site-packages/a-1.dist-info/INSTALLER",
                Some(PythonInstaller),
            ),
            (
                "usr/lib/python3/site-packages/a.egg-info/PKG-INFO",
                Some(PythonMetadata),
            ),
            (
                "usr/lib/python3/site-packages/a-1.egg-info",
                Some(PythonMetadata),
            ),
            ("app/node_modules/lodash/package.json", Some(NpmPackage)),
            ("app/package.json", None),
            ("app/package-lock.json", Some(NpmLock)),
            ("src/Cargo.lock", Some(CargoLock)),
            ("usr/share/java/a.JAR", Some(Jar)),
            (
                "usr/lib/ruby/gems/3.1.0/specifications/rack-2.2.gemspec",
                Some(Gemspec),
            ),
            ("specifications/rack-2.2.gemspec", None),
            ("usr/bin/ls", None),
        ];
        for (path, want) in cases {
            assert_eq!(classify(path), want, "{path}");
        }
        assert!(maybe_binary("usr/bin/x", 0o644));
        assert!(maybe_binary("opt/x", 0o755));
        assert!(!maybe_binary("opt/x", 0o644));
    }
}
