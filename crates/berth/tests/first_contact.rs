//! What a newcomer and a Quay administrator meet in their first minutes, against real `berth`
//! processes: read-only and pushes-disabled states, password logins turned off, a start that
//! cannot bind, a first password never shown, graceful and immediate shutdown, the page at `/`,
//! the API's 404 and 405, the superuser's user creation, metrics access, request logging, and
//! one-component names without library support.

mod common;

use common::client::Client;
use common::{ADMIN_PASSWORD, ADMIN_USER, Berth, berth_bin};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// (status, JSON body) of a request with admin's Basic credentials.
fn admin(b: &Berth, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut r = http()
        .request(
            reqwest::Method::from_bytes(method.as_bytes()).expect("method"),
            b.url(path),
        )
        .basic_auth(ADMIN_USER, Some(ADMIN_PASSWORD));
    if let Some(v) = body {
        r = r.json(&v);
    }
    let r = r.send().expect("send");
    let s = r.status().as_u16();
    (s, r.json().unwrap_or(Value::Null))
}

fn first_error(v: &Value) -> (String, String) {
    (
        v["errors"][0]["code"].as_str().unwrap_or("").to_string(),
        v["errors"][0]["message"].as_str().unwrap_or("").to_string(),
    )
}

#[test]
fn a_read_only_registry_serves_pulls_and_refuses_every_write() {
    let mut b = Berth::start();
    let c = Client::new(&b);
    let img = c.image("admin/ro", "v1", "ro", &[&[1u8; 100]]);
    b.kill9();
    // The same registry (database, storage), restarted read-only.
    let b = b.start_sibling_with(&[], &[("BERTH_REGISTRY_STATE", "readonly")]);
    let c = Client::new(&b);
    assert!(b.log().contains("READ-ONLY"), "{}", b.log());

    // Pulls and reads work.
    assert_eq!(c.pull("admin/ro", "v1"), Ok(img.digest.clone()));
    let (s, v) = admin(&b, "GET", "/api/v1/repository/admin/ro", None);
    assert_eq!(s, 200, "{v}");
    // Every /v2 write is refused as Quay refuses it: 405 DENIED, saying why.
    for (method, path) in [
        ("POST", "/v2/admin/ro/blobs/uploads/".to_string()),
        ("PUT", "/v2/admin/ro/manifests/v2".to_string()),
        ("DELETE", format!("/v2/admin/ro/manifests/{}", img.digest)),
    ] {
        let (s, v) = admin(&b, method, &path, None);
        assert_eq!(s, 405, "{method} {path}: {v}");
        let (code, message) = first_error(&v);
        assert_eq!(code, "DENIED", "{v}");
        assert!(message.contains("read-only"), "{v}");
        assert_eq!(v["errors"][0]["detail"]["is_readonly"], true, "{v}");
    }
    // And every API change: 503 with Quay's is_readonly.
    let (s, v) = admin(
        &b,
        "POST",
        "/api/v1/organization/",
        Some(json!({"name": "neworg"})),
    );
    assert_eq!(s, 503, "{v}");
    assert_eq!(v["is_readonly"], true, "{v}");
    assert!(v["message"].as_str().unwrap_or("").contains("read-only"));
    // Signing in still works.
    let r = http()
        .post(b.url("/api/v1/signin"))
        .header("X-Requested-With", "XMLHttpRequest")
        .json(&json!({"username": ADMIN_USER, "password": ADMIN_PASSWORD}))
        .send()
        .expect("signin");
    assert_eq!(r.status().as_u16(), 200);
    // Health says so.
    let v: Value = http()
        .get(b.url("/health/instance"))
        .send()
        .expect("health")
        .json()
        .expect("json");
    assert_eq!(v["registry_state"], "readonly", "{v}");
    // Nothing was written: the tag still points where it did.
    assert_eq!(c.pull("admin/ro", "v1"), Ok(img.digest));
}

