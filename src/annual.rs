//! The annual report (政府信息公开工作年度报告) tables in a versioned layout. Owns: the 2017
//! 附表 (layout "2017") and tables 二/三/四 of 国办公开办函〔2021〕30号 (layout "2021") on top
//! of the year counts of `report::build`, the draft paragraph, `--explain CELL`, and the
//! Markdown / CSV / JSON / xlsx renderings. The clerk's figures (applications, 复议, 诉讼)
//! come from `applications`; a figure nobody gave is `null` / 未提供, never 0.
//!
//! Table 二 from the ledger (documented in README, "年度报告"):
//! - 第二十条第（一）项: items whose `doc_kind` is 规章 or 行政规范性文件. 本年制发 = such items
//!   counted in the year (the report's count year: publish_date, else first delivery);
//!   本年废止 = items repealed in the year: a delivered revision with `validity` 废止 or 失效
//!   (on its `valid_to`, else the day it was delivered), or a delivered item whose `replaces`
//!   names it (on that item's publish_date, else delivery day); 现行有效 = issued up to the
//!   year and not repealed up to it, so 现行有效(Y) = 现行有效(Y−1) + 本年制发(Y) − 本年废止(Y).
//! - 第（五）项 行政许可 / 第（六）项 行政处罚, 行政强制: counted by `art20_item` (五 / 六), one
//!   per disclosure (no decision_kind field exists); 第（六）项 is split by `doc_kind` 行政处罚 /
//!   行政强制, other items of item 六 are reported as `art20_6_unclassified`.
//! - 第（八）项 行政事业性收费 本年收费金额: no disclosure field carries an amount, so the cell
//!   is null (未提供) and `items` says how many item-八 disclosures there were.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::{json, Value};

use crate::applications::{
    self, fubiao_unit, Applications, FUBIAO_ROWS, TABLE3_COLS, TABLE4_COLS, TABLE4_ROWS,
};
use crate::calendar::Calendar;
use crate::config::Settings;
use crate::report::{self, channel_label, YearReport};
use crate::store::{PublishedRow, ReportRevision, Store};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Y2017,
    Y2021,
}

