//! The command line: `gongkai [--config FILE] [--department CODE] <command>`. Parsing with
//! clap, then one function per command. `--department` picks the department (tenant) the
//! ledger commands work on (`default`: the top-level config). Read-only and operator commands work on the store directly (SQLite
//! is shared safely between processes), so they work whether or not the daemon runs; a
//! running daemon picks up operator retries at its next poll.

mod ops;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "gongkai",
    version,
    about = "政府信息公开多渠道发布与投递台账 / publishes approved disclosures to every channel"
)]
pub struct Cli {
    /// 配置文件 / the config file
    #[arg(
        long,
        global = true,
        default_value = "config.toml",
        env = "GONGKAI_CONFIG"
    )]
    pub config: PathBuf,
    /// 部门代码（多部门时）：提交、撤回、投递、重试、报告、待办、菜单只作用于该部门；默认 default（config.toml 本身）
    /// / the department (tenant) the command works on
    #[arg(
        long,
        global = true,
        default_value = "default",
        env = "GONGKAI_DEPARTMENT"
    )]
    pub department: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// 运行守护进程：HTTP API 与投递进程 / run the API and the delivery worker
    Serve,
    /// 公众号自定义菜单：push 按配置创建，show 显示微信上的菜单 / the WeChat custom menu
    #[command(subcommand)]
    Menu(MenuCommand),
    /// 提交一个已审核的公开件（JSON 文件，- 表示标准输入）/ submit an approved disclosure
    Submit {
        /// JSON 文件路径，或 - 读标准输入
        file: String,
        /// 提交人（记入台账）
        #[arg(long, env = "USER", default_value = "cli")]
        by: String,
    },
    /// 撤回一个公开件（各渠道下架）/ withdraw a disclosure from every channel
    Withdraw {
        disclosure_id: String,
        /// 撤回原因
        #[arg(long)]
        reason: Option<String>,
        /// 操作人（记入台账）
        #[arg(long, env = "USER", default_value = "cli")]
        by: String,
    },
    /// 查看投递 / list deliveries, or `deliveries show ID`
    Deliveries(DeliveriesArgs),
    /// 手动重试投递 / retry deliveries now
    Retry(RetryArgs),
    /// 政府信息公开工作年度报告统计表 / the annual report tables
    Report {
        #[arg(long)]
        year: i32,
        /// 表格格式：2017（附表）或 2021（国办公开办函〔2021〕30号）；默认 2021 年起用 2021
        #[arg(long, value_enum)]
        layout: Option<ReportLayout>,
        #[arg(long, value_enum, default_value_t = ReportFormat::Md)]
        format: ReportFormat,
        /// 写入文件而不是标准输出（xlsx 必须指定）
        #[arg(long)]
        out: Option<PathBuf>,
        /// 经办人填写的依申请公开、复议、诉讼数据（TOML 或 CSV）；默认 report.applications_dir/{年}.toml|csv
        #[arg(long)]
        applications: Option<PathBuf>,
        /// 列出某个格子背后的公开件，如 total.year、channel.gov_site.year、category.jgzn.year、t2.normative.in_force
        #[arg(long)]
        explain: Option<String>,
    },
    /// 待办：超期或临近公开时限的公开件、微信公众号更新情况、日历缺失年份 / what needs attention
    Status {
        /// 输出 JSON（供其他工具读取）
        #[arg(long)]
        json: bool,
        /// 按该日期（YYYY-MM-DD，北京时间）计算，默认今天
        #[arg(long)]
        today: Option<chrono::NaiveDate>,
    },
    /// 检查配置、渠道和模板，列出全部问题 / validate config, channels and templates
    CheckConfig,
    /// 打印带注释的示例配置 / print the commented example config
    DefaultConfig,
    /// 执行数据库迁移 / apply database migrations
    Migrate,
    /// 运行外部系统仿真（网站平台、LED 控制卡）/ run the emulators of the remote systems
    Sandbox {
        #[arg(long, default_value = "127.0.0.1:8091")]
        listen: std::net::SocketAddr,
        /// LED 控制卡（仰邦 BX-5K/6K）仿真的 TCP 监听地址
        #[arg(long, default_value = "127.0.0.1:5005")]
        led_listen: std::net::SocketAddr,
        /// 额外接受的网站平台应用：APP_KEY=SECRET（默认接受配置中各 gov_site 渠道的 app_key 与密钥）
        #[arg(long = "app")]
        apps: Vec<String>,
    },
    /// 操作台账号：add 新建 / list 列出 / disable 停用 / manage operator-console accounts
    #[command(subcommand)]
    Operator(OperatorCommand),
    /// 演示：用内置示例（2017年漳平市民政局 23 条）跑完整流程 / run the whole flow on bundled data
    Demo {
        /// 保留数据库与配置到该目录，之后可用 --config DIR/config.toml 查看
        #[arg(long)]
        keep: Option<PathBuf>,
        /// 注入一次网站平台故障，留下一个失败投递；创建演示操作员并保持运行，供在操作台中处理（Ctrl-C 结束）
        #[arg(long)]
        with_failures: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum OperatorCommand {
    /// 新建操作台账号（交互输入密码，或 --password-stdin 从标准输入读取）
    Add {
        name: String,
        /// 角色：operator（可重试）或 admin（还可撤回）
        #[arg(long, value_enum, default_value_t = OperatorRole::Operator)]
        role: OperatorRole,
        /// 从标准输入读取密码（第一行），用于脚本
        #[arg(long)]
        password_stdin: bool,
    },
    /// 列出操作台账号
    List,
    /// 停用账号（立即结束其登录会话）
    Disable { name: String },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OperatorRole {
    Operator,
    Admin,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct DeliveriesArgs {
    #[command(subcommand)]
    pub show: Option<DeliveriesCommand>,
    /// 按状态筛选：pending, in_flight, delivered, retrying, dead, withdrawn（可逗号分隔）
    #[arg(long)]
    pub status: Option<String>,
    /// 按渠道筛选
    #[arg(long)]
    pub channel: Option<String>,
    /// 按公开件筛选
    #[arg(long)]
    pub disclosure: Option<String>,
    /// 输出 JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum MenuCommand {
    /// 检查微信的菜单限制后，用 [wechat_callback.menu] 创建菜单（menu/create）
    Push,
    /// 显示微信上当前的菜单（menu/get）
    Show,
}

#[derive(Debug, Subcommand)]
pub enum DeliveriesCommand {
    /// 查看一个投递及其全部尝试记录
    Show {
        id: i64,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct RetryArgs {
    /// 投递 ID（可多个）
    #[arg(required_unless_present = "failed", conflicts_with = "failed")]
    pub ids: Vec<i64>,
    /// 重试全部失败（dead）和等待重试的投递
    #[arg(long)]
    pub failed: bool,
    /// 与 --failed 一起使用：只重试该渠道
    #[arg(long, requires = "failed")]
    pub channel: Option<String>,
    /// 操作人（记入台账）
    #[arg(long, env = "USER", default_value = "cli")]
    pub by: String,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ReportFormat {
    Md,
    Csv,
    Json,
    Xlsx,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ReportLayout {
    #[value(name = "2017")]
    Y2017,
    #[value(name = "2021")]
    Y2021,
}

/// Runs the parsed command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let at = ops::At {
        config: &cli.config,
        department: &cli.department,
    };
    match cli.command {
        Command::Serve => ops::serve(&cli.config).await,
        Command::Menu(MenuCommand::Push) => {
            crate::wechat_callback::menu_cli::push_for(&cli.config, &cli.department).await
        }
        Command::Menu(MenuCommand::Show) => {
            crate::wechat_callback::menu_cli::show_for(&cli.config, &cli.department).await
        }
        Command::Submit { file, by } => ops::submit(&at, &file, &by).await,
        Command::Withdraw {
            disclosure_id,
            reason,
            by,
        } => ops::withdraw(&at, &disclosure_id, reason.as_deref(), &by).await,
        Command::Deliveries(args) => match args.show {
            Some(DeliveriesCommand::Show { id, json }) => ops::show_delivery(&at, id, json).await,
            None => ops::list_deliveries(&at, &args).await,
        },
        Command::Retry(args) => ops::retry(&at, &args).await,
        Command::Report {
            year,
            layout,
            format,
            out,
            applications,
            explain,
        } => {
            let opts = ops::ReportOptions {
                year,
                layout,
                format,
                out,
                applications,
                explain,
            };
            ops::report(&at, &opts).await
        }
        Command::Status { json, today } => ops::status(&at, json, today).await,
        Command::CheckConfig => ops::check_config(&cli.config).await,
        Command::DefaultConfig => {
            print!("{}", crate::config::EXAMPLE_CONFIG);
            Ok(())
        }
        Command::Migrate => ops::migrate(&cli.config).await,
        Command::Sandbox {
            listen,
            led_listen,
            apps,
        } => ops::sandbox(&cli.config, listen, led_listen, &apps).await,
        Command::Demo {
            keep,
            with_failures,
        } => crate::demo::run(keep.as_deref(), with_failures).await,
        Command::Operator(cmd) => ops::operator(&at, cmd).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_cli() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn deliveries_show_and_filters_parse() {
        let c = Cli::try_parse_from(["gongkai", "deliveries", "show", "7"]).unwrap();
        assert!(matches!(
            c.command,
            Command::Deliveries(DeliveriesArgs {
                show: Some(DeliveriesCommand::Show { id: 7, .. }),
                ..
            })
        ));
        let c = Cli::try_parse_from([
            "gongkai",
            "--config",
            "x.toml",
            "deliveries",
            "--status",
            "dead",
            "--json",
        ])
        .unwrap();
        assert_eq!(c.config, PathBuf::from("x.toml"));
        assert!(Cli::try_parse_from(["gongkai", "retry"]).is_err());
        assert!(
            Cli::try_parse_from(["gongkai", "retry", "--failed", "--channel", "gov_site"]).is_ok()
        );
    }

    #[test]
    fn the_department_is_a_global_option_defaulting_to_default() {
        let c = Cli::try_parse_from(["gongkai", "deliveries"]).unwrap();
        assert_eq!(c.department, "default");
        let c =
            Cli::try_parse_from(["gongkai", "deliveries", "--department", "minzheng-fz"]).unwrap();
        assert_eq!(c.department, "minzheng-fz");
        let c = Cli::try_parse_from(["gongkai", "--department", "a-b", "report", "--year", "2017"])
            .unwrap();
        assert_eq!(c.department, "a-b");
    }
}
