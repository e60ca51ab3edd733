//! The authorization matrix: every registry and API operation × every kind of caller, with the
//! expected allow/deny written out as a table and asserted cell by cell against a real server.
//! Afterwards, the audit log must hold what the matrix did.

mod common;

use base64::Engine;
use common::{ADMIN_PASSWORD, ADMIN_USER, Berth};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const PW: &str = "matrix-password-1";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const B64URL: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

#[derive(Clone)]
enum Cred {
    Anonymous,
    Basic(String, String),
    /// A registry JWT used as is (expired, forged, wrongly scoped).
    Jwt(String),
}

struct Client {
    http: reqwest::Client,
    base: String,
}

struct Reply {
    status: u16,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

fn sha(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

impl Client {
    async fn send(
        &self,
        method: &str,
        path: &str,
        auth: Option<String>,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Reply {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.request(
            reqwest::Method::from_bytes(method.as_bytes()).expect("method"),
            &url,
        );
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.body(b);
        }
        let r = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let status = r.status().as_u16();
        let body = r.bytes().await.expect("body").to_vec();
        Reply { status, body }
    }

    fn basic(user: &str, pw: &str) -> String {
        format!("Basic {}", B64.encode(format!("{user}:{pw}")))
    }

    async fn api(&self, method: &str, path: &str, cred: &Cred, body: Option<Value>) -> Reply {
        let auth = match cred {
            Cred::Anonymous => None,
            Cred::Basic(u, p) => Some(Client::basic(u, p)),
            Cred::Jwt(t) => Some(format!("Bearer {t}")),
        };
        let mut headers = vec![];
        if body.is_some() {
            headers.push(("Content-Type", "application/json"));
        }
        self.send(
            method,
            path,
            auth,
            &headers,
            body.map(|b| b.to_string().into_bytes()),
        )
        .await
    }

    async fn admin(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let r = self
            .api(
                method,
                path,
                &Cred::Basic(ADMIN_USER.into(), ADMIN_PASSWORD.into()),
                body,
            )
            .await;
        assert!(
            (200..300).contains(&r.status),
            "setup {method} {path} -> {} {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        );
        r.json()
    }

    /// The status an admin call answers (for checks whose refusal is expected).
    async fn admin_status(&self, method: &str, path: &str) -> u16 {
        self.api(
            method,
            path,
            &Cred::Basic(ADMIN_USER.into(), ADMIN_PASSWORD.into()),
            None,
        )
        .await
        .status
    }

    /// A browser session of `cred` through the UI's sign-in form: the `Cookie` header a browser
    /// would send then, and the page's CSRF token; `None` if the sign-in was refused.
    async fn ui_session(&self, cred: &Cred) -> Option<(String, String)> {
        let Cred::Basic(user, pw) = cred else {
            return None;
        };
        let cookies = |r: &reqwest::Response| -> Vec<String> {
            r.headers()
                .get_all("set-cookie")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .filter_map(|v| v.split(';').next().map(str::to_string))
                .collect()
        };
        let r = self
            .http
            .get(format!("{}/signin", self.base))
            .send()
            .await
            .ok()?;
        let pre = cookies(&r).join("; ");
        let page = r.text().await.ok()?;
        let csrf = csrf_of(&page)?;
        let r = self
            .http
            .post(format!("{}/signin", self.base))
            .header("Cookie", &pre)
            .header("Origin", &self.base)
            .form(&[
                ("csrf", csrf.as_str()),
                ("username", user),
                ("password", pw),
            ])
            .send()
            .await
            .ok()?;
        let session = cookies(&r)
            .into_iter()
            .find(|c| c.starts_with("berth_session=") && c.len() > "berth_session=".len())?;
        let cookie = format!("{pre}; {session}");
        let page = self
            .http
            .get(format!("{}/repository", self.base))
            .header("Cookie", &cookie)
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        Some((cookie, csrf_of(&page)?))
    }

    /// A UI page with a session's cookie: its status and text.
    async fn ui_get(&self, cookie: &str, path: &str) -> (u16, String) {
        match self
            .http
            .get(format!("{}{path}", self.base))
            .header("Cookie", cookie)
            .send()
            .await
        {
            Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
            Err(e) => (0, e.to_string()),
        }
    }

    /// A UI form post with a session's cookie and token: its status and text.
    async fn ui_post(
        &self,
        cookie: &str,
        csrf: &str,
        path: &str,
        fields: &[(&str, &str)],
    ) -> (u16, String) {
        let mut form = vec![("csrf", csrf)];
        form.extend_from_slice(fields);
        match self
            .http
            .post(format!("{}{path}", self.base))
            .header("Cookie", cookie)
            .header("Origin", &self.base)
            .form(&form)
            .send()
            .await
        {
            Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
            Err(e) => (0, e.to_string()),
        }
    }

    /// A registry token for `scopes`, or the status of the refusal.
    async fn token(&self, cred: &Cred, scopes: &[String]) -> Result<String, u16> {
        let q: String = scopes
            .iter()
            .map(|s| format!("&scope={}", s.replace('/', "%2F").replace(':', "%3A")))
            .collect();
        let auth = match cred {
            Cred::Anonymous => None,
            Cred::Basic(u, p) => Some(Client::basic(u, p)),
            Cred::Jwt(t) => return Ok(t.clone()),
        };
        let r = self
            .send(
                "GET",
                &format!("/v2/auth?service=localhost:5000{q}"),
                auth,
                &[],
                None,
            )
            .await;
        if r.status != 200 {
            return Err(r.status);
        }
        Ok(r.json()["token"].as_str().expect("token").to_string())
    }

    /// Admin push of a blob through Basic credentials on /v2.
    async fn admin_blob(&self, repo: &str, data: &[u8]) -> String {
        let d = sha(data);
        let r = self
            .send(
                "POST",
                &format!("/v2/{repo}/blobs/uploads/?digest={d}"),
                Some(Client::basic(ADMIN_USER, ADMIN_PASSWORD)),
                &[],
                Some(data.to_vec()),
            )
            .await;
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
        d
    }

    async fn admin_manifest(&self, repo: &str, tag: &str, manifest: &[u8]) {
        let r = self
            .send(
                "PUT",
                &format!("/v2/{repo}/manifests/{tag}"),
                Some(Client::basic(ADMIN_USER, ADMIN_PASSWORD)),
                &[("Content-Type", MT)],
                Some(manifest.to_vec()),
            )
            .await;
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    }
}

const MT: &str = "application/vnd.oci.image.manifest.v1+json";

/// The value of a page's hidden CSRF field.
fn csrf_of(page: &str) -> Option<String> {
    let key = r#"name="csrf" value=""#;
    let rest = &page[page.find(key)? + key.len()..];
    Some(rest[..rest.find('"')?].to_string())
}

/// The operations (columns).
const OPS: &[&str] = &[
    "pull manifest",        // 0  GET /v2/acme/app/manifests/v1
    "pull blob",            // 1  GET /v2/acme/app/blobs/<layer>
    "list tags",            // 2  GET /v2/acme/app/tags/list
    "push blob",            // 3  POST /v2/acme/app/blobs/uploads/?digest=
    "push manifest",        // 4  PUT /v2/acme/app/manifests/t-<role>
    "delete tag",           // 5  DELETE /v2/acme/app/manifests/del-<role>
    "push new repo",        // 6  POST /v2/acme/new-<role>/blobs/uploads/
    "pull public",          // 7  GET /v2/acme/pub/manifests/v1
    "catalog shows app",    // 8  GET /v2/_catalog lists acme/app
    "api repo",             // 9  GET /api/v1/repository/acme/app
    "api set perm",         // 10 PUT /api/v1/repository/acme/app/permissions/user/bystander
    "api repo logs",        // 11 GET /api/v1/repository/acme/app/logs
    "api visibility",       // 12 POST /api/v1/repository/acme/app/changevisibility
    "api org robots",       // 13 GET /api/v1/organization/acme/robots
    "api create team",      // 14 PUT /api/v1/organization/acme/team/t<role>
    "api su users",         // 15 GET /api/v1/superuser/users/
    "api org",              // 16 GET /api/v1/organization/acme
    "api create repo",      // 17 POST /api/v1/repository
    "api public repo",      // 18 GET /api/v1/repository/acme/pub
    "metrics",              // 19 GET /metrics (superusers; or its own listener)
    "ui repo tags",         // 20 GET /repository/acme/app?tab=tags (a browser session)
    "ui delete tag",        // 21 POST /repository/acme/app/tag/uidel-<role>/delete
    "ui org robots",        // 22 GET /organization/acme?tab=robots shows the robots
    "ui who has access", // 23 GET /repository/acme/app?tab=access shows the effective permissions
    "ui set perm",       // 24 POST /repository/acme/app/settings/permission (bystander: read)
    "ui create repo",    // 25 POST /repository (acme/ui-<role>)
    "ui own settings",   // 26 GET /user/<self>?tab=settings shows the password form
    "ui other's token",  // 27 POST /user/bystander/tokens (mint a token for someone else)
    "ui repo logs",      // 28 GET /repository/acme/app?tab=logs&format=csv (the export)
    "ui superuser",      // 29 GET /superuser?tab=users
    "api aggregatelogs", // 30 GET /api/v1/repository/acme/app/aggregatelogs
    "ui bulk delete",    // 31 POST /repository/acme/app/tags/delete (tag uidel-<role>)
    "ui add policy",     // 32 POST /repository/acme/app/policies/immutability
    "ui org settings",   // 33 POST /organization/acme/settings/general
    "ui run gc",         // 34 POST /superuser/gc
    "ui applications",   // 35 GET /organization/acme?tab=applications lists the applications
    "ui search",         // 36 GET /search?q=app finds acme/app
    "ui manifest page",  // 37 GET /repository/acme/app/manifest/<v1's digest>
    "ui add tag",        // 38 POST /repository/acme/app/tag/v1/retag (name uitag-<role>)
    "ui robot page",     // 39 GET /organization/acme/robots/deployer (shows the token)
    "ui robot perm",     // 40 POST /organization/acme/robots/idle/permission (acme/pub: read)
    "ui take ownership", // 41 POST /superuser/organizations/acme/takeownership
    "ui su quotas",      // 42 GET /superuser?tab=quotas
    "ui bulk repo del",  // 43 POST /repository/delete (acme/uirm-<role>): it is gone
    "ui team settings",  // 44 POST /organization/acme/teams (team ui_<role>)
    "api notifications", // 45 GET /api/v1/repository/acme/app/notification/
    "api add notif",     // 46 POST /api/v1/repository/acme/app/notification/ (a webhook)
    "api org notifs",    // 47 GET /api/v1/organization/acme/notifications (quota events)
    "ui add notif",      // 48 POST /repository/acme/app/notifications (a webhook)
    "api my inbox",      // 49 GET /api/v1/user/notifications
    "api take owner",    // 50 POST /api/v1/superuser/takeownership/acme
    "api purge tag",     // 51 POST /api/v1/repository/acme/app/tag/v1/expire (feature off)
    "api security",      // 52 GET /api/v1/repository/acme/app/manifest/<v1>/security
    "api sbom",          // 53 GET /api/v1/repository/acme/app/manifest/<v1>/sbom (409: not indexed)
    "api store sbom", // 54 POST /api/v1/repository/acme/app/manifest/<v1>/sbom (409: not indexed)
    "api sec policy", // 55 PUT /api/v1/organization/acme/securitypolicy (blocks nothing)
    "api vuln search", // 56 GET /api/v1/vulnerabilities?package=x
    "api mirror runs", // 57 GET /api/v1/repository/acme/app/mirror/runs (none yet)
    "api changestate", // 58 PUT /api/v1/repository/acme/app/changestate (NORMAL)
    "api proxycache", // 59 GET /api/v1/organization/acme/proxycache (no cache: "")
    "api mirror create", // 60 POST /api/v1/repository/acme/app/mirror {} (400: fields required)
    "api org mirror", // 61 GET /api/v1/organization/acme/mirror (404: none)
    "api org mirror add", // 62 POST /api/v1/organization/acme/mirror {} (400: fields required)
    "api org mirror put", // 63 PUT /api/v1/organization/acme/mirror {} (404: none)
    "api org mirror del", // 64 DELETE /api/v1/organization/acme/mirror (404: none)
    "api org sync-now", // 65 POST /api/v1/organization/acme/mirror/sync-now (404: none)
    "api org sync-cancel", // 66 POST /api/v1/organization/acme/mirror/sync-cancel (404: none)
    "api org verify", // 67 POST /api/v1/organization/acme/mirror/verify (404: none)
    "api org mirror repos", // 68 GET /api/v1/organization/acme/mirror/repositories (404: none)
    "api add proxycache", // 69 POST /api/v1/organization/acme/proxycache (400: bad upstream)
    "api del proxycache", // 70 DELETE /api/v1/organization/acme/proxycache (404: no cache)
    "api validate cache", // 71 POST /api/v1/organization/acme/validateproxycache (400: bad upstream)
];

/// Expected outcome per caller: one character per operation above, Y = allowed, . = denied.
/// The UI columns (20-29, 31-44, 48) need a browser session, which only a user's password opens:
/// robots and registry JWTs have none.
///                       0         1         2         3         4         5         6         7
///                       012345678901234567890123456789012345678901234567890123456789012345678901
#[rustfmt::skip]
const MATRIX: &[(&str, &str)] = &[
    ("anonymous",        ".......Y..........Y.....................................Y..............."),
    ("outsider",         ".......Y..........Y.......Y......................Y......Y..............."),
    ("reader",           "YYY....YYY........Y.Y.....Y.........YY...........Y..YY..Y..............."),
    ("writer",           "YYYYYY.YYY........Y.YY....Y....Y....YYY..........Y..YYY.Y..............."),
    ("repoadmin",        "YYYYYY.YYYYYY.....Y.YY.YY.Y.Y.YYY...YYY......YY.YY..YYY.YYY.Y..........."),
    ("team-member",      "YYY....YYY......Y.Y.Y.....Y.........YY...........Y..YY..Y..Y............"),
    ("team-creator",     "......YY........YYY......YY......................Y......Y..Y............"),
    ("team-admin",       "YYYYYYYYYYYYYYY.YYY.YYYYYYY.Y.YYYY.YYYYYY..YYYYYYY..YYYYYYYYYYYYYYYYYYYY"),
    ("robot-write",      "YYYYYY.YY..............................................................."),
    ("robot-none",       ".......Y................................................................"),
    ("superuser",        "YYYYYYYYYYYYYYYYYYYYYYYYYYY.YYYYYYYYYYYYYYYYYYYYYYY.YYYYYYYYYYYYYYYYYYYY"),
    ("locked",           "........................................................................"),
    ("jwt-expired",      "........................................................................"),
    ("jwt-forged",       "........................................................................"),
    ("jwt-alg-none",     "........................................................................"),
    ("jwt-wrong-scope",  "........................................................................"),
];

struct World {
    layer: String,
    manifest: Vec<u8>,
    /// v1's digest in acme/app.
    digest: String,
    creds: Vec<(String, Cred)>,
}

async fn setup(c: &Client) -> World {
    for u in [
        "reader",
        "writer",
        "repoadmin",
        "outsider",
        "member",
        "creator",
        "orgadmin",
        "locked",
        "bystander",
    ] {
        c.admin(
            "POST",
            "/api/v1/superuser/users/",
            Some(json!({"username": u, "password": PW})),
        )
        .await;
    }
    c.admin(
        "POST",
        "/api/v1/organization/",
        Some(json!({"name": "acme"})),
    )
    .await;
    for (team, role, member) in [
        ("devs", "member", "member"),
        ("builders", "creator", "creator"),
        ("leads", "admin", "orgadmin"),
    ] {
        c.admin(
            "PUT",
            &format!("/api/v1/organization/acme/team/{team}"),
            Some(json!({"role": role})),
        )
        .await;
        c.admin(
            "PUT",
            &format!("/api/v1/organization/acme/team/{team}/members/{member}"),
            None,
        )
        .await;
    }
    let deployer = c
        .admin("PUT", "/api/v1/organization/acme/robots/deployer", None)
        .await;
    let idle = c
        .admin("PUT", "/api/v1/organization/acme/robots/idle", None)
        .await;

    // acme/app (private) and acme/pub (public), each with an image tagged v1.
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let layer_bytes = b"matrix layer bytes".to_vec();
    let mut manifest = Vec::new();
    let mut layer = String::new();
    for repo in ["acme/app", "acme/pub"] {
        let cd = c.admin_blob(repo, config).await;
        layer = c.admin_blob(repo, &layer_bytes).await;
        manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": MT,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": layer_bytes.len()}],
        }))
        .expect("json");
        c.admin_manifest(repo, "v1", &manifest).await;
    }
    for (role, _) in MATRIX {
        c.admin(
            "POST",
            "/api/v1/repository",
            Some(json!({"namespace": "acme", "repository": format!("uirm-{role}"), "visibility": "private"})),
        )
        .await;
        c.admin_manifest("acme/app", &format!("del-{role}"), &manifest)
            .await;
        c.admin_manifest("acme/app", &format!("uidel-{role}"), &manifest)
            .await;
    }
    c.admin(
        "POST",
        "/api/v1/repository/acme/pub/changevisibility",
        Some(json!({"visibility": "public"})),
    )
    .await;
    for (who, role) in [
        ("reader", "read"),
        ("writer", "write"),
        ("repoadmin", "admin"),
        ("acme+deployer", "write"),
    ] {
        c.admin(
            "PUT",
            &format!("/api/v1/repository/acme/app/permissions/user/{who}"),
            Some(json!({"role": role})),
        )
        .await;
    }
    c.admin(
        "PUT",
        "/api/v1/repository/acme/app/permissions/team/devs",
        Some(json!({"role": "read"})),
    )
    .await;

    // Lock "locked": LOGIN_LOCKOUT_FAILURES is 3 on this server.
    let bad = Cred::Basic("locked".into(), "wrong-password".into());
    for _ in 0..3 {
        assert_eq!(c.token(&bad, &[]).await, Err(401));
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    let user = |n: &str| Cred::Basic(n.into(), PW.into());
    let mut creds: Vec<(String, Cred)> = vec![
        ("anonymous".into(), Cred::Anonymous),
        ("outsider".into(), user("outsider")),
        ("reader".into(), user("reader")),
        ("writer".into(), user("writer")),
        ("repoadmin".into(), user("repoadmin")),
        ("team-member".into(), user("member")),
        ("team-creator".into(), user("creator")),
        ("team-admin".into(), user("orgadmin")),
        (
            "robot-write".into(),
            Cred::Basic(
                "acme+deployer".into(),
                deployer["token"].as_str().expect("token").into(),
            ),
        ),
        (
            "robot-none".into(),
            Cred::Basic(
                "acme+idle".into(),
                idle["token"].as_str().expect("token").into(),
            ),
        ),
        (
            "superuser".into(),
            Cred::Basic(ADMIN_USER.into(), ADMIN_PASSWORD.into()),
        ),
        ("locked".into(), user("locked")),
    ];

    // Tokens of the writer: one that will have expired, one tampered with, one for another repo.
    let all_scopes: Vec<String> = [
        "repository:acme/app:pull,push,delete",
        "repository:acme/pub:pull",
        "repository:acme/new-jwt-expired:pull,push",
        "registry:catalog:*",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let expired = c
        .token(&user("writer"), &all_scopes)
        .await
        .expect("writer token");
    let genuine = c
        .token(&user("writer"), &all_scopes)
        .await
        .expect("writer token");
    let forged = {
        let parts: Vec<&str> = genuine.split('.').collect();
        let mut claims: Value =
            serde_json::from_slice(&B64URL.decode(parts[1]).expect("payload")).expect("claims");
        claims["sub"] = json!("admin");
        claims["context"]["superuser"] = json!(true);
        claims["access"] = json!([
            {"type": "repository", "name": "acme/app", "actions": ["*"]},
            {"type": "repository", "name": "acme/new-jwt-forged", "actions": ["*"]},
            {"type": "repository", "name": "acme/pub", "actions": ["pull"]},
            {"type": "registry", "name": "catalog", "actions": ["*"]},
        ]);
        format!(
            "{}.{}.{}",
            parts[0],
            B64URL.encode(claims.to_string()),
            parts[2]
        )
    };
    let alg_none = {
        let parts: Vec<&str> = genuine.split('.').collect();
        let header = B64URL.encode(r#"{"alg":"none","typ":"JWT"}"#);
        format!("{header}.{}.", parts[1])
    };
    let wrong_scope = c
        .token(
            &user("writer"),
            &["repository:acme/other:pull,push".to_string()],
        )
        .await
        .expect("token");
    creds.push(("jwt-forged".into(), Cred::Jwt(forged)));
    creds.push(("jwt-alg-none".into(), Cred::Jwt(alg_none)));
    creds.push(("jwt-wrong-scope".into(), Cred::Jwt(wrong_scope)));
    creds.push(("jwt-expired".into(), Cred::Jwt(expired)));
    World {
        layer,
        digest: sha(&manifest),
        manifest,
        creds,
    }
}

/// Runs operation `op` as `role`; true when it was allowed (and did what it should).
async fn run(c: &Client, w: &World, role: &str, cred: &Cred, op: usize) -> (bool, String) {
    let registry = |scope: String| {
        let cred = cred.clone();
        async move { c.token(&cred, &[scope]).await }
    };
    let bearer = |t: String| Some(format!("Bearer {t}"));
    let outcome = |r: &Reply, ok: &[u16]| {
        (
            ok.contains(&r.status),
            format!(
                "{} {}",
                r.status,
                String::from_utf8_lossy(&r.body[..r.body.len().min(200)])
            ),
        )
    };
    macro_rules! token_or_deny {
        ($scope:expr) => {
            match registry($scope.to_string()).await {
                Ok(t) => t,
                Err(s) => return (false, format!("token refused: {s}")),
            }
        };
    }
    match op {
        0 => {
            let t = token_or_deny!("repository:acme/app:pull");
            let r = c.send("GET", "/v2/acme/app/manifests/v1", bearer(t), &[("Accept", MT)], None).await;
            outcome(&r, &[200])
        }
        1 => {
            let t = token_or_deny!("repository:acme/app:pull");
            let r = c.send("GET", &format!("/v2/acme/app/blobs/{}", w.layer), bearer(t), &[], None).await;
            outcome(&r, &[200, 307])
        }
        2 => {
            let t = token_or_deny!("repository:acme/app:pull");
            let r = c.send("GET", "/v2/acme/app/tags/list", bearer(t), &[], None).await;
            outcome(&r, &[200])
        }
        3 => {
            let t = token_or_deny!("repository:acme/app:pull,push");
            let data = format!("blob pushed by {role}").into_bytes();
            let r = c
                .send("POST", &format!("/v2/acme/app/blobs/uploads/?digest={}", sha(&data)), bearer(t), &[], Some(data))
                .await;
            outcome(&r, &[201])
        }
        4 => {
            let t = token_or_deny!("repository:acme/app:pull,push");
            let r = c
                .send("PUT", &format!("/v2/acme/app/manifests/t-{role}"), bearer(t), &[("Content-Type", MT)], Some(w.manifest.clone()))
                .await;
            outcome(&r, &[201])
        }
        5 => {
            let t = token_or_deny!("repository:acme/app:delete");
            let r = c.send("DELETE", &format!("/v2/acme/app/manifests/del-{role}"), bearer(t), &[], None).await;
            outcome(&r, &[202])
        }
        6 => {
            let repo = format!("acme/new-{role}");
            let t = token_or_deny!(format!("repository:{repo}:pull,push"));
            let r = c.send("POST", &format!("/v2/{repo}/blobs/uploads/"), bearer(t), &[], None).await;
            outcome(&r, &[202])
        }
        7 => {
            let t = token_or_deny!("repository:acme/pub:pull");
            let r = c.send("GET", "/v2/acme/pub/manifests/v1", bearer(t), &[("Accept", MT)], None).await;
            outcome(&r, &[200])
        }
        8 => {
            let t = token_or_deny!("registry:catalog:*");
            let r = c.send("GET", "/v2/_catalog", bearer(t), &[], None).await;
            let listed = r.status == 200
                && r.json()["repositories"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x == "acme/app"));
            (listed, format!("{} {}", r.status, String::from_utf8_lossy(&r.body)))
        }
        9 => outcome(&c.api("GET", "/api/v1/repository/acme/app", cred, None).await, &[200]),
        10 => outcome(
            &c.api("PUT", "/api/v1/repository/acme/app/permissions/user/bystander", cred, Some(json!({"role": "read"}))).await,
            &[200],
        ),
        11 => outcome(&c.api("GET", "/api/v1/repository/acme/app/logs", cred, None).await, &[200]),
        12 => outcome(
            &c.api("POST", "/api/v1/repository/acme/app/changevisibility", cred, Some(json!({"visibility": "private"}))).await,
            &[200],
        ),
        13 => outcome(&c.api("GET", "/api/v1/organization/acme/robots", cred, None).await, &[200]),
        14 => outcome(
            &c.api("PUT", &format!("/api/v1/organization/acme/team/t{}", role.replace('-', "_")), cred, Some(json!({"role": "member"}))).await,
            &[200],
        ),
        15 => outcome(&c.api("GET", "/api/v1/superuser/users/", cred, None).await, &[200]),
        16 => outcome(&c.api("GET", "/api/v1/organization/acme", cred, None).await, &[200]),
        17 => outcome(
            &c.api(
                "POST",
                "/api/v1/repository",
                cred,
                Some(json!({"namespace": "acme", "repository": format!("api-{role}"), "visibility": "private"})),
            )
            .await,
            &[201],
        ),
        18 => outcome(&c.api("GET", "/api/v1/repository/acme/pub", cred, None).await, &[200]),
        19 => outcome(&c.api("GET", "/metrics", cred, None).await, &[200]),
        30 => outcome(&c.api("GET", "/api/v1/repository/acme/app/aggregatelogs", cred, None).await, &[200]),
        45 => outcome(&c.api("GET", "/api/v1/repository/acme/app/notification/", cred, None).await, &[200]),
        47 => outcome(&c.api("GET", "/api/v1/organization/acme/notifications", cred, None).await, &[200]),
        49 => outcome(&c.api("GET", "/api/v1/user/notifications", cred, None).await, &[200]),
        50 => outcome(&c.api("POST", "/api/v1/superuser/takeownership/acme", cred, None).await, &[200]),
        51 => outcome(
            &c.api("POST", "/api/v1/repository/acme/app/tag/v1/expire", cred, Some(json!({"manifest_digest": w.digest, "is_alive": false}))).await,
            &[200],
        ),
        52 => outcome(
            &c.api("GET", &format!("/api/v1/repository/acme/app/manifest/{}/security", w.digest), cred, None).await,
            &[200],
        ),
        53 => outcome(
            &c.api("GET", &format!("/api/v1/repository/acme/app/manifest/{}/sbom", w.digest), cred, None).await,
            &[200, 409],
        ),
        54 => outcome(
            &c.api("POST", &format!("/api/v1/repository/acme/app/manifest/{}/sbom", w.digest), cred, None).await,
            &[201, 409],
        ),
        55 => outcome(
            &c.api(
                "PUT",
                "/api/v1/organization/acme/securitypolicy",
                cred,
                Some(json!({"min_severity": "Critical", "block_pull": false, "block_push": false})),
            )
            .await,
            &[200],
        ),
        56 => outcome(&c.api("GET", "/api/v1/vulnerabilities?package=x", cred, None).await, &[200]),
        57 => outcome(&c.api("GET", "/api/v1/repository/acme/app/mirror/runs", cred, None).await, &[200]),
        59 => outcome(&c.api("GET", "/api/v1/organization/acme/proxycache", cred, None).await, &[200]),
        60 => outcome(&c.api("POST", "/api/v1/repository/acme/app/mirror", cred, Some(json!({}))).await, &[400]),
        61 => outcome(&c.api("GET", "/api/v1/organization/acme/mirror", cred, None).await, &[404]),
        62 => outcome(&c.api("POST", "/api/v1/organization/acme/mirror", cred, Some(json!({}))).await, &[400]),
        63 => outcome(&c.api("PUT", "/api/v1/organization/acme/mirror", cred, Some(json!({}))).await, &[404]),
        64 => outcome(&c.api("DELETE", "/api/v1/organization/acme/mirror", cred, None).await, &[404]),
        65 => outcome(&c.api("POST", "/api/v1/organization/acme/mirror/sync-now", cred, None).await, &[404]),
        66 => outcome(&c.api("POST", "/api/v1/organization/acme/mirror/sync-cancel", cred, None).await, &[404]),
        67 => outcome(&c.api("POST", "/api/v1/organization/acme/mirror/verify", cred, None).await, &[404]),
        68 => outcome(&c.api("GET", "/api/v1/organization/acme/mirror/repositories", cred, None).await, &[404]),
        69 => outcome(
            &c.api("POST", "/api/v1/organization/acme/proxycache", cred, Some(json!({"upstream_registry": "bad host"}))).await,
            &[400],
        ),
        70 => outcome(&c.api("DELETE", "/api/v1/organization/acme/proxycache", cred, None).await, &[404]),
        71 => outcome(
            &c.api("POST", "/api/v1/organization/acme/validateproxycache", cred, Some(json!({"upstream_registry": "bad host"}))).await,
            &[400],
        ),
        58 => outcome(
            &c.api("PUT", "/api/v1/repository/acme/app/changestate", cred, Some(json!({"state": "NORMAL"}))).await,
            &[200],
        ),
        46 => outcome(
            &c.api(
                "POST",
                "/api/v1/repository/acme/app/notification/",
                cred,
                Some(json!({"event": "repo_push", "method": "webhook", "config": {"url": format!("https://hooks-{role}.invalid/x")}, "eventConfig": {}})),
            )
            .await,
            &[201],
        ),
        20..=29 | 31..=44 | 48 => {
            let Some((cookie, csrf)) = c.ui_session(cred).await else {
                return (false, "no browser session".into());
            };
            let (status, body) = match op {
                20 => c.ui_get(&cookie, "/repository/acme/app?tab=tags").await,
                21 => {
                    let path = format!("/repository/acme/app/tag/uidel-{role}/delete");
                    c.ui_post(&cookie, &csrf, &path, &[]).await
                }
                22 => c.ui_get(&cookie, "/organization/acme?tab=robots").await,
                23 => c.ui_get(&cookie, "/repository/acme/app?tab=access").await,
                24 => {
                    let f = [("name", "bystander"), ("kind", "user"), ("role", "read")];
                    let path = "/repository/acme/app/settings/permission";
                    c.ui_post(&cookie, &csrf, path, &f).await
                }
                25 => {
                    let name = format!("ui-{role}");
                    let f = [("namespace", "acme"), ("name", name.as_str())];
                    c.ui_post(&cookie, &csrf, "/repository", &f).await
                }
                26 => {
                    let Cred::Basic(me, _) = cred else {
                        unreachable!("a browser session is a user's")
                    };
                    c.ui_get(&cookie, &format!("/user/{me}?tab=settings")).await
                }
                27 => {
                    let f = [("title", "planted")];
                    c.ui_post(&cookie, &csrf, "/user/bystander/tokens", &f).await
                }
                28 => c.ui_get(&cookie, "/repository/acme/app?tab=logs&format=csv").await,
                29 => c.ui_get(&cookie, "/superuser?tab=users").await,
                31 => {
                    let tag = format!("uidel-{role}");
                    let f = [("tag", tag.as_str())];
                    c.ui_post(&cookie, &csrf, "/repository/acme/app/tags/delete", &f).await
                }
                32 => {
                    let f = [("pattern", "^never-matches$"), ("matches", "true")];
                    let path = "/repository/acme/app/policies/immutability";
                    c.ui_post(&cookie, &csrf, path, &f).await
                }
                33 => {
                    let f = [("email", "acme@example.com")];
                    c.ui_post(&cookie, &csrf, "/organization/acme/settings/general", &f).await
                }
                34 => c.ui_post(&cookie, &csrf, "/superuser/gc", &[]).await,
                35 => c.ui_get(&cookie, "/organization/acme?tab=applications").await,
                36 => c.ui_get(&cookie, "/search?q=app").await,
                37 => c.ui_get(&cookie, &format!("/repository/acme/app/manifest/{}", w.digest)).await,
                38 => {
                    let name = format!("uitag-{role}");
                    c.ui_post(&cookie, &csrf, "/repository/acme/app/tag/v1/retag", &[("name", name.as_str())]).await
                }
                39 => c.ui_get(&cookie, "/organization/acme/robots/deployer").await,
                40 => {
                    let f = [("repository", "pub"), ("role", "read")];
                    c.ui_post(&cookie, &csrf, "/organization/acme/robots/idle/permission", &f).await
                }
                41 => c.ui_post(&cookie, &csrf, "/superuser/organizations/acme/takeownership", &[]).await,
                42 => c.ui_get(&cookie, "/superuser?tab=quotas").await,
                43 => {
                    let repo = format!("acme/uirm-{role}");
                    let f = [("repo", repo.as_str()), ("confirm_count", "1")];
                    let (status, body) = c.ui_post(&cookie, &csrf, "/repository/delete", &f).await;
                    let gone = c.admin_status("GET", &format!("/api/v1/repository/{repo}")).await == 404;
                    (if status == 303 && gone { 303 } else { 403 }, body)
                }
                48 => {
                    let url = format!("https://ui-{role}.invalid/hook");
                    let f = [("event", "repo_push"), ("method", "webhook"), ("url", url.as_str())];
                    c.ui_post(&cookie, &csrf, "/repository/acme/app/notifications", &f).await
                }
                _ => {
                    let name = format!("ui_{}", role.replace('-', "_"));
                    let f = [("name", name.as_str()), ("role", "member")];
                    c.ui_post(&cookie, &csrf, "/organization/acme/teams", &f).await
                }
            };
            let allowed = match op {
                20 => status == 200 && body.contains(r#"href="/repository/acme/app/tag/v1""#),
                // Done: back to the tag's history, the settings, the new repository, the token,
                // the history, the policies, the organization's settings, the storage tab.
                21 | 24 | 25 | 27 | 31..=34 | 38 | 40 | 41 | 43 | 44 => status == 303,
                36 => status == 200 && body.contains(r#"href="/repository/acme/app""#),
                48 => status == 201 && body.contains("notification-secret"),
                37 => status == 200 && body.contains("Layers"),
                39 => status == 200 && body.contains(r#"id="robot-token""#),
                42 => status == 200 && body.contains("Set a quota"),
                26 => status == 200 && body.contains("Change password"),
                35 => status == 200 && body.contains("Create an application"),
                28 => status == 200 && body.starts_with("id,time,kind,performer"),
                29 => status == 200 && body.contains("Create a user"),
                22 => status == 200 && body.contains("Create a robot account"),
                _ => status == 200 && body.contains(r#"id="effective""#),
            };
            let start = body.find("<main").unwrap_or(0);
            let shown: String = body[start..].chars().take(200).collect();
            (allowed, format!("{status} {shown}"))
        }
        _ => unreachable!("no operation {op}"),
    }
}

#[tokio::test]
async fn every_caller_gets_exactly_what_the_matrix_says() {
    let b = Berth::start_with_env(&[
        ("BERTH_LOGIN_LOCKOUT_FAILURES", "3"),
        ("BERTH_LOGIN_BACKOFF_BASE_MS", "1"),
        ("BERTH_REGISTRY_TOKEN_LIFETIME_S", "2"),
        ("BERTH_FEATURE_PROXY_STORAGE", "true"),
    ]);
    let c = Client {
        http: reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
        base: b.base.clone(),
    };
    let w = setup(&c).await;
    // The writer's first token must be past its expiry (2 s + the verifier's 5 s leeway).
    tokio::time::sleep(std::time::Duration::from_secs(8)).await;

    assert_eq!(MATRIX.len(), w.creds.len(), "every caller has a row");
    let mut failures = Vec::new();
    let mut actual = String::new();
    for (role, expected) in MATRIX {
        assert_eq!(
            expected.len(),
            OPS.len(),
            "row {role} has a cell per operation"
        );
        let cred = &w
            .creds
            .iter()
            .find(|(r, _)| r == role)
            .unwrap_or_else(|| panic!("no credentials for {role}"))
            .1;
        actual.push_str(&format!("{role:16} "));
        for (op, want) in expected.chars().enumerate() {
            let (allowed, detail) = run(&c, &w, role, cred, op).await;
            actual.push(if allowed { 'Y' } else { '.' });
            if allowed != (want == 'Y') {
                failures.push(format!(
                    "{role} × {}: expected {}, got {} ({detail})",
                    OPS[op],
                    if want == 'Y' { "allow" } else { "deny" },
                    if allowed { "allow" } else { "deny" },
                ));
            }
        }
        actual.push('\n');
    }
    assert!(
        failures.is_empty(),
        "authorization matrix mismatches:\n{}\nactual matrix:\n{actual}\n--- server log\n{}",
        failures.join("\n"),
        b.log()
    );

    // The audit log recorded what the matrix did, with who did it.
    // Every page of it (the matrix records more than one page).
    let mut entries: Vec<Value> = Vec::new();
    let mut next = String::new();
    for _ in 0..50 {
        let logs = c
            .admin(
                "GET",
                &format!("/api/v1/superuser/logs?limit=1000&next_page={next}"),
                None,
            )
            .await;
        entries.extend(logs["logs"].as_array().expect("logs").iter().cloned());
        match logs["next_page"].as_str() {
            Some(n) => next = n.to_string(),
            None => break,
        }
    }
    let has = |kind: &str, performer: &str, check: &dyn Fn(&Value) -> bool| {
        entries
            .iter()
            .any(|e| e["kind"] == kind && e["performer"]["name"] == performer && check(e))
    };
    let any = |_: &Value| true;
    assert!(
        has("push_repo", "writer", &|e| e["metadata"]["reference"]
            == "t-writer"),
        "push by writer"
    );
    assert!(
        has("create_tag", "writer", &|e| e["metadata"]["tag"]
            == "t-writer"),
        "tag by writer"
    );
    assert!(
        has("delete_tag", "writer", &|e| e["metadata"]["tag"]
            == "del-writer"),
        "delete by writer"
    );
    assert!(
        has("pull_repo", "reader", &|e| e["repository"] == "acme/app"),
        "pull by reader"
    );
    assert!(has("pull_repo", "acme+deployer", &any), "pull by robot");
    assert!(
        entries.iter().any(|e| e["kind"] == "pull_repo"
            && e["performer"].is_null()
            && e["repository"] == "acme/pub"),
        "anonymous pull"
    );
    assert!(
        has("create_repo", "creator", &|e| e["repository"]
            == "acme/new-team-creator"),
        "repo created by push"
    );
    assert!(
        has("create_repo", "orgadmin", &|e| e["repository"]
            == "acme/api-team-admin"),
        "repo created by API"
    );
    assert!(
        has(
            "change_repo_permission",
            "repoadmin",
            &|e| e["metadata"]["username"] == "bystander"
        ),
        "permission change"
    );
    assert!(
        has(
            "change_repo_permission",
            ADMIN_USER,
            &|e| e["metadata"]["username"] == "reader"
        ),
        "setup permission"
    );
    assert!(
        has(
            "change_repo_permission_team",
            ADMIN_USER,
            &|e| e["metadata"]["team"] == "devs"
        ),
        "team permission"
    );
    assert!(
        has("change_repo_visibility", ADMIN_USER, &|e| e["repository"]
            == "acme/pub"),
        "visibility"
    );
    assert!(has("org_create", ADMIN_USER, &any), "org created");
    assert!(
        has("org_create_team", "orgadmin", &|e| e["metadata"]["team"]
            == "tteam_admin"),
        "team by org admin"
    );
    assert!(
        has(
            "org_add_team_member",
            ADMIN_USER,
            &|e| e["metadata"]["member"] == "orgadmin"
        ),
        "member added"
    );
    assert!(
        has("create_robot", ADMIN_USER, &|e| e["metadata"]["robot"]
            == "acme+deployer"),
        "robot created"
    );
    assert!(
        has("user_create", ADMIN_USER, &|e| e["metadata"]["username"]
            == "reader"),
        "user created"
    );
    assert!(
        has("login_success", "writer", &|e| e["metadata"]["type"]
            == "docker"),
        "login success"
    );
    assert!(has("login_failure", "locked", &any), "login failures");
    assert!(
        entries.iter().all(|e| e["datetime"].is_string()),
        "every entry has a time"
    );
    assert!(
        entries
            .iter()
            .filter(|e| e["kind"] == "login_success")
            .all(|e| e["ip"] == "127.0.0.1"),
        "logins record the caller's address"
    );
    // Nothing was recorded for the forged token's claimed identity.
    assert!(!has(
        "push_repo",
        ADMIN_USER,
        &|e| e["metadata"]["reference"] == "t-jwt-forged"
    ));
}
