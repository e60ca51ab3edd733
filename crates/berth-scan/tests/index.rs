//! The layer indexer on real data: Alpine images from docker save, real rpm databases of all
//! three backends (checked against rpm 4.18's own `rpm -qa`), this machine's dpkg status
//! (checked against `dpkg-query`), its Go binaries and Debian jars (checked against `unzip`),
//! plus synthetic layers for whiteouts, merging and hostile input.

use std::collections::BTreeSet;
use std::io::{Cursor, Read, Write};
use std::path::Path;
use std::process::Command;

use berth_scan::index::{
    Compression, Found, Image, IndexError, Kind, LayerIndex, Limits, Package, compression_of,
    index_layer, merge,
};

fn data(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/index")
        .join(name)
}

/// One entry of a synthetic layer.
enum E<'a> {
    File(&'a str, Vec<u8>),
    Exec(&'a str, Vec<u8>),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
    Dir(&'a str),
}

fn file(path: &str, content: impl AsRef<[u8]>) -> E<'_> {
    E::File(path, content.as_ref().to_vec())
}

/// A tar with these entries. Names are written into the header as given (`..` included),
/// long ones through GNU long-name entries.
fn tar(entries: Vec<E<'_>>) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        let (path, body, ty, mode, link): (&str, Vec<u8>, _, _, Option<&str>) = match e {
            E::File(p, d) => (p, d, tar::EntryType::Regular, 0o644, None),
            E::Exec(p, d) => (p, d, tar::EntryType::Regular, 0o755, None),
            E::Symlink(p, t) => (p, vec![], tar::EntryType::Symlink, 0o777, Some(t)),
            E::Hardlink(p, t) => (p, vec![], tar::EntryType::Link, 0o644, Some(t)),
            E::Dir(p) => (p, vec![], tar::EntryType::Directory, 0o755, None),
        };
        h.set_entry_type(ty);
        h.set_mode(mode);
        h.set_size(body.len() as u64);
        if let Some(l) = link {
            h.set_link_name(l).expect("link name");
        }
        if path.len() < 100 {
            h.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
            h.set_cksum();
            b.append(&h, &body[..]).expect("append");
        } else {
            b.append_data(&mut h, path, &body[..]).expect("append");
        }
    }
    b.into_inner().expect("tar")
}

fn index(layer: &[u8]) -> LayerIndex {
    index_layer(layer, Compression::None, &Limits::default()).expect("index")
}

fn one(layer: LayerIndex) -> Image {
    merge(&[("sha256:l1".to_owned(), layer)])
}

fn nv(p: &Package) -> String {
    format!("{} {}", p.name, p.version)
}

fn packages_at<'a>(layer: &'a LayerIndex, path: &str) -> &'a [Package] {
    &layer
        .found
        .iter()
        .find(|f| f.path == path)
        .unwrap_or_else(|| panic!("no Found at {path}: {:?}", layer.found))
        .packages
}

// ---------------------------------------------------------------------------------------
// Alpine (docker save archives from Trivy's test data)

/// The single layer of a docker-save archive.
fn docker_save_layer(name: &str) -> Vec<u8> {
    let f = std::fs::File::open(data(name)).expect("fixture");
    let mut outer = tar::Archive::new(flate2::read::GzDecoder::new(f));
    for entry in outer.entries().expect("entries") {
        let mut entry = entry.expect("entry");
        if entry.path().expect("path").ends_with("layer.tar") {
            let mut layer = Vec::new();
            entry.read_to_end(&mut layer).expect("read");
            return layer;
        }
    }
    panic!("no layer.tar in {name}");
}

fn alpine(name: &str, version_id: &str, want: &[(&str, &str, &str)]) {
    let layer = docker_save_layer(name);
    let idx = index(&layer);
    let img = one(idx.clone());
    let os = img.os.expect("os");
    assert_eq!(os.id, "alpine");
    assert_eq!(os.version_id.as_deref(), Some(version_id));
    let got: BTreeSet<(String, String, String)> = img
        .packages
        .iter()
        .map(|i| {
            assert_eq!(i.path, "lib/apk/db/installed");
            assert_eq!(i.added_by, "sha256:l1");
            assert_eq!(i.package.kind, Kind::Apk);
            let p = &i.package;
            (
                p.name.clone(),
                p.version.clone(),
                p.source_name.clone().expect("origin"),
            )
        })
        .collect();
    let want: BTreeSet<(String, String, String)> = want
        .iter()
        .map(|(n, v, o)| ((*n).into(), (*v).into(), (*o).into()))
        .collect();
    assert_eq!(got, want);
    assert_eq!(img.packages.len(), 14);
    assert_eq!(idx.bytes, layer.len() as u64);
    assert!(idx.entries > 400, "{} entries", idx.entries);
    // The index is what the database stores: it must survive JSON.
    let json = serde_json::to_string(&idx).expect("json");
    assert!(!json.contains("\"removed\""), "empty fields are skipped");
    let back: LayerIndex = serde_json::from_str(&json).expect("back");
    assert_eq!(back, idx);
}

#[test]
fn alpine_310() {
    alpine(
        "alpine-310.tar.gz",
        "3.10.4",
        &[
            ("musl", "1.1.22-r3", "musl"),
            ("busybox", "1.30.1-r3", "busybox"),
            ("alpine-baselayout", "3.1.2-r0", "alpine-baselayout"),
            ("alpine-keys", "2.1-r2", "alpine-keys"),
            ("libcrypto1.1", "1.1.1d-r2", "openssl"),
            ("libssl1.1", "1.1.1d-r2", "openssl"),
            ("ca-certificates-cacert", "20190108-r0", "ca-certificates"),
            ("libtls-standalone", "2.9.1-r0", "libtls-standalone"),
            ("ssl_client", "1.30.1-r3", "busybox"),
            ("zlib", "1.2.11-r1", "zlib"),
            ("apk-tools", "2.10.4-r2", "apk-tools"),
            ("scanelf", "1.2.3-r0", "pax-utils"),
            ("musl-utils", "1.1.22-r3", "musl"),
            ("libc-utils", "0.7.1-r0", "libc-dev"),
        ],
    );
}

#[test]
fn alpine_311() {
    alpine(
        "alpine-311.tar.gz",
        "3.11.5",
        &[
            ("musl", "1.1.24-r2", "musl"),
            ("busybox", "1.31.1-r9", "busybox"),
            ("alpine-baselayout", "3.2.0-r3", "alpine-baselayout"),
            ("alpine-keys", "2.1-r2", "alpine-keys"),
            ("libcrypto1.1", "1.1.1d-r3", "openssl"),
            ("libssl1.1", "1.1.1d-r3", "openssl"),
            ("ca-certificates-cacert", "20191127-r1", "ca-certificates"),
            ("libtls-standalone", "2.9.1-r0", "libtls-standalone"),
            ("ssl_client", "1.31.1-r9", "busybox"),
            ("zlib", "1.2.11-r3", "zlib"),
            ("apk-tools", "2.10.4-r3", "apk-tools"),
            ("scanelf", "1.2.4-r0", "pax-utils"),
            ("musl-utils", "1.1.24-r2", "musl"),
            ("libc-utils", "0.7.2-r0", "libc-dev"),
        ],
    );
}

#[test]
fn alpine_layer_gzip_and_zstd() {
    let layer = docker_save_layer("alpine-311.tar.gz");
    let plain = index(&layer);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&layer).expect("gzip");
    let gz = gz.finish().expect("gzip");
    let zst = zstd::stream::encode_all(&layer[..], 3).expect("zstd");
    for (bytes, c) in [(gz, Compression::Gzip), (zst, Compression::Zstd)] {
        let got = index_layer(&bytes[..], c, &Limits::default()).expect("index");
        assert_eq!(got, plain, "{c:?}");
    }
}

