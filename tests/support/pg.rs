//! A fresh PostgreSQL database per test, created on the server named by
//! `GONGKAI_TEST_DATABASE_URL` and dropped afterwards. Shared by the store suite, the API
//! tests and the benchmark (`#[path]`-included; it is not a test target of its own).
//!
//! Without the variable the PostgreSQL tests pass without running and say so once per
//! test binary; with it they print a marker line that `.ci/run` looks for. Both lines go
//! straight to stderr, past the test harness's output capture.

#![allow(dead_code)]

use std::io::Write as _;
use std::sync::Once;

use sqlx::{Connection as _, Executor as _, PgConnection};

pub const ENV: &str = "GONGKAI_TEST_DATABASE_URL";
/// Printed when PostgreSQL tests ran (`.ci/run` fails without it).
pub const RAN_MARKER: &str = "gongkai: PostgreSQL tests ran";

static NOTE: Once = Once::new();

/// The server URL, if PostgreSQL tests are to run.
pub fn server_url() -> Option<String> {
    match std::env::var(ENV) {
        Ok(url) if !url.trim().is_empty() => {
            NOTE.call_once(|| {
                let _ = writeln!(
                    std::io::stderr(),
                    "{RAN_MARKER} against {url} (a fresh database per test)"
                );
            });
            Some(url)
        }
        _ => {
            NOTE.call_once(|| {
                let _ = writeln!(
                    std::io::stderr(),
                    "gongkai: PostgreSQL tests SKIPPED ({ENV} is not set); to run them: \
                     {ENV}=postgres://postgres@127.0.0.1:5432/test cargo test"
                );
            });
            None
        }
    }
}

/// A database of its own on the test server; dropped (with its connections) on drop.
pub struct TestDatabase {
    /// `postgres://.../<fresh name>`, for `gongkai::store::connect` or `database_url`.
    pub url: String,
    name: String,
    server_url: String,
}

impl TestDatabase {
    /// `None` when `GONGKAI_TEST_DATABASE_URL` is not set; panics when it is set but the
    /// server cannot be used (a misconfigured CI must fail, not skip).
    pub async fn create() -> Option<TestDatabase> {
        let server_url = server_url()?;
        let name = format!("gongkai_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = PgConnection::connect(&server_url)
            .await
            .unwrap_or_else(|e| panic!("{ENV}={server_url}: cannot connect to PostgreSQL: {e}"));
        conn.execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .unwrap_or_else(|e| panic!("{ENV}={server_url}: cannot create database {name}: {e}"));
        let _ = conn.close().await;
        Some(TestDatabase {
            url: with_database(&server_url, &name),
            name,
            server_url,
        })
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let server_url = self.server_url.clone();
        let name = self.name.clone();
        // Drop runs inside the test's runtime (or while unwinding): use a runtime of its own.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if let Ok(mut conn) = PgConnection::connect(&server_url).await {
                    let _ = conn
                        .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                        .await;
                    let _ = conn.close().await;
                }
            });
        })
        .join();
    }
}

/// The server URL with its database replaced by `name` (query parameters kept).
pub fn with_database(server_url: &str, name: &str) -> String {
    let (head, query) = match server_url.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (server_url, None),
    };
    let scheme_end = head.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match head[scheme_end..].find('/') {
        Some(slash) => &head[..scheme_end + slash],
        None => head,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}
