//! The LED controller emulator: an Onbon BX-5K/6K font card on TCP, speaking the same frames
//! as `led::bx` (it unescapes, checks the CRC, parses the dynamic area command, ACKs or
//! NACKs with the protocol's error codes). It keeps what each dynamic area shows, decoded to
//! UTF-8, honours the auto-delete timeout (RunMode 2), and can be told to drop connections,
//! NACK, or lose power (a power cut clears RAM: every dynamic area is gone).
//!
//! Control, on the sandbox's HTTP side: `POST /_sandbox/led/faults` with
//! `{"kind": "drop" | "nack", "count": 1, "code": 5}`, `DELETE /_sandbox/led/faults`, and
//! `POST /_sandbox/led/power` with `{"on": false}`; the state is `led` in `/_sandbox/state`.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use crate::led::bx::{self, Frame, FrameError};
use crate::led::text::{decode, LedEncoding};

/// What the next frames meet instead of a normal answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LedFault {
    /// Close the connection without answering (the frame is not applied).
    Drop,
    /// Answer NACK with this error code (the frame is not applied).
    Nack { code: u8 },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRequest {
    pub kind: String,
    #[serde(default = "one")]
    pub count: u32,
    #[serde(default)]
    pub code: Option<u8>,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PowerRequest {
    pub on: bool,
}

/// One dynamic area as the controller holds it.
#[derive(Debug, Clone, Serialize)]
pub struct ShownArea {
    pub id: u8,
    /// The text, decoded to UTF-8, without the font/colour escapes (`\n` kept as a newline).
    pub text: String,
    pub display_mode: u8,
    pub run_mode: u8,
    pub timeout_s: u16,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug)]
struct Inner {
    powered: bool,
    areas: BTreeMap<u8, ShownArea>,
    faults: VecDeque<LedFault>,
    frames: u64,
    /// The time the controller was last set to (校时), local time.
    clock: Option<chrono::NaiveDateTime>,
    acks: u64,
    nacks: u64,
    dropped: u64,
    power_cuts: u64,
}

/// The emulator's state; clones share it.
#[derive(Clone)]
pub struct LedEmulator {
    inner: Arc<Mutex<Inner>>,
    addr: Arc<OnceLock<SocketAddr>>,
}

impl Default for LedEmulator {
    fn default() -> Self {
        LedEmulator {
            inner: Arc::new(Mutex::new(Inner {
                powered: true,
                areas: BTreeMap::new(),
                faults: VecDeque::new(),
                frames: 0,
                clock: None,
                acks: 0,
                nacks: 0,
                dropped: 0,
                power_cuts: 0,
            })),
            addr: Arc::new(OnceLock::new()),
        }
    }
}

/// `\FO000`, `\FE000`, `\C1` … removed; `\n` made a newline.
fn strip_escapes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.peek().copied() {
            Some('F') => {
                it.next();
                it.next(); // O or E
                for _ in 0..3 {
                    it.next();
                }
            }
            Some('C') => {
                it.next();
                it.next();
            }
            Some('n') => {
                it.next();
                out.push('\n');
            }
            _ => out.push(c),
        }
    }
    out
}

impl LedEmulator {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .expect("the LED emulator lock is never poisoned")
    }

    /// The TCP address it listens on, once serving.
    pub fn addr(&self) -> Option<SocketAddr> {
        self.addr.get().copied()
    }

    pub fn add_fault(&self, fault: LedFault, count: u32) {
        let mut g = self.lock();
        for _ in 0..count {
            g.faults.push_back(fault);
        }
    }

    /// Power off: RAM (every dynamic area) is lost and connections are refused until on.
    pub fn set_power(&self, on: bool) {
        let mut g = self.lock();
        if g.powered && !on {
            g.power_cuts += 1;
            g.areas.clear();
        }
        g.powered = on;
    }

    fn expire(g: &mut Inner, now: DateTime<Utc>) {
        g.areas.retain(|_, a| {
            a.run_mode != bx::RunMode::LoopThenDelete as u8
                || a.updated_at + chrono::Duration::seconds(i64::from(a.timeout_s)) > now
        });
    }

    /// What each area shows now.
    pub fn areas(&self) -> Vec<ShownArea> {
        let mut g = self.lock();
        Self::expire(&mut g, Utc::now());
        g.areas.values().cloned().collect()
    }

    pub fn snapshot(&self) -> serde_json::Value {
        let areas = self.areas();
        let g = self.lock();
        serde_json::json!({
            "address": self.addr().map(|a| a.to_string()),
            "powered": g.powered,
            "areas": areas,
            "frames": g.frames,
            "acks": g.acks,
            "clock_set_to": g.clock.map(|t| t.to_string()),
            "nacks": g.nacks,
            "dropped": g.dropped,
            "power_cuts": g.power_cuts,
            "faults_pending": g.faults.len(),
        })
    }

    /// The answer to one received frame, or `None` to drop the connection.
    fn handle(&self, wire: &[u8]) -> Option<Vec<u8>> {
        let mut g = self.lock();
        g.frames += 1;
        if let Some(f) = g.faults.pop_front() {
            return match f {
                LedFault::Drop => {
                    g.dropped += 1;
                    None
                }
                LedFault::Nack { code } => {
                    g.nacks += 1;
                    Some(bx::nack(code))
                }
            };
        }
        let frame = match Frame::decode(wire) {
            Ok(f) => f,
            Err(e) => {
                g.nacks += 1;
                return Some(bx::nack(match e {
                    FrameError::Crc => bx::ERR_CRC,
                    FrameError::Malformed(_) => 1,
                }));
            }
        };
        let now = Utc::now();
        Self::expire(&mut g, now);
        match frame.data.get(..2) {
            Some([bx::GROUP_SYSTEM, bx::CMD_PING]) => {}
            Some([bx::GROUP_SYSTEM, bx::CMD_TIME_SYNC]) => match bx::parse_time_sync(&frame.data) {
                Some(t) => g.clock = Some(t),
                None => {
                    g.nacks += 1;
                    return Some(bx::nack(14)); // ERR_DATE_TIME_FORMAT
                }
            },
            Some([bx::GROUP_DISPLAY, bx::CMD_DYNAMIC_AREA]) => {
                let Some(update) = bx::parse_dynamic_area_command(&frame.data) else {
                    g.nacks += 1;
                    return Some(bx::nack(1));
                };
                if update.delete.contains(&0xFF) {
                    g.areas.clear();
                } else {
                    for id in &update.delete {
                        g.areas.remove(id);
                    }
                }
                for a in update.areas {
                    let text = strip_escapes(&decode(&a.text, LedEncoding::Gbk));
                    g.areas.insert(
                        a.id,
                        ShownArea {
                            id: a.id,
                            text,
                            display_mode: a.display_mode,
                            run_mode: a.run_mode,
                            timeout_s: a.timeout,
                            updated_at: now,
                        },
                    );
                }
            }
            _ => {
                g.nacks += 1;
                return Some(bx::nack(2));
            }
        }
        g.acks += 1;
        Some(bx::ack())
    }
}

