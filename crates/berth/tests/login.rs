//! Logging in the way users do: `skopeo login`, `podman login` and `oras` login against Berth's
//! token authentication with a password, an app-specific token and a robot token; anonymous pulls
//! of a public repository; pushes refused without permission; failed-login throttling, lockout
//! and reset. Each test then checks the audit log for what it did.

mod common;

use common::images::*;
use common::{ADMIN_PASSWORD, ADMIN_USER, Berth};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

const PW: &str = "login-test-password";

fn blocking_client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
}

/// A REST call with Basic credentials; returns (status, JSON body, Retry-After).
fn api(
    b: &Berth,
    method: &str,
    path: &str,
    user: &str,
    pw: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = blocking_client()
        .request(
            reqwest::Method::from_bytes(method.as_bytes()).expect("method"),
            b.url(path),
        )
        .basic_auth(user, Some(pw));
    if let Some(body) = body {
        req = req.json(&body);
    }
    let r = req
        .send()
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let status = r.status().as_u16();
    let v = r.json::<Value>().unwrap_or(Value::Null);
    (status, v)
}

fn admin(b: &Berth, method: &str, path: &str, body: Option<Value>) -> Value {
    let (s, v) = api(b, method, path, ADMIN_USER, ADMIN_PASSWORD, body);
    assert!((200..300).contains(&s), "{method} {path} -> {s} {v}");
    v
}

/// `GET /v2/auth` with Basic credentials: (status, Retry-After, body).
fn token_request(b: &Berth, user: &str, pw: &str) -> (u16, Option<String>, String) {
    token_request_from(b, "127.0.0.1", user, pw)
}

/// [`token_request`] from another loopback source address (127.0.0.0/8 all reach the server),
/// as a client on another machine would come.
fn token_request_from(
    b: &Berth,
    source: &str,
    user: &str,
    pw: &str,
) -> (u16, Option<String>, String) {
    let client = reqwest::blocking::Client::builder()
        .no_proxy()
        .local_address(source.parse::<std::net::IpAddr>().expect("address"))
        .build()
        .expect("client");
    let r = client
        .get(b.url("/v2/auth?service=localhost:5000&scope=repository:carol/app:pull,push"))
        .basic_auth(user, Some(pw))
        .send()
        .expect("token request");
    let status = r.status().as_u16();
    let retry = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (status, retry, r.text().unwrap_or_default())
}

fn skopeo(authfile: &Path) -> Command {
    let mut c = Command::new(require_tool("skopeo"));
    c.arg("--insecure-policy")
        .env("REGISTRY_AUTH_FILE", authfile);
    c
}

/// Runs a command that must fail; returns what it printed.
fn fails(cmd: &mut Command) -> String {
    let out: Output = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{cmd:?} should have failed:\n{text}");
    text
}

struct Podman {
    dir: PathBuf,
    authfile: PathBuf,
}

impl Podman {
    fn new(dir: &Path) -> Podman {
        for d in ["root", "runroot", "tmp"] {
            std::fs::create_dir_all(dir.join(d)).expect("podman dirs");
        }
        std::fs::write(
            dir.join("policy.json"),
            br#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
        )
        .expect("policy");
        Podman {
            dir: dir.to_path_buf(),
            authfile: dir.join("auth.json"),
        }
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new(require_tool("podman"));
        c.arg("--root")
            .arg(self.dir.join("root"))
            .arg("--runroot")
            .arg(self.dir.join("runroot"))
            .arg("--tmpdir")
            .arg(self.dir.join("tmp"))
            .args([
                "--storage-driver",
                "vfs",
                "--cgroup-manager",
                "cgroupfs",
                "--events-backend",
                "file",
            ])
            .env("TMPDIR", self.dir.join("tmp"))
            .env("REGISTRY_AUTH_FILE", &self.authfile);
        c
    }

