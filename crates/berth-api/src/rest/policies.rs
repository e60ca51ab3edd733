//! What the immutability and auto-prune routes share: the level a path names, and the handlers
//! every policy kind has, generic over the kind. Each parses (the body into the kind's request
//! type), makes one core call, renders the kind's view.

use super::{Created, Ctx, Reply, RestError};
use crate::AppState;
use berth_core::Caller;
use berth_core::policies::{Level, Policies, ScopedPolicy};
use serde::de::DeserializeOwned;
use serde::{Serialize, Serializer};
use serde_json::Value;
use std::sync::Arc;
use utoipa::ToSchema;

type Res<T> = Result<T, RestError>;

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

/// A policy kind as the API speaks it: its request body, its view, its list.
pub(super) trait PolicyApi: ScopedPolicy {
    type Body: DeserializeOwned + ToSchema + Send + 'static;
    type View: Serialize + ToSchema + Send + 'static;
    type List: Serialize + ToSchema + Send + 'static;
    fn fields(body: Self::Body) -> Self::Fields;
    fn view(&self) -> Self::View;
    fn list(views: Vec<Self::View>) -> Self::List;
}

/// `{"uuid": …}`: what a change of a policy answers.
#[derive(Serialize, ToSchema)]
pub struct PolicyId {
    pub uuid: String,
}

/// A policy setting Quay sends and answers as JSON of either type (a number or a string).
#[derive(ToSchema)]
#[schema(value_type = Object)]
pub struct AnyJson(pub Value);

impl Serialize for AnyJson {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for AnyJson {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<AnyJson, D::Error> {
        Value::deserialize(d).map(AnyJson)
    }
}

fn policies(st: &AppState) -> Policies<'_> {
    Policies::new(&st.registry, &st.auth)
}

/// The authenticated caller (or 401) and its address, for a change's audit record.
fn caller(ctx: &Ctx) -> Result<Caller<'_>, RestError> {
    Ok(Caller::new(ctx.actor()?, ctx.ip.as_deref()))
}

pub(super) async fn list<P: PolicyApi>(st: Arc<AppState>, ctx: Ctx, at: At) -> Res<Reply<P::List>> {
    let ps: Vec<P> = policies(&st).list(ctx.actor()?, &at.level(&ctx)).await?;
    Ok(Reply::new(P::list(ps.iter().map(P::view).collect())))
}

pub(super) async fn get<P: PolicyApi>(st: Arc<AppState>, ctx: Ctx, at: At) -> Res<Reply<P::View>> {
    let p: P = policies(&st)
        .get(ctx.actor()?, &at.level(&ctx), ctx.p("policy_uuid"))
        .await?;
    Ok(Reply::new(p.view()))
}

pub(super) async fn create<P: PolicyApi>(
    st: Arc<AppState>,
    ctx: Ctx,
    at: At,
    body: P::Body,
) -> Res<Created<PolicyId>> {
    let p: P = policies(&st)
        .create(caller(&ctx)?, &at.level(&ctx), P::fields(body))
        .await?;
    Ok(Reply::new(PolicyId {
        uuid: p.uuid().to_string(),
    }))
}

pub(super) async fn update<P: PolicyApi>(
    st: Arc<AppState>,
    ctx: Ctx,
    at: At,
    body: P::Body,
) -> Res<Reply<PolicyId>> {
    let p: P = policies(&st)
        .update(
            caller(&ctx)?,
            &at.level(&ctx),
            ctx.p("policy_uuid"),
            P::fields(body),
        )
        .await?;
    Ok(Reply::new(PolicyId {
        uuid: p.uuid().to_string(),
    }))
}

pub(super) async fn delete<P: PolicyApi>(
    st: Arc<AppState>,
    ctx: Ctx,
    at: At,
) -> Res<Reply<PolicyId>> {
    let p: P = policies(&st)
        .delete(caller(&ctx)?, &at.level(&ctx), ctx.p("policy_uuid"))
        .await?;
    Ok(Reply::new(PolicyId {
        uuid: p.uuid().to_string(),
    }))
}

pub(super) async fn dryrun(st: Arc<AppState>, ctx: Ctx, at: At) -> Res<Reply<Value>> {
    let plan = policies(&st)
        .prune_dry_run(ctx.actor()?, &at.level(&ctx), ctx.p("policy_uuid"))
        .await?;
    Ok(Reply::new(serde_json::to_value(plan).unwrap_or_default()))
}

pub(super) async fn run(st: Arc<AppState>, ctx: Ctx, at: At) -> Res<Reply<Value>> {
    let done = policies(&st)
        .prune_now(ctx.actor()?, &at.level(&ctx), ctx.p("policy_uuid"))
        .await?;
    Ok(Reply::new(serde_json::json!({"tags": done})))
}

/// Route handlers that call `$f` with the level `$at` (and the request body, for a route that
/// takes one).
macro_rules! at_level {
    ($($name:ident ($($b:ident : $bt:ty)?) -> $out:ty => $f:path, $at:expr;)*) => {
        $(async fn $name(st: Arc<AppState>, ctx: Ctx $(, $b: $bt)?) -> Result<$out, RestError> {
            $f(st, ctx, $at $(, $b)?).await
        })*
    };
}
pub(super) use at_level;
