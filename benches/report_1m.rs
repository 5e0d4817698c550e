//! Benchmark: the annual report over a ledger of 1,000,000 delivered publish deliveries
//! (500,000 disclosures x 2 channels, spread over 2016-2018 and every category), in a SQLite
//! file filled by bulk SQL. Times `Store::published_groups` + `report::build` for 2017 and
//! prints the figure. Target: under 1 second.
//!
//!     cargo bench --bench report_1m
//!     GONGKAI_BENCH_ITEMS=100000 cargo bench --bench report_1m   # items (x 2 deliveries)

use std::time::Instant;

use gongkai::config::Settings;
use gongkai::report;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let items: i64 = std::env::var("GONGKAI_BENCH_ITEMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500_000);
    let dir = tempfile::tempdir()?;
    let config = gongkai::demo::lay_out(dir.path(), "http://127.0.0.1:9", "s", "t")?;
    // A second website channel, so each item has two deliveries.
    std::fs::copy(
        dir.path().join("channels/gov_site.toml"),
        dir.path().join("channels/gov_site_mirror.toml"),
    )?;
    let settings = Settings::load(&config)?;
    let url = settings.resolved_database_url();
    let store = gongkai::store::connect(&url).await?;

    let t = Instant::now();
    let path = url.trim_start_matches("sqlite://");
    let mut conn = SqliteConnectOptions::new()
        .filename(path)
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
        .synchronous(sqlx::sqlite::SqliteSynchronous::Off)
        .connect()
        .await?;
    let codes: Vec<String> = settings
        .categories
        .iter()
        .map(|c| format!("'{}'", c.code))
        .collect();
    let ncat = codes.len();
    let mut tx = conn.begin().await?;
    sqlx::query(&format!(
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {last})
         INSERT INTO disclosures (disclosure_id, revision, title, category, publish_date,
             formed_date, content_hash, json, submitted_by, received_at)
         SELECT printf('bench-%07d', i), 1, '标题', json_extract('[{cats}]', '$[' || (i % {ncat}) || ']'),
             CASE WHEN i % 3 = 0 THEN NULL ELSE date('2016-01-01', '+' || (i % 1095) || ' days') END,
             date('2016-01-01', '+' || (i % 1095) || ' days'),
             'h', '{{}}', 'bench', 0
         FROM n",
        last = items - 1,
        cats = codes.join(",").replace('\'', "\""),
    ))
    .execute(&mut *tx)
    .await?;
    for (ch, shift) in [("gov_site", 1), ("gov_site_mirror", 40)] {
        sqlx::query(&format!(
            "INSERT INTO deliveries (disclosure_id, revision, channel, kind, action, status,
                 attempts, created_at, updated_at, delivered_at)
             SELECT disclosure_id, 1, '{ch}', 'gov_site', 'publish', 'delivered', 1, 0, 0,
                 (julianday(formed_date) - 2440587.5) * 86400000 + ({shift} + (rowid % 7)) * 86400000
             FROM disclosures"
        ))
        .execute(&mut *tx)
        .await?;
    }
    // The bulk load bypassed the store: rebuild the report summary it keeps on delivery.
    sqlx::raw_sql(&gongkai::store::sqlite::report_summary_rebuild_sql())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    sqlx::query("ANALYZE").execute(&mut conn).await?;
    conn.close().await?;
    println!(
        "filled {} deliveries ({} items x 2 channels) in {:.1}s",
        items * 2,
        items,
        t.elapsed().as_secs_f64()
    );

    let calendar = settings.calendar();
    let mut best = f64::MAX;
    for run in 1..=3 {
        let t = Instant::now();
        let groups = store
            .published_groups(gongkai::store::DEFAULT_DEPARTMENT)
            .await?;
        let r = report::build(&settings, &groups, &calendar, 2017);
        let secs = t.elapsed().as_secs_f64();
        best = best.min(secs);
        println!(
            "run {run}: report over {} deliveries in {secs:.3}s ({} groups; 2017: {} items, gov_site on time {} / late {})",
            items * 2,
            groups.len(),
            r.total.year,
            r.channels[0].on_time,
            r.channels[0].late
        );
    }
    println!(
        "best: {best:.3}s for {} deliveries (target < 1s): {}",
        items * 2,
        if best < 1.0 { "OK" } else { "TOO SLOW" }
    );
    Ok(())
}
