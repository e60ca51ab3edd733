//! The built-in vulnerability scanner end to end: images pushed over `/v2` with real package
//! content (pip's and npm's own installs, a Rust binary built by cargo-auditable, a Go binary,
//! Alpine images), real OSV records imported from `tests/data/vulndb`, and Quay's security API
//! answering with the packages, the layers that added them and their vulnerabilities.
//! Negatives: a package whited out or upgraded in a later layer, data that does not cover an
//! ecosystem, corrupt and oversized layers, and the import's incremental and withdrawn rules.

mod common;

use common::Berth;
use common::client::Client;
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/vulndb")
}

/// A gzip-compressed tar of `dir`'s tree (paths relative to it).
fn layer_of(dir: &Path) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut t = tar::Builder::new(gz);
    t.follow_symlinks(false);
    t.append_dir_all(".", dir).expect("tar the tree");
    t.into_inner().expect("tar").finish().expect("gzip")
}

/// A gzip-compressed tar of `(path, bytes)` regular files.
fn layer_from(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut t = tar::Builder::new(gz);
    for (path, bytes) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        t.append_data(&mut h, path, *bytes).expect("entry");
    }
    t.into_inner().expect("tar").finish().expect("gzip")
}

fn sources_env(paths: &[&Path]) -> String {
    let list: Vec<String> = paths.iter().map(|p| format!("'{}'", p.display())).collect();
    format!("[{}]", list.join(", "))
}

