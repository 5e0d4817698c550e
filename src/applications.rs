//! The clerk's figures the ledger cannot see: applications (依申请公开), 行政复议 and 行政诉讼.
//! Owns: reading them from a TOML or CSV file, the schema of every row (2017 附表 rows; 2021
//! tables 三 and 四), and the tables' own rules (勾稽关系), each broken cell named. Never
//! invents a number: an absent file gives no figures and the report says 未提供.
//!
//! TOML: one table per section, one array per row:
//!
//! ```toml
//! [fubiao]                      # 2017 附表：[本年度, 历年累计]
//! applications_total = [0, 0]
//! [table3]                      # 2021 表三：7 列（自然人、商业企业、科研机构、社会公益组织、法律服务机构、其他、总计）
//! new = [0, 0, 0, 0, 0, 0, 0]
//! [table4]                      # 2021 表四：5 列（结果维持、结果纠正、其他结果、尚未审结、总计）
//! reconsideration = [0, 0, 0, 0, 0]
//! ```
//!
//! CSV: `section,row,value1,value2,...` per line (a first line starting with `section` is a
//! header; empty lines and lines starting with `#` are skipped).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

/// A row of a section: its id, label and unit.
pub struct RowDef {
    pub id: &'static str,
    pub label: &'static str,
}

pub const FUBIAO_COLS: [&str; 2] = ["本年度", "历年累计"];

/// The 2017 附表 rows the clerk fills (the proactive rows come from the ledger).
pub const FUBIAO_ROWS: [RowDef; 13] = [
    RowDef {
        id: "applications_total",
        label: "受理政务信息公开申请总数",
    },
    RowDef {
        id: "applications_in_person",
        label: "其中：1.当面申请数",
    },
    RowDef {
        id: "applications_online",
        label: "2.网上申请数",
    },
    RowDef {
        id: "applications_letter_fax",
        label: "3.信函、传真申请数",
    },
    RowDef {
        id: "replies_total",
        label: "对申请的答复总数",
    },
    RowDef {
        id: "replies_granted",
        label: "其中：1.同意公开答复数",
    },
    RowDef {
        id: "replies_partial",
        label: "2.同意部分公开答复数",
    },
    RowDef {
        id: "replies_refused",
        label: "3.不予公开答复数",
    },
    RowDef {
        id: "replies_other",
        label: "4.其他类型答复数",
    },
    RowDef {
        id: "fee_waived",
        label: "政务信息公开收费减免金额",
    },
    RowDef {
        id: "complaints",
        label: "接受行政申诉、举报数",
    },
    RowDef {
        id: "reconsiderations",
        label: "行政复议数",
    },
    RowDef {
        id: "lawsuits",
        label: "行政诉讼数",
    },
];

pub fn fubiao_unit(id: &str) -> &'static str {
    if id == "fee_waived" {
        "元"
    } else {
        "件"
    }
}

pub const TABLE3_COLS: [&str; 7] = [
    "自然人",
    "商业企业",
    "科研机构",
    "社会公益组织",
    "法律服务机构",
    "其他",
    "总计",
];

