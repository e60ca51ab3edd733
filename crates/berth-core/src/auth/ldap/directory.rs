//! The directory side of LDAP logins: one connection per login (every operation bounded by
//! `LDAP_TIMEOUT`), the user search and bind, the filters, group membership, and the DN handling
//! these need. Nothing here touches the database.

use super::super::login::LoginError;
use super::LdapConfig;
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, Scope, SearchEntry, ldap_escape};
use std::time::Duration;

/// The RDNs of a DN, split at the commas that are not escaped, trimmed.
pub(super) fn rdns(dn: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut escaped = false;
    for c in dn.chars() {
        if escaped {
            cur.push(c);
            escaped = false;
        } else if c == '\\' {
            cur.push(c);
            escaped = true;
        } else if c == ',' {
            out.push(cur.trim().to_string());
            cur.clear();
        } else {
            cur.push(c);
        }
    }
    out.push(cur.trim().to_string());
    out.retain(|r| !r.is_empty());
    out
}

/// An RDN in a form that compares equal for the spellings directories treat as equal (case of
/// attribute names and of the usual case-insensitive values, spaces around `=`).
pub(super) fn norm_rdn(rdn: &str) -> String {
    match rdn.split_once('=') {
        Some((a, v)) => format!("{}={}", a.trim(), v.trim()).to_lowercase(),
        None => rdn.trim().to_lowercase(),
    }
}

/// A DN normalised for comparison (see [`norm_rdn`]).
fn norm_dn(dn: &str) -> String {
    rdns(dn)
        .iter()
        .map(|r| norm_rdn(r))
        .collect::<Vec<_>>()
        .join(",")
}

/// The first value of an attribute (names compare case-insensitively, as LDAP's do).
fn attr<'a>(e: &'a SearchEntry, name: &str) -> Option<&'a str> {
    e.attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.first())
        .map(String::as_str)
        .filter(|v| !v.is_empty())
}

/// Whether a group entry lists the user: by DN in `member` / `uniqueMember` (groupOfNames,
/// groupOfUniqueNames) or by uid in `memberUid` (posixGroup).
fn is_member(group: &SearchEntry, user_dn: &str, uid: &str) -> bool {
    let want = norm_dn(user_dn);
    group.attrs.iter().any(|(name, values)| {
        let name = name.to_ascii_lowercase();
        match name.as_str() {
            "member" | "uniquemember" => values.iter().any(|v| {
                // uniqueMember may carry an optional UID suffix: `dn#'0101'B`.
                let v = match v.rsplit_once('#') {
                    Some((dn, bits)) if bits.starts_with('\'') && bits.ends_with("'B") => dn,
                    _ => v.as_str(),
                };
                norm_dn(v) == want
            }),
            "memberuid" => values.iter().any(|v| v.eq_ignore_ascii_case(uid)),
            _ => false,
        }
    })
}

/// Why the directory could not decide a login.
#[derive(Debug)]
pub(super) struct DirError {
    /// The directory could not be reached, or did not answer in time.
    pub unreachable: bool,
    /// For the server log (addresses and result codes are not for the client).
    pub detail: String,
}

impl DirError {
    fn unreachable(detail: String) -> DirError {
        DirError {
            unreachable: true,
            detail,
        }
    }
    fn failed(detail: String) -> DirError {
        DirError {
            unreachable: false,
            detail,
        }
    }
    pub fn login_error(&self) -> LoginError {
        LoginError::Directory(if self.unreachable {
            "the user directory (LDAP) is unreachable, so the password could not be checked; try again later".into()
        } else {
            "the user directory (LDAP) could not check this login; the server log says why".into()
        })
    }
}

/// One connection to the directory; every operation is bounded by `LDAP_TIMEOUT`.
struct Conn {
    ldap: Ldap,
    timeout: Duration,
    uri: String,
}

