//! The HTTP layer in process: the real router over a real registry (a fresh SQLite database and
//! filesystem store in a temporary directory), driven with `tower::ServiceExt::oneshot` — no
//! socket, no child process. For what a handler answers; what real clients do against a running
//! `berth` stays in `crates/berth/tests`.

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, Response, StatusCode, header};
use base64::Engine;
use berth_api::AppState;
use berth_core::auth::AuthConfig;
use berth_core::{CoreConfig, Db, Locations, Registry};
use http_body_util::BodyExt;
use sha2::Digest as _;
use std::sync::Arc;
use tower::ServiceExt;

struct App {
    _dir: tempfile::TempDir,
    router: Router,
}

const USER: &str = "alice";
const PASSWORD: &str = "correct horse battery";
/// A superuser (besides alice, who is not one).
const ROOT: &str = "root";
const ROOT_PASSWORD: &str = "root's own passphrase";

async fn app() -> App {
    app_with(false).await
}

/// A router on a fresh database: with `first_user_setup`, Quay's `FEATURE_USER_INITIALIZE` and
/// no user; else alice exists.
async fn app_with(first_user_setup: bool) -> App {
    app_config(first_user_setup, AuthConfig::default()).await
}

async fn app_config(first_user_setup: bool, config: AuthConfig) -> App {
    let dir = tempfile::tempdir().expect("tempdir");
    let uri = format!("sqlite://{}", dir.path().join("t.db").display());
    let db = Db::connect(&uri, 4).await.expect("connect");
    db.migrate().await.expect("migrate");
    let store = berth_storage::FsStore::open(dir.path().join("store"), false).expect("store");
    let registry = Registry::new(
        db,
        Locations::single("default", Arc::new(store)),
        CoreConfig::default(),
    );
    let auth = registry.auth(config).await.expect("identity and access");
    if !first_user_setup {
        auth.create_user(None, USER, Some(PASSWORD), None, false)
            .await
            .expect("create user");
        auth.create_user(None, ROOT, Some(ROOT_PASSWORD), None, true)
            .await
            .expect("create superuser");
    }
    let state = AppState {
        registry,
        metrics: None,
        redirect_blobs: false,
        auth,
        public_url: None,
        scheme: "http",
        user_initialize: first_user_setup,
        readonly: false,
        disable_pushes: false,
        direct_login: true,
        metrics_here: false,
        library: Some("library".into()),
    };
    App {
        _dir: dir,
        router: berth_api::router(state),
    }
}

fn basic() -> String {
    let raw = format!("{USER}:{PASSWORD}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

impl App {
    async fn send(
        &self,
        method: Method,
        uri: &str,
        auth: Option<&str>,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Response<Body> {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::HOST, "registry.test");
        if let Some(a) = auth {
            req = req.header(header::AUTHORIZATION, a);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Body::from(body)).expect("request");
        self.router.clone().oneshot(req).await.expect("answer")
    }

    /// A registry token for `scope`, from `/v2/auth` with the user's password.
    async fn token(&self, scope: &str) -> String {
        let r = self
            .send(
                Method::GET,
                &format!("/v2/auth?service=berth&scope={scope}"),
                Some(&basic()),
                &[],
                Vec::new(),
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        let v = json(r).await;
        let t = v["token"].as_str().expect("token in the answer");
        format!("Bearer {t}")
    }

    /// The kinds of the repository's audit log entries, newest first, as alice reads them.
    async fn log_kinds(&self, repo: &str) -> Vec<String> {
        let r = self
            .send(
                Method::GET,
                &format!("/api/v1/repository/{repo}/logs"),
                Some(&basic()),
                &[],
                Vec::new(),
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        json(r).await["logs"]
            .as_array()
            .expect("logs")
            .iter()
            .filter_map(|l| l["kind"].as_str().map(str::to_string))
            .collect()
    }

    /// Pushes a one-layer image as `repo:tag`; answers the manifest digest.
    async fn push(&self, bearer: &str, repo: &str, tag: &str) -> String {
        let config =
            br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
        self.push_with(bearer, repo, tag, config).await
    }

    /// Pushes a one-layer image with this image config as `repo:tag`; answers its digest.
    async fn push_with(&self, bearer: &str, repo: &str, tag: &str, config: &[u8]) -> String {
        let layer = format!("layer of {repo}:{tag}").into_bytes();
        for blob in [config, &layer[..]] {
            let d = sha256(blob);
            let r = self
                .send(
                    Method::POST,
                    &format!("/v2/{repo}/blobs/uploads/?digest={d}"),
                    Some(bearer),
                    &[("content-type", "application/octet-stream")],
                    blob.to_vec(),
                )
                .await;
            assert_eq!(r.status(), StatusCode::CREATED, "monolithic upload of {d}");
        }
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(config), "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha256(&layer), "size": layer.len()}],
        })
        .to_string()
        .into_bytes();
        let r = self
            .send(
                Method::PUT,
                &format!("/v2/{repo}/manifests/{tag}"),
                Some(bearer),
                &[("content-type", "application/vnd.oci.image.manifest.v1+json")],
                manifest.clone(),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        sha256(&manifest)
    }
}

async fn json(r: Response<Body>) -> serde_json::Value {
    let bytes = r.into_body().collect().await.expect("body").to_bytes();
    serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}",
            String::from_utf8_lossy(&bytes)
                .chars()
                .take(300)
                .collect::<String>()
        )
    })
}

