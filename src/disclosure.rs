//! The approved disclosure as it comes in from upstream (domain.md §4.4), and its validation.
//! Owns: the typed `Disclosure`, `parse_disclosure` (every problem reported at once, with the
//! field path and a reason in Chinese), markdown -> HTML, and the content hash used for
//! idempotency. Leaves storage to `store`, routing to `delivery`.

use std::fmt;

use chrono::{DateTime, FixedOffset, NaiveDate};
use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// One approved revision of a disclosure. A stored revision never changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Disclosure {
    pub disclosure_id: String,
    pub revision: i64,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub short_title: Option<String>,
    pub publisher: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publisher_code: Option<String>,
    pub formed_date: NaiveDate,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish_date: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_from: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_to: Option<NaiveDate>,
    /// A code from the configured taxonomy (`[[categories]]` in config.toml).
    pub category: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_no: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc_no: Option<String>,
    #[serde(rename = "abstract", default, skip_serializing_if = "Option::is_none")]
    pub abstract_: Option<String>,
    /// The body as HTML: as sent, or rendered from `body_markdown`.
    pub body_html: String,
    /// The markdown the body was rendered from, when it came as markdown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_markdown: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_text: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
    /// 第二十条 item, e.g. "一", "十一".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub art20_item: Option<String>,
    /// 规章, 行政规范性文件, 其他文件 ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc_kind: Option<String>,
    /// 有效, 失效, 废止 ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disclosure_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub theme_category: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub genre: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog_code: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keywords: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interprets: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<Deadline>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_min_working_days: Option<u32>,
    /// Override of the category's routing: the channel names to deliver to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<Vec<String>>,
    /// Approved wording for LED screens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub led_text: Option<String>,
    pub review: Review,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attachment {
    pub name: String,
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deadline {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basis: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_days: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due: Option<NaiveDate>,
}

/// The review record (先审后发): who approved, when, and the hash of the approved body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Review {
    /// Lowercase hex SHA-256 of the body exactly as sent (`body_html` or `body_markdown`).
    pub content_sha256: String,
    pub steps: Vec<ReviewStep>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrecy_review: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pii_check: Option<String>,
    /// Content-gate rules an approver let through for this disclosure, each with a reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gate_overrides: Vec<GateOverride>,
}

/// An approver's decision to publish despite a content-gate rule (see `gate`): the rule
/// (`resident_id`, `mobile`, `bank_card`, `forbidden_word`, `outdated_term`), why, and who
/// (one of the reviewers in `steps`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateOverride {
    pub rule: String,
    pub reason: String,
    pub by: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewStep {
    /// 初审, 复审, 终审 ...
    pub role: String,
    pub by: String,
    pub at: DateTime<FixedOffset>,
}

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

/// What a disclosure is checked against: the configured taxonomy and channel names.
#[derive(Debug, Clone, Copy)]
pub struct ValidationContext<'a> {
    pub categories: &'a [crate::config::Category],
    /// Names of the channels that exist (`channels/*.toml`).
    pub channels: &'a [String],
}

/// One problem in a submitted disclosure: where (a JSON path such as `review.steps[1].at`,
/// `$` for the document itself) and why, in words an operator understands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    pub path: String,
    pub message: String,
}

/// Every problem found in a submitted disclosure (never only the first one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationErrors(pub Vec<FieldError>);

impl ValidationErrors {
    /// The summary line of the HTTP 422 answer: "公开件有 N 处问题".
    pub fn summary(&self) -> String {
        format!("公开件有 {} 处问题", self.0.len())
    }

    /// The HTTP 422 body:
    /// `{"error":"invalid_disclosure","message":"公开件有 N 处问题","problems":[{"path","message"}]}`.
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "error": "invalid_disclosure",
            "message": self.summary(),
            "problems": self.0,
        })
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{}：{}", e.path, e.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}

impl Serialize for ValidationErrors {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("ValidationErrors", 3)?;
        st.serialize_field("error", "invalid_disclosure")?;
        st.serialize_field("message", &self.summary())?;
        st.serialize_field("problems", &self.0)?;
        st.end()
    }
}

/// Longest title accepted, in characters.
pub const TITLE_MAX_CHARS: usize = 200;
/// Longest short title accepted, in characters (the WeChat article title limit).
pub const SHORT_TITLE_MAX_CHARS: usize = 32;
/// Longest disclosure id accepted, in characters.
pub const DISCLOSURE_ID_MAX_CHARS: usize = 128;

/// Every top-level field a disclosure may carry (domain.md §4.4).
pub const TOP_FIELDS: &[&str] = &[
    "disclosure_id",
    "revision",
    "title",
    "short_title",
    "publisher",
    "publisher_code",
    "formed_date",
    "publish_date",
    "valid_from",
    "valid_to",
    "category",
    "index_no",
    "doc_no",
    "abstract",
    "body_html",
    "body_markdown",
    "body_text",
    "attachments",
    "art20_item",
    "doc_kind",
    "validity",
    "disclosure_mode",
    "scope",
    "theme_category",
    "genre",
    "catalog_code",
    "keywords",
    "interprets",
    "replaces",
    "deadline",
    "display_min_working_days",
    "channels",
    "led_text",
    "review",
];
const REVIEW_FIELDS: &[&str] = &[
    "content_sha256",
    "steps",
    "secrecy_review",
    "pii_check",
    "gate_overrides",
];
const OVERRIDE_FIELDS: &[&str] = &["rule", "reason", "by"];
/// Shortest reason accepted for a gate override, in characters.
pub const OVERRIDE_REASON_MIN_CHARS: usize = 4;
const STEP_FIELDS: &[&str] = &["role", "by", "at"];
const ATTACHMENT_FIELDS: &[&str] = &["name", "url", "sha256", "bytes", "mime"];
const DEADLINE_FIELDS: &[&str] = &["basis", "working_days", "due"];
/// Items of 条例 第二十条.
const ART20_ITEMS: &[&str] = &[
    "一", "二", "三", "四", "五", "六", "七", "八", "九", "十", "十一", "十二", "十三", "十四",
    "十五",
];

/// Lowercase hex SHA-256 of some bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Lowercase hex SHA-256 of the canonical JSON of a disclosure (`serde_json::to_vec`, in the
/// struct's field order). Two submissions with the same hash are the same revision resent.
pub fn content_hash(d: &Disclosure) -> String {
    let bytes = serde_json::to_vec(d).expect("a Disclosure always serializes");
    sha256_hex(&bytes)
}

