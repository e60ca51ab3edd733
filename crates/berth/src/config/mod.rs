//! Configuration: one typed struct, read from a YAML file in the style of Quay's `config.yaml`,
//! then `BERTH_<KEY>` environment variables, then command-line flags. Wherever Quay has a key for a
//! setting, Berth reads that key with the same meaning; Berth's own keys follow the same style.
//! Every key is defined once, in [`keys`]: what it does, or why it has no effect, or why a value
//! of it stops the start. Any other key, and any bad value, stops the start with a message naming
//! the key; all problems are reported at once.

mod check;
pub mod keys;
mod load;
mod storage;
mod values;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_quay;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use berth_storage::StorageSpec as StorageLocation;

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: String,
    pub data_dir: PathBuf,
    pub server_hostname: String,
    pub preferred_url_scheme: String,
    pub external_tls_termination: bool,
    pub db_uri: Option<String>,
    /// `DB_CONNECTION_ARGS` TLS settings, added to a PostgreSQL `DB_URI` as query parameters.
    db_params: Vec<(String, String)>,
    pub db_max_connections: u32,
    pub storage: BTreeMap<String, StorageLocation>,
    pub storage_preference: Vec<String>,
    pub storage_default_locations: Vec<String>,
    pub storage_fsync: bool,
    pub storage_replication: bool,
    pub job_lease_seconds: u64,
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
    pub authentication_type: String,
    /// `LDAP_*` keys present: reported as without effect unless AUTHENTICATION_TYPE is LDAP.
    ldap_keys: Vec<String>,
    /// SERVER_HOSTNAME was set explicitly (token realms use it instead of the request's Host).
    pub server_hostname_set: bool,
    pub auth: berth_core::auth::AuthConfig,
    pub user_initialize: bool,
    pub bootstrap_superuser: String,
    pub bootstrap_password: Option<String>,
    pub proxy_storage: bool,
    pub log_json: bool,
    pub gc: berth_core::GcConfig,
    pub quota: berth_core::QuotaConfig,
    /// Notifications' delivery (its host and scheme are filled from SERVER_HOSTNAME and
    /// PREFERRED_URL_SCHEME when the server starts).
    pub notify: berth_core::notify::NotifyConfig,
    /// The vulnerability scanner.
    pub scan: berth_core::scan::ScanConfig,
    /// Repository mirroring.
    pub mirror: berth_core::mirror::MirrorConfig,
    /// Pull-through cache organizations.
    pub proxy: berth_core::proxy::ProxyConfig,
    /// `MAIL_*`; the core gets them when `FEATURE_MAILING` is on and a server is named.
    pub mail: berth_core::notify::mail::MailConfig,
    /// `FEATURE_MAILING`.
    pub mailing: bool,
    pub immutable_tags_can_expire: bool,
    /// `MAXIMUM_LAYER_SIZE` in bytes (Quay's default 20G).
    pub max_layer_bytes: u64,
    /// `REGISTRY_STATE: readonly`: every write on `/v2` and `/api/v1` is refused (as Quay refuses
    /// it), pulls and reads are served, workers that write are paused.
    pub registry_readonly: bool,
    /// `DISABLE_PUSHES`: pushes on `/v2` are refused; the API and the database stay writable.
    pub disable_pushes: bool,
    /// `FEATURE_DIRECT_LOGIN` (default true). False: users sign in only through an OpenID Connect
    /// provider — database and LDAP passwords are refused for users (robot tokens, app-specific
    /// tokens and API tokens keep working). Loading refuses false when no provider is configured.
    pub direct_login: bool,
    /// `SHUTDOWN_GRACE_SECONDS` (default 30): how long in-flight requests may finish after a signal.
    pub shutdown_grace_s: u64,
    /// `METRICS_LISTEN_ADDRESS`: serve `/metrics` on this address of its own (host:port).
    pub metrics_listen: Option<String>,
    /// `FEATURE_LIBRARY_SUPPORT` (default true): a one-component repository name means
    /// `library_namespace/name`; off, such names are refused.
    pub library_support: bool,
    /// `LIBRARY_NAMESPACE` (default "library").
    pub library_namespace: String,
    /// Switches present and on for capabilities this version lacks, for the banner.
    pub unavailable_features: Vec<String>,
    /// Keys present that have no effect in Berth (presentation, infrastructure, settings of
    /// unavailable capabilities, behaviour Berth always has), for one info line.
    pub ignored_keys: Vec<String>,
    /// The file the configuration was read from.
    pub file: Option<PathBuf>,
    /// No storage was configured: the default location lives in the data directory.
    storage_defaulted: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:5000".into(),
            data_dir: PathBuf::from("berth-data"),
            server_hostname: "localhost:5000".into(),
            preferred_url_scheme: "http".into(),
            external_tls_termination: false,
            db_uri: None,
            db_params: Vec::new(),
            db_max_connections: 16,
            storage: BTreeMap::new(),
            storage_preference: Vec::new(),
            storage_default_locations: Vec::new(),
            storage_fsync: true,
            storage_replication: false,
            job_lease_seconds: 300,
            tls_cert_file: None,
            tls_key_file: None,
            authentication_type: "Database".into(),
            ldap_keys: Vec::new(),
            server_hostname_set: false,
            auth: berth_core::auth::AuthConfig {
                user_creation: false,
                ..berth_core::auth::AuthConfig::default()
            },
            user_initialize: false,
            bootstrap_superuser: "admin".into(),
            bootstrap_password: None,
            proxy_storage: false,
            log_json: false,
            gc: berth_core::GcConfig {
                // Quay's AUTO_PRUNING_POLL_PERIOD default.
                autoprune_interval_s: 30,
                ..berth_core::GcConfig::default()
            },
            quota: berth_core::QuotaConfig::default(),
            notify: berth_core::notify::NotifyConfig::default(),
            mail: berth_core::notify::mail::MailConfig::default(),
            scan: berth_core::scan::ScanConfig::default(),
            mirror: berth_core::mirror::MirrorConfig::default(),
            proxy: berth_core::proxy::ProxyConfig::default(),
            mailing: true,
            immutable_tags_can_expire: false,
            max_layer_bytes: berth_core::DEFAULT_MAX_BLOB_BYTES,
            registry_readonly: false,
            disable_pushes: false,
            direct_login: true,
            shutdown_grace_s: 30,
            metrics_listen: None,
            library_support: true,
            library_namespace: "library".into(),
            unavailable_features: Vec::new(),
            ignored_keys: Vec::new(),
            file: None,
            storage_defaulted: false,
        }
    }
}

