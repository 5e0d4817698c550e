//! Emulator of the government website content platform (政府网站集约化平台) speaking the generic
//! JSON push contract of domain.md §4.4, mounted at `/gov_site`:
//!
//! * `POST /gov_site/v1/disclosures` — publish (`"publish"` or `"upsert"`) or withdraw a disclosure;
//! * `GET  /gov_site/v1/disclosures/{disclosure_id}` — the stored doc (signed like the POST, empty body);
//! * `GET  /gov_site/docs/{platform_doc_id}.html` — the public page the returned `url` points to.
//!
//! It owns request verification (app key, timestamp window, nonce cache, HMAC-SHA256 signature),
//! idempotency (replay / conflict), the document store with revision history, and the counters
//! shown by `/_sandbox/state`. [`sign`] is the one implementation of the signature algorithm,
//! shared with gongkai's website channel client.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{OriginalUri, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, Datelike, Utc};
use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::GovSiteApp;

type HmacSha256 = Hmac<Sha256>;

/// Accepted clock skew between client and platform, in seconds.
pub const TIMESTAMP_WINDOW_SECS: i64 = 300;
/// How long a nonce stays "used" for an app.
pub const NONCE_TTL: Duration = Duration::from_secs(600);

pub const HEADER_APP_KEY: &str = "x-app-key";
pub const HEADER_TIMESTAMP: &str = "x-timestamp";
pub const HEADER_NONCE: &str = "x-nonce";
pub const HEADER_SIGNATURE: &str = "x-signature";
pub const HEADER_IDEMPOTENCY_KEY: &str = "idempotency-key";

// ---------------------------------------------------------------------------------------------
// Signature

/// The §4.4 request signature:
/// `hex(HMAC-SHA256(secret, METHOD + "\n" + PATH + "\n" + TIMESTAMP + "\n" + NONCE + "\n" + hex(SHA256(body))))`.
///
/// `method` is upper-case (`"POST"`), `path` is the request path exactly as sent, without the
/// query string (e.g. `"/gov_site/v1/disclosures"`), `timestamp` is unix seconds (sent in
/// `X-Timestamp` as a plain decimal), `nonce` is the `X-Nonce` value, `body` the exact bytes sent.
/// Lower-case hex, 64 chars.
pub fn sign(
    secret: &str,
    method: &str,
    path: &str,
    timestamp: i64,
    nonce: &str,
    body: &[u8],
) -> String {
    let mac = mac_for(
        secret.as_bytes(),
        method,
        path,
        &timestamp.to_string(),
        nonce,
        &Sha256::digest(body).into(),
    );
    hex::encode(mac.finalize().into_bytes())
}

fn mac_for(
    secret: &[u8],
    method: &str,
    path: &str,
    timestamp: &str,
    nonce: &str,
    body_sha256: &[u8; 32],
) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of any length");
    let mut body_hex = [0u8; 64];
    hex::encode_to_slice(body_sha256, &mut body_hex).expect("64 bytes hold 32 bytes as hex");
    for part in [
        method.as_bytes(),
        b"\n",
        path.as_bytes(),
        b"\n",
        timestamp.as_bytes(),
        b"\n",
        nonce.as_bytes(),
        b"\n",
        &body_hex,
    ] {
        mac.update(part);
    }
    mac
}

// ---------------------------------------------------------------------------------------------
// State

/// The emulated platform; cheap to clone (clones share everything).
#[derive(Clone)]
pub struct GovSiteState {
    inner: Arc<Inner>,
}

struct Inner {
    apps: HashMap<String, App>,
    addr: Arc<OnceLock<SocketAddr>>,
    store: Mutex<Store>,
    requests: AtomicU64,
    accepted: AtomicU64,
    replays: AtomicU64,
    duplicates: AtomicU64,
    rejected: AtomicU64,
}

struct App {
    secret: Vec<u8>,
    nonces: Mutex<NonceCache>,
}

#[derive(Default)]
struct NonceCache {
    seen: HashSet<Arc<str>>,
    order: VecDeque<(Instant, Arc<str>)>,
}

