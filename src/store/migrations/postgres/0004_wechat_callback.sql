-- The WeChat callback (issue 4), as SQLite's 0004: answers to WeChat's retries, and the
-- full-text index of published disclosures.

-- One row per message WeChat pushed (see the SQLite migration): the first request claims
-- the row and stores the plain reply; a retry on any instance gets that reply back.
CREATE TABLE wechat_messages (
    appid          TEXT    NOT NULL,
    dedupe_key     TEXT    NOT NULL,
    reply          TEXT,
    received_at    BIGINT  NOT NULL,
    answered_at    BIGINT,
    times_received BIGINT  NOT NULL DEFAULT 1,
    PRIMARY KEY (appid, dedupe_key)
);

-- The index: one row per stored revision, with the same token text SQLite gives FTS5
-- (CJK bigrams and words, space-separated; wechat_callback/search.rs) and that text as a
-- tsvector built from a literal (title tokens weight A, body tokens weight D, with
-- positions; no text-search parser, so it does not depend on the database locale).
-- Withdrawn and unpublished items are filtered at query time, as on SQLite.
CREATE TABLE search_docs (
    id            BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    disclosure_id TEXT    NOT NULL,
    revision      BIGINT  NOT NULL,
    title         TEXT    NOT NULL,
    body          TEXT    NOT NULL,
    doc           TSVECTOR NOT NULL,
    UNIQUE (disclosure_id, revision),
    FOREIGN KEY (disclosure_id, revision) REFERENCES disclosures (disclosure_id, revision)
);

CREATE INDEX search_docs_doc ON search_docs USING GIN (doc);

-- Revisions stored but not yet indexed. SQLite catches up by rowid (its single writer
-- commits rowids in order); PostgreSQL identities may commit out of order, so ingest
-- queues each new revision here in its transaction and refresh_search_index drains the
-- queue (the rows it indexes are locked, so two instances never index one twice).
CREATE TABLE search_pending (
    disclosure_id TEXT    NOT NULL,
    revision      BIGINT  NOT NULL,
    PRIMARY KEY (disclosure_id, revision),
    FOREIGN KEY (disclosure_id, revision) REFERENCES disclosures (disclosure_id, revision)
);

-- Everything stored before this migration is indexed on the first refresh.
INSERT INTO search_pending (disclosure_id, revision)
SELECT disclosure_id, revision FROM disclosures;

-- "Latest published" and the search join: delivered publish deliveries by disclosure.
CREATE INDEX deliveries_delivered_by_disclosure ON deliveries (disclosure_id, channel, revision)
    WHERE action = 'publish' AND status = 'delivered';
