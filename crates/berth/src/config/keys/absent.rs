//! Capabilities this version of Berth lacks — vulnerability scanning, mirroring, the proxy cache,
//! builds, mail and notifications, billing — with their switches (named in the start-up banner
//! when on) and their settings (no effect until the capability exists).

use super::*;

const SCANNER: &str = "setting of Clair, Quay's external scanner (Berth scans in its own process: FEATURE_SECURITY_SCANNER)";
const NOTIFY: &str = "setting of notifications Berth does not act on (yet)";
const MAIL: &str = "setting of mail (FEATURE_MAILING)";
const MIRROR: &str =
    "setting of mirroring or the proxy cache (FEATURE_REPO_MIRROR, FEATURE_PROXY_CACHE)";
const BUILDS: &str = "setting of Dockerfile builds (FEATURE_BUILD_SUPPORT)";
const BOOTSTRAP_API: &str =
    "setting of Quay's bootstrap token API (FEATURE_PROGRAMMATIC_BOOTSTRAP)";
const SPAM: &str = "setting of spam detection (FEATURE_SPAM_DETECTION)";
const HOSTED: &str =
    "setting of a hosted-service integration (billing, CDN, geo-IP, TUF, rate-limit exemptions)";

pub static KEYS: &[KeyDef] = &[
    // ---- (b): capabilities this version lacks
    unavailable("FEATURE_ACI_CONVERSION", "ACI conversion").nullable(),
    unavailable("FEATURE_APP_REGISTRY", "the application registry").nullable(),
    unavailable("FEATURE_BILLING", "billing and marketplace integration").default_is("false"),
    unavailable("FEATURE_BITBUCKET_BUILD", "Dockerfile builds").default_is("false"),
    unavailable("FEATURE_BUILD_SUPPORT", "Dockerfile builds").default_is("true"),
    unavailable(
        "FEATURE_ENTITLEMENT_RECONCILIATION",
        "billing and marketplace integration",
    )
    .default_is("false"),
    unavailable("FEATURE_EXPORT_COMPLIANCE", "export-compliance checks").default_is("false"),
    unavailable("FEATURE_GITHUB_BUILD", "Dockerfile builds").default_is("false"),
    unavailable("FEATURE_GITLAB_BUILD", "Dockerfile builds").default_is("false"),
    no_effect(
        "FEATURE_IMAGE_EXPIRY_TRIGGER",
        B,
        "repo_image_expiry notifications are always available in Berth",
    )
    .default_is("false"),
    unavailable("FEATURE_OTEL_TRACING", "OpenTelemetry tracing").default_is("false"),
    unavailable("FEATURE_PROGRAMMATIC_BOOTSTRAP", "the bootstrap token API").default_is("false"),
    unavailable("FEATURE_READER_BUILD_LOGS", "Dockerfile builds").default_is("false"),
    unavailable(
        "FEATURE_RH_MARKETPLACE",
        "billing and marketplace integration",
    )
    .default_is("false"),
    unavailable(
        "FEATURE_SECURITY_SCANNER_V2",
        "vulnerability scanning (Clair)",
    )
    .default_is("false"),
    unavailable("FEATURE_SIGNING", "image signing (TUF)").default_is("false"),
    unavailable("FEATURE_SPAM_DETECTION", "spam detection").default_is("false"),
    unavailable("FEATURE_USER_EVENTS", "live user events").default_is("true"),
    // ---- (a): their settings, no effect
    no_effect("BILLED_NAMESPACE_MAXIMUM_BUILD_COUNT", IZ, BUILDS).default_is("null"),
    no_effect("BILLING_TYPE", S, HOSTED).default_is(r#""FakeStripe""#),
    no_effect("BITBUCKET_TRIGGER_CONFIG", MZ, BUILDS).default_is("null"),
    no_effect("BOOTSTRAP_TOKEN_EXPIRATION", I, BOOTSTRAP_API).default_is("3600"),
    no_effect("BOOTSTRAP_TOKEN_OWNER", SZ, BOOTSTRAP_API).default_is("null"),
    no_effect("BOOTSTRAP_TOKEN_PATH", S, BOOTSTRAP_API)
        .default_is(r#""/var/lib/quay/quay-machine-token.json""#),
    no_effect("BOOTSTRAP_TOKEN_SCOPE", S, BOOTSTRAP_API),
    no_effect("BUILDMAN_CONTROLLER_PORT", IZ, BUILDS),
    no_effect("BUILDMAN_HOSTNAME", SZ, BUILDS),
    no_effect("BUILD_MANAGER", L, BUILDS).default_is(r#"["enterprise", {}]"#),
    no_effect("CDN_SPECIFIC_NAMESPACES", L, HOSTED).default_is("[]"),
    no_effect("DEFAULT_NAMESPACE_MAXIMUM_BUILD_COUNT", NZ, BUILDS).default_is("null"),
    no_effect("ENTITLEMENT_RECONCILIATION_MARKETPLACE_ENDPOINT", S, HOSTED).default_is(r#""""#),
    no_effect("ENTITLEMENT_RECONCILIATION_USER_ENDPOINT", S, HOSTED).default_is(r#""""#),
    no_effect("EXPORT_COMPLIANCE_ENDPOINT", S, HOSTED).default_is(r#""""#),
    no_effect("FEATURE_PROXY_CACHE_BLOB_DOWNLOAD", B, MIRROR).default_is("true"),
    no_effect("FEATURE_SECURITY_SCANNER_NOTIFY_ON_NEW_INDEX", B, SCANNER).default_is("true"),
    no_effect("GITHUB_TRIGGER_CONFIG", MZ, BUILDS).default_is("null"),
    no_effect("GITLAB_TRIGGER_CONFIG", MZ, BUILDS).default_is("null"),
    no_effect("GITLAB_TRIGGER_KIND", SZ.or(M), BUILDS),
    no_effect("IP_DATA_API_KEY", SZ, HOSTED).default_is("null"),
    no_effect("LOG_ARCHIVE_LOCATION", S, BUILDS).default_is(r#""local_us""#),
    no_effect("LOG_ARCHIVE_PATH", S, BUILDS).default_is(r#""logarchive/""#),
    no_effect("MAIL_FAIL_SILENTLY", B, MAIL).default_is("false"),
    no_effect("NON_RATE_LIMITED_NAMESPACES", LZ, HOSTED),
    no_effect("NOTIFICATION_TASK_RUN_MINIMUM_INTERVAL_MINUTES", NZ, NOTIFY),
    no_effect("ORG_MIRROR_MAX_DISCOVERY_DURATION", N, MIRROR).default_is("1800"),
    no_effect("PROGRAMMATIC_TOKEN_K8S_KEY", S, BOOTSTRAP_API).default_is(r#""token.json""#),
    no_effect("PROGRAMMATIC_TOKEN_K8S_NAMESPACE", SZ, BOOTSTRAP_API).default_is("null"),
    no_effect("PROGRAMMATIC_TOKEN_K8S_SECRET", SZ, BOOTSTRAP_API).default_is("null"),
    no_effect("PROGRAMMATIC_TOKEN_PATH", SZ, BOOTSTRAP_API),
    no_effect("REPO_MIRROR_MAX_MANIFEST_ENTRIES", I, MIRROR).default_is("1000"),
    no_effect("REPO_MIRROR_MAX_MANIFEST_LIST_SIZE", I, MIRROR).default_is("10485760"),
    no_effect("REPO_MIRROR_TAG_ROLLBACK_PAGE_SIZE", IZ, MIRROR),
    no_effect("SECURITY_SCANNER_V2_BATCH_SIZE", N, SCANNER).default_is("50"),
    no_effect("SECURITY_SCANNER_V2_INDEXING_INTERVAL", N, SCANNER).default_is("30"),
    no_effect("SECURITY_SCANNER_V4_ENDPOINT", SZ, SCANNER).default_is("null"),
    no_effect("SECURITY_SCANNER_V4_MANIFEST_CLEANUP", B, "setting Berth does not need: garbage collection always removes what the scanner read from a layer with the layer").default_is("true"),
    no_effect("SECURITY_SCANNER_V4_PSK", SZ, SCANNER).default_is("null"),
    no_effect("SERVICE_LOG_ACCOUNT_ID", SZ, HOSTED).default_is("null"),
    no_effect("SPAM_DETECTION_CLASSIFIER_PATH", SZ, SPAM)
        .default_is(r#""/conf/spam-detection/classifier.json""#),
    no_effect("SPAM_DETECTION_CLASSIFIER_SHA256", SZ, SPAM).default_is("null"),
    no_effect("SPAM_DETECTION_CLASSIFIER_VERSION", SZ, SPAM).default_is("null"),
    no_effect("SPAM_DETECTION_DRY_RUN", B, SPAM).default_is("true"),
    no_effect("SPAM_DETECTION_FAIL_OPEN", B, SPAM).default_is("true"),
    no_effect("STATIC_SITE_BUCKET", SZ, HOSTED).default_is("null"),
    no_effect("SUCCESSIVE_TRIGGER_FAILURE_DISABLE_THRESHOLD", NZ, BUILDS).default_is("100"),
    no_effect(
        "SUCCESSIVE_TRIGGER_INTERNAL_ERROR_DISABLE_THRESHOLD",
        NZ,
        BUILDS,
    )
    .default_is("5"),
    no_effect("THREAT_NAMESPACE_MAXIMUM_BUILD_COUNT", IZ, BUILDS).default_is("null"),
    no_effect("TRACKED_NAMESPACES", L, HOSTED).default_is("[]"),
    no_effect("TUF_GUN_PREFIX", SZ, HOSTED).default_is("null"),
    no_effect("TUF_SERVER", SZ, HOSTED).default_is("null"),
    no_effect("USERFILES_LOCATION", S, BUILDS).default_is(r#""local_us""#),
    no_effect("USERFILES_PATH", S, BUILDS).default_is(r#""userfiles/""#),
    no_effect("USE_CDN", B, HOSTED).default_is("false"),
];
