//! Prometheus metrics (issue 8): a small in-process registry of counters and histograms that
//! the worker, the WeChat token cache and (later) the WeChat callback increment, and
//! `render`, which writes the text exposition format (version 0.0.4) with the gauges read
//! from the store at scrape time. Served only on the admin listener (`[metrics] listen`).
//!
//! Hand-formatted rather than the `prometheus` or `metrics` crates: we need three counter
//! families and two histograms with fixed labels, the text format is small and stable, and
//! this keeps a global recorder (and its dependency tree) out of the tests, which run many
//! applications in one process.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, OnceLock};

use chrono::{DateTime, Utc};

use crate::store::{Store, StoreError};

/// Upper bounds (seconds) of the latency histograms' buckets.
const BUCKETS: [f64; 11] = [0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

#[derive(Debug, Clone, Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (i, le) in BUCKETS.iter().enumerate() {
            if seconds <= *le {
                self.counts[i] += 1;
            }
        }
        self.count += 1;
        self.sum += seconds;
    }
}

type Labels = Vec<(&'static str, String)>;

#[derive(Debug, Default)]
struct Inner {
    attempts: BTreeMap<Labels, Histogram>,
    callbacks: BTreeMap<Labels, Histogram>,
    token_refreshes: BTreeMap<Labels, u64>,
}

/// The process-wide registry. Counters only ever grow.
#[derive(Debug, Default)]
pub struct Registry {
    inner: Mutex<Inner>,
}

/// The registry every part of the daemon reports to.
pub fn global() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Registry::default)
}

impl Registry {
    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        // A panic while holding the lock leaves plain numbers behind: still usable.
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g)
    }

    /// One finished delivery attempt: its channel, outcome (`delivered`, `transient`, …) and
    /// how long it took.
    pub fn observe_attempt(&self, channel: &str, outcome: &str, seconds: f64) {
        let labels = vec![
            ("channel", channel.to_string()),
            ("outcome", outcome.to_string()),
        ];
        self.with(|i| i.attempts.entry(labels).or_default().observe(seconds));
    }

    /// One request to a WeChat callback URL, with the HTTP status answered.
    pub fn observe_callback(&self, channel: &str, status: u16, seconds: f64) {
        let labels = vec![
            ("channel", channel.to_string()),
            ("status", status.to_string()),
        ];
        self.with(|i| i.callbacks.entry(labels).or_default().observe(seconds));
    }

    /// One access_token refresh of a WeChat account (`ok` or `error`).
    pub fn count_token_refresh(&self, appid: &str, ok: bool) {
        let labels = vec![
            ("appid", appid.to_string()),
            ("result", if ok { "ok" } else { "error" }.to_string()),
        ];
        self.with(|i| *i.token_refreshes.entry(labels).or_default() += 1);
    }

    /// The exposition text: gauges from the store, then this registry's series.
    pub async fn render(
        &self,
        store: &dyn Store,
        now: DateTime<Utc>,
    ) -> Result<String, StoreError> {
        // Every department together: the series are per channel name.
        let counts = store.count_deliveries(None).await?;
        let due = store.count_due(now).await?;
        let mut out = String::new();
        header(
            &mut out,
            "gongkai_deliveries",
            "gauge",
            "Deliveries in the ledger by channel and status.",
        );
        for c in &counts {
            sample(
                &mut out,
                "gongkai_deliveries",
                &[
                    ("channel", c.channel.clone()),
                    ("status", c.status.as_str().to_string()),
                ],
                c.count as f64,
            );
        }
        header(
            &mut out,
            "gongkai_queue_depth",
            "gauge",
            "Deliveries due now and waiting for the worker.",
        );
        sample(&mut out, "gongkai_queue_depth", &[], due as f64);
        self.with(|i| {
            histogram(
                &mut out,
                "gongkai_attempt_duration_seconds",
                "Duration of delivery attempts by channel and outcome.",
                &i.attempts,
            );
            histogram(
                &mut out,
                "gongkai_callback_request_duration_seconds",
                "Requests to the WeChat callback by channel and answered status, and their latency.",
                &i.callbacks,
            );
            header(
                &mut out,
                "gongkai_wechat_token_refreshes_total",
                "counter",
                "WeChat access_token refreshes by account and result.",
            );
            for (labels, n) in &i.token_refreshes {
                sample(&mut out, "gongkai_wechat_token_refreshes_total", labels, *n as f64);
            }
        });
        Ok(out)
    }
}

