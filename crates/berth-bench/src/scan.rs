//! The scanner section: how fast the layer indexer reads a real rootfs layer (a Debian
//! bookworm made by `mmdebstrap`, cached under `--bench-data`), against plain gzip
//! decompression of the same bytes (the bound it cannot beat), and how long one image of
//! 10,000 packages takes to match against every OSV dump in `--vulndb-dir`, through
//! berth-core's public API on a temporary SQLite database. In-process, Berth only.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use berth_core::{CoreConfig, Db, Locations, Registry};
use berth_scan::index::{self, Compression, Image, Installed, Kind, Limits, OsRelease, Package};
use berth_scan::{Scheme, osv::Event};

/// Packages in the matched image.
const IMAGE_PACKAGES: usize = 10_000;

#[derive(Default)]
pub struct ScanFigures {
    pub index: Option<IndexFigures>,
    pub matching: Option<MatchFigures>,
    /// Why a part was skipped.
    pub skipped: Vec<String>,
}

pub struct IndexFigures {
    pub tar_bytes: u64,
    pub gz_bytes: usize,
    pub index_mb_s: f64,
    pub gunzip_mb_s: f64,
    pub packages: usize,
    pub dpkg_packages: usize,
    pub os: String,
}

pub struct MatchFigures {
    /// (source folder, records read, seconds).
    pub imports: Vec<(String, u64, f64)>,
    pub packages: usize,
    pub match_ms: f64,
    pub vulnerabilities: usize,
    pub vulnerable_packages: usize,
}

pub async fn run(rounds: usize, data_dir: &Path, vulndb: &Path) -> ScanFigures {
    let mut figures = ScanFigures::default();
    eprintln!("scanner (in-process)");
    let dir = data_dir.to_path_buf();
    match tokio::task::spawn_blocking(move || index_throughput(rounds, &dir)).await {
        Ok(Ok(f)) => figures.index = Some(f),
        Ok(Err(e)) => {
            eprintln!("  index throughput SKIPPED: {e:#}");
            figures.skipped.push(format!("index throughput: {e:#}"));
        }
        Err(e) => eprintln!("  index throughput FAILED: {e}"),
    }
    if !vulndb.is_dir() {
        let why = format!("{} is absent", vulndb.display());
        eprintln!("  match time SKIPPED: {why}");
        figures.skipped.push(format!("match time: {why}"));
        return figures;
    }
    match match_time(rounds, vulndb).await {
        Ok(f) => figures.matching = Some(f),
        Err(e) => {
            eprintln!("  match time FAILED: {e:#}");
            figures.skipped.push(format!("match time: {e:#}"));
        }
    }
    figures
}

// ---------------------------------------------------------------------------------------
// Index throughput

/// The bookworm rootfs tarball, made with mmdebstrap when it is not cached yet.
fn bookworm_tar(data_dir: &Path) -> Result<PathBuf> {
    let path = data_dir.join("bookworm.tar");
    if path.exists() {
        return Ok(path);
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    // mmdebstrap picks its output's format by the name's extension.
    let partial = data_dir.join("bookworm.partial.tar");
    eprintln!(
        "  making {} with `mmdebstrap --variant=essential bookworm` (about a minute)",
        path.display()
    );
    let status = Command::new("mmdebstrap")
        .args(["--quiet", "--variant=essential", "bookworm"])
        .arg(&partial)
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => bail!("mmdebstrap failed ({s})"),
        Err(e) => bail!(
            "cannot run mmdebstrap ({e}); install it with \
             `apt-get install -y --no-install-recommends mmdebstrap`"
        ),
    }
    std::fs::rename(&partial, &path)?;
    Ok(path)
}

