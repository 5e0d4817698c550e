//! PostgreSQL implementation of [`Store`]: several daemon instances on one database.
//! Owns the SQL (a mirror of `sqlite.rs`, statement for statement, except the worker's hot
//! path: one-statement claims and group-committed payloads and completions, on a small
//! pool of their own with generic plans), the connection pools,
//! the embedded migrations in `src/store/migrations/postgres/`, the LISTEN/NOTIFY wake-up
//! of idle workers, and the row mapping (BIGINT unix milliseconds, TEXT dates, as SQLite).
//!
//! Where SQLite relies on its single writer, PostgreSQL takes locks instead:
//! - claims select with `FOR UPDATE OF d SKIP LOCKED`, so two instances never take the same
//!   row and never wait for each other; a row another instance claimed in the meantime no
//!   longer matches (its `next_attempt_at` is the lease expiry) when it is re-checked;
//! - the transactions that decide between the revisions of one disclosure (ingest,
//!   withdrawal, the failure path of a completion) take a transaction-scoped advisory
//!   lock on the disclosure id, so they run one after the other as they do on SQLite;
//! - state changes of a completion are made only under the current claim token.

use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use anyhow::{anyhow, Context as _};
use sqlx::error::ErrorKind;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use sqlx::{Postgres, Transaction};
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::task::JoinHandle;

use super::rows::{
    attempt_from_row, col, date_text, delivery_from_row, disclosure_cols, disclosure_from_row,
    enum_col, from_ms, ms, not_found_delivery, other, parse_date, published_items,
    published_row_from_row, report_revision_from_row, truncate,
};
use super::shared_sql::published_filter;
use super::*;

/// The NOTIFY channel on which new due work is announced to every instance.
const WORK_CHANNEL: &str = "gongkai_work";
/// First key of the advisory locks taken per disclosure (the second is the id's hash).
const DISCLOSURE_LOCK_SPACE: i32 = 0x676b; // "gk"
/// How long to wait for a free connection before a store call fails.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);
/// Default pool size when the config does not say (`database_max_connections`).
pub const DEFAULT_MAX_CONNECTIONS: u32 = 10;
/// A pooled connection idle longer than this is pinged before use (the server or a proxy
/// may have closed it); a busy one is not: a ping per statement doubled the round trips.
const PING_IF_IDLE_FOR: Duration = Duration::from_secs(30);
/// Connections of the worker's pool (out of `database_max_connections`): the claim, and the
/// two kinds of grouped writes side by side. On those connections PostgreSQL uses the
/// generic plan of each statement (plan_cache_mode): by default it plans these
/// statements again on every execution (their parameters look selective), which cost more
/// CPU than running them; their best plan does not depend on the parameters (keys, the
/// due index, a LIMIT). The other statements keep the default.
const HOT_POOL_SIZE: u32 = 3;
/// A generic plan is kept until the tables' statistics change (ANALYZE invalidates it).
/// Made on a new, nearly empty database, every path looks like one row and the plan kept
/// can read a whole table per row: seen, the department's id index taken for the sibling
/// rule and for the update by id (2.5 ms a claim), and `disclosures_received` for the
/// foreign-key checks and revision lookups of an ingest (0.8 ms each). Autovacuum analyzes
/// a table a minute or more after it has grown; the store does not wait for that: when
/// the rows this process has written (ingested disclosures and deliveries, claims) pass
/// each of these counts, it analyzes the ledger's tables itself.
const ANALYZE_AFTER_ROWS: [u64; 3] = [256, 4_096, 65_536];
/// How many grouped writes (payloads, delivered completions) one statement takes at most.
const MAX_GROUP: usize = 128;

macro_rules! clear_claim {
    () => {
        "claimed_by = NULL, claim_token = NULL, claimed_at = NULL, claimed_until = NULL, \
         claim_trigger = NULL, claim_requested_by = NULL"
    };
}

/// The `last_error` and attempt detail of a claim taken over, from the column that holds
/// the abandoned claim's instance.
macro_rules! lost_detail_sql {
    ($claimed_by:literal) => {
        concat!(
            "'上次尝试未完成：实例 ' || COALESCE(",
            $claimed_by,
            ", '（未知）') || ' 在租约到期前未报告结果（可能已崩溃）'"
        )
    };
}

