//! Signed WeChat callback requests for the load benchmark (`benches/callback_load.sh`),
//! made with the crate's own signature and crypto code.
//!
//! ```text
//! cargo run --release --example make_callback_requests -- \
//!     OUT_DIR TOKEN APPID ENCODING_AES_KEY SAFE_COUNT CLICK_KEY QUERY [CREATE_TIME [ONLY]]
//! ```
//!
//! CREATE_TIME (Unix seconds, default now) is the messages' CreateTime: WeChat pushes a
//! message milliseconds after creating it, and the callback takes a message created 3 s
//! or more before for one of WeChat's retries (looked up before any work), so the bench
//! sets it to the end of the run its bodies are made for. ONLY makes one file (e.g.
//! `safe_text`).
//!
//! Writes one request per line, `path?query<TAB>body`, to
//! - `plain_click.txt`, `plain_text.txt`: one line each; the body has `@ID@` where the wrk
//!   script puts a per-request id (FromUserName of a CLICK, MsgId of a text), because the
//!   callback answers WeChat's retries of one message from its dedupe record. Plain mode
//!   signs only token/timestamp/nonce, so the body may vary under one signature.
//! - `safe_click.txt`, `safe_text.txt`: SAFE_COUNT lines each, every one a distinct
//!   message encrypted and signed (`msg_signature` covers the ciphertext).

use std::io::Write;

use gongkai::sandbox::wechat::event_message;
use gongkai::wechat_callback::crypto::Crypto;
use gongkai::wechat_callback::reply::cdata;
use gongkai::wechat_callback::signature::{msg_signature, signature};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (fixed, rest) = args.split_at(args.len().min(7));
    let [out, token, appid, aes_key, count, click_key, query] = fixed else {
        anyhow::bail!(
            "usage: make_callback_requests OUT_DIR TOKEN APPID ENCODING_AES_KEY SAFE_COUNT CLICK_KEY QUERY [CREATE_TIME [ONLY]]"
        );
    };
    let created: Option<i64> = rest.first().map(|t| t.parse()).transpose()?;
    let only = rest.get(1).map(String::as_str);
    let wanted = |name: &str| only.is_none_or(|o| name.trim_end_matches(".txt") == o);
    let count: usize = count.parse()?;
    let out = std::path::Path::new(out);
    std::fs::create_dir_all(out)?;
    let crypto = Crypto::new(aes_key, appid)?;
    let ts = chrono::Utc::now().timestamp();
    let ts_s = ts.to_string();
    let created = created.unwrap_or(ts);
    let path = "/wechat";

    let plain_query = |nonce: &str| {
        format!(
            "{path}?signature={}&timestamp={ts_s}&nonce={nonce}&openid=oBench",
            signature(token, &ts_s, nonce)
        )
    };
    let click = |user: &str| event_message(user, "CLICK", Some(click_key), created);
    // As `sandbox::wechat::text_message` writes it, with this CreateTime and MsgId.
    let text = |id: &str| {
        format!(
            "<xml><ToUserName>{}</ToUserName><FromUserName>{}</FromUserName><CreateTime>{created}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content>{}</Content><MsgId>{id}</MsgId></xml>",
            cdata("gh_sandbox"),
            cdata("oBench"),
            cdata(query)
        )
    };
    for (name, body) in [
        ("plain_click.txt", click("oBench@ID@")),
        ("plain_text.txt", text("@ID@")),
    ] {
        if !wanted(name) {
            continue;
        }
        std::fs::write(
            out.join(name),
            format!("{}\t{}\n", plain_query("1000001"), body),
        )?;
    }
    for (name, make) in [
        ("safe_click.txt", &click as &dyn Fn(&str) -> String),
        ("safe_text.txt", &text),
    ] {
        if !wanted(name) {
            continue;
        }
        let mut f = std::io::BufWriter::new(std::fs::File::create(out.join(name))?);
        for i in 0..count {
            // MsgIds are numbers; a FromUserName any string.
            let id = format!("{}", 9_000_000_000u64 + i as u64);
            let xml = if name == "safe_click.txt" {
                make(&format!("oSafe{id}"))
            } else {
                make(&id)
            };
            let enc = crypto.encrypt(&xml);
            let nonce = format!("{}", 2_000_000 + i);
            let ms = msg_signature(token, &ts_s, &nonce, &enc);
            let body = format!(
                "<xml><ToUserName>{}</ToUserName><Encrypt>{}</Encrypt></xml>",
                cdata("gh_sandbox"),
                cdata(&enc)
            );
            writeln!(
                f,
                "{}&encrypt_type=aes&msg_signature={ms}\t{body}",
                plain_query(&nonce)
            )?;
        }
        f.flush()?;
    }
    Ok(())
}
