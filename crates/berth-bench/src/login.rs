//! How a simulated client authenticates, the way podman, skopeo, containerd and docker do:
//! `GET /v2/` without credentials, read the `401`'s `WWW-Authenticate` challenge, then either
//! fetch a bearer token from the challenge's realm with Basic credentials (Berth) or send the
//! Basic credentials themselves (Distribution with htpasswd, which checks them again on every
//! request). Each client keeps what it got in its own [`Conn`].

use anyhow::{Context, Result, anyhow, bail};
use http::{Method, StatusCode, header};

use crate::client::{Conn, ReqBody};

/// The user every client logs in as (Berth's bootstrap superuser; the htpasswd user of
/// Distribution).
pub const USER: &str = "admin";

/// How the clients of one registry under test get their `Authorization` value.
#[derive(Clone, Debug)]
pub enum Access {
    /// No per-client login: every request carries this value (Berth in the "without per-client
    /// authentication" table: one token for every repository, fetched once per registry start),
    /// or nothing (Distribution without auth).
    Shared(Option<String>),
    /// Every client logs in from scratch with these credentials.
    Login { user: String, password: String },
}

impl Access {
    pub fn login(user: &str, password: &str) -> Access {
        Access::Login {
            user: user.to_string(),
            password: password.to_string(),
        }
    }

    pub fn is_login(&self) -> bool {
        matches!(self, Access::Login { .. })
    }
}

pub fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// What a registry's `401` on `GET /v2/` asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Challenge {
    /// A token service: its realm's path-and-query (fetched on the same connection) and the
    /// `service` to name.
    Bearer {
        realm: String,
        service: Option<String>,
    },
    Basic,
    /// `/v2/` answered 200: the registry wants no credentials.
    None,
}

/// Splits a challenge's parameters (`k="v", k2=v2`) into pairs; quoted values may hold commas.
fn params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ',' {
                break;
            }
            key.push(c);
            chars.next();
        }
        if key.is_empty() {
            return out;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'=') {
            chars.next();
            if chars.peek() == Some(&'"') {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => value.extend(chars.next()),
                        c => value.push(c),
                    }
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == ',' {
                        break;
                    }
                    value.push(c);
                    chars.next();
                }
            }
        }
        out.push((key.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
}

/// Parses one `WWW-Authenticate` value.
pub fn parse_challenge(v: &str) -> Result<Challenge> {
    let v = v.trim();
    let (scheme, rest) = v.split_once(' ').unwrap_or((v, ""));
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => Ok(Challenge::Basic),
        "bearer" => {
            let p = params(rest);
            let get = |k: &str| p.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
            let realm = get("realm").ok_or_else(|| anyhow!("Bearer challenge without realm"))?;
            let realm = if realm.starts_with('/') {
                realm
            } else {
                let uri: http::Uri = realm
                    .parse()
                    .with_context(|| format!("bad realm {realm:?}"))?;
                uri.path_and_query()
                    .map_or("/".to_string(), |pq| pq.as_str().to_string())
            };
            Ok(Challenge::Bearer {
                realm,
                service: get("service"),
            })
        }
        other => bail!("unsupported challenge scheme {other:?} in {v:?}"),
    }
}

/// `GET /v2/` without credentials, as every client does first: what the registry asks for.
pub async fn ping(conn: &mut Conn) -> Result<Challenge> {
    let saved = conn.auth.take();
    let res = conn.call(Method::GET, "/v2/", &[], ReqBody::empty()).await;
    conn.auth = saved;
    let (status, hdrs, _) = res?;
    match status {
        StatusCode::OK => Ok(Challenge::None),
        StatusCode::UNAUTHORIZED => {
            let v = hdrs
                .get(header::WWW_AUTHENTICATE)
                .ok_or_else(|| anyhow!("401 on /v2/ without WWW-Authenticate"))?
                .to_str()
                .context("WWW-Authenticate is not ASCII")?;
            parse_challenge(v)
        }
        other => bail!("GET /v2/ answered {other}"),
    }
}