pub const TABLE3_ROWS: [RowDef; 25] = [
    RowDef {
        id: "new",
        label: "一、本年新收政府信息公开申请数量",
    },
    RowDef {
        id: "carried_over",
        label: "二、上年结转政府信息公开申请数量",
    },
    RowDef {
        id: "result_1",
        label: "三、本年度办理结果 （一）予以公开",
    },
    RowDef {
        id: "result_2",
        label: "（二）部分公开（区分处理的，只计这一情形，不计其他情形）",
    },
    RowDef {
        id: "result_3_1",
        label: "（三）不予公开 1.属于国家秘密",
    },
    RowDef {
        id: "result_3_2",
        label: "2.其他法律行政法规禁止公开",
    },
    RowDef {
        id: "result_3_3",
        label: "3.危及“三安全一稳定”",
    },
    RowDef {
        id: "result_3_4",
        label: "4.保护第三方合法权益",
    },
    RowDef {
        id: "result_3_5",
        label: "5.属于三类内部事务信息",
    },
    RowDef {
        id: "result_3_6",
        label: "6.属于四类过程性信息",
    },
    RowDef {
        id: "result_3_7",
        label: "7.属于行政执法案卷",
    },
    RowDef {
        id: "result_3_8",
        label: "8.属于行政查询事项",
    },
    RowDef {
        id: "result_4_1",
        label: "（四）无法提供 1.本机关不掌握相关政府信息",
    },
    RowDef {
        id: "result_4_2",
        label: "2.没有现成信息需要另行制作",
    },
    RowDef {
        id: "result_4_3",
        label: "3.补正后申请内容仍不明确",
    },
    RowDef {
        id: "result_5_1",
        label: "（五）不予处理 1.信访举报投诉类申请",
    },
    RowDef {
        id: "result_5_2",
        label: "2.重复申请",
    },
    RowDef {
        id: "result_5_3",
        label: "3.要求提供公开出版物",
    },
    RowDef {
        id: "result_5_4",
        label: "4.无正当理由大量反复申请",
    },
    RowDef {
        id: "result_5_5",
        label: "5.要求行政机关确认或重新出具已获取信息",
    },
    RowDef {
        id: "result_6_1",
        label: "（六）其他处理 1.申请人无正当理由逾期不补正、行政机关不再处理其政府信息公开申请",
    },
    RowDef {
        id: "result_6_2",
        label: "2.申请人逾期未按收费通知要求缴纳费用、行政机关不再处理其政府信息公开申请",
    },
    RowDef {
        id: "result_6_3",
        label: "3.其他",
    },
    RowDef {
        id: "result_total",
        label: "（七）总计",
    },
    RowDef {
        id: "carry_forward",
        label: "四、结转下年度继续办理",
    },
];

pub const TABLE4_COLS: [&str; 5] = ["结果维持", "结果纠正", "其他结果", "尚未审结", "总计"];

pub const TABLE4_ROWS: [RowDef; 3] = [
    RowDef {
        id: "reconsideration",
        label: "行政复议",
    },
    RowDef {
        id: "litigation_direct",
        label: "行政诉讼 未经复议直接起诉",
    },
    RowDef {
        id: "litigation_after",
        label: "行政诉讼 复议后起诉",
    },
];

pub fn table3_rows() -> impl Iterator<Item = &'static RowDef> {
    TABLE3_ROWS.iter()
}

/// One section of the clerk's file: row id -> values.
pub type Section = BTreeMap<String, Vec<f64>>;

#[derive(Debug, Clone, Default, Serialize)]
pub struct Applications {
    /// The file the figures came from.
    pub source: String,
    pub fubiao: Option<Section>,
    pub table3: Option<Section>,
    pub table4: Option<Section>,
}

fn schema(section: &str) -> Option<(Vec<&'static str>, usize)> {
    match section {
        "fubiao" => Some((FUBIAO_ROWS.iter().map(|r| r.id).collect(), 2)),
        "table3" => Some((table3_rows().map(|r| r.id).collect(), 7)),
        "table4" => Some((TABLE4_ROWS.iter().map(|r| r.id).collect(), 5)),
        _ => None,
    }
}

fn section_zh(section: &str) -> &'static str {
    match section {
        "fubiao" => "2017 附表",
        "table3" => "表三",
        _ => "表四",
    }
}