/// Claims in one statement (one round trip, one commit): the due candidates are locked
/// with `FOR UPDATE OF d SKIP LOCKED` (rows another instance is claiming right now are
/// skipped, not waited for; a row claimed meanwhile no longer matches when re-checked: its
/// `next_attempt_at` is the lease expiry), abandoned claims among them are written down as
/// `lost` attempts from the locked rows' values, and the rows are taken over with a fresh
/// token each. Ordering and the sibling rule are those of `sqlite.rs`.
const CLAIM_SQL: &str = concat!(
    "WITH c AS (
         SELECT d.id AS c_id, d.status AS c_status, d.next_attempt_at AS c_due,
                d.attempts AS c_attempts, d.claim_trigger AS c_trigger,
                d.claim_requested_by AS c_requested_by, d.claimed_by AS c_claimed_by,
                d.claimed_at AS c_claimed_at
         FROM deliveries d
         WHERE d.status IN ('pending', 'retrying', 'in_flight')
           AND d.next_attempt_at <= $1
           AND NOT EXISTS (
               SELECT 1 FROM deliveries o
               WHERE o.department = d.department AND o.disclosure_id = d.disclosure_id
                 AND o.channel = d.channel
                 AND o.id < d.id AND o.status IN ('pending', 'retrying', 'in_flight'))
         ORDER BY d.next_attempt_at, d.id
         LIMIT $2
         FOR UPDATE OF d SKIP LOCKED
     ), lost AS (
         INSERT INTO attempts (delivery_id, number, trigger, requested_by, instance,
             started_at, finished_at, outcome, detail, duration_ms)
         SELECT c_id, c_attempts, COALESCE(c_trigger, 'scheduled'), c_requested_by,
             c_claimed_by, COALESCE(c_claimed_at, $1), $1, 'lost', ",
    lost_detail_sql!("c_claimed_by"),
    ", GREATEST($1 - COALESCE(c_claimed_at, $1), 0)
         FROM c WHERE c_status = 'in_flight'
         ORDER BY c_id
     ), claimed AS (
         UPDATE deliveries SET
             status = 'in_flight',
             attempts = deliveries.attempts + 1,
             claim_token = gen_random_uuid()::TEXT,
             claimed_by = $3,
             claimed_at = $1,
             claimed_until = $4,
             next_attempt_at = $4,
             claim_trigger = deliveries.next_trigger,
             claim_requested_by = deliveries.requested_by,
             next_trigger = 'scheduled',
             requested_by = NULL,
             last_error = CASE WHEN c_status = 'in_flight' THEN ",
    lost_detail_sql!("c_claimed_by"),
    " ELSE deliveries.last_error END,
             updated_at = $1
         FROM c
         -- By primary key: joined to the CTE alone the planner may scan the whole table.
         WHERE deliveries.id = ANY(ARRAY(SELECT c_id FROM c)) AND deliveries.id = c.c_id
         RETURNING deliveries.*, c.c_due
     )
     SELECT claimed.id, claimed.channel, claimed.kind, claimed.action, claimed.status,
         claimed.attempts, claimed.attempts_base, claimed.next_attempt_at,
         claimed.next_trigger, claimed.requested_by, claimed.claimed_by,
         claimed.claimed_until, claimed.remote_id, claimed.url, claimed.last_error,
         claimed.payload, claimed.payload_sha256, claimed.created_at, claimed.updated_at,
         claimed.delivered_at, claimed.progress, claimed.displayed_until,
         claimed.claim_token, claimed.claim_trigger, claimed.claim_requested_by, ",
    disclosure_cols!(),
    " FROM claimed
     JOIN disclosures s ON s.department = claimed.department
         AND s.disclosure_id = claimed.disclosure_id
         AND s.revision = claimed.revision
     ORDER BY claimed.c_due, claimed.id"
);

pub struct PostgresStore {
    pub(super) pool: PgPool,
    /// The delivery worker's own small pool for claims and grouped writes: generic plans
    /// (see `HOT_POOL_SIZE`).
    hot: PgPool,
    /// Payloads and delivered completions of concurrent attempts, written together.
    group: mpsc::Sender<GroupedWrite>,
    /// Woken by the listener task on every NOTIFY of new work (a permit is kept when
    /// nobody waits, so a notification between a claim and the wait is not lost).
    work: Arc<Notify>,
    /// The LISTEN task, started by the first `wait_for_work` (only workers need it).
    listener: Mutex<Option<JoinHandle<()>>>,
    published: PublishedGeneration,
    /// Rows this process has ingested or claimed (see `ANALYZE_AFTER_ROWS`).
    written: AtomicU64,
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        if let Ok(mut guard) = self.listener.lock() {
            if let Some(task) = guard.take() {
                task.abort();
            }
        }
    }
}

/// Keeps one LISTEN connection open and turns each notification into a wake-up. When the
/// connection drops it reconnects (the worker's poll covers the gap) and wakes once, since
/// a notification may have been missed meanwhile.
async fn listen_for_work(pool: PgPool, work: Arc<Notify>) {
    loop {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error.message = %e, "PostgreSQL：无法建立 LISTEN 连接，空闲时改为定时轮询");
                tokio::time::sleep(Duration::from_secs(5)).await;
                continue;
            }
        };
        if let Err(e) = listener.listen(WORK_CHANNEL).await {
            tracing::warn!(error.message = %e, "PostgreSQL：LISTEN {WORK_CHANNEL} 失败，空闲时改为定时轮询");
            tokio::time::sleep(Duration::from_secs(5)).await;
            continue;
        }
        work.notify_one();
        loop {
            match listener.try_recv().await {
                Ok(Some(_)) => work.notify_one(),
                // The connection was lost and will be re-established by the next call.
                Ok(None) => work.notify_one(),
                Err(e) => {
                    tracing::warn!(error.message = %e, "PostgreSQL：LISTEN 连接中断，正在重连");
                    work.notify_one();
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    break;
                }
            }
        }
    }
}

/// A write that may share its statement with others that arrive at the same time (group
/// commit): under load, N attempts cost one round trip and one WAL flush instead of N. Each
/// caller waits for its group's commit, so it reads its own write afterwards; when idle, a
/// write waits for nobody.
enum GroupedWrite {
    /// A `Delivered` completion.
    Delivered {
        completion: Completion,
        reply: Reply,
    },
    Payload {
        write: PayloadWrite,
        reply: Reply,
    },
}

/// Where a grouped write's caller waits for its answer.
type Reply = oneshot::Sender<StoreResult<()>>;

/// A `store_payload` call.
struct PayloadWrite {
    delivery_id: i64,
    claim_token: String,
    payload: Vec<u8>,
    payload_sha256: String,
}

/// Takes grouped writes as they come: each batch is one multi-row statement per kind (the
/// kinds run side by side). A batch whose statement fails, or a row it did not write, is
/// done again one by one, so that each caller gets its own answer (NotFound, Conflict).
async fn group_commit(pool: PgPool, mut rx: mpsc::Receiver<GroupedWrite>) {
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        while jobs.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let mut delivered = Vec::new();
        let mut payloads = Vec::new();
        for job in jobs {
            match job {
                GroupedWrite::Delivered { completion, reply } => {
                    delivered.push((completion, reply))
                }
                GroupedWrite::Payload { write, reply } => payloads.push((write, reply)),
            }
        }
        tokio::join!(
            complete_delivered_group(&pool, delivered),
            store_payload_group(&pool, payloads)
        );
    }
}

