-- The delivery ledger (SQLite). The PostgreSQL migration mirrors it table for table:
-- INTEGER unix milliseconds (UTC) become BIGINT, `id INTEGER PRIMARY KEY` becomes
-- `BIGINT GENERATED ALWAYS AS IDENTITY`, BLOB becomes BYTEA; the partial indexes and
-- CHECK constraints carry over unchanged.
--
-- Conventions: timestamps are INTEGER unix milliseconds (UTC); dates are TEXT
-- YYYY-MM-DD; enums are their lower-case text (see src/domain.rs).

-- One row per stored revision. A stored revision never changes, except that a withdrawal
-- (撤回) stamps every revision of the disclosure.
CREATE TABLE disclosures (
    disclosure_id   TEXT    NOT NULL,
    revision        INTEGER NOT NULL CHECK (revision >= 1),
    title           TEXT    NOT NULL,
    category        TEXT    NOT NULL,
    publish_date    TEXT,
    formed_date     TEXT    NOT NULL,
    content_hash    TEXT    NOT NULL,
    json            TEXT    NOT NULL,
    submitted_by    TEXT    NOT NULL,
    received_at     INTEGER NOT NULL,
    withdrawn_at    INTEGER,
    withdrawn_by    TEXT,
    withdraw_reason TEXT,
    PRIMARY KEY (disclosure_id, revision)
);

-- One row per (revision, channel, action). The id is the order: among deliveries of the
-- same disclosure and channel, a smaller id goes first (revision 1 before revision 2,
-- publish before withdraw).
--
-- `next_attempt_at` is when the row is next due for a claim: for pending/retrying the
-- scheduled time, for in_flight the lease expiry (= claimed_until, so an abandoned claim
-- becomes due like any other row and one index serves the whole claim query), NULL once
-- final (delivered, dead, withdrawn).
CREATE TABLE deliveries (
    id                 INTEGER PRIMARY KEY,
    disclosure_id      TEXT    NOT NULL,
    revision           INTEGER NOT NULL,
    channel            TEXT    NOT NULL,
    kind               TEXT    NOT NULL,
    action             TEXT    NOT NULL CHECK (action IN ('publish', 'withdraw')),
    status             TEXT    NOT NULL CHECK (status IN
                           ('pending', 'in_flight', 'delivered', 'retrying', 'dead', 'withdrawn')),
    attempts           INTEGER NOT NULL DEFAULT 0,
    attempts_base      INTEGER NOT NULL DEFAULT 0,
    next_attempt_at    INTEGER,
    next_trigger       TEXT    NOT NULL DEFAULT 'scheduled'
                           CHECK (next_trigger IN ('scheduled', 'manual')),
    requested_by       TEXT,
    -- The current claim. All NULL unless status = 'in_flight'.
    claimed_by         TEXT,
    claim_token        TEXT,
    claimed_at         INTEGER,
    claimed_until      INTEGER,
    -- The trigger and operator the current claim was made for (next_trigger/requested_by
    -- are reset at claim time): written on a `lost` attempt row if the claim is abandoned,
    -- and put back by release_claim so a manual retry is not forgotten at shutdown.
    claim_trigger      TEXT CHECK (claim_trigger IN ('scheduled', 'manual')),
    claim_requested_by TEXT,
    remote_id          TEXT,
    url                TEXT,
    last_error         TEXT,
    payload            BLOB,
    payload_sha256     TEXT,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    delivered_at       INTEGER,
    FOREIGN KEY (disclosure_id, revision) REFERENCES disclosures (disclosure_id, revision),
    UNIQUE (disclosure_id, revision, channel, action)
);

-- The claim query: due rows, oldest first. Partial, so finished rows (the vast majority
-- after a while) cost nothing.
CREATE INDEX deliveries_due ON deliveries (next_attempt_at, id)
    WHERE status IN ('pending', 'retrying', 'in_flight');

-- The sibling rule (NOT EXISTS an older unfinished delivery of the same disclosure and
-- channel) and the "superseded by a newer sibling" check.
CREATE INDEX deliveries_sibling ON deliveries (disclosure_id, channel, id);

-- No index on status alone: without statistics SQLite prefers it for the claim query
-- and then sorts every due row on each claim, instead of walking deliveries_due in order.
-- Operator lists by status (rare) scan the table instead.

-- Append-only. There is deliberately no UNIQUE (delivery_id, number): when a lease expires,
-- the `lost` row takes the number of the abandoned attempt, and the instance that was
-- presumed dead may still report that same attempt late (its row is kept as evidence even
-- though it no longer changes the delivery). The id is the order.
CREATE TABLE attempts (
    id            INTEGER PRIMARY KEY,
    delivery_id   INTEGER NOT NULL REFERENCES deliveries (id),
    number        INTEGER NOT NULL,
    trigger       TEXT    NOT NULL CHECK (trigger IN ('scheduled', 'manual')),
    requested_by  TEXT,
    instance      TEXT,
    started_at    INTEGER NOT NULL,
    finished_at   INTEGER NOT NULL,
    outcome       TEXT    NOT NULL CHECK (outcome IN ('delivered', 'transient', 'permanent', 'lost')),
    http_status   INTEGER,
    remote_code   TEXT,
    detail        TEXT,
    remote_id     TEXT,
    duration_ms   INTEGER NOT NULL
);

CREATE INDEX attempts_delivery ON attempts (delivery_id, id);
