//! The LED channel: the `Channel` face of one service hall screen (`channels/<name>.toml`,
//! `kind = "led"`). Thin on purpose: the screen (`crate::led::Screen`) owns the feed, the
//! text rules and the outputs; this file only checks rendered text before it is stored and
//! hands each delivery to the screen. Knows nothing about the store.

use std::sync::Arc;

use async_trait::async_trait;

use super::{Channel, DeliveryError, DeliveryRequest, Progress, Sent};
use crate::domain::ChannelKind;
use crate::led::{bx, Screen};

pub struct Led {
    screen: Arc<Screen>,
}

impl Led {
    pub fn new(screen: Arc<Screen>) -> Self {
        Led { screen }
    }
}

#[async_trait]
impl Channel for Led {
    fn name(&self) -> &str {
        self.screen.name()
    }

    fn kind(&self) -> ChannelKind {
        ChannelKind::Led
    }

    fn template(&self) -> &str {
        &self.screen.config().template
    }

    /// The text must fit the screen and be in its font; refused before it is stored.
    fn check_payload(&self, payload: &[u8]) -> Result<(), String> {
        self.screen.prepare(payload).map(|_| ())
    }

    async fn deliver(
        &self,
        request: &DeliveryRequest,
        _progress: &mut dyn Progress,
    ) -> Result<Sent, DeliveryError> {
        self.screen.apply(request, chrono::Utc::now()).await
    }

    /// PING the controller, when the screen has one.
    async fn healthcheck(&self) -> Result<(), DeliveryError> {
        let Some(cfg) = &self.screen.config().bx else {
            return Ok(());
        };
        let ping = bx::Frame::to(cfg.screen_address, bx::ping());
        bx::push(&cfg.address, &ping, cfg.timeout)
            .await
            .map_err(|e| DeliveryError::transient(format!("LED 屏 {}：{e}", self.name())))
    }
}
