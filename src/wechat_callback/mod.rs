//! The WeChat callback ("服务器配置" URL, issue 4): URL verification (GET) and pushes (POST)
//! in plain, compatible and safe mode, answered from what has been published.
//!
//! Owns: checking a request (signature, timestamp window, body size, XML without DTDs),
//! decrypting and encrypting (via `crypto`), routing a message to its answer (menu clicks
//! and the welcome from `[wechat_callback]` in config.toml, text -> full-text search),
//! answering WeChat's retries once (the dedupe rows in the store), and the 5-second window:
//! work over `reply_budget` answers `success` and sends its result as a customer-service
//! message. `PUBLISHJOBFINISH` is recorded for the publishing channel.
//! Leaves HTTP to `http/` (a thin handler), the index and dedupe SQL to the store, and the
//! token and API calls to `channel::wechat`.

pub mod cache;
pub mod config;
pub mod crypto;
pub mod menu_cli;
pub mod message;
pub mod reply;
pub mod search;
pub mod signature;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::Notify;

use crate::channel::wechat::{Wechat, WechatConfig};
use crate::config::{resolve_secret, Secret, Settings};
use crate::store::{
    MessageClaim, PublishedItem, SearchMatch, Store, StoreError, WechatPublishEvent,
};
use config::{ClickAction, WechatCallbackSettings};
use crypto::Crypto;
use message::{Message, XmlError};
use reply::Reply;

pub use signature::{signature, verify};

/// A claim without an answer for this long belonged to an instance that died.
const CLAIM_LEASE: Duration = Duration::from_secs(30);
/// How long a retry waits for the first request's answer before answering `success`.
const RETRY_WAIT: Duration = Duration::from_secs(3);
/// A message created this many seconds ago or more is taken for one of WeChat's retries
/// (WeChat retries after 5 s without an answer): its stored answer is looked for before
/// any work. A fresh message is answered first and stored in one write.
const RETRY_AGE_SECS: i64 = 3;
/// Cached answers per account at most.
const CACHE_CAPACITY: usize = 4096;

/// The query WeChat signs every callback request with.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Signed {
    #[serde(default)]
    pub signature: String,
    #[serde(default)]
    pub timestamp: String,
    #[serde(default)]
    pub nonce: String,
    pub echostr: Option<String>,
    pub encrypt_type: Option<String>,
    pub msg_signature: Option<String>,
    pub openid: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    /// Wrong signature or a timestamp outside the window: nothing was processed.
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("body over {0} bytes")]
    TooLarge(usize),
    #[error("unknown callback")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<XmlError> for CallbackError {
    fn from(e: XmlError) -> Self {
        CallbackError::BadRequest(e.to_string())
    }
}

/// One official account's callback.
pub struct Callback {
    channel: String,
    /// The department whose account this is: answers come only from its published items.
    department: String,
    appid: String,
    token: Secret,
    crypto: Option<Crypto>,
    settings: WechatCallbackSettings,
    store: Arc<dyn Store>,
    templates: minijinja::Environment<'static>,
    /// Customer-service messages; None when the AppSecret is not readable.
    api: Option<Arc<Wechat>>,
    /// Wakes the delivery worker (PUBLISHJOBFINISH).
    wake: Arc<Notify>,
    /// Menu lists and search replies while nothing new was published.
    cache: cache::ReplyCache,
}

/// The callbacks by channel name, and the channel that answers on the configured path.
#[derive(Clone, Default)]
pub struct Callbacks {
    pub by_channel: Arc<HashMap<String, Arc<Callback>>>,
    pub path: Arc<str>,
    pub default_channel: Arc<str>,
    pub max_body_bytes: usize,
}

