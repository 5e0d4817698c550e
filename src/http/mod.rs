//! The HTTP API under `/api/v1` (bearer token), thin handlers over `delivery::Ledger` and
//! the store. Owns: the router, `AppState`, authentication, `ApiError` (a short JSON answer
//! for the client, the cause logged once). No SQL and no business rules here.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::config::Secret;
use crate::delivery::{Ledger, SubmitError};
use crate::disclosure::ValidationErrors;
use crate::domain::DeliveryStatus;
use crate::report;
use crate::store::{DeliveryFilter, StoreError};

#[derive(Clone)]
pub struct AppState {
    pub ledger: Arc<Ledger>,
    pub token: Option<Secret>,
    /// LED screens whose feed `GET /led/{screen}/feed` serves.
    pub screens: crate::led::Screens,
}

pub fn router(state: AppState) -> Router {
    let max_body = state.ledger.settings.server.max_body_bytes;
    let api = Router::new()
        .route("/disclosures", post(submit))
        .route("/disclosures/{id}", get(get_disclosure))
        .route("/disclosures/{id}/withdraw", post(withdraw))
        .route("/deliveries", get(list_deliveries))
        .route("/deliveries/retry", post(retry_many))
        .route("/deliveries/{id}", get(show_delivery))
        .route("/deliveries/{id}/retry", post(retry_one))
        .route("/report", get(year_report))
        .route("/screens", get(list_screens))
        .layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        // Read by the hall's player software: no bearer token, like a public page.
        .route("/led/{screen}/feed", get(led_feed))
        .route(
            "/wechat/{channel}/callback",
            get(wechat_echo).post(wechat_push),
        )
        .nest("/api/v1", api)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// The query WeChat signs every callback request with.
#[derive(Debug, Deserialize)]
struct WechatSigned {
    signature: String,
    timestamp: String,
    nonce: String,
    echostr: Option<String>,
}

/// The channel's appid and callback token, if the signature of `q` is right.
fn wechat_verified(state: &AppState, channel: &str, q: &WechatSigned) -> Option<String> {
    let Some(crate::config::ChannelSpec::Wechat(cfg)) =
        state.ledger.settings.channels.channels.get(channel)
    else {
        return None;
    };
    let token = cfg.callback_token.read().ok()?;
    crate::wechat_callback::verify(token.expose(), &q.timestamp, &q.nonce, &q.signature)
        .then(|| cfg.appid.clone())
}

/// `GET /wechat/{channel}/callback`: the URL check, answered with the raw `echostr`.
async fn wechat_echo(
    State(state): State<AppState>,
    Path(channel): Path<String>,
    Query(q): Query<WechatSigned>,
) -> Response {
    match wechat_verified(&state, &channel, &q) {
        Some(_) => q.echostr.unwrap_or_default().into_response(),
        None => (StatusCode::FORBIDDEN, "签名错误").into_response(),
    }
}

/// `POST /wechat/{channel}/callback`: a push. PUBLISHJOBFINISH is recorded once and wakes
/// the delivery that waits for it; anything else is acknowledged.
async fn wechat_push(
    State(state): State<AppState>,
    Path(channel): Path<String>,
    Query(q): Query<WechatSigned>,
    body: Bytes,
) -> Response {
    let Some(appid) = wechat_verified(&state, &channel, &q) else {
        tracing::warn!(channel, "WeChat push with a wrong signature refused");
        return (StatusCode::FORBIDDEN, "签名错误").into_response();
    };
    let xml = String::from_utf8_lossy(&body);
    if let Some(event) = crate::wechat_callback::parse_publish_event(&appid, &xml) {
        match state
            .ledger
            .store
            .record_wechat_publish_event(&event, chrono::Utc::now())
            .await
        {
            Ok(new) => {
                tracing::info!(channel, publish_id = %event.publish_id, status = event.publish_status, new, "PUBLISHJOBFINISH received");
                if new {
                    state.ledger.wake.notify_one();
                }
            }
            Err(e) => {
                // No answer: WeChat sends it again, and the poller is the fallback.
                tracing::error!(channel, error.message = %e, error.cause_chain = ?e, "recording PUBLISHJOBFINISH failed");
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            }
        }
    }
    "success".into_response()
}

/// Errors as the client sees them: a status, a code and a message in Chinese.
#[derive(Debug)]
pub enum ApiError {
    Unauthorized,
    NotFound(String),
    Conflict(String),
    Invalid(ValidationErrors),
    TooLarge(usize),
    BadRequest(String),
    Internal(anyhow::Error),
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(m) => ApiError::NotFound(m),
            StoreError::Conflict(m) => ApiError::Conflict(m),
            StoreError::Other(e) => ApiError::Internal(e),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = match self {
            ApiError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                json!({"error": "unauthorized", "message": "缺少或错误的 Bearer 令牌"}),
            ),
            ApiError::NotFound(m) => (
                StatusCode::NOT_FOUND,
                json!({"error": "not_found", "message": m}),
            ),
            ApiError::Conflict(m) => (
                StatusCode::CONFLICT,
                json!({"error": "conflict", "message": m}),
            ),
            ApiError::Invalid(errors) => (StatusCode::UNPROCESSABLE_ENTITY, errors.to_json()),
            ApiError::TooLarge(limit) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                json!({"error": "too_large", "message": format!("请求体超过上限 {limit} 字节（server.max_body_bytes）")}),
            ),
            ApiError::BadRequest(m) => (
                StatusCode::BAD_REQUEST,
                json!({"error": "bad_request", "message": m}),
            ),
            ApiError::Internal(e) => {
                tracing::error!(error.message = %e, error.cause_chain = ?e, "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({"error": "internal", "message": "服务器内部错误，详见日志"}),
                )
            }
        };
        (status, Json(body)).into_response()
    }
}

