//! The backing services of the "berth pg+s3" column: a PostgreSQL server and an S3-compatible
//! object store (`s3s-fs`), both on `127.0.0.1`, started once per run and stopped on drop.
//! Each round gets a fresh database and a fresh key prefix in the bucket.

use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::server::cpu_secs;

/// Bucket Berth stores its blobs in.
const BUCKET: &str = "berth";
const ACCESS_KEY: &str = "benchkey";
const SECRET_KEY: &str = "benchsecret";
/// The s3s-fs release known to build with the Rust toolchain here.
pub const S3S_FS_INSTALL: &str = "cargo install s3s-fs@0.14.1 --features binary --locked";

fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// `name` on `PATH`, else in one of `extra` directories; the last of them that has it wins
/// (they come in ascending preference, e.g. PostgreSQL versions).
fn find_bin(name: &str, extra: &[PathBuf]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    extra
        .iter()
        .rev()
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// `/usr/lib/postgresql/<version>/bin`, ascending by version.
fn pg_bin_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((v, e.path().join("bin")))
        })
        .collect();
    dirs.sort();
    dirs.into_iter().map(|(_, d)| d).collect()
}

/// Where `s3s-fs` is, if installed (`PATH`, then `~/.cargo/bin`).
pub fn find_s3s_fs() -> Option<PathBuf> {
    let cargo_bin = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .map(|d| d.join("bin"));
    find_bin("s3s-fs", &cargo_bin.into_iter().collect::<Vec<_>>())
}

/// Runs a command to completion, failing with its output if it fails.
fn run_cmd(cmd: &mut Command, what: &str) -> Result<()> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {what} ({:?})", cmd.get_program()))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// True when running as root (PostgreSQL then has to run as `nobody`).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// A PostgreSQL cluster in a temp dir.
struct Postgres {
    pg_ctl: PathBuf,
    psql: PathBuf,
    /// `runuser -u nobody --` when running as root.
    run_as: Vec<String>,
    root: PathBuf,
    dir: Option<tempfile::TempDir>,
    port: u16,
    running: bool,
}

impl Postgres {
    fn start(keep: bool) -> Result<Postgres> {
        let dirs = pg_bin_dirs();
        let initdb = find_bin("initdb", &dirs).context(
            "initdb not found on PATH or in /usr/lib/postgresql/*/bin (apt-get install postgresql)",
        )?;
        let pg_ctl = find_bin("pg_ctl", &dirs).context("pg_ctl not found")?;
        let psql = find_bin("psql", &dirs).context("psql not found")?;
        let dir = tempfile::Builder::new()
            .prefix("berth-bench-postgres-")
            .tempdir()?;
        let root = dir.path().to_path_buf();
        let run_as: Vec<String> = if is_root() {
            // PostgreSQL refuses to run as root.
            run_cmd(
                Command::new("chown").arg("nobody").arg(&root),
                "chown nobody",
            )?;
            ["runuser", "-u", "nobody", "--"]
                .iter()
                .map(|s| s.to_string())
                .collect()
        } else {
            Vec::new()
        };
        let port = free_port()?;
        let mut pg = Postgres {
            pg_ctl,
            psql,
            run_as,
            root,
            dir: Some(dir),
            port,
            running: false,
        };
        if keep && let Some(dir) = pg.dir.take() {
            let _ = dir.keep();
        }
        let data = pg.root.join("data");
        run_cmd(
            pg.as_user(&initdb)
                .arg("-D")
                .arg(&data)
                .args(["-U", "test", "--auth=trust"]),
            "initdb",
        )?;
        // fsync stays on (the default): Berth's commits wait for the WAL flush, as they would
        // in production.
        let opts = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1",
            pg.root.display()
        );
        pg.running = true; // from here on, Drop tries to stop it
        run_cmd(
            pg.as_user(&pg.pg_ctl.clone())
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(pg.root.join("postgres.log"))
                .args(["-w", "-o", &opts, "start"]),
            "pg_ctl start",
        )?;
        Ok(pg)
    }

    fn as_user(&self, bin: &Path) -> Command {
        let mut cmd = match self.run_as.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        cmd.current_dir(&self.root);
        cmd
    }

    fn psql(&self, sql: &str) -> Result<()> {
        run_cmd(
            Command::new(&self.psql)
                .arg(format!(
                    "postgresql://test@127.0.0.1:{}/postgres",
                    self.port
                ))
                .args(["-v", "ON_ERROR_STOP=1", "-q", "-c", sql]),
            "psql",
        )
    }

    /// The postmaster's pid (first line of `postmaster.pid`).
    fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.root.join("data/postmaster.pid"))
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if self.running {
            let data = self.root.join("data");
            let _ = self
                .as_user(&self.pg_ctl.clone())
                .arg("-D")
                .arg(&data)
                .args(["-m", "immediate", "stop"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        if self.dir.is_none() {
            eprintln!("  kept PostgreSQL data in {}", self.root.display());
        }
    }
}

/// An `s3s-fs` process serving a temp dir.
struct S3Fs {
    child: Child,
    root: PathBuf,
    dir: Option<tempfile::TempDir>,
    port: u16,
}

impl S3Fs {
    async fn start(bin: &Path, keep: bool) -> Result<S3Fs> {
        let dir = tempfile::Builder::new()
            .prefix("berth-bench-s3s-fs-")
            .tempdir()?;
        let root = dir.path().to_path_buf();
        let store = root.join("store");
        // s3s-fs serves each directory of its root as a bucket.
        std::fs::create_dir_all(store.join(BUCKET))?;
        let port = free_port()?;
        let log = File::create(root.join("s3s-fs.log"))?;
        let child = Command::new(bin)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(&store)
            .current_dir(&root)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let mut s3 = S3Fs {
            child,
            root,
            dir: Some(dir),
            port,
        };
        if keep && let Some(dir) = s3.dir.take() {
            let _ = dir.keep();
        }
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = s3.child.try_wait()? {
                bail!(
                    "s3s-fs exited during start-up ({status}): {}",
                    std::fs::read_to_string(s3.root.join("s3s-fs.log")).unwrap_or_default()
                );
            }
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return Ok(s3);
            }
            if Instant::now() > deadline {
                bail!("s3s-fs did not listen on {addr} within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for S3Fs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if self.dir.is_none() {
            eprintln!("  kept s3s-fs data in {}", self.root.display());
        }
    }
}

/// PostgreSQL + s3s-fs for the "berth pg+s3" column.
pub struct Backing {
    pg: Postgres,
    s3: S3Fs,
    keep: bool,
}

/// What one round of the pg+s3 column uses.
pub struct RoundEnv {
    pub env: Vec<(String, String)>,
    db: String,
    prefix: String,
}

/// Pids whose CPU time counts as the backing services' (PostgreSQL's postmaster and its
/// children, s3s-fs).
#[derive(Clone, Copy, Debug)]
pub struct BackingPids {
    postmaster: Option<u32>,
    s3: u32,
}

impl BackingPids {
    /// CPU seconds used so far by (PostgreSQL, s3s-fs). PostgreSQL's figure covers the
    /// postmaster, its live children and its reaped children (a backend that exited
    /// mid-workload is counted once the postmaster reaps it).
    pub fn cpu_secs(&self) -> (f64, f64) {
        let s3 = cpu_secs(&format!("/proc/{}/stat", self.s3));
        let mut pg = 0.0;
        if let Some(pm) = self.postmaster {
            pg += cpu_and_children(pm);
            for child in children_of(pm) {
                pg += cpu_secs(&format!("/proc/{child}/stat"));
            }
        }
        (pg, s3)
    }
}

/// user + system + reaped children's user + system CPU seconds of a process.
fn cpu_and_children(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> f64 { f.get(i).and_then(|v| v.parse().ok()).unwrap_or(0.0) };
    // utime, stime, cutime, cstime are fields 14-17 (indices 11-14 after the name).
    (ticks(11) + ticks(12) + ticks(13) + ticks(14)) / 100.0
}

/// Pids whose parent is `pid`.
fn children_of(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
                return false;
            };
            // The parent pid is the second field after the parenthesised name.
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u32>().ok())
                == Some(pid)
        })
        .collect()
}

