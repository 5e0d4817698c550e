//! End-to-end tests of the operator console in a real headless Chromium, driven over
//! WebDriver (`fantoccini` + Debian's `chromedriver`): sign in, find a dead delivery, read
//! why, retry it and see it delivered; a wrong password; a POST without the CSRF token; an
//! operator without the right to withdraw. Saves screenshots (PNG) of the main page and of
//! a delivery page into target/screenshots/.
//!
//! fantoccini: the long-maintained async WebDriver client (jonhoo), tokio-based like the
//! rest of the tests, with no TLS stack needed to talk to a chromedriver on loopback.
//!
//! Without `chromium` and `chromedriver` on PATH (or CHROME / CHROMEDRIVER), the suite is
//! skipped and says so; with GONGKAI_REQUIRE_BROWSER=1 (CI) it fails instead.

#[allow(dead_code)]
#[path = "../api/helpers.rs"]
mod helpers;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use gongkai::domain::DeliveryStatus;
use gongkai::store::Role;
use helpers::*;
use serde_json::json;

const PASSWORD: &str = "correct-horse-battery";

fn find_on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for n in names {
            let p = dir.join(n);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

fn tools() -> Result<(PathBuf, PathBuf), String> {
    let given = |var: &str| -> Result<Option<PathBuf>, String> {
        match std::env::var_os(var).map(PathBuf::from) {
            Some(p) if p.is_file() => Ok(Some(p)),
            Some(p) => Err(format!("{var}={} is not a file", p.display())),
            None => Ok(None),
        }
    };
    let chrome = match given("CHROME")? {
        Some(p) => p,
        None => find_on_path(&["chromium", "chromium-browser", "google-chrome"])
            .ok_or("chromium not found on PATH (apt-get install chromium)")?,
    };
    let driver = match given("CHROMEDRIVER")? {
        Some(p) => p,
        None => find_on_path(&["chromedriver"])
            .ok_or("chromedriver not found on PATH (apt-get install chromium-driver)")?,
    };
    Ok((chrome, driver))
}

/// chromedriver on a free loopback port, killed on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_driver(driver: &Path) -> Driver {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting chromedriver");
    let url = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while reqwest::get(format!("{url}/status")).await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "chromedriver did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Driver { child, url }
}

async fn browser(driver: &Driver, chrome: &Path, profile: &Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chrome.to_string_lossy(),
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                format!("--user-data-dir={}", profile.display()),
                "--window-size=1366,768", "--lang=zh-CN",
            ],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a Chromium session")
}

fn screenshots_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn screenshot(c: &Client, name: &str) {
    let png = c.screenshot().await.expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    std::fs::write(screenshots_dir().join(name), png).unwrap();
}

async fn text_of(c: &Client, css: &str) -> String {
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("element {css}: {e}"))
        .text()
        .await
        .unwrap()
}

