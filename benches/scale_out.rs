//! Benchmark (issue 7): deliveries per second through the website channel against the
//! sandbox's platform emulator, with 1 and 2 `gongkai serve` processes on one PostgreSQL
//! database, and with 1 on SQLite, printed side by side; twice: the sandbox answering at
//! once, and the sandbox adding 50 ms to every call (real platforms are that slow).
//! Each run gets a fresh database (SQLite file / PostgreSQL database) and its own
//! disclosure ids; the disclosures are accepted before the instances start, and the clock
//! runs from starting the instances until the last delivery is done.
//!
//!     cargo bench --bench scale_out
//!     GONGKAI_BENCH_N=1000 GONGKAI_BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
//!         cargo bench --bench scale_out
//!
//! The PostgreSQL server (default postgres://postgres@127.0.0.1:5432/test) is used to
//! create and drop a database per run.

#[path = "../tests/support/pg.rs"]
mod pg;

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gongkai::config::Settings;
use gongkai::delivery::Ledger;
use gongkai::domain::DeliveryStatus;
use gongkai::store::DeliveryFilter;

use common::{cpu_seconds, cpu_seconds_of_command, disclosure, Sandbox, SECRET};

#[derive(Clone, Copy, PartialEq)]
enum Backend {
    Sqlite,
    Postgres,
}

struct Figures {
    per_second: f64,
    cpu_us_per_delivery: f64,
    db_cpu_us_per_delivery: Option<f64>,
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Instances(Vec<Child>);

impl Drop for Instances {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

async fn run(
    sandbox: &Sandbox,
    backend: Backend,
    instances: usize,
    n: usize,
    concurrency: usize,
    label: &str,
) -> anyhow::Result<Figures> {
    let dir = tempfile::tempdir()?;
    let config = gongkai::demo::lay_out(dir.path(), &sandbox.gov_site_base(), SECRET, "t")?;
    let mut database = None;
    let mut settings = Settings::load(&config)?;
    if backend == Backend::Postgres {
        let db = pg::TestDatabase::create()
            .await
            .ok_or_else(|| anyhow::anyhow!("no PostgreSQL server"))?;
        settings.database_url = db.url.clone();
        database = Some(db);
    }
    let url = settings.resolved_database_url();
    let store = gongkai::store::connect(&url).await?;
    let ledger = Ledger::new(Arc::clone(&store), Arc::new(settings));
    for i in 0..n {
        ledger.submit(&disclosure(label, i), "bench").await?;
    }

    let pg_cpu0 = cpu_seconds_of_command("postgres");
    let t0 = Instant::now();
    let mut children = Instances(Vec::new());
    for k in 0..instances {
        children.0.push(
            Command::new(env!("CARGO_BIN_EXE_gongkai"))
                .args(["--config", config.to_str().unwrap(), "serve"])
                .env("GONGKAI__DATABASE_URL", &url)
                .env("GONGKAI__WORKER__CONCURRENCY", concurrency.to_string())
                .env("GONGKAI__WORKER__INSTANCE_ID", format!("bench-{k}"))
                .env("RUST_LOG", "error")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()?,
        );
    }
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let left = store
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
            t0.elapsed() < Duration::from_secs(900),
            "{label}: deliveries did not finish"
        );
    }
    let elapsed = t0.elapsed();
    let cpu: f64 = children
        .0
        .iter()
        .map(|c| cpu_seconds(&c.id().to_string()))
        .sum();
    let pg_cpu = cpu_seconds_of_command("postgres") - pg_cpu0;
    drop(children);
    let delivered = store
        .list_deliveries(
            gongkai::store::DEFAULT_DEPARTMENT,
            &DeliveryFilter {
                statuses: vec![DeliveryStatus::Delivered],
                ..DeliveryFilter::default()
            },
        )
        .await?
        .len();
    anyhow::ensure!(delivered == n, "{label}: {delivered}/{n} delivered");
    drop(store);
    drop(database);
    Ok(Figures {
        per_second: n as f64 / elapsed.as_secs_f64(),
        cpu_us_per_delivery: cpu * 1e6 / n as f64,
        db_cpu_us_per_delivery: (backend == Backend::Postgres).then(|| pg_cpu * 1e6 / n as f64),
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n = env_usize("GONGKAI_BENCH_N", 2000);
    let concurrency = env_usize("GONGKAI_BENCH_CONCURRENCY", 32);
    if std::env::var(pg::ENV).is_err() {
        let url = std::env::var("GONGKAI_BENCH_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        std::env::set_var(pg::ENV, url);
    }
    let sandbox = Sandbox::start().await?;
    let setups = [
        ("SQLite, 1 instance", Backend::Sqlite, 1),
        ("PostgreSQL, 1 instance", Backend::Postgres, 1),
        ("PostgreSQL, 2 instances", Backend::Postgres, 2),
    ];
    let mut table = Vec::new();
    for (delay, delay_label) in [(0u64, "at once"), (50, "+50 ms per call")] {
        if delay > 0 {
            sandbox
                .fault(serde_json::json!({
                    "path": "/gov_site/v1/disclosures",
                    "count": 100_000_000u64,
                    "delay_ms": delay
                }))
                .await?;
        }
        for (run_no, (name, backend, instances)) in setups.iter().enumerate() {
            let label = format!("d{delay}-r{run_no}");
            let f = run(&sandbox, *backend, *instances, n, concurrency, &label).await?;
            println!(
                "{delay_label:>16} | {name:<24} | {:>7.0} deliveries/s | {:>6.0} µs CPU/delivery (gongkai) | {}",
                f.per_second,
                f.cpu_us_per_delivery,
                f.db_cpu_us_per_delivery
                    .map(|c| format!("{c:.0} µs CPU/delivery (PostgreSQL server)"))
                    .unwrap_or_default()
            );
            table.push((delay_label, *name, f));
        }
    }
    let state = sandbox.state().await?;
    println!(
        "\n{n} disclosures per run, worker concurrency {concurrency} per instance; platform: {} requests, {} duplicates",
        state["gov_site"]["requests"], state["gov_site"]["duplicates"]
    );
    println!(
        "\n{:<24} | {:>16} | {:>16}",
        "deliveries/s", "at once", "+50 ms per call"
    );
    for (name, _, _) in &setups {
        let at = |d: &str| {
            table
                .iter()
                .find(|(l, nm, _)| *l == d && nm == name)
                .map(|(_, _, f)| f.per_second)
                .unwrap_or(0.0)
        };
        println!(
            "{name:<24} | {:>16.0} | {:>16.0}",
            at("at once"),
            at("+50 ms per call")
        );
    }
    anyhow::ensure!(
        state["gov_site"]["duplicates"] == 0,
        "the platform saw duplicates"
    );
    Ok(())
}
