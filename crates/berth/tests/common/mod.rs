//! Test harness: starts a real `berth` process on a free loopback port with its own data directory,
//! and stops it when dropped. Every integration test that needs a server goes through `Berth`.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Berth {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// `127.0.0.1:PORT`, as clients such as skopeo want it.
    pub host: String,
    pub port: u16,
    pub data_dir: PathBuf,
    extra_args: Vec<String>,
    envs: Vec<(String, String)>,
    child: Option<Child>,
    _tmp: Option<tempfile::TempDir>,
}

pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

/// When `TEST_POSTGRES_URL` names a PostgreSQL server (`postgresql://user@host:port`), every test
/// server gets a fresh database on it; otherwise servers use the embedded SQLite default.
pub fn test_database() -> Option<String> {
    let base = std::env::var("TEST_POSTGRES_URL").ok().filter(|s| !s.is_empty())?;
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    let out = Command::new("psql")
        .arg(format!("{base}/postgres"))
        .args(["-v", "ON_ERROR_STOP=1", "-q", "-c"])
        .arg(format!("CREATE DATABASE {name}"))
        .output()
        .expect("psql is needed when TEST_POSTGRES_URL is set");
    assert!(
        out.status.success(),
        "cannot create test database: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(format!("{base}/{name}"))
}

pub fn berth_bin() -> &'static str {
    env!("CARGO_BIN_EXE_berth")
}

impl Berth {
    /// A fresh server with a fresh temporary data directory.
    pub fn start() -> Berth {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("data");
        let mut b = Berth::new_in(&dir, Vec::new(), Vec::new());
        b._tmp = Some(tmp);
        b.spawn();
        b
    }

    /// A server on the given data directory with extra `serve` arguments and environment.
    pub fn start_in(dir: &Path, extra_args: &[&str], envs: &[(&str, &str)]) -> Berth {
        let mut b = Berth::new_in(
            dir,
            extra_args.iter().map(|s| s.to_string()).collect(),
            envs.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        b.spawn();
        b
    }

    fn new_in(dir: &Path, extra_args: Vec<String>, mut envs: Vec<(String, String)>) -> Berth {
        let port = free_port();
        if let Some(uri) = test_database() {
            envs.push(("BERTH_DB_URI".into(), uri));
        }
        Berth {
            base: format!("http://127.0.0.1:{port}"),
            host: format!("127.0.0.1:{port}"),
            port,
            data_dir: dir.to_path_buf(),
            extra_args,
            envs,
            child: None,
            _tmp: None,
        }
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.data_dir.with_extension("log"))
            .expect("open server log");
        let mut cmd = Command::new(berth_bin());
        cmd.arg("serve")
            .arg("--listen")
            .arg(&self.host)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(&self.extra_args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("clone log")))
            .stderr(Stdio::from(log));
        for (k, v) in &self.envs {
            cmd.env(k, v);
        }
        self.child = Some(cmd.spawn().expect("spawn berth"));
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("berth exited early with {status}; log: {}", self.log());
            }
            if std::net::TcpStream::connect(&self.host).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "berth did not start listening within 30 s; log: {}",
            self.log()
        );
    }

    /// The server's log so far (stdout and stderr).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.with_extension("log")).unwrap_or_default()
    }

    /// SIGKILL the process (no clean shutdown) and wait for it to be gone.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start again on the same data directory and port.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }
}

impl Drop for Berth {
    fn drop(&mut self) {
        self.kill9();
    }
}
