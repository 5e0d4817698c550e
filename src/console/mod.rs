//! The operator console at `/console` (issue 8): server-rendered pages in Chinese for the
//! clerks who watch and fix deliveries. Owns: the routes, `ConsoleError` (an HTML error page),
//! the templates (`templates/console/*.html.j2`, embedded at build time so a deployment
//! cannot lose them) and the stylesheet. Sign-in, sessions and CSRF are in `auth.rs`, what
//! each page shows in `views.rs`; every action goes through `delivery::Ledger`, which
//! records the operator's name. Handlers stay thin: extract, call one function, render.
//!
//! Departments: an operator account belongs to one department (`gongkai --department CODE
//! operator add`); every page and action after sign-in is that department's (its ledger,
//! channels, screens and report), and another department's delivery or disclosure is "not
//! found".

pub mod auth;
pub mod views;

use std::sync::{Arc, OnceLock};

use axum::extract::{Form, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::Utc;
use minijinja::{context, Environment};
use serde::{Deserialize, Serialize};

use crate::delivery::Ledger;
use crate::http::{AppState, Tenant};
use crate::report;
use crate::store::{RetryResult, StoreError};
use auth::{Session, SignInRefused};

const CSS: &str = include_str!("../../templates/console/console.css");

/// The console's routes (merged into the API router when `[console] enabled`).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console", get(index))
        .route("/console/", get(|| async { Redirect::to("/console") }))
        .route("/console/static/console.css", get(stylesheet))
        .route("/console/login", get(login_page).post(login))
        .route("/console/logout", post(logout))
        .route("/console/deliveries/{id}", get(delivery))
        .route("/console/deliveries/{id}/retry", post(retry_one))
        .route(
            "/console/channels/{channel}/retry-failed",
            post(retry_channel),
        )
        .route(
            "/console/disclosures/{id}/withdraw",
            get(withdraw_confirm).post(withdraw),
        )
        .route("/console/health", get(health))
        .route("/console/report", get(report_page))
        .route("/console/report/download", get(report_download))
}

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
        env.add_filter("channel_label", |kind: String| {
            report::channel_label(&kind).to_string()
        });
        for (name, src) in [
            (
                "base.html.j2",
                include_str!("../../templates/console/base.html.j2"),
            ),
            (
                "login.html.j2",
                include_str!("../../templates/console/login.html.j2"),
            ),
            (
                "index.html.j2",
                include_str!("../../templates/console/index.html.j2"),
            ),
            (
                "delivery.html.j2",
                include_str!("../../templates/console/delivery.html.j2"),
            ),
            (
                "withdraw.html.j2",
                include_str!("../../templates/console/withdraw.html.j2"),
            ),
            (
                "health.html.j2",
                include_str!("../../templates/console/health.html.j2"),
            ),
            (
                "report.html.j2",
                include_str!("../../templates/console/report.html.j2"),
            ),
            (
                "error.html.j2",
                include_str!("../../templates/console/error.html.j2"),
            ),
        ] {
            env.add_template(name, src)
                .expect("console templates are checked by the tests");
        }
        env
    })
}

fn render(name: &str, ctx: minijinja::Value) -> Result<Html<String>, ConsoleError> {
    env()
        .get_template(name)
        .and_then(|t| t.render(ctx))
        .map(Html)
        .map_err(|e| {
            ConsoleError::Internal(anyhow::Error::new(e).context(format!("rendering {name}")))
        })
}

/// What the operator sees when something is refused or broken: an HTML page in Chinese.
#[derive(Debug)]
pub enum ConsoleError {
    NotSignedIn,
    BadCsrf,
    Forbidden(String),
    NotFound(String),
    BadRequest(String),
    Internal(anyhow::Error),
}

