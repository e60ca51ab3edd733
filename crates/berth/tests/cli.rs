//! The binary from a newcomer's side: first start with no flags creates ./berth-data, bad
//! configuration stops the start naming the key, help is useful, and TLS from a cert/key pair works.

mod common;

use common::{berth_bin, free_port};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Waits until the server answers HTTP (it binds its port before opening the database, so an
/// accepted connection alone does not mean it is ready).
fn wait_listening(addr: &str, child: &mut std::process::Child) {
    use std::io::{Read, Write};
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("berth exited early with {status}");
        }
        if let Ok(mut s) = std::net::TcpStream::connect(addr) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
            // Any answer (an HTTP response, or a TLS alert to a plain request) means it serves.
            let asked = s
                .write_all(b"GET /health/instance HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .is_ok();
            let mut buf = [0u8; 1];
            if asked && matches!(s.read(&mut buf), Ok(n) if n > 0) {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("berth did not answer on {addr}");
}

struct Killed(std::process::Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn first_start_without_flags_creates_data_dir_in_cwd() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let addr = format!("127.0.0.1:{}", free_port());
    // No flags at all; only the listen address comes from the environment so the test can run
    // beside other servers (the default is 127.0.0.1:5000).
    let mut child = Killed(
        Command::new(berth_bin())
            .arg("serve")
            .current_dir(tmp.path())
            .env("BERTH_LISTEN_ADDRESS", &addr)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn"),
    );
    wait_listening(&addr, &mut child.0);
    let r = reqwest::Client::builder()
        .default_headers(common::admin_headers())
        .no_proxy()
        .build()
        .expect("client")
        .get(format!("http://{addr}/health/endtoend"))
        .send()
        .await
        .expect("health");
    assert_eq!(r.status(), 200);
    assert!(tmp.path().join("berth-data/berth.db").exists());
    assert!(tmp.path().join("berth-data/storage/blobs").is_dir());
}

#[test]
fn bad_config_fails_naming_the_key() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cfg = tmp.path().join("config.yaml");
    std::fs::write(&cfg, "SERVER_HOSTNAME: x\nSTORAGE_FSYNC: perhaps\n").expect("write");
    let out = Command::new(berth_bin())
        .args(["serve", "--config"])
        .arg(&cfg)
        .args(["--data-dir"])
        .arg(tmp.path().join("d"))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("STORAGE_FSYNC"), "{err}");

    std::fs::write(
        &cfg,
        "SERVER_HOSTNAME: x\nBUILDLOGS_REDIS: {host: r}\nNOT_A_KEY: 1\n",
    )
    .expect("write");
    let out = Command::new(berth_bin())
        .args(["config", "validate", "--config"])
        .arg(&cfg)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("NOT_A_KEY"));

    std::fs::write(&cfg, "SERVER_HOSTNAME: x\nBUILDLOGS_REDIS: {host: r}\n").expect("write");
    let out = Command::new(berth_bin())
        .args(["config", "validate", "--config"])
        .arg(&cfg)
        .output()
        .expect("run");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("BUILDLOGS_REDIS"));
}

#[test]
fn help_names_the_commands() {
    let out = Command::new(berth_bin())
        .arg("--help")
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    for word in ["serve", "migrate", "config"] {
        assert!(text.contains(word), "{text}");
    }
    let out = Command::new(berth_bin())
        .args(["serve", "--help"])
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    for word in ["--listen", "--data-dir", "--config", "BERTH_"] {
        assert!(text.contains(word), "{text}");
    }
}

#[tokio::test]
async fn serves_tls_from_cert_and_key() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (cert, key) = (tmp.path().join("tls.crt"), tmp.path().join("tls.key"));
    let ok = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
        ])
        .args([
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl is needed for this test (Debian package openssl)");
    assert!(ok.success());
    let addr = format!("127.0.0.1:{}", free_port());
    let mut child = Killed(
        Command::new(berth_bin())
            .args(["serve", "--listen", &addr, "--data-dir"])
            .arg(tmp.path().join("d"))
            .env("BERTH_TLS_CERT_FILE", &cert)
            .env("BERTH_TLS_KEY_FILE", &key)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn"),
    );
    wait_listening(&addr, &mut child.0);
    let pem = std::fs::read(&cert).expect("cert");
    let client = reqwest::Client::builder()
        .default_headers(common::admin_headers())
        .no_proxy()
        .tls_certs_only([reqwest::Certificate::from_pem(&pem).expect("pem")])
        .build()
        .expect("client");
    let r = client
        .get(format!("https://{addr}/v2/"))
        .send()
        .await
        .expect("https request");
    // This server has its own generated superuser: the answer is the challenge, whose realm
    // must name the https scheme the server answers on.
    assert_eq!(r.status(), 401);
    let challenge = r
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        challenge.starts_with(&format!("Bearer realm=\"https://{addr}/v2/auth\"")),
        "{challenge}"
    );
    assert_eq!(
        r.headers()
            .get("docker-distribution-api-version")
            .map(|v| v.to_str().ok()),
        Some(Some("registry/2.0"))
    );
    // Plain http to the TLS port must not work.
    let plain = reqwest::Client::builder()
        .default_headers(common::admin_headers())
        .no_proxy()
        .build()
        .expect("client");
    assert!(
        plain
            .get(format!("http://{addr}/v2/"))
            .send()
            .await
            .is_err()
    );
}

