//! Sign-in through OpenID Connect providers: Quay's `<NAME>_LOGIN_CONFIG` blocks, the
//! authorization-code flow (with PKCE and a nonce), and what a verified identity becomes in
//! Berth — a linked user, created on first sign-in, with team memberships synced from a groups
//! claim.
//!
//! `openidconnect` builds the requests and verifies ID tokens (issuer, audience, signature against
//! the provider's JWKS, nonce, expiry). Its own HTTP clients are compiled out; its requests go
//! through the one `reqwest` the workspace already has (`provider::send`), without following
//! redirects, so a token request can never be bounced to another host.
//!
//! Nothing about a sign-in in progress is kept in memory: state, nonce, PKCE verifier and where
//! to go afterwards travel in a short-lived cookie signed like sessions (see [`super::session`]),
//! so any instance can finish a sign-in another one began. Discovery documents and key sets are
//! cached per instance for a few minutes; an unknown signing key refreshes them once.

mod accounts;
mod config;
mod provider;

pub use accounts::{groups_of, sanitize_username};
pub use config::OidcProvider;
pub use provider::{HttpError, Oidc};

use super::audit::AuditEntry;
use super::session::Signer;
use super::{Actor, Auth};
use crate::{Error, Result};
use accounts::{Identity, claim_str, claim_true};
use berth_db::AccountKind;
use openidconnect::core::{CoreAuthenticationFlow, CoreIdToken, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, CsrfToken, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier,
    Scope, TokenResponse,
};
use provider::{DISCOVERY_TTL, read_capped, send};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Duration;

/// How long a sign-in may take between leaving for the provider and coming back.
pub const PENDING_LOGIN_S: i64 = 600;
/// The cookie carrying a sign-in in progress.
pub const STATE_COOKIE: &str = "berth_oidc";
const STATE_PURPOSE: &str = "berth-oidc-state-v1";

/// A sign-in in progress, carried in the state cookie.
#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    svc: String,
    state: String,
    nonce: String,
    pkce: Option<String>,
    redirect_uri: String,
    after: String,
    exp: i64,
}

/// Where to send the browser, and the cookie to set first.
#[derive(Debug)]
pub struct LoginStart {
    pub auth_url: String,
    pub state_cookie: String,
}

/// What the provider sent back to the callback.
#[derive(Debug, Default)]
pub struct Callback<'a> {
    pub code: Option<&'a str>,
    pub state: Option<&'a str>,
    pub error: Option<&'a str>,
    pub error_description: Option<&'a str>,
}

/// A completed sign-in.
#[derive(Debug)]
pub struct OidcLogin {
    pub actor: Actor,
    /// A path on this registry to go to now.
    pub after: String,
    pub created: bool,
}

/// Only same-site paths are remembered: an open redirect would let a link to Berth's sign-in
/// lead a user anywhere.
pub fn safe_redirect(r: Option<&str>) -> String {
    match r {
        Some(p)
            if p.starts_with('/') && !p.starts_with("//") && !p.contains(['\\', '\r', '\n']) =>
        {
            p.to_string()
        }
        _ => "/".into(),
    }
}

/// Who a sign-in turned out to be, as far as it got: for the audit log.
#[derive(Debug, Default)]
struct Seen {
    subject: Option<String>,
    /// The Berth account's name once known, else the provider's user name claim.
    name: Option<String>,
}

impl Auth {
    fn provider(&self, service: &str) -> Result<&OidcProvider> {
        self.oidc.state(service).map(|p| &p.cfg)
    }

    fn state_signer(&self) -> &Signer {
        self.sessions.signer()
    }

    /// Begins a sign-in with `service`: the provider's authorization URL for this browser and
    /// the state cookie that must come back with the callback. `redirect_uri` is this registry's
    /// callback URL; `after` a path to return to.
    pub async fn oidc_start(
        &self,
        service: &str,
        redirect_uri: &str,
        after: Option<&str>,
    ) -> Result<LoginStart> {
        let p = self.oidc.state(service)?;
        let meta = self.oidc.metadata(p, DISCOVERY_TTL).await?;
        let client = Oidc::client(&p.cfg, &meta, redirect_uri)?;
        let mut req = client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        for s in p.cfg.scopes.iter().filter(|s| *s != "openid") {
            req = req.add_scope(Scope::new(s.clone()));
        }
        for (k, v) in p.cfg.params("authorization_endpoint") {
            req = req.add_extra_param(k.clone(), v.clone());
        }
        let mut pkce = None;
        if p.cfg.use_pkce {
            let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
            req = req.set_pkce_challenge(challenge);
            pkce = Some(verifier.secret().clone());
        }
        let (url, state, nonce) = req.url();
        let pending = Pending {
            svc: p.cfg.id.clone(),
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce,
            redirect_uri: redirect_uri.to_string(),
            after: safe_redirect(after),
            exp: super::session::now_s() + PENDING_LOGIN_S,
        };
        Ok(LoginStart {
            auth_url: url.to_string(),
            state_cookie: self.state_signer().sign(STATE_PURPOSE, &pending),
        })
    }