    fn policy(&self) -> String {
        format!(
            "--signature-policy={}",
            self.dir.join("policy.json").display()
        )
    }
}

const ORAS: &str = r#"
import json, os, sys
import oras.client
a = json.loads(sys.argv[1])
os.chdir(a["work"])
client = oras.client.OrasClient(hostname=a["host"], insecure=True)
client.login(username=a["user"], password=a["password"], hostname=a["host"],
             config_path=os.path.join(a["work"], "docker-config.json"))
if a["cmd"] == "push":
    with open("notes.txt", "w") as f:
        f.write(a["text"])
    r = client.push(target=a["target"], files=["notes.txt:text/plain"], quiet=True)
    print(json.dumps({"status": r.status_code}))
else:
    files = client.pull(target=a["target"], outdir=os.path.join(a["work"], "out"))
    print(json.dumps({"files": files}))
"#;

fn oras_python() -> PathBuf {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-venv/bin/python");
    assert!(
        venv.exists(),
        "no Python venv with the oras package at {}: run ./scripts/test.sh",
        venv.display()
    );
    venv
}

#[test]
fn clients_log_in_with_passwords_app_tokens_and_robots() {
    let b = Berth::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let host = b.host.clone();
    admin(
        &b,
        "POST",
        "/api/v1/superuser/users/",
        Some(json!({"username": "alice", "password": PW})),
    );
    admin(
        &b,
        "POST",
        "/api/v1/superuser/users/",
        Some(json!({"username": "bob", "password": PW})),
    );
    let app = api(
        &b,
        "POST",
        "/api/v1/user/apptoken",
        "alice",
        PW,
        Some(json!({"title": "laptop"})),
    );
    assert_eq!(app.0, 200, "{}", app.1);
    let app_token = app.1["token"]["token_code"]
        .as_str()
        .expect("token_code")
        .to_string();
    let robot = api(
        &b,
        "PUT",
        "/api/v1/user/robots/ci",
        "alice",
        PW,
        Some(json!({"description": "CI"})),
    );
    assert_eq!(robot.0, 201, "{}", robot.1);
    assert_eq!(robot.1["name"], "alice+ci");
    let robot_token = robot.1["token"].as_str().expect("robot token").to_string();

    let mut rng = Rng::new();
    let src = tmp.path().join("src");
    let mut layout = Layout::create(&src);
    let img = layout.image(&mut rng, "amd64", &[30_000, 5_000]);
    layout.tag(OCI_MANIFEST, &img.manifest, "v1");
    let oci = format!("oci:{}:v1", src.display());

    // skopeo login with the password, then push into alice's own namespace (creates alice/app).
    let alice_auth = tmp.path().join("alice.json");
    run(skopeo(&alice_auth).args([
        "login",
        "--tls-verify=false",
        "-u",
        "alice",
        "-p",
        PW,
        &host,
    ]));
    run(skopeo(&alice_auth).args([
        "copy",
        "--dest-tls-verify=false",
        &oci,
        &format!("docker://{host}/alice/app:v1"),
    ]));

    // podman login with the app-specific token (as a password), then pull.
    let podman = Podman::new(&tmp.path().join("podman"));
    run(podman.cmd().args([
        "login",
        "--tls-verify=false",
        "-u",
        "alice",
        "-p",
        &app_token,
        &host,
    ]));
    run(podman.cmd().args([
        "pull",
        "--quiet",
        "--tls-verify=false",
        &podman.policy(),
        &format!("{host}/alice/app:v1"),
    ]));
    let inspect: Value = serde_json::from_slice(
        &run(podman
            .cmd()
            .args(["image", "inspect", &format!("{host}/alice/app:v1")]))
        .stdout,
    )
    .expect("inspect json");
    assert_eq!(
        inspect[0]["Digest"], img.digest,
        "podman pulled what skopeo pushed"
    );
    // ...and pushes with it, under another tag.
    run(podman.cmd().args([
        "push",
        "--quiet",
        "--tls-verify=false",
        &podman.policy(),
        &format!("{host}/alice/app:v1"),
        &format!("{host}/alice/app:podman"),
    ]));

    // The robot: nothing until given write on the repository, then it pushes.
    let robot_auth = tmp.path().join("robot.json");
    run(skopeo(&robot_auth).args([
        "login",
        "--tls-verify=false",
        "-u",
        "alice+ci",
        "-p",
        &robot_token,
        &host,
    ]));
    let denied = fails(skopeo(&robot_auth).args([
        "copy",
        "--dest-tls-verify=false",
        &oci,
        &format!("docker://{host}/alice/app:robot"),
    ]));
    assert!(
        denied.contains("denied") || denied.contains("unauthorized") || denied.contains("403"),
        "{denied}"
    );
    let (s, v) = api(
        &b,
        "PUT",
        "/api/v1/repository/alice/app/permissions/user/alice+ci",
        "alice",
        PW,
        Some(json!({"role": "write"})),
    );
    assert_eq!(s, 200, "{v}");
    run(skopeo(&robot_auth).args([
        "copy",
        "--dest-tls-verify=false",
        &oci,
        &format!("docker://{host}/alice/app:robot"),
    ]));

    // Bob may not push to alice's repository, nor read it while it is private.
    let bob_auth = tmp.path().join("bob.json");
    run(skopeo(&bob_auth).args(["login", "--tls-verify=false", "-u", "bob", "-p", PW, &host]));
    fails(skopeo(&bob_auth).args([
        "copy",
        "--dest-tls-verify=false",
        &oci,
        &format!("docker://{host}/alice/app:bob"),
    ]));
    fails(skopeo(&bob_auth).args([
        "inspect",
        "--tls-verify=false",
        &format!("docker://{host}/alice/app:v1"),
    ]));
    let bob_podman = Podman::new(&tmp.path().join("bob-podman"));
    run(bob_podman
        .cmd()
        .args(["login", "--tls-verify=false", "-u", "bob", "-p", PW, &host]));
    fails(bob_podman.cmd().args([
        "pull",
        "--quiet",
        "--tls-verify=false",
        &bob_podman.policy(),
        &format!("{host}/alice/app:v1"),
    ]));

    // Public: anyone pulls, nobody anonymous pushes.
    let (s, v) = api(
        &b,
        "POST",
        "/api/v1/repository/alice/app/changevisibility",
        "alice",
        PW,
        Some(json!({"visibility": "public"})),
    );
    assert_eq!(s, 200, "{v}");
    let anon = tmp.path().join("anonymous.json");
    std::fs::write(&anon, br#"{"auths":{}}"#).expect("empty auth file");
    let raw = run(skopeo(&anon).args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{host}/alice/app:v1"),
    ]))
    .stdout;
    assert_eq!(raw, img.manifest, "anonymous pull of a public repository");
    fails(skopeo(&anon).args([
        "copy",
        "--dest-tls-verify=false",
        &oci,
        &format!("docker://{host}/alice/app:anon"),
    ]));

    // oras logs in with the password, pushes an artifact and pulls it back.
    let py = oras_python();
    let script = tmp.path().join("oras_login.py");
    std::fs::write(&script, ORAS).expect("script");
    let work = tmp.path().join("oras");
    std::fs::create_dir_all(&work).expect("work");
    let args = |cmd: &str| {
        json!({"cmd": cmd, "host": host, "user": "alice", "password": app_token, "work": work,
               "target": format!("{host}/alice/notes:v1"), "text": "release notes"})
        .to_string()
    };
    let out = run(Command::new(&py).arg(&script).arg(args("push")));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("\"status\": 201"),
        "{out:?}"
    );
    run(Command::new(&py).arg(&script).arg(args("pull")));
    assert_eq!(
        std::fs::read_to_string(work.join("out/notes.txt")).expect("pulled file"),
        "release notes"
    );

    // A wrong password is refused by login itself.
    fails(skopeo(&tmp.path().join("bad.json")).args([
        "login",
        "--tls-verify=false",
        "-u",
        "alice",
        "-p",
        "not-the-password",
        &host,
    ]));
    // (the failure starts alice's back-off: the audit queries below use the superuser)
    std::thread::sleep(Duration::from_millis(1100));

    // The audit log of alice/app tells who did what, and through which credential.
    let (s, logs) = api(
        &b,
        "GET",
        "/api/v1/repository/alice/app/logs",
        "alice",
        PW,
        None,
    );
    assert_eq!(s, 200, "{logs}");
    let entries = logs["logs"].as_array().expect("logs").clone();
    let find = |kind: &str, who: Option<&str>| {
        entries.iter().any(|e| {
            e["kind"] == kind
                && match who {
                    Some(w) => e["performer"]["name"] == w,
                    None => e["performer"].is_null(),
                }
        })
    };
    assert!(find("create_repo", Some("alice")), "{logs}");
    assert!(find("push_repo", Some("alice")), "{logs}");
    assert!(find("push_repo", Some("alice+ci")), "robot push: {logs}");
    assert!(find("change_repo_permission", Some("alice")), "{logs}");
    assert!(find("change_repo_visibility", Some("alice")), "{logs}");
    assert!(
        find("pull_repo", Some("alice")),
        "podman pull with the app token: {logs}"
    );
    assert!(find("pull_repo", None), "anonymous pull: {logs}");
    assert!(
        !find("push_repo", Some("bob")),
        "bob's push was refused: {logs}"
    );
    let (_, all) = api(
        &b,
        "GET",
        "/api/v1/superuser/logs?kind=login_success&limit=1000",
        ADMIN_USER,
        ADMIN_PASSWORD,
        None,
    );
    let via = |user: &str, detail: &str| {
        all["logs"].as_array().is_some_and(|l| {
            l.iter()
                .any(|e| e["performer"]["name"] == user && e["metadata"]["detail"] == detail)
        })
    };
    assert!(via("alice", "password"), "{all}");
    assert!(via("alice", "app_token"), "{all}");
    assert!(via("alice+ci", "robot_token"), "{all}");
    let (_, failures) = api(
        &b,
        "GET",
        "/api/v1/superuser/logs?kind=login_failure",
        ADMIN_USER,
        ADMIN_PASSWORD,
        None,
    );
    assert!(
        failures["logs"]
            .as_array()
            .is_some_and(|l| l.iter().any(|e| e["performer"]["name"] == "alice")),
        "the wrong password was logged: {failures}"
    );
}

