//! What the API shows about accounts, teams, robots, tokens, keys and the audit log: the read
//! doors. A door that takes a name or an actor does the access check its answer needs; one that
//! takes a row (an organization, a team, a robot) serves a caller that already obtained that row
//! through a checked door. Writes live with their aggregate (accounts, orgs, robots, …).

use super::authz::require_superuser;
use super::{AccountKind, Actor, Auth, GranteeKind};
use crate::model::all;
use crate::{
    AccessReason, Account, ApiToken, AppToken, AuditQuery, AuditRecord, DefaultPerm,
    EffectiveAccess, EffectivePermissions, Error, GrantOrigin, OAuthApp, Permission, Repository,
    Result, ServiceKey, Team,
};
use berth_db::{DefaultPermRow, Grantee, Viewer};

/// Whose audit log to read ([`Auth::audit_log`]).
#[derive(Debug, Clone, Copy)]
pub enum LogScope<'a> {
    Repository(&'a str),
    Organization(&'a str),
    /// The caller's own namespace.
    User,
    /// The whole registry (superusers).
    Everything,
}

/// How many entries of one kind a log has on one day ([`Auth::audit_counts`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditCount {
    /// The day's start (UTC midnight), milliseconds.
    pub day: i64,
    pub kind: String,
    pub count: i64,
}

/// What the header search found ([`Auth::search`]).
#[derive(Debug, Clone, Default)]
pub struct Search {
    /// Users and organizations: (name, kind).
    pub namespaces: Vec<(String, AccountKind)>,
    pub repositories: Vec<Repository>,
    /// (repository, tag, manifest digest).
    pub tags: Vec<(String, String, String)>,
    /// (repository, digest, media type).
    pub manifests: Vec<(String, String, String)>,
}

/// A member of a team or an organization.
#[derive(Debug, Clone)]
pub struct Member {
    pub id: i64,
    pub name: String,
    /// A user or a robot.
    pub kind: AccountKind,
}

/// Which repositories a listing asks for (which of them the caller may read is the access
/// rule's business, not the listing's).
#[derive(Debug, Clone, Copy, Default)]
pub struct Listing<'a> {
    /// Only this namespace's.
    pub namespace: Option<&'a str>,
    /// Public repositories of others too.
    pub public: bool,
    /// Every repository (a superuser's view of a namespace).
    pub everything: bool,
    /// Only names containing this text.
    pub contains: Option<&'a str>,
    /// Only public (or only private) repositories.
    pub visibility: Option<super::Visibility>,
    /// Most recently pushed first (the cursor is then `PUSHMS:NAME`, see
    /// [`Auth::readable_repos`]), instead of by name.
    pub newest_first: bool,
}

/// A member of an organization and the teams it is in.
#[derive(Debug, Clone)]
pub struct OrgMember {
    pub name: String,
    pub kind: AccountKind,
    pub teams: Vec<String>,
}

/// A team with its members, as its organization's administrators and members see it.
#[derive(Debug, Clone)]
pub struct TeamMembers {
    pub team: Team,
    pub members: Vec<Member>,
    /// Whether the caller administers the organization.
    pub can_edit: bool,
}

/// A default permission with the accounts and team it names resolved to `(name, kind)`.
#[derive(Debug, Clone)]
pub struct DefaultPermView {
    pub perm: DefaultPerm,
    pub activating: Option<(String, GranteeKind)>,
    pub delegate: Option<(String, GranteeKind)>,
}

/// How a team's membership follows an external directory.
#[derive(Debug, Clone)]
pub enum TeamSync<'a> {
    /// An OIDC service's groups claim (`group_name`); the service may be left out when only
    /// one is configured.
    Oidc {
        service: Option<&'a str>,
        group: &'a str,
    },
    /// An LDAP group, by DN relative to the base DN or absolute.
    Ldap {
        group_dn: &'a str,
    },
    Off,
}

impl Auth {
    /// An account by id, of any kind; `None` once deleted.
    pub async fn account_by_id(&self, id: i64) -> Result<Option<Account>> {
        Ok(self.db.account_by_id(id).await?.map(Account::from))
    }

    /// The organizations and teams an account belongs to.
    pub async fn memberships(&self, account_id: i64) -> Result<Vec<(String, Team)>> {
        Ok(self
            .db
            .teams_of_account(account_id)
            .await?
            .into_iter()
            .map(|(org, t)| (org, t.into()))
            .collect())
    }

    /// External identities linked to an account: `(service, subject, metadata JSON)`.
    pub async fn external_logins(&self, account_id: i64) -> Result<Vec<(String, String, String)>> {
        Ok(self.db.external_logins_of(account_id).await?)
    }

