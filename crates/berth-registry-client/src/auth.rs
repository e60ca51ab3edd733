//! Registry authentication: `WWW-Authenticate` challenges (RFC 7235), Basic credentials and the
//! Docker token flow (a Bearer token per scope from the challenge's realm, cached until shortly
//! before it expires).

use crate::Credentials;
use base64::Engine as _;
use reqwest::header::HeaderValue;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// One challenge of a `WWW-Authenticate` header: its scheme (lowercased) and either its
/// parameters (names lowercased, values unquoted) or a token68.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Challenge {
    pub scheme: String,
    pub params: Vec<(String, String)>,
    pub token68: Option<String>,
}

impl Challenge {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

fn is_token68_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~+/".contains(c)
}

struct Lexer<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn peek(&self) -> Option<char> {
        self.s[self.pos..].chars().next()
    }
    fn bump(&mut self) {
        if let Some(c) = self.peek() {
            self.pos += c.len_utf8();
        }
    }
    fn done(&self) -> bool {
        self.pos >= self.s.len()
    }
    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t')) {
            self.bump();
        }
    }
    fn skip_ws_commas(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t' | ',')) {
            self.bump();
        }
    }
    fn take_while(&mut self, f: impl Fn(char) -> bool) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(&f) {
            self.bump();
        }
        &self.s[start..self.pos]
    }
    fn token(&mut self) -> &'a str {
        self.take_while(is_tchar)
    }
    /// A quoted string from its opening quote; `\x` stands for `x`. An unterminated string runs
    /// to the end.
    fn quoted(&mut self) -> String {
        let mut out = String::new();
        self.bump();
        while let Some(c) = self.peek() {
            self.bump();
            match c {
                '"' => break,
                '\\' => {
                    if let Some(n) = self.peek() {
                        out.push(n);
                        self.bump();
                    }
                }
                c => out.push(c),
            }
        }
        out
    }
    /// Whether a `name=` follows (after optional commas and blanks), without consuming it.
    fn param_follows(&mut self) -> bool {
        let save = self.pos;
        self.skip_ws_commas();
        let name = self.token();
        self.skip_ws();
        let yes = !name.is_empty() && self.peek() == Some('=');
        self.pos = save;
        yes
    }
}

/// Every challenge in `header`. Parameters and challenges are both comma-separated, so a comma
/// ends a challenge only where the next item is not `name=`; commas inside quoted strings are
/// content.
pub(crate) fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut out = Vec::new();
    let mut lx = Lexer { s: header, pos: 0 };
    loop {
        lx.skip_ws_commas();
        if lx.done() {
            break;
        }
        let scheme = lx.token();
        if scheme.is_empty() {
            lx.bump();
            continue;
        }
        let mut ch = Challenge {
            scheme: scheme.to_ascii_lowercase(),
            params: Vec::new(),
            token68: None,
        };
        lx.skip_ws();
        let save = lx.pos;
        let t68 = lx.take_while(is_token68_char);
        let t68 = format!("{t68}{}", lx.take_while(|c| c == '='));
        lx.skip_ws();
        if !t68.is_empty() && !t68.starts_with('=') && (lx.done() || lx.peek() == Some(',')) {
            ch.token68 = Some(t68);
            out.push(ch);
            continue;
        }
        lx.pos = save;
        loop {
            let save = lx.pos;
            lx.skip_ws();
            let name = lx.token();
            lx.skip_ws();
            if name.is_empty() || lx.peek() != Some('=') {
                lx.pos = save;
                break;
            }
            lx.bump();
            lx.skip_ws();
            let value = if lx.peek() == Some('"') {
                lx.quoted()
            } else {
                lx.token().to_string()
            };
            ch.params.push((name.to_ascii_lowercase(), value));
            lx.skip_ws();
            if lx.peek() != Some(',') || !lx.param_follows() {
                break;
            }
            lx.skip_ws_commas();
        }
        out.push(ch);
    }
    out
}

/// What the registry asked for, remembered so that later requests authenticate up front.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Scheme {
    Unknown,
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

