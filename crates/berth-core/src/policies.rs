//! Policies that live at a scope — a namespace's own (they cover every repository in it) or one
//! repository's — of either kind: immutability policies and auto-prune policies.
//!
//! One door for both kinds at all three path levels: [`Auth::policy_scope`] turns the caller and
//! the level a path names ([`Level`]) into a [`Scope`], which is the access check; [`Policies`]
//! lists, gets, creates, changes and deletes policies of any [`ScopedPolicy`] kind there. Each
//! change is one transaction holding the row, its audit record and the kind's consequence inside
//! the database (immutability: tags the policy now protects lose their expiry); consequences
//! outside it run after the commit (auto-prune: the policy is applied soon, in the background).

mod autoprune;
mod immutability;

pub use autoprune::{AutoPruneFields, AutoPrunePolicy};
pub use immutability::{ImmutabilityFields, ImmutabilityPolicy, ImmutabilityRules};

use crate::auth::{AccountKind, Actor, Auth, Role};
use crate::autoprune::{PruneItem, PrunePlan};
use crate::caller::{Caller, record_in};
use crate::{Error, Registry, Result};

/// The level of a policy path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level<'a> {
    /// `/organization/{orgname}/…`: the organization's own policies; needs its administrator.
    Organization(&'a str),
    /// `/user/…`: the calling user's namespace; needs a user with the `user:admin` scope.
    User,
    /// `/repository/{repository}/…`: one repository's own policies; needs admin on it.
    Repository(&'a str),
}

/// Where a policy lives. Only [`Auth::policy_scope`] makes one, so holding a scope means the
/// caller was allowed there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    namespace: String,
    repository: Option<String>,
}

impl Scope {
    pub fn namespace(&self) -> &str {
        &self.namespace
    }
    /// `None`: the namespace's own policies.
    pub fn repository(&self) -> Option<&str> {
        self.repository.as_deref()
    }
}

impl Auth {
    /// The scope a policy path names, if `actor` may manage policies there: an organization's
    /// administrator (with `org:admin`), the user itself (with `user:admin`), a repository's
    /// administrator.
    pub async fn policy_scope(&self, actor: &Actor, at: &Level<'_>) -> Result<Scope> {
        match at {
            Level::Organization(org) => Ok(Scope {
                namespace: self.org_admin(actor, org).await?.name,
                repository: None,
            }),
            Level::User => {
                if actor.kind != AccountKind::User || !actor.has_scope("user:admin") {
                    return Err(Error::denied(
                        "needs a user's credentials with the user:admin scope",
                    ));
                }
                Ok(Scope {
                    namespace: actor.name.clone(),
                    repository: None,
                })
            }
            Level::Repository(repo) => {
                let r = self.repo_with_role(Some(actor), repo, Role::Admin).await?;
                Ok(Scope {
                    namespace: r.namespace,
                    repository: Some(r.name),
                })
            }
        }
    }
}

/// A change to a policy, as audit kinds name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Create,
    Update,
    Delete,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Create => "create",
            Verb::Update => "update",
            Verb::Delete => "delete",
        }
    }
}

/// A kind of policy that lives at a [`Scope`]. Implemented by [`crate::ImmutabilityPolicy`]
/// and [`crate::AutoPrunePolicy`]; its storage is sealed inside this crate.
pub trait ScopedPolicy: store::Store + Clone + Send + Sync + 'static {
    /// What messages call one: `immutability policy`.
    const NOUN: &'static str;
    /// What a caller gives to create a policy or replace its settings; validated by core.
    type Fields: Send;
    fn uuid(&self) -> &str;
    /// The policy as the API shows it and its audit records describe it.
    fn to_json(&self) -> serde_json::Value;
}

pub(crate) mod store {
    use super::{Scope, Verb};
    use crate::{Registry, Result};
    use berth_db::WriteTx;
    use std::future::Future;

