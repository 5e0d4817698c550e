//! Integration tests of the sandbox over real HTTP on 127.0.0.1:0: the website platform
//! emulator (signature, timestamp, nonce, idempotency, revisions, withdraw), the state
//! snapshot, and fault injection.

use std::time::Duration;

use gongkai::sandbox::gov_site::sign;
use gongkai::sandbox::{spawn, GovSiteApp, SandboxConfig, SandboxHandle};
use serde_json::{json, Value};

const APP_KEY: &str = "app-test";
const SECRET: &str = "secret-test";
const PATH: &str = "/gov_site/v1/disclosures";

async fn start() -> (SandboxHandle, reqwest::Client) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let h = spawn(
        listener,
        SandboxConfig {
            gov_site_apps: vec![GovSiteApp {
                app_key: APP_KEY.into(),
                secret: SECRET.into(),
            }],
            ..SandboxConfig::default()
        },
    )
    .await;
    (h, reqwest::Client::new())
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn nonce() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn publish_body(id: &str, revision: u64, title: &str) -> Value {
    json!({
        "disclosure_id": id,
        "revision": revision,
        "action": "publish",
        "index_no": "11330100MB0000000X/2026-00123",
        "title": title,
        "publisher": "某某市民政局",
        "body_html": "<p>正文</p>",
    })
}

/// A request with every header under the test's control.
struct Req<'a> {
    method: &'a str,
    path: &'a str,
    body: Vec<u8>,
    app_key: &'a str,
    secret: &'a str,
    timestamp: String,
    nonce: String,
    idem: Option<String>,
    signature: Option<String>,
    timeout: Option<Duration>,
}

impl<'a> Req<'a> {
    fn post(body: &Value, idem: &str) -> Self {
        Req {
            method: "POST",
            path: PATH,
            body: serde_json::to_vec(body).unwrap(),
            app_key: APP_KEY,
            secret: SECRET,
            timestamp: now().to_string(),
            nonce: nonce(),
            idem: Some(idem.to_string()),
            signature: None,
            timeout: None,
        }
    }

    async fn send(
        self,
        c: &reqwest::Client,
        h: &SandboxHandle,
    ) -> reqwest::Result<reqwest::Response> {
        let sig = self.signature.clone().unwrap_or_else(|| {
            sign(
                self.secret,
                self.method,
                self.path,
                self.timestamp.parse().unwrap_or(0),
                &self.nonce,
                &self.body,
            )
        });
        let url = format!("{}{}", h.base_url(), self.path);
        let mut rb = c
            .request(self.method.parse().unwrap(), url)
            .header("Content-Type", "application/json; charset=utf-8")
            .header("X-App-Key", self.app_key)
            .header("X-Timestamp", &self.timestamp)
            .header("X-Nonce", &self.nonce)
            .header("X-Signature", sig)
            .body(self.body);
        if let Some(k) = &self.idem {
            rb = rb.header("Idempotency-Key", k);
        }
        if let Some(t) = self.timeout {
            rb = rb.timeout(t);
        }
        rb.send().await
    }
}

