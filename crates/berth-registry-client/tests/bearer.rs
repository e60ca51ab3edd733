//! The Docker token flow against the fault proxy's token endpoint, in front of a real
//! Distribution: scopes asked for, tokens cached, a refused token replaced once, refusals.

mod support;

use berth_registry_client::{Credentials, Error, Ping};
use support::proxy::FaultProxy;
use support::{REPO, USER, client, creds, drain, filled, settings};

#[tokio::test]
async fn bearer_tokens_are_fetched_per_scope_cached_and_renewed() {
    let Some((reg, layout)) = filled(false) else {
        return;
    };
    let proxy = FaultProxy::start(&reg.addr);
    proxy.require_bearer(300);
    let c = client(&proxy.addr, creds(), settings());

    assert_eq!(c.ping().await.expect("ping"), Ping::Authenticated);
    let m = c.get_manifest(REPO, "v1").await.expect("manifest");
    assert_eq!(m.digest, layout.image.digest);
    let t = proxy.token_requests();
    assert_eq!(t.len(), 2, "{t:?}");
    assert!(t.iter().all(|r| r.credentials_ok));
    assert!(t.iter().all(|r| r.service.as_deref() == Some("berth-test")));
    assert_eq!(t[0].scope, None, "the API root needs no scope");
    assert_eq!(t[1].scope.as_deref(), Some("repository:team/app:pull"));

    // The same scope again: the cached token goes up front, no 401, no token request.
    proxy.clear();
    let h = c.head_manifest(REPO, "multi").await.expect("head");
    assert_eq!(h.digest, layout.index.digest);
    let s = c
        .get_blob(REPO, &layout.layers[1].digest, None)
        .await
        .expect("blob");
    assert!(drain(s).await.1.is_none());
    assert_eq!(proxy.token_requests().len(), 2);
    assert_eq!(proxy.hits().len(), 2, "{:?}", proxy.hits());

    // Tags use the client's own scope (the challenge gives none); the catalog its own.
    let tags = c.list_tags(REPO).await.expect("tags");
    assert_eq!(tags.len(), 2);
    assert_eq!(c.catalog().await.expect("catalog"), [REPO]);
    let t = proxy.token_requests();
    assert_eq!(t.len(), 3, "tags reuse the repository token: {t:?}");
    assert_eq!(t[2].scope.as_deref(), Some("registry:catalog:*"));

    // A cached token the registry no longer takes: one fresh token, one retry.
    proxy.revoke_tokens();
    proxy.clear();
    assert!(c.get_manifest(REPO, "v1").await.is_ok());
    assert_eq!(proxy.token_requests().len(), 4);
    assert_eq!(
        proxy.count("/manifests/v1"),
        2,
        "the refused try and the retry"
    );
}

#[tokio::test]
async fn short_lived_tokens_are_not_reused() {
    let Some((reg, _layout)) = filled(false) else {
        return;
    };
    let proxy = FaultProxy::start(&reg.addr);
    // Tokens that expire within the client's 10 s margin are used once.
    proxy.require_bearer(5);
    let c = client(&proxy.addr, creds(), settings());
    for _ in 0..3 {
        assert!(c.head_manifest(REPO, "v1").await.is_ok());
    }
    assert_eq!(proxy.token_requests().len(), 3);
}

#[tokio::test]
async fn a_token_endpoint_refusal_is_unauthorized() {
    let Some((reg, _layout)) = filled(false) else {
        return;
    };
    let proxy = FaultProxy::start(&reg.addr);
    proxy.require_bearer(300);
    let wrong = client(
        &proxy.addr,
        Some(Credentials {
            username: USER.into(),
            password: "wrong-password".into(),
        }),
        settings(),
    );
    for e in [
        wrong.ping().await.map(drop),
        wrong.get_manifest(REPO, "v1").await.map(drop),
    ] {
        match e {
            Err(e @ Error::Unauthorized(_)) => {
                let text = e.to_string();
                assert!(text.contains("refused the credentials"), "{text}");
                assert!(!text.contains("wrong-password"), "{text}");
            }
            other => panic!("{other:?}"),
        }
    }
    // Without credentials the ping still reports a reachable registry; reads need a token the
    // endpoint will not give anonymously.
    let anon = client(&proxy.addr, None, settings());
    assert_eq!(anon.ping().await.expect("ping"), Ping::Anonymous);
    match anon.get_manifest(REPO, "v1").await {
        Err(Error::Unauthorized(m)) => assert!(m.contains("anonymous"), "{m}"),
        other => panic!("{other:?}"),
    }
    let t = proxy.token_requests();
    assert!(t.iter().any(|r| !r.credentials_sent));
}
