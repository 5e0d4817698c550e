//! SQLite implementation of [`Store`]: the default, single-file ledger. Owns the SQL, the
//! connection setup (WAL, busy timeout, foreign keys), the embedded migrations in
//! `src/store/migrations/sqlite/`, and the mapping between rows and the row types of
//! `store/mod.rs`. Leaves retry policy, routing and validation to its callers.
//!
//! Two pools: every write transaction goes through a writer pool of one connection, so
//! writers inside this process queue in the pool instead of fighting over SQLite's write
//! lock; reads use a small reader pool, which WAL lets run next to the writer. Another
//! process (the CLI) may write to the same file: write transactions start with
//! `BEGIN IMMEDIATE`, so they take the write lock up front and wait (busy timeout) rather
//! than fail half-way when a read lock cannot be upgraded.
//!
//! The SQL is kept close to what PostgreSQL accepts so that `postgres.rs` can mirror it;
//! the few SQLite-only spots (`json_each` for id lists, `MAX(a, b)`) are marked.

use std::collections::HashMap;
use std::str::FromStr;

use anyhow::{anyhow, Context as _};
use sqlx::error::ErrorKind;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Sqlite, Transaction};
use tokio::sync::{mpsc, oneshot};

use super::rows::{
    attempt_from_row, col, date_text, delivery_cols, delivery_from_row, disclosure_cols,
    disclosure_from_row, enum_col, from_ms, ms, not_found_delivery, opt_date, opt_ts, other,
    parse_date, published_item_from_row, published_items, published_row_from_row,
    report_revision_from_row, truncate,
};
use super::shared_sql::published_filter;
use super::*;

/// How long a statement waits for another process's write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Readers run beside the writer (WAL); a few are enough for the API and the CLI lists.
const READER_CONNECTIONS: u32 = 4;

/// The claim columns are cleared together whenever a claim ends.
macro_rules! clear_claim {
    () => {
        "claimed_by = NULL, claim_token = NULL, claimed_at = NULL, claimed_until = NULL, \
         claim_trigger = NULL, claim_requested_by = NULL"
    };
}

/// Written on the `lost` attempt and as `last_error` when an abandoned claim is taken over.
/// `claimed_by` is the instance that held it.
macro_rules! lost_detail_sql {
    () => {
        "'上次尝试未完成：实例 ' || COALESCE(claimed_by, '（未知）') || \
         ' 在租约到期前未报告结果（可能已崩溃）'"
    };
}

/// Due rows, oldest first, skipping those that wait for an older sibling. For in_flight
/// rows next_attempt_at is the lease expiry, so expired claims come along.
/// (PostgreSQL: add `FOR UPDATE OF d SKIP LOCKED`.)
const CLAIM_CANDIDATES_SQL: &str = concat!(
    "SELECT d.id AS delivery_id, d.status AS delivery_status, ",
    disclosure_cols!(),
    " FROM deliveries d
     JOIN disclosures s ON s.department = d.department AND s.disclosure_id = d.disclosure_id
         AND s.revision = d.revision
     WHERE d.status IN ('pending', 'retrying', 'in_flight')
       AND d.next_attempt_at <= $1
       AND NOT EXISTS (
           SELECT 1 FROM deliveries o
           WHERE o.department = d.department AND o.disclosure_id = d.disclosure_id
             AND o.channel = d.channel
             AND o.id < d.id AND o.status IN ('pending', 'retrying', 'in_flight'))
     ORDER BY d.next_attempt_at, d.id
     LIMIT $2"
);

/// The rows of `report_published` (migrations 0005, 0008) for the items `filter` selects
/// (`"department = $1 AND disclosure_id = $2"` for one item; `"1 = 1"` for all): see
/// `published_groups`.
fn report_summary_select(filter: &str) -> String {
    format!(
        "WITH per AS (
             SELECT department, disclosure_id, channel, MAX(kind) AS kind,
                 MIN(delivered_at) AS first_at
             FROM deliveries
             WHERE action = 'publish' AND delivered_at IS NOT NULL AND {filter}
             GROUP BY department, disclosure_id, channel),
         item AS (
             SELECT department, disclosure_id,
                 substr(MAX(printf('%010d', revision) || category), 11) AS category,
                 substr(MIN(printf('%010d', revision) || formed_date), 11) AS formed_date,
                 substr(MIN(CASE WHEN publish_date IS NOT NULL
                            THEN printf('%010d', revision) || publish_date END), 11)
                     AS publish_date
             FROM disclosures
             WHERE {filter}
             GROUP BY department, disclosure_id),
         joined AS (
             SELECT p.department, p.disclosure_id, p.channel, p.kind, i.category,
                 i.formed_date, i.publish_date, p.first_at,
                 MIN(p.first_at) OVER (PARTITION BY p.department, p.disclosure_id)
                     AS item_first_at,
                 ROW_NUMBER() OVER (PARTITION BY p.department, p.disclosure_id
                                    ORDER BY p.channel) AS rn
             FROM per p JOIN item i ON i.department = p.department
                 AND i.disclosure_id = p.disclosure_id)
         SELECT department, disclosure_id, channel, kind, category,
             COALESCE(CAST(substr(publish_date, 1, 4) AS INTEGER),
                      CAST(strftime('%Y', item_first_at / 1000 + 28800, 'unixepoch') AS INTEGER)),
             formed_date,
             date(first_at / 1000 + 28800, 'unixepoch'),
             rn = 1
         FROM joined"
    )
}

const REPORT_SUMMARY_COLS: &str = "INSERT INTO report_published (department, disclosure_id, \
     channel, kind, category, count_year, formed_date, delivered_on, is_primary) ";

/// Rebuilds the whole report summary from the ledger (after a bulk load that bypassed the
/// store, as the 1M benchmark does). Run it in one transaction.
pub fn report_summary_rebuild_sql() -> String {
    format!(
        "DELETE FROM report_published; {REPORT_SUMMARY_COLS}{}",
        report_summary_select("1 = 1")
    )
}

/// Recomputes one item's rows of the report summary, inside the caller's transaction.
async fn refresh_report_item(
    tx: &mut Transaction<'static, Sqlite>,
    department: &str,
    disclosure_id: &str,
) -> StoreResult<()> {
    sqlx::query("DELETE FROM report_published WHERE department = $1 AND disclosure_id = $2")
        .bind(department)
        .bind(disclosure_id)
        .execute(&mut **tx)
        .await
        .map_err(|e| other(e, "refreshing the report summary"))?;
    sqlx::query(&format!(
        "{REPORT_SUMMARY_COLS}{}",
        report_summary_select("department = $1 AND disclosure_id = $2")
    ))
    .bind(department)
    .bind(disclosure_id)
    .execute(&mut **tx)
    .await
    .map_err(|e| other(e, "refreshing the report summary"))?;
    Ok(())
}

pub struct SqliteStore {
    pub(super) writer: SqlitePool,
    pub(super) reader: SqlitePool,
    /// Completions and payloads of concurrent attempts, committed together (group commit).
    group: mpsc::Sender<GroupedWrite>,
    /// The callback's answers, stored a batch per statement (`answer_batches`).
    answers: mpsc::Sender<AnswerJob>,
    published: Arc<PublishedGeneration>,
}

/// How many grouped writes one transaction takes at most.
const MAX_GROUP: usize = 128;

/// A write that may share its transaction with others that arrive at the same time. Each
/// waits for the commit of its group, so a caller still reads its own write afterwards.
enum GroupedWrite {
    Complete {
        completion: Completion,
        reply: oneshot::Sender<StoreResult<()>>,
    },
    Payload {
        delivery_id: i64,
        claim_token: String,
        payload: Vec<u8>,
        payload_sha256: String,
        reply: oneshot::Sender<StoreResult<()>>,
    },
}

impl GroupedWrite {
    fn reply(self, result: StoreResult<()>) {
        let reply = match self {
            GroupedWrite::Complete { reply, .. } | GroupedWrite::Payload { reply, .. } => reply,
        };
        // The caller may have gone (a shutdown); the write stands either way.
        let _ = reply.send(result);
    }
}

/// `record_wechat_answer`: under a burst of menu clicks the callback's answers arrive
/// thousands a second. What costs is not SQLite but each statement's trip to the
/// connection's thread and back, so a batch of answers is one multi-row statement.
struct AnswerJob {
    appid: String,
    key: String,
    body: String,
    now_ms: i64,
    stale_ms: i64,
    reply: oneshot::Sender<StoreResult<Option<String>>>,
}

/// How many answers one statement takes at most (5 parameters each).
const MAX_ANSWERS: usize = 256;

/// Takes answers as they come and stores each batch with one statement; when idle, an
/// answer waits for nobody.
async fn answer_batches(writer: SqlitePool, mut rx: mpsc::Receiver<AnswerJob>) {
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        while jobs.len() < MAX_ANSWERS {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        match record_answers(&writer, &jobs).await {
            Ok(stored) => {
                for job in jobs {
                    let given = stored
                        .get(&(job.appid, job.key))
                        .cloned()
                        .unwrap_or_default();
                    let _ = job.reply.send(Ok(given));
                }
            }
            Err(e) => {
                let msg = e.to_string();
                for job in jobs {
                    let _ = job.reply.send(Err(StoreError::Other(anyhow!("{msg}"))));
                }
            }
        }
    }
}

