//! The workloads. Each takes the registry's address and how its clients authenticate
//! ([`Access`]), and works against any registry that speaks the OCI Distribution API over plain
//! HTTP.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use hdrhistogram::Histogram;
use http::header::CONTENT_TYPE;
use http::{Method, StatusCode};
use tokio::task::JoinSet;

use crate::client::{Conn, OCTET, ReqBody, location, with_query};
use crate::data::{BigBlob, MANIFEST_ACCEPT, OCI_MANIFEST, SmallImage};
use crate::login::{self, Access, Challenge};
use crate::raw::{self, RawConn};

const MIB: f64 = 1024.0 * 1024.0;

/// How a client uploads a small blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UploadMode {
    /// What podman, skopeo, containerd and docker do: `POST` (empty), one `PATCH` with the
    /// whole body, `PUT <location>?digest=` with an empty body.
    Chunked,
    /// Monolithic, one request: `POST /blobs/uploads/?digest=` with the body answers 201.
    SinglePost,
    /// Monolithic where the registry ignores a body on POST (Distribution 2.8): `POST` then
    /// `PUT <location>?digest=` with the body.
    PostPut,
}

impl UploadMode {
    pub fn describe(self) -> &'static str {
        match self {
            UploadMode::Chunked => "POST+PATCH+PUT",
            UploadMode::SinglePost => "single POST",
            UploadMode::PostPut => "POST+PUT with body",
        }
    }
}

/// A new connection, logged in for `repos` as a fresh client is (see [`login::log_in`]).
pub async fn client(
    addr: SocketAddr,
    access: &Access,
    repos: &[&str],
    actions: &str,
) -> Result<Conn> {
    let mut conn = Conn::connect(addr).await?;
    login::log_in(&mut conn, access, repos, actions).await?;
    Ok(conn)
}

/// Uploads a large blob as one logged-in client (the login is not timed): `POST`, then the
/// body in `PATCH`es of `chunk` bytes each (`Content-Range: start-end`; `chunk` 0: one
/// `PATCH` with the whole body), then `PUT <location>?digest=` with an empty body. Returns
/// MiB/s over those requests.
pub async fn push_blob(
    addr: SocketAddr,
    access: &Access,
    repo: &str,
    blob: &BigBlob,
    chunk: u64,
) -> Result<f64> {
    let mut conn = client(addr, access, &[repo], "pull,push").await?;
    let chunk = if chunk == 0 { blob.size() } else { chunk };
    let start = Instant::now();
    let mut upload = open_upload(&mut conn, repo).await?;
    let mut at = 0;
    while at < blob.size() {
        let part = blob.range(at, chunk);
        let len = part.remaining();
        upload = patch_upload(&mut conn, &upload, at, len, ReqBody::Stream(part)).await?;
        at += len;
    }
    let hdrs = conn
        .expect(
            Method::PUT,
            &with_query(&upload, "digest", &blob.digest),
            &[],
            ReqBody::empty(),
            StatusCode::CREATED,
        )
        .await?;
    let elapsed = start.elapsed().as_secs_f64();
    if let Some(d) = hdrs.get("docker-content-digest")
        && d.as_bytes() != blob.digest.as_bytes()
    {
        bail!("server reported digest {d:?}, expected {}", blob.digest);
    }
    Ok(blob.size() as f64 / MIB / elapsed)
}

pub struct PullStats {
    pub mib_s: f64,
    /// Where a redirect sent the download (`host:port`), and how long the redirect took.
    pub redirect: Option<(String, Duration)>,
}

/// Downloads a blob and discards it, following redirects (as a client would: the clock
/// covers the redirect and the download from wherever it points; a redirect is followed without
/// `auth`). Returns MiB/s.
pub async fn pull_blob(
    addr: SocketAddr,
    auth: Option<&str>,
    repo: &str,
    digest: &str,
    size: u64,
) -> Result<PullStats> {
    let req = raw::get_request(addr, &format!("/v2/{repo}/blobs/{digest}"), &[], auth);
    let mut conn = RawConn::connect(addr, 1 << 20).await?;
    let start = Instant::now();
    let mut resp = conn.get(&req).await?;
    let mut redirect = None;
    let mut hops = 0;
    while let Some(loc) = resp.location.take() {
        hops += 1;
        if hops > 5 {
            bail!("more than 5 redirects");
        }
        let after = start.elapsed();
        let (connect, host, path) = match loc.strip_prefix('/') {
            Some(_) => (addr.to_string(), addr.to_string(), loc.clone()),
            None => split_url(&loc)?,
        };
        let target = tokio::net::lookup_host(&connect)
            .await
            .with_context(|| format!("resolving {connect}"))?
            .next()
            .with_context(|| format!("{connect} resolves to nothing"))?;
        let req = raw::get_request_host(&host, &path, &[]);
        let mut conn = RawConn::connect(target, 1 << 20).await?;
        resp = conn.get(&req).await?;
        redirect.get_or_insert((host, after));
    }
    let elapsed = start.elapsed().as_secs_f64();
    if resp.status != 200 {
        bail!("GET blob answered {}", resp.status);
    }
    if resp.body_len != size {
        bail!("pulled {} bytes, expected {size}", resp.body_len);
    }
    Ok(PullStats {
        mib_s: size as f64 / MIB / elapsed,
        redirect,
    })
}

