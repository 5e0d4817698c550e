//! The operator console's store methods (issue 8): operator accounts, sessions, the day
//! list and the per-channel counts. Both schemas keep BIGINT/INTEGER milliseconds and a
//! 0/1 `disabled`, so the SQL is one text for both backends: `console_methods!` writes the
//! methods once and is expanded for `SqliteStore` (reads on its reader pool, writes on its
//! one writer) and `PostgresStore` (one pool). Kept apart from the backends' files so that
//! the delivery ledger's SQL stays in one place; their trait impls delegate here.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{Postgres, QueryBuilder, Sqlite};

use super::postgres::PostgresStore;
use super::rows::{col, disclosure_from_row, enum_col, from_ms, ms, opt_ts, other, ts, Columns};
use super::sqlite::SqliteStore;
use super::{
    DeliveryCount, DisclosureQuery, LastDelivered, NewOperator, NewSession, OperatorRow,
    SessionRow, StoreError, StoreResult, StoredDisclosure,
};

const OPERATOR_COLS: &str = "name, department, password_hash, role, disabled, failed_sign_ins, \
                             locked_until, created_at, last_sign_in_at";

fn operator_from_row(row: &impl Columns) -> StoreResult<OperatorRow> {
    Ok(OperatorRow {
        name: col(row, "name")?,
        department: col(row, "department")?,
        password_hash: col(row, "password_hash")?,
        role: enum_col(row, "role")?,
        disabled: col::<i64>(row, "disabled")? != 0,
        failed_sign_ins: col(row, "failed_sign_ins")?,
        locked_until: opt_ts(row, "locked_until")?,
        created_at: ts(row, "created_at")?,
        last_sign_in_at: opt_ts(row, "last_sign_in_at")?,
    })
}

