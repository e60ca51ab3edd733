//! The OpenAPI document served at `/api/v1/discovery`: valid per the OpenAPI 3.1 schema (checked
//! by `openapi-spec-validator` from PyPI, installed by ./scripts/test.sh), and covering every
//! endpoint the server answers (each documented operation is called: none may be 404 "no API
//! endpoint matches").

mod common;

use common::Berth;
use serde_json::Value;
use std::path::Path;

fn validator() -> std::path::PathBuf {
    let v = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/test-venv/bin/openapi-spec-validator");
    assert!(
        v.exists(),
        "openapi-spec-validator is not installed at {}: run ./scripts/test.sh",
        v.display()
    );
    v
}

#[test]
fn discovery_document_validates_and_covers_every_endpoint() {
    let b = Berth::start();
    let http = reqwest::blocking::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    // Anonymous callers may read the document.
    let r = http
        .get(b.url("/api/v1/discovery"))
        .send()
        .expect("discovery");
    assert_eq!(r.status().as_u16(), 200);
    let doc: Value = r.json().expect("json");
    assert_eq!(doc["openapi"], "3.1.0");

    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("openapi.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&doc).expect("json")).expect("write");
    let out = std::process::Command::new(validator())
        .arg(&file)
        .output()
        .expect("run openapi-spec-validator");
    assert!(
        out.status.success(),
        "the OpenAPI document does not validate:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // Quay's paths that scripts depend on are there with Quay's verbs.
    let paths = doc["paths"].as_object().expect("paths");
    for (path, verbs) in [
        (
            "/api/v1/organization/{orgname}/robots/{robot_shortname}",
            &["get", "put", "delete"][..],
        ),
        (
            "/api/v1/repository/{repository}/permissions/user/{username}",
            &["get", "put", "delete"],
        ),
        (
            "/api/v1/repository/{repository}/permissions/team/{teamname}",
            &["get", "put", "delete"],
        ),
        (
            "/api/v1/organization/{orgname}/team/{teamname}/members/{membername}",
            &["put", "delete"],
        ),
        ("/api/v1/user/apptoken", &["get", "post"]),
        ("/api/v1/superuser/users/", &["get", "post"]),
        ("/api/v1/user/initialize", &["post"]),
        (
            "/api/v1/organization/{orgname}/prototypes",
            &["get", "post"],
        ),
    ] {
        for v in verbs {
            assert!(
                paths.get(path).and_then(|p| p.get(v)).is_some(),
                "{v} {path} is not documented"
            );
        }
    }

    // Bodies are described by their types' schemas: every `$ref` resolves, and the repository
    // view and its creation body carry Quay's fields.
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    for r in &refs {
        let name = r.trim_start_matches("#/components/schemas/");
        assert!(schemas.contains_key(name), "dangling $ref {r}");
    }
    let resolve = |v: &Value| -> Value {
        v["$ref"]
            .as_str()
            .and_then(|r| schemas.get(r.trim_start_matches("#/components/schemas/")))
            .cloned()
            .unwrap_or_else(|| v.clone())
    };
    let get_repo = &paths["/api/v1/repository/{repository}"]["get"]["responses"]["200"];
    let repo = resolve(&get_repo["content"]["application/json"]["schema"]);
    for field in [
        "namespace",
        "name",
        "is_public",
        "can_admin",
        "tag_expiration_s",
        "tags",
    ] {
        assert!(
            repo["properties"].get(field).is_some(),
            "repository view lacks {field}: {repo}"
        );
    }
    let create = &paths["/api/v1/repository"]["post"];
    assert!(create["responses"].get("201").is_some(), "{create}");
    let body = resolve(&create["requestBody"]["content"]["application/json"]["schema"]);
    let required: Vec<&str> = body["required"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert!(
        required.contains(&"repository") && required.contains(&"visibility"),
        "{body}"
    );

    // Every documented operation is served: calling it with placeholder parameters as the
    // superuser reaches a handler (its answer may be 4xx about the parameters, but never the
    // router's "no API endpoint matches" or 405).
    let admin = common::admin_headers();
    let mut unserved = Vec::new();
    let mut count = 0;
    for (path, item) in paths {
        for (verb, op) in item.as_object().expect("path item") {
            count += 1;
            // Deleting the caller itself would turn every later call into a 401.
            if path == "/api/v1/user/" && verb == "delete" {
                continue;
            }
            assert!(
                op["summary"].is_string() && op["operationId"].is_string(),
                "{verb} {path}"
            );
            let concrete = path
                .replace("{repository}", "nosuchns/nosuchrepo")
                .replace("{digest}", &format!("sha256:{}", "0".repeat(64)))
                .split('/')
                .map(|s| if s.starts_with('{') { "placeholder" } else { s })
                .collect::<Vec<_>>()
                .join("/");
            let method = reqwest::Method::from_bytes(verb.to_uppercase().as_bytes()).expect("verb");
            let mut req = http
                .request(method, b.url(&concrete))
                .headers(admin.clone());
            if op.get("requestBody").is_some() {
                req = req.json(&serde_json::json!({}));
            }
            let r = req.send().expect("call");
            let status = r.status().as_u16();
            let body = r.text().unwrap_or_default();
            if status == 405 || body.contains("no API endpoint matches") {
                unserved.push(format!("{verb} {path} -> {status} {body}"));
            }
        }
    }
    assert!(count >= 60, "only {count} operations documented");
    assert!(
        unserved.is_empty(),
        "documented but not served:\n{}",
        unserved.join("\n")
    );
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                out.push(r.clone());
            }
            m.values().for_each(|x| collect_refs(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| collect_refs(x, out)),
        _ => {}
    }
}
