//! `berth-bench`: starts Berth (on its default SQLite + filesystem, and on PostgreSQL + an
//! S3-compatible store) and CNCF Distribution side by side and drives them with the same
//! load generator. See `bench/README.md`.

mod backing;
mod client;
mod data;
mod login;
mod raw;
mod scan;
mod selftest;
mod server;
mod ui;
mod workloads;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use clap::{Parser, ValueEnum};

use crate::backing::{Backing, RoundEnv};
use crate::data::{BigBlob, SmallImage};
use crate::login::Access;
use crate::server::{BENCH_PASSWORD, Kind, Server, StartOptions};
use crate::workloads::UploadMode;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Only {
    Berth,
    BerthPgS3,
    Distribution,
}

/// Which tables to run (`--table`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum TableArg {
    /// With authentication: a token per client for Berth, htpasswd for Distribution.
    Auth,
    /// Without per-client authentication: one token for the whole run for Berth, no auth for
    /// Distribution.
    Noauth,
    Both,
}

/// One table: how the clients authenticate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Mode {
    Auth,
    NoAuth,
}

impl Mode {
    fn title(self) -> &'static str {
        match self {
            Mode::Auth => {
                "with authentication (Berth: a token per client, from /v2/auth with Basic \
                 credentials; Distribution: htpasswd, Basic credentials on every request)"
            }
            Mode::NoAuth => {
                "without per-client authentication (Berth: one token for the whole run; \
                 Distribution: no auth)"
            }
        }
    }

    fn short(self) -> &'static str {
        match self {
            Mode::Auth => "auth",
            Mode::NoAuth => "noauth",
        }
    }
}

impl Only {
    fn kind(self) -> Kind {
        match self {
            Only::Berth => Kind::Berth,
            Only::BerthPgS3 => Kind::BerthPgS3,
            Only::Distribution => Kind::Distribution,
        }
    }
}

/// Benchmark Berth (SQLite + filesystem, and PostgreSQL + S3) against CNCF Distribution
/// (`docker-registry`) on this machine.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Number of rounds; each figure is the median over the rounds.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Size of the large blob pushed and pulled, in MiB.
    #[arg(long, default_value_t = 1024)]
    size_mib: u64,
    /// Duration of the manifest GET workload, in seconds.
    #[arg(long, default_value_t = 5.0)]
    duration_secs: f64,
    /// Concurrent keep-alive connections for the manifest GET workload.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Number of small images pushed per round.
    #[arg(long, default_value_t = 320)]
    images: usize,
    /// Concurrent pushers for the small-image workload.
    #[arg(long, default_value_t = 32)]
    push_concurrency: usize,
    /// Size of each PATCH of the large-blob push, in MiB (0: one PATCH with the whole body).
    #[arg(long, default_value_t = 5)]
    chunk_mib: u64,
    /// Clients of the CI burst: each a fresh connection that logs in and pushes one small
    /// image, all started at once (0: no CI burst).
    #[arg(long, default_value_t = 32)]
    burst_clients: usize,
    /// Concurrent clients of the login workload.
    #[arg(long, default_value_t = 32)]
    login_clients: usize,
    /// Duration of the login workload (and of the robot login), in seconds (0: neither).
    #[arg(long, default_value_t = 3.0)]
    login_secs: f64,
    /// Which tables to run: `auth` (a token per client / htpasswd), `noauth` (one token for the
    /// whole run / Distribution without auth), or `both`.
    #[arg(long, value_enum, default_value_t = TableArg::Both)]
    table: TableArg,
    /// Benchmark only these registries (comma-separated or repeated; default: all three).
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Only>,
    /// Skip the "berth pg+s3" column (Berth on PostgreSQL + s3s-fs).
    #[arg(long)]
    no_pg_s3: bool,
    /// Run the "berth pg+s3" column in the first N rounds only (it takes ~75 s a round,
    /// mostly s3s-fs listing its bucket during small-image pushes). Default: 1, or every
    /// round when it is the only column.
    #[arg(long)]
    pg_s3_rounds: Option<usize>,
    /// Path to `s3s-fs` (default: on PATH, else ~/.cargo/bin).
    #[arg(long)]
    s3s_fs_bin: Option<PathBuf>,
    /// Keep the registries' data directories (paths are printed).
    #[arg(long)]
    keep: bool,
    /// Path to the Berth binary.
    #[arg(long, default_value = "target/release/berth")]
    berth_bin: PathBuf,
    /// Before each timed workload, wait up to this long for the machine to go idle
    /// (at most 120 s over the whole run; 0 disables the wait).
    #[arg(long, default_value_t = 15.0)]
    idle_wait_secs: f64,
    /// Extra environment for Berth, e.g. `--berth-env BERTH_STORAGE_FSYNC=false`
    /// (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    berth_env: Vec<String>,
    /// Path to the Distribution binary.
    #[arg(long, default_value = "docker-registry")]
    registry_bin: PathBuf,
    /// Give Distribution its in-memory blob descriptor cache (as in Debian's default
    /// config.yml). Off by default.
    #[arg(long)]
    dist_cache: bool,
    /// Instead of benchmarking registries, measure the load generator against a trivial
    /// in-process server (shows the client's headroom).
    #[arg(long)]
    self_test: bool,
    /// Run only the scanner section (no registries are started).
    #[arg(long, conflicts_with = "no_scan")]
    scan_only: bool,
    /// Skip the scanner section.
    #[arg(long)]
    no_scan: bool,
    /// Where the scanner section caches its Debian bookworm layer (made with mmdebstrap when
    /// absent).
    #[arg(long, default_value = "target/bench-data")]
    bench_data: PathBuf,
    /// OSV dumps the scanner section imports (every `<ECOSYSTEM>/all.zip`).
    #[arg(long, default_value = "/work/shared/vulndb")]
    vulndb_dir: PathBuf,
    /// The UI table: a Tags tab with this many tags, and one with 10 (0: no UI table). Seeding
    /// 100,000 tags takes about a minute.
    #[arg(long, default_value_t = 100_000)]
    ui_tags: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Figure {
    Push,
    Pull,
    ManifestRps,
    ManifestP50,
    ManifestP99,
    SmallPush,
    SmallPushMono,
    Burst,
    BurstP50,
    BurstMax,
    Login,
    LoginP50,
    RobotLogin,
    IdleRss,
    PeakRss,
    Gc,
}