// ---------------------------------------------------------------------------------------
// rpm

/// `name\tevr\tarch\tsourcerpm` lines, as the rpm -qa truth files have them.
fn rpm_lines(packages: &[Package]) -> Vec<String> {
    let mut lines: Vec<String> = packages
        .iter()
        .map(|p| {
            assert_eq!(p.kind, Kind::Rpm);
            format!(
                "{}\t{}\t{}",
                p.name,
                p.version,
                p.arch.as_deref().unwrap_or("")
            )
        })
        .collect();
    lines.sort();
    lines
}

fn rpm_truth(name: &str) -> Vec<String> {
    let text = std::fs::read_to_string(data(name)).expect("truth");
    let mut lines: Vec<String> = text
        .lines()
        .map(|l| l.split('\t').take(3).collect::<Vec<_>>().join("\t"))
        .collect();
    lines.sort();
    lines
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(data(name)).expect("fixture")
}

#[test]
fn rpm_sqlite_mariner() {
    let idx = index(&tar(vec![
        E::Dir("var/lib/rpm/"),
        file("var/lib/rpm/rpmdb.sqlite", read("mariner-rpmdb.sqlite")),
    ]));
    let packages = packages_at(&idx, "var/lib/rpm/rpmdb.sqlite");
    assert_eq!(packages.len(), 129);
    assert_eq!(rpm_lines(packages), rpm_truth("mariner-rpm-qa.txt"));
    let ca = packages
        .iter()
        .find(|p| p.name == "ca-certificates-base")
        .expect("ca-certificates-base");
    assert_eq!(ca.version, "1:2.0.0-1.cm2");
    assert_eq!(ca.source_name.as_deref(), Some("ca-certificates"));
    assert_eq!(ca.source_version.as_deref(), Some("1:2.0.0-1.cm2"));
    // Source names against SOURCERPM, for all of them.
    let truth = std::fs::read_to_string(data("mariner-rpm-qa.txt")).expect("truth");
    for line in truth.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let p = packages.iter().find(|p| p.name == f[0]).expect("package");
        let srpm = f[3];
        let source = p.source_name.as_deref().expect("source");
        assert!(
            srpm.starts_with(&format!("{source}-")) && srpm.ends_with(".src.rpm"),
            "{source} vs {srpm}"
        );
    }
}

/// The WAL matters: rpm leaves committed transactions there. A copy of the mariner db with
/// one package deleted in an uncheckpointed WAL must read as 128 packages.
#[test]
fn rpm_sqlite_wal_is_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("rpmdb.sqlite");
    std::fs::write(&db, read("mariner-rpmdb.sqlite")).expect("copy");
    let conn = rusqlite::Connection::open(&db).expect("open");
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .expect("wal");
    assert_eq!(mode, "wal");
    conn.execute_batch("PRAGMA wal_autocheckpoint=0; PRAGMA foreign_keys=OFF;")
        .expect("pragma");
    // hnum of zlib's header; deleting by a blob property would need a header parser here.
    let victim: i64 = conn
        .query_row("SELECT MAX(hnum) FROM Packages", [], |r| r.get(0))
        .expect("max");
    conn.execute("DELETE FROM Packages WHERE hnum = ?1", [victim])
        .expect("delete");
    let main = std::fs::read(&db).expect("db");
    let wal = std::fs::read(dir.path().join("rpmdb.sqlite-wal")).expect("wal");
    assert!(!wal.is_empty(), "the delete sits in the WAL");
    // The WAL first: a tar may hold them in either order.
    let idx = index(&tar(vec![
        file("usr/lib/sysimage/rpm/rpmdb.sqlite-wal", &wal),
        file("usr/lib/sysimage/rpm/rpmdb.sqlite-shm", vec![0u8; 32768]),
        file("usr/lib/sysimage/rpm/rpmdb.sqlite", &main),
    ]));
    drop(conn);
    assert_eq!(
        packages_at(&idx, "usr/lib/sysimage/rpm/rpmdb.sqlite").len(),
        128
    );
    // Without the WAL, the main file alone still has all 129.
    let idx = index(&tar(vec![file("usr/share/rpm/rpmdb.sqlite", &main)]));
    assert_eq!(packages_at(&idx, "usr/share/rpm/rpmdb.sqlite").len(), 129);
}

#[test]
fn rpm_ndb_sle15() {
    let idx = index(&tar(vec![file(
        "usr/lib/sysimage/rpm/Packages.db",
        read("sle15-Packages.db"),
    )]));
    let packages = packages_at(&idx, "usr/lib/sysimage/rpm/Packages.db");
    assert_eq!(packages.len(), 35);
    let get = |n: &str| {
        packages
            .iter()
            .find(|p| p.name == n)
            .unwrap_or_else(|| panic!("{n}"))
    };
    assert_eq!(get("glibc").version, "2.31-9.3.2");
    assert_eq!(get("system-user-root").version, "20190513-3.3.1");
    assert_eq!(get("system-user-root").arch.as_deref(), Some("noarch"));
    let readline = get("libreadline7");
    assert_eq!(readline.version, "7.0-19.6.1");
    assert_eq!(readline.source_name.as_deref(), Some("bash"));
    assert_eq!(readline.source_version.as_deref(), Some("4.4-19.6.1"));
    assert_eq!(get("libgcc_s1").source_name.as_deref(), Some("gcc11"));
    assert_eq!(get("libgcc_s1").version, "11.2.1+git610-1.3.9");
}

#[test]
fn rpm_bdb_el8_libuuid() {
    let idx = index(&tar(vec![file(
        "var/lib/rpm/Packages",
        read("el8-libuuid-Packages"),
    )]));
    let packages = packages_at(&idx, "var/lib/rpm/Packages");
    assert_eq!(rpm_lines(packages), rpm_truth("el8-libuuid-rpm-qa.txt"));
    assert_eq!(packages[0].source_name.as_deref(), Some("util-linux"));
}

/// Truncated and scribbled-on databases: no panic, whatever they yield.
#[test]
fn corrupt_rpm_databases_do_not_panic() {
    let fixtures = [
        ("var/lib/rpm/Packages", read("el8-libuuid-Packages")),
        ("var/lib/rpm/Packages.db", read("sle15-Packages.db")),
        ("var/lib/rpm/rpmdb.sqlite", read("mariner-rpmdb.sqlite")),
    ];
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for (path, good) in &fixtures {
        for round in 0..12 {
            let mut bad = good.clone();
            if round % 3 == 0 {
                bad.truncate((next() as usize) % good.len());
            } else {
                for _ in 0..(1 + round * 40) {
                    let at = (next() as usize) % bad.len();
                    bad[at] = next() as u8;
                }
            }
            let idx = index(&tar(vec![file(path, &bad)]));
            assert!(idx.found.len() <= 1);
        }
    }
}

// ---------------------------------------------------------------------------------------
// dpkg: this machine's own status, against dpkg-query

/// (package, version, source name, source version) of every installed package, by dpkg.
fn dpkg_query() -> Option<BTreeSet<(String, String, String, String)>> {
    let out = Command::new("dpkg-query")
        .args([
            "-W",
            "-f",
            "${db:Status-Status}\t${Package}\t${Version}\t${source:Package}\t${source:Version}\n",
        ])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                (f.len() == 5 && f[0] == "installed")
                    .then(|| (f[1].into(), f[2].into(), f[3].into(), f[4].into()))
            })
            .collect(),
    )
}

