//! The binary from a newcomer's side: first start with no flags creates ./berth-data, bad
//! configuration stops the start naming the key, help is useful, and TLS from a cert/key pair works.

mod common;

use common::{berth_bin, free_port};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn wait_listening(addr: &str, child: &mut std::process::Child) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("berth exited early with {status}");
        }
        if std::net::TcpStream::connect(addr).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("berth did not listen on {addr}");
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
