//! LDAP authentication (`AUTHENTICATION_TYPE: LDAP`), behaving as Quay's LDAP backend does.
//!
//! A login binds as `LDAP_ADMIN_DN`, looks for the one entry whose `LDAP_UID_ATTR` is the user
//! name (under `LDAP_USER_RDN`, then each of `LDAP_SECONDARY_USER_RDNS`, below `LDAP_BASE_DN`,
//! narrowed by `LDAP_USER_FILTER`) and binds as that entry with the password given. The first
//! successful login creates a Berth user named after the uid, without a local password, and links
//! it (`external_logins`, service `ldap`); every later login brings its email, its superuser flag
//! (`LDAP_SUPERUSER_FILTER`) and its memberships of teams synced from LDAP groups in step with the
//! directory.
//!
//! A local account that has a password of its own and no LDAP link (the bootstrap superuser) keeps
//! logging in with that password: a directory entry with the same uid cannot take it over. A
//! directory that is down or misconfigured fails the login with a message saying so, and is not
//! counted as a failed login of the user.

mod directory;

use super::accounts::{OWNERS_TEAM, check_namespace_name};
use super::audit::AuditEntry;
use super::login::LoginError;
use super::{Actor, Auth};
use crate::{Account, Error, Result};
use berth_db::AccountKind;
use berth_db::{AccountRow, AccountUpdate};
use directory::{DirUser, Verdict, norm_rdn, rdns, verify};
use std::collections::HashMap;
use std::time::Duration;

/// The `service` of the external logins and synced teams that LDAP owns.
pub const SERVICE: &str = "ldap";

/// LDAP settings, from Quay's `LDAP_*` keys.
#[derive(Clone)]
pub struct LdapConfig {
    /// `LDAP_URI`: one or more `ldap://` / `ldaps://` URIs (space-separated, as OpenLDAP's own
    /// tools take them), tried in order until one connects.
    pub uris: Vec<String>,
    /// `LDAP_BASE_DN`, as one DN string (`dc=example,dc=org`).
    pub base_dn: String,
    /// `LDAP_ADMIN_DN` / `LDAP_ADMIN_PASSWD`: the account that searches; anonymous when absent.
    pub admin_dn: Option<String>,
    pub admin_password: Option<String>,
    /// `LDAP_USER_RDN`: the user subtree, relative to the base DN (may be empty).
    pub user_rdn: String,
    /// `LDAP_SECONDARY_USER_RDNS`: further user subtrees, searched when the first has no match.
    pub secondary_user_rdns: Vec<String>,
    /// `LDAP_UID_ATTR` / `LDAP_EMAIL_ATTR`
    pub uid_attr: String,
    pub email_attr: String,
    /// `LDAP_USER_FILTER` / `LDAP_SUPERUSER_FILTER` / `LDAP_RESTRICTED_USER_FILTER`: one or more
    /// parenthesised filters, ANDed with the uid match as Quay does.
    pub user_filter: Option<String>,
    pub superuser_filter: Option<String>,
    pub restricted_filter: Option<String>,
    /// `LDAP_TIMEOUT`: limit of each operation (bind, search).
    pub timeout: Duration,
    /// `LDAP_NETWORK_TIMEOUT`: limit of connecting (TLS handshake included).
    pub network_timeout: Duration,
    /// `LDAP_ALLOW_INSECURE_FALLBACK`: accept an `ldaps://` certificate that does not verify.
    pub allow_insecure_fallback: bool,
}

impl Default for LdapConfig {
    fn default() -> Self {
        LdapConfig {
            uris: Vec::new(),
            base_dn: String::new(),
            admin_dn: None,
            admin_password: None,
            user_rdn: String::new(),
            secondary_user_rdns: Vec::new(),
            uid_attr: "uid".into(),
            email_attr: "mail".into(),
            user_filter: None,
            superuser_filter: None,
            restricted_filter: None,
            timeout: Duration::from_secs(10),
            network_timeout: Duration::from_secs(10),
            allow_insecure_fallback: false,
        }
    }
}

// By hand, so that the bind password never reaches a log line.
impl std::fmt::Debug for LdapConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LdapConfig")
            .field("uris", &self.uris)
            .field("base_dn", &self.base_dn)
            .field("admin_dn", &self.admin_dn)
            .field(
                "admin_password",
                &self.admin_password.as_ref().map(|_| "<redacted>"),
            )
            .field("user_rdn", &self.user_rdn)
            .field("secondary_user_rdns", &self.secondary_user_rdns)
            .field("uid_attr", &self.uid_attr)
            .field("email_attr", &self.email_attr)
            .field("user_filter", &self.user_filter)
            .field("superuser_filter", &self.superuser_filter)
            .field("restricted_filter", &self.restricted_filter)
            .field("timeout", &self.timeout)
            .field("network_timeout", &self.network_timeout)
            .field("allow_insecure_fallback", &self.allow_insecure_fallback)
            .finish()
    }
}