impl From<StoreError> for ConsoleError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(m) => ConsoleError::NotFound(m),
            StoreError::Conflict(m) => ConsoleError::BadRequest(m),
            StoreError::Other(e) => ConsoleError::Internal(e),
        }
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let (status, title, message) = match self {
            ConsoleError::NotSignedIn => return Redirect::to("/console/login").into_response(),
            ConsoleError::BadCsrf => (
                StatusCode::FORBIDDEN,
                "操作被拒绝",
                "页面已过期或请求来源不明（缺少有效的安全令牌）。请返回、刷新页面后再试。"
                    .to_string(),
            ),
            ConsoleError::Forbidden(m) => (StatusCode::FORBIDDEN, "没有权限", m),
            ConsoleError::NotFound(m) => (StatusCode::NOT_FOUND, "找不到", m),
            ConsoleError::BadRequest(m) => (StatusCode::BAD_REQUEST, "请求有误", m),
            ConsoleError::Internal(e) => {
                tracing::error!(error.message = %e, error.cause_chain = ?e, "console request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "服务器内部错误",
                    "处理时出错，详情已写入日志。请稍后再试或联系管理员。".to_string(),
                )
            }
        };
        let body = env()
            .get_template("error.html.j2")
            .and_then(|t| t.render(context! { title, message }))
            .unwrap_or_else(|_| format!("{title}：{message}"));
        (status, Html(body)).into_response()
    }
}

/// The operator shown in the page header (with the department when it is not the
/// default one), and the token for its forms.
fn who(s: &Session) -> minijinja::Value {
    let department =
        (s.department != crate::store::DEFAULT_DEPARTMENT).then(|| s.department.clone());
    context! {
        name => s.operator.clone(),
        role => s.role.label(),
        department,
        can_withdraw => s.role.can_withdraw(),
        csrf => s.csrf_token.clone(),
    }
}

/// The department the signed-in operator works for: every page shows its items only.
fn tenant(state: &AppState, session: &Session) -> Result<Arc<Tenant>, ConsoleError> {
    state
        .tenants
        .get(&session.department)
        .cloned()
        .ok_or_else(|| {
            ConsoleError::NotFound(format!(
                "账号 {} 属于部门 {}，该部门不在当前配置中",
                session.operator, session.department
            ))
        })
}

async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        CSS,
    )
}

#[derive(Debug, Default, Deserialize)]
struct LoginQuery {
    error: Option<String>,
}

async fn login_page(Query(q): Query<LoginQuery>) -> Result<Html<String>, ConsoleError> {
    render("login.html.j2", context! { error => q.error, name => "" })
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
}

