//! Configuration: one typed struct, read from a YAML file in the style of Quay's `config.yaml`,
//! then `BERTH_<KEY>` environment variables, then command-line flags. Wherever Quay has a key for a
//! setting, Berth reads that key with the same meaning; Berth's own keys follow the same style.
//! A Quay key this version does not act on is reported at start; any other unknown key, and any bad
//! value, stops the start with a message naming the key.

mod quay_keys;

use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Keys Berth acts on (Quay's where Quay has one, Berth's own otherwise).
pub const BERTH_KEYS: &[(&str, &str)] = &[
    (
        "LISTEN_ADDRESS",
        "address:port to listen on (default 127.0.0.1:5000)",
    ),
    (
        "DATA_DIR",
        "directory for the embedded database and local blobs (default ./berth-data)",
    ),
    ("SERVER_HOSTNAME", "public host[:port] of the registry"),
    ("PREFERRED_URL_SCHEME", "http or https"),
    (
        "EXTERNAL_TLS_TERMINATION",
        "TLS is terminated by a proxy in front of Berth",
    ),
    (
        "DB_URI",
        "metadata database, e.g. sqlite:///var/lib/berth/berth.db",
    ),
    (
        "DB_MAX_CONNECTIONS",
        "database connection pool size (default 16)",
    ),
    (
        "DISTRIBUTED_STORAGE_CONFIG",
        "storage locations: {name: [Driver, {params}]}",
    ),
    (
        "DISTRIBUTED_STORAGE_PREFERENCE",
        "storage locations in order of preference",
    ),
    (
        "DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS",
        "locations new blobs are placed in",
    ),
    (
        "STORAGE_FSYNC",
        "flush blob data to disk before a push is acknowledged (default true)",
    ),
    (
        "TLS_CERT_FILE",
        "PEM certificate chain; with TLS_KEY_FILE, Berth serves https",
    ),
    ("TLS_KEY_FILE", "PEM private key"),
    (
        "AUTHENTICATION_TYPE",
        "Database (local passwords) or LDAP (passwords checked by a directory)",
    ),
    (
        "LDAP_URI",
        "ldap:// or ldaps:// URI(s) of the directory (LDAP)",
    ),
    (
        "LDAP_BASE_DN",
        "base DN as a list of RDNs, e.g. [dc=example, dc=org], or a string",
    ),
    (
        "LDAP_ADMIN_DN",
        "DN Berth binds as to search users and groups (default: anonymous)",
    ),
    ("LDAP_ADMIN_PASSWD", "password of LDAP_ADMIN_DN"),
    (
        "LDAP_USER_RDN",
        "subtree of users relative to LDAP_BASE_DN, e.g. [ou=people]",
    ),
    (
        "LDAP_SECONDARY_USER_RDNS",
        "further user subtrees, searched when LDAP_USER_RDN has no match",
    ),
    (
        "LDAP_UID_ATTR",
        "attribute holding the login name (default uid)",
    ),
    (
        "LDAP_EMAIL_ATTR",
        "attribute holding the email (default mail)",
    ),
    (
        "LDAP_USER_FILTER",
        "filter a user must match to log in, e.g. (memberOf=cn=registry,ou=groups,dc=example,dc=org)",
    ),
    (
        "LDAP_SUPERUSER_FILTER",
        "filter making users superusers (taken back when they stop matching)",
    ),
    (
        "LDAP_RESTRICTED_USER_FILTER",
        "filter marking users restricted (recorded on their LDAP link; not enforced yet)",
    ),
    (
        "LDAP_TIMEOUT",
        "seconds each LDAP operation may take (default 10)",
    ),
    (
        "LDAP_NETWORK_TIMEOUT",
        "seconds connecting to the directory may take (default 10)",
    ),
    (
        "LDAP_ALLOW_INSECURE_FALLBACK",
        "accept an ldaps:// certificate that does not verify (default false)",
    ),
    ("SUPER_USERS", "usernames with superuser rights"),
    (
        "DEFAULT_TAG_EXPIRATION",
        "time machine window: how long deleted and moved tags can be restored (default 2w)",
    ),
    (
        "TAG_EXPIRATION_OPTIONS",
        "windows a user or organization may choose (default [0s, 1d, 1w, 2w, 4w])",
    ),
    (
        "FEATURE_CHANGE_TAG_EXPIRATION",
        "users may set an expiration on tags (default true)",
    ),
    (
        "FEATURE_ANONYMOUS_ACCESS",
        "anonymous pulls of public repositories (default true)",
    ),
    (
        "FEATURE_USER_CREATION",
        "self-service sign-up through POST /api/v1/user/ (default false in Berth)",
    ),
    (
        "FEATURE_USER_INITIALIZE",
        "POST /api/v1/user/initialize creates the first user, instead of a generated admin",
    ),
    (
        "FEATURE_APP_SPECIFIC_TOKENS",
        "app-specific tokens usable as passwords (default true)",
    ),
    (
        "APP_SPECIFIC_TOKEN_EXPIRATION",
        "lifetime of app-specific tokens, e.g. 90d (default: none)",
    ),
    (
        "DATABASE_SECRET_KEY",
        "seals robot tokens and signing keys in the database (default: generated and kept there)",
    ),
    (
        "ACTION_LOG_AUDIT_LOGINS",
        "audit-log successful logins (default true)",
    ),
    (
        "ACTION_LOG_AUDIT_LOGIN_FAILURES",
        "audit-log failed logins (default true in Berth)",
    ),
    (
        "BOOTSTRAP_SUPERUSER",
        "name of the superuser created at first start when no user exists (default admin)",
    ),
    (
        "BOOTSTRAP_SUPERUSER_PASSWORD",
        "its password (default: generated and printed once)",
    ),
    (
        "REGISTRY_TOKEN_LIFETIME_S",
        "lifetime of registry bearer tokens in seconds (default 3600)",
    ),
    (
        "SIGNING_KEY_ROTATION_S",
        "a new token signing key is made after this many seconds (default 604800)",
    ),
    (
        "LOGIN_LOCKOUT_FAILURES",
        "consecutive failed logins that lock an account until reset (default 10, 0 = never)",
    ),
    (
        "LOGIN_BACKOFF_BASE_MS",
        "wait after the first failed login, doubling with each further one (default 1000)",
    ),
    (
        "LOGIN_BACKOFF_MAX_MS",
        "longest wait between login attempts (default 60000)",
    ),
    (
        "FEATURE_PROXY_STORAGE",
        "stream blobs through Berth instead of redirecting to storage URLs",
    ),
    ("LOG_FORMAT", "text or json (default text)"),
    (
        "FEATURE_GARBAGE_COLLECTION",
        "run the online garbage collector in the background (default true)",
    ),
    (
        "GARBAGE_COLLECTION_FREQUENCY",
        "seconds between garbage-collection passes (default 30)",
    ),
    (
        "PUSH_TEMP_TAG_EXPIRATION_SEC",
        "grace period in seconds for blobs and untagged manifests not yet referenced (default 3600)",
    ),
    (
        "CLEAN_BLOB_UPLOAD_FOLDER",
        "remove abandoned upload sessions (default true)",
    ),
    (
        "BLOB_UPLOAD_STALE_AFTER_S",
        "an upload session untouched this many seconds is abandoned (default 172800)",
    ),
    (
        "FEATURE_IMMUTABLE_TAGS_CAN_EXPIRE",
        "immutable tags keep, and may be given, an expiry (default false: a tag loses its expiry when it becomes immutable)",
    ),
    (
        "FEATURE_AUTO_PRUNE",
        "apply auto-prune policies in the background (default true in Berth)",
    ),
    (
        "AUTO_PRUNE_FREQUENCY_S",
        "seconds between auto-prune runs (default 300)",
    ),
    (
        "FEATURE_QUOTA_MANAGEMENT",
        "namespace storage quotas: usage, limits, warnings and refusals (default true in Berth)",
    ),
    (
        "FEATURE_VERIFY_QUOTA",
        "refuse pushes over a quota's reject threshold (default true)",
    ),
    (
        "FEATURE_EDIT_QUOTA",
        "superusers may create and change quotas through the API (default true)",
    ),
    (
        "DEFAULT_SYSTEM_REJECT_QUOTA_BYTES",
        "reject limit for namespaces without a quota of their own (default 0: none)",
    ),
    (
        "GC_FULL_SWEEP_S",
        "seconds between garbage-collection passes over every repository (default 3600)",
    ),
    (
        "<NAME>_LOGIN_CONFIG",
        "an OpenID Connect provider to sign in with (OIDC_SERVER, CLIENT_ID, CLIENT_SECRET, ...); service id = name lowercased",
    ),
    (
        "SECRET_KEY",
        "signs browser session cookies (default: generated and kept in the database)",
    ),
    (
        "SESSION_COOKIE_SECURE",
        "send the session cookie over https only (default false)",
    ),
    (
        "SESSION_TIMEOUT",
        "lifetime of a browser session, e.g. 31d (default 31d)",
    ),
];

