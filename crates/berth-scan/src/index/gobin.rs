//! Go build info. Go ≥ 1.13 binaries carry a 32-byte header starting with the magic
//! `\xff Go buildinf:` (in `.go.buildinfo` on ELF, `__go_buildinfo` on Mach-O, in `.data` on
//! PE), then pointer size and flags. With flag 0x2 (Go ≥ 1.18) the toolchain version and the
//! module info follow inline at +32 as uvarint-length strings; before that, +16 and
//! +16+ptrsize hold addresses of Go string headers (data address, length) in the image, read
//! here through the file's segments. Module info is framed by 16-byte sentinels and has lines
//! `path P`, `mod P V H`, `dep P V H`, `=> P V H` (replaces the line before), `build K=V`.
//! Binaries without the magic but with the framed module info (esbuild's) still give their
//! modules, though not their toolchain.

use object::{Object, ObjectSection, ObjectSegment};

use super::{Kind, Package};

const MAGIC: &[u8; 14] = b"\xff Go buildinf:";
const INFO_START: [u8; 16] = [
    0x30, 0x77, 0xaf, 0x0c, 0x92, 0x74, 0x08, 0x02, 0x41, 0xe1, 0xc1, 0x07, 0xe6, 0xd6, 0x18, 0xe6,
];
const INFO_END: [u8; 16] = [
    0xf9, 0x32, 0x43, 0x31, 0x86, 0x18, 0x20, 0x72, 0x00, 0x82, 0x42, 0x10, 0x41, 0x16, 0xd8, 0xf2,
];

pub(super) fn packages(data: &[u8], file: Option<&object::File<'_>>) -> Vec<Package> {
    let header = file
        .and_then(|f| {
            [".go.buildinfo", "__go_buildinfo"]
                .iter()
                .find_map(|n| f.section_by_name(n))
                .and_then(|s| s.data().ok())
                .filter(|d| d.starts_with(MAGIC))
        })
        .or_else(|| find(data, MAGIC).map(|at| &data[at..]));
    let (version, modinfo) = match header.and_then(|h| read_header(h, file)) {
        Some((v, m)) => (Some(v), m),
        None => match framed_modinfo(data) {
            Some(m) => (None, m),
            None => return Vec::new(),
        },
    };
    let mut out = parse_modinfo(&modinfo);
    if let Some(v) = version.as_deref().and_then(stdlib_version) {
        out.push(Package::new(Kind::GoStdlib, "stdlib", v));
    }
    out
}

/// (toolchain version, module info) from the buildinfo header at the start of `h`.
fn read_header(h: &[u8], file: Option<&object::File<'_>>) -> Option<(String, String)> {
    let ptr_size = usize::from(*h.get(14)?);
    let flags = *h.get(15)?;
    let (version, modinfo) = if flags & 0x2 != 0 {
        let (version, rest) = uvarint_string(h.get(32..)?)?;
        let (modinfo, _) = uvarint_string(rest)?;
        (version.to_vec(), modinfo.to_vec())
    } else {
        if ptr_size != 4 && ptr_size != 8 {
            return None;
        }
        let big = flags & 0x1 != 0;
        let file = file?;
        let v = read_ptr(h, 16, ptr_size, big)?;
        let m = read_ptr(h, 16 + ptr_size, ptr_size, big)?;
        (
            go_string(file, v, ptr_size, big)?,
            go_string(file, m, ptr_size, big)?,
        )
    };
    let version = String::from_utf8(version).ok()?;
    let n = modinfo.len();
    let modinfo = if n >= 33 && modinfo[n - 17] == b'\n' {
        &modinfo[16..n - 16]
    } else {
        &modinfo[..]
    };
    Some((version, String::from_utf8_lossy(modinfo).into_owned()))
}

fn uvarint_string(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut len: u64 = 0;
    for (i, &byte) in b.iter().enumerate().take(10) {
        len |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            let start = i + 1;
            let end = start.checked_add(usize::try_from(len).ok()?)?;
            return Some((b.get(start..end)?, b.get(end..)?));
        }
    }
    None
}

fn read_ptr(b: &[u8], at: usize, size: usize, big: bool) -> Option<u64> {
    let bytes = b.get(at..at.checked_add(size)?)?;
    let mut v: u64 = 0;
    for (i, &byte) in bytes.iter().enumerate() {
        let shift = if big { 8 * (size - 1 - i) } else { 8 * i };
        v |= u64::from(byte) << shift;
    }
    Some(v)
}

