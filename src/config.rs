//! Settings: `config.toml`, the channel files `channels/*.toml`, the departments of
//! `departments_dir`, environment overrides.
//! Owns: the typed settings, `load()` (embedded defaults, then the file, then
//! `GONGKAI__SECTION__KEY` variables, then the departments), `validate()` that reports every
//! problem at once, and secret resolution (`secret_env` / `secret_file`; `Debug` never shows
//! a secret).
//!
//! Departments (部门, the tenants of issue 7): the top-level config is the department
//! `default` (its categories, `channels_dir`, `[api]` token, `[report.baseline]`). Each folder
//! `departments_dir/<code>/` adds one more, with its own `department.toml` (name, publisher,
//! `[api]` token, categories, report baseline, `[wechat_callback]`), `channels/*.toml` and
//! optionally `templates/` (a template not found there comes from the top-level templates).
//! `Settings::department_views` gives each department a `Settings` of its own (the shared
//! sections from the top level, the department's own parts over them), so that the code that
//! works for one department (the ledger, reports, status, channels) reads one `Settings`.
//! Leaves building channels to `channel`, templates to `render`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

/// The commented example config, embedded for `default-config` and the demo.
pub const EXAMPLE_CONFIG: &str = include_str!("../config.toml");

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// `sqlite://gongkai.db` (relative paths are relative to the config file's folder).
    pub database_url: String,
    /// PostgreSQL: size of the connection pool of this instance (SQLite ignores it).
    pub database_max_connections: u32,
    pub templates_dir: PathBuf,
    pub channels_dir: PathBuf,
    /// Folder of further departments (one subfolder each); none when absent.
    pub departments_dir: Option<PathBuf>,
    pub server: ServerSettings,
    pub api: ApiSettings,
    pub worker: WorkerSettings,
    pub retry: RetrySettings,
    pub categories: Vec<Category>,
    pub report: ReportSettings,
    pub calendar: CalendarSettings,
    pub gate: GateSettings,
    /// The WeChat callback (issue 4): path, AES key, budget, menu.
    pub wechat_callback: crate::wechat_callback::config::WechatCallbackSettings,
    /// The operator console at `/console` (issue 8).
    pub console: ConsoleSettings,
    /// Prometheus `/metrics` on a separate admin listener (issue 8).
    pub metrics: MetricsSettings,
    /// The folder of the config file; relative paths resolve against it.
    #[serde(skip)]
    pub base_dir: PathBuf,
    /// Loaded from `channels_dir`.
    #[serde(skip)]
    pub channels: ChannelSettings,
    /// The department this view of the settings belongs to (`default` for the top level).
    #[serde(skip)]
    pub department: Department,
    /// The departments loaded from `departments_dir` (empty in a department's own view).
    #[serde(skip)]
    pub departments: Vec<DepartmentSpec>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            database_url: "sqlite://gongkai.db".into(),
            database_max_connections: crate::store::postgres::DEFAULT_MAX_CONNECTIONS,
            templates_dir: "templates".into(),
            channels_dir: "channels".into(),
            departments_dir: None,
            server: ServerSettings::default(),
            api: ApiSettings::default(),
            worker: WorkerSettings::default(),
            retry: RetrySettings::default(),
            categories: Vec::new(),
            report: ReportSettings::default(),
            calendar: CalendarSettings::default(),
            gate: GateSettings::default(),
            wechat_callback: Default::default(),
            console: ConsoleSettings::default(),
            metrics: MetricsSettings::default(),
            base_dir: PathBuf::from("."),
            channels: ChannelSettings::default(),
            department: Department::default(),
            departments: Vec::new(),
        }
    }
}

/// Which department (部门, tenant) a view of the settings belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Department {
    /// `default` for the top-level config, else its folder's name under `departments_dir`
    /// (e.g. `minzheng-fz`). Stored with every row the department owns.
    pub code: String,
    /// 部门名称 (the top-level config has none).
    pub name: String,
    /// 发布机关: when set, a submitted disclosure's `publisher` must be exactly this.
    pub publisher: Option<String>,
    /// `departments_dir/<code>/` (None for `default`).
    pub dir: Option<PathBuf>,
}

impl Default for Department {
    fn default() -> Self {
        Department {
            code: crate::store::DEFAULT_DEPARTMENT.to_string(),
            name: String::new(),
            publisher: None,
            dir: None,
        }
    }
}

impl Department {
    /// How messages name it: "部门 minzheng-fz（福州市民政局）", or "部门 default".
    pub fn label(&self) -> String {
        if self.name.is_empty() {
            format!("部门 {}", self.code)
        } else {
            format!("部门 {}（{}）", self.code, self.name)
        }
    }

    /// `departments/<code>/department.toml`, for messages (None for `default`).
    pub fn file(&self) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join(DEPARTMENT_FILE))
    }
}

/// The file of a department's own settings in its folder.
pub const DEPARTMENT_FILE: &str = "department.toml";

/// One department of `departments_dir`: what it has of its own (everything else is shared
/// with the top-level config). Paths are resolved.
#[derive(Debug, Clone)]
pub struct DepartmentSpec {
    pub department: Department,
    pub api: ApiSettings,
    pub categories: Vec<Category>,
    pub channels_dir: PathBuf,
    pub channels: ChannelSettings,
    pub baseline: Baseline,
    pub applications_dir: PathBuf,
    pub wechat_callback: crate::wechat_callback::config::WechatCallbackSettings,
}

/// `departments/<code>/department.toml` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DepartmentFile {
    name: Option<String>,
    publisher: Option<String>,
    #[serde(default)]
    api: ApiSettings,
    #[serde(default)]
    categories: Vec<Category>,
    #[serde(default)]
    report: DepartmentReportFile,
    #[serde(default)]
    wechat_callback: Option<crate::wechat_callback::config::WechatCallbackSettings>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct DepartmentReportFile {
    baseline: Baseline,
    /// Relative to the department's folder; default `applications`.
    applications_dir: Option<PathBuf>,
}

