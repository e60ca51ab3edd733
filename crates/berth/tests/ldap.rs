//! LDAP authentication (`AUTHENTICATION_TYPE: LDAP`) against a real OpenLDAP `slapd` started by
//! the test on 127.0.0.1: logins through the registry token endpoint and the API, account
//! creation and linking, `LDAP_USER_FILTER` / `LDAP_SUPERUSER_FILTER`, secondary user subtrees,
//! team syncing from groups, the local superuser fallback, and a directory that goes away.
//!
//! Needs `slapd`, `slappasswd` and `ldapadd` (Debian `slapd` and `ldap-utils`, which
//! `./scripts/test.sh` installs); without them the test fails and says so.

mod common;

use base64::Engine;
use common::{ADMIN_PASSWORD, ADMIN_USER, Berth, admin_headers, free_port};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SUFFIX: &str = "dc=example,dc=org";
const ROOT_DN: &str = "cn=admin,dc=example,dc=org";
const ROOT_PW: &str = "slapd-root-pw";

/// Path of a program, looked for on PATH and in the sbin directories (slapd lives in /usr/sbin,
/// which a non-root PATH may lack).
fn program(name: &str) -> PathBuf {
    let path = std::env::var("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "{name} not found: the LDAP test needs OpenLDAP's slapd and ldap-utils; run ./scripts/test.sh, which installs the Debian packages slapd and ldap-utils"
            )
        })
}

/// Runs a command to completion within `limit`, returning its stdout; panics on failure.
fn run(cmd: &mut Command, limit: Duration) -> String {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{cmd:?} did not finish within {limit:?}");
            }
        }
    }
    let out = child.wait_with_output().expect("output");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn hash(password: &str) -> String {
    run(
        Command::new(program("slappasswd")).args(["-s", password]),
        Duration::from_secs(10),
    )
}

