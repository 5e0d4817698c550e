//! The safe-mode path of a push (`wechat_callback::open_push`): outer XML, `msg_signature`
//! over `Encrypt`, base64, AES-256-CBC, WeChat's 32-byte padding, the length frame, the
//! appid check, the inner XML. A random body almost never carries a valid signature or a
//! ciphertext that decrypts to anything, so the first byte picks how the rest is used:
//!
//! 0. the whole body as sent, signed correctly over whatever `Encrypt` it has;
//! 1. the rest as the *plaintext* AES decrypts to (raw CBC here, so padding, the length
//!    field and the appid are the fuzzer's to choose);
//! 2. the rest as the ciphertext (any length);
//! 3. the rest as the message inside a well-formed frame (inner XML), sometimes for
//!    another appid;
//!
//! each also with a wrong `msg_signature`, which must be refused before decrypting.
#![no_main]

use aes::cipher::block_padding::NoPadding;
use aes::cipher::{BlockEncryptMut, KeyIvInit};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use gongkai::wechat_callback::crypto::{decode_key, Crypto};
use gongkai::wechat_callback::message::Message;
use gongkai::wechat_callback::signature::msg_signature;
use gongkai::wechat_callback::{open_push, CallbackError, Signed};
use libfuzzer_sys::fuzz_target;

const KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const APPID: &str = "wxb11529c136998cb6";
const TOKEN: &str = "pamtest";

fn raw_encrypt(plain: &[u8]) -> String {
    let key = decode_key(KEY).unwrap();
    let mut buf = plain.to_vec();
    let n = buf.len().div_ceil(16).max(1) * 16;
    buf.resize(n, 0);
    let iv: [u8; 16] = key[..16].try_into().unwrap();
    let out = cbc::Encryptor::<aes::Aes256>::new(&key.into(), &iv.into())
        .encrypt_padded_mut::<NoPadding>(&mut buf, n)
        .unwrap()
        .to_vec();
    STANDARD.encode(out)
}

fn envelope(enc: &str) -> Vec<u8> {
    format!(
        "<xml><ToUserName><![CDATA[gh_x]]></ToUserName><Encrypt><![CDATA[{enc}]]></Encrypt></xml>"
    )
    .into_bytes()
}

fn query(enc: &str, good: bool) -> Signed {
    let (ts, nonce) = ("1409304348", "xxxxxx");
    let mut sig = msg_signature(TOKEN, ts, nonce, enc);
    if !good {
        sig.replace_range(0..1, if sig.starts_with('0') { "1" } else { "0" });
    }
    Signed {
        timestamp: ts.into(),
        nonce: nonce.into(),
        encrypt_type: Some("aes".into()),
        msg_signature: Some(sig),
        ..Signed::default()
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let crypto = Crypto::new(KEY, APPID).unwrap();
    let (body, enc, framed_msg) = match mode % 4 {
        0 => {
            let enc = std::str::from_utf8(rest)
                .ok()
                .and_then(|t| Message::parse(t).ok())
                .and_then(|m| m.get("Encrypt").map(str::to_string))
                .unwrap_or_default();
            (rest.to_vec(), enc, None)
        }
        1 => {
            let enc = raw_encrypt(rest);
            (envelope(&enc), enc, None)
        }
        2 => {
            let enc = STANDARD.encode(rest);
            (envelope(&enc), enc, None)
        }
        _ => {
            let msg = String::from_utf8_lossy(rest).into_owned();
            let c = if mode & 0x80 != 0 {
                Crypto::new(KEY, "wxother").unwrap()
            } else {
                crypto.clone()
            };
            let enc = c.encrypt_with(&msg, b"aaaabbbbccccdddd");
            let ours = mode & 0x80 == 0;
            (envelope(&enc), enc, Some((msg, ours)))
        }
    };
    let good = mode & 0x40 == 0;
    let r = open_push(Some(&crypto), TOKEN, &query(&enc, good), &body);
    // (An empty `Encrypt` is refused as a missing field, before the signature: 400.)
    if !good && mode % 4 != 0 && !enc.is_empty() {
        assert!(
            matches!(r, Err(CallbackError::Forbidden(_))),
            "a wrong msg_signature got past: {r:?}"
        );
    }
    if let Some((msg, ours)) = framed_msg {
        if good {
            // The frame round-trips: our appid decrypts to the message, another never does.
            let d = crypto.decrypt(&enc);
            if ours {
                assert_eq!(d.as_deref(), Ok(msg.as_str()));
                if let Ok(m) = Message::parse(&msg) {
                    let (got, encrypted) = r.expect("a valid frame of valid XML opens");
                    assert!(encrypted);
                    assert_eq!(got, m);
                }
            } else {
                assert!(d.is_err());
                assert!(r.is_err());
            }
        }
    }
});