/// Reads the clerk's file (`.toml` or `.csv` by extension) and checks every row's shape and
/// values; every problem is reported at once, naming the file, the row (line) and the cell.
pub fn load(path: &Path) -> anyhow::Result<Applications> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("读取依申请公开数据文件 {}：{e}", path.display()))?;
    let file = path.display().to_string();
    let is_csv = path
        .extension()
        .is_some_and(|x| x.eq_ignore_ascii_case("csv"));
    let (raw, mut problems) = if is_csv {
        parse_csv(&file, &text)
    } else {
        parse_toml(&file, &text)
    };
    let mut apps = Applications {
        source: file.clone(),
        ..Applications::default()
    };
    for (section, (rows, where_)) in raw {
        let Some((ids, width)) = schema(&section) else {
            problems.push(format!(
                "{file}：未知的部分 [{section}]（应为 fubiao、table3 或 table4）"
            ));
            continue;
        };
        let mut out = Section::new();
        for (row, (values, at)) in rows {
            if !ids.contains(&row.as_str()) {
                problems.push(format!(
                    "{file} {at}：{} 没有行 {row:?}（可用：{}）",
                    section_zh(&section),
                    ids.join("、")
                ));
                continue;
            }
            if values.len() != width {
                problems.push(format!(
                    "{file} {at}：{section}.{row} 应有 {width} 个数，实际 {} 个",
                    values.len()
                ));
                continue;
            }
            for (i, v) in values.iter().enumerate() {
                let money = section == "fubiao" && row == "fee_waived";
                if !v.is_finite() || *v < 0.0 || (!money && v.fract() != 0.0) {
                    problems.push(format!(
                        "{file} {at}：{} 第 {} 列：{v} 不是{}",
                        cell_id(&section, &row, i),
                        i + 1,
                        if money {
                            "非负金额"
                        } else {
                            "非负整数"
                        }
                    ));
                }
            }
            out.insert(row, values);
        }
        for id in &ids {
            if !out.contains_key(*id) && !problems.iter().any(|p| p.contains(&format!(".{id} "))) {
                problems.push(format!(
                    "{file} {where_}：{} 缺少行 {section}.{id}（没有数据请填 0，不要留空）",
                    section_zh(&section)
                ));
            }
        }
        match section.as_str() {
            "fubiao" => apps.fubiao = Some(out),
            "table3" => apps.table3 = Some(out),
            _ => apps.table4 = Some(out),
        }
    }
    if problems.is_empty() {
        problems.extend(check(&apps));
    }
    if problems.is_empty() {
        Ok(apps)
    } else {
        anyhow::bail!(
            "依申请公开数据文件 {file} 有 {} 处问题：\n  {}",
            problems.len(),
            problems.join("\n  ")
        )
    }
}

/// The cell id used in messages and `--explain`: `table3.new.c3` is column 3 of row `new`.
pub fn cell_id(section: &str, row: &str, col: usize) -> String {
    format!("{section}.{row}.c{}", col + 1)
}

type Raw = BTreeMap<String, (BTreeMap<String, (Vec<f64>, String)>, String)>;

fn parse_toml(file: &str, text: &str) -> (Raw, Vec<String>) {
    let mut problems = Vec::new();
    let mut raw = Raw::new();
    let value: toml::Table = match text.parse() {
        Ok(v) => v,
        Err(e) => return (raw, vec![format!("{file}：不是有效的 TOML：{e}")]),
    };
    for (section, v) in value {
        let Some(t) = v.as_table() else {
            problems.push(format!("{file}：{section} 应为表 [{section}]"));
            continue;
        };
        let mut rows = BTreeMap::new();
        for (row, v) in t {
            let at = format!("键 {section}.{row}");
            let Some(arr) = v.as_array() else {
                problems.push(format!("{file} {at}：应为数组，如 [0, 0]"));
                continue;
            };
            let mut values = Vec::new();
            for (i, x) in arr.iter().enumerate() {
                match x.as_integer().map(|n| n as f64).or_else(|| x.as_float()) {
                    Some(n) => values.push(n),
                    None => {
                        problems.push(format!(
                            "{file} {at}：{} 第 {} 列：{x} 不是数字",
                            cell_id(&section, row, i),
                            i + 1
                        ));
                        values.push(0.0);
                    }
                }
            }
            rows.insert(row.clone(), (values, at));
        }
        raw.insert(section.clone(), (rows, format!("[{section}]")));
    }
    (raw, problems)
}

fn parse_csv(file: &str, text: &str) -> (Raw, Vec<String>) {
    let mut problems = Vec::new();
    let mut raw = Raw::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim().trim_start_matches('\u{feff}');
        if line.is_empty() || line.starts_with('#') || (n == 0 && line.starts_with("section")) {
            continue;
        }
        let at = format!("第 {} 行", n + 1);
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() < 3 {
            problems.push(format!(
                "{file} {at}：应为 section,row,数值…，如 table3,new,0,0,0,0,0,0,0"
            ));
            continue;
        }
        let (section, row) = (fields[0].to_string(), fields[1].to_string());
        let mut values = Vec::new();
        for (i, f) in fields[2..].iter().enumerate() {
            match f.parse::<f64>() {
                Ok(v) => values.push(v),
                Err(_) => {
                    problems.push(format!(
                        "{file} {at}：{} 第 {} 列：{f:?} 不是数字",
                        cell_id(&section, &row, i),
                        i + 1
                    ));
                    values.push(0.0);
                }
            }
        }
        let entry = raw
            .entry(section.clone())
            .or_insert_with(|| (BTreeMap::new(), at.clone()));
        if entry.0.contains_key(&row) {
            problems.push(format!("{file} {at}：{section}.{row} 重复"));
            continue;
        }
        entry.0.insert(row, (values, at));
    }
    (raw, problems)
}