impl Figure {
    const ALL: [Figure; 16] = [
        Figure::Push,
        Figure::Pull,
        Figure::ManifestRps,
        Figure::ManifestP50,
        Figure::ManifestP99,
        Figure::SmallPush,
        Figure::SmallPushMono,
        Figure::Burst,
        Figure::BurstP50,
        Figure::BurstMax,
        Figure::Login,
        Figure::LoginP50,
        Figure::RobotLogin,
        Figure::IdleRss,
        Figure::PeakRss,
        Figure::Gc,
    ];

    fn label(self, args: &Args, mode: Mode) -> String {
        match self {
            Figure::Push if args.chunk_mib == 0 => {
                format!("blob push {} MiB, one PATCH (MiB/s)", args.size_mib)
            }
            Figure::Push => format!(
                "blob push {} MiB, {} MiB PATCHes (MiB/s)",
                args.size_mib, args.chunk_mib
            ),
            Figure::Pull => format!("blob pull {} MiB (MiB/s)", args.size_mib),
            Figure::ManifestRps => format!("manifest GET x{} conns (req/s)", args.connections),
            Figure::ManifestP50 => "manifest GET p50 (ms)".to_string(),
            Figure::ManifestP99 => "manifest GET p99 (ms)".to_string(),
            Figure::SmallPush => format!(
                "small-image push x{}, POST+PATCH+PUT (images/s)",
                args.push_concurrency
            ),
            Figure::SmallPushMono => format!(
                "small-image push x{}, monolithic (images/s)",
                args.push_concurrency
            ),
            Figure::Burst => format!("CI burst x{} clients (images/s)", args.burst_clients),
            Figure::BurstP50 => "CI burst per-client p50 (ms)".to_string(),
            Figure::BurstMax => "CI burst per-client max (ms)".to_string(),
            Figure::Login => format!("login x{} clients (logins/s)", args.login_clients),
            Figure::LoginP50 => "login p50 (ms)".to_string(),
            Figure::RobotLogin => format!("robot login x{} clients (logins/s)", args.login_clients),
            Figure::IdleRss => "idle RSS (MiB)".to_string(),
            Figure::PeakRss => "peak RSS (MiB)".to_string(),
            Figure::Gc => format!(
                "GC after deleting {} images (s)",
                args.images * if mono_in(args, mode) { 2 } else { 1 } + args.burst_clients
            ),
        }
    }

    /// True when a smaller value is better (ratio is then distribution/berth).
    fn lower_is_better(self) -> bool {
        matches!(
            self,
            Figure::ManifestP50
                | Figure::ManifestP99
                | Figure::BurstP50
                | Figure::BurstMax
                | Figure::LoginP50
                | Figure::IdleRss
                | Figure::PeakRss
                | Figure::Gc
        )
    }

    /// The target, as (description, predicate on (berth, ratio)).
    fn target(self) -> Option<(&'static str, TargetCheck)> {
        match self {
            Figure::Push => Some(("push >= 5x", |_, r| r >= 5.0)),
            Figure::Pull => Some(("pull >= 1.5x", |_, r| r >= 1.5)),
            Figure::ManifestRps => Some(("manifest GET >= 5x", |_, r| r >= 5.0)),
            Figure::ManifestP99 => Some(("manifest GET p99 <= 10 ms", |b, _| b <= 10.0)),
            Figure::SmallPush => Some(("small-image push >= 3x", |_, r| r >= 3.0)),
            Figure::IdleRss => Some(("idle RSS <= 30 MB", |b, _| b * 1.048_576 <= 30.0)),
            _ => None,
        }
    }

    fn format(self, v: f64) -> String {
        match self {
            Figure::ManifestP50 | Figure::ManifestP99 | Figure::LoginP50 | Figure::Gc => {
                format!("{v:.2}")
            }
            Figure::IdleRss | Figure::PeakRss => format!("{v:.1}"),
            Figure::SmallPush | Figure::SmallPushMono | Figure::Burst => format!("{v:.1}"),
            _ => format!("{v:.0}"),
        }
    }
}

/// Whether a table has the monolithic small-image line: the table without per-client
/// authentication has it (there it compares upload paths alone; with a login per image both
/// registries' figures are mostly login), and the table with authentication when it runs alone.
fn mono_in(args: &Args, mode: Mode) -> bool {
    mode == Mode::NoAuth || args.table == TableArg::Auth
}

/// Decides whether a target is met, given (berth value, ratio).
type TargetCheck = fn(f64, f64) -> bool;