impl Callbacks {
    /// One callback per WeChat channel; the configured one gets the EncodingAESKey.
    pub fn build(
        settings: &Settings,
        store: Arc<dyn Store>,
        wake: Arc<Notify>,
    ) -> anyhow::Result<Callbacks> {
        let cb = &settings.wechat_callback;
        let mut by_channel = HashMap::new();
        for (name, spec) in &settings.channels.channels {
            let crate::config::ChannelSpec::Wechat(cfg) = spec else {
                continue;
            };
            let aes_key = if *name == cb.channel {
                resolve_secret(
                    cb.encoding_aes_key_env.as_deref(),
                    cb.encoding_aes_key_file
                        .as_deref()
                        .map(|p| settings.resolve(p))
                        .as_deref(),
                )
                .map_err(|e| anyhow::anyhow!("[wechat_callback] EncodingAESKey：{e}"))?
            } else {
                None
            };
            let c = Callback::new(name, cfg, aes_key, settings, store.clone(), wake.clone())?;
            by_channel.insert(name.clone(), Arc::new(c));
        }
        Ok(Callbacks {
            by_channel: Arc::new(by_channel),
            path: cb.path.as_str().into(),
            default_channel: cb.channel.as_str().into(),
            max_body_bytes: cb.max_body_bytes,
        })
    }

    pub fn get(&self, channel: Option<&str>) -> Option<&Arc<Callback>> {
        self.by_channel
            .get(channel.unwrap_or(&self.default_channel))
    }
}

/// What a template of a list reply sees.
#[derive(Debug, Serialize)]
struct ListItem {
    title: String,
    date: String,
    url: Option<String>,
}

impl Callback {
    pub fn new(
        channel: &str,
        cfg: &WechatConfig,
        aes_key: Option<Secret>,
        settings: &Settings,
        store: Arc<dyn Store>,
        wake: Arc<Notify>,
    ) -> anyhow::Result<Callback> {
        let token = cfg
            .callback_token
            .read()
            .map_err(|e| anyhow::anyhow!("渠道 {channel}：回调 Token：{e}"))?;
        let crypto = aes_key
            .map(|k| Crypto::new(k.expose(), &cfg.appid))
            .transpose()
            .map_err(|e| anyhow::anyhow!("[wechat_callback] EncodingAESKey：{e}"))?;
        let api = match Wechat::new(channel, cfg.clone(), Some(store.clone())) {
            Ok(w) => Some(Arc::new(w)),
            Err(e) => {
                tracing::warn!(channel, error.message = %e, "WeChat API unavailable to the callback: slow answers cannot be sent as customer-service messages");
                None
            }
        };
        let cb = settings.wechat_callback.clone();
        let mut env = minijinja::Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        for name in [
            &cb.templates.welcome,
            &cb.templates.list,
            &cb.templates.not_found,
        ] {
            // The department's own template if it has one, else the top-level one.
            let path = settings.template_file(name);
            let source = std::fs::read_to_string(&path)
                .map_err(|e| anyhow::anyhow!("回复模板 {}：{e}", path.display()))?;
            env.add_template_owned(name.clone(), source)
                .map_err(|e| anyhow::anyhow!("回复模板 {}：{e}", path.display()))?;
        }
        let me = Callback {
            channel: channel.to_string(),
            department: settings.department.code.clone(),
            appid: cfg.appid.clone(),
            token,
            crypto,
            settings: cb,
            store,
            templates: env,
            api,
            wake,
            cache: cache::ReplyCache::new(settings.wechat_callback.cache_ttl, CACHE_CAPACITY),
        };
        // A broken template fails the start, not a user's question.
        me.render_list("最新公开", None, &[sample_item()])?;
        me.render_welcome()?;
        me.render_not_found("低保")?;
        Ok(me)
    }

    pub fn appid(&self) -> &str {
        &self.appid
    }

    /// The signature and the timestamp window; nothing is processed when either fails.
    fn check(&self, q: &Signed) -> Result<(), CallbackError> {
        if !signature::verify(self.token.expose(), &q.timestamp, &q.nonce, &q.signature) {
            return Err(CallbackError::Forbidden("签名错误".into()));
        }
        let ts: i64 = q
            .timestamp
            .parse()
            .map_err(|_| CallbackError::Forbidden("timestamp 不是数字".into()))?;
        let window = self.settings.timestamp_window.as_secs() as i64;
        if (Utc::now().timestamp() - ts).abs() > window {
            return Err(CallbackError::Forbidden(
                "timestamp 超出允许的时间窗".into(),
            ));
        }
        Ok(())
    }

    /// GET: the URL check; the raw `echostr` (plaintext in every mode for 公众号).
    pub fn echo(&self, q: &Signed) -> Result<String, CallbackError> {
        self.check(q)?;
        Ok(q.echostr.clone().unwrap_or_default())
    }

