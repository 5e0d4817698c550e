-- The report's query (Store::published_groups): delivered publish deliveries in
-- (disclosure_id, channel) order with everything the query reads, so that it is one index scan
-- with no table lookups and no sort. Partial: only delivered publish rows. PostgreSQL: the same
-- index with `INCLUDE (kind)` is enough.
CREATE INDEX deliveries_published ON deliveries (disclosure_id, channel, delivered_at, kind)
    WHERE action = 'publish' AND delivered_at IS NOT NULL;
