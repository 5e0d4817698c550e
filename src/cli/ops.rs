//! What each command does, over the settings, the store and the ledger.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use chrono::{DateTime, FixedOffset, Utc};

use super::{DeliveriesArgs, ReportFormat, ReportLayout, RetryArgs};
use crate::app::{shutdown_signal, Application};
use crate::channel::Registry;
use crate::config::{ChannelSpec, Settings};
use crate::delivery::{Ledger, SubmitError};
use crate::domain::DeliveryStatus;
use crate::render::{sample_disclosure, RenderContext};
use crate::sandbox;
use crate::store::{self, DeliveryFilter, DeliveryRow, RetryResult};

/// Where a ledger command works: the config file and the department (`--department`).
pub struct At<'a> {
    pub config: &'a Path,
    pub department: &'a str,
}

/// The department's ledger: its view of the settings over the shared store.
async fn ledger(at: &At<'_>) -> anyhow::Result<Ledger> {
    let settings = Settings::load(at.config)?.for_department(at.department)?;
    let store = store::connect_with(&settings.resolved_database_url(), settings.store_options())
        .await
        .with_context(|| format!("打开数据库 {}", store::redact_url(&settings.database_url)))?;
    Ok(Ledger::new(store, Arc::new(settings)))
}

pub async fn serve(config: &Path) -> anyhow::Result<()> {
    let settings = Settings::load(config)?;
    let app = Application::build(settings).await?;
    app.run_until_stopped(shutdown_signal()).await
}

pub async fn submit(at: &At<'_>, file: &str, by: &str) -> anyhow::Result<()> {
    let raw = if file == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .context("读取标准输入")?;
        buf
    } else {
        std::fs::read(file).with_context(|| format!("读取文件 {file}"))?
    };
    let ledger = ledger(at).await?;
    let limit = ledger.settings.server.max_body_bytes;
    if raw.len() > limit {
        anyhow::bail!(
            "{file}：大小 {} 字节，超过上限 {limit} 字节（server.max_body_bytes）",
            raw.len()
        );
    }
    match ledger.submit(&raw, &format!("cli:{by}")).await {
        Ok(r) if r.created => {
            println!(
                "已接收 {} 第{}版，投递到 {} 个渠道：{}（投递 ID：{}）",
                r.disclosure_id,
                r.revision,
                r.channels.len(),
                r.channels.join("、"),
                join_ids(&r.delivery_ids)
            );
            Ok(())
        }
        Ok(r) => {
            println!(
                "{} 第{}版此前已接收，内容相同，未新建投递（投递 ID：{}）",
                r.disclosure_id,
                r.revision,
                join_ids(&r.delivery_ids)
            );
            Ok(())
        }
        Err(SubmitError::Invalid(e)) => {
            anyhow::bail!("{file}：公开件有 {} 处问题，未接收：\n{e}", e.0.len())
        }
        Err(SubmitError::Conflict(m)) => anyhow::bail!("{file}：未接收：{m}"),
        Err(SubmitError::Store(e)) => Err(anyhow::Error::new(e).context("写入台账")),
    }
}

pub async fn withdraw(at: &At<'_>, id: &str, reason: Option<&str>, by: &str) -> anyhow::Result<()> {
    let ledger = ledger(at).await?;
    let r = ledger.withdraw(id, by, reason).await.map_err(|e| match e {
        store::StoreError::NotFound(_) => {
            anyhow::anyhow!("没有公开件 {id}{}", in_department(&ledger))
        }
        other => anyhow::Error::new(other),
    })?;
    if r.withdrawn_now {
        println!(
            "已撤回 {id}：取消未发出的投递 {} 个，新建撤回投递 {} 个（{}）",
            r.cancelled.len(),
            r.delivery_ids.len(),
            join_ids(&r.delivery_ids)
        );
    } else {
        println!("{id} 此前已撤回，未做改动");
    }
    Ok(())
}

