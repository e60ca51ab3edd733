//! Teams, memberships, repository permissions and organizations' default permissions.

use crate::{Db, Result, now_ms};
use sqlx::Row;

#[derive(Debug, Clone)]
pub struct TeamRow {
    pub id: i64,
    pub org_id: i64,
    pub name: String,
    pub role: String,
    pub description: String,
    pub sync_service: Option<String>,
    pub sync_group: Option<String>,
    pub member_count: i64,
    pub repo_count: i64,
}

const TEAM_COLS: &str =
    "t.id, t.org_id, t.name, t.role, t.description, t.sync_service, t.sync_group,
    (SELECT COUNT(*) FROM team_members m WHERE m.team_id = t.id),
    (SELECT COUNT(*) FROM repo_team_perms p WHERE p.team_id = t.id)";

fn team(r: &sqlx::any::AnyRow) -> TeamRow {
    TeamRow {
        id: r.get(0),
        org_id: r.get(1),
        name: r.get(2),
        role: r.get(3),
        description: r.get(4),
        sync_service: r.get(5),
        sync_group: r.get(6),
        member_count: r.get(7),
        repo_count: r.get(8),
    }
}

/// Who holds a permission: an account (user or robot) or a team.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grantee {
    Account(i64),
    Team(i64),
}

/// One repository permission as listed: the grantee's name and kind, and the role.
#[derive(Debug, Clone)]
pub struct PermRow {
    pub repo: String,
    pub repo_visibility: String,
    pub grantee: String,
    /// user | robot | team
    pub grantee_kind: String,
    pub role: String,
}

/// Where an account's access to a repository comes from, for the authorization decision.
#[derive(Debug, Clone)]
pub struct AccessFacts {
    pub repo_id: Option<i64>,
    pub public: bool,
    /// Kind of the account owning the namespace (user | org), if one exists.
    pub namespace_kind: Option<String>,
    /// Roles from direct and team permissions on the repository.
    pub repo_roles: Vec<String>,
    /// Roles of the teams of the namespace's organization the account belongs to.
    pub org_team_roles: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct DefaultPermRow {
    pub uuid: String,
    pub org_id: i64,
    pub activating_id: Option<i64>,
    pub delegate: Grantee,
    pub role: String,
}

impl Db {
    /// Creates a team or changes its role and description.
    pub async fn upsert_team(
        &self,
        org_id: i64,
        name: &str,
        role: &str,
        description: Option<&str>,
    ) -> Result<(i64, bool)> {
        let mut w = self.write().await?;
        let existing = sqlx::query("SELECT id FROM teams WHERE org_id = $1 AND name = $2")
            .bind(org_id)
            .bind(name)
            .fetch_optional(&mut *w.tx)
            .await?;
        let out = match existing {
            Some(r) => {
                let id: i64 = r.get(0);
                sqlx::query(
                    "UPDATE teams SET role = $1, description = COALESCE($2, description) WHERE id = $3",
                )
                .bind(role)
                .bind(description)
                .bind(id)
                .execute(&mut *w.tx)
                .await?;
                (id, false)
            }
            None => {
                let r = sqlx::query(
                    "INSERT INTO teams (org_id, name, role, description, created_at)
                     VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (org_id, name) DO UPDATE SET role = excluded.role RETURNING id",
                )
                .bind(org_id)
                .bind(name)
                .bind(role)
                .bind(description.unwrap_or(""))
                .bind(now_ms())
                .fetch_one(&mut *w.tx)
                .await?;
                (r.get(0), true)
            }
        };
        w.commit().await?;
        Ok(out)
    }

    pub async fn team(&self, org_id: i64, name: &str) -> Result<Option<TeamRow>> {
        let sql = format!("SELECT {TEAM_COLS} FROM teams t WHERE t.org_id = $1 AND t.name = $2");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(org_id)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(team))
    }

