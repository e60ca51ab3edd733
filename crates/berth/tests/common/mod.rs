//! Test harness: starts a real `berth` process on a free loopback port with its own data directory,
//! and stops it when dropped. Every integration test that needs a server goes through `Berth`.
#![allow(dead_code)]

pub mod client;
pub mod images;
pub mod upstream;

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
    storage: berth_storage::StorageSpec,
    child: Option<Child>,
    _tmp: Option<tempfile::TempDir>,
}

/// The superuser every test server creates at first start (BOOTSTRAP_SUPERUSER_PASSWORD).
pub const ADMIN_USER: &str = "admin";
pub const ADMIN_PASSWORD: &str = "berth-test-admin-pw";

/// `Authorization: Basic` for the test superuser: Berth accepts Basic credentials on each `/v2`
/// request as well as bearer tokens from `/v2/auth`.
pub fn admin_basic() -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{ADMIN_USER}:{ADMIN_PASSWORD}"))
    )
}

/// Default headers that authenticate every request as the test superuser.
pub fn admin_headers() -> reqwest::header::HeaderMap {
    let mut h = reqwest::header::HeaderMap::new();
    h.insert(
        reqwest::header::AUTHORIZATION,
        admin_basic().parse().expect("header value"),
    );
    h
}

pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

/// When `TEST_POSTGRES_URL` names a PostgreSQL server (`postgresql://user@host:port`), every test
/// server gets a fresh database on it; otherwise servers use the embedded SQLite default.
pub fn test_database() -> Option<String> {
    let base = std::env::var("TEST_POSTGRES_URL")
        .ok()
        .filter(|s| !s.is_empty())?;
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

/// When `TEST_S3_ENDPOINT` names an S3-compatible server, every test server keeps its blobs there
/// (bucket `TEST_S3_BUCKET`, default `berth-test`, under a fresh prefix), configured the way a
/// Quay user would: an `S3Storage` location in `DISTRIBUTED_STORAGE_CONFIG`.
pub fn test_object_storage() -> Option<String> {
    test_object_storage_spec().map(|(yaml, _)| yaml)
}

/// Like `test_object_storage`, with the location as a spec the test can open itself.
pub fn test_object_storage_spec() -> Option<(String, berth_storage::StorageSpec)> {
    let endpoint = std::env::var("TEST_S3_ENDPOINT")
        .ok()
        .filter(|s| !s.is_empty())?;
    let bucket = std::env::var("TEST_S3_BUCKET").unwrap_or_else(|_| "berth-test".into());
    let prefix = uuid::Uuid::new_v4().simple().to_string();
    let yaml = format!(
        "{{default: [S3Storage, {{s3_bucket: {bucket}, storage_path: /{prefix}, endpoint_url: '{endpoint}', \
         s3_access_key: test, s3_secret_key: test, s3_region: us-east-1}}]}}"
    );
    let spec = berth_storage::StorageSpec::S3 {
        bucket,
        prefix: format!("/{prefix}"),
        region: Some("us-east-1".into()),
        endpoint: Some(endpoint),
        access_key: Some("test".into()),
        secret_key: Some("test".into()),
        session_token: None,
    };
    Some((yaml, spec))
}

/// True when test servers keep blobs on the local filesystem (inside their data directory).
pub fn local_blob_storage() -> bool {
    std::env::var("TEST_STORAGE").map_or(true, |s| s != "s3")
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

    /// A fresh server (fresh data directory) with extra environment.
    pub fn start_with_env(envs: &[(&str, &str)]) -> Berth {
        Berth::start_with(&[], envs)
    }

    /// A fresh server (fresh data directory) with extra `serve` arguments and environment.
    pub fn start_with(args: &[&str], envs: &[(&str, &str)]) -> Berth {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("data");
        let mut b = Berth::new_in(
            &dir,
            args.iter().map(|s| s.to_string()).collect(),
            envs.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
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
        if !envs
            .iter()
            .any(|(k, _)| k == "BERTH_BOOTSTRAP_SUPERUSER_PASSWORD")
        {
            envs.push((
                "BERTH_BOOTSTRAP_SUPERUSER_PASSWORD".into(),
                ADMIN_PASSWORD.into(),
            ));
        }
        if let Some(uri) = test_database() {
            envs.push(("BERTH_DB_URI".into(), uri));
        }
        let own_storage = envs
            .iter()
            .any(|(k, _)| k == "BERTH_DISTRIBUTED_STORAGE_CONFIG");
        let mut storage = berth_storage::StorageSpec::Local {
            path: dir.join("storage"),
            fsync: false,
        };
        if let Some((yaml, spec)) = test_object_storage_spec().filter(|_| !own_storage) {
            storage = spec;
            envs.push(("BERTH_DISTRIBUTED_STORAGE_CONFIG".into(), yaml));
            envs.push((
                "BERTH_DISTRIBUTED_STORAGE_PREFERENCE".into(),
                "[default]".into(),
            ));
        }
        Berth {
            base: String::new(),
            host: String::new(),
            port: 0,
            data_dir: dir.to_path_buf(),
            extra_args,
            envs,
            storage,
            child: None,
            _tmp: None,
        }
    }

    /// The blob storage this server writes to, opened by the test (to check bytes directly).
    pub fn blob_store(&self) -> std::sync::Arc<dyn berth_storage::BlobStore> {
        berth_storage::open(&self.storage).expect("open the server's blob storage")
    }

    /// Starts the process. The first start listens on port 0 and learns its port from the
    /// server's start-up line (no window in which another test could take a pre-picked port);
    /// restarts reuse that port.
    fn spawn(&mut self) {
        let log_path = self.data_dir.with_extension("log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("open server log");
        let log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
        let mut cmd = Command::new(berth_bin());
        cmd.arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.port))
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
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("berth exited early with {status}; log: {}", self.log());
            }
            let text = std::fs::read(&log_path).unwrap_or_default();
            let from = usize::try_from(log_start).unwrap_or(0).min(text.len());
            let fresh = String::from_utf8_lossy(&text[from..]).to_string();
            if let Some(port) = fresh
                .lines()
                .find_map(|l| l.split("listening on http://127.0.0.1:").nth(1))
                .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|p| p.parse::<u16>().ok())
            {
                self.port = port;
                self.host = format!("127.0.0.1:{port}");
                self.base = format!("http://127.0.0.1:{port}");
                return;
            }
            assert!(
                Instant::now() < deadline,
                "berth did not start within 30 s; log: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// A second instance of the same registry: same database, same blob storage, its own port.
    pub fn start_sibling(&self) -> Berth {
        self.start_sibling_with(
            &self
                .extra_args
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
            &[],
        )
    }

    /// Another instance of the same registry with its own `serve` arguments and extra environment
    /// (which overrides this one's).
    pub fn start_sibling_with(&self, args: &[&str], envs: &[(&str, &str)]) -> Berth {
        let mut all = self.envs.clone();
        all.extend(envs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let mut b = Berth {
            base: String::new(),
            host: String::new(),
            port: 0,
            data_dir: self.data_dir.clone(),
            extra_args: args.iter().map(|s| s.to_string()).collect(),
            envs: all,
            storage: self.storage.clone(),
            child: None,
            _tmp: None,
        };
        b.spawn();
        b
    }

    /// The environment this server runs with (database and storage settings included).
    pub fn envs(&self) -> &[(String, String)] {
        &self.envs
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

    /// Sends a signal by name (`TERM`, `INT`) to the process, as an operator or systemd would.
    pub fn signal(&self, name: &str) {
        if let Some(c) = &self.child {
            let ok = Command::new("kill")
                .arg(format!("-{name}"))
                .arg(c.id().to_string())
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "kill -{name} {}", c.id());
        }
    }

    /// Waits up to `limit` for the process to exit; its status, or `None` if it still runs.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            let child = self.child.as_mut()?;
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
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