async fn sign_in(c: &Client, base: &str, name: &str, password: &str) {
    c.goto(&format!("{base}/console/login")).await.unwrap();
    c.find(Locator::Id("name"))
        .await
        .unwrap()
        .send_keys(name)
        .await
        .unwrap();
    c.find(Locator::Id("password"))
        .await
        .unwrap()
        .send_keys(password)
        .await
        .unwrap();
    c.find(Locator::Id("sign-in"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

async fn a_dead_delivery(app: &TestApp, id: &str) -> i64 {
    app.fault(
        json!({"path": "/gov_site/v1/disclosures", "count": 4, "status": 503,
                     "body": "{\"code\":\"MAINTENANCE\",\"message\":\"平台维护中，请稍后再试\"}"}),
    )
    .await;
    app.post_disclosure(&disclosure(id, 1)).await;
    app.run_worker_until_idle().await;
    let d = &app.deliveries_of(id).await[0];
    assert_eq!(d.status, DeliveryStatus::Dead);
    d.id
}

/// Sign in, see the dead delivery, open it, read why, retry it, see it delivered.
async fn a_clerk_finds_and_retries_a_dead_delivery(c: &Client) {
    let app = spawn_app().await;
    for i in 1..=3 {
        app.post_disclosure(&disclosure(&format!("zpmzj-2017-0091{i}"), 1))
            .await;
    }
    app.run_worker_until_idle().await;
    let id = a_dead_delivery(&app, "zpmzj-2017-00901").await;
    gongkai::console::auth::add_operator(
        app.ledger.store.as_ref(),
        "张三",
        PASSWORD,
        Role::Operator,
    )
    .await
    .unwrap();

    sign_in(c, &app.api, "张三", PASSWORD).await;
    let alert = text_of(c, "p.alert").await;
    assert!(alert.contains("1 个投递失败"), "{alert}");
    screenshot(c, "console-main.png").await;

    c.find(Locator::Id("show-dead"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .for_element(Locator::Css("a.chip.dead"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let advice = text_of(c, "#advice").await;
    assert!(advice.contains("HTTP 503"), "{advice}");
    assert_eq!(text_of(c, "#state").await, "失败");
    screenshot(c, "console-delivery.png").await;

    c.find(Locator::Id("retry"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let notice = text_of(c, "p.notice").await;
    assert!(notice.contains("已安排重试 1 个"), "{notice}");
    app.run_worker_until_idle().await;
    c.refresh().await.unwrap();
    assert_eq!(text_of(c, "#state").await, "已送达");
    let source = c.source().await.unwrap();
    assert!(source.contains("手动重试（console:张三）"));
    screenshot(c, "console-delivery-delivered.png").await;

    // Channel health and the year report, for the record.
    c.goto(&format!("{}/console/health", app.api))
        .await
        .unwrap();
    assert!(text_of(c, "main h1").await.contains("渠道状态"));
    screenshot(c, "console-health.png").await;
    c.goto(&format!("{}/console/report?year=2017", app.api))
        .await
        .unwrap();
    assert!(text_of(c, "main h1").await.contains("2017年"));
    screenshot(c, "console-report.png").await;

    // The same page on a phone.
    c.set_window_size(390, 844).await.unwrap();
    c.goto(&format!("{}/console", app.api)).await.unwrap();
    screenshot(c, "console-phone.png").await;
    c.set_window_size(1366, 768).await.unwrap();
    let d = app.ledger.store.get_delivery("default", id).await.unwrap();
    assert_eq!(d.status, DeliveryStatus::Delivered);
}

/// A wrong password; a POST without the CSRF token; an operator cannot withdraw.
async fn refusals(c: &Client) {
    let app = spawn_app().await;
    let id = a_dead_delivery(&app, "zpmzj-2017-00902").await;
    gongkai::console::auth::add_operator(
        app.ledger.store.as_ref(),
        "李四",
        PASSWORD,
        Role::Operator,
    )
    .await
    .unwrap();

    sign_in(c, &app.api, "李四", "not-the-password").await;
    let error = text_of(c, "p.error").await;
    assert!(error.contains("用户名或密码错误"), "{error}");

    sign_in(c, &app.api, "李四", PASSWORD).await;
    // Only signed-in pages have the sign-out form (the sign-in page may still be shown).
    text_of(c, "form.who").await;
    // A form built by a script without the token, as a forged page would send it.
    c.execute(
        &format!(
            "const f = document.createElement('form'); f.method = 'post';
             f.action = '/console/deliveries/{id}/retry'; document.body.appendChild(f); f.submit();"
        ),
        vec![],
    )
    .await
    .unwrap();
    let refused = text_of(c, "p.error").await;
    assert!(refused.contains("安全令牌"), "{refused}");
    assert_eq!(
        app.ledger
            .store
            .get_delivery("default", id)
            .await
            .unwrap()
            .status,
        DeliveryStatus::Dead
    );

    c.goto(&format!(
        "{}/console/disclosures/zpmzj-2017-00902/withdraw",
        app.api
    ))
    .await
    .unwrap();
    let refused = text_of(c, "p.error").await;
    assert!(refused.contains("需要管理员权限"), "{refused}");
    let page = c.source().await.unwrap();
    assert!(!page.contains("撤回此公开件"));
}

fn main() {
    let require = std::env::var("GONGKAI_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
    let (chrome, driver) = match tools() {
        Ok(t) => t,
        Err(why) if require => {
            eprintln!("browser suite FAILED: {why} (GONGKAI_REQUIRE_BROWSER=1)");
            std::process::exit(1);
        }
        Err(why) => {
            println!(
                "browser suite skipped: {why}; install chromium and chromium-driver to run it \
                 (GONGKAI_REQUIRE_BROWSER=1 makes this a failure)"
            );
            return;
        }
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let result = rt.block_on(async {
        let driver = start_driver(&driver).await;
        let profile = tempfile::tempdir().unwrap();
        let c = browser(&driver, &chrome, profile.path()).await;
        let outcome = tokio::spawn({
            let c = c.clone();
            async move {
                println!("browser: a clerk finds and retries a dead delivery …");
                a_clerk_finds_and_retries_a_dead_delivery(&c).await;
                println!("browser: wrong password, CSRF-less POST, no right to withdraw …");
                refusals(&c).await;
            }
        })
        .await;
        let _ = c.close().await;
        outcome
    });
    match result {
        Ok(()) => println!(
            "browser suite passed; screenshots in {}",
            screenshots_dir().display()
        ),
        Err(e) => {
            eprintln!("browser suite FAILED: {e}");
            std::process::exit(1);
        }
    }
}