    /// Finishes a sign-in: checks the state, exchanges the code, verifies the ID token, finds or
    /// creates the user, syncs teams and audits the outcome. A refusal is an
    /// refusal (any error but an internal fault) whose message can be shown to the person
    /// signing in.
    pub async fn oidc_finish(
        &self,
        service: &str,
        state_cookie: Option<&str>,
        cb: &Callback<'_>,
        ip: Option<&str>,
    ) -> Result<OidcLogin> {
        let mut seen = Seen::default();
        let outcome = self
            .oidc_finish_inner(service, state_cookie, cb, &mut seen)
            .await;
        match &outcome {
            Ok(login) => {
                if self.config.audit_logins {
                    self.audit
                        .record(
                            AuditEntry::new("login_success")
                                .performer(&login.actor.name, "user")
                                .namespace(&login.actor.name)
                                .ip(ip)
                                .meta(serde_json::json!({
                                    "type": "oidc", "service": service,
                                    "username": login.actor.name,
                                    "subject": seen.subject, "created": login.created,
                                })),
                        )
                        .await;
                }
            }
            Err(refusal) if !refusal.is_fault() => {
                let message = refusal.to_string();
                tracing::warn!(service, ip, reason = %message, "OIDC login failed");
                if self.config.audit_login_failures {
                    let mut e = AuditEntry::new("login_failure")
                        .ip(ip)
                        .meta(serde_json::json!({
                            "type": "oidc", "service": service, "detail": message,
                            "subject": seen.subject,
                        }));
                    if let Some(name) = &seen.name {
                        e = e.performer(name, "user");
                    }
                    self.audit.record(e).await;
                }
            }
            Err(_) => {}
        }
        outcome
    }

    async fn oidc_finish_inner(
        &self,
        service: &str,
        state_cookie: Option<&str>,
        cb: &Callback<'_>,
        seen: &mut Seen,
    ) -> Result<OidcLogin> {
        let cfg = self.provider(service)?.clone();
        let restart = "start the sign-in again";
        let pending: Pending = state_cookie
            .and_then(|c| self.state_signer().verify(STATE_PURPOSE, c))
            .ok_or_else(|| {
                Error::invalid(format!(
                    "this sign-in did not start in this browser, or its cookie was altered; \
                     {restart}"
                ))
            })?;
        if pending.svc != cfg.id || pending.exp < super::session::now_s() {
            return Err(Error::invalid(format!(
                "this sign-in expired or belongs to another service; {restart}"
            )));
        }
        if !cb
            .state
            .is_some_and(|s| super::secret::equal(s, &pending.state))
        {
            return Err(Error::invalid(format!(
                "the state returned by the identity provider does not match; {restart}"
            )));
        }
        if let Some(e) = cb.error {
            return Err(Error::denied(format!(
                "the identity provider refused the sign-in: {e}{}",
                cb.error_description
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default()
            )));
        }
        let code = cb
            .code
            .ok_or_else(|| Error::invalid("the identity provider sent no authorization code"))?;
        let id = self.oidc_identity(&cfg, &pending, code).await?;
        seen.subject = Some(id.sub.clone());
        seen.name = id.username.clone();
        let (row, created) = self.oidc_account(&cfg, &id).await?;
        seen.name = Some(row.name.clone());
        if row.kind != AccountKind::User {
            return Err(Error::denied("the linked account is not a user"));
        }
        if !row.enabled {
            return Err(Error::denied(format!("account {:?} is disabled", row.name)));
        }
        let meta = serde_json::json!({"email": id.email, "username": id.username});
        self.db
            .link_external_login(&cfg.id, &id.sub, row.id, &meta.to_string())
            .await?;
        self.db.touch_account(row.id).await?;
        if let Some(groups) = groups_of(&id.claims, &cfg.groups_claim) {
            self.sync_oidc_teams(&cfg.id, row.id, &groups).await?;
        }
        Ok(OidcLogin {
            actor: self.actor(&row, "external"),
            after: pending.after,
            created,
        })
    }

