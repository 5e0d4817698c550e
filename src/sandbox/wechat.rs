//! Emulator of the WeChat official-account API (api.weixin.qq.com), mounted at `/wechat_api`,
//! faithful to wechat-protocol.md §0, §5, §6, §9 where gongkai depends on it:
//!
//! * tokens: `GET /cgi-bin/token` (every call issues a new token, the previous one stays valid
//!   5 more minutes) and `POST /cgi-bin/stable_token` (the current token while it is valid);
//!   every grant is counted;
//! * errors as WeChat answers them: HTTP 200 with `{"errcode":N,"errmsg":"… rid: …"}`;
//! * `material/add_material`, `media/uploadimg` (multipart `media`, type and size checked),
//!   `draft/add|get|delete`, `freepublish/submit|get|delete|batchget|getarticle` with the
//!   article limits checked (title 32, author 16, digest 128, content < 20 000 chars and
//!   < 1 MB, `\uXXXX` escapes refused with 40033, thumb must be a permanent material);
//! * asynchronous publishing: `freepublish/submit` answers a `publish_id` at once, the job
//!   finishes `publish_delay` later and a signed `PUBLISHJOBFINISH` (plain mode) is pushed to
//!   the account's callback URL, if one is set;
//! * `GET /wechat_api/s/{article_id}`: the published article page (the `article_url`).
//! * `message/mass/sendall` (mpnews): the draft is consumed; a `clientmsgid` seen in the last
//!   24 h answers 45065 with the earlier `msg_id` (a replay, never a second send); a quota set
//!   with `POST /_sandbox/wechat/mass_quota` ([`WechatState::set_mass_quota`], default: no
//!   limit) answers 45028 when used up.
//!
//! Fault injection uses the sandbox's fault table ([`errcode_fault`] builds "errcode N for the
//! next K calls of a path"; `delay_ms` adds latency); `POST /_sandbox/wechat/expire_tokens`
//! expires every token at once and `POST /_sandbox/wechat/callback` sets an account's
//! callback URL. `/_sandbox/state` shows the drafts, articles, grants and the duplicate count
//! (a publish of an article whose title and content are already live on the account).

// Handlers return WeChat's error answer early as a `Response`; boxing it would only add noise.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha1::Sha1;
use sha2::{Digest, Sha256};

use super::faults::FaultSpec;

/// Token lifetime the emulator grants.
pub const TOKEN_TTL: Duration = Duration::from_secs(7200);
/// How long the previous token stays valid after a new one is issued.
pub const TOKEN_OVERLAP: Duration = Duration::from_secs(300);

/// One official account the emulator knows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WechatApp {
    pub appid: String,
    pub secret: String,
    /// The "服务器配置" Token that signs pushes to the callback URL.
    #[serde(default)]
    pub callback_token: String,
    /// Where PUBLISHJOBFINISH is pushed; none = events are lost (gongkai must poll).
    #[serde(default)]
    pub callback_url: Option<String>,
}

/// A fault answering WeChat's error `errcode` to the next `count` calls of `path`
/// (a path under the sandbox, e.g. `/wechat_api/cgi-bin/draft/add`). The call is not processed.
pub fn errcode_fault(path: &str, errcode: i64, count: u32) -> FaultSpec {
    FaultSpec {
        path: path.to_string(),
        method: None,
        count,
        status: Some(200),
        delay_ms: 0,
        retry_after: None,
        body: Some(
            json!({"errcode": errcode, "errmsg": format!("injected errcode {errcode} rid: sandbox")})
                .to_string(),
        ),
        after_processing: false,
    }
}

struct Token {
    appid: String,
    valid_until: Instant,
}

#[derive(Clone, Serialize)]
struct Draft {
    media_id: String,
    appid: String,
    articles: Vec<Value>,
}

#[derive(Clone, Serialize)]
struct Publish {
    publish_id: String,
    appid: String,
    status: i64,
    article_id: Option<String>,
    #[serde(skip)]
    articles: Vec<Value>,
}

#[derive(Clone, Serialize)]
struct Article {
    article_id: String,
    publish_id: String,
    appid: String,
    title: String,
    url: String,
    content_source_url: Option<String>,
    deleted: bool,
    #[serde(skip)]
    content_sha256: String,
    #[serde(skip)]
    news_item: Value,
    update_time: i64,
}

#[derive(Default)]
struct Inner {
    apps: Vec<WechatApp>,
    tokens: HashMap<String, Token>,
    stable: HashMap<String, String>,
    grants: u64,
    materials: HashMap<String, String>,
    uploadimgs: u64,
    drafts: BTreeMap<String, Draft>,
    publishes: BTreeMap<String, Publish>,
    articles: BTreeMap<String, Article>,
    duplicates: u64,
    callbacks_sent: u64,
    callback_failures: u64,
    calls: BTreeMap<String, u64>,
    seq: u64,
    mass: MassState,
    /// Callback side (issue 4): the custom menu and the customer-service messages sent.
    menu: Option<Value>,
    custom_messages: Vec<Value>,
}

impl Inner {
    fn next_id(&mut self, prefix: &str) -> String {
        self.seq += 1;
        format!("{prefix}{:06}", self.seq)
    }

    fn issue_token(&mut self, appid: &str) -> String {
        let now = Instant::now();
        // The previous tokens of the account stay valid for the overlap only.
        for t in self.tokens.values_mut().filter(|t| t.appid == appid) {
            t.valid_until = t.valid_until.min(now + TOKEN_OVERLAP);
        }
        let token = format!("ACCESS_TOKEN_{}_{}", appid, uuid::Uuid::new_v4().simple());
        self.tokens.insert(
            token.clone(),
            Token {
                appid: appid.to_string(),
                valid_until: now + TOKEN_TTL,
            },
        );
        self.grants += 1;
        token
    }

