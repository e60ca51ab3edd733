//! Process wiring for `berth serve`: logging, database, storage, metrics, and the listener
//! (plain HTTP or TLS), with a clean shutdown on SIGINT/SIGTERM.

use crate::config::Config;
use anyhow::Context;
use berth_api::AppState;
use berth_core::Locations;
use berth_core::{CoreConfig, Db, Registry};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_rustls::rustls;

fn init_logging(json: bool) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    // Colours only for a person at a terminal; a log file or journal gets plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stdout().is_terminal());
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Opens the configured database. The data directory is created only when the database lives
/// in it (a local storage location creates its own directory), so a configuration that puts
/// everything elsewhere leaves no stray ./berth-data behind.
pub(crate) async fn open_db(cfg: &Config) -> anyhow::Result<Db> {
    if cfg.database_in_data_dir() {
        std::fs::create_dir_all(&cfg.data_dir)
            .with_context(|| format!("cannot create data directory {}", cfg.data_dir.display()))?;
    }
    let uri = cfg.db_uri();
    Db::connect(&uri, cfg.db_max_connections)
        .await
        .with_context(|| format!("cannot open the database {} (DB_URI)", cfg.db_uri_display()))
}

pub async fn migrate_only(cfg: Config) -> anyhow::Result<()> {
    init_logging(cfg.log_json);
    let db = open_db(&cfg).await?;
    db.migrate().await.context("database migration failed")?;
    println!("database {} is up to date", cfg.db_uri_display());
    Ok(())
}

fn open_locations(cfg: &Config) -> anyhow::Result<Locations> {
    let mut stores = BTreeMap::new();
    for (name, spec) in &cfg.storage {
        let store = berth_storage::open(spec)
            .with_context(|| format!("cannot open storage location {name} ({spec})"))?;
        stores.insert(name.clone(), store);
    }
    Locations::new(cfg.storage_order(), stores, cfg.replication_targets())
        .map_err(|e| anyhow::anyhow!("DISTRIBUTED_STORAGE_CONFIG: {e}"))
}

/// `berth vulndb …`: imports vulnerability data into the configured database, or lists it.
pub async fn vulndb(cfg: Config, cmd: crate::VulndbCommand) -> anyhow::Result<()> {
    init_logging(cfg.log_json);
    let registry = registry(&cfg, true).await?;
    match cmd {
        crate::VulndbCommand::Import { sources } => {
            let mut failed = 0;
            for s in &sources {
                match registry.import_vuln_source(s).await {
                    Ok(r) => {
                        println!(
                            "{s}: {} records read, {} written, {} unchanged, {} removed, {} unreadable",
                            r.read, r.written, r.unchanged, r.removed, r.unreadable
                        );
                        for e in &r.errors {
                            println!("  unreadable: {e}");
                        }
                    }
                    Err(e) => {
                        failed += 1;
                        eprintln!("{s}: not imported: {e}");
                    }
                }
            }
            if failed > 0 {
                anyhow::bail!("{failed} of {} sources were not imported", sources.len());
            }
        }
        crate::VulndbCommand::Status => {
            let st = registry.scanner_state().await?;
            println!(
                "scanner: {}; {} vulnerability records",
                if st.enabled {
                    "on"
                } else {
                    "off (FEATURE_SECURITY_SCANNER: false)"
                },
                st.records
            );
            for s in st.sources {
                println!(
                    "{}: {} records, imported {}, newest record {}{}",
                    s.source,
                    s.records,
                    when(s.imported_at),
                    when(s.newest),
                    s.last_error
                        .map(|e| format!(", last error: {e}"))
                        .unwrap_or_default()
                );
            }
            for (state, n) in st.layers {
                println!("layers {state}: {n}");
            }
        }
    }
    Ok(())
}

/// What the banner says about vulnerability scanning: off, on without data (so that no one
/// reads an empty report as "no vulnerabilities"), or on with its sources.
async fn scanner_banner(cfg: &Config, registry: &Registry) -> Vec<String> {
    if !cfg.scan.enabled {
        return vec!["vulnerability scanning is off (FEATURE_SECURITY_SCANNER: false)".into()];
    }
    let records = registry
        .scanner_state()
        .await
        .map(|s| s.records)
        .unwrap_or(0);
    if cfg.scan.sources.is_empty() && records == 0 {
        return vec![
            "vulnerability scanning: layers are indexed, but NO vulnerability data is configured; reports list packages only".into(),
            "  add data: SECURITY_SCANNER_OSV_SOURCES: [https://…/PyPI/all.zip, /srv/osv/Debian] or `berth vulndb import PATH`".into(),
        ];
    }
    vec![format!(
        "vulnerability scanning: {} sources configured, {records} records loaded (imported at start and every {})",
        cfg.scan.sources.len(),
        humantime::format_duration(cfg.scan.update_interval)
    )]
}