/// One statement for a batch of answers (see postgres.rs' `RECORD_ANSWER_SQL`, the one-row form): each
/// message once (a message twice in the batch counts twice), the reply to give by
/// (appid, key). A claim counts as stale by the batch's earliest lease.
async fn record_answers(
    writer: &SqlitePool,
    jobs: &[AnswerJob],
) -> StoreResult<HashMap<(String, String), Option<String>>> {
    let mut first: Vec<(&AnswerJob, i64)> = Vec::with_capacity(jobs.len());
    for job in jobs {
        match first
            .iter_mut()
            .find(|(j, _)| j.appid == job.appid && j.key == job.key)
        {
            Some((_, times)) => *times += 1,
            None => first.push((job, 1)),
        }
    }
    let stale_ms = jobs.iter().map(|j| j.stale_ms).min().unwrap_or(0);
    let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
        "INSERT INTO wechat_messages
             (appid, dedupe_key, reply, received_at, answered_at, times_received) ",
    );
    q.push_values(&first, |mut row, (job, times)| {
        row.push_bind(&job.appid)
            .push_bind(&job.key)
            .push_bind(&job.body)
            .push_bind(job.now_ms)
            .push_bind(job.now_ms)
            .push_bind(*times);
    });
    q.push(
        " ON CONFLICT (appid, dedupe_key) DO UPDATE SET
             times_received = wechat_messages.times_received + excluded.times_received,
             reply = CASE WHEN wechat_messages.reply IS NULL AND wechat_messages.received_at < ",
    )
    .push_bind(stale_ms)
    .push(
        " THEN excluded.reply ELSE wechat_messages.reply END,
             answered_at = CASE WHEN wechat_messages.reply IS NULL
                                     AND wechat_messages.received_at < ",
    )
    .push_bind(stale_ms)
    .push(
        " THEN excluded.answered_at ELSE wechat_messages.answered_at END
         RETURNING appid, dedupe_key, reply",
    );
    let rows = q
        .build()
        .fetch_all(writer)
        .await
        .map_err(|e| other(e, "storing WeChat answers"))?;
    let mut out = HashMap::with_capacity(rows.len());
    for r in &rows {
        out.insert(
            (col(r, "appid")?, col(r, "dedupe_key")?),
            col::<Option<String>>(r, "reply")?,
        );
    }
    Ok(out)
}

/// Takes grouped writes as they come and commits each batch in one transaction: under load
/// every attempt's completion costs its own statements but shares BEGIN, COMMIT and the
/// WAL write with the others, which is what lets one SQLite file keep up with thousands of
/// deliveries a second. When idle, a write waits for nobody.
async fn group_commit(
    writer: SqlitePool,
    mut rx: mpsc::Receiver<GroupedWrite>,
    published: Arc<PublishedGeneration>,
) {
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        while jobs.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let completes = jobs
            .iter()
            .any(|j| matches!(j, GroupedWrite::Complete { .. }));
        run_group(&writer, jobs).await;
        if completes {
            published.bump();
        }
    }
}

async fn run_group(writer: &SqlitePool, jobs: Vec<GroupedWrite>) {
    let mut tx = match begin_write(writer).await {
        Ok(tx) => tx,
        Err(e) => {
            let msg = e.to_string();
            for job in jobs {
                job.reply(Err(StoreError::Other(anyhow!("{msg}"))));
            }
            return;
        }
    };
    // Each job's statements either all take effect or, when it fails (the delivery is
    // gone, the claim was lost), change nothing: the failing statement is the first that
    // would write, so the group's other jobs are unaffected.
    let mut results = Vec::with_capacity(jobs.len());
    for job in &jobs {
        results.push(match job {
            GroupedWrite::Complete { completion, .. } => complete_in(&mut tx, completion).await,
            GroupedWrite::Payload {
                delivery_id,
                claim_token,
                payload,
                payload_sha256,
                ..
            } => payload_in(&mut tx, *delivery_id, claim_token, payload, payload_sha256).await,
        });
    }
    match tx.commit().await {
        Ok(()) => {
            for (job, result) in jobs.into_iter().zip(results) {
                job.reply(result);
            }
        }
        Err(e) => {
            let msg = format!("committing a group of {} writes: {e}", jobs.len());
            for job in jobs {
                job.reply(Err(StoreError::Other(anyhow!("{msg}"))));
            }
        }
    }
}

/// `BEGIN IMMEDIATE` on the writer, on a task of its own: a caller dropped while the begin
/// is in flight (an HTTP client that hung up) must not leave the one writer connection
/// inside a transaction sqlx no longer tracks, which fails every later write. If the
/// caller is gone, the finished transaction is dropped on that task and rolled back.
async fn begin_write(writer: &SqlitePool) -> StoreResult<Transaction<'static, Sqlite>> {
    let writer = writer.clone();
    tokio::spawn(async move { writer.begin_with("BEGIN IMMEDIATE").await })
        .await
        .map_err(|e| StoreError::Other(anyhow!("starting a write transaction: {e}")))?
        .map_err(|e| other(e, "starting a write transaction"))
}

impl SqliteStore {
    /// Opens (or creates) the database file at `path` and runs the migrations.
    pub async fn open(path: &str) -> anyhow::Result<SqliteStore> {
        // Two pools on an in-memory database would be two unrelated databases.
        if path.is_empty() || path.starts_with(":memory:") || path.contains("mode=memory") {
            anyhow::bail!(
                "SQLite store needs a file path, got {path:?} (in-memory databases are not supported)"
            );
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        // A local file cannot drop the connection the way a network database can, so the
        // ping before every acquire (a round trip to the connection's thread) buys nothing.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await
            .with_context(|| format!("opening SQLite database {path}"))?;
        sqlx::migrate!("src/store/migrations/sqlite")
            .run(&writer)
            .await
            .with_context(|| format!("migrating SQLite database {path}"))?;
        // Opened after the migrations so that no reader sees a half-built schema.
        let reader = SqlitePoolOptions::new()
            .max_connections(READER_CONNECTIONS)
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .with_context(|| format!("opening SQLite database {path} for reading"))?;
        let (group, rx) = mpsc::channel(4 * MAX_GROUP);
        let published = Arc::new(PublishedGeneration::default());
        tokio::spawn(group_commit(writer.clone(), rx, published.clone()));
        let (answers, rx) = mpsc::channel(4 * MAX_ANSWERS);
        tokio::spawn(answer_batches(writer.clone(), rx));
        Ok(SqliteStore {
            writer,
            reader,
            group,
            answers,
            published,
        })
    }

    pub(super) async fn begin_write(&self) -> StoreResult<Transaction<'static, Sqlite>> {
        begin_write(&self.writer).await
    }

    async fn grouped(
        &self,
        make: impl FnOnce(oneshot::Sender<StoreResult<()>>) -> GroupedWrite,
    ) -> StoreResult<()> {
        let (reply, answer) = oneshot::channel();
        self.group
            .send(make(reply))
            .await
            .map_err(|_| StoreError::Other(anyhow!("the group-commit task has stopped")))?;
        answer
            .await
            .map_err(|_| StoreError::Other(anyhow!("the group-commit task dropped a write")))?
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn insert_disclosure(
        &self,
        department: &str,
        new: &NewDisclosure,
        deliveries: &[NewDelivery],
        now: DateTime<Utc>,
    ) -> StoreResult<IngestOutcome> {
        let now_ms = ms(now);
        let mut tx = self.begin_write().await?;

        // What is stored already: the highest revision, whether the item was withdrawn,
        // and the hash of this very revision if it was submitted before.
        let known = sqlx::query(
            "SELECT MAX(revision) AS max_revision,
                    MAX(CASE WHEN withdrawn_at IS NOT NULL THEN 1 ELSE 0 END) AS withdrawn,
                    MAX(CASE WHEN revision = $2 THEN content_hash END) AS same_hash
             FROM disclosures WHERE disclosure_id = $1 AND department = $3",
        )
        .bind(&new.disclosure_id)
        .bind(new.revision)
        .bind(department)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| other(e, "reading stored revisions"))?;
        let max_revision: Option<i64> = col(&known, "max_revision")?;
        let withdrawn: Option<i64> = col(&known, "withdrawn")?;
        let same_hash: Option<String> = col(&known, "same_hash")?;

        if withdrawn == Some(1) {
            return Err(StoreError::Conflict(format!(
                "该公开件已撤回（{}），不再接收任何版本",
                new.disclosure_id
            )));
        }
        // The very same submission again (an upstream retry) is answered as the first
        // time, even if a higher revision came since.
        if same_hash.as_deref() == Some(new.content_hash.as_str()) {
            let delivery_ids = sqlx::query_scalar(
                "SELECT id FROM deliveries
                 WHERE department = $3 AND disclosure_id = $1 AND revision = $2
                   AND action = 'publish'
                 ORDER BY id",
            )
            .bind(&new.disclosure_id)
            .bind(new.revision)
            .bind(department)
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| other(e, "reading the deliveries of a stored revision"))?;
            return Ok(IngestOutcome::Unchanged { delivery_ids });
        }
        if let Some(max) = max_revision {
            if new.revision < max {
                return Err(StoreError::Conflict(format!(
                    "已有更高版本（第{max}版），不能再提交 {} 第{}版",
                    new.disclosure_id, new.revision
                )));
            }
        }
        if same_hash.is_some() {
            return Err(StoreError::Conflict(format!(
                "{} 第{}版已存在且内容不同：已存的版本不能修改，更正请提交更高版本",
                new.disclosure_id, new.revision
            )));
        }

