//! `spawn_app()`: a real `Application` (port 0, SQLite file in a temp dir, worker driven
//! step by step; `spawn_app_on_postgres()`: the same on a fresh PostgreSQL database when
//! `GONGKAI_TEST_DATABASE_URL` is set) wired to a real sandbox on loopback, plus helpers to build disclosures,
//! post them, drive the worker and read what the emulated platform holds.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use gongkai::app::Application;
use gongkai::config::Settings;
use gongkai::delivery::worker::{RunSummary, Worker};
use gongkai::delivery::Ledger;
use gongkai::domain::DeliveryStatus;
use gongkai::sandbox::{self, SandboxHandle};
use gongkai::store::{AttemptRow, DeliveryFilter, DeliveryRow};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::sync::watch;

#[path = "../support/pg.rs"]
pub mod pg;

pub const SECRET: &str = "test-secret-0123456789";
pub const TOKEN: &str = "test-token-abcdef";

pub struct TestApp {
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    pub api: String,
    pub client: reqwest::Client,
    pub ledger: Arc<Ledger>,
    pub worker: Arc<Worker>,
    pub screens: gongkai::led::Screens,
    pub sandbox: SandboxHandle,
    /// `http://addr` of the `/metrics` listener when `[metrics] listen` was set.
    pub metrics: Option<String>,
    stop: watch::Sender<bool>,
    /// The PostgreSQL database of a `spawn_app_on_postgres` app, dropped with it.
    _pg: Option<pg::TestDatabase>,
}

/// A sandbox with the website app of the demo's layout (`lay_out`).
pub async fn spawn_sandbox() -> SandboxHandle {
    spawn_sandbox_with(sandbox::SandboxConfig {
        gov_site_apps: vec![site_app()],
        ..Default::default()
    })
    .await
}

fn site_app() -> sandbox::GovSiteApp {
    sandbox::GovSiteApp {
        app_key: "zpmzj".into(),
        secret: SECRET.into(),
    }
}

async fn spawn_sandbox_with(config: sandbox::SandboxConfig) -> SandboxHandle {
    sandbox::spawn(TcpListener::bind("127.0.0.1:0").await.unwrap(), config).await
}

/// The official account of the WeChat tests (callback and publishing).
pub const APPID: &str = "wx00000000sandbox";
pub const APP_SECRET: &str = "wechat-app-secret";
pub const CB_TOKEN: &str = "cbtoken123";

/// A sandbox with the website app and the official account `APPID`; the emulator finishes
/// a publish job 10 ms after the submit.
pub async fn spawn_wechat_sandbox() -> SandboxHandle {
    spawn_sandbox_with(sandbox::SandboxConfig {
        gov_site_apps: vec![site_app()],
        wechat_apps: vec![sandbox::wechat::WechatApp {
            appid: APPID.into(),
            secret: APP_SECRET.into(),
            callback_token: CB_TOKEN.into(),
            callback_url: None,
        }],
        wechat_publish_delay_ms: Some(10),
    })
    .await
}

