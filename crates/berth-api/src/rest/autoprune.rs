//! Auto-prune policies (Quay's `autoprunepolicy`) of an organization, a user's namespace or one
//! repository, with Berth's dry run (what a policy would delete now and the bytes it would free)
//! and run-now.

use super::policies::{
    AnyJson, At, PolicyApi, PolicyId, at_level, create, delete, dryrun, get, list, run, update,
};
use super::{Created, Ctx, Reply, RestError, Route, route};
use crate::AppState;
use berth_core::AutoPrunePolicy;
use berth_core::auth::PruneMethod;
use berth_core::policies::AutoPruneFields;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;
use utoipa::ToSchema;

/// An auto-prune policy as sent. Every field is optional in the type so that the access check
/// answers before the body's; core says what is missing.
#[derive(Deserialize, ToSchema)]
#[schema(as = AutoPrunePolicyBody)]
#[allow(non_snake_case)]
pub struct Body {
    /// Required: `number_of_tags` or `creation_date`.
    pub method: Option<String>,
    /// Required: a count (number or string) for `number_of_tags`, a duration such as `2w` for
    /// `creation_date`.
    pub value: Option<AnyJson>,
    /// Only tags whose name matches (or, with `tagPatternMatches: false`, does not).
    pub tagPattern: Option<String>,
    pub tagPatternMatches: Option<bool>,
}

/// An auto-prune policy as answered (`tagPattern*` only when the policy has a pattern).
#[derive(Serialize, ToSchema)]
#[schema(as = AutoPrunePolicy)]
#[allow(non_snake_case)]
pub struct View {
    pub uuid: String,
    pub method: String,
    /// A number for `number_of_tags`, a duration string for `creation_date`.
    pub value: AnyJson,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tagPattern: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tagPatternMatches: Option<bool>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = AutoPrunePolicies)]
pub struct List {
    pub policies: Vec<View>,
}

impl PolicyApi for AutoPrunePolicy {
    type Body = Body;
    type View = View;
    type List = List;
    fn fields(b: Body) -> AutoPruneFields {
        AutoPruneFields {
            method: b.method,
            value: b.value.map(|v| v.0).unwrap_or_default(),
            tag_pattern: b.tagPattern,
            tag_pattern_matches: b.tagPatternMatches,
        }
    }
    fn view(&self) -> View {
        let value = if self.method == PruneMethod::NumberOfTags {
            self.value
                .parse::<i64>()
                .map(Value::from)
                .unwrap_or_else(|_| self.value.clone().into())
        } else {
            self.value.clone().into()
        };
        View {
            uuid: self.uuid.clone(),
            method: self.method.to_string(),
            value: AnyJson(value),
            tagPattern: self.pattern.clone(),
            tagPatternMatches: self.pattern.as_ref().map(|_| self.matches),
        }
    }
    fn list(policies: Vec<View>) -> List {
        List { policies }
    }
}