        sqlx::query(
            "INSERT INTO disclosures (disclosure_id, revision, title, category, publish_date,
                 formed_date, content_hash, json, submitted_by, received_at, department)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&new.disclosure_id)
        .bind(new.revision)
        .bind(&new.title)
        .bind(&new.category)
        .bind(new.publish_date.map(date_text))
        .bind(date_text(new.formed_date))
        .bind(&new.content_hash)
        .bind(&new.json)
        .bind(&new.submitted_by)
        .bind(now_ms)
        .bind(department)
        .execute(&mut *tx)
        .await
        .map_err(|e| other(e, "inserting the revision"))?;

        if max_revision.is_some() {
            // Older revisions that were not sent yet (or gave up) must never go out now;
            // the one in flight finishes, and complete_attempt withdraws it if it fails.
            sqlx::query(
                "UPDATE deliveries
                 SET status = 'withdrawn', next_attempt_at = NULL, last_error = $3,
                     updated_at = $4
                 WHERE department = $5 AND disclosure_id = $1 AND revision < $2
                   AND action = 'publish' AND status IN ('pending', 'retrying', 'dead')",
            )
            .bind(&new.disclosure_id)
            .bind(new.revision)
            .bind(format!("已被第{}版取代", new.revision))
            .bind(now_ms)
            .bind(department)
            .execute(&mut *tx)
            .await
            .map_err(|e| other(e, "superseding older revisions"))?;
        }

        let mut delivery_ids = Vec::with_capacity(deliveries.len());
        for d in deliveries {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO deliveries (disclosure_id, revision, channel, kind, action, status,
                     next_attempt_at, next_trigger, created_at, updated_at, department)
                 VALUES ($1, $2, $3, $4, 'publish', 'pending', $5, 'scheduled', $5, $5, $6)
                 RETURNING id",
            )
            .bind(&new.disclosure_id)
            .bind(new.revision)
            .bind(&d.channel)
            .bind(d.kind.as_str())
            .bind(now_ms)
            .bind(department)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| other(e, format!("creating the delivery to {}", d.channel)))?;
            delivery_ids.push(id);
        }
        // A new revision may change the item's category or publish date in the report.
        refresh_report_item(&mut tx, department, &new.disclosure_id).await?;
        commit(tx).await?;
        Ok(IngestOutcome::Created { delivery_ids })
    }

    async fn get_disclosure(
        &self,
        department: &str,
        disclosure_id: &str,
        revision: Option<i64>,
    ) -> StoreResult<StoredDisclosure> {
        self.shared_get_disclosure(department, disclosure_id, revision)
            .await
    }

    async fn withdraw_disclosure(
        &self,
        department: &str,
        disclosure_id: &str,
        by: &str,
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> StoreResult<WithdrawOutcome> {
        let now_ms = ms(now);
        let mut tx = self.begin_write().await?;

        let known = sqlx::query(
            "SELECT MAX(revision) AS max_revision,
                    MAX(CASE WHEN withdrawn_at IS NOT NULL THEN 1 ELSE 0 END) AS withdrawn
             FROM disclosures WHERE department = $2 AND disclosure_id = $1",
        )
        .bind(disclosure_id)
        .bind(department)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| other(e, "reading stored revisions"))?;
        let Some(latest) = col::<Option<i64>>(&known, "max_revision")? else {
            return Err(StoreError::NotFound(format!("没有公开件 {disclosure_id}")));
        };
        if col::<Option<i64>>(&known, "withdrawn")? == Some(1) {
            let delivery_ids = sqlx::query_scalar(
                "SELECT id FROM deliveries
                 WHERE department = $2 AND disclosure_id = $1 AND action = 'withdraw'
                 ORDER BY id",
            )
            .bind(disclosure_id)
            .bind(department)
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| other(e, "reading withdraw deliveries"))?;
            return Ok(WithdrawOutcome::AlreadyWithdrawn { delivery_ids });
        }

        sqlx::query(
            "UPDATE disclosures SET withdrawn_at = $2, withdrawn_by = $3, withdraw_reason = $4
             WHERE department = $5 AND disclosure_id = $1",
        )
        .bind(disclosure_id)
        .bind(now_ms)
        .bind(by)
        .bind(reason)
        .bind(department)
        .execute(&mut *tx)
        .await
        .map_err(|e| other(e, "marking the disclosure withdrawn"))?;

        // Which channels may hold the item is decided before cancelling: a cancelled
        // delivery that had been attempted (a timeout, say) may still have reached them.
        let mut delivery_ids: Vec<i64> = sqlx::query_scalar(
            "INSERT INTO deliveries (department, disclosure_id, revision, channel, kind, action,
                 status, next_attempt_at, next_trigger, created_at, updated_at)
             SELECT $4, $1, $2, channel, MAX(kind), 'withdraw', 'pending', $3, 'scheduled', $3, $3
             FROM deliveries
             WHERE department = $4 AND disclosure_id = $1 AND action = 'publish'
               AND (delivered_at IS NOT NULL OR attempts > 0)
             GROUP BY channel
             ORDER BY MIN(id)
             RETURNING id",
        )
        .bind(disclosure_id)
        .bind(latest)
        .bind(now_ms)
        .bind(department)
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| other(e, "creating withdraw deliveries"))?;
        delivery_ids.sort_unstable();

        let mut cancelled: Vec<i64> = sqlx::query_scalar(
            "UPDATE deliveries
             SET status = 'withdrawn', next_attempt_at = NULL, last_error = '该公开件已撤回',
                 updated_at = $2
             WHERE department = $3 AND disclosure_id = $1 AND action = 'publish'
               AND status IN ('pending', 'retrying', 'dead')
             RETURNING id",
        )
        .bind(disclosure_id)
        .bind(now_ms)
        .bind(department)
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| other(e, "cancelling unsent publish deliveries"))?;
        cancelled.sort_unstable();

        commit(tx).await?;
        self.published.bump();
        Ok(WithdrawOutcome::Withdrawn {
            cancelled,
            delivery_ids,
        })
    }

    async fn claim_due(
        &self,
        instance: &str,
        now: DateTime<Utc>,
        lease: Duration,
        limit: usize,
    ) -> StoreResult<Vec<Claimed>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let now_ms = ms(now);
        let until_ms = now_ms.saturating_add(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX));
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut tx = self.begin_write().await?;

        let candidates = sqlx::query(CLAIM_CANDIDATES_SQL)
            .bind(now_ms)
            .bind(limit)
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| other(e, "finding due deliveries"))?;
        if candidates.is_empty() {
            return Ok(Vec::new());
        }

        let mut order = HashMap::with_capacity(candidates.len());
        let mut disclosures = HashMap::with_capacity(candidates.len());
        let mut claims = Vec::with_capacity(candidates.len());
        let mut lost = Vec::new();
        for (position, row) in candidates.iter().enumerate() {
            let id: i64 = col(row, "delivery_id")?;
            if col::<String>(row, "delivery_status")? == DeliveryStatus::InFlight.as_str() {
                lost.push(id);
            }
            order.insert(id, position);
            disclosures.insert(id, disclosure_from_row(row)?);
            claims.push((id, uuid::Uuid::new_v4().to_string()));
        }

        if !lost.is_empty() {
            // Written before the takeover, while the row still shows the abandoned claim.
            // (SQLite: json_each and MAX(a, b); PostgreSQL: = ANY($2) and GREATEST.)
            sqlx::query(concat!(
                "INSERT INTO attempts (delivery_id, number, trigger, requested_by, instance,
                     started_at, finished_at, outcome, detail, duration_ms)
                 SELECT id, attempts, COALESCE(claim_trigger, 'scheduled'), claim_requested_by,
                     claimed_by, COALESCE(claimed_at, $1), $1, 'lost', ",
                lost_detail_sql!(),
                ", MAX($1 - COALESCE(claimed_at, $1), 0)
                 FROM deliveries
                 WHERE status = 'in_flight' AND id IN (SELECT value FROM json_each($2))
                 ORDER BY id"
            ))
            .bind(now_ms)
            .bind(json_ids(&lost)?)
            .execute(&mut *tx)
            .await
            .map_err(|e| other(e, "writing down lost attempts"))?;
        }

        // One statement for the whole batch: each row gets its own token from the list.
        // The trigger the attempt is made for moves to claim_trigger (SET reads the old
        // values), and next_trigger goes back to scheduled.
        // (PostgreSQL: FROM unnest($1::bigint[], $2::text[]) AS c(claim_id, token).)
        let claimed_rows = sqlx::query(concat!(
            "UPDATE deliveries SET
                 status = 'in_flight',
                 attempts = attempts + 1,
                 claim_token = c.token,
                 claimed_by = $2,
                 claimed_at = $3,
                 claimed_until = $4,
                 next_attempt_at = $4,
                 claim_trigger = next_trigger,
                 claim_requested_by = requested_by,
                 next_trigger = 'scheduled',
                 requested_by = NULL,
                 last_error = CASE WHEN status = 'in_flight' THEN ",
            lost_detail_sql!(),
            " ELSE last_error END,
                 updated_at = $3
             FROM (SELECT json_extract(value, '$[0]') AS claim_id,
                          json_extract(value, '$[1]') AS token
                   FROM json_each($1)) AS c
             WHERE deliveries.id = c.claim_id
             RETURNING ",
            delivery_cols!(),
            ", claim_token, claim_trigger, claim_requested_by"
        ))
        .bind(serde_json::to_string(&claims).map_err(|e| other(e, "encoding claims"))?)
        .bind(instance)
        .bind(now_ms)
        .bind(until_ms)
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| other(e, "claiming due deliveries"))?;
        commit(tx).await?;

        let started_at = from_ms(now_ms, "now")?;
        let mut out = Vec::with_capacity(claimed_rows.len());
        for row in &claimed_rows {
            let delivery = delivery_from_row(row)?;
            let disclosure = disclosures.remove(&delivery.id).ok_or_else(|| {
                StoreError::Other(anyhow!(
                    "claimed delivery {} was not a candidate",
                    delivery.id
                ))
            })?;
            out.push(Claimed {
                attempt_number: delivery.attempts,
                trigger: enum_col(row, "claim_trigger")?,
                requested_by: col(row, "claim_requested_by")?,
                claim_token: col(row, "claim_token")?,
                started_at,
                disclosure,
                delivery,
            });
        }
        // RETURNING has no defined order; hand them out oldest due first.
        out.sort_by_key(|c| order.get(&c.delivery.id).copied().unwrap_or(usize::MAX));
        Ok(out)
    }

    async fn store_payload(
        &self,
        delivery_id: i64,
        claim_token: &str,
        payload: &[u8],
        payload_sha256: &str,
    ) -> StoreResult<()> {
        self.grouped(|reply| GroupedWrite::Payload {
            delivery_id,
            claim_token: claim_token.to_string(),
            payload: payload.to_vec(),
            payload_sha256: payload_sha256.to_string(),
            reply,
        })
        .await
    }

    async fn complete_attempt(&self, completion: &Completion) -> StoreResult<()> {
        self.grouped(|reply| GroupedWrite::Complete {
            completion: completion.clone(),
            reply,
        })
        .await
    }

    async fn release_claim(&self, delivery_id: i64, claim_token: &str) -> StoreResult<()> {
        // Due again at once: the claim time is no later than now and keeps its place in
        // the queue. The trigger the claim was made for is put back, so a manual retry
        // interrupted by a shutdown is still manual.
        let done = sqlx::query(concat!(
            "UPDATE deliveries SET
                 status = CASE WHEN claim_trigger = 'manual' OR attempts <= 1
                          THEN 'pending' ELSE 'retrying' END,
                 attempts = MAX(attempts - 1, 0),
                 next_attempt_at = COALESCE(claimed_at, updated_at),
                 next_trigger = COALESCE(claim_trigger, 'scheduled'),
                 requested_by = claim_requested_by, ",
            clear_claim!(),
            " WHERE id = $1 AND claim_token = $2 AND status = 'in_flight'"
        ))
        .bind(delivery_id)
        .bind(claim_token)
        .execute(&self.writer)
        .await
        .map_err(|e| other(e, "releasing the claim"))?;
        if done.rows_affected() == 1 {
            return Ok(());
        }
        let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM deliveries WHERE id = $1")
            .bind(delivery_id)
            .fetch_optional(&self.writer)
            .await
            .map_err(|e| other(e, "reading the delivery"))?;
        match exists {
            None => Err(not_found_delivery(delivery_id)),
            Some(_) => Err(StoreError::Conflict(format!(
                "投递 {delivery_id} 已不在本次认领中（可能已被其他实例接管）"
            ))),
        }
    }

    async fn list_deliveries(
        &self,
        department: &str,
        filter: &DeliveryFilter,
    ) -> StoreResult<Vec<DeliveryRow>> {
        self.shared_list_deliveries(department, filter).await
    }

    async fn get_delivery(&self, department: &str, id: i64) -> StoreResult<DeliveryRow> {
        self.shared_get_delivery(department, id).await
    }

    async fn list_attempts(
        &self,
        department: &str,
        delivery_id: i64,
    ) -> StoreResult<Vec<AttemptRow>> {
        let rows = sqlx::query(
            "SELECT a.id, a.delivery_id, a.number, a.trigger, a.requested_by, a.instance,
                 a.started_at, a.finished_at, a.outcome, a.http_status, a.remote_code, a.detail,
                 a.remote_id, a.duration_ms
             FROM attempts a JOIN deliveries d ON d.id = a.delivery_id
             WHERE a.delivery_id = $1 AND d.department = $2 ORDER BY a.id",
        )
        .bind(delivery_id)
        .bind(department)
        .fetch_all(&self.reader)
        .await
        .map_err(|e| other(e, "listing attempts"))?;
        if rows.is_empty() {
            // Tell "no attempts yet" from "no such delivery (in this department)".
            self.get_delivery(department, delivery_id).await?;
        }
        rows.iter().map(attempt_from_row).collect()
    }

    async fn retry_now(
        &self,
        department: &str,
        ids: &[i64],
        by: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<RetryResult>> {
        let now_ms = ms(now);
        let mut tx = self.begin_write().await?;
        let mut results = Vec::with_capacity(ids.len());
        for &id in ids {
            let scheduled: Option<i64> = sqlx::query_scalar(
                "UPDATE deliveries
                 SET status = 'pending', next_attempt_at = $2, next_trigger = 'manual',
                     requested_by = $3, attempts_base = attempts, updated_at = $2
                 WHERE id = $1 AND department = $4 AND status IN ('dead', 'retrying', 'pending')
                 RETURNING id",
            )
            .bind(id)
            .bind(now_ms)
            .bind(by)
            .bind(department)
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| other(e, "scheduling an operator retry"))?;
            if scheduled.is_some() {
                results.push(RetryResult::Scheduled { id });
                continue;
            }
            let status: Option<String> = sqlx::query_scalar(
                "SELECT status FROM deliveries WHERE id = $1 AND department = $2",
            )
            .bind(id)
            .bind(department)
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| other(e, "reading a delivery"))?;
            let reason = match status.as_deref().map(DeliveryStatus::from_str) {
                None => "没有这个投递",
                Some(Ok(DeliveryStatus::Delivered)) => "已送达，无需重试",
                Some(Ok(DeliveryStatus::Withdrawn)) => "已撤回",
                Some(Ok(DeliveryStatus::InFlight)) => "正在投递中",
                Some(Ok(st)) => {
                    return Err(StoreError::Other(anyhow!(
                        "delivery {id} in status {st} was not retried"
                    )))
                }
                Some(Err(e)) => return Err(StoreError::Other(anyhow!("delivery {id}: {e}"))),
            };
            results.push(RetryResult::Refused {
                id,
                reason: reason.to_string(),
            });
        }
        commit(tx).await?;
        Ok(results)
    }

    async fn report_revisions(&self, department: &str) -> StoreResult<Vec<ReportRevision>> {
        // SQLite-only: json_extract (PostgreSQL: `json::jsonb ->> 'doc_kind'`).
        let rows = sqlx::query(
            "WITH rev AS (
                 SELECT disclosure_id, revision, MIN(delivered_at) AS rev_at
                 FROM deliveries
                 WHERE department = $1 AND action = 'publish' AND delivered_at IS NOT NULL
                 GROUP BY disclosure_id, revision),
             item AS (
                 SELECT disclosure_id, MIN(rev_at) AS first_at FROM rev GROUP BY disclosure_id),
             attrs AS (
                 SELECT s.disclosure_id, s.revision, s.title, s.category, s.publish_date,
                     s.formed_date,
                     json_extract(s.json, '$.art20_item') AS art20_item,
                     json_extract(s.json, '$.doc_kind') AS doc_kind,
                     json_extract(s.json, '$.validity') AS validity,
                     json_extract(s.json, '$.replaces') AS replaces,
                     json_extract(s.json, '$.valid_to') AS valid_to
                 FROM disclosures s
                 WHERE s.department = $1 AND s.disclosure_id IN (SELECT disclosure_id FROM item))
             SELECT a.*,
                 date(i.first_at / 1000 + 28800, 'unixepoch') AS item_first_on,
                 date(r.rev_at / 1000 + 28800, 'unixepoch') AS delivered_on
             FROM attrs a
             JOIN item i ON i.disclosure_id = a.disclosure_id
             LEFT JOIN rev r ON r.disclosure_id = a.disclosure_id AND r.revision = a.revision
             WHERE a.doc_kind IN ('规章', '行政规范性文件')
                OR a.art20_item IN ('一', '五', '六', '八')
                OR a.validity IN ('废止', '失效')
                OR a.replaces IS NOT NULL
             ORDER BY a.disclosure_id, a.revision",
        )
        .bind(department)
        .fetch_all(&self.reader)
        .await
        .map_err(|e| other(e, "listing revisions for the report"))?;
        rows.iter().map(report_revision_from_row).collect()
    }

    async fn list_published(&self, department: &str) -> StoreResult<Vec<PublishedRow>> {
        // The category is the latest revision's (a correction may fix it); the publish
        // date is the first one any revision gave.
        let rows = sqlx::query(
            "SELECT d.disclosure_id, d.channel, MAX(d.kind) AS kind,
                 MIN(d.delivered_at) AS first_delivered_at,
                 (SELECT s.category FROM disclosures s
                  WHERE s.department = d.department AND s.disclosure_id = d.disclosure_id
                  ORDER BY s.revision DESC LIMIT 1) AS category,
                 (SELECT s.publish_date FROM disclosures s
                  WHERE s.department = d.department AND s.disclosure_id = d.disclosure_id
                    AND s.publish_date IS NOT NULL
                  ORDER BY s.revision LIMIT 1) AS publish_date
             FROM deliveries d
             WHERE d.department = $1 AND d.action = 'publish' AND d.delivered_at IS NOT NULL
             GROUP BY d.department, d.disclosure_id, d.channel
             ORDER BY d.disclosure_id, d.channel",
        )
        .bind(department)
        .fetch_all(&self.reader)
        .await
        .map_err(|e| other(e, "listing published deliveries"))?;
        rows.iter().map(published_row_from_row).collect()
    }

    async fn published_groups(&self, department: &str) -> StoreResult<Vec<PublishedGroup>> {
        // One scan of the department's part of the covering index of the summary kept with
        // the ledger (migrations 0005, 0008): already in group order, so no sort and no
        // temporary table.
        let rows = sqlx::query(
            "SELECT channel, MAX(kind) AS kind, category, count_year, formed_date, delivered_on,
                 is_primary, COUNT(*) AS items
             FROM report_published
             WHERE department = $1
             GROUP BY channel, category, count_year, formed_date, delivered_on, is_primary
             ORDER BY channel, category, count_year, formed_date, delivered_on, is_primary",
        )
        .bind(department)
        .fetch_all(&self.reader)
        .await
        .map_err(|e| other(e, "grouping published deliveries"))?;
        rows.iter()
            .map(|row| {
                let formed: String = col(row, "formed_date")?;
                let delivered: String = col(row, "delivered_on")?;
                Ok(PublishedGroup {
                    channel: col(row, "channel")?,
                    kind: enum_col(row, "kind")?,
                    category: col(row, "category")?,
                    count_year: col::<i64>(row, "count_year")? as i32,
                    formed_date: parse_date(&formed, "formed_date")?,
                    delivered_on: parse_date(&delivered, "delivered_on")?,
                    primary: col::<i64>(row, "is_primary")? == 1,
                    items: col::<i64>(row, "items")? as u64,
                })
            })
            .collect()
    }

    async fn record_displayed_until(
        &self,
        department: &str,
        channel: &str,
        disclosure_id: &str,
        revision: i64,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.shared_record_displayed_until(department, channel, disclosure_id, revision, at)
            .await
    }

    async fn next_due_at(&self) -> StoreResult<Option<DateTime<Utc>>> {
        self.shared_next_due_at().await
    }

    async fn save_progress(
        &self,
        delivery_id: i64,
        claim_token: &str,
        progress: &serde_json::Value,
    ) -> StoreResult<()> {
        self.shared_save_progress(delivery_id, claim_token, progress)
            .await
    }

    // ---- WeChat official-account state ----

    async fn wechat_token(&self, appid: &str) -> StoreResult<Option<WechatToken>> {
        self.shared_wechat_token(appid).await
    }

    async fn lock_wechat_token_refresh(
        &self,
        appid: &str,
        holder: &str,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> StoreResult<bool> {
        let now_ms = ms(now);
        let until = now_ms.saturating_add(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX));
        let done = sqlx::query(
            "INSERT INTO wechat_tokens (appid, refreshing_by, refreshing_until, updated_at)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (appid) DO UPDATE SET refreshing_by = $2, refreshing_until = $3,
                 updated_at = $4
             WHERE wechat_tokens.refreshing_until IS NULL
                OR wechat_tokens.refreshing_until <= $4
                OR wechat_tokens.refreshing_by = $2",
        )
        .bind(appid)
        .bind(holder)
        .bind(until)
        .bind(now_ms)
        .execute(&self.writer)
        .await
        .map_err(|e| other(e, "locking the WeChat token refresh"))?;
        Ok(done.rows_affected() == 1)
    }

    async fn put_wechat_token(
        &self,
        appid: &str,
        holder: &str,
        access_token: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.shared_put_wechat_token(appid, holder, access_token, expires_at, now)
            .await
    }

    async fn unlock_wechat_token_refresh(&self, appid: &str, holder: &str) -> StoreResult<()> {
        self.shared_unlock_wechat_token_refresh(appid, holder).await
    }

    async fn wechat_media(
        &self,
        appid: &str,
        kind: &str,
        content_sha256: &str,
    ) -> StoreResult<Option<WechatMedia>> {
        self.shared_wechat_media(appid, kind, content_sha256).await
    }

    async fn put_wechat_media(&self, media: &WechatMedia, now: DateTime<Utc>) -> StoreResult<()> {
        self.shared_put_wechat_media(media, now).await
    }

    async fn record_wechat_publish_event(
        &self,
        event: &WechatPublishEvent,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let now_ms = ms(now);
        let mut tx = self.begin_write().await?;
        let fail_idx = serde_json::to_string(&event.fail_idx).map_err(|e| other(e, "fail_idx"))?;
        let inserted = sqlx::query(
            "INSERT INTO wechat_publish_events (appid, publish_id, publish_status, article_id,
                 article_url, fail_idx, received_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (appid, publish_id) DO NOTHING",
        )
        .bind(&event.appid)
        .bind(&event.publish_id)
        .bind(event.publish_status)
        .bind(&event.article_id)
        .bind(&event.article_url)
        .bind(fail_idx)
        .bind(now_ms)
        .execute(&mut *tx)
        .await
        .map_err(|e| other(e, "recording the PUBLISHJOBFINISH event"))?
        .rows_affected()
            == 1;
        if inserted {
            // The delivery that waits for this publish job is due now.
            sqlx::query(
                "UPDATE deliveries SET next_attempt_at = $2
                 WHERE status = 'retrying' AND kind = 'wechat'
                   AND json_extract(progress, '$.publish_id') = $1
                   AND next_attempt_at > $2",
            )
            .bind(&event.publish_id)
            .bind(now_ms)
            .execute(&mut *tx)
            .await
            .map_err(|e| other(e, "waking the delivery of a publish job"))?;
        } else {
            sqlx::query(
                "UPDATE wechat_publish_events SET times_received = times_received + 1
                 WHERE appid = $1 AND publish_id = $2",
            )
            .bind(&event.appid)
            .bind(&event.publish_id)
            .execute(&mut *tx)
            .await
            .map_err(|e| other(e, "counting a repeated PUBLISHJOBFINISH event"))?;
        }
        commit(tx).await?;
        Ok(inserted)
    }

    async fn wechat_publish_event(
        &self,
        appid: &str,
        publish_id: &str,
    ) -> StoreResult<Option<WechatPublishEvent>> {
        self.shared_wechat_publish_event(appid, publish_id).await
    }

    // ---- operator console: one-line delegations to `console_sql.rs` ----

    async fn create_operator(&self, new: &NewOperator, now: DateTime<Utc>) -> StoreResult<()> {
        self.console_create_operator(new, now).await
    }

    async fn get_operator(&self, name: &str) -> StoreResult<Option<OperatorRow>> {
        self.console_get_operator(name).await
    }

    async fn list_operators(&self) -> StoreResult<Vec<OperatorRow>> {
        self.console_list_operators().await
    }

    async fn set_operator_disabled(&self, name: &str, disabled: bool) -> StoreResult<()> {
        self.console_set_operator_disabled(name, disabled).await
    }

    async fn record_failed_sign_in(
        &self,
        name: &str,
        now: DateTime<Utc>,
        max_failures: u32,
        lock_for: Duration,
    ) -> StoreResult<Option<DateTime<Utc>>> {
        self.console_record_failed_sign_in(name, now, max_failures, lock_for)
            .await
    }

    async fn record_sign_in(&self, name: &str, now: DateTime<Utc>) -> StoreResult<()> {
        self.console_record_sign_in(name, now).await
    }

    async fn create_session(&self, session: &NewSession) -> StoreResult<()> {
        self.console_create_session(session).await
    }

    async fn get_session(
        &self,
        id_sha256: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<SessionRow>> {
        self.console_get_session(id_sha256, now).await
    }

    async fn delete_session(&self, id_sha256: &str) -> StoreResult<()> {
        self.console_delete_session(id_sha256).await
    }

    async fn list_disclosures(
        &self,
        department: &str,
        q: &DisclosureQuery,
    ) -> StoreResult<Vec<StoredDisclosure>> {
        self.console_list_disclosures(department, q).await
    }

    async fn count_deliveries(&self, department: Option<&str>) -> StoreResult<Vec<DeliveryCount>> {
        self.console_count_deliveries(department).await
    }

    async fn last_delivered(&self, department: &str) -> StoreResult<Vec<LastDelivered>> {
        self.console_last_delivered(department).await
    }

    async fn count_due(&self, now: DateTime<Utc>) -> StoreResult<i64> {
        self.console_count_due(now).await
    }

    // ---- WeChat callback (issue 4) ----

    async fn claim_wechat_message(
        &self,
        appid: &str,
        key: &str,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> StoreResult<MessageClaim> {
        let now_ms = ms(now);
        let stale_ms = now_ms - i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
        let mut tx = self.begin_write().await?;
        let inserted = sqlx::query(
            "INSERT INTO wechat_messages (appid, dedupe_key, received_at) VALUES ($1, $2, $3)
             ON CONFLICT (appid, dedupe_key) DO NOTHING",
        )
        .bind(appid)
        .bind(key)
        .bind(now_ms)
        .execute(&mut *tx)
        .await
        .map_err(|e| other(e, "claiming a WeChat message"))?
        .rows_affected()
            == 1;
        let claim = if inserted {
            MessageClaim::New
        } else {
            let row = sqlx::query(
                "UPDATE wechat_messages SET times_received = times_received + 1,
                     received_at = CASE WHEN reply IS NULL AND received_at < $3 THEN $4
                                        ELSE received_at END
                 WHERE appid = $1 AND dedupe_key = $2
                 RETURNING reply, received_at",
            )
            .bind(appid)
            .bind(key)
            .bind(stale_ms)
            .bind(now_ms)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| other(e, "reading a WeChat message claim"))?;
            let reply: Option<String> = col(&row, "reply")?;
            let received: i64 = col(&row, "received_at")?;
            match reply {
                Some(r) => MessageClaim::Answered(r),
                None if received == now_ms => MessageClaim::New,
                None => MessageClaim::InProgress,
            }
        };
        commit(tx).await?;
        Ok(claim)
    }

    async fn record_wechat_answer(
        &self,
        appid: &str,
        key: &str,
        reply: &str,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> StoreResult<Option<String>> {
        let now_ms = ms(now);
        let (tx, answer) = oneshot::channel();
        self.answers
            .send(AnswerJob {
                appid: appid.to_string(),
                key: key.to_string(),
                body: reply.to_string(),
                now_ms,
                stale_ms: now_ms - i64::try_from(lease.as_millis()).unwrap_or(i64::MAX),
                reply: tx,
            })
            .await
            .map_err(|_| StoreError::Other(anyhow!("the answer-batch task has stopped")))?;
        answer
            .await
            .map_err(|_| StoreError::Other(anyhow!("the answer-batch task dropped an answer")))?
    }

    fn published_generation(&self) -> u64 {
        self.published.get()
    }

    async fn purge_wechat_messages(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        // Rows come in time order, so the oldest rowids are the old records: small batches
        // from the start of the table (no index on received_at to keep up on every
        // answer), so the writer is never held for long.
        let mut purged = 0;
        loop {
            let mut tx = self.begin_write().await?;
            let n = sqlx::query(
                "DELETE FROM wechat_messages WHERE rowid IN (
                     SELECT rowid FROM (SELECT rowid, received_at FROM wechat_messages
                                        ORDER BY rowid LIMIT 2000)
                     WHERE received_at < $1)",
            )
            .bind(ms(before))
            .execute(&mut *tx)
            .await
            .map_err(|e| other(e, "forgetting old WeChat messages"))?
            .rows_affected();
            commit(tx).await?;
            purged += n;
            if n < 2000 {
                return Ok(purged);
            }
        }
    }

    async fn record_wechat_mass_result(
        &self,
        result: &WechatMassResult,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        self.shared_record_wechat_mass_result(result, now).await
    }

    async fn wechat_mass_result(
        &self,
        appid: &str,
        msg_id: &str,
    ) -> StoreResult<Option<WechatMassResult>> {
        self.shared_wechat_mass_result(appid, msg_id).await
    }

    async fn answer_wechat_message(
        &self,
        appid: &str,
        key: &str,
        reply: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "UPDATE wechat_messages SET reply = $3, answered_at = $4
             WHERE appid = $1 AND dedupe_key = $2",
        )
        .bind(appid)
        .bind(key)
        .bind(reply)
        .bind(ms(now))
        .execute(&mut *tx)
        .await
        .map_err(|e| other(e, "storing a WeChat reply"))?;
        commit(tx).await
    }

    async fn refresh_search_index(&self) -> StoreResult<usize> {
        const BATCH: i64 = 1000;
        let mut added = 0;
        loop {
            let last: i64 =
                sqlx::query_scalar("SELECT COALESCE(MAX(src_rowid), 0) FROM search_docs")
                    .fetch_one(&self.reader)
                    .await
                    .map_err(|e| other(e, "reading the search index position"))?;
            // SQLite-only: the implicit rowid of `disclosures` (PostgreSQL: a sequence).
            let rows = sqlx::query(
                "SELECT rowid AS src_rowid, department, disclosure_id, revision, title, json,
                        publish_date, received_at
                 FROM disclosures WHERE rowid > $1 ORDER BY rowid LIMIT $2",
            )
            .bind(last)
            .bind(BATCH)
            .fetch_all(&self.reader)
            .await
            .map_err(|e| other(e, "reading disclosures to index"))?;
            if rows.is_empty() {
                return Ok(added);
            }
            let n = rows.len();
            let mut tx = self.begin_write().await?;
            for r in &rows {
                let src: i64 = col(r, "src_rowid")?;
                let department: String = col(r, "department")?;
                let id: String = col(r, "disclosure_id")?;
                let revision: i64 = col(r, "revision")?;
                let title: String = col(r, "title")?;
                let json: String = col(r, "json")?;
                // The index's rowid orders by date (see `search_doc_day`), so the newest
                // matches of a query come first straight out of FTS5.
                let day = search_doc_day(
                    opt_date(r, "publish_date")?,
                    opt_ts(r, "received_at")?.unwrap_or_default(),
                );
                let inserted = sqlx::query(
                    "INSERT INTO search_docs (id, src_rowid, disclosure_id, revision, department)
                     SELECT COALESCE(MAX(id) + 1, $4 * 16777216), $1, $2, $3, $5 FROM search_docs
                     WHERE id >= $4 * 16777216 AND id < ($4 + 1) * 16777216
                     ON CONFLICT DO NOTHING",
                )
                .bind(src)
                .bind(&id)
                .bind(revision)
                .bind(day)
                .bind(&department)
                .execute(&mut *tx)
                .await
                .map_err(|e| other(e, "indexing a disclosure"))?;
                if inserted.rows_affected() != 1 {
                    continue;
                }
                let (head, body) = crate::wechat_callback::search::doc_text(&title, &json);
                sqlx::query(
                    "INSERT INTO search_fts (rowid, title, body, dept)
                     VALUES (last_insert_rowid(), $1, $2, $3)",
                )
                .bind(crate::wechat_callback::search::index_text(&head))
                .bind(crate::wechat_callback::search::index_text(&body))
                .bind(crate::wechat_callback::search::department_token(
                    &department,
                ))
                .execute(&mut *tx)
                .await
                .map_err(|e| other(e, "indexing a disclosure's text"))?;
                added += 1;
            }
            commit(tx).await?;
            if added > 0 {
                self.published.bump();
            }
            if (n as i64) < BATCH {
                return Ok(added);
            }
        }
    }

    async fn search_published(
        &self,
        department: &str,
        query: &crate::wechat_callback::search::SearchQuery,
        mode: SearchMatch,
        limit: usize,
    ) -> StoreResult<Vec<PublishedItem>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut found = Vec::new();
        let mut seen = std::collections::HashSet::new();
        match mode {
            // Relevance tiers (the words as written in the title, as written anywhere,
            // all of them anywhere), newest first within each: each tier walks FTS5's
            // matches in rowid (= date) order and stops as soon as it has enough, so a
            // word found in tens of thousands of items costs no more than a rare one.
            SearchMatch::All => {
                for tier in query.fts5_tiers() {
                    let fts = in_department(department, &tier);
                    self.newest_matches(department, &fts, limit, &mut seen, &mut found)
                        .await?;
                    if found.len() >= limit {
                        break;
                    }
                }
            }
            // The fallback (no item has every word): ranked by bm25 (titles weigh 4 times
            // as much) inside FTS5 first; only the best candidates are joined.
            SearchMatch::Any => {
                let ids: Vec<i64> = sqlx::query_scalar(
                    "SELECT rowid FROM search_fts WHERE search_fts MATCH $1
                     ORDER BY bm25(search_fts, 4.0, 1.0) LIMIT $2",
                )
                .bind(in_department(department, &query.fts5_any()))
                .bind((limit * 20) as i64)
                .fetch_all(&self.reader)
                .await
                .map_err(|e| other(e, "searching published disclosures"))?;
                let by_id = self.published_docs(department, &ids).await?;
                for id in ids {
                    if let Some(item) = by_id.get(&id) {
                        if seen.insert(item.disclosure_id.clone()) {
                            found.push(item.clone());
                        }
                    }
                }
            }
        }
        found.truncate(limit);
        Ok(found)
    }

    async fn latest_published(
        &self,
        department: &str,
        category: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<PublishedItem>> {
        let rows = sqlx::query(LATEST_PUBLISHED_SQL)
            .bind(category)
            .bind((limit * 3) as i64)
            .bind(department)
            .fetch_all(&self.reader)
            .await
            .map_err(|e| other(e, "listing the latest published disclosures"))?;
        published_items(&rows, limit)
    }
}

