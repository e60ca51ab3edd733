//! Blob reads (`HEAD`/`GET /v2/<name>/blobs/<digest>`), ranges, deletes and repository isolation.

use crate::util::*;

/// 256 bytes covering every byte value, so that any text/encoding mangling shows.
fn binary_blob() -> Vec<u8> {
    let mut v: Vec<u8> = (0..=255u8).collect();
    v.extend_from_slice(&unique_bytes("tail"));
    v
}

#[tokio::test]
async fn blob_head_reports_length_digest_and_accept_ranges() {
    let reg = Reg::start();
    let repo = repo("bhead");
    let data = binary_blob();
    let d = reg.push_blob(&repo, &data).await;
    let r = reg.head(&format!("/v2/{repo}/blobs/{d}")).await;
    r.expect_status(200);
    assert_eq!(r.h("content-length"), data.len().to_string());
    assert_eq!(r.h("docker-content-digest"), d);
    assert_eq!(r.h("accept-ranges"), "bytes");
    r.expect_empty_body();
}

#[tokio::test]
async fn blob_get_returns_exact_bytes_and_headers() {
    let reg = Reg::start();
    let repo = repo("bget");
    let data = binary_blob();
    let d = reg.push_blob(&repo, &data).await;
    let r = reg.get(&format!("/v2/{repo}/blobs/{d}")).await;
    r.expect_status(200);
    assert_eq!(r.h("content-length"), data.len().to_string());
    assert_eq!(r.h("docker-content-digest"), d);
    assert_eq!(r.h("accept-ranges"), "bytes");
    assert_eq!(r.body, data);
    assert_eq!(sha256(&r.body), d);
}

#[tokio::test]
async fn blob_range_closed_interval_is_206() {
    let reg = Reg::start();
    let repo = repo("brange");
    let data = binary_blob();
    let n = data.len();
    let d = reg.push_blob(&repo, &data).await;
    let path = format!("/v2/{repo}/blobs/{d}");

    let r = reg.get_range(&path, "bytes=2-5").await;
    r.expect_status(206);
    assert_eq!(r.h("content-range"), format!("bytes 2-5/{n}"));
    assert_eq!(r.h("content-length"), "4");
    assert_eq!(r.body, data[2..=5]);

    let r = reg.get_range(&path, "bytes=0-0").await;
    r.expect_status(206);
    assert_eq!(r.h("content-range"), format!("bytes 0-0/{n}"));
    assert_eq!(r.body, data[..1]);

    let r = reg.get_range(&path, &format!("bytes=0-{}", n - 1)).await;
    r.expect_status(206);
    assert_eq!(r.h("content-range"), format!("bytes 0-{}/{n}", n - 1));
    assert_eq!(r.body, data);
}

#[tokio::test]
async fn blob_range_open_ended_is_206() {
    let reg = Reg::start();
    let repo = repo("bropen");
    let data = binary_blob();
    let n = data.len();
    let d = reg.push_blob(&repo, &data).await;
    let r = reg
        .get_range(&format!("/v2/{repo}/blobs/{d}"), "bytes=100-")
        .await;
    r.expect_status(206);
    assert_eq!(r.h("content-range"), format!("bytes 100-{}/{n}", n - 1));
    assert_eq!(r.h("content-length"), (n - 100).to_string());
    assert_eq!(r.body, data[100..]);
}

#[tokio::test]
async fn blob_range_suffix_is_206() {
    let reg = Reg::start();
    let repo = repo("brsuffix");
    let data = binary_blob();
    let n = data.len();
    let d = reg.push_blob(&repo, &data).await;
    let r = reg
        .get_range(&format!("/v2/{repo}/blobs/{d}"), "bytes=-7")
        .await;
    r.expect_status(206);
    assert_eq!(
        r.h("content-range"),
        format!("bytes {}-{}/{n}", n - 7, n - 1)
    );
    assert_eq!(r.body, data[n - 7..]);
}

#[tokio::test]
async fn blob_range_end_past_size_is_clamped() {
    let reg = Reg::start();
    let repo = repo("brclamp");
    let data = binary_blob();
    let n = data.len();
    let d = reg.push_blob(&repo, &data).await;
    let r = reg
        .get_range(&format!("/v2/{repo}/blobs/{d}"), "bytes=10-100000")
        .await;
    r.expect_status(206);
    assert_eq!(r.h("content-range"), format!("bytes 10-{}/{n}", n - 1));
    assert_eq!(r.body, data[10..]);
}

