-- The operator console (issue 8): operator accounts, their server-side sessions, and an
-- index for the console's day list. PostgreSQL mirrors it table for table (INTEGER unix
-- milliseconds become BIGINT, `disabled` INTEGER 0/1 becomes BOOLEAN).

-- One row per person who may sign in to /console. The password is an argon2id PHC string
-- (never the password). `failed_sign_ins` counts consecutive failures; reaching the limit
-- sets `locked_until` and starts the count again.
CREATE TABLE operators (
    name            TEXT    PRIMARY KEY,
    password_hash   TEXT    NOT NULL,
    role            TEXT    NOT NULL CHECK (role IN ('operator', 'admin')),
    disabled        INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    failed_sign_ins INTEGER NOT NULL DEFAULT 0,
    locked_until    INTEGER,
    created_at      INTEGER NOT NULL,
    last_sign_in_at INTEGER
);

-- Server-side sessions. The cookie holds a random id; only its SHA-256 is stored, so a copy
-- of the database does not let anyone take over a session. `csrf_token` is checked on every
-- POST of the session.
CREATE TABLE console_sessions (
    id_sha256  TEXT    PRIMARY KEY,
    operator   TEXT    NOT NULL REFERENCES operators (name),
    csrf_token TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);

CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);

-- The console's list of the day: disclosures by the time they were received.
CREATE INDEX disclosures_received ON disclosures (received_at);