fn validate(yaml: &str) -> (std::process::Output, tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cfg = tmp.path().join("config.yaml");
    std::fs::write(&cfg, yaml).expect("write");
    let out = Command::new(berth_bin())
        .args(["config", "validate", "--config"])
        .arg(&cfg)
        .current_dir(tmp.path())
        .output()
        .expect("run");
    (out, tmp, cfg)
}

#[test]
fn config_validate_reports_every_problem_and_names_the_file() {
    let (out, tmp, cfg) = validate(
        "LISTEN_ADDRESS: localhost\nDB_URI: 'sqlite:///nonexistent-berth-dir/berth.db'\n\
         DEFAULT_TAG_EXPIRATION: 3d\nSTORAGE_FSYNC: perhaps\nTLS_CERT_FILE: missing.crt\nTLS_KEY_FILE: missing.key\n",
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "invalid configuration in {} (6 problems):",
            cfg.display()
        )),
        "{err}"
    );
    assert!(
        err.contains(
            "config key LISTEN_ADDRESS: \"localhost\" has no port: expected host:port such as 127.0.0.1:5000"
        ),
        "{err}"
    );
    assert!(
        err.contains("config key DB_URI: the SQLite database /nonexistent-berth-dir/berth.db: directory /nonexistent-berth-dir does not exist"),
        "{err}"
    );
    assert!(
        err.contains(
            "config key DEFAULT_TAG_EXPIRATION: \"3d\" is not one of TAG_EXPIRATION_OPTIONS"
        ),
        "{err}"
    );
    assert!(err.contains("config key STORAGE_FSYNC:"), "{err}");
    assert!(
        err.contains("config key TLS_CERT_FILE: cannot read"),
        "{err}"
    );
    assert!(
        err.contains("config key TLS_KEY_FILE: cannot read"),
        "{err}"
    );
    assert!(!err.contains("berth config keys"), "no unknown key: {err}");
    assert!(!err.contains("another process"), "{err}");
    assert!(!tmp.path().join("berth-data").exists());
}

#[test]
fn config_validate_yaml_syntax_error_has_no_key_list_hint() {
    let (out, _tmp, cfg) = validate("SERVER_HOSTNAME: [unclosed\nDB_URI: x\n");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{} is not valid YAML", cfg.display())),
        "{err}"
    );
    assert!(!err.contains("berth config keys"), "{err}");
    // An unknown key does get the hint, and the closest key.
    let (out, _tmp, _) = validate("SERVER_HOSTNAM: x\n");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("did you mean SERVER_HOSTNAME?"), "{err}");
    assert!(err.contains("Run `berth config keys`"), "{err}");
}

#[test]
fn config_validate_resolves_host_names_and_lists_data_locations() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (out, _t, _) = validate(&format!(
        "LISTEN_ADDRESS: localhost:5000\nDB_URI: 'sqlite://{}'\n\
         DISTRIBUTED_STORAGE_CONFIG: {{default: [LocalStorage, {{storage_path: {}}}]}}\n\
         FEATURE_BUILD_SUPPORT: true\nREGISTRY_TITLE: Example\n",
        tmp.path().join("b.db").display(),
        tmp.path().join("blobs").display()
    ));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!(
            "data:     database {}; blobs in {}",
            tmp.path().join("b.db").display(),
            tmp.path().join("blobs").display()
        )),
        "{text}"
    );
    assert!(
        text.contains("not available in this version: FEATURE_BUILD_SUPPORT"),
        "{text}"
    );
    assert!(
        text.contains("keys with no effect in Berth (1): REGISTRY_TITLE"),
        "{text}"
    );
}

#[test]
fn config_keys_lists_every_key_berth_acts_on() {
    let out = Command::new(berth_bin())
        .args(["config", "keys"])
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    for key in [
        "FEATURE_STORAGE_REPLICATION",
        "JOB_LEASE_SECONDS",
        "REGISTRY_STATE",
        "DISABLE_PUSHES",
        "FEATURE_DIRECT_LOGIN",
        "SHUTDOWN_GRACE_SECONDS",
        "METRICS_LISTEN_ADDRESS",
        "AUTO_PRUNING_POLL_PERIOD",
        "FEATURE_LIBRARY_SUPPORT",
        "LIBRARY_NAMESPACE",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(&format!("{key} "))),
            "{key}: {text}"
        );
    }
    // Keys without effect are not listed as acted on, but --all says what Berth does with them.
    assert!(!text.lines().any(|l| l.starts_with("REGISTRY_TITLE ")));
    let out = Command::new(berth_bin())
        .args(["config", "keys", "--all"])
        .output()
        .expect("run");
    let all = String::from_utf8_lossy(&out.stdout);
    for (key, class) in [
        ("REGISTRY_TITLE", "no-effect"),
        ("FEATURE_BUILD_SUPPORT", "unavailable"),
        ("FEATURE_SECURITY_SCANNER", "acted-on"),
        ("FEATURE_RESTRICTED_USERS", "guarded"),
        ("JOB_LEASE_SECONDS", "acted-on"),
    ] {
        assert!(
            all.lines()
                .any(|l| l.starts_with(key) && l.split_whitespace().nth(1) == Some(class)),
            "{key} {class}: {all}"
        );
    }
}