#[test]
fn disabled_pushes_are_refused_while_the_api_and_deletes_work() {
    let b = Berth::start_with_env(&[("BERTH_DISABLE_PUSHES", "true")]);
    let (s, v) = admin(&b, "POST", "/v2/admin/x/blobs/uploads/", None);
    assert_eq!(s, 405, "{v}");
    let (code, message) = first_error(&v);
    assert_eq!(code, "DENIED");
    assert!(message.contains("DISABLE_PUSHES"), "{message}");
    let (s, v) = admin(
        &b,
        "POST",
        "/api/v1/organization/",
        Some(json!({"name": "stillok"})),
    );
    assert_eq!(s, 201, "{v}");
    let v: Value = http()
        .get(b.url("/health/instance"))
        .send()
        .expect("health")
        .json()
        .expect("json");
    assert_eq!(v["pushes_disabled"], true, "{v}");
}

#[test]
fn direct_login_off_refuses_passwords_and_app_tokens_still_log_in() {
    let mut b = Berth::start();
    let (s, v) = admin(
        &b,
        "POST",
        "/api/v1/user/apptoken",
        Some(json!({"title": "laptop"})),
    );
    assert_eq!(s, 200, "{v}");
    let token = v["token"]["token_code"]
        .as_str()
        .expect("token_code")
        .to_string();
    b.kill9();
    let b = b.start_sibling_with(
        &[],
        &[
            ("BERTH_FEATURE_DIRECT_LOGIN", "false"),
            (
                "BERTH_CORP_LOGIN_CONFIG",
                "{OIDC_SERVER: 'http://127.0.0.1:9/', CLIENT_ID: c, CLIENT_SECRET: s, SERVICE_NAME: Corp}",
            ),
        ],
    );
    let login = |user: &str, pw: &str| {
        let r = http()
            .get(b.url("/v2/auth?service=localhost:5000"))
            .basic_auth(user, Some(pw))
            .send()
            .expect("token");
        (r.status().as_u16(), r.text().unwrap_or_default())
    };
    let (s, body) = login(ADMIN_USER, ADMIN_PASSWORD);
    assert_eq!(s, 401, "{body}");
    assert!(body.contains("FEATURE_DIRECT_LOGIN"), "{body}");
    assert_eq!(login(ADMIN_USER, &token).0, 200, "the app token logs in");
}

#[test]
fn a_start_that_cannot_bind_creates_nothing_and_says_why() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let out = Command::new(berth_bin())
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(&data)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("run berth");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("another process is using that port"), "{err}");
    assert!(
        !data.exists(),
        "nothing is created before the listener is bound (no database, no superuser)"
    );
}

/// The database the server uses, opened by the test.
fn server_db(b: &Berth) -> berth_db::Db {
    let uri = b
        .envs()
        .iter()
        .find(|(k, _)| k == "BERTH_DB_URI")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| format!("sqlite://{}", b.data_dir.join("berth.db").display()));
    common::client::block_on(berth_db::Db::connect(&uri, 2)).expect("open the server's database")
}