/// "（部门 X）" after a "not found" of a department of `departments_dir`.
fn in_department(ledger: &Ledger) -> String {
    if ledger.department() == store::DEFAULT_DEPARTMENT {
        String::new()
    } else {
        format!("（部门 {}）", ledger.department())
    }
}

fn join_ids(ids: &[i64]) -> String {
    if ids.is_empty() {
        return "无".into();
    }
    ids.iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn china(t: DateTime<Utc>) -> String {
    let tz = FixedOffset::east_opt(8 * 3600).expect("UTC+8 is a valid offset");
    t.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S").to_string()
}

pub async fn list_deliveries(at: &At<'_>, args: &DeliveriesArgs) -> anyhow::Result<()> {
    let ledger = ledger(at).await?;
    let statuses = match args.status.as_deref() {
        None => Vec::new(),
        Some(s) => s
            .split(',')
            .map(|x| x.trim().parse::<DeliveryStatus>())
            .collect::<Result<_, _>>()
            .map_err(|e| anyhow::anyhow!("--status：{e}"))?,
    };
    if let Some(ch) = &args.channel {
        if !ledger.settings.channels.channels.contains_key(ch) {
            eprintln!("提示：渠道 {ch:?} 不在当前配置中");
        }
    }
    let rows = ledger
        .store
        .list_deliveries(
            ledger.department(),
            &DeliveryFilter {
                statuses,
                channel: args.channel.clone(),
                disclosure_id: args.disclosure.clone(),
                limit: None,
            },
        )
        .await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    print_table(&rows);
    Ok(())
}

fn print_table(rows: &[DeliveryRow]) {
    if rows.is_empty() {
        println!("没有符合条件的投递");
        return;
    }
    println!("ID\t公开件\t版本\t渠道\t动作\t状态\t尝试\t下次尝试\t远端ID\t最近错误");
    for d in rows {
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            d.id,
            d.disclosure_id,
            d.revision,
            d.channel,
            if d.action == crate::domain::Action::Withdraw {
                "撤回"
            } else {
                "发布"
            },
            d.status.label_zh(),
            d.attempts,
            match (d.status, d.next_attempt_at) {
                (DeliveryStatus::Pending | DeliveryStatus::Retrying, Some(t)) => china(t),
                _ => "-".into(),
            },
            d.remote_id.as_deref().unwrap_or("-"),
            d.last_error.as_deref().unwrap_or("")
        );
    }
    let mut counts = std::collections::BTreeMap::new();
    for d in rows {
        *counts.entry(d.status.label_zh()).or_insert(0) += 1;
    }
    let parts: Vec<String> = counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
    println!("共 {} 个投递：{}", rows.len(), parts.join("，"));
}