impl LdapConfig {
    /// A DN relative to the base DN, made absolute.
    pub fn absolute(&self, relative: &str) -> String {
        match (relative.trim(), self.base_dn.trim()) {
            ("", base) => base.to_string(),
            (rel, "") => rel.to_string(),
            (rel, base) => format!("{rel},{base}"),
        }
    }

    /// The subtrees searched for users, in order.
    pub fn user_bases(&self) -> Vec<String> {
        std::iter::once(&self.user_rdn)
            .chain(&self.secondary_user_rdns)
            .map(|r| self.absolute(r))
            .collect()
    }

    /// A group DN as teams store it: relative to the base DN, as Quay's `group_dn` is. An
    /// absolute DN under the base DN is accepted too and made relative.
    pub fn relative_group(&self, dn: &str) -> String {
        let parts = rdns(dn);
        let base: Vec<String> = rdns(&self.base_dn).iter().map(|r| norm_rdn(r)).collect();
        let n = parts.len();
        if !base.is_empty()
            && n > base.len()
            && parts[n - base.len()..]
                .iter()
                .map(|r| norm_rdn(r))
                .eq(base.iter().cloned())
        {
            return parts[..n - base.len()].join(",");
        }
        parts.join(",")
    }

    /// Checks the settings as a whole: the key at fault and what to do, for the first problem.
    pub fn validate(&self) -> std::result::Result<(), (&'static str, String)> {
        if self.uris.is_empty() {
            return Err((
                "LDAP_URI",
                "AUTHENTICATION_TYPE is LDAP, so LDAP_URI is needed: the directory's address, e.g. ldaps://ldap.example.org".into(),
            ));
        }
        if let Some(u) = self
            .uris
            .iter()
            .find(|u| !(u.starts_with("ldap://") || u.starts_with("ldaps://")))
        {
            return Err((
                "LDAP_URI",
                format!("{u:?} must start with ldap:// or ldaps://"),
            ));
        }
        if self.base_dn.trim().is_empty() {
            return Err((
                "LDAP_BASE_DN",
                "AUTHENTICATION_TYPE is LDAP, so LDAP_BASE_DN is needed, e.g. [dc=example, dc=org]"
                    .into(),
            ));
        }
        match (&self.admin_dn, &self.admin_password) {
            (Some(_), None) => {
                return Err((
                    "LDAP_ADMIN_PASSWD",
                    "LDAP_ADMIN_DN is set, so its password is needed too".into(),
                ));
            }
            (None, Some(_)) => {
                return Err((
                    "LDAP_ADMIN_DN",
                    "LDAP_ADMIN_PASSWD is set without the DN it belongs to".into(),
                ));
            }
            _ => {}
        }
        for (key, attr) in [
            ("LDAP_UID_ATTR", &self.uid_attr),
            ("LDAP_EMAIL_ATTR", &self.email_attr),
        ] {
            let ok = !attr.is_empty()
                && attr
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == ';');
            if !ok {
                return Err((key, format!("{attr:?} is not an LDAP attribute name")));
            }
        }
        for (key, f) in [
            ("LDAP_USER_FILTER", &self.user_filter),
            ("LDAP_SUPERUSER_FILTER", &self.superuser_filter),
            ("LDAP_RESTRICTED_USER_FILTER", &self.restricted_filter),
        ] {
            if let Some(f) = f {
                check_filter(f).map_err(|m| (key, m))?;
            }
        }
        Ok(())
    }
}

/// Checks a configured filter. It is used as `(&(uid=...)FILTER)`, so that is what is parsed:
/// several parenthesised filters one after the other are fine, as in Quay.
pub fn check_filter(f: &str) -> std::result::Result<(), String> {
    let f = f.trim();
    if !(f.starts_with('(') && f.ends_with(')')) {
        return Err(format!(
            "{f:?} must be an LDAP filter in parentheses, e.g. (memberOf=cn=registry,ou=groups,dc=example,dc=org)"
        ));
    }
    ldap3::parse_filter(format!("(&{f})"))
        .map(|_| ())
        .map_err(|()| format!("{f:?} is not a valid LDAP filter (RFC 4515)"))
}

type Outcome = std::result::Result<Actor, LoginError>;

