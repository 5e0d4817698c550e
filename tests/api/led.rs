//! The hall LED screen end to end: through the worker to the feed file, the HTTP pull
//! endpoint and the sandbox's BX-5K/6K controller emulator; faults of the controller (NACK,
//! dropped connection, power cut), expiry, withdrawal, revisions, unencodable text.

use chrono::Utc;
use gongkai::domain::{AttemptOutcome, DeliveryStatus};
use gongkai::led::text::{decode, LedEncoding};
use serde_json::{json, Value};

use crate::helpers::*;

const SHOWN: &str = "【公开】低保资金发放公示（漳平市民政局 04月07日）";

async fn led_post(app: &TestApp, path: &str, body: Value) {
    let r = reqwest::Client::new()
        .post(format!("{}/_sandbox/led/{path}", app.sandbox.base_url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
}

async fn controller_text(app: &TestApp) -> Option<String> {
    let s = app.sandbox_state().await;
    s["led"]["areas"]
        .as_array()
        .unwrap()
        .first()
        .map(|a| a["text"].as_str().unwrap().to_string())
}

fn feed_txt(app: &TestApp) -> String {
    let b = std::fs::read(app.dir.path().join("led_feed/hall_led/feed.txt")).unwrap();
    decode(&b, LedEncoding::Gb2312)
}

async fn led_delivery(app: &TestApp, id: &str) -> Vec<gongkai::store::DeliveryRow> {
    app.deliveries_of(id)
        .await
        .into_iter()
        .filter(|d| d.channel == "hall_led")
        .collect()
}

#[tokio::test]
async fn a_disclosure_goes_up_on_the_controller_the_feed_file_and_the_http_feed() {
    let app = spawn_app_with_led().await;
    // Act
    let r = app
        .post_disclosure(&disclosure("zpmzj-2017-00700", 1))
        .await;
    assert_eq!(r.status(), 201);
    let s = app.run_worker_until_idle().await;
    // Assert: both channels delivered, the website unaffected.
    assert_eq!(s.delivered, 2);
    let d = &led_delivery(&app, "zpmzj-2017-00700").await[0];
    assert_eq!(d.status, DeliveryStatus::Delivered);
    let attempts = app.attempts(d.id).await;
    assert!(
        attempts[0].detail.as_deref().unwrap().contains("显示至"),
        "{:?}",
        attempts[0].detail
    );
    assert_eq!(controller_text(&app).await.as_deref(), Some(SHOWN));
    // The controller was pinged and its clock set (China time) before the update.
    let clock = app.sandbox_state().await["led"]["clock_set_to"]
        .as_str()
        .map(str::to_string)
        .expect("the controller's clock was set");
    let china_now = (Utc::now() + chrono::Duration::hours(8)).naive_utc();
    let set = chrono::NaiveDateTime::parse_from_str(&clock, "%Y-%m-%d %H:%M:%S").unwrap();
    assert!((china_now - set).num_seconds().abs() < 60, "{clock}");
    assert_eq!(feed_txt(&app), format!("{SHOWN}\r\n"));
    let json: Value = serde_json::from_slice(
        &std::fs::read(app.dir.path().join("led_feed/hall_led/feed.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(json["items"][0]["text"], SHOWN);

    // HTTP pull: the screen's charset, an ETag, 304 when unchanged.
    let url = format!("{}/led/hall_led/feed", app.api);
    let r = app.client.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"].to_str().unwrap(),
        "text/plain; charset=gb2312"
    );
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    assert_eq!(
        decode(&r.bytes().await.unwrap(), LedEncoding::Gb2312),
        format!("{SHOWN}\r\n")
    );
    let r = app
        .client
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    let r = app
        .client
        .get(format!("{url}?format=json"))
        .send()
        .await
        .unwrap();
    assert_ne!(r.headers()["etag"].to_str().unwrap(), etag);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["items"][0]["disclosure_id"], "zpmzj-2017-00700");
    let r = app
        .client
        .get(format!("{}/led/nope/feed", app.api))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // A new revision replaces its item: the ETag changes, the old one no longer matches.
    let mut rev2 = disclosure("zpmzj-2017-00700", 2);
    rev2["short_title"] = json!("低保资金发放公示（更正）");
    app.post_disclosure(&rev2).await;
    app.run_worker_until_idle().await;
    let r = app
        .client
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = feed_txt(&app);
    assert_eq!(text.lines().count(), 1, "one item per disclosure: {text}");
    assert!(text.contains("低保资金发放公示（更正）"), "{text}");
    assert!(controller_text(&app).await.unwrap().contains("（更正）"));
}

#[tokio::test]
async fn a_nack_is_retried_and_then_acknowledged() {
    let app = spawn_app_with_led().await;
    led_post(
        &app,
        "faults",
        json!({"kind": "nack", "code": 5, "count": 1}),
    )
    .await;
    app.post_disclosure(&disclosure("zpmzj-2017-00701", 1))
        .await;
    app.run_worker_until_idle().await;
    let d = &led_delivery(&app, "zpmzj-2017-00701").await[0];
    assert_eq!(d.status, DeliveryStatus::Delivered);
    let attempts = app.attempts(d.id).await;
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0].outcome, AttemptOutcome::Transient);
    let detail = attempts[0].detail.as_deref().unwrap();
    assert!(
        detail.contains("NACK")
            && detail.contains("hall_led")
            && detail.contains("zpmzj-2017-00701"),
        "{detail}"
    );
    assert_eq!(controller_text(&app).await.as_deref(), Some(SHOWN));
}

#[tokio::test]
async fn a_dropped_connection_is_retried() {
    let app = spawn_app_with_led().await;
    led_post(&app, "faults", json!({"kind": "drop", "count": 2})).await;
    app.post_disclosure(&disclosure("zpmzj-2017-00702", 1))
        .await;
    app.run_worker_until_idle().await;
    let d = &led_delivery(&app, "zpmzj-2017-00702").await[0];
    assert_eq!(d.status, DeliveryStatus::Delivered);
    let attempts = app.attempts(d.id).await;
    assert_eq!(attempts.len(), 3);
    assert!(attempts[0].detail.as_deref().unwrap().contains("断开"));
    assert_eq!(app.sandbox_state().await["led"]["dropped"], 2);
}

#[tokio::test]
async fn a_dark_screen_never_blocks_the_website_and_the_text_comes_back_after_power_returns() {
    let app = spawn_app_with_led().await;
    app.post_disclosure(&disclosure("zpmzj-2017-00703", 1))
        .await;
    app.run_worker_until_idle().await;
    assert_eq!(controller_text(&app).await.as_deref(), Some(SHOWN));

    // A power cut clears the controller's RAM; while dark, the website still gets its items.
    led_post(&app, "power", json!({"on": false})).await;
    assert_eq!(controller_text(&app).await, None);
    app.post_disclosure(&disclosure("zpmzj-2017-00704", 1))
        .await;
    app.run_worker_until_idle().await;
    let rows = app.deliveries_of("zpmzj-2017-00704").await;
    let site = rows.iter().find(|d| d.channel == "gov_site").unwrap();
    let led = rows.iter().find(|d| d.channel == "hall_led").unwrap();
    assert_eq!(site.status, DeliveryStatus::Delivered);
    assert_ne!(led.status, DeliveryStatus::Delivered);
    assert!(led.last_error.as_deref().unwrap().contains("hall_led"));
    let screen = &app.screens["hall_led"];
    screen.refresh(Utc::now()).await;
    assert!(screen.controller_status().consecutive_failures > 0);
    // The operator sees it over the API, with the reason.
    let screens: Value = app.api_get("/screens").await.json().await.unwrap();
    let hall = &screens.as_array().unwrap()[0];
    assert_eq!(hall["name"], "hall_led");
    assert_eq!(hall["controller"]["last_push_ok"], false);
    assert!(hall["controller"]["last_error"]
        .as_str()
        .unwrap()
        .contains("控制卡"));

    // Power back: the next refresh (the keep-alive) puts the text up again.
    led_post(&app, "power", json!({"on": true})).await;
    screen.refresh(Utc::now()).await;
    assert_eq!(controller_text(&app).await.as_deref(), Some(SHOWN));
    assert_eq!(screen.controller_status().consecutive_failures, 0);
    // And the operator's retry delivers the parked item.
    let r = app
        .api_post(&format!("/deliveries/{}/retry", led.id), json!({}), "张三")
        .await;
    assert!(r.status().is_success());
    app.run_worker_until_idle().await;
    assert_eq!(
        led_delivery(&app, "zpmzj-2017-00704").await[0].status,
        DeliveryStatus::Delivered
    );
    assert_eq!(feed_txt(&app).lines().count(), 2);
}

#[tokio::test]
async fn withdrawal_and_expiry_take_the_item_down() {
    let app = spawn_app_with_led().await;
    app.post_disclosure(&disclosure("zpmzj-2017-00705", 1))
        .await;
    app.post_disclosure(&disclosure("zpmzj-2017-00706", 1))
        .await;
    app.run_worker_until_idle().await;
    assert_eq!(feed_txt(&app).lines().count(), 2);

    // Withdrawal: at once, with the time it left the screen recorded.
    let r = app
        .api_post(
            "/disclosures/zpmzj-2017-00705/withdraw",
            json!({"reason": "信息有误"}),
            "张三",
        )
        .await;
    assert!(r.status().is_success());
    app.run_worker_until_idle().await;
    let w = led_delivery(&app, "zpmzj-2017-00705")
        .await
        .into_iter()
        .find(|d| d.action == gongkai::domain::Action::Withdraw)
        .unwrap();
    assert_eq!(w.status, DeliveryStatus::Delivered);
    let detail = app.attempts(w.id).await[0].detail.clone().unwrap();
    assert!(detail.contains("displayed_until"), "{detail}");
    assert_eq!(feed_txt(&app).lines().count(), 1);

    // Expiry: 7 days later the other one is gone from every output.
    let screen = &app.screens["hall_led"];
    let gone = screen
        .refresh(Utc::now() + chrono::Duration::days(7) + chrono::Duration::minutes(1))
        .await;
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0].disclosure_id, "zpmzj-2017-00706");
    assert_eq!(feed_txt(&app), "");
    assert_eq!(controller_text(&app).await, None);

    // Both times are written down in the ledger, on the deliveries that put the items up
    // (the 公示 evidence): the withdrawal's moment, and the planned end for the expired one.
    gongkai::led::record_came_down(screen, app.ledger.store.as_ref()).await;
    let up = |rows: Vec<gongkai::store::DeliveryRow>| {
        rows.into_iter()
            .find(|d| d.action == gongkai::domain::Action::Publish)
            .unwrap()
    };
    let withdrawn = up(led_delivery(&app, "zpmzj-2017-00705").await);
    let until = withdrawn.displayed_until.expect("withdrawal time recorded");
    assert!(until >= withdrawn.delivered_at.unwrap() && until <= Utc::now());
    let expired = up(led_delivery(&app, "zpmzj-2017-00706").await);
    // (The ledger keeps milliseconds.)
    assert_eq!(
        expired.displayed_until.map(|t| t.timestamp_millis()),
        Some(gone[0].displayed_until.timestamp_millis())
    );
    // Recorded once: a later record does not move it.
    app.ledger
        .store
        .record_displayed_until("default", "hall_led", "zpmzj-2017-00706", 1, Utc::now())
        .await
        .unwrap();
    let again = up(led_delivery(&app, "zpmzj-2017-00706").await);
    assert_eq!(again.displayed_until, expired.displayed_until);
}

