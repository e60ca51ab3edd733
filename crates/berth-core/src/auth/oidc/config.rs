//! `<NAME>_LOGIN_CONFIG`: one OpenID Connect provider, read with Quay's field names. Fields
//! Berth does not know are refused (a typo must not silently weaken a sign-in), except the few
//! display or Quay-internal ones in `ACCEPTED_UNUSED`.

use serde_json::Value;
use std::collections::BTreeMap;

/// One `<NAME>_LOGIN_CONFIG` block, with Quay's field names.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OidcProvider {
    /// The service id: NAME lowercased (`MOCK_LOGIN_CONFIG` → `mock`).
    pub id: String,
    /// `SERVICE_NAME`, for people; defaults to the id.
    pub title: String,
    /// `OIDC_SERVER`: the issuer base URL; discovery is below it.
    pub server: String,
    /// `OIDC_ISSUER`: the issuer the discovery document and tokens must name, when it differs.
    pub issuer: Option<String>,
    pub client_id: String,
    /// `CLIENT_SECRET`; `None` only with `PUBLIC_CLIENT: true`.
    pub client_secret: Option<String>,
    /// `OIDC_AUDIENCES`: further accepted `aud` values besides the client id.
    pub audiences: Vec<String>,
    /// `LOGIN_SCOPES` (default openid, email, profile).
    pub scopes: Vec<String>,
    /// `LOGIN_BINDING_FIELD`: a claim whose value finds an existing user on first sign-in
    /// (`email` matches the account's email, any other claim the user name).
    pub binding_field: Option<String>,
    /// `PREFERRED_USERNAME_CLAIM_NAME` (default `preferred_username`).
    pub username_claim: String,
    /// `VERIFIED_EMAIL_CLAIM_NAME`: when set, the email is used only if this claim is true.
    pub verified_email_claim: Option<String>,
    /// `OIDC_ENDPOINT_CUSTOM_PARAMS`: extra parameters per endpoint
    /// (`authorization_endpoint`, `token_endpoint`, `user_endpoint`).
    pub custom_params: BTreeMap<String, BTreeMap<String, String>>,
    /// `OIDC_DISABLE_USER_ENDPOINT`: do not call the userinfo endpoint.
    pub disable_user_endpoint: bool,
    /// `USE_PKCE` (Berth default: true; S256 is the only method).
    pub use_pkce: bool,
    /// `GROUPS_CLAIM` (Berth's): the claim listing the user's groups (default `groups`).
    pub groups_claim: String,
}

/// Fields a block may have that Berth reads but does not need.
const ACCEPTED_UNUSED: &[&str] = &["SERVICE_ICON", "OIDC_ALLOWED_CLIENTS", "DEBUGGING"];

