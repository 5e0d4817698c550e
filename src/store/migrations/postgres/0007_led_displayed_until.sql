-- When an item left a display channel (LED screen), as SQLite's 0007 (unix milliseconds).
ALTER TABLE deliveries ADD COLUMN displayed_until BIGINT;
