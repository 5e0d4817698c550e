//! Service hall LED screens (domain.md §5). Owns: one [`Screen`] per `kind = "led"` channel,
//! holding that screen's feed and pushing it to the enabled outputs (file sink, the BX-5K/6K
//! controller; HTTP pull reads the feed from here), the periodic refresh (expiry and the
//! controller keep-alive, which is also the re-push after a power cut), and rebuilding every
//! feed from the ledger at start-up. The feed is not stored separately: it is what the
//! delivered LED deliveries say (payload = the text, `delivered_at` = when it went up), so
//! it survives restarts without a table of its own.
//!
//! `channel::led` is the thin `Channel` face of a screen; the store is touched only by
//! [`restore`], which the daemon calls, never by a channel.

pub mod bx;
pub mod feed;
pub mod text;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, FixedOffset, NaiveTime, Utc};
use serde::Serialize;
use tokio::sync::watch;

use crate::calendar::Calendar;
use crate::channel::{DeliveryError, DeliveryRequest, Receipt, Sent};
use crate::config::{LedConfig, LedMode, Settings};
use crate::domain::{Action, DeliveryStatus};
use crate::store::{DeliveryFilter, Store, StoredDisclosure};
use feed::{displayed_until, Feed, FeedItem};
use text::LedEncoding;

/// Every configured screen by channel name.
pub type Screens = BTreeMap<String, Arc<Screen>>;

/// "07:30-18:00" -> (start, end), China time.
pub fn parse_on_hours(s: &str) -> Option<(NaiveTime, NaiveTime)> {
    let (a, b) = s.split_once('-')?;
    let a = NaiveTime::parse_from_str(a.trim(), "%H:%M").ok()?;
    let b = NaiveTime::parse_from_str(b.trim(), "%H:%M").ok()?;
    (a != b).then_some((a, b))
}

fn china(t: DateTime<Utc>) -> DateTime<FixedOffset> {
    t.with_timezone(&FixedOffset::east_opt(8 * 3600).expect("UTC+8 is a valid offset"))
}

/// What the operator sees about a screen's controller.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ControllerStatus {
    pub last_push_at: Option<DateTime<Utc>>,
    pub last_push_ok: Option<bool>,
    pub last_error: Option<String>,
    pub consecutive_failures: u32,
}

pub struct Screen {
    name: String,
    /// The department whose channel this screen is (its `displayed_until` rows).
    department: String,
    cfg: LedConfig,
    /// Counts the 公示期 in Chinese working days.
    calendar: Arc<Calendar>,
    feed: tokio::sync::Mutex<Feed>,
    controller: Mutex<ControllerStatus>,
    /// Items that came down (expired, withdrawn, replaced by a newer revision) and are not
    /// yet written to the ledger as `displayed_until`; the refresh loop drains it.
    came_down: Mutex<Vec<CameDown>>,
    /// Where the next refresh starts in the feed, so long feeds take turns on the controller.
    rotation: std::sync::atomic::AtomicUsize,
}

/// One item that left the screen: the 公示 evidence the ledger keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameDown {
    pub disclosure_id: String,
    pub revision: i64,
    pub at: DateTime<Utc>,
}

