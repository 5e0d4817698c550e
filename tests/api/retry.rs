//! Operator retry: over HTTP and from the CLI, recorded as a manual attempt with who asked.

use gongkai::domain::{AttemptTrigger, DeliveryStatus};
use serde_json::{json, Value};

use crate::helpers::*;

async fn a_dead_delivery(app: &TestApp, id: &str) -> i64 {
    app.fault(json!({"path": "/gov_site/v1/disclosures", "count": 1, "status": 400}))
        .await;
    app.post_disclosure(&disclosure(id, 1)).await;
    app.run_worker_until_idle().await;
    let d = &app.deliveries_of(id).await[0];
    assert_eq!(d.status, DeliveryStatus::Dead);
    d.id
}

#[tokio::test]
async fn an_operator_retry_over_http_delivers_a_dead_delivery_and_keeps_its_history() {
    an_operator_retry_over_http_delivers_a_dead_delivery_and_keeps_its_history_case(
        spawn_app().await,
    )
    .await
}

#[tokio::test]
async fn an_operator_retry_over_http_delivers_a_dead_delivery_and_keeps_its_history_on_postgres() {
    if let Some(app) = spawn_app_on_postgres().await {
        an_operator_retry_over_http_delivers_a_dead_delivery_and_keeps_its_history_case(app).await
    }
}

async fn an_operator_retry_over_http_delivers_a_dead_delivery_and_keeps_its_history_case(
    app: TestApp,
) {
    let id = a_dead_delivery(&app, "zpmzj-2017-00300").await;

    // The failure and its reason are visible to the operator.
    let failed: Vec<Value> = app
        .api_get("/deliveries?status=dead")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(failed.len(), 1);
    assert!(failed[0]["last_error"]
        .as_str()
        .unwrap()
        .contains("HTTP 400"));

    let r = app
        .api_post(&format!("/deliveries/{id}/retry"), json!({}), "王科员")
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["results"][0]["result"], "scheduled");
    app.run_worker_until_idle().await;

    let shown: Value = app
        .api_get(&format!("/deliveries/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(shown["status"], "delivered");
    let log = shown["attempts_log"].as_array().unwrap();
    assert_eq!(log.len(), 2, "the failed attempt is kept");
    assert_eq!(log[0]["outcome"], "permanent");
    assert_eq!(log[1]["trigger"], "manual");
    assert_eq!(log[1]["requested_by"], "王科员");
    assert_eq!(log[1]["outcome"], "delivered");
}

#[tokio::test]
async fn retry_of_a_delivered_delivery_is_refused_with_a_reason() {
    let app = spawn_app().await;
    app.post_disclosure(&disclosure("zpmzj-2017-00301", 1))
        .await;
    app.run_worker_until_idle().await;
    let id = app.deliveries().await[0].id;
    let body: Value = app
        .api_post(&format!("/deliveries/{id}/retry"), json!({}), "王科员")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["results"][0]["result"], "refused");
    assert!(body["results"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("已送达"));
}

#[tokio::test]
async fn retry_failed_of_a_channel_retries_every_dead_delivery() {
    let app = spawn_app().await;
    app.fault(json!({"path": "/gov_site/v1/disclosures", "count": 2, "status": 403}))
        .await;
    app.post_disclosure(&disclosure("zpmzj-2017-00302", 1))
        .await;
    app.post_disclosure(&disclosure("zpmzj-2017-00303", 1))
        .await;
    app.run_worker_until_idle().await;
    assert_eq!(
        status_of(&app.deliveries().await),
        [DeliveryStatus::Dead, DeliveryStatus::Dead]
    );
    let results = app
        .ledger
        .retry_failed(Some("gov_site"), "cli:李股长")
        .await
        .unwrap();
    assert_eq!(results.len(), 2);
    app.run_worker_until_idle().await;
    let rows = app.deliveries().await;
    assert_eq!(
        status_of(&rows),
        [DeliveryStatus::Delivered, DeliveryStatus::Delivered]
    );
    for d in rows {
        let last = app.attempts(d.id).await.pop().unwrap();
        assert_eq!(last.trigger, AttemptTrigger::Manual);
        assert_eq!(last.requested_by.as_deref(), Some("cli:李股长"));
    }
}
