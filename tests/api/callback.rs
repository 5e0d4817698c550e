//! The WeChat callback (issue 4) over real HTTP on loopback: the daemon with the bundled
//! 2017 examples published to the emulated website, a user client that signs (and encrypts)
//! like WeChat, and the emulated WeChat API for customer-service messages.

use std::time::Duration;

use gongkai::app::Application;
use gongkai::config::Settings;
use gongkai::sandbox::wechat::{event_message, text_message, CallbackMode, UserClient};
use gongkai::sandbox::SandboxHandle;
use gongkai::wechat_callback::message::Message;
use reqwest::StatusCode;

use crate::helpers::*;

const AES_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";

struct Cb {
    app: TestApp,
}

impl std::ops::Deref for Cb {
    type Target = TestApp;
    fn deref(&self) -> &TestApp {
        &self.app
    }
}

const MENU: &str = r#"
[wechat_callback]
path = "/wechat"
channel = "wechat"
encoding_aes_key_file = "secrets/wechat_aes.key"

[[wechat_callback.menu]]
name = "最新公开"
key = "LATEST"
action = "latest"
count = 3

[[wechat_callback.menu]]
name = "社会救助"
key = "SHJZ"
action = "category"
category = "shjz"

[[wechat_callback.menu]]
name = "办事"

[[wechat_callback.menu.sub_button]]
name = "办公地址"
key = "ADDRESS"
action = "text"
text = "地址：漳平市民政局（菁城街道和平路1号），工作日 8:00-12:00、15:00-18:00。"
"#;

fn lay_out_callback(
    dir: &std::path::Path,
    sandbox: &SandboxHandle,
    extra: &str,
) -> std::path::PathBuf {
    let config = lay_out(dir, sandbox);
    std::fs::write(dir.join("secrets/wechat.key"), APP_SECRET).unwrap();
    std::fs::write(dir.join("secrets/wechat_cb.key"), CB_TOKEN).unwrap();
    std::fs::write(dir.join("secrets/wechat_aes.key"), AES_KEY).unwrap();
    std::fs::write(
        dir.join("channels/wechat.toml"),
        format!(
            "kind = \"wechat\"\nappid = \"{APPID}\"\nsecret_file = \"../secrets/wechat.key\"\ncallback_token_file = \"../secrets/wechat_cb.key\"\napi_base = \"{}\"\n",
            sandbox.wechat_api_base()
        ),
    )
    .unwrap();
    let mut c = std::fs::read_to_string(&config).unwrap();
    c.push_str(MENU);
    c.push_str(extra);
    std::fs::write(&config, c).unwrap();
    config
}

