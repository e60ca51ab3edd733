//! Starting, probing and stopping the registries under test.

use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use http::{Method, StatusCode};

use crate::backing::BackingPids;
use crate::client::{Conn, ReqBody};
use crate::login::Access;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Berth,
    /// Berth on PostgreSQL + S3 (s3s-fs).
    BerthPgS3,
    Distribution,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Berth => "berth",
            Kind::BerthPgS3 => "berth pg+s3",
            Kind::Distribution => "distribution",
        }
    }
}

/// A running registry process. Killed (and its data dir removed unless kept) on drop.
pub struct Server {
    pub kind: Kind,
    pub addr: SocketAddr,
    /// The backing services whose CPU time this server's workloads cause (pg+s3 only).
    pub backing: Option<BackingPids>,
    /// How the workloads' clients authenticate to it (set by the caller after the start).
    pub access: Access,
    child: Child,
    dir: Option<tempfile::TempDir>,
    root: PathBuf,
}

#[derive(Clone, Copy)]
pub struct StartOptions<'a> {
    pub berth_bin: &'a Path,
    pub berth_env: &'a [(String, String)],
    pub registry_bin: &'a Path,
    pub keep: bool,
    pub dist_cache: bool,
    /// Give Distribution htpasswd authentication (user `admin`, [`BENCH_PASSWORD`]).
    pub dist_auth: bool,
}

/// bcrypt cost of the Distribution htpasswd entry: 5, the default of Apache's `htpasswd -B`.
pub const HTPASSWD_COST: u32 = 5;

/// An htpasswd file line for `user`, bcrypt (`$2y$`, as `htpasswd -B` writes) at
/// [`HTPASSWD_COST`].
fn htpasswd_line(user: &str, password: &str) -> Result<String> {
    let hash = bcrypt::hash_with_result(password, HTPASSWD_COST)
        .context("bcrypt")?
        .format_for_version(bcrypt::Version::TwoY);
    Ok(format!("{user}:{hash}\n"))
}

/// The password of the superuser each Berth under test creates at first start.
pub const BENCH_PASSWORD: &str = "bench-admin-password";

fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

impl Server {
    /// Starts a registry. `extra_env` (Berth only) comes after `--berth-env`, `backing` names
    /// the backing services' processes (for CPU accounting).
    pub async fn start(
        kind: Kind,
        opts: &StartOptions<'_>,
        extra_env: &[(String, String)],
        backing: Option<BackingPids>,
    ) -> Result<Server> {
        let slug = match kind {
            Kind::Berth => "berth",
            Kind::BerthPgS3 => "berth-pg-s3",
            Kind::Distribution => "distribution",
        };
        let dir = tempfile::Builder::new()
            .prefix(&format!("berth-bench-{slug}-"))
            .tempdir()?;
        let root = dir.path().to_path_buf();
        let data = root.join("data");
        std::fs::create_dir_all(&data)?;
        let port = free_port()?;
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let log = File::create(root.join("server.log"))?;
        let mut cmd = match kind {
            Kind::Berth | Kind::BerthPgS3 => {
                let mut cmd = Command::new(opts.berth_bin);
                // The collector runs only when the GC workload asks, with no time-machine window
                // and no grace period, so that it collects what the workload deleted.
                cmd.env("BERTH_BOOTSTRAP_SUPERUSER_PASSWORD", BENCH_PASSWORD)
                    .env("BERTH_FEATURE_GARBAGE_COLLECTION", "false")
                    .env("BERTH_DEFAULT_TAG_EXPIRATION", "0s")
                    .env("BERTH_PUSH_TEMP_TAG_EXPIRATION_SEC", "0")
                    .arg("serve")
                    .arg("--listen")
                    .arg(addr.to_string())
                    .arg("--data-dir")
                    .arg(&data);
                if std::env::var_os("RUST_LOG").is_none() {
                    cmd.env("RUST_LOG", "warn");
                }
                cmd.envs(opts.berth_env.iter().map(|(k, v)| (k, v)));
                cmd.envs(extra_env.iter().map(|(k, v)| (k, v)));
                cmd
            }
            Kind::Distribution => {
                let cache = if opts.dist_cache {
                    "  cache:\n    blobdescriptor: inmemory\n"
                } else {
                    ""
                };
                let auth = if opts.dist_auth {
                    let path = root.join("htpasswd");
                    std::fs::write(&path, htpasswd_line(crate::login::USER, BENCH_PASSWORD)?)?;
                    format!(
                        "auth:\n  htpasswd:\n    realm: berth-bench\n    path: {}\n",
                        path.display()
                    )
                } else {
                    String::new()
                };
                let config = format!(
                    "version: 0.1\n\
                     log:\n  level: error\n  accesslog:\n    disabled: true\n\
                     storage:\n{cache}  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
                     http:\n  addr: {addr}\n{auth}",
                    data.display()
                );
                let config_path = root.join("config.yml");
                std::fs::write(&config_path, config)?;
                let mut cmd = Command::new(opts.registry_bin);
                cmd.arg("serve").arg(&config_path);
                cmd
            }
        };
        // Run inside the temp root so that any path the registry resolves relative to its
        // working directory also lands in (and is removed with) the temp dir.
        cmd.current_dir(&root)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {} ({:?})", kind.name(), cmd.get_program()))?;
        let mut server = Server {
            kind,
            addr,
            backing,
            access: Access::Shared(None),
            child,
            dir: Some(dir),
            root,
        };
        if opts.keep
            && let Some(dir) = server.dir.take()
        {
            let _ = dir.keep();
        }
        server.wait_ready().await?;
        Ok(server)
    }

