//! The WeChat callback ("服务器配置" URL), minimal: the GET echo check and the POST push in
//! plain mode (明文模式), signature verified on both. It handles the one event publishing
//! needs, `PUBLISHJOBFINISH`: the outcome is recorded in the store once per publish_id
//! (WeChat re-sends pushes) and the waiting delivery becomes due, so the WeChat channel
//! finishes it on its next attempt. Other messages are answered `success` and ignored; the
//! full callback (safe mode, replies, menus) is issue 4.

use sha1::{Digest, Sha1};

use crate::store::WechatPublishEvent;

/// WeChat's plain signature: hex(sha1(sorted(token, timestamp, nonce) joined)).
pub fn signature(token: &str, timestamp: &str, nonce: &str) -> String {
    let mut parts = [token, timestamp, nonce];
    parts.sort_unstable();
    hex::encode(Sha1::digest(parts.concat().as_bytes()))
}

/// Constant-time check of the `signature` query parameter.
pub fn verify(token: &str, timestamp: &str, nonce: &str, given: &str) -> bool {
    let want = signature(token, timestamp, nonce);
    want.len() == given.len()
        && want
            .bytes()
            .zip(given.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b.to_ascii_lowercase()))
            == 0
}

/// Every value of `<name>…</name>` in `xml`, CDATA unwrapped (no DTD, no entities: the
/// values WeChat puts in these fields are ids, digits and URLs).
pub fn tag_values(xml: &str, name: &str) -> Vec<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(&close) else { break };
        let raw = after[..end].trim();
        let v = raw
            .strip_prefix("<![CDATA[")
            .and_then(|r| r.strip_suffix("]]>"))
            .unwrap_or(raw);
        out.push(v.to_string());
        rest = &after[end + close.len()..];
    }
    out
}

fn tag(xml: &str, name: &str) -> Option<String> {
    tag_values(xml, name).into_iter().next()
}

/// The PUBLISHJOBFINISH event in a push, if that is what it is.
pub fn parse_publish_event(appid: &str, xml: &str) -> Option<WechatPublishEvent> {
    if tag(xml, "Event").as_deref() != Some("PUBLISHJOBFINISH") {
        return None;
    }
    Some(WechatPublishEvent {
        appid: appid.to_string(),
        publish_id: tag(xml, "publish_id")?,
        publish_status: tag(xml, "publish_status")?.parse().ok()?,
        article_id: tag(xml, "article_id"),
        article_url: tag(xml, "article_url"),
        fail_idx: tag_values(xml, "fail_idx")
            .iter()
            .filter_map(|v| v.parse().ok())
            .collect(),
        times_received: 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_the_official_vectors() {
        assert_eq!(
            signature("AAAAA", "1714036504", "1514711492"),
            "f464b24fc39322e44b38aa78f5edd27bd1441696"
        );
        assert!(verify(
            "test",
            "1410685589",
            "test",
            "f21891de399b4e33a1a93c9a7b8a8fffb5a443ff"
        ));
        assert!(!verify(
            "test",
            "1410685589",
            "tesT",
            "f21891de399b4e33a1a93c9a7b8a8fffb5a443ff"
        ));
    }

    #[test]
    fn the_official_publish_event_sample_parses() {
        let xml = "<xml><ToUserName><![CDATA[gh_4d00ed8d6399]]></ToUserName><FromUserName><![CDATA[oV5CrjpxgaGXNHIQigzNlgLTnwic]]></FromUserName><CreateTime>1481013459</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[PUBLISHJOBFINISH]]></Event><PublishEventInfo><publish_id>2247503051</publish_id><publish_status>0</publish_status><article_id><![CDATA[b5O2OUs25HBxRceL7hfReg-U9QGeq9zQjiDvyWP4Hq4]]></article_id><article_detail><count>1</count><item><idx>1</idx><article_url><![CDATA[ARTICLE_URL]]></article_url></item></article_detail></PublishEventInfo></xml>";
        let e = parse_publish_event("wx1", xml).unwrap();
        assert_eq!(e.publish_id, "2247503051");
        assert_eq!(e.publish_status, 0);
        assert_eq!(e.article_url.as_deref(), Some("ARTICLE_URL"));
        let failed = "<xml><Event><![CDATA[PUBLISHJOBFINISH]]></Event><PublishEventInfo><publish_id>1</publish_id><publish_status>2</publish_status><fail_idx>1</fail_idx><fail_idx>2</fail_idx></PublishEventInfo></xml>";
        assert_eq!(parse_publish_event("wx1", failed).unwrap().fail_idx, [1, 2]);
    }
}
