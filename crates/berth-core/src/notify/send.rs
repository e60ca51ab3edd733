//! Sending one delivery: the body each method sends, the headers, and the outcome. Every
//! target passes the outbound guard at each send (a name may resolve elsewhere since the
//! notification was created), and the client connects only to the addresses it checked and
//! follows no redirect.

use super::events;
use super::{NotifyConfig, Secrets};
use crate::Registry;
use berth_db::{DeliveryRow, NotificationRow};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// What one attempt came to.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub ok: bool,
    pub status: Option<i64>,
    pub error: Option<String>,
    pub latency_ms: i64,
}

impl Outcome {
    /// An attempt begun at `started` that got `status` (when a receiver answered) and `result`.
    pub(super) fn of(started: Instant, status: Option<i64>, result: Result<(), String>) -> Outcome {
        Outcome {
            ok: result.is_ok(),
            status,
            error: result.err(),
            latency_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
        }
    }
}

/// What a sender answers: the receiver's status, if one answered, and whether it was delivered.
pub(super) type Sent = (Option<i64>, Result<(), String>);

/// The body a notification sends for `data` and its content type.
pub(super) fn body(
    c: &NotifyConfig,
    n: &NotificationRow,
    d: &DeliveryRow,
    data: &Value,
) -> Result<(Value, &'static str), String> {
    let config: Value = serde_json::from_str(&n.config).unwrap_or(Value::Null);
    match n.method.as_str() {
        "webhook" if config["format"] == "cloudevents" => Ok((
            json!({
                "specversion": "1.0",
                "id": d.event_id,
                "source": format!("{}://{}/repository/{}", c.scheme, c.server_hostname,
                    data["repository"].as_str().or(data["namespace"].as_str()).unwrap_or("")),
                "type": format!("dev.berth.{}", d.event),
                "time": humantime::format_rfc3339_millis(std::time::UNIX_EPOCH + Duration::from_millis(u64::try_from(d.created_at).unwrap_or(0))).to_string(),
                "datacontenttype": "application/json",
                "data": data,
            }),
            "application/cloudevents+json",
        )),
        "webhook" => match config["template"].as_str() {
            Some(t) => {
                let t: Value = serde_json::from_str(t).map_err(|e| format!("template: {e}"))?;
                Ok((events::apply_template(&t, data), "application/json"))
            }
            None => Ok((data.clone(), "application/json")),
        },
        "slack" => {
            let summary = events::summary(&d.event, data);
            let color = match events::level(&d.event, data) {
                "warning" => "warning",
                "error" => "danger",
                "success" | "primary" => "good",
                _ => "#ffffff",
            };
            Ok((
                json!({
                    "text": summary,
                    "username": "berth",
                    "attachments": [{
                        "fallback": summary,
                        "text": events::slack_text(&d.event, data),
                        "color": color,
                        "mrkdwn_in": ["text"],
                    }],
                }),
                "application/json",
            ))
        }
        m => Err(format!("method {m:?} cannot be delivered")),
    }
}

/// `sha256=<hex HMAC-SHA256 of body under key>`, as GitHub's `X-Hub-Signature-256`.
pub fn signature(key: &str, body: &[u8]) -> String {
    let k = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key.as_bytes());
    format!(
        "sha256={}",
        hex::encode(aws_lc_rs::hmac::sign(&k, body).as_ref())
    )
}

pub(super) async fn deliver(
    reg: &Registry,
    c: &NotifyConfig,
    n: &NotificationRow,
    s: &Secrets,
    d: &DeliveryRow,
) -> Sent {
    let fail = |error: String, status: Option<i64>| (status, Err(error));
    let data: Value = serde_json::from_str(&d.payload).unwrap_or(Value::Null);
    let (body, content_type) = match body(c, n, d, &data) {
        Ok(b) => b,
        Err(e) => return fail(e, None),
    };
    let config: Value = serde_json::from_str(&n.config).unwrap_or(Value::Null);
    let Some(url) = config["url"].as_str() else {
        return fail("the notification has no URL".into(), None);
    };
    let guard = reg.outbound_guard();
    let target = match guard.check(url).await {
        Ok(t) => t,
        Err(e) => return fail(format!("refused: {e}"), None),
    };
    let client = match guard.client(&target, Duration::from_millis(c.send_timeout_ms.max(1))) {
        Ok(c) => c,
        Err(e) => return fail(format!("client: {e}"), None),
    };
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    let sig = signature(&s.signing_key, &bytes);
    let mut req = client
        .post(target.url.clone())
        .header(reqwest::header::CONTENT_TYPE, content_type)
        .header(reqwest::header::USER_AGENT, "Berth-Notifications/1")
        .header("X-Berth-Event", d.event.as_str())
        .header("X-Berth-Event-Id", d.event_id.as_str())
        .header("X-Berth-Delivery", d.id.to_string())
        .header("X-Berth-Signature-256", sig.as_str())
        .header("X-Hub-Signature-256", sig.as_str());
    if n.method == "webhook" {
        for (k, v) in &s.headers {
            req = req.header(k.as_str(), v.as_str());
        }
    }
    match req.body(bytes).send().await {
        Ok(r) => {
            let status = i64::from(r.status().as_u16());
            if r.status().is_success() {
                (Some(status), Ok(()))
            } else if r.status().is_redirection() {
                fail(
                    "redirects are not followed: give the notification its final URL".into(),
                    Some(status),
                )
            } else {
                fail(format!("the receiver answered {status}"), Some(status))
            }
        }
        Err(e) => fail(
            if e.is_timeout() {
                format!("no answer within {} ms", c.send_timeout_ms)
            } else {
                format!("could not connect: {e}")
            },
            None,
        ),
    }
}
