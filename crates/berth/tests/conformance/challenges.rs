//! Token challenges as real clients follow them (Docker token spec, Distribution's behaviour), and
//! the connection after an answer sent before the request body was read.

use crate::util::*;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A client with no default credentials.
fn bare() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// The `key="value"` parameters of a Bearer challenge.
fn challenge_params(h: &str) -> Vec<(String, String)> {
    let rest = h.strip_prefix("Bearer ").expect("a Bearer challenge");
    let mut out = Vec::new();
    for part in rest.split("\",") {
        if let Some((k, v)) = part.split_once('=') {
            out.push((k.trim().to_string(), v.trim_matches('"').to_string()));
        }
    }
    out
}

fn param<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Follows a challenge the way clients do: a token from its realm for its service and scopes.
async fn token_for(reg: &Reg, challenge: &str, basic: Option<&str>) -> String {
    let p = challenge_params(challenge);
    let realm = param(&p, "realm").expect("realm");
    let mut q = vec![(
        "service",
        param(&p, "service").expect("service").to_string(),
    )];
    if let Some(scope) = param(&p, "scope") {
        for s in scope.split(' ') {
            q.push(("scope", s.to_string()));
        }
    }
    assert!(realm.ends_with("/v2/auth"), "realm {realm}");
    let url = reqwest::Url::parse_with_params(&reg.berth.url("/v2/auth"), &q).expect("url");
    let mut req = bare().get(url);
    if let Some(b) = basic {
        req = req.header("Authorization", b);
    }
    let r = req.send().await.expect("token request");
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.expect("token json");
    v["token"].as_str().expect("token").to_string()
}

#[tokio::test]
async fn mount_challenge_asks_for_the_source_too_and_the_token_then_mounts() {
    let reg = Reg::start();
    let src = repo("mount-src");
    let dst = repo("mount-dst");
    let data = unique_bytes("mountable");
    let d = reg.push_blob(&src, &data).await;
    let path = format!("/v2/{dst}/blobs/uploads/?mount={d}&from={src}");

    let r = bare()
        .post(reg.berth.url(&path))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 401);
    let ch = r.headers()["www-authenticate"]
        .to_str()
        .expect("ascii")
        .to_string();
    let p = challenge_params(&ch);
    let scopes: Vec<&str> = param(&p, "scope").expect("scope").split(' ').collect();
    assert_eq!(
        scopes,
        [
            format!("repository:{dst}:pull,push"),
            format!("repository:{src}:pull")
        ],
        "{ch}"
    );

    // A token for the destination alone never asked about the source: asked for both.
    let narrow = token_for(
        &reg,
        &format!(
            "Bearer realm=\"x/v2/auth\",service=\"{}\",scope=\"repository:{dst}:pull,push\"",
            param(&p, "service").expect("service")
        ),
        Some(&crate::common::admin_basic()),
    )
    .await;
    let r = bare()
        .post(reg.berth.url(&path))
        .bearer_auth(&narrow)
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 401);
    let ch2 = r.headers()["www-authenticate"].to_str().expect("ascii");
    assert!(ch2.contains("error=\"insufficient_scope\""), "{ch2}");
    assert!(ch2.contains(&format!("repository:{src}:pull")), "{ch2}");

    // Following the challenge gives a token that mounts.
    let token = token_for(&reg, &ch, Some(&crate::common::admin_basic())).await;
    let r = bare()
        .post(reg.berth.url(&path))
        .bearer_auth(&token)
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 201, "mounted, not a fresh upload");
    assert_eq!(r.headers()["docker-content-digest"], d.as_str());
}

