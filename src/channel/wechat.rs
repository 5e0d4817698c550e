//! The WeChat official-account channel (公众号): publishes a disclosure as an article through
//! `draft/add` + `freepublish/submit`, exactly once per revision.
//!
//! Owns: its config (`channels/<name>.toml`, kind `wechat`), the access_token kept in the
//! store (one per account for every instance on the database, refreshed single-flight),
//! the errcode table (wechat-protocol.md §9), the content rules (title ≤ 32 or the approved
//! short title, digest ≤ 128, content < 20 000 chars and < 1 MB, scripts stripped) and the
//! per-delivery state machine, persisted through [`Progress`] before every remote step:
//!
//! ```text
//! start ─body images (uploadimg, each saved)─▶ cover ─▶ draft/add ─save media_id─▶ [submitting] ─submit─▶ save publish_id ─▶ Pending
//!   Pending ─(PUBLISHJOBFINISH in the store | freepublish/get)─▶ 0: delete the old revision's
//!   article ─▶ Done(article_id, url) · 1: Pending again · 2/3/4/5/6: dead, reason in words
//!   [submitting] found on resume (crash or timeout mid-submit): draft/get — draft still there
//!   ⇒ submit never happened, submit; draft consumed ⇒ find it in freepublish/batchget ⇒ Done;
//!   not found yet ⇒ Pending (never a blind second submit)
//! withdraw: freepublish/delete every article this channel published for the disclosure
//! mass send (category in mass_send_categories), after Done's deletions: its own draft/add
//!   (the published draft is consumed) ─save─▶ sendall(clientmsgid = f(id:rev:channel))
//!   ─save msg_id─▶ Done · 45065 = already sent (its msg_id) · 40007 = draft used by a
//!   send whose answer was lost: new draft, same clientmsgid · 45028 & co: dead for the
//!   operator, whose retry resumes at the mass send
//! ```
//!
//! The body HTML is cleaned by [`content`] (ammonia's allow-list) and its images point at
//! the `media/uploadimg` copies (cached by SHA-256 in the store; fetch 4xx = permanent).
//!
//! It knows nothing of templates or retries: the worker renders the article body and decides
//! when to come back.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{Datelike, TimeZone, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub mod content;

use std::collections::BTreeMap;

use super::{Channel, DeliveryError, DeliveryRequest, FailureClass, Progress, Receipt, Sent};
use crate::config::{Secret, SecretRef};
use crate::domain::{Action, ChannelKind, DeliveryStatus};
use crate::store::{DeliveryFilter, Store, WechatMedia, WechatPublishEvent};

/// The built-in cover (a plain red 360×200 PNG) used when `cover_image` is not configured.
static DEFAULT_COVER: &[u8] = include_bytes!("../../templates/wechat/cover.png");

/// WeChat's article limits (wechat-protocol.md §6.3).
pub const TITLE_MAX_CHARS: usize = 32;
pub const AUTHOR_MAX_CHARS: usize = 16;
pub const DIGEST_MAX_CHARS: usize = 128;
pub const CONTENT_MAX_CHARS: usize = 20_000;
pub const CONTENT_MAX_BYTES: usize = 1024 * 1024;
/// Refresh a token this long before it expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(300);
/// How many pages (20 each) of the publish record an interrupted submit is looked for in.
const RECONCILE_MAX_PAGES: usize = 500;
/// How long one instance may hold the token refresh lock.
const TOKEN_LOCK_LEASE: Duration = Duration::from_secs(30);

/// How the access_token is obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenMode {
    /// `POST /cgi-bin/stable_token` (non-forced): the platform's current token.
    StableToken,
    /// `GET /cgi-bin/token`: every call issues a new token.
    Token,
}

/// `channels/<name>.toml` with `kind = "wechat"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct WechatFile {
    appid: String,
    secret_env: Option<String>,
    secret_file: Option<PathBuf>,
    #[serde(default = "default_api_base")]
    api_base: String,
    #[serde(default = "default_token_mode")]
    token_mode: TokenMode,
    callback_token_env: Option<String>,
    callback_token_file: Option<PathBuf>,
    #[serde(default = "default_template")]
    template: String,
    cover_image: Option<PathBuf>,
    author: Option<String>,
    #[serde(default)]
    after: Vec<String>,
    #[serde(default = "default_timeout", with = "humantime_serde")]
    timeout: Duration,
    #[serde(default = "default_check_every", with = "humantime_serde")]
    check_every: Duration,
    #[serde(default = "default_give_up_after", with = "humantime_serde")]
    give_up_after: Duration,
    #[serde(default = "default_stale_warn_days")]
    stale_warn_days: u32,
    #[serde(default = "default_stale_critical_days")]
    stale_critical_days: u32,
    #[serde(default)]
    mass_send_categories: Vec<String>,
}

fn default_api_base() -> String {
    "https://api.weixin.qq.com".into()
}
fn default_token_mode() -> TokenMode {
    TokenMode::StableToken
}
fn default_template() -> String {
    "wechat/article.html.j2".into()
}
fn default_timeout() -> Duration {
    Duration::from_secs(15)
}
fn default_check_every() -> Duration {
    Duration::from_secs(30)
}
fn default_give_up_after() -> Duration {
    Duration::from_secs(24 * 3600)
}
fn default_stale_warn_days() -> u32 {
    10
}
fn default_stale_critical_days() -> u32 {
    12
}

#[derive(Debug, Clone)]
pub struct WechatConfig {
    pub appid: String,
    pub secret: SecretRef,
    pub api_base: String,
    pub token_mode: TokenMode,
    /// The "服务器配置" Token that signs callback pushes.
    pub callback_token: SecretRef,
    pub template: String,
    pub cover_image: Option<PathBuf>,
    /// Shown as the article's author (≤ 16 characters); default: none.
    pub author: Option<String>,
    /// Channels that must have delivered first; the first one's URL becomes 阅读原文.
    pub after: Vec<String>,
    pub timeout: Duration,
    /// How often a submitted publish is checked when no event came.
    pub check_every: Duration,
    /// A publish whose outcome is unknown this long after submitting goes to the operator.
    pub give_up_after: Duration,
    pub stale_warn_days: u32,
    pub stale_critical_days: u32,
    /// Categories whose disclosures are also mass-sent (群发) to every follower after the
    /// article is published (urgent notices). Empty: publish only.
    pub mass_send_categories: Vec<String>,
}

impl WechatConfig {
    /// Reads the table of a channel file (without `kind`); every problem at once.
    pub fn from_table(dir: &Path, table: toml::Table) -> Result<WechatConfig, Vec<String>> {
        let f: WechatFile = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| vec![e.message().to_string()])?;
        let mut errs = Vec::new();
        if !f.appid.starts_with("wx") {
            errs.push(format!("appid = {:?}：公众号 AppID 以 wx 开头", f.appid));
        }
        if f.secret_env.is_none() && f.secret_file.is_none() {
            errs.push("需要 secret_env（存放 AppSecret 的环境变量名）或 secret_file".into());
        }
        if !(f.api_base.starts_with("http://") || f.api_base.starts_with("https://")) {
            errs.push(format!(
                "api_base = {:?}：应以 http:// 或 https:// 开头",
                f.api_base
            ));
        }
        if f.author
            .as_ref()
            .is_some_and(|a| a.chars().count() > AUTHOR_MAX_CHARS)
        {
            errs.push(format!("author：微信作者名最多 {AUTHOR_MAX_CHARS} 个字"));
        }
        if f.stale_warn_days == 0 || f.stale_critical_days < f.stale_warn_days {
            errs.push("stale_warn_days 至少为 1，stale_critical_days 不小于它".into());
        }
        if !errs.is_empty() {
            return Err(errs);
        }
        let rel = |p: PathBuf| if p.is_absolute() { p } else { dir.join(p) };
        Ok(WechatConfig {
            appid: f.appid,
            secret: SecretRef {
                env: f.secret_env,
                file: f.secret_file.map(rel),
            },
            api_base: f.api_base.trim_end_matches('/').to_string(),
            token_mode: f.token_mode,
            callback_token: SecretRef {
                env: f.callback_token_env,
                file: f.callback_token_file.map(rel),
            },
            template: f.template,
            cover_image: f.cover_image.map(rel),
            author: f.author,
            after: f.after,
            timeout: f.timeout,
            check_every: f.check_every,
            give_up_after: f.give_up_after,
            stale_warn_days: f.stale_warn_days,
            stale_critical_days: f.stale_critical_days,
            mass_send_categories: f.mass_send_categories,
        })
    }
}

// ---------------------------------------------------------------------------------------
// Errcodes

/// What to do about a WeChat errcode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrAction {
    /// The token is invalid or expired: refresh once and replay the call in this attempt.
    RefreshToken,
    /// Transient: try again with backoff.
    Retry,
    /// A per-minute limit: try again after at least a minute.
    RetryAfterMinute,
    /// The daily quota is used up: wait for the next window, never hammer.
    WaitQuota,
    /// Needs a person (IP whitelist, permissions, credentials, content): dead at once.
    Permanent,
    /// The thing to remove is not there (already deleted): treat as done.
    AlreadyGone,
}