impl NonceCache {
    /// Forgets expired nonces, then records `nonce`; false if it was already used.
    fn check_and_insert(&mut self, nonce: &str, now: Instant) -> bool {
        while let Some((t, _)) = self.order.front() {
            if now.duration_since(*t) < NONCE_TTL {
                break;
            }
            if let Some((_, n)) = self.order.pop_front() {
                self.seen.remove(&n);
            }
        }
        if self.seen.contains(nonce) {
            return false;
        }
        let n: Arc<str> = Arc::from(nonce);
        self.seen.insert(n.clone());
        self.order.push_back((now, n));
        true
    }
}

#[derive(Default)]
struct Store {
    /// By disclosure_id (sorted, as `/_sandbox/state` lists them).
    docs: BTreeMap<String, Doc>,
    /// platform_doc_id → disclosure_id.
    by_doc_id: HashMap<String, String>,
    /// app_key → Idempotency-Key → first answer.
    idempotency: HashMap<String, HashMap<String, IdemEntry>>,
    doc_counter: u64,
    index_counter: u64,
}

struct IdemEntry {
    body_sha256: [u8; 32],
    status: StatusCode,
    response: Bytes,
}

/// A document as stored by the platform (the element of `docs` in `/_sandbox/state`).
#[derive(Debug, Clone, Serialize)]
struct Doc {
    disclosure_id: String,
    platform_doc_id: String,
    revision: u64,
    title: String,
    status: DocStatus,
    url: String,
    index_no: String,
    revisions: Vec<RevisionEntry>,
    /// The last accepted JSON body (publish or withdraw).
    body: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum DocStatus {
    Published,
    Withdrawn,
}

impl DocStatus {
    fn as_str(self) -> &'static str {
        match self {
            DocStatus::Published => "published",
            DocStatus::Withdrawn => "withdrawn",
        }
    }
}

/// One accepted change of a doc.
#[derive(Debug, Clone, Serialize)]
struct RevisionEntry {
    revision: u64,
    /// `"publish"` (also for `"upsert"`) or `"withdraw"`.
    action: &'static str,
    title: String,
    idempotency_key: String,
    at: DateTime<Utc>,
}

/// The counters of `/_sandbox/state`. Every `POST /v1/disclosures` that reaches the platform
/// (i.e. not swallowed by a fault before processing) is counted in `requests` and in exactly one
/// of `accepted`, `replays`, `rejected`; `duplicates` is the part of `rejected` that were
/// re-submissions of an already applied (or older) revision under a new Idempotency-Key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    pub requests: u64,
    pub accepted: u64,
    pub replays: u64,
    pub duplicates: u64,
    pub rejected: u64,
}

impl GovSiteState {
    /// `addr` is filled in once the server knows where it listens (used for doc URLs when a
    /// request carries no Host header).
    pub fn new(apps: &[GovSiteApp], addr: Arc<OnceLock<SocketAddr>>) -> Self {
        let apps = apps
            .iter()
            .map(|a| {
                (
                    a.app_key.clone(),
                    App {
                        secret: a.secret.as_bytes().to_vec(),
                        nonces: Mutex::new(NonceCache::default()),
                    },
                )
            })
            .collect();
        GovSiteState {
            inner: Arc::new(Inner {
                apps,
                addr,
                store: Mutex::new(Store::default()),
                requests: AtomicU64::new(0),
                accepted: AtomicU64::new(0),
                replays: AtomicU64::new(0),
                duplicates: AtomicU64::new(0),
                rejected: AtomicU64::new(0),
            }),
        }
    }

    pub fn counters(&self) -> Counters {
        let i = &self.inner;
        Counters {
            requests: i.requests.load(Ordering::Relaxed),
            accepted: i.accepted.load(Ordering::Relaxed),
            replays: i.replays.load(Ordering::Relaxed),
            duplicates: i.duplicates.load(Ordering::Relaxed),
            rejected: i.rejected.load(Ordering::Relaxed),
        }
    }

    /// `{"docs": [...], "requests", "accepted", "replays", "duplicates", "rejected"}`.
    pub fn snapshot(&self) -> Value {
        let docs: Vec<Value> = {
            let store = self.inner.store.lock().unwrap();
            store
                .docs
                .values()
                .map(|d| serde_json::to_value(d).expect("a doc serializes"))
                .collect()
        };
        let c = self.counters();
        serde_json::json!({
            "docs": docs,
            "requests": c.requests,
            "accepted": c.accepted,
            "replays": c.replays,
            "duplicates": c.duplicates,
            "rejected": c.rejected,
        })
    }

