//! The policy and quota doors against a real (SQLite) database: who each level refuses, that a
//! change and its audit record commit together or not at all, and what validation says.

use super::store::Store;
use super::*;
use crate::auth::AuthConfig;
use crate::quotas::{QuotaPath, QuotaSize, Quotas, ThresholdFields};
use crate::{CoreConfig, ImmutabilityPolicy, Locations};
use std::sync::Arc;

struct World {
    _dir: tempfile::TempDir,
    registry: Registry,
    auth: Auth,
    /// Administers organization `acme` and its repository `acme/app`.
    alice: Actor,
    /// A user with no role anywhere.
    bob: Actor,
    root: Actor,
}

impl World {
    async fn new() -> World {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = crate::Db::connect(
            &format!("sqlite://{}", dir.path().join("t.db").display()),
            4,
        )
        .await
        .expect("connect");
        db.migrate().await.expect("migrate");
        let store = berth_storage::FsStore::open(dir.path().join("blobs"), false).expect("store");
        let registry = Registry::new(
            db.clone(),
            Locations::single("local", Arc::new(store)),
            CoreConfig::default(),
        );
        let auth = Auth::new(db, AuthConfig::default()).await.expect("auth");
        let user = |name: &'static str| {
            let auth = auth.clone();
            async move {
                let row = auth
                    .create_user(None, name, None, None, name == "root")
                    .await
                    .expect("user");
                auth.actor(&row, "password")
            }
        };
        let (alice, bob, root) = (user("alice").await, user("bob").await, user("root").await);
        auth.create_org(&alice, "acme", None).await.expect("org");
        auth.create_repo(&alice, "acme/app", "private", None, None)
            .await
            .expect("repo");
        World {
            _dir: dir,
            registry,
            auth,
            alice,
            bob,
            root,
        }
    }

    fn policies(&self) -> Policies<'_> {
        Policies::new(&self.registry, &self.auth)
    }

    fn quotas(&self) -> Quotas<'_> {
        Quotas::new(&self.registry, &self.auth)
    }

    /// From now on every audit write fails (as a full disk or a lost connection would).
    async fn break_audit_log(&self) {
        sqlx::query(
            "CREATE TRIGGER audit_down BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'audit log down'); END",
        )
        .execute(self.registry.db.pool())
        .await
        .expect("trigger");
    }

    async fn audit_kinds(&self) -> Vec<String> {
        let q = berth_db::AuditQuery {
            to: i64::MAX,
            limit: 100,
            ..Default::default()
        };
        self.registry
            .db
            .query_audit(&q)
            .await
            .expect("audit")
            .into_iter()
            .map(|r| r.kind)
            .collect()
    }
}

fn scoped(actor: &Actor, scopes: &[&str]) -> Actor {
    Actor {
        scopes: Some(scopes.iter().map(|s| s.to_string()).collect()),
        ..actor.clone()
    }
}

fn pattern(p: &str) -> ImmutabilityFields {
    ImmutabilityFields {
        tag_pattern: Some(p.into()),
        tag_pattern_matches: None,
    }
}

fn keep(n: i64) -> AutoPruneFields {
    AutoPruneFields {
        method: Some("number_of_tags".into()),
        value: serde_json::json!(n),
        ..AutoPruneFields::default()
    }
}

fn is_denied(r: Result<Scope>) -> bool {
    matches!(r, Err(Error::Denied(_)))
}

fn is_missing(r: Result<Scope>) -> bool {
    matches!(r, Err(e) if e.is_not_found())
}

#[tokio::test]
async fn each_level_admits_its_administrators_only() {
    let w = World::new().await;
    let scope = |a: Actor, at: Level<'static>| {
        let auth = w.auth.clone();
        async move { auth.policy_scope(&a, &at).await }
    };
    let org = Level::Organization("acme");
    let repo = Level::Repository("acme/app");

    let s = scope(w.alice.clone(), org).await.expect("org admin");
    assert_eq!((s.namespace(), s.repository()), ("acme", None));
    assert!(is_denied(scope(w.bob.clone(), org).await), "not an admin");
    assert!(
        is_denied(scope(scoped(&w.alice, &["repo:admin"]), org).await),
        "an admin's token without org:admin"
    );
    assert!(is_missing(
        scope(w.alice.clone(), Level::Organization("nope")).await
    ));
    assert!(
        is_missing(scope(w.alice.clone(), Level::Organization("bob")).await),
        "a user is not an organization"
    );
    scope(w.root.clone(), org)
        .await
        .expect("superusers administer every organization");

    let s = scope(w.bob.clone(), Level::User)
        .await
        .expect("own namespace");
    assert_eq!((s.namespace(), s.repository()), ("bob", None));
    assert!(
        is_denied(scope(scoped(&w.bob, &["user:read"]), Level::User).await),
        "needs user:admin"
    );
    let robot = Actor {
        kind: AccountKind::Robot,
        ..w.bob.clone()
    };
    assert!(is_denied(scope(robot, Level::User).await), "users only");

    let s = scope(w.alice.clone(), repo).await.expect("repo admin");
    assert_eq!((s.namespace(), s.repository()), ("acme", Some("acme/app")));
    assert!(
        is_missing(scope(w.bob.clone(), repo).await),
        "a private repository stays hidden from who may not read it"
    );
    w.auth
        .set_visibility(&w.alice, "acme/app", "public")
        .await
        .expect("public");
    assert!(
        is_denied(scope(w.bob.clone(), repo).await),
        "readers are refused, not misled"
    );
    assert!(is_missing(
        scope(w.alice.clone(), Level::Repository("acme/none")).await
    ));
}

