//! gov_site channel (placeholder)
use async_trait::async_trait;

use super::{Channel, DeliveryError, DeliveryRequest, Receipt};
use crate::config::GovSiteConfig;
use crate::domain::ChannelKind;

pub struct GovSite {
    name: String,
    cfg: GovSiteConfig,
}
impl GovSite {
    pub fn new(name: &str, cfg: GovSiteConfig) -> anyhow::Result<Self> {
        Ok(GovSite { name: name.into(), cfg })
    }
}
#[async_trait]
impl Channel for GovSite {
    fn name(&self) -> &str {
        &self.name
    }
    fn kind(&self) -> ChannelKind {
        ChannelKind::GovSite
    }
    fn template(&self) -> &str {
        &self.cfg.template
    }
    async fn deliver(&self, _r: &DeliveryRequest) -> Result<Receipt, DeliveryError> {
        unimplemented!()
    }
}