fn dpkg_set(packages: &[Package]) -> BTreeSet<(String, String, String, String)> {
    packages
        .iter()
        .map(|p| {
            (
                p.name.clone(),
                p.version.clone(),
                p.source_name.clone().unwrap_or_default(),
                p.source_version.clone().unwrap_or_default(),
            )
        })
        .collect()
}

#[test]
fn dpkg_status_of_this_machine() {
    let (Ok(status), Some(truth)) = (std::fs::read("/var/lib/dpkg/status"), dpkg_query()) else {
        println!("skipped: no /var/lib/dpkg/status or dpkg-query on this machine");
        return;
    };
    let idx = index(&tar(vec![
        E::Dir("./var/lib/dpkg/"),
        file("./var/lib/dpkg/status", &status),
    ]));
    let packages = packages_at(&idx, "var/lib/dpkg/status");
    assert!(packages.len() > 50, "{} packages", packages.len());
    assert_eq!(dpkg_set(packages), truth);
    // `Source: name (version)`: bash is a binNMU (5.2.15-2+b2 and the like) of 5.2.15-2.
    let text = String::from_utf8_lossy(&status);
    let with_version = text
        .split("\n\n")
        .filter(|s| s.contains("Status: install ok installed"))
        .filter_map(|s| {
            let name = s.lines().find_map(|l| l.strip_prefix("Package: "))?;
            let (src, ver) = s
                .lines()
                .find_map(|l| l.strip_prefix("Source: "))?
                .split_once(" (")?;
            Some((name, src, ver.trim_end_matches(')')))
        })
        .collect::<Vec<_>>();
    assert!(!with_version.is_empty(), "a real status has binNMUs");
    for (name, src, ver) in with_version {
        let p = packages.iter().find(|p| p.name == name).expect(name);
        assert_eq!(p.source_name.as_deref(), Some(src));
        assert_eq!(p.source_version.as_deref(), Some(ver));
    }

    // The same database the distroless way: one stanza per file in status.d/, with md5sums.
    let text = String::from_utf8_lossy(&status).into_owned();
    let mut entries = vec![];
    let mut names = vec![];
    for stanza in text.split("\n\n").filter(|s| !s.trim().is_empty()) {
        let name = stanza
            .lines()
            .find_map(|l| l.strip_prefix("Package: "))
            .expect("Package")
            .to_owned();
        names.push((name, stanza.to_owned()));
    }
    for (name, stanza) in &names {
        entries.push((format!("var/lib/dpkg/status.d/{name}"), stanza.clone()));
        entries.push((
            format!("var/lib/dpkg/status.d/{name}.md5sums"),
            "d41d8cd98f00b204e9800998ecf8427e  usr/x\n".to_owned(),
        ));
    }
    let idx = index(&tar(entries.iter().map(|(p, s)| file(p, s)).collect()));
    let all: Vec<Package> = idx
        .found
        .iter()
        .flat_map(|f| {
            assert!(!f.path.ends_with(".md5sums"));
            f.packages.clone()
        })
        .collect();
    assert_eq!(dpkg_set(&all), truth);
}

// ---------------------------------------------------------------------------------------
// Whiteouts and merging

const STATUS_V1: &str = "Package: libssl3\nStatus: install ok installed\nArchitecture: amd64\n\
Source: openssl\nVersion: 3.0.11-1~deb12u1\n\nPackage: bash\nStatus: install ok installed\n\
Architecture: amd64\nSource: bash (5.2.15-2)\nVersion: 5.2.15-2+b2\n";
const STATUS_V2: &str = "Package: libssl3\nStatus: install ok installed\nArchitecture: amd64\n\
Source: openssl\nVersion: 3.0.17-1~deb12u2\n\nPackage: bash\nStatus: install ok installed\n\
Architecture: amd64\nSource: bash (5.2.15-2)\nVersion: 5.2.15-2+b2\n";

fn layers(ls: Vec<Vec<u8>>) -> Vec<(String, LayerIndex)> {
    ls.iter()
        .enumerate()
        .map(|(i, l)| (format!("sha256:l{}", i + 1), index(l)))
        .collect()
}

fn summary(img: &Image) -> Vec<String> {
    img.packages
        .iter()
        .map(|i| format!("{} {} {}", i.path, nv(&i.package), i.added_by))
        .collect()
}

#[test]
fn later_layer_upgrades_dpkg_status() {
    let ls = layers(vec![
        tar(vec![file("var/lib/dpkg/status", STATUS_V1)]),
        tar(vec![file("etc/hostname", "x")]),
        tar(vec![file("var/lib/dpkg/status", STATUS_V2)]),
    ]);
    let img = merge(&ls);
    assert_eq!(
        summary(&img),
        [
            "var/lib/dpkg/status libssl3 3.0.17-1~deb12u2 sha256:l3",
            "var/lib/dpkg/status bash 5.2.15-2+b2 sha256:l1",
        ]
    );
    let bash = &img.packages[1].package;
    assert_eq!(bash.source_version.as_deref(), Some("5.2.15-2"));
}

#[test]
fn whiteouts_remove_packages() {
    let metadata = "Metadata-Version: 2.1\nName: Requests\nVersion: 2.30.0\n\nbody\n";
    let site = "usr/local/lib/python3.11/site-packages";
    let base = tar(vec![
        file("var/lib/dpkg/status", STATUS_V1),
        file(
            &format!("{site}/requests-2.30.0.dist-info/METADATA"),
            metadata,
        ),
        file(
            &format!("{site}/requests-2.30.0.dist-info/INSTALLER"),
            "pip\n",
        ),
        file(
            "opt/app/node_modules/lodash/package.json",
            r#"{"name":"lodash","version":"4.17.20"}"#,
        ),
        file(
            "srv/Cargo.lock",
            "[[package]]\nname = \"time\"\nversion = \"0.1.43\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\n",
        ),
    ]);
    let img = merge(&layers(vec![base.clone()]));
    assert_eq!(img.packages.len(), 5);
    let py = img
        .packages
        .iter()
        .find(|i| i.package.kind == Kind::Python)
        .expect("python");
    assert_eq!(nv(&py.package), "requests 2.30.0");

    let wh = tar(vec![
        file("var/lib/dpkg/.wh.status", ""),
        file(&format!("{site}/.wh.requests-2.30.0.dist-info"), ""),
        file("opt/app/.wh..wh..opq", ""),
        file(
            "opt/app/node_modules/minimist/package.json",
            r#"{"name":"minimist","version":"1.2.5"}"#,
        ),
    ]);
    let ls = layers(vec![base, wh]);
    assert_eq!(ls[1].1.removed.len(), 2);
    assert_eq!(ls[1].1.opaque, ["opt/app"]);
    let img = merge(&ls);
    assert_eq!(
        summary(&img),
        [
            "opt/app/node_modules/minimist/package.json minimist 1.2.5 sha256:l2",
            "srv/Cargo.lock time 0.1.43 sha256:l1",
        ]
    );
    // Removing a directory above: everything under it goes.
    let ls = layers(vec![
        tar(vec![file("var/lib/dpkg/status", STATUS_V1)]),
        tar(vec![file("var/.wh.lib", "")]),
    ]);
    assert!(merge(&ls).packages.is_empty());
}

