//! What the core's doors answer: the registry's entities as callers see them. These are the
//! core's own types, made from berth-db's rows at this boundary, so a change of schema changes
//! one `From` here and never a caller, and what a row holds that no caller may see (password
//! hashes, sealed tokens and keys) does not leave the core. Stored closed sets (kinds, roles,
//! visibility) are enums, decoded by berth-db; digests are [`Digest`]s.

use crate::{Error, Result};
use berth_db::{
    AccountKind, AccountRow, ApiTokenRow, AppTokenRow, AuditRow, DefaultPermRow, GranteeKind,
    LabelRow, LabelSource, OAuthAppRow, PermRow, RepoRow, Role, ServiceKeyRow, TagRow, TeamRole,
    TeamRow, Visibility,
};
use berth_oci::Digest;

/// A user, organization or robot.
#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    pub id: i64,
    pub name: String,
    pub kind: AccountKind,
    pub email: Option<String>,
    pub superuser: bool,
    pub enabled: bool,
    /// Whether a local password is set (the hash itself never leaves the core).
    pub has_password: bool,
    /// A robot's owning namespace account.
    pub owner_id: Option<i64>,
    pub description: Option<String>,
    /// A JSON object (a robot's `unstructured_metadata`).
    pub metadata: Option<String>,
    /// The namespace's time-machine window, if it sets one.
    pub tag_expiration_s: Option<i64>,
    pub failed_logins: i64,
    pub last_failed_at: Option<i64>,
    pub created_at: i64,
    pub last_accessed: Option<i64>,
}

impl From<AccountRow> for Account {
    fn from(r: AccountRow) -> Account {
        Account {
            id: r.id,
            name: r.name,
            kind: r.kind,
            email: r.email,
            superuser: r.superuser,
            enabled: r.enabled,
            has_password: r.password_hash.is_some(),
            owner_id: r.owner_id,
            description: r.description,
            metadata: r.metadata,
            tag_expiration_s: r.tag_expiration_s,
            failed_logins: r.failed_logins,
            last_failed_at: r.last_failed_at,
            created_at: r.created_at,
            last_accessed: r.last_accessed,
        }
    }
}

impl From<&AccountRow> for Account {
    fn from(r: &AccountRow) -> Account {
        Account::from(r.clone())
    }
}

/// A repository.
#[derive(Debug, Clone, PartialEq)]
pub struct Repository {
    pub id: i64,
    /// The full name, `namespace/path`.
    pub name: String,
    pub namespace: String,
    /// Whether the namespace is a user's or an organization's.
    pub namespace_kind: AccountKind,
    pub visibility: Visibility,
    pub description: Option<String>,
    pub created_at: i64,
    pub last_push_at: Option<i64>,
    pub last_pull_at: Option<i64>,
}

impl Repository {
    /// The name below the namespace (`app` of `acme/app`).
    pub fn short_name(&self) -> &str {
        self.name
            .strip_prefix(&self.namespace)
            .and_then(|s| s.strip_prefix('/'))
            .unwrap_or(&self.name)
    }
    pub fn is_public(&self) -> bool {
        self.visibility == Visibility::Public
    }
}

impl From<RepoRow> for Repository {
    fn from(r: RepoRow) -> Repository {
        Repository {
            id: r.id,
            name: r.name,
            namespace: r.namespace,
            namespace_kind: r.namespace_kind,
            visibility: r.visibility,
            description: r.description,
            created_at: r.created_at,
            last_push_at: r.last_push_at,
            last_pull_at: r.last_pull_at,
        }
    }
}

/// One span of a tag's history: the tag pointed at `manifest_digest` from `start_at` until
/// `end_at` (`None`: it still does).
#[derive(Debug, Clone, PartialEq)]
pub struct Tag {
    pub name: String,
    pub manifest_digest: Digest,
    pub start_at: i64,
    pub end_at: Option<i64>,
    pub expires_at: Option<i64>,
    /// `None` once the manifest has been collected.
    pub media_type: Option<String>,
    pub size: Option<i64>,
    /// Flagged immutable (a policy may protect it too; see `ImmutabilityRules`).
    pub immutable: bool,
}

impl Tag {
    /// A row whose digest does not parse is corrupt: an internal fault, not the caller's.
    pub(crate) fn from_row(r: TagRow) -> Result<Tag> {
        let manifest_digest = r
            .manifest_digest
            .parse()
            .map_err(|e| Error::Internal(format!("corrupt tag row {:?}: digest: {e}", r.name)))?;
        Ok(Tag {
            name: r.name,
            manifest_digest,
            start_at: r.start_at,
            end_at: r.end_at,
            expires_at: r.expires_at,
            media_type: r.media_type,
            size: r.size,
            immutable: r.immutable,
        })
    }

    pub(crate) fn from_rows(rows: Vec<TagRow>) -> Result<Vec<Tag>> {
        rows.into_iter().map(Tag::from_row).collect()
    }

    pub fn is_live(&self) -> bool {
        self.end_at.is_none()
    }
}

