//! One pass over a layer's tar stream: metering and limits, whiteouts, and handing each file of
//! interest to its parser. Files are read into memory only when their path says they matter
//! (or their first bytes say they are an executable), and never beyond `max_file_bytes`;
//! rpm SQLite databases are spooled to a temporary directory because SQLite needs a file (and
//! its write-ahead log beside it, which may come before or after it in the tar).

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::rc::Rc;

use super::paths::{self, Interest};
use super::tarstream::{Member, TarStream};
use super::{Compression, Found, IndexError, LayerIndex, Limits};
use super::{apkdb, binary, cargo, dpkg, gem, java, npm, osrelease, python, rpm};

/// A tar entry declaring more than this is not a real file (4 TiB).
const ABSURD_SIZE: u64 = 1 << 42;

/// What the stream has cost so far, and why it stopped if it did.
#[derive(Default)]
struct Meter {
    bytes: Cell<u64>,
    exceeded: Cell<bool>,
    source_failed: Cell<bool>,
}

/// The caller's reader; remembers that *it* failed, so that its errors are `Io` and not
/// mistaken for corrupt data.
struct Source<R> {
    inner: R,
    meter: Rc<Meter>,
}

impl<R: Read> Read for Source<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner
            .read(buf)
            .inspect_err(|_| self.meter.source_failed.set(true))
    }
}

/// The uncompressed stream, counted and cut at `max_layer_bytes`.
struct Counted<R> {
    inner: R,
    meter: Rc<Meter>,
    limit: Option<u64>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let seen = self.meter.bytes.get();
        let cap = match self.limit {
            // One byte past the limit is enough to know it is exceeded.
            Some(limit) => {
                let left = limit.saturating_sub(seen).saturating_add(1);
                buf.len().min(usize::try_from(left).unwrap_or(usize::MAX))
            }
            None => buf.len(),
        };
        let n = self.inner.read(&mut buf[..cap])?;
        let seen = seen.saturating_add(n as u64);
        self.meter.bytes.set(seen);
        if self.limit.is_some_and(|limit| seen > limit) {
            self.meter.exceeded.set(true);
            return Err(io::Error::other("layer size limit exceeded"));
        }
        Ok(n)
    }
}

pub(super) fn index_layer(
    r: impl Read,
    c: Compression,
    limits: &Limits,
) -> Result<LayerIndex, IndexError> {
    let meter = Rc::new(Meter::default());
    let source = Source {
        inner: r,
        meter: meter.clone(),
    };
    let fail = |e: io::Error| classify_error(e, &meter, limits);
    let decoded: Box<dyn Read + '_> = match c {
        Compression::None => Box::new(source),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(source)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(source).map_err(fail)?),
    };
    let counted = Counted {
        inner: decoded,
        meter: meter.clone(),
        limit: limits.max_layer_bytes,
    };
    let mut walk = Walk {
        limits,
        out: LayerIndex::default(),
        installers: HashMap::new(),
        temp: None,
        sqlite: BTreeMap::new(),
    };
    let mut tar = TarStream::new(counted);
    while let Some(member) = tar.next_member().map_err(fail)? {
        walk.entry(&member, &mut tar, &fail)?;
    }
    // Read to the end, so that a truncated or corrupt compressed stream is noticed even after
    // the tar's end marker (gzip checks its CRC and length only there).
    io::copy(&mut tar.into_inner(), &mut io::sink()).map_err(fail)?;
    walk.finish(meter.bytes.get())
}

fn classify_error(e: io::Error, meter: &Meter, limits: &Limits) -> IndexError {
    if meter.exceeded.get() {
        IndexError::TooLarge {
            limit: limits.max_layer_bytes.unwrap_or(0),
        }
    } else if meter.source_failed.get() {
        IndexError::Io(e)
    } else {
        IndexError::Corrupt(e.to_string())
    }
}

/// Where a directory's rpmdb.sqlite and its WAL were spooled.
#[derive(Default)]
struct SqliteFiles {
    db: Option<PathBuf>,
    wal: Option<PathBuf>,
}

struct Walk<'l> {
    limits: &'l Limits,
    out: LayerIndex,
    /// `*.dist-info` directory -> its INSTALLER.
    installers: HashMap<String, String>,
    temp: Option<tempfile::TempDir>,
    /// rpm database directory -> its spooled SQLite files.
    sqlite: BTreeMap<String, SqliteFiles>,
}

type Fail<'a> = dyn Fn(io::Error) -> IndexError + 'a;