/// Splits an absolute `http://` URL into (address to connect to, `Host` header value,
/// path-and-query). The `Host` is the URL's authority as written: a presigned URL's
/// signature covers it.
fn split_url(url: &str) -> Result<(String, String, String)> {
    let uri: http::Uri = url
        .parse()
        .with_context(|| format!("bad redirect Location {url:?}"))?;
    if uri.scheme_str() != Some("http") {
        bail!("redirect to {url:?}: only http:// is supported");
    }
    let auth = uri
        .authority()
        .with_context(|| format!("redirect Location {url:?} has no host"))?;
    let connect = format!("{}:{}", auth.host(), auth.port_u16().unwrap_or(80));
    let path = uri
        .path_and_query()
        .map_or("/".to_string(), |pq| pq.as_str().to_string());
    Ok((connect, auth.as_str().to_string(), path))
}

/// `POST /v2/<repo>/blobs/uploads/` with no body: a new upload session's location.
async fn open_upload(conn: &mut Conn, repo: &str) -> Result<String> {
    let hdrs = conn
        .expect(
            Method::POST,
            &format!("/v2/{repo}/blobs/uploads/"),
            &[],
            ReqBody::empty(),
            StatusCode::ACCEPTED,
        )
        .await?;
    location(&hdrs)
}

/// One `PATCH` of `len` bytes at `at` (`Content-Range: at-end`) to `upload`: the location the
/// next request goes to.
async fn patch_upload(
    conn: &mut Conn,
    upload: &str,
    at: u64,
    len: u64,
    body: ReqBody,
) -> Result<String> {
    let range = format!("{at}-{}", (at + len).saturating_sub(1));
    let hdrs = conn
        .expect(
            Method::PATCH,
            upload,
            &[
                OCTET,
                (http::HeaderName::from_static("content-range"), &range),
            ],
            body,
            StatusCode::ACCEPTED,
        )
        .await
        .with_context(|| format!("PATCH of bytes {range}"))?;
    location(&hdrs)
}

/// Uploads one small blob according to `mode`.
async fn upload_small(
    conn: &mut Conn,
    repo: &str,
    digest: &str,
    data: &Bytes,
    mode: UploadMode,
) -> Result<()> {
    match mode {
        UploadMode::Chunked => {
            let upload = open_upload(conn, repo).await?;
            let len = data.len() as u64;
            let upload = patch_upload(conn, &upload, 0, len, ReqBody::bytes(data.clone())).await?;
            conn.expect(
                Method::PUT,
                &with_query(&upload, "digest", digest),
                &[],
                ReqBody::empty(),
                StatusCode::CREATED,
            )
            .await?;
        }
        UploadMode::SinglePost => {
            conn.expect(
                Method::POST,
                &format!("/v2/{repo}/blobs/uploads/?digest={digest}"),
                &[OCTET],
                ReqBody::bytes(data.clone()),
                StatusCode::CREATED,
            )
            .await?;
        }
        UploadMode::PostPut => {
            let upload = open_upload(conn, repo).await?;
            conn.expect(
                Method::PUT,
                &with_query(&upload, "digest", digest),
                &[OCTET],
                ReqBody::bytes(data.clone()),
                StatusCode::CREATED,
            )
            .await?;
        }
    }
    Ok(())
}

pub const PROBE_REPO: &str = "bench/probe";

