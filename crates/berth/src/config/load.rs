//! Loading: the YAML file, then `BERTH_*` environment variables, each key read through its
//! definition in [`keys`]; then the rules that involve several keys, then the guards.

use super::keys::{self, Class, Guarded, KeyDef};
use super::values::{err, is_true};
use super::{Config, ConfigError, ConfigErrors, StorageLocation, parent_dir};
use serde_json::{Map, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// A value as an error message shows it: short.
fn shown(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        format!("{}…", s.chars().take(57).collect::<String>())
    } else {
        s
    }
}

fn read_file(path: &Path) -> Result<Map<String, Value>, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::file(format!("cannot read {}: {e}", path.display())))?;
    if text.trim().is_empty() {
        return Ok(Map::new());
    }
    serde_saphyr::from_str::<Map<String, Value>>(&text).map_err(|e| {
        ConfigError::file(format!(
            "{} is not valid YAML (a map of keys): {e}",
            path.display()
        ))
    })
}

impl Config {
    /// Builds the configuration from an optional YAML file, then `BERTH_*` environment variables.
    /// Every problem found is returned, not only the first.
    pub fn load(
        file: Option<&Path>,
        env: impl Iterator<Item = (String, String)>,
    ) -> Result<Config, ConfigErrors> {
        let (c, errors) = Config::load_partial(file, env)?;
        if errors.is_empty() {
            Ok(c)
        } else {
            Err(ConfigErrors {
                file: file.map(Path::to_path_buf),
                errors,
            })
        }
    }

    /// Like `load`, but returns the configuration built from the keys that were right together
    /// with the problems of the others (for `config validate`, which checks on). Fails outright
    /// only when the file cannot be read as YAML.
    pub fn load_partial(
        file: Option<&Path>,
        env: impl Iterator<Item = (String, String)>,
    ) -> Result<(Config, Vec<ConfigError>), ConfigErrors> {
        let mut values = match file.map(read_file).transpose() {
            Ok(v) => v.unwrap_or_default(),
            Err(e) => {
                return Err(ConfigErrors {
                    file: file.map(Path::to_path_buf),
                    errors: vec![e],
                });
            }
        };
        let base = file.map_or_else(|| PathBuf::from("."), parent_dir);
        let mut from_env = BTreeSet::new();
        for (k, v) in env {
            let Some(key) = k.strip_prefix("BERTH_") else {
                continue;
            };
            if key == "CONFIG" || key.is_empty() {
                continue;
            }
            // Text keys take the variable as it is; others read it as YAML (true, 30, [a, b]).
            let text = keys::lookup(key).is_some_and(|d| d.ty.text_only());
            let value = if text || v.trim().is_empty() {
                Value::String(v)
            } else {
                serde_saphyr::from_str(&v).unwrap_or(Value::String(v))
            };
            values.insert(key.to_string(), value);
            from_env.insert(key.to_string());
        }
        let mut c = Config {
            file: file.map(Path::to_path_buf),
            ..Config::default()
        };
        let mut errors = Vec::new();
        let mut guarded = Vec::new();
        for (key, v) in &values {
            let result = match keys::lookup(key) {
                None => Err(unknown(key)),
                Some(def) => c.set(def, key, v, &base, &mut guarded),
            };
            if let Err(mut e) = result {
                if from_env.contains(key) {
                    e.msg.push_str(&format!(" (set by BERTH_{key})"));
                }
                errors.push(e);
            }
        }
        errors.extend(c.finish(file, &values));
        for (def, key, v) in guarded {
            let Class::Guard { ok, safe } = def.class else {
                continue;
            };
            let g = Guarded {
                value: v,
                all: &values,
                config: &c,
            };
            if ok(&g) {
                c.ignored_keys.push(key.clone());
            } else {
                errors.push(ConfigError::new(
                    &key,
                    format!(
                        "{} is set, but {}; remove the key or set it to {safe}",
                        shown(v),
                        def.help
                    ),
                ));
            }
        }
        c.ignored_keys.sort();
        c.ignored_keys.dedup();
        c.unavailable_features.sort();
        errors.sort_by(|a, b| a.key.cmp(&b.key));
        Ok((c, errors))
    }

