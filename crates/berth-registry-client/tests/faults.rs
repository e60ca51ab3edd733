//! The client against a real Distribution behind a fault proxy: Retry-After honoured or too
//! long, 5xx and unreachable upstreams as "unavailable", redirects followed through the guard,
//! and a stalled body timing out.

mod support;

use berth_registry_client::{Error, Settings};
use std::time::{Duration, Instant};
use support::proxy::{Fault, FaultProxy};
use support::{REPO, client, creds, drain, filled, free_port, settings};

#[tokio::test]
async fn retry_after_is_honoured_until_the_request_passes() {
    let Some((reg, layout)) = filled(false) else {
        return;
    };
    let proxy = FaultProxy::start(&reg.addr);
    let c = client(&proxy.addr, None, settings());
    proxy.set(Fault::TooMany {
        remaining: 2,
        retry_after: "1".into(),
    });
    let started = Instant::now();
    let m = c
        .get_manifest(REPO, "v1")
        .await
        .expect("passes after two 429s");
    assert_eq!(m.digest, layout.image.digest);
    assert_eq!(proxy.count("/manifests/v1"), 3, "two 429s, then the answer");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "slept Retry-After each time"
    );

    // An HTTP-date Retry-After works the same.
    proxy.clear();
    let at = std::time::SystemTime::now() + Duration::from_secs(2);
    proxy.set(Fault::TooMany {
        remaining: 1,
        retry_after: httpdate::fmt_http_date(at),
    });
    assert!(c.head_manifest(REPO, "v1").await.is_ok());
    assert_eq!(proxy.count("/manifests/v1"), 2);

    // 429s beyond the retries: RateLimited with the last Retry-After.
    proxy.clear();
    proxy.set(Fault::TooMany {
        remaining: 100,
        retry_after: "0".into(),
    });
    match c.get_manifest(REPO, "v1").await {
        Err(e @ Error::RateLimited { .. }) => {
            assert!(e.is_unavailable());
            assert_eq!(e.status(), Some(429));
            assert!(matches!(e, Error::RateLimited { retry_after: Some(d) } if d.is_zero()));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(proxy.count("/manifests/v1"), 3, "1 + retries (2) attempts");
}

#[tokio::test]
async fn a_retry_after_beyond_the_limit_is_rate_limited_at_once() {
    let Some((reg, _layout)) = filled(false) else {
        return;
    };
    let proxy = FaultProxy::start(&reg.addr);
    let c = client(&proxy.addr, None, settings());
    proxy.set(Fault::TooMany {
        remaining: 1,
        retry_after: "120".into(),
    });
    let started = Instant::now();
    match c.list_tags(REPO).await {
        Err(e @ Error::RateLimited { .. }) => {
            assert!(e.is_unavailable());
            assert!(
                matches!(e, Error::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(120))
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(2), "did not sleep");
    assert_eq!(proxy.count("/tags/list"), 1, "no retry");
    // The next request goes through (the proxy's one 429 is spent).
    assert!(c.list_tags(REPO).await.is_ok());
}

#[tokio::test]
async fn server_errors_and_unreachable_upstreams_are_unavailable() {
    let Some((reg, layout)) = filled(false) else {
        return;
    };
    let proxy = FaultProxy::start(&reg.addr);
    let c = client(&proxy.addr, None, settings());

    // 503 is retried (twice), then reported with the registry's message.
    proxy.set(Fault::Status {
        status: 503,
        remaining: 100,
    });
    match c.get_manifest(REPO, "v1").await {
        Err(e @ Error::Status { status: 503, .. }) => {
            assert!(e.is_unavailable());
            assert!(e.to_string().contains("try later"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(proxy.count("/manifests/v1"), 3);

    // Two 502s and the third attempt passes.
    proxy.clear();
    proxy.set(Fault::Status {
        status: 502,
        remaining: 2,
    });
    let s = c
        .get_blob(REPO, &layout.layers[1].digest, None)
        .await
        .expect("third attempt");
    assert!(drain(s).await.1.is_none());
    assert_eq!(proxy.count("/blobs/"), 3);

    // 500 is not retried, but a cache may still serve stale content.
    proxy.clear();
    proxy.set(Fault::Status {
        status: 500,
        remaining: 100,
    });
    let e = c.get_manifest(REPO, "v1").await.expect_err("500");
    assert!(e.is_unavailable() && e.status() == Some(500), "{e:?}");
    assert_eq!(proxy.count("/manifests/v1"), 1);

    // A closed port: connect errors are retried, then Unreachable.
    let closed = format!("127.0.0.1:{}", free_port());
    let started = Instant::now();
    let e = client(&closed, None, settings())
        .ping()
        .await
        .expect_err("nothing listens");
    assert!(matches!(e, Error::Unreachable(_)), "{e:?}");
    assert!(e.is_unavailable());
    assert!(
        started.elapsed() >= Duration::from_millis(600),
        "backed off 200 + 400 ms"
    );
    let no_retry = Settings {
        retries: 0,
        ..settings()
    };
    let e = client(&closed, None, no_retry)
        .ping()
        .await
        .expect_err("closed");
    assert!(matches!(e, Error::Unreachable(_)), "{e:?}");
}

#[tokio::test]
async fn blob_redirects_are_followed_and_each_hop_passes_the_guard() {
    let Some((reg, layout)) = filled(false) else {
        return;
    };
    let layer = &layout.layers[0];
    let proxy = FaultProxy::start(&reg.addr);
    let c = client(&proxy.addr, None, settings());

    // A 307 to the registry itself (another origin: another port).
    proxy.set(Fault::RedirectBlobs {
        base: format!("http://{}", reg.addr),
    });
    let s = c
        .get_blob(REPO, &layer.digest, Some(layer.bytes.len() as u64))
        .await
        .expect("redirect followed");
    let (bytes, err) = drain(s).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(bytes, layer.bytes);

    // A redirect to an address the guard does not allow is refused, not fetched.
    proxy.set(Fault::RedirectBlobs {
        base: "http://127.0.0.2:9".into(),
    });
    match c.get_blob(REPO, &layer.digest, None).await {
        Err(Error::Refused(berth_net::Refused::Internal { host, .. })) => {
            assert_eq!(host, "127.0.0.2")
        }
        other => panic!("{other:?}"),
    }

    // A redirect loop stops after five hops.
    proxy.clear();
    proxy.set(Fault::RedirectBlobs {
        base: format!("http://{}", proxy.addr),
    });
    let e = c
        .get_blob(REPO, &layer.digest, None)
        .await
        .expect_err("loop");
    assert!(
        matches!(e, Error::Invalid(ref m) if m.contains("redirected more than 5")),
        "{e:?}"
    );
    assert_eq!(proxy.count("/blobs/"), 6, "the request and five hops");
}

#[tokio::test]
async fn credentials_are_not_sent_to_another_origin() {
    let Some((reg, layout)) = filled(true) else {
        return;
    };
    let layer = &layout.layers[0];
    // In front of an htpasswd registry: the proxy redirects blob GETs to a second proxy (a
    // different origin), which records whether an Authorization header reached it.
    let storage = FaultProxy::start(&reg.addr);
    let front = FaultProxy::start(&reg.addr);
    front.set(Fault::RedirectBlobs {
        base: format!("http://{}", storage.addr),
    });
    let c = client(&front.addr, creds(), settings());
    assert!(c.ping().await.is_ok());
    let e = c
        .get_blob(REPO, &layer.digest, None)
        .await
        .expect_err("storage wants auth");
    assert!(matches!(e, Error::Unauthorized(_)), "{e:?}");
    assert!(
        front
            .hits()
            .iter()
            .any(|h| h.path.contains("/blobs/") && h.authorization)
    );
    let at_storage = storage.hits();
    assert!(!at_storage.is_empty());
    assert!(
        at_storage.iter().all(|h| !h.authorization),
        "{at_storage:?}"
    );
}

#[tokio::test]
async fn a_stalled_body_times_out() {
    let Some((reg, layout)) = filled(false) else {
        return;
    };
    let proxy = FaultProxy::start(&reg.addr);
    proxy.set(Fault::StallBlobs);
    let c = client(
        &proxy.addr,
        None,
        Settings {
            read_timeout: Duration::from_secs(1),
            ..settings()
        },
    );
    let layer = &layout.layers[0];
    let started = Instant::now();
    let s = c
        .get_blob(REPO, &layer.digest, Some(layer.bytes.len() as u64))
        .await
        .expect("headers arrive");
    let (bytes, err) = drain(s).await;
    assert!(matches!(err, Some(Error::Timeout(_))), "{err:?}");
    assert!(err.as_ref().is_some_and(Error::is_unavailable));
    assert_eq!(
        bytes.len(),
        layer.bytes.len() / 2,
        "half arrived, then nothing"
    );
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(10),
        "{took:?}"
    );
}
