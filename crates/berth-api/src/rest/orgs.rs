//! Organizations, their members and teams, and default permissions ("prototypes").

use super::{Ctx, R, RestError, Route, avatar, created, entity, json, no_content, route};
use crate::AppState;
use berth_core::auth::Actor;
use berth_core::auth::views::{DefaultPermView, OrgMember, TeamSync};
use std::sync::Arc;

pub fn routes() -> Vec<Route> {
    vec![
        route!(POST "/api/v1/organization/", "Create an organization; the caller joins its owners team", "user:admin",
            body &["*name", "email"], create_org),
        route!(GET "/api/v1/organization/{orgname}", "An organization and its teams (members only)", "user:read", get_org),
        route!(PUT "/api/v1/organization/{orgname}", "Change an organization's email or tag expiration", "org:admin",
            body &["email", "tag_expiration_s:integer"], update_org),
        route!(DELETE "/api/v1/organization/{orgname}", "Delete an organization; its repositories go with it and are collected in the background", "org:admin", delete_org),
        route!(GET "/api/v1/organization/{orgname}/members", "Every member of any team", "org:admin", members),
        route!(GET "/api/v1/organization/{orgname}/members/{membername}", "One member and their teams", "org:admin", member),
        route!(DELETE "/api/v1/organization/{orgname}/members/{membername}", "Remove a member from every team", "org:admin", remove_member),
        route!(PUT "/api/v1/organization/{orgname}/team/{teamname}", "Create a team or change its role (member, creator, admin)", "org:admin",
            body &["*role", "description"], put_team),
        route!(DELETE "/api/v1/organization/{orgname}/team/{teamname}", "Delete a team (not owners)", "org:admin", delete_team),
        route!(GET "/api/v1/organization/{orgname}/team/{teamname}/members", "A team's members", "org:admin", team_members),
        route!(PUT "/api/v1/organization/{orgname}/team/{teamname}/members/{membername}", "Add a user or one of the organization's robots to a team", "org:admin", add_member),
        route!(DELETE "/api/v1/organization/{orgname}/team/{teamname}/members/{membername}", "Remove a member from a team", "org:admin", del_member),
        route!(GET "/api/v1/organization/{orgname}/team/{teamname}/permissions", "The repositories a team has permissions on", "org:admin", team_perms),
        route!(POST "/api/v1/organization/{orgname}/team/{teamname}/syncing", "Sync a team's members from an LDAP group (group_dn, relative to LDAP_BASE_DN) or an OIDC service's groups claim (group_name, service) (superusers)", "org:admin",
            body &["group_dn", "group_name", "service"], enable_team_sync),
        route!(DELETE "/api/v1/organization/{orgname}/team/{teamname}/syncing", "Stop syncing a team from LDAP (superusers)", "org:admin", disable_team_sync),
        route!(GET "/api/v1/organization/{orgname}/prototypes", "Default permissions applied to new repositories", "org:admin", prototypes),
        route!(POST "/api/v1/organization/{orgname}/prototypes", "Add a default permission", "org:admin",
            body &["*role", "activating_user:object", "*delegate:object"], create_prototype),
        route!(PUT "/api/v1/organization/{orgname}/prototypes/{prototypeid}", "Change a default permission's role", "org:admin",
            body &["*role"], update_prototype),
        route!(DELETE "/api/v1/organization/{orgname}/prototypes/{prototypeid}", "Delete a default permission", "org:admin", delete_prototype),
    ]
}

fn team_view(t: &berth_core::TeamRow, can_view: bool) -> serde_json::Value {
    serde_json::json!({
        "name": t.name,
        "description": t.description,
        "role": t.role,
        "avatar": avatar(&t.name, "team"),
        "can_view": can_view,
        "repo_count": t.repo_count,
        "member_count": t.member_count,
        "is_synced": t.sync_service.is_some(),
    })
}

async fn create_org(st: Arc<AppState>, ctx: Ctx) -> R {
    let a = ctx.actor()?;
    st.auth
        .create_org(a, ctx.required("name")?, ctx.field("email"))
        .await?;
    created(serde_json::json!("Created"))
}

