//! What a user sees when a real client meets Berth's refusals and negotiations: `podman search`
//! after `podman login` (the catalog token), denials of pushes and pulls to an account without
//! the right (podman, skopeo, oras), a cross-repository mount by `skopeo copy` within the
//! registry, and pushes refused for an immutable tag or a quota, whose explanation must reach the
//! terminal as `code: message`.
//!
//! Each test starts its own server on 127.0.0.1; every client command is bounded (killed and
//! reported if it has not finished after a few minutes). The stderr lines quoted in comments are
//! what podman 4.3.1, skopeo 1.9.3 and oras-py 0.2.43 printed against Berth f26b1c0.

mod common;

use common::images::*;
use common::{ADMIN_PASSWORD, ADMIN_USER, Berth};
use serde_json::{Value, json};
use std::io::{Read, Seek};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BOB: &str = "bob";
const BOB_PW: &str = "bob-test-password";
/// No client command in these tests needs more than seconds; this only bounds a hang.
const CLIENT_LIMIT: Duration = Duration::from_secs(300);

// ---------------------------------------------------------------------------------------------
// Running clients, bounded, keeping what they print.

struct Out {
    success: bool,
    stdout: String,
    stderr: String,
    what: String,
}

impl Out {
    /// stderr with logrus' quoting undone: skopeo prints its error inside `msg="…"`, with `\"`
    /// for `"` and `\n` for a line break.
    fn text(&self) -> String {
        self.stderr.replace("\\\"", "\"").replace("\\n", "\n")
    }
}

impl std::fmt::Display for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}\n--- stdout\n{}\n--- stderr\n{}",
            self.what, self.stdout, self.stderr
        )
    }
}

fn exec(cmd: &mut Command) -> Out {
    let mut stdout = tempfile::tempfile().expect("stdout file");
    let mut stderr = tempfile::tempfile().expect("stderr file");
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(stdout.try_clone().expect("clone"))
        .stderr(stderr.try_clone().expect("clone"))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let deadline = Instant::now() + CLIENT_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for client") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let read = |f: &mut std::fs::File| {
        let mut s = String::new();
        f.rewind().expect("rewind");
        f.read_to_string(&mut s).expect("read output");
        s
    };
    let out = Out {
        success: status.is_some_and(|s| s.success()),
        stdout: read(&mut stdout),
        stderr: read(&mut stderr),
        what,
    };
    assert!(
        status.is_some(),
        "client still running after {CLIENT_LIMIT:?}, killed: {out}"
    );
    out
}

fn succeeds(cmd: &mut Command) -> Out {
    let out = exec(cmd);
    assert!(out.success, "failed: {out}");
    out
}

fn fails(cmd: &mut Command) -> Out {
    let out = exec(cmd);
    assert!(!out.success, "should have been refused: {out}");
    out
}

/// A user's podman store and containers-auth.json, shared by podman and skopeo as on a laptop.
struct User {
    dir: PathBuf,
    name: String,
    password: String,
}