    /// Whether any user account exists (Quay's `FEATURE_USER_INITIALIZE` works only before).
    pub async fn has_users(&self) -> Result<bool> {
        Ok(self.db.count_accounts(AccountKind::User).await? > 0)
    }

    /// Accounts whose name starts with `prefix`, for autocompletion.
    pub async fn search_accounts(&self, prefix: &str, limit: i64) -> Result<Vec<Account>> {
        Ok(all(self.db.search_accounts(prefix, limit).await?))
    }

    /// A page of accounts of one kind in name order, after `after`, for superusers.
    pub async fn list_accounts(
        &self,
        actor: &Actor,
        kind: AccountKind,
        after: &str,
        limit: i64,
    ) -> Result<Vec<Account>> {
        require_superuser(actor)?;
        Ok(all(self.db.list_accounts(kind, after, limit).await?))
    }

    /// The time-machine window a namespace set for itself (`tag_expiration_s`), if any.
    pub async fn namespace_tag_window(&self, namespace: &str) -> Result<Option<i64>> {
        Ok(self
            .db
            .account_by_name(namespace)
            .await?
            .and_then(|a| a.tag_expiration_s))
    }

    /// Who is looking, as the database's visibility predicate wants it: public repositories
    /// only if the listing asks for them and the caller may see public ones, everything only
    /// for a superuser's listing that asks for it.
    fn viewer<'a>(&self, actor: Option<&'a Actor>, listing: &Listing<'_>) -> Viewer<'a> {
        Viewer {
            account_id: actor.map(|a| a.id),
            own_namespace: actor
                .filter(|a| a.kind == AccountKind::User)
                .map(|a| a.name.as_str()),
            public: listing.public && (actor.is_some() || self.config.anonymous_access),
            all: listing.everything && actor.is_some_and(|a| a.superuser),
        }
    }

    /// Up to `limit` repositories in name order after `after` that `actor` may read, by the
    /// one access rule every request goes through ([`Auth::repo_access`]). The database only
    /// narrows the candidates (a superset, so a listing stays fast with many repositories the
    /// caller cannot see); the rule decides each one, so a listing never shows what a pull
    /// would refuse (an API token without `repo:read`, for one).
    pub async fn readable_repos(
        &self,
        actor: Option<&Actor>,
        listing: &Listing<'_>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Repository>> {
        let viewer = self.viewer(actor, listing);
        let mut out = Vec::new();
        // By name the cursor is the last name; newest first it is `PUSHMS:NAME`.
        let mut cursor: Option<(String, i64)> = match after {
            None => None,
            Some(a) if listing.newest_first => {
                let (ms, name) = a.split_once(':').ok_or_else(|| {
                    Error::invalid("the page cursor is not one this listing gave")
                })?;
                let ms = ms
                    .parse()
                    .map_err(|_| Error::invalid("the page cursor is not one this listing gave"))?;
                Some((name.to_string(), ms))
            }
            Some(a) => Some((a.to_string(), 0)),
        };
        loop {
            let f = berth_db::RepoFilter {
                namespace: listing.namespace,
                contains: listing.contains,
                visibility: listing.visibility,
                newest_first: listing.newest_first,
                after: cursor.as_ref().map(|(n, ms)| (n.as_str(), *ms)),
            };
            let batch = self.db.visible_repos(&viewer, &f, limit).await?;
            let exhausted = (batch.len() as i64) < limit;
            for r in batch {
                cursor = Some((r.name.clone(), r.last_push_at.unwrap_or(0)));
                if self
                    .repo_access(actor, &r.name)
                    .await?
                    .allows(super::Role::Read)
                {
                    out.push(r.into());
                    if out.len() as i64 >= limit {
                        return Ok(out);
                    }
                }
            }
            if exhausted {
                return Ok(out);
            }
        }
    }

