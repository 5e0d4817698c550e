//! The content gate: what must never reach a channel (domain.md §3.4). Owns: scanning the
//! text fields of a validated disclosure for personal data (18-digit resident ID numbers with
//! a valid check digit, 11-digit mainland mobile numbers, bank card numbers that pass Luhn)
//! and for the configured word lists (禁用词, outdated terms with their correct form); masking
//! what it reports; applying the approver overrides recorded in `review.gate_overrides`.
//! A hit refuses the disclosure; nothing is ever fixed silently. `delivery::Ledger::submit`
//! calls it before anything is stored.
//!
//! Only text a reader sees is scanned: titles, abstract, body, attachment names, keywords,
//! LED text. Hashes, ids, URLs and HTML tags are not (a SHA-256 holds long digit runs), and a
//! digit run glued to letters (`a1380013800b`) is part of a token, not a number.

use serde::Serialize;

use crate::config::GateSettings;
use crate::disclosure::{Disclosure, FieldError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    ResidentId,
    Mobile,
    BankCard,
    ForbiddenWord,
    OutdatedTerm,
}

impl Rule {
    pub const ALL: [Rule; 5] = [
        Rule::ResidentId,
        Rule::Mobile,
        Rule::BankCard,
        Rule::ForbiddenWord,
        Rule::OutdatedTerm,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Rule::ResidentId => "resident_id",
            Rule::Mobile => "mobile",
            Rule::BankCard => "bank_card",
            Rule::ForbiddenWord => "forbidden_word",
            Rule::OutdatedTerm => "outdated_term",
        }
    }

    pub fn parse(s: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.as_str() == s)
    }

    pub fn label(self) -> &'static str {
        match self {
            Rule::ResidentId => "公民身份号码",
            Rule::Mobile => "手机号码",
            Rule::BankCard => "银行卡号",
            Rule::ForbiddenWord => "禁用词",
            Rule::OutdatedTerm => "过时表述",
        }
    }
}

/// One finding: where (field and 1-based character position in the field as sent), which
/// rule, and what was found, masked when it is personal data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hit {
    pub field: String,
    pub position: usize,
    pub rule: Rule,
    pub masked: String,
    /// For an outdated term, the form to use instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correct: Option<String>,
}

impl Hit {
    /// The message for an operator, in Chinese, with the finding masked.
    pub fn message(&self) -> String {
        let what = match &self.correct {
            Some(c) => format!("“{}”，应为“{c}”", self.masked),
            None => format!("“{}”", self.masked),
        };
        format!(
            "第 {} 个字符处发现{}{what}（规则 {}；确需公开时由审核人在 review.gate_overrides 中写明理由放行）",
            self.position,
            self.rule.label(),
            self.rule.as_str()
        )
    }

    pub fn to_field_error(&self) -> FieldError {
        FieldError {
            path: self.field.clone(),
            message: self.message(),
        }
    }
}

/// The gate with its configured word lists.
#[derive(Debug, Clone, Default)]
pub struct Gate {
    forbidden: Vec<String>,
    outdated: Vec<(String, String)>,
}

/// What the gate decided for a disclosure.
#[derive(Debug, Clone, Default)]
pub struct Verdict {
    /// Hits no override covers: the disclosure must be refused.
    pub blocking: Vec<Hit>,
    /// Hits an approver let through (recorded in the review).
    pub overridden: Vec<Hit>,
}

impl Gate {
    pub fn new(settings: &GateSettings) -> Gate {
        Gate {
            forbidden: settings
                .forbidden_words
                .iter()
                .filter(|w| !w.trim().is_empty())
                .cloned()
                .collect(),
            outdated: settings
                .outdated_terms
                .iter()
                .filter(|t| !t.term.trim().is_empty())
                .map(|t| (t.term.clone(), t.correct.clone()))
                .collect(),
        }
    }

    /// Every hit in the reader-visible text of `d`, in field order then position.
    pub fn scan(&self, d: &Disclosure) -> Vec<Hit> {
        let mut hits = Vec::new();
        for (field, text) in visible_fields(d) {
            self.scan_text(&field, &text, &mut hits);
        }
        hits
    }

