//! Fault injection for the sandbox: the `/_sandbox/faults` control endpoints and the middleware
//! that makes the next N requests to a path fail, slow down, or fail *after* being processed
//! (the ambiguous "the platform got it, the client did not hear" case).
//!
//! Once a request is matched by a fault it is handled on its own tokio task, so what happens
//! to it (processed or not) does not depend on whether the client hangs up or times out.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

/// One fault rule, as posted to `POST /_sandbox/faults` and listed by `GET /_sandbox/faults`
/// (where `count` is the number of requests it will still hit).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FaultSpec {
    /// Exact request path, e.g. `/gov_site/v1/disclosures` (query string not included).
    pub path: String,
    /// Only requests with this method (any method when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// How many of the next matching requests this fault hits (default 1).
    #[serde(default = "default_count")]
    pub count: u32,
    /// Status to answer; absent = only delay, then answer normally.
    #[serde(default)]
    pub status: Option<u16>,
    /// Delay before answering (before processing, unless `after_processing`).
    #[serde(default)]
    pub delay_ms: u64,
    /// Seconds, sent as the `Retry-After` header of the fault response.
    #[serde(default)]
    pub retry_after: Option<u64>,
    /// Body of the fault response (default: a JSON error body).
    #[serde(default)]
    pub body: Option<String>,
    /// Process the request first (the doc is stored), then delay and answer the fault status.
    #[serde(default)]
    pub after_processing: bool,
}

fn default_count() -> u32 {
    1
}

impl FaultSpec {
    fn validate(&self) -> Result<(), String> {
        if !self.path.starts_with('/') {
            return Err(format!("path 必须以 / 开头：{:?}", self.path));
        }
        if self.path.starts_with("/_sandbox") {
            return Err("不能对 /_sandbox 控制接口注入故障".into());
        }
        if self.count == 0 {
            return Err("count 必须大于 0".into());
        }
        if let Some(s) = self.status {
            if !(100..=599).contains(&s) {
                return Err(format!("status 不是合法的 HTTP 状态码：{s}"));
            }
        } else if self.delay_ms == 0 {
            return Err("status 和 delay_ms 至少要给一个，否则故障不起作用".into());
        }
        if let Some(m) = &self.method {
            if Method::from_bytes(m.as_bytes()).is_err() {
                return Err(format!("method 不合法：{m:?}"));
            }
        }
        Ok(())
    }

    fn matches(&self, method: &Method, path: &str) -> bool {
        self.path == path
            && self
                .method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method.as_str()))
    }
}

/// The pending fault rules; cheap to clone (clones share the table).
#[derive(Clone, Default)]
pub struct Faults {
    inner: Arc<FaultsInner>,
}

#[derive(Default)]
struct FaultsInner {
    pending: Mutex<Vec<FaultSpec>>,
    /// Number of rules in `pending`, read without the lock on the hot path.
    len: AtomicUsize,
    injected: AtomicU64,
}

impl Faults {
    /// Adds a rule after the existing ones (rules for the same path are used in order).
    pub fn add(&self, spec: FaultSpec) -> Result<(), String> {
        spec.validate()?;
        let mut p = self.inner.pending.lock().unwrap();
        p.push(spec);
        self.inner.len.store(p.len(), Ordering::Release);
        Ok(())
    }

    /// Removes every pending rule; returns how many there were.
    pub fn clear(&self) -> usize {
        let mut p = self.inner.pending.lock().unwrap();
        let n = p.len();
        p.clear();
        self.inner.len.store(0, Ordering::Release);
        n
    }

    /// Pending rules with their remaining counts.
    pub fn pending(&self) -> Vec<FaultSpec> {
        self.inner.pending.lock().unwrap().clone()
    }

    /// How many requests have been hit by a fault so far.
    pub fn injected(&self) -> u64 {
        self.inner.injected.load(Ordering::Relaxed)
    }

