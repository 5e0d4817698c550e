//! What the console's pages show, built from the ledger: the day list with per-channel state
//! chips, a delivery with its attempts explained in words an operator can act on, channel
//! health, and the year report. Pure view models (serde structs for the templates); the
//! handlers call one function each, and no SQL lives here either.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use crate::channel::wechat::{errcode_action, staleness, Staleness};
use crate::config::ChannelSpec;
use crate::delivery::Ledger;
use crate::domain::{Action, AttemptOutcome, AttemptTrigger, ChannelKind, DeliveryStatus};
use crate::led::Screens;
use crate::store::{AttemptRow, DeliveryFilter, DeliveryRow, DisclosureQuery, StoreError};

/// How many disclosures one list page shows at most.
const LIST_LIMIT: i64 = 500;

pub fn china() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("UTC+8 is a valid offset")
}

pub fn china_time(t: DateTime<Utc>) -> String {
    t.with_timezone(&china())
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

pub fn today(now: DateTime<Utc>) -> NaiveDate {
    now.with_timezone(&china()).date_naive()
}

/// A chip's state: what an operator reads at a glance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Chip {
    Delivered,
    InProgress,
    Retrying,
    Dead,
    Withdrawn,
}

impl Chip {
    pub fn of(d: &DeliveryRow) -> Chip {
        match d.status {
            DeliveryStatus::Delivered if d.action == Action::Withdraw => Chip::Withdrawn,
            DeliveryStatus::Delivered => Chip::Delivered,
            DeliveryStatus::Pending | DeliveryStatus::InFlight => Chip::InProgress,
            DeliveryStatus::Retrying => Chip::Retrying,
            DeliveryStatus::Dead => Chip::Dead,
            DeliveryStatus::Withdrawn => Chip::Withdrawn,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Chip::Delivered => "已送达",
            Chip::InProgress => "投递中",
            Chip::Retrying => "等待重试",
            Chip::Dead => "失败",
            Chip::Withdrawn => "已撤回",
        }
    }

    fn parse(s: &str) -> Option<Chip> {
        Some(match s {
            "delivered" => Chip::Delivered,
            "in_progress" => Chip::InProgress,
            "retrying" => Chip::Retrying,
            "dead" => Chip::Dead,
            "withdrawn" => Chip::Withdrawn,
            _ => return None,
        })
    }

    const ALL: [Chip; 5] = [
        Chip::Delivered,
        Chip::InProgress,
        Chip::Retrying,
        Chip::Dead,
        Chip::Withdrawn,
    ];
}

pub fn kind_label(kind: ChannelKind) -> &'static str {
    crate::report::channel_label(kind.as_str())
}

/// The day list's query string.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ListQuery {
    /// YYYY-MM-DD (China time), or "all"; default today.
    pub date: Option<String>,
    pub channel: Option<String>,
    pub status: Option<String>,
    pub category: Option<String>,
    pub q: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ChipView {
    pub channel: String,
    pub kind: &'static str,
    pub state: Chip,
    pub label: &'static str,
    pub delivery_id: i64,
    pub attempts: i64,
}

#[derive(Debug, Serialize)]
pub struct DisclosureView {
    pub disclosure_id: String,
    pub revision: i64,
    pub title: String,
    pub category: String,
    pub category_name: String,
    pub received_at: String,
    pub withdrawn: bool,
    pub chips: Vec<ChipView>,
}

#[derive(Debug, Serialize)]
pub struct Option2 {
    pub value: String,
    pub label: String,
}

#[derive(Debug, Serialize)]
pub struct DayList {
    pub date: String,
    pub all_dates: bool,
    pub channel: String,
    pub status: String,
    pub category: String,
    pub q: String,
    pub items: Vec<DisclosureView>,
    pub truncated: bool,
    pub channels: Vec<Option2>,
    pub statuses: Vec<Option2>,
    pub categories: Vec<Option2>,
    /// Dead deliveries anywhere in the ledger (the "needs attention" banner).
    pub dead_total: i64,
}