    /// Scans, then applies `review.gate_overrides` (a rule overridden for this disclosure
    /// lets all its hits through).
    pub fn check(&self, d: &Disclosure) -> Verdict {
        let mut v = Verdict::default();
        for hit in self.scan(d) {
            if d.review
                .gate_overrides
                .iter()
                .any(|o| o.rule == hit.rule.as_str())
            {
                v.overridden.push(hit);
            } else {
                v.blocking.push(hit);
            }
        }
        v
    }

    /// Scans one text; positions are 1-based characters of `text`.
    pub fn scan_text(&self, field: &str, text: &str, hits: &mut Vec<Hit>) {
        let chars: Vec<char> = text.chars().collect();
        let visible = visible_mask(&chars);
        scan_numbers(field, &chars, &visible, hits);
        for w in &self.forbidden {
            for pos in find_all(&chars, &visible, w) {
                hits.push(Hit {
                    field: field.to_string(),
                    position: pos + 1,
                    rule: Rule::ForbiddenWord,
                    masked: w.clone(),
                    correct: None,
                });
            }
        }
        for (term, correct) in &self.outdated {
            for pos in find_all(&chars, &visible, term) {
                // "民政局救灾科" inside the correct form itself is not outdated.
                if correct.contains(term.as_str()) && matches_at(&chars, pos, correct, term) {
                    continue;
                }
                hits.push(Hit {
                    field: field.to_string(),
                    position: pos + 1,
                    rule: Rule::OutdatedTerm,
                    masked: term.clone(),
                    correct: Some(correct.clone()),
                });
            }
        }
        hits.sort_by_key(|h| h.position);
    }
}

/// The fields a reader sees, with their JSON paths. The body is scanned as sent (markdown
/// when it came as markdown), so positions match what the approver has.
fn visible_fields(d: &Disclosure) -> Vec<(String, String)> {
    let mut v = vec![("title".to_string(), d.title.clone())];
    if let Some(t) = &d.short_title {
        v.push(("short_title".into(), t.clone()));
    }
    if let Some(t) = &d.abstract_ {
        v.push(("abstract".into(), t.clone()));
    }
    match &d.body_markdown {
        Some(md) => v.push(("body_markdown".into(), md.clone())),
        None => v.push(("body_html".into(), d.body_html.clone())),
    }
    if let Some(t) = &d.body_text {
        v.push(("body_text".into(), t.clone()));
    }
    for (i, a) in d.attachments.iter().enumerate() {
        v.push((format!("attachments[{i}].name"), a.name.clone()));
    }
    for (i, k) in d.keywords.iter().enumerate() {
        v.push((format!("keywords[{i}]"), k.clone()));
    }
    if let Some(t) = &d.led_text {
        v.push(("led_text".into(), t.clone()));
    }
    v
}

/// False for characters inside HTML tags, HTML entities, URLs and markdown link targets.
fn visible_mask(chars: &[char]) -> Vec<bool> {
    let mut vis = vec![true; chars.len()];
    let mut i = 0;
    while i < chars.len() {
        let rest_starts = |s: &str| {
            let n = s.chars().count();
            i + n <= chars.len() && chars[i..i + n].iter().copied().eq(s.chars())
        };
        if chars[i] == '<' {
            // An HTML tag (attributes hold URLs and ids): up to the closing '>'.
            if let Some(end) = chars[i..].iter().position(|&c| c == '>') {
                vis[i..=i + end].iter_mut().for_each(|v| *v = false);
                i += end + 1;
                continue;
            }
        }
        if chars[i] == '&' {
            if let Some(end) = chars[i..].iter().take(10).position(|&c| c == ';') {
                vis[i..=i + end].iter_mut().for_each(|v| *v = false);
                i += end + 1;
                continue;
            }
        }
        if rest_starts("http://") || rest_starts("https://") || rest_starts("](") {
            let end = chars[i..]
                .iter()
                .position(|&c| c.is_whitespace() || "\"'<>)）】，。".contains(c))
                .map_or(chars.len(), |e| i + e);
            vis[i..end].iter_mut().for_each(|v| *v = false);
            i = end.max(i + 1);
            continue;
        }
        i += 1;
    }
    vis
}