/// A department code: lower-case ASCII letters, digits and `-`, starting with a letter and
/// not ending with `-`, at most 40 characters; `default` is the top-level config's.
pub fn check_department_code(code: &str) -> Result<(), String> {
    if code == crate::store::DEFAULT_DEPARTMENT {
        return Err("部门代码 default 保留给顶层配置（config.toml 本身就是部门 default）".into());
    }
    let ok = !code.is_empty()
        && code.len() <= 40
        && code.starts_with(|c: char| c.is_ascii_lowercase())
        && !code.ends_with('-')
        && code
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "部门代码 {code:?} 无效：只能含小写字母、数字和 -，以字母开头、不以 - 结尾，最长 40 个字符（如 minzheng-fz）"
        ))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// Address of the HTTP API (loopback by default: put a reverse proxy in front).
    pub listen: String,
    /// Bodies larger than this are refused with 413 before they are read.
    pub max_body_bytes: usize,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            listen: "127.0.0.1:8080".into(),
            max_body_bytes: 2 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiSettings {
    /// Name of the environment variable holding the bearer token of `/api/v1`.
    pub token_env: Option<String>,
    /// Or a file holding it (not committed; relative to the config folder).
    pub token_file: Option<PathBuf>,
}

/// The operator console (issue 8).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleSettings {
    /// Serve `/console` on the API listener.
    pub enabled: bool,
    /// Always mark the session cookie `Secure` (it is also marked when the request came
    /// through a TLS proxy that sets `X-Forwarded-Proto: https`).
    pub secure_cookies: bool,
    /// How long a sign-in lasts.
    #[serde(with = "humantime_serde")]
    pub session_ttl: Duration,
    /// Consecutive wrong passwords that lock an account.
    pub max_failed_sign_ins: u32,
    /// How long a locked account stays locked.
    #[serde(with = "humantime_serde")]
    pub lockout: Duration,
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        ConsoleSettings {
            enabled: true,
            secure_cookies: false,
            session_ttl: Duration::from_secs(8 * 3600),
            max_failed_sign_ins: 5,
            lockout: Duration::from_secs(15 * 60),
        }
    }
}

