//! Auto-prune policies (Quay's `autoprunepolicy`) of an organization, a user's namespace or one
//! repository, with Berth's dry run (what a policy would delete now and the bytes it would free)
//! and run-now.

use super::policies::{At, PolicyBody, at_level, create, delete, dryrun, get, list, run, update};
use super::{Ctx, R, Route, route};
use crate::AppState;
use berth_core::AutoPrunePolicy;
use berth_core::policies::AutoPruneFields;
use std::sync::Arc;

const BODY: &[&str] = &[
    "*method",
    "*value",
    "tagPattern",
    "tagPatternMatches:boolean",
];

pub fn routes() -> Vec<Route> {
    vec![
        route!(GET "/api/v1/organization/{orgname}/autoprunepolicy/", "An organization's auto-prune policies", "org:admin", org_list),
        route!(POST "/api/v1/organization/{orgname}/autoprunepolicy/", "Create an auto-prune policy for every repository of an organization (method number_of_tags or creation_date)", "org:admin", body BODY, org_create),
        route!(GET "/api/v1/organization/{orgname}/autoprunepolicy/{policy_uuid}", "One auto-prune policy", "org:admin", org_get),
        route!(PUT "/api/v1/organization/{orgname}/autoprunepolicy/{policy_uuid}", "Change an auto-prune policy", "org:admin", body BODY, org_update),
        route!(DELETE "/api/v1/organization/{orgname}/autoprunepolicy/{policy_uuid}", "Delete an auto-prune policy", "org:admin", org_delete),
        route!(GET "/api/v1/organization/{orgname}/autoprunepolicy/{policy_uuid}/dryrun", "What the policy would delete now, and the bytes that would free (Berth)", "org:admin", org_dryrun),
        route!(POST "/api/v1/organization/{orgname}/autoprunepolicy/{policy_uuid}/run", "Apply the policy now; answers what it deleted (Berth)", "org:admin", org_run),
        route!(GET "/api/v1/user/autoprunepolicy/", "The calling user's auto-prune policies", "user:admin", user_list),
        route!(POST "/api/v1/user/autoprunepolicy/", "Create an auto-prune policy for the calling user's repositories", "user:admin", body BODY, user_create),
        route!(GET "/api/v1/user/autoprunepolicy/{policy_uuid}", "One auto-prune policy", "user:admin", user_get),
        route!(PUT "/api/v1/user/autoprunepolicy/{policy_uuid}", "Change an auto-prune policy", "user:admin", body BODY, user_update),
        route!(DELETE "/api/v1/user/autoprunepolicy/{policy_uuid}", "Delete an auto-prune policy", "user:admin", user_delete),
        route!(GET "/api/v1/user/autoprunepolicy/{policy_uuid}/dryrun", "What the policy would delete now (Berth)", "user:admin", user_dryrun),
        route!(POST "/api/v1/user/autoprunepolicy/{policy_uuid}/run", "Apply the policy now (Berth)", "user:admin", user_run),
        route!(GET "/api/v1/repository/{repository}/autoprunepolicy/", "A repository's own auto-prune policies", "repo:admin", repo_list),
        route!(POST "/api/v1/repository/{repository}/autoprunepolicy/", "Create an auto-prune policy for one repository", "repo:admin", body BODY, repo_create),
        route!(GET "/api/v1/repository/{repository}/autoprunepolicy/{policy_uuid}", "One auto-prune policy", "repo:admin", repo_get),
        route!(PUT "/api/v1/repository/{repository}/autoprunepolicy/{policy_uuid}", "Change an auto-prune policy", "repo:admin", body BODY, repo_update),
        route!(DELETE "/api/v1/repository/{repository}/autoprunepolicy/{policy_uuid}", "Delete an auto-prune policy", "repo:admin", repo_delete),
        route!(GET "/api/v1/repository/{repository}/autoprunepolicy/{policy_uuid}/dryrun", "What the policy would delete now (Berth)", "repo:admin", repo_dryrun),
        route!(POST "/api/v1/repository/{repository}/autoprunepolicy/{policy_uuid}/run", "Apply the policy now (Berth)", "repo:admin", repo_run),
    ]
}

impl PolicyBody for AutoPrunePolicy {
    fn fields(ctx: &Ctx) -> AutoPruneFields {
        AutoPruneFields {
            method: ctx.field("method").map(String::from),
            value: ctx.body.get("value").cloned().unwrap_or_default(),
            tag_pattern: ctx.field("tagPattern").map(String::from),
            tag_pattern_matches: ctx.body.get("tagPatternMatches").and_then(|v| v.as_bool()),
        }
    }
}

type P = AutoPrunePolicy;

at_level! {
    org_list => list::<P>, At::Org;
    org_create => create::<P>, At::Org;
    org_get => get::<P>, At::Org;
    org_update => update::<P>, At::Org;
    org_delete => delete::<P>, At::Org;
    org_dryrun => dryrun, At::Org;
    org_run => run, At::Org;
    user_list => list::<P>, At::User;
    user_create => create::<P>, At::User;
    user_get => get::<P>, At::User;
    user_update => update::<P>, At::User;
    user_delete => delete::<P>, At::User;
    user_dryrun => dryrun, At::User;
    user_run => run, At::User;
    repo_list => list::<P>, At::Repo;
    repo_create => create::<P>, At::Repo;
    repo_get => get::<P>, At::Repo;
    repo_update => update::<P>, At::Repo;
    repo_delete => delete::<P>, At::Repo;
    repo_dryrun => dryrun, At::Repo;
    repo_run => run, At::Repo;
}