#[derive(Default)]
struct Results {
    figures: BTreeMap<(Mode, Figure, &'static str), Vec<f64>>,
    /// Registries whose blob pull was redirected, and where to (`host:port`).
    redirected: BTreeMap<&'static str, String>,
}

fn record(results: &mut Results, mode: Mode, fig: Figure, kind: Kind, v: f64) {
    results
        .figures
        .entry((mode, fig, kind.name()))
        .or_default()
        .push(v);
}

fn median(v: &[f64]) -> Option<f64> {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}

fn client_cpu() -> f64 {
    server::cpu_secs("/proc/self/stat")
}

/// Busy CPU seconds of the whole machine (all cores) from `/proc/stat`.
fn machine_cpu() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else {
        return 0.0;
    };
    let Some(line) = stat.lines().next() else {
        return 0.0;
    };
    // cpu user nice system idle iowait irq softirq steal ...
    let v: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    let busy: f64 = [0, 1, 2, 5, 6, 7].iter().filter_map(|&i| v.get(i)).sum();
    busy / 100.0
}

/// Flushes dirty pages so one registry's writeback does not land in the other's timing.
fn sync_disks() {
    let _ = std::process::Command::new("sync").status();
}

/// How long to wait for an idle machine: at most `per` before each workload and `left`
/// over the whole run.
struct IdleWait {
    per: Duration,
    left: Duration,
}

/// Waits until the machine has been idle for half a second, so that a burst of unrelated
/// work (a compile, a test suite) does not land in a timed workload.
async fn wait_for_idle(budget: &mut IdleWait) {
    let max = budget.per.min(budget.left);
    let start = Instant::now();
    loop {
        let m0 = machine_cpu();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let busy = (machine_cpu() - m0) / 0.5;
        if busy < 0.15 || start.elapsed() >= max {
            budget.left = budget.left.saturating_sub(start.elapsed());
            if start.elapsed() > Duration::from_secs(1) {
                eprintln!(
                    "  (waited {:.0} s for the machine to go idle{})",
                    start.elapsed().as_secs_f64(),
                    if busy < 0.15 { "" } else { "; it did not" }
                );
            }
            return;
        }
    }
}

/// Runs one timed workload against one server with a timeout, printing a progress line
/// with client and server CPU time. Returns `None` (after printing why) on failure.
async fn run_one<T, F>(
    idle_wait: &mut IdleWait,
    server: &mut Server,
    what: &str,
    timeout: Duration,
    fut: F,
    show: impl Fn(&T) -> String,
) -> Option<T>
where
    F: Future<Output = Result<T>>,
{
    sync_disks();
    wait_for_idle(idle_wait).await;
    let backing_cpu = |s: &Server| s.backing.map_or((0.0, 0.0), |b| b.cpu_secs());
    let (c0, s0, b0, m0, t0) = (
        client_cpu(),
        server.cpu_secs(),
        backing_cpu(server),
        machine_cpu(),
        Instant::now(),
    );
    let res = match tokio::time::timeout(timeout, fut).await {
        Ok(r) => r,
        Err(_) => Err(anyhow!("timed out after {timeout:?}")),
    };
    let wall = t0.elapsed().as_secs_f64();
    let (c1, s1, b1, m1) = (
        client_cpu(),
        server.cpu_secs(),
        backing_cpu(server),
        machine_cpu(),
    );
    // CPU used by everything else on the machine (the idle registries, the kernel's
    // writeback threads, other users): a large figure means the result is noisy.
    let (pg, s3) = (b1.0 - b0.0, b1.1 - b0.1);
    let others = ((m1 - m0) - (s1 - s0) - pg - s3 - (c1 - c0)).max(0.0);
    let backing = if server.backing.is_some() {
        format!(", postgres {pg:.1} s, s3s-fs {s3:.1} s")
    } else {
        String::new()
    };
    let res = res.and_then(|v| server.check_alive().map(|()| v));
    match res {
        Ok(v) => {
            eprintln!(
                "  {:<12} {what:<14} {:<40} [{wall:.1} s; cpu: server {:.1} s{backing}, client \
                 {:.1} s, others {others:.1} s]{}",
                server.kind.name(),
                show(&v),
                s1 - s0,
                c1 - c0,
                if others > 0.25 * wall { " NOISY" } else { "" }
            );
            Some(v)
        }
        Err(e) => {
            eprintln!("  {:<12} {what:<14} FAILED: {e:#}", server.kind.name());
            None
        }
    }
}

struct Prepared {
    big: BigBlob,
    manifest_image: SmallImage,
    /// The small-image push (POST+PATCH+PUT).
    images: Arc<Vec<SmallImage>>,
    /// The monolithic small-image push: as many other images.
    mono_images: Arc<Vec<SmallImage>>,
    /// The CI burst: one image per client.
    burst_images: Arc<Vec<SmallImage>>,
}

const BIG_REPO: &str = "bench/big";
/// The repositories of the small images (and of the CI burst): `bench/small-0` … `-31`.
const SMALL_REPOS: usize = 32;

fn small_repo(i: usize) -> String {
    format!("bench/small-{}", i % SMALL_REPOS)
}

