//! Quay's own machinery: Python and Flask runtime switches, work-queue names, service keys,
//! metrics and tracing plumbing. None has an effect in Berth, which has its own equivalents.

use super::*;

const RUNTIME: &str = "setting of Quay's Python/Flask runtime or its deployment tooling";
const QUEUE: &str = "name of a Quay work queue; Berth's jobs share one queue in its database";
const SERVICE_KEYS: &str =
    "Quay's service keys and grants; Berth signs tokens with its own rotating keys";
const METRICS: &str =
    "Quay's metrics, health or tracing plumbing; Berth serves /metrics and /health itself";
const CACHE: &str = "Redis or memcached setting; Berth keeps this state in its database";

pub static KEYS: &[KeyDef] = &[
    no_effect("ANALYTICS_TYPE", S, RUNTIME).default_is(r#""FakeAnalytics""#),
    no_effect("APPLICATION_ROOT", SZ, RUNTIME),
    no_effect("BUILDLOGS_OPTIONS", L, CACHE).default_is("[]"),
    no_effect("CHUNK_CLEANUP_QUEUE_NAME", S, QUEUE).default_is(r#""chunk_cleanup""#),
    no_effect("DEBUG", BZ, RUNTIME),
    no_effect("DOCKERFILE_BUILD_QUEUE_NAME", S, QUEUE).default_is(r#""dockerfilebuild""#),
    no_effect("ENABLE_HEALTH_DEBUG_SECRET", SZ, METRICS).default_is("null"),
    no_effect("EXCEPTION_LOG_TYPE", S, RUNTIME).default_is(r#""FakeSentry""#),
    no_effect("EXPIRED_SERVICE_KEY_TTL_SEC", N, SERVICE_KEYS).default_is("604800"),
    no_effect("EXPLAIN_TEMPLATE_LOADING", BZ, RUNTIME),
    no_effect("EXPORT_ACTION_LOGS_QUEUE_NAME", S, QUEUE).default_is(r#""exportactionlogs""#),
    no_effect("GLOBAL_PROMETHEUS_STATS_FREQUENCY", NZ, METRICS),
    no_effect("GREENLET_TRACING", B, RUNTIME).default_is("true"),
    no_effect("HEALTH_CHECKER", L, METRICS).default_is(r#"["LocalHealthCheck", {}]"#),
    no_effect("INSTANCE_SERVICE_KEY_EXPIRATION", N, SERVICE_KEYS).default_is("120"),
    no_effect("INSTANCE_SERVICE_KEY_KID_LOCATION", S, SERVICE_KEYS)
        .default_is(r#""/conf/stack/quay.kid""#),
    no_effect("INSTANCE_SERVICE_KEY_LOCATION", S, SERVICE_KEYS)
        .default_is(r#""/conf/stack/quay.pem""#),
    no_effect("INSTANCE_SERVICE_KEY_REFRESH", N, SERVICE_KEYS).default_is("55"),
    no_effect("INSTANCE_SERVICE_KEY_SERVICE", S, SERVICE_KEYS).default_is(r#""quay""#),
    no_effect("JSONIFY_PRETTYPRINT_REGULAR", B, RUNTIME).default_is("false"),
    no_effect("LOGGING_LEVEL", S, RUNTIME).default_is(r#""DEBUG""#),
    no_effect("MAX_COOKIE_SIZE", NZ, RUNTIME),
    no_effect("NAMESPACE_GC_QUEUE_NAME", S, QUEUE).default_is(r#""namespacegc""#),
    no_effect("NOTIFICATION_QUEUE_NAME", S, QUEUE).default_is(r#""notification""#),
    no_effect("OTEL_CONFIG", MZ, METRICS),
    no_effect("OTEL_TRACING_EXCLUDED_URLS", SZ, METRICS).default_is("null"),
    no_effect("PAGE_TOKEN_KEY", S, SERVICE_KEYS),
    no_effect("PROFILING_TYPE", S, RUNTIME).default_is(r#""""#),
    no_effect("PROMETHEUS_NAMESPACE", S, METRICS).default_is(r#""quay""#),
    no_effect("PROMETHEUS_PUSHGATEWAY_URL", S, METRICS).default_is(r#""http://localhost:9091""#),
    no_effect("PROPAGATE_EXCEPTIONS", B, RUNTIME).default_is("true"),
    no_effect("PROXY_CACHE_BLOB_QUEUE_NAME", S, QUEUE).default_is(r#""proxycacheblob""#),
    no_effect("PULL_METRICS_WORKER_COUNT", I, METRICS).default_is("5"),
    no_effect("PYROSCOPE_APPLICATION_NAME", S, RUNTIME).default_is(r#""quay""#),
    no_effect("PYROSCOPE_SERVER_ADDRESS", SZ, RUNTIME).default_is("null"),
    no_effect("QUEUE_METRICS_TYPE", S, METRICS).default_is(r#""Null""#),
    no_effect("QUEUE_WORKER_METRICS_REFRESH_SECONDS", N, METRICS).default_is("300"),
    no_effect("REDIS_FLUSH_INTERVAL_SECONDS", I, METRICS).default_is("300"),
    no_effect("REGISTRY_JWT_AUTH_MAX_FRESH_S", N, SERVICE_KEYS).default_is("3660"),
    no_effect("REPLICATION_QUEUE_NAME", S, QUEUE).default_is(r#""imagestoragereplication""#),
    no_effect("REPOSITORY_GC_QUEUE_NAME", S, QUEUE).default_is(r#""repositorygc""#),
    no_effect("SECSCAN_V4_NOTIFICATION_QUEUE_NAME", S, QUEUE).default_is(r#""secscanv4""#),
    no_effect("SEND_FILE_MAX_AGE_DEFAULT", N, RUNTIME).default_is("0"),
    no_effect("SENTRY_DSN", SZ, RUNTIME).default_is("null"),
    no_effect("SENTRY_PUBLIC_DSN", SZ, RUNTIME).default_is("null"),
    no_effect("SESSION_REFRESH_EACH_REQUEST", BZ, RUNTIME),
    no_effect("SETUP_COMPLETE", BZ, RUNTIME),
    no_effect("SIGNED_GRANT_EXPIRATION_SEC", N, SERVICE_KEYS).default_is("86400"),
    no_effect("STAGGER_WORKERS", B, RUNTIME).default_is("true"),
    no_effect("TESTING", B, RUNTIME).default_is("true"),
    no_effect("TRAP_HTTP_EXCEPTIONS", BZ, RUNTIME),
    no_effect("UNAPPROVED_SERVICE_KEY_TTL_SEC", N, SERVICE_KEYS).default_is("86400"),
    no_effect("USE_CERBERUS", BZ, RUNTIME),
    no_effect("USE_X_SENDFILE", BZ, RUNTIME),
    no_effect("V3_UPGRADE_MODE", SZ, RUNTIME),
];