    /// The header search: namespaces (for signed-in callers), repositories, tags and manifest
    /// digests matching `text`, each only where the caller may read, at most `limit` of each.
    /// A digest is searched by its prefix (`sha256:ab12…` or bare hex of 6 or more).
    pub async fn search(&self, actor: Option<&Actor>, text: &str, limit: i64) -> Result<Search> {
        let text = text.trim();
        let mut out = Search::default();
        if text.is_empty() {
            return Ok(out);
        }
        if actor.is_some() {
            for a in self.db.search_accounts(text, limit * 2).await? {
                if a.kind != AccountKind::Robot && (out.namespaces.len() as i64) < limit {
                    out.namespaces.push((a.name, a.kind));
                }
            }
        }
        let listing = Listing {
            public: true,
            contains: Some(text),
            ..Listing::default()
        };
        out.repositories = self.readable_repos(actor, &listing, None, limit).await?;
        let everything = Listing {
            public: true,
            everything: true,
            ..Listing::default()
        };
        let viewer = self.viewer(actor, &everything);
        let mut readable = std::collections::HashMap::new();
        for (repo, tag, digest) in self.db.search_tags(&viewer, text, limit * 2).await? {
            if out.tags.len() as i64 >= limit {
                break;
            }
            if self.readable_cached(actor, &repo, &mut readable).await? {
                out.tags.push((repo, tag, digest));
            }
        }
        let hex = text.strip_prefix("sha256:").unwrap_or(text);
        if hex.len() >= 6 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            let prefix = format!("sha256:{}", hex.to_ascii_lowercase());
            for (repo, digest, media_type) in self
                .db
                .search_manifests(&viewer, &prefix, limit * 2)
                .await?
            {
                if out.manifests.len() as i64 >= limit {
                    break;
                }
                if self.readable_cached(actor, &repo, &mut readable).await? {
                    out.manifests.push((repo, digest, media_type));
                }
            }
        }
        Ok(out)
    }

    async fn readable_cached(
        &self,
        actor: Option<&Actor>,
        repo: &str,
        seen: &mut std::collections::HashMap<String, bool>,
    ) -> Result<bool> {
        if let Some(ok) = seen.get(repo) {
            return Ok(*ok);
        }
        let ok = self
            .repo_access(actor, repo)
            .await?
            .allows(super::Role::Read);
        seen.insert(repo.to_string(), ok);
        Ok(ok)
    }

    /// The account a registry token speaks for, as an actor (anonymous: `None`).
    pub fn token_actor(&self, claims: &super::Claims) -> Option<Actor> {
        let kind = match claims.context.kind {
            super::CallerKind::User => AccountKind::User,
            super::CallerKind::Robot => AccountKind::Robot,
            super::CallerKind::Org => AccountKind::Org,
            super::CallerKind::Anonymous => return None,
        };
        Some(Actor {
            id: claims.context.account_id?,
            name: claims.sub.clone(),
            kind,
            superuser: claims.context.superuser,
            via: "registry_token",
            scopes: None,
        })
    }

    /// An organization's teams.
    pub async fn org_teams(&self, org: &Account) -> Result<Vec<Team>> {
        Ok(all(self.db.teams_of_org(org.id).await?))
    }

    /// A team and its members, if `actor` may list them: the organization's administrators and
    /// the team's own members.
    pub async fn team_members(&self, actor: &Actor, org: &str, team: &str) -> Result<TeamMembers> {
        if !actor.has_scope("user:read") && !actor.has_scope("org:admin") {
            return Err(Error::denied("this token lacks the user:read scope"));
        }
        let o = self.org(org).await?;
        let role = self.org_role(actor, &o).await?;
        let t = self.team(&o, team).await?;
        let members: Vec<Member> = self
            .db
            .team_members(t.id)
            .await?
            .into_iter()
            .map(|(id, name, kind)| Member { id, name, kind })
            .collect();
        if !role.admin && !members.iter().any(|m| m.id == actor.id) {
            return Err(Error::denied(
                "only administrators and the team's members may list its members",
            ));
        }
        Ok(TeamMembers {
            team: t,
            members,
            can_edit: role.admin,
        })
    }

    /// The accounts in the organization's teams, each with its teams in the order found, for
    /// the organization's administrators.
    pub async fn org_members(&self, actor: &Actor, org: &str) -> Result<Vec<OrgMember>> {
        let o = self.org_admin(actor, org).await?;
        let mut out: Vec<OrgMember> = Vec::new();
        for (_, name, kind, team) in self.db.org_members(o.id).await? {
            match out.iter_mut().find(|m| m.name == name) {
                Some(m) => m.teams.push(team),
                None => out.push(OrgMember {
                    name,
                    kind,
                    teams: vec![team],
                }),
            }
        }
        Ok(out)
    }

    /// Every account in some team of the organization, by name.
    pub async fn org_member_names(&self, org: &Account) -> Result<Vec<String>> {
        Ok(self
            .db
            .org_members(org.id)
            .await?
            .into_iter()
            .map(|m| m.1)
            .collect())
    }

    /// Direct permissions on repositories of `org` held by accounts outside its teams (Quay's
    /// outside collaborators), for the organization's administrators.
    pub async fn outside_collaborators(&self, actor: &Actor, org: &str) -> Result<Vec<Permission>> {
        let o = self.org_admin(actor, org).await?;
        let members: std::collections::HashSet<String> =
            self.org_member_names(&o).await?.into_iter().collect();
        let prefix = format!("{}/", o.name);
        Ok(self
            .db
            .list_perms(None, None)
            .await?
            .into_iter()
            .filter(|p| {
                p.grantee_kind != GranteeKind::Team
                    && !members.contains(&p.grantee)
                    && p.repo.starts_with(&prefix)
            })
            .map(Permission::from)
            .collect())
    }

    /// The repository permissions a team holds, for the organization's administrators.
    pub async fn team_permissions(
        &self,
        actor: &Actor,
        org: &str,
        team: &str,
    ) -> Result<Vec<Permission>> {
        let o = self.org_admin(actor, org).await?;
        let t = self.team(&o, team).await?;
        Ok(all(self
            .db
            .list_perms(None, Some(Grantee::Team(t.id)))
            .await?))
    }

    /// The direct permissions an account (a robot, a user) holds.
    pub async fn account_permissions(&self, account: &Account) -> Result<Vec<Permission>> {
        Ok(self
            .db
            .list_perms(None, Some(Grantee::Account(account.id)))
            .await?
            .into_iter()
            .map(Permission::from)
            .collect())
    }

    /// The permissions granted on one repository, for its administrators.
    pub async fn repo_permissions(&self, actor: &Actor, repo: &str) -> Result<Vec<Permission>> {
        let r = self
            .repo_with_role(Some(actor), repo, super::Role::Admin)
            .await?;
        Ok(all(self.db.list_perms(Some(r.id), None).await?))
    }

    /// The role a user or robot holds on a repository by every rule (direct, teams, namespace,
    /// public), for the repository's administrators; `None` if it holds none.
    pub async fn effective_role(
        &self,
        actor: &Actor,
        repo: &str,
        account: &str,
    ) -> Result<Option<super::Role>> {
        self.repo_with_role(Some(actor), repo, super::Role::Admin)
            .await?;
        let who = self
            .db
            .account_by_name(account)
            .await?
            .filter(|r| r.kind != AccountKind::Org)
            .ok_or_else(|| Error::not_found(format!("no user or robot named {account:?}")))?;
        let as_them = self.actor(&Account::from(who), "password");
        Ok(self.repo_access(Some(&as_them), repo).await?.role)
    }

    /// Who may pull, push and administer a repository, and by which rule (superuser, namespace
    /// owner, admin team, team or direct permission and where it came from), for the
    /// repository's administrators. Each account's role is the one `repo_access` decides for it.
    pub async fn effective_permissions(
        &self,
        actor: &Actor,
        repo: &str,
    ) -> Result<EffectivePermissions> {
        let r = self
            .repo_with_role(Some(actor), repo, super::Role::Admin)
            .await?;
        let public = r.is_public();
        let mut by_account: std::collections::BTreeMap<String, EffectiveAccess> =
            std::collections::BTreeMap::new();
        let mut add = |account: String, kind: AccountKind, reason: AccessReason| {
            let e = by_account
                .entry(account.clone())
                .or_insert_with(|| EffectiveAccess {
                    account,
                    kind,
                    role: if public {
                        super::Role::Read
                    } else {
                        reason.role()
                    },
                    reasons: Vec::new(),
                });
            e.role = e.role.max(reason.role());
            if !e.reasons.contains(&reason) {
                e.reasons.push(reason);
            }
        };
        let mut supers = self.db.flagged_superusers().await?;
        supers.extend(self.config.superusers.iter().cloned());
        for name in supers {
            if let Some(a) = self.db.account_by_name(&name).await?
                && a.kind == AccountKind::User
            {
                add(a.name, a.kind, AccessReason::Superuser);
            }
        }
        if let Some(owner) = self.db.account_by_name(&r.namespace).await?
            && owner.kind == AccountKind::User
        {
            add(owner.name, owner.kind, AccessReason::NamespaceOwner);
        }
        for g in self.db.grant_facts(r.id, &r.namespace).await? {
            let origin = GrantOrigin::parse(g.origin.as_deref());
            let reason = match (g.team, g.org_admin) {
                (Some(team), true) => AccessReason::OrgAdminTeam { team },
                (Some(team), false) => AccessReason::Team {
                    team,
                    role: g.role,
                    origin,
                },
                (None, _) => AccessReason::Direct {
                    role: g.role,
                    origin,
                },
            };
            add(g.account, g.kind, reason);
        }
        let mut accounts: Vec<EffectiveAccess> = by_account.into_values().collect();
        accounts.sort_by(|a, b| b.role.cmp(&a.role).then_with(|| a.account.cmp(&b.account)));
        Ok(EffectivePermissions {
            repo: r.name.clone(),
            public,
            anonymous: public && self.config.anonymous_access,
            accounts,
        })
    }

    /// An organization's default permissions (Quay's prototypes), names resolved, for its
    /// administrators.
    pub async fn default_permissions(
        &self,
        actor: &Actor,
        org: &str,
    ) -> Result<Vec<DefaultPermView>> {
        let o = self.org_admin(actor, org).await?;
        let mut out = Vec::new();
        for row in self.db.default_perms(o.id).await? {
            out.push(self.default_perm_view(row).await?);
        }
        Ok(out)
    }

    /// One default permission, names resolved (after it was created or changed).
    pub async fn default_permission(
        &self,
        actor: &Actor,
        org: &str,
        uuid: &str,
    ) -> Result<DefaultPermView> {
        self.default_permissions(actor, org)
            .await?
            .into_iter()
            .find(|p| p.perm.uuid == uuid)
            .ok_or_else(|| Error::not_found(format!("no default permission {uuid:?}")))
    }

    async fn default_perm_view(&self, row: DefaultPermRow) -> Result<DefaultPermView> {
        let account = |id: i64| async move {
            Ok::<_, Error>(
                self.db
                    .account_by_id(id)
                    .await?
                    .map(|a| (a.name, GranteeKind::from(a.kind))),
            )
        };
        let activating = match row.activating_id {
            Some(id) => account(id).await?,
            None => None,
        };
        let delegate = match row.delegate {
            Grantee::Account(id) => account(id).await?,
            Grantee::Team(id) => self
                .db
                .teams_of_org(row.org_id)
                .await?
                .into_iter()
                .find(|t| t.id == id)
                .map(|t| (t.name, GranteeKind::Team)),
        };
        Ok(DefaultPermView {
            perm: DefaultPerm::from(&row),
            activating,
            delegate,
        })
    }

    /// Makes a team follow an OIDC groups claim or an LDAP group, or stops it; superusers who
    /// administer the organization only. Audited as Quay does (`org_team_sync_enable` /
    /// `org_team_sync_disable`). Answers the team as it now is.
    pub async fn set_team_sync(
        &self,
        actor: &Actor,
        org: &str,
        team: &str,
        sync: TeamSync<'_>,
    ) -> Result<Team> {
        let service = match sync {
            TeamSync::Oidc { service, .. } => Some(self.oidc_sync_service(service)?),
            _ => None,
        };
        let o = self.org_admin(actor, org).await?;
        if !actor.superuser || !actor.has_scope("super:user") {
            return Err(Error::denied("only superusers may set up team syncing"));
        }
        let t = self.team(&o, team).await?;
        let (kind, meta) = match (sync, service) {
            (TeamSync::Oidc { group, .. }, Some(service)) => {
                self.db.set_team_sync(t.id, Some((&service, group))).await?;
                (
                    "org_team_sync_enable",
                    serde_json::json!({"team": team, "service": service, "config": {"group_name": group}}),
                )
            }
            (TeamSync::Ldap { group_dn }, _) => {
                let group = self.ldap_sync_group(team, group_dn).await?;
                self.db
                    .set_team_sync(t.id, Some((super::ldap::SERVICE, &group)))
                    .await?;
                (
                    "org_team_sync_enable",
                    serde_json::json!({"team": team, "service": super::ldap::SERVICE, "config": {"group_dn": group}}),
                )
            }
            (TeamSync::Off | TeamSync::Oidc { .. }, _) => {
                self.db.set_team_sync(t.id, None).await?;
                ("org_team_sync_disable", serde_json::json!({"team": team}))
            }
        };
        self.audit
            .record(
                super::AuditEntry::new(kind)
                    .by(Some(actor))
                    .namespace(org)
                    .meta(meta),
            )
            .await;
        self.team(&o, team).await
    }

    /// The OIDC login service a synced team follows: the one named, or the only one.
    fn oidc_sync_service(&self, named: Option<&str>) -> Result<String> {
        let ids: Vec<&str> = self.oidc.providers().map(|p| p.id.as_str()).collect();
        match named {
            Some(s) if ids.contains(&s) => Ok(s.to_string()),
            None if ids.len() == 1 => Ok(ids[0].to_string()),
            _ => Err(Error::invalid(format!(
                "group_name needs \"service\": one of the configured OIDC login services ({})",
                ids.join(", ")
            ))),
        }
    }

    /// The robots of a namespace, for those who administer it, each with its token when
    /// `with_tokens` (Quay's `token=true`).
    pub async fn robots_in(
        &self,
        actor: &Actor,
        namespace: &str,
        with_tokens: bool,
    ) -> Result<Vec<(Account, Option<String>)>> {
        let owner = self.robot_owner(actor, namespace).await?;
        Ok(self
            .db
            .robots_of(owner.id)
            .await?
            .into_iter()
            .map(|r| {
                let token = with_tokens.then(|| self.robot_token(&r));
                (r.into(), token)
            })
            .collect())
    }

    /// The names of the teams an account is in.
    pub async fn team_names_of(&self, account: &Account) -> Result<Vec<String>> {
        Ok(self
            .db
            .teams_of_account(account.id)
            .await?
            .into_iter()
            .map(|(_, t)| t.name)
            .collect())
    }

    /// The calling user's app-specific tokens.
    pub async fn app_tokens(&self, actor: &Actor) -> Result<Vec<AppToken>> {
        Ok(all(self.db.app_tokens_of(actor.id).await?))
    }

    /// One of the calling user's app-specific tokens, with its secret (Quay shows it again to
    /// its owner; `None` if it cannot be unsealed, e.g. after `DATABASE_SECRET_KEY` changed).
    pub async fn app_token(&self, actor: &Actor, uuid: &str) -> Result<(AppToken, Option<String>)> {
        let row = self
            .db
            .app_token(actor.id, uuid)
            .await?
            .ok_or_else(|| Error::not_found("no such app-specific token"))?;
        let code = self.sealer.open_string(&row.token_sealed);
        Ok((row.into(), code))
    }

    /// The calling user's API tokens.
    pub async fn api_tokens(&self, actor: &Actor) -> Result<Vec<ApiToken>> {
        Ok(all(self.db.api_tokens_of(actor.id).await?))
    }

    /// An organization's OAuth applications, for its administrators.
    pub async fn oauth_apps(&self, actor: &Actor, org: &str) -> Result<Vec<OAuthApp>> {
        let o = self.org_admin(actor, org).await?;
        Ok(self
            .db
            .oauth_apps(o.id)
            .await?
            .into_iter()
            .map(|a| self.app_view(a))
            .collect())
    }

    /// The API tokens minted through an application, each with its creator's name, for the
    /// organization's administrators.
    pub async fn oauth_app_tokens(
        &self,
        actor: &Actor,
        org: &str,
        client_id: &str,
    ) -> Result<Vec<(ApiToken, Option<String>)>> {
        let app = self.oauth_app(actor, org, client_id).await?;
        let mut out = Vec::new();
        for t in self.db.api_tokens_of_app(&app.client_id).await? {
            let creator = match t.created_by {
                Some(id) => self.db.account_by_id(id).await?.map(|a| a.name),
                None => None,
            };
            out.push((t.into(), creator));
        }
        Ok(out)
    }

    /// The registry-token signing keys, for superusers.
    pub async fn service_keys(&self, actor: &Actor) -> Result<Vec<ServiceKey>> {
        require_superuser(actor)?;
        Ok(all(self.db.service_keys().await?))
    }

    /// Makes a new signing key current (the old one verifies until it expires); superusers
    /// only, audited as `service_key_create`. Answers the new key's id.
    pub async fn rotate_service_key(&self, actor: &Actor) -> Result<String> {
        require_superuser(actor)?;
        let kid = self.keys.rotate(&self.config.service).await?;
        self.audit
            .record(
                super::AuditEntry::new("service_key_create")
                    .by(Some(actor))
                    .meta(serde_json::json!({"kid": kid})),
            )
            .await;
        Ok(kid)
    }

    /// Deletes a signing key (tokens it signed stop verifying) and makes sure a current key
    /// remains; superusers only, audited as `service_key_delete`.
    pub async fn delete_service_key(&self, actor: &Actor, kid: &str) -> Result<()> {
        require_superuser(actor)?;
        if !self.db.delete_service_key(kid).await? {
            return Err(Error::not_found(format!("no signing key {kid:?}")));
        }
        self.keys.ensure(&self.config.service).await?;
        self.audit
            .record(
                super::AuditEntry::new("service_key_delete")
                    .by(Some(actor))
                    .meta(serde_json::json!({"kid": kid})),
            )
            .await;
        Ok(())
    }

    /// A page of the audit log of `scope`, if `actor` may read it: a repository's for its
    /// administrators, an organization's for its administrators, the caller's own namespace
    /// (with `user:admin`), everything for superusers. `q`'s namespace and repository are set
    /// from the scope.
    pub async fn audit_log(
        &self,
        actor: &Actor,
        scope: LogScope<'_>,
        q: &AuditQuery<'_>,
    ) -> Result<Vec<AuditRecord>> {
        let mut name = String::new();
        let q = self.scoped(actor, scope, q, &mut name).await?;
        self.audit_page(&q).await
    }

    /// The scope's checked query (see [`Auth::audit_log`]): the filters with the scope's
    /// namespace or repository put in, after the caller's right to read that log is checked.
    async fn scoped<'q>(
        &self,
        actor: &'q Actor,
        scope: LogScope<'q>,
        q: &AuditQuery<'q>,
        name: &'q mut String,
    ) -> Result<AuditQuery<'q>> {
        let mut q = q.clone();
        match scope {
            LogScope::Repository(repo) => {
                *name = self
                    .repo_with_role(Some(actor), repo, super::Role::Admin)
                    .await?
                    .name;
                q.namespace = None;
                q.repository = Some(name);
            }
            LogScope::Organization(org) => {
                *name = self.org_admin(actor, org).await?.name;
                q.namespace = Some(name);
                q.repository = None;
            }
            LogScope::User => {
                if actor.kind != AccountKind::User || !actor.has_scope("user:admin") {
                    return Err(Error::denied(
                        "needs a user's credentials with the user:admin scope",
                    ));
                }
                q.namespace = Some(&actor.name);
                q.repository = None;
            }
            LogScope::Everything => {
                require_superuser(actor)?;
                q.namespace = None;
                q.repository = None;
            }
        }
        Ok(q)
    }

    /// Entries per day and kind of a log (Quay's aggregated logs), oldest day first: what the
    /// reader of [`Auth::audit_log`] may read, counted by the database.
    pub async fn audit_counts(
        &self,
        actor: &Actor,
        scope: LogScope<'_>,
        q: &AuditQuery<'_>,
    ) -> Result<Vec<AuditCount>> {
        let mut name = String::new();
        let q = self.scoped(actor, scope, q, &mut name).await?;
        self.audit.flush().await;
        Ok(self
            .db
            .audit_counts(&q.db())
            .await?
            .into_iter()
            .map(|(day, kind, count)| AuditCount { day, kind, count })
            .collect())
    }

    /// Every entry of a log in the query's range, newest first, for an export: at most
    /// `cap` entries; `true` with them if there were more (narrow the range for the rest).
    pub async fn audit_export(
        &self,
        actor: &Actor,
        scope: LogScope<'_>,
        q: &AuditQuery<'_>,
        cap: usize,
    ) -> Result<(Vec<AuditRecord>, bool)> {
        let mut name = String::new();
        let mut q = self.scoped(actor, scope, q, &mut name).await?;
        q.limit = 1000;
        let mut out = Vec::new();
        loop {
            let rows = self.audit_page(&q).await?;
            let full = rows.len() as i64 == q.limit;
            q.before_id = rows.last().map(|r| r.id);
            out.extend(rows);
            if out.len() >= cap {
                let more = out.len() > cap || full;
                out.truncate(cap);
                return Ok((out, more));
            }
            if !full {
                return Ok((out, false));
            }
        }
    }

    /// A page of the audit log; buffered entries (pulls) are written first, so the page
    /// includes everything up to now. No access check: callers go through [`Auth::audit_log`].
    pub(crate) async fn audit_page(&self, q: &AuditQuery<'_>) -> Result<Vec<AuditRecord>> {
        self.audit.flush().await;
        Ok(all(self.db.query_audit(&q.db()).await?))
    }
}

