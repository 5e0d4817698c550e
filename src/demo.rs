//! `gongkai demo`: the whole flow on embedded defaults, on a fresh machine. It lays out a
//! working folder (config, channel files, templates, secrets), starts the emulators (website
//! platform, LED controller, WeChat official account) and the daemon on loopback, submits the bundled 23 disclosures of a 民政局's
//! 2017 over the real HTTP API, waits until every delivery has landed, and prints the
//! per-channel summary and the year's counts. Exit status 0 only when everything landed.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use include_dir::{include_dir, Dir};
use tokio::net::TcpListener;

use crate::app::Application;
use crate::config::{Settings, EXAMPLE_CONFIG};
use crate::domain::DeliveryStatus;
use crate::report;
use crate::sandbox;
use crate::store::DeliveryFilter;

static TEMPLATES: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/templates");
static EXAMPLES: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/examples/disclosures/2017");

const DEMO_APP_KEY: &str = "zpmzj";
const DEMO_APPID: &str = "wx0000000000demo0";
const DEMO_YEAR: i32 = 2017;
/// Attempts of the injected outage (and the demo's `retry.max_attempts` with failures).
const FAULT_ATTEMPTS: u32 = 3;
/// The demo operator of `--with-failures`.
const DEMO_OPERATOR: &str = "demo";

/// The bundled example disclosures, sorted by file name: (file name, JSON).
pub fn examples() -> Vec<(&'static str, &'static [u8])> {
    let mut v: Vec<_> = EXAMPLES
        .files()
        .filter(|f| f.path().extension().is_some_and(|x| x == "json"))
        .map(|f| {
            (
                f.path().file_name().and_then(|n| n.to_str()).unwrap_or(""),
                f.contents(),
            )
        })
        .collect();
    v.sort();
    v
}

/// Writes config.toml, channels/gov_site.toml, templates/ and secrets/ into `dir`, for a
/// website platform at `gov_site_base`, with the website as the only channel (the hall LED
/// screen is left out of every category's routing). Returns the config path.
pub fn lay_out(
    dir: &Path,
    gov_site_base: &str,
    secret: &str,
    api_token: &str,
) -> anyhow::Result<PathBuf> {
    lay_out_inner(dir, gov_site_base, None, None, secret, api_token)
}

/// Like [`lay_out`], plus the hall screen `channels/hall_led.toml` (GB2312 bar, 256×16,
/// scrolling; feed files in `dir/led_feed/hall_led`, HTTP pull, and the BX controller at
/// `led_controller`), routed from every category as in the example config.
pub fn lay_out_with_led(
    dir: &Path,
    gov_site_base: &str,
    led_controller: SocketAddr,
    secret: &str,
    api_token: &str,
) -> anyhow::Result<PathBuf> {
    lay_out_inner(
        dir,
        gov_site_base,
        Some(led_controller),
        None,
        secret,
        api_token,
    )
}

/// The emulated official account the demo publishes to.
pub struct DemoWechat<'a> {
    pub api_base: &'a str,
    pub appid: &'a str,
    pub app_secret: &'a str,
    pub callback_token: &'a str,
}

/// The demo's own layout: [`lay_out_with_led`] plus the WeChat official account
/// `channels/wechat.toml` at `wechat.api_base`, routed from every category, waiting for the
/// website (阅读原文 points at the website copy).
pub fn lay_out_demo(
    dir: &Path,
    gov_site_base: &str,
    led_controller: SocketAddr,
    wechat: &DemoWechat<'_>,
    secret: &str,
    api_token: &str,
) -> anyhow::Result<PathBuf> {
    lay_out_inner(
        dir,
        gov_site_base,
        Some(led_controller),
        Some(wechat),
        secret,
        api_token,
    )
}

