//! Deliveries: what happens between an approved disclosure and the channels.
//! Owns: `Ledger`, the one place that accepts a disclosure (validate, route to channels,
//! store with its deliveries in one transaction), withdraws one, and applies an operator
//! retry; the HTTP API and the CLI both call it. A `Ledger` is one department's: its
//! settings are that department's view, and every store call names the department. The worker (`worker.rs`) works the
//! deliveries; `retry.rs` is the pure retry policy.

pub mod retry;
pub mod worker;

use std::sync::Arc;

use chrono::Utc;
use serde::Serialize;
use tokio::sync::Notify;

use crate::config::Settings;
use crate::disclosure::{self, FieldError, ValidationContext, ValidationErrors};
use crate::domain::{Action, DeliveryStatus};
use crate::gate::Gate;
use crate::store::{
    DeliveryFilter, IngestOutcome, NewDelivery, NewDisclosure, RetryResult, Store, StoreError,
    WithdrawOutcome,
};

/// Why a submission was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("{0}")]
    Invalid(ValidationErrors),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(StoreError),
}

/// What a submission did.
#[derive(Debug, Clone, Serialize)]
pub struct SubmitResult {
    pub disclosure_id: String,
    pub revision: i64,
    /// False when the same revision with the same content had been accepted before.
    pub created: bool,
    pub channels: Vec<String>,
    pub delivery_ids: Vec<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct WithdrawResult {
    pub disclosure_id: String,
    /// False when it had been withdrawn before.
    pub withdrawn_now: bool,
    /// Unfinished publish deliveries that will now never be sent.
    pub cancelled: Vec<i64>,
    /// The withdraw deliveries (one per channel that may hold the item).
    pub delivery_ids: Vec<i64>,
}

pub struct Ledger {
    pub store: Arc<dyn Store>,
    /// The department's view of the settings (`settings.department` says which one).
    pub settings: Arc<Settings>,
    /// Woken when there is new due work, so an idle worker in this process starts at once.
    pub wake: Arc<Notify>,
}

impl Ledger {
    pub fn new(store: Arc<dyn Store>, settings: Arc<Settings>) -> Self {
        Ledger::with_wake(store, settings, Arc::new(Notify::new()))
    }

    /// A ledger that wakes the given worker signal (every department's ledger in one
    /// process wakes the one worker).
    pub fn with_wake(store: Arc<dyn Store>, settings: Arc<Settings>, wake: Arc<Notify>) -> Self {
        Ledger {
            store,
            settings,
            wake,
        }
    }

    /// The code of the department this ledger is for.
    pub fn department(&self) -> &str {
        &self.settings.department.code
    }

    /// WeChat's report on the mass send a WeChat delivery made (MASSSENDJOBFINISH, by the
    /// msg_id in its progress and the channel's appid), if both exist.
    pub async fn mass_result(
        &self,
        d: &crate::store::DeliveryRow,
    ) -> Result<Option<crate::store::WechatMassResult>, StoreError> {
        let Some(crate::config::ChannelSpec::Wechat(cfg)) =
            self.settings.channels.channels.get(&d.channel)
        else {
            return Ok(None);
        };
        let Some(msg_id) = d
            .progress
            .as_ref()
            .and_then(crate::channel::wechat::mass_msg_id)
        else {
            return Ok(None);
        };
        self.store.wechat_mass_result(&cfg.appid, &msg_id).await
    }