    /// Reads one key through its definition; guards are kept for after `finish`.
    fn set<'v>(
        &mut self,
        def: &'static KeyDef,
        key: &str,
        v: &'v Value,
        base: &Path,
        guarded: &mut Vec<(&'static KeyDef, String, &'v Value)>,
    ) -> Result<(), ConfigError> {
        // Null is Quay's "unset" where its default is None: the key keeps its default.
        if v.is_null() && def.ty.allows_null() {
            if !matches!(def.class, Class::Acted(_)) {
                self.ignored_keys.push(key.to_string());
            }
            return Ok(());
        }
        if !def.ty.accepts(v) {
            return err(
                key,
                format!("expected {}, found {}", def.ty.describe(), shown(v)),
            );
        }
        let text = match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        };
        if let Some(s) = text.filter(|_| !def.choices.is_empty())
            && !def.choices.contains(&s.as_str())
        {
            return err(
                key,
                format!("{s:?} is not one of {}", def.choices.join(", ")),
            );
        }
        match def.class {
            Class::Acted(apply) => apply(self, key, v, base),
            Class::NoEffect => {
                self.ignored_keys.push(key.to_string());
                Ok(())
            }
            Class::Unavailable if is_true(v) => {
                self.unavailable_features.push(key.to_string());
                Ok(())
            }
            Class::Unavailable => {
                self.ignored_keys.push(key.to_string());
                Ok(())
            }
            Class::Guard { .. } => {
                guarded.push((def, key.to_string(), v));
                Ok(())
            }
        }
    }

    /// Fills derived defaults and checks the rules that involve several keys.
    fn finish(&mut self, file: Option<&Path>, all: &Map<String, Value>) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        if self.storage.is_empty() {
            self.storage_defaulted = true;
            self.storage.insert(
                "default".into(),
                StorageLocation::Local {
                    path: self.data_dir.join("storage"),
                    fsync: true,
                },
            );
        }
        if self.storage_preference.is_empty() {
            self.storage_preference = self.storage.keys().cloned().collect();
        }
        for (key, names) in [
            ("DISTRIBUTED_STORAGE_PREFERENCE", &self.storage_preference),
            (
                "DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS",
                &self.storage_default_locations,
            ),
        ] {
            for name in names {
                if !self.storage.contains_key(name) {
                    errors.push(ConfigError::new(
                        key,
                        format!("location {name:?} is not defined in DISTRIBUTED_STORAGE_CONFIG"),
                    ));
                }
            }
        }
        match (&self.tls_cert_file, &self.tls_key_file) {
            (Some(_), None) => errors.push(ConfigError::new(
                "TLS_KEY_FILE",
                "TLS_CERT_FILE is set, so TLS_KEY_FILE is needed too",
            )),
            (None, Some(_)) => errors.push(ConfigError::new(
                "TLS_CERT_FILE",
                "TLS_KEY_FILE is set, so TLS_CERT_FILE is needed too",
            )),
            (None, None)
                if self.preferred_url_scheme == "https" && !self.external_tls_termination =>
            {
                // Quay's convention: ssl.cert and ssl.key beside config.yaml.
                if let Some(dir) = file.map(parent_dir) {
                    let (cert, key) = (dir.join("ssl.cert"), dir.join("ssl.key"));
                    if cert.exists() && key.exists() {
                        self.tls_cert_file = Some(cert);
                        self.tls_key_file = Some(key);
                    }
                }
            }
            _ => {}
        }
        for loc in self.storage.values_mut() {
            if let StorageLocation::Local { fsync, .. } = loc {
                *fsync = self.storage_fsync;
            }
        }
        if self.authentication_type == "LDAP" {
            let ldap = self.auth.ldap.get_or_insert_with(Default::default);
            if let Err((key, msg)) = ldap.validate() {
                errors.push(ConfigError::new(key, msg));
            }
        } else if self.auth.ldap.take().is_some() {
            // Quay ignores LDAP settings unless LDAP is the user backend; so does Berth, saying so.
            self.ignored_keys.append(&mut self.ldap_keys);
        }
        self.auth.service = self.server_hostname.clone();
        // As Quay does: a registry reached over https sends its session cookie over https only,
        // unless SESSION_COOKIE_SECURE says otherwise.
        if self.preferred_url_scheme == "https" && !all.contains_key("SESSION_COOKIE_SECURE") {
            self.auth.session_cookie_secure = true;
        }
        let options = &self.auth.tag_expiration_options;
        if !options.is_empty() && !options.contains(&self.gc.default_window_s) {
            let shown_options = match all.get("TAG_EXPIRATION_OPTIONS") {
                Some(v) => shown(v),
                None => "[0s, 1d, 1w, 2w, 4w] (the default)".into(),
            };
            errors.push(ConfigError::new(
                "DEFAULT_TAG_EXPIRATION",
                format!(
                    "{} is not one of TAG_EXPIRATION_OPTIONS {shown_options}",
                    all.get("DEFAULT_TAG_EXPIRATION")
                        .map_or_else(|| "2w (the default)".into(), shown)
                ),
            ));
        }
        if let (Some(a), Some(b)) = (
            all.get("AUTO_PRUNE_FREQUENCY_S"),
            all.get("AUTO_PRUNING_POLL_PERIOD"),
        ) && a != b
        {
            errors.push(ConfigError::new(
                "AUTO_PRUNE_FREQUENCY_S",
                format!(
                    "is an older name of AUTO_PRUNING_POLL_PERIOD, which says {}; keep one",
                    shown(b)
                ),
            ));
        }
        if !self.direct_login && self.auth.oidc.is_empty() {
            errors.push(ConfigError::new(
                "FEATURE_DIRECT_LOGIN",
                "false turns off password sign-in for users (database and LDAP), but no external \
                 provider is configured (a <NAME>_LOGIN_CONFIG block with OIDC_SERVER), so no user \
                 could sign in; configure one or set FEATURE_DIRECT_LOGIN to true",
            ));
        }
        if self.metrics_listen.as_deref() == Some(self.listen.as_str()) {
            errors.push(ConfigError::new(
                "METRICS_LISTEN_ADDRESS",
                "must differ from LISTEN_ADDRESS (leave it unset to serve /metrics there)",
            ));
        }
        errors
    }
}

fn unknown(key: &str) -> ConfigError {
    let hint = keys::suggest(key)
        .map(|s| format!("; did you mean {s}?"))
        .unwrap_or_default();
    ConfigError {
        unknown_key: true,
        ..ConfigError::new(
            key,
            format!("unknown key (not a Berth or Quay setting){hint}"),
        )
    }
}
