//! Notifications and mail: how deliveries are retried and when a notification gives up, the
//! outbound guard every webhook and Slack message passes, and the SMTP server of email.

use super::super::values::{
    as_bool, as_string, as_string_list, duration, non_negative_i64, positive, positive_i64,
};
use super::*;

/// A text key that may be null.
fn text_or_null(k: &str, v: &Value) -> Result<Option<String>, ConfigError> {
    if v.is_null() {
        Ok(None)
    } else {
        as_string(k, v).map(Some)
    }
}

pub static KEYS: &[KeyDef] = &[
    quay(
        "FEATURE_MAILING",
        B,
        "send mail: email notifications and the mail that authorizes their address (needs MAIL_SERVER)",
        |c, k, v, _| {
            c.mailing = as_bool(k, v)?;
            Ok(())
        },
    )
    .default_is("true"),
    quay(
        "MAIL_SERVER",
        S,
        "SMTP server of outgoing mail (none: no mail is sent)",
        |c, k, v, _| {
            c.mail.server = as_string(k, v)?.trim().to_string();
            Ok(())
        },
    )
    .default_is(r#""""#),
    quay(
        "MAIL_PORT",
        N,
        "SMTP port (default 587)",
        |c, k, v, _| {
            c.mail.port = u16::try_from(positive(k, v)?)
                .map_err(|_| ConfigError::new(k, "a port is at most 65535"))?;
            Ok(())
        },
    )
    .default_is("587"),
    quay(
        "MAIL_USE_TLS",
        B,
        "require STARTTLS (default true)",
        |c, k, v, _| {
            c.mail.use_tls = as_bool(k, v)?;
            Ok(())
        },
    )
    .default_is("true"),
    quay(
        "MAIL_USE_AUTH",
        BZ,
        "log in to the SMTP server with MAIL_USERNAME and MAIL_PASSWORD",
        |c, k, v, _| {
            c.mail.use_auth = !v.is_null() && as_bool(k, v)?;
            Ok(())
        },
    ),
    quay(
        "MAIL_USERNAME",
        SZ,
        "SMTP user",
        |c, k, v, _| {
            c.mail.username = text_or_null(k, v)?;
            Ok(())
        },
    )
    .default_is("null"),
    quay(
        "MAIL_PASSWORD",
        SZ,
        "SMTP password",
        |c, k, v, _| {
            c.mail.password = text_or_null(k, v)?;
            Ok(())
        },
    )
    .default_is("null"),
    quay(
        "MAIL_DEFAULT_SENDER",
        SZ,
        "From address of Berth's mail (default admin@example.com)",
        |c, k, v, _| {
            if let Some(s) = text_or_null(k, v)? {
                c.mail.sender = s;
            }
            Ok(())
        },
    )
    .default_is(r#""admin@example.com""#),
    quay(
        "NOTIFICATION_SEND_TIMEOUT",
        N,
        "seconds one delivery attempt may take (default 10)",
        |c, k, v, _| {
            c.notify.send_timeout_ms = positive(k, v)?.saturating_mul(1000);
            Ok(())
        },
    )
    .default_is("10"),
    berth(
        "NOTIFICATION_MAX_FAILURES",
        N,
        "consecutive failed deliveries (each retried for NOTIFICATION_RETRY_WINDOW) that disable a notification (default 10; Quay gives up after 3 attempts)",
        |c, k, v, _| {
            c.notify.max_failures = positive_i64(k, v)?;
            Ok(())
        },
    ),
    berth(
        "NOTIFICATION_RETRY_BASE",
        S,
        "the first retry's delay after a failed delivery; each next one doubles, up to an hour (default 30s)",
        |c, k, v, _| {
            c.notify.retry_base_ms = duration(k, v)?.max(1).saturating_mul(1000);
            Ok(())
        },
    ),
    berth(
        "NOTIFICATION_RETRY_WINDOW",
        S,
        "how long after its event a delivery is retried before it counts as failed (default 1d)",
        |c, k, v, _| {
            c.notify.retry_window_ms = duration(k, v)?.saturating_mul(1000);
            Ok(())
        },
    ),
    quay(
        "FEATURE_QUOTA_NOTIFICATIONS",
        B,
        "organizations and users may have notifications of quota events (Berth default true; Quay's false)",
        |c, k, v, _| {
            c.notify.quota_notifications = as_bool(k, v)?;
            Ok(())
        },
    )
    .default_is("false"),
    quay(
        "QUOTA_NOTIFICATION_COOLDOWN_SECONDS",
        I,
        "a namespace notification fires at most once per event in this many seconds (default 86400)",
        |c, k, v, _| {
            c.notify.quota_cooldown_ms = non_negative_i64(k, v)?.saturating_mul(1000);
            Ok(())
        },
    )
    .default_is("86400"),
    quay(
        "SSRF_ALLOWED_HOSTS",
        L,
        "hosts (name, name:port, address or CIDR) outbound requests may reach although they resolve to loopback, private or link-local addresses (default none)",
        |c, k, v, _| {
            c.notify.ssrf_allowed_hosts = as_string_list(k, v)?;
            Ok(())
        },
    )
    .default_is("[]"),
    quay(
        "WEBHOOK_HOSTNAME_BLACKLIST",
        L,
        "host names (and their subdomains) webhooks and Slack messages are never sent to",
        |c, k, v, _| {
            c.notify.webhook_hostname_blacklist = as_string_list(k, v)?;
            Ok(())
        },
    )
    .default_is("[]"),
];
