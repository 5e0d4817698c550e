-- Multi-step channels (WeChat) and the WeChat account state shared by every instance.
-- PostgreSQL mirrors it (progress TEXT -> JSONB is not needed: it is read back whole).

-- What the attempts of a delivery have done so far (a JSON object owned by its channel:
-- for WeChat the draft media_id, the publish_id ...). Written under the current claim
-- before each next remote step, so a retry resumes and never repeats a step that has
-- no idempotency on the remote side.
ALTER TABLE deliveries ADD COLUMN progress TEXT;

-- `pending`: the channel accepted the item and its outcome comes later (asynchronous
-- publishing). SQLite cannot change a CHECK constraint in place: rebuild the table.
CREATE TABLE attempts_v2 (
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
INSERT INTO attempts_v2 SELECT id, delivery_id, number, trigger, requested_by, instance,
    started_at, finished_at, outcome, http_status, remote_code, detail, remote_id, duration_ms
    FROM attempts;
DROP TABLE attempts;
ALTER TABLE attempts_v2 RENAME TO attempts;
CREATE INDEX attempts_delivery ON attempts (delivery_id, id);

-- One access_token per official account (appid), shared by every instance on this
-- database: WeChat keeps only the latest token valid (plus 5 minutes for the previous one),
-- so two instances fetching their own would invalidate each other. `refreshing_*` is the
-- single-flight lock of a refresh (a lease, so a crashed holder does not block forever).
CREATE TABLE wechat_tokens (
    appid            TEXT    PRIMARY KEY,
    access_token     TEXT,
    expires_at       INTEGER,
    refreshing_by    TEXT,
    refreshing_until INTEGER,
    -- Tokens this database has obtained for the account (grants), for operators.
    grants           INTEGER NOT NULL DEFAULT 0,
    updated_at       INTEGER NOT NULL
);

-- Permanent material and body images uploaded once per content: the same cover is not
-- uploaded again (each upload uses a slot of the account's material library).
CREATE TABLE wechat_media (
    appid          TEXT    NOT NULL,
    kind           TEXT    NOT NULL,
    content_sha256 TEXT    NOT NULL,
    media_id       TEXT,
    url            TEXT,
    created_at     INTEGER NOT NULL,
    PRIMARY KEY (appid, kind, content_sha256)
);

-- PUBLISHJOBFINISH events from the callback, recorded once per (account, publish_id)
-- however often WeChat sends them; the delivery that waits for that publish_id reads it.
CREATE TABLE wechat_publish_events (
    appid          TEXT    NOT NULL,
    publish_id     TEXT    NOT NULL,
    publish_status INTEGER NOT NULL,
    article_id     TEXT,
    article_url    TEXT,
    fail_idx       TEXT,
    received_at    INTEGER NOT NULL,
    times_received INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (appid, publish_id)
);