/// The one token a Berth gets per start in the "noauth" table: every repository the workloads
/// touch, pull, push and delete (as the bench used before it logged clients in one by one).
async fn run_token(addr: std::net::SocketAddr) -> Result<String> {
    let mut repos = vec![
        BIG_REPO.to_string(),
        "bench/manifest".into(),
        workloads::PROBE_REPO.into(),
        workloads::LOGIN_REPO.into(),
    ];
    repos.extend((0..SMALL_REPOS).map(small_repo));
    let repos: Vec<&str> = repos.iter().map(String::as_str).collect();
    let conn = workloads::client(
        addr,
        &Access::login(login::USER, BENCH_PASSWORD),
        &repos,
        "pull,push,delete",
    )
    .await?;
    conn.auth
        .ok_or_else(|| anyhow!("the login gave no Authorization value"))
}

/// Runs one round of one table: starts the registries (the pg+s3 column on a fresh database
/// and bucket prefix from `backing`), runs the workloads, stops the registries and frees the
/// round's database and prefix.
#[allow(clippy::too_many_arguments)]
async fn run_round(
    args: &Args,
    mode: Mode,
    round: usize,
    kinds: &[Kind],
    opts: &StartOptions<'_>,
    mut backing: Option<&mut Backing>,
    data: &Prepared,
    results: &mut Results,
    idle: &mut IdleWait,
) -> Result<()> {
    let opts = StartOptions {
        dist_auth: mode == Mode::Auth,
        ..*opts
    };
    let mut round_env: Option<RoundEnv> = None;
    let mut servers: Vec<Server> = Vec::new();
    for &kind in kinds {
        let started = match (kind, backing.as_deref_mut()) {
            (Kind::BerthPgS3, Some(b)) => match b.check_alive().and_then(|()| b.round(round)) {
                Ok(env) => {
                    let s = Server::start(kind, &opts, &env.env, Some(b.pids())).await;
                    round_env = Some(env);
                    s
                }
                Err(e) => Err(e),
            },
            (Kind::BerthPgS3, None) => continue,
            _ => Server::start(kind, &opts, &[], None).await,
        };
        let started = match started {
            Ok(mut s) => {
                let access = match (mode, s.kind) {
                    (Mode::Auth, _) => Ok(Access::login(login::USER, BENCH_PASSWORD)),
                    (Mode::NoAuth, Kind::Distribution) => Ok(Access::Shared(None)),
                    (Mode::NoAuth, _) => run_token(s.addr)
                        .await
                        .map(|t| Access::Shared(Some(t)))
                        .context("the run's token"),
                };
                access.map(|a| {
                    s.access = a;
                    s
                })
            }
            Err(e) => Err(e),
        };
        match started {
            Ok(s) => servers.push(s),
            Err(e) => eprintln!("  {:<12} start FAILED: {e:#}", kind.name()),
        }
    }
    let res = if servers.is_empty() {
        Err(anyhow!("no registry started"))
    } else {
        run_workloads(args, mode, &mut servers, data, results, idle).await
    };
    drop(servers);
    if let (Some(b), Some(env)) = (backing, &round_env) {
        b.end_round(env);
    }
    res
}

/// A logged-in client's `Authorization` value for `repo` (`actions`), for the raw GET paths.
async fn auth_for(s: &Server, repo: &str, actions: &str) -> Result<Option<String>> {
    Ok(workloads::client(s.addr, &s.access, &[repo], actions)
        .await?
        .auth)
}