#[tokio::test]
async fn a_policy_and_its_audit_record_commit_together() {
    let w = World::new().await;
    let p = w.policies();
    let alice = Caller::new(&w.alice, Some("192.0.2.1"));
    let org = Level::Organization("acme");
    let repo = Level::Repository("acme/app");

    let first: ImmutabilityPolicy = p.create(alice, &org, pattern("^v")).await.expect("create");
    let pruning: AutoPrunePolicy = p.create(alice, &repo, keep(3)).await.expect("create");
    let kinds = w.audit_kinds().await;
    assert!(
        kinds.contains(&"create_immutability_policy".to_string()),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&"create_repository_autoprune_policy".to_string()),
        "{kinds:?}"
    );

    w.break_audit_log().await;
    assert!(
        p.create::<ImmutabilityPolicy>(alice, &org, pattern("^x"))
            .await
            .is_err()
    );
    assert!(
        p.create::<AutoPrunePolicy>(alice, &org, keep(1))
            .await
            .is_err()
    );
    assert!(
        p.update::<ImmutabilityPolicy>(alice, &org, &first.uuid, pattern("^y"))
            .await
            .is_err()
    );
    assert!(
        p.delete::<AutoPrunePolicy>(alice, &repo, &pruning.uuid)
            .await
            .is_err()
    );

    let left: Vec<ImmutabilityPolicy> = p.list(&w.alice, &org).await.expect("list");
    assert_eq!(left.len(), 1, "an unaudited create leaves no policy");
    assert_eq!(left[0].pattern, "^v", "an unaudited update changes nothing");
    assert!(
        p.list::<AutoPrunePolicy>(&w.alice, &org)
            .await
            .expect("list")
            .is_empty()
    );
    let kept: AutoPrunePolicy = p.get(&w.alice, &repo, &pruning.uuid).await.expect("kept");
    assert_eq!(kept, pruning, "an unaudited delete deletes nothing");
}

#[tokio::test]
async fn policies_are_found_only_at_their_own_level() {
    let w = World::new().await;
    let p = w.policies();
    let alice = Caller::new(&w.alice, None);
    let org = Level::Organization("acme");
    let repo = Level::Repository("acme/app");
    let made: ImmutabilityPolicy = p.create(alice, &org, pattern("^v")).await.expect("create");
    let at_repo = p
        .get::<ImmutabilityPolicy>(&w.alice, &repo, &made.uuid)
        .await;
    assert!(
        matches!(&at_repo, Err(e) if e.to_string() == format!("no immutability policy {:?}", made.uuid))
    );
    assert!(
        p.delete::<ImmutabilityPolicy>(alice, &repo, &made.uuid)
            .await
            .is_err()
    );
    let gone: ImmutabilityPolicy = p.delete(alice, &org, &made.uuid).await.expect("delete");
    assert_eq!(gone.uuid, made.uuid);
    assert!(
        w.audit_kinds()
            .await
            .contains(&"delete_immutability_policy".to_string())
    );
}

