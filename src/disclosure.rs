//! The approved disclosure as it comes in from upstream (domain.md §4.4), and its validation.
//! Owns: the typed `Disclosure`, `parse_disclosure` (every problem reported at once, with the
//! field path and a reason in Chinese), markdown -> HTML, and the content hash used for
//! idempotency. Leaves storage to `store`, routing to `delivery`.

use chrono::{DateTime, FixedOffset, NaiveDate};
use serde::{Deserialize, Serialize};

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
    #[serde(
        rename = "abstract",
        default,
        skip_serializing_if = "Option::is_none"
    )]
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
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewStep {
    /// 初审, 复审, 终审 ...
    pub role: String,
    pub by: String,
    pub at: DateTime<FixedOffset>,
}
