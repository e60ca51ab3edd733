//! The time machine and tag expiry through Quay's tag API: history of moves and deletes,
//! restores within the namespace's window (and refused after it), tags created and moved by the
//! API, per-tag expiry that hides the tag at once and moves it into history with a
//! `repo_image_expiry` event, and paging.

mod common;

use common::Berth;
use common::client::{Client, MT, sha};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// The shared test client, with this suite's own image and history helpers.
struct C {
    c: Client,
    /// Kept alive (and stopped) with the client.
    _b: Berth,
}

impl std::ops::Deref for C {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.c
    }
}

impl C {
    fn new(b: Berth) -> C {
        C {
            c: Client::new(&b),
            _b: b,
        }
    }

    /// Pushes an image whose config says `label`; returns the manifest digest.
    fn image(&self, repo: &str, tag: &str, label: &str) -> String {
        let (status, digest, body) = self.try_image(repo, tag, label);
        assert_eq!(status, 201, "{body}");
        digest
    }

    /// Like `image`, returning (status, digest, body) instead of asserting.
    fn try_image(&self, repo: &str, tag: &str, label: &str) -> (u16, String, String) {
        let config = serde_json::to_vec(&json!({
            "architecture": "amd64", "os": "linux", "config": {"Labels": {"name": label}},
            "rootfs": {"type": "layers", "diff_ids": []},
        }))
        .expect("json");
        let cd = self.blob(repo, &config);
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": MT,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": config.len()},
            "layers": [],
        }))
        .expect("json");
        let (status, body) = self.put_manifest(repo, tag, MT, &manifest);
        (status, sha(&manifest), body)
    }

    /// The digest `/v2` serves for a tag, or the status.
    fn resolve(&self, repo: &str, tag: &str) -> Result<String, u16> {
        let r = self
            .req("GET", &format!("/v2/{repo}/manifests/{tag}"))
            .header("Accept", MT)
            .send()
            .expect("get");
        if r.status().as_u16() != 200 {
            return Err(r.status().as_u16());
        }
        Ok(sha(&r.bytes().expect("body")))
    }

    fn history(&self, repo: &str, query: &str) -> Value {
        let (s, v) = self.api(
            "GET",
            &format!("/api/v1/repository/{repo}/tag/{query}"),
            None,
        );
        assert_eq!(s, 200, "{v}");
        v
    }
}

fn positions(h: &Value) -> Vec<(String, String, bool)> {
    h["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap_or("").to_string(),
                t["manifest_digest"].as_str().unwrap_or("").to_string(),
                t.get("end_ts").is_none(),
            )
        })
        .collect()
}