/// Starting positions (char indexes) of `needle` in the visible part of `chars`.
fn find_all(chars: &[char], visible: &[bool], needle: &str) -> Vec<usize> {
    let n: Vec<char> = needle.chars().collect();
    if n.is_empty() || n.len() > chars.len() {
        return Vec::new();
    }
    (0..=chars.len() - n.len())
        .filter(|&i| chars[i..i + n.len()] == n[..] && visible[i..i + n.len()].iter().all(|v| *v))
        .collect()
}

/// Whether the occurrence of `term` at `pos` is part of an occurrence of `correct`.
fn matches_at(chars: &[char], pos: usize, correct: &str, term: &str) -> bool {
    let c: Vec<char> = correct.chars().collect();
    let t: Vec<char> = term.chars().collect();
    (0..=c.len().saturating_sub(t.len()))
        .filter(|&off| c[off..off + t.len()] == t[..])
        .any(|off| {
            pos >= off
                && pos - off + c.len() <= chars.len()
                && chars[pos - off..pos - off + c.len()] == c[..]
        })
}

/// A run of digits (single spaces or hyphens between digits allowed, as in `138 0013 8000`),
/// not glued to letters or other digits.
struct DigitRun {
    start: usize,
    end: usize,
    digits: String,
    /// The ID's last character may be X.
    x_suffix: bool,
}

fn digit_runs(chars: &[char], visible: &[bool]) -> Vec<DigitRun> {
    let mut runs = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if !(visible[i] && chars[i].is_ascii_digit()) {
            i += 1;
            continue;
        }
        let start = i;
        let mut digits = String::new();
        let mut j = i;
        while j < chars.len() && visible[j] {
            if chars[j].is_ascii_digit() {
                digits.push(chars[j]);
                j += 1;
            } else if (chars[j] == ' ' || chars[j] == '-')
                && j + 1 < chars.len()
                && chars[j + 1].is_ascii_digit()
                && visible[j + 1]
                && j > start
            {
                j += 1;
            } else {
                break;
            }
        }
        let mut end = j;
        let mut x_suffix = false;
        if digits.len() == 17 && end < chars.len() && matches!(chars[end], 'X' | 'x') {
            x_suffix = true;
            end += 1;
        }
        let glued_before =
            start > 0 && (chars[start - 1].is_ascii_alphanumeric() || chars[start - 1] == '_');
        let glued_after = end < chars.len()
            && (chars[end].is_ascii_alphanumeric()
                || chars[end] == '_'
                || chars[end] == '.' && end + 1 < chars.len() && chars[end + 1].is_ascii_digit());
        if !glued_before && !glued_after {
            runs.push(DigitRun {
                start,
                end,
                digits,
                x_suffix,
            });
        }
        i = end.max(i + 1);
    }
    runs
}

fn scan_numbers(field: &str, chars: &[char], visible: &[bool], hits: &mut Vec<Hit>) {
    for run in digit_runs(chars, visible) {
        let d = run.digits.as_str();
        let found: String = chars[run.start..run.end].iter().collect();
        let rule = if (d.len() == 18 || (d.len() == 17 && run.x_suffix))
            && is_resident_id(&found.replace([' ', '-'], ""))
        {
            Some(Rule::ResidentId)
        } else if is_mobile(d) {
            Some(Rule::Mobile)
        } else if is_bank_card(d) {
            Some(Rule::BankCard)
        } else {
            None
        };
        if let Some(rule) = rule {
            hits.push(Hit {
                field: field.to_string(),
                position: run.start + 1,
                rule,
                masked: mask(&found, rule),
                correct: None,
            });
        }
    }
}

