//! `/signin` (a user's password, LDAP behind it when configured, and each OpenID Connect
//! provider) and `/signout`.

use super::{Page, csrf, form, local_target, see_other, url_encode};
use crate::AppState;
use crate::web_login::{clear_session_cookie, session_cookie};
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::Response;
use berth_core::auth::AccountKind;
use berth_core::auth::login::LoginContext;
use maud::html;
use std::sync::Arc;

pub async fn page(State(st): State<Arc<AppState>>, req: Request) -> Response {
    let page = Page::of(&st, &req).await;
    let next = local_target(page.q("next"));
    if page.actor.is_some() {
        return see_other(&next, &[]);
    }
    if needs_setup(&st).await {
        return see_other("/setup", &[]);
    }
    render(&st, &page, &next, None, None, StatusCode::OK)
}

/// Quay's bootstrap (`FEATURE_USER_INITIALIZE`) is on and no user exists yet.
async fn needs_setup(st: &AppState) -> bool {
    st.user_initialize && matches!(st.auth.has_users().await, Ok(false))
}

/// `GET /setup`: the first account's form, while `FEATURE_USER_INITIALIZE` is on and the
/// registry has no user (then the page sends people to sign in).
pub async fn setup_page(State(st): State<Arc<AppState>>, req: Request) -> Response {
    let page = Page::of(&st, &req).await;
    if !needs_setup(&st).await {
        return see_other("/signin", &[]);
    }
    render_setup(&page, None, None, StatusCode::OK)
}

fn render_setup(
    page: &Page,
    username: Option<&str>,
    problem: Option<&str>,
    status: StatusCode,
) -> Response {
    page.render(
        status,
        "Create the first account",
        &[],
        html! {
            section.narrow {
                h1 { "Create the first account" }
                p { "This registry has no users yet. The account you create here is its first superuser; it can then create others." }
                @if let Some(p) = problem {
                    p.error role="alert" { (p) }
                }
                form.stack method="post" action="/setup" {
                    input type="hidden" name="csrf" value=(page.csrf);
                    label for="username" { "Username" }
                    input #username name="username" autocomplete="username" required autofocus value=[username];
                    label for="email" { "Email (optional)" }
                    input #email name="email" type="email" autocomplete="email";
                    label for="password" { "Password" }
                    input #password name="password" type="password" autocomplete="new-password" minlength="8" required;
                    label for="confirm" { "Password again" }
                    input #confirm name="confirm" type="password" autocomplete="new-password" minlength="8" required;
                    button.primary type="submit" { "Create account and sign in" }
                }
            }
        },
    )
}

/// `POST /setup`: `Auth::initialize` (the door of `POST /api/v1/user/initialize`), then a
/// session for the new superuser.
pub async fn setup(State(st): State<Arc<AppState>>, req: Request) -> Response {
    let page = Page::of(&st, &req).await;
    let f = match super::checked_form(&st, &page, req).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    if !st.user_initialize {
        return page.error(berth_core::Error::not_found(
            "first-user setup is off (FEATURE_USER_INITIALIZE)",
        ));
    }
    let username = super::field(&f, "username").unwrap_or("");
    let password = f.get("password").map(String::as_str).unwrap_or("");
    if Some(password) != f.get("confirm").map(String::as_str) {
        return render_setup(
            &page,
            Some(username),
            Some("the two passwords differ"),
            StatusCode::BAD_REQUEST,
        );
    }
    match st
        .auth
        .initialize(username, password, super::field(&f, "email"), false)
        .await
    {
        Ok((a, _)) => see_other(
            "/repository",
            &[(header::SET_COOKIE, session_cookie(&st, a.id))],
        ),
        Err(e) => {
            let p = crate::error::Problem::from(e);
            render_setup(
                &page,
                Some(username),
                Some(&p.message),
                StatusCode::from_u16(p.status).unwrap_or(StatusCode::BAD_REQUEST),
            )
        }
    }
}