pub async fn show_delivery(at: &At<'_>, id: i64, json: bool) -> anyhow::Result<()> {
    let ledger = ledger(at).await?;
    let d = ledger
        .store
        .get_delivery(ledger.department(), id)
        .await
        .map_err(|e| match e {
            store::StoreError::NotFound(_) => {
                anyhow::anyhow!("没有投递 {id}{}", in_department(&ledger))
            }
            other => anyhow::Error::new(other),
        })?;
    let attempts = ledger.store.list_attempts(ledger.department(), id).await?;
    if json {
        let mut v = serde_json::to_value(&d)?;
        v["attempts_log"] = serde_json::to_value(&attempts)?;
        v["content"] = d
            .payload
            .as_ref()
            .map(|p| serde_json::json!(String::from_utf8_lossy(p)))
            .unwrap_or(serde_json::Value::Null);
        v["mass_result"] = serde_json::to_value(ledger.mass_result(&d).await?)?;
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!(
        "投递 {}：{} 第{}版 -> 渠道 {}（{}）",
        d.id,
        d.disclosure_id,
        d.revision,
        d.channel,
        d.kind.label_zh()
    );
    println!("动作：{}", d.action);
    println!("状态：{}（{}）", d.status.label_zh(), d.status);
    println!("尝试次数：{}", d.attempts);
    if let (DeliveryStatus::Pending | DeliveryStatus::Retrying, Some(t)) =
        (d.status, d.next_attempt_at)
    {
        println!("下次尝试：{}", china(t));
    }
    if let Some(e) = &d.last_error {
        println!("最近错误：{e}");
    }
    if let Some(r) = &d.remote_id {
        println!("远端 ID：{r}");
    }
    if let Some(u) = &d.url {
        println!("链接：{u}");
    }
    if let Some(t) = d.delivered_at {
        println!("送达时间：{}", china(t));
    }
    if let Some(t) = d.displayed_until {
        println!("下屏时间：{}", china(t));
    }
    if let Some(m) = ledger.mass_result(&d).await? {
        println!("群发结果：{}", crate::channel::wechat::mass_summary(&m));
    }
    println!("\n尝试记录：");
    if attempts.is_empty() {
        println!("  （尚无）");
    }
    for a in &attempts {
        let who = match (&a.trigger, &a.requested_by) {
            (crate::domain::AttemptTrigger::Manual, Some(by)) => format!("手动（{by}）"),
            (crate::domain::AttemptTrigger::Manual, None) => "手动".to_string(),
            _ => "自动".to_string(),
        };
        println!(
            "  #{} {} {} 用时{}ms 结果：{}{}{}",
            a.number,
            china(a.started_at),
            who,
            a.duration_ms,
            outcome_zh(a.outcome),
            a.http_status
                .map(|s| format!(" HTTP {s}"))
                .unwrap_or_default(),
            a.detail
                .as_deref()
                .map(|s| format!(" — {s}"))
                .unwrap_or_default()
        );
    }
    if let Some(p) = &d.payload {
        println!(
            "\n发送内容（sha256 {}）：",
            d.payload_sha256.as_deref().unwrap_or("-")
        );
        println!("{}", String::from_utf8_lossy(p));
    }
    Ok(())
}

fn outcome_zh(o: crate::domain::AttemptOutcome) -> &'static str {
    use crate::domain::AttemptOutcome::*;
    match o {
        Delivered => "送达",
        Transient => "临时失败",
        Permanent => "永久失败",
        Lost => "中断（实例停止）",
        Pending => "已提交，等待结果",
    }
}

pub async fn retry(at: &At<'_>, args: &RetryArgs) -> anyhow::Result<()> {
    let ledger = ledger(at).await?;
    let results = if args.failed {
        ledger
            .retry_failed(args.channel.as_deref(), &args.by)
            .await?
    } else {
        ledger.retry_now(&args.ids, &args.by).await?
    };
    if results.is_empty() {
        println!("没有需要重试的投递");
        return Ok(());
    }
    let mut refused = 0;
    for r in &results {
        match r {
            RetryResult::Scheduled { id } => {
                println!("投递 {id}：已安排立即重试（操作人 {}）", args.by)
            }
            RetryResult::Refused { id, reason } => {
                refused += 1;
                println!("投递 {id}：未重试：{reason}")
            }
        }
    }
    if refused == results.len() {
        anyhow::bail!("没有投递被重试");
    }
    Ok(())
}

/// `gongkai report` as parsed.
pub struct ReportOptions {
    pub year: i32,
    pub layout: Option<ReportLayout>,
    pub format: ReportFormat,
    pub out: Option<std::path::PathBuf>,
    pub applications: Option<std::path::PathBuf>,
    pub explain: Option<String>,
}

