//! The tar stream, member by member, with every header's memory bounded. The `tar` crate's
//! iterator reads a GNU long name or a PAX extended header into memory whole, at whatever size
//! its header declares; its raw mode leaves those to the caller but then positions the next
//! header by the ustar size field alone, ignoring a PAX `size` (which writers use for files
//! over 8 GiB, writing 0 in the header) and the extension blocks of old GNU sparse files. So
//! this module walks the 512-byte blocks itself, using `tar::Header` for the fields: GNU long
//! names and links up to [`MAX_NAME`], PAX headers up to [`MAX_PAX`], a larger one is corrupt.
//! PAX `path`, `linkpath` and `size` apply to the next member (a GNU long name wins over a PAX
//! path, as in the `tar` crate); global PAX headers are returned as members and otherwise
//! ignored.

use std::io::{self, Read};

use tar::{GnuSparseHeader, Header};

const BLOCK: u64 = 512;
/// A GNU long name or long link target (both are paths).
pub(super) const MAX_NAME: u64 = 64 << 10;
/// One PAX extended header, all its records together.
pub(super) const MAX_PAX: u64 = 1 << 20;
/// Hole/data segments of one GNU sparse file.
const MAX_SPARSE_SEGMENTS: usize = 1 << 16;

/// One member of the archive, its extension headers applied.
pub(super) struct Member {
    pub header: Header,
    pub path: Vec<u8>,
    pub link: Option<Vec<u8>>,
    /// The content's size (a sparse file's expanded size).
    pub size: u64,
}

enum Segment {
    Hole(u64),
    Data(u64),
}

pub(super) struct TarStream<R> {
    inner: R,
    /// What is left of the current member's content, front first.
    segments: Vec<Segment>,
    /// Padding after the current member's stored bytes.
    padding: u64,
}

/// Extension headers seen for the member that follows them.
#[derive(Default)]
struct Pending {
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
    pax: Option<Pax>,
}

#[derive(Default)]
struct Pax {
    path: Option<Vec<u8>>,
    linkpath: Option<Vec<u8>>,
    size: Option<u64>,
}

