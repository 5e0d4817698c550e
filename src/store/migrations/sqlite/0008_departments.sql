-- Multi-tenancy (issue 7): many departments (部门) in one ledger. Every row a department owns
-- carries `department` (its code, e.g. 'minzheng-fz'); what was stored before belongs to the
-- implicit department 'default' (the top-level config). A disclosure is identified by
-- (department, disclosure_id, revision), so two departments may use the same disclosure id.
-- PostgreSQL's 0008 does the same with ALTER TABLE.
--
-- SQLite cannot change a PRIMARY KEY, UNIQUE or FOREIGN KEY constraint in place, so the
-- tables are rebuilt. The migration runs in a transaction, where `PRAGMA foreign_keys = OFF`
-- has no effect; dropping `deliveries` while `attempts` still references it would break
-- the foreign keys. So the rows are copied aside first, the old tables dropped child first
-- (attempts, deliveries, disclosures), the new ones created parent first with the same ids
-- and rowids (search_docs.src_rowid points at disclosures rowids; search_fts rowids are
-- search_docs ids), and the copies dropped. Indexes go with their tables and are made anew
-- with `department` in front where a query filters by it. There are no triggers.

CREATE TABLE old_disclosures AS SELECT rowid AS old_rowid, * FROM disclosures;
CREATE TABLE old_deliveries AS SELECT * FROM deliveries;
CREATE TABLE old_attempts AS SELECT * FROM attempts;
CREATE TABLE old_search_docs AS SELECT * FROM search_docs;
CREATE TABLE old_report_published AS SELECT * FROM report_published;

DROP TABLE attempts;
DROP TABLE deliveries;
DROP TABLE disclosures;
DROP TABLE search_docs;
DROP TABLE report_published;

-- As in 0001, with `department` in front and in the key.
CREATE TABLE disclosures (
    department      TEXT    NOT NULL DEFAULT 'default',
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
    PRIMARY KEY (department, disclosure_id, revision)
);

-- As in 0001 + 0002 (progress) + 0007 (displayed_until), with `department` in the foreign
-- key and the unique key. The claim queue stays one queue for every department.
CREATE TABLE deliveries (
    id                 INTEGER PRIMARY KEY,
    department         TEXT    NOT NULL DEFAULT 'default',
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
    claimed_by         TEXT,
    claim_token        TEXT,
    claimed_at         INTEGER,
    claimed_until      INTEGER,
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
    progress           TEXT,
    displayed_until    INTEGER,
    FOREIGN KEY (department, disclosure_id, revision)
        REFERENCES disclosures (department, disclosure_id, revision),
    UNIQUE (department, disclosure_id, revision, channel, action)
);

-- As in 0002 (outcome 'pending' allowed).
CREATE TABLE attempts (
    id            INTEGER PRIMARY KEY,
    delivery_id   INTEGER NOT NULL REFERENCES deliveries (id),
    number        INTEGER NOT NULL,
    trigger       TEXT    NOT NULL CHECK (trigger IN ('scheduled', 'manual')),
    requested_by  TEXT,
    instance      TEXT,
    started_at    INTEGER NOT NULL,
    finished_at   INTEGER NOT NULL,
    outcome       TEXT    NOT NULL
                      CHECK (outcome IN ('delivered', 'transient', 'permanent', 'lost', 'pending')),
    http_status   INTEGER,
    remote_code   TEXT,
    detail        TEXT,
    remote_id     TEXT,
    duration_ms   INTEGER NOT NULL
);

-- As in 0004: which stored revisions are in the full-text index (ids kept: they are the
-- rowids of search_fts).
CREATE TABLE search_docs (
    id            INTEGER PRIMARY KEY,
    src_rowid     INTEGER NOT NULL UNIQUE,
    department    TEXT    NOT NULL DEFAULT 'default',
    disclosure_id TEXT    NOT NULL,
    revision      INTEGER NOT NULL,
    UNIQUE (department, disclosure_id, revision)
);