    pub async fn teams_of_org(&self, org_id: i64) -> Result<Vec<TeamRow>> {
        let sql = format!("SELECT {TEAM_COLS} FROM teams t WHERE t.org_id = $1 ORDER BY t.name");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(org_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(team).collect())
    }

    /// Teams an account belongs to, with their organization's name.
    pub async fn teams_of_account(&self, account_id: i64) -> Result<Vec<(String, TeamRow)>> {
        let sql = format!(
            "SELECT {TEAM_COLS}, o.name FROM teams t JOIN team_members tm ON tm.team_id = t.id
             JOIN accounts o ON o.id = t.org_id WHERE tm.account_id = $1 ORDER BY o.name, t.name"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(account_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(|r| (r.get(9), team(r))).collect())
    }

    pub async fn delete_team(&self, team_id: i64) -> Result<()> {
        let mut w = self.write().await?;
        sqlx::query("DELETE FROM teams WHERE id = $1")
            .bind(team_id)
            .execute(&mut *w.tx)
            .await?;
        w.commit().await
    }

    pub async fn set_team_sync(&self, team_id: i64, sync: Option<(&str, &str)>) -> Result<()> {
        let mut w = self.write().await?;
        sqlx::query("UPDATE teams SET sync_service = $1, sync_group = $2 WHERE id = $3")
            .bind(sync.map(|s| s.0))
            .bind(sync.map(|s| s.1))
            .bind(team_id)
            .execute(&mut *w.tx)
            .await?;
        w.commit().await
    }

    /// Teams synced from a group of `service`: (team id, group).
    pub async fn synced_teams(&self, service: &str) -> Result<Vec<(i64, String)>> {
        let rows = sqlx::query(
            "SELECT id, sync_group FROM teams WHERE sync_service = $1 AND sync_group IS NOT NULL",
        )
        .bind(service)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Adds a member; `false` if already one.
    pub async fn add_team_member(&self, team_id: i64, account_id: i64) -> Result<bool> {
        let mut w = self.write().await?;
        let r = sqlx::query(
            "INSERT INTO team_members (team_id, account_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(team_id)
        .bind(account_id)
        .execute(&mut *w.tx)
        .await?;
        w.commit().await?;
        Ok(r.rows_affected() > 0)
    }

    pub async fn remove_team_member(&self, team_id: i64, account_id: i64) -> Result<bool> {
        let mut w = self.write().await?;
        let r = sqlx::query("DELETE FROM team_members WHERE team_id = $1 AND account_id = $2")
            .bind(team_id)
            .bind(account_id)
            .execute(&mut *w.tx)
            .await?;
        w.commit().await?;
        Ok(r.rows_affected() > 0)
    }

    /// Removes an account from every team of an organization.
    pub async fn remove_org_member(&self, org_id: i64, account_id: i64) -> Result<u64> {
        let mut w = self.write().await?;
        let r = sqlx::query(
            "DELETE FROM team_members WHERE account_id = $1
               AND team_id IN (SELECT id FROM teams WHERE org_id = $2)",
        )
        .bind(account_id)
        .bind(org_id)
        .execute(&mut *w.tx)
        .await?;
        w.commit().await?;
        Ok(r.rows_affected())
    }

    /// Members of a team: (account id, name, kind).
    pub async fn team_members(&self, team_id: i64) -> Result<Vec<(i64, String, String)>> {
        let rows = sqlx::query(
            "SELECT a.id, a.name, a.kind FROM team_members tm JOIN accounts a ON a.id = tm.account_id
             WHERE tm.team_id = $1 ORDER BY a.name",
        )
        .bind(team_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect())
    }

    /// Every member of any team of an organization: (account id, name, kind, team name).
    pub async fn org_members(&self, org_id: i64) -> Result<Vec<(i64, String, String, String)>> {
        let rows = sqlx::query(
            "SELECT a.id, a.name, a.kind, t.name FROM team_members tm
             JOIN accounts a ON a.id = tm.account_id JOIN teams t ON t.id = tm.team_id
             WHERE t.org_id = $1 ORDER BY a.name, t.name",
        )
        .bind(org_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect())
    }

    /// Everything needed to decide what `account_id` (None: anonymous) may do with `repo`.
    pub async fn access_facts(
        &self,
        repo: &str,
        namespace: &str,
        account_id: Option<i64>,
    ) -> Result<AccessFacts> {
        let acct = account_id.unwrap_or(-1);
        let repo_row = sqlx::query("SELECT id, visibility FROM repositories WHERE name = $1")
            .bind(repo)
            .fetch_optional(&self.pool)
            .await?;
        let repo_id: Option<i64> = repo_row.as_ref().map(|r| r.get(0));
        let public = repo_row
            .as_ref()
            .is_some_and(|r| r.get::<String, _>(1) == "public");
        let ns = sqlx::query("SELECT kind FROM accounts WHERE name = $1 AND kind <> 'robot'")
            .bind(namespace)
            .fetch_optional(&self.pool)
            .await?;
        let namespace_kind = ns.map(|r| r.get::<String, _>(0));
        let mut repo_roles = Vec::new();
        let mut org_team_roles = Vec::new();
        if account_id.is_some() {
            let rows = sqlx::query(
                "SELECT 'r', role FROM repo_account_perms WHERE repo_id = $1 AND account_id = $2
                 UNION ALL
                 SELECT 'r', p.role FROM repo_team_perms p JOIN team_members m ON m.team_id = p.team_id
                   WHERE p.repo_id = $1 AND m.account_id = $2
                 UNION ALL
                 SELECT 'o', t.role FROM teams t JOIN team_members m ON m.team_id = t.id
                   JOIN accounts o ON o.id = t.org_id WHERE o.name = $3 AND m.account_id = $2",
            )
            .bind(repo_id.unwrap_or(-1))
            .bind(acct)
            .bind(namespace)
            .fetch_all(&self.pool)
            .await?;
            for r in rows {
                let src: String = r.get(0);
                let role: String = r.get(1);
                if src == "r" {
                    repo_roles.push(role);
                } else {
                    org_team_roles.push(role);
                }
            }
        }
        Ok(AccessFacts {
            repo_id,
            public,
            namespace_kind,
            repo_roles,
            org_team_roles,
        })
    }

    /// Sets a repository permission (insert or change).
    pub async fn set_repo_perm(&self, repo_id: i64, who: Grantee, role: &str) -> Result<()> {
        let mut w = self.write().await?;
        let (sql, id) = match who {
            Grantee::Account(id) => (
                "INSERT INTO repo_account_perms (repo_id, account_id, role) VALUES ($1, $2, $3)
                 ON CONFLICT (repo_id, account_id) DO UPDATE SET role = excluded.role",
                id,
            ),
            Grantee::Team(id) => (
                "INSERT INTO repo_team_perms (repo_id, team_id, role) VALUES ($1, $2, $3)
                 ON CONFLICT (repo_id, team_id) DO UPDATE SET role = excluded.role",
                id,
            ),
        };
        sqlx::query(sql)
            .bind(repo_id)
            .bind(id)
            .bind(role)
            .execute(&mut *w.tx)
            .await?;
        w.commit().await
    }

    /// Removes a repository permission; `false` if there was none.
    pub async fn delete_repo_perm(&self, repo_id: i64, who: Grantee) -> Result<bool> {
        let mut w = self.write().await?;
        let (sql, id) = match who {
            Grantee::Account(id) => (
                "DELETE FROM repo_account_perms WHERE repo_id = $1 AND account_id = $2",
                id,
            ),
            Grantee::Team(id) => (
                "DELETE FROM repo_team_perms WHERE repo_id = $1 AND team_id = $2",
                id,
            ),
        };
        let r = sqlx::query(sql)
            .bind(repo_id)
            .bind(id)
            .execute(&mut *w.tx)
            .await?;
        w.commit().await?;
        Ok(r.rows_affected() > 0)
    }

    /// Permissions on one repository (`repo_id`), or held by one grantee (`who`).
    pub async fn list_perms(
        &self,
        repo_id: Option<i64>,
        who: Option<Grantee>,
    ) -> Result<Vec<PermRow>> {
        let (acct, team) = match who {
            Some(Grantee::Account(id)) => (id, -2),
            Some(Grantee::Team(id)) => (-2, id),
            None => (-1, -1),
        };
        let rows = sqlx::query(
            "SELECT r.name, r.visibility, a.name, a.kind, p.role FROM repo_account_perms p
               JOIN repositories r ON r.id = p.repo_id JOIN accounts a ON a.id = p.account_id
               WHERE ($1 < 0 OR p.repo_id = $1) AND ($2 = -1 OR p.account_id = $2)
             UNION ALL
             SELECT r.name, r.visibility, t.name, 'team', p.role FROM repo_team_perms p
               JOIN repositories r ON r.id = p.repo_id JOIN teams t ON t.id = p.team_id
               WHERE ($1 < 0 OR p.repo_id = $1) AND ($3 = -1 OR p.team_id = $3)
             ORDER BY 1, 3",
        )
        .bind(repo_id.unwrap_or(-1))
        .bind(acct)
        .bind(team)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| PermRow {
                repo: r.get(0),
                repo_visibility: r.get(1),
                grantee: r.get(2),
                grantee_kind: r.get(3),
                role: r.get(4),
            })
            .collect())
    }

    pub async fn default_perms(&self, org_id: i64) -> Result<Vec<DefaultPermRow>> {
        let rows = sqlx::query(
            "SELECT uuid, org_id, activating_id, delegate_account_id, delegate_team_id, role
             FROM default_perms WHERE org_id = $1 ORDER BY uuid",
        )
        .bind(org_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                let delegate = match (r.get::<Option<i64>, _>(3), r.get::<Option<i64>, _>(4)) {
                    (Some(a), _) => Grantee::Account(a),
                    (None, Some(t)) => Grantee::Team(t),
                    (None, None) => return None,
                };
                Some(DefaultPermRow {
                    uuid: r.get(0),
                    org_id: r.get(1),
                    activating_id: r.get(2),
                    delegate,
                    role: r.get(5),
                })
            })
            .collect())
    }

    pub async fn insert_default_perm(&self, p: &DefaultPermRow) -> Result<()> {
        let (a, t) = match p.delegate {
            Grantee::Account(a) => (Some(a), None),
            Grantee::Team(t) => (None, Some(t)),
        };
        let mut w = self.write().await?;
        sqlx::query(
            "INSERT INTO default_perms (uuid, org_id, activating_id, delegate_account_id,
               delegate_team_id, role) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&p.uuid)
        .bind(p.org_id)
        .bind(p.activating_id)
        .bind(a)
        .bind(t)
        .bind(&p.role)
        .execute(&mut *w.tx)
        .await?;
        w.commit().await
    }

    pub async fn update_default_perm(&self, org_id: i64, uuid: &str, role: &str) -> Result<bool> {
        let mut w = self.write().await?;
        let r = sqlx::query("UPDATE default_perms SET role = $1 WHERE org_id = $2 AND uuid = $3")
            .bind(role)
            .bind(org_id)
            .bind(uuid)
            .execute(&mut *w.tx)
            .await?;
        w.commit().await?;
        Ok(r.rows_affected() > 0)
    }

    pub async fn delete_default_perm(&self, org_id: i64, uuid: &str) -> Result<bool> {
        let mut w = self.write().await?;
        let r = sqlx::query("DELETE FROM default_perms WHERE org_id = $1 AND uuid = $2")
            .bind(org_id)
            .bind(uuid)
            .execute(&mut *w.tx)
            .await?;
        w.commit().await?;
        Ok(r.rows_affected() > 0)
    }
}
