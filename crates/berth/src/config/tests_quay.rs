//! Quay's key types and classes, the new acted-on keys and the rules across keys.

use super::tests::{load, load_all};
use super::*;
use serde_json::Value;

#[test]
fn null_means_quays_unset_and_types_follow_quay() {
    let c = load(
        "APP_SPECIFIC_TOKEN_EXPIRATION: null\nFEATURE_LISTEN_IP_VERSION: IPv4\nBRANDING: null\n",
        &[],
    )
    .expect("valid");
    assert_eq!(c.auth.app_token_expiration_s, None);
    assert_eq!(c.ignored_keys, ["BRANDING", "FEATURE_LISTEN_IP_VERSION"]);
    let c = load("APP_SPECIFIC_TOKEN_EXPIRATION: 90d\n", &[]).expect("valid");
    assert_eq!(c.auth.app_token_expiration_s, Some(90 * 86_400));
    let e = load("FEATURE_LISTEN_IP_VERSION: true\n", &[]).expect_err("not a string");
    assert_eq!(e.key, "FEATURE_LISTEN_IP_VERSION");
    assert!(e.msg.contains("expected a string"), "{}", e.msg);
    let e = load("FEATURE_MAILING: null\n", &[]).expect_err("a boolean with a default");
    assert_eq!(e.key, "FEATURE_MAILING");
    let e = load("MAIL_PORT: smtp\n", &[]).expect_err("a number");
    assert_eq!(e.key, "MAIL_PORT");
    let e = load("AVATAR_KIND: robohash\n", &[]).expect_err("enum");
    assert!(e.msg.contains("local, gravatar"), "{}", e.msg);
    let e = load("REGISTRY_STATE: 1\n", &[]).expect_err("a number is no choice either");
    assert_eq!(e.key, "REGISTRY_STATE");
}

#[test]
fn unavailable_features_are_collected_when_on() {
    let c = load(
        "FEATURE_BILLING: true\nFEATURE_SIGNING: false\nFEATURE_BUILD_SUPPORT: true\n\
         SECURITY_SCANNER_V4_ENDPOINT: http://clair:8080\n",
        &[],
    )
    .expect("valid");
    assert_eq!(
        c.unavailable_features,
        ["FEATURE_BILLING", "FEATURE_BUILD_SUPPORT"]
    );
    assert_eq!(
        c.ignored_keys,
        ["FEATURE_SIGNING", "SECURITY_SCANNER_V4_ENDPOINT"]
    );
    let notes = c.banner_notes();
    assert_eq!(
        notes[0],
        "not available in this version: FEATURE_BILLING, FEATURE_BUILD_SUPPORT"
    );
    assert!(
        notes[1].starts_with("2 config keys have no effect"),
        "{notes:?}"
    );
}

#[test]
fn banner_lines_wrap() {
    let items: Vec<String> = (0..12).map(|i| format!("FEATURE_NUMBER_{i}")).collect();
    let lines = wrap("not available in this version: ", &items, 100);
    assert!(lines.len() > 1);
    assert!(lines.iter().all(|l| l.len() <= 100), "{lines:?}");
    assert!(lines[1].starts_with(&" ".repeat(31)));
    assert!(
        lines
            .last()
            .is_some_and(|l| l.ends_with("FEATURE_NUMBER_11"))
    );
}

