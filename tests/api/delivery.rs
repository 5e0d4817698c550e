//! The website channel end to end: delivered, retried, parked as dead, never duplicated.

use gongkai::domain::{AttemptOutcome, AttemptTrigger, DeliveryStatus};
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn an_accepted_disclosure_is_published_on_the_website_platform() {
    an_accepted_disclosure_is_published_on_the_website_platform_case(spawn_app().await).await
}

#[tokio::test]
async fn an_accepted_disclosure_is_published_on_the_website_platform_on_postgres() {
    if let Some(app) = spawn_app_on_postgres().await {
        an_accepted_disclosure_is_published_on_the_website_platform_case(app).await
    }
}

async fn an_accepted_disclosure_is_published_on_the_website_platform_case(app: TestApp) {
    app.post_disclosure(&disclosure("zpmzj-2017-00200", 1))
        .await;
    let s = app.run_worker_until_idle().await;
    assert_eq!(s.delivered, 1);

    let d = &app.deliveries_of("zpmzj-2017-00200").await[0];
    assert_eq!(d.status, DeliveryStatus::Delivered);
    let state = app.sandbox_state().await;
    let doc = platform_doc(&state, "zpmzj-2017-00200").expect("the platform holds the item");
    assert_eq!(d.remote_id.as_deref(), doc["platform_doc_id"].as_str());
    assert_eq!(d.url.as_deref(), doc["url"].as_str());
    assert_eq!(doc["title"], "关于2017年第1季度城乡低保资金发放情况的公示");
    let attempts = app.attempts(d.id).await;
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].outcome, AttemptOutcome::Delivered);
    assert_eq!(attempts[0].trigger, AttemptTrigger::Scheduled);
    assert_eq!(attempts[0].http_status, Some(201));
    // The exact bytes sent are kept on the delivery.
    let sent: serde_json::Value = serde_json::from_slice(d.payload.as_ref().unwrap()).unwrap();
    assert_eq!(sent["disclosure_id"], "zpmzj-2017-00200");
    assert_eq!(state["gov_site"]["duplicates"], 0);
}

#[tokio::test]
async fn a_transient_failure_is_retried_then_delivered() {
    a_transient_failure_is_retried_then_delivered_case(spawn_app().await).await
}

#[tokio::test]
async fn a_transient_failure_is_retried_then_delivered_on_postgres() {
    if let Some(app) = spawn_app_on_postgres().await {
        a_transient_failure_is_retried_then_delivered_case(app).await
    }
}

async fn a_transient_failure_is_retried_then_delivered_case(app: TestApp) {
    app.fault(json!({"path": "/gov_site/v1/disclosures", "count": 2, "status": 503}))
        .await;
    app.post_disclosure(&disclosure("zpmzj-2017-00201", 1))
        .await;
    app.run_worker_until_idle().await;

    let d = &app.deliveries_of("zpmzj-2017-00201").await[0];
    assert_eq!(d.status, DeliveryStatus::Delivered);
    let outcomes: Vec<_> = app.attempts(d.id).await.iter().map(|a| a.outcome).collect();
    assert_eq!(
        outcomes,
        [
            AttemptOutcome::Transient,
            AttemptOutcome::Transient,
            AttemptOutcome::Delivered
        ]
    );
    let attempts = app.attempts(d.id).await;
    assert_eq!(attempts[0].http_status, Some(503));
    assert_eq!(app.sandbox_state().await["gov_site"]["duplicates"], 0);
}

#[tokio::test]
async fn a_permanent_failure_is_dead_at_once_with_the_platforms_reason() {
    let app = spawn_app().await;
    app.fault(json!({
        "path": "/gov_site/v1/disclosures",
        "count": 1,
        "status": 422,
        "body": "{\"error\":\"column_closed\",\"message\":\"栏目已关闭，不能发布\"}"
    }))
    .await;
    app.post_disclosure(&disclosure("zpmzj-2017-00202", 1))
        .await;
    app.run_worker_until_idle().await;

    let d = &app.deliveries_of("zpmzj-2017-00202").await[0];
    assert_eq!(d.status, DeliveryStatus::Dead);
    assert_eq!(d.attempts, 1);
    let err = d.last_error.as_deref().unwrap();
    assert!(err.contains("HTTP 422"), "{err}");
    let attempts = app.attempts(d.id).await;
    assert_eq!(attempts[0].outcome, AttemptOutcome::Permanent);
}

#[tokio::test]
async fn transient_failures_until_attempts_run_out_park_the_delivery_as_dead() {
    let app = spawn_app().await; // max_attempts = 4 in tests
    app.fault(json!({"path": "/gov_site/v1/disclosures", "count": 10, "status": 500}))
        .await;
    app.post_disclosure(&disclosure("zpmzj-2017-00203", 1))
        .await;
    app.run_worker_until_idle().await;
    let d = &app.deliveries_of("zpmzj-2017-00203").await[0];
    assert_eq!(d.status, DeliveryStatus::Dead);
    assert_eq!(d.attempts, 4);
    assert!(d.last_error.as_deref().unwrap().contains("停止自动重试"));
}

