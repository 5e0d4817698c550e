//! Corrections (a higher revision) and withdrawals (撤回) reach the platform as updates of
//! the same item.

use gongkai::domain::{Action, DeliveryStatus};
use serde_json::{json, Value};

use crate::helpers::*;

#[tokio::test]
async fn revision_two_is_delivered_as_an_update_of_the_same_platform_item() {
    let app = spawn_app().await;
    app.post_disclosure(&disclosure("zpmzj-2017-00400", 1))
        .await;
    app.run_worker_until_idle().await;
    let first_doc = platform_doc(&app.sandbox_state().await, "zpmzj-2017-00400")
        .unwrap()
        .clone();

    let r = app
        .post_disclosure(&disclosure_with_body(
            "zpmzj-2017-00400",
            2,
            "<p>更正后的公示内容。</p>",
        ))
        .await;
    assert_eq!(r.status(), 201);
    app.run_worker_until_idle().await;

    let rows = app.deliveries_of("zpmzj-2017-00400").await;
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|d| d.status == DeliveryStatus::Delivered));
    let state = app.sandbox_state().await;
    let doc = platform_doc(&state, "zpmzj-2017-00400").unwrap();
    assert_eq!(doc["platform_doc_id"], first_doc["platform_doc_id"]);
    assert_eq!(doc["revision"], 2);
    assert_eq!(state["gov_site"]["docs"].as_array().unwrap().len(), 1);
    assert_eq!(state["gov_site"]["duplicates"], 0);
}

#[tokio::test]
async fn a_lower_revision_after_a_higher_one_is_refused() {
    let app = spawn_app().await;
    app.post_disclosure(&disclosure("zpmzj-2017-00401", 2))
        .await;
    let r = app
        .post_disclosure(&disclosure("zpmzj-2017-00401", 1))
        .await;
    assert_eq!(r.status(), 409);
}

#[tokio::test]
async fn a_withdrawal_removes_the_item_from_the_platform() {
    let app = spawn_app().await;
    app.post_disclosure(&disclosure("zpmzj-2017-00402", 1))
        .await;
    app.run_worker_until_idle().await;

    let r = app
        .api_post(
            "/disclosures/zpmzj-2017-00402/withdraw",
            json!({"reason": "名单有误，重新审核"}),
            "张主任",
        )
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["withdrawn_now"], true);
    app.run_worker_until_idle().await;

    let rows = app.deliveries_of("zpmzj-2017-00402").await;
    let w = rows.iter().find(|d| d.action == Action::Withdraw).unwrap();
    assert_eq!(w.status, DeliveryStatus::Delivered);
    let state = app.sandbox_state().await;
    assert_eq!(
        platform_doc(&state, "zpmzj-2017-00402").unwrap()["status"],
        "withdrawn"
    );

    // Withdrawing again changes nothing; a new revision of a withdrawn item is refused.
    let again: Value = app
        .api_post(
            "/disclosures/zpmzj-2017-00402/withdraw",
            json!({}),
            "张主任",
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["withdrawn_now"], false);
    let r = app
        .post_disclosure(&disclosure("zpmzj-2017-00402", 2))
        .await;
    assert_eq!(r.status(), 409);
}

#[tokio::test]
async fn withdrawing_before_delivery_cancels_the_delivery_and_sends_nothing() {
    let app = spawn_app().await;
    app.post_disclosure(&disclosure("zpmzj-2017-00403", 1))
        .await;
    app.api_post(
        "/disclosures/zpmzj-2017-00403/withdraw",
        json!({}),
        "张主任",
    )
    .await;
    app.run_worker_until_idle().await;
    let rows = app.deliveries_of("zpmzj-2017-00403").await;
    assert_eq!(status_of(&rows), [DeliveryStatus::Withdrawn]);
    let state = app.sandbox_state().await;
    assert!(platform_doc(&state, "zpmzj-2017-00403").is_none());
    assert_eq!(state["gov_site"]["requests"], 0);
}

#[tokio::test]
async fn withdrawing_an_unknown_disclosure_is_404() {
    let app = spawn_app().await;
    let r = app
        .api_post("/disclosures/no-such-id/withdraw", json!({}), "张主任")
        .await;
    assert_eq!(r.status(), 404);
}
