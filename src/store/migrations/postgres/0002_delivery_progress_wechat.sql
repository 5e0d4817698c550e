-- Multi-step channels (WeChat) and the WeChat account state shared by every instance;
-- mirrors the SQLite migration 0002 (progress stays TEXT: it is read back whole).

ALTER TABLE deliveries ADD COLUMN progress TEXT;

-- `pending`: the channel accepted the item and its outcome comes later. PostgreSQL can
-- swap the CHECK constraint in place (SQLite had to rebuild the table).
ALTER TABLE attempts DROP CONSTRAINT attempts_outcome_check;
ALTER TABLE attempts ADD CONSTRAINT attempts_outcome_check
    CHECK (outcome IN ('delivered', 'transient', 'permanent', 'lost', 'pending'));

CREATE TABLE wechat_tokens (
    appid            TEXT    PRIMARY KEY,
    access_token     TEXT,
    expires_at       BIGINT,
    refreshing_by    TEXT,
    refreshing_until BIGINT,
    grants           BIGINT  NOT NULL DEFAULT 0,
    updated_at       BIGINT  NOT NULL
);

CREATE TABLE wechat_media (
    appid          TEXT    NOT NULL,
    kind           TEXT    NOT NULL,
    content_sha256 TEXT    NOT NULL,
    media_id       TEXT,
    url            TEXT,
    created_at     BIGINT  NOT NULL,
    PRIMARY KEY (appid, kind, content_sha256)
);

CREATE TABLE wechat_publish_events (
    appid          TEXT    NOT NULL,
    publish_id     TEXT    NOT NULL,
    publish_status BIGINT  NOT NULL,
    article_id     TEXT,
    article_url    TEXT,
    fail_idx       TEXT,
    received_at    BIGINT  NOT NULL,
    times_received BIGINT  NOT NULL DEFAULT 1,
    PRIMARY KEY (appid, publish_id)
);