/// 18 characters (17 digits + digit or X) with a real birth date and the GB 11643 check digit.
pub fn is_resident_id(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 18 || !b[..17].iter().all(u8::is_ascii_digit) {
        return false;
    }
    const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: &[u8; 11] = b"10X98765432";
    let sum: u32 = b[..17]
        .iter()
        .zip(W)
        .map(|(c, w)| u32::from(c - b'0') * w)
        .sum();
    let expected = CHECK[(sum % 11) as usize];
    if b[17].to_ascii_uppercase() != expected {
        return false;
    }
    // The birth date must exist (19000101 ..= 20991231).
    let birth = &s[6..14];
    chrono::NaiveDate::parse_from_str(birth, "%Y%m%d")
        .is_ok_and(|d| (1900..2100).contains(&chrono::Datelike::year(&d)))
}

/// A mainland mobile number: 11 digits, 1[3-9]x (optionally with the 86 country code).
pub fn is_mobile(d: &str) -> bool {
    let d = if d.len() == 13 && d.starts_with("86") {
        &d[2..]
    } else {
        d
    };
    let b = d.as_bytes();
    b.len() == 11 && b[0] == b'1' && (b'3'..=b'9').contains(&b[1])
}

/// 16 to 19 digits, a card-network first digit (3 JCB/AmEx, 4 Visa, 5 Mastercard, 6 UnionPay,
/// 9 domestic debit) and a valid Luhn check digit.
pub fn is_bank_card(d: &str) -> bool {
    (16..=19).contains(&d.len())
        && matches!(d.as_bytes()[0], b'3' | b'4' | b'5' | b'6' | b'9')
        && luhn(d)
}

