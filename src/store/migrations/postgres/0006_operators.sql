-- The operator console (issue 8), table for table the SQLite migration 0006: operator
-- accounts, their server-side sessions, and an index for the console's day list. BIGINT
-- milliseconds and a 0/1 `disabled`, as on SQLite, so the console's SQL is the same.

CREATE TABLE operators (
    name            TEXT   PRIMARY KEY,
    password_hash   TEXT   NOT NULL,
    role            TEXT   NOT NULL CHECK (role IN ('operator', 'admin')),
    disabled        BIGINT NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    failed_sign_ins BIGINT NOT NULL DEFAULT 0,
    locked_until    BIGINT,
    created_at      BIGINT NOT NULL,
    last_sign_in_at BIGINT
);

CREATE TABLE console_sessions (
    id_sha256  TEXT   PRIMARY KEY,
    operator   TEXT   NOT NULL REFERENCES operators (name),
    csrf_token TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);

CREATE INDEX disclosures_received ON disclosures (received_at);
