//! The web UI, served by `berth serve` at Quay's page addresses (`/signin`, `/repository`,
//! `/repository/{ns}/{repo}?tab=…`): server-rendered HTML (maud), a stylesheet and one vendored
//! enhancement library (htmx, 0BSD) in the binary, nothing fetched from elsewhere.
//!
//! Rule: a page handler reads the request into the core call it makes — the same doors as
//! `/api/v1` (`content::Content`, `Auth`), never anything else — and renders the answer. Every
//! list is filtered, sorted and paged by the core with cursors, and every page state is in the
//! URL, so links, new tabs and the back button work. Reading works without JavaScript, and so do
//! the forms; with it, htmx swaps a table's page in place and keeps the URL. Forms carry a CSRF
//! token and are checked for their origin (`csrf.rs`). Sessions are the browser sessions of
//! `web_login.rs`.

mod cache;
mod csrf;
mod logs;
mod mirror;
mod notifications;
mod org_mirror;
mod orgs;
mod policies;
mod repos;
mod search;
mod security;
mod settings;
mod signin;
mod superuser;
mod user;

use crate::AppState;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use berth_core::auth::Actor;
use maud::{DOCTYPE, Markup, html};
use std::collections::HashMap;
use std::sync::Arc;

const CSS: &str = include_str!("../../assets/berth.css");
const HTMX: &str = include_str!("../../assets/htmx-2.0.11.min.js");
const JS: &str = include_str!("../../assets/berth.js");
/// Cache-busting names: a new build with a changed file gets a new URL.
const CSS_PATH: &str = concat!("/static/berth-", env!("CARGO_PKG_VERSION"), ".css");
const HTMX_PATH: &str = "/static/htmx-2.0.11.min.js";
const JS_PATH: &str = concat!("/static/berth-", env!("CARGO_PKG_VERSION"), ".js");

pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/signin", get(signin::page).post(signin::submit))
        .route("/signout", axum::routing::post(signin::signout))
        .route("/setup", get(signin::setup_page).post(signin::setup))
        .route("/search", get(search::page))
        .route("/security/search", get(security::search_page))
        .route("/authrepoemail", get(notifications::confirm_email))
        .route("/repository", get(repos::list).post(repos::create))
        .route("/repository/", get(repos::list))
        .route(
            "/repository/{*path}",
            get(repos::repository).post(repos::action),
        )
        .route("/organization", get(orgs::list).post(orgs::create))
        .route("/organization/", get(orgs::list))
        .route(
            "/organization/{*path}",
            get(orgs::organization).post(orgs::action),
        )
        .route("/user/{*path}", get(user::user).post(user::action))
        .route("/superuser", get(superuser::panel))
        .route("/superuser/", get(superuser::panel))
        .route("/superuser/{*path}", axum::routing::post(superuser::action))
        .route("/static/{file}", get(asset))
}

async fn asset(axum::extract::Path(file): axum::extract::Path<String>) -> Response {
    let (body, kind) = if format!("/static/{file}") == CSS_PATH {
        (CSS, "text/css; charset=utf-8")
    } else if format!("/static/{file}") == HTMX_PATH {
        (HTMX, "text/javascript; charset=utf-8")
    } else if format!("/static/{file}") == JS_PATH {
        (JS, "text/javascript; charset=utf-8")
    } else {
        return (StatusCode::NOT_FOUND, "no such file").into_response();
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(kind)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
        ],
        body,
    )
        .into_response()
}

/// What every page knows about its request.
pub struct Page {
    /// The signed-in user, if any.
    pub actor: Option<Actor>,
    /// The hidden field every form carries.
    pub csrf: String,
    /// Sets the pre-session CSRF cookie on the answer when the browser had none.
    set_cookie: Option<HeaderValue>,
    /// The registry's address as clients reach it (`host:port`), for pull commands.
    pub host: String,
    /// `--tls-verify=false` and the like where the registry is plain HTTP.
    pub plain_http: bool,
    pub query: HashMap<String, String>,
    /// The query string as sent (for parameters that repeat).
    pub raw_query: String,
    pub path: String,
    /// The request came from htmx (it wants the fragment, not the whole page).
    pub fragment: bool,
    pub ip: Option<String>,
    /// The signed-in user's in-app notifications not dismissed (the header's count).
    pub unread: i64,
}