fn header_of(r: &Response<Body>, name: &str) -> String {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

#[tokio::test]
async fn an_anonymous_ping_is_challenged_with_the_token_realm() {
    let app = app().await;
    let r = app.send(Method::GET, "/v2/", None, &[], Vec::new()).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let challenge = header_of(&r, "www-authenticate");
    assert!(
        challenge.starts_with("Bearer realm=\"http://registry.test/v2/auth\""),
        "{challenge}"
    );
    let v = json(r).await;
    assert_eq!(v["errors"][0]["code"], "UNAUTHORIZED");
}

#[tokio::test]
async fn a_push_is_served_back_and_audited_with_its_tag() {
    let app = app().await;
    let t = app.token("repository:alice/app:pull,push").await;
    let digest = app.push(&t, "alice/app", "v1").await;
    let r = app
        .send(
            Method::GET,
            "/v2/alice/app/manifests/v1",
            Some(&t),
            &[],
            Vec::new(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header_of(&r, "docker-content-digest"), digest);
    let r = app
        .send(
            Method::GET,
            "/v2/alice/app/tags/list",
            Some(&t),
            &[],
            Vec::new(),
        )
        .await;
    assert_eq!(json(r).await["tags"], serde_json::json!(["v1"]));
    // The push and the tag it created are in the audit log, written with the push.
    let kinds = app.log_kinds("alice/app").await;
    assert!(kinds.iter().any(|k| k == "push_repo"), "{kinds:?}");
    assert!(kinds.iter().any(|k| k == "create_tag"), "{kinds:?}");
    // Pushing the same manifest under the same tag again changes no tag: no second create_tag.
    app.push(&t, "alice/app", "v1").await;
    let kinds = app.log_kinds("alice/app").await;
    assert_eq!(kinds.iter().filter(|k| *k == "create_tag").count(), 1);
}

#[tokio::test]
async fn an_out_of_order_chunk_is_416_with_where_to_resume() {
    let app = app().await;
    let t = app.token("repository:alice/app:pull,push").await;
    let r = app
        .send(
            Method::POST,
            "/v2/alice/app/blobs/uploads/",
            Some(&t),
            &[],
            Vec::new(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let location = header_of(&r, "location");
    let r = app
        .send(
            Method::PATCH,
            &location,
            Some(&t),
            &[("content-range", "0-3"), ("content-length", "4")],
            b"abcd".to_vec(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let r = app
        .send(
            Method::PATCH,
            &location,
            Some(&t),
            &[("content-range", "10-13"), ("content-length", "4")],
            b"efgh".to_vec(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(header_of(&r, "range"), "0-3");
    assert_eq!(header_of(&r, "location"), location);
    let v = json(r).await;
    assert_eq!(v["errors"][0]["code"], "BLOB_UPLOAD_INVALID");
    assert_eq!(v["errors"][0]["detail"]["resume_from"], 4);
}

#[tokio::test]
async fn missing_content_is_named_by_its_own_code() {
    let app = app().await;
    let t = app.token("repository:alice/app:pull,push").await;
    app.push(&t, "alice/app", "v1").await;
    let absent = sha256(b"never pushed");
    let r = app
        .send(
            Method::GET,
            &format!("/v2/alice/app/blobs/{absent}"),
            Some(&t),
            &[],
            Vec::new(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(json(r).await["errors"][0]["code"], "BLOB_UNKNOWN");
    let r = app
        .send(
            Method::GET,
            "/v2/alice/app/manifests/nope",
            Some(&t),
            &[],
            Vec::new(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(json(r).await["errors"][0]["code"], "MANIFEST_UNKNOWN");
    // A manifest naming a blob the repository lacks is refused with what to push first.
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": absent, "size": 12},
        "layers": [],
    })
    .to_string();
    let r = app
        .send(
            Method::PUT,
            "/v2/alice/app/manifests/broken",
            Some(&t),
            &[("content-type", "application/vnd.oci.image.manifest.v1+json")],
            manifest.into_bytes(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let v = json(r).await;
    assert_eq!(v["errors"][0]["code"], "MANIFEST_BLOB_UNKNOWN");
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains(&absent)),
        "{v}"
    );
}

#[tokio::test]
async fn the_rest_api_answers_quay_shaped_errors() {
    let app = app().await;
    // Unknown endpoint: JSON 404, not axum's empty one.
    let r = app
        .send(
            Method::GET,
            "/api/v1/nothing/here",
            Some(&basic()),
            &[],
            Vec::new(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let v = json(r).await;
    assert_eq!(v["status"], 404);
    assert_eq!(v["error_type"], "not_found");
    // A name that exists already: 409 conflict with the reason.
    let r = app
        .send(
            Method::POST,
            "/api/v1/organization/",
            Some(&basic()),
            &[("content-type", "application/json")],
            br#"{"name": "alice"}"#.to_vec(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let v = json(r).await;
    assert_eq!(v["error_type"], "conflict");
    assert!(
        v["error_message"]
            .as_str()
            .is_some_and(|m| m.contains("already taken")),
        "{v}"
    );
    // Another user's namespace is not ours to list robots in.
    let r = app
        .send(
            Method::GET,
            "/api/v1/organization/nobody/robots",
            Some(&basic()),
            &[],
            Vec::new(),
        )
        .await;
    assert!(
        r.status() == StatusCode::NOT_FOUND || r.status() == StatusCode::FORBIDDEN,
        "{}",
        r.status()
    );
    // No credentials for a call that needs them: 401 with the API's challenge.
    let r = app
        .send(Method::GET, "/api/v1/user/", None, &[], Vec::new())
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(header_of(&r, "www-authenticate").starts_with("Bearer"));
}

#[tokio::test]
async fn the_catalog_lists_only_what_the_caller_may_pull() {
    let app = app().await;
    let t = app.token("repository:alice/app:pull,push").await;
    app.push(&t, "alice/app", "v1").await;
    // Alice sees her repository.
    let cat = app.token("registry:catalog:*").await;
    let r = app
        .send(Method::GET, "/v2/_catalog", Some(&cat), &[], Vec::new())
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        json(r).await["repositories"],
        serde_json::json!(["alice/app"])
    );
    // An anonymous caller, allowed to read public repositories, sees none: alice/app is private.
    let r = app
        .send(
            Method::GET,
            "/v2/auth?service=berth&scope=registry:catalog:*",
            None,
            &[],
            Vec::new(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let anon = format!(
        "Bearer {}",
        json(r).await["token"].as_str().expect("anonymous token")
    );
    let r = app
        .send(Method::GET, "/v2/_catalog", Some(&anon), &[], Vec::new())
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(json(r).await["repositories"], serde_json::json!([]));
}

// ---- the web UI ----------------------------------------------------------------------------

async fn text(r: Response<Body>) -> String {
    let bytes = r.into_body().collect().await.expect("body").to_bytes();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The `name=value` of each `Set-Cookie`.
fn cookies_of(r: &Response<Body>) -> Vec<String> {
    r.headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next().map(str::to_string))
        .collect()
}

/// The value of the form's hidden CSRF field.
fn csrf_field(page: &str) -> String {
    let at = page.find(r#"name="csrf" value=""#).expect("a csrf field");
    let rest = &page[at + r#"name="csrf" value=""#.len()..];
    rest[..rest.find('"').expect("end of value")].to_string()
}

fn form_body(fields: &[(&str, &str)]) -> Vec<u8> {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish()
        .into_bytes()
}

/// Signs alice in through the form; answers the cookie header a browser would send then.
async fn ui_sign_in(app: &App) -> String {
    ui_sign_in_as(app, USER, PASSWORD).await
}

async fn ui_sign_in_as(app: &App, user: &str, password: &str) -> String {
    let r = app
        .send(Method::GET, "/signin", None, &[], Vec::new())
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let pre = cookies_of(&r).join("; ");
    let token = csrf_field(&text(r).await);
    let r = app
        .send(
            Method::POST,
            "/signin",
            None,
            &[
                ("cookie", &pre),
                ("origin", "http://registry.test"),
                ("content-type", "application/x-www-form-urlencoded"),
            ],
            form_body(&[
                ("csrf", &token),
                ("username", user),
                ("password", password),
                ("next", "/repository"),
            ]),
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(header_of(&r, "location"), "/repository");
    let session = cookies_of(&r)
        .into_iter()
        .find(|c| c.starts_with("berth_session="))
        .expect("a session cookie");
    format!("{pre}; {session}")
}

/// A browser signed in as alice: the cookies it sends and the CSRF token its forms carry.
struct Browser<'a> {
    app: &'a App,
    cookie: String,
    csrf: String,
}

impl<'a> Browser<'a> {
    async fn sign_in(app: &'a App) -> Browser<'a> {
        Browser::sign_in_as(app, USER, PASSWORD).await
    }

    async fn sign_in_as(app: &'a App, user: &str, password: &str) -> Browser<'a> {
        let cookie = ui_sign_in_as(app, user, password).await;
        let mut b = Browser {
            app,
            cookie,
            csrf: String::new(),
        };
        b.csrf = csrf_field(&b.get("/repository").await);
        b
    }

    async fn get_response(&self, uri: &str) -> Response<Body> {
        self.app
            .send(
                Method::GET,
                uri,
                None,
                &[("cookie", &self.cookie)],
                Vec::new(),
            )
            .await
    }

    /// A page that must be there: its text.
    async fn get(&self, uri: &str) -> String {
        let r = self.get_response(uri).await;
        assert_eq!(r.status(), StatusCode::OK, "{uri}");
        text(r).await
    }

    /// A form post from this site: status, `Location` and text. `csrf` is added unless
    /// `fields` has one.
    async fn post(&self, uri: &str, fields: &[(&str, &str)]) -> (StatusCode, String, String) {
        let mut f: Vec<(&str, &str)> = fields.to_vec();
        if !f.iter().any(|(k, _)| *k == "csrf") {
            f.push(("csrf", &self.csrf));
        }
        self.post_exactly(uri, &f).await
    }

    /// A form post with exactly `fields` (no token added).
    async fn post_exactly(
        &self,
        uri: &str,
        fields: &[(&str, &str)],
    ) -> (StatusCode, String, String) {
        let r = self
            .app
            .send(
                Method::POST,
                uri,
                None,
                &[
                    ("cookie", &self.cookie),
                    ("origin", "http://registry.test"),
                    ("content-type", "application/x-www-form-urlencoded"),
                ],
                form_body(fields),
            )
            .await;
        (r.status(), header_of(&r, "location"), text(r).await)
    }
}

#[tokio::test]
async fn the_ui_signs_in_by_form_and_refuses_forged_and_foreign_posts() {
    let app = app().await;
    let r = app
        .send(Method::GET, "/signin", None, &[], Vec::new())
        .await;
    let pre = cookies_of(&r).join("; ");
    assert!(pre.starts_with("berth_csrf="), "{pre}");
    let page = text(r).await;
    assert!(
        page.contains(r#"<label for="username">Username</label>"#),
        "{page}"
    );
    let token = csrf_field(&page);
    let post = |cookie: String, origin: &'static str, fields: Vec<(&'static str, String)>| {
        let app = &app;
        async move {
            let mut h: Vec<(&str, &str)> =
                vec![("content-type", "application/x-www-form-urlencoded")];
            h.push(("cookie", &cookie));
            if !origin.is_empty() {
                h.push(("origin", origin));
            }
            let f: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            app.send(Method::POST, "/signin", None, &h, form_body(&f))
                .await
        }
    };
    let creds = |t: &str| {
        vec![
            ("csrf", t.to_string()),
            ("username", USER.to_string()),
            ("password", PASSWORD.to_string()),
        ]
    };
    // Another site's page posting the form with a stolen token: refused by origin.
    let r = post(pre.clone(), "http://evil.test", creds(&token)).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(text(r).await.contains("another site"));
    // No token, or a token made for another browser: refused.
    let r = post(pre.clone(), "http://registry.test", creds("")).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = post(
        "berth_csrf=someoneelse".into(),
        "http://registry.test",
        creds(&token),
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(
        cookies_of(&r)
            .iter()
            .all(|c| !c.starts_with("berth_session="))
    );
    let cookie = ui_sign_in(&app).await;
    let r = app
        .send(
            Method::GET,
            "/repository",
            None,
            &[("cookie", &cookie)],
            Vec::new(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = text(r).await;
    assert!(
        page.contains(
            r#"Signed in as <a href="/user/alice?tab=settings"><strong>alice</strong></a>"#
        ),
        "{page}"
    );
    // Signing out needs the token too: a cross-site form cannot sign anyone out.
    let r = app
        .send(
            Method::POST,
            "/signout",
            None,
            &[
                ("cookie", &cookie),
                ("content-type", "application/x-www-form-urlencoded"),
            ],
            form_body(&[]),
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let session_token = csrf_field(&page);
    let r = app
        .send(
            Method::POST,
            "/signout",
            None,
            &[
                ("cookie", &cookie),
                ("origin", "http://registry.test"),
                ("content-type", "application/x-www-form-urlencoded"),
            ],
            form_body(&[("csrf", &session_token)]),
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(cookies_of(&r).iter().any(|c| c == "berth_session="));

    // A wrong password says so, and keeps the username (last: it starts the login throttle).
    let mut wrong = creds(&token);
    wrong[2].1 = "not the password".into();
    let r = post(pre.clone(), "http://registry.test", wrong).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let page = text(r).await;
    assert!(
        page.contains(r#"role="alert""#) && page.contains(r#"value="alice""#),
        "{page}"
    );
}

#[tokio::test]
async fn the_tags_tab_pages_through_every_tag_with_cursors_and_hides_private_repositories() {
    let app = app().await;
    let bearer = app.token("repository:alice/many:pull,push").await;
    let digest = app.push(&bearer, "alice/many", "t000").await;
    let manifest = {
        let r = app
            .send(
                Method::GET,
                "/v2/alice/many/manifests/t000",
                Some(&bearer),
                &[("accept", "application/vnd.oci.image.manifest.v1+json")],
                Vec::new(),
            )
            .await;
        r.into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes()
            .to_vec()
    };
    for i in 1..120 {
        if i == 119 {
            // So that the last tag is strictly the newest (times are milliseconds).
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let r = app
            .send(
                Method::PUT,
                &format!("/v2/alice/many/manifests/t{i:03}"),
                Some(&bearer),
                &[("content-type", "application/vnd.oci.image.manifest.v1+json")],
                manifest.clone(),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    // Anonymous: a private repository is not found, and the page says how to see it.
    let r = app
        .send(
            Method::GET,
            "/repository/alice/many?tab=tags",
            None,
            &[],
            Vec::new(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(text(r).await.contains("/signin?next="));

    let b = Browser::sign_in(&app).await;
    let rows = |page: &str| tag_rows(page, "alice/many");
    let mut seen = Vec::new();
    let mut uri = "/repository/alice/many?tab=tags".to_string();
    let mut pages = 0;
    loop {
        let page = b.get(&uri).await;
        assert!(page.contains("120 tags"), "{page}");
        seen.extend(rows(&page));
        pages += 1;
        match next_page(&page) {
            Some(n) if pages < 10 => uri = n,
            _ => break,
        }
    }
    assert_eq!(pages, 3, "50 + 50 + 20");
    let want: Vec<String> = (0..120).map(|i| format!("t{i:03}")).collect();
    assert_eq!(seen, want, "every tag once, by name");

    let page = b.get("/repository/alice/many?tab=tags&filter=t11").await;
    assert!(page.contains("10 tags containing"), "{page}");
    assert_eq!(rows(&page).len(), 10);
    let page = b.get("/repository/alice/many?tab=tags&sort=newest").await;
    assert_eq!(rows(&page).first().map(String::as_str), Some("t119"));
    let page = b.get("/repository/alice/many/tag/t007").await;
    assert!(page.contains(&digest), "the tag page shows its digest");
    assert!(page.contains("podman pull --tls-verify=false registry.test/alice/many:t007"));
    let page = b.get("/repository").await;
    assert!(
        page.contains(r#"<a href="/repository/alice/many">alice/many</a>"#),
        "{page}"
    );

    // Delete a tag from the Tags tab, then restore it from its history.
    let (s, to, _) = b.post("/repository/alice/many/tag/t007/delete", &[]).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert_eq!(to, "/repository/alice/many?tab=history&tag=t007");
    let page = b.get("/repository/alice/many?tab=tags").await;
    assert!(page.contains("119 tags"), "{page}");
    let history = b.get("/repository/alice/many?tab=history&tag=t007").await;
    assert!(history.contains("Restore t007 to this"), "{history}");
    let (s, _, _) = b
        .post(
            "/repository/alice/many/tag/t007/restore",
            &[("digest", &digest)],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert!(
        b.get("/repository/alice/many?tab=tags")
            .await
            .contains("120 tags")
    );
    // Without the token nothing happens.
    let (s, _, _) = b
        .post_exactly("/repository/alice/many/tag/t008/delete", &[])
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(
        b.get("/repository/alice/many?tab=tags")
            .await
            .contains("120 tags")
    );
}

#[tokio::test]
async fn the_ui_creates_an_organization_a_team_and_a_robot_whose_credentials_log_in() {
    let app = app().await;
    let b = Browser::sign_in(&app).await;
    let (s, to, body) = b.post("/organization", &[("name", "shop")]).await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(to, "/organization/shop");
    assert!(
        b.get("/organization")
            .await
            .contains(r#"href="/organization/shop""#)
    );
    let page = b.get("/organization/shop?tab=teams").await;
    assert!(page.contains("owners"), "the creator's owners team: {page}");

    let (s, to, body) = b
        .post(
            "/organization/shop/teams",
            &[("name", "builders"), ("role", "creator")],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(to, "/organization/shop/teams/builders");
    let (s, to, body) = b
        .post(
            "/organization/shop/robots",
            &[("name", "ci"), ("description", "pushes")],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(to, "/organization/shop/robots/ci");
    let (s, _, body) = b
        .post(
            "/organization/shop/teams/builders/members",
            &[("member", "shop+ci")],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{body}");
    let team = b.get("/organization/shop/teams/builders").await;
    assert!(team.contains("shop+ci"), "{team}");

    let robot = b.get("/organization/shop/robots/ci").await;
    let at = robot.find(r#"<code id="robot-token">"#).expect("the token");
    let rest = &robot[at + r#"<code id="robot-token">"#.len()..];
    let secret = &rest[..rest.find('<').expect("end")];
    assert!(
        robot.contains("podman login --tls-verify=false -u &#39;shop+ci&#39;")
            || robot.contains("podman login --tls-verify=false -u 'shop+ci'"),
        "{robot}"
    );
    assert!(robot.contains("kubernetes.io/dockerconfigjson"));
    // The credentials the page shows log in to the registry.
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("shop+ci:{secret}"))
    );
    let r = app
        .send(
            Method::GET,
            "/v2/auth?service=berth&scope=repository:shop/app:pull,push",
            Some(&basic),
            &[],
            Vec::new(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    // The robot's page gives it a permission and regenerates its token.
    let (s, _, body) = b
        .post("/repository", &[("namespace", "shop"), ("name", "app")])
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{body}");
    let (s, to, body) = b
        .post(
            "/organization/shop/robots/ci/permission",
            &[("repository", "app"), ("role", "write")],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(to, "/organization/shop/robots/ci");
    let robot = b.get(&to).await;
    assert!(
        robot.contains(r#"<a href="/repository/shop/app">shop/app</a></th><td>write"#),
        "{robot}"
    );
    let (s, _, _) = b.post("/organization/shop/robots/ci/regenerate", &[]).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let r = app
        .send(
            Method::GET,
            "/v2/auth?service=berth&scope=repository:shop/app:pull,push",
            Some(&basic),
            &[],
            Vec::new(),
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "the old token is dead"
    );
    // An OAuth application: created, its page shows the client ID and secret, deleted.
    let (s, to, body) = b
        .post(
            "/organization/shop/applications",
            &[
                ("name", "deployer"),
                ("redirect_uri", "https://ci.example.com/cb"),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{body}");
    assert!(to.starts_with("/organization/shop/applications/"), "{to}");
    let app_page = b.get(&to).await;
    assert!(app_page.contains(r#"<code id="app-secret">"#), "{app_page}");
    let list = b.get("/organization/shop?tab=applications").await;
    assert!(list.contains("https://ci.example.com/cb"), "{list}");
    let (s, _, _) = b.post(&format!("{to}/delete"), &[]).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert!(
        b.get("/organization/shop?tab=applications")
            .await
            .contains("No OAuth applications")
    );
    // A team name that is not valid says why.
    let (s, _, body) = b
        .post("/organization/shop/teams", &[("name", "no spaces")])
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(body.contains("invalid team name"), "{body}");
}

/// A registry login with Basic credentials: its status.
async fn v2_login(app: &App, user: &str, secret: &str) -> StatusCode {
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{secret}"))
    );
    app.send(
        Method::GET,
        "/v2/auth?service=berth&scope=repository:alice/app:pull",
        Some(&basic),
        &[],
        Vec::new(),
    )
    .await
    .status()
}

#[tokio::test]
async fn account_settings_change_the_password_only_with_the_current_one_and_mint_app_tokens() {
    let app = app().await;
    let b = Browser::sign_in(&app).await;
    let page = b.get("/user/alice?tab=settings").await;
    assert!(
        page.contains("Change password") && page.contains("App-specific tokens"),
        "{page}"
    );
    let new = "a brand new passphrase";
    let (s, _, body) = b
        .post(
            "/user/alice/password",
            &[
                ("current", PASSWORD),
                ("password", new),
                ("confirm", "typo"),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(v2_login(&app, USER, PASSWORD).await, StatusCode::OK);
    let (s, to, body) = b
        .post(
            "/user/alice/password",
            &[("current", PASSWORD), ("password", new), ("confirm", new)],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(to, "/user/alice?tab=settings");
    assert_eq!(v2_login(&app, USER, new).await, StatusCode::OK);

    // An app-specific token: shown with its login line, it logs in until it is revoked.
    let (s, to, body) = b.post("/user/alice/tokens", &[("title", "laptop")]).await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{body}");
    assert!(to.starts_with("/user/alice/tokens/"), "{to}");
    let page = b.get(&to).await;
    let at = page.find(r#"<code id="app-token">"#).expect("the token");
    let rest = &page[at + r#"<code id="app-token">"#.len()..];
    let secret = rest[..rest.find('<').expect("end")].to_string();
    assert!(
        page.contains(&format!(
            "podman login --tls-verify=false -u &#39;alice&#39; -p &#39;{secret}&#39; registry.test"
        )) || page.contains(&format!(
            "podman login --tls-verify=false -u 'alice' -p '{secret}' registry.test"
        )),
        "{page}"
    );
    assert_eq!(v2_login(&app, USER, &secret).await, StatusCode::OK);
    let settings = b.get("/user/alice?tab=settings").await;
    assert!(settings.contains("Revoke laptop"), "{settings}");
    let uuid = to.rsplit('/').next().expect("uuid");
    let (s, _, _) = b
        .post(&format!("/user/alice/tokens/{uuid}/revoke"), &[])
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert_eq!(
        v2_login(&app, USER, &secret).await,
        StatusCode::UNAUTHORIZED
    );

    // Another user's settings are neither shown nor changed.
    let (s, _, _) = b
        .post("/user/bob/email", &[("email", "x@example.com")])
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let other = b.get_response("/user/bob/tokens/whatever").await;
    assert_eq!(other.status(), StatusCode::NOT_FOUND);

    // A wrong current password changes nothing. The check is a login, so it waits out the
    // throttle the revoked token's failed login started (its first delay is one second).
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let (s, _, body) = b
        .post(
            "/user/alice/password",
            &[
                ("current", "not it at all"),
                ("password", new),
                ("confirm", new),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("current password is not right"), "{body}");
}

#[tokio::test]
async fn first_user_setup_creates_a_superuser_once_and_signs_it_in() {
    let app = app_with(true).await;
    let r = app
        .send(Method::GET, "/signin", None, &[], Vec::new())
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(header_of(&r, "location"), "/setup");
    let r = app.send(Method::GET, "/setup", None, &[], Vec::new()).await;
    assert_eq!(r.status(), StatusCode::OK);
    let pre = cookies_of(&r).join("; ");
    let token = csrf_field(&text(r).await);
    let post = |fields: Vec<(&'static str, &'static str)>| {
        let (app, pre, token) = (&app, pre.clone(), token.clone());
        async move {
            let mut f: Vec<(&str, &str)> = fields;
            f.push(("csrf", &token));
            app.send(
                Method::POST,
                "/setup",
                None,
                &[
                    ("cookie", &pre),
                    ("origin", "http://registry.test"),
                    ("content-type", "application/x-www-form-urlencoded"),
                ],
                form_body(&f),
            )
            .await
        }
    };
    let pw = "first superuser pw";
    let r = post(vec![
        ("username", "root"),
        ("password", pw),
        ("confirm", "other"),
    ])
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = post(vec![
        ("username", "root"),
        ("password", pw),
        ("confirm", pw),
    ])
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(header_of(&r, "location"), "/repository");
    let session = cookies_of(&r)
        .into_iter()
        .find(|c| c.starts_with("berth_session="))
        .expect("signed in");
    let r = app
        .send(
            Method::GET,
            "/user/root?tab=settings",
            None,
            &[("cookie", &format!("{pre}; {session}"))],
            Vec::new(),
        )
        .await;
    assert!(text(r).await.contains("superuser"));
    // Once a user exists the page is gone and a second bootstrap is refused.
    let r = app.send(Method::GET, "/setup", None, &[], Vec::new()).await;
    assert_eq!(header_of(&r, "location"), "/signin");
    let r = post(vec![
        ("username", "mallory"),
        ("password", pw),
        ("confirm", pw),
    ])
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(text(r).await.contains("already has users"));
    assert_eq!(
        v2_login(&app, "mallory", pw).await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_repository_log_shows_its_entries_per_day_and_exports_them() {
    let app = app().await;
    let bearer = app.token("repository:alice/app:pull,push").await;
    app.push(&bearer, "alice/app", "v1").await;
    let b = Browser::sign_in(&app).await;
    let page = b.get("/repository/alice/app?tab=logs").await;
    assert!(
        page.contains("<svg") && page.contains("Log entries per day"),
        "{page}"
    );
    assert!(page.contains("create_repo"), "{page}");
    assert!(page.contains("push_repo"), "{page}");
    let filtered = b
        .get("/repository/alice/app?tab=logs&kind=create_repo")
        .await;
    assert!(filtered.contains("1 entry from"), "{filtered}");
    assert!(!filtered.contains("<code>push_repo</code>"), "{filtered}");

    let r = b
        .get_response("/repository/alice/app?tab=logs&format=csv")
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(header_of(&r, "content-type").starts_with("text/csv"));
    assert!(header_of(&r, "content-disposition").starts_with("attachment"));
    let csv = text(r).await;
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("id,time,kind,performer,performer_kind,namespace,repository,ip,metadata")
    );
    assert!(
        csv.lines().any(|l| l.contains(",push_repo,alice,")),
        "{csv}"
    );
    let jsonl = text(
        b.get_response("/repository/alice/app?tab=logs&format=jsonl")
            .await,
    )
    .await;
    let kinds: Vec<String> = jsonl
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("a JSON line");
            v["kind"].as_str().expect("kind").to_string()
        })
        .collect();
    assert!(kinds.contains(&"create_repo".to_string()), "{kinds:?}");
    assert_eq!(kinds.len(), csv.lines().count() - 1, "the same entries");

    // Quay's aggregated logs count the same entries.
    let r = app
        .send(
            Method::GET,
            "/api/v1/repository/alice/app/aggregatelogs",
            Some(&basic()),
            &[],
            Vec::new(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let v = json(r).await;
    let counted: i64 = v["aggregated"]
        .as_array()
        .expect("aggregated")
        .iter()
        .map(|c| c["count"].as_i64().expect("count"))
        .sum();
    assert_eq!(counted as usize, kinds.len(), "{v}");

    let r = b
        .get_response("/repository/alice/app?tab=logs&from=yesterday")
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(text(r).await.contains("is not a date"));
}

#[tokio::test]
async fn the_superuser_panel_manages_users_but_not_its_own_lockout() {
    let app = app().await;
    let b = Browser::sign_in(&app).await;
    let r = b.get_response("/superuser").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "alice is no superuser");
    let (s, _, _) = b.post("/superuser/gc", &[]).await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    let root = Browser::sign_in_as(&app, ROOT, ROOT_PASSWORD).await;
    let page = root.get("/superuser").await;
    assert!(
        page.contains("Disable alice") && page.contains("Create a user"),
        "{page}"
    );
    assert!(
        !page.contains("Disable root"),
        "no button shuts oneself out: {page}"
    );
    let (s, _, body) = root.post("/superuser/users/root/disable", &[]).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("ask another superuser"), "{body}");
    let (s, _, _) = root.post("/superuser/users/root/delete", &[]).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    let (s, to, _) = root.post("/superuser/users/alice/disable", &[]).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert_eq!(to, "/superuser?tab=users");
    assert_eq!(
        v2_login(&app, USER, PASSWORD).await,
        StatusCode::UNAUTHORIZED
    );
    assert!(root.get("/superuser").await.contains("Enable alice"));
    let (s, _, _) = root.post("/superuser/users/alice/enable", &[]).await;
    assert_eq!(s, StatusCode::SEE_OTHER);

    let (s, _, body) = root
        .post("/superuser/users/alice/password", &[("password", "short")])
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    let (s, _, _) = root
        .post(
            "/superuser/users/alice/password",
            &[("password", "reset by root")],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert_eq!(v2_login(&app, USER, "reset by root").await, StatusCode::OK);
    let (s, _, body) = root
        .post(
            "/superuser/users",
            &[("username", "carol"), ("password", "carol's password")],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(
        v2_login(&app, "carol", "carol's password").await,
        StatusCode::OK
    );

    let (s, to, _) = root.post("/superuser/gc", &[]).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let storage = root.get(&to).await;
    assert!(storage.contains("Runs</dt><dd>1<"), "{storage}");
    assert!(
        storage.contains("Database</dt><dd><span class=\"yes\">ok"),
        "{storage}"
    );
    let logs = root.get("/superuser?tab=logs&kind=gc_run").await;
    assert!(logs.contains("1 entry from"), "{logs}");
}

#[tokio::test]
async fn a_name_filter_matches_underscores_literally() {
    let app = app().await;
    let bearer = app.token("repository:alice/app:pull,push").await;
    for tag in ["v1_2", "v1x2", "v1-2"] {
        app.push(&bearer, "alice/app", tag).await;
    }
    let b = Browser::sign_in(&app).await;
    let page = b.get("/repository/alice/app?tab=tags&filter=v1_2").await;
    assert!(page.contains("1 tag containing"), "{page}");
    assert!(page.contains("/tag/v1_2\""), "{page}");
    let page = b.get("/repository/alice/app?tab=tags&filter=1").await;
    assert!(page.contains("3 tags containing"), "{page}");
    let page = b.get("/repository?filter=alice/a_p").await;
    assert!(page.contains("No repository you may see matches"), "{page}");
}

#[tokio::test]
async fn bulk_deletion_previews_what_goes_and_what_immutability_keeps() {
    let app = app().await;
    let bearer = app.token("repository:alice/bulk:pull,push").await;
    for i in 0..24 {
        app.push(&bearer, "alice/bulk", &format!("a{i:02}")).await;
    }
    let b = Browser::sign_in(&app).await;
    // Freeze one tag from its page.
    let (s, to, body) = b
        .post(
            "/repository/alice/bulk/tag/a05/immutable",
            &[("immutable", "true")],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(to, "/repository/alice/bulk/tag/a05");
    assert!(b.get(&to).await.contains("Make mutable"));

    let page = b
        .get("/repository/alice/bulk?tab=tags&filter=a0&confirm=delete&all=1")
        .await;
    assert!(page.contains("Delete 9 tags?"), "{page}");
    assert!(page.contains("1 immutable tag stays"), "{page}");
    assert!(page.contains("restorable"), "{page}");
    assert!(page.contains("garbage collection frees <strong>"), "{page}");
    assert!(
        !page.contains("frees <strong>0 B"),
        "their own layers: {page}"
    );
    assert!(
        b.get("/repository/alice/bulk?tab=tags")
            .await
            .contains("24 tags"),
        "a preview changes nothing"
    );
    let (s, to, body) = b
        .post(
            "/repository/alice/bulk/tags/delete",
            &[("all", "1"), ("filter", "a0")],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(to, "/repository/alice/bulk?tab=history");
    assert!(
        b.get("/repository/alice/bulk?tab=tags")
            .await
            .contains("15 tags")
    );
    let history = b.get(&to).await;
    assert!(history.contains("Restore a01 to this"), "{history}");

    // Selected tags: only those.
    let page = b
        .get("/repository/alice/bulk?tab=tags&confirm=delete&tag=a10&tag=a11")
        .await;
    assert!(page.contains("Delete 2 tags?"), "{page}");
    let (s, _, _) = b
        .post(
            "/repository/alice/bulk/tags/delete",
            &[("tag", "a10"), ("tag", "a11")],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert!(
        b.get("/repository/alice/bulk?tab=tags")
            .await
            .contains("13 tags")
    );
    let logs = b
        .get("/repository/alice/bulk?tab=logs&kind=delete_tag")
        .await;
    assert!(
        logs.contains("11 entries from"),
        "one entry per tag: {logs}"
    );

    // Another tag on a manifest, and an expiry set and cleared from the tag page.
    let (s, to, _) = b
        .post(
            "/repository/alice/bulk/tag/a20/retag",
            &[("name", "stable")],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert_eq!(to, "/repository/alice/bulk/tag/stable");
    let a20 = b.get("/repository/alice/bulk/tag/a20").await;
    let stable = b.get(&to).await;
    let digest_of = |p: &str| {
        let at = p.find("<dt>Digest</dt><dd><code>").expect("digest") + 25;
        p[at..at + 71].to_string()
    };
    assert_eq!(digest_of(&a20), digest_of(&stable));
    let tomorrow = berth_core::now_ms() + 2 * 86_400_000;
    let day = humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(tomorrow as u64),
    )
    .to_string()[..10]
        .to_string();
    let (s, _, body) = b
        .post(
            "/repository/alice/bulk/tag/stable/expiry",
            &[("expires", &day)],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{body}");
    assert!(
        b.get("/repository/alice/bulk/tag/stable")
            .await
            .contains(&format!("{day}T00:00:00Z"))
    );
    let (s, _, _) = b
        .post("/repository/alice/bulk/tag/stable/expiry", &[])
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert!(
        b.get("/repository/alice/bulk/tag/stable")
            .await
            .contains("<dt>Expires</dt><dd>never")
    );
    let (s, _, body) = b
        .post(
            "/repository/alice/bulk/tag/stable/expiry",
            &[("expires", "2001-01-01")],
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn search_finds_repositories_tags_and_digests_only_where_the_caller_may_read() {
    let app = app().await;
    let bearer = app.token("repository:alice/webapp:pull,push").await;
    let digest = app.push(&bearer, "alice/webapp", "release-7").await;
    // A referrer (an SBOM) of that image.
    let empty = b"{}";
    let r = app
        .send(
            Method::POST,
            &format!("/v2/alice/webapp/blobs/uploads/?digest={}", sha256(empty)),
            Some(&bearer),
            &[("content-type", "application/octet-stream")],
            empty.to_vec(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let sbom = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/spdx+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": sha256(empty), "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.empty.v1+json", "digest": sha256(empty), "size": 2}],
        "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": 1},
    })
    .to_string()
    .into_bytes();
    let sbom_digest = sha256(&sbom);
    let r = app
        .send(
            Method::PUT,
            &format!("/v2/alice/webapp/manifests/{sbom_digest}"),
            Some(&bearer),
            &[("content-type", "application/vnd.oci.image.manifest.v1+json")],
            sbom,
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);

    let b = Browser::sign_in(&app).await;
    let page = b.get("/search?q=release").await;
    assert!(
        page.contains(r#"href="/repository/alice/webapp/tag/release-7""#),
        "{page}"
    );
    let page = b.get("/search?q=webapp").await;
    assert!(
        page.contains(r#"href="/repository/alice/webapp""#),
        "{page}"
    );
    let hex = &digest["sha256:".len().."sha256:".len() + 12];
    let page = b.get(&format!("/search?q={hex}")).await;
    let link = format!(r#"href="/repository/alice/webapp/manifest/{digest}""#);
    assert!(page.contains(&link), "{page}");
    let page = b.get("/search?q=ali").await;
    assert!(page.contains(r#"href="/user/alice""#), "{page}");
    // Anonymous: the private repository is not found by any of its names.
    for q in ["release", "webapp", hex] {
        let r = app
            .send(
                Method::GET,
                &format!("/search?q={q}"),
                None,
                &[],
                Vec::new(),
            )
            .await;
        let page = text(r).await;
        assert!(page.contains("Nothing you may see matches"), "{q}: {page}");
    }

    // The manifest page shows its layers and the SBOM under it; the tag page what deletion frees.
    let page = b
        .get(&format!("/repository/alice/webapp/manifest/{digest}"))
        .await;
    assert!(
        page.contains("Layers") && page.contains("application/spdx+json"),
        "{page}"
    );
    assert!(page.contains(&format!("/repository/alice/webapp/manifest/{sbom_digest}")));
    let page = b.get("/repository/alice/webapp/tag/release-7").await;
    assert!(page.contains("<dt>If deleted</dt><dd>frees "), "{page}");
    assert!(
        !page.contains("frees 0 B"),
        "its own config and layer: {page}"
    );
    let (s, _, _) = b
        .post(
            "/repository/alice/webapp/tag/release-7/retag",
            &[("name", "latest")],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let page = b.get("/repository/alice/webapp/tag/release-7").await;
    assert!(
        page.contains("frees nothing: 1 other tag points at this manifest"),
        "{page}"
    );
    // The list says what each repository stores.
    let list = b.get("/repository").await;
    let row = &list[list
        .find(r#"<a href="/repository/alice/webapp">"#)
        .expect("row")..];
    let row = &row[..row.find("</tr>").expect("row end")];
    assert!(
        row.contains(" B</td>") && !row.contains("<td>0 B</td>"),
        "{row}"
    );
}

#[tokio::test]
async fn policy_forms_preview_what_they_would_protect_and_prune_before_saving() {
    let app = app().await;
    let bearer = app.token("repository:alice/pol:pull,push").await;
    for tag in ["v1.0.0", "v1.0.1", "dev-1", "dev-2", "dev-3"] {
        app.push(&bearer, "alice/pol", tag).await;
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    let b = Browser::sign_in(&app).await;
    let page = b
        .get("/repository/alice/pol?tab=policies&preview=immutability&pattern=%5Ev")
        .await;
    assert!(
        page.contains("Protects <strong>2</strong> of 5 live tags"),
        "{page}"
    );
    // What htmx asks as you type: only the preview.
    let r = app
        .send(
            Method::GET,
            "/repository/alice/pol?tab=policies&preview=immutability&pattern=dev",
            None,
            &[("cookie", &b.cookie), ("hx-request", "true")],
            Vec::new(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let frag = text(r).await;
    assert!(
        !frag.contains("<html") && frag.contains("Protects <strong>3</strong> of 5"),
        "{frag}"
    );
    let page = b
        .get("/repository/alice/pol?tab=policies&preview=immutability&pattern=%5B")
        .await;
    assert!(page.contains("not a regular expression"), "{page}");

    let (s, to, body) = b
        .post(
            "/repository/alice/pol/policies/immutability",
            &[("pattern", "^v"), ("matches", "true")],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(to, "/repository/alice/pol?tab=policies");
    let page = b.get(&to).await;
    assert!(page.contains("Remove policy ^v"), "{page}");
    // Keep the newest dev tag: the two older ones would go; the immutable v tags never.
    let page = b
        .get("/repository/alice/pol?tab=policies&preview=autoprune&method=number_of_tags&value=1")
        .await;
    assert!(
        page.contains("Would delete <strong>2</strong> tags now"),
        "{page}"
    );
    assert!(
        page.contains("alice/pol:dev-1") && page.contains("alice/pol:dev-2"),
        "{page}"
    );
    assert!(
        b.get("/repository/alice/pol?tab=tags")
            .await
            .contains("5 tags"),
        "a preview deletes nothing"
    );
    let (s, _, body) = b
        .post(
            "/repository/alice/pol/policies/autoprune",
            &[("method", "number_of_tags"), ("value", "0")],
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    let (s, _, _) = b
        .post(
            "/repository/alice/pol/policies/autoprune",
            &[("method", "creation_date"), ("value", "30d")],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let page = b.get("/repository/alice/pol?tab=policies").await;
    let uuid_at = page
        .find("/repository/alice/pol/policies/immutability/")
        .expect("the policy's remove form");
    let rest = &page[uuid_at + "/repository/alice/pol/policies/immutability/".len()..];
    let uuid = &rest[..rest.find('/').expect("uuid end")];
    let (s, _, _) = b
        .post(
            &format!("/repository/alice/pol/policies/immutability/{uuid}/delete"),
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert!(
        !b.get("/repository/alice/pol?tab=policies")
            .await
            .contains("Remove policy ^v")
    );
}

#[tokio::test]
async fn organization_settings_set_the_window_and_default_permissions_that_new_repositories_get() {
    let app = app().await;
    let b = Browser::sign_in(&app).await;
    let (s, _, _) = b.post("/organization", &[("name", "acme")]).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let (s, _, _) = b
        .post(
            "/organization/acme/teams",
            &[("name", "devs"), ("role", "member")],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let page = b.get("/organization/acme?tab=settings").await;
    assert!(
        page.contains("Default permissions") && page.contains("No quota"),
        "{page}"
    );
    let (s, to, body) = b
        .post(
            "/organization/acme/settings/general",
            &[("email", "ops@acme.test"), ("tag_expiration_s", "604800")],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(to, "/organization/acme?tab=settings");
    let page = b.get(&to).await;
    assert!(
        page.contains(r#"<option value="604800" selected>7days</option>"#),
        "{page}"
    );
    let (s, _, body) = b
        .post(
            "/organization/acme/settings/general",
            &[("tag_expiration_s", "12345")],
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");

    let (s, _, body) = b
        .post(
            "/organization/acme/settings/defaults",
            &[("kind", "team"), ("name", "devs"), ("role", "write")],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{body}");
    assert!(
        b.get("/organization/acme?tab=settings")
            .await
            .contains("Remove default for devs (team)")
    );
    // A repository created now gets it, and "who has access" says where it came from.
    let (s, _, body) = b
        .post("/repository", &[("namespace", "acme"), ("name", "svc")])
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{body}");
    let page = b.get("/repository/acme/svc?tab=settings").await;
    assert!(page.contains("Remove devs"), "{page}");
    let (s, _, _) = b
        .post(
            "/organization/acme/teams/devs/members",
            &[("member", "root")],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let access = b.get("/repository/acme/svc?tab=access").await;
    assert!(
        access.contains("member of team devs, which has write, from default permission"),
        "{access}"
    );
}

#[tokio::test]
async fn a_tags_timeline_shows_what_changed_between_two_positions() {
    let app = app().await;
    let bearer = app.token("repository:alice/app:pull,push").await;
    let old = app.push(&bearer, "alice/app", "v1").await;
    let new = app.push(&bearer, "alice/app", "next").await;
    let b = Browser::sign_in(&app).await;
    // Move v1 onto next's manifest (Quay's "add tag" on an existing name moves it).
    let (s, _, body) = b
        .post("/repository/alice/app/tag/next/retag", &[("name", "v1")])
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{body}");
    let page = b.get("/repository/alice/app?tab=history&tag=v1").await;
    let at = page.find("Changes to ").expect("a link to the change");
    let head = &page[..at];
    let href = &head[head.rfind("href=\"").expect("href") + 6..];
    let href = href[..href.find('"').expect("end")].replace("&amp;", "&");
    assert!(
        href.contains(&format!("from={}", old.replace(':', "%3A"))),
        "{href}"
    );
    assert!(
        href.contains(&format!("to={}", new.replace(':', "%3A"))),
        "{href}"
    );
    let diff = b.get(&href).await;
    let layer = |tag: &str| sha256(format!("layer of alice/app:{tag}").as_bytes());
    assert!(
        diff.contains(&format!("+ <code>{}</code>", layer("next"))),
        "{diff}"
    );
    assert!(
        diff.contains(&format!("− <code>{}</code>", layer("v1"))),
        "{diff}"
    );
    let same = b
        .get(&format!(
            "/repository/alice/app?tab=history&tag=v1&from={new}&to={new}"
        ))
        .await;
    assert!(
        same.contains("The same layers, platforms and labels."),
        "{same}"
    );
}

#[tokio::test]
async fn the_repository_list_sorts_by_last_push_and_filters_by_visibility_with_cursors() {
    let app = app().await;
    let bearer = app.token("repository:alice/r1:pull,push").await;
    app.push(&bearer, "alice/r1", "v1").await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let bearer = app.token("repository:alice/r2:pull,push").await;
    app.push(&bearer, "alice/r2", "v1").await;
    let b = Browser::sign_in(&app).await;
    let (s, _, _) = b
        .post("/repository", &[("namespace", "alice"), ("name", "r3")])
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let (s, _, _) = b
        .post(
            "/repository/alice/r1/settings/visibility",
            &[("visibility", "public")],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let order = |page: &str| -> Vec<String> {
        page.split(r#"<td><a href="/repository/"#)
            .skip(1)
            .filter_map(|s| s.split('"').next().map(str::to_string))
            .collect()
    };
    let page = b.get("/repository?namespace=alice&sort=pushed").await;
    assert_eq!(
        order(&page),
        ["alice/r2", "alice/r1", "alice/r3"],
        "never pushed last"
    );
    assert_eq!(
        order(&b.get("/repository?namespace=alice").await),
        ["alice/r1", "alice/r2", "alice/r3"]
    );
    assert_eq!(
        order(&b.get("/repository?namespace=alice&visibility=public").await),
        ["alice/r1"]
    );
    assert_eq!(
        order(
            &b.get("/repository?namespace=alice&visibility=private&sort=pushed")
                .await
        ),
        ["alice/r2", "alice/r3"]
    );
    // A newest-first cursor is `PUSHMS:NAME`: after r2's, r1 and r3 follow.
    let r2 = &page[page.find("alice/r2").expect("r2")..];
    let at = r2.find("datetime=\"").expect("push time") + 10;
    let when = &r2[at..at + 20];
    let ms = humantime::parse_rfc3339(when)
        .expect("rfc3339")
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64
        * 1000;
    // The page shows seconds; a cursor a second later than r2's push starts at r2 itself.
    let next = b
        .get(&format!(
            "/repository?namespace=alice&sort=pushed&after={}%3Aalice%2Fr2",
            ms + 999
        ))
        .await;
    assert_eq!(order(&next)[..2], ["alice/r2", "alice/r1"]);
    let r = b
        .get_response("/repository?namespace=alice&sort=pushed&after=garbage")
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_tags_tab_filters_by_regex_and_label_sorts_by_version_and_shows_platforms() {
    let app = app().await;
    let bearer = app.token("repository:alice/ver:pull,push").await;
    let labelled = br#"{"architecture":"arm64","os":"linux","config":{"Labels":{"team":"web"}},"rootfs":{"type":"layers","diff_ids":[]}}"#;
    let arm = app.push_with(&bearer, "alice/ver", "v1.9", labelled).await;
    let amd = app.push(&bearer, "alice/ver", "v1.10").await;
    for tag in ["v1.10.1", "v1.10.1-rc1", "latest"] {
        app.push(&bearer, "alice/ver", tag).await;
    }
    // 1.0.0 .. 1.0.54: more than a page, so the version order pages with its cursor.
    for i in 0..55 {
        app.push(&bearer, "alice/ver", &format!("1.0.{i}")).await;
    }
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": amd, "size": 1, "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": arm, "size": 1, "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
        ],
    });
    // The children's sizes are their real ones for the registry to accept the index.
    let mut index = index;
    for (i, d) in [&amd, &arm].into_iter().enumerate() {
        let r = app
            .send(
                Method::HEAD,
                &format!("/v2/alice/ver/manifests/{d}"),
                Some(&bearer),
                &[("accept", "application/vnd.oci.image.manifest.v1+json")],
                Vec::new(),
            )
            .await;
        let len: i64 = r.headers()[header::CONTENT_LENGTH]
            .to_str()
            .expect("length")
            .parse()
            .expect("number");
        index["manifests"][i]["size"] = len.into();
    }
    let r = app
        .send(
            Method::PUT,
            "/v2/alice/ver/manifests/multi",
            Some(&bearer),
            &[("content-type", "application/vnd.oci.image.index.v1+json")],
            index.to_string().into_bytes(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);

    let b = Browser::sign_in(&app).await;
    let rows = |page: &str| tag_rows(page, "alice/ver");

    // Version order, highest first, across pages; names that are not versions last.
    let mut seen = Vec::new();
    let mut uri = "/repository/alice/ver?tab=tags&sort=version".to_string();
    for _ in 0..5 {
        let page = b.get(&uri).await;
        assert!(page.contains("61 tags"), "{page}");
        seen.extend(rows(&page));
        match next_page(&page) {
            Some(n) => {
                assert!(
                    n.contains("sort=version"),
                    "the order stays in the URL: {n}"
                );
                uri = n
            }
            None => break,
        }
    }
    let mut want: Vec<String> = ["v1.10.1", "v1.10.1-rc1", "v1.10", "v1.9"]
        .map(String::from)
        .to_vec();
    want.extend((0..55).rev().map(|i| format!("1.0.{i}")));
    want.extend(["latest", "multi"].map(String::from));
    assert_eq!(seen, want);

    // A regular expression, with the count and a bulk selection that matches the same tags.
    let page = b
        .get("/repository/alice/ver?tab=tags&regex=%5Ev1%5C.10")
        .await;
    assert!(page.contains("3 tags matching"), "{page}");
    assert_eq!(rows(&page), ["v1.10", "v1.10.1", "v1.10.1-rc1"]);
    let page = b
        .get("/repository/alice/ver?tab=tags&regex=%5Ev1%5C.10&confirm=delete&all=1")
        .await;
    assert!(page.contains("Delete 3 tags?"), "{page}");
    let r = b
        .get_response("/repository/alice/ver?tab=tags&regex=%28")
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(text(r).await.contains("is not a regular expression"));

    // A label from the image config: shown on its row, and a filter by key or key=value.
    let page = b
        .get("/repository/alice/ver?tab=tags&label=team%3Dweb")
        .await;
    assert_eq!(rows(&page), ["v1.9"], "{page}");
    assert!(page.contains("team=web</a>"), "{page}");
    let page = b.get("/repository/alice/ver?tab=tags&label=team").await;
    assert_eq!(rows(&page), ["v1.9"]);
    let page = b
        .get("/repository/alice/ver?tab=tags&label=team%3Dops")
        .await;
    assert!(page.contains("0 tags"), "{page}");

    // An index shows its platforms.
    let page = b.get("/repository/alice/ver?tab=tags&filter=multi").await;
    assert!(page.contains("linux/amd64, linux/arm64/v8"), "{page}");
}

#[tokio::test]
async fn tag_history_deletes_a_past_position_permanently_after_a_confirmation() {
    let app = app_config(
        false,
        AuthConfig {
            permanently_delete_tags: true,
            ..AuthConfig::default()
        },
    )
    .await;
    let bearer = app.token("repository:alice/tm:pull,push").await;
    let old = app
        .push_with(
            &bearer,
            "alice/tm",
            "v1",
            br#"{"architecture":"amd64","os":"linux","config":{"Labels":{"n":"1"}},"rootfs":{"type":"layers","diff_ids":[]}}"#,
        )
        .await;
    app.push(&bearer, "alice/tm", "v1").await;
    let b = Browser::sign_in(&app).await;
    let history = b.get("/repository/alice/tm?tab=history&tag=v1").await;
    let purge_link = format!("purge={}", old.replace(':', "%3A"));
    assert!(history.contains(&purge_link), "{history}");
    assert!(history.contains("Delete v1 permanently…"), "{history}");
    let confirm = b
        .get(&format!(
            "/repository/alice/tm?tab=history&tag=v1&{purge_link}"
        ))
        .await;
    assert!(confirm.contains("cannot be restored"), "{confirm}");
    let (s, to, body) = b
        .post("/repository/alice/tm/tag/v1/purge", &[("digest", &old)])
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{body}");
    let history = b.get(&to).await;
    assert!(!history.contains(&old), "the position is gone: {history}");
    let (s, _, body) = b
        .post("/repository/alice/tm/tag/v1/restore", &[("digest", &old)])
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{body}");

    // Off (the default), the history offers no such link and the action is refused.
    let app = self::app().await;
    let bearer = app.token("repository:alice/tm:pull,push").await;
    let old = app
        .push_with(&bearer, "alice/tm", "v1", br#"{"os":"linux"}"#)
        .await;
    app.push(&bearer, "alice/tm", "v1").await;
    let b = Browser::sign_in(&app).await;
    let history = b.get("/repository/alice/tm?tab=history&tag=v1").await;
    assert!(!history.contains("permanently"), "{history}");
    let (s, _, body) = b
        .post("/repository/alice/tm/tag/v1/purge", &[("digest", &old)])
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{body}");
    assert!(body.contains("PERMANENTLY_DELETE_TAGS"), "{body}");
}

#[tokio::test]
async fn a_team_page_changes_the_role_removes_members_and_deletes_the_team() {
    let app = app().await;
    let b = Browser::sign_in(&app).await;
    let (s, _, body) = b.post("/organization", &[("name", "crew")]).await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{body}");
    b.post(
        "/organization/crew/teams",
        &[("name", "ops"), ("role", "member")],
    )
    .await;
    b.post("/organization/crew/robots", &[("name", "ci")]).await;
    b.post(
        "/organization/crew/teams/ops/members",
        &[("member", "crew+ci")],
    )
    .await;
    let team = b.get("/organization/crew/teams/ops").await;
    assert!(team.contains("Remove crew+ci"), "{team}");
    let (s, _, body) = b
        .post(
            "/organization/crew/teams",
            &[
                ("name", "ops"),
                ("role", "creator"),
                ("description", "runs it"),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{body}");
    let team = b.get("/organization/crew/teams/ops").await;
    assert!(team.contains("<strong>creator</strong>"), "{team}");
    assert!(team.contains("runs it"), "{team}");
    assert!(
        !team.contains("Directory sync"),
        "no directory configured, and alice is no superuser: {team}"
    );
    let (s, _, body) = b
        .post("/organization/crew/teams/ops/members/crew+ci/delete", &[])
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{body}");
    assert!(
        b.get("/organization/crew/teams/ops")
            .await
            .contains("No members.")
    );
    // The owners' last member stays, and the owners team has no delete button.
    let owners = b.get("/organization/crew/teams/owners").await;
    assert!(!owners.contains("Delete team owners"), "{owners}");
    let (s, _, body) = b
        .post("/organization/crew/teams/owners/members/alice/delete", &[])
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    let (s, to, body) = b.post("/organization/crew/teams/ops/delete", &[]).await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{body}");
    assert!(!b.get(&to).await.contains("/teams/ops\""));
}

#[tokio::test]
async fn a_superuser_takes_ownership_of_an_organization_and_manages_quotas() {
    let app = app().await;
    let b = Browser::sign_in(&app).await;
    b.post("/organization", &[("name", "orphan")]).await;
    let root = Browser::sign_in_as(&app, ROOT, ROOT_PASSWORD).await;
    let orgs = root.get("/superuser?tab=organizations").await;
    assert!(orgs.contains("Take ownership of orphan"), "{orgs}");
    let (s, to, body) = root
        .post("/superuser/organizations/orphan/takeownership", &[])
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(to, "/organization/orphan");
    let owners = root.get("/organization/orphan/teams/owners").await;
    assert!(
        owners.contains("<li>root"),
        "root joined the owners: {owners}"
    );
    let (s, _, body) = root
        .post("/superuser/organizations/alice/takeownership", &[])
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "alice is no organization");
    assert!(body.contains("is not an organization"), "{body}");
    let (s, _, _) = b
        .post("/superuser/organizations/orphan/takeownership", &[])
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // Quotas: set, change, remove; a size that is not one is refused.
    let page = root.get("/superuser?tab=quotas").await;
    assert!(
        page.contains("No namespace has a quota of its own."),
        "{page}"
    );
    let (s, _, body) = root
        .post(
            "/superuser/quotas",
            &[("namespace", "orphan"), ("limit", "lots")],
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    let (s, to, body) = root
        .post(
            "/superuser/quotas",
            &[("namespace", "orphan"), ("limit", "10 MiB")],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{body}");
    let page = root.get(&to).await;
    assert!(page.contains("<th scope=\"row\">orphan</th>"), "{page}");
    assert!(
        page.contains("10.0 MiB") || page.contains("10 MiB"),
        "{page}"
    );
    let action = page
        .split("action=\"/superuser/quotas/orphan/")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("the row's change form")
        .to_string();
    let (s, _, body) = root
        .post(
            &format!("/superuser/quotas/orphan/{action}"),
            &[("limit", "2 GiB")],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{body}");
    assert!(root.get("/superuser?tab=quotas").await.contains("2.0 GiB"));
    let (s, _, body) = root
        .post(&format!("/superuser/quotas/orphan/{action}/delete"), &[])
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{body}");
    assert!(
        root.get("/superuser?tab=quotas")
            .await
            .contains("No namespace has a quota")
    );
    let (s, _, _) = b
        .post(
            "/superuser/quotas",
            &[("namespace", "alice"), ("limit", "1 GiB")],
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "alice is no superuser");
}

#[tokio::test]
async fn bulk_repository_deletion_confirms_by_count_and_skips_what_the_caller_does_not_administer()
{
    let app = app().await;
    let bearer = app.token("repository:alice/one:pull,push").await;
    app.push(&bearer, "alice/one", "v1").await;
    let bearer = app.token("repository:alice/two:pull,push").await;
    app.push(&bearer, "alice/two", "v1").await;
    let root = Browser::sign_in_as(&app, ROOT, ROOT_PASSWORD).await;
    let (s, _, body) = root
        .post(
            "/repository",
            &[
                ("namespace", "root"),
                ("name", "mine"),
                ("visibility", "public"),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{body}");

    let b = Browser::sign_in(&app).await;
    let list = b.get("/repository").await;
    assert!(list.contains("form=\"bulk-repos\""), "{list}");
    let page = b
        .get("/repository?confirm=delete&repo=alice%2Fone&repo=alice%2Ftwo&repo=root%2Fmine")
        .await;
    assert!(page.contains("Delete 2 repositories?"), "{page}");
    assert!(
        page.contains("<code>root/mine</code>: "),
        "refused, with why: {page}"
    );
    let (s, _, body) = b
        .post(
            "/repository/delete",
            &[
                ("repo", "alice/one"),
                ("repo", "alice/two"),
                ("confirm_count", "3"),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "the wrong count: {body}");
    let (s, to, body) = b
        .post(
            "/repository/delete",
            &[
                ("repo", "alice/one"),
                ("repo", "alice/two"),
                ("confirm_count", "2"),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(to, "/repository");
    let list = b.get("/repository").await;
    assert!(
        !list.contains("alice/one") && !list.contains("alice/two"),
        "{list}"
    );
    let (s, _, body) = b
        .post(
            "/repository/delete",
            &[("repo", "root/mine"), ("confirm_count", "1")],
        )
        .await;
    assert_eq!(
        s,
        StatusCode::SEE_OTHER,
        "nothing of alice's to delete: {body}"
    );
    assert!(
        root.get("/repository").await.contains("root/mine"),
        "root's stays"
    );
}

#[tokio::test]
async fn the_notifications_tab_creates_a_webhook_shows_its_secret_once_and_deletes_it() {
    let app = app().await;
    let bearer = app.token("repository:alice/hooks:pull,push").await;
    app.push(&bearer, "alice/hooks", "v1").await;
    let b = Browser::sign_in(&app).await;
    let tab = b.get("/repository/alice/hooks?tab=notifications").await;
    assert!(tab.contains("No notifications yet."), "{tab}");
    assert!(tab.contains("Create a notification"), "{tab}");
    assert!(
        tab.contains("Notifications</a>"),
        "the header's inbox link: {tab}"
    );
    let (s, _, body) = b
        .post(
            "/repository/alice/hooks/notifications",
            &[
                ("title", "CI"),
                ("event", "repo_push"),
                ("method", "webhook"),
                ("url", "https://ci.invalid/hook"),
                ("header_name", "Authorization"),
                ("header_value", "Bearer very-secret"),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    assert!(body.contains("id=\"notification-secret\""), "{body}");
    assert!(
        !body.contains("very-secret"),
        "a header's value is never shown: {body}"
    );
    let tab = b.get("/repository/alice/hooks?tab=notifications").await;
    let href = tab
        .split("href=\"/repository/alice/hooks/notification/")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("the notification's link")
        .to_string();
    let page = b
        .get(&format!("/repository/alice/hooks/notification/{href}"))
        .await;
    assert!(
        page.contains("Send a test") && page.contains("Nothing sent yet."),
        "{page}"
    );
    assert!(
        !page.contains("notification-secret"),
        "the secret only once: {page}"
    );
    let (s, _, _) = b
        .post(
            &format!("/repository/alice/hooks/notification/{href}/test"),
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    // An internal address is refused with the guard's reason.
    let (s, _, body) = b
        .post(
            "/repository/alice/hooks/notifications",
            &[
                ("event", "repo_push"),
                ("method", "webhook"),
                ("url", "http://169.254.169.254/"),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("SSRF_ALLOWED_HOSTS"), "{body}");
    let (s, to, _) = b
        .post(
            &format!("/repository/alice/hooks/notification/{href}/delete"),
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert!(b.get(&to).await.contains("No notifications yet."));
    let inbox = b.get("/user/alice?tab=notifications").await;
    assert!(inbox.contains("Nothing here."), "{inbox}");
}

/// The tags a Tags tab lists, in its order.
fn tag_rows(page: &str, repo: &str) -> Vec<String> {
    page.split(&format!(
        r#"<th scope="row"><a href="/repository/{repo}/tag/"#
    ))
    .skip(1)
    .filter_map(|s| s.split('"').next().map(str::to_string))
    .collect()
}

/// The page's "Next page" link, unescaped.
fn next_page(page: &str) -> Option<String> {
    let at = page.find(r#"rel="next""#)?;
    let head = &page[..at];
    let href = head.rfind("href=\"")?;
    Some(head[href + 6..].split('"').next()?.replace("&amp;", "&"))
}