pub fn luhn(d: &str) -> bool {
    let mut sum = 0;
    for (i, c) in d.bytes().rev().enumerate() {
        let mut v = u32::from(c - b'0');
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum % 10 == 0
}

/// Keeps the first and last few characters: `3501**********1234`, `138****8000`.
pub fn mask(found: &str, rule: Rule) -> String {
    let chars: Vec<char> = found.chars().filter(|c| *c != ' ' && *c != '-').collect();
    let (head, tail) = match rule {
        Rule::Mobile => (chars.len().saturating_sub(8), 4),
        Rule::ResidentId | Rule::BankCard => (4, 4),
        Rule::ForbiddenWord | Rule::OutdatedTerm => return found.to_string(),
    };
    if chars.len() <= head + tail {
        return "*".repeat(chars.len());
    }
    let mut s: String = chars[..head].iter().collect();
    s.push_str(&"*".repeat(chars.len() - head - tail));
    s.extend(&chars[chars.len() - tail..]);
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::OutdatedTerm;

    /// A valid ID: 11010519491231002X is the GB 11643 example.
    const ID_X: &str = "11010519491231002X";
    const ID: &str = "350102199003077134";

    fn gate() -> Gate {
        Gate::new(&GateSettings {
            forbidden_words: vec!["最高级".into()],
            outdated_terms: vec![OutdatedTerm {
                term: "救灾科".into(),
                correct: "社会救助科".into(),
            }],
        })
    }

    fn scan(text: &str) -> Vec<Hit> {
        let mut hits = Vec::new();
        gate().scan_text("body_html", text, &mut hits);
        hits
    }

    fn rules(text: &str) -> Vec<Rule> {
        scan(text).into_iter().map(|h| h.rule).collect()
    }

    #[test]
    fn the_check_digit_helpers_agree_with_known_values() {
        assert!(is_resident_id(ID_X));
        assert!(is_resident_id(ID));
        assert!(!is_resident_id("350102199003077138"), "wrong check digit");
        assert!(luhn("6222021234567890128"));
        assert!(!luhn("6222021234567890127"));
        assert!(luhn("4111111111111111"));
    }

    #[test]
    fn a_resident_id_is_found_with_its_field_position_and_masked() {
        let hits = scan(&format!("<p>申请人张三，身份证号{ID}，住址略。</p>"));
        assert_eq!(hits.len(), 1, "{hits:?}");
        let h = &hits[0];
        assert_eq!(h.rule, Rule::ResidentId);
        assert_eq!(h.field, "body_html");
        assert_eq!(h.position, "<p>申请人张三，身份证号".chars().count() + 1);
        assert_eq!(h.masked, "3501**********7134");
        assert!(!h.message().contains(ID));
        assert!(h.message().contains("resident_id"));
        assert_eq!(rules(&format!("号码：{ID_X}")), [Rule::ResidentId]);
        assert_eq!(
            rules(&format!("号码：{}", ID_X.to_lowercase())),
            [Rule::ResidentId]
        );
    }

    #[test]
    fn an_18_digit_number_with_a_wrong_checksum_or_date_is_not_an_id() {
        assert!(rules("编号350102199003077138号").is_empty());
        // Right length, check digit computed, but month 13.
        assert!(!is_resident_id("350102199013077138"));
        assert!(rules("编号350102199013077138号").is_empty());
        // 19 digits containing a valid ID is not an ID.
        assert!(rules(&format!("流水号{ID}9")).is_empty());
    }

    #[test]
    fn mobile_numbers_are_found_with_or_without_separators() {
        assert_eq!(rules("联系电话13800138000。"), [Rule::Mobile]);
        assert_eq!(rules("联系电话 138 0013 8000"), [Rule::Mobile]);
        assert_eq!(rules("电话 +86 139-1234-5678"), [Rule::Mobile]);
        assert_eq!(scan("电话13800138000")[0].masked, "138****8000");
    }

    #[test]
    fn numbers_that_only_look_like_mobiles_are_not() {
        // Landline with area code, 12-digit run, second digit 2, glued to letters.
        assert!(rules("电话：0597-7532402").is_empty());
        assert!(rules("编号138001380001").is_empty());
        assert!(rules("编号12800138000").is_empty());
        assert!(rules("ref a13800138000b").is_empty());
        assert!(rules("金额 13800138000.50 元").is_empty());
    }

    #[test]
    fn bank_cards_pass_luhn_and_near_misses_do_not() {
        assert_eq!(rules("卡号6222021234567890128"), [Rule::BankCard]);
        assert_eq!(rules("卡号 6222 0212 3456 7890 128"), [Rule::BankCard]);
        assert_eq!(
            scan("卡号6222021234567890128")[0].masked,
            "6222***********0128"
        );
        assert!(rules("卡号6222021234567890127").is_empty(), "fails Luhn");
        assert!(
            rules("编号1234567890123452").is_empty(),
            "no card network starts with 1"
        );
    }

    #[test]
    fn hashes_urls_and_tag_attributes_are_not_scanned() {
        let hash = "0123456789012345678901234567890123456789012345678901234567890123";
        assert!(rules(hash).is_empty());
        let sha_like = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert!(rules(sha_like).is_empty());
        assert!(rules(&format!("<a href=\"https://x.gov.cn/f?id={ID}\">附件</a>")).is_empty());
        assert!(rules(&format!("见 https://x.gov.cn/{ID}/13800138000 ")).is_empty());
        assert!(rules(&format!("[附件](/files/{ID}.pdf)")).is_empty());
        assert!(rules("<img data-id=\"13800138000\">").is_empty());
    }

    #[test]
    fn forbidden_words_and_outdated_terms_are_named_with_the_correct_form() {
        let hits = scan("本品为最高级，由救灾科负责。");
        assert_eq!(
            hits.iter().map(|h| h.rule).collect::<Vec<_>>(),
            [Rule::ForbiddenWord, Rule::OutdatedTerm]
        );
        assert_eq!(hits[0].position, 4);
        assert_eq!(hits[1].correct.as_deref(), Some("社会救助科"));
        assert!(hits[1].message().contains("应为“社会救助科”"));
        // The correct form itself, and a near-miss word, do not hit.
        assert!(rules("由社会救助科负责，救灾工作").is_empty());
        assert!(rules("高级").is_empty());
    }
}
