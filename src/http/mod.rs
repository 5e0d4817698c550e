//! The HTTP API under `/api/v1` (bearer token), thin handlers over `delivery::Ledger` and
//! the store. Owns: the router, `AppState`, authentication, `ApiError` (a short JSON answer
//! for the client, the cause logged once). No SQL and no business rules here.
//!
//! Departments (tenants): the bearer token says which department a request is for
//! (`Tenants`); every `/api/v1` handler works on that department's ledger only, and the
//! store answers "not found" for another department's ids, so another department's delivery
//! is a 404 like one that does not exist. Each department's WeChat account answers on
//! `/wechat/{department}` (and `/wechat/{department}/{channel}/callback`), each
//! department's LED screens on `/led/{department}/{screen}/feed`; the unprefixed paths are
//! the `default` department's, as before departments existed.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Extension, Path, Query, Request, State};
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
use crate::store::{DeliveryFilter, StoreError};
use crate::wechat_callback::{CallbackError, Signed};

#[derive(Clone)]
///
/// Cloned for every request (axum's `State`): every field is an `Arc` or holds them.
pub struct AppState {
    /// The `default` department's ledger (the console, `/metrics`).
    pub ledger: Arc<Ledger>,
    /// The `default` department's LED screens, whose feed `GET /led/{screen}/feed` serves.
    pub screens: Arc<crate::led::Screens>,
    /// The `default` department's WeChat callbacks: `/wechat/{channel}/callback` and
    /// `[wechat_callback].path`.
    pub wechat: crate::wechat_callback::Callbacks,
    /// Every department, and which API token is whose.
    pub tenants: Arc<Tenants>,
}

/// One department as the HTTP side serves it.
pub struct Tenant {
    pub ledger: Arc<Ledger>,
    pub screens: crate::led::Screens,
    pub wechat: crate::wechat_callback::Callbacks,
}

impl Tenant {
    pub fn code(&self) -> &str {
        self.ledger.department()
    }
}

/// The departments by code and by API token.
pub struct Tenants {
    by_code: std::collections::BTreeMap<String, Arc<Tenant>>,
    by_token: Vec<(Secret, Arc<Tenant>)>,
}

impl Tenants {
    /// `tenants` must include `default`; `tokens` pairs each token with its department's
    /// settings (`config::department_tokens`, which refuses two departments with one token).
    pub fn new(
        tenants: Vec<Arc<Tenant>>,
        tokens: Vec<(Secret, Arc<crate::config::Settings>)>,
    ) -> Tenants {
        let by_code: std::collections::BTreeMap<String, Arc<Tenant>> = tenants
            .into_iter()
            .map(|t| (t.code().to_string(), t))
            .collect();
        let by_token = tokens
            .into_iter()
            .filter_map(|(token, s)| {
                by_code
                    .get(&s.department.code)
                    .map(|t| (token, Arc::clone(t)))
            })
            .collect();
        Tenants { by_code, by_token }
    }

    pub fn get(&self, code: &str) -> Option<&Arc<Tenant>> {
        self.by_code.get(code)
    }

    pub fn default_tenant(&self) -> Arc<Tenant> {
        self.by_code
            .get(crate::store::DEFAULT_DEPARTMENT)
            .cloned()
            .expect("the default department is always built")
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<Tenant>> {
        self.by_code.values()
    }

    /// The department whose token this is. Every token is compared in full (constant
    /// time per token), so the answer's timing does not tell which department came close.
    fn by_token(&self, given: &str) -> Option<Arc<Tenant>> {
        let mut found = None;
        for (token, tenant) in &self.by_token {
            if constant_time_eq(given.as_bytes(), token.expose().as_bytes()) {
                found = Some(Arc::clone(tenant));
            }
        }
        found
    }
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
    // The operator console (issue 8): its own module, merged here.
    let console = if state.ledger.settings.console.enabled {
        crate::console::router()
    } else {
        Router::new()
    };
    Router::new()
        .merge(console)
        .route("/healthz", get(|| async { "ok" }))
        // Read by the hall's player software: no bearer token, like a public page.
        .route("/led/{screen}/feed", get(led_feed))
        .route("/led/{department}/{screen}/feed", get(department_led_feed))
        .merge(wechat_routes(&state))
        .nest("/api/v1", api)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::metrics::track_wechat_callbacks,
        ))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// The WeChat callback on its configured path (the account of `[wechat_callback].channel`)
