-- Kept in step with SQLite's 0009 (search_docs ids by date): PostgreSQL orders a search
-- tier by publish date in its query, so its index is unchanged. The callback's answers
-- are forgotten after a while (purge_wechat_messages): by the time they were received.
-- (SQLite needs no index for that: its rowids are in time order.)
CREATE INDEX wechat_messages_received_at ON wechat_messages (received_at);