#[tokio::test]
async fn blob_range_unsatisfiable_is_416() {
    let reg = Reg::start();
    let repo = repo("br416");
    let data = binary_blob();
    let n = data.len();
    let d = reg.push_blob(&repo, &data).await;
    let path = format!("/v2/{repo}/blobs/{d}");
    for range in [
        format!("bytes={n}-"),
        format!("bytes={}-{}", n + 10, n + 20),
    ] {
        let r = reg.get_range(&path, &range).await;
        r.expect_status(416);
        assert_eq!(r.h("content-range"), format!("bytes */{n}"), "{range}");
    }
}

#[tokio::test]
async fn blob_unknown_digest_is_blob_unknown() {
    let reg = Reg::start();
    let repo = repo("bunk");
    reg.push_blob(&repo, &unique_bytes("x")).await;
    let missing = sha256(&unique_bytes("missing"));
    let r = reg.get(&format!("/v2/{repo}/blobs/{missing}")).await;
    r.expect_error(404, "BLOB_UNKNOWN");
    let r = reg.head(&format!("/v2/{repo}/blobs/{missing}")).await;
    r.expect_status(404);
    r.expect_empty_body();
}

#[tokio::test]
async fn blob_in_missing_repository_is_404() {
    let reg = Reg::start();
    let missing = sha256(b"whatever");
    let r = reg
        .get(&format!("/v2/{}/blobs/{missing}", repo("nope")))
        .await;
    r.expect_error_any(404, &["NAME_UNKNOWN", "BLOB_UNKNOWN"]);
    let r = reg
        .head(&format!("/v2/{}/blobs/{missing}", repo("nope")))
        .await;
    r.expect_status(404);
    r.expect_empty_body();
}

#[tokio::test]
async fn blob_malformed_digest_is_digest_invalid() {
    let reg = Reg::start();
    let repo = repo("bbad");
    reg.push_blob(&repo, &unique_bytes("x")).await;
    let upper = format!("sha256:{}", "A".repeat(64));
    let short = format!("sha256:{}", "a".repeat(63));
    let long = format!("sha256:{}", "a".repeat(65));
    let sha512_short = format!("sha512:{}", "a".repeat(64));
    let non_hex = format!("sha256:{}", "g".repeat(64));
    for bad in [
        "sha256:xyz",
        "notadigest",
        "sha256:",
        upper.as_str(),
        short.as_str(),
        long.as_str(),
        sha512_short.as_str(),
        non_hex.as_str(),
    ] {
        let path = format!("/v2/{repo}/blobs/{bad}");
        reg.get(&path).await.expect_error(400, "DIGEST_INVALID");
        reg.delete(&path).await.expect_error(400, "DIGEST_INVALID");
        let r = reg.head(&path).await;
        r.expect_status(400);
        r.expect_empty_body();
    }
}

#[tokio::test]
async fn blob_is_not_readable_from_another_repository() {
    let reg = Reg::start();
    let a = repo("iso-a");
    let b = repo("iso-b");
    let data = unique_bytes("secret");
    let d = reg.push_blob(&a, &data).await;
    reg.push_blob(&b, &unique_bytes("other")).await;
    reg.get(&format!("/v2/{b}/blobs/{d}"))
        .await
        .expect_error(404, "BLOB_UNKNOWN");
    let r = reg.head(&format!("/v2/{b}/blobs/{d}")).await;
    r.expect_status(404);
    r.expect_empty_body();
    // Still readable in its own repository.
    let r = reg.get(&format!("/v2/{a}/blobs/{d}")).await;
    r.expect_status(200);
    assert_eq!(r.body, data);
}

#[tokio::test]
async fn blob_delete_is_202_and_removes_it_from_that_repository_only() {
    let reg = Reg::start();
    let a = repo("del-a");
    let b = repo("del-b");
    let data = unique_bytes("shared");
    let d = reg.push_blob(&a, &data).await;
    assert_eq!(reg.push_blob(&b, &data).await, d);
    reg.push_blob(&a, &unique_bytes("keep")).await;

    let r = reg.delete(&format!("/v2/{a}/blobs/{d}")).await;
    r.expect_status(202);
    reg.get(&format!("/v2/{a}/blobs/{d}"))
        .await
        .expect_error(404, "BLOB_UNKNOWN");
    reg.head(&format!("/v2/{a}/blobs/{d}"))
        .await
        .expect_status(404);
    // The other repository keeps its copy.
    let r = reg.get(&format!("/v2/{b}/blobs/{d}")).await;
    r.expect_status(200);
    assert_eq!(r.body, data);
    // Deleting again: unknown.
    reg.delete(&format!("/v2/{a}/blobs/{d}"))
        .await
        .expect_error(404, "BLOB_UNKNOWN");
    // Pushing again makes it readable again.
    reg.push_blob(&a, &data).await;
    reg.get(&format!("/v2/{a}/blobs/{d}"))
        .await
        .expect_status(200);
}