impl Page {
    /// What the page knows of `req`. Reads the request before it awaits anything, so the
    /// handler's future does not hold a borrow of it (a request body is not `Sync`).
    pub fn of<'a>(
        st: &'a AppState,
        req: &Request,
    ) -> impl std::future::Future<Output = Page> + Send + 'a {
        let headers = req.headers().clone();
        let query: HashMap<String, String> = req
            .uri()
            .query()
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        let path = req.uri().path().to_string();
        let raw_query = req.uri().query().unwrap_or("").to_string();
        let ip = crate::auth::client_ip(req);
        async move {
            let actor = crate::web_login::session_actor(st, &headers, &axum::http::Method::GET)
                .await
                .ok()
                .flatten();
            let unread = match &actor {
                Some(a) => berth_core::notify::Notifications::new(&st.registry, &st.auth)
                    .unread(a)
                    .await
                    .unwrap_or(0),
                None => 0,
            };
            let b = csrf::binding(st, &headers);
            let base = crate::auth::base_url(st, &headers);
            let host = base
                .split_once("://")
                .map(|(_, h)| h.to_string())
                .unwrap_or_else(|| base.clone());
            Page {
                actor,
                csrf: csrf::token(st, &b.value),
                set_cookie: b.set_cookie,
                host,
                plain_http: base.starts_with("http://"),
                query,
                raw_query,
                path,
                fragment: headers.contains_key("hx-request") && !headers.contains_key("hx-boosted"),
                ip,
                unread,
            }
        }
    }

    /// A query parameter, if present and not empty.
    pub fn q(&self, name: &str) -> Option<&str> {
        self.query
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// Every value of a repeated query parameter, in order.
    pub fn q_all(&self, name: &str) -> Vec<String> {
        form_urlencoded::parse(self.raw_query.as_bytes())
            .filter(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.into_owned())
            .collect()
    }

    /// The page's answer: the whole document, or only `main` for an htmx swap.
    pub fn render(
        &self,
        status: StatusCode,
        title: &str,
        crumbs: &[Crumb],
        main: Markup,
    ) -> Response {
        let body = if self.fragment {
            main
        } else {
            self.document(title, crumbs, main)
        };
        let mut resp = (status, Html(body.into_string())).into_response();
        let h = resp.headers_mut();
        // Pages show what a signed-in user may see: never cached by anything in between.
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
            ),
        );
        h.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        h.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        );
        if let Some(c) = &self.set_cookie {
            h.append(header::SET_COOKIE, c.clone());
        }
        resp
    }

    fn document(&self, title: &str, crumbs: &[Crumb], main: Markup) -> Markup {
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    meta name="color-scheme" content="light dark";
                    // The stylesheet has htmx's indicator rules; its injected <style> would break
                    // the Content-Security-Policy.
                    meta name="htmx-config" content=r#"{"includeIndicatorStyles":false}"#;
                    title { (title) " · Berth" }
                    link rel="stylesheet" href=(CSS_PATH);
                    script src=(HTMX_PATH) defer {}
                    script src=(JS_PATH) defer {}
                }
                body hx-boost="true" {
                    a.skip href="#main" { "Skip to content" }
                    header.top {
                        a.brand href="/" { "Berth" }
                        nav aria-label="Main" {
                            a href="/repository" { "Repositories" }
                            @if self.actor.is_some() { a href="/organization" { "Organizations" } }
                            a href="/security/search" { "Vulnerabilities" }
                            @if self.actor.as_ref().is_some_and(|a| a.superuser) { a href="/superuser" { "Superuser" } }
                        }
                        form.search role="search" method="get" action="/search" {
                            label.visually-hidden for="site-search" { "Search repositories, tags and digests" }
                            input #site-search type="search" name="q" placeholder="Repositories, tags, digests" value=[self.q("q").filter(|_| self.path == "/search")];
                            button type="submit" { "Search" }
                        }
                        div.user {
                            @if let Some(a) = &self.actor {
                                a.inbox href=(link(&format!("/user/{}", a.name), &[("tab", "notifications")])) {
                                    "Notifications"
                                    @if self.unread > 0 { " " span.badge aria-label={ (self.unread) " not read" } { (self.unread) } }
                                }
                                span.who { "Signed in as " a href=(link(&format!("/user/{}", a.name), &[("tab", "settings")])) { strong { (a.name) } } }
                                form method="post" action="/signout" {
                                    input type="hidden" name="csrf" value=(self.csrf);
                                    button.link type="submit" { "Sign out" }
                                }
                            } @else {
                                a.button href={ "/signin?next=" (url_encode(&self.path)) } { "Sign in" }
                            }
                        }
                    }
                    @if !crumbs.is_empty() {
                        nav.crumbs aria-label="Breadcrumb" {
                            ol {
                                @for (i, c) in crumbs.iter().enumerate() {
                                    li {
                                        @if i + 1 == crumbs.len() {
                                            span aria-current="page" { (c.label) }
                                        } @else {
                                            a href=(c.href) { (c.label) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    main #main { (main) }
                    footer { "Berth " (env!("CARGO_PKG_VERSION")) " · " a href="/api/v1/discovery" { "API" } }
                }
            }
        }
    }

    /// The answer to a form post: a 303 to where it leads on success, else the error page.
    pub fn after(&self, done: berth_core::Result<String>) -> Response {
        match done {
            Ok(to) => see_other(&to, &[]),
            Err(e) => self.error(e),
        }
    }

    /// An error page: what happened and what to do next.
    pub fn error(&self, e: berth_core::Error) -> Response {
        let p = crate::error::Problem::from(e);
        let status = StatusCode::from_u16(p.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let hint = match p.status {
            401 | 404 if self.actor.is_none() => Some(html! {
                p { "It may be private: " a href={ "/signin?next=" (url_encode(&self.path)) } { "sign in" } " to see it." }
            }),
            _ => None,
        };
        let title = status.canonical_reason().unwrap_or("Error");
        self.render(
            status,
            title,
            &[],
            html! {
                h1 { (title) }
                p.error role="alert" { (p.message) }
                @if let Some(h) = hint { (h) }
                p { a href="/repository" { "Back to repositories" } }
            },
        )
    }
}

/// A page's tabs: links to `base?tab=…`, the current one marked.
pub fn tabs(base: &str, label: &str, tabs: &[(&str, &str)], current: &str) -> Markup {
    html! {
        nav.tabs aria-label=(label) {
            @for (t, name) in tabs {
                @if *t == current {
                    a.current href=(link(base, &[("tab", t)])) aria-current="page" { (name) }
                } @else {
                    a href=(link(base, &[("tab", t)])) { (name) }
                }
            }
        }
    }
}

/// One step of the breadcrumb trail.
pub struct Crumb {
    pub label: String,
    pub href: String,
}

impl Crumb {
    pub fn new(label: impl Into<String>, href: impl Into<String>) -> Crumb {
        Crumb {
            label: label.into(),
            href: href.into(),
        }
    }
}

/// Percent-encodes a query value or a path segment.
pub fn url_encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A one-button form that POSTs `fields` (and the page's CSRF token) to `action`: every
/// action that needs no input of its own. `danger` styles it as destructive.
pub fn post_button(
    page: &Page,
    action: &str,
    label: &str,
    fields: &[(&str, &str)],
    danger: bool,
) -> Markup {
    html! {
        form.inline method="post" action=(action) {
            input type="hidden" name="csrf" value=(page.csrf);
            @for (k, v) in fields { input type="hidden" name=(k) value=(v); }
            @if danger { button.danger type="submit" { (label) } } @else { button type="submit" { (label) } }
        }
    }
}

/// A URL of `path` with `params` (empty values left out).
pub fn link(path: &str, params: &[(&str, &str)]) -> String {
    let q: Vec<String> = params
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", url_encode(v)))
        .collect();
    if q.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", q.join("&"))
    }
}

/// "3 minutes ago", "2 days ago": how long ago `ms` was, for people.
pub fn ago(ms: i64) -> String {
    let s = (berth_core::now_ms() - ms).max(0) / 1000;
    let (n, unit) = match s {
        0..60 => return "just now".into(),
        60..3600 => (s / 60, "minute"),
        3600..86400 => (s / 3600, "hour"),
        86400..2_592_000 => (s / 86400, "day"),
        2_592_000..31_536_000 => (s / 2_592_000, "month"),
        _ => (s / 31_536_000, "year"),
    };
    format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
}

/// A byte count for people (`12.3 MiB`).
pub fn size(bytes: i64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes.max(0) as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// `YYYY-MM-DD` (a date input's value): that day's start, UTC.
pub fn parse_day(s: &str) -> Option<i64> {
    let t = humantime::parse_rfc3339_weak(&format!("{s}T00:00:00Z")).ok()?;
    i64::try_from(t.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis()).ok()
}

/// The time, exact (RFC 3339, UTC), for a `datetime` or `title` attribute.
pub fn iso(ms: i64) -> String {
    humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64),
    )
    .to_string()
}

/// Where a form goes after it succeeded: a path on this site only (never an open redirect).
pub fn local_target(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_string(),
        _ => "/repository".to_string(),
    }
}

/// A 303 to `to`, with extra headers.
pub fn see_other(to: &str, extra: &[(header::HeaderName, HeaderValue)]) -> Response {
    let mut resp = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    for (k, v) in extra {
        resp.headers_mut().append(k.clone(), v.clone());
    }
    resp
}

/// The form fields of a urlencoded body (at most 64 KiB).
pub async fn form(req: Request) -> Result<(HeaderMap, HashMap<String, String>), Response> {
    let headers = req.headers().clone();
    let bytes = axum::body::to_bytes(req.into_body(), 64 * 1024)
        .await
        .map_err(|_| (StatusCode::PAYLOAD_TOO_LARGE, "form too large").into_response())?;
    Ok((
        headers,
        form_urlencoded::parse(&bytes).into_owned().collect(),
    ))
}

/// The fields of a form post whose origin and CSRF token check out; else the page saying why.
pub async fn checked_form(
    st: &AppState,
    page: &Page,
    req: Request,
) -> Result<HashMap<String, String>, Response> {
    Ok(checked_form_all(st, page, req).await?.into_iter().collect())
}

/// [`checked_form`] keeping every field in order, repeated names included (checkboxes).
pub async fn checked_form_all(
    st: &AppState,
    page: &Page,
    req: Request,
) -> Result<Vec<(String, String)>, Response> {
    let headers = req.headers().clone();
    let bytes = axum::body::to_bytes(req.into_body(), 256 * 1024)
        .await
        .map_err(|_| (StatusCode::PAYLOAD_TOO_LARGE, "form too large").into_response())?;
    let f: Vec<(String, String)> = form_urlencoded::parse(&bytes).into_owned().collect();
    let token = f.iter().find(|(k, _)| k == "csrf").map(|(_, v)| v.as_str());
    csrf::check(st, &headers, token)
        .map_err(|r| page.error(berth_core::Error::denied(r.message())))?;
    Ok(f)
}

/// [`checked_form`] for a signed-in caller: the fields and the caller, or the page saying what
/// is missing.
pub async fn signed_in_form<'p>(
    st: &AppState,
    page: &'p Page,
    req: Request,
) -> Result<(HashMap<String, String>, &'p Actor), Response> {
    let f = checked_form(st, page, req).await?;
    let actor = page.actor.as_ref().ok_or_else(|| {
        page.error(berth_core::Error::Unauthenticated(
            "sign in first: your session may have ended".into(),
        ))
    })?;
    Ok((f, actor))
}

/// A form field, trimmed; `None` if absent or empty.
pub fn field<'a>(f: &'a HashMap<String, String>, k: &str) -> Option<&'a str> {
    f.get(k).map(|v| v.trim()).filter(|v| !v.is_empty())
}