impl OidcProvider {
    /// Reads one block; `key` is its config key (`<NAME>_LOGIN_CONFIG`). The message of an
    /// error names the field at fault.
    pub fn from_quay_block(key: &str, v: &Value) -> std::result::Result<OidcProvider, String> {
        let name = key.strip_suffix("_LOGIN_CONFIG").unwrap_or(key);
        let Value::Object(m) = v else {
            return Err("expected a map of OIDC settings (OIDC_SERVER, CLIENT_ID, ...)".into());
        };
        let text = |f: &str| -> std::result::Result<Option<String>, String> {
            match m.get(f) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if s.is_empty() => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(Value::Number(n)) => Ok(Some(n.to_string())),
                Some(o) => Err(format!("{f} must be a string, not {o}")),
            }
        };
        let need = |f: &str| text(f)?.ok_or_else(|| format!("{f} is required"));
        let list = |f: &str| -> std::result::Result<Vec<String>, String> {
            match m.get(f) {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(Value::String(s)) => Ok(s
                    .split([' ', ','])
                    .filter(|x| !x.is_empty())
                    .map(str::to_string)
                    .collect()),
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|x| {
                        x.as_str()
                            .map(str::to_string)
                            .ok_or_else(|| format!("{f} must list strings"))
                    })
                    .collect(),
                Some(o) => Err(format!("{f} must be a list of strings, not {o}")),
            }
        };
        let flag = |f: &str, default: bool| -> std::result::Result<bool, String> {
            match m.get(f) {
                None | Some(Value::Null) => Ok(default),
                Some(Value::Bool(b)) => Ok(*b),
                Some(o) => Err(format!("{f} must be true or false, not {o}")),
            }
        };
        let known = [
            "OIDC_SERVER",
            "OIDC_ISSUER",
            "CLIENT_ID",
            "CLIENT_SECRET",
            "OIDC_AUDIENCES",
            "SERVICE_NAME",
            "LOGIN_SCOPES",
            "LOGIN_BINDING_FIELD",
            "PREFERRED_USERNAME_CLAIM_NAME",
            "VERIFIED_EMAIL_CLAIM_NAME",
            "OIDC_ENDPOINT_CUSTOM_PARAMS",
            "OIDC_DISABLE_USER_ENDPOINT",
            "USE_PKCE",
            "PKCE_METHOD",
            "PUBLIC_CLIENT",
            "GROUPS_CLAIM",
        ];
        if let Some(bad) = m
            .keys()
            .find(|k| !known.contains(&k.as_str()) && !ACCEPTED_UNUSED.contains(&k.as_str()))
        {
            return Err(format!(
                "unknown field {bad:?}; an OIDC login block takes {}",
                known.join(", ")
            ));
        }
        let server = need("OIDC_SERVER")?;
        let parsed = openidconnect::url::Url::parse(&server)
            .map_err(|e| format!("OIDC_SERVER {server:?} is not a URL: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!("OIDC_SERVER {server:?} must be an http(s) URL"));
        }
        let public = flag("PUBLIC_CLIENT", false)?;
        let client_secret = if public {
            text("CLIENT_SECRET")?
        } else {
            Some(need("CLIENT_SECRET")?)
        };
        if let Some(method) = text("PKCE_METHOD")?
            && method != "S256"
        {
            return Err(format!("PKCE_METHOD {method:?} is not supported; use S256"));
        }
        let mut custom_params = BTreeMap::new();
        match m.get("OIDC_ENDPOINT_CUSTOM_PARAMS") {
            None | Some(Value::Null) => {}
            Some(Value::Object(eps)) => {
                for (ep, params) in eps {
                    let Value::Object(p) = params else {
                        return Err(format!(
                            "OIDC_ENDPOINT_CUSTOM_PARAMS.{ep} must be a map of parameters"
                        ));
                    };
                    let p = p
                        .iter()
                        .map(|(k, v)| match v {
                            Value::String(s) => (k.clone(), s.clone()),
                            other => (k.clone(), other.to_string()),
                        })
                        .collect();
                    custom_params.insert(ep.clone(), p);
                }
            }
            Some(o) => {
                return Err(format!(
                    "OIDC_ENDPOINT_CUSTOM_PARAMS must map endpoint names to parameters, not {o}"
                ));
            }
        }
        let id = name.to_ascii_lowercase();
        let mut scopes = list("LOGIN_SCOPES")?;
        if scopes.is_empty() {
            scopes = vec!["openid".into(), "email".into(), "profile".into()];
        }
        Ok(OidcProvider {
            title: text("SERVICE_NAME")?.unwrap_or_else(|| id.clone()),
            id,
            server,
            issuer: text("OIDC_ISSUER")?,
            client_id: need("CLIENT_ID")?,
            client_secret,
            audiences: list("OIDC_AUDIENCES")?,
            scopes,
            binding_field: text("LOGIN_BINDING_FIELD")?,
            username_claim: text("PREFERRED_USERNAME_CLAIM_NAME")?
                .unwrap_or_else(|| "preferred_username".into()),
            verified_email_claim: text("VERIFIED_EMAIL_CLAIM_NAME")?,
            custom_params,
            disable_user_endpoint: flag("OIDC_DISABLE_USER_ENDPOINT", false)?,
            // A public client has no secret: PKCE is what binds the code to this browser.
            use_pkce: public || flag("USE_PKCE", true)?,
            groups_claim: text("GROUPS_CLAIM")?.unwrap_or_else(|| "groups".into()),
        })
    }

    pub(super) fn params(&self, endpoint: &str) -> impl Iterator<Item = (&String, &String)> {
        self.custom_params.get(endpoint).into_iter().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quay_block_is_read_with_defaults() {
        let p = OidcProvider::from_quay_block(
            "MOCK_LOGIN_CONFIG",
            &serde_json::json!({"OIDC_SERVER": "http://127.0.0.1:9/", "CLIENT_ID": "c", "CLIENT_SECRET": "s",
                "LOGIN_SCOPES": ["openid", "email"], "SERVICE_ICON": "x",
                "OIDC_ENDPOINT_CUSTOM_PARAMS": {"authorization_endpoint": {"prompt": "login"}}}),
        )
        .expect("valid");
        assert_eq!(p.id, "mock");
        assert_eq!(p.title, "mock");
        assert_eq!(p.scopes, ["openid", "email"]);
        assert_eq!(p.username_claim, "preferred_username");
        assert_eq!(p.groups_claim, "groups");
        assert!(p.use_pkce);
        assert_eq!(p.params("authorization_endpoint").count(), 1);
    }

    #[test]
    fn quay_block_errors_name_the_field() {
        let e =
            |v: Value| OidcProvider::from_quay_block("X_LOGIN_CONFIG", &v).expect_err("invalid");
        assert!(
            e(serde_json::json!({"CLIENT_ID": "c", "CLIENT_SECRET": "s"})).contains("OIDC_SERVER")
        );
        assert!(
            e(serde_json::json!({"OIDC_SERVER": "http://x", "CLIENT_SECRET": "s"}))
                .contains("CLIENT_ID")
        );
        assert!(
            e(serde_json::json!({"OIDC_SERVER": "http://x", "CLIENT_ID": "c"}))
                .contains("CLIENT_SECRET")
        );
        assert!(
            e(serde_json::json!({"OIDC_SERVER": "x", "CLIENT_ID": "c", "CLIENT_SECRET": "s"}))
                .contains("OIDC_SERVER")
        );
        assert!(
            e(serde_json::json!({"OIDC_SERVER": "http://x", "CLIENT_ID": "c", "CLIENT_SECRET": "s", "CLIENT_SECERT": 1}))
                .contains("CLIENT_SECERT")
        );
        let public = OidcProvider::from_quay_block(
            "X_LOGIN_CONFIG",
            &serde_json::json!({"OIDC_SERVER": "http://x", "CLIENT_ID": "c", "PUBLIC_CLIENT": true, "USE_PKCE": false}),
        )
        .expect("a public client needs no secret");
        assert!(public.client_secret.is_none() && public.use_pkce);
    }
}