#[tokio::test]
async fn a_token_lacking_the_action_is_asked_to_get_the_scope_with_401() {
    let reg = Reg::start();
    let name = repo("scoped");
    reg.push_image(&name, "v1").await;
    let service = {
        let r = bare().get(reg.berth.url("/v2/")).send().await.expect("get");
        let ch = r.headers()["www-authenticate"]
            .to_str()
            .expect("ascii")
            .to_string();
        param(&challenge_params(&ch), "service")
            .expect("service")
            .to_string()
    };
    // A login token (no scope), as `podman login` leaves: the catalog asks for its scope.
    let login = token_for(
        &reg,
        &format!("Bearer realm=\"x/v2/auth\",service=\"{service}\""),
        Some(&crate::common::admin_basic()),
    )
    .await;
    let r = bare()
        .get(reg.berth.url("/v2/_catalog"))
        .bearer_auth(&login)
        .send()
        .await
        .expect("catalog");
    assert_eq!(r.status(), 401);
    let ch = r.headers()["www-authenticate"]
        .to_str()
        .expect("ascii")
        .to_string();
    assert!(ch.contains("error=\"insufficient_scope\""), "{ch}");
    assert!(ch.contains("scope=\"registry:catalog:*\""), "{ch}");
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["errors"][0]["code"], "UNAUTHORIZED");
    let catalog = token_for(&reg, &ch, Some(&crate::common::admin_basic())).await;
    let r = bare()
        .get(reg.berth.url("/v2/_catalog"))
        .bearer_auth(&catalog)
        .send()
        .await
        .expect("catalog");
    assert_eq!(r.status(), 200);

    // A token for another repository used to push here: 401, asking for this one.
    let other = token_for(
        &reg,
        &format!(
            "Bearer realm=\"x/v2/auth\",service=\"{service}\",scope=\"repository:{name}-other:pull\""
        ),
        Some(&crate::common::admin_basic()),
    )
    .await;
    let r = bare()
        .post(reg.berth.url(&format!("/v2/{name}/blobs/uploads/")))
        .bearer_auth(&other)
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 401);
    let ch = r.headers()["www-authenticate"].to_str().expect("ascii");
    assert!(ch.contains("error=\"insufficient_scope\""), "{ch}");
    assert!(
        ch.contains(&format!("scope=\"repository:{name}:pull,push\"")),
        "{ch}"
    );

    // A pull token of this repository used to push: 403 DENIED, with the same challenge, so a
    // client that fetches a new token only after a 403 (oras) asks for the push scope.
    let pull = token_for(
        &reg,
        &format!(
            "Bearer realm=\"x/v2/auth\",service=\"{service}\",scope=\"repository:{name}:pull\""
        ),
        Some(&crate::common::admin_basic()),
    )
    .await;
    let r = bare()
        .post(reg.berth.url(&format!("/v2/{name}/blobs/uploads/")))
        .bearer_auth(&pull)
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 403);
    let ch = r.headers()["www-authenticate"]
        .to_str()
        .expect("ascii")
        .to_string();
    assert!(ch.contains("error=\"insufficient_scope\""), "{ch}");
    assert!(
        ch.contains(&format!("scope=\"repository:{name}:pull,push\"")),
        "{ch}"
    );
    assert!(ch.contains("error_description=\"access denied"), "{ch}");
    // The message says what was refused; clients print `code: message`.
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["errors"][0]["code"], "DENIED", "{body}");
    let message = body["errors"][0]["message"].as_str().expect("message");
    assert!(
        message.contains("access denied") && message.contains(&name),
        "{message}"
    );
    assert!(body["errors"][0]["detail"].is_object(), "{body}");
    // Following the challenge gives a token that pushes.
    let push = token_for(&reg, &ch, Some(&crate::common::admin_basic())).await;
    let r = bare()
        .post(reg.berth.url(&format!("/v2/{name}/blobs/uploads/")))
        .bearer_auth(&push)
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 202);
}

/// One response read off a kept-alive connection: status, lower-cased headers.
async fn read_response(s: &mut tokio::net::TcpStream) -> (u16, Vec<(String, String)>) {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        let n = s.read(&mut byte).await.expect("read head");
        assert_eq!(n, 1, "connection closed before a response: {buf:?}");
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).to_string();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .expect("status");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await.expect("read body");
    (status, headers)
}

#[tokio::test]
async fn an_answer_before_the_body_keeps_the_connection_usable_or_says_close() {
    let reg = Reg::start();
    let host = reg.berth.url("").replace("http://", "");
    let host = host.trim_end_matches('/').to_string();
    for size in [64 * 1024, 1 << 20] {
        let mut s = tokio::net::TcpStream::connect(&host)
            .await
            .expect("connect");
        let body = vec![b'x'; size];
        let head = format!(
            "PATCH /v2/acme/app/blobs/uploads/nope HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/octet-stream\r\nContent-Length: {size}\r\n\r\n"
        );
        s.write_all(head.as_bytes()).await.expect("write head");
        s.write_all(&body).await.expect("write body");
        let (status, headers) = read_response(&mut s).await;
        assert_eq!(status, 401, "unauthenticated PATCH of {size} bytes");
        assert!(
            !headers
                .iter()
                .any(|(k, v)| k == "connection" && v.eq_ignore_ascii_case("close")),
            "a {size}-byte body is read and discarded, keeping the connection: {headers:?}"
        );
        // The same connection serves the next request.
        s.write_all(format!("GET /v2/ HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes())
            .await
            .expect("write second request");
        let (status, _) = read_response(&mut s).await;
        assert_eq!(status, 401, "second request on the kept-alive connection");
    }

    // A body too large to discard quickly: the answer says the connection closes.
    let size = 64 << 20;
    let mut s = tokio::net::TcpStream::connect(&host)
        .await
        .expect("connect");
    let head = format!(
        "PUT /v2/acme/app/blobs/uploads/nope?digest=sha256:{} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {size}\r\n\r\n",
        "0".repeat(64)
    );
    s.write_all(head.as_bytes()).await.expect("write head");
    let (mut rd, mut wr) = s.into_split();
    let writer = tokio::spawn(async move {
        let chunk = vec![b'y'; 1 << 20];
        for _ in 0..64 {
            if wr.write_all(&chunk).await.is_err() {
                break;
            }
        }
    });
    let mut buf = Vec::new();
    let _ =
        tokio::time::timeout(std::time::Duration::from_secs(30), rd.read_to_end(&mut buf)).await;
    let _ = writer.await;
    let text = String::from_utf8_lossy(&buf).to_ascii_lowercase();
    assert!(text.starts_with("http/1.1 401"), "{text}");
    assert!(text.contains("connection: close"), "{text}");
}
