-- The WeChat callback (issue 4): answers to WeChat's retries, and the full-text index of
-- published disclosures. PostgreSQL mirrors the first table as is; for the index it can
-- keep the same token text in a tsvector ('simple' configuration), see search.rs.

-- One row per message WeChat pushed (dedupe key: MsgId, or FromUserName+CreateTime+Event
-- for events). The first request claims the row, does the work and stores the plain reply
-- body; a retry (same instance, another instance, after a restart) gets that reply back
-- instead of doing the work again. A claim that got no reply within a short lease (the
-- instance died mid-way) may be taken over.
CREATE TABLE wechat_messages (
    appid          TEXT    NOT NULL,
    dedupe_key     TEXT    NOT NULL,
    reply          TEXT,
    received_at    INTEGER NOT NULL,
    answered_at    INTEGER,
    times_received INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (appid, dedupe_key)
);

-- Which stored revisions are in the index; src_rowid is the disclosures row's rowid
-- (revisions are never deleted, so new revisions always have larger rowids and the
-- index catches up with one range scan).
CREATE TABLE search_docs (
    id            INTEGER PRIMARY KEY,
    src_rowid     INTEGER NOT NULL UNIQUE,
    disclosure_id TEXT    NOT NULL,
    revision      INTEGER NOT NULL,
    UNIQUE (disclosure_id, revision)
);

-- Title and body as space-separated tokens (CJK bigrams and words, search.rs); the
-- rowid is search_docs.id. Withdrawn and unpublished items are filtered at query time,
-- so a withdrawal disappears from answers at once.
CREATE VIRTUAL TABLE search_fts USING fts5(title, body, tokenize = 'unicode61 remove_diacritics 0');

-- "Latest published" and the search join: delivered publish deliveries by disclosure.
CREATE INDEX deliveries_delivered_by_disclosure ON deliveries (disclosure_id, channel, revision)
    WHERE action = 'publish' AND status = 'delivered';
