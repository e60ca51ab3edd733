//! PostgreSQL stopped and started under a stream of pushes: during the outage Berth answers with
//! clean 503 errors (and `/health/endtoend` says so), afterwards it recovers by itself, and every
//! push that was answered 201 is intact. The test runs its own PostgreSQL on 127.0.0.1.

mod common;

use common::Berth;
use sha2::{Digest as _, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn pg_bin(name: &str) -> PathBuf {
    if let Ok(out) = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
    {
        let p = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !p.is_empty() {
            return PathBuf::from(p);
        }
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.flatten()
                .map(|e| e.path().join("bin").join(name))
                .filter(|p| p.exists())
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found.pop().unwrap_or_else(|| {
        panic!("{name} not found: install the postgresql package (./scripts/test.sh does)")
    })
}

/// A throwaway PostgreSQL cluster; as root it runs as `nobody`, as PostgreSQL requires.
struct Pg {
    dir: PathBuf,
    port: u16,
    _tmp: tempfile::TempDir,
}

fn as_pg_user(cmd: &Path) -> Command {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false);
    if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "nobody", "--"]).arg(cmd);
        c
    } else {
        Command::new(cmd)
    }
}

impl Pg {
    fn start() -> Pg {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("pg");
        std::fs::create_dir(&dir).expect("mkdir");
        let _ = Command::new("chmod").arg("755").arg(tmp.path()).status();
        let _ = Command::new("chown").arg("nobody").arg(&dir).status();
        let ok = as_pg_user(&pg_bin("initdb"))
            .arg("-D")
            .arg(dir.join("data"))
            .args(["-U", "test", "--auth=trust"])
            .output()
            .expect("initdb");
        assert!(
            ok.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&ok.stderr)
        );
        let pg = Pg {
            dir,
            port: common::free_port(),
            _tmp: tmp,
        };
        pg.ctl("start");
        pg
    }

    fn ctl(&self, action: &str) {
        let mut c = as_pg_user(&pg_bin("pg_ctl"));
        c.arg("-D")
            .arg(self.dir.join("data"))
            .arg("-w")
            .arg("-l")
            .arg(self.dir.join("log"));
        if action == "start" {
            c.arg("-o").arg(format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
                self.port,
                self.dir.display()
            ));
        } else {
            c.args(["-m", "fast"]);
        }
        let out = c.arg(action).output().expect("pg_ctl");
        assert!(
            out.status.success(),
            "pg_ctl {action}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn url(&self) -> String {
        format!("postgresql://test@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        let _ = as_pg_user(&pg_bin("pg_ctl"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "stop"])
            .output();
    }
}

fn sha(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

#[derive(Default)]
struct Tally {
    acked: Vec<(String, Vec<u8>, Vec<u8>)>, // (tag, manifest, layer)
    refused: Vec<u16>,
}

async fn push_one(
    c: &reqwest::Client,
    base: &str,
    i: usize,
) -> Result<(String, Vec<u8>, Vec<u8>), u16> {
    let layer = format!("layer {i} {}", "x".repeat(i % 97)).into_bytes();
    let config = format!(r#"{{"architecture":"amd64","os":"linux","i":{i}}}"#).into_bytes();
    for blob in [&layer, &config] {
        let r = c
            .post(format!(
                "{base}/v2/fault/app/blobs/uploads/?digest={}",
                sha(blob)
            ))
            .body(blob.clone())
            .send()
            .await
            .map_err(|_| 0u16)?;
        if r.status() != 201 {
            let status = r.status().as_u16();
            let body: serde_json::Value = r.json().await.map_err(|_| 1u16)?;
            assert!(
                body["errors"][0]["code"].is_string(),
                "error answers keep the registry JSON shape"
            );
            return Err(status);
        }
    }
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{}","size":{}}}]}}"#,
        sha(&config),
        config.len(),
        sha(&layer),
        layer.len()
    )
    .into_bytes();
    let tag = format!("t{i}");
    let r = c
        .put(format!("{base}/v2/fault/app/manifests/{tag}"))
        .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        .body(manifest.clone())
        .send()
        .await
        .map_err(|_| 0u16)?;
    match r.status().as_u16() {
        201 => Ok((tag, manifest, layer)),
        s => Err(s),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_loses_no_acknowledged_push() {
    let pg = Pg::start();
    let uri = pg.url();
    let server = Berth::start_with_env(&[("BERTH_DB_URI", uri.as_str())]);
    let c = reqwest::Client::builder()
        .default_headers(common::admin_headers())
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let tally = Arc::new(Mutex::new(Tally::default()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let pusher = {
        let (c, base, tally, stop) = (c.clone(), server.base.clone(), tally.clone(), stop.clone());
        tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && i < 5000 {
                match push_one(&c, &base, i).await {
                    Ok(done) => tally.lock().expect("tally").acked.push(done),
                    Err(status) => tally.lock().expect("tally").refused.push(status),
                }
                i += 1;
            }
        })
    };
    let count = |t: &Arc<Mutex<Tally>>| t.lock().expect("tally").acked.len();
    let wait_for = |target: usize| {
        let tally = tally.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(60);
            while count(&tally) < target {
                assert!(Instant::now() < deadline, "pushes made no progress");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    wait_for(5).await;

    pg.ctl("stop");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let health = c
        .get(format!("{}/health/endtoend", server.base))
        .send()
        .await
        .expect("health");
    assert_eq!(health.status(), 503, "the outage shows in /health/endtoend");
    let before_restart = count(&tally);
    pg.ctl("start");
    wait_for(before_restart + 5).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    pusher.await.expect("pusher");
    let health = c
        .get(format!("{}/health/endtoend", server.base))
        .send()
        .await
        .expect("health");
    assert_eq!(health.status(), 200, "recovered without a restart of Berth");

    let t = std::mem::take(&mut *tally.lock().expect("tally"));
    assert!(!t.refused.is_empty(), "some pushes met the outage");
    assert!(
        t.refused.iter().all(|s| *s == 503),
        "outage answers are 503 UNAVAILABLE with a JSON body: {:?}",
        t.refused
    );
    eprintln!(
        "{} pushes acknowledged, {} refused during the outage",
        t.acked.len(),
        t.refused.len()
    );
    for (tag, manifest, layer) in &t.acked {
        let r = c
            .get(format!("{}/v2/fault/app/manifests/{tag}", server.base))
            .send()
            .await
            .expect("get");
        assert_eq!(r.status(), 200, "acknowledged {tag} lost");
        assert_eq!(r.bytes().await.expect("body").as_ref(), manifest.as_slice());
        let r = c
            .get(format!("{}/v2/fault/app/blobs/{}", server.base, sha(layer)))
            .send()
            .await
            .expect("get");
        assert_eq!(r.bytes().await.expect("body").as_ref(), layer.as_slice());
    }
}
