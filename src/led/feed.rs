//! The vendor-neutral feed of one screen (domain.md §5.4): an ordered list of items, each
//! one disclosure's current text with the time it went up and the time it must come down.
//! Owns: adding/replacing/removing items, expiry (`max(display_days, 公示期 in working days)`),
//! and the two serialised forms every output uses (`feed.txt` in the screen's encoding with
//! CRLF, `feed.json` in UTF-8) plus their ETag. Pure: no I/O, the caller passes `now`.

use chrono::{DateTime, Duration, FixedOffset, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::text::{encode, LedEncoding};
use crate::calendar::Calendar;

/// One disclosure on the screen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedItem {
    pub disclosure_id: String,
    pub revision: i64,
    /// Cleaned text, checked to be encodable and to fit the screen.
    pub text: String,
    /// When this revision went up.
    pub shown_from: DateTime<Utc>,
    /// When it comes down unless withdrawn earlier (the 公示 evidence: `displayed_until`).
    pub displayed_until: DateTime<Utc>,
}

/// Items newest first (the order the screen shows them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Feed {
    items: Vec<FeedItem>,
}

/// The end of display: `display_days` calendar days after `from`, or, when longer, the
/// minimum 公示期 of `min_working_days` Chinese working days (weekends, public holidays and
/// 调休 make-up days, from `calendar`), counted in China time from the day it went up.
pub fn displayed_until(
    from: DateTime<Utc>,
    display_days: u32,
    min_working_days: Option<u32>,
    calendar: &Calendar,
) -> DateTime<Utc> {
    let by_days = from + Duration::days(i64::from(display_days));
    let Some(wd) = min_working_days.filter(|n| *n > 0) else {
        return by_days;
    };
    let china = FixedOffset::east_opt(8 * 3600).expect("UTC+8 is a valid offset");
    let local = from.with_timezone(&china);
    let end_day = calendar.add_working_days(local.date_naive(), wd);
    let end = end_day
        .and_time(local.time())
        .and_local_timezone(china)
        .single()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(by_days);
    end.max(by_days)
}

impl Feed {
    pub fn new(items: Vec<FeedItem>) -> Feed {
        let mut f = Feed { items };
        f.sort();
        f
    }

    fn sort(&mut self) {
        self.items.sort_by(|a, b| {
            b.shown_from
                .cmp(&a.shown_from)
                .then_with(|| a.disclosure_id.cmp(&b.disclosure_id))
        });
    }

    /// Puts an item up, replacing the disclosure's earlier revision; returns the one replaced.
    /// A lower revision than the one showing is ignored (returns it unchanged in `Err`).
    pub fn upsert(&mut self, item: FeedItem) -> Result<Option<FeedItem>, FeedItem> {
        if let Some(pos) = self
            .items
            .iter()
            .position(|i| i.disclosure_id == item.disclosure_id)
        {
            if self.items[pos].revision > item.revision {
                return Err(self.items[pos].clone());
            }
            let old = std::mem::replace(&mut self.items[pos], item);
            self.sort();
            return Ok(Some(old));
        }
        self.items.push(item);
        self.sort();
        Ok(None)
    }

    /// Takes the disclosure's item down.
    pub fn remove(&mut self, disclosure_id: &str) -> Option<FeedItem> {
        let pos = self
            .items
            .iter()
            .position(|i| i.disclosure_id == disclosure_id)?;
        Some(self.items.remove(pos))
    }