/// `Delivered` completions in one statement: the state changes (only under each claim) and
/// the appended attempts commit together.
async fn complete_delivered_group(pool: &PgPool, jobs: Vec<(Completion, Reply)>) {
    if jobs.is_empty() {
        return;
    }
    if jobs.len() > 1 {
        let n = jobs.len();
        let (mut id, mut token, mut remote_id, mut url) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut number, mut trigger, mut requested_by, mut instance) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut started, mut finished, mut outcome, mut http_status) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut remote_code, mut detail, mut attempt_remote_id) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for (c, _) in &jobs {
            let NextState::Delivered {
                remote_id: rid,
                url: u,
            } = &c.next
            else {
                unreachable!("only Delivered completions are grouped")
            };
            let a = &c.attempt;
            id.push(c.delivery_id);
            token.push(c.claim_token.as_str());
            remote_id.push(rid.as_deref());
            url.push(u.as_deref());
            number.push(a.number);
            trigger.push(a.trigger.as_str());
            requested_by.push(a.requested_by.as_deref());
            instance.push(a.instance.as_str());
            started.push(ms(a.started_at));
            finished.push(ms(a.finished_at));
            outcome.push(a.outcome.as_str());
            http_status.push(a.http_status);
            remote_code.push(a.remote_code.as_deref());
            detail.push(a.detail.as_deref().map(truncate));
            attempt_remote_id.push(a.remote_id.as_deref());
        }
        let done = sqlx::query(concat!(
            "WITH c AS (
                 SELECT * FROM unnest($1::BIGINT[], $2::TEXT[], $3::TEXT[], $4::TEXT[],
                     $5::BIGINT[], $6::TEXT[], $7::TEXT[], $8::TEXT[], $9::BIGINT[],
                     $10::BIGINT[], $11::TEXT[], $12::BIGINT[], $13::TEXT[], $14::TEXT[],
                     $15::TEXT[]) WITH ORDINALITY
                 AS c(c_id, c_token, c_remote_id, c_url, c_number, c_trigger, c_requested_by,
                     c_instance, c_started, c_finished, c_outcome, c_http_status,
                     c_remote_code, c_detail, c_attempt_remote_id, c_position)
             ), delivered AS (
                 UPDATE deliveries SET status = 'delivered', remote_id = c_remote_id,
                     url = c_url, last_error = NULL,
                     delivered_at = COALESCE(deliveries.delivered_at, c_finished),
                     next_attempt_at = NULL, updated_at = c_finished, ",
            clear_claim!(),
            " FROM c
                 WHERE deliveries.id = ANY($1) AND deliveries.id = c_id
                   AND deliveries.claim_token = c_token
                 RETURNING deliveries.id)
             INSERT INTO attempts (delivery_id, number, trigger, requested_by, instance,
                 started_at, finished_at, outcome, http_status, remote_code, detail, remote_id,
                 duration_ms)
             SELECT c_id, c_number, c_trigger, c_requested_by, c_instance, c_started,
                 c_finished, c_outcome, c_http_status, c_remote_code, c_detail,
                 c_attempt_remote_id, GREATEST(c_finished - c_started, 0)
             FROM c ORDER BY c_position"
        ))
        .bind(&id)
        .bind(&token)
        .bind(&remote_id)
        .bind(&url)
        .bind(&number)
        .bind(&trigger)
        .bind(&requested_by)
        .bind(&instance)
        .bind(&started)
        .bind(&finished)
        .bind(&outcome)
        .bind(&http_status)
        .bind(&remote_code)
        .bind(&detail)
        .bind(&attempt_remote_id)
        .execute(pool)
        .await;
        if done.is_ok() {
            for (_, reply) in jobs {
                let _ = reply.send(Ok(()));
            }
            return;
        }
        // Nothing was written (one statement): each on its own, for its own answer.
    }
    for (completion, reply) in jobs {
        let NextState::Delivered { remote_id, url } = &completion.next else {
            unreachable!("only Delivered completions are grouped")
        };
        let result = complete_delivered(pool, &completion, remote_id, url).await;
        let _ = reply.send(result);
    }
}

/// Payloads in one statement, each only under its claim and only if none was stored; those
/// it did not write are tried one by one (for their own `Conflict` or `NotFound`).
async fn store_payload_group(pool: &PgPool, jobs: Vec<(PayloadWrite, Reply)>) {
    if jobs.is_empty() {
        return;
    }
    let mut written = Vec::new();
    if jobs.len() > 1 {
        let ids: Vec<i64> = jobs.iter().map(|(w, _)| w.delivery_id).collect();
        let tokens: Vec<&str> = jobs.iter().map(|(w, _)| w.claim_token.as_str()).collect();
        let payloads: Vec<&[u8]> = jobs.iter().map(|(w, _)| w.payload.as_slice()).collect();
        let shas: Vec<&str> = jobs
            .iter()
            .map(|(w, _)| w.payload_sha256.as_str())
            .collect();
        let done: Result<Vec<i64>, _> = sqlx::query_scalar(
            "UPDATE deliveries SET payload = c_payload, payload_sha256 = c_sha
             FROM unnest($1::BIGINT[], $2::TEXT[], $3::BYTEA[], $4::TEXT[])
                 AS c(c_id, c_token, c_payload, c_sha)
             WHERE deliveries.id = ANY($1) AND deliveries.id = c_id
               AND deliveries.claim_token = c_token
               AND deliveries.status = 'in_flight' AND deliveries.payload IS NULL
             RETURNING deliveries.id",
        )
        .bind(&ids)
        .bind(&tokens)
        .bind(&payloads)
        .bind(&shas)
        .fetch_all(pool)
        .await;
        if let Ok(ids) = done {
            written = ids;
        }
    }
    for (w, reply) in jobs {
        let result = if written.contains(&w.delivery_id) {
            Ok(())
        } else {
            store_payload_one(
                pool,
                w.delivery_id,
                &w.claim_token,
                &w.payload,
                &w.payload_sha256,
            )
            .await
        };
        let _ = reply.send(result);
    }
}