/// A throwaway slapd: its own config and database in a temporary directory, stopped on drop.
struct Slapd {
    url: String,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl Slapd {
    fn start() -> Slapd {
        let slapd = program("slapd");
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("db");
        std::fs::create_dir(&db).expect("db dir");
        let schema = Path::new("/etc/ldap/schema");
        let conf = format!(
            "include {s}/core.schema\ninclude {s}/cosine.schema\ninclude {s}/inetorgperson.schema\ninclude {s}/nis.schema\n\
             pidfile {d}/slapd.pid\nargsfile {d}/slapd.args\n\
             modulepath /usr/lib/ldap\nmoduleload back_mdb\n\
             database mdb\nmaxsize 10485760\nsuffix \"{SUFFIX}\"\nrootdn \"{ROOT_DN}\"\nrootpw {pw}\ndirectory {db}\n\
             access to attrs=userPassword by self write by anonymous auth by * none\n\
             access to * by * read\n",
            s = schema.display(),
            d = dir.path().display(),
            pw = hash(ROOT_PW),
            db = db.display(),
        );
        let conf_path = dir.path().join("slapd.conf");
        std::fs::write(&conf_path, conf).expect("write slapd.conf");
        let port = free_port();
        let url = format!("ldap://127.0.0.1:{port}/");
        let log = std::fs::File::create(dir.path().join("slapd.log")).expect("slapd log");
        // `-d 0`: stay in the foreground (no fork), so the child is slapd itself.
        let child = Command::new(slapd)
            .arg("-f")
            .arg(&conf_path)
            .args(["-h", &url, "-d", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("clone log")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn slapd");
        let mut s = Slapd {
            url,
            child: Some(child),
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(c) = s.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                panic!("slapd exited with {status}: {}", s.log());
            }
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "slapd did not listen within 15 s: {}",
                s.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        s
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("slapd.log")).unwrap_or_default()
    }

    fn add(&self, ldif: &str) {
        let path = self.dir.path().join("add.ldif");
        std::fs::write(&path, ldif).expect("write ldif");
        run(
            Command::new(program("ldapadd"))
                .args(["-x", "-H", &self.url, "-D", ROOT_DN, "-w", ROOT_PW])
                .args(["-o", "nettimeout=5", "-f"])
                .arg(&path),
            Duration::from_secs(20),
        );
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}

fn person(uid: &str, ou: &str, password: &str, types: &[&str]) -> String {
    let mut s = format!(
        "dn: uid={uid},ou={ou},{SUFFIX}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\nsn: {uid}\n\
         mail: {uid}@example.org\nuserPassword: {}\n",
        hash(password)
    );
    for t in types {
        s.push_str(&format!("employeeType: {t}\n"));
    }
    s
}

fn directory() -> String {
    let mut ldif = format!(
        "dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n\n\
         dn: ou=people,{SUFFIX}\nobjectClass: organizationalUnit\nou: people\n\n\
         dn: ou=contractors,{SUFFIX}\nobjectClass: organizationalUnit\nou: contractors\n\n\
         dn: ou=groups,{SUFFIX}\nobjectClass: organizationalUnit\nou: groups\n\n"
    );
    for entry in [
        person("alice", "people", "alice-pw", &["registry"]),
        person("carol", "people", "carol-pw", &["registry", "admin"]),
        // Outside LDAP_USER_FILTER.
        person("dave", "people", "dave-pw", &["visitor"]),
        // In a secondary subtree.
        person("erin", "contractors", "erin-pw", &["registry"]),
        // A directory entry with the local superuser's name must not take that account over.
        person("admin", "people", "ldap-admin-pw", &["registry", "admin"]),
        // Not a valid Berth user name.
        person("frank!", "people", "frank-pw", &["registry"]),
    ] {
        ldif.push_str(&entry);
        ldif.push('\n');
    }
    ldif.push_str(&format!(
        "dn: cn=devs,ou=groups,{SUFFIX}\nobjectClass: groupOfNames\ncn: devs\nmember: uid=alice,ou=people,{SUFFIX}\n\n\
         dn: cn=ops,ou=groups,{SUFFIX}\nobjectClass: posixGroup\ncn: ops\ngidNumber: 5000\nmemberUid: carol\n"
    ));
    ldif
}

struct Api {
    http: reqwest::Client,
    admin: reqwest::Client,
    base: String,
}

impl Api {
    fn basic(user: &str, pw: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"))
        )
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> (u16, Value) {
        let r = req.send().await.expect("request");
        let status = r.status().as_u16();
        let body = r.bytes().await.expect("body");
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    /// `GET /api/v1/user/` with Basic credentials.
    async fn user(&self, user: &str, pw: &str) -> (u16, Value) {
        let url = format!("{}/api/v1/user/", self.base);
        self.send(
            self.http
                .get(url)
                .header("Authorization", Api::basic(user, pw)),
        )
        .await
    }

    /// A registry token for push and pull of `repo`, with Basic credentials.
    async fn token(&self, user: &str, pw: &str, repo: &str) -> (u16, Value) {
        let url = format!(
            "{}/v2/auth?service=localhost:5000&scope=repository:{repo}:pull,push",
            self.base
        );
        self.send(
            self.http
                .get(url)
                .header("Authorization", Api::basic(user, pw)),
        )
        .await
    }

    async fn admin(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.admin.request(
            reqwest::Method::from_bytes(method.as_bytes()).expect("method"),
            format!("{}{path}", self.base),
        );
        if let Some(b) = body {
            req = req.json(&b);
        }
        self.send(req).await
    }

    async fn failed_logins(&self, user: &str) -> i64 {
        let (s, v) = self
            .admin("GET", &format!("/api/v1/superuser/users/{user}"), None)
            .await;
        assert_eq!(s, 200, "{v}");
        v["failed_logins"].as_i64().expect("failed_logins")
    }

    async fn team_members(&self, team: &str) -> Vec<String> {
        let (s, v) = self
            .admin(
                "GET",
                &format!("/api/v1/organization/ldaporg/team/{team}/members"),
                None,
            )
            .await;
        assert_eq!(s, 200, "{v}");
        v["members"]
            .as_array()
            .expect("members")
            .iter()
            .filter_map(|m| m["name"].as_str().map(str::to_string))
            .collect()
    }
}

/// The `access` claim of a registry token.
fn token_access(v: &Value) -> Value {
    let token = v["token"].as_str().expect("token");
    let payload = token.split('.').nth(1).expect("JWT payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    let claims: Value = serde_json::from_slice(&bytes).expect("claims");
    claims["access"].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn ldap_login_provisioning_filters_team_sync_and_outage() {
    let mut slapd = Slapd::start();
    slapd.add(&directory());
    let berth = Berth::start_with_env(&[
        ("BERTH_AUTHENTICATION_TYPE", "LDAP"),
        ("BERTH_LDAP_URI", &slapd.url),
        ("BERTH_LDAP_BASE_DN", "[dc=example, dc=org]"),
        ("BERTH_LDAP_ADMIN_DN", ROOT_DN),
        ("BERTH_LDAP_ADMIN_PASSWD", ROOT_PW),
        ("BERTH_LDAP_USER_RDN", "[ou=people]"),
        ("BERTH_LDAP_SECONDARY_USER_RDNS", "[ou=contractors]"),
        ("BERTH_LDAP_USER_FILTER", "(employeeType=registry)"),
        ("BERTH_LDAP_SUPERUSER_FILTER", "(employeeType=admin)"),
        ("BERTH_LDAP_TIMEOUT", "5"),
        ("BERTH_LDAP_NETWORK_TIMEOUT", "5"),
        // One failed login must not hold back the next step of the test.
        ("BERTH_LOGIN_BACKOFF_BASE_MS", "1"),
    ]);
    let timeout = Duration::from_secs(30);
    let api = Api {
        http: reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .expect("client"),
        admin: reqwest::Client::builder()
            .timeout(timeout)
            .default_headers(admin_headers())
            .build()
            .expect("client"),
        base: berth.base.clone(),
    };

    // (f) The bootstrap superuser has a local password and no LDAP link: it logs in locally,
    // and the directory's own "admin" entry cannot log in as it.
    let (s, v) = api.user(ADMIN_USER, ADMIN_PASSWORD).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["super_user"], true);
    let (s, v) = api.user(ADMIN_USER, "ldap-admin-pw").await;
    assert_eq!(
        s, 401,
        "the directory's admin entry took over the local admin: {v}"
    );

    // (a) A directory user gets a registry token and is created, linked, with the LDAP email.
    let (s, v) = api.token("alice", "alice-pw", "alice/app").await;
    assert_eq!(s, 200, "{v}");
    let access = token_access(&v);
    assert_eq!(access[0]["name"], "alice/app", "{access}");
    let actions: Vec<&str> = access[0]["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        actions.contains(&"push") && actions.contains(&"pull"),
        "{access}"
    );
    let (s, v) = api.user("alice", "alice-pw").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["username"], "alice");
    assert_eq!(v["email"], "alice@example.org");
    assert_eq!(v["super_user"], false);
    assert_eq!(v["has_password_set"], false, "{v}");
    let logins = v["logins"].as_array().expect("logins");
    assert_eq!(logins.len(), 1, "{v}");
    assert_eq!(logins[0]["service"], "ldap");
    assert_eq!(logins[0]["service_identifier"], "alice");
    assert_eq!(
        logins[0]["metadata"]["dn"],
        format!("uid=alice,ou=people,{SUFFIX}")
    );
    // LDAP matches uids without regard to case: the same account.
    let (s, v) = api.user("Alice", "alice-pw").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["username"], "alice");

    // (b) A wrong password: 401, audited, counted; an empty one is refused before any bind (an
    // LDAP bind with an empty password is anonymous and would succeed); filter input is escaped.
    let (s, v) = api.user("alice", "wrong-pw").await;
    assert_eq!(s, 401, "{v}");
    assert!(
        v["error_message"]
            .as_str()
            .unwrap_or("")
            .contains("invalid username or password"),
        "{v}"
    );
    assert_eq!(api.failed_logins("alice").await, 1);
    let (s, v) = api
        .admin("GET", "/api/v1/superuser/logs?kind=login_failure", None)
        .await;
    assert_eq!(s, 200, "{v}");
    assert!(
        v["logs"]
            .as_array()
            .expect("logs")
            .iter()
            .any(|l| l["kind"] == "login_failure" && l["performer"]["name"] == "alice"),
        "no login_failure entry for alice: {v}"
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    let (s, v) = api.user("alice", "").await;
    assert_eq!(s, 401, "empty password accepted: {v}");
    tokio::time::sleep(Duration::from_millis(20)).await;
    let (s, v) = api.user("ali*", "alice-pw").await;
    assert_eq!(s, 401, "a filter wildcard in the user name matched: {v}");
    tokio::time::sleep(Duration::from_millis(20)).await;
    // A success clears the failures.
    let (s, v) = api.user("alice", "alice-pw").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(api.failed_logins("alice").await, 0);

    // (c) Outside LDAP_USER_FILTER: refused with the right password, and no account is made.
    let (s, v) = api.token("dave", "dave-pw", "dave/app").await;
    assert_eq!(s, 401, "{v}");
    let (s, v) = api.user("dave", "dave-pw").await;
    assert_eq!(s, 401, "{v}");
    let (s, _) = api.admin("GET", "/api/v1/superuser/users/dave", None).await;
    assert_eq!(s, 404, "an account was made for a user outside the filter");
    // A secondary user subtree is searched too.
    let (s, v) = api.user("erin", "erin-pw").await;
    assert_eq!(s, 200, "{v}");
    // A uid that is no valid Berth name is refused, saying why.
    let (s, v) = api.user("frank!", "frank-pw").await;
    assert_eq!(s, 401, "{v}");
    assert!(
        v["error_message"]
            .as_str()
            .unwrap_or("")
            .contains("cannot become a Berth user"),
        "{v}"
    );

    // (d) LDAP_SUPERUSER_FILTER makes a superuser.
    let (s, v) = api.user("carol", "carol-pw").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["super_user"], true, "{v}");
    let (s, v) = api
        .send(
            api.http
                .get(format!("{}/api/v1/superuser/users/", berth.base))
                .header("Authorization", Api::basic("carol", "carol-pw")),
        )
        .await;
    assert_eq!(s, 200, "carol is not a superuser to the API: {v}");

    // (e) Team syncing: teams follow their groups as members log in.
    let (s, v) = api
        .admin(
            "POST",
            "/api/v1/organization/",
            Some(json!({"name": "ldaporg"})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    for team in ["devs", "ops"] {
        let (s, v) = api
            .admin(
                "PUT",
                &format!("/api/v1/organization/ldaporg/team/{team}"),
                Some(json!({"role": "member"})),
            )
            .await;
        assert_eq!(s, 200, "{v}");
    }
    let syncing = |team: &str| format!("/api/v1/organization/ldaporg/team/{team}/syncing");
    // Only superusers set syncing up.
    let (s, v) = api
        .send(
            api.http
                .post(format!("{}{}", berth.base, syncing("devs")))
                .header("Authorization", Api::basic("alice", "alice-pw"))
                .json(&json!({"group_dn": "cn=devs,ou=groups"})),
        )
        .await;
    assert_eq!(s, 403, "{v}");
    let (s, v) = api
        .admin(
            "POST",
            &syncing("devs"),
            Some(json!({"group_dn": "cn=nope,ou=groups"})),
        )
        .await;
    assert_eq!(s, 400, "a missing group was accepted: {v}");
    let (s, v) = api
        .admin(
            "POST",
            &syncing("devs"),
            Some(json!({"group_dn": "cn=devs,ou=groups"})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["is_synced"], true, "{v}");
    // An absolute DN under the base DN is accepted as well.
    let (s, v) = api
        .admin(
            "POST",
            &syncing("ops"),
            Some(json!({"group_dn": format!("cn=ops,ou=groups,{SUFFIX}")})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = api
        .admin(
            "GET",
            "/api/v1/superuser/logs?kind=org_team_sync_enable",
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["logs"].as_array().map(Vec::len), Some(2), "{v}");
    // alice is put in ops by hand; the ops group (memberUid) does not list her.
    let (s, v) = api
        .admin(
            "PUT",
            "/api/v1/organization/ldaporg/team/ops/members/alice",
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = api.user("alice", "alice-pw").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(api.team_members("devs").await, ["alice"]);
    assert!(
        !api.team_members("ops").await.contains(&"alice".to_string()),
        "alice stayed in ops although its group does not list her"
    );
    let (s, v) = api.user("carol", "carol-pw").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(api.team_members("ops").await, ["carol"]);
    assert_eq!(api.team_members("devs").await, ["alice"]);
    let (s, v) = api.admin("DELETE", &syncing("ops"), None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["is_synced"], false, "{v}");

    // (g) The directory goes away: a clear error, no failed login counted; local admin still in.
    slapd.stop();
    let started = Instant::now();
    let (s, v) = api.user("alice", "alice-pw").await;
    assert_eq!(s, 401, "{v}");
    let msg = v["error_message"].as_str().unwrap_or("").to_string();
    assert!(
        msg.contains("directory") && msg.contains("unreachable"),
        "unclear error: {v}"
    );
    let (s, v) = api.token("alice", "alice-pw", "alice/app").await;
    assert_eq!(s, 401, "{v}");
    assert!(v.to_string().contains("unreachable"), "{v}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "outage answers took {:?}",
        started.elapsed()
    );
    assert_eq!(
        api.failed_logins("alice").await,
        0,
        "an unreachable directory was counted as a failed login"
    );
    let (s, v) = api.user(ADMIN_USER, ADMIN_PASSWORD).await;
    assert_eq!(
        s, 200,
        "the local admin cannot log in while LDAP is down: {v}"
    );
    assert!(
        berth.log().contains("LDAP could not check a login"),
        "the outage was not logged"
    );
}

/// A directory that accepts connections and never answers: LDAP_TIMEOUT bounds the login, which
/// fails as unreachable instead of hanging.
#[tokio::test(flavor = "multi_thread")]
async fn silent_directory_times_out() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    listener.set_nonblocking(true).expect("nonblocking");
    // Holds every accepted connection open, without a word, for at most a minute.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            match listener.accept() {
                Ok((s, _)) => held.push(s),
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    });
    let uri = format!("ldap://127.0.0.1:{port}/");
    let berth = Berth::start_with_env(&[
        ("BERTH_AUTHENTICATION_TYPE", "LDAP"),
        ("BERTH_LDAP_URI", &uri),
        ("BERTH_LDAP_BASE_DN", "dc=example,dc=org"),
        ("BERTH_LDAP_TIMEOUT", "1"),
        ("BERTH_LDAP_NETWORK_TIMEOUT", "1"),
    ]);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let started = Instant::now();
    let r = http
        .get(berth.url("/api/v1/user/"))
        .header("Authorization", Api::basic("alice", "alice-pw"))
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    let body = r.text().await.expect("body");
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("unreachable"), "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "LDAP_TIMEOUT was not applied: the login took {:?}",
        started.elapsed()
    );
    assert!(
        berth.log().contains("LDAP_TIMEOUT"),
        "the log does not say which limit was hit: {}",
        berth.log()
    );
}