async fn require_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let Some(token) = &state.token else {
        return Ok(next.run(request).await);
    };
    let given = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if constant_time_eq(given.as_bytes(), token.expose().as_bytes()) {
        Ok(next.run(request).await)
    } else {
        Err(ApiError::Unauthorized)
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Who is acting: the `X-Operator` header (UTF-8, names are Chinese), else "api".
fn operator(headers: &HeaderMap) -> String {
    headers
        .get("x-operator")
        .and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
        .filter(|v| !v.trim().is_empty())
        .map(|v| v.trim().chars().take(64).collect())
        .unwrap_or_else(|| "api".to_string())
}

fn body(state: &AppState, body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge(state.ledger.settings.server.max_body_bytes)
        } else {
            ApiError::BadRequest(format!("无法读取请求体：{r}"))
        }
    })
}

async fn submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let raw = body(&state, raw)?;
    let by = format!("api:{}", operator(&headers));
    match state.ledger.submit(&raw, &by).await {
        Ok(r) => {
            let status = if r.created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok((status, Json(r)).into_response())
        }
        Err(SubmitError::Invalid(e)) => Err(ApiError::Invalid(e)),
        Err(SubmitError::Conflict(m)) => Err(ApiError::Conflict(m)),
        Err(SubmitError::Store(e)) => Err(e.into()),
    }
}