pub use berth_storage::StorageSpec as StorageLocation;

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: String,
    pub data_dir: PathBuf,
    pub server_hostname: String,
    pub preferred_url_scheme: String,
    pub external_tls_termination: bool,
    pub db_uri: Option<String>,
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
    /// `LDAP_*` keys present: reported as unused unless AUTHENTICATION_TYPE is LDAP.
    pub ldap_keys: Vec<String>,
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
    pub immutable_tags_can_expire: bool,
    /// No storage was configured: the default location lives in the data directory.
    storage_defaulted: bool,
    /// Quay keys present in the file that this version reads but does not act on.
    pub unused_quay_keys: Vec<String>,
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
            gc: berth_core::GcConfig::default(),
            quota: berth_core::QuotaConfig::default(),
            immutable_tags_can_expire: false,
            storage_defaulted: false,
            unused_quay_keys: Vec::new(),
        }
    }
}

/// A configuration error, always naming the key at fault.
#[derive(Debug, thiserror::Error)]
#[error("config key {key}: {msg}")]
pub struct ConfigError {
    pub key: String,
    pub msg: String,
}

fn err<T>(key: &str, msg: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError {
        key: key.to_string(),
        msg: msg.into(),
    })
}

fn as_string(key: &str, v: &Value) -> Result<String, ConfigError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        other => err(key, format!("expected a string, found {other}")),
    }
}

fn as_bool(key: &str, v: &Value) -> Result<bool, ConfigError> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        other => err(key, format!("expected true or false, found {other}")),
    }
}

fn as_string_list(key: &str, v: &Value) -> Result<Vec<String>, ConfigError> {
    match v {
        Value::Array(items) => items.iter().map(|i| as_string(key, i)).collect(),
        Value::String(s) => Ok(s
            .split(',')
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect()),
        other => err(key, format!("expected a list of strings, found {other}")),
    }
}

fn non_negative(key: &str, v: &Value) -> Result<i64, ConfigError> {
    v.as_i64().filter(|n| *n >= 0).map_or_else(
        || err(key, format!("expected an integer ≥ 0, found {v}")),
        Ok,
    )
}

fn positive(key: &str, v: &Value) -> Result<i64, ConfigError> {
    v.as_i64().filter(|n| *n > 0).map_or_else(
        || err(key, format!("expected a positive integer, found {v}")),
        Ok,
    )
}

pub use berth_core::parse_duration_s;