async fn org_view(st: &AppState, a: &Actor, org: &str) -> Result<serde_json::Value, RestError> {
    if !a.has_scope("user:read") && !a.has_scope("org:admin") {
        return Err(RestError::new(403, "this token lacks the user:read scope"));
    }
    let o = st.auth.org(org).await?;
    let role = st.auth.org_role(a, &o).await?;
    if !role.member && !role.admin {
        return Err(RestError::new(
            403,
            format!("you are not a member of organization {org:?}"),
        ));
    }
    let teams = st.auth.org_teams(&o).await?;
    let mut map = serde_json::Map::new();
    for t in &teams {
        map.insert(t.name.clone(), team_view(t, true));
    }
    Ok(serde_json::json!({
        "name": o.name,
        "email": if role.admin { o.email.clone() } else { None },
        "avatar": avatar(&o.name, "org"),
        "is_admin": role.admin,
        "is_member": role.member,
        "teams": map,
        "ordered_teams": teams.iter().map(|t| t.name.clone()).collect::<Vec<_>>(),
        // The window in force: the organization's own, else DEFAULT_TAG_EXPIRATION (Quay shows it).
        "tag_expiration_s": o.tag_expiration_s.unwrap_or(st.registry.config.gc.default_window_s),
        "is_free_account": true,
    }))
}

async fn get_org(st: Arc<AppState>, ctx: Ctx) -> R {
    json(org_view(&st, ctx.actor()?, ctx.p("orgname")).await?)
}

async fn update_org(st: Arc<AppState>, ctx: Ctx) -> R {
    let a = ctx.actor()?;
    let o = st.auth.org_admin(a, ctx.p("orgname")).await?;
    st.auth
        .update_org(
            a,
            &o,
            ctx.field("email"),
            ctx.body.get("tag_expiration_s").and_then(|v| v.as_i64()),
        )
        .await?;
    json(org_view(&st, a, ctx.p("orgname")).await?)
}

async fn delete_org(st: Arc<AppState>, ctx: Ctx) -> R {
    let a = ctx.actor()?;
    st.auth.org(ctx.p("orgname")).await?;
    st.auth
        .delete_namespace_account(a, ctx.p("orgname"))
        .await?;
    no_content()
}

async fn member_list(st: &AppState, ctx: &Ctx) -> Result<Vec<serde_json::Value>, RestError> {
    let teams = |m: &OrgMember| -> Vec<serde_json::Value> {
        m.teams
            .iter()
            .map(|t| serde_json::json!({"name": t, "avatar": avatar(t, "team")}))
            .collect()
    };
    Ok(st
        .auth
        .org_members(ctx.actor()?, ctx.p("orgname"))
        .await?
        .iter()
        .map(|m| {
            let mut e = entity(&m.name, &m.kind);
            e["teams"] = teams(m).into();
            e["repositories"] = serde_json::json!([]);
            e
        })
        .collect())
}

async fn members(st: Arc<AppState>, ctx: Ctx) -> R {
    json(serde_json::json!({"members": member_list(&st, &ctx).await?}))
}

async fn member(st: Arc<AppState>, ctx: Ctx) -> R {
    let name = ctx.p("membername");
    member_list(&st, &ctx)
        .await?
        .into_iter()
        .find(|m| m["name"] == name)
        .map(json)
        .unwrap_or_else(|| {
            Err(RestError::new(
                404,
                format!("{name:?} is not a member of {:?}", ctx.p("orgname")),
            ))
        })
}

async fn remove_member(st: Arc<AppState>, ctx: Ctx) -> R {
    let a = ctx.actor()?;
    st.auth
        .remove_org_member(a, ctx.p("orgname"), ctx.p("membername"))
        .await?;
    no_content()
}

async fn put_team(st: Arc<AppState>, ctx: Ctx) -> R {
    let a = ctx.actor()?;
    let (t, created_new) = st
        .auth
        .set_team(
            a,
            ctx.p("orgname"),
            ctx.p("teamname"),
            ctx.required("role")?,
            ctx.field("description"),
        )
        .await?;
    let mut v = team_view(&t, true);
    v["new_team"] = created_new.into();
    json(v)
}

async fn delete_team(st: Arc<AppState>, ctx: Ctx) -> R {
    st.auth
        .delete_team(ctx.actor()?, ctx.p("orgname"), ctx.p("teamname"))
        .await?;
    no_content()
}

async fn team_members(st: Arc<AppState>, ctx: Ctx) -> R {
    let tm = st
        .auth
        .team_members(ctx.actor()?, ctx.p("orgname"), ctx.p("teamname"))
        .await?;
    let t = &tm.team;
    json(serde_json::json!({
        "name": t.name,
        "members": tm.members.iter().map(|m| { let mut e = entity(&m.name, &m.kind); e["invited"] = false.into(); e }).collect::<Vec<_>>(),
        "can_edit": tm.can_edit,
        "synced": t.sync_service.as_ref().map(|s| serde_json::json!({"service": s, "config": {"group": t.sync_group}})),
    }))
}

