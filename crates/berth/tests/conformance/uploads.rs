//! Blob uploads: monolithic POST, POST+PUT, chunked and streamed PATCH, session status,
//! cancellation, cross-repository mounts.

use crate::util::*;

/// The uuid (last path segment) of an upload location.
fn uuid_of(location: &str) -> &str {
    path_of(location)
        .rsplit('/')
        .next()
        .expect("location has a last segment")
}

#[tokio::test]
async fn post_starts_upload_session() {
    let reg = Reg::start();
    let repo = repo("start");
    let r = reg.post(&format!("/v2/{repo}/blobs/uploads/")).await;
    r.expect_status(202);
    let loc = r.h("location").to_string();
    let prefix = format!("/v2/{repo}/blobs/uploads/");
    assert!(loc.starts_with(&prefix), "relative location {loc}");
    let id = uuid_of(&loc);
    assert!(!id.is_empty());
    assert_eq!(r.h("docker-upload-uuid"), id);
    assert_eq!(r.h("range"), "0-0");

    let r2 = reg.post(&format!("/v2/{repo}/blobs/uploads/")).await;
    r2.expect_status(202);
    assert_ne!(r2.h("docker-upload-uuid"), id, "sessions must differ");

    let st = reg.get(&loc).await;
    st.expect_status(204);
    assert_eq!(st.h("docker-upload-uuid"), id);
}

#[tokio::test]
async fn monolithic_post_with_digest_is_201() {
    let reg = Reg::start();
    let repo = repo("mono");
    let data = unique_bytes("mono");
    let d = sha256(&data);
    let r = reg.push_blob_monolithic(&repo, &d, &data).await;
    r.expect_status(201);
    assert_eq!(r.h("location"), format!("/v2/{repo}/blobs/{d}"));
    assert_eq!(r.h("docker-content-digest"), d);
    let r = reg.get(&format!("/v2/{repo}/blobs/{d}")).await;
    r.expect_status(200);
    assert_eq!(r.body, data);
}

#[tokio::test]
async fn monolithic_post_with_wrong_digest_is_digest_invalid() {
    let reg = Reg::start();
    let repo = repo("monobad");
    reg.push_blob(&repo, &unique_bytes("exists")).await;
    let data = unique_bytes("mono");
    let claimed = sha256(b"not the body");
    let r = reg.push_blob_monolithic(&repo, &claimed, &data).await;
    r.expect_error(400, "DIGEST_INVALID");
    for d in [claimed, sha256(&data)] {
        reg.head(&format!("/v2/{repo}/blobs/{d}"))
            .await
            .expect_status(404);
    }
}

#[tokio::test]
async fn monolithic_post_with_malformed_digest_is_digest_invalid() {
    let reg = Reg::start();
    let repo = repo("monomal");
    let r = reg
        .push_blob_monolithic(&repo, "sha256:1234", b"data")
        .await;
    r.expect_error(400, "DIGEST_INVALID");
}

#[tokio::test]
async fn post_then_put_with_whole_body_is_201() {
    let reg = Reg::start();
    let repo = repo("postput");
    let data = unique_bytes("pp");
    let d = sha256(&data);
    let loc = reg.start_upload(&repo).await;
    let r = reg.finish_upload(&loc, &d, &data).await;
    r.expect_status(201);
    assert_eq!(r.h("location"), format!("/v2/{repo}/blobs/{d}"));
    assert_eq!(r.h("docker-content-digest"), d);
    let r = reg.get(&format!("/v2/{repo}/blobs/{d}")).await;
    assert_eq!(r.body, data);
}