fn when(ms: i64) -> String {
    if ms <= 0 {
        return "never".into();
    }
    let t =
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_seconds(t).to_string()
}

/// The registry core over the configured database and storage.
async fn registry(cfg: &Config, migrate: bool) -> anyhow::Result<Registry> {
    let db = open_db(cfg).await?;
    if migrate {
        db.migrate().await.context("database migration failed")?;
    }
    Ok(Registry::new(
        db,
        open_locations(cfg)?,
        CoreConfig {
            gc: cfg.gc.clone(),
            quota: cfg.quota.clone(),
            immutable_tags_can_expire: cfg.immutable_tags_can_expire,
            max_blob_bytes: cfg.max_layer_bytes,
            notify: berth_core::notify::NotifyConfig {
                server_hostname: cfg.server_hostname.clone(),
                scheme: cfg.preferred_url_scheme.clone(),
                database_secret: cfg.auth.database_secret.clone(),
                mail: (cfg.mailing && !cfg.mail.server.is_empty()).then(|| cfg.mail.clone()),
                ..cfg.notify.clone()
            },
            scan: cfg.scan.clone(),
            mirror: cfg.mirror.clone(),
            proxy: cfg.proxy.clone(),
            ..CoreConfig::default()
        },
    ))
}

fn lease(cfg: &Config) -> std::time::Duration {
    std::time::Duration::from_secs(cfg.job_lease_seconds)
}

/// `berth worker`: background jobs only, no HTTP.
pub async fn worker_only(cfg: Config) -> anyhow::Result<()> {
    init_logging(cfg.log_json);
    let registry = registry(&cfg, false).await?;
    if cfg.registry_readonly {
        // Every worker writes; a read-only registry runs none until the state is lifted.
        tracing::info!("REGISTRY_STATE: readonly: background workers wait until it is lifted");
        shutdown_signal().await;
        return Ok(());
    }
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(berth_worker::run(registry, lease(&cfg), stopped));
    shutdown_signal().await;
    let _ = stop.send(true);
    let _ = worker.await;
    Ok(())
}

fn tls_config(cfg: &Config) -> anyhow::Result<Option<Arc<rustls::ServerConfig>>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let (Some(cert), Some(key)) = (&cfg.tls_cert_file, &cfg.tls_key_file) else {
        return Ok(None);
    };
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .with_context(|| {
            format!(
                "TLS_CERT_FILE {}: not a readable PEM certificate chain",
                cert.display()
            )
        })?;
    let key = PrivateKeyDer::from_pem_file(key).with_context(|| {
        format!(
            "TLS_KEY_FILE {}: not a readable PEM private key",
            key.display()
        )
    })?;
    let mut sc = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("TLS_CERT_FILE and TLS_KEY_FILE do not form a usable certificate and key")?;
    sc.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Some(Arc::new(sc)))
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// Counts SIGINT/SIGTERM: the first begins a graceful shutdown, the second stops at once.
fn signals() -> tokio::sync::watch::Receiver<u32> {
    let (tx, rx) = tokio::sync::watch::channel(0u32);
    tokio::spawn(async move {
        for n in 1..=2 {
            shutdown_signal().await;
            if tx.send(n).is_err() {
                return;
            }
        }
    });
    rx
}

/// Binds a listener, saying what to do when it cannot.
async fn bind(addr: &str, key: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|e| {
        let hint = match e.kind() {
            std::io::ErrorKind::AddrInUse => {
                "another process is using that port: stop it, or choose another port"
            }
            std::io::ErrorKind::PermissionDenied => {
                "ports below 1024 need privileges: use a port such as 5000, or grant CAP_NET_BIND_SERVICE"
            }
            std::io::ErrorKind::AddrNotAvailable => {
                "that address is not on this machine: use 127.0.0.1, 0.0.0.0 or one of its own addresses"
            }
            _ => "check the address",
        };
        anyhow::anyhow!("cannot listen on {addr} ({key}): {e}; {hint}")
    })
}