impl User {
    fn new(tmp: &Path, name: &str, password: &str) -> User {
        let dir = tmp.join(name);
        for d in ["root", "runroot", "tmp"] {
            std::fs::create_dir_all(dir.join(d)).expect("podman dirs");
        }
        std::fs::write(
            dir.join("policy.json"),
            br#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
        )
        .expect("policy.json");
        std::fs::write(dir.join("auth.json"), br#"{"auths":{}}"#).expect("auth.json");
        User {
            dir,
            name: name.into(),
            password: password.into(),
        }
    }

    fn podman(&self) -> Command {
        let mut c = Command::new(require_tool("podman"));
        c.arg("--root")
            .arg(self.dir.join("root"))
            .arg("--runroot")
            .arg(self.dir.join("runroot"))
            .arg("--tmpdir")
            .arg(self.dir.join("tmp"))
            .args(["--storage-driver", "vfs", "--cgroup-manager", "cgroupfs"])
            .args(["--events-backend", "file"])
            .env("TMPDIR", self.dir.join("tmp"))
            .env("REGISTRY_AUTH_FILE", self.dir.join("auth.json"));
        c
    }

    fn skopeo(&self) -> Command {
        let mut c = Command::new(require_tool("skopeo"));
        c.env("REGISTRY_AUTH_FILE", self.dir.join("auth.json"))
            .arg("--insecure-policy");
        c
    }

    fn policy(&self) -> String {
        format!(
            "--signature-policy={}",
            self.dir.join("policy.json").display()
        )
    }

    /// `podman login` and `skopeo login` with the password, into the same auth file.
    fn log_in(&self, b: &Berth) {
        let args = ["login", "--tls-verify=false", "-u", &self.name, "-p"];
        succeeds(self.podman().args(args).arg(&self.password).arg(&b.host));
        succeeds(self.skopeo().args(args).arg(&self.password).arg(&b.host));
    }

    /// Loads an image of an OCI layout into podman's store under `target` (podman pushes only
    /// what it has).
    fn podman_load(&self, layout: &Path, tag: &str, target: &str) {
        let oci = format!("oci:{}:{tag}", layout.display());
        let out = succeeds(
            self.podman()
                .args(["pull", "--quiet", &self.policy(), &oci]),
        );
        let id = out.stdout.trim().to_string();
        succeeds(self.podman().args(["tag", &id, target]));
    }

    fn podman_push(&self, target: &str) -> Command {
        let mut c = self.podman();
        c.args(["push", "--tls-verify=false", &self.policy(), target]);
        c
    }
}

/// Drives the `oras` Python library as a user would call it; prints one JSON line on success.
/// The retry decorator is taken off `do_request` so that a refusal fails at once instead of after
/// oras' back-off (3 + 4 + 6 + 12 + 28 s); the messages it prints are the same.
const ORAS_SCRIPT: &str = r#"
import json, os, sys
import oras.client, oras.provider
oras.provider.Registry.do_request = oras.provider.Registry.do_request.__wrapped__
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

/// A Python interpreter that can `import oras`: `python3` on PATH (the venv's bin dir, as
/// ./scripts/test.sh arranges) or target/test-venv/bin/python of this workspace.
fn oras_python() -> PathBuf {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-venv/bin/python");
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("python3"))
        .filter(|p| p.is_file())
        .chain(std::iter::once(venv))
        .find(|py| {
            Command::new(py)
                .args(["-c", "import oras.client"])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .expect(
            "no python3 with the `oras` package (looked on PATH and in target/test-venv): run \
             ./scripts/test.sh, which creates target/test-venv with oras installed",
        )
}

fn oras(b: &Berth, tmp: &Path, user: &User, cmd: &str, target: &str, text: &str) -> Command {
    let work = tmp.join(format!("oras-{}-{cmd}-{}", user.name, Rng::new().word()));
    std::fs::create_dir_all(&work).expect("oras work dir");
    let script = work.join("oras_client.py");
    std::fs::write(&script, ORAS_SCRIPT).expect("write oras script");
    let args = json!({
        "cmd": cmd, "host": b.host, "user": user.name, "password": user.password,
        "work": work, "target": format!("{}/{target}", b.host), "text": text,
    });
    let mut c = Command::new(oras_python());
    c.arg(script).arg(args.to_string());
    c
}

// ---------------------------------------------------------------------------------------------
// The server: REST calls, and the log when a test fails.

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client")
}

/// An `/api/v1` call as the superuser that must succeed.
fn admin(b: &Berth, method: &str, path: &str, body: Option<Value>) -> Value {
    let mut req = http()
        .request(
            reqwest::Method::from_bytes(method.as_bytes()).expect("method"),
            b.url(path),
        )
        .basic_auth(ADMIN_USER, Some(ADMIN_PASSWORD));
    if let Some(body) = body {
        req = req.json(&body);
    }
    let r = req
        .send()
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let status = r.status().as_u16();
    let text = r.text().unwrap_or_default();
    assert!(
        (200..300).contains(&status),
        "{method} {path} -> {status} {text}"
    );
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// The tags of a repository as the superuser sees them (empty when it has none or does not exist).
fn tags(b: &Berth, repo: &str) -> Vec<String> {
    let r = http()
        .get(b.url(&format!("/v2/{repo}/tags/list")))
        .basic_auth(ADMIN_USER, Some(ADMIN_PASSWORD))
        .send()
        .expect("tags/list");
    let v: Value = r.json().unwrap_or(Value::Null);
    v["tags"]
        .as_array()
        .map(|t| {
            t.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Prints the server's log when the test fails, to tell a server bug from a test mistake.
struct LogOnFailure<'a>(&'a Berth);

impl Drop for LogOnFailure<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- berth log ({})\n{}", self.0.host, self.0.log());
        }
    }
}

/// A temporary directory whose path is lowercase: podman names an image pulled from `oci:DIR`
/// after DIR, and an image name must be lowercase.
fn lowercase_tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("berth-ce-{}", Rng::new().word()))
        .rand_bytes(0)
        .tempdir()
        .expect("tempdir")
}