/// Prometheus metrics on their own listener (issue 8).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSettings {
    /// Address of the admin listener that serves only `/metrics`; off when absent.
    pub listen: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerSettings {
    /// Run the delivery worker inside `serve`.
    pub enabled: bool,
    /// Attempts in flight at once.
    pub concurrency: usize,
    /// How often an idle worker looks for due deliveries (it is also woken on new work).
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// How long a claim holds; a claim of an instance that died is taken over after this.
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
    /// Name of this instance in claims and attempt rows; default host name + process id.
    pub instance_id: Option<String>,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings {
            enabled: true,
            concurrency: 16,
            poll_interval: Duration::from_secs(1),
            lease: Duration::from_secs(120),
            instance_id: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetrySettings {
    /// Wait before the 2nd, 3rd ... attempt; the last step repeats.
    #[serde(with = "duration_list")]
    pub schedule: Vec<Duration>,
    /// Each wait is changed by up to ± this fraction, at random.
    pub jitter: f64,
    /// Attempts (per operator retry) before a delivery is parked as dead.
    pub max_attempts: u32,
}

/// A list of durations written with units: `["10s", "1m", "5m"]`.
mod duration_list {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(v: &[Duration], s: S) -> Result<S::Ok, S::Error> {
        let list: Vec<humantime_serde::Serde<Duration>> = v
            .iter()
            .copied()
            .map(humantime_serde::Serde::from)
            .collect();
        list.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Duration>, D::Error> {
        let list: Vec<humantime_serde::Serde<Duration>> = Vec::deserialize(d)?;
        Ok(list.into_iter().map(|x| x.into_inner()).collect())
    }
}

impl Default for RetrySettings {
    fn default() -> Self {
        RetrySettings {
            schedule: [10, 60, 300, 1800, 7200, 21600]
                .into_iter()
                .map(Duration::from_secs)
                .collect(),
            jitter: 0.2,
            max_attempts: 8,
        }
    }
}

/// One category of the department's taxonomy (主动公开目录).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Category {
    pub code: String,
    pub name: String,
    /// Channel names a disclosure of this category is delivered to.
    pub channels: Vec<String>,
    /// Deadline in working days from the formed date (条例 第二十六条: 20).
    #[serde(default = "default_deadline")]
    pub deadline_working_days: u32,
    /// Minimum display period (公示期) in working days, e.g. 7 for 低保 名单; LED screens
    /// keep an item at least this long. A disclosure's own value wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_min_working_days: Option<u32>,
}

fn default_deadline() -> u32 {
    20
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReportSettings {
    pub baseline: Baseline,
    /// Folder of the clerk-filled application figures (tables 三/四), `{year}.toml` or
    /// `{year}.csv`, used when `report --applications` is not given.
    pub applications_dir: PathBuf,
    /// `status` lists an item once this share of its deadline is used (0.6 = 60%).
    pub warn_at: f64,
}

impl Default for ReportSettings {
    fn default() -> Self {
        ReportSettings {
            baseline: Baseline::default(),
            applications_dir: "applications".into(),
            warn_at: 0.6,
        }
    }
}

/// The working-day calendar (holiday-cn JSON files, one per year).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CalendarSettings {
    /// Folder of `{year}.json`; when it cannot be read, the embedded copy is used.
    pub dir: PathBuf,
}

impl Default for CalendarSettings {
    fn default() -> Self {
        CalendarSettings {
            dir: "data/holiday-cn".into(),
        }
    }
}

/// The content gate's word lists (the number rules are built in).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GateSettings {
    /// Words that must never be published (禁用词).
    pub forbidden_words: Vec<String>,
    /// Outdated or wrong terms, each with the form to use instead.
    pub outdated_terms: Vec<OutdatedTerm>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutdatedTerm {
    pub term: String,
    pub correct: String,
}

/// Counts from before gongkai was used, so that cumulative (历年累计) figures are true.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Baseline {
    /// The counts below are of the years before this one.
    pub before_year: Option<i32>,
    pub total: u64,
    pub channels: BTreeMap<String, u64>,
    pub categories: BTreeMap<String, u64>,
}

/// A secret value; `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// Where a secret comes from; read only when a channel is built (`serve`, `check-config`),
/// so that read-only commands work without the secrets in the environment.
#[derive(Debug, Clone, Default)]
pub struct SecretRef {
    pub env: Option<String>,
    pub file: Option<PathBuf>,
}

impl SecretRef {
    pub fn read(&self) -> Result<Secret, String> {
        resolve_secret(self.env.as_deref(), self.file.as_deref())?
            .ok_or_else(|| "未配置 secret_env 或 secret_file".to_string())
    }
}

/// The channels of `channels/*.toml`, by name (the file stem).
#[derive(Debug, Clone, Default)]
pub struct ChannelSettings {
    pub channels: BTreeMap<String, ChannelSpec>,
    /// The working-day calendar folder (`[calendar] dir`, resolved): channels that keep an
    /// item up for a 公示期 (LED) count it in Chinese working days.
    pub calendar_dir: PathBuf,
}

#[derive(Debug, Clone)]
pub enum ChannelSpec {
    GovSite(GovSiteConfig),
    Led(LedConfig),
    Wechat(crate::channel::wechat::WechatConfig),
}

impl ChannelSpec {
    pub fn kind(&self) -> crate::domain::ChannelKind {
        match self {
            ChannelSpec::GovSite(_) => crate::domain::ChannelKind::GovSite,
            ChannelSpec::Led(_) => crate::domain::ChannelKind::Led,
            ChannelSpec::Wechat(_) => crate::domain::ChannelKind::Wechat,
        }
    }
    pub fn template(&self) -> &str {
        match self {
            ChannelSpec::GovSite(c) => &c.template,
            ChannelSpec::Led(c) => &c.template,
            ChannelSpec::Wechat(c) => &c.template,
        }
    }
}

/// `channels/<name>.toml` with `kind = "led"`: one service hall screen, its profile
/// (domain.md §5.2) and the outputs that feed it (any of them).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedConfig {
    #[serde(default = "default_led_template")]
    pub template: String,
    /// Screen size in pixels (e.g. 256×16 for a bar of eight P10 modules).
    pub width_px: u32,
    pub height_px: u32,
    /// Font height in dots: 16, 24 or 32 (a 汉字 is font_px wide, an ASCII character half).
    #[serde(default = "default_font_px")]
    pub font_px: u32,
    /// Text lines on the screen (at most height_px / font_px).
    #[serde(default = "default_lines")]
    pub lines: u32,
    #[serde(default)]
    pub mode: LedMode,
    pub encoding: crate::led::text::LedEncoding,
    /// Bytes of text one controller area takes (BX-6K 1024, BX-5K 512).
    #[serde(default = "default_area_bytes")]
    pub max_bytes_per_area: usize,
    /// Longest item, in display units (a 汉字 is 2); longer approved text is refused.
    #[serde(default = "default_max_item_units")]
    pub max_item_units: usize,
    /// Text colour on the screen: red, green, yellow (single/dual-colour bars).
    #[serde(default = "default_colour")]
    pub colour: String,
    /// Hours the screen is on, "07:30-18:00" (China time); outside them the controller is
    /// not refreshed and its area clears itself. Absent: always on.
    #[serde(default)]
    pub on_hours: Option<String>,
    /// Calendar days an item stays up at least (a longer 公示期 wins).
    #[serde(default = "default_display_days")]
    pub display_days: u32,
    /// How often the feed is checked for expiry and the controller refreshed (keep-alive).
    #[serde(default = "default_refresh", with = "humantime_serde")]
    pub refresh: Duration,
    #[serde(default)]
    pub file_sink: Option<LedFileSink>,
    #[serde(default)]
    pub http_pull: LedHttpPull,
    #[serde(default)]
    pub bx: Option<LedBx>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LedMode {
    /// One loop of all items scrolling left (走字屏).
    #[default]
    Scroll,
    /// Static pages of `lines` lines each.
    Page,
}

/// Writes `feed.txt` and `feed.json` into `dir` (relative to the channel file's folder).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedFileSink {
    pub dir: PathBuf,
}

/// `GET /led/{screen}/feed` on the API listener (no token: the hall player reads it).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedHttpPull {
    #[serde(default = "default_true")]
    pub enabled: bool,
}

impl Default for LedHttpPull {
    fn default() -> Self {
        LedHttpPull { enabled: true }
    }
}

fn default_true() -> bool {
    true
}

/// An Onbon BX-5K/6K controller over TCP (domain.md §5.1), dynamic areas only.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedBx {
    /// host:port of the controller (default port 5005).
    pub address: String,
    /// Screen address in the frame header (0x8000 over TCP, 0xFFFE broadcast).
    #[serde(default = "default_bx_dst")]
    pub screen_address: u16,
    /// Dynamic area id (0–4 on a BX-6K).
    #[serde(default)]
    pub area_id: u8,
    /// The controller deletes the area if not refreshed within this (RunMode 2), so stale
    /// text vanishes when gongkai stops. Must be longer than `refresh`.
    #[serde(default = "default_area_timeout", with = "humantime_serde")]
    pub area_timeout: Duration,
    /// Connect + answer timeout of one push.
    #[serde(default = "default_bx_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Scroll speed 0 (fastest) … 24.
    #[serde(default = "default_bx_speed")]
    pub speed: u8,
    /// Page stay time in seconds (page mode).
    #[serde(default = "default_bx_stay")]
    pub stay_seconds: u8,
}