fn render(
    st: &AppState,
    page: &Page,
    next: &str,
    username: Option<&str>,
    problem: Option<&str>,
    status: StatusCode,
) -> Response {
    let providers: Vec<(String, String)> = st
        .auth
        .oidc
        .providers()
        .map(|p| (p.id.clone(), p.title.clone()))
        .collect();
    page.render(
        status,
        "Sign in",
        &[],
        html! {
            section.narrow {
                h1 { "Sign in" }
                @if let Some(p) = problem {
                    p.error role="alert" #signin-error { (p) }
                }
                @if st.direct_login {
                    form.stack method="post" action="/signin" {
                        input type="hidden" name="csrf" value=(page.csrf);
                        input type="hidden" name="next" value=(next);
                        label for="username" { "Username" }
                        input #username name="username" autocomplete="username" required autofocus value=[username];
                        label for="password" { "Password" }
                        input #password name="password" type="password" autocomplete="current-password" required;
                        button.primary type="submit" { "Sign in" }
                    }
                } @else {
                    p { "Password sign-in is off on this registry (" code { "FEATURE_DIRECT_LOGIN: false" } "): use a provider below." }
                }
                @if !providers.is_empty() {
                    h2 { "Or sign in with" }
                    ul.providers {
                        @for (id, title) in &providers {
                            li { a.button href={ "/oauth2/" (url_encode(id)) "/start?redirect=" (url_encode(next)) } { "Sign in with " (title) } }
                        }
                    }
                }
                p.hint { "Registry clients (podman, docker, skopeo) log in with the same username and password, or with a robot account's token." }
            }
        },
    )
}

pub async fn submit(State(st): State<Arc<AppState>>, req: Request) -> Response {
    let page = Page::of(&st, &req).await;
    let (headers, f) = match form(req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let next = local_target(f.get("next").map(String::as_str));
    if let Err(refusal) = csrf::check(&st, &headers, f.get("csrf").map(String::as_str)) {
        return render(
            &st,
            &page,
            &next,
            None,
            Some(refusal.message()),
            StatusCode::FORBIDDEN,
        );
    }
    if !st.direct_login {
        return render(
            &st,
            &page,
            &next,
            None,
            Some("password sign-in is off on this registry (FEATURE_DIRECT_LOGIN: false)"),
            StatusCode::FORBIDDEN,
        );
    }
    let username = f.get("username").map(String::as_str).unwrap_or("").trim();
    let password = f.get("password").map(String::as_str).unwrap_or("");
    if username.is_empty() || password.is_empty() {
        return render(
            &st,
            &page,
            &next,
            Some(username),
            Some("enter your username and your password"),
            StatusCode::BAD_REQUEST,
        );
    }
    let lc = LoginContext {
        ip: page.ip.as_deref(),
        channel: "ui",
    };
    let refused =
        |message: String, status| render(&st, &page, &next, Some(username), Some(&message), status);
    match st.auth.login(username, password, &lc).await {
        // Only a password opens a session: a token is a narrower credential than a browser
        // session and must not turn into one.
        Ok(Ok(a)) if a.via == "password" && a.kind == AccountKind::User => {
            see_other(&next, &[(header::SET_COOKIE, session_cookie(&st, a.id))])
        }
        Ok(Ok(_)) => refused(
            "sign in with a user's password; tokens are for registry clients and the API".into(),
            StatusCode::FORBIDDEN,
        ),
        Ok(Err(e)) => {
            let p = crate::error::Problem::from(e.into_error(username));
            refused(
                p.message,
                StatusCode::from_u16(p.status).unwrap_or(StatusCode::UNAUTHORIZED),
            )
        }
        Err(e) => page.error(e),
    }
}

pub async fn signout(State(st): State<Arc<AppState>>, req: Request) -> Response {
    let page = Page::of(&st, &req).await;
    if let Err(r) = super::checked_form(&st, &page, req).await {
        return r;
    }
    see_other(
        "/signin",
        &[(header::SET_COOKIE, clear_session_cookie(&st))],
    )
}