#[tokio::test]
async fn blob_delete_unknown_is_blob_unknown() {
    let reg = Reg::start();
    let repo = repo("delunk");
    reg.push_blob(&repo, &unique_bytes("x")).await;
    let missing = sha256(&unique_bytes("missing"));
    reg.delete(&format!("/v2/{repo}/blobs/{missing}"))
        .await
        .expect_error(404, "BLOB_UNKNOWN");
}

#[tokio::test]
async fn sha512_blob_round_trips() {
    let reg = Reg::start();
    let repo = repo("b512");
    let data = binary_blob();
    let d = sha512(&data);
    let r = reg.push_blob_monolithic(&repo, &d, &data).await;
    r.expect_status(201);
    assert_eq!(r.h("docker-content-digest"), d);
    assert_eq!(r.h("location"), format!("/v2/{repo}/blobs/{d}"));
    let r = reg.get(&format!("/v2/{repo}/blobs/{d}")).await;
    r.expect_status(200);
    assert_eq!(r.h("docker-content-digest"), d);
    assert_eq!(r.body, data);
    // The sha256 digest of the same bytes was never pushed here.
    reg.head(&format!("/v2/{repo}/blobs/{}", sha256(&data)))
        .await
        .expect_status(404);
    // A wrong sha512 is refused.
    let r = reg
        .push_blob_monolithic(&repo, &sha512(b"something else"), &data)
        .await;
    r.expect_error(400, "DIGEST_INVALID");
}

#[tokio::test]
async fn empty_blob_round_trips() {
    let reg = Reg::start();
    let repo = repo("bempty");
    let d = reg.push_blob(&repo, b"").await;
    assert_eq!(
        d,
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    let r = reg.get(&format!("/v2/{repo}/blobs/{d}")).await;
    r.expect_status(200);
    assert_eq!(r.h("content-length"), "0");
    assert_eq!(r.h("docker-content-digest"), d);
    assert!(r.body.is_empty());
}

#[tokio::test]
async fn large_blob_in_chunks_round_trips() {
    let reg = Reg::start();
    let repo = repo("blarge");
    let chunk = 1024 * 1024 + 17;
    let data: Vec<u8> = (0..3 * chunk)
        .map(|i| (i as u64).wrapping_mul(2654435761) as u8)
        .collect();
    let mut loc = reg.start_upload(&repo).await;
    for (i, part) in data.chunks(chunk).enumerate() {
        let start = i * chunk;
        let end = start + part.len() - 1;
        let r = reg
            .patch_chunk(&loc, part, Some(&format!("{start}-{end}")))
            .await;
        r.expect_status(202);
        assert_eq!(r.h("range"), format!("0-{end}"));
        loc = r.h("location").to_string();
    }
    let d = sha256(&data);
    reg.finish_upload(&loc, &d, &[]).await.expect_status(201);
    let r = reg.get(&format!("/v2/{repo}/blobs/{d}")).await;
    r.expect_status(200);
    assert_eq!(r.body.len(), data.len());
    assert_eq!(sha256(&r.body), d);
    let r = reg
        .get_range(
            &format!("/v2/{repo}/blobs/{d}"),
            &format!("bytes={}-{}", chunk - 5, chunk + 4),
        )
        .await;
    r.expect_status(206);
    assert_eq!(r.body, data[chunk - 5..chunk + 5]);
}

#[tokio::test]
async fn empty_blob_monolithic_push() {
    let reg = Reg::start();
    let repo = repo("bempty-mono");
    let d = sha256(b"");
    let r = reg.push_blob_monolithic(&repo, &d, b"").await;
    r.expect_status(201);
    assert_eq!(r.h("location"), format!("/v2/{repo}/blobs/{d}"));
    let r = reg.head(&format!("/v2/{repo}/blobs/{d}")).await;
    r.expect_status(200);
    assert_eq!(r.h("content-length"), "0");
}
