//! The operator console over real HTTP: sign-in, wrong password, lock-out, CSRF, roles, a
//! retry from the console recorded with the operator's name, and the metrics listener.

use gongkai::domain::{AttemptTrigger, DeliveryStatus};
use gongkai::store::Role;
use serde_json::json;

use crate::helpers::*;

const PASSWORD: &str = "correct-horse-battery";

/// A browser-like client of the console: no redirects followed, the session cookie kept.
pub struct Console {
    pub base: String,
    client: reqwest::Client,
    cookie: Option<String>,
}

impl Console {
    pub fn new(app: &TestApp) -> Console {
        Console {
            base: app.api.clone(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookie: None,
        }
    }

    pub async fn sign_in(&mut self, name: &str, password: &str) -> reqwest::Response {
        let r = self
            .client
            .post(format!("{}/console/login", self.base))
            .form(&[("name", name), ("password", password)])
            .send()
            .await
            .unwrap();
        if let Some(c) = r.headers().get("set-cookie") {
            let c = c.to_str().unwrap().to_string();
            assert!(
                c.contains("HttpOnly") && c.contains("SameSite=Strict"),
                "{c}"
            );
            self.cookie = Some(c.split(';').next().unwrap().to_string());
        }
        r
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        let mut req = self.client.get(format!("{}{path}", self.base));
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        req.send().await.unwrap()
    }

    pub async fn page(&self, path: &str) -> String {
        let r = self.get(path).await;
        assert_eq!(r.status(), 200, "GET {path}");
        r.text().await.unwrap()
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let mut req = self.client.post(format!("{}{path}", self.base)).form(form);
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        req.send().await.unwrap()
    }

    /// The session's CSRF token, as every form of the page carries it.
    pub async fn csrf(&self) -> String {
        let html = self.page("/console").await;
        let at = html
            .find("name=\"csrf\" value=\"")
            .expect("a form with a CSRF token")
            + 19;
        html[at..at + 64].to_string()
    }
}

async fn with_operator(app: &TestApp, name: &str, role: Role) {
    gongkai::console::auth::add_operator(app.ledger.store.as_ref(), name, PASSWORD, role)
        .await
        .unwrap();
}

/// A gov_site delivery that the platform refused until the retry budget ran out.
async fn a_dead_delivery(app: &TestApp, id: &str) -> i64 {
    app.fault(
        json!({"path": "/gov_site/v1/disclosures", "count": 4, "status": 503,
                     "body": "{\"code\":\"MAINTENANCE\",\"message\":\"平台维护中\"}"}),
    )
    .await;
    app.post_disclosure(&disclosure(id, 1)).await;
    app.run_worker_until_idle().await;
    let d = &app.deliveries_of(id).await[0];
    assert_eq!(d.status, DeliveryStatus::Dead);
    d.id
}

#[tokio::test]
async fn the_console_needs_a_sign_in_and_a_right_password() {
    let app = spawn_app().await;
    with_operator(&app, "张三", Role::Operator).await;
    let mut c = Console::new(&app);

    // Not signed in: to the sign-in page.
    let r = c.get("/console").await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/console/login");

    // A wrong password: refused, no cookie.
    let r = c.sign_in("张三", "wrong-password-1").await;
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("用户名或密码错误"));
    assert!(c.cookie.is_none());
    // An unknown name reads the same.
    let r = c.sign_in("李四", PASSWORD).await;
    assert_eq!(r.status(), 401);

    // The right one: a session, and the day's page.
    let r = c.sign_in("张三", PASSWORD).await;
    assert_eq!(r.status(), 303);
    let html = c.page("/console").await;
    assert!(html.contains("张三（操作员）"), "{html}");
    assert!(html.contains("的公开信息"));

    // Signing out ends the session on the server.
    let csrf = c.csrf().await;
    let r = c.post("/console/logout", &[("csrf", &csrf)]).await;
    assert_eq!(r.status(), 303);
    assert_eq!(c.get("/console").await.status(), 303);
}