#[tokio::test]
async fn an_answer_lost_after_the_platform_stored_the_item_does_not_make_a_duplicate() {
    let app = spawn_app().await;
    // The platform stores the item, then the answer is a 502: the client cannot know.
    app.fault(json!({
        "path": "/gov_site/v1/disclosures",
        "count": 1,
        "status": 502,
        "after_processing": true
    }))
    .await;
    app.post_disclosure(&disclosure("zpmzj-2017-00204", 1))
        .await;
    app.run_worker_until_idle().await;

    let d = &app.deliveries_of("zpmzj-2017-00204").await[0];
    assert_eq!(d.status, DeliveryStatus::Delivered);
    assert_eq!(d.attempts, 2);
    let state = app.sandbox_state().await;
    assert_eq!(state["gov_site"]["duplicates"], 0);
    assert_eq!(state["gov_site"]["replays"], 1);
    assert_eq!(state["gov_site"]["docs"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_platform_that_times_out_is_retried_with_the_same_idempotency_key() {
    let app = spawn_app_with(|s| {
        // One second is the shortest timeout a channel file accepts in practice.
        for spec in s.channels.channels.values_mut() {
            let gongkai::config::ChannelSpec::GovSite(c) = spec else {
                continue;
            };
            c.timeout = std::time::Duration::from_millis(300);
        }
    })
    .await;
    app.fault(json!({
        "path": "/gov_site/v1/disclosures",
        "count": 1,
        "delay_ms": 1500,
        "status": 201,
        "after_processing": true
    }))
    .await;
    app.post_disclosure(&disclosure("zpmzj-2017-00205", 1))
        .await;
    app.run_worker_until_idle().await;
    let d = &app.deliveries_of("zpmzj-2017-00205").await[0];
    assert_eq!(d.status, DeliveryStatus::Delivered);
    let attempts = app.attempts(d.id).await;
    assert!(attempts[0].detail.as_deref().unwrap().contains("超时"));
    let state = app.sandbox_state().await;
    assert_eq!(state["gov_site"]["duplicates"], 0);
    assert_eq!(state["gov_site"]["docs"].as_array().unwrap().len(), 1);
}

/// A channel whose code panics: the worker must log it and carry on.
struct PanickingChannel;

#[async_trait::async_trait]
impl gongkai::channel::Channel for PanickingChannel {
    fn name(&self) -> &str {
        "gov_site"
    }
    fn kind(&self) -> gongkai::domain::ChannelKind {
        gongkai::domain::ChannelKind::GovSite
    }
    fn template(&self) -> &str {
        "gov_site/disclosure.json.j2"
    }
    async fn deliver(
        &self,
        _request: &gongkai::channel::DeliveryRequest,
        _progress: &mut dyn gongkai::channel::Progress,
    ) -> Result<gongkai::channel::Sent, gongkai::channel::DeliveryError> {
        panic!("a bug in a channel");
    }
}

#[tokio::test]
async fn a_panic_inside_one_delivery_does_not_stop_the_worker() {
    let app = spawn_app_with(|s| s.worker.lease = std::time::Duration::from_secs(1)).await;
    app.post_disclosure(&disclosure("zpmzj-2017-00206", 1))
        .await;
    let settings = app.ledger.settings.clone();
    let renderer = gongkai::render::Renderer::load(&settings.templates_path()).unwrap();
    let broken = std::sync::Arc::new(gongkai::delivery::worker::Worker::new(
        app.ledger.store.clone(),
        gongkai::channel::Registry::from_channels(vec![std::sync::Arc::new(PanickingChannel)]),
        std::sync::Arc::new(renderer),
        settings,
        app.ledger.wake.clone(),
    ));
    let s = broken.run_once(chrono::Utc::now()).await.unwrap();
    assert_eq!((s.claimed, s.unrecorded), (1, 1));
    // The same worker keeps working: the next run finds nothing new, without an error.
    assert!(broken.run_once(chrono::Utc::now()).await.unwrap().is_idle());

    // The lease expires; a healthy worker takes the delivery over and delivers it, and the
    // interrupted attempt is on record.
    app.run_worker_until_idle().await;
    let d = &app.deliveries_of("zpmzj-2017-00206").await[0];
    assert_eq!(d.status, DeliveryStatus::Delivered);
    let outcomes: Vec<_> = app.attempts(d.id).await.iter().map(|a| a.outcome).collect();
    assert_eq!(outcomes, [AttemptOutcome::Lost, AttemptOutcome::Delivered]);
}

#[tokio::test]
async fn the_api_gives_the_annual_report_in_either_layout() {
    annual_report_in_either_layout(spawn_app().await).await;
}

/// The report reads `published_groups` and `report_revisions`, whose SQL differs by backend.
#[tokio::test]
async fn the_api_gives_the_annual_report_in_either_layout_on_postgres() {
    if let Some(app) = spawn_app_on_postgres().await {
        annual_report_in_either_layout(app).await;
    }
}

async fn annual_report_in_either_layout(app: TestApp) {
    app.post_disclosure(&disclosure("zpmzj-2017-00207", 1))
        .await;
    app.run_worker_until_idle().await;

    let r: serde_json::Value = app
        .api_get("/report?year=2017&layout=2017")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r["layout"], "2017");
    assert_eq!(r["total"]["year"], 1);
    assert_eq!(r["total"]["cumulative"], 407); // the example baseline: 406 before 2017
    assert!(r["fubiao"].is_array());

    let r: serde_json::Value = app
        .api_get("/report?year=2017&layout=2021")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r["layout"], "2021");
    assert!(r["table2"].is_object());
    // No clerk's file: the applications cells are empty (null), never invented numbers.
    assert!(r["table3"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .all(|row| row["values"].is_null()));
    assert!(r["applications"]["note"]
        .as_str()
        .unwrap()
        .contains("未提供"));

    let bad = app.api_get("/report?year=2017&layout=2019").await;
    assert_eq!(bad.status(), 400);
}