fn default_led_template() -> String {
    "led/item.txt.j2".into()
}
fn default_font_px() -> u32 {
    16
}
fn default_lines() -> u32 {
    1
}
fn default_area_bytes() -> usize {
    1024
}
fn default_max_item_units() -> usize {
    120
}
fn default_colour() -> String {
    "red".into()
}
fn default_display_days() -> u32 {
    7
}
fn default_refresh() -> Duration {
    Duration::from_secs(30)
}
fn default_bx_dst() -> u16 {
    0x8000
}
fn default_area_timeout() -> Duration {
    Duration::from_secs(120)
}
fn default_bx_timeout() -> Duration {
    Duration::from_secs(3)
}
fn default_bx_speed() -> u8 {
    4
}
fn default_bx_stay() -> u8 {
    5
}

impl LedConfig {
    /// Every problem with the profile, each naming the key.
    fn problems(&self) -> Vec<String> {
        let mut e = Vec::new();
        if ![16, 24, 32].contains(&self.font_px) {
            e.push(format!("font_px = {}：应为 16、24 或 32", self.font_px));
        }
        if self.width_px < self.font_px {
            e.push(format!(
                "width_px = {}：至少要放下一个字（font_px = {}）",
                self.width_px, self.font_px
            ));
        }
        if self.lines == 0 || self.lines * self.font_px > self.height_px {
            e.push(format!(
                "lines = {}：{} 行 {} 点阵字放不进 height_px = {}",
                self.lines, self.lines, self.font_px, self.height_px
            ));
        }
        if !(64..=1024).contains(&self.max_bytes_per_area) {
            e.push(format!(
                "max_bytes_per_area = {}：应在 64 到 1024 之间（BX-6K 1024，BX-5K 512）",
                self.max_bytes_per_area
            ));
        }
        if self.max_item_units < 4 {
            e.push("max_item_units：至少为 4".into());
        }
        if !["red", "green", "yellow"].contains(&self.colour.as_str()) {
            e.push(format!(
                "colour = {:?}：应为 red、green 或 yellow",
                self.colour
            ));
        }
        if let Some(h) = &self.on_hours {
            if crate::led::parse_on_hours(h).is_none() {
                e.push(format!("on_hours = {h:?}：格式应如 \"07:30-18:00\""));
            }
        }
        if self.display_days == 0 {
            e.push("display_days：至少为 1".into());
        }
        if self.refresh < Duration::from_secs(1) {
            e.push("refresh：至少 1s（控制卡刷新间隔不小于 1 秒）".into());
        }
        if let Some(bx) = &self.bx {
            if bx.address.parse::<SocketAddr>().is_err() && !bx.address.contains(':') {
                e.push(format!(
                    "bx.address = {:?}：应为 主机:端口，如 192.168.1.50:5005",
                    bx.address
                ));
            }
            if bx.area_id > 7 {
                e.push(format!("bx.area_id = {}：应在 0 到 7 之间", bx.area_id));
            }
            if bx.area_timeout <= self.refresh {
                e.push("bx.area_timeout：必须长于 refresh，否则屏幕会在两次刷新之间清空".into());
            }
            if bx.area_timeout > Duration::from_secs(65535) {
                e.push("bx.area_timeout：最长 65535s".into());
            }
            if bx.speed > 0x18 {
                e.push(format!("bx.speed = {}：应在 0 到 24 之间", bx.speed));
            }
        }
        if self.file_sink.is_none() && !self.http_pull.enabled && self.bx.is_none() {
            e.push("至少启用一种输出：[file_sink]、[http_pull] 或 [bx]".into());
        }
        e
    }
}

/// `channels/<name>.toml` with `kind = "gov_site"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GovSiteFile {
    /// The platform's base URL; gongkai posts to `{base_url}/v1/disclosures`.
    pub base_url: String,
    pub app_key: String,
    pub secret_env: Option<String>,
    pub secret_file: Option<PathBuf>,
    #[serde(default = "default_gov_site_template")]
    pub template: String,
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