/// The FTS5 query `fts` within one department's items (the `dept` column holds each
/// item's department token, so FTS5 intersects it before anything is joined).
fn in_department(department: &str, fts: &str) -> String {
    let token = crate::wechat_callback::search::department_token(department);
    format!("dept : \"{token}\" AND ({fts})")
}

/// Days since 1970-01-01 of an indexed revision (its publish date, else the day it was
/// received), the high part of its `search_docs.id` (day × 2^24 + a counter): FTS5 reads
/// its matches in rowid order, so the index's own order is newest first.
fn search_doc_day(publish_date: Option<NaiveDate>, received_at: DateTime<Utc>) -> i64 {
    let day = publish_date.unwrap_or_else(|| received_at.date_naive());
    (day - NaiveDate::from_ymd_opt(1970, 1, 1).expect("a valid date"))
        .num_days()
        .max(0)
}

/// The department's (`$3`) newest published items, of category `$1` or any: walks its
/// disclosures newest publish date first (`disclosures_by_publish_date`, migration 0013)
/// and joins each to its delivery by key, so it stops after `$2` rows instead of reading
/// and sorting every published item (the join order is fixed: no statistics here).
const LATEST_PUBLISHED_SQL: &str = concat!(
    "SELECT s.disclosure_id, s.revision, s.title, s.category, s.publish_date, d.url,
            d.delivered_at
     FROM disclosures s
     CROSS JOIN deliveries d ON d.department = s.department
         AND d.disclosure_id = s.disclosure_id AND d.revision = s.revision
     WHERE s.department = $3 AND ($1 IS NULL OR s.category = $1) AND ",
    published_filter!(),
    " ORDER BY s.publish_date DESC, d.delivered_at DESC LIMIT $2"
);