async fn connection(emu: LedEmulator, mut stream: TcpStream) {
    if !emu.lock().powered {
        return; // a dark controller: the connection just closes
    }
    loop {
        let wire = match bx::read_frame(&mut stream).await {
            Ok(Some(w)) => w,
            _ => return,
        };
        if !emu.lock().powered {
            return;
        }
        let Some(answer) = emu.handle(&wire) else {
            return;
        };
        let reply = Frame {
            dst: 0x8000,
            src: 0x8000,
            display_mode: 0,
            device_type: 0x61,
            data: answer,
        };
        if stream.write_all(&reply.encode()).await.is_err() {
            return;
        }
    }
}

/// Accepts controller connections until the task is dropped.
pub async fn serve(listener: TcpListener, emu: LedEmulator) {
    if let Ok(a) = listener.local_addr() {
        let _ = emu.addr.set(a);
    }
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(connection(emu.clone(), stream));
            }
            Err(e) => {
                tracing::warn!(error = %e, "LED 控制卡仿真：接受连接失败");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

pub async fn add_fault(State(emu): State<LedEmulator>, Json(req): Json<FaultRequest>) -> Response {
    let fault =
        match (req.kind.as_str(), req.code) {
            ("drop", _) => LedFault::Drop,
            ("nack", code) => LedFault::Nack {
                code: code.unwrap_or(bx::ERR_CRC),
            },
            (other, _) => return (
                StatusCode::BAD_REQUEST,
                Json(serde_json::json!({"error": format!("kind = {other:?}：可选 drop 或 nack")})),
            )
                .into_response(),
        };
    emu.add_fault(fault, req.count.max(1));
    (StatusCode::CREATED, Json(emu.snapshot())).into_response()
}

pub async fn clear_faults(State(emu): State<LedEmulator>) -> Json<serde_json::Value> {
    emu.lock().faults.clear();
    Json(emu.snapshot())
}

pub async fn power(
    State(emu): State<LedEmulator>,
    Json(req): Json<PowerRequest>,
) -> Json<serde_json::Value> {
    emu.set_power(req.on);
    Json(emu.snapshot())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_stripped_from_what_the_state_shows() {
        assert_eq!(strip_escapes("\\FO000\\C1低保\\n公示"), "低保\n公示");
    }

    #[test]
    fn a_bad_crc_gets_nack_5_and_a_good_update_is_shown() {
        let emu = LedEmulator::default();
        let area = bx::DynamicArea {
            id: 0,
            x: 0,
            y: 0,
            width: 64,
            height: 16,
            run_mode: 2,
            timeout: 60,
            display_mode: 3,
            speed: 4,
            stay_time: 0,
            single_line: true,
            new_line: 1,
            text: b"\\FO000\\C1\xb5\xcd\xb1\xa3".to_vec(),
        };
        let mut wire = Frame::to(
            0x8000,
            bx::dynamic_area_command(&[0], std::slice::from_ref(&area)),
        )
        .encode();
        let at = wire.iter().position(|&b| b == 0xB5).unwrap();
        wire[at] ^= 0x01; // one bit flipped on the line
        assert_eq!(emu.handle(&wire), Some(bx::nack(bx::ERR_CRC)));
        let wire = Frame::to(0x8000, bx::dynamic_area_command(&[0], &[area])).encode();
        assert_eq!(emu.handle(&wire), Some(bx::ack()));
        assert_eq!(emu.areas()[0].text, "低保");
        emu.set_power(false);
        assert!(emu.areas().is_empty(), "a power cut clears RAM");
    }
}
