//! Three `gongkai serve` processes (the real binary, separate OS processes) on one PostgreSQL
//! database and the sandbox: 2,000 disclosures submitted over HTTP, spread over the three,
//! routed to the website and the WeChat official account; one instance is killed with
//! SIGKILL halfway through the deliveries. Every delivery completes, each exactly once at
//! the emulators (duplicate counts 0, every disclosure once on the website and published
//! once on WeChat), the killed instance's claims are taken over (written down as `lost`
//! attempts), and the WeChat emulator granted one access token, not three.
//!
//! Its own test binary, so that it does not share the two cores with the API tests. Runs
//! when `GONGKAI_TEST_DATABASE_URL` is set (`.ci/run` sets it), else says it was skipped.
//! `GONGKAI_MP_N` changes the number of disclosures (default 2000).

#[path = "support/pg.rs"]
mod pg;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use gongkai::sandbox::{self, SandboxHandle};
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::Row;
use tokio::net::TcpListener;

const SECRET: &str = "mp-gov-site-secret";
const TOKEN: &str = "mp-api-token";
const APPID: &str = "wx00000000multi";
const APP_SECRET: &str = "mp-wechat-app-secret";
const CB_TOKEN: &str = "mpcbtoken";
const INSTANCES: usize = 3;
/// The instance killed halfway (not the one the WeChat emulator pushes its events to).
const VICTIM: usize = 2;

/// The `gongkai serve` processes; killed on drop (a failed assertion leaves none behind).
struct Instances(Vec<Option<Child>>);

impl Drop for Instances {
    fn drop(&mut self) {
        for child in self.0.iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// Disclosure `i`: its own title and body (the WeChat emulator counts an article whose
/// title and content are already live as a duplicate), to the website and WeChat.
fn disclosure(i: usize) -> Vec<u8> {
    let body =
        format!("<p>第{i}号：现将本季度城乡低保资金发放情况公示如下，公示期七个工作日。</p>");
    serde_json::to_vec(&json!({
        "disclosure_id": format!("zpmzj-mp-{i:05}"),
        "revision": 1,
        "title": format!("城乡低保资金发放情况公示（第{i}号）"),
        "publisher": "漳平市民政局",
        "formed_date": "2017-04-03",
        "publish_date": "2017-04-07",
        "category": "mzfp",
        "channels": ["gov_site", "wechat"],
        "body_html": body,
        "review": {"content_sha256": sha256_hex(&body), "steps": [
            {"role": "初审", "by": "u102", "at": "2017-04-05T09:12:00+08:00"},
            {"role": "终审", "by": "u007", "at": "2017-04-07T08:55:00+08:00"}]}
    }))
    .unwrap()
}

/// The demo layout on `database_url`, with the WeChat channel (token mode `token`: every
/// grant is a new token, so a second grant would show), short polls and a short lease.
fn lay_out(dir: &Path, sandbox: &SandboxHandle, database_url: &str) -> PathBuf {
    let config = gongkai::demo::lay_out(dir, &sandbox.gov_site_base_url(), SECRET, TOKEN).unwrap();
    let text = std::fs::read_to_string(&config).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("database_url"))
        .expect("the config names its database")
        .to_string();
    let edited = text
        .replace(&line, &format!("database_url = {database_url:?}"))
        // Longer than any one request (the channels' timeouts are 3 s below), as the
        // config's comment asks.
        .replace("lease = \"2m\"", "lease = \"5s\"")
        .replace("poll_interval = \"1s\"", "poll_interval = \"100ms\"")
        .replace(
            "schedule = [\"10s\", \"1m\", \"5m\", \"30m\", \"2h\", \"6h\"]",
            "schedule = [\"100ms\", \"200ms\", \"500ms\"]",
        );
    for (from, to) in [
        ("lease = \"5s\"", "lease"),
        ("poll_interval = \"100ms\"", "poll_interval"),
        ("schedule = [\"100ms\"", "retry schedule"),
    ] {
        assert!(edited.contains(from), "the example config changed: {to}");
    }
    std::fs::write(&config, edited).unwrap();
    let gov_site = dir.join("channels/gov_site.toml");
    let text = std::fs::read_to_string(&gov_site).unwrap();
    assert!(
        text.contains("timeout = \"10s\""),
        "the demo's gov_site channel changed"
    );
    std::fs::write(
        &gov_site,
        text.replace("timeout = \"10s\"", "timeout = \"3s\""),
    )
    .unwrap();
    std::fs::write(dir.join("secrets/wechat.key"), APP_SECRET).unwrap();
    std::fs::write(dir.join("secrets/wechat_cb.key"), CB_TOKEN).unwrap();
    std::fs::write(
        dir.join("channels/wechat.toml"),
        format!(
            "kind = \"wechat\"\nappid = \"{APPID}\"\nsecret_file = \"../secrets/wechat.key\"\n\
             callback_token_file = \"../secrets/wechat_cb.key\"\napi_base = \"{}\"\n\
             token_mode = \"token\"\nafter = [\"gov_site\"]\ntimeout = \"3s\"\n\
             check_every = \"300ms\"\n",
            sandbox.wechat_api_base()
        ),
    )
    .unwrap();
    config
}

fn start_instance(config: &Path, k: usize, port: u16, log: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_gongkai"))
        .args(["--config", config.to_str().unwrap(), "serve"])
        .env("GONGKAI__SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("GONGKAI__WORKER__INSTANCE_ID", format!("mp-{k}"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("start gongkai serve")
}

/// Deliveries per status, over every channel.
async fn status_counts(pool: &sqlx::PgPool) -> BTreeMap<String, i64> {
    sqlx::query("SELECT status, count(*) AS n FROM deliveries GROUP BY status")
        .fetch_all(pool)
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get::<String, _>("status"), r.get::<i64, _>("n")))
        .collect()
}

