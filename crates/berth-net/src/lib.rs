//! The outbound guard. Every request Berth makes on a user's behalf — a webhook, a Slack
//! message, and later a mirror's or a pull-through cache's upstream — names its target here
//! first. The guard resolves the host itself, refuses loopback, private, link-local, shared,
//! multicast and other non-public addresses (cloud metadata services live at link-local
//! 169.254.169.254 and fd00:ec2::254) unless the host or address is listed in
//! `SSRF_ALLOWED_HOSTS`, refuses hosts on an extra deny list (`WEBHOOK_HOSTNAME_BLACKLIST`), and
//! hands back a client that connects only to the addresses it checked (no second lookup a DNS
//! rebinding could answer differently) and follows no redirect (a 3xx to an internal address
//! would otherwise pass unchecked).

use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use url::Url;

/// Why a target was refused; the text says what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("{0:?} is not an http(s) URL")]
    NotHttp(String),
    #[error("{0:?} has no host")]
    NoHost(String),
    #[error("{host} is on the deny list (WEBHOOK_HOSTNAME_BLACKLIST)")]
    Denied { host: String },
    #[error(
        "{host} resolves to {addr}, which is not a public address; list the host in SSRF_ALLOWED_HOSTS if it is meant to be reached"
    )]
    Internal { host: String, addr: IpAddr },
    #[error("{host} does not resolve: {error}")]
    Unresolved { host: String, error: String },
}

/// One entry of the allow list: a host name (any port), a `host:port`, an address or a CIDR
/// range.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Allow {
    Host(String),
    HostPort(String, u16),
    Net(IpNet),
}

/// The guard, built once from the configuration and shared.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    allowed: Vec<Allow>,
    denied: Vec<String>,
}

/// A target the guard let through: the URL, its host, and the addresses it may connect to.
#[derive(Debug, Clone)]
pub struct Checked {
    pub url: Url,
    pub host: String,
    pub addrs: Vec<SocketAddr>,
}

impl Guard {
    /// `allowed`: `SSRF_ALLOWED_HOSTS` entries (`host`, `host:port`, `10.1.2.3`, `10.0.0.0/8`);
    /// `denied`: host names never to reach (compared without case).
    pub fn new(allowed: &[String], denied: &[String]) -> Guard {
        let allowed = allowed
            .iter()
            .map(|a| a.trim().to_ascii_lowercase())
            .filter(|a| !a.is_empty())
            .map(|a| {
                if let Ok(net) = a.parse::<IpNet>() {
                    Allow::Net(net)
                } else if let Ok(ip) = a.trim_matches(['[', ']']).parse::<IpAddr>() {
                    Allow::Net(IpNet::from(ip))
                } else if let Some((h, p)) = a.rsplit_once(':')
                    && let Ok(port) = p.parse()
                {
                    Allow::HostPort(h.trim_matches(['[', ']']).to_string(), port)
                } else {
                    Allow::Host(a)
                }
            })
            .collect();
        let denied = denied
            .iter()
            .map(|d| d.trim().to_ascii_lowercase())
            .filter(|d| !d.is_empty())
            .collect();
        Guard { allowed, denied }
    }

    fn host_allowed(&self, host: &str, port: u16) -> bool {
        self.allowed.iter().any(|a| match a {
            Allow::Host(h) => h == host,
            Allow::HostPort(h, p) => h == host && *p == port,
            Allow::Net(_) => false,
        })
    }

    fn addr_allowed(&self, ip: IpAddr) -> bool {
        self.allowed.iter().any(|a| match a {
            Allow::Net(n) => n.contains(&ip),
            _ => false,
        })
    }

