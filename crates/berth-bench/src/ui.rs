//! The UI column: a repository's Tags tab at a few sizes (10 and 100,000 tags by default),
//! time to first byte and to the whole page, beside the same tags read the way Quay's UI reads
//! them, through the REST API 100 at a time (`GET /api/v1/repository/{repo}/tag/?page=N`).
//! Berth only: the peer registry has no UI.

use crate::client::{Conn, ReqBody};
use crate::data::sha256_digest;
use crate::server::{BENCH_PASSWORD, Kind, Server, StartOptions};
use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http::{Method, StatusCode, header};
use http_body_util::BodyExt;
use std::time::{Duration, Instant};

/// One size's figures, in milliseconds (medians).
pub struct UiFigures {
    pub tags: usize,
    pub first_ttfb: f64,
    pub first_full: f64,
    /// A page in the middle of the listing, reached by its cursor.
    pub middle_full: f64,
    pub api_first_page: f64,
    /// Every tag, 100 per call, as Quay's UI does.
    pub api_all: f64,
    pub api_calls: usize,
}

fn basic() -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("admin:{BENCH_PASSWORD}"))
    )
}

/// Pushes `n` tags `t000000…` of one small image into `repo`, `conns` at a time.
async fn seed(addr: std::net::SocketAddr, repo: &str, n: usize, conns: usize) -> Result<()> {
    let auth = basic();
    let mut c = Conn::connect(addr).await?;
    let config = Bytes::from_static(
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#,
    );
    let layer = Bytes::from(format!("the one layer of {repo}").into_bytes());
    for blob in [&config, &layer] {
        let d = sha256_digest(blob);
        c.expect(
            Method::POST,
            &format!("/v2/{repo}/blobs/uploads/?digest={d}"),
            &[(header::AUTHORIZATION, &auth), crate::client::OCTET],
            ReqBody::bytes(blob.clone()),
            StatusCode::CREATED,
        )
        .await?;
    }
    let manifest = Bytes::from(serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": sha256_digest(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": sha256_digest(&layer), "size": layer.len()}],
    }))?);
    let mut tasks = Vec::new();
    for k in 0..conns {
        let (repo, auth, manifest) = (repo.to_string(), auth.clone(), manifest.clone());
        tasks.push(tokio::spawn(async move {
            let mut c = Conn::connect(addr).await?;
            let mut i = k;
            while i < n {
                c.expect(
                    Method::PUT,
                    &format!("/v2/{repo}/manifests/t{i:06}"),
                    &[
                        (header::AUTHORIZATION, &auth),
                        (
                            header::CONTENT_TYPE,
                            "application/vnd.oci.image.manifest.v1+json",
                        ),
                    ],
                    ReqBody::bytes(manifest.clone()),
                    StatusCode::CREATED,
                )
                .await?;
                i += conns;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

/// Signs in through the form, as a browser does; answers the `Cookie` header to send.
async fn sign_in(c: &mut Conn, origin: &str) -> Result<String> {
    let (status, headers, body) = c
        .call(Method::GET, "/signin", &[], ReqBody::empty())
        .await?;
    if status != StatusCode::OK {
        bail!("GET /signin: {status}");
    }
    let cookies = |h: &http::HeaderMap| -> Vec<String> {
        h.get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next().map(str::to_string))
            .collect()
    };
    let pre = cookies(&headers).join("; ");
    let page = String::from_utf8_lossy(&body);
    let key = r#"name="csrf" value=""#;
    let at = page.find(key).context("no csrf field on /signin")? + key.len();
    let csrf = &page[at..at + page[at..].find('"').context("csrf value")?];
    let form = form_urlencoded::Serializer::new(String::new())
        .append_pair("csrf", csrf)
        .append_pair("username", "admin")
        .append_pair("password", BENCH_PASSWORD)
        .finish();
    let (status, headers, _) = c
        .call(
            Method::POST,
            "/signin",
            &[
                (header::COOKIE, &pre),
                (header::ORIGIN, origin),
                (header::CONTENT_TYPE, "application/x-www-form-urlencoded"),
            ],
            ReqBody::bytes(Bytes::from(form)),
        )
        .await?;
    if status != StatusCode::SEE_OTHER {
        bail!("POST /signin: {status}");
    }
    let session = cookies(&headers)
        .into_iter()
        .find(|c| c.starts_with("berth_session="))
        .context("no session cookie")?;
    Ok(format!("{pre}; {session}"))
}

/// Time to the response's headers and to its last byte, in ms; and the body.
async fn timed(c: &mut Conn, path: &str, cookie: &str) -> Result<(f64, f64, Bytes)> {
    let t = Instant::now();
    let resp = c
        .send(
            Method::GET,
            path,
            &[(header::COOKIE, cookie)],
            ReqBody::empty(),
        )
        .await?;
    let ttfb = t.elapsed();
    let status = resp.status();
    let body = resp.into_body().collect().await?.to_bytes();
    let full = t.elapsed();
    if status != StatusCode::OK {
        bail!("GET {path}: {status}");
    }
    Ok((ms(ttfb), ms(full), body))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Starts a Berth, seeds a repository per size, and measures each.
pub async fn run(opts: &StartOptions<'_>, sizes: &[usize]) -> Result<Vec<UiFigures>> {
    let s = Server::start(Kind::Berth, opts, &[], None).await?;
    // Cookies and Basic credentials only: no registry token on these requests.
    let origin = format!("http://{}", s.addr);
    let mut out = Vec::new();
    let mut c = Conn::connect(s.addr).await?;
    let cookie = sign_in(&mut c, &origin).await?;
    for &n in sizes {
        let repo = format!("bench/ui-{n}");
        let t = Instant::now();
        seed(s.addr, &repo, n, 8).await?;
        eprintln!(
            "  ui           seeded {n} tags in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        let tab = format!("/repository/{repo}?tab=tags");
        let middle = format!("{tab}&after=t{:06}", n / 2);
        let api = format!("/api/v1/repository/{repo}/tag/?onlyActiveTags=true&limit=100");
        let (mut ttfb, mut full, mut mid, mut api1, mut all) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut calls = 0;
        // Warm-up, then medians of 5 (the whole-listing read: of 3).
        timed(&mut c, &tab, &cookie).await?;
        for i in 0..5 {
            let (a, b, page) = timed(&mut c, &tab, &cookie).await?;
            if i == 0 && !String::from_utf8_lossy(&page).contains(&format!("{n} tags")) {
                bail!("the Tags tab of {repo} does not say {n} tags");
            }
            ttfb.push(a);
            full.push(b);
            mid.push(timed(&mut c, &middle, &cookie).await?.1);
            api1.push(timed(&mut c, &format!("{api}&page=1"), &cookie).await?.1);
            if i < 3 {
                let t = Instant::now();
                let mut page = 1;
                calls = 0;
                loop {
                    let (_, _, body) =
                        timed(&mut c, &format!("{api}&page={page}"), &cookie).await?;
                    calls += 1;
                    let v: serde_json::Value = serde_json::from_slice(&body)?;
                    if v["has_additional"].as_bool() != Some(true) {
                        break;
                    }
                    page += 1;
                }
                all.push(ms(t.elapsed()));
            }
        }
        out.push(UiFigures {
            tags: n,
            first_ttfb: median(ttfb),
            first_full: median(full),
            middle_full: median(mid),
            api_first_page: median(api1),
            api_all: median(all),
            api_calls: calls,
        });
    }
    Ok(out)
}

/// The UI table.
pub fn print(figures: &[UiFigures]) {
    if figures.is_empty() {
        return;
    }
    println!();
    println!("UI: a repository's Tags tab (Berth on SQLite; ms, medians)");
    let mut head = format!("{:<52}", "");
    for f in figures {
        head.push_str(&format!("{:>22}", format!("{} tags", f.tags)));
    }
    println!("{head}");
    let row = |label: &str, v: &dyn Fn(&UiFigures) -> String| {
        let mut line = format!("{label:<52}");
        for f in figures {
            line.push_str(&format!("{:>22}", v(f)));
        }
        println!("{line}");
    };
    row("Tags tab, first page: first byte", &|f| {
        format!("{:.1}", f.first_ttfb)
    });
    row("Tags tab, first page: whole page", &|f| {
        format!("{:.1}", f.first_full)
    });
    row("Tags tab, a page in the middle (by cursor)", &|f| {
        format!("{:.1}", f.middle_full)
    });
    row("Quay's API shape: first 100 tags", &|f| {
        format!("{:.1}", f.api_first_page)
    });
    row("Quay's API shape: every tag, 100 per call", &|f| {
        format!("{:.0} ({} calls)", f.api_all, f.api_calls)
    });
}
