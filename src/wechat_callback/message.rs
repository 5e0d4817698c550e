//! The XML of a push (wechat-protocol.md §2, §3): parsed into a flat list of leaf elements,
//! values either bare text or CDATA. A DOCTYPE or any entity declaration is refused before
//! parsing and there is no entity expansion, ever (only XML's five predefined entities and
//! character references are decoded). Pure; routing is `mod.rs`' business.

use quick_xml::events::Event;
use quick_xml::Reader;

/// Nesting deeper than this is not a WeChat message.
const MAX_DEPTH: usize = 8;
/// More leaves than this is not a WeChat message either.
const MAX_FIELDS: usize = 512;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum XmlError {
    #[error("DOCTYPE or entity declarations are not accepted")]
    Doctype,
    #[error("malformed XML: {0}")]
    Malformed(String),
    #[error("root element is not <xml>")]
    Root,
    #[error("XML nested or repeated beyond what WeChat sends")]
    TooComplex,
    #[error("missing field {0}")]
    Missing(&'static str),
}

/// A parsed push: every leaf element as (name, value), in document order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    fields: Vec<(String, String)>,
}

/// Refuses DTDs up front: quick-xml would not expand them, but a push with one is hostile.
pub fn has_doctype(body: &[u8]) -> bool {
    body.windows(9).any(|w| {
        w[0] == b'<'
            && w[1] == b'!'
            && (w[2..9].eq_ignore_ascii_case(b"DOCTYPE") || w[2..8].eq_ignore_ascii_case(b"ENTITY"))
    })
}

impl Message {
    pub fn parse(xml: &str) -> Result<Message, XmlError> {
        if has_doctype(xml.as_bytes()) {
            return Err(XmlError::Doctype);
        }
        let mut reader = Reader::from_str(xml);
        let mut stack: Vec<(String, String, bool)> = Vec::new();
        let mut fields = Vec::new();
        let mut saw_root = false;
        loop {
            match reader.read_event() {
                Err(e) => return Err(XmlError::Malformed(e.to_string())),
                Ok(Event::Eof) => break,
                Ok(Event::DocType(_)) => return Err(XmlError::Doctype),
                Ok(Event::Start(e)) => {
                    let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                    if stack.is_empty() {
                        if saw_root || name != "xml" {
                            return Err(XmlError::Root);
                        }
                        saw_root = true;
                    }
                    if let Some(parent) = stack.last_mut() {
                        parent.2 = true;
                    }
                    if stack.len() >= MAX_DEPTH {
                        return Err(XmlError::TooComplex);
                    }
                    stack.push((name, String::new(), false));
                }
                Ok(Event::Empty(e)) => {
                    if stack.is_empty() {
                        return Err(XmlError::Root);
                    }
                    let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                    fields.push((name, String::new()));
                }
                Ok(Event::End(_)) => {
                    let (name, text, has_children) = stack.pop().ok_or(XmlError::Root)?;
                    if !has_children && !stack.is_empty() {
                        if fields.len() >= MAX_FIELDS {
                            return Err(XmlError::TooComplex);
                        }
                        fields.push((name, text));
                    }
                }
                Ok(Event::Text(t)) => {
                    let v = t
                        .unescape()
                        .map_err(|e| XmlError::Malformed(e.to_string()))?;
                    match stack.last_mut() {
                        Some(top) => top.1.push_str(&v),
                        None if v.trim().is_empty() => {}
                        None => return Err(XmlError::Root),
                    }
                }
                Ok(Event::CData(c)) => {
                    let v =
                        std::str::from_utf8(&c).map_err(|e| XmlError::Malformed(e.to_string()))?;
                    match stack.last_mut() {
                        Some(top) => top.1.push_str(v),
                        None => return Err(XmlError::Root),
                    }
                }
                Ok(_) => {}
            }
        }
        if !saw_root || !stack.is_empty() {
            return Err(XmlError::Root);
        }
        // Bare values carry the XML's layout whitespace; CDATA values never have any
        // meaningful at the edges in what WeChat sends, except article ids (§2.2: do not
        // trim real ids) which have none.
        for f in &mut fields {
            let t = f.1.trim();
            if t.len() != f.1.len() {
                f.1 = t.to_string();
            }
        }
        Ok(Message { fields })
    }

