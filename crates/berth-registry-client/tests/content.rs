//! The client against a real CNCF Distribution filled by skopeo: ping, listings, manifests,
//! blobs, answers for what is missing, and the guard.

mod support;

use berth_oci::media::{OCI_INDEX, OCI_MANIFEST};
use berth_registry_client::{Error, Ping, RegistryClient, Upstream};
use support::proxy::{Fault, FaultProxy};
use support::{Distribution, REPO, USER, client, creds, drain, filled, settings};

#[tokio::test]
async fn ping_tells_anonymous_from_authenticated_and_refuses_a_wrong_password() {
    let Some((reg, _layout)) = filled(true) else {
        return;
    };
    // Distribution with htpasswd answers 401 to anonymous pings, as Quay does: still reachable.
    let anon = client(&reg.addr, None, settings());
    assert_eq!(anon.ping().await.expect("ping"), Ping::Anonymous);
    let authed = client(&reg.addr, creds(), settings());
    assert_eq!(authed.ping().await.expect("ping"), Ping::Authenticated);
    let wrong = client(
        &reg.addr,
        Some(berth_registry_client::Credentials {
            username: USER.into(),
            password: "not-the-password".into(),
        }),
        settings(),
    );
    match wrong.ping().await {
        Err(e @ Error::Unauthorized(_)) => {
            assert!(!e.to_string().contains("not-the-password"), "{e}");
            assert_eq!(e.status(), Some(401));
            assert!(!e.is_unavailable());
        }
        other => panic!("wrong password: {other:?}"),
    }
    // Anonymous reads are refused by this registry, with the reason.
    assert!(matches!(
        anon.list_tags(REPO).await,
        Err(Error::Unauthorized(_))
    ));

    // A registry without auth: credentials are not needed, so the ping is anonymous.
    let open = Distribution::start(false);
    let c = client(&open.addr, creds(), settings());
    assert_eq!(c.ping().await.expect("ping"), Ping::Anonymous);
}

#[tokio::test]
async fn tags_and_the_catalog_are_listed_across_pages() {
    let Some((reg, layout)) = filled(true) else {
        return;
    };
    let mut want = vec!["multi".to_string(), "v1".to_string()];
    for i in 0..30 {
        let tag = format!("t{i:02}");
        reg.put_manifest(REPO, &tag, &layout.image.bytes, OCI_MANIFEST)
            .await;
        want.push(tag);
    }
    want.sort();
    let direct = client(&reg.addr, creds(), settings());
    let mut all = direct.list_tags(REPO).await.expect("tags");
    all.sort();
    assert_eq!(all, want);

    // Distribution 2.8 does not page tags/list; the proxy cuts the real list into pages of 7,
    // linked by relative and absolute URLs alternately.
    let proxy = FaultProxy::start(&reg.addr);
    proxy.set(Fault::PageTags { n: 7 });
    let paged = client(&proxy.addr, creds(), settings());
    let tags = paged
        .list_tags_paged(REPO, Some(7))
        .await
        .expect("paged tags");
    assert_eq!(tags, want, "every tag once, in order");
    assert_eq!(
        proxy.count("/tags/list"),
        want.len().div_ceil(7) + 1,
        "one 401, then 5 pages"
    );

    // The catalog is paged by Distribution itself (`?n=` and Link).
    for repo in ["team/b", "team/c", "other/d"] {
        reg.push(layout.dir.path(), "v1", repo);
    }
    let direct_proxy = FaultProxy::start(&reg.addr);
    let c = client(&direct_proxy.addr, creds(), settings());
    let repos = c.catalog_paged(Some(2)).await.expect("catalog");
    assert_eq!(repos, ["other/d", "team/app", "team/b", "team/c"]);
    assert!(
        direct_proxy.count("/v2/_catalog") >= 3,
        "{:?}",
        direct_proxy.hits()
    );
    assert_eq!(c.catalog().await.expect("catalog"), repos);
}

#[tokio::test]
async fn manifests_by_tag_and_digest_match_what_was_pushed() {
    let Some((reg, layout)) = filled(true) else {
        return;
    };
    let c = client(&reg.addr, creds(), settings());
    for (tag, blob, media_type) in [
        ("v1", &layout.image, OCI_MANIFEST),
        ("multi", &layout.index, OCI_INDEX),
    ] {
        let digest = blob.digest.to_string();
        for reference in [tag, digest.as_str()] {
            let m = c.get_manifest(REPO, reference).await.expect("get");
            assert_eq!(m.digest, blob.digest, "{reference}");
            assert_eq!(m.media_type, media_type, "{reference}");
            assert_eq!(&m.bytes[..], &blob.bytes[..], "{reference}");
            let h = c.head_manifest(REPO, reference).await.expect("head");
            assert_eq!(h.digest, blob.digest, "{reference}");
            assert_eq!(h.media_type, media_type, "{reference}");
            assert_eq!(h.size, blob.bytes.len() as u64, "{reference}");
        }
    }
    // The index's children are there too (skopeo --all).
    let arm = c
        .get_manifest(REPO, &layout.arm_image.digest.to_string())
        .await
        .expect("arm64 image");
    assert_eq!(arm.digest, layout.arm_image.digest);
    // References that would escape the path are refused before any request.
    for bad in ["../v1", "v1?x=1", "v1/../../x", "sha256:abc"] {
        assert!(
            matches!(c.get_manifest(REPO, bad).await, Err(Error::Invalid(_))),
            "{bad}"
        );
    }
    assert!(matches!(
        c.get_manifest("../etc", "v1").await,
        Err(Error::Invalid(_))
    ));
}