    /// Exchanges the code and verifies the ID token; merges userinfo claims under the ID token's.
    async fn oidc_identity(
        &self,
        cfg: &OidcProvider,
        pending: &Pending,
        code: &str,
    ) -> Result<Identity> {
        let p = self.oidc.state(&cfg.id)?;
        let meta = self.oidc.metadata(p, DISCOVERY_TTL).await?;
        let client = Oidc::client(cfg, &meta, &pending.redirect_uri)?;
        let mut req = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|e| {
                Error::Upstream(format!("the identity provider has no token endpoint: {e}"))
            })?;
        if let Some(v) = &pending.pkce {
            req = req.set_pkce_verifier(PkceCodeVerifier::new(v.clone()));
        }
        for (k, v) in cfg.params("token_endpoint") {
            req = req.add_extra_param(k.clone(), v.clone());
        }
        let http_client = self.oidc.http()?;
        let http = |r| send(http_client.clone(), r);
        let token = req.request_async(&http).await.map_err(|e| {
            let detail = match &e {
                openidconnect::RequestTokenError::ServerResponse(r) => r.to_string(),
                other => format!(
                    "{other}: {}",
                    std::error::Error::source(other)
                        .map(|s| s.to_string())
                        .unwrap_or_default()
                ),
            };
            Error::Upstream(format!(
                "the identity provider did not accept the authorization code: {detail}"
            ))
        })?;
        let id_token = token.id_token().ok_or_else(|| {
            Error::Upstream(String::from(
                "the identity provider returned no ID token (is the openid scope allowed?)",
            ))
        })?;
        let nonce = Nonce::new(pending.nonce.clone());
        let verify = |meta: &CoreProviderMetadata| -> std::result::Result<(), String> {
            let c = Oidc::client(cfg, meta, &pending.redirect_uri).map_err(|e| e.to_string())?;
            let extra = cfg.audiences.clone();
            let verifier = c
                .id_token_verifier()
                .set_other_audience_verifier_fn(move |aud| extra.iter().any(|a| a == aud.as_str()));
            id_token
                .claims(&verifier, &nonce)
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        if let Err(first) = verify(&meta) {
            // The provider may have rotated its keys since they were cached: refetch once.
            let fresh = self.oidc.metadata(p, Duration::from_secs(30)).await?;
            if Arc::ptr_eq(&fresh, &meta) {
                return Err(Error::denied(format!("the ID token was refused: {first}")));
            }
            verify(&fresh).map_err(|e| Error::denied(format!("the ID token was refused: {e}")))?;
        }
        let mut claims = raw_claims(id_token)
            .ok_or_else(|| Error::denied("the ID token's claims are not a JSON object"))?;
        let sub = claim_str(&claims, "sub")
            .ok_or_else(|| Error::denied("the ID token has no subject"))?
            .to_string();
        if !cfg.disable_user_endpoint
            && let Some(url) = meta.userinfo_endpoint()
        {
            match self
                .userinfo(cfg, url.as_str(), token.access_token().secret())
                .await
            {
                // Claims about another subject must not be mixed in (OIDC Core 5.3.2).
                Some(info) if claim_str(&info, "sub") == Some(sub.as_str()) => {
                    for (k, v) in info {
                        claims.entry(k).or_insert(v);
                    }
                }
                Some(_) => {
                    tracing::warn!(service = %cfg.id, "userinfo names another subject; ignored")
                }
                None => {}
            }
        }
        let verified = match &cfg.verified_email_claim {
            Some(c) => claim_true(&claims, c) == Some(true),
            None => claim_true(&claims, "email_verified") != Some(false),
        };
        let email = claim_str(&claims, "email")
            .filter(|_| verified)
            .map(str::to_string);
        let username = claim_str(&claims, &cfg.username_claim).map(str::to_string);
        Ok(Identity {
            sub,
            email,
            username,
            claims,
        })
    }

    async fn userinfo(
        &self,
        cfg: &OidcProvider,
        url: &str,
        access_token: &str,
    ) -> Option<Map<String, Value>> {
        let mut url = openidconnect::url::Url::parse(url).ok()?;
        for (k, v) in cfg.params("user_endpoint") {
            url.query_pairs_mut().append_pair(k, v);
        }
        let resp = self
            .oidc
            .http()
            .ok()?
            .get(url)
            .bearer_auth(access_token)
            .header("accept", "application/json")
            .send()
            .await;
        let resp = match resp {
            Ok(r) if r.status().is_success() => r,
            Ok(r) => {
                tracing::warn!(service = %cfg.id, status = %r.status(), "userinfo request refused");
                return None;
            }
            Err(e) => {
                tracing::warn!(service = %cfg.id, error = %e, "userinfo request failed");
                return None;
            }
        };
        // A signed (application/jwt) userinfo answer is not parsed: the ID token suffices.
        serde_json::from_slice(&read_capped(resp).await.ok()?).ok()
    }
}

/// Every claim of a verified ID token, as the provider wrote it (openidconnect's typed claims
/// drop non-standard ones such as groups).
fn raw_claims(t: &CoreIdToken) -> Option<Map<String, Value>> {
    use base64::Engine;
    let jwt = serde_json::to_value(t).ok()?;
    let payload = jwt.as_str()?.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_stay_on_this_site() {
        assert_eq!(safe_redirect(Some("/repo/x?y=1")), "/repo/x?y=1");
        assert_eq!(safe_redirect(Some("//evil.example/")), "/");
        assert_eq!(safe_redirect(Some("https://evil.example/")), "/");
        assert_eq!(safe_redirect(Some("/\\evil")), "/");
        assert_eq!(safe_redirect(None), "/");
    }
}