impl Auth {
    /// The LDAP part of a Basic check: `None` when LDAP is not configured or the account is a
    /// local one (a password of its own, no LDAP link), which the caller then checks itself.
    pub(super) async fn check_ldap(
        &self,
        username: &str,
        secret: &str,
        source: &str,
    ) -> Result<Option<Outcome>> {
        let Some(cfg) = self.config.ldap.as_ref() else {
            return Ok(None);
        };
        // Berth names are lowercase and LDAP matches uids without regard to case: "Alice" and
        // "alice" are one account, so they share one failure counter.
        let name = username.to_ascii_lowercase();
        let row = self
            .db
            .account_by_name(&name)
            .await?
            .filter(|r| r.kind == AccountKind::User);
        if let Some(r) = &row
            && r.password_hash.is_some()
            && self.ldap_link(r.id).await?.is_none()
        {
            return Ok(None);
        }
        // App-specific tokens of LDAP users stay usable as passwords (podman login).
        if let Some(r) = &row
            && self.config.app_tokens
            && let Ok(actor) = self.check_app_token(Some(r.id), secret).await?
        {
            return Ok(Some(Ok(actor)));
        }
        if let Some(r) = &row
            && let Some(e) = self.throttled(&Account::from(r), source).await?
        {
            return Ok(Some(Err(e)));
        }
        // A simple bind with an empty password is an anonymous bind, which directories accept.
        if secret.is_empty() {
            return self.ldap_refused(row.as_ref(), source).await.map(Some);
        }
        let synced = self.db.synced_teams(SERVICE).await?;
        match verify(cfg, username, secret, &synced).await {
            Ok(Verdict::Accepted(user)) => self.ldap_accepted(user, source).await.map(Some),
            Ok(Verdict::Rejected) => self.ldap_refused(row.as_ref(), source).await.map(Some),
            // Not the user's fault: no failure is counted.
            Err(e) => {
                tracing::warn!(username, unreachable = e.unreachable, detail = %e.detail, "LDAP could not check a login");
                Ok(Some(Err(e.login_error())))
            }
        }
    }

    /// The metadata of an account's LDAP link, if it has one.
    async fn ldap_link(&self, account_id: i64) -> Result<Option<serde_json::Value>> {
        Ok(self
            .db
            .external_logins_of(account_id)
            .await?
            .into_iter()
            .find(|(service, _, _)| service == SERVICE)
            .map(|(_, _, meta)| serde_json::from_str(&meta).unwrap_or_default()))
    }

    /// A refused password, counted against the account as a local one would be.
    async fn ldap_refused(&self, row: Option<&AccountRow>, source: &str) -> Result<Outcome> {
        match row {
            Some(r) => Ok(Err(self.login_failed(&Account::from(r), source).await?)),
            None => Ok(Err(LoginError::Invalid)),
        }
    }