/// The security report once the scan is no longer queued (bounded wait).
fn report(c: &Client, repo: &str, digest: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (s, v) = c.api(
            "GET",
            &format!("/api/v1/repository/{repo}/manifest/{digest}/security?vulnerabilities=true"),
            None,
        );
        assert_eq!(s, 200, "security of {repo}@{digest}: {v}");
        if v["status"] != "queued" {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{repo}@{digest} still queued after 120 s: {v}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Waits until the imported data holds `n` records or more (the import runs at start).
fn wait_records(c: &Client, repo: &str, digest: &str, n: i64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let v = report(c, repo, digest);
        if v["Berth"]["VulnerabilityData"]["records"]
            .as_i64()
            .unwrap_or(0)
            >= n
        {
            return;
        }
        assert!(Instant::now() < deadline, "data not imported: {v}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn features(v: &Value) -> Vec<Value> {
    v["data"]["Layer"]["Features"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn feature<'a>(fs: &'a [Value], name: &str) -> Option<&'a Value> {
    fs.iter().find(|f| f["Name"] == name)
}

fn vuln_names(f: &Value) -> Vec<String> {
    f["Vulnerabilities"]
        .as_array()
        .map(|vs| {
            vs.iter()
                .filter_map(|v| v["Name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// `requests==2.30.0` installed by pip's own code into `root` (from a throwaway venv, with
/// `--ignore-installed`, so that no Python's own packages are touched).
fn pip_root(tmp: &Path) -> PathBuf {
    let venv = tmp.join("venv");
    run_ok(Command::new("python3").args(["-m", "venv"]).arg(&venv));
    let root = tmp.join("pyroot");
    run_ok(
        Command::new(venv.join("bin/pip"))
            .args([
                "install",
                "--quiet",
                "--no-deps",
                "--ignore-installed",
                "--disable-pip-version-check",
                "--root",
            ])
            .arg(&root)
            .args(["--prefix", "/usr/local", "requests==2.30.0"]),
    );
    root
}

/// `lodash@4.17.20` installed by npm into `app` (node_modules and package-lock.json).
fn npm_app(tmp: &Path) -> PathBuf {
    let app = tmp.join("npmroot/srv/app");
    std::fs::create_dir_all(&app).expect("app dir");
    run_ok(
        Command::new("npm")
            .args(["install", "--silent", "--no-audit", "--no-fund", "--prefix"])
            .arg(&app)
            .arg("lodash@4.17.20"),
    );
    tmp.join("npmroot")
}

/// A Rust program depending on `time 0.1.43`, built with `cargo auditable` (its dependency
/// list embedded in the binary); `None` when cargo-auditable is not installed.
fn auditable_binary(tmp: &Path) -> Option<PathBuf> {
    let has = Command::new("cargo")
        .args(["auditable", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has {
        eprintln!(
            "cargo-auditable is not installed (scripts/test.sh installs it): the Rust positive is not checked"
        );
        return None;
    }
    let krate = tmp.join("audhello");
    std::fs::create_dir_all(krate.join("src")).expect("crate dir");
    std::fs::write(
        krate.join("Cargo.toml"),
        "[package]\nname = \"audhello\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\ntime = \"=0.1.43\"\n\n[workspace]\n",
    )
    .expect("Cargo.toml");
    std::fs::write(
        krate.join("src/main.rs"),
        "fn main() { println!(\"{}\", time::precise_time_ns()); }\n",
    )
    .expect("main.rs");
    run_ok(
        Command::new("cargo")
            .args(["auditable", "build", "--release", "--quiet"])
            .current_dir(&krate)
            .env("CARGO_TARGET_DIR", tmp.join("audhello-target"))
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_BUILD_TARGET"),
    );
    let root = tmp.join("rustroot");
    std::fs::create_dir_all(root.join("usr/local/bin")).expect("bin dir");
    std::fs::copy(
        tmp.join("audhello-target/release/audhello"),
        root.join("usr/local/bin/audhello"),
    )
    .expect("copy binary");
    Some(root)
}

/// A Go binary of this machine (skopeo, which the test suite installs) and its toolchain
/// version, read with `go version -m` when Go is at hand, else from the binary's build info.
fn go_binary(tmp: &Path) -> (PathBuf, String) {
    let skopeo = common::images::require_tool("skopeo");
    let root = tmp.join("goroot");
    std::fs::create_dir_all(root.join("usr/bin")).expect("bin dir");
    std::fs::copy(&skopeo, root.join("usr/bin/skopeo")).expect("copy skopeo");
    // The toolchain version, found independently of Berth: the text `go1.N.M` after the
    // buildinfo magic.
    let bytes = std::fs::read(&skopeo).expect("read skopeo");
    let magic = b"\xff Go buildinf:";
    let at = bytes
        .windows(magic.len())
        .position(|w| w == magic)
        .expect("skopeo carries Go build info");
    let tail = &bytes[at..(at + 64 * 1024).min(bytes.len())];
    let text = String::from_utf8_lossy(tail);
    let start = text.find("go1.").expect("a go1.x version after the magic");
    let version: String = text[start + 2..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    (root, version)
}

/// Whether Go `version` falls in a Go vulndb record's SEMVER ranges for `stdlib`, evaluated
/// here from the record itself (independently of the scanner's code).
fn go_affected(record: &Value, version: &str) -> bool {
    let v = semver::Version::parse(&full(version)).expect("version");
    record["affected"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["package"]["name"] == "stdlib")
        .flat_map(|a| a["ranges"].as_array().cloned().unwrap_or_default())
        .any(|r| {
            let mut hit = false;
            for e in r["events"].as_array().into_iter().flatten() {
                if let Some(i) = e["introduced"].as_str() {
                    if i == "0" || semver::Version::parse(&full(i)).is_ok_and(|i| v >= i) {
                        hit = true;
                    }
                } else if let Some(f) = e["fixed"].as_str()
                    && semver::Version::parse(&full(f)).is_ok_and(|f| v >= f)
                {
                    hit = false;
                }
            }
            hit
        })
}

fn full(v: &str) -> String {
    let (core, pre) = v.split_once('-').map_or((v, None), |(c, p)| (c, Some(p)));
    let mut parts: Vec<&str> = core.split('.').collect();
    while parts.len() < 3 {
        parts.push("0");
    }
    match pre {
        Some(p) => format!("{}-{p}", parts.join(".")),
        None => parts.join("."),
    }
}

#[test]
fn real_packages_of_four_ecosystems_are_found_and_matched() {
    let tmp = tempfile::tempdir().expect("tmp");
    let py = pip_root(tmp.path());
    let npm = npm_app(tmp.path());
    let rust = auditable_binary(tmp.path());
    let (go, go_version) = go_binary(tmp.path());

    let b = Berth::start_with_env(&[(
        "BERTH_SECURITY_SCANNER_OSV_SOURCES",
        &sources_env(&[&data_dir()]),
    )]);
    let c = Client::new(&b);
    let layers: Vec<Vec<u8>> = [Some(py), Some(npm), rust, Some(go)]
        .into_iter()
        .flatten()
        .map(|d| layer_of(&d))
        .collect();
    let refs: Vec<&[u8]> = layers.iter().map(Vec::as_slice).collect();
    let img = c.image("scan/apps", "v1", "apps", &refs);
    wait_records(&c, "scan/apps", &img.digest, 170);
    let v = report(&c, "scan/apps", &img.digest);
    assert_eq!(v["status"], "scanned", "{v}");
    assert_eq!(v["data"]["Layer"]["Name"], img.digest.as_str());
    assert_eq!(v["data"]["Layer"]["IndexedByVersion"], 4);
    let fs = features(&v);

    // Python: requests 2.30.0, added by the first layer, PYSEC-2023-74 fixed by 2.31.0.
    let requests = feature(&fs, "requests").unwrap_or_else(|| panic!("no requests in {v}"));
    assert_eq!(requests["Version"], "2.30.0");
    assert_eq!(requests["AddedBy"], img.blobs[1].as_str());
    assert_eq!(requests["NamespaceName"], "PyPI");
    let pysec = requests["Vulnerabilities"]
        .as_array()
        .and_then(|vs| vs.iter().find(|x| x["Name"] == "PYSEC-2023-74"))
        .unwrap_or_else(|| panic!("PYSEC-2023-74 not reported: {requests}"));
    assert_eq!(pysec["FixedBy"], "2.31.0");
    assert_eq!(pysec["NamespaceName"], "PyPI");
    assert!(
        pysec["Description"]
            .as_str()
            .is_some_and(|d| d.contains("Proxy-Authorization"))
    );
    assert!(
        requests["CVEIds"]
            .as_array()
            .is_some_and(|c| c.iter().any(|x| x == "CVE-2023-32681")),
        "{requests}"
    );

    // npm: lodash 4.17.20 (its node_modules package.json and the lockfile name the same
    // package), GHSA-35jh-r3h4-6jhm fixed by 4.17.21, High from its CVSS vector (7.2).
    let lodash: Vec<&Value> = fs.iter().filter(|f| f["Name"] == "lodash").collect();
    assert!(!lodash.is_empty(), "no lodash in {v}");
    for l in &lodash {
        assert_eq!(l["Version"], "4.17.20");
        assert_eq!(l["AddedBy"], img.blobs[2].as_str());
        let g = l["Vulnerabilities"]
            .as_array()
            .and_then(|vs| vs.iter().find(|x| x["Name"] == "GHSA-35jh-r3h4-6jhm"))
            .unwrap_or_else(|| panic!("GHSA-35jh-r3h4-6jhm not reported: {l}"));
        assert_eq!(g["FixedBy"], "4.17.21");
        assert_eq!(g["Severity"], "High");
        assert_eq!(g["Metadata"]["NVD"]["CVSSv3"]["Score"], 7.2);
        assert_eq!(l["BaseScores"], json!([7.2]));
    }

    // Rust: time 0.1.43 from the binary's cargo-auditable section, RUSTSEC-2020-0071.
    if layers.len() == 4 {
        let time = feature(&fs, "time").unwrap_or_else(|| panic!("no time crate in {v}"));
        assert_eq!(time["Version"], "0.1.43");
        assert_eq!(time["NamespaceName"], "crates.io");
        assert_eq!(time["AddedBy"], img.blobs[3].as_str());
        assert!(
            vuln_names(time).contains(&"RUSTSEC-2020-0071".to_string()),
            "{time}"
        );
        assert!(
            feature(&fs, "audhello").is_none(),
            "the binary itself is not a dependency"
        );
    }

    // Go: the toolchain's stdlib; exactly the stdlib records whose ranges cover it.
    let stdlib = feature(&fs, "stdlib").unwrap_or_else(|| panic!("no Go stdlib in {v}"));
    assert_eq!(
        stdlib["Version"]
            .as_str()
            .map(|s| s.trim_start_matches("go")),
        Some(go_version.as_str())
    );
    let mut expected = Vec::new();
    let mut zip =
        zip::ZipArchive::new(std::fs::File::open(data_dir().join("Go-stdlib.zip")).expect("zip"))
            .expect("zip");
    for i in 0..zip.len() {
        let mut e = zip.by_index(i).expect("entry");
        let mut text = String::new();
        e.read_to_string(&mut text).expect("read");
        let rec: Value = serde_json::from_str(&text).expect("record");
        if rec.get("withdrawn").is_none() && go_affected(&rec, &go_version) {
            expected.push(rec["id"].as_str().unwrap_or_default().to_string());
        }
    }
    assert!(
        !expected.is_empty(),
        "Go {go_version} is covered by stdlib records"
    );
    let mut got = vuln_names(stdlib);
    got.sort();
    expected.sort();
    assert_eq!(got, expected, "Go {go_version}'s stdlib advisories");
    let go_layer = img.blobs.last().expect("layers");
    assert_eq!(stdlib["AddedBy"], go_layer.as_str());

    // Without ?vulnerabilities=true, features come without their vulnerabilities (Quay).
    let (_, plain) = c.api(
        "GET",
        &format!(
            "/api/v1/repository/scan/apps/manifest/{}/security",
            img.digest
        ),
        None,
    );
    assert!(
        features(&plain)
            .iter()
            .all(|f| f.get("Vulnerabilities").is_none())
    );
    assert_eq!(features(&plain).len(), fs.len());
}

/// The installed database of an Alpine docker-save archive's only layer, and that layer.
fn alpine_layer(name: &str) -> (Vec<u8>, Vec<(String, String, String)>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../berth-scan/tests/data/index")
        .join(name);
    let gz = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut outer = tar::Archive::new(flate2::read::GzDecoder::new(&gz[..]));
    let mut layer = None;
    for e in outer.entries().expect("entries") {
        let mut e = e.expect("entry");
        let p = e.path().expect("path").to_string_lossy().to_string();
        if p.ends_with("layer.tar") {
            let mut b = Vec::new();
            e.read_to_end(&mut b).expect("layer");
            layer = Some(b);
        }
    }
    let layer = layer.expect("a layer.tar in the archive");
    // The packages, read from lib/apk/db/installed here (P:, V:, o:).
    let mut pkgs = Vec::new();
    let mut inner = tar::Archive::new(&layer[..]);
    for e in inner.entries().expect("entries") {
        let mut e = e.expect("entry");
        if e.path()
            .expect("path")
            .to_string_lossy()
            .trim_start_matches("./")
            == "lib/apk/db/installed"
        {
            let mut text = String::new();
            e.read_to_string(&mut text).expect("db");
            for stanza in text.split("\n\n") {
                let field = |k: &str| {
                    stanza
                        .lines()
                        .find_map(|l| l.strip_prefix(k))
                        .unwrap_or("")
                        .to_string()
                };
                if !field("P:").is_empty() {
                    pkgs.push((field("P:"), field("V:"), field("o:")));
                }
            }
        }
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&layer).expect("gzip");
    (gz.finish().expect("gzip"), pkgs)
}

#[test]
fn alpine_images_list_their_packages_and_match_by_origin() {
    let tmp = tempfile::tempdir().expect("tmp");
    // An Alpine v3.11 record in the osv.dev format, keyed by the source package (origin).
    let osv = tmp.path().join("alpine");
    std::fs::create_dir_all(&osv).expect("dir");
    std::fs::write(
        osv.join("ALPINE-CVE-2020-1967.json"),
        serde_json::to_vec(&json!({
            "id": "ALPINE-CVE-2020-1967", "modified": "2024-01-01T00:00:00Z",
            "summary": "openssl: SSL_check_chain NULL dereference",
            "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H"}],
            "affected": [{"package": {"ecosystem": "Alpine:v3.11", "name": "openssl"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.1.1g-r0"}]}]}]
        }))
        .expect("json"),
    )
    .expect("record");
    let b = Berth::start_with_env(&[("BERTH_SECURITY_SCANNER_OSV_SOURCES", &sources_env(&[&osv]))]);
    let c = Client::new(&b);
    for (file, os_version) in [
        ("alpine-310.tar.gz", "3.10.4"),
        ("alpine-311.tar.gz", "3.11.5"),
    ] {
        let (layer, pkgs) = alpine_layer(file);
        assert_eq!(pkgs.len(), 14, "{file} holds 14 packages");
        let img = c.image("scan/alpine", os_version, file, &[&layer]);
        wait_records(&c, "scan/alpine", &img.digest, 1);
        let v = report(&c, "scan/alpine", &img.digest);
        assert_eq!(v["status"], "scanned", "{v}");
        assert_eq!(v["Berth"]["OperatingSystem"]["Name"], "alpine");
        assert_eq!(v["Berth"]["OperatingSystem"]["Version"], os_version);
        let mut got: Vec<(String, String)> = features(&v)
            .iter()
            .map(|f| {
                (
                    f["Name"].as_str().unwrap_or("").to_string(),
                    f["Version"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        let mut want: Vec<(String, String)> = pkgs
            .iter()
            .map(|(p, v, _)| (p.clone(), v.clone()))
            .collect();
        got.sort();
        want.sort();
        assert_eq!(got, want, "{file}: exactly its installed packages");
        for f in features(&v) {
            assert_eq!(f["AddedBy"], img.blobs[1].as_str());
            let origin = pkgs
                .iter()
                .find(|(p, _, _)| f["Name"] == p.as_str())
                .map(|(_, _, o)| o.clone())
                .unwrap_or_default();
            let vulnerable = os_version.starts_with("3.11") && origin == "openssl";
            assert_eq!(
                vuln_names(&f) == vec!["ALPINE-CVE-2020-1967".to_string()],
                vulnerable,
                "{file}: {f}"
            );
            if vulnerable {
                assert_eq!(f["Vulnerabilities"][0]["FixedBy"], "1.1.1g-r0");
                assert_eq!(f["Vulnerabilities"][0]["Severity"], "High");
                assert_eq!(f["NamespaceName"], "Alpine:v3.11");
            }
        }
    }
}

#[test]
fn later_layers_upgrade_and_remove_packages() {
    let b = Berth::start_with_env(&[(
        "BERTH_SECURITY_SCANNER_OSV_SOURCES",
        &sources_env(&[&data_dir()]),
    )]);
    let c = Client::new(&b);
    let site = "usr/local/lib/python3.11/site-packages";
    let metadata = b"Metadata-Version: 2.1\nName: requests\nVersion: 2.30.0\n\nbody\n".to_vec();
    let lodash = |v: &str| format!(r#"{{"name": "lodash", "version": "{v}"}}"#).into_bytes();
    let old = lodash("4.17.20");
    let new = lodash("4.17.21");
    let p1 = format!("{site}/requests-2.30.0.dist-info/METADATA");
    let l1 = layer_from(&[
        (p1.as_str(), &metadata),
        ("srv/app/node_modules/lodash/package.json", &old),
    ]);
    // The second layer removes the dist-info directory (a whiteout) and upgrades lodash.
    let wh = format!("{site}/.wh.requests-2.30.0.dist-info");
    let l2 = layer_from(&[
        (wh.as_str(), b""),
        ("srv/app/node_modules/lodash/package.json", &new),
    ]);
    let base = c.image("scan/layers", "base", "base", &[&l1]);
    let img = c.image("scan/layers", "upgraded", "up", &[&l1, &l2]);
    wait_records(&c, "scan/layers", &img.digest, 170);

    let v = report(&c, "scan/layers", &base.digest);
    let fs = features(&v);
    assert!(
        vuln_names(feature(&fs, "requests").expect("requests in the base"))
            .contains(&"PYSEC-2023-74".to_string())
    );
    assert_eq!(
        feature(&fs, "lodash").expect("lodash")["Version"],
        "4.17.20"
    );

    let v = report(&c, "scan/layers", &img.digest);
    assert_eq!(v["status"], "scanned");
    let fs = features(&v);
    assert!(feature(&fs, "requests").is_none(), "whited out: {v}");
    let l = feature(&fs, "lodash").expect("lodash");
    assert_eq!(l["Version"], "4.17.21", "matched at its new version");
    assert_eq!(
        l["AddedBy"],
        img.blobs[2].as_str(),
        "added by the upgrading layer"
    );
    assert!(vuln_names(l).is_empty(), "4.17.21 is fixed: {l}");
}

#[test]
fn statuses_say_what_the_scanner_cannot() {
    // No data configured: packages are listed, and the report says it cannot name
    // vulnerabilities (never a silent "nothing found").
    let b = Berth::start_with_env(&[("BERTH_SECURITY_SCANNER_V4_INDEX_MAX_LAYER_SIZE", "4K")]);
    let c = Client::new(&b);
    let small = layer_from(&[(
        "usr/lib/python3/site-packages/six-1.16.0.dist-info/METADATA",
        b"Name: six\nVersion: 1.16.0\n",
    )]);
    let img = c.image("scan/status", "small", "s", &[&small]);
    let v = report(&c, "scan/status", &img.digest);
    assert_eq!(v["status"], "scanned", "{v}");
    assert_eq!(
        feature(&features(&v), "six").expect("six")["DataAvailable"],
        false
    );
    assert!(
        v["Berth"]["Notes"]
            .to_string()
            .contains("SECURITY_SCANNER_OSV_SOURCES"),
        "{v}"
    );

    // A layer over SECURITY_SCANNER_V4_INDEX_MAX_LAYER_SIZE.
    let big_file = vec![b'x'; 8192];
    let big = layer_from(&[("srv/big.bin", &big_file)]);
    let img = c.image("scan/status", "big", "b", &[&big]);
    assert_eq!(
        report(&c, "scan/status", &img.digest)["status"],
        "manifest_layer_too_large"
    );

    // A corrupt layer (gzip of nothing tar-like, truncated): failed, with the reason.
    let mut bad = layer_from(&[("a", b"hello")]);
    bad.truncate(bad.len() / 2);
    let img = c.image("scan/status", "bad", "bad", &[&bad]);
    let v = report(&c, "scan/status", &img.digest);
    assert_eq!(v["status"], "failed", "{v}");
    assert!(v["data"].is_null());
    assert!(
        v["Berth"]["Notes"]
            .to_string()
            .contains("could not be indexed"),
        "{v}"
    );

    // An artifact with no image layers: unsupported.
    let cfg = br#"{}"#;
    let cd = c.blob("scan/status", cfg);
    let blob = c.blob("scan/status", b"chart bytes");
    let art = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.example.thing",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": cd, "size": 2},
        "layers": [{"mediaType": "application/vnd.example.thing.layer", "digest": blob, "size": 11}],
    }))
    .expect("json");
    let (s, _) = c.put_manifest(
        "scan/status",
        "art",
        "application/vnd.oci.image.manifest.v1+json",
        &art,
    );
    assert_eq!(s, 201);
    let d = common::client::sha(&art);
    assert_eq!(report(&c, "scan/status", &d)["status"], "unsupported");

    // An index answers for its platforms.
    let child = c.image("scan/status", "", "child", &[&small]);
    let idx = c.index("scan/status", "multi", &[&child]);
    let v = report(&c, "scan/status", &idx.digest);
    assert_eq!(v["status"], "scanned", "{v}");
    assert_eq!(v["Berth"]["Platforms"][0]["digest"], child.digest.as_str());
    assert!(feature(&features(&v), "six").is_some());

    // Unknown manifests are 404; so is everything with the scanner off.
    let (s, _) = c.api(
        "GET",
        &format!(
            "/api/v1/repository/scan/status/manifest/sha256:{}/security",
            "0".repeat(64)
        ),
        None,
    );
    assert_eq!(s, 404);
    drop(b);
    let off = Berth::start_with_env(&[("BERTH_FEATURE_SECURITY_SCANNER", "false")]);
    let c = Client::new(&off);
    let img = c.image("scan/off", "v1", "off", &[&small]);
    let (s, v) = c.api(
        "GET",
        &format!(
            "/api/v1/repository/scan/off/manifest/{}/security",
            img.digest
        ),
        None,
    );
    assert_eq!(s, 404, "{v}");
}

#[test]
fn vulndb_import_is_incremental_and_drops_withdrawn_records() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    let src = tmp.path().join("osv");
    std::fs::create_dir_all(&src).expect("dir");
    let record = |modified: &str, withdrawn: bool| {
        let mut r = json!({
            "id": "TEST-2026-0001", "modified": modified, "summary": "s",
            "affected": [{"package": {"ecosystem": "PyPI", "name": "six"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.0"}]}]}]
        });
        if withdrawn {
            r["withdrawn"] = json!("2026-02-01T00:00:00Z");
        }
        serde_json::to_vec(&r).expect("json")
    };
    std::fs::write(
        src.join("TEST-2026-0001.json"),
        record("2026-01-01T00:00:00Z", false),
    )
    .expect("w");
    std::fs::copy(
        data_dir().join("PYSEC-2023-74.json"),
        src.join("PYSEC-2023-74.json"),
    )
    .expect("copy");
    let import = || {
        run_ok(
            Command::new(common::berth_bin())
                .args(["vulndb", "--data-dir"])
                .arg(&data)
                .arg("import")
                .arg(&src),
        )
    };
    let first = import();
    assert!(
        first.contains("2 records read, 2 written, 0 unchanged"),
        "{first}"
    );
    let again = import();
    assert!(
        again.contains("2 records read, 0 written, 2 unchanged"),
        "{again}"
    );
    std::fs::write(
        src.join("TEST-2026-0001.json"),
        record("2026-01-02T00:00:00Z", false),
    )
    .expect("w");
    let changed = import();
    assert!(changed.contains("1 written, 1 unchanged"), "{changed}");
    std::fs::write(
        src.join("TEST-2026-0001.json"),
        record("2026-02-01T00:00:00Z", true),
    )
    .expect("w");
    let withdrawn = import();
    assert!(withdrawn.contains("1 removed"), "{withdrawn}");
    let status = run_ok(
        Command::new(common::berth_bin())
            .args(["vulndb", "--data-dir"])
            .arg(&data)
            .arg("status"),
    );
    assert!(status.contains("1 vulnerability records"), "{status}");
    // A source that cannot be read fails the command, naming it.
    let out = Command::new(common::berth_bin())
        .args(["vulndb", "--data-dir"])
        .arg(&data)
        .args(["import", "/nonexistent/all.zip"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/all.zip"));
}

/// A webhook receiver on 127.0.0.1 that keeps every JSON body it is sent.
fn receiver() -> (String, std::sync::Arc<std::sync::Mutex<Vec<Value>>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let mut buf = Vec::new();
            let mut chunk = [0u8; 8192];
            // Headers, then Content-Length bytes of body.
            let body = loop {
                let Ok(n) = s.read(&mut chunk) else {
                    break None;
                };
                if n == 0 {
                    break None;
                }
                buf.extend_from_slice(&chunk[..n]);
                let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                    continue;
                };
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                if buf.len() >= end + 4 + len {
                    break Some(buf[end + 4..end + 4 + len].to_vec());
                }
            };
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            if let Some(b) = body
                && let Ok(v) = serde_json::from_slice::<Value>(&b)
            {
                keep.lock().expect("lock").push(v);
            }
        }
    });
    (url, got)
}

fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(t) = f() {
            return t;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn record(
    id: &str,
    modified: &str,
    package: &str,
    fixed: &str,
    vector: &str,
    alias: &str,
) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "id": id, "modified": modified, "summary": format!("{id} in {package}"),
        "aliases": [alias],
        "severity": [{"type": "CVSS_V3", "score": vector}],
        "affected": [{"package": {"ecosystem": "PyPI", "name": package},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}]}]
    }))
    .expect("json")
}

#[test]
fn notifications_policies_search_and_sboms() {
    let tmp = tempfile::tempdir().expect("tmp");
    let extra = tmp.path().join("extra");
    std::fs::create_dir_all(&extra).expect("dir");
    let b = Berth::start_with_env(&[
        (
            "BERTH_SECURITY_SCANNER_OSV_SOURCES",
            &sources_env(&[&data_dir()]),
        ),
        ("BERTH_FEATURE_SECURITY_NOTIFICATIONS", "true"),
        ("BERTH_SSRF_ALLOWED_HOSTS", "[127.0.0.1]"),
    ]);
    let c = Client::new(&b);
    let (s, v) = c.api(
        "POST",
        "/api/v1/organization/",
        Some(json!({"name": "sec"})),
    );
    assert!(s == 201 || s == 200, "{s} {v}");
    let (s, v) = c.api(
        "POST",
        "/api/v1/repository",
        Some(json!({"namespace": "sec", "repository": "app", "visibility": "private", "description": ""})),
    );
    assert_eq!(s, 201, "{v}");
    let (hook, got) = receiver();
    let (s, v) = c.api(
        "POST",
        "/api/v1/repository/sec/app/notification/",
        Some(json!({"event": "vulnerability_found", "method": "webhook", "config": {"url": hook}, "eventConfig": {"level": 1}, "title": "High and above"})),
    );
    assert_eq!(s, 201, "{v}");

    let lodash = br#"{"name": "lodash", "version": "4.17.20"}"#;
    let requests = b"Metadata-Version: 2.1\nName: requests\nVersion: 2.30.0\n";
    let js = layer_from(&[("srv/app/node_modules/lodash/package.json", lodash)]);
    let py = layer_from(&[(
        "usr/lib/python3/site-packages/requests-2.30.0.dist-info/METADATA",
        requests,
    )]);
    let img = c.image("sec/app", "v1", "v1", &[&js, &py]);
    wait_records(&c, "sec/app", &img.digest, 170);

    // The first match tells what reaches NOTIFICATION_MIN_SEVERITY_ON_NEW_INDEX (High):
    // lodash's High advisory, not requests' (no severity in its record).
    let first = wait_for("a vulnerability_found delivery", || {
        got.lock().expect("lock").first().cloned()
    });
    assert_eq!(
        first["vulnerability"]["id"], "GHSA-35jh-r3h4-6jhm",
        "{first}"
    );
    assert_eq!(first["vulnerability"]["priority"], "High");
    assert_eq!(first["vulnerability"]["has_fix"], true);
    assert_eq!(first["tags"], json!(["v1"]));
    assert_eq!(first["repository"], "sec/app");
    assert_eq!(first["vulnerable_index_report_created"], "true");

    // New data makes the stored image vulnerable again: a Critical and a Low record for
    // requests, imported while the server runs. The notification (level 1: High and above)
    // hears of the Critical one only.
    std::fs::write(
        extra.join("TEST-2026-0002.json"),
        record(
            "TEST-2026-0002",
            "2026-03-01T00:00:00Z",
            "requests",
            "2.32.0",
            "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
            "CVE-2026-0002",
        ),
    )
    .expect("w");
    std::fs::write(
        extra.join("TEST-2026-0003.json"),
        record(
            "TEST-2026-0003",
            "2026-03-01T00:00:00Z",
            "requests",
            "2.32.0",
            "CVSS:3.1/AV:L/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N",
            "CVE-2026-0003",
        ),
    )
    .expect("w");
    let mut cmd = Command::new(common::berth_bin());
    cmd.args(["vulndb", "--data-dir"])
        .arg(&b.data_dir)
        .arg("import")
        .arg(&extra);
    for (k, v) in b.envs() {
        cmd.env(k, v);
    }
    let out = run_ok(&mut cmd);
    assert!(out.contains("2 written"), "{out}");
    let second = wait_for("the new Critical vulnerability's delivery", || {
        got.lock()
            .expect("lock")
            .iter()
            .find(|v| v["vulnerability"]["id"] == "TEST-2026-0002")
            .cloned()
    });
    assert_eq!(second["vulnerability"]["priority"], "Critical");
    assert!(second.get("vulnerable_index_report_created").is_none());
    std::thread::sleep(Duration::from_secs(3));
    let ids: Vec<Value> = got
        .lock()
        .expect("lock")
        .iter()
        .map(|v| v["vulnerability"]["id"].clone())
        .collect();
    assert_eq!(
        ids,
        vec![json!("GHSA-35jh-r3h4-6jhm"), json!("TEST-2026-0002")],
        "each told once, Low filtered"
    );

    // Registry-wide search, by alias and by package, limited to what the caller may read.
    let (s, v) = c.api(
        "GET",
        "/api/v1/vulnerabilities?vulnerability=CVE-2021-23337",
        None,
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["results"][0]["repository"], "sec/app", "{v}");
    assert_eq!(v["results"][0]["tags"], json!(["v1"]));
    assert_eq!(
        v["results"][0]["vulnerability"]["id"],
        "GHSA-35jh-r3h4-6jhm"
    );
    let (_, v) = c.api(
        "GET",
        "/api/v1/vulnerabilities?package=requests&version=2.30.0",
        None,
    );
    assert_eq!(
        v["results"][0]["manifest_digest"],
        img.digest.as_str(),
        "{v}"
    );
    assert_eq!(v["results"][0]["packages"][0]["kind"], "python");
    let anon = reqwest::blocking::Client::new()
        .get(b.url("/api/v1/vulnerabilities?package=requests"))
        .send()
        .expect("anon");
    let anon: Value = anon.json().expect("json");
    assert_eq!(
        anon["results"],
        json!([]),
        "a private repository is not shown to anonymous callers"
    );
    let (s, _) = c.api("GET", "/api/v1/vulnerabilities", None);
    assert_eq!(s, 400);

    // Policies: pulls of images with High+ vulnerabilities are refused, with the reason.
    let (s, v) = c.api(
        "PUT",
        "/api/v1/organization/sec/securitypolicy",
        Some(json!({"min_severity": "High"})),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["block_pull"], true);
    wait_for("the match to include the new record", || {
        let r = report(&c, "sec/app", &img.digest);
        (r.to_string().contains("TEST-2026-0002")).then_some(())
    });
    let pull = |c: &Client| {
        c.req("GET", "/v2/sec/app/manifests/v1")
            .header("Accept", "application/vnd.oci.image.manifest.v1+json")
            .send()
            .expect("pull")
    };
    let r = pull(&c);
    assert_eq!(r.status().as_u16(), 403);
    let body: Value = r.json().expect("json");
    assert_eq!(body["errors"][0]["code"], "DENIED", "{body}");
    let msg = body["errors"][0]["message"].as_str().unwrap_or("");
    assert!(
        msg.contains("security policy of sec")
            && msg.contains("GHSA-35jh-r3h4-6jhm")
            && msg.contains("TEST-2026-0002"),
        "{msg}"
    );
    // Allowing the ids (an alias counts) lets it through.
    let (s, _) = c.api(
        "PUT",
        "/api/v1/organization/sec/securitypolicy",
        Some(json!({"min_severity": "High", "allowlist": ["CVE-2021-23337", "TEST-2026-0002"]})),
    );
    assert_eq!(s, 200);
    assert_eq!(pull(&c).status().as_u16(), 200);
    // Pushes: with block_push, a push is indexed before it is accepted.
    let (s, _) = c.api(
        "PUT",
        "/api/v1/organization/sec/securitypolicy",
        Some(json!({"min_severity": "Critical", "block_pull": false, "block_push": true})),
    );
    assert_eq!(s, 200);
    let py2 = layer_from(&[("opt/venv/lib/requests-2.30.0.dist-info/METADATA", requests)]);
    let cfg = c.blob(
        "sec/app",
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#,
    );
    let layer = c.blob("sec/app", &py2);
    let m = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg, "size": 80},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer, "size": py2.len()}],
    }))
    .expect("json");
    let (s, body) = c.put_manifest(
        "sec/app",
        "v2",
        "application/vnd.oci.image.manifest.v1+json",
        &m,
    );
    assert_eq!(s, 403, "{body}");
    assert!(
        body.contains("push refused") && body.contains("TEST-2026-0002"),
        "{body}"
    );
    let clean = c.image("sec/app", "clean", "clean", &[&js]);
    assert!(!clean.digest.is_empty());
    let (_, logs) = c.api("GET", "/api/v1/repository/sec/app/logs", None);
    let kinds: Vec<&str> = logs["logs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l["kind"].as_str())
        .collect();
    assert!(kinds.contains(&"security_policy_refuse_pull"), "{kinds:?}");
    assert!(kinds.contains(&"security_policy_refuse_push"), "{kinds:?}");
    let (s, _) = c.api("DELETE", "/api/v1/organization/sec/securitypolicy", None);
    assert_eq!(s, 204);
    let (s, _) = c.api("GET", "/api/v1/organization/sec/securitypolicy", None);
    assert_eq!(s, 404);

    // SBOMs: SPDX and CycloneDX, and stored as the image's referrer.
    let r = c
        .req(
            "GET",
            &format!("/api/v1/repository/sec/app/manifest/{}/sbom", img.digest),
        )
        .send()
        .expect("sbom");
    assert_eq!(r.headers()["content-type"], "application/spdx+json");
    let spdx: Value = r.json().expect("json");
    assert_eq!(spdx["spdxVersion"], "SPDX-2.3");
    let purls: Vec<String> = spdx["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| {
            p["externalRefs"][0]["referenceLocator"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    assert!(
        purls.contains(&"pkg:npm/lodash@4.17.20".to_string()),
        "{purls:?}"
    );
    assert!(
        purls.contains(&"pkg:pypi/requests@2.30.0".to_string()),
        "{purls:?}"
    );
    let (_, cdx) = c.api(
        "GET",
        &format!(
            "/api/v1/repository/sec/app/manifest/{}/sbom?format=cyclonedx-json",
            img.digest
        ),
        None,
    );
    assert_eq!(cdx["bomFormat"], "CycloneDX");
    assert_eq!(cdx["components"].as_array().map(Vec::len), Some(2));
    let (s, stored) = c.api(
        "POST",
        &format!("/api/v1/repository/sec/app/manifest/{}/sbom", img.digest),
        None,
    );
    assert_eq!(s, 201, "{stored}");
    let (_, refs) = c.api(
        "GET",
        &format!("/v2/sec/app/referrers/{}", img.digest),
        None,
    );
    assert_eq!(
        refs["manifests"][0]["artifactType"], "application/spdx+json",
        "{refs}"
    );
    assert_eq!(refs["manifests"][0]["digest"], stored["digest"]);
    let (s, _) = c.api(
        "GET",
        &format!(
            "/api/v1/repository/sec/app/manifest/{}/sbom?format=xml",
            img.digest
        ),
        None,
    );
    assert_eq!(s, 400);

    // Metrics: the index, the data and the matched manifests.
    let m = c.metrics();
    for line in [
        "berth_scan_layers{state=\"indexed\"}",
        "berth_vuln_records 172",
        "berth_scan_manifests_vulnerable{worst=\"Critical\"}",
        "berth_scan_policy_refusals_total{action=\"pull\"} 1",
        "berth_scan_layers_indexed_total{outcome=\"indexed\"}",
    ] {
        assert!(m.contains(line), "{line} not in the metrics:\n{m}");
    }
}

/// The `(name, version, source name, source version)` of each installed package of a dpkg
/// status file, read here independently of the indexer.
fn dpkg_installed(status: &str) -> Vec<(String, String, String, String)> {
    let mut out = Vec::new();
    for stanza in status.split("\n\n") {
        let field = |k: &str| {
            stanza
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{k}: ")))
                .map(str::to_string)
        };
        let (Some(name), Some(version), Some(st)) =
            (field("Package"), field("Version"), field("Status"))
        else {
            continue;
        };
        if !st.ends_with(" installed") {
            continue;
        }
        let (sname, sver) = match field("Source") {
            Some(s) => match s.split_once(" (") {
                Some((n, v)) => (n.to_string(), v.trim_end_matches(')').to_string()),
                None => (s, version.clone()),
            },
            None => (name.clone(), version.clone()),
        };
        out.push((name, version, sname, sver));
    }
    out
}

#[test]
fn a_debian_rootfs_is_matched_by_source_package() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/debian");
    let status =
        std::fs::read_to_string(fixtures.join("bookworm-essential.status")).expect("status");
    let os_release = std::fs::read(fixtures.join("bookworm-os-release")).expect("os-release");
    let installed = dpkg_installed(&status);
    assert_eq!(installed.len(), 69, "mmdebstrap's essential set");
    let libc = installed
        .iter()
        .find(|p| p.0 == "libc6")
        .expect("libc6")
        .clone();
    let bash = installed
        .iter()
        .find(|p| p.0 == "bash")
        .expect("bash")
        .clone();
    assert_ne!(
        bash.1, bash.3,
        "bash's binary version differs from its source's"
    );

    // A rootfs layer as mmdebstrap makes it: `./` prefixes, etc/os-release a symlink.
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut t = tar::Builder::new(gz);
    for (path, bytes) in [
        ("./usr/lib/os-release", &os_release[..]),
        ("./var/lib/dpkg/status", status.as_bytes()),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        t.append_data(&mut h, path, bytes).expect("entry");
    }
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    h.set_mode(0o777);
    t.append_link(&mut h, "./etc/os-release", "../usr/lib/os-release")
        .expect("symlink");
    let layer = t.into_inner().expect("tar").finish().expect("gzip");

    // Records in the Debian feed's format: keyed by source package, in `Debian:12`.
    let tmp = tempfile::tempdir().expect("tmp");
    let deb = |id: &str, package: &str, fixed: &str| {
        serde_json::to_vec(&json!({
            "id": id, "modified": "2026-01-01T00:00:00Z", "summary": id,
            "affected": [{"package": {"ecosystem": "Debian:12", "name": package},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}]}]
        }))
        .expect("json")
    };
    for (id, package, fixed) in [
        // glibc above the installed 2.36-9+deb12uN: every binary of glibc is affected.
        ("DEBIAN-CVE-2026-0001", "glibc", "2.36-9+deb12u999"),
        // glibc fixed long ago: nothing.
        ("DEBIAN-CVE-2026-0002", "glibc", "2.36-9+deb12u1"),
        // bash fixed in a source version after 5.2.15-2: compared with the source version.
        ("DEBIAN-CVE-2026-0003", "bash", "5.2.15-3"),
        // Keyed by a binary name: the feed never does, so it names nothing.
        ("DEBIAN-CVE-2026-0004", "libc6", "9:0"),
    ] {
        std::fs::write(
            tmp.path().join(format!("{id}.json")),
            deb(id, package, fixed),
        )
        .expect("w");
    }
    let b = Berth::start_with_env(&[(
        "BERTH_SECURITY_SCANNER_OSV_SOURCES",
        &sources_env(&[tmp.path()]),
    )]);
    let c = Client::new(&b);
    let img = c.image("scan/debian", "bookworm", "deb", &[&layer]);
    wait_records(&c, "scan/debian", &img.digest, 4);
    let v = report(&c, "scan/debian", &img.digest);
    assert_eq!(v["status"], "scanned", "{v}");
    assert_eq!(v["Berth"]["OperatingSystem"]["Name"], "debian");
    assert_eq!(v["Berth"]["OperatingSystem"]["Version"], "12");
    let fs = features(&v);
    let mut got: Vec<(String, String)> = fs
        .iter()
        .map(|f| {
            (
                f["Name"].as_str().unwrap_or("").to_string(),
                f["Version"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let mut want: Vec<(String, String)> = installed
        .iter()
        .map(|p| (p.0.clone(), p.1.clone()))
        .collect();
    got.sort();
    want.sort();
    assert_eq!(
        got, want,
        "every installed package of the status file, at its version"
    );
    for f in &fs {
        let p = installed
            .iter()
            .find(|p| f["Name"] == p.0.as_str())
            .expect("installed");
        assert_eq!(f["NamespaceName"], "Debian:12");
        let mut expect = Vec::new();
        if p.2 == "glibc" {
            expect.push("DEBIAN-CVE-2026-0001".to_string());
        }
        if p.2 == "bash" {
            expect.push("DEBIAN-CVE-2026-0003".to_string());
        }
        assert_eq!(vuln_names(f), expect, "{}: {f}", p.0);
    }
    let libc_f = feature(&fs, "libc6").expect("libc6");
    assert_eq!(libc_f["Version"], libc.1.as_str());
    assert_eq!(libc_f["SourceName"], "glibc");
    assert_eq!(libc_f["Vulnerabilities"][0]["FixedBy"], "2.36-9+deb12u999");
}

/// Serves `body` at every path on 127.0.0.1 (a plain HTTP file server for one file).
fn serve_file(body: Vec<u8>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!(
        "http://{}/osv/Go/all.zip",
        listener.local_addr().expect("addr")
    );
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/zip\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(&body);
        }
    });
    url
}

#[test]
fn a_source_is_downloaded_through_the_outbound_guard() {
    let zip = std::fs::read(data_dir().join("Go-stdlib.zip")).expect("zip");
    let url = serve_file(zip);
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    let import = |allowed: Option<&str>| {
        let mut cmd = Command::new(common::berth_bin());
        cmd.args(["vulndb", "--data-dir"])
            .arg(&data)
            .args(["import", &url]);
        if let Some(a) = allowed {
            cmd.env("BERTH_SSRF_ALLOWED_HOSTS", a);
        }
        cmd.output().expect("run")
    };
    // A loopback address is refused unless SSRF_ALLOWED_HOSTS lists it.
    let refused = import(None);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains(&url) && err.contains("SSRF_ALLOWED_HOSTS"),
        "{err}"
    );
    let ok = import(Some("[127.0.0.1]"));
    let out = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "{out} {}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(out.contains("167 records read, 167 written"), "{out}");
    let status = run_ok(
        Command::new(common::berth_bin())
            .args(["vulndb", "--data-dir"])
            .arg(&data)
            .arg("status"),
    );
    assert!(status.contains(&format!("{url}: 167 records")), "{status}");
}