    /// The stored doc for `disclosure_id`, in the `/_sandbox/state` shape.
    pub fn doc(&self, disclosure_id: &str) -> Option<Value> {
        let store = self.inner.store.lock().unwrap();
        store
            .docs
            .get(disclosure_id)
            .map(|d| serde_json::to_value(d).expect("a doc serializes"))
    }

    fn count(&self, c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }
}

// ---------------------------------------------------------------------------------------------
// Errors

struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
    fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }
    fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }
    fn body(&self) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({ "error": self.code, "message": self.message }))
            .expect("an error body serializes")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        json_response(self.status, Bytes::from(self.body()))
    }
}

fn json_response(status: StatusCode, body: Bytes) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    r
}

// ---------------------------------------------------------------------------------------------
// Verification

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|s| !s.is_empty())
}

/// Checks app key, timestamp, signature and (last, so that forged requests cannot burn nonces)
/// the nonce. Returns the app key.
fn verify<'h>(
    state: &GovSiteState,
    method: &str,
    path: &str,
    headers: &'h HeaderMap,
    body_sha256: &[u8; 32],
) -> Result<&'h str, ApiError> {
    let app_key = header_str(headers, HEADER_APP_KEY)
        .ok_or_else(|| ApiError::unauthorized("unknown_app_key", "缺少 X-App-Key 请求头"))?;
    let app = state.inner.apps.get(app_key).ok_or_else(|| {
        ApiError::unauthorized(
            "unknown_app_key",
            format!("未知的 X-App-Key：{app_key}，平台未登记该应用"),
        )
    })?;

    let ts_raw = header_str(headers, HEADER_TIMESTAMP).ok_or_else(|| {
        ApiError::unauthorized("timestamp_out_of_window", "缺少 X-Timestamp 请求头")
    })?;
    let ts: i64 = ts_raw.parse().map_err(|_| {
        ApiError::unauthorized(
            "timestamp_out_of_window",
            format!("X-Timestamp 须为 Unix 秒数（整数），收到：{ts_raw}"),
        )
    })?;
    let skew = Utc::now().timestamp().saturating_sub(ts);
    if skew.abs() > TIMESTAMP_WINDOW_SECS {
        return Err(ApiError::unauthorized(
            "timestamp_out_of_window",
            format!(
                "X-Timestamp 与平台时间相差 {} 秒，超出 ±{TIMESTAMP_WINDOW_SECS} 秒的允许范围，请校准时钟",
                skew.abs()
            ),
        ));
    }

    let nonce = header_str(headers, HEADER_NONCE)
        .ok_or_else(|| ApiError::unauthorized("nonce_reused", "缺少 X-Nonce 请求头"))?;

    let sig_hex = header_str(headers, HEADER_SIGNATURE)
        .ok_or_else(|| ApiError::unauthorized("bad_signature", "缺少 X-Signature 请求头"))?;
    let sig_ok = hex::decode(sig_hex).ok().is_some_and(|sig| {
        mac_for(&app.secret, method, path, ts_raw, nonce, body_sha256)
            .verify_slice(&sig)
            .is_ok()
    });
    if !sig_ok {
        return Err(ApiError::unauthorized(
            "bad_signature",
            "X-Signature 签名校验失败，请检查密钥和待签名串（METHOD、PATH、TIMESTAMP、NONCE、正文 SHA-256）",
        ));
    }

    let fresh = app
        .nonces
        .lock()
        .unwrap()
        .check_and_insert(nonce, Instant::now());
    if !fresh {
        return Err(ApiError::unauthorized(
            "nonce_reused",
            format!("X-Nonce {nonce} 在 10 分钟内已被使用过，每次请求须使用新的随机数"),
        ));
    }
    Ok(app_key)
}

// ---------------------------------------------------------------------------------------------
// Body validation

#[derive(Clone, Copy, PartialEq, Eq)]
enum Action {
    Publish,
    Withdraw,
}

struct Submission {
    disclosure_id: String,
    revision: u64,
    action: Action,
    title: String,
    index_no: Option<String>,
    body: Value,
}

fn missing(field: &str, what: &str) -> ApiError {
    ApiError::unprocessable(
        "missing_field",
        format!("缺少必填字段 {field}，或其不是{what}"),
    )
}

