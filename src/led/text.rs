//! LED text: what a rendered item becomes before any screen shows it. Owns: cleaning
//! (no HTML, full-width punctuation, collapsed whitespace), width in display units (an ASCII
//! character is 1, everything else 2, as on a font card: 8×16 and 16×16 dots), fitting into
//! lines and pages, and encoding into the screen's character set with a refusal that names
//! the character. Approved text is never shortened or replaced: what does not fit or cannot be
//! shown is refused, and the operator asks for an approved `led_text`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The character set of a screen's font card (domain.md §5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LedEncoding {
    /// GB2312 font (6763 汉字 and the symbols of rows 1–9), the most common card.
    Gb2312,
    /// GBK font (GB2312 plus 21003 more 汉字, e.g. 镕).
    Gbk,
    /// UTF-8, for players that take Unicode (HTTP/JSON vendors).
    Utf8,
}

impl LedEncoding {
    /// The name for HTTP `charset=` and the feed JSON.
    pub fn charset(self) -> &'static str {
        match self {
            LedEncoding::Gb2312 => "gb2312",
            LedEncoding::Gbk => "gbk",
            LedEncoding::Utf8 => "utf-8",
        }
    }
}

/// A character the screen cannot show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unencodable {
    pub ch: char,
    /// Position in the text, in characters, from 0.
    pub position: usize,
    pub encoding: LedEncoding,
}

impl fmt::Display for Unencodable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "字符“{}”（U+{:04X}，第 {} 个字）不在屏幕字库 {} 中，无法显示；请提供经审核的 led_text（LED 屏专用文字）",
            self.ch,
            self.ch as u32,
            self.position + 1,
            self.encoding.charset().to_uppercase()
        )
    }
}

/// Display width of one character in units (half a font cell).
pub fn char_units(c: char) -> usize {
    if c.is_ascii() {
        1
    } else {
        2
    }
}

/// Display width of a text in units.
pub fn units(s: &str) -> usize {
    s.chars().map(char_units).sum()
}

/// Cleans rendered text for a screen: tags removed, the common entities decoded, ASCII
/// punctuation made full-width (except inside numbers such as 9:30 or 1,000), every run of
/// whitespace (including full-width space and newlines) made one space, ends trimmed.
pub fn clean(raw: &str) -> String {
    let mut no_tags = String::with_capacity(raw.len());
    let mut in_tag = false;
    for c in raw.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                no_tags.push(' ');
            }
            _ if !in_tag => no_tags.push(c),
            _ => {}
        }
    }
    let decoded = no_tags
        .replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&");
    let chars: Vec<char> = decoded.chars().collect();
    let mut out = String::with_capacity(decoded.len());
    let mut pending_space = false;
    for (i, &c) in chars.iter().enumerate() {
        if c.is_whitespace() || c == '\u{3000}' || c.is_control() {
            pending_space = !out.is_empty();
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        let between_digits = i > 0
            && i + 1 < chars.len()
            && chars[i - 1].is_ascii_digit()
            && chars[i + 1].is_ascii_digit();
        let full = match c {
            ',' if !between_digits => '，',
            ':' if !between_digits => '：',
            ';' => '；',
            '!' => '！',
            '?' => '？',
            '(' => '（',
            ')' => '）',
            _ => c,
        };
        out.push(full);
    }
    out
}

/// Encodes `text` for the screen, or names the first character it cannot show.
pub fn encode(text: &str, encoding: LedEncoding) -> Result<Vec<u8>, Unencodable> {
    if encoding == LedEncoding::Utf8 {
        return Ok(text.as_bytes().to_vec());
    }
    let mut out = Vec::with_capacity(text.len() * 2);
    let mut buf = [0u8; 4];
    for (position, ch) in text.chars().enumerate() {
        let bad = Unencodable {
            ch,
            position,
            encoding,
        };
        let s: &str = ch.encode_utf8(&mut buf);
        let (bytes, _, had_errors) = encoding_rs::GBK.encode(s);
        if had_errors {
            return Err(bad);
        }
        if encoding == LedEncoding::Gb2312 && !is_gb2312(&bytes) {
            return Err(bad);
        }
        out.extend_from_slice(&bytes);
    }
    Ok(out)
}

