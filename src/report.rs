//! Year counts of proactive disclosure (主动公开), the first cut of the annual report.
//! Owns: counting the delivery ledger into items per year, per channel and per category,
//! with cumulative (历年累计) figures that add the configured baseline, and printing them as
//! Markdown, CSV or JSON. An item counts in the year of its `publish_date`, or without one,
//! the year (China time) of its first successful delivery; a channel counts the items it
//! delivered. The same ledger always gives the same report.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, FixedOffset};
use serde::Serialize;

use crate::config::Settings;
use crate::store::PublishedRow;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Count {
    pub year: u64,
    pub cumulative: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChannelCount {
    pub name: String,
    pub kind: String,
    pub year: u64,
    pub cumulative: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct CategoryCount {
    pub code: String,
    pub name: String,
    pub year: u64,
    pub cumulative: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct YearReport {
    pub year: i32,
    pub period: String,
    pub total: Count,
    pub channels: Vec<ChannelCount>,
    pub categories: Vec<CategoryCount>,
    /// The baseline added to cumulative figures, and which years it covers.
    pub baseline_note: String,
    /// A paragraph in the style of a real report, ready to paste.
    pub summary: String,
}

/// Counts the ledger for `year`.
pub fn build(settings: &Settings, rows: &[PublishedRow], year: i32) -> YearReport {
    let china = FixedOffset::east_opt(8 * 3600).expect("UTC+8 is a valid offset");
    // item -> (year it counts in, category)
    let mut item_year: BTreeMap<&str, (i32, &str)> = BTreeMap::new();
    for r in rows {
        let delivered_year = r.first_delivered_at.with_timezone(&china).year();
        let y = r.publish_date.map(|d| d.year()).unwrap_or(delivered_year);
        item_year
            .entry(r.disclosure_id.as_str())
            .and_modify(|e| {
                if r.publish_date.is_none() && y < e.0 {
                    e.0 = y;
                }
            })
            .or_insert((y, r.category.as_str()));
    }
    let baseline = &settings.report.baseline;
    let use_baseline = baseline.before_year.is_none_or(|b| year >= b);
    let base = |n: u64| if use_baseline { n } else { 0 };

    let mut total = Count {
        year: 0,
        cumulative: base(baseline.total),
    };
    for (y, _) in item_year.values() {
        if *y == year {
            total.year += 1;
        }
        if *y <= year {
            total.cumulative += 1;
        }
    }

    let mut per_channel: BTreeMap<&str, (BTreeSet<&str>, BTreeSet<&str>)> = BTreeMap::new();
    for r in rows {
        let (y, _) = item_year[r.disclosure_id.as_str()];
        let e = per_channel.entry(r.channel.as_str()).or_default();
        if y == year {
            e.0.insert(r.disclosure_id.as_str());
        }
        if y <= year {
            e.1.insert(r.disclosure_id.as_str());
        }
    }
    let mut channel_names: BTreeSet<&str> = settings
        .channels
        .channels
        .keys()
        .map(String::as_str)
        .collect();
    channel_names.extend(per_channel.keys().copied());
    let channels = channel_names
        .into_iter()
        .map(|name| {
            let (y, c) = per_channel.get(name).cloned().unwrap_or_default();
            let kind = settings
                .channels
                .channels
                .get(name)
                .map(|s| s.kind().as_str().to_string())
                .or_else(|| {
                    rows.iter()
                        .find(|r| r.channel == name)
                        .map(|r| r.kind.as_str().to_string())
                })
                .unwrap_or_default();
            ChannelCount {
                name: name.to_string(),
                kind,
                year: y.len() as u64,
                cumulative: c.len() as u64
                    + base(baseline.channels.get(name).copied().unwrap_or(0)),
            }
        })
        .collect();

    let mut per_category: BTreeMap<&str, Count> = BTreeMap::new();
    for (y, cat) in item_year.values() {
        let e = per_category.entry(cat).or_default();
        if *y == year {
            e.year += 1;
        }
        if *y <= year {
            e.cumulative += 1;
        }
    }
    let mut categories: Vec<CategoryCount> = settings
        .categories
        .iter()
        .map(|c| {
            let n = per_category.remove(c.code.as_str()).unwrap_or_default();
            CategoryCount {
                code: c.code.clone(),
                name: c.name.clone(),
                year: n.year,
                cumulative: n.cumulative
                    + base(baseline.categories.get(&c.code).copied().unwrap_or(0)),
            }
        })
        .collect();
    // Categories no longer in the taxonomy still count, under their code.
    for (code, n) in per_category {
        categories.push(CategoryCount {
            code: code.to_string(),
            name: format!("{code}（已不在分类配置中）"),
            year: n.year,
            cumulative: n.cumulative,
        });
    }

    let baseline_note = match (use_baseline, baseline.before_year) {
        (true, Some(b)) if baseline.total > 0 => {
            format!(
                "历年累计含 {b} 年以前的基数 {} 条（配置 report.baseline）",
                baseline.total
            )
        }
        (true, None) if baseline.total > 0 => {
            format!(
                "历年累计含基数 {} 条（配置 report.baseline）",
                baseline.total
            )
        }
        _ => "历年累计仅含 gongkai 台账中的记录".to_string(),
    };
    let summary = summary_paragraph(year, total.year, &categories);
    YearReport {
        year,
        period: format!("{year}年1月1日至{year}年12月31日"),
        total,
        channels,
        categories,
        baseline_note,
        summary,
    }
}

fn summary_paragraph(year: i32, total: u64, categories: &[CategoryCount]) -> String {
    let parts: Vec<String> = categories
        .iter()
        .filter(|c| c.year > 0)
        .map(|c| format!("{}类信息{}条", c.name, c.year))
        .collect();
    if parts.is_empty() {
        format!("{year}年共主动公开政府信息{total}条。")
    } else {
        format!(
            "{year}年共主动公开政府信息{total}条，其中：{}。",
            parts.join("，")
        )
    }
}

pub fn channel_label(kind: &str) -> &'static str {
    match kind {
        "gov_site" => "政府网站",
        "wechat" => "微信公众号",
        "led" => "LED屏",
        _ => "其他",
    }
}

pub fn to_markdown(r: &YearReport) -> String {
    let mut s = format!("# {}年政府信息主动公开情况\n\n", r.year);
    s.push_str(&format!(
        "统计期限：{}。{}。\n\n",
        r.period, r.baseline_note
    ));
    s.push_str(&format!(
        "| 指标 | 计量单位 | {}年度 | 历年累计 |\n|---|---|---:|---:|\n",
        r.year
    ));
    s.push_str(&format!(
        "| 主动公开信息数 | 条 | {} | {} |\n",
        r.total.year, r.total.cumulative
    ));
    for c in &r.channels {
        s.push_str(&format!(
            "| 其中：{}（{}） | 条 | {} | {} |\n",
            channel_label(&c.kind),
            c.name,
            c.year,
            c.cumulative
        ));
    }
    s.push_str("\n## 按分类\n\n| 分类代码 | 分类 | 本年度 | 历年累计 |\n|---|---|---:|---:|\n");
    for c in &r.categories {
        s.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            c.code, c.name, c.year, c.cumulative
        ));
    }
    s.push_str(&format!("\n{}\n", r.summary));
    s
}

pub fn to_csv(r: &YearReport) -> String {
    let mut s = String::from("section,key,name,year,cumulative\n");
    s.push_str(&format!(
        "total,total,主动公开信息数,{},{}\n",
        r.total.year, r.total.cumulative
    ));
    for c in &r.channels {
        s.push_str(&format!(
            "channel,{},{},{},{}\n",
            csv_field(&c.name),
            csv_field(channel_label(&c.kind)),
            c.year,
            c.cumulative
        ));
    }
    for c in &r.categories {
        s.push_str(&format!(
            "category,{},{},{},{}\n",
            csv_field(&c.code),
            csv_field(&c.name),
            c.year,
            c.cumulative
        ));
    }
    s
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

pub fn to_json(r: &YearReport) -> String {
    serde_json::to_string_pretty(r).expect("a report always serializes")
}
