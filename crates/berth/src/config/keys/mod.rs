//! The one table of configuration keys: every key Berth acts on, and every key of Quay's
//! `config.yaml` (its schema, `DefaultConfig`, and keys Quay's own tooling writes), each with its
//! value type and what Berth does with it. The parser, `berth config keys`, the "did you mean"
//! hint and the report of keys without effect all read this table, so they cannot drift apart.
//!
//! What Berth does with a key is its [`Class`]:
//! - `Acted`: Berth reads it into [`Config`] (Quay's meaning where Quay has the key).
//! - `NoEffect`: accepted and reported on one info line — presentation, infrastructure Berth does
//!   not use, settings of a capability whose switch is `Unavailable`, or behaviour Berth always has.
//! - `Unavailable`: switches on a capability this version lacks; named in the start-up banner.
//! - `Guard`: a value Berth would silently not honour changes security or writes, so any value
//!   other than the ones Berth behaves like stops the start, naming the key and why.

mod absent;
mod auth;
mod data;
mod internals;
mod ldap;
mod lifecycle;
mod mirror;
mod notify;
mod scan;
mod server;

use super::{Config, ConfigError};
use serde_json::{Map, Value};
use std::path::Path;

/// Reads a key's value into the configuration.
pub type Apply = fn(&mut Config, &str, &Value, &Path) -> Result<(), ConfigError>;

/// What a guard sees: the key's value, every value read, and the configuration built from them.
pub struct Guarded<'a> {
    pub value: &'a Value,
    pub all: &'a Map<String, Value>,
    pub config: &'a Config,
}

#[derive(Clone, Copy)]
pub enum Class {
    Acted(Apply),
    NoEffect,
    Unavailable,
    /// `ok` says whether Berth honours the value; `safe` is such a value (JSON), for messages.
    Guard {
        ok: fn(&Guarded<'_>) -> bool,
        safe: &'static str,
    },
}

impl Class {
    pub fn label(&self) -> &'static str {
        match self {
            Class::Acted(_) => "acted-on",
            Class::NoEffect => "no-effect",
            Class::Unavailable => "unavailable",
            Class::Guard { .. } => "guarded",
        }
    }
}

/// The JSON types a key's value may have (Quay's schema types, plus its default's type).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Ty(u8);

impl Ty {
    pub const BOOL: Ty = Ty(1);
    pub const STR: Ty = Ty(2);
    pub const INT: Ty = Ty(4);
    /// Any number, integers included.
    pub const NUM: Ty = Ty(8 | 4);
    pub const LIST: Ty = Ty(16);
    pub const MAP: Ty = Ty(32);
    pub const NULL: Ty = Ty(64);

    pub const fn or(self, other: Ty) -> Ty {
        Ty(self.0 | other.0)
    }

    const fn has(self, t: Ty) -> bool {
        self.0 & t.0 == t.0
    }

    pub fn allows_null(self) -> bool {
        self.has(Ty::NULL)
    }

    /// Only text: an environment variable's value is taken as it is, not parsed as YAML.
    pub fn text_only(self) -> bool {
        self.0 & !(Ty::STR.0 | Ty::NULL.0) == 0
    }