    fn app(&self, appid: &str) -> Option<&WechatApp> {
        self.apps.iter().find(|a| a.appid == appid)
    }
}

/// The emulator's state; cheap to clone.
#[derive(Clone)]
pub struct WechatState {
    inner: Arc<Mutex<Inner>>,
    addr: Arc<OnceLock<SocketAddr>>,
    publish_delay: Duration,
    client: reqwest::Client,
}

impl WechatState {
    pub fn new(
        apps: &[WechatApp],
        publish_delay: Duration,
        addr: Arc<OnceLock<SocketAddr>>,
    ) -> Self {
        WechatState {
            inner: Arc::new(Mutex::new(Inner {
                apps: apps.to_vec(),
                ..Inner::default()
            })),
            addr,
            publish_delay,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .expect("a default reqwest client builds"),
        }
    }

    /// Sets (or clears) where an account's events are pushed.
    pub fn set_callback(&self, appid: &str, url: Option<String>) -> bool {
        let mut g = self.inner.lock().unwrap();
        match g.apps.iter_mut().find(|a| a.appid == appid) {
            Some(app) => {
                app.callback_url = url;
                true
            }
            None => false,
        }
    }

    /// Expires every token now (no overlap): the next call with any of them gets 42001.
    pub fn expire_tokens(&self) -> usize {
        let mut g = self.inner.lock().unwrap();
        let now = Instant::now();
        for t in g.tokens.values_mut() {
            t.valid_until = now;
        }
        g.tokens.len()
    }

    /// Token grants so far.
    pub fn grants(&self) -> u64 {
        self.inner.lock().unwrap().grants
    }

    pub fn snapshot(&self) -> Value {
        let g = self.inner.lock().unwrap();
        json!({
            "mass_sends": g.mass.sends,
            "mass_replays": g.mass.replays,
            "mass_duplicates": g.mass.duplicates,
            "grants": g.grants,
            "materials": g.materials.len(),
            "uploadimgs": g.uploadimgs,
            "drafts": g.drafts.values().collect::<Vec<_>>(),
            "publishes": g.publishes.values().collect::<Vec<_>>(),
            "articles": g.articles.values().collect::<Vec<_>>(),
            "live_articles": g.articles.values().filter(|a| !a.deleted).count(),
            "duplicates": g.duplicates,
            "callbacks_sent": g.callbacks_sent,
            "callback_failures": g.callback_failures,
            "calls": g.calls,
        })
    }

    fn base_url(&self, headers: &HeaderMap) -> String {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_string)
            .or_else(|| self.addr.get().map(|a| a.to_string()))
            .unwrap_or_else(|| "127.0.0.1".into());
        format!("http://{host}{}", super::WECHAT_PREFIX)
    }
}

fn err(code: i64, msg: &str) -> Response {
    Json(json!({
        "errcode": code,
        "errmsg": format!("{msg} rid: {}", &uuid::Uuid::new_v4().simple().to_string()[..8]),
    }))
    .into_response()
}

fn ok(mut v: Value) -> Response {
    if let Some(m) = v.as_object_mut() {
        m.entry("errcode").or_insert(json!(0));
        m.entry("errmsg").or_insert(json!("ok"));
    }
    Json(v).into_response()
}

type Q = Query<HashMap<String, String>>;

/// Checks `access_token`: the account it belongs to, or WeChat's error answer.
fn authorize(state: &WechatState, q: &Q, path: &str) -> Result<String, Response> {
    let mut g = state.inner.lock().unwrap();
    *g.calls.entry(path.to_string()).or_default() += 1;
    let Some(token) = q.get("access_token") else {
        return Err(err(41001, "access_token missing"));
    };
    match g.tokens.get(token) {
        None => Err(err(
            40001,
            "invalid credential, access_token is invalid or not latest",
        )),
        Some(t) if t.valid_until <= Instant::now() => Err(err(42001, "access_token expired")),
        Some(t) => Ok(t.appid.clone()),
    }
}

/// The preamble of a JSON API call: the access_token is checked (and the call counted),
/// then the body parsed as WeChat does; the first failure is the answer.
fn authorized_json(
    state: &WechatState,
    q: &Q,
    path: &str,
    body: &[u8],
) -> Result<(String, Value), Response> {
    let appid = authorize(state, q, path)?;
    Ok((appid, parse_json(body)?))
}

fn parse_json(body: &[u8]) -> Result<Value, Response> {
    if has_unicode_escape(body) {
        return Err(err(
            40033,
            "invalid charset. please check your request, if include \\uxxxx will create fail!",
        ));
    }
    serde_json::from_slice(body).map_err(|_| err(47001, "data format error"))
}

/// `\uXXXX` escapes in the raw request (WeChat refuses them, 40033).
fn has_unicode_escape(body: &[u8]) -> bool {
    body.windows(6)
        .any(|w| w[0] == b'\\' && w[1] == b'u' && w[2..].iter().all(|c| c.is_ascii_hexdigit()))
}

fn str_field<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str)
}

pub fn router(state: WechatState) -> Router {
    Router::new()
        .route("/cgi-bin/token", get(token))
        .route("/cgi-bin/stable_token", post(stable_token))
        .route("/cgi-bin/material/add_material", post(add_material))
        .route("/cgi-bin/media/uploadimg", post(uploadimg))
        .route("/cgi-bin/draft/add", post(draft_add))
        .route("/cgi-bin/draft/get", post(draft_get))
        .route("/cgi-bin/draft/delete", post(draft_delete))
        .route("/cgi-bin/freepublish/submit", post(submit))
        .route("/cgi-bin/freepublish/get", post(publish_get))
        .route("/cgi-bin/freepublish/delete", post(publish_delete))
        .route("/cgi-bin/freepublish/batchget", post(batchget))
        .route("/cgi-bin/freepublish/getarticle", post(getarticle))
        .route("/s/{article_id}", get(article_page))
        .route("/cgi-bin/message/mass/sendall", post(mass_sendall))
        .merge(callback_side_routes())
        .with_state(state)
}