#[test]
fn guards_stop_values_berth_cannot_honour() {
    for (yaml, key) in [
        (
            "FEATURE_RESTRICTED_USERS: true\n",
            "FEATURE_RESTRICTED_USERS",
        ),
        (
            "CREATE_PRIVATE_REPO_ON_PUSH: false\n",
            "CREATE_PRIVATE_REPO_ON_PUSH",
        ),
        (
            "CREATE_NAMESPACE_ON_PUSH: true\n",
            "CREATE_NAMESPACE_ON_PUSH",
        ),
        (
            "FEATURE_SUPERUSERS_FULL_ACCESS: false\n",
            "FEATURE_SUPERUSERS_FULL_ACCESS",
        ),
        (
            "GLOBAL_READONLY_SUPER_USERS: [auditor]\n",
            "GLOBAL_READONLY_SUPER_USERS",
        ),
        ("LOGS_MODEL: elasticsearch\n", "LOGS_MODEL"),
        (
            "FEATURE_BLACKLISTED_EMAILS: true\nBLACKLISTED_EMAIL_DOMAINS: [spam.example]\n",
            "FEATURE_BLACKLISTED_EMAILS",
        ),
        (
            "FEATURE_USER_CREATION: true\nFEATURE_RECAPTCHA: true\n",
            "FEATURE_RECAPTCHA",
        ),
    ] {
        let e = load(yaml, &[]).expect_err(yaml);
        assert_eq!(e.key, key, "{yaml}");
        assert!(e.msg.contains("remove the key or set it to"), "{}", e.msg);
    }
    // The values Berth behaves like are accepted, and have no effect.
    let c = load(
        "FEATURE_RESTRICTED_USERS: false\nCREATE_PRIVATE_REPO_ON_PUSH: true\n\
         FEATURE_SUPERUSERS_FULL_ACCESS: true\nGLOBAL_READONLY_SUPER_USERS: []\n\
         FEATURE_RECAPTCHA: true\nFEATURE_BLACKLISTED_EMAILS: true\nSSL_PROTOCOLS: [TLSv1.3]\n",
        &[],
    )
    .expect("honoured values");
    assert!(c.ignored_keys.contains(&"FEATURE_RECAPTCHA".to_string()));
    assert!(c.unavailable_features.is_empty());
}

#[test]
fn every_problem_is_reported_at_once() {
    let e = load_all(
        "LISTEN_ADDRESS: localhost\nSTORAGE_FSYNC: maybe\nNOT_A_KEY: 1\nREGISTRY_STATE: paused\n\
         FEATURE_FIPS: true\n",
        &[],
    )
    .expect_err("five problems");
    let keys: Vec<&str> = e.errors.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "FEATURE_FIPS",
            "LISTEN_ADDRESS",
            "NOT_A_KEY",
            "REGISTRY_STATE",
            "STORAGE_FSYNC"
        ]
    );
    assert!(e.wants_key_list());
    let text = e.to_string();
    assert!(text.contains("config.yaml (5 problems):"), "{text}");
    assert!(
        text.contains("expected host:port such as 127.0.0.1:5000"),
        "{text}"
    );
    let e = load_all("SERVER_HOSTNAME: [unclosed\n", &[]).expect_err("YAML syntax");
    assert_eq!(e.errors.len(), 1);
    assert!(!e.wants_key_list());
    assert!(e.to_string().contains("is not valid YAML"), "{e}");
}

#[test]
fn registry_state_pushes_library_and_shutdown() {
    let c = load("", &[]).expect("defaults");
    assert!(!c.registry_readonly && !c.disable_pushes && c.direct_login);
    assert!(c.library_support);
    assert_eq!(c.library_namespace, "library");
    assert_eq!(c.shutdown_grace_s, 30);
    assert_eq!(c.metrics_listen, None);
    assert_eq!(c.gc.autoprune_interval_s, 30);
    let c = load(
        "REGISTRY_STATE: readonly\nDISABLE_PUSHES: true\nFEATURE_LIBRARY_SUPPORT: false\n\
         LIBRARY_NAMESPACE: base\nSHUTDOWN_GRACE_SECONDS: 5\nMETRICS_LISTEN_ADDRESS: 127.0.0.1:9091\n",
        &[],
    )
    .expect("valid");
    assert!(c.registry_readonly && c.disable_pushes && !c.library_support);
    assert_eq!(c.library_namespace, "base");
    assert_eq!(c.shutdown_grace_s, 5);
    assert_eq!(c.metrics_listen.as_deref(), Some("127.0.0.1:9091"));
    let e = load("REGISTRY_STATE: paused\n", &[]).expect_err("enum");
    assert!(e.msg.contains("normal, readonly"), "{}", e.msg);
    let e = load("LIBRARY_NAMESPACE: Not Valid\n", &[]).expect_err("bad namespace");
    assert_eq!(e.key, "LIBRARY_NAMESPACE");
    let e = load("METRICS_LISTEN_ADDRESS: 127.0.0.1:5000\n", &[]).expect_err("same address");
    assert_eq!(e.key, "METRICS_LISTEN_ADDRESS");
}

