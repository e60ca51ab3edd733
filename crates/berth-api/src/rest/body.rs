//! Typed bodies. A route names its request type (`Deserialize + ToSchema`, parsed once here, before
//! the handler runs) and its answer type ([`Reply<T, STATUS>`], `T: Serialize + ToSchema`); the
//! OpenAPI document takes both schemas from the same types the handler uses, so the two cannot
//! drift apart.

use super::RestError;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use utoipa::ToSchema;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::{RefOr, schema::SchemaType};

/// A success answer: `T` as JSON with status `S`, or no body at all when `S` is 204.
pub struct Reply<T, const S: u16 = 200> {
    body: Payload<T>,
    headers: HeaderMap,
}

enum Payload<T> {
    Json(T),
    /// Another representation of the same answer (an export format), sent as it is.
    Raw(Response),
}

/// 201 with `T`.
pub type Created<T> = Reply<T, 201>;
/// 204, no body.
pub type Done = Reply<NoBody, 204>;

/// The body of a 204: none.
#[derive(Serialize, ToSchema)]
pub struct NoBody;

/// `{}`: Quay answers some changes with an empty object.
#[derive(Serialize, ToSchema)]
pub struct EmptyObject {}

/// `{"success": true}`.
#[derive(Serialize, ToSchema)]
pub struct Success {
    pub success: bool,
}

impl Success {
    pub fn yes() -> Success {
        Success { success: true }
    }
}

impl<T, const S: u16> Reply<T, S> {
    pub fn new(body: T) -> Self {
        Reply {
            body: Payload::Json(body),
            headers: HeaderMap::new(),
        }
    }

    /// Answers `resp` as it is (e.g. a JSON-lines export of what `T` describes page by page).
    pub fn raw(resp: Response) -> Self {
        Reply {
            body: Payload::Raw(resp),
            headers: HeaderMap::new(),
        }
    }

    /// Adds a header to the answer (a cookie, a `Location`).
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.append(name, value);
        self
    }
}

/// `Ok(204)`.
pub fn done() -> Result<Done, RestError> {
    Ok(Reply::new(NoBody))
}

/// What the router and the document need from a route's answer type.
pub trait Answer: Send + 'static {
    /// The status of a success.
    fn status() -> u16;
    /// The body's schema (a `$ref` for named types, registered in `schemas`); `None`: no body.
    fn schema(schemas: &mut Schemas) -> Option<Value>;
    fn into_response(self) -> Response;
}

impl<T: Serialize + ToSchema + Send + 'static, const S: u16> Answer for Reply<T, S> {
    fn status() -> u16 {
        S
    }

    fn schema(schemas: &mut Schemas) -> Option<Value> {
        (S != 204).then(|| schemas.of::<T>())
    }

    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(S).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = match self.body {
            Payload::Raw(r) => r,
            Payload::Json(_) if S == 204 => status.into_response(),
            Payload::Json(b) => (status, axum::Json(b)).into_response(),
        };
        for (name, value) in &self.headers {
            resp.headers_mut().append(name, value.clone());
        }
        resp
    }
}

/// The named schemas a document refers to (`#/components/schemas/NAME`), sorted by name.
#[derive(Default)]
pub struct Schemas {
    pub named: BTreeMap<String, Value>,
    /// Names two different schemas claimed (a test fails on any).
    pub clashes: Vec<String>,
}

impl Schemas {
    /// The schema of `T`: a `$ref` for a named object type (registered with the types it uses),
    /// else inline.
    pub fn of<T: ToSchema>(&mut self) -> Value {
        let mut deps = Vec::new();
        T::schemas(&mut deps);
        for (name, s) in deps {
            self.insert(name, to_json(&s));
        }
        let s = to_json(&T::schema());
        let named = s.get("properties").is_some() || s.get("allOf").is_some();
        if !named {
            return s;
        }
        let name = T::name().to_string();
        self.insert(name.clone(), s);
        serde_json::json!({ "$ref": format!("#/components/schemas/{name}") })
    }