/// The console's methods on a store whose method `$begin` starts a write transaction and
/// whose pools `$reads` and `$writes` take reads and single writing statements.
macro_rules! console_methods {
    ($store:ty, $db:ty, begin = $begin:ident, reads = $reads:ident, writes = $writes:ident) => {
        impl $store {
            pub(super) async fn console_create_operator(
                &self,
                new: &NewOperator,
                now: DateTime<Utc>,
            ) -> StoreResult<()> {
                let done = sqlx::query(
                    "INSERT INTO operators (name, password_hash, role, created_at, department)
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO NOTHING",
                )
                .bind(&new.name)
                .bind(&new.password_hash)
                .bind(new.role.as_str())
                .bind(ms(now))
                .bind(&new.department)
                .execute(&self.$writes)
                .await
                .map_err(|e| other(e, "creating an operator"))?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::Conflict(format!("操作员 {} 已存在", new.name)));
                }
                Ok(())
            }

            pub(super) async fn console_get_operator(
                &self,
                name: &str,
            ) -> StoreResult<Option<OperatorRow>> {
                let row = sqlx::query(&format!(
                    "SELECT {OPERATOR_COLS} FROM operators WHERE name = $1"
                ))
                .bind(name)
                .fetch_optional(&self.$reads)
                .await
                .map_err(|e| other(e, "reading an operator"))?;
                row.as_ref().map(operator_from_row).transpose()
            }

            pub(super) async fn console_list_operators(&self) -> StoreResult<Vec<OperatorRow>> {
                let rows = sqlx::query(&format!(
                    "SELECT {OPERATOR_COLS} FROM operators ORDER BY name"
                ))
                .fetch_all(&self.$reads)
                .await
                .map_err(|e| other(e, "listing operators"))?;
                rows.iter().map(operator_from_row).collect()
            }

            pub(super) async fn console_set_operator_disabled(
                &self,
                name: &str,
                disabled: bool,
            ) -> StoreResult<()> {
                let mut tx = self.$begin().await?;
                let done = sqlx::query("UPDATE operators SET disabled = $2 WHERE name = $1")
                    .bind(name)
                    .bind(i64::from(disabled))
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| other(e, "disabling an operator"))?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound(format!("没有操作员 {name}")));
                }
                if disabled {
                    sqlx::query("DELETE FROM console_sessions WHERE operator = $1")
                        .bind(name)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| other(e, "ending an operator's sessions"))?;
                }
                tx.commit()
                    .await
                    .map_err(|e| other(e, "committing a write transaction"))
            }

            pub(super) async fn console_record_failed_sign_in(
                &self,
                name: &str,
                now: DateTime<Utc>,
                max_failures: u32,
                lock_for: Duration,
            ) -> StoreResult<Option<DateTime<Utc>>> {
                let until = now
                    + chrono::Duration::from_std(lock_for)
                        .unwrap_or_else(|_| chrono::Duration::minutes(15));
                let locked: Option<Option<i64>> = sqlx::query_scalar(
                    "UPDATE operators SET
                         locked_until = CASE WHEN failed_sign_ins + 1 >= $2 THEN $3 ELSE locked_until END,
                         failed_sign_ins = CASE WHEN failed_sign_ins + 1 >= $2 THEN 0
                                                ELSE failed_sign_ins + 1 END
                     WHERE name = $1
                     RETURNING CASE WHEN locked_until = $3 THEN locked_until END",
                )
                .bind(name)
                .bind(i64::from(max_failures.max(1)))
                .bind(ms(until))
                .fetch_optional(&self.$writes)
                .await
                .map_err(|e| other(e, "counting a failed sign-in"))?;
                locked
                    .flatten()
                    .map(|v| from_ms(v, "locked_until"))
                    .transpose()
            }

            pub(super) async fn console_record_sign_in(
                &self,
                name: &str,
                now: DateTime<Utc>,
            ) -> StoreResult<()> {
                sqlx::query(
                    "UPDATE operators SET failed_sign_ins = 0, locked_until = NULL, last_sign_in_at = $2
                     WHERE name = $1",
                )
                .bind(name)
                .bind(ms(now))
                .execute(&self.$writes)
                .await
                .map_err(|e| other(e, "recording a sign-in"))?;
                Ok(())
            }

            pub(super) async fn console_create_session(&self, s: &NewSession) -> StoreResult<()> {
                let mut tx = self.$begin().await?;
                sqlx::query("DELETE FROM console_sessions WHERE expires_at <= $1")
                    .bind(ms(s.created_at))
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| other(e, "dropping expired sessions"))?;
                sqlx::query(
                    "INSERT INTO console_sessions (id_sha256, operator, csrf_token, created_at, expires_at)
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&s.id_sha256)
                .bind(&s.operator)
                .bind(&s.csrf_token)
                .bind(ms(s.created_at))
                .bind(ms(s.expires_at))
                .execute(&mut *tx)
                .await
                .map_err(|e| other(e, "storing a session"))?;
                tx.commit()
                    .await
                    .map_err(|e| other(e, "committing a write transaction"))
            }

            pub(super) async fn console_get_session(
                &self,
                id_sha256: &str,
                now: DateTime<Utc>,
            ) -> StoreResult<Option<SessionRow>> {
                let row = sqlx::query(
                    "SELECT s.operator, o.department, o.role, s.csrf_token, s.expires_at
                     FROM console_sessions s JOIN operators o ON o.name = s.operator
                     WHERE s.id_sha256 = $1 AND s.expires_at > $2 AND o.disabled = 0",
                )
                .bind(id_sha256)
                .bind(ms(now))
                .fetch_optional(&self.$reads)
                .await
                .map_err(|e| other(e, "reading a session"))?;
                row.map(|row| {
                    Ok(SessionRow {
                        operator: col(&row, "operator")?,
                        department: col(&row, "department")?,
                        role: enum_col(&row, "role")?,
                        csrf_token: col(&row, "csrf_token")?,
                        expires_at: ts(&row, "expires_at")?,
                    })
                })
                .transpose()
            }

            pub(super) async fn console_delete_session(&self, id_sha256: &str) -> StoreResult<()> {
                sqlx::query("DELETE FROM console_sessions WHERE id_sha256 = $1")
                    .bind(id_sha256)
                    .execute(&self.$writes)
                    .await
                    .map_err(|e| other(e, "ending a session"))?;
                Ok(())
            }

            pub(super) async fn console_list_disclosures(
                &self,
                department: &str,
                q: &DisclosureQuery,
            ) -> StoreResult<Vec<StoredDisclosure>> {
                let mut b: QueryBuilder<$db> = QueryBuilder::new(
                    "SELECT s.department, s.disclosure_id, s.revision, s.title, s.category, \
                     s.publish_date, s.formed_date, s.content_hash, s.json, s.submitted_by, \
                     s.received_at, s.withdrawn_at, s.withdrawn_by, s.withdraw_reason \
                     FROM disclosures s \
                     WHERE s.revision = (SELECT MAX(x.revision) FROM disclosures x \
                     WHERE x.department = s.department AND x.disclosure_id = s.disclosure_id) \
                     AND s.department = ",
                );
                b.push_bind(department.to_string());
                if let Some(from) = q.received_from {
                    b.push(" AND s.received_at >= ").push_bind(ms(from));
                }
                if let Some(before) = q.received_before {
                    b.push(" AND s.received_at < ").push_bind(ms(before));
                }
                if let Some(c) = &q.category {
                    b.push(" AND s.category = ").push_bind(c.clone());
                }
                if let Some(t) = q.text.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
                    let like = format!(
                        "%{}%",
                        t.replace('\\', "\\\\")
                            .replace('%', "\\%")
                            .replace('_', "\\_")
                    );
                    b.push(" AND (s.title LIKE ")
                        .push_bind(like.clone())
                        .push(" ESCAPE '\\' OR s.disclosure_id LIKE ")
                        .push_bind(like)
                        .push(" ESCAPE '\\')");
                }
                if !q.disclosure_ids.is_empty() {
                    b.push(" AND s.disclosure_id IN (");
                    let mut list = b.separated(", ");
                    for id in &q.disclosure_ids {
                        list.push_bind(id.clone());
                    }
                    b.push(")");
                }
                b.push(" ORDER BY s.received_at DESC, s.disclosure_id LIMIT ")
                    .push_bind(q.limit.clamp(1, 10_000));
                let rows = b
                    .build()
                    .fetch_all(&self.$reads)
                    .await
                    .map_err(|e| other(e, "listing disclosures"))?;
                rows.iter().map(disclosure_from_row).collect()
            }

            pub(super) async fn console_count_deliveries(
                &self,
                department: Option<&str>,
            ) -> StoreResult<Vec<DeliveryCount>> {
                let rows = sqlx::query(
                    "SELECT channel, status, COUNT(*) AS n FROM deliveries
                     WHERE CAST($1 AS TEXT) IS NULL OR department = $1
                     GROUP BY channel, status ORDER BY channel, status",
                )
                .bind(department)
                .fetch_all(&self.$reads)
                .await
                .map_err(|e| other(e, "counting deliveries"))?;
                rows.iter()
                    .map(|row| {
                        Ok(DeliveryCount {
                            channel: col(row, "channel")?,
                            status: enum_col(row, "status")?,
                            count: col(row, "n")?,
                        })
                    })
                    .collect()
            }

            pub(super) async fn console_last_delivered(
                &self,
                department: &str,
            ) -> StoreResult<Vec<LastDelivered>> {
                let rows = sqlx::query(
                    "SELECT channel, MAX(delivered_at) AS at FROM deliveries
                     WHERE department = $1 AND action = 'publish' AND delivered_at IS NOT NULL
                     GROUP BY channel ORDER BY channel",
                )
                .bind(department)
                .fetch_all(&self.$reads)
                .await
                .map_err(|e| other(e, "finding the last delivery per channel"))?;
                rows.iter()
                    .map(|row| {
                        Ok(LastDelivered {
                            channel: col(row, "channel")?,
                            at: ts(row, "at")?,
                        })
                    })
                    .collect()
            }

            pub(super) async fn console_count_due(&self, now: DateTime<Utc>) -> StoreResult<i64> {
                sqlx::query_scalar(
                    "SELECT COUNT(*) FROM deliveries
                     WHERE status IN ('pending', 'retrying') AND next_attempt_at <= $1",
                )
                .bind(ms(now))
                .fetch_one(&self.$reads)
                .await
                .map_err(|e| other(e, "counting due deliveries"))
            }
        }
    };
}

console_methods!(
    SqliteStore,
    Sqlite,
    begin = begin_write,
    reads = reader,
    writes = writer
);
console_methods!(
    PostgresStore,
    Postgres,
    begin = begin,
    reads = pool,
    writes = pool
);