/// `GET /`: the repositories of a signed-in user; a welcome with what to do for anyone else.
pub async fn home(State(st): State<Arc<AppState>>, req: Request) -> Response {
    let page = Page::of(&st, &req).await;
    if page.actor.is_some() {
        return see_other("/repository", &[]);
    }
    let tls = if page.plain_http {
        " --tls-verify=false"
    } else {
        ""
    };
    let host = page.host.clone();
    page.render(
        StatusCode::OK,
        "Welcome",
        &[],
        html! {
            h1 { "Berth container registry" }
            p { "This is " strong { (host) } ", an OCI and Docker registry (Berth " (env!("CARGO_PKG_VERSION")) ")." }
            @if st.readonly {
                p.notice role="status" { strong { "This registry is read-only" } " (" code { "REGISTRY_STATE: readonly" } "): pulls work, pushes and changes are refused." }
            }
            p.actions {
                a.button.primary href="/signin" { "Sign in" }
                " "
                a.button href="/repository" { "Browse public repositories" }
            }
            h2 { "Log in and push" }
            pre.cmd tabindex="0" { "podman login" (tls) " " (host) "\npodman push" (tls) " IMAGE " (host) "/NAMESPACE/NAME:TAG\npodman pull" (tls) " " (host) "/NAMESPACE/NAME:TAG" }
            @if st.user_initialize {
                p { "No account yet? " a href="/setup" { "Create the first one" } " (or " code { "POST /api/v1/user/initialize" } ")." }
            }
            h2 { "API and operations" }
            ul {
                li { a href="/api/v1/discovery" { "/api/v1/discovery" } ": the REST API (OpenAPI document)" }
                li { a href="/v2/" { "/v2/" } ": the registry API" }
                li { a href="/health/instance" { "/health/instance" } " and " a href="/health/endtoend" { "/health/endtoend" } ": health" }
            }
        },
    )
}

