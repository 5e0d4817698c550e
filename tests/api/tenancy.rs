//! Multi-tenancy (issue 7) over real HTTP: two departments (福州 and 厦门 民政局) besides the
//! top-level `default` one, in one database, each with its own API token, its own website
//! platform (a sandbox of its own) and its own WeChat account. A department's token never
//! reads, retries, withdraws or reports another department's deliveries (another
//! department's delivery is a 404, like one that does not exist); both use the same
//! disclosure id; each department's deliveries reach its own platform; each department's
//! WeChat account answers from its own published items only; a department's own templates
//! and hall screen are its own. On SQLite, and on PostgreSQL when `GONGKAI_TEST_DATABASE_URL`
//! is set.

use gongkai::app::Application;
use gongkai::config::Settings;
use gongkai::sandbox::wechat::{text_message, CallbackMode, UserClient};
use gongkai::sandbox::{self, SandboxHandle};
use gongkai::wechat_callback::message::Message;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::helpers::*;

const ID: &str = "mz-2017-0001";

/// One department of the test: its code, names, token and emulated platforms.
struct Dept {
    code: &'static str,
    publisher: &'static str,
    token: &'static str,
    app_key: &'static str,
    appid: &'static str,
    callback_token: &'static str,
    sandbox: SandboxHandle,
}

const FZ: (&str, &str, &str, &str, &str, &str) = (
    "minzheng-fz",
    "福州市民政局",
    "token-fz-0123456789",
    "fzmzj",
    "wx000000000000fz01",
    "cb-token-fz",
);
const XM: (&str, &str, &str, &str, &str, &str) = (
    "minzheng-xm",
    "厦门市民政局",
    "token-xm-0123456789",
    "xmmzj",
    "wx000000000000xm01",
    "cb-token-xm",
);

async fn dept(
    (code, publisher, token, app_key, appid, callback_token): (
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
    ),
) -> Dept {
    let sandbox = sandbox::spawn(
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
        sandbox::SandboxConfig {
            gov_site_apps: vec![sandbox::GovSiteApp {
                app_key: app_key.into(),
                secret: format!("{app_key}-secret"),
            }],
            wechat_apps: vec![sandbox::wechat::WechatApp {
                appid: appid.into(),
                secret: format!("{appid}-secret"),
                callback_token: callback_token.into(),
                callback_url: None,
            }],
            ..Default::default()
        },
    )
    .await;
    Dept {
        code,
        publisher,
        token,
        app_key,
        appid,
        callback_token,
        sandbox,
    }
}

