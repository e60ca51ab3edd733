//! Quay's notification events and methods, the JSON each event sends (`event_data`), the
//! summaries, the sample payloads `/test` sends, and the `event_config` filters.

use serde_json::{Value, json};

/// Every event Quay knows, so that the API accepts them all; later work adds the producers
/// of those not fired yet (builds, scanning, mirroring).
pub const EVENTS: &[&str] = &[
    "repo_push",
    "repo_image_expiry",
    "vulnerability_found",
    "build_queued",
    "build_start",
    "build_success",
    "build_failure",
    "build_cancelled",
    "repo_mirror_sync_started",
    "repo_mirror_sync_success",
    "repo_mirror_sync_failed",
    "quota_warning",
    "quota_error",
];

/// Events of a namespace, not of a repository.
pub const NAMESPACE_EVENTS: &[&str] = &["quota_warning", "quota_error"];

/// Methods Berth delivers through.
pub const METHODS: &[&str] = &["webhook", "slack", "email", "quay_notification"];

/// Quay's method names Berth does not deliver through (yet, or any more), with what to use.
pub fn unsupported_method(m: &str) -> Option<&'static str> {
    match m {
        "flowdock" | "hipchat" => {
            Some("Flowdock and HipChat no longer exist; use a webhook or Slack")
        }
        _ => None,
    }
}

/// How an event is shown: Quay's levels (Slack colours follow them).
pub fn level(event: &str, data: &Value) -> &'static str {
    match event {
        "repo_push" => "primary",
        "build_success" | "repo_mirror_sync_success" => "success",
        "build_failure" | "repo_mirror_sync_failed" | "quota_error" => "error",
        "quota_warning" => "warning",
        "vulnerability_found" => match data["vulnerability"]["priority"].as_str() {
            Some("Critical") => "error",
            Some("High" | "Medium") => "warning",
            _ => "info",
        },
        _ => "info",
    }
}

/// The one-line summary: an email's subject, a Slack message's text.
pub fn summary(event: &str, data: &Value) -> String {
    let repo = data["repository"].as_str().unwrap_or("");
    let ns = data["namespace"].as_str().unwrap_or("");
    let short_ref = data["trigger_metadata"]["commit"]
        .as_str()
        .map(|c| format!(" [{}]", &c[..c.len().min(7)]))
        .unwrap_or_default();
    match event {
        "repo_push" => format!("Repository {repo} updated"),
        "repo_image_expiry" => format!("Repository {repo} image(s) expiring"),
        "vulnerability_found" => format!(
            "Vulnerability {} found in repository {repo}",
            data["vulnerability"]["id"].as_str().unwrap_or("")
        ),
        "build_queued" => format!("Build queued for repository {repo}{short_ref}"),
        "build_start" => format!("Build started for repository {repo}{short_ref}"),
        "build_success" => format!("Build succeeded for repository {repo}{short_ref}"),
        "build_failure" => format!("Build failure for repository {repo}{short_ref}"),
        "build_cancelled" => format!("Build cancelled for repository {repo}{short_ref}"),
        "repo_mirror_sync_started" => format!("Repository Mirror started for {repo}"),
        "repo_mirror_sync_success" => format!("Repository Mirror succeeded for {repo}"),
        "repo_mirror_sync_failed" => format!("Repository Mirror failed for {repo}"),
        "quota_warning" => format!("Quota warning for namespace {ns}"),
        "quota_error" => format!("Quota exceeded for namespace {ns}"),
        other => format!("{other} in {repo}"),
    }
}

