//! Shared by the benchmarks: the sandbox as a separate process (so that its cost is not
//! counted as ours), CPU and memory figures from /proc, and the benchmark disclosure.

#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

pub const SECRET: &str = "bench-secret";

/// The sandbox process; killed on drop.
pub struct Sandbox {
    child: Child,
    pub base: String,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Sandbox {
    /// Starts `gongkai sandbox` on a free loopback port with the website app `zpmzj` and
    /// waits until it answers.
    pub async fn start() -> anyhow::Result<Sandbox> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_gongkai"))
            .args([
                "--config",
                "/nonexistent/none.toml",
                "sandbox",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--app",
                &format!("zpmzj={SECRET}"),
            ])
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .spawn()?;
        let sandbox = Sandbox {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let client = reqwest::Client::new();
        let start = Instant::now();
        while client
            .get(format!("{}/_sandbox/state", sandbox.base))
            .send()
            .await
            .is_err()
        {
            anyhow::ensure!(
                start.elapsed() < Duration::from_secs(10),
                "sandbox did not start"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(sandbox)
    }

    /// The sandbox process's id (for its CPU time).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn gov_site_base(&self) -> String {
        format!("{}/gov_site", self.base)
    }

    pub async fn state(&self) -> anyhow::Result<serde_json::Value> {
        Ok(reqwest::get(format!("{}/_sandbox/state", self.base))
            .await?
            .json()
            .await?)
    }

    /// Adds a fault rule (`{"path": ..., "count": ..., "delay_ms": ...}`).
    pub async fn fault(&self, spec: serde_json::Value) -> anyhow::Result<()> {
        let r = reqwest::Client::new()
            .post(format!("{}/_sandbox/faults", self.base))
            .json(&spec)
            .send()
            .await?;
        anyhow::ensure!(
            r.status().is_success(),
            "fault refused: {}",
            r.text().await?
        );
        Ok(())
    }
}

/// (user + system CPU seconds, peak RSS in KiB) of a process (`self` or a pid), from /proc.
pub fn cpu_and_peak_rss(pid: &str) -> (f64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|x| x.parse().ok())
        .unwrap_or(0);
    (cpu_seconds(pid), hwm)
}

/// User + system CPU seconds of a process, from /proc/<pid>/stat.
pub fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses): utime is 14th, stime 15th.
    let after = stat.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = 100.0; // USER_HZ on Linux
    f.get(11).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0) / ticks
        + f.get(12).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0) / ticks
}

/// CPU seconds of every process with this command name (e.g. the PostgreSQL server).
pub fn cpu_seconds_of_command(comm: &str) -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    entries
        .flatten()
        .filter_map(|e| {
            let pid = e.file_name().to_string_lossy().to_string();
            pid.chars().all(|c| c.is_ascii_digit()).then_some(pid)
        })
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .map(|c| c.trim() == comm)
                .unwrap_or(false)
        })
        .map(|pid| cpu_seconds(&pid))
        .sum()
}

/// The benchmark disclosure number `i`, with the id `<prefix>-<i>`.
pub fn disclosure(prefix: &str, i: usize) -> Vec<u8> {
    let body =
        format!("<p>第{i}号公示：现将本季度城乡低保资金发放情况公示如下，公示期七个工作日。</p>");
    let review = hex::encode(Sha256::digest(body.as_bytes()));
    serde_json::to_vec(&serde_json::json!({
        "disclosure_id": format!("{prefix}-{i:06}"),
        "revision": 1,
        "title": format!("关于城乡低保资金发放情况的公示（第{i}号）"),
        "publisher": "漳平市民政局",
        "formed_date": "2017-04-03",
        "publish_date": "2017-04-07",
        "category": "mzfp",
        "body_html": body,
        "review": {"content_sha256": review, "steps": [
            {"role": "初审", "by": "u102", "at": "2017-04-05T09:12:00+08:00"},
            {"role": "终审", "by": "u007", "at": "2017-04-07T08:55:00+08:00"}]}
    }))
    .unwrap()
}