/// The errcode table (wechat-protocol.md §9 and §5 token-endpoint codes): the action and
/// the operator's message. `None` for codes we do not know: callers fail safe.
pub fn errcode_action(code: i64) -> Option<(ErrAction, &'static str)> {
    use ErrAction::*;
    Some(match code {
        -1 => (Retry, "微信系统繁忙"),
        40001 => (RefreshToken, "access_token 无效或不是最新"),
        40014 => (RefreshToken, "access_token 不合法"),
        42001 => (RefreshToken, "access_token 已过期"),
        40002 => (Permanent, "参数不合法（grant_type 或请求参数）"),
        40003 => (Permanent, "openid 不合法"),
        40004 | 40005 | 40006 | 40009 => (Permanent, "媒体文件类型或大小不合法（封面须为 jpg/png，正文图片小于 1MB）"),
        40007 => (Permanent, "media_id 不合法（素材或草稿不存在或已被使用）"),
        40013 => (Permanent, "AppID 无效：请核对渠道配置中的 appid 与公众平台「设置与开发 → 基本配置」一致"),
        40125 => (Permanent, "AppSecret 无效：请在公众平台「设置与开发 → 基本配置」重置并更新渠道密钥"),
        40243 => (Permanent, "AppSecret 已被冻结：请在公众平台解冻或重置 AppSecret"),
        40016..=40027 | 40054 | 40055 | 65316 => (Permanent, "自定义菜单参数不合法"),
        40033 => (Permanent, "请求含 \\uxxxx 转义字符（程序缺陷：JSON 必须以 UTF-8 原文发送）"),
        40164 => (Permanent, "调用接口的 IP 不在公众号的 IP 白名单中：请在公众平台「设置与开发 → 基本配置 → IP 白名单」加入本服务器的出口 IP，然后手动重试"),
        41001 => (Permanent, "缺少 access_token（程序缺陷）"),
        41002 => (Permanent, "缺少 appid：请检查渠道配置"),
        41004 => (Permanent, "缺少 AppSecret：请检查渠道配置的 secret_env / secret_file"),
        41039 => (Permanent, "阅读原文链接（content_source_url）不合法"),
        43002 | 44002 | 47001 => (Permanent, "请求格式错误（程序缺陷）"),
        43004 | 48002 | 50005 => (Permanent, "用户未关注或拒收消息"),
        45002 => (Permanent, "正文超过微信长度限制（少于 2 万字且小于 1MB）"),
        45003 => (Permanent, "标题超过微信长度限制（32 字）"),
        45004 => (Permanent, "摘要超过微信长度限制（128 字）"),
        45110 => (Permanent, "作者名超过微信长度限制（16 字）"),
        45008 => (Permanent, "图文数量超过限制"),
        45009 => (WaitQuota, "接口今日调用次数已达上限"),
        45011 => (RetryAfterMinute, "接口每分钟调用次数已达上限"),
        45015 | 45047 => (Permanent, "客服消息窗口已关闭或次数已用完"),
        45028 => (WaitQuota, "群发配额已用完"),
        45064 => (Permanent, "菜单使用了未关联的小程序"),
        45065 => (AlreadyGone, "24 小时内已用同一 clientmsgid 群发过"),
        45066 => (RetryAfterMinute, "同一 clientmsgid 重试过快"),
        45067 => (Permanent, "clientmsgid 过长"),
        45166 => (Permanent, "正文内容不合法：请检查正文 HTML"),
        48001 => (Permanent, "公众号没有该接口权限：请确认公众号已完成微信认证，并在公众平台「设置与开发 → 接口权限」中开通发布能力"),
        48004 => (Permanent, "该接口已被封禁：请登录公众平台查看违规通知"),
        48006 => (Permanent, "本月清零配额次数已用完"),
        50001 => (Permanent, "公众号未获得该接口授权：请在公众平台检查接口权限"),
        50002 => (Permanent, "用户受限"),
        50004 => (Permanent, "禁止调用获取 access_token 接口：请登录公众平台查看"),
        50007 => (Permanent, "公众号已冻结：请登录公众平台处理"),
        53503 => (Permanent, "草稿未通过发布检查：请修改内容后以新版本提交"),
        53504 => (Permanent, "需前往公众平台官网使用该草稿：请在公众平台手动发表"),
        53505 => (Permanent, "需在公众平台手动保存草稿后再发表"),
        53600 => (AlreadyGone, "文章不存在（article_id 无效或已删除）"),
        88000 => (Permanent, "公众号没有留言权限：请关闭留言设置"),
        89503 => (RetryAfterMinute, "此 IP 调用需要管理员确认：请管理员在公众平台确认"),
        89506 => (WaitQuota, "管理员拒绝了此 IP 的调用（24 小时内不能再调用）"),
        89507 => (WaitQuota, "管理员拒绝了此 IP 的调用（1 小时内不能再调用）"),
        _ => return None,
    })
}

/// Why a call failed.
#[derive(Debug)]
enum CallError {
    /// WeChat answered with an errcode.
    Code {
        code: i64,
        errmsg: String,
        /// The whole answer (45065 carries the earlier `msg_id`).
        body: Value,
    },
    /// No (usable) answer: the call may or may not have been carried out.
    Transport { detail: String },
}

/// Whether a call changes something on WeChat (a blind retry could duplicate it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Read,
    Mutation,
}

/// The delivery's progress, as saved between attempts.
#[derive(Debug, Clone, Default, serde::Serialize, Deserialize)]
#[serde(default)]
struct State {
    thumb_media_id: Option<String>,
    draft_media_id: Option<String>,
    /// Set before `freepublish/submit` is sent, cleared when WeChat said no: if found set
    /// on resume, the submit may have happened.
    submitting: bool,
    /// When the last `freepublish/submit` was sent (set with `submitting`): how far back
    /// the publish record must be searched when the submit's answer was lost.
    submit_started_at: Option<chrono::DateTime<Utc>>,
    publish_id: Option<String>,
    submitted_at: Option<chrono::DateTime<Utc>>,
    /// Articles of earlier revisions deleted after this one was published.
    old_deleted: Vec<String>,
    article_id: Option<String>,
    article_url: Option<String>,
    /// Body images uploaded so far: the `src` in the rendered HTML → the WeChat copy's URL.
    images: BTreeMap<String, String>,
    /// Mass send (群发): its own draft (a published draft is consumed by the publish),
    /// then the `msg_id` once `message/mass/sendall` accepted it.
    mass_draft_media_id: Option<String>,
    mass_msg_id: Option<String>,
}

pub struct Wechat {
    name: String,
    cfg: WechatConfig,
    secret: Secret,
    store: Option<Arc<dyn Store>>,
    client: reqwest::Client,
    /// Who holds the token refresh lock in the store.
    holder: String,
    /// In-process single flight of token refreshes.
    refresh: tokio::sync::Mutex<()>,
    cover: Vec<u8>,
    /// In-process single flight of the cover upload: concurrent first attempts wait for
    /// one upload instead of each uploading the same image.
    cover_upload: tokio::sync::Mutex<()>,
}

