//! Text for the full-text index of published disclosures: Chinese has no spaces, so every
//! run of CJK characters becomes its overlapping character bigrams (低保资金 -> 低保 保资
//! 资金), other words are lowercased as they are. The store indexes these tokens with
//! SQLite FTS5's `unicode61` tokenizer (each bigram is one token), and a query is
//! tokenized the same way: a two-character query such as 低保 is exactly one token, which
//! a trigram index could not answer. PostgreSQL keeps the same tokens as a tsvector
//! (`tsvector`, `tsquery`: literals, no text-search parser). Pure; the index itself lives
//! in the store.

use crate::store::SearchMatch;

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

/// What a person typed, ready to search: the words they separated (by spaces or
/// punctuation), each as its index tokens. The store first looks for the words as written
/// (each word's tokens in a row), then for every token, and as a fallback for any token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    words: Vec<Vec<String>>,
}

impl SearchQuery {
    /// None when the query has fewer than two characters of substance.
    pub fn parse(q: &str) -> Option<SearchQuery> {
        let substance: usize = q.chars().filter(|c| c.is_alphanumeric()).count();
        if substance < 2 {
            return None;
        }
        let mut words: Vec<Vec<String>> = Vec::new();
        for word in q.split(|c: char| !c.is_alphanumeric()) {
            let toks = tokens(word);
            if !toks.is_empty() && !words.contains(&toks) {
                words.push(toks);
            }
        }
        (!words.is_empty()).then_some(SearchQuery { words })
    }

    /// Every token once, in order.
    pub fn tokens(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for t in self.words.iter().flatten() {
            if !out.contains(t) {
                out.push(t.clone());
            }
        }
        out
    }

    /// The FTS5 queries of the relevance tiers, most relevant first, each distinct: every
    /// word as written (a phrase) in the title; every word as written anywhere; every
    /// token anywhere. Within a tier the store ranks newer items first.
    pub fn fts5_tiers(&self) -> Vec<String> {
        let phrases: Vec<String> = self
            .words
            .iter()
            .map(|w| {
                let toks: Vec<String> = w.iter().map(|t| fts5_escape(t)).collect();
                format!("\"{}\"", toks.join(" "))
            })
            .collect();
        let all_phrases = phrases.join(" AND ");
        let mut tiers = vec![format!("title : ({all_phrases})"), all_phrases];
        if self.words.iter().any(|w| w.len() > 1) {
            tiers.push(fts5_query(&self.tokens(), SearchMatch::All));
        }
        tiers
    }

    /// The FTS5 query of any token (the fallback).
    pub fn fts5_any(&self) -> String {
        fts5_query(&self.tokens(), SearchMatch::Any)
    }

    /// The PostgreSQL tsquery literals of the same tiers as `fts5_tiers`: each word's
    /// phrase (`<->`) restricted to title lexemes (weight A), each word's phrase, every
    /// token.
    pub fn tsquery_tiers(&self) -> Vec<String> {
        let phrases = |title: bool| {
            let each: Vec<String> = self
                .words
                .iter()
                .map(|w| {
                    let lex: Vec<String> = w
                        .iter()
                        .map(|t| match title {
                            true => format!("{}:A", lexeme(t)),
                            false => lexeme(t),
                        })
                        .collect();
                    match (self.words.len() > 1, w.len() > 1) {
                        (true, true) => format!("({})", lex.join(" <-> ")),
                        _ => lex.join(" <-> "),
                    }
                })
                .collect();
            each.join(" & ")
        };
        let mut tiers = vec![phrases(true), phrases(false)];
        if self.words.iter().any(|w| w.len() > 1) {
            tiers.push(tsquery(&self.tokens(), SearchMatch::All));
        }
        tiers
    }

    /// The tsquery of any token (the fallback).
    pub fn tsquery_any(&self) -> String {
        tsquery(&self.tokens(), SearchMatch::Any)
    }
}

