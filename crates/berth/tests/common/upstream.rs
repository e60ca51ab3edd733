//! Upstreams for pull-through cache and mirroring tests: a CNCF Distribution registry
//! (`docker-registry`) on 127.0.0.1, and [`FaultProxy`], a reverse proxy put between Berth and an
//! upstream that a blocking test switches at run time to fail (refuse, 5xx, 429) or to stream
//! blobs slowly, and that records what it saw so the test can tell what reached the upstream and
//! when a body had been relayed in full.

use super::client::{MT, sha};
use super::free_port;
use axum::body::Body;
use bytes::Bytes;
use hyper::body::{Body as _, Frame, Incoming, SizeHint};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode, Uri, Version};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::json;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// The account of [`Distribution::start`]'s htpasswd file.
pub const UP_USER: &str = "mirror-reader";
pub const UP_PASSWORD: &str = "upstream-secret-pw";

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// A CNCF Distribution registry on 127.0.0.1 (filesystem storage, deletes enabled); killed when
/// dropped.
pub struct Distribution {
    /// `127.0.0.1:PORT`
    pub host: String,
    auth: bool,
    config: PathBuf,
    child: Option<Child>,
    _dir: tempfile::TempDir,
}

impl Distribution {
    /// With htpasswd Basic auth for [`UP_USER`]; `None` when `docker-registry` is not installed.
    pub fn start() -> Option<Distribution> {
        Distribution::start_with(true)
    }

    /// Without auth: anyone may pull and push.
    pub fn start_open() -> Option<Distribution> {
        Distribution::start_with(false)
    }

    fn start_with(auth: bool) -> Option<Distribution> {
        if Command::new("docker-registry")
            .arg("--version")
            .output()
            .is_err()
        {
            eprintln!("docker-registry is not installed (./scripts/test.sh installs it); skipping");
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("data").display(),
        );
        if auth {
            let hash = bcrypt::hash(UP_PASSWORD, 5).expect("bcrypt");
            let htpasswd = dir.path().join("htpasswd");
            std::fs::write(&htpasswd, format!("{UP_USER}:{hash}\n")).expect("htpasswd");
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: test\n    path: {}\n",
                htpasswd.display()
            ));
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).expect("config");
        let mut d = Distribution {
            host: format!("127.0.0.1:{port}"),
            auth,
            config: config_path,
            child: None,
            _dir: dir,
        };
        d.spawn();
        Some(d)
    }

    fn spawn(&mut self) {
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start docker-registry");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&self.host).is_err() {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("docker-registry exited early with {status}");
            }
            assert!(Instant::now() < deadline, "docker-registry did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the process (an upstream that went away); [`Distribution::restart`] brings it back.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kills and starts again on the same port and data directory.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.host)
    }

    /// A request with the upstream credentials when this registry has auth.
    pub fn req(&self, method: &str, url: &str) -> reqwest::blocking::RequestBuilder {
        let r = reqwest::blocking::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client")
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).expect("method"),
                url,
            );
        if self.auth {
            r.basic_auth(UP_USER, Some(UP_PASSWORD))
        } else {
            r
        }
    }

    /// The digest a tag points at upstream (None: no such tag).
    pub fn digest(&self, repo: &str, tag: &str) -> Option<String> {
        let r = self
            .req("HEAD", &self.url(&format!("/v2/{repo}/manifests/{tag}")))
            .header("Accept", format!("{OCI_INDEX}, {MT}"))
            .send()
            .expect("HEAD upstream");
        (r.status() == 200).then(|| {
            r.headers()["docker-content-digest"]
                .to_str()
                .expect("digest")
                .to_string()
        })
    }

    pub fn delete(&self, repo: &str, digest: &str) {
        let r = self
            .req(
                "DELETE",
                &self.url(&format!("/v2/{repo}/manifests/{digest}")),
            )
            .send()
            .expect("DELETE upstream");
        assert_eq!(r.status(), 202, "delete {digest}");
    }

    /// Uploads a blob: POST opens a session, one PUT `?digest=` carries the bytes (Distribution
    /// 2.8 ignores a POST's `?digest=` and body). Returns its digest.
    pub fn push_blob(&self, repo: &str, data: &[u8]) -> String {
        let d = sha(data);
        let r = self
            .req("POST", &self.url(&format!("/v2/{repo}/blobs/uploads/")))
            .send()
            .expect("POST upload");
        assert_eq!(r.status(), 202, "open upload in {repo}");
        let loc = r.headers()["location"].to_str().expect("location");
        let loc = if loc.starts_with('/') {
            self.url(loc)
        } else {
            loc.to_string()
        };
        let sep = if loc.contains('?') { '&' } else { '?' };
        let r = self
            .req("PUT", &format!("{loc}{sep}digest={d}"))
            .body(data.to_vec())
            .send()
            .expect("PUT upload");
        assert_eq!(r.status(), 201, "upload {d} to {repo}");
        d
    }

    /// Pushes an image manifest over a fresh config and `layers`; its digest and blob digests
    /// (config first).
    pub fn push_image(&self, repo: &str, tag: &str, layers: &[&[u8]]) -> (String, Vec<String>) {
        let config = serde_json::to_vec(&json!({
            "architecture": "amd64", "os": "linux", "config": {"Labels": {"tag": tag}},
            "rootfs": {"type": "layers", "diff_ids": []},
        }))
        .expect("json");
        let mut blobs = vec![self.push_blob(repo, &config)];
        let mut descs = Vec::new();
        for l in layers {
            let d = self.push_blob(repo, l);
            descs.push(json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": l.len()}));
            blobs.push(d);
        }
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": MT,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": blobs[0], "size": config.len()},
            "layers": descs,
        }))
        .expect("json");
        let r = self
            .req("PUT", &self.url(&format!("/v2/{repo}/manifests/{tag}")))
            .header("Content-Type", MT)
            .body(manifest.clone())
            .send()
            .expect("PUT manifest");
        assert_eq!(r.status(), 201, "push {repo}:{tag}");
        (sha(&manifest), blobs)
    }
}

