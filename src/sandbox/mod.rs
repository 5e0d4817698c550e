//! The sandbox: in-process emulators of the remote systems gongkai publishes to, served over
//! real HTTP (normally on loopback) for tests, the demo and operators.
//!
//! This module owns the shared plumbing: [`SandboxConfig`], [`SandboxState`], the combined
//! [`router`], the control endpoints under `/_sandbox/` (state snapshot and fault injection),
//! and the ways to run it ([`spawn`] for tests, [`run`] for `gongkai sandbox --listen`).
//! Each emulated system lives in its own submodule under its own path prefix:
//!
//! * [`gov_site`] — the government website content platform (§4.4 generic JSON push), at `/gov_site`.
//! * [`led`] — an Onbon BX-5K/6K LED controller on its own TCP port (§5.1), controlled
//!   under `/_sandbox/led/`.
//! * [`wechat`] — the WeChat official-account API (token, material, draft, freepublish), at
//!   `/wechat_api`; gongkai's `api_base` is `http://<addr>/wechat_api`.

pub mod faults;
pub mod gov_site;
pub mod led;
pub mod wechat;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Path prefix the website platform emulator is mounted at.
pub const GOV_SITE_PREFIX: &str = "/gov_site";
/// Path prefix the WeChat API emulator is mounted at.
pub const WECHAT_PREFIX: &str = "/wechat_api";

/// What the sandbox emulates and with which credentials.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SandboxConfig {
    /// Apps (app key + shared secret) the website platform accepts.
    #[serde(default)]
    pub gov_site_apps: Vec<GovSiteApp>,
    /// Official accounts the WeChat API emulator knows.
    #[serde(default)]
    pub wechat_apps: Vec<wechat::WechatApp>,
    /// How long an emulated publish job runs before it finishes (default 50 ms).
    #[serde(default)]
    pub wechat_publish_delay_ms: Option<u64>,
}

/// One app registered on the emulated website platform.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GovSiteApp {
    pub app_key: String,
    pub secret: String,
}

/// Everything the sandbox remembers; cheap to clone (all clones share the same state).
#[derive(Clone)]
pub struct SandboxState {
    inner: Arc<Shared>,
}

struct Shared {
    gov_site: gov_site::GovSiteState,
    led: led::LedEmulator,
    wechat: wechat::WechatState,
    faults: faults::Faults,
    /// Address the server listens on, once known; used for URLs when a request has no Host.
    addr: Arc<OnceLock<SocketAddr>>,
}

impl SandboxState {
    pub fn new(config: SandboxConfig) -> Self {
        let addr = Arc::new(OnceLock::new());
        SandboxState {
            inner: Arc::new(Shared {
                gov_site: gov_site::GovSiteState::new(&config.gov_site_apps, addr.clone()),
                led: led::LedEmulator::default(),
                wechat: wechat::WechatState::new(
                    &config.wechat_apps,
                    Duration::from_millis(config.wechat_publish_delay_ms.unwrap_or(50)),
                    addr.clone(),
                ),
                faults: faults::Faults::default(),
                addr,
            }),
        }
    }

    /// The website platform emulator's state.
    pub fn gov_site(&self) -> &gov_site::GovSiteState {
        &self.inner.gov_site
    }

    /// The LED controller emulator's state.
    pub fn led(&self) -> &led::LedEmulator {
        &self.inner.led
    }

    /// The WeChat API emulator's state.
    pub fn wechat(&self) -> &wechat::WechatState {
        &self.inner.wechat
    }

    /// The fault-injection table.
    pub fn faults(&self) -> &faults::Faults {
        &self.inner.faults
    }

    /// Records the listening address (first call wins).
    pub fn set_addr(&self, addr: SocketAddr) {
        let _ = self.inner.addr.set(addr);
    }

    /// The JSON served at `GET /_sandbox/state`.
    pub fn snapshot(&self) -> serde_json::Value {
        serde_json::json!({
            "gov_site": self.inner.gov_site.snapshot(),
            "led": self.inner.led.snapshot(),
            "wechat": self.inner.wechat.snapshot(),
            "faults_injected": self.inner.faults.injected(),
        })
    }
}

/// The whole sandbox: every emulator under its prefix, plus `/_sandbox/*`, wrapped in the
/// fault-injection layer.
pub fn router(state: SandboxState) -> Router {
    let control = Router::new()
        .route("/_sandbox/state", get(get_state))
        .route(
            "/_sandbox/faults",
            get(faults::list).post(faults::add).delete(faults::clear),
        )
        .route("/_sandbox/wechat/expire_tokens", post(wechat_expire_tokens))
        .route("/_sandbox/wechat/callback", post(wechat_set_callback))
        .route("/_sandbox/wechat/mass_quota", post(wechat_mass_quota))
        .with_state(state.clone());
    let led_control = Router::new()
        .route(
            "/_sandbox/led/faults",
            post(led::add_fault).delete(led::clear_faults),
        )
        .route("/_sandbox/led/power", post(led::power))
        .with_state(state.inner.led.clone());
    Router::new()
        .nest(
            GOV_SITE_PREFIX,
            gov_site::router(state.inner.gov_site.clone()),
        )
        .nest(WECHAT_PREFIX, wechat::router(state.inner.wechat.clone()))
        .merge(control)
        .merge(led_control)
        .layer(axum::middleware::from_fn_with_state(
            state.inner.faults.clone(),
            faults::middleware,
        ))
}

