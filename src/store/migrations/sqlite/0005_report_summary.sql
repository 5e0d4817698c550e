-- The report's summary (Store::published_groups): one row per (disclosure, channel) that was
-- delivered at least once, with every field the report groups by, kept up to date in the
-- transaction that first delivers on a channel and in the one that stores a new revision
-- (the category, publish date and primary channel are the item's). The report is then one
-- covering-index scan over this table, however long the ledger.
-- PostgreSQL mirrors it table for table (is_primary BOOLEAN), with the same refresh per item.
CREATE TABLE report_published (
    disclosure_id TEXT    NOT NULL,
    channel       TEXT    NOT NULL,
    kind          TEXT    NOT NULL,
    -- The category of the item's latest revision.
    category      TEXT    NOT NULL,
    -- publish_date's year (first revision that has one), else the year (UTC+8) of the
    -- item's first delivery on any channel.
    count_year    INTEGER NOT NULL,
    -- The formed date of the item's first revision.
    formed_date   TEXT    NOT NULL,
    -- The day (UTC+8) this channel first accepted any revision of the item.
    delivered_on  TEXT    NOT NULL,
    -- 1 for the item's first channel in byte order (counts each item once).
    is_primary    INTEGER NOT NULL,
    PRIMARY KEY (disclosure_id, channel)
);

CREATE INDEX report_published_groups ON report_published
    (channel, category, count_year, formed_date, delivered_on, is_primary, kind);

-- Backfill from the ledger (the same SELECT as SqliteStore's per-item refresh, unfiltered).
INSERT INTO report_published (disclosure_id, channel, kind, category, count_year, formed_date,
    delivered_on, is_primary)
WITH per AS (
    SELECT disclosure_id, channel, MAX(kind) AS kind, MIN(delivered_at) AS first_at
    FROM deliveries
    WHERE action = 'publish' AND delivered_at IS NOT NULL
    GROUP BY disclosure_id, channel),
item AS (
    SELECT disclosure_id,
        substr(MAX(printf('%010d', revision) || category), 11) AS category,
        substr(MIN(printf('%010d', revision) || formed_date), 11) AS formed_date,
        substr(MIN(CASE WHEN publish_date IS NOT NULL
                   THEN printf('%010d', revision) || publish_date END), 11) AS publish_date
    FROM disclosures
    WHERE disclosure_id IN (SELECT disclosure_id FROM per)
    GROUP BY disclosure_id),
joined AS (
    SELECT p.disclosure_id, p.channel, p.kind, i.category, i.formed_date, i.publish_date,
        p.first_at,
        MIN(p.first_at) OVER (PARTITION BY p.disclosure_id) AS item_first_at,
        ROW_NUMBER() OVER (PARTITION BY p.disclosure_id ORDER BY p.channel) AS rn
    FROM per p JOIN item i ON i.disclosure_id = p.disclosure_id)
SELECT disclosure_id, channel, kind, category,
    COALESCE(CAST(substr(publish_date, 1, 4) AS INTEGER),
             CAST(strftime('%Y', item_first_at / 1000 + 28800, 'unixepoch') AS INTEGER)),
    formed_date,
    date(first_at / 1000 + 28800, 'unixepoch'),
    rn = 1
FROM joined;