fn index_throughput(rounds: usize, data_dir: &Path) -> Result<IndexFigures> {
    let tar_path = bookworm_tar(data_dir)?;
    let tar = std::fs::read(&tar_path).with_context(|| tar_path.display().to_string())?;
    let t = Instant::now();
    let mut gz = flate2::write::GzEncoder::new(
        Vec::with_capacity(tar.len() / 2),
        flate2::Compression::default(),
    );
    gz.write_all(&tar)?;
    let gz = gz.finish()?;
    eprintln!(
        "  bookworm layer: {:.1} MB tar, {:.1} MB gzipped (in {:.1} s)",
        tar.len() as f64 / 1e6,
        gz.len() as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );
    let tar_bytes = tar.len() as u64;
    drop(tar);
    let mut best_index = Duration::MAX;
    let mut best_gunzip = Duration::MAX;
    let mut last = None;
    for round in 1..=rounds {
        let t = Instant::now();
        let n = io::copy(
            &mut flate2::read::MultiGzDecoder::new(&gz[..]),
            &mut io::sink(),
        )?;
        let gunzip = t.elapsed();
        if n != tar_bytes {
            bail!("gzip round trip gave {n} bytes, not {tar_bytes}");
        }
        let t = Instant::now();
        let idx = index::index_layer(&gz[..], Compression::Gzip, &Limits::default())
            .context("indexing the bookworm layer")?;
        let indexed = t.elapsed();
        eprintln!(
            "  round {round}/{rounds}: index {:.0} MB/s, gunzip {:.0} MB/s",
            mb_s(tar_bytes, indexed),
            mb_s(tar_bytes, gunzip)
        );
        best_index = best_index.min(indexed);
        best_gunzip = best_gunzip.min(gunzip);
        last = Some(idx);
    }
    let idx = last.context("no round")?;
    let image = index::merge(&[("sha256:bookworm".to_string(), idx)]);
    Ok(IndexFigures {
        tar_bytes,
        gz_bytes: gz.len(),
        index_mb_s: mb_s(tar_bytes, best_index),
        gunzip_mb_s: mb_s(tar_bytes, best_gunzip),
        packages: image.packages.len(),
        dpkg_packages: image
            .packages
            .iter()
            .filter(|p| p.package.kind == Kind::Dpkg)
            .count(),
        os: image
            .os
            .map(|o| format!("{} {}", o.id, o.version_id.unwrap_or_default()))
            .unwrap_or_else(|| "no os-release".to_string()),
    })
}

fn mb_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64().max(1e-9)
}

// ---------------------------------------------------------------------------------------
// Match time

async fn match_time(rounds: usize, vulndb: &Path) -> Result<MatchFigures> {
    let mut zips: Vec<(String, PathBuf)> = std::fs::read_dir(vulndb)?
        .filter_map(|e| e.ok())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .filter(|(_, p)| p.join("all.zip").is_file())
        .map(|(name, p)| (name, p.join("all.zip")))
        .collect();
    zips.sort();
    if zips.is_empty() {
        bail!("no <ECOSYSTEM>/all.zip under {}", vulndb.display());
    }

    let dir = tempfile::Builder::new()
        .prefix("berth-bench-scan-")
        .tempdir()?;
    let db = Db::connect(
        &format!("sqlite://{}", dir.path().join("berth.db").display()),
        4,
    )
    .await
    .context("opening the SQLite database")?;
    db.migrate().await.context("migrating")?;
    let store = berth_storage::FsStore::open(dir.path().join("blobs"), false)?;
    let registry = Registry::new(
        db,
        Locations::single("local", Arc::new(store)),
        CoreConfig::default(),
    );

    let mut imports = Vec::new();
    for (name, zip) in &zips {
        let t = Instant::now();
        let report = registry
            .import_vuln_source(&zip.display().to_string())
            .await
            .with_context(|| format!("importing {}", zip.display()))?;
        let secs = t.elapsed().as_secs_f64();
        eprintln!(
            "  import {name:<10} {:>6} records in {secs:.2} s ({:.0} records/s; {} unreadable)",
            report.read,
            report.read as f64 / secs.max(1e-9),
            report.unreadable
        );
        imports.push((name.clone(), report.read, secs));
    }

    let zip_paths: Vec<PathBuf> = zips.into_iter().map(|(_, p)| p).collect();
    let image = tokio::task::spawn_blocking(move || image_from(&zip_paths)).await??;
    let mut best = Duration::MAX;
    let mut found = (0, 0);
    for round in 1..=rounds {
        let t = Instant::now();
        let features = registry
            .match_image(&image)
            .await
            .context("matching the image")?;
        let took = t.elapsed();
        let vulns: usize = features.iter().map(|f| f.vulnerabilities.len()).sum();
        let vulnerable = features
            .iter()
            .filter(|f| !f.vulnerabilities.is_empty())
            .count();
        eprintln!(
            "  round {round}/{rounds}: match {:.1} ms, {vulns} vulnerabilities in {vulnerable} \
             packages",
            took.as_secs_f64() * 1000.0
        );
        best = best.min(took);
        found = (vulns, vulnerable);
    }
    Ok(MatchFigures {
        imports,
        packages: image.packages.len(),
        match_ms: best.as_secs_f64() * 1000.0,
        vulnerabilities: found.0,
        vulnerable_packages: found.1,
    })
}