pub async fn report(at: &At<'_>, o: &ReportOptions) -> anyhow::Result<()> {
    use crate::annual::{self, Layout};
    let year = o.year;
    if !(1990..=2100).contains(&year) {
        anyhow::bail!("--year {year}：年份应在 1990 到 2100 之间");
    }
    let ledger = ledger(at).await?;
    let settings = &ledger.settings;
    let calendar = settings.calendar();
    for w in calendar.warnings() {
        eprintln!("警告：{w}");
    }
    let apps_path = match &o.applications {
        Some(p) => Some(p.clone()),
        None => {
            crate::applications::find(&settings.resolve(&settings.report.applications_dir), year)
        }
    };
    let apps = apps_path
        .as_deref()
        .map(crate::applications::load)
        .transpose()?;
    if let Some(cell) = &o.explain {
        let e = annual::explain(
            settings,
            ledger.store.as_ref(),
            &calendar,
            year,
            cell,
            apps.as_ref().map(|a| a.source.as_str()),
        )
        .await?;
        match o.format {
            ReportFormat::Json => println!("{}", serde_json::to_string_pretty(&e)?),
            _ => print!("{}", annual::explanation_text(&e)),
        }
        return Ok(());
    }
    let layout = o.layout.map(|l| match l {
        ReportLayout::Y2017 => Layout::Y2017,
        ReportLayout::Y2021 => Layout::Y2021,
    });
    let r = annual::generate(
        settings,
        ledger.store.as_ref(),
        &calendar,
        year,
        layout,
        apps_path.as_deref(),
    )
    .await?;
    if apps.is_none() {
        eprintln!("提示：{}", r.applications.note);
    }
    let bytes = match o.format {
        ReportFormat::Md => annual::to_markdown(&r).into_bytes(),
        ReportFormat::Csv => annual::to_csv(&r).into_bytes(),
        ReportFormat::Json => (annual::to_json(&r) + "\n").into_bytes(),
        ReportFormat::Xlsx => {
            if o.out.is_none() {
                anyhow::bail!("--format xlsx 需要 --out 文件，如 --out {year}年报.xlsx");
            }
            annual::to_xlsx(&r)?
        }
    };
    match &o.out {
        Some(path) => {
            std::fs::write(path, bytes).with_context(|| format!("写入 {}", path.display()))?;
            eprintln!("已写入 {}", path.display());
        }
        None => {
            use std::io::Write;
            std::io::stdout().write_all(&bytes)?;
        }
    }
    Ok(())
}

pub async fn status(
    at: &At<'_>,
    json: bool,
    today: Option<chrono::NaiveDate>,
) -> anyhow::Result<()> {
    let ledger = ledger(at).await?;
    let calendar = ledger.settings.calendar();
    let s = crate::status::collect(
        &ledger.settings,
        ledger.store.as_ref(),
        &calendar,
        Utc::now(),
        today,
    )
    .await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&s)?);
    } else {
        print!("{}", crate::status::to_text(&s));
    }
    Ok(())
}

pub async fn check_config(config: &Path) -> anyhow::Result<()> {
    let settings = Settings::load(config)?;
    let views = settings.department_views();
    let mut problems = Vec::new();
    // Every department's token: configured, readable, and its own.
    if views.len() == 1 {
        if let Err(e) = settings.api_token() {
            problems.push(e.to_string());
        } else if settings.api_token()?.is_none() {
            problems.push("[api]：未配置 token_env 或 token_file，serve 无法启动".into());
        }
    } else if let Err(p) = crate::config::department_tokens(&views) {
        problems.extend(p);
    }
    for view in &views {
        let at = view.department_prefix();
        problems.extend(
            check_department(view)
                .into_iter()
                .map(|p| format!("{at}{p}")),
        );
    }
    if let Err(e) =
        store::connect_with(&settings.resolved_database_url(), settings.store_options()).await
    {
        problems.push(format!("database_url：{e:#}"));
    }
    if !problems.is_empty() {
        return Err(anyhow::Error::new(crate::config::Problems(problems)));
    }
    for view in &views {
        let who = if view.department.code == store::DEFAULT_DEPARTMENT {
            String::new()
        } else {
            format!("{}：", view.department.label())
        };
        println!(
            "{who}配置正确：{} 个分类，{} 个渠道（{}），模板均可渲染",
            view.categories.len(),
            view.channels.channels.len(),
            view.channels
                .channels
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join("、")
        );
    }
    Ok(())
}