#[test]
fn direct_login_off_needs_an_external_provider() {
    let e = load("FEATURE_DIRECT_LOGIN: false\n", &[]).expect_err("nobody could sign in");
    assert_eq!(e.key, "FEATURE_DIRECT_LOGIN");
    let c = load(
        "FEATURE_DIRECT_LOGIN: false\n\
         CORP_LOGIN_CONFIG: {OIDC_SERVER: 'http://127.0.0.1:9', CLIENT_ID: c, CLIENT_SECRET: s}\n",
        &[],
    )
    .expect("with OIDC");
    assert!(!c.direct_login);
}

#[test]
fn tag_expiration_default_must_be_an_option() {
    let e = load("DEFAULT_TAG_EXPIRATION: 3d\n", &[]).expect_err("not an option");
    assert_eq!(e.key, "DEFAULT_TAG_EXPIRATION");
    assert!(e.msg.contains("TAG_EXPIRATION_OPTIONS"), "{}", e.msg);
    let c = load(
        "DEFAULT_TAG_EXPIRATION: 14d\nTAG_EXPIRATION_OPTIONS: [1d, 2w]\n",
        &[],
    )
    .expect("14d is 2w");
    assert_eq!(c.gc.default_window_s, 14 * 86_400);
    let e = load("TAG_EXPIRATION_OPTIONS: [1d]\n", &[]).expect_err("2w default not in [1d]");
    assert_eq!(e.key, "DEFAULT_TAG_EXPIRATION");
}

#[test]
fn auto_prune_poll_period_and_its_alias() {
    let c = load("AUTO_PRUNING_POLL_PERIOD: 45\n", &[]).expect("quay key");
    assert_eq!(c.gc.autoprune_interval_s, 45);
    let c = load("AUTO_PRUNE_FREQUENCY_S: 60\n", &[]).expect("alias");
    assert_eq!(c.gc.autoprune_interval_s, 60);
    let c = load(
        "AUTO_PRUNE_FREQUENCY_S: 60\nAUTO_PRUNING_POLL_PERIOD: 60\n",
        &[],
    )
    .expect("same");
    assert_eq!(c.gc.autoprune_interval_s, 60);
    let e = load(
        "AUTO_PRUNE_FREQUENCY_S: 60\nAUTO_PRUNING_POLL_PERIOD: 45\n",
        &[],
    )
    .expect_err("both, differing");
    assert_eq!(e.key, "AUTO_PRUNE_FREQUENCY_S");
}

#[test]
fn database_uri_tls_arguments_and_display() {
    let c = load(
        "DB_URI: 'postgresql://quay:s3cret@db:5432/quay'\n\
         DB_CONNECTION_ARGS: {sslmode: verify-full, sslrootcert: /etc/ssl/ca.pem, threadlocals: true}\n",
        &[],
    )
    .expect("valid");
    assert_eq!(
        c.db_uri(),
        "postgresql://quay:s3cret@db:5432/quay?sslmode=verify-full&sslrootcert=/etc/ssl/ca.pem"
    );
    assert!(
        !c.db_uri_display().contains("s3cret"),
        "{}",
        c.db_uri_display()
    );
    assert!(
        c.db_uri_display()
            .starts_with("postgresql://quay:***@db:5432/quay?")
    );
    let e = load("DB_CONNECTION_ARGS: {sslmode: sometimes}\n", &[]).expect_err("bad mode");
    assert_eq!(e.key, "DB_CONNECTION_ARGS");
    let c = load(
        "DB_URI: 'sqlite:///srv/b.db'\nDB_CONNECTION_ARGS: {sslmode: require}\n",
        &[],
    )
    .expect("sqlite");
    assert_eq!(c.db_uri(), "sqlite:///srv/b.db");
    assert_eq!(c.sqlite_path(), Some(PathBuf::from("/srv/b.db")));
}

#[test]
fn data_locations_name_database_and_blobs() {
    let mut c = load("", &[]).expect("defaults");
    c.set_data_dir(PathBuf::from("/srv/berth"));
    assert!(c.database_in_data_dir());
    assert_eq!(
        c.data_locations(),
        "database /srv/berth/berth.db; blobs in /srv/berth/storage"
    );
    let c = load(
        "DB_URI: 'postgresql://u:p@db/berth'\n\
         DISTRIBUTED_STORAGE_CONFIG: {a: [LocalStorage, {storage_path: /a}], b: [LocalStorage, {storage_path: /b}]}\n\
         DISTRIBUTED_STORAGE_PREFERENCE: [b]\n",
        &[],
    )
    .expect("valid");
    assert!(!c.database_in_data_dir());
    assert_eq!(
        c.data_locations(),
        "database postgresql://u:***@db/berth; blobs in b: /b, a: /a"
    );
}