-- As in 0005: one row per (department, disclosure, channel) delivered at least once.
CREATE TABLE report_published (
    department    TEXT    NOT NULL DEFAULT 'default',
    disclosure_id TEXT    NOT NULL,
    channel       TEXT    NOT NULL,
    kind          TEXT    NOT NULL,
    category      TEXT    NOT NULL,
    count_year    INTEGER NOT NULL,
    formed_date   TEXT    NOT NULL,
    delivered_on  TEXT    NOT NULL,
    is_primary    INTEGER NOT NULL,
    PRIMARY KEY (department, disclosure_id, channel)
);

INSERT INTO disclosures (rowid, department, disclosure_id, revision, title, category,
    publish_date, formed_date, content_hash, json, submitted_by, received_at, withdrawn_at,
    withdrawn_by, withdraw_reason)
SELECT old_rowid, 'default', disclosure_id, revision, title, category, publish_date,
    formed_date, content_hash, json, submitted_by, received_at, withdrawn_at, withdrawn_by,
    withdraw_reason
FROM old_disclosures ORDER BY old_rowid;

INSERT INTO deliveries (id, department, disclosure_id, revision, channel, kind, action, status,
    attempts, attempts_base, next_attempt_at, next_trigger, requested_by, claimed_by,
    claim_token, claimed_at, claimed_until, claim_trigger, claim_requested_by, remote_id, url,
    last_error, payload, payload_sha256, created_at, updated_at, delivered_at, progress,
    displayed_until)
SELECT id, 'default', disclosure_id, revision, channel, kind, action, status, attempts,
    attempts_base, next_attempt_at, next_trigger, requested_by, claimed_by, claim_token,
    claimed_at, claimed_until, claim_trigger, claim_requested_by, remote_id, url, last_error,
    payload, payload_sha256, created_at, updated_at, delivered_at, progress, displayed_until
FROM old_deliveries ORDER BY id;

INSERT INTO attempts (id, delivery_id, number, trigger, requested_by, instance, started_at,
    finished_at, outcome, http_status, remote_code, detail, remote_id, duration_ms)
SELECT id, delivery_id, number, trigger, requested_by, instance, started_at, finished_at,
    outcome, http_status, remote_code, detail, remote_id, duration_ms
FROM old_attempts ORDER BY id;

INSERT INTO search_docs (id, src_rowid, department, disclosure_id, revision)
SELECT id, src_rowid, 'default', disclosure_id, revision FROM old_search_docs ORDER BY id;

INSERT INTO report_published (department, disclosure_id, channel, kind, category, count_year,
    formed_date, delivered_on, is_primary)
SELECT 'default', disclosure_id, channel, kind, category, count_year, formed_date,
    delivered_on, is_primary
FROM old_report_published;

DROP TABLE old_disclosures;
DROP TABLE old_deliveries;
DROP TABLE old_attempts;
DROP TABLE old_search_docs;
DROP TABLE old_report_published;

-- The claim query (global: one queue for every department), unchanged from 0001.
CREATE INDEX deliveries_due ON deliveries (next_attempt_at, id)
    WHERE status IN ('pending', 'retrying', 'in_flight');

-- The sibling rule and the superseded check, within one department.
CREATE INDEX deliveries_sibling ON deliveries (department, disclosure_id, channel, id);

-- A department's lists (API, CLI, console) in id order.
CREATE INDEX deliveries_department ON deliveries (department, id);

-- 0003: the delivered publish rows by item, covering.
CREATE INDEX deliveries_published ON deliveries (department, disclosure_id, channel, delivered_at, kind)
    WHERE action = 'publish' AND delivered_at IS NOT NULL;

-- 0004: "latest published" and the search join.
CREATE INDEX deliveries_delivered_by_disclosure ON deliveries (department, disclosure_id, channel, revision)
    WHERE action = 'publish' AND status = 'delivered';

CREATE INDEX attempts_delivery ON attempts (delivery_id, id);

-- 0006: the console's day list, per department.
CREATE INDEX disclosures_received ON disclosures (department, received_at);

-- 0005: the report is one covering-index scan of its department's rows.
CREATE INDEX report_published_groups ON report_published
    (department, channel, category, count_year, formed_date, delivered_on, is_primary, kind);

-- Operator accounts belong to a department: the console shows and changes that department's
-- items only (the accounts made before are the default department's). Names stay unique
-- across departments, so a sign-in needs no department.
ALTER TABLE operators ADD COLUMN department TEXT NOT NULL DEFAULT 'default';