fn grant(state: &WechatState, appid: &str, secret: &str, stable: bool, force: bool) -> Response {
    let mut g = state.inner.lock().unwrap();
    *g.calls
        .entry(
            if stable {
                "/cgi-bin/stable_token"
            } else {
                "/cgi-bin/token"
            }
            .to_string(),
        )
        .or_default() += 1;
    let Some(app) = g.app(appid) else {
        return err(40013, "invalid appid");
    };
    if app.secret != secret {
        return err(40125, "invalid appsecret");
    }
    let now = Instant::now();
    if stable && !force {
        let current = g.stable.get(appid).cloned();
        if let Some(tok) = current {
            if let Some(t) = g.tokens.get(&tok) {
                if t.valid_until > now {
                    let left = (t.valid_until - now).as_secs();
                    return ok(json!({"access_token": tok, "expires_in": left}));
                }
            }
        }
    }
    let tok = g.issue_token(appid);
    if stable {
        if force {
            // A forced refresh invalidates the old stable token at once.
            if let Some(old) = g.stable.get(appid).cloned() {
                if let Some(t) = g.tokens.get_mut(&old) {
                    t.valid_until = now;
                }
            }
        }
        g.stable.insert(appid.to_string(), tok.clone());
    }
    // Success bodies of the token endpoints carry no errcode.
    Json(json!({"access_token": tok, "expires_in": TOKEN_TTL.as_secs()})).into_response()
}

async fn token(State(state): State<WechatState>, q: Q) -> Response {
    if q.get("grant_type").map(String::as_str) != Some("client_credential") {
        return err(40002, "invalid grant_type");
    }
    let (Some(appid), Some(secret)) = (q.get("appid"), q.get("secret")) else {
        return err(41002, "appid missing");
    };
    grant(&state, appid, secret, false, false)
}

async fn stable_token(State(state): State<WechatState>, body: Bytes) -> Response {
    let v = match parse_json(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    if str_field(&v, "grant_type") != Some("client_credential") {
        return err(40002, "invalid grant_type");
    }
    let (Some(appid), Some(secret)) = (str_field(&v, "appid"), str_field(&v, "secret")) else {
        return err(41004, "appsecret missing");
    };
    let force = v
        .get("force_refresh")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    grant(&state, appid, secret, true, force)
}

/// The `media` part of a multipart body: (file name, bytes).
fn multipart_media(headers: &HeaderMap, body: &[u8]) -> Option<Vec<u8>> {
    let ct = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let boundary = ct.split("boundary=").nth(1)?.trim_matches('"');
    let delim = format!("--{boundary}");
    let text = body;
    let mut parts = Vec::new();
    let mut start = 0;
    while let Some(pos) = find(&text[start..], delim.as_bytes()) {
        parts.push(start + pos);
        start += pos + delim.len();
    }
    for w in parts.windows(2) {
        let part = &text[w[0] + delim.len()..w[1]];
        let head_end = find(part, b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(&part[..head_end]);
        if head.contains("name=\"media\"") {
            let data = &part[head_end + 4..];
            let data = data.strip_suffix(b"\r\n").unwrap_or(data);
            return Some(data.to_vec());
        }
    }
    None
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn image_kind(b: &[u8]) -> Option<&'static str> {
    if b.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("png")
    } else if b.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("jpg")
    } else {
        None
    }
}

async fn add_material(
    State(state): State<WechatState>,
    q: Q,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let appid = match authorize(&state, &q, "/cgi-bin/material/add_material") {
        Ok(a) => a,
        Err(r) => return r,
    };
    let kind = q.get("type").map(String::as_str).unwrap_or("");
    if !["image", "thumb"].contains(&kind) {
        return err(40004, "invalid media type");
    }
    let Some(media) = multipart_media(&headers, &body) else {
        return err(41005, "media data missing");
    };
    let Some(ext) = image_kind(&media) else {
        return err(40005, "invalid file type");
    };
    if kind == "thumb" && (ext != "jpg" || media.len() > 64 * 1024) {
        return err(40006, "invalid meida size");
    }
    if media.len() > 10 * 1024 * 1024 {
        return err(40009, "invalid image size");
    }
    let mut g = state.inner.lock().unwrap();
    let media_id = g.next_id("MEDIA_");
    g.materials.insert(media_id.clone(), appid);
    let url = format!("http://mmbiz.qpic.cn/sandbox/{media_id}.{ext}");
    ok(json!({"media_id": media_id, "url": url}))
}

async fn uploadimg(
    State(state): State<WechatState>,
    q: Q,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = authorize(&state, &q, "/cgi-bin/media/uploadimg") {
        return r;
    }
    let Some(media) = multipart_media(&headers, &body) else {
        return err(41005, "media data missing");
    };
    let Some(ext) = image_kind(&media) else {
        return err(40005, "invalid file type");
    };
    if media.len() >= 1024 * 1024 {
        return err(40009, "invalid image size");
    }
    let mut g = state.inner.lock().unwrap();
    g.uploadimgs += 1;
    let id = g.next_id("IMG_");
    ok(json!({"url": format!("http://mmbiz.qpic.cn/sandbox/{id}.{ext}")}))
}

