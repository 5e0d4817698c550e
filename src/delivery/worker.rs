//! The delivery worker: claims due deliveries, renders and fixes their payload, hands them
//! to their channel, and records every attempt with the delivery's next state.
//! `run_once` works one batch (tests drive it step by step); `run_until_stopped` keeps up to
//! `concurrency` attempts in flight until shutdown, then lets them finish. A panic inside a
//! channel or a store error on one delivery is logged and never stops the loop: the claim's
//! lease expires and the delivery is taken up again, with the same idempotency key.
//!
//! One queue for every department: claims are global, and each claimed delivery is worked
//! with its own department's channel (by department and channel name), templates and
//! taxonomy (`WorkerDepartment`).

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::FutureExt;
use sha2::{Digest, Sha256};
use tokio::sync::{watch, Notify, Semaphore};
use tokio::task::JoinSet;
use tracing::Instrument;

use super::idempotency_key;
use super::retry::{Decision, RetryPolicy};
use crate::channel::{DeliveryError, DeliveryRequest, Progress, Registry, Sent};
use crate::config::Settings;
use crate::disclosure::Disclosure;
use crate::domain::{Action, AttemptOutcome};
use crate::render::{RenderContext, Renderer};
use crate::store::{Claimed, Completion, NewAttempt, NextState, Store};

/// What one delivery attempt came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    WillRetry,
    Dead,
    /// The outcome could not be recorded (store error); the lease will bring it back.
    Unrecorded,
}

/// What `run_once` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSummary {
    pub claimed: usize,
    pub delivered: usize,
    pub will_retry: usize,
    pub dead: usize,
    pub unrecorded: usize,
}

impl RunSummary {
    pub fn is_idle(&self) -> bool {
        self.claimed == 0
    }
    fn add(&mut self, o: Outcome) {
        match o {
            Outcome::Delivered => self.delivered += 1,
            Outcome::WillRetry => self.will_retry += 1,
            Outcome::Dead => self.dead += 1,
            Outcome::Unrecorded => self.unrecorded += 1,
        }
    }
}

/// What the worker needs of one department: its channels, its templates and its settings
/// (taxonomy for category names and 公示期).
pub struct WorkerDepartment {
    pub settings: Arc<Settings>,
    pub registry: Registry,
    pub renderer: Arc<Renderer>,
}

pub struct Worker {
    store: Arc<dyn Store>,
    /// By department code.
    departments: HashMap<String, WorkerDepartment>,
    /// The shared settings: worker, retry, lease.
    settings: Arc<Settings>,
    policy: RetryPolicy,
    instance: String,
    wake: Arc<Notify>,
}

impl Worker {
    /// A worker for one department (`settings.department`), with its channels and
    /// templates; `settings` also gives the worker and retry settings.
    pub fn new(
        store: Arc<dyn Store>,
        registry: Registry,
        renderer: Arc<Renderer>,
        settings: Arc<Settings>,
        wake: Arc<Notify>,
    ) -> Self {
        let department = WorkerDepartment {
            settings: settings.clone(),
            registry,
            renderer,
        };
        Worker::for_departments(store, vec![department], settings, wake)
    }

    /// A worker for every department in `departments` (one queue: it claims any of their
    /// deliveries); `settings` gives the shared worker and retry settings.
    pub fn for_departments(
        store: Arc<dyn Store>,
        departments: Vec<WorkerDepartment>,
        settings: Arc<Settings>,
        wake: Arc<Notify>,
    ) -> Self {
        Worker {
            policy: RetryPolicy::new(&settings.retry),
            instance: settings.instance_id(),
            store,
            departments: departments
                .into_iter()
                .map(|d| (d.settings.department.code.clone(), d))
                .collect(),
            settings,
            wake,
        }
    }

    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Claims one batch (up to `concurrency`) due at `now`, works it, returns what happened.
    pub async fn run_once(self: &Arc<Self>, now: DateTime<Utc>) -> anyhow::Result<RunSummary> {
        let claimed = self
            .store
            .claim_due(
                &self.instance,
                now,
                self.settings.worker.lease,
                self.settings.worker.concurrency,
            )
            .await?;
        let mut summary = RunSummary {
            claimed: claimed.len(),
            ..RunSummary::default()
        };
        let mut set = JoinSet::new();
        for c in claimed {
            let me = Arc::clone(self);
            set.spawn(async move { me.work(c).await });
        }
        while let Some(res) = set.join_next().await {
            summary.add(res.unwrap_or(Outcome::Unrecorded));
        }
        Ok(summary)
    }