    pub fn accepts(self, v: &Value) -> bool {
        match v {
            Value::Null => self.has(Ty::NULL),
            Value::Bool(_) => self.has(Ty::BOOL),
            // Strings "true"/"false" count as booleans, as an environment variable carries them.
            Value::String(s) => {
                self.has(Ty::STR)
                    || (self.has(Ty::BOOL)
                        && (s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false")))
            }
            // A number where text is expected is taken as its text (YAML reads `5000` as a number).
            Value::Number(n) => {
                self.0 & 8 != 0
                    || (self.has(Ty::INT) && (n.is_i64() || n.is_u64()))
                    || self.has(Ty::STR)
            }
            Value::Array(_) => self.has(Ty::LIST),
            Value::Object(_) => self.has(Ty::MAP),
        }
    }

    fn parts(self) -> Vec<(&'static str, &'static str)> {
        let mut out = Vec::new();
        let names = [
            (Ty::BOOL, "boolean", "true or false"),
            (Ty::STR, "string", "a string"),
            (Ty::NUM, "number", "a number"),
            (Ty::LIST, "list", "a list"),
            (Ty::MAP, "map", "a map"),
            (Ty::NULL, "null", "null"),
        ];
        for (t, short, long) in names {
            if self.has(t) {
                out.push((short, long));
            } else if t == Ty::NUM && self.has(Ty::INT) {
                out.push(("integer", "an integer"));
            }
        }
        out
    }

    /// `string|null`
    pub fn name(self) -> String {
        self.parts()
            .iter()
            .map(|(s, _)| *s)
            .collect::<Vec<_>>()
            .join("|")
    }

    /// `a string or null`
    pub fn describe(self) -> String {
        self.parts()
            .iter()
            .map(|(_, l)| *l)
            .collect::<Vec<_>>()
            .join(" or ")
    }
}

pub const B: Ty = Ty::BOOL;
pub const BZ: Ty = Ty::BOOL.or(Ty::NULL);
pub const S: Ty = Ty::STR;
pub const SZ: Ty = Ty::STR.or(Ty::NULL);
pub const I: Ty = Ty::INT;
pub const IZ: Ty = Ty::INT.or(Ty::NULL);
pub const N: Ty = Ty::NUM;
pub const NZ: Ty = Ty::NUM.or(Ty::NULL);
pub const L: Ty = Ty::LIST;
pub const LZ: Ty = Ty::LIST.or(Ty::NULL);
pub const M: Ty = Ty::MAP;
pub const MZ: Ty = Ty::MAP.or(Ty::NULL);

#[derive(Clone, Copy)]
pub struct KeyDef {
    pub name: &'static str,
    pub ty: Ty,
    /// The only string values accepted, when not empty (Quay's schema `enum`).
    pub choices: &'static [&'static str],
    /// A key of Quay's config (else one of Berth's own).
    pub quay: bool,
    pub class: Class,
    /// What the key does (acted-on keys) or why Berth classifies it so (the others).
    pub help: &'static str,
    /// Quay's default as JSON, where it is short enough to show; empty otherwise.
    pub quay_default: &'static str,
}

impl KeyDef {
    pub const fn default_is(mut self, json: &'static str) -> KeyDef {
        self.quay_default = json;
        self
    }
    pub const fn one_of(mut self, choices: &'static [&'static str]) -> KeyDef {
        self.choices = choices;
        self
    }
    pub const fn nullable(mut self) -> KeyDef {
        self.ty = self.ty.or(Ty::NULL);
        self
    }
}

const fn def(name: &'static str, ty: Ty, quay: bool, class: Class, help: &'static str) -> KeyDef {
    KeyDef {
        name,
        ty,
        choices: &[],
        quay,
        class,
        help,
        quay_default: "",
    }
}

/// A Quay key Berth acts on.
pub const fn quay(name: &'static str, ty: Ty, help: &'static str, apply: Apply) -> KeyDef {
    def(name, ty, true, Class::Acted(apply), help)
}

/// One of Berth's own keys.
pub const fn berth(name: &'static str, ty: Ty, help: &'static str, apply: Apply) -> KeyDef {
    def(name, ty, false, Class::Acted(apply), help)
}

pub const fn no_effect(name: &'static str, ty: Ty, why: &'static str) -> KeyDef {
    def(name, ty, true, Class::NoEffect, why)
}

/// A boolean switch for a capability this version lacks; `what` names the capability.
pub const fn unavailable(name: &'static str, what: &'static str) -> KeyDef {
    def(name, Ty::BOOL, true, Class::Unavailable, what)
}

pub const fn guard(
    name: &'static str,
    ty: Ty,
    why: &'static str,
    ok: fn(&Guarded<'_>) -> bool,
    safe: &'static str,
) -> KeyDef {
    def(name, ty, true, Class::Guard { ok, safe }, why)
}

/// The entry that stands for every `<NAME>_LOGIN_CONFIG` block.
pub const LOGIN_CONFIG_PATTERN: &str = "<NAME>_LOGIN_CONFIG";

/// Every key, area by area.
pub fn all() -> impl Iterator<Item = &'static KeyDef> {
    [
        server::KEYS,
        auth::KEYS,
        ldap::KEYS,
        data::KEYS,
        lifecycle::KEYS,
        notify::KEYS,
        scan::KEYS,
        mirror::KEYS,
        absent::KEYS,
        internals::KEYS,
    ]
    .into_iter()
    .flatten()
}

/// The definition of `name`: exact, or the `<NAME>_LOGIN_CONFIG` pattern.
pub fn lookup(name: &str) -> Option<&'static KeyDef> {
    all().find(|d| d.name == name).or_else(|| {
        (name.len() > "_LOGIN_CONFIG".len() && name.ends_with("_LOGIN_CONFIG"))
            .then(|| all().find(|d| d.name == LOGIN_CONFIG_PATTERN))
            .flatten()
    })
}

