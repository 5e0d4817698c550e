//! Channels: one configured destination each (a website platform, later WeChat and LED).
//! Owns: the `Channel` trait, `DeliveryRequest`, `Receipt`, `DeliveryError` (transient or
//! permanent, decided by the channel that knows its protocol) and the registry built from
//! `channels/*.toml`. Channels know nothing about the store, templates or retries: they take
//! the rendered payload and return an outcome.

pub mod gov_site;
pub mod led;
pub mod wechat;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::config::{ChannelSettings, ChannelSpec};
use crate::domain::{Action, ChannelKind};

/// What the worker hands a channel: the exact bytes to send and the ids around them.
#[derive(Debug, Clone)]
pub struct DeliveryRequest {
    pub delivery_id: i64,
    /// The department the delivery belongs to (channels that read the ledger ask for it).
    pub department: String,
    pub disclosure_id: String,
    pub revision: i64,
    pub action: Action,
    /// Stable across every attempt of this delivery, so the remote side can deduplicate.
    pub idempotency_key: String,
    pub payload: Vec<u8>,
    /// The disclosure's minimum display period (公示期) in working days, from the disclosure
    /// or its category; channels that display items for a time (LED) keep them this long.
    pub display_min_working_days: Option<u32>,
    /// The approved disclosure itself, for channels that send some fields apart from the
    /// rendered payload (WeChat: title, digest, author go next to the article body).
    pub disclosure: Option<std::sync::Arc<crate::disclosure::Disclosure>>,
}

/// The channel's answer when it accepted the item.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Receipt {
    pub remote_id: Option<String>,
    pub url: Option<String>,
    pub http_status: Option<u16>,
    pub detail: Option<String>,
}

/// What a channel did with a delivery that did not fail.
#[derive(Debug, Clone, PartialEq)]
pub enum Sent {
    /// Done: the item is on the channel (or off it, for a withdrawal).
    Done(Receipt),
    /// Accepted, the outcome comes later (WeChat publishes asynchronously): the worker
    /// schedules the next check after `check_after`, which does not count as a failed
    /// attempt. The channel's progress says where to pick up.
    Pending {
        check_after: Duration,
        /// What it waits for, in words an operator understands.
        detail: String,
    },
}

/// The state a multi-step delivery keeps between attempts: what earlier attempts did
/// (`state()`, the channel's own JSON, `Null` at first) and `save()`, which persists the
/// new state under the current claim *before* the channel makes its next remote step, so
/// a retry (or another instance after a crash) resumes there and never repeats a step the
/// remote side cannot deduplicate. Single-step channels ignore it.
#[async_trait]
pub trait Progress: Send {
    fn state(&self) -> &serde_json::Value;
    async fn save(&mut self, state: serde_json::Value) -> Result<(), DeliveryError>;
}

/// A `Progress` kept in memory only (tests, `check-config`).
#[derive(Debug, Default)]
pub struct MemoryProgress(pub serde_json::Value);