#[test]
fn a_first_password_never_shown_is_announced_with_how_to_set_it() {
    // A start with a generated password shows it and leaves no "never shown" mark behind.
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let mut child = Command::new(berth_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .env("RUST_LOG", "warn")
        .env_remove("BERTH_BOOTSTRAP_SUPERUSER_PASSWORD")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stderr = child.stderr.take().expect("stderr");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("push:") {
        assert!(Instant::now() < deadline, "no banner");
        match stderr.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let banner = String::from_utf8_lossy(&seen).to_string();
    assert!(
        banner.contains("created superuser \"admin\" with password"),
        "{banner}"
    );
    let db = common::client::block_on(berth_db::Db::connect(
        &format!("sqlite://{}", data.join("berth.db").display()),
        2,
    ))
    .expect("db");
    assert_eq!(
        common::client::block_on(db.instance_value("bootstrap_password_unshown")).expect("read"),
        None,
        "the password was shown"
    );

    // A start that created the superuser and stopped before printing its password (simulated by
    // the mark it leaves): the next start says how to set one, until one is set.
    let mut b = Berth::start();
    b.kill9();
    let db = server_db(&b);
    common::client::block_on(db.instance_secret("bootstrap_password_unshown", ADMIN_USER))
        .expect("mark");
    let mut b = b.start_sibling_with(&[], &[]);
    let log = b.log();
    assert!(
        log.contains("berth admin set-password admin"),
        "the start says how to set the password: {log}"
    );
    b.kill9();
    let mut cmd = Command::new(berth_bin());
    cmd.args([
        "admin",
        "set-password",
        ADMIN_USER,
        "--password-stdin",
        "--data-dir",
    ])
    .arg(&b.data_dir)
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    for (k, v) in b.envs() {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("admin");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{ADMIN_PASSWORD}\n").as_bytes())
        .expect("password");
    let out = child.wait_with_output().expect("admin output");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        common::client::block_on(db.instance_value("bootstrap_password_unshown")).expect("read"),
        None,
        "setting the password clears the mark"
    );
}

/// A PATCH of `len` bytes of which only the first half is sent; returns the open connection.
fn half_a_patch(b: &Berth, location: &str, len: usize) -> TcpStream {
    let mut s = TcpStream::connect(&b.host).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let auth = common::admin_basic();
    let head = format!(
        "PATCH {location} HTTP/1.1\r\nHost: {}\r\nAuthorization: {auth}\r\nContent-Type: application/octet-stream\r\nContent-Length: {len}\r\n\r\n",
        b.host
    );
    s.write_all(head.as_bytes()).expect("head");
    s.write_all(&vec![b'a'; len / 2]).expect("first half");
    s
}

/// Opens an upload session in `repo`; its location.
fn start_upload(b: &Berth, repo: &str) -> String {
    let r = Client::new(b)
        .req("POST", &format!("/v2/{repo}/blobs/uploads/"))
        .send()
        .expect("post");
    assert_eq!(r.status().as_u16(), 202);
    r.headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .expect("location")
        .to_string()
}

#[test]
fn sigterm_lets_requests_in_flight_finish_then_stops() {
    let mut b = Berth::start_with_env(&[("BERTH_SHUTDOWN_GRACE_SECONDS", "30")]);
    let location = start_upload(&b, "admin/slow");
    let len = 200_000;
    let mut s = half_a_patch(&b, &location, len);
    std::thread::sleep(Duration::from_millis(200));
    b.signal("TERM");
    // New connections are refused once shutdown began.
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(&b.host).is_ok() {
        assert!(Instant::now() < deadline, "still accepting after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        b.wait_exit(Duration::from_millis(300)).is_none(),
        "it waits for the upload"
    );
    // The request in flight finishes and is answered.
    s.write_all(&vec![b'a'; len - len / 2])
        .expect("second half");
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply);
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 202"), "{reply}");
    let status = b.wait_exit(Duration::from_secs(20)).expect("it stops");
    assert!(status.success(), "{status}");
    // The upload is still there to resume.
    let b = b.start_sibling_with(&[], &[]);
    let r = Client::new(&b)
        .req("GET", &location)
        .send()
        .expect("status");
    assert_eq!(r.status().as_u16(), 204);
    assert_eq!(
        r.headers().get("range").and_then(|v| v.to_str().ok()),
        Some(format!("0-{}", len - 1).as_str())
    );
}

#[test]
fn a_second_signal_stops_at_once() {
    let mut b = Berth::start_with_env(&[("BERTH_SHUTDOWN_GRACE_SECONDS", "300")]);
    let location = start_upload(&b, "admin/slow");
    let _s = half_a_patch(&b, &location, 200_000);
    std::thread::sleep(Duration::from_millis(200));
    b.signal("TERM");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        b.wait_exit(Duration::from_millis(100)).is_none(),
        "waiting for the upload"
    );
    b.signal("TERM");
    let status = b
        .wait_exit(Duration::from_secs(10))
        .expect("the second signal stops it at once, not after the grace period");
    assert!(!status.success(), "{status}");
}

#[test]
fn the_home_page_and_the_apis_404_and_405_tell_a_person_what_exists() {
    let b = Berth::start();
    let r = http().get(b.url("/")).send().expect("home");
    assert_eq!(r.status().as_u16(), 200);
    assert!(
        r.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("text/html"))
    );
    let page = r.text().expect("text");
    assert!(
        page.contains(&format!("podman login --tls-verify=false {}", b.host)),
        "{page}"
    );
    assert!(page.contains("/api/v1/discovery") && page.contains("/health/endtoend"));

    let r = http()
        .get(b.url("/api/v1/nosuchthing"))
        .send()
        .expect("404");
    assert_eq!(r.status().as_u16(), 404);
    let v: Value = r.json().expect("json 404");
    assert!(
        v["error_message"]
            .as_str()
            .is_some_and(|m| m.contains("no API endpoint") && m.contains("/api/v1/discovery")),
        "{v}"
    );
    let r = http()
        .delete(b.url("/api/v1/discovery"))
        .send()
        .expect("405");
    assert_eq!(r.status().as_u16(), 405);
    assert_eq!(
        r.headers().get("allow").and_then(|v| v.to_str().ok()),
        Some("GET")
    );
    let v: Value = r.json().expect("json 405");
    assert_eq!(v["error_type"], "method_not_allowed", "{v}");
}