/// The closest known key, to suggest on a typo.
pub fn suggest(key: &str) -> Option<&'static str> {
    fn distance(a: &str, b: &str) -> usize {
        let b: Vec<char> = b.chars().collect();
        let mut prev: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut cur = vec![i + 1];
            for (j, cb) in b.iter().enumerate() {
                cur.push(
                    (prev[j] + usize::from(ca != *cb))
                        .min(prev[j + 1] + 1)
                        .min(cur[j] + 1),
                );
            }
            prev = cur;
        }
        prev[b.len()]
    }
    all()
        .map(|d| d.name)
        .filter(|k| *k != LOGIN_CONFIG_PATTERN)
        .map(|k| (distance(key, k), k))
        .filter(|(d, _)| *d <= 3)
        .min()
        .map(|(_, k)| k)
}

// Shared guard tests.
pub fn is_false(g: &Guarded<'_>) -> bool {
    !super::values::is_true(g.value)
}
pub fn is_on(g: &Guarded<'_>) -> bool {
    super::values::is_true(g.value)
}
/// Null, an empty list, map or string.
pub fn is_empty(g: &Guarded<'_>) -> bool {
    match g.value {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
        Value::String(s) => s.trim().is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn names_are_unique_and_upper_case() {
        let mut seen = BTreeSet::new();
        for d in all() {
            assert!(seen.insert(d.name), "{} is defined twice", d.name);
            assert!(
                d.name == LOGIN_CONFIG_PATTERN
                    || d.name
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'),
                "{}",
                d.name
            );
            assert!(!d.help.is_empty(), "{} has no help", d.name);
        }
    }

    #[test]
    fn quay_defaults_and_safe_values_fit_their_keys() {
        for d in all() {
            if !d.quay_default.is_empty() {
                let v: Value = serde_json::from_str(d.quay_default)
                    .unwrap_or_else(|e| panic!("{}: default {}: {e}", d.name, d.quay_default));
                assert!(
                    d.ty.accepts(&v),
                    "{}: default {v} is not {}",
                    d.name,
                    d.ty.name()
                );
            }
            if let Class::Guard { safe, .. } = d.class {
                let v: Value = serde_json::from_str(safe)
                    .unwrap_or_else(|e| panic!("{}: safe {safe}: {e}", d.name));
                assert!(d.ty.accepts(&v), "{}: safe value {v}", d.name);
            }
        }
    }

    #[test]
    fn every_quay_key_is_known() {
        let quay = all().filter(|d| d.quay).count();
        assert!(quay >= 360, "{quay} Quay keys");
        for k in [
            "SETUP_COMPLETE",
            "TESTING",
            "USE_CERBERUS",
            "FEATURE_FIPS",
            "FEATURE_ACI_CONVERSION",
            "FEATURE_APP_REGISTRY",
            "FEATURE_PARTIAL_USER_AUTOCOMPLETE",
            "FEATURE_REQUIRE_TEAM_INVITE",
            "FEATURE_RESTRICTED_V1_PUSH",
            "FEATURE_USERNAME_CONFIRMATION",
            "FEATURE_USER_LOG_ACCESS",
            "GITHUB_TRIGGER_CONFIG",
            "GITLAB_TRIGGER_KIND",
            "ENTERPRISE_LOGO_URL",
            "FEATURE_STORAGE_REPLICATION",
            "AUTO_PRUNING_POLL_PERIOD",
        ] {
            assert!(lookup(k).is_some_and(|d| d.quay), "{k}");
        }
        assert!(lookup("JOB_LEASE_SECONDS").is_some_and(|d| !d.quay));
        assert_eq!(
            lookup("CORP_LOGIN_CONFIG").map(|d| d.name),
            Some(LOGIN_CONFIG_PATTERN)
        );
        assert_eq!(
            lookup("GITHUB_LOGIN_CONFIG").map(|d| d.name),
            Some("GITHUB_LOGIN_CONFIG")
        );
        assert!(lookup("_LOGIN_CONFIG").is_none());
    }

    #[test]
    fn types() {
        assert_eq!(SZ.name(), "string|null");
        assert_eq!(IZ.describe(), "an integer or null");
        assert!(S.accepts(&Value::from(5000)));
        assert!(!I.accepts(&Value::from(1.5)));
        assert!(N.accepts(&Value::from(1.5)));
        assert!(B.accepts(&Value::from("TRUE")));
        assert!(!B.accepts(&Value::from("IPv4")));
        assert!(SZ.text_only() && !B.text_only());
    }
}
