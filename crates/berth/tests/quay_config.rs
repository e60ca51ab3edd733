//! A Quay administrator's config.yaml starts Berth. The config holding every Quay key is generated
//! from Berth's own key table (`berth config keys --json`), so a key added to the table is covered
//! at once; each key gets a value a Quay installation typically has, the security-relevant ones
//! (guarded keys) a value Berth honours. A guarded key at a value Berth cannot honour stops the
//! start naming it; capabilities switched on that Berth lacks are named in the banner.

mod common;

use common::{Berth, berth_bin};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// Values a Quay installation typically has (YAML), where the key's Quay default is not one.
/// Keys Berth acts on get values that make sense together.
fn typical(key: &str, dir: &Path) -> Option<String> {
    let v = match key {
        "SERVER_HOSTNAME" => "registry.example.com".into(),
        "PREFERRED_URL_SCHEME" => "https".into(),
        "EXTERNAL_TLS_TERMINATION" => "true".into(),
        "DB_URI" => format!("'sqlite://{}'", dir.join("quay.db").display()),
        "DB_CONNECTION_ARGS" => "{autorollback: true, threadlocals: true}".into(),
        "DISTRIBUTED_STORAGE_CONFIG" => format!(
            "{{default: [LocalStorage, {{storage_path: '{}'}}]}}",
            dir.join("datastorage").display()
        ),
        "DISTRIBUTED_STORAGE_PREFERENCE" | "DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS" => {
            "[default]".into()
        }
        "USERFILES_LOCATION" | "LOG_ARCHIVE_LOCATION" | "ACTION_LOG_ARCHIVE_LOCATION" => {
            "default".into()
        }
        "AUTHENTICATION_TYPE" => "Database".into(),
        "SUPER_USERS" => "[admin]".into(),
        "FEATURE_USER_INITIALIZE" => "false".into(),
        "SECRET_KEY" => "0c5a8f7e-3b9d-4c1e-9f2a-6d7b8e9f0a1b".into(),
        "DATABASE_SECRET_KEY" => "f3e2d1c0-b9a8-4765-8432-10fedcba9876".into(),
        "PAGE_TOKEN_KEY" => "a-page-token-key".into(),
        "SESSION_COOKIE_SECURE" => "true".into(),
        "APP_SPECIFIC_TOKEN_EXPIRATION" => "null".into(),
        "REGISTRY_TITLE" | "REGISTRY_TITLE_SHORT" => "Example Registry".into(),
        "ENTERPRISE_LOGO_URL" => "/static/img/logo.svg".into(),
        "BRANDING" => "{logo: /static/img/logo.svg, footer_img: null, footer_url: null}".into(),
        "CONTACT_INFO" => "['mailto:registry@example.com']".into(),
        "FEATURE_LISTEN_IP_VERSION" => "IPv4".into(),
        "BUILDLOGS_REDIS" | "USER_EVENTS_REDIS" => "{host: redis, port: 6379}".into(),
        "PULL_METRICS_REDIS" => "{host: redis, port: 6379, db: 1}".into(),
        "DATA_MODEL_CACHE_CONFIG" => "{engine: redis, redis_config: {primary: {host: redis}}}".into(),
        "SETUP_COMPLETE" => "true".into(),
        "TESTING" | "DEBUG" | "USE_CERBERUS" => "false".into(),
        "SECURITY_SCANNER_V4_ENDPOINT" => "http://clair:8080".into(),
        "SECURITY_SCANNER_V4_PSK" => "c2VjcmV0".into(),
        "MAIL_SERVER" => "smtp.example.com".into(),
        "MAIL_DEFAULT_SENDER" => "registry@example.com".into(),
        "MAIL_USERNAME" => "registry".into(),
        "MAIL_PASSWORD" => "mail-secret".into(),
        "MAIL_USE_AUTH" => "true".into(),
        "GITHUB_LOGIN_CONFIG" => "{CLIENT_ID: gh-client, CLIENT_SECRET: gh-secret, GITHUB_ENDPOINT: 'https://github.com/'}".into(),
        "GOOGLE_LOGIN_CONFIG" => "{CLIENT_ID: g-client, CLIENT_SECRET: g-secret}".into(),
        "GITHUB_TRIGGER_CONFIG" => "{CLIENT_ID: ght, CLIENT_SECRET: ghs, GITHUB_ENDPOINT: 'https://github.com/'}".into(),
        "GITLAB_TRIGGER_CONFIG" => "{CLIENT_ID: glt, CLIENT_SECRET: gls, GITLAB_ENDPOINT: 'https://gitlab.com/'}".into(),
        "BITBUCKET_TRIGGER_CONFIG" => "{CONSUMER_KEY: bk, CONSUMER_SECRET: bs}".into(),
        "GITLAB_TRIGGER_KIND" => "{}".into(),
        "BUILDMAN_HOSTNAME" => "builds.example.com".into(),
        "BUILDMAN_CONTROLLER_PORT" => "8686".into(),
        "REPO_MIRROR_SERVER_HOSTNAME" => "registry.example.com".into(),
        "SECURITY_SCANNER_V4_INDEX_MAX_LAYER_SIZE" => "8G".into(),
        "LDAP_URI" => "ldap://ldap.example.com".into(),
        "LDAP_BASE_DN" => "[dc=example, dc=com]".into(),
        "LDAP_USER_RDN" => "[ou=people]".into(),
        "LDAP_SECONDARY_USER_RDNS" => "[ou=robots]".into(),
        "LDAP_ADMIN_DN" => "cn=admin,dc=example,dc=com".into(),
        "LDAP_ADMIN_PASSWD" => "ldap-secret".into(),
        "LDAP_UID_ATTR" => "uid".into(),
        "LDAP_EMAIL_ATTR" => "mail".into(),
        "LDAP_MEMBEROF_ATTR" => "memberOf".into(),
        "LDAP_USER_FILTER" => "'(memberOf=cn=registry,ou=groups,dc=example,dc=com)'".into(),
        "LDAP_SUPERUSER_FILTER" => "'(memberOf=cn=admins,ou=groups,dc=example,dc=com)'".into(),
        "LDAP_RESTRICTED_USER_FILTER" => "'(memberOf=cn=guests,ou=groups,dc=example,dc=com)'".into(),
        "LDAP_TIMEOUT" | "LDAP_NETWORK_TIMEOUT" => "10".into(),
        "LDAP_ALLOW_INSECURE_FALLBACK" => "false".into(),
        "LDAP_CACHE_TTL" => "5".into(),
        "LDAP_POOL_SIZE" => "10".into(),
        // Capabilities a Quay installation typically switches on or off.
        "FEATURE_SECURITY_SCANNER" | "FEATURE_REPO_MIRROR" | "FEATURE_PROXY_CACHE" => {
            "true".into()
        }
        "FEATURE_MAILING" | "FEATURE_BUILD_SUPPORT" => "false".into(),
        "FEATURE_USER_CREATION" => "true".into(),
        "FEATURE_QUOTA_MANAGEMENT" | "FEATURE_AUTO_PRUNE" => "true".into(),
        _ => return None,
    };
    Some(v)
}

