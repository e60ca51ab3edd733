//! Identity and access: the user backend, OpenID Connect providers, superusers, sign-up, tokens,
//! sessions and failed-login throttling. The LDAP backend's keys are in `ldap.rs`.

use super::super::values::{
    as_bool, as_opt_string, as_string, as_string_list, duration, err, non_negative_i64,
    positive_i64,
};
use super::*;

const UI: &str = "web UI presentation; Berth has no web UI yet";
const UPKEEP: &str = "internal upkeep Berth does its own way";
const TEAM_SYNC: &str = "Berth syncs a synced team's members from the directory or provider at each sign-in, not on a schedule";
const COOKIE: &str =
    "Berth's session cookie is always HttpOnly and SameSite=Lax, under its own name";
const CAPTCHA: &str = "setting of FEATURE_RECAPTCHA (sign-up captcha)";
const SOCIAL: &str =
    "GitHub and Google sign-in are not available (FEATURE_GITHUB_LOGIN, FEATURE_GOOGLE_LOGIN)";

/// Sign-up is open (through the API) in this configuration.
fn signup_closed(g: &Guarded<'_>) -> bool {
    !g.config.auth.user_creation || is_false(g)
}

pub static KEYS: &[KeyDef] = &[
    // ---- acted on
    quay(
        "AUTHENTICATION_TYPE",
        S,
        "Database (passwords kept by Berth) or LDAP (passwords checked by a directory)",
        |c, k, v, _| {
            let s = as_string(k, v)?;
            if s != "Database" && s != "LDAP" {
                return err(
                    k,
                    format!(
                        "{s:?} is not available in this version of Berth; use Database or LDAP"
                    ),
                );
            }
            c.authentication_type = s;
            Ok(())
        },
    )
    .default_is(r#""Database""#)
    .one_of(&["Database", "LDAP", "JWT", "Keystone", "OIDC", "AppToken"]),
    quay(
        "SUPER_USERS",
        L.or(S),
        "usernames with superuser rights",
        |c, k, v, _| {
            c.auth.superusers = as_string_list(k, v)?;
            Ok(())
        },
    )
    .default_is("[]"),
    quay(
        "FEATURE_DIRECT_LOGIN",
        B,
        "false: users sign in only through an OpenID Connect provider (no database or LDAP passwords; robot and app tokens still work); needs a <NAME>_LOGIN_CONFIG",
        |c, k, v, _| {
            c.direct_login = as_bool(k, v)?;
            c.auth.direct_login = c.direct_login;
            Ok(())
        },
    )
    .default_is("true"),
    quay(
        "FEATURE_ANONYMOUS_ACCESS",
        B,
        "anonymous pulls of public repositories (default true)",
        |c, k, v, _| {
            c.auth.anonymous_access = as_bool(k, v)?;
            Ok(())
        },
    )
    .default_is("true"),
    quay(
        "FEATURE_USER_CREATION",
        B,
        "self-service sign-up through POST /api/v1/user/ (default false in Berth)",
        |c, k, v, _| {
            c.auth.user_creation = as_bool(k, v)?;
            Ok(())
        },
    )
    .default_is("true"),
    quay(
        "FEATURE_USER_INITIALIZE",
        B,
        "POST /api/v1/user/initialize creates the first user, instead of a generated admin",
        |c, k, v, _| {
            c.user_initialize = as_bool(k, v)?;
            Ok(())
        },
    )
    .default_is("false"),
    quay(
        "FEATURE_APP_SPECIFIC_TOKENS",
        B,
        "app-specific tokens usable as passwords (default true)",
        |c, k, v, _| {
            c.auth.app_tokens = as_bool(k, v)?;
            Ok(())
        },
    )
    .default_is("true"),
    quay(
        "APP_SPECIFIC_TOKEN_EXPIRATION",
        SZ,
        "lifetime of app-specific tokens, e.g. 90d (default, and null: no expiration)",
        |c, k, v, _| {
            c.auth.app_token_expiration_s = match as_opt_string(k, v)? {
                None => None,
                Some(_) => Some(duration(k, v)?),
            };
            Ok(())
        },
    )
    .default_is("null"),
    quay(
        "DATABASE_SECRET_KEY",
        SZ,
        "seals robot tokens and signing keys in the database (default: generated and kept there)",
        |c, k, v, _| {
            c.auth.database_secret = as_opt_string(k, v)?;
            Ok(())
        },
    ),
    quay(
        "SECRET_KEY",
        SZ,
        "signs browser session cookies (default: generated and kept in the database)",
        |c, k, v, _| {
            c.auth.session_secret = as_opt_string(k, v)?;
            Ok(())
        },
    ),
    quay(
        "SESSION_COOKIE_SECURE",
        B,
        "send the session cookie over https only (default: true when PREFERRED_URL_SCHEME is https, as in Quay)",
        |c, k, v, _| {
            c.auth.session_cookie_secure = as_bool(k, v)?;
            Ok(())
        },
    )
    .default_is("false"),
    quay(
        "SESSION_TIMEOUT",
        S,
        "lifetime of a browser session, e.g. 31d (default 31d)",
        |c, k, v, _| {
            let secs = duration(k, v)?;
            if secs <= 0 {
                return err(k, "must be longer than 0s");
            }
            c.auth.session_timeout_s = secs;
            Ok(())
        },
    )
    .default_is(r#""31d""#),
    quay(
        "ACTION_LOG_AUDIT_LOGINS",
        B.or(S),
        "audit-log successful logins (default true)",
        |c, k, v, _| {
            c.auth.audit_logins = as_bool(k, v)?;
            Ok(())
        },
    )
    .default_is("true"),
    quay(
        "ACTION_LOG_AUDIT_LOGIN_FAILURES",
        B,
        "audit-log failed logins (default true in Berth)",
        |c, k, v, _| {
            c.auth.audit_login_failures = as_bool(k, v)?;
            Ok(())
        },
    )
    .default_is("false"),
    quay(
        LOGIN_CONFIG_PATTERN,
        M,
        "an OpenID Connect provider to sign in with (OIDC_SERVER, CLIENT_ID, CLIENT_SECRET, ...); service id = name lowercased",
        |c, k, v, _| {
            let p = berth_core::auth::oidc::OidcProvider::from_quay_block(k, v)
                .or_else(|msg| err(k, msg))?;
            // Service ids are the names lowercased: two keys differing in case would clash.
            if c.auth.oidc.iter().any(|o| o.id == p.id) {
                return err(
                    k,
                    format!("another *_LOGIN_CONFIG already names service {:?}", p.id),
                );
            }
            c.auth.oidc.push(p);
            Ok(())
        },
    ),
    berth(
        "BOOTSTRAP_SUPERUSER",
        S,
        "name of the superuser created at first start when no user exists (default admin)",
        |c, k, v, _| {
            c.bootstrap_superuser = as_string(k, v)?;
            Ok(())
        },
    ),
    berth(
        "BOOTSTRAP_SUPERUSER_PASSWORD",
        SZ,
        "its password, at least 8 characters (default: generated and printed once); as an environment variable BERTH_BOOTSTRAP_SUPERUSER_PASSWORD",
        |c, k, v, _| {
            let s = as_string(k, v)?;
            if s.chars().count() < 8 {
                return err(k, "must be at least 8 characters");
            }
            c.bootstrap_password = Some(s);
            Ok(())
        },
    ),
    berth(
        "REGISTRY_TOKEN_LIFETIME_S",
        I,
        "lifetime of registry bearer tokens in seconds (default 3600)",
        |c, k, v, _| {
            c.auth.token_lifetime_s = positive_i64(k, v)?;
            Ok(())
        },
    ),
    berth(
        "SIGNING_KEY_ROTATION_S",
        I,
        "a new token signing key is made after this many seconds (default 604800)",
        |c, k, v, _| {
            c.auth.key_rotation_s = positive_i64(k, v)?;
            Ok(())
        },
    ),
    berth(
        "LOGIN_LOCKOUT_FAILURES",
        I,
        "consecutive failed logins that lock an account until reset (default 10, 0 = never)",
        |c, k, v, _| {
            c.auth.lockout_failures = non_negative_i64(k, v)?;
            Ok(())
        },
    ),
    berth(
        "LOGIN_BACKOFF_BASE_MS",
        I,
        "wait after the first failed login, doubling with each further one (default 1000)",
        |c, k, v, _| {
            c.auth.backoff_base_ms = positive_i64(k, v)?;
            Ok(())
        },
    ),
    berth(
        "LOGIN_BACKOFF_MAX_MS",
        I,
        "longest wait between login attempts (default 60000)",
        |c, k, v, _| {
            c.auth.backoff_max_ms = positive_i64(k, v)?;
            Ok(())
        },
    ),
    berth(
        "LOGIN_CACHE_SECONDS",
        I,
        "a verified password is remembered this long (as a keyed hash, in memory only) so that the same login again skips the password hash (default 300, 0 = check every login in full)",
        |c, k, v, _| {
            c.auth.login_cache_s = non_negative_i64(k, v)?;
            Ok(())
        },
    ),
    // ---- (c): values Berth cannot honour stop the start
    guard(
        "FEATURE_SUPER_USERS",
        B,
        "Berth always gives SUPER_USERS and the bootstrap superuser their rights",
        is_on,
        "true",
    )
    .default_is("true"),
    guard(
        "FEATURE_SUPERUSERS_FULL_ACCESS",
        B,
        "Berth's superusers always have full access to every repository (as true)",
        is_on,
        "true",
    )
    .default_is("false"),
    guard(
        "FEATURE_SUPERUSERS_ORG_CREATION_ONLY",
        B,
        "in Berth every user may create organizations",
        is_false,
        "false",
    )
    .default_is("false"),
    guard(
        "GLOBAL_READONLY_SUPER_USERS",
        L,
        "Berth has no read-only superusers; these accounts would be denied what they expect",
        is_empty,
        "[]",
    )
    .default_is("[]"),
    guard(
        "LDAP_GLOBAL_READONLY_SUPERUSER_FILTER",
        SZ,
        "Berth has no read-only superusers",
        |g| is_empty(g) || g.config.authentication_type != "LDAP",
        "null",
    ),
    guard(
        "FEATURE_RESTRICTED_USERS",
        B,
        "Berth does not restrict users; they would keep creating content in their own namespaces",
        is_false,
        "false",
    )
    .default_is("false"),
    guard(
        "FEATURE_REQUIRE_ENCRYPTED_BASIC_AUTH",
        B,
        "Berth accepts plain passwords from docker login; it cannot require encrypted ones",
        is_false,
        "false",
    )
    .default_is("false"),
    guard(
        "ROBOTS_DISALLOW",
        BZ,
        "Berth's robot accounts always work; it cannot disallow them",
        is_false,
        "false",
    ),
    guard(
        "FEATURE_BLACKLISTED_EMAILS",
        B,
        "Berth does not check BLACKLISTED_EMAIL_DOMAINS; accounts with those emails would be accepted",
        |g| is_false(g) || g.all.get("BLACKLISTED_EMAIL_DOMAINS").is_none_or(|v| v.as_array().is_none_or(Vec::is_empty)),
        "false",
    )
    .default_is("false"),
    guard(
        "FEATURE_INVITE_ONLY_USER_CREATION",
        B,
        "with FEATURE_USER_CREATION, anyone could sign up without an invitation",
        signup_closed,
        "false",
    )
    .default_is("false"),
    guard(
        "FEATURE_RECAPTCHA",
        B,
        "with FEATURE_USER_CREATION, sign-up through the API would have no captcha",
        signup_closed,
        "false",
    )
    .default_is("false"),
    // ---- (b): capabilities this version lacks
    unavailable("FEATURE_ASSIGN_OAUTH_TOKEN", "assigning OAuth tokens to other users")
        .default_is("true"),
    unavailable("FEATURE_GITHUB_LOGIN", "GitHub sign-in").default_is("false"),
    unavailable("FEATURE_GOOGLE_LOGIN", "Google sign-in").default_is("false"),
    unavailable("FEATURE_SUPERUSER_CONFIGDUMP", "superuser config dump").default_is("false"),
    unavailable("FEATURE_USER_METADATA", "user metadata fields").default_is("false"),
    unavailable("FEATURE_USER_RENAME", "renaming users").default_is("false"),
    unavailable(
        "FEATURE_NONSUPERUSER_TEAM_SYNCING_SETUP",
        "team syncing set up by organization administrators",
    )
    .default_is("false"),
    // ---- (a): no effect
    no_effect("GITHUB_LOGIN_CONFIG", MZ, SOCIAL).default_is("null"),
    no_effect("GOOGLE_LOGIN_CONFIG", MZ, SOCIAL).default_is("null"),
    no_effect(
        "BLACKLISTED_EMAIL_DOMAINS",
        L,
        "only used with FEATURE_BLACKLISTED_EMAILS, which Berth refuses when on",
    )
    .default_is("[]"),
    no_effect(
        "RESTRICTED_USERS_WHITELIST",
        LZ,
        "only narrows FEATURE_RESTRICTED_USERS, which Berth refuses when on",
    )
    .default_is("null"),
    no_effect(
        "ROBOTS_WHITELIST",
        L,
        "only narrows ROBOTS_DISALLOW, which Berth refuses when on",
    )
    .default_is("[]"),
    no_effect(
        "DIRECT_OAUTH_CLIENTID_WHITELIST",
        L,
        "OAuth clients allowed in the web UI's login flow; Berth has no web UI",
    )
    .default_is("[]"),
    no_effect(
        "FEATURE_ORG_SHARED_EMAIL",
        B,
        "organizations in Berth need no email of their own",
    )
    .default_is("false"),
    no_effect(
        "FEATURE_PERMANENT_SESSIONS",
        B,
        "Berth sessions last SESSION_TIMEOUT whether or not the browser restarts",
    )
    .default_is("true"),
    no_effect(
        "FEATURE_REQUIRE_TEAM_INVITE",
        B,
        "Berth adds team members directly (as Quay does with false); nobody gains access an admin did not give",
    )
    .default_is("true"),
    no_effect(
        "FEATURE_USER_LOG_ACCESS",
        B,
        "users can always read the audit log of their own namespace in Berth",
    )
    .default_is("false"),
    no_effect(
        "FRESH_LOGIN_TIMEOUT",
        S,
        "Berth takes credentials on every API call; there is no fresh-login step",
    )
    .default_is(r#""10m""#),
    no_effect(
        "USER_RECOVERY_TOKEN_LIFETIME",
        S,
        "account recovery mails are not available (no mail support)",
    )
    .default_is(r#""30m""#),
    no_effect("SESSION_COOKIE_HTTPONLY", B, COOKIE).default_is("true"),
    no_effect("SESSION_COOKIE_NAME", S, COOKIE).default_is(r#""_csrf_token""#),
    no_effect("SESSION_COOKIE_SAMESITE", S, COOKIE).default_is(r#""Lax""#),
    no_effect("RECAPTCHA_SECRET_KEY", SZ, CAPTCHA).default_is("null"),
    no_effect("RECAPTCHA_SITE_KEY", SZ, CAPTCHA).default_is("null"),
    no_effect("RECAPTCHA_WHITELISTED_USERS", L, CAPTCHA).default_is("[]"),
    no_effect(
        "FEATURE_TEAM_SYNCING",
        B,
        "team syncing is always available in Berth: superusers set it up per team, members follow the groups at each sign-in",
    )
    .default_is("false"),
    no_effect(
        "LDAP_MEMBEROF_ATTR",
        SZ,
        "Berth reads group membership from the group entry (member, uniqueMember, memberUid)",
    ),
    no_effect("TEAM_RESYNC_STALE_TIME", S, TEAM_SYNC).default_is(r#""30m""#),
    no_effect("TEAM_SYNC_WORKER_FREQUENCY", N, TEAM_SYNC).default_is("60"),
    no_effect("FEATURE_PARTIAL_USER_AUTOCOMPLETE", B, UI).default_is("true"),
    no_effect("FEATURE_USERNAME_CONFIRMATION", B, UI).default_is("true"),
    no_effect("LOCAL_OAUTH_HANDLER", S, UI).default_is(r#""/oauth/localapp""#),
    no_effect("EXPIRED_APP_SPECIFIC_TOKEN_GC", SZ, UPKEEP).default_is(r#""1d""#),
    no_effect("FEATURE_USER_LAST_ACCESSED", B, UPKEEP).default_is("true"),
    no_effect("LAST_ACCESSED_UPDATE_THRESHOLD_S", N, UPKEEP).default_is("60"),
    no_effect("OAUTH_APPLICATION_MAXIMUM_TOKEN_COUNT", IZ, UPKEEP).default_is("null"),
    no_effect("OAUTH_TOKEN_LAST_ACCESSED_UPDATE_THRESHOLD_S", N, UPKEEP).default_is("60"),
];