/// Where an OSV ecosystem's packages come from in an AlmaLinux 9.4 image.
fn kind_of(ecosystem: &str, name: &str) -> Option<(Kind, Scheme)> {
    Some(match ecosystem {
        "PyPI" => (Kind::Python, Scheme::Pep440),
        "npm" => (Kind::Npm, Scheme::Semver),
        "crates.io" => (Kind::Cargo, Scheme::Semver),
        "Go" if name == "stdlib" => (Kind::GoStdlib, Scheme::Go),
        "Go" if name == "toolchain" => return None,
        "Go" => (Kind::Go, Scheme::Go),
        "AlmaLinux:9" => (Kind::Rpm, Scheme::Rpm),
        _ => return None,
    })
}

/// An image of [`IMAGE_PACKAGES`] packages on AlmaLinux 9.4: every package the data names
/// (rpms of AlmaLinux 9, PyPI, npm, crates.io and Go modules), each at versions taken from its
/// own records' events, so that one copy is hit by records fixed after it and missed by
/// those fixed before; then further copies at other versions (other paths: another venv,
/// another binary), one package in five being one the data does not name.
fn image_from(zips: &[PathBuf]) -> Result<Image> {
    let mut versions: BTreeMap<(Kind, String), (Scheme, BTreeSet<String>)> = BTreeMap::new();
    for zip in zips {
        berth_scan::vulndb::read_source(zip, &mut |r| {
            let Ok(advisory) = r else { return };
            for a in advisory.affected {
                let Some((kind, scheme)) = kind_of(&a.ecosystem, &a.name) else {
                    continue;
                };
                let entry = versions
                    .entry((kind, a.name.clone()))
                    .or_insert_with(|| (scheme, BTreeSet::new()));
                let events = a.affected.ranges.iter().flat_map(|r| &r.events);
                for e in events {
                    let v = match e {
                        Event::Introduced(v) | Event::Fixed(v) | Event::LastAffected(v) => v,
                        Event::Limit(_) => continue,
                    };
                    if v != "0" {
                        entry.1.insert(v.clone());
                    }
                }
                entry.1.extend(a.affected.versions.iter().cloned());
            }
        })
        .with_context(|| zip.display().to_string())?;
    }
    let named: Vec<(Kind, String, Vec<String>)> = versions
        .into_iter()
        .map(|((kind, name), (scheme, set))| {
            // Only versions the ecosystem's order can place (a mixed order is no order).
            let mut v: Vec<String> = set
                .into_iter()
                .filter(|v| berth_scan::compare(scheme, v, v).is_some())
                .collect();
            v.sort_by(|a, b| berth_scan::compare(scheme, a, b).unwrap_or(Ordering::Equal));
            (kind, name, v)
        })
        .filter(|(_, _, v)| !v.is_empty())
        .collect();
    if named.is_empty() {
        bail!("the vulnerability data names no package");
    }
    eprintln!(
        "  image: {IMAGE_PACKAGES} packages from {} names in the data",
        named.len()
    );
    let mut packages = Vec::with_capacity(IMAGE_PACKAGES);
    let mut from_data = 0;
    for i in 0..IMAGE_PACKAGES {
        if i % 5 == 4 {
            packages.push(installed(
                Kind::Python,
                format!("not-in-data-{i}"),
                "1.0".into(),
                i,
            ));
            continue;
        }
        let copy = from_data / named.len();
        let (kind, name, v) = &named[from_data % named.len()];
        from_data += 1;
        // The middle version first, then the lowest, then the highest, then the rest.
        let pick = match copy {
            0 => v.len() / 2,
            1 => 0,
            2 => v.len() - 1,
            n => n % v.len(),
        };
        let mut version = v[pick].clone();
        if matches!(kind, Kind::Go | Kind::GoStdlib) && !version.starts_with('v') {
            version.insert(0, 'v');
        }
        packages.push(installed(*kind, name.clone(), version, i));
    }
    Ok(Image {
        os: Some(OsRelease {
            id: "almalinux".into(),
            version_id: Some("9.4".into()),
            version_codename: None,
            pretty_name: Some("AlmaLinux 9.4 (Seafoam Ocelot)".into()),
            id_like: vec!["rhel".into(), "centos".into(), "fedora".into()],
        }),
        packages,
    })
}

fn installed(kind: Kind, name: String, version: String, i: usize) -> Installed {
    let path = match kind {
        Kind::Rpm => "var/lib/rpm/rpmdb.sqlite".to_string(),
        Kind::Python => {
            format!("opt/venv{i}/lib/python3.9/site-packages/{name}.dist-info/METADATA")
        }
        Kind::Npm => format!("srv/app{i}/node_modules/{name}/package.json"),
        Kind::Cargo => format!("srv/crate{i}/Cargo.lock"),
        _ => format!("usr/local/bin/tool{i}"),
    };
    Installed {
        package: Package {
            kind,
            name,
            version,
            source_name: None,
            source_version: None,
            arch: (kind == Kind::Rpm).then(|| "x86_64".to_string()),
        },
        path,
        added_by: "sha256:bench".to_string(),
    }
}

