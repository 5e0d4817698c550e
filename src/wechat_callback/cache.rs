//! Answers that depend only on what is published (a menu click's list, a search's reply),
//! kept in memory while nothing was published or withdrawn: when a notice goes out,
//! hundreds of people tap the same menu entry and ask the same word, and each of them
//! must be answered inside WeChat's 5 seconds.
//!
//! An entry is valid while the store's `published_generation` is the one it was computed
//! under (every delivery, withdrawal or indexing in this process changes it, so a
//! withdrawn item disappears from answers at once) and for at most `ttl` (changes made by
//! another instance on the same database reach this one within that time). Requests that
//! miss while the answer is being computed wait for that computation (single flight):
//! without it, each expiry under a burst ran the same search once per connection and
//! the callback's p99 went from 8 to 20 ms. Pure memory: no I/O, one short lock per
//! lookup. Bounded: when full, the oldest half is dropped.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;

use super::reply::Reply;

pub struct ReplyCache {
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<String, Entry>>,
}

/// One key's reply under one generation. The cell is filled by the first request that
/// misses; requests that miss while it computes wait for that one answer instead of
/// computing their own (when an entry expires under a burst, 64 connections would
/// otherwise run the same search at once, and every one of them would wait for the CPU).
struct Entry {
    generation: u64,
    /// When the computation started: the entry's age counts from before the data it read.
    at: Instant,
    reply: Arc<OnceCell<Reply>>,
}

impl Entry {
    fn fresh(&self, generation: u64, ttl: Duration, now: Instant) -> bool {
        self.generation == generation && now.duration_since(self.at) < ttl
    }
}

impl ReplyCache {
    pub fn new(ttl: Duration, capacity: usize) -> ReplyCache {
        ReplyCache {
            ttl,
            capacity: capacity.max(1),
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The reply cached under `key` for `generation`, if computed and still fresh.
    pub fn get(&self, key: &str, generation: u64) -> Option<Reply> {
        if self.ttl.is_zero() {
            return None;
        }
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let e = entries.get(key)?;
        if !e.fresh(generation, self.ttl, Instant::now()) {
            return None;
        }
        e.reply.get().cloned()
    }

    /// The reply under `key` for `generation` (read by the caller before `compute` reads
    /// anything, so a change during the computation leaves the entry stale at once):
    /// the cached one, the one another request is computing, or `compute`'s. A failed
    /// computation is not kept; the next request (or a waiting one) computes again.
    pub async fn get_or_compute<E>(
        &self,
        key: &str,
        generation: u64,
        compute: impl Future<Output = Result<Reply, E>>,
    ) -> Result<Reply, E> {
        if self.ttl.is_zero() {
            return compute.await;
        }
        let cell = self.slot(key, generation);
        cell.get_or_try_init(|| compute).await.cloned()
    }

    /// The entry's cell for `generation`, made (empty) when missing or stale.
    fn slot(&self, key: &str, generation: u64) -> Arc<OnceCell<Reply>> {
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = entries.get(key) {
            if e.fresh(generation, self.ttl, now) {
                return e.reply.clone();
            }
        } else if entries.len() >= self.capacity {
            let ttl = self.ttl;
            entries.retain(|_, e| e.fresh(generation, ttl, now));
            if entries.len() >= self.capacity {
                let mut ages: Vec<Instant> = entries.values().map(|e| e.at).collect();
                ages.sort_unstable();
                let cut = ages[ages.len() / 2];
                entries.retain(|_, e| e.at > cut);
            }
        }
        let reply = Arc::new(OnceCell::new());
        entries.insert(
            key.to_string(),
            Entry {
                generation,
                at: now,
                reply: reply.clone(),
            },
        );
        reply
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Reply {
        Reply::Text { content: s.into() }
    }

    /// Fills `key` for `generation` with `reply`.
    fn put(c: &ReplyCache, key: &str, generation: u64, reply: &Reply) {
        let r = reply.clone();
        let got = futures::executor::block_on(
            c.get_or_compute(key, generation, async move { Ok::<_, ()>(r) }),
        );
        assert!(got.is_ok());
    }

    #[test]
    fn an_entry_lives_while_its_generation_does() {
        let c = ReplyCache::new(Duration::from_secs(60), 10);
        put(&c, "text:低保", 1, &text("a"));
        assert_eq!(c.get("text:低保", 1), Some(text("a")));
        assert_eq!(c.get("text:低保", 2), None);
        assert_eq!(c.get("text:殡葬", 1), None);
    }

    #[test]
    fn an_entry_expires_after_the_ttl_and_zero_disables() {
        let c = ReplyCache::new(Duration::from_millis(20), 10);
        put(&c, "k", 1, &text("a"));
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(c.get("k", 1), None);
        let off = ReplyCache::new(Duration::ZERO, 10);
        put(&off, "k", 1, &text("a"));
        assert_eq!(off.get("k", 1), None);
    }

    #[test]
    fn it_stays_within_its_capacity() {
        let c = ReplyCache::new(Duration::from_secs(60), 8);
        for i in 0..100 {
            put(&c, &format!("k{i}"), 1, &text("a"));
        }
        assert!(c.entries.lock().unwrap().len() <= 8);
        assert_eq!(c.get("k99", 1), Some(text("a")));
    }

    #[tokio::test]
    async fn requests_that_miss_together_share_one_computation() {
        let c = Arc::new(ReplyCache::new(Duration::from_secs(60), 10));
        let runs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..32 {
            let (c, runs) = (c.clone(), runs.clone());
            tasks.push(tokio::spawn(async move {
                c.get_or_compute("text:低保", 1, async {
                    runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Ok::<_, ()>(text("a"))
                })
                .await
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), Ok(text("a")));
        }
        assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 1);
        // Another generation computes anew.
        let b = c
            .get_or_compute("text:低保", 2, async { Ok::<_, ()>(text("b")) })
            .await;
        assert_eq!(b, Ok(text("b")));
        assert_eq!(c.get("text:低保", 1), None);
    }

    #[tokio::test]
    async fn a_failed_computation_is_not_kept() {
        let c = ReplyCache::new(Duration::from_secs(60), 10);
        let e = c
            .get_or_compute("k", 1, async { Err::<Reply, _>("slow index") })
            .await;
        assert_eq!(e, Err("slow index"));
        assert_eq!(c.get("k", 1), None);
        let ok = c
            .get_or_compute("k", 1, async { Ok::<_, &str>(text("a")) })
            .await;
        assert_eq!(ok, Ok(text("a")));
        assert_eq!(c.get("k", 1), Some(text("a")));
    }
}
