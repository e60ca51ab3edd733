//! The REST API beyond the authorization matrix: Quay's first-user bootstrap, OAuth applications
//! and their scoped tokens (as API bearer tokens and as registry passwords), entity search,
//! outside collaborators, and the rules that keep organizations administrable.

mod common;

use common::{ADMIN_PASSWORD, ADMIN_USER, Berth};
use serde_json::{Value, json};

enum Auth<'a> {
    None,
    Basic(&'a str, &'a str),
    Bearer(&'a str),
}

fn call(b: &Berth, method: &str, path: &str, auth: Auth, body: Option<Value>) -> (u16, Value) {
    let c = reqwest::blocking::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let mut req = c.request(
        reqwest::Method::from_bytes(method.as_bytes()).expect("method"),
        b.url(path),
    );
    req = match auth {
        Auth::None => req,
        Auth::Basic(u, p) => req.basic_auth(u, Some(p)),
        Auth::Bearer(t) => req.bearer_auth(t),
    };
    if let Some(body) = body {
        req = req.json(&body);
    }
    let r = req
        .send()
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

fn admin(b: &Berth, method: &str, path: &str, body: Option<Value>) -> Value {
    let (s, v) = call(
        b,
        method,
        path,
        Auth::Basic(ADMIN_USER, ADMIN_PASSWORD),
        body,
    );
    assert!((200..300).contains(&s), "{method} {path} -> {s} {v}");
    v
}

#[test]
fn quay_bootstrap_creates_the_first_user_once() {
    let b = Berth::start_with_env(&[("BERTH_FEATURE_USER_INITIALIZE", "true")]);
    assert!(
        b.log().contains("POST /api/v1/user/initialize"),
        "the start-up message says how to begin: {}",
        b.log()
    );
    // No generated superuser: nobody can log in yet.
    let (s, _) = call(
        &b,
        "GET",
        "/api/v1/user/",
        Auth::Basic(ADMIN_USER, ADMIN_PASSWORD),
        None,
    );
    assert_eq!(s, 401);
    let body = json!({"username": "root", "password": "root-password-1", "email": "root@example.com", "access_token": true});
    let (s, v) = call(
        &b,
        "POST",
        "/api/v1/user/initialize",
        Auth::None,
        Some(body.clone()),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["username"], "root");
    let token = v["access_token"]
        .as_str()
        .expect("access_token")
        .to_string();
    let (s, me) = call(&b, "GET", "/api/v1/user/", Auth::Bearer(&token), None);
    assert_eq!(s, 200, "{me}");
    assert_eq!(me["super_user"], true);
    // Only once.
    let (s, v) = call(
        &b,
        "POST",
        "/api/v1/user/initialize",
        Auth::None,
        Some(body),
    );
    assert_eq!(s, 400, "{v}");
    // Self-service sign-up is off unless FEATURE_USER_CREATION.
    let (s, _) = call(
        &b,
        "POST",
        "/api/v1/user/",
        Auth::None,
        Some(json!({"username": "eve", "password": "eve-password"})),
    );
    assert_eq!(s, 403);
}

#[test]
fn oauth_application_tokens_are_scoped() {
    let b = Berth::start();
    admin(
        &b,
        "POST",
        "/api/v1/superuser/users/",
        Some(json!({"username": "olga", "password": "olga-password"})),
    );
    admin(
        &b,
        "POST",
        "/api/v1/organization/",
        Some(json!({"name": "shop"})),
    );
    admin(
        &b,
        "PUT",
        "/api/v1/organization/shop/team/owners/members/olga",
        None,
    );
    admin(
        &b,
        "POST",
        "/api/v1/repository",
        Some(json!({"namespace": "shop", "repository": "web", "visibility": "private"})),
    );

    let olga = Auth::Basic("olga", "olga-password");
    let (s, app) = call(
        &b,
        "POST",
        "/api/v1/organization/shop/applications",
        olga,
        Some(json!({"name": "deployer", "redirect_uri": "https://ci.example.com/cb"})),
    );
    assert_eq!(s, 201, "{app}");
    let client_id = app["client_id"].as_str().expect("client_id").to_string();
    assert!(
        app["client_secret"].as_str().is_some_and(|s| s.len() >= 32),
        "{app}"
    );
    let (s, again) = call(
        &b,
        "POST",
        &format!("/api/v1/organization/shop/applications/{client_id}/resetclientsecret"),
        Auth::Basic("olga", "olga-password"),
        None,
    );
    assert_eq!(s, 200);
    assert_ne!(again["client_secret"], app["client_secret"], "a new secret");

    let (s, t) = call(
        &b,
        "POST",
        &format!("/api/v1/organization/shop/applications/{client_id}/tokens"),
        Auth::Basic("olga", "olga-password"),
        Some(json!({"name": "read-only", "scope": "repo:read", "expiration": 3600})),
    );
    assert_eq!(s, 201, "{t}");
    let token = t["token"].as_str().expect("token").to_string();
    let (_, list) = admin_list(&b, &client_id);
    assert_eq!(list["tokens"][0]["scope"], "repo:read", "{list}");
    assert!(
        list["tokens"][0].get("token").is_none(),
        "the secret is shown once: {list}"
    );

    // The token reads, and nothing more.
    let (s, v) = call(
        &b,
        "GET",
        "/api/v1/repository/shop/web",
        Auth::Bearer(&token),
        None,
    );
    assert_eq!(s, 200, "{v}");
    let (s, _) = call(
        &b,
        "PUT",
        "/api/v1/repository/shop/web/permissions/user/olga",
        Auth::Bearer(&token),
        Some(json!({"role": "read"})),
    );
    assert_eq!(s, 403, "repo:read cannot change permissions");
    let (s, _) = call(
        &b,
        "GET",
        "/api/v1/organization/shop/robots",
        Auth::Bearer(&token),
        None,
    );
    assert_eq!(s, 403, "repo:read is not org:admin");
    let (s, _) = call(
        &b,
        "GET",
        "/api/v1/superuser/users/",
        Auth::Bearer(&token),
        None,
    );
    assert_eq!(s, 403);
    // As a registry password ($oauthtoken): pull granted, push not.
    let c = reqwest::blocking::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let r: Value = c
        .get(b.url("/v2/auth?service=localhost:5000&scope=repository:shop/web:pull,push"))
        .basic_auth("$oauthtoken", Some(&token))
        .send()
        .expect("token")
        .json()
        .expect("json");
    let jwt = r["token"].as_str().expect("jwt");
    let claims: Value = {
        use base64::Engine;
        let part = jwt.split('.').nth(1).expect("payload");
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(part)
                .expect("b64"),
        )
        .expect("claims")
    };
    assert_eq!(
        claims["access"],
        json!([{"type": "repository", "name": "shop/web", "actions": ["pull"]}]),
        "{claims}"
    );

    // Revoked, it stops working at once.
    let uuid = t["uuid"].as_str().expect("uuid");
    let (s, _) = call(
        &b,
        "DELETE",
        &format!("/api/v1/organization/shop/applications/{client_id}/tokens/{uuid}"),
        Auth::Basic("olga", "olga-password"),
        None,
    );
    assert_eq!(s, 204);
    let (s, _) = call(
        &b,
        "GET",
        "/api/v1/repository/shop/web",
        Auth::Bearer(&token),
        None,
    );
    assert_eq!(s, 401);

    // The audit log saw it all.
    let logs = admin(&b, "GET", "/api/v1/organization/shop/logs", None);
    for kind in [
        "create_application",
        "reset_application_client_secret",
        "create_application_token",
        "revoke_application_token",
    ] {
        assert!(
            logs["logs"].as_array().is_some_and(|l| l
                .iter()
                .any(|e| e["kind"] == kind && e["performer"]["name"] == "olga")),
            "{kind} missing: {logs}"
        );
    }
}