/// Markdown (CommonMark with tables and strikethrough) to HTML, as used for `body_markdown`.
pub fn render_markdown(markdown: &str) -> String {
    use pulldown_cmark::{html, Options, Parser};
    let mut opts = Options::empty();
    opts.insert(Options::ENABLE_TABLES);
    opts.insert(Options::ENABLE_STRIKETHROUGH);
    let mut out = String::with_capacity(markdown.len() + markdown.len() / 2);
    html::push_html(&mut out, Parser::new_ext(markdown, opts));
    out
}

/// Parses and checks a submitted disclosure (domain.md §4.4). Every problem is reported, each
/// with its JSON path and a reason in Chinese. `body_markdown` is rendered into `body_html`
/// (and kept). `review.content_sha256` must be the SHA-256 of the body exactly as sent.
pub fn parse_disclosure(
    raw: &[u8],
    ctx: &ValidationContext,
) -> Result<Disclosure, ValidationErrors> {
    let mut p = Problems::default();
    if raw.iter().all(u8::is_ascii_whitespace) {
        p.push("$", "请求体为空：应为一个 JSON 对象");
        return Err(p.into_errors());
    }
    let value: Value = match serde_json::from_slice(raw) {
        Ok(v) => v,
        Err(e) => {
            let msg = if e.is_eof() {
                "不是有效的 JSON：内容不完整（缺少结尾的括号或引号？）".to_string()
            } else {
                format!(
                    "不是有效的 JSON（第 {} 行第 {} 列附近出错；须为 UTF-8 编码）",
                    e.line(),
                    e.column()
                )
            };
            p.push("$", msg);
            return Err(p.into_errors());
        }
    };
    let Some(map) = value.as_object() else {
        p.push(
            "$",
            format!("应为 JSON 对象（{{…}}），收到的是{}", kind(&value)),
        );
        return Err(p.into_errors());
    };
    let top = Obj { map, path: "" };
    unknown_fields(&mut p, &top, TOP_FIELDS);

    let disclosure_id = req_string(&mut p, &top, "disclosure_id");
    if let Some(id) = &disclosure_id {
        check_disclosure_id(&mut p, "disclosure_id", id);
    }
    let revision = check_revision(&mut p, &top);
    let title = req_string(&mut p, &top, "title");
    if let Some(t) = &title {
        check_title(&mut p, "title", t, TITLE_MAX_CHARS, "");
    }
    let short_title = opt_string(&mut p, &top, "short_title");
    if let Some(t) = &short_title {
        check_title(
            &mut p,
            "short_title",
            t,
            SHORT_TITLE_MAX_CHARS,
            "（微信标题上限）",
        );
    }
    let publisher = req_string(&mut p, &top, "publisher");
    let publisher_code = opt_string(&mut p, &top, "publisher_code");
    let formed_date = req_date(&mut p, &top, "formed_date");
    let publish_date = opt_date(&mut p, &top, "publish_date");
    let valid_from = opt_date(&mut p, &top, "valid_from");
    let valid_to = opt_date(&mut p, &top, "valid_to");
    if let (Some(f), Some(pd)) = (formed_date, publish_date) {
        if pd < f {
            p.push(
                "publish_date",
                format!("发布日期 {pd} 早于成文（生成）日期 formed_date {f}"),
            );
        }
    }
    if let (Some(from), Some(to)) = (valid_from, valid_to) {
        if to < from {
            p.push(
                "valid_to",
                format!("有效期截止日 {to} 早于起始日 valid_from {from}"),
            );
        }
    }
    let category = req_string(&mut p, &top, "category");
    if let Some(c) = &category {
        if !ctx.categories.iter().any(|k| &k.code == c) {
            let codes: Vec<&str> = ctx.categories.iter().map(|k| k.code.as_str()).collect();
            let hint = if codes.is_empty() {
                "当前没有配置任何分类".to_string()
            } else {
                format!("可选：{}", codes.join("、"))
            };
            p.push("category", format!("未知分类代码 \"{c}\"（{hint}）"));
        }
    }
    let index_no = opt_string(&mut p, &top, "index_no");
    let doc_no = opt_string(&mut p, &top, "doc_no");
    let abstract_ = opt_string(&mut p, &top, "abstract");

    // The body: exactly one of body_html / body_markdown, hashed exactly as sent.
    let body_html_sent = present(map, "body_html");
    let body_md_sent = present(map, "body_markdown");
    let mut body_html = None;
    let mut body_markdown = None;
    let mut sent_body: Option<(&str, String)> = None;
    match (body_html_sent, body_md_sent) {
        (false, false) => p.push(
            "body_html",
            "缺少必填字段：正文须以 body_html 或 body_markdown 提供（二选一）",
        ),
        (true, true) => p.push(
            "body_markdown",
            "body_html 与 body_markdown 只能提供一个（正文须二选一）",
        ),
        (true, false) => {
            if let Some(html) = req_string(&mut p, &top, "body_html") {
                sent_body = Some(("body_html", html.clone()));
                body_html = Some(html);
            }
        }
        (false, true) => {
            if let Some(md) = req_string(&mut p, &top, "body_markdown") {
                sent_body = Some(("body_markdown", md.clone()));
                body_html = Some(render_markdown(&md));
                body_markdown = Some(md);
            }
        }
    }
    let body_text = opt_string(&mut p, &top, "body_text");
    let attachments = check_attachments(&mut p, &top);
    let art20_item = opt_string(&mut p, &top, "art20_item");
    if let Some(item) = &art20_item {
        if !ART20_ITEMS.contains(&item.as_str()) {
            p.push(
                "art20_item",
                format!(
                    "\"{item}\" 不是条例第二十条的项号：应为 一 至 十五 的中文数字，如 \"十一\"（不带括号）"
                ),
            );
        }
    }
    let doc_kind = opt_string(&mut p, &top, "doc_kind");
    let validity = opt_string(&mut p, &top, "validity");
    let disclosure_mode = opt_string(&mut p, &top, "disclosure_mode");
    let scope = opt_string(&mut p, &top, "scope");
    let theme_category = opt_string_list(&mut p, &top, "theme_category").unwrap_or_default();
    let genre = opt_string(&mut p, &top, "genre");
    let catalog_code = opt_string(&mut p, &top, "catalog_code");
    let keywords = opt_string_list(&mut p, &top, "keywords").unwrap_or_default();
    let interprets = opt_string(&mut p, &top, "interprets");
    let replaces = opt_string(&mut p, &top, "replaces");
    let deadline = check_deadline(&mut p, &top);
    let display_min_working_days = opt_u32(&mut p, &top, "display_min_working_days");
    let channels = check_channels(&mut p, &top, ctx);
    let led_text = opt_string(&mut p, &top, "led_text");
    let review = check_review(&mut p, &top, sent_body.as_ref());

    if !p.0.is_empty() {
        return Err(p.into_errors());
    }
    let (
        Some(disclosure_id),
        Some(revision),
        Some(title),
        Some(publisher),
        Some(formed_date),
        Some(category),
        Some(body_html),
        Some(review),
    ) = (
        disclosure_id,
        revision,
        title,
        publisher,
        formed_date,
        category,
        body_html,
        review,
    )
    else {
        // Every missing required field was reported above; this is only a safety net.
        p.push("$", "内部错误：必填字段校验不完整");
        return Err(p.into_errors());
    };
    Ok(Disclosure {
        disclosure_id,
        revision,
        title,
        short_title,
        publisher,
        publisher_code,
        formed_date,
        publish_date,
        valid_from,
        valid_to,
        category,
        index_no,
        doc_no,
        abstract_,
        body_html,
        body_markdown,
        body_text,
        attachments,
        art20_item,
        doc_kind,
        validity,
        disclosure_mode,
        scope,
        theme_category,
        genre,
        catalog_code,
        keywords,
        interprets,
        replaces,
        deadline,
        display_min_working_days,
        channels,
        led_text,
        review,
    })
}