    /// Validates, routes and stores a disclosure with one delivery per channel, atomically.
    pub async fn submit(
        &self,
        raw: &[u8],
        submitted_by: &str,
    ) -> Result<SubmitResult, SubmitError> {
        let channel_names: Vec<String> = self.settings.channels.channels.keys().cloned().collect();
        let ctx = ValidationContext {
            categories: &self.settings.categories,
            channels: &channel_names,
        };
        let d = disclosure::parse_disclosure(raw, &ctx).map_err(SubmitError::Invalid)?;
        // A department publishes only in its own name (发布机关).
        if let Some(publisher) = &self.settings.department.publisher {
            if d.publisher.trim() != publisher.as_str() {
                return Err(SubmitError::Invalid(ValidationErrors(vec![FieldError {
                    path: "publisher".into(),
                    message: format!(
                        "发布机关应为本部门（{}）的 {publisher:?}，而公开件写的是 {:?}",
                        self.department(),
                        d.publisher
                    ),
                }])));
            }
        }
        // The content gate, before anything is stored or sent (hits are masked in logs).
        let verdict = Gate::new(&self.settings.gate).check(&d);
        if !verdict.overridden.is_empty() {
            tracing::info!(
                disclosure_id = %d.disclosure_id,
                revision = d.revision,
                hits = ?verdict.overridden.iter().map(|h| format!("{}@{} {} {}", h.field, h.position, h.rule.as_str(), h.masked)).collect::<Vec<_>>(),
                "content gate hits let through by the approver's override"
            );
        }
        if !verdict.blocking.is_empty() {
            tracing::warn!(
                disclosure_id = %d.disclosure_id,
                revision = d.revision,
                hits = ?verdict.blocking.iter().map(|h| format!("{}@{} {} {}", h.field, h.position, h.rule.as_str(), h.masked)).collect::<Vec<_>>(),
                "disclosure refused by the content gate"
            );
            return Err(SubmitError::Invalid(ValidationErrors(
                verdict
                    .blocking
                    .iter()
                    .map(|h| h.to_field_error())
                    .collect(),
            )));
        }
        let channels: Vec<String> = match &d.channels {
            Some(list) => list.clone(),
            None => self
                .settings
                .category(&d.category)
                .map(|c| c.channels.clone())
                .unwrap_or_default(),
        };
        let deliveries: Vec<NewDelivery> = channels
            .iter()
            .map(|name| NewDelivery {
                channel: name.clone(),
                kind: self.settings.channels.channels[name].kind(),
            })
            .collect();
        let new = NewDisclosure {
            disclosure_id: d.disclosure_id.clone(),
            revision: d.revision,
            title: d.title.clone(),
            category: d.category.clone(),
            publish_date: d.publish_date,
            formed_date: d.formed_date,
            content_hash: disclosure::content_hash(&d),
            json: serde_json::to_string(&d).expect("a Disclosure always serializes"),
            submitted_by: submitted_by.to_string(),
        };
        let outcome = self
            .store
            .insert_disclosure(self.department(), &new, &deliveries, Utc::now())
            .await
            .map_err(|e| match e {
                StoreError::Conflict(msg) => SubmitError::Conflict(msg),
                other => SubmitError::Store(other),
            })?;
        let (created, delivery_ids) = match outcome {
            IngestOutcome::Created { delivery_ids } => {
                self.wake.notify_one();
                tracing::info!(
                    department = self.department(),
                    disclosure_id = %d.disclosure_id,
                    revision = d.revision,
                    channels = ?channels,
                    "disclosure accepted"
                );
                (true, delivery_ids)
            }
            IngestOutcome::Unchanged { delivery_ids } => (false, delivery_ids),
        };
        Ok(SubmitResult {
            disclosure_id: d.disclosure_id,
            revision: d.revision,
            created,
            channels,
            delivery_ids,
        })
    }

    /// Withdraws (撤回) a disclosure from every channel that may hold it.
    pub async fn withdraw(
        &self,
        disclosure_id: &str,
        by: &str,
        reason: Option<&str>,
    ) -> Result<WithdrawResult, StoreError> {
        let outcome = self
            .store
            .withdraw_disclosure(self.department(), disclosure_id, by, reason, Utc::now())
            .await?;
        Ok(match outcome {
            WithdrawOutcome::Withdrawn {
                cancelled,
                delivery_ids,
            } => {
                self.wake.notify_one();
                tracing::info!(
                    department = self.department(),
                    disclosure_id,
                    by,
                    ?reason,
                    "disclosure withdrawn"
                );
                WithdrawResult {
                    disclosure_id: disclosure_id.to_string(),
                    withdrawn_now: true,
                    cancelled,
                    delivery_ids,
                }
            }
            WithdrawOutcome::AlreadyWithdrawn { delivery_ids } => WithdrawResult {
                disclosure_id: disclosure_id.to_string(),
                withdrawn_now: false,
                cancelled: Vec::new(),
                delivery_ids,
            },
        })
    }

    /// Operator retry of the given deliveries; records who asked, keeps all history.
    pub async fn retry_now(&self, ids: &[i64], by: &str) -> Result<Vec<RetryResult>, StoreError> {
        let results = self
            .store
            .retry_now(self.department(), ids, by, Utc::now())
            .await?;
        if results
            .iter()
            .any(|r| matches!(r, RetryResult::Scheduled { .. }))
        {
            self.wake.notify_one();
        }
        for r in &results {
            tracing::info!(department = self.department(), by, result = ?r, "operator retry");
        }
        Ok(results)
    }

    /// Operator retry of every failed (dead or waiting to retry) delivery, of one channel or all.
    pub async fn retry_failed(
        &self,
        channel: Option<&str>,
        by: &str,
    ) -> Result<Vec<RetryResult>, StoreError> {
        let failed = self
            .store
            .list_deliveries(
                self.department(),
                &DeliveryFilter {
                    statuses: vec![DeliveryStatus::Dead, DeliveryStatus::Retrying],
                    channel: channel.map(str::to_string),
                    ..DeliveryFilter::default()
                },
            )
            .await?;
        let ids: Vec<i64> = failed.iter().map(|d| d.id).collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.retry_now(&ids, by).await
    }
}

/// The key the remote side deduplicates on: the same for every attempt of a delivery.
/// A department of `departments_dir` puts its code in front (two departments may use the
/// same disclosure id and channel name on one platform); `default` keeps the key it always
/// had, so deliveries made before departments existed are still recognised.
pub fn idempotency_key(
    department: &str,
    disclosure_id: &str,
    revision: i64,
    channel: &str,
    action: Action,
) -> String {
    let key = match action {
        Action::Publish => format!("{disclosure_id}:{revision}:{channel}"),
        Action::Withdraw => format!("{disclosure_id}:{revision}:{channel}:withdraw"),
    };
    if department == crate::store::DEFAULT_DEPARTMENT {
        key
    } else {
        format!("{department}:{key}")
    }
}
