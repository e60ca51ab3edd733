//! Auto-prune policies against a real `berth`: the dry run lists exactly what the run then
//! deletes, with the bytes it frees; patterns, immutable tags and the two methods; every pruned
//! tag is restorable through the time machine; the worker applies policies on its own and
//! records `autoprune_tag_delete` events; bad policies are refused with 400.

mod common;

use common::Berth;
use common::client::Client;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn config_len(salt: &str) -> i64 {
    serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux", "config": {"Labels": {"salt": salt}},
        "rootfs": {"type": "layers", "diff_ids": []},
    }))
    .expect("json")
    .len() as i64
}

fn live(c: &Client, repo: &str) -> Vec<String> {
    let (s, v) = c.api(
        "GET",
        &format!("/api/v1/repository/{repo}/tag/?onlyActiveTags=true"),
        None,
    );
    assert_eq!(s, 200, "{v}");
    let mut t: Vec<String> = v["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .filter_map(|t| t["name"].as_str().map(String::from))
        .collect();
    t.sort();
    t
}

fn tags_of(v: &Value) -> Vec<(String, String)> {
    let mut t: Vec<(String, String)> = v["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .map(|t| {
            (
                t["repository"].as_str().unwrap_or("").to_string(),
                t["tag"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    t.sort();
    t
}

#[test]
fn dry_run_equals_the_run_and_pruned_tags_restore() {
    let b = Berth::start_with_env(&[("BERTH_FEATURE_AUTO_PRUNE", "false")]);
    let c = Client::new(&b);
    c.org("ap", 14 * 86_400);
    let shared = vec![9u8; 20_000];
    let mut digests = std::collections::BTreeMap::new();
    for i in 1..=5 {
        let own = vec![i as u8; 1000 * i];
        let img = c.image(
            "ap/app",
            &format!("t{i}"),
            &format!("t{i}"),
            &[&shared, &own],
        );
        digests.insert(format!("t{i}"), img.digest);
        std::thread::sleep(Duration::from_millis(5));
    }
    c.image("ap/app", "keep-me", "keep", &[&shared]);
    c.image("ap/app", "t-rel", "rel", &[&shared]);
    let (s, v) = c.api(
        "POST",
        "/api/v1/repository/ap/app/immutabilitypolicy/",
        Some(json!({"tagPattern": "^t-rel$"})),
    );
    assert_eq!(s, 201, "{v}");

    // Keep the two newest t* tags: t1..t3 go; keep-me (pattern) and t-rel (immutable) stay.
    let (s, v) = c.api(
        "POST",
        "/api/v1/organization/ap/autoprunepolicy/",
        Some(json!({"method": "number_of_tags", "value": 2, "tagPattern": "^t"})),
    );
    assert_eq!(s, 201, "{v}");
    let uuid = v["uuid"].as_str().expect("uuid").to_string();
    let (_, listed) = c.api("GET", "/api/v1/organization/ap/autoprunepolicy/", None);
    assert_eq!(
        listed["policies"],
        json!([{"uuid": uuid, "method": "number_of_tags", "value": 2, "tagPattern": "^t", "tagPatternMatches": true}])
    );
    let (s, plan) = c.api(
        "GET",
        &format!("/api/v1/organization/ap/autoprunepolicy/{uuid}/dryrun"),
        None,
    );
    assert_eq!(s, 200, "{plan}");
    let expected: Vec<(String, String)> = ["t1", "t2", "t3"]
        .iter()
        .map(|t| ("ap/app".to_string(), t.to_string()))
        .collect();
    assert_eq!(tags_of(&plan), expected, "{plan}");
    let freed: i64 = (1..=3)
        .map(|i| config_len(&format!("t{i}")) + 1000 * i)
        .sum();
    assert_eq!(plan["bytes_freed"], freed, "{plan}");
    assert_eq!(live(&c, "ap/app").len(), 7, "a dry run deletes nothing");

    let (s, ran) = c.api(
        "POST",
        &format!("/api/v1/organization/ap/autoprunepolicy/{uuid}/run"),
        None,
    );
    assert_eq!(s, 200, "{ran}");
    assert_eq!(
        tags_of(&ran),
        tags_of(&plan),
        "the run deletes what the dry run listed"
    );
    assert_eq!(live(&c, "ap/app"), vec!["keep-me", "t-rel", "t4", "t5"]);
    let (_, logs) = c.api(
        "GET",
        "/api/v1/organization/ap/logs?kind=autoprune_tag_delete",
        None,
    );
    assert_eq!(logs["logs"].as_array().map(Vec::len), Some(3), "{logs}");

    // Every pruned tag comes back through the time machine.
    for t in ["t1", "t2", "t3"] {
        let (s, v) = c.api(
            "POST",
            &format!("/api/v1/repository/ap/app/tag/{t}/restore"),
            Some(json!({"manifest_digest": digests[t]})),
        );
        assert_eq!(s, 200, "{v}");
        assert_eq!(c.pull("ap/app", t), Ok(digests[t].clone()));
    }

    // creation_date on one repository: tags older than a second go.
    for t in ["old-a", "old-b"] {
        c.image("ap/dated", t, t, &[]);
    }
    std::thread::sleep(Duration::from_millis(1200));
    c.image("ap/dated", "fresh", "fresh", &[]);
    let (s, v) = c.api(
        "POST",
        "/api/v1/repository/ap/dated/autoprunepolicy/",
        Some(json!({"method": "creation_date", "value": "1s"})),
    );
    assert_eq!(s, 201, "{v}");
    let id = v["uuid"].as_str().expect("uuid").to_string();
    let (_, plan) = c.api(
        "GET",
        &format!("/api/v1/repository/ap/dated/autoprunepolicy/{id}/dryrun"),
        None,
    );
    let (_, ran) = c.api(
        "POST",
        &format!("/api/v1/repository/ap/dated/autoprunepolicy/{id}/run"),
        None,
    );
    assert_eq!(tags_of(&plan), tags_of(&ran));
    assert_eq!(live(&c, "ap/dated"), vec!["fresh"]);

    // Refusals.
    for body in [
        json!({"method": "everything", "value": 1}),
        json!({"method": "number_of_tags", "value": 0}),
        json!({"method": "creation_date", "value": "soon"}),
        json!({"method": "number_of_tags", "value": 3, "tagPattern": "("}),
    ] {
        let (s, v) = c.api(
            "POST",
            "/api/v1/organization/ap/autoprunepolicy/",
            Some(body.clone()),
        );
        assert_eq!(s, 400, "{body}: {v}");
    }
    let (s, v) = c.api(
        "DELETE",
        &format!("/api/v1/organization/ap/autoprunepolicy/{uuid}"),
        None,
    );
    assert_eq!((s, v["uuid"].clone()), (200, json!(uuid)));
}

#[test]
fn the_worker_applies_policies_on_its_own() {
    let b = Berth::start_with_env(&[("BERTH_AUTO_PRUNE_FREQUENCY_S", "1")]);
    let c = Client::new(&b);
    for t in ["a", "b", "c"] {
        c.image("admin/auto", t, t, &[]);
        std::thread::sleep(Duration::from_millis(5));
    }
    let (s, v) = c.api(
        "POST",
        "/api/v1/user/autoprunepolicy/",
        Some(json!({"method": "number_of_tags", "value": 1})),
    );
    assert_eq!(s, 201, "{v}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while live(&c, "admin/auto") != vec!["c"] {
        assert!(
            Instant::now() < deadline,
            "the worker did not prune; log: {}",
            b.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_new_policy_applies_at_once_not_at_the_next_poll() {
    // A poll period far longer than the test: only applying at creation can prune in time.
    let b = Berth::start_with_env(&[("BERTH_AUTO_PRUNE_FREQUENCY_S", "3600")]);
    let c = Client::new(&b);
    for t in ["a", "b", "c"] {
        c.image("admin/now", t, t, &[]);
        std::thread::sleep(Duration::from_millis(5));
    }
    let (s, v) = c.api(
        "POST",
        "/api/v1/repository/admin/now/autoprunepolicy/",
        Some(json!({"method": "number_of_tags", "value": 2})),
    );
    assert_eq!(s, 201, "{v}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while live(&c, "admin/now") != vec!["b", "c"] {
        assert!(
            Instant::now() < deadline,
            "the new policy was not applied; log: {}",
            b.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Changing it applies the change at once too.
    let uuid = v["uuid"].as_str().expect("uuid").to_string();
    let (s, v) = c.api(
        "PUT",
        &format!("/api/v1/repository/admin/now/autoprunepolicy/{uuid}"),
        Some(json!({"method": "number_of_tags", "value": 1})),
    );
    assert_eq!(s, 200, "{v}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while live(&c, "admin/now") != vec!["c"] {
        assert!(Instant::now() < deadline, "the change was not applied");
        std::thread::sleep(Duration::from_millis(100));
    }
}