pub fn routes() -> Vec<Route> {
    vec![
        route!(GET "/api/v1/organization/{orgname}/autoprunepolicy/", "An organization's auto-prune policies", "org:admin", org_list() -> Reply<List>),
        route!(POST "/api/v1/organization/{orgname}/autoprunepolicy/", "Create an auto-prune policy for every repository of an organization (method number_of_tags or creation_date)", "org:admin", org_create(Body) -> Created<PolicyId>),
        route!(GET "/api/v1/organization/{orgname}/autoprunepolicy/{policy_uuid}", "One auto-prune policy", "org:admin", org_get() -> Reply<View>),
        route!(PUT "/api/v1/organization/{orgname}/autoprunepolicy/{policy_uuid}", "Change an auto-prune policy", "org:admin", org_update(Body) -> Reply<PolicyId>),
        route!(DELETE "/api/v1/organization/{orgname}/autoprunepolicy/{policy_uuid}", "Delete an auto-prune policy", "org:admin", org_delete() -> Reply<PolicyId>),
        route!(GET "/api/v1/organization/{orgname}/autoprunepolicy/{policy_uuid}/dryrun", "What the policy would delete now, and the bytes that would free (Berth)", "org:admin", org_dryrun() -> Reply<Value>),
        route!(POST "/api/v1/organization/{orgname}/autoprunepolicy/{policy_uuid}/run", "Apply the policy now; answers what it deleted (Berth)", "org:admin", org_run() -> Reply<Value>),
        route!(GET "/api/v1/user/autoprunepolicy/", "The calling user's auto-prune policies", "user:admin", user_list() -> Reply<List>),
        route!(POST "/api/v1/user/autoprunepolicy/", "Create an auto-prune policy for the calling user's repositories", "user:admin", user_create(Body) -> Created<PolicyId>),
        route!(GET "/api/v1/user/autoprunepolicy/{policy_uuid}", "One auto-prune policy", "user:admin", user_get() -> Reply<View>),
        route!(PUT "/api/v1/user/autoprunepolicy/{policy_uuid}", "Change an auto-prune policy", "user:admin", user_update(Body) -> Reply<PolicyId>),
        route!(DELETE "/api/v1/user/autoprunepolicy/{policy_uuid}", "Delete an auto-prune policy", "user:admin", user_delete() -> Reply<PolicyId>),
        route!(GET "/api/v1/user/autoprunepolicy/{policy_uuid}/dryrun", "What the policy would delete now (Berth)", "user:admin", user_dryrun() -> Reply<Value>),
        route!(POST "/api/v1/user/autoprunepolicy/{policy_uuid}/run", "Apply the policy now (Berth)", "user:admin", user_run() -> Reply<Value>),
        route!(GET "/api/v1/repository/{repository}/autoprunepolicy/", "A repository's own auto-prune policies", "repo:admin", repo_list() -> Reply<List>),
        route!(POST "/api/v1/repository/{repository}/autoprunepolicy/", "Create an auto-prune policy for one repository", "repo:admin", repo_create(Body) -> Created<PolicyId>),
        route!(GET "/api/v1/repository/{repository}/autoprunepolicy/{policy_uuid}", "One auto-prune policy", "repo:admin", repo_get() -> Reply<View>),
        route!(PUT "/api/v1/repository/{repository}/autoprunepolicy/{policy_uuid}", "Change an auto-prune policy", "repo:admin", repo_update(Body) -> Reply<PolicyId>),
        route!(DELETE "/api/v1/repository/{repository}/autoprunepolicy/{policy_uuid}", "Delete an auto-prune policy", "repo:admin", repo_delete() -> Reply<PolicyId>),
        route!(GET "/api/v1/repository/{repository}/autoprunepolicy/{policy_uuid}/dryrun", "What the policy would delete now (Berth)", "repo:admin", repo_dryrun() -> Reply<Value>),
        route!(POST "/api/v1/repository/{repository}/autoprunepolicy/{policy_uuid}/run", "Apply the policy now (Berth)", "repo:admin", repo_run() -> Reply<Value>),
    ]
}

type P = AutoPrunePolicy;

at_level! {
    org_list() -> Reply<List> => list::<P>, At::Org;
    org_create(b: Body) -> Created<PolicyId> => create::<P>, At::Org;
    org_get() -> Reply<View> => get::<P>, At::Org;
    org_update(b: Body) -> Reply<PolicyId> => update::<P>, At::Org;
    org_delete() -> Reply<PolicyId> => delete::<P>, At::Org;
    org_dryrun() -> Reply<Value> => dryrun, At::Org;
    org_run() -> Reply<Value> => run, At::Org;
    user_list() -> Reply<List> => list::<P>, At::User;
    user_create(b: Body) -> Created<PolicyId> => create::<P>, At::User;
    user_get() -> Reply<View> => get::<P>, At::User;
    user_update(b: Body) -> Reply<PolicyId> => update::<P>, At::User;
    user_delete() -> Reply<PolicyId> => delete::<P>, At::User;
    user_dryrun() -> Reply<Value> => dryrun, At::User;
    user_run() -> Reply<Value> => run, At::User;
    repo_list() -> Reply<List> => list::<P>, At::Repo;
    repo_create(b: Body) -> Created<PolicyId> => create::<P>, At::Repo;
    repo_get() -> Reply<View> => get::<P>, At::Repo;
    repo_update(b: Body) -> Reply<PolicyId> => update::<P>, At::Repo;
    repo_delete() -> Reply<PolicyId> => delete::<P>, At::Repo;
    repo_dryrun() -> Reply<Value> => dryrun, At::Repo;
    repo_run() -> Reply<Value> => run, At::Repo;
}
