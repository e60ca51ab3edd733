//! Registry bearer tokens: ES256 JWTs in the Docker token format, signed with service keys kept in
//! the database (private halves sealed), so every instance signs and verifies the same tokens. The
//! newest key signs; every unexpired key verifies, so rotating never breaks tokens in flight.

use super::secret::Sealer;
use crate::{Db, Result};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use berth_db::{ServiceKeyRow, now_ms};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::sync::RwLock;

pub const ISSUER: &str = "berth";

/// One grant: `repository` + name + actions, or `registry` + `catalog` + `*`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Access {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub actions: Vec<String>,
}

/// Who a registry token speaks for, as its claims say (`user`, `robot`, `org`, `anonymous`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CallerKind {
    User,
    Robot,
    Org,
    #[default]
    Anonymous,
}

impl CallerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CallerKind::User => "user",
            CallerKind::Robot => "robot",
            CallerKind::Org => "org",
            CallerKind::Anonymous => "anonymous",
        }
    }
}

impl From<super::AccountKind> for CallerKind {
    fn from(k: super::AccountKind) -> CallerKind {
        match k {
            super::AccountKind::User => CallerKind::User,
            super::AccountKind::Robot => CallerKind::Robot,
            super::AccountKind::Org => CallerKind::Org,
        }
    }
}

/// Who the token was issued to.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq, Eq)]
pub struct TokenContext {
    pub kind: CallerKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<i64>,
    #[serde(default)]
    pub superuser: bool,
    /// The credential used: password | app_token | robot_token | api_token | external
    #[serde(default)]
    pub via: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub nbf: i64,
    pub iat: i64,
    pub jti: String,
    pub access: Vec<Access>,
    pub context: TokenContext,
}

impl Claims {
    /// Claims for `actor` (anonymous when `None`) granting `access`, valid for `lifetime_s`.
    pub fn new(
        actor: Option<&super::Actor>,
        service: &str,
        access: Vec<Access>,
        lifetime_s: i64,
    ) -> Claims {
        let now = berth_db::now_ms() / 1000;
        Claims {
            iss: ISSUER.to_string(),
            sub: actor.map(|a| a.name.clone()).unwrap_or_default(),
            aud: service.to_string(),
            exp: now + lifetime_s,
            nbf: now - 1,
            iat: now,
            jti: uuid::Uuid::new_v4().to_string(),
            access,
            context: match actor {
                Some(a) => TokenContext {
                    kind: CallerKind::from(a.kind),
                    account_id: Some(a.id),
                    superuser: a.superuser,
                    via: a.via.to_string(),
                },
                None => TokenContext::default(),
            },
        }
    }

    /// Claims for one request authenticated with Basic credentials (never signed).
    pub fn for_actor(actor: &super::Actor, service: &str, access: Vec<Access>) -> Claims {
        Claims::new(Some(actor), service, access, 0)
    }

    /// Whether the token grants `action` on repository `name`.
    pub fn allows(&self, name: &str, action: &str) -> bool {
        self.access.iter().any(|a| {
            a.kind == "repository"
                && a.name == name
                && a.actions.iter().any(|x| x == action || x == "*")
        })
    }

    /// Whether the token mentions repository `name` at all.
    pub fn mentions(&self, name: &str) -> bool {
        self.access
            .iter()
            .any(|a| a.kind == "repository" && a.name == name)
    }

    pub fn allows_catalog(&self) -> bool {
        self.access
            .iter()
            .any(|a| a.kind == "registry" && a.name == "catalog" && !a.actions.is_empty())
    }
}

struct Key {
    kid: String,
    created_at: i64,
    encoding: Option<EncodingKey>,
    decoding: DecodingKey,
}

/// The signing keys, cached; reloaded when a token names a key this instance has not seen.
pub struct Keys {
    db: Db,
    sealer: Sealer,
    rotate_after_ms: i64,
    keys: RwLock<Vec<Key>>,
    last_reload: std::sync::atomic::AtomicI64,
    /// Tokens already verified, by SHA-256, until they expire: clients send the same token with
    /// every request, and an ECDSA verification costs more than the rest of a manifest GET.
    verified: std::sync::Mutex<std::collections::HashMap<[u8; 32], Claims>>,
}

/// Verified tokens remembered at most.
const VERIFIED_CACHE: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the token is malformed: {0}")]
    Malformed(String),
    #[error("the token was signed by an unknown key")]
    UnknownKey,
    #[error("the token is invalid: {0}")]
    Invalid(String),
}

impl Keys {
    pub fn new(db: Db, sealer: Sealer, rotate_after_ms: i64) -> Keys {
        Keys {
            db,
            sealer,
            rotate_after_ms,
            keys: RwLock::new(Vec::new()),
            last_reload: std::sync::atomic::AtomicI64::new(0),
            verified: std::sync::Mutex::default(),
        }
    }