impl Drop for Distribution {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What [`FaultProxy`] does with a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Forward to the target.
    Pass,
    /// Read the request, then close the connection without an answer.
    Down,
    /// Answer this status with an OCI `{"errors":[…]}` body, without asking the target.
    Status(u16),
    /// Answer 429 with `Retry-After` and a `TOOMANYREQUESTS` body.
    TooMany { retry_after_s: u64 },
}

/// At most this many requests and events are kept (a runaway client cannot exhaust memory).
const LOG_CAP: usize = 200_000;
/// Throttled blob bodies go out in pieces of at most this size.
const THROTTLE_CHUNK: usize = 16 * 1024;

#[derive(Default)]
struct Log {
    /// `(method, path and query)` of every request received.
    requests: Vec<(String, String)>,
    events: Vec<(Instant, String)>,
    finished_blob_bodies: usize,
}

struct State {
    target: String,
    host: String,
    /// The mode for every request, and path-specific ones (last set wins).
    modes: Mutex<(Mode, Vec<(String, Mode)>)>,
    /// Bytes per second for `/blobs/` answers; 0 is unthrottled.
    throttle: AtomicU64,
    log: Mutex<Log>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl State {
    fn event(&self, what: String) {
        let mut log = lock(&self.log);
        if log.events.len() < LOG_CAP {
            log.events.push((Instant::now(), what));
        }
    }

    fn mode_for(&self, path: &str) -> Mode {
        let modes = lock(&self.modes);
        modes
            .1
            .iter()
            .rev()
            .find(|(p, _)| path.contains(p.as_str()))
            .map_or(modes.0, |(_, m)| *m)
    }

    /// The target's own base URL in a header becomes the proxy's, so that clients following a
    /// `Location` or a token realm keep going through the proxy.
    fn rewrite(&self, headers: &mut HeaderMap) {
        let from = format!("http://{}", self.target);
        let to = format!("http://{}", self.host);
        for name in [
            header::LOCATION,
            header::CONTENT_LOCATION,
            header::WWW_AUTHENTICATE,
        ] {
            let values: Vec<HeaderValue> = headers.get_all(&name).iter().cloned().collect();
            if !values
                .iter()
                .any(|v| v.to_str().is_ok_and(|s| s.contains(&from)))
            {
                continue;
            }
            headers.remove(&name);
            for v in values {
                let v = match v.to_str() {
                    Ok(s) if s.contains(&from) => {
                        HeaderValue::from_str(&s.replace(&from, &to)).unwrap_or(v)
                    }
                    _ => v,
                };
                headers.append(&name, v);
            }
        }
    }
}

/// Connection-level headers, which belong to one hop and are not forwarded (RFC 9110 §7.6.1).
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    for name in [
        header::CONNECTION,
        HeaderName::from_static("keep-alive"),
        HeaderName::from_static("proxy-connection"),
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
    ] {
        headers.remove(name);
    }
}