    /// The account of a user the directory accepted: found by its link, or created and linked;
    /// then email, superuser flag and synced teams are brought in step.
    async fn ldap_accepted(&self, user: DirUser, source: &str) -> Result<Outcome> {
        // The link's subject is the uid, not the DN: the uid is what the user logs in with and
        // what the Berth account is named after, and it survives what changes DNs (moving the
        // entry to another subtree such as a secondary RDN, renaming a `cn=Full Name` RDN).
        let subject = user.uid.to_ascii_lowercase();
        let mut acct = match self.db.external_login(SERVICE, &subject).await? {
            Some(id) => self.db.account_by_id(id).await?.map(Account::from),
            None => None,
        };
        if acct.is_none() {
            acct = match self.ldap_provision(&subject, user.email.as_deref()).await? {
                Ok(row) => Some(row),
                Err(e) => return Ok(Err(e)),
            };
        }
        let Some(acct) = acct else {
            return Err(Error::Internal("LDAP account vanished".into()));
        };
        let prev = self.ldap_link(acct.id).await?.unwrap_or_default();
        let mut changed = Vec::new();
        if let Some(email) = user.email.as_deref()
            && acct.email.as_deref() != Some(email)
        {
            match self.db.account_by_email(email).await? {
                Some(other) if other.id != acct.id => tracing::warn!(
                    username = %acct.name, email,
                    "LDAP email not copied: another Berth user has it"
                ),
                _ => {
                    self.db
                        .update_account(acct.id, AccountUpdate::Email(Some(email)))
                        .await?;
                    changed.push("email");
                }
            }
        }
        // The directory grants superuser rights through LDAP_SUPERUSER_FILTER and takes back only
        // what it granted: a flag an administrator set in Berth stays.
        let was_granted = prev
            .get("superuser_granted")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false);
        let granted = match user.superuser {
            Some(true) if !acct.superuser => {
                self.db
                    .update_account(acct.id, AccountUpdate::Superuser(true))
                    .await?;
                changed.push("superuser");
                true
            }
            Some(true) => was_granted,
            Some(false) if acct.superuser && was_granted => {
                self.db
                    .update_account(acct.id, AccountUpdate::Superuser(false))
                    .await?;
                changed.push("superuser");
                false
            }
            Some(false) => false,
            None => was_granted,
        };
        let meta = serde_json::json!({
            "dn": user.dn,
            "uid": user.uid,
            "superuser_granted": granted,
            // Recorded for FEATURE_RESTRICTED_USERS; Berth does not restrict anyone by it yet.
            "restricted": user.restricted,
        });
        self.db
            .link_external_login(SERVICE, &subject, acct.id, &meta.to_string())
            .await?;
        if !changed.is_empty() {
            self.audit
                .record(
                    AuditEntry::new("user_change")
                        .namespace(&acct.name)
                        .meta(serde_json::json!({"username": acct.name, "changed": changed, "source": SERVICE})),
                )
                .await;
        }
        let Some(acct) = self.db.account_by_id(acct.id).await? else {
            return Err(Error::Internal("LDAP account vanished".into()));
        };
        if !acct.enabled {
            return Ok(Err(LoginError::Disabled));
        }
        self.incidental(self.db.login_succeeded(acct.id, source).await)?;
        self.incidental(self.db.touch_account(acct.id).await)?;
        let acct = Account::from(acct);
        self.ldap_sync_teams(&acct, &user.teams).await?;
        let mut actor = self.actor(&acct, "password");
        if user.superuser == Some(true) {
            actor.superuser = true;
        }
        Ok(Ok(actor))
    }

    /// Creates the Berth user of a directory user logging in for the first time, and links it.
    async fn ldap_provision(
        &self,
        name: &str,
        email: Option<&str>,
    ) -> Result<std::result::Result<Account, LoginError>> {
        if let Err(e) = check_namespace_name(name) {
            return Ok(Err(LoginError::Directory(format!(
                "the LDAP user {name:?} cannot become a Berth user: {e}; an administrator can change LDAP_UID_ATTR or the directory entry"
            ))));
        }
        if let Some(existing) = self.db.account_by_name(name).await? {
            return Ok(Err(LoginError::Directory(format!(
                "the name {name:?} belongs to a Berth {} that is not linked to LDAP; an administrator must rename or delete it before this LDAP user can log in",
                existing.kind
            ))));
        }
        // The email is the directory's, but another Berth user may already have it (emails are
        // unique): then the account is made without one rather than not at all.
        let email = match email {
            Some(e) if self.db.account_by_email(e).await?.is_none() => Some(e),
            _ => None,
        };
        let row = match self.create_user(None, name, None, email, false).await {
            Ok(row) => row,
            // A concurrent first login of the same user created it a moment ago.
            Err(Error::AlreadyExists(_)) => match self.db.external_login(SERVICE, name).await? {
                Some(id) => match self.db.account_by_id(id).await? {
                    Some(row) => return Ok(Ok(row.into())),
                    None => return Err(Error::Internal("LDAP account vanished".into())),
                },
                None => {
                    return Ok(Err(LoginError::Directory(format!(
                        "the name {name:?} was just taken by another account; try again"
                    ))));
                }
            },
            Err(e) => return Err(e),
        };
        self.db
            .link_external_login(SERVICE, name, row.id, "{}")
            .await?;
        tracing::info!(username = name, "created the Berth user of an LDAP user");
        Ok(Ok(row))
    }

    /// Adds the account to the synced teams whose group lists it and removes it from the others.
    async fn ldap_sync_teams(&self, acct: &Account, teams: &[(i64, Option<bool>)]) -> Result<()> {
        if teams.is_empty() {
            return Ok(());
        }
        // Team and organization names, for the audit log: before (removals) and after (additions).
        let mut names: HashMap<i64, (String, String)> = self
            .db
            .teams_of_account(acct.id)
            .await?
            .into_iter()
            .map(|(org, t)| (t.id, (org, t.name)))
            .collect();
        let mut added = Vec::new();
        for &(team, member) in teams {
            if member == Some(true) && self.db.add_team_member(team, acct.id).await? {
                added.push(team);
            } else if member == Some(false)
                && self.db.remove_team_member(team, acct.id).await?
                && let Some((org, name)) = names.get(&team)
            {
                self.audit_team_sync("org_remove_team_member", org, name, &acct.name)
                    .await;
            }
        }
        if !added.is_empty() {
            names = self
                .db
                .teams_of_account(acct.id)
                .await?
                .into_iter()
                .map(|(org, t)| (t.id, (org, t.name)))
                .collect();
            for team in added {
                if let Some((org, name)) = names.get(&team) {
                    self.audit_team_sync("org_add_team_member", org, name, &acct.name)
                        .await;
                }
            }
        }
        Ok(())
    }

    async fn audit_team_sync(&self, kind: &str, org: &str, team: &str, member: &str) {
        self.audit
            .record(
                AuditEntry::new(kind)
                    .namespace(org)
                    .meta(serde_json::json!({"team": team, "member": member, "source": SERVICE})),
            )
            .await;
    }

    /// Checks a group for team syncing (Quay's `group_dn`, relative to LDAP_BASE_DN) and
    /// returns it as teams store it.
    pub async fn ldap_sync_group(&self, team: &str, group_dn: &str) -> Result<String> {
        let Some(cfg) = self.config.ldap.as_ref() else {
            return Err(Error::invalid(
                "team syncing needs AUTHENTICATION_TYPE: LDAP",
            ));
        };
        if team == OWNERS_TEAM {
            return Err(Error::invalid(
                "the owners team cannot be synced: the organization could lose every administrator",
            ));
        }
        let relative = cfg.relative_group(group_dn);
        if relative.is_empty() {
            return Err(Error::invalid(
                "group_dn must name a group, e.g. cn=devs,ou=groups",
            ));
        }
        let dn = cfg.absolute(&relative);
        match directory::exists(cfg, &dn).await {
            Ok(true) => Ok(relative),
            Ok(false) => Err(Error::invalid(format!(
                "the directory has no group {dn:?}; group_dn is relative to LDAP_BASE_DN"
            ))),
            Err(e) => {
                tracing::warn!(detail = %e.detail, "LDAP could not check a group for team syncing");
                Err(Error::Unavailable(String::from(if e.unreachable {
                    "the user directory (LDAP) is unreachable; try again later"
                } else {
                    "the user directory (LDAP) could not look up the group; the server log says why"
                })))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> LdapConfig {
        LdapConfig {
            base_dn: "dc=example,dc=org".into(),
            user_rdn: "ou=people".into(),
            secondary_user_rdns: vec!["ou=contractors".into()],
            ..LdapConfig::default()
        }
    }

    #[test]
    fn bases_and_group_dns_are_relative_to_the_base_dn() {
        let c = cfg();
        assert_eq!(
            c.user_bases(),
            [
                "ou=people,dc=example,dc=org",
                "ou=contractors,dc=example,dc=org"
            ]
        );
        assert_eq!(c.relative_group("cn=devs,ou=groups"), "cn=devs,ou=groups");
        assert_eq!(
            c.relative_group("cn=devs, ou=groups, DC=Example,dc=org"),
            "cn=devs,ou=groups"
        );
        assert_eq!(c.absolute(""), "dc=example,dc=org");
    }

    #[test]
    fn filters_are_checked_as_quay_combines_them() {
        assert!(check_filter("(employeeType=registry)").is_ok());
        assert!(check_filter("(objectClass=person)(mail=*)").is_ok());
        assert!(check_filter("employeeType=registry").is_err());
        assert!(check_filter("(employeeType=registry").is_err());
    }

    #[test]
    fn settings_name_the_key_at_fault() {
        let mut c = LdapConfig::default();
        assert_eq!(c.validate().map_err(|e| e.0), Err("LDAP_URI"));
        c.uris = vec!["http://x".into()];
        assert_eq!(c.validate().map_err(|e| e.0), Err("LDAP_URI"));
        c.uris = vec!["ldaps://x".into()];
        assert_eq!(c.validate().map_err(|e| e.0), Err("LDAP_BASE_DN"));
        c.base_dn = "dc=x".into();
        assert!(c.validate().is_ok());
        c.admin_dn = Some("cn=admin,dc=x".into());
        assert_eq!(c.validate().map_err(|e| e.0), Err("LDAP_ADMIN_PASSWD"));
        c.admin_password = Some("pw".into());
        c.user_filter = Some("(a=b".into());
        assert_eq!(c.validate().map_err(|e| e.0), Err("LDAP_USER_FILTER"));
        c.user_filter = None;
        c.uid_attr = "uid)(x".into();
        assert_eq!(c.validate().map_err(|e| e.0), Err("LDAP_UID_ATTR"));
        assert!(!format!("{c:?}").contains("\"pw\""));
    }
}
