//! The ledger's and the WeChat state's store methods whose SQL is the same on both
//! backends (reads by key, progress and display records, token and media caches, publish
//! and mass-send records): written once here, expanded for `SqliteStore` and
//! `PostgresStore` by `shared_methods!` (as `console_sql.rs` does for the console); each
//! backend's `Store` impl delegates with one line. What differs between the databases
//! (claims, group commit, search, the dedupe records) stays in sqlite.rs / postgres.rs.

use chrono::{DateTime, Utc};
use sqlx::{Postgres, QueryBuilder, Sqlite};

use super::postgres::PostgresStore;
use super::rows::*;
use super::sqlite::SqliteStore;
use super::*;

/// The latest delivered publish of a disclosure on a gov_site channel, not withdrawn
/// (`d` = deliveries, `s` = disclosures).
macro_rules! published_filter {
    () => {
        "s.withdrawn_at IS NULL
           AND d.kind = 'gov_site' AND d.action = 'publish' AND d.status = 'delivered'
           AND NOT EXISTS (
               SELECT 1 FROM deliveries n
               WHERE n.department = d.department AND n.disclosure_id = d.disclosure_id
                 AND n.channel = d.channel
                 AND n.action = 'publish' AND n.status = 'delivered' AND n.revision > d.revision)"
    };
}
pub(super) use published_filter;

/// When the next delivery is due: the oldest due row that does not wait for an older
/// sibling (in_flight rows are due when their lease ends).
pub(super) const NEXT_DUE_SQL: &str = "SELECT d.next_attempt_at FROM deliveries d
     WHERE d.status IN ('pending', 'retrying', 'in_flight')
       AND d.next_attempt_at IS NOT NULL
       AND NOT EXISTS (
           SELECT 1 FROM deliveries o
           WHERE o.department = d.department AND o.disclosure_id = d.disclosure_id
             AND o.channel = d.channel
             AND o.id < d.id AND o.status IN ('pending', 'retrying', 'in_flight'))
     ORDER BY d.next_attempt_at LIMIT 1";