impl Wechat {
    /// Builds the client, reads the secret and the cover; no network I/O.
    pub fn new(
        name: &str,
        cfg: WechatConfig,
        store: Option<Arc<dyn Store>>,
    ) -> anyhow::Result<Self> {
        let secret = cfg
            .secret
            .read()
            .map_err(|e| anyhow::anyhow!("渠道 {name}：AppSecret：{e}"))?;
        let cover = match &cfg.cover_image {
            Some(p) => std::fs::read(p)
                .map_err(|e| anyhow::anyhow!("渠道 {name}：封面图片 {}：{e}", p.display()))?,
            None => DEFAULT_COVER.to_vec(),
        };
        let client = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("gongkai/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Wechat {
            name: name.to_string(),
            cfg,
            secret,
            store,
            client,
            holder: format!("{name}-{}", uuid::Uuid::new_v4().simple()),
            refresh: tokio::sync::Mutex::new(()),
            cover,
            cover_upload: tokio::sync::Mutex::new(()),
        })
    }

    pub fn config(&self) -> &WechatConfig {
        &self.cfg
    }

    fn store(&self) -> Result<&Arc<dyn Store>, DeliveryError> {
        self.store.as_ref().ok_or_else(|| {
            DeliveryError::permanent(format!(
                "渠道 {}：未连接台账，无法保存 access_token（程序缺陷）",
                self.name
            ))
        })
    }

    // ---- tokens ----

    /// A valid token: the stored one, or a fresh one (single flight across instances).
    async fn token(&self) -> Result<String, DeliveryError> {
        let store = self.store()?;
        if let Some(t) = store
            .wechat_token(&self.cfg.appid)
            .await
            .map_err(store_err)?
        {
            if let (Some(tok), Some(exp)) = (t.access_token, t.expires_at) {
                if exp > Utc::now() + chrono::Duration::from_std(TOKEN_MARGIN).expect("small") {
                    return Ok(tok);
                }
            }
        }
        self.refresh_token(None).await
    }

    /// Gets a new token unless someone already replaced `stale`; one refresh at a time per
    /// account over every instance on the database.
    async fn refresh_token(&self, stale: Option<&str>) -> Result<String, DeliveryError> {
        let store = self.store()?;
        let _one = self.refresh.lock().await;
        for _ in 0..200 {
            let now = Utc::now();
            if let Some(tok) = self.usable_token(stale).await? {
                return Ok(tok);
            }
            if store
                .lock_wechat_token_refresh(&self.cfg.appid, &self.holder, now, TOKEN_LOCK_LEASE)
                .await
                .map_err(store_err)?
            {
                // Look again under the lock: another instance may have stored a token and
                // released the lock between the look above and taking it (a second grant
                // otherwise; found by the three-instance test).
                match self.usable_token(stale).await {
                    Ok(Some(tok)) => {
                        let _ = store
                            .unlock_wechat_token_refresh(&self.cfg.appid, &self.holder)
                            .await;
                        return Ok(tok);
                    }
                    Ok(None) => {}
                    Err(e) => {
                        let _ = store
                            .unlock_wechat_token_refresh(&self.cfg.appid, &self.holder)
                            .await;
                        return Err(e);
                    }
                }
                let got = self.fetch_token().await;
                match got {
                    Ok((tok, expires_in)) => {
                        let exp = Utc::now() + chrono::Duration::seconds(expires_in);
                        store
                            .put_wechat_token(&self.cfg.appid, &self.holder, &tok, exp, Utc::now())
                            .await
                            .map_err(store_err)?;
                        tracing::info!(channel = %self.name, appid = %self.cfg.appid, expires_in, "WeChat access_token refreshed");
                        crate::metrics::global().count_token_refresh(&self.cfg.appid, true);
                        return Ok(tok);
                    }
                    Err(e) => {
                        crate::metrics::global().count_token_refresh(&self.cfg.appid, false);
                        let _ = store
                            .unlock_wechat_token_refresh(&self.cfg.appid, &self.holder)
                            .await;
                        return Err(e);
                    }
                }
            }
            // Another instance is refreshing: wait for its token.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(DeliveryError::transient(format!(
            "渠道 {}：另一个实例正在刷新 access_token，等待超时",
            self.name
        )))
    }

    /// The stored token if it is not `stale` and does not expire within the margin.
    async fn usable_token(&self, stale: Option<&str>) -> Result<Option<String>, DeliveryError> {
        let margin = chrono::Duration::from_std(TOKEN_MARGIN).expect("small");
        let t = self
            .store()?
            .wechat_token(&self.cfg.appid)
            .await
            .map_err(store_err)?;
        Ok(t.and_then(|t| match (t.access_token, t.expires_at) {
            (Some(tok), Some(exp)) if Some(tok.as_str()) != stale && exp > Utc::now() + margin => {
                Some(tok)
            }
            _ => None,
        }))
    }

    async fn fetch_token(&self) -> Result<(String, i64), DeliveryError> {
        let resp = match self.cfg.token_mode {
            TokenMode::StableToken => {
                let body = json!({
                    "grant_type": "client_credential",
                    "appid": self.cfg.appid,
                    "secret": self.secret.expose(),
                    "force_refresh": false,
                });
                self.client
                    .post(format!("{}/cgi-bin/stable_token", self.cfg.api_base))
                    .header("content-type", "application/json; charset=utf-8")
                    .body(serde_json::to_vec(&body).expect("json"))
                    .send()
                    .await
            }
            TokenMode::Token => {
                self.client
                    .get(format!("{}/cgi-bin/token", self.cfg.api_base))
                    .query(&[
                        ("grant_type", "client_credential"),
                        ("appid", self.cfg.appid.as_str()),
                        ("secret", self.secret.expose()),
                    ])
                    .send()
                    .await
            }
        };
        let v = match read_answer(resp).await {
            Ok(v) => v,
            Err(CallError::Code { code, errmsg, .. }) => {
                // On the token endpoints 40001 means a wrong AppSecret, not a stale token.
                let e = if code == 40001 {
                    DeliveryError {
                        remote_code: Some(code.to_string()),
                        ..DeliveryError::permanent(format!(
                            "渠道 {}：获取 access_token 失败（40001）：AppSecret 错误，请核对渠道密钥：{errmsg}",
                            self.name
                        ))
                    }
                } else {
                    self.code_error("获取 access_token", code, &errmsg, Kind::Read)
                };
                return Err(e);
            }
            Err(CallError::Transport { detail }) => {
                return Err(DeliveryError::transient(format!(
                    "渠道 {}：获取 access_token 失败：{detail}",
                    self.name
                )))
            }
        };
        let tok = v["access_token"].as_str().unwrap_or_default().to_string();
        if tok.is_empty() {
            return Err(DeliveryError::transient(format!(
                "渠道 {}：获取 access_token 的应答里没有 access_token",
                self.name
            )));
        }
        Ok((tok, v["expires_in"].as_i64().unwrap_or(7200)))
    }

    // ---- calls ----

    /// A business call: JSON body (raw UTF-8, never `\uXXXX`) or multipart. A token error
    /// refreshes the token once and replays the call in this attempt.
    async fn call(&self, path: &str, body: Body<'_>) -> Result<Value, CallError> {
        let mut token = self
            .token()
            .await
            .map_err(|e| CallError::Transport { detail: e.detail })?;
        let mut refreshed = false;
        loop {
            let url = format!("{}{path}", self.cfg.api_base);
            let req = self
                .client
                .post(&url)
                .query(&[("access_token", token.as_str())]);
            let req = match &body {
                Body::Json(v) => req
                    .header("content-type", "application/json; charset=utf-8")
                    .body(serde_json::to_vec(v).expect("a JSON value serializes")),
                Body::Media {
                    query,
                    file_name,
                    bytes,
                } => {
                    let boundary = format!("gongkai{}", uuid::Uuid::new_v4().simple());
                    let mut b = Vec::with_capacity(bytes.len() + 256);
                    b.extend_from_slice(format!(
                        "--{boundary}\r\nContent-Disposition: form-data; name=\"media\"; filename=\"{file_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                    ).as_bytes());
                    b.extend_from_slice(bytes);
                    b.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
                    req.query(query)
                        .header(
                            "content-type",
                            format!("multipart/form-data; boundary={boundary}"),
                        )
                        .body(b)
                }
            };
            match read_answer(req.send().await).await {
                Err(CallError::Code { code, .. })
                    if !refreshed
                        && matches!(errcode_action(code), Some((ErrAction::RefreshToken, _))) =>
                {
                    tracing::info!(channel = %self.name, path, code, "WeChat token rejected; refreshing once and replaying");
                    token = self
                        .refresh_token(Some(&token))
                        .await
                        .map_err(|e| CallError::Transport { detail: e.detail })?;
                    refreshed = true;
                }
                other => return other,
            }
        }
    }

    /// A classified error for an errcode answer of `step`.
    fn code_error(&self, step: &str, code: i64, errmsg: &str, kind: Kind) -> DeliveryError {
        let (class, what, retry_after) = match errcode_action(code) {
            Some((ErrAction::Retry, w)) => (FailureClass::Transient, w, None),
            Some((ErrAction::RetryAfterMinute, w)) => {
                (FailureClass::Transient, w, Some(Duration::from_secs(60)))
            }
            Some((ErrAction::RefreshToken, w)) => (FailureClass::Transient, w, None),
            Some((ErrAction::WaitQuota, w)) => (FailureClass::Transient, w, None),
            Some((ErrAction::Permanent | ErrAction::AlreadyGone, w)) => {
                (FailureClass::Permanent, w, None)
            }
            None if kind == Kind::Read => (FailureClass::Transient, "未知错误码", None),
            None => (
                FailureClass::Permanent,
                "未知错误码：为避免重复发布不自动重试，请核对公众平台后手动重试",
                None,
            ),
        };
        DeliveryError {
            class,
            retry_after,
            http_status: Some(200),
            remote_code: Some(code.to_string()),
            detail: format!(
                "微信渠道 {}：{step}失败，错误码 {code}（{what}）：{errmsg}",
                self.name
            ),
        }
    }

    /// Turns a failed call into the attempt's result: a quota wait is `Pending`.
    fn failed(&self, step: &str, e: CallError, kind: Kind) -> Result<Sent, DeliveryError> {
        match e {
            CallError::Code { code, errmsg, .. } => {
                if let Some((ErrAction::WaitQuota, what)) = errcode_action(code) {
                    return Ok(Sent::Pending {
                        check_after: until_quota_window(code, Utc::now()),
                        detail: format!(
                            "微信渠道 {}：{step}：{what}（{code}），等待配额恢复后继续，不会重复调用",
                            self.name
                        ),
                    });
                }
                Err(self.code_error(step, code, &errmsg, kind))
            }
            CallError::Transport { detail } => Err(DeliveryError::transient(format!(
                "微信渠道 {}：{step}失败：{detail}",
                self.name
            ))),
        }
    }

    // ---- steps ----

    /// The cover as permanent material, uploaded once per content.
    async fn cover(&self) -> Result<Result<String, Sent>, DeliveryError> {
        let store = self.store()?;
        let sha = hex::encode(Sha256::digest(&self.cover));
        let _one = self.cover_upload.lock().await;
        if let Some(m) = store
            .wechat_media(&self.cfg.appid, "image", &sha)
            .await
            .map_err(store_err)?
            .and_then(|m| m.media_id)
        {
            return Ok(Ok(m));
        }
        let ext = if self.cover.starts_with(b"\x89PNG") {
            "png"
        } else {
            "jpg"
        };
        match self
            .call(
                "/cgi-bin/material/add_material",
                Body::Media {
                    query: &[("type", "image")],
                    file_name: &format!("cover.{ext}"),
                    bytes: &self.cover,
                },
            )
            .await
        {
            Ok(v) => {
                let media_id = v["media_id"].as_str().unwrap_or_default().to_string();
                store
                    .put_wechat_media(
                        &WechatMedia {
                            appid: self.cfg.appid.clone(),
                            kind: "image".into(),
                            content_sha256: sha,
                            media_id: Some(media_id.clone()),
                            url: v["url"].as_str().map(str::to_string),
                        },
                        Utc::now(),
                    )
                    .await
                    .map_err(store_err)?;
                Ok(Ok(media_id))
            }
            Err(e) => self.failed("上传封面", e, Kind::Mutation).map(Err),
        }
    }

    /// Uploads the body's images through `media/uploadimg` (once per content: the store's
    /// media cache by SHA-256), saving each in the progress, so a retry never uploads again.
    async fn body_images(
        &self,
        request: &DeliveryRequest,
        st: &mut State,
        progress: &mut dyn Progress,
    ) -> Result<Result<(), Sent>, DeliveryError> {
        let html = String::from_utf8_lossy(&request.payload).into_owned();
        for src in content::image_sources(&html) {
            if st.images.contains_key(&src) || content::is_wechat_hosted(&src) {
                continue;
            }
            let (bytes, ext) = self.fetch_image(request, &src).await?;
            let store = self.store()?;
            let sha = hex::encode(Sha256::digest(&bytes));
            let cached = store
                .wechat_media(&self.cfg.appid, "uploadimg", &sha)
                .await
                .map_err(store_err)?
                .and_then(|m| m.url);
            let url = match cached {
                Some(u) => u,
                None => {
                    let step = format!(
                        "{}：上传正文图片 {}（media/uploadimg）",
                        request.disclosure_id,
                        content::label(&src)
                    );
                    // uploadimg is not idempotent but harmless (a second copy of an image):
                    // unknown codes may be retried like a read.
                    let v = match self
                        .call(
                            "/cgi-bin/media/uploadimg",
                            Body::Media {
                                query: &[],
                                file_name: &format!("image.{ext}"),
                                bytes: &bytes,
                            },
                        )
                        .await
                    {
                        Ok(v) => v,
                        Err(e) => return self.failed(&step, e, Kind::Read).map(Err),
                    };
                    let Some(url) = v["url"].as_str().map(str::to_string) else {
                        return Err(DeliveryError::transient(format!(
                            "微信渠道 {}：{step}：应答里没有 url",
                            self.name
                        )));
                    };
                    store
                        .put_wechat_media(
                            &WechatMedia {
                                appid: self.cfg.appid.clone(),
                                kind: "uploadimg".into(),
                                content_sha256: sha,
                                media_id: None,
                                url: Some(url.clone()),
                            },
                            Utc::now(),
                        )
                        .await
                        .map_err(store_err)?;
                    url
                }
            };
            st.images.insert(src, url);
            save(progress, st).await?;
        }
        Ok(Ok(()))
    }

    /// One body image's bytes and type: from its http(s) URL or its `data:` URI. A 4xx or
    /// an image WeChat cannot take is permanent; anything else transient.
    async fn fetch_image(
        &self,
        request: &DeliveryRequest,
        src: &str,
    ) -> Result<(Vec<u8>, &'static str), DeliveryError> {
        let who = format!(
            "微信渠道 {}：{}：正文图片 {}",
            self.name,
            request.disclosure_id,
            content::label(src)
        );
        let lower = src.trim_start().to_ascii_lowercase();
        let bytes = if lower.starts_with("data:") {
            content::decode_data_uri(src).map_err(|e| {
                DeliveryError::permanent(format!("{who}：{e}；请修正正文后以新版本提交"))
            })?
        } else if lower.starts_with("http://") || lower.starts_with("https://") {
            let resp = self.client.get(src).send().await.map_err(|e| {
                DeliveryError::transient(format!(
                    "{who} 获取失败：{}",
                    if e.is_timeout() {
                        "请求超时".to_string()
                    } else {
                        format!("连接失败：{e}")
                    }
                ))
            })?;
            let status = resp.status();
            if !status.is_success() {
                let code = status.as_u16();
                let e = format!("{who} 获取失败：HTTP {code}");
                return Err(if status.is_client_error() && code != 408 && code != 429 {
                    DeliveryError {
                        http_status: Some(code),
                        ..DeliveryError::permanent(format!(
                            "{e}（图片地址错误或已删除）；请修正正文中的图片后以新版本提交"
                        ))
                    }
                } else {
                    DeliveryError {
                        http_status: Some(code),
                        ..DeliveryError::transient(e)
                    }
                });
            }
            let mut resp = resp;
            let mut buf = Vec::new();
            while let Some(chunk) = resp
                .chunk()
                .await
                .map_err(|e| DeliveryError::transient(format!("{who} 获取失败：读取中断：{e}")))?
            {
                buf.extend_from_slice(&chunk);
                if buf.len() >= content::IMAGE_MAX_BYTES {
                    break;
                }
            }
            buf
        } else {
            return Err(DeliveryError::permanent(format!(
                "{who}：不是 http/https 或 data: 地址，无法获取；请在正文中使用完整的图片地址后以新版本提交"
            )));
        };
        let Some(ext) = content::image_kind(&bytes) else {
            return Err(DeliveryError::permanent(format!(
                "{who}：不是 jpg/png 图片（微信正文图片只接受 jpg/png）；请转换格式后以新版本提交"
            )));
        };
        if bytes.len() >= content::IMAGE_MAX_BYTES {
            return Err(DeliveryError::permanent(format!(
                "{who}：图片不小于 1MB（微信正文图片须小于 1MB）；请压缩后以新版本提交"
            )));
        }
        Ok((bytes, ext))
    }

    /// Whether this delivery is also mass-sent (its category is in `mass_send_categories`).
    fn wants_mass_send(&self, request: &DeliveryRequest) -> bool {
        request.action == Action::Publish
            && request
                .disclosure
                .as_ref()
                .is_some_and(|d| self.cfg.mass_send_categories.contains(&d.category))
    }

    /// 群发 after the article is published: its own draft (the published draft is consumed),
    /// then `message/mass/sendall` with the delivery's deterministic `clientmsgid`, so a retry
    /// (even after a lost answer) is recognized by WeChat as the same send (45065).
    async fn mass_send(
        &self,
        request: &DeliveryRequest,
        st: &mut State,
        progress: &mut dyn Progress,
    ) -> Result<Result<(), Sent>, DeliveryError> {
        if st.mass_msg_id.is_some() {
            return Ok(Ok(()));
        }
        let cid = clientmsgid(&request.disclosure_id, request.revision, &self.name);
        if st.mass_draft_media_id.is_none() {
            let source = match self.source_url(request).await? {
                Ok(u) => u,
                Err(wait) => return Ok(Err(wait)),
            };
            let thumb = match st.thumb_media_id.clone() {
                Some(t) => t,
                None => match self.cover().await? {
                    Ok(t) => t,
                    Err(wait) => return Ok(Err(wait)),
                },
            };
            let article = self.article(request, &thumb, source.as_deref(), &st.images)?;
            match self
                .call(
                    "/cgi-bin/draft/add",
                    Body::Json(json!({"articles": [article]})),
                )
                .await
            {
                Ok(v) => {
                    let Some(m) = v["media_id"].as_str() else {
                        return Err(DeliveryError::transient(
                            "群发草稿 draft/add 的应答里没有 media_id",
                        ));
                    };
                    st.mass_draft_media_id = Some(m.to_string());
                    save(progress, st).await?;
                }
                Err(e) => return self.mass_failed(request, st, "新建群发草稿（draft/add）", e),
            }
        }
        let media_id = st.mass_draft_media_id.clone().expect("set above");
        let sent = self
            .call(
                "/cgi-bin/message/mass/sendall",
                Body::Json(json!({
                    "filter": {"is_to_all": true},
                    "mpnews": {"media_id": media_id},
                    "msgtype": "mpnews",
                    "send_ignore_reprint": 0,
                    "clientmsgid": cid,
                })),
            )
            .await;
        let msg_id = match sent {
            Ok(v) => id_text(&v["msg_id"]),
            // Already sent with this clientmsgid in the last 24 h: that send is this one.
            Err(CallError::Code {
                code: 45065, body, ..
            }) => id_text(&body["msg_id"]),
            Err(CallError::Code { code: 40007, .. }) => {
                // The mass draft is gone: consumed by a send whose answer was lost, or deleted.
                // A new draft sent with the same clientmsgid is recognized as that send.
                st.mass_draft_media_id = None;
                save(progress, st).await?;
                return Err(DeliveryError::transient(format!(
                    "微信渠道 {}：{}：群发草稿已被使用（上次群发结果不明），将新建草稿并以同一 clientmsgid {cid} 重发，微信会识别为同一次群发",
                    self.name, request.disclosure_id
                )));
            }
            Err(e) => return self.mass_failed(request, st, "群发（message/mass/sendall）", e),
        };
        st.mass_msg_id = Some(msg_id.unwrap_or_else(|| "?".into()));
        save(progress, st).await?;
        tracing::info!(channel = %self.name, disclosure_id = %request.disclosure_id, clientmsgid = %cid, msg_id = ?st.mass_msg_id, "mass send accepted");
        Ok(Ok(()))
    }

    /// A failed mass-send step. Quota codes (45028 and the like) park the delivery for the
    /// operator: dead with the reason; a manual retry resumes at the mass send only.
    fn mass_failed(
        &self,
        request: &DeliveryRequest,
        st: &State,
        step: &str,
        e: CallError,
    ) -> Result<Result<(), Sent>, DeliveryError> {
        let published = match &st.article_url {
            Some(u) => format!("文章已发表（{u}）"),
            None => "文章已发表".to_string(),
        };
        match e {
            CallError::Code { code, errmsg, .. }
                if matches!(errcode_action(code), Some((ErrAction::WaitQuota, _)))
                    || matches!(code, 45062 | 48021) =>
            {
                let what = match code {
                    45062 => "公众号有广告合约，不支持接口群发",
                    48021 => "草稿为自动保存，需在公众平台手动保存后再群发",
                    _ => errcode_action(code).map(|a| a.1).unwrap_or("配额已用完"),
                };
                Err(DeliveryError {
                    remote_code: Some(code.to_string()),
                    http_status: Some(200),
                    ..DeliveryError::permanent(format!(
                        "微信渠道 {}：{}：{published}，但{step}未完成：{what}（错误码 {code}：{errmsg}）。已暂停，交由操作员处理：配额恢复后（订阅号每天 1 次、服务号每月 4 次）请在台账中手动重试本投递，只补做群发、不会重复发表；同一 clientmsgid 保证不会重复群发",
                        self.name, request.disclosure_id
                    ))
                })
            }
            other => self
                .failed(
                    &format!("{}：{published}，{step}", request.disclosure_id),
                    other,
                    Kind::Mutation,
                )
                .map(Err),
        }
    }

    /// The draft article from the approved disclosure and the rendered body.
    fn article(
        &self,
        request: &DeliveryRequest,
        thumb: &str,
        source_url: Option<&str>,
        images: &BTreeMap<String, String>,
    ) -> Result<Value, DeliveryError> {
        let d = request.disclosure.as_ref().ok_or_else(|| {
            DeliveryError::permanent("存储的公开件无法解析，无法生成微信文章（数据损坏？）")
        })?;
        let title = wechat_title(&d.title, d.short_title.as_deref())
            .map_err(|e| DeliveryError::permanent(format!("{}：{e}", d.disclosure_id)))?;
        if let Some(a) = &d.abstract_ {
            if a.chars().count() > DIGEST_MAX_CHARS {
                return Err(DeliveryError::permanent(format!(
                    "{}：摘要 {} 字，超过微信摘要上限 {DIGEST_MAX_CHARS} 字；不会截断，请精简摘要后以新版本提交",
                    d.disclosure_id,
                    a.chars().count()
                )));
            }
        }
        let html = String::from_utf8_lossy(&request.payload);
        let content = content::clean(&html, images);
        let chars = content.chars().count();
        if chars >= CONTENT_MAX_CHARS || content.len() >= CONTENT_MAX_BYTES {
            return Err(DeliveryError::permanent(format!(
                "{}：正文 {chars} 字、{} 字节，超过微信正文上限（少于 {CONTENT_MAX_CHARS} 字且小于 1MB）；请拆分或精简后以新版本提交",
                d.disclosure_id,
                content.len()
            )));
        }
        let mut a = json!({
            "article_type": "news",
            "title": title,
            "content": content,
            "thumb_media_id": thumb,
            "need_open_comment": 0,
            "only_fans_can_comment": 0,
        });
        if let Some(author) = &self.cfg.author {
            a["author"] = json!(author);
        }
        if let Some(digest) = &d.abstract_ {
            a["digest"] = json!(digest);
        }
        if let Some(u) = source_url {
            a["content_source_url"] = json!(u);
        }
        Ok(a)
    }

    /// The URL 阅读原文 points at, or `Err(wait)` while a channel in `after` has not finished.
    async fn source_url(
        &self,
        request: &DeliveryRequest,
    ) -> Result<Result<Option<String>, Sent>, DeliveryError> {
        if self.cfg.after.is_empty() {
            return Ok(Ok(None));
        }
        let store = self.store()?;
        let rows = store
            .list_deliveries(
                &request.department,
                &DeliveryFilter {
                    disclosure_id: Some(request.disclosure_id.clone()),
                    ..DeliveryFilter::default()
                },
            )
            .await
            .map_err(store_err)?;
        let mut url = None;
        for other in &self.cfg.after {
            let row = rows.iter().find(|r| {
                &r.channel == other && r.revision == request.revision && r.action == Action::Publish
            });
            match row.map(|r| r.status) {
                Some(
                    DeliveryStatus::Pending | DeliveryStatus::Retrying | DeliveryStatus::InFlight,
                ) => {
                    return Ok(Err(Sent::Pending {
                        check_after: Duration::from_secs(5).min(self.cfg.check_every),
                        detail: format!("等待渠道 {other} 先送达（「阅读原文」指向其网址）"),
                    }))
                }
                Some(DeliveryStatus::Delivered) if url.is_none() => {
                    url = row.and_then(|r| r.url.clone());
                }
                _ => {}
            }
        }
        Ok(Ok(url))
    }

    async fn publish(
        &self,
        request: &DeliveryRequest,
        progress: &mut dyn Progress,
    ) -> Result<Sent, DeliveryError> {
        let mut st: State = serde_json::from_value(progress.state().clone()).unwrap_or_default();

        if st.publish_id.is_none() && st.article_id.is_none() {
            if st.draft_media_id.is_none() {
                let source = match self.source_url(request).await? {
                    Ok(u) => u,
                    Err(wait) => return Ok(wait),
                };
                // Content rules first: a refused article uploads nothing.
                self.article(request, "", source.as_deref(), &st.images)?;
                if let Err(wait) = self.body_images(request, &mut st, progress).await? {
                    return Ok(wait);
                }
                let thumb = match st.thumb_media_id.clone() {
                    Some(t) => t,
                    None => match self.cover().await? {
                        Ok(t) => t,
                        Err(wait) => return Ok(wait),
                    },
                };
                let article = self.article(request, &thumb, source.as_deref(), &st.images)?;
                match self
                    .call(
                        "/cgi-bin/draft/add",
                        Body::Json(json!({"articles": [article]})),
                    )
                    .await
                {
                    Ok(v) => {
                        st.thumb_media_id = Some(thumb);
                        st.draft_media_id = v["media_id"].as_str().map(str::to_string);
                        if st.draft_media_id.is_none() {
                            return Err(DeliveryError::transient(
                                "draft/add 的应答里没有 media_id",
                            ));
                        }
                        save(progress, &st).await?;
                    }
                    Err(e) => return self.failed("新建草稿（draft/add）", e, Kind::Mutation),
                }
            }
            let media_id = st.draft_media_id.clone().expect("set above");
            if st.submitting {
                // The last submit may have gone through: find out before sending another.
                if let Some(sent) = self.reconcile(request, &mut st, progress).await? {
                    return Ok(sent);
                }
            }
            if st.publish_id.is_none() && st.article_id.is_none() {
                st.submitting = true;
                st.submit_started_at = Some(Utc::now());
                save(progress, &st).await?;
                match self
                    .call(
                        "/cgi-bin/freepublish/submit",
                        Body::Json(json!({"media_id": media_id})),
                    )
                    .await
                {
                    Ok(v) => {
                        st.publish_id = id_text(&v["publish_id"]);
                        st.submitting = false;
                        st.submitted_at = Some(Utc::now());
                        save(progress, &st).await?;
                        tracing::info!(channel = %self.name, disclosure_id = %request.disclosure_id, publish_id = ?st.publish_id, "submitted for publishing");
                        return Ok(Sent::Pending {
                            check_after: self.cfg.check_every,
                            detail: format!(
                                "已提交发布（publish_id {}），等待发布结果",
                                st.publish_id.as_deref().unwrap_or("?")
                            ),
                        });
                    }
                    Err(CallError::Code { code, errmsg, body }) => {
                        // WeChat answered: the job was not accepted.
                        st.submitting = false;
                        save(progress, &st).await?;
                        return self.failed(
                            "提交发布（freepublish/submit）",
                            CallError::Code { code, errmsg, body },
                            Kind::Mutation,
                        );
                    }
                    Err(e) => {
                        return self.failed(
                            "提交发布（freepublish/submit），结果不明，下次先核对再决定是否重发",
                            e,
                            Kind::Mutation,
                        )
                    }
                }
            }
        }

        if st.article_id.is_none() {
            let publish_id = st.publish_id.clone().expect("submitted");
            match self.outcome(&publish_id).await? {
                Outcome::Published { article_id, url } => {
                    st.article_id = Some(article_id);
                    st.article_url = url;
                    save(progress, &st).await?;
                }
                Outcome::Publishing => {
                    let since = st.submitted_at.unwrap_or_else(Utc::now);
                    if Utc::now() - since
                        > chrono::Duration::from_std(self.cfg.give_up_after)
                            .unwrap_or(chrono::Duration::days(1))
                    {
                        return Err(DeliveryError::permanent(format!(
                            "微信渠道 {}：publish_id {publish_id} 提交后长时间没有结果，请在公众平台「发表记录」核对；不会自动重新提交",
                            self.name
                        )));
                    }
                    return Ok(Sent::Pending {
                        check_after: self.cfg.check_every,
                        detail: format!("发布中（publish_id {publish_id}），等待发布结果"),
                    });
                }
                Outcome::Failed(why) => {
                    return Err(DeliveryError {
                        remote_code: Some("publish_status".into()),
                        ..DeliveryError::permanent(format!("微信渠道 {}：{why}", self.name))
                    })
                }
                Outcome::Error(sent) => return sent,
            }
        }

        // A corrected revision replaces the old article: delete it after the new one is live.
        for old in self.earlier_articles(request).await? {
            if st.old_deleted.contains(&old) || Some(&old) == st.article_id.as_ref() {
                continue;
            }
            match self
                .call(
                    "/cgi-bin/freepublish/delete",
                    Body::Json(json!({"article_id": old, "index": 0})),
                )
                .await
            {
                Ok(_) | Err(CallError::Code { code: 53600, .. }) => {
                    tracing::info!(channel = %self.name, disclosure_id = %request.disclosure_id, article_id = %old, "deleted the article of an earlier revision");
                    st.old_deleted.push(old);
                    save(progress, &st).await?;
                }
                Err(e) => {
                    return self.failed("删除旧版本文章（freepublish/delete）", e, Kind::Mutation)
                }
            }
        }
        if self.wants_mass_send(request) {
            if let Err(wait) = self.mass_send(request, &mut st, progress).await? {
                return Ok(wait);
            }
        }
        let mut detail = if st.old_deleted.is_empty() {
            "已发表".to_string()
        } else {
            format!("已发表，并删除旧版本文章 {}", st.old_deleted.join("、"))
        };
        if let Some(m) = &st.mass_msg_id {
            detail.push_str(&format!("；已群发（msg_id {m}）"));
        }
        Ok(Sent::Done(Receipt {
            remote_id: st.article_id.clone(),
            url: st.article_url.clone(),
            http_status: Some(200),
            detail: Some(detail),
        }))
    }

    /// After an ambiguous submit: did it happen? Sets `publish_id`/`article_id` when it did,
    /// clears `submitting` when it surely did not; `Some(Pending)` while it cannot tell yet.
    async fn reconcile(
        &self,
        request: &DeliveryRequest,
        st: &mut State,
        progress: &mut dyn Progress,
    ) -> Result<Option<Sent>, DeliveryError> {
        let media_id = st.draft_media_id.clone().unwrap_or_default();
        match self
            .call(
                "/cgi-bin/draft/get",
                Body::Json(json!({"media_id": media_id})),
            )
            .await
        {
            Ok(_) => {
                // Still in the draft box: the submit never reached WeChat.
                st.submitting = false;
                save(progress, st).await?;
                return Ok(None);
            }
            Err(CallError::Code { code: 40007, .. }) => {}
            Err(e) => {
                return self
                    .failed("核对草稿（draft/get）", e, Kind::Read)
                    .map(Some)
            }
        }
        // The draft was consumed: look for the published article.
        let images = st.images.clone();
        let want = self.article(request, "", None, &images)?;
        let title = want["title"].as_str().unwrap_or_default().to_string();
        let content = want["content"].as_str().unwrap_or_default().to_string();
        // The record is newest first, 20 a page: page back until the articles are older
        // than the submit (less a margin for the two clocks), not just the newest 20 — on a
        // busy account (several instances working a backlog) the article is soon further
        // down. Without the submit's time (progress saved by an older version), a bounded
        // number of pages.
        let since = st
            .submit_started_at
            .map(|t| (t - chrono::Duration::minutes(10)).timestamp());
        let max_pages = if since.is_some() {
            RECONCILE_MAX_PAGES
        } else {
            10
        };
        let strip_wanted = strip_scripts(&content);
        let mut offset = 0usize;
        for _ in 0..max_pages {
            let v = match self
                .call(
                    "/cgi-bin/freepublish/batchget",
                    Body::Json(json!({"offset": offset, "count": 20, "no_content": 0})),
                )
                .await
            {
                Ok(v) => v,
                Err(e) => {
                    return self
                        .failed("核对发表记录（freepublish/batchget）", e, Kind::Read)
                        .map(Some)
                }
            };
            let items = v["item"].as_array().cloned().unwrap_or_default();
            for item in &items {
                let news = &item["content"]["news_item"][0];
                if news["title"].as_str() == Some(title.as_str())
                    && news["content"].as_str().map(strip_scripts).as_deref()
                        == Some(strip_wanted.as_str())
                {
                    st.article_id = item["article_id"].as_str().map(str::to_string);
                    st.article_url = news["url"].as_str().map(str::to_string);
                    st.submitting = false;
                    save(progress, st).await?;
                    tracing::info!(channel = %self.name, disclosure_id = %request.disclosure_id, article_id = ?st.article_id, "an interrupted submit had gone through; not submitting again");
                    return Ok(None);
                }
            }
            offset += items.len();
            let older = |item: &Value| {
                since.is_some_and(|s| item["update_time"].as_i64().is_some_and(|t| t < s))
            };
            let total = v["total_count"].as_u64().unwrap_or(0) as usize;
            if items.is_empty() || offset >= total || items.last().is_some_and(older) {
                break;
            }
        }
        let since = st.submitted_at.get_or_insert_with(Utc::now).to_owned();
        save(progress, st).await?;
        if Utc::now() - since
            > chrono::Duration::from_std(self.cfg.give_up_after)
                .unwrap_or(chrono::Duration::days(1))
        {
            return Err(DeliveryError::permanent(format!(
                "微信渠道 {}：草稿 {media_id} 已被使用，但发表记录中找不到该文章；请在公众平台核对，不会自动重新提交",
                self.name
            )));
        }
        Ok(Some(Sent::Pending {
            check_after: self.cfg.check_every,
            detail: "上次提交发布结果不明：草稿已被使用，等待其出现在发表记录中，不会重复提交"
                .into(),
        }))
    }

    /// The publish job's outcome: the PUBLISHJOBFINISH event if the callback recorded it,
    /// else `freepublish/get`.
    async fn outcome(&self, publish_id: &str) -> Result<Outcome, DeliveryError> {
        let store = self.store()?;
        let (status, article_id, url, fail_idx) = match store
            .wechat_publish_event(&self.cfg.appid, publish_id)
            .await
            .map_err(store_err)?
        {
            Some(WechatPublishEvent {
                publish_status,
                article_id,
                article_url,
                fail_idx,
                ..
            }) => (publish_status, article_id, article_url, fail_idx),
            None => match self
                .call(
                    "/cgi-bin/freepublish/get",
                    Body::Json(json!({"publish_id": publish_id})),
                )
                .await
            {
                Ok(v) => (
                    v["publish_status"].as_i64().unwrap_or(1),
                    v["article_id"].as_str().map(str::to_string),
                    v["article_detail"]["item"][0]["article_url"]
                        .as_str()
                        .map(str::to_string),
                    v["fail_idx"]
                        .as_array()
                        .map(|a| a.iter().filter_map(Value::as_i64).collect())
                        .unwrap_or_default(),
                ),
                Err(e) => {
                    return Ok(Outcome::Error(self.failed(
                        "查询发布状态（freepublish/get）",
                        e,
                        Kind::Read,
                    )))
                }
            },
        };
        Ok(match status {
            0 => match article_id {
                Some(article_id) => Outcome::Published { article_id, url },
                None => Outcome::Publishing,
            },
            1 => Outcome::Publishing,
            other => Outcome::Failed(publish_status_words(other, &fail_idx)),
        })
    }

    /// Articles this channel published for earlier revisions (or a cancelled publish of
    /// this disclosure that WeChat carried out anyway).
    async fn earlier_articles(
        &self,
        request: &DeliveryRequest,
    ) -> Result<Vec<String>, DeliveryError> {
        let store = self.store()?;
        let rows = store
            .list_deliveries(
                &request.department,
                &DeliveryFilter {
                    disclosure_id: Some(request.disclosure_id.clone()),
                    channel: Some(self.name.clone()),
                    ..DeliveryFilter::default()
                },
            )
            .await
            .map_err(store_err)?;
        let mut out = Vec::new();
        for r in rows
            .iter()
            .filter(|r| r.action == Action::Publish && r.id != request.delivery_id)
        {
            if let Some(a) = &r.remote_id {
                out.push(a.clone());
                continue;
            }
            let Some(st) = r
                .progress
                .clone()
                .and_then(|p| serde_json::from_value::<State>(p).ok())
            else {
                continue;
            };
            if let Some(a) = st.article_id {
                out.push(a);
            } else if let Some(pid) = st.publish_id {
                if let Outcome::Published { article_id, .. } = self.outcome(&pid).await? {
                    out.push(article_id);
                }
            }
        }
        out.dedup();
        Ok(out)
    }

    async fn withdraw(
        &self,
        request: &DeliveryRequest,
        progress: &mut dyn Progress,
    ) -> Result<Sent, DeliveryError> {
        let mut st: State = serde_json::from_value(progress.state().clone()).unwrap_or_default();
        let articles = self.earlier_articles(request).await?;
        for a in &articles {
            if st.old_deleted.contains(a) {
                continue;
            }
            match self
                .call(
                    "/cgi-bin/freepublish/delete",
                    Body::Json(json!({"article_id": a, "index": 0})),
                )
                .await
            {
                Ok(_) | Err(CallError::Code { code: 53600, .. }) => {
                    st.old_deleted.push(a.clone());
                    save(progress, &st).await?;
                }
                Err(e) => return self.failed("删除文章（freepublish/delete）", e, Kind::Mutation),
            }
        }
        Ok(Sent::Done(Receipt {
            remote_id: articles.last().cloned(),
            url: None,
            http_status: Some(200),
            detail: Some(if articles.is_empty() {
                "公众号上没有该文章，无需删除".into()
            } else {
                format!("已删除文章 {}", articles.join("、"))
            }),
        }))
    }
}

enum Outcome {
    Published {
        article_id: String,
        url: Option<String>,
    },
    Publishing,
    Failed(String),
    Error(Result<Sent, DeliveryError>),
}

enum Body<'a> {
    Json(Value),
    Media {
        query: &'a [(&'a str, &'a str)],
        file_name: &'a str,
        bytes: &'a [u8],
    },
}

