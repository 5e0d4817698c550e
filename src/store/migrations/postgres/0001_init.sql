-- The delivery ledger (PostgreSQL), table for table the SQLite migration 0001: INTEGER
-- unix milliseconds (UTC) are BIGINT, `id INTEGER PRIMARY KEY` is
-- `BIGINT GENERATED ALWAYS AS IDENTITY`, BLOB is BYTEA; the partial indexes and CHECK
-- constraints are the same. Dates are TEXT YYYY-MM-DD, enums their lower-case text.

CREATE TABLE disclosures (
    disclosure_id   TEXT    NOT NULL,
    revision        BIGINT  NOT NULL CHECK (revision >= 1),
    title           TEXT    NOT NULL,
    category        TEXT    NOT NULL,
    publish_date    TEXT,
    formed_date     TEXT    NOT NULL,
    content_hash    TEXT    NOT NULL,
    json            TEXT    NOT NULL,
    submitted_by    TEXT    NOT NULL,
    received_at     BIGINT  NOT NULL,
    withdrawn_at    BIGINT,
    withdrawn_by    TEXT,
    withdraw_reason TEXT,
    PRIMARY KEY (disclosure_id, revision)
);

-- See the SQLite migration for the meaning of the columns: `next_attempt_at` is when the
-- row is next due (for in_flight the lease expiry), NULL once final.
CREATE TABLE deliveries (
    id                 BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    disclosure_id      TEXT    NOT NULL,
    revision           BIGINT  NOT NULL,
    channel            TEXT    NOT NULL,
    kind               TEXT    NOT NULL,
    action             TEXT    NOT NULL CHECK (action IN ('publish', 'withdraw')),
    status             TEXT    NOT NULL CHECK (status IN
                           ('pending', 'in_flight', 'delivered', 'retrying', 'dead', 'withdrawn')),
    attempts           BIGINT  NOT NULL DEFAULT 0,
    attempts_base      BIGINT  NOT NULL DEFAULT 0,
    next_attempt_at    BIGINT,
    next_trigger       TEXT    NOT NULL DEFAULT 'scheduled'
                           CHECK (next_trigger IN ('scheduled', 'manual')),
    requested_by       TEXT,
    claimed_by         TEXT,
    claim_token        TEXT,
    claimed_at         BIGINT,
    claimed_until      BIGINT,
    claim_trigger      TEXT CHECK (claim_trigger IN ('scheduled', 'manual')),
    claim_requested_by TEXT,
    remote_id          TEXT,
    url                TEXT,
    last_error         TEXT,
    payload            BYTEA,
    payload_sha256     TEXT,
    created_at         BIGINT  NOT NULL,
    updated_at         BIGINT  NOT NULL,
    delivered_at       BIGINT,
    FOREIGN KEY (disclosure_id, revision) REFERENCES disclosures (disclosure_id, revision),
    UNIQUE (disclosure_id, revision, channel, action)
);

CREATE INDEX deliveries_due ON deliveries (next_attempt_at, id)
    WHERE status IN ('pending', 'retrying', 'in_flight');

CREATE INDEX deliveries_sibling ON deliveries (disclosure_id, channel, id);

-- Append-only; deliberately no UNIQUE (delivery_id, number) (see the SQLite migration).
CREATE TABLE attempts (
    id            BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id   BIGINT  NOT NULL REFERENCES deliveries (id),
    number        BIGINT  NOT NULL,
    trigger       TEXT    NOT NULL CHECK (trigger IN ('scheduled', 'manual')),
    requested_by  TEXT,
    instance      TEXT,
    started_at    BIGINT  NOT NULL,
    finished_at   BIGINT  NOT NULL,
    outcome       TEXT    NOT NULL CHECK (outcome IN ('delivered', 'transient', 'permanent', 'lost')),
    http_status   BIGINT,
    remote_code   TEXT,
    detail        TEXT,
    remote_id     TEXT,
    duration_ms   BIGINT  NOT NULL
);

CREATE INDEX attempts_delivery ON attempts (delivery_id, id);
