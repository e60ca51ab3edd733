//! `--self-test`: measures the load generator against a trivial in-process HTTP server that
//! answers manifest and blob GETs from memory, to show how much headroom the client has.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Result;
use bytes::Bytes;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::client::ReqBody;
use crate::data::BigBlob;
use crate::workloads;

async fn serve(listener: TcpListener, blob: BigBlob, manifest: Bytes) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let blob = blob.clone();
        let manifest = manifest.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req: Request<Incoming>| {
                let body = if req.uri().path().contains("/blobs/") {
                    ReqBody::Stream(blob.stream())
                } else {
                    ReqBody::bytes(manifest.clone())
                };
                async move { Ok::<_, Infallible>(Response::new(body)) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

pub async fn run(
    blob: &BigBlob,
    manifest: Bytes,
    connections: usize,
    duration: Duration,
) -> Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr: SocketAddr = listener.local_addr()?;
    let server = tokio::spawn(serve(listener, blob.clone(), manifest));
    let c0 = crate::client_cpu();
    let mibs = workloads::pull_blob(addr, None, "x", &blob.digest, blob.size())
        .await?
        .mib_s;
    let c1 = crate::client_cpu();
    let m = workloads::manifest_get(addr, None, "x", "latest", connections, duration).await?;
    let c2 = crate::client_cpu();
    server.abort();
    println!(
        "self-test (client and in-process server share the CPU):\n  \
         blob pull     {mibs:.0} MiB/s (process cpu {:.2} s)\n  \
         manifest GET  {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms (process cpu {:.2} s, {:.1} us/req)",
        c1 - c0,
        m.rps,
        m.p50_ms,
        m.p99_ms,
        c2 - c1,
        (c2 - c1) * 1e6 / m.requests.max(1) as f64
    );
    Ok(())
}