fn non_empty(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Latest delivery per channel (publish before withdraw, newer revisions last).
fn chips(rows: &[DeliveryRow], settings: &crate::config::Settings) -> Vec<ChipView> {
    let mut latest: BTreeMap<&str, &DeliveryRow> = BTreeMap::new();
    for d in rows {
        latest
            .entry(d.channel.as_str())
            .and_modify(|cur| {
                if d.id > cur.id {
                    *cur = d;
                }
            })
            .or_insert(d);
    }
    latest
        .into_values()
        .map(|d| {
            let state = Chip::of(d);
            ChipView {
                channel: d.channel.clone(),
                kind: settings
                    .channels
                    .channels
                    .get(&d.channel)
                    .map_or("其他", |c| kind_label(c.kind())),
                state,
                label: state.label(),
                delivery_id: d.id,
                attempts: d.attempts,
            }
        })
        .collect()
}

pub async fn day_list(
    ledger: &Ledger,
    q: &ListQuery,
    now: DateTime<Utc>,
) -> Result<DayList, String> {
    let settings = &ledger.settings;
    let channel = non_empty(&q.channel);
    let status = non_empty(&q.status);
    let category = non_empty(&q.category);
    let text = non_empty(&q.q);
    let chip_filter = match &status {
        Some(s) => Some(Chip::parse(s).ok_or_else(|| format!("未知状态 {s:?}"))?),
        None => None,
    };
    let date = non_empty(&q.date);
    let (all_dates, day) = match date.as_deref() {
        Some("all") => (true, today(now)),
        Some(d) => (
            false,
            NaiveDate::parse_from_str(d, "%Y-%m-%d")
                .map_err(|_| format!("日期 {d:?} 应为 YYYY-MM-DD"))?,
        ),
        // A search without a date looks through every day.
        None => (text.is_some(), today(now)),
    };
    let mut dq = DisclosureQuery {
        category: category.clone(),
        text: text.clone(),
        limit: LIST_LIMIT + 1,
        ..DisclosureQuery::default()
    };
    if !all_dates {
        let start = china()
            .from_local_datetime(&day.and_hms_opt(0, 0, 0).expect("midnight exists"))
            .single()
            .expect("UTC+8 has no gaps")
            .with_timezone(&Utc);
        dq.received_from = Some(start);
        dq.received_before = Some(start + chrono::Duration::days(1));
    }
    let store = &ledger.store;
    let department = ledger.department();
    let err = |e: StoreError| e.to_string();
    if let Some(chip) = chip_filter {
        // Narrow to the disclosures that have a delivery in that state first.
        let statuses: Vec<DeliveryStatus> = DeliveryStatus::ALL
            .iter()
            .copied()
            .filter(|st| match chip {
                Chip::Delivered | Chip::Withdrawn => {
                    matches!(st, DeliveryStatus::Delivered | DeliveryStatus::Withdrawn)
                }
                Chip::InProgress => {
                    matches!(st, DeliveryStatus::Pending | DeliveryStatus::InFlight)
                }
                Chip::Retrying => *st == DeliveryStatus::Retrying,
                Chip::Dead => *st == DeliveryStatus::Dead,
            })
            .collect();
        let rows = store
            .list_deliveries(
                department,
                &DeliveryFilter {
                    statuses,
                    channel: channel.clone(),
                    ..DeliveryFilter::default()
                },
            )
            .await
            .map_err(err)?;
        let mut ids: Vec<String> = rows.into_iter().map(|d| d.disclosure_id).collect();
        ids.sort();
        ids.dedup();
        if ids.is_empty() {
            ids.push(String::new());
        }
        dq.disclosure_ids = ids;
    }
    let found = store.list_disclosures(department, &dq).await.map_err(err)?;
    let truncated = found.len() as i64 > LIST_LIMIT;
    let mut items = Vec::new();
    for d in found.into_iter().take(LIST_LIMIT as usize) {
        let rows = store
            .list_deliveries(
                department,
                &DeliveryFilter {
                    disclosure_id: Some(d.disclosure_id.clone()),
                    channel: channel.clone(),
                    ..DeliveryFilter::default()
                },
            )
            .await
            .map_err(err)?;
        let chips = chips(&rows, settings);
        if channel.is_some() && chips.is_empty() {
            continue;
        }
        if let Some(want) = chip_filter {
            if !chips.iter().any(|c| c.state == want) {
                continue;
            }
        }
        items.push(DisclosureView {
            category_name: settings
                .category(&d.category)
                .map_or_else(|| d.category.clone(), |c| c.name.clone()),
            disclosure_id: d.disclosure_id,
            revision: d.revision,
            title: d.title,
            category: d.category,
            received_at: china_time(d.received_at),
            withdrawn: d.withdrawn_at.is_some(),
            chips,
        });
    }
    let dead_total = store
        .count_deliveries(Some(department))
        .await
        .map_err(err)?
        .iter()
        .filter(|c| c.status == DeliveryStatus::Dead)
        .map(|c| c.count)
        .sum();
    Ok(DayList {
        date: day.format("%Y-%m-%d").to_string(),
        all_dates,
        channel: channel.unwrap_or_default(),
        status: status.unwrap_or_default(),
        category: category.unwrap_or_default(),
        q: text.unwrap_or_default(),
        items,
        truncated,
        channels: settings
            .channels
            .channels
            .iter()
            .map(|(name, spec)| Option2 {
                value: name.clone(),
                label: format!("{name}（{}）", kind_label(spec.kind())),
            })
            .collect(),
        statuses: Chip::ALL
            .iter()
            .map(|c| Option2 {
                value: serde_json::to_value(c)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                label: c.label().to_string(),
            })
            .collect(),
        categories: settings
            .categories
            .iter()
            .map(|c| Option2 {
                value: c.code.clone(),
                label: c.name.clone(),
            })
            .collect(),
        dead_total,
    })
}

/// An attempt as the delivery page shows it.
#[derive(Debug, Serialize)]
pub struct AttemptView {
    pub number: i64,
    pub started_at: String,
    pub duration_ms: i64,
    pub trigger: String,
    pub outcome: &'static str,
    pub outcome_class: &'static str,
    pub code: String,
    /// What happened and what to do, in an operator's words.
    pub reason: String,
    /// The raw detail the channel recorded.
    pub detail: String,
}

fn outcome_label(o: AttemptOutcome) -> (&'static str, &'static str) {
    match o {
        AttemptOutcome::Delivered => ("成功", "delivered"),
        AttemptOutcome::Transient => ("暂时失败", "retrying"),
        AttemptOutcome::Permanent => ("失败", "dead"),
        AttemptOutcome::Lost => ("中断", "retrying"),
        AttemptOutcome::Pending => ("已提交，等待结果", "in_progress"),
    }
}

/// What an operator should do about an HTTP status from a channel.
fn http_advice(status: i64) -> Option<String> {
    Some(match status {
        400 | 422 => "对方认为内容不合格：请看下方原始信息，修改公开件后以新版本提交".to_string(),
        401 | 403 => "对方拒绝了身份验证：请核对该渠道配置中的 app_key 与签名密钥，改正后点「立即重试」".to_string(),
        404 => "对方地址不存在：请核对该渠道配置中的 base_url（接口地址）".to_string(),
        408 => "对方处理超时：系统会自动重试".to_string(),
        409 => "对方提示内容冲突（可能已存在同一稿件）：请到对方后台核对".to_string(),
        413 => "内容超过对方的大小限制：请精简正文或附件后以新版本提交".to_string(),
        429 => "对方限流：系统会按对方要求稍后自动重试，无需操作".to_string(),
        500..=599 => format!(
            "对方服务器故障（HTTP {status}）：系统会自动重试；若已停止重试，请确认对方恢复后点「立即重试」"
        ),
        _ => return None,
    })
}

/// The reason of an attempt in words an operator understands: the WeChat errcode's message
/// (the channel's own table), else advice for the HTTP status, else the recorded detail.
pub fn explain(a: &AttemptRow, kind: ChannelKind) -> String {
    let detail = a.detail.clone().unwrap_or_default();
    match a.outcome {
        AttemptOutcome::Delivered => return "对方已接收".to_string(),
        AttemptOutcome::Lost => {
            return "投递过程中本服务中断（重启或崩溃），对方是否收到未知；系统已自动接手重试"
                .to_string()
        }
        AttemptOutcome::Pending => {
            return format!("对方已受理，正在处理（如微信发布审核），稍后自动查询结果。{detail}")
        }
        _ => {}
    }
    if kind == ChannelKind::Wechat {
        if let Some(code) = a
            .remote_code
            .as_deref()
            .and_then(|c| c.trim().parse::<i64>().ok())
        {
            if let Some((_, msg)) = errcode_action(code) {
                return format!("微信返回错误码 {code}：{msg}");
            }
        }
    }
    if let Some(advice) = a.http_status.and_then(http_advice) {
        return advice;
    }
    if a.http_status.is_none() && a.outcome == AttemptOutcome::Transient {
        return format!(
            "连接不上对方或超时：请检查本机网络、对方服务是否可达；系统会自动重试。（{detail}）"
        );
    }
    if detail.is_empty() {
        "未记录原因".to_string()
    } else {
        detail
    }
}

#[derive(Debug, Serialize)]
pub struct DeliveryPage {
    pub id: i64,
    pub disclosure_id: String,
    pub revision: i64,
    pub title: String,
    pub channel: String,
    pub kind: &'static str,
    pub action: &'static str,
    pub state: Chip,
    pub state_label: &'static str,
    pub status: String,
    pub attempts: Vec<AttemptView>,
    pub next_attempt_at: Option<String>,
    pub last_error: Option<String>,
    /// The latest attempt's reason, shown at the top for a failed delivery.
    pub advice: Option<String>,
    pub payload: Option<String>,
    pub payload_sha256: Option<String>,
    /// Only http(s) links are shown as links.
    pub url: Option<String>,
    pub remote_id: Option<String>,
    pub delivered_at: Option<String>,
    pub can_retry: bool,
    pub channel_failed: usize,
    pub withdrawn: bool,
    /// WeChat's report on the mass send, in words.
    pub mass_result: Option<String>,
}

pub async fn delivery_page(ledger: &Ledger, id: i64) -> Result<DeliveryPage, StoreError> {
    let store = &ledger.store;
    let department = ledger.department();
    let d = store.get_delivery(department, id).await?;
    let disclosure = store
        .get_disclosure(department, &d.disclosure_id, Some(d.revision))
        .await?;
    let latest = store
        .get_disclosure(department, &d.disclosure_id, None)
        .await?;
    let attempts = store.list_attempts(department, id).await?;
    let failed_of_channel = store
        .list_deliveries(
            department,
            &DeliveryFilter {
                statuses: vec![DeliveryStatus::Dead, DeliveryStatus::Retrying],
                channel: Some(d.channel.clone()),
                ..DeliveryFilter::default()
            },
        )
        .await?
        .len();
    let views: Vec<AttemptView> = attempts
        .iter()
        .map(|a| {
            let (outcome, outcome_class) = outcome_label(a.outcome);
            AttemptView {
                number: a.number,
                started_at: china_time(a.started_at),
                duration_ms: a.duration_ms,
                trigger: match (a.trigger, &a.requested_by) {
                    (AttemptTrigger::Manual, Some(by)) => format!("手动重试（{by}）"),
                    (AttemptTrigger::Manual, None) => "手动重试".to_string(),
                    (AttemptTrigger::Scheduled, _) => "自动".to_string(),
                },
                outcome,
                outcome_class,
                code: [
                    a.http_status.map(|s| format!("HTTP {s}")),
                    a.remote_code.clone().map(|c| format!("错误码 {c}")),
                ]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" · "),
                reason: explain(a, d.kind),
                detail: a.detail.clone().unwrap_or_default(),
            }
        })
        .collect();
    let state = Chip::of(&d);
    let advice = match state {
        Chip::Dead | Chip::Retrying => views.last().map(|v| v.reason.clone()),
        _ => None,
    };
    let payload = d.payload.as_ref().map(|p| {
        let text = String::from_utf8_lossy(p).to_string();
        serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| serde_json::to_string_pretty(&v).ok())
            .unwrap_or(text)
    });
    Ok(DeliveryPage {
        id: d.id,
        disclosure_id: d.disclosure_id.clone(),
        revision: d.revision,
        title: disclosure.title,
        channel: d.channel.clone(),
        kind: kind_label(d.kind),
        action: match d.action {
            Action::Publish => "发布",
            Action::Withdraw => "撤回",
        },
        state,
        state_label: state.label(),
        status: d.status.as_str().to_string(),
        attempts: views,
        next_attempt_at: d
            .next_attempt_at
            .filter(|_| matches!(d.status, DeliveryStatus::Pending | DeliveryStatus::Retrying))
            .map(china_time),
        last_error: d.last_error.clone(),
        advice,
        payload,
        payload_sha256: d.payload_sha256.clone(),
        url: d
            .url
            .clone()
            .filter(|u| u.starts_with("https://") || u.starts_with("http://")),
        remote_id: d.remote_id.clone(),
        delivered_at: d.delivered_at.map(china_time),
        can_retry: matches!(
            d.status,
            DeliveryStatus::Dead | DeliveryStatus::Retrying | DeliveryStatus::Pending
        ),
        channel_failed: failed_of_channel,
        withdrawn: latest.withdrawn_at.is_some(),
        mass_result: ledger
            .mass_result(&d)
            .await?
            .map(|m| crate::channel::wechat::mass_summary(&m)),
    })
}

