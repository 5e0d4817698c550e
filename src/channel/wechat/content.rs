//! The article body as WeChat accepts it (wechat-protocol.md §6.1, §6.3): the rendered HTML
//! is cleaned by an allow-list sanitizer (`ammonia`, built on the html5ever parser that
//! browsers' parsing rules are specified by) — scripts, styles sheets, iframes, `on*`
//! attributes and `javascript:` URLs go, the text stays — and the body's images are pointed
//! at the copies uploaded through `media/uploadimg` (WeChat filters external images out).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use base64::Engine;

/// `media/uploadimg` takes jpg/png smaller than 1 MB.
pub const IMAGE_MAX_BYTES: usize = 1024 * 1024;

/// The sanitizer: ammonia's allow-list (no script/style/iframe/object, no event handlers,
/// URLs only of safe schemes), plus what WeChat articles use: `<section>`, inline `style`,
/// and `data:` image sources (uploaded, then replaced).
fn builder<'a>() -> ammonia::Builder<'a> {
    let mut b = ammonia::Builder::default();
    b.add_tags(["section"])
        .add_generic_attributes(["style"])
        .add_url_schemes(["data"])
        .link_rel(None);
    b
}

fn is_data_uri(v: &str) -> bool {
    v.trim_start()
        .get(..5)
        .is_some_and(|p| p.eq_ignore_ascii_case("data:"))
}

/// The `src` of every `<img>` that survives cleaning, in document order, each once.
pub fn image_sources(html: &str) -> Vec<String> {
    // ammonia's filter must be 'static: it shares the list through an Arc.
    let found = Arc::new(Mutex::new(Vec::<String>::new()));
    let list = found.clone();
    let _ = builder()
        .attribute_filter(move |element, attribute, value| {
            if element == "img" && attribute == "src" {
                let mut f = list.lock().expect("not poisoned");
                if !f.iter().any(|s| s == value) {
                    f.push(value.to_string());
                }
            }
            Some(Cow::Borrowed(value))
        })
        .clean(html);
    let out = found.lock().expect("not poisoned").clone();
    out
}

/// The cleaned article HTML, with each image source found in `images` replaced by its
/// WeChat copy. `data:` URLs anywhere but an image source are dropped.
pub fn clean(html: &str, images: &BTreeMap<String, String>) -> String {
    let images = images.clone();
    builder()
        .attribute_filter(move |element, attribute, value| {
            if element == "img" && attribute == "src" {
                return Some(match images.get(value) {
                    Some(u) => Cow::Owned(u.clone()),
                    None => Cow::Borrowed(value),
                });
            }
            if is_data_uri(value) {
                return None;
            }
            Some(Cow::Borrowed(value))
        })
        .clean(html)
        .to_string()
}

/// Images WeChat already hosts (uploaded before): kept as they are.
pub fn is_wechat_hosted(src: &str) -> bool {
    let rest = src
        .strip_prefix("https://")
        .or_else(|| src.strip_prefix("http://"));
    rest.and_then(|r| r.split(['/', '?', '#']).next())
        .map(|host| host.split(':').next().unwrap_or(host))
        .is_some_and(|host| host == "mmbiz.qpic.cn" || host.ends_with(".qpic.cn"))
}

/// The bytes of a `data:` image (base64 only).
pub fn decode_data_uri(src: &str) -> Result<Vec<u8>, String> {
    let rest = &src.trim()[5..];
    let (meta, data) = rest
        .split_once(',')
        .ok_or_else(|| "data: 地址格式不正确（缺少逗号）".to_string())?;
    if !meta.to_ascii_lowercase().ends_with(";base64") {
        return Err("仅支持 base64 编码的 data: 图片".into());
    }
    let data: String = data.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(data.as_bytes())
        .map_err(|e| format!("base64 解码失败：{e}"))
}

/// How an image source is named in messages: never a whole `data:` payload.
pub fn label(src: &str) -> String {
    if is_data_uri(src) {
        let head: String = src.chars().take(30).collect();
        format!("{head}…（内嵌图片，{} 字符）", src.len())
    } else if src.chars().count() > 200 {
        format!("{}…", src.chars().take(200).collect::<String>())
    } else {
        src.to_string()
    }
}

/// `png` or `jpg` by the file's magic bytes; `None` for anything else.
pub fn image_kind(b: &[u8]) -> Option<&'static str> {
    if b.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("png")
    } else if b.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("jpg")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_handlers_iframes_and_javascript_urls_go_and_the_text_stays() {
        let html = r#"<section style="color:red"><p onclick="x()">低保<script>alert(1)</script>公示</p><style>p{}</style><iframe src="https://evil.example/"></iframe><a href="javascript:alert(1)">链接</a><img src="https://a.example/1.png" onerror="x()"></section>"#;
        let out = clean(html, &BTreeMap::new());
        assert_eq!(
            out,
            r#"<section style="color:red"><p>低保公示</p><a>链接</a><img src="https://a.example/1.png"></section>"#
        );
    }

    #[test]
    fn image_sources_are_found_once_and_replaced() {
        let html = r#"<p><img src="https://a.example/1.png"><img src="data:image/png;base64,iVBORw0KGgo="><img src="https://a.example/1.png"></p><a href="data:text/html;base64,PHA+">x</a>"#;
        let srcs = image_sources(html);
        assert_eq!(
            srcs,
            [
                "https://a.example/1.png",
                "data:image/png;base64,iVBORw0KGgo="
            ]
        );
        let map: BTreeMap<_, _> = srcs
            .iter()
            .enumerate()
            .map(|(i, s)| (s.clone(), format!("http://mmbiz.qpic.cn/x/{i}.png")))
            .collect();
        let out = clean(html, &map);
        assert!(
            !out.contains("a.example") && !out.contains("data:"),
            "{out}"
        );
        assert!(out.contains(r#"<img src="http://mmbiz.qpic.cn/x/1.png">"#));
    }

    #[test]
    fn data_uris_decode_and_hosts_are_recognized() {
        assert_eq!(
            decode_data_uri("data:image/png;base64,iVBORw0KGgo=").unwrap(),
            b"\x89PNG\r\n\x1a\n"
        );
        assert!(decode_data_uri("data:image/png,abc").is_err());
        assert!(is_wechat_hosted("http://mmbiz.qpic.cn/sandbox/IMG_1.png"));
        assert!(!is_wechat_hosted(
            "https://mmbiz.qpic.cn.evil.example/a.png"
        ));
        assert!(label(&format!("data:image/png;base64,{}", "A".repeat(5000))).len() < 100);
    }
}