/// One department's channel secrets and templates (rendered with a sample disclosure and
/// checked by the channel), each problem naming the channel file.
fn check_department(settings: &Settings) -> Vec<String> {
    let mut problems = Vec::new();
    let file = |name: &str| {
        if settings.department.dir.is_some() {
            settings
                .channels_dir_path()
                .join(format!("{name}.toml"))
                .display()
                .to_string()
        } else {
            format!("channels/{name}.toml")
        }
    };
    for (name, spec) in &settings.channels.channels {
        match spec {
            ChannelSpec::GovSite(c) => {
                if let Err(e) = c.secret.read() {
                    problems.push(format!("{} 签名密钥：{e}", file(name)));
                }
            }
            ChannelSpec::Led(_) => {}
            ChannelSpec::Wechat(c) => {
                if let Err(e) = c.secret.read() {
                    problems.push(format!("{} AppSecret：{e}", file(name)));
                }
            }
        }
    }
    match settings.renderer() {
        Err(p) => problems.extend(p),
        Ok(renderer) => {
            let category = settings
                .categories
                .first()
                .map(|c| c.code.clone())
                .unwrap_or_default();
            let sample = sample_disclosure(&category);
            // Build channels only for the payload checks; secrets may be missing (reported above).
            let registry = Registry::build(&settings.channels).ok();
            for (name, spec) in &settings.channels.channels {
                for action in [
                    crate::domain::Action::Publish,
                    crate::domain::Action::Withdraw,
                ] {
                    let ctx = RenderContext::new(
                        &sample,
                        action,
                        name,
                        spec.kind(),
                        "示例分类",
                        Some("示例撤回原因"),
                    );
                    match renderer.render(spec.template(), &ctx) {
                        Err(e) => problems.push(format!("{}：{e}", file(name))),
                        Ok(out) => {
                            if let Some(ch) = registry.as_ref().and_then(|r| r.get(name)) {
                                if let Err(e) = ch.check_payload(&out) {
                                    problems.push(format!(
                                        "{} 模板 {}（{action}）：{e}",
                                        file(name),
                                        spec.template()
                                    ));
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    problems
}

pub async fn migrate(config: &Path) -> anyhow::Result<()> {
    let settings = Settings::load(config)?;
    store::connect_with(&settings.resolved_database_url(), settings.store_options()).await?;
    println!(
        "数据库迁移已完成：{}",
        store::redact_url(&settings.database_url)
    );
    Ok(())
}

pub async fn sandbox(
    config: &Path,
    listen: std::net::SocketAddr,
    led_listen: std::net::SocketAddr,
    apps: &[String],
) -> anyhow::Result<()> {
    let mut cfg = sandbox::SandboxConfig::default();
    for a in apps {
        let (key, secret) = a
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--app {a:?}：格式应为 APP_KEY=SECRET"))?;
        cfg.gov_site_apps.push(sandbox::GovSiteApp {
            app_key: key.to_string(),
            secret: secret.to_string(),
        });
    }
    if config.exists() {
        let settings = Settings::load(config)?;
        // Every department's platforms and accounts.
        let channels: Vec<(String, ChannelSpec)> = settings
            .department_views()
            .iter()
            .flat_map(|v| {
                v.channels
                    .channels
                    .iter()
                    .map(|(n, c)| (n.clone(), c.clone()))
                    .collect::<Vec<_>>()
            })
            .collect();
        for (name, spec) in &channels {
            match spec {
                ChannelSpec::GovSite(c) => match c.secret.read() {
                    Ok(s) => cfg.gov_site_apps.push(sandbox::GovSiteApp {
                        app_key: c.app_key.clone(),
                        secret: s.expose().to_string(),
                    }),
                    Err(e) => {
                        eprintln!(
                            "提示：渠道 {name} 的密钥不可用（{e}），仿真平台不接受它的 app_key"
                        )
                    }
                },
                ChannelSpec::Wechat(c) => match c.secret.read() {
                    Ok(s) => cfg.wechat_apps.push(sandbox::wechat::WechatApp {
                        appid: c.appid.clone(),
                        secret: s.expose().to_string(),
                        callback_token: c
                            .callback_token
                            .read()
                            .map(|t| t.expose().to_string())
                            .unwrap_or_default(),
                        callback_url: None,
                    }),
                    Err(e) => {
                        eprintln!(
                            "提示：渠道 {name} 的 AppSecret 不可用（{e}），仿真公众号不接受它"
                        )
                    }
                },
                ChannelSpec::Led(_) => {}
            }
        }
    }
    if cfg.gov_site_apps.is_empty() {
        anyhow::bail!("没有可接受的网站平台应用：请用 --app APP_KEY=SECRET，或提供含 gov_site 渠道且密钥可读的配置");
    }
    println!(
        "仿真平台监听 http://{listen}（网站平台：http://{listen}/gov_site；状态：http://{listen}/_sandbox/state）"
    );
    sandbox::run(listen, led_listen, cfg).await
}

/// `gongkai operator add|list|disable`: operator-console accounts, in the store.
/// Accounts belong to a department (`--department`, default `default`): in the console they
/// see and change that department's items only. `list` and `disable` cover every account.
pub async fn operator(at: &At<'_>, cmd: super::OperatorCommand) -> anyhow::Result<()> {
    use super::{OperatorCommand, OperatorRole};
    use crate::store::Role;
    let ledger = ledger(at).await?;
    let store = ledger.store.as_ref();
    match cmd {
        OperatorCommand::Add {
            name,
            role,
            password_stdin,
        } => {
            let password = if password_stdin {
                let mut line = String::new();
                std::io::stdin()
                    .read_line(&mut line)
                    .context("读取标准输入")?;
                line.trim_end_matches(['\r', '\n']).to_string()
            } else {
                let p1 = rpassword::prompt_password(format!("为 {name} 设置密码："))
                    .context("读取密码")?;
                let p2 = rpassword::prompt_password("再输入一次：").context("读取密码")?;
                anyhow::ensure!(p1 == p2, "两次输入的密码不一致");
                p1
            };
            let role = match role {
                OperatorRole::Operator => Role::Operator,
                OperatorRole::Admin => Role::Admin,
            };
            crate::console::auth::add_operator_in(
                store,
                ledger.department(),
                &name,
                &password,
                role,
            )
            .await?;
            let department = if ledger.department() == store::DEFAULT_DEPARTMENT {
                String::new()
            } else {
                format!("，部门 {}", ledger.department())
            };
            println!("已创建操作台账号 {name}（{}{department}）", role.label());
            Ok(())
        }
        OperatorCommand::List => {
            let rows = store.list_operators().await?;
            if rows.is_empty() {
                println!("还没有操作台账号（用 gongkai operator add 姓名 创建）");
            }
            for o in rows {
                let state = if o.disabled {
                    "已停用".to_string()
                } else if o.locked_until.is_some_and(|t| t > Utc::now()) {
                    "已锁定".to_string()
                } else {
                    "正常".to_string()
                };
                println!(
                    "{}\t{}\t{}\t最近登录 {}{}",
                    o.name,
                    o.role.label(),
                    state,
                    o.last_sign_in_at
                        .map(crate::console::views::china_time)
                        .unwrap_or_else(|| "—".to_string()),
                    if o.department == store::DEFAULT_DEPARTMENT {
                        String::new()
                    } else {
                        format!("\t部门 {}", o.department)
                    }
                );
            }
            Ok(())
        }
        OperatorCommand::Disable { name } => {
            store.set_operator_disabled(&name, true).await?;
            println!("已停用 {name}，其登录已失效");
            Ok(())
        }
    }
}
