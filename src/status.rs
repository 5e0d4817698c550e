//! `gongkai status`: what needs attention today. Owns: the list of items that are late or
//! close to their deadline (条例 第二十六条, working days on the Chinese calendar) on some
//! channel, the WeChat staleness lines (`channel::wechat::status_lines`) and the years the
//! calendar has no data for. Read-only; the caller prints it (text in Chinese, or JSON).
//!
//! An open publish delivery (pending, in flight, retrying or dead — not yet delivered and not
//! withdrawn) of revision R counts from R's formed date (生成日期: "formed or changed"), with
//! the deadline of the item's category (`deadline_working_days`). It is listed when today is
//! past the due day (超期) or when at least `report.warn_at` of the budget is used (临近).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use serde::Serialize;

use crate::calendar::Calendar;
use crate::channel::wechat::{self, Staleness};
use crate::config::Settings;
use crate::domain::{Action, DeliveryStatus};
use crate::store::{DeliveryFilter, Store, StoreResult};

#[derive(Debug, Clone, Serialize)]
pub struct StatusItem {
    pub delivery_id: i64,
    pub disclosure_id: String,
    pub revision: i64,
    pub title: String,
    pub category: String,
    pub channel: String,
    /// The delivery's status (`pending`, `in_flight`, `retrying`, `dead`).
    pub status: String,
    pub formed_date: NaiveDate,
    /// The last day of the deadline.
    pub due: NaiveDate,
    pub deadline_working_days: u32,
    /// Working days used up to today.
    pub used_working_days: u32,
    /// `late` (today is after `due`) or `near` (>= warn_at of the budget used).
    pub state: String,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChannelStatus {
    pub name: String,
    pub late: usize,
    pub near: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct WechatLine {
    /// `fresh`, `warn` or `critical`.
    pub level: String,
    pub line: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct CalendarStatus {
    pub source: String,
    /// Years between the oldest open item and today without holiday data (weekends only).
    pub missing_years: Vec<i32>,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// Today (China time).
    pub today: NaiveDate,
    pub warn_at: f64,
    pub channels: Vec<ChannelStatus>,
    /// Late items first, then near ones; each ordered by due day.
    pub items: Vec<StatusItem>,
    pub wechat: Vec<WechatLine>,
    pub calendar: CalendarStatus,
}

pub fn china_today(now: DateTime<Utc>) -> NaiveDate {
    let tz = FixedOffset::east_opt(8 * 3600).expect("UTC+8 is a valid offset");
    now.with_timezone(&tz).date_naive()
}

/// Collects the status as of `now` (`today` is its date in China time unless given).
pub async fn collect(
    settings: &Settings,
    store: &dyn Store,
    calendar: &Calendar,
    now: DateTime<Utc>,
    today: Option<NaiveDate>,
) -> StoreResult<Status> {
    let today = today.unwrap_or_else(|| china_today(now));
    let department = settings.department.code.as_str();
    let open = store
        .list_deliveries(
            department,
            &DeliveryFilter {
                statuses: vec![
                    DeliveryStatus::Pending,
                    DeliveryStatus::InFlight,
                    DeliveryStatus::Retrying,
                    DeliveryStatus::Dead,
                ],
                ..DeliveryFilter::default()
            },
        )
        .await?;
    let mut items = Vec::new();
    let mut revisions = HashMap::new();
    let mut oldest: Option<NaiveDate> = None;
    for d in open.iter().filter(|d| d.action == Action::Publish) {
        let key = (d.disclosure_id.clone(), d.revision);
        if !revisions.contains_key(&key) {
            let s = store
                .get_disclosure(department, &d.disclosure_id, Some(d.revision))
                .await?;
            revisions.insert(key.clone(), s);
        }
        let s = &revisions[&key];
        let wd = settings
            .category(&s.category)
            .map_or(20, |c| c.deadline_working_days);
        let due = calendar.add_working_days(s.formed_date, wd);
        let used = calendar.working_days_between(s.formed_date, today);
        oldest = Some(oldest.map_or(s.formed_date, |o| o.min(s.formed_date)));
        let state = if today > due {
            "late"
        } else if wd == 0 || f64::from(used) >= settings.report.warn_at * f64::from(wd) {
            "near"
        } else {
            continue;
        };
        items.push(StatusItem {
            delivery_id: d.id,
            disclosure_id: d.disclosure_id.clone(),
            revision: d.revision,
            title: s.title.clone(),
            category: s.category.clone(),
            channel: d.channel.clone(),
            status: d.status.to_string(),
            formed_date: s.formed_date,
            due,
            deadline_working_days: wd,
            used_working_days: used,
            state: state.to_string(),
            last_error: d.last_error.clone(),
        });
    }
    items.sort_by(|a, b| {
        (a.state != "late", a.due, &a.channel, a.delivery_id).cmp(&(
            b.state != "late",
            b.due,
            &b.channel,
            b.delivery_id,
        ))
    });
    let mut per_channel: BTreeMap<String, (usize, usize)> = settings
        .channels
        .channels
        .keys()
        .map(|k| (k.clone(), (0, 0)))
        .collect();
    for i in &items {
        let e = per_channel.entry(i.channel.clone()).or_default();
        if i.state == "late" {
            e.0 += 1;
        } else {
            e.1 += 1;
        }
    }
    let wechat = wechat::status_lines(settings, store, now)
        .await?
        .into_iter()
        .map(|(level, line)| WechatLine {
            level: match level {
                Staleness::Fresh => "fresh",
                Staleness::Warn => "warn",
                Staleness::Critical => "critical",
            }
            .to_string(),
            line,
        })
        .collect();
    let from = oldest.map_or(today, |o| o.min(today));
    Ok(Status {
        today,
        warn_at: settings.report.warn_at,
        channels: per_channel
            .into_iter()
            .map(|(name, (late, near))| ChannelStatus { name, late, near })
            .collect(),
        items,
        wechat,
        calendar: CalendarStatus {
            source: calendar.source().to_string(),
            missing_years: calendar.missing_years(from, today),
            warnings: calendar.warnings().to_vec(),
        },
    })
}

/// The status as text for an operator, in Chinese.
pub fn to_text(s: &Status) -> String {
    let mut out = format!(
        "gongkai 状态（{}，北京时间；用去公开时限 {:.0}% 即提醒）\n\n公开时限：\n",
        s.today,
        s.warn_at * 100.0
    );
    for c in &s.channels {
        out.push_str(&format!(
            "  渠道 {}：超期 {} 条，临近期限 {} 条\n",
            c.name, c.late, c.near
        ));
        for i in s.items.iter().filter(|i| i.channel == c.name) {
            let verdict = if i.state == "late" {
                format!("已超期（应于 {} 前公开）", i.due)
            } else {
                format!(
                    "临近期限：已用 {}/{} 个工作日，应于 {} 前公开",
                    i.used_working_days, i.deadline_working_days, i.due
                )
            };
            out.push_str(&format!(
                "    - {} 第{}版《{}》（投递 {}，{}）：{}，生成日期 {}{}\n",
                i.disclosure_id,
                i.revision,
                i.title,
                i.delivery_id,
                status_zh(&i.status),
                verdict,
                i.formed_date,
                i.last_error
                    .as_deref()
                    .map(|e| format!("；最近错误：{e}"))
                    .unwrap_or_default()
            ));
        }
    }
    if s.items.is_empty() {
        out.push_str("  没有超期或临近期限的公开件\n");
    }
    out.push_str("\n微信公众号更新：\n");
    if s.wechat.is_empty() {
        out.push_str("  未配置微信公众号渠道\n");
    }
    for w in &s.wechat {
        out.push_str(&format!("  {}\n", w.line));
    }
    out.push_str(&format!("\n工作日日历：{}\n", s.calendar.source));
    if s.calendar.missing_years.is_empty() {
        out.push_str("  涉及年份均有节假日数据\n");
    } else {
        out.push_str(&format!(
            "  注意：{} 年没有节假日数据，只按周末计算工作日；请更新日历数据目录\n",
            s.calendar
                .missing_years
                .iter()
                .map(i32::to_string)
                .collect::<Vec<_>>()
                .join("、")
        ));
    }
    for w in &s.calendar.warnings {
        out.push_str(&format!("  警告：{w}\n"));
    }
    out
}

fn status_zh(s: &str) -> &'static str {
    match s {
        "pending" => "待投递",
        "in_flight" => "投递中",
        "retrying" => "等待重试",
        "dead" => "投递失败",
        _ => "其他",
    }
}