async fn start(
    dir: tempfile::TempDir,
    config: std::path::PathBuf,
    sandbox: SandboxHandle,
    tweak: impl FnOnce(&mut Settings),
) -> Cb {
    let mut settings = Settings::load(&config).unwrap();
    settings.worker.enabled = false;
    settings.worker.instance_id = Some("cb-worker".into());
    tweak(&mut settings);
    let app = Application::build(settings).await.unwrap();
    let api = format!("http://{}", app.addr());
    let (ledger, worker) = (app.ledger(), app.worker());
    let (stop, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(app.run_until_stopped(rx));
    Cb {
        app: TestApp::from_parts(dir, config, api, ledger, worker, sandbox, stop),
    }
}

/// The daemon with the 23 bundled examples published to the website (not to WeChat).
async fn spawn_callback_app(tweak: impl FnOnce(&mut Settings)) -> Cb {
    let sandbox = spawn_wechat_sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let config = lay_out_callback(dir.path(), &sandbox, "");
    let app = start(dir, config, sandbox, tweak).await;
    for (name, json) in gongkai::demo::examples() {
        let r = app.post_raw(json.to_vec()).await;
        assert!(
            r.status().is_success(),
            "{name}: {}",
            r.text().await.unwrap()
        );
    }
    app.run_worker_until_idle().await;
    app
}

impl Cb {
    fn user(&self, mode: CallbackMode) -> UserClient {
        UserClient::new(
            &format!("{}/wechat", self.api),
            CB_TOKEN,
            Some((AES_KEY, APPID)),
            mode,
        )
    }
}

fn content(reply: &str) -> String {
    Message::parse(reply)
        .unwrap_or_else(|e| panic!("{e}: {reply}"))
        .get("Content")
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn url_verification_echoes_and_a_wrong_signature_is_refused() {
    let app = spawn_callback_app(|_| {}).await;
    let ts = chrono::Utc::now().timestamp().to_string();
    let sig = gongkai::wechat_callback::signature(CB_TOKEN, &ts, "42");
    for path in ["/wechat", "/wechat/wechat/callback"] {
        let ok = reqwest::get(format!(
            "{}{path}?signature={sig}&timestamp={ts}&nonce=42&echostr=4375120948345356249",
            app.api
        ))
        .await
        .unwrap();
        assert_eq!(ok.status(), StatusCode::OK);
        assert_eq!(ok.text().await.unwrap(), "4375120948345356249");
    }
    let bad = reqwest::get(format!(
        "{}/wechat?signature={sig}&timestamp={ts}&nonce=43&echostr=1",
        app.api
    ))
    .await
    .unwrap();
    assert_eq!(bad.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn every_mode_answers_a_click_and_a_search_for_dibao() {
    let app = spawn_callback_app(|_| {}).await;
    for (i, mode) in [
        CallbackMode::Plain,
        CallbackMode::Compatible,
        CallbackMode::Safe,
    ]
    .into_iter()
    .enumerate()
    {
        let user = app.user(mode);
        let (status, reply) = user
            .send(&event_message(
                "oUser",
                "CLICK",
                Some("LATEST"),
                1000 + i as i64,
            ))
            .await;
        assert_eq!(status, StatusCode::OK, "{mode:?}: {reply}");
        let text = content(&reply);
        assert!(text.starts_with("最新公开"), "{mode:?}: {text}");
        assert_eq!(text.matches("http").count(), 3, "{text}");

        let (status, reply) = user
            .send(&text_message("oUser", "低保", 5000 + i as u64))
            .await;
        assert_eq!(status, StatusCode::OK);
        let text = content(&reply);
        assert!(text.contains("低保"), "{mode:?}: {text}");
        assert!(text.contains("2017-"), "dates are listed: {text}");
        assert!(text.contains("http://"), "links are listed: {text}");
    }
    // The static text and the category buttons, and the welcome.
    let user = app.user(CallbackMode::Safe);
    let (_, r) = user
        .send(&event_message("oUser", "CLICK", Some("ADDRESS"), 7))
        .await;
    assert!(content(&r).contains("工作日"));
    let (_, r) = user
        .send(&event_message("oUser", "CLICK", Some("SHJZ"), 8))
        .await;
    assert!(content(&r).starts_with("社会救助"), "{r}");
    let (_, r) = user
        .send(&event_message("oNew", "subscribe", None, 9))
        .await;
    assert!(content(&r).contains("欢迎关注"), "{r}");
    // Nothing found: a helpful text with the menu's options.
    let (_, r) = user.send(&text_message("oUser", "火星移民", 9001)).await;
    let t = content(&r);
    assert!(t.contains("没有找到") && t.contains("最新公开"), "{t}");
    // Anything else: success.
    let (_, r) = user
        .send(&event_message("oUser", "VIEW", Some("https://x"), 10))
        .await;
    assert_eq!(r, "success");
}

#[tokio::test]
async fn bad_input_is_refused_as_specified() {
    let app = spawn_callback_app(|_| {}).await;
    let plain = app.user(CallbackMode::Plain);
    let msg = text_message("oUser", "低保", 1);
    // Wrong signature: 403.
    let (url, body) = plain.request(&msg, chrono::Utc::now().timestamp());
    let (s, _) = plain
        .post(&url.replace("signature=", "signature=0"), body.clone())
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Timestamp far outside the window: 403.
    let (url, body) = plain.request(&msg, chrono::Utc::now().timestamp() - 3600);
    assert_eq!(plain.post(&url, body).await.0, StatusCode::FORBIDDEN);
    // Over 64 KiB: 413.
    let big = text_message("oUser", &"低".repeat(30_000), 2);
    assert_eq!(plain.send(&big).await.0, StatusCode::PAYLOAD_TOO_LARGE);
    // DOCTYPE / entities: 400.
    let xxe = "<?xml version=\"1.0\"?><!DOCTYPE xml [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><xml><MsgType>text</MsgType><Content>&x;</Content><MsgId>3</MsgId><FromUserName>o</FromUserName></xml>";
    assert_eq!(plain.send(xxe).await.0, StatusCode::BAD_REQUEST);
    // Malformed XML and missing fields: 400.
    assert_eq!(
        plain.send("<xml><a></xml>").await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        plain
            .send("<xml><MsgType>text</MsgType><Content>x</Content></xml>")
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
    // A wrong appid inside the ciphertext: 400.
    let other = UserClient::new(
        &format!("{}/wechat", app.api),
        CB_TOKEN,
        Some((AES_KEY, "wxsomeoneelse")),
        CallbackMode::Safe,
    );
    assert_eq!(other.send(&msg).await.0, StatusCode::BAD_REQUEST);
    // A wrong msg_signature: 403.
    let safe = app.user(CallbackMode::Safe);
    let (url, body) = safe.request(&msg, chrono::Utc::now().timestamp());
    let (s, _) = safe
        .post(&url.replace("msg_signature=", "msg_signature=0"), body)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_retry_is_answered_the_same_without_redoing_the_work_also_after_a_restart() {
    let app = spawn_callback_app(|_| {}).await;
    let user = app.user(CallbackMode::Safe);
    let msg = text_message("oUser", "殡葬", 77);
    let (_, first) = user.send(&msg).await;
    assert!(content(&first).contains("殡葬"), "{first}");
    // Something new is published: redoing the search would answer differently.
    let mut d = disclosure_with_body("zpmzj-2017-bz99", 1, "<p>殡葬改革惠民政策公示。</p>");
    d["title"] = "关于殡葬惠民补贴的公示".into();
    assert!(app.post_disclosure(&d).await.status().is_success());
    app.run_worker_until_idle().await;
    let (_, again) = user.send(&msg).await;
    assert_eq!(content(&again), content(&first));
    assert!(!content(&again).contains("殡葬惠民补贴"));
    // A fresh message finds the new item at once.
    let (_, fresh) = user.send(&text_message("oUser", "殡葬", 78)).await;
    assert!(content(&fresh).contains("殡葬惠民补贴"), "{fresh}");

    // A second instance on the same database (= after a restart) answers the same.
    let mut settings = Settings::load(&app.config_path).unwrap();
    settings.worker.enabled = false;
    settings.server.listen = "127.0.0.1:0".into();
    let other = Application::build(settings).await.unwrap();
    let url = format!("http://{}/wechat", other.addr());
    let (stop, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(other.run_until_stopped(rx));
    let user2 = UserClient::new(&url, CB_TOKEN, Some((AES_KEY, APPID)), CallbackMode::Safe);
    let (_, after) = user2.send(&msg).await;
    assert_eq!(content(&after), content(&first));
    let _ = stop.send(true);
}

#[tokio::test]
async fn a_retry_seconds_later_is_answered_from_the_store_and_a_click_list_follows_new_items() {
    let app = spawn_callback_app(|_| {}).await;
    let user = app.user(CallbackMode::Plain);
    // WeChat's retry of a message it sent 6 s ago (it retries after 5 s without an answer).
    let now = chrono::Utc::now().timestamp();
    let msg = text_message("oLate", "殡葬", 501).replace(
        &format!("<CreateTime>{now}</CreateTime>"),
        &format!("<CreateTime>{}</CreateTime>", now - 6),
    );
    assert!(msg.contains(&format!("{}", now - 6)), "{msg}");
    let click = |n: i64| event_message("oLate", "CLICK", Some("LATEST"), now + n);
    let (_, first) = user.send(&msg).await;
    assert!(content(&first).contains("殡葬"), "{first}");
    let (_, list_before) = user.send(&click(1)).await;
    let mut d = disclosure_with_body("zpmzj-2017-bz98", 1, "<p>殡葬改革惠民政策公示。</p>");
    d["title"] = "关于殡葬惠民补贴的公示（第二批）".into();
    d["publish_date"] = "2017-12-30".into();
    assert!(app.post_disclosure(&d).await.status().is_success());
    app.run_worker_until_idle().await;
    let (_, again) = user.send(&msg).await;
    assert_eq!(content(&again), content(&first));
    // The menu's latest list is not served stale from memory: the new item is on it.
    let (_, list_after) = user.send(&click(2)).await;
    assert!(!content(&list_before).contains("第二批"), "{list_before}");
    assert!(content(&list_after).contains("第二批"), "{list_after}");
}

#[tokio::test]
async fn a_withdrawn_item_is_not_found_any_more() {
    let app = spawn_callback_app(|_| {}).await;
    let mut d = disclosure_with_body("zpmzj-2017-ylbt", 1, "<p>高龄老人养老补贴发放名单。</p>");
    d["title"] = "关于2017年高龄养老补贴发放的公示".into();
    assert!(app.post_disclosure(&d).await.status().is_success());
    app.run_worker_until_idle().await;
    let user = app.user(CallbackMode::Plain);
    let (_, r) = user.send(&text_message("oUser", "养老补贴", 1)).await;
    assert!(content(&r).contains("高龄养老补贴"), "{r}");
    let w = app
        .api_post(
            "/disclosures/zpmzj-2017-ylbt/withdraw",
            serde_json::json!({"reason": "有误"}),
            "审核员",
        )
        .await;
    assert!(w.status().is_success(), "{}", w.text().await.unwrap());
    let (_, r) = user.send(&text_message("oUser", "养老补贴", 2)).await;
    assert!(!content(&r).contains("高龄养老补贴"), "{r}");
}

#[tokio::test]
async fn a_long_reply_is_cut_at_a_character_boundary() {
    let sandbox = spawn_wechat_sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let long = "依申请公开".repeat(300);
    let extra = format!(
        "\n[[wechat_callback.menu.sub_button]]\nname = \"申请须知\"\nkey = \"APPLY\"\naction = \"text\"\ntext = \"{long}\"\n"
    );
    let config = lay_out_callback(dir.path(), &sandbox, &extra);
    let app = start(dir, config, sandbox, |_| {}).await;
    let (_, r) = app
        .user(CallbackMode::Plain)
        .send(&event_message("oUser", "CLICK", Some("APPLY"), 1))
        .await;
    let t = content(&r);
    assert!(
        t.len() <= gongkai::wechat_callback::reply::TEXT_MAX_BYTES,
        "{}",
        t.len()
    );
    assert!(t.len() > 2000);
    assert!(t.ends_with('…'));
    assert!(long.starts_with(t.trim_end_matches('…')));
}

#[tokio::test]
async fn a_slow_search_answers_success_and_sends_a_customer_service_message() {
    let app = spawn_callback_app(|s| s.wechat_callback.reply_budget = Duration::ZERO).await;
    let (status, r) = app
        .user(CallbackMode::Safe)
        .send(&text_message("oSlow", "低保", 31))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(r, "success");
    let wx = app.sandbox.state().wechat();
    for _ in 0..100 {
        if !wx.custom_messages().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let sent = wx.custom_messages();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["touser"], "oSlow");
    assert!(sent[0]["text"]["content"]
        .as_str()
        .unwrap()
        .contains("低保"));
    // The retry gets the same `success` and sends nothing more.
    let (_, r) = app
        .user(CallbackMode::Plain)
        .send(&text_message("oSlow", "低保", 31))
        .await;
    assert_eq!(r, "success");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(wx.custom_messages().len(), 1);
}

#[tokio::test]
async fn menu_push_creates_the_configured_menu_and_refuses_one_over_the_limits() {
    let sandbox = spawn_wechat_sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let config = lay_out_callback(dir.path(), &sandbox, "");
    gongkai::wechat_callback::menu_cli::push(&config)
        .await
        .unwrap();
    let menu = sandbox.state().wechat().menu().unwrap();
    assert_eq!(menu["button"][0]["key"], "LATEST");
    assert_eq!(menu["button"][2]["sub_button"][0]["name"], "办公地址");
    gongkai::wechat_callback::menu_cli::show(&config)
        .await
        .unwrap();

    let dir2 = tempfile::tempdir().unwrap();
    let extra = "\n[[wechat_callback.menu]]\nname = \"第四个按钮\"\nkey = \"FOURTH\"\naction = \"latest\"\n";
    let config2 = lay_out_callback(dir2.path(), &sandbox, extra);
    // Settings::load validates the menu too: the error names the buttons.
    let e = gongkai::wechat_callback::menu_cli::push(&config2)
        .await
        .unwrap_err();
    let msg = format!("{e:#}");
    assert!(
        msg.contains("最多 3 个") && msg.contains("第四个按钮"),
        "{msg}"
    );
}