/// Runs every workload against each of `servers` in turn.
async fn run_workloads(
    args: &Args,
    mode: Mode,
    servers: &mut [Server],
    data: &Prepared,
    results: &mut Results,
    idle: &mut IdleWait,
) -> Result<()> {
    tokio::time::sleep(Duration::from_millis(300)).await;
    for s in servers.iter() {
        match s.memory() {
            Ok((rss, _)) => {
                eprintln!("  {:<12} idle RSS       {rss:.1} MiB", s.kind.name());
                record(results, mode, Figure::IdleRss, s.kind, rss);
            }
            Err(e) => eprintln!("  {:<12} idle RSS FAILED: {e:#}", s.kind.name()),
        }
    }

    // The monolithic upload each registry takes (for the extra small-image line).
    let mono = mono_in(args, mode);
    let mut modes = Vec::new();
    for s in servers.iter().filter(|_| mono) {
        let m = workloads::detect_upload_mode(s.addr, &s.access).await;
        if let Err(e) = &m {
            eprintln!("  {:<12} upload probe FAILED: {e:#}", s.kind.name());
        }
        modes.push(m.ok());
    }

    // 1. Large blob push.
    let chunk = args.chunk_mib << 20;
    let mut pushed = vec![false; servers.len()];
    for (i, s) in servers.iter_mut().enumerate() {
        let (addr, access) = (s.addr, s.access.clone());
        let big = &data.big;
        let r = run_one(
            idle,
            s,
            "blob push",
            Duration::from_secs(300),
            workloads::push_blob(addr, &access, BIG_REPO, big, chunk),
            |v| format!("{v:.0} MiB/s"),
        )
        .await;
        if let Some(v) = r {
            record(results, mode, Figure::Push, s.kind, v);
            pushed[i] = true;
        }
    }

    // 2. Large blob pull.
    for (i, s) in servers.iter_mut().enumerate() {
        if !pushed[i] {
            continue;
        }
        let addr = s.addr;
        let auth = match auth_for(s, BIG_REPO, "pull").await {
            Ok(a) => a,
            Err(e) => {
                eprintln!("  {:<12} blob pull login FAILED: {e:#}", s.kind.name());
                continue;
            }
        };
        let r = run_one(
            idle,
            s,
            "blob pull",
            Duration::from_secs(300),
            workloads::pull_blob(
                addr,
                auth.as_deref(),
                BIG_REPO,
                &data.big.digest,
                data.big.size(),
            ),
            |p| match &p.redirect {
                Some((host, after)) => format!(
                    "{:.0} MiB/s (307 after {:.1} ms to {host})",
                    p.mib_s,
                    after.as_secs_f64() * 1000.0
                ),
                None => format!("{:.0} MiB/s", p.mib_s),
            },
        )
        .await;
        if let Some(p) = r {
            record(results, mode, Figure::Pull, s.kind, p.mib_s);
            if let Some((host, _)) = p.redirect {
                results.redirected.insert(s.kind.name(), host);
            }
        }
    }

    // 3. Manifest GET.
    let duration = Duration::from_secs_f64(args.duration_secs);
    for s in servers.iter_mut() {
        let addr = s.addr;
        let img = &data.manifest_image;
        let setup = async {
            let mut conn =
                workloads::client(addr, &s.access, &[img.repo.as_str()], "pull,push").await?;
            workloads::push_image(&mut conn, img, UploadMode::Chunked).await?;
            auth_for(s, &img.repo, "pull").await
        };
        let auth = match setup.await {
            Ok(a) => a,
            Err(e) => {
                eprintln!("  {:<12} manifest setup FAILED: {e:#}", s.kind.name());
                continue;
            }
        };
        let r = run_one(
            idle,
            s,
            "manifest GET",
            duration + Duration::from_secs(60),
            workloads::manifest_get(
                addr,
                auth.as_deref(),
                &img.repo,
                &img.tag,
                args.connections,
                duration,
            ),
            |m| {
                format!(
                    "{:.0} req/s, p50 {:.2} ms, p99 {:.2} ms ({} req, {} err)",
                    m.rps, m.p50_ms, m.p99_ms, m.requests, m.errors
                )
            },
        )
        .await;
        if let Some(m) = r {
            record(results, mode, Figure::ManifestRps, s.kind, m.rps);
            record(results, mode, Figure::ManifestP50, s.kind, m.p50_ms);
            record(results, mode, Figure::ManifestP99, s.kind, m.p99_ms);
        }
    }

    // 4. Concurrent small-image pushes, the way clients push (POST, PATCH, PUT), then the same
    // number of other images through the registry's monolithic upload.
    let mut pushed_images: Vec<Vec<&SmallImage>> = vec![Vec::new(); servers.len()];
    for (i, s) in servers.iter_mut().enumerate() {
        for (fig, set, m) in [
            (Figure::SmallPush, &data.images, Some(UploadMode::Chunked)),
            (
                Figure::SmallPushMono,
                &data.mono_images,
                modes.get(i).copied().flatten(),
            ),
        ] {
            let Some(m) = m else { continue };
            let (addr, access) = (s.addr, s.access.clone());
            let what = if fig == Figure::SmallPush {
                "small pushes"
            } else {
                "mono pushes"
            };
            let r = run_one(
                idle,
                s,
                what,
                Duration::from_secs(300),
                workloads::push_images(addr, &access, set.clone(), args.push_concurrency, m),
                |v| format!("{v:.1} images/s ({})", m.describe()),
            )
            .await;
            if let Some(v) = r {
                record(results, mode, fig, s.kind, v);
                pushed_images[i].extend(set.iter());
            }
        }
    }

    // 5. The CI burst: one fresh client per image, all at once.
    if !data.burst_images.is_empty() {
        for (i, s) in servers.iter_mut().enumerate() {
            let (addr, access) = (s.addr, s.access.clone());
            let r = run_one(
                idle,
                s,
                "CI burst",
                Duration::from_secs(300),
                workloads::ci_burst(
                    addr,
                    &access,
                    data.burst_images.clone(),
                    UploadMode::Chunked,
                ),
                |b| {
                    format!(
                        "{:.1} images/s ({:.2} s), p50 {:.0} ms, max {:.0} ms",
                        b.images_s, b.wall_s, b.p50_ms, b.max_ms
                    )
                },
            )
            .await;
            if let Some(b) = r {
                record(results, mode, Figure::Burst, s.kind, b.images_s);
                record(results, mode, Figure::BurstP50, s.kind, b.p50_ms);
                record(results, mode, Figure::BurstMax, s.kind, b.max_ms);
                pushed_images[i].extend(data.burst_images.iter());
            }
        }
    }

    // 6. Logins (with authentication only): the same credentials again and again, and for
    // Berth the same with a robot account.
    let login_time = Duration::from_secs_f64(args.login_secs);
    if mode == Mode::Auth && args.login_secs > 0.0 && args.login_clients > 0 {
        for s in servers.iter_mut() {
            let addr = s.addr;
            let mut accounts = vec![(
                Figure::Login,
                login::USER.to_string(),
                BENCH_PASSWORD.to_string(),
            )];
            if matches!(s.kind, Kind::Berth | Kind::BerthPgS3) {
                match workloads::create_robot(addr, "benchbot").await {
                    Ok((user, token)) => accounts.push((Figure::RobotLogin, user, token)),
                    Err(e) => eprintln!("  {:<12} robot FAILED: {e:#}", s.kind.name()),
                }
            }
            for (fig, user, password) in accounts {
                let what = if fig == Figure::Login {
                    "login"
                } else {
                    "robot login"
                };
                let r = run_one(
                    idle,
                    s,
                    what,
                    login_time + Duration::from_secs(120),
                    workloads::logins(addr, &user, &password, args.login_clients, login_time),
                    |l| {
                        format!(
                            "{:.0} logins/s, p50 {:.2} ms, max {:.1} ms ({} logins)",
                            l.rate, l.p50_ms, l.max_ms, l.logins
                        )
                    },
                )
                .await;
                if let Some(l) = r {
                    record(results, mode, fig, s.kind, l.rate);
                    if fig == Figure::Login {
                        record(results, mode, Figure::LoginP50, s.kind, l.p50_ms);
                    }
                }
            }
        }
    }

    // 7. Peak RSS over the round.
    for s in servers.iter_mut() {
        if s.check_alive().is_err() {
            continue;
        }
        match s.memory() {
            Ok((rss, hwm)) => {
                eprintln!(
                    "  {:<12} RSS now {rss:.1} MiB, peak {hwm:.1} MiB",
                    s.kind.name()
                );
                record(results, mode, Figure::PeakRss, s.kind, hwm);
            }
            Err(e) => eprintln!("  {:<12} peak RSS FAILED: {e:#}", s.kind.name()),
        }
    }

    // 8. Garbage collection: delete every small image by digest, then collect. Berth collects
    // online (one pass through its API, the registry serving all along); Distribution needs its
    // offline `garbage-collect` with the registry stopped, so this runs last.
    let expected =
        data.images.len() + if mono { data.mono_images.len() } else { 0 } + data.burst_images.len();
    for (i, s) in servers.iter_mut().enumerate() {
        if pushed_images[i].is_empty() || s.check_alive().is_err() {
            continue;
        }
        let addr = s.addr;
        match workloads::delete_images(addr, &s.access, &pushed_images[i]).await {
            Ok(n) => eprintln!("  {:<12} deleted {n} images", s.kind.name()),
            Err(e) => {
                eprintln!("  {:<12} delete FAILED: {e:#}", s.kind.name());
                continue;
            }
        }
        sync_disks();
        wait_for_idle(idle).await;
        let t0 = Instant::now();
        let freed = match s.kind {
            Kind::Berth | Kind::BerthPgS3 => workloads::berth_gc(addr).await,
            Kind::Distribution => s.offline_gc(args.registry_bin.as_path()),
        };
        let wall = t0.elapsed().as_secs_f64();
        match freed {
            Ok(n) => {
                eprintln!(
                    "  {:<12} gc             {wall:.2} s, {n} blobs freed{}",
                    s.kind.name(),
                    if matches!(s.kind, Kind::Distribution) {
                        " (offline: registry stopped)"
                    } else {
                        " (online)"
                    }
                );
                // Only a GC after every image was pushed and deleted counts.
                if pushed_images[i].len() == expected {
                    record(results, mode, Figure::Gc, s.kind, wall);
                }
            }
            Err(e) => eprintln!("  {:<12} gc FAILED: {e:#}", s.kind.name()),
        }
    }
    Ok(())
}

