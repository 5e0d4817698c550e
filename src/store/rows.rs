//! Reading rows into the store's types, shared by the two backends. Both schemas keep the
//! same columns with the same meaning (timestamps as milliseconds, dates as YYYY-MM-DD
//! text, enums as their names), so a ledger row maps to the same struct whichever
//! database it came from; only the driver's row type differs, and `Columns` hides it.

use std::fmt::Display;
use std::str::FromStr;

use anyhow::anyhow;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::Row;

use super::{
    AttemptRow, DeliveryRow, PublishedItem, PublishedRow, ReportRevision, StoreError, StoreResult,
    StoredDisclosure,
};

/// The columns `delivery_from_row` reads, in a SELECT of `deliveries`.
macro_rules! delivery_cols {
    () => {
        "id, department, disclosure_id, revision, channel, kind, action, status, attempts, attempts_base, \
         next_attempt_at, next_trigger, requested_by, claimed_by, claimed_until, remote_id, url, \
         last_error, payload, payload_sha256, created_at, updated_at, delivered_at, progress, \
         displayed_until"
    };
}
pub(super) use delivery_cols;

/// The columns `disclosure_from_row` reads, of `disclosures` as `s`.
macro_rules! disclosure_cols {
    () => {
        "s.department, s.disclosure_id, s.revision, s.title, s.category, s.publish_date, s.formed_date, \
         s.content_hash, s.json, s.submitted_by, s.received_at, s.withdrawn_at, s.withdrawn_by, \
         s.withdraw_reason"
    };
}
pub(super) use disclosure_cols;

/// How much of an error text a delivery keeps as `last_error`.
pub(super) const DETAIL_MAX_CHARS: usize = 2000;

/// `s` cut to `DETAIL_MAX_CHARS` characters, with an ellipsis when cut.
pub(super) fn truncate(s: &str) -> String {
    match s.char_indices().nth(DETAIL_MAX_CHARS) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_string(),
    }
}

pub(super) fn not_found_delivery(id: i64) -> StoreError {
    StoreError::NotFound(format!("没有这个投递（编号 {id}）"))
}

/// A database error with what the store was doing.
pub(super) fn other<E>(e: E, context: impl Display) -> StoreError
where
    E: std::error::Error + Send + Sync + 'static,
{
    StoreError::Other(anyhow::Error::new(e).context(context.to_string()))
}

pub(super) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(super) fn from_ms(v: i64, name: &str) -> StoreResult<DateTime<Utc>> {
    DateTime::from_timestamp_millis(v)
        .ok_or_else(|| StoreError::Other(anyhow!("column {name}: timestamp {v} is out of range")))
}

pub(super) fn date_text(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

pub(super) fn parse_date(s: &str, name: &str) -> StoreResult<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|e| other(e, format!("column {name}: {s:?} is not a YYYY-MM-DD date")))
}

/// A column value either driver decodes the same way.
pub(super) trait Value: Sized {
    fn from_sqlite(row: &SqliteRow, name: &str) -> Result<Self, sqlx::Error>;
    fn from_pg(row: &PgRow, name: &str) -> Result<Self, sqlx::Error>;
}

macro_rules! values {
    ($($t:ty),* $(,)?) => {$(
        impl Value for $t {
            fn from_sqlite(row: &SqliteRow, name: &str) -> Result<Self, sqlx::Error> {
                row.try_get(name)
            }
            fn from_pg(row: &PgRow, name: &str) -> Result<Self, sqlx::Error> {
                row.try_get(name)
            }
        }
    )*};
}

values!(
    i64,
    Option<i64>,
    String,
    Option<String>,
    Vec<u8>,
    Option<Vec<u8>>,
    bool,
);

/// A row of either backend, read by column name; errors name the column.
pub(super) trait Columns {
    fn value<T: Value>(&self, name: &str) -> Result<T, sqlx::Error>;
}

impl Columns for SqliteRow {
    fn value<T: Value>(&self, name: &str) -> Result<T, sqlx::Error> {
        T::from_sqlite(self, name)
    }
}

impl Columns for PgRow {
    fn value<T: Value>(&self, name: &str) -> Result<T, sqlx::Error> {
        T::from_pg(self, name)
    }
}

pub(super) fn col<T: Value>(row: &impl Columns, name: &str) -> StoreResult<T> {
    row.value(name)
        .map_err(|e| other(e, format!("reading column {name}")))
}

pub(super) fn ts(row: &impl Columns, name: &str) -> StoreResult<DateTime<Utc>> {
    from_ms(col(row, name)?, name)
}

pub(super) fn opt_ts(row: &impl Columns, name: &str) -> StoreResult<Option<DateTime<Utc>>> {
    col::<Option<i64>>(row, name)?
        .map(|v| from_ms(v, name))
        .transpose()
}

pub(super) fn date(row: &impl Columns, name: &str) -> StoreResult<NaiveDate> {
    parse_date(&col::<String>(row, name)?, name)
}

pub(super) fn opt_date(row: &impl Columns, name: &str) -> StoreResult<Option<NaiveDate>> {
    col::<Option<String>>(row, name)?
        .map(|s| parse_date(&s, name))
        .transpose()
}

pub(super) fn enum_col<T: FromStr<Err = String>>(row: &impl Columns, name: &str) -> StoreResult<T> {
    let text: String = col(row, name)?;
    text.parse()
        .map_err(|e: String| StoreError::Other(anyhow!("column {name}: {e}")))
}