/// Checks one draft article the way draft/add does.
fn check_article(
    a: &Value,
    appid: &str,
    materials: &HashMap<String, String>,
) -> Result<(), Response> {
    let title = str_field(a, "title").unwrap_or("");
    if title.is_empty() {
        return Err(err(44003, "empty news data (title)"));
    }
    if title.chars().count() > 32 {
        return Err(err(45003, "title size out of limit"));
    }
    if str_field(a, "author").is_some_and(|s| s.chars().count() > 16) {
        return Err(err(45110, "author size out of limit"));
    }
    if str_field(a, "digest").is_some_and(|s| s.chars().count() > 128) {
        return Err(err(45004, "description size out of limit"));
    }
    let content = str_field(a, "content").unwrap_or("");
    if content.is_empty() {
        return Err(err(44004, "empty content"));
    }
    if content.chars().count() >= 20_000 || content.len() >= 1024 * 1024 {
        return Err(err(45002, "content size out of limit"));
    }
    if str_field(a, "content_source_url").is_some_and(|s| s.len() > 1024) {
        return Err(err(41039, "invalid content_source_url"));
    }
    match str_field(a, "thumb_media_id") {
        Some(m) if materials.get(m).map(String::as_str) == Some(appid) => Ok(()),
        _ => Err(err(40007, "invalid media_id (thumb_media_id)")),
    }
}

async fn draft_add(State(state): State<WechatState>, q: Q, body: Bytes) -> Response {
    let (appid, v) = match authorized_json(&state, &q, "/cgi-bin/draft/add", &body) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Some(articles) = v.get("articles").and_then(Value::as_array).cloned() else {
        return err(44003, "empty news data");
    };
    if articles.is_empty() || articles.len() > 8 {
        return err(45008, "article size out of limit");
    }
    let mut g = state.inner.lock().unwrap();
    for a in &articles {
        if let Err(r) = check_article(a, &appid, &g.materials) {
            return r;
        }
    }
    // The platform strips JavaScript from the content.
    let articles = articles
        .into_iter()
        .map(|mut a| {
            if let Some(c) = a.get("content").and_then(Value::as_str) {
                let cleaned = c
                    .replace("<script", "<!--script")
                    .replace("</script>", "</script-->");
                a["content"] = json!(cleaned);
            }
            a
        })
        .collect();
    let media_id = g.next_id("DRAFT_");
    g.drafts.insert(
        media_id.clone(),
        Draft {
            media_id: media_id.clone(),
            appid,
            articles,
        },
    );
    // draft/add answers without errcode.
    Json(json!({"media_id": media_id})).into_response()
}

async fn draft_get(State(state): State<WechatState>, q: Q, body: Bytes) -> Response {
    let (appid, v) = match authorized_json(&state, &q, "/cgi-bin/draft/get", &body) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let g = state.inner.lock().unwrap();
    match str_field(&v, "media_id").and_then(|m| g.drafts.get(m)) {
        Some(d) if d.appid == appid => ok(json!({"news_item": d.articles})),
        _ => err(40007, "invalid media_id"),
    }
}

async fn draft_delete(State(state): State<WechatState>, q: Q, body: Bytes) -> Response {
    let (appid, v) = match authorized_json(&state, &q, "/cgi-bin/draft/delete", &body) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let mut g = state.inner.lock().unwrap();
    let id = str_field(&v, "media_id").unwrap_or("").to_string();
    match g.drafts.get(&id) {
        Some(d) if d.appid == appid => {
            g.drafts.remove(&id);
            ok(json!({}))
        }
        _ => err(40007, "invalid media_id"),
    }
}

fn content_hash(a: &Value) -> String {
    let mut h = Sha256::new();
    h.update(str_field(a, "title").unwrap_or("").as_bytes());
    h.update([0]);
    h.update(str_field(a, "content").unwrap_or("").as_bytes());
    hex::encode(h.finalize())
}

async fn submit(
    State(state): State<WechatState>,
    q: Q,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (appid, v) = match authorized_json(&state, &q, "/cgi-bin/freepublish/submit", &body) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let base = state.base_url(&headers);
    let publish_id = {
        let mut g = state.inner.lock().unwrap();
        let id = str_field(&v, "media_id").unwrap_or("").to_string();
        let Some(draft) = g.drafts.get(&id).filter(|d| d.appid == appid).cloned() else {
            return err(40007, "invalid media_id");
        };
        // The draft leaves the draft box once submitted for publishing.
        g.drafts.remove(&id);
        g.seq += 1;
        let publish_id = format!("{}", 2_247_500_000u64 + g.seq);
        g.publishes.insert(
            publish_id.clone(),
            Publish {
                publish_id: publish_id.clone(),
                appid: appid.clone(),
                status: 1,
                article_id: None,
                articles: draft.articles,
            },
        );
        publish_id
    };
    let st = state.clone();
    let pid = publish_id.clone();
    tokio::spawn(async move {
        tokio::time::sleep(st.publish_delay).await;
        finish_publish(&st, &pid, &base).await;
    });
    ok(json!({"publish_id": publish_id, "msg_data_id": format!("{publish_id}0")}))
}

