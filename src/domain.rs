//! Small value types shared by every module: delivery status, attempt trigger and outcome,
//! the action a delivery carries, channel kinds. Stored as lower-case text in the database.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Where a delivery stands. `pending`, `retrying` and `in_flight` are unfinished;
/// `delivered`, `dead` and `withdrawn` are final until an operator retries a dead one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    InFlight,
    Delivered,
    Retrying,
    Dead,
    Withdrawn,
}

impl DeliveryStatus {
    pub const ALL: [DeliveryStatus; 6] = [
        DeliveryStatus::Pending,
        DeliveryStatus::InFlight,
        DeliveryStatus::Delivered,
        DeliveryStatus::Retrying,
        DeliveryStatus::Dead,
        DeliveryStatus::Withdrawn,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::InFlight => "in_flight",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Retrying => "retrying",
            DeliveryStatus::Dead => "dead",
            DeliveryStatus::Withdrawn => "withdrawn",
        }
    }

    /// The word an operator reads in the CLI and console.
    pub fn label_zh(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "待投递",
            DeliveryStatus::InFlight => "投递中",
            DeliveryStatus::Delivered => "已送达",
            DeliveryStatus::Retrying => "等待重试",
            DeliveryStatus::Dead => "失败",
            DeliveryStatus::Withdrawn => "已撤回",
        }
    }

    pub fn is_final(self) -> bool {
        matches!(
            self,
            DeliveryStatus::Delivered | DeliveryStatus::Dead | DeliveryStatus::Withdrawn
        )
    }
}

impl fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DeliveryStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DeliveryStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "未知的投递状态 {s:?}（可选：pending, in_flight, delivered, retrying, dead, withdrawn）"
                )
            })
    }
}

/// What a delivery asks the channel to do with the item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Publish a revision (a higher revision updates the same remote item).
    Publish,
    /// Remove the item from the channel (撤回).
    Withdraw,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Publish => "publish",
            Action::Withdraw => "withdraw",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Action {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "publish" => Ok(Action::Publish),
            "withdraw" => Ok(Action::Withdraw),
            other => Err(format!("unknown action {other:?}")),
        }
    }
}

/// Why an attempt was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptTrigger {
    /// The first try, or one set by the retry policy.
    Scheduled,
    /// An operator asked (`gongkai retry`, `POST /api/v1/deliveries/{id}/retry`).
    Manual,
}

impl AttemptTrigger {
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptTrigger::Scheduled => "scheduled",
            AttemptTrigger::Manual => "manual",
        }
    }
}

impl FromStr for AttemptTrigger {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "scheduled" => Ok(AttemptTrigger::Scheduled),
            "manual" => Ok(AttemptTrigger::Manual),
            other => Err(format!("unknown attempt trigger {other:?}")),
        }
    }
}

/// How one attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    /// The channel accepted the item.
    Delivered,
    /// A transient failure: the delivery will be tried again.
    Transient,
    /// A permanent failure: the channel refused the item; retrying the same content cannot help.
    Permanent,
    /// The instance that made the attempt stopped (crash, kill) before it recorded an answer;
    /// found when its lease expired.
    Lost,
    /// The channel accepted the item but the outcome comes later (WeChat publishing is
    /// asynchronous): the delivery waits and is checked again, without using up its budget.
    Pending,
}

impl AttemptOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Delivered => "delivered",
            AttemptOutcome::Transient => "transient",
            AttemptOutcome::Permanent => "permanent",
            AttemptOutcome::Lost => "lost",
            AttemptOutcome::Pending => "pending",
        }
    }
}

impl FromStr for AttemptOutcome {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "delivered" => Ok(AttemptOutcome::Delivered),
            "transient" => Ok(AttemptOutcome::Transient),
            "permanent" => Ok(AttemptOutcome::Permanent),
            "lost" => Ok(AttemptOutcome::Lost),
            "pending" => Ok(AttemptOutcome::Pending),
            other => Err(format!("unknown attempt outcome {other:?}")),
        }
    }
}

/// The kinds of channel gongkai can deliver to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    /// A government website content platform, over the generic JSON push contract.
    GovSite,
    /// A service hall LED screen (feed file, HTTP pull, Onbon BX-5K/6K controller).
    Led,
    /// A WeChat official account (公众号), over the draft/freepublish API.
    Wechat,
}

impl ChannelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::GovSite => "gov_site",
            ChannelKind::Led => "led",
            ChannelKind::Wechat => "wechat",
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            ChannelKind::GovSite => "政府网站",
            ChannelKind::Led => "LED屏",
            ChannelKind::Wechat => "微信公众号",
        }
    }
}

impl fmt::Display for ChannelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ChannelKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "gov_site" => Ok(ChannelKind::GovSite),
            "led" => Ok(ChannelKind::Led),
            "wechat" => Ok(ChannelKind::Wechat),
            other => Err(format!(
                "未知的渠道类型 {other:?}（可选：gov_site, wechat, led）"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_through_their_text() {
        for st in DeliveryStatus::ALL {
            assert_eq!(st.as_str().parse::<DeliveryStatus>().unwrap(), st);
        }
        assert!("failed".parse::<DeliveryStatus>().is_err());
    }
}