impl Layout {
    /// 2021 for reports of 2021 onward, the 附表 before.
    pub fn default_for(year: i32) -> Layout {
        if year >= 2021 {
            Layout::Y2021
        } else {
            Layout::Y2017
        }
    }
    pub fn id(self) -> &'static str {
        match self {
            Layout::Y2017 => "2017",
            Layout::Y2021 => "2021",
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            Layout::Y2017 => "2017 年附表（政务信息公开情况统计表：本年度 / 历年累计）",
            Layout::Y2021 => "国办公开办函〔2021〕30号 年度报告格式（表二、表三、表四）",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct FubiaoRow {
    pub id: String,
    pub label: String,
    pub unit: String,
    /// Number, or null when not provided.
    pub year: Value,
    pub cumulative: Value,
    /// `ledger`, `applications` (the clerk's file) or `missing`.
    pub source: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct DocRow {
    pub id: String,
    pub label: String,
    pub issued: u64,
    pub repealed: u64,
    pub in_force: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct DecisionRow {
    pub id: String,
    pub label: String,
    pub decisions: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct FeeRow {
    pub id: String,
    pub label: String,
    /// 本年收费金额（万元）: null, no disclosure field carries it.
    pub amount_wan_yuan: Value,
    /// Item-八 disclosures counted in the year.
    pub items: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Table2 {
    pub art20_1: Vec<DocRow>,
    pub art20_5: Vec<DecisionRow>,
    pub art20_6: Vec<DecisionRow>,
    pub art20_6_unclassified: u64,
    pub art20_8: Vec<FeeRow>,
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GridRow {
    pub id: String,
    pub label: String,
    /// One number per column, or null when not provided.
    pub values: Value,
}

#[derive(Debug, Clone, Serialize)]
pub struct Grid {
    pub columns: Vec<String>,
    pub rows: Vec<GridRow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ApplicationsNote {
    pub provided: bool,
    pub source: Option<String>,
    pub note: String,
}

/// The report in a layout: the year counts (same keys as `report::YearReport`, flattened)
/// plus the layout's tables.
#[derive(Debug, Clone, Serialize)]
pub struct AnnualReport {
    #[serde(flatten)]
    pub base: YearReport,
    pub layout: String,
    pub layout_label: String,
    pub applications: ApplicationsNote,
    /// 2017 layout only (null otherwise).
    pub fubiao: Option<Vec<FubiaoRow>>,
    /// 2021 layout only (null otherwise).
    pub table2: Option<Table2>,
    pub table3: Option<Grid>,
    pub table4: Option<Grid>,
    /// The draft paragraphs (主动公开 and 依申请公开), ready to paste.
    pub draft: String,
}

fn num(v: f64) -> Value {
    if v.fract() == 0.0 && v >= 0.0 {
        json!(v as u64)
    } else {
        json!(v)
    }
}

/// Gov-site figures of the 2017 附表 (其中：政府网站公开数): the website channels; with several,
/// the largest (an item on two websites is one item).
fn site_counts(base: &YearReport) -> (u64, u64) {
    base.channels
        .iter()
        .filter(|c| c.kind == "gov_site")
        .fold((0, 0), |(y, c), ch| (y.max(ch.year), c.max(ch.cumulative)))
}

/// Builds the layout's tables over the year counts, the report revisions and the clerk's file.
pub fn build(
    layout: Layout,
    base: YearReport,
    revisions: &[ReportRevision],
    apps: Option<&Applications>,
) -> AnnualReport {
    let year = base.year;
    let applications = ApplicationsNote {
        provided: apps.is_some(),
        source: apps.map(|a| a.source.clone()),
        note: match apps {
            Some(a) => format!("依申请公开、行政复议、行政诉讼数据来自经办人填写的 {}", a.source),
            None => "未提供依申请公开、行政复议、行政诉讼数据（report --applications 文件或 report.applications_dir/{年}.toml）：相应栏目为“未提供”".to_string(),
        },
    };
    let mut r = AnnualReport {
        layout: layout.id().into(),
        layout_label: layout.label().into(),
        applications,
        fubiao: None,
        table2: None,
        table3: None,
        table4: None,
        draft: String::new(),
        base,
    };
    match layout {
        Layout::Y2017 => {
            let (sy, sc) = site_counts(&r.base);
            let mut rows = vec![
                FubiaoRow {
                    id: "proactive".into(),
                    label: "主动公开文件数".into(),
                    unit: "件".into(),
                    year: json!(r.base.total.year),
                    cumulative: json!(r.base.total.cumulative),
                    source: "ledger".into(),
                },
                FubiaoRow {
                    id: "gov_site".into(),
                    label: "其中：1.政府网站公开数".into(),
                    unit: "件".into(),
                    year: json!(sy),
                    cumulative: json!(sc),
                    source: "ledger".into(),
                },
                FubiaoRow {
                    id: "gazette".into(),
                    label: "2.政府公报公开数".into(),
                    unit: "件".into(),
                    year: json!(0),
                    cumulative: json!(0),
                    source: "ledger".into(),
                },
            ];
            let section = apps.and_then(|a| a.fubiao.as_ref());
            for def in &FUBIAO_ROWS {
                let v = section.and_then(|s| s.get(def.id));
                rows.push(FubiaoRow {
                    id: def.id.into(),
                    label: def.label.into(),
                    unit: fubiao_unit(def.id).into(),
                    year: v.map_or(Value::Null, |v| num(v[0])),
                    cumulative: v.map_or(Value::Null, |v| num(v[1])),
                    source: if v.is_some() {
                        "applications"
                    } else {
                        "missing"
                    }
                    .into(),
                });
            }
            r.fubiao = Some(rows);
        }
        Layout::Y2021 => {
            r.table2 = Some(table2(revisions, year).0);
            let t3 = apps.and_then(|a| a.table3.as_ref());
            r.table3 = Some(Grid {
                columns: TABLE3_COLS.iter().map(|s| s.to_string()).collect(),
                rows: applications::table3_rows()
                    .map(|d| GridRow {
                        id: d.id.into(),
                        label: d.label.into(),
                        values: t3
                            .and_then(|s| s.get(d.id))
                            .map_or(Value::Null, |v| v.iter().map(|x| num(*x)).collect()),
                    })
                    .collect(),
            });
            let t4 = apps.and_then(|a| a.table4.as_ref());
            r.table4 = Some(Grid {
                columns: TABLE4_COLS.iter().map(|s| s.to_string()).collect(),
                rows: TABLE4_ROWS
                    .iter()
                    .map(|d| GridRow {
                        id: d.id.into(),
                        label: d.label.into(),
                        values: t4
                            .and_then(|s| s.get(d.id))
                            .map_or(Value::Null, |v| v.iter().map(|x| num(*x)).collect()),
                    })
                    .collect(),
            });
        }
    }
    r.draft = draft(&r, apps);
    r
}

fn draft(r: &AnnualReport, apps: Option<&Applications>) -> String {
    let year = r.base.year;
    let mut s = r.base.summary.clone();
    let by_kind: Vec<String> = ["gov_site", "wechat", "led"]
        .iter()
        .filter_map(|k| {
            let n: u64 = r
                .base
                .channels
                .iter()
                .filter(|c| c.kind == *k)
                .map(|c| c.year)
                .max()?;
            (n > 0).then(|| format!("通过{}公开{n}条", channel_label(k)))
        })
        .collect();
    if !by_kind.is_empty() {
        s.push_str(&format!("按渠道，{}。", by_kind.join("，")));
    }
    if let Some(t2) = &r.table2 {
        if let Some(n) = t2.art20_1.iter().find(|d| d.id == "normative") {
            s.push_str(&format!(
                "本年制发行政规范性文件{}件，废止{}件，现行有效{}件。",
                n.issued, n.repealed, n.in_force
            ));
        }
    }
    let received = apps.and_then(|a| match r.layout.as_str() {
        "2017" => a
            .fubiao
            .as_ref()
            .map(|f| (f["applications_total"][0], f["replies_total"][0])),
        _ => a
            .table3
            .as_ref()
            .map(|t| (t["new"][6], t["result_total"][6])),
    });
    match received {
        Some((0.0, _)) => s.push_str(&format!("{year}年度未收到政府信息公开申请。")),
        Some((n, done)) => s.push_str(&format!(
            "{year}年度受理政府信息公开申请{}件，办理答复{}件。",
            n as u64, done as u64
        )),
        None => s.push_str("（依申请公开数据未提供。）"),
    }
    s
}

/// Table 二 for `year`, and the disclosures behind each of its cells (cell id -> ids).
/// The whole annual report for `year` from the ledger: the year counts, the layout's
/// tables (table 二 from the stored revisions for the 2021 layout) and the clerk's
/// applications file (`applications`, else `report.applications_dir/<year>.toml|csv`).
/// The one function the CLI, the API and the console call.
pub async fn generate(
    settings: &crate::config::Settings,
    store: &dyn crate::store::Store,
    calendar: &crate::calendar::Calendar,
    year: i32,
    layout: Option<Layout>,
    applications: Option<&std::path::Path>,
) -> anyhow::Result<AnnualReport> {
    let apps_path = match applications {
        Some(p) => Some(p.to_path_buf()),
        None => {
            crate::applications::find(&settings.resolve(&settings.report.applications_dir), year)
        }
    };
    let apps = apps_path
        .as_deref()
        .map(crate::applications::load)
        .transpose()?;
    let layout = layout.unwrap_or_else(|| Layout::default_for(year));
    let department = settings.department.code.as_str();
    let groups = store.published_groups(department).await?;
    let base = crate::report::build(settings, &groups, calendar, year);
    let revisions = match layout {
        Layout::Y2021 => store.report_revisions(department).await?,
        Layout::Y2017 => Vec::new(),
    };
    Ok(build(layout, base, &revisions, apps.as_ref()))
}

pub fn table2(revs: &[ReportRevision], year: i32) -> (Table2, BTreeMap<String, BTreeSet<String>>) {
    use chrono::Datelike;
    let mut items: BTreeMap<&str, Vec<&ReportRevision>> = BTreeMap::new();
    for r in revs {
        items.entry(r.disclosure_id.as_str()).or_default().push(r);
    }
    // Repeals: by a revision's validity, or by a later item's `replaces`.
    let mut repealed_on: BTreeMap<&str, chrono::NaiveDate> = BTreeMap::new();
    for r in revs {
        let Some(delivered) = r.delivered_on else {
            continue;
        };
        if matches!(r.validity.as_deref(), Some("废止" | "失效")) {
            let d = r.valid_to.unwrap_or(delivered);
            let e = repealed_on.entry(r.disclosure_id.as_str()).or_insert(d);
            *e = (*e).min(d);
        }
        if let Some(x) = &r.replaces {
            let d = r.publish_date.unwrap_or(delivered);
            let e = repealed_on.entry(x.as_str()).or_insert(d);
            *e = (*e).min(d);
        }
    }
    let mut cells: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (id, rs) in &items {
        let count_year = rs
            .iter()
            .find_map(|r| r.publish_date)
            .unwrap_or(rs[0].item_first_delivered_on)
            .year();
        let delivered: Vec<&&ReportRevision> =
            rs.iter().filter(|r| r.delivered_on.is_some()).collect();
        let kind = delivered.iter().find_map(|r| match r.doc_kind.as_deref() {
            Some("规章") => Some("rules"),
            Some("行政规范性文件") => Some("normative"),
            _ => None,
        });
        if let Some(kind) = kind {
            let repeal_year = repealed_on.get(id).map(|d| d.year().max(count_year));
            let mut put = |col: &str| {
                cells
                    .entry(format!("t2.{kind}.{col}"))
                    .or_default()
                    .insert(id.to_string());
            };
            if count_year == year {
                put("issued");
            }
            if repeal_year == Some(year) {
                put("repealed");
            }
            if count_year <= year && repeal_year.is_none_or(|y| y > year) {
                put("in_force");
            }
        }
        if count_year != year {
            continue;
        }
        let latest = delivered.last().copied().copied();
        let item = latest.and_then(|r| r.art20_item.as_deref());
        let cell = match (item, latest.and_then(|r| r.doc_kind.as_deref())) {
            (Some("五"), _) => Some("t2.licensing"),
            (Some("六"), Some("行政处罚")) => Some("t2.punishment"),
            (Some("六"), Some("行政强制")) => Some("t2.enforcement"),
            (Some("六"), _) => Some("t2.unclassified"),
            (Some("八"), _) => Some("t2.fees"),
            _ => None,
        };
        if let Some(c) = cell {
            cells.entry(c.into()).or_default().insert(id.to_string());
        }
    }
    let n = |c: &str| cells.get(c).map_or(0, |s| s.len() as u64);
    let doc = |id: &str, label: &str| DocRow {
        id: id.into(),
        label: label.into(),
        issued: n(&format!("t2.{id}.issued")),
        repealed: n(&format!("t2.{id}.repealed")),
        in_force: n(&format!("t2.{id}.in_force")),
    };
    let dec = |id: &str, label: &str| DecisionRow {
        id: id.into(),
        label: label.into(),
        decisions: n(&format!("t2.{id}")),
    };
    let t = Table2 {
        art20_1: vec![doc("rules", "规章"), doc("normative", "行政规范性文件")],
        art20_5: vec![dec("licensing", "行政许可")],
        art20_6: vec![dec("punishment", "行政处罚"), dec("enforcement", "行政强制")],
        art20_6_unclassified: n("t2.unclassified"),
        art20_8: vec![FeeRow {
            id: "fees".into(),
            label: "行政事业性收费".into(),
            amount_wan_yuan: Value::Null,
            items: n("t2.fees"),
        }],
        notes: vec![
            "第（一）项按公开件的 doc_kind（规章、行政规范性文件）统计；废止取 validity 为废止/失效的修订（valid_to 或送达日）及新文件的 replaces；现行有效只含台账中的文件".into(),
            "第（五）（六）项按 art20_item 统计公开件件数（每件公开件计 1 个处理决定；公开件没有 decision_kind 字段），第（六）项按 doc_kind 区分行政处罚/行政强制".into(),
            "第（八）项本年收费金额：公开件没有金额字段，未提供".into(),
        ],
    };
    (t, cells)
}

// ---------------------------------------------------------------- explain

#[derive(Debug, Clone, Serialize)]
pub struct ExplainItem {
    pub disclosure_id: String,
    pub title: String,
    pub category: String,
    pub channel: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    pub cell: String,
    pub year: i32,
    pub count: usize,
    pub items: Vec<ExplainItem>,
    pub note: String,
}

/// The cell ids `--explain` knows.
pub const CELL_HELP: &str = "total.year、total.cumulative、channel.<渠道>.year|cumulative|on_time|late、category.<分类代码>.year|cumulative、fubiao.proactive|gov_site|gazette.year|cumulative、t2.rules|normative.issued|repealed|in_force、t2.licensing、t2.punishment、t2.enforcement、t2.unclassified、t2.fees；经办人文件的格子（fubiao.<行>.c1、table3.<行>.c<列>、table4.<行>.c<列>）";

fn china_day(t: chrono::DateTime<chrono::Utc>) -> chrono::NaiveDate {
    crate::status::china_today(t)
}

/// The disclosures behind one cell of the report for `year`.
pub async fn explain(
    settings: &Settings,
    store: &dyn Store,
    calendar: &Calendar,
    year: i32,
    cell: &str,
    apps_source: Option<&str>,
) -> anyhow::Result<Explanation> {
    use chrono::Datelike;
    let parts: Vec<&str> = cell.split('.').collect();
    let department = settings.department.code.as_str();
    let clerk = |what: &str| -> anyhow::Result<Explanation> {
        Ok(Explanation {
            cell: cell.into(),
            year,
            count: 0,
            items: vec![],
            note: match apps_source {
                Some(s) => format!("{what}：来自经办人填写的 {s}，台账中没有对应的公开件"),
                None => format!("{what}：由经办人填写（本次未提供文件），台账中没有对应的公开件"),
            },
        })
    };
    let mut ids: BTreeSet<(String, Option<String>)> = BTreeSet::new();
    let mut note = String::new();
    match parts.as_slice() {
        ["t2", ..] => {
            let revs = store.report_revisions(department).await?;
            let (_, cells) = table2(&revs, year);
            let known = [
                "t2.rules.issued",
                "t2.rules.repealed",
                "t2.rules.in_force",
                "t2.normative.issued",
                "t2.normative.repealed",
                "t2.normative.in_force",
                "t2.licensing",
                "t2.punishment",
                "t2.enforcement",
                "t2.unclassified",
                "t2.fees",
            ];
            if !known.contains(&cell) {
                anyhow::bail!("--explain {cell}：没有这个格子；可用：{CELL_HELP}");
            }
            ids.extend(
                cells
                    .get(cell)
                    .into_iter()
                    .flatten()
                    .map(|i| (i.clone(), None)),
            );
            note = "表二（国办公开办函〔2021〕30号），统计口径见报告 table2.notes".into();
        }
        ["fubiao", "proactive" | "gov_site" | "gazette", "year" | "cumulative"]
        | ["total", "year" | "cumulative"]
        | ["channel", _, "year" | "cumulative" | "on_time" | "late"]
        | ["category", _, "year" | "cumulative"] => {
            let rows = store.list_published(department).await?;
            let mut first: BTreeMap<&str, chrono::DateTime<chrono::Utc>> = BTreeMap::new();
            let mut primary: BTreeMap<&str, &str> = BTreeMap::new();
            let mut publish: BTreeMap<&str, Option<chrono::NaiveDate>> = BTreeMap::new();
            for r in &rows {
                let f = first
                    .entry(&r.disclosure_id)
                    .or_insert(r.first_delivered_at);
                *f = (*f).min(r.first_delivered_at);
                let p = primary.entry(&r.disclosure_id).or_insert(&r.channel);
                if r.channel.as_str() < *p {
                    *p = &r.channel;
                }
                publish.insert(&r.disclosure_id, r.publish_date);
            }
            let count_year = |r: &PublishedRow| {
                publish[r.disclosure_id.as_str()]
                    .unwrap_or_else(|| china_day(first[r.disclosure_id.as_str()]))
                    .year()
            };
            let cumulative = parts.last() == Some(&"cumulative");
            let gov_sites: BTreeSet<String> = rows
                .iter()
                .filter(|r| r.kind.as_str() == "gov_site")
                .map(|r| r.channel.clone())
                .collect();
            for r in &rows {
                let cy = count_year(r);
                if cy > year || (!cumulative && cy != year) {
                    continue;
                }
                let is_primary = primary[r.disclosure_id.as_str()] == r.channel;
                let hit = match parts.as_slice() {
                    ["total", _] | ["fubiao", "proactive", _] => is_primary,
                    ["fubiao", "gov_site", _] => gov_sites.contains(&r.channel),
                    ["fubiao", "gazette", _] => false,
                    ["category", code, _] => is_primary && r.category == *code,
                    ["channel", name, col] => {
                        r.channel == *name
                            && match *col {
                                "on_time" | "late" => {
                                    let s = store
                                        .get_disclosure(department, &r.disclosure_id, Some(1))
                                        .await;
                                    let s = match s {
                                        Ok(s) => s,
                                        Err(_) => {
                                            store
                                                .get_disclosure(department, &r.disclosure_id, None)
                                                .await?
                                        }
                                    };
                                    let wd = settings
                                        .category(&r.category)
                                        .map_or(20, |c| c.deadline_working_days);
                                    let due = calendar.add_working_days(s.formed_date, wd);
                                    (china_day(r.first_delivered_at) <= due) == (*col == "on_time")
                                }
                                _ => true,
                            }
                    }
                    _ => false,
                };
                if hit {
                    let ch = matches!(
                        parts.as_slice(),
                        ["channel", ..] | ["fubiao", "gov_site", _]
                    )
                    .then(|| r.channel.clone());
                    ids.insert((r.disclosure_id.clone(), ch));
                }
            }
            if cumulative {
                let b = &settings.report.baseline;
                let base = match parts.as_slice() {
                    ["total", _] | ["fubiao", "proactive", _] => b.total,
                    ["channel", name, _] => b.channels.get(*name).copied().unwrap_or(0),
                    ["fubiao", "gov_site", _] => gov_sites
                        .iter()
                        .map(|c| b.channels.get(c).copied().unwrap_or(0))
                        .max()
                        .unwrap_or(0),
                    ["category", code, _] => b.categories.get(*code).copied().unwrap_or(0),
                    _ => 0,
                };
                if base > 0 && b.before_year.is_none_or(|y| year >= y) {
                    note = format!(
                        "另含 gongkai 之前的基数 {base} 条（配置 report.baseline），无逐条明细"
                    );
                }
            }
            if parts[0] == "fubiao" && parts[1] == "gazette" {
                note = "台账中没有政府公报渠道，政府公报公开数为 0".into();
            }
        }
        ["fubiao", row, ..] if FUBIAO_ROWS.iter().any(|r| r.id == *row) => {
            return clerk("2017 附表依申请公开等栏目")
        }
        ["table3" | "table4", ..] => return clerk("表三/表四"),
        _ => anyhow::bail!("--explain {cell}：没有这个格子；可用：{CELL_HELP}"),
    }
    let mut items = Vec::new();
    for (id, channel) in ids {
        let s = store.get_disclosure(department, &id, None).await?;
        items.push(ExplainItem {
            disclosure_id: id,
            title: s.title,
            category: s.category,
            channel,
        });
    }
    Ok(Explanation {
        cell: cell.into(),
        year,
        count: items.len(),
        items,
        note,
    })
}

pub fn explanation_text(e: &Explanation) -> String {
    let mut s = format!("{}年 格子 {}：{} 条公开件\n", e.year, e.cell, e.count);
    for i in &e.items {
        s.push_str(&format!(
            "  {}  {}（{}{}）\n",
            i.disclosure_id,
            i.title,
            i.category,
            i.channel
                .as_deref()
                .map(|c| format!("，渠道 {c}"))
                .unwrap_or_default()
        ));
    }
    if !e.note.is_empty() {
        s.push_str(&format!("说明：{}\n", e.note));
    }
    s
}

// ---------------------------------------------------------------- renderings

fn cell_text(v: &Value) -> String {
    match v {
        Value::Null => "未提供".into(),
        other => other.to_string(),
    }
}

pub fn to_markdown(r: &AnnualReport) -> String {
    let year = r.base.year;
    let mut s = format!(
        "# {year}年政府信息公开工作年度报告 统计表\n\n格式：{}。统计期限：{}。{}。\n\n",
        r.layout_label, r.base.period, r.applications.note
    );
    if let Some(rows) = &r.fubiao {
        s.push_str(&format!(
            "## 附表\n\n| 指标 | 计量单位 | {year}年度 | 历年累计 |\n|---|---|---:|---:|\n"
        ));
        for row in rows {
            s.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                row.label,
                row.unit,
                cell_text(&row.year),
                cell_text(&row.cumulative)
            ));
        }
        s.push('\n');
    }
    if let Some(t) = &r.table2 {
        s.push_str("## 二、主动公开政府信息情况\n\n| 第二十条第（一）项 信息内容 | 本年制发件数 | 本年废止件数 | 现行有效件数 |\n|---|---:|---:|---:|\n");
        for d in &t.art20_1 {
            s.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                d.label, d.issued, d.repealed, d.in_force
            ));
        }
        s.push_str("\n| 第二十条第（五）项 信息内容 | 本年处理决定数量 |\n|---|---:|\n");
        for d in &t.art20_5 {
            s.push_str(&format!("| {} | {} |\n", d.label, d.decisions));
        }
        s.push_str("\n| 第二十条第（六）项 信息内容 | 本年处理决定数量 |\n|---|---:|\n");
        for d in &t.art20_6 {
            s.push_str(&format!("| {} | {} |\n", d.label, d.decisions));
        }
        if t.art20_6_unclassified > 0 {
            s.push_str(&format!(
                "\n另有第（六）项公开件 {} 件未注明行政处罚或行政强制（doc_kind）。\n",
                t.art20_6_unclassified
            ));
        }
        s.push_str("\n| 第二十条第（八）项 信息内容 | 本年收费金额（单位：万元） |\n|---|---:|\n");
        for d in &t.art20_8 {
            s.push_str(&format!(
                "| {} | {} |\n",
                d.label,
                cell_text(&d.amount_wan_yuan)
            ));
        }
        s.push('\n');
        for n in &t.notes {
            s.push_str(&format!("- {n}\n"));
        }
        s.push('\n');
    }
    for (title, grid) in [
        (
            "三、收到和处理政府信息公开申请情况（第一项加第二项之和，等于第三项加第四项之和）",
            &r.table3,
        ),
        ("四、政府信息公开行政复议、行政诉讼情况", &r.table4),
    ] {
        let Some(g) = grid else { continue };
        s.push_str(&format!(
            "## {title}\n\n| 项目 | {} |\n|---|{}\n",
            g.columns.join(" | "),
            "---:|".repeat(g.columns.len())
        ));
        for row in &g.rows {
            let vals: Vec<String> = match &row.values {
                Value::Array(a) => a.iter().map(|v| v.to_string()).collect(),
                _ => vec!["未提供".into(); g.columns.len()],
            };
            s.push_str(&format!("| {} | {} |\n", row.label, vals.join(" | ")));
        }
        s.push('\n');
    }
    s.push_str(&report::to_markdown(&r.base));
    s.push_str(&format!("\n## 草稿\n\n{}\n", r.draft));
    s
}

pub fn to_csv(r: &AnnualReport) -> String {
    let mut s = report::to_csv(&r.base);
    let v = |x: &Value| match x {
        Value::Null => String::new(),
        o => o.to_string(),
    };
    if let Some(rows) = &r.fubiao {
        for row in rows {
            s.push_str(&format!(
                "fubiao,{},{},{},{},,\n",
                row.id,
                row.label,
                v(&row.year),
                v(&row.cumulative)
            ));
        }
    }
    if let Some(t) = &r.table2 {
        for d in &t.art20_1 {
            for (col, label, n) in [
                ("issued", "本年制发件数", d.issued),
                ("repealed", "本年废止件数", d.repealed),
                ("in_force", "现行有效件数", d.in_force),
            ] {
                s.push_str(&format!(
                    "table2,t2.{}.{col},{}/{label},{n},,,\n",
                    d.id, d.label
                ));
            }
        }
        for d in t.art20_5.iter().chain(&t.art20_6) {
            s.push_str(&format!(
                "table2,t2.{},{}/本年处理决定数量,{},,,\n",
                d.id, d.label, d.decisions
            ));
        }
        for d in &t.art20_8 {
            s.push_str(&format!(
                "table2,t2.{},{}/本年收费金额（万元）,{},,,\n",
                d.id,
                d.label,
                v(&d.amount_wan_yuan)
            ));
        }
    }
    for (name, grid) in [("table3", &r.table3), ("table4", &r.table4)] {
        let Some(g) = grid else { continue };
        for row in &g.rows {
            for (c, col) in g.columns.iter().enumerate() {
                let val = row.values.get(c).map(v).unwrap_or_default();
                s.push_str(&format!(
                    "{name},{},\"{}/{col}\",{val},,,\n",
                    applications::cell_id(name, &row.id, c),
                    row.label.replace('"', "\"\"")
                ));
            }
        }
    }
    s
}

pub fn to_json(r: &AnnualReport) -> String {
    serde_json::to_string_pretty(r).expect("a report always serializes")
}

/// The report as an xlsx workbook, laid out like the official tables.
pub fn to_xlsx(r: &AnnualReport) -> anyhow::Result<Vec<u8>> {
    use rust_xlsxwriter::{Format, FormatAlign, FormatBorder, Workbook};
    let year = r.base.year;
    let mut wb = Workbook::new();
    let title = Format::new()
        .set_bold()
        .set_font_size(14)
        .set_align(FormatAlign::Center)
        .set_align(FormatAlign::VerticalCenter);
    let head = Format::new()
        .set_bold()
        .set_border(FormatBorder::Thin)
        .set_align(FormatAlign::Center)
        .set_align(FormatAlign::VerticalCenter)
        .set_text_wrap();
    let text = Format::new()
        .set_border(FormatBorder::Thin)
        .set_align(FormatAlign::VerticalCenter)
        .set_text_wrap();
    let center = Format::new()
        .set_border(FormatBorder::Thin)
        .set_align(FormatAlign::Center)
        .set_align(FormatAlign::VerticalCenter);
    let number = Format::new()
        .set_border(FormatBorder::Thin)
        .set_align(FormatAlign::Right);
    let put = |ws: &mut rust_xlsxwriter::Worksheet,
               row: u32,
               col: u16,
               v: &Value|
     -> anyhow::Result<()> {
        match v.as_f64() {
            Some(n) => ws.write_number_with_format(row, col, n, &number)?,
            None => ws.write_string_with_format(row, col, "未提供", &center)?,
        };
        Ok(())
    };
    if let Some(rows) = &r.fubiao {
        let ws = wb.add_worksheet();
        ws.set_name("附表")?;
        ws.merge_range(
            0,
            0,
            0,
            3,
            &format!("{year}年政务信息公开情况统计表"),
            &title,
        )?;
        for (c, h) in ["指标名称", "计量单位", &format!("{year}年度"), "历年累计"]
            .iter()
            .enumerate()
        {
            ws.write_string_with_format(1, c as u16, *h, &head)?;
        }
        for (i, row) in rows.iter().enumerate() {
            let n = 2 + i as u32;
            ws.write_string_with_format(n, 0, &row.label, &text)?;
            ws.write_string_with_format(n, 1, &row.unit, &center)?;
            put(ws, n, 2, &row.year)?;
            put(ws, n, 3, &row.cumulative)?;
        }
        ws.set_column_width(0, 34)?;
        ws.set_column_width(1, 10)?;
        ws.set_column_width(2, 12)?;
        ws.set_column_width(3, 12)?;
    }
    if let Some(t) = &r.table2 {
        let ws = wb.add_worksheet();
        ws.set_name("二、主动公开")?;
        ws.merge_range(0, 0, 0, 3, "二、主动公开政府信息情况", &title)?;
        let mut n = 1u32;
        let block = |ws: &mut rust_xlsxwriter::Worksheet,
                     n: &mut u32,
                     item: &str,
                     cols: &[&str]|
         -> anyhow::Result<()> {
            ws.merge_range(*n, 0, *n, 3, &format!("第二十条第（{item}）项"), &head)?;
            *n += 1;
            ws.write_string_with_format(*n, 0, "信息内容", &head)?;
            if cols.len() == 1 {
                ws.merge_range(*n, 1, *n, 3, cols[0], &head)?;
            } else {
                for (c, h) in cols.iter().enumerate() {
                    ws.write_string_with_format(*n, 1 + c as u16, *h, &head)?;
                }
            }
            *n += 1;
            Ok(())
        };
        block(
            ws,
            &mut n,
            "一",
            &["本年制发件数", "本年废止件数", "现行有效件数"],
        )?;
        for d in &t.art20_1 {
            ws.write_string_with_format(n, 0, &d.label, &text)?;
            for (c, v) in [d.issued, d.repealed, d.in_force].iter().enumerate() {
                ws.write_number_with_format(n, 1 + c as u16, *v as f64, &number)?;
            }
            n += 1;
        }
        for (item, rows) in [("五", &t.art20_5), ("六", &t.art20_6)] {
            block(ws, &mut n, item, &["本年处理决定数量"])?;
            for d in rows {
                ws.write_string_with_format(n, 0, &d.label, &text)?;
                ws.merge_range(n, 1, n, 3, "", &number)?;
                ws.write_number_with_format(n, 1, d.decisions as f64, &number)?;
                n += 1;
            }
        }
        block(ws, &mut n, "八", &["本年收费金额（单位：万元）"])?;
        for d in &t.art20_8 {
            ws.write_string_with_format(n, 0, &d.label, &text)?;
            ws.merge_range(n, 1, n, 3, "", &center)?;
            put(ws, n, 1, &d.amount_wan_yuan)?;
            n += 1;
        }
        ws.set_column_width(0, 28)?;
        for c in 1..=3 {
            ws.set_column_width(c, 16)?;
        }
    }
    if let Some(g) = &r.table3 {
        let ws = wb.add_worksheet();
        ws.set_name("三、依申请公开")?;
        let last = 2 + g.columns.len() as u16;
        ws.merge_range(0, 0, 0, last, "三、收到和处理政府信息公开申请情况", &title)?;
        ws.merge_range(
            1,
            0,
            3,
            2,
            "（本列数据的勾稽关系为：第一项加第二项之和，等于第三项加第四项之和）",
            &head,
        )?;
        ws.merge_range(1, 3, 1, last, "申请人情况", &head)?;
        ws.merge_range(2, 3, 3, 3, "自然人", &head)?;
        ws.merge_range(2, 4, 2, 8, "法人或其他组织", &head)?;
        for (c, h) in g.columns[1..6].iter().enumerate() {
            ws.write_string_with_format(3, 4 + c as u16, h, &head)?;
        }
        ws.merge_range(2, last, 3, last, "总计", &head)?;
        for (i, row) in g.rows.iter().enumerate() {
            let n = 4 + i as u32;
            ws.merge_range(n, 0, n, 2, &row.label, &text)?;
            for c in 0..g.columns.len() {
                put(
                    ws,
                    n,
                    3 + c as u16,
                    row.values.get(c).unwrap_or(&Value::Null),
                )?;
            }
        }
        ws.set_column_width(0, 20)?;
        ws.set_column_width(1, 20)?;
        ws.set_column_width(2, 20)?;
        for c in 3..=last {
            ws.set_column_width(c, 11)?;
        }
    }
    if let Some(g) = &r.table4 {
        let ws = wb.add_worksheet();
        ws.set_name("四、复议诉讼")?;
        ws.merge_range(
            0,
            0,
            0,
            14,
            "四、政府信息公开行政复议、行政诉讼情况",
            &title,
        )?;
        ws.merge_range(1, 0, 2, 4, "行政复议", &head)?;
        ws.merge_range(1, 5, 1, 14, "行政诉讼", &head)?;
        ws.merge_range(2, 5, 2, 9, "未经复议直接起诉", &head)?;
        ws.merge_range(2, 10, 2, 14, "复议后起诉", &head)?;
        for block in 0..3u16 {
            for (c, h) in g.columns.iter().enumerate() {
                ws.write_string_with_format(3, block * 5 + c as u16, h, &head)?;
            }
        }
        for (b, row) in g.rows.iter().enumerate() {
            for c in 0..5 {
                put(
                    ws,
                    4,
                    b as u16 * 5 + c as u16,
                    row.values.get(c).unwrap_or(&Value::Null),
                )?;
            }
        }
        for c in 0..15 {
            ws.set_column_width(c, 10)?;
        }
    }
    {
        let ws = wb.add_worksheet();
        ws.set_name("按渠道与分类")?;
        ws.merge_range(
            0,
            0,
            0,
            5,
            &format!("{year}年主动公开情况（按渠道、分类）"),
            &title,
        )?;
        for (c, h) in [
            "渠道",
            "类型",
            &format!("{year}年度"),
            "历年累计",
            "按时",
            "超期",
        ]
        .iter()
        .enumerate()
        {
            ws.write_string_with_format(1, c as u16, *h, &head)?;
        }
        let mut n = 2u32;
        for ch in &r.base.channels {
            ws.write_string_with_format(n, 0, &ch.name, &text)?;
            ws.write_string_with_format(n, 1, channel_label(&ch.kind), &center)?;
            for (c, v) in [ch.year, ch.cumulative, ch.on_time, ch.late]
                .iter()
                .enumerate()
            {
                ws.write_number_with_format(n, 2 + c as u16, *v as f64, &number)?;
            }
            n += 1;
        }
        n += 1;
        for (c, h) in ["分类代码", "分类", &format!("{year}年度"), "历年累计"]
            .iter()
            .enumerate()
        {
            ws.write_string_with_format(n, c as u16, *h, &head)?;
        }
        n += 1;
        for cat in &r.base.categories {
            ws.write_string_with_format(n, 0, &cat.code, &text)?;
            ws.write_string_with_format(n, 1, &cat.name, &text)?;
            ws.write_number_with_format(n, 2, cat.year as f64, &number)?;
            ws.write_number_with_format(n, 3, cat.cumulative as f64, &number)?;
            n += 1;
        }
        n += 1;
        ws.merge_range(n, 0, n + 3, 5, &r.draft, &text)?;
        ws.set_column_width(0, 16)?;
        ws.set_column_width(1, 26)?;
        for c in 2..=5 {
            ws.set_column_width(c, 12)?;
        }
    }
    Ok(wb.save_to_buffer()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rev(id: &str, revision: i64, publish: &str, doc_kind: &str) -> ReportRevision {
        let d: chrono::NaiveDate = publish.parse().unwrap();
        ReportRevision {
            disclosure_id: id.into(),
            revision,
            title: format!("文件 {id}"),
            category: "zcfg".into(),
            publish_date: Some(d),
            formed_date: d,
            item_first_delivered_on: d,
            delivered_on: Some(d),
            art20_item: Some("一".into()),
            doc_kind: Some(doc_kind.into()),
            validity: Some("有效".into()),
            replaces: None,
            valid_to: None,
        }
    }

    fn ledger() -> Vec<ReportRevision> {
        let mut b2 = rev("b", 2, "2021-05-01", "行政规范性文件");
        b2.validity = Some("废止".into());
        b2.valid_to = Some("2022-06-30".parse().unwrap());
        b2.delivered_on = Some("2022-07-01".parse().unwrap());
        let mut c = rev("c", 1, "2022-02-01", "行政规范性文件");
        c.replaces = Some("a".into());
        let mut never = rev("x", 1, "2022-03-01", "行政规范性文件");
        never.validity = Some("废止".into());
        never.delivered_on = None;
        let mut e = rev("e", 1, "2022-04-01", "其他文件");
        e.art20_item = Some("五".into());
        let mut f = rev("f", 1, "2022-04-02", "行政处罚");
        f.art20_item = Some("六".into());
        let mut g = rev("g", 1, "2022-04-03", "其他文件");
        g.art20_item = Some("八".into());
        vec![
            rev("a", 1, "2021-03-01", "行政规范性文件"),
            rev("b", 1, "2021-05-01", "行政规范性文件"),
            b2,
            c,
            rev("d", 1, "2022-01-10", "规章"),
            e,
            f,
            g,
        ]
    }

    #[test]
    fn normative_documents_issued_and_repealed_across_two_years_carry_over() {
        let revs = ledger();
        let (t21, _) = table2(&revs, 2021);
        let (t22, cells) = table2(&revs, 2022);
        let n21 = &t21.art20_1[1];
        let n22 = &t22.art20_1[1];
        assert_eq!((n21.issued, n21.repealed, n21.in_force), (2, 0, 2));
        // c issued; a repealed by c's `replaces`, b by its 废止 revision.
        assert_eq!((n22.issued, n22.repealed, n22.in_force), (1, 2, 1));
        assert_eq!(n22.in_force, n21.in_force + n22.issued - n22.repealed);
        assert_eq!(
            cells["t2.normative.repealed"].iter().collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(
            (t22.art20_1[0].issued, t22.art20_1[0].in_force),
            (1, 1),
            "规章"
        );
        assert_eq!(t22.art20_5[0].decisions, 1);
        assert_eq!(t22.art20_6[0].decisions, 1);
        assert_eq!(t22.art20_6[1].decisions, 0);
        assert_eq!(t22.art20_8[0].items, 1);
        assert!(t22.art20_8[0].amount_wan_yuan.is_null());
        // 2023: nothing new, the one in force stays.
        let (t23, _) = table2(&revs, 2023);
        assert_eq!(
            (
                t23.art20_1[1].issued,
                t23.art20_1[1].repealed,
                t23.art20_1[1].in_force
            ),
            (0, 0, 1)
        );
    }

    fn base(year: i32) -> YearReport {
        report::build(&Settings::default(), &[], &Calendar::weekends_only(), year)
    }

    #[test]
    fn the_2021_layout_without_a_clerk_file_says_not_provided_and_reads_back_from_xlsx() {
        let r = build(Layout::Y2021, base(2022), &ledger(), None);
        assert!(!r.applications.provided);
        let v: Value = serde_json::from_str(&to_json(&r)).unwrap();
        for key in [
            "year",
            "total",
            "channels",
            "categories",
            "summary",
            "table2",
            "table3",
            "table4",
        ] {
            assert!(v.get(key).is_some(), "{key}");
        }
        assert!(v["table3"]["rows"][0]["values"].is_null());
        assert!(to_markdown(&r).contains("未提供"));
        assert!(r.draft.contains("依申请公开数据未提供"));

        let bytes = to_xlsx(&r).unwrap();
        use calamine::{Data, Reader, Xlsx};
        let mut wb: Xlsx<_> = Xlsx::new(std::io::Cursor::new(bytes)).unwrap();
        let t2 = wb.worksheet_range("二、主动公开").unwrap();
        assert_eq!(t2.get_value((3, 0)), Some(&Data::String("规章".into())));
        assert_eq!(
            t2.get_value((4, 0)),
            Some(&Data::String("行政规范性文件".into()))
        );
        assert_eq!(t2.get_value((4, 1)), Some(&Data::Float(1.0)));
        assert_eq!(t2.get_value((4, 2)), Some(&Data::Float(2.0)));
        assert_eq!(t2.get_value((4, 3)), Some(&Data::Float(1.0)));
        let t3 = wb.worksheet_range("三、依申请公开").unwrap();
        assert_eq!(t3.get_value((4, 3)), Some(&Data::String("未提供".into())));
        assert!(wb.worksheet_range("四、复议诉讼").is_ok());
    }
}