fn parse_submission(raw: &[u8]) -> Result<Submission, ApiError> {
    let body: Value = serde_json::from_slice(raw).map_err(|e| {
        ApiError::unprocessable("invalid_json", format!("请求体不是合法的 JSON：{e}"))
    })?;
    let obj = body
        .as_object()
        .ok_or_else(|| ApiError::unprocessable("invalid_json", "请求体须为 JSON 对象（{…}）"))?;
    let disclosure_id = obj
        .get("disclosure_id")
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| missing("disclosure_id", "非空字符串"))?
        .to_string();
    let revision = obj
        .get("revision")
        .and_then(Value::as_u64)
        .ok_or_else(|| missing("revision", "非负整数"))?;
    let action = match obj.get("action").and_then(Value::as_str) {
        Some("publish") | Some("upsert") => Action::Publish,
        Some("withdraw") => Action::Withdraw,
        Some(other) => {
            return Err(ApiError::unprocessable(
                "invalid_field",
                format!(
                    "字段 action 的取值 {other:?} 不受支持，只能是 publish、upsert 或 withdraw"
                ),
            ))
        }
        None => return Err(missing("action", "字符串")),
    };
    let mut title = String::new();
    if action == Action::Publish {
        title = obj
            .get("title")
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| missing("title", "非空字符串（发布时必填）"))?
            .to_string();
        if !obj.get("body_html").is_some_and(Value::is_string) {
            return Err(missing("body_html", "字符串（发布时必填）"));
        }
    }
    let index_no = obj
        .get("index_no")
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .map(str::to_string);
    Ok(Submission {
        disclosure_id,
        revision,
        action,
        title,
        index_no,
        body,
    })
}

// ---------------------------------------------------------------------------------------------
// Handlers

/// The platform's routes, relative to the `/gov_site` prefix.
pub fn router(state: GovSiteState) -> Router {
    Router::new()
        .route("/v1/disclosures", post(post_disclosure))
        .route("/v1/disclosures/{disclosure_id}", get(get_disclosure))
        .route("/docs/{file}", get(get_doc_page))
        .with_state(state)
}

#[derive(Serialize)]
struct PushResponse<'a> {
    platform_doc_id: &'a str,
    url: &'a str,
    status: &'a str,
    index_no: &'a str,
}

impl Doc {
    fn response(&self) -> Bytes {
        Bytes::from(
            serde_json::to_vec(&PushResponse {
                platform_doc_id: &self.platform_doc_id,
                url: &self.url,
                status: self.status.as_str(),
                index_no: &self.index_no,
            })
            .expect("a push response serializes"),
        )
    }
}

/// Host for doc URLs: the request's Host header if sane, else the listening address.
fn public_host(state: &GovSiteState, headers: &HeaderMap) -> String {
    if let Some(h) = header_str(headers, header::HOST.as_str()) {
        if h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        {
            return h.to_string();
        }
    }
    state
        .inner
        .addr
        .get()
        .map(|a| a.to_string())
        .unwrap_or_else(|| "127.0.0.1".to_string())
}

async fn post_disclosure(
    State(state): State<GovSiteState>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    raw: Bytes,
) -> Response {
    state.count(&state.inner.requests);
    match handle_post(&state, uri.path(), &headers, &raw) {
        Ok(resp) => resp,
        Err(e) => {
            state.count(&state.inner.rejected);
            tracing::debug!(code = e.code, message = %e.message, "网站平台沙箱拒绝请求");
            e.into_response()
        }
    }
}

fn handle_post(
    state: &GovSiteState,
    path: &str,
    headers: &HeaderMap,
    raw: &Bytes,
) -> Result<Response, ApiError> {
    let body_sha256: [u8; 32] = Sha256::digest(raw).into();
    let app_key = verify(state, "POST", path, headers, &body_sha256)?;
    let idem_key = header_str(headers, HEADER_IDEMPOTENCY_KEY).ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "missing_idempotency_key",
            "缺少 Idempotency-Key 请求头，平台无法识别重复提交",
        )
    })?;
    // Parse outside the lock; a replay's body was valid the first time anyway.
    let parsed = parse_submission(raw);
    let host = public_host(state, headers);

    let mut store = state.inner.store.lock().unwrap();
    if let Some(prev) = store.idempotency.get(app_key).and_then(|m| m.get(idem_key)) {
        if prev.body_sha256 == body_sha256 {
            let (status, body) = (prev.status, prev.response.clone());
            drop(store);
            state.count(&state.inner.replays);
            let mut r = json_response(status, body);
            r.headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
            return Ok(r);
        }
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "idempotency_conflict",
            format!(
                "Idempotency-Key {idem_key} 已用于内容不同的请求，同一幂等键不能提交不同的正文"
            ),
        ));
    }
    let sub = parsed?;
    let (status, response) = apply(&mut store, state, sub, idem_key, &host)?;
    store
        .idempotency
        .entry(app_key.to_string())
        .or_default()
        .insert(
            idem_key.to_string(),
            IdemEntry {
                body_sha256,
                status,
                response: response.clone(),
            },
        );
    drop(store);
    state.count(&state.inner.accepted);
    Ok(json_response(status, response))
}