/// A DN written as Quay writes it: a list of RDNs (`[dc=example, dc=org]`) or one string.
fn as_dn(key: &str, v: &Value) -> Result<String, ConfigError> {
    match v {
        Value::Array(items) => {
            let mut rdns = Vec::new();
            for i in items {
                let s = as_string(key, i)?;
                if !s.trim().is_empty() {
                    rdns.push(s.trim().to_string());
                }
            }
            Ok(rdns.join(","))
        }
        Value::String(s) => Ok(s.trim().to_string()),
        Value::Null => Ok(String::new()),
        other => err(
            key,
            format!(
                "expected a DN, as a list of RDNs such as [dc=example, dc=org] or a string; found {other}"
            ),
        ),
    }
}

/// One `LDAP_*` setting (used when AUTHENTICATION_TYPE is LDAP; checked as a whole in `finish`).
fn set_ldap(
    l: &mut berth_core::auth::ldap::LdapConfig,
    key: &str,
    v: &Value,
) -> Result<(), ConfigError> {
    let optional = |s: String| (!s.trim().is_empty()).then(|| s.trim().to_string());
    let seconds = || {
        let n = match v {
            Value::String(s) => s.trim().parse::<f64>().ok(),
            other => other.as_f64(),
        };
        n.filter(|n| n.is_finite() && *n > 0.0 && *n <= 3600.0)
            .map(std::time::Duration::from_secs_f64)
            .map_or_else(
                || {
                    err(
                        key,
                        format!("expected a number of seconds (0 < s ≤ 3600), found {v}"),
                    )
                },
                Ok,
            )
    };
    match key {
        "LDAP_URI" => {
            l.uris = as_string(key, v)?
                .split_whitespace()
                .map(str::to_string)
                .collect()
        }
        "LDAP_BASE_DN" => l.base_dn = as_dn(key, v)?,
        "LDAP_USER_RDN" => l.user_rdn = as_dn(key, v)?,
        "LDAP_SECONDARY_USER_RDNS" => {
            let items = match v {
                Value::Array(items) => items
                    .iter()
                    .map(|i| as_dn(key, i))
                    .collect::<Result<Vec<_>, _>>()?,
                other => vec![as_dn(key, other)?],
            };
            l.secondary_user_rdns = items.into_iter().filter(|s| !s.is_empty()).collect();
        }
        "LDAP_ADMIN_DN" => l.admin_dn = optional(as_string(key, v)?),
        "LDAP_ADMIN_PASSWD" => l.admin_password = optional(as_string(key, v)?),
        "LDAP_UID_ATTR" => l.uid_attr = as_string(key, v)?.trim().to_string(),
        "LDAP_EMAIL_ATTR" => l.email_attr = as_string(key, v)?.trim().to_string(),
        "LDAP_USER_FILTER" => l.user_filter = optional(as_string(key, v)?),
        "LDAP_SUPERUSER_FILTER" => l.superuser_filter = optional(as_string(key, v)?),
        "LDAP_RESTRICTED_USER_FILTER" => l.restricted_filter = optional(as_string(key, v)?),
        "LDAP_TIMEOUT" => l.timeout = seconds()?,
        "LDAP_NETWORK_TIMEOUT" => l.network_timeout = seconds()?,
        "LDAP_ALLOW_INSECURE_FALLBACK" => l.allow_insecure_fallback = as_bool(key, v)?,
        _ => return err(key, "not an LDAP setting this version reads"),
    }
    Ok(())
}

/// Parameters each Quay storage driver accepts (Quay's names); any other parameter is an error.
const DRIVER_PARAMS: &[(&str, &[&str])] = &[
    ("LocalStorage", &["storage_path"]),
    (
        "S3Storage",
        &[
            "storage_path",
            "s3_bucket",
            "s3_access_key",
            "s3_secret_key",
            "s3_region",
            "host",
            "port",
            "endpoint_url",
            "maximum_chunk_size_gb",
            "minimum_chunk_size_mb",
            "aws_session_token",
            "signature_version",
        ],
    ),
    (
        "RadosGWStorage",
        &[
            "hostname",
            "is_secure",
            "storage_path",
            "access_key",
            "secret_key",
            "bucket_name",
            "region_name",
            "signature_version",
            "port",
            "minimum_chunk_size_mb",
            "maximum_chunk_size_mb",
            "server_side_assembly",
        ],
    ),
    (
        "GoogleCloudStorage",
        &[
            "storage_path",
            "access_key",
            "secret_key",
            "bucket_name",
            "boto_timeout",
            "minimum_chunk_size_mb",
            "signature_version",
        ],
    ),
    (
        "AzureStorage",
        &[
            "azure_container",
            "storage_path",
            "azure_account_name",
            "azure_account_key",
            "sas_token",
            "endpoint_url",
        ],
    ),
];