#[test]
fn tags_move_delete_restore_and_expire_through_the_time_machine() {
    let c = C::new(Berth::start());
    let repo = "admin/tm";
    let a = c.image(repo, "v1", "a");
    let b = c.image(repo, "v1", "b"); // moves v1 from a to b
    assert_eq!(c.resolve(repo, "v1"), Ok(b.clone()));
    let r = c
        .req("DELETE", &format!("/v2/{repo}/manifests/v1"))
        .send()
        .expect("delete");
    assert_eq!(r.status().as_u16(), 202);
    assert_eq!(c.resolve(repo, "v1"), Err(404));

    // History, newest first: v1 -> b (ended), v1 -> a (ended).
    let h = c.history(repo, "?specificTag=v1");
    assert_eq!(
        positions(&h),
        vec![
            ("v1".into(), b.clone(), false),
            ("v1".into(), a.clone(), false)
        ],
        "{h}"
    );
    assert!(
        h["tags"][0]["end_ts"].as_i64() >= h["tags"][0]["start_ts"].as_i64(),
        "{h}"
    );
    assert_eq!(c.history(repo, "?onlyActiveTags=true")["tags"], json!([]));

    // Restore v1 to a: served again, and history gains a live row.
    let (s, v) = c.api(
        "POST",
        &format!("/api/v1/repository/{repo}/tag/v1/restore"),
        Some(json!({"manifest_digest": a})),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(c.resolve(repo, "v1"), Ok(a.clone()));
    assert_eq!(
        positions(&c.history(repo, "?onlyActiveTags=true")),
        vec![("v1".into(), a.clone(), true)]
    );
    // A digest the tag never pointed at is not restorable.
    let (s, _) = c.api(
        "POST",
        &format!("/api/v1/repository/{repo}/tag/v1/restore"),
        Some(json!({"manifest_digest": sha(b"nothing")})),
    );
    assert_eq!(s, 404);

    // Tags created and moved through the API.
    let (s, v) = c.api(
        "PUT",
        &format!("/api/v1/repository/{repo}/tag/stable"),
        Some(json!({"manifest_digest": b})),
    );
    assert_eq!(s, 201, "{v}");
    assert_eq!(c.resolve(repo, "stable"), Ok(b.clone()));
    let (s, _) = c.api(
        "PUT",
        &format!("/api/v1/repository/{repo}/tag/stable"),
        Some(json!({"manifest_digest": sha(b"absent")})),
    );
    assert_eq!(s, 404, "a manifest the repository does not hold");

    // Expiry: in the past is refused; two seconds ahead hides the tag once passed, and the
    // worker moves it into history with a repo_image_expiry event.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let (s, _) = c.api(
        "PUT",
        &format!("/api/v1/repository/{repo}/tag/stable"),
        Some(json!({"expiration": now - 10})),
    );
    assert_eq!(s, 400);
    let (s, v) = c.api(
        "PUT",
        &format!("/api/v1/repository/{repo}/tag/stable"),
        Some(json!({"expiration": now + 2})),
    );
    assert_eq!(s, 201, "{v}");
    assert!(c.history(repo, "?specificTag=stable")["tags"][0]["expiration"].is_string());
    let deadline = Instant::now() + Duration::from_secs(30);
    while c.resolve(repo, "stable").is_ok() {
        assert!(Instant::now() < deadline, "the expired tag is still served");
        std::thread::sleep(Duration::from_millis(200));
    }
    let list: Value = c
        .req("GET", &format!("/v2/{repo}/tags/list"))
        .send()
        .expect("tags")
        .json()
        .expect("json");
    assert_eq!(list["tags"], json!(["v1"]), "{list}");
    let event = loop {
        let (_, logs) = c.api(
            "GET",
            &format!("/api/v1/repository/{repo}/logs?kind=repo_image_expiry"),
            None,
        );
        if let Some(e) = logs["logs"].as_array().and_then(|l| l.first()).cloned() {
            break e;
        }
        assert!(Instant::now() < deadline, "no repo_image_expiry event");
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(event["metadata"]["tag"], "stable", "{event}");
    assert_eq!(event["metadata"]["manifest_digest"], b.as_str(), "{event}");
    // The expired position is history, restorable within the window.
    let h = c.history(repo, "?specificTag=stable");
    assert!(h["tags"][0]["end_ts"].is_i64(), "{h}");
    let (s, _) = c.api(
        "POST",
        &format!("/api/v1/repository/{repo}/tag/stable/restore"),
        Some(json!({"manifest_digest": b})),
    );
    assert_eq!(s, 200);
    assert_eq!(c.resolve(repo, "stable"), Ok(b.clone()));

    // With a zero window (the namespace's own setting) past positions are no longer restorable.
    let (s, v) = c.api("PUT", "/api/v1/user/", Some(json!({"tag_expiration_s": 0})));
    assert_eq!(s, 200, "{v}");
    let (s, v) = c.api(
        "PUT",
        "/api/v1/user/",
        Some(json!({"tag_expiration_s": 12345})),
    );
    assert_eq!(s, 400, "only TAG_EXPIRATION_OPTIONS: {v}");
    std::thread::sleep(Duration::from_millis(20));
    let (s, _) = c.api(
        "POST",
        &format!("/api/v1/repository/{repo}/tag/v1/restore"),
        Some(json!({"manifest_digest": b})),
    );
    assert_eq!(s, 404, "outside the window");

    // Every action is in the audit log.
    let (_, logs) = c.api("GET", &format!("/api/v1/repository/{repo}/logs"), None);
    for kind in [
        "move_tag",
        "delete_tag",
        "revert_tag",
        "create_tag",
        "change_tag_expiration",
        "repo_image_expiry",
    ] {
        assert!(
            logs["logs"]
                .as_array()
                .is_some_and(|l| l.iter().any(|e| e["kind"] == kind)),
            "{kind} missing"
        );
    }

    // Paging: 5 more tags, 2 per page.
    for i in 0..5 {
        let (s, _) = c.api(
            "PUT",
            &format!("/api/v1/repository/{repo}/tag/p{i}"),
            Some(json!({"manifest_digest": a})),
        );
        assert_eq!(s, 201);
    }
    let mut seen = Vec::new();
    for page in 1..=3 {
        let h = c.history(
            repo,
            &format!("?filter_tag_name=like:p&limit=2&page={page}"),
        );
        seen.extend(positions(&h).into_iter().map(|p| p.0));
        assert_eq!(h["has_additional"], page < 3, "{h}");
    }
    seen.sort();
    assert_eq!(seen, vec!["p0", "p1", "p2", "p3", "p4"]);
}

#[test]
fn immutable_tags_refuse_moves_deletes_and_expiry() {
    let c = C::new(Berth::start());
    let repo = "admin/imm";
    let a = c.image(repo, "v1", "a");
    let b = c.image(repo, "v2", "b");
    let (s, v) = c.api(
        "PUT",
        &format!("/api/v1/repository/{repo}/tag/v1"),
        Some(json!({"immutable": true})),
    );
    assert_eq!(s, 201, "{v}");

    // Neither a push, nor a delete by tag or by digest, nor the tag API may change it.
    let (s, _, body) = c.try_image(repo, "v1", "b");
    assert_eq!(s, 403, "{body}");
    assert!(
        body.contains("DENIED") && body.contains("immutable"),
        "{body}"
    );
    let del = |path: &str| {
        c.req("DELETE", path)
            .send()
            .expect("delete")
            .status()
            .as_u16()
    };
    assert_eq!(del(&format!("/v2/{repo}/manifests/v1")), 403);
    assert_eq!(del(&format!("/v2/{repo}/manifests/{a}")), 403);
    for body in [
        json!({"manifest_digest": b}),
        json!({"expiration": 4_000_000_000i64}),
    ] {
        let (s, v) = c.api(
            "PUT",
            &format!("/api/v1/repository/{repo}/tag/v1"),
            Some(body),
        );
        assert_eq!(s, 403, "{v}");
    }
    assert_eq!(
        c.api("DELETE", &format!("/api/v1/repository/{repo}/tag/v1"), None)
            .0,
        403
    );
    let (s, _) = c.api(
        "POST",
        &format!("/api/v1/repository/{repo}/tag/v1/restore"),
        Some(json!({"manifest_digest": b})),
    );
    assert!(s == 403 || s == 404, "restore may not move it: {s}");
    assert_eq!(c.resolve(repo, "v1"), Ok(a.clone()));

    // A namespace policy: release-* tags are created freely, then never move.
    let (s, v) = c.api(
        "POST",
        "/api/v1/user/immutabilitypolicy/",
        Some(json!({"tagPattern": "^release-"})),
    );
    assert_eq!(s, 201, "{v}");
    let policy = v["uuid"].as_str().expect("uuid").to_string();
    c.image(repo, "release-1", "a");
    assert_eq!(c.try_image(repo, "release-1", "b").0, 403);
    c.image(repo, "dev-1", "a");
    c.image(repo, "dev-1", "b");
    let h = c.history(repo, "?onlyActiveTags=true");
    let flag = |name: &str| {
        h["tags"]
            .as_array()
            .and_then(|t| t.iter().find(|x| x["name"] == name))
            .map(|x| x["immutable"].clone())
    };
    assert_eq!(flag("v1"), Some(json!(true)), "{h}");
    assert_eq!(flag("release-1"), Some(json!(true)), "{h}");
    assert_eq!(flag("dev-1"), Some(json!(false)), "{h}");
    let (s, _) = c.api(
        "POST",
        "/api/v1/user/immutabilitypolicy/",
        Some(json!({"tagPattern": "(unclosed"})),
    );
    assert_eq!(s, 400, "a pattern must be a regular expression");

    // Lifting: the flag by a repository administrator, the policy by deleting it.
    let (s, _) = c.api(
        "PUT",
        &format!("/api/v1/repository/{repo}/tag/v1"),
        Some(json!({"immutable": false})),
    );
    assert_eq!(s, 201);
    assert_eq!(del(&format!("/v2/{repo}/manifests/v1")), 202);
    assert_eq!(
        c.api(
            "DELETE",
            &format!("/api/v1/user/immutabilitypolicy/{policy}"),
            None
        )
        .0,
        200
    );
    c.image(repo, "release-1", "b");

    // A repository policy that protects every tag except latest.
    let other = "admin/imm2";
    c.image(other, "latest", "a");
    let (s, v) = c.api(
        "POST",
        &format!("/api/v1/repository/{other}/immutabilitypolicy/"),
        Some(json!({"tagPattern": "^latest$", "tagPatternMatches": false})),
    );
    assert_eq!(s, 201, "{v}");
    c.image(other, "latest", "b");
    c.image(other, "1.0", "a");
    assert_eq!(c.try_image(other, "1.0", "b").0, 403);
    // ...and does not reach other repositories.
    c.image(repo, "1.0", "a");
    c.image(repo, "1.0", "b");

    let (_, logs) = c.api("GET", "/api/v1/user/logs?limit=1000", None);
    for kind in [
        "change_tag_immutability",
        "create_immutability_policy",
        "delete_immutability_policy",
    ] {
        assert!(
            logs["logs"]
                .as_array()
                .is_some_and(|l| l.iter().any(|e| e["kind"] == kind)),
            "{kind} missing"
        );
    }
}

/// A tag that becomes immutable loses its expiry (Quay's `FEATURE_IMMUTABLE_TAGS_CAN_EXPIRE`
/// off); with the key on, immutable tags keep and take expiries.
#[test]
fn immutable_tags_lose_their_expiry_unless_configured_otherwise() {
    for can_expire in [false, true] {
        let c = C::new(Berth::start_with_env(&[(
            "BERTH_FEATURE_IMMUTABLE_TAGS_CAN_EXPIRE",
            if can_expire { "true" } else { "false" },
        )]));
        let repo = "admin/exp";
        for t in ["flagged", "by-policy", "other"] {
            c.image(repo, t, t);
            let (s, v) = c.api(
                "PUT",
                &format!("/api/v1/repository/{repo}/tag/{t}"),
                Some(json!({"expiration": 4_000_000_000i64})),
            );
            assert_eq!(s, 201, "{v}");
        }
        let (s, v) = c.api(
            "PUT",
            &format!("/api/v1/repository/{repo}/tag/flagged"),
            Some(json!({"immutable": true})),
        );
        assert_eq!(s, 201, "{v}");
        let (s, v) = c.api(
            "POST",
            &format!("/api/v1/repository/{repo}/immutabilitypolicy/"),
            Some(json!({"tagPattern": "^by-"})),
        );
        assert_eq!(s, 201, "{v}");
        let expiring = |t: &str| {
            c.history(repo, &format!("?specificTag={t}&onlyActiveTags=true"))["tags"][0]
                .get("expiration")
                .is_some()
        };
        assert_eq!(expiring("flagged"), can_expire);
        assert_eq!(expiring("by-policy"), can_expire);
        assert!(expiring("other"), "a mutable tag keeps its expiry");
        let (s, _) = c.api(
            "PUT",
            &format!("/api/v1/repository/{repo}/tag/by-policy"),
            Some(json!({"expiration": 4_000_000_000i64})),
        );
        assert_eq!(s, if can_expire { 201 } else { 403 });
    }
}

#[test]
fn permanently_deleted_positions_leave_the_time_machine_only_when_allowed() {
    let repo = "admin/purge";
    // Off (Quay's default): the endpoint answers 404 and says which key turns it on.
    let c = C::new(Berth::start());
    let a = c.image(repo, "v1", "a");
    c.image(repo, "v1", "b");
    let (s, v) = c.api(
        "POST",
        &format!("/api/v1/repository/{repo}/tag/v1/expire"),
        Some(json!({"manifest_digest": a, "include_submanifests": true, "is_alive": false})),
    );
    assert_eq!(s, 404, "{v}");
    assert!(v.to_string().contains("PERMANENTLY_DELETE_TAGS"), "{v}");
    drop(c);

    let c = C::new(Berth::start_with_env(&[(
        "BERTH_PERMANENTLY_DELETE_TAGS",
        "true",
    )]));
    let a = c.image(repo, "v1", "a");
    let b = c.image(repo, "v1", "b");
    let past = |c: &C| -> Vec<String> {
        positions(&c.history(repo, "?specificTag=v1"))
            .into_iter()
            .filter(|p| !p.2)
            .map(|p| p.1)
            .collect()
    };
    assert_eq!(past(&c), vec![a.clone()], "moving v1 left a past position");
    let (s, v) = c.api(
        "POST",
        &format!("/api/v1/repository/{repo}/tag/v1/expire"),
        Some(json!({"manifest_digest": a, "include_submanifests": true, "is_alive": false})),
    );
    assert_eq!(s, 200, "{v}");
    assert!(past(&c).is_empty(), "gone from the history");
    let (s, _) = c.api(
        "POST",
        &format!("/api/v1/repository/{repo}/tag/v1/restore"),
        Some(json!({"manifest_digest": a})),
    );
    assert_eq!(s, 404, "and no longer restorable");
    // Twice is NotFound, as is a position the tag never had.
    let (s, _) = c.api(
        "POST",
        &format!("/api/v1/repository/{repo}/tag/v1/expire"),
        Some(json!({"manifest_digest": a})),
    );
    assert_eq!(s, 404);
    // is_alive: the live tag is deleted first, then its position purged.
    let (s, v) = c.api(
        "POST",
        &format!("/api/v1/repository/{repo}/tag/v1/expire"),
        Some(json!({"manifest_digest": b, "is_alive": true})),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(c.resolve(repo, "v1"), Err(404));
    assert!(
        c.history(repo, "?specificTag=v1")["tags"]
            .as_array()
            .is_some_and(|t| t.is_empty())
    );
    // An immutable tag refuses, as its deletion does.
    let d = c.image(repo, "frozen", "d");
    let (s, _) = c.api(
        "PUT",
        &format!("/api/v1/repository/{repo}/tag/frozen"),
        Some(json!({"immutable": true})),
    );
    assert_eq!(s, 201);
    let (s, v) = c.api(
        "POST",
        &format!("/api/v1/repository/{repo}/tag/frozen/expire"),
        Some(json!({"manifest_digest": d, "is_alive": true})),
    );
    assert_eq!(s, 403, "{v}");
    assert_eq!(c.resolve(repo, "frozen"), Ok(d));
    let (_, logs) = c.api(
        "GET",
        &format!("/api/v1/repository/{repo}/logs?kind=permanently_delete_tag"),
        None,
    );
    assert_eq!(logs["logs"].as_array().map(Vec::len), Some(2), "{logs}");
}