fn corrupt(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

impl<R: Read> TarStream<R> {
    pub fn new(inner: R) -> Self {
        TarStream {
            inner,
            segments: Vec::new(),
            padding: 0,
        }
    }

    pub fn into_inner(self) -> R {
        self.inner
    }

    /// The next member, skipping what was not read of the previous one; `None` at the end
    /// marker (or at the end of the stream on a block boundary).
    pub fn next_member(&mut self) -> io::Result<Option<Member>> {
        let mut pending = Pending::default();
        let mut described = false;
        loop {
            self.skip_rest()?;
            let Some(header) = self.read_header()? else {
                if described {
                    return Err(corrupt(
                        "extension headers describing a member, but no member",
                    ));
                }
                return Ok(None);
            };
            let ty = header.entry_type();
            let stored = header.entry_size()?;
            let recognized = header.as_gnu().is_some() || header.as_ustar().is_some();
            if recognized && (ty.is_gnu_longname() || ty.is_gnu_longlink()) {
                let what = if ty.is_gnu_longname() {
                    "long name"
                } else {
                    "long link name"
                };
                let slot = if ty.is_gnu_longname() {
                    &mut pending.long_name
                } else {
                    &mut pending.long_link
                };
                if slot.is_some() {
                    return Err(corrupt(format!("two GNU {what}s for one member")));
                }
                if stored > MAX_NAME {
                    return Err(corrupt(format!(
                        "a GNU {what} of {stored} bytes (the most is {MAX_NAME})"
                    )));
                }
                let mut name = self.read_ext(stored)?;
                // A C string: GNU tar writes the name and its NUL.
                if let Some(end) = name.iter().position(|&b| b == 0) {
                    name.truncate(end);
                }
                *slot = Some(name);
                described = true;
                continue;
            }
            if recognized && (ty.is_pax_local_extensions() || ty.is_pax_global_extensions()) {
                if stored > MAX_PAX {
                    return Err(corrupt(format!(
                        "a PAX header of {stored} bytes (the most is {MAX_PAX})"
                    )));
                }
                if ty.is_pax_global_extensions() {
                    // Returned as a member of its own, as the `tar` crate does; not applied.
                    self.start(vec![Segment::Data(stored)], stored)?;
                    return Ok(Some(Member {
                        path: header.path_bytes().into_owned(),
                        link: None,
                        size: stored,
                        header,
                    }));
                }
                if pending.pax.is_some() {
                    return Err(corrupt("two PAX headers for one member"));
                }
                let records = self.read_ext(stored)?;
                pending.pax = Some(parse_pax(&records)?);
                described = true;
                continue;
            }
            return self.member(header, pending).map(Some);
        }
    }

    fn member(&mut self, header: Header, pending: Pending) -> io::Result<Member> {
        let pax = pending.pax.unwrap_or_default();
        let stored = match pax.size {
            Some(size) => size,
            None => header.entry_size()?,
        };
        let path = pending
            .long_name
            .or(pax.path)
            .unwrap_or_else(|| header.path_bytes().into_owned());
        let link = pending
            .long_link
            .or(pax.linkpath)
            .or_else(|| header.link_name_bytes().map(|l| l.into_owned()));
        let (segments, size) = if header.entry_type().is_gnu_sparse() {
            self.sparse_map(&header, stored)?
        } else {
            (vec![Segment::Data(stored)], stored)
        };
        self.start(segments, stored)?;
        Ok(Member {
            header,
            path,
            link,
            size,
        })
    }

    fn start(&mut self, segments: Vec<Segment>, stored: u64) -> io::Result<()> {
        let rounded = stored
            .checked_next_multiple_of(BLOCK)
            .ok_or_else(|| corrupt(format!("a tar entry declares {stored} bytes")))?;
        self.segments = segments;
        self.segments.reverse();
        self.padding = rounded - stored;
        Ok(())
    }

    /// An old GNU sparse file's map: its header's four slots, then extension blocks while
    /// they say more follow. The stored bytes are the data segments back to back.
    fn sparse_map(&mut self, header: &Header, stored: u64) -> io::Result<(Vec<Segment>, u64)> {
        let gnu = header
            .as_gnu()
            .ok_or_else(|| corrupt("a sparse entry without a GNU header"))?;
        let mut map = SparseMap {
            segments: Vec::new(),
            cur: 0,
            left: stored,
        };
        for block in &gnu.sparse {
            map.add(block)?;
        }
        let mut more = gnu.is_extended();
        while more {
            let mut ext = tar::GnuExtSparseHeader::new();
            read_block(&mut self.inner, ext.as_mut_bytes())?
                .then_some(())
                .ok_or_else(|| corrupt("the tar stream ends in a sparse map"))?;
            for block in &ext.sparse {
                map.add(block)?;
            }
            more = ext.is_extended();
        }
        let real = gnu.real_size()?;
        if map.cur != real || map.left != 0 {
            return Err(corrupt("a sparse map that does not match its sizes"));
        }
        Ok((map.segments, real))
    }

    /// A header block, checksum verified; `None` at the end.
    fn read_header(&mut self) -> io::Result<Option<Header>> {
        let mut header = Header::new_old();
        if !read_block(&mut self.inner, header.as_mut_bytes())? {
            return Ok(None);
        }
        if header.as_bytes().iter().all(|&b| b == 0) {
            return Ok(None);
        }
        let bytes = header.as_bytes();
        let sum = bytes[..148]
            .iter()
            .chain(&bytes[156..])
            .map(|&b| u32::from(b))
            .sum::<u32>()
            + 8 * u32::from(b' ');
        if sum != header.cksum()? {
            return Err(corrupt("archive header checksum mismatch"));
        }
        Ok(Some(header))
    }

    /// An extension header's content (`len` already bounded), and its padding.
    fn read_ext(&mut self, len: u64) -> io::Result<Vec<u8>> {
        let mut data = vec![0u8; usize::try_from(len).map_err(|_| corrupt("size overflow"))?];
        self.inner.read_exact(&mut data).map_err(eof_in_entry)?;
        self.start(Vec::new(), len)?;
        Ok(data)
    }

    /// Skips what is left of the current member: its stored bytes (holes cost nothing) and
    /// its padding.
    fn skip_rest(&mut self) -> io::Result<()> {
        let stored: u64 = std::mem::take(&mut self.segments)
            .iter()
            .map(|s| match s {
                Segment::Data(n) => *n,
                Segment::Hole(_) => 0,
            })
            .sum();
        let skip = stored + std::mem::take(&mut self.padding);
        let copied = io::copy(&mut (&mut self.inner).take(skip), &mut io::sink())?;
        if copied < skip {
            return Err(eof_in_entry(io::ErrorKind::UnexpectedEof.into()));
        }
        Ok(())
    }
}

/// The current member's content.
impl<R: Read> Read for TarStream<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let (hole, left) = match self.segments.last() {
                None => return Ok(0),
                Some(Segment::Hole(left)) => (true, *left),
                Some(Segment::Data(left)) => (false, *left),
            };
            if left == 0 {
                self.segments.pop();
                continue;
            }
            let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            let n = if hole {
                buf[..want].fill(0);
                want
            } else {
                match self.inner.read(&mut buf[..want])? {
                    0 if want > 0 => return Err(eof_in_entry(io::ErrorKind::UnexpectedEof.into())),
                    n => n,
                }
            };
            if let Some(Segment::Hole(left) | Segment::Data(left)) = self.segments.last_mut() {
                *left -= n as u64;
            }
            return Ok(n);
        }
    }
}