    async fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "{} exited during start-up ({status}); log:\n{}",
                    self.kind.name(),
                    self.log_tail()
                );
            }
            // Berth (and Distribution with htpasswd) answer 401 with their challenge.
            if let Ok(mut conn) = Conn::connect(self.addr).await
                && let Ok((StatusCode::OK | StatusCode::UNAUTHORIZED, _, _)) =
                    conn.call(Method::GET, "/v2/", &[], ReqBody::empty()).await
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "{} did not answer 200 on /v2/ within 30 s; log:\n{}",
                    self.kind.name(),
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Distribution's garbage collection: stop the registry (it must not serve while
    /// `garbage-collect` runs), run `registry garbage-collect` on its config, and answer how
    /// many blob files it removed.
    pub fn offline_gc(&mut self, registry_bin: &Path) -> Result<usize> {
        let blobs = self.root.join("data/docker/registry/v2/blobs");
        let before = count_files(&blobs);
        let _ = self.child.kill();
        let _ = self.child.wait();
        let out = Command::new(registry_bin)
            .arg("garbage-collect")
            .arg(self.root.join("config.yml"))
            .current_dir(&self.root)
            .output()
            .context("running registry garbage-collect")?;
        if !out.status.success() {
            bail!(
                "registry garbage-collect failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(before.saturating_sub(count_files(&blobs)))
    }

    /// Fails if the process has exited.
    pub fn check_alive(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "{} exited ({status}); log:\n{}",
                self.kind.name(),
                self.log_tail()
            );
        }
        Ok(())
    }

    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.root.join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// `VmRSS` and `VmHWM` in MiB.
    pub fn memory(&self) -> Result<(f64, f64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        let field = |name: &str| -> Result<f64> {
            let line = status
                .lines()
                .find(|l| l.starts_with(name))
                .with_context(|| format!("no {name} in /proc/<pid>/status"))?;
            let kb: f64 = line
                .trim_start_matches(name)
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .with_context(|| format!("parsing {line:?}"))?;
            Ok(kb / 1024.0)
        };
        Ok((field("VmRSS:")?, field("VmHWM:")?))
    }

    /// CPU time (user + system) consumed so far, in seconds.
    pub fn cpu_secs(&self) -> f64 {
        cpu_secs(&format!("/proc/{}/stat", self.pid()))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if self.dir.is_none() {
            eprintln!(
                "  kept {} data in {}",
                self.kind.name(),
                self.root.display()
            );
        }
    }
}

/// Regular files under `dir`, recursively.
fn count_files(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => count_files(&e.path()),
            Ok(t) if t.is_file() => 1,
            _ => 0,
        })
        .sum()
}

/// user + system CPU seconds from a `/proc/<pid>/stat` file (0 if unreadable).
pub fn cpu_secs(path: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(path) else {
        return 0.0;
    };
    // Fields after the parenthesised command name start at field 3 (state).
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> f64 { fields.get(i).and_then(|v| v.parse().ok()).unwrap_or(0.0) };
    // utime is field 14, stime field 15; USER_HZ is 100 on Linux.
    (ticks(11) + ticks(12)) / 100.0
}