#[test]
fn python_of_the_distribution_is_not_reported_twice() {
    let d = "usr/lib/python3/dist-packages";
    let idx = index(&tar(vec![
        file(&format!("{d}/six-1.16.0.dist-info/INSTALLER"), "dpkg\n"),
        file(
            &format!("{d}/six-1.16.0.dist-info/METADATA"),
            "Name: six\nVersion: 1.16.0\n",
        ),
        file(
            &format!("{d}/idna-3.3.dist-info/METADATA"),
            "Name: idna\nVersion: 3.3\n",
        ),
        file(&format!("{d}/idna-3.3.dist-info/INSTALLER"), "rpm\n"),
        file(
            &format!("{d}/attrs-22.egg-info/PKG-INFO"),
            "Name: attrs\nVersion: 22.2.0\n",
        ),
        file(
            &format!("{d}/Old_Thing-1.0.egg-info"),
            "Name: Old_Thing\nVersion: 1.0\n",
        ),
    ]));
    let names: Vec<String> = idx
        .found
        .iter()
        .flat_map(|f| f.packages.iter().map(nv))
        .collect();
    assert_eq!(names, ["attrs 22.2.0", "old-thing 1.0"]);
}

#[test]
fn os_release_symlink_and_fallback() {
    let deb = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n\
               VERSION_CODENAME=bookworm\n";
    let idx = index(&tar(vec![
        E::Symlink("./etc/os-release", "../usr/lib/os-release"),
        file("./usr/lib/os-release", deb),
    ]));
    assert_eq!(
        idx.symlinks,
        [(
            "etc/os-release".to_owned(),
            "../usr/lib/os-release".to_owned()
        )]
    );
    let os = one(idx.clone()).os.expect("os");
    assert_eq!(
        (
            os.id.as_str(),
            os.version_id.as_deref(),
            os.version_codename.as_deref()
        ),
        ("debian", Some("12"), Some("bookworm"))
    );
    // A later layer replacing the file the link points to wins.
    let ls = vec![
        ("l1".to_owned(), idx.clone()),
        (
            "l2".to_owned(),
            index(&tar(vec![file(
                "usr/lib/os-release",
                "ID=debian\nVERSION_ID=13\n",
            )])),
        ),
    ];
    assert_eq!(
        merge(&ls).os.and_then(|o| o.version_id).as_deref(),
        Some("13")
    );
    // An absolute link, and a hard link.
    let idx = index(&tar(vec![
        file("usr/lib/os-release", "ID=alpine\nVERSION_ID=3.19.1\n"),
        E::Hardlink("etc/os-release", "usr/lib/os-release"),
    ]));
    assert_eq!(idx.os_release.len(), 2);
    let idx = index(&tar(vec![
        E::Symlink("etc/os-release", "/usr/lib/os-release"),
        file("usr/lib/os-release", "ID=fedora\n"),
    ]));
    assert_eq!(one(idx).os.map(|o| o.id).as_deref(), Some("fedora"));
}

#[test]
fn paths_climbing_out_of_the_root_are_ignored() {
    let idx = index(&tar(vec![
        file("../../etc/os-release", "ID=evil\n"),
        file("../../var/lib/dpkg/status", STATUS_V1),
        file("a/../etc/os-release", "ID=ok\n"),
        E::Symlink("../etc/x", "y"),
    ]));
    assert_eq!(idx.os_release.len(), 1);
    assert_eq!(idx.os_release[0].0, "etc/os-release");
    assert_eq!(idx.os_release[0].1.id, "ok");
    assert!(idx.found.is_empty());
    assert_eq!(idx.entries, 4);
}

#[test]
fn long_names_through_gnu_extension() {
    let dir = "usr/lib/node_modules/".to_owned() + &"deep/node_modules/".repeat(8);
    let path = format!("{dir}left-pad/package.json");
    assert!(path.len() > 100);
    let idx = index(&tar(vec![file(
        &path,
        r#"{"name":"left-pad","version":"1.3.0"}"#,
    )]));
    assert_eq!(nv(&packages_at(&idx, &path)[0]), "left-pad 1.3.0");
}

// ---------------------------------------------------------------------------------------
// Language packages

#[test]
fn npm_package_json_and_lock() {
    let lock = r#"{"name":"app","version":"1.0.0","lockfileVersion":3,"requires":true,
      "packages":{"":{"name":"app","version":"1.0.0","dependencies":{"lodash":"4.17.20"}},
        "node_modules/lodash":{"version":"4.17.20","resolved":"https://registry.npmjs.org/lodash/-/lodash-4.17.20.tgz"},
        "node_modules/minimist":{"version":"1.2.5"},
        "node_modules/app-lib":{"resolved":"lib","link":true}}}"#;
    let idx = index(&tar(vec![
        file("app/package.json", r#"{"name":"app","version":"1.0.0"}"#),
        file("app/package-lock.json", lock),
        file(
            "app/node_modules/lodash/package.json",
            r#"{"name":"lodash","version":"4.17.20"}"#,
        ),
        file(
            "app/node_modules/lodash/fp/package.json",
            r#"{"main":"../fp.js"}"#,
        ),
        file(
            "app/node_modules/@scope/x/package.json",
            r#"{"name":"@scope/x","version":"0.1.0"}"#,
        ),
    ]));
    let found: Vec<(String, Vec<String>)> = idx
        .found
        .iter()
        .map(|f| (f.path.clone(), f.packages.iter().map(nv).collect()))
        .collect();
    assert_eq!(
        found,
        [
            (
                "app/package-lock.json".into(),
                vec!["lodash 4.17.20".into(), "minimist 1.2.5".into()]
            ),
            (
                "app/node_modules/lodash/package.json".into(),
                vec!["lodash 4.17.20".into()]
            ),
            (
                "app/node_modules/@scope/x/package.json".into(),
                vec!["@scope/x 0.1.0".into()]
            ),
        ]
    );
}

#[test]
fn cargo_lock_of_this_workspace() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.lock");
    let Ok(lock) = std::fs::read_to_string(&path) else {
        println!("skipped: no workspace Cargo.lock");
        return;
    };
    let registry = lock.matches("source = \"registry+").count();
    let idx = index(&tar(vec![file("src/berth/Cargo.lock", &lock)]));
    let packages = packages_at(&idx, "src/berth/Cargo.lock");
    assert_eq!(packages.len(), registry);
    assert!(packages.iter().all(|p| p.kind == Kind::Cargo));
    assert!(packages.iter().any(|p| p.name == "tar"));
    assert!(
        !packages.iter().any(|p| p.name == "berth-scan"),
        "path crates are not packages"
    );
}

#[test]
fn gemspec_paths() {
    let spec = "# -*- encoding: utf-8 -*-\nGem::Specification.new do |s|\n  s.name = \"rack\".freeze\n  \
                s.version = \"2.2.22\".freeze\n  s.required_rubygems_version = Gem::Requirement.new(\">= 0\".freeze)\nend\n";
    let idx = index(&tar(vec![
        file(
            "usr/share/rubygems-integration/all/specifications/rack-2.2.22.gemspec",
            spec,
        ),
        file(
            "usr/local/bundle/specifications/net-http-0.4.1.gemspec",
            "garbage",
        ),
        file("app/rack.gemspec", spec),
    ]));
    let got: Vec<String> = idx
        .found
        .iter()
        .flat_map(|f| f.packages.iter().map(nv))
        .collect();
    assert_eq!(got, ["rack 2.2.22", "net-http 0.4.1"]);
    assert!(idx.found.iter().all(|f| f.packages[0].kind == Kind::Gem));
}