/// and per channel on `/wechat/{channel}/callback`, with WeChat's own body limit; each
/// department's on `/wechat/{department}` (its `[wechat_callback].channel`) and
/// `/wechat/{department}/{channel}/callback`.
fn wechat_routes(state: &AppState) -> Router<AppState> {
    let mut r = Router::new()
        .route(
            "/wechat/{channel}/callback",
            get(wechat_echo_channel).post(wechat_push_channel),
        )
        .route(
            "/wechat/{department}",
            get(wechat_echo_department).post(wechat_push_department),
        )
        .route(
            "/wechat/{department}/{channel}/callback",
            get(wechat_echo_department_channel).post(wechat_push_department_channel),
        );
    let path = state.wechat.path.clone();
    if !path.is_empty() && &*path != "/wechat/{channel}/callback" {
        r = r.route(&path, get(wechat_echo).post(wechat_push));
    }
    r.layer(DefaultBodyLimit::max(state.wechat.max_body_bytes.max(1)))
}

async fn wechat_echo(State(state): State<AppState>, Query(q): Query<Signed>) -> Response {
    wechat_echo_in(&state.wechat, None, &q)
}

async fn wechat_echo_channel(
    State(state): State<AppState>,
    Path(channel): Path<String>,
    Query(q): Query<Signed>,
) -> Response {
    wechat_echo_in(&state.wechat, Some(&channel), &q)
}