impl Conn {
    async fn open(cfg: &LdapConfig) -> std::result::Result<Conn, DirError> {
        let mut tried = Vec::new();
        for uri in &cfg.uris {
            if uri.starts_with("ldap://") {
                static PLAIN: std::sync::Once = std::sync::Once::new();
                PLAIN.call_once(|| {
                    tracing::warn!(uri = %uri, "LDAP_URI is ldap://: users' passwords travel to the directory unencrypted; prefer ldaps://");
                });
            }
            let settings = LdapConnSettings::new()
                .set_conn_timeout(cfg.network_timeout)
                .set_no_tls_verify(cfg.allow_insecure_fallback);
            match LdapConnAsync::with_settings(settings, uri).await {
                Ok((conn, ldap)) => {
                    // The connection's I/O runs on its own task until the handle is dropped.
                    tokio::spawn(async move {
                        if let Err(e) = conn.drive().await {
                            tracing::debug!(error = %e, "LDAP connection ended with an error");
                        }
                    });
                    return Ok(Conn {
                        ldap,
                        timeout: cfg.timeout,
                        uri: uri.clone(),
                    });
                }
                Err(LdapError::Timeout { .. }) => tried.push(format!(
                    "{uri}: no connection within {:?} (LDAP_NETWORK_TIMEOUT)",
                    cfg.network_timeout
                )),
                Err(e) => tried.push(format!("{uri}: {e}")),
            }
        }
        Err(DirError::unreachable(format!(
            "cannot connect to the LDAP directory: {}",
            tried.join("; ")
        )))
    }

    fn error(&self, what: &str, e: LdapError) -> DirError {
        let uri = &self.uri;
        match e {
            LdapError::LdapResult { result } => Self::result_error(uri, what, &result),
            LdapError::Timeout { .. } => DirError::unreachable(format!(
                "{uri}: {what}: no answer within {:?} (LDAP_TIMEOUT)",
                self.timeout
            )),
            other => DirError::unreachable(format!("{uri}: {what}: {other}")),
        }
    }

    fn result_error(uri: &str, what: &str, r: &ldap3::LdapResult) -> DirError {
        let detail = format!("{uri}: {what}: result code {} {}", r.rc, r.text.trim());
        // timeLimitExceeded, busy, unavailable: the directory is there but cannot serve now.
        if matches!(r.rc, 3 | 51 | 52) {
            DirError::unreachable(detail)
        } else {
            DirError::failed(detail)
        }
    }

    /// A simple bind; the result code (0 success, 49 invalid credentials, ...).
    async fn bind(&mut self, dn: &str, password: &str) -> std::result::Result<u32, DirError> {
        let r = self
            .ldap
            .with_timeout(self.timeout)
            .simple_bind(dn, password)
            .await
            .map_err(|e| self.error("bind", e))?;
        if matches!(r.rc, 3 | 51 | 52) {
            return Err(Self::result_error(&self.uri, "bind", &r));
        }
        Ok(r.rc)
    }

    /// Binds as `LDAP_ADMIN_DN`, or anonymously when there is none.
    async fn bind_admin(&mut self, cfg: &LdapConfig) -> std::result::Result<(), DirError> {
        let (dn, pw) = match (&cfg.admin_dn, &cfg.admin_password) {
            (Some(dn), Some(pw)) => (dn.as_str(), pw.as_str()),
            _ => ("", ""),
        };
        match self.bind(dn, pw).await? {
            0 => Ok(()),
            rc => Err(DirError::failed(format!(
                "{}: the directory refused the bind as LDAP_ADMIN_DN {dn:?} (result code {rc}); check LDAP_ADMIN_DN and LDAP_ADMIN_PASSWD",
                self.uri
            ))),
        }
    }

