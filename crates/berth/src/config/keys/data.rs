//! Where data lives: the metadata database, blob storage locations and their replication, the
//! job queue; Quay's caches and audit-log backends.

use super::super::storage::parse_storage;
use super::super::values::{as_bool, as_string, as_string_list, err, positive};
use super::*;

const CACHE: &str = "Redis or memcached endpoint; Berth keeps this state in its database";
const UPKEEP: &str = "internal upkeep Berth does its own way";
const AUDIT_ALL: &str = "Berth audits every namespace; turning the audit log off for some is not available (fails safe)";
const LOG_ARCHIVE: &str = "setting of audit-log archiving (FEATURE_ACTION_LOG_ROTATION) or of a LOGS_MODEL backend, which Berth lacks";
const LABELS: &str = "Berth reserves no label key prefixes";

/// `DB_CONNECTION_ARGS` entries that secure a PostgreSQL connection; Berth passes them on as
/// `DB_URI` query parameters. Quay's other (peewee pool) arguments have no meaning for Berth.
const DB_TLS_ARGS: &[&str] = &["sslmode", "sslrootcert", "sslcert", "sslkey"];

fn db_connection_args(c: &mut Config, k: &str, v: &Value, base: &Path) -> Result<(), ConfigError> {
    let Value::Object(args) = v else {
        return err(k, "expected a map of connection arguments");
    };
    c.db_params.clear();
    for name in DB_TLS_ARGS {
        let Some(value) = args.get(*name).filter(|v| !v.is_null()) else {
            continue;
        };
        let mut s = as_string(k, value)?;
        if *name == "sslmode" {
            const MODES: &[&str] = &[
                "disable",
                "allow",
                "prefer",
                "require",
                "verify-ca",
                "verify-full",
            ];
            if !MODES.contains(&s.as_str()) {
                return err(
                    k,
                    format!("sslmode {s:?} is not one of {}", MODES.join(", ")),
                );
            }
        } else if Path::new(&s).is_relative() {
            s = base.join(&s).display().to_string();
        }
        c.db_params.push(((*name).to_string(), s));
    }
    Ok(())
}