/// The challenge to answer among `challenges`: Bearer (with a realm) before Basic.
pub(crate) fn choose(challenges: &[Challenge]) -> Option<(Scheme, Option<String>)> {
    if let Some(b) = challenges
        .iter()
        .find(|c| c.scheme == "bearer" && c.param("realm").is_some_and(|r| !r.is_empty()))
    {
        let realm = b.param("realm").unwrap_or_default().to_string();
        let service = b.param("service").map(str::to_string);
        let scope = b.param("scope").map(str::to_string);
        return Some((Scheme::Bearer { realm, service }, scope));
    }
    challenges
        .iter()
        .any(|c| c.scheme == "basic")
        .then_some((Scheme::Basic, None))
}

/// An `Authorization: Basic` value, marked sensitive so it never shows in debug output.
pub(crate) fn basic(creds: &Credentials) -> Option<HeaderValue> {
    let raw = format!("{}:{}", creds.username, creds.password);
    let encoded = base64::engine::general_purpose::STANDARD.encode(raw);
    sensitive(&format!("Basic {encoded}"))
}

/// An `Authorization: Bearer` value; `None` if the token is not a valid header value.
pub(crate) fn bearer(token: &str) -> Option<HeaderValue> {
    sensitive(&format!("Bearer {token}"))
}

fn sensitive(v: &str) -> Option<HeaderValue> {
    let mut h = HeaderValue::from_str(v).ok()?;
    h.set_sensitive(true);
    Some(h)
}

/// A token endpoint's answer.
#[derive(serde::Deserialize)]
pub(crate) struct TokenAnswer {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl TokenAnswer {
    /// The token (`token`, else `access_token`) and how long it lives (60 s if unsaid).
    pub fn into_parts(self) -> Option<(String, Duration)> {
        let token = self
            .token
            .filter(|t| !t.is_empty())
            .or(self.access_token.filter(|t| !t.is_empty()))?;
        Some((token, Duration::from_secs(self.expires_in.unwrap_or(60))))
    }
}

/// How long before its stated expiry a token stops being reused, for clock skew and latency.
const EXPIRY_MARGIN: Duration = Duration::from_secs(10);
/// Scopes a client remembers tokens for; a mirror touches few repositories at once.
const MAX_TOKENS: usize = 1024;

/// Bearer tokens by scope.
#[derive(Default)]
pub(crate) struct TokenCache {
    tokens: HashMap<String, (String, Instant)>,
}

impl TokenCache {
    pub fn get(&self, scope: &str, now: Instant) -> Option<String> {
        self.tokens
            .get(scope)
            .filter(|(_, until)| now < *until)
            .map(|(t, _)| t.clone())
    }

    pub fn put(&mut self, scope: &str, token: String, expires_in: Duration, now: Instant) {
        if self.tokens.len() >= MAX_TOKENS {
            self.tokens.retain(|_, (_, until)| now < *until);
            if self.tokens.len() >= MAX_TOKENS {
                self.tokens.clear();
            }
        }
        let until = now + expires_in.saturating_sub(EXPIRY_MARGIN);
        self.tokens.insert(scope.to_string(), (token, until));
    }

