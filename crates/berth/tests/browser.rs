//! The web UI in a real browser: Debian's Chromium driven by playwright-core (tests/browser/
//! ui.mjs) against a real `berth`, with an image pushed by podman and a repository holding
//! 100,000 tags (`UI_TEST_TAGS` to change it). Needs what ./scripts/test.sh installs: the
//! `chromium` package, and playwright-core and axe-core from npm in `UI_TEST_TOOLS`.
//! With `UI_TEST_SCREENSHOTS=DIR` it also writes the screenshots of docs/ui/.

mod common;

use common::Berth;
use common::client::Client;
use common::images::{Layout, OCI_MANIFEST, Rng, require_tool, run};
use serde_json::json;
use std::path::PathBuf;
use std::process::Command;

const USER: &str = "alice";
const PASSWORD: &str = "alice-browser-pw";

fn ui_tools() -> PathBuf {
    let dir = std::env::var_os("UI_TEST_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            panic!(
                "UI_TEST_TOOLS is not set: run ./scripts/test.sh, which installs Chromium and \
             playwright-core + axe-core (npm) and points UI_TEST_TOOLS at them"
            )
        });
    assert!(
        dir.join("node_modules/playwright-core").is_dir()
            && dir.join("node_modules/axe-core").is_dir(),
        "{} lacks node_modules/playwright-core or axe-core: run ./scripts/test.sh",
        dir.display()
    );
    dir
}

/// Pushes `n` tags `t000000…` of one small image to `repo`, 80 per push, the last one
/// after the others (so it is the newest).
fn many_tags(c: &Client, repo: &str, n: usize) {
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let layer = b"one small layer".to_vec();
    let cd = c.blob(repo, config);
    let ld = c.blob(repo, &layer);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld, "size": layer.len()}],
    }))
    .expect("json");
    // A push by digest names many tags at once (`?tag=`, distribution-spec 1.1): 100,000 tags
    // take 1,250 requests, not 100,000.
    let digest = common::client::sha(&manifest);
    let put = |range: std::ops::Range<usize>| {
        let q: Vec<String> = range.clone().map(|i| format!("tag=t{i:06}")).collect();
        let r = c
            .req(
                "PUT",
                &format!("/v2/{repo}/manifests/{digest}?{}", q.join("&")),
            )
            .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
            .body(manifest.clone())
            .send()
            .expect("manifest put");
        assert_eq!(r.status().as_u16(), 201, "tags {range:?}");
    };
    // (The answer carries one OCI-Tag header per tag; clients accept about 100 headers.)
    const PER_PUSH: usize = 80;
    let batches: Vec<std::ops::Range<usize>> = (0..n.saturating_sub(1))
        .step_by(PER_PUSH)
        .map(|a| a..(a + PER_PUSH).min(n - 1))
        .collect();
    let threads = 4;
    std::thread::scope(|s| {
        for k in 0..threads {
            let put = &put;
            let batches = &batches;
            s.spawn(move || {
                for b in batches.iter().skip(k).step_by(threads) {
                    put(b.clone());
                }
            });
        }
    });
    // The last tag is the newest.
    std::thread::sleep(std::time::Duration::from_millis(5));
    put(n - 1..n);
}