#[tokio::test]
async fn repeated_wrong_passwords_lock_the_account() {
    let app = spawn_app_with(|s| {
        s.console.max_failed_sign_ins = 3;
    })
    .await;
    with_operator(&app, "张三", Role::Operator).await;
    let mut c = Console::new(&app);
    for _ in 0..2 {
        assert_eq!(c.sign_in("张三", "wrong-password-1").await.status(), 401);
    }
    let r = c.sign_in("张三", "wrong-password-1").await;
    assert!(r.text().await.unwrap().contains("已锁定"));
    // Locked: even the right password is refused now.
    let r = c.sign_in("张三", PASSWORD).await;
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("已锁定"));
    assert!(c.cookie.is_none());
    let op = app
        .ledger
        .store
        .get_operator("张三")
        .await
        .unwrap()
        .unwrap();
    assert!(op.locked_until.is_some());
}

#[tokio::test]
async fn a_post_without_the_csrf_token_is_refused() {
    let app = spawn_app().await;
    let id = a_dead_delivery(&app, "zpmzj-2017-00801").await;
    with_operator(&app, "张三", Role::Operator).await;
    let mut c = Console::new(&app);
    c.sign_in("张三", PASSWORD).await;

    for form in [vec![], vec![("csrf", "0".repeat(64))]] {
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = c
            .post(&format!("/console/deliveries/{id}/retry"), &form)
            .await;
        assert_eq!(r.status(), 403);
        assert!(r.text().await.unwrap().contains("安全令牌"));
    }
    let d = app.ledger.store.get_delivery("default", id).await.unwrap();
    assert_eq!(d.status, DeliveryStatus::Dead, "nothing was retried");
}

#[tokio::test]
async fn an_operator_without_the_right_cannot_withdraw() {
    let app = spawn_app().await;
    app.post_disclosure(&disclosure("zpmzj-2017-00802", 1))
        .await;
    app.run_worker_until_idle().await;
    with_operator(&app, "张三", Role::Operator).await;
    let mut c = Console::new(&app);
    c.sign_in("张三", PASSWORD).await;
    let csrf = c.csrf().await;

    let r = c
        .get("/console/disclosures/zpmzj-2017-00802/withdraw")
        .await;
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("需要管理员权限"));
    let r = c
        .post(
            "/console/disclosures/zpmzj-2017-00802/withdraw",
            &[("csrf", &csrf), ("reason", "试图撤回")],
        )
        .await;
    assert_eq!(r.status(), 403);
    let d = app
        .ledger
        .store
        .get_disclosure("default", "zpmzj-2017-00802", None)
        .await
        .unwrap();
    assert!(d.withdrawn_at.is_none());

    // An admin can, after the confirmation page, and the ledger says who.
    with_operator(&app, "王主任", Role::Admin).await;
    let mut admin = Console::new(&app);
    admin.sign_in("王主任", PASSWORD).await;
    let page = admin
        .page("/console/disclosures/zpmzj-2017-00802/withdraw")
        .await;
    assert!(page.contains("确认撤回"));
    let csrf = admin.csrf().await;
    let r = admin
        .post(
            "/console/disclosures/zpmzj-2017-00802/withdraw",
            &[("csrf", &csrf), ("reason", "内容有误")],
        )
        .await;
    assert_eq!(r.status(), 303);
    let d = app
        .ledger
        .store
        .get_disclosure("default", "zpmzj-2017-00802", None)
        .await
        .unwrap();
    assert_eq!(d.withdrawn_by.as_deref(), Some("console:王主任"));
    assert_eq!(d.withdraw_reason.as_deref(), Some("内容有误"));
}

