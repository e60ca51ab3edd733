//! The README's examples, run as a newcomer would run them: every ```sh block of README.md, in
//! the order written, as one bash script (`set -euo pipefail`) against a fresh real `berth`, with
//! real podman, buildah, skopeo, curl and jq, in a scratch directory. The README writes
//! `127.0.0.1:5000` and `the-password-printed-at-first-start`; the test puts this server's address
//! and superuser password in their place and nothing else. A README example that stops working
//! fails this test.

mod common;

use common::images::require_tool;
use common::{ADMIN_PASSWORD, Berth};
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The ```sh blocks of a Markdown text, in order.
fn sh_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match &mut current {
            None if line.trim_end() == "```sh" => current = Some(String::new()),
            None => {}
            Some(_) if line.trim_end() == "```" => blocks.extend(current.take()),
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
        }
    }
    assert!(current.is_none(), "an unclosed ```sh block in README.md");
    blocks
}

/// containers-storage for podman and buildah in `dir`, with the vfs driver (no overlay mounts
/// needed as root in a test machine).
fn storage_conf(dir: &Path) -> std::path::PathBuf {
    let conf = dir.join("storage.conf");
    std::fs::write(
        &conf,
        format!(
            "[storage]\ndriver = \"vfs\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n",
            dir.join("graph").display(),
            dir.join("run").display()
        ),
    )
    .expect("storage.conf");
    conf
}

#[test]
fn readme_examples_run_in_order_on_a_fresh_registry() {
    for tool in ["podman", "buildah", "skopeo", "curl", "jq", "bash"] {
        require_tool(tool);
    }
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("README.md");
    let blocks = sh_blocks(&readme);
    assert!(
        blocks.len() >= 3,
        "README.md should hold its runnable examples in ```sh blocks"
    );
    let script = blocks.join("\n");
    assert!(
        script.contains("127.0.0.1:5000") && script.contains("the-password-printed-at-first-start"),
        "the examples name the registry and the first password as the README's start section does"
    );

    let b = Berth::start();
    let addr = b.base.trim_start_matches("http://").to_string();
    let script = script
        .replace("127.0.0.1:5000", &addr)
        .replace("the-password-printed-at-first-start", ADMIN_PASSWORD);

    let work = tempfile::tempdir().expect("tempdir");
    let home = work.path().join("home");
    std::fs::create_dir_all(&home).expect("home");
    let conf = storage_conf(work.path());
    let run_dir = work.path().join("xdg");
    std::fs::create_dir_all(&run_dir).expect("xdg");
    let mut child = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &format!("set -x\n{script}")])
        .current_dir(work.path())
        .env("HOME", &home)
        .env("XDG_RUNTIME_DIR", &run_dir)
        .env("CONTAINERS_STORAGE_CONF", &conf)
        .env("REGISTRY_AUTH_FILE", work.path().join("auth.json"))
        .env("BUILDAH_ISOLATION", "chroot")
        .env_remove("CONTAINERS_REGISTRIES_CONF")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bash");
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let readers = (
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = out.read_to_string(&mut s);
            s
        }),
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        }),
    );
    // Bounded: the examples take seconds; a hang must not hold the suite.
    let deadline = Instant::now() + Duration::from_secs(600);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break Some(s);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stdout = readers.0.join().unwrap_or_default();
    let stderr = readers.1.join().unwrap_or_default();
    match status {
        Some(s) if s.success() => {}
        Some(s) => panic!(
            "a README example failed ({s}); the last command bash traced is where:\n--- stdout\n{stdout}\n--- stderr\n{stderr}\n--- berth log\n{}",
            b.log()
        ),
        None => panic!("the README examples did not finish in 10 minutes:\n{stderr}"),
    }
    // What the examples did is there.
    assert!(stdout.contains("admin/hello"), "{stdout}");
    assert!(
        stdout.contains("{\"name\":\"acme/app\",\"tags\":[\"1\"]}"),
        "the robot's push, pulled anonymously: {stdout}"
    );
    assert!(
        stdout.contains("push_repo"),
        "the audit log lists the push: {stdout}"
    );
}