/// A value of the key's type, for keys with neither a typical value nor a Quay default.
fn of_type(ty: &str) -> String {
    let first = ty.split('|').next().unwrap_or("null");
    match first {
        "boolean" => "false",
        "string" => "example",
        "integer" | "number" => "1",
        "list" => "[]",
        "map" => "{}",
        _ => "null",
    }
    .to_string()
}

fn key_table() -> Vec<Value> {
    let out = Command::new(berth_bin())
        .args(["config", "keys", "--json"])
        .output()
        .expect("run berth config keys --json");
    assert!(out.status.success());
    match serde_json::from_slice(&out.stdout).expect("JSON key table") {
        Value::Array(keys) => keys,
        other => panic!("not a list: {other}"),
    }
}

/// A config.yaml holding every Quay key of the table.
fn every_quay_key(dir: &Path) -> (String, usize) {
    let mut yaml = String::new();
    let mut n = 0;
    for k in key_table() {
        let name = k["name"].as_str().unwrap_or_default();
        if k["quay"] != Value::Bool(true) || name.contains('<') {
            continue;
        }
        let value = match (typical(name, dir), k["class"].as_str()) {
            (Some(v), Some(class)) if class != "guarded" => v,
            (_, Some("guarded")) => k["safe"].to_string(),
            (_, Some("unavailable")) if k["quay_default"].is_null() => "true".into(),
            _ if !k["quay_default"].is_null() => k["quay_default"].to_string(),
            _ => of_type(k["type"].as_str().unwrap_or("null")),
        };
        yaml.push_str(&format!("{name}: {value}\n"));
        n += 1;
    }
    (yaml, n)
}