fn lay_out_inner(
    dir: &Path,
    gov_site_base: &str,
    led_controller: Option<SocketAddr>,
    wechat: Option<&DemoWechat<'_>>,
    secret: &str,
    api_token: &str,
) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir.join("channels"))?;
    std::fs::create_dir_all(dir.join("secrets"))?;
    std::fs::create_dir_all(dir.join("data/holiday-cn"))?;
    TEMPLATES
        .extract(dir.join("templates"))
        .context("写出模板")?;
    crate::calendar::EMBEDDED
        .extract(dir.join("data/holiday-cn"))
        .context("写出工作日日历数据")?;
    std::fs::write(dir.join("secrets/gov_site.key"), secret)?;
    std::fs::write(dir.join("secrets/api_token"), api_token)?;
    let config = EXAMPLE_CONFIG
        .replace("listen = \"127.0.0.1:8080\"", "listen = \"127.0.0.1:0\"")
        .replace(
            "token_env = \"GONGKAI_API_TOKEN\"",
            "token_file = \"secrets/api_token\"",
        );
    anyhow::ensure!(
        config.contains("127.0.0.1:0")
            && config.contains("secrets/api_token")
            && config.contains(", \"hall_led\"]"),
        "the embedded example config changed: the demo cannot adapt it"
    );
    let config = match (led_controller, wechat) {
        (Some(_), Some(_)) => config.replace(", \"hall_led\"]", ", \"hall_led\", \"wechat\"]"),
        (Some(_), None) => config,
        (None, _) => config.replace(", \"hall_led\"]", "]"),
    };
    let path = dir.join("config.toml");
    std::fs::write(&path, config)?;
    std::fs::write(
        dir.join("channels/gov_site.toml"),
        format!(
            "# 演示用：指向本机的网站平台仿真\nkind = \"gov_site\"\nbase_url = \"{gov_site_base}\"\napp_key = \"{DEMO_APP_KEY}\"\nsecret_file = \"../secrets/gov_site.key\"\ntemplate = \"gov_site/disclosure.json.j2\"\ntimeout = \"10s\"\n"
        ),
    )?;
    if let Some(controller) = led_controller {
        std::fs::write(
            dir.join("channels/hall_led.toml"),
            format!(
                "# 演示用：服务大厅 LED 条屏，控制卡为本机的仿真\nkind = \"led\"\ntemplate = \"led/item.txt.j2\"\nwidth_px = 256\nheight_px = 16\nfont_px = 16\nlines = 1\nmode = \"scroll\"\nencoding = \"gb2312\"\nmax_bytes_per_area = 1024\nrefresh = \"2s\"\n\n[file_sink]\ndir = \"../led_feed/hall_led\"\n\n[http_pull]\nenabled = true\n\n[bx]\naddress = \"{controller}\"\narea_timeout = \"60s\"\ntimeout = \"1s\"\n"
            ),
        )?;
    }
    if let Some(w) = wechat {
        std::fs::write(dir.join("secrets/wechat.key"), w.app_secret)?;
        std::fs::write(dir.join("secrets/wechat_cb.key"), w.callback_token)?;
        std::fs::write(
            dir.join("channels/wechat.toml"),
            format!(
                "# 演示用：微信公众号，接口为本机的仿真\nkind = \"wechat\"\nappid = \"{}\"\nsecret_file = \"../secrets/wechat.key\"\ncallback_token_file = \"../secrets/wechat_cb.key\"\napi_base = \"{}\"\ntemplate = \"wechat/article.html.j2\"\nauthor = \"漳平市民政局\"\nafter = [\"gov_site\"]\ntimeout = \"10s\"\ncheck_every = \"1s\"\n",
                w.appid, w.api_base
            ),
        )?;
    }
    Ok(path)
}