/// Ends a publish job: the article goes live, and PUBLISHJOBFINISH is pushed.
async fn finish_publish(state: &WechatState, publish_id: &str, base: &str) {
    let push = {
        let mut g = state.inner.lock().unwrap();
        let Some(p) = g.publishes.get(publish_id).cloned() else {
            return;
        };
        let article_id = format!("ART_{}", uuid::Uuid::new_v4().simple());
        let url = format!("{base}/s/{article_id}");
        let first = p.articles.first().cloned().unwrap_or(Value::Null);
        let hash = content_hash(&first);
        if g.articles
            .values()
            .any(|a| a.appid == p.appid && !a.deleted && a.content_sha256 == hash)
        {
            g.duplicates += 1;
        }
        g.articles.insert(
            article_id.clone(),
            Article {
                article_id: article_id.clone(),
                publish_id: publish_id.to_string(),
                appid: p.appid.clone(),
                title: str_field(&first, "title").unwrap_or("").to_string(),
                url: url.clone(),
                content_source_url: str_field(&first, "content_source_url").map(str::to_string),
                deleted: false,
                content_sha256: hash,
                news_item: first,
                update_time: chrono::Utc::now().timestamp(),
            },
        );
        if let Some(pm) = g.publishes.get_mut(publish_id) {
            pm.status = 0;
            pm.article_id = Some(article_id.clone());
        }
        g.app(&p.appid)
            .and_then(|a| {
                a.callback_url
                    .clone()
                    .map(|u| (u, a.callback_token.clone()))
            })
            .map(|(u, t)| (u, t, article_id, url, p.appid.clone()))
    };
    let Some((callback, token, article_id, url, appid)) = push else {
        return;
    };
    let xml = format!(
        "<xml><ToUserName><![CDATA[gh_{appid}]]></ToUserName><FromUserName><![CDATA[mphelper]]></FromUserName>\
<CreateTime>{}</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[PUBLISHJOBFINISH]]></Event>\
<PublishEventInfo><publish_id>{publish_id}</publish_id><publish_status>0</publish_status>\
<article_id><![CDATA[{article_id}]]></article_id><article_detail><count>1</count>\
<item><idx>1</idx><article_url><![CDATA[{url}]]></article_url></item></article_detail></PublishEventInfo></xml>",
        chrono::Utc::now().timestamp()
    );
    push_and_count(state, &callback, &token, xml).await;
}

/// Pushes an event and counts it as sent or failed in the emulator's state.
async fn push_and_count(state: &WechatState, url: &str, token: &str, xml: String) {
    let sent = push_event(state, url, token, xml).await;
    let mut g = state.inner.lock().unwrap();
    if sent {
        g.callbacks_sent += 1;
    } else {
        g.callback_failures += 1;
    }
}

/// Pushes an event like WeChat does (plain mode, signed); true when answered 200.
pub async fn push_event(state: &WechatState, url: &str, token: &str, xml: String) -> bool {
    let timestamp = chrono::Utc::now().timestamp().to_string();
    let nonce = format!("{}", rand::random::<u32>());
    let signature = plain_signature(token, &timestamp, &nonce);
    let sep = if url.contains('?') { '&' } else { '?' };
    let full = format!(
        "{url}{sep}signature={signature}&timestamp={timestamp}&nonce={nonce}&openid=mphelper"
    );
    match state
        .client
        .post(full)
        .header(header::CONTENT_TYPE, "text/xml")
        .body(xml)
        .send()
        .await
    {
        Ok(r) => r.status() == StatusCode::OK,
        Err(_) => false,
    }
}

/// WeChat's plain signature: hex(sha1(sorted(token, timestamp, nonce) joined)).
pub fn plain_signature(token: &str, timestamp: &str, nonce: &str) -> String {
    let mut parts = [token, timestamp, nonce];
    parts.sort_unstable();
    hex::encode(Sha1::digest(parts.concat().as_bytes()))
}

async fn publish_get(State(state): State<WechatState>, q: Q, body: Bytes) -> Response {
    let (appid, v) = match authorized_json(&state, &q, "/cgi-bin/freepublish/get", &body) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let g = state.inner.lock().unwrap();
    let Some(p) = str_field(&v, "publish_id")
        .and_then(|id| g.publishes.get(id))
        .filter(|p| p.appid == appid)
    else {
        return err(40002, "invalid publish_id");
    };
    let mut out = json!({"publish_id": p.publish_id, "publish_status": p.status, "fail_idx": []});
    if let Some(a) = p.article_id.as_ref().and_then(|id| g.articles.get(id)) {
        out["article_id"] = json!(a.article_id);
        out["article_detail"] = json!({"count": 1, "item": [{"idx": 1, "article_url": a.url}]});
    }
    ok(out)
}

async fn publish_delete(State(state): State<WechatState>, q: Q, body: Bytes) -> Response {
    let (appid, v) = match authorized_json(&state, &q, "/cgi-bin/freepublish/delete", &body) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let mut g = state.inner.lock().unwrap();
    let id = str_field(&v, "article_id").unwrap_or("").to_string();
    let publish_id = match g.articles.get_mut(&id) {
        Some(a) if a.appid == appid && !a.deleted => {
            a.deleted = true;
            a.publish_id.clone()
        }
        _ => return err(53600, "invalid article_id"),
    };
    if let Some(p) = g.publishes.get_mut(&publish_id) {
        p.status = 5;
    }
    ok(json!({}))
}

async fn batchget(State(state): State<WechatState>, q: Q, body: Bytes) -> Response {
    let (appid, v) = match authorized_json(&state, &q, "/cgi-bin/freepublish/batchget", &body) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let offset = v.get("offset").and_then(Value::as_u64).unwrap_or(0) as usize;
    let count = v.get("count").and_then(Value::as_u64).unwrap_or(0) as usize;
    if !(1..=20).contains(&count) {
        return err(40002, "invalid count");
    }
    let g = state.inner.lock().unwrap();
    let mut live: Vec<&Article> = g
        .articles
        .values()
        .filter(|a| a.appid == appid && !a.deleted)
        .collect();
    live.sort_by(|a, b| {
        b.update_time
            .cmp(&a.update_time)
            .then(b.article_id.cmp(&a.article_id))
    });
    let total = live.len();
    let items: Vec<Value> = live
        .into_iter()
        .skip(offset)
        .take(count)
        .map(|a| {
            let mut item = a.news_item.clone();
            item["url"] = json!(a.url);
            json!({"article_id": a.article_id, "content": {"news_item": [item]}, "update_time": a.update_time})
        })
        .collect();
    ok(json!({"total_count": total, "item_count": items.len(), "item": items}))
}