#[test]
fn a_person_manages_the_registry_in_a_real_browser() {
    let tools = ui_tools();
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&chromium).is_file(),
        "{chromium} not found: run ./scripts/test.sh (it installs Debian's chromium)"
    );
    let node = require_tool("node");
    let vulndb = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/vulndb");
    let b = Berth::start_with_env(&[(
        "BERTH_SECURITY_SCANNER_OSV_SOURCES",
        &format!("['{}']", vulndb.display()),
    )]);
    let c = Client::new(&b);
    let (s, v) = c.api(
        "POST",
        "/api/v1/superuser/users/",
        Some(json!({"username": USER, "password": PASSWORD})),
    );
    assert_eq!(s, 200, "{v}");

    // alice pushes an image with podman, as on a laptop.
    // Lowercase: podman names an image pulled from `oci:DIR` after DIR.
    let tmp = tempfile::Builder::new()
        .prefix(&format!("berth-ui-{}", Rng::new().word()))
        .rand_bytes(0)
        .tempdir()
        .expect("tempdir");
    let home = tmp.path().join("podman");
    for d in ["root", "runroot", "tmp"] {
        std::fs::create_dir_all(home.join(d)).expect("dirs");
    }
    std::fs::write(home.join("auth.json"), br#"{"auths":{}}"#).expect("auth.json");
    std::fs::write(
        home.join("policy.json"),
        br#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
    )
    .expect("policy.json");
    let podman = || {
        let mut cmd = Command::new(require_tool("podman"));
        cmd.arg("--root")
            .arg(home.join("root"))
            .arg("--runroot")
            .arg(home.join("runroot"))
            .arg("--tmpdir")
            .arg(home.join("tmp"))
            .args([
                "--storage-driver",
                "vfs",
                "--cgroup-manager",
                "cgroupfs",
                "--events-backend",
                "file",
            ])
            .env("TMPDIR", home.join("tmp"))
            .env("REGISTRY_AUTH_FILE", home.join("auth.json"));
        cmd
    };
    let layout_dir = tmp.path().join("layout");
    let mut layout = Layout::create(&layout_dir);
    let img = layout.image(&mut Rng::new(), "amd64", &[2048, 4096]);
    layout.tag(OCI_MANIFEST, &img.manifest, "1.0");
    let policy = format!("--signature-policy={}", home.join("policy.json").display());
    let pulled = run(podman().args([
        "pull",
        "--quiet",
        &policy,
        &format!("oci:{}:1.0", layout_dir.display()),
    ]));
    assert!(pulled.status.success(), "podman pull oci: {pulled:?}");
    let id = String::from_utf8_lossy(&pulled.stdout).trim().to_string();
    let target = format!("{}/{USER}/demo:1.0", b.host);
    assert!(run(podman().args(["tag", &id, &target])).status.success());
    assert!(
        run(podman().args([
            "login",
            "--tls-verify=false",
            "-u",
            USER,
            "-p",
            PASSWORD,
            &b.host
        ]))
        .status
        .success()
    );
    let pushed = run(podman().args(["push", "--tls-verify=false", &policy, &target]));
    assert!(pushed.status.success(), "podman push: {pushed:?}");

    let n: usize = std::env::var("UI_TEST_TAGS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let started = std::time::Instant::now();
    many_tags(&c, &format!("{USER}/many"), n);
    eprintln!(
        "seeded {n} tags in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // An image with a known-vulnerable package (npm lodash 4.17.20), for the Security views.
    let layer = common::images::gzip(&common::images::tar(&[(
        "srv/app/node_modules/lodash/package.json".to_string(),
        br#"{"name": "lodash", "version": "4.17.20"}"#.to_vec(),
    )]));
    let scanned = c.image(&format!("{USER}/scanned"), "1.0", "scanned", &[&layer]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let (_, v) = c.api(
            "GET",
            &format!(
                "/api/v1/repository/{USER}/scanned/manifest/{}/security?vulnerabilities=true",
                scanned.digest
            ),
            None,
        );
        if v.to_string().contains("GHSA-35jh-r3h4-6jhm") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the scan never finished: {v}"
        );
        std::thread::sleep(std::time::Duration::from_millis(250));
    }

    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser/ui.mjs");
    let mut cmd = Command::new(node);
    cmd.arg(&script)
        .env("BERTH_URL", &b.base)
        .env("CHROMIUM", &chromium)
        .env("UI_TOOLS", &tools)
        .env("USER_NAME", USER)
        .env("USER_PASSWORD", PASSWORD)
        .env("DEMO_REPO", format!("{USER}/demo"))
        .env("MANY_REPO", format!("{USER}/many"))
        .env("SCANNED_REPO", format!("{USER}/scanned"))
        .env("MANY_TAGS", n.to_string())
        .env("ADMIN_NAME", common::ADMIN_USER)
        .env("ADMIN_PASS", common::ADMIN_PASSWORD);
    if let Some(dir) = std::env::var_os("UI_TEST_SCREENSHOTS") {
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        cmd.env("SCREENSHOTS", dir);
    }
    let out = cmd.output().expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}");
    assert!(
        out.status.success(),
        "the browser run failed:\n{stderr}\n{stdout}\n--- server log\n{}",
        b.log()
    );
}
