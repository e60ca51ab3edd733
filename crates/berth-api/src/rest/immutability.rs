//! Immutability policies (Quay's `immutabilitypolicy`): tag-name patterns of an organization, a
//! user's namespace, or one repository; matching tags cannot be moved, deleted or expired.

use super::policies::{At, PolicyBody, at_level, create, delete, get, list, update};
use super::{Ctx, R, Route, route};
use crate::AppState;
use berth_core::ImmutabilityPolicy;
use berth_core::policies::ImmutabilityFields;
use std::sync::Arc;

const BODY: &[&str] = &["*tagPattern", "tagPatternMatches:boolean"];

pub fn routes() -> Vec<Route> {
    vec![
        route!(GET "/api/v1/organization/{orgname}/immutabilitypolicy/", "An organization's immutability policies", "org:admin", org_list),
        route!(POST "/api/v1/organization/{orgname}/immutabilitypolicy/", "Create an immutability policy for every repository of an organization", "org:admin", body BODY, org_create),
        route!(GET "/api/v1/organization/{orgname}/immutabilitypolicy/{policy_uuid}", "One immutability policy", "org:admin", org_get),
        route!(PUT "/api/v1/organization/{orgname}/immutabilitypolicy/{policy_uuid}", "Change an immutability policy", "org:admin", body BODY, org_update),
        route!(DELETE "/api/v1/organization/{orgname}/immutabilitypolicy/{policy_uuid}", "Delete an immutability policy", "org:admin", org_delete),
        route!(GET "/api/v1/user/immutabilitypolicy/", "The calling user's namespace's immutability policies", "user:admin", user_list),
        route!(POST "/api/v1/user/immutabilitypolicy/", "Create an immutability policy for the calling user's repositories", "user:admin", body BODY, user_create),
        route!(GET "/api/v1/user/immutabilitypolicy/{policy_uuid}", "One immutability policy", "user:admin", user_get),
        route!(PUT "/api/v1/user/immutabilitypolicy/{policy_uuid}", "Change an immutability policy", "user:admin", body BODY, user_update),
        route!(DELETE "/api/v1/user/immutabilitypolicy/{policy_uuid}", "Delete an immutability policy", "user:admin", user_delete),
        route!(GET "/api/v1/repository/{repository}/immutabilitypolicy/", "A repository's own immutability policies", "repo:admin", repo_list),
        route!(POST "/api/v1/repository/{repository}/immutabilitypolicy/", "Create an immutability policy for one repository", "repo:admin", body BODY, repo_create),
        route!(GET "/api/v1/repository/{repository}/immutabilitypolicy/{policy_uuid}", "One immutability policy", "repo:admin", repo_get),
        route!(PUT "/api/v1/repository/{repository}/immutabilitypolicy/{policy_uuid}", "Change an immutability policy", "repo:admin", body BODY, repo_update),
        route!(DELETE "/api/v1/repository/{repository}/immutabilitypolicy/{policy_uuid}", "Delete an immutability policy", "repo:admin", repo_delete),
    ]
}

impl PolicyBody for ImmutabilityPolicy {
    fn fields(ctx: &Ctx) -> ImmutabilityFields {
        ImmutabilityFields {
            tag_pattern: ctx.field("tagPattern").map(String::from),
            tag_pattern_matches: ctx.body.get("tagPatternMatches").and_then(|v| v.as_bool()),
        }
    }
}

type P = ImmutabilityPolicy;

at_level! {
    org_list => list::<P>, At::Org;
    org_create => create::<P>, At::Org;
    org_get => get::<P>, At::Org;
    org_update => update::<P>, At::Org;
    org_delete => delete::<P>, At::Org;
    user_list => list::<P>, At::User;
    user_create => create::<P>, At::User;
    user_get => get::<P>, At::User;
    user_update => update::<P>, At::User;
    user_delete => delete::<P>, At::User;
    repo_list => list::<P>, At::Repo;
    repo_create => create::<P>, At::Repo;
    repo_get => get::<P>, At::Repo;
    repo_update => update::<P>, At::Repo;
    repo_delete => delete::<P>, At::Repo;
}