    async fn reload(&self) -> Result<()> {
        let rows = self.db.service_keys().await?;
        let keys = rows.iter().filter_map(|r| self.load(r)).collect::<Vec<_>>();
        if let Ok(mut k) = self.keys.write() {
            *k = keys;
        }
        // A deleted key must stop verifying at once.
        if let Ok(mut v) = self.verified.lock() {
            v.clear();
        }
        self.last_reload
            .store(now_ms(), std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    fn load(&self, r: &ServiceKeyRow) -> Option<Key> {
        let public = hex::decode(&r.public_key).ok()?;
        let encoding = self
            .sealer
            .open(&r.private_sealed)
            .map(|der| EncodingKey::from_ec_der(&der));
        if encoding.is_none() {
            tracing::warn!(kid = %r.kid, "cannot open a signing key: DATABASE_SECRET_KEY differs from the one that sealed it; it only verifies");
        }
        Some(Key {
            kid: r.kid.clone(),
            created_at: r.created_at,
            encoding,
            decoding: DecodingKey::from_ec_der(&public),
        })
    }

    /// Creates a new signing key (rotation). Older keys keep verifying until they expire.
    pub async fn rotate(&self, service: &str) -> Result<String> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| crate::Error::Internal("cannot generate a signing key".into()))?;
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
            .map_err(|_| crate::Error::Internal("cannot read a generated signing key".into()))?;
        let now = now_ms();
        let kid = super::secret::random_token(16);
        self.db
            .insert_service_key(&ServiceKeyRow {
                kid: kid.clone(),
                service: service.to_string(),
                private_sealed: self.sealer.seal(pkcs8.as_ref()),
                public_key: hex::encode(pair.public_key().as_ref()),
                created_at: now,
                // Verifies for two rotation periods: tokens signed just before a rotation live on.
                expires_at: now + 2 * self.rotate_after_ms,
            })
            .await?;
        self.reload().await?;
        Ok(kid)
    }

    /// Loads the keys, creating the first one (or a fresh one when the newest is due).
    pub async fn ensure(&self, service: &str) -> Result<()> {
        self.reload().await?;
        if self.needs_rotation() {
            self.rotate(service).await?;
        }
        Ok(())
    }

    fn needs_rotation(&self) -> bool {
        let Ok(k) = self.keys.read() else { return true };
        match k.iter().find(|k| k.encoding.is_some()) {
            Some(newest) => now_ms() - newest.created_at > self.rotate_after_ms,
            None => true,
        }
    }

    pub async fn sign(&self, service: &str, claims: &Claims) -> Result<String> {
        if self.needs_rotation() {
            self.ensure(service).await?;
        }
        let k = self
            .keys
            .read()
            .map_err(|_| crate::Error::Internal("signing keys lock poisoned".into()))?;
        let Some(key) = k.iter().find(|k| k.encoding.is_some()) else {
            return Err(crate::Error::Internal("no signing key".into()));
        };
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(key.kid.clone());
        let Some(enc) = &key.encoding else {
            return Err(crate::Error::Internal("no signing key".into()));
        };
        jsonwebtoken::encode(&header, claims, enc)
            .map_err(|e| crate::Error::Internal(format!("cannot sign a token: {e}")))
    }

    /// Verifies signature, issuer, audience and lifetime.
    pub async fn verify(
        &self,
        service: &str,
        token: &str,
    ) -> std::result::Result<Claims, TokenError> {
        use sha2::Digest as _;
        let key: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
        let now = now_ms() / 1000;
        let fresh =
            now_ms() - self.last_reload.load(std::sync::atomic::Ordering::Relaxed) <= 60_000;
        if fresh
            && let Ok(v) = self.verified.lock()
            && let Some(c) = v.get(&key)
            && c.exp > now
            && c.aud == service
        {
            return Ok(c.clone());
        }
        // Keys deleted or added by another instance are seen within a minute.
        if now_ms() - self.last_reload.load(std::sync::atomic::Ordering::Relaxed) > 60_000 {
            let _ = self.reload().await;
        }
        let claims = self.verify_uncached(service, token).await?;
        if let Ok(mut v) = self.verified.lock() {
            if v.len() >= VERIFIED_CACHE {
                v.retain(|_, c| c.exp > now);
                if v.len() >= VERIFIED_CACHE {
                    v.clear();
                }
            }
            v.insert(key, claims.clone());
        }
        Ok(claims)
    }

    async fn verify_uncached(
        &self,
        service: &str,
        token: &str,
    ) -> std::result::Result<Claims, TokenError> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| TokenError::Malformed(e.to_string()))?;
        if header.alg != Algorithm::ES256 {
            return Err(TokenError::Invalid(format!(
                "algorithm {:?} is not accepted",
                header.alg
            )));
        }
        let kid = header.kid.ok_or(TokenError::UnknownKey)?;
        let known = self
            .keys
            .read()
            .map(|k| k.iter().any(|k| k.kid == kid))
            .unwrap_or(false);
        // Another instance may have rotated; reload at most once a second.
        if !known && now_ms() - self.last_reload.load(std::sync::atomic::Ordering::Relaxed) > 1000 {
            let _ = self.reload().await;
        }
        let k = self
            .keys
            .read()
            .map_err(|_| TokenError::Invalid("keys unavailable".into()))?;
        let key = k
            .iter()
            .find(|k| k.kid == kid)
            .ok_or(TokenError::UnknownKey)?;
        let mut v = Validation::new(Algorithm::ES256);
        v.set_audience(&[service]);
        v.set_issuer(&[ISSUER]);
        v.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        v.validate_nbf = true;
        v.leeway = 5;
        jsonwebtoken::decode::<Claims>(token, &key.decoding, &v)
            .map(|d| d.claims)
            .map_err(|e| TokenError::Invalid(e.to_string()))
    }
}