async fn add_member(st: Arc<AppState>, ctx: Ctx) -> R {
    let m = st
        .auth
        .add_team_member(
            ctx.actor()?,
            ctx.p("orgname"),
            ctx.p("teamname"),
            ctx.p("membername"),
        )
        .await?;
    let mut e = entity(&m.name, m.kind.as_str());
    e["invited"] = false.into();
    json(e)
}

async fn del_member(st: Arc<AppState>, ctx: Ctx) -> R {
    st.auth
        .remove_team_member(
            ctx.actor()?,
            ctx.p("orgname"),
            ctx.p("teamname"),
            ctx.p("membername"),
        )
        .await?;
    no_content()
}

async fn team_perms(st: Arc<AppState>, ctx: Ctx) -> R {
    let perms = st
        .auth
        .team_permissions(ctx.actor()?, ctx.p("orgname"), ctx.p("teamname"))
        .await?;
    json(super::permissions_view(&perms))
}

fn prototype_view(p: &DefaultPermView) -> serde_json::Value {
    let named = |who: &Option<(String, String)>| who.as_ref().map(|(n, k)| entity(n, k));
    serde_json::json!({
        "id": p.row.uuid, "role": p.row.role,
        "activating_user": named(&p.activating), "delegate": named(&p.delegate),
    })
}

async fn prototypes(st: Arc<AppState>, ctx: Ctx) -> R {
    let out: Vec<serde_json::Value> = st
        .auth
        .default_permissions(ctx.actor()?, ctx.p("orgname"))
        .await?
        .iter()
        .map(prototype_view)
        .collect();
    json(serde_json::json!({"prototypes": out}))
}

async fn create_prototype(st: Arc<AppState>, ctx: Ctx) -> R {
    let a = ctx.actor()?;
    let delegate = ctx.body.get("delegate").ok_or_else(|| {
        RestError::bad("field \"delegate\" is required: {\"name\", \"kind\": user|team}")
    })?;
    let dname = delegate
        .get("name")
        .and_then(|v| v.as_str())
        .ok_or_else(|| RestError::bad("delegate.name is required"))?;
    let dkind = delegate
        .get("kind")
        .and_then(|v| v.as_str())
        .unwrap_or("user");
    if !["user", "team"].contains(&dkind) {
        return Err(RestError::bad("delegate.kind must be user or team"));
    }
    let activating = ctx
        .body
        .get("activating_user")
        .and_then(|v| v.get("name"))
        .and_then(|v| v.as_str());
    let p = st
        .auth
        .create_default_perm(
            a,
            ctx.p("orgname"),
            activating,
            dname,
            dkind == "team",
            ctx.required("role")?,
        )
        .await?;
    let p = st
        .auth
        .default_permission(a, ctx.p("orgname"), &p.uuid)
        .await?;
    json(prototype_view(&p))
}

async fn update_prototype(st: Arc<AppState>, ctx: Ctx) -> R {
    let a = ctx.actor()?;
    let org = ctx.p("orgname");
    let id = ctx.p("prototypeid");
    st.auth
        .update_default_perm(a, org, id, ctx.required("role")?)
        .await?;
    json(prototype_view(
        &st.auth.default_permission(a, org, id).await?,
    ))
}

async fn delete_prototype(st: Arc<AppState>, ctx: Ctx) -> R {
    st.auth
        .delete_default_perm(ctx.actor()?, ctx.p("orgname"), ctx.p("prototypeid"))
        .await?;
    no_content()
}

/// `POST` / `DELETE …/team/{teamname}/syncing`. Only superusers set syncing up (Quay without
/// FEATURE_NONSUPERUSER_TEAM_SYNCING_SETUP), and as administrators of the organization.
async fn team_sync(st: &AppState, ctx: &Ctx, enable: bool) -> R {
    let sync = match ctx.field("group_name") {
        // An OIDC service's groups claim (Quay's group_name): the name is the claim's value.
        Some(group) if enable => TeamSync::Oidc {
            service: ctx.field("service"),
            group,
        },
        _ if enable => TeamSync::Ldap {
            group_dn: ctx.required("group_dn")?,
        },
        _ => TeamSync::Off,
    };
    let t = st
        .auth
        .set_team_sync(ctx.actor()?, ctx.p("orgname"), ctx.p("teamname"), sync)
        .await?;
    json(team_view(&t, true))
}

async fn enable_team_sync(st: Arc<AppState>, ctx: Ctx) -> R {
    team_sync(&st, &ctx, true).await
}

async fn disable_team_sync(st: Arc<AppState>, ctx: Ctx) -> R {
    team_sync(&st, &ctx, false).await
}