fn print_table(
    args: &Args,
    mode: Mode,
    kinds: &[Kind],
    results: &Results,
    rounds: usize,
    pg_s3_rounds: usize,
) {
    let get = |fig: Figure, kind: Kind| {
        results
            .figures
            .get(&(mode, fig, kind.name()))
            .and_then(|v| median(v))
    };
    let has_dist = kinds.contains(&Kind::Distribution);
    // Columns: each registry, then each Berth's ratio to Distribution.
    let ratio_kinds: Vec<(Kind, &str)> = [(Kind::Berth, "berth"), (Kind::BerthPgS3, "pg+s3")]
        .into_iter()
        .filter(|(k, _)| has_dist && kinds.contains(k))
        .collect();
    let mut header = vec!["figure".to_string()];
    header.extend(kinds.iter().map(|k| k.name().to_string()));
    header.extend(
        ratio_kinds
            .iter()
            .map(|(_, short)| format!("{short} ratio")),
    );
    let mut rows = vec![header];
    let mut verdicts = Vec::new();
    for fig in Figure::ALL {
        // A figure this table does not have (logins without authentication, a workload
        // switched off) gets no row.
        if kinds.iter().all(|&k| get(fig, k).is_none()) {
            continue;
        }
        let d = get(fig, Kind::Distribution);
        let ratio = |kind: Kind| match (get(fig, kind), d) {
            (Some(b), Some(d)) if b > 0.0 && d > 0.0 => {
                Some(if fig.lower_is_better() { d / b } else { b / d })
            }
            _ => None,
        };
        let show = |v: Option<f64>| v.map_or("-".to_string(), |v| fig.format(v));
        let mut row = vec![fig.label(args, mode)];
        row.extend(kinds.iter().map(|&k| show(get(fig, k))));
        for &(kind, short) in &ratio_kinds {
            row.push(ratio(kind).map_or("-".to_string(), |r| {
                let how = if fig.lower_is_better() {
                    format!("dist/{short}")
                } else {
                    format!("{short}/dist")
                };
                format!("{r:.2}x ({how})")
            }));
        }
        rows.push(row);
        if let (Some((desc, ok)), Some(b)) = (fig.target(), get(fig, Kind::Berth)) {
            let r = ratio(Kind::Berth).unwrap_or(f64::NAN);
            let met = ok(b, r);
            verdicts.push(format!("{} {desc}", if met { "met   " } else { "MISSED" }));
        }
    }
    let ncols = rows[0].len();
    let widths: Vec<usize> = (0..ncols)
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    println!();
    let pg_s3 = if kinds.contains(&Kind::BerthPgS3) && pg_s3_rounds < rounds {
        format!(" (berth pg+s3: {pg_s3_rounds})")
    } else {
        String::new()
    };
    println!("Berth vs CNCF Distribution, {}", mode.title());
    println!(
        "Median of {rounds} round(s){pg_s3}; ratio is berth/dist for throughput and dist/berth \
         for latency and RSS, so >1 always means Berth is better"
    );
    for (i, row) in rows.iter().enumerate() {
        let line: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, cell)| {
                if c == 0 {
                    format!("{cell:<w$}", w = widths[c])
                } else {
                    format!("{cell:>w$}", w = widths[c])
                }
            })
            .collect();
        println!("| {} |", line.join(" | "));
        if i == 0 {
            let sep: Vec<String> = widths
                .iter()
                .enumerate()
                .map(|(c, w)| {
                    if c == 0 {
                        "-".repeat(*w)
                    } else {
                        format!("{}:", "-".repeat(w.saturating_sub(1)))
                    }
                })
                .collect();
            println!("| {} |", sep.join(" | "));
        }
    }
    if !verdicts.is_empty() && has_dist && kinds.contains(&Kind::Berth) {
        println!();
        println!("Targets (berth, {}): {}", mode.short(), verdicts.join("; "));
    }
}

