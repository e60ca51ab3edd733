//! Autocomplete of users, robots, teams and organizations (Quay's `/entities`), and an
//! organization's outside collaborators.

use super::{Ctx, R, RestError, Route, entity, json, route};
use crate::AppState;
use berth_core::auth::AccountKind;
use std::sync::Arc;

pub fn routes() -> Vec<Route> {
    vec![
        route!(GET "/api/v1/entities/{prefix}", "Users, robots, teams and organizations whose name starts with a prefix", "user:read",
            query &["namespace", "includeTeams", "includeOrgs"], entities),
        route!(GET "/api/v1/organization/{orgname}/collaborators", "Accounts with permissions on the organization's repositories but in none of its teams", "org:admin", collaborators),
    ]
}

async fn entities(st: Arc<AppState>, ctx: Ctx) -> R {
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
        results.push(entity(&r.name, r.kind.as_str()));
    }
    if ctx.q_bool("includeTeams", false)
        && let Some(ns) = namespace
        && let Ok(o) = st.auth.org(ns).await
        && st.auth.org_role(a, &o).await?.member
    {
        for t in st.auth.org_teams(&o).await? {
            if t.name.starts_with(prefix) {
                results.push(entity(&t.name, "team"));
            }
        }
    }
    json(serde_json::json!({"results": results}))
}

async fn collaborators(st: Arc<AppState>, ctx: Ctx) -> R {
    let mut out: Vec<serde_json::Value> = Vec::new();
    for p in st
        .auth
        .outside_collaborators(ctx.actor()?, ctx.p("orgname"))
        .await?
    {
        if let Some(c) = out.iter_mut().find(|c| c["name"] == p.grantee.as_str()) {
            if let Some(r) = c["repositories"].as_array_mut() {
                r.push(p.repo.clone().into());
            }
            continue;
        }
        let mut e = entity(&p.grantee, &p.grantee_kind);
        e["repositories"] = serde_json::json!([p.repo]);
        out.push(e);
    }
    json(serde_json::json!({"collaborators": out}))
}