    /// POST: a push; the body to answer (reply XML, encrypted envelope or `success`).
    pub async fn push(self: &Arc<Self>, q: &Signed, body: &[u8]) -> Result<String, CallbackError> {
        if body.len() > self.settings.max_body_bytes {
            return Err(CallbackError::TooLarge(self.settings.max_body_bytes));
        }
        self.check(q)?;
        let (msg, encrypted) = open_push(self.crypto.as_ref(), self.token.expose(), q, body)?;
        let answer = self.answer(&msg).await?;
        match (&self.crypto, encrypted) {
            (Some(crypto), true) if answer != "success" => Ok(reply::encrypted_envelope(
                crypto,
                self.token.expose(),
                &answer,
                &q.timestamp,
                &q.nonce,
            )),
            _ => Ok(answer),
        }
    }

    /// Routes a decrypted message; the plain reply body.
    async fn answer(self: &Arc<Self>, msg: &Message) -> Result<String, CallbackError> {
        let event = msg.event().unwrap_or("");
        // WeChat always sends MsgType; an Event alone is still an event.
        let kind = match msg.msg_type() {
            Some(k) => k,
            None if !event.is_empty() => "event",
            None => return Err(XmlError::Missing("MsgType").into()),
        };
        match (kind, event) {
            ("event", "PUBLISHJOBFINISH") => self.publish_finished(msg).await,
            ("event", "MASSSENDJOBFINISH") => self.mass_send_finished(msg).await,
            ("text", _) => {
                let key = format!("msg:{}", msg.require("MsgId")?);
                self.once(msg, key).await
            }
            ("event", "subscribe" | "CLICK") => {
                let key = format!(
                    "ev:{}:{}:{event}",
                    msg.require("FromUserName")?,
                    msg.require("CreateTime")?
                );
                self.once(msg, key).await
            }
            _ => Ok("success".into()),
        }
    }

    async fn publish_finished(&self, msg: &Message) -> Result<String, CallbackError> {
        let Some(event) = publish_event(&self.appid, msg) else {
            return Err(CallbackError::BadRequest(
                "PUBLISHJOBFINISH 缺少 publish_id 或 publish_status".into(),
            ));
        };
        let new = self
            .store
            .record_wechat_publish_event(&event, Utc::now())
            .await?;
        tracing::info!(channel = %self.channel, publish_id = %event.publish_id, status = event.publish_status, new, "PUBLISHJOBFINISH received");
        if new {
            self.wake.notify_one();
        }
        Ok("success".into())
    }

    /// WeChat's report on a mass send, kept for the delivery that made it (by msg_id).
    async fn mass_send_finished(&self, msg: &Message) -> Result<String, CallbackError> {
        let Some(result) = mass_result(&self.appid, msg) else {
            return Err(CallbackError::BadRequest(
                "MASSSENDJOBFINISH 缺少 MsgID 或 Status".into(),
            ));
        };
        let new = self
            .store
            .record_wechat_mass_result(&result, Utc::now())
            .await?;
        if result.status == "send success" {
            tracing::info!(channel = %self.channel, msg_id = %result.msg_id, sent = ?result.sent_count, errors = ?result.error_count, new, "MASSSENDJOBFINISH received: 群发成功");
        } else {
            tracing::warn!(channel = %self.channel, msg_id = %result.msg_id, status = %result.status, cause = %crate::channel::wechat::mass_status_text(&result.status), new, "MASSSENDJOBFINISH received: 群发未成功");
        }
        Ok("success".into())
    }

