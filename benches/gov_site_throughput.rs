//! Benchmark: push 10,000 disclosures through the website channel against the sandbox's
//! platform emulator on loopback, with the real worker loop and a SQLite file.
//! Prints deliveries per second, CPU time per delivery and peak memory (RSS) of the daemon.
//! The emulator runs in its own process so that its cost is not counted as ours.
//!
//!     cargo bench --bench gov_site_throughput            # 10,000 disclosures
//!     GONGKAI_BENCH_N=2000 cargo bench --bench gov_site_throughput
//!
//! Target on a 2-core machine: >= 2,000 deliveries/s, < 64 MB peak RSS.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gongkai::app::Application;
use gongkai::config::Settings;
use gongkai::domain::DeliveryStatus;
use gongkai::store::DeliveryFilter;
use sha2::{Digest, Sha256};

const SECRET: &str = "bench-secret";

struct Sandbox(Child);

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// (user + system CPU seconds, peak RSS in KiB) of this process, from /proc.
fn cpu_and_peak_rss() -> (f64, u64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses): utime is 14th, stime 15th.
    let after = stat.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = 100.0; // USER_HZ on Linux
    let cpu = f.get(11).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0) / ticks
        + f.get(12).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0) / ticks;
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|x| x.parse().ok())
        .unwrap_or(0);
    (cpu, hwm)
}

fn disclosure(i: usize) -> Vec<u8> {
    let body =
        format!("<p>第{i}号公示：现将本季度城乡低保资金发放情况公示如下，公示期七个工作日。</p>");
    let review = hex::encode(Sha256::digest(body.as_bytes()));
    serde_json::to_vec(&serde_json::json!({
        "disclosure_id": format!("bench-{i:06}"),
        "revision": 1,
        "title": format!("关于城乡低保资金发放情况的公示（第{i}号）"),
        "publisher": "漳平市民政局",
        "formed_date": "2017-04-03",
        "publish_date": "2017-04-07",
        "category": "mzfp",
        "body_html": body,
        "review": {"content_sha256": review, "steps": [
            {"role": "初审", "by": "u102", "at": "2017-04-05T09:12:00+08:00"},
            {"role": "终审", "by": "u007", "at": "2017-04-07T08:55:00+08:00"}]}
    }))
    .unwrap()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::var("GONGKAI_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let sandbox = Sandbox(
        Command::new(env!("CARGO_BIN_EXE_gongkai"))
            .args([
                "--config",
                "/nonexistent/none.toml",
                "sandbox",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--app",
                &format!("zpmzj={SECRET}"),
            ])
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .spawn()?,
    );
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let start = Instant::now();
    while client
        .get(format!("{base}/_sandbox/state"))
        .send()
        .await
        .is_err()
    {
        anyhow::ensure!(
            start.elapsed() < Duration::from_secs(10),
            "sandbox did not start"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

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
        ledger.submit(&disclosure(i), "bench").await?;
    }
    let ingest = t0.elapsed();
    println!(
        "ingest: {n} disclosures in {:.2}s ({:.0}/s)",
        ingest.as_secs_f64(),
        n as f64 / ingest.as_secs_f64()
    );

    let (cpu0, _) = cpu_and_peak_rss();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let t1 = Instant::now();
    let running = tokio::spawn(Arc::clone(&worker).run_until_stopped(stop_rx));
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let left = ledger
            .store
            .list_deliveries(&DeliveryFilter {
                statuses: vec![
                    DeliveryStatus::Pending,
                    DeliveryStatus::InFlight,
                    DeliveryStatus::Retrying,
                ],
                limit: Some(1),
                ..DeliveryFilter::default()
            })
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
    let (cpu1, peak_kib) = cpu_and_peak_rss();
    stop_tx.send(true)?;
    running.await?;

    let delivered = ledger
        .store
        .list_deliveries(&DeliveryFilter {
            statuses: vec![DeliveryStatus::Delivered],
            ..DeliveryFilter::default()
        })
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