#[test]
fn policy_fields_are_validated_in_core() {
    let at = Scope {
        namespace: "acme".into(),
        repository: None,
    };
    let message = |r: Result<ImmutabilityPolicy>| r.err().map(|e| e.to_string());
    assert_eq!(
        message(ImmutabilityPolicy::build(
            &at,
            "u".into(),
            ImmutabilityFields::default()
        )),
        Some("field \"tagPattern\" is required (a string)".into())
    );
    assert_eq!(
        message(ImmutabilityPolicy::build(
            &at,
            "u".into(),
            pattern(&"a".repeat(257))
        )),
        Some("tagPattern is longer than 256 characters".into())
    );
    assert!(
        message(ImmutabilityPolicy::build(&at, "u".into(), pattern("(")))
            .is_some_and(|m| m.starts_with("tagPattern is not a regular expression"))
    );
    let ok = ImmutabilityPolicy::build(&at, "u".into(), pattern("^v")).expect("valid");
    assert!(
        ok.matches,
        "matching tags are protected unless said otherwise"
    );

    let missing = AutoPrunePolicy::build(&at, "u".into(), AutoPruneFields::default());
    assert_eq!(
        missing.err().map(|e| e.to_string()),
        Some("field \"method\" is required (a string)".into())
    );
    let blank_pattern = AutoPruneFields {
        tag_pattern: Some(String::new()),
        ..keep(2)
    };
    let p = AutoPrunePolicy::build(&at, "u".into(), blank_pattern).expect("valid");
    assert_eq!(
        (p.value.as_str(), p.pattern),
        ("2", None),
        "an empty pattern is none"
    );
    assert_eq!(
        AutoPrunePolicy::audit_kind(Verb::Update, &at),
        "update_namespace_autoprune_policy"
    );
}

#[tokio::test]
async fn quotas_are_read_by_members_and_changed_by_superusers_with_their_audit_record() {
    let w = World::new().await;
    let q = w.quotas();
    let acme = QuotaPath::Namespace("acme");
    let size = QuotaSize {
        limit: Some("10 GiB".into()),
        limit_bytes: None,
    };
    let refused = q.create(Caller::new(&w.alice, None), &acme, &size).await;
    assert!(matches!(refused, Err(Error::Denied(_))), "{refused:?}");
    let root = Caller::new(&w.root, None);
    let id = q.create(root, &acme, &size).await.expect("create");
    let again = q.create(root, &QuotaPath::Superuser("acme"), &size).await;
    assert!(matches!(again, Err(Error::AlreadyExists(_))), "{again:?}");
    let listed = q.list(&w.alice, &acme).await.expect("members read");
    assert_eq!(listed[0].id, Some(id));
    assert_eq!(listed[0].limit_bytes, 10 * 1024 * 1024 * 1024);
    assert!(matches!(q.list(&w.bob, &acme).await, Err(Error::Denied(_))));
    assert!(matches!(
        q.list(&w.bob, &QuotaPath::Namespace("alice")).await,
        Err(Error::Denied(_))
    ));
    let missing = q.list(&w.root, &QuotaPath::Namespace("nope")).await;
    assert_eq!(
        missing.err().map(|e| e.to_string()),
        Some("no organization or user namespace \"nope\"".into())
    );
    let missing = q.list(&w.root, &QuotaPath::Superuser("nope")).await;
    assert_eq!(
        missing.err().map(|e| e.to_string()),
        Some("no namespace \"nope\"".into())
    );
    assert!(
        w.audit_kinds()
            .await
            .contains(&"org_create_quota".to_string())
    );

    w.break_audit_log().await;
    let warn = ThresholdFields {
        kind: Some("Warning".into()),
        percent: Some(80),
    };
    let id = id.to_string();
    assert!(q.add_threshold(root, &acme, &id, &warn).await.is_err());
    assert!(
        q.thresholds(&w.alice, &acme, &id)
            .await
            .expect("read")
            .is_empty()
    );
    assert!(q.delete(root, &acme, &id).await.is_err());
    assert_eq!(q.list(&w.alice, &acme).await.expect("read").len(), 1);
}

#[test]
fn quota_fields_are_validated_in_core() {
    let bytes = |limit_bytes: Option<i64>, limit: Option<&str>| {
        QuotaSize {
            limit_bytes,
            limit: limit.map(String::from),
        }
        .bytes()
        .map_err(|e| e.to_string())
    };
    assert_eq!(bytes(Some(5), Some("ignored")), Ok(5));
    assert_eq!(bytes(None, Some("1 KiB")), Ok(1024));
    assert_eq!(
        bytes(Some(0), None),
        Err("a quota must be larger than 0 bytes".into())
    );
    assert!(bytes(None, Some("lots")).is_err_and(|m| m.contains("is not a size")));
    assert!(bytes(None, None).is_err_and(|m| m.starts_with("give limit_bytes")));
    let current = crate::QuotaLimit {
        id: 1,
        kind: berth_db::QuotaLimitKind::Reject,
        percent: 100,
    };
    let change = ThresholdFields {
        kind: None,
        percent: Some(90),
    };
    assert_eq!(
        change.resolve(Some(&current)).ok(),
        Some((berth_db::QuotaLimitKind::Reject, 90))
    );
    assert!(
        change.resolve(None).is_err(),
        "a new threshold needs a type"
    );
    let wrong = ThresholdFields {
        kind: Some("Panic".into()),
        percent: Some(101),
    };
    assert!(
        wrong
            .resolve(None)
            .is_err_and(|e| e.to_string().contains("Warning or Reject"))
    );
}
