//! Cross-site request forgery protection for the UI's forms: a token in a hidden field, bound to
//! the browser, plus an `Origin` check.
//!
//! The token is an HMAC (the session signer's key, purpose `csrf`) of what identifies the
//! browser: its session's random id when signed in, else a random pre-session cookie
//! (`berth_csrf`, set by any UI page) so that the sign-in form is protected too (login CSRF).
//! Nothing is stored: a POST is accepted when its field verifies for the binding its cookies
//! carry now. A page of another origin can neither read the token (same-origin policy) nor set
//! our cookies; a request whose `Origin` names another origin is refused whatever it carries.

use crate::AppState;
use crate::web_login::cookie;
use axum::http::{HeaderMap, HeaderValue, header};
use berth_core::auth::session::SESSION_COOKIE;

/// The pre-session cookie.
pub const CSRF_COOKIE: &str = "berth_csrf";
const PURPOSE: &str = "csrf";

/// What a form's token is bound to for this request, and the `Set-Cookie` that creates the
/// pre-session binding when the browser has none yet.
pub struct Binding {
    pub value: String,
    pub set_cookie: Option<HeaderValue>,
}

/// The binding of the request: the session's id, the pre-session cookie, or a new one.
pub fn binding(st: &AppState, headers: &HeaderMap) -> Binding {
    if let Some(v) = existing(st, headers) {
        return Binding {
            value: v,
            set_cookie: None,
        };
    }
    let value = berth_core::auth::secret::random_token(22);
    let secure = if st.auth.config.session_cookie_secure {
        "; Secure"
    } else {
        ""
    };
    // Strict: no other site's navigation carries it.
    let c = format!("{CSRF_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict{secure}");
    Binding {
        set_cookie: HeaderValue::from_str(&c).ok(),
        value: format!("p:{value}"),
    }
}

fn existing(st: &AppState, headers: &HeaderMap) -> Option<String> {
    if let Some(s) = cookie(headers, SESSION_COOKIE).and_then(|c| st.auth.sessions.check(c)) {
        return Some(format!("s:{}", s.sid));
    }
    cookie(headers, CSRF_COOKIE)
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_alphanumeric()))
        .map(|v| format!("p:{v}"))
}

/// The token a form carries for `binding`.
pub fn token(st: &AppState, binding: &str) -> String {
    st.auth.sessions.signer().sign(PURPOSE, &binding)
}

/// Why a form post is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// `Origin` (or, without it, `Referer`) names another origin.
    ForeignOrigin,
    /// No token, or one not made for this browser.
    BadToken,
}

impl Refusal {
    pub fn message(&self) -> &'static str {
        match self {
            Refusal::ForeignOrigin => {
                "this form was sent from another site, so it was refused; open the page on this registry and submit it again"
            }
            Refusal::BadToken => {
                "this form has expired or was not made for this browser; reload the page and submit it again"
            }
        }
    }
}

/// Checks a form post: same origin, and a token made for the browser's current binding.
pub fn check(st: &AppState, headers: &HeaderMap, field: Option<&str>) -> Result<(), Refusal> {
    let base = crate::auth::base_url(st, headers);
    let from = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
        .and_then(|v| v.to_str().ok());
    if let Some(from) = from
        && !same_origin(from, &base)
    {
        return Err(Refusal::ForeignOrigin);
    }
    let (Some(binding), Some(field)) = (existing(st, headers), field) else {
        return Err(Refusal::BadToken);
    };
    match st.auth.sessions.signer().verify::<String>(PURPOSE, field) {
        Some(b) if b == binding => Ok(()),
        _ => Err(Refusal::BadToken),
    }
}

/// Whether `url` (an `Origin` or a `Referer`) is on `base`'s scheme, host and port.
fn same_origin(url: &str, base: &str) -> bool {
    let origin = |u: &str| -> Option<String> {
        let (scheme, rest) = u.split_once("://")?;
        let host = rest.split(['/', '?', '#']).next()?;
        Some(format!(
            "{}://{}",
            scheme.to_ascii_lowercase(),
            host.to_ascii_lowercase()
        ))
    };
    match (origin(url), origin(base)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::same_origin;

    #[test]
    fn origins_compare_scheme_host_and_port() {
        assert!(same_origin(
            "http://reg.example:5000",
            "http://reg.example:5000"
        ));
        assert!(same_origin(
            "http://REG.example:5000/repository?x=1",
            "http://reg.example:5000"
        ));
        assert!(!same_origin(
            "https://reg.example:5000",
            "http://reg.example:5000"
        ));
        assert!(!same_origin(
            "http://reg.example:5001",
            "http://reg.example:5000"
        ));
        assert!(!same_origin("http://evil.example", "http://reg.example"));
        assert!(!same_origin(
            "http://reg.example.evil.example",
            "http://reg.example"
        ));
        assert!(!same_origin("null", "http://reg.example"));
    }
}