impl Screen {
    /// No I/O: the feed starts empty until [`restore`] fills it.
    pub fn new(name: &str, cfg: LedConfig, calendar: Arc<Calendar>) -> Screen {
        Screen {
            name: name.to_string(),
            department: crate::store::DEFAULT_DEPARTMENT.to_string(),
            cfg,
            calendar,
            feed: tokio::sync::Mutex::new(Feed::default()),
            controller: Mutex::new(ControllerStatus::default()),
            came_down: Mutex::new(Vec::new()),
            rotation: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// The same screen as a channel of `department`.
    pub fn for_department(mut self, department: &str) -> Screen {
        self.department = department.to_string();
        self
    }

    /// The department whose channel this screen is.
    pub fn department(&self) -> &str {
        &self.department
    }

    fn note_came_down(&self, item: &FeedItem, at: DateTime<Utc>) {
        self.came_down
            .lock()
            .expect("came_down lock")
            .push(CameDown {
                disclosure_id: item.disclosure_id.clone(),
                revision: item.revision,
                at,
            });
    }

    /// Takes the items that came down since the last call.
    pub fn take_came_down(&self) -> Vec<CameDown> {
        std::mem::take(&mut *self.came_down.lock().expect("came_down lock"))
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn config(&self) -> &LedConfig {
        &self.cfg
    }

    pub fn encoding(&self) -> LedEncoding {
        self.cfg.encoding
    }

    /// Display units per line: a 汉字 is `font_px` wide and counts 2.
    pub fn units_per_line(&self) -> usize {
        (self.cfg.width_px / (self.cfg.font_px / 2)) as usize
    }

    pub fn controller_status(&self) -> ControllerStatus {
        self.controller.lock().expect("status lock").clone()
    }

    /// Cleans rendered text and checks that this screen can show it: not empty, not longer
    /// than `max_item_units`, every character in the font, within one controller area.
    /// The error says what to do (ask for an approved `led_text`).
    pub fn prepare(&self, rendered: &[u8]) -> Result<String, String> {
        let raw = std::str::from_utf8(rendered)
            .map_err(|_| "模板生成的 LED 文字不是 UTF-8".to_string())?;
        let t = text::clean(raw);
        if t.is_empty() {
            return Err("LED 文字为空（模板没有生成任何文字）".into());
        }
        let u = text::units(&t);
        if u > self.cfg.max_item_units {
            return Err(format!(
                "LED 文字“{t}”宽 {u} 个单位（汉字计 2），超过屏幕 {} 的上限 {}（max_item_units）；不截断审核过的文字，请提供更短的经审核的 led_text",
                self.name, self.cfg.max_item_units
            ));
        }
        let bytes = text::encode(&t, self.cfg.encoding)
            .map_err(|e| format!("LED 屏 {}：{e}", self.name))?;
        if bytes.len() + 16 > self.cfg.max_bytes_per_area {
            return Err(format!(
                "LED 文字编码后 {} 字节，超过屏幕 {} 一个显示区的上限 {} 字节；请提供更短的 led_text",
                bytes.len(),
                self.name,
                self.cfg.max_bytes_per_area
            ));
        }
        Ok(t)
    }

    /// The pages (page mode) or the single loop line (scroll mode) of the current feed.
    pub fn layout(&self, feed: &Feed) -> Vec<Vec<String>> {
        match self.cfg.mode {
            LedMode::Scroll => {
                let line: Vec<&str> = feed.items().iter().map(|i| i.text.as_str()).collect();
                if line.is_empty() {
                    Vec::new()
                } else {
                    vec![vec![line.join("　　")]]
                }
            }
            LedMode::Page => feed
                .items()
                .iter()
                .flat_map(|i| {
                    text::paginate(&i.text, self.units_per_line(), self.cfg.lines as usize)
                })
                .collect(),
        }
    }

    /// The feed as shown now (expired items dropped).
    pub async fn current(&self, now: DateTime<Utc>) -> Feed {
        let mut f = self.feed.lock().await.clone();
        f.expire(now);
        f
    }

    /// Puts items back after a restart (no output is written; the first refresh does that).
    pub async fn restore(&self, items: Vec<FeedItem>) {
        let mut f = self.feed.lock().await;
        for i in items {
            let _ = f.upsert(i);
        }
    }

    /// One delivery: the disclosure's item goes up (or is replaced), or comes down. The
    /// outputs are written before the feed in memory changes, so a failed delivery leaves
    /// the feed as it was and the retry starts from the same place.
    pub async fn apply(
        &self,
        req: &DeliveryRequest,
        now: DateTime<Utc>,
    ) -> Result<Sent, DeliveryError> {
        let who = format!("公开件 {} 第 {} 版", req.disclosure_id, req.revision);
        let mut feed = self.feed.lock().await;
        let mut next = feed.clone();
        // What this change takes off the screen, written down once the outputs show it.
        let mut leaving: Vec<FeedItem> = Vec::new();
        let detail = match req.action {
            Action::Publish => {
                let text = self.prepare(&req.payload).map_err(|e| {
                    DeliveryError::permanent(format!("{who}，LED 屏 {}：{e}", self.name))
                })?;
                let item = FeedItem {
                    disclosure_id: req.disclosure_id.clone(),
                    revision: req.revision,
                    text,
                    shown_from: now,
                    displayed_until: displayed_until(
                        now,
                        self.cfg.display_days,
                        req.display_min_working_days,
                        &self.calendar,
                    ),
                };
                let until = item.displayed_until;
                match next.upsert(item) {
                    Ok(replaced) => {
                        leaving.extend(replaced);
                        format!(
                            "已上屏 {}，显示至 {}",
                            self.name,
                            china(until).format("%Y-%m-%d %H:%M")
                        )
                    }
                    Err(newer) => {
                        return Ok(Sent::Done(Receipt {
                            remote_id: Some(self.remote_id(&req.disclosure_id)),
                            detail: Some(format!(
                                "屏幕 {} 已显示更新的第 {} 版，本版不再上屏",
                                self.name, newer.revision
                            )),
                            ..Receipt::default()
                        }))
                    }
                }
            }
            Action::Withdraw => match next.remove(&req.disclosure_id) {
                Some(item) => {
                    leaving.push(item);
                    format!(
                        "已从屏幕 {} 撤下，displayed_until = {}",
                        self.name,
                        china(now).format("%Y-%m-%d %H:%M:%S")
                    )
                }
                None => format!("屏幕 {} 上已没有此条（已到期或从未上屏）", self.name),
            },
        };
        let expired = next.expire(now);
        // A controller that is switched off (outside on_hours) cannot acknowledge: the
        // delivery waits for the screen to come on rather than count as shown.
        // It is a wait, not a failure: no retry budget is used.
        if let (Some(_), Some(wait)) = (&self.cfg.bx, self.until_on(now)) {
            return Ok(Sent::Pending {
                check_after: wait,
                detail: format!(
                    "{who}，LED 屏 {} 在开屏时间（{}）以外，开屏后再推送",
                    self.name,
                    self.cfg.on_hours.as_deref().unwrap_or_default()
                ),
            });
        }
        self.write_outputs(&next, now, false)
            .await
            .map_err(|e| DeliveryError {
                detail: format!("{who}，{}", e.detail),
                ..e
            })?;
        *feed = next;
        for item in leaving {
            self.note_came_down(&item, now);
        }
        for item in expired {
            let at = item.displayed_until;
            self.note_came_down(&item, at);
        }
        Ok(Sent::Done(Receipt {
            remote_id: Some(self.remote_id(&req.disclosure_id)),
            detail: Some(detail),
            ..Receipt::default()
        }))
    }

    fn remote_id(&self, disclosure_id: &str) -> String {
        format!("{}/{}", self.name, disclosure_id)
    }

    /// The periodic refresh: drops expired items and writes every output again (the
    /// controller push is the keep-alive and restores the text after a power cut). Failures
    /// are recorded in the controller status and logged, never returned: a dark screen must
    /// not stop anything else.
    pub async fn refresh(&self, now: DateTime<Utc>) -> Vec<FeedItem> {
        let mut feed = self.feed.lock().await;
        let expired = feed.expire(now);
        for i in &expired {
            tracing::info!(screen = %self.name, disclosure_id = %i.disclosure_id, displayed_until = %i.displayed_until, "LED 条目到期下屏");
            self.note_came_down(i, i.displayed_until);
        }
        if let Err(e) = self.write_outputs(&feed, now, true).await {
            tracing::warn!(screen = %self.name, cause = %e.detail, "LED 屏刷新失败，下次刷新再试");
        }
        expired
    }

    /// `rotate`: a refresh shows the items after the ones shown last, so a feed longer than
    /// one controller area goes round over successive refreshes; a delivery starts at the
    /// newest item, so what was just published is on the screen at once.
    async fn write_outputs(
        &self,
        feed: &Feed,
        now: DateTime<Utc>,
        rotate: bool,
    ) -> Result<(), DeliveryError> {
        if let Some(bx) = &self.cfg.bx {
            if self.is_on(now) {
                let start = if rotate {
                    self.rotation.load(std::sync::atomic::Ordering::Relaxed)
                } else {
                    0
                };
                let (frame, shown) = self.bx_frame(feed, start);
                self.rotation
                    .store(start + shown, std::sync::atomic::Ordering::Relaxed);
                // PING and the clock first (domain.md §5.4), then the area, on one connection.
                let session = [
                    bx::Frame::to(bx.screen_address, bx::ping()),
                    bx::Frame::to(bx.screen_address, bx::time_sync(china(now).naive_local())),
                    frame,
                ];
                let res = bx::push_all(&bx.address, &session, bx.timeout).await;
                let mut st = self.controller.lock().expect("status lock");
                st.last_push_at = Some(now);
                st.last_push_ok = Some(res.is_ok());
                match res {
                    Ok(()) => {
                        if st.consecutive_failures > 0 {
                            tracing::info!(screen = %self.name, "LED 控制卡恢复应答，已重新推送");
                        }
                        st.consecutive_failures = 0;
                        st.last_error = None;
                    }
                    Err(e) => {
                        st.consecutive_failures += 1;
                        st.last_error = Some(e.to_string());
                        let detail = format!("LED 屏 {}：{e}", self.name);
                        return Err(if e.is_permanent() {
                            DeliveryError::permanent(detail)
                        } else {
                            DeliveryError::transient(detail)
                        });
                    }
                }
            }
        }
        if let Some(sink) = &self.cfg.file_sink {
            write_feed_files(
                &sink.dir,
                &feed.to_text(self.cfg.encoding),
                &feed.to_json(&self.name, self.cfg.encoding),
            )
            .map_err(|e| {
                DeliveryError::transient(format!(
                    "LED 屏 {}：写入 {} 失败：{e}",
                    self.name,
                    sink.dir.display()
                ))
            })?;
        }
        Ok(())
    }

    fn is_on(&self, now: DateTime<Utc>) -> bool {
        self.until_on(now).is_none()
    }

    /// `None` while the screen is on (or has no on_hours); else how long until it comes on.
    fn until_on(&self, now: DateTime<Utc>) -> Option<std::time::Duration> {
        let (from, to) = self.cfg.on_hours.as_deref().and_then(parse_on_hours)?;
        let t = china(now).time();
        let on = if from < to {
            from <= t && t < to
        } else {
            t >= from || t < to
        };
        if on {
            return None;
        }
        let wait = (from - t).num_seconds().rem_euclid(24 * 3600);
        Some(std::time::Duration::from_secs(wait as u64))
    }

    /// The dynamic area frame showing `feed` from item `start` (modulo the feed's length)
    /// on, as many items as one area holds, wrapping round; also how many it holds.
    pub fn bx_frame(&self, feed: &Feed, start: usize) -> (bx::Frame, usize) {
        let bx = self
            .cfg
            .bx
            .as_ref()
            .expect("bx_frame only for screens with [bx]");
        let font = match self.cfg.font_px {
            24 => "\\FO001",
            32 => "\\FO002",
            _ => "\\FO000",
        };
        let colour = match self.cfg.colour.as_str() {
            "green" => "\\C2",
            "yellow" => "\\C3",
            _ => "\\C1",
        };
        let mut data = format!("{font}{colour}").into_bytes();
        let (sep, newline): (&str, &str) = match self.cfg.mode {
            LedMode::Scroll => ("　　", ""),
            LedMode::Page => ("\\n", "\\n"),
        };
        let mut first = true;
        let items = feed.items();
        let mut count = 0;
        let order = (0..items.len()).map(|k| &items[(start + k) % items.len().max(1)]);
        for item in order {
            let shown = match self.cfg.mode {
                LedMode::Scroll => item.text.clone(),
                LedMode::Page => text::wrap(&item.text, self.units_per_line()).join(newline),
            };
            let Ok(mut bytes) = text::encode(&shown, self.cfg.encoding) else {
                continue;
            };
            if !first {
                let mut s = text::encode(sep, self.cfg.encoding).unwrap_or_default();
                s.append(&mut bytes);
                bytes = s;
            }
            if data.len() + bytes.len() > self.cfg.max_bytes_per_area {
                break; // the rest comes at the next refreshes (and is in the file and HTTP feed)
            }
            data.extend(bytes);
            first = false;
            count += 1;
        }
        let areas = if feed.items().is_empty() {
            Vec::new()
        } else {
            vec![bx::DynamicArea {
                id: bx.area_id,
                x: 0,
                y: 0,
                width: self.cfg.width_px as u16,
                height: self.cfg.height_px as u16,
                run_mode: bx::RunMode::LoopThenDelete as u8,
                timeout: bx.area_timeout.as_secs().min(65535) as u16,
                display_mode: match self.cfg.mode {
                    LedMode::Scroll => 3,
                    LedMode::Page => 1,
                },
                speed: bx.speed,
                stay_time: bx.stay_seconds,
                single_line: self.cfg.lines <= 1,
                new_line: 1,
                text: data,
            }]
        };
        (
            bx::Frame::to(
                bx.screen_address,
                bx::dynamic_area_command(&[bx.area_id], &areas),
            ),
            count,
        )
    }
}

/// Writes `feed.txt` and `feed.json` into `dir`, each to a temporary file first and then
/// renamed over the old one, so a player reading at any moment sees a whole file.
pub fn write_feed_files(dir: &Path, text: &[u8], json: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (name, content) in [("feed.txt", text), ("feed.json", json)] {
        let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(content)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, dir.join(name))?;
    }
    Ok(())
}

/// The minimum 公示期 of a stored disclosure: its own `display_min_working_days`, else its
/// category's.
pub fn min_display_working_days(settings: &Settings, d: &StoredDisclosure) -> Option<u32> {
    serde_json::from_str::<serde_json::Value>(&d.json)
        .ok()
        .and_then(|v| v.get("display_min_working_days").and_then(|x| x.as_u64()))
        .map(|n| n as u32)
        .or_else(|| {
            settings
                .category(&d.category)
                .and_then(|c| c.display_min_working_days)
        })
}

/// Rebuilds every screen's feed from the ledger: per disclosure, the highest delivered
/// publish revision, unless the disclosure was withdrawn; it went up at its `delivered_at`.
pub async fn restore(
    store: &dyn Store,
    settings: &Settings,
    screens: &Screens,
) -> anyhow::Result<()> {
    for screen in screens.values() {
        let rows = store
            .list_deliveries(
                &settings.department.code,
                &DeliveryFilter {
                    statuses: vec![DeliveryStatus::Delivered],
                    channel: Some(screen.name.clone()),
                    ..DeliveryFilter::default()
                },
            )
            .await?;
        let mut latest: BTreeMap<&str, &crate::store::DeliveryRow> = BTreeMap::new();
        for r in rows.iter().filter(|r| r.action == Action::Publish) {
            let e = latest.entry(r.disclosure_id.as_str()).or_insert(r);
            if r.revision > e.revision {
                *e = r;
            }
        }
        let mut items = Vec::new();
        for (id, row) in latest {
            let d = store
                .get_disclosure(&settings.department.code, id, Some(row.revision))
                .await?;
            if d.withdrawn_at.is_some() {
                continue;
            }
            // It came down before the restart: nothing to put back.
            if row.displayed_until.is_some() {
                continue;
            }
            let (Some(payload), Some(at)) = (&row.payload, row.delivered_at) else {
                continue;
            };
            let Ok(text) = screen.prepare(payload) else {
                continue;
            };
            items.push(FeedItem {
                disclosure_id: id.to_string(),
                revision: row.revision,
                text,
                shown_from: at,
                displayed_until: displayed_until(
                    at,
                    screen.cfg.display_days,
                    min_display_working_days(settings, &d),
                    &screen.calendar,
                ),
            });
        }
        let n = items.len();
        screen.restore(items).await;
        tracing::info!(screen = %screen.name, items = n, "LED 屏内容已从台账恢复");
    }
    Ok(())
}

/// Refreshes every screen every `refresh` until `shutdown` turns true, and writes down in
/// the ledger when items came down (`displayed_until`), also once more on the way out.
pub async fn run_refresh(screens: Screens, store: Arc<dyn Store>, shutdown: watch::Receiver<bool>) {
    let mut tasks = tokio::task::JoinSet::new();
    for screen in screens.into_values() {
        let mut stop = shutdown.clone();
        let store = store.clone();
        tasks.spawn(async move {
            loop {
                screen.refresh(Utc::now()).await;
                record_came_down(&screen, store.as_ref()).await;
                tokio::select! {
                    _ = tokio::time::sleep(screen.cfg.refresh) => {}
                    _ = stop.wait_for(|s| *s) => break,
                }
            }
            record_came_down(&screen, store.as_ref()).await;
        });
    }
    while tasks.join_next().await.is_some() {}
}

/// Writes the screen's came-down items to the ledger; what fails stays queued for next time.
pub async fn record_came_down(screen: &Screen, store: &dyn Store) {
    let mut failed = Vec::new();
    for c in screen.take_came_down() {
        if let Err(e) = store
            .record_displayed_until(
                &screen.department,
                &screen.name,
                &c.disclosure_id,
                c.revision,
                c.at,
            )
            .await
        {
            tracing::warn!(screen = %screen.name, disclosure_id = %c.disclosure_id, cause = %e, "记录下屏时间失败，稍后重试");
            failed.push(c);
        }
    }
    if !failed.is_empty() {
        screen
            .came_down
            .lock()
            .expect("came_down lock")
            .extend(failed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reader_never_sees_half_a_feed_file() {
        let dir = tempfile::tempdir().unwrap();
        let versions: Vec<Vec<u8>> = (1..40usize)
            .map(|n| "【公开】低保资金发放公示\r\n".repeat(n * 20).into_bytes())
            .collect();
        write_feed_files(dir.path(), &versions[0], b"{}").unwrap();
        let path = dir.path().join("feed.txt");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = {
            let (stop, versions, path) = (stop.clone(), versions.clone(), path.clone());
            std::thread::spawn(move || {
                let mut reads = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let b = std::fs::read(&path).unwrap();
                    assert!(versions.contains(&b), "a partial file of {} bytes", b.len());
                    reads += 1;
                }
                reads
            })
        };
        for _ in 0..5 {
            for v in &versions {
                write_feed_files(dir.path(), v, b"{}").unwrap();
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(reader.join().unwrap() > 0);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn outside_on_hours_the_wait_runs_to_the_next_switch_on() {
        let cfg: LedConfig = toml::from_str(
            "width_px = 256\nheight_px = 16\nencoding = \"gb2312\"\non_hours = \"08:00-18:00\"\n",
        )
        .unwrap();
        let screen = Screen::new(
            "hall",
            cfg,
            std::sync::Arc::new(crate::calendar::Calendar::weekends_only()),
        );
        let at = |h, m| {
            chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 3, 2, h, m, 0).unwrap()
                - chrono::Duration::hours(8)
        };
        assert_eq!(screen.until_on(at(9, 0)), None);
        assert_eq!(
            screen.until_on(at(20, 30)),
            Some(std::time::Duration::from_secs((11 * 60 + 30) * 60))
        );
        assert_eq!(
            screen.until_on(at(7, 0)),
            Some(std::time::Duration::from_secs(3600))
        );
    }

    #[test]
    fn on_hours_parse_and_wrap_midnight() {
        assert!(parse_on_hours("07:30-18:00").is_some());
        assert!(parse_on_hours("7点-18点").is_none());
        assert!(parse_on_hours("22:00-06:00").is_some());
    }
}