#[tokio::test]
async fn a_retry_from_the_console_delivers_a_dead_delivery_and_records_the_operator() {
    let app = spawn_app().await;
    let id = a_dead_delivery(&app, "zpmzj-2017-00803").await;
    with_operator(&app, "张三", Role::Operator).await;
    let mut c = Console::new(&app);
    c.sign_in("张三", PASSWORD).await;

    // The failure is on the list, with its chip, and its page says why in words.
    let list = c.page("/console?date=all&status=dead").await;
    assert!(list.contains("zpmzj-2017-00803"), "{list}");
    assert!(list.contains("gov_site · 失败"));
    let page = c.page(&format!("/console/deliveries/{id}")).await;
    assert!(page.contains("对方服务器故障（HTTP 503）"), "{page}");
    assert!(page.contains("平台维护中"));
    assert!(page.contains("立即重试"));
    // The exact content sent, escaped.
    assert!(
        page.contains("&lt;p&gt;") || page.contains("&quot;"),
        "{page}"
    );

    let csrf = c.csrf().await;
    let r = c
        .post(
            &format!("/console/deliveries/{id}/retry"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status(), 303);
    app.run_worker_until_idle().await;

    let d = app.ledger.store.get_delivery("default", id).await.unwrap();
    assert_eq!(d.status, DeliveryStatus::Delivered);
    let attempts = app.attempts(id).await;
    let last = attempts.last().unwrap();
    assert_eq!(last.trigger, AttemptTrigger::Manual);
    assert_eq!(last.requested_by.as_deref(), Some("console:张三"));
    let page = c.page(&format!("/console/deliveries/{id}")).await;
    assert!(page.contains("已送达"));
    assert!(page.contains("手动重试（console:张三）"));
    // The remote link: the article on the website.
    let url = d.url.clone().expect("the platform's URL of the article");
    let escaped = url.replace('/', "&#x2f;");
    assert!(page.contains(&format!("href=\"{escaped}\"")), "{page}");
}

#[tokio::test]
async fn retry_all_failed_of_a_channel_and_the_health_and_report_pages() {
    let app = spawn_app().await;
    let a = a_dead_delivery(&app, "zpmzj-2017-00804").await;
    with_operator(&app, "张三", Role::Operator).await;
    let mut c = Console::new(&app);
    c.sign_in("张三", PASSWORD).await;
    let health = c.page("/console/health").await;
    assert!(health.contains("1 个投递失败"), "{health}");
    let csrf = c.csrf().await;
    let r = c
        .post(
            "/console/channels/gov_site/retry-failed",
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status(), 303);
    app.run_worker_until_idle().await;
    assert_eq!(
        app.ledger
            .store
            .get_delivery("default", a)
            .await
            .unwrap()
            .status,
        DeliveryStatus::Delivered
    );

    let report = c.page("/console/report?year=2017").await;
    assert!(report.contains("2017年政府信息主动公开情况"));
    assert!(report.contains("gov_site（政府网站）"), "{report}");
    let csv = c.get("/console/report/download?year=2017&format=csv").await;
    assert_eq!(csv.status(), 200);
    assert!(csv.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains("gongkai-report-2017.csv"));
    assert!(csv.text().await.unwrap().contains("section,key,name"));
    // The spreadsheet the clerk files: a real xlsx (a zip) of the year's layout.
    let xlsx = c
        .get("/console/report/download?year=2017&format=xlsx")
        .await;
    assert_eq!(xlsx.status(), 200);
    assert!(xlsx.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains("gongkai-report-2017.xlsx"));
    let bytes = xlsx.bytes().await.unwrap();
    assert!(bytes.starts_with(b"PK"), "an xlsx is a zip file");
}

#[tokio::test]
async fn metrics_are_served_on_the_admin_listener_only() {
    let app = spawn_app_with(|s| s.metrics.listen = Some("127.0.0.1:0".into())).await;
    a_dead_delivery(&app, "zpmzj-2017-00805").await;
    // A request to a WeChat callback URL of no configured channel is refused and counted.
    let r = app
        .client
        .get(format!(
            "{}/wechat/no_such_channel/callback?signature=x&timestamp=1&nonce=2",
            app.api
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let metrics = app.metrics.clone().expect("a metrics listener");
    let text = reqwest::get(format!("{metrics}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for series in [
        "gongkai_deliveries{channel=\"gov_site\",status=\"dead\"} 1",
        "# TYPE gongkai_queue_depth gauge",
        "gongkai_attempt_duration_seconds_bucket{channel=\"gov_site\",outcome=\"transient\",le=\"+Inf\"}",
        "# TYPE gongkai_callback_request_duration_seconds histogram",
        "gongkai_callback_request_duration_seconds_count{channel=\"unknown\",status=\"404\"}",
        "# TYPE gongkai_wechat_token_refreshes_total counter",
    ] {
        assert!(text.contains(series), "missing {series} in\n{text}");
    }
    // Not on the API listener.
    let r = app
        .client
        .get(format!("{}/metrics", app.api))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[test]
fn operator_accounts_are_added_listed_and_disabled_from_the_command_line() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let rt = tokio::runtime::Runtime::new().unwrap();
    let app = rt.block_on(spawn_app());
    let config = app.config_path.to_str().unwrap().to_string();
    let run = |args: &[&str], stdin: Option<&str>| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_gongkai"))
            .arg("--config")
            .arg(&config)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if let Some(s) = stdin {
            child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
        }
        child.wait_with_output().unwrap()
    };
    let out = run(
        &[
            "operator",
            "add",
            "王五",
            "--role",
            "admin",
            "--password-stdin",
        ],
        Some("a-long-password-42\n"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Too short a password is refused.
    let out = run(
        &["operator", "add", "赵六", "--password-stdin"],
        Some("short\n"),
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("密码至少"));

    let out = run(&["operator", "list"], None);
    let list = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(list.contains("王五\t管理员\t正常"), "{list}");

    rt.block_on(async {
        let mut c = Console::new(&app);
        assert_eq!(c.sign_in("王五", "a-long-password-42").await.status(), 303);
        assert_eq!(c.get("/console").await.status(), 200);
        let out = run(&["operator", "disable", "王五"], None);
        assert!(out.status.success());
        // Disabling ends the session at once.
        assert_eq!(c.get("/console").await.status(), 303);
    });
    drop(app);
}

/// The README's walk-through: `demo --with-failures` leaves one dead delivery and an
/// account; signing in with the printed credentials, the clerk finds it, reads why, retries
/// it, sees it delivered and downloads the 2017 report; Ctrl-C ends the demo cleanly.
#[test]
fn the_demo_with_failures_walk_through_works_from_the_printed_credentials() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_gongkai"))
        .args(["demo", "--with-failures", "--keep"])
        .arg(dir.path().join("demo"))
        .env_remove("GONGKAI_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let (mut url, mut password) = (String::new(), String::new());
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.trim().strip_prefix("7. 操作台：") {
            url = rest.trim_end_matches("/console").to_string();
        }
        if let Some(rest) = line.trim().strip_prefix("密码：") {
            password = rest.trim().to_string();
        }
        if line.contains("按 Ctrl-C 结束") {
            break;
        }
    }
    assert!(
        !url.is_empty() && !password.is_empty(),
        "credentials printed"
    );
    // Keep draining the demo's output so that it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut c = Console {
            base: url.clone(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookie: None,
        };
        assert_eq!(c.sign_in("demo", &password).await.status(), 303);
        let list = c.page("/console?date=all&status=dead").await;
        let needle = "class=\"chip dead\" href=\"/console/deliveries/";
        let at = list.find(needle).expect("a dead chip") + needle.len();
        let id: String = list[at..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        let page = c.page(&format!("/console/deliveries/{id}")).await;
        assert!(page.contains("HTTP 503"), "{page}");
        assert!(page.contains("平台维护中"));
        let csrf = c.csrf().await;
        let r = c
            .post(
                &format!("/console/deliveries/{id}/retry"),
                &[("csrf", &csrf)],
            )
            .await;
        assert_eq!(r.status(), 303);
        // The demo's own worker delivers it.
        let started = std::time::Instant::now();
        loop {
            let page = c.page(&format!("/console/deliveries/{id}")).await;
            if page.contains("id=\"state\">已送达") {
                assert!(page.contains("手动重试（console:demo）"));
                break;
            }
            assert!(started.elapsed().as_secs() < 30, "not delivered: {page}");
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        let csv = c.get("/console/report/download?year=2017&format=csv").await;
        assert_eq!(csv.status(), 200);
        assert!(csv
            .text()
            .await
            .unwrap()
            .contains("total,total,主动公开信息数,23,"));
    });

    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "the demo ends cleanly on Ctrl-C: {status}"
    );
}

#[tokio::test]
async fn the_health_page_shows_the_led_controller() {
    let app = spawn_app_with_led().await;
    app.post_disclosure(&disclosure("zpmzj-2017-00806", 1))
        .await;
    app.run_worker_until_idle().await;
    with_operator(&app, "张三", Role::Operator).await;
    let mut c = Console::new(&app);
    c.sign_in("张三", PASSWORD).await;
    let health = c.page("/console/health").await;
    assert!(health.contains("hall_led"), "{health}");
    assert!(health.contains("LED屏"));
    assert!(health.contains("LED 控制卡"), "{health}");
}