pub async fn run(keep: Option<&Path>, with_failures: bool) -> anyhow::Result<()> {
    let tmp;
    let dir: PathBuf = match keep {
        Some(d) => {
            if d.join("gongkai.db").exists() {
                anyhow::bail!(
                    "{} 中已有 gongkai.db：请换一个空目录（演示从空台账开始）",
                    d.display()
                );
            }
            std::fs::create_dir_all(d).with_context(|| format!("创建目录 {}", d.display()))?;
            d.to_path_buf()
        }
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().to_path_buf()
        }
    };
    println!(
        "gongkai 演示：漳平市民政局 2017 年的 {} 条主动公开信息",
        examples().len()
    );
    println!("工作目录：{}", dir.display());

    let secret = uuid::Uuid::new_v4().simple().to_string();
    let token = uuid::Uuid::new_v4().simple().to_string();
    let wx_secret = uuid::Uuid::new_v4().simple().to_string();
    let wx_cb_token = uuid::Uuid::new_v4().simple().to_string();
    let sandbox = sandbox::spawn(
        TcpListener::bind("127.0.0.1:0").await?,
        sandbox::SandboxConfig {
            gov_site_apps: vec![sandbox::GovSiteApp {
                app_key: DEMO_APP_KEY.into(),
                secret: secret.clone(),
            }],
            wechat_apps: vec![sandbox::wechat::WechatApp {
                appid: DEMO_APPID.into(),
                secret: wx_secret.clone(),
                callback_token: wx_cb_token.clone(),
                callback_url: None,
            }],
            ..Default::default()
        },
    )
    .await;
    println!("1. 网站平台仿真已启动：{}", sandbox.base_url());
    println!("   LED 控制卡仿真已启动：{}", sandbox.led_addr);
    println!("   微信公众号接口仿真已启动：{}", sandbox.wechat_api_base());
    let config = lay_out_demo(
        &dir,
        &format!("{}/gov_site", sandbox.base_url()),
        sandbox.led_addr,
        &DemoWechat {
            api_base: &sandbox.wechat_api_base(),
            appid: DEMO_APPID,
            app_secret: &wx_secret,
            callback_token: &wx_cb_token,
        },
        &secret,
        &token,
    )?;
    // The clerk's figures of the 2017 附表 (the seed report: no application, no fee, no
    // complaint, no 复议 or 诉讼, in the year and cumulatively): data, not inferred.
    std::fs::create_dir_all(dir.join("applications"))?;
    std::fs::write(
        dir.join(format!("applications/{DEMO_YEAR}.toml")),
        format!(
            "# 漳平市民政局 {DEMO_YEAR} 年政务信息公开年度报告附表中经办人填报的数字（均为 0）\n{}",
            crate::applications::template_toml(true, false)
        ),
    )?;
    let mut settings = Settings::load(&config)?;
    if with_failures {
        // Retries in seconds, so the injected outage turns the delivery dead at once.
        settings.retry.schedule = vec![Duration::from_secs(1), Duration::from_secs(2)];
        settings.retry.max_attempts = FAULT_ATTEMPTS;
    }
    let app = Application::build(settings).await?;
    let api = format!("http://{}", app.addr());
    let ledger = app.ledger();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let daemon = tokio::spawn(app.run_until_stopped(stop_rx));
    // The emulated account pushes PUBLISHJOBFINISH to the daemon's callback.
    sandbox
        .state()
        .wechat()
        .set_callback(DEMO_APPID, Some(format!("{api}/wechat/wechat/callback")));
    println!("2. gongkai 守护进程已启动：{api}");

    let client = reqwest::Client::new();
    let examples = examples();
    let mut submitted = 0;
    for (name, body) in &examples {
        let resp = client
            .post(format!("{api}/api/v1/disclosures"))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body.to_vec())
            .send()
            .await
            .with_context(|| format!("提交 {name}"))?;
        let status = resp.status();
        if !status.is_success() {
            let text = resp.text().await.unwrap_or_default();
            anyhow::bail!("提交 {name} 被拒绝（HTTP {status}）：{text}");
        }
        submitted += 1;
    }
    println!("3. 已通过 API 提交 {submitted} 条公开件，等待投递……");

    let started = Instant::now();
    let deadline = Duration::from_secs(120);
    let mut last_line = String::new();
    let rows = loop {
        let rows = ledger
            .store
            .list_deliveries(ledger.department(), &DeliveryFilter::default())
            .await?;
        let done = rows.iter().filter(|d| d.status.is_final()).count();
        let delivered = rows
            .iter()
            .filter(|d| d.status == DeliveryStatus::Delivered)
            .count();
        let line = format!("   投递进度：{done}/{}（已送达 {delivered}）", rows.len());
        if line != last_line {
            println!("{line}");
            last_line = line;
        }
        if done == rows.len() || started.elapsed() > deadline {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    println!("\n4. 各渠道投递结果：");
    let mut channels: Vec<&str> = rows.iter().map(|d| d.channel.as_str()).collect();
    channels.sort();
    channels.dedup();
    let mut all_delivered = !rows.is_empty();
    for ch in channels {
        let of = |st: DeliveryStatus| {
            rows.iter()
                .filter(|d| d.channel == ch && d.status == st)
                .count()
        };
        let total = rows.iter().filter(|d| d.channel == ch).count();
        let delivered = of(DeliveryStatus::Delivered);
        all_delivered &= delivered == total;
        println!(
            "   {ch}：已送达 {delivered}/{total}，失败 {}，未完成 {}",
            of(DeliveryStatus::Dead),
            total - delivered - of(DeliveryStatus::Dead) - of(DeliveryStatus::Withdrawn)
        );
    }
    let state: serde_json::Value = client
        .get(format!("{}/_sandbox/state", sandbox.base_url()))
        .send()
        .await?
        .json()
        .await
        .context("读取仿真平台状态")?;
    let duplicates = state["gov_site"]["duplicates"].as_u64().unwrap_or(0);
    println!(
        "   网站平台仿真：共收到请求 {}，发布稿件 {} 篇，重复提交 {duplicates} 次",
        state["gov_site"]["requests"],
        state["gov_site"]["docs"]
            .as_array()
            .map(Vec::len)
            .unwrap_or(0)
    );

    let led_areas = state["led"]["areas"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let feed_txt = std::fs::read(dir.join("led_feed/hall_led/feed.txt")).unwrap_or_default();
    let feed_lines = feed_txt
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .count();
    println!(
        "   LED 屏 hall_led：播放文件 feed.txt 共 {feed_lines} 条；控制卡仿真收到 {} 帧（ACK {}），显示区 {} 个",
        state["led"]["frames"], state["led"]["acks"], led_areas.len()
    );
    if let Some(text) = led_areas.first().and_then(|a| a["text"].as_str()) {
        let head: String = text.chars().take(40).collect();
        println!("   屏上正在滚动：{head}……");
    }

    let wx = &state["wechat"];
    let wx_duplicates = wx["duplicates"].as_u64().unwrap_or(0);
    let wx_articles = wx["live_articles"].as_u64().unwrap_or(0);
    println!(
        "   微信公众号仿真：发表文章 {wx_articles} 篇，重复发表 {wx_duplicates} 次，收到 PUBLISHJOBFINISH 推送 {} 次",
        wx["callbacks_sent"]
    );
    let mut wx_rows: Vec<_> = rows
        .iter()
        .filter(|d| d.channel == "wechat" && d.status == DeliveryStatus::Delivered)
        .collect();
    wx_rows.sort_by(|a, b| a.disclosure_id.cmp(&b.disclosure_id));
    println!("   公众号文章链接：");
    for d in &wx_rows {
        println!(
            "     {}  {}",
            d.disclosure_id,
            d.url.as_deref().unwrap_or("（无链接）")
        );
    }

    let groups = ledger.store.published_groups(ledger.department()).await?;
    let r = report::build(
        &ledger.settings,
        &groups,
        &ledger.settings.calendar(),
        DEMO_YEAR,
    );
    println!("\n5. {DEMO_YEAR} 年主动公开统计：\n");
    println!("{}", report::to_markdown(&r));

    if with_failures {
        leave_a_failure(&client, &api, &token, &sandbox, &ledger).await?;
        console_walkthrough(&ledger, &api).await?;
        let mut stop = crate::app::shutdown_signal();
        let _ = stop.wait_for(|s| *s).await;
    }

    let _ = stop_tx.send(true);
    daemon.await.context("守护进程")??;
    sandbox.shutdown().await;

    if keep.is_some() {
        println!("数据库与配置保留在 {}，可继续查看：", dir.display());
        println!(
            "  gongkai --config {}/config.toml deliveries",
            dir.display()
        );
        println!(
            "  gongkai --config {}/config.toml report --year {DEMO_YEAR} --format json",
            dir.display()
        );
    }
    if !all_delivered
        || duplicates > 0
        || wx_duplicates > 0
        || feed_lines != examples.len()
        || wx_articles != examples.len() as u64
    {
        anyhow::bail!("演示未全部成功：有投递未送达或平台收到重复提交");
    }
    println!("演示完成：全部 {} 个投递均已送达。", rows.len());
    Ok(())
}

/// `--with-failures`: the website platform goes down (HTTP 503) for every attempt of one
/// more disclosure, dated today, which then ends dead on `gov_site` (and delivered on the
/// screen). The platform is back right after, so an operator's retry delivers it.
async fn leave_a_failure(
    client: &reqwest::Client,
    api: &str,
    token: &str,
    sandbox: &sandbox::SandboxHandle,
    ledger: &crate::delivery::Ledger,
) -> anyhow::Result<()> {
    let fault = serde_json::json!({
        "path": "/gov_site/v1/disclosures",
        "method": "POST",
        "count": FAULT_ATTEMPTS,
        "status": 503,
        "body": "{\"code\":\"MAINTENANCE\",\"message\":\"平台维护中，请稍后再试\"}"
    });
    client
        .post(format!("{}/_sandbox/faults", sandbox.base_url()))
        .json(&fault)
        .send()
        .await?
        .error_for_status()
        .context("向网站平台仿真注入故障")?;
    let (_, first) = examples().into_iter().next().context("没有内置示例")?;
    let mut d: serde_json::Value = serde_json::from_slice(first)?;
    let today = crate::console::views::today(chrono::Utc::now());
    let id = format!("zpmzj-{}-90001", today.format("%Y"));
    d["disclosure_id"] = id.clone().into();
    d["title"] = "关于市民政局服务大厅调整办公时间的通知".into();
    d["short_title"] = "服务大厅调整办公时间".into();
    d["index_no"] = format!("003781234/{}-90001", today.format("%Y")).into();
    d["formed_date"] = today.format("%Y-%m-%d").to_string().into();
    d["publish_date"] = today.format("%Y-%m-%d").to_string().into();
    d["abstract"] = "服务大厅自下周一起调整办公时间。".into();
    let body =
        "<p>自下周一起，市民政局服务大厅办公时间调整为：上午8:00—12:00，下午14:30—17:30。</p>";
    d["body_html"] = body.into();
    // The approval covers the body: its hash as the reviewer saw it.
    d["review"]["content_sha256"] = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(body.as_bytes())).into()
    };
    if let Some(obj) = d.as_object_mut() {
        obj.remove("attachments");
    }
    let resp = client
        .post(format!("{api}/api/v1/disclosures"))
        .bearer_auth(token)
        .json(&d)
        .send()
        .await?;
    if !resp.status().is_success() {
        let text = resp.text().await.unwrap_or_default();
        anyhow::bail!("提交演示故障公开件被拒绝：{text}");
    }
    let started = Instant::now();
    loop {
        let rows = ledger
            .store
            .list_deliveries(
                ledger.department(),
                &DeliveryFilter {
                    disclosure_id: Some(id.clone()),
                    channel: Some("gov_site".into()),
                    ..DeliveryFilter::default()
                },
            )
            .await?;
        if rows.iter().any(|r| r.status == DeliveryStatus::Dead) {
            println!("\n6. 故障注入：网站平台连续 {FAULT_ATTEMPTS} 次返回 503（维护中），{id} 投递网站失败（已停止自动重试）。");
            println!("   平台现已恢复：请在操作台中找到这个失败投递，查看原因并点「立即重试」。");
            return Ok(());
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(60),
            "故障注入后 60 秒内投递未变为失败"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Creates the demo operator (an admin, with a fresh random password) and prints how to sign in.
async fn console_walkthrough(ledger: &crate::delivery::Ledger, api: &str) -> anyhow::Result<()> {
    let password = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
    crate::console::auth::add_operator(
        ledger.store.as_ref(),
        DEMO_OPERATOR,
        &password,
        crate::store::Role::Admin,
    )
    .await?;
    println!("\n7. 操作台：{api}/console");
    println!("   用户名：{DEMO_OPERATOR}");
    println!("   密码：  {password}");
    println!("   年度报告：{api}/console/report?year={DEMO_YEAR}");
    println!("   服务持续运行，按 Ctrl-C 结束。");
    Ok(())
}