#[tokio::test]
async fn chunked_upload_with_content_range_and_final_chunk() {
    let reg = Reg::start();
    let repo = repo("chunked");
    let data = unique_bytes("0123456789-abcdefghij-ABCDEFGHIJ");
    let (a, rest) = data.split_at(10);
    let (b, c) = rest.split_at(11);
    let loc0 = reg.start_upload(&repo).await;
    let id = uuid_of(&loc0).to_string();

    let r = reg.patch_chunk(&loc0, a, Some("0-9")).await;
    r.expect_status(202);
    assert_eq!(r.h("range"), "0-9");
    let loc1 = r.h("location").to_string();
    assert!(loc1.starts_with(&format!("/v2/{repo}/blobs/uploads/")));
    assert_eq!(uuid_of(&loc1), id);

    let st = reg.get(&loc1).await;
    st.expect_status(204);
    assert_eq!(st.h("range"), "0-9");
    assert_eq!(st.h("docker-upload-uuid"), id);

    let r = reg.patch_chunk(&loc1, b, Some("10-20")).await;
    r.expect_status(202);
    assert_eq!(r.h("range"), "0-20");
    let loc2 = r.h("location").to_string();

    let st = reg.get(&loc2).await;
    st.expect_status(204);
    assert_eq!(st.h("range"), "0-20");

    let d = sha256(&data);
    let r = reg.finish_upload(&loc2, &d, c).await;
    r.expect_status(201);
    assert_eq!(r.h("location"), format!("/v2/{repo}/blobs/{d}"));
    assert_eq!(r.h("docker-content-digest"), d);
    let r = reg.get(&format!("/v2/{repo}/blobs/{d}")).await;
    r.expect_status(200);
    assert_eq!(r.body, data);
}

#[tokio::test]
async fn out_of_order_patch_is_416_and_keeps_the_session() {
    let reg = Reg::start();
    let repo = repo("ooo");
    let data: Vec<u8> = (0..30u8).collect();
    let loc = reg.start_upload(&repo).await;

    // Not starting at 0.
    let r = reg.patch_chunk(&loc, &data[1..10], Some("1-9")).await;
    r.expect_error(416, "BLOB_UPLOAD_INVALID");

    let r = reg.patch_chunk(&loc, &data[..10], Some("0-9")).await;
    r.expect_status(202);
    let loc = r.h("location").to_string();

    // A gap.
    let r = reg.patch_chunk(&loc, &data[20..], Some("20-29")).await;
    r.expect_error(416, "BLOB_UPLOAD_INVALID");
    // An overlap.
    let r = reg.patch_chunk(&loc, &data[5..15], Some("5-14")).await;
    r.expect_error(416, "BLOB_UPLOAD_INVALID");

    let st = reg.get(&loc).await;
    st.expect_status(204);
    assert_eq!(st.h("range"), "0-9");

    let r = reg.patch_chunk(&loc, &data[10..], Some("10-29")).await;
    r.expect_status(202);
    assert_eq!(r.h("range"), "0-29");
    let loc = r.h("location").to_string();
    let d = sha256(&data);
    reg.finish_upload(&loc, &d, &[]).await.expect_status(201);
    assert_eq!(reg.get(&format!("/v2/{repo}/blobs/{d}")).await.body, data);
}

#[tokio::test]
async fn out_of_order_final_put_is_416_and_keeps_the_session() {
    let reg = Reg::start();
    let repo = repo("ooo-put");
    let data: Vec<u8> = (0..30u8).collect();
    let d = sha256(&data);
    let loc = reg.start_upload(&repo).await;
    let r = reg.patch_chunk(&loc, &data[..10], Some("0-9")).await;
    r.expect_status(202);
    let loc = r.h("location").to_string();

    // The closing PUT carries a chunk that leaves a gap: 416, with where to resume.
    let url = with_query(&loc, &format!("digest={d}"));
    let put = |range: &'static str, body: Vec<u8>| {
        let url = url.clone();
        let reg = &reg;
        async move {
            reg.send(
                "PUT",
                &url,
                &[
                    ("Content-Type", "application/octet-stream"),
                    ("Content-Range", range),
                ],
                Some(body),
            )
            .await
        }
    };
    let r = put("20-29", data[20..].to_vec()).await;
    r.expect_error(416, "BLOB_UPLOAD_INVALID");
    assert_eq!(r.h("range"), "0-9", "416 tells where to resume");
    // An overlap is out of order too.
    let r = put("5-29", data[5..].to_vec()).await;
    r.expect_error(416, "BLOB_UPLOAD_INVALID");

    // The session survived both, unchanged, and finishes with the right chunk.
    let st = reg.get(&loc).await;
    st.expect_status(204);
    assert_eq!(st.h("range"), "0-9");
    let r = put("10-29", data[10..].to_vec()).await;
    r.expect_status(201);
    assert_eq!(r.h("docker-content-digest"), d);
    assert_eq!(reg.get(&format!("/v2/{repo}/blobs/{d}")).await.body, data);
}

