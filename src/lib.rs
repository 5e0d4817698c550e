//! gongkai: publishes a department's approved disclosures (政府信息公开) to every configured
//! channel and keeps the per-channel delivery ledger the annual report is counted from.
//! This file only lists the modules, so that `tests/` and `benches/` can reach everything.

pub mod annual;
pub mod app;
pub mod applications;
pub mod calendar;
pub mod channel;
pub mod cli;
pub mod config;
pub mod delivery;
pub mod demo;
pub mod disclosure;
pub mod domain;
pub mod gate;
pub mod http;
pub mod led;
pub mod render;
pub mod report;
pub mod sandbox;
pub mod status;
pub mod store;
pub mod telemetry;
pub mod wechat_callback;
