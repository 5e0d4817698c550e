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
