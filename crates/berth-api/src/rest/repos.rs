//! Repositories through the API: create, list, read, describe, visibility, and the permissions of
//! users, robots and teams on them.

use super::{Ctx, R, RestError, Route, avatar, created, json, no_content, route, secs};
use crate::AppState;
use berth_core::RepoRow;
use berth_core::auth::Role;
use berth_core::auth::accounts::PermHolder;
use berth_core::auth::views::Listing;
use std::sync::Arc;

pub fn routes() -> Vec<Route> {
    vec![
        route!(POST "/api/v1/repository", "Create a repository", "repo:create",
            body &["*repository", "namespace", "*visibility", "description", "repo_kind"], create_repo),
        route!(GET "/api/v1/repository", "Repositories the caller may see", "repo:read",
            query &["namespace", "public", "starred", "next_page", "limit"], list_repos),
        route!(GET "/api/v1/repository/{repository}", "One repository, with up to 500 live tags unless includeTags=false", "repo:read",
            query &["includeTags", "includeStats"], get_repo),
        route!(PUT "/api/v1/repository/{repository}", "Change a repository's description", "repo:write",
            body &["*description"], update_repo),
        route!(DELETE "/api/v1/repository/{repository}", "Delete a repository: its name is free at once, its contents are collected in the background", "repo:admin", delete_repo),
        route!(POST "/api/v1/repository/{repository}/changevisibility", "Make a repository public or private", "repo:admin",
            body &["*visibility"], change_visibility),
        route!(GET "/api/v1/repository/{repository}/permissions/user/", "User and robot permissions on a repository", "repo:admin", user_perms),
        route!(GET "/api/v1/repository/{repository}/permissions/user/{username}", "One user's or robot's permission", "repo:admin", user_perm),
        route!(PUT "/api/v1/repository/{repository}/permissions/user/{username}", "Give a user or robot read, write or admin", "repo:admin",
            body &["*role"], set_user_perm),
        route!(DELETE "/api/v1/repository/{repository}/permissions/user/{username}", "Remove a user's or robot's permission", "repo:admin", del_user_perm),
        route!(GET "/api/v1/repository/{repository}/permissions/user/{username}/transitive", "A user's effective permission, teams included", "repo:admin", transitive),
        route!(GET "/api/v1/repository/{repository}/permissions/team/", "Team permissions on a repository", "repo:admin", team_perms),
        route!(GET "/api/v1/repository/{repository}/permissions/team/{teamname}", "One team's permission", "repo:admin", team_perm),
        route!(PUT "/api/v1/repository/{repository}/permissions/team/{teamname}", "Give a team read, write or admin", "repo:admin",
            body &["*role"], set_team_perm),
        route!(DELETE "/api/v1/repository/{repository}/permissions/team/{teamname}", "Remove a team's permission", "repo:admin", del_team_perm),
    ]
}

fn short(r: &RepoRow) -> &str {
    r.name.split_once('/').map(|x| x.1).unwrap_or(&r.name)
}

async fn create_repo(st: Arc<AppState>, ctx: Ctx) -> R {
    let a = ctx.actor()?;
    let ns = ctx.field("namespace").unwrap_or(&a.name);
    let name = format!("{ns}/{}", ctx.required("repository")?);
    if name.parse::<berth_oci::RepoName>().is_err() {
        return Err(RestError::bad(format!("invalid repository name {name:?}")));
    }
    if ctx.field("repo_kind").is_some_and(|k| k != "image") {
        return Err(RestError::bad("repo_kind must be image"));
    }
    st.auth
        .create_repo(
            a,
            &name,
            ctx.required("visibility")?,
            ctx.field("description"),
            ctx.ip.as_deref(),
        )
        .await?;
    created(serde_json::json!({"namespace": ns, "name": &name[ns.len() + 1..], "kind": "image"}))
}

