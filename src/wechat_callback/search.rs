//! Text for the full-text index of published disclosures: Chinese has no spaces, so every
//! run of CJK characters becomes its overlapping character bigrams (低保资金 -> 低保 保资
//! 资金), other words are lowercased as they are. The store indexes these tokens with
//! SQLite FTS5's `unicode61` tokenizer (each bigram is one token), and a query is
//! tokenized the same way: a two-character query such as 低保 is exactly one token, which
//! a trigram index could not answer. Pure; the index itself lives in the store.

/// Whether `c` is written without spaces between words (CJK ideographs, kana, hangul).
fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2FA1F
        | 0x3040..=0x30FF | 0xAC00..=0xD7AF)
}

/// The index tokens of `text`, space-separated.
pub fn index_text(text: &str) -> String {
    tokens(text).join(" ")
}

/// Bigrams of CJK runs (a lone CJK character stays a unigram), alphanumeric words lowercased.
pub fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut run: Vec<char> = Vec::new();
    let mut word = String::new();
    let flush_run = |run: &mut Vec<char>, out: &mut Vec<String>| {
        match run.len() {
            0 => {}
            1 => out.push(run[0].to_string()),
            _ => out.extend(run.windows(2).map(|w| w.iter().collect::<String>())),
        }
        run.clear();
    };
    for c in text.chars() {
        if is_cjk(c) {
            if !word.is_empty() {
                out.push(std::mem::take(&mut word));
            }
            run.push(c);
        } else if c.is_alphanumeric() {
            flush_run(&mut run, &mut out);
            word.extend(c.to_lowercase());
        } else {
            flush_run(&mut run, &mut out);
            if !word.is_empty() {
                out.push(std::mem::take(&mut word));
            }
        }
    }
    flush_run(&mut run, &mut out);
    if !word.is_empty() {
        out.push(word);
    }
    out
}

/// The FTS5 queries for what a person typed: first every token must appear (AND), and
/// as a fallback any of them (OR, ranked by how many and how rare). None when the query has
/// fewer than two characters of substance.
pub fn fts_queries(q: &str) -> Option<(String, String)> {
    let mut toks = tokens(q);
    toks.dedup();
    let substance: usize = q.chars().filter(|c| c.is_alphanumeric()).count();
    if toks.is_empty() || substance < 2 {
        return None;
    }
    // Tokens are letters and digits only, so quoting cannot be escaped from.
    let quoted: Vec<String> = toks.iter().map(|t| format!("\"{t}\"")).collect();
    Some((quoted.join(" AND "), quoted.join(" OR ")))
}

/// The visible text of an HTML body (tags dropped, the common entities decoded).
pub fn strip_html(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_becomes_bigrams_and_words_stay_words() {
        assert_eq!(tokens("低保资金"), ["低保", "保资", "资金"]);
        assert_eq!(
            tokens("2017年 第1季度 Low"),
            ["2017", "年", "第", "1", "季度", "low"]
        );
        assert_eq!(index_text("养老补贴，殡葬"), "养老 老补 补贴 殡葬");
    }

    #[test]
    fn queries_need_two_characters() {
        assert_eq!(fts_queries("低"), None);
        assert_eq!(fts_queries("  ？"), None);
        let (all, any) = fts_queries("养老补贴").unwrap();
        assert_eq!(all, "\"养老\" AND \"老补\" AND \"补贴\"");
        assert_eq!(any, "\"养老\" OR \"老补\" OR \"补贴\"");
        assert_eq!(fts_queries("低保").unwrap().0, "\"低保\"");
        assert!(fts_queries("\" OR x").unwrap().0.starts_with("\"or\""));
    }

    #[test]
    fn html_is_stripped() {
        assert_eq!(
            strip_html("<p>低保&amp;<b>公示</b></p>").trim(),
            "低保& 公示"
        );
    }
}