async fn get_disclosure(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let d = state.ledger.store.get_disclosure(&id, None).await?;
    let deliveries = state
        .ledger
        .store
        .list_deliveries(&DeliveryFilter {
            disclosure_id: Some(id),
            ..DeliveryFilter::default()
        })
        .await?;
    let disclosure: serde_json::Value =
        serde_json::from_str(&d.json).map_err(|e| ApiError::Internal(e.into()))?;
    Ok(Json(json!({
        "disclosure": disclosure,
        "received_at": d.received_at,
        "withdrawn_at": d.withdrawn_at,
        "deliveries": deliveries,
    }))
    .into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct WithdrawBody {
    reason: Option<String>,
}

async fn withdraw(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let raw = body(&state, raw)?;
    let req: WithdrawBody = if raw.iter().all(u8::is_ascii_whitespace) {
        WithdrawBody::default()
    } else {
        serde_json::from_slice(&raw)
            .map_err(|e| ApiError::BadRequest(format!("请求体应为 {{\"reason\": \"…\"}}：{e}")))?
    };
    let r = state
        .ledger
        .withdraw(&id, &operator(&headers), req.reason.as_deref())
        .await?;
    Ok(Json(r).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    status: Option<String>,
    channel: Option<String>,
    disclosure_id: Option<String>,
    limit: Option<i64>,
}

async fn list_deliveries(
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let statuses = match q.status.as_deref() {
        None | Some("") => Vec::new(),
        Some(s) => s
            .split(',')
            .map(|x| x.trim().parse::<DeliveryStatus>())
            .collect::<Result<_, _>>()
            .map_err(ApiError::BadRequest)?,
    };
    let rows = state
        .ledger
        .store
        .list_deliveries(&DeliveryFilter {
            statuses,
            channel: q.channel,
            disclosure_id: q.disclosure_id,
            limit: q.limit,
        })
        .await?;
    Ok(Json(rows).into_response())
}

async fn show_delivery(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let d = state.ledger.store.get_delivery(id).await?;
    let attempts = state.ledger.store.list_attempts(id).await?;
    let mut v = serde_json::to_value(&d).map_err(|e| ApiError::Internal(e.into()))?;
    v["attempts_log"] =
        serde_json::to_value(&attempts).map_err(|e| ApiError::Internal(e.into()))?;
    v["content"] = d
        .payload
        .as_ref()
        .map(|p| json!(String::from_utf8_lossy(p)))
        .unwrap_or(serde_json::Value::Null);
    Ok(Json(v).into_response())
}

async fn retry_one(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let results = state.ledger.retry_now(&[id], &operator(&headers)).await?;
    Ok(Json(json!({ "results": results })).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RetryBody {
    #[serde(default)]
    ids: Vec<i64>,
    #[serde(default)]
    failed: bool,
    channel: Option<String>,
}

async fn retry_many(
    State(state): State<AppState>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let raw = body(&state, raw)?;
    let req: RetryBody = serde_json::from_slice(&raw).map_err(|e| {
        ApiError::BadRequest(format!(
            "请求体应为 {{\"ids\": [1, 2]}} 或 {{\"failed\": true, \"channel\": \"gov_site\"}}：{e}"
        ))
    })?;
    let by = operator(&headers);
    let results = match (req.failed, req.ids.is_empty()) {
        (true, true) => {
            state
                .ledger
                .retry_failed(req.channel.as_deref(), &by)
                .await?
        }
        (false, false) => state.ledger.retry_now(&req.ids, &by).await?,
        _ => return Err(ApiError::BadRequest("ids 与 failed 须二选一".to_string())),
    };
    Ok(Json(json!({ "results": results })).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportQuery {
    year: i32,
}

async fn year_report(
    State(state): State<AppState>,
    Query(q): Query<ReportQuery>,
) -> Result<Response, ApiError> {
    let groups = state.ledger.store.published_groups().await?;
    let calendar = state.ledger.settings.calendar();
    Ok(Json(report::build(
        &state.ledger.settings,
        &groups,
        &calendar,
        q.year,
    ))
    .into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedQuery {
    format: Option<String>,
}

/// The screen's current feed: text in its encoding (one item per line, CRLF) or, with
/// `?format=json`, UTF-8 JSON; an ETag, and 304 when `If-None-Match` matches.
/// The LED screens as the daemon sees them: items up now and the controller's last answer.
async fn list_screens(State(state): State<AppState>) -> Result<Response, ApiError> {
    let now = chrono::Utc::now();
    let mut out = Vec::new();
    for (name, screen) in &state.screens {
        let feed = screen.current(now).await;
        out.push(json!({
            "name": name,
            "items": feed.items().len(),
            "has_controller": screen.config().bx.is_some(),
            "controller": screen.controller_status(),
        }));
    }
    Ok(Json(out).into_response())
}

async fn led_feed(
    State(state): State<AppState>,
    Path(screen): Path<String>,
    Query(q): Query<FeedQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    use axum::http::header;
    let s = state
        .screens
        .get(&screen)
        .filter(|s| s.config().http_pull.enabled)
        .ok_or_else(|| ApiError::NotFound(format!("没有启用 HTTP 拉取的 LED 屏 {screen}")))?;
    let feed = s.current(chrono::Utc::now()).await;
    let json = match q.format.as_deref() {
        None | Some("text") => false,
        Some("json") => true,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "format = {other:?}：可选 text 或 json"
            )))
        }
    };
    let etag = format!(
        "{}-{}\"",
        feed.etag().trim_end_matches('"'),
        if json { "j" } else { "t" }
    );
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if fresh {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response());
    }
    let (ctype, body) = if json {
        (
            "application/json; charset=utf-8".to_string(),
            feed.to_json(s.name(), s.encoding()),
        )
    } else {
        (
            format!("text/plain; charset={}", s.encoding().charset()),
            feed.to_text(s.encoding()),
        )
    };
    Ok((
        [
            (header::CONTENT_TYPE, ctype),
            (header::ETAG, etag),
            (header::CACHE_CONTROL, "no-cache".to_string()),
        ],
        body,
    )
        .into_response())
}