/// An OCI layout with two different small images, tagged `v1` and `v2`.
fn two_images(dir: &Path) -> (Image, Image) {
    let mut layout = Layout::create(dir);
    let mut rng = Rng::new();
    let one = layout.image(&mut rng, "amd64", &[20_000, 3_000]);
    layout.tag(OCI_MANIFEST, &one.manifest, "v1");
    let two = layout.image(&mut rng, "amd64", &[15_000]);
    layout.tag(OCI_MANIFEST, &two.manifest, "v2");
    (one, two)
}

/// A `key="value"` parameter of a `WWW-Authenticate` challenge.
fn challenge_param(challenge: &str, key: &str) -> Option<String> {
    let start = challenge.find(&format!("{key}=\""))? + key.len() + 2;
    let len = challenge[start..].find('"')?;
    Some(challenge[start..start + len].to_string())
}

/// What a refusal must not look like on a terminal: a raw JSON error body.
fn assert_no_json_body(out: &Out) {
    for raw in ["{\"errors\"", "\"code\":", "\"message\":"] {
        assert!(
            !out.text().contains(raw),
            "the client printed a raw JSON body ({raw}): {out}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// podman search: the login token lacks the catalog scope; Berth says which scope it needs.

#[test]
fn podman_search_after_login_fetches_a_catalog_token() {
    let b = Berth::start();
    let _log = LogOnFailure(&b);
    let tmp = lowercase_tempdir();
    let src = tmp.path().join("src");
    two_images(&src);
    let admin_user = User::new(tmp.path(), ADMIN_USER, ADMIN_PASSWORD);
    admin_user.log_in(&b);
    succeeds(admin_user.skopeo().args([
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{}:v1", src.display()),
        &format!("docker://{}/admin/searchable:v1", b.host),
    ]));

    // The wire: a token like the one `podman login` gets (no scope) is answered on the catalog
    // with 401 insufficient_scope naming the catalog scope, so that the client asks for it.
    let ping = http().get(b.url("/v2/")).send().expect("GET /v2/");
    let challenge = ping
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let realm = challenge_param(&challenge, "realm").expect("realm in the /v2/ challenge");
    let service = challenge_param(&challenge, "service").expect("service in the challenge");
    let token: Value = http()
        .get(format!("{realm}?account={ADMIN_USER}&service={service}"))
        .basic_auth(ADMIN_USER, Some(ADMIN_PASSWORD))
        .send()
        .expect("token request")
        .json()
        .expect("token JSON");
    let token = token["token"].as_str().expect("token").to_string();
    let r = http()
        .get(b.url("/v2/_catalog"))
        .bearer_auth(&token)
        .send()
        .expect("catalog");
    let status = r.status().as_u16();
    let challenge = r
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert_eq!(status, 401, "catalog with a login token: {challenge}");
    assert!(
        challenge.starts_with("Bearer ")
            && challenge.contains(r#"scope="registry:catalog:*""#)
            && challenge.contains(r#"error="insufficient_scope""#),
        "the challenge must name the catalog scope and insufficient_scope: {challenge}"
    );

    // podman, logged in with the password, lists the repository:
    //   NAME                          DESCRIPTION
    //   127.0.0.1:PORT/admin/searchable
    let out = succeeds(admin_user.podman().args([
        "search",
        "--tls-verify=false",
        &format!("{}/", b.host),
    ]));
    assert!(
        out.stdout
            .lines()
            .any(|l| l.split_whitespace().next() == Some(&format!("{}/admin/searchable", b.host))),
        "podman search does not list admin/searchable: {out}"
    );
}

// ---------------------------------------------------------------------------------------------
// Denials: an account without the right is told "denied", never shown a JSON body.

/// A server where admin owns the private admin/private:v1 and the organization acme, and bob
/// (a plain user, in no team of acme) is logged in with podman, skopeo and oras.
struct Denials {
    b: Berth,
    tmp: tempfile::TempDir,
    bob: User,
    src: PathBuf,
}

fn denials() -> Denials {
    let b = Berth::start();
    let tmp = lowercase_tempdir();
    let src = tmp.path().join("src");
    two_images(&src);
    let admin_user = User::new(tmp.path(), ADMIN_USER, ADMIN_PASSWORD);
    admin_user.log_in(&b);
    succeeds(admin_user.skopeo().args([
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{}:v1", src.display()),
        &format!("docker://{}/admin/private:v1", b.host),
    ]));
    admin(
        &b,
        "POST",
        "/api/v1/superuser/users/",
        Some(json!({"username": BOB, "password": BOB_PW, "email": "bob@example.com"})),
    );
    admin(
        &b,
        "POST",
        "/api/v1/organization/",
        Some(json!({"name": "acme"})),
    );
    let bob = User::new(tmp.path(), BOB, BOB_PW);
    bob.log_in(&b);
    bob.podman_load(&src, "v2", "localhost/bob-image:v2");
    Denials { b, tmp, bob, src }
}

#[test]
fn clients_show_a_denial_for_an_account_without_the_right() {
    let d = denials();
    let _log = LogOnFailure(&d.b);
    let (b, bob) = (&d.b, &d.bob);
    let host = &b.host;

    // podman push into admin's namespace. The first request is a HEAD (no body), so podman
    // prints the challenge's insufficient_scope (Distribution's text for it) and the empty body:
    //   Error: trying to reuse blob sha256:… at destination: checking whether a blob sha256:…
    //   exists in 127.0.0.1:PORT/admin/x: errors:
    //   denied: requested access to the resource is denied
    //   error parsing HTTP 401 response body: unexpected end of JSON input: ""
    let target = format!("{host}/admin/x:v2");
    succeeds(
        bob.podman()
            .args(["tag", "localhost/bob-image:v2", &target]),
    );
    let out = fails(&mut bob.podman_push(&target));
    assert!(out.text().contains("denied"), "podman push: {out}");
    assert_no_json_body(&out);

    // skopeo copy into an organization bob is not in: the same lines, in logrus' fatal message:
    //   level=fatal msg="trying to reuse blob sha256:… at destination: checking whether a blob
    //   sha256:… exists in 127.0.0.1:PORT/acme/x: errors:\ndenied: requested access to the
    //   resource is denied\nerror parsing HTTP 401 response body: unexpected end of JSON input: \"\"\n"
    let out = fails(bob.skopeo().args([
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{}:v1", d.src.display()),
        &format!("docker://{host}/acme/x:v1"),
    ]));
    assert!(out.text().contains("denied"), "skopeo copy: {out}");
    assert_no_json_body(&out);

    // oras push: the POST of the upload answers Berth's message, which oras-py puts in its
    // ValueError as the Python repr of the parsed body (oras' own formatting, not JSON text):
    //   ValueError: Issue retrieving session url: {'errors': [{'code': 'UNAUTHORIZED',
    //   'detail': {}, 'message': 'access denied: account "bob" may not push admin/notes (the
    //   repository does not exist, or the account lacks the permission)'}]}
    // (Until oras_pushes_where_the_account_may_push passes, oras prints this for any new push.)
    let out = fails(&mut oras(
        b,
        d.tmp.path(),
        bob,
        "push",
        "admin/notes:v1",
        "x",
    ));
    assert!(
        out.text()
            .contains(r#"access denied: account "bob" may not push admin/notes"#),
        "oras push: {out}"
    );
    assert_no_json_body(&out);

    // Pulls of admin's private repository: a GET, whose body carries Berth's explanation.
    //   Error: initializing source docker://127.0.0.1:PORT/admin/private:v1: reading manifest v1
    //   in 127.0.0.1:PORT/admin/private: errors:
    //   denied: requested access to the resource is denied
    //   unauthorized: access denied: account "bob" may not pull admin/private (the repository
    //   does not exist, or the account lacks the permission)
    let explanation = r#"unauthorized: access denied: account "bob" may not pull admin/private"#;
    let private = format!("{host}/admin/private:v1");
    let out = fails(
        bob.podman()
            .args(["pull", "--tls-verify=false", &bob.policy(), &private]),
    );
    assert!(out.text().contains("denied"), "podman pull: {out}");
    assert!(out.text().contains(explanation), "podman pull: {out}");
    assert_no_json_body(&out);

    // skopeo: the same two lines, inside level=fatal msg="…".
    let out = fails(bob.skopeo().args([
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{private}"),
        &format!("oci:{}:v1", d.tmp.path().join("bob-out").display()),
    ]));
    assert!(out.text().contains("denied"), "skopeo copy (pull): {out}");
    assert!(
        out.text().contains(explanation),
        "skopeo copy (pull): {out}"
    );
    assert_no_json_body(&out);

    // oras pull logs Berth's message on a line of its own, then raises:
    //   access denied: account "bob" may not pull admin/private (the repository does not
    //   exist, or the account lacks the permission)
    //   ValueError: Issue with http://127.0.0.1:PORT/v2/admin/private/manifests/v1: Unauthorized
    let out = fails(&mut oras(
        b,
        d.tmp.path(),
        bob,
        "pull",
        "admin/private:v1",
        "",
    ));
    assert!(
        out.text()
            .lines()
            .any(|l| l.starts_with(r#"access denied: account "bob" may not pull admin/private"#)),
        "oras pull: {out}"
    );
    assert_no_json_body(&out);

    // Nothing of bob's arrived, and the refusals were about rights, not the login: bob pushes
    // into his own namespace with the same credentials.
    for repo in ["admin/x", "acme/x", "admin/notes"] {
        assert_eq!(tags(b, repo), Vec::<String>::new(), "{repo} got a tag");
    }
    let mine = format!("{host}/bob/mine:v2");
    succeeds(bob.podman().args(["tag", "localhost/bob-image:v2", &mine]));
    succeeds(&mut bob.podman_push(&mine));
    assert_eq!(tags(b, "bob/mine"), vec!["v2".to_string()]);
}

/// A refused push tells the user who may not do what. podman's and skopeo's first request of a
/// push is `HEAD /v2/admin/x/blobs/<digest>`, whose answer has no body: Berth puts the
/// explanation in the challenge's `error_description` (RFC 6750 §3), which they print. (bob may
/// not even read admin/x, so the refused HEAD says "may not pull".)
#[test]
fn a_refused_push_tells_the_user_who_may_not_push_what() {
    let d = denials();
    let _log = LogOnFailure(&d.b);
    let (b, bob) = (&d.b, &d.bob);
    let explanation = "account 'bob' may not pull admin/x";

    let target = format!("{}/admin/x:v2", b.host);
    succeeds(
        bob.podman()
            .args(["tag", "localhost/bob-image:v2", &target]),
    );
    let podman = fails(&mut bob.podman_push(&target));
    let skopeo = fails(bob.skopeo().args([
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{}:v1", d.src.display()),
        &format!("docker://{}/admin/x:v1", b.host),
    ]));
    for out in [&podman, &skopeo] {
        assert!(
            out.text().contains(explanation),
            "the refusal does not say {explanation:?}, only Distribution's generic \
             insufficient_scope text: {out}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Cross-repository mount by skopeo, within one registry.

#[test]
fn skopeo_copy_within_the_registry_mounts_the_layers() {
    let b = Berth::start();
    let _log = LogOnFailure(&b);
    let tmp = lowercase_tempdir();
    let src = tmp.path().join("src");
    let (img, _) = two_images(&src);
    let admin_user = User::new(tmp.path(), ADMIN_USER, ADMIN_PASSWORD);
    admin_user.log_in(&b);
    let a = format!("docker://{}/admin/a:1", b.host);
    succeeds(admin_user.skopeo().args([
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{}:v1", src.display()),
        &a,
    ]));

    // skopeo (containers/image) recorded in its blob-info cache where that push put the layers
    // (/var/lib/containers/cache as root; keyed by registry host:port, so no other test's), and
    // mounts them from there:
    //   level=debug msg="Trying to mount /v2/admin/b/blobs/uploads/?from=admin%2Fa&mount=sha256%3A…"
    //   level=debug msg="... mount OK"
    // (the config blob is uploaded: containers/image never mounts configs).
    let out = succeeds(admin_user.skopeo().args([
        "--debug",
        "copy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        &a,
        &format!("docker://{}/admin/b:1", b.host),
    ]));
    let mount_lines: Vec<&str> = out.stderr.lines().filter(|l| l.contains("mount")).collect();
    let logs = admin(&b, "GET", "/api/v1/repository/admin/b/logs", None);
    let mounted: Vec<&Value> = logs["logs"]
        .as_array()
        .expect("logs")
        .iter()
        .filter(|e| e["kind"] == "mount_blob")
        .collect();
    for layer in &img.layers {
        assert!(
            mounted
                .iter()
                .any(|e| e["metadata"]["digest"] == layer.as_str()
                    && e["metadata"]["source_repository"] == "admin/a"
                    && e["performer"]["name"] == ADMIN_USER),
            "no mount_blob of {layer} from admin/a in admin/b's audit log; skopeo's mount \
             lines: {mount_lines:#?}\nlog: {logs}"
        );
    }
    assert_eq!(tags(&b, "admin/b"), vec!["1".to_string()]);

    // The wire, for clients that mount without having asked for the source: the challenge of a
    // mount asks for the destination's push and the source's pull.
    let url = b.url(&format!(
        "/v2/admin/b/blobs/uploads/?mount={}&from=admin/a",
        img.layers[0]
    ));
    let r = http().post(&url).send().expect("mount without credentials");
    let status = r.status().as_u16();
    let challenge = r
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = r.text().unwrap_or_default();
    assert_eq!(status, 401, "POST {url}: {challenge} {body}");
    let scope = challenge_param(&challenge, "scope").unwrap_or_default();
    let scopes: Vec<&str> = scope.split(' ').collect();
    for want in ["repository:admin/b:pull,push", "repository:admin/a:pull"] {
        assert!(
            scopes.contains(&want),
            "POST {url}: the challenge's scope lacks {want}: {challenge}"
        );
    }
    assert!(body.contains("\"UNAUTHORIZED\""), "POST {url}: {body}");
}

// ---------------------------------------------------------------------------------------------
// Refusals Berth explains: the client shows `denied: <Berth's explanation>`.

/// The refusal is Berth's `DENIED` with its message after the code, not the generic text alone.
fn assert_explained(out: &Out, explanation: &str) {
    assert!(
        out.text().contains(&format!("denied: {explanation}")),
        "expected `denied: {explanation}…` on stderr: {out}"
    );
    assert!(
        !out.text()
            .contains("requested access to the resource is denied"),
        "the generic text instead of Berth's explanation: {out}"
    );
    assert_no_json_body(out);
}

#[test]
fn a_push_onto_an_immutable_tag_shows_why() {
    let b = Berth::start();
    let _log = LogOnFailure(&b);
    let tmp = lowercase_tempdir();
    let src = tmp.path().join("src");
    let (one, _) = two_images(&src);
    let admin_user = User::new(tmp.path(), ADMIN_USER, ADMIN_PASSWORD);
    admin_user.log_in(&b);
    succeeds(admin_user.skopeo().args([
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{}:v1", src.display()),
        &format!("docker://{}/admin/x:v1", b.host),
    ]));
    admin(
        &b,
        "PUT",
        "/api/v1/repository/admin/x/tag/v1",
        Some(json!({"immutable": true})),
    );
    let explanation = "tag admin/x:v1 is immutable and cannot be moved";

    // Error: writing manifest: uploading manifest v1 to 127.0.0.1:PORT/admin/x: denied: tag
    // admin/x:v1 is immutable and cannot be moved; push under a new tag, or ask a repository
    // administrator to lift its immutability
    let target = format!("{}/admin/x:v1", b.host);
    admin_user.podman_load(&src, "v2", &target);
    let out = fails(&mut admin_user.podman_push(&target));
    assert_explained(&out, explanation);

    // level=fatal msg="writing manifest: uploading manifest v1 to 127.0.0.1:PORT/admin/x:
    // denied: tag admin/x:v1 is immutable and cannot be moved; push under a new tag, …"
    let out = fails(admin_user.skopeo().args([
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{}:v2", src.display()),
        &format!("docker://{target}"),
    ]));
    assert_explained(&out, explanation);

    let raw = succeeds(admin_user.skopeo().args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{target}"),
    ]));
    assert_eq!(
        sha256_digest(raw.stdout.as_bytes()),
        one.digest,
        "the immutable tag moved: {raw}"
    );
}

/// The organization acme, with a quota of 1 KiB that refuses pushes at 100%.
fn org_with_a_tiny_quota(b: &Berth) {
    admin(
        b,
        "POST",
        "/api/v1/organization/",
        Some(json!({"name": "acme"})),
    );
    admin(
        b,
        "POST",
        "/api/v1/organization/acme/quota",
        Some(json!({"limit": "1 KiB"})),
    );
    let quotas = admin(b, "GET", "/api/v1/organization/acme/quota", None);
    let id = quotas[0]["id"].as_i64().expect("quota id");
    admin(
        b,
        "POST",
        &format!("/api/v1/organization/acme/quota/{id}/limit"),
        Some(json!({"type": "Reject", "threshold_percent": 100})),
    );
}

#[test]
fn a_push_over_the_quota_shows_why() {
    let b = Berth::start();
    let _log = LogOnFailure(&b);
    let tmp = lowercase_tempdir();
    let src = tmp.path().join("src");
    two_images(&src);
    org_with_a_tiny_quota(&b);
    let admin_user = User::new(tmp.path(), ADMIN_USER, ADMIN_PASSWORD);
    admin_user.log_in(&b);
    // Refused while the layers upload ("this upload/blob would use"), not after them at the manifest.
    let explanation = "namespace acme is over its storage quota: this ";

    // level=fatal msg="writing manifest: uploading manifest v1 to 127.0.0.1:PORT/acme/q: denied:
    // namespace acme is over its storage quota: this upload would use 23.0 KiB of 1.0 KiB (pushes
    // are refused above 100%); delete tags, or ask an administrator to raise the quota"
    let out = fails(admin_user.skopeo().args([
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{}:v1", src.display()),
        &format!("docker://{}/acme/q:v1", b.host),
    ]));
    assert_explained(&out, explanation);

    // Error: writing manifest: uploading manifest v2 to 127.0.0.1:PORT/acme/q: denied: namespace
    // acme is over its storage quota: this blob would use 15.0 KiB of 1.0 KiB (pushes are refused
    // above 100%); delete tags, or ask an administrator to raise the quota
    let target = format!("{}/acme/q:v2", b.host);
    admin_user.podman_load(&src, "v2", &target);
    let out = fails(&mut admin_user.podman_push(&target));
    assert_explained(&out, explanation);

    assert_eq!(tags(&b, "acme/q"), Vec::<String>::new(), "acme/q got a tag");
}

/// oras-py 0.2.43 pushes the way it always has: HEAD the blob (401, challenge scope `pull`), fetch
/// a token for that scope, HEAD again (404), POST the upload. oras-py answers a 401 by retrying
/// with the token it already holds and asks for a new token only after a 403, so Berth answers
/// that POST, whose token was issued for this repository but lacks `push`, with 403 DENIED and
/// the challenge for `pull,push`: oras-py then fetches the wider token and the push goes through.
/// (A pure 401 here, as Distribution answers, makes every oras push of a new blob fail.)
#[test]
fn oras_pushes_where_the_account_may_push() {
    let b = Berth::start();
    let _log = LogOnFailure(&b);
    let tmp = lowercase_tempdir();
    let admin_user = User::new(tmp.path(), ADMIN_USER, ADMIN_PASSWORD);
    let out = exec(&mut oras(
        &b,
        tmp.path(),
        &admin_user,
        "push",
        "admin/notes:v1",
        "notes",
    ));
    assert!(
        out.success,
        "oras push into the superuser's own namespace was refused (the POST of the upload with \
         oras' pull-only token answers 401, which oras-py retries with the same token): {out}"
    );
    assert_eq!(tags(&b, "admin/notes"), vec!["v1".to_string()]);
    let out = succeeds(&mut oras(
        &b,
        tmp.path(),
        &admin_user,
        "pull",
        "admin/notes:v1",
        "",
    ));
    assert!(out.stdout.contains("notes.txt"), "oras pull: {out}");
}