#[tokio::test]
async fn blobs_stream_with_their_digest_verified() {
    let Some((reg, layout)) = filled(true) else {
        return;
    };
    let c = client(&reg.addr, creds(), settings());
    for layer in &layout.layers {
        let s = c
            .get_blob(REPO, &layer.digest, Some(layer.bytes.len() as u64))
            .await
            .expect("blob");
        assert_eq!(s.size, Some(layer.bytes.len() as u64));
        let (bytes, err) = drain(s).await;
        assert!(err.is_none(), "{err:?}");
        assert_eq!(bytes, layer.bytes);
    }
    let layer = &layout.layers[0];
    let s = c.get_blob(REPO, &layer.digest, None).await.expect("blob");
    assert_eq!(
        s.size,
        Some(layer.bytes.len() as u64),
        "from Content-Length"
    );
    // A descriptor size the upstream does not agree with fails before any byte.
    let wrong = c
        .get_blob(REPO, &layer.digest, Some(layer.bytes.len() as u64 + 1))
        .await;
    assert!(matches!(wrong, Err(Error::Invalid(_))), "{wrong:?}");
}

#[tokio::test]
async fn a_corrupted_blob_ends_in_a_digest_mismatch() {
    let Some((reg, layout)) = filled(true) else {
        return;
    };
    let proxy = FaultProxy::start(&reg.addr);
    proxy.set(Fault::CorruptBlobs);
    let c = client(&proxy.addr, creds(), settings());
    let layer = &layout.layers[0];
    let s = c
        .get_blob(REPO, &layer.digest, Some(layer.bytes.len() as u64))
        .await
        .expect("stream starts");
    let (bytes, err) = drain(s).await;
    assert_eq!(
        bytes.len(),
        layer.bytes.len(),
        "every byte came, one altered"
    );
    match err {
        Some(Error::DigestMismatch { expected, actual }) => {
            assert_eq!(expected, layer.digest.to_string());
            assert_ne!(actual, expected);
        }
        other => panic!("expected a digest mismatch, got {other:?}"),
    }
}

#[tokio::test]
async fn missing_repositories_tags_and_blobs_are_not_found() {
    let Some((reg, layout)) = filled(true) else {
        return;
    };
    let c = client(&reg.addr, creds(), settings());
    let nf = |r: Result<(), Error>, what: &str| match r {
        Err(e @ Error::NotFound(_)) => {
            assert_eq!(e.status(), Some(404));
            assert!(!e.is_unavailable());
        }
        other => panic!("{what}: {other:?}"),
    };
    nf(
        c.list_tags("team/nothing").await.map(drop),
        "tags of a missing repo",
    );
    nf(c.get_manifest(REPO, "v9").await.map(drop), "missing tag");
    nf(
        c.head_manifest(REPO, "v9").await.map(drop),
        "HEAD of a missing tag",
    );
    let absent = berth_oci::Digest::sha256_of(b"never pushed");
    nf(
        c.get_manifest(REPO, &absent.to_string()).await.map(drop),
        "missing digest",
    );
    nf(
        c.get_blob(REPO, &absent, None).await.map(drop),
        "missing blob",
    );
    nf(
        c.get_blob("team/nothing", &layout.layers[0].digest, None)
            .await
            .map(drop),
        "blob of a missing repo",
    );
    match c.get_manifest(REPO, "v9").await {
        Err(Error::NotFound(m)) => assert!(m.contains("MANIFEST_UNKNOWN"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn the_guard_refuses_loopback_unless_allowed() {
    let Some((reg, _layout)) = filled(false) else {
        return;
    };
    let upstream = || Upstream {
        registry: reg.addr.clone(),
        insecure: true,
        credentials: None,
    };
    let strict = RegistryClient::new(berth_net::Guard::new(&[], &[]), upstream(), settings())
        .expect("client");
    match strict.ping().await {
        Err(Error::Refused(r @ berth_net::Refused::Internal { .. })) => {
            assert!(r.to_string().contains("SSRF_ALLOWED_HOSTS"), "{r}");
        }
        other => panic!("loopback must be refused: {other:?}"),
    }
    assert!(matches!(
        strict.get_manifest(REPO, "v1").await,
        Err(Error::Refused(_))
    ));
    let denied = RegistryClient::new(
        berth_net::Guard::new(&["127.0.0.1".into()], &["127.0.0.1".into()]),
        upstream(),
        settings(),
    );
    assert!(matches!(
        denied,
        Err(Error::Refused(berth_net::Refused::Denied { .. }))
    ));
    let allowed = RegistryClient::new(support::guard(), upstream(), settings()).expect("client");
    assert_eq!(allowed.ping().await.expect("ping"), Ping::Anonymous);
    assert!(allowed.get_manifest(REPO, "v1").await.is_ok());
}