async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Result<Response, ConsoleError> {
    let cfg = &state.ledger.settings.console;
    let now = Utc::now();
    match auth::sign_in(state.ledger.store.as_ref(), cfg, &f.name, &f.password, now).await? {
        Ok(s) => Ok((
            [(
                header::SET_COOKIE,
                auth::session_cookie(Some(&s.session_id), cfg, &headers),
            )],
            Redirect::to("/console"),
        )
            .into_response()),
        Err(refused) => {
            let error = match refused {
                SignInRefused::Wrong => "用户名或密码错误".to_string(),
                SignInRefused::Locked(until) => format!(
                    "密码错误次数过多，账号已锁定，请于 {} 后再试",
                    views::china_time(until)
                ),
            };
            let page = render("login.html.j2", context! { error, name => f.name })?;
            Ok((StatusCode::UNAUTHORIZED, page).into_response())
        }
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn logout(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Result<Response, ConsoleError> {
    session.check_csrf(&f.csrf)?;
    session.sign_out(state.ledger.store.as_ref()).await?;
    let cfg = &state.ledger.settings.console;
    Ok((
        [(
            header::SET_COOKIE,
            auth::session_cookie(None, cfg, &headers),
        )],
        Redirect::to("/console/login"),
    )
        .into_response())
}

#[derive(Debug, Default, Deserialize)]
struct Flash {
    /// A short notice after an action (shown once, from the redirect's query).
    notice: Option<String>,
}

async fn index(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<views::ListQuery>,
    Query(flash): Query<Flash>,
) -> Result<Html<String>, ConsoleError> {
    let t = tenant(&state, &session)?;
    let list = views::day_list(&t.ledger, &q, Utc::now())
        .await
        .map_err(ConsoleError::BadRequest)?;
    render(
        "index.html.j2",
        context! { who => who(&session), list, notice => flash.notice, page => "index" },
    )
}

async fn delivery(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<i64>,
    Query(flash): Query<Flash>,
) -> Result<Html<String>, ConsoleError> {
    let t = tenant(&state, &session)?;
    let d = views::delivery_page(&t.ledger, id).await?;
    render(
        "delivery.html.j2",
        context! { who => who(&session), d, notice => flash.notice, page => "delivery" },
    )
}

/// The notice shown after a retry, in words.
fn retry_notice(results: &[RetryResult]) -> String {
    let scheduled = results
        .iter()
        .filter(|r| matches!(r, RetryResult::Scheduled { .. }))
        .count();
    let refused: Vec<String> = results
        .iter()
        .filter_map(|r| match r {
            RetryResult::Refused { id, reason } => Some(format!("投递 {id}：{reason}")),
            RetryResult::Scheduled { .. } => None,
        })
        .collect();
    match (scheduled, refused.is_empty()) {
        (0, true) => "没有需要重试的投递".to_string(),
        (n, true) => format!("已安排重试 {n} 个投递，稍后刷新查看结果"),
        (n, false) => format!("已安排重试 {n} 个；未重试：{}", refused.join("；")),
    }
}

fn with_notice(path: &str, notice: &str) -> Redirect {
    let q: String = url_encode(notice);
    Redirect::to(&format!("{path}?notice={q}"))
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn retry_one(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<i64>,
    Form(f): Form<CsrfForm>,
) -> Result<Redirect, ConsoleError> {
    session.check_csrf(&f.csrf)?;
    let t = tenant(&state, &session)?;
    let results = t
        .ledger
        .retry_now(&[id], &format!("console:{}", session.operator))
        .await?;
    Ok(with_notice(
        &format!("/console/deliveries/{id}"),
        &retry_notice(&results),
    ))
}

async fn retry_channel(
    State(state): State<AppState>,
    session: Session,
    Path(channel): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Result<Redirect, ConsoleError> {
    session.check_csrf(&f.csrf)?;
    let t = tenant(&state, &session)?;
    if !t.ledger.settings.channels.channels.contains_key(&channel) {
        return Err(ConsoleError::NotFound(format!("没有渠道 {channel}")));
    }
    let results = t
        .ledger
        .retry_failed(Some(&channel), &format!("console:{}", session.operator))
        .await?;
    Ok(with_notice(
        "/console/health",
        &format!("{channel}：{}", retry_notice(&results)),
    ))
}

async fn withdraw_confirm(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> Result<Html<String>, ConsoleError> {
    session.require_withdraw_right()?;
    let t = tenant(&state, &session)?;
    let d = t
        .ledger
        .store
        .get_disclosure(t.ledger.department(), &id, None)
        .await?;
    render(
        "withdraw.html.j2",
        context! {
            who => who(&session),
            page => "withdraw",
            disclosure_id => d.disclosure_id,
            title => d.title,
            revision => d.revision,
            withdrawn => d.withdrawn_at.is_some(),
        },
    )
}

#[derive(Deserialize)]
struct WithdrawForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reason: String,
}

async fn withdraw(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    Form(f): Form<WithdrawForm>,
) -> Result<Redirect, ConsoleError> {
    session.check_csrf(&f.csrf)?;
    session.require_withdraw_right()?;
    let reason = Some(f.reason.trim()).filter(|r| !r.is_empty());
    let t = tenant(&state, &session)?;
    let r = t
        .ledger
        .withdraw(&id, &format!("console:{}", session.operator), reason)
        .await?;
    let notice = if r.withdrawn_now {
        format!(
            "已撤回 {id}：取消未发出的投递 {} 个，向 {} 个渠道发出撤回",
            r.cancelled.len(),
            r.delivery_ids.len()
        )
    } else {
        format!("{id} 此前已撤回")
    };
    Ok(with_notice("/console", &notice))
}

async fn health(
    State(state): State<AppState>,
    session: Session,
    Query(flash): Query<Flash>,
) -> Result<Html<String>, ConsoleError> {
    let t = tenant(&state, &session)?;
    let h = views::health(&t.ledger, &t.screens, Utc::now()).await?;
    render(
        "health.html.j2",
        context! { who => who(&session), h, notice => flash.notice, page => "health" },
    )
}

#[derive(Debug, Deserialize)]
struct ReportQuery {
    year: Option<i32>,
    format: Option<String>,
}

async fn build_report(ledger: &Ledger, year: i32) -> Result<report::YearReport, ConsoleError> {
    let groups = ledger.store.published_groups(ledger.department()).await?;
    let calendar = ledger.settings.calendar();
    Ok(report::build(&ledger.settings, &groups, &calendar, year))
}

fn year_of(q: &ReportQuery) -> Result<i32, ConsoleError> {
    let year = q.year.unwrap_or_else(|| views::this_year(Utc::now()));
    if (2000..=2100).contains(&year) {
        Ok(year)
    } else {
        Err(ConsoleError::BadRequest(format!(
            "年份 {year} 不在 2000–2100 之间"
        )))
    }
}

#[derive(Serialize)]
struct YearOption {
    year: i32,
    selected: bool,
}

async fn report_page(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<ReportQuery>,
) -> Result<Html<String>, ConsoleError> {
    let year = year_of(&q)?;
    let t = tenant(&state, &session)?;
    let r = build_report(&t.ledger, year).await?;
    let this = views::this_year(Utc::now());
    let years: Vec<YearOption> = (2008..=this)
        .rev()
        .map(|y| YearOption {
            year: y,
            selected: y == year,
        })
        .collect();
    render(
        "report.html.j2",
        context! { who => who(&session), r, years, page => "report" },
    )
}

async fn report_download(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<ReportQuery>,
) -> Result<Response, ConsoleError> {
    let year = year_of(&q)?;
    let t = tenant(&state, &session)?;
    // The whole annual report (the layout of that year, the clerk's applications file when
    // there is one), as the CLI's `report` gives it.
    let calendar = t.ledger.settings.calendar();
    let r = crate::annual::generate(
        &t.ledger.settings,
        t.ledger.store.as_ref(),
        &calendar,
        year,
        None,
        None,
    )
    .await
    .map_err(|e| ConsoleError::BadRequest(format!("{e:#}")))?;
    let (ctype, ext, body): (&str, &str, Vec<u8>) = match q.format.as_deref().unwrap_or("csv") {
        // A BOM so that Excel opens the UTF-8 CSV with the Chinese intact.
        "csv" => (
            "text/csv; charset=utf-8",
            "csv",
            format!("\u{feff}{}", crate::annual::to_csv(&r)).into_bytes(),
        ),
        "json" => (
            "application/json; charset=utf-8",
            "json",
            crate::annual::to_json(&r).into_bytes(),
        ),
        "xlsx" => (
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "xlsx",
            crate::annual::to_xlsx(&r).map_err(ConsoleError::Internal)?,
        ),
        other => {
            return Err(ConsoleError::BadRequest(format!(
                "不支持的下载格式 {other:?}：可选 csv、xlsx 或 json"
            )))
        }
    };
    Ok((
        [
            (header::CONTENT_TYPE, ctype.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"gongkai-report-{year}.{ext}\""),
            ),
        ],
        body,
    )
        .into_response())
}