#[tokio::test]
async fn a_character_the_screen_cannot_show_is_refused_with_its_code_point_until_led_text_comes() {
    let app = spawn_app_with_led().await;
    let mut d = disclosure("zpmzj-2017-00707", 1);
    d["short_title"] = json!("朱镕基同志题词展");
    app.post_disclosure(&d).await;
    app.run_worker_until_idle().await;
    let rows = app.deliveries_of("zpmzj-2017-00707").await;
    assert_eq!(
        rows.iter()
            .find(|d| d.channel == "gov_site")
            .unwrap()
            .status,
        DeliveryStatus::Delivered
    );
    let led = rows.iter().find(|d| d.channel == "hall_led").unwrap();
    assert_eq!(led.status, DeliveryStatus::Dead);
    let e = led.last_error.as_deref().unwrap();
    assert!(
        e.contains("镕")
            && e.contains("U+9555")
            && e.contains("led_text")
            && e.contains("zpmzj-2017-00707"),
        "{e}"
    );
    assert_eq!(
        app.attempts(led.id).await.len(),
        1,
        "permanent: not retried"
    );
    assert!(feed_txt_opt(&app).is_none_or(|t| !t.contains("题词")));

    // A revision with an approved led_text goes up, word for word.
    let mut d2 = disclosure("zpmzj-2017-00707", 2);
    d2["short_title"] = json!("朱镕基同志题词展");
    d2["led_text"] = json!("【公开】题词展开幕（漳平市民政局 04月07日）");
    app.post_disclosure(&d2).await;
    app.run_worker_until_idle().await;
    assert!(feed_txt(&app).contains("【公开】题词展开幕"));
}