    /// Works deliveries until `shutdown` turns true; then waits for attempts in flight.
    pub async fn run_until_stopped(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let concurrency = self.settings.worker.concurrency;
        let slots = Arc::new(Semaphore::new(concurrency));
        // Claim in batches: one claim transaction per quarter of the slots, not per delivery.
        let min_batch = (concurrency / 4).max(1);
        let mut set: JoinSet<Outcome> = JoinSet::new();
        let mut store_failures = 0u32;
        tracing::info!(instance = %self.instance, concurrency, "delivery worker started");
        loop {
            if *shutdown.borrow() {
                break;
            }
            // Register interest before looking, so a wake-up between the look and the wait
            // is not lost.
            let woken = self.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();

            let free = slots.available_permits();
            let mut full = false;
            if free >= min_batch || set.is_empty() {
                match self
                    .store
                    .claim_due(&self.instance, Utc::now(), self.settings.worker.lease, free)
                    .await
                {
                    Ok(claimed) => {
                        store_failures = 0;
                        full = !claimed.is_empty() && claimed.len() == free;
                        for c in claimed {
                            let permit = Arc::clone(&slots)
                                .acquire_owned()
                                .await
                                .expect("the semaphore is never closed");
                            let me = Arc::clone(&self);
                            set.spawn(async move {
                                let o = me.work(c).await;
                                drop(permit);
                                o
                            });
                        }
                    }
                    Err(e) => {
                        store_failures += 1;
                        tracing::error!(error.message = %e, error.cause_chain = ?e, "claiming due deliveries failed");
                    }
                }
            }
            if full {
                // Every slot is busy: wait for one attempt to end.
                tokio::select! {
                    _ = set.join_next() => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            }
            let idle_wait = if store_failures > 0 {
                Duration::from_millis(200 * 2u64.pow(store_failures.min(6)))
            } else if !set.is_empty() {
                // Busy: the end of an attempt in flight wakes the loop, which then claims
                // what is due; asking the store when the next delivery is due would cost a
                // query per attempt for nothing (the poll interval still bounds the wait).
                self.settings.worker.poll_interval
            } else {
                self.idle_wait().await
            };
            tokio::select! {
                Some(_) = set.join_next(), if !set.is_empty() => {}
                _ = &mut woken => {}
                // The store's wait: a plain sleep on SQLite; on PostgreSQL it also ends
                // when another instance announces new work (LISTEN/NOTIFY).
                _ = self.store.wait_for_work(idle_wait) => {}
                _ = shutdown.changed() => {}
            }
        }
        let in_flight = set.len();
        if in_flight > 0 {
            tracing::info!(in_flight, "waiting for attempts in flight to finish");
        }
        while set.join_next().await.is_some() {}
        tracing::info!(instance = %self.instance, "delivery worker stopped");
    }

    /// How long to sleep when idle: until the next delivery is due, at most the poll interval.
    async fn idle_wait(&self) -> Duration {
        let poll = self.settings.worker.poll_interval;
        match self.store.next_due_at().await {
            Ok(Some(at)) => (at - Utc::now())
                .to_std()
                .unwrap_or(Duration::ZERO)
                .min(poll)
                .max(Duration::from_millis(5)),
            _ => poll,
        }
    }

    /// One attempt of one claimed delivery, recorded. Never panics outward.
    async fn work(self: Arc<Self>, c: Claimed) -> Outcome {
        let span = tracing::info_span!(
            "attempt",
            delivery_id = c.delivery.id,
            department = %c.delivery.department,
            disclosure_id = %c.delivery.disclosure_id,
            revision = c.delivery.revision,
            channel = %c.delivery.channel,
            action = %c.delivery.action,
            attempt = c.attempt_number,
        );
        let me = Arc::clone(&self);
        let fut = async move { me.attempt(c).await };
        match AssertUnwindSafe(fut.instrument(span)).catch_unwind().await {
            Ok(o) => o,
            Err(panic) => {
                let msg = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                tracing::error!(panic = %msg, "delivery attempt panicked; the lease will bring it back");
                Outcome::Unrecorded
            }
        }
    }

    async fn attempt(&self, c: Claimed) -> Outcome {
        let started = c.started_at;
        let result = self.send(&c).await;
        let finished = Utc::now();
        let (outcome, next, receipt, error) = match result {
            Ok(Sent::Pending {
                check_after,
                detail,
            }) => (
                AttemptOutcome::Pending,
                NextState::Awaiting {
                    at: finished
                        + chrono::Duration::from_std(check_after)
                            .unwrap_or(chrono::Duration::minutes(5)),
                    note: detail.clone(),
                },
                Some(crate::channel::Receipt {
                    detail: Some(detail),
                    ..Default::default()
                }),
                None,
            ),
            Ok(Sent::Done(receipt)) => (
                AttemptOutcome::Delivered,
                NextState::Delivered {
                    remote_id: receipt.remote_id.clone(),
                    url: receipt.url.clone(),
                },
                Some(receipt),
                None,
            ),
            Err(e) => {
                let budget = (c.attempt_number - c.delivery.attempts_base).max(1) as u32;
                let decision = if e.is_transient() {
                    self.policy
                        .after_transient_failure(budget, e.retry_after, rand::random())
                } else {
                    Decision::GiveUp
                };
                match decision {
                    Decision::RetryAfter(wait) => (
                        AttemptOutcome::Transient,
                        NextState::Retry {
                            at: finished
                                + chrono::Duration::from_std(wait)
                                    .unwrap_or(chrono::Duration::hours(1)),
                            error: e.detail.clone(),
                        },
                        None,
                        Some(e),
                    ),
                    Decision::GiveUp => {
                        let error = if e.is_transient() {
                            format!(
                                "已尝试 {budget} 次仍失败，停止自动重试（可手动重试）：{}",
                                e.detail
                            )
                        } else {
                            e.detail.clone()
                        };
                        let outcome = if e.is_transient() {
                            AttemptOutcome::Transient
                        } else {
                            AttemptOutcome::Permanent
                        };
                        (outcome, NextState::Dead { error }, None, Some(e))
                    }
                }
            }
        };
        let attempt = NewAttempt {
            number: c.attempt_number,
            trigger: c.trigger,
            requested_by: c.requested_by.clone(),
            instance: self.instance.clone(),
            started_at: started,
            finished_at: finished,
            outcome,
            http_status: receipt
                .as_ref()
                .and_then(|r| r.http_status)
                .or(error.as_ref().and_then(|e| e.http_status))
                .map(i64::from),
            remote_code: error.as_ref().and_then(|e| e.remote_code.clone()),
            detail: receipt
                .as_ref()
                .and_then(|r| r.detail.clone())
                .or(error.as_ref().map(|e| truncate(&e.detail, 2000))),
            remote_id: receipt.as_ref().and_then(|r| r.remote_id.clone()),
        };
        crate::metrics::global().observe_attempt(
            &c.delivery.channel,
            outcome.as_str(),
            (finished - started).num_milliseconds().max(0) as f64 / 1000.0,
        );
        let o = match &next {
            NextState::Delivered { .. } => Outcome::Delivered,
            NextState::Retry { .. } | NextState::Awaiting { .. } => Outcome::WillRetry,
            NextState::Dead { .. } => Outcome::Dead,
        };
        match &next {
            NextState::Delivered { remote_id, .. } => {
                tracing::info!(remote_id = ?remote_id, "delivered")
            }
            NextState::Retry { at, error } => {
                tracing::warn!(retry_at = %at, cause = %error, "attempt failed, will retry")
            }
            NextState::Dead { error } => tracing::warn!(cause = %error, "delivery failed for good"),
            NextState::Awaiting { at, note } => {
                tracing::info!(check_at = %at, note = %note, "accepted, awaiting the outcome")
            }
        }
        let completion = Completion {
            delivery_id: c.delivery.id,
            claim_token: c.claim_token.clone(),
            attempt,
            next,
        };
        match self.store.complete_attempt(&completion).await {
            Ok(()) => o,
            Err(e) => {
                tracing::error!(error.message = %e, error.cause_chain = ?e, "recording the attempt failed; the lease will bring the delivery back");
                Outcome::Unrecorded
            }
        }
    }

    /// Renders (once) and sends. Every failure comes back classified.
    async fn send(&self, c: &Claimed) -> Result<Sent, DeliveryError> {
        let d = &c.delivery;
        let dept = self.departments.get(&d.department).ok_or_else(|| {
            DeliveryError::permanent(format!(
                "部门 {} 不在当前配置中（departments_dir 中的 {}/ 被删除或改名？）",
                d.department, d.department
            ))
        })?;
        let channel = dept.registry.get(&d.channel).ok_or_else(|| {
            let at = if d.department == crate::store::DEFAULT_DEPARTMENT {
                String::new()
            } else {
                format!("部门 {} 的", d.department)
            };
            DeliveryError::permanent(format!(
                "{at}渠道 {} 不在当前配置中（channels/{}.toml 被删除或改名？）",
                d.channel, d.channel
            ))
        })?;
        let payload = match &d.payload {
            Some(p) => p.clone(),
            None => {
                let payload = self.render(dept, c, channel.template())?;
                channel.check_payload(&payload).map_err(|e| {
                    DeliveryError::permanent(format!(
                        "公开件 {} 第 {} 版，模板 {}：{e}",
                        d.disclosure_id,
                        d.revision,
                        channel.template()
                    ))
                })?;
                let sha = hex::encode(Sha256::digest(&payload));
                self.store
                    .store_payload(d.id, &c.claim_token, &payload, &sha)
                    .await
                    .map_err(|e| DeliveryError::transient(format!("保存发送内容失败：{e}")))?;
                payload
            }
        };
        let request = DeliveryRequest {
            delivery_id: d.id,
            department: d.department.clone(),
            disclosure_id: d.disclosure_id.clone(),
            revision: d.revision,
            action: d.action,
            idempotency_key: idempotency_key(
                &d.department,
                &d.disclosure_id,
                d.revision,
                &d.channel,
                d.action,
            ),
            payload,
            display_min_working_days: crate::led::min_display_working_days(
                &dept.settings,
                &c.disclosure,
            ),
            disclosure: serde_json::from_str::<Disclosure>(&c.disclosure.json)
                .ok()
                .map(Arc::new),
        };
        let mut progress = StoreProgress {
            store: self.store.as_ref(),
            delivery_id: d.id,
            claim_token: &c.claim_token,
            state: d.progress.clone().unwrap_or(serde_json::Value::Null),
        };
        channel.deliver(&request, &mut progress).await
    }

    fn render(
        &self,
        dept: &WorkerDepartment,
        c: &Claimed,
        template: &str,
    ) -> Result<Vec<u8>, DeliveryError> {
        let disclosure: Disclosure = serde_json::from_str(&c.disclosure.json).map_err(|e| {
            DeliveryError::permanent(format!("存储的公开件无法解析（数据损坏？）：{e}"))
        })?;
        let category_name = dept
            .settings
            .category(&disclosure.category)
            .map(|c| c.name.as_str())
            .unwrap_or(disclosure.category.as_str());
        let reason = match c.delivery.action {
            Action::Withdraw => c.disclosure.withdraw_reason.as_deref().or(Some("撤回")),
            Action::Publish => None,
        };
        let ctx = RenderContext::new(
            &disclosure,
            c.delivery.action,
            &c.delivery.channel,
            c.delivery.kind,
            category_name,
            reason,
        );
        dept.renderer
            .render(template, &ctx)
            .map_err(|e| DeliveryError::permanent(format!("{e}（修正模板后可手动重试）")))
    }
}

/// A delivery's progress in the ledger, saved under the attempt's claim.
struct StoreProgress<'a> {
    store: &'a dyn Store,
    delivery_id: i64,
    claim_token: &'a str,
    state: serde_json::Value,
}

#[async_trait::async_trait]
impl Progress for StoreProgress<'_> {
    fn state(&self) -> &serde_json::Value {
        &self.state
    }

    async fn save(&mut self, state: serde_json::Value) -> Result<(), DeliveryError> {
        // If this fails the next remote step must not be made: a retry could not know
        // it had been made.
        self.store
            .save_progress(self.delivery_id, self.claim_token, &state)
            .await
            .map_err(|e| DeliveryError::transient(format!("保存投递进度失败：{e}")))?;
        self.state = state;
        Ok(())
    }
}

fn truncate(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}