async fn save(progress: &mut dyn Progress, st: &State) -> Result<(), DeliveryError> {
    progress
        .save(serde_json::to_value(st).expect("the state serializes"))
        .await
}

fn store_err(e: crate::store::StoreError) -> DeliveryError {
    DeliveryError::transient(format!("台账读写失败：{e}"))
}

/// WeChat's answer: the JSON, or the errcode, or why there is none.
async fn read_answer(sent: Result<reqwest::Response, reqwest::Error>) -> Result<Value, CallError> {
    let resp = sent.map_err(|e| CallError::Transport {
        detail: if e.is_timeout() {
            "请求超时".into()
        } else {
            format!("连接失败：{e}")
        },
    })?;
    let status = resp.status();
    let body = resp.bytes().await.map_err(|e| CallError::Transport {
        detail: format!("读取应答失败：{e}"),
    })?;
    if !status.is_success() {
        return Err(CallError::Transport {
            detail: format!("HTTP {}", status.as_u16()),
        });
    }
    let v: Value = serde_json::from_slice(&body).map_err(|_| CallError::Transport {
        detail: format!(
            "应答不是 JSON：{}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        ),
    })?;
    match v.get("errcode").and_then(Value::as_i64) {
        None | Some(0) => Ok(v),
        Some(code) => Err(CallError::Code {
            code,
            errmsg: v["errmsg"].as_str().unwrap_or_default().to_string(),
            body: v,
        }),
    }
}

/// `publish_id` is a JSON string in the API but digits in the event: accept both.
/// The mass send's `msg_id` recorded in a WeChat delivery's progress (JSON), if it made
/// one: where the operator's view finds WeChat's report on it (MASSSENDJOBFINISH).
pub fn mass_msg_id(progress: &Value) -> Option<String> {
    State::deserialize(progress)
        .ok()?
        .mass_msg_id
        .filter(|m| m != "?")
}

/// A MASSSENDJOBFINISH `Status` in words for the operator (wechat-protocol.md §2.2).
pub fn mass_status_text(status: &str) -> String {
    let code = status
        .strip_prefix("err(")
        .and_then(|s| s.strip_suffix(')'))
        .and_then(|c| c.parse::<i64>().ok());
    let reason = match (status, code) {
        ("send success", _) => return "群发成功".into(),
        ("send fail", _) => "群发失败",
        (_, Some(10001)) => "涉嫌广告",
        (_, Some(20001)) => "涉嫌政治内容",
        (_, Some(20004)) => "涉嫌社会内容",
        (_, Some(20002)) => "涉嫌色情",
        (_, Some(20006)) => "涉嫌违法犯罪",
        (_, Some(20008)) => "涉嫌欺诈",
        (_, Some(20013)) => "涉嫌版权问题",
        (_, Some(22000)) => "涉嫌互推（互相宣传）",
        (_, Some(21000)) => "涉嫌其他问题",
        (_, Some(30001)) => "原创校验出现系统错误，且设置了被判为转载时停止群发",
        (_, Some(30002)) => "原创校验结果为不能群发",
        (_, Some(30003)) => "被判为转载，且设置了被判为转载时停止群发",
        (_, Some(40001)) => "管理员拒绝了群发（接口群发保护）",
        (_, Some(40002)) => "管理员 30 分钟内未确认群发（接口群发保护）",
        _ => "未知原因",
    };
    format!("群发未成功（{status}）：{reason}")
}

/// WeChat's report on a mass send, in one line for the operator.
pub fn mass_summary(m: &crate::store::WechatMassResult) -> String {
    let n = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
    format!(
        "{}；粉丝 {}，过滤后 {}，发送成功 {}，失败 {}（msg_id {}）",
        mass_status_text(&m.status),
        n(m.total_count),
        n(m.filter_count),
        n(m.sent_count),
        n(m.error_count),
        m.msg_id
    )
}

fn id_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The mass send's `clientmsgid`: derived from disclosure, revision and channel, so every
/// attempt of a delivery sends the same one; 32 ASCII bytes (the stricter documented limit).
pub fn clientmsgid(disclosure_id: &str, revision: i64, channel: &str) -> String {
    let h = hex::encode(Sha256::digest(
        format!("{disclosure_id}:{revision}:{channel}").as_bytes(),
    ));
    format!("gk{}", &h[..30])
}

/// The title WeChat gets: the approved title if it fits, else the approved short title;
/// never a truncation.
pub fn wechat_title(title: &str, short_title: Option<&str>) -> Result<String, String> {
    let n = title.chars().count();
    if n <= TITLE_MAX_CHARS {
        return Ok(title.to_string());
    }
    match short_title.map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) if s.chars().count() <= TITLE_MAX_CHARS => Ok(s.to_string()),
        Some(s) => Err(format!(
            "标题 {n} 字、短标题 {} 字，均超过微信标题上限 {TITLE_MAX_CHARS} 字；不会截断，请提交经审核的更短的 short_title（新版本）",
            s.chars().count()
        )),
        None => Err(format!(
            "标题 {n} 字，超过微信标题上限 {TITLE_MAX_CHARS} 字，且没有经审核的短标题（short_title）；不会自动截断，请补充 short_title 后以新版本提交"
        )),
    }
}