#[test]
fn a_superuser_creating_a_user_gets_quays_fields_and_never_a_hash() {
    let b = Berth::start();
    let (s, v) = admin(
        &b,
        "POST",
        "/api/v1/superuser/users/",
        Some(json!({"username": "newbie", "email": "newbie@example.com"})),
    );
    assert_eq!(s, 200, "Quay answers 200: {v}");
    let keys: Vec<&str> = v
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    assert_eq!(
        keys,
        ["email", "encrypted_password", "password", "username"],
        "{v}"
    );
    let pw = v["password"].as_str().expect("password");
    assert!(!v.to_string().contains("$argon2"), "no hash: {v}");
    assert_eq!(v["encrypted_password"], pw, "{v}");
    // The password shown logs in.
    let r = http()
        .get(b.url("/v2/auth?service=localhost:5000"))
        .basic_auth("newbie", Some(pw))
        .send()
        .expect("login");
    assert_eq!(r.status().as_u16(), 200);
    // And is never shown again.
    let (_, v) = admin(&b, "GET", "/api/v1/superuser/users/newbie", None);
    assert!(
        v.get("password").is_none() && !v.to_string().contains("$argon2"),
        "{v}"
    );
}

#[test]
fn metrics_are_for_superusers_or_on_their_own_address_with_help() {
    let b = Berth::start();
    admin(
        &b,
        "POST",
        "/api/v1/superuser/users/",
        Some(json!({"username": "plain", "password": "plain-password-1"})),
    );
    let r = http().get(b.url("/metrics")).send().expect("metrics");
    assert_eq!(r.status().as_u16(), 401);
    let r = http()
        .get(b.url("/metrics"))
        .basic_auth("plain", Some("plain-password-1"))
        .send()
        .expect("metrics");
    assert_eq!(r.status().as_u16(), 403);
    let text = Client::new(&b).metrics();
    assert!(
        text.contains("# HELP berth_http_requests_total"),
        "metrics carry HELP: {text}"
    );

    let port = common::free_port();
    let m =
        Berth::start_with_env(&[("BERTH_METRICS_LISTEN_ADDRESS", &format!("127.0.0.1:{port}"))]);
    let r = http()
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .expect("metrics listener");
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.text().unwrap_or_default().contains("# HELP"));
    let r = http()
        .get(m.url("/metrics"))
        .basic_auth(ADMIN_USER, Some(ADMIN_PASSWORD))
        .send()
        .expect("main listener");
    assert_eq!(
        r.status().as_u16(),
        404,
        "not on the registry's own listener"
    );
}