/// Connects a pool of up to `max_connections`: a connection that sat idle for a while is
/// pinged before use, a busy one is not (sqlx's default pings before every use: a second
/// round trip per statement).
async fn connect_pool(options: PgConnectOptions, max_connections: u32) -> sqlx::Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .test_before_acquire(false)
        .before_acquire(ping_if_idle)
        .connect_with(options)
        .await
}

/// Pings a pooled connection before use only when it sat idle for a while.
fn ping_if_idle(
    conn: &mut sqlx::PgConnection,
    meta: sqlx::pool::PoolConnectionMetadata,
) -> futures::future::BoxFuture<'_, sqlx::Result<bool>> {
    Box::pin(async move {
        if meta.idle_for > PING_IF_IDLE_FOR {
            sqlx::Connection::ping(conn).await?;
        }
        Ok(true)
    })
}

impl PostgresStore {
    /// Connects a pool of up to `max_connections` to `url` and runs the migrations (several
    /// instances may start at once: sqlx serialises migrations with an advisory lock).
    pub async fn open(url: &str, max_connections: u32) -> anyhow::Result<PostgresStore> {
        let shown = redact(url);
        let options = PgConnectOptions::from_str(url)
            .with_context(|| format!("PostgreSQL 连接串 {shown} 无法解析"))?;
        // One connection is kept by the LISTEN task; claims and completions need the rest.
        let pool = connect_pool(
            options.clone(),
            max_connections.saturating_sub(HOT_POOL_SIZE).max(2),
        )
        .await
        .with_context(|| format!("无法连接 PostgreSQL 数据库 {shown}"))?;
        sqlx::migrate!("src/store/migrations/postgres")
            .run(&pool)
            .await
            .with_context(|| format!("PostgreSQL 数据库 {shown} 迁移失败"))?;
        // Lazily: only a worker uses it (the CLI and the API do not open its connections).
        let hot = PgPoolOptions::new()
            .max_connections(HOT_POOL_SIZE)
            .min_connections(0)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .test_before_acquire(false)
            .before_acquire(ping_if_idle)
            .connect_lazy_with(options.options([("plan_cache_mode", "force_generic_plan")]));
        let (group, rx) = mpsc::channel(4 * MAX_GROUP);
        tokio::spawn(group_commit(hot.clone(), rx));
        Ok(PostgresStore {
            pool,
            hot,
            group,
            work: Arc::new(Notify::new()),
            listener: Mutex::new(None),
            published: PublishedGeneration::default(),
            written: AtomicU64::new(0),
        })
    }

    /// Counts written rows and, on passing a count of `ANALYZE_AFTER_ROWS`, analyzes the
    /// ledger's tables in the background, so that cached plans (every session's) are made
    /// again from statistics of the tables as they are now.
    fn analyze_when_grown(&self, rows: usize) {
        let rows = u64::try_from(rows).unwrap_or(u64::MAX);
        let before = self.written.fetch_add(rows, Ordering::Relaxed);
        let after = before.saturating_add(rows);
        if !ANALYZE_AFTER_ROWS.iter().any(|&n| before < n && after >= n) {
            return;
        }
        let pool = self.pool.clone();
        tokio::spawn(async move {
            match sqlx::query("ANALYZE deliveries, disclosures, search_docs, search_pending")
                .execute(&pool)
                .await
            {
                Ok(_) => tracing::debug!(rows = after, "analyzed the ledger's tables"),
                // Not the owner of the tables, say: autovacuum will do it later.
                Err(e) => {
                    tracing::info!(error.message = %e, "could not analyze the ledger's tables (autovacuum will)")
                }
            }
        });
    }

    /// The pool, for tests and tools that need to look at the database directly.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn grouped(&self, make: impl FnOnce(Reply) -> GroupedWrite) -> StoreResult<()> {
        let (reply, answer) = oneshot::channel();
        self.group
            .send(make(reply))
            .await
            .map_err(|_| StoreError::Other(anyhow!("the group-commit task has stopped")))?;
        answer
            .await
            .map_err(|_| StoreError::Other(anyhow!("the group-commit task dropped a write")))?
    }

    pub(super) async fn begin(&self) -> StoreResult<Transaction<'static, Postgres>> {
        self.pool
            .begin()
            .await
            .map_err(|e| other(e, "starting a transaction"))
    }
}

/// The URL without its password, for messages.
pub(crate) fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((user, host)) => {
                let user = user.split(':').next().unwrap_or("");
                format!("{scheme}://{user}@{host}")
            }
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// Serialises the transactions that decide between the revisions of one disclosure.
async fn lock_disclosure(
    tx: &mut Transaction<'static, Postgres>,
    disclosure_id: &str,
) -> StoreResult<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
        .bind(DISCLOSURE_LOCK_SPACE)
        .bind(disclosure_id)
        .execute(&mut **tx)
        .await
        .map_err(|e| other(e, "locking the disclosure"))?;
    Ok(())
}

/// Announces new due work to every instance, when the transaction commits.
async fn notify_work(tx: &mut Transaction<'static, Postgres>) -> StoreResult<()> {
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(WORK_CHANNEL)
        .execute(&mut **tx)
        .await
        .map_err(|e| other(e, "announcing new work"))?;
    Ok(())
}

#[async_trait]
impl Store for PostgresStore {
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