async fn getarticle(State(state): State<WechatState>, q: Q, body: Bytes) -> Response {
    let (appid, v) = match authorized_json(&state, &q, "/cgi-bin/freepublish/getarticle", &body) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let g = state.inner.lock().unwrap();
    match str_field(&v, "article_id").and_then(|id| g.articles.get(id)) {
        Some(a) if a.appid == appid => {
            let mut item = a.news_item.clone();
            item["url"] = json!(a.url);
            item["is_deleted"] = json!(a.deleted);
            ok(json!({"news_item": [item]}))
        }
        _ => err(53600, "invalid article_id"),
    }
}

async fn article_page(State(state): State<WechatState>, Path(id): Path<String>) -> Response {
    let g = state.inner.lock().unwrap();
    match g.articles.get(&id) {
        Some(a) if !a.deleted => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            format!(
                "<!doctype html><meta charset=\"utf-8\"><title>{}</title>{}",
                a.title,
                str_field(&a.news_item, "content").unwrap_or("")
            ),
        )
            .into_response(),
        Some(_) => (StatusCode::GONE, "该内容已被发布者删除").into_response(),
        None => (StatusCode::NOT_FOUND, "没有这篇文章").into_response(),
    }
}

// ---------------------------------------------------------------------------------------
// Mass send (群发, wechat-protocol.md §6.7)

/// One accepted `message/mass/sendall`.
#[derive(Clone, Serialize)]
struct MassSend {
    msg_id: u64,
    appid: String,
    clientmsgid: Option<String>,
    title: String,
    #[serde(skip)]
    content_sha256: String,
    #[serde(skip)]
    at: Instant,
}

#[derive(Default)]
struct MassState {
    sends: Vec<MassSend>,
    /// Sends answered 45065 (the same clientmsgid within 24 h): replays, not duplicates.
    replays: u64,
    /// Accepted sends of an article (title and content) the account had already mass-sent.
    duplicates: u64,
    /// Remaining accepted sends per account in the current period; absent = no limit.
    quota: HashMap<String, u64>,
}

/// How long WeChat remembers a clientmsgid.
const CLIENTMSGID_WINDOW: Duration = Duration::from_secs(24 * 3600);

impl WechatState {
    /// Sets how many more mass sends an account may make in this period (`None` = no
    /// limit); when none are left, sendall answers 45028.
    pub fn set_mass_quota(&self, appid: &str, remaining: Option<u64>) {
        let mut g = self.inner.lock().unwrap();
        match remaining {
            Some(n) => g.mass.quota.insert(appid.to_string(), n),
            None => g.mass.quota.remove(appid),
        };
    }
}

/// The emulated account's followers: a mass send's MASSSENDJOBFINISH reports this many,
/// two of whom could not be reached.
pub const SANDBOX_FOLLOWERS: i64 = 1200;