/// The HTML cleaned to what WeChat accepts (scripts, event handlers, iframes and
/// `javascript:` URLs removed; see [`content::clean`]); images are left as they are.
pub fn strip_scripts(html: &str) -> String {
    content::clean(html, &BTreeMap::new())
}

fn publish_status_words(status: i64, fail_idx: &[i64]) -> String {
    let idx = if fail_idx.is_empty() {
        String::new()
    } else {
        format!("（失败的文章序号 {fail_idx:?}）")
    };
    match status {
        2 => format!("发布失败：原创声明未通过{idx}；请修改后以新版本提交"),
        3 => format!("发布失败：常规失败{idx}；请核对内容后手动重试（会新建草稿）"),
        4 => format!("发布失败：平台审核不通过{idx}；请人工复核内容"),
        5 => "文章发布成功后已被删除（publish_status 5）".into(),
        6 => "文章发布成功后被平台封禁（publish_status 6）：请登录公众平台查看通知".into(),
        other => format!("未知的发布状态 {other}"),
    }
}

/// How long to wait for a quota window: 45009/45028 reset at midnight Beijing time;
/// 89506 after 24 h, 89507 after 1 h.
fn until_quota_window(code: i64, now: chrono::DateTime<Utc>) -> Duration {
    match code {
        89506 => Duration::from_secs(24 * 3600),
        89507 => Duration::from_secs(3600),
        _ => {
            let bj = chrono::FixedOffset::east_opt(8 * 3600).expect("valid offset");
            let local = now.with_timezone(&bj);
            let next = bj
                .with_ymd_and_hms(local.year(), local.month(), local.day(), 0, 1, 0)
                .single()
                .map(|t| t + chrono::Duration::days(1))
                .unwrap_or(local + chrono::Duration::hours(1));
            (next.with_timezone(&Utc) - now)
                .to_std()
                .unwrap_or(Duration::from_secs(3600))
        }
    }
}

