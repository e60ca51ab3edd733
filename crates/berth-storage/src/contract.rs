//! The one test suite every backend passes: the `BlobStore` contract, run against the filesystem
//! backend always and against a real S3-compatible server named by `TEST_S3_ENDPOINT`
//! (`./scripts/test.sh` starts one on 127.0.0.1).

use crate::{BlobStore, ByteStream, StorageError, StorageSpec};
use berth_oci::Digest;
use bytes::Bytes;
use futures::StreamExt;

fn stream(parts: Vec<Vec<u8>>) -> ByteStream {
    futures::stream::iter(parts.into_iter().map(|p| Ok(Bytes::from(p)))).boxed()
}

async fn collect(s: ByteStream) -> Vec<u8> {
    let mut s = s;
    let mut out = Vec::new();
    while let Some(c) = s.next().await {
        out.extend_from_slice(&c.expect("chunk"));
    }
    out
}

fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

async fn run_contract(store: &dyn BlobStore) {
    // Chunked session with an unrecorded write in the middle: the recorded length wins.
    let id = uuid::Uuid::new_v4().to_string();
    store.upload_begin(&id).await.expect("begin");
    assert_eq!(
        store
            .upload_append(&id, 0, stream(vec![b"hello ".to_vec(), b"wor".to_vec()]))
            .await
            .expect("append"),
        9
    );
    assert_eq!(
        store
            .upload_append(&id, 6, stream(vec![b"world".to_vec()]))
            .await
            .expect("append"),
        11
    );
    assert_eq!(
        collect(store.upload_read(&id, 11).await.expect("read")).await,
        b"hello world"
    );
    assert_eq!(
        collect(store.upload_read(&id, 6).await.expect("read")).await,
        b"hello "
    );
    let d = Digest::sha256_of(b"hello world");
    store
        .delete(&d)
        .await
        .expect("delete of an absent blob is not an error");
    assert_eq!(
        store.stat(&d).await.expect("stat"),
        None,
        "nothing visible before commit"
    );
    assert!(matches!(
        store.get(&d, None).await,
        Err(StorageError::NotFound)
    ));
    store.upload_commit(&id, 11, &d).await.expect("commit");
    assert_eq!(store.stat(&d).await.expect("stat"), Some(11));
    assert_eq!(
        collect(store.get(&d, None).await.expect("get")).await,
        b"hello world"
    );
    assert_eq!(
        collect(store.get(&d, Some((6, 10))).await.expect("range")).await,
        b"world"
    );
    assert_eq!(
        collect(store.get(&d, Some((0, 0))).await.expect("range")).await,
        b"h"
    );
    assert!(
        store.upload_read(&id, 1).await.is_err(),
        "a committed session's storage is gone"
    );

    // A large blob in many chunks, each bigger than a multipart part.
    let id = uuid::Uuid::new_v4().to_string();
    store.upload_begin(&id).await.expect("begin");
    let big = pseudo_random(21 << 20, 7);
    let mut at = 0u64;
    for chunk in big.chunks(9 << 20) {
        let parts = chunk.chunks(64 << 10).map(<[u8]>::to_vec).collect();
        at = store
            .upload_append(&id, at, stream(parts))
            .await
            .expect("append");
    }
    assert_eq!(at, big.len() as u64);
    let d = Digest::sha256_of(&big);
    store.upload_commit(&id, at, &d).await.expect("commit");
    let back = collect(store.get(&d, None).await.expect("get")).await;
    assert!(back == big, "large blob round trip");
    let tail = collect(store.get(&d, Some((at - 10, at - 1))).await.expect("range")).await;
    assert_eq!(tail, &big[big.len() - 10..]);
    store.delete(&d).await.expect("delete");
    assert_eq!(store.stat(&d).await.expect("stat"), None);

    // Empty blob, cancelled session, bad ids, a failing client stream.
    let id = uuid::Uuid::new_v4().to_string();
    store.upload_begin(&id).await.expect("begin");
    assert_eq!(
        store
            .upload_append(&id, 0, stream(vec![]))
            .await
            .expect("append"),
        0
    );
    let empty = Digest::sha256_of(b"");
    store
        .upload_commit(&id, 0, &empty)
        .await
        .expect("commit empty");
    assert_eq!(store.stat(&empty).await.expect("stat"), Some(0));
    let id = uuid::Uuid::new_v4().to_string();
    store.upload_begin(&id).await.expect("begin");
    store
        .upload_append(&id, 0, stream(vec![b"abc".to_vec()]))
        .await
        .expect("append");
    store.upload_abort(&id).await.expect("abort");
    assert!(store.upload_read(&id, 3).await.is_err());
    store.upload_abort(&id).await.expect("abort twice");
    assert!(matches!(
        store.upload_append("../x", 0, stream(vec![])).await,
        Err(StorageError::UploadNotFound)
    ));
    let id = uuid::Uuid::new_v4().to_string();
    store.upload_begin(&id).await.expect("begin");
    let failing: ByteStream = futures::stream::iter(vec![
        Ok(Bytes::from_static(b"partial")),
        Err(std::io::Error::other("client went away")),
    ])
    .boxed();
    assert!(matches!(
        store.upload_append(&id, 0, failing).await,
        Err(StorageError::Client(_))
    ));
    store.health().await.expect("health");

    // The inventory lists committed blobs with their sizes, and sessions (an empty object store
    // session has no chunk object yet, so this one holds bytes).
    let data = pseudo_random(3000, 7);
    let d = Digest::sha256_of(&data);
    let sid = uuid::Uuid::new_v4().to_string();
    store.upload_begin(&sid).await.expect("begin");
    store
        .upload_append(&sid, 0, stream(vec![data.clone()]))
        .await
        .expect("append");
    store.upload_commit(&sid, 3000, &d).await.expect("commit");
    let open = uuid::Uuid::new_v4().to_string();
    store.upload_begin(&open).await.expect("begin");
    store
        .upload_append(&open, 0, stream(vec![b"pending".to_vec()]))
        .await
        .expect("append");
    let inv = store.inventory().await.expect("inventory");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|t| t.as_millis() as i64)
        .unwrap_or(0);
    let (_, size, at) = inv
        .blobs
        .iter()
        .find(|(x, _, _)| *x == d)
        .expect("committed blob listed");
    assert_eq!(*size, 3000);
    assert!(
        (now - at).abs() < 600_000,
        "modification time {at} vs now {now}"
    );
    assert!(inv.uploads.iter().any(|(u, _)| *u == open), "{inv:?}");
    assert!(
        !inv.uploads.iter().any(|(u, _)| *u == sid),
        "committed session listed"
    );
    store.upload_abort(&open).await.expect("abort");
}