/// Applies an accepted submission to the store; the caller holds the lock.
fn apply(
    store: &mut Store,
    state: &GovSiteState,
    sub: Submission,
    idem_key: &str,
    host: &str,
) -> Result<(StatusCode, Bytes), ApiError> {
    let now = Utc::now();
    let Submission {
        disclosure_id,
        revision,
        action,
        title,
        index_no,
        body,
    } = sub;
    match (action, store.docs.get_mut(&disclosure_id)) {
        (Action::Publish, None) => {
            store.doc_counter += 1;
            let platform_doc_id = format!("D{:08}", store.doc_counter);
            let index_no = index_no.unwrap_or_else(|| {
                store.index_counter += 1;
                format!("SANDBOX/{}-{:05}", now.year(), store.index_counter)
            });
            let doc = Doc {
                url: format!("http://{host}/gov_site/docs/{platform_doc_id}.html"),
                disclosure_id: disclosure_id.clone(),
                platform_doc_id: platform_doc_id.clone(),
                revision,
                revisions: vec![RevisionEntry {
                    revision,
                    action: "publish",
                    title: title.clone(),
                    idempotency_key: idem_key.to_string(),
                    at: now,
                }],
                title,
                status: DocStatus::Published,
                index_no,
                body,
            };
            let resp = doc.response();
            store
                .by_doc_id
                .insert(platform_doc_id, disclosure_id.clone());
            store.docs.insert(disclosure_id, doc);
            Ok((StatusCode::CREATED, resp))
        }
        (Action::Publish, Some(doc)) => {
            if revision <= doc.revision {
                state.count(&state.inner.duplicates);
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "stale_revision",
                    format!(
                        "公开件 {disclosure_id} 的修订号 {revision} 不高于平台已有的修订号 {}，属于重复提交",
                        doc.revision
                    ),
                ));
            }
            doc.revision = revision;
            doc.status = DocStatus::Published;
            if let Some(ix) = index_no {
                doc.index_no = ix;
            }
            doc.revisions.push(RevisionEntry {
                revision,
                action: "publish",
                title: title.clone(),
                idempotency_key: idem_key.to_string(),
                at: now,
            });
            doc.title = title;
            doc.body = body;
            Ok((StatusCode::OK, doc.response()))
        }
        (Action::Withdraw, None) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("平台上没有公开件 {disclosure_id}，无法撤回"),
        )),
        (Action::Withdraw, Some(doc)) => {
            if doc.status == DocStatus::Withdrawn {
                state.count(&state.inner.duplicates);
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "already_withdrawn",
                    format!("公开件 {disclosure_id} 已经撤回，属于重复提交"),
                ));
            }
            if revision < doc.revision {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "stale_revision",
                    format!(
                        "撤回请求的修订号 {revision} 低于平台已有的修订号 {}，请求已过期",
                        doc.revision
                    ),
                ));
            }
            doc.revision = revision;
            doc.status = DocStatus::Withdrawn;
            doc.revisions.push(RevisionEntry {
                revision,
                action: "withdraw",
                title: doc.title.clone(),
                idempotency_key: idem_key.to_string(),
                at: now,
            });
            doc.body = body;
            Ok((StatusCode::OK, doc.response()))
        }
    }
}