/// `departments/<code>/`: department.toml (name, publisher, token file, taxonomy, report
/// baseline, WeChat callback with a "latest" button), its website and WeChat channels
/// pointing at its own sandbox, and the secrets.
fn lay_out_department(root: &std::path::Path, d: &Dept) {
    let dir = root.join("departments").join(d.code);
    std::fs::create_dir_all(dir.join("channels")).unwrap();
    std::fs::create_dir_all(dir.join("secrets")).unwrap();
    std::fs::write(dir.join("secrets/api_token"), d.token).unwrap();
    std::fs::write(
        dir.join("secrets/gov_site.key"),
        format!("{}-secret", d.app_key),
    )
    .unwrap();
    std::fs::write(
        dir.join("secrets/wechat.key"),
        format!("{}-secret", d.appid),
    )
    .unwrap();
    std::fs::write(dir.join("secrets/wechat_cb.key"), d.callback_token).unwrap();
    std::fs::write(
        dir.join("department.toml"),
        format!(
            r#"name = "{publisher}"
publisher = "{publisher}"

[api]
token_file = "secrets/api_token"

[[categories]]
code = "shjz"
name = "社会救助"
channels = ["gov_site"]
deadline_working_days = 10

[report.baseline]
before_year = 2017
total = 40
channels = {{ gov_site = 40 }}

[wechat_callback]
channel = "wechat"

[[wechat_callback.menu]]
name = "最新公开"
key = "LATEST"
action = "latest"
count = 5
"#,
            publisher = d.publisher
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("channels/gov_site.toml"),
        format!(
            "kind = \"gov_site\"\nbase_url = \"{}/gov_site\"\napp_key = \"{}\"\nsecret_file = \"../secrets/gov_site.key\"\n",
            d.sandbox.base_url(),
            d.app_key
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("channels/wechat.toml"),
        format!(
            "kind = \"wechat\"\nappid = \"{}\"\nsecret_file = \"../secrets/wechat.key\"\ncallback_token_file = \"../secrets/wechat_cb.key\"\napi_base = \"{}\"\n",
            d.appid,
            d.sandbox.wechat_api_base()
        ),
    )
    .unwrap();
}

struct Tenancy {
    app: TestApp,
    fz: Dept,
    xm: Dept,
}

/// The daemon with the default department (the usual test layout and its sandbox) and
/// the two departments of `departments/`; `database_url` overrides the SQLite file.
async fn spawn_tenancy(database_url: Option<String>) -> Tenancy {
    let default_sandbox = spawn_sandbox().await;
    let (fz, xm) = (dept(FZ).await, dept(XM).await);
    let dir = tempfile::tempdir().unwrap();
    let config = lay_out(dir.path(), &default_sandbox);
    let top = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("departments_dir = \"departments\"\n{top}")).unwrap();
    lay_out_department(dir.path(), &fz);
    lay_out_department(dir.path(), &xm);
    // 福州 has its own website template (its platform wants the city in the title); 厦门
    // uses the top-level one.
    let template = "templates/gov_site/disclosure.json.j2";
    let own = std::fs::read_to_string(dir.path().join(template))
        .unwrap()
        .replace(
            r#""title": {{ d.title|tojson }},"#,
            r#""title": {{ ("【福州】" ~ d.title)|tojson }},"#,
        );
    assert!(own.contains("【福州】"), "the website template changed");
    let to = dir.path().join("departments").join(fz.code).join(template);
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::write(to, own).unwrap();
    // 厦门 also has a hall screen, read over HTTP by its player.
    let xm_dir = dir.path().join("departments").join(xm.code);
    std::fs::write(
        xm_dir.join("channels/hall_led.toml"),
        "kind = \"led\"\nwidth_px = 256\nheight_px = 16\nencoding = \"gb2312\"\n\n[http_pull]\nenabled = true\n",
    )
    .unwrap();
    let xm_file = xm_dir.join("department.toml");
    let xm_toml = std::fs::read_to_string(&xm_file).unwrap().replace(
        r#"channels = ["gov_site"]"#,
        r#"channels = ["gov_site", "hall_led"]"#,
    );
    std::fs::write(xm_file, xm_toml).unwrap();

    let mut settings = Settings::load(&config).unwrap();
    settings.worker.enabled = false;
    settings.worker.instance_id = Some("tenancy-worker".into());
    if let Some(url) = database_url {
        settings.database_url = url;
    }
    let app = Application::build(settings).await.unwrap();
    let api = format!("http://{}", app.addr());
    let (ledger, worker) = (app.ledger(), app.worker());
    let (stop, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(app.run_until_stopped(rx));
    Tenancy {
        app: TestApp::from_parts(dir, config, api, ledger, worker, default_sandbox, stop),
        fz,
        xm,
    }
}

/// A valid disclosure of category `shjz` published by `publisher`.
fn item(id: &str, publisher: &str, title: &str) -> Value {
    let body = format!("<p>{title}：现将本季度城乡低保资金发放情况公示如下。</p>");
    json!({
        "disclosure_id": id,
        "revision": 1,
        "title": title,
        "publisher": publisher,
        "formed_date": "2017-04-03",
        "publish_date": "2017-04-07",
        "category": "shjz",
        "body_html": body,
        "review": {
            "content_sha256": sha256_hex(&body),
            "steps": [
                {"role": "初审", "by": "u102", "at": "2017-04-05T09:12:00+08:00"},
                {"role": "终审", "by": "u007", "at": "2017-04-07T08:55:00+08:00"}
            ]
        }
    })
}

impl Tenancy {
    async fn get(&self, token: &str, path: &str) -> reqwest::Response {
        self.app
            .client
            .get(format!("{}/api/v1{path}", self.app.api))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    async fn post(&self, token: &str, path: &str, body: &Value) -> reqwest::Response {
        self.app
            .client
            .post(format!("{}/api/v1{path}", self.app.api))
            .bearer_auth(token)
            .header("x-operator", "王科员")
            .json(body)
            .send()
            .await
            .unwrap()
    }

    async fn json(&self, token: &str, path: &str) -> Value {
        let r = self.get(token, path).await;
        assert_eq!(r.status(), StatusCode::OK, "GET {path}");
        r.json().await.unwrap()
    }

    /// The ids of the deliveries a token lists.
    async fn listed(&self, token: &str, query: &str) -> Vec<i64> {
        self.json(token, &format!("/deliveries{query}"))
            .await
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["id"].as_i64().unwrap())
            .collect()
    }

    fn wechat_user(&self, d: &Dept) -> UserClient {
        UserClient::new(
            &format!("{}/wechat/{}", self.app.api, d.code),
            d.callback_token,
            None,
            CallbackMode::Plain,
        )
    }
}

fn ids_of(submitted: &Value) -> Vec<i64> {
    submitted["delivery_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect()
}

fn content(reply: &str) -> String {
    Message::parse(reply)
        .unwrap_or_else(|e| panic!("{e}: {reply}"))
        .get("Content")
        .unwrap_or_default()
        .to_string()
}

async fn a_department_token_sees_and_changes_only_its_own_department(t: Tenancy) {
    let (fz, xm) = (&t.fz, &t.xm);

    // Both departments submit the same disclosure id, each under its own publisher.
    let r = t
        .post(
            fz.token,
            "/disclosures",
            &item(ID, fz.publisher, "福州市2017年第一季度低保资金发放公示"),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let fz_ids = ids_of(&r.json().await.unwrap());
    let r = t
        .post(
            xm.token,
            "/disclosures",
            &item(ID, xm.publisher, "厦门市2017年第一季度低保资金发放公示"),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let xm_ids = ids_of(&r.json().await.unwrap());
    let r = t
        .post(
            xm.token,
            "/disclosures",
            &item("mz-2017-0002", xm.publisher, "厦门市临时救助资金发放公示"),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let xm_second = ids_of(&r.json().await.unwrap());
    assert_eq!((fz_ids.len(), xm_ids.len()), (1, 2));
    assert_ne!(fz_ids, xm_ids);

    // A department publishes only in its own name, and its taxonomy is its own.
    let r = t
        .post(
            fz.token,
            "/disclosures",
            &item("mz-2017-0009", xm.publisher, "冒名的公示"),
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = r.json().await.unwrap();
    assert!(body.to_string().contains("publisher"), "{body}");
    let mut other_category = item("mz-2017-0010", fz.publisher, "分类不属于本部门");
    other_category["category"] = json!("mzfp");
    let r = t.post(fz.token, "/disclosures", &other_category).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // A wrong token is no department's.
    assert_eq!(
        t.get("no-such-token", "/deliveries").await.status(),
        StatusCode::UNAUTHORIZED
    );

    // Each department's deliveries go to its own platform.
    t.app.run_worker_until_idle().await;
    let fz_site = sandbox_state(&fz.sandbox).await;
    let xm_site = sandbox_state(&xm.sandbox).await;
    let default_site = sandbox_state(&t.app.sandbox).await;
    assert_eq!(
        platform_doc(&fz_site, ID).unwrap()["title"],
        "【福州】福州市2017年第一季度低保资金发放公示"
    );
    assert_eq!(
        platform_doc(&xm_site, ID).unwrap()["title"],
        "厦门市2017年第一季度低保资金发放公示"
    );
    assert_eq!(fz_site["gov_site"]["docs"].as_array().unwrap().len(), 1);
    assert_eq!(xm_site["gov_site"]["docs"].as_array().unwrap().len(), 2);
    assert!(default_site["gov_site"]["docs"]
        .as_array()
        .unwrap()
        .is_empty());
    assert_eq!(fz_site["gov_site"]["duplicates"], 0);

    // Each department's hall screen is its own, on /led/{department}/{screen}/feed.
    let feed = |path: String| {
        let client = t.app.client.clone();
        async move { client.get(path).send().await.unwrap() }
    };
    let r = feed(format!(
        "{}/led/{}/hall_led/feed?format=json",
        t.app.api, xm.code
    ))
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let shown = r.text().await.unwrap();
    assert!(
        shown.contains("厦门市2017年第一季度低保资金发放公示"),
        "{shown}"
    );
    for path in [
        format!("{}/led/{}/hall_led/feed", t.app.api, fz.code),
        format!("{}/led/hall_led/feed", t.app.api),
    ] {
        assert_eq!(
            feed(path.clone()).await.status(),
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    let screens = t.json(xm.token, "/screens").await;
    assert_eq!(screens[0]["name"], "hall_led");
    assert_eq!(screens[0]["items"], 2);
    assert!(t
        .json(fz.token, "/screens")
        .await
        .as_array()
        .unwrap()
        .is_empty());

    // Lists: each token sees its own department's deliveries only.
    assert_eq!(t.listed(fz.token, "").await, fz_ids);
    assert_eq!(
        t.listed(xm.token, "").await,
        [xm_ids.clone(), xm_second.clone()].concat()
    );
    assert_eq!(
        t.listed(fz.token, &format!("?disclosure_id={ID}")).await,
        fz_ids
    );
    assert!(t.listed(TOKEN, "").await.is_empty());

    // Show: another department's delivery is not found (404, as an unknown id).
    let own = t
        .json(fz.token, &format!("/deliveries/{}", fz_ids[0]))
        .await;
    assert_eq!(own["department"], fz.code);
    assert_eq!(own["status"], "delivered");
    for path in [
        format!("/deliveries/{}", xm_ids[0]),
        format!("/deliveries/{}", xm_second[0]),
        "/deliveries/999999".to_string(),
    ] {
        let r = t.get(fz.token, &path).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
        let text = r.text().await.unwrap();
        assert!(!text.contains("厦门"), "{text}");
    }
    // The disclosure with the shared id is each department's own.
    let d = t.json(fz.token, &format!("/disclosures/{ID}")).await;
    assert_eq!(
        d["disclosure"]["title"],
        "福州市2017年第一季度低保资金发放公示"
    );
    assert_eq!(
        d["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["id"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        fz_ids
    );
    assert_eq!(
        t.get(fz.token, "/disclosures/mz-2017-0002").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        t.get(TOKEN, &format!("/disclosures/{ID}")).await.status(),
        StatusCode::NOT_FOUND
    );

    // Retry: one by id is a 404; in a list it is refused as an unknown id; "all failed"
    // never reaches the other department.
    let xm_before = t
        .json(xm.token, &format!("/deliveries/{}", xm_ids[0]))
        .await;
    let r = t
        .post(
            fz.token,
            &format!("/deliveries/{}/retry", xm_ids[0]),
            &json!({}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = t
        .post(fz.token, "/deliveries/retry", &json!({"ids": [xm_ids[0]]}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let results: Value = r.json().await.unwrap();
    assert_eq!(results["results"][0]["result"], "refused");
    assert_eq!(results["results"][0]["reason"], "没有这个投递");
    let r = t
        .post(fz.token, "/deliveries/retry", &json!({"failed": true}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let xm_after = t
        .json(xm.token, &format!("/deliveries/{}", xm_ids[0]))
        .await;
    assert_eq!(xm_after["attempts_log"], xm_before["attempts_log"]);
    assert_eq!(xm_after["updated_at"], xm_before["updated_at"]);

    // Withdraw: another department's disclosure is not found and stays published; the same
    // id in one's own department is one's own.
    let r = t
        .post(
            fz.token,
            "/disclosures/mz-2017-0002/withdraw",
            &json!({"reason": "误操作"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = t
        .post(
            fz.token,
            &format!("/disclosures/{ID}/withdraw"),
            &json!({"reason": "内容有误"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    t.app.run_worker_until_idle().await;
    let d = t.json(xm.token, &format!("/disclosures/{ID}")).await;
    assert!(d["withdrawn_at"].is_null(), "{d}");
    let d = t.json(fz.token, &format!("/disclosures/{ID}")).await;
    assert!(!d["withdrawn_at"].is_null(), "{d}");
    assert_eq!(
        platform_doc(&sandbox_state(&fz.sandbox).await, ID).unwrap()["status"],
        "withdrawn"
    );
    assert_eq!(
        platform_doc(&sandbox_state(&xm.sandbox).await, ID).unwrap()["status"],
        "published"
    );

    // Report: each department counts its own items over its own baseline.
    let fz_report = t.json(fz.token, "/report?year=2017&layout=2017").await;
    let xm_report = t.json(xm.token, "/report?year=2017&layout=2017").await;
    let default_report = t.json(TOKEN, "/report?year=2017&layout=2017").await;
    assert_eq!(fz_report["total"]["year"], 1);
    assert_eq!(fz_report["total"]["cumulative"], 41);
    assert_eq!(xm_report["total"]["year"], 2);
    assert_eq!(xm_report["total"]["cumulative"], 42);
    assert_eq!(default_report["total"]["year"], 0);

    // WeChat: each department's account answers on /wechat/{department}, from its own
    // published items only, and checks its own callback token.
    let (status, reply) = t
        .wechat_user(xm)
        .send(&text_message("oUser", "低保", 7001))
        .await;
    assert_eq!(status, StatusCode::OK);
    let text = content(&reply);
    assert!(
        text.contains("厦门市2017年第一季度低保资金发放公示"),
        "{text}"
    );
    assert!(!text.contains("福州"), "{text}");
    let (status, reply) = t
        .wechat_user(fz)
        .send(&text_message("oUser", "低保", 7002))
        .await;
    assert_eq!(status, StatusCode::OK);
    // 福州's only item was withdrawn: nothing of 厦门's is offered instead.
    let text = content(&reply);
    assert!(!text.contains("厦门"), "{text}");
    let ts = chrono::Utc::now().timestamp().to_string();
    let echo = |d: &Dept, token: &str| {
        let sig = gongkai::wechat_callback::signature(token, &ts, "42");
        format!(
            "{}/wechat/{}?signature={sig}&timestamp={ts}&nonce=42&echostr=7788",
            t.app.api, d.code
        )
    };
    let ok = reqwest::get(echo(fz, fz.callback_token)).await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(ok.text().await.unwrap(), "7788");
    let other = reqwest::get(echo(fz, xm.callback_token)).await.unwrap();
    assert_eq!(other.status(), StatusCode::FORBIDDEN);
    let unknown = reqwest::get(format!("{}/wechat/no-such-department?echostr=1", t.app.api))
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_department_token_sees_and_changes_only_its_own_department_on_sqlite() {
    a_department_token_sees_and_changes_only_its_own_department(spawn_tenancy(None).await).await;
}

#[tokio::test]
async fn a_department_token_sees_and_changes_only_its_own_department_on_postgres() {
    let Some(database) = pg::TestDatabase::create().await else {
        return;
    };
    let t = spawn_tenancy(Some(database.url.clone())).await;
    a_department_token_sees_and_changes_only_its_own_department(t).await;
    drop(database);
}

fn gongkai(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_gongkai"))
        .args(args)
        .env_remove("GONGKAI_CONFIG")
        .env_remove("GONGKAI_DEPARTMENT")
        .output()
        .expect("run gongkai")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The command line works on the department `--department` names (default `default`).
#[tokio::test]
async fn the_command_line_works_on_the_department_it_is_given() {
    let t = spawn_tenancy(None).await;
    let (fz, xm) = (&t.fz, &t.xm);
    let config = t.app.config_path.to_str().unwrap().to_string();
    let r = t
        .post(
            xm.token,
            "/disclosures",
            &item(ID, xm.publisher, "厦门市低保公示"),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let xm_id = ids_of(&r.json().await.unwrap())[0];

    // Submit through the command line into 福州, with the same id.
    let file = t.app.dir.path().join("fz.json");
    std::fs::write(
        &file,
        serde_json::to_vec(&item(ID, fz.publisher, "福州市低保公示")).unwrap(),
    )
    .unwrap();
    let out = gongkai(&[
        "--config",
        &config,
        "--department",
        fz.code,
        "submit",
        file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let list = |dept: &str| {
        let out = gongkai(&[
            "--config",
            &config,
            "--department",
            dept,
            "deliveries",
            "--json",
        ]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        serde_json::from_slice::<Vec<Value>>(&out.stdout).unwrap()
    };
    let fz_rows = list(fz.code);
    assert_eq!(fz_rows.len(), 1);
    assert_eq!(fz_rows[0]["department"], fz.code);
    assert_ne!(fz_rows[0]["id"], xm_id);
    assert_eq!(list(xm.code)[0]["id"], xm_id);
    assert!(list("default").is_empty());

    // Another department's delivery is not there, and cannot be retried or withdrawn.
    let xm_id = xm_id.to_string();
    for args in [
        vec!["deliveries", "show", xm_id.as_str()],
        vec!["retry", xm_id.as_str()],
        vec!["withdraw", "no-such-id-in-fz"],
    ] {
        let mut all = vec!["--config", config.as_str(), "--department", fz.code];
        all.extend(args.iter().copied());
        let out = gongkai(&all);
        assert!(!out.status.success(), "{args:?} succeeded");
    }
    let out = gongkai(&[
        "--config",
        &config,
        "--department",
        fz.code,
        "deliveries",
        "show",
        &xm_id,
    ]);
    assert!(
        text(&out.stderr).contains("部门 minzheng-fz"),
        "{}",
        text(&out.stderr)
    );

    // The report of a department is its own (nothing delivered yet: the baseline only).
    let out = gongkai(&[
        "--config",
        &config,
        "--department",
        xm.code,
        "report",
        "--year",
        "2017",
        "--format",
        "json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["total"]["cumulative"], 40);

    // An unknown department is named, with the ones that exist.
    let out = gongkai(&["--config", &config, "--department", "nosuch", "deliveries"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("nosuch") && err.contains("minzheng-xm"),
        "{err}"
    );

    // check-config validates every department.
    let out = gongkai(&["--config", &config, "check-config"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(
        said.contains("minzheng-fz") && said.contains("minzheng-xm"),
        "{said}"
    );
}

/// `check-config` (and every command, which loads the config) names the department and
/// the file of every problem: a bad code, a folder without department.toml, a token shared
/// with another department, a WeChat account of another department, a category routed to
/// a channel the department does not have.
#[tokio::test]
async fn department_config_problems_name_the_department_and_the_file() {
    let default_sandbox = spawn_sandbox().await;
    let (fz, xm) = (dept(FZ).await, dept(XM).await);
    let dir = tempfile::tempdir().unwrap();
    let config = lay_out(dir.path(), &default_sandbox);
    let top = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("departments_dir = \"departments\"\n{top}")).unwrap();
    lay_out_department(dir.path(), &fz);
    lay_out_department(dir.path(), &xm);
    let root = dir.path().join("departments");
    // 厦门 takes 福州's token file and WeChat appid, and routes a category to nowhere.
    let xm_file = root.join("minzheng-xm/department.toml");
    let own = std::fs::read_to_string(&xm_file).unwrap();
    std::fs::write(
        &xm_file,
        own.replace(
            "token_file = \"secrets/api_token\"",
            "token_file = \"../minzheng-fz/secrets/api_token\"",
        )
        .replace(
            "channels = [\"gov_site\"]",
            "channels = [\"gov_site\", \"hall_led\"]",
        ),
    )
    .unwrap();
    let wechat = root.join("minzheng-xm/channels/wechat.toml");
    let w = std::fs::read_to_string(&wechat).unwrap();
    std::fs::write(&wechat, w.replace(xm.appid, fz.appid)).unwrap();
    std::fs::create_dir_all(root.join("Bad_Code")).unwrap();
    std::fs::create_dir_all(root.join("minzheng-pt")).unwrap();
    // 福州 tries to move its callback elsewhere: a department's is /wechat/{code}.
    let fz_file = root.join("minzheng-fz/department.toml");
    let fz_own = std::fs::read_to_string(&fz_file).unwrap();
    std::fs::write(
        &fz_file,
        fz_own.replace(
            "channel = \"wechat\"",
            "channel = \"wechat\"\npath = \"/wx\"",
        ),
    )
    .unwrap();

    let out = gongkai(&["--config", config.to_str().unwrap(), "check-config"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    for want in [
        "Bad_Code",
        "部门代码",
        "部门 minzheng-pt",
        "department.toml",
        "部门 minzheng-fz 与部门 minzheng-xm 的 [api] 令牌来自同一处",
        "minzheng-xm/channels/wechat.toml",
        fz.appid,
        "一个公众号只能属于一个部门",
        "部门 minzheng-xm（",
        "hall_led",
        "/wechat/minzheng-fz",
    ] {
        assert!(err.contains(want), "{want} missing from:\n{err}");
    }

    // Two token files with the same token: found when the tokens are read.
    std::fs::write(&fz_file, fz_own).unwrap();
    std::fs::write(&xm_file, own).unwrap();
    std::fs::write(&wechat, w).unwrap();
    std::fs::remove_dir(root.join("Bad_Code")).unwrap();
    std::fs::remove_dir(root.join("minzheng-pt")).unwrap();
    std::fs::write(root.join("minzheng-xm/secrets/api_token"), fz.token).unwrap();
    let out = gongkai(&["--config", config.to_str().unwrap(), "check-config"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("部门 minzheng-fz 与部门 minzheng-xm 的 API 令牌相同"),
        "{err}"
    );
    let settings = Settings::load(&config).unwrap();
    let e = Application::build(settings).await.err().expect("refused");
    assert!(format!("{e:#}").contains("API 令牌相同"), "{e:#}");
    // The top-level token is a department's token too.
    std::fs::write(root.join("minzheng-xm/secrets/api_token"), TOKEN).unwrap();
    let out = gongkai(&["--config", config.to_str().unwrap(), "check-config"]);
    assert!(
        text(&out.stderr).contains("部门 default 与部门 minzheng-xm 的 API 令牌相同"),
        "{}",
        text(&out.stderr)
    );
}

/// The example department of `examples/departments/` loads as documented.
#[tokio::test]
async fn the_example_department_loads() {
    let sandbox = spawn_sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let config = lay_out(dir.path(), &sandbox);
    let top = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("departments_dir = \"departments\"\n{top}")).unwrap();
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/departments");
    let to = dir.path().join("departments/minzheng-fz/channels");
    std::fs::create_dir_all(&to).unwrap();
    for file in ["department.toml", "channels/gov_site.toml"] {
        std::fs::copy(
            example.join("minzheng-fz").join(file),
            dir.path().join("departments/minzheng-fz").join(file),
        )
        .unwrap();
    }
    let settings = Settings::load(&config).unwrap();
    let views = settings.department_views();
    assert_eq!(
        views
            .iter()
            .map(|v| v.department.code.as_str())
            .collect::<Vec<_>>(),
        ["default", "minzheng-fz"]
    );
    let fz = settings.for_department("minzheng-fz").unwrap();
    assert_eq!(fz.department.publisher.as_deref(), Some("福州市民政局"));
    assert_eq!(fz.categories.len(), 2);
    assert_eq!(fz.report.baseline.total, 120);
    assert!(fz.channels.channels.contains_key("gov_site"));
    // The shared sections are the top-level config's.
    assert_eq!(fz.retry.max_attempts, settings.retry.max_attempts);
    assert_eq!(fz.database_url, settings.database_url);
}

/// An operator account belongs to a department: its console shows and changes that
/// department's items only.
#[tokio::test]
async fn a_department_operator_works_on_its_own_department_in_the_console() {
    use crate::console::Console;
    const PASSWORD: &str = "correct-horse-battery";
    let t = spawn_tenancy(None).await;
    let (fz, xm) = (&t.fz, &t.xm);
    let r = t
        .post(
            fz.token,
            "/disclosures",
            &item(ID, fz.publisher, "福州市低保资金发放公示"),
        )
        .await;
    let fz_id = ids_of(&r.json().await.unwrap())[0];
    let r = t
        .post(
            xm.token,
            "/disclosures",
            &item(ID, xm.publisher, "厦门市低保资金发放公示"),
        )
        .await;
    let xm_id = ids_of(&r.json().await.unwrap())[0];
    t.post(
        xm.token,
        "/disclosures",
        &item("mz-2017-0002", xm.publisher, "厦门市临时救助公示"),
    )
    .await;
    gongkai::console::auth::add_operator_in(
        t.app.ledger.store.as_ref(),
        fz.code,
        "林科员",
        PASSWORD,
        gongkai::store::Role::Admin,
    )
    .await
    .unwrap();
    let mut console = Console::new(&t.app);
    assert_eq!(console.sign_in("林科员", PASSWORD).await.status(), 303);

    // The day list and the header are 福州's.
    let page = console.page("/console?date=all").await;
    assert!(page.contains("福州市低保资金发放公示"), "{page}");
    assert!(!page.contains("厦门"), "{page}");
    assert!(page.contains("部门 minzheng-fz"), "{page}");
    assert!(console
        .page(&format!("/console/deliveries/{fz_id}"))
        .await
        .contains("福州市低保资金发放公示"));

    // 厦门's delivery and disclosure are not found; a forged retry changes nothing.
    assert_eq!(
        console
            .get(&format!("/console/deliveries/{xm_id}"))
            .await
            .status(),
        404
    );
    assert_eq!(
        console
            .get("/console/disclosures/mz-2017-0002/withdraw")
            .await
            .status(),
        404
    );
    let csrf = console.csrf().await;
    let r = console
        .post(
            &format!("/console/deliveries/{xm_id}/retry"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status(), 303);
    let xm_row = t.json(xm.token, &format!("/deliveries/{xm_id}")).await;
    assert_eq!(xm_row["next_trigger"], "scheduled");
    assert!(xm_row["requested_by"].is_null());
    let r = console
        .post(
            "/console/disclosures/mz-2017-0002/withdraw",
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status(), 404);
    let d = t.json(xm.token, "/disclosures/mz-2017-0002").await;
    assert!(d["withdrawn_at"].is_null());

    // The health page lists 福州's channels; the report is 福州's (baseline 40, nothing
    // delivered yet).
    assert!(console.page("/console/health").await.contains("gov_site"));
    assert!(!console.page("/console/health").await.contains("hall_led"));
    let report = console.page("/console/report?year=2017").await;
    assert!(report.contains("40"), "{report}");
}