#[tokio::test]
async fn patch_with_content_range_not_matching_body_length_is_rejected() {
    let reg = Reg::start();
    let repo = repo("rangelen");
    let loc = reg.start_upload(&repo).await;
    let r = reg.patch_chunk(&loc, b"12345", Some("0-9")).await;
    // SIZE_INVALID is the spec's "provided length did not match content length".
    r.expect_error_any(400, &["SIZE_INVALID", "BLOB_UPLOAD_INVALID"]);
    let st = reg.get(&loc).await;
    st.expect_status(204);
    assert_ne!(st.h("range"), "0-9");
}

#[tokio::test]
async fn streamed_patch_without_content_range_appends() {
    let reg = Reg::start();
    let repo = repo("stream");
    let a = unique_bytes("first");
    let b = unique_bytes("second");
    let loc = reg.start_upload(&repo).await;
    let r = reg.patch_chunk(&loc, &a, None).await;
    r.expect_status(202);
    assert_eq!(r.h("range"), format!("0-{}", a.len() - 1));
    let loc = r.h("location").to_string();
    let r = reg.patch_chunk(&loc, &b, None).await;
    r.expect_status(202);
    assert_eq!(r.h("range"), format!("0-{}", a.len() + b.len() - 1));
    let loc = r.h("location").to_string();
    let all = [a, b].concat();
    let d = sha256(&all);
    reg.finish_upload(&loc, &d, &[]).await.expect_status(201);
    let r = reg.get(&format!("/v2/{repo}/blobs/{d}")).await;
    r.expect_status(200);
    assert_eq!(r.body, all);
}

#[tokio::test]
async fn patch_with_chunked_transfer_encoding_appends() {
    let reg = Reg::start();
    let repo = repo("te");
    let loc = reg.start_upload(&repo).await;
    assert!(loc.starts_with('/'), "relative location expected: {loc}");
    let parts: [&[u8]; 3] = [b"hello ", b"chunked ", b"world"];
    let head = format!(
        "PATCH {loc} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/octet-stream\r\n\
         Authorization: {}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        reg.berth.host,
        crate::common::admin_basic()
    );
    let (status, headers, _) = raw_request(&reg.berth.host, &head, &parts).await;
    assert_eq!(status, 202, "{headers:?}");
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("missing {name}: {headers:?}"))
    };
    assert_eq!(get("range"), "0-18");
    let loc = get("location");
    let data = parts.concat();
    let d = sha256(&data);
    reg.finish_upload(&loc, &d, &[]).await.expect_status(201);
    assert_eq!(reg.get(&format!("/v2/{repo}/blobs/{d}")).await.body, data);
}

#[tokio::test]
async fn put_with_wrong_digest_is_digest_invalid() {
    let reg = Reg::start();
    let repo = repo("putbad");
    let data = unique_bytes("put");
    let loc = reg.start_upload(&repo).await;
    let r = reg.patch_chunk(&loc, &data, None).await;
    r.expect_status(202);
    let loc = r.h("location").to_string();
    let wrong = sha256(b"different");
    let r = reg.finish_upload(&loc, &wrong, &[]).await;
    r.expect_error(400, "DIGEST_INVALID");
    for d in [wrong, sha256(&data)] {
        reg.head(&format!("/v2/{repo}/blobs/{d}"))
            .await
            .expect_status(404);
    }
}

