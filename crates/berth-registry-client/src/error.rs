//! What can go wrong talking to an upstream registry, and how an error answer becomes one.

use std::time::Duration;

/// An upstream registry request's failure. Messages never hold credentials or tokens.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The SSRF guard refused a target (the message says what to configure).
    #[error("{0}")]
    Refused(#[from] berth_net::Refused),
    /// 404: manifest, blob or repository unknown upstream.
    #[error("not found upstream: {0}")]
    NotFound(String),
    /// Credentials refused, or the token endpoint refused.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// 403.
    #[error("denied: {0}")]
    Denied(String),
    /// 429 still after the retries, or a Retry-After longer than `max_retry_after`.
    #[error("rate limited upstream{}", match retry_after {
        Some(d) => format!("; retry after {} s", d.as_secs()),
        None => String::new(),
    })]
    RateLimited { retry_after: Option<Duration> },
    /// Any other unexpected status (5xx after the retries, 4xx).
    #[error("upstream answered {status}: {message}")]
    Status { status: u16, message: String },
    /// DNS, connect or TLS failure, connection reset.
    #[error("upstream unreachable: {0}")]
    Unreachable(String),
    #[error("upstream timed out: {0}")]
    Timeout(String),
    /// A malformed answer: bad JSON, bad header, too large, size mismatch.
    #[error("invalid answer from upstream: {0}")]
    Invalid(String),
    #[error("digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch { expected: String, actual: String },
}

impl Error {
    /// The upstream cannot serve now (unreachable, timeout, 429, 5xx): a cache may serve stale
    /// content.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Error::Unreachable(_) | Error::Timeout(_) | Error::RateLimited { .. } => true,
            Error::Status { status, .. } => *status >= 500,
            _ => false,
        }
    }

    /// The HTTP status the upstream answered, where the error is one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::NotFound(_) => Some(404),
            Error::Unauthorized(_) => Some(401),
            Error::Denied(_) => Some(403),
            Error::RateLimited { .. } => Some(429),
            Error::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Longest part of an upstream's error text kept in a message.
const MESSAGE_MAX: usize = 300;

/// The message of a registry's error body (`{"errors":[{"code","message"}]}`), else its text,
/// truncated.
pub(crate) fn body_message(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Body {
        #[serde(default)]
        errors: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let text = match serde_json::from_slice::<Body>(body) {
        Ok(b) if !b.errors.is_empty() => b
            .errors
            .iter()
            .map(|e| match (e.code.is_empty(), e.message.is_empty()) {
                (false, false) => format!("{}: {}", e.code, e.message),
                (false, true) => e.code.clone(),
                _ => e.message.clone(),
            })
            .collect::<Vec<_>>()
            .join("; "),
        _ => String::from_utf8_lossy(body).trim().to_string(),
    };
    truncate(&text, MESSAGE_MAX)
}

/// `s` cut to at most `max` bytes on a character boundary, control characters replaced.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if out.len() + c.len_utf8() > max {
            out.push('…');
            break;
        }
        out.push(if c.is_control() { ' ' } else { c });
    }
    out
}

/// A reqwest failure as an [`Error`], naming `what` was being fetched (a URL without its query)
/// but never the request's headers.
pub(crate) fn from_reqwest(what: &str, e: reqwest::Error) -> Error {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    let text = truncate(&format!("{what}: {text}"), MESSAGE_MAX * 2);
    if e.is_timeout() {
        Error::Timeout(text)
    } else {
        Error::Unreachable(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_error_bodies_become_short_messages() {
        let b =
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}"#;
        assert_eq!(body_message(b), "MANIFEST_UNKNOWN: manifest unknown");
        assert_eq!(body_message(b"plain text\n"), "plain text");
        let long = "x".repeat(1000);
        assert!(body_message(long.as_bytes()).chars().count() <= MESSAGE_MAX + 1);
        assert_eq!(truncate("ab\ncd", 10), "ab cd");
    }

    #[test]
    fn unavailable_means_a_cache_may_serve_stale() {
        assert!(Error::Timeout("x".into()).is_unavailable());
        assert!(Error::Unreachable("x".into()).is_unavailable());
        assert!(Error::RateLimited { retry_after: None }.is_unavailable());
        assert!(
            Error::Status {
                status: 503,
                message: String::new()
            }
            .is_unavailable()
        );
        assert!(!Error::NotFound("x".into()).is_unavailable());
        assert!(
            !Error::Status {
                status: 400,
                message: String::new()
            }
            .is_unavailable()
        );
        assert_eq!(Error::Denied("x".into()).status(), Some(403));
        assert_eq!(Error::Invalid("x".into()).status(), None);
    }
}
