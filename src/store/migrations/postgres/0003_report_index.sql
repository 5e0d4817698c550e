-- The report's query (Store::published_groups), as SQLite's 0003: delivered publish
-- deliveries in (disclosure_id, channel) order, an index-only scan with `INCLUDE (kind)`.
CREATE INDEX deliveries_published ON deliveries (disclosure_id, channel, delivered_at)
    INCLUDE (kind)
    WHERE action = 'publish' AND delivered_at IS NOT NULL;
