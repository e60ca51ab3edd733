//! Reading one value of a key: each helper either returns the typed value or a `ConfigError`
//! naming the key and what was expected.

use super::ConfigError;
use serde_json::Value;

pub use berth_core::parse_duration_s;

pub fn err<T>(key: &str, msg: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError::new(key, msg))
}

pub fn as_string(key: &str, v: &Value) -> Result<String, ConfigError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        other => err(key, format!("expected a string, found {other}")),
    }
}

/// A string, or `None` for null and the empty string (Quay's two ways of leaving a key unset).
pub fn as_opt_string(key: &str, v: &Value) -> Result<Option<String>, ConfigError> {
    match v {
        Value::Null => Ok(None),
        other => {
            let s = as_string(key, other)?;
            Ok((!s.trim().is_empty()).then(|| s.trim().to_string()))
        }
    }
}

pub fn as_bool(key: &str, v: &Value) -> Result<bool, ConfigError> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        other => err(key, format!("expected true or false, found {other}")),
    }
}

/// Whether a feature switch is on (for keys whose type has already been checked).
pub fn is_true(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::String(s) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

pub fn as_string_list(key: &str, v: &Value) -> Result<Vec<String>, ConfigError> {
    match v {
        Value::Array(items) => items.iter().map(|i| as_string(key, i)).collect(),
        Value::Null => Ok(Vec::new()),
        // A comma-separated string: what an environment variable can carry.
        Value::String(s) => Ok(s
            .split(',')
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect()),
        other => err(key, format!("expected a list of strings, found {other}")),
    }
}

pub fn non_negative(key: &str, v: &Value) -> Result<u64, ConfigError> {
    v.as_u64().map_or_else(
        || err(key, format!("expected an integer ≥ 0, found {v}")),
        Ok,
    )
}

pub fn positive(key: &str, v: &Value) -> Result<u64, ConfigError> {
    v.as_u64().filter(|n| *n > 0).map_or_else(
        || err(key, format!("expected a positive integer, found {v}")),
        Ok,
    )
}

/// A positive integer that fits the `i64` fields of the core configuration.
pub fn positive_i64(key: &str, v: &Value) -> Result<i64, ConfigError> {
    i64::try_from(positive(key, v)?).or_else(|_| err(key, format!("{v} is too large")))
}

pub fn non_negative_i64(key: &str, v: &Value) -> Result<i64, ConfigError> {
    i64::try_from(non_negative(key, v)?).or_else(|_| err(key, format!("{v} is too large")))
}

/// Seconds in a Quay duration string (`30s`, `10m`, `12h`, `31d`, `2w`).
pub fn duration(key: &str, v: &Value) -> Result<i64, ConfigError> {
    let s = as_string(key, v)?;
    parse_duration_s(&s).map_or_else(
        || {
            err(
                key,
                format!("{s:?} is not a duration such as 30m, 12h, 31d or 2w"),
            )
        },
        Ok,
    )
}

/// `host:port` to listen on; a name is resolved when the listener is bound.
pub fn listen_address(key: &str, v: &Value) -> Result<String, ConfigError> {
    let s = as_string(key, v)?.trim().to_string();
    check_listen_address(&s).map_err(|msg| ConfigError::new(key, msg))?;
    Ok(s)
}

/// Checks the form of a listen address without resolving it.
pub fn check_listen_address(s: &str) -> Result<(), String> {
    if s.parse::<std::net::SocketAddr>().is_ok() {
        return Ok(());
    }
    let expected = "expected host:port such as 127.0.0.1:5000, 0.0.0.0:5000 or [::1]:5000";
    let Some((host, port)) = s.rsplit_once(':') else {
        return Err(format!("{s:?} has no port: {expected}"));
    };
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err(format!("{s:?} is not an address to listen on: {expected}"));
    }
    // An IPv6 address must be bracketed, or its last group would be read as the port.
    if host.contains(':') && !(host.starts_with('[') && host.ends_with(']')) {
        return Err(format!(
            "{s:?}: write an IPv6 address in brackets; {expected}"
        ));
    }
    Ok(())
}

/// A DN written as Quay writes it: a list of RDNs (`[dc=example, dc=org]`) or one string.
pub fn as_dn(key: &str, v: &Value) -> Result<String, ConfigError> {
    match v {
        Value::Array(items) => {
            let mut rdns = Vec::new();
            for i in items {
                let s = as_string(key, i)?;
                if !s.trim().is_empty() {
                    rdns.push(s.trim().to_string());
                }
            }
            Ok(rdns.join(","))
        }
        Value::String(s) => Ok(s.trim().to_string()),
        Value::Null => Ok(String::new()),
        other => err(
            key,
            format!(
                "expected a DN, as a list of RDNs such as [dc=example, dc=org] or a string; found {other}"
            ),
        ),
    }
}

/// Seconds as a number or numeric string, 0 < s ≤ 3600 (LDAP timeouts).
pub fn timeout(key: &str, v: &Value) -> Result<std::time::Duration, ConfigError> {
    let n = match v {
        Value::String(s) => s.trim().parse::<f64>().ok(),
        other => other.as_f64(),
    };
    n.filter(|n| n.is_finite() && *n > 0.0 && *n <= 3600.0)
        .map(std::time::Duration::from_secs_f64)
        .map_or_else(
            || {
                err(
                    key,
                    format!("expected a number of seconds (0 < s ≤ 3600), found {v}"),
                )
            },
            Ok,
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses() {
        for ok in [
            "127.0.0.1:5000",
            "0.0.0.0:1",
            "[::1]:5000",
            "localhost:5000",
        ] {
            assert!(check_listen_address(ok).is_ok(), "{ok}");
        }
        let e = check_listen_address("localhost").expect_err("no port");
        assert!(
            e.contains("expected host:port such as 127.0.0.1:5000"),
            "{e}"
        );
        assert!(check_listen_address(":5000").is_err());
        assert!(check_listen_address("host:http").is_err());
        assert!(check_listen_address("::1:5000").is_err());
    }
}
