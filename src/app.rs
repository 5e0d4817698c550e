//! The daemon assembled: store, templates, channels, the ledger, the HTTP listener and the
//! delivery worker, built from `Settings`. `Application::build` binds the listener (port 0
//! works, for tests) without serving; `run_until_stopped` serves the API and runs the worker
//! until shutdown and says which one stopped and why.
//!
//! Departments: one store, one worker and one listener for all of them; each department
//! (`default` = the top-level config, plus those of `departments_dir`) gets its own ledger,
//! channels, templates, LED screens and WeChat callbacks, and its API token says which
//! department a request is for (`http::Tenants`).

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::channel::Registry;
use crate::config::{Problems, Settings};
use crate::delivery::worker::{Worker, WorkerDepartment};
use crate::delivery::Ledger;
use crate::http::{router, AppState, Tenant, Tenants};
use crate::store;

pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    /// The admin listener of `/metrics` (`[metrics] listen`), if configured.
    metrics: Option<(TcpListener, SocketAddr)>,
    state: AppState,
    worker: Arc<Worker>,
}

/// A start-up error of a department of `departments_dir` says which department.
fn build_error(department: &Settings, e: anyhow::Error) -> anyhow::Error {
    if department.department.code == store::DEFAULT_DEPARTMENT {
        e
    } else {
        e.context(department.department.label())
    }
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let settings = Arc::new(settings);
        let views = settings.department_views();
        let tokens = crate::config::department_tokens(&views)
            .map_err(|p| anyhow::Error::new(Problems(p)))?;
        let store =
            store::connect_with(&settings.resolved_database_url(), settings.store_options())
                .await
                .with_context(|| {
                    format!("打开数据库 {}", store::redact_url(&settings.database_url))
                })?;
        // One wake-up for the one worker, whichever department's ledger has new work.
        let wake = Arc::new(tokio::sync::Notify::new());
        let mut tenants = Vec::new();
        let mut worker_departments = Vec::new();
        for view in &views {
            let code = view.department.code.clone();
            let renderer = view
                .renderer()
                .map_err(|p| build_error(view, anyhow::Error::new(Problems(p))))?;
            let registry = Registry::build_for_department(&view.channels, &code, store.clone())
                .map_err(|e| build_error(view, e.context("建立渠道")))?;
            let screens = registry.screens().clone();
            crate::led::restore(store.as_ref(), view, &screens)
                .await
                .map_err(|e| build_error(view, e.context("从台账恢复 LED 屏内容")))?;
            let ledger = Arc::new(Ledger::with_wake(store.clone(), view.clone(), wake.clone()));
            let wechat =
                crate::wechat_callback::Callbacks::build(view, store.clone(), wake.clone())
                    .map_err(|e| build_error(view, e.context("建立微信回调")))?;
            tenants.push(Arc::new(Tenant {
                ledger,
                screens,
                wechat,
            }));
            worker_departments.push(WorkerDepartment {
                settings: view.clone(),
                registry,
                renderer: Arc::new(renderer),
            });
        }
        let tenants = Tenants::new(tenants, tokens);
        let default = tenants.default_tenant();
        // The search index catches up with what was stored while the daemon was down.
        store
            .refresh_search_index()
            .await
            .context("更新公开信息检索索引")?;
        let worker = Arc::new(Worker::for_departments(
            store,
            worker_departments,
            settings.clone(),
            wake,
        ));
        let listener = TcpListener::bind(&settings.server.listen)
            .await
            .with_context(|| format!("监听 {}（server.listen）", settings.server.listen))?;
        let addr = listener.local_addr()?;
        let metrics = match &settings.metrics.listen {
            Some(l) => {
                let m = TcpListener::bind(l)
                    .await
                    .with_context(|| format!("监听 {l}（metrics.listen）"))?;
                let a = m.local_addr()?;
                Some((m, a))
            }
            None => None,
        };
        Ok(Application {
            listener,
            addr,
            metrics,
            state: AppState {
                ledger: default.ledger.clone(),
                screens: Arc::new(default.screens.clone()),
                wechat: default.wechat.clone(),
                tenants: Arc::new(tenants),
            },
            worker,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address of the `/metrics` listener, when `[metrics] listen` is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|(_, a)| *a)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn ledger(&self) -> Arc<Ledger> {
        self.state.ledger.clone()
    }

    pub fn worker(&self) -> Arc<Worker> {
        self.worker.clone()
    }

    /// The LED screens of the default department, by channel name.
    pub fn screens(&self) -> crate::led::Screens {
        (*self.state.screens).clone()
    }

    /// The ledger of a department by code (`default` is `ledger()`).
    pub fn department_ledger(&self, code: &str) -> Option<Arc<Ledger>> {
        self.state.tenants.get(code).map(|t| t.ledger.clone())
    }

    /// Serves the API and (if enabled) runs the worker until `shutdown` turns true. If
    /// either stops on its own, the other is stopped too, and the error says which one.
    pub async fn run_until_stopped(self, shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
        let settings = self.state.ledger.settings.clone();
        // One internal stop signal for both halves: the outside request, or one half ending.
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut outside = shutdown;
        let forward_tx = stop_tx.clone();
        tokio::spawn(async move {
            let _ = outside.wait_for(|s| *s).await;
            let _ = forward_tx.send(true);
        });
        for tenant in self.state.tenants.all() {
            // LED screens: expiry and the controller keep-alive, with the worker (a dark
            // screen only logs; it never stops the daemon).
            if settings.worker.enabled && !tenant.screens.is_empty() {
                tokio::spawn(crate::led::run_refresh(
                    tenant.screens.clone(),
                    tenant.ledger.store.clone(),
                    stop_rx.clone(),
                ));
            }
            // WeChat accounts: the staleness watchdog (政务新媒体: two weeks without an update
            // fails the inspection), at start and every hour.
            let own = &tenant.ledger.settings;
            if settings.worker.enabled
                && own
                    .channels
                    .channels
                    .values()
                    .any(|c| matches!(c, crate::config::ChannelSpec::Wechat(_)))
            {
                tokio::spawn(crate::channel::wechat::watch_staleness(
                    own.clone(),
                    tenant.ledger.store.clone(),
                    crate::channel::wechat::STALENESS_LOG_EVERY,
                    stop_rx.clone(),
                ));
            }
        }
        // The answers kept for WeChat's retries (every department's: one table, by appid)
        // are forgotten after a while.
        tokio::spawn(crate::wechat_callback::purge_old_answers(
            self.state.ledger.store.clone(),
            settings.wechat_callback.keep_answers,
            Duration::from_secs(3600),
            stop_rx.clone(),
        ));
        // Prometheus metrics on their own (admin) listener; a failure there only logs.
        if let Some((listener, addr)) = self.metrics {
            let mut metrics_stop = stop_rx.clone();
            let app = crate::http::metrics_router(self.state.ledger.clone());
            tracing::info!(listen = %addr, "metrics listening");
            tokio::spawn(async move {
                let served = axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = metrics_stop.wait_for(|s| *s).await;
                    })
                    .await;
                if let Err(e) = served {
                    tracing::error!(error.message = %e, "metrics listener stopped");
                }
            });
        }
        let mut http_stop = stop_rx.clone();
        let server = axum::serve(self.listener, router(self.state))
            .with_graceful_shutdown(async move {
                let _ = http_stop.wait_for(|s| *s).await;
            })
            .into_future();
        tracing::info!(listen = %self.addr, "API listening");
        let worker = async {
            if settings.worker.enabled {
                self.worker.run_until_stopped(stop_rx).await;
            } else {
                let mut rx = stop_rx;
                let _ = rx.wait_for(|s| *s).await;
            }
        };
        tokio::pin!(server, worker);
        tokio::select! {
            res = &mut server => {
                let _ = stop_tx.send(true);
                worker.await;
                match res {
                    Ok(()) => tracing::info!("HTTP server stopped"),
                    Err(e) => return Err(anyhow::Error::new(e).context("HTTP 服务异常停止")),
                }
            }
            () = &mut worker => {
                let _ = stop_tx.send(true);
                let res = server.await;
                tracing::info!("delivery worker stopped");
                res.context("HTTP 服务异常停止")?;
            }
        }
        Ok(())
    }
}

/// A watch that turns true on Ctrl-C or SIGTERM.
pub fn shutdown_signal() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => {}
            _ = term => {}
        }
        tracing::info!("shutdown requested: finishing attempts in flight");
        let _ = tx.send(true);
    });
    rx
}