    /// Checks `url` without resolving it: scheme, host and deny list. What creating a webhook
    /// validates (the target may not resolve yet); [`Guard::check`] runs at each send.
    pub fn check_syntax(&self, url: &str) -> Result<(Url, String, u16), Refused> {
        let u = Url::parse(url).map_err(|_| Refused::NotHttp(url.to_string()))?;
        if !matches!(u.scheme(), "http" | "https") {
            return Err(Refused::NotHttp(url.to_string()));
        }
        let host = u
            .host_str()
            .map(|h| h.trim_matches(['[', ']']).to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .ok_or_else(|| Refused::NoHost(url.to_string()))?;
        if self
            .denied
            .iter()
            .any(|d| *d == host || host.ends_with(&format!(".{d}")))
        {
            return Err(Refused::Denied { host });
        }
        let port = u.port_or_known_default().unwrap_or(80);
        Ok((u, host, port))
    }

    /// Resolves `url`'s host and checks every address it answers; a host or address on the
    /// allow list passes whatever it resolves to.
    pub async fn check(&self, url: &str) -> Result<Checked, Refused> {
        let (u, host, port) = self.check_syntax(url)?;
        let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::net::lookup_host((host.as_str(), port))
                .await
                .map_err(|e| Refused::Unresolved {
                    host: host.clone(),
                    error: e.to_string(),
                })?
                .collect(),
        };
        if addrs.is_empty() {
            return Err(Refused::Unresolved {
                host,
                error: "no addresses".into(),
            });
        }
        if !self.host_allowed(&host, port) {
            for a in &addrs {
                let ip = canonical(a.ip());
                if !is_public(ip) && !self.addr_allowed(ip) {
                    return Err(Refused::Internal { host, addr: ip });
                }
            }
        }
        Ok(Checked {
            url: u,
            host,
            addrs,
        })
    }

    /// A client for one checked target: it connects only to the checked addresses, follows no
    /// redirect, and gives up after `timeout`.
    pub fn client(&self, target: &Checked, timeout: Duration) -> reqwest::Result<reqwest::Client> {
        self.builder(target, timeout).timeout(timeout).build()
    }

    /// The builder behind [`Guard::client`], for callers that add their own settings (TLS
    /// roots, a proxy, a read timeout instead of a total one): it connects only to the checked
    /// addresses, follows no redirect, uses no proxy unless one is added, and gives up
    /// connecting after `connect_timeout`.
    pub fn builder(&self, target: &Checked, connect_timeout: Duration) -> reqwest::ClientBuilder {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(connect_timeout)
            .resolve_to_addrs(&target.host, &target.addrs)
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// Whether `ip` is a public unicast address: not loopback, private (RFC 1918, unique local),
/// link-local (where cloud metadata answers), shared (100.64/10), unspecified, broadcast,
/// multicast, documentation or benchmarking space, nor 0/8 or 240/4.
pub fn is_public(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || o[0] == 0
                || o[0] >= 240
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
                || (o[0] == 198 && (o[1] & 0xfe) == 18)
                || (o[0] == 192 && o[1] == 0 && o[2] == 0))
        }
        IpAddr::V6(v6) => {
            let seg = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || v6.is_unique_local()
                || v6.is_unicast_link_local()
                || (seg[0] == 0x2001 && seg[1] == 0x0db8)
                || (seg[0] == 0x0064 && seg[1] == 0xff9b))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("address")
    }

    #[test]
    fn only_public_unicast_addresses_are_public() {
        for a in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::",
        ] {
            assert!(!is_public(ip(a)), "{a} is not public");
        }
        for a in ["1.1.1.1", "93.184.216.34", "2606:4700::1111", "8.8.8.8"] {
            assert!(is_public(ip(a)), "{a} is public");
        }
    }

    #[tokio::test]
    async fn internal_targets_are_refused_unless_allowed() {
        let g = Guard::new(&[], &["evil.example".into()]);
        for url in [
            "http://127.0.0.1:8080/hook",
            "http://10.0.0.5/",
            "http://169.254.169.254/latest/meta-data/",
            "http://[::1]:9000/",
            "http://localhost:9/",
        ] {
            assert!(
                matches!(g.check(url).await, Err(Refused::Internal { .. })),
                "{url}"
            );
        }
        assert!(matches!(
            g.check("ftp://example.com/").await,
            Err(Refused::NotHttp(_))
        ));
        assert!(matches!(
            g.check("https://hooks.evil.example/x").await,
            Err(Refused::Denied { .. })
        ));
        let allowed = Guard::new(&["127.0.0.1".into(), "localhost:9".into()], &[]);
        assert!(allowed.check("http://127.0.0.1:8080/hook").await.is_ok());
        assert!(allowed.check("http://localhost:9/").await.is_ok());
        let port_only = Guard::new(&["localhost:9".into()], &[]);
        assert!(port_only.check("http://localhost:9/").await.is_ok());
        assert!(matches!(
            port_only.check("http://localhost:10/").await,
            Err(Refused::Internal { .. })
        ));
        let cidr = Guard::new(&["10.0.0.0/8".into()], &[]);
        assert!(cidr.check("http://10.9.9.9/").await.is_ok());
        assert!(cidr.check("http://192.168.0.1/").await.is_err());
    }
}
