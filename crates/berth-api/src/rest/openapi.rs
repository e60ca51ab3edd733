//! The OpenAPI 3.1 document of `/api/v1`, generated from the route table (so it lists every
//! endpoint the router serves), at Quay's discovery path. Request and response schemas are the
//! `ToSchema` of the types each route parses and answers (`#/components/schemas`).

use super::{Ctx, Doc, Reply, RestError, Route, Schemas, route};
use crate::AppState;
use serde_json::{Map, Value, json as j};
use std::sync::Arc;

pub fn routes() -> Vec<Route> {
    vec![
        route!(GET "/api/v1/discovery", "This OpenAPI document", "anonymous", discovery() -> Reply<Value>),
    ]
}

async fn discovery(_st: Arc<AppState>, _ctx: Ctx) -> Result<Reply<Value>, RestError> {
    Ok(Reply::new(document(&super::routes())))
}

fn operation_id(r: &Route) -> String {
    let mut id = r.method.as_str().to_lowercase();
    for seg in r.path.trim_start_matches("/api/v1/").split('/') {
        let seg = seg.trim_matches(|c| c == '{' || c == '}');
        for part in seg.split(|c: char| !c.is_ascii_alphanumeric()) {
            let mut c = part.chars();
            if let Some(f) = c.next() {
                id.push(f.to_ascii_uppercase());
                id.push_str(c.as_str());
            }
        }
    }
    id
}

/// Builds the document.
pub fn document(routes: &[Route]) -> Value {
    build(routes).0
}

/// Whether a body of this schema may be `{}` (no required fields).
fn may_be_empty(schema: &Value, schemas: &Schemas) -> bool {
    let resolved = schema["$ref"]
        .as_str()
        .and_then(|r| {
            schemas
                .named
                .get(r.trim_start_matches("#/components/schemas/"))
        })
        .unwrap_or(schema);
    resolved["required"].as_array().is_none_or(Vec::is_empty)
}

/// The document, and the named schemas that clashed (two types claiming one name).
pub fn build(routes: &[Route]) -> (Value, Vec<String>) {
    let mut schemas = Schemas::default();
    let error_ref = schemas.of::<super::ErrorBody>();
    let mut paths: Map<String, Value> = Map::new();
    for r in routes {
        let mut params: Vec<Value> = Vec::new();
        for seg in r.path.split('/') {
            if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                let desc = if name == "repository" {
                    "namespace/name of the repository; may contain '/'"
                } else {
                    name
                };
                params.push(j!({"name": name, "in": "path", "required": true, "description": desc, "schema": {"type": "string"}}));
            }
        }
        for q in r.query {
            params.push(
                j!({"name": q, "in": "query", "required": false, "schema": {"type": "string"}}),
            );
        }
        let Doc {
            request,
            status,
            response,
        } = &r.doc;
        let (status, body, request) = (
            status(),
            response(&mut schemas),
            request.map(|f| f(&mut schemas)),
        );
        let mut responses = Map::new();
        responses.insert(
            status.to_string(),
            match body {
                None => j!({"description": "Done"}),
                Some(schema) => {
                    j!({"description": "Success", "content": {"application/json": {"schema": schema}}})
                }
            },
        );
        for (code, what) in [
            ("400", "Invalid request"),
            ("401", "Authentication required or failed"),
            ("403", "Not allowed for this caller"),
            ("404", "Not found"),
        ] {
            responses.insert(
                code.into(),
                j!({"description": what, "content": {"application/json": {"schema": error_ref}}}),
            );
        }
        let mut op = j!({
            "operationId": operation_id(r),
            "summary": r.summary,
            "description": format!("Requires: {}.", r.scope),
            "tags": [r.path.trim_start_matches("/api/v1/").split('/').next().unwrap_or("api")],
            "parameters": params,
            "responses": responses,
            "x-required-scope": r.scope,
        });
        if r.scope == "anonymous" {
            op["security"] = j!([{}, {"bearer": []}, {"basic": []}]);
        }
        if let Some(schema) = request {
            let required = !may_be_empty(&schema, &schemas);
            op["requestBody"] =
                j!({"required": required, "content": {"application/json": {"schema": schema}}});
        }
        let entry = paths.entry(r.path.to_string()).or_insert_with(|| j!({}));
        entry[r.method.as_str().to_lowercase()] = op;
    }
    let doc = j!({
        "openapi": "3.1.0",
        "info": {
            "title": "Berth registry API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Quay-compatible REST API of the Berth container registry. Authenticate with an API token (Authorization: Bearer) or Basic credentials.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}, {"basic": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "An API token (POST /api/v1/user/apitoken)"},
                "basic": {"type": "http", "scheme": "basic", "description": "A user's password or app-specific token"},
            },
            "schemas": schemas.named,
        },
    });
    (doc, schemas.clashes)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_route_is_documented_once() {
        let routes = super::super::routes();
        let doc = super::document(&routes);
        let mut ids = std::collections::HashSet::new();
        for r in &routes {
            let op = &doc["paths"][r.path][r.method.as_str().to_lowercase()];
            assert!(op.is_object(), "{} {} missing", r.method, r.path);
            assert!(
                ids.insert(op["operationId"].as_str().unwrap_or("").to_string()),
                "duplicate operationId for {}",
                r.path
            );
        }
    }
}
