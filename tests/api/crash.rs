//! A real daemon process killed with SIGKILL in the middle of delivering, then started
//! again: every accepted disclosure is delivered and the platform never gets a duplicate.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gongkai::config::Settings;
use gongkai::delivery::Ledger;
use gongkai::domain::DeliveryStatus;
use gongkai::store::DeliveryFilter;
use serde_json::json;

use crate::helpers::*;

fn start_daemon(config: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_gongkai"))
        .args(["--config", config.to_str().unwrap(), "serve"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start gongkai serve")
}

async fn wait_for(what: &str, timeout: Duration, mut check: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_killed_mid_delivery_delivers_everything_after_restart_without_duplicates() {
    killed_mid_delivery(None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_on_postgres_killed_mid_delivery_delivers_everything_after_restart() {
    if let Some(database) = pg::TestDatabase::create().await {
        killed_mid_delivery(Some(&database.url)).await
    }
}

/// On the SQLite file of the demo layout, or on the PostgreSQL database `database_url`.
async fn killed_mid_delivery(database_url: Option<&str>) {
    const N: usize = 30;
    let sandbox = spawn_sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let config = lay_out(dir.path(), &sandbox);
    let mut text = std::fs::read_to_string(&config).unwrap();
    if let Some(url) = database_url {
        let line = text
            .lines()
            .find(|l| l.starts_with("database_url"))
            .expect("the config names its database")
            .to_string();
        text = text.replace(&line, &format!("database_url = {url:?}"));
    }
    let text = text
        .replace("lease = \"2m\"", "lease = \"2s\"")
        .replace("concurrency = 16", "concurrency = 4")
        .replace("poll_interval = \"1s\"", "poll_interval = \"100ms\"");
    std::fs::write(&config, text).unwrap();
    // A slow platform, so that the kill lands while requests are in flight.
    fault(
        &sandbox,
        json!({"path": "/gov_site/v1/disclosures", "count": 10000, "delay_ms": 100}),
    )
    .await;

    // Accept N disclosures before the daemon runs (as `gongkai submit` does).
    let settings = Settings::load(&config).unwrap();
    let store = gongkai::store::connect(&settings.resolved_database_url())
        .await
        .unwrap();
    let ledger = Ledger::new(store.clone(), Arc::new(settings));
    for i in 0..N {
        let d = disclosure(&format!("zpmzj-2017-{:05}", 500 + i), 1);
        ledger
            .submit(&serde_json::to_vec(&d).unwrap(), "test")
            .await
            .unwrap();
    }

    let mut daemon = start_daemon(&config);
    wait_for(
        "the first deliveries",
        Duration::from_secs(60),
        async || {
            sandbox_state(&sandbox).await["gov_site"]["requests"]
                .as_u64()
                .unwrap()
                >= 6
        },
    )
    .await;
    daemon.kill().unwrap(); // SIGKILL: no chance to clean up
    daemon.wait().unwrap();

    let rows = store
        .list_deliveries("default", &DeliveryFilter::default())
        .await
        .unwrap();
    let delivered = rows
        .iter()
        .filter(|d| d.status == DeliveryStatus::Delivered)
        .count();
    assert!(
        delivered < N,
        "the kill should land mid-run ({delivered} delivered)"
    );

    let mut daemon = start_daemon(&config);
    wait_for("every delivery", Duration::from_secs(90), async || {
        let rows = store
            .list_deliveries("default", &DeliveryFilter::default())
            .await
            .unwrap();
        rows.iter().all(|d| d.status == DeliveryStatus::Delivered)
    })
    .await;
    // A graceful stop on SIGTERM.
    let status = Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = daemon.wait().unwrap();
    assert!(
        exit.success(),
        "gongkai serve should exit 0 on SIGTERM, got {exit}"
    );

    let state = sandbox_state(&sandbox).await;
    assert_eq!(state["gov_site"]["duplicates"], 0);
    assert_eq!(state["gov_site"]["docs"].as_array().unwrap().len(), N);
}