/// Go programs of this machine (Debian's skopeo, the Cloud SDK's helpers, terraform), each
/// checked against its own bytes: every module reported is written in its modinfo, every
/// `dep` line there is reported, and the toolchain version is in the binary too.
#[test]
fn go_binary_build_info() {
    let candidates = [
        "/usr/bin/skopeo",
        "/usr/lib/google-cloud-sdk/bin/gcloud-crc32c",
        "/usr/lib/google-cloud-sdk/bin/cbt",
        "/usr/local/bin/terraform",
    ];
    let mut checked = 0;
    let mut deps_seen = 0;
    for path in candidates {
        let Ok(bin) = std::fs::read(path) else {
            continue;
        };
        let contains = |s: &[u8]| bin.windows(s.len()).any(|w| w == s);
        if !contains(b"\xff Go buildinf:") {
            continue;
        }
        checked += 1;
        let idx = index(&tar(vec![E::Exec("usr/local/bin/tool", bin.clone())]));
        let packages = packages_at(&idx, "usr/local/bin/tool");
        let stdlib: Vec<&Package> = packages
            .iter()
            .filter(|p| p.kind == Kind::GoStdlib)
            .collect();
        assert_eq!(stdlib.len(), 1, "{path}");
        assert_eq!(stdlib[0].name, "stdlib");
        assert!(
            contains(format!("go{}", stdlib[0].version).as_bytes()),
            "{path}: {stdlib:?}"
        );
        let go: BTreeSet<(String, String)> = packages
            .iter()
            .filter(|p| p.kind == Kind::Go)
            .map(|p| (p.name.clone(), p.version.clone()))
            .collect();
        // The module lines as the binary holds them (Go stores modinfo twice: a set).
        let mut lines: BTreeSet<(&str, String, String)> = BTreeSet::new();
        for line in bin.split(|&b| b == b'\n') {
            for kind in ["dep", "mod", "=>"] {
                if let Some(rest) = line.strip_prefix(format!("{kind}\t").as_bytes()) {
                    let f: Vec<String> = String::from_utf8_lossy(rest)
                        .split('\t')
                        .map(str::to_owned)
                        .collect();
                    if f.len() >= 2 && f[1].starts_with('v') {
                        lines.insert((kind, f[0].clone(), f[1].clone()));
                    }
                }
            }
        }
        for (name, version) in &go {
            assert!(
                lines.iter().any(|(_, n, v)| n == name && v == version),
                "{path}: {name} {version} not in its modinfo"
            );
        }
        // Replacements (by local directories too) change which deps are reported.
        if !bin.split(|&b| b == b'\n').any(|l| l.starts_with(b"=>\t")) {
            let deps: BTreeSet<(String, String)> = lines
                .iter()
                .filter(|(k, _, _)| *k == "dep")
                .map(|(_, n, v)| (n.clone(), v.clone()))
                .collect();
            let missing: Vec<_> = deps.difference(&go).collect();
            assert!(
                missing.is_empty(),
                "{path}: dep lines not reported: {missing:?}"
            );
        }
        deps_seen += go.len();
        println!("{path}: {} modules, stdlib {}", go.len(), stdlib[0].version);
        // Not executable and not under bin/: not opened.
        let idx = index(&tar(vec![file("srv/data.bin", &bin)]));
        assert!(idx.found.is_empty());
    }
    if checked == 0 {
        println!("skipped: no Go binary with build info among {candidates:?}");
    } else if Path::new("/usr/lib/google-cloud-sdk/bin/cbt").exists() {
        assert!(deps_seen > 50, "cbt has its dependencies in its build info");
    }
}

/// A Rust binary built here with cargo-auditable, depending on a crate from the registry
/// cache (offline).
#[test]
fn cargo_auditable_binary() {
    let have = Command::new("cargo")
        .args(["auditable", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        println!("skipped: cargo-auditable is not installed");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).expect("mkdir");
    std::fs::write(
        dir.path().join("Cargo.toml"),
        "[package]\nname = \"audited\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
         [dependencies]\nitoa = \"1\"\n\n[workspace]\n",
    )
    .expect("write");
    std::fs::write(
        src.join("main.rs"),
        "fn main() { println!(\"{}\", itoa::Buffer::new().format(42)); }\n",
    )
    .expect("write");
    let out = Command::new("cargo")
        .args(["auditable", "build", "--offline", "--quiet"])
        .current_dir(dir.path())
        .env("CARGO_TARGET_DIR", dir.path().join("target"))
        .env_remove("RUSTFLAGS")
        .output()
        .expect("cargo");
    if !out.status.success() {
        println!(
            "skipped: cargo auditable build failed offline: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }
    let bin = std::fs::read(dir.path().join("target/debug/audited")).expect("binary");
    let lock = std::fs::read_to_string(dir.path().join("Cargo.lock")).expect("lock");
    let itoa_version = lock
        .split("[[package]]")
        .find(|s| s.contains("name = \"itoa\""))
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("version = \"")))
        .map(|v| v.trim_end_matches('"').to_owned())
        .expect("itoa in Cargo.lock");
    let idx = index(&tar(vec![E::Exec("usr/bin/audited", bin)]));
    let got: Vec<String> = packages_at(&idx, "usr/bin/audited")
        .iter()
        .map(nv)
        .collect();
    assert_eq!(got, [format!("itoa {itoa_version}")]);
}

// ---------------------------------------------------------------------------------------
// Java

/// Every regular jar of Debian's /usr/share/java, in one layer, against `unzip`'s reading of
/// its pom.properties.
#[test]
fn debian_jars() {
    let Ok(dir) = std::fs::read_dir("/usr/share/java") else {
        println!("skipped: no /usr/share/java");
        return;
    };
    if Command::new("unzip").arg("-v").output().is_err() {
        println!("skipped: no unzip");
        return;
    }
    let mut entries = Vec::new();
    let mut truth = BTreeSet::new();
    for e in dir.flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".jar") || e.file_type().map(|t| t.is_symlink()).unwrap_or(true) {
            continue;
        }
        let list = Command::new("unzip")
            .arg("-Z1")
            .arg(&p)
            .output()
            .expect("unzip");
        for entry in String::from_utf8_lossy(&list.stdout).lines() {
            if entry.starts_with("META-INF/maven/") && entry.ends_with("/pom.properties") {
                let props = Command::new("unzip")
                    .arg("-p")
                    .arg(&p)
                    .arg(entry)
                    .output()
                    .expect("unzip");
                let props = String::from_utf8_lossy(&props.stdout).into_owned();
                let get = |k: &str| {
                    props
                        .lines()
                        .find_map(|l| l.trim().strip_prefix(&format!("{k}=")))
                        .map(str::trim)
                };
                if let (Some(g), Some(a), Some(v)) =
                    (get("groupId"), get("artifactId"), get("version"))
                {
                    truth.insert(format!("usr/share/java/{name} {g}:{a} {v}"));
                }
            }
        }
        entries.push((
            format!("usr/share/java/{name}"),
            std::fs::read(&p).expect("jar"),
        ));
    }
    if entries.is_empty() {
        println!("skipped: no jars in /usr/share/java");
        return;
    }
    let idx = index(&tar(entries.iter().map(|(p, d)| file(p, d)).collect()));
    let got: BTreeSet<String> = idx
        .found
        .iter()
        .flat_map(|f| {
            f.packages
                .iter()
                .map(move |p| format!("{} {}", f.path, nv(p)))
        })
        .collect();
    assert_eq!(got, truth);
    assert!(truth.len() > 50, "{} jars with pom.properties", truth.len());
    assert!(
        got.iter()
            .any(|l| l.contains("org.apache.maven:maven-artifact "))
            || !Path::new("/usr/share/java/maven3-artifact.jar").exists()
    );
}

fn zip_of(entries: &[(&str, &[u8])], method: zip::CompressionMethod) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_method(method);
    for (name, body) in entries {
        w.start_file(*name, opts).expect("start");
        w.write_all(body).expect("write");
    }
    w.finish().expect("zip").into_inner()
}

fn pom(g: &str, a: &str, v: &str) -> Vec<u8> {
    format!("#Generated by Maven\ngroupId={g}\nartifactId={a}\nversion={v}\n").into_bytes()
}