pub async fn serve(cfg: Config, migrate: bool, workers: bool) -> anyhow::Result<()> {
    init_logging(cfg.log_json);
    // The listeners come first: a start that cannot bind creates nothing (no database, and no
    // first superuser whose generated password nobody would see).
    let listener = bind(&cfg.listen, "LISTEN_ADDRESS / --listen").await?;
    let metrics_listener = match &cfg.metrics_listen {
        Some(a) => Some(bind(a, "METRICS_LISTEN_ADDRESS").await?),
        None => None,
    };
    let mut sig = signals();
    let registry = registry(&cfg, migrate).await?;
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .context("cannot install the metrics recorder")?;
    berth_api::describe_metrics();
    // Read-only: pull times are not written either (reads stay reads).
    let background = (!cfg.registry_readonly).then(|| registry.spawn_background());
    let (stop_workers, workers_stopped) = tokio::sync::watch::channel(false);
    // Read-only: workers write (collection, pruning, expiry, replication), so they wait.
    let worker = (workers && !cfg.registry_readonly).then(|| {
        tokio::spawn(berth_worker::run(
            registry.clone(),
            lease(&cfg),
            workers_stopped,
        ))
    });
    let auth = registry
        .auth(cfg.auth.clone())
        .await
        .context("cannot load identity and access (signing keys, secrets)")?;
    let first_admin = if cfg.user_initialize || cfg.registry_readonly {
        None
    } else {
        auth.bootstrap_superuser(&cfg.bootstrap_superuser, cfg.bootstrap_password.as_deref())
            .await
            .context("cannot create the first superuser")?
    };
    let unshown = match &first_admin {
        None => auth.unshown_bootstrap_user().await.unwrap_or(None),
        Some(_) => None,
    };
    let audit_flusher = auth.audit.spawn_flusher();
    let tls = tls_config(&cfg)?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let state = AppState {
        registry: registry.clone(),
        metrics: Some(metrics),
        redirect_blobs: !cfg.proxy_storage,
        auth: auth.clone(),
        public_url: cfg
            .server_hostname_set
            .then(|| format!("{}://{}", cfg.preferred_url_scheme, cfg.server_hostname)),
        scheme,
        user_initialize: cfg.user_initialize,
        readonly: cfg.registry_readonly,
        disable_pushes: cfg.disable_pushes,
        direct_login: cfg.direct_login,
        metrics_here: metrics_listener.is_none(),
        library: cfg.library_support.then(|| cfg.library_namespace.clone()),
    };
    let metrics_server = match metrics_listener {
        Some(l) => {
            let maddr = l.local_addr()?;
            let router = berth_api::metrics_router(state.clone());
            let sig = sig.clone();
            Some((
                maddr,
                tokio::spawn(async move {
                    let mut sig = sig;
                    let stop = async move {
                        let _ = sig.wait_for(|n| *n >= 1).await;
                    };
                    if let Err(e) = axum::serve(l, router).with_graceful_shutdown(stop).await {
                        tracing::error!(error = %e, "the metrics listener failed");
                    }
                }),
            ))
        }
        None => None,
    };
    let app = berth_api::router(state);
    let addr = listener.local_addr()?;
    tracing::info!(%addr, data = %cfg.data_locations(), "Berth is listening on {scheme}://{addr}");
    if tls.is_none() && !addr.ip().is_loopback() {
        tracing::warn!(
            "serving plain http on a non-loopback address; clients need --tls-verify=false or an insecure-registry entry"
        );
    }
    let tls_flag = if tls.is_none() {
        " --tls-verify=false"
    } else {
        ""
    };
    eprintln!(
        "Berth {} listening on {scheme}://{addr}",
        env!("CARGO_PKG_VERSION"),
    );
    eprintln!("  data: {}", cfg.data_locations());
    if let Some((maddr, _)) = &metrics_server {
        eprintln!("  metrics: http://{maddr}/metrics");
    }
    for note in cfg.banner_notes() {
        eprintln!("  {note}");
    }
    if cfg.registry_readonly {
        eprintln!(
            "  READ-ONLY (REGISTRY_STATE: readonly): pulls are served; pushes, API changes and background workers wait"
        );
    } else if cfg.disable_pushes {
        eprintln!("  pushes are disabled (DISABLE_PUSHES); pulls and the API work");
    }
    match &first_admin {
        Some((user, Some(password))) => {
            eprintln!(
                "  first start: created superuser {:?} with password {password}",
                user.name
            );
            eprintln!(
                "  (shown once; change it with PUT /api/v1/user/ or `berth admin set-password {}`)",
                user.name
            );
            eprintln!(
                "  log in:  podman login{tls_flag} -u {} -p '{password}' {addr}",
                user.name
            );
            if let Err(e) = auth.bootstrap_password_shown().await {
                tracing::warn!(error = %e, "could not record that the first password was shown");
            }
        }
        Some((user, None)) => {
            eprintln!(
                "  first start: created superuser {:?} with the password of BERTH_BOOTSTRAP_SUPERUSER_PASSWORD",
                user.name
            );
        }
        None if cfg.user_initialize => {
            eprintln!(
                "  FEATURE_USER_INITIALIZE: create the first user with POST /api/v1/user/initialize"
            );
        }
        None => {}
    }
    if let Some(name) = unshown {
        eprintln!(
            "  the first superuser {name:?} was created by an earlier start that stopped before showing its password;"
        );
        eprintln!(
            "  set one with:  berth admin set-password {name}  (with the same --config / --data-dir)"
        );
    }
    for p in &cfg.auth.oidc {
        // Providers are contacted on the first sign-in, not here: one being down must not stop
        // the registry from starting.
        eprintln!(
            "  sign in with {} ({}): {scheme}://{addr}/oauth2/{}/start",
            p.title, p.server, p.id
        );
    }
    for line in scanner_banner(&cfg, &registry).await {
        eprintln!("  {line}");
    }
    eprintln!("  push: podman push{tls_flag} IMAGE {addr}/NAMESPACE/NAME:TAG");
    let grace = std::time::Duration::from_secs(cfg.shutdown_grace_s);
    serve_connections(listener, app, tls, &mut sig, grace).await;
    if let Some((_, m)) = metrics_server {
        m.abort();
    }
    if let Some(b) = background {
        b.abort();
    }
    audit_flusher.abort();
    auth.audit.flush().await;
    let _ = stop_workers.send(true);
    if let Some(w) = worker {
        // A worker finishes the job in hand for a few seconds more; its lease lets another
        // instance retry it otherwise.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), w).await;
    }
    if !cfg.registry_readonly {
        registry.flush_pulls().await;
    }
    tracing::info!("Berth stopped");
    Ok(())
}

