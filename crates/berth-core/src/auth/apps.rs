//! Organizations' OAuth applications (Quay's `/organization/{org}/applications`): a client id and
//! secret per application, and scoped API tokens minted for it by the organization's
//! administrators (they act for the administrator who minted them, within the scopes given).

use super::accounts::NewToken;
use super::audit::AuditEntry;
use super::secret::random_token;
use super::{Actor, Auth};
use crate::{ApiToken, Error, OAuthApp, Result};
use berth_db::{OAuthAppRow, now_ms};

/// The descriptive fields of an application.
#[derive(Debug, Default)]
pub struct AppFields<'a> {
    pub name: &'a str,
    pub description: Option<&'a str>,
    pub application_uri: Option<&'a str>,
    pub redirect_uri: Option<&'a str>,
    pub avatar_email: Option<&'a str>,
}

impl Auth {
    /// An application of `org`, if `actor` administers the organization.
    pub async fn oauth_app(&self, actor: &Actor, org: &str, client_id: &str) -> Result<OAuthApp> {
        let row = self.oauth_app_row(actor, org, client_id).await?;
        Ok(self.app_view(row))
    }

    async fn oauth_app_row(
        &self,
        actor: &Actor,
        org: &str,
        client_id: &str,
    ) -> Result<OAuthAppRow> {
        let o = self.org_admin(actor, org).await?;
        self.db
            .oauth_app(client_id)
            .await?
            .filter(|a| a.org_id == o.id)
            .ok_or_else(|| Error::not_found(format!("no application {client_id:?} in {org:?}")))
    }

    /// The application with its client secret unsealed (empty if it cannot be, e.g. after
    /// `DATABASE_SECRET_KEY` changed).
    pub(super) fn app_view(&self, app: OAuthAppRow) -> OAuthApp {
        let secret = self
            .sealer
            .open_string(&app.secret_sealed)
            .unwrap_or_default();
        OAuthApp::new(app, secret)
    }

    pub async fn create_oauth_app(
        &self,
        actor: &Actor,
        org: &str,
        f: &AppFields<'_>,
    ) -> Result<OAuthApp> {
        let o = self.org_admin(actor, org).await?;
        if f.name.trim().is_empty() {
            return Err(Error::invalid("name is required"));
        }
        let app = OAuthAppRow {
            client_id: random_token(20).to_ascii_uppercase(),
            org_id: o.id,
            name: f.name.to_string(),
            description: f.description.unwrap_or("").to_string(),
            application_uri: f.application_uri.unwrap_or("").to_string(),
            redirect_uri: f.redirect_uri.unwrap_or("").to_string(),
            avatar_email: f.avatar_email.map(str::to_string),
            secret_sealed: self.sealer.seal(random_token(40).as_bytes()),
            created_at: now_ms(),
        };
        self.db.insert_oauth_app(&app).await?;
        self.audit
            .record(
                AuditEntry::new("create_application")
                    .by(Some(actor))
                    .namespace(org)
                    .meta(serde_json::json!({"application_name": app.name, "client_id": app.client_id})),
            )
            .await;
        Ok(self.app_view(app))
    }

    pub async fn update_oauth_app(
        &self,
        actor: &Actor,
        org: &str,
        client_id: &str,
        f: &AppFields<'_>,
        reset_secret: bool,
    ) -> Result<OAuthApp> {
        let mut app = self.oauth_app_row(actor, org, client_id).await?;
        if !reset_secret {
            if f.name.trim().is_empty() {
                return Err(Error::invalid("name is required"));
            }
            app.name = f.name.to_string();
            app.description = f.description.unwrap_or("").to_string();
            app.application_uri = f.application_uri.unwrap_or("").to_string();
            app.redirect_uri = f.redirect_uri.unwrap_or("").to_string();
            app.avatar_email = f.avatar_email.map(str::to_string);
        } else {
            app.secret_sealed = self.sealer.seal(random_token(40).as_bytes());
        }
        self.db.update_oauth_app(&app).await?;
        let kind = if reset_secret {
            "reset_application_client_secret"
        } else {
            "update_application"
        };
        self.audit
            .record(AuditEntry::new(kind).by(Some(actor)).namespace(org).meta(
                serde_json::json!({"application_name": app.name, "client_id": app.client_id}),
            ))
            .await;
        Ok(self.app_view(app))
    }

    pub async fn delete_oauth_app(&self, actor: &Actor, org: &str, client_id: &str) -> Result<()> {
        let app = self.oauth_app_row(actor, org, client_id).await?;
        self.db.delete_oauth_app(app.org_id, client_id).await?;
        self.audit
            .record(
                AuditEntry::new("delete_application")
                    .by(Some(actor))
                    .namespace(org)
                    .meta(
                        serde_json::json!({"application_name": app.name, "client_id": client_id}),
                    ),
            )
            .await;
        Ok(())
    }

    /// Mints an API token for an application: it acts for `actor` within `scopes`.
    pub async fn mint_app_token(
        &self,
        actor: &Actor,
        org: &str,
        client_id: &str,
        name: &str,
        scopes: &[String],
        expires_in_s: Option<i64>,
    ) -> Result<NewToken<ApiToken>> {
        let app = self.oauth_app_row(actor, org, client_id).await?;
        let t = self
            .create_api_token(actor, name, scopes, expires_in_s)
            .await?;
        self.db
            .set_api_token_app(&t.row.uuid, &app.client_id)
            .await?;
        self.audit
            .record(
                AuditEntry::new("create_application_token")
                    .by(Some(actor))
                    .namespace(org)
                    .meta(serde_json::json!({"client_id": client_id, "token": t.row.uuid, "scope": t.row.scopes})),
            )
            .await;
        Ok(t)
    }

    pub async fn revoke_app_token(
        &self,
        actor: &Actor,
        org: &str,
        client_id: &str,
        uuid: &str,
    ) -> Result<()> {
        self.oauth_app_row(actor, org, client_id).await?;
        if !self.db.delete_app_api_token(client_id, uuid).await? {
            return Err(Error::not_found(format!(
                "no token {uuid:?} for application {client_id:?}"
            )));
        }
        self.audit
            .record(
                AuditEntry::new("revoke_application_token")
                    .by(Some(actor))
                    .namespace(org)
                    .meta(serde_json::json!({"client_id": client_id, "token": uuid})),
            )
            .await;
        Ok(())
    }
}