    /// Takes down every item whose time is up; returns them.
    pub fn expire(&mut self, now: DateTime<Utc>) -> Vec<FeedItem> {
        let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.items)
            .into_iter()
            .partition(|i| i.displayed_until <= now);
        self.items = kept;
        gone
    }

    pub fn items(&self) -> &[FeedItem] {
        &self.items
    }

    pub fn get(&self, disclosure_id: &str) -> Option<&FeedItem> {
        self.items.iter().find(|i| i.disclosure_id == disclosure_id)
    }

    /// `feed.txt`: one item per line, CRLF, in the screen's encoding. Every item was checked
    /// when it went up, so encoding cannot fail here (an item that somehow does is skipped).
    pub fn to_text(&self, encoding: LedEncoding) -> Vec<u8> {
        let mut out = Vec::new();
        for item in &self.items {
            if let Ok(b) = encode(&item.text, encoding) {
                out.extend_from_slice(&b);
                out.extend_from_slice(b"\r\n");
            }
        }
        out
    }

    /// `feed.json`: UTF-8, with the screen name and encoding so a player can check them.
    pub fn to_json(&self, screen: &str, encoding: LedEncoding) -> Vec<u8> {
        let v = serde_json::json!({
            "screen": screen,
            "encoding": encoding.charset(),
            "items": self.items,
        });
        serde_json::to_vec_pretty(&v).expect("a feed always serializes")
    }

    /// A strong validator of the content: equal feeds have equal ETags.
    pub fn etag(&self) -> String {
        let mut h = Sha256::new();
        for i in &self.items {
            h.update(i.disclosure_id.as_bytes());
            h.update([0]);
            h.update(i.revision.to_le_bytes());
            h.update(i.text.as_bytes());
            h.update([0]);
            h.update(i.displayed_until.timestamp().to_le_bytes());
        }
        format!("\"{}\"", &hex::encode(h.finalize())[..24])
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2017, 4, d, h, 0, 0).unwrap()
    }

    fn item(id: &str, rev: i64, text: &str, from: DateTime<Utc>) -> FeedItem {
        FeedItem {
            disclosure_id: id.into(),
            revision: rev,
            text: text.into(),
            shown_from: from,
            displayed_until: displayed_until(from, 7, None, &Calendar::weekends_only()),
        }
    }

    #[test]
    fn expiry_is_seven_days_or_the_working_day_minimum_whichever_is_longer() {
        let plain = Calendar::weekends_only();
        // 2017-04-07 is a Friday.
        assert_eq!(displayed_until(at(7, 1), 7, None, &plain), at(14, 1));
        assert_eq!(displayed_until(at(7, 1), 7, Some(3), &plain), at(14, 1));
        // 7 working days from Friday: Mon 10 … Tue 18.
        assert_eq!(displayed_until(at(7, 1), 7, Some(7), &plain), at(18, 1));
        assert_eq!(displayed_until(at(7, 1), 7, Some(10), &plain), at(21, 1));
    }

    #[test]
    fn the_display_period_skips_chinese_public_holidays() {
        // Up on Thursday 2026-02-12 (China time): the Spring Festival holiday runs 02-15..23,
        // 02-14 (Sat) is a make-up working day. 7 working days: 13, 14, 24, 25, 26, 27, 28.
        let cal = Calendar::embedded();
        let from = Utc.with_ymd_and_hms(2026, 2, 12, 2, 0, 0).unwrap(); // 10:00 China time
        assert_eq!(
            displayed_until(from, 7, Some(7), &cal),
            Utc.with_ymd_and_hms(2026, 2, 28, 2, 0, 0).unwrap()
        );
    }

    #[test]
    fn a_new_revision_replaces_its_item_and_an_old_one_is_ignored() {
        let mut f = Feed::default();
        f.upsert(item("a", 1, "甲一", at(1, 0))).unwrap();
        f.upsert(item("b", 1, "乙一", at(2, 0))).unwrap();
        let old = f.upsert(item("a", 2, "甲二", at(3, 0))).unwrap().unwrap();
        assert_eq!(old.text, "甲一");
        let texts: Vec<_> = f.items().iter().map(|i| i.text.as_str()).collect();
        assert_eq!(
            texts,
            ["甲二", "乙一"],
            "newest first, one item per disclosure"
        );
        assert!(f.upsert(item("a", 1, "甲一", at(4, 0))).is_err());
        assert_eq!(f.get("a").unwrap().revision, 2);
    }

    #[test]
    fn expired_and_withdrawn_items_leave_the_feed() {
        let mut f = Feed::new(vec![
            item("a", 1, "甲", at(1, 0)),
            item("b", 1, "乙", at(5, 0)),
        ]);
        assert_eq!(f.remove("b").unwrap().text, "乙");
        assert!(f.remove("b").is_none());
        assert!(f.expire(at(7, 23)).is_empty());
        let gone = f.expire(at(8, 0));
        assert_eq!(gone.len(), 1);
        assert!(f.items().is_empty());
    }

    #[test]
    fn the_text_form_is_crlf_in_the_screen_encoding_and_the_etag_follows_content() {
        let f = Feed::new(vec![
            item("a", 1, "低保", at(1, 0)),
            item("b", 1, "AB", at(2, 0)),
        ]);
        assert_eq!(
            f.to_text(LedEncoding::Gb2312),
            [b"AB\r\n".as_slice(), &[0xB5, 0xCD, 0xB1, 0xA3], b"\r\n"].concat()
        );
        let v: serde_json::Value =
            serde_json::from_slice(&f.to_json("hall", LedEncoding::Gbk)).unwrap();
        assert_eq!(v["items"][1]["text"], "低保");
        let mut g = f.clone();
        assert_eq!(f.etag(), g.etag());
        g.remove("a");
        assert_ne!(f.etag(), g.etag());
    }
}