fn fmt(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

/// The tables' own rules, one message per broken cell.
pub fn check(a: &Applications) -> Vec<String> {
    let mut p = Vec::new();
    let src = &a.source;
    if let Some(s) = &a.fubiao {
        for (total, parts) in [
            (
                "applications_total",
                &[
                    "applications_in_person",
                    "applications_online",
                    "applications_letter_fax",
                ][..],
            ),
            (
                "replies_total",
                &[
                    "replies_granted",
                    "replies_partial",
                    "replies_refused",
                    "replies_other",
                ][..],
            ),
        ] {
            for (c, col) in FUBIAO_COLS.iter().enumerate() {
                let sum: f64 = parts.iter().map(|r| s[*r][c]).sum();
                if s[total][c] != sum {
                    p.push(format!(
                        "{src}：2017 附表 {}（{col}）= {}，但其中各项之和 = {}",
                        cell_id("fubiao", total, c),
                        fmt(s[total][c]),
                        fmt(sum)
                    ));
                }
            }
        }
    }
    if let Some(s) = &a.table3 {
        let results: Vec<&str> = table3_rows()
            .map(|r| r.id)
            .filter(|id| id.starts_with("result_") && *id != "result_total")
            .collect();
        for row in table3_rows() {
            let v = &s[row.id];
            let sum: f64 = v[..6].iter().sum();
            if v[6] != sum {
                p.push(format!(
                    "{src}：表三 {}（{} / 总计）= {}，但前 6 列之和 = {}",
                    cell_id("table3", row.id, 6),
                    row.label,
                    fmt(v[6]),
                    fmt(sum)
                ));
            }
        }
        for (c, col) in TABLE3_COLS.iter().enumerate() {
            let sum: f64 = results.iter().map(|r| s[*r][c]).sum();
            if s["result_total"][c] != sum {
                p.push(format!(
                    "{src}：表三 {}（（七）总计 / {col}）= {}，但（一）至（六）各项之和 = {}",
                    cell_id("table3", "result_total", c),
                    fmt(s["result_total"][c]),
                    fmt(sum)
                ));
            }
            let left = s["new"][c] + s["carried_over"][c];
            let right = s["result_total"][c] + s["carry_forward"][c];
            if left != right {
                p.push(format!(
                    "{src}：表三 第 {} 列（{col}）不符合勾稽关系 第一项 + 第二项 = 第三项 + 第四项：{} + {} = {}，而 {} + {} = {}（涉及 {}、{}、{}、{}）",
                    c + 1,
                    fmt(s["new"][c]),
                    fmt(s["carried_over"][c]),
                    fmt(left),
                    fmt(s["result_total"][c]),
                    fmt(s["carry_forward"][c]),
                    fmt(right),
                    cell_id("table3", "new", c),
                    cell_id("table3", "carried_over", c),
                    cell_id("table3", "result_total", c),
                    cell_id("table3", "carry_forward", c),
                ));
            }
        }
    }
    if let Some(s) = &a.table4 {
        for row in &TABLE4_ROWS {
            let v = &s[row.id];
            let sum: f64 = v[..4].iter().sum();
            if v[4] != sum {
                p.push(format!(
                    "{src}：表四 {}（{} / 总计）= {}，但前 4 列之和 = {}",
                    cell_id("table4", row.id, 4),
                    row.label,
                    fmt(v[4]),
                    fmt(sum)
                ));
            }
        }
    }
    p
}

/// The clerk's file for `year`: `--applications FILE`, else `report.applications_dir/{year}.toml`
/// or `.csv` (relative to the config folder). `None` when there is none.
pub fn find(dir: &Path, year: i32) -> Option<std::path::PathBuf> {
    ["toml", "csv"]
        .iter()
        .map(|ext| dir.join(format!("{year}.{ext}")))
        .find(|p| p.exists())
}

/// A template with every row at zero, for the clerk to fill.
pub fn template_toml(fubiao: bool, tables_2021: bool) -> String {
    let mut s = String::from(
        "# 依申请公开、行政复议、行政诉讼数据（经办人填写；gongkai 只核对，不推算）\n",
    );
    if fubiao {
        s.push_str("\n# 2017 附表：每行 [本年度, 历年累计]\n[fubiao]\n");
        for r in &FUBIAO_ROWS {
            s.push_str(&format!(
                "{} = [0, 0]  # {}（{}）\n",
                r.id,
                r.label,
                fubiao_unit(r.id)
            ));
        }
    }
    if tables_2021 {
        s.push_str(&format!(
            "\n# 表三：每行 7 列：{}\n[table3]\n",
            TABLE3_COLS.join("、")
        ));
        for r in table3_rows() {
            s.push_str(&format!(
                "{} = [0, 0, 0, 0, 0, 0, 0]  # {}\n",
                r.id, r.label
            ));
        }
        s.push_str(&format!(
            "\n# 表四：每行 5 列：{}\n[table4]\n",
            TABLE4_COLS.join("、")
        ));
        for r in &TABLE4_ROWS {
            s.push_str(&format!("{} = [0, 0, 0, 0, 0]  # {}\n", r.id, r.label));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        (dir, p)
    }

    #[test]
    fn the_zero_template_loads_and_passes_every_rule() {
        let (_d, p) = write("2021.toml", &template_toml(true, true));
        let a = load(&p).unwrap();
        assert_eq!(a.table3.unwrap()["new"], vec![0.0; 7]);
        assert_eq!(a.fubiao.unwrap()["lawsuits"], vec![0.0; 2]);
    }

    #[test]
    fn a_broken_balance_names_the_column_and_the_cells() {
        let text = template_toml(false, true)
            .replace("new = [0, 0, 0, 0, 0, 0, 0]", "new = [3, 0, 0, 0, 0, 0, 3]")
            .replace(
                "result_1 = [0, 0, 0, 0, 0, 0, 0]",
                "result_1 = [2, 0, 0, 0, 0, 0, 2]",
            )
            .replace(
                "result_total = [0, 0, 0, 0, 0, 0, 0]",
                "result_total = [2, 0, 0, 0, 0, 0, 2]",
            );
        let (_d, p) = write("2021.toml", &text);
        let e = load(&p).unwrap_err().to_string();
        assert!(e.contains("第 1 列（自然人）不符合勾稽关系"), "{e}");
        assert!(e.contains("3 + 0 = 3，而 2 + 0 = 2"), "{e}");
        assert!(e.contains("table3.carry_forward.c1"), "{e}");
        assert!(e.contains("第 7 列（总计）"), "{e}");
        assert!(e.contains("2021.toml"), "{e}");
        // Balanced once one is carried forward.
        let ok = text.replace(
            "carry_forward = [0, 0, 0, 0, 0, 0, 0]",
            "carry_forward = [1, 0, 0, 0, 0, 0, 1]",
        );
        let (_d, p) = write("2021.toml", &ok);
        load(&p).unwrap();
    }

    #[test]
    fn csv_errors_name_the_file_line_and_cell() {
        let (_d, p) = write(
            "2017.csv",
            "section,row,year,cumulative\nfubiao,applications_total,1,x\nfubiao,nope,0,0\n",
        );
        let e = load(&p).unwrap_err().to_string();
        assert!(
            e.contains("2017.csv 第 2 行：fubiao.applications_total.c2"),
            "{e}"
        );
        assert!(e.contains("第 3 行：2017 附表 没有行 \"nope\""), "{e}");
        assert!(e.contains("缺少行 fubiao.lawsuits"), "{e}");
    }

    #[test]
    fn a_row_total_that_is_not_the_sum_of_its_parts_is_named() {
        let text = template_toml(true, false)
            .replace("applications_total = [0, 0]", "applications_total = [2, 2]")
            .replace(
                "applications_online = [0, 0]",
                "applications_online = [1, 2]",
            );
        let (_d, p) = write("2017.toml", &text);
        let e = load(&p).unwrap_err().to_string();
        assert!(
            e.contains("fubiao.applications_total.c1（本年度）= 2，但其中各项之和 = 1"),
            "{e}"
        );
        assert!(!e.contains("applications_total.c2"), "{e}");
    }
}
