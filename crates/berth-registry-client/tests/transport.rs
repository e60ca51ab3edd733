//! TLS settings against a real Distribution serving https with a certificate from a test CA
//! (made with the openssl CLI), and outbound proxies (the fault proxy as an HTTP forward proxy).

mod support;

use berth_registry_client::{Error, Ping, ProxySettings, RegistryClient, Settings, Upstream};
use std::path::Path;
use std::process::Command;
use support::proxy::FaultProxy;
use support::{Distribution, REPO, filled, guard, settings};

fn openssl(dir: &Path, args: &[&str]) -> bool {
    Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// A CA and a server certificate for IP 127.0.0.1 signed by it; `None` without openssl.
fn test_ca(dir: &Path) -> Option<()> {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .ok()?;
    let steps: [Vec<&str>; 3] = [
        [
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-subj",
                "/CN=berth test CA",
                "-days",
                "2",
            ],
        ]
        .concat(),
        [
            &["req"][..],
            &ec,
            &[
                "-keyout",
                "leaf.key",
                "-out",
                "leaf.csr",
                "-subj",
                "/CN=127.0.0.1",
            ],
        ]
        .concat(),
        vec![
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "leaf.pem",
            "-days",
            "2",
            "-extfile",
            "leaf.ext",
        ],
    ];
    for step in &steps {
        if !openssl(dir, step) {
            eprintln!("skipping: openssl could not make the test CA ({step:?})");
            return None;
        }
    }
    Some(())
}

fn https_client(addr: &str, settings: Settings) -> Result<RegistryClient, Error> {
    RegistryClient::new(
        guard(),
        Upstream {
            registry: addr.into(),
            insecure: false,
            credentials: None,
        },
        settings,
    )
}

#[tokio::test]
async fn tls_uses_the_system_roots_plus_the_extra_bundle_or_none() {
    if !support::tools_present() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    if test_ca(dir.path()).is_none() {
        return;
    }
    let reg = Distribution::start_with(
        false,
        Some((&dir.path().join("leaf.pem"), &dir.path().join("leaf.key"))),
    );

    // The system roots do not know the test CA.
    let plain = https_client(&reg.addr, settings()).expect("client");
    match plain.ping().await {
        Err(e @ Error::Unreachable(_)) => assert!(e.is_unavailable()),
        other => panic!("an unknown CA must fail the handshake: {other:?}"),
    }

    let ca = std::fs::read(dir.path().join("ca.pem")).expect("ca");
    let trusting = https_client(
        &reg.addr,
        Settings {
            extra_ca_pem: Some(ca),
            ..settings()
        },
    )
    .expect("client");
    assert_eq!(trusting.ping().await.expect("ping"), Ping::Anonymous);
    assert_eq!(
        trusting.catalog().await.expect("catalog"),
        Vec::<String>::new()
    );

    let unverified = https_client(
        &reg.addr,
        Settings {
            verify_tls: false,
            ..settings()
        },
    )
    .expect("client");
    assert_eq!(unverified.ping().await.expect("ping"), Ping::Anonymous);

    for bad in [&b"not a certificate"[..], b""] {
        let e = https_client(
            &reg.addr,
            Settings {
                extra_ca_pem: Some(bad.to_vec()),
                ..settings()
            },
        );
        assert!(matches!(e, Err(Error::Invalid(_))), "{e:?}");
    }
}

#[tokio::test]
async fn requests_go_through_the_proxy_unless_no_proxy_says_otherwise() {
    let Some((reg, layout)) = filled(false) else {
        return;
    };
    let forward = FaultProxy::start(&reg.addr);
    let via = |no_proxy: Option<&str>, guard: berth_net::Guard| {
        RegistryClient::new(
            guard,
            Upstream {
                registry: reg.addr.clone(),
                insecure: true,
                credentials: None,
            },
            Settings {
                proxy: ProxySettings {
                    http_proxy: Some(format!("http://{}", forward.addr)),
                    https_proxy: None,
                    no_proxy: no_proxy.map(str::to_string),
                },
                ..settings()
            },
        )
        .expect("client")
    };
    let c = via(None, guard());
    let m = c.get_manifest(REPO, "v1").await.expect("through the proxy");
    assert_eq!(m.digest, layout.image.digest);
    assert_eq!(forward.count("/manifests/v1"), 1, "{:?}", forward.hits());

    forward.clear();
    let bypass = via(Some("127.0.0.1"), guard());
    assert!(bypass.get_manifest(REPO, "v1").await.is_ok());
    assert!(forward.hits().is_empty(), "{:?}", forward.hits());

    // The guard checks the target even when a proxy would make the connection.
    let strict = via(None, berth_net::Guard::new(&[], &[]));
    assert!(matches!(strict.ping().await, Err(Error::Refused(_))));
    assert!(forward.hits().is_empty());

    let bad = RegistryClient::new(
        guard(),
        Upstream {
            registry: reg.addr.clone(),
            insecure: true,
            credentials: None,
        },
        Settings {
            proxy: ProxySettings {
                http_proxy: Some("http://user:secret@[bad".into()),
                ..ProxySettings::default()
            },
            ..settings()
        },
    );
    match bad {
        Err(Error::Invalid(m)) => assert!(!m.contains("secret"), "{m}"),
        other => panic!("{other:?}"),
    }
}