/// An HTTP reverse proxy on 127.0.0.1 in front of `target`, with its own runtime on a background
/// thread. It forwards method, path and query, headers (`Host` included, as a TCP middlebox
/// would, so the upstream builds its URLs for the proxy) and bodies, streamed both ways. Set a
/// [`Mode`] to inject faults and [`FaultProxy::throttle_blobs`] to slow blob answers; read what
/// happened with [`FaultProxy::count`] and [`FaultProxy::events`]. When the target cannot be
/// reached the client's connection is closed, as if it had talked to the dead target itself.
/// Dropping it stops everything it started.
pub struct FaultProxy {
    /// `127.0.0.1:PORT`
    pub host: String,
    state: Arc<State>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FaultProxy {
    /// Starts in [`Mode::Pass`], unthrottled, in front of `target` (`host:port`, plain HTTP).
    pub fn start(target: &str) -> FaultProxy {
        let target = target.trim_start_matches("http://").trim_end_matches('/');
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).expect("nonblocking");
        let host = format!("127.0.0.1:{}", listener.local_addr().expect("addr").port());
        let state = Arc::new(State {
            target: target.to_string(),
            host: host.clone(),
            modes: Mutex::new((Mode::Pass, Vec::new())),
            throttle: AtomicU64::new(0),
            log: Mutex::new(Log::default()),
        });
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("fault-proxy")
            .enable_all()
            .build()
            .expect("proxy runtime");
        let (tx, rx) = tokio::sync::oneshot::channel();
        let st = state.clone();
        let thread = std::thread::spawn(move || {
            rt.block_on(serve(listener, st, rx));
            // Connections still open (a throttled body, an idle keep-alive) end here.
            rt.shutdown_timeout(Duration::from_secs(2));
        });
        FaultProxy {
            host,
            state,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.host)
    }

    /// The mode of every request; forgets modes set by [`FaultProxy::set_mode_for`].
    pub fn set_mode(&self, m: Mode) {
        *lock(&self.state.modes) = (m, Vec::new());
    }

    /// The mode of requests whose path and query contain `path_contains` (e.g. `/blobs/`,
    /// `/manifests/`); the latest matching setting wins over the mode of every request.
    pub fn set_mode_for(&self, path_contains: &str, m: Mode) {
        let mut modes = lock(&self.state.modes);
        modes.1.retain(|(p, _)| p != path_contains);
        modes.1.push((path_contains.to_string(), m));
    }

    /// Streams answers to `/blobs/` paths at about this rate, in pieces of at most 16 KiB (the
    /// first at once); `None` (or `Some(0)`) relays them as fast as they come. Applies from the
    /// next piece.
    pub fn throttle_blobs(&self, bytes_per_sec: Option<u64>) {
        self.state
            .throttle
            .store(bytes_per_sec.unwrap_or(0), Ordering::SeqCst);
    }