    pub fn forget(&mut self, scope: &str) {
        self.tokens.remove(scope);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(c: &Challenge) -> Vec<(&str, &str)> {
        c.params
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect()
    }

    #[test]
    fn docker_bearer_challenge_is_read() {
        let c = parse_challenges(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull""#,
        );
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(
            p(&c[0]),
            [
                ("realm", "https://auth.docker.io/token"),
                ("service", "registry.docker.io"),
                ("scope", "repository:library/alpine:pull")
            ]
        );
    }

    #[test]
    fn several_challenges_quotes_escapes_and_commas() {
        let c = parse_challenges(
            r#"Basic realm="Registry, \"main\"", charset=UTF-8 , Bearer realm="https://t.example/token?a=1,2",scope="repository:a/b:pull,push",error="insufficient_scope", Negotiate abc+/==, NTLM"#,
        );
        let schemes: Vec<_> = c.iter().map(|c| c.scheme.as_str()).collect();
        assert_eq!(schemes, ["basic", "bearer", "negotiate", "ntlm"]);
        assert_eq!(
            p(&c[0]),
            [("realm", r#"Registry, "main""#), ("charset", "UTF-8")]
        );
        assert_eq!(c[1].param("realm"), Some("https://t.example/token?a=1,2"));
        assert_eq!(c[1].param("scope"), Some("repository:a/b:pull,push"));
        assert_eq!(c[1].param("error"), Some("insufficient_scope"));
        assert_eq!(c[2].token68.as_deref(), Some("abc+/=="));
        assert!(c[3].params.is_empty() && c[3].token68.is_none());
    }

    #[test]
    fn odd_headers_do_not_break_the_parser() {
        assert!(parse_challenges("").is_empty());
        assert!(parse_challenges(" , ,").is_empty());
        let c = parse_challenges(r#"BEARER Realm="unterminated"#);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(c[0].param("realm"), Some("unterminated"));
        let c = parse_challenges("Basic realm=plain,Bearer realm=x");
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].param("realm"), Some("plain"));
        let c = parse_challenges("\u{e9}\u{e9} Basic");
        assert_eq!(c.last().map(|c| c.scheme.as_str()), Some("basic"));
    }

    #[test]
    fn bearer_is_preferred_and_needs_a_realm() {
        let c = parse_challenges(r#"Basic realm="r", Bearer realm="https://a/t",service="s""#);
        assert_eq!(
            choose(&c),
            Some((
                Scheme::Bearer {
                    realm: "https://a/t".into(),
                    service: Some("s".into())
                },
                None
            ))
        );
        let c = parse_challenges(r#"Bearer service="s", Basic realm="r""#);
        assert_eq!(choose(&c), Some((Scheme::Basic, None)));
        assert_eq!(choose(&parse_challenges("Digest realm=x")), None);
    }

    #[test]
    fn tokens_are_reused_until_shortly_before_expiry() {
        let t0 = Instant::now();
        let mut cache = TokenCache::default();
        cache.put(
            "repository:a:pull",
            "tok".into(),
            Duration::from_secs(60),
            t0,
        );
        assert_eq!(
            cache.get("repository:a:pull", t0 + Duration::from_secs(49)),
            Some("tok".into())
        );
        assert_eq!(
            cache.get("repository:a:pull", t0 + Duration::from_secs(50)),
            None
        );
        assert_eq!(cache.get("repository:b:pull", t0), None);
        // A token that lives less than the margin is not reused at all.
        cache.put("s", "short".into(), Duration::from_secs(5), t0);
        assert_eq!(cache.get("s", t0), None);
        cache.put(
            "repository:a:pull",
            "new".into(),
            Duration::from_secs(300),
            t0,
        );
        assert_eq!(cache.get("repository:a:pull", t0), Some("new".into()));
        cache.forget("repository:a:pull");
        assert_eq!(cache.get("repository:a:pull", t0), None);
        for i in 0..(MAX_TOKENS + 5) {
            cache.put(&format!("s{i}"), "t".into(), Duration::from_secs(60), t0);
        }
        assert!(cache.tokens.len() <= MAX_TOKENS);
    }

    #[test]
    fn token_answers_take_token_or_access_token() {
        let a: TokenAnswer =
            serde_json::from_str(r#"{"token":"t1","expires_in":300}"#).expect("json");
        assert_eq!(
            a.into_parts(),
            Some(("t1".into(), Duration::from_secs(300)))
        );
        let a: TokenAnswer = serde_json::from_str(r#"{"access_token":"t2"}"#).expect("json");
        assert_eq!(a.into_parts(), Some(("t2".into(), Duration::from_secs(60))));
        let a: TokenAnswer = serde_json::from_str(r#"{"token":""}"#).expect("json");
        assert_eq!(a.into_parts(), None);
    }

    #[test]
    fn credentials_stay_out_of_debug_output() {
        let h = basic(&Credentials {
            username: "u".into(),
            password: "secret".into(),
        })
        .expect("header");
        assert!(!format!("{h:?}").contains("dTpzZWNyZXQ"));
        assert!(bearer("bad\ntoken").is_none());
    }
}
