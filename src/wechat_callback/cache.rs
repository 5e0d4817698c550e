//! Answers that depend only on what is published (a menu click's list, a search's reply),
//! kept in memory while nothing was published or withdrawn: when a notice goes out,
//! hundreds of people tap the same menu entry and ask the same word, and each of them
//! must be answered inside WeChat's 5 seconds.
//!
//! An entry is valid while the store's `published_generation` is the one it was computed
//! under (every delivery, withdrawal or indexing in this process changes it, so a
//! withdrawn item disappears from answers at once) and for at most `ttl` (changes made by
//! another instance on the same database reach this one within that time). Pure memory:
//! no I/O, one short lock per lookup. Bounded: when full, the oldest half is dropped.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::reply::Reply;

pub struct ReplyCache {
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<String, Entry>>,
}

struct Entry {
    generation: u64,
    at: Instant,
    reply: Reply,
}

impl ReplyCache {
    pub fn new(ttl: Duration, capacity: usize) -> ReplyCache {
        ReplyCache {
            ttl,
            capacity: capacity.max(1),
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The reply cached under `key` for `generation`, if still fresh.
    pub fn get(&self, key: &str, generation: u64) -> Option<Reply> {
        if self.ttl.is_zero() {
            return None;
        }
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let e = entries.get(key)?;
        (e.generation == generation && e.at.elapsed() < self.ttl).then(|| e.reply.clone())
    }

    /// Keeps `reply`, computed under `generation` (read before the computation started,
    /// so a change during it leaves the entry stale at once).
    pub fn put(&self, key: &str, generation: u64, reply: &Reply) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= self.capacity && !entries.contains_key(key) {
            let now = Instant::now();
            let ttl = self.ttl;
            entries.retain(|_, e| e.generation == generation && now - e.at < ttl);
            if entries.len() >= self.capacity {
                let mut ages: Vec<Instant> = entries.values().map(|e| e.at).collect();
                ages.sort_unstable();
                let cut = ages[ages.len() / 2];
                entries.retain(|_, e| e.at > cut);
            }
        }
        entries.insert(
            key.to_string(),
            Entry {
                generation,
                at: Instant::now(),
                reply: reply.clone(),
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Reply {
        Reply::Text { content: s.into() }
    }

    #[test]
    fn an_entry_lives_while_its_generation_does() {
        let c = ReplyCache::new(Duration::from_secs(60), 10);
        c.put("text:低保", 1, &text("a"));
        assert_eq!(c.get("text:低保", 1), Some(text("a")));
        assert_eq!(c.get("text:低保", 2), None);
        assert_eq!(c.get("text:殡葬", 1), None);
    }

    #[test]
    fn an_entry_expires_after_the_ttl_and_zero_disables() {
        let c = ReplyCache::new(Duration::from_millis(20), 10);
        c.put("k", 1, &text("a"));
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(c.get("k", 1), None);
        let off = ReplyCache::new(Duration::ZERO, 10);
        off.put("k", 1, &text("a"));
        assert_eq!(off.get("k", 1), None);
    }

    #[test]
    fn it_stays_within_its_capacity() {
        let c = ReplyCache::new(Duration::from_secs(60), 8);
        for i in 0..100 {
            c.put(&format!("k{i}"), 1, &text("a"));
        }
        assert!(c.entries.lock().unwrap().len() <= 8);
        assert_eq!(c.get("k99", 1), Some(text("a")));
    }
}
