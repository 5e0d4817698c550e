//! One integration binary: the real daemon (HTTP on loopback, SQLite files in a temp dir)
//! against the sandbox's website platform emulator, also on loopback.

mod helpers;

mod callback;
mod cli;
mod console;
mod crash;
mod delivery;
mod gate;
mod ingest;
mod led;
mod retry;
mod revision;
mod tenancy;
mod wechat;
