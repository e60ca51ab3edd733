//! The LDAP user backend (`AUTHENTICATION_TYPE: LDAP`), with Quay's key names and forms. The
//! keys are read whatever the backend, and checked as a whole only when LDAP is the backend.

use super::super::values::{as_bool, as_dn, as_opt_string, as_string, timeout};
use super::*;
use berth_core::auth::ldap::LdapConfig;

const POOL: &str = "Quay's LDAP connection pooling and caching; Berth opens a connection per login";

/// The LDAP settings, remembering that `key` set one (they only count with AUTHENTICATION_TYPE LDAP).
fn ldap<'a>(c: &'a mut Config, key: &str) -> &'a mut LdapConfig {
    c.ldap_keys.push(key.to_string());
    c.auth.ldap.get_or_insert_with(Default::default)
}

pub static KEYS: &[KeyDef] = &[
    quay(
        "LDAP_URI",
        SZ,
        "ldap:// or ldaps:// URI(s) of the directory, space-separated",
        |c, k, v, _| {
            ldap(c, k).uris = as_string(k, v)?
                .split_whitespace()
                .map(str::to_string)
                .collect();
            Ok(())
        },
    ),
    quay(
        "LDAP_BASE_DN",
        LZ.or(S),
        "base DN as a list of RDNs, e.g. [dc=example, dc=org], or a string",
        |c, k, v, _| {
            ldap(c, k).base_dn = as_dn(k, v)?;
            Ok(())
        },
    ),
    quay(
        "LDAP_USER_RDN",
        LZ.or(S),
        "subtree of users relative to LDAP_BASE_DN, e.g. [ou=people]",
        |c, k, v, _| {
            ldap(c, k).user_rdn = as_dn(k, v)?;
            Ok(())
        },
    ),
    quay(
        "LDAP_SECONDARY_USER_RDNS",
        LZ.or(S),
        "further user subtrees, searched when LDAP_USER_RDN has no match",
        |c, k, v, _| {
            let items = match v {
                Value::Array(items) => items
                    .iter()
                    .map(|i| as_dn(k, i))
                    .collect::<Result<Vec<_>, _>>()?,
                other => vec![as_dn(k, other)?],
            };
            ldap(c, k).secondary_user_rdns = items.into_iter().filter(|s| !s.is_empty()).collect();
            Ok(())
        },
    ),
    quay(
        "LDAP_ADMIN_DN",
        SZ,
        "DN Berth binds as to search users and groups (default: anonymous)",
        |c, k, v, _| {
            ldap(c, k).admin_dn = as_opt_string(k, v)?;
            Ok(())
        },
    ),
    quay(
        "LDAP_ADMIN_PASSWD",
        SZ,
        "password of LDAP_ADMIN_DN",
        |c, k, v, _| {
            ldap(c, k).admin_password = as_opt_string(k, v)?;
            Ok(())
        },
    ),
    quay(
        "LDAP_UID_ATTR",
        SZ,
        "attribute holding the login name (default uid)",
        |c, k, v, _| {
            ldap(c, k).uid_attr = as_string(k, v)?.trim().to_string();
            Ok(())
        },
    ),
    quay(
        "LDAP_EMAIL_ATTR",
        SZ,
        "attribute holding the email (default mail)",
        |c, k, v, _| {
            ldap(c, k).email_attr = as_string(k, v)?.trim().to_string();
            Ok(())
        },
    ),
    quay(
        "LDAP_USER_FILTER",
        SZ,
        "filter a user must match to log in, e.g. (memberOf=cn=registry,ou=groups,dc=example,dc=org)",
        |c, k, v, _| {
            ldap(c, k).user_filter = as_opt_string(k, v)?;
            Ok(())
        },
    ),
    quay(
        "LDAP_SUPERUSER_FILTER",
        SZ,
        "filter making users superusers (taken back when they stop matching)",
        |c, k, v, _| {
            ldap(c, k).superuser_filter = as_opt_string(k, v)?;
            Ok(())
        },
    ),
    quay(
        "LDAP_RESTRICTED_USER_FILTER",
        SZ,
        "filter marking users restricted (recorded on their LDAP link; restriction needs FEATURE_RESTRICTED_USERS, which Berth refuses when on)",
        |c, k, v, _| {
            ldap(c, k).restricted_filter = as_opt_string(k, v)?;
            Ok(())
        },
    ),
    quay(
        "LDAP_TIMEOUT",
        NZ.or(S),
        "seconds each LDAP operation may take (default 10)",
        |c, k, v, _| {
            ldap(c, k).timeout = timeout(k, v)?;
            Ok(())
        },
    ),
    quay(
        "LDAP_NETWORK_TIMEOUT",
        NZ.or(S),
        "seconds connecting to the directory may take (default 10)",
        |c, k, v, _| {
            ldap(c, k).network_timeout = timeout(k, v)?;
            Ok(())
        },
    ),
    quay(
        "LDAP_ALLOW_INSECURE_FALLBACK",
        BZ,
        "accept an ldaps:// certificate that does not verify (default false)",
        |c, k, v, _| {
            ldap(c, k).allow_insecure_fallback = as_bool(k, v)?;
            Ok(())
        },
    ),
    // ---- (a): no effect
    no_effect("FEATURE_LDAP_CACHING", BZ, POOL),
    no_effect("LDAP_CACHE_TTL", NZ, POOL),
    no_effect("LDAP_CONNECTION_POOLING", BZ, POOL),
    no_effect("LDAP_POOL_CONNECTION_LIFETIME", NZ, POOL),
    no_effect("LDAP_POOL_MAX_WAIT", NZ, POOL),
    no_effect("LDAP_POOL_SIZE", IZ, POOL),
    no_effect(
        "LDAP_FOLLOW_REFERRALS",
        BZ.or(N),
        "Berth does not follow LDAP referrals",
    ),
];
