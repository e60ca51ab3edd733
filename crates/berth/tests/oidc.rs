//! Sign-in through a real OpenID Connect provider (`oidc-provider-mock`, from PyPI: it serves
//! discovery, JWKS, an authorization form and a token endpoint that signs RS256 ID tokens), with
//! Berth configured the way a Quay user would: a `MOCK_LOGIN_CONFIG` block.
//!
//! Every hop of the authorization-code flow is made and checked by hand (redirects are not
//! followed; cookies are kept in a small jar here so that each `Set-Cookie` can be inspected):
//! externallogin → the provider's form → the callback → the session cookie → the API. Then:
//! a second sign-in reaches the same user, tampered state, a swapped nonce and forged sessions
//! are refused, a session's state changes need `X-Requested-With`, an app token made with the
//! session logs a registry client in, password sign-in and sign-out work, a disabled user's
//! session stops, groups sync synced teams, and the audit log has the sign-ins.

mod common;

use common::{ADMIN_PASSWORD, ADMIN_USER, Berth, admin_headers};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The session key the test server signs with, so the test can forge cookies with another.
const SECRET_KEY: &str = "oidc-test-session-key";

fn mock_binary() -> PathBuf {
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/test-venv/bin/oidc-provider-mock");
    if venv.exists() {
        return venv;
    }
    if let Some(p) = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|d| d.join("oidc-provider-mock"))
        .find(|p| p.exists())
    {
        return p;
    }
    panic!(
        "oidc-provider-mock is not installed: run ./scripts/test.sh once (it installs it into target/test-venv)"
    );
}

/// The provider process, killed when dropped.
struct Provider {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether a plain-HTTP GET of `path` on 127.0.0.1:`port` answers 200 (a blocking probe for the
/// start-up wait, with its own short timeouts).
fn answers_200(port: u16, path: &str) -> bool {
    use std::io::{Read, Write};
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let req = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).is_ok() && head.ends_with(b" 200")
}

impl Provider {
    fn start(extra_args: &[&str]) -> Provider {
        let bin = mock_binary();
        let dir = tempfile::tempdir().expect("tempdir");
        // A pre-picked port can be taken in between: try a few.
        for attempt in 0..3 {
            let port = common::free_port();
            let log = dir.path().join(format!("provider-{attempt}.log"));
            let out = std::fs::File::create(&log).expect("provider log");
            let mut child = Command::new(&bin)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .args(extra_args)
                .stdin(Stdio::null())
                .stdout(Stdio::from(out.try_clone().expect("clone log")))
                .stderr(Stdio::from(out))
                .spawn()
                .expect("spawn oidc-provider-mock");
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if answers_200(port, "/.well-known/openid-configuration") {
                    return Provider {
                        child,
                        base: format!("http://127.0.0.1:{port}"),
                        _dir: dir,
                    };
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "oidc-provider-mock did not start in 30 s: {}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        panic!(
            "oidc-provider-mock exited three times; last log: {}",
            std::fs::read_to_string(dir.path().join("provider-2.log")).unwrap_or_default()
        );
    }
}

/// A browser: no redirects followed, cookies kept by name.
struct Browser {
    http: reqwest::Client,
    jar: BTreeMap<String, String>,
}

/// The `Set-Cookie` headers of a response, whole.
fn set_cookies(r: &reqwest::Response) -> Vec<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_string))
        .collect()
}

fn set_cookie<'a>(all: &'a [String], name: &str) -> Option<&'a String> {
    all.iter().find(|c| c.starts_with(&format!("{name}=")))
}

fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// The value of query parameter `k` in a URL (values here are URL-safe).
fn param(url: &str, k: &str) -> Option<String> {
    url.split_once('?')?
        .1
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(n, _)| *n == k)
        .map(|(_, v)| v.to_string())
}