fn feed_txt_opt(app: &TestApp) -> Option<String> {
    std::fs::read(app.dir.path().join("led_feed/hall_led/feed.txt"))
        .ok()
        .map(|b| decode(&b, LedEncoding::Gb2312))
}

#[tokio::test]
async fn the_feed_is_rebuilt_from_the_ledger_after_a_restart() {
    let app = spawn_app_with_led().await;
    app.post_disclosure(&disclosure("zpmzj-2017-00708", 1))
        .await;
    app.run_worker_until_idle().await;
    // A second daemon on the same ledger and config starts with the same feed.
    let mut settings = gongkai::config::Settings::load(&app.config_path).unwrap();
    settings.worker.enabled = false;
    let again = gongkai::app::Application::build(settings).await.unwrap();
    let feed = again.screens()["hall_led"].current(Utc::now()).await;
    assert_eq!(feed.items().len(), 1);
    assert_eq!(feed.items()[0].text, SHOWN);
}

#[tokio::test]
async fn a_screen_switched_off_waits_for_its_on_hours_without_using_up_retries() {
    // on_hours that start two hours from now (China time): the controller is off.
    let china = Utc::now() + chrono::Duration::hours(8);
    let from = (china + chrono::Duration::hours(2))
        .format("%H:%M")
        .to_string();
    let to = (china + chrono::Duration::hours(3))
        .format("%H:%M")
        .to_string();
    let app = spawn_app_with_led_and(|s| {
        if let Some(gongkai::config::ChannelSpec::Led(c)) = s.channels.channels.get_mut("hall_led")
        {
            c.on_hours = Some(format!("{from}-{to}"));
        }
    })
    .await;
    app.post_disclosure(&disclosure("zpmzj-2017-00709", 1))
        .await;
    // One pass only: the wait is hours long.
    let s = app.worker.run_once(Utc::now()).await.unwrap();
    assert_eq!(s.claimed, 2);
    let d = &led_delivery(&app, "zpmzj-2017-00709").await[0];
    assert_eq!(d.status, DeliveryStatus::Retrying);
    let wait = d.next_attempt_at.unwrap() - Utc::now();
    assert!(
        wait > chrono::Duration::minutes(100) && wait <= chrono::Duration::hours(2),
        "{wait}"
    );
    let a = &app.attempts(d.id).await[0];
    assert_eq!(a.outcome, gongkai::domain::AttemptOutcome::Pending);
    assert!(a.detail.as_deref().unwrap().contains("开屏时间"));
    // The budget is untouched, nothing reached the controller, the website went ahead.
    assert_eq!(d.attempts_base, d.attempts);
    assert_eq!(controller_text(&app).await, None);
    let site = app
        .deliveries_of("zpmzj-2017-00709")
        .await
        .into_iter()
        .find(|d| d.channel == "gov_site")
        .unwrap();
    assert_eq!(site.status, DeliveryStatus::Delivered);
}

