//! The push XML parser on arbitrary bytes: never a panic, never a hang; what it accepts is
//! consistent (a DOCTYPE is never accepted, `require` agrees with `get`).
#![no_main]

use gongkai::wechat_callback::message::{has_doctype, Message, XmlError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let doctype = has_doctype(data);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Message::parse(text) {
        Ok(m) => {
            assert!(!doctype, "a body with a DOCTYPE/ENTITY was accepted");
            for name in [
                "ToUserName",
                "FromUserName",
                "MsgType",
                "Event",
                "Content",
                "MsgId",
            ] {
                match (m.get(name), m.require(name)) {
                    (Some(v), Ok(r)) => assert_eq!(v, r),
                    (Some(v), Err(XmlError::Missing(_))) => assert!(v.is_empty()),
                    (None, Err(XmlError::Missing(_))) => {}
                    other => panic!("get/require disagree: {other:?}"),
                }
                let first = m.all(name).next();
                assert_eq!(first, m.get(name));
            }
            let _ = (m.msg_type(), m.event());
        }
        Err(XmlError::Doctype) => assert!(doctype),
        Err(_) => {}
    }
});
