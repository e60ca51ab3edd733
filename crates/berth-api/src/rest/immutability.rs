//! Immutability policies (Quay's `immutabilitypolicy`): tag-name patterns of an organization, a
//! user's namespace, or one repository; matching tags cannot be moved, deleted or expired.

use super::policies::{At, PolicyApi, PolicyId, at_level, create, delete, get, list, update};
use super::{Created, Ctx, Reply, RestError, Route, route};
use crate::AppState;
use berth_core::ImmutabilityPolicy;
use berth_core::policies::ImmutabilityFields;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;

/// An immutability policy as sent.
#[derive(Deserialize, ToSchema)]
#[schema(as = ImmutabilityPolicyBody)]
#[allow(non_snake_case)]
pub struct Body {
    /// Required: a regular expression of at most 256 characters. (Optional in the type so that
    /// the access check answers before the body's: core says what is missing.)
    pub tagPattern: Option<String>,
    /// Whether the tags that match are the protected ones (default true).
    pub tagPatternMatches: Option<bool>,
}

/// An immutability policy as answered.
#[derive(Serialize, ToSchema)]
#[schema(as = ImmutabilityPolicy)]
#[allow(non_snake_case)]
pub struct View {
    pub uuid: String,
    pub tagPattern: String,
    pub tagPatternMatches: bool,
}

#[derive(Serialize, ToSchema)]
#[schema(as = ImmutabilityPolicies)]
pub struct List {
    pub policies: Vec<View>,
}

impl PolicyApi for ImmutabilityPolicy {
    type Body = Body;
    type View = View;
    type List = List;
    fn fields(b: Body) -> ImmutabilityFields {
        ImmutabilityFields {
            tag_pattern: b.tagPattern,
            tag_pattern_matches: b.tagPatternMatches,
        }
    }
    fn view(&self) -> View {
        View {
            uuid: self.uuid.clone(),
            tagPattern: self.pattern.clone(),
            tagPatternMatches: self.matches,
        }
    }
    fn list(policies: Vec<View>) -> List {
        List { policies }
    }
}

pub fn routes() -> Vec<Route> {
    vec![
        route!(GET "/api/v1/organization/{orgname}/immutabilitypolicy/", "An organization's immutability policies", "org:admin", org_list() -> Reply<List>),
        route!(POST "/api/v1/organization/{orgname}/immutabilitypolicy/", "Create an immutability policy for every repository of an organization", "org:admin", org_create(Body) -> Created<PolicyId>),
        route!(GET "/api/v1/organization/{orgname}/immutabilitypolicy/{policy_uuid}", "One immutability policy", "org:admin", org_get() -> Reply<View>),
        route!(PUT "/api/v1/organization/{orgname}/immutabilitypolicy/{policy_uuid}", "Change an immutability policy", "org:admin", org_update(Body) -> Reply<PolicyId>),
        route!(DELETE "/api/v1/organization/{orgname}/immutabilitypolicy/{policy_uuid}", "Delete an immutability policy", "org:admin", org_delete() -> Reply<PolicyId>),
        route!(GET "/api/v1/user/immutabilitypolicy/", "The calling user's namespace's immutability policies", "user:admin", user_list() -> Reply<List>),
        route!(POST "/api/v1/user/immutabilitypolicy/", "Create an immutability policy for the calling user's repositories", "user:admin", user_create(Body) -> Created<PolicyId>),
        route!(GET "/api/v1/user/immutabilitypolicy/{policy_uuid}", "One immutability policy", "user:admin", user_get() -> Reply<View>),
        route!(PUT "/api/v1/user/immutabilitypolicy/{policy_uuid}", "Change an immutability policy", "user:admin", user_update(Body) -> Reply<PolicyId>),
        route!(DELETE "/api/v1/user/immutabilitypolicy/{policy_uuid}", "Delete an immutability policy", "user:admin", user_delete() -> Reply<PolicyId>),
        route!(GET "/api/v1/repository/{repository}/immutabilitypolicy/", "A repository's own immutability policies", "repo:admin", repo_list() -> Reply<List>),
        route!(POST "/api/v1/repository/{repository}/immutabilitypolicy/", "Create an immutability policy for one repository", "repo:admin", repo_create(Body) -> Created<PolicyId>),
        route!(GET "/api/v1/repository/{repository}/immutabilitypolicy/{policy_uuid}", "One immutability policy", "repo:admin", repo_get() -> Reply<View>),
        route!(PUT "/api/v1/repository/{repository}/immutabilitypolicy/{policy_uuid}", "Change an immutability policy", "repo:admin", repo_update(Body) -> Reply<PolicyId>),
        route!(DELETE "/api/v1/repository/{repository}/immutabilitypolicy/{policy_uuid}", "Delete an immutability policy", "repo:admin", repo_delete() -> Reply<PolicyId>),
    ]
}

type P = ImmutabilityPolicy;

at_level! {
    org_list() -> Reply<List> => list::<P>, At::Org;
    org_create(b: Body) -> Created<PolicyId> => create::<P>, At::Org;
    org_get() -> Reply<View> => get::<P>, At::Org;
    org_update(b: Body) -> Reply<PolicyId> => update::<P>, At::Org;
    org_delete() -> Reply<PolicyId> => delete::<P>, At::Org;
    user_list() -> Reply<List> => list::<P>, At::User;
    user_create(b: Body) -> Created<PolicyId> => create::<P>, At::User;
    user_get() -> Reply<View> => get::<P>, At::User;
    user_update(b: Body) -> Reply<PolicyId> => update::<P>, At::User;
    user_delete() -> Reply<PolicyId> => delete::<P>, At::User;
    repo_list() -> Reply<List> => list::<P>, At::Repo;
    repo_create(b: Body) -> Created<PolicyId> => create::<P>, At::Repo;
    repo_get() -> Reply<View> => get::<P>, At::Repo;
    repo_update(b: Body) -> Reply<PolicyId> => update::<P>, At::Repo;
    repo_delete() -> Reply<PolicyId> => delete::<P>, At::Repo;
}