pub static KEYS: &[KeyDef] = &[
    // ---- acted on
    quay(
        "DB_URI",
        S,
        "metadata database: sqlite:///path/to/berth.db or postgresql://user:password@host:5432/db (default: berth.db in DATA_DIR)",
        |c, k, v, _| {
            let s = as_string(k, v)?;
            let known = ["sqlite:", "postgresql://", "postgres://"];
            if !known.iter().any(|p| s.starts_with(p)) {
                return err(
                    k,
                    format!(
                        "{s:?} is not supported; use sqlite:///path/to/berth.db or postgresql://user:password@host:5432/db"
                    ),
                );
            }
            c.db_uri = Some(s);
            Ok(())
        },
    )
    .default_is(r#""sqlite:///test/data/test.db""#),
    quay(
        "DB_CONNECTION_ARGS",
        M,
        "for PostgreSQL: sslmode, sslrootcert, sslcert and sslkey are added to DB_URI (other entries have no effect)",
        db_connection_args,
    ),
    berth(
        "DB_MAX_CONNECTIONS",
        I,
        "database connection pool size (default 16)",
        |c, k, v, _| {
            c.db_max_connections = u32::try_from(positive(k, v)?)
                .or_else(|_| err(k, format!("{v} is too large")))?;
            Ok(())
        },
    ),
    quay(
        "DISTRIBUTED_STORAGE_CONFIG",
        M,
        "storage locations: {name: [Driver, {params}]} (LocalStorage, S3Storage, RadosGWStorage, GoogleCloudStorage, AzureStorage)",
        |c, k, v, base| {
            c.storage = parse_storage(k, v, base)?;
            Ok(())
        },
    ),
    quay(
        "DISTRIBUTED_STORAGE_PREFERENCE",
        L.or(S),
        "storage locations in order of preference: this instance writes to the first",
        |c, k, v, _| {
            c.storage_preference = as_string_list(k, v)?;
            Ok(())
        },
    )
    .default_is(r#"["local_us"]"#),
    quay(
        "DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS",
        L.or(S),
        "locations every new blob is replicated to (with FEATURE_STORAGE_REPLICATION)",
        |c, k, v, _| {
            c.storage_default_locations = as_string_list(k, v)?;
            Ok(())
        },
    )
    .default_is(r#"["local_us"]"#),
    quay(
        "FEATURE_STORAGE_REPLICATION",
        B,
        "background workers copy every new blob to DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS (default false)",
        |c, k, v, _| {
            c.storage_replication = as_bool(k, v)?;
            Ok(())
        },
    )
    .default_is("false"),
    quay(
        "FEATURE_PROXY_STORAGE",
        B,
        "stream blobs through Berth instead of redirecting clients to storage URLs",
        |c, k, v, _| {
            c.proxy_storage = as_bool(k, v)?;
            Ok(())
        },
    )
    .default_is("false"),
    berth(
        "STORAGE_FSYNC",
        B,
        "flush blob data to disk before a push is acknowledged (default true)",
        |c, k, v, _| {
            c.storage_fsync = as_bool(k, v)?;
            Ok(())
        },
    ),
    berth(
        "JOB_LEASE_SECONDS",
        I,
        "a job a worker took is given to another worker after this many seconds without news (default 300)",
        |c, k, v, _| {
            c.job_lease_seconds = positive(k, v)?;
            Ok(())
        },
    ),
    // ---- (c): values Berth cannot honour stop the start
    guard(
        "LOGS_MODEL",
        S,
        "Berth keeps its audit log in its database; records would not reach the configured backend",
        |g| g.value.as_str() == Some("database"),
        r#""database""#,
    )
    .default_is(r#""database""#)
    .one_of(&[
        "database",
        "transition_reads_both_writes_es",
        "elasticsearch",
        "splunk",
    ]),
    // ---- (b): capabilities this version lacks
    unavailable("ACTION_LOG_AUDIT_DELETE_FAILURES", "auditing failed deletes").default_is("false"),
    unavailable("ACTION_LOG_AUDIT_PULL_FAILURES", "auditing failed pulls").default_is("false"),
    unavailable("ACTION_LOG_AUDIT_PUSH_FAILURES", "auditing failed pushes").default_is("false"),
    unavailable("FEATURE_ACTION_LOG_ROTATION", "audit-log rotation").default_is("false"),
    unavailable(
        "FEATURE_AGGREGATED_LOG_COUNT_RETRIEVAL",
        "aggregated audit-log counts",
    )
    .default_is("true"),
    unavailable("FEATURE_EXTENDED_ACTION_LOGGING", "extended audit logging").default_is("false"),
    unavailable("FEATURE_IMAGE_PULL_STATS", "pull statistics").default_is("false"),
    unavailable("FEATURE_LOG_EXPORT", "Quay's audit-log export API").default_is("true"),
    // ---- (a): no effect
    no_effect("BUILDLOGS_REDIS", M, CACHE).default_is(r#"{"host": "localhost"}"#),
    no_effect("USER_EVENTS_REDIS", M, CACHE).default_is(r#"{"host": "localhost"}"#),
    no_effect("PULL_METRICS_REDIS", M, CACHE).default_is(r#"{"db": 1, "host": "localhost"}"#),
    no_effect("DATA_MODEL_CACHE_CONFIG", M, CACHE),
    no_effect(
        "DB_CONNECTION_POOLING",
        BZ,
        "Berth always pools connections (DB_MAX_CONNECTIONS)",
    ),
    no_effect(
        "ALLOW_PULLS_WITHOUT_STRICT_LOGGING",
        B,
        "Berth writes audit records in the background; a pull never waits for the log",
    )
    .default_is("false"),
    no_effect(
        "ALLOW_WITHOUT_STRICT_LOGGING",
        B,
        "Berth writes audit records in the background; a request never waits for the log",
    )
    .default_is("false"),
    no_effect("DISABLED_FOR_AUDIT_LOGS", L, AUDIT_ALL).default_is("[]"),
    no_effect("DISABLED_FOR_PULL_LOGS", L, AUDIT_ALL).default_is("[]"),
    no_effect("FEATURE_DISABLE_PULL_LOGS_FOR_FREE_NAMESPACES", B, AUDIT_ALL).default_is("false"),
    no_effect("ACTION_LOG_ARCHIVE_LOCATION", S, LOG_ARCHIVE).default_is(r#""local_us""#),
    no_effect("ACTION_LOG_ARCHIVE_PATH", S, LOG_ARCHIVE).default_is(r#""actionlogarchive/""#),
    no_effect("ACTION_LOG_ROTATION_THRESHOLD", S, LOG_ARCHIVE).default_is(r#""30d""#),
    no_effect("LOGS_MODEL_CONFIG", M, LOG_ARCHIVE).default_is("{}"),
    no_effect("ACTION_LOG_MAX_PAGE", IZ, UPKEEP).default_is("null"),
    no_effect("V2_PAGINATION_SIZE", N, UPKEEP).default_is("50"),
    no_effect("DEFAULT_LABEL_KEY_RESERVED_PREFIXES", L, LABELS),
    no_effect("LABEL_KEY_RESERVED_PREFIXES", L, LABELS).default_is("[]"),
];