fn default_gov_site_template() -> String {
    "gov_site/disclosure.json.j2".into()
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

#[derive(Debug, Clone)]
pub struct GovSiteConfig {
    pub base_url: String,
    pub app_key: String,
    pub secret: SecretRef,
    pub template: String,
    pub timeout: Duration,
}

/// A list of problems, each naming where it is; shown one per line.
#[derive(Debug)]
pub struct Problems(pub Vec<String>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "配置有 {} 处问题：", self.0.len())?;
        for p in &self.0 {
            writeln!(f, "  - {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

impl Settings {
    /// Loads `path` (it must exist), the channel files and the environment overrides, then
    /// validates everything; every problem is reported at once.
    pub fn load(path: &Path) -> anyhow::Result<Settings> {
        if !path.exists() {
            anyhow::bail!(
                "配置文件 {} 不存在（可用 `gongkai default-config > config.toml` 生成示例，或用 --config 指定）",
                path.display()
            );
        }
        let figment = Figment::from(Serialized::defaults(Settings::default()))
            .merge(Toml::file(path))
            .merge(Env::prefixed("GONGKAI__").split("__"));
        let mut settings: Settings = figment.extract().map_err(|e| {
            let msgs: Vec<String> = e.into_iter().map(|e| describe_figment(&e)).collect();
            anyhow::Error::new(Problems(msgs))
        })?;
        settings.base_dir = path
            .parent()
            .map(Path::to_path_buf)
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("."));
        let mut problems = Vec::new();
        settings.channels = load_channels(&settings.resolve(&settings.channels_dir), &mut problems);
        settings.channels.calendar_dir = settings.resolve(&settings.calendar.dir);
        problems.extend(settings.validate());
        if let Some(dir) = settings.departments_dir.clone() {
            settings.departments = settings.load_departments(&dir, &mut problems);
            problems.extend(settings.validate_departments());
        }
        if !problems.is_empty() {
            return Err(anyhow::Error::new(Problems(problems)));
        }
        Ok(settings)
    }

    /// Reads every department folder under `dir` (sorted by code); problems are appended,
    /// each naming the department and the file.
    fn load_departments(&self, dir: &Path, problems: &mut Vec<String>) -> Vec<DepartmentSpec> {
        let root = self.resolve(dir);
        let entries = match std::fs::read_dir(&root) {
            Ok(e) => e,
            Err(e) => {
                problems.push(format!(
                    "departments_dir：无法读取部门目录 {}：{e}",
                    root.display()
                ));
                return Vec::new();
            }
        };
        let mut dirs: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .filter(|p| {
                !p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with('.'))
            })
            .collect();
        dirs.sort();
        let before = problems.len();
        let mut out = Vec::new();
        for dir in dirs {
            let Some(code) = dir.file_name().and_then(|n| n.to_str()).map(str::to_string) else {
                problems.push(format!("{}：部门目录名不是有效的 UTF-8", dir.display()));
                continue;
            };
            if let Err(e) = check_department_code(&code) {
                problems.push(format!("{}：{e}", dir.display()));
                continue;
            }
            if let Some(spec) = self.load_department(&code, &dir, problems) {
                out.push(spec);
            }
        }
        if out.is_empty() && problems.len() == before {
            problems.push(format!(
                "departments_dir：部门目录 {} 中没有任何部门（每个部门一个子目录，内含 {DEPARTMENT_FILE}）；不需要多部门请删除此项",
                root.display()
            ));
        }
        out
    }

    fn load_department(
        &self,
        code: &str,
        dir: &Path,
        problems: &mut Vec<String>,
    ) -> Option<DepartmentSpec> {
        let file = dir.join(DEPARTMENT_FILE);
        let at = format!("部门 {code}（{}）", file.display());
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) => {
                problems.push(format!(
                    "{at}：无法读取部门配置文件（每个部门目录须有 {DEPARTMENT_FILE}）：{e}"
                ));
                return None;
            }
        };
        let f: DepartmentFile = match toml::from_str(&text) {
            Ok(f) => f,
            Err(e) => {
                problems.push(format!("{at}：TOML 格式错误：{}", e.message()));
                return None;
            }
        };
        let mut errs = Vec::new();
        let name = f.name.unwrap_or_default();
        if name.trim().is_empty() {
            errs.push(format!(
                "{at}：name：须写部门名称，如 name = \"福州市民政局\""
            ));
        }
        let publisher = f.publisher.unwrap_or_default();
        if publisher.trim().is_empty() {
            errs.push(format!(
                "{at}：publisher：须写发布机关（本部门公开件的 publisher 字段须与之相同），如 publisher = \"福州市民政局\""
            ));
        }
        if let Some(cb) = &f.wechat_callback {
            let fixed = crate::wechat_callback::config::WechatCallbackSettings::default().path;
            if cb.path != fixed {
                errs.push(format!(
                    "{at}：[wechat_callback] path = {:?}：部门的公众号回调地址固定为 /wechat/{code}（及 /wechat/{code}/渠道名/callback），请删除此项",
                    cb.path
                ));
            }
        }
        if f.api.token_env.is_none() && f.api.token_file.is_none() {
            errs.push(format!(
                "{at}：[api]：须配置 token_env 或 token_file（每个部门用自己的 API 令牌，令牌决定请求属于哪个部门）"
            ));
        }
        problems.extend(errs);
        let channels_dir = dir.join("channels");
        let mut channel_problems = Vec::new();
        let mut channels = load_channels(&channels_dir, &mut channel_problems);
        channels.calendar_dir = self.resolve(&self.calendar.dir);
        problems.extend(
            channel_problems
                .into_iter()
                .map(|p| format!("部门 {code}：{p}")),
        );
        let resolve_in = |p: PathBuf| if p.is_absolute() { p } else { dir.join(p) };
        Some(DepartmentSpec {
            department: Department {
                code: code.to_string(),
                name: name.trim().to_string(),
                publisher: Some(publisher.trim().to_string()).filter(|p| !p.is_empty()),
                dir: Some(dir.to_path_buf()),
            },
            api: ApiSettings {
                token_env: f.api.token_env,
                token_file: f.api.token_file.map(resolve_in),
            },
            categories: f.categories,
            channels_dir,
            channels,
            baseline: f.report.baseline,
            applications_dir: resolve_in(
                f.report
                    .applications_dir
                    .unwrap_or_else(|| PathBuf::from("applications")),
            ),
            wechat_callback: {
                let mut cb = f.wechat_callback.unwrap_or_default();
                cb.encoding_aes_key_file = cb.encoding_aes_key_file.map(resolve_in);
                cb
            },
        })
    }

    /// This config as one department sees it: the shared sections (server, worker, retry,
    /// gate, calendar, templates, database …) from here, the department's own parts over them.
    pub fn department_view(&self, spec: &DepartmentSpec) -> Settings {
        let mut v = self.clone();
        v.departments = Vec::new();
        v.department = spec.department.clone();
        v.api = spec.api.clone();
        v.categories = spec.categories.clone();
        v.channels_dir = spec.channels_dir.clone();
        v.channels = spec.channels.clone();
        v.channels.calendar_dir = self.resolve(&self.calendar.dir);
        v.report.baseline = spec.baseline.clone();
        v.report.applications_dir = spec.applications_dir.clone();
        v.wechat_callback = spec.wechat_callback.clone();
        v
    }

    /// Every department's view, `default` (this config itself) first, then the departments
    /// of `departments_dir` by code. Built from the current settings, so changes made after
    /// `load` (tests, environment) reach every department.
    pub fn department_views(&self) -> Vec<Arc<Settings>> {
        let mut top = self.clone();
        top.departments = Vec::new();
        let mut out = vec![Arc::new(top)];
        out.extend(
            self.departments
                .iter()
                .map(|spec| Arc::new(self.department_view(spec))),
        );
        out
    }

    /// One department's view by code (`default`: this config), for the command line.
    pub fn for_department(&self, code: &str) -> anyhow::Result<Settings> {
        if code == crate::store::DEFAULT_DEPARTMENT {
            let mut top = self.clone();
            top.departments = Vec::new();
            return Ok(top);
        }
        match self.departments.iter().find(|d| d.department.code == code) {
            Some(spec) => Ok(self.department_view(spec)),
            None => {
                let known: Vec<&str> = std::iter::once(crate::store::DEFAULT_DEPARTMENT)
                    .chain(self.departments.iter().map(|d| d.department.code.as_str()))
                    .collect();
                anyhow::bail!(
                    "没有部门 {code:?}（已配置的部门：{}；部门在 departments_dir 的子目录中配置）",
                    known.join("、")
                )
            }
        }
    }

    /// Problems of the departments of `departments_dir`, each naming the department and
    /// its file: each one's own settings, and what departments must not share (the source
    /// of an API token, a WeChat official account).
    fn validate_departments(&self) -> Vec<String> {
        let mut p = Vec::new();
        let views = self.department_views();
        for v in views.iter().skip(1) {
            let at = format!(
                "部门 {}（{}）",
                v.department.code,
                v.department
                    .file()
                    .map(|f| f.display().to_string())
                    .unwrap_or_default()
            );
            p.extend(
                v.validate_department()
                    .into_iter()
                    .map(|m| format!("{at}：{m}")),
            );
        }
        // The same token source for two departments would give both the same token.
        let mut sources: BTreeMap<String, &str> = BTreeMap::new();
        for v in &views {
            let mut keys = Vec::new();
            if let Some(env) = &v.api.token_env {
                keys.push(format!("环境变量 {env}"));
            }
            if let Some(file) = &v.api.token_file {
                let file = v.resolve(file);
                // The same file by another path (`../other/secrets/api_token`) is the same.
                let file = std::fs::canonicalize(&file).unwrap_or(file);
                keys.push(format!("令牌文件 {}", file.display()));
            }
            for key in keys {
                if let Some(first) = sources.insert(key.clone(), v.department.code.as_str()) {
                    p.push(format!(
                        "部门 {first} 与部门 {} 的 [api] 令牌来自同一处（{key}）：每个部门须有自己的令牌，令牌决定请求属于哪个部门",
                        v.department.code
                    ));
                }
            }
        }
        // One official account belongs to one department: its callback answers from that
        // department's items, and its token and media live under its appid.
        let mut appids: BTreeMap<String, (String, String)> = BTreeMap::new();
        for v in &views {
            for (name, spec) in &v.channels.channels {
                let ChannelSpec::Wechat(w) = spec else {
                    continue;
                };
                let file = v.channels_dir_path().join(format!("{name}.toml"));
                match appids.get(&w.appid) {
                    Some((dept, first)) if *dept != v.department.code => p.push(format!(
                        "部门 {} 的 {} 与部门 {dept} 的 {first} 使用同一个微信公众号 appid {:?}：一个公众号只能属于一个部门",
                        v.department.code,
                        file.display(),
                        w.appid
                    )),
                    Some(_) => {}
                    None => {
                        appids.insert(
                            w.appid.clone(),
                            (v.department.code.clone(), file.display().to_string()),
                        );
                    }
                }
            }
        }
        p
    }

    /// `channels_dir` resolved (a department's is absolute already).
    pub fn channels_dir_path(&self) -> PathBuf {
        self.resolve(&self.channels_dir)
    }

    /// Where a template is read from: the department's own `templates/` when it has the
    /// file, else the top-level templates folder.
    pub fn template_file(&self, name: &str) -> PathBuf {
        if let Some(dir) = self.department_templates_dir() {
            let own = dir.join(name);
            if own.is_file() {
                return own;
            }
        }
        self.templates_path().join(name)
    }

    /// The department's own templates folder, if it has one.
    pub fn department_templates_dir(&self) -> Option<PathBuf> {
        self.department
            .dir
            .as_ref()
            .map(|d| d.join("templates"))
            .filter(|d| d.is_dir())
    }

    /// The templates this department renders with: the top-level folder, then its own
    /// folder over it (same relative name = its own wins).
    pub fn renderer(&self) -> Result<crate::render::Renderer, Vec<String>> {
        let mut dirs = vec![self.templates_path()];
        dirs.extend(self.department_templates_dir());
        crate::render::Renderer::load_layered(&dirs)
    }

    /// A path from the config, relative to the config file's folder.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base_dir.join(p)
        }
    }

    /// How to open the store: the pool size from `database_max_connections`.
    pub fn store_options(&self) -> crate::store::ConnectOptions {
        crate::store::ConnectOptions {
            max_connections: self.database_max_connections,
        }
    }

    /// `database_url` with a relative SQLite path made relative to the config folder.
    pub fn resolved_database_url(&self) -> String {
        if let Some(rest) = self.database_url.strip_prefix("sqlite://") {
            let path = Path::new(rest);
            if !path.is_absolute() && rest != ":memory:" {
                return format!("sqlite://{}", self.base_dir.join(path).display());
            }
        }
        self.database_url.clone()
    }

    pub fn templates_path(&self) -> PathBuf {
        self.resolve(&self.templates_dir)
    }

    /// The working-day calendar from `calendar.dir` (embedded data if it cannot be read).
    pub fn calendar(&self) -> crate::calendar::Calendar {
        crate::calendar::Calendar::load(&self.resolve(&self.calendar.dir))
    }

    pub fn category(&self, code: &str) -> Option<&Category> {
        self.categories.iter().find(|c| c.code == code)
    }

    /// The bearer token that protects `/api/v1`, if one is configured.
    pub fn api_token(&self) -> anyhow::Result<Option<Secret>> {
        resolve_secret(
            self.api.token_env.as_deref(),
            self.api
                .token_file
                .as_deref()
                .map(|p| self.resolve(p))
                .as_deref(),
        )
        .map_err(|e| anyhow::anyhow!("[api] 令牌：{e}"))
    }

    /// Where this view's problems are: "" for the top-level config, "部门 X（file）：" for a
    /// department of `departments_dir`.
    pub fn department_prefix(&self) -> String {
        match self.department.file() {
            Some(file) => format!("部门 {}（{}）：", self.department.code, file.display()),
            None => String::new(),
        }
    }
}

