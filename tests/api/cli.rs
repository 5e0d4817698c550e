//! The `gongkai` binary as an operator uses it: the demo, the report, submit, retry.

use std::process::{Command, Output};

use gongkai::domain::{AttemptTrigger, DeliveryStatus};
use serde_json::{json, Value};

use crate::helpers::*;

fn gongkai(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gongkai"))
        .args(args)
        .env_remove("GONGKAI_CONFIG")
        .output()
        .expect("run gongkai")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn the_demo_delivers_all_23_items_and_the_report_counts_them_with_the_baseline() {
    let dir = tempfile::tempdir().unwrap();
    let keep = dir.path().join("demo");
    let out = gongkai(&["demo", "--keep", keep.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "demo failed:\n{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let stdout = text(&out.stdout);
    assert!(stdout.contains("gov_site：已送达 23/23"), "{stdout}");
    // The hall LED screen got the same 23, on the controller and in the feed file.
    assert!(stdout.contains("hall_led：已送达 23/23"), "{stdout}");
    assert!(stdout.contains("feed.txt 共 23 条"), "{stdout}");
    // The official account published the same 23, once each, and the summary links them.
    assert!(stdout.contains("wechat：已送达 23/23"), "{stdout}");
    assert!(stdout.contains("发表文章 23 篇，重复发表 0 次"), "{stdout}");
    assert_eq!(stdout.matches("/wechat_api/s/ART_").count(), 23, "{stdout}");

    let config = keep.join("config.toml");
    let out = gongkai(&[
        "--config",
        config.to_str().unwrap(),
        "report",
        "--year",
        "2017",
        "--format",
        "json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["year"], 2017);
    assert_eq!(r["total"], json!({"year": 23, "cumulative": 429}));
    let site = r["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "gov_site")
        .unwrap();
    assert_eq!(
        (site["year"].as_u64(), site["cumulative"].as_u64()),
        (Some(23), Some(429))
    );
    let count = |code: &str| {
        r["categories"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["code"] == code)
            .unwrap()["year"]
            .as_u64()
            .unwrap()
    };
    let counts: Vec<u64> = ["jgzn", "zcfg", "ghjh", "zdxm", "mzfp", "kjwt"]
        .iter()
        .map(|c| count(c))
        .collect();
    assert_eq!(counts, [7, 4, 2, 2, 6, 2]);
    assert!(r["summary"]
        .as_str()
        .unwrap()
        .starts_with("2017年共主动公开政府信息23条，其中：机构职能类信息7条"));

    // The 2017 附表 of the seed report: ledger rows and the clerk's zeros.
    assert_eq!(r["layout"], "2017");
    let row = |id: &str| {
        r["fubiao"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["id"] == id)
            .unwrap_or_else(|| panic!("no fubiao row {id}"))
            .clone()
    };
    for (id, y, c) in [
        ("proactive", 23, 429),
        ("gov_site", 23, 429),
        ("gazette", 0, 0),
    ] {
        assert_eq!(
            (row(id)["year"].clone(), row(id)["cumulative"].clone()),
            (json!(y), json!(c)),
            "{id}"
        );
    }
    for id in [
        "applications_total",
        "applications_in_person",
        "applications_online",
        "applications_letter_fax",
        "replies_total",
        "replies_granted",
        "replies_partial",
        "replies_refused",
        "replies_other",
        "fee_waived",
        "complaints",
        "reconsiderations",
        "lawsuits",
    ] {
        assert_eq!(
            (row(id)["year"].clone(), row(id)["cumulative"].clone()),
            (json!(0), json!(0)),
            "{id}"
        );
        assert_eq!(row(id)["source"], "applications");
    }
    assert_eq!(r["applications"]["provided"], true);
    let draft = r["draft"].as_str().unwrap();
    assert!(
        draft.starts_with("2017年共主动公开政府信息23条，其中：机构职能类信息7条，政策、法规性文件类信息4条，规划计划类信息2条，重大建设项目、为民办实事类信息2条，民政扶贫救灾社会社保就业类信息6条，科教文体卫生类信息2条。"),
        "{draft}"
    );
    assert!(
        draft.contains("通过政府网站公开23条") && draft.contains("2017年度未收到政府信息公开申请"),
        "{draft}"
    );

    // The xlsx reads back with the same figures.
    let xlsx = dir.path().join("2017.xlsx");
    let out = gongkai(&[
        "--config",
        config.to_str().unwrap(),
        "report",
        "--year",
        "2017",
        "--format",
        "xlsx",
        "--out",
        xlsx.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    {
        use calamine::{open_workbook, Data, Reader, Xlsx};
        let mut wb: Xlsx<_> = open_workbook(&xlsx).unwrap();
        let sheet = wb.worksheet_range("附表").unwrap();
        assert_eq!(
            sheet.get_value((1, 2)),
            Some(&Data::String("2017年度".into()))
        );
        assert_eq!(
            sheet.get_value((2, 0)),
            Some(&Data::String("主动公开文件数".into()))
        );
        assert_eq!(sheet.get_value((2, 2)), Some(&Data::Float(23.0)));
        assert_eq!(sheet.get_value((2, 3)), Some(&Data::Float(429.0)));
        assert_eq!(sheet.get_value((3, 3)), Some(&Data::Float(429.0)));
        assert_eq!(
            sheet.get_value((17, 0)),
            Some(&Data::String("行政诉讼数".into()))
        );
        assert_eq!(sheet.get_value((17, 3)), Some(&Data::Float(0.0)));
        assert!(wb.sheet_names().contains(&"按渠道与分类".to_string()));
    }

    // --explain lists the disclosures behind a cell.
    let out = gongkai(&[
        "--config",
        config.to_str().unwrap(),
        "report",
        "--year",
        "2017",
        "--explain",
        "category.jgzn.year",
        "--format",
        "json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let e: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(e["count"], 7);
    assert_eq!(e["items"][0]["disclosure_id"], "zpmzj-2017-00001");
    assert_eq!(e["items"][0]["title"], "漳平市民政局主要职责");
    let out = gongkai(&[
        "--config",
        config.to_str().unwrap(),
        "report",
        "--year",
        "2017",
        "--explain",
        "total.cumulative",
    ]);
    let t = text(&out.stdout);
    assert!(
        t.contains("23 条公开件") && t.contains("基数 406 条"),
        "{t}"
    );

    let out = gongkai(&["--config", config.to_str().unwrap(), "deliveries", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    // 23 to the website, 23 to the hall LED screen and 23 to the official account.
    assert_eq!(rows.len(), 69);
    assert_eq!(
        rows.iter().filter(|d| d["channel"] == "gov_site").count(),
        23
    );
    for key in [
        "id",
        "disclosure_id",
        "revision",
        "channel",
        "kind",
        "status",
        "attempts",
        "remote_id",
        "url",
        "last_error",
    ] {
        assert!(rows[0].get(key).is_some(), "deliveries --json lacks {key}");
    }
    assert!(rows.iter().all(|d| d["status"] == "delivered"));

    // The markdown report reads like the 附表.
    let out = gongkai(&[
        "--config",
        config.to_str().unwrap(),
        "report",
        "--year",
        "2017",
    ]);
    let md = text(&out.stdout);
    assert!(md.contains("| 主动公开信息数 | 条 | 23 | 429 |"), "{md}");
}

#[tokio::test]
async fn submit_of_a_bad_file_exits_non_zero_and_lists_every_problem() {
    let app = spawn_app().await;
    let mut d = disclosure("zpmzj-2017-00600", 1);
    d["formed_date"] = json!("2017-13-45");
    d["title"] = json!("");
    let file = app.dir.path().join("bad.json");
    std::fs::write(&file, serde_json::to_vec(&d).unwrap()).unwrap();
    let out = gongkai(&[
        "--config",
        app.config_path.to_str().unwrap(),
        "submit",
        file.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("formed_date") && err.contains("title"),
        "{err}"
    );
    assert!(app.deliveries().await.is_empty());
}

#[tokio::test]
async fn submit_then_retry_from_the_cli_records_a_manual_attempt_by_the_operator() {
    let app = spawn_app().await;
    let config = app.config_path.to_str().unwrap().to_string();
    let file = app.dir.path().join("ok.json");
    std::fs::write(
        &file,
        serde_json::to_vec(&disclosure("zpmzj-2017-00601", 1)).unwrap(),
    )
    .unwrap();
    let out = gongkai(&["--config", &config, "submit", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("已接收"));

    app.fault(json!({"path": "/gov_site/v1/disclosures", "count": 1, "status": 400}))
        .await;
    app.run_worker_until_idle().await;
    let d = app.deliveries().await.remove(0);
    assert_eq!(d.status, DeliveryStatus::Dead);

    let out = gongkai(&["--config", &config, "deliveries", "--status", "dead"]);
    assert!(text(&out.stdout).contains("zpmzj-2017-00601"));
    let out = gongkai(&["--config", &config, "deliveries", "show", &d.id.to_string()]);
    assert!(
        text(&out.stdout).contains("HTTP 400"),
        "{}",
        text(&out.stdout)
    );

    let out = gongkai(&[
        "--config",
        &config,
        "retry",
        &d.id.to_string(),
        "--by",
        "李股长",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    app.run_worker_until_idle().await;
    let d = app.deliveries().await.remove(0);
    assert_eq!(d.status, DeliveryStatus::Delivered);
    let last = app.attempts(d.id).await.pop().unwrap();
    assert_eq!(last.trigger, AttemptTrigger::Manual);
    assert_eq!(last.requested_by.as_deref(), Some("李股长"));
}

#[test]
fn check_config_reports_every_problem_at_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("channels")).unwrap();
    std::fs::write(
        dir.path().join("channels/site.toml"),
        "kind = \"gov_site\"\nbase_url = \"ftp://x\"\napp_key = \"\"\n",
    )
    .unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        "database_url = \"mysql://x\"\n[worker]\nconcurrency = 0\n[[categories]]\ncode = \"a\"\nname = \"甲\"\nchannels = [\"nosuch\"]\n",
    )
    .unwrap();
    let out = gongkai(&["--config", config.to_str().unwrap(), "check-config"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    for want in [
        "base_url",
        "app_key",
        "secret_env",
        "database_url",
        "worker.concurrency",
        "nosuch",
        "模板目录",
    ] {
        assert!(err.contains(want), "{want} missing from:\n{err}");
    }
}

#[test]
fn a_missing_config_file_says_how_to_make_one() {
    let out = gongkai(&["--config", "/nonexistent/gongkai.toml", "deliveries"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("default-config"));
}

#[tokio::test]
async fn an_environment_variable_overrides_a_config_key() {
    let app = spawn_app().await;
    let out = Command::new(env!("CARGO_BIN_EXE_gongkai"))
        .args([
            "--config",
            app.config_path.to_str().unwrap(),
            "check-config",
        ])
        .env("GONGKAI__WORKER__CONCURRENCY", "0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("worker.concurrency"),
        "{}",
        text(&out.stderr)
    );
    let out = gongkai(&[
        "--config",
        app.config_path.to_str().unwrap(),
        "check-config",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[tokio::test]
async fn status_lists_late_and_near_items_per_channel_in_chinese_and_as_json() {
    let app = spawn_app().await;
    let config = app.config_path.to_str().unwrap().to_string();
    // Formed 2017-04-03 (mzfp: 20 working days, due 2017-05-03); another formed 2017-04-20.
    let mut fresh = disclosure("zpmzj-2017-00702", 1);
    fresh["formed_date"] = json!("2017-04-20");
    fresh["publish_date"] = json!("2017-04-21");
    for (name, d) in [
        ("a.json", disclosure("zpmzj-2017-00701", 1)),
        ("b.json", fresh),
    ] {
        let file = app.dir.path().join(name);
        std::fs::write(&file, serde_json::to_vec(&d).unwrap()).unwrap();
        let out = gongkai(&["--config", &config, "submit", file.to_str().unwrap()]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    // Nothing delivered yet (the worker has not run).
    let out = gongkai(&["--config", &config, "status", "--today", "2017-04-25"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(s.contains("渠道 gov_site：超期 0 条，临近期限 1 条"), "{s}");
    assert!(
        s.contains("zpmzj-2017-00701") && s.contains("临近期限"),
        "{s}"
    );
    assert!(!s.contains("zpmzj-2017-00702"), "{s}");
    assert!(s.contains("工作日日历"), "{s}");

    let out = gongkai(&[
        "--config",
        &config,
        "status",
        "--today",
        "2017-06-01",
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["today"], "2017-06-01");
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{v}");
    assert!(items.iter().all(|i| i["state"] == "late"));
    assert_eq!(items[0]["disclosure_id"], "zpmzj-2017-00701");
    assert_eq!(items[0]["due"], "2017-05-03");
    let site = v["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "gov_site")
        .unwrap();
    assert_eq!(
        (site["late"].as_u64(), site["near"].as_u64()),
        (Some(2), Some(0))
    );
    assert!(v["wechat"].is_array());
    assert_eq!(v["calendar"]["missing_years"], json!([]));

    // Once delivered, nothing is listed; and the status still exits 0 for a year without data.
    app.run_worker_until_idle().await;
    let out = gongkai(&[
        "--config",
        &config,
        "status",
        "--today",
        "2031-03-02",
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["items"], json!([]));
    assert!(v["calendar"]["missing_years"]
        .as_array()
        .unwrap()
        .contains(&json!(2031)));
}

#[tokio::test]
async fn report_refuses_an_applications_file_that_breaks_the_table_rule_and_names_the_cell() {
    let app = spawn_app().await;
    let config = app.config_path.to_str().unwrap().to_string();
    let file = app.dir.path().join("2021.csv");
    let mut csv =
        String::from("section,row,自然人,商业企业,科研机构,社会公益组织,法律服务机构,其他,总计\n");
    for row in gongkai::applications::table3_rows() {
        let v = match row.id {
            "new" => "2,0,0,0,0,0,2",
            "result_1" | "result_total" => "1,0,0,0,0,0,1",
            _ => "0,0,0,0,0,0,0",
        };
        csv.push_str(&format!("table3,{},{v}\n", row.id));
    }
    for row in ["reconsideration", "litigation_direct", "litigation_after"] {
        csv.push_str(&format!("table4,{row},0,0,0,0,0\n"));
    }
    std::fs::write(&file, &csv).unwrap();
    let report = |f: &str| {
        gongkai(&[
            "--config",
            &config,
            "report",
            "--year",
            "2021",
            "--format",
            "json",
            "--applications",
            f,
        ])
    };
    let out = report(file.to_str().unwrap());
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("2021.csv"), "{err}");
    assert!(
        err.contains("表三 第 1 列（自然人）不符合勾稽关系 第一项 + 第二项 = 第三项 + 第四项：2 + 0 = 2，而 1 + 0 = 1"),
        "{err}"
    );
    assert!(err.contains("table3.carry_forward.c1"), "{err}");

    // One application carried forward: balanced, and the figures are in the 2021 tables.
    let fixed = csv.replace(
        "table3,carry_forward,0,0,0,0,0,0,0",
        "table3,carry_forward,1,0,0,0,0,0,1",
    );
    std::fs::write(&file, fixed).unwrap();
    let out = report(file.to_str().unwrap());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["layout"], "2021");
    assert_eq!(r["table3"]["rows"][0]["id"], "new");
    assert_eq!(
        r["table3"]["rows"][0]["values"],
        json!([2, 0, 0, 0, 0, 0, 2])
    );
    assert_eq!(r["table4"]["rows"][0]["values"], json!([0, 0, 0, 0, 0]));
    assert!(r["fubiao"].is_null());
    assert!(r["table2"]["art20_1"].is_array());
    assert!(r["draft"]
        .as_str()
        .unwrap()
        .contains("受理政府信息公开申请2件"));
}