#[derive(Default)]
struct Problems(Vec<FieldError>);

impl Problems {
    fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError {
            path: path.into(),
            message: message.into(),
        });
    }

    fn into_errors(self) -> ValidationErrors {
        ValidationErrors(self.0)
    }
}

/// A JSON object being checked and its path (`""` for the document, `review.steps[1]` ...).
struct Obj<'a> {
    map: &'a Map<String, Value>,
    path: &'a str,
}

impl<'a> Obj<'a> {
    fn at(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// The value of `key`; `null` counts as absent.
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }
}

fn present(map: &Map<String, Value>, key: &str) -> bool {
    map.get(key).is_some_and(|v| !v.is_null())
}

/// The JSON type of a value, in words.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => " null",
        Value::Bool(_) => "布尔值",
        Value::Number(n) if n.is_i64() || n.is_u64() => "整数",
        Value::Number(_) => "小数",
        Value::String(_) => "字符串",
        Value::Array(_) => "数组",
        Value::Object(_) => "对象",
    }
}

fn wrong_type(p: &mut Problems, path: &str, expected: &str, v: &Value) {
    p.push(
        path,
        format!("类型错误：应为{expected}，收到的是{}", kind(v)),
    );
}

fn unknown_fields(p: &mut Problems, o: &Obj, known: &[&str]) {
    for key in o.map.keys() {
        if known.contains(&key.as_str()) {
            continue;
        }
        let msg = match suggest(key, known) {
            Some(s) => format!("未知字段（拼写错误？是否应为 \"{s}\"）"),
            None => "未知字段（拼写错误？）".to_string(),
        };
        p.push(o.at(key), msg);
    }
}

/// The known field closest to a misspelt one, if it is close enough.
fn suggest<'k>(key: &str, known: &[&'k str]) -> Option<&'k str> {
    let key = key.to_lowercase();
    known
        .iter()
        .map(|k| (edit_distance(&key, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// A non-empty string value.
fn string_value(p: &mut Problems, path: &str, v: &Value) -> Option<String> {
    match v {
        Value::String(s) if s.trim().is_empty() => {
            p.push(path, "不能为空");
            None
        }
        Value::String(s) => Some(s.clone()),
        other => {
            wrong_type(p, path, "字符串", other);
            None
        }
    }
}

fn req_string(p: &mut Problems, o: &Obj, key: &str) -> Option<String> {
    let path = o.at(key);
    match o.map.get(key) {
        None => {
            p.push(path, "缺少必填字段");
            None
        }
        Some(Value::Null) => {
            p.push(path, "缺少必填字段（收到的是 null）");
            None
        }
        Some(v) => string_value(p, &path, v),
    }
}

fn opt_string(p: &mut Problems, o: &Obj, key: &str) -> Option<String> {
    let v = o.get(key)?;
    let path = o.at(key);
    if matches!(v, Value::String(s) if s.trim().is_empty()) {
        p.push(path, "不能为空（没有内容时请省略该字段）");
        return None;
    }
    string_value(p, &path, v)
}

fn opt_string_list(p: &mut Problems, o: &Obj, key: &str) -> Option<Vec<String>> {
    let v = o.get(key)?;
    let path = o.at(key);
    let Some(items) = v.as_array() else {
        wrong_type(p, &path, "字符串数组", v);
        return None;
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        if let Some(s) = string_value(p, &format!("{path}[{i}]"), item) {
            out.push(s);
        }
    }
    Some(out)
}

fn opt_u64(p: &mut Problems, o: &Obj, key: &str) -> Option<u64> {
    let v = o.get(key)?;
    match v.as_u64() {
        Some(n) => Some(n),
        None => {
            p.push(
                o.at(key),
                format!("应为不小于 0 的整数，收到的是{}", kind(v)),
            );
            None
        }
    }
}

fn opt_u32(p: &mut Problems, o: &Obj, key: &str) -> Option<u32> {
    let n = opt_u64(p, o, key)?;
    match u32::try_from(n) {
        Ok(n) => Some(n),
        Err(_) => {
            p.push(o.at(key), format!("数值过大：{n}"));
            None
        }
    }
}

fn opt_bool(p: &mut Problems, o: &Obj, key: &str) -> Option<bool> {
    let v = o.get(key)?;
    match v.as_bool() {
        Some(b) => Some(b),
        None => {
            wrong_type(p, &o.at(key), "布尔值（true 或 false）", v);
            None
        }
    }
}

const DATE_FORMAT_MSG: &str = "日期格式错误：应为 YYYY-MM-DD，如 2017-03-08";

fn date_value(p: &mut Problems, path: &str, v: &Value) -> Option<NaiveDate> {
    let Some(s) = v.as_str() else {
        p.push(path, format!("{DATE_FORMAT_MSG}（收到的是{}）", kind(v)));
        return None;
    };
    let b = s.as_bytes();
    let shape_ok = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shape_ok {
        p.push(path, format!("{DATE_FORMAT_MSG}（收到 \"{s}\"）"));
        return None;
    }
    match NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        Ok(d) => Some(d),
        Err(_) => {
            p.push(path, format!("日期不存在：\"{s}\""));
            None
        }
    }
}

fn req_date(p: &mut Problems, o: &Obj, key: &str) -> Option<NaiveDate> {
    let path = o.at(key);
    match o.get(key) {
        None => {
            p.push(path, "缺少必填字段");
            None
        }
        Some(v) => date_value(p, &path, v),
    }
}

fn opt_date(p: &mut Problems, o: &Obj, key: &str) -> Option<NaiveDate> {
    let v = o.get(key)?;
    date_value(p, &o.at(key), v)
}

fn time_value(p: &mut Problems, path: &str, v: &Value) -> Option<DateTime<FixedOffset>> {
    const MSG: &str = "不是有效的时间：应为 RFC 3339，如 2017-03-08T09:12:00+08:00（须带时区）";
    let Some(s) = v.as_str() else {
        p.push(path, format!("{MSG}（收到的是{}）", kind(v)));
        return None;
    };
    match DateTime::parse_from_rfc3339(s) {
        Ok(t) => Some(t),
        Err(_) => {
            p.push(path, format!("{MSG}（收到 \"{s}\"）"));
            None
        }
    }
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

fn sha256_format_problem(s: &str) -> Option<String> {
    if is_sha256_hex(s) {
        None
    } else if s.len() == 64 && s.bytes().all(|c| c.is_ascii_hexdigit()) {
        Some("应为小写十六进制：请把 A–F 写成 a–f".to_string())
    } else {
        Some(format!(
            "应为 64 位小写十六进制的 SHA-256 值（收到 {} 个字符）",
            s.chars().count()
        ))
    }
}

fn check_disclosure_id(p: &mut Problems, path: &str, id: &str) {
    const RULE: &str =
        "编号只能由字母、数字和 - _ . / : 组成，长度 1–128 个字符（编号会用于幂等键和网址）";
    let n = id.chars().count();
    if n > DISCLOSURE_ID_MAX_CHARS {
        p.push(path, format!("编号过长：{n} 个字符；{RULE}"));
        return;
    }
    if let Some(bad) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | ':')))
    {
        let shown = match bad {
            ' ' => "空格".to_string(),
            c if c.is_whitespace() || c.is_control() => format!("U+{:04X}", c as u32),
            c => format!("\"{c}\""),
        };
        p.push(path, format!("含有不允许的字符 {shown}；{RULE}"));
    }
}

