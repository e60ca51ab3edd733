//! The upstream test support itself (tests/common/upstream.rs): a Distribution registry without
//! auth, pushed to over plain HTTP, and a FaultProxy in front of it that passes, injects 500,
//! 429 and refused connections (for every path or some), counts what it received, rewrites the
//! upstream's own URLs to itself, and streams a throttled blob so the client has its first bytes
//! long before the proxy finished relaying the body.

mod common;

use common::client::{MT, sha};
use common::upstream::{Distribution, FaultProxy, Mode};
use std::io::Read;
use std::time::{Duration, Instant};

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

#[test]
fn faults_are_switched_at_run_time_and_requests_counted() {
    let Some(mut up) = Distribution::start_open() else {
        return;
    };
    let layer = b"a small layer".to_vec();
    let (digest, blobs) = up.push_image("lib/app", "v1", &[&layer]);
    assert_eq!(up.digest("lib/app", "v1").as_deref(), Some(digest.as_str()));
    let p = FaultProxy::start(&up.host);
    let c = http();
    let manifest = || {
        c.get(p.url("/v2/lib/app/manifests/v1"))
            .header("Accept", MT)
            .send()
    };
    let blob_url = p.url(&format!("/v2/lib/app/blobs/{}", blobs[1]));

    let r = manifest().expect("pass");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["docker-content-digest"], digest.as_str());
    assert_eq!(sha(&r.bytes().expect("body")), digest);

    p.set_mode(Mode::Status(500));
    let r = manifest().expect("500");
    assert_eq!(r.status(), 500);
    let body: serde_json::Value = r.json().expect("json errors body");
    assert_eq!(body["errors"][0]["code"], "UNKNOWN");

    p.set_mode(Mode::TooMany { retry_after_s: 7 });
    let r = manifest().expect("429");
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "7");

    p.set_mode(Mode::Down);
    assert!(
        manifest().is_err(),
        "a refused request is a connection error"
    );

    // Blobs fail while manifests pass; set_mode forgets the path's mode.
    p.set_mode(Mode::Pass);
    p.set_mode_for("/blobs/", Mode::Status(503));
    assert_eq!(manifest().expect("manifest").status(), 200);
    let r = c.get(&blob_url).send().expect("503");
    assert_eq!(r.status(), 503);
    p.set_mode(Mode::Pass);
    let r = c.get(&blob_url).send().expect("blob");
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().expect("blob body").as_ref(), layer.as_slice());

    // Every mode counts; the 503 blob answer came from the proxy, so one blob body finished.
    assert_eq!(p.count("/manifests/v1", "GET"), 5);
    assert_eq!(p.count("/blobs/", "get"), 2);
    assert_eq!(p.count("/v2/", ""), 7);
    assert_eq!(p.count("/v2/", "HEAD"), 0);
    assert_eq!(p.finished_blob_bodies(), 1);
    let kinds: Vec<String> = p
        .events()
        .into_iter()
        .map(|(_, e)| e)
        .filter(|e| !e.starts_with("start "))
        .collect();
    let m = "GET /v2/lib/app/manifests/v1";
    assert_eq!(
        kinds[..5],
        [
            format!("end {m}"),
            format!("status-500 {m}"),
            format!("too-many {m}"),
            format!("down {m}"),
            format!("end {m}"),
        ],
        "{kinds:?}"
    );

    // The upload session's Location leads back through the proxy.
    let r = c
        .post(p.url("/v2/lib/app/blobs/uploads/"))
        .send()
        .expect("open upload");
    assert_eq!(r.status(), 202);
    let loc = r.headers()["location"].to_str().expect("location");
    assert!(
        loc.starts_with('/') || loc.starts_with(&p.url("/")),
        "{loc} does not lead through {}",
        p.host
    );
    // Told the target's own name, Distribution answers with the target's URL: rewritten.
    let r = c
        .post(p.url("/v2/lib/app/blobs/uploads/"))
        .header("Host", up.host.as_str())
        .send()
        .expect("open upload");
    assert_eq!(r.status(), 202);
    let loc = r.headers()["location"].to_str().expect("location");
    assert!(
        loc.starts_with(&p.url("/v2/lib/app/blobs/uploads/")),
        "{loc}"
    );

    // A dead upstream behind the proxy is a connection error too; restarted, it serves again.
    up.stop();
    assert!(manifest().is_err());
    assert!(p.first_event("upstream-error GET").is_some());
    up.restart();
    assert_eq!(manifest().expect("after restart").status(), 200);
}

#[test]
fn a_throttled_blob_reaches_the_client_before_the_upstream_body_is_relayed() {
    let Some(up) = Distribution::start_open() else {
        return;
    };
    // 1 MiB that no layer of compression on the way could shrink.
    let mut layer = Vec::with_capacity(1 << 20);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    while layer.len() < 1 << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        layer.extend_from_slice(&x.to_le_bytes());
    }
    let (_, blobs) = up.push_image("lib/big", "v1", &[&layer]);
    let path = format!("/v2/lib/big/blobs/{}", blobs[1]);
    let p = FaultProxy::start(&up.host);
    p.throttle_blobs(Some(512 * 1024));

    let t0 = Instant::now();
    let mut r = http().get(p.url(&path)).send().expect("blob");
    assert_eq!(r.status(), 200);
    let mut got = vec![0u8; 64 * 1024];
    let n = r.read(&mut got).expect("first bytes");
    assert!(n > 0);
    let first_byte = Instant::now();
    got.truncate(n);
    r.read_to_end(&mut got).expect("rest");
    let took = t0.elapsed();
    assert_eq!(sha(&got), blobs[1]);
    assert!(
        took >= Duration::from_millis(1500),
        "1 MiB at 512 KiB/s in {took:?}"
    );
    let end = p
        .first_event(&format!("end GET {path}"))
        .expect("the proxy's end event");
    assert!(
        first_byte < end && end - first_byte >= Duration::from_secs(1),
        "first byte at {:?}, body relayed at {:?}",
        first_byte - t0,
        end - t0
    );
    assert_eq!(p.finished_blob_bodies(), 1);

    // Unthrottled, the same blob is not paced.
    p.throttle_blobs(None);
    let t1 = Instant::now();
    let body = http().get(p.url(&path)).send().expect("blob").bytes();
    assert_eq!(sha(&body.expect("body")), blobs[1]);
    assert!(t1.elapsed() < took, "unthrottled took {:?}", t1.elapsed());
    assert_eq!(p.finished_blob_bodies(), 2);
    eprintln!(
        "throttled: first byte after {:?}, all after {took:?}; unthrottled {:?}",
        first_byte - t0,
        t1.elapsed()
    );
}