#[test]
fn nested_jars() {
    let inner = zip_of(
        &[
            ("META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\n"),
            (
                "META-INF/maven/org.yaml/snakeyaml/pom.properties",
                &pom("org.yaml", "snakeyaml", "1.33"),
            ),
        ],
        zip::CompressionMethod::Deflated,
    );
    let boot = zip_of(
        &[("BOOT-INF/lib/snakeyaml-1.33.jar", &inner)],
        zip::CompressionMethod::Stored,
    );
    let war = zip_of(
        &[
            (
                "META-INF/maven/com.example/app/pom.properties",
                &pom("com.example", "app", "1.0.0"),
            ),
            ("WEB-INF/lib/snakeyaml-1.33.jar", &inner),
            ("WEB-INF/lib/boot.jar", &boot),
            ("WEB-INF/classes/x.class", b"\xca\xfe\xba\xbe"),
        ],
        zip::CompressionMethod::Deflated,
    );
    let idx = index(&tar(vec![file("opt/app.war", &war)]));
    let found: Vec<(String, Vec<String>)> = idx
        .found
        .iter()
        .map(|f| (f.path.clone(), f.packages.iter().map(nv).collect()))
        .collect();
    let yaml = vec!["org.yaml:snakeyaml 1.33".to_owned()];
    assert_eq!(
        found,
        [
            (
                "opt/app.war".into(),
                vec!["com.example:app 1.0.0".to_owned()]
            ),
            (
                "opt/app.war!/WEB-INF/lib/snakeyaml-1.33.jar".into(),
                yaml.clone()
            ),
            ("opt/app.war!/WEB-INF/lib/boot.jar".into(), vec![]),
            (
                "opt/app.war!/WEB-INF/lib/boot.jar!/BOOT-INF/lib/snakeyaml-1.33.jar".into(),
                yaml
            ),
        ]
    );
    // A later layer's app.war without the nested jars takes them away.
    let ls = vec![
        ("l1".to_owned(), idx),
        (
            "l2".to_owned(),
            index(&tar(vec![file(
                "opt/app.war",
                zip_of(&[], zip::CompressionMethod::Stored),
            )])),
        ),
    ];
    assert!(merge(&ls).packages.is_empty());
}

#[test]
fn jar_nesting_is_bounded() {
    let mut jar = zip_of(
        &[(
            "META-INF/maven/g/deepest/pom.properties",
            &pom("g", "deepest", "1"),
        )],
        zip::CompressionMethod::Stored,
    );
    for level in 0..200 {
        let name = format!("lib/level{level}.jar");
        let p = pom("g", &format!("a{level}"), "1");
        jar = zip_of(
            &[("META-INF/maven/g/a/pom.properties", &p), (&name, &jar)],
            zip::CompressionMethod::Stored,
        );
    }
    let idx = index(&tar(vec![file("app.jar", &jar)]));
    let limits = Limits::default();
    assert_eq!(idx.found.len() as u32, limits.max_nesting + 1);
    assert!(idx.found.iter().all(|f| f.packages.len() == 1));
    assert!(!idx.found.iter().any(|f| f.packages[0].name == "g:deepest"));
    let limits = Limits {
        max_nesting: 0,
        ..Limits::default()
    };
    let idx = index_layer(
        &tar(vec![file("app.jar", &jar)])[..],
        Compression::None,
        &limits,
    )
    .expect("index");
    assert_eq!(idx.found.len(), 1);
}

/// A jar holding a nested "jar" of 300 MB of zeros (300 KB compressed): skipped, whether its
/// header tells the truth or lies about its size.
#[test]
fn zip_bomb_is_skipped() {
    const ZEROS: u64 = 300 << 20;
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(1))
        .large_file(true);
    w.start_file("META-INF/maven/g/a/pom.properties", opts)
        .expect("start");
    w.write_all(&pom("g", "a", "1")).expect("write");
    w.start_file("lib/bomb.jar", opts).expect("start");
    let chunk = vec![0u8; 1 << 20];
    for _ in 0..(ZEROS >> 20) {
        w.write_all(&chunk).expect("write");
    }
    let honest = w.finish().expect("zip").into_inner();
    assert!(honest.len() < 2 << 20, "{} bytes", honest.len());
    let limits = Limits {
        max_file_bytes: 4 << 20,
        ..Limits::default()
    };
    let run = |jar: &[u8]| {
        index_layer(
            &tar(vec![file("bomb.jar", jar)])[..],
            Compression::None,
            &limits,
        )
        .expect("index")
    };
    let idx = run(&honest);
    assert_eq!(idx.found.len(), 1, "{:?}", idx.found);
    assert_eq!(nv(&idx.found[0].packages[0]), "g:a 1");

    // The same, with the zip's size fields (zip64 extra and 32-bit fields) rewritten to claim
    // 1000 bytes: reading stops at max_file_bytes.
    let mut liar = honest.clone();
    let mut patched = 0;
    let big = ZEROS.to_le_bytes();
    for at in 0..liar.len().saturating_sub(8) {
        if liar[at..at + 8] == big {
            liar[at..at + 8].copy_from_slice(&1000u64.to_le_bytes());
            patched += 1;
        }
    }
    let big32 = (ZEROS as u32).to_le_bytes();
    for at in 0..liar.len().saturating_sub(4) {
        if liar[at..at + 4] == big32 {
            liar[at..at + 4].copy_from_slice(&1000u32.to_le_bytes());
            patched += 1;
        }
    }
    assert!(patched > 0);
    let idx = run(&liar);
    assert!(idx.found.len() == 1, "{:?}", idx.found);
}

// ---------------------------------------------------------------------------------------
// Hostile or broken streams

#[test]
fn compression_of_media_types() {
    let cases = [
        (
            "application/vnd.oci.image.layer.v1.tar",
            Some(Compression::None),
        ),
        (
            "application/vnd.oci.image.layer.v1.tar+gzip",
            Some(Compression::Gzip),
        ),
        (
            "application/vnd.oci.image.layer.v1.tar+zstd",
            Some(Compression::Zstd),
        ),
        (
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
            Some(Compression::Gzip),
        ),
        (
            "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
            None,
        ),
        (
            "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
            None,
        ),
        ("application/vnd.oci.image.config.v1+json", None),
        ("application/vnd.cncf.helm.chart.content.v1.tar+gzip", None),
    ];
    for (mt, want) in cases {
        assert_eq!(compression_of(mt), want, "{mt}");
    }
}

#[test]
fn truncated_gzip_is_corrupt() {
    let layer = docker_save_layer("alpine-310.tar.gz");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&layer).expect("gzip");
    let gz = gz.finish().expect("gzip");
    for cut in [10, gz.len() / 2, gz.len() - 4] {
        let r = index_layer(&gz[..cut], Compression::Gzip, &Limits::default());
        assert!(matches!(r, Err(IndexError::Corrupt(_))), "cut {cut}: {r:?}");
    }
    let zst = zstd::stream::encode_all(&layer[..], 1).expect("zstd");
    let r = index_layer(&zst[..zst.len() / 2], Compression::Zstd, &Limits::default());
    assert!(matches!(r, Err(IndexError::Corrupt(_))), "{r:?}");
}

#[test]
fn random_bytes_are_corrupt() {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let noise: Vec<u8> = (0..64 << 10)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as u8
        })
        .collect();
    for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
        let r = index_layer(&noise[..], c, &Limits::default());
        assert!(matches!(r, Err(IndexError::Corrupt(_))), "{c:?}: {r:?}");
    }
}