fn parse_location(
    key: &str,
    name: &str,
    driver: &str,
    params: &Value,
    base: &Path,
) -> Result<StorageLocation, ConfigError> {
    let Some((_, allowed)) = DRIVER_PARAMS.iter().find(|(d, _)| *d == driver) else {
        let known: Vec<&str> = DRIVER_PARAMS.iter().map(|(d, _)| *d).collect();
        return err(
            key,
            format!(
                "location {name:?}: storage driver {driver:?} is not supported; use one of {}",
                known.join(", ")
            ),
        );
    };
    let Value::Object(p) = params else {
        return err(key, format!("location {name:?}: parameters must be a map"));
    };
    if let Some(bad) = p.keys().find(|k| !allowed.contains(&k.as_str())) {
        return err(
            key,
            format!(
                "location {name:?}: {driver} has no parameter {bad:?}; it takes {}",
                allowed.join(", ")
            ),
        );
    }
    let text = |k: &str| -> Result<Option<String>, ConfigError> {
        p.get(k)
            .filter(|v| !v.is_null())
            .map(|v| as_string(key, v))
            .transpose()
    };
    let need = |k: &str| -> Result<String, ConfigError> {
        text(k)?.map_or_else(
            || err(key, format!("location {name:?}: {driver} needs {k}")),
            Ok,
        )
    };
    let prefix = text("storage_path")?.unwrap_or_default();
    Ok(match driver {
        "LocalStorage" => {
            let path = PathBuf::from(need("storage_path")?);
            StorageLocation::Local {
                path: if path.is_absolute() {
                    path
                } else {
                    base.join(path)
                },
                fsync: true,
            }
        }
        "S3Storage" => {
            let endpoint = match (text("endpoint_url")?, text("host")?) {
                (Some(url), _) => Some(url),
                (None, Some(host)) => Some(match text("port")? {
                    Some(port) => format!("https://{host}:{port}"),
                    None => format!("https://{host}"),
                }),
                (None, None) => None,
            };
            StorageLocation::S3 {
                bucket: need("s3_bucket")?,
                prefix,
                region: text("s3_region")?,
                endpoint,
                access_key: text("s3_access_key")?,
                secret_key: text("s3_secret_key")?,
                session_token: text("aws_session_token")?,
            }
        }
        "RadosGWStorage" => {
            let secure = p
                .get("is_secure")
                .map(|v| as_bool(key, v))
                .transpose()?
                .unwrap_or(false);
            let scheme = if secure { "https" } else { "http" };
            let host = need("hostname")?;
            let endpoint = match text("port")? {
                Some(port) => format!("{scheme}://{host}:{port}"),
                None => format!("{scheme}://{host}"),
            };
            StorageLocation::S3 {
                bucket: need("bucket_name")?,
                prefix,
                region: text("region_name")?,
                endpoint: Some(endpoint),
                access_key: text("access_key")?,
                secret_key: text("secret_key")?,
                session_token: None,
            }
        }
        // Quay reaches GCS through its S3-interoperable XML API with HMAC keys; so does Berth.
        "GoogleCloudStorage" => StorageLocation::S3 {
            bucket: need("bucket_name")?,
            prefix,
            region: Some("auto".into()),
            endpoint: Some("https://storage.googleapis.com".into()),
            access_key: Some(need("access_key")?),
            secret_key: Some(need("secret_key")?),
            session_token: None,
        },
        _ => StorageLocation::Azure {
            container: need("azure_container")?,
            prefix,
            account: need("azure_account_name")?,
            access_key: text("azure_account_key")?,
            sas_token: text("sas_token")?,
            endpoint: text("endpoint_url")?,
        },
    })
}

fn parse_storage(
    key: &str,
    v: &Value,
    base: &Path,
) -> Result<BTreeMap<String, StorageLocation>, ConfigError> {
    let Value::Object(map) = v else {
        return err(key, "expected a map of location name to [Driver, {params}]");
    };
    let mut out = BTreeMap::new();
    for (name, spec) in map {
        let (driver, params) = match spec {
            Value::Array(a) if a.len() == 2 => (a[0].as_str().unwrap_or(""), &a[1]),
            _ => {
                return err(
                    key,
                    format!("location {name:?} must be [DriverName, {{params}}]"),
                );
            }
        };
        out.insert(
            name.clone(),
            parse_location(key, name, driver, params, base)?,
        );
    }
    Ok(out)
}

/// The closest known key, to suggest on a typo.
fn suggest(key: &str) -> Option<&'static str> {
    fn distance(a: &str, b: &str) -> usize {
        let b: Vec<char> = b.chars().collect();
        let mut prev: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut cur = vec![i + 1];
            for (j, cb) in b.iter().enumerate() {
                cur.push(
                    (prev[j] + usize::from(ca != *cb))
                        .min(prev[j + 1] + 1)
                        .min(cur[j] + 1),
                );
            }
            prev = cur;
        }
        prev[b.len()]
    }
    BERTH_KEYS
        .iter()
        .map(|(k, _)| *k)
        .chain(quay_keys::QUAY_KEYS.iter().copied())
        .map(|k| (distance(key, k), k))
        .filter(|(d, _)| *d <= 3)
        .min()
        .map(|(_, k)| k)
}

