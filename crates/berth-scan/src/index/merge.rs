//! Layers into an image, bottom first, under OCI whiteout rules. A layer's whiteouts and
//! opaque directories hide what the layers *below* it put there, never its own content; a
//! file a layer writes replaces the same path below it (and, for a jar, the jars that were
//! nested in the old one).

use std::collections::BTreeMap;

use super::paths::resolve_link;
use super::{Image, Installed, LayerIndex, OsRelease};

const OS_RELEASE: &str = "etc/os-release";
const OS_RELEASE_FALLBACK: &str = "usr/lib/os-release";

#[derive(Default)]
struct State {
    /// Found path -> what is installed from it.
    files: BTreeMap<String, Vec<Installed>>,
    os_files: BTreeMap<String, OsRelease>,
    links: BTreeMap<String, String>,
}

pub(super) fn merge(layers: &[(String, LayerIndex)]) -> Image {
    let mut st = State::default();
    for (digest, layer) in layers {
        st.apply(digest, layer);
    }
    Image {
        os: st.os(),
        packages: st.files.into_values().flatten().collect(),
    }
}

/// Removes the keys equal to `path` or below it (`path/…`, and `path!/…` inside a jar).
/// `None` for `path` hides everything below the root (an opaque root directory).
fn hide<V>(map: &mut BTreeMap<String, V>, path: &str, include_self: bool) -> Vec<(String, V)> {
    let below = |k: &str| {
        if path.is_empty() {
            return true;
        }
        match k.strip_prefix(path) {
            Some("") => include_self,
            Some(rest) => rest.starts_with('/') || rest.starts_with("!/"),
            None => false,
        }
    };
    let keys: Vec<String> = map
        .range(path.to_owned()..)
        .map(|(k, _)| k)
        .take_while(|k| k.starts_with(path))
        .filter(|k| below(k))
        .cloned()
        .collect();
    keys.into_iter()
        .filter_map(|k| map.remove(&k).map(|v| (k, v)))
        .collect()
}

impl State {
    fn apply(&mut self, digest: &str, layer: &LayerIndex) {
        for dir in &layer.opaque {
            self.hide_all(dir, false);
        }
        for path in &layer.removed {
            self.hide_all(path, true);
        }
        // What this layer replaces, kept aside so that a package it carries over unchanged
        // keeps the layer that first added it.
        let mut before: BTreeMap<String, Vec<Installed>> = BTreeMap::new();
        for f in &layer.found {
            before.extend(hide(&mut self.files, &f.path, true));
        }
        for f in &layer.found {
            let old = before.get(&f.path);
            let installed = f.packages.iter().map(|p| {
                let kept = old.and_then(|old| {
                    old.iter().find(|i| {
                        i.package.kind == p.kind
                            && i.package.name == p.name
                            && i.package.version == p.version
                    })
                });
                Installed {
                    package: p.clone(),
                    path: f.path.clone(),
                    added_by: kept.map_or_else(|| digest.to_owned(), |i| i.added_by.clone()),
                }
            });
            self.files
                .entry(f.path.clone())
                .or_default()
                .extend(installed);
        }
        for (path, os) in &layer.os_release {
            self.links.remove(path);
            self.os_files.insert(path.clone(), os.clone());
        }
        for (path, target) in &layer.symlinks {
            self.os_files.remove(path);
            self.links.insert(path.clone(), target.clone());
        }
    }

    fn hide_all(&mut self, path: &str, include_self: bool) {
        hide(&mut self.files, path, include_self);
        hide(&mut self.os_files, path, include_self);
        hide(&mut self.links, path, include_self);
    }

    fn os(&self) -> Option<OsRelease> {
        let mut path = OS_RELEASE.to_owned();
        // A few hops at most: etc/os-release -> ../usr/lib/os-release is the usual one.
        for _ in 0..8 {
            if let Some(os) = self.os_files.get(&path) {
                return Some(os.clone());
            }
            match self.links.get(&path).and_then(|t| resolve_link(&path, t)) {
                Some(next) => path = next,
                None => break,
            }
        }
        self.os_files.get(OS_RELEASE_FALLBACK).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Found, Kind, Package};
    use super::*;

    fn pkg(name: &str, version: &str) -> Package {
        Package::new(Kind::Dpkg, name, version)
    }

    fn layer(found: &[(&str, &[Package])]) -> LayerIndex {
        LayerIndex {
            found: found
                .iter()
                .map(|(p, pk)| Found {
                    path: (*p).to_owned(),
                    packages: pk.to_vec(),
                })
                .collect(),
            ..LayerIndex::default()
        }
    }

    fn summary(img: &Image) -> Vec<String> {
        img.packages
            .iter()
            .map(|i| {
                format!(
                    "{} {} {} {}",
                    i.path, i.package.name, i.package.version, i.added_by
                )
            })
            .collect()
    }

    #[test]
    fn replacement_keeps_added_by_of_unchanged_packages() {
        let s = "var/lib/dpkg/status";
        let l1 = layer(&[(s, &[pkg("a", "1"), pkg("b", "1")])]);
        let l2 = layer(&[(s, &[pkg("a", "1"), pkg("b", "2")])]);
        let img = merge(&[("l1".into(), l1), ("l2".into(), l2)]);
        assert_eq!(
            summary(&img),
            [format!("{s} a 1 l1"), format!("{s} b 2 l2")]
        );
    }

    #[test]
    fn whiteouts_opaque_and_jars() {
        let l1 = layer(&[
            ("app/a.jar", &[pkg("x", "1")]),
            ("app/a.jar!/lib/b.jar", &[pkg("y", "1")]),
            ("app2/c.jar", &[pkg("z", "1")]),
            ("opt/d/e.jar", &[pkg("w", "1")]),
            ("app20/f.jar", &[pkg("v", "1")]),
        ]);
        let mut l2 = layer(&[("opt/d/new.jar", &[pkg("n", "1")])]);
        l2.removed = vec!["app2".into()];
        l2.opaque = vec!["opt/d".into()];
        let l3 = layer(&[("app/a.jar", &[])]);
        let img = merge(&[("l1".into(), l1), ("l2".into(), l2), ("l3".into(), l3)]);
        assert_eq!(
            summary(&img),
            ["app20/f.jar v 1 l1", "opt/d/new.jar n 1 l2"]
        );
    }

    #[test]
    fn os_release_follows_the_link_and_falls_back() {
        let os = |id: &str| OsRelease {
            id: id.into(),
            ..OsRelease::default()
        };
        let l1 = LayerIndex {
            os_release: vec![("usr/lib/os-release".into(), os("debian"))],
            symlinks: vec![("etc/os-release".into(), "../usr/lib/os-release".into())],
            ..LayerIndex::default()
        };
        let img = merge(&[("l1".into(), l1.clone())]);
        assert_eq!(img.os.map(|o| o.id).as_deref(), Some("debian"));
        let l2 = LayerIndex {
            os_release: vec![("etc/os-release".into(), os("custom"))],
            ..LayerIndex::default()
        };
        let img = merge(&[("l1".into(), l1.clone()), ("l2".into(), l2)]);
        assert_eq!(img.os.map(|o| o.id).as_deref(), Some("custom"));
        let l3 = LayerIndex {
            removed: vec!["usr/lib".into()],
            ..LayerIndex::default()
        };
        let img = merge(&[("l1".into(), l1), ("l3".into(), l3)]);
        assert_eq!(img.os, None);
    }
}