    /// Does the work of a message once over every retry and instance. A fresh message is
    /// answered first and its answer stored in one (grouped) write, which also settles a
    /// race with a retry on another instance: the first stored answer is the one given.
    /// A likely retry looks for the stored answer before doing anything.
    async fn once(self: &Arc<Self>, msg: &Message, key: String) -> Result<String, CallbackError> {
        let to = msg.require("FromUserName")?.to_string();
        let from = msg.get("ToUserName").unwrap_or_default().to_string();
        let retry = likely_retry(msg, Utc::now().timestamp());
        if retry {
            if let Some(answer) = self.wait_for_claim(&key).await? {
                return Ok(answer);
            }
        }
        // A reply in the cache needs no task and no deadline (the common case in a burst).
        let (done, work) = match self.cached_reply(msg) {
            Some(reply) => (Ok(Ok(Ok(reply))), None),
            None => {
                let me = self.clone();
                let m = msg.clone();
                let mut task = tokio::spawn(async move { me.work(&m).await });
                let done = tokio::time::timeout(self.settings.reply_budget, &mut task).await;
                (done, Some(task))
            }
        };
        match done {
            Ok(done) => {
                let reply = done
                    .map_err(|e| StoreError::Other(anyhow::anyhow!("reply task failed: {e}")))??;
                let xml = reply.to_xml(&to, &from, Utc::now().timestamp());
                if retry {
                    self.store
                        .answer_wechat_message(&self.appid, &key, &xml, Utc::now())
                        .await?;
                    return Ok(xml);
                }
                let given = self
                    .store
                    .record_wechat_answer(&self.appid, &key, &xml, Utc::now(), CLAIM_LEASE)
                    .await?;
                Ok(given.unwrap_or_else(|| "success".into()))
            }
            Err(_) => {
                if !retry {
                    match self
                        .store
                        .claim_wechat_message(&self.appid, &key, Utc::now(), CLAIM_LEASE)
                        .await?
                    {
                        MessageClaim::Answered(r) => return Ok(r),
                        MessageClaim::InProgress => return Ok("success".into()),
                        MessageClaim::New => {}
                    }
                }
                tracing::info!(channel = %self.channel, key, budget_ms = self.settings.reply_budget.as_millis() as u64, "answer over budget: replying success, result follows as a customer-service message");
                self.store
                    .answer_wechat_message(&self.appid, &key, "success", Utc::now())
                    .await?;
                let me = self.clone();
                let work = work.expect("only a task can run over budget");
                tokio::spawn(async move {
                    match work.await {
                        Ok(Ok(reply)) => me.send_custom(&to, &reply).await,
                        Ok(Err(e)) => {
                            tracing::error!(error.message = %e, error.cause_chain = ?e, "slow WeChat answer failed")
                        }
                        Err(e) => {
                            tracing::error!(error.message = %e, "slow WeChat answer panicked")
                        }
                    }
                });
                Ok("success".into())
            }
        }
    }

    /// Claims a likely retry: Some(answer) when it was answered (or another request keeps
    /// working on it past `RETRY_WAIT`: `success`), None when this request holds the
    /// claim and must do the work.
    async fn wait_for_claim(&self, key: &str) -> Result<Option<String>, CallbackError> {
        let started = tokio::time::Instant::now();
        loop {
            match self
                .store
                .claim_wechat_message(&self.appid, key, Utc::now(), CLAIM_LEASE)
                .await?
            {
                MessageClaim::Answered(r) => {
                    tracing::debug!(channel = %self.channel, key, "WeChat retry answered from the store");
                    return Ok(Some(r));
                }
                MessageClaim::InProgress if started.elapsed() < RETRY_WAIT => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                MessageClaim::InProgress => return Ok(Some("success".into())),
                MessageClaim::New => return Ok(None),
            }
        }
    }

    /// The answer to a message (the part that may be slow).
    async fn work(&self, msg: &Message) -> Result<Reply, CallbackError> {
        if msg.msg_type() == Some("text") {
            let q = msg.get("Content").unwrap_or("").trim();
            return self.cached(cache_key(msg), self.search(q)).await;
        }
        match msg.event() {
            Some("subscribe") => Ok(Reply::Text {
                content: self.render_welcome()?,
            }),
            Some("CLICK") => {
                let key = msg.get("EventKey").unwrap_or("");
                self.cached(cache_key(msg), self.click(key)).await
            }
            _ => Ok(Reply::Success),
        }
    }

    /// The cached answer to `msg`, if it is a search or a menu click answered before
    /// (under the current published generation).
    fn cached_reply(&self, msg: &Message) -> Option<Reply> {
        self.cache
            .get(&cache_key(msg)?, self.store.published_generation())
    }

