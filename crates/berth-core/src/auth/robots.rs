//! Robot accounts `namespace+name` of users and organizations, with sealed, regenerable tokens.

use super::accounts::*;
use super::secret::{random_upper_token, token_hash};
use super::{Actor, Auth};
use crate::Account;
use crate::{Error, Result};
use berth_db::AccountKind;
use berth_db::{AccountRow, AccountUpdate, NewAccount};

impl Auth {
    // ---- robots --------------------------------------------------------------------------

    /// The owner namespace account of robots named `ns+...`, if `actor` may manage them.
    pub async fn robot_owner(&self, actor: &Actor, ns: &str) -> Result<Account> {
        let owner = self
            .db
            .account_by_name(ns)
            .await?
            .filter(|a| a.kind != AccountKind::Robot)
            .map(Account::from)
            .ok_or_else(|| Error::not_found(format!("no user or organization named {ns:?}")))?;
        let ok = match owner.kind {
            AccountKind::User => {
                (owner.id == actor.id && actor.has_scope("user:admin")) || actor.superuser
            }
            _ => actor.has_scope("org:admin") && self.org_role(actor, &owner).await?.admin,
        };
        if !ok {
            return Err(Error::denied(format!(
                "you may not manage the robots of {ns:?}"
            )));
        }
        Ok(owner)
    }

    pub async fn robot(&self, actor: &Actor, ns: &str, short: &str) -> Result<(Account, String)> {
        let owner = self.robot_owner(actor, ns).await?;
        let name = format!("{ns}+{short}");
        let row = self
            .db
            .account_by_name(&name)
            .await?
            .filter(|r| r.kind == AccountKind::Robot && r.owner_id == Some(owner.id))
            .ok_or_else(|| Error::not_found(format!("no robot account {name:?}")))?;
        let token = self.robot_token(&row);
        Ok((row.into(), token))
    }

    /// A robot's token, unsealed (empty if it cannot be, e.g. after `DATABASE_SECRET_KEY`
    /// changed).
    pub(super) fn robot_token(&self, row: &AccountRow) -> String {
        row.token_sealed
            .as_deref()
            .and_then(|s| self.sealer.open_string(s))
            .unwrap_or_default()
    }

    pub async fn create_robot(
        &self,
        actor: &Actor,
        ns: &str,
        short: &str,
        description: Option<&str>,
        metadata: Option<&serde_json::Value>,
    ) -> Result<(Account, String)> {
        let owner = self.robot_owner(actor, ns).await?;
        if !ROBOT_SHORT.is_match(short) {
            return Err(Error::invalid(format!(
                "invalid robot name {short:?}: a lowercase letter, then lowercase letters, digits or '_' (2 to 255)"
            )));
        }
        let name = format!("{ns}+{short}");
        let token = random_upper_token(64);
        let hash = token_hash(&token);
        let sealed = self.sealer.seal(token.as_bytes());
        let meta = metadata.map(|m| m.to_string());
        self.db
            .create_account(
                &NewAccount {
                    name: &name,
                    kind: AccountKind::Robot,
                    owner_id: Some(owner.id),
                    token_hash: Some(&hash),
                    token_sealed: Some(&sealed),
                    description,
                    metadata: meta.as_deref(),
                    ..NewAccount::default()
                },
                false,
            )
            .await?
            .ok_or_else(|| Error::exists(format!("robot {name:?} already exists")))?;
        self.audit
            .record(
                self.audit_actor(Some(actor), "create_robot")
                    .namespace(ns)
                    .meta(serde_json::json!({"robot": name})),
            )
            .await;
        self.robot(actor, ns, short).await
    }

    pub async fn regenerate_robot(
        &self,
        actor: &Actor,
        ns: &str,
        short: &str,
    ) -> Result<(Account, String)> {
        let (row, _) = self.robot(actor, ns, short).await?;
        let token = random_upper_token(64);
        let sealed = self.sealer.seal(token.as_bytes());
        self.db
            .update_account(
                row.id,
                AccountUpdate::RobotToken {
                    hash: &token_hash(&token),
                    sealed: &sealed,
                },
            )
            .await?;
        self.audit
            .record(
                self.audit_actor(Some(actor), "regenerate_robot_token")
                    .namespace(ns)
                    .meta(serde_json::json!({"robot": row.name})),
            )
            .await;
        self.robot(actor, ns, short).await
    }

    pub async fn delete_robot(&self, actor: &Actor, ns: &str, short: &str) -> Result<()> {
        let (row, _) = self.robot(actor, ns, short).await?;
        self.db.delete_account(row.id).await?;
        self.audit
            .record(
                self.audit_actor(Some(actor), "delete_robot")
                    .namespace(ns)
                    .meta(serde_json::json!({"robot": row.name})),
            )
            .await;
        Ok(())
    }
}
