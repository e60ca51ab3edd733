//! Browser sessions and other short signed values that a browser carries for us.
//!
//! Instances keep no per-user memory, so whatever must survive between two browser requests
//! travels in a cookie, signed with HMAC-SHA256 under a key derived from `SECRET_KEY` (or a
//! secret generated once and kept in the database, shared by every instance). A signed value is
//! `<base64url JSON>.<base64url MAC>`; the MAC also covers a purpose label, so a value signed for
//! one purpose (the OIDC state) can never pass as another (a session).
//!
//! A session carries the account id, when it was issued, when it expires and a random id. It is
//! not stored: signing out clears the cookie, and a disabled account's sessions stop working
//! because the account is read again on every request.

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::{Deserialize, Serialize, de::DeserializeOwned};

/// The cookie holding a signed-in browser's session.
pub const SESSION_COOKIE: &str = "berth_session";

const SESSION_PURPOSE: &str = "berth-session-v1";

/// Signs and verifies values with one key.
#[derive(Clone)]
pub struct Signer {
    key: hmac::Key,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(..)")
    }
}

impl Signer {
    pub fn new(secret: &str) -> Signer {
        Signer {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes()),
        }
    }

    fn mac_input(purpose: &str, payload_b64: &str) -> Vec<u8> {
        // The NUL cannot occur in a purpose label or in base64, so the split is unambiguous.
        let mut m = Vec::with_capacity(purpose.len() + 1 + payload_b64.len());
        m.extend_from_slice(purpose.as_bytes());
        m.push(0);
        m.extend_from_slice(payload_b64.as_bytes());
        m
    }

    /// `value` as a signed string for `purpose`.
    pub fn sign<T: Serialize>(&self, purpose: &str, value: &T) -> String {
        // Serialising plain structs of strings and numbers does not fail.
        let json = serde_json::to_vec(value).unwrap_or_default();
        let payload = B64.encode(json);
        let tag = hmac::sign(&self.key, &Self::mac_input(purpose, &payload));
        format!("{payload}.{}", B64.encode(tag.as_ref()))
    }

    /// The value of a string made by [`Signer::sign`] for the same purpose, if the MAC holds.
    pub fn verify<T: DeserializeOwned>(&self, purpose: &str, signed: &str) -> Option<T> {
        let (payload, tag) = signed.trim().split_once('.')?;
        let tag = B64.decode(tag).ok()?;
        // Constant-time comparison inside aws-lc.
        hmac::verify(&self.key, &Self::mac_input(purpose, payload), &tag).ok()?;
        serde_json::from_slice(&B64.decode(payload).ok()?).ok()
    }
}

/// What a session cookie says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Account id.
    pub uid: i64,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Expires at, seconds since the epoch.
    pub exp: i64,
    /// Random: tells sessions apart in logs, and makes each cookie unique.
    pub sid: String,
}

/// Issues and checks session cookies.
#[derive(Clone, Debug)]
pub struct Sessions {
    signer: Signer,
    lifetime_s: i64,
}

impl Sessions {
    pub fn new(secret: &str, lifetime_s: i64) -> Sessions {
        Sessions {
            signer: Signer::new(secret),
            lifetime_s,
        }
    }

    pub fn signer(&self) -> &Signer {
        &self.signer
    }

    pub fn lifetime_s(&self) -> i64 {
        self.lifetime_s
    }

    /// A new session for an account: the cookie value.
    pub fn issue(&self, account_id: i64) -> String {
        let now = now_s();
        self.signer.sign(
            SESSION_PURPOSE,
            &Session {
                uid: account_id,
                iat: now,
                exp: now.saturating_add(self.lifetime_s),
                sid: super::secret::random_token(22),
            },
        )
    }

    /// The session a cookie value carries, if it is genuine and unexpired.
    pub fn check(&self, cookie: &str) -> Option<Session> {
        let s: Session = self.signer.verify(SESSION_PURPOSE, cookie)?;
        let now = now_s();
        // A session issued "in the future" comes from a clock far off or a forged key; refuse it.
        (s.exp > now && s.iat <= now + 300).then_some(s)
    }
}

pub(crate) fn now_s() -> i64 {
    berth_db::now_ms() / 1000
}

/// The value of cookie `name` in `Cookie` header values.
pub fn cookie_value<'a>(headers: impl IntoIterator<Item = &'a str>, name: &str) -> Option<&'a str> {
    headers
        .into_iter()
        .flat_map(|h| h.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_round_trip_and_refuse_forgeries() {
        let s = Sessions::new("key-1", 3600);
        let c = s.issue(42);
        let got = s.check(&c).expect("valid session");
        assert_eq!(got.uid, 42);
        assert_eq!(got.exp - got.iat, 3600);
        assert_ne!(s.issue(42), c, "each session is unique");
        // Another key.
        assert!(Sessions::new("key-2", 3600).check(&c).is_none());
        // A changed payload.
        let (payload, tag) = c.split_once('.').expect("two parts");
        let forged = B64.encode(br#"{"uid":1,"iat":0,"exp":99999999999,"sid":"x"}"#);
        assert!(s.check(&format!("{forged}.{tag}")).is_none());
        assert!(s.check(payload).is_none());
        assert!(s.check("").is_none());
        // Expired.
        let old = s.signer().sign(
            SESSION_PURPOSE,
            &Session {
                uid: 42,
                iat: 1,
                exp: 2,
                sid: "x".into(),
            },
        );
        assert!(s.check(&old).is_none());
    }

    #[test]
    fn purposes_do_not_mix() {
        let signer = Signer::new("k");
        let v = serde_json::json!({"uid": 1, "iat": 1, "exp": 99999999999i64, "sid": "s"});
        let other = signer.sign("berth-oidc-state", &v);
        assert!(signer.verify::<Session>(SESSION_PURPOSE, &other).is_none());
        assert!(
            signer
                .verify::<serde_json::Value>("berth-oidc-state", &other)
                .is_some()
        );
    }

    #[test]
    fn cookies_are_found_by_name() {
        let h = ["a=1; berth_session=xyz.abc", "other=2"];
        assert_eq!(cookie_value(h, "berth_session"), Some("xyz.abc"));
        assert_eq!(cookie_value(h, "other"), Some("2"));
        assert_eq!(cookie_value(h, "berth"), None);
    }
}