/// A configuration error, always naming the key at fault (or `(file)` for the file itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub key: String,
    pub msg: String,
    /// The key is not one Berth knows (the key list helps).
    pub unknown_key: bool,
}

impl ConfigError {
    pub fn new(key: &str, msg: impl Into<String>) -> ConfigError {
        ConfigError {
            key: key.to_string(),
            msg: msg.into(),
            unknown_key: false,
        }
    }
    fn file(msg: impl Into<String>) -> ConfigError {
        ConfigError::new(FILE_KEY, msg)
    }
}

const FILE_KEY: &str = "(file)";

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.key == FILE_KEY {
            f.write_str(&self.msg)
        } else {
            write!(f, "config key {}: {}", self.key, self.msg)
        }
    }
}

/// Every problem found in one configuration.
#[derive(Debug)]
pub struct ConfigErrors {
    pub file: Option<PathBuf>,
    pub errors: Vec<ConfigError>,
}

impl ConfigErrors {
    /// Whether `berth config keys` would help (an unknown key, not a syntax or file error).
    pub fn wants_key_list(&self) -> bool {
        self.errors.iter().any(|e| e.unknown_key)
    }
}

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let source = match &self.file {
            Some(p) => format!("invalid configuration in {}", p.display()),
            None => "invalid configuration".to_string(),
        };
        match self.errors.as_slice() {
            [one] => write!(f, "{source}: {one}"),
            all => {
                write!(f, "{source} ({} problems):", all.len())?;
                for e in all {
                    write!(f, "\n  - {e}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ConfigErrors {}

impl Config {
    /// Moves the data directory (`--data-dir`), and the default storage location with it.
    pub fn set_data_dir(&mut self, dir: PathBuf) {
        if self.storage_defaulted
            && let Some(StorageLocation::Local { path, .. }) = self.storage.get_mut("default")
        {
            *path = dir.join("storage");
        }
        self.data_dir = dir;
    }

    /// Sets the listen address (`--listen`), checked as `LISTEN_ADDRESS` is.
    pub fn set_listen(&mut self, addr: &str) -> Result<(), ConfigError> {
        values::check_listen_address(addr).map_err(|msg| ConfigError::new("--listen", msg))?;
        if self.metrics_listen.as_deref() == Some(addr) {
            return Err(ConfigError::new(
                "--listen",
                "must differ from METRICS_LISTEN_ADDRESS",
            ));
        }
        self.listen = addr.to_string();
        Ok(())
    }

    /// The database URI: `DB_URI` (with `DB_CONNECTION_ARGS` TLS settings for PostgreSQL), or an
    /// SQLite file in the data directory.
    pub fn db_uri(&self) -> String {
        let Some(uri) = &self.db_uri else {
            return format!("sqlite://{}", self.data_dir.join("berth.db").display());
        };
        let mut uri = uri.clone();
        if uri.starts_with("postgres") {
            for (k, v) in &self.db_params {
                if uri.contains(&format!("{k}=")) {
                    continue; // DB_URI's own parameter wins
                }
                uri.push(if uri.contains('?') { '&' } else { '?' });
                uri.push_str(k);
                uri.push('=');
                uri.push_str(&query_escape(v));
            }
        }
        uri
    }

    /// The database URI without its password, for messages.
    pub fn db_uri_display(&self) -> String {
        redact_password(&self.db_uri())
    }

    /// The SQLite file, when the database is SQLite (not in memory).
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        let uri = self.db_uri();
        let rest = uri.strip_prefix("sqlite:")?;
        let rest = rest.strip_prefix("//").unwrap_or(rest);
        let path = rest.split('?').next().unwrap_or(rest);
        (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
    }

    /// Whether the database lives in the data directory (so the directory must be created).
    pub fn database_in_data_dir(&self) -> bool {
        self.db_uri.is_none()
    }

    /// Where the registry's data really lives, for the banner and messages:
    /// `database berth-data/berth.db; blobs in berth-data/storage`.
    pub fn data_locations(&self) -> String {
        let db = match self.sqlite_path() {
            Some(p) => p.display().to_string(),
            None => self.db_uri_display(),
        };
        let blobs: Vec<String> = self
            .storage_order()
            .iter()
            .filter_map(|name| {
                let loc = self.storage.get(name)?;
                Some(match loc {
                    StorageLocation::Local { path, .. } if self.storage.len() == 1 => {
                        path.display().to_string()
                    }
                    StorageLocation::Local { path, .. } => format!("{name}: {}", path.display()),
                    other if self.storage.len() == 1 => other.to_string(),
                    other => format!("{name}: {other}"),
                })
            })
            .collect();
        format!("database {db}; blobs in {}", blobs.join(", "))
    }

    /// Lines for the start-up banner about keys Berth does not act on: the capabilities switched
    /// on that this version lacks, and a one-line count of keys without effect.
    pub fn banner_notes(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.unavailable_features.is_empty() {
            out.extend(wrap(
                "not available in this version: ",
                &self.unavailable_features,
                100,
            ));
        }
        if !self.ignored_keys.is_empty() {
            out.push(format!(
                "{} config keys have no effect in Berth (`berth config validate` lists them)",
                self.ignored_keys.len()
            ));
        }
        out
    }

    /// Every location, this instance's preference order first, then the rest (still readable).
    pub fn storage_order(&self) -> Vec<String> {
        let mut order = self.storage_preference.clone();
        order.extend(
            self.storage
                .keys()
                .filter(|k| !order.contains(k))
                .cloned()
                .collect::<Vec<_>>(),
        );
        order
    }

    /// Locations every new blob is copied to: with FEATURE_STORAGE_REPLICATION, the default
    /// locations (all locations when none are named); otherwise none.
    pub fn replication_targets(&self) -> Vec<String> {
        if !self.storage_replication {
            Vec::new()
        } else if self.storage_default_locations.is_empty() {
            self.storage.keys().cloned().collect()
        } else {
            self.storage_default_locations.clone()
        }
    }

    /// The storage location this instance writes to and reads from first.
    pub fn preferred_storage(&self) -> Option<(&String, &StorageLocation)> {
        self.storage_preference
            .first()
            .and_then(|n| self.storage.get_key_value(n))
    }

    /// Problems `serve` would meet outside the configuration itself (directories, files, names).
    pub fn check_environment(&self) -> Vec<ConfigError> {
        check::environment(self)
    }
}

/// `prefix` followed by `items` joined with ", ", wrapped at `width` columns with the
/// continuation lines indented under the first item.
fn wrap(prefix: &str, items: &[String], width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = prefix.to_string();
    let indent = " ".repeat(prefix.len());
    for (i, item) in items.iter().enumerate() {
        let sep = if i + 1 < items.len() { "," } else { "" };
        if line.len() > prefix.len() && line.len() + item.len() + sep.len() + 1 > width {
            lines.push(line.trim_end().to_string());
            line = indent.clone();
        }
        line.push_str(item);
        line.push_str(sep);
        line.push(' ');
    }
    lines.push(line.trim_end().to_string());
    lines
}

fn query_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `postgresql://user:secret@host/db` → `postgresql://user:***@host/db`.
fn redact_password(uri: &str) -> String {
    let Some((scheme, rest)) = uri.split_once("://") else {
        return uri.to_string();
    };
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return uri.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => uri.to_string(),
    }
}

/// Used by `load` and `check`: the directory a path lives in.
fn parent_dir(p: &Path) -> PathBuf {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}