/// The message body in Slack's mrkdwn: the summary linked to the page, and the event's facts.
pub fn slack_text(event: &str, data: &Value) -> String {
    let home = data["homepage"].as_str().unwrap_or("");
    let name = data["repository"]
        .as_str()
        .or(data["namespace"].as_str())
        .unwrap_or("");
    let list = |k: &str| {
        data[k]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(|t| format!("`{t}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    };
    match event {
        "repo_push" => format!(
            "Repository <{home}|{name}> updated: {}",
            list("updated_tags")
        ),
        "repo_image_expiry" => format!(
            "Tags of <{home}|{name}> expiring in {}: {}",
            data["expiring_in"].as_str().unwrap_or(""),
            list("tags")
        ),
        "vulnerability_found" => format!(
            "*{}* ({}) found in <{home}|{name}>: {}",
            data["vulnerability"]["id"].as_str().unwrap_or(""),
            data["vulnerability"]["priority"].as_str().unwrap_or(""),
            list("tags")
        ),
        "quota_warning" | "quota_error" => format!(
            "<{home}|{name}> uses {} of {} ({} %)",
            data["usage_bytes_formatted"].as_str().unwrap_or(""),
            data["limit_bytes_formatted"].as_str().unwrap_or(""),
            data["usage_percent"]
        ),
        _ => format!(
            "<{home}|{name}>: {}",
            data["message"]
                .as_str()
                .or(data["error_message"].as_str())
                .unwrap_or(&summary(event, data))
        ),
    }
}

/// Quay's sample event data for `/test` (the repository's base block is added by the caller).
pub fn sample(event: &str, event_config: &Value) -> Value {
    let build = || {
        json!({
            "build_id": "fake-build-id",
            "build_name": "some-fake-build",
            "docker_tags": ["latest", "foo", "bar"],
            "trigger_id": "1245634",
            "trigger_kind": "GitHub",
            "trigger_metadata": {
                "default_branch": "master",
                "ref": "refs/heads/somebranch",
                "commit": "42d4a62c53350993ea41069e9f2cfdefb0df097d",
            },
        })
    };
    match event {
        "repo_push" => json!({"updated_tags": ["latest", "foo"], "pruned_image_count": 3}),
        "repo_image_expiry" => json!({
            "tags": ["latest", "v1"],
            "expiring_in": format!("{} days", event_config["days"].as_i64().unwrap_or(1)),
        }),
        "vulnerability_found" => {
            let level = event_config["level"]
                .as_i64()
                .or_else(|| event_config["level"].as_str().and_then(|l| l.parse().ok()))
                .unwrap_or(0);
            json!({
                "tags": ["latest", "prod"],
                "image": "some-image-id",
                "vulnerability": {
                    "id": "CVE-FAKE-CVE",
                    "description": "A futuristic vulnerability",
                    "link": "https://security-tracker.debian.org/tracker/CVE-FAKE-CVE",
                    "priority": PRIORITIES.get(level.clamp(0, 5) as usize).copied().unwrap_or("Critical"),
                    "has_fix": true,
                },
            })
        }
        "build_queued" => {
            let mut b = build();
            b["is_manual"] = json!(false);
            b
        }
        "build_failure" => {
            let mut b = build();
            b["error_message"] = json!("This is a fake error message");
            b
        }
        e if e.starts_with("build_") => build(),
        e if e.starts_with("repo_mirror_sync_") => json!({"message": "TEST NOTIFICATION"}),
        "quota_warning" => quota_sample(80),
        "quota_error" => quota_sample(105),
        _ => json!({}),
    }
}

fn quota_sample(percent: i64) -> Value {
    let limit = 1_000_000_000i64;
    quota_data(limit / 100 * percent, limit, percent.min(100))
}

/// Quay's keys of a quota event.
pub fn quota_data(usage: i64, limit: i64, threshold_percent: i64) -> Value {
    let usage_percent = if limit > 0 {
        (usage as f64 * 100.0 / limit as f64).round() as i64
    } else {
        0
    };
    json!({
        "threshold_percent": threshold_percent,
        "usage_bytes": usage,
        "limit_bytes": limit,
        "usage_percent": usage_percent,
        "usage_bytes_formatted": crate::quotas::human_size(usage),
        "limit_bytes_formatted": crate::quotas::human_size(limit),
    })
}

/// Quay's vulnerability priorities, most severe first (the index `level` filters by).
pub const PRIORITIES: &[&str] = &["Critical", "High", "Medium", "Low", "Negligible", "Unknown"];

/// Whether an event with `data` passes a notification's `event_config`.
pub fn passes(event: &str, event_config: &Value, data: &Value) -> bool {
    match event {
        "vulnerability_found" => {
            let wanted = event_config["level"]
                .as_i64()
                .or_else(|| event_config["level"].as_str().and_then(|l| l.parse().ok()))
                .or_else(|| {
                    event_config["vulnerability"]["priority"]
                        .as_str()
                        .and_then(|p| PRIORITIES.iter().position(|x| x.eq_ignore_ascii_case(p)))
                        .map(|i| i as i64)
                });
            let Some(wanted) = wanted else { return true };
            let got = data["vulnerability"]["priority"]
                .as_str()
                .and_then(|p| PRIORITIES.iter().position(|x| x.eq_ignore_ascii_case(p)))
                .unwrap_or(PRIORITIES.len() - 1) as i64;
            got <= wanted
        }
        e if e.starts_with("build_") => match event_config["ref-regex"].as_str() {
            None | Some("") => true,
            Some(re) => match (
                regex::Regex::new(&format!("^(?:{re})")),
                data["trigger_metadata"]["ref"].as_str(),
            ) {
                (Ok(re), Some(r)) => re.is_match(r),
                _ => false,
            },
        },
        _ => true,
    }
}

/// Checks an `event_config` when a notification is created.
pub fn check_event_config(event: &str, c: &Value) -> Result<(), String> {
    if !c.is_object() && !c.is_null() {
        return Err("eventConfig must be an object".into());
    }
    match event {
        "repo_image_expiry" => match c["days"].as_i64() {
            Some(d) if d > 0 => Ok(()),
            _ => Err("repo_image_expiry needs eventConfig.days, a positive number of days".into()),
        },
        e if e.starts_with("build_") => match c["ref-regex"].as_str() {
            Some(re) if regex::Regex::new(re).is_err() => Err(format!(
                "eventConfig.ref-regex {re:?} is not a regular expression"
            )),
            _ => Ok(()),
        },
        _ => Ok(()),
    }
}

/// Quay's JSON templates: a document whose strings may hold `${path}` (a dotted path with
/// `[n]` indexes into the event data). A string that is one `${…}` becomes the value itself
/// (keeping its type); inline uses are stringified, lists joined with `,`, and a missing
/// value is `(none)`. Keys are templated too.
pub fn apply_template(template: &Value, data: &Value) -> Value {
    match template {
        Value::String(s) => {
            if let Some(path) = s.strip_prefix("${").and_then(|r| r.strip_suffix('}'))
                && !path.contains("${")
            {
                return lookup(data, path).unwrap_or_else(|| Value::String("(none)".into()));
            }
            Value::String(substitute(s, data))
        }
        Value::Array(a) => Value::Array(a.iter().map(|v| apply_template(v, data)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (substitute(k, data), apply_template(v, data)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn substitute(s: &str, data: &Value) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[at..]);
            return out;
        };
        out.push_str(&match lookup(data, &after[..end]) {
            Some(Value::String(v)) => v,
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string())
                })
                .collect::<Vec<_>>()
                .join(","),
            Some(v) => v.to_string(),
            None => "(none)".into(),
        });
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// `a.b[0].c` (an optional leading `$.`) in `data`.
fn lookup(data: &Value, path: &str) -> Option<Value> {
    let path = path.trim();
    let path = path
        .strip_prefix("$.")
        .or(path.strip_prefix('$'))
        .unwrap_or(path);
    let mut v = data;
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (key, idx) = match part.split_once('[') {
            Some((k, i)) => (k, Some(i.trim_end_matches(']'))),
            None => (part, None),
        };
        if !key.is_empty() {
            v = v.get(key)?;
        }
        if let Some(i) = idx {
            v = v.get(i.parse::<usize>().ok()?)?;
        }
    }
    Some(v.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_substitute_values_keeping_types_and_say_none_when_missing() {
        let data = json!({"repository": "acme/app", "updated_tags": ["v1", "latest"], "n": 3});
        let t = json!({
            "text": "pushed ${repository}: ${updated_tags}",
            "tags": "${updated_tags}",
            "first": "${updated_tags[1]}",
            "count": "${n}",
            "${repository}": "key",
            "gone": "${nope.deeper}",
        });
        assert_eq!(
            apply_template(&t, &data),
            json!({
                "text": "pushed acme/app: v1,latest",
                "tags": ["v1", "latest"],
                "first": "latest",
                "count": 3,
                "acme/app": "key",
                "gone": "(none)",
            })
        );
    }

    #[test]
    fn filters_follow_quay() {
        let crit = json!({"vulnerability": {"priority": "Critical"}});
        let low = json!({"vulnerability": {"priority": "Low"}});
        let high_only = json!({"level": 1});
        assert!(passes("vulnerability_found", &high_only, &crit));
        assert!(!passes("vulnerability_found", &high_only, &low));
        assert!(passes("vulnerability_found", &json!({}), &low));
        let on_main = json!({"ref-regex": "refs/heads/main"});
        let main = json!({"trigger_metadata": {"ref": "refs/heads/main"}});
        let other = json!({"trigger_metadata": {"ref": "refs/tags/x"}});
        assert!(passes("build_success", &on_main, &main));
        assert!(!passes("build_success", &on_main, &other));
        assert!(
            !passes("build_success", &on_main, &json!({})),
            "no ref: not fired"
        );
        assert!(check_event_config("repo_image_expiry", &json!({})).is_err());
        assert!(check_event_config("repo_image_expiry", &json!({"days": 3})).is_ok());
    }
}