    /// The answer `compute` gives, reused while nothing new was published, and computed
    /// once for every request that asks while it is being computed (see `cache`).
    async fn cached(
        &self,
        key: Option<String>,
        compute: impl std::future::Future<Output = Result<Reply, CallbackError>>,
    ) -> Result<Reply, CallbackError> {
        let Some(key) = key else {
            return compute.await;
        };
        let generation = self.store.published_generation();
        self.cache.get_or_compute(&key, generation, compute).await
    }

    /// A menu click's answer.
    async fn click(&self, key: &str) -> Result<Reply, CallbackError> {
        let n = self.settings.list_size;
        match self.settings.click(key) {
            Some(ClickAction::Latest { heading, count }) => {
                let items = self
                    .store
                    .latest_published(&self.department, None, count.unwrap_or(n))
                    .await?;
                Ok(self.list_reply(&heading, None, &items)?)
            }
            Some(ClickAction::Category {
                heading,
                category,
                count,
            }) => {
                let items = self
                    .store
                    .latest_published(&self.department, Some(&category), count.unwrap_or(n))
                    .await?;
                Ok(self.list_reply(&heading, None, &items)?)
            }
            Some(ClickAction::Text(t)) => Ok(Reply::Text { content: t }),
            None => Ok(Reply::Success),
        }
    }

    /// Full-text search over published disclosures.
    pub async fn search(&self, query: &str) -> Result<Reply, CallbackError> {
        let q = query.trim();
        let Some(query) = search::SearchQuery::parse(q) else {
            return Ok(Reply::Text {
                content: self.render_not_found(q)?,
            });
        };
        self.store.refresh_search_index().await?;
        let n = self.settings.list_size;
        let mut items = self
            .store
            .search_published(&self.department, &query, SearchMatch::All, n)
            .await?;
        if items.is_empty() && query.tokens().len() > 1 {
            items = self
                .store
                .search_published(&self.department, &query, SearchMatch::Any, n)
                .await?;
        }
        if items.is_empty() {
            return Ok(Reply::Text {
                content: self.render_not_found(q)?,
            });
        }
        let heading = format!("“{}”的查询结果", reply::cut_at_char_boundary(q, 60));
        self.list_reply(&heading, Some(q), &items)
    }

    fn list_reply(
        &self,
        heading: &str,
        query: Option<&str>,
        items: &[PublishedItem],
    ) -> Result<Reply, CallbackError> {
        if items.is_empty() {
            return Ok(Reply::Text {
                content: format!("{heading}\n暂无已公开的信息。"),
            });
        }
        let items: Vec<ListItem> = items.iter().map(list_item).collect();
        Ok(Reply::Text {
            content: self.render_list(heading, query, &items)?,
        })
    }

    fn render(&self, name: &str, ctx: serde_json::Value) -> Result<String, CallbackError> {
        self.templates
            .get_template(name)
            .and_then(|t| t.render(ctx))
            .map(|s| s.trim().to_string())
            .map_err(|e| {
                CallbackError::Store(StoreError::Other(anyhow::anyhow!("回复模板 {name}：{e}")))
            })
    }

    fn render_list(
        &self,
        heading: &str,
        query: Option<&str>,
        items: &[ListItem],
    ) -> Result<String, CallbackError> {
        self.render(
            &self.settings.templates.list,
            json!({"heading": heading, "query": query, "items": items}),
        )
    }

    fn render_welcome(&self) -> Result<String, CallbackError> {
        self.render(
            &self.settings.templates.welcome,
            json!({"options": self.settings.option_names()}),
        )
    }

    fn render_not_found(&self, query: &str) -> Result<String, CallbackError> {
        self.render(
            &self.settings.templates.not_found,
            json!({"query": query, "options": self.settings.option_names()}),
        )
    }

    /// Sends a late answer through `message/custom/send` (wechat-protocol.md §8).
    async fn send_custom(&self, openid: &str, reply: &Reply) {
        let body = match reply {
            Reply::Success => return,
            Reply::Text { content } => json!({
                "touser": openid, "msgtype": "text",
                "text": {"content": reply::fit_text(content, reply::TEXT_MAX_BYTES)}
            }),
            Reply::News {
                title,
                description,
                url,
                pic_url,
            } => json!({
                "touser": openid, "msgtype": "news",
                "news": {"articles": [{"title": title, "description": description, "url": url,
                                       "picurl": pic_url.as_deref().unwrap_or("")}]}
            }),
        };
        let Some(api) = &self.api else {
            tracing::warn!(channel = %self.channel, "late answer dropped: no WeChat API client");
            return;
        };
        match api.post_api("/cgi-bin/message/custom/send", &body).await {
            Ok(_) => {
                tracing::info!(channel = %self.channel, "late answer sent as a customer-service message")
            }
            Err(e) => {
                tracing::warn!(channel = %self.channel, errcode = e.errcode, error.message = %e, "customer-service message failed")
            }
        }
    }
}

