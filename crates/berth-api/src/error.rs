//! Domain errors become HTTP answers here, and only here. Every answer carries the registry JSON
//! body `{"errors":[{"code","message","detail"}]}` (except to HEAD, which has no body); an
//! unexpected failure is logged once and answered without internal detail.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use berth_core::Error;
use berth_oci::ErrorCode;

#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub status: u16,
    /// What happened and what to do, in words: the error's `message`, the one line clients
    /// print (`code: message`). Empty: the code's own message.
    pub detail: String,
    /// Structured facts for programs (`detail` in the JSON body), e.g. `{"retry_after_s": 30}`.
    pub facts: Option<serde_json::Value>,
    /// Answer without a body (the request was HEAD).
    pub head: bool,
    /// Extra headers, e.g. `Content-Range` on 416 or `Range` on an out-of-order chunk.
    pub headers: Vec<(header::HeaderName, String)>,
}

impl ApiError {
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> ApiError {
        ApiError {
            code,
            status: code.status(),
            detail: detail.into(),
            facts: None,
            head: false,
            headers: Vec::new(),
        }
    }
    pub fn status(mut self, status: u16) -> ApiError {
        self.status = status;
        self
    }
    pub fn header(mut self, name: header::HeaderName, value: String) -> ApiError {
        self.headers.push((name, value));
        self
    }
    pub fn facts(mut self, facts: serde_json::Value) -> ApiError {
        self.facts = Some(facts);
        self
    }
    pub fn for_head(mut self, head: bool) -> ApiError {
        self.head = head;
        self
    }
}

/// A domain error as an HTTP answer. `Problem::from` is the one place a core error gets a status
/// and a code; `/v2` renders it as OCI JSON ([`ApiError`]), `/api/v1` as Quay JSON
/// (`rest::RestError`). Internal faults are logged here, once, and answered without detail.
#[derive(Debug)]
pub struct Problem {
    pub status: u16,
    /// The OCI code `/v2` answers with.
    pub code: ErrorCode,
    pub message: String,
    /// Seconds until a throttled caller may retry (`Retry-After`).
    pub retry_after: Option<i64>,
    /// Where an out-of-order upload resumes (the session's size).
    pub resume_from: Option<u64>,
}

impl From<Error> for Problem {
    fn from(e: Error) -> Problem {
        use berth_core::{Malformed, Missing};
        let answer = |status: u16, code: ErrorCode, message: String| Problem {
            status,
            code,
            message,
            retry_after: None,
            resume_from: None,
        };
        match e {
            Error::NotFound { what, detail } => {
                let code = match what {
                    Missing::Blob => ErrorCode::BlobUnknown,
                    Missing::Manifest => ErrorCode::ManifestUnknown,
                    Missing::Upload => ErrorCode::BlobUploadUnknown,
                    Missing::Repository | Missing::Other => ErrorCode::NameUnknown,
                };
                answer(404, code, detail)
            }
            Error::Invalid { what, detail } => {
                let code = match what {
                    Malformed::Digest => ErrorCode::DigestInvalid,
                    Malformed::Manifest => ErrorCode::ManifestInvalid,
                    Malformed::Name => ErrorCode::NameInvalid,
                    Malformed::Tag => ErrorCode::TagInvalid,
                    Malformed::Size => ErrorCode::SizeInvalid,
                    Malformed::Upload => ErrorCode::BlobUploadInvalid,
                    Malformed::References => ErrorCode::ManifestBlobUnknown,
                    Malformed::Field => ErrorCode::Unsupported,
                };
                answer(400, code, detail)
            }
            Error::AlreadyExists(m) | Error::Conflict(m) => answer(409, ErrorCode::Unsupported, m),
            Error::Unauthenticated(m) => answer(401, ErrorCode::Unauthorized, m),
            Error::Denied(m) => answer(403, ErrorCode::Denied, m),
            Error::OutOfOrder {
                resume_from,
                detail,
            } => Problem {
                resume_from: Some(resume_from),
                ..answer(416, ErrorCode::BlobUploadInvalid, detail)
            },
            Error::TooLarge(m) => answer(413, ErrorCode::SizeInvalid, m),
            Error::Throttled {
                retry_after_s,
                detail,
            } => Problem {
                retry_after: Some(retry_after_s),
                ..answer(429, ErrorCode::TooManyRequests, detail)
            },
            Error::Unsupported(m) => answer(405, ErrorCode::Unsupported, m),
            Error::Unavailable(m) => answer(503, ErrorCode::Unavailable, m),
            Error::Upstream(m) => answer(502, ErrorCode::Unavailable, m),
            Error::Db(err) if err.is_unavailable() => {
                tracing::error!(error = %err, "database unavailable");
                answer(
                    503,
                    ErrorCode::Unavailable,
                    "the metadata database is unavailable; retry shortly".into(),
                )
            }
            fault @ (Error::Internal(_) | Error::Db(_) | Error::Storage(_)) => {
                tracing::error!(error = %fault, "request failed");
                answer(
                    500,
                    ErrorCode::Internal,
                    "internal error; see the server log".into(),
                )
            }
        }
    }
}

impl From<Problem> for ApiError {
    fn from(p: Problem) -> ApiError {
        let mut a = ApiError::new(p.code, p.message).status(p.status);
        if let Some(s) = p.retry_after {
            a = a
                .header(header::RETRY_AFTER, s.to_string())
                .facts(serde_json::json!({"retry_after_s": s}));
        }
        if let Some(n) = p.resume_from {
            a = a
                .header(header::RANGE, format!("0-{}", n.saturating_sub(1)))
                .facts(serde_json::json!({"resume_from": n}));
        }
        a
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> ApiError {
        Problem::from(e).into()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        // Clients print `code: message` and nothing else, so the explanation goes in `message`;
        // `detail` keeps structured facts (an empty object when there are none).
        let message = if self.detail.is_empty() {
            self.code.message().to_string()
        } else {
            self.detail.clone()
        };
        let detail = self.facts.clone().unwrap_or_else(|| serde_json::json!({}));
        let body = serde_json::json!({
            "errors": [{"code": self.code.as_str(), "message": message, "detail": detail}]
        })
        .to_string();
        let len = body.len();
        let mut resp = if self.head {
            Response::new(axum::body::Body::empty())
        } else {
            Response::new(axum::body::Body::from(body))
        };
        *resp.status_mut() = status;
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Ok(v) = HeaderValue::from_str(&len.to_string()) {
            h.insert(header::CONTENT_LENGTH, v);
        }
        for (name, value) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                h.insert(name, v);
            }
        }
        if self.status == 401 && !h.contains_key(header::WWW_AUTHENTICATE) {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"berth\""),
            );
        }
        resp
    }
}

/// The answer to a request whose handler panicked: logged once, a registry-shaped 500.
pub fn panic_response(err: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let what = err
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| err.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    tracing::error!(panic = what, "request handler panicked");
    ApiError::new(ErrorCode::Internal, "internal error; see the server log").into_response()
}
