//! The delivery ledger behind one trait. Owns: the row types, `StoreError`, the `Store`
//! trait with methods named by intent, and `connect(database_url)` that picks the
//! implementation from the URL scheme. Leaves validation, routing and retry policy to the
//! callers; the store keeps the invariants that must hold in one transaction (idempotent
//! ingest, claims with leases, superseding, append-only attempts).
//!
//! Designed so that several daemon instances can share one database: a delivery is worked
//! only under a claim (`claimed_by`, `claim_token`, `claimed_until`); a claim whose lease
//! expired (the instance died) is taken over, and the lost attempt is written down.

pub mod console;
mod console_sql;
pub mod postgres;
mod rows;
mod shared_sql;
pub mod sqlite;

pub use console::{
    DeliveryCount, DisclosureQuery, LastDelivered, NewOperator, NewSession, OperatorRow, Role,
    SessionRow,
};

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::domain::{Action, AttemptOutcome, AttemptTrigger, ChannelKind, DeliveryStatus};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found: {0}")]
    NotFound(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::RowNotFound => StoreError::NotFound("row not found".into()),
            other => StoreError::Other(anyhow::Error::new(other)),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The department (部门, the tenant) that everything stored before departments existed, and
/// everything of a config without `departments_dir`, belongs to: the top-level config.
pub const DEFAULT_DEPARTMENT: &str = "default";

/// A revision to store, with everything derived from it that the ledger indexes.
#[derive(Debug, Clone)]
pub struct NewDisclosure {
    pub disclosure_id: String,
    pub revision: i64,
    pub title: String,
    pub category: String,
    pub publish_date: Option<NaiveDate>,
    pub formed_date: NaiveDate,
    /// Lowercase hex SHA-256 of `json`: equal hashes = the same content (idempotent resubmit).
    pub content_hash: String,
    /// The validated disclosure as canonical JSON (`serde_json::to_string(&Disclosure)`).
    pub json: String,
    /// Who handed it in: "api", "cli:<user>" ...
    pub submitted_by: String,
}

/// One delivery to create with the revision.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub channel: String,
    pub kind: ChannelKind,
}

