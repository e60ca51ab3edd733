//! Notifications against real receivers on 127.0.0.1: Quay's payloads field by field, templates,
//! signatures, Slack's message, `/test`; delivery through an outage (in order, once each), a
//! receiver that keeps failing (the notification is disabled, recorded, reset), a SIGKILL between
//! a push and its delivery, a push that fails (nothing sent), and the outbound guard.

mod common;

use common::Berth;
use common::client::Client;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request a receiver got.
#[derive(Debug, Clone)]
struct Got {
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Got {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// An HTTP receiver on 127.0.0.1 that records requests and answers `status` (or a redirect
/// to `redirect`); stopping it closes the port, as a receiver that is down.
struct Receiver {
    port: u16,
    got: Arc<Mutex<Vec<Got>>>,
    status: Arc<AtomicU16>,
    redirect: Arc<Mutex<Option<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn handle(mut s: TcpStream, got: &Mutex<Vec<Got>>, status: u16, redirect: Option<String>) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let mut r = BufReader::new(match s.try_clone() {
        Ok(c) => c,
        Err(_) => return,
    });
    let mut line = String::new();
    if r.read_line(&mut line).is_err() {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).is_err() || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.trim_end().split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    if r.read_exact(&mut body).is_err() {
        return;
    }
    got.lock().expect("lock").push(Got {
        path,
        headers,
        body,
    });
    let reply = match redirect {
        Some(to) => format!(
            "HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ),
        None => format!("HTTP/1.1 {status} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"),
    };
    let _ = s.write_all(reply.as_bytes());
}

impl Receiver {
    fn start() -> Receiver {
        let port = TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        Receiver::on(port)
    }

    /// A receiver on `port` (which may have been another's).
    fn on(port: u16) -> Receiver {
        let mut r = Receiver {
            port,
            got: Arc::default(),
            status: Arc::new(AtomicU16::new(200)),
            redirect: Arc::default(),
            stop: Arc::default(),
            thread: None,
        };
        r.resume();
        r
    }

    /// Closes the port.
    fn pause(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// Listens again on the same port.
    fn resume(&mut self) {
        self.stop.store(false, Ordering::SeqCst);
        let deadline = Instant::now() + Duration::from_secs(10);
        let listener = loop {
            match TcpListener::bind(("127.0.0.1", self.port)) {
                Ok(l) => break l,
                Err(e) => {
                    assert!(Instant::now() < deadline, "rebind {}: {e}", self.port);
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        };
        listener.set_nonblocking(true).expect("nonblocking");
        let (got, status, redirect, stop) = (
            self.got.clone(),
            self.status.clone(),
            self.redirect.clone(),
            self.stop.clone(),
        );
        self.thread = Some(std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((s, _)) => {
                        let _ = s.set_nonblocking(false);
                        let to = redirect.lock().expect("lock").clone();
                        handle(s, &got, status.load(Ordering::SeqCst), to);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        }));
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn got(&self) -> Vec<Got> {
        self.got.lock().expect("lock").clone()
    }

    /// Waits (at most 30 s) until `n` requests have come to `path`.
    fn wait_for(&self, path: &str, n: usize) -> Vec<Got> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let got: Vec<Got> = self.got().into_iter().filter(|g| g.path == path).collect();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {n} requests to {path}: {got:?}",
                got.len()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.pause();
    }
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> String {
    let mut k = [0u8; 64];
    k[..key.len().min(64)].copy_from_slice(&key[..key.len().min(64)]);
    let pad = |b: u8| k.iter().map(|x| x ^ b).collect::<Vec<u8>>();
    let inner = Sha256::digest([pad(0x36), msg.to_vec()].concat());
    let outer = Sha256::digest([pad(0x5c), inner.to_vec()].concat());
    format!("sha256={}", hex::encode(outer))
}

/// Pushes a one-layer image; the first refusal's status (the blob's or the manifest's).
fn try_push(c: &Client, repo: &str, tag: &str, layer: &[u8]) -> u16 {
    let config = format!(r#"{{"architecture":"amd64","os":"linux","tag":"{tag}"}}"#).into_bytes();
    for blob in [&config[..], layer] {
        let s = c
            .req(
                "POST",
                &format!(
                    "/v2/{repo}/blobs/uploads/?digest={}",
                    common::client::sha(blob)
                ),
            )
            .body(blob.to_vec())
            .send()
            .expect("upload")
            .status()
            .as_u16();
        if s != 201 {
            return s;
        }
    }
    let manifest = json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": common::client::sha(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": common::client::sha(layer), "size": layer.len()}],
    });
    c.req("PUT", &format!("/v2/{repo}/manifests/{tag}"))
        .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        .body(manifest.to_string())
        .send()
        .expect("put")
        .status()
        .as_u16()
}

fn fast_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("BERTH_SSRF_ALLOWED_HOSTS", "[127.0.0.1]"),
        ("BERTH_NOTIFICATION_RETRY_BASE", "1s"),
        ("BERTH_NOTIFICATION_RETRY_WINDOW", "4s"),
        ("BERTH_NOTIFICATION_MAX_FAILURES", "2"),
    ]
}

fn notification(c: &Client, repo: &str, body: Value) -> Value {
    let (s, v) = c.api(
        "POST",
        &format!("/api/v1/repository/{repo}/notification/"),
        Some(body),
    );
    assert_eq!(s, 201, "{v}");
    v
}

#[test]
fn a_push_is_delivered_with_quays_payload_signed_templated_and_to_slack() {
    let b = Berth::start_with_env(&fast_env());
    let c = Client::new(&b);
    let r = Receiver::start();
    let repo = "admin/app";
    c.image(repo, "v1", "first", &[b"layer one"]);

    let plain = notification(
        &c,
        repo,
        json!({"event": "repo_push", "method": "webhook", "title": "CI",
               "config": {"url": r.url("/plain")}, "eventConfig": {}}),
    );
    let secret = plain["secret"]
        .as_str()
        .expect("the signing secret, once")
        .to_string();
    assert_eq!(plain["event_config"], json!({}));
    assert_eq!(plain["number_of_failures"], 0);
    notification(
        &c,
        repo,
        json!({"event": "repo_push", "method": "webhook",
               "config": {"url": r.url("/templated"),
                          "template": "{\"text\": \"pushed ${repository}: ${updated_tags}\", \"tags\": \"${updated_tags}\"}",
                          "headers": {"Authorization": "Bearer hook-token"}},
               "eventConfig": {}}),
    );
    notification(
        &c,
        repo,
        json!({"event": "repo_push", "method": "slack", "config": {"url": r.url("/slack")}, "eventConfig": {}}),
    );
    notification(
        &c,
        repo,
        json!({"event": "repo_push", "method": "webhook", "config": {"url": r.url("/cloudevents"), "format": "cloudevents"}, "eventConfig": {}}),
    );
    let (s, list) = c.api(
        "GET",
        &format!("/api/v1/repository/{repo}/notification/"),
        None,
    );
    assert_eq!(s, 200);
    let listed = list["notifications"].as_array().expect("list");
    assert_eq!(listed.len(), 4);
    assert!(listed.iter().all(|n| n.get("secret").is_none()), "{list}");
    assert!(
        !list.to_string().contains("hook-token"),
        "header values are never shown: {list}"
    );
    assert_eq!(listed[1]["config"]["headers"], json!(["Authorization"]));

    c.image(repo, "v2", "second", &[b"layer two"]);
    let got = r.wait_for("/plain", 1);
    let p = &got[0];
    let body = p.json();
    let keys: Vec<&str> = body
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "docker_url",
            "homepage",
            "name",
            "namespace",
            "repository",
            "updated_tags"
        ],
        "exactly Quay's event_data: {body}"
    );
    assert_eq!(body["repository"], repo);
    assert_eq!(body["namespace"], "admin");
    assert_eq!(body["name"], "app");
    assert_eq!(body["updated_tags"], json!(["v2"]));
    assert!(
        body["docker_url"]
            .as_str()
            .is_some_and(|u| u.ends_with("/admin/app")),
        "{body}"
    );
    assert!(
        body["homepage"]
            .as_str()
            .is_some_and(|u| u.starts_with("http://") && u.ends_with("/repository/admin/app")),
        "{body}"
    );
    assert_eq!(p.header("content-type"), Some("application/json"));
    assert_eq!(p.header("x-berth-event"), Some("repo_push"));
    assert!(p.header("x-berth-event-id").is_some_and(|i| i.len() == 36));
    assert!(p.header("x-berth-delivery").is_some());
    assert_eq!(
        p.header("x-berth-signature-256"),
        Some(hmac_sha256(secret.as_bytes(), &p.body).as_str()),
        "the signature verifies with the secret shown at creation"
    );

    let t = &r.wait_for("/templated", 1)[0];
    assert_eq!(
        t.json(),
        json!({"text": "pushed admin/app: v2", "tags": ["v2"]})
    );
    assert_eq!(t.header("authorization"), Some("Bearer hook-token"));

    let ce = &r.wait_for("/cloudevents", 1)[0];
    assert_eq!(
        ce.header("content-type"),
        Some("application/cloudevents+json")
    );
    let ce_body = ce.json();
    assert_eq!(ce_body["specversion"], "1.0");
    assert_eq!(ce_body["type"], "dev.berth.repo_push");
    assert_eq!(
        ce_body["id"].as_str(),
        p.header("x-berth-event-id"),
        "one event id for all"
    );
    assert_eq!(ce_body["data"], body);

    let sl = r.wait_for("/slack", 1)[0].json();
    assert_eq!(sl["text"], "Repository admin/app updated");
    assert_eq!(sl["attachments"][0]["color"], "good");
    assert_eq!(sl["attachments"][0]["mrkdwn_in"], json!(["text"]));
    assert!(
        sl["attachments"][0]["text"]
            .as_str()
            .is_some_and(|t| t.contains("`v2`")),
        "{sl}"
    );

    // A tag moved through the API fires too; a failed push fires nothing.
    let v1 = c.image(repo, "v3", "third", &[b"layer three"]);
    r.wait_for("/plain", 2);
    let (s, v) = c.api(
        "PUT",
        &format!("/api/v1/repository/{repo}/tag/moved"),
        Some(json!({"manifest_digest": v1.digest})),
    );
    assert_eq!(s, 201, "{v}");
    let got = r.wait_for("/plain", 3);
    assert_eq!(got[2].json()["updated_tags"], json!(["moved"]));
    let missing = json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": format!("sha256:{}", "0".repeat(64)), "size": 2},
        "layers": [],
    });
    let s = c
        .req("PUT", &format!("/v2/{repo}/manifests/broken"))
        .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        .body(missing.to_string())
        .send()
        .expect("put")
        .status()
        .as_u16();
    assert_eq!(s, 400, "refused push");

    // /test sends Quay's sample through the same path.
    let uuid = plain["uuid"].as_str().expect("uuid");
    let (s, v) = c.api(
        "POST",
        &format!("/api/v1/repository/{repo}/notification/{uuid}/test"),
        None,
    );
    assert_eq!((s, &v), (200, &json!({})));
    let got = r.wait_for("/plain", 4);
    assert_eq!(got[3].json()["updated_tags"], json!(["latest", "foo"]));
    assert_eq!(got.len(), 4, "nothing from the refused push: {got:?}");

    let (s, log) = c.api(
        "GET",
        &format!("/api/v1/repository/{repo}/notification/{uuid}/deliveries"),
        None,
    );
    assert_eq!(s, 200);
    let attempts = log["attempts"].as_array().expect("attempts");
    assert_eq!(attempts.len(), 4, "{log}");
    assert!(attempts.iter().all(|a| a["status"] == 200), "{log}");
    // Another repository's path does not reach this notification.
    c.image("admin/other", "v1", "x", &[b"x"]);
    let (s, _) = c.api(
        "GET",
        &format!("/api/v1/repository/admin/other/notification/{uuid}"),
        None,
    );
    assert_eq!(s, 404);
}