/// A team of an organization.
#[derive(Debug, Clone, PartialEq)]
pub struct Team {
    pub id: i64,
    pub org_id: i64,
    pub name: String,
    pub role: TeamRole,
    pub description: String,
    /// The directory the membership follows (`ldap`, `oidc`), if synced.
    pub sync_service: Option<String>,
    pub sync_group: Option<String>,
    pub member_count: i64,
    pub repo_count: i64,
}

impl From<TeamRow> for Team {
    fn from(r: TeamRow) -> Team {
        Team {
            id: r.id,
            org_id: r.org_id,
            name: r.name,
            role: r.role,
            description: r.description,
            sync_service: r.sync_service,
            sync_group: r.sync_group,
            member_count: r.member_count,
            repo_count: r.repo_count,
        }
    }
}

/// A label on a manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Label {
    pub id: String,
    pub key: String,
    pub value: String,
    pub media_type: String,
    pub source_type: LabelSource,
}

impl From<LabelRow> for Label {
    fn from(r: LabelRow) -> Label {
        Label {
            id: r.id,
            key: r.key,
            value: r.value,
            media_type: r.media_type,
            source_type: r.source_type,
        }
    }
}

/// One audit log entry.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    pub id: i64,
    pub at: i64,
    pub kind: String,
    pub performer: Option<String>,
    pub performer_kind: Option<String>,
    pub namespace: Option<String>,
    pub repository: Option<String>,
    pub ip: Option<String>,
    /// A JSON object.
    pub metadata: String,
}

impl From<AuditRow> for AuditRecord {
    fn from(r: AuditRow) -> AuditRecord {
        AuditRecord {
            id: r.id,
            at: r.at,
            kind: r.kind,
            performer: r.performer,
            performer_kind: r.performer_kind,
            namespace: r.namespace,
            repository: r.repository,
            ip: r.ip,
            metadata: r.metadata,
        }
    }
}

/// A permission on a repository: who holds which role.
#[derive(Debug, Clone, PartialEq)]
pub struct Permission {
    pub repo: String,
    pub repo_visibility: Visibility,
    pub grantee: String,
    pub grantee_kind: GranteeKind,
    pub role: Role,
}

impl From<PermRow> for Permission {
    fn from(r: PermRow) -> Permission {
        Permission {
            repo: r.repo,
            repo_visibility: r.repo_visibility,
            grantee: r.grantee,
            grantee_kind: r.grantee_kind,
            role: r.role,
        }
    }
}

/// An organization's default permission: the role `delegate` gets on each repository created
/// in it (by `activating` only, when set).
#[derive(Debug, Clone, PartialEq)]
pub struct DefaultPerm {
    pub uuid: String,
    pub role: Role,
}

impl From<&DefaultPermRow> for DefaultPerm {
    fn from(r: &DefaultPermRow) -> DefaultPerm {
        DefaultPerm {
            uuid: r.uuid.clone(),
            role: r.role,
        }
    }
}

/// An OAuth application of an organization, with its client secret (which Quay shows its
/// organization's administrators).
#[derive(Debug, Clone, PartialEq)]
pub struct OAuthApp {
    pub client_id: String,
    pub org_id: i64,
    pub name: String,
    pub description: String,
    pub application_uri: String,
    pub redirect_uri: String,
    pub avatar_email: Option<String>,
    pub client_secret: String,
    pub created_at: i64,
}

impl OAuthApp {
    pub(crate) fn new(r: OAuthAppRow, client_secret: String) -> OAuthApp {
        OAuthApp {
            client_id: r.client_id,
            org_id: r.org_id,
            name: r.name,
            description: r.description,
            application_uri: r.application_uri,
            redirect_uri: r.redirect_uri,
            avatar_email: r.avatar_email,
            client_secret,
            created_at: r.created_at,
        }
    }
}

/// A user's app-specific token, without its secret.
#[derive(Debug, Clone, PartialEq)]
pub struct AppToken {
    pub uuid: String,
    pub title: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_accessed: Option<i64>,
}

impl From<AppTokenRow> for AppToken {
    fn from(r: AppTokenRow) -> AppToken {
        AppToken {
            uuid: r.uuid,
            title: r.title,
            created_at: r.created_at,
            expires_at: r.expires_at,
            last_accessed: r.last_accessed,
        }
    }
}

/// An API (OAuth access) token, without its secret.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiToken {
    pub uuid: String,
    pub account_id: i64,
    pub name: String,
    /// Space-separated scopes.
    pub scopes: String,
    pub created_by: Option<i64>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_accessed: Option<i64>,
}

impl From<ApiTokenRow> for ApiToken {
    fn from(r: ApiTokenRow) -> ApiToken {
        ApiToken {
            uuid: r.uuid,
            account_id: r.account_id,
            name: r.name,
            scopes: r.scopes,
            created_by: r.created_by,
            created_at: r.created_at,
            expires_at: r.expires_at,
            last_accessed: r.last_accessed,
        }
    }
}

/// A registry-token signing key: its id and public half (the private half never leaves the
/// core).
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceKey {
    pub kid: String,
    pub service: String,
    pub public_key: String,
    pub created_at: i64,
    pub expires_at: i64,
}

