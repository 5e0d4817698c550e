//! Accepting disclosures over HTTP: validation, idempotency, conflicts, limits, auth.

use serde_json::{json, Value};

use crate::helpers::*;

#[tokio::test]
async fn an_approved_disclosure_is_accepted_with_one_delivery_per_routed_channel() {
    let app = spawn_app().await;
    let r = app
        .post_disclosure(&disclosure("zpmzj-2017-00100", 1))
        .await;
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["created"], true);
    assert_eq!(body["channels"], json!(["gov_site"]));
    let rows = app.deliveries_of("zpmzj-2017-00100").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].channel, "gov_site");
    assert_eq!(rows[0].status, gongkai::domain::DeliveryStatus::Pending);
}

#[tokio::test]
async fn the_same_revision_sent_twice_creates_no_new_deliveries() {
    let app = spawn_app().await;
    let d = disclosure("zpmzj-2017-00101", 1);
    let first: Value = app.post_disclosure(&d).await.json().await.unwrap();
    let again = app.post_disclosure(&d).await;
    assert_eq!(again.status(), 200);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["created"], false);
    assert_eq!(again["delivery_ids"], first["delivery_ids"]);
    assert_eq!(app.deliveries().await.len(), 1);
}

#[tokio::test]
async fn the_same_revision_with_different_content_is_refused_with_409() {
    let app = spawn_app().await;
    app.post_disclosure(&disclosure("zpmzj-2017-00102", 1))
        .await;
    let changed = disclosure_with_body("zpmzj-2017-00102", 1, "<p>改动过的正文</p>");
    let r = app.post_disclosure(&changed).await;
    assert_eq!(r.status(), 409);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "conflict");
    assert_eq!(app.deliveries().await.len(), 1);
}

#[tokio::test]
async fn every_problem_of_a_bad_disclosure_is_listed_at_once() {
    let app = spawn_app().await;
    let mut d = disclosure("zpmzj-2017-00103", 1);
    d["title"] = json!("   ");
    d["category"] = json!("nosuch");
    d["formed_date"] = json!("2017/04/03");
    d["colour"] = json!("red");
    d["review"]["content_sha256"] = json!(sha256_hex("something else"));
    let r = app.post_disclosure(&d).await;
    assert_eq!(r.status(), 422);
    let body: Value = r.json().await.unwrap();
    let paths: Vec<&str> = body["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    for want in [
        "title",
        "category",
        "formed_date",
        "colour",
        "review.content_sha256",
    ] {
        assert!(paths.contains(&want), "{want} missing from {paths:?}");
    }
    // Reasons are in words an operator reads.
    let text = body.to_string();
    assert!(text.contains("未知字段"), "{text}");
    assert!(app.deliveries().await.is_empty());
}

#[tokio::test]
async fn a_disclosure_without_review_is_refused() {
    let app = spawn_app().await;
    let mut d = disclosure("zpmzj-2017-00104", 1);
    d.as_object_mut().unwrap().remove("review");
    let r = app.post_disclosure(&d).await;
    assert_eq!(r.status(), 422);
    let body: Value = r.json().await.unwrap();
    assert!(body["problems"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["path"] == "review"));
}

#[tokio::test]
async fn a_body_that_is_not_json_is_refused_with_422() {
    let app = spawn_app().await;
    let r = app.post_raw(b"<xml>not json</xml>".to_vec()).await;
    assert_eq!(r.status(), 422);
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_with_413() {
    let app = spawn_app_with(|s| s.server.max_body_bytes = 4096).await;
    let big = "<p>".to_string() + &"公开".repeat(3000) + "</p>";
    let r = app
        .post_disclosure(&disclosure_with_body("zpmzj-2017-00105", 1, &big))
        .await;
    assert_eq!(r.status(), 413);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "too_large");
}

#[tokio::test]
async fn the_api_refuses_requests_without_the_bearer_token() {
    let app = spawn_app().await;
    let r = app
        .client
        .post(format!("{}/api/v1/disclosures", app.api))
        .json(&disclosure("zpmzj-2017-00106", 1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = app
        .client
        .get(format!("{}/api/v1/deliveries", app.api))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(app.deliveries().await.is_empty());
}