async fn push(c: &reqwest::Client, h: &SandboxHandle, body: &Value, idem: &str) -> (u16, Value) {
    let r = Req::post(body, idem).send(c, h).await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

async fn state(c: &reqwest::Client, h: &SandboxHandle) -> Value {
    c.get(format!("{}/_sandbox/state", h.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn add_fault(c: &reqwest::Client, h: &SandboxHandle, fault: Value) {
    let r = c
        .post(format!("{}/_sandbox/faults", h.base_url()))
        .json(&fault)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201, "{}", r.text().await.unwrap());
}

#[tokio::test]
async fn good_signature_creates_doc() {
    let (h, c) = start().await;
    let (status, body) = push(&c, &h, &publish_body("mzj-1", 1, "标题一"), "mzj-1:1:site").await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["platform_doc_id"], "D00000001");
    assert_eq!(body["status"], "published");
    assert_eq!(body["index_no"], "11330100MB0000000X/2026-00123");
    let url = body["url"].as_str().unwrap();
    assert_eq!(
        url,
        format!("http://{}/gov_site/docs/D00000001.html", h.addr)
    );
    let page = c.get(url).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert!(page.text().await.unwrap().contains("标题一"));

    // Signed GET of the stored doc.
    let get_path = "/gov_site/v1/disclosures/mzj-1";
    let mut req = Req::post(&json!(null), "");
    req.method = "GET";
    req.path = get_path;
    req.body = Vec::new();
    req.idem = None;
    let r = req.send(&c, &h).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let doc: Value = r.json().await.unwrap();
    assert_eq!(doc["platform_doc_id"], "D00000001");
    assert_eq!(doc["revision"], 1);

    let s = state(&c, &h).await;
    assert_eq!(s["gov_site"]["accepted"], 1);
    assert_eq!(s["gov_site"]["requests"], 1);
    h.shutdown().await;
}

#[tokio::test]
async fn index_no_is_assigned_when_absent() {
    let (h, c) = start().await;
    let mut b = publish_body("mzj-ix", 1, "无索引号");
    b.as_object_mut().unwrap().remove("index_no");
    let (status, body) = push(&c, &h, &b, "k").await;
    assert_eq!(status, 201);
    let ix = body["index_no"].as_str().unwrap();
    assert!(ix.starts_with("SANDBOX/") && ix.ends_with("-00001"), "{ix}");
    h.shutdown().await;
}

#[tokio::test]
async fn auth_failures_are_401_with_codes() {
    let (h, c) = start().await;
    let b = publish_body("mzj-2", 1, "标题");

    let mut r = Req::post(&b, "k1");
    r.signature = Some("00".repeat(32));
    let resp = r.send(&c, &h).await.unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let e: Value = resp.json().await.unwrap();
    assert_eq!(e["error"], "bad_signature");
    assert!(e["message"].as_str().unwrap().contains("签名"));

    let mut r = Req::post(&b, "k1");
    r.secret = "wrong";
    let e: Value = r.send(&c, &h).await.unwrap().json().await.unwrap();
    assert_eq!(e["error"], "bad_signature");

    let mut r = Req::post(&b, "k1");
    r.app_key = "nobody";
    let resp = r.send(&c, &h).await.unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let e: Value = resp.json().await.unwrap();
    assert_eq!(e["error"], "unknown_app_key");

    for ts in [
        (now() - 301).to_string(),
        (now() + 400).to_string(),
        "abc".into(),
    ] {
        let mut r = Req::post(&b, "k1");
        r.timestamp = ts;
        let resp = r.send(&c, &h).await.unwrap();
        assert_eq!(resp.status().as_u16(), 401);
        let e: Value = resp.json().await.unwrap();
        assert_eq!(e["error"], "timestamp_out_of_window");
    }

    let s = state(&c, &h).await;
    assert_eq!(s["gov_site"]["rejected"], 6);
    assert_eq!(s["gov_site"]["accepted"], 0);
    assert_eq!(s["gov_site"]["docs"], json!([]));
    h.shutdown().await;
}

#[tokio::test]
async fn nonce_reuse_is_rejected() {
    let (h, c) = start().await;
    let n = nonce();
    let mut r = Req::post(&publish_body("mzj-3", 1, "标题"), "k1");
    r.nonce = n.clone();
    assert_eq!(r.send(&c, &h).await.unwrap().status().as_u16(), 201);

    let mut r = Req::post(&publish_body("mzj-4", 1, "标题"), "k2");
    r.nonce = n;
    let resp = r.send(&c, &h).await.unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let e: Value = resp.json().await.unwrap();
    assert_eq!(e["error"], "nonce_reused");
    h.shutdown().await;
}

#[tokio::test]
async fn missing_idempotency_key_and_bad_bodies() {
    let (h, c) = start().await;
    let mut r = Req::post(&publish_body("mzj-5", 1, "标题"), "");
    r.idem = None;
    let resp = r.send(&c, &h).await.unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let e: Value = resp.json().await.unwrap();
    assert_eq!(e["error"], "missing_idempotency_key");

    let cases = [
        (
            json!({"revision": 1, "action": "publish", "title": "t", "body_html": ""}),
            "disclosure_id",
        ),
        (
            json!({"disclosure_id": "x", "action": "publish", "title": "t", "body_html": ""}),
            "revision",
        ),
        (
            json!({"disclosure_id": "x", "revision": 1, "title": "t", "body_html": ""}),
            "action",
        ),
        (
            json!({"disclosure_id": "x", "revision": 1, "action": "publish", "body_html": ""}),
            "title",
        ),
        (
            json!({"disclosure_id": "x", "revision": 1, "action": "publish", "title": "t"}),
            "body_html",
        ),
        (
            json!({"disclosure_id": "x", "revision": 1, "action": "delete"}),
            "action",
        ),
    ];
    for (i, (body, field)) in cases.iter().enumerate() {
        let (status, e) = push(&c, &h, body, &format!("bad-{i}")).await;
        assert_eq!(status, 422, "{body}");
        assert!(e["message"].as_str().unwrap().contains(field), "{e}");
    }

    let mut r = Req::post(&json!(null), "raw");
    r.body = b"{not json".to_vec();
    let resp = r.send(&c, &h).await.unwrap();
    assert_eq!(resp.status().as_u16(), 422);
    let e: Value = resp.json().await.unwrap();
    assert_eq!(e["error"], "invalid_json");
    h.shutdown().await;
}

#[tokio::test]
async fn replay_and_conflict() {
    let (h, c) = start().await;
    let b = publish_body("mzj-6", 1, "标题");
    let (s1, r1) = push(&c, &h, &b, "mzj-6:1:site").await;
    let (s2, r2) = push(&c, &h, &b, "mzj-6:1:site").await;
    assert_eq!((s1, s2), (201, 201));
    assert_eq!(r1, r2);

    let (s3, e) = push(
        &c,
        &h,
        &publish_body("mzj-6", 1, "另一个标题"),
        "mzj-6:1:site",
    )
    .await;
    assert_eq!(s3, 409);
    assert_eq!(e["error"], "idempotency_conflict");

    let s = state(&c, &h).await["gov_site"].clone();
    assert_eq!(s["replays"], 1);
    assert_eq!(s["duplicates"], 0);
    assert_eq!(s["accepted"], 1);
    assert_eq!(s["rejected"], 1);
    assert_eq!(s["requests"], 3);
    assert_eq!(s["docs"].as_array().unwrap().len(), 1);
    h.shutdown().await;
}

#[tokio::test]
async fn new_revision_updates_and_stale_revision_counts_duplicate() {
    let (h, c) = start().await;
    let (_, r1) = push(&c, &h, &publish_body("mzj-7", 1, "第一版"), "mzj-7:1").await;
    let (s2, r2) = push(&c, &h, &publish_body("mzj-7", 2, "第二版"), "mzj-7:2").await;
    assert_eq!(s2, 200);
    assert_eq!(r1["platform_doc_id"], r2["platform_doc_id"]);

    // Revision 1 again (or 2 again) under a different key: duplicate submission.
    let (s3, e) = push(&c, &h, &publish_body("mzj-7", 1, "第一版"), "other-key").await;
    assert_eq!(s3, 409);
    assert_eq!(e["error"], "stale_revision");
    let (s4, _) = push(&c, &h, &publish_body("mzj-7", 2, "第二版"), "yet-another").await;
    assert_eq!(s4, 409);

    let s = state(&c, &h).await["gov_site"].clone();
    assert_eq!(s["duplicates"], 2);
    let doc = &s["docs"][0];
    assert_eq!(doc["revision"], 2);
    assert_eq!(doc["title"], "第二版");
    assert_eq!(doc["body"]["title"], "第二版");
    let revs = doc["revisions"].as_array().unwrap();
    assert_eq!(revs.len(), 2);
    assert_eq!(revs[0]["revision"], 1);
    assert_eq!(revs[1]["revision"], 2);
    assert_eq!(revs[1]["idempotency_key"], "mzj-7:2");
    h.shutdown().await;
}

#[tokio::test]
async fn withdraw() {
    let (h, c) = start().await;
    let (_, r1) = push(&c, &h, &publish_body("mzj-8", 1, "标题"), "p1").await;
    let w =
        json!({"disclosure_id": "mzj-8", "revision": 1, "action": "withdraw", "reason": "已废止"});
    let (s, r) = push(&c, &h, &w, "w1").await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["status"], "withdrawn");
    assert_eq!(r["platform_doc_id"], r1["platform_doc_id"]);
    let page = c.get(r["url"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 410);

    let (s, e) = push(
        &c,
        &h,
        &json!({"disclosure_id": "nope", "revision": 1, "action": "withdraw"}),
        "w2",
    )
    .await;
    assert_eq!(s, 404);
    assert_eq!(e["error"], "not_found");

    let st = state(&c, &h).await["gov_site"].clone();
    assert_eq!(st["docs"][0]["status"], "withdrawn");
    assert_eq!(st["docs"][0]["body"]["reason"], "已废止");
    assert_eq!(st["docs"][0]["revisions"][1]["action"], "withdraw");
    assert_eq!(st["duplicates"], 0);

    // Republish with a higher revision brings it back.
    let (s, r) = push(&c, &h, &publish_body("mzj-8", 2, "恢复"), "p2").await;
    assert_eq!(s, 200);
    assert_eq!(r["status"], "published");
    h.shutdown().await;
}

#[tokio::test]
async fn state_shape_is_stable_and_sorted() {
    let (h, c) = start().await;
    for id in ["c", "a", "b"] {
        push(&c, &h, &publish_body(id, 1, id), id).await;
    }
    let s = state(&c, &h).await;
    let g = s["gov_site"].as_object().unwrap();
    for k in [
        "docs",
        "requests",
        "accepted",
        "replays",
        "duplicates",
        "rejected",
    ] {
        assert!(g.contains_key(k), "{k}");
    }
    let ids: Vec<&str> = g["docs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["disclosure_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a", "b", "c"]);
    let d = g["docs"][0].as_object().unwrap();
    for k in [
        "disclosure_id",
        "platform_doc_id",
        "revision",
        "title",
        "status",
        "url",
        "index_no",
        "revisions",
        "body",
    ] {
        assert!(d.contains_key(k), "{k}");
    }
    h.shutdown().await;
}

#[tokio::test]
async fn faults_count_status_retry_after_list_and_clear() {
    let (h, c) = start().await;
    add_fault(
        &c,
        &h,
        json!({"path": PATH, "count": 2, "status": 503, "retry_after": 2}),
    )
    .await;
    let listed: Value = c
        .get(format!("{}/_sandbox/faults", h.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["faults"][0]["count"], 2);
    assert_eq!(listed["faults"][0]["status"], 503);

    let b = publish_body("mzj-9", 1, "标题");
    for _ in 0..2 {
        let r = Req::post(&b, "k").send(&c, &h).await.unwrap();
        assert_eq!(r.status().as_u16(), 503);
        assert_eq!(r.headers()["retry-after"], "2");
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"], "injected_fault");
    }
    let (s, _) = push(&c, &h, &b, "k").await;
    assert_eq!(s, 201);
    let st = state(&c, &h).await;
    assert_eq!(
        st["gov_site"]["requests"], 1,
        "faulted requests never reach the platform"
    );
    assert_eq!(st["faults_injected"], 2);

    // Custom body, then clear.
    add_fault(
        &c,
        &h,
        json!({"path": PATH, "count": 5, "status": 500, "body": "boom"}),
    )
    .await;
    let r = Req::post(&b, "k").send(&c, &h).await.unwrap();
    assert_eq!(r.status().as_u16(), 500);
    assert_eq!(r.text().await.unwrap(), "boom");
    let cleared: Value = c
        .delete(format!("{}/_sandbox/faults", h.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(cleared["cleared"], 1);
    let (s, _) = push(&c, &h, &b, "k").await;
    assert_eq!(s, 201, "replay after faults cleared");

    // Invalid fault definitions are refused.
    let r = c
        .post(format!("{}/_sandbox/faults", h.base_url()))
        .json(&json!({"path": PATH, "count": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 422);
    h.shutdown().await;
}

#[tokio::test]
async fn fault_after_processing_then_retry_is_a_replay_not_a_duplicate() {
    let (h, c) = start().await;
    add_fault(
        &c,
        &h,
        json!({"path": PATH, "count": 1, "status": 502, "after_processing": true}),
    )
    .await;
    let b = publish_body("mzj-10", 1, "标题");
    let r = Req::post(&b, "mzj-10:1:site").send(&c, &h).await.unwrap();
    assert_eq!(r.status().as_u16(), 502);
    let st = state(&c, &h).await["gov_site"].clone();
    assert_eq!(
        st["docs"].as_array().unwrap().len(),
        1,
        "the platform stored it"
    );

    // The client retries with the same Idempotency-Key (new nonce/timestamp).
    let (s, r) = push(&c, &h, &b, "mzj-10:1:site").await;
    assert_eq!(s, 201);
    assert_eq!(r["platform_doc_id"], "D00000001");
    let st = state(&c, &h).await["gov_site"].clone();
    assert_eq!(st["replays"], 1);
    assert_eq!(st["duplicates"], 0);
    assert_eq!(st["docs"].as_array().unwrap().len(), 1);

    // A careless client retrying under a new key is caught.
    let (s, _) = push(&c, &h, &b, "a-fresh-key").await;
    assert_eq!(s, 409);
    assert_eq!(state(&c, &h).await["gov_site"]["duplicates"], 1);
    h.shutdown().await;
}

#[tokio::test]
async fn fault_delay_provokes_client_timeout_and_still_processes() {
    let (h, c) = start().await;
    add_fault(&c, &h, json!({"path": PATH, "count": 1, "delay_ms": 500})).await;
    let b = publish_body("mzj-11", 1, "标题");
    let mut r = Req::post(&b, "mzj-11:1:site");
    r.timeout = Some(Duration::from_millis(100));
    let err = r.send(&c, &h).await.unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert_eq!(state(&c, &h).await["gov_site"]["requests"], 0);

    // The delayed request is processed once the delay is over, client or no client.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let st = state(&c, &h).await["gov_site"].clone();
    assert_eq!(st["accepted"], 1);

    let (s, r) = push(&c, &h, &b, "mzj-11:1:site").await;
    assert_eq!(s, 201);
    assert_eq!(r["platform_doc_id"], "D00000001");
    assert_eq!(state(&c, &h).await["gov_site"]["replays"], 1);

    // Delay + status: answered late with the status, not processed.
    add_fault(
        &c,
        &h,
        json!({"path": PATH, "status": 504, "delay_ms": 200}),
    )
    .await;
    let started = std::time::Instant::now();
    let r = Req::post(&publish_body("mzj-12", 1, "标题"), "k12")
        .send(&c, &h)
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 504);
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(
        state(&c, &h).await["gov_site"]["docs"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    h.shutdown().await;
}

/// Rough throughput check; run with `cargo test --release --test sandbox -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore]
async fn throughput_10k() {
    let (h, c) = start().await;
    let started = std::time::Instant::now();
    let n = 10_000usize;
    let conc = 64usize;
    let mut tasks = Vec::new();
    for w in 0..conc {
        let c = c.clone();
        let base = h.base_url();
        tasks.push(tokio::spawn(async move {
            for i in (w..n).step_by(conc) {
                let id = format!("bench-{i:05}");
                let body = serde_json::to_vec(&publish_body(&id, 1, "压测")).unwrap();
                let ts = now();
                let nc = nonce();
                let sig = sign(SECRET, "POST", PATH, ts, &nc, &body);
                let r = c
                    .post(format!("{base}{PATH}"))
                    .header("X-App-Key", APP_KEY)
                    .header("X-Timestamp", ts.to_string())
                    .header("X-Nonce", nc)
                    .header("X-Signature", sig)
                    .header("Idempotency-Key", format!("{id}:1:site"))
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status().as_u16(), 201);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let el = started.elapsed();
    println!(
        "{n} pushes in {el:?} = {:.0}/s",
        n as f64 / el.as_secs_f64()
    );
    let g = h.state().gov_site().counters();
    assert_eq!(g.accepted, n as u64);
    assert_eq!(g.duplicates, 0);
    h.shutdown().await;
}