/// How long an account has gone without a successful publish (政务新媒体: two weeks without
/// an update fails the inspection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Staleness {
    Fresh,
    Warn,
    Critical,
}

pub fn staleness(
    last: Option<chrono::DateTime<Utc>>,
    now: chrono::DateTime<Utc>,
    warn_days: u32,
    critical_days: u32,
) -> Staleness {
    let days = match last {
        Some(t) => (now - t).num_days(),
        None => i64::MAX,
    };
    if days >= i64::from(critical_days) {
        Staleness::Critical
    } else if days >= i64::from(warn_days) {
        Staleness::Warn
    } else {
        Staleness::Fresh
    }
}

/// One status line per WeChat channel: the last successful publish and its staleness, for
/// `gongkai status` (and the daemon's log).
pub async fn status_lines(
    settings: &crate::config::Settings,
    store: &dyn Store,
    now: chrono::DateTime<Utc>,
) -> Result<Vec<(Staleness, String)>, crate::store::StoreError> {
    let mut out = Vec::new();
    for (name, spec) in &settings.channels.channels {
        let crate::config::ChannelSpec::Wechat(cfg) = spec else {
            continue;
        };
        let rows = store
            .list_deliveries(
                &settings.department.code,
                &DeliveryFilter {
                    statuses: vec![DeliveryStatus::Delivered],
                    channel: Some(name.clone()),
                    ..DeliveryFilter::default()
                },
            )
            .await?;
        let last = rows
            .iter()
            .filter(|r| r.action == Action::Publish)
            .filter_map(|r| r.delivered_at)
            .max();
        let level = staleness(last, now, cfg.stale_warn_days, cfg.stale_critical_days);
        let when = last
            .map(|t| {
                format!(
                    "最近一次发表 {}（{} 天前）",
                    t.format("%Y-%m-%d %H:%M"),
                    (now - t).num_days()
                )
            })
            .unwrap_or_else(|| "尚无成功发表记录".into());
        let verdict = match level {
            Staleness::Fresh => "正常".to_string(),
            Staleness::Warn => format!("警告：超过 {} 天未更新", cfg.stale_warn_days),
            Staleness::Critical => format!(
                "严重：超过 {} 天未更新，两周无更新即检查不合格",
                cfg.stale_critical_days
            ),
        };
        out.push((
            level,
            format!(
                "{}微信公众号 {name}（{}）：{when}，{verdict}",
                department_note(settings),
                cfg.appid
            ),
        ));
    }
    Ok(out)
}

