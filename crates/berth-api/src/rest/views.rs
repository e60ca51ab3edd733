//! Views several endpoints share: Quay's avatar, entity and repository-permission objects.

use serde::Serialize;
use utoipa::ToSchema;

/// Quay's avatar object: a colour derived from the name (no external service).
#[derive(Serialize, ToSchema, Clone, Debug)]
pub struct Avatar {
    pub name: String,
    pub hash: String,
    pub color: String,
    pub kind: String,
}

impl Avatar {
    pub fn of(name: &str, kind: &str) -> Avatar {
        use sha2::Digest as _;
        let hash = hex::encode(sha2::Sha256::digest(name.as_bytes()));
        const COLORS: [&str; 8] = [
            "#969696", "#aec7e8", "#ff7f0e", "#ffbb78", "#2ca02c", "#98df8a", "#d62728", "#ff9896",
        ];
        let idx = usize::from_str_radix(&hash[..2], 16).unwrap_or(0) % COLORS.len();
        Avatar {
            name: name.into(),
            hash,
            color: COLORS[idx].into(),
            kind: kind.into(),
        }
    }
}

/// A user, robot, team or organization as Quay names one: robots are `kind: "user"` with
/// `is_robot`.
#[derive(Serialize, ToSchema, Clone, Debug)]
pub struct Entity {
    pub name: String,
    pub kind: String,
    pub is_robot: bool,
    pub avatar: Avatar,
}

impl Entity {
    pub fn new(name: &str, kind: &str) -> Entity {
        Entity {
            name: name.into(),
            kind: if kind == "robot" { "user" } else { kind }.into(),
            is_robot: kind == "robot",
            avatar: Avatar::of(name, kind),
        }
    }
}

/// A team named in a member's or robot's list of teams.
#[derive(Serialize, ToSchema, Clone, Debug)]
pub struct TeamRef {
    pub name: String,
    pub avatar: Avatar,
}

impl TeamRef {
    pub fn new(name: &str) -> TeamRef {
        TeamRef {
            name: name.into(),
            avatar: Avatar::of(name, "team"),
        }
    }
}

/// Quay's `{"permissions": [{"repository": {...}, "role"}]}`: one grantee's permissions.
#[derive(Serialize, ToSchema)]
pub struct RepoPermissions {
    pub permissions: Vec<RepoPermission>,
}

#[derive(Serialize, ToSchema)]
pub struct RepoPermission {
    pub repository: RepoRef,
    pub role: String,
}

#[derive(Serialize, ToSchema)]
pub struct RepoRef {
    pub name: String,
    pub full_name: String,
    pub is_public: bool,
}

impl RepoPermissions {
    pub fn new(perms: &[berth_core::Permission]) -> RepoPermissions {
        RepoPermissions {
            permissions: perms
                .iter()
                .map(|p| RepoPermission {
                    repository: RepoRef {
                        name: p
                            .repo
                            .split_once('/')
                            .map(|x| x.1)
                            .unwrap_or(&p.repo)
                            .into(),
                        full_name: p.repo.clone(),
                        is_public: p.repo_visibility == berth_core::auth::Visibility::Public,
                    },
                    role: p.role.to_string(),
                })
                .collect(),
        }
    }
}
