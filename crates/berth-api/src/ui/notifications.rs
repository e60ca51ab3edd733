//! Notifications in the UI: the link mailed to confirm an address for a repository's email
//! notifications (`/authrepoemail?code=…`, Quay's address).

use super::{Crumb, Page};
use crate::AppState;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use berth_core::notify::Notifications;
use maud::html;
use std::sync::Arc;

/// `GET /authrepoemail?code=…`: the code is the capability; no session is needed.
pub async fn confirm_email(State(st): State<Arc<AppState>>, req: Request) -> Response {
    let page = Page::of(&st, &req).await;
    let code = page.q("code").unwrap_or("").to_string();
    match Notifications::new(&st.registry, &st.auth)
        .confirm_email(&code)
        .await
    {
        Ok((repo, email)) => page.render(
            StatusCode::OK,
            "Email confirmed",
            &[Crumb::new("Email confirmed", "")],
            html! {
                h1 { "Email confirmed" }
                p { strong { (email) } " may now receive the notifications of " a href={ "/repository/" (repo) } { (repo) } "." }
            },
        ),
        Err(e) => page.error(e),
    }
}