fn admin_list(b: &Berth, client_id: &str) -> (u16, Value) {
    call(
        b,
        "GET",
        &format!("/api/v1/organization/shop/applications/{client_id}/tokens"),
        Auth::Basic("olga", "olga-password"),
        None,
    )
}

#[test]
fn entities_collaborators_and_owners() {
    let b = Berth::start();
    for u in ["pat", "quinn", "ron"] {
        admin(
            &b,
            "POST",
            "/api/v1/superuser/users/",
            Some(json!({"username": u, "password": "password-123"})),
        );
    }
    let pat = || Auth::Basic("pat", "password-123");
    let (s, v) = call(
        &b,
        "POST",
        "/api/v1/organization/",
        pat(),
        Some(json!({"name": "labs"})),
    );
    assert_eq!(s, 201, "{v}");
    call(
        &b,
        "PUT",
        "/api/v1/organization/labs/team/readers",
        pat(),
        Some(json!({"role": "member"})),
    );
    call(
        &b,
        "PUT",
        "/api/v1/organization/labs/robots/builder",
        pat(),
        None,
    );
    let (s, _) = call(
        &b,
        "POST",
        "/api/v1/repository",
        pat(),
        Some(json!({"namespace": "labs", "repository": "tool", "visibility": "private"})),
    );
    assert_eq!(s, 201);
    // quinn: an outside collaborator (direct permission, no team).
    let (s, _) = call(
        &b,
        "PUT",
        "/api/v1/repository/labs/tool/permissions/user/quinn",
        pat(),
        Some(json!({"role": "read"})),
    );
    assert_eq!(s, 200);
    let (_, collab) = call(
        &b,
        "GET",
        "/api/v1/organization/labs/collaborators",
        pat(),
        None,
    );
    assert_eq!(collab["collaborators"][0]["name"], "quinn", "{collab}");
    assert_eq!(
        collab["collaborators"][0]["repositories"],
        json!(["labs/tool"]),
        "{collab}"
    );

    // Entity search: users for anyone; the organization's robots and teams only to its people.
    let (_, found) = call(&b, "GET", "/api/v1/entities/qu", pat(), None);
    assert!(
        found["results"]
            .as_array()
            .is_some_and(|r| r.iter().any(|e| e["name"] == "quinn")),
        "{found}"
    );
    let (_, found) = call(
        &b,
        "GET",
        "/api/v1/entities/labs?namespace=labs&includeTeams=true",
        pat(),
        None,
    );
    assert!(
        found["results"].as_array().is_some_and(|r| r
            .iter()
            .any(|e| e["name"] == "labs+builder" && e["is_robot"] == true)),
        "{found}"
    );
    let (_, found) = call(
        &b,
        "GET",
        "/api/v1/entities/re?namespace=labs&includeTeams=true",
        pat(),
        None,
    );
    assert!(
        found["results"].as_array().is_some_and(|r| r
            .iter()
            .any(|e| e["name"] == "readers" && e["kind"] == "team")),
        "{found}"
    );
    let (_, hidden) = call(
        &b,
        "GET",
        "/api/v1/entities/labs?namespace=labs&includeTeams=true",
        Auth::Basic("ron", "password-123"),
        None,
    );
    assert!(
        !hidden["results"]
            .as_array()
            .is_some_and(|r| r.iter().any(|e| e["name"] == "labs+builder")),
        "{hidden}"
    );

    // The last owner cannot be removed or deleted; a second owner makes it possible.
    let (s, v) = call(
        &b,
        "DELETE",
        "/api/v1/organization/labs/team/owners/members/pat",
        pat(),
        None,
    );
    assert_eq!(s, 400, "{v}");
    let (s, v) = call(
        &b,
        "DELETE",
        "/api/v1/superuser/users/pat",
        Auth::Basic(ADMIN_USER, ADMIN_PASSWORD),
        None,
    );
    assert_eq!(s, 409, "{v}");
    call(
        &b,
        "PUT",
        "/api/v1/organization/labs/team/owners/members/ron",
        pat(),
        None,
    );
    let (s, v) = call(
        &b,
        "DELETE",
        "/api/v1/organization/labs/team/owners/members/pat",
        pat(),
        None,
    );
    assert_eq!(s, 204, "{v}");
    // Deleting an organization deletes its repositories with it (collected in the background).
    let (s, v) = call(
        &b,
        "DELETE",
        "/api/v1/organization/labs",
        Auth::Basic("ron", "password-123"),
        None,
    );
    assert_eq!(s, 204, "{v}");
    let (s, v) = call(
        &b,
        "GET",
        "/api/v1/repository/labs/tool",
        Auth::Basic(ADMIN_USER, ADMIN_PASSWORD),
        None,
    );
    assert_eq!(s, 404, "{v}");
}

