//! The WeChat channel end to end against the emulated official account on loopback.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use gongkai::app::Application;
use gongkai::config::Settings;
use gongkai::delivery::worker::Worker;
use gongkai::domain::{AttemptOutcome, DeliveryStatus};
use gongkai::sandbox::{self, SandboxHandle};
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::helpers::*;

struct WxApp {
    app: TestApp,
    /// The PostgreSQL database of an app made by `spawn_wechat_app_on`, dropped after it.
    _pg: Option<pg::TestDatabase>,
}

impl std::ops::Deref for WxApp {
    type Target = TestApp;
    fn deref(&self) -> &TestApp {
        &self.app
    }
}

fn write_channel(dir: &std::path::Path, sandbox: &SandboxHandle, extra: &str) {
    std::fs::write(dir.join("secrets/wechat.key"), APP_SECRET).unwrap();
    std::fs::write(dir.join("secrets/wechat_cb.key"), CB_TOKEN).unwrap();
    std::fs::write(
        dir.join("channels/wechat.toml"),
        format!(
            "kind = \"wechat\"\nappid = \"{APPID}\"\nsecret_file = \"../secrets/wechat.key\"\ncallback_token_file = \"../secrets/wechat_cb.key\"\napi_base = \"{}\"\ncheck_every = \"1s\"\n{extra}",
            sandbox.wechat_api_base()
        ),
    )
    .unwrap();
}

async fn build(dir: &std::path::Path, config: &std::path::Path, instance: &str) -> Application {
    let _ = dir;
    let mut settings = Settings::load(config).unwrap();
    settings.worker.enabled = false;
    settings.retry.schedule = vec![Duration::from_millis(10), Duration::from_millis(20)];
    settings.retry.max_attempts = 4;
    settings.worker.instance_id = Some(instance.into());
    Application::build(settings).await.unwrap()
}

/// An app with a `wechat` channel on the emulated account; `callback` = the emulator pushes
/// PUBLISHJOBFINISH to the app.
async fn spawn_wechat_app(callback: bool, extra: &str) -> WxApp {
    spawn_wechat_app_on(None, callback, extra).await
}