/// "部门 X 的" in front of a line about a department of `departments_dir` (nothing for
/// the top-level config's own accounts, whose lines read as before).
fn department_note(settings: &crate::config::Settings) -> String {
    if settings.department.code == crate::store::DEFAULT_DEPARTMENT {
        String::new()
    } else {
        format!("部门 {} 的", settings.department.code)
    }
}

/// How often the daemon logs the staleness of every WeChat account.
pub const STALENESS_LOG_EVERY: Duration = Duration::from_secs(3600);

/// Logs each WeChat account's staleness (warn at `stale_warn_days`, error at
/// `stale_critical_days`, info when fresh) at start and then every `every`, until `stop`.
/// Runs even when nothing is being approved: that is when an account goes stale.
pub async fn watch_staleness(
    settings: Arc<crate::config::Settings>,
    store: Arc<dyn Store>,
    every: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        match status_lines(&settings, store.as_ref(), Utc::now()).await {
            Ok(lines) => {
                // status_lines has one line per WeChat channel, in the settings' order.
                let names = settings.channels.channels.iter().filter_map(|(n, c)| {
                    matches!(c, crate::config::ChannelSpec::Wechat(_)).then_some(n)
                });
                for (name, (level, line)) in names.zip(lines) {
                    let history = store
                        .list_deliveries(
                            &settings.department.code,
                            &DeliveryFilter {
                                statuses: vec![DeliveryStatus::Delivered],
                                channel: Some(name.clone()),
                                ..DeliveryFilter::default()
                            },
                        )
                        .await
                        .map(|rows| !rows.is_empty())
                        .unwrap_or(true);
                    if !history {
                        // A new account in gongkai: nothing to measure yet (its earlier
                        // updates, if any, were made outside gongkai).
                        tracing::info!(target: "gongkai::wechat", "{line}（新接入的公众号，从首次发表起计算）");
                        continue;
                    }
                    match level {
                        Staleness::Fresh => tracing::info!(target: "gongkai::wechat", "{line}"),
                        Staleness::Warn => tracing::warn!(target: "gongkai::wechat", "{line}"),
                        Staleness::Critical => tracing::error!(target: "gongkai::wechat", "{line}"),
                    }
                }
            }
            Err(e) => tracing::warn!("公众号停更检查失败：读取台账出错：{e}"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

#[async_trait]
impl Channel for Wechat {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> ChannelKind {
        ChannelKind::Wechat
    }

    fn template(&self) -> &str {
        &self.cfg.template
    }

    /// The rendered body, cleaned as it will be sent, within WeChat's content limits.
    fn check_payload(&self, payload: &[u8]) -> Result<(), String> {
        let html = std::str::from_utf8(payload).map_err(|_| "正文不是 UTF-8".to_string())?;
        let content = content::clean(html, &BTreeMap::new());
        if content.trim().is_empty() {
            return Err("清理后的正文为空（微信不接受空正文）".into());
        }
        let chars = content.chars().count();
        if chars >= CONTENT_MAX_CHARS || content.len() >= CONTENT_MAX_BYTES {
            return Err(format!(
                "正文 {chars} 字、{} 字节，超过微信正文上限（少于 {CONTENT_MAX_CHARS} 字且小于 1MB）",
                content.len()
            ));
        }
        Ok(())
    }

    /// The AppSecret and the IP whitelist, by asking `stable_token` (non-forced: returns
    /// the current token, never replaces it). In `token` mode nothing is asked: every
    /// `/cgi-bin/token` call issues a new token and would cut the running daemon's short.
    async fn healthcheck(&self) -> Result<(), DeliveryError> {
        match self.cfg.token_mode {
            TokenMode::StableToken => self.fetch_token().await.map(|_| ()),
            TokenMode::Token => Ok(()),
        }
    }

    async fn deliver(
        &self,
        request: &DeliveryRequest,
        progress: &mut dyn Progress,
    ) -> Result<Sent, DeliveryError> {
        match request.action {
            Action::Publish => self.publish(request, progress).await,
            Action::Withdraw => self.withdraw(request, progress).await,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Used by the callback (issue 4, src/wechat_callback/ and `gongkai menu`): plain API calls
// with the shared token, for customer-service messages and the custom menu. Kept apart from
// the publishing steps above.

/// A failed API call of the callback side: the errcode (if WeChat answered one) and a
/// message for the operator.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{detail}")]
pub struct ApiCallError {
    pub errcode: Option<i64>,
    pub detail: String,
}

impl From<CallError> for ApiCallError {
    fn from(e: CallError) -> Self {
        match e {
            CallError::Code { code, errmsg, .. } => ApiCallError {
                errcode: Some(code),
                detail: format!("errcode {code}：{errmsg}"),
            },
            CallError::Transport { detail } => ApiCallError {
                errcode: None,
                detail,
            },
        }
    }
}

impl Wechat {
    /// `POST {api_base}{path}?access_token=…` with a JSON body (raw UTF-8), the token
    /// refreshed once on 40001/40014/42001.
    pub async fn post_api(&self, path: &str, body: &Value) -> Result<Value, ApiCallError> {
        Ok(self.call(path, Body::Json(body.clone())).await?)
    }

    /// `GET {api_base}{path}?access_token=…`, the token refreshed once like `post_api`.
    pub async fn get_api(&self, path: &str) -> Result<Value, ApiCallError> {
        let mut token = self.token().await.map_err(|e| ApiCallError {
            errcode: None,
            detail: e.detail,
        })?;
        let mut refreshed = false;
        loop {
            let url = format!("{}{path}", self.cfg.api_base);
            let sent = self
                .client
                .get(&url)
                .query(&[("access_token", token.as_str())])
                .send()
                .await;
            match read_answer(sent).await {
                Err(CallError::Code { code, .. })
                    if !refreshed
                        && matches!(errcode_action(code), Some((ErrAction::RefreshToken, _))) =>
                {
                    token = self
                        .refresh_token(Some(&token))
                        .await
                        .map_err(|e| ApiCallError {
                            errcode: None,
                            detail: e.detail,
                        })?;
                    refreshed = true;
                }
                other => return Ok(other?),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_of_the_protocol_table_is_classified() {
        use ErrAction::*;
        let table: &[(i64, ErrAction)] = &[
            (-1, Retry),
            (40001, RefreshToken),
            (40014, RefreshToken),
            (42001, RefreshToken),
            (40002, Permanent),
            (40003, Permanent),
            (40004, Permanent),
            (40005, Permanent),
            (40006, Permanent),
            (40009, Permanent),
            (40007, Permanent),
            (40013, Permanent),
            (40125, Permanent),
            (40016, Permanent),
            (40027, Permanent),
            (40054, Permanent),
            (40055, Permanent),
            (65316, Permanent),
            (40033, Permanent),
            (40164, Permanent),
            (40243, Permanent),
            (41001, Permanent),
            (41002, Permanent),
            (41004, Permanent),
            (43002, Permanent),
            (43004, Permanent),
            (44002, Permanent),
            (45002, Permanent),
            (45003, Permanent),
            (45004, Permanent),
            (45110, Permanent),
            (45008, Permanent),
            (45009, WaitQuota),
            (45011, RetryAfterMinute),
            (45015, Permanent),
            (45028, WaitQuota),
            (45047, Permanent),
            (45064, Permanent),
            (45065, AlreadyGone),
            (45066, RetryAfterMinute),
            (45067, Permanent),
            (45166, Permanent),
            (47001, Permanent),
            (48001, Permanent),
            (48002, Permanent),
            (48004, Permanent),
            (48006, Permanent),
            (50001, Permanent),
            (50002, Permanent),
            (50005, Permanent),
            (53503, Permanent),
            (53504, Permanent),
            (53505, Permanent),
            (53600, AlreadyGone),
            (88000, Permanent),
            (89503, RetryAfterMinute),
            (89506, WaitQuota),
            (89507, WaitQuota),
        ];
        for &(code, want) in table {
            assert_eq!(
                errcode_action(code).map(|a| a.0),
                Some(want),
                "errcode {code}"
            );
        }
        assert_eq!(errcode_action(99999), None);
    }

    #[test]
    fn operator_messages_say_what_to_fix() {
        assert!(errcode_action(40164).unwrap().1.contains("IP 白名单"));
        assert!(errcode_action(48001).unwrap().1.contains("微信认证"));
        assert!(errcode_action(40013).unwrap().1.contains("appid"));
    }

    #[test]
    fn long_titles_use_the_short_title_and_are_never_truncated() {
        let long = "关于".repeat(20);
        assert_eq!(wechat_title("短标题", None).unwrap(), "短标题");
        assert_eq!(wechat_title(&long, Some("低保公示")).unwrap(), "低保公示");
        let e = wechat_title(&long, None).unwrap_err();
        assert!(e.contains("short_title") && e.contains("32"), "{e}");
        assert!(wechat_title(&long, Some(&long)).is_err());
    }

    #[test]
    fn scripts_are_stripped() {
        assert_eq!(
            strip_scripts("<p>a</p><SCRIPT>alert(1)</script><p onclick=\"x()\">b</p>"),
            "<p>a</p><p>b</p>"
        );
    }

    #[test]
    fn quota_waits_until_after_midnight_in_beijing() {
        // 2024-05-01 15:00 UTC = 23:00 Beijing: the window opens at 00:01, 61 minutes later.
        let now = Utc.with_ymd_and_hms(2024, 5, 1, 15, 0, 0).unwrap();
        assert_eq!(until_quota_window(45009, now), Duration::from_secs(61 * 60));
    }

    #[test]
    fn staleness_warns_at_ten_days_and_is_critical_at_twelve() {
        let now = Utc.with_ymd_and_hms(2024, 5, 20, 0, 0, 0).unwrap();
        let ago = |d| Some(now - chrono::Duration::days(d));
        assert_eq!(staleness(ago(9), now, 10, 12), Staleness::Fresh);
        assert_eq!(staleness(ago(10), now, 10, 12), Staleness::Warn);
        assert_eq!(staleness(ago(12), now, 10, 12), Staleness::Critical);
        assert_eq!(staleness(None, now, 10, 12), Staleness::Critical);
    }

    #[test]
    fn the_clientmsgid_is_deterministic_and_short() {
        let a = clientmsgid("zpmzj-2017-00001", 1, "wechat");
        assert_eq!(a, clientmsgid("zpmzj-2017-00001", 1, "wechat"));
        assert_ne!(a, clientmsgid("zpmzj-2017-00001", 2, "wechat"));
        assert_ne!(a, clientmsgid("zpmzj-2017-00001", 1, "wechat2"));
        assert!(a.len() <= 32 && a.is_ascii(), "{a}");
    }

    #[test]
    fn json_is_sent_as_raw_utf8() {
        let body = serde_json::to_vec(&json!({"title": "关于低保"})).unwrap();
        assert!(!String::from_utf8(body).unwrap().contains("\\u"));
    }
}