#[test]
fn absurd_entry_size_is_an_error_not_an_allocation() {
    let mut h = tar::Header::new_gnu();
    h.set_path("var/lib/dpkg/status").expect("path");
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    for size in [u64::MAX / 2, 1 << 40, 200 << 20] {
        h.set_size(size);
        h.set_cksum();
        let mut layer = h.as_bytes().to_vec();
        layer.extend_from_slice(&[b'x'; 4096]);
        let r = index_layer(&layer[..], Compression::None, &Limits::default());
        assert!(matches!(r, Err(IndexError::Corrupt(_))), "{size}: {r:?}");
        let limits = Limits {
            max_layer_bytes: Some(1 << 20),
            ..Limits::default()
        };
        let r = index_layer(&layer[..], Compression::None, &limits);
        assert!(
            matches!(r, Err(IndexError::TooLarge { limit }) if limit == 1 << 20),
            "{size}: {r:?}"
        );
    }
}

#[test]
fn limits_are_enforced() {
    let layer = docker_save_layer("alpine-311.tar.gz");
    let exact = Limits {
        max_layer_bytes: Some(layer.len() as u64),
        ..Limits::default()
    };
    assert!(index_layer(&layer[..], Compression::None, &exact).is_ok());
    let small = Limits {
        max_layer_bytes: Some(layer.len() as u64 / 2),
        ..Limits::default()
    };
    let r = index_layer(&layer[..], Compression::None, &small);
    assert!(matches!(r, Err(IndexError::TooLarge { .. })), "{r:?}");
    let few = Limits {
        max_entries: 10,
        ..Limits::default()
    };
    let r = index_layer(&layer[..], Compression::None, &few);
    assert!(
        matches!(r, Err(IndexError::TooLarge { limit: 10 })),
        "{r:?}"
    );
    // A file over max_file_bytes is skipped, not an error.
    let tiny = Limits {
        max_file_bytes: 100,
        ..Limits::default()
    };
    let idx = index_layer(&layer[..], Compression::None, &tiny).expect("index");
    assert!(idx.found.is_empty() && idx.os_release.is_empty());
    assert_eq!(idx.bytes, layer.len() as u64);
}

#[test]
fn reader_errors_are_io() {
    struct Failing(usize);
    impl Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0 == 0 {
                return Err(std::io::Error::other("disk on fire"));
            }
            self.0 -= 1;
            let n = buf.len().min(512);
            buf[..n].fill(0);
            Ok(n)
        }
    }
    let r = index_layer(Failing(0), Compression::Gzip, &Limits::default());
    assert!(matches!(r, Err(IndexError::Io(_))), "{r:?}");
    let r = index_layer(Failing(1), Compression::None, &Limits::default());
    assert!(matches!(r, Err(IndexError::Io(_)) | Ok(_)), "{r:?}");
}

#[test]
fn found_json_shape_is_compact() {
    let f = Found {
        path: "var/lib/dpkg/status".into(),
        packages: vec![Package {
            kind: Kind::GoStdlib,
            name: "stdlib".into(),
            version: "1.21.3".into(),
            source_name: None,
            source_version: None,
            arch: None,
        }],
    };
    assert_eq!(
        serde_json::to_string(&f).expect("json"),
        r#"{"path":"var/lib/dpkg/status","packages":[{"kind":"gostdlib","name":"stdlib","version":"1.21.3"}]}"#
    );
}

// ---------------------------------------------------------------------------------------
// Extension headers (GNU long names and links, PAX), written block by block

/// A 512-byte header as a writer would put it in the stream.
fn header(path: &str, ty: tar::EntryType, size: u64) -> Vec<u8> {
    let mut h = tar::Header::new_ustar();
    let name = &path.as_bytes()[..path.len().min(99)];
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.set_entry_type(ty);
    h.set_mode(0o644);
    h.set_size(size);
    h.set_cksum();
    h.as_bytes().to_vec()
}

/// `data`, padded to whole blocks.
fn blocks(data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    out.resize(data.len().next_multiple_of(512), 0);
    out
}

/// A GNU long-name (`L`) or long-link (`K`) member carrying `name`.
fn gnu_long(ty: tar::EntryType, name: &str) -> Vec<u8> {
    let mut h = tar::Header::new_gnu();
    h.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
    h.set_entry_type(ty);
    h.set_size(name.len() as u64 + 1);
    h.set_cksum();
    let mut out = h.as_bytes().to_vec();
    out.extend(blocks(format!("{name}\0").as_bytes()));
    out
}

/// A PAX extended header (`x`) member with these records.
fn pax(records: &[(&str, &str)]) -> Vec<u8> {
    let mut body = Vec::new();
    for (k, v) in records {
        // The length counts its own digits.
        let rest = k.len() + v.len() + 3;
        let mut len = rest + 1;
        while len != rest + len.to_string().len() {
            len = rest + len.to_string().len();
        }
        body.extend(format!("{len} {k}={v}\n").as_bytes());
    }
    let mut out = header("PaxHeaders/x", tar::EntryType::XHeader, body.len() as u64);
    out.extend(blocks(&body));
    out
}

fn end_of_archive(mut layer: Vec<u8>) -> Vec<u8> {
    layer.extend([0u8; 1024]);
    layer
}

/// Peak resident memory of this process so far, in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM");
    kib << 10
}