#[test]
fn serve_with_everything_configured_elsewhere_leaves_no_stray_data_dir() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cwd = tmp.path().join("cwd");
    std::fs::create_dir(&cwd).expect("mkdir");
    let cfg = tmp.path().join("config.yaml");
    std::fs::write(
        &cfg,
        format!(
            "DB_URI: 'sqlite://{}'\nDISTRIBUTED_STORAGE_CONFIG: {{local: [LocalStorage, {{storage_path: {}}}]}}\n",
            tmp.path().join("berth.db").display(),
            tmp.path().join("blobs").display()
        ),
    )
    .expect("write");
    let addr = format!("127.0.0.1:{}", free_port());
    let mut child = Killed(
        Command::new(berth_bin())
            .args(["serve", "--listen", &addr, "--config"])
            .arg(&cfg)
            .current_dir(&cwd)
            .env("BERTH_BOOTSTRAP_SUPERUSER_PASSWORD", common::ADMIN_PASSWORD)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn"),
    );
    wait_listening(&addr, &mut child.0);
    assert!(tmp.path().join("berth.db").exists());
    assert!(tmp.path().join("blobs").is_dir());
    assert!(!cwd.join("berth-data").exists(), "stray ./berth-data");
}

fn admin(args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    use std::io::Write;
    let mut child = Command::new(berth_bin())
        .arg("admin")
        .args(args)
        .env_remove("BERTH_DB_URI")
        .env_remove("BERTH_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes()).expect("stdin");
    }
    let out = child.wait_with_output().expect("wait");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn admin_finds_the_database_as_serve_does_and_never_creates_an_empty_one_unasked() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("registry");
    let d = data.display().to_string();
    let db = data.join("berth.db");

    // The flags follow the command, and nothing is created where there is no registry.
    let (code, _, err) = admin(&["set-password", "admin", "--data-dir", &d], None);
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!("no Berth database at {}", db.display())),
        "{err}"
    );
    assert!(err.contains("--create"), "{err}");
    assert!(err.contains("--data-dir"), "{err}");
    assert!(
        !db.exists() && !data.exists(),
        "an empty database was created"
    );

    // Asked to, it creates one, and says which.
    let (code, out, err) = admin(
        &[
            "create-user",
            "admin",
            "--superuser",
            "--create",
            "--data-dir",
            &d,
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("created superuser admin with password"),
        "{out}"
    );
    assert!(
        out.contains(&format!("database: sqlite://{}", db.display())),
        "{out}"
    );

    // The same database, found through --config after the command.
    let cfg = tmp.path().join("config.yaml");
    std::fs::write(&cfg, format!("DB_URI: 'sqlite://{}'\n", db.display())).expect("write");
    let c = cfg.display().to_string();
    let (code, out, err) = admin(
        &["set-password", "admin", "--password-stdin", "--config", &c],
        Some("a-new-password-123\n"),
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("password of admin changed"), "{out}");
    assert!(out.contains(&format!("sqlite://{}", db.display())), "{out}");

    // A user that is not there: a clear message naming the database.
    let (code, _, err) = admin(&["reset-login", "nobody", "--data-dir", &d], None);
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!(
            "there is no user \"nobody\" in the database sqlite://{}",
            db.display()
        )),
        "{err}"
    );
    assert!(err.contains("berth admin create-user nobody"), "{err}");

    // An existing file that holds no registry is not taken over either.
    let other = tmp.path().join("other.db");
    std::fs::write(&other, b"").expect("write");
    std::fs::write(&cfg, format!("DB_URI: 'sqlite://{}'\n", other.display())).expect("write");
    let (code, _, err) = admin(&["rotate-keys", "--config", &c], None);
    assert_eq!(code, 1);
    assert!(err.contains("holds no Berth registry"), "{err}");
}

#[test]
fn config_keys_piped_into_a_reader_that_stops_early_ends_quietly() {
    use std::io::Read;
    let mut child = Command::new(berth_bin())
        // --json is one write of more than a pipe's 64 KiB: it must meet the closed pipe.
        .args(["config", "keys", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut first = [0u8; 64];
    child
        .stdout
        .take()
        .expect("stdout")
        .read_exact(&mut first)
        .expect("read the first bytes");
    // The reader is gone (as with `| head`): the rest of the listing meets a closed pipe.
    let out = child.wait_with_output().expect("wait");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert!(out.status.success(), "{:?} {err}", out.status);
}