#[tokio::test]
async fn filesystem_backend_keeps_the_contract() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = crate::open(&StorageSpec::Local {
        path: dir.path().to_path_buf(),
        fsync: true,
    })
    .expect("open");
    assert_eq!(store.kind(), "filesystem");
    assert_eq!(
        store
            .presigned_url(&Digest::sha256_of(b"x"))
            .await
            .expect("presign"),
        None
    );
    run_contract(store.as_ref()).await;
}

#[tokio::test]
async fn s3_backend_keeps_the_contract() {
    let endpoint = std::env::var("TEST_S3_ENDPOINT").expect(
        "TEST_S3_ENDPOINT must name an S3-compatible server (run ./scripts/test.sh, which starts one on 127.0.0.1)",
    );
    let store = crate::open(&StorageSpec::S3 {
        bucket: std::env::var("TEST_S3_BUCKET").unwrap_or_else(|_| "berth-test".into()),
        prefix: format!("contract/{}", uuid::Uuid::new_v4()),
        region: Some("us-east-1".into()),
        endpoint: Some(endpoint),
        access_key: Some("test".into()),
        secret_key: Some("test".into()),
        session_token: None,
    })
    .expect("open");
    assert_eq!(store.kind(), "s3");
    run_contract(store.as_ref()).await;
    let url = store
        .presigned_url(&Digest::sha256_of(b"x"))
        .await
        .expect("presign");
    assert!(url.is_some_and(|u| u.contains("X-Amz-Signature")));
}

#[tokio::test]
async fn azure_backend_keeps_the_contract() {
    let endpoint = std::env::var("TEST_AZURE_ENDPOINT").expect(
        "TEST_AZURE_ENDPOINT must name an Azure Blob Storage endpoint such as Azurite's \
         http://127.0.0.1:PORT/devstoreaccount1 (run ./scripts/test.sh, which starts one on 127.0.0.1)",
    );
    // Azurite's well-known development account.
    let store = crate::open(&StorageSpec::Azure {
        container: std::env::var("TEST_AZURE_CONTAINER").unwrap_or_else(|_| "berth-test".into()),
        prefix: format!("contract/{}", uuid::Uuid::new_v4()),
        account: "devstoreaccount1".into(),
        access_key: Some(
            "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==".into(),
        ),
        sas_token: None,
        endpoint: Some(endpoint),
    })
    .expect("open");
    assert_eq!(store.kind(), "azure");
    run_contract(store.as_ref()).await;
}