    /// Uses up one hit of the first rule matching this request, if any.
    fn take(&self, method: &Method, path: &str) -> Option<FaultSpec> {
        if self.inner.len.load(Ordering::Acquire) == 0 {
            return None;
        }
        let mut p = self.inner.pending.lock().unwrap();
        let i = p.iter().position(|f| f.matches(method, path))?;
        let hit = if p[i].count <= 1 {
            p.remove(i)
        } else {
            p[i].count -= 1;
            p[i].clone()
        };
        self.inner.len.store(p.len(), Ordering::Release);
        self.inner.injected.fetch_add(1, Ordering::Relaxed);
        Some(hit)
    }
}

/// Axum middleware applying the pending faults to every request.
pub async fn middleware(State(faults): State<Faults>, req: Request, next: Next) -> Response {
    let Some(fault) = faults.take(req.method(), req.uri().path()) else {
        return next.run(req).await;
    };
    tracing::debug!(path = %fault.path, status = ?fault.status, "沙箱注入故障");
    // Own task: the outcome must not depend on the client hanging up mid-way.
    match tokio::spawn(apply(fault, req, next)).await {
        Ok(r) => r,
        Err(_) => error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "sandbox_internal",
            "沙箱内部错误：故障处理任务异常结束",
        ),
    }
}

async fn apply(fault: FaultSpec, req: Request, next: Next) -> Response {
    let delay = Duration::from_millis(fault.delay_ms);
    match (fault.status, fault.after_processing) {
        (None, false) => {
            tokio::time::sleep(delay).await;
            next.run(req).await
        }
        (None, true) => {
            let real = next.run(req).await;
            tokio::time::sleep(delay).await;
            real
        }
        (Some(status), false) => {
            drop(req);
            tokio::time::sleep(delay).await;
            fault_response(&fault, status)
        }
        (Some(status), true) => {
            let real = next.run(req).await;
            // Drain the real answer so the processing is complete, then throw it away.
            let _ = axum::body::to_bytes(real.into_body(), usize::MAX).await;
            tokio::time::sleep(delay).await;
            fault_response(&fault, status)
        }
    }
}

fn fault_response(fault: &FaultSpec, status: u16) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let mut resp = match &fault.body {
        Some(b) => {
            let ct = if serde_json::from_str::<serde_json::Value>(b).is_ok() {
                "application/json"
            } else {
                "text/plain; charset=utf-8"
            };
            let mut r = Response::new(Body::from(b.clone()));
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
            r
        }
        None => Json(serde_json::json!({
            "error": "injected_fault",
            "message": format!(
                "沙箱注入的故障：HTTP {}{}",
                status.as_u16(),
                if fault.after_processing { "（请求其实已处理）" } else { "（请求未处理）" }
            ),
        }))
        .into_response(),
    };
    *resp.status_mut() = status;
    if let Some(secs) = fault.retry_after {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}

fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(serde_json::json!({ "error": code, "message": message })),
    )
        .into_response()
}

/// `GET /_sandbox/faults` → `{"faults": [FaultSpec…]}`.
pub(super) async fn list(State(state): State<super::SandboxState>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "faults": state.faults().pending() }))
}

/// `POST /_sandbox/faults` with a [`FaultSpec`] → 201 `{"added": FaultSpec, "pending": N}`.
pub(super) async fn add(
    State(state): State<super::SandboxState>,
    body: axum::body::Bytes,
) -> Response {
    let spec: FaultSpec = match serde_json::from_slice(&body) {
        Ok(s) => s,
        Err(e) => {
            return error_response(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_fault",
                &format!("故障定义不是合法的 JSON 或字段有误：{e}"),
            )
        }
    };
    if let Err(msg) = state.faults().add(spec.clone()) {
        return error_response(StatusCode::UNPROCESSABLE_ENTITY, "invalid_fault", &msg);
    }
    let pending = state.faults().pending().len();
    (
        StatusCode::CREATED,
        Json(serde_json::json!({ "added": spec, "pending": pending })),
    )
        .into_response()
}

/// `DELETE /_sandbox/faults` → `{"cleared": N}`.
pub(super) async fn clear(State(state): State<super::SandboxState>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "cleared": state.faults().clear() }))
}