/// The shared methods on a store whose method `$begin` starts a write transaction and
/// whose pools `$reads` and `$writes` take reads and single writing statements.
macro_rules! shared_methods {
    ($store:ty, $db:ty, begin = $begin:ident, reads = $reads:ident, writes = $writes:ident) => {
        impl $store {
            pub(super) async fn shared_get_disclosure(
                &self,
                department: &str,
                disclosure_id: &str,
                revision: Option<i64>,
            ) -> StoreResult<StoredDisclosure> {
                let row = match revision {
                    Some(rev) => sqlx::query(concat!(
                        "SELECT ",
                        disclosure_cols!(),
                        " FROM disclosures s
                          WHERE s.department = $3 AND s.disclosure_id = $1 AND s.revision = $2"
                    ))
                    .bind(disclosure_id)
                    .bind(rev)
                    .bind(department),
                    None => sqlx::query(concat!(
                        "SELECT ",
                        disclosure_cols!(),
                        " FROM disclosures s WHERE s.department = $2 AND s.disclosure_id = $1
                          ORDER BY s.revision DESC LIMIT 1"
                    ))
                    .bind(disclosure_id)
                    .bind(department),
                }
                .fetch_optional(&self.$reads)
                .await
                .map_err(|e| other(e, "reading a disclosure"))?;
                match row {
                    Some(row) => disclosure_from_row(&row),
                    None => Err(StoreError::NotFound(match revision {
                        Some(rev) => format!("没有公开件 {disclosure_id} 第{rev}版"),
                        None => format!("没有公开件 {disclosure_id}"),
                    })),
                }
            }

            pub(super) async fn shared_list_deliveries(
                &self,
                department: &str,
                filter: &DeliveryFilter,
            ) -> StoreResult<Vec<DeliveryRow>> {
                let mut q: QueryBuilder<$db> = QueryBuilder::new(concat!(
                    "SELECT ",
                    delivery_cols!(),
                    " FROM deliveries WHERE department = "
                ));
                q.push_bind(department);
                if !filter.statuses.is_empty() {
                    q.push(" AND status IN (");
                    let mut list = q.separated(", ");
                    for st in &filter.statuses {
                        list.push_bind(st.as_str());
                    }
                    q.push(")");
                }
                if let Some(channel) = &filter.channel {
                    q.push(" AND channel = ").push_bind(channel);
                }
                if let Some(id) = &filter.disclosure_id {
                    q.push(" AND disclosure_id = ").push_bind(id);
                }
                q.push(" ORDER BY id");
                if let Some(limit) = filter.limit {
                    q.push(" LIMIT ").push_bind(limit.max(0));
                }
                let rows = q
                    .build()
                    .fetch_all(&self.$reads)
                    .await
                    .map_err(|e| other(e, "listing deliveries"))?;
                rows.iter().map(delivery_from_row).collect()
            }

            pub(super) async fn shared_get_delivery(&self, department: &str, id: i64) -> StoreResult<DeliveryRow> {
                let row = sqlx::query(concat!(
                    "SELECT ",
                    delivery_cols!(),
                    " FROM deliveries WHERE id = $1 AND department = $2"
                ))
                .bind(id)
                .bind(department)
                .fetch_optional(&self.$reads)
                .await
                .map_err(|e| other(e, "reading a delivery"))?;
                match row {
                    Some(row) => delivery_from_row(&row),
                    None => Err(not_found_delivery(id)),
                }
            }

            pub(super) async fn shared_record_displayed_until(
                &self,
                department: &str,
                channel: &str,
                disclosure_id: &str,
                revision: i64,
                at: DateTime<Utc>,
            ) -> StoreResult<()> {
                sqlx::query(
                    "UPDATE deliveries SET displayed_until = $4
                     WHERE department = $5 AND channel = $1 AND disclosure_id = $2 AND revision = $3
                       AND action = 'publish' AND delivered_at IS NOT NULL
                       AND displayed_until IS NULL",
                )
                .bind(channel)
                .bind(disclosure_id)
                .bind(revision)
                .bind(ms(at))
                .bind(department)
                .execute(&self.$writes)
                .await
                .map_err(|e| other(e, "recording when a displayed item came down"))?;
                Ok(())
            }

            pub(super) async fn shared_next_due_at(&self) -> StoreResult<Option<DateTime<Utc>>> {
                let next: Option<i64> = sqlx::query_scalar(NEXT_DUE_SQL)
                    .fetch_optional(&self.$reads)
                    .await
                    .map_err(|e| other(e, "finding the next due time"))?;
                next.map(|v| from_ms(v, "next_attempt_at")).transpose()
            }

            pub(super) async fn shared_save_progress(
                &self,
                delivery_id: i64,
                claim_token: &str,
                progress: &serde_json::Value,
            ) -> StoreResult<()> {
                let done = sqlx::query(
                    "UPDATE deliveries SET progress = $3
                     WHERE id = $1 AND claim_token = $2 AND status = 'in_flight'",
                )
                .bind(delivery_id)
                .bind(claim_token)
                .bind(progress.to_string())
                .execute(&self.$writes)
                .await
                .map_err(|e| other(e, "saving the delivery's progress"))?;
                if done.rows_affected() == 1 {
                    return Ok(());
                }
                let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM deliveries WHERE id = $1")
                    .bind(delivery_id)
                    .fetch_optional(&self.$writes)
                    .await
                    .map_err(|e| other(e, "reading the delivery"))?;
                if exists.is_none() {
                    return Err(not_found_delivery(delivery_id));
                }
                Err(StoreError::Conflict(format!(
                    "投递 {delivery_id} 已不在本次认领中（可能已被其他实例接管），进度未保存"
                )))
            }

            pub(super) async fn shared_wechat_token(
                &self,
                appid: &str,
            ) -> StoreResult<Option<WechatToken>> {
                // On the pool that writes: a token just stored here must be seen at once.
                let row = sqlx::query(
                    "SELECT access_token, expires_at, refreshing_by, refreshing_until, grants
                     FROM wechat_tokens WHERE appid = $1",
                )
                .bind(appid)
                .fetch_optional(&self.$writes)
                .await
                .map_err(|e| other(e, "reading the WeChat token"))?;
                row.map(|r| {
                    Ok(WechatToken {
                        access_token: col(&r, "access_token")?,
                        expires_at: opt_ts(&r, "expires_at")?,
                        refreshing_by: col(&r, "refreshing_by")?,
                        refreshing_until: opt_ts(&r, "refreshing_until")?,
                        grants: col(&r, "grants")?,
                    })
                })
                .transpose()
            }

            pub(super) async fn shared_put_wechat_token(
                &self,
                appid: &str,
                holder: &str,
                access_token: &str,
                expires_at: DateTime<Utc>,
                now: DateTime<Utc>,
            ) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO wechat_tokens (appid, access_token, expires_at, grants, updated_at)
                     VALUES ($1, $2, $3, 1, $4)
                     ON CONFLICT (appid) DO UPDATE SET access_token = $2, expires_at = $3,
                         grants = wechat_tokens.grants + 1, updated_at = $4,
                         refreshing_by = CASE WHEN wechat_tokens.refreshing_by = $5 THEN NULL
                                         ELSE wechat_tokens.refreshing_by END,
                         refreshing_until = CASE WHEN wechat_tokens.refreshing_by = $5 THEN NULL
                                            ELSE wechat_tokens.refreshing_until END",
                )
                .bind(appid)
                .bind(access_token)
                .bind(ms(expires_at))
                .bind(ms(now))
                .bind(holder)
                .execute(&self.$writes)
                .await
                .map_err(|e| other(e, "storing the WeChat token"))?;
                Ok(())
            }

            pub(super) async fn shared_unlock_wechat_token_refresh(&self, appid: &str, holder: &str) -> StoreResult<()> {
                sqlx::query(
                    "UPDATE wechat_tokens SET refreshing_by = NULL, refreshing_until = NULL
                     WHERE appid = $1 AND refreshing_by = $2",
                )
                .bind(appid)
                .bind(holder)
                .execute(&self.$writes)
                .await
                .map_err(|e| other(e, "unlocking the WeChat token refresh"))?;
                Ok(())
            }

            pub(super) async fn shared_wechat_media(
                &self,
                appid: &str,
                kind: &str,
                content_sha256: &str,
            ) -> StoreResult<Option<WechatMedia>> {
                let row = sqlx::query(
                    "SELECT media_id, url FROM wechat_media
                     WHERE appid = $1 AND kind = $2 AND content_sha256 = $3",
                )
                .bind(appid)
                .bind(kind)
                .bind(content_sha256)
                .fetch_optional(&self.$writes)
                .await
                .map_err(|e| other(e, "reading WeChat media"))?;
                row.map(|r| {
                    Ok(WechatMedia {
                        appid: appid.to_string(),
                        kind: kind.to_string(),
                        content_sha256: content_sha256.to_string(),
                        media_id: col(&r, "media_id")?,
                        url: col(&r, "url")?,
                    })
                })
                .transpose()
            }

            pub(super) async fn shared_put_wechat_media(&self, media: &WechatMedia, now: DateTime<Utc>) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO wechat_media (appid, kind, content_sha256, media_id, url, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (appid, kind, content_sha256) DO UPDATE SET media_id = $4, url = $5",
                )
                .bind(&media.appid)
                .bind(&media.kind)
                .bind(&media.content_sha256)
                .bind(&media.media_id)
                .bind(&media.url)
                .bind(ms(now))
                .execute(&self.$writes)
                .await
                .map_err(|e| other(e, "storing WeChat media"))?;
                Ok(())
            }

            pub(super) async fn shared_wechat_publish_event(
                &self,
                appid: &str,
                publish_id: &str,
            ) -> StoreResult<Option<WechatPublishEvent>> {
                let row = sqlx::query(
                    "SELECT publish_status, article_id, article_url, fail_idx, times_received
                     FROM wechat_publish_events WHERE appid = $1 AND publish_id = $2",
                )
                .bind(appid)
                .bind(publish_id)
                .fetch_optional(&self.$writes)
                .await
                .map_err(|e| other(e, "reading a PUBLISHJOBFINISH event"))?;
                row.map(|r| {
                    let fail_idx: Option<String> = col(&r, "fail_idx")?;
                    Ok(WechatPublishEvent {
                        appid: appid.to_string(),
                        publish_id: publish_id.to_string(),
                        publish_status: col(&r, "publish_status")?,
                        article_id: col(&r, "article_id")?,
                        article_url: col(&r, "article_url")?,
                        fail_idx: fail_idx
                            .and_then(|f| serde_json::from_str(&f).ok())
                            .unwrap_or_default(),
                        times_received: col(&r, "times_received")?,
                    })
                })
                .transpose()
            }

            pub(super) async fn shared_record_wechat_mass_result(
                &self,
                result: &WechatMassResult,
                now: DateTime<Utc>,
            ) -> StoreResult<bool> {
                let times: i64 = sqlx::query_scalar(super::MASS_RESULT_SQL)
                    .bind(&result.appid)
                    .bind(&result.msg_id)
                    .bind(&result.status)
                    .bind(result.total_count)
                    .bind(result.filter_count)
                    .bind(result.sent_count)
                    .bind(result.error_count)
                    .bind(ms(now))
                    .fetch_one(&self.$writes)
                    .await
                    .map_err(|e| other(e, "recording the MASSSENDJOBFINISH event"))?;
                Ok(times == 1)
            }

            pub(super) async fn shared_wechat_mass_result(
                &self,
                appid: &str,
                msg_id: &str,
            ) -> StoreResult<Option<WechatMassResult>> {
                let row = sqlx::query(
                    "SELECT appid, msg_id, status, total_count, filter_count, sent_count, error_count,
                            received_at, times_received
                     FROM wechat_mass_results WHERE appid = $1 AND msg_id = $2",
                )
                .bind(appid)
                .bind(msg_id)
                .fetch_optional(&self.$reads)
                .await
                .map_err(|e| other(e, "reading a mass-send report"))?;
                row.map(|r| {
                    Ok(WechatMassResult {
                        appid: col(&r, "appid")?,
                        msg_id: col(&r, "msg_id")?,
                        status: col(&r, "status")?,
                        total_count: col(&r, "total_count")?,
                        filter_count: col(&r, "filter_count")?,
                        sent_count: col(&r, "sent_count")?,
                        error_count: col(&r, "error_count")?,
                        received_at: opt_ts(&r, "received_at")?,
                        times_received: col(&r, "times_received")?,
                    })
                })
                .transpose()
            }
        }
    };
}

shared_methods!(
    SqliteStore,
    Sqlite,
    begin = begin_write,
    reads = reader,
    writes = writer
);
shared_methods!(
    PostgresStore,
    Postgres,
    begin = begin,
    reads = pool,
    writes = pool
);
