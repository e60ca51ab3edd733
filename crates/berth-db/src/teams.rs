//! Teams, memberships, repository permissions and organizations' default permissions.

use crate::{
    AccountKind, Db, DbError, GranteeKind, RepoState, Result, Role, TeamRole, Visibility, now_ms,
};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TeamRow {
    pub id: i64,
    pub org_id: i64,
    pub name: String,
    pub role: TeamRole,
    pub description: String,
    pub sync_service: Option<String>,
    pub sync_group: Option<String>,
    pub member_count: i64,
    pub repo_count: i64,
}

const TEAM_COLS: &str =
    "t.id, t.org_id, t.name, t.role, t.description, t.sync_service, t.sync_group,
    (SELECT COUNT(*) FROM team_members m WHERE m.team_id = t.id) AS member_count,
    (SELECT COUNT(*) FROM repo_team_perms p WHERE p.team_id = t.id) AS repo_count";

/// A team with its organization's name (`teams_of_account`).
#[derive(sqlx::FromRow)]
struct OrgTeam {
    org_name: String,
    #[sqlx(flatten)]
    team: TeamRow,
}

/// A stored default permission; its delegate is one of two columns.
#[derive(sqlx::FromRow)]
struct DefaultPermDb {
    uuid: String,
    org_id: i64,
    activating_id: Option<i64>,
    delegate_account_id: Option<i64>,
    delegate_team_id: Option<i64>,
    role: Role,
}

/// Who holds a permission: an account (user or robot) or a team.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grantee {
    Account(i64),
    Team(i64),
}

/// One repository permission as listed: the grantee's name and kind, and the role.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PermRow {
    pub repo: String,
    pub repo_visibility: Visibility,
    pub grantee: String,
    /// user | robot | team
    pub grantee_kind: GranteeKind,
    pub role: Role,
}

/// One source of an account's role on a repository (see `Db::grant_facts`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantFact {
    pub account: String,
    pub kind: AccountKind,
    pub role: Role,
    /// The team the grant is through, if any.
    pub team: Option<String>,
    /// The team is an admin team of the namespace's organization (admin on all its repositories).
    pub org_admin: bool,
    /// `creator` or `default:<uuid>` (see migration 0011); `None` when set by hand.
    pub origin: Option<String>,
}

/// Where an account's access to a repository comes from, for the authorization decision.
#[derive(Debug, Clone)]
pub struct AccessFacts {
    pub repo_id: Option<i64>,
    pub public: bool,
    /// Kind of the account owning the namespace (user | org), if one exists.
    pub namespace_kind: Option<AccountKind>,
    /// Roles from direct and team permissions on the repository.
    pub repo_roles: Vec<Role>,
    /// Roles of the teams of the namespace's organization the account belongs to.
    pub org_team_roles: Vec<TeamRole>,
    /// The repository's state, and its mirror's robot when it has a mirror.
    pub state: RepoState,
    pub mirror_robot: Option<i64>,
    /// The namespace is a pull-through cache organization.
    pub proxy_cache: bool,
}

#[derive(Debug, Clone)]
pub struct DefaultPermRow {
    pub uuid: String,
    pub org_id: i64,
    pub activating_id: Option<i64>,
    pub delegate: Grantee,
    pub role: Role,
}