impl Backing {
    pub async fn start(s3s_fs: &Path, keep: bool) -> Result<Backing> {
        let t = Instant::now();
        let pg = tokio::task::spawn_blocking(move || Postgres::start(keep)).await??;
        let s3 = S3Fs::start(s3s_fs, keep).await?;
        eprintln!(
            "started PostgreSQL on 127.0.0.1:{} and s3s-fs on 127.0.0.1:{} in {:.1} s",
            pg.port,
            s3.port,
            t.elapsed().as_secs_f64()
        );
        Ok(Backing { pg, s3, keep })
    }

    /// A fresh database and bucket prefix for round `round`, and Berth's environment for them.
    pub fn round(&self, round: usize) -> Result<RoundEnv> {
        let db = format!("berth_r{round}");
        let prefix = format!("bench-r{round}");
        self.pg.psql(&format!("DROP DATABASE IF EXISTS {db}"))?;
        self.pg.psql(&format!("CREATE DATABASE {db}"))?;
        let _ = std::fs::remove_dir_all(self.s3_prefix_dir(&prefix));
        let env = vec![
            (
                "BERTH_DB_URI".to_string(),
                format!("postgresql://test@127.0.0.1:{}/{db}", self.pg.port),
            ),
            (
                "BERTH_DISTRIBUTED_STORAGE_CONFIG".to_string(),
                format!(
                    "{{default: [S3Storage, {{s3_bucket: {BUCKET}, storage_path: /{prefix}, \
                     endpoint_url: 'http://127.0.0.1:{}', s3_access_key: {ACCESS_KEY}, \
                     s3_secret_key: {SECRET_KEY}, s3_region: us-east-1}}]}}",
                    self.s3.port
                ),
            ),
            (
                "BERTH_DISTRIBUTED_STORAGE_PREFERENCE".to_string(),
                "[default]".to_string(),
            ),
        ];
        Ok(RoundEnv { env, db, prefix })
    }

    fn s3_prefix_dir(&self, prefix: &str) -> PathBuf {
        self.s3.root.join("store").join(BUCKET).join(prefix)
    }

    /// Frees what round `env` stored (unless `--keep`). Call after that round's Berth stopped.
    pub fn end_round(&self, env: &RoundEnv) {
        if self.keep {
            return;
        }
        if let Err(e) = self.pg.psql(&format!("DROP DATABASE IF EXISTS {}", env.db)) {
            eprintln!("  warning: dropping database {}: {e:#}", env.db);
        }
        let _ = std::fs::remove_dir_all(self.s3_prefix_dir(&env.prefix));
    }

    pub fn pids(&self) -> BackingPids {
        BackingPids {
            postmaster: self.pg.pid(),
            s3: self.s3.child.id(),
        }
    }

    /// Fails if s3s-fs or PostgreSQL has exited.
    pub fn check_alive(&mut self) -> Result<()> {
        if let Some(status) = self.s3.child.try_wait()? {
            bail!("s3s-fs exited ({status})");
        }
        match self.pg.pid() {
            Some(pid) if Path::new(&format!("/proc/{pid}")).exists() => Ok(()),
            _ => bail!(
                "PostgreSQL is not running; see {}",
                self.pg.root.join("postgres.log").display()
            ),
        }
    }
}
