//! SQLite implementation of `Store` (placeholder until written).
use super::*;
pub struct SqliteStore;
impl SqliteStore {
    pub async fn open(_path: &str) -> anyhow::Result<SqliteStore> {
        anyhow::bail!("not yet")
    }
}
#[async_trait]
impl Store for SqliteStore {
    async fn insert_disclosure(
        &self,
        _new: &NewDisclosure,
        _deliveries: &[NewDelivery],
        _now: DateTime<Utc>,
    ) -> StoreResult<IngestOutcome> {
        unimplemented!()
    }
    async fn get_disclosure(
        &self,
        _disclosure_id: &str,
        _revision: Option<i64>,
    ) -> StoreResult<StoredDisclosure> {
        unimplemented!()
    }
    async fn withdraw_disclosure(
        &self,
        _disclosure_id: &str,
        _by: &str,
        _reason: Option<&str>,
        _now: DateTime<Utc>,
    ) -> StoreResult<WithdrawOutcome> {
        unimplemented!()
    }
    async fn claim_due(
        &self,
        _instance: &str,
        _now: DateTime<Utc>,
        _lease: Duration,
        _limit: usize,
    ) -> StoreResult<Vec<Claimed>> {
        unimplemented!()
    }
    async fn store_payload(
        &self,
        _delivery_id: i64,
        _claim_token: &str,
        _payload: &[u8],
        _payload_sha256: &str,
    ) -> StoreResult<()> {
        unimplemented!()
    }
    async fn complete_attempt(&self, _completion: &Completion) -> StoreResult<()> {
        unimplemented!()
    }
    async fn release_claim(&self, _delivery_id: i64, _claim_token: &str) -> StoreResult<()> {
        unimplemented!()
    }
    async fn list_deliveries(&self, _filter: &DeliveryFilter) -> StoreResult<Vec<DeliveryRow>> {
        unimplemented!()
    }
    async fn get_delivery(&self, _id: i64) -> StoreResult<DeliveryRow> {
        unimplemented!()
    }
    async fn list_attempts(&self, _delivery_id: i64) -> StoreResult<Vec<AttemptRow>> {
        unimplemented!()
    }
    async fn retry_now(
        &self,
        _ids: &[i64],
        _by: &str,
        _now: DateTime<Utc>,
    ) -> StoreResult<Vec<RetryResult>> {
        unimplemented!()
    }
    async fn list_published(&self) -> StoreResult<Vec<PublishedRow>> {
        unimplemented!()
    }
    async fn next_due_at(&self) -> StoreResult<Option<DateTime<Utc>>> {
        unimplemented!()
    }
}