async fn list_repos(st: Arc<AppState>, ctx: Ctx) -> R {
    let caller = ctx.caller.as_ref();
    if caller.is_some_and(|c| !c.has_scope("repo:read")) {
        return Err(RestError::new(403, "this token lacks the repo:read scope"));
    }
    let public = ctx.q_bool("public", false);
    let namespace = ctx.q("namespace").filter(|s| !s.is_empty());
    if caller.is_none() && !public && namespace.is_none() {
        return Err(RestError::bad(
            "anonymous callers must give namespace= or public=true",
        ));
    }
    if caller.is_none() && !st.auth.config.anonymous_access {
        return Err(RestError::new(401, "authentication required"));
    }
    let listing = Listing {
        namespace,
        public: public || namespace.is_some() || caller.is_none(),
        everything: caller.is_some_and(|c| c.superuser && c.has_scope("super:user"))
            && namespace.is_some(),
    };
    let limit = ctx
        .q("limit")
        .and_then(|l| l.parse::<i64>().ok())
        .unwrap_or(100)
        .clamp(1, 100);
    let rows = st
        .auth
        .readable_repos(caller, &listing, ctx.q("next_page"), limit + 1)
        .await?;
    let more = rows.len() as i64 > limit;
    let rows = &rows[..rows.len().min(limit as usize)];
    let mut v = serde_json::json!({
        "repositories": rows.iter().map(|r| serde_json::json!({
            "namespace": r.namespace, "name": short(r), "description": r.description,
            "is_public": r.visibility == "public", "kind": "image", "state": "NORMAL",
            "last_modified": secs(r.last_push_at.or(Some(r.created_at))),
        })).collect::<Vec<_>>(),
    });
    if more && let Some(last) = rows.last() {
        v["next_page"] = last.name.clone().into();
    }
    json(v)
}

async fn get_repo(st: Arc<AppState>, ctx: Ctx) -> R {
    let repo = ctx.p("repository");
    let r = st
        .auth
        .repo_with_role(ctx.caller.as_ref(), repo, Role::Read)
        .await?;
    let access = st.auth.repo_access(ctx.caller.as_ref(), repo).await?;
    let window = st
        .auth
        .namespace_tag_window(&r.namespace)
        .await?
        .unwrap_or(st.registry.config.gc.default_window_s);
    let mut v = serde_json::json!({
        "namespace": r.namespace,
        "name": short(&r),
        "kind": "image",
        "description": r.description,
        "is_public": r.visibility == "public",
        "is_organization": r.namespace_kind == "org",
        "is_starred": false,
        "status_token": "",
        "trust_enabled": false,
        "tag_expiration_s": window,
        "is_free_account": true,
        "state": "NORMAL",
        "can_write": access.allows(Role::Write),
        "can_admin": access.allows(Role::Admin),
        "created": secs(Some(r.created_at)),
        "last_pushed": secs(r.last_push_at),
        "last_pulled": secs(r.last_pull_at),
    });
    // Quay includes up to 500 live tags unless `includeTags=false`, keyed by name.
    if ctx.q_bool("includeTags", true) {
        let name: berth_oci::RepoName = repo
            .parse()
            .map_err(|_| RestError::bad("invalid repository name"))?;
        let filter = berth_core::TagFilter {
            only_active: true,
            ..Default::default()
        };
        let rows = st.registry.tag_history(&name, &filter, 0, 500).await?;
        let mut tags = serde_json::Map::new();
        for t in rows {
            let mut tag = serde_json::json!({
                "name": t.name,
                "size": t.size,
                "last_modified": crate::auth::http_date(t.start_at),
                "manifest_digest": t.manifest_digest,
            });
            if let Some(exp) = t.expires_at {
                tag["expiration"] = crate::auth::http_date(exp).into();
            }
            tags.insert(t.name.clone(), tag);
        }
        v["tags"] = tags.into();
    }
    json(v)
}

async fn delete_repo(st: Arc<AppState>, ctx: Ctx) -> R {
    let a = ctx.actor()?;
    let name = ctx.p("repository");
    st.auth.repo_with_role(Some(a), name, Role::Admin).await?;
    let repo: berth_oci::RepoName = name
        .parse()
        .map_err(|_| RestError::bad("invalid repository name"))?;
    st.registry.delete_repository(&ctx.who(), &repo).await?;
    no_content()
}

async fn update_repo(st: Arc<AppState>, ctx: Ctx) -> R {
    st.auth
        .set_description(
            ctx.actor()?,
            ctx.p("repository"),
            ctx.field("description").unwrap_or(""),
        )
        .await?;
    json(serde_json::json!({"success": true}))
}

async fn change_visibility(st: Arc<AppState>, ctx: Ctx) -> R {
    st.auth
        .set_visibility(
            ctx.actor()?,
            ctx.p("repository"),
            ctx.required("visibility")?,
        )
        .await?;
    json(serde_json::json!({"success": true}))
}

async fn perms_of(
    st: &AppState,
    ctx: &Ctx,
    team: bool,
) -> Result<(RepoRow, Vec<berth_core::PermRow>), RestError> {
    let r = st
        .auth
        .repo_with_role(Some(ctx.actor()?), ctx.p("repository"), Role::Admin)
        .await?;
    let perms = st
        .auth
        .repo_permissions(&r)
        .await?
        .into_iter()
        .filter(|p| (p.grantee_kind == "team") == team)
        .collect();
    Ok((r, perms))
}