    /// How a policy kind is validated, stored and audited. Public in name only (the module is
    /// private): callers go through [`super::Policies`].
    pub trait Store: Sized {
        /// Checks `fields` and makes the policy they describe at `scope`.
        fn build(
            scope: &Scope,
            uuid: String,
            fields: <Self as super::ScopedPolicy>::Fields,
        ) -> Result<Self>
        where
            Self: super::ScopedPolicy;
        /// The audit kind of a change at `scope`.
        fn audit_kind(verb: Verb, scope: &Scope) -> String;
        /// The metadata of a deletion's audit record.
        fn deleted_meta(&self) -> serde_json::Value;
        /// The policies defined at `scope`, oldest first.
        fn list_at(reg: &Registry, scope: &Scope)
        -> impl Future<Output = Result<Vec<Self>>> + Send;
        fn insert(
            reg: &Registry,
            w: &mut WriteTx,
            p: &Self,
        ) -> impl Future<Output = Result<()>> + Send;
        /// `false` if no such policy exists at its scope.
        fn update(
            reg: &Registry,
            w: &mut WriteTx,
            p: &Self,
        ) -> impl Future<Output = Result<bool>> + Send;
        /// The deleted policy; `None` if there was none.
        fn delete(
            reg: &Registry,
            w: &mut WriteTx,
            scope: &Scope,
            uuid: &str,
        ) -> impl Future<Output = Result<Option<Self>>> + Send;
        /// Inside a create's or update's transaction, after the row changed.
        fn changed(
            reg: &Registry,
            w: &mut WriteTx,
            scope: &Scope,
        ) -> impl Future<Output = Result<()>> + Send;
        /// After a create or update committed.
        fn committed(reg: &Registry, p: &Self);
    }
}

/// What an immutability policy would protect ([`Policies::immutability_preview`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImmutabilityPreview {
    /// Live tags in its scope.
    pub live: i64,
    /// Of those, the ones it would make immutable.
    pub protected: i64,
    /// The first of them, `repository:tag`.
    pub sample: Vec<String>,
}

/// A tag-name pattern of a policy: at most 256 characters, and a regular expression.
pub(crate) fn check_tag_pattern(pattern: &str) -> Result<()> {
    if pattern.len() > 256 {
        return Err(Error::invalid("tagPattern is longer than 256 characters"));
    }
    regex::Regex::new(pattern)
        .map_err(|e| Error::invalid(format!("tagPattern is not a regular expression: {e}")))?;
    Ok(())
}

/// The policy use cases, for any [`ScopedPolicy`] kind at any [`Level`]. Cheap: make one per
/// request.
#[derive(Clone, Copy)]
pub struct Policies<'a> {
    registry: &'a Registry,
    auth: &'a Auth,
}