#[tokio::test]
async fn a_feed_longer_than_one_controller_area_takes_turns_over_refreshes() {
    let app = spawn_app_with_led_and(|s| {
        if let Some(gongkai::config::ChannelSpec::Led(c)) = s.channels.channels.get_mut("hall_led")
        {
            c.max_bytes_per_area = 100; // two short items per frame
        }
    })
    .await;
    let texts: Vec<String> = (0..5).map(|i| format!("第{i}号公示请到大厅查阅")).collect();
    for (i, t) in texts.iter().enumerate() {
        let mut d = disclosure(&format!("zpmzj-2017-0071{i}"), 1);
        d["led_text"] = json!(t);
        app.post_disclosure(&d).await;
    }
    app.run_worker_until_idle().await;
    // The newest is on the controller right after its delivery.
    let now_showing = controller_text(&app).await.unwrap();
    assert!(now_showing.contains(&texts[4]), "{now_showing}");

    let screen = &app.screens["hall_led"];
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..5 {
        screen.refresh(Utc::now()).await;
        let shown = controller_text(&app).await.unwrap();
        assert!(
            shown.chars().count() < 40,
            "one area holds a few items: {shown}"
        );
        for t in &texts {
            if shown.contains(t.as_str()) {
                seen.insert(t.clone());
            }
        }
    }
    assert_eq!(seen.len(), 5, "every item came round: {seen:?}");
    // The file feed always has them all.
    assert_eq!(feed_txt(&app).lines().count(), 5);
}