#[test]
fn environment_values_are_read_by_their_key_type() {
    let c = load(
        "",
        &[
            ("BERTH_SECRET_KEY", "true"),
            ("BERTH_FEATURE_ANONYMOUS_ACCESS", "false"),
            ("BERTH_SUPER_USERS", "[a, b]"),
        ],
    )
    .expect("valid");
    assert_eq!(c.auth.session_secret.as_deref(), Some("true"));
    assert!(!c.auth.anonymous_access);
    assert_eq!(c.auth.superusers, ["a", "b"]);
    let e = load("", &[("BERTH_STORAGE_FSYNC", "perhaps")]).expect_err("bad");
    assert!(e.msg.contains("(set by BERTH_STORAGE_FSYNC)"), "{}", e.msg);
}

#[test]
fn environment_checks_find_what_serve_would_fail_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nope/berth.db");
    let yaml = format!(
        "DB_URI: 'sqlite://{}'\nTLS_CERT_FILE: {}\nTLS_KEY_FILE: {}\n\
         DISTRIBUTED_STORAGE_CONFIG: {{default: [LocalStorage, {{storage_path: {}}}]}}\n",
        missing.display(),
        dir.path().join("tls.crt").display(),
        dir.path().join("tls.key").display(),
        dir.path().join("blobs").display(),
    );
    let c = load(&yaml, &[]).expect("the configuration itself is valid");
    let problems = c.check_environment();
    let keys: Vec<&str> = problems.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        ["DB_URI", "TLS_CERT_FILE", "TLS_KEY_FILE"],
        "{problems:?}"
    );
    assert!(
        problems[0].msg.contains("does not exist"),
        "{}",
        problems[0].msg
    );
    let ok = load(
        &format!(
            "DB_URI: 'sqlite://{}'\nLISTEN_ADDRESS: localhost:5000\n",
            dir.path().join("b.db").display()
        ),
        &[],
    )
    .expect("valid");
    let mut ok = ok;
    ok.set_data_dir(dir.path().join("data"));
    assert!(
        ok.check_environment().is_empty(),
        "{:?}",
        ok.check_environment()
    );
}

/// Every key with a Quay default loads with it (the safe value for guards whose Quay default
/// Berth cannot honour), so the table's types and defaults agree.
#[test]
fn each_quay_default_loads() {
    for d in keys::all() {
        if d.quay_default.is_empty() || matches!(d.class, keys::Class::Acted(_)) {
            continue;
        }
        let value = match d.class {
            keys::Class::Guard { safe, .. } => safe,
            _ => d.quay_default,
        };
        let v: Value = serde_json::from_str(value).expect("json");
        let yaml = format!("{}: {v}\n", d.name);
        if let Err(e) = load_all(&yaml, &[]) {
            panic!("{yaml}: {e}");
        }
    }
}

#[test]
fn https_makes_the_session_cookie_secure_unless_said_otherwise() {
    let c = load(
        "PREFERRED_URL_SCHEME: https\nEXTERNAL_TLS_TERMINATION: true\n",
        &[],
    )
    .expect("valid");
    assert!(c.auth.session_cookie_secure);
    let c = load(
        "PREFERRED_URL_SCHEME: https\nEXTERNAL_TLS_TERMINATION: true\nSESSION_COOKIE_SECURE: false\n",
        &[],
    )
    .expect("valid");
    assert!(!c.auth.session_cookie_secure);
    assert!(!load("", &[]).expect("defaults").auth.session_cookie_secure);
}

#[test]
fn maximum_layer_size_reads_quays_size_format() {
    assert_eq!(
        load("", &[]).expect("defaults").max_layer_bytes,
        20_000_000_000
    );
    for (v, bytes) in [
        ("5G", 5_000_000_000u64),
        ("500M", 500_000_000),
        ("2 GiB", 2 << 30),
        ("1048576", 1 << 20),
    ] {
        let c = load(&format!("MAXIMUM_LAYER_SIZE: {v}\n"), &[]).expect("valid");
        assert_eq!(c.max_layer_bytes, bytes, "{v}");
    }
    let e = load("MAXIMUM_LAYER_SIZE: huge\n", &[]).expect_err("bad size");
    assert_eq!(e.key, "MAXIMUM_LAYER_SIZE");
}