impl From<ServiceKeyRow> for ServiceKey {
    fn from(r: ServiceKeyRow) -> ServiceKey {
        ServiceKey {
            kid: r.kid,
            service: r.service,
            public_key: r.public_key,
            created_at: r.created_at,
            expires_at: r.expires_at,
        }
    }
}

/// Converts every element (the rows of a listing).
pub(crate) fn all<R, T: From<R>>(rows: Vec<R>) -> Vec<T> {
    rows.into_iter().map(T::from).collect()
}

/// Which tag rows to list.
#[derive(Debug, Default, Clone)]
pub struct TagFilter<'a> {
    /// Exactly this tag name.
    pub name: Option<&'a str>,
    /// Names containing this text.
    pub contains: Option<&'a str>,
    pub only_active: bool,
    /// Only tags whose manifest has a label with this key (and, if given, this value).
    pub label: Option<(&'a str, Option<&'a str>)>,
}

impl<'a> TagFilter<'a> {
    pub(crate) fn db(&self) -> berth_db::TagFilter<'a> {
        berth_db::TagFilter {
            name: self.name,
            contains: self.contains,
            only_active: self.only_active,
            label: self.label,
        }
    }
}

/// Filters of an audit log query; every given field must match.
#[derive(Debug, Default, Clone)]
pub struct AuditQuery<'a> {
    pub namespace: Option<&'a str>,
    pub repository: Option<&'a str>,
    pub performer: Option<&'a str>,
    pub kind: Option<&'a str>,
    /// Inclusive lower and exclusive upper bound, milliseconds.
    pub from: i64,
    pub to: i64,
    /// Entries older than this id (pagination, newest first).
    pub before_id: Option<i64>,
    pub limit: i64,
}

impl<'a> AuditQuery<'a> {
    pub(crate) fn db(&self) -> berth_db::AuditQuery<'a> {
        berth_db::AuditQuery {
            namespace: self.namespace,
            repository: self.repository,
            performer: self.performer,
            kind: self.kind,
            from: self.from,
            to: self.to,
            before_id: self.before_id,
            limit: self.limit,
        }
    }
}

/// Who may do what with one repository, and why ([`crate::auth::Auth::effective_permissions`]).
#[derive(Debug, Clone)]
pub struct EffectivePermissions {
    pub repo: String,
    /// Everyone signed in may pull (a public repository).
    pub public: bool,
    /// Anonymous callers may pull too (public, and anonymous access is on).
    pub anonymous: bool,
    /// Every user and robot that holds a role by some rule, highest role first, then by name.
    pub accounts: Vec<EffectiveAccess>,
}

/// One account's role on a repository and every rule that gives it one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EffectiveAccess {
    pub account: String,
    pub kind: AccountKind,
    /// The highest role of its reasons (and of public read).
    pub role: Role,
    pub reasons: Vec<AccessReason>,
}

/// Why an account holds a role on a repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessReason {
    /// A superuser administers everything.
    Superuser,
    /// The user whose namespace the repository is in.
    NamespaceOwner,
    /// A member of an admin team of the namespace's organization.
    OrgAdminTeam { team: String },
    /// A member of a team holding a permission on the repository.
    Team {
        team: String,
        role: Role,
        origin: GrantOrigin,
    },
    /// A permission given to the account itself.
    Direct { role: Role, origin: GrantOrigin },
}

/// How a repository permission was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantOrigin {
    /// Set by an administrator (API or UI).
    Set,
    /// Given to the account that created the repository.
    Creator,
    /// Made at creation by the organization default permission with this uuid.
    DefaultPermission(String),
}

impl GrantOrigin {
    pub fn parse(origin: Option<&str>) -> GrantOrigin {
        match origin {
            Some("creator") => GrantOrigin::Creator,
            Some(o) => match o.strip_prefix("default:") {
                Some(uuid) => GrantOrigin::DefaultPermission(uuid.to_string()),
                None => GrantOrigin::Set,
            },
            None => GrantOrigin::Set,
        }
    }
}

impl AccessReason {
    /// The role this reason alone gives.
    pub fn role(&self) -> Role {
        match self {
            AccessReason::Team { role, .. } | AccessReason::Direct { role, .. } => *role,
            _ => Role::Admin,
        }
    }
}

impl std::fmt::Display for GrantOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GrantOrigin::Set => Ok(()),
            GrantOrigin::Creator => f.write_str(", as the repository's creator"),
            GrantOrigin::DefaultPermission(u) => write!(f, ", from default permission {u}"),
        }
    }
}

impl std::fmt::Display for AccessReason {
    /// One line for people and for the CSV export.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AccessReason::Superuser => f.write_str("superuser"),
            AccessReason::NamespaceOwner => f.write_str("owns the namespace"),
            AccessReason::OrgAdminTeam { team } => {
                write!(
                    f,
                    "member of team {team}, an admin team of the organization"
                )
            }
            AccessReason::Team { team, role, origin } => {
                write!(f, "member of team {team}, which has {role}{origin}")
            }
            AccessReason::Direct { role, origin } => write!(f, "granted {role}{origin}"),
        }
    }
}