impl<'a> Policies<'a> {
    pub fn new(registry: &'a Registry, auth: &'a Auth) -> Policies<'a> {
        Policies { registry, auth }
    }

    /// The policies defined at the level, oldest first.
    pub async fn list<P: ScopedPolicy>(&self, actor: &Actor, at: &Level<'_>) -> Result<Vec<P>> {
        let scope = self.auth.policy_scope(actor, at).await?;
        P::list_at(self.registry, &scope).await
    }

    /// One policy defined at the level.
    pub async fn get<P: ScopedPolicy>(
        &self,
        actor: &Actor,
        at: &Level<'_>,
        uuid: &str,
    ) -> Result<P> {
        let scope = self.auth.policy_scope(actor, at).await?;
        P::list_at(self.registry, &scope)
            .await?
            .into_iter()
            .find(|p| p.uuid() == uuid)
            .ok_or_else(|| missing::<P>(uuid))
    }

    /// Creates a policy at the level.
    pub async fn create<P: ScopedPolicy>(
        &self,
        caller: Caller<'_>,
        at: &Level<'_>,
        fields: P::Fields,
    ) -> Result<P> {
        let scope = self.auth.policy_scope(caller.actor, at).await?;
        let p = P::build(&scope, uuid::Uuid::new_v4().to_string(), fields)?;
        let db = &self.registry.db;
        let mut w = db.write().await?;
        P::insert(self.registry, &mut w, &p).await?;
        P::changed(self.registry, &mut w, &scope).await?;
        record_in(db, &mut w, audit(caller, Verb::Create, &scope, &p)).await?;
        w.commit().await?;
        P::committed(self.registry, &p);
        Ok(p)
    }

    /// Replaces the settings of a policy defined at the level.
    pub async fn update<P: ScopedPolicy>(
        &self,
        caller: Caller<'_>,
        at: &Level<'_>,
        uuid: &str,
        fields: P::Fields,
    ) -> Result<P> {
        let scope = self.auth.policy_scope(caller.actor, at).await?;
        let p = P::build(&scope, uuid.to_string(), fields)?;
        let db = &self.registry.db;
        let mut w = db.write().await?;
        if !P::update(self.registry, &mut w, &p).await? {
            return Err(missing::<P>(uuid));
        }
        P::changed(self.registry, &mut w, &scope).await?;
        record_in(db, &mut w, audit(caller, Verb::Update, &scope, &p)).await?;
        w.commit().await?;
        P::committed(self.registry, &p);
        Ok(p)
    }

    /// Deletes a policy defined at the level; answers it as it was.
    pub async fn delete<P: ScopedPolicy>(
        &self,
        caller: Caller<'_>,
        at: &Level<'_>,
        uuid: &str,
    ) -> Result<P> {
        let scope = self.auth.policy_scope(caller.actor, at).await?;
        let db = &self.registry.db;
        let mut w = db.write().await?;
        let p = P::delete(self.registry, &mut w, &scope, uuid)
            .await?
            .ok_or_else(|| missing::<P>(uuid))?;
        let entry = caller
            .audit(&P::audit_kind(Verb::Delete, &scope))
            .scope(&scope.namespace, scope.repository())
            .meta(p.deleted_meta());
        record_in(db, &mut w, entry).await?;
        w.commit().await?;
        Ok(p)
    }

    /// What an auto-prune policy defined at the level would delete now, and the bytes that
    /// would free.
    pub async fn prune_dry_run(
        &self,
        actor: &Actor,
        at: &Level<'_>,
        uuid: &str,
    ) -> Result<PrunePlan> {
        let p: AutoPrunePolicy = self.get(actor, at, uuid).await?;
        self.registry.prune_plan(&p).await
    }

    /// What an auto-prune policy with `fields` at the level would delete now and free, before
    /// it exists (the form's live preview). Validated as a create would be; nothing is stored.
    pub async fn prune_preview(
        &self,
        actor: &Actor,
        at: &Level<'_>,
        fields: AutoPruneFields,
    ) -> Result<PrunePlan> {
        let scope = self.auth.policy_scope(actor, at).await?;
        let p = <AutoPrunePolicy as store::Store>::build(&scope, String::new(), fields)?;
        self.registry.prune_plan(&p).await
    }

    /// Which live tags an immutability policy with `fields` at the level would protect, before
    /// it exists: how many of how many, and the first few (`repository:tag`).
    pub async fn immutability_preview(
        &self,
        actor: &Actor,
        at: &Level<'_>,
        fields: ImmutabilityFields,
    ) -> Result<ImmutabilityPreview> {
        let scope = self.auth.policy_scope(actor, at).await?;
        let p = <ImmutabilityPolicy as store::Store>::build(&scope, String::new(), fields)?;
        let re = regex::Regex::new(&p.pattern)
            .map_err(|e| Error::invalid(format!("tagPattern is not a regular expression: {e}")))?;
        let mut out = ImmutabilityPreview::default();
        for (id, repo) in self
            .registry
            .db
            .repos_in_scope(&p.namespace, p.repository.as_deref())
            .await?
        {
            let live = self
                .registry
                .db
                .live_tag_names(id, &berth_db::LiveTagFilter::default())
                .await?;
            for berth_db::LiveTagKey { name: tag, .. } in live {
                out.live += 1;
                if re.is_match(&tag) == p.matches {
                    out.protected += 1;
                    if out.sample.len() < 20 {
                        out.sample.push(format!("{repo}:{tag}"));
                    }
                }
            }
        }
        Ok(out)
    }

    /// Applies an auto-prune policy defined at the level now; answers the tags it deleted
    /// (each recorded as an `autoprune_tag_delete` event).
    pub async fn prune_now(
        &self,
        actor: &Actor,
        at: &Level<'_>,
        uuid: &str,
    ) -> Result<Vec<PruneItem>> {
        let p: AutoPrunePolicy = self.get(actor, at, uuid).await?;
        self.registry.prune_apply(&p).await
    }
}

fn missing<P: ScopedPolicy>(uuid: &str) -> Error {
    Error::not_found(format!("no {} {uuid:?}", P::NOUN))
}

fn audit<P: ScopedPolicy>(
    caller: Caller<'_>,
    verb: Verb,
    scope: &Scope,
    p: &P,
) -> crate::auth::AuditEntry {
    caller
        .audit(&P::audit_kind(verb, scope))
        .scope(&scope.namespace, scope.repository())
        .meta(p.to_json())
}

#[cfg(test)]
mod tests;