fn user_perm_view(name: &str, kind: &str, role: &str) -> serde_json::Value {
    serde_json::json!({
        "name": name, "role": role, "is_robot": kind == "robot",
        "avatar": avatar(name, kind), "is_org_member": false,
    })
}

fn team_perm_view(name: &str, role: &str) -> serde_json::Value {
    serde_json::json!({"name": name, "role": role, "avatar": avatar(name, "team")})
}

async fn user_perms(st: Arc<AppState>, ctx: Ctx) -> R {
    let (_, perms) = perms_of(&st, &ctx, false).await?;
    let mut map = serde_json::Map::new();
    for p in perms {
        map.insert(
            p.grantee.clone(),
            user_perm_view(&p.grantee, &p.grantee_kind, &p.role),
        );
    }
    json(serde_json::json!({"permissions": map}))
}

async fn user_perm(st: Arc<AppState>, ctx: Ctx) -> R {
    let (_, perms) = perms_of(&st, &ctx, false).await?;
    let who = ctx.p("username");
    perms
        .iter()
        .find(|p| p.grantee == who)
        .map(|p| json(user_perm_view(&p.grantee, &p.grantee_kind, &p.role)))
        .unwrap_or_else(|| {
            Err(RestError::new(
                404,
                format!("{who:?} has no direct permission on this repository"),
            ))
        })
}

async fn set_user_perm(st: Arc<AppState>, ctx: Ctx) -> R {
    let role = ctx.required("role")?;
    let who = st
        .auth
        .set_permission(
            ctx.actor()?,
            ctx.p("repository"),
            ctx.p("username"),
            false,
            role,
        )
        .await?;
    match who {
        PermHolder::Account(a) => json(user_perm_view(&a.name, a.kind.as_str(), role)),
        PermHolder::Team(t) => json(team_perm_view(&t.name, role)),
    }
}

async fn del_user_perm(st: Arc<AppState>, ctx: Ctx) -> R {
    st.auth
        .delete_permission(ctx.actor()?, ctx.p("repository"), ctx.p("username"), false)
        .await?;
    no_content()
}

async fn transitive(st: Arc<AppState>, ctx: Ctx) -> R {
    let a = ctx.actor()?;
    let repo = ctx.p("repository");
    st.auth.repo_with_role(Some(a), repo, Role::Admin).await?;
    let who = st
        .auth
        .account(ctx.p("username"))
        .await?
        .filter(|r| r.kind != berth_core::auth::AccountKind::Org)
        .ok_or_else(|| {
            RestError::new(
                404,
                format!("no user or robot named {:?}", ctx.p("username")),
            )
        })?;
    let actor = st.auth.actor(&who, "password");
    let access = st.auth.repo_access(Some(&actor), repo).await?;
    json(serde_json::json!({
        "permissions": access.role.map(|r| vec![serde_json::json!({"role": r.as_str()})]).unwrap_or_default(),
    }))
}

async fn team_perms(st: Arc<AppState>, ctx: Ctx) -> R {
    let (_, perms) = perms_of(&st, &ctx, true).await?;
    let mut map = serde_json::Map::new();
    for p in perms {
        map.insert(p.grantee.clone(), team_perm_view(&p.grantee, &p.role));
    }
    json(serde_json::json!({"permissions": map}))
}

async fn team_perm(st: Arc<AppState>, ctx: Ctx) -> R {
    let (_, perms) = perms_of(&st, &ctx, true).await?;
    let who = ctx.p("teamname");
    perms
        .iter()
        .find(|p| p.grantee == who)
        .map(|p| json(team_perm_view(&p.grantee, &p.role)))
        .unwrap_or_else(|| {
            Err(RestError::new(
                404,
                format!("team {who:?} has no permission on this repository"),
            ))
        })
}

async fn set_team_perm(st: Arc<AppState>, ctx: Ctx) -> R {
    let role = ctx.required("role")?;
    st.auth
        .set_permission(
            ctx.actor()?,
            ctx.p("repository"),
            ctx.p("teamname"),
            true,
            role,
        )
        .await?;
    json(team_perm_view(ctx.p("teamname"), role))
}

async fn del_team_perm(st: Arc<AppState>, ctx: Ctx) -> R {
    st.auth
        .delete_permission(ctx.actor()?, ctx.p("repository"), ctx.p("teamname"), true)
        .await?;
    no_content()
}
