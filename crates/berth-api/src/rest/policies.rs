//! What the immutability and auto-prune routes share: the level a path names, and the handlers
//! every policy kind has, generic over the kind. Each parses, makes one core call, renders.

use super::{Ctx, R, RestError, created, json};
use crate::AppState;
use berth_core::Caller;
use berth_core::policies::{Level, Policies, ScopedPolicy};
use std::sync::Arc;

/// The level a route's path names.
#[derive(Clone, Copy)]
pub(super) enum At {
    Org,
    User,
    Repo,
}

impl At {
    fn level(self, ctx: &Ctx) -> Level<'_> {
        match self {
            At::Org => Level::Organization(ctx.p("orgname")),
            At::User => Level::User,
            At::Repo => Level::Repository(ctx.p("repository")),
        }
    }
}

/// A policy kind whose settings come in a JSON body.
pub(super) trait PolicyBody: ScopedPolicy {
    fn fields(ctx: &Ctx) -> Self::Fields;
}

pub(super) fn policies(st: &AppState) -> Policies<'_> {
    Policies::new(&st.registry, &st.auth)
}

/// The authenticated caller (or 401) and its address, for a change's audit record.
pub(super) fn caller(ctx: &Ctx) -> Result<Caller<'_>, RestError> {
    Ok(Caller::new(ctx.actor()?, ctx.ip.as_deref()))
}

pub(super) async fn list<P: ScopedPolicy>(st: Arc<AppState>, ctx: Ctx, at: At) -> R {
    let ps: Vec<P> = policies(&st).list(ctx.actor()?, &at.level(&ctx)).await?;
    json(serde_json::json!({"policies": ps.iter().map(P::to_json).collect::<Vec<_>>()}))
}

pub(super) async fn get<P: ScopedPolicy>(st: Arc<AppState>, ctx: Ctx, at: At) -> R {
    let p: P = policies(&st)
        .get(ctx.actor()?, &at.level(&ctx), ctx.p("policy_uuid"))
        .await?;
    json(p.to_json())
}

pub(super) async fn create<P: PolicyBody>(st: Arc<AppState>, ctx: Ctx, at: At) -> R {
    let p: P = policies(&st)
        .create(caller(&ctx)?, &at.level(&ctx), P::fields(&ctx))
        .await?;
    created(serde_json::json!({"uuid": p.uuid()}))
}

pub(super) async fn update<P: PolicyBody>(st: Arc<AppState>, ctx: Ctx, at: At) -> R {
    let p: P = policies(&st)
        .update(
            caller(&ctx)?,
            &at.level(&ctx),
            ctx.p("policy_uuid"),
            P::fields(&ctx),
        )
        .await?;
    json(serde_json::json!({"uuid": p.uuid()}))
}

pub(super) async fn delete<P: ScopedPolicy>(st: Arc<AppState>, ctx: Ctx, at: At) -> R {
    let p: P = policies(&st)
        .delete(caller(&ctx)?, &at.level(&ctx), ctx.p("policy_uuid"))
        .await?;
    json(serde_json::json!({"uuid": p.uuid()}))
}

pub(super) async fn dryrun(st: Arc<AppState>, ctx: Ctx, at: At) -> R {
    let plan = policies(&st)
        .prune_dry_run(ctx.actor()?, &at.level(&ctx), ctx.p("policy_uuid"))
        .await?;
    json(serde_json::to_value(plan).unwrap_or_default())
}

pub(super) async fn run(st: Arc<AppState>, ctx: Ctx, at: At) -> R {
    let done = policies(&st)
        .prune_now(ctx.actor()?, &at.level(&ctx), ctx.p("policy_uuid"))
        .await?;
    json(serde_json::json!({"tags": done}))
}

/// Route handlers that call `$f` with the level `$at`.
macro_rules! at_level {
    ($($name:ident => $f:path, $at:expr;)*) => {
        $(async fn $name(st: Arc<AppState>, ctx: Ctx) -> R { $f(st, ctx, $at).await })*
    };
}
pub(super) use at_level;
