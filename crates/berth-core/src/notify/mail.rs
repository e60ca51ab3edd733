//! Email over SMTP with Quay's `MAIL_*` settings: notification mails (subject: the event's
//! summary; a text and an HTML body) and the mail that authorizes an address for a
//! repository's notifications.

use super::events;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::Value;
use std::time::Duration;

/// `MAIL_SERVER` and the rest; present only when `FEATURE_MAILING` is on and a server is set.
#[derive(Debug, Clone)]
pub struct MailConfig {
    pub server: String,
    /// `MAIL_PORT` (587).
    pub port: u16,
    /// `MAIL_USE_TLS`: STARTTLS, required (true by default).
    pub use_tls: bool,
    /// `MAIL_USE_AUTH` with `MAIL_USERNAME` / `MAIL_PASSWORD` (a username given logs in too).
    pub use_auth: bool,
    pub username: Option<String>,
    pub password: Option<String>,
    /// `MAIL_DEFAULT_SENDER`.
    pub sender: String,
}

impl Default for MailConfig {
    /// Quay's defaults (no server: no mail).
    fn default() -> Self {
        MailConfig {
            server: String::new(),
            port: 587,
            use_tls: true,
            use_auth: false,
            username: None,
            password: None,
            sender: "admin@example.com".into(),
        }
    }
}

/// Whether `addr` is an address mail can be sent to.
pub fn valid_address(addr: &str) -> bool {
    addr.parse::<lettre::Address>().is_ok()
}

/// Sends one mail; the error says what failed.
pub async fn send(
    m: &MailConfig,
    timeout: Duration,
    to: &str,
    subject: &str,
    text: String,
    html: String,
) -> Result<(), String> {
    let from: Mailbox = m
        .sender
        .parse()
        .map_err(|e| format!("MAIL_DEFAULT_SENDER {:?}: {e}", m.sender))?;
    let to: Mailbox = to.parse().map_err(|e| format!("{to:?}: {e}"))?;
    let msg = Message::builder()
        .from(from)
        .to(to)
        .subject(subject)
        .multipart(MultiPart::alternative_plain_html(text, html))
        .map_err(|e| format!("message: {e}"))?;
    let builder = if m.use_tls {
        AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&m.server)
            .map_err(|e| format!("MAIL_SERVER {}: {e}", m.server))?
    } else {
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&m.server)
    };
    let mut builder = builder.port(m.port).timeout(Some(timeout));
    if (m.use_auth || m.username.is_some())
        && let (Some(u), Some(p)) = (&m.username, &m.password)
    {
        builder = builder.credentials(Credentials::new(u.clone(), p.clone()));
    }
    builder
        .build()
        .send(msg)
        .await
        .map(|_| ())
        .map_err(|e| format!("SMTP: {e}"))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A notification mail's text and HTML bodies: the summary, a link to the page, and the
/// event's facts.
pub fn bodies(event: &str, data: &Value) -> (String, String) {
    let summary = events::summary(event, data);
    let home = data["homepage"].as_str().unwrap_or("");
    let mut facts = Vec::new();
    if let Some(o) = data.as_object() {
        for (k, v) in o {
            if matches!(k.as_str(), "homepage" | "docker_url" | "name" | "namespace") {
                continue;
            }
            let v = match v {
                Value::String(s) => s.clone(),
                Value::Array(a) => a
                    .iter()
                    .map(|x| {
                        x.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| x.to_string())
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
                other => other.to_string(),
            };
            facts.push((k.clone(), v));
        }
    }
    let text = format!(
        "{summary}\n\n{}\n\n{home}\n",
        facts
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let html = format!(
        "<!doctype html><html><body><h1>{}</h1><dl>{}</dl><p><a href=\"{}\">{}</a></p></body></html>",
        escape(&summary),
        facts
            .iter()
            .map(|(k, v)| format!("<dt>{}</dt><dd>{}</dd>", escape(k), escape(v)))
            .collect::<String>(),
        escape(home),
        escape(home)
    );
    (text, html)
}