/// One CSV field, quoted when it needs to be; a leading `=`, `+`, `-` or `@` is prefixed with
/// `'` so a spreadsheet does not run it as a formula.
pub fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// A repository description in Markdown, as HTML: raw HTML in it is shown as text, and links
/// and images keep only `http(s)`, `mailto` and relative targets, so a description cannot run
/// script in the page.
pub fn markdown(text: &str) -> Markup {
    use pulldown_cmark::{CowStr, Event, Options, Parser, Tag};
    fn safe(url: &str) -> bool {
        let lower = url.trim().to_ascii_lowercase();
        match lower.split_once(':') {
            Some((scheme, _)) if !scheme.contains('/') && !scheme.contains('?') => {
                matches!(scheme, "http" | "https" | "mailto")
            }
            _ => true,
        }
    }
    let events = Parser::new_ext(
        text,
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS,
    )
    .map(|e| match e {
        Event::Html(h) | Event::InlineHtml(h) => Event::Text(h),
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) if !safe(&dest_url) => Event::Start(Tag::Link {
            link_type,
            dest_url: CowStr::Borrowed("#"),
            title,
            id,
        }),
        Event::Start(Tag::Image {
            link_type,
            dest_url,
            title,
            id,
        }) if !safe(&dest_url) => Event::Start(Tag::Image {
            link_type,
            dest_url: CowStr::Borrowed(""),
            title,
            id,
        }),
        e => e,
    });
    let mut out = String::new();
    pulldown_cmark::html::push_html(&mut out, events);
    maud::PreEscaped(out)
}

#[cfg(test)]
mod tests {
    use super::markdown;

    #[test]
    fn markdown_keeps_formatting_and_drops_script() {
        let h = markdown("# Title\n\n**bold** [ok](https://example.com) [bad](javascript:alert(1))\n\n<script>alert(1)</script>\n<img src=x onerror=alert(1)>").into_string();
        assert!(h.contains("<h1>Title</h1>"), "{h}");
        assert!(h.contains("<strong>bold</strong>"), "{h}");
        assert!(h.contains(r#"href="https://example.com""#), "{h}");
        assert!(!h.contains("javascript:"), "{h}");
        assert!(!h.contains("<script"), "{h}");
        assert!(!h.contains("<img"), "{h}");
        assert!(h.contains("&lt;script&gt;"), "{h}");
    }
}