fn eof_in_entry(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        corrupt("the tar stream ends inside an entry")
    } else {
        e
    }
}

/// Fills `buf`; `false` if the stream was already at its end.
fn read_block(r: &mut impl Read, buf: &mut [u8]) -> io::Result<bool> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) if filled == 0 => return Ok(false),
            Ok(0) => return Err(corrupt("the tar stream ends inside a header")),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

struct SparseMap {
    segments: Vec<Segment>,
    /// The expanded file's offset so far.
    cur: u64,
    /// Stored bytes not yet assigned to a segment.
    left: u64,
}

impl SparseMap {
    fn add(&mut self, block: &GnuSparseHeader) -> io::Result<()> {
        if block.is_empty() {
            return Ok(());
        }
        let (off, len) = (block.offset()?, block.length()?);
        if off < self.cur {
            return Err(corrupt("out of order or overlapping sparse blocks"));
        }
        if self.segments.len() + 2 > MAX_SPARSE_SEGMENTS {
            return Err(corrupt(format!(
                "a sparse map of more than {MAX_SPARSE_SEGMENTS} segments"
            )));
        }
        if off > self.cur {
            self.segments.push(Segment::Hole(off - self.cur));
        }
        self.left = self
            .left
            .checked_sub(len)
            .ok_or_else(|| corrupt("a sparse map longer than its entry"))?;
        self.cur = off
            .checked_add(len)
            .ok_or_else(|| corrupt("a sparse map past 2^64 bytes"))?;
        self.segments.push(Segment::Data(len));
        Ok(())
    }
}

/// PAX records (`"<len> <key>=<value>\n"`, `len` counting the whole record), keeping the
/// three that change where and what the next member is. An empty value unsets a key.
fn parse_pax(mut data: &[u8]) -> io::Result<Pax> {
    let bad = || corrupt("a malformed PAX record");
    let mut pax = Pax::default();
    while !data.is_empty() {
        let space = data.iter().position(|&b| b == b' ').ok_or_else(bad)?;
        let len: usize = std::str::from_utf8(&data[..space])
            .ok()
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse().ok())
            .ok_or_else(bad)?;
        if len <= space + 1 || len > data.len() || data[len - 1] != b'\n' {
            return Err(bad());
        }
        let record = &data[space + 1..len - 1];
        data = &data[len..];
        let eq = record.iter().position(|&b| b == b'=').ok_or_else(bad)?;
        let (key, value) = (&record[..eq], &record[eq + 1..]);
        let value = (!value.is_empty()).then(|| value.to_vec());
        match key {
            b"path" => pax.path = value,
            b"linkpath" => pax.linkpath = value,
            b"size" => {
                pax.size = match value {
                    None => None,
                    Some(v) => Some(
                        std::str::from_utf8(&v)
                            .ok()
                            .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
                            .and_then(|s| s.parse().ok())
                            .ok_or_else(|| corrupt("a PAX size that is not a number"))?,
                    ),
                }
            }
            _ => {}
        }
    }
    Ok(pax)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_records() {
        let pax =
            parse_pax(b"30 mtime=1234567890.123456789\n12 size=100\n14 path=a/b/c\n").expect("pax");
        assert_eq!(pax.size, Some(100));
        assert_eq!(pax.path.as_deref(), Some(&b"a/b/c"[..]));
        // Values may hold newlines and `=`: the length says where a record ends.
        let pax = parse_pax(b"14 path=a\nb=c\n").expect("pax");
        assert_eq!(pax.path.as_deref(), Some(&b"a\nb=c"[..]));
        assert!(parse_pax(b"8 path=\n").expect("pax").path.is_none());
        for bad in [
            &b"12 size=100"[..],
            b"99 path=a\n",
            b"x path=a\n",
            b"5 a=b\n",
            b"11 size=-1\n",
            b"8 path\n",
        ] {
            assert!(
                parse_pax(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
