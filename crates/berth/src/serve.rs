//! Process wiring for `berth serve`: logging, database, storage, metrics, and the listener
//! (plain HTTP or TLS), with a clean shutdown on SIGINT/SIGTERM.

use crate::config::Config;
use anyhow::Context;
use berth_api::AppState;
use berth_core::Locations;
use berth_core::{CoreConfig, Db, Registry};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_rustls::rustls;

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,tower_http=info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
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

pub async fn serve(cfg: Config, migrate: bool, workers: bool) -> anyhow::Result<()> {
    init_logging(cfg.log_json);
    let registry = registry(&cfg, migrate).await?;
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .context("cannot install the metrics recorder")?;
    berth_api::describe_metrics();
    let background = registry.spawn_background();
    let (stop_workers, workers_stopped) = tokio::sync::watch::channel(false);
    let worker = workers.then(|| {
        tokio::spawn(berth_worker::run(
            registry.clone(),
            lease(&cfg),
            workers_stopped,
        ))
    });
    let auth = berth_core::auth::Auth::new(registry.db.clone(), cfg.auth.clone())
        .await
        .context("cannot load identity and access (signing keys, secrets)")?;
    let first_admin = if cfg.user_initialize {
        None
    } else {
        auth.bootstrap_superuser(&cfg.bootstrap_superuser, cfg.bootstrap_password.as_deref())
            .await
            .context("cannot create the first superuser")?
    };
    let audit_flusher = auth.audit.spawn_flusher();
    let tls = tls_config(&cfg)?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let app = berth_api::router(AppState {
        registry: registry.clone(),
        metrics: Some(metrics),
        redirect_blobs: !cfg.proxy_storage,
        auth: auth.clone(),
        public_url: cfg
            .server_hostname_set
            .then(|| format!("{}://{}", cfg.preferred_url_scheme, cfg.server_hostname)),
        scheme,
        user_initialize: cfg.user_initialize,
        readonly: false,
        disable_pushes: false,
        direct_login: true,
        metrics_here: true,
        library: Some("library".into()),
    });
    let listener = TcpListener::bind(&cfg.listen).await.with_context(|| {
        format!(
            "cannot listen on {} (LISTEN_ADDRESS / --listen); is another process using it?",
            cfg.listen
        )
    })?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, data_dir = %cfg.data_dir.display(), "Berth is listening on {scheme}://{addr}");
    if tls.is_none() && !addr.ip().is_loopback() {
        tracing::warn!(
            "serving plain http on a non-loopback address; clients need --tls-verify=false or an insecure-registry entry"
        );
    }
    eprintln!(
        "Berth {} listening on {scheme}://{addr} (data in {})",
        env!("CARGO_PKG_VERSION"),
        cfg.data_dir.display()
    );
    for note in cfg.banner_notes() {
        eprintln!("  {note}");
    }
    match &first_admin {
        Some((user, Some(password))) => {
            eprintln!(
                "  first start: created superuser {:?} with password {password}",
                user.name
            );
            eprintln!(
                "  (shown once; change it with PUT /api/v1/user/ or `berth admin set-password`)"
            );
            eprintln!(
                "  log in:  podman login --tls-verify=false -u {} -p '{password}' {addr}",
                user.name
            );
        }
        Some((user, None)) => {
            eprintln!(
                "  first start: created superuser {:?} (BOOTSTRAP_SUPERUSER_PASSWORD)",
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
    for p in &cfg.auth.oidc {
        // Providers are contacted on the first sign-in, not here: one being down must not stop
        // the registry from starting.
        eprintln!(
            "  sign in with {} ({}): {scheme}://{addr}/oauth2/{}/start",
            p.title, p.server, p.id
        );
    }
    eprintln!("  push: podman push --tls-verify=false IMAGE {addr}/NAMESPACE/NAME:TAG");
    match tls {
        None => {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .with_graceful_shutdown(shutdown_signal())
            .await
            .context("server failed")?;
        }
        Some(tls) => serve_tls(listener, app, tls).await?,
    }
    background.abort();
    audit_flusher.abort();
    auth.audit.flush().await;
    let _ = stop_workers.send(true);
    if let Some(w) = worker {
        let _ = w.await;
    }
    registry.flush_pulls().await;
    tracing::info!("Berth stopped");
    Ok(())
}

async fn serve_tls(
    listener: TcpListener,
    app: axum::Router,
    tls: Arc<rustls::ServerConfig>,
) -> anyhow::Result<()> {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => r.context("accept failed")?,
            _ = &mut shutdown => return Ok(()),
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            let stream = match acceptor.accept(tcp).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
            };
            let app = app.layer(axum::Extension(axum::extract::ConnectInfo(peer)));
            let service = TowerToHyperService::new(app);
            if let Err(e) = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
}