/// The published items among a page of search hits (`$1`, a JSON array of search_docs
/// ids) in department `$2`. The join order is fixed (CROSS JOIN, and `+` keeps the
/// department off the index): SQLite has no statistics here and, from the department
/// equality, started from `deliveries` and read every delivery of the department for each
/// page of hits (1.2 s per query at 100,000 items) instead of the page's few rows by id.
const PUBLISHED_DOCS_SQL: &str = concat!(
    "SELECT sd.id AS doc_id, s.disclosure_id, s.revision, s.title, s.category,
            s.publish_date, d.url, d.delivered_at
     FROM search_docs sd
     CROSS JOIN disclosures s ON s.department = sd.department
         AND s.disclosure_id = sd.disclosure_id AND s.revision = sd.revision
     CROSS JOIN deliveries d ON d.department = s.department
         AND d.disclosure_id = s.disclosure_id AND d.revision = s.revision
     WHERE sd.id IN (SELECT value FROM json_each($1)) AND +sd.department = $2 AND ",
    published_filter!(),
    " ORDER BY d.delivered_at DESC"
);

impl SqliteStore {
    /// Adds to `found` (up to `limit`) the published items matching the FTS5 query
    /// `fts`, newest first, skipping disclosures in `seen`: walks the matches in pages of
    /// rowids (descending) and keeps those that are published.
    async fn newest_matches(
        &self,
        department: &str,
        fts: &str,
        limit: usize,
        seen: &mut std::collections::HashSet<String>,
        found: &mut Vec<PublishedItem>,
    ) -> StoreResult<()> {
        let page = (4 * limit + 16) as i64;
        let mut below = i64::MAX;
        while found.len() < limit {
            let ids: Vec<i64> = sqlx::query_scalar(
                "SELECT rowid FROM search_fts WHERE search_fts MATCH $1 AND rowid < $2
                 ORDER BY rowid DESC LIMIT $3",
            )
            .bind(fts)
            .bind(below)
            .bind(page)
            .fetch_all(&self.reader)
            .await
            .map_err(|e| other(e, "searching published disclosures"))?;
            let Some(&last) = ids.last() else {
                break;
            };
            let by_id = self.published_docs(department, &ids).await?;
            for id in &ids {
                if let Some(item) = by_id.get(id) {
                    if found.len() < limit && seen.insert(item.disclosure_id.clone()) {
                        found.push(item.clone());
                    }
                }
            }
            if (ids.len() as i64) < page {
                break;
            }
            below = last;
        }
        Ok(())
    }