async fn get_state(State(state): State<SandboxState>) -> Json<serde_json::Value> {
    Json(state.snapshot())
}

/// `POST /_sandbox/wechat/expire_tokens`: every WeChat token expires now.
async fn wechat_expire_tokens(State(state): State<SandboxState>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "expired": state.wechat().expire_tokens() }))
}

#[derive(Deserialize)]
struct MassQuotaBody {
    appid: String,
    remaining: Option<u64>,
}

/// `POST /_sandbox/wechat/mass_quota {"appid","remaining"}`: how many more mass sends the
/// account may make (null = no limit); then sendall answers 45028.
async fn wechat_mass_quota(
    State(state): State<SandboxState>,
    Json(b): Json<MassQuotaBody>,
) -> Json<serde_json::Value> {
    state.wechat().set_mass_quota(&b.appid, b.remaining);
    Json(serde_json::json!({"ok": true}))
}

#[derive(Deserialize)]
struct CallbackBody {
    appid: String,
    url: Option<String>,
}

/// `POST /_sandbox/wechat/callback {"appid","url"}`: where the account's events are pushed.
async fn wechat_set_callback(
    State(state): State<SandboxState>,
    Json(b): Json<CallbackBody>,
) -> (axum::http::StatusCode, Json<serde_json::Value>) {
    if state.wechat().set_callback(&b.appid, b.url) {
        (
            axum::http::StatusCode::OK,
            Json(serde_json::json!({"ok": true})),
        )
    } else {
        (
            axum::http::StatusCode::NOT_FOUND,
            Json(serde_json::json!({"error": "unknown_appid", "message": "沙箱中没有这个公众号"})),
        )
    }
}

/// A sandbox running on a tokio task.
pub struct SandboxHandle {
    pub addr: SocketAddr,
    /// TCP address of the LED controller emulator.
    pub led_addr: SocketAddr,
    state: SandboxState,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl SandboxHandle {
    /// `http://<addr>`, no trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The base URL gongkai's website channel is configured with: `http://<addr>/gov_site`.
    pub fn gov_site_base_url(&self) -> String {
        format!("http://{}{}", self.addr, GOV_SITE_PREFIX)
    }

    /// The `api_base` gongkai's WeChat channel is configured with: `http://<addr>/wechat_api`.
    pub fn wechat_api_base(&self) -> String {
        format!("http://{}{}", self.addr, WECHAT_PREFIX)
    }

    /// The live state (the same one the server uses).
    pub fn state(&self) -> &SandboxState {
        &self.state
    }

    /// Stops accepting connections, lets in-flight requests finish (at most 5 s), then stops.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(());
        let mut task = self.task;
        if tokio::time::timeout(Duration::from_secs(5), &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
    }
}

/// Serves the sandbox on `listener` from a tokio task, with the LED controller emulator on
/// an ephemeral port of the same address.
pub async fn spawn(listener: tokio::net::TcpListener, config: SandboxConfig) -> SandboxHandle {
    let ip = listener
        .local_addr()
        .expect("a bound TcpListener has a local address")
        .ip();
    let led_listener = tokio::net::TcpListener::bind((ip, 0))
        .await
        .expect("binding an ephemeral port for the LED emulator");
    spawn_with_led(listener, led_listener, config).await
}

/// Serves the sandbox on `listener` and the LED controller emulator on `led_listener`.
pub async fn spawn_with_led(
    listener: tokio::net::TcpListener,
    led_listener: tokio::net::TcpListener,
    config: SandboxConfig,
) -> SandboxHandle {
    let addr = listener
        .local_addr()
        .expect("a bound TcpListener has a local address");
    let led_addr = led_listener
        .local_addr()
        .expect("a bound TcpListener has a local address");
    let state = SandboxState::new(config);
    state.set_addr(addr);
    let led_task = tokio::spawn(led::serve(led_listener, state.inner.led.clone()));
    let app = router(state.clone());
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "沙箱服务异常退出");
        }
        led_task.abort();
    });
    SandboxHandle {
        addr,
        led_addr,
        state,
        shutdown: tx,
        task,
    }
}

/// Serves the sandbox on `listen` and the LED controller emulator on `led_listen` until
/// Ctrl-C (the `gongkai sandbox` command).
pub async fn run(
    listen: SocketAddr,
    led_listen: SocketAddr,
    config: SandboxConfig,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("沙箱无法监听 {listen}：{e}"))?;
    let led_listener = tokio::net::TcpListener::bind(led_listen)
        .await
        .map_err(|e| anyhow::anyhow!("LED 控制卡仿真无法监听 {led_listen}：{e}"))?;
    let handle = spawn_with_led(listener, led_listener, config).await;
    tracing::info!(
        addr = %handle.addr,
        gov_site = %handle.gov_site_base_url(),
        led = %handle.led_addr,
        "沙箱已启动，按 Ctrl-C 停止"
    );
    tokio::signal::ctrl_c()
        .await
        .map_err(|e| anyhow::anyhow!("无法等待 Ctrl-C 信号：{e}"))?;
    tracing::info!("收到 Ctrl-C，沙箱正在停止");
    handle.shutdown().await;
    Ok(())
}