#[derive(Debug, Clone, Serialize)]
pub struct StoredDisclosure {
    /// The department that owns it.
    pub department: String,
    pub disclosure_id: String,
    pub revision: i64,
    pub title: String,
    pub category: String,
    pub publish_date: Option<NaiveDate>,
    pub formed_date: NaiveDate,
    pub content_hash: String,
    pub json: String,
    pub submitted_by: String,
    pub received_at: DateTime<Utc>,
    /// Set on every revision of a withdrawn disclosure.
    pub withdrawn_at: Option<DateTime<Utc>>,
    pub withdrawn_by: Option<String>,
    pub withdraw_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestOutcome {
    /// A new revision was stored; these deliveries were created.
    Created { delivery_ids: Vec<i64> },
    /// The same revision with the same content was stored before; nothing new was created.
    /// `delivery_ids` are the deliveries the first submission created.
    Unchanged { delivery_ids: Vec<i64> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WithdrawOutcome {
    /// Withdrawn now: unfinished publish deliveries were cancelled (`cancelled`) and a
    /// withdraw delivery was created for each channel that may hold the item (`delivery_ids`).
    Withdrawn {
        cancelled: Vec<i64>,
        delivery_ids: Vec<i64>,
    },
    /// It had been withdrawn before; nothing changed.
    AlreadyWithdrawn { delivery_ids: Vec<i64> },
}

#[derive(Debug, Clone, Serialize)]
pub struct DeliveryRow {
    pub id: i64,
    /// The department that owns it (the worker finds the channel by department and name).
    pub department: String,
    pub disclosure_id: String,
    pub revision: i64,
    pub channel: String,
    pub kind: ChannelKind,
    pub action: Action,
    pub status: DeliveryStatus,
    /// Attempts started so far (including one in flight).
    pub attempts: i64,
    /// `attempts` at the last operator retry: the retry policy counts from here.
    pub attempts_base: i64,
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Trigger of the next attempt: `manual` after an operator retry until it is claimed.
    pub next_trigger: AttemptTrigger,
    pub requested_by: Option<String>,
    pub claimed_by: Option<String>,
    pub claimed_until: Option<DateTime<Utc>>,
    pub remote_id: Option<String>,
    pub url: Option<String>,
    pub last_error: Option<String>,
    /// The exact bytes sent to the channel, fixed before the first send.
    #[serde(skip)]
    pub payload: Option<Vec<u8>>,
    pub payload_sha256: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When the channel first accepted it.
    pub delivered_at: Option<DateTime<Utc>>,
    /// What earlier attempts did (owned by the channel, e.g. WeChat's draft media_id and
    /// publish_id), saved under the claim before each next remote step.
    pub progress: Option<serde_json::Value>,
    /// When the item left a display channel (LED), for publish deliveries that put one up.
    pub displayed_until: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AttemptRow {
    pub id: i64,
    pub delivery_id: i64,
    pub number: i64,
    pub trigger: AttemptTrigger,
    /// The operator who asked, for manual attempts.
    pub requested_by: Option<String>,
    pub instance: Option<String>,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub outcome: AttemptOutcome,
    pub http_status: Option<i64>,
    pub remote_code: Option<String>,
    pub detail: Option<String>,
    pub remote_id: Option<String>,
    pub duration_ms: i64,
}

/// A delivery taken by one worker, with its claim token and what it needs to work.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub delivery: DeliveryRow,
    pub disclosure: StoredDisclosure,
    /// The number of the attempt this claim makes (= `delivery.attempts` after the claim).
    pub attempt_number: i64,
    pub trigger: AttemptTrigger,
    pub requested_by: Option<String>,
    /// Unique per claim: completion is accepted only with the token of the current claim.
    pub claim_token: String,
    pub started_at: DateTime<Utc>,
}

/// The attempt a worker finished, to append.
#[derive(Debug, Clone)]
pub struct NewAttempt {
    pub number: i64,
    pub trigger: AttemptTrigger,
    pub requested_by: Option<String>,
    pub instance: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub outcome: AttemptOutcome,
    pub http_status: Option<i64>,
    pub remote_code: Option<String>,
    pub detail: Option<String>,
    pub remote_id: Option<String>,
}

/// What the delivery becomes after the attempt.
#[derive(Debug, Clone)]
pub enum NextState {
    Delivered {
        remote_id: Option<String>,
        url: Option<String>,
    },
    Retry {
        at: DateTime<Utc>,
        error: String,
    },
    Dead {
        error: String,
    },
    /// The channel accepted the item and its outcome comes later: check again at `at`.
    /// Status `retrying`, but the wait does not use up the retry budget (`attempts_base`
    /// moves along with `attempts`).
    Awaiting {
        at: DateTime<Utc>,
        note: String,
    },
}

#[derive(Debug, Clone)]
pub struct Completion {
    pub delivery_id: i64,
    pub claim_token: String,
    pub attempt: NewAttempt,
    pub next: NextState,
}

#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    pub statuses: Vec<DeliveryStatus>,
    pub channel: Option<String>,
    pub disclosure_id: Option<String>,
    pub limit: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum RetryResult {
    /// Due now, with a manual trigger.
    Scheduled { id: i64 },
    /// Not retried; `reason` says why (already delivered, withdrawn, in flight, unknown id).
    Refused { id: i64, reason: String },
}

/// One delivered publish delivery, for counting (report).
#[derive(Debug, Clone, Serialize)]
pub struct PublishedRow {
    pub disclosure_id: String,
    pub category: String,
    pub channel: String,
    pub kind: ChannelKind,
    /// The item's publish_date (of its first revision that has one).
    pub publish_date: Option<NaiveDate>,
    /// The first time this channel accepted any revision of the item.
    pub first_delivered_at: DateTime<Utc>,
}

/// Published items grouped for counting (report, deadlines): `items` (disclosure, channel)
/// pairs that share every other field. Compact: one row per distinct combination, so a
/// ledger of a million deliveries gives a few thousand groups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublishedGroup {
    pub channel: String,
    pub kind: ChannelKind,
    /// The category of the item's latest revision.
    pub category: String,
    /// The year the item counts in: its publish_date's year (first revision that has one),
    /// else the year (China time, UTC+8) of its first delivery on any channel.
    pub count_year: i32,
    /// The formed date (生成日期) of the item's first revision: the deadline's start.
    pub formed_date: NaiveDate,
    /// The day (China time) this channel first accepted any revision of the item.
    pub delivered_on: NaiveDate,
    /// True for exactly one channel per item (the first channel name in byte order), so
    /// summing `items` over primary groups counts each item once.
    pub primary: bool,
    pub items: u64,
}

/// One stored revision of an item that was delivered at least once (any channel), with the
/// document attributes table 二 of the 2021 report reads (第二十条 item, document kind,
/// validity, the document it replaces). Only revisions that carry one of them are listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReportRevision {
    pub disclosure_id: String,
    pub revision: i64,
    pub title: String,
    pub category: String,
    pub publish_date: Option<NaiveDate>,
    pub formed_date: NaiveDate,
    /// The day (China time, UTC+8) any revision of the item was first delivered anywhere.
    pub item_first_delivered_on: NaiveDate,
    /// The day (China time) this revision was first delivered anywhere; None if never.
    pub delivered_on: Option<NaiveDate>,
    pub art20_item: Option<String>,
    pub doc_kind: Option<String>,
    pub validity: Option<String>,
    pub replaces: Option<String>,
    pub valid_to: Option<NaiveDate>,
}

/// Isolation between departments is kept here, in SQL: every method that reads or changes
/// a department's data takes the department (its code) and only ever sees that
/// department's rows; an id of another department's delivery or disclosure is "not found".
/// The queue is one for every department: `claim_due`, `next_due_at`, `wait_for_work` and
/// the worker's own methods under a claim token (`store_payload`, `complete_attempt`,
/// `release_claim`, `save_progress`) are global, and a claimed delivery says its department.
/// WeChat account state is keyed by appid (an appid belongs to one department).
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Stores a revision of `department` and, in the same transaction, its deliveries
    /// (status `pending`, due now). Idempotent on `(department, disclosure_id, revision)`:
    /// - same content hash as stored -> `Unchanged` (nothing created);
    /// - different content -> `Conflict`;
    /// - lower than a revision already stored, or the disclosure was withdrawn -> `Conflict`.
    ///
    /// A higher revision supersedes the older ones: their publish deliveries that are not
    /// finished and not in flight (`pending`, `retrying`, `dead`) become `withdrawn` with
    /// `last_error` saying which revision replaced them.
    async fn insert_disclosure(
        &self,
        department: &str,
        new: &NewDisclosure,
        deliveries: &[NewDelivery],
        now: DateTime<Utc>,
    ) -> StoreResult<IngestOutcome>;