async fn wechat_echo_department(
    State(state): State<AppState>,
    Path(department): Path<String>,
    Query(q): Query<Signed>,
) -> Response {
    match state.tenants.get(&department) {
        Some(t) => wechat_echo_in(&t.wechat, None, &q),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn wechat_echo_department_channel(
    State(state): State<AppState>,
    Path((department, channel)): Path<(String, String)>,
    Query(q): Query<Signed>,
) -> Response {
    match state.tenants.get(&department) {
        Some(t) => wechat_echo_in(&t.wechat, Some(&channel), &q),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// `GET`: the URL check, answered with the raw `echostr`.
fn wechat_echo_in(
    callbacks: &crate::wechat_callback::Callbacks,
    channel: Option<&str>,
    q: &Signed,
) -> Response {
    match callbacks.get(channel).map(|c| c.echo(q)) {
        Some(Ok(echo)) => echo.into_response(),
        Some(Err(e)) => wechat_error(channel, e),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn wechat_push(
    State(state): State<AppState>,
    Query(q): Query<Signed>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    wechat_push_in(&state.wechat, None, &q, body).await
}

async fn wechat_push_channel(
    State(state): State<AppState>,
    Path(channel): Path<String>,
    Query(q): Query<Signed>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    wechat_push_in(&state.wechat, Some(&channel), &q, body).await
}

async fn wechat_push_department(
    State(state): State<AppState>,
    Path(department): Path<String>,
    Query(q): Query<Signed>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match state.tenants.get(&department) {
        Some(t) => wechat_push_in(&t.wechat, None, &q, body).await,
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn wechat_push_department_channel(
    State(state): State<AppState>,
    Path((department, channel)): Path<(String, String)>,
    Query(q): Query<Signed>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match state.tenants.get(&department) {
        Some(t) => wechat_push_in(&t.wechat, Some(&channel), &q, body).await,
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// `POST`: a push, answered with the reply (XML, encrypted in 兼容/安全 mode) or `success`.
async fn wechat_push_in(
    callbacks: &crate::wechat_callback::Callbacks,
    channel: Option<&str>,
    q: &Signed,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Some(cb) = callbacks.get(channel) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let body = match body {
        Ok(b) => b,
        Err(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return wechat_error(channel, CallbackError::TooLarge(callbacks.max_body_bytes))
        }
        Err(r) => return wechat_error(channel, CallbackError::BadRequest(r.to_string())),
    };
    match cb.push(q, &body).await {
        Ok(answer) if answer == "success" => answer.into_response(),
        Ok(answer) => (
            [(axum::http::header::CONTENT_TYPE, "application/xml")],
            answer,
        )
            .into_response(),
        Err(e) => wechat_error(channel, e),
    }
}

/// A refused callback request: the status, a short body, the reason logged once (never
/// the decrypted user text).
fn wechat_error(channel: Option<&str>, e: CallbackError) -> Response {
    let channel = channel.unwrap_or("(default)");
    let status = match &e {
        CallbackError::Forbidden(_) => StatusCode::FORBIDDEN,
        CallbackError::BadRequest(_) => StatusCode::BAD_REQUEST,
        CallbackError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        CallbackError::NotFound => StatusCode::NOT_FOUND,
        CallbackError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    if status.is_server_error() {
        tracing::error!(channel, error.message = %e, error.cause_chain = ?e, "WeChat callback failed");
    } else {
        tracing::warn!(channel, reason = %e, "WeChat callback request refused");
    }
    let text = match status {
        StatusCode::FORBIDDEN => "签名错误",
        StatusCode::BAD_REQUEST => "请求无效",
        StatusCode::PAYLOAD_TOO_LARGE => "请求体过大",
        StatusCode::NOT_FOUND => "未配置该公众号回调",
        _ => "服务器内部错误",
    };
    (status, text).into_response()
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

/// The bearer token says which department the request is for: its `Tenant` goes into the
/// request's extensions for the handlers. An unknown token is 401.
async fn require_token(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let given = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    match state.tenants.by_token(given) {
        Some(tenant) if !given.is_empty() => {
            request.extensions_mut().insert(tenant);
            Ok(next.run(request).await)
        }
        _ => Err(ApiError::Unauthorized),
    }
}

pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
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

fn body(ledger: &Ledger, body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge(ledger.settings.server.max_body_bytes)
        } else {
            ApiError::BadRequest(format!("无法读取请求体：{r}"))
        }
    })
}

/// The department of the request's token (set by `require_token`).
type Dept = Extension<Arc<Tenant>>;

async fn submit(
    Extension(tenant): Dept,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let ledger = &tenant.ledger;
    let raw = body(ledger, raw)?;
    let by = format!("api:{}", operator(&headers));
    match ledger.submit(&raw, &by).await {
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
    Extension(tenant): Dept,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let ledger = &tenant.ledger;
    let d = ledger
        .store
        .get_disclosure(ledger.department(), &id, None)
        .await?;
    let deliveries = ledger
        .store
        .list_deliveries(
            ledger.department(),
            &DeliveryFilter {
                disclosure_id: Some(id),
                ..DeliveryFilter::default()
            },
        )
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
    Extension(tenant): Dept,
    Path(id): Path<String>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let ledger = &tenant.ledger;
    let raw = body(ledger, raw)?;
    let req: WithdrawBody = if raw.iter().all(u8::is_ascii_whitespace) {
        WithdrawBody::default()
    } else {
        serde_json::from_slice(&raw)
            .map_err(|e| ApiError::BadRequest(format!("请求体应为 {{\"reason\": \"…\"}}：{e}")))?
    };
    let r = ledger
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
    Extension(tenant): Dept,
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
    let ledger = &tenant.ledger;
    let rows = ledger
        .store
        .list_deliveries(
            ledger.department(),
            &DeliveryFilter {
                statuses,
                channel: q.channel,
                disclosure_id: q.disclosure_id,
                limit: q.limit,
            },
        )
        .await?;
    Ok(Json(rows).into_response())
}

async fn show_delivery(Extension(tenant): Dept, Path(id): Path<i64>) -> Result<Response, ApiError> {
    let ledger = &tenant.ledger;
    let d = ledger.store.get_delivery(ledger.department(), id).await?;
    let attempts = ledger.store.list_attempts(ledger.department(), id).await?;
    let mut v = serde_json::to_value(&d).map_err(|e| ApiError::Internal(e.into()))?;
    v["attempts_log"] =
        serde_json::to_value(&attempts).map_err(|e| ApiError::Internal(e.into()))?;
    v["content"] = d
        .payload
        .as_ref()
        .map(|p| json!(String::from_utf8_lossy(p)))
        .unwrap_or(serde_json::Value::Null);
    v["mass_result"] = json!(ledger.mass_result(&d).await?);
    Ok(Json(v).into_response())
}

async fn retry_one(
    Extension(tenant): Dept,
    Path(id): Path<i64>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let ledger = &tenant.ledger;
    // A delivery this department does not have (another department's included) is 404,
    // as for GET: the answer does not tell whether the id exists elsewhere.
    ledger.store.get_delivery(ledger.department(), id).await?;
    let results = ledger.retry_now(&[id], &operator(&headers)).await?;
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
    Extension(tenant): Dept,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let ledger = &tenant.ledger;
    let raw = body(ledger, raw)?;
    let req: RetryBody = serde_json::from_slice(&raw).map_err(|e| {
        ApiError::BadRequest(format!(
            "请求体应为 {{\"ids\": [1, 2]}} 或 {{\"failed\": true, \"channel\": \"gov_site\"}}：{e}"
        ))
    })?;
    let by = operator(&headers);
    let results = match (req.failed, req.ids.is_empty()) {
        (true, true) => ledger.retry_failed(req.channel.as_deref(), &by).await?,
        (false, false) => ledger.retry_now(&req.ids, &by).await?,
        _ => return Err(ApiError::BadRequest("ids 与 failed 须二选一".to_string())),
    };
    Ok(Json(json!({ "results": results })).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportQuery {
    year: i32,
    /// 2017 (附表) or 2021 (国办公开办函〔2021〕30号); default by year.
    layout: Option<u16>,
}

async fn year_report(
    Extension(tenant): Dept,
    Query(q): Query<ReportQuery>,
) -> Result<Response, ApiError> {
    let layout = match q.layout {
        None => None,
        Some(2017) => Some(crate::annual::Layout::Y2017),
        Some(2021) => Some(crate::annual::Layout::Y2021),
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "layout = {other}：可选 2017 或 2021"
            )))
        }
    };
    let ledger = &tenant.ledger;
    let calendar = ledger.settings.calendar();
    let r = crate::annual::generate(
        &ledger.settings,
        ledger.store.as_ref(),
        &calendar,
        q.year,
        layout,
        None,
    )
    .await
    // The clerk's applications file breaking its table rule says which cell: show it.
    .map_err(|e| ApiError::BadRequest(format!("{e:#}")))?;
    Ok(Json(r).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedQuery {
    format: Option<String>,
}

/// The LED screens of the token's department as the daemon sees them: items up now and
/// the controller's last answer.
async fn list_screens(Extension(tenant): Dept) -> Result<Response, ApiError> {
    let now = chrono::Utc::now();
    let mut out = Vec::new();
    for (name, screen) in &tenant.screens {
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

/// A department's screen feed (`/led/{department}/{screen}/feed`), as `led_feed`.
async fn department_led_feed(
    State(state): State<AppState>,
    Path((department, screen)): Path<(String, String)>,
    Query(q): Query<FeedQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let screens = state
        .tenants
        .get(&department)
        .map(|t| t.screens.clone())
        .unwrap_or_default();
    screen_feed(&screens, &screen, q, &headers).await
}

/// The screen's current feed: text in its encoding (one item per line, CRLF) or, with
/// `?format=json`, UTF-8 JSON; an ETag, and 304 when `If-None-Match` matches.
async fn led_feed(
    State(state): State<AppState>,
    Path(screen): Path<String>,
    Query(q): Query<FeedQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    screen_feed(&state.screens, &screen, q, &headers).await
}

async fn screen_feed(
    screens: &crate::led::Screens,
    screen: &str,
    q: FeedQuery,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    use axum::http::header;
    let s = screens
        .get(screen)
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

/// The admin listener's router: only `GET /metrics` (Prometheus text format).
pub fn metrics_router(ledger: Arc<Ledger>) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            let ledger = ledger.clone();
            async move {
                match crate::metrics::global()
                    .render(ledger.store.as_ref(), chrono::Utc::now())
                    .await
                {
                    Ok(text) => (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8",
                        )],
                        text,
                    )
                        .into_response(),
                    Err(e) => ApiError::from(e).into_response(),
                }
            }
        }),
    )
}
