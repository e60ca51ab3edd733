//! The repositories of one upstream namespace, for organization mirroring: through Quay's API
//! (`/api/v1/repository?namespace=`), Harbor's (`/api/v2.0/projects/{p}/repositories`), or any
//! OCI registry's `/v2/_catalog` (the names under `namespace/`). Bounded like the tag listings.

use crate::auth;
use crate::client::RegistryClient;
use crate::error::Error;
use crate::list::{MAX_ITEMS, MAX_PAGES};
use crate::request::read_capped;
use crate::transport::Req;
use reqwest::Method;
use std::collections::BTreeSet;

/// The largest page body of an API listing.
const PAGE_BODY_MAX: usize = 32 * 1024 * 1024;
/// Harbor's page size (its maximum is 100).
const HARBOR_PAGE: usize = 100;

/// Which API lists an upstream namespace's repositories.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NamespaceApi {
    /// Quay (and Berth): `GET /api/v1/repository?namespace=<ns>`, following `next_page`.
    Quay,
    /// Harbor: `GET /api/v2.0/projects/<project>/repositories?page=&page_size=`.
    Harbor,
    /// Any OCI registry: `GET /v2/_catalog`, the names under `<ns>/`.
    Catalog,
}

#[derive(serde::Deserialize)]
struct QuayPage {
    #[serde(default)]
    repositories: Vec<QuayRepo>,
    #[serde(default)]
    next_page: Option<String>,
}

#[derive(serde::Deserialize)]
struct QuayRepo {
    name: String,
}

#[derive(serde::Deserialize)]
struct HarborRepo {
    name: String,
}

impl RegistryClient {
    /// The repositories of `namespace` upstream, without the `namespace/` prefix, sorted and
    /// each a valid repository name (others are left out).
    pub async fn namespace_repositories(
        &self,
        api: NamespaceApi,
        namespace: &str,
    ) -> Result<Vec<String>, Error> {
        let ns: berth_oci::RepoName = namespace.parse().map_err(|e| {
            Error::Invalid(format!(
                "namespace {:?}: {e}",
                crate::error::truncate(namespace, 100)
            ))
        })?;
        let ns = ns.as_str();
        let names: Vec<String> = match api {
            NamespaceApi::Catalog => self
                .catalog()
                .await?
                .into_iter()
                .filter_map(|n| n.strip_prefix(&format!("{ns}/")).map(str::to_string))
                .collect(),
            NamespaceApi::Quay => self.quay_repositories(ns).await?,
            NamespaceApi::Harbor => self.harbor_repositories(ns).await?,
        };
        let set: BTreeSet<String> = names
            .into_iter()
            .filter(|n| n.parse::<berth_oci::RepoName>().is_ok())
            .collect();
        Ok(set.into_iter().collect())
    }

    /// One GET of the registry's JSON API with Basic credentials, when there are any.
    async fn api_page(&self, url: url::Url, what: &str) -> Result<bytes::Bytes, Error> {
        let authorization = self.inner.credentials.as_ref().and_then(auth::basic);
        let authenticated = authorization.is_some();
        let resp = self
            .inner
            .transport
            .send(&Req {
                method: Method::GET,
                url,
                accept: Some("application/json"),
                authorization,
                deadline: Some(self.settings().read_timeout),
            })
            .await?;
        if !resp.status().is_success() {
            return Err(self.fail(resp, what, authenticated).await);
        }
        read_capped(resp, PAGE_BODY_MAX, what).await
    }

    async fn quay_repositories(&self, ns: &str) -> Result<Vec<String>, Error> {
        let what = format!("repositories of {ns}");
        let mut out = Vec::new();
        let mut next: Option<String> = None;
        let mut seen = BTreeSet::new();
        for _ in 0..MAX_PAGES {
            let mut url = self.url("/api/v1/repository")?;
            {
                let mut q = url.query_pairs_mut();
                q.append_pair("namespace", ns);
                if let Some(n) = &next {
                    q.append_pair("next_page", n);
                }
            }
            let body = self.api_page(url, &what).await?;
            let page: QuayPage = serde_json::from_slice(&body)
                .map_err(|e| Error::Invalid(format!("a page of the {what} is not JSON: {e}")))?;
            out.extend(page.repositories.into_iter().map(|r| r.name));
            if out.len() > MAX_ITEMS {
                return Err(Error::Invalid(format!(
                    "the {what} hold more than {MAX_ITEMS} names"
                )));
            }
            match page.next_page.filter(|n| !n.is_empty()) {
                Some(n) if !seen.insert(n.clone()) => {
                    return Err(Error::Invalid(format!(
                        "the {what} link back to a page already read"
                    )));
                }
                Some(n) => next = Some(n),
                None => return Ok(out),
            }
        }
        Err(Error::Invalid(format!(
            "the {what} run past {MAX_PAGES} pages"
        )))
    }

    async fn harbor_repositories(&self, project: &str) -> Result<Vec<String>, Error> {
        let what = format!("repositories of project {project}");
        let mut out = Vec::new();
        for page in 1..=MAX_PAGES {
            let mut url = self.url(&format!("/api/v2.0/projects/{project}/repositories"))?;
            url.query_pairs_mut()
                .append_pair("page", &page.to_string())
                .append_pair("page_size", &HARBOR_PAGE.to_string());
            let body = self.api_page(url, &what).await?;
            let repos: Vec<HarborRepo> = serde_json::from_slice(&body)
                .map_err(|e| Error::Invalid(format!("a page of the {what} is not JSON: {e}")))?;
            let n = repos.len();
            // Harbor names repositories with their project: "library/nginx".
            out.extend(repos.into_iter().filter_map(|r| {
                r.name
                    .strip_prefix(&format!("{project}/"))
                    .map(str::to_string)
            }));
            if out.len() > MAX_ITEMS {
                return Err(Error::Invalid(format!(
                    "the {what} hold more than {MAX_ITEMS} names"
                )));
            }
            if n < HARBOR_PAGE {
                return Ok(out);
            }
        }
        Err(Error::Invalid(format!(
            "the {what} run past {MAX_PAGES} pages"
        )))
    }
}