/// Finds out the registry's monolithic upload: whether it completes a `POST ?digest=` with a
/// body itself ([`UploadMode::SinglePost`]) or needs the `PUT` ([`UploadMode::PostPut`]).
pub async fn detect_upload_mode(addr: SocketAddr, access: &Access) -> Result<UploadMode> {
    let mut conn = client(addr, access, &[PROBE_REPO], "pull,push").await?;
    let data = Bytes::from(format!("berth-bench probe {:?}", Instant::now()).into_bytes());
    let digest = crate::data::sha256_digest(&data);
    let (status, hdrs, body) = conn
        .call(
            Method::POST,
            &format!("/v2/{PROBE_REPO}/blobs/uploads/?digest={digest}"),
            &[OCTET],
            ReqBody::bytes(data.clone()),
        )
        .await?;
    match status {
        StatusCode::CREATED => Ok(UploadMode::SinglePost),
        StatusCode::ACCEPTED => {
            // Finish the session so the probe leaves no dangling upload behind.
            let upload = location(&hdrs)?;
            conn.expect(
                Method::PUT,
                &with_query(&upload, "digest", &digest),
                &[OCTET],
                ReqBody::bytes(data),
                StatusCode::CREATED,
            )
            .await?;
            Ok(UploadMode::PostPut)
        }
        other => bail!(
            "POST ?digest= probe answered {other}: {}",
            String::from_utf8_lossy(&body[..body.len().min(400)])
        ),
    }
}

/// Pushes all blobs of an image, then its manifest.
pub async fn push_image(conn: &mut Conn, image: &SmallImage, mode: UploadMode) -> Result<()> {
    for blob in &image.blobs {
        upload_small(conn, &image.repo, &blob.digest, &blob.data, mode)
            .await
            .with_context(|| format!("uploading {} to {}", blob.digest, image.repo))?;
    }
    conn.expect(
        Method::PUT,
        &format!("/v2/{}/manifests/{}", image.repo, image.tag),
        &[(CONTENT_TYPE, OCI_MANIFEST)],
        ReqBody::bytes(image.manifest.clone()),
        StatusCode::CREATED,
    )
    .await
    .with_context(|| format!("putting manifest {}:{}", image.repo, image.tag))?;
    Ok(())
}

pub struct ManifestStats {
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub requests: u64,
    pub errors: u64,
}