impl Config {
    /// Builds the configuration from an optional YAML file, then `BERTH_*` environment variables.
    pub fn load(
        file: Option<&Path>,
        env: impl Iterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut values: Map<String, Value> = Map::new();
        let mut base = PathBuf::from(".");
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
                key: "(file)".into(),
                msg: format!("cannot read {}: {e}", path.display()),
            })?;
            if !text.trim().is_empty() {
                let parsed: Map<String, Value> =
                    serde_saphyr::from_str(&text).map_err(|e| ConfigError {
                        key: "(file)".into(),
                        msg: format!("{} is not a YAML map of keys: {e}", path.display()),
                    })?;
                values.extend(parsed);
            }
            if let Some(dir) = path.parent() {
                base = dir.to_path_buf();
            }
        }
        for (k, v) in env {
            let Some(key) = k.strip_prefix("BERTH_") else {
                continue;
            };
            if key == "CONFIG" || key.is_empty() {
                continue;
            }
            let value: Value = if v.trim().is_empty() {
                Value::String(String::new())
            } else {
                serde_saphyr::from_str(&v).unwrap_or(Value::String(v.clone()))
            };
            values.insert(key.to_string(), value);
        }
        let mut c = Config::default();
        for (key, v) in &values {
            c.set(key, v, &base)?;
        }
        c.finish(file)?;
        Ok(c)
    }

    fn set(&mut self, key: &str, v: &Value, base: &Path) -> Result<(), ConfigError> {
        match key {
            "LISTEN_ADDRESS" => self.listen = as_string(key, v)?,
            "DATA_DIR" => self.data_dir = PathBuf::from(as_string(key, v)?),
            "SERVER_HOSTNAME" => {
                self.server_hostname = as_string(key, v)?;
                self.server_hostname_set = true;
            }
            "SUPER_USERS" => self.auth.superusers = as_string_list(key, v)?,
            "DEFAULT_TAG_EXPIRATION" => {
                let s = as_string(key, v)?;
                self.gc.default_window_s = parse_duration_s(&s).map_or_else(
                    || err(key, format!("{s:?} is not a duration such as 0s, 1d, 2w")),
                    Ok,
                )?;
            }
            "TAG_EXPIRATION_OPTIONS" => {
                let mut out = Vec::new();
                for s in as_string_list(key, v)? {
                    out.push(parse_duration_s(&s).map_or_else(
                        || err(key, format!("{s:?} is not a duration such as 0s, 1d, 2w")),
                        Ok,
                    )?);
                }
                self.auth.tag_expiration_options = out;
            }
            "FEATURE_CHANGE_TAG_EXPIRATION" => self.auth.change_tag_expiration = as_bool(key, v)?,
            "FEATURE_ANONYMOUS_ACCESS" => self.auth.anonymous_access = as_bool(key, v)?,
            "FEATURE_USER_CREATION" => self.auth.user_creation = as_bool(key, v)?,
            "FEATURE_USER_INITIALIZE" => self.user_initialize = as_bool(key, v)?,
            "FEATURE_APP_SPECIFIC_TOKENS" => self.auth.app_tokens = as_bool(key, v)?,
            "APP_SPECIFIC_TOKEN_EXPIRATION" => {
                let s = as_string(key, v)?;
                self.auth.app_token_expiration_s = if s.is_empty() {
                    None
                } else {
                    Some(parse_duration_s(&s).map_or_else(
                        || {
                            err(
                                key,
                                format!("{s:?} is not a duration such as 30m, 12h, 90d or 2w"),
                            )
                        },
                        Ok,
                    )?)
                };
            }
            "DATABASE_SECRET_KEY" => {
                let s = as_string(key, v)?;
                self.auth.database_secret = (!s.is_empty()).then_some(s);
            }
            "ACTION_LOG_AUDIT_LOGINS" => self.auth.audit_logins = as_bool(key, v)?,
            "ACTION_LOG_AUDIT_LOGIN_FAILURES" => self.auth.audit_login_failures = as_bool(key, v)?,
            "BOOTSTRAP_SUPERUSER" => self.bootstrap_superuser = as_string(key, v)?,
            "BOOTSTRAP_SUPERUSER_PASSWORD" => {
                let s = as_string(key, v)?;
                if s.len() < 8 {
                    return err(key, "must be at least 8 characters");
                }
                self.bootstrap_password = Some(s);
            }
            "REGISTRY_TOKEN_LIFETIME_S" => self.auth.token_lifetime_s = positive(key, v)?,
            "SIGNING_KEY_ROTATION_S" => self.auth.key_rotation_s = positive(key, v)?,
            "LOGIN_LOCKOUT_FAILURES" => {
                self.auth.lockout_failures = v
                    .as_i64()
                    .filter(|n| *n >= 0)
                    .map_or_else(|| err(key, format!("expected a number ≥ 0, found {v}")), Ok)?
            }
            "LOGIN_BACKOFF_BASE_MS" => self.auth.backoff_base_ms = positive(key, v)?,
            "LOGIN_BACKOFF_MAX_MS" => self.auth.backoff_max_ms = positive(key, v)?,
            "PREFERRED_URL_SCHEME" => {
                let s = as_string(key, v)?;
                if s != "http" && s != "https" {
                    return err(key, format!("must be http or https, not {s:?}"));
                }
                self.preferred_url_scheme = s;
            }
            "EXTERNAL_TLS_TERMINATION" => self.external_tls_termination = as_bool(key, v)?,
            "DB_URI" => {
                let s = as_string(key, v)?;
                let known = ["sqlite:", "postgresql://", "postgres://"];
                if !known.iter().any(|p| s.starts_with(p)) {
                    return err(
                        key,
                        format!(
                            "{s:?} is not supported; use sqlite:///path/to/berth.db or postgresql://user:password@host:5432/db"
                        ),
                    );
                }
                self.db_uri = Some(s);
            }
            "DB_MAX_CONNECTIONS" => {
                self.db_max_connections = v
                    .as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .filter(|n| *n > 0)
                    .map_or_else(
                        || err(key, format!("expected a positive integer, found {v}")),
                        Ok,
                    )?
            }
            "DISTRIBUTED_STORAGE_CONFIG" => self.storage = parse_storage(key, v, base)?,
            "DISTRIBUTED_STORAGE_PREFERENCE" => self.storage_preference = as_string_list(key, v)?,
            "DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS" => {
                self.storage_default_locations = as_string_list(key, v)?
            }
            "STORAGE_FSYNC" => self.storage_fsync = as_bool(key, v)?,
            "FEATURE_STORAGE_REPLICATION" => self.storage_replication = as_bool(key, v)?,
            "JOB_LEASE_SECONDS" => {
                self.job_lease_seconds = v.as_u64().filter(|n| *n > 0).map_or_else(
                    || {
                        err(
                            key,
                            format!("expected a positive number of seconds, found {v}"),
                        )
                    },
                    Ok,
                )?
            }
            "TLS_CERT_FILE" => self.tls_cert_file = Some(PathBuf::from(as_string(key, v)?)),
            "TLS_KEY_FILE" => self.tls_key_file = Some(PathBuf::from(as_string(key, v)?)),
            "AUTHENTICATION_TYPE" => {
                let s = as_string(key, v)?;
                if s != "Database" && s != "LDAP" {
                    return err(
                        key,
                        format!(
                            "{s:?} is not available in this version of Berth; use Database or LDAP"
                        ),
                    );
                }
                self.authentication_type = s;
            }
            "LDAP_URI"
            | "LDAP_BASE_DN"
            | "LDAP_ADMIN_DN"
            | "LDAP_ADMIN_PASSWD"
            | "LDAP_USER_RDN"
            | "LDAP_SECONDARY_USER_RDNS"
            | "LDAP_UID_ATTR"
            | "LDAP_EMAIL_ATTR"
            | "LDAP_USER_FILTER"
            | "LDAP_SUPERUSER_FILTER"
            | "LDAP_RESTRICTED_USER_FILTER"
            | "LDAP_TIMEOUT"
            | "LDAP_NETWORK_TIMEOUT"
            | "LDAP_ALLOW_INSECURE_FALLBACK" => {
                set_ldap(self.auth.ldap.get_or_insert_with(Default::default), key, v)?;
                self.ldap_keys.push(key.to_string());
            }
            "FEATURE_PROXY_STORAGE" => self.proxy_storage = as_bool(key, v)?,
            "FEATURE_GARBAGE_COLLECTION" => self.gc.enabled = as_bool(key, v)?,
            "FEATURE_QUOTA_MANAGEMENT" => self.quota.enabled = as_bool(key, v)?,
            "FEATURE_AUTO_PRUNE" => self.gc.autoprune = as_bool(key, v)?,
            "FEATURE_IMMUTABLE_TAGS_CAN_EXPIRE" => {
                self.immutable_tags_can_expire = as_bool(key, v)?
            }
            "AUTO_PRUNE_FREQUENCY_S" => {
                self.gc.autoprune_interval_s = u64::try_from(positive(key, v)?).unwrap_or(300)
            }
            "FEATURE_VERIFY_QUOTA" => self.quota.verify = as_bool(key, v)?,
            "FEATURE_EDIT_QUOTA" => self.quota.edit = as_bool(key, v)?,
            "DEFAULT_SYSTEM_REJECT_QUOTA_BYTES" => {
                self.quota.system_reject_bytes = non_negative(key, v)?
            }
            "GARBAGE_COLLECTION_FREQUENCY" => {
                self.gc.interval_s = u64::try_from(positive(key, v)?).unwrap_or(30)
            }
            "PUSH_TEMP_TAG_EXPIRATION_SEC" => self.gc.grace_s = non_negative(key, v)?,
            "CLEAN_BLOB_UPLOAD_FOLDER" => self.gc.clean_uploads = as_bool(key, v)?,
            "BLOB_UPLOAD_STALE_AFTER_S" => self.gc.upload_stale_s = non_negative(key, v)?,
            "GC_FULL_SWEEP_S" => {
                self.gc.full_sweep_s = u64::try_from(positive(key, v)?).unwrap_or(3600)
            }
            "SECRET_KEY" => {
                let s = as_string(key, v)?;
                self.auth.session_secret = (!s.is_empty()).then_some(s);
            }
            "SESSION_COOKIE_SECURE" => self.auth.session_cookie_secure = as_bool(key, v)?,
            "SESSION_TIMEOUT" => {
                let s = as_string(key, v)?;
                let Some(secs) = parse_duration_s(&s).filter(|n| *n > 0) else {
                    return err(
                        key,
                        format!("{s:?} is not a duration such as 12h, 31d or 2w"),
                    );
                };
                self.auth.session_timeout_s = secs;
            }
            // Quay's GitHub and Google logins are not OpenID Connect discovery blocks.
            "GITHUB_LOGIN_CONFIG" | "GOOGLE_LOGIN_CONFIG" => {
                self.unused_quay_keys.push(key.to_string());
            }
            k if k.ends_with("_LOGIN_CONFIG") && k.len() > "_LOGIN_CONFIG".len() => {
                let p = match berth_core::auth::oidc::OidcProvider::from_quay_block(k, v) {
                    Ok(p) => p,
                    Err(msg) => return err(k, msg),
                };
                // Service ids are the names lowercased: two keys differing in case would clash.
                if self.auth.oidc.iter().any(|o| o.id == p.id) {
                    return err(
                        k,
                        format!("another *_LOGIN_CONFIG already names service {:?}", p.id),
                    );
                }
                self.auth.oidc.push(p);
            }
            "LOG_FORMAT" => {
                self.log_json = match as_string(key, v)?.as_str() {
                    "json" => true,
                    "text" => false,
                    other => return err(key, format!("must be text or json, not {other:?}")),
                }
            }
            k if k.starts_with("FEATURE_") && quay_keys::QUAY_KEYS.contains(&k) => {
                as_bool(key, v)?;
                self.unused_quay_keys.push(k.to_string());
            }
            k if quay_keys::QUAY_KEYS.contains(&k) => {
                self.unused_quay_keys.push(k.to_string());
            }
            k => {
                let hint = suggest(k)
                    .map(|s| format!("; did you mean {s}?"))
                    .unwrap_or_default();
                return err(
                    k,
                    format!("unknown key (not a Berth or Quay setting){hint}"),
                );
            }
        }
        Ok(())
    }

    /// Moves the data directory (`--data-dir`), and the default storage location with it.
    pub fn set_data_dir(&mut self, dir: PathBuf) {
        if self.storage_defaulted
            && let Some(StorageLocation::Local { path, .. }) = self.storage.get_mut("default")
        {
            *path = dir.join("storage");
        }
        self.data_dir = dir;
    }

    /// Fills derived defaults and checks cross-key rules.
    fn finish(&mut self, file: Option<&Path>) -> Result<(), ConfigError> {
        if self.storage.is_empty() {
            self.storage_defaulted = true;
            self.storage.insert(
                "default".into(),
                StorageLocation::Local {
                    path: self.data_dir.join("storage"),
                    fsync: true,
                },
            );
        }
        if self.storage_preference.is_empty() {
            self.storage_preference = self.storage.keys().cloned().collect();
        }
        for name in self
            .storage_preference
            .iter()
            .chain(&self.storage_default_locations)
        {
            if !self.storage.contains_key(name) {
                return err(
                    "DISTRIBUTED_STORAGE_PREFERENCE",
                    format!("location {name:?} is not defined in DISTRIBUTED_STORAGE_CONFIG"),
                );
            }
        }
        match (&self.tls_cert_file, &self.tls_key_file) {
            (Some(_), None) => {
                return err(
                    "TLS_KEY_FILE",
                    "TLS_CERT_FILE is set, so TLS_KEY_FILE is needed too",
                );
            }
            (None, Some(_)) => {
                return err(
                    "TLS_CERT_FILE",
                    "TLS_KEY_FILE is set, so TLS_CERT_FILE is needed too",
                );
            }
            (None, None)
                if self.preferred_url_scheme == "https" && !self.external_tls_termination =>
            {
                // Quay's convention: ssl.cert and ssl.key beside config.yaml.
                if let Some(dir) = file.and_then(Path::parent) {
                    let (cert, key) = (dir.join("ssl.cert"), dir.join("ssl.key"));
                    if cert.exists() && key.exists() {
                        self.tls_cert_file = Some(cert);
                        self.tls_key_file = Some(key);
                    }
                }
            }
            _ => {}
        }
        for loc in self.storage.values_mut() {
            if let StorageLocation::Local { fsync, .. } = loc {
                *fsync = self.storage_fsync;
            }
        }
        if self.authentication_type == "LDAP" {
            let ldap = self.auth.ldap.get_or_insert_with(Default::default);
            if let Err((key, msg)) = ldap.validate() {
                return err(key, msg);
            }
        } else if self.auth.ldap.take().is_some() {
            // Quay ignores LDAP settings unless LDAP is the user backend; so does Berth, saying so.
            self.unused_quay_keys.append(&mut self.ldap_keys);
        }
        self.auth.service = self.server_hostname.clone();
        self.unused_quay_keys.sort();
        Ok(())
    }

    /// The database URI: `DB_URI`, or an SQLite file in the data directory.
    pub fn db_uri(&self) -> String {
        self.db_uri
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("berth.db").display()))
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(yaml: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.yaml");
        std::fs::write(&path, yaml).expect("write");
        Config::load(
            Some(&path),
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
    }

    #[test]
    fn quay_config_is_accepted_and_unused_keys_reported() {
        let c = load(
            "SERVER_HOSTNAME: reg.example.com\nPREFERRED_URL_SCHEME: http\nDB_URI: sqlite:///tmp/x.db\n\
             AUTHENTICATION_TYPE: Database\nBUILDLOGS_REDIS: {host: redis}\nFEATURE_BUILD_SUPPORT: false\n\
             DISTRIBUTED_STORAGE_CONFIG: {local_us: [LocalStorage, {storage_path: /srv/blobs}]}\n\
             DISTRIBUTED_STORAGE_PREFERENCE: [local_us]\nTAG_EXPIRATION_OPTIONS: [1d, 2w]\n",
            &[],
        )
        .expect("valid");
        assert_eq!(c.server_hostname, "reg.example.com");
        assert_eq!(c.db_uri(), "sqlite:///tmp/x.db");
        assert_eq!(
            c.preferred_storage().map(|(_, l)| l.clone()),
            Some(StorageLocation::Local {
                path: "/srv/blobs".into(),
                fsync: true
            })
        );
        assert_eq!(
            c.unused_quay_keys,
            ["BUILDLOGS_REDIS", "FEATURE_BUILD_SUPPORT"]
        );
        assert_eq!(c.auth.tag_expiration_options, [86_400, 14 * 86_400]);
    }

    #[test]
    fn quay_object_storage_drivers_map_to_backends() {
        let c = load(
            "DISTRIBUTED_STORAGE_CONFIG:\n  s3: [S3Storage, {s3_bucket: b, storage_path: /reg, host: s3.example.com, s3_region: eu-west-1}]\n  \
             ceph: [RadosGWStorage, {hostname: ceph.local, port: 7480, is_secure: false, access_key: a, secret_key: s, bucket_name: q, storage_path: /x}]\n\
             DISTRIBUTED_STORAGE_PREFERENCE: [ceph, s3]\nSTORAGE_FSYNC: false\n",
            &[],
        )
        .expect("valid");
        match c.preferred_storage().map(|(_, l)| l.clone()) {
            Some(StorageLocation::S3 {
                bucket,
                endpoint,
                prefix,
                ..
            }) => {
                assert_eq!(bucket, "q");
                assert_eq!(endpoint.as_deref(), Some("http://ceph.local:7480"));
                assert_eq!(prefix, "/x");
            }
            other => panic!("unexpected {other:?}"),
        }
        match c.storage.get("s3") {
            Some(StorageLocation::S3 {
                endpoint, region, ..
            }) => {
                assert_eq!(endpoint.as_deref(), Some("https://s3.example.com"));
                assert_eq!(region.as_deref(), Some("eu-west-1"));
            }
            other => panic!("unexpected {other:?}"),
        }
        let e = load(
            "DISTRIBUTED_STORAGE_CONFIG: {x: [S3Storage, {s3_bucket: b, bukket: c}]}\n",
            &[],
        )
        .expect_err("bad param");
        assert!(e.msg.contains("bukket"), "{}", e.msg);
        let e = load("DISTRIBUTED_STORAGE_CONFIG: {x: [SwiftStorage, {}]}\n", &[])
            .expect_err("unsupported driver");
        assert_eq!(e.key, "DISTRIBUTED_STORAGE_CONFIG");
    }

    #[test]
    fn data_dir_flag_moves_the_default_storage_but_not_a_configured_one() {
        let mut c = load("", &[]).expect("empty config");
        c.set_data_dir(PathBuf::from("/srv/berth"));
        assert_eq!(
            c.storage.get("default"),
            Some(&StorageLocation::Local {
                path: PathBuf::from("/srv/berth/storage"),
                fsync: true
            })
        );
        let mut c = load(
            "DISTRIBUTED_STORAGE_CONFIG: {local_us: [LocalStorage, {storage_path: /srv/blobs}]}\n",
            &[],
        )
        .expect("config");
        c.set_data_dir(PathBuf::from("/srv/berth"));
        assert!(
            matches!(c.storage.get("local_us"), Some(StorageLocation::Local { path, .. }) if path == &PathBuf::from("/srv/blobs"))
        );
    }

    #[test]
    fn bad_values_and_unknown_keys_name_the_key() {
        let e = load("STORAGE_FSYNC: maybe\n", &[]).expect_err("bad bool");
        assert_eq!(e.key, "STORAGE_FSYNC");
        let e = load("SERVER_HOSTNAM: x\n", &[]).expect_err("typo");
        assert_eq!(e.key, "SERVER_HOSTNAM");
        assert!(e.msg.contains("SERVER_HOSTNAME"), "{}", e.msg);
        let e = load("DISTRIBUTED_STORAGE_PREFERENCE: [nowhere]\n", &[])
            .expect_err("undefined location");
        assert_eq!(e.key, "DISTRIBUTED_STORAGE_PREFERENCE");
        let e = load("FEATURE_BUILD_SUPPORT: 3\n", &[]).expect_err("feature must be bool");
        assert_eq!(e.key, "FEATURE_BUILD_SUPPORT");
        let e = load("TLS_CERT_FILE: /x\n", &[]).expect_err("key missing");
        assert_eq!(e.key, "TLS_KEY_FILE");
    }

    #[test]
    fn oidc_login_blocks_and_sessions() {
        let c = load(
            "MOCK_LOGIN_CONFIG: {OIDC_SERVER: 'http://127.0.0.1:9', CLIENT_ID: c, CLIENT_SECRET: s, SERVICE_NAME: Mock}\n\
             GITHUB_LOGIN_CONFIG: {CLIENT_ID: x}\nSECRET_KEY: k\nSESSION_TIMEOUT: 12h\nSESSION_COOKIE_SECURE: true\n",
            &[],
        )
        .expect("valid");
        assert_eq!(c.auth.oidc.len(), 1);
        assert_eq!(c.auth.oidc[0].id, "mock");
        assert_eq!(c.auth.oidc[0].title, "Mock");
        assert_eq!(c.auth.session_secret.as_deref(), Some("k"));
        assert_eq!(c.auth.session_timeout_s, 12 * 3600);
        assert!(c.auth.session_cookie_secure);
        assert_eq!(c.unused_quay_keys, ["GITHUB_LOGIN_CONFIG"]);
        let e = load(
            "CORP_LOGIN_CONFIG: {OIDC_SERVER: 'http://x', CLIENT_ID: c}\n",
            &[],
        )
        .expect_err("no secret");
        assert_eq!(e.key, "CORP_LOGIN_CONFIG");
        assert!(e.msg.contains("CLIENT_SECRET"), "{}", e.msg);
        let e = load("SESSION_TIMEOUT: forever\n", &[]).expect_err("bad duration");
        assert_eq!(e.key, "SESSION_TIMEOUT");
    }

    #[test]
    fn environment_overrides_file() {
        let c = load(
            "LISTEN_ADDRESS: 127.0.0.1:1\nSTORAGE_FSYNC: true\n",
            &[
                ("BERTH_LISTEN_ADDRESS", "127.0.0.1:2"),
                ("BERTH_STORAGE_FSYNC", "false"),
                ("OTHER", "x"),
            ],
        )
        .expect("valid");
        assert_eq!(c.listen, "127.0.0.1:2");
        assert!(!c.storage_fsync);
        let e = load("", &[("BERTH_NOPE", "1")]).expect_err("unknown env key");
        assert_eq!(e.key, "NOPE");
    }

    #[test]
    fn ldap_keys_as_quay_writes_them() {
        let c = load(
            "AUTHENTICATION_TYPE: LDAP\nLDAP_URI: ldaps://ldap.example.org\n\
             LDAP_BASE_DN: [dc=example, dc=org]\nLDAP_USER_RDN: [ou=people]\n\
             LDAP_SECONDARY_USER_RDNS: [ou=contractors]\nLDAP_ADMIN_DN: cn=admin,dc=example,dc=org\n\
             LDAP_ADMIN_PASSWD: secret\nLDAP_USER_FILTER: (employeeType=registry)\n\
             LDAP_TIMEOUT: 2.5\nLDAP_POOL_SIZE: 5\n",
            &[],
        )
        .expect("valid");
        let l = c.auth.ldap.expect("LDAP configured");
        assert_eq!(l.base_dn, "dc=example,dc=org");
        assert_eq!(
            l.user_bases(),
            [
                "ou=people,dc=example,dc=org",
                "ou=contractors,dc=example,dc=org"
            ]
        );
        assert_eq!(l.timeout, std::time::Duration::from_millis(2500));
        assert_eq!(c.unused_quay_keys, ["LDAP_POOL_SIZE"]);
        let e = load("AUTHENTICATION_TYPE: LDAP\nLDAP_BASE_DN: dc=x\n", &[]).expect_err("no URI");
        assert_eq!(e.key, "LDAP_URI");
        let e = load("AUTHENTICATION_TYPE: LDAP\nLDAP_URI: ldap://x\n", &[]).expect_err("no base");
        assert_eq!(e.key, "LDAP_BASE_DN");
        let e = load(
            "AUTHENTICATION_TYPE: LDAP\nLDAP_URI: ldap://x\nLDAP_BASE_DN: dc=x\nLDAP_SUPERUSER_FILTER: admins\n",
            &[],
        )
        .expect_err("bad filter");
        assert_eq!(e.key, "LDAP_SUPERUSER_FILTER");
        let c = load("LDAP_URI: ldap://x\n", &[]).expect("ignored without LDAP");
        assert!(c.auth.ldap.is_none());
        assert_eq!(c.unused_quay_keys, ["LDAP_URI"]);
    }
}