pub(super) fn disclosure_from_row(row: &impl Columns) -> StoreResult<StoredDisclosure> {
    Ok(StoredDisclosure {
        department: col(row, "department")?,
        disclosure_id: col(row, "disclosure_id")?,
        revision: col(row, "revision")?,
        title: col(row, "title")?,
        category: col(row, "category")?,
        publish_date: opt_date(row, "publish_date")?,
        formed_date: date(row, "formed_date")?,
        content_hash: col(row, "content_hash")?,
        json: col(row, "json")?,
        submitted_by: col(row, "submitted_by")?,
        received_at: ts(row, "received_at")?,
        withdrawn_at: opt_ts(row, "withdrawn_at")?,
        withdrawn_by: col(row, "withdrawn_by")?,
        withdraw_reason: col(row, "withdraw_reason")?,
    })
}

pub(super) fn delivery_from_row(row: &impl Columns) -> StoreResult<DeliveryRow> {
    Ok(DeliveryRow {
        id: col(row, "id")?,
        department: col(row, "department")?,
        disclosure_id: col(row, "disclosure_id")?,
        revision: col(row, "revision")?,
        channel: col(row, "channel")?,
        kind: enum_col(row, "kind")?,
        action: enum_col(row, "action")?,
        status: enum_col(row, "status")?,
        attempts: col(row, "attempts")?,
        attempts_base: col(row, "attempts_base")?,
        next_attempt_at: opt_ts(row, "next_attempt_at")?,
        next_trigger: enum_col(row, "next_trigger")?,
        requested_by: col(row, "requested_by")?,
        claimed_by: col(row, "claimed_by")?,
        claimed_until: opt_ts(row, "claimed_until")?,
        remote_id: col(row, "remote_id")?,
        url: col(row, "url")?,
        last_error: col(row, "last_error")?,
        payload: col(row, "payload")?,
        payload_sha256: col(row, "payload_sha256")?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
        delivered_at: opt_ts(row, "delivered_at")?,
        progress: col::<Option<String>>(row, "progress")?
            .map(|p| serde_json::from_str(&p).map_err(|e| other(e, "column progress: not JSON")))
            .transpose()?,
        displayed_until: opt_ts(row, "displayed_until")?,
    })
}

pub(super) fn attempt_from_row(row: &impl Columns) -> StoreResult<AttemptRow> {
    Ok(AttemptRow {
        id: col(row, "id")?,
        delivery_id: col(row, "delivery_id")?,
        number: col(row, "number")?,
        trigger: enum_col(row, "trigger")?,
        requested_by: col(row, "requested_by")?,
        instance: col(row, "instance")?,
        started_at: ts(row, "started_at")?,
        finished_at: ts(row, "finished_at")?,
        outcome: enum_col(row, "outcome")?,
        http_status: col(row, "http_status")?,
        remote_code: col(row, "remote_code")?,
        detail: col(row, "detail")?,
        remote_id: col(row, "remote_id")?,
        duration_ms: col(row, "duration_ms")?,
    })
}

/// A row of the report's revision list (`report_revisions`).
pub(super) fn report_revision_from_row(row: &impl Columns) -> StoreResult<ReportRevision> {
    Ok(ReportRevision {
        disclosure_id: col(row, "disclosure_id")?,
        revision: col(row, "revision")?,
        title: col(row, "title")?,
        category: col(row, "category")?,
        publish_date: opt_date(row, "publish_date")?,
        formed_date: date(row, "formed_date")?,
        item_first_delivered_on: date(row, "item_first_on")?,
        delivered_on: opt_date(row, "delivered_on")?,
        art20_item: col(row, "art20_item")?,
        doc_kind: col(row, "doc_kind")?,
        validity: col(row, "validity")?,
        replaces: col(row, "replaces")?,
        valid_to: opt_date(row, "valid_to")?,
    })
}

/// A row of `list_published`: one item on one channel.
pub(super) fn published_row_from_row(row: &impl Columns) -> StoreResult<PublishedRow> {
    Ok(PublishedRow {
        disclosure_id: col(row, "disclosure_id")?,
        category: col(row, "category")?,
        channel: col(row, "channel")?,
        kind: enum_col(row, "kind")?,
        publish_date: opt_date(row, "publish_date")?,
        first_delivered_at: ts(row, "first_delivered_at")?,
    })
}

/// A published item of the callback's answers (search hits, latest items).
pub(super) fn published_item_from_row(row: &impl Columns) -> StoreResult<PublishedItem> {
    Ok(PublishedItem {
        disclosure_id: col(row, "disclosure_id")?,
        revision: col(row, "revision")?,
        title: col(row, "title")?,
        category: col(row, "category")?,
        publish_date: opt_date(row, "publish_date")?,
        url: col(row, "url")?,
        delivered_at: opt_ts(row, "delivered_at")?,
    })
}

/// Rows of `search_published`/`latest_published`, one per disclosure (its first row), in
/// order, at most `limit`.
pub(super) fn published_items<R: Columns>(
    rows: &[R],
    limit: usize,
) -> StoreResult<Vec<PublishedItem>> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for r in rows {
        if !seen.insert(col::<String>(r, "disclosure_id")?) {
            continue;
        }
        out.push(published_item_from_row(r)?);
        if out.len() == limit {
            break;
        }
    }
    Ok(out)
}