#[test]
fn deliveries_wait_out_an_outage_in_order_and_a_failing_receiver_disables_the_notification() {
    let b = Berth::start_with_env(&fast_env());
    let c = Client::new(&b);
    let mut r = Receiver::start();
    r.pause();
    let repo = "admin/flaky";
    c.image(repo, "base", "base", &[b"base"]);
    let n = notification(
        &c,
        repo,
        json!({"event": "repo_push", "method": "webhook", "config": {"url": r.url("/hook")}, "eventConfig": {}}),
    );
    let uuid = n["uuid"].as_str().expect("uuid").to_string();
    for t in ["t1", "t2", "t3"] {
        c.image(repo, t, t, &[t.as_bytes()]);
    }
    std::thread::sleep(Duration::from_millis(1500));
    r.resume();
    let got = r.wait_for("/hook", 3);
    let tags: Vec<Value> = got
        .iter()
        .map(|g| g.json()["updated_tags"][0].clone())
        .collect();
    assert_eq!(tags, [json!("t1"), json!("t2"), json!("t3")], "in order");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(r.got().len(), 3, "each once");
    let (_, log) = c.api(
        "GET",
        &format!("/api/v1/repository/{repo}/notification/{uuid}/deliveries"),
        None,
    );
    assert!(
        log["attempts"].as_array().is_some_and(|a| a
            .iter()
            .any(|x| x["error"].as_str().is_some_and(|e| e.contains("connect")))),
        "the outage is in the log: {log}"
    );

    // Now the receiver fails every attempt: two deliveries fail for good, and the notification
    // is disabled (NOTIFICATION_MAX_FAILURES: 2), recorded in the repository's log.
    r.status.store(500, Ordering::SeqCst);
    c.image(repo, "t4", "t4", &[b"t4"]);
    c.image(repo, "t5", "t5", &[b"t5"]);
    let deadline = Instant::now() + Duration::from_secs(40);
    let view = loop {
        let (_, v) = c.api(
            "GET",
            &format!("/api/v1/repository/{repo}/notification/{uuid}"),
            None,
        );
        if v["disabled_at"].is_i64() {
            break v;
        }
        assert!(Instant::now() < deadline, "not disabled: {v}");
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(view["number_of_failures"], 2, "{view}");
    let retried = r.got().len() - 3;
    assert!(
        retried >= 3,
        "failed deliveries were retried ({retried} attempts)"
    );
    let (_, logs) = c.api(
        "GET",
        &format!("/api/v1/repository/{repo}/logs?kind=disable_repo_notification"),
        None,
    );
    assert_eq!(logs["logs"].as_array().map(Vec::len), Some(1), "{logs}");
    let m = c.metrics();
    for want in [
        r#"berth_notification_deliveries_total{method="webhook",outcome="delivered"} 3"#,
        r#"outcome="retried""#,
        r#"outcome="failed""#,
        "berth_notifications_disabled_total 1",
    ] {
        assert!(m.contains(want), "{want} in\n{m}");
    }
    // Disabled: later pushes send nothing; a reset re-enables it.
    let before = r.got().len();
    r.status.store(200, Ordering::SeqCst);
    c.image(repo, "t6", "t6", &[b"t6"]);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(r.got().len(), before, "disabled");
    let (s, _) = c.api(
        "POST",
        &format!("/api/v1/repository/{repo}/notification/{uuid}"),
        None,
    );
    assert_eq!(s, 204);
    let (_, v) = c.api(
        "GET",
        &format!("/api/v1/repository/{repo}/notification/{uuid}"),
        None,
    );
    assert_eq!(
        (v["number_of_failures"].clone(), v["disabled_at"].clone()),
        (json!(0), Value::Null)
    );
    c.image(repo, "t7", "t7", &[b"t7"]);
    let got = r.wait_for("/hook", before + 1);
    assert_eq!(
        got.last().map(|g| g.json()["updated_tags"][0].clone()),
        Some(json!("t7"))
    );
}

#[test]
fn a_delivery_survives_a_sigkill_between_the_push_and_its_sending() {
    let mut b = Berth::start_with_env(&fast_env());
    let c = Client::new(&b);
    let mut r = Receiver::start();
    r.pause();
    let repo = "admin/crash";
    c.image(repo, "base", "base", &[b"base"]);
    notification(
        &c,
        repo,
        json!({"event": "repo_push", "method": "webhook", "config": {"url": r.url("/hook")}, "eventConfig": {}}),
    );
    c.image(repo, "v1", "v1", &[b"v1"]);
    b.kill9();
    r.resume();
    b.restart();
    let got = r.wait_for("/hook", 1);
    assert_eq!(got[0].json()["updated_tags"], json!(["v1"]));
    std::thread::sleep(Duration::from_secs(3));
    let ids: std::collections::BTreeSet<String> = r
        .got()
        .iter()
        .filter_map(|g| g.header("x-berth-event-id").map(str::to_string))
        .collect();
    assert_eq!(ids.len(), 1, "one event, delivered once: {:?}", r.got());
    assert_eq!(r.got().len(), 1);
}

#[test]
fn the_outbound_guard_refuses_internal_targets_and_redirects_unless_allowed() {
    let b = Berth::start();
    let c = Client::new(&b);
    let repo = "admin/guarded";
    c.image(repo, "v1", "v1", &[b"v1"]);
    for url in [
        "http://127.0.0.1:9/hook",
        "http://10.1.2.3/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://localhost:9/hook",
        "http://[::1]:9/hook",
        "file:///etc/passwd",
    ] {
        for method in ["webhook", "slack"] {
            let (s, v) = c.api(
                "POST",
                &format!("/api/v1/repository/{repo}/notification/"),
                Some(json!({"event": "repo_push", "method": method, "config": {"url": url}, "eventConfig": {}})),
            );
            assert_eq!(s, 400, "{method} to {url}: {v}");
        }
    }
    drop(c);
    drop(b);

    // Allowed, the receiver is reached; a redirect it answers is not followed.
    let b = Berth::start_with_env(&fast_env());
    let c = Client::new(&b);
    let r = Receiver::start();
    *r.redirect.lock().expect("lock") = Some("http://169.254.169.254/latest/meta-data/".into());
    c.image(repo, "v1", "v1", &[b"v1"]);
    let n = notification(
        &c,
        repo,
        json!({"event": "repo_push", "method": "webhook", "config": {"url": r.url("/hook")}, "eventConfig": {}}),
    );
    let uuid = n["uuid"].as_str().expect("uuid");
    c.image(repo, "v2", "v2", &[b"v2"]);
    r.wait_for("/hook", 1);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, log) = c.api(
            "GET",
            &format!("/api/v1/repository/{repo}/notification/{uuid}/deliveries"),
            None,
        );
        if let Some(a) = log["attempts"].as_array().and_then(|a| a.first()) {
            assert_eq!(a["status"], 302, "{log}");
            assert!(
                a["error"]
                    .as_str()
                    .is_some_and(|e| e.contains("redirects are not followed")),
                "{log}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "no attempt logged");
        std::thread::sleep(Duration::from_millis(200));
    }
    // Unknown events and methods are refused with what to use.
    let (s, v) = c.api(
        "POST",
        &format!("/api/v1/repository/{repo}/notification/"),
        Some(json!({"event": "repo_pushed", "method": "webhook", "config": {"url": r.url("/x")}})),
    );
    assert_eq!(s, 400, "{v}");
    let (s, v) = c.api(
        "POST",
        &format!("/api/v1/repository/{repo}/notification/"),
        Some(json!({"event": "repo_push", "method": "hipchat", "config": {}})),
    );
    assert_eq!(s, 400, "{v}");
    assert!(v.to_string().contains("no longer exist"), "{v}");
}

#[test]
fn two_instances_deliver_each_event_once() {
    let a = Berth::start_with_env(&fast_env());
    let b = a.start_sibling();
    let (ca, cb) = (Client::new(&a), Client::new(&b));
    let r = Receiver::start();
    let repo = "admin/both";
    ca.image(repo, "base", "base", &[b"base"]);
    notification(
        &ca,
        repo,
        json!({"event": "repo_push", "method": "webhook", "config": {"url": r.url("/hook")}, "eventConfig": {}}),
    );
    for i in 0..10 {
        let c = if i % 2 == 0 { &ca } else { &cb };
        let t = format!("t{i}");
        c.image(repo, &t, &t, &[t.as_bytes()]);
    }
    let got = r.wait_for("/hook", 10);
    std::thread::sleep(Duration::from_secs(3));
    let got_now = r.got();
    assert_eq!(
        got_now.len(),
        10,
        "one delivery per event, not one per instance: {got:?}"
    );
    let ids: std::collections::BTreeSet<&str> = got_now
        .iter()
        .filter_map(|g| g.header("x-berth-event-id"))
        .collect();
    assert_eq!(ids.len(), 10);
    let mut tags: Vec<String> = got_now
        .iter()
        .filter_map(|g| g.json()["updated_tags"][0].as_str().map(str::to_string))
        .collect();
    tags.sort();
    let mut want: Vec<String> = (0..10).map(|i| format!("t{i}")).collect();
    want.sort();
    assert_eq!(tags, want);
}

#[test]
fn quota_notifications_of_a_namespace_fire_on_a_warning_crossed_and_a_refused_push() {
    let b = Berth::start_with_env(&fast_env());
    let c = Client::new(&b);
    let r = Receiver::start();
    c.org("quota", 86400);
    let (s, v) = c.api(
        "POST",
        "/api/v1/organization/quota/quota",
        Some(json!({"limit_bytes": 10_000})),
    );
    assert_eq!(s, 201, "{v}");
    let (_, q) = c.api("GET", "/api/v1/organization/quota/quota", None);
    let id = q[0]["id"].as_i64().expect("quota id");
    for (kind, pct) in [("Warning", 50), ("Reject", 100)] {
        let (s, v) = c.api(
            "POST",
            &format!("/api/v1/organization/quota/quota/{id}/limit"),
            Some(json!({"type": kind, "threshold_percent": pct})),
        );
        assert_eq!(s, 201, "{v}");
    }
    for (event, path) in [("quota_warning", "/warn"), ("quota_error", "/error")] {
        let (s, v) = c.api(
            "POST",
            "/api/v1/organization/quota/notifications",
            Some(json!({"event": event, "method": "webhook", "config": {"url": r.url(path)}, "eventConfig": {}})),
        );
        assert_eq!(s, 201, "{v}");
    }
    // A repository event is refused on a namespace, and a quota event on a repository.
    let (s, _) = c.api(
        "POST",
        "/api/v1/organization/quota/notifications",
        Some(json!({"event": "repo_push", "method": "webhook", "config": {"url": r.url("/x")}})),
    );
    assert_eq!(s, 400);
    c.image("quota/app", "small", "small", &[&[1u8; 1000]]);
    let (s, _) = c.api(
        "POST",
        "/api/v1/repository/quota/app/notification/",
        Some(json!({"event": "quota_error", "method": "webhook", "config": {"url": r.url("/x")}})),
    );
    assert_eq!(s, 400);

    c.image("quota/app", "half", "half", &[&[2u8; 5000]]);
    let w = r.wait_for("/warn", 1)[0].json();
    assert_eq!(w["namespace"], "quota");
    assert!(
        w["homepage"]
            .as_str()
            .is_some_and(|h| h.ends_with("/organization/quota")),
        "{w}"
    );
    assert_eq!(w["threshold_percent"], 50);
    assert_eq!(w["limit_bytes"], 10_000);
    assert!(w["usage_bytes"].as_i64().is_some_and(|u| u >= 5000), "{w}");
    for k in [
        "usage_percent",
        "usage_bytes_formatted",
        "limit_bytes_formatted",
    ] {
        assert!(w.get(k).is_some(), "{k} in {w}");
    }
    assert_ne!(
        try_push(&c, "quota/app", "big", &[3u8; 8000]),
        201,
        "over the reject limit"
    );
    let e = r.wait_for("/error", 1)[0].json();
    assert_eq!(e["threshold_percent"], 100);
    // Once per cooldown: another refusal sends nothing more.
    assert_ne!(try_push(&c, "quota/app", "big2", &[4u8; 8000]), 201);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(r.got().iter().filter(|g| g.path == "/error").count(), 1);

    // The user's own namespace has them too.
    let (s, v) = c.api(
        "POST",
        "/api/v1/user/namespacenotifications",
        Some(json!({"event": "quota_warning", "method": "slack", "config": {"url": r.url("/mine")}, "eventConfig": {}})),
    );
    assert_eq!(s, 201, "{v}");
    let (s, list) = c.api("GET", "/api/v1/user/namespacenotifications", None);
    assert_eq!(s, 200);
    assert_eq!(
        list["notifications"].as_array().map(Vec::len),
        Some(1),
        "{list}"
    );
    let uuid = v["uuid"].as_str().expect("uuid");
    let (s, _) = c.api(
        "POST",
        &format!("/api/v1/user/namespacenotifications/{uuid}/test"),
        None,
    );
    assert_eq!(s, 200);
    let t = r.wait_for("/mine", 1)[0].json();
    assert_eq!(t["text"], "Quota warning for namespace admin");
}

#[test]
fn in_app_notifications_reach_their_target_and_admins_hear_of_a_disabled_notification() {
    let b = Berth::start_with_env(&fast_env());
    let c = Client::new(&b);
    let r = Receiver::start();
    r.status.store(500, Ordering::SeqCst);
    let repo = "admin/inapp";
    c.image(repo, "base", "base", &[b"base"]);
    notification(
        &c,
        repo,
        json!({"event": "repo_push", "method": "quay_notification",
               "config": {"target": {"kind": "user", "name": "admin"}}, "eventConfig": {}}),
    );
    let (s, v) = c.api(
        "POST",
        &format!("/api/v1/repository/{repo}/notification/"),
        Some(json!({"event": "repo_push", "method": "quay_notification", "config": {"target": {"kind": "planet"}}})),
    );
    assert_eq!(s, 400, "{v}");
    let failing = notification(
        &c,
        repo,
        json!({"event": "repo_push", "method": "webhook", "title": "dead hook",
               "config": {"url": r.url("/dead")}, "eventConfig": {}}),
    );
    c.image(repo, "v1", "v1", &[b"v1"]);
    c.image(repo, "v2", "v2", &[b"v2"]);
    let deadline = Instant::now() + Duration::from_secs(40);
    let mine = loop {
        let (s, v) = c.api("GET", "/api/v1/user/notifications?limit=50", None);
        assert_eq!(s, 200, "{v}");
        let all = v["notifications"].as_array().cloned().unwrap_or_default();
        if all.iter().any(|n| n["kind"] == "notification_disabled") {
            break all;
        }
        assert!(Instant::now() < deadline, "no notification_disabled: {v}");
        std::thread::sleep(Duration::from_millis(300));
    };
    let pushes: Vec<&Value> = mine.iter().filter(|n| n["kind"] == "repo_push").collect();
    assert_eq!(pushes.len(), 2, "{mine:?}");
    assert!(
        pushes
            .iter()
            .any(|n| n["metadata"]["updated_tags"] == json!(["v2"]))
    );
    assert!(
        pushes
            .iter()
            .all(|n| n["dismissed"] == false && n["created"].is_string())
    );
    let disabled = mine
        .iter()
        .find(|n| n["kind"] == "notification_disabled")
        .expect("told");
    assert_eq!(disabled["metadata"]["notification_uuid"], failing["uuid"]);
    assert_eq!(disabled["metadata"]["title"], "dead hook");
    assert_eq!(disabled["organization"], "admin");
    let id = pushes[0]["id"].as_str().expect("id");
    let (s, v) = c.api(
        "PUT",
        &format!("/api/v1/user/notifications/{id}"),
        Some(json!({"dismissed": true})),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["dismissed"], true);
    let (s, _) = c.api(
        "PUT",
        "/api/v1/user/notifications/not-mine",
        Some(json!({"dismissed": true})),
    );
    assert_eq!(s, 404);
}

#[test]
fn tags_about_to_expire_are_told_about_once() {
    let b = Berth::start_with_env(&fast_env());
    let c = Client::new(&b);
    let r = Receiver::start();
    let repo = "admin/expiring";
    c.image(repo, "soon", "soon", &[b"soon"]);
    c.image(repo, "later", "later", &[b"later"]);
    let (s, v) = c.api(
        "POST",
        &format!("/api/v1/repository/{repo}/notification/"),
        Some(json!({"event": "repo_image_expiry", "method": "webhook", "config": {"url": r.url("/x")}, "eventConfig": {}})),
    );
    assert_eq!(s, 400, "days is required: {v}");
    let n = notification(
        &c,
        repo,
        json!({"event": "repo_image_expiry", "method": "webhook",
               "config": {"url": r.url("/expiry")}, "eventConfig": {"days": 2}}),
    );
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    for (tag, at) in [("soon", now_s + 86_400), ("later", now_s + 10 * 86_400)] {
        let (s, v) = c.api(
            "PUT",
            &format!("/api/v1/repository/{repo}/tag/{tag}"),
            Some(json!({"expiration": at})),
        );
        assert_eq!(s, 201, "{v}");
    }
    let got = r.wait_for("/expiry", 1);
    let body = got[0].json();
    assert_eq!(body["tags"], json!(["soon"]), "only within 2 days: {body}");
    assert_eq!(body["expiring_in"], "2 days");
    assert_eq!(body["notification_uuid"], n["uuid"]);
    assert_eq!(body["repository"], repo);
    std::thread::sleep(Duration::from_secs(11));
    assert_eq!(r.got().len(), 1, "told once");
}

/// A real SMTP server (aiosmtpd from PyPI, in the test venv) that keeps each mail in a Maildir.
struct Smtp {
    port: u16,
    dir: tempfile::TempDir,
    child: std::process::Child,
}

impl Smtp {
    fn start() -> Smtp {
        let bin = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../target/test-venv/bin/aiosmtpd");
        assert!(
            bin.exists(),
            "aiosmtpd is not installed: run ./scripts/test.sh once (it installs it into target/test-venv)"
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let dir = tempfile::tempdir().expect("maildir");
        let child = std::process::Command::new(bin)
            .args(["-n", "-c", "aiosmtpd.handlers.Mailbox", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .arg(dir.path().join("mail"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn aiosmtpd");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "aiosmtpd did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        Smtp { port, dir, child }
    }

    /// Waits (at most 30 s) for `n` mails; their raw text, oldest first.
    fn wait_for(&self, n: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut mails: Vec<(std::time::SystemTime, String)> =
                std::fs::read_dir(self.dir.path().join("mail/new"))
                    .into_iter()
                    .flatten()
                    .flatten()
                    .filter_map(|e| {
                        let t = e.metadata().ok()?.modified().ok()?;
                        Some((t, std::fs::read_to_string(e.path()).ok()?))
                    })
                    .collect();
            if mails.len() >= n {
                mails.sort();
                return mails.into_iter().map(|m| m.1).collect();
            }
            assert!(Instant::now() < deadline, "{} of {n} mails", mails.len());
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A mail's body with quoted-printable soft breaks and `=3D` undone (enough to search it).
fn unfold(mail: &str) -> String {
    mail.replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=")
}

#[test]
fn email_goes_to_an_address_confirmed_through_the_mailed_link() {
    let smtp = Smtp::start();
    let port = smtp.port.to_string();
    let mut env = fast_env();
    env.extend([
        ("BERTH_MAIL_SERVER", "127.0.0.1"),
        ("BERTH_MAIL_PORT", port.as_str()),
        ("BERTH_MAIL_USE_TLS", "false"),
        ("BERTH_MAIL_DEFAULT_SENDER", "registry@example.com"),
    ]);
    let b = Berth::start_with_env(&env);
    let c = Client::new(&b);
    let repo = "admin/mail";
    let to = "owner@example.com";
    c.image(repo, "v1", "v1", &[b"v1"]);
    let create = json!({"event": "repo_push", "method": "email", "config": {"email": to}, "eventConfig": {}});
    let (s, v) = c.api(
        "POST",
        &format!("/api/v1/repository/{repo}/notification/"),
        Some(create.clone()),
    );
    assert_eq!(s, 400, "not authorized yet: {v}");
    assert!(v.to_string().contains("authorizedemail"), "{v}");
    let (s, _) = c.api(
        "GET",
        &format!("/api/v1/repository/{repo}/authorizedemail/{to}"),
        None,
    );
    assert_eq!(s, 404);
    let (s, v) = c.api(
        "POST",
        &format!("/api/v1/repository/{repo}/authorizedemail/{to}"),
        None,
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v,
        json!({"email": to, "repository": "mail", "namespace": "admin", "confirmed": false})
    );
    let mail = unfold(&smtp.wait_for(1)[0]);
    assert!(
        mail.contains("Subject: Confirm notifications of admin/mail"),
        "{mail}"
    );
    let at = mail.find("/authrepoemail?code=").expect("the link");
    let link: String = mail[at..]
        .chars()
        .take_while(|ch| ch.is_ascii_alphanumeric() || "/?=_-".contains(*ch))
        .collect();
    let page = c.http.get(b.url(&link)).send().expect("confirm");
    assert_eq!(page.status(), 200);
    assert!(
        page.text()
            .unwrap_or_default()
            .contains("may now receive the notifications")
    );
    let (_, v) = c.api(
        "GET",
        &format!("/api/v1/repository/{repo}/authorizedemail/{to}"),
        None,
    );
    assert_eq!(v["confirmed"], true, "{v}");

    notification(&c, repo, create);
    c.image(repo, "v2", "v2", &[b"v2"]);
    let mails = smtp.wait_for(2);
    let m = unfold(&mails[1]);
    assert!(m.contains("Subject: Repository admin/mail updated"), "{m}");
    assert!(m.contains(&format!("To: {to}")), "{m}");
    assert!(m.contains("From: registry@example.com"), "{m}");
    assert!(m.contains("text/plain") && m.contains("text/html"), "{m}");
    assert!(m.contains("updated_tags: v2"), "{m}");
}

#[test]
fn every_event_tests_with_quays_sample_payload_field_by_field() {
    let b = Berth::start_with_env(&fast_env());
    let c = Client::new(&b);
    let r = Receiver::start();
    let repo = "admin/samples";
    c.image(repo, "v1", "v1", &[b"v1"]);
    let base = ["docker_url", "homepage", "name", "namespace", "repository"];
    let build = [
        "build_id",
        "build_name",
        "docker_tags",
        "trigger_id",
        "trigger_kind",
        "trigger_metadata",
    ];
    let cases: Vec<(&str, Value, Vec<&str>)> = vec![
        (
            "repo_push",
            json!({}),
            vec!["pruned_image_count", "updated_tags"],
        ),
        (
            "repo_image_expiry",
            json!({"days": 3}),
            vec!["expiring_in", "tags"],
        ),
        (
            "vulnerability_found",
            json!({"level": 1}),
            vec!["image", "tags", "vulnerability"],
        ),
        (
            "build_queued",
            json!({}),
            [&build[..], &["is_manual"]].concat(),
        ),
        ("build_start", json!({}), build.to_vec()),
        ("build_success", json!({}), build.to_vec()),
        (
            "build_failure",
            json!({}),
            [&build[..], &["error_message"]].concat(),
        ),
        ("build_cancelled", json!({}), build.to_vec()),
        ("repo_mirror_sync_started", json!({}), vec!["message"]),
        ("repo_mirror_sync_success", json!({}), vec!["message"]),
        ("repo_mirror_sync_failed", json!({}), vec!["message"]),
    ];
    for (event, config, own) in &cases {
        let n = notification(
            &c,
            repo,
            json!({"event": event, "method": "webhook", "config": {"url": r.url(&format!("/{event}"))}, "eventConfig": config}),
        );
        assert_eq!(&n["event_config"], config);
        let uuid = n["uuid"].as_str().expect("uuid");
        let (s, _) = c.api(
            "POST",
            &format!("/api/v1/repository/{repo}/notification/{uuid}/test"),
            None,
        );
        assert_eq!(s, 200);
        let body = r.wait_for(&format!("/{event}"), 1)[0].json();
        let mut want: Vec<&str> = base.iter().chain(own.iter()).copied().collect();
        want.sort();
        let got: Vec<&str> = body
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(got, want, "{event}: {body}");
        assert_eq!(body["repository"], repo);
        match *event {
            "repo_image_expiry" => assert_eq!(body["expiring_in"], "3 days"),
            "vulnerability_found" => {
                let v = &body["vulnerability"];
                let mut keys: Vec<&str> = v
                    .as_object()
                    .expect("object")
                    .keys()
                    .map(String::as_str)
                    .collect();
                keys.sort();
                assert_eq!(keys, ["description", "has_fix", "id", "link", "priority"]);
                assert_eq!(
                    v["priority"], "High",
                    "the sample follows the level asked for"
                );
            }
            "build_start" => assert_eq!(body["trigger_metadata"]["ref"], "refs/heads/somebranch"),
            "repo_mirror_sync_failed" => assert_eq!(body["message"], "TEST NOTIFICATION"),
            _ => {}
        }
    }
    // Quota samples on a namespace notification.
    let (s, v) = c.api(
        "POST",
        "/api/v1/user/namespacenotifications",
        Some(json!({"event": "quota_error", "method": "webhook", "config": {"url": r.url("/quota")}, "eventConfig": {}})),
    );
    assert_eq!(s, 201, "{v}");
    let uuid = v["uuid"].as_str().expect("uuid");
    c.api(
        "POST",
        &format!("/api/v1/user/namespacenotifications/{uuid}/test"),
        None,
    );
    let q = r.wait_for("/quota", 1)[0].json();
    let got: Vec<&str> = q
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        got,
        [
            "homepage",
            "limit_bytes",
            "limit_bytes_formatted",
            "namespace",
            "threshold_percent",
            "usage_bytes",
            "usage_bytes_formatted",
            "usage_percent"
        ],
        "{q}"
    );
    assert_eq!(q["usage_percent"], 105);
}