impl Browser {
    fn new() -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .timeout(Duration::from_secs(20))
                .build()
                .expect("client"),
            jar: BTreeMap::new(),
        }
    }

    fn remember(&mut self, r: &reqwest::Response) {
        for c in set_cookies(r) {
            let first = c.split(';').next().unwrap_or_default();
            let (name, value) = first.split_once('=').unwrap_or((first, ""));
            if value.is_empty() || c.contains("Max-Age=0") {
                self.jar.remove(name);
            } else {
                self.jar.insert(name.to_string(), value.to_string());
            }
        }
    }

    fn cookie_header(&self) -> String {
        self.jar
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn send(&mut self, rb: reqwest::RequestBuilder) -> reqwest::Response {
        let rb = if self.jar.is_empty() {
            rb
        } else {
            rb.header("cookie", self.cookie_header())
        };
        let r = rb.send().await.expect("request");
        self.remember(&r);
        r
    }

    async fn get(&mut self, url: &str) -> reqwest::Response {
        let rb = self.http.get(url);
        self.send(rb).await
    }

    /// A state-changing API call as the web UI makes it.
    async fn xhr_post(&mut self, url: &str, body: Value) -> reqwest::Response {
        let rb = self
            .http
            .post(url)
            .header("x-requested-with", "XMLHttpRequest")
            .json(&body);
        self.send(rb).await
    }
}