async fn get_disclosure(
    State(state): State<GovSiteState>,
    OriginalUri(uri): OriginalUri,
    Path(disclosure_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let empty_sha256: [u8; 32] = Sha256::digest(b"").into();
    if let Err(e) = verify(&state, "GET", uri.path(), &headers, &empty_sha256) {
        return e.into_response();
    }
    match state.doc(&disclosure_id) {
        Some(doc) => axum::Json(doc).into_response(),
        None => ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("平台上没有公开件 {disclosure_id}"),
        )
        .into_response(),
    }
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The public page of a doc (what a citizen would see); 410 once withdrawn.
async fn get_doc_page(State(state): State<GovSiteState>, Path(file): Path<String>) -> Response {
    let doc_id = file.strip_suffix(".html").unwrap_or(&file);
    let store = state.inner.store.lock().unwrap();
    let doc = store
        .by_doc_id
        .get(doc_id)
        .and_then(|id| store.docs.get(id));
    let (status, html) = match doc {
        None => (
            StatusCode::NOT_FOUND,
            "<!doctype html><meta charset=\"utf-8\"><title>未找到</title><p>页面不存在。</p>"
                .to_string(),
        ),
        Some(d) if d.status == DocStatus::Withdrawn => (
            StatusCode::GONE,
            format!(
                "<!doctype html><meta charset=\"utf-8\"><title>{t}</title><p>该信息（索引号 {ix}）已撤回。</p>",
                t = html_escape(&d.title),
                ix = html_escape(&d.index_no)
            ),
        ),
        Some(d) => (
            StatusCode::OK,
            format!(
                "<!doctype html><meta charset=\"utf-8\"><title>{t}</title>\
                 <h1>{t}</h1><p>索引号：{ix}　发布机构：{p}　修订：{r}</p><article>{b}</article>",
                t = html_escape(&d.title),
                ix = html_escape(&d.index_no),
                p = html_escape(d.body.get("publisher").and_then(Value::as_str).unwrap_or("")),
                r = d.revision,
                // Sandbox only: the body is trusted test content, shown as the platform would.
                b = d.body.get("body_html").and_then(Value::as_str).unwrap_or(""),
            ),
        ),
    };
    drop(store);
    let mut r = Response::new(Body::from(html));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_matches_manual_construction() {
        let body = br#"{"a":1}"#;
        let body_hex = hex::encode(Sha256::digest(body));
        let to_sign = format!("POST\n/gov_site/v1/disclosures\n1700000000\nn-1\n{body_hex}");
        let mut mac = HmacSha256::new_from_slice(b"s3cret").unwrap();
        mac.update(to_sign.as_bytes());
        let expected = hex::encode(mac.finalize().into_bytes());
        assert_eq!(
            sign(
                "s3cret",
                "POST",
                "/gov_site/v1/disclosures",
                1_700_000_000,
                "n-1",
                body
            ),
            expected
        );
        assert_eq!(expected.len(), 64);
    }

    #[test]
    fn nonce_cache_rejects_reuse_and_expires() {
        let mut c = NonceCache::default();
        let t0 = Instant::now();
        assert!(c.check_and_insert("a", t0));
        assert!(!c.check_and_insert("a", t0 + Duration::from_secs(599)));
        assert!(c.check_and_insert("b", t0 + Duration::from_secs(1)));
        assert!(c.check_and_insert("a", t0 + NONCE_TTL));
        assert_eq!(c.seen.len(), 2);
    }

    #[test]
    fn validation_names_the_field() {
        let e = parse_submission(br#"{"revision":1,"action":"publish"}"#)
            .err()
            .unwrap();
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(e.message.contains("disclosure_id"));
        let e = parse_submission(
            br#"{"disclosure_id":"x","revision":1,"action":"publish","title":"t"}"#,
        )
        .err()
        .unwrap();
        assert!(e.message.contains("body_html"));
        let e = parse_submission(b"not json").err().unwrap();
        assert_eq!(e.code, "invalid_json");
        let ok = parse_submission(br#"{"disclosure_id":"x","revision":3,"action":"withdraw"}"#)
            .ok()
            .unwrap();
        assert_eq!(ok.revision, 3);
    }
}

#[cfg(test)]
mod signature_vector {
    /// The same known answer as the client's test (computed with openssl), so the emulator
    /// and gongkai's website channel cannot drift apart.
    #[test]
    fn the_emulator_signs_like_the_contract() {
        assert_eq!(
            super::sign(
                "s3cret",
                "POST",
                "/v1/disclosures",
                1_700_000_000,
                "n-1",
                b"{}"
            ),
            "8cbc5b16e031a86c673ddcd353c4f62f60859cbd7a0a1b69ca8f96c363a9e5f3"
        );
    }
}
