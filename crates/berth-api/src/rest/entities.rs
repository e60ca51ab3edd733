//! Autocomplete of users, robots, teams and organizations (Quay's `/entities`), and an
//! organization's outside collaborators.

use super::views::Entity;
use super::{Ctx, Reply, RestError, Route, route};
use crate::AppState;
use berth_core::auth::AccountKind;
use serde::Serialize;
use std::sync::Arc;
use utoipa::ToSchema;

type Res<T> = Result<T, RestError>;

pub fn routes() -> Vec<Route> {
    vec![
        route!(GET "/api/v1/entities/{prefix}", "Users, robots, teams and organizations whose name starts with a prefix", "user:read",
            entities() -> Reply<Entities>, query &["namespace", "includeTeams", "includeOrgs"]),
        route!(GET "/api/v1/organization/{orgname}/collaborators", "Accounts with permissions on the organization's repositories but in none of its teams", "org:admin",
            collaborators() -> Reply<Collaborators>),
    ]
}

#[derive(Serialize, ToSchema)]
pub struct Entities {
    pub results: Vec<Entity>,
}

/// An outside collaborator and the repositories they have permissions on.
#[derive(Serialize, ToSchema)]
pub struct Collaborator {
    #[serde(flatten)]
    pub entity: Entity,
    pub repositories: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Collaborators {
    pub collaborators: Vec<Collaborator>,
}

async fn entities(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<Entities>> {
    let a = ctx.actor()?;
    if !a.has_scope("user:read") {
        return Err(RestError::new(403, "this token lacks the user:read scope"));
    }
    let prefix = ctx.p("prefix");
    let namespace = ctx.q("namespace");
    let mut results = Vec::new();
    for r in st.auth.search_accounts(prefix, 50).await? {
        match r.kind {
            // Robots are private to their namespace: listed only within it, to its administrators.
            AccountKind::Robot => {
                let Some(ns) = namespace.filter(|ns| r.name.starts_with(&format!("{ns}+"))) else {
                    continue;
                };
                if st.auth.robot_owner(a, ns).await.is_err() {
                    continue;
                }
            }
            AccountKind::Org if !ctx.q_bool("includeOrgs", false) => continue,
            _ => {}
        }
        results.push(Entity::new(&r.name, r.kind.as_str()));
    }
    if ctx.q_bool("includeTeams", false)
        && let Some(ns) = namespace
        && let Ok(o) = st.auth.org(ns).await
        && st.auth.org_role(a, &o).await?.member
    {
        for t in st.auth.org_teams(&o).await? {
            if t.name.starts_with(prefix) {
                results.push(Entity::new(&t.name, "team"));
            }
        }
    }
    Ok(Reply::new(Entities { results }))
}

async fn collaborators(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<Collaborators>> {
    let mut out: Vec<Collaborator> = Vec::new();
    for p in st
        .auth
        .outside_collaborators(ctx.actor()?, ctx.p("orgname"))
        .await?
    {
        match out.iter_mut().find(|c| c.entity.name == p.grantee) {
            Some(c) => c.repositories.push(p.repo.clone()),
            None => out.push(Collaborator {
                entity: Entity::new(&p.grantee, p.grantee_kind.as_str()),
                repositories: vec![p.repo.clone()],
            }),
        }
    }
    Ok(Reply::new(Collaborators { collaborators: out }))
}
