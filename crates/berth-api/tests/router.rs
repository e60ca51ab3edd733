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

async fn app() -> App {
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
    let auth = registry
        .auth(AuthConfig::default())
        .await
        .expect("identity and access");
    auth.create_user(None, USER, Some(PASSWORD), None, false)
        .await
        .expect("create user");
    let state = AppState {
        registry,
        metrics: None,
        redirect_blobs: false,
        auth,
        public_url: None,
        scheme: "http",
        user_initialize: false,
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
        let layer = format!("layer of {repo}:{tag}").into_bytes();
        for blob in [&config[..], &layer[..]] {
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