/// Forgets the answers kept for WeChat's retries once they are older than `keep`: at
/// start and every `every` until `stop`. A failure only logs (the next round tries again).
pub async fn purge_old_answers(
    store: Arc<dyn Store>,
    keep: Duration,
    every: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let before = Utc::now() - chrono::Duration::from_std(keep).unwrap_or_default();
        match store.purge_wechat_messages(before).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(purged = n, "forgot old WeChat answers"),
            Err(e) => {
                tracing::warn!(error.message = %e, "forgetting old WeChat answers failed")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// The message inside a push body whose query signature and timestamp were already
/// checked: DTDs refused, the XML parsed, and in 兼容/安全 mode (`encrypt_type=aes`) the
/// `msg_signature` over `Encrypt` verified, decrypted, the appid checked and the inner XML
/// parsed. Pure (the fuzz target `decrypt_path` drives it); true when the push was encrypted.
pub fn open_push(
    crypto: Option<&Crypto>,
    token: &str,
    q: &Signed,
    body: &[u8],
) -> Result<(Message, bool), CallbackError> {
    if message::has_doctype(body) {
        return Err(XmlError::Doctype.into());
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| CallbackError::BadRequest("请求体不是 UTF-8".into()))?;
    let outer = Message::parse(text)?;
    if q.encrypt_type.as_deref() != Some("aes") {
        return Ok((outer, false));
    }
    let crypto = crypto
        .ok_or_else(|| CallbackError::BadRequest("收到加密消息，但未配置 EncodingAESKey".into()))?;
    let enc = outer.require("Encrypt")?;
    let given = q.msg_signature.as_deref().unwrap_or("");
    if !signature::verify_msg(token, &q.timestamp, &q.nonce, enc, given) {
        return Err(CallbackError::Forbidden("msg_signature 错误".into()));
    }
    let plain = crypto
        .decrypt(enc)
        .map_err(|e| CallbackError::BadRequest(format!("解密失败：{e}")))?;
    Ok((Message::parse(&plain)?, true))
}

/// Where the answer to `msg` is cached: searches by their text, menu clicks by their key;
/// other messages are not cached.
fn cache_key(msg: &Message) -> Option<String> {
    if msg.msg_type() == Some("text") {
        Some(format!("text:{}", msg.get("Content").unwrap_or("").trim()))
    } else if msg.event() == Some("CLICK") {
        Some(format!("click:{}", msg.get("EventKey").unwrap_or("")))
    } else {
        None
    }
}

/// Whether `msg` is probably one of WeChat's retries (see `RETRY_AGE_SECS`); a message
/// without a readable CreateTime is treated as one (its stored answer is looked for).
fn likely_retry(msg: &Message, now: i64) -> bool {
    match msg
        .get("CreateTime")
        .and_then(|t| t.trim().parse::<i64>().ok())
    {
        Some(created) => now - created >= RETRY_AGE_SECS,
        None => true,
    }
}

fn list_item(i: &PublishedItem) -> ListItem {
    ListItem {
        title: i.title.clone(),
        date: i
            .publish_date
            .map(|d| d.format("%Y-%m-%d").to_string())
            .or_else(|| i.delivered_at.map(|t| t.format("%Y-%m-%d").to_string()))
            .unwrap_or_default(),
        url: i.url.clone(),
    }
}

fn sample_item() -> ListItem {
    ListItem {
        title: "关于2017年第一季度城乡低保资金发放情况的公示".into(),
        date: "2017-04-07".into(),
        url: Some("https://www.example.gov.cn/xxgk/1.html".into()),
    }
}

/// The PUBLISHJOBFINISH event in a push, if that is what it is.
pub fn publish_event(appid: &str, m: &Message) -> Option<WechatPublishEvent> {
    if m.event() != Some("PUBLISHJOBFINISH") {
        return None;
    }
    Some(WechatPublishEvent {
        appid: appid.to_string(),
        publish_id: m.get("publish_id")?.to_string(),
        publish_status: m.get("publish_status")?.parse().ok()?,
        article_id: m.get("article_id").map(str::to_string),
        article_url: m.get("article_url").map(str::to_string),
        fail_idx: m.all("fail_idx").filter_map(|v| v.parse().ok()).collect(),
        times_received: 1,
    })
}

/// The MASSSENDJOBFINISH event in a push, if that is what it is (MsgID with a capital D).
pub fn mass_result(appid: &str, m: &Message) -> Option<crate::store::WechatMassResult> {
    if m.event() != Some("MASSSENDJOBFINISH") {
        return None;
    }
    let count = |f: &str| m.get(f).and_then(|v| v.trim().parse::<i64>().ok());
    Some(crate::store::WechatMassResult {
        appid: appid.to_string(),
        msg_id: m
            .get("MsgID")
            .or_else(|| m.get("MsgId"))?
            .trim()
            .to_string(),
        status: m.get("Status")?.trim().to_string(),
        total_count: count("TotalCount"),
        filter_count: count("FilterCount"),
        sent_count: count("SentCount"),
        error_count: count("ErrorCount"),
        received_at: None,
        times_received: 1,
    })
}

/// The PUBLISHJOBFINISH event in a raw push (plain XML), if that is what it is.
pub fn parse_publish_event(appid: &str, xml: &str) -> Option<WechatPublishEvent> {
    publish_event(appid, &Message::parse(xml).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mass_send_report_sample_parses() {
        let xml = "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[oU]]></FromUserName><CreateTime>1394524295</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[MASSSENDJOBFINISH]]></Event><MsgID>1000001625</MsgID><Status><![CDATA[err(30003)]]></Status><TotalCount>0</TotalCount><FilterCount>0</FilterCount><SentCount>0</SentCount><ErrorCount>0</ErrorCount><CopyrightCheckResult><Count>2</Count><ResultList><item><ArticleIdx>1</ArticleIdx><AuditState>2</AuditState></item></ResultList><CheckState>2</CheckState></CopyrightCheckResult></xml>";
        let r = mass_result("wx1", &Message::parse(xml).unwrap()).unwrap();
        assert_eq!(r.msg_id, "1000001625");
        assert_eq!(r.status, "err(30003)");
        assert_eq!(r.sent_count, Some(0));
        let no_id =
            "<xml><Event><![CDATA[MASSSENDJOBFINISH]]></Event><Status>send success</Status></xml>";
        assert_eq!(mass_result("wx1", &Message::parse(no_id).unwrap()), None);
    }

    #[test]
    fn the_official_publish_event_sample_parses() {
        let xml = "<xml><ToUserName><![CDATA[gh_4d00ed8d6399]]></ToUserName><FromUserName><![CDATA[oV5CrjpxgaGXNHIQigzNlgLTnwic]]></FromUserName><CreateTime>1481013459</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[PUBLISHJOBFINISH]]></Event><PublishEventInfo><publish_id>2247503051</publish_id><publish_status>0</publish_status><article_id><![CDATA[b5O2OUs25HBxRceL7hfReg-U9QGeq9zQjiDvyWP4Hq4]]></article_id><article_detail><count>1</count><item><idx>1</idx><article_url><![CDATA[ARTICLE_URL]]></article_url></item></article_detail></PublishEventInfo></xml>";
        let e = parse_publish_event("wx1", xml).unwrap();
        assert_eq!(e.publish_id, "2247503051");
        assert_eq!(e.publish_status, 0);
        assert_eq!(e.article_url.as_deref(), Some("ARTICLE_URL"));
        let failed = "<xml><Event><![CDATA[PUBLISHJOBFINISH]]></Event><PublishEventInfo><publish_id>1</publish_id><publish_status>2</publish_status><fail_idx>1</fail_idx><fail_idx>2</fail_idx></PublishEventInfo></xml>";
        assert_eq!(parse_publish_event("wx1", failed).unwrap().fail_idx, [1, 2]);
    }
}