/// The one index token that stands for a department in SQLite's `search_fts.dept` column:
/// `d` and 16 hex digits of the SHA-256 of its code (codes have hyphens, which the
/// tokenizer would split, and no code may match another's prefix).
pub fn department_token(code: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(code.as_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("d{hex}")
}

/// A token quoted for FTS5. Tokens are letters and digits only, so quoting cannot be
/// escaped from; doubling any quote keeps that true whatever the caller passes.
fn fts5_escape(t: &str) -> String {
    t.replace('"', "\"\"")
}

/// The SQLite FTS5 query over `tokens` (AND for `All`, OR for `Any`).
pub fn fts5_query(tokens: &[String], mode: SearchMatch) -> String {
    let quoted: Vec<String> = tokens
        .iter()
        .map(|t| format!("\"{}\"", fts5_escape(t)))
        .collect();
    quoted.join(match mode {
        SearchMatch::All => " AND ",
        SearchMatch::Any => " OR ",
    })
}

/// A PostgreSQL tsquery literal over `tokens` (`&` for `All`, `|` for `Any`): each token
/// is one quoted lexeme taken as is (cast with `::tsquery`, no text-search parser, so CJK
/// bigrams stay whole whatever the database locale).
pub fn tsquery(tokens: &[String], mode: SearchMatch) -> String {
    let quoted: Vec<String> = tokens.iter().map(|t| lexeme(t)).collect();
    quoted.join(match mode {
        SearchMatch::All => " & ",
        SearchMatch::Any => " | ",
    })
}

/// A PostgreSQL tsvector literal: `title` tokens (weight A) then `body` tokens (weight D),
/// with their positions, so that ts_rank weighs title matches and repeated tokens as FTS5's
/// bm25 does. Within PostgreSQL's limits (lexemes up to 2046 bytes, positions up to 16383,
/// 256 positions per lexeme, about 1 MB of lexemes); what is beyond them is left out.
pub fn tsvector(title: &[String], body: &[String]) -> String {
    use std::collections::BTreeMap;
    const MAX_LEXEME_BYTES: usize = 2046;
    const MAX_POS: usize = 16383;
    const MAX_POSITIONS: usize = 256;
    const MAX_TOTAL_BYTES: usize = 900_000;
    let mut lexemes: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut total = 0;
    let weighted = title
        .iter()
        .map(|t| (t, "A"))
        .chain(body.iter().map(|t| (t, "")));
    for (i, (tok, weight)) in weighted.enumerate() {
        if tok.is_empty() || tok.len() > MAX_LEXEME_BYTES {
            continue;
        }
        let pos = (i + 1).min(MAX_POS);
        match lexemes.get_mut(tok.as_str()) {
            Some(positions) => {
                if positions.len() < MAX_POSITIONS && pos < MAX_POS {
                    positions.push(format!("{pos}{weight}"));
                }
            }
            None => {
                if total + tok.len() > MAX_TOTAL_BYTES {
                    continue;
                }
                total += tok.len();
                lexemes.insert(tok, vec![format!("{pos}{weight}")]);
            }
        }
    }
    lexemes
        .iter()
        .map(|(tok, positions)| format!("{}:{}", lexeme(tok), positions.join(",")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A quoted lexeme of a tsvector/tsquery literal.
fn lexeme(t: &str) -> String {
    format!("'{}'", t.replace('\\', "\\\\").replace('\'', "''"))
}

/// The text a stored revision is found by, as (head, body): the title with the short
/// title, document number and publisher, and the visible text of the body HTML.
pub fn doc_text(title: &str, json: &str) -> (String, String) {
    let doc: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
    let mut head = title.to_string();
    for f in ["short_title", "doc_no", "publisher"] {
        if let Some(v) = doc.get(f).and_then(|v| v.as_str()) {
            head.push(' ');
            head.push_str(v);
        }
    }
    let body = doc
        .get("body_html")
        .and_then(|v| v.as_str())
        .map(strip_html)
        .unwrap_or_default();
    (head, body)
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

    fn q(s: &str) -> SearchQuery {
        SearchQuery::parse(s).unwrap()
    }

    #[test]
    fn queries_need_two_characters() {
        assert_eq!(SearchQuery::parse("低"), None);
        assert_eq!(SearchQuery::parse("  ？"), None);
        assert_eq!(q("养老补贴").tokens(), ["养老", "老补", "补贴"]);
        assert_eq!(q("低保 低保").tokens(), ["低保"]);
        assert_eq!(q("低保 低保资金").tokens(), ["低保", "保资", "资金"]);
        assert_eq!(q("养老补贴").fts5_any(), "\"养老\" OR \"老补\" OR \"补贴\"");
        assert!(q("\" OR x").fts5_any().starts_with("\"or\""));
    }

    #[test]
    fn tiers_go_from_the_words_in_the_title_to_every_token() {
        assert_eq!(
            q("养老补贴").fts5_tiers(),
            [
                "title : (\"养老 老补 补贴\")",
                "\"养老 老补 补贴\"",
                "\"养老\" AND \"老补\" AND \"补贴\""
            ]
        );
        assert_eq!(q("低保").fts5_tiers(), ["title : (\"低保\")", "\"低保\""]);
        // Words typed apart are each a phrase; they need not be next to each other.
        assert_eq!(
            q("菁城街道，低保").fts5_tiers()[..2],
            [
                "title : (\"菁城 城街 街道\" AND \"低保\")",
                "\"菁城 城街 街道\" AND \"低保\""
            ]
        );
        assert_eq!(
            q("养老补贴").tsquery_tiers(),
            [
                "'养老':A <-> '老补':A <-> '补贴':A",
                "'养老' <-> '老补' <-> '补贴'",
                "'养老' & '老补' & '补贴'"
            ]
        );
        assert_eq!(
            q("菁城街道 低保").tsquery_tiers()[1],
            "('菁城' <-> '城街' <-> '街道') & '低保'"
        );
    }

    #[test]
    fn postgres_literals_quote_every_token() {
        let toks = q("养老补贴").tokens();
        assert_eq!(tsquery(&toks, SearchMatch::All), "'养老' & '老补' & '补贴'");
        assert_eq!(tsquery(&toks, SearchMatch::Any), "'养老' | '老补' | '补贴'");
        assert_eq!(tsquery(&["it's".to_string()], SearchMatch::All), "'it''s'");
        let t = |s: &str| tokens(s);
        assert_eq!(
            tsvector(&t("低保公示"), &t("低保 名单")),
            "'低保':1A,4 '保公':2A '公示':3A '名单':5"
        );
    }

    #[test]
    fn html_is_stripped() {
        assert_eq!(
            strip_html("<p>低保&amp;<b>公示</b></p>").trim(),
            "低保& 公示"
        );
    }
}