#[test]
fn quay_fields_users_read_tag_size_repository_tags_and_windows() {
    let b = Berth::start();
    let c = common::client::Client::new(&b);
    admin(
        &b,
        "POST",
        "/api/v1/organization/",
        Some(json!({"name": "fields"})),
    );
    let layers: [&[u8]; 2] = [&[1u8; 3000], &[2u8; 5000]];
    let img = c.image("fields/app", "v1", "salt", &layers);
    c.index("fields/app", "multi", &[&img]);

    // A tag's size is its image's layers, compressed, as Quay counts it; an index has none.
    let v = admin(&b, "GET", "/api/v1/repository/fields/app/tag/", None);
    let size_of = |name: &str| {
        v["tags"]
            .as_array()
            .and_then(|t| t.iter().find(|t| t["name"] == name))
            .map(|t| t["size"].clone())
            .unwrap_or_else(|| panic!("tag {name} in {v}"))
    };
    assert_eq!(size_of("v1"), json!(8000), "{v}");
    assert_eq!(size_of("multi"), Value::Null, "{v}");

    // The repository carries its live tags (Quay's includeTags, on by default) and its window.
    let r = admin(&b, "GET", "/api/v1/repository/fields/app", None);
    assert_eq!(r["tags"]["v1"]["size"], 8000, "{r}");
    assert_eq!(
        r["tags"]["v1"]["manifest_digest"],
        img.digest.as_str(),
        "{r}"
    );
    assert!(r["tags"]["v1"]["last_modified"].is_string(), "{r}");
    assert!(r["tags"]["multi"].is_object(), "{r}");
    assert_eq!(r["tag_expiration_s"], 14 * 86_400, "{r}");
    let r = admin(
        &b,
        "GET",
        "/api/v1/repository/fields/app?includeTags=false",
        None,
    );
    assert!(r.get("tags").is_none(), "{r}");

    // An organization shows the window in force, the default until it chooses one.
    let o = admin(&b, "GET", "/api/v1/organization/fields", None);
    assert_eq!(o["tag_expiration_s"], 14 * 86_400, "{o}");
    admin(
        &b,
        "PUT",
        "/api/v1/organization/fields",
        Some(json!({"tag_expiration_s": 86_400})),
    );
    let o = admin(&b, "GET", "/api/v1/organization/fields", None);
    assert_eq!(o["tag_expiration_s"], 86_400, "{o}");
}