#[test]
fn a_config_with_every_quay_key_starts_and_serves_v2() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (yaml, n) = every_quay_key(tmp.path());
    assert!(n >= 360, "only {n} Quay keys in the table");
    let cfg = tmp.path().join("config.yaml");
    std::fs::write(&cfg, &yaml).expect("write config");

    let out = Command::new(berth_bin())
        .args(["config", "validate", "--config"])
        .arg(&cfg)
        .output()
        .expect("validate");
    assert!(
        out.status.success(),
        "{}\n--- config:\n{yaml}",
        String::from_utf8_lossy(&out.stderr)
    );

    let cfg_arg = cfg.display().to_string();
    let b = Berth::start_with(&["--config", &cfg_arg], &[]);
    let c = common::client::Client::new(&b);
    let r = c.req("GET", "/v2/").send().expect("GET /v2/");
    assert_eq!(r.status().as_u16(), 200, "{}", b.log());
    let log = b.log();
    let banner = unavailable_banner(&log);
    for built_in in [
        "FEATURE_SECURITY_SCANNER",
        "FEATURE_REPO_MIRROR",
        "FEATURE_PROXY_CACHE",
    ] {
        assert!(
            !banner.contains(built_in),
            "{built_in} is built in: {banner}"
        );
    }
    for off in ["FEATURE_BUILD_SUPPORT", "FEATURE_MAILING"] {
        assert!(!banner.contains(off), "{off} is off: {banner}");
    }
    assert!(
        log.contains("config keys have no effect in Berth (`berth config validate` lists them)"),
        "{log}"
    );
    // Nothing of the configuration lands in one enormous log line.
    assert!(log.lines().all(|l| l.len() < 400), "{log}");
}

/// The banner's "not available in this version: …" line and its continuation lines.
fn unavailable_banner(log: &str) -> String {
    let mut lines = log
        .lines()
        .skip_while(|l| !l.contains("not available in this version:"));
    let mut out: Vec<&str> = lines.next().into_iter().collect();
    out.extend(lines.take_while(|l| l.starts_with(&" ".repeat(20))));
    out.join("\n")
}

fn serve_with(yaml: &str) -> (std::process::Output, tempfile::TempDir) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cfg = tmp.path().join("config.yaml");
    std::fs::write(&cfg, yaml).expect("write config");
    let out = Command::new(berth_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&cfg)
        .arg("--data-dir")
        .arg(tmp.path().join("data"))
        .env("BERTH_BOOTSTRAP_SUPERUSER_PASSWORD", common::ADMIN_PASSWORD)
        .output()
        .expect("run serve");
    (out, tmp)
}

#[test]
fn a_security_key_berth_cannot_honour_stops_the_start_naming_it() {
    let (out, tmp) = serve_with(
        "SERVER_HOSTNAME: registry.example.com\nFEATURE_RESTRICTED_USERS: true\n\
         CREATE_PRIVATE_REPO_ON_PUSH: false\nFEATURE_SUPERUSERS_FULL_ACCESS: true\n",
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("(2 problems)"), "{err}");
    assert!(
        err.contains(
            "config key FEATURE_RESTRICTED_USERS: true is set, but Berth does not restrict users"
        ),
        "{err}"
    );
    assert!(
        err.contains("config key CREATE_PRIVATE_REPO_ON_PUSH: false is set"),
        "{err}"
    );
    assert!(err.contains("remove the key or set it to true"), "{err}");
    // Not a typo: the key list would not help.
    assert!(!err.contains("berth config keys"), "{err}");
    assert!(!tmp.path().join("data").exists(), "nothing is created");
}

#[test]
fn unavailable_capabilities_are_named_in_the_banner() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cfg = tmp.path().join("config.yaml");
    std::fs::write(
        &cfg,
        "FEATURE_SECURITY_SCANNER: true\nFEATURE_BUILD_SUPPORT: true\nMAIL_FAIL_SILENTLY: true\n\
         REGISTRY_TITLE: Example\nBUILDLOGS_REDIS: {host: redis}\n",
    )
    .expect("write config");
    let cfg_arg = cfg.display().to_string();
    let b = Berth::start_with(&["--config", &cfg_arg], &[]);
    let log = b.log();
    assert_eq!(
        unavailable_banner(&log).trim(),
        "not available in this version: FEATURE_BUILD_SUPPORT"
    );
    assert!(
        log.contains("3 config keys have no effect in Berth"),
        "{log}"
    );
}