fn log_tails(dir: &Path) -> String {
    (0..INSTANCES)
        .map(|k| {
            let text = std::fs::read_to_string(dir.join(format!("mp-{k}.log"))).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(15)..].join("\n");
            format!("--- mp-{k} (last lines of its log)\n{tail}")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_on_postgres_deliver_everything_exactly_once_when_one_is_killed() {
    let Some(database) = pg::TestDatabase::create().await else {
        return;
    };
    let n: usize = std::env::var("GONGKAI_MP_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let started = Instant::now();

    // Arrange: the sandbox (website + official account), the layout, the schema.
    let sandbox = sandbox::spawn(
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
        sandbox::SandboxConfig {
            gov_site_apps: vec![sandbox::GovSiteApp {
                app_key: "zpmzj".into(),
                secret: SECRET.into(),
            }],
            wechat_apps: vec![sandbox::wechat::WechatApp {
                appid: APPID.into(),
                secret: APP_SECRET.into(),
                callback_token: CB_TOKEN.into(),
                callback_url: None,
            }],
            wechat_publish_delay_ms: Some(20),
        },
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config = lay_out(dir.path(), &sandbox, &database.url);
    // Migrate once up front, and keep a pool to watch the ledger.
    let store = gongkai::store::postgres::PostgresStore::open(&database.url, 4)
        .await
        .unwrap();
    let pool = store.pool().clone();

    // Three instances; the emulator pushes PUBLISHJOBFINISH to the first (a surviving one).
    let ports: Vec<u16> = (0..INSTANCES).map(|_| free_port()).collect();
    let mut instances = Instances(
        (0..INSTANCES)
            .map(|k| {
                Some(start_instance(
                    &config,
                    k,
                    ports[k],
                    &dir.path().join(format!("mp-{k}.log")),
                ))
            })
            .collect(),
    );
    let apis: Vec<String> = ports
        .iter()
        .map(|p| format!("http://127.0.0.1:{p}"))
        .collect();
    let client = reqwest::Client::new();
    for api in &apis {
        let t = Instant::now();
        while client.get(format!("{api}/healthz")).send().await.is_err() {
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "{api} did not start\n{}",
                log_tails(dir.path())
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    sandbox
        .state()
        .wechat()
        .set_callback(APPID, Some(format!("{}/wechat/wechat/callback", apis[0])));
    let ready = started.elapsed();

    // Act: submit over HTTP, 24 at a time, spread over the instances as a load balancer
    // would (the next instance when one does not answer); kill one halfway.
    let alive = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let submit = {
        let apis = apis.clone();
        let client = client.clone();
        let alive = alive.clone();
        async move {
            futures::stream::iter(0..n)
                .map(|i| {
                    let apis = apis.clone();
                    let client = client.clone();
                    let alive = alive.clone();
                    async move {
                        let body = disclosure(i);
                        for k in 0..INSTANCES * 3 {
                            let target = (i + k) % INSTANCES;
                            if target == VICTIM && !alive.load(std::sync::atomic::Ordering::SeqCst)
                            {
                                continue;
                            }
                            let r = client
                                .post(format!("{}/api/v1/disclosures", apis[target]))
                                .bearer_auth(TOKEN)
                                .header("content-type", "application/json")
                                .body(body.clone())
                                .send()
                                .await;
                            match r {
                                // 201 new, 200 the same again (a retry after a lost answer).
                                Ok(r) if r.status().is_success() => return,
                                Ok(r) => panic!(
                                    "disclosure {i}: HTTP {}: {}",
                                    r.status(),
                                    r.text().await.unwrap_or_default()
                                ),
                                Err(_) => continue,
                            }
                        }
                        panic!("disclosure {i}: no instance accepted it");
                    }
                })
                .buffer_unordered(24)
                .collect::<Vec<()>>()
                .await;
        }
    };
    let submitter = tokio::spawn(submit);

    let total = 2 * n as i64;
    let t = Instant::now();
    loop {
        let counts = status_counts(&pool).await;
        let delivered = counts.get("delivered").copied().unwrap_or(0);
        if delivered >= total / 2 {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(300),
            "half the deliveries never completed: {counts:?}\n{}",
            log_tails(dir.path())
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let victim = instances.0[VICTIM].as_mut().unwrap();
    victim.kill().unwrap(); // SIGKILL: no chance to finish or give anything back
    victim.wait().unwrap();
    alive.store(false, std::sync::atomic::Ordering::SeqCst);
    instances.0[VICTIM] = None;
    let killed_at = started.elapsed();
    let in_flight_of_victim: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM deliveries WHERE status = 'in_flight' AND claimed_by = $1",
    )
    .bind(format!("mp-{VICTIM}"))
    .fetch_one(&pool)
    .await
    .unwrap();

    submitter.await.expect("every disclosure was accepted");
    let submitted = started.elapsed();
    // Fails early when nothing more is delivered for a minute (something is stuck).
    let (mut last_delivered, mut last_progress) = (0, Instant::now());
    loop {
        let counts = status_counts(&pool).await;
        let delivered = counts.get("delivered").copied().unwrap_or(0);
        if delivered == total {
            break;
        }
        if delivered != last_delivered {
            (last_delivered, last_progress) = (delivered, Instant::now());
        }
        let unfinished = counts
            .iter()
            .filter(|(s, _)| !matches!(s.as_str(), "pending" | "in_flight" | "retrying"))
            .filter(|(s, _)| s.as_str() != "delivered")
            .count();
        assert!(
            unfinished == 0 && last_progress.elapsed() < Duration::from_secs(60),
            "not every delivery completed: {counts:?}; last errors: {:?}\n{}",
            sqlx::query_scalar::<_, Option<String>>(
                "SELECT last_error FROM deliveries WHERE status <> 'delivered' LIMIT 5"
            )
            .fetch_all(&pool)
            .await
            .unwrap(),
            log_tails(dir.path())
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let done = started.elapsed();

    // The survivors stop gracefully.
    for (k, slot) in instances.0.iter_mut().enumerate() {
        if let Some(child) = slot.as_mut() {
            let status = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()
                .unwrap();
            assert!(status.success());
            let exit = child.wait().unwrap();
            assert!(
                exit.success(),
                "mp-{k} should exit 0 on SIGTERM, got {exit}"
            );
            *slot = None;
        }
    }

    // Assert: exactly once at the emulators.
    let state = sandbox.state().snapshot();
    let gov = &state["gov_site"];
    assert_eq!(gov["duplicates"], 0, "website duplicates");
    assert_eq!(
        gov["accepted"], n as u64,
        "website: each disclosure applied once"
    );
    let docs = gov["docs"].as_array().unwrap();
    let ids: HashSet<&str> = docs
        .iter()
        .map(|d| d["disclosure_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        (docs.len(), ids.len()),
        (n, n),
        "website: every disclosure once"
    );
    let wx = &state["wechat"];
    assert_eq!(wx["duplicates"], 0, "WeChat duplicates");
    assert_eq!(
        wx["publishes"].as_array().unwrap().len(),
        n,
        "WeChat: one publish job each"
    );
    let articles = wx["articles"].as_array().unwrap();
    let titles: HashSet<&str> = articles
        .iter()
        .map(|a| a["title"].as_str().unwrap())
        .collect();
    assert_eq!(
        (articles.len(), titles.len(), wx["live_articles"].as_u64()),
        (n, n, Some(n as u64)),
        "WeChat: every disclosure published once"
    );
    assert_eq!(wx["grants"], 1, "one access_token for the three instances");
    let covers = wx["calls"]["/cgi-bin/material/add_material"]
        .as_u64()
        .unwrap_or(0);
    assert!(
        covers <= INSTANCES as u64,
        "the cover uploaded {covers} times"
    );

    // The ledger agrees: one delivered attempt per delivery; the victim's claims were taken
    // over by the others and written down as lost attempts.
    let twice: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT delivery_id FROM attempts WHERE outcome = 'delivered'
             GROUP BY delivery_id HAVING count(*) > 1) t",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(twice, 0, "deliveries with two delivered attempts");
    let lost: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM attempts WHERE outcome = 'lost' AND instance = $1",
    )
    .bind(format!("mp-{VICTIM}"))
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(
        lost >= 1 && lost >= in_flight_of_victim,
        "the killed instance's claims ({in_flight_of_victim} in flight) were taken over: {lost} lost attempts"
    );
    let by_instance: Vec<(String, i64)> = sqlx::query(
        "SELECT instance, count(*) AS n FROM attempts WHERE outcome = 'delivered'
         GROUP BY instance ORDER BY instance",
    )
    .fetch_all(&pool)
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get("instance"), r.get("n")))
    .collect();
    assert_eq!(
        by_instance.len(),
        INSTANCES,
        "every instance delivered: {by_instance:?}"
    );
    let attempts: i64 = sqlx::query_scalar("SELECT count(*) FROM attempts")
        .fetch_one(&pool)
        .await
        .unwrap();
    eprintln!(
        "gongkai: multi-process test: {n} disclosures ({total} deliveries, {attempts} attempts, \
         {lost} lost) through {INSTANCES} instances in {:.1} s (ready {:.1} s, mp-{VICTIM} killed \
         at {:.1} s with {in_flight_of_victim} in flight, all submitted {:.1} s); delivered by \
         instance: {by_instance:?}; WeChat calls: {}",
        done.as_secs_f64(),
        ready.as_secs_f64(),
        killed_at.as_secs_f64(),
        submitted.as_secs_f64(),
        wx["calls"]
    );
    drop(store);
    sandbox.shutdown().await;
}