#[test]
fn a_superusers_token_without_super_user_scope_cannot_delete_other_accounts() {
    let b = Berth::start();
    admin(
        &b,
        "POST",
        "/api/v1/superuser/users/",
        Some(json!({"username": "vera", "password": "vera-password"})),
    );
    let (s, v) = call(
        &b,
        "POST",
        "/api/v1/organization/",
        Auth::Basic("vera", "vera-password"),
        Some(json!({"name": "victim"})),
    );
    assert_eq!(s, 201, "{v}");
    let t = admin(
        &b,
        "POST",
        "/api/v1/user/apitoken",
        Some(json!({"name": "reader", "scopes": ["repo:read", "org:admin", "user:admin"]})),
    );
    let token = t["token"].as_str().expect("token").to_string();
    // The admin is no member of the organization: only the superuser rule could allow this,
    // and this token does not carry it.
    let (s, v) = call(
        &b,
        "DELETE",
        "/api/v1/organization/victim",
        Auth::Bearer(&token),
        None,
    );
    assert_eq!(s, 403, "{v}");
    let (s, v) = call(
        &b,
        "DELETE",
        "/api/v1/superuser/users/vera",
        Auth::Bearer(&token),
        None,
    );
    assert_eq!(s, 403, "{v}");
    // With its credentials the superuser still may.
    admin(&b, "DELETE", "/api/v1/organization/victim", None);
    admin(&b, "DELETE", "/api/v1/superuser/users/vera", None);
}