impl Walk<'_> {
    fn entry(
        &mut self,
        member: &Member,
        content: &mut impl Read,
        fail: &Fail<'_>,
    ) -> Result<(), IndexError> {
        self.out.entries += 1;
        if self.out.entries > self.limits.max_entries {
            return Err(IndexError::TooLarge {
                limit: self.limits.max_entries,
            });
        }
        let size = member.size;
        if let Some(limit) = self.limits.max_layer_bytes
            && size > limit
        {
            return Err(IndexError::TooLarge { limit });
        }
        if size > ABSURD_SIZE {
            return Err(IndexError::Corrupt(format!(
                "a tar entry declares {size} bytes"
            )));
        }
        let raw = String::from_utf8_lossy(&member.path).into_owned();
        let Some(path) = paths::normalize(&raw) else {
            return Ok(());
        };
        if path.is_empty() {
            return Ok(());
        }
        let (dir, name) = paths::split(&path);
        if name == ".wh..wh..opq" {
            self.out.opaque.push(dir.to_owned());
            return Ok(());
        }
        if let Some(hidden) = name.strip_prefix(".wh.") {
            // `.wh..wh.*` other than the opaque marker are aufs bookkeeping, not whiteouts.
            if !hidden.is_empty() && !hidden.starts_with(".wh.") {
                self.out.removed.push(join(dir, hidden));
            }
            return Ok(());
        }
        let link = member
            .link
            .as_ref()
            .map(|l| String::from_utf8_lossy(l).into_owned());
        match member.header.entry_type() {
            tar::EntryType::Symlink => {
                if let Some(target) = link
                    && paths::classify(&path) == Some(Interest::OsRelease)
                {
                    self.out.symlinks.push((path, target));
                }
            }
            tar::EntryType::Link => {
                if let Some(target) = link.as_deref().and_then(paths::normalize) {
                    self.hard_link(&path, &target);
                }
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                let mode = member.header.mode().unwrap_or(0);
                self.file(&path, size, mode, content, fail)?;
            }
            _ => {}
        }
        Ok(())
    }

    fn file(
        &mut self,
        path: &str,
        size: u64,
        mode: u32,
        entry: &mut impl Read,
        fail: &Fail<'_>,
    ) -> Result<(), IndexError> {
        let max = self.limits.max_file_bytes;
        if size > max {
            return Ok(());
        }
        match paths::classify(path) {
            Some(kind @ (Interest::RpmSqlite | Interest::RpmSqliteWal)) => {
                self.spool_sqlite(path, kind, entry, fail)
            }
            Some(interest) => {
                if let Some(data) = read_bounded(entry, size, max, fail)? {
                    self.parse(interest, path, &data);
                }
                Ok(())
            }
            None if size >= 4 && paths::maybe_binary(path, mode) => {
                let mut head = [0u8; 4];
                entry.read_exact(&mut head).map_err(fail)?;
                if !binary::executable_magic(&head) {
                    return Ok(());
                }
                let mut data = Vec::with_capacity(capacity(size));
                data.extend_from_slice(&head);
                entry
                    .take(max.saturating_sub(4).saturating_add(1))
                    .read_to_end(&mut data)
                    .map_err(fail)?;
                if data.len() as u64 > max {
                    return Ok(());
                }
                let packages = binary::scan(&data, self.limits);
                if !packages.is_empty() {
                    self.found(path, packages);
                }
                Ok(())
            }
            None => Ok(()),
        }
    }

    fn parse(&mut self, interest: Interest, path: &str, data: &[u8]) {
        let text = || String::from_utf8_lossy(data);
        match interest {
            Interest::OsRelease => {
                let parsed = osrelease::parse(&text());
                self.out.os_release.push((path.to_owned(), parsed));
            }
            Interest::DpkgStatus => self.found(path, dpkg::parse(&text())),
            Interest::Apk => self.found(path, apkdb::parse(&text())),
            Interest::RpmBdb => {
                if let Some(packages) = rpm::bdb::packages(data, self.limits) {
                    self.found(path, packages);
                }
            }
            Interest::RpmNdb => {
                if let Some(packages) = rpm::ndb::packages(data, self.limits) {
                    self.found(path, packages);
                }
            }
            Interest::PythonMetadata => {
                if let Some(p) = python::parse_metadata(&text()) {
                    self.found(path, vec![p]);
                }
            }
            Interest::PythonInstaller => {
                let installer = text().lines().next().unwrap_or("").trim().to_owned();
                self.installers
                    .insert(paths::split(path).0.to_owned(), installer);
            }
            Interest::NpmPackage => {
                if let Some(p) = npm::parse_package_json(data) {
                    self.found(path, vec![p]);
                }
            }
            Interest::NpmLock => {
                if let Some(packages) = npm::parse_lock(data) {
                    self.found(path, packages);
                }
            }
            Interest::CargoLock => self.found(path, cargo::parse_lock(&text())),
            Interest::Gemspec => {
                if let Some(p) = gem::parse(paths::split(path).1, &text()) {
                    self.found(path, vec![p]);
                }
            }
            Interest::Jar => {
                let found = java::scan(path, data, self.limits);
                self.out.found.extend(found);
            }
            Interest::RpmSqlite | Interest::RpmSqliteWal => {}
        }
    }

    fn found(&mut self, path: &str, packages: Vec<super::Package>) {
        self.out.found.push(Found {
            path: path.to_owned(),
            packages,
        });
    }

    /// A hard link shares its target's content: what was read from the target (an earlier
    /// entry, as tar requires) is recorded again under the link's path.
    fn hard_link(&mut self, path: &str, target: &str) {
        if paths::classify(path) == Some(Interest::OsRelease)
            && let Some((_, os)) = self.out.os_release.iter().find(|(p, _)| p == target)
        {
            let os = os.clone();
            self.out.os_release.push((path.to_owned(), os));
        }
        let copies: Vec<Found> = self
            .out
            .found
            .iter()
            .filter_map(|f| {
                let rest = f.path.strip_prefix(target)?;
                (rest.is_empty() || rest.starts_with("!/")).then(|| Found {
                    path: format!("{path}{rest}"),
                    packages: f.packages.clone(),
                })
            })
            .collect();
        self.out.found.extend(copies);
    }

    fn spool_sqlite(
        &mut self,
        path: &str,
        kind: Interest,
        entry: &mut impl Read,
        fail: &Fail<'_>,
    ) -> Result<(), IndexError> {
        let (dir, name) = paths::split(path);
        if self.temp.is_none() {
            self.temp = Some(tempfile::Builder::new().prefix("berth-scan-").tempdir()?);
        }
        let n = self.sqlite.len();
        let slot = self.sqlite.entry(dir.to_owned()).or_default();
        let sub = match (&slot.db, &slot.wal) {
            (Some(p), _) | (None, Some(p)) => p.parent().map(PathBuf::from),
            (None, None) => self.temp.as_ref().map(|t| t.path().join(n.to_string())),
        };
        let Some(sub) = sub else {
            return Ok(());
        };
        std::fs::create_dir_all(&sub)?;
        let file = sub.join(name);
        let mut out = File::create(&file)?;
        let max = self.limits.max_file_bytes;
        let mut buf = vec![0u8; 64 << 10];
        let mut written = 0u64;
        loop {
            let n = entry.read(&mut buf).map_err(fail)?;
            if n == 0 {
                break;
            }
            written += n as u64;
            if written > max {
                drop(out);
                std::fs::remove_file(&file)?;
                return Ok(());
            }
            out.write_all(&buf[..n])?;
        }
        out.flush()?;
        if kind == Interest::RpmSqlite {
            slot.db = Some(file);
        } else {
            slot.wal = Some(file);
        }
        Ok(())
    }

    fn finish(mut self, bytes: u64) -> Result<LayerIndex, IndexError> {
        for (dir, files) in std::mem::take(&mut self.sqlite) {
            if let Some(db) = files.db
                && let Some(packages) = rpm::sqlite::packages(&db, self.limits)
            {
                self.found(&join(&dir, "rpmdb.sqlite"), packages);
            }
        }
        // A distribution's own Python packages are reported by its package manager already.
        let installers = &self.installers;
        self.out.found.retain(|f| {
            let (dir, name) = paths::split(&f.path);
            name != "METADATA"
                || !installers
                    .get(dir)
                    .is_some_and(|i| matches!(i.as_str(), "rpm" | "dpkg" | "apk"))
        });
        self.out.bytes = bytes;
        Ok(self.out)
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

/// An up-front allocation for a file of `size` bytes: its size, but not more than 64 MiB (a
/// header may lie; reading past that grows the buffer as data really arrives).
fn capacity(size: u64) -> usize {
    usize::try_from(size.min(64 << 20)).unwrap_or(0)
}

/// The whole entry, or `None` when it is longer than `max` after all.
fn read_bounded(
    entry: &mut impl Read,
    size: u64,
    max: u64,
    fail: &Fail<'_>,
) -> Result<Option<Vec<u8>>, IndexError> {
    let mut data = Vec::with_capacity(capacity(size));
    entry
        .take(max.saturating_add(1))
        .read_to_end(&mut data)
        .map_err(fail)?;
    Ok((data.len() as u64 <= max).then_some(data))
}