/// `POST /cgi-bin/message/mass/sendall`: an mpnews send to all followers (or a tag). The
/// draft is consumed; a clientmsgid seen in the last 24 h answers 45065 with that send's
/// msg_id (nothing is sent again); an account out of quota gets 45028.
async fn mass_sendall(State(state): State<WechatState>, q: Q, body: Bytes) -> Response {
    let (appid, v) = match authorized_json(&state, &q, "/cgi-bin/message/mass/sendall", &body) {
        Ok(x) => x,
        Err(r) => return r,
    };
    if str_field(&v, "msgtype") != Some("mpnews") {
        return err(40008, "invalid message type");
    }
    if v.pointer("/filter/is_to_all")
        .and_then(Value::as_bool)
        .is_none()
    {
        return err(40002, "invalid filter");
    }
    let cid = str_field(&v, "clientmsgid").map(str::to_string);
    if cid.as_ref().is_some_and(|c| c.len() > 64) {
        return err(45067, "clientmsgid size out of limit");
    }
    let mut g = state.inner.lock().unwrap();
    if let Some(c) = &cid {
        let earlier = g
            .mass
            .sends
            .iter()
            .find(|m| {
                m.appid == appid
                    && m.clientmsgid.as_deref() == Some(c.as_str())
                    && m.at.elapsed() < CLIENTMSGID_WINDOW
            })
            .map(|m| m.msg_id);
        if let Some(msg_id) = earlier {
            g.mass.replays += 1;
            return Json(json!({
                "errcode": 45065,
                "errmsg": "clientmsgid exist",
                "msg_id": msg_id,
            }))
            .into_response();
        }
    }
    let media_id = v
        .pointer("/mpnews/media_id")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let Some(draft) = g
        .drafts
        .get(&media_id)
        .filter(|d| d.appid == appid)
        .cloned()
    else {
        return err(40007, "invalid media_id");
    };
    if let Some(left) = g.mass.quota.get_mut(&appid) {
        if *left == 0 {
            return err(45028, "has no masssend quota");
        }
        *left -= 1;
    }
    // Like a publish, a mass send uses the draft up.
    g.drafts.remove(&media_id);
    let first = draft.articles.first().cloned().unwrap_or(Value::Null);
    let hash = content_hash(&first);
    if g.mass
        .sends
        .iter()
        .any(|m| m.appid == appid && m.content_sha256 == hash)
    {
        g.mass.duplicates += 1;
    }
    g.seq += 1;
    let msg_id = 1_000_000_000 + g.seq;
    let report_to = g.app(&appid).and_then(|a| {
        a.callback_url
            .clone()
            .map(|u| (u, a.callback_token.clone(), a.appid.clone()))
    });
    g.mass.sends.push(MassSend {
        msg_id,
        appid,
        clientmsgid: cid,
        title: str_field(&first, "title").unwrap_or("").to_string(),
        content_sha256: hash,
        at: Instant::now(),
    });
    drop(g);
    // WeChat reports on the job when it is nearly done (MASSSENDJOBFINISH).
    if let Some((callback, token, appid)) = report_to {
        let st = state.clone();
        tokio::spawn(async move {
            tokio::time::sleep(st.publish_delay).await;
            let xml = format!(
                "<xml><ToUserName><![CDATA[gh_{appid}]]></ToUserName><FromUserName><![CDATA[mphelper]]></FromUserName>\
<CreateTime>{}</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[MASSSENDJOBFINISH]]></Event>\
<MsgID>{msg_id}</MsgID><Status><![CDATA[send success]]></Status><TotalCount>{SANDBOX_FOLLOWERS}</TotalCount>\
<FilterCount>{SANDBOX_FOLLOWERS}</FilterCount><SentCount>{}</SentCount><ErrorCount>2</ErrorCount></xml>",
                chrono::Utc::now().timestamp(),
                SANDBOX_FOLLOWERS - 2
            );
            push_and_count(&st, &callback, &token, xml).await;
        });
    }
    Json(json!({
        "errcode": 0,
        "errmsg": "send job submission success",
        "msg_id": msg_id,
        "msg_data_id": msg_id * 10,
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_signature_matches_the_official_vector() {
        assert_eq!(
            plain_signature("AAAAA", "1714036504", "1514711492"),
            "f464b24fc39322e44b38aa78f5edd27bd1441696"
        );
        assert_eq!(
            plain_signature("test", "1410685589", "test"),
            "f21891de399b4e33a1a93c9a7b8a8fffb5a443ff"
        );
    }

    #[test]
    fn unicode_escapes_are_detected_in_raw_json() {
        assert!(has_unicode_escape(br#"{"title":"\u5173\u4e8e"}"#));
        assert!(!has_unicode_escape("{\"title\":\"关于\"}".as_bytes()));
    }

    #[test]
    fn the_media_part_is_read_from_a_multipart_body() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            "multipart/form-data; boundary=XyZ".parse().unwrap(),
        );
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"media\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n\x89PNG\r\n\x1a\nDATA\r\n--XyZ--\r\n";
        assert_eq!(
            multipart_media(&headers, body).unwrap(),
            b"\x89PNG\r\n\x1a\nDATA".to_vec()
        );
    }
}

// ---------------------------------------------------------------------------------------
// Callback side (issue 4): the custom menu, customer-service messages, and a client that
// posts signed (and encrypted) user messages to a daemon's callback like WeChat does.

fn callback_side_routes() -> Router<WechatState> {
    Router::new()
        .route("/cgi-bin/menu/create", post(menu_create))
        .route("/cgi-bin/menu/get", get(menu_get))
        .route("/cgi-bin/get_current_selfmenu_info", get(selfmenu_info))
        .route("/cgi-bin/message/custom/send", post(custom_send))
}

impl WechatState {
    /// The customer-service messages the emulator accepted, in order.
    pub fn custom_messages(&self) -> Vec<Value> {
        self.inner.lock().unwrap().custom_messages.clone()
    }

    /// The menu created by `menu/create`, if any.
    pub fn menu(&self) -> Option<Value> {
        self.inner.lock().unwrap().menu.clone()
    }
}

/// WeChat's menu checks (wechat-protocol.md §7): the errcode of the first problem.
fn menu_errcode(v: &Value) -> Option<(i64, &'static str)> {
    let Some(buttons) = v.get("button").and_then(Value::as_array) else {
        return Some((40016, "invalid button size"));
    };
    if buttons.is_empty() || buttons.len() > 3 {
        return Some((40016, "invalid button size"));
    }
    for b in buttons {
        let name = str_field(b, "name").unwrap_or("");
        if name.is_empty() || name.len() > 16 {
            return Some((40018, "invalid button name size"));
        }
        if let Some(subs) = b.get("sub_button").and_then(Value::as_array) {
            if subs.len() > 5 {
                return Some((40023, "invalid sub button size"));
            }
            for s in subs {
                let n = str_field(s, "name").unwrap_or("");
                if n.is_empty() || n.len() > 60 {
                    return Some((40025, "invalid sub button name size"));
                }
                if str_field(s, "type").is_none() {
                    return Some((40024, "invalid sub button type"));
                }
                if str_field(s, "key").is_some_and(|k| k.len() > 128) {
                    return Some((40019, "invalid button key size"));
                }
            }
        } else if str_field(b, "type").is_none() {
            return Some((40017, "invalid button type"));
        } else if str_field(b, "key").is_some_and(|k| k.len() > 128) {
            return Some((40019, "invalid button key size"));
        }
    }
    None
}

async fn menu_create(State(state): State<WechatState>, q: Q, body: Bytes) -> Response {
    if let Err(r) = authorize(&state, &q, "/cgi-bin/menu/create") {
        return r;
    }
    let v = match parse_json(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    if let Some((code, msg)) = menu_errcode(&v) {
        return err(code, msg);
    }
    state.inner.lock().unwrap().menu = Some(v);
    ok(json!({}))
}

async fn menu_get(State(state): State<WechatState>, q: Q) -> Response {
    if let Err(r) = authorize(&state, &q, "/cgi-bin/menu/get") {
        return r;
    }
    match state.inner.lock().unwrap().menu.clone() {
        Some(m) => Json(json!({ "menu": m })).into_response(),
        None => err(46003, "menu no exist"),
    }
}

/// The console view: sub-buttons nested as `{"list": [...]}`.
async fn selfmenu_info(State(state): State<WechatState>, q: Q) -> Response {
    if let Err(r) = authorize(&state, &q, "/cgi-bin/get_current_selfmenu_info") {
        return r;
    }
    let menu = state.inner.lock().unwrap().menu.clone();
    let Some(m) = menu else {
        return Json(json!({"is_menu_open": 0})).into_response();
    };
    let buttons: Vec<Value> = m["button"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|mut b| {
            if let Some(subs) = b.get("sub_button").cloned() {
                b["sub_button"] = json!({ "list": subs });
            }
            b
        })
        .collect();
    Json(json!({"is_menu_open": 1, "selfmenu_info": {"button": buttons}})).into_response()
}

async fn custom_send(State(state): State<WechatState>, q: Q, body: Bytes) -> Response {
    if let Err(r) = authorize(&state, &q, "/cgi-bin/message/custom/send") {
        return r;
    }
    let v = match parse_json(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    if str_field(&v, "touser").is_none_or(str::is_empty) {
        return err(40003, "invalid openid");
    }
    match str_field(&v, "msgtype") {
        Some("text") if v["text"]["content"].as_str().is_some() => {}
        Some("news") => {
            if v["news"]["articles"]
                .as_array()
                .is_none_or(|a| a.len() != 1)
            {
                return err(45008, "article size out of limit");
            }
        }
        Some("mpnewsarticle" | "image" | "voice" | "video" | "music" | "msgmenu") => {}
        _ => return err(40008, "invalid message type"),
    }
    state.inner.lock().unwrap().custom_messages.push(v);
    ok(json!({}))
}

/// How a [`UserClient`] talks to the callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackMode {
    /// 明文
    Plain,
    /// 兼容: plaintext fields and `Encrypt`.
    Compatible,
    /// 安全: only `Encrypt`.
    Safe,
}

/// Posts user messages to a daemon's callback URL as WeChat does: signed query, the body
/// in the chosen mode; decrypts encrypted answers.
pub struct UserClient {
    pub url: String,
    pub token: String,
    pub crypto: Option<crate::wechat_callback::crypto::Crypto>,
    pub mode: CallbackMode,
    pub client: reqwest::Client,
}

impl UserClient {
    pub fn new(url: &str, token: &str, aes: Option<(&str, &str)>, mode: CallbackMode) -> Self {
        UserClient {
            url: url.to_string(),
            token: token.to_string(),
            crypto: aes.map(|(key, appid)| {
                crate::wechat_callback::crypto::Crypto::new(key, appid)
                    .expect("a valid EncodingAESKey")
            }),
            mode,
            client: reqwest::Client::new(),
        }
    }

    /// The signed URL (and body) for `xml`.
    pub fn request(&self, xml: &str, timestamp: i64) -> (String, String) {
        use crate::wechat_callback::reply::cdata;
        use crate::wechat_callback::signature::{msg_signature, signature};
        let ts = timestamp.to_string();
        let nonce = format!("{}", rand::random::<u32>());
        let sig = signature(&self.token, &ts, &nonce);
        let sep = if self.url.contains('?') { '&' } else { '?' };
        let base = format!(
            "{}{sep}signature={sig}&timestamp={ts}&nonce={nonce}&openid=oUser",
            self.url
        );
        match (self.mode, &self.crypto) {
            (CallbackMode::Plain, _) | (_, None) => (base, xml.to_string()),
            (mode, Some(c)) => {
                let enc = c.encrypt(xml);
                let ms = msg_signature(&self.token, &ts, &nonce, &enc);
                let body = if mode == CallbackMode::Safe {
                    format!(
                        "<xml><ToUserName>{}</ToUserName><Encrypt>{}</Encrypt></xml>",
                        cdata("gh_sandbox"),
                        cdata(&enc)
                    )
                } else {
                    let inner = xml.trim_end().strip_suffix("</xml>").unwrap_or(xml);
                    format!("{inner}<Encrypt>{}</Encrypt></xml>", cdata(&enc))
                };
                (format!("{base}&encrypt_type=aes&msg_signature={ms}"), body)
            }
        }
    }

    /// Posts `xml` now; the status and the answer (decrypted when it is an envelope).
    pub async fn send(&self, xml: &str) -> (StatusCode, String) {
        let (url, body) = self.request(xml, chrono::Utc::now().timestamp());
        self.post(&url, body).await
    }

    pub async fn post(&self, url: &str, body: String) -> (StatusCode, String) {
        let r = self
            .client
            .post(url)
            .header(header::CONTENT_TYPE, "text/xml")
            .body(body)
            .send()
            .await
            .expect("the callback answers");
        let status = r.status();
        let text = r.text().await.unwrap_or_default();
        if let (Some(c), true) = (&self.crypto, text.contains("<Encrypt>")) {
            let m = crate::wechat_callback::message::Message::parse(&text).expect("envelope XML");
            let enc = m.get("Encrypt").expect("Encrypt");
            let ms = crate::wechat_callback::signature::msg_signature(
                &self.token,
                m.get("TimeStamp").unwrap_or(""),
                m.get("Nonce").unwrap_or(""),
                enc,
            );
            assert_eq!(Some(ms.as_str()), m.get("MsgSignature"), "reply signature");
            return (status, c.decrypt(enc).expect("reply decrypts"));
        }
        (status, text)
    }
}

/// A user's text message, as WeChat pushes it.
pub fn text_message(openid: &str, content: &str, msg_id: u64) -> String {
    use crate::wechat_callback::reply::cdata;
    format!(
        "<xml><ToUserName>{}</ToUserName><FromUserName>{}</FromUserName><CreateTime>{}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content>{}</Content><MsgId>{msg_id}</MsgId></xml>",
        cdata("gh_sandbox"),
        cdata(openid),
        chrono::Utc::now().timestamp(),
        cdata(content)
    )
}

/// A user's event (`subscribe`, `CLICK` with `key`), as WeChat pushes it.
pub fn event_message(openid: &str, event: &str, key: Option<&str>, create_time: i64) -> String {
    use crate::wechat_callback::reply::cdata;
    format!(
        "<xml><ToUserName>{}</ToUserName><FromUserName>{}</FromUserName><CreateTime>{create_time}</CreateTime><MsgType><![CDATA[event]]></MsgType><Event>{}</Event>{}</xml>",
        cdata("gh_sandbox"),
        cdata(openid),
        cdata(event),
        key.map(|k| format!("<EventKey>{}</EventKey>", cdata(k))).unwrap_or_default()
    )
}