#[test]
fn an_attacker_guessing_cannot_lock_the_real_user_out() {
    let b = Berth::start_with_env(&[
        ("BERTH_LOGIN_LOCKOUT_FAILURES", "3"),
        ("BERTH_LOGIN_BACKOFF_BASE_MS", "1"),
    ]);
    // Ten wrong passwords for admin from another address, as fast as they are accepted.
    let mut refused = 0;
    for i in 0..10 {
        let (s, _, _) = token_request_from(&b, "127.0.0.3", ADMIN_USER, &format!("guess-{i}"));
        assert!(s == 401 || s == 429, "guess {i}: {s}");
        refused += 1;
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(refused, 10);
    let (s, _, body) = token_request_from(&b, "127.0.0.3", ADMIN_USER, ADMIN_PASSWORD);
    assert_eq!(
        s, 401,
        "the guessing address is locked, even with the right password: {body}"
    );
    // The real admin, from its own address, logs in at once, with every client.
    let (s, _, body) = token_request(&b, ADMIN_USER, ADMIN_PASSWORD);
    assert_eq!(s, 200, "{body}");
    assert_eq!(
        api(&b, "GET", "/api/v1/user/", ADMIN_USER, ADMIN_PASSWORD, None).0,
        200
    );
}

#[test]
fn guesses_spread_over_many_addresses_only_delay_addresses_the_user_never_used() {
    let b = Berth::start_with_env(&[
        ("BERTH_LOGIN_LOCKOUT_FAILURES", "1"),
        ("BERTH_LOGIN_BACKOFF_BASE_MS", "60000"),
    ]);
    // The real admin has logged in from 127.0.0.1 before.
    assert_eq!(token_request(&b, ADMIN_USER, ADMIN_PASSWORD).0, 200);
    // One wrong guess each from three other addresses: three times the lock-out count.
    for i in 3..6 {
        let (s, _, _) = token_request_from(&b, &format!("127.0.0.{i}"), ADMIN_USER, "guess");
        assert_eq!(s, 401);
    }
    // An address nobody logged in from meets the account-wide delay...
    let (s, retry, body) = token_request_from(&b, "127.0.0.9", ADMIN_USER, ADMIN_PASSWORD);
    assert_eq!(s, 429, "{body}");
    assert!(retry.is_some());
    // ...but the user's own address is spared it: the guesser cannot keep them out.
    let (s, _, body) = token_request(&b, ADMIN_USER, ADMIN_PASSWORD);
    assert_eq!(s, 200, "{body}");
}

#[test]
fn repeated_bad_passwords_are_slowed_then_locked_until_reset() {
    let b = Berth::start_with_env(&[
        ("BERTH_LOGIN_LOCKOUT_FAILURES", "3"),
        ("BERTH_LOGIN_BACKOFF_BASE_MS", "1500"),
    ]);
    admin(
        &b,
        "POST",
        "/api/v1/superuser/users/",
        Some(json!({"username": "carol", "password": PW})),
    );
    let app = api(
        &b,
        "POST",
        "/api/v1/user/apptoken",
        "carol",
        PW,
        Some(json!({"title": "ci"})),
    );
    let app_token = app.1["token"]["token_code"]
        .as_str()
        .expect("token_code")
        .to_string();

    let lock = |b: &Berth| {
        // 1st failure, then an attempt inside the back-off window is not even checked.
        assert_eq!(token_request(b, "carol", "wrong-1").0, 401);
        let (s, retry, body) = token_request(b, "carol", PW);
        assert_eq!(
            s, 429,
            "the right password inside the back-off window is refused: {body}"
        );
        assert!(
            body.contains("TOOMANYREQUESTS") && body.contains("retry in"),
            "code TOOMANYREQUESTS, and the message says when to retry: {body}"
        );
        let retry: u64 = retry.and_then(|r| r.parse().ok()).expect("Retry-After");
        assert!((1..=2).contains(&retry), "Retry-After {retry}");
        std::thread::sleep(Duration::from_millis(1600));
        // 2nd failure doubles the wait.
        assert_eq!(token_request(b, "carol", "wrong-2").0, 401);
        let (s, retry, _) = token_request(b, "carol", "wrong-x");
        assert_eq!(s, 429);
        assert!(
            retry
                .and_then(|r| r.parse::<u64>().ok())
                .is_some_and(|r| (2..=3).contains(&r))
        );
        std::thread::sleep(Duration::from_millis(3100));
        // 3rd failure locks the account.
        let (s, _, body) = token_request(b, "carol", "wrong-3");
        assert_eq!(s, 401);
        assert!(body.contains("locked"), "{body}");
    };

    lock(&b);
    // Locked from this address: its right password and its API calls with a password refuse,
    // however long one waits.
    std::thread::sleep(Duration::from_millis(3100));
    let (s, _, body) = token_request(&b, "carol", PW);
    assert_eq!(s, 401, "{body}");
    assert!(
        body.contains("reset-login") && body.contains("127.0.0.1"),
        "the message says which address is locked and how to unlock: {body}"
    );
    assert_eq!(api(&b, "GET", "/api/v1/user/", "carol", PW, None).0, 401);
    let user = admin(&b, "GET", "/api/v1/superuser/users/carol", None);
    assert_eq!(user["locked"], true, "{user}");
    assert_eq!(user["locked_sources"], json!(["127.0.0.1"]), "{user}");
    assert_eq!(user["failed_logins"], 3, "{user}");
    // The guesses locked only the address they came from: the app token still logs in from
    // it, and the password from any other address.
    assert_eq!(token_request(&b, "$app", &app_token).0, 200);
    assert_eq!(token_request_from(&b, "127.0.0.2", "carol", PW).0, 200);
    let (s, _, body) = token_request(&b, "carol", PW);
    assert_eq!(s, 401, "still locked from 127.0.0.1: {body}");

    // `berth admin reset-login` unlocks.
    let mut cmd = Command::new(common::berth_bin());
    cmd.args(["admin", "--data-dir"])
        .arg(&b.data_dir)
        .args(["reset-login", "carol"]);
    for (k, v) in b.envs() {
        cmd.env(k, v);
    }
    run(&mut cmd);
    // (successful Basic checks are cached for a few seconds, failures never)
    assert_eq!(token_request(&b, "carol", PW).0, 200);

    // Locked again; the superuser API unlocks.
    lock(&b);
    assert_eq!(token_request(&b, "carol", PW).0, 401);
    let user = admin(&b, "POST", "/api/v1/superuser/users/carol/resetlogin", None);
    assert_eq!(user["locked"], false, "{user}");
    assert_eq!(token_request(&b, "carol", PW).0, 200);
    assert_eq!(token_request(&b, "$app", &app_token).0, 200);

    let logs = admin(
        &b,
        "GET",
        "/api/v1/superuser/logs?performer=carol&limit=1000",
        None,
    );
    let count = |kind: &str| {
        logs["logs"]
            .as_array()
            .map_or(0, |l| l.iter().filter(|e| e["kind"] == kind).count())
    };
    assert!(
        count("login_failure") >= 8,
        "every refused attempt is logged: {logs}"
    );
    let resets = admin(
        &b,
        "GET",
        "/api/v1/superuser/logs?kind=user_login_reset",
        None,
    );
    let resets = resets["logs"].as_array().map_or(0, Vec::len);
    assert_eq!(resets, 2, "both resets are logged");
}

/// (hashed, remembered) password checks so far, read from `/metrics` as the admin. The read is
/// itself one admin login: after the first, a remembered one, which the caller subtracts.
fn password_checks(b: &Berth) -> (u64, u64) {
    let text = blocking_client()
        .get(b.url("/metrics"))
        .basic_auth(ADMIN_USER, Some(ADMIN_PASSWORD))
        .send()
        .and_then(|r| r.text())
        .expect("metrics");
    let read = |how: &str| {
        let prefix = format!("berth_password_checks_total{{check=\"{how}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map_or(0, |v| v as u64)
    };
    (read("hashed"), read("remembered"))
}

#[test]
fn a_remembered_password_is_never_a_wrong_one_and_ends_with_a_change_a_lock_or_a_deletion() {
    let b = Berth::start_with_env(&[
        ("BERTH_LOGIN_LOCKOUT_FAILURES", "3"),
        ("BERTH_LOGIN_BACKOFF_BASE_MS", "1"),
    ]);
    let pause = || std::thread::sleep(Duration::from_millis(20));
    admin(
        &b,
        "POST",
        "/api/v1/superuser/users/",
        Some(json!({"username": "carol", "password": PW})),
    );
    password_checks(&b);
    let (h0, r0) = password_checks(&b);
    let delta = |(h, r): (u64, u64), (h0, r0): (u64, u64)| (h - h0, r - r0 - 1);

    // The first login hashes; the same again is remembered.
    assert_eq!(token_request(&b, "carol", PW).0, 200);
    assert_eq!(token_request(&b, "carol", PW).0, 200);
    let now = password_checks(&b);
    assert_eq!(delta(now, (h0, r0)), (1, 1), "one hash, then remembered");

    // Wrong passwords right after a remembered success: refused, each checked in full.
    let before = now;
    for wrong in [
        format!("{PW}x"),
        PW[..PW.len() - 1].to_string(),
        "guess".into(),
    ] {
        let (s, _, body) = token_request(&b, "carol", &wrong);
        assert_eq!(s, 401, "{wrong:?} must be refused: {body}");
        pause();
    }
    let now = password_checks(&b);
    assert_eq!(
        delta(now, before),
        (3, 0),
        "wrong passwords are hashed, never remembered"
    );
    // (Three failures from 127.0.0.1: locked out here, even with the remembered password.)
    let (s, _, body) = token_request(&b, "carol", PW);
    assert_eq!(
        s, 401,
        "a locked-out source is refused the remembered password: {body}"
    );
    assert!(body.contains("locked"), "{body}");
    admin(&b, "POST", "/api/v1/superuser/users/carol/resetlogin", None);
    assert_eq!(token_request(&b, "carol", PW).0, 200);

    // A password change: the old password is refused at once, the new one hashed.
    admin(
        &b,
        "PUT",
        "/api/v1/superuser/users/carol",
        Some(json!({"password": "a-new-password-2"})),
    );
    let before = password_checks(&b);
    let (s, _, body) = token_request(&b, "carol", PW);
    assert_eq!(s, 401, "the old password after a change: {body}");
    pause();
    assert_eq!(token_request(&b, "carol", "a-new-password-2").0, 200);
    assert_eq!(token_request(&b, "carol", "a-new-password-2").0, 200);
    let now = password_checks(&b);
    assert_eq!(delta(now, before), (2, 1));

    // Locking the source out (three failures from 127.0.0.4) beats the remembered password
    // there; other sources go on.
    assert_eq!(
        token_request_from(&b, "127.0.0.4", "carol", "a-new-password-2").0,
        200
    );
    for i in 0..3 {
        let (s, _, _) = token_request_from(&b, "127.0.0.4", "carol", &format!("guess-{i}"));
        assert!(s == 401 || s == 429, "guess {i}: {s}");
        pause();
    }
    let (s, _, body) = token_request_from(&b, "127.0.0.4", "carol", "a-new-password-2");
    assert_eq!(s, 401, "locked out from 127.0.0.4: {body}");
    assert_eq!(token_request(&b, "carol", "a-new-password-2").0, 200);

    // Disabling the account: refused; enabled again, it logs in.
    admin(
        &b,
        "PUT",
        "/api/v1/superuser/users/carol",
        Some(json!({"enabled": false})),
    );
    let (s, _, body) = token_request(&b, "carol", "a-new-password-2");
    assert_eq!(s, 401, "a disabled account: {body}");
    admin(
        &b,
        "PUT",
        "/api/v1/superuser/users/carol",
        Some(json!({"enabled": true})),
    );
    assert_eq!(token_request(&b, "carol", "a-new-password-2").0, 200);

    // Deleted, then re-created under the same name with another password: the old one is
    // refused.
    assert_eq!(token_request(&b, "carol", "a-new-password-2").0, 200);
    admin(&b, "DELETE", "/api/v1/superuser/users/carol", None);
    let (s, _, body) = token_request(&b, "carol", "a-new-password-2");
    assert_eq!(s, 401, "a deleted account: {body}");
    admin(
        &b,
        "POST",
        "/api/v1/superuser/users/",
        Some(json!({"username": "carol", "password": "third-password-3"})),
    );
    let (s, _, body) = token_request(&b, "carol", "a-new-password-2");
    assert_eq!(
        s, 401,
        "the deleted account's password for the new carol: {body}"
    );
    pause();
    assert_eq!(token_request(&b, "carol", "third-password-3").0, 200);
}