#[tokio::test]
async fn put_with_malformed_or_missing_digest_is_rejected() {
    let reg = Reg::start();
    let repo = repo("putmal");
    let loc = reg.start_upload(&repo).await;
    let r = reg.finish_upload(&loc, "sha256:nothex", b"abc").await;
    r.expect_error(400, "DIGEST_INVALID");
    let loc = reg.start_upload(&repo).await;
    let r = reg.send("PUT", &loc, &[], Some(b"abc".to_vec())).await;
    r.expect_error_any(400, &["DIGEST_INVALID", "BLOB_UPLOAD_INVALID"]);
}

#[tokio::test]
async fn completed_upload_session_is_gone() {
    let reg = Reg::start();
    let repo = repo("done");
    let data = unique_bytes("done");
    let loc = reg.start_upload(&repo).await;
    reg.finish_upload(&loc, &sha256(&data), &data)
        .await
        .expect_status(201);
    reg.get(&loc).await.expect_error(404, "BLOB_UPLOAD_UNKNOWN");
    reg.patch_chunk(&loc, b"more", None)
        .await
        .expect_error(404, "BLOB_UPLOAD_UNKNOWN");
}

#[tokio::test]
async fn cancelled_upload_is_gone() {
    let reg = Reg::start();
    let repo = repo("cancel");
    let loc = reg.start_upload(&repo).await;
    let r = reg.patch_chunk(&loc, b"partial", None).await;
    r.expect_status(202);
    let loc = r.h("location").to_string();
    reg.delete(&loc).await.expect_status(204);
    reg.get(&loc).await.expect_error(404, "BLOB_UPLOAD_UNKNOWN");
    reg.patch_chunk(&loc, b"more", None)
        .await
        .expect_error(404, "BLOB_UPLOAD_UNKNOWN");
    reg.finish_upload(&loc, &sha256(b"partial"), &[])
        .await
        .expect_error(404, "BLOB_UPLOAD_UNKNOWN");
    reg.delete(&loc)
        .await
        .expect_error(404, "BLOB_UPLOAD_UNKNOWN");
    reg.head(&format!("/v2/{repo}/blobs/{}", sha256(b"partial")))
        .await
        .expect_status(404);
}

#[tokio::test]
async fn unknown_upload_uuid_is_blob_upload_unknown() {
    let reg = Reg::start();
    let repo = repo("nouuid");
    reg.push_blob(&repo, &unique_bytes("x")).await;
    let path = format!("/v2/{repo}/blobs/uploads/{}", uuid::Uuid::new_v4());
    reg.get(&path)
        .await
        .expect_error(404, "BLOB_UPLOAD_UNKNOWN");
    reg.patch_chunk(&path, b"data", Some("0-3"))
        .await
        .expect_error(404, "BLOB_UPLOAD_UNKNOWN");
    reg.finish_upload(&path, &sha256(b"data"), b"data")
        .await
        .expect_error(404, "BLOB_UPLOAD_UNKNOWN");
    reg.delete(&path)
        .await
        .expect_error(404, "BLOB_UPLOAD_UNKNOWN");
}

#[tokio::test]
async fn upload_session_belongs_to_its_repository() {
    let reg = Reg::start();
    let a = repo("own-a");
    let b = repo("own-b");
    reg.push_blob(&b, &unique_bytes("b")).await;
    let loc = reg.start_upload(&a).await;
    let foreign = loc.replacen(&format!("/v2/{a}/"), &format!("/v2/{b}/"), 1);
    assert_ne!(foreign, loc);
    reg.get(&foreign)
        .await
        .expect_error(404, "BLOB_UPLOAD_UNKNOWN");
    reg.patch_chunk(&foreign, b"data", None)
        .await
        .expect_error(404, "BLOB_UPLOAD_UNKNOWN");
    // The session still works in its own repository.
    reg.get(&loc).await.expect_status(204);
}