/// Middleware on the API router: times every request under `/wechat/{channel}/…` (the WeChat
/// callback, whatever its routes become) and counts it by channel and answered status. A
/// name that is not a configured channel is counted as "unknown", so that made-up URLs
/// cannot grow the number of series.
pub async fn track_wechat_callbacks(
    axum::extract::State(state): axum::extract::State<crate::http::AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let Some(rest) = request.uri().path().strip_prefix("/wechat/") else {
        return next.run(request).await;
    };
    let segs: Vec<&str> = rest.split('/').collect();
    let known = |settings: &crate::config::Settings, name: &str| {
        settings.channels.channels.contains_key(name)
    };
    // `/wechat/{channel}/…` is the default department's; `/wechat/{department}` and
    // `/wechat/{department}/{channel}/callback` a department's, counted as
    // "department/channel".
    let channel = match segs.as_slice() {
        [dept] => match state.tenants.get(dept) {
            Some(t) if known(&t.ledger.settings, &t.wechat.default_channel) => {
                format!("{dept}/{}", t.wechat.default_channel)
            }
            _ => "unknown".to_string(),
        },
        [dept, ch, "callback"] => match state.tenants.get(dept) {
            Some(t) if known(&t.ledger.settings, ch) => format!("{dept}/{ch}"),
            _ => "unknown".to_string(),
        },
        [ch, ..] if known(&state.ledger.settings, ch) => ch.to_string(),
        _ => "unknown".to_string(),
    };
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    global().observe_callback(
        &channel,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn histogram(out: &mut String, name: &str, help: &str, series: &BTreeMap<Labels, Histogram>) {
    header(out, name, "histogram", help);
    for (labels, h) in series {
        for (i, le) in BUCKETS.iter().enumerate() {
            let mut l = labels.clone();
            l.push(("le", format_value(*le)));
            sample(out, &format!("{name}_bucket"), &l, h.counts[i] as f64);
        }
        let mut l = labels.clone();
        l.push(("le", "+Inf".to_string()));
        sample(out, &format!("{name}_bucket"), &l, h.count as f64);
        sample(out, &format!("{name}_sum"), labels, h.sum);
        sample(out, &format!("{name}_count"), labels, h.count as f64);
    }
}

fn sample(out: &mut String, name: &str, labels: &[(&'static str, String)], value: f64) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{k}=\"{}\"", escape(v));
        }
        out.push('}');
    }
    let _ = writeln!(out, " {}", format_value(value));
}

/// Label values escape backslash, double quote and newline (text format 0.0.4).
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn format_value(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_end_with_inf() {
        let mut series = BTreeMap::new();
        let mut h = Histogram::default();
        h.observe(0.2);
        h.observe(3.0);
        series.insert(vec![("channel", "gov_site".to_string())], h);
        let mut out = String::new();
        histogram(&mut out, "x", "help", &series);
        assert!(
            out.contains("x_bucket{channel=\"gov_site\",le=\"0.1\"} 0\n"),
            "{out}"
        );
        assert!(
            out.contains("x_bucket{channel=\"gov_site\",le=\"0.25\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("x_bucket{channel=\"gov_site\",le=\"5\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains("x_bucket{channel=\"gov_site\",le=\"+Inf\"} 2\n"),
            "{out}"
        );
        assert!(out.contains("x_sum{channel=\"gov_site\"} 3.2\n"), "{out}");
        assert!(out.contains("x_count{channel=\"gov_site\"} 2\n"), "{out}");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
