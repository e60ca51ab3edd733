//! Tag and catalog listing, page by page along `Link: <…>; rel="next"`, bounded.

use crate::client::RegistryClient;
use crate::error::Error;
use crate::headers::next_link;
use crate::request::read_capped;
use reqwest::Method;
use reqwest::header::LINK;
use std::collections::HashSet;
use url::Url;

/// Pages followed for one listing.
pub const MAX_PAGES: usize = 1000;
/// Names gathered for one listing.
pub const MAX_ITEMS: usize = 1_000_000;
/// The largest page body.
const PAGE_BODY_MAX: usize = 32 * 1024 * 1024;

#[derive(serde::Deserialize)]
struct Page {
    #[serde(default)]
    tags: Option<Vec<String>>,
    #[serde(default)]
    repositories: Option<Vec<String>>,
}

impl RegistryClient {
    /// Every tag of `repo` (`/v2/<repo>/tags/list`), in the registry's order;
    /// [`Error::NotFound`] for a repository the registry does not know.
    pub async fn list_tags(&self, repo: &str) -> Result<Vec<String>, Error> {
        self.list_tags_paged(repo, None).await
    }

    /// [`RegistryClient::list_tags`] asking for pages of `page_size` (`?n=`); `None` leaves the
    /// page size to the registry.
    pub async fn list_tags_paged(
        &self,
        repo: &str,
        page_size: Option<u32>,
    ) -> Result<Vec<String>, Error> {
        let path = self.repo_path(repo)?;
        let first = self.url(&with_n(&format!("/v2/{path}/tags/list"), page_size))?;
        let scope = format!("repository:{path}:pull");
        self.paginate(first, &scope, &format!("tags of {path}"), |p| p.tags)
            .await
    }

    /// Every repository the registry lists (`/v2/_catalog`).
    pub async fn catalog(&self) -> Result<Vec<String>, Error> {
        self.catalog_paged(None).await
    }

    /// [`RegistryClient::catalog`] asking for pages of `page_size`.
    pub async fn catalog_paged(&self, page_size: Option<u32>) -> Result<Vec<String>, Error> {
        let first = self.url(&with_n("/v2/_catalog", page_size))?;
        self.paginate(first, "registry:catalog:*", "catalog", |p| p.repositories)
            .await
    }

    async fn paginate(
        &self,
        first: Url,
        scope: &str,
        what: &str,
        items: fn(Page) -> Option<Vec<String>>,
    ) -> Result<Vec<String>, Error> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let mut next = Some(first);
        let mut pages = 0;
        while let Some(url) = next.take() {
            if pages == MAX_PAGES {
                return Err(Error::Invalid(format!(
                    "the {what} run past {MAX_PAGES} pages"
                )));
            }
            if !seen.insert(url.to_string()) {
                return Err(Error::Invalid(format!(
                    "the {what} link back to a page already read"
                )));
            }
            pages += 1;
            let sent = self
                .send(
                    Method::GET,
                    url.clone(),
                    Some("application/json"),
                    Some(scope),
                    true,
                )
                .await?;
            if !sent.resp.status().is_success() {
                return Err(self.fail(sent.resp, what, sent.authenticated).await);
            }
            let link = next_link(
                sent.resp
                    .headers()
                    .get_all(LINK)
                    .iter()
                    .filter_map(|v| v.to_str().ok()),
            );
            let body = read_capped(sent.resp, PAGE_BODY_MAX, what).await?;
            let page: Page = serde_json::from_slice(&body)
                .map_err(|e| Error::Invalid(format!("a page of the {what} is not JSON: {e}")))?;
            let names = items(page).unwrap_or_default();
            if out.len() + names.len() > MAX_ITEMS {
                return Err(Error::Invalid(format!(
                    "the {what} hold more than {MAX_ITEMS} names"
                )));
            }
            out.extend(names);
            next = match link {
                Some(l) => Some(url.join(&l).map_err(|_| {
                    Error::Invalid(format!("a page of the {what} links to an invalid URL"))
                })?),
                None => None,
            };
        }
        Ok(out)
    }
}

fn with_n(path: &str, page_size: Option<u32>) -> String {
    match page_size {
        Some(n) => format!("{path}?n={n}"),
        None => path.to_string(),
    }
}