fn admin() -> reqwest::Client {
    reqwest::Client::builder()
        .default_headers(admin_headers())
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

async fn set_claims(provider: &Provider, sub: &str, claims: Value) {
    let r = reqwest::Client::new()
        .put(format!("{}/users/{sub}", provider.base))
        .json(&claims)
        .send()
        .await
        .expect("set claims");
    assert_eq!(r.status(), 204, "{}", r.text().await.unwrap_or_default());
}

/// The provider's side of a sign-in: show the form at `auth_url`, submit `sub`, return the
/// redirect back to Berth.
async fn authorize(b: &mut Browser, auth_url: &str, sub: &str) -> String {
    let form = b.get(auth_url).await;
    assert_eq!(form.status(), 200, "the provider's authorization form");
    assert!(
        form.text()
            .await
            .unwrap_or_default()
            .contains("name=\"sub\"")
    );
    let rb = b
        .http
        .post(auth_url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("sub={sub}"));
    let r = b.send(rb).await;
    assert_eq!(
        r.status(),
        302,
        "the provider redirects back after the form"
    );
    location(&r)
}

/// A whole sign-in through `POST /api/v1/externallogin/mock`; returns the callback's response.
async fn sign_in(
    berth: &Berth,
    provider: &Provider,
    b: &mut Browser,
    sub: &str,
) -> reqwest::Response {
    let r = b
        .xhr_post(
            &berth.url("/api/v1/externallogin/mock"),
            json!({"kind": "login"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let cookies = set_cookies(&r);
    let state_cookie = set_cookie(&cookies, "berth_oidc")
        .expect("state cookie")
        .clone();
    assert!(state_cookie.contains("HttpOnly") && state_cookie.contains("SameSite=Lax"));
    assert!(state_cookie.contains("Path=/oauth2/"), "{state_cookie}");
    let auth_url = r.json::<Value>().await.expect("json")["auth_url"]
        .as_str()
        .expect("auth_url")
        .to_string();
    assert!(auth_url.starts_with(&provider.base), "{auth_url}");
    for p in [
        "state",
        "nonce",
        "code_challenge",
        "client_id",
        "redirect_uri",
    ] {
        assert!(param(&auth_url, p).is_some(), "{p} in {auth_url}");
    }
    assert_eq!(
        param(&auth_url, "code_challenge_method").as_deref(),
        Some("S256")
    );
    let back = authorize(b, &auth_url, sub).await;
    let callback = format!("{}/oauth2/mock/callback", berth.base);
    assert!(back.starts_with(&callback), "{back}");
    b.get(&back).await
}

async fn me(berth: &Berth, b: &mut Browser) -> reqwest::Response {
    b.get(&berth.url("/api/v1/user/")).await
}

/// HMAC-SHA256 (RFC 2104), for forging a session with another key.
fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let mut k = [0u8; 64];
    k[..key.len()].copy_from_slice(key);
    let inner: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    let outer: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    let ih = Sha256::new()
        .chain_update(&inner)
        .chain_update(msg)
        .finalize();
    Sha256::new()
        .chain_update(&outer)
        .chain_update(ih)
        .finalize()
        .to_vec()
}

fn session_signed_with(key: &str, uid: i64) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let payload =
        b64.encode(json!({"uid": uid, "iat": now, "exp": now + 3600, "sid": "forged"}).to_string());
    let mut msg = b"berth-session-v1\0".to_vec();
    msg.extend_from_slice(payload.as_bytes());
    format!(
        "{payload}.{}",
        b64.encode(hmac_sha256(key.as_bytes(), &msg))
    )
}

async fn team_members(berth: &Berth) -> Vec<String> {
    let v: Value = admin()
        .get(berth.url("/api/v1/organization/eng/team/devs/members"))
        .send()
        .await
        .expect("members")
        .json()
        .await
        .expect("json");
    v["members"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|m| m["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn oidc_sign_in_sessions_tokens_and_team_sync() {
    let provider = Provider::start(&[]);
    let block = json!({
        "OIDC_SERVER": format!("{}/", provider.base),
        "CLIENT_ID": "berth-test",
        "CLIENT_SECRET": "berth-test-secret",
        "SERVICE_NAME": "Mock IdP",
        "LOGIN_SCOPES": ["openid", "email", "profile"],
        "VERIFIED_EMAIL_CLAIM_NAME": "email_verified",
    })
    .to_string();
    let berth = Berth::start_with_env(&[
        ("BERTH_MOCK_LOGIN_CONFIG", &block),
        ("BERTH_SECRET_KEY", SECRET_KEY),
    ]);
    let adm = admin();

    // A synced team, set up before anyone signs in.
    let r = adm
        .post(berth.url("/api/v1/organization/"))
        .json(&json!({"name": "eng"}))
        .send()
        .await
        .expect("org");
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
    let r = adm
        .put(berth.url("/api/v1/organization/eng/team/devs"))
        .json(&json!({"role": "member"}))
        .send()
        .await
        .expect("team");
    assert!(r.status().is_success());
    let r = adm
        .post(berth.url("/api/v1/organization/eng/team/devs/syncing"))
        .json(&json!({"group_name": "developers", "service": "mock"}))
        .send()
        .await
        .expect("syncing");
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());

    set_claims(
        &provider,
        "alice-sub",
        json!({"email": "alice@example.com", "email_verified": true,
               "preferred_username": "Alice", "groups": ["developers", "other"]}),
    )
    .await;

    // First sign-in: the user is created and linked, and the browser gets a session.
    let mut b = Browser::new();
    let r = sign_in(&berth, &provider, &mut b, "alice-sub").await;
    assert_eq!(r.status(), 302, "{}", r.text().await.unwrap_or_default());
    assert_eq!(location(&r), "/");
    let cookies = set_cookies(&r);
    let session = set_cookie(&cookies, "berth_session").expect("session cookie");
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(session.contains(attr), "{attr} in {session}");
    }
    assert!(!session.contains("Secure"), "SESSION_COOKIE_SECURE is off");
    assert!(
        !b.jar.contains_key("berth_oidc"),
        "the state cookie is cleared"
    );
    let r = me(&berth, &mut b).await;
    assert_eq!(r.status(), 200);
    let user: Value = r.json().await.expect("json");
    assert_eq!(user["username"], "alice");
    assert_eq!(user["email"], "alice@example.com");
    assert_eq!(user["has_password_set"], false);
    assert_eq!(user["logins"][0]["service"], "mock");
    assert_eq!(user["logins"][0]["service_identifier"], "alice-sub");
    assert_eq!(user["logins"][0]["metadata"]["email"], "alice@example.com");
    assert_eq!(
        user["organizations"][0]["name"], "eng",
        "groups claim synced the team"
    );
    assert_eq!(team_members(&berth).await, ["alice"]);

    // Second sign-in, through the browser entry point, with changed claims: same user, and the
    // user left the group, so the synced team drops them.
    set_claims(
        &provider,
        "alice-sub",
        json!({"email": "alice@example.com", "email_verified": true,
               "preferred_username": "alice-renamed", "groups": ["other"]}),
    )
    .await;
    let mut b2 = Browser::new();
    let r = b2
        .get(&berth.url("/oauth2/mock/start?redirect=/repository/eng"))
        .await;
    assert_eq!(r.status(), 302);
    let auth_url = location(&r);
    assert!(auth_url.starts_with(&provider.base), "{auth_url}");
    let back = authorize(&mut b2, &auth_url, "alice-sub").await;
    let r = b2.get(&back).await;
    assert_eq!(r.status(), 302, "{}", r.text().await.unwrap_or_default());
    assert_eq!(
        location(&r),
        "/repository/eng",
        "the remembered relative redirect"
    );
    let user: Value = me(&berth, &mut b2).await.json().await.expect("json");
    assert_eq!(
        user["username"], "alice",
        "linked by (service, sub), not by name"
    );
    assert_eq!(user["logins"].as_array().map(Vec::len), Some(1));
    assert!(
        team_members(&berth).await.is_empty(),
        "left the group, left the team"
    );

    // Another subject wanting the same name gets a numbered one.
    set_claims(
        &provider,
        "bob-sub",
        json!({"email": "bob@example.com", "email_verified": true, "preferred_username": "alice"}),
    )
    .await;
    let mut b3 = Browser::new();
    let r = sign_in(&berth, &provider, &mut b3, "bob-sub").await;
    assert_eq!(r.status(), 302, "{}", r.text().await.unwrap_or_default());
    let bob: Value = me(&berth, &mut b3).await.json().await.expect("json");
    assert_eq!(bob["username"], "alice1");

    // Tampered state: the callback refuses, and no session is set.
    let mut bt = Browser::new();
    let r = bt
        .xhr_post(
            &berth.url("/api/v1/externallogin/mock"),
            json!({"kind": "login"}),
        )
        .await;
    let auth_url = r.json::<Value>().await.expect("json")["auth_url"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let back = authorize(&mut bt, &auth_url, "alice-sub").await;
    let state = param(&back, "state").expect("state");
    let tampered = back.replace(&format!("state={state}"), "state=forged-state");
    let r = bt.get(&tampered).await;
    assert_eq!(r.status(), 400);
    assert!(set_cookie(&set_cookies(&r), "berth_session").is_none());
    assert!(r.text().await.unwrap_or_default().contains("state"));
    // Nor does the genuine callback without the browser's state cookie.
    let mut stranger = Browser::new();
    assert_eq!(stranger.get(&back).await.status(), 400);
    assert_eq!(me(&berth, &mut bt).await.status(), 401);

    // The ID token is verified, not just decoded: a browser that swaps the nonce on its way to
    // the provider gets a token for that nonce, which this sign-in did not ask for.
    let mut bn = Browser::new();
    let r = bn
        .xhr_post(
            &berth.url("/api/v1/externallogin/mock"),
            json!({"kind": "login"}),
        )
        .await;
    let auth_url = r.json::<Value>().await.expect("json")["auth_url"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let nonce = param(&auth_url, "nonce").expect("nonce");
    let swapped = auth_url.replace(&format!("nonce={nonce}"), "nonce=replayed-nonce");
    let back = authorize(&mut bn, &swapped, "alice-sub").await;
    let r = bn.get(&back).await;
    let status = r.status();
    assert!(set_cookie(&set_cookies(&r), "berth_session").is_none());
    let text = r.text().await.unwrap_or_default();
    assert_eq!(status, 403, "{text}");
    assert!(
        text.contains("ID token was refused") && text.contains("nonce"),
        "{text}"
    );

    // Sessions: one forged with another key is refused; the same forgery with the server's key
    // passes, which shows that only the key differs.
    let alice_id = {
        use base64::Engine;
        let genuine = b.jar.get("berth_session").expect("alice's session").clone();
        let payload = genuine.split('.').next().unwrap_or_default();
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("base64url payload");
        serde_json::from_slice::<Value>(&bytes).expect("JSON payload")["uid"]
            .as_i64()
            .expect("uid")
    };
    let mut forger = Browser::new();
    forger.jar.insert(
        "berth_session".into(),
        session_signed_with(SECRET_KEY, alice_id),
    );
    let r = me(&berth, &mut forger).await;
    assert_eq!(
        r.status(),
        200,
        "the test signs sessions the way Berth does"
    );
    forger.jar.insert(
        "berth_session".into(),
        session_signed_with("another-key", alice_id),
    );
    assert_eq!(me(&berth, &mut forger).await.status(), 401);

    // CSRF: a state change by session needs X-Requested-With.
    let rb = b
        .http
        .post(berth.url("/api/v1/user/apptoken"))
        .json(&json!({"title": "podman"}));
    let r = b.send(rb).await;
    assert_eq!(r.status(), 403);
    // With it, alice (who has no password) makes an app token for registry clients.
    let r = b
        .xhr_post(
            &berth.url("/api/v1/user/apptoken"),
            json!({"title": "podman"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let token = r.json::<Value>().await.expect("json")["token"]["token_code"]
        .as_str()
        .expect("token_code")
        .to_string();
    // `podman login -u alice -p <token>` does exactly this.
    let r = reqwest::Client::new()
        .get(berth.url("/v2/auth?service=localhost:5000&scope=repository:alice/app:push,pull"))
        .basic_auth("alice", Some(&token))
        .send()
        .await
        .expect("/v2/auth");
    assert_eq!(r.status(), 200);
    assert!(r.json::<Value>().await.expect("json")["token"].is_string());

    // Password sign-in (the UI's) gives a session too, and sign-out clears it.
    let mut pw = Browser::new();
    let rb = pw
        .http
        .post(berth.url("/api/v1/signin"))
        .json(&json!({"username": ADMIN_USER, "password": ADMIN_PASSWORD}));
    assert_eq!(
        pw.send(rb).await.status(),
        403,
        "sign-in needs X-Requested-With"
    );
    let r = pw
        .xhr_post(
            &berth.url("/api/v1/signin"),
            json!({"username": ADMIN_USER, "password": ADMIN_PASSWORD}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.expect("json")["success"], true);
    let me_admin: Value = me(&berth, &mut pw).await.json().await.expect("json");
    assert_eq!(me_admin["username"], ADMIN_USER);
    let r = pw
        .xhr_post(
            &berth.url("/api/v1/signin"),
            json!({"username": "$app", "password": token}),
        )
        .await;
    assert_eq!(r.status(), 403, "a token does not open a browser session");
    let r = pw.xhr_post(&berth.url("/api/v1/signout"), json!({})).await;
    assert_eq!(r.status(), 200);
    assert!(!pw.jar.contains_key("berth_session"));
    assert_eq!(me(&berth, &mut pw).await.status(), 401);

    // A disabled user's session stops working at once.
    let r = adm
        .put(berth.url("/api/v1/superuser/users/alice"))
        .json(&json!({"enabled": false}))
        .send()
        .await
        .expect("disable");
    assert!(r.status().is_success());
    assert_eq!(me(&berth, &mut b).await.status(), 401);
    // And signing in again is refused.
    let mut b4 = Browser::new();
    let r = sign_in(&berth, &provider, &mut b4, "alice-sub").await;
    assert_eq!(r.status(), 403);

    // The audit log has the OIDC sign-ins and the refusals.
    let logs: Value = adm
        .get(berth.url("/api/v1/superuser/logs?kind=login_success"))
        .send()
        .await
        .expect("logs")
        .json()
        .await
        .expect("json");
    let oidc_ok: Vec<&Value> = logs["logs"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|l| l["metadata"]["type"] == "oidc")
                .collect()
        })
        .unwrap_or_default();
    assert!(
        oidc_ok
            .iter()
            .any(|l| l["performer"]["name"] == "alice" && l["metadata"]["service"] == "mock"),
        "{logs}"
    );
    assert_eq!(oidc_ok.len(), 3, "alice twice, alice1 once: {logs}");
    let logs: Value = adm
        .get(berth.url("/api/v1/superuser/logs?kind=login_failure"))
        .send()
        .await
        .expect("logs")
        .json()
        .await
        .expect("json");
    let oidc_failed = logs["logs"]
        .as_array()
        .map(|a| a.iter().filter(|l| l["metadata"]["type"] == "oidc").count())
        .unwrap_or_default();
    assert_eq!(
        oidc_failed, 4,
        "tampered state, missing cookie, swapped nonce, disabled: {logs}"
    );
}
