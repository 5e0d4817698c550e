//! Year counts of proactive disclosure (主动公开), the first cut of the annual report.
//! Owns: counting the delivery ledger into items per year, per channel and per category,
//! with cumulative (历年累计) figures that add the configured baseline, and printing them as
//! Markdown, CSV or JSON. An item counts in the year of its `publish_date`, or without one,
//! the year (China time) of its first successful delivery; a channel counts the items it
//! delivered. The same ledger always gives the same report.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::NaiveDate;
use serde::Serialize;

use crate::calendar::Calendar;
use crate::config::Settings;
use crate::store::PublishedGroup;

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
    /// Of this year's items, delivered on this channel within their deadline.
    pub on_time: u64,
    /// Of this year's items, delivered on this channel after their deadline.
    pub late: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeadlineNote {
    /// Where the working-day calendar came from.
    pub calendar: String,
    /// Years of the counted items without holiday data (weekends only).
    pub missing_years: Vec<i32>,
    pub note: String,
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
    /// How on-time / late was decided, and on which calendar.
    pub deadlines: DeadlineNote,
}

/// Counts the ledger for `year` from the grouped rows of `Store::published_groups`, with the
/// deadlines evaluated on `calendar`.
pub fn build(
    settings: &Settings,
    groups: &[PublishedGroup],
    calendar: &Calendar,
    year: i32,
) -> YearReport {
    let baseline = &settings.report.baseline;
    let use_baseline = baseline.before_year.is_none_or(|b| year >= b);
    let base = |n: u64| if use_baseline { n } else { 0 };

    let mut total = Count {
        year: 0,
        cumulative: base(baseline.total),
    };
    let mut per_category: BTreeMap<&str, Count> = BTreeMap::new();
    // channel -> (year, cumulative, on_time, late)
    let mut per_channel: BTreeMap<&str, (u64, u64, u64, u64)> = BTreeMap::new();
    let mut due_cache: HashMap<(NaiveDate, u32), NaiveDate> = HashMap::new();
    let (mut first_formed, mut last_delivered) = (None::<NaiveDate>, None::<NaiveDate>);
    for g in groups {
        if g.count_year > year {
            continue;
        }
        let this_year = g.count_year == year;
        if g.primary {
            total.cumulative += g.items;
            let e = per_category.entry(g.category.as_str()).or_default();
            e.cumulative += g.items;
            if this_year {
                total.year += g.items;
                e.year += g.items;
            }
        }
        let e = per_channel.entry(g.channel.as_str()).or_default();
        e.1 += g.items;
        if this_year {
            e.0 += g.items;
            let wd = deadline_days(settings, &g.category);
            let due = *due_cache
                .entry((g.formed_date, wd))
                .or_insert_with(|| calendar.add_working_days(g.formed_date, wd));
            if g.delivered_on <= due {
                e.2 += g.items;
            } else {
                e.3 += g.items;
            }
            first_formed = Some(first_formed.map_or(g.formed_date, |f| f.min(g.formed_date)));
            last_delivered = Some(last_delivered.map_or(g.delivered_on, |l| l.max(g.delivered_on)));
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
            let (y, c, on_time, late) = per_channel.get(name).copied().unwrap_or_default();
            let kind = settings
                .channels
                .channels
                .get(name)
                .map(|s| s.kind().as_str().to_string())
                .or_else(|| {
                    groups
                        .iter()
                        .find(|g| g.channel == name)
                        .map(|g| g.kind.as_str().to_string())
                })
                .unwrap_or_default();
            ChannelCount {
                name: name.to_string(),
                kind,
                year: y,
                cumulative: c + base(baseline.channels.get(name).copied().unwrap_or(0)),
                on_time,
                late,
            }
        })
        .collect();

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
    let missing_years = match (first_formed, last_delivered) {
        (Some(f), Some(l)) => calendar.missing_years(f, l),
        _ => Vec::new(),
    };
    let deadlines = DeadlineNote {
        calendar: calendar.source().to_string(),
        missing_years: missing_years.clone(),
        note: if missing_years.is_empty() {
            format!(
                "按时/超期按各分类公开时限（工作日，自生成日期起算）与首次送达日（北京时间）计算，工作日日历：{}",
                calendar.source()
            )
        } else {
            format!(
                "注意：{} 年没有节假日数据，这些年份只按周末计算工作日（日历：{}）",
                missing_years
                    .iter()
                    .map(i32::to_string)
                    .collect::<Vec<_>>()
                    .join("、"),
                calendar.source()
            )
        },
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
        deadlines,
    }
}

fn deadline_days(settings: &Settings, category: &str) -> u32 {
    settings
        .category(category)
        .map_or(20, |c| c.deadline_working_days)
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
    s.push_str(
        "\n## 按渠道的公开时效\n\n| 渠道 | 本年度公开 | 按时 | 超期 |\n|---|---:|---:|---:|\n",
    );
    for c in &r.channels {
        s.push_str(&format!(
            "| {}（{}） | {} | {} | {} |\n",
            channel_label(&c.kind),
            c.name,
            c.year,
            c.on_time,
            c.late
        ));
    }
    s.push_str(&format!("\n{}。\n", r.deadlines.note));
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
    let mut s = String::from("section,key,name,year,cumulative,on_time,late\n");
    s.push_str(&format!(
        "total,total,主动公开信息数,{},{},,\n",
        r.total.year, r.total.cumulative
    ));
    for c in &r.channels {
        s.push_str(&format!(
            "channel,{},{},{},{},{},{}\n",
            csv_field(&c.name),
            csv_field(channel_label(&c.kind)),
            c.year,
            c.cumulative,
            c.on_time,
            c.late
        ));
    }
    for c in &r.categories {
        s.push_str(&format!(
            "category,{},{},{},{},,\n",
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ChannelKind;

    fn group(formed: &str, delivered: &str, items: u64) -> PublishedGroup {
        PublishedGroup {
            channel: "gov_site".into(),
            kind: ChannelKind::GovSite,
            category: "shjz".into(),
            count_year: 2026,
            formed_date: formed.parse().unwrap(),
            delivered_on: delivered.parse().unwrap(),
            primary: true,
            items,
        }
    }

    #[test]
    fn on_time_and_late_follow_the_2026_spring_festival_calendar() {
        let settings = Settings {
            categories: vec![crate::config::Category {
                code: "shjz".into(),
                name: "社会救助".into(),
                channels: vec![],
                deadline_working_days: 3,
                display_min_working_days: None,
            }],
            ..Settings::default()
        };
        // Formed 02-12: 3 working days end on 02-24 (the holiday 02-15..23 does not count).
        let groups = [
            group("2026-02-12", "2026-02-24", 2),
            group("2026-02-12", "2026-02-25", 1),
        ];
        let r = build(&settings, &groups, &Calendar::embedded(), 2026);
        assert_eq!((r.channels[0].on_time, r.channels[0].late), (2, 1));
        assert_eq!(r.total.year, 3);
        assert!(r.deadlines.missing_years.is_empty());
        // Weekends only, 02-24 would be late (3 working days end on 02-17).
        let r = build(&settings, &groups, &Calendar::weekends_only(), 2026);
        assert_eq!((r.channels[0].on_time, r.channels[0].late), (0, 3));
        assert_eq!(r.deadlines.missing_years, [2026]);
    }
}
