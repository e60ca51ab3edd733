//! The server: where it listens, how it is reached, TLS, the registry's state and what a push
//! may create; the web UI's presentation keys.

use super::super::values::{as_bool, as_string, err, listen_address, non_negative};
use super::*;
use std::path::PathBuf;

const UI: &str = "web UI presentation; Berth has no web UI yet";
const V1: &str = "Berth has no v1 registry API, so there are no v1 pushes to restrict";
const OCI_TYPES: &str =
    "Berth accepts every OCI artifact type, so extra allowed types change nothing";

fn tls_protocols_ok(g: &Guarded<'_>) -> bool {
    // rustls speaks TLS 1.2 and 1.3 only. A list that leaves out 1.2 asks for less than Berth
    // offers; a list with older versions asks for more, which rustls refuses anyway (safe).
    g.config.tls_cert_file.is_none()
        || match g.value {
            Value::Array(items) => items.iter().any(|v| {
                v.as_str()
                    .is_some_and(|s| s.eq_ignore_ascii_case("TLSv1.2"))
            }),
            _ => true,
        }
}

pub static KEYS: &[KeyDef] = &[
    // ---- acted on
    berth(
        "LISTEN_ADDRESS",
        S,
        "host:port to listen on, e.g. 0.0.0.0:5000 (default 127.0.0.1:5000); names are resolved",
        |c, k, v, _| {
            c.listen = listen_address(k, v)?;
            Ok(())
        },
    ),
    berth(
        "METRICS_LISTEN_ADDRESS",
        SZ,
        "serve /metrics on this host:port of its own (as Quay serves metrics on a separate port) instead of the main listener",
        |c, k, v, _| {
            c.metrics_listen = Some(listen_address(k, v)?);
            Ok(())
        },
    ),
    berth(
        "SHUTDOWN_GRACE_SECONDS",
        I,
        "on SIGINT/SIGTERM, how long in-flight requests may finish before Berth stops (default 30)",
        |c, k, v, _| {
            c.shutdown_grace_s = non_negative(k, v)?;
            Ok(())
        },
    ),
    berth(
        "DATA_DIR",
        S,
        "directory for the embedded database and local blobs (default ./berth-data)",
        |c, k, v, _| {
            c.data_dir = PathBuf::from(as_string(k, v)?);
            Ok(())
        },
    ),
    quay(
        "SERVER_HOSTNAME",
        S,
        "public host[:port] of the registry (token service and realm)",
        |c, k, v, _| {
            c.server_hostname = as_string(k, v)?;
            c.server_hostname_set = true;
            Ok(())
        },
    )
    .default_is(r#""localhost:5000""#),
    quay(
        "PREFERRED_URL_SCHEME",
        S,
        "http or https: the scheme of the URLs Berth hands out",
        |c, k, v, _| {
            c.preferred_url_scheme = as_string(k, v)?;
            Ok(())
        },
    )
    .default_is(r#""http""#)
    .one_of(&["http", "https"]),
    quay(
        "EXTERNAL_TLS_TERMINATION",
        B,
        "TLS is terminated by a proxy in front of Berth",
        |c, k, v, _| {
            c.external_tls_termination = as_bool(k, v)?;
            Ok(())
        },
    )
    .default_is("false"),
    berth(
        "TLS_CERT_FILE",
        SZ,
        "PEM certificate chain; with TLS_KEY_FILE, Berth serves https (default: ssl.cert beside config.yaml when PREFERRED_URL_SCHEME is https)",
        |c, k, v, _| {
            c.tls_cert_file = Some(PathBuf::from(as_string(k, v)?));
            Ok(())
        },
    ),
    berth("TLS_KEY_FILE", SZ, "PEM private key", |c, k, v, _| {
        c.tls_key_file = Some(PathBuf::from(as_string(k, v)?));
        Ok(())
    }),
    quay(
        "REGISTRY_STATE",
        S,
        "normal, or readonly: every write refused, pulls and reads served, writing workers paused",
        |c, _, v, _| {
            c.registry_readonly = v.as_str() == Some("readonly");
            c.auth.readonly = c.registry_readonly;
            Ok(())
        },
    )
    .default_is(r#""normal""#)
    .one_of(&["normal", "readonly"]),
    quay(
        "DISABLE_PUSHES",
        B,
        "refuse every push on /v2 (other writes stay allowed)",
        |c, k, v, _| {
            c.disable_pushes = as_bool(k, v)?;
            Ok(())
        },
    )
    .default_is("false"),
    quay(
        "FEATURE_LIBRARY_SUPPORT",
        B,
        "a one-component name (alpine) means LIBRARY_NAMESPACE/alpine; off: such names are refused",
        |c, k, v, _| {
            c.library_support = as_bool(k, v)?;
            Ok(())
        },
    )
    .default_is("true"),
    quay(
        "LIBRARY_NAMESPACE",
        S,
        "namespace of one-component names (default library)",
        |c, k, v, _| {
            let ns = as_string(k, v)?.trim().to_string();
            if let Err(e) = berth_core::auth::accounts::check_namespace_name(&ns) {
                return err(k, e.to_string());
            }
            c.library_namespace = ns;
            Ok(())
        },
    )
    .default_is(r#""library""#),
    berth(
        "LOG_FORMAT",
        S,
        "text or json (default text)",
        |c, _, v, _| {
            c.log_json = v.as_str() == Some("json");
            Ok(())
        },
    )
    .one_of(&["text", "json"]),
    // ---- (c): values Berth cannot honour stop the start
    guard(
        "ACCOUNT_RECOVERY_MODE",
        B,
        "Quay's recovery mode turns the registry off; Berth would serve and accept writes",
        is_false,
        "false",
    )
    .default_is("false"),
    guard(
        "CREATE_NAMESPACE_ON_PUSH",
        B,
        "in Berth only a superuser's push creates a missing namespace; other users' pushes would be refused",
        is_false,
        "false",
    )
    .default_is("false"),
    guard(
        "CREATE_PRIVATE_REPO_ON_PUSH",
        B,
        "Berth creates pushed repositories private; it cannot make them public as this value asks",
        is_on,
        "true",
    )
    .default_is("true"),
    guard(
        "FEATURE_EXTENDED_REPOSITORY_NAMES",
        B,
        "Berth accepts nested repository names (a/b/c); it cannot restrict names to two components",
        is_on,
        "true",
    )
    .default_is("true"),
    guard(
        "FEATURE_FIPS",
        B,
        "Berth's cryptography does not run in a FIPS-validated mode",
        is_false,
        "false",
    )
    .default_is("false"),
    guard(
        "FEATURE_GENERAL_OCI_SUPPORT",
        B,
        "Berth accepts OCI manifests and artifacts of every type; it cannot refuse them",
        is_on,
        "true",
    )
    .default_is("true"),
    guard(
        "FEATURE_HELM_OCI_SUPPORT",
        B,
        "Berth accepts Helm charts like any OCI artifact; it cannot refuse them",
        is_on,
        "true",
    )
    .default_is("true"),
    guard(
        "V22_NAMESPACE_BLACKLIST",
        LZ,
        "Berth accepts schema 2 and OCI manifests in every namespace",
        is_empty,
        "[]",
    ),
    quay(
        "MAXIMUM_LAYER_SIZE",
        S,
        "largest blob a push may upload, in Quay's size format (20G = 20×10⁹ bytes; also 500M, 2 GiB); larger uploads are refused with 413",
        |c, k, v, _| {
            let s = as_string(k, v)?;
            match berth_core::parse_size(&s).and_then(|n| u64::try_from(n).ok()) {
                Some(n) if n > 0 => {
                    c.max_layer_bytes = n;
                    Ok(())
                }
                _ => err(k, format!("{s:?} is not a size such as 20G, 500M or 2 GiB")),
            }
        },
    )
    .default_is(r#""20G""#),
    guard(
        "SSL_PROTOCOLS",
        LZ,
        "Berth's TLS (rustls) always offers TLS 1.2 and 1.3; a list without TLSv1.2 cannot be honoured",
        tls_protocols_ok,
        r#"["TLSv1.2", "TLSv1.3"]"#,
    ),
    // ---- (b): capabilities this version lacks
    unavailable("FEATURE_RATE_LIMITS", "request rate limits").default_is("false"),
    unavailable("FEATURE_UI_DELAY_AFTER_WRITE", "the web UI").default_is("false"),
    unavailable("FEATURE_UI_MODELCARD", "the web UI").default_is("true"),
    unavailable("FEATURE_UI_V2", "the web UI").default_is("true"),
    // ---- (a): no effect
    no_effect(
        "FEATURE_PUBLIC_CATALOG",
        B,
        "Berth's catalog lists the public repositories a caller may pull (as true)",
    )
    .default_is("false"),
    no_effect("ALLOWED_OCI_ARTIFACT_TYPES", M, OCI_TYPES),
    no_effect("OCI_NAMESPACE_WHITELIST", LZ, OCI_TYPES),
    no_effect(
        "BLACKLIST_V2_SPEC",
        S,
        "Docker client versions this old cannot speak to Berth anyway",
    )
    .default_is(r#""<1.6.0""#),
    no_effect(
        "BROWSER_API_CALLS_XHR_ONLY",
        B,
        "Berth always requires X-Requested-With on browser-session API writes (as true)",
    )
    .default_is("true"),
    no_effect(
        "CORS_ORIGIN",
        S.or(L),
        "Berth sends no CORS headers, so browsers refuse cross-origin calls (fails safe)",
    )
    .default_is(r#""*""#),
    no_effect(
        "FEATURE_ADVERTISE_V2",
        B,
        "Berth always sends Docker-Distribution-API-Version",
    )
    .default_is("true"),
    no_effect(
        "FEATURE_REFERRERS_API",
        B,
        "Berth always serves the OCI referrers API",
    )
    .default_is("true"),
    no_effect(
        "FEATURE_LISTEN_IP_VERSION",
        SZ,
        "Quay's nginx listener family; Berth listens on LISTEN_ADDRESS",
    ),
    no_effect(
        "SSL_CIPHERS",
        LZ,
        "nginx cipher names; Berth's TLS offers only modern AEAD suites",
    ),
    no_effect(
        "MANIFESTS_ENDPOINT_READ_TIMEOUT",
        SZ,
        "Quay's nginx timeout for manifest requests",
    ),
    no_effect("FEATURE_RESTRICTED_V1_PUSH", B, V1).default_is("false"),
    no_effect("V1_ONLY_DOMAIN", SZ, V1),
    no_effect("V1_PUSH_WHITELIST", L, V1).default_is("[]"),
    no_effect("AVATAR_COLORS", L, UI),
    no_effect("AVATAR_KIND", S, UI)
        .default_is(r#""local""#)
        .one_of(&["local", "gravatar"]),
    no_effect("BRANDING", MZ, UI),
    no_effect("CHANNEL_COLORS", L, UI),
    no_effect("CONTACT_INFO", L, UI).default_is("[]"),
    no_effect("DEFAULT_UI", S, UI).default_is(r#""react""#),
    no_effect("DISABLE_ANGULAR_UI", B, UI).default_is("false"),
    no_effect("DOCUMENTATION_ROOT", S, UI).default_is(r#""https://docs.projectquay.io/""#),
    no_effect("ENTERPRISE_LOGO_URL", SZ, UI),
    no_effect("FOOTER_LINKS", M, UI).default_is("{}"),
    no_effect("PUBLIC_NAMESPACES", L, UI).default_is("[]"),
    no_effect("REGISTRY_TITLE", S, UI).default_is(r#""Project Quay""#),
    no_effect("REGISTRY_TITLE_SHORT", S, UI).default_is(r#""Project Quay""#),
    no_effect("SEARCH_MAX_RESULT_PAGE_COUNT", N, UI).default_is("10"),
    no_effect("SEARCH_RESULTS_PER_PAGE", N, UI).default_is("10"),
    no_effect("STATUS_TAGS", M, UI),
    no_effect("UI_DELAY_AFTER_WRITE_SECONDS", I, UI).default_is("3"),
    no_effect("UI_MODELCARD_ANNOTATION", M, UI).default_is("{}"),
    no_effect("UI_MODELCARD_ARTIFACT_TYPE", S, UI).default_is(r#""application/x-mlmodel""#),
    no_effect("UI_MODELCARD_LAYER_ANNOTATION", M, UI),
    no_effect("UI_V2_FEEDBACK_FORM", SZ, UI).default_is("null"),
];
