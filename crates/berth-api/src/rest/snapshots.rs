//! Snapshot tests (insta) of the OpenAPI document and of representative JSON bodies, rendered from
//! the response types with fixed values: any change of a field, a type or a route shows in review
//! as a change of a `.snap` file under `snapshots/`.

use super::views::RepoPermissions;
use super::{RestError, orgs, repos, robots, tags};
use berth_core::auth::{AccountKind, GranteeKind, Role, TeamRole, Visibility};
use berth_core::{Account, Permission, Repository, Tag, Team};

/// 2026-01-02T03:04:05Z, in milliseconds.
const T0: i64 = 1_767_323_045_000;

fn repo_row() -> Repository {
    Repository {
        id: 7,
        name: "acme/web".into(),
        namespace: "acme".into(),
        namespace_kind: AccountKind::Org,
        visibility: Visibility::Private,
        description: Some("The web front end".into()),
        created_at: T0,
        last_push_at: Some(T0 + 60_000),
        last_pull_at: None,
    }
}

fn tag(name: &str, end_at: Option<i64>, expires_at: Option<i64>) -> Tag {
    Tag {
        name: name.into(),
        manifest_digest: format!("sha256:{}", "ab".repeat(32))
            .parse()
            .expect("digest"),
        start_at: T0,
        end_at,
        expires_at,
        media_type: Some("application/vnd.oci.image.manifest.v1+json".into()),
        size: Some(1234),
        immutable: false,
    }
}

#[test]
fn openapi_document() {
    let (doc, clashes) = super::openapi::build(&super::routes());
    assert!(
        clashes.is_empty(),
        "two types share a schema name: {clashes:?}"
    );
    insta::assert_json_snapshot!("openapi", doc);
}

#[test]
fn repository() {
    let mut r = repos::Repo::new(&repo_row(), 1_209_600, true, false);
    r.tags = Some(
        [
            tag("latest", None, None),
            tag("v1", None, Some(T0 + 86_400_000)),
        ]
        .iter()
        .map(|t| (t.name.clone(), repos::RepoTag::new(t)))
        .collect(),
    );
    insta::assert_json_snapshot!("repository", r);
    let list = repos::RepoList {
        repositories: vec![repos::RepoSummary::new(&repo_row())],
        next_page: Some("acme/web".into()),
    };
    insta::assert_json_snapshot!("repository_list", list);
}

#[test]
fn tag_list_page() {
    let page = tags::TagPage {
        tags: vec![
            tags::TagEntry::new(&tag("latest", None, Some(T0 + 86_400_000)), true),
            tags::TagEntry::new(&tag("latest", Some(T0 + 30_000), None), false),
        ],
        page: 1,
        has_additional: false,
    };
    insta::assert_json_snapshot!("tag_page", page);
}

#[test]
fn team() {
    let t = Team {
        id: 3,
        org_id: 2,
        name: "owners".into(),
        role: TeamRole::Admin,
        description: String::new(),
        sync_service: Some("ldap".into()),
        sync_group: Some("cn=admins".into()),
        member_count: 2,
        repo_count: 0,
    };
    insta::assert_json_snapshot!(
        "team_put",
        orgs::TeamPut {
            team: orgs::Team::new(&t),
            new_team: true,
        }
    );
}

#[test]
fn robot() {
    let row = Account {
        id: 9,
        name: "acme+deployer".into(),
        kind: AccountKind::Robot,
        email: None,
        superuser: false,
        enabled: true,
        has_password: false,
        owner_id: Some(2),
        description: Some("CI pushes".into()),
        metadata: Some(r#"{"team": "platform"}"#.into()),
        tag_expiration_s: None,
        failed_logins: 0,
        last_failed_at: None,
        created_at: T0,
        last_accessed: None,
    };
    insta::assert_json_snapshot!("robot", robots::Robot::new(&row, Some("TOKEN".into())));
    let perms = RepoPermissions::new(&[Permission {
        repo: "acme/web".into(),
        repo_visibility: Visibility::Private,
        grantee: "acme+deployer".into(),
        grantee_kind: GranteeKind::Robot,
        role: Role::Write,
    }]);
    insta::assert_json_snapshot!("robot_permissions", perms);
}

#[test]
fn error_bodies() {
    let e = RestError::bad("field \"name\" is required (a string)");
    insta::assert_json_snapshot!("error", e.body());
    let ro = RestError {
        readonly: true,
        ..RestError::new(503, crate::READONLY_MESSAGE)
    };
    insta::assert_json_snapshot!("error_readonly", ro.body());
}