/// Decodes bytes in the screen's encoding (for the emulator and tests).
pub fn decode(bytes: &[u8], encoding: LedEncoding) -> String {
    match encoding {
        LedEncoding::Utf8 => String::from_utf8_lossy(bytes).into_owned(),
        _ => encoding_rs::GBK
            .decode_without_bom_handling(bytes)
            .0
            .into_owned(),
    }
}

/// One character's GBK bytes lie in the GB2312 (EUC-CN) part: ASCII, or a lead byte in
/// rows 1–9 (symbols) or 16–87 (汉字) with a trail byte 0xA1–0xFE.
fn is_gb2312(bytes: &[u8]) -> bool {
    match bytes {
        [b] => b.is_ascii(),
        [lead, trail] => {
            ((0xA1..=0xA9).contains(lead) || (0xB0..=0xF7).contains(lead))
                && (0xA1..=0xFE).contains(trail)
        }
        _ => false,
    }
}

/// Splits text into lines of at most `width` units, never inside a character. A character
/// wider than the line (only possible with `width` < 2) gets a line of its own.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = char_units(c);
        if used + w > width && !line.is_empty() {
            lines.push(std::mem::take(&mut line));
            used = 0;
        }
        if used == 0 && c == ' ' {
            continue; // a wrapped line does not start with a space
        }
        line.push(c);
        used += w;
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// Splits text into pages of `lines` lines of `width` units each.
pub fn paginate(text: &str, width: usize, lines: usize) -> Vec<Vec<String>> {
    wrap(text, width)
        .chunks(lines.max(1))
        .map(<[String]>::to_vec)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn width_counts_cjk_as_two_and_ascii_as_one() {
        assert_eq!(units("2017年"), 4 + 2);
        assert_eq!(units("【公开】"), 8);
        assert_eq!(units("ABC 低保"), 4 + 4);
    }

    #[test]
    fn cleaning_removes_html_collapses_whitespace_and_widens_punctuation() {
        let raw = "<p>关于  低保\n资金 (2017) 的公示!</p>  时间 9:30, 金额 1,000 元;\u{3000}完";
        assert_eq!(
            clean(raw),
            "关于 低保 资金 （2017） 的公示！ 时间 9:30， 金额 1,000 元； 完"
        );
        assert_eq!(clean("A &amp; B"), "A & B");
    }

    #[test]
    fn mixed_text_wraps_on_display_units_and_pages_by_line_count() {
        // 8 units per line: 4 汉字, or 8 ASCII, or a mix.
        let pages = paginate("漳平市民政局2017年工作要点", 8, 2);
        assert_eq!(
            pages,
            vec![
                vec!["漳平市民".to_string(), "政局2017".to_string()],
                vec!["年工作要".to_string(), "点".to_string()],
            ]
        );
        // A CJK character never straddles two lines.
        assert_eq!(wrap("ab低保", 3), vec!["ab", "低", "保"]);
        for line in wrap("Ａ低保资金发放情况 ABC 公示", 7) {
            assert!(units(&line) <= 7, "{line}");
        }
    }

    #[test]
    fn gb2312_refuses_what_only_gbk_has() {
        // 镕 (U+9555) is in GBK but not in GB2312.
        assert_eq!(encode("朱镕基", LedEncoding::Gbk).unwrap().len(), 6);
        let e = encode("朱镕基", LedEncoding::Gb2312).unwrap_err();
        assert_eq!((e.ch, e.position), ('镕', 1));
        let msg = e.to_string();
        assert!(msg.contains("U+9555") && msg.contains("led_text"), "{msg}");
        // Common text is GB2312 through and through.
        let b = encode("【公开】低保资金（1月）", LedEncoding::Gb2312).unwrap();
        assert_eq!(decode(&b, LedEncoding::Gb2312), "【公开】低保资金（1月）");
        assert_eq!(&b[..2], &[0xA1, 0xBE]); // 【
    }

    #[test]
    fn an_emoji_is_refused_by_gbk_with_its_code_point() {
        let e = encode("公示😀", LedEncoding::Gbk).unwrap_err();
        assert!(e.to_string().contains("U+1F600"), "{e}");
        assert!(encode("公示😀", LedEncoding::Utf8).is_ok());
    }
}