/// `connections` keep-alive connections GET the manifest as fast as they can for `duration`,
/// each request carrying `auth`.
pub async fn manifest_get(
    addr: SocketAddr,
    auth: Option<&str>,
    repo: &str,
    tag: &str,
    connections: usize,
    duration: Duration,
) -> Result<ManifestStats> {
    let req: Arc<[u8]> = Arc::from(raw::get_request(
        addr,
        &format!("/v2/{repo}/manifests/{tag}"),
        &[("Accept", MANIFEST_ACCEPT)],
        auth,
    ));
    // Open every connection and do one request on it before the clock starts.
    let mut conns = Vec::with_capacity(connections);
    for _ in 0..connections {
        let mut conn = RawConn::connect(addr, 64 << 10).await?;
        let resp = conn.get(&req).await?;
        if resp.status != 200 || resp.body_len == 0 {
            bail!(
                "warm-up manifest GET answered {} ({} bytes)",
                resp.status,
                resp.body_len
            );
        }
        conns.push(conn);
    }
    let start = Instant::now();
    let end = start + duration;
    let mut tasks = JoinSet::new();
    for mut conn in conns {
        let req = req.clone();
        tasks.spawn(async move {
            let mut hist = Histogram::<u64>::new_with_bounds(1, 120_000_000, 3)?;
            let mut errors = 0u64;
            let mut last_error = None;
            loop {
                let t0 = Instant::now();
                if t0 >= end {
                    break;
                }
                match conn.get(&req).await {
                    Ok(resp) if resp.status == 200 && resp.body_len > 0 => {
                        let us = t0.elapsed().as_micros();
                        hist.saturating_record(u64::try_from(us).unwrap_or(u64::MAX));
                    }
                    Ok(resp) => {
                        errors += 1;
                        last_error = Some(format!("status {}", resp.status));
                    }
                    Err(e) => {
                        errors += 1;
                        last_error = Some(format!("{e:#}"));
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            anyhow::Ok((hist, errors, last_error, Instant::now()))
        });
    }
    let mut hist = Histogram::<u64>::new_with_bounds(1, 120_000_000, 3)?;
    let mut errors = 0;
    let mut last_error = None;
    let mut finished = start;
    while let Some(task) = tasks.join_next().await {
        let (h, e, le, t) = task??;
        hist.add(&h)?;
        errors += e;
        last_error = le.or(last_error);
        finished = finished.max(t);
    }
    let requests = hist.len();
    if errors > 0 {
        eprintln!(
            "    warning: {errors} failed manifest GETs (last: {})",
            last_error.unwrap_or_default()
        );
    }
    if errors * 100 > requests + errors {
        bail!(
            "more than 1% of manifest GETs failed ({errors} of {})",
            requests + errors
        );
    }
    let elapsed = (finished - start).as_secs_f64();
    Ok(ManifestStats {
        rps: requests as f64 / elapsed,
        p50_ms: hist.value_at_quantile(0.50) as f64 / 1000.0,
        p99_ms: hist.value_at_quantile(0.99) as f64 / 1000.0,
        requests,
        errors,
    })
}

/// Pushes all `images` with `concurrency` workers, each on its own keep-alive connection. With
/// [`Access::Login`] every image is one client session, as one `podman push` is: the worker
/// logs in from scratch for that image's repository (`GET /v2/`, then its credential check)
/// before pushing it. Returns images/s.
pub async fn push_images(
    addr: SocketAddr,
    access: &Access,
    images: Arc<Vec<SmallImage>>,
    concurrency: usize,
    mode: UploadMode,
) -> Result<f64> {
    let mut conns = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let mut conn = Conn::connect(addr).await?;
        if let Access::Shared(v) = access {
            conn.auth = v.clone();
        }
        conns.push(conn);
    }
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = JoinSet::new();
    for mut conn in conns {
        let images = images.clone();
        let next = next.clone();
        let access = access.clone();
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(image) = images.get(i) else {
                    break;
                };
                if access.is_login() {
                    login::log_in(&mut conn, &access, &[image.repo.as_str()], "pull,push").await?;
                }
                push_image(&mut conn, image, mode).await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(task) = tasks.join_next().await {
        task??;
    }
    let elapsed = start.elapsed().as_secs_f64();
    Ok(images.len() as f64 / elapsed)
}

pub struct BurstStats {
    pub images_s: f64,
    pub p50_ms: f64,
    pub max_ms: f64,
    pub wall_s: f64,
}

/// The CI burst: one fresh client per image, all started at once, as `podman push` from as
/// many CI jobs. Each opens its own connection, logs in from scratch (with
/// [`Access::Login`]), pushes its image (`mode`) and is done. Returns images / wall time and
/// the per-client times (connect to manifest PUT).
pub async fn ci_burst(
    addr: SocketAddr,
    access: &Access,
    images: Arc<Vec<SmallImage>>,
    mode: UploadMode,
) -> Result<BurstStats> {
    let start = Instant::now();
    let mut tasks = JoinSet::new();
    for i in 0..images.len() {
        let images = images.clone();
        let access = access.clone();
        tasks.spawn(async move {
            let t0 = Instant::now();
            let image = images
                .get(i)
                .ok_or_else(|| anyhow::anyhow!("no image {i}"))?;
            let mut conn = client(addr, &access, &[image.repo.as_str()], "pull,push").await?;
            push_image(&mut conn, image, mode).await?;
            anyhow::Ok(t0.elapsed())
        });
    }
    let mut times = Vec::with_capacity(images.len());
    while let Some(task) = tasks.join_next().await {
        times.push(task??.as_secs_f64() * 1000.0);
    }
    let wall_s = start.elapsed().as_secs_f64();
    times.sort_by(f64::total_cmp);
    Ok(BurstStats {
        images_s: images.len() as f64 / wall_s,
        p50_ms: times.get(times.len() / 2).copied().unwrap_or(f64::NAN),
        max_ms: times.last().copied().unwrap_or(f64::NAN),
        wall_s,
    })
}

pub struct LoginStats {
    pub rate: f64,
    pub p50_ms: f64,
    pub max_ms: f64,
    pub logins: u64,
}

pub const LOGIN_REPO: &str = "bench/login";

/// Repeated logins with the same credentials: `clients` keep-alive connections each ping
/// `/v2/` once (not timed), then repeat the credential check until `duration` is over (Berth:
/// `GET /v2/auth?service=…&scope=repository:bench/login:pull,push` with Basic; Distribution:
/// `GET /v2/` with Basic). Returns logins/s and latency.
pub async fn logins(
    addr: SocketAddr,
    user: &str,
    password: &str,
    clients: usize,
    duration: Duration,
) -> Result<LoginStats> {
    let mut conns = Vec::with_capacity(clients);
    let mut path = String::new();
    let mut challenge = Challenge::None;
    for _ in 0..clients {
        let mut conn = Conn::connect(addr).await?;
        challenge = login::ping(&mut conn).await?;
        if let Challenge::Bearer { realm, service } = &challenge {
            path = login::token_path(realm, service.as_deref(), &[LOGIN_REPO], "pull,push");
        }
        conns.push(conn);
    }
    let (path, challenge) = (Arc::new(path), Arc::new(challenge));
    let start = Instant::now();
    let end = start + duration;
    let mut tasks = JoinSet::new();
    for mut conn in conns {
        let (path, challenge) = (path.clone(), challenge.clone());
        let (user, password) = (user.to_string(), password.to_string());
        tasks.spawn(async move {
            let mut hist = Histogram::<u64>::new_with_bounds(1, 120_000_000, 3)?;
            // At least one login per client, however long the first takes.
            loop {
                let t0 = Instant::now();
                login::check(&mut conn, &challenge, &path, &user, &password).await?;
                let us = t0.elapsed().as_micros();
                hist.saturating_record(u64::try_from(us).unwrap_or(u64::MAX));
                if Instant::now() >= end {
                    break;
                }
            }
            anyhow::Ok((hist, Instant::now()))
        });
    }
    let mut hist = Histogram::<u64>::new_with_bounds(1, 120_000_000, 3)?;
    let mut finished = start;
    while let Some(task) = tasks.join_next().await {
        let (h, t) = task??;
        hist.add(&h)?;
        finished = finished.max(t);
    }
    let elapsed = (finished - start).as_secs_f64();
    Ok(LoginStats {
        rate: hist.len() as f64 / elapsed,
        p50_ms: hist.value_at_quantile(0.50) as f64 / 1000.0,
        max_ms: hist.max() as f64 / 1000.0,
        logins: hist.len(),
    })
}

/// Creates the robot `admin+<name>` through Berth's API (`PUT /api/v1/user/robots/<name>`,
/// Basic credentials). Returns its user name and token.
pub async fn create_robot(addr: SocketAddr, name: &str) -> Result<(String, String)> {
    let mut conn = Conn::connect(addr).await?;
    conn.auth = Some(login::basic(login::USER, crate::server::BENCH_PASSWORD));
    let (status, _, body) = conn
        .call(
            Method::PUT,
            &format!("/api/v1/user/robots/{name}"),
            &[(CONTENT_TYPE, "application/json")],
            ReqBody::bytes(Bytes::from_static(b"{}")),
        )
        .await?;
    if !matches!(status, StatusCode::OK | StatusCode::CREATED) {
        bail!(
            "creating robot {name} answered {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(400)])
        );
    }
    let v: serde_json::Value = serde_json::from_slice(&body).context("robot answer")?;
    let user = v["name"]
        .as_str()
        .context("no name in the robot answer")?
        .to_string();
    let token = v["token"]
        .as_str()
        .context("no token in the robot answer")?
        .to_string();
    Ok((user, token))
}

/// Deletes every image by its manifest digest (with [`Access::Login`], logged in once per
/// repository, with `delete`). Returns how many.
pub async fn delete_images(
    addr: SocketAddr,
    access: &Access,
    images: &[&SmallImage],
) -> Result<usize> {
    let mut by_repo: std::collections::BTreeMap<&str, Vec<&SmallImage>> = Default::default();
    for image in images {
        by_repo.entry(&image.repo).or_default().push(image);
    }
    let mut conn = Conn::connect(addr).await?;
    for (repo, images) in by_repo {
        login::log_in(&mut conn, access, &[repo], "pull,push,delete").await?;
        for image in images {
            let digest = crate::data::sha256_digest(&image.manifest);
            conn.expect(
                Method::DELETE,
                &format!("/v2/{repo}/manifests/{digest}"),
                &[],
                ReqBody::empty(),
                StatusCode::ACCEPTED,
            )
            .await
            .with_context(|| format!("deleting {repo}@{digest}"))?;
        }
    }
    Ok(images.len())
}

/// One garbage-collection pass of Berth through its API (`POST /api/v1/superuser/gc`, which
/// takes Basic credentials). Returns the number of blobs it deleted.
pub async fn berth_gc(addr: SocketAddr) -> Result<usize> {
    let mut conn = Conn::connect(addr).await?;
    conn.auth = Some(login::basic(login::USER, crate::server::BENCH_PASSWORD));
    let (status, _, body) = conn
        .call(Method::POST, "/api/v1/superuser/gc", &[], ReqBody::empty())
        .await?;
    if status != StatusCode::OK {
        bail!("POST /api/v1/superuser/gc answered {status}");
    }
    let v: serde_json::Value = serde_json::from_slice(&body)?;
    Ok(v["blobs_deleted"].as_u64().unwrap_or(0) as usize)
}