    async fn insert_disclosure(
        &self,
        department: &str,
        new: &NewDisclosure,
        deliveries: &[NewDelivery],
        now: DateTime<Utc>,
    ) -> StoreResult<IngestOutcome> {
        let now_ms = ms(now);
        let mut tx = self.begin().await?;
        lock_disclosure(&mut tx, &new.disclosure_id).await?;

        let known = sqlx::query(
            "SELECT MAX(revision) AS max_revision,
                    MAX(CASE WHEN withdrawn_at IS NOT NULL THEN 1 ELSE 0 END)::BIGINT AS withdrawn,
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
        // Queued for the search index (SQLite catches up by rowid instead).
        sqlx::query(
            "INSERT INTO search_pending (disclosure_id, revision, department) VALUES ($1, $2, $3)",
        )
        .bind(&new.disclosure_id)
        .bind(new.revision)
        .bind(department)
        .execute(&mut *tx)
        .await
        .map_err(|e| other(e, "queueing the revision for the search index"))?;

        if max_revision.is_some() {
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
        if !delivery_ids.is_empty() {
            notify_work(&mut tx).await?;
        }
        commit(tx).await?;
        self.analyze_when_grown(1 + delivery_ids.len());
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
        let mut tx = self.begin().await?;
        lock_disclosure(&mut tx, disclosure_id).await?;

        let known = sqlx::query(
            "SELECT MAX(revision) AS max_revision,
                    MAX(CASE WHEN withdrawn_at IS NOT NULL THEN 1 ELSE 0 END)::BIGINT AS withdrawn
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

        if !delivery_ids.is_empty() {
            notify_work(&mut tx).await?;
        }
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
        let rows = sqlx::query(CLAIM_SQL)
            .bind(now_ms)
            .bind(limit)
            .bind(instance)
            .bind(until_ms)
            .fetch_all(&self.hot)
            .await
            .map_err(|e| other(e, "claiming due deliveries"))?;
        self.analyze_when_grown(rows.len());
        let started_at = from_ms(now_ms, "now")?;
        rows.iter()
            .map(|row| {
                let delivery = delivery_from_row(row)?;
                Ok(Claimed {
                    attempt_number: delivery.attempts,
                    trigger: enum_col(row, "claim_trigger")?,
                    requested_by: col(row, "claim_requested_by")?,
                    claim_token: col(row, "claim_token")?,
                    started_at,
                    disclosure: disclosure_from_row(row)?,
                    delivery,
                })
            })
            .collect()
    }

    async fn store_payload(
        &self,
        delivery_id: i64,
        claim_token: &str,
        payload: &[u8],
        payload_sha256: &str,
    ) -> StoreResult<()> {
        self.grouped(|reply| GroupedWrite::Payload {
            write: PayloadWrite {
                delivery_id,
                claim_token: claim_token.to_string(),
                payload: payload.to_vec(),
                payload_sha256: payload_sha256.to_string(),
            },
            reply,
        })
        .await
    }

    async fn complete_attempt(&self, completion: &Completion) -> StoreResult<()> {
        if let NextState::Delivered { .. } = &completion.next {
            // The common case, grouped with the completions of other attempts: one
            // statement (no BEGIN/COMMIT) for the state changes under each claim and the
            // attempt rows.
            let done = self
                .grouped(|reply| GroupedWrite::Delivered {
                    completion: completion.clone(),
                    reply,
                })
                .await;
            self.published.bump();
            return done;
        }
        let mut tx = self.begin().await?;
        complete_in(&mut tx, completion).await?;
        commit(tx).await
    }

    async fn release_claim(&self, delivery_id: i64, claim_token: &str) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let done = sqlx::query(concat!(
            "UPDATE deliveries SET
                 status = CASE WHEN claim_trigger = 'manual' OR attempts <= 1
                          THEN 'pending' ELSE 'retrying' END,
                 attempts = GREATEST(attempts - 1, 0),
                 next_attempt_at = COALESCE(claimed_at, updated_at),
                 next_trigger = COALESCE(claim_trigger, 'scheduled'),
                 requested_by = claim_requested_by, ",
            clear_claim!(),
            " WHERE id = $1 AND claim_token = $2 AND status = 'in_flight'"
        ))
        .bind(delivery_id)
        .bind(claim_token)
        .execute(&mut *tx)
        .await
        .map_err(|e| other(e, "releasing the claim"))?;
        if done.rows_affected() == 1 {
            notify_work(&mut tx).await?;
            return commit(tx).await;
        }
        drop(tx);
        let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM deliveries WHERE id = $1")
            .bind(delivery_id)
            .fetch_optional(&self.pool)
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
        .fetch_all(&self.pool)
        .await
        .map_err(|e| other(e, "listing attempts"))?;
        if rows.is_empty() {
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
        let mut tx = self.begin().await?;
        let mut results = Vec::with_capacity(ids.len());
        let mut any = false;
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
                any = true;
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
        if any {
            notify_work(&mut tx).await?;
        }
        commit(tx).await?;
        Ok(results)
    }

    async fn report_revisions(&self, department: &str) -> StoreResult<Vec<ReportRevision>> {
        // As in sqlite.rs, with `json::jsonb ->> 'field'` for json_extract.
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
                     (s.json::jsonb ->> 'art20_item') AS art20_item,
                     (s.json::jsonb ->> 'doc_kind') AS doc_kind,
                     (s.json::jsonb ->> 'validity') AS validity,
                     (s.json::jsonb ->> 'replaces') AS replaces,
                     (s.json::jsonb ->> 'valid_to') AS valid_to
                 FROM disclosures s
                 WHERE s.department = $1 AND s.disclosure_id IN (SELECT disclosure_id FROM item))
             SELECT a.*,
                 to_char(to_timestamp(i.first_at / 1000 + 28800) AT TIME ZONE 'UTC',
                         'YYYY-MM-DD') AS item_first_on,
                 to_char(to_timestamp(r.rev_at / 1000 + 28800) AT TIME ZONE 'UTC',
                         'YYYY-MM-DD') AS delivered_on
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
        .fetch_all(&self.pool)
        .await
        .map_err(|e| other(e, "listing revisions for the report"))?;
        rows.iter().map(report_revision_from_row).collect()
    }

    async fn list_published(&self, department: &str) -> StoreResult<Vec<PublishedRow>> {
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
        .fetch_all(&self.pool)
        .await
        .map_err(|e| other(e, "listing published deliveries"))?;
        rows.iter().map(published_row_from_row).collect()
    }

    async fn published_groups(&self, department: &str) -> StoreResult<Vec<PublishedGroup>> {
        // As in sqlite.rs (lpad for printf('%010d'); China time is UTC+8 without DST), over
        // the department's rows.
        let rows = sqlx::query(
            "WITH per AS (
                 SELECT disclosure_id, channel, MAX(kind) AS kind, MIN(delivered_at) AS first_at
                 FROM deliveries
                 WHERE department = $1 AND action = 'publish' AND delivered_at IS NOT NULL
                 GROUP BY disclosure_id, channel),
             item AS (
                 SELECT disclosure_id,
                     substr(MAX(lpad(revision::TEXT, 10, '0') || category), 11) AS category,
                     substr(MIN(lpad(revision::TEXT, 10, '0') || formed_date), 11) AS formed_date,
                     substr(MIN(CASE WHEN publish_date IS NOT NULL
                                THEN lpad(revision::TEXT, 10, '0') || publish_date END), 11)
                         AS publish_date
                 FROM disclosures
                 WHERE department = $1
                 GROUP BY disclosure_id),
             joined AS (
                 SELECT p.channel, p.kind, i.category, i.formed_date, i.publish_date, p.first_at,
                     MIN(p.first_at) OVER (PARTITION BY p.disclosure_id) AS item_first_at,
                     ROW_NUMBER() OVER (PARTITION BY p.disclosure_id ORDER BY p.channel) AS rn
                 FROM per p JOIN item i ON i.disclosure_id = p.disclosure_id)
             SELECT channel, MAX(kind) AS kind, category,
                 COALESCE(substr(publish_date, 1, 4)::BIGINT,
                          EXTRACT(YEAR FROM to_timestamp(item_first_at / 1000 + 28800)
                                  AT TIME ZONE 'UTC')::BIGINT)
                     AS count_year,
                 formed_date,
                 to_char(to_timestamp(first_at / 1000 + 28800) AT TIME ZONE 'UTC', 'YYYY-MM-DD')
                     AS delivered_on,
                 rn = 1 AS is_primary,
                 COUNT(*) AS items
             FROM joined
             GROUP BY channel, category, count_year, formed_date, delivered_on, is_primary
             ORDER BY channel, category, count_year, formed_date, delivered_on, is_primary",
        )
        .bind(department)
        .fetch_all(&self.pool)
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
                    primary: col::<bool>(row, "is_primary")?,
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

    async fn wait_for_work(&self, timeout: Duration) {
        {
            let mut guard = match self.listener.lock() {
                Ok(g) => g,
                Err(poisoned) => poisoned.into_inner(),
            };
            if guard.is_none() {
                *guard = Some(tokio::spawn(listen_for_work(
                    self.pool.clone(),
                    Arc::clone(&self.work),
                )));
            }
        }
        let _ = tokio::time::timeout(timeout, self.work.notified()).await;
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
        // ON CONFLICT takes the row lock: two instances asking at once are serialised and
        // the second sees the first one's lease.
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
        .execute(&self.pool)
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
        let mut tx = self.begin().await?;
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
            // (SQLite: json_extract(progress, '$.publish_id').)
            let woken = sqlx::query(
                "UPDATE deliveries SET next_attempt_at = $2
                 WHERE status = 'retrying' AND kind = 'wechat'
                   AND (progress::jsonb ->> 'publish_id') = $1
                   AND next_attempt_at > $2",
            )
            .bind(&event.publish_id)
            .bind(now_ms)
            .execute(&mut *tx)
            .await
            .map_err(|e| other(e, "waking the delivery of a publish job"))?;
            if woken.rows_affected() > 0 {
                notify_work(&mut tx).await?;
            }
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

    // ---- WeChat callback (issue 4) ----

    async fn claim_wechat_message(
        &self,
        appid: &str,
        key: &str,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> StoreResult<MessageClaim> {
        // As in sqlite.rs: a concurrent claim of the same key waits for this transaction
        // (the primary key) and then finds the row.
        let now_ms = ms(now);
        let stale_ms = now_ms - i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
        let mut tx = self.begin().await?;
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
        sqlx::query_scalar(RECORD_ANSWER_SQL)
            .bind(appid)
            .bind(key)
            .bind(reply)
            .bind(now_ms)
            .bind(now_ms - i64::try_from(lease.as_millis()).unwrap_or(i64::MAX))
            .fetch_one(&self.pool)
            .await
            .map_err(|e| other(e, "storing a WeChat answer"))
    }

    fn published_generation(&self) -> u64 {
        self.published.get()
    }

    async fn purge_wechat_messages(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        // Index wechat_messages_received_at (migration 0009).
        Ok(
            sqlx::query("DELETE FROM wechat_messages WHERE received_at < $1")
                .bind(ms(before))
                .execute(&self.pool)
                .await
                .map_err(|e| other(e, "forgetting old WeChat messages"))?
                .rows_affected(),
        )
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
        sqlx::query(
            "UPDATE wechat_messages SET reply = $3, answered_at = $4
             WHERE appid = $1 AND dedupe_key = $2",
        )
        .bind(appid)
        .bind(key)
        .bind(reply)
        .bind(ms(now))
        .execute(&self.pool)
        .await
        .map_err(|e| other(e, "storing a WeChat reply"))?;
        Ok(())
    }

    async fn refresh_search_index(&self) -> StoreResult<usize> {
        use crate::wechat_callback::search::{doc_text, tokens, tsvector};
        const BATCH: i64 = 1000;
        let mut added = 0;
        loop {
            // The queue filled by ingest (migration 0004). Rows another instance is
            // indexing are waited for, then skipped (gone from the queue), so when this
            // returns everything stored before the call is in the index.
            let mut tx = self.begin().await?;
            let rows = sqlx::query(
                "SELECT p.department, p.disclosure_id, p.revision, s.title, s.json
                 FROM search_pending p
                 JOIN disclosures s ON s.department = p.department
                     AND s.disclosure_id = p.disclosure_id AND s.revision = p.revision
                 ORDER BY p.department, p.disclosure_id, p.revision
                 LIMIT $1
                 FOR UPDATE OF p",
            )
            .bind(BATCH)
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| other(e, "reading disclosures to index"))?;
            if rows.is_empty() {
                commit(tx).await?;
                return Ok(added);
            }
            let n = rows.len();
            let mut departments = Vec::with_capacity(n);
            let mut ids = Vec::with_capacity(n);
            let mut revisions = Vec::with_capacity(n);
            for r in &rows {
                let department: String = col(r, "department")?;
                let id: String = col(r, "disclosure_id")?;
                let revision: i64 = col(r, "revision")?;
                let title: String = col(r, "title")?;
                let json: String = col(r, "json")?;
                let (head, body) = doc_text(&title, &json);
                let (head, body) = (tokens(&head), tokens(&body));
                let inserted = sqlx::query(
                    "INSERT INTO search_docs (department, disclosure_id, revision, title, body, doc)
                     VALUES ($6, $1, $2, $3, $4, $5::tsvector)
                     ON CONFLICT DO NOTHING",
                )
                .bind(&id)
                .bind(revision)
                .bind(head.join(" "))
                .bind(body.join(" "))
                .bind(tsvector(&head, &body))
                .bind(&department)
                .execute(&mut *tx)
                .await
                .map_err(|e| other(e, "indexing a disclosure"))?;
                added += inserted.rows_affected() as usize;
                departments.push(department);
                ids.push(id);
                revisions.push(revision);
            }
            sqlx::query(
                "DELETE FROM search_pending
                 WHERE (department, disclosure_id, revision) IN
                     (SELECT * FROM UNNEST($3::TEXT[], $1::TEXT[], $2::BIGINT[]))",
            )
            .bind(&ids)
            .bind(&revisions)
            .bind(&departments)
            .execute(&mut *tx)
            .await
            .map_err(|e| other(e, "dequeueing indexed disclosures"))?;
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
        // As on SQLite: relevance tiers (the phrase in the title, the phrase anywhere,
        // every token), newest first within each; the fallback (any token) by ts_rank
        // with title (A) : body (D) = 4 : 1, as SQLite's bm25(search_fts, 4.0, 1.0).
        let queries = match mode {
            SearchMatch::All => query.tsquery_tiers(),
            SearchMatch::Any => vec![query.tsquery_any()],
        };
        let order = match mode {
            SearchMatch::All => "s.publish_date DESC NULLS LAST, d.delivered_at DESC",
            SearchMatch::Any => {
                "round(ts_rank('{0.25, 0.25, 0.25, 1.0}', sd.doc, $1::tsquery)::NUMERIC, 2) DESC,
                 s.publish_date DESC NULLS LAST, d.delivered_at DESC"
            }
        };
        let sql = format!(
            "SELECT s.disclosure_id, s.revision, s.title, s.category, s.publish_date, d.url,
                    d.delivered_at
             FROM search_docs sd
             JOIN disclosures s ON s.department = sd.department
                 AND s.disclosure_id = sd.disclosure_id AND s.revision = sd.revision
             JOIN deliveries d ON d.department = s.department
                 AND d.disclosure_id = s.disclosure_id AND d.revision = s.revision
             WHERE sd.doc @@ $1::tsquery AND sd.department = $3 AND {}
             ORDER BY {order} LIMIT $2",
            published_filter!()
        );
        let mut found: Vec<PublishedItem> = Vec::new();
        for q in queries {
            let rows = sqlx::query(&sql)
                .bind(q)
                .bind((limit * 3) as i64)
                .bind(department)
                .fetch_all(&self.pool)
                .await
                .map_err(|e| other(e, "searching published disclosures"))?;
            for item in published_items(&rows, limit)? {
                if found.len() < limit
                    && !found.iter().any(|f| f.disclosure_id == item.disclosure_id)
                {
                    found.push(item);
                }
            }
            if found.len() >= limit {
                break;
            }
        }
        Ok(found)
    }

    async fn latest_published(
        &self,
        department: &str,
        category: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<PublishedItem>> {
        // NULLS LAST: SQLite sorts NULL lowest, so last when descending.
        let rows = sqlx::query(concat!(
            "SELECT s.disclosure_id, s.revision, s.title, s.category, s.publish_date, d.url,
                    d.delivered_at
             FROM deliveries d
             JOIN disclosures s ON s.department = d.department
                 AND s.disclosure_id = d.disclosure_id AND s.revision = d.revision
             WHERE d.department = $3 AND ($1::TEXT IS NULL OR s.category = $1) AND ",
            published_filter!(),
            " ORDER BY s.publish_date DESC NULLS LAST, d.delivered_at DESC LIMIT $2"
        ))
        .bind(category)
        .bind((limit * 3) as i64)
        .bind(department)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| other(e, "listing the latest published disclosures"))?;
        published_items(&rows, limit)
    }
}

/// `store_payload` for one delivery, with the reason when it was not stored.
async fn store_payload_one(
    pool: &PgPool,
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
    .execute(pool)
    .await
    .map_err(|e| other(e, "storing the payload"))?;
    if done.rows_affected() == 1 {
        return Ok(());
    }
    let row = sqlx::query(
        "SELECT claim_token, payload IS NOT NULL AS has_payload FROM deliveries WHERE id = $1",
    )
    .bind(delivery_id)
    .fetch_optional(pool)
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

/// `complete_attempt` for `Delivered`: a data-modifying CTE, so the update (only under
/// the current claim) and the appended attempt are one atomic statement.
async fn complete_delivered(
    pool: &PgPool,
    completion: &Completion,
    remote_id: &Option<String>,
    url: &Option<String>,
) -> StoreResult<()> {
    let a = &completion.attempt;
    let finished_ms = ms(a.finished_at);
    let done = sqlx::query(concat!(
        "WITH delivered AS (
             UPDATE deliveries SET status = 'delivered', remote_id = $3, url = $4,
                 last_error = NULL, delivered_at = COALESCE(delivered_at, $5),
                 next_attempt_at = NULL, updated_at = $5, ",
        clear_claim!(),
        " WHERE id = $1 AND claim_token = $2
             RETURNING id)
         INSERT INTO attempts (delivery_id, number, trigger, requested_by, instance,
             started_at, finished_at, outcome, http_status, remote_code, detail, remote_id,
             duration_ms)
         VALUES ($1, $6, $7, $8, $9, $10, $5, $11, $12, $13, $14, $15, $16)"
    ))
    .bind(completion.delivery_id)
    .bind(&completion.claim_token)
    .bind(remote_id)
    .bind(url)
    .bind(finished_ms)
    .bind(a.number)
    .bind(a.trigger.as_str())
    .bind(&a.requested_by)
    .bind(&a.instance)
    .bind(ms(a.started_at))
    .bind(a.outcome.as_str())
    .bind(a.http_status)
    .bind(&a.remote_code)
    .bind(a.detail.as_deref().map(truncate))
    .bind(&a.remote_id)
    .bind((finished_ms - ms(a.started_at)).max(0))
    .execute(pool)
    .await;
    match done {
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(e)) if e.kind() == ErrorKind::ForeignKeyViolation => {
            Err(not_found_delivery(completion.delivery_id))
        }
        Err(e) => Err(other(e, "recording the delivered attempt")),
    }
}

/// `complete_attempt` in its transaction (see `sqlite.rs`).
async fn complete_in(
    tx: &mut Transaction<'static, Postgres>,
    completion: &Completion,
) -> StoreResult<()> {
    let a = &completion.attempt;
    let finished_ms = ms(a.finished_at);

    let failed = match &completion.next {
        NextState::Delivered { remote_id, url } => {
            sqlx::query(concat!(
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
            None
        }
        NextState::Retry { at, error } => Some((DeliveryStatus::Retrying, Some(ms(*at)), error)),
        NextState::Dead { error } => Some((DeliveryStatus::Dead, None, error)),
        NextState::Awaiting { at, note } => Some((DeliveryStatus::Retrying, Some(ms(*at)), note)),
    };
    let awaiting = matches!(completion.next, NextState::Awaiting { .. });
    if let Some((status, next_at, error)) = failed {
        // Whether a newer sibling replaced it is decided under the disclosure's lock, so
        // an ingest or a withdrawal of the same disclosure cannot slip in between.
        let disclosure_id: Option<String> =
            sqlx::query_scalar("SELECT disclosure_id FROM deliveries WHERE id = $1")
                .bind(completion.delivery_id)
                .fetch_optional(&mut **tx)
                .await
                .map_err(|e| other(e, "reading the claimed delivery"))?;
        if let Some(disclosure_id) = &disclosure_id {
            lock_disclosure(tx, disclosure_id).await?;
        }
        let current = sqlx::query(
            "SELECT d.action,
                     (SELECT CASE n.action WHEN 'withdraw' THEN '该公开件已撤回'
                             ELSE '已被第' || n.revision || '版取代' END
                      FROM deliveries n
                      WHERE n.department = d.department AND n.disclosure_id = d.disclosure_id
                        AND n.channel = d.channel AND n.id > d.id
                      ORDER BY n.id DESC LIMIT 1) AS superseded
                 FROM deliveries d WHERE d.id = $1 AND d.claim_token = $2
                 FOR UPDATE OF d",
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
                " WHERE id = $1 AND claim_token = $7"
            ))
            .bind(completion.delivery_id)
            .bind(status.as_str())
            .bind(next_at)
            .bind(error)
            .bind(finished_ms)
            .bind(awaiting)
            .bind(&completion.claim_token)
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

async fn commit(tx: Transaction<'static, Postgres>) -> StoreResult<()> {
    tx.commit()
        .await
        .map_err(|e| other(e, "committing a transaction"))
}

/// `record_wechat_answer` in one statement (SQLite batches it: `record_answers`): insert the
/// answered message, or
/// count the request and give back the stored reply; a claim whose instance died (no
/// reply after the lease) takes this answer.
const RECORD_ANSWER_SQL: &str =
    "INSERT INTO wechat_messages (appid, dedupe_key, reply, received_at, answered_at)
     VALUES ($1, $2, $3, $4, $4)
     ON CONFLICT (appid, dedupe_key) DO UPDATE SET
         times_received = wechat_messages.times_received + 1,
         reply = CASE WHEN wechat_messages.reply IS NULL AND wechat_messages.received_at < $5
                      THEN excluded.reply ELSE wechat_messages.reply END,
         answered_at = CASE WHEN wechat_messages.reply IS NULL
                                 AND wechat_messages.received_at < $5
                            THEN excluded.answered_at ELSE wechat_messages.answered_at END
     RETURNING reply";

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_are_not_shown_in_messages() {
        assert_eq!(
            redact("postgres://app:s3cret@db.example:5432/gongkai"),
            "postgres://app@db.example:5432/gongkai"
        );
        assert_eq!(
            redact("postgres://postgres@127.0.0.1/test"),
            "postgres://postgres@127.0.0.1/test"
        );
    }
}