    /// Entries matching `filter`; `None` when `base` does not exist.
    async fn search(
        &mut self,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: &[&str],
    ) -> std::result::Result<Option<Vec<SearchEntry>>, DirError> {
        let ldap3::SearchResult(entries, result) = self
            .ldap
            .with_timeout(self.timeout)
            .search(base, scope, filter, attrs)
            .await
            .map_err(|e| self.error("search", e))?;
        match result.rc {
            0 => {}
            32 => return Ok(None),
            _ => return Err(Self::result_error(&self.uri, "search", &result)),
        }
        let mut out = Vec::new();
        for re in entries
            .into_iter()
            .filter(|e| !e.is_ref() && !e.is_intermediate())
        {
            // ldap3 panics on an entry it cannot decode (bad BER, a DN that is not UTF-8); the
            // directory's answer is input, so that becomes an error rather than a crash.
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                SearchEntry::construct(re)
            })) {
                Ok(e) => out.push(e),
                Err(_) => {
                    return Err(DirError::failed(format!(
                        "{}: search under {base:?}: an entry could not be decoded",
                        self.uri
                    )));
                }
            }
        }
        Ok(Some(out))
    }

    /// Whether the entry `dn` matches `filter`.
    async fn matches(&mut self, dn: &str, filter: &str) -> std::result::Result<bool, DirError> {
        let found = self
            .search(dn, Scope::Base, &format!("(&{filter})"), &["1.1"])
            .await?;
        Ok(found.is_some_and(|e| !e.is_empty()))
    }

    async fn close(mut self) {
        let _ = self.ldap.with_timeout(self.timeout).unbind().await;
    }
}

/// What the directory knows about a user whose password it accepted.
pub(super) struct DirUser {
    pub dn: String,
    pub uid: String,
    pub email: Option<String>,
    /// `None` when the filter is not configured.
    pub superuser: Option<bool>,
    pub restricted: Option<bool>,
    /// (team id, member of the team's group); `None` when the group could not be read.
    pub teams: Vec<(i64, Option<bool>)>,
}

pub(super) enum Verdict {
    Accepted(DirUser),
    /// No such user (or outside LDAP_USER_FILTER), or a wrong password.
    Rejected,
}

/// Checks a user's password with the directory and, when it is right, reads what Berth keeps
/// in step (email, filters, the groups of synced teams).
pub(super) async fn verify(
    cfg: &LdapConfig,
    username: &str,
    password: &str,
    synced: &[(i64, String)],
) -> std::result::Result<Verdict, DirError> {
    let mut conn = Conn::open(cfg).await?;
    let verdict = verify_on(&mut conn, cfg, username, password, synced).await;
    conn.close().await;
    verdict
}