fn check_revision(p: &mut Problems, o: &Obj) -> Option<i64> {
    const MSG: &str = "版本号应为从 1 开始的整数";
    let path = o.at("revision");
    let Some(v) = o.get("revision") else {
        p.push(path, format!("缺少必填字段（{MSG}）"));
        return None;
    };
    match v.as_i64() {
        Some(n) if n >= 1 => Some(n),
        Some(n) => {
            p.push(path, format!("{MSG}，收到 {n}"));
            None
        }
        None => {
            p.push(path, format!("{MSG}，收到的是{}", kind(v)));
            None
        }
    }
}

fn check_title(p: &mut Problems, path: &str, t: &str, max: usize, why: &str) {
    let n = t.chars().count();
    if n > max {
        p.push(path, format!("过长：{n} 个字，最多 {max} 个字{why}"));
    }
    if t.chars().any(char::is_control) {
        p.push(path, "不能包含换行、制表符等控制字符");
    }
}

fn check_attachments(p: &mut Problems, top: &Obj) -> Vec<Attachment> {
    let Some(v) = top.get("attachments") else {
        return Vec::new();
    };
    let Some(items) = v.as_array() else {
        wrong_type(p, "attachments", "数组", v);
        return Vec::new();
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let path = format!("attachments[{i}]");
        let Some(map) = item.as_object() else {
            wrong_type(p, &path, "对象（含 name 和 url）", item);
            continue;
        };
        let o = Obj { map, path: &path };
        unknown_fields(p, &o, ATTACHMENT_FIELDS);
        let name = req_string(p, &o, "name");
        let url = req_string(p, &o, "url");
        if let Some(u) = &url {
            if !is_http_url(u) {
                p.push(
                    o.at("url"),
                    format!("应为 http:// 或 https:// 开头的完整网址（收到 \"{u}\"）"),
                );
            }
        }
        let sha256 = opt_string(p, &o, "sha256");
        if let Some(msg) = sha256.as_deref().and_then(sha256_format_problem) {
            p.push(o.at("sha256"), msg);
        }
        let bytes = opt_u64(p, &o, "bytes");
        let mime = opt_string(p, &o, "mime");
        if let (Some(name), Some(url)) = (name, url) {
            out.push(Attachment {
                name,
                url,
                sha256,
                bytes,
                mime,
            });
        }
    }
    out
}