impl Db {
    /// Creates a team or changes its role and description.
    pub async fn upsert_team(
        &self,
        org_id: i64,
        name: &str,
        role: TeamRole,
        description: Option<&str>,
    ) -> Result<(i64, bool)> {
        let mut w = self.write().await?;
        let existing: Option<i64> =
            sqlx::query_scalar("SELECT id FROM teams WHERE org_id = $1 AND name = $2")
                .bind(org_id)
                .bind(name)
                .fetch_optional(&mut *w.tx)
                .await?;
        let out = match existing {
            Some(id) => {
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
                let id: i64 = sqlx::query_scalar(
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
                (id, true)
            }
        };
        w.commit().await?;
        Ok(out)
    }

    pub async fn team(&self, org_id: i64, name: &str) -> Result<Option<TeamRow>> {
        let sql = format!("SELECT {TEAM_COLS} FROM teams t WHERE t.org_id = $1 AND t.name = $2");
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(org_id)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn teams_of_org(&self, org_id: i64) -> Result<Vec<TeamRow>> {
        let sql = format!("SELECT {TEAM_COLS} FROM teams t WHERE t.org_id = $1 ORDER BY t.name");
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(org_id)
            .fetch_all(&self.pool)
            .await?)
    }

    /// Teams an account belongs to, with their organization's name.
    pub async fn teams_of_account(&self, account_id: i64) -> Result<Vec<(String, TeamRow)>> {
        let sql = format!(
            "SELECT {TEAM_COLS}, o.name AS org_name FROM teams t JOIN team_members tm ON tm.team_id = t.id
             JOIN accounts o ON o.id = t.org_id WHERE tm.account_id = $1 ORDER BY o.name, t.name"
        );
        let rows: Vec<OrgTeam> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(account_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(|r| (r.org_name, r.team)).collect())
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
        Ok(sqlx::query_as(
            "SELECT id, sync_group FROM teams WHERE sync_service = $1 AND sync_group IS NOT NULL",
        )
        .bind(service)
        .fetch_all(&self.pool)
        .await?)
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
    pub async fn team_members(&self, team_id: i64) -> Result<Vec<(i64, String, AccountKind)>> {
        Ok(sqlx::query_as(
            "SELECT a.id, a.name, a.kind FROM team_members tm JOIN accounts a ON a.id = tm.account_id
             WHERE tm.team_id = $1 ORDER BY a.name",
        )
        .bind(team_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Every member of any team of an organization: (account id, name, kind, team name).
    pub async fn org_members(
        &self,
        org_id: i64,
    ) -> Result<Vec<(i64, String, AccountKind, String)>> {
        Ok(sqlx::query_as(
            "SELECT a.id, a.name, a.kind, t.name FROM team_members tm
             JOIN accounts a ON a.id = tm.account_id JOIN teams t ON t.id = tm.team_id
             WHERE t.org_id = $1 ORDER BY a.name, t.name",
        )
        .bind(org_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Everything needed to decide what `account_id` (None: anonymous) may do with `repo`.
    pub async fn access_facts(
        &self,
        repo: &str,
        namespace: &str,
        account_id: Option<i64>,
    ) -> Result<AccessFacts> {
        let acct = account_id.unwrap_or(-1);
        let repo_row: Option<(i64, Visibility, RepoState, Option<i64>)> = sqlx::query_as(
            "SELECT r.id, r.visibility, r.state, m.robot_id FROM repositories r
             LEFT JOIN repo_mirrors m ON m.repo_id = r.id WHERE r.name = $1",
        )
        .bind(repo)
        .fetch_optional(&self.pool)
        .await?;
        let repo_id = repo_row.as_ref().map(|r| r.0);
        let public = repo_row.is_some_and(|r| r.1 == Visibility::Public);
        let ns: Option<(AccountKind, Option<i64>)> = sqlx::query_as(
            "SELECT a.kind, (SELECT 1 FROM proxy_caches p WHERE p.namespace = a.name)
             FROM accounts a WHERE a.name = $1 AND a.kind <> 'robot'",
        )
        .bind(namespace)
        .fetch_optional(&self.pool)
        .await?;
        let namespace_kind = ns.as_ref().map(|n| n.0);
        let proxy_cache = ns.is_some_and(|n| n.1.is_some());
        let mut repo_roles = Vec::new();
        let mut org_team_roles = Vec::new();
        if account_id.is_some() {
            let rows: Vec<(String, String)> = sqlx::query_as(
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
            // One column holds both kinds of role, so each is parsed by its source.
            for (src, role) in rows {
                if src == "r" {
                    repo_roles.push(role.parse().map_err(DbError::Corrupt)?);
                } else {
                    org_team_roles.push(role.parse().map_err(DbError::Corrupt)?);
                }
            }
        }
        Ok(AccessFacts {
            state: repo_row.as_ref().map(|r| r.2).unwrap_or_default(),
            mirror_robot: repo_row.as_ref().and_then(|r| r.3),
            proxy_cache,
            repo_id,
            public,
            namespace_kind,
            repo_roles,
            org_team_roles,
        })
    }

    /// Every grant that gives an account a role on a repository, one row per account and
    /// source: its direct permission, each of its teams' permissions, and membership of an
    /// admin team of the namespace's organization. Superusers, the namespace's owner and
    /// public read are rules, not rows: the core adds them.
    pub async fn grant_facts(&self, repo_id: i64, namespace: &str) -> Result<Vec<GrantFact>> {
        let direct: Vec<(String, AccountKind, Role, Option<String>)> = sqlx::query_as(
            "SELECT a.name, a.kind, p.role, p.origin FROM repo_account_perms p
               JOIN accounts a ON a.id = p.account_id WHERE p.repo_id = $1",
        )
        .bind(repo_id)
        .fetch_all(&self.pool)
        .await?;
        let via_team: Vec<(String, AccountKind, Role, Option<String>, String)> = sqlx::query_as(
            "SELECT a.name, a.kind, p.role, p.origin, t.name FROM repo_team_perms p
               JOIN teams t ON t.id = p.team_id
               JOIN team_members m ON m.team_id = p.team_id
               JOIN accounts a ON a.id = m.account_id
             WHERE p.repo_id = $1",
        )
        .bind(repo_id)
        .fetch_all(&self.pool)
        .await?;
        let admins: Vec<(String, AccountKind, String)> = sqlx::query_as(
            "SELECT a.name, a.kind, t.name FROM teams t
               JOIN accounts o ON o.id = t.org_id
               JOIN team_members m ON m.team_id = t.id
               JOIN accounts a ON a.id = m.account_id
             WHERE o.name = $1 AND o.kind = 'org' AND t.role = 'admin'",
        )
        .bind(namespace)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(direct.len() + via_team.len() + admins.len());
        out.extend(
            direct
                .into_iter()
                .map(|(account, kind, role, origin)| GrantFact {
                    account,
                    kind,
                    role,
                    team: None,
                    org_admin: false,
                    origin,
                }),
        );
        out.extend(
            via_team
                .into_iter()
                .map(|(account, kind, role, origin, team)| GrantFact {
                    account,
                    kind,
                    role,
                    team: Some(team),
                    org_admin: false,
                    origin,
                }),
        );
        out.extend(admins.into_iter().map(|(account, kind, team)| GrantFact {
            account,
            kind,
            role: Role::Admin,
            team: Some(team),
            org_admin: true,
            origin: None,
        }));
        Ok(out)
    }

    /// Users flagged superuser in the database (`SUPER_USERS` names are the core's to add).
    pub async fn flagged_superusers(&self) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT name FROM accounts WHERE kind = 'user' AND superuser <> 0 ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Sets a repository permission (insert or change).
    pub async fn set_repo_perm(&self, repo_id: i64, who: Grantee, role: Role) -> Result<()> {
        let mut w = self.write().await?;
        let (sql, id) = match who {
            Grantee::Account(id) => (
                "INSERT INTO repo_account_perms (repo_id, account_id, role) VALUES ($1, $2, $3)
                 ON CONFLICT (repo_id, account_id) DO UPDATE SET role = excluded.role, origin = NULL",
                id,
            ),
            Grantee::Team(id) => (
                "INSERT INTO repo_team_perms (repo_id, team_id, role) VALUES ($1, $2, $3)
                 ON CONFLICT (repo_id, team_id) DO UPDATE SET role = excluded.role, origin = NULL",
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
        Ok(sqlx::query_as(
            "SELECT r.name AS repo, r.visibility AS repo_visibility, a.name AS grantee,
               a.kind AS grantee_kind, p.role FROM repo_account_perms p
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
        .await?)
    }

    pub async fn default_perms(&self, org_id: i64) -> Result<Vec<DefaultPermRow>> {
        let rows: Vec<DefaultPermDb> = sqlx::query_as(
            "SELECT uuid, org_id, activating_id, delegate_account_id, delegate_team_id, role
             FROM default_perms WHERE org_id = $1 ORDER BY uuid",
        )
        .bind(org_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                let delegate = match (r.delegate_account_id, r.delegate_team_id) {
                    (Some(a), _) => Grantee::Account(a),
                    (None, Some(t)) => Grantee::Team(t),
                    (None, None) => return None,
                };
                Some(DefaultPermRow {
                    uuid: r.uuid,
                    org_id: r.org_id,
                    activating_id: r.activating_id,
                    delegate,
                    role: r.role,
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
        .bind(p.role.as_str())
        .execute(&mut *w.tx)
        .await?;
        w.commit().await
    }

    pub async fn update_default_perm(&self, org_id: i64, uuid: &str, role: Role) -> Result<bool> {
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