/// The token request of a Bearer challenge: realm, `service`, one `scope` per repository.
pub fn token_path(realm: &str, service: Option<&str>, repos: &[&str], actions: &str) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    if let Some(s) = service {
        q.append_pair("service", s);
    }
    for r in repos {
        q.append_pair("scope", &format!("repository:{r}:{actions}"));
    }
    let sep = if realm.contains('?') { '&' } else { '?' };
    format!("{realm}{sep}{}", q.finish())
}

/// One credential check against `challenge`, on `conn`: for Bearer, `GET <token_path>` with
/// Basic credentials (answering `Bearer <token>`); for Basic, `GET /v2/` with them (answering
/// the Basic value, which every later request then carries). `token_path` is the Bearer request
/// to send (see [`token_path`]), ignored for Basic.
pub async fn check(
    conn: &mut Conn,
    challenge: &Challenge,
    token_path: &str,
    user: &str,
    password: &str,
) -> Result<String> {
    let basic = basic(user, password);
    let auth = [(header::AUTHORIZATION, basic.as_str())];
    match challenge {
        Challenge::None => bail!("the registry asks for no credentials"),
        Challenge::Basic => {
            conn.expect(Method::GET, "/v2/", &auth, ReqBody::empty(), StatusCode::OK)
                .await
                .context("GET /v2/ with Basic credentials")?;
            Ok(basic)
        }
        Challenge::Bearer { .. } => {
            let (status, _, body) = conn
                .call(Method::GET, token_path, &auth, ReqBody::empty())
                .await?;
            if status != StatusCode::OK {
                bail!(
                    "token request answered {status}: {}",
                    String::from_utf8_lossy(&body[..body.len().min(400)])
                );
            }
            let v: serde_json::Value =
                serde_json::from_slice(&body).context("token answer is not JSON")?;
            let token = v["token"]
                .as_str()
                .or_else(|| v["access_token"].as_str())
                .ok_or_else(|| anyhow!("no token in the token answer"))?;
            Ok(format!("Bearer {token}"))
        }
    }
}

/// Makes `conn` a logged-in client for `repos` (`actions` e.g. `pull,push`): with
/// [`Access::Shared`] it just takes the shared value; with [`Access::Login`] it pings `/v2/`
/// and checks its credentials as a fresh client process does (two requests).
pub async fn log_in(conn: &mut Conn, access: &Access, repos: &[&str], actions: &str) -> Result<()> {
    match access {
        Access::Shared(v) => {
            conn.auth = v.clone();
            Ok(())
        }
        Access::Login { user, password } => {
            conn.auth = None;
            let challenge = ping(conn).await?;
            let path = match &challenge {
                Challenge::Bearer { realm, service } => {
                    token_path(realm, service.as_deref(), repos, actions)
                }
                _ => String::new(),
            };
            let value = check(conn, &challenge, &path, user, password)
                .await
                .with_context(|| format!("logging in as {user}"))?;
            conn.auth = Some(value);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_challenges() {
        assert_eq!(
            parse_challenge(
                "Bearer realm=\"http://127.0.0.1:5000/v2/auth\",service=\"localhost:5000\",scope=\"repository:a/b:pull,push\""
            )
            .ok(),
            Some(Challenge::Bearer {
                realm: "/v2/auth".into(),
                service: Some("localhost:5000".into())
            })
        );
        assert_eq!(
            parse_challenge("Basic realm=\"bench\"").ok(),
            Some(Challenge::Basic)
        );
        assert!(parse_challenge("Negotiate").is_err());
        assert_eq!(
            token_path("/v2/auth", Some("s:1"), &["a/b"], "pull,push"),
            "/v2/auth?service=s%3A1&scope=repository%3Aa%2Fb%3Apull%2Cpush"
        );
    }
}