#[derive(Debug, Serialize)]
pub struct ChannelHealth {
    pub name: String,
    pub kind: &'static str,
    pub last_success: String,
    pub counts: BTreeMap<String, i64>,
    pub dead: i64,
    /// "ok", "warn" or "bad": the row's colour.
    pub level: &'static str,
    pub notes: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct NearDeadline {
    pub delivery_id: i64,
    pub disclosure_id: String,
    pub title: String,
    pub channel: String,
    pub state_label: &'static str,
    pub deadline: String,
    pub overdue: bool,
}

#[derive(Debug, Serialize)]
pub struct Health {
    pub channels: Vec<ChannelHealth>,
    pub queue_depth: i64,
    pub near_deadline: Vec<NearDeadline>,
    pub now: String,
}

/// Working days before the deadline at which an unfinished item is listed.
const DEADLINE_WARN_WORKING_DAYS: u32 = 3;

pub async fn health(
    ledger: &Ledger,
    screens: &Screens,
    now: DateTime<Utc>,
) -> Result<Health, StoreError> {
    let store = &ledger.store;
    let settings = &ledger.settings;
    let counts = store.count_deliveries(Some(ledger.department())).await?;
    let last = store.last_delivered(ledger.department()).await?;
    let mut channels = Vec::new();
    for (name, spec) in &settings.channels.channels {
        let mut c: BTreeMap<String, i64> = BTreeMap::new();
        for row in counts.iter().filter(|r| &r.channel == name) {
            *c.entry(Chip::of_status(row.status).label().to_string())
                .or_default() += row.count;
        }
        let dead = counts
            .iter()
            .filter(|r| &r.channel == name && r.status == DeliveryStatus::Dead)
            .map(|r| r.count)
            .sum();
        let last_at = last.iter().find(|l| &l.channel == name).map(|l| l.at);
        let mut level = if dead > 0 { "warn" } else { "ok" };
        let mut notes = Vec::new();
        if dead > 0 {
            notes.push(format!("{dead} 个投递失败，需人工处理"));
        }
        match spec {
            ChannelSpec::Wechat(cfg) => {
                let days = last_at.map(|t| (now - t).num_days());
                let s = staleness(last_at, now, cfg.stale_warn_days, cfg.stale_critical_days);
                let when = days.map_or("从未成功发布".to_string(), |d| {
                    format!("已 {d} 天未发布")
                });
                match s {
                    Staleness::Fresh => notes.push(format!("公众号更新正常（{when}）")),
                    Staleness::Warn => {
                        level = "warn";
                        notes.push(format!(
                            "公众号{when}：超过 {} 天，请尽快发布（两周不更新将被通报）",
                            cfg.stale_warn_days
                        ));
                    }
                    Staleness::Critical => {
                        level = "bad";
                        notes.push(format!(
                            "公众号{when}：已达 {} 天，即将因长期不更新被通报",
                            cfg.stale_critical_days
                        ));
                    }
                }
            }
            ChannelSpec::Led(cfg) => match (screens.get(name), &cfg.bx) {
                (Some(screen), Some(_)) => {
                    let st = screen.controller_status();
                    match st.last_push_ok {
                        Some(true) => notes.push(format!(
                            "LED 控制卡可达（最近推送 {}）",
                            st.last_push_at.map(china_time).unwrap_or_default()
                        )),
                        Some(false) => {
                            level = "bad";
                            notes.push(format!(
                                "LED 控制卡不可达：连续失败 {} 次（{}）。请检查屏幕电源与网线",
                                st.consecutive_failures,
                                st.last_error.unwrap_or_default()
                            ));
                        }
                        None => notes.push("LED 控制卡尚未推送过".to_string()),
                    }
                }
                _ => notes.push("未配置 LED 控制卡（只输出播放文件）".to_string()),
            },
            _ => {}
        }
        channels.push(ChannelHealth {
            name: name.clone(),
            kind: kind_label(spec.kind()),
            last_success: last_at.map_or("从未".to_string(), china_time),
            counts: c,
            dead,
            level,
            notes,
        });
    }
    Ok(Health {
        channels,
        queue_depth: store.count_due(now).await?,
        near_deadline: near_deadline(ledger, now).await?,
        now: china_time(now),
    })
}

impl Chip {
    fn of_status(s: DeliveryStatus) -> Chip {
        match s {
            DeliveryStatus::Delivered => Chip::Delivered,
            DeliveryStatus::Pending | DeliveryStatus::InFlight => Chip::InProgress,
            DeliveryStatus::Retrying => Chip::Retrying,
            DeliveryStatus::Dead => Chip::Dead,
            DeliveryStatus::Withdrawn => Chip::Withdrawn,
        }
    }
}

/// Unfinished publish deliveries whose deadline (formed date + the category's working
/// days, on the working-day calendar) is within a few working days or past.
async fn near_deadline(
    ledger: &Ledger,
    now: DateTime<Utc>,
) -> Result<Vec<NearDeadline>, StoreError> {
    let settings = &ledger.settings;
    let open = ledger
        .store
        .list_deliveries(
            ledger.department(),
            &DeliveryFilter {
                statuses: vec![
                    DeliveryStatus::Pending,
                    DeliveryStatus::InFlight,
                    DeliveryStatus::Retrying,
                    DeliveryStatus::Dead,
                ],
                limit: Some(2000),
                ..DeliveryFilter::default()
            },
        )
        .await?;
    let open: Vec<DeliveryRow> = open
        .into_iter()
        .filter(|d| d.action == Action::Publish)
        .collect();
    if open.is_empty() {
        return Ok(Vec::new());
    }
    let mut ids: Vec<String> = open.iter().map(|d| d.disclosure_id.clone()).collect();
    ids.sort();
    ids.dedup();
    let disclosures = ledger
        .store
        .list_disclosures(
            ledger.department(),
            &DisclosureQuery {
                disclosure_ids: ids,
                limit: 10_000,
                ..DisclosureQuery::default()
            },
        )
        .await?;
    let calendar = settings.calendar();
    let today = today(now);
    let warn_until = calendar.add_working_days(today, DEADLINE_WARN_WORKING_DAYS);
    let mut out = Vec::new();
    for d in &open {
        let Some(s) = disclosures
            .iter()
            .find(|s| s.disclosure_id == d.disclosure_id)
        else {
            continue;
        };
        let days = settings
            .category(&s.category)
            .map_or(20, |c| c.deadline_working_days);
        let deadline = calendar.add_working_days(s.formed_date, days);
        if deadline <= warn_until {
            out.push(NearDeadline {
                delivery_id: d.id,
                disclosure_id: d.disclosure_id.clone(),
                title: s.title.clone(),
                channel: d.channel.clone(),
                state_label: Chip::of(d).label(),
                deadline: deadline.format("%Y-%m-%d").to_string(),
                overdue: deadline < today,
            });
        }
    }
    out.sort_by(|a, b| a.deadline.cmp(&b.deadline));
    out.truncate(100);
    Ok(out)
}

/// The current year in China time.
pub fn this_year(now: DateTime<Utc>) -> i32 {
    today(now).year()
}