    /// The published items among the index rows `ids` (by index row; an unpublished,
    /// superseded or withdrawn revision is left out).
    async fn published_docs(
        &self,
        department: &str,
        ids: &[i64],
    ) -> StoreResult<HashMap<i64, PublishedItem>> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let list = serde_json::to_string(ids).expect("integers serialize");
        let rows = sqlx::query(PUBLISHED_DOCS_SQL)
            .bind(list)
            .bind(department)
            .fetch_all(&self.reader)
            .await
            .map_err(|e| other(e, "reading matched disclosures"))?;
        let mut out = HashMap::new();
        for r in &rows {
            let doc: i64 = col(r, "doc_id")?;
            if out.contains_key(&doc) {
                continue;
            }
            out.insert(doc, published_item_from_row(r)?);
        }
        Ok(out)
    }
}

/// `complete_attempt`, inside a group's transaction.
async fn complete_in(
    tx: &mut Transaction<'static, Sqlite>,
    completion: &Completion,
) -> StoreResult<()> {
    let a = &completion.attempt;
    let finished_ms = ms(a.finished_at);

    // The state changes only under the current claim; a stale token changes nothing
    // here because the instance that took the delivery over owns its state.
    let failed = match &completion.next {
        NextState::Delivered { remote_id, url } => {
            let done = sqlx::query(concat!(
                "UPDATE deliveries SET status = 'delivered', remote_id = $3, url = $4,
                         last_error = NULL, delivered_at = COALESCE(delivered_at, $5),
                         next_attempt_at = NULL, updated_at = $5, ",
                clear_claim!(),
                " WHERE id = $1 AND claim_token = $2"
            ))
            .bind(completion.delivery_id)
            .bind(&completion.claim_token)
            .bind(remote_id)
            .bind(url)
            .bind(finished_ms)
            .execute(&mut **tx)
            .await
            .map_err(|e| other(e, "marking the delivery delivered"))?;
            // The report summary follows the ledger in the same transaction.
            if done.rows_affected() > 0 {
                let item = sqlx::query(
                    "SELECT department, disclosure_id FROM deliveries
                     WHERE id = $1 AND action = 'publish'",
                )
                .bind(completion.delivery_id)
                .fetch_optional(&mut **tx)
                .await
                .map_err(|e| other(e, "reading the delivered item"))?;
                if let Some(item) = item {
                    let department: String = col(&item, "department")?;
                    let id: String = col(&item, "disclosure_id")?;
                    refresh_report_item(tx, &department, &id).await?;
                }
            }
            None
        }
        NextState::Retry { at, error } => Some((DeliveryStatus::Retrying, Some(ms(*at)), error)),
        NextState::Dead { error } => Some((DeliveryStatus::Dead, None, error)),
        NextState::Awaiting { at, note } => Some((DeliveryStatus::Retrying, Some(ms(*at)), note)),
    };
    // Waiting for an asynchronous outcome does not use up the retry budget.
    let awaiting = matches!(completion.next, NextState::Awaiting { .. });
    if let Some((status, next_at, error)) = failed {
        // A publish that a newer delivery of the same disclosure and channel replaced
        // (a higher revision, or the withdrawal) must not be tried again.
        let current = sqlx::query(
            "SELECT d.action,
                     (SELECT CASE n.action WHEN 'withdraw' THEN '该公开件已撤回'
                             ELSE '已被第' || n.revision || '版取代' END
                      FROM deliveries n
                      WHERE n.department = d.department AND n.disclosure_id = d.disclosure_id
                        AND n.channel = d.channel AND n.id > d.id
                      ORDER BY n.id DESC LIMIT 1) AS superseded
                 FROM deliveries d WHERE d.id = $1 AND d.claim_token = $2",
        )
        .bind(completion.delivery_id)
        .bind(&completion.claim_token)
        .fetch_optional(&mut **tx)
        .await
        .map_err(|e| other(e, "reading the claimed delivery"))?;
        if let Some(current) = current {
            let action: Action = enum_col(&current, "action")?;
            let superseded: Option<String> = col(&current, "superseded")?;
            let (status, next_at, error) = match superseded {
                Some(note) if action == Action::Publish => (DeliveryStatus::Withdrawn, None, note),
                _ => (status, next_at, truncate(error)),
            };
            sqlx::query(concat!(
                "UPDATE deliveries SET status = $2, next_attempt_at = $3,
                         last_error = $4, updated_at = $5,
                 attempts_base = CASE WHEN $6 AND $2 = 'retrying'
                     THEN attempts_base + 1 ELSE attempts_base END, ",
                clear_claim!(),
                " WHERE id = $1"
            ))
            .bind(completion.delivery_id)
            .bind(status.as_str())
            .bind(next_at)
            .bind(error)
            .bind(finished_ms)
            .bind(awaiting)
            .execute(&mut **tx)
            .await
            .map_err(|e| other(e, "moving the delivery to its next state"))?;
        }
    }

    let inserted = sqlx::query(
        "INSERT INTO attempts (delivery_id, number, trigger, requested_by, instance,
                 started_at, finished_at, outcome, http_status, remote_code, detail, remote_id,
                 duration_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(completion.delivery_id)
    .bind(a.number)
    .bind(a.trigger.as_str())
    .bind(&a.requested_by)
    .bind(&a.instance)
    .bind(ms(a.started_at))
    .bind(finished_ms)
    .bind(a.outcome.as_str())
    .bind(a.http_status)
    .bind(&a.remote_code)
    .bind(a.detail.as_deref().map(truncate))
    .bind(&a.remote_id)
    .bind((finished_ms - ms(a.started_at)).max(0))
    .execute(&mut **tx)
    .await;
    match inserted {
        Ok(_) => {}
        Err(sqlx::Error::Database(e)) if e.kind() == ErrorKind::ForeignKeyViolation => {
            return Err(not_found_delivery(completion.delivery_id));
        }
        Err(e) => return Err(other(e, "appending the attempt")),
    }
    Ok(())
}

/// `store_payload`, inside a group's transaction.
async fn payload_in(
    tx: &mut Transaction<'static, Sqlite>,
    delivery_id: i64,
    claim_token: &str,
    payload: &[u8],
    payload_sha256: &str,
) -> StoreResult<()> {
    let done = sqlx::query(
        "UPDATE deliveries SET payload = $3, payload_sha256 = $4
             WHERE id = $1 AND claim_token = $2 AND status = 'in_flight' AND payload IS NULL",
    )
    .bind(delivery_id)
    .bind(claim_token)
    .bind(payload)
    .bind(payload_sha256)
    .execute(&mut **tx)
    .await
    .map_err(|e| other(e, "storing the payload"))?;
    if done.rows_affected() == 1 {
        return Ok(());
    }
    // Say why, for the worker's log.
    let row = sqlx::query(
        "SELECT claim_token, payload IS NOT NULL AS has_payload FROM deliveries WHERE id = $1",
    )
    .bind(delivery_id)
    .fetch_optional(&mut **tx)
    .await
    .map_err(|e| other(e, "reading the delivery"))?;
    let Some(row) = row else {
        return Err(not_found_delivery(delivery_id));
    };
    if col::<Option<String>>(&row, "claim_token")?.as_deref() != Some(claim_token) {
        return Err(StoreError::Conflict(format!(
            "投递 {delivery_id} 已不在本次认领中（可能已被其他实例接管）"
        )));
    }
    Err(StoreError::Conflict(format!(
        "投递 {delivery_id} 的发送内容已固定，不能更改"
    )))
}

async fn commit(tx: Transaction<'static, Sqlite>) -> StoreResult<()> {
    tx.commit()
        .await
        .map_err(|e| other(e, "committing a write transaction"))
}

fn json_ids(ids: &[i64]) -> StoreResult<String> {
    serde_json::to_string(ids).map_err(|e| other(e, "encoding ids"))
}

#[cfg(test)]
mod tests {
    use super::super::shared_sql::NEXT_DUE_SQL;
    use super::*;
    use sqlx::Row;

    /// The query plan SQLite makes for `sql` on a new store, its detail lines joined
    /// (parameters left unbound: the plan does not depend on their values here).
    async fn plan_of(sql: &str) -> String {
        let dir = tempfile::tempdir().expect("create a temporary directory");
        let path = dir.path().join("plan.db");
        let store = SqliteStore::open(&path.display().to_string())
            .await
            .expect("open the store");
        let plan: Vec<String> = sqlx::query(&format!("EXPLAIN QUERY PLAN {sql}"))
            .fetch_all(&store.reader)
            .await
            .expect("explain the query")
            .iter()
            .map(|row| row.get::<String, _>("detail"))
            .collect();
        plan.join("\n")
    }

    /// The claim runs on every poll of every worker: it must walk `deliveries_due` in
    /// order and stop after `limit` rows, not sort every due row. SQLite has no statistics
    /// here (no ANALYZE), so a new index can silently change its mind.
    #[tokio::test]
    async fn the_claim_and_next_due_queries_walk_the_due_index_without_sorting() {
        for sql in [CLAIM_CANDIDATES_SQL, NEXT_DUE_SQL] {
            let plan = plan_of(sql).await;
            assert!(plan.contains("USING INDEX deliveries_due"), "{plan}");
            assert!(!plan.contains("TEMP B-TREE"), "{plan}");
        }
    }

    /// The menu's latest items walk the publish-date index and stop early (only the
    /// ties of one date are sorted), never a sort of the department's items.
    #[tokio::test]
    async fn the_latest_published_walk_the_publish_date_index() {
        let plan = plan_of(LATEST_PUBLISHED_SQL).await;
        assert!(
            plan.starts_with("SEARCH s USING INDEX disclosures_by_publish_date"),
            "{plan}"
        );
        // Only the ties of the last order term are sorted, not the whole result.
        assert!(!plan.contains("TEMP B-TREE FOR ORDER BY"), "{plan}");
    }

    /// A page of search hits is read by id, each joined by key: never a scan of the
    /// department's rows (no ANALYZE here, so the join order is written into the SQL).
    #[tokio::test]
    async fn search_hits_are_read_by_id_not_by_scanning_the_department() {
        let plan = plan_of(PUBLISHED_DOCS_SQL).await;
        assert!(
            plan.starts_with("SEARCH sd USING INTEGER PRIMARY KEY"),
            "{plan}"
        );
        for table in ["s", "d", "n"] {
            let line = plan
                .lines()
                .find(|l| {
                    l.trim_start_matches(['|', '`', '-', ' '])
                        .starts_with(&format!("SEARCH {table} "))
                })
                .unwrap_or_else(|| panic!("no search of {table}: {plan}"));
            assert!(line.contains("disclosure_id=?"), "{plan}");
        }
    }

    /// A request whose client hangs up is dropped at whatever `.await` it is on, also while
    /// the single writer connection is starting a transaction. That must not leave the
    /// writer inside a transaction sqlx no longer tracks (found by benches/callback_load.sh:
    /// after wrk closed its connections every write failed with "attempted to call
    /// begin_with at non-zero transaction depth", the delivery worker's included).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_cancelled_at_any_point_leave_the_writer_usable() {
        let dir = tempfile::tempdir().expect("create a temporary directory");
        let path = dir.path().join("cancel.db");
        let store = std::sync::Arc::new(
            SqliteStore::open(&path.display().to_string())
                .await
                .expect("open the store"),
        );
        let lease = std::time::Duration::from_secs(30);
        for round in 0..200u64 {
            let mut tasks = Vec::new();
            for i in 0..16u64 {
                let s = store.clone();
                tasks.push(tokio::spawn(async move {
                    let key = format!("k{round}-{i}");
                    s.claim_wechat_message("wx1", &key, Utc::now(), lease)
                        .await?;
                    s.answer_wechat_message("wx1", &key, "r", Utc::now()).await
                }));
            }
            tokio::time::sleep(std::time::Duration::from_micros(50 + round * 7 % 400)).await;
            for t in &tasks {
                t.abort();
            }
            for t in tasks {
                let _ = t.await;
            }
        }
        let claim = store
            .claim_wechat_message("wx1", "after", Utc::now(), lease)
            .await
            .expect("the writer still works after cancelled writes");
        assert!(matches!(claim, MessageClaim::New));
    }
}