/// The notes under the tables.
fn print_notes(kinds: &[Kind], results: &Results) {
    if kinds.contains(&Kind::BerthPgS3) {
        let pull = if results.redirected.contains_key(Kind::BerthPgS3.name()) {
            "Blob pull follows Berth's 307 to a presigned s3s-fs URL and times redirect plus \
             download."
        } else {
            "Blob pull was not redirected (Berth streamed the blob itself)."
        };
        println!();
        println!(
            "berth pg+s3: the same Berth binary with BERTH_DB_URI on a local PostgreSQL \
             (fsync on) and S3Storage on a local s3s-fs (which does not fsync, and whose \
             ListObjects walks the whole bucket: Berth lists an upload's chunks on every \
             commit, so small-image push mostly measures s3s-fs). {pull} RSS is Berth's alone \
             (PostgreSQL and s3s-fs not counted)."
        );
    }
    println!();
    println!(
        "GC: every small image deleted by digest, then collected. Berth runs one pass of its \
         online collector (POST /api/v1/superuser/gc; no time-machine window, no grace period) \
         while it keeps serving; Distribution's `registry garbage-collect` needs the registry \
         stopped. Distribution keeps manifests as blob files, so it reports one more file per \
         image."
    );
}

async fn run(args: Args) -> Result<()> {
    if args.rounds == 0 || args.size_mib == 0 || args.connections == 0 || args.images == 0 {
        bail!("--rounds, --size-mib, --connections and --images must be positive");
    }
    if !args.duration_secs.is_finite() || args.duration_secs <= 0.0 {
        bail!("--duration-secs must be positive");
    }
    if !args.idle_wait_secs.is_finite() || args.idle_wait_secs < 0.0 {
        bail!("--idle-wait-secs must be zero or positive");
    }
    if !args.login_secs.is_finite() || args.login_secs < 0.0 {
        bail!("--login-secs must be zero or positive");
    }
    if args.push_concurrency == 0 {
        bail!("--push-concurrency must be positive");
    }
    let chunk_ok = args
        .chunk_mib
        .checked_mul(1 << 20)
        .is_some_and(|c| c <= 1 << 40);
    if !chunk_ok {
        bail!("--chunk-mib too large");
    }
    if args.scan_only {
        let t = Instant::now();
        let figures = scan::run(args.rounds, &args.bench_data, &args.vulndb_dir).await;
        scan::print(&figures, args.rounds);
        eprintln!("total {:.0} s", t.elapsed().as_secs_f64());
        return Ok(());
    }
    let mut kinds: Vec<Kind> = [Kind::Berth, Kind::BerthPgS3, Kind::Distribution]
        .into_iter()
        .filter(|&k| args.only.is_empty() || args.only.iter().any(|o| o.kind() == k))
        .filter(|&k| !((args.no_pg_s3 || args.pg_s3_rounds == Some(0)) && k == Kind::BerthPgS3))
        .collect();
    if kinds.is_empty() {
        bail!("--only and --no-pg-s3 leave no registry to benchmark");
    }
    let is_berth = |k: &Kind| matches!(k, Kind::Berth | Kind::BerthPgS3);
    if !args.self_test && kinds.iter().any(is_berth) && !args.berth_bin.exists() {
        bail!(
            "Berth binary {} not found (build it with `cargo build --release --bin berth`, or pass --berth-bin)",
            args.berth_bin.display()
        );
    }
    // The servers run with their temp directory as working directory: make the path absolute.
    let berth_bin =
        std::fs::canonicalize(&args.berth_bin).unwrap_or_else(|_| args.berth_bin.clone());
    let mut berth_env = Vec::new();
    for kv in &args.berth_env {
        let Some((k, v)) = kv.split_once('=') else {
            bail!("--berth-env {kv:?}: expected KEY=VALUE");
        };
        berth_env.push((k.to_string(), v.to_string()));
    }
    let opts = StartOptions {
        berth_bin: &berth_bin,
        berth_env: &berth_env,
        registry_bin: &args.registry_bin,
        keep: args.keep,
        dist_cache: args.dist_cache,
        dist_auth: false,
    };

    if let Ok(load) = std::fs::read_to_string("/proc/loadavg")
        && let Some(one) = load
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<f64>().ok())
        && one > 1.0
    {
        eprintln!("warning: 1-minute load average is {one:.2}; figures will be noisy");
    }
    let t = Instant::now();
    let size = args
        .size_mib
        .checked_mul(1 << 20)
        .context("--size-mib too large")?;
    let big = tokio::task::spawn_blocking(move || BigBlob::generate(size)).await?;
    // Three sets of small images of the same shape (config + 3 layers of 4-100 KiB), each
    // image its own random bytes: the small-image push, its monolithic twin, the CI burst.
    let (n_images, n_burst) = (args.images, args.burst_clients);
    let (images, mono_images, burst_images) = tokio::task::spawn_blocking(move || {
        let set = |n: usize, tag: &str| {
            (0..n)
                .map(|i| {
                    SmallImage::generate(small_repo(i), format!("{tag}{i}"), 3, 4 << 10, 100 << 10)
                })
                .collect::<Vec<_>>()
        };
        (set(n_images, "t"), set(n_images, "m"), set(n_burst, "ci-"))
    })
    .await?;
    let manifest_image = SmallImage::generate(
        "bench/manifest".to_string(),
        "latest".to_string(),
        1,
        4 << 10,
        100 << 10,
    );
    eprintln!(
        "prepared {} MiB blob ({}) and {} small images in {:.1} s",
        args.size_mib,
        big.digest,
        images.len() + mono_images.len() + burst_images.len(),
        t.elapsed().as_secs_f64()
    );
    if args.self_test {
        return selftest::run(
            &big,
            manifest_image.manifest.clone(),
            args.connections,
            Duration::from_secs_f64(args.duration_secs),
        )
        .await;
    }
    let data = Prepared {
        big,
        manifest_image,
        images: Arc::new(images),
        mono_images: Arc::new(mono_images),
        burst_images: Arc::new(burst_images),
    };

    // PostgreSQL and s3s-fs for the pg+s3 column: once per run. If they are missing or fail
    // to start, that column is skipped.
    let mut backing = None;
    if kinds.contains(&Kind::BerthPgS3) {
        let bin = args.s3s_fs_bin.clone().or_else(backing::find_s3s_fs);
        match bin {
            None => eprintln!(
                "s3s-fs not found on PATH or in ~/.cargo/bin: skipping the berth pg+s3 column \
                 (install it with `{}`, or pass --no-pg-s3)",
                backing::S3S_FS_INSTALL
            ),
            Some(bin) => match Backing::start(&bin, args.keep).await {
                Ok(b) => backing = Some(b),
                Err(e) => eprintln!(
                    "PostgreSQL/s3s-fs did not start, skipping the berth pg+s3 column: {e:#}"
                ),
            },
        }
        if backing.is_none() {
            kinds.retain(|&k| k != Kind::BerthPgS3);
            if kinds.is_empty() {
                bail!("no registry left to benchmark");
            }
        }
    }

    let mut results = Results::default();
    let mut idle = IdleWait {
        per: Duration::from_secs_f64(args.idle_wait_secs),
        left: Duration::from_secs(120),
    };
    let pg_s3_rounds = match args.pg_s3_rounds {
        Some(n) => n.min(args.rounds),
        None if kinds == [Kind::BerthPgS3] => args.rounds,
        None => 1,
    };
    let modes: &[Mode] = match args.table {
        TableArg::Auth => &[Mode::Auth],
        TableArg::Noauth => &[Mode::NoAuth],
        TableArg::Both => &[Mode::Auth, Mode::NoAuth],
    };
    for round in 1..=args.rounds {
        let round_kinds: Vec<Kind> = kinds
            .iter()
            .copied()
            .filter(|&k| k != Kind::BerthPgS3 || round <= pg_s3_rounds)
            .collect();
        if round_kinds.is_empty() {
            break;
        }
        if round == pg_s3_rounds + 1 {
            // No later round needs PostgreSQL or s3s-fs.
            backing = None;
        }
        for (m, &mode) in modes.iter().enumerate() {
            eprintln!("round {round}/{}, {}", args.rounds, mode.title());
            // Each table's registries get their own database and bucket prefix.
            let slot = (round - 1) * modes.len() + m + 1;
            run_round(
                &args,
                mode,
                slot,
                &round_kinds,
                &opts,
                backing.as_mut(),
                &data,
                &mut results,
                &mut idle,
            )
            .await?;
        }
    }
    drop(backing);
    let ui = if args.ui_tags > 0 && kinds.contains(&Kind::Berth) {
        eprintln!("UI (Berth only)");
        match ui::run(&opts, &[10, args.ui_tags]).await {
            Ok(f) => f,
            Err(e) => {
                eprintln!("  ui FAILED: {e:#}");
                Vec::new()
            }
        }
    } else {
        Vec::new()
    };
    let scanner = if args.no_scan {
        None
    } else {
        Some(scan::run(args.rounds, &args.bench_data, &args.vulndb_dir).await)
    };
    for &mode in modes {
        print_table(&args, mode, &kinds, &results, args.rounds, pg_s3_rounds);
    }
    print_notes(&kinds, &results);
    ui::print(&ui);
    if let Some(f) = &scanner {
        scan::print(f, args.rounds);
    }
    eprintln!("total {:.0} s", t.elapsed().as_secs_f64());
    Ok(())
}

async fn run_until_signal(args: Args) -> Result<()> {
    // Returning (rather than exiting) on a signal lets the servers' Drop kill them.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = run(args) => r,
        _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted")),
        _ = term.recv() => Err(anyhow!("terminated")),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run_until_signal(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