// ---------------------------------------------------------------------------------------
// The table

pub fn print(f: &ScanFigures, rounds: usize) {
    let mut rows: Vec<[String; 4]> = vec![[
        "figure".into(),
        "berth".into(),
        "bound".into(),
        "ratio".into(),
    ]];
    if let Some(i) = &f.index {
        rows.push([
            format!(
                "index bookworm layer, {:.0} MB tar / {:.0} MB gz (MB/s)",
                i.tar_bytes as f64 / 1e6,
                i.gz_bytes as f64 / 1e6
            ),
            format!("{:.0}", i.index_mb_s),
            format!("{:.0}", i.gunzip_mb_s),
            format!("{:.2}x (index/gunzip)", i.index_mb_s / i.gunzip_mb_s),
        ]);
        rows.push([
            format!("  packages found ({})", i.os),
            format!("{} ({} dpkg)", i.packages, i.dpkg_packages),
            "-".into(),
            "-".into(),
        ]);
    }
    if let Some(m) = &f.matching {
        for (name, records, secs) in &m.imports {
            rows.push([
                format!("import {name} all.zip, {records} records (records/s)"),
                format!("{:.0}", *records as f64 / secs.max(1e-9)),
                "-".into(),
                "-".into(),
            ]);
        }
        let (records, secs) = m
            .imports
            .iter()
            .fold((0, 0.0), |(r, s), (_, r1, s1)| (r + r1, s + s1));
        rows.push([
            format!("import all, {records} records (s)"),
            format!("{secs:.1}"),
            "-".into(),
            "-".into(),
        ]);
        rows.push([
            format!("match {} packages against all (ms)", m.packages),
            format!("{:.1}", m.match_ms),
            "-".into(),
            "-".into(),
        ]);
        rows.push([
            "  vulnerabilities found (in packages)".into(),
            format!("{} ({})", m.vulnerabilities, m.vulnerable_packages),
            "-".into(),
            "-".into(),
        ]);
    }
    println!();
    println!(
        "Scanner (in-process, best of {rounds} round(s)); the bound is plain gzip \
         decompression of the same layer to io::sink, so a ratio near 1 means indexing costs \
         little beyond reading the layer"
    );
    if rows.len() == 1 {
        println!("(nothing measured)");
    } else {
        let widths: Vec<usize> = (0..4)
            .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
            .collect();
        for (n, row) in rows.iter().enumerate() {
            let cells: Vec<String> = row
                .iter()
                .enumerate()
                .map(|(c, cell)| match c {
                    0 => format!("{cell:<w$}", w = widths[c]),
                    _ => format!("{cell:>w$}", w = widths[c]),
                })
                .collect();
            println!("| {} |", cells.join(" | "));
            if n == 0 {
                let sep: Vec<String> = widths
                    .iter()
                    .enumerate()
                    .map(|(c, w)| match c {
                        0 => "-".repeat(*w),
                        _ => format!("{}:", "-".repeat(w.saturating_sub(1))),
                    })
                    .collect();
                println!("| {} |", sep.join(" | "));
            }
        }
    }
    for s in &f.skipped {
        println!("skipped: {s}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_versions_get_their_v_and_fillers_are_unknown() {
        let dir = tempfile::tempdir().expect("tempdir");
        let record = r#"{"id":"GO-1","modified":"2024-01-01T00:00:00Z","affected":[
            {"package":{"ecosystem":"Go","name":"example.com/m"},
             "ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.2.0"},
                       {"introduced":"1.3.0"},{"fixed":"1.3.4"}]}]}]}"#;
        let path = dir.path().join("GO-1.json");
        std::fs::write(&path, record).expect("write");
        let image = image_from(&[path]).expect("image");
        assert_eq!(image.packages.len(), IMAGE_PACKAGES);
        let go: Vec<&str> = image
            .packages
            .iter()
            .filter(|p| p.package.kind == Kind::Go)
            .map(|p| p.package.version.as_str())
            .take(4)
            .collect();
        assert_eq!(go, ["v1.3.0", "v1.2.0", "v1.3.4", "v1.2.0"]);
        let unknown = image
            .packages
            .iter()
            .filter(|p| p.package.name.starts_with("not-in-data-"))
            .count();
        assert_eq!(unknown, IMAGE_PACKAGES / 5);
    }
}