fn is_http_url(u: &str) -> bool {
    let lower = u.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"));
    match rest {
        Some(rest) => {
            let host = rest.split(['/', '?', '#']).next().unwrap_or("");
            !host.is_empty() && !u.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        None => false,
    }
}

fn check_deadline(p: &mut Problems, top: &Obj) -> Option<Deadline> {
    let v = top.get("deadline")?;
    let Some(map) = v.as_object() else {
        wrong_type(p, "deadline", "对象", v);
        return None;
    };
    let o = Obj {
        map,
        path: "deadline",
    };
    unknown_fields(p, &o, DEADLINE_FIELDS);
    Some(Deadline {
        basis: opt_string(p, &o, "basis"),
        working_days: opt_u32(p, &o, "working_days"),
        due: opt_date(p, &o, "due"),
    })
}

fn check_channels(p: &mut Problems, top: &Obj, ctx: &ValidationContext) -> Option<Vec<String>> {
    let raw_is_empty_list = top
        .get("channels")
        .and_then(Value::as_array)
        .is_some_and(Vec::is_empty);
    let list = opt_string_list(p, top, "channels")?;
    if raw_is_empty_list {
        p.push(
            "channels",
            "渠道列表不能为空（按分类默认渠道投递时请省略该字段）",
        );
        return Some(list);
    }
    let configured = if ctx.channels.is_empty() {
        "当前没有配置任何渠道".to_string()
    } else {
        format!("已配置：{}", ctx.channels.join("、"))
    };
    for (i, name) in list.iter().enumerate() {
        if list[..i].contains(name) {
            p.push(format!("channels[{i}]"), format!("渠道 \"{name}\" 重复"));
        } else if !ctx.channels.contains(name) {
            p.push(
                format!("channels[{i}]"),
                format!("未配置的渠道 \"{name}\"（{configured}）"),
            );
        }
    }
    Some(list)
}

fn check_review(p: &mut Problems, top: &Obj, sent_body: Option<&(&str, String)>) -> Option<Review> {
    let Some(v) = top.get("review") else {
        p.push(
            "review",
            "缺少必填字段：未经审核（先审后发）的公开件不能发布",
        );
        return None;
    };
    let Some(map) = v.as_object() else {
        wrong_type(p, "review", "对象", v);
        return None;
    };
    let o = Obj {
        map,
        path: "review",
    };
    unknown_fields(p, &o, REVIEW_FIELDS);

    let content_sha256 = req_string(p, &o, "content_sha256");
    if let Some(h) = &content_sha256 {
        if let Some(msg) = sha256_format_problem(h) {
            p.push("review.content_sha256", msg);
        } else if let Some((field, body)) = sent_body {
            let actual = sha256_hex(body.as_bytes());
            if &actual != h {
                p.push(
                    "review.content_sha256",
                    format!(
                        "内容哈希不符：审核时的正文哈希为 {h}，收到的正文哈希为 {actual}（{field} 在审核后被改动，或哈希不是按原样正文计算的）"
                    ),
                );
            }
        }
    }

    let mut steps = Vec::new();
    let mut steps_ok = false;
    match o.get("steps") {
        None => p.push(
            "review.steps",
            "缺少必填字段：至少需要一个审核环节（如 初审、复审、终审）",
        ),
        Some(Value::Array(items)) if items.is_empty() => p.push(
            "review.steps",
            "不能为空：至少需要一个审核环节（如 初审、复审、终审）",
        ),
        Some(Value::Array(items)) => {
            steps_ok = true;
            for (i, item) in items.iter().enumerate() {
                let path = format!("review.steps[{i}]");
                let Some(map) = item.as_object() else {
                    wrong_type(p, &path, "对象（含 role、by、at）", item);
                    steps_ok = false;
                    continue;
                };
                let so = Obj { map, path: &path };
                unknown_fields(p, &so, STEP_FIELDS);
                let role = req_string(p, &so, "role");
                let by = req_string(p, &so, "by");
                let at = match so.get("at") {
                    None => {
                        p.push(so.at("at"), "缺少必填字段");
                        None
                    }
                    Some(v) => time_value(p, &so.at("at"), v),
                };
                match (role, by, at) {
                    (Some(role), Some(by), Some(at)) => steps.push(ReviewStep { role, by, at }),
                    _ => steps_ok = false,
                }
            }
        }
        Some(other) => wrong_type(p, "review.steps", "数组", other),
    }
    let secrecy_review = opt_bool(p, &o, "secrecy_review");
    let pii_check = opt_string(p, &o, "pii_check");
    let gate_overrides = check_gate_overrides(p, &o, &steps);

    match (content_sha256, steps_ok) {
        (Some(content_sha256), true) => Some(Review {
            content_sha256,
            steps,
            secrecy_review,
            pii_check,
            gate_overrides,
        }),
        _ => None,
    }
}

fn check_gate_overrides(p: &mut Problems, o: &Obj, steps: &[ReviewStep]) -> Vec<GateOverride> {
    let mut out = Vec::new();
    let Some(v) = o.get("gate_overrides") else {
        return out;
    };
    let Some(items) = v.as_array() else {
        wrong_type(p, "review.gate_overrides", "数组", v);
        return out;
    };
    for (i, item) in items.iter().enumerate() {
        let path = format!("review.gate_overrides[{i}]");
        let Some(map) = item.as_object() else {
            wrong_type(p, &path, "对象（含 rule、reason、by）", item);
            continue;
        };
        let io = Obj { map, path: &path };
        unknown_fields(p, &io, OVERRIDE_FIELDS);
        let rule = req_string(p, &io, "rule");
        if let Some(r) = &rule {
            if crate::gate::Rule::parse(r).is_none() {
                p.push(
                    io.at("rule"),
                    format!(
                        "未知的检查规则 \"{r}\"（可选：{}）",
                        crate::gate::Rule::ALL
                            .iter()
                            .map(|r| r.as_str())
                            .collect::<Vec<_>>()
                            .join("、")
                    ),
                );
            } else if out.iter().any(|x: &GateOverride| &x.rule == r) {
                p.push(io.at("rule"), format!("规则 \"{r}\" 重复放行"));
            }
        }
        let reason = req_string(p, &io, "reason");
        if let Some(r) = &reason {
            if r.trim().chars().count() < OVERRIDE_REASON_MIN_CHARS {
                p.push(
                    io.at("reason"),
                    format!(
                        "放行理由过短：至少 {OVERRIDE_REASON_MIN_CHARS} 个字，写明为何可以公开"
                    ),
                );
            }
        }
        let by = req_string(p, &io, "by");
        if let Some(b) = &by {
            if !steps.is_empty() && !steps.iter().any(|s| &s.by == b) {
                p.push(
                    io.at("by"),
                    format!("放行人 \"{b}\" 不在 review.steps 的审核人中：只有审核人可以放行"),
                );
            }
        }
        if let (Some(rule), Some(reason), Some(by)) = (rule, reason, by) {
            out.push(GateOverride { rule, reason, by });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Category;
    use serde_json::json;

    fn categories() -> Vec<Category> {
        ["jgzn", "zcfg", "ghjh", "zdxm", "mzfp", "kjwt", "shjz"]
            .into_iter()
            .map(|code| Category {
                code: code.to_string(),
                name: code.to_string(),
                channels: vec!["gov_site".to_string()],
                deadline_working_days: 20,
                display_min_working_days: None,
            })
            .collect()
    }

    fn channels() -> Vec<String> {
        vec!["gov_site".to_string(), "wechat".to_string()]
    }

    fn parse(v: &Value) -> Result<Disclosure, ValidationErrors> {
        let cats = categories();
        let chans = channels();
        let ctx = ValidationContext {
            categories: &cats,
            channels: &chans,
        };
        parse_disclosure(&serde_json::to_vec(v).unwrap(), &ctx)
    }

    fn parse_raw(raw: &[u8]) -> Result<Disclosure, ValidationErrors> {
        let cats = categories();
        let chans = channels();
        let ctx = ValidationContext {
            categories: &cats,
            channels: &chans,
        };
        parse_disclosure(raw, &ctx)
    }

    /// Sets `review.content_sha256` to the hash of whichever body is present.
    fn rehash(mut v: Value) -> Value {
        let body = v
            .get("body_html")
            .or_else(|| v.get("body_markdown"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        v["review"]["content_sha256"] = json!(sha256_hex(body.as_bytes()));
        v
    }

    fn minimal() -> Value {
        rehash(json!({
            "disclosure_id": "zpmzj-2017-00001",
            "revision": 1,
            "title": "漳平市民政局主要职责",
            "publisher": "漳平市民政局",
            "formed_date": "2017-03-08",
            "category": "jgzn",
            "body_html": "<p>贯彻执行民政工作的法律法规和方针政策。</p>",
            "review": {
                "content_sha256": "",
                "steps": [{"role": "终审", "by": "u007", "at": "2017-03-09T09:12:00+08:00"}]
            }
        }))
    }

    fn full() -> Value {
        rehash(json!({
            "disclosure_id": "zpmzj-2017-00012",
            "revision": 1,
            "title": "关于2017年第一季度城乡低保资金发放情况的公示",
            "short_title": "一季度城乡低保资金发放公示",
            "publisher": "漳平市民政局",
            "publisher_code": "003781234",
            "formed_date": "2017-04-05",
            "publish_date": "2017-04-10",
            "valid_from": "2017-04-10",
            "valid_to": "2017-12-31",
            "category": "mzfp",
            "index_no": "003781234/2017-00012",
            "doc_no": "漳民〔2017〕21号",
            "abstract": "公示一季度城乡低保资金发放情况。",
            "body_html": "<p>现将2017年第一季度城乡低保资金发放情况公示如下。</p>",
            "body_text": "现将2017年第一季度城乡低保资金发放情况公示如下。",
            "attachments": [{
                "name": "发放汇总表.xlsx",
                "url": "https://www.zp.gov.cn/files/2017/dibao-q1.xlsx",
                "sha256": "a".repeat(64),
                "bytes": 48213,
                "mime": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
            }],
            "art20_item": "十一",
            "doc_kind": "其他文件",
            "validity": "有效",
            "disclosure_mode": "主动公开",
            "scope": "面向社会",
            "theme_category": ["民政、扶贫、救灾", "社会救助"],
            "genre": "公示",
            "catalog_code": "SHJZ-ZJFF",
            "keywords": ["低保", "资金发放"],
            "interprets": null,
            "replaces": "zpmzj-2016-00031",
            "deadline": {"basis": "formed_date", "working_days": 10, "due": "2017-04-19"},
            "display_min_working_days": 7,
            "channels": ["gov_site", "wechat"],
            "led_text": "2017年第一季度城乡低保资金已发放，详情见政府网站。",
            "review": {
                "content_sha256": "",
                "steps": [
                    {"role": "初审", "by": "u102", "at": "2017-04-06T09:12:00+08:00"},
                    {"role": "复审", "by": "u031", "at": "2017-04-06T15:40:00+08:00"},
                    {"role": "终审", "by": "u007", "at": "2017-04-07T08:55:00+08:00"}
                ],
                "secrecy_review": true,
                "pii_check": "passed"
            }
        }))
    }

    fn problems(v: &Value) -> Vec<FieldError> {
        match parse(v) {
            Ok(d) => panic!("expected problems, got a valid disclosure: {d:?}"),
            Err(e) => e.0,
        }
    }

    fn assert_problem(errs: &[FieldError], path: &str, needle: &str) {
        assert!(
            errs.iter()
                .any(|e| e.path == path && e.message.contains(needle)),
            "no problem at {path:?} containing {needle:?}; got:\n{}",
            ValidationErrors(errs.to_vec())
        );
    }

    #[test]
    fn valid_minimal_disclosure() {
        let d = parse(&minimal()).expect("valid");
        assert_eq!(d.disclosure_id, "zpmzj-2017-00001");
        assert_eq!(d.revision, 1);
        assert_eq!(d.formed_date, NaiveDate::from_ymd_opt(2017, 3, 8).unwrap());
        assert_eq!(d.review.steps.len(), 1);
        assert_eq!(d.body_markdown, None);
        assert!(d.attachments.is_empty());
        assert_eq!(d.channels, None);
    }

    #[test]
    fn valid_full_disclosure_keeps_every_field() {
        let v = full();
        let d = parse(&v).expect("valid");
        assert_eq!(d.short_title.as_deref(), Some("一季度城乡低保资金发放公示"));
        assert_eq!(
            d.abstract_.as_deref(),
            Some("公示一季度城乡低保资金发放情况。")
        );
        assert_eq!(d.attachments[0].bytes, Some(48213));
        assert_eq!(d.deadline.as_ref().unwrap().working_days, Some(10));
        assert_eq!(d.channels.as_deref().unwrap(), ["gov_site", "wechat"]);
        assert_eq!(d.review.steps[2].role, "终审");
        assert_eq!(d.review.secrecy_review, Some(true));
        assert_eq!(d.interprets, None);
        // Round trip: what we store is what serde reads back.
        let back: Disclosure = serde_json::from_slice(&serde_json::to_vec(&d).unwrap()).unwrap();
        assert_eq!(back, d);
        // Every field of the input (except null ones) survives serialization.
        let out = serde_json::to_value(&d).unwrap();
        for (k, val) in v.as_object().unwrap() {
            if !val.is_null() {
                assert_eq!(&out[k], val, "field {k}");
            }
        }
    }

    #[test]
    fn many_problems_are_all_reported_at_once() {
        let v = json!({
            "disclosure_id": "zpmzj 2017/00001",
            "revision": 0,
            "title": "   ",
            "short_title": "这是一个非常非常非常非常非常非常非常非常非常非常非常长的微信标题超过三十二个字",
            "publiser": "漳平市民政局",
            "formed_date": "2017/03/08",
            "publish_date": "2017-02-30",
            "category": "xx",
            "body_html": "<p>正文</p>",
            "attachments": [{"name": "", "url": "ftp://example.org/a.pdf", "size": 3}],
            "deadline": {"working_days": -1, "due": "tomorrow", "bases": "x"},
            "channels": ["gov_site", "led_hall"],
            "keywords": ["低保", 3],
            "review": {
                "content_sha256": "ABC",
                "steps": [
                    {"role": "初审", "by": "u102", "at": "2017-03-08T09:12:00+08:00"},
                    {"role": "复审", "at": "2017-03-08 15:40"},
                    {"role": "终审", "by": "u007", "at": "2017-03-09T08:55:00+08:00", "note": "ok"}
                ],
                "secrecy": true
            }
        });
        let errs = problems(&v);
        let expected: &[(&str, &str)] = &[
            ("disclosure_id", "不允许的字符 空格"),
            ("revision", "版本号应为从 1 开始的整数"),
            ("title", "不能为空"),
            ("short_title", "最多 32 个字"),
            ("publiser", "未知字段（拼写错误？是否应为 \"publisher\"）"),
            ("publisher", "缺少必填字段"),
            (
                "formed_date",
                "日期格式错误：应为 YYYY-MM-DD，如 2017-03-08",
            ),
            ("publish_date", "日期不存在"),
            ("category", "未知分类代码 \"xx\"（可选：jgzn、zcfg、ghjh"),
            ("attachments[0].size", "未知字段"),
            ("attachments[0].name", "不能为空"),
            ("attachments[0].url", "http:// 或 https://"),
            ("deadline.bases", "是否应为 \"basis\""),
            ("deadline.working_days", "不小于 0 的整数"),
            ("deadline.due", "日期格式错误"),
            ("channels[1]", "未配置的渠道 \"led_hall\""),
            ("keywords[1]", "类型错误：应为字符串，收到的是整数"),
            ("review.secrecy", "未知字段"),
            ("review.content_sha256", "64 位小写十六进制"),
            ("review.steps[1].by", "缺少必填字段"),
            (
                "review.steps[1].at",
                "不是有效的时间：应为 RFC 3339，如 2017-03-08T09:12:00+08:00",
            ),
            ("review.steps[2].note", "未知字段"),
        ];
        for (path, needle) in expected {
            assert_problem(&errs, path, needle);
        }
        assert_eq!(
            errs.len(),
            expected.len(),
            "unexpected extra problems:\n{}",
            ValidationErrors(errs.clone())
        );
    }

    #[test]
    fn markdown_body_is_rendered_and_kept() {
        let md = "## 办理流程\n\n1. 申请\n2. 审核\n\n| 项目 | 标准 |\n|---|---|\n| 城市低保 | 每人每月 570 元 |\n\n**注意**：材料须真实。\n";
        let mut v = minimal();
        let obj = v.as_object_mut().unwrap();
        obj.remove("body_html");
        obj.insert("body_markdown".into(), json!(md));
        let v = rehash(v);
        let d = parse(&v).expect("valid");
        assert_eq!(d.body_markdown.as_deref(), Some(md));
        assert!(d.body_html.contains("<h2>办理流程</h2>"), "{}", d.body_html);
        assert!(d.body_html.contains("<ol>"));
        assert!(d.body_html.contains("<table>"));
        assert!(d.body_html.contains("<strong>注意</strong>"));
        // The hash is over the markdown as sent, not over the rendered HTML.
        assert_eq!(d.review.content_sha256, sha256_hex(md.as_bytes()));
    }

    #[test]
    fn body_changed_after_review_is_a_hash_mismatch() {
        let mut v = minimal();
        let approved = v["review"]["content_sha256"].as_str().unwrap().to_string();
        v["body_html"] = json!("<p>审核后被改动的正文。</p>");
        let actual = sha256_hex("<p>审核后被改动的正文。</p>".as_bytes());
        let errs = problems(&v);
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].path, "review.content_sha256");
        assert!(errs[0].message.starts_with(&format!(
            "内容哈希不符：审核时的正文哈希为 {approved}，收到的正文哈希为 {actual}"
        )));
    }

    #[test]
    fn hash_is_over_the_json_string_value_not_the_escaped_text() {
        // "\u6f33" in the JSON text is the string "漳": the hash is over the UTF-8 of "漳".
        let body = "<p>漳平</p>";
        let raw = format!(
            r#"{{"disclosure_id":"a","revision":1,"title":"t","publisher":"p","formed_date":"2017-01-03","category":"jgzn","body_html":"<p>\u6f33\u5e73</p>","review":{{"content_sha256":"{}","steps":[{{"role":"终审","by":"u1","at":"2017-01-03T10:00:00+08:00"}}]}}}}"#,
            sha256_hex(body.as_bytes())
        );
        let d = parse_raw(raw.as_bytes()).expect("valid");
        assert_eq!(d.body_html, body);
    }

    #[test]
    fn table_driven_cases() {
        type Mutate = fn(&mut Value);
        let cases: &[(&str, Mutate, &str, &str)] = &[
            (
                "missing id",
                |v| drop(v.as_object_mut().unwrap().remove("disclosure_id")),
                "disclosure_id",
                "缺少必填字段",
            ),
            (
                "null title",
                |v| v["title"] = Value::Null,
                "title",
                "缺少必填字段",
            ),
            (
                "revision as string",
                |v| v["revision"] = json!("1"),
                "revision",
                "版本号应为从 1 开始的整数",
            ),
            (
                "revision float",
                |v| v["revision"] = json!(1.5),
                "revision",
                "版本号应为从 1 开始的整数",
            ),
            (
                "revision negative",
                |v| v["revision"] = json!(-2),
                "revision",
                "收到 -2",
            ),
            (
                "id too long",
                |v| v["disclosure_id"] = json!("a".repeat(129)),
                "disclosure_id",
                "编号过长",
            ),
            (
                "id chinese",
                |v| v["disclosure_id"] = json!("民政-1"),
                "disclosure_id",
                "\"民\"",
            ),
            (
                "title too long",
                |v| v["title"] = json!("长".repeat(201)),
                "title",
                "最多 200 个字",
            ),
            (
                "title newline",
                |v| v["title"] = json!("第一行\n第二行"),
                "title",
                "控制字符",
            ),
            (
                "title number",
                |v| v["title"] = json!(42),
                "title",
                "类型错误：应为字符串",
            ),
            (
                "empty optional",
                |v| v["doc_no"] = json!(""),
                "doc_no",
                "不能为空",
            ),
            (
                "date not padded",
                |v| v["formed_date"] = json!("2017-3-8"),
                "formed_date",
                "日期格式错误",
            ),
            (
                "date as number",
                |v| v["formed_date"] = json!(20170308),
                "formed_date",
                "日期格式错误",
            ),
            (
                "publish before formed",
                |v| v["publish_date"] = json!("2017-03-01"),
                "publish_date",
                "早于成文",
            ),
            (
                "valid_to before valid_from",
                |v| {
                    v["valid_from"] = json!("2017-05-01");
                    v["valid_to"] = json!("2017-04-01");
                },
                "valid_to",
                "早于起始日",
            ),
            (
                "unknown category",
                |v| v["category"] = json!("caiwu"),
                "category",
                "未知分类代码 \"caiwu\"",
            ),
            (
                "unknown field",
                |v| v["tittle"] = json!("x"),
                "tittle",
                "是否应为 \"title\"",
            ),
            (
                "unknown channel",
                |v| v["channels"] = json!(["weixin"]),
                "channels[0]",
                "未配置的渠道 \"weixin\"",
            ),
            (
                "duplicate channel",
                |v| v["channels"] = json!(["gov_site", "gov_site"]),
                "channels[1]",
                "重复",
            ),
            (
                "empty channels",
                |v| v["channels"] = json!([]),
                "channels",
                "不能为空",
            ),
            (
                "channels not array",
                |v| v["channels"] = json!("gov_site"),
                "channels",
                "应为字符串数组",
            ),
            (
                "no body",
                |v| drop(v.as_object_mut().unwrap().remove("body_html")),
                "body_html",
                "二选一",
            ),
            (
                "both bodies",
                |v| v["body_markdown"] = json!("正文"),
                "body_markdown",
                "只能提供一个",
            ),
            (
                "blank body",
                |v| v["body_html"] = json!("  \n"),
                "body_html",
                "不能为空",
            ),
            (
                "art20 bracketed",
                |v| v["art20_item"] = json!("（十一）"),
                "art20_item",
                "一 至 十五",
            ),
            (
                "display days negative",
                |v| v["display_min_working_days"] = json!(-7),
                "display_min_working_days",
                "不小于 0",
            ),
            (
                "attachment no url",
                |v| v["attachments"] = json!([{"name": "a.pdf"}]),
                "attachments[0].url",
                "缺少必填字段",
            ),
            (
                "attachment bad url",
                |v| v["attachments"] = json!([{"name": "a.pdf", "url": "/files/a.pdf"}]),
                "attachments[0].url",
                "https://",
            ),
            (
                "attachment not object",
                |v| v["attachments"] = json!(["a.pdf"]),
                "attachments[0]",
                "应为对象",
            ),
            (
                "attachment bad sha",
                |v| v["attachments"] = json!([{"name": "a.pdf", "url": "http://x.cn/a.pdf", "sha256": "B".repeat(64)}]),
                "attachments[0].sha256",
                "小写",
            ),
            (
                "deadline not object",
                |v| v["deadline"] = json!(10),
                "deadline",
                "应为对象",
            ),
            (
                "no review",
                |v| drop(v.as_object_mut().unwrap().remove("review")),
                "review",
                "先审后发",
            ),
            (
                "review not object",
                |v| v["review"] = json!("ok"),
                "review",
                "应为对象",
            ),
            (
                "no content hash",
                |v| {
                    drop(
                        v["review"]
                            .as_object_mut()
                            .unwrap()
                            .remove("content_sha256"),
                    )
                },
                "review.content_sha256",
                "缺少必填字段",
            ),
            (
                "uppercase hash",
                |v| {
                    let h = v["review"]["content_sha256"]
                        .as_str()
                        .unwrap()
                        .to_uppercase();
                    v["review"]["content_sha256"] = json!(h);
                },
                "review.content_sha256",
                "小写",
            ),
            (
                "no steps",
                |v| drop(v["review"].as_object_mut().unwrap().remove("steps")),
                "review.steps",
                "缺少必填字段",
            ),
            (
                "empty steps",
                |v| v["review"]["steps"] = json!([]),
                "review.steps",
                "不能为空",
            ),
            (
                "step without role",
                |v| {
                    drop(
                        v["review"]["steps"][0]
                            .as_object_mut()
                            .unwrap()
                            .remove("role"),
                    )
                },
                "review.steps[0].role",
                "缺少必填字段",
            ),
            (
                "step time without zone",
                |v| v["review"]["steps"][0]["at"] = json!("2017-03-09T09:12:00"),
                "review.steps[0].at",
                "RFC 3339",
            ),
            (
                "step unknown field",
                |v| v["review"]["steps"][0]["who"] = json!("x"),
                "review.steps[0].who",
                "未知字段",
            ),
            (
                "secrecy not bool",
                |v| v["review"]["secrecy_review"] = json!("yes"),
                "review.secrecy_review",
                "布尔值",
            ),
        ];
        for (name, mutate, path, needle) in cases {
            let mut v = minimal();
            mutate(&mut v);
            let errs = match parse(&v) {
                Ok(_) => panic!("case {name:?}: expected a problem at {path}"),
                Err(e) => e.0,
            };
            assert!(
                errs.iter()
                    .any(|e| e.path == *path && e.message.contains(needle)),
                "case {name:?}: no problem at {path:?} containing {needle:?}; got:\n{}",
                ValidationErrors(errs.clone())
            );
        }
    }

    #[test]
    fn not_json_or_not_an_object_is_one_problem_at_the_root() {
        for raw in [
            &b""[..],
            b"   ",
            b"{\"title\": ",
            b"not json",
            b"[1,2]",
            b"\"text\"",
            b"\xff\xfe",
        ] {
            let errs = parse_raw(raw).unwrap_err().0;
            assert_eq!(errs.len(), 1, "{raw:?}: {errs:?}");
            assert_eq!(errs[0].path, "$");
        }
        let errs = parse_raw(b"[1,2]").unwrap_err().0;
        assert!(
            errs[0].message.contains("应为 JSON 对象"),
            "{}",
            errs[0].message
        );
        let errs = parse_raw(b"{\"a\": 1,}").unwrap_err().0;
        assert!(errs[0].message.contains("第 1 行"), "{}", errs[0].message);
    }

    #[test]
    fn errors_display_and_json_body() {
        let errs = ValidationErrors(vec![
            FieldError {
                path: "title".into(),
                message: "不能为空".into(),
            },
            FieldError {
                path: "review.steps[1].at".into(),
                message: "缺少必填字段".into(),
            },
        ]);
        assert_eq!(
            errs.to_string(),
            "title：不能为空\nreview.steps[1].at：缺少必填字段"
        );
        let body = errs.to_json();
        assert_eq!(
            body,
            json!({
                "error": "invalid_disclosure",
                "message": "公开件有 2 处问题",
                "problems": [
                    {"path": "title", "message": "不能为空"},
                    {"path": "review.steps[1].at", "message": "缺少必填字段"}
                ]
            })
        );
        assert_eq!(serde_json::to_value(&errs).unwrap(), body);
        let as_error: &dyn std::error::Error = &errs;
        assert!(as_error.to_string().contains("title"));
    }

    #[test]
    fn content_hash_tells_identical_resubmissions_apart() {
        let a = parse(&full()).unwrap();
        let b = parse(&full()).unwrap();
        assert_eq!(content_hash(&a), content_hash(&b));
        assert!(is_sha256_hex(&content_hash(&a)));
        // Key order in the submitted JSON does not matter: the hash is over the struct.
        let reordered: Value = {
            let mut pairs: Vec<(String, Value)> =
                full().as_object().unwrap().clone().into_iter().collect();
            pairs.reverse();
            Value::Object(pairs.into_iter().collect())
        };
        assert_eq!(content_hash(&parse(&reordered).unwrap()), content_hash(&a));
        let mut changed = full();
        changed["title"] = json!("关于2017年第一季度城乡低保资金发放情况的公示（更正）");
        assert_ne!(content_hash(&parse(&changed).unwrap()), content_hash(&a));
        assert_eq!(
            content_hash(&a),
            sha256_hex(&serde_json::to_vec(&a).unwrap())
        );
    }

    #[test]
    fn null_optional_fields_count_as_absent() {
        let mut v = minimal();
        for k in [
            "short_title",
            "publish_date",
            "channels",
            "deadline",
            "attachments",
            "keywords",
        ] {
            v[k] = Value::Null;
        }
        let d = parse(&v).expect("valid");
        assert_eq!(d.short_title, None);
        assert_eq!(d.channels, None);
    }
}