    /// How many requests whose path and query contain `path_contains` were received, in any
    /// mode; `method` is matched case-insensitively, and `""` matches every method.
    pub fn count(&self, path_contains: &str, method: &str) -> usize {
        lock(&self.state.log)
            .requests
            .iter()
            .filter(|(m, p)| {
                (method.is_empty() || m.eq_ignore_ascii_case(method)) && p.contains(path_contains)
            })
            .count()
    }

    /// How many GET answers on `/blobs/` paths were relayed to their end.
    pub fn finished_blob_bodies(&self) -> usize {
        lock(&self.state.log).finished_blob_bodies
    }

    /// What happened, in order, each as `"<kind> <METHOD> <path and query>"`. Kinds: `start`
    /// (request received), `down`, `status-<code>`, `too-many` (faults injected), `upstream-error`
    /// (target unreachable), `end` (the target's body fully handed to the client's connection),
    /// `abort` (the relay stopped early: client gone or target failed mid-body).
    pub fn events(&self) -> Vec<(Instant, String)> {
        lock(&self.state.log).events.clone()
    }

    /// When the first event starting with `prefix` happened (e.g. `"end GET /v2/a/blobs/"`).
    pub fn first_event(&self, prefix: &str) -> Option<Instant> {
        lock(&self.state.log)
            .events
            .iter()
            .find(|(_, e)| e.starts_with(prefix))
            .map(|(t, _)| *t)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// An error from the service makes hyper close the client's connection without an answer.
fn refused() -> std::io::Error {
    std::io::Error::other("refused by FaultProxy")
}

async fn serve(
    listener: std::net::TcpListener,
    st: Arc<State>,
    mut shutdown: tokio::sync::oneshot::Receiver<()>,
) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(Duration::from_secs(5)));
    let client: HttpClient<HttpConnector, Incoming> =
        HttpClient::builder(TokioExecutor::new()).build(connector);
    loop {
        let stream = tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => {
                    // Out of descriptors, say: wait rather than spin.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        let (st, client) = (st.clone(), client.clone());
        tokio::spawn(async move {
            let service =
                hyper::service::service_fn(move |req| handle(st.clone(), client.clone(), req));
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn fault_answer(status: u16, retry_after_s: Option<u64>) -> Response<Body> {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let code = match status.as_u16() {
        401 => "UNAUTHORIZED",
        403 => "DENIED",
        429 => "TOOMANYREQUESTS",
        502..=504 => "UNAVAILABLE",
        _ => "UNKNOWN",
    };
    let body =
        json!({"errors": [{"code": code, "message": "injected by FaultProxy", "detail": null}]});
    let mut r = Response::new(Body::from(body.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(s) = retry_after_s {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(s));
    }
    r
}

async fn handle(
    st: Arc<State>,
    client: HttpClient<HttpConnector, Incoming>,
    mut req: Request<Incoming>,
) -> Result<Response<Body>, std::io::Error> {
    let method = req.method().as_str().to_string();
    let pq = req
        .uri()
        .path_and_query()
        .map_or_else(|| "/".to_string(), |p| p.as_str().to_string());
    let label = format!("{method} {pq}");
    {
        let mut log = lock(&st.log);
        if log.requests.len() < LOG_CAP {
            log.requests.push((method.clone(), pq.clone()));
        }
        if log.events.len() < LOG_CAP {
            log.events.push((Instant::now(), format!("start {label}")));
        }
    }
    match st.mode_for(&pq) {
        Mode::Pass => {}
        Mode::Down => {
            st.event(format!("down {label}"));
            return Err(refused());
        }
        Mode::Status(code) => {
            st.event(format!("status-{code} {label}"));
            return Ok(fault_answer(code, None));
        }
        Mode::TooMany { retry_after_s } => {
            st.event(format!("too-many {label}"));
            return Ok(fault_answer(429, Some(retry_after_s)));
        }
    }
    // HTTP/2 carries the host in the URI; the upstream hop is HTTP/1.1 and needs `Host`.
    if !req.headers().contains_key(header::HOST)
        && let Some(v) = req
            .uri()
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    {
        req.headers_mut().insert(header::HOST, v);
    }
    strip_hop_by_hop(req.headers_mut());
    let Ok(uri) = format!("http://{}{pq}", st.target).parse::<Uri>() else {
        st.event(format!("upstream-error {label}"));
        return Err(refused());
    };
    *req.uri_mut() = uri;
    *req.version_mut() = Version::HTTP_11;
    let Ok(resp) = client.request(req).await else {
        st.event(format!("upstream-error {label}"));
        return Err(refused());
    };
    let (mut parts, body) = resp.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    st.rewrite(&mut parts.headers);
    let blob = pq.split('?').next().unwrap_or("").contains("/blobs/");
    let relay = Relay {
        blob_get: blob && method == "GET",
        throttled: blob,
        st,
        label,
        inner: body,
        pending: Bytes::new(),
        next_due: None,
        sleep: None,
        done: false,
    };
    Ok(Response::from_parts(parts, Body::new(relay)))
}

/// The target's answer body on its way to the client: paced when throttled, and logged when it
/// ends or is dropped unfinished.
struct Relay {
    st: Arc<State>,
    label: String,
    blob_get: bool,
    throttled: bool,
    inner: Incoming,
    /// Received from the target, not yet handed on.
    pending: Bytes,
    /// When the next throttled piece may go.
    next_due: Option<tokio::time::Instant>,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    done: bool,
}

impl Relay {
    fn finish(&mut self) {
        if !self.done {
            self.done = true;
            let mut log = lock(&self.st.log);
            if self.blob_get {
                log.finished_blob_bodies += 1;
            }
            if log.events.len() < LOG_CAP {
                log.events
                    .push((Instant::now(), format!("end {}", self.label)));
            }
        }
    }
}

impl hyper::body::Body for Relay {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        // Each turn either returns or makes progress (a sleep elapsed, bytes arrived).
        loop {
            if let Some(sleep) = this.sleep.as_mut() {
                if sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.sleep = None;
            }
            if !this.pending.is_empty() {
                let rate = this.st.throttle.load(Ordering::SeqCst);
                if !this.throttled || rate == 0 {
                    return Poll::Ready(Some(Ok(Frame::data(std::mem::take(&mut this.pending)))));
                }
                let now = tokio::time::Instant::now();
                if let Some(due) = this.next_due.filter(|d| *d > now) {
                    this.sleep = Some(Box::pin(tokio::time::sleep_until(due)));
                    continue;
                }
                let piece = this
                    .pending
                    .split_to(THROTTLE_CHUNK.min(this.pending.len()));
                let secs = piece.len() as f64 / rate as f64;
                this.next_due = Some(now + Duration::from_secs_f64(secs.min(3600.0)));
                return Poll::Ready(Some(Ok(Frame::data(piece))));
            }
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    this.finish();
                    return Poll::Ready(None);
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => this.pending = data,
                    Err(trailers) => return Poll::Ready(Some(Ok(trailers))),
                },
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.pending.is_empty() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let mut h = self.inner.size_hint();
        let extra = self.pending.len() as u64;
        // The upper bound first: SizeHint rejects a lower bound above the upper one.
        if let Some(u) = h.upper() {
            h.set_upper(u.saturating_add(extra));
        }
        h.set_lower(h.lower().saturating_add(extra));
        h
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        // An empty body (HEAD, 204) may be dropped without being read: it still ended.
        if !self.done && self.pending.is_empty() && self.inner.is_end_stream() {
            self.finish();
        } else if !self.done {
            self.st.event(format!("abort {}", self.label));
        }
    }
}