    fn insert(&mut self, name: String, s: Value) {
        match self.named.get(&name) {
            Some(old) if *old != s => self.clashes.push(name),
            Some(_) => {}
            None => {
                self.named.insert(name, s);
            }
        }
    }
}

fn to_json(s: &RefOr<Schema>) -> Value {
    serde_json::to_value(s).unwrap_or_default()
}

/// A string that must not be empty (a required name, password, role…).
#[derive(Debug, Clone)]
pub struct NonEmpty(String);

/// The error text of an empty [`NonEmpty`], which [`parse`] turns into "is required".
const EMPTY: &str = "\u{0}empty";

impl<'de> Deserialize<'de> for NonEmpty {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<NonEmpty, D::Error> {
        let s = String::deserialize(d)?;
        if s.is_empty() {
            return Err(D::Error::custom(EMPTY));
        }
        Ok(NonEmpty(s))
    }
}

impl std::ops::Deref for NonEmpty {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl utoipa::PartialSchema for NonEmpty {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::String))
            .min_length(Some(1))
            .description(Some("A string that must not be empty"))
            .into()
    }
}
impl ToSchema for NonEmpty {}

/// Parses a request body (`Null` when the request had none, read as `{}`) into `T`. A mismatch
/// is Quay's 400, naming the field: `field "name" is required (a string)`.
pub fn parse<T: DeserializeOwned + ToSchema>(body: Value) -> Result<T, RestError> {
    let body = match body {
        Value::Null => Value::Object(serde_json::Map::new()),
        v => v,
    };
    serde_path_to_error::deserialize::<_, T>(body).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        RestError::bad(message::<T>(&path, &inner))
    })
}

fn message<T: ToSchema>(path: &str, inner: &str) -> String {
    let at = |field: &str| match path {
        "." => field.to_string(),
        p => format!("{p}.{field}"),
    };
    if let Some(field) = inner
        .strip_prefix("missing field `")
        .and_then(|s| s.strip_suffix('`'))
    {
        let hint = if path == "." { hint::<T>(field) } else { "" };
        return format!("field {:?} is required{hint}", at(field));
    }
    if inner == EMPTY {
        return format!("field {path:?} is required (a string)");
    }
    match path {
        "." => format!("the body does not fit this endpoint: {inner}"),
        p => format!("field {p:?}: {inner}"),
    }
}

/// " (a string)" etc. for a top-level field of `T`, from its schema.
fn hint<T: ToSchema>(field: &str) -> &'static str {
    let s = to_json(&T::schema());
    let mut p = s["properties"][field].clone();
    if let Some(r) = p["$ref"].as_str() {
        let mut deps = Vec::new();
        T::schemas(&mut deps);
        let name = r.trim_start_matches("#/components/schemas/");
        if let Some((_, d)) = deps.iter().find(|(n, _)| n == name) {
            p = to_json(d);
        }
    }
    match p["type"].as_str() {
        Some("string") => " (a string)",
        Some("integer") => " (an integer)",
        Some("boolean") => " (true or false)",
        Some("array") => " (a list)",
        Some("object") => " (an object)",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, ToSchema)]
    #[allow(dead_code)]
    struct Body {
        name: NonEmpty,
        count: Option<i64>,
        nested: Option<Inner>,
    }
    #[derive(Deserialize, ToSchema)]
    #[allow(dead_code)]
    struct Inner {
        kind: String,
    }

    fn err(v: Value) -> String {
        match parse::<Body>(v) {
            Ok(_) => String::from("parsed"),
            Err(e) => e.message,
        }
    }

    #[test]
    fn messages_name_the_field() {
        use serde_json::json;
        assert_eq!(err(Value::Null), "field \"name\" is required (a string)");
        assert_eq!(
            err(json!({"name": ""})),
            "field \"name\" is required (a string)"
        );
        assert!(
            err(json!({"name": "x", "count": "many"})).starts_with("field \"count\": invalid type")
        );
        assert_eq!(
            err(json!({"name": "x", "nested": {}})),
            "field \"nested.kind\" is required"
        );
        assert_eq!(err(json!({"name": "x", "count": 3})), "parsed");
    }
}