async fn verify_on(
    c: &mut Conn,
    cfg: &LdapConfig,
    username: &str,
    password: &str,
    synced: &[(i64, String)],
) -> std::result::Result<Verdict, DirError> {
    c.bind_admin(cfg).await?;
    let filter = format!(
        "(&({}={}){})",
        cfg.uid_attr,
        ldap_escape(username),
        cfg.user_filter.as_deref().unwrap_or("").trim()
    );
    let mut found = Vec::new();
    for base in cfg.user_bases() {
        if let Some(entries) = c
            .search(
                &base,
                Scope::Subtree,
                &filter,
                &[cfg.uid_attr.as_str(), cfg.email_attr.as_str()],
            )
            .await?
        {
            found = entries;
        }
        // Secondary subtrees are only looked at when the primary one has no match, as in Quay.
        if !found.is_empty() {
            break;
        }
    }
    let entry = match found.len() {
        0 => return Ok(Verdict::Rejected),
        1 => found.remove(0),
        n => {
            return Err(DirError::failed(format!(
                "{}: {n} entries match {filter}; LDAP_UID_ATTR must identify one user",
                c.uri
            )));
        }
    };
    // invalidCredentials, inappropriateAuthentication, unwillingToPerform (locked accounts,
    // password policies): a refusal of this user, not a directory failure.
    match c.bind(&entry.dn, password).await? {
        0 => {}
        48 | 49 | 53 => return Ok(Verdict::Rejected),
        rc => {
            return Err(DirError::failed(format!(
                "{}: bind as {:?}: result code {rc}",
                c.uri, entry.dn
            )));
        }
    }
    // Filters and groups are read as the search account: users often may not read groups.
    c.bind_admin(cfg).await?;
    let uid = attr(&entry, &cfg.uid_attr).unwrap_or(username).to_string();
    let email = attr(&entry, &cfg.email_attr).map(str::to_string);
    let superuser = match &cfg.superuser_filter {
        Some(f) => Some(c.matches(&entry.dn, f.trim()).await?),
        None => None,
    };
    let restricted = match &cfg.restricted_filter {
        Some(f) => Some(c.matches(&entry.dn, f.trim()).await?),
        None => None,
    };
    let mut teams = Vec::new();
    for (team, group) in synced {
        let group_dn = cfg.absolute(group);
        let member = match c
            .search(
                &group_dn,
                Scope::Base,
                "(objectClass=*)",
                &["member", "uniqueMember", "memberUid"],
            )
            .await
        {
            Ok(Some(groups)) => Some(groups.iter().any(|g| is_member(g, &entry.dn, &uid))),
            Ok(None) => {
                tracing::warn!(group = %group_dn, team, "LDAP group of a synced team does not exist; its members are being removed as they log in");
                Some(false)
            }
            Err(e) if e.unreachable => return Err(e),
            Err(e) => {
                tracing::warn!(group = %group_dn, team, detail = %e.detail, "cannot read the LDAP group of a synced team; membership left as it is");
                None
            }
        };
        teams.push((*team, member));
    }
    Ok(Verdict::Accepted(DirUser {
        dn: entry.dn,
        uid,
        email,
        superuser,
        restricted,
        teams,
    }))
}

/// Whether the entry `dn` exists (a group named for team syncing).
pub(super) async fn exists(cfg: &LdapConfig, dn: &str) -> std::result::Result<bool, DirError> {
    let mut c = Conn::open(cfg).await?;
    let found = async {
        c.bind_admin(cfg).await?;
        c.search(dn, Scope::Base, "(objectClass=*)", &["1.1"]).await
    }
    .await;
    c.close().await;
    Ok(found?.is_some_and(|e| !e.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn entry(attrs: &[(&str, &[&str])]) -> SearchEntry {
        SearchEntry {
            dn: "cn=g,dc=example,dc=org".into(),
            attrs: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
                .collect(),
            bin_attrs: HashMap::new(),
        }
    }

    #[test]
    fn dns_split_at_unescaped_commas_and_compare_loosely() {
        assert_eq!(rdns(r"cn=Doe\, John,dc=x"), [r"cn=Doe\, John", "dc=x"]);
        assert_eq!(
            norm_dn("UID=Alice , ou=People,dc=x"),
            "uid=alice,ou=people,dc=x"
        );
        // User input is escaped before it joins a filter (RFC 4515).
        assert_eq!(ldap_escape("a*)(uid=*"), r"a\2a\29\28uid=\2a");
    }

    #[test]
    fn group_membership_by_dn_or_uid() {
        let dn = "uid=alice,ou=people,dc=example,dc=org";
        let g = entry(&[("member", &["UID=Alice, ou=people,dc=example,dc=org"])]);
        assert!(is_member(&g, dn, "alice"));
        assert!(!is_member(&g, "uid=bob,ou=people,dc=example,dc=org", "bob"));
        let g = entry(&[(
            "uniqueMember",
            &["uid=alice,ou=people,dc=example,dc=org#'0101'B"],
        )]);
        assert!(is_member(&g, dn, "alice"));
        let g = entry(&[("memberUid", &["ALICE"])]);
        assert!(is_member(&g, dn, "alice"));
        assert!(!is_member(&entry(&[]), dn, "alice"));
    }
}