/// Runs `body` in a child process that runs only the test `name`, so that the peak memory it
/// measures is its own and not that of tests running beside it.
fn in_own_process(name: &str, body: impl FnOnce()) {
    const ALONE: &str = "BERTH_SCAN_TEST_ALONE";
    if std::env::var_os(ALONE).is_some() {
        body();
        return;
    }
    let out = Command::new(std::env::current_exe().expect("test binary"))
        .args([name, "--exact", "--test-threads=1", "--nocapture"])
        .env(ALONE, "1")
        .output()
        .expect("run the test alone");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A header declaring 8 GiB, followed by 1 GiB of bytes produced as they are read: the
/// `tar` crate's iterator would read them all into one buffer.
fn huge_extension_header_is_corrupt(ty: tar::EntryType) {
    let mut h = tar::Header::new_gnu();
    h.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
    h.set_entry_type(ty);
    h.set_size(8 << 30);
    h.set_cksum();
    let before = peak_rss();
    let layer = Cursor::new(h.as_bytes().to_vec()).chain(std::io::repeat(b'a').take(1 << 30));
    let r = index_layer(layer, Compression::None, &Limits::default());
    let grown = peak_rss().saturating_sub(before);
    match r {
        Err(IndexError::Corrupt(why)) => assert!(why.contains("8589934592"), "{why}"),
        other => panic!("{ty:?}: {other:?}"),
    }
    assert!(
        grown < 64 << 20,
        "{ty:?}: peak memory grew by {grown} bytes"
    );
}

#[test]
fn huge_gnu_long_name_is_corrupt_without_allocating() {
    in_own_process("huge_gnu_long_name_is_corrupt_without_allocating", || {
        huge_extension_header_is_corrupt(tar::EntryType::GNULongName);
        huge_extension_header_is_corrupt(tar::EntryType::GNULongLink);
    });
}

#[test]
fn huge_pax_header_is_corrupt_without_allocating() {
    in_own_process("huge_pax_header_is_corrupt_without_allocating", || {
        huge_extension_header_is_corrupt(tar::EntryType::XHeader);
        huge_extension_header_is_corrupt(tar::EntryType::XGlobalHeader);
    });
}

#[test]
fn extension_headers_over_their_caps_are_corrupt() {
    // Just over each cap, and really present in the stream.
    let name = "a/".repeat(32 << 10) + "b";
    let r = index_layer(
        &end_of_archive(gnu_long(tar::EntryType::GNULongName, &name))[..],
        Compression::None,
        &Limits::default(),
    );
    assert!(
        matches!(&r, Err(IndexError::Corrupt(why)) if why.contains("long name")),
        "{r:?}"
    );
    let comment = "c".repeat(1 << 20);
    let r = index_layer(
        &end_of_archive(pax(&[("comment", &comment)]))[..],
        Compression::None,
        &Limits::default(),
    );
    assert!(
        matches!(&r, Err(IndexError::Corrupt(why)) if why.contains("PAX header")),
        "{r:?}"
    );
}

/// 300 characters, ending in a wheel's METADATA.
fn deep_metadata_path() -> String {
    let dir = "usr/lib/python3.11/site-packages/".to_owned() + &"deep/".repeat(50);
    let path = dir[..300 - "requests-2.30.0.dist-info/METADATA".len()].to_owned()
        + "requests-2.30.0.dist-info/METADATA";
    assert_eq!(path.len(), 300);
    assert!(path.contains("site-packages/deep/deep/"));
    path
}

const METADATA: &str = "Metadata-Version: 2.1\nName: requests\nVersion: 2.30.0\n";

#[test]
fn long_path_through_gnu_long_name_and_link() {
    let path = deep_metadata_path();
    let short = "usr/lib/python3.11/site-packages/requests-2.30.0.dist-info/METADATA";
    let mut layer = gnu_long(tar::EntryType::GNULongName, &path);
    layer.extend(header(
        &path,
        tar::EntryType::Regular,
        METADATA.len() as u64,
    ));
    layer.extend(blocks(METADATA.as_bytes()));
    // A hard link to it, its target too long for the header.
    layer.extend(gnu_long(tar::EntryType::GNULongLink, &path));
    layer.extend(header(short, tar::EntryType::Link, 0));
    let idx = index(&end_of_archive(layer));
    assert_eq!(nv(&packages_at(&idx, &path)[0]), "requests 2.30.0");
    assert_eq!(nv(&packages_at(&idx, short)[0]), "requests 2.30.0");
    assert_eq!(idx.entries, 2);
}

#[test]
fn long_path_and_size_through_pax() {
    let path = deep_metadata_path();
    let mut layer = pax(&[
        ("mtime", "1700000000.5"),
        ("path", &path),
        ("size", &METADATA.len().to_string()),
    ]);
    // The header's own size is wrong: PAX's decides where the next header is.
    layer.extend(header(&path, tar::EntryType::Regular, 0));
    layer.extend(blocks(METADATA.as_bytes()));
    layer.extend(pax(&[("linkpath", "../usr/lib/os-release")]));
    let mut link = tar::Header::new_ustar();
    link.set_path("etc/os-release").expect("path");
    link.set_entry_type(tar::EntryType::Symlink);
    link.set_link_name("short").expect("link");
    link.set_size(0);
    link.set_mode(0o777);
    link.set_cksum();
    layer.extend(link.as_bytes());
    layer.extend(tar(vec![file("usr/lib/os-release", "ID=almalinux\n")]));
    let idx = index(&layer);
    assert_eq!(nv(&packages_at(&idx, &path)[0]), "requests 2.30.0");
    assert_eq!(
        idx.symlinks,
        [(
            "etc/os-release".to_owned(),
            "../usr/lib/os-release".to_owned()
        )]
    );
    assert_eq!(idx.os_release[0].1.id, "almalinux");
    assert_eq!(idx.entries, 3);
}

#[test]
fn pax_size_is_bounded_like_any_size() {
    let mut layer = pax(&[("size", &(1u64 << 50).to_string())]);
    layer.extend(header("var/lib/dpkg/status", tar::EntryType::Regular, 10));
    layer.extend([b'x'; 4096]);
    let r = index_layer(&layer[..], Compression::None, &Limits::default());
    assert!(matches!(r, Err(IndexError::Corrupt(_))), "{r:?}");
    let limits = Limits {
        max_layer_bytes: Some(1 << 20),
        ..Limits::default()
    };
    let r = index_layer(&layer[..], Compression::None, &limits);
    assert!(
        matches!(r, Err(IndexError::TooLarge { limit }) if limit == 1 << 20),
        "{r:?}"
    );
}

#[test]
fn malformed_extension_headers_are_corrupt() {
    let member = || header("etc/os-release", tar::EntryType::Regular, 0);
    let mut bad_record = header("PaxHeaders/x", tar::EntryType::XHeader, 10);
    bad_record.extend(blocks(b"99 path=a\n"));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("bad record", [bad_record, member()].concat()),
        (
            "size not a number",
            [pax(&[("size", "12k")]), member()].concat(),
        ),
        (
            "two long names",
            [
                gnu_long(tar::EntryType::GNULongName, "a"),
                gnu_long(tar::EntryType::GNULongName, "b"),
                member(),
            ]
            .concat(),
        ),
        (
            "two PAX headers",
            [pax(&[("path", "a")]), pax(&[("path", "b")]), member()].concat(),
        ),
        ("no member after", pax(&[("path", "a")])),
    ];
    for (what, layer) in cases {
        let r = index_layer(
            &end_of_archive(layer)[..],
            Compression::None,
            &Limits::default(),
        );
        assert!(matches!(r, Err(IndexError::Corrupt(_))), "{what}: {r:?}");
    }
}

/// GNU tar's old sparse format: ten data blocks between holes, so that the map continues in
/// an extension block after the header's four slots; then an ordinary file after it.
#[test]
fn gnu_sparse_file_is_read_with_its_holes() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("etc")).expect("mkdir");
    let mut f = std::fs::File::create(dir.path().join("etc/os-release")).expect("create");
    for i in 0..10u64 {
        let line = match i {
            0 => "ID=sparse\n".to_owned(),
            // After a hole: its zeros are a line of their own.
            9 => "\nVERSION_ID=\"9\"\n".to_owned(),
            _ => format!("\nX{i}=y\n"),
        };
        let mut block = line.into_bytes();
        block.resize(512, b'\n');
        std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(i * 16384)).expect("seek");
        f.write_all(&block).expect("write");
    }
    let real = 10 * 16384 + 8192;
    f.set_len(real).expect("truncate");
    drop(f);
    std::fs::create_dir_all(dir.path().join("var/lib/dpkg")).expect("mkdir");
    std::fs::write(dir.path().join("var/lib/dpkg/status"), STATUS_V1).expect("write");
    let made = Command::new("tar")
        .args([
            "--sparse",
            "--format=gnu",
            "-cf",
            "-",
            "etc",
            "var/lib/dpkg/status",
        ])
        .current_dir(dir.path())
        .output();
    let layer = match made {
        Ok(out) if out.status.success() => out.stdout,
        _ => {
            println!("skipped: no GNU tar on this machine");
            return;
        }
    };
    assert_eq!(layer[512 + 156], b'S', "GNU tar wrote no sparse member");
    let idx = index(&layer);
    assert_eq!(idx.os_release.len(), 1);
    let os = &idx.os_release[0].1;
    assert_eq!(
        (os.id.as_str(), os.version_id.as_deref()),
        ("sparse", Some("9"))
    );
    assert!(!packages_at(&idx, "var/lib/dpkg/status").is_empty());
    // Its size is the expanded one.
    let tight = |max_file_bytes| Limits {
        max_file_bytes,
        ..Limits::default()
    };
    let idx = index_layer(&layer[..], Compression::None, &tight(real - 1)).expect("index");
    assert!(idx.os_release.is_empty());
    let idx = index_layer(&layer[..], Compression::None, &tight(real)).expect("index");
    assert_eq!(idx.os_release.len(), 1);
}
