//! Passive replies (wechat-protocol.md §3 envelope, §4): the reply XML, the encrypted
//! envelope, and cutting text to WeChat's size limit at a character boundary. No axum
//! types, no store.

use super::crypto::Crypto;
use super::signature::msg_signature;

/// WeChat documents no number for a text reply; 2048 bytes is what clients show in full
/// and what SDKs use. Chinese takes 3 bytes a character in UTF-8.
pub const TEXT_MAX_BYTES: usize = 2048;
/// Appended when a text reply had to be cut.
const CUT_MARK: &str = "…";

/// What the callback answers with.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Reply {
    /// Plain `success`: no reply shown to the user.
    Success,
    Text {
        content: String,
    },
    /// One link card (WeChat shows only the first article anyway).
    News {
        title: String,
        description: String,
        url: String,
        pic_url: Option<String>,
    },
}

/// The longest prefix of `s` that fits in `max` bytes, never splitting a character.
pub fn cut_at_char_boundary(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `s` cut to `max` bytes with a trailing "…" when it was cut.
pub fn fit_text(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let cut = cut_at_char_boundary(s, max.saturating_sub(CUT_MARK.len()));
    format!("{cut}{CUT_MARK}")
}

/// CDATA section for any value (`]]>` split as the protocol file says).
pub fn cdata(v: &str) -> String {
    format!("<![CDATA[{}]]>", v.replace("]]>", "]]]]><![CDATA[>"))
}

impl Reply {
    /// The plain reply body; `to` = the user's openid, `from` = the account's gh_ id.
    /// `Success` is the 7 bytes `success`.
    pub fn to_xml(&self, to: &str, from: &str, create_time: i64) -> String {
        let head = format!(
            "<xml><ToUserName>{}</ToUserName><FromUserName>{}</FromUserName><CreateTime>{create_time}</CreateTime>",
            cdata(to),
            cdata(from)
        );
        match self {
            Reply::Success => "success".to_string(),
            Reply::Text { content } => format!(
                "{head}<MsgType><![CDATA[text]]></MsgType><Content>{}</Content></xml>",
                cdata(&fit_text(content, TEXT_MAX_BYTES))
            ),
            Reply::News {
                title,
                description,
                url,
                pic_url,
            } => format!(
                "{head}<MsgType><![CDATA[news]]></MsgType><ArticleCount>1</ArticleCount><Articles><item><Title>{}</Title><Description>{}</Description><PicUrl>{}</PicUrl><Url>{}</Url></item></Articles></xml>",
                cdata(title),
                cdata(description),
                cdata(pic_url.as_deref().unwrap_or("")),
                cdata(url)
            ),
        }
    }
}

/// The encrypted envelope of a reply, signed over what is sent; timestamp and nonce echo
/// the request's.
pub fn encrypted_envelope(
    crypto: &Crypto,
    token: &str,
    plain_xml: &str,
    timestamp: &str,
    nonce: &str,
) -> String {
    let encrypt = crypto.encrypt(plain_xml);
    let sig = msg_signature(token, timestamp, nonce, &encrypt);
    format!(
        "<xml><Encrypt>{}</Encrypt><MsgSignature>{}</MsgSignature><TimeStamp>{}</TimeStamp><Nonce>{}</Nonce></xml>",
        cdata(&encrypt),
        cdata(&sig),
        timestamp.parse::<u64>().unwrap_or(0),
        cdata(nonce)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wechat_callback::message::Message;

    #[test]
    fn text_is_cut_at_a_character_boundary_within_the_byte_limit() {
        let s = "低保".repeat(1000);
        let cut = cut_at_char_boundary(&s, 2048);
        assert!(cut.len() <= 2048 && cut.len() > 2040);
        let fit = fit_text(&s, 2048);
        assert!(fit.len() <= 2048);
        assert!(fit.ends_with('…'));
        for max in 0..10 {
            let c = cut_at_char_boundary("a低保b", max);
            assert!(c.len() <= max);
        }
        assert_eq!(fit_text("短", 2048), "短");
    }

    #[test]
    fn replies_render_as_the_documented_xml() {
        let t = Reply::Text {
            content: "你好]]>x".into(),
        }
        .to_xml("oUser", "gh_1", 12345678);
        let m = Message::parse(&t).unwrap();
        assert_eq!(m.get("Content"), Some("你好]]>x"));
        assert_eq!(m.get("ToUserName"), Some("oUser"));
        assert_eq!(m.get("MsgType"), Some("text"));
        let n = Reply::News {
            title: "标题".into(),
            description: "摘要".into(),
            url: "https://x/1".into(),
            pic_url: None,
        }
        .to_xml("oUser", "gh_1", 1);
        let m = Message::parse(&n).unwrap();
        assert_eq!(m.get("ArticleCount"), Some("1"));
        assert_eq!(m.get("Url"), Some("https://x/1"));
        assert_eq!(Reply::Success.to_xml("a", "b", 1), "success");
    }

    #[test]
    fn the_envelope_decrypts_back_and_is_signed() {
        let c = Crypto::new(
            "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
            "wxb11529c136998cb6",
        )
        .unwrap();
        let env = encrypted_envelope(&c, "pamtest", "<xml><a>1</a></xml>", "1409304348", "xxxxxx");
        let m = Message::parse(&env).unwrap();
        let enc = m.get("Encrypt").unwrap();
        assert_eq!(
            m.get("MsgSignature").unwrap(),
            msg_signature("pamtest", "1409304348", "xxxxxx", enc)
        );
        assert_eq!(c.decrypt(enc).unwrap(), "<xml><a>1</a></xml>");
    }
}