/// The bytes of the Go string whose header is at virtual address `addr`.
fn go_string(file: &object::File<'_>, addr: u64, ptr_size: usize, big: bool) -> Option<Vec<u8>> {
    let header = read_va(file, addr, 2 * ptr_size as u64)?;
    let data = read_ptr(header, 0, ptr_size, big)?;
    let len = read_ptr(header, ptr_size, ptr_size, big)?;
    if len > 1 << 24 {
        return None;
    }
    Some(read_va(file, data, len)?.to_vec())
}

fn read_va<'d>(file: &object::File<'d>, addr: u64, len: u64) -> Option<&'d [u8]> {
    file.segments()
        .find_map(|s| s.data_range(addr, len).ok().flatten())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let first = *needle.first()?;
    let mut at = 0;
    while let Some(i) = haystack.get(at..)?.iter().position(|&b| b == first) {
        let start = at + i;
        if haystack.get(start..start + needle.len())? == needle {
            return Some(start);
        }
        at = start + 1;
    }
    None
}

fn framed_modinfo(data: &[u8]) -> Option<String> {
    let start = find(data, &INFO_START)? + INFO_START.len();
    let len = find(data.get(start..)?, &INFO_END)?;
    let text = std::str::from_utf8(data.get(start..start + len)?).ok()?;
    text.starts_with("path\t").then(|| text.to_owned())
}

/// `go1.21.3` -> `1.21.3`; `go1.22.0 X:boringcrypto` -> `1.22.0`; devel builds -> `None`.
fn stdlib_version(v: &str) -> Option<String> {
    let v = v.split_whitespace().next()?.strip_prefix("go")?;
    v.starts_with(|c: char| c.is_ascii_digit())
        .then(|| v.to_owned())
}

fn parse_modinfo(text: &str) -> Vec<Package> {
    let mut out: Vec<Package> = Vec::new();
    // Whether the last mod/dep line produced a package (a `=>` line then replaces it).
    let mut last_pushed = false;
    for line in text.lines() {
        let mut f = line.split('\t');
        let (kind, path, version) = (f.next(), f.next(), f.next());
        match kind {
            Some("mod" | "dep") => {
                last_pushed = false;
                if let (Some(p), Some(v)) = (path, version)
                    && !p.is_empty()
                    && v.starts_with('v')
                {
                    out.push(Package::new(Kind::Go, p, v));
                    last_pushed = true;
                }
            }
            Some("=>") => {
                if last_pushed {
                    out.pop();
                }
                // A replacement by a local directory has no version: it is not a module
                // from anywhere an advisory could name.
                if let (Some(p), Some(v)) = (path, version)
                    && v.starts_with('v')
                {
                    out.push(Package::new(Kind::Go, p, v));
                }
                last_pushed = false;
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inline_header(version: &str, modinfo: &str) -> Vec<u8> {
        let mut h = MAGIC.to_vec();
        h.extend([8, 2]);
        h.resize(32, 0);
        for s in [version, modinfo] {
            let mut n = s.len();
            while n >= 0x80 {
                h.push((n as u8) | 0x80);
                n >>= 7;
            }
            h.push(n as u8);
            h.extend_from_slice(s.as_bytes());
        }
        h
    }

    #[test]
    fn inline_buildinfo() {
        let text = "path\texample.com/app\nmod\texample.com/app\t(devel)\t\n\
                    dep\tgolang.org/x/sys\tv0.1.0\th1:x=\n\
                    dep\tgithub.com/a/b\tv1.0.0\th1:y=\n=>\tgithub.com/c/b\tv1.2.0\th1:z=\n\
                    dep\tgithub.com/d/e\tv0.3.0\n=>\t../e\t\n\
                    build\t-compiler=gc\n";
        let mut blob = vec![0u8; 48];
        blob.extend(inline_header("go1.22.0 X:boringcrypto", text));
        let got: Vec<String> = packages(&blob, None)
            .into_iter()
            .map(|p| format!("{:?} {} {}", p.kind, p.name, p.version))
            .collect();
        assert_eq!(
            got,
            [
                "Go golang.org/x/sys v0.1.0",
                "Go github.com/c/b v1.2.0",
                "GoStdlib stdlib 1.22.0"
            ]
        );
    }

    #[test]
    fn framed_without_magic_and_truncated() {
        let mut blob = b"junk".to_vec();
        blob.extend(INFO_START);
        blob.extend(b"path\tgithub.com/evanw/esbuild/cmd/esbuild\ndep\tgolang.org/x/sys\tv0.0.1\n");
        blob.extend(INFO_END);
        let p = packages(&blob, None);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].name, "golang.org/x/sys");
        let h = inline_header("go1.21.3", "path\tx\n");
        for cut in 0..h.len() {
            let _ = packages(&h[..cut], None);
        }
        assert_eq!(stdlib_version("go1.21.3").as_deref(), Some("1.21.3"));
        assert_eq!(stdlib_version("devel go1.23-abc"), None);
    }
}
