//! Executables: Go build info (`gobin`) and cargo-auditable's `.dep-v0` section, in ELF, PE
//! and Mach-O files parsed with `object` from memory (the caller bounds the size).

use std::io::Read;

use object::{Object, ObjectSection};
use serde::Deserialize;

use super::{Kind, Limits, Package, gobin};

/// ELF, PE (`MZ`) or thin Mach-O, by the first four bytes. (Fat Mach-O shares `cafebabe`
/// with Java class files and is left out.)
pub(super) fn executable_magic(head: &[u8; 4]) -> bool {
    matches!(
        head,
        [0x7f, b'E', b'L', b'F']
            | [b'M', b'Z', _, _]
            | [0xfe, 0xed, 0xfa, 0xce | 0xcf]
            | [0xce | 0xcf, 0xfa, 0xed, 0xfe]
    )
}

/// The packages built into an executable.
pub(super) fn scan(data: &[u8], limits: &Limits) -> Vec<Package> {
    let file = object::File::parse(data).ok();
    let mut out = gobin::packages(data, file.as_ref());
    if let Some(file) = &file {
        out.extend(auditable(file, limits));
    }
    out
}

#[derive(Deserialize)]
struct DepInfo {
    packages: Vec<DepPackage>,
}

#[derive(Deserialize)]
struct DepPackage {
    name: String,
    version: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    root: bool,
}

/// cargo-auditable: zlib-compressed JSON `{"packages":[{name, version, source, root, …}]}`.
/// Registry crates only: the root (the binary itself) and path or git crates have no
/// advisories to match.
fn auditable(file: &object::File<'_>, limits: &Limits) -> Vec<Package> {
    let Some(section) = [".dep-v0", "__dep_v0"]
        .iter()
        .find_map(|n| file.section_by_name(n))
    else {
        return Vec::new();
    };
    let Ok(compressed) = section.data() else {
        return Vec::new();
    };
    let max = limits.max_file_bytes.min(64 << 20);
    let mut json = Vec::new();
    let decoded = flate2::read::ZlibDecoder::new(compressed)
        .take(max.saturating_add(1))
        .read_to_end(&mut json);
    if decoded.is_err() || json.len() as u64 > max {
        return Vec::new();
    }
    let Ok(info) = serde_json::from_slice::<DepInfo>(&json) else {
        return Vec::new();
    };
    info.packages
        .into_iter()
        .filter(|p| !p.root && (p.source == "crates.io" || p.source.starts_with("registry")))
        .map(|p| Package::new(Kind::Cargo, p.name, p.version))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic() {
        assert!(executable_magic(b"\x7fELF"));
        assert!(executable_magic(b"MZ\x90\x00"));
        assert!(executable_magic(&[0xcf, 0xfa, 0xed, 0xfe]));
        assert!(!executable_magic(&[0xca, 0xfe, 0xba, 0xbe]));
        assert!(!executable_magic(b"#!/b"));
    }

    #[test]
    fn garbage_executables_have_no_packages() {
        let mut elf = b"\x7fELF".to_vec();
        elf.extend(std::iter::repeat_n(0xa5u8, 4096));
        assert!(scan(&elf, &Limits::default()).is_empty());
    }
}