#[async_trait]
impl Progress for MemoryProgress {
    fn state(&self) -> &serde_json::Value {
        &self.0
    }
    async fn save(&mut self, state: serde_json::Value) -> Result<(), DeliveryError> {
        self.0 = state;
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureClass {
    /// Worth trying again later: timeouts, connection errors, 408, 429, 5xx.
    Transient,
    /// Trying the same content again cannot help: other 4xx, a refused signature ...
    Permanent,
}

/// Why a delivery attempt failed, with what the worker and the attempt row need.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{detail}")]
pub struct DeliveryError {
    pub class: FailureClass,
    /// The remote side asked to wait this long (HTTP `Retry-After`).
    pub retry_after: Option<Duration>,
    pub http_status: Option<u16>,
    /// The platform's own error code, when it gave one.
    pub remote_code: Option<String>,
    /// What went wrong, in words an operator understands (Chinese where they read it).
    pub detail: String,
}

impl DeliveryError {
    pub fn transient(detail: impl Into<String>) -> Self {
        DeliveryError {
            class: FailureClass::Transient,
            retry_after: None,
            http_status: None,
            remote_code: None,
            detail: detail.into(),
        }
    }

    pub fn permanent(detail: impl Into<String>) -> Self {
        DeliveryError {
            class: FailureClass::Permanent,
            ..DeliveryError::transient(detail)
        }
    }

    pub fn is_transient(&self) -> bool {
        self.class == FailureClass::Transient
    }
}

#[async_trait]
pub trait Channel: Send + Sync {
    /// The configured name (the file stem of `channels/<name>.toml`).
    fn name(&self) -> &str;

    fn kind(&self) -> ChannelKind;

    /// The template (relative to the templates folder) that renders this channel's payload.
    fn template(&self) -> &str;

    /// Checks a rendered payload before it is stored and sent (e.g. valid JSON).
    fn check_payload(&self, _payload: &[u8]) -> Result<(), String> {
        Ok(())
    }

    /// One attempt. `progress` holds what earlier attempts saved; a multi-step channel
    /// saves after each remote step.
    async fn deliver(
        &self,
        request: &DeliveryRequest,
        progress: &mut dyn Progress,
    ) -> Result<Sent, DeliveryError>;

    /// Reachability check for `check-config --online`.
    async fn healthcheck(&self) -> Result<(), DeliveryError> {
        Ok(())
    }
}

/// The configured channels by name.
#[derive(Clone, Default)]
pub struct Registry {
    channels: BTreeMap<String, Arc<dyn Channel>>,
    /// The LED screens among them, for the feed endpoint, the refresh and the restore.
    screens: crate::led::Screens,
}

impl Registry {
    /// Builds every configured channel. No network I/O. Channels that keep account state
    /// in the ledger (WeChat) are built without it: enough for checks, not for delivering.
    pub fn build(settings: &ChannelSettings) -> anyhow::Result<Registry> {
        Registry::build_inner(settings, crate::store::DEFAULT_DEPARTMENT, None)
    }

    /// Builds every configured channel with the store they may keep account state in
    /// (the WeChat access_token, uploaded media, publish events). No network I/O. The
    /// channels are the `default` department's.
    pub fn build_with_store(
        settings: &ChannelSettings,
        store: Arc<dyn crate::store::Store>,
    ) -> anyhow::Result<Registry> {
        Registry::build_inner(settings, crate::store::DEFAULT_DEPARTMENT, Some(store))
    }

    /// Like `build_with_store`, for the channels of `department`.
    pub fn build_for_department(
        settings: &ChannelSettings,
        department: &str,
        store: Arc<dyn crate::store::Store>,
    ) -> anyhow::Result<Registry> {
        Registry::build_inner(settings, department, Some(store))
    }

    fn build_inner(
        settings: &ChannelSettings,
        department: &str,
        store: Option<Arc<dyn crate::store::Store>>,
    ) -> anyhow::Result<Registry> {
        let mut channels: BTreeMap<String, Arc<dyn Channel>> = BTreeMap::new();
        let mut screens = crate::led::Screens::new();
        // Loaded once, and only when a screen needs it.
        let mut calendar: Option<Arc<crate::calendar::Calendar>> = None;
        for (name, spec) in &settings.channels {
            let channel: Arc<dyn Channel> = match spec {
                ChannelSpec::GovSite(cfg) => Arc::new(gov_site::GovSite::new(name, cfg.clone())?),
                ChannelSpec::Led(cfg) => {
                    let calendar = calendar
                        .get_or_insert_with(|| {
                            Arc::new(crate::calendar::Calendar::load(&settings.calendar_dir))
                        })
                        .clone();
                    let screen = Arc::new(
                        crate::led::Screen::new(name, cfg.clone(), calendar)
                            .for_department(department),
                    );
                    screens.insert(name.clone(), screen.clone());
                    Arc::new(led::Led::new(screen))
                }
                ChannelSpec::Wechat(cfg) => {
                    Arc::new(wechat::Wechat::new(name, cfg.clone(), store.clone())?)
                }
            };
            channels.insert(name.clone(), channel);
        }
        Ok(Registry { channels, screens })
    }

    pub fn from_channels(list: Vec<Arc<dyn Channel>>) -> Registry {
        Registry {
            channels: list
                .into_iter()
                .map(|c| (c.name().to_string(), c))
                .collect(),
            screens: crate::led::Screens::new(),
        }
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn Channel>> {
        self.channels.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.channels.keys().map(String::as_str)
    }

    /// The LED screens (a subset of the channels).
    pub fn screens(&self) -> &crate::led::Screens {
        &self.screens
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn Channel>> {
        self.channels.values()
    }
}