    /// The latest revision, or the one asked for.
    async fn get_disclosure(
        &self,
        department: &str,
        disclosure_id: &str,
        revision: Option<i64>,
    ) -> StoreResult<StoredDisclosure>;

    /// Withdraws (撤回) every revision of a disclosure, in one transaction: unfinished
    /// publish deliveries that are not in flight become `withdrawn` (never sent); a
    /// `withdraw` delivery for the latest revision is created for each channel whose
    /// publish deliveries were delivered or were attempted at least once (the platform may
    /// hold the item). `NotFound` for an unknown id.
    async fn withdraw_disclosure(
        &self,
        department: &str,
        disclosure_id: &str,
        by: &str,
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> StoreResult<WithdrawOutcome>;

    /// Claims up to `limit` due deliveries for `instance`, oldest due first:
    /// `pending`/`retrying` with `next_attempt_at <= now`, and `in_flight` whose lease
    /// (`claimed_until`) expired; for those, a `lost` attempt is appended first.
    /// A delivery is not claimed while an older delivery (smaller id) of the same
    /// department, disclosure and channel is `pending`, `in_flight` or `retrying` (order: revision 1
    /// before revision 2, publish before withdraw). Each claim sets status `in_flight`,
    /// increments `attempts`, sets a fresh `claim_token` and `claimed_until = now + lease`,
    /// and resets `next_trigger` to scheduled.
    async fn claim_due(
        &self,
        instance: &str,
        now: DateTime<Utc>,
        lease: Duration,
        limit: usize,
    ) -> StoreResult<Vec<Claimed>>;

    /// Fixes the exact bytes to send, before the first send. Only under the current claim
    /// and only when no payload was stored yet (`Conflict` otherwise).
    async fn store_payload(
        &self,
        delivery_id: i64,
        claim_token: &str,
        payload: &[u8],
        payload_sha256: &str,
    ) -> StoreResult<()>;

    /// Appends the attempt row and moves the delivery to its next state, in one
    /// transaction. The attempt is always appended; the state changes only if
    /// `claim_token` is still the delivery's claim (otherwise another instance took it
    /// over and owns the state). `Retry`/`Dead` for a publish delivery that a newer
    /// delivery of the same disclosure and channel superseded become `withdrawn` instead.
    async fn complete_attempt(&self, completion: &Completion) -> StoreResult<()>;

    /// Gives a claim back without an attempt (graceful shutdown before sending): the
    /// delivery is due again at once, `attempts` is decremented.
    async fn release_claim(&self, delivery_id: i64, claim_token: &str) -> StoreResult<()>;

    /// The department's deliveries that match, by id.
    async fn list_deliveries(
        &self,
        department: &str,
        filter: &DeliveryFilter,
    ) -> StoreResult<Vec<DeliveryRow>>;

    /// A delivery of the department; `NotFound` also when it belongs to another one.
    async fn get_delivery(&self, department: &str, id: i64) -> StoreResult<DeliveryRow>;

    /// Every attempt of a delivery of the department, in order (`NotFound` as `get_delivery`).
    async fn list_attempts(
        &self,
        department: &str,
        delivery_id: i64,
    ) -> StoreResult<Vec<AttemptRow>>;

    /// Operator retry: each `dead`, `retrying` or `pending` delivery becomes `pending`, due
    /// now, with `next_trigger = manual`, `requested_by = by` and
    /// `attempts_base = attempts` (a fresh retry budget). History is never deleted.
    /// Others are refused with a reason (delivered, withdrawn, in flight, unknown id; a
    /// delivery of another department is an unknown id).
    async fn retry_now(
        &self,
        department: &str,
        ids: &[i64],
        by: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<RetryResult>>;

    /// Every publish delivery that was delivered at least once (status `delivered`, or
    /// `withdrawn` with `delivered_at` set), one row per (disclosure, channel), for counting.
    async fn list_published(&self, department: &str) -> StoreResult<Vec<PublishedRow>>;

    /// The same publish deliveries as `list_published` (delivered at least once; withdrawn
    /// later still counts), one per (disclosure, channel), grouped by every field of
    /// `PublishedGroup` and counted in the database, ordered by channel, category,
    /// count_year, formed_date, delivered_on, primary. China time is a fixed UTC+8 (no DST).
    /// Must answer within a second over a million deliveries: it is the report's only query.
    async fn published_groups(&self, department: &str) -> StoreResult<Vec<PublishedGroup>>;

    /// Every revision of an item with at least one delivered publish delivery (any channel,
    /// withdrawn later still counts) whose JSON has `doc_kind` 规章 or 行政规范性文件,
    /// `art20_item` 一, 五, 六 or 八, `validity` 废止 or 失效, or a `replaces`; ordered by
    /// disclosure_id, revision. For table 二 of the 2021 report (and its `--explain`).
    async fn report_revisions(&self, department: &str) -> StoreResult<Vec<ReportRevision>>;

    /// The earliest time a due delivery becomes due (for the worker's sleep), if any.
    async fn next_due_at(&self) -> StoreResult<Option<DateTime<Utc>>>;

    /// Records when a displayed item (an LED screen's) came down: sets `displayed_until` on
    /// the delivered publish delivery of that disclosure, revision and channel, unless it was
    /// set before (the first record wins: an item comes down once). Unknown rows are ignored.
    async fn record_displayed_until(
        &self,
        department: &str,
        channel: &str,
        disclosure_id: &str,
        revision: i64,
        at: DateTime<Utc>,
    ) -> StoreResult<()>;

    /// Saves what this attempt has done so far (the channel's own JSON), before the next
    /// remote step. Only under the current claim (`Conflict` otherwise: another instance
    /// took the delivery over and owns its progress).
    async fn save_progress(
        &self,
        delivery_id: i64,
        claim_token: &str,
        progress: &serde_json::Value,
    ) -> StoreResult<()>;

    // ---- WeChat official-account state, shared by every instance on this database ----

    /// The stored access_token of an account, if any.
    async fn wechat_token(&self, appid: &str) -> StoreResult<Option<WechatToken>>;

    /// Takes the single-flight refresh lock of an account's token for `lease`; false when
    /// another holder's lease is still running.
    async fn lock_wechat_token_refresh(
        &self,
        appid: &str,
        holder: &str,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> StoreResult<bool>;

    /// Stores a fresh token (counts a grant) and releases the lock `holder` held.
    async fn put_wechat_token(
        &self,
        appid: &str,
        holder: &str,
        access_token: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;

    /// Releases the refresh lock without a new token (the refresh failed).
    async fn unlock_wechat_token_refresh(&self, appid: &str, holder: &str) -> StoreResult<()>;

    /// An uploaded image/material by content hash.
    async fn wechat_media(
        &self,
        appid: &str,
        kind: &str,
        content_sha256: &str,
    ) -> StoreResult<Option<WechatMedia>>;

    async fn put_wechat_media(&self, media: &WechatMedia, now: DateTime<Utc>) -> StoreResult<()>;

    /// Records a PUBLISHJOBFINISH event once per (appid, publish_id); true when it is new.
    /// Deliveries waiting for that publish_id become due at `now`.
    async fn record_wechat_publish_event(
        &self,
        event: &WechatPublishEvent,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;

    async fn wechat_publish_event(
        &self,
        appid: &str,
        publish_id: &str,
    ) -> StoreResult<Option<WechatPublishEvent>>;

    // ---- operator console (issue 8): accounts, sessions, lists and counts ----

    /// Creates an operator account; `Conflict` when the name is taken.
    async fn create_operator(&self, new: &NewOperator, now: DateTime<Utc>) -> StoreResult<()>;

    async fn get_operator(&self, name: &str) -> StoreResult<Option<OperatorRow>>;

    async fn list_operators(&self) -> StoreResult<Vec<OperatorRow>>;

    /// Disables (or enables again) an account; disabling ends its sessions. `NotFound` for
    /// an unknown name.
    async fn set_operator_disabled(&self, name: &str, disabled: bool) -> StoreResult<()>;

    /// Counts a failed sign-in of an existing account, in one transaction: at
    /// `max_failures` consecutive failures the account is locked until `now + lock_for`
    /// and the count starts again. Returns the lock's end when this failure locked it.
    async fn record_failed_sign_in(
        &self,
        name: &str,
        now: DateTime<Utc>,
        max_failures: u32,
        lock_for: Duration,
    ) -> StoreResult<Option<DateTime<Utc>>>;

    /// A successful sign-in: resets the failure count and the lock.
    async fn record_sign_in(&self, name: &str, now: DateTime<Utc>) -> StoreResult<()>;

    /// Stores a session (and drops expired ones).
    async fn create_session(&self, session: &NewSession) -> StoreResult<()>;

    /// The session with this id hash, if it has not expired and its account is enabled.
    async fn get_session(
        &self,
        id_sha256: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<SessionRow>>;

    async fn delete_session(&self, id_sha256: &str) -> StoreResult<()>;

    /// The latest revision of each of the department's disclosures that match, newest
    /// received first.
    async fn list_disclosures(
        &self,
        department: &str,
        q: &DisclosureQuery,
    ) -> StoreResult<Vec<StoredDisclosure>>;

    /// Deliveries per channel and status (every action), counted in the database: of one
    /// department, or (`None`, for `/metrics`) of every department together.
    async fn count_deliveries(&self, department: Option<&str>) -> StoreResult<Vec<DeliveryCount>>;

    /// The last time each of the department's channels delivered a publish delivery.
    async fn last_delivered(&self, department: &str) -> StoreResult<Vec<LastDelivered>>;

    /// Deliveries due at `now` (`pending`/`retrying` whose time has come), of every
    /// department: the queue depth.
    async fn count_due(&self, now: DateTime<Utc>) -> StoreResult<i64>;
    /// The idle worker's wait: returns when new work may have been added (by any instance
    /// on this database) or after `timeout`, whichever comes first. Spurious early returns
    /// are allowed (the caller just looks again). The default sleeps for `timeout` (the
    /// worker's poll); PostgreSQL wakes on LISTEN/NOTIFY.
    async fn wait_for_work(&self, timeout: Duration) {
        tokio::time::sleep(timeout).await;
    }

    // ---- WeChat callback (issue 4): retries answered once, search over what is published ----

    /// Claims the answer of a pushed message (`key`: MsgId, or FromUserName+CreateTime+Event).
    /// `New` for the first request (do the work, then `answer_wechat_message`); `Answered`
    /// with the stored reply for a retry; `InProgress` while another request works on it.
    /// A claim unanswered for longer than `lease` (its instance died) is taken over (`New`).
    async fn claim_wechat_message(
        &self,
        appid: &str,
        key: &str,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> StoreResult<MessageClaim>;

    /// The common case in one write: the answer to a message computed before any claim
    /// (a fresh message, not a retry) is stored unless the message has a row already.
    /// Returns the reply to give: ours when stored (also when it takes over a claim older
    /// than `lease` that never got an answer), the stored one when another request
    /// answered first, None while another request is still working on it (answer
    /// `success`: that request sends its result). Counts the request as received.
    async fn record_wechat_answer(
        &self,
        appid: &str,
        key: &str,
        reply: &str,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> StoreResult<Option<String>>;

    /// A number that changes whenever this process changed what is published (a delivery
    /// completed, a disclosure withdrawn, revisions indexed). Answers cached by the
    /// callback are valid while it stays the same; changes made by other processes are
    /// not seen here (the cache also expires them after a short time).
    fn published_generation(&self) -> u64;

    /// Forgets the messages received before `before` (WeChat retries within seconds; the
    /// records only need to outlive a restart). The number forgotten.
    async fn purge_wechat_messages(&self, before: DateTime<Utc>) -> StoreResult<u64>;

    /// Records a MASSSENDJOBFINISH once per (appid, msg_id); true the first time (a
    /// repeat only counts).
    async fn record_wechat_mass_result(
        &self,
        result: &WechatMassResult,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;

    /// The recorded report on the mass send `msg_id` of `appid`, if WeChat sent one.
    async fn wechat_mass_result(
        &self,
        appid: &str,
        msg_id: &str,
    ) -> StoreResult<Option<WechatMassResult>>;

    /// Stores the plain reply body of a claimed message.
    async fn answer_wechat_message(
        &self,
        appid: &str,
        key: &str,
        reply: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;

    /// Adds the revisions stored since the last call to the full-text index (all of them
    /// on a fresh database); the number added. Cheap when there is nothing new.
    async fn refresh_search_index(&self) -> StoreResult<usize>;

    /// The department's published disclosures whose indexed text has all (`SearchMatch::All`) or any
    /// (`SearchMatch::Any`) of `tokens` (the index tokens of `wechat_callback::search`:
    /// letters and digits only; each backend builds its own query from them: FTS5 on
    /// SQLite, a tsquery on PostgreSQL), best first (relevance, then recency): the latest
    /// delivered revision on a `gov_site` channel, withdrawn ones never.
    async fn search_published(
        &self,
        department: &str,
        query: &crate::wechat_callback::search::SearchQuery,
        mode: SearchMatch,
        limit: usize,
    ) -> StoreResult<Vec<PublishedItem>>;

    /// The department's latest published disclosures (by publish date), optionally of one
    /// category.
    async fn latest_published(
        &self,
        department: &str,
        category: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<PublishedItem>>;
}

/// The store's side of `Store::published_generation`: bumped after each commit that may
/// have changed what is published.
#[derive(Debug, Default)]
pub struct PublishedGeneration(std::sync::atomic::AtomicU64);

impl PublishedGeneration {
    pub fn bump(&self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Release);
    }

    pub fn get(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::Acquire)
    }
}

/// How `search_published` combines its tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchMatch {
    /// Every token must appear.
    All,
    /// At least one token (ranked by how many and how rare).
    Any,
}

/// What `claim_wechat_message` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageClaim {
    New,
    Answered(String),
    InProgress,
}

/// A disclosure as the public sees it on the website, for callback replies.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PublishedItem {
    pub disclosure_id: String,
    pub revision: i64,
    pub title: String,
    pub category: String,
    pub publish_date: Option<NaiveDate>,
    /// The website URL the gov_site delivery recorded.
    pub url: Option<String>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// An account's access_token as stored.
#[derive(Debug, Clone)]
pub struct WechatToken {
    pub access_token: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub refreshing_by: Option<String>,
    pub refreshing_until: Option<DateTime<Utc>>,
    pub grants: i64,
}

/// An uploaded cover (`kind` = "image") or body image (`kind` = "uploadimg").
#[derive(Debug, Clone, PartialEq)]
pub struct WechatMedia {
    pub appid: String,
    pub kind: String,
    pub content_sha256: String,
    pub media_id: Option<String>,
    pub url: Option<String>,
}

/// The outcome of a `freepublish/submit` job, from the PUBLISHJOBFINISH push.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct WechatPublishEvent {
    pub appid: String,
    pub publish_id: String,
    pub publish_status: i64,
    pub article_id: Option<String>,
    pub article_url: Option<String>,
    pub fail_idx: Vec<i64>,
    /// How often WeChat sent it (filled in when read back).
    #[serde(default)]
    pub times_received: i64,
}

/// WeChat's report on a mass send (MASSSENDJOBFINISH): `status` is `send success`,
/// `send fail` or `err(N)`; the counts are approximate (WeChat sends it when the job is
/// nearly done).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct WechatMassResult {
    pub appid: String,
    pub msg_id: String,
    pub status: String,
    pub total_count: Option<i64>,
    pub filter_count: Option<i64>,
    pub sent_count: Option<i64>,
    pub error_count: Option<i64>,
    /// When it was first received (filled in when read back).
    #[serde(default)]
    pub received_at: Option<DateTime<Utc>>,
    /// How often WeChat sent it (filled in when read back).
    #[serde(default)]
    pub times_received: i64,
}

/// `database_url` without its password, for messages and logs.
pub fn redact_url(url: &str) -> String {
    postgres::redact(url)
}

/// How to open a store (from the config).
#[derive(Debug, Clone, Copy)]
pub struct ConnectOptions {
    /// PostgreSQL: the size of the connection pool (`database_max_connections`).
    /// SQLite ignores it (one writer, a few readers).
    pub max_connections: u32,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            max_connections: postgres::DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// Opens the store named by `database_url` with the default options and runs its
/// migrations.
pub async fn connect(database_url: &str) -> anyhow::Result<Arc<dyn Store>> {
    connect_with(database_url, ConnectOptions::default()).await
}

/// Opens the store named by `database_url` and runs its migrations:
/// `sqlite://path` (created if missing) or `postgres://user@host:port/db` (also
/// `postgresql://`; the database must exist).
pub async fn connect_with(
    database_url: &str,
    options: ConnectOptions,
) -> anyhow::Result<Arc<dyn Store>> {
    if let Some(rest) = database_url
        .strip_prefix("sqlite://")
        .or_else(|| database_url.strip_prefix("sqlite:"))
    {
        let store = sqlite::SqliteStore::open(rest).await?;
        Ok(Arc::new(store))
    } else if database_url.starts_with("postgres://") || database_url.starts_with("postgresql://") {
        let store = postgres::PostgresStore::open(database_url, options.max_connections).await?;
        Ok(Arc::new(store))
    } else {
        anyhow::bail!(
            "database_url {database_url:?} 无法识别：应以 sqlite:// 或 postgres:// 开头，例如 sqlite://gongkai.db"
        )
    }
}

/// `record_wechat_mass_result` (both backends): the first report is kept, a repeat
/// counts; returns how often it was received.
const MASS_RESULT_SQL: &str =
    "INSERT INTO wechat_mass_results (appid, msg_id, status, total_count, filter_count,
         sent_count, error_count, received_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT (appid, msg_id) DO UPDATE SET
         times_received = wechat_mass_results.times_received + 1
     RETURNING times_received";