#[tokio::test]
async fn sha512_chunked_upload_is_verified() {
    let reg = Reg::start();
    let repo = repo("up512");
    let data = unique_bytes("five-twelve");
    let loc = reg.start_upload(&repo).await;
    let r = reg.patch_chunk(&loc, &data, None).await;
    r.expect_status(202);
    let loc = r.h("location").to_string();
    let d = sha512(&data);
    let r = reg.finish_upload(&loc, &d, &[]).await;
    r.expect_status(201);
    assert_eq!(r.h("docker-content-digest"), d);
    assert_eq!(r.h("location"), format!("/v2/{repo}/blobs/{d}"));
    assert_eq!(reg.get(&format!("/v2/{repo}/blobs/{d}")).await.body, data);
}

#[tokio::test]
async fn pushing_an_existing_blob_again_is_201() {
    let reg = Reg::start();
    let repo = repo("again");
    let data = unique_bytes("again");
    let d = reg.push_blob(&repo, &data).await;
    assert_eq!(reg.push_blob(&repo, &data).await, d);
    let r = reg.push_blob_monolithic(&repo, &d, &data).await;
    r.expect_status(201);
    assert_eq!(reg.get(&format!("/v2/{repo}/blobs/{d}")).await.body, data);
}

#[tokio::test]
async fn mount_from_repository_holding_the_blob_is_201() {
    let reg = Reg::start();
    let a = repo("mnt-a");
    let b = repo("mnt-b");
    let data = unique_bytes("mount");
    let d = reg.push_blob(&a, &data).await;
    let r = reg
        .post(&format!("/v2/{b}/blobs/uploads/?mount={d}&from={a}"))
        .await;
    r.expect_status(201);
    assert_eq!(r.h("location"), format!("/v2/{b}/blobs/{d}"));
    assert_eq!(r.h("docker-content-digest"), d);
    let r = reg.get(&format!("/v2/{b}/blobs/{d}")).await;
    r.expect_status(200);
    assert_eq!(r.body, data);
    // Deleting it from the target leaves the source intact.
    reg.delete(&format!("/v2/{b}/blobs/{d}"))
        .await
        .expect_status(202);
    reg.get(&format!("/v2/{a}/blobs/{d}"))
        .await
        .expect_status(200);
}

#[tokio::test]
async fn mount_of_blob_missing_in_source_starts_an_upload() {
    let reg = Reg::start();
    let a = repo("mntm-a");
    let b = repo("mntm-b");
    reg.push_blob(&a, &unique_bytes("unrelated")).await;
    // The blob exists in b but not in a: mounting from a must not find it.
    let data = unique_bytes("elsewhere");
    let d = reg.push_blob(&b, &data).await;
    let c = repo("mntm-c");
    let r = reg
        .post(&format!("/v2/{c}/blobs/uploads/?mount={d}&from={a}"))
        .await;
    r.expect_status(202);
    let loc = r.h("location").to_string();
    assert!(loc.starts_with(&format!("/v2/{c}/blobs/uploads/")), "{loc}");
    assert_eq!(r.h("docker-upload-uuid"), uuid_of(&loc));
    reg.head(&format!("/v2/{c}/blobs/{d}"))
        .await
        .expect_status(404);
    // The session is usable.
    let r = reg.finish_upload(&loc, &d, &data).await;
    r.expect_status(201);
    assert_eq!(reg.get(&format!("/v2/{c}/blobs/{d}")).await.body, data);
}

#[tokio::test]
async fn mount_from_missing_repository_starts_an_upload() {
    let reg = Reg::start();
    let b = repo("mntx-b");
    let d = sha256(&unique_bytes("ghost"));
    let r = reg
        .post(&format!(
            "/v2/{b}/blobs/uploads/?mount={d}&from={}",
            repo("never-pushed")
        ))
        .await;
    r.expect_status(202);
    assert!(
        r.h("location")
            .starts_with(&format!("/v2/{b}/blobs/uploads/"))
    );
    reg.get(r.h("location")).await.expect_status(204);
}
