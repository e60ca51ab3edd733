//! An RPM header as rpmdb stores it (without the 8-byte lead magic): big-endian index count
//! and data length, that many 16-byte entries (tag, type, offset, count), then the data.

use crate::index::{Kind, Package};

const NAME: u32 = 1000;
const VERSION: u32 = 1001;
const RELEASE: u32 = 1002;
const EPOCH: u32 = 1003;
const ARCH: u32 = 1022;
const SOURCERPM: u32 = 1044;

const TYPE_INT32: u32 = 4;
const TYPE_STRING: u32 = 6;
const TYPE_STRING_ARRAY: u32 = 8;
const TYPE_I18NSTRING: u32 = 9;

/// The header magic some writers keep in front (`8e ad e8 01` + 4 reserved bytes).
const MAGIC: [u8; 4] = [0x8e, 0xad, 0xe8, 0x01];

struct Header<'a> {
    index: &'a [u8],
    data: &'a [u8],
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let bytes = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes(bytes.try_into().ok()?))
}

impl<'a> Header<'a> {
    fn parse(blob: &'a [u8]) -> Option<Header<'a>> {
        let blob = match blob.get(..4) {
            Some(m) if m == MAGIC => blob.get(8..)?,
            _ => blob,
        };
        let count = usize::try_from(be32(blob, 0)?).ok()?;
        let len = usize::try_from(be32(blob, 4)?).ok()?;
        let index_end = count.checked_mul(16)?.checked_add(8)?;
        let index = blob.get(8..index_end)?;
        let data = blob.get(index_end..index_end.checked_add(len)?)?;
        Some(Header { index, data })
    }

    /// (type, offset, count) of `tag`.
    fn entry(&self, tag: u32) -> Option<(u32, usize, u32)> {
        let e = self
            .index
            .chunks_exact(16)
            .find(|e| be32(e, 0) == Some(tag))?;
        Some((
            be32(e, 4)?,
            usize::try_from(be32(e, 8)?).ok()?,
            be32(e, 12)?,
        ))
    }

    fn string(&self, tag: u32) -> Option<String> {
        let (ty, offset, _) = self.entry(tag)?;
        if !matches!(ty, TYPE_STRING | TYPE_STRING_ARRAY | TYPE_I18NSTRING) {
            return None;
        }
        let rest = self.data.get(offset..)?;
        let end = rest.iter().position(|&b| b == 0)?;
        let s = std::str::from_utf8(&rest[..end]).ok()?;
        (!s.is_empty()).then(|| s.to_owned())
    }

    fn int32(&self, tag: u32) -> Option<u32> {
        let (ty, offset, count) = self.entry(tag)?;
        (ty == TYPE_INT32 && count >= 1).then_some(())?;
        be32(self.data, offset)
    }
}

pub(super) fn package(blob: &[u8]) -> Option<Package> {
    let h = Header::parse(blob)?;
    let name = h.string(NAME)?;
    if name == "gpg-pubkey" {
        return None;
    }
    let version = h.string(VERSION)?;
    let release = h.string(RELEASE)?;
    let epoch = h.int32(EPOCH);
    let evr = |v: &str, r: &str| match epoch {
        Some(e) => format!("{e}:{v}-{r}"),
        None => format!("{v}-{r}"),
    };
    let mut p = Package::new(Kind::Rpm, name, evr(&version, &release));
    p.arch = h.string(ARCH);
    if let Some((source, v, r)) = h.string(SOURCERPM).as_deref().and_then(split_srpm) {
        p.source_name = Some(source.to_owned());
        p.source_version = Some(evr(v, r));
    }
    Some(p)
}

/// `openssl-3.0.7-27.el9.src.rpm` -> (`openssl`, `3.0.7`, `27.el9`).
fn split_srpm(srpm: &str) -> Option<(&str, &str, &str)> {
    let nvr = srpm
        .strip_suffix(".src.rpm")
        .or_else(|| srpm.strip_suffix(".nosrc.rpm"))?;
    let (nv, release) = nvr.rsplit_once('-')?;
    let (name, version) = nv.rsplit_once('-')?;
    (!name.is_empty()).then_some((name, version, release))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A header blob with the given (tag, type, data) entries.
    pub(crate) fn blob(entries: &[(u32, u32, Vec<u8>)]) -> Vec<u8> {
        let mut index = Vec::new();
        let mut data = Vec::new();
        for (tag, ty, d) in entries {
            for v in [*tag, *ty, data.len() as u32, 1] {
                index.extend_from_slice(&v.to_be_bytes());
            }
            data.extend_from_slice(d);
        }
        let mut out = Vec::new();
        out.extend_from_slice(&(entries.len() as u32).to_be_bytes());
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        out.extend(index);
        out.extend(data);
        out
    }

    fn s(v: &str) -> Vec<u8> {
        let mut b = v.as_bytes().to_vec();
        b.push(0);
        b
    }

    #[test]
    fn reads_nevra_and_source() {
        let b = blob(&[
            (NAME, TYPE_STRING, s("openssl-libs")),
            (VERSION, TYPE_STRING, s("3.0.7")),
            (RELEASE, TYPE_STRING, s("27.el9")),
            (EPOCH, TYPE_INT32, 1u32.to_be_bytes().to_vec()),
            (ARCH, TYPE_STRING, s("x86_64")),
            (SOURCERPM, TYPE_STRING, s("openssl-3.0.7-27.el9.src.rpm")),
        ]);
        let p = package(&b).expect("a package");
        assert_eq!(p.name, "openssl-libs");
        assert_eq!(p.version, "1:3.0.7-27.el9");
        assert_eq!(p.arch.as_deref(), Some("x86_64"));
        assert_eq!(p.source_name.as_deref(), Some("openssl"));
        assert_eq!(p.source_version.as_deref(), Some("1:3.0.7-27.el9"));
    }

    #[test]
    fn corrupt_blobs_are_none() {
        let good = blob(&[
            (NAME, TYPE_STRING, s("a")),
            (VERSION, TYPE_STRING, s("1")),
            (RELEASE, TYPE_STRING, s("1")),
        ]);
        assert!(package(&good).is_some());
        for cut in 0..good.len() {
            assert_eq!(package(&good[..cut]), None, "cut at {cut}");
        }
        let mut huge = good.clone();
        huge[0..4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(package(&huge), None);
        let mut bad_offset = good.clone();
        bad_offset[16..20].copy_from_slice(&0xffff_fff0u32.to_be_bytes());
        assert_eq!(package(&bad_offset), None);
        let gpg = blob(&[
            (NAME, TYPE_STRING, s("gpg-pubkey")),
            (VERSION, TYPE_STRING, s("1")),
            (RELEASE, TYPE_STRING, s("1")),
        ]);
        assert_eq!(package(&gpg), None);
    }
}
