//! Benchmark: push 10,000 disclosures through the website channel against the sandbox's
//! platform emulator on loopback, with the real worker loop and a SQLite file.
//! Prints deliveries per second, CPU time per delivery and peak memory (RSS) of the daemon.
//! The emulator runs in its own process so that its cost is not counted as ours.
//!
//!     cargo bench --bench gov_site_throughput            # 10,000 disclosures
//!     GONGKAI_BENCH_N=2000 cargo bench --bench gov_site_throughput
//!
//! Target on a 2-core machine: >= 2,000 deliveries/s, < 64 MB peak RSS.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use gongkai::app::Application;
use gongkai::config::Settings;
use gongkai::domain::DeliveryStatus;
use gongkai::store::DeliveryFilter;

use common::{cpu_and_peak_rss, disclosure, Sandbox, SECRET};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::var("GONGKAI_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let sandbox = Sandbox::start().await?;
    let base = sandbox.base.clone();
    let client = reqwest::Client::new();

    let dir = tempfile::tempdir()?;
    let config = gongkai::demo::lay_out(dir.path(), &format!("{base}/gov_site"), SECRET, "t")?;
    let mut settings = Settings::load(&config)?;
    settings.worker.enabled = false;
    settings.worker.concurrency = std::env::var("GONGKAI_BENCH_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32);
    let app = Application::build(settings).await?;
    let ledger = app.ledger();
    let worker = app.worker();

    let t0 = Instant::now();
    for i in 0..n {
        ledger.submit(&disclosure("bench", i), "bench").await?;
    }
    let ingest = t0.elapsed();
    println!(
        "ingest: {n} disclosures in {:.2}s ({:.0}/s)",
        ingest.as_secs_f64(),
        n as f64 / ingest.as_secs_f64()
    );

    let (cpu0, _) = cpu_and_peak_rss("self");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let t1 = Instant::now();
    let running = tokio::spawn(Arc::clone(&worker).run_until_stopped(stop_rx));
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let left = ledger
            .store
            .list_deliveries(
                gongkai::store::DEFAULT_DEPARTMENT,
                &DeliveryFilter {
                    statuses: vec![
                        DeliveryStatus::Pending,
                        DeliveryStatus::InFlight,
                        DeliveryStatus::Retrying,
                    ],
                    limit: Some(1),
                    ..DeliveryFilter::default()
                },
            )
            .await?;
        if left.is_empty() {
            break;
        }
        anyhow::ensure!(
            t1.elapsed() < Duration::from_secs(600),
            "deliveries did not finish"
        );
    }
    let elapsed = t1.elapsed();
    let (cpu1, peak_kib) = cpu_and_peak_rss("self");
    stop_tx.send(true)?;
    running.await?;

    let delivered = ledger
        .store
        .list_deliveries(
            gongkai::store::DEFAULT_DEPARTMENT,
            &DeliveryFilter {
                statuses: vec![DeliveryStatus::Delivered],
                ..DeliveryFilter::default()
            },
        )
        .await?
        .len();
    let state: serde_json::Value = client
        .get(format!("{base}/_sandbox/state"))
        .send()
        .await?
        .json()
        .await?;
    drop(sandbox);
    println!(
        "deliver: {delivered}/{n} delivered in {:.2}s = {:.0} deliveries/s (concurrency {})",
        elapsed.as_secs_f64(),
        delivered as f64 / elapsed.as_secs_f64(),
        ledger.settings.worker.concurrency
    );
    println!(
        "cpu: {:.1} µs per delivery (daemon process, user+system)",
        (cpu1 - cpu0) * 1e6 / delivered.max(1) as f64
    );
    println!(
        "peak RSS: {:.1} MB (daemon process, VmHWM)",
        peak_kib as f64 / 1024.0
    );
    println!(
        "platform: {} requests, {} duplicates",
        state["gov_site"]["requests"], state["gov_site"]["duplicates"]
    );
    anyhow::ensure!(delivered == n, "not every disclosure was delivered");
    Ok(())
}