/// Accepts connections (plain or TLS) until the first signal, then lets the requests in flight
/// finish for at most `grace` (`SHUTDOWN_GRACE_SECONDS`); a second signal stops at once. Idle
/// kept-alive connections are closed at once; an interrupted upload stays resumable (its session
/// is in the database).
async fn serve_connections(
    listener: TcpListener,
    app: axum::Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    sig: &mut tokio::sync::watch::Receiver<u32>,
    grace: std::time::Duration,
) {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = sig.wait_for(|n| *n >= 1) => break,
        };
        let app = app.clone();
        let acceptor = acceptor.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(
                move |mut req: hyper::Request<hyper::body::Incoming>| {
                    req.extensions_mut()
                        .insert(axum::extract::ConnectInfo(peer));
                    tower::ServiceExt::oneshot(app.clone(), req)
                },
            );
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let result = match acceptor {
                None => {
                    watcher
                        .watch(
                            builder
                                .serve_connection_with_upgrades(TokioIo::new(tcp), service)
                                .into_owned(),
                        )
                        .await
                }
                Some(acceptor) => {
                    // A peer that never finishes its handshake must not hold a shutdown for the
                    // whole grace period (or a connection slot for ever).
                    let handshake = tokio::time::timeout(
                        std::time::Duration::from_secs(10),
                        acceptor.accept(tcp),
                    );
                    let stream = match handshake.await {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            return;
                        }
                    };
                    watcher
                        .watch(
                            builder
                                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                                .into_owned(),
                        )
                        .await
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    let open = graceful.count();
    tracing::info!(
        connections = open,
        grace_s = grace.as_secs(),
        "shutdown began: no new connections; requests in flight may finish (a second signal stops at once)"
    );
    tokio::select! {
        _ = graceful.shutdown() => tracing::info!("every request in flight finished"),
        _ = tokio::time::sleep(grace) => {
            tracing::warn!("SHUTDOWN_GRACE_SECONDS passed with requests still in flight; stopping them");
        }
        _ = sig.wait_for(|n| *n >= 2) => {
            tracing::warn!("second signal: stopping at once");
            std::process::exit(130);
        }
    }
}