/// Like `spawn_wechat_app`, on the PostgreSQL `database` when given.
async fn spawn_wechat_app_on(
    database: Option<pg::TestDatabase>,
    callback: bool,
    extra: &str,
) -> WxApp {
    let sandbox = spawn_wechat_sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let config_path = lay_out(dir.path(), &sandbox);
    write_channel(dir.path(), &sandbox, extra);
    if let Some(db) = &database {
        let text = std::fs::read_to_string(&config_path).unwrap();
        let line = text
            .lines()
            .find(|l| l.starts_with("database_url"))
            .expect("the config names its database")
            .to_string();
        std::fs::write(
            &config_path,
            text.replace(&line, &format!("database_url = {:?}", db.url)),
        )
        .unwrap();
    }
    let app = build(dir.path(), &config_path, "test-worker").await;
    let api = format!("http://{}", app.addr());
    if callback {
        sandbox
            .state()
            .wechat()
            .set_callback(APPID, Some(format!("{api}/wechat/wechat/callback")));
    }
    let ledger = app.ledger();
    let worker = app.worker();
    let (stop, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(app.run_until_stopped(rx));
    WxApp {
        app: TestApp::from_parts(dir, config_path, api, ledger, worker, sandbox, stop),
        _pg: database,
    }
}

fn wx_disclosure(id: &str, revision: i64) -> Value {
    let mut d = disclosure(id, revision);
    d["channels"] = json!(["wechat"]);
    d
}

impl WxApp {
    async fn publish(&self, d: &Value) -> i64 {
        let r = self.post_disclosure(d).await;
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
        let rows = self
            .deliveries_of(d["disclosure_id"].as_str().unwrap())
            .await;
        rows.iter()
            .filter(|r| r.revision == d["revision"].as_i64().unwrap())
            .map(|r| r.id)
            .next_back()
            .unwrap()
    }

    /// Runs the worker until the deliveries are final (publishing is asynchronous).
    async fn settle(&self) {
        for _ in 0..50 {
            self.run_worker_until_idle().await;
            if self.deliveries().await.iter().all(|d| d.status.is_final()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("deliveries never settled: {:?}", self.deliveries().await);
    }

    async fn wx(&self) -> Value {
        self.sandbox_state().await["wechat"].clone()
    }

    async fn errcode(&self, path: &str, code: i64, count: u32) {
        self.fault(
            serde_json::to_value(sandbox::wechat::errcode_fault(
                &format!("/wechat_api/cgi-bin/{path}"),
                code,
                count,
            ))
            .unwrap(),
        )
        .await;
    }
}

async fn assert_one_article(app: &WxApp, id: i64) -> Value {
    let d = app.ledger.store.get_delivery("default", id).await.unwrap();
    assert_eq!(d.status, DeliveryStatus::Delivered, "{:?}", d.last_error);
    let wx = app.wx().await;
    assert_eq!(wx["live_articles"], 1, "{wx:#}");
    assert_eq!(wx["duplicates"], 0);
    assert_eq!(
        d.remote_id.as_deref(),
        wx["articles"][0]["article_id"].as_str()
    );
    assert!(d.url.as_deref().unwrap().contains("/wechat_api/s/"));
    wx
}

#[tokio::test]
async fn a_disclosure_is_published_to_the_official_account() {
    let app = spawn_wechat_app(true, "").await;
    let id = app.publish(&wx_disclosure("zpmzj-2017-wx1", 1)).await;
    app.settle().await;
    let wx = assert_one_article(&app, id).await;
    assert_eq!(wx["grants"], 1);
    assert_eq!(wx["callbacks_sent"], 1);
    assert_eq!(wx["calls"]["/cgi-bin/freepublish/submit"], 1);
    let outcomes: Vec<_> = app.attempts(id).await.iter().map(|a| a.outcome).collect();
    assert_eq!(outcomes.first(), Some(&AttemptOutcome::Pending));
    assert_eq!(outcomes.last(), Some(&AttemptOutcome::Delivered));
}

#[tokio::test]
async fn an_expired_token_mid_publish_is_refreshed_once_without_a_duplicate() {
    let app = spawn_wechat_app(false, "").await;
    let id = app.publish(&wx_disclosure("zpmzj-2017-wx2", 1)).await;
    // Cover, draft and submit go through with the first token; then every token expires.
    app.worker.run_once(Utc::now()).await.unwrap();
    app.sandbox.state().wechat().expire_tokens();
    app.settle().await;
    let wx = assert_one_article(&app, id).await;
    assert_eq!(wx["grants"], 2, "one grant at first, one refresh");
    assert_eq!(wx["calls"]["/cgi-bin/freepublish/submit"], 1);
}

#[tokio::test]
async fn system_busy_twice_then_success_is_delivered_once() {
    let app = spawn_wechat_app(true, "").await;
    app.errcode("draft/add", -1, 2).await;
    let id = app.publish(&wx_disclosure("zpmzj-2017-wx3", 1)).await;
    app.settle().await;
    assert_one_article(&app, id).await;
    let outcomes: Vec<_> = app.attempts(id).await.iter().map(|a| a.outcome).collect();
    assert_eq!(
        &outcomes[..2],
        [AttemptOutcome::Transient, AttemptOutcome::Transient]
    );
}

#[tokio::test]
async fn a_daily_quota_error_waits_for_the_window_then_delivers() {
    let app = spawn_wechat_app(true, "").await;
    app.errcode("freepublish/submit", 45009, 1).await;
    let id = app.publish(&wx_disclosure("zpmzj-2017-wx4", 1)).await;
    app.worker.run_once(Utc::now()).await.unwrap();
    let d = app.ledger.store.get_delivery("default", id).await.unwrap();
    assert_eq!(d.status, DeliveryStatus::Retrying);
    assert!(d.next_attempt_at.unwrap() > Utc::now() + chrono::Duration::minutes(1));
    assert!(d.last_error.unwrap().contains("45009"));
    app.settle().await;
    assert_one_article(&app, id).await;
}

#[tokio::test]
async fn an_ip_not_on_the_whitelist_is_dead_with_the_whitelist_message() {
    let app = spawn_wechat_app(true, "").await;
    app.errcode("material/add_material", 40164, 1).await;
    let id = app.publish(&wx_disclosure("zpmzj-2017-wx5", 1)).await;
    app.settle().await;
    let d = app.ledger.store.get_delivery("default", id).await.unwrap();
    assert_eq!(d.status, DeliveryStatus::Dead);
    assert!(
        d.last_error.as_deref().unwrap().contains("IP 白名单"),
        "{:?}",
        d.last_error
    );
    assert_eq!(app.attempts(id).await.len(), 1, "never retried");
}

#[tokio::test]
async fn a_crash_between_draft_and_submit_publishes_exactly_once() {
    for after_processing in [false, true] {
        let app = spawn_wechat_app(false, "").await;
        // The submit hangs (and is or is not carried out); the attempt is killed meanwhile.
        app.fault(json!({
            "path": "/wechat_api/cgi-bin/freepublish/submit", "count": 1,
            "status": 504, "delay_ms": 1500, "after_processing": after_processing
        }))
        .await;
        let id = app.publish(&wx_disclosure("zpmzj-2017-wx6", 1)).await;
        let short = Worker::new(
            app.ledger.store.clone(),
            gongkai::channel::Registry::build_with_store(
                &app.ledger.settings.channels,
                app.ledger.store.clone(),
            )
            .unwrap(),
            Arc::new(
                gongkai::render::Renderer::load(&app.ledger.settings.templates_path()).unwrap(),
            ),
            app.ledger.settings.clone(),
            app.ledger.wake.clone(),
        );
        let short = Arc::new(short);
        let killed =
            tokio::time::timeout(Duration::from_millis(500), short.run_once(Utc::now())).await;
        assert!(killed.is_err(), "the attempt was cut short");
        let d = app.ledger.store.get_delivery("default", id).await.unwrap();
        assert!(d.progress.as_ref().unwrap()["draft_media_id"].is_string());
        tokio::time::sleep(Duration::from_millis(1500)).await;
        // The lease runs out; on "restart" the delivery resumes from its saved progress.
        app.settle().await;
        let wx = assert_one_article(&app, id).await;
        assert_eq!(wx["calls"]["/cgi-bin/draft/add"], 1, "one draft");
        // The handler counts submits that reached the account: exactly one, whether the
        // cut-short submit had gone through (found by reconciling) or not (submitted again).
        assert_eq!(wx["calls"]["/cgi-bin/freepublish/submit"], 1);
    }
}

/// Regression (found by tests/multi_process.rs): the answer of a submit was lost, and by
/// the time the delivery is taken up again more than a page (20) of newer articles were
/// published; the article is found further back in the publish record, not waited for
/// forever and not submitted again.
#[tokio::test]
async fn an_interrupted_submit_is_found_behind_a_page_of_newer_articles() {
    let app = spawn_wechat_app(false, "").await;
    // The submit is carried out, but its answer hangs; the attempt is killed meanwhile.
    app.fault(json!({
        "path": "/wechat_api/cgi-bin/freepublish/submit", "count": 1,
        "status": 504, "delay_ms": 1500, "after_processing": true
    }))
    .await;
    let id = app.publish(&wx_disclosure("zpmzj-2017-wxp0", 1)).await;
    let short = Arc::new(Worker::new(
        app.ledger.store.clone(),
        gongkai::channel::Registry::build_with_store(
            &app.ledger.settings.channels,
            app.ledger.store.clone(),
        )
        .unwrap(),
        Arc::new(gongkai::render::Renderer::load(&app.ledger.settings.templates_path()).unwrap()),
        app.ledger.settings.clone(),
        app.ledger.wake.clone(),
    ));
    let killed = tokio::time::timeout(Duration::from_millis(500), short.run_once(Utc::now())).await;
    assert!(killed.is_err(), "the attempt was cut short");
    // Newer articles (a later second on the record) while the claim's lease runs.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut others = Vec::new();
    for i in 1..=25 {
        let d = disclosure_with_body(
            &format!("zpmzj-2017-wxp{i}"),
            1,
            &format!("<p>第{i}条较新的公示</p>"),
        );
        let mut d = d;
        d["channels"] = json!(["wechat"]);
        others.push(app.publish(&d).await);
    }
    for _ in 0..100 {
        // Within the lease of the cut-short claim (2 minutes): only the newer ones.
        app.worker
            .run_once(Utc::now() + chrono::Duration::seconds(10))
            .await
            .unwrap();
        let rows = app.deliveries().await;
        if rows
            .iter()
            .filter(|r| others.contains(&r.id))
            .all(|r| r.status == DeliveryStatus::Delivered)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(app.wx().await["live_articles"].as_u64().unwrap() >= 26);

    // Taken up again after the lease: found on the second page of the record.
    app.settle().await;
    let d = app.ledger.store.get_delivery("default", id).await.unwrap();
    assert_eq!(d.status, DeliveryStatus::Delivered, "{:?}", d.last_error);
    let wx = app.wx().await;
    assert_eq!(
        wx["calls"]["/cgi-bin/freepublish/submit"], 26,
        "never submitted again"
    );
    assert_eq!(wx["live_articles"], 26);
    assert_eq!(wx["duplicates"], 0);
    let article = wx["articles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["article_id"].as_str() == d.remote_id.as_deref())
        .expect("the delivery names its article");
    assert!(article["title"].as_str().is_some());
}

/// Regression (found by tests/multi_process.rs): another instance stores its fresh token
/// and lets go of the refresh lock after this one looked for a token and before it takes
/// the lock. This one must use the stored token, not get a second one. On PostgreSQL the
/// interleaving is made exact with a row lock that the lock attempt waits on.
#[tokio::test]
async fn a_token_stored_between_the_look_and_the_lock_is_used_not_granted_again() {
    let Some(database) = pg::TestDatabase::create().await else {
        return;
    };
    let url = database.url.clone();
    let app = spawn_wechat_app_on(Some(database), false, "token_mode = \"token\"\n").await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    // The other instance's token, granted by the emulator.
    let granted: Value = reqwest::get(format!(
        "{}/cgi-bin/token?grant_type=client_credential&appid={APPID}&secret={APP_SECRET}",
        app.sandbox.wechat_api_base()
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let token = granted["access_token"].as_str().unwrap().to_string();
    sqlx::query("INSERT INTO wechat_tokens (appid, updated_at) VALUES ($1, 0)")
        .bind(APPID)
        .execute(&pool)
        .await
        .unwrap();
    let mut other = pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM wechat_tokens WHERE appid = $1 FOR UPDATE")
        .bind(APPID)
        .execute(&mut *other)
        .await
        .unwrap();

    let id = app.publish(&wx_disclosure("zpmzj-2017-wxt", 1)).await;
    let worker = app.worker.clone();
    let run = tokio::spawn(async move { worker.run_once(Utc::now()).await });
    // This instance found no token and now waits for the refresh lock.
    let start = std::time::Instant::now();
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        if waiting > 0 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "never waited for the lock"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The other instance stores its token and lets go of the lock.
    sqlx::query(
        "UPDATE wechat_tokens SET access_token = $2, expires_at = $3, grants = 1,
             refreshing_by = NULL, refreshing_until = NULL WHERE appid = $1",
    )
    .bind(APPID)
    .bind(&token)
    .bind((Utc::now() + chrono::Duration::hours(2)).timestamp_millis())
    .execute(&mut *other)
    .await
    .unwrap();
    other.commit().await.unwrap();
    run.await.unwrap().unwrap();
    app.settle().await;

    let wx = assert_one_article(&app, id).await;
    assert_eq!(
        wx["grants"], 1,
        "the stored token was used, not a second grant"
    );
    pool.close().await;
}

#[tokio::test]
async fn a_publish_event_delivered_twice_is_recorded_once() {
    let app = spawn_wechat_app(false, "").await;
    let id = app.publish(&wx_disclosure("zpmzj-2017-wx7", 1)).await;
    app.worker.run_once(Utc::now()).await.unwrap();
    let d = app.ledger.store.get_delivery("default", id).await.unwrap();
    let publish_id = d.progress.unwrap()["publish_id"]
        .as_str()
        .unwrap()
        .to_string();
    let xml = format!("<xml><Event><![CDATA[PUBLISHJOBFINISH]]></Event><PublishEventInfo><publish_id>{publish_id}</publish_id><publish_status>0</publish_status><article_id><![CDATA[ART_EVENT]]></article_id><article_detail><count>1</count><item><idx>1</idx><article_url><![CDATA[http://mp.example/s/ART_EVENT]]></article_url></item></article_detail></PublishEventInfo></xml>");
    let url = format!("{}/wechat/wechat/callback", app.api);
    for _ in 0..2 {
        assert!(
            sandbox::wechat::push_event(app.sandbox.state().wechat(), &url, CB_TOKEN, xml.clone())
                .await
        );
    }
    // A wrong signature is refused.
    assert!(
        !sandbox::wechat::push_event(app.sandbox.state().wechat(), &url, "wrong", xml.clone())
            .await
    );
    let e = app
        .ledger
        .store
        .wechat_publish_event(APPID, &publish_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(e.times_received, 2);
    app.run_worker_until_idle().await;
    let d = app.ledger.store.get_delivery("default", id).await.unwrap();
    assert_eq!(d.status, DeliveryStatus::Delivered);
    assert_eq!(
        d.remote_id.as_deref(),
        Some("ART_EVENT"),
        "the event's outcome was used"
    );
}

#[tokio::test]
async fn without_the_event_the_poller_completes_the_delivery() {
    let app = spawn_wechat_app(false, "").await;
    let id = app.publish(&wx_disclosure("zpmzj-2017-wx8", 1)).await;
    app.settle().await;
    let wx = assert_one_article(&app, id).await;
    assert_eq!(wx["callbacks_sent"], 0);
    assert!(wx["calls"]["/cgi-bin/freepublish/get"].as_u64().unwrap() >= 1);
}

#[tokio::test]
async fn a_title_too_long_without_a_short_title_is_refused() {
    let app = spawn_wechat_app(true, "").await;
    let mut d = wx_disclosure("zpmzj-2017-wx9", 1);
    d["title"] = json!(
        "关于漳平市民政局2017年第一季度城乡最低生活保障资金发放情况及特困人员救助供养情况的公示"
    );
    d.as_object_mut().unwrap().remove("short_title");
    let id = app.publish(&d).await;
    app.settle().await;
    let row = app.ledger.store.get_delivery("default", id).await.unwrap();
    assert_eq!(row.status, DeliveryStatus::Dead);
    assert!(row.last_error.as_deref().unwrap().contains("short_title"));
    let wx = app.wx().await;
    assert_eq!(
        wx["calls"]["/cgi-bin/draft/add"],
        Value::Null,
        "nothing was sent"
    );
}

#[tokio::test]
async fn withdrawal_deletes_the_article_and_a_new_revision_replaces_it() {
    let app = spawn_wechat_app(true, "").await;
    let first = app.publish(&wx_disclosure("zpmzj-2017-wxa", 1)).await;
    app.settle().await;
    let old = app
        .ledger
        .store
        .get_delivery("default", first)
        .await
        .unwrap()
        .remote_id
        .unwrap();
    let second = app.publish(&wx_disclosure("zpmzj-2017-wxa", 2)).await;
    app.settle().await;
    let d2 = app
        .ledger
        .store
        .get_delivery("default", second)
        .await
        .unwrap();
    assert_eq!(d2.status, DeliveryStatus::Delivered);
    let wx = app.wx().await;
    assert_eq!(
        wx["live_articles"], 1,
        "the old article was deleted: {wx:#}"
    );
    let old_row = wx["articles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["article_id"] == old.as_str())
        .unwrap();
    assert_eq!(old_row["deleted"], true);

    let r = app
        .api_post(
            "/disclosures/zpmzj-2017-wxa/withdraw",
            json!({"reason": "信息有误"}),
            "tester",
        )
        .await;
    assert!(r.status().is_success());
    app.settle().await;
    assert_eq!(app.wx().await["live_articles"], 0);
    let rows = app.deliveries_of("zpmzj-2017-wxa").await;
    assert!(rows
        .iter()
        .any(|r| r.action == gongkai::domain::Action::Withdraw
            && r.status == DeliveryStatus::Delivered));
}

#[tokio::test]
async fn two_workers_on_one_database_use_one_token() {
    let app = spawn_wechat_app(true, "").await;
    let other = build(app.dir.path(), &app.config_path, "second-worker").await;
    let second = other.worker();
    for i in 0..6 {
        let mut d = disclosure_with_body(
            &format!("zpmzj-2017-wxb{i}"),
            1,
            &format!("<p>第{i}条公示</p>"),
        );
        d["channels"] = json!(["wechat"]);
        app.publish(&d).await;
    }
    let (a, b) = tokio::join!(app.worker.run_once(Utc::now()), second.run_once(Utc::now()));
    assert!(a.unwrap().claimed + b.unwrap().claimed >= 6);
    app.settle().await;
    let wx = app.wx().await;
    assert_eq!(wx["grants"], 1, "{wx:#}");
    assert_eq!(wx["live_articles"], 6);
    assert_eq!(wx["duplicates"], 0);
}

/// A web server for the body's images: `/ok.png` (a PNG), `/photo.gif` (not jpg/png),
/// anything else 404.
async fn image_server() -> String {
    use axum::routing::get;
    let png: &'static [u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDRbody-image";
    let app = axum::Router::new()
        .route("/ok.png", get(move || async move { png }))
        .route("/photo.gif", get(|| async { &b"GIF89a...."[..] }));
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    format!("http://{addr}")
}

const DATA_PNG: &str = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUmRhdGE=";

#[tokio::test]
async fn body_images_are_uploaded_once_and_the_html_is_cleaned() {
    let app = spawn_wechat_app(true, "").await;
    let images = image_server().await;
    let body = format!(
        "<p onclick=\"steal()\">低保公示<script>alert(1)</script></p><iframe src=\"{images}/x\"></iframe><img src=\"{images}/ok.png\"><img src=\"{DATA_PNG}\"><a href=\"javascript:alert(1)\">附件</a>"
    );
    let mut d = disclosure_with_body("zpmzj-2017-wxi1", 1, &body);
    d["channels"] = json!(["wechat"]);
    // The draft fails once: the retry must not upload the images again.
    app.errcode("draft/add", -1, 1).await;
    let id = app.publish(&d).await;
    app.settle().await;
    let wx = assert_one_article(&app, id).await;
    assert_eq!(wx["uploadimgs"], 2, "{wx:#}");
    let row = app.ledger.store.get_delivery("default", id).await.unwrap();
    let progress = row.progress.unwrap();
    assert_eq!(progress["images"].as_object().unwrap().len(), 2);
    let page = reqwest::get(row.url.unwrap())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("低保公示"), "{page}");
    for gone in [
        "<script",
        "onclick",
        "iframe",
        "javascript:",
        &images,
        "data:",
    ] {
        assert!(!page.contains(gone), "{gone} left in {page}");
    }
    assert_eq!(page.matches("<img src=\"http://mmbiz.qpic.cn/").count(), 2);

    // The same image in another disclosure comes from the media cache.
    let mut d2 = disclosure_with_body(
        "zpmzj-2017-wxi2",
        1,
        &format!("<p>另一条</p><img src=\"{images}/ok.png\">"),
    );
    d2["channels"] = json!(["wechat"]);
    app.publish(&d2).await;
    app.settle().await;
    assert_eq!(app.wx().await["uploadimgs"], 2);
}

#[tokio::test]
async fn a_body_image_that_cannot_be_fetched_is_refused_naming_its_url() {
    let app = spawn_wechat_app(true, "").await;
    let images = image_server().await;
    for (n, path, want) in [(1, "missing.png", "HTTP 404"), (2, "photo.gif", "jpg/png")] {
        let url = format!("{images}/{path}");
        let mut d = disclosure_with_body(
            &format!("zpmzj-2017-wxj{n}"),
            1,
            &format!("<p>公示</p><img src=\"{url}\">"),
        );
        d["channels"] = json!(["wechat"]);
        let id = app.publish(&d).await;
        app.settle().await;
        let row = app.ledger.store.get_delivery("default", id).await.unwrap();
        assert_eq!(row.status, DeliveryStatus::Dead);
        let e = row.last_error.unwrap();
        assert!(
            e.contains(&url) && e.contains(want) && e.contains(&format!("zpmzj-2017-wxj{n}")),
            "{e}"
        );
        assert_eq!(app.attempts(id).await.len(), 1, "permanent: not retried");
    }
    assert_eq!(app.wx().await["calls"]["/cgi-bin/draft/add"], Value::Null);
}

#[tokio::test]
async fn a_mass_send_happens_once_across_a_retry() {
    let app = spawn_wechat_app(true, "mass_send_categories = [\"mzfp\"]\n").await;
    // The first sendall is carried out but its answer is lost.
    app.fault(json!({
        "path": "/wechat_api/cgi-bin/message/mass/sendall", "count": 1,
        "status": 504, "after_processing": true
    }))
    .await;
    let id = app.publish(&wx_disclosure("zpmzj-2017-wxm1", 1)).await;
    app.settle().await;
    let wx = assert_one_article(&app, id).await;
    assert_eq!(wx["mass_sends"].as_array().unwrap().len(), 1, "{wx:#}");
    assert_eq!(
        wx["mass_replays"], 1,
        "the retry was recognized by clientmsgid"
    );
    assert_eq!(wx["mass_duplicates"], 0);
    assert_eq!(wx["calls"]["/cgi-bin/freepublish/submit"], 1);
    let row = app.ledger.store.get_delivery("default", id).await.unwrap();
    assert_eq!(
        wx["mass_sends"][0]["clientmsgid"].as_str(),
        Some(gongkai::channel::wechat::clientmsgid("zpmzj-2017-wxm1", 1, "wechat").as_str())
    );
    assert!(row.progress.as_ref().unwrap()["mass_msg_id"].is_string());
    // WeChat's report on the job (MASSSENDJOBFINISH, pushed to the callback) is kept for
    // the delivery: the operator sees it with the delivery.
    let mut report = None;
    for _ in 0..100 {
        report = app.ledger.mass_result(&row).await.unwrap();
        if report.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    }
    let report = report.expect("MASSSENDJOBFINISH recorded");
    assert_eq!(report.status, "send success");
    assert_eq!(
        report.sent_count,
        Some(gongkai::sandbox::wechat::SANDBOX_FOLLOWERS - 2)
    );
    assert_eq!(report.times_received, 1);
    let shown = gongkai::channel::wechat::mass_summary(&report);
    assert!(shown.starts_with("群发成功；粉丝 1200"), "{shown}");
    // Another category is published only.
    let mut other = wx_disclosure("zpmzj-2017-wxm2", 1);
    other["category"] = json!("jgzn");
    app.publish(&other).await;
    app.settle().await;
    assert_eq!(app.wx().await["mass_sends"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn no_mass_send_quota_parks_the_delivery_for_the_operator() {
    let app = spawn_wechat_app(true, "mass_send_categories = [\"mzfp\"]\n").await;
    app.sandbox.state().wechat().set_mass_quota(APPID, Some(0));
    let id = app.publish(&wx_disclosure("zpmzj-2017-wxm3", 1)).await;
    app.settle().await;
    let row = app.ledger.store.get_delivery("default", id).await.unwrap();
    assert_eq!(row.status, DeliveryStatus::Dead);
    let e = row.last_error.unwrap();
    assert!(
        e.contains("45028") && e.contains("群发配额已用完") && e.contains("手动重试"),
        "{e}"
    );
    let wx = app.wx().await;
    assert_eq!(
        wx["calls"]["/cgi-bin/message/mass/sendall"], 1,
        "never hammered"
    );
    assert_eq!(wx["live_articles"], 1, "the article is published");

    // The quota is back: the operator's retry sends it, without publishing again.
    app.sandbox.state().wechat().set_mass_quota(APPID, Some(1));
    let r = app
        .api_post(&format!("/deliveries/{id}/retry"), json!({}), "王科员")
        .await;
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    app.settle().await;
    let wx = assert_one_article(&app, id).await;
    assert_eq!(wx["mass_sends"].as_array().unwrap().len(), 1);
    assert_eq!(wx["calls"]["/cgi-bin/freepublish/submit"], 1);
}