impl Auth {
    /// Makes sure the repository a push goes to exists, creating it on the first push as an
    /// account creates one through the API (private, the organization's default permissions,
    /// admin for its creator, audited) — so the creator's rights exist before any content does.
    /// Anonymous callers cannot create repositories.
    pub async fn repo_for_push(
        &self,
        claims: &super::Claims,
        name: &berth_oci::RepoName,
        ip: Option<&str>,
    ) -> Result<()> {
        if self.db.repo_id(name.as_str()).await?.is_some() {
            return Ok(());
        }
        let Some(id) = claims.context.account_id else {
            return Err(Error::denied(
                "anonymous callers cannot create repositories",
            ));
        };
        let row = self
            .db
            .account_by_id(id)
            .await?
            .ok_or_else(|| Error::denied("the token's account no longer exists"))?;
        let actor = self.actor(&Account::from(&row), "registry_token");
        match self
            .create_repo(&actor, name.as_str(), "private", None, ip)
            .await
        {
            Ok(_) | Err(Error::AlreadyExists(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// A signed registry token and when it was made.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub token: String,
    /// Lifetime in seconds.
    pub expires_in: i64,
    /// Unix seconds.
    pub issued_at: i64,
}

impl Auth {
    /// A registry token for `actor` (anonymous: `None`) carrying what it may do of `scopes`
    /// (`repository:NAME:ACTIONS`, `registry:catalog:*`), signed with the current key.
    pub async fn issue_registry_token(
        &self,
        actor: Option<&Actor>,
        scopes: &[String],
    ) -> Result<IssuedToken> {
        let access = self.grant(actor, scopes).await?;
        let lifetime = self.config.token_lifetime_s;
        let claims = super::Claims::new(actor, &self.config.service, access, lifetime);
        let token = self.keys.sign(&self.config.service, &claims).await?;
        Ok(IssuedToken {
            token,
            expires_in: lifetime,
            issued_at: claims.iat,
        })
    }
}

#[cfg(test)]
mod effective_tests {
    use super::*;
    use crate::auth::{AuthConfig, Role};

    async fn auth() -> (tempfile::TempDir, Auth) {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = crate::Db::connect(
            &format!("sqlite://{}", dir.path().join("t.db").display()),
            4,
        )
        .await
        .expect("connect");
        db.migrate().await.expect("migrate");
        let auth = Auth::new(db, AuthConfig::default()).await.expect("auth");
        (dir, auth)
    }

    fn reasons_of(e: &EffectivePermissions, who: &str) -> (Role, Vec<AccessReason>) {
        let a = e
            .accounts
            .iter()
            .find(|a| a.account == who)
            .unwrap_or_else(|| panic!("{who} is not in {e:?}"));
        (a.role, a.reasons.clone())
    }

    /// Every rule shows up with its origin, and every account's role is the one the access
    /// rule itself decides for it.
    #[tokio::test]
    async fn effective_permissions_name_each_rule_and_agree_with_the_access_rule() {
        let (_dir, auth) = auth().await;
        let user = |name: &'static str| {
            let auth = auth.clone();
            async move {
                let row = auth
                    .create_user(None, name, None, None, name == "root")
                    .await
                    .expect("user");
                auth.actor(&row, "password")
            }
        };
        let alice = user("alice").await;
        let bob = user("bob").await;
        user("carol").await;
        user("dave").await;
        user("root").await;
        auth.create_org(&alice, "acme", None).await.expect("org");
        auth.set_team(&alice, "acme", "devs", "member", None)
            .await
            .expect("team");
        auth.add_team_member(&alice, "acme", "devs", "bob")
            .await
            .expect("member");
        auth.create_default_perm(&alice, "acme", None, "carol", false, "write")
            .await
            .expect("default permission");
        auth.create_robot(&alice, "acme", "ci", None, None)
            .await
            .expect("robot");
        auth.create_repo(&alice, "acme/app", "private", None, None)
            .await
            .expect("repo");
        auth.set_permission(&alice, "acme/app", "devs", true, "write")
            .await
            .expect("team permission");
        auth.set_permission(&alice, "acme/app", "acme+ci", false, "read")
            .await
            .expect("robot permission");

        let e = auth
            .effective_permissions(&alice, "acme/app")
            .await
            .expect("effective");
        assert!(!e.public);
        assert_eq!(
            reasons_of(&e, "alice"),
            (
                Role::Admin,
                vec![AccessReason::OrgAdminTeam {
                    team: "owners".into()
                }]
            )
        );
        assert_eq!(
            reasons_of(&e, "root"),
            (Role::Admin, vec![AccessReason::Superuser])
        );
        assert_eq!(
            reasons_of(&e, "bob"),
            (
                Role::Write,
                vec![AccessReason::Team {
                    team: "devs".into(),
                    role: Role::Write,
                    origin: GrantOrigin::Set
                }]
            )
        );
        let (carol_role, carol) = reasons_of(&e, "carol");
        assert_eq!(carol_role, Role::Write);
        assert!(
            matches!(&carol[..], [AccessReason::Direct { role: Role::Write, origin: GrantOrigin::DefaultPermission(u) }] if !u.is_empty()),
            "{carol:?}"
        );
        assert_eq!(
            reasons_of(&e, "acme+ci"),
            (
                Role::Read,
                vec![AccessReason::Direct {
                    role: Role::Read,
                    origin: GrantOrigin::Set
                }]
            )
        );
        assert!(e.accounts.iter().all(|a| a.account != "dave"));
        let order: Vec<&str> = e.accounts.iter().map(|a| a.account.as_str()).collect();
        assert_eq!(order, ["alice", "root", "bob", "carol", "acme+ci"]);
        for a in &e.accounts {
            let decided = auth
                .effective_role(&alice, "acme/app", &a.account)
                .await
                .expect("effective role");
            assert_eq!(decided, Some(a.role), "{}", a.account);
        }

        // Changing a permission by hand changes the role and its origin.
        auth.set_permission(&alice, "acme/app", "carol", false, "read")
            .await
            .expect("change");
        let e = auth
            .effective_permissions(&alice, "acme/app")
            .await
            .expect("effective");
        assert_eq!(
            reasons_of(&e, "carol"),
            (
                Role::Read,
                vec![AccessReason::Direct {
                    role: Role::Read,
                    origin: GrantOrigin::Set
                }]
            )
        );

        // A public repository: everyone reads, so a reader's role stays read.
        auth.set_visibility(&alice, "acme/app", "public")
            .await
            .expect("public");
        let e = auth
            .effective_permissions(&alice, "acme/app")
            .await
            .expect("effective");
        assert!(e.public && e.anonymous);
        assert_eq!(reasons_of(&e, "carol").0, Role::Read);

        // Only the repository's administrators may see it.
        assert!(matches!(
            auth.effective_permissions(&bob, "acme/app").await,
            Err(Error::Denied(_))
        ));
    }
}