#[test]
fn request_lines_are_debug_and_logs_have_no_colours_off_a_terminal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("log");
    let file = std::fs::File::create(&log).expect("log");
    let mut child = Command::new(berth_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .env_remove("RUST_LOG")
        .env("BERTH_BOOTSTRAP_SUPERUSER_PASSWORD", ADMIN_PASSWORD)
        .stdin(Stdio::null())
        .stdout(Stdio::from(file.try_clone().expect("clone")))
        .stderr(Stdio::from(file))
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(30);
    let port = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(p) = text
            .lines()
            .find_map(|l| l.split("listening on http://127.0.0.1:").nth(1))
            .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|p| p.parse::<u16>().ok())
        {
            break p;
        }
        assert!(Instant::now() < deadline, "no start: {text}");
        std::thread::sleep(Duration::from_millis(20));
    };
    for _ in 0..5 {
        let _ = http().get(format!("http://127.0.0.1:{port}/v2/")).send();
    }
    std::thread::sleep(Duration::from_millis(200));
    // A clean stop, logged at INFO.
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().ok().flatten().is_none() {
        assert!(Instant::now() < deadline, "SIGTERM did not stop it");
        std::thread::sleep(Duration::from_millis(20));
    }
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        text.contains("shutdown began") && text.contains("Berth stopped"),
        "start and stop are logged at INFO: {text}"
    );
    assert!(
        !text.contains("finished processing request") && !text.contains("/v2/"),
        "no line per request at the default level: {text}"
    );
    assert!(
        !text.contains('\u{1b}'),
        "no ANSI escapes in a file: {text:?}"
    );
}

#[test]
fn without_library_support_a_one_component_name_is_refused_clearly() {
    let b = Berth::start_with_env(&[("BERTH_FEATURE_LIBRARY_SUPPORT", "false")]);
    let (s, v) = admin(&b, "POST", "/v2/plainonly/blobs/uploads/", None);
    assert_eq!(s, 400, "{v}");
    let (code, message) = first_error(&v);
    assert_eq!(code, "NAME_INVALID");
    assert!(
        message.contains("NAMESPACE/plainonly") && message.contains("FEATURE_LIBRARY_SUPPORT"),
        "{message}"
    );
    let (s, v) = admin(&b, "GET", "/api/v1/repository/plainonly", None);
    assert_eq!(s, 400, "{v}");
    assert!(
        v["error_message"]
            .as_str()
            .is_some_and(|m| m.contains("NAMESPACE/plainonly")),
        "{v}"
    );
}

#[test]
fn maximum_layer_size_refuses_larger_blobs_as_quay_does() {
    let b = Berth::start_with_env(&[("BERTH_MAXIMUM_LAYER_SIZE", "1K")]);
    let c = Client::new(&b);
    let big = vec![9u8; 2000];
    let d = common::client::sha(&big);
    let r = c
        .req("POST", &format!("/v2/admin/big/blobs/uploads/?digest={d}"))
        .body(big.clone())
        .send()
        .expect("monolithic");
    assert_eq!(r.status().as_u16(), 413);
    let v: Value = r.json().expect("json");
    let (code, message) = first_error(&v);
    assert_eq!(code, "SIZE_INVALID", "{v}");
    assert!(message.contains("MAXIMUM_LAYER_SIZE"), "{message}");
    // In chunks too, by the declared length, and nothing is kept.
    let loc = start_upload(&b, "admin/big");
    let r = c.req("PATCH", &loc).body(big).send().expect("patch");
    assert_eq!(r.status().as_u16(), 413);
    let r = c
        .req("HEAD", &format!("/v2/admin/big/blobs/{d}"))
        .send()
        .expect("head");
    assert_eq!(r.status().as_u16(), 404);
    // A chunk of unknown length (chunked transfer) is stopped while it streams; the session goes.
    let loc = start_upload(&b, "admin/big");
    let r = c
        .req("PATCH", &loc)
        .body(reqwest::blocking::Body::new(std::io::Cursor::new(vec![
            7u8;
            50_000
        ])))
        .send()
        .expect("streamed patch");
    assert_eq!(r.status().as_u16(), 413);
    let r = c.req("GET", &loc).send().expect("status");
    assert_eq!(r.status().as_u16(), 404, "the session is gone");
    // A blob within the limit goes through.
    c.image("admin/small", "v1", "small", &[&[1u8; 500]]);
}
