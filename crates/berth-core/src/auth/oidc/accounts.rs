//! What a verified identity becomes in Berth: the linked account (or one bound by
//! `LOGIN_BINDING_FIELD`, or a new user named after the identity), and team memberships synced
//! from the groups claim.

use super::super::Auth;
use super::OidcProvider;
use crate::Account;
use crate::{Error, Result};
use berth_db::AccountKind;
use serde_json::{Map, Value};

/// A user name from a claim: lowercased, other characters turned into `_`, separators as the
/// namespace grammar allows them (single `.`, `_` or `-` runs between letters and digits).
pub fn sanitize_username(raw: &str) -> String {
    let mut out = String::new();
    let mut sep: Option<char> = None;
    for c in raw.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            if let Some(s) = sep.take()
                && !out.is_empty()
            {
                out.push(s);
            }
            out.push(c);
        } else if sep.is_none() {
            sep = Some(if matches!(c, '.' | '-') { c } else { '_' });
        }
    }
    out.truncate(200);
    out.trim_end_matches(['.', '_', '-']).to_string()
}

/// A claim's value when it is a non-empty string.
pub(super) fn claim_str<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    claims
        .get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

pub(super) fn claim_true(claims: &Map<String, Value>, name: &str) -> Option<bool> {
    match claims.get(name)? {
        Value::Bool(b) => Some(*b),
        Value::String(s) => Some(s.eq_ignore_ascii_case("true")),
        _ => None,
    }
}

/// The groups a claim lists: an array of strings, or one string of space-separated names.
pub fn groups_of(claims: &Map<String, Value>, name: &str) -> Option<Vec<String>> {
    match claims.get(name)? {
        Value::Array(a) => Some(
            a.iter()
                .filter_map(|g| g.as_str().map(str::to_string))
                .collect(),
        ),
        Value::String(s) => Some(s.split_whitespace().map(str::to_string).collect()),
        _ => None,
    }
}

/// The identity a provider vouched for.
#[derive(Debug)]
pub(super) struct Identity {
    pub(super) sub: String,
    pub(super) email: Option<String>,
    pub(super) username: Option<String>,
    pub(super) claims: Map<String, Value>,
}

impl Auth {
    /// The account for an identity: already linked, bound by `LOGIN_BINDING_FIELD`, or new.
    pub(super) async fn oidc_account(
        &self,
        cfg: &OidcProvider,
        id: &Identity,
    ) -> Result<(Account, bool)> {
        if let Some(acct) = self.db.external_login(&cfg.id, &id.sub).await? {
            let row = self.db.account_by_id(acct).await?.ok_or_else(|| {
                Error::Internal(format!(
                    "external login {}/{} names a missing account",
                    cfg.id, id.sub
                ))
            })?;
            return Ok((row.into(), false));
        }
        if let Some(field) = &cfg.binding_field {
            let bound = if field == "email" {
                match &id.email {
                    Some(e) => self.db.account_by_email(e).await?,
                    None => None,
                }
            } else {
                match claim_str(&id.claims, field) {
                    Some(v) => self
                        .db
                        .account_by_name(v)
                        .await?
                        .filter(|r| r.kind == AccountKind::User),
                    None => None,
                }
            };
            if let Some(row) = bound {
                return Ok((row.into(), false));
            }
        }
        if let Some(e) = &id.email
            && self.db.account_by_email(e).await?.is_some()
        {
            return Err(Error::exists(format!(
                "the email {e:?} already belongs to another account; an administrator can set \
                 LOGIN_BINDING_FIELD: email in {}_LOGIN_CONFIG to sign in to it",
                cfg.id.to_ascii_uppercase()
            )));
        }
        let base = id
            .username
            .as_deref()
            .map(sanitize_username)
            .filter(|s| !s.is_empty())
            .or_else(|| {
                id.email
                    .as_deref()
                    .and_then(|e| e.split('@').next())
                    .map(sanitize_username)
                    .filter(|s| !s.is_empty())
            })
            .unwrap_or_else(|| "user".into());
        for n in 0..100u32 {
            let name = if n == 0 {
                base.clone()
            } else {
                format!("{base}{n}")
            };
            if self.db.account_by_name(&name).await?.is_some() {
                continue;
            }
            match self
                .create_user(None, &name, None, id.email.as_deref(), false)
                .await
            {
                Ok(row) => return Ok((row, true)),
                // Taken between the check and the insert (another sign-in): try the next name.
                Err(Error::AlreadyExists(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::conflict(format!("no free user name near {base:?}")))
    }

    /// Adds the account to teams synced from `service` groups it has, and removes it from those
    /// whose group it no longer has.
    pub(super) async fn sync_oidc_teams(
        &self,
        service: &str,
        account: i64,
        groups: &[String],
    ) -> Result<()> {
        let before = self.db.teams_of_account(account).await?;
        let mut changes = Vec::new();
        for (team, group) in self.db.synced_teams(service).await? {
            if groups.contains(&group) {
                if self.db.add_team_member(team, account).await? {
                    tracing::info!(service, team, group, account, "added to a synced team");
                    changes.push(("org_add_team_member", team));
                }
            } else if self.db.remove_team_member(team, account).await? {
                tracing::info!(service, team, group, account, "removed from a synced team");
                changes.push(("org_remove_team_member", team));
            }
        }
        if changes.is_empty() {
            return Ok(());
        }
        // Membership changes are audited like an administrator's, with the provider as source.
        let after = self.db.teams_of_account(account).await?;
        let member = self
            .db
            .account_by_id(account)
            .await?
            .map(|a| a.name)
            .unwrap_or_default();
        for (kind, team) in changes {
            if let Some((org, t)) = before
                .iter()
                .chain(after.iter())
                .find(|(_, t)| t.id == team)
            {
                self.audit
                    .record(
                        super::super::audit::AuditEntry::new(kind).namespace(org).meta(
                            serde_json::json!({"team": t.name, "member": member, "source": service}),
                        ),
                    )
                    .await;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_follow_the_namespace_grammar() {
        assert_eq!(sanitize_username("John Doe"), "john_doe");
        assert_eq!(sanitize_username("j.doe@example.com"), "j.doe_example.com");
        assert_eq!(sanitize_username("--Ünïcode--"), "n_code");
        assert_eq!(sanitize_username("a..b__c"), "a.b_c");
        assert_eq!(sanitize_username("!!!"), "");
        for s in ["John Doe", "a..b", "x-y", "Q"] {
            assert!(
                crate::auth::accounts::check_namespace_name(&sanitize_username(s)).is_ok(),
                "{s}"
            );
        }
    }

    #[test]
    fn groups_are_read_from_arrays_or_strings() {
        let c: Map<String, Value> =
            serde_json::from_value(serde_json::json!({"g": ["a", "b", 3], "s": "x y"}))
                .unwrap_or_default();
        assert_eq!(groups_of(&c, "g"), Some(vec!["a".into(), "b".into()]));
        assert_eq!(groups_of(&c, "s"), Some(vec!["x".into(), "y".into()]));
        assert_eq!(groups_of(&c, "none"), None);
    }
}