    /// The first value of a leaf named `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of leaves named `name`.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.fields
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn require(&self, name: &'static str) -> Result<&str, XmlError> {
        self.get(name)
            .filter(|v| !v.is_empty())
            .ok_or(XmlError::Missing(name))
    }

    pub fn msg_type(&self) -> Option<&str> {
        self.get("MsgType")
    }

    pub fn event(&self) -> Option<&str> {
        self.get("Event")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_official_text_and_click_samples_parse() {
        let m = Message::parse("<xml><ToUserName><![CDATA[toUser]]></ToUserName><FromUserName><![CDATA[fromUser]]></FromUserName>\n<CreateTime>1348831860</CreateTime><MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[this is a test]]></Content><MsgId>1234567890123456</MsgId>\n<MsgDataId>xxxx</MsgDataId><Idx>xxxx</Idx></xml>").unwrap();
        assert_eq!(m.get("Content"), Some("this is a test"));
        assert_eq!(m.get("MsgId"), Some("1234567890123456"));
        assert_eq!(m.get("CreateTime"), Some("1348831860"));
        let c = Message::parse("<xml><ToUserName><![CDATA[toUser]]></ToUserName><FromUserName><![CDATA[FromUser]]></FromUserName>\n<CreateTime>123456789</CreateTime><MsgType><![CDATA[event]]></MsgType>\n<Event><![CDATA[CLICK]]></Event><EventKey><![CDATA[EVENTKEY]]></EventKey></xml>").unwrap();
        assert_eq!(c.event(), Some("CLICK"));
        assert_eq!(c.get("EventKey"), Some("EVENTKEY"));
    }

    #[test]
    fn nested_and_repeated_fields_are_kept() {
        let m = Message::parse("<xml><Event>PUBLISHJOBFINISH</Event><PublishEventInfo><publish_id>1</publish_id><fail_idx>1</fail_idx><fail_idx>2</fail_idx></PublishEventInfo></xml>").unwrap();
        assert_eq!(m.all("fail_idx").collect::<Vec<_>>(), ["1", "2"]);
        assert_eq!(m.get("publish_id"), Some("1"));
    }

    #[test]
    fn predefined_entities_decode_and_cdata_is_raw() {
        let m = Message::parse(
            "<xml><Content>a &amp; b &#x4F60;</Content><X><![CDATA[<&>]]></X></xml>",
        )
        .unwrap();
        assert_eq!(m.get("Content"), Some("a & b 你"));
        assert_eq!(m.get("X"), Some("<&>"));
    }

    #[test]
    fn hostile_and_broken_xml_is_refused() {
        let xxe = "<?xml version=\"1.0\"?><!DOCTYPE xml [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><xml><Content>&x;</Content></xml>";
        assert_eq!(Message::parse(xxe), Err(XmlError::Doctype));
        assert_eq!(
            Message::parse("<xml><!entity x 'y'></xml>"),
            Err(XmlError::Doctype)
        );
        assert!(matches!(
            Message::parse("<xml><Content>&custom;</Content></xml>"),
            Err(XmlError::Malformed(_))
        ));
        assert!(Message::parse("<xml><a></b></xml>").is_err());
        assert!(Message::parse("<xml><a>").is_err());
        assert_eq!(Message::parse("<root/>"), Err(XmlError::Root));
        assert_eq!(Message::parse("<foo></foo>"), Err(XmlError::Root));
        assert!(Message::parse("").is_err());
        assert!(Message::parse("not xml").is_err());
        let deep = format!("<xml>{}{}</xml>", "<a>".repeat(20), "</a>".repeat(20));
        assert_eq!(Message::parse(&deep), Err(XmlError::TooComplex));
        let m = Message::parse("<xml><MsgType>text</MsgType></xml>").unwrap();
        assert_eq!(m.require("Content"), Err(XmlError::Missing("Content")));
    }
}
