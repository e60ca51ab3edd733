//! Loading configurations: Quay's keys and types, classification, and the rules across keys.
use super::*;

pub(super) fn load(yaml: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    load_all(yaml, env).map_err(|mut e| e.errors.remove(0))
}

pub(super) fn load_all(yaml: &str, env: &[(&str, &str)]) -> Result<Config, ConfigErrors> {
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
    assert_eq!(c.ignored_keys, ["BUILDLOGS_REDIS", "FEATURE_BUILD_SUPPORT"]);
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
    let e =
        load("DISTRIBUTED_STORAGE_PREFERENCE: [nowhere]\n", &[]).expect_err("undefined location");
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
    assert_eq!(c.ignored_keys, ["GITHUB_LOGIN_CONFIG"]);
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
    assert_eq!(c.ignored_keys, ["LDAP_POOL_SIZE"]);
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
    assert_eq!(c.ignored_keys, ["LDAP_URI"]);
}