/// Lays out a working folder (the demo's layout) for a platform at `sandbox`.
pub fn lay_out(dir: &std::path::Path, sandbox: &SandboxHandle) -> PathBuf {
    gongkai::demo::lay_out(
        dir,
        &format!("{}/gov_site", sandbox.base_url()),
        SECRET,
        TOKEN,
    )
    .unwrap()
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Like `spawn_app`, with a chance to change the settings first.
pub async fn spawn_app_with(tweak: impl FnOnce(&mut Settings)) -> TestApp {
    spawn(false, tweak).await
}

/// Like `spawn_app`, on a fresh PostgreSQL database; `None` (the test is skipped) when
/// `GONGKAI_TEST_DATABASE_URL` is not set.
pub async fn spawn_app_on_postgres() -> Option<TestApp> {
    let database = pg::TestDatabase::create().await?;
    let url = database.url.clone();
    let mut app = spawn(false, move |s| s.database_url = url).await;
    app._pg = Some(database);
    Some(app)
}

/// The website and the hall LED screen `hall_led` (GB2312 bar, file sink, HTTP pull and the
/// sandbox's BX controller), every category routed to both.
pub async fn spawn_app_with_led() -> TestApp {
    spawn(true, |_| {}).await
}

/// Like `spawn_app_with_led`, with a chance to change the settings first.
pub async fn spawn_app_with_led_and(tweak: impl FnOnce(&mut Settings)) -> TestApp {
    spawn(true, tweak).await
}

async fn spawn(with_led: bool, tweak: impl FnOnce(&mut Settings)) -> TestApp {
    if std::env::var("TEST_LOG").is_ok() {
        gongkai::telemetry::init("info");
    }
    let sandbox = spawn_sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let config_path = if with_led {
        gongkai::demo::lay_out_with_led(
            dir.path(),
            &format!("{}/gov_site", sandbox.base_url()),
            sandbox.led_addr,
            SECRET,
            TOKEN,
        )
        .unwrap()
    } else {
        lay_out(dir.path(), &sandbox)
    };
    let mut settings = Settings::load(&config_path).unwrap();
    // The tests drive the worker themselves, and retry in milliseconds.
    settings.worker.enabled = false;
    settings.retry.schedule = vec![Duration::from_millis(10), Duration::from_millis(20)];
    settings.retry.max_attempts = 4;
    settings.worker.instance_id = Some("test-worker".into());
    tweak(&mut settings);
    let app = Application::build(settings).await.unwrap();
    let api = format!("http://{}", app.addr());
    let ledger = app.ledger();
    let worker = app.worker();
    let screens = app.screens();
    let metrics = app.metrics_addr().map(|a| format!("http://{a}"));
    let (stop, rx) = watch::channel(false);
    tokio::spawn(app.run_until_stopped(rx));
    TestApp {
        dir,
        config_path,
        api,
        client: reqwest::Client::new(),
        ledger,
        worker,
        screens,
        sandbox,
        metrics,
        stop,
        _pg: None,
    }
}

impl TestApp {
    /// A `TestApp` around an application built elsewhere (e.g. with extra channel files).
    pub fn from_parts(
        dir: tempfile::TempDir,
        config_path: PathBuf,
        api: String,
        ledger: Arc<Ledger>,
        worker: Arc<Worker>,
        sandbox: SandboxHandle,
        stop: watch::Sender<bool>,
    ) -> TestApp {
        TestApp {
            dir,
            config_path,
            api,
            client: reqwest::Client::new(),
            ledger,
            worker,
            screens: gongkai::led::Screens::new(),
            sandbox,
            metrics: None,
            stop,
            _pg: None,
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

impl TestApp {
    pub async fn post_disclosure(&self, body: &Value) -> reqwest::Response {
        self.post_raw(serde_json::to_vec(body).unwrap()).await
    }

    pub async fn post_raw(&self, body: Vec<u8>) -> reqwest::Response {
        self.client
            .post(format!("{}/api/v1/disclosures", self.api))
            .bearer_auth(TOKEN)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn api_post(&self, path: &str, body: Value, operator: &str) -> reqwest::Response {
        self.client
            .post(format!("{}/api/v1{path}", self.api))
            .bearer_auth(TOKEN)
            .header("x-operator", operator)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn api_get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}/api/v1{path}", self.api))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
    }

    /// Works due deliveries until nothing is left to claim. Retries scheduled in the future
    /// are taken at once: `now` is moved a day ahead instead of sleeping.
    pub async fn run_worker_until_idle(&self) -> RunSummary {
        let mut total = RunSummary::default();
        for _ in 0..100 {
            let s = self
                .worker
                .run_once(Utc::now() + chrono::Duration::days(1))
                .await
                .unwrap();
            if s.is_idle() {
                return total;
            }
            total.claimed += s.claimed;
            total.delivered += s.delivered;
            total.will_retry += s.will_retry;
            total.dead += s.dead;
            total.unrecorded += s.unrecorded;
        }
        panic!("the worker never became idle");
    }

    pub async fn deliveries(&self) -> Vec<DeliveryRow> {
        self.ledger
            .store
            .list_deliveries(self.ledger.department(), &DeliveryFilter::default())
            .await
            .unwrap()
    }

    pub async fn deliveries_of(&self, disclosure_id: &str) -> Vec<DeliveryRow> {
        self.ledger
            .store
            .list_deliveries(
                self.ledger.department(),
                &DeliveryFilter {
                    disclosure_id: Some(disclosure_id.into()),
                    ..DeliveryFilter::default()
                },
            )
            .await
            .unwrap()
    }

    pub async fn attempts(&self, delivery_id: i64) -> Vec<AttemptRow> {
        self.ledger
            .store
            .list_attempts(self.ledger.department(), delivery_id)
            .await
            .unwrap()
    }

    pub async fn sandbox_state(&self) -> Value {
        sandbox_state(&self.sandbox).await
    }

    pub async fn fault(&self, spec: Value) {
        fault(&self.sandbox, spec).await
    }
}

pub async fn sandbox_state(sandbox: &SandboxHandle) -> Value {
    reqwest::get(format!("{}/_sandbox/state", sandbox.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

pub async fn fault(sandbox: &SandboxHandle, spec: Value) {
    let r = reqwest::Client::new()
        .post(format!("{}/_sandbox/faults", sandbox.base_url()))
        .json(&spec)
        .send()
        .await
        .unwrap();
    assert!(
        r.status().is_success(),
        "fault refused: {}",
        r.text().await.unwrap()
    );
}

pub fn platform_doc<'a>(state: &'a Value, disclosure_id: &str) -> Option<&'a Value> {
    state["gov_site"]["docs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["disclosure_id"] == disclosure_id)
}

pub fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// A valid disclosure of category `mzfp` (routed to gov_site).
pub fn disclosure(id: &str, revision: i64) -> Value {
    disclosure_with_body(
        id,
        revision,
        "<p>现将本季度城乡低保资金发放情况公示如下。</p>",
    )
}

pub fn disclosure_with_body(id: &str, revision: i64, body: &str) -> Value {
    json!({
        "disclosure_id": id,
        "revision": revision,
        "title": format!("关于2017年第{revision}季度城乡低保资金发放情况的公示"),
        "short_title": "低保资金发放公示",
        "publisher": "漳平市民政局",
        "formed_date": "2017-04-03",
        "publish_date": "2017-04-07",
        "category": "mzfp",
        "body_html": body,
        "review": {
            "content_sha256": sha256_hex(body),
            "steps": [
                {"role": "初审", "by": "u102", "at": "2017-04-05T09:12:00+08:00"},
                {"role": "复审", "by": "u031", "at": "2017-04-06T15:40:00+08:00"},
                {"role": "终审", "by": "u007", "at": "2017-04-07T08:55:00+08:00"}
            ]
        }
    })
}

pub fn status_of(rows: &[DeliveryRow]) -> Vec<DeliveryStatus> {
    rows.iter().map(|d| d.status).collect()
}