/// Every department's API token, read now (`serve`, `check-config`): each must be
/// configured and readable, and no two departments may have the same token, since the
/// token is what says which department a request is for. Problems name the department.
pub fn department_tokens(
    views: &[Arc<Settings>],
) -> Result<Vec<(Secret, Arc<Settings>)>, Vec<String>> {
    let mut out: Vec<(Secret, Arc<Settings>)> = Vec::new();
    let mut problems = Vec::new();
    for v in views {
        let at = v.department_prefix();
        match v.api_token() {
            Err(e) => problems.push(format!("{at}{e}")),
            Ok(None) => problems.push(format!(
                "{at}未配置 API 令牌：请在 [api] 中设置 token_env（环境变量名）或 token_file"
            )),
            Ok(Some(token)) => {
                if let Some((_, first)) = out.iter().find(|(t, _)| *t == token) {
                    problems.push(format!(
                        "部门 {} 与部门 {} 的 API 令牌相同：每个部门须有自己的令牌，令牌决定请求属于哪个部门",
                        first.department.code, v.department.code
                    ));
                } else {
                    out.push((token, v.clone()));
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

impl Settings {
    pub fn instance_id(&self) -> String {
        self.worker.instance_id.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/etc/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_else(|_| "gongkai".into());
            format!("{host}-{}", std::process::id())
        })
    }

    /// Every problem with the settings, each naming the key: the shared sections and the
    /// top-level config's own department (`default`).
    pub fn validate(&self) -> Vec<String> {
        let mut p = self.validate_shared();
        p.extend(self.validate_department());
        p
    }

    /// Problems of the sections every department shares.
    fn validate_shared(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.server.listen.parse::<SocketAddr>().is_err() {
            p.push(format!(
                "server.listen = {:?}：不是有效的监听地址（应如 127.0.0.1:8080）",
                self.server.listen
            ));
        }
        if let Some(l) = &self.metrics.listen {
            if l.parse::<SocketAddr>().is_err() {
                p.push(format!(
                    "metrics.listen = {l:?}：不是有效的监听地址（应如 127.0.0.1:9464）"
                ));
            }
        }
        if self.console.max_failed_sign_ins == 0 {
            p.push("console.max_failed_sign_ins：必须至少为 1".into());
        }
        if self.console.session_ttl < Duration::from_secs(60) {
            p.push("console.session_ttl：至少 1m".into());
        }
        if self.server.max_body_bytes == 0 {
            p.push("server.max_body_bytes：必须大于 0".into());
        }
        if self.worker.concurrency == 0 {
            p.push("worker.concurrency：必须至少为 1".into());
        }
        if self.worker.lease < Duration::from_secs(1) {
            p.push("worker.lease：至少 1s".into());
        }
        if self.retry.schedule.is_empty() {
            p.push("retry.schedule：至少需要一个间隔，如 [\"10s\", \"1m\"]".into());
        }
        if !(0.0..1.0).contains(&self.retry.jitter) {
            p.push(format!(
                "retry.jitter = {}：应在 0 到 1 之间（不含 1）",
                self.retry.jitter
            ));
        }
        if self.retry.max_attempts == 0 {
            p.push("retry.max_attempts：必须至少为 1".into());
        }
        if !(self.database_url.starts_with("sqlite:")
            || self.database_url.starts_with("postgres://")
            || self.database_url.starts_with("postgresql://"))
        {
            p.push(format!(
                "database_url = {:?}：应以 sqlite:// 或 postgres:// 开头",
                self.database_url
            ));
        }
        if self.database_max_connections < 2 {
            p.push(format!(
                "database_max_connections = {}：至少为 2（PostgreSQL 的一个连接用于监听新任务通知）",
                self.database_max_connections
            ));
        }
        if !(self.report.warn_at > 0.0 && self.report.warn_at <= 1.0) {
            p.push(format!(
                "report.warn_at = {}：应在 0 到 1 之间（如 0.6 表示用去 60% 时限即提醒）",
                self.report.warn_at
            ));
        }
        for (i, w) in self.gate.forbidden_words.iter().enumerate() {
            if w.trim().is_empty() {
                p.push(format!("gate.forbidden_words[{i}]：不能为空"));
            }
        }
        for (i, t) in self.gate.outdated_terms.iter().enumerate() {
            if t.term.trim().is_empty() {
                p.push(format!("gate.outdated_terms[{i}].term：不能为空"));
            }
            if t.correct.trim().is_empty() || t.correct == t.term {
                p.push(format!(
                    "gate.outdated_terms[{i}].correct：应写出与 {:?} 不同的正确表述",
                    t.term
                ));
            }
        }
        let templates = self.templates_path();
        if !templates.is_dir() {
            p.push(format!(
                "templates_dir：模板目录 {} 不存在",
                templates.display()
            ));
        }
        p
    }

    /// Problems of one department's own settings (its taxonomy, channels, baseline, WeChat
    /// callback and the templates its channels use).
    fn validate_department(&self) -> Vec<String> {
        let mut p = Vec::new();
        let codes: Vec<String> = self.categories.iter().map(|c| c.code.clone()).collect();
        p.extend(self.wechat_callback.validate(&codes));
        if self.categories.is_empty() {
            p.push("categories：至少需要一个 [[categories]] 分类".into());
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, c) in self.categories.iter().enumerate() {
            let at = format!("categories[{i}]（{}）", c.code);
            if c.code.trim().is_empty() {
                p.push(format!("categories[{i}].code：不能为空"));
            } else if !seen.insert(c.code.as_str()) {
                p.push(format!("{at}.code：分类代码重复"));
            }
            if c.name.trim().is_empty() {
                p.push(format!("{at}.name：不能为空"));
            }
            for ch in &c.channels {
                if !self.channels.channels.contains_key(ch) {
                    p.push(format!(
                        "{at}.channels：渠道 {ch:?} 未配置（{} 中没有 {ch}.toml）",
                        self.channels_dir.display()
                    ));
                }
            }
            if c.deadline_working_days == 0 {
                p.push(format!("{at}.deadline_working_days：必须至少为 1"));
            }
            if c.display_min_working_days == Some(0) {
                p.push(format!(
                    "{at}.display_min_working_days：必须至少为 1（不需要公示期请删除此项）"
                ));
            }
        }
        for ch in self.report.baseline.channels.keys() {
            if !self.channels.channels.contains_key(ch) {
                p.push(format!("report.baseline.channels.{ch}：渠道 {ch:?} 未配置"));
            }
        }
        for code in self.report.baseline.categories.keys() {
            if self.category(code).is_none() {
                p.push(format!(
                    "report.baseline.categories.{code}：分类 {code:?} 未配置"
                ));
            }
        }
        for (name, spec) in &self.channels.channels {
            if let ChannelSpec::Wechat(w) = spec {
                for other in &w.after {
                    if other == name || !self.channels.channels.contains_key(other) {
                        p.push(format!(
                            "channels/{name}.toml after：渠道 {other:?} 未配置或是自身"
                        ));
                    }
                }
            }
        }
        if self.templates_path().is_dir() {
            for (name, spec) in &self.channels.channels {
                let t = self.template_file(spec.template());
                if !t.is_file() {
                    p.push(format!(
                        "channels/{name}.toml template = {:?}：模板文件 {} 不存在",
                        spec.template(),
                        t.display()
                    ));
                }
            }
        }
        p
    }
}

fn describe_figment(e: &figment::Error) -> String {
    let mut s = String::new();
    if !e.path.is_empty() {
        s.push_str(&e.path.join("."));
        s.push('：');
    }
    s.push_str(&e.kind.to_string());
    if let Some(md) = &e.metadata {
        if let Some(src) = &md.source {
            s.push_str(&format!("（来源：{src}）"));
        } else {
            s.push_str(&format!("（来源：{}）", md.name));
        }
    }
    s
}

/// Reads a secret from the named environment variable, or else from the file.
pub fn resolve_secret(env: Option<&str>, file: Option<&Path>) -> Result<Option<Secret>, String> {
    if let Some(var) = env {
        match std::env::var(var) {
            Ok(v) if !v.trim().is_empty() => return Ok(Some(Secret::new(v.trim()))),
            _ if file.is_some() => {}
            _ => return Err(format!("环境变量 {var} 未设置或为空")),
        }
    }
    if let Some(path) = file {
        let v = std::fs::read_to_string(path)
            .map_err(|e| format!("无法读取密钥文件 {}：{e}", path.display()))?;
        if v.trim().is_empty() {
            return Err(format!("密钥文件 {} 为空", path.display()));
        }
        return Ok(Some(Secret::new(v.trim())));
    }
    Ok(None)
}

/// Reads every `*.toml` in `dir`; problems are appended, each naming the file.
pub fn load_channels(dir: &Path, problems: &mut Vec<String>) -> ChannelSettings {
    let mut out = ChannelSettings::default();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            problems.push(format!(
                "channels_dir：无法读取渠道目录 {}：{e}",
                dir.display()
            ));
            return out;
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    for file in files {
        let name = file
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        let shown = file.display().to_string();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        {
            problems.push(format!(
                "{shown}：渠道名（文件名）只能含小写字母、数字、- 和 _"
            ));
            continue;
        }
        match load_channel(dir, &file) {
            Ok(spec) => {
                out.channels.insert(name, spec);
            }
            Err(errs) => problems.extend(errs.into_iter().map(|e| format!("{shown}：{e}"))),
        }
    }
    out
}

fn load_channel(dir: &Path, file: &Path) -> Result<ChannelSpec, Vec<String>> {
    let text = std::fs::read_to_string(file).map_err(|e| vec![format!("无法读取：{e}")])?;
    let mut table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| vec![format!("TOML 格式错误：{}", e.message())])?;
    let kind = match table.remove("kind") {
        Some(toml::Value::String(k)) => k,
        Some(_) => return Err(vec!["kind：应为字符串，如 kind = \"gov_site\"".into()]),
        None => return Err(vec!["缺少 kind（渠道类型，如 kind = \"gov_site\"）".into()]),
    };
    match kind.as_str() {
        "gov_site" => {
            let f: GovSiteFile = toml::Value::Table(table)
                .try_into()
                .map_err(|e: toml::de::Error| vec![e.message().to_string()])?;
            let mut errs = Vec::new();
            if !(f.base_url.starts_with("http://") || f.base_url.starts_with("https://")) {
                errs.push(format!(
                    "base_url = {:?}：应以 http:// 或 https:// 开头",
                    f.base_url
                ));
            }
            if f.app_key.trim().is_empty() {
                errs.push("app_key：不能为空".into());
            }
            if f.secret_env.is_none() && f.secret_file.is_none() {
                errs.push("需要 secret_env（存放签名密钥的环境变量名）或 secret_file".into());
            }
            if !errs.is_empty() {
                return Err(errs);
            }
            Ok(ChannelSpec::GovSite(GovSiteConfig {
                base_url: f.base_url.trim_end_matches('/').to_string(),
                app_key: f.app_key,
                secret: SecretRef {
                    env: f.secret_env,
                    file: f
                        .secret_file
                        .map(|p| if p.is_absolute() { p } else { dir.join(p) }),
                },
                template: f.template,
                timeout: f.timeout,
            }))
        }
        "led" => {
            let mut f: LedConfig = toml::Value::Table(table)
                .try_into()
                .map_err(|e: toml::de::Error| vec![e.message().to_string()])?;
            let errs = f.problems();
            if !errs.is_empty() {
                return Err(errs);
            }
            if let Some(sink) = &mut f.file_sink {
                if sink.dir.is_relative() {
                    sink.dir = dir.join(&sink.dir);
                }
            }
            Ok(ChannelSpec::Led(f))
        }
        "wechat" => {
            crate::channel::wechat::WechatConfig::from_table(dir, table).map(ChannelSpec::Wechat)
        }
        other => Err(vec![format!(
            "kind = {other:?}：未知的渠道类型（可选：gov_site, wechat, led）"
        )]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_show_in_debug_output() {
        let s = Secret::new("topsecret");
        assert!(!format!("{s:?}").contains("topsecret"));
    }
}
